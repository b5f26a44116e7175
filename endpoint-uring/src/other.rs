//! Elsewhere than Linux: no io_uring, so no ring.

use std::io;
use std::os::fd::RawFd;

/// No io_uring on this system: [`SendRing::new`] always fails, and callers send the usual way.
#[derive(Debug)]
pub struct SendRing(());

impl SendRing {
    /// Always fails here (`Unsupported`).
    ///
    /// # Errors
    /// Always: this system has no io_uring.
    pub fn new(_entries: u32) -> io::Result<SendRing> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Never called: no ring can be made.
    pub fn send_all(&mut self, _sends: &[(RawFd, &[u8])], _results: &mut [i32]) {
        unreachable!("no SendRing exists off Linux")
    }
}
