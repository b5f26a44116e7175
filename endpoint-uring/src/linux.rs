//! The ring, on Linux.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, types, IoUring};

/// The flags of every send: never wait for room (a full socket answers `EAGAIN`, and io_uring
/// then completes the send with it instead of arming a poll and sending later, which would
/// outlive the call), never raise `SIGPIPE` on a peer that went away.
const FLAGS: i32 = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;

/// An io_uring instance for batches of non-blocking sends; one per thread that uses it (it is
/// `Send` but not `Sync`, and made with `IORING_SETUP_SINGLE_ISSUER` where the kernel has it).
pub struct SendRing {
    ring: IoUring,
    /// Its submission queue's size: the most sends one `io_uring_enter` takes.
    entries: usize,
}

impl std::fmt::Debug for SendRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendRing")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl SendRing {
    /// A ring that submits up to `entries` sends at a time (rounded up to a power of two).
    ///
    /// # Errors
    /// When the kernel has no io_uring, or refuses it (`kernel.io_uring_disabled`, a seccomp
    /// filter such as a container runtime's), or its io_uring cannot send (before Linux 5.6):
    /// the caller sends the usual way.
    pub fn new(entries: u32) -> io::Result<SendRing> {
        let entries = entries.max(1).next_power_of_two();
        // SUBMIT_ALL (5.18): a send that fails at submission (a closed descriptor) does not
        // stop the ones after it; SINGLE_ISSUER (6.0): the kernel may skip some locking. Older
        // kernels refuse the flags: a plain ring then.
        let ring = IoUring::builder()
            .setup_submit_all()
            .setup_single_issuer()
            .build(entries)
            .or_else(|_| IoUring::new(entries))?;
        // IORING_OP_SEND came with 5.6, as the probe did: a kernel without them would fail
        // every send (each then queued for the connection task: correct, and slower).
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if !probe.is_supported(opcode::Send::CODE) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this kernel's io_uring has no IORING_OP_SEND",
            ));
        }
        Ok(SendRing {
            ring,
            entries: entries as usize,
        })
    }

    /// Sends `sends[i].1` on socket `sends[i].0`, for every `i`, without waiting for room;
    /// `results[i]` is then the bytes that socket took (which may be fewer than the buffer's,
    /// or 0), or `-errno` (`-EAGAIN`: it took nothing now). Submits at most `entries` sends per
    /// system call, and returns when all of them completed.
    ///
    /// The descriptors must stay open until this returns (a descriptor closed and reused
    /// meanwhile would be sent to): the caller holds whatever owns them.
    ///
    /// # Panics
    /// When `results` is shorter than `sends`, or a buffer is longer than 4 GiB.
    pub fn send_all(&mut self, sends: &[(RawFd, &[u8])], results: &mut [i32]) {
        assert!(results.len() >= sends.len(), "a result for every send");
        for (chunk, results) in sends
            .chunks(self.entries)
            .zip(results.chunks_mut(self.entries))
        {
            self.send_chunk(chunk, results);
        }
    }

    fn send_chunk(&mut self, sends: &[(RawFd, &[u8])], results: &mut [i32]) {
        {
            let mut sq = self.ring.submission();
            for (i, (fd, buf)) in sends.iter().enumerate() {
                let len = u32::try_from(buf.len()).expect("a send buffer under 4 GiB");
                let sqe = opcode::Send::new(types::Fd(*fd), buf.as_ptr(), len)
                    .flags(FLAGS)
                    .build()
                    .user_data(i as u64);
                // SAFETY: the kernel reads `buf` until the send's completion, and this
                // function does not return (so the borrow of `sends` does not end) before it
                // has reaped a completion for every send pushed here (below; or the process
                // aborts). The queue has room: it holds `entries` and is empty (every earlier
                // chunk was submitted and completed), and `sends` is at most `entries` long.
                #[allow(unsafe_code)]
                let pushed = unsafe { sq.push(&sqe) };
                pushed.expect("room in the submission queue");
            }
        }
        let mut left = sends.len();
        while left > 0 {
            match self.ring.submit_and_wait(left) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                    ) => {}
                Err(e) => {
                    // Sends may still be in flight, reading buffers this call would hand
                    // back to their owner: nothing safe is left to do but stop.
                    eprintln!("endpoint-uring: io_uring_enter failed with sends in flight: {e}");
                    std::process::abort();
                }
            }
            for cqe in self.ring.completion() {
                if let Some(slot) = results.get_mut(cqe.user_data() as usize) {
                    *slot = cqe.result();
                    left -= 1;
                }
            }
        }
    }
}
