//! WebSocket load generator written for speed: raw TCP, a hand-rolled client handshake,
//! frames built and masked once before the run, no allocation per message, K messages in
//! flight per connection, one current-thread runtime (pin it to one core with `taskset`).
//!
//! ```text
//! loadgen echo      --port P [--conns 100] [--payload 20] [--inflight 1] [--text]
//! loadgen fanout    --port P [--subs 1000] [--rate 100] [--payload 16] [--path /room]
//! loadgen handshake --port P [--conns 32]
//! loadgen idle      --port P [--conns 10000]
//! common:           [--duration 10] [--warmup 1] [--server-pid PID] [--host 127.0.0.1]
//! echo, fanout, idle: [--deflate [--verify]]
//! echo:             [--h2 N]
//! ```
//!
//! With `--h2 N`, echo opens its `--conns` WebSockets as HTTP/2 streams (RFC 8441 extended
//! CONNECT, cleartext with prior knowledge) spread over N TCP connections (`h2c.rs`): `--h2
//! 100 --conns 100` is one WebSocket per HTTP/2 connection (to compare with HTTP/1.1),
//! `--h2 1 --conns 200` many WebSockets on one connection. The frames and their checks are
//! the same.
//!
//! Fan-out (without `--deflate`) publishes binary messages of `--payload` bytes (at least 16,
//! the default): the first 8 bytes are the sequence number, the next 8 the send timestamp (both
//! little-endian), the rest zeros. Every subscriber checks that each delivery is one binary
//! frame of that size, in sequence, and records its latency from the timestamp.
//!
//! Prints one JSON object on stdout (the driver parses it) and a summary on stderr. CPU figures
//! are the CPU time (user + system, all threads) of the server and of this process over the
//! measured window, read from their process CPU-time clocks in nanoseconds
//! (`clock_getcpuclockid`; `/proc/<pid>/stat`'s 10 ms ticks if that fails); the server's
//! includes its core's `ksoftirqd` when it is pinned to one core (`CpuWindow`); memory from
//! `/proc/<pid>/status` (VmRSS). In echo, a connection that received no
//! echo during the measured window is counted as stalled (`"stalled"`, and among the errors):
//! a server that stops answering some connections cannot hide behind the others' total.
//!
//! # permessage-deflate (`--deflate`)
//!
//! The connections go to `/echo-deflate` and `/room-deflate` instead of `/echo` and `/room` and
//! offer `Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover;
//! server_no_context_takeover`. A 101 without `permessage-deflate` and
//! `server_no_context_takeover` in its `Sec-WebSocket-Extensions` fails the run ("the server
//! declined permessage-deflate"): a server that silently declines is never measured as
//! compressing. The messages are JSON text ([`chat_json`]: chat message objects with varying
//! words and numbers, about 40 % of their size at zlib level 1 and 28 % at level 6 for 16 KiB);
//! `--payload` defaults to 16384 (echo), 3072 (fan-out) and 2048 (idle), and must be at least
//! 1024 (endpoint's default minimum size for compression, so that every reply is compressed).
//!
//! - echo: the message is compressed once before the run (raw deflate, sync flush, the trailing
//!   `00 00 ff ff` removed: RFC 7692) and sent as a text frame with RSV1. Every reply must be
//!   one text frame with FIN and RSV1 (anything else is a protocol error); its size is kept
//!   (min and max: the server's compression ratio). The first reply of every connection (every
//!   reply with `--verify`) is inflated and compared with the original message, so a broken
//!   compressor cannot pass. Inflating every reply would make the client's core the bottleneck,
//!   hence only as verification; the other replies are parsed without copying, as plain echo
//!   (a captured reply is copied into a buffer each connection allocates once).
//! - fan-out: the publisher sends JSON text with RSV1, its `"seq"` field patched and the
//!   message compressed for each publish (100 per second: cheap, and no allocation: the buffers
//!   are reused). A subscriber cannot read the sequence number without inflating, so it counts:
//!   its k-th message must be message k (the servers deliver in order); the latency is its
//!   receive time minus the send time the publisher recorded for message k. Every delivery
//!   must be one text frame with FIN and RSV1. Each subscriber inflates its first delivery, and
//!   subscriber i inflates message k when k % subscribers == i (so every message is inflated by
//!   one subscriber; all of them with `--verify`), and compares it with what was published as
//!   message k: content, order and sequence are all checked on that sample. The delivery count
//!   is exact as in plain fan-out.
//! - idle: each connection sends one compressed message, checks that the reply is a
//!   compressed text frame that inflates to it, then stays silent.
//!
//! The JSON result adds `"deflate":true`, `"verified"` (messages inflated and compared),
//! `"verify_failed"` (also counted in `"errors"`), `"sent_compressed_len"` (the client's
//! compressed message) and `"reply_len_min"`/`"reply_len_max"` (the sizes of the compressed
//! messages the server sent: its compression ratio, which differs between servers with the
//! zlib level they use).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

mod h2c;

/// The fixed handshake key and the accept value every server must answer with.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// The masking key of every client frame (non-zero, so servers really unmask).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;
/// FIN and RSV1 ("compressed", RFC 7692) in a frame's first byte.
const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
/// The permessage-deflate offer of every connection in `--deflate` mode.
const DEFLATE_OFFER: &str =
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover";

