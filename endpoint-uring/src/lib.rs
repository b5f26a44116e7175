//! Many socket sends in one system call, through io_uring: what a broadcast of the `endpoint`
//! WebSocket framework uses (its runtime's `io-uring` feature) to write one frame to many
//! subscribers' sockets.
//!
//! A fan-out to 1,000 subscribers is 1,000 `send(2)` calls, and at small sizes most of each
//! call's cost is the system call itself, not the work per socket. [`SendRing`] submits a whole
//! group of sends (`IORING_OP_SEND`, `MSG_DONTWAIT | MSG_NOSIGNAL`) with one `io_uring_enter`
//! and waits for all of them: -16 to -19 % of the CPU per send at 1,000 sockets x 16 bytes in
//! the measurement that led here (`bench/ANALYSIS.md`, "Batched sends through io_uring").
//!
//! This crate is the only one of the framework with `unsafe` code: handing a buffer to the
//! kernel is unsafe because the kernel reads it after the call that hands it over. The API is
//! safe: [`SendRing::send_all`] borrows the buffers and does not return before every send it
//! submitted has completed (a ring that cannot say so any more aborts the process rather than
//! let a buffer be freed under the kernel).
//!
//! ```
//! use std::io::Read;
//! use std::net::{TcpListener, TcpStream};
//! use std::os::fd::AsRawFd;
//!
//! # fn main() -> std::io::Result<()> {
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut peers = Vec::new();
//! let mut sockets = Vec::new();
//! for _ in 0..3 {
//!     peers.push(TcpStream::connect(listener.local_addr()?)?);
//!     sockets.push(listener.accept()?.0);
//! }
//! let Ok(mut ring) = endpoint_uring::SendRing::new(8) else {
//!     return Ok(()); // no io_uring here (an old kernel, or a container that forbids it)
//! };
//! let sends: Vec<_> = sockets.iter().map(|s| (s.as_raw_fd(), &b"hi"[..])).collect();
//! let mut results = [0; 3];
//! ring.send_all(&sends, &mut results);
//! assert_eq!(results, [2, 2, 2]);
//! let mut got = [0; 2];
//! peers[1].read_exact(&mut got)?;
//! assert_eq!(&got, b"hi");
//! # Ok(())
//! # }
//! ```

#[cfg(target_os = "linux")]
mod linux;

#[cfg(target_os = "linux")]
pub use linux::SendRing;

#[cfg(not(target_os = "linux"))]
mod other;

#[cfg(not(target_os = "linux"))]
pub use other::SendRing;
