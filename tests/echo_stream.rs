//! `examples/echo.rs`'s `/echoStream` (the port of Tomcat's `EchoAnnotation`), run as the
//! example binary `cargo test` builds, over raw sockets:
//!
//! * each text and binary frame's part is echoed as it arrives, with its `last` flag (the echo
//!   of `fin=0 "frag"` comes back, without FIN, before the client sends the rest); a pong is
//!   taken and ignored;
//! * a 64 MiB binary message, sent in 1 MiB frames (the default frame limit) while the echo is
//!   read back, comes back whole and in order (each large frame echoed in pieces as it
//!   arrives) while the server's resident memory grows by less than 8 MiB: measured from
//!   `/proc/<pid>/status` of the server process itself, its peak (`VmHWM`) after the transfer
//!   against its `VmRSS` before.

mod raw;

mod examples_support;
use examples_support::example;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use raw::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The example binary, killed when the test ends (whichever way).
struct Example(Child);

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `echo` on an ephemeral loopback port; the `/echoStream` address it prints.
fn start_echo() -> (Example, SocketAddr) {
    let mut child = Command::new(example("echo"))
        .args(["--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the echo example");
    let stdout = child.stdout.take().expect("stdout");
    let child = Example(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line
                .strip_prefix("echo: ws://")
                .and_then(|rest| rest.strip_suffix("/echoStream"))
            {
                let _ = tx.send(addr.parse::<SocketAddr>().expect("an address"));
            }
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("echo prints its /echoStream address");
    (child, addr)
}

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test]
async fn echo_stream_echoes_each_part_as_it_arrives() {
    let (_echo, addr) = start_echo();
    let mut ws = RawWs::connect(addr, "/echoStream").await;
    // Text: the first part comes back before the rest is sent, without FIN.
    ws.send(&[Frame::text("frag").fin(false)]).await;
    let f = ws.read_frame().await.expect("the first part's echo");
    assert_eq!(
        (f.opcode, f.fin, &f.payload[..]),
        (TEXT, false, &b"frag"[..])
    );
    ws.send(&[Frame::new(CONT, "ment")]).await;
    let f = ws.read_frame().await.unwrap();
    assert_eq!(
        (f.opcode, f.fin, &f.payload[..]),
        (CONT, true, &b"ment"[..])
    );
    // Binary likewise; a pong is taken and ignored (the ping's answer comes next).
    ws.send(&[
        Frame::binary(vec![1, 2, 3]).fin(false),
        Frame::new(PONG, ""),
    ])
    .await;
    let f = ws.read_frame().await.unwrap();
    assert_eq!(
        (f.opcode, f.fin, &f.payload[..]),
        (BINARY, false, &[1, 2, 3][..])
    );
    ws.send(&[Frame::new(PING, "p"), Frame::new(CONT, vec![4])])
        .await;
    let f = ws.read_frame().await.unwrap();
    assert_eq!((f.opcode, &f.payload[..]), (PONG, &b"p"[..]));
    let f = ws.read_frame().await.unwrap();
    assert_eq!((f.opcode, f.fin, &f.payload[..]), (CONT, true, &[4][..]));
    // A message in one frame is one part: it comes back as one frame.
    ws.send(&[Frame::text("whole")]).await;
    let f = ws.read_frame().await.unwrap();
    assert_eq!(
        (f.opcode, f.fin, &f.payload[..]),
        (TEXT, true, &b"whole"[..])
    );
    ws.finish(1000).await;
}

/// The memory test: 64 MiB echoed with the server's memory bounded.
#[tokio::test]
async fn echo_stream_echoes_64_mib_in_bounded_memory() {
    const FRAME: usize = 1 << 20;
    const FRAMES: usize = 64;
    let (echo, addr) = start_echo();
    let pid = echo.0.id();
    let mut ws = RawWs::connect(addr, "/echoStream").await;
    // Warm up the connection with a small message in parts, then take the baseline.
    ws.send(&[
        Frame::binary(vec![0; 1000]).fin(false),
        Frame::new(CONT, vec![0; 1000]),
    ])
    .await;
    for _ in 0..2 {
        ws.read_frame().await.expect("warm-up echo");
    }
    let (before, _) = memory_kib(pid);

    let stream = ws.stream;
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        for i in 0..FRAMES {
            let opcode = if i == 0 { BINARY } else { CONT };
            let frame = Frame::new(opcode, vec![(i * 7) as u8; FRAME]).fin(i == FRAMES - 1);
            wr.write_all(&frame.encode()).await.expect("write a frame");
        }
        wr
    });
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let (mut total, mut sum, mut frames) = (0usize, 0u64, 0usize);
        loop {
            while let Some((frame, used)) = parse_frame(&buf) {
                buf.drain(..used);
                let opcode = if frames == 0 { BINARY } else { CONT };
                assert_eq!(frame.opcode, opcode, "frame {frames}: {}", frame.opcode);
                assert!(frame.payload.len() <= FRAME, "a part larger than a frame");
                frames += 1;
                total += frame.payload.len();
                sum += frame.payload.iter().map(|&b| u64::from(b)).sum::<u64>();
                if frame.fin {
                    return (total, sum, frames);
                }
            }
            let n = rd.read(&mut chunk).await.expect("read the echo");
            assert!(n > 0, "the server ended the connection after {total} bytes");
            buf.extend_from_slice(&chunk[..n]);
        }
    });
    let (total, sum, frames) = within(
        std::time::Duration::from_secs(120),
        "the 64 MiB echo",
        reader,
    )
    .await
    .expect("reader");
    writer.await.expect("writer");
    let (_, peak) = memory_kib(pid);
    assert_eq!(total, FRAMES * FRAME);
    let want: u64 = (0..FRAMES)
        .map(|i| u64::from((i * 7) as u8) * FRAME as u64)
        .sum();
    assert_eq!(sum, want);
    // Large frames are echoed in pieces, as they arrive: at least one frame per frame sent.
    assert!(frames >= FRAMES, "{frames} frames");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "echoStream: VmRSS {before} KiB before, VmHWM {peak} KiB after 64 MiB: +{growth} KiB"
    );
    assert!(
        growth < 8 * 1024,
        "the server's peak memory grew by {growth} KiB echoing 64 MiB"
    );
}