#[derive(Debug, Clone)]
struct Args {
    mode: String,
    addr: SocketAddr,
    host: String,
    server_pid: Option<u32>,
    duration: f64,
    warmup: f64,
    conns: usize,
    payload: usize,
    inflight: usize,
    text: bool,
    subs: usize,
    rate: f64,
    connect_concurrency: usize,
    /// Negotiate permessage-deflate and send compressed messages (module docs).
    deflate: bool,
    /// With `deflate`: inflate and compare every reply, not a sample.
    verify: bool,
    /// echo over HTTP/2: the WebSockets are streams on this many connections (0: HTTP/1.1).
    h2: usize,
    /// `--path`: the fan-out's endpoint instead of `/room` (e.g. `/room-history`).
    route: Option<&'static str>,
    /// `recover`: how many messages the client misses before it reconnects.
    count: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen echo|fanout|handshake|idle|recover --port P [--host H] [--server-pid PID] \
         [--duration S] [--warmup S] [--conns N] [--payload B] [--inflight K] [--text] \
         [--subs N] [--rate MSG_PER_S] [--connect-concurrency N] [--deflate [--verify]] \
         [--h2 N] [--path /room-history] [--count MISSED]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_else(|| usage());
    if !matches!(
        mode.as_str(),
        "echo" | "fanout" | "handshake" | "idle" | "recover"
    ) {
        usage()
    }
    let mut host = "127.0.0.1".to_owned();
    let mut port: Option<u16> = None;
    let mut a = Args {
        mode: mode.clone(),
        addr: "127.0.0.1:1".parse().unwrap(),
        host: String::new(),
        server_pid: None,
        duration: 10.0,
        warmup: 1.0,
        conns: match mode.as_str() {
            "handshake" => 32,
            "idle" => 10_000,
            "recover" => 5,
            _ => 100,
        },
        payload: if mode == "fanout" { 16 } else { 20 },
        inflight: 1,
        text: false,
        subs: 1000,
        rate: 100.0,
        connect_concurrency: 64,
        deflate: false,
        verify: false,
        h2: 0,
        route: None,
        count: 10_000,
    };
    let mut payload_given = false;
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--port" => port = Some(val().parse().unwrap_or_else(|_| usage())),
            "--host" => host = val(),
            "--server-pid" => a.server_pid = Some(val().parse().unwrap_or_else(|_| usage())),
            "--duration" => a.duration = val().parse().unwrap_or_else(|_| usage()),
            "--warmup" => a.warmup = val().parse().unwrap_or_else(|_| usage()),
            "--conns" => a.conns = val().parse().unwrap_or_else(|_| usage()),
            "--payload" => {
                a.payload = val().parse().unwrap_or_else(|_| usage());
                payload_given = true
            }
            "--inflight" => a.inflight = val().parse().unwrap_or_else(|_| usage()),
            "--subs" => a.subs = val().parse().unwrap_or_else(|_| usage()),
            "--rate" => a.rate = val().parse().unwrap_or_else(|_| usage()),
            "--connect-concurrency" => {
                a.connect_concurrency = val().parse().unwrap_or_else(|_| usage())
            }
            "--text" => a.text = true,
            "--deflate" => a.deflate = true,
            "--verify" => a.verify = true,
            "--h2" => a.h2 = val().parse().unwrap_or_else(|_| usage()),
            // Leaked once: the paths are `&'static str` everywhere else.
            "--path" => a.route = Some(Box::leak(val().into_boxed_str())),
            "--count" => a.count = val().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let port = port.unwrap_or_else(|| usage());
    a.addr = format!("{host}:{port}").parse().unwrap_or_else(|_| usage());
    a.host = format!("{host}:{port}");
    a.payload = a.payload.max(if a.mode == "fanout" { 16 } else { 0 });
    a.inflight = a.inflight.max(1);
    if a.deflate {
        if a.mode == "handshake" {
            eprintln!("loadgen: handshake has no --deflate");
            std::process::exit(2)
        }
        if !payload_given {
            a.payload = match a.mode.as_str() {
                "echo" => 16 * 1024,
                "fanout" => 3 * 1024,
                _ => 2 * 1024,
            };
        }
        if a.payload < 1024 {
            eprintln!(
                "loadgen: --deflate needs --payload >= 1024 (smaller messages are sent \
                 uncompressed by endpoint, and every reply must be compressed)"
            );
            std::process::exit(2)
        }
    } else if a.verify {
        eprintln!("loadgen: --verify goes with --deflate");
        std::process::exit(2)
    }
    if a.h2 > 0 && (a.mode != "echo" || a.deflate) {
        eprintln!("loadgen: --h2 is for echo, without --deflate");
        std::process::exit(2)
    }
    a
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&rt, async {
        match args.mode.as_str() {
            "echo" => echo(&args).await,
            "fanout" => fanout(&args).await,
            "handshake" => handshake(&args).await,
            "idle" => idle(&args).await,
            "recover" => recover(&args).await,
            _ => unreachable!(),
        }
    });
    match result {
        Ok(json) => {
            println!("{json}");
            // Open sockets are simply dropped with the process.
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("loadgen {}: {e}", args.mode);
            println!(
                "{{\"mode\":\"{}\",\"error\":{:?}}}",
                args.mode,
                e.to_string()
            );
            std::process::exit(1)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /proc sampling

/// CPU time (user + system, all threads, the exited ones included) of a process, or of this
/// one with `None`, in seconds: read from the process's CPU-time clock
/// (`clock_getcpuclockid`, the scheduler's nanosecond runtime), so that the CPU a run used is
/// not quantised to the 10 ms ticks of `/proc/<pid>/stat` (at 5 s and 30 % of a core, 150
/// ticks: +-1 tick at each end of the window is over 1 %). Falls back to utime + stime from
/// `/proc` when the clock cannot be read.
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let mut clock: libc::clockid_t = libc::CLOCK_PROCESS_CPUTIME_ID;
    // SAFETY: plain system calls on values owned here.
    let ok = match pid {
        Some(p) => unsafe { libc::clock_getcpuclockid(p as libc::pid_t, &mut clock) == 0 },
        None => true,
    };
    if ok {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write.
        if unsafe { libc::clock_gettime(clock, &mut ts) } == 0 {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
        }
    }
    proc_cpu_seconds(pid)
}

/// utime + stime of a process from `/proc/<pid>/stat`, in seconds (10 ms ticks).
fn proc_cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let Ok(s) = std::fs::read_to_string(path) else {
        return f64::NAN;
    };
    // Fields after the command name (which may contain spaces): state is field 3.
    let rest = &s[s.rfind(')').map_or(0, |i| i + 1)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime is field 14, stime field 15; USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Busy CPU time of the whole machine (all cores, every process), in seconds: to show how much
/// of a run's CPU went to processes other than the server and the client.
fn machine_busy_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return f64::NAN;
    };
    let Some(line) = s.lines().next() else {
        return f64::NAN;
    };
    // cpu user nice system idle iowait irq softirq steal ...
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| f.get(i).copied().unwrap_or(0))
        .sum();
    busy as f64 / 100.0
}

/// The pid of `ksoftirqd` of the one core `pid` is pinned to (`None` when it may run on more).
fn softirqd_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    let core: u32 = list.parse().ok()?;
    let name = format!("ksoftirqd/{core}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == name).then_some(pid)
    })
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU use of the server and of this process over a window.
///
/// The server's CPU includes its core's `ksoftirqd` when the server is pinned to one core (as
/// `bench/run` pins it): the loopback receive work a server's sends cause runs in the sending
/// thread, charged to the server, until the kernel's softirq budget runs out and hands the
/// rest to that core's `ksoftirqd`, which servers that send in bursts (many sends per system
/// call, io_uring) make happen more. Counting it keeps their figures comparable; it is also
/// reported alone (`"softirqd_cpu_s"`).
struct CpuWindow {
    start: Instant,
    server: f64,
    client: f64,
    machine: f64,
    pid: Option<u32>,
    /// The server core's `ksoftirqd`, and its CPU seconds at the start.
    softirqd: Option<(u32, f64)>,
    /// Its CPU seconds in the window (after `end`).
    softirqd_s: f64,
}

impl CpuWindow {
    fn start(pid: Option<u32>) -> Self {
        let softirqd = pid
            .and_then(softirqd_of)
            .map(|k| (k, cpu_seconds(Some(k))));
        CpuWindow {
            start: Instant::now(),
            server: pid.map_or(f64::NAN, |p| cpu_seconds(Some(p))),
            client: cpu_seconds(None),
            machine: machine_busy_seconds(),
            pid,
            softirqd,
            softirqd_s: 0.0,
        }
    }

    /// (elapsed seconds, server CPU seconds, client CPU seconds); the CPU other processes used
    /// in the window is kept for [`CpuWindow::other_json`].
    fn end(&mut self) -> (f64, f64, f64) {
        let elapsed = self.start.elapsed().as_secs_f64();
        self.softirqd_s = self
            .softirqd
            .map_or(0.0, |(k, at)| (cpu_seconds(Some(k)) - at).max(0.0));
        let server = self
            .pid
            .map_or(f64::NAN, |p| cpu_seconds(Some(p)) - self.server)
            + self.softirqd_s;
        let client = cpu_seconds(None) - self.client;
        let machine = machine_busy_seconds() - self.machine;
        // Reuse the field: from now on it holds the other processes' CPU %.
        self.machine = 100.0 * (machine - server - client).max(0.0) / elapsed;
        (elapsed, server, client)
    }

    /// `"other_cpu_pct":X`: CPU (% of one core) used by every other process during the window.
    fn other_json(&self) -> String {
        format!(
            "\"other_cpu_pct\":{},\"softirqd_cpu_s\":{}",
            num(self.machine),
            num(self.softirqd_s)
        )
    }
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "null".into()
    }
}

// ---------------------------------------------------------------------------------------------
// Frames

/// A masked client frame with `payload` (FIN set, no RSV bit).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    client_frame_into(&mut f, FIN | opcode, payload);
    f
}

/// Appends a masked client frame whose first byte is `first` (FIN, RSV bits, opcode) to `f`;
/// allocates nothing when `f` has room.
fn client_frame_into(f: &mut Vec<u8>, first: u8, payload: &[u8]) {
    f.push(first);
    let n = payload.len();
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n <= 0xffff {
        f.push(0x80 | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
}

/// A frame event from [`Parser::feed`].
struct Frame<'a> {
    opcode: u8,
    fin: bool,
    /// RSV1: the message is compressed (permessage-deflate).
    rsv1: bool,
    len: u64,
    /// The first bytes of the payload (up to 16).
    head: &'a [u8],
    /// The whole payload, when this frame was captured ([`Parser::feed_capturing`]).
    payload: Option<&'a [u8]>,
}

/// Streaming parser of server frames (unmasked): copies nothing but headers and the first 16
/// payload bytes; large payloads are skipped as they arrive, unless a frame is captured
/// ([`Parser::feed_capturing`]: into a buffer kept from frame to frame, for verification).
#[derive(Default)]
struct Parser {
    hdr: [u8; 14],
    hdr_len: usize,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    in_payload: bool,
    opcode: u8,
    fin: bool,
    rsv1: bool,
    len: u64,
    head: [u8; 16],
    head_len: usize,
    /// Whether the next frame's payload is to be captured.
    capture_next: bool,
    /// Whether the current frame's payload is being captured (into `captured`).
    capturing: bool,
    captured: Vec<u8>,
}

impl Parser {
    fn header_needed(&self) -> usize {
        if self.hdr_len < 2 {
            return 2;
        }
        let masked = if self.hdr[1] & 0x80 != 0 { 4 } else { 0 };
        masked
            + match self.hdr[1] & 0x7f {
                126 => 4,
                127 => 10,
                _ => 2,
            }
    }

    /// Feeds bytes; calls `on_frame` for every complete frame.
    #[inline]
    fn feed(&mut self, data: &[u8], mut on_frame: impl FnMut(Frame<'_>)) {
        self.feed_capturing(data, |f| {
            on_frame(f);
            false
        })
    }

    /// As [`Parser::feed`], and `on_frame` says whether the next frame's whole payload is to
    /// be captured (then passed as [`Frame::payload`]); `capture_next` decides for the first.
    #[inline]
    fn feed_capturing(&mut self, mut data: &[u8], mut on_frame: impl FnMut(Frame<'_>) -> bool) {
        loop {
            if !self.in_payload {
                // Accumulate the header (its length is known once the first two bytes are in).
                let need = self.header_needed();
                if self.hdr_len < need {
                    if data.is_empty() {
                        return;
                    }
                    let take = (need - self.hdr_len).min(data.len());
                    self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[..take]);
                    self.hdr_len += take;
                    data = &data[take..];
                    continue;
                }
                let len = match self.hdr[1] & 0x7f {
                    126 => u16::from_be_bytes([self.hdr[2], self.hdr[3]]) as u64,
                    127 => u64::from_be_bytes(self.hdr[2..10].try_into().unwrap()),
                    n => n as u64,
                };
                self.opcode = self.hdr[0] & 0x0f;
                self.fin = self.hdr[0] & FIN != 0;
                self.rsv1 = self.hdr[0] & RSV1 != 0;
                self.len = len;
                self.capturing = self.capture_next;
                if self.capturing {
                    self.captured.clear();
                }
                self.remaining = len;
                self.head_len = 0;
                self.hdr_len = 0;
                self.in_payload = true;
            }
            let take = (self.remaining.min(data.len() as u64)) as usize;
            if self.head_len < 16 {
                let h = take.min(16 - self.head_len);
                self.head[self.head_len..self.head_len + h].copy_from_slice(&data[..h]);
                self.head_len += h;
            }
            if self.capturing {
                self.captured.extend_from_slice(&data[..take]);
            }
            self.remaining -= take as u64;
            data = &data[take..];
            if self.remaining > 0 {
                return;
            }
            self.in_payload = false;
            self.capture_next = on_frame(Frame {
                opcode: self.opcode,
                fin: self.fin,
                rsv1: self.rsv1,
                len: self.len,
                head: &self.head[..self.head_len],
                payload: self.capturing.then_some(&self.captured[..]),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// permessage-deflate

/// What RFC 7692 has the sender remove from the end of a compressed message, and the receiver
/// append before inflating.
const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compresses one message as permessage-deflate without context takeover: raw deflate (zlib
/// level 6), sync flush, the trailing `00 00 ff ff` removed. Into `out` (cleared; allocates
/// only if `out` is too small), with `c`, which is reset first.
fn deflate_into(c: &mut flate2::Compress, data: &[u8], out: &mut Vec<u8>) {
    c.reset();
    out.clear();
    out.reserve(data.len() + data.len() / 8 + 64);
    let mut input = data;
    loop {
        let before = c.total_in();
        c.compress_vec(input, out, flate2::FlushCompress::Sync)
            .expect("deflate");
        input = &input[(c.total_in() - before) as usize..];
        // Done when all input is in and the flush's empty block is out (the output did not fill).
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity());
    }
    assert!(
        out.ends_with(&DEFLATE_TAIL),
        "a sync flush ends with 00 00 ff ff"
    );
    out.truncate(out.len() - DEFLATE_TAIL.len());
}

/// One message compressed as [`deflate_into`] does.
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::new(6), false);
    let mut out = Vec::new();
    deflate_into(&mut c, data, &mut out);
    out
}

/// Inflates compressed server messages for verification: one raw-deflate stream, reset for
/// every message (server_no_context_takeover), and an output buffer that never grows.
struct Inflater {
    d: flate2::Decompress,
    out: Vec<u8>,
    /// Messages inflated and compared, and those that did not match.
    checked: u64,
    failed: u64,
}

impl Inflater {
    /// For messages of at most `max_len` bytes (a longer one fails the comparison).
    fn new(max_len: usize) -> Self {
        Inflater {
            d: flate2::Decompress::new(false),
            out: Vec::with_capacity(max_len + 1),
            checked: 0,
            failed: 0,
        }
    }

    /// Inflates `compressed` (a whole message's payload, without the tail), at most
    /// `out`'s capacity; `None` if it is not deflate data or inflates to more.
    fn inflate(&mut self, compressed: &[u8]) -> Option<&[u8]> {
        self.d.reset(false);
        self.out.clear();
        for part in [compressed, &DEFLATE_TAIL[..]] {
            let mut input = part;
            while !input.is_empty() {
                if self.out.len() == self.out.capacity() {
                    return None; // longer than any expected message
                }
                let before = (self.d.total_in(), self.d.total_out());
                let status = self
                    .d
                    .decompress_vec(input, &mut self.out, flate2::FlushDecompress::Sync)
                    .ok()?;
                input = &input[(self.d.total_in() - before.0) as usize..];
                if status == flate2::Status::StreamEnd {
                    // A final block (BFINAL): what follows, the tail included, is ignored.
                    return Some(&self.out);
                }
                if (self.d.total_in(), self.d.total_out()) == before {
                    return None; // no progress: truncated or corrupt
                }
            }
        }
        Some(&self.out)
    }

    /// Inflates `compressed` and counts whether it is `expected`.
    fn check(&mut self, compressed: &[u8], expected: &[u8]) -> bool {
        let ok = self.inflate(compressed) == Some(expected);
        self.checked += 1;
        self.failed += u64::from(!ok);
        ok
    }
}

#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "a", "to", "and", "of", "in", "is", "it", "you", "that", "we", "for", "on", "are",
    "with", "this", "be", "at", "have", "not", "just", "but", "so", "can", "what", "was", "all",
    "will", "my", "me", "do", "if", "about", "like", "get", "now", "up", "out", "know", "one",
    "think", "good", "time", "there", "when", "how", "they", "see", "going", "really", "new",
    "here", "today", "meeting", "deploy", "build", "release", "review", "merge", "branch",
    "ticket", "server", "client", "latency", "memory", "socket", "frame", "queue", "thanks",
    "sure", "okay", "lunch", "coffee", "tomorrow", "later", "morning", "weekend", "please",
    "check", "update", "fixed", "broken", "works", "again", "test", "logs", "error", "timeout",
    "config", "docs", "issue", "patch", "ship", "staging", "prod", "rollback", "benchmark",
    "graph", "numbers", "looks", "great", "weird", "maybe", "probably", "definitely", "soon",
    "yesterday", "call", "join", "room", "link", "screen", "share", "doc", "slides", "agenda",
    "notes", "question", "answer", "idea", "plan", "sprint", "retro", "standup", "demo",
    "customer", "feedback", "bug", "feature", "flag", "cache", "index", "query", "database",
    "migration", "schema", "backup", "restore", "cluster", "node", "pod", "container", "image",
    "tag", "version",
];
#[rustfmt::skip]
const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yara",
    "zoe", "omar", "lena", "kai", "mila", "noah", "ava", "liam", "emma", "lucas",
];

/// A JSON array of chat message objects, exactly `len` bytes (padded with spaces before the
/// closing bracket), the same for the same `len` and `seed`: ids, timestamps, user names,
/// rooms, like counts and 4 to 17 words of text drawn (skewed towards the common ones) from a
/// vocabulary of 150, with a number now and then. It compresses about as chat traffic does:
/// 16 KiB to 40 % at zlib level 1, 28 % at level 6; 3 KiB to 47 % and 34 %.
fn chat_json(len: usize, seed: u64) -> Vec<u8> {
    use std::io::Write as _;
    let mut x = seed | 1;
    let mut below = move |n: usize| -> u64 {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n as u64
    };
    let mut out = Vec::with_capacity(len);
    out.push(b'[');
    let (mut id, mut ts) = (48_213_077u64, 1_764_600_000_000u64);
    let mut one = Vec::with_capacity(256);
    loop {
        one.clear();
        if out.len() > 1 {
            one.push(b',');
        }
        id += 1 + below(3);
        ts += below(5000);
        let name = NAMES[below(NAMES.len()) as usize];
        let _ = write!(
            one,
            "{{\"id\":{id},\"room\":\"team-{}\",\"user\":\"{name}{}\",\"ts\":{ts},\"text\":\"",
            below(12),
            below(100)
        );
        for i in 0..4 + below(14) {
            if i > 0 {
                one.push(b' ');
            }
            let w = below(WORDS.len()).min(below(WORDS.len()));
            one.extend_from_slice(WORDS[w as usize].as_bytes());
            if below(20) == 0 {
                let _ = write!(one, " {}", below(100_000));
            }
        }
        let _ = write!(one, "\",\"likes\":{},\"reply_to\":", below(100));
        if below(3) == 0 {
            let _ = write!(one, "{}", id - 1 - below(50));
        } else {
            one.extend_from_slice(b"null");
        }
        one.push(b'}');
        if out.len() + one.len() + 1 > len {
            break;
        }
        out.extend_from_slice(&one);
    }
    out.resize(len.max(2) - 1, b' ');
    out.push(b']');
    out
}

// ---------------------------------------------------------------------------------------------
// Connections

/// The path of an endpoint: `/echo` or `/room`, or with `--deflate` their compressing twins.
fn path(args: &Args, plain: &'static str) -> &'static str {
    if let (Some(route), "/room") = (args.route, plain) {
        return route;
    }
    match (args.deflate, plain) {
        (true, "/echo") => "/echo-deflate",
        (true, "/room") => "/room-deflate",
        _ => plain,
    }
}

/// Connects and upgrades (offering permessage-deflate with `--deflate`); returns the stream
/// and the bytes read past the response head.
async fn connect(args: &Args, path: &str, buf: &mut [u8]) -> io::Result<(TcpStream, usize, usize)> {
    let mut s = TcpStream::connect(args.addr).await?;
    s.set_nodelay(true)?;
    let ext = if args.deflate {
        format!("Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n")
    } else {
        String::new()
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n",
        args.host
    );
    s.write_all(req.as_bytes()).await?;
    let (start, end) = read_upgrade(&mut s, buf, args.deflate).await?;
    Ok((s, start, end))
}

/// The value of the `Sec-WebSocket-Extensions` header of a response head, if any.
fn extensions_header(head: &[u8]) -> Option<&[u8]> {
    const NAME: &[u8] = b"sec-websocket-extensions:";
    head.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        (line.len() >= NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME))
            .then(|| line[NAME.len()..].trim_ascii())
    })
}

/// Reads the 101 response; returns the range of `buf` holding bytes past its head. With
/// `deflate`, the response must accept permessage-deflate without server context takeover
/// (what was offered); without it, it must name no extension.
async fn read_upgrade(
    s: &mut TcpStream,
    buf: &mut [u8],
    deflate: bool,
) -> io::Result<(usize, usize)> {
    let mut n = 0;
    loop {
        if n == buf.len() {
            return Err(io::Error::other("handshake response too long"));
        }
        let r = s.read(&mut buf[n..]).await?;
        if r == 0 {
            return Err(io::Error::other("connection closed during the handshake"));
        }
        n += r;
        if let Some(i) = find(&buf[..n], b"\r\n\r\n") {
            let head = &buf[..i];
            if !head.starts_with(b"HTTP/1.1 101") {
                let line = String::from_utf8_lossy(&head[..head.len().min(80)]).into_owned();
                return Err(io::Error::other(format!("upgrade refused: {line}")));
            }
            if find(head, ACCEPT).is_none() {
                return Err(io::Error::other("wrong Sec-WebSocket-Accept"));
            }
            let ext = extensions_header(head);
            if deflate {
                let agreed = ext.is_some_and(|v| {
                    let v = v.to_ascii_lowercase();
                    find(&v, b"permessage-deflate").is_some()
                        && find(&v, b"server_no_context_takeover").is_some()
                });
                if !agreed {
                    let said = ext.map_or("no Sec-WebSocket-Extensions".into(), |v| {
                        format!("Sec-WebSocket-Extensions: {}", String::from_utf8_lossy(v))
                    });
                    return Err(io::Error::other(format!(
                        "the server declined permessage-deflate (offered `{DEFLATE_OFFER}`, \
                         its 101 has {said})"
                    )));
                }
            } else if let Some(v) = ext {
                return Err(io::Error::other(format!(
                    "an extension nobody offered: {}",
                    String::from_utf8_lossy(v)
                )));
            }
            return Ok((i + 4, n));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Connects `n` connections (at most `args.connect_concurrency` at once), running `setup`
/// on each, and returns them in order.
async fn connect_many<T: 'static>(
    args: &Args,
    n: usize,
    path: &'static str,
    setup: impl Fn(
            TcpStream,
            Vec<u8>,
            usize,
            usize,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<T>>>>
        + 'static,
) -> io::Result<Vec<T>> {
    let sem = Rc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let setup = Rc::new(setup);
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let sem = sem.clone();
        let setup = setup.clone();
        let args = args.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let _permit = sem.acquire().await.expect("semaphore");
            let mut buf = vec![0u8; 4096];
            let (s, a, b) = connect(&args, path, &mut buf).await?;
            setup(s, buf, a, b).await
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.map_err(io::Error::other)??);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// echo

/// The size range of the compressed replies (`--deflate`): the servers' compression ratio.
struct SizeRange {
    min: Cell<u64>,
    max: Cell<u64>,
}

impl SizeRange {
    fn new() -> Self {
        SizeRange {
            min: Cell::new(u64::MAX),
            max: Cell::new(0),
        }
    }

    #[inline]
    fn add(&self, len: u64) {
        self.min.set(self.min.get().min(len));
        self.max.set(self.max.get().max(len));
    }

    /// `"key_min":A,"key_max":B` (nulls when nothing was seen).
    fn json(&self, key: &str) -> String {
        let (a, b) = (self.min.get(), self.max.get());
        if b == 0 {
            format!("\"{key}_min\":null,\"{key}_max\":null")
        } else {
            format!("\"{key}_min\":{a},\"{key}_max\":{b}")
        }
    }
}

/// `,"deflate":..` and what the permessage-deflate checks saw, for the JSON result.
fn deflate_json(args: &Args, sent: usize, inflater: &Inflater, sizes: &SizeRange) -> String {
    if !args.deflate {
        return ",\"deflate\":false".into();
    }
    format!(
        ",\"deflate\":true,\"verify_all\":{},\"sent_compressed_len\":{sent},\"verified\":{},\
         \"verify_failed\":{},{}",
        args.verify,
        inflater.checked,
        inflater.failed,
        sizes.json("reply_len")
    )
}

async fn echo(args: &Args) -> io::Result<String> {
    let deflate_mode = args.deflate;
    let payload: Rc<[u8]> = if deflate_mode {
        chat_json(args.payload, 0x9e37_79b9_7f4a_7c15).into()
    } else {
        (0..args.payload).map(|i| b'a' + (i % 26) as u8).collect()
    };
    // With --deflate: compressed once, here, and sent as a text frame with RSV1.
    let compressed = if deflate_mode {
        deflate(&payload)
    } else {
        Vec::new()
    };
    let one = if deflate_mode {
        let mut f = Vec::with_capacity(compressed.len() + 14);
        client_frame_into(&mut f, FIN | RSV1 | OP_TEXT, &compressed);
        f
    } else {
        client_frame(if args.text { OP_TEXT } else { OP_BINARY }, &payload)
    };
    let flen = one.len();
    // K frames back to back: any number of them up to K is one write.
    let frames: Rc<[u8]> = one.repeat(args.inflight).into();
    let k = args.inflight;
    let expect_len = args.payload as u64;
    let inflater = Rc::new(RefCell::new(Inflater::new(args.payload)));
    let sizes = Rc::new(SizeRange::new());
    let verify_all = args.verify;

    let conns: Vec<(h2c::Stream, usize, usize)> = if args.h2 > 0 {
        h2c::connect_many(args.addr, &args.host, args.h2, args.conns, "/echo")
            .await?
            .into_iter()
            .map(|s| (s, 0, 0))
            .collect()
    } else {
        connect_many(args, args.conns, path(args, "/echo"), |s, buf, a, b| {
            Box::pin(async move { Ok((s, buf, a, b)) })
        })
        .await?
        .into_iter()
        .map(|(s, _buf, a, b)| (h2c::Stream::Tcp(s), a, b))
        .collect()
    };

    let received = Rc::new(Cell::new(0u64));
    let errors = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    // Echoes per connection: a connection the server stopped answering is reported as stalled
    // (an error), not hidden in the total.
    let per_conn: Rc<[Cell<u64>]> = (0..conns.len()).map(|_| Cell::new(0)).collect();
    for (i, (mut s, a, b)) in conns.into_iter().enumerate() {
        if a != b {
            errors.set(errors.get() + 1);
        }
        let per_conn = per_conn.clone();
        let frames = frames.clone();
        let received = received.clone();
        let errors = errors.clone();
        let stop = stop.clone();
        let (payload, inflater, sizes) = (payload.clone(), inflater.clone(), sizes.clone());
        tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut parser = Parser::default();
            if deflate_mode {
                // The first reply is inflated and compared; the buffer is kept for the others.
                parser.capture_next = true;
                parser.captured = Vec::with_capacity(payload.len() + 64);
            }
            if s.write_all(&frames[..k * flen]).await.is_err() {
                errors.set(errors.get() + 1);
                return;
            }
            loop {
                let n = match s.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        if !stop.get() {
                            errors.set(errors.get() + 1);
                        }
                        return;
                    }
                    Ok(n) => n,
                };
                let mut done = 0usize;
                let mut bad = 0u64;
                if deflate_mode {
                    // Every reply one compressed text frame; the captured ones inflated.
                    parser.feed_capturing(&buf[..n], |f| {
                        if f.fin && f.rsv1 && f.opcode == OP_TEXT {
                            sizes.add(f.len);
                            if let Some(p) = f.payload {
                                if !inflater.borrow_mut().check(p, &payload) {
                                    bad += 1;
                                }
                            }
                            done += 1;
                        } else if f.opcode == OP_PING || f.opcode == OP_PONG {
                            return f.payload.is_some(); // still capturing the next reply
                        } else {
                            bad += 1;
                        }
                        verify_all
                    });
                } else {
                    parser.feed(&buf[..n], |f| {
                        if f.fin && (f.opcode == OP_BINARY || f.opcode == OP_TEXT) {
                            if f.len != expect_len {
                                bad += 1;
                            }
                            done += 1;
                        } else if f.opcode == OP_CLOSE {
                            bad += 1;
                        }
                    });
                }
                if bad > 0 {
                    errors.set(errors.get() + bad);
                }
                received.set(received.get() + done as u64);
                per_conn[i].set(per_conn[i].get() + done as u64);
                if stop.get() {
                    return;
                }
                while done > 0 {
                    let m = done.min(k);
                    if s.write_all(&frames[..m * flen]).await.is_err() {
                        return;
                    }
                    done -= m;
                }
            }
        });
    }

    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let r0 = received.get();
    let c0: Vec<u64> = per_conn.iter().map(Cell::get).collect();
    let mut w = CpuWindow::start(args.server_pid);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let r1 = received.get();
    let (elapsed, server_cpu, client_cpu) = w.end();
    stop.set(true);
    let stalled = per_conn
        .iter()
        .zip(&c0)
        .filter(|(c, &before)| c.get() == before)
        .count() as u64;
    errors.set(errors.get() + stalled);
    let msgs = r1 - r0;
    let rate = msgs as f64 / elapsed;
    let inflater = inflater.borrow();
    let deflate_note = if deflate_mode {
        format!(
            ", deflate: sent {} B compressed, replies {}-{} B, {} inflated ({} wrong)",
            compressed.len(),
            sizes.min.get(),
            sizes.max.get(),
            inflater.checked,
            inflater.failed
        )
    } else {
        String::new()
    };
    eprintln!(
        "echo {} conns x {} B x {} in flight: {:.0} msg/s, server CPU {:.0}%, client CPU {:.0}%, \
         errors {} ({stalled} connections stalled: no echo in the measured window){deflate_note}",
        args.conns,
        args.payload,
        k,
        rate,
        100.0 * server_cpu / elapsed,
        100.0 * client_cpu / elapsed,
        errors.get()
    );
    if msgs == 0 {
        return Err(io::Error::other("no echo received"));
    }
    if deflate_mode && inflater.checked == 0 {
        return Err(io::Error::other("no reply was inflated and compared"));
    }
    Ok(format!(
        "{{\"mode\":\"echo\",\"conns\":{},\"h2_connections\":{},\"payload\":{},\"inflight\":{},\"messages\":{},\"elapsed\":{},\
         \"msg_per_s\":{},\"server_cpu_s\":{},\"client_cpu_s\":{},\"server_cpu_pct\":{},\
         \"client_cpu_pct\":{},\"msg_per_server_cpu_s\":{},\"errors\":{},\"stalled\":{stalled},{}{}}}",
        args.conns,
        args.h2,
        args.payload,
        k,
        msgs,
        num(elapsed),
        num(rate),
        num(server_cpu),
        num(client_cpu),
        num(100.0 * server_cpu / elapsed),
        num(100.0 * client_cpu / elapsed),
        num(msgs as f64 / server_cpu),
        errors.get(),
        w.other_json(),
        deflate_json(args, compressed.len(), &inflater, &sizes)
    ))
}

// ---------------------------------------------------------------------------------------------
// fanout

/// Sends `hello` (a text frame) and waits for the text `ok`; returns the parser state.
async fn hello(
    s: &mut TcpStream,
    buf: &mut [u8],
    a: usize,
    b: usize,
    hello: &[u8],
) -> io::Result<Parser> {
    s.write_all(&client_frame(OP_TEXT, hello)).await?;
    let mut parser = Parser::default();
    let mut ok = false;
    let mut other = false;
    parser.feed(&buf[a..b], |f| {
        if f.opcode == OP_TEXT && f.head == b"ok" {
            ok = true
        } else {
            other = true
        }
    });
    while !ok && !other {
        let n = s.read(buf).await?;
        if n == 0 {
            return Err(io::Error::other("closed before ok"));
        }
        parser.feed(&buf[..n], |f| {
            if f.opcode == OP_TEXT && f.head == b"ok" {
                ok = true
            } else {
                other = true
            }
        });
    }
    if other {
        return Err(io::Error::other("unexpected frame before ok"));
    }
    Ok(parser)
}

/// Where the sequence number sits in a [`fanout_message`], and its width in digits.
const SEQ_AT: usize = 8;
const SEQ_DIGITS: usize = 10;

/// The fan-out message of `--deflate`: `{"seq":"0000000000","messages":[...]}` with
/// [`chat_json`] inside, exactly `len` bytes; [`patch_seq`] writes the sequence number.
fn fanout_message(len: usize) -> Vec<u8> {
    let mut m = b"{\"seq\":\"0000000000\",\"messages\":".to_vec();
    debug_assert_eq!(&m[SEQ_AT - 1..SEQ_AT], b"\"");
    let rest = len.saturating_sub(m.len() + 1).max(2);
    m.extend_from_slice(&chat_json(rest, 0x2545_f491_4f6c_dd1d));
    m.push(b'}');
    m
}

/// Writes `seq` as zero-padded decimal into a [`fanout_message`].
fn patch_seq(m: &mut [u8], seq: u64) {
    let mut v = seq;
    for d in m[SEQ_AT..SEQ_AT + SEQ_DIGITS].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// A subscriber's check of a sampled delivery: it must inflate to message `seq` as published.
struct FanoutCheck {
    inflater: Inflater,
    expect: Vec<u8>,
}

impl FanoutCheck {
    fn check(&mut self, compressed: &[u8], seq: u64) -> bool {
        patch_seq(&mut self.expect, seq);
        self.inflater.check(compressed, &self.expect)
    }
}

async fn fanout(args: &Args) -> io::Result<String> {
    let base = Instant::now();
    let count = (args.rate * args.duration).round().max(1.0) as u64;
    let subs = args.subs;
    let deflate_mode = args.deflate;
    let verify_all = args.verify;
    // --deflate: the message template, when the publisher sent each message (ns since `base`,
    // for the latency: a subscriber cannot read the timestamp without inflating), the check.
    let template = if deflate_mode {
        fanout_message(args.payload)
    } else {
        Vec::new()
    };
    let sent: Rc<[Cell<u64>]> = (0..if deflate_mode { count } else { 0 })
        .map(|_| Cell::new(0))
        .collect();
    let check = Rc::new(RefCell::new(FanoutCheck {
        inflater: Inflater::new(template.len()),
        expect: template.clone(),
    }));
    let sizes = Rc::new(SizeRange::new());
    // Plain fan-out: every delivery must be the published message's size.
    let message_len = args.payload as u64;
    // Read in chunks of one message (16 KiB at least, 64 KiB at most per subscriber).
    let read_len = (args.payload + 14).clamp(16 * 1024, 64 * 1024);
    let t_connect = Instant::now();
    let conns = connect_many(args, subs, path(args, "/room"), |mut s, mut buf, a, b| {
        Box::pin(async move {
            let parser = hello(&mut s, &mut buf, a, b, b"sub").await?;
            Ok((s, parser))
        })
    })
    .await?;
    let connect_s = t_connect.elapsed().as_secs_f64();

    // Latencies in ns, preallocated: no allocation while messages arrive.
    let lat: Rc<RefCell<Vec<u64>>> =
        Rc::new(RefCell::new(Vec::with_capacity(count as usize * subs)));
    let received = Rc::new(Cell::new(0u64));
    let errors = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    for (idx, (mut s, mut parser)) in conns.into_iter().enumerate() {
        let lat = lat.clone();
        let received = received.clone();
        let errors = errors.clone();
        let stop = stop.clone();
        let (sent, check, sizes) = (sent.clone(), check.clone(), sizes.clone());
        let (idx, subs_n) = (idx as u64, subs as u64);
        if deflate_mode {
            // Inflated: the first delivery, then message k when k % subs == idx.
            parser.capture_next = true;
            parser.captured = Vec::with_capacity(template.len() + 64);
        }
        tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; read_len];
            let mut next_seq = 0u64;
            loop {
                let n = match s.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        if !stop.get() {
                            errors.set(errors.get() + 1);
                        }
                        return;
                    }
                    Ok(n) => n,
                };
                let now = base.elapsed().as_nanos() as u64;
                let mut got = 0u64;
                let mut bad = 0u64;
                let mut lat = lat.borrow_mut();
                if deflate_mode {
                    parser.feed_capturing(&buf[..n], |f| {
                        if f.opcode == OP_TEXT && f.fin && f.rsv1 {
                            // Counted: the servers deliver in order, the sample checks it.
                            let seq = next_seq;
                            next_seq += 1;
                            let Some(t) = sent.get(seq as usize) else {
                                bad += 1;
                                return false;
                            };
                            if lat.len() < lat.capacity() {
                                lat.push(now.saturating_sub(t.get()));
                            }
                            sizes.add(f.len);
                            if let Some(p) = f.payload {
                                if !check.borrow_mut().check(p, seq) {
                                    bad += 1;
                                }
                            }
                            got += 1;
                        } else if f.opcode != OP_PING && f.opcode != OP_PONG {
                            bad += 1;
                        }
                        verify_all || next_seq % subs_n == idx
                    });
                    received.set(received.get() + got);
                    if bad > 0 {
                        errors.set(errors.get() + bad);
                    }
                    continue;
                }
                parser.feed(&buf[..n], |f| {
                    if f.opcode == OP_BINARY && f.fin && f.head.len() == 16 {
                        let seq = u64::from_le_bytes(f.head[..8].try_into().unwrap());
                        let ts = u64::from_le_bytes(f.head[8..16].try_into().unwrap());
                        if seq != next_seq || f.len != message_len {
                            bad += 1;
                        }
                        next_seq = seq + 1;
                        if lat.len() < lat.capacity() {
                            lat.push(now.saturating_sub(ts));
                        }
                        got += 1;
                    } else if f.opcode != OP_PING && f.opcode != OP_PONG {
                        bad += 1;
                    }
                });
                received.set(received.get() + got);
                if bad > 0 {
                    errors.set(errors.get() + bad);
                }
            }
        });
    }

    // The publisher.
    let mut buf = vec![0u8; 4096];
    let (mut p, a, b) = connect(args, path(args, "/room"), &mut buf).await?;
    let _ = hello(&mut p, &mut buf, a, b, b"pub").await?;
    let payload = vec![0u8; args.payload];
    let mut frame = client_frame(OP_BINARY, &payload);
    let off = frame.len() - args.payload;
    // --deflate: each message patched, compressed and framed in buffers reused every time.
    let mut message = template.clone();
    let mut compressor = flate2::Compress::new(flate2::Compression::new(6), false);
    let mut compressed = Vec::with_capacity(template.len() * 2 + 64);
    let mut sent_len = 0;
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let mut w = CpuWindow::start(args.server_pid);
    let start = tokio::time::Instant::now();
    for seq in 0..count {
        tokio::time::sleep_until(start + period * seq as u32).await;
        if deflate_mode {
            patch_seq(&mut message, seq);
            deflate_into(&mut compressor, &message, &mut compressed);
            frame.clear();
            client_frame_into(&mut frame, FIN | RSV1 | OP_TEXT, &compressed);
            sent_len = compressed.len();
            sent[seq as usize].set(base.elapsed().as_nanos() as u64);
            p.write_all(&frame).await?;
            continue;
        }
        let ts = base.elapsed().as_nanos() as u64;
        let mut head = [0u8; 16];
        head[..8].copy_from_slice(&seq.to_le_bytes());
        head[8..].copy_from_slice(&ts.to_le_bytes());
        for (i, v) in head.iter().enumerate() {
            frame[off + i] = v ^ MASK[i % 4];
        }
        p.write_all(&frame).await?;
    }
    let publish_s = start.elapsed().as_secs_f64();
    // Drain: wait for every delivery (bounded).
    let expected = count * subs as u64;
    let drain_deadline = Instant::now() + Duration::from_secs(10);
    while received.get() < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (elapsed, server_cpu, client_cpu) = w.end();
    stop.set(true);
    let got = received.get();
    let mut lat = lat.borrow_mut();
    lat.sort_unstable();
    let pct = |q: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1e6
    };
    let (p50, p99, max) = (pct(0.50), pct(0.99), pct(1.0));
    let mean = if lat.is_empty() {
        f64::NAN
    } else {
        lat.iter().sum::<u64>() as f64 / lat.len() as f64 / 1e6
    };
    let check = check.borrow();
    let deflate_note = if deflate_mode {
        format!(
            ", deflate: sent {sent_len} B compressed, deliveries {}-{} B, {} inflated ({} wrong)",
            sizes.min.get(),
            sizes.max.get(),
            check.inflater.checked,
            check.inflater.failed
        )
    } else {
        String::new()
    };
    eprintln!(
        "fanout {subs} subs at {} msg/s, {} B: delivered {got}/{expected}, p50 {p50:.2} ms, p99 {p99:.2} ms, \
         max {max:.2} ms, server CPU {:.0}%, client CPU {:.0}%, errors {}, connect {connect_s:.1}s{deflate_note}",
        args.rate,
        args.payload,
        100.0 * server_cpu / elapsed,
        100.0 * client_cpu / elapsed,
        errors.get()
    );
    if deflate_mode && got > 0 && check.inflater.checked == 0 {
        return Err(io::Error::other("no delivery was inflated and compared"));
    }
    Ok(format!(
        "{{\"mode\":\"fanout\",\"subs\":{subs},\"rate\":{},\"payload\":{},\"published\":{count},\"expected\":{expected},\
         \"delivered\":{got},\"exact\":{},\"p50_ms\":{},\"p99_ms\":{},\"max_ms\":{},\"mean_ms\":{},\
         \"elapsed\":{},\"publish_s\":{},\"server_cpu_s\":{},\"client_cpu_s\":{},\"server_cpu_pct\":{},\
         \"client_cpu_pct\":{},\"msg_per_s\":{},\"msg_per_server_cpu_s\":{},\"errors\":{},\"connect_s\":{},{}{}}}",
        args.rate,
        args.payload,
        got == expected && errors.get() == 0,
        num(p50),
        num(p99),
        num(max),
        num(mean),
        num(elapsed),
        num(publish_s),
        num(server_cpu),
        num(client_cpu),
        num(100.0 * server_cpu / elapsed),
        num(100.0 * client_cpu / elapsed),
        num(got as f64 / elapsed),
        num(got as f64 / server_cpu),
        errors.get(),
        num(connect_s),
        w.other_json(),
        deflate_json(args, sent_len, &check.inflater, &sizes)
    ))
}

// ---------------------------------------------------------------------------------------------
// handshake

/// One connect + upgrade + close handshake.
async fn one_handshake(args: &Args, close: &[u8], buf: &mut [u8]) -> io::Result<()> {
    let (mut s, a, b) = connect(args, "/echo", buf).await?;
    s.write_all(close).await?;
    let mut parser = Parser::default();
    let mut closed = false;
    parser.feed(&buf[a..b], |f| closed |= f.opcode == OP_CLOSE);
    while !closed {
        let n = s.read(buf).await?;
        if n == 0 {
            break;
        }
        parser.feed(&buf[..n], |f| closed |= f.opcode == OP_CLOSE);
    }
    // The server has answered our close: reset rather than leave a TIME_WAIT socket behind
    // (tens of thousands of them would exhaust the loopback's ephemeral ports).
    #[allow(deprecated)] // zero linger resets at once; nothing blocks
    let _ = s.set_linger(Some(Duration::ZERO));
    Ok(())
}

async fn handshake(args: &Args) -> io::Result<String> {
    let close: Rc<[u8]> = client_frame(OP_CLOSE, &1000u16.to_be_bytes()).into();
    let done = Rc::new(Cell::new(0u64));
    let errors = Rc::new(Cell::new(0u64));
    let last_error = Rc::new(RefCell::new(String::new()));
    let stop = Rc::new(Cell::new(false));
    let mut workers = Vec::new();
    for _ in 0..args.conns {
        let (close, done, errors, stop, last_error) = (
            close.clone(),
            done.clone(),
            errors.clone(),
            stop.clone(),
            last_error.clone(),
        );
        let args = args.clone();
        workers.push(tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 4096];
            while !stop.get() {
                match one_handshake(&args, &close, &mut buf).await {
                    Ok(()) => done.set(done.get() + 1),
                    Err(e) => {
                        errors.set(errors.get() + 1);
                        *last_error.borrow_mut() = e.to_string();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let d0 = done.get();
    let mut w = CpuWindow::start(args.server_pid);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let d1 = done.get();
    let (elapsed, server_cpu, client_cpu) = w.end();
    stop.set(true);
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
    }
    let n = d1 - d0;
    let rate = n as f64 / elapsed;
    eprintln!(
        "handshake x {} workers: {rate:.0}/s, server CPU {:.0}%, client CPU {:.0}%, errors {} {}",
        args.conns,
        100.0 * server_cpu / elapsed,
        100.0 * client_cpu / elapsed,
        errors.get(),
        last_error.borrow()
    );
    if n == 0 {
        return Err(io::Error::other(format!(
            "no handshake completed: {}",
            last_error.borrow()
        )));
    }
    Ok(format!(
        "{{\"mode\":\"handshake\",\"workers\":{},\"handshakes\":{n},\"elapsed\":{},\"msg_per_s\":{},\
         \"server_cpu_s\":{},\"client_cpu_s\":{},\"server_cpu_pct\":{},\"client_cpu_pct\":{},\
         \"msg_per_server_cpu_s\":{},\"errors\":{},{}}}",
        args.conns,
        num(elapsed),
        num(rate),
        num(server_cpu),
        num(client_cpu),
        num(100.0 * server_cpu / elapsed),
        num(100.0 * client_cpu / elapsed),
        num(n as f64 / server_cpu),
        errors.get(),
        w.other_json()
    ))
}

// ---------------------------------------------------------------------------------------------
// idle

async fn idle(args: &Args) -> io::Result<String> {
    let pid = args
        .server_pid
        .ok_or_else(|| io::Error::other("idle needs --server-pid"))?;
    let before = rss_kib(pid).ok_or_else(|| io::Error::other("cannot read the server's VmRSS"))?;
    let frame: Rc<[u8]> = client_frame(OP_BINARY, &[b'x'; 20]).into();
    // --deflate: one compressed JSON message instead, whose reply must inflate to it.
    let message: Rc<[u8]> = if args.deflate {
        chat_json(args.payload, 0x9e37_79b9_7f4a_7c15).into()
    } else {
        Rc::from(&[][..])
    };
    let compressed = if args.deflate {
        deflate(&message)
    } else {
        Vec::new()
    };
    let frame = if args.deflate {
        let mut f = Vec::with_capacity(compressed.len() + 14);
        client_frame_into(&mut f, FIN | RSV1 | OP_TEXT, &compressed);
        f.into()
    } else {
        frame
    };
    let inflater = Rc::new(RefCell::new(Inflater::new(message.len())));
    let sizes = Rc::new(SizeRange::new());
    let deflate_mode = args.deflate;
    let t = Instant::now();
    // Each connection upgrades and does one 20-byte echo (with --deflate: one compressed
    // message), then stays open and silent.
    let (inf, sz) = (inflater.clone(), sizes.clone());
    let conns = connect_many(
        args,
        args.conns,
        path(args, "/echo"),
        move |mut s, mut buf, a, b| {
            let (frame, message, inflater, sizes) =
                (frame.clone(), message.clone(), inf.clone(), sz.clone());
            Box::pin(async move {
                s.write_all(&frame).await?;
                let mut parser = Parser {
                    capture_next: deflate_mode,
                    ..Parser::default()
                };
                let (got, wrong) = (Cell::new(false), Cell::new(false));
                let on_frame = |f: Frame<'_>| {
                    if !deflate_mode {
                        got.set(got.get() | (f.opcode == OP_BINARY));
                    } else if f.opcode == OP_TEXT && f.fin && f.rsv1 && f.payload.is_some() {
                        sizes.add(f.len);
                        if !inflater.borrow_mut().check(f.payload.unwrap(), &message) {
                            wrong.set(true);
                        }
                        got.set(true);
                    } else if f.opcode != OP_PING && f.opcode != OP_PONG {
                        wrong.set(true);
                    }
                    !got.get()
                };
                parser.feed_capturing(&buf[a..b], on_frame);
                while !got.get() && !wrong.get() {
                    let n = s.read(&mut buf).await?;
                    if n == 0 {
                        return Err(io::Error::other("closed before the echo"));
                    }
                    parser.feed_capturing(&buf[..n], on_frame);
                }
                if wrong.get() {
                    return Err(io::Error::other(
                        "the echo was not one compressed text frame inflating to the message sent",
                    ));
                }
                Ok(s)
            })
        },
    )
    .await?;
    let connect_s = t.elapsed().as_secs_f64();
    // Let the server settle (lazy frees, allocator), then read its RSS.
    tokio::time::sleep(Duration::from_secs_f64(args.warmup.max(0.5))).await;
    let after = rss_kib(pid).ok_or_else(|| io::Error::other("cannot read the server's VmRSS"))?;
    let n = conns.len();
    let per = (after as f64 - before as f64) / n as f64;
    eprintln!(
        "idle {n} connections: server RSS {before} -> {after} KiB, {per:.2} KiB/conn, opened in {connect_s:.1}s"
    );
    drop(conns);
    Ok(format!(
        "{{\"mode\":\"idle\",\"conns\":{n},\"rss_before_kib\":{before},\"rss_after_kib\":{after},\
         \"kib_per_conn\":{},\"connect_s\":{}{}}}",
        num(per),
        num(connect_s),
        deflate_json(args, compressed.len(), &inflater.borrow(), &sizes)
    ))
}

// ---------------------------------------------------------------------------------------------
// Recovery (endpoint's `/recover`): a client misses `--count` messages, then reconnects with
// its position and is replayed all of them; timed from the connect to the last one.

/// Sends `pos`, returns the room's `(epoch, offset)` from the `pos:EPOCH:OFFSET` answer.
async fn ask_pos(
    s: &mut TcpStream,
    parser: &mut Parser,
    buf: &mut [u8],
) -> io::Result<(String, u64)> {
    s.write_all(&client_frame(OP_TEXT, b"pos")).await?;
    loop {
        let n = s.read(buf).await?;
        if n == 0 {
            return Err(io::Error::other("closed while asking for the position"));
        }
        let mut answer = None;
        parser.feed_capturing(&buf[..n], |f| {
            if let Some(p) = f.payload {
                answer = Some(String::from_utf8_lossy(p).into_owned());
            }
            true
        });
        if let Some(a) = answer {
            let mut parts = a.splitn(3, ':');
            return match (parts.next(), parts.next(), parts.next()) {
                (Some("pos"), Some(epoch), Some(offset)) => Ok((
                    epoch.to_owned(),
                    offset.parse().map_err(|_| io::Error::other(a.clone()))?,
                )),
                _ => Err(io::Error::other(format!("unexpected answer {a}"))),
            };
        }
    }
}

async fn recover(args: &Args) -> io::Result<String> {
    let rounds = args.conns.max(1);
    let count = args.count.max(1);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut publisher, a, b) = connect(args, "/recover", &mut buf).await?;
    let _ = hello(&mut publisher, &mut buf, a, b, b"pub").await?;
    let (mut probe, _, _) = connect(args, "/recover", &mut buf).await?;
    let mut probe_parser = Parser {
        capture_next: true,
        ..Parser::default()
    };
    let payload = vec![0u8; args.payload.max(16)];
    let mut seq = 0u64;
    let (mut times, mut cpu, mut errors, mut exact) = (Vec::new(), Vec::new(), 0u64, true);
    for _ in 0..rounds {
        let (epoch, before) = ask_pos(&mut probe, &mut probe_parser, &mut buf).await?;
        // The missed messages, written in batches.
        let first_seq = seq;
        let mut batch = Vec::with_capacity(256 * (payload.len() + 14));
        for _ in 0..count {
            let mut p = payload.clone();
            p[..8].copy_from_slice(&seq.to_le_bytes());
            seq += 1;
            client_frame_into(&mut batch, FIN | OP_BINARY, &p);
            if batch.len() > 64 * 1024 {
                publisher.write_all(&batch).await?;
                batch.clear();
            }
        }
        publisher.write_all(&batch).await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, now) = ask_pos(&mut probe, &mut probe_parser, &mut buf).await?;
            if now >= before + count {
                break;
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "published {} of {count} within 60 s",
                    now - before
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut w = CpuWindow::start(args.server_pid);
        let t0 = Instant::now();
        let url = format!("/recover?epoch={epoch}&since={before}");
        let (mut c, a, b) = connect(args, &url, &mut buf).await?;
        let mut parser = Parser::default();
        let mut r = Replay {
            first_seq,
            got: 0,
            done: false,
            bad: 0,
        };
        parser.feed(&buf[a..b], |f| r.frame(f));
        let read_deadline = Instant::now() + Duration::from_secs(60);
        while !r.done || r.got < count {
            let n = tokio::time::timeout_at(read_deadline.into(), c.read(&mut buf))
                .await
                .map_err(|_| {
                    io::Error::other(format!("replayed {} of {count} within 60 s", r.got))
                })??;
            if n == 0 {
                return Err(io::Error::other("closed during the replay"));
            }
            parser.feed(&buf[..n], |f| r.frame(f));
        }
        let (got, bad) = (r.got, r.bad);
        let took = t0.elapsed().as_secs_f64();
        let (_, server_cpu, _) = w.end();
        times.push(took);
        cpu.push(server_cpu);
        errors += bad;
        exact &= got == count && bad == 0;
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let max = times.iter().copied().fold(0.0, f64::max);
    let cpu_mean = cpu.iter().sum::<f64>() / cpu.len() as f64;
    eprintln!(
        "recover {count} missed messages x {rounds}: mean {:.1} ms, max {:.1} ms, \
         {:.0} msg/s, server CPU {:.1} ms per recovery, errors {errors}",
        mean * 1e3,
        max * 1e3,
        count as f64 / mean,
        cpu_mean * 1e3
    );
    Ok(format!(
        "{{\"mode\":\"recover\",\"missed\":{count},\"rounds\":{rounds},\"exact\":{exact},\
         \"recover_ms\":{},\"recover_max_ms\":{},\"msg_per_s\":{},\"server_cpu_ms\":{},\"errors\":{errors}}}",
        num(mean * 1e3),
        num(max * 1e3),
        num(count as f64 / mean),
        num(cpu_mean * 1e3),
    ))
}

/// What a recovering client counted: the replayed messages in sequence, then `recovered:`.
struct Replay {
    first_seq: u64,
    got: u64,
    done: bool,
    bad: u64,
}

impl Replay {
    fn frame(&mut self, f: Frame<'_>) {
        if f.opcode == OP_BINARY && f.head.len() >= 8 {
            let s = u64::from_le_bytes(f.head[..8].try_into().unwrap());
            if s != self.first_seq + self.got || self.done {
                self.bad += 1;
            }
            self.got += 1;
        } else if f.opcode == OP_TEXT && f.head.starts_with(b"recovered:") {
            self.done = true;
        } else if f.opcode != OP_PING && f.opcode != OP_PONG {
            self.bad += 1;
        }
    }
}
