//! WebSocket load generator written for speed: raw TCP, a hand-rolled client handshake,
//! frames built and masked once before the run, no allocation per message, K messages in
//! flight per connection, one current-thread runtime (pin it to one core with `taskset`).
//!
//! ```text
//! loadgen echo      --port P [--conns 100] [--payload 20] [--inflight 1] [--text]
//! loadgen fanout    --port P [--subs 1000] [--rate 100] [--payload 16]
//! loadgen handshake --port P [--conns 32]
//! loadgen idle      --port P [--conns 10000]
//! common:           [--duration 10] [--warmup 1] [--server-pid PID] [--host 127.0.0.1]
//! ```
//!
//! Prints one JSON object on stdout (the driver parses it) and a summary on stderr. CPU figures
//! come from `/proc/<pid>/stat` (utime + stime) sampled at the start and end of the measured
//! window; memory from `/proc/<pid>/status` (VmRSS).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

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
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen echo|fanout|handshake|idle --port P [--host H] [--server-pid PID] \
         [--duration S] [--warmup S] [--conns N] [--payload B] [--inflight K] [--text] \
         [--subs N] [--rate MSG_PER_S] [--connect-concurrency N]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_else(|| usage());
    if !matches!(mode.as_str(), "echo" | "fanout" | "handshake" | "idle") {
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
            _ => 100,
        },
        payload: if mode == "fanout" { 16 } else { 20 },
        inflight: 1,
        text: false,
        subs: 1000,
        rate: 100.0,
        connect_concurrency: 64,
    };
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--port" => port = Some(val().parse().unwrap_or_else(|_| usage())),
            "--host" => host = val(),
            "--server-pid" => a.server_pid = Some(val().parse().unwrap_or_else(|_| usage())),
            "--duration" => a.duration = val().parse().unwrap_or_else(|_| usage()),
            "--warmup" => a.warmup = val().parse().unwrap_or_else(|_| usage()),
            "--conns" => a.conns = val().parse().unwrap_or_else(|_| usage()),
            "--payload" => a.payload = val().parse().unwrap_or_else(|_| usage()),
            "--inflight" => a.inflight = val().parse().unwrap_or_else(|_| usage()),
            "--subs" => a.subs = val().parse().unwrap_or_else(|_| usage()),
            "--rate" => a.rate = val().parse().unwrap_or_else(|_| usage()),
            "--connect-concurrency" => {
                a.connect_concurrency = val().parse().unwrap_or_else(|_| usage())
            }
            "--text" => a.text = true,
            _ => usage(),
        }
    }
    let port = port.unwrap_or_else(|| usage());
    a.addr = format!("{host}:{port}").parse().unwrap_or_else(|_| usage());
    a.host = format!("{host}:{port}");
    a.payload = a.payload.max(if a.mode == "fanout" { 16 } else { 0 });
    a.inflight = a.inflight.max(1);
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

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: Option<u32>) -> f64 {
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

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU use of the server and of this process over a window.
struct CpuWindow {
    start: Instant,
    server: f64,
    client: f64,
    machine: f64,
    pid: Option<u32>,
}

impl CpuWindow {
    fn start(pid: Option<u32>) -> Self {
        CpuWindow {
            start: Instant::now(),
            server: pid.map_or(f64::NAN, |p| cpu_seconds(Some(p))),
            client: cpu_seconds(None),
            machine: machine_busy_seconds(),
            pid,
        }
    }

    /// (elapsed seconds, server CPU seconds, client CPU seconds); the CPU other processes used
    /// in the window is kept for [`CpuWindow::other_json`].
    fn end(&mut self) -> (f64, f64, f64) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let server = self
            .pid
            .map_or(f64::NAN, |p| cpu_seconds(Some(p)) - self.server);
        let client = cpu_seconds(None) - self.client;
        let machine = machine_busy_seconds() - self.machine;
        // Reuse the field: from now on it holds the other processes' CPU %.
        self.machine = 100.0 * (machine - server - client).max(0.0) / elapsed;
        (elapsed, server, client)
    }

    /// `"other_cpu_pct":X`: CPU (% of one core) used by every other process during the window.
    fn other_json(&self) -> String {
        format!("\"other_cpu_pct\":{}", num(self.machine))
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

/// A masked client frame with `payload`.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | opcode);
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
    f
}

/// A frame event from [`Parser::feed`].
struct Frame<'a> {
    opcode: u8,
    fin: bool,
    len: u64,
    /// The first bytes of the payload (up to 16).
    head: &'a [u8],
}

/// Streaming parser of server frames (unmasked): copies nothing but headers and the first 16
/// payload bytes; large payloads are skipped as they arrive.
#[derive(Default)]
struct Parser {
    hdr: [u8; 14],
    hdr_len: usize,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    in_payload: bool,
    opcode: u8,
    fin: bool,
    len: u64,
    head: [u8; 16],
    head_len: usize,
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
    fn feed(&mut self, mut data: &[u8], mut on_frame: impl FnMut(Frame<'_>)) {
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
                self.fin = self.hdr[0] & 0x80 != 0;
                self.len = len;
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
            self.remaining -= take as u64;
            data = &data[take..];
            if self.remaining > 0 {
                return;
            }
            self.in_payload = false;
            on_frame(Frame {
                opcode: self.opcode,
                fin: self.fin,
                len: self.len,
                head: &self.head[..self.head_len],
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

/// Connects and upgrades; returns the stream and the bytes read past the response head.
async fn connect(args: &Args, path: &str, buf: &mut [u8]) -> io::Result<(TcpStream, usize, usize)> {
    let mut s = TcpStream::connect(args.addr).await?;
    s.set_nodelay(true)?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        args.host
    );
    s.write_all(req.as_bytes()).await?;
    let (start, end) = read_upgrade(&mut s, buf).await?;
    Ok((s, start, end))
}

/// Reads the 101 response; returns the range of `buf` holding bytes past its head.
async fn read_upgrade(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<(usize, usize)> {
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

async fn echo(args: &Args) -> io::Result<String> {
    let payload: Vec<u8> = (0..args.payload).map(|i| b'a' + (i % 26) as u8).collect();
    let op = if args.text { OP_TEXT } else { OP_BINARY };
    let one = client_frame(op, &payload);
    let flen = one.len();
    // K frames back to back: any number of them up to K is one write.
    let frames: Rc<[u8]> = one.repeat(args.inflight).into();
    let k = args.inflight;
    let expect_len = args.payload as u64;

    let conns = connect_many(args, args.conns, "/echo", |s, buf, a, b| {
        Box::pin(async move { Ok((s, buf, a, b)) })
    })
    .await?;

    let received = Rc::new(Cell::new(0u64));
    let errors = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    for (mut s, _buf, a, b) in conns {
        if a != b {
            errors.set(errors.get() + 1);
        }
        let frames = frames.clone();
        let received = received.clone();
        let errors = errors.clone();
        let stop = stop.clone();
        tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut parser = Parser::default();
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
                if bad > 0 {
                    errors.set(errors.get() + bad);
                }
                received.set(received.get() + done as u64);
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
    let mut w = CpuWindow::start(args.server_pid);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let r1 = received.get();
    let (elapsed, server_cpu, client_cpu) = w.end();
    stop.set(true);
    let msgs = r1 - r0;
    let rate = msgs as f64 / elapsed;
    eprintln!(
        "echo {} conns x {} B x {} in flight: {:.0} msg/s, server CPU {:.0}%, client CPU {:.0}%, errors {}",
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
    Ok(format!(
        "{{\"mode\":\"echo\",\"conns\":{},\"payload\":{},\"inflight\":{},\"messages\":{},\"elapsed\":{},\
         \"msg_per_s\":{},\"server_cpu_s\":{},\"client_cpu_s\":{},\"server_cpu_pct\":{},\
         \"client_cpu_pct\":{},\"msg_per_server_cpu_s\":{},\"errors\":{},{}}}",
        args.conns,
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
        w.other_json()
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

async fn fanout(args: &Args) -> io::Result<String> {
    let base = Instant::now();
    let count = (args.rate * args.duration).round().max(1.0) as u64;
    let subs = args.subs;
    let t_connect = Instant::now();
    let conns = connect_many(args, subs, "/room", |mut s, mut buf, a, b| {
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
    for (mut s, mut parser) in conns {
        let lat = lat.clone();
        let received = received.clone();
        let errors = errors.clone();
        let stop = stop.clone();
        tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 16 * 1024];
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
                parser.feed(&buf[..n], |f| {
                    if f.opcode == OP_BINARY && f.fin && f.head.len() == 16 {
                        let seq = u64::from_le_bytes(f.head[..8].try_into().unwrap());
                        let ts = u64::from_le_bytes(f.head[8..16].try_into().unwrap());
                        if seq != next_seq {
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
    let (mut p, a, b) = connect(args, "/room", &mut buf).await?;
    let _ = hello(&mut p, &mut buf, a, b, b"pub").await?;
    let payload = vec![0u8; args.payload];
    let mut frame = client_frame(OP_BINARY, &payload);
    let off = frame.len() - args.payload;
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let mut w = CpuWindow::start(args.server_pid);
    let start = tokio::time::Instant::now();
    for seq in 0..count {
        tokio::time::sleep_until(start + period * seq as u32).await;
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
    eprintln!(
        "fanout {subs} subs at {} msg/s: delivered {got}/{expected}, p50 {p50:.2} ms, p99 {p99:.2} ms, \
         max {max:.2} ms, server CPU {:.0}%, client CPU {:.0}%, errors {}, connect {connect_s:.1}s",
        args.rate,
        100.0 * server_cpu / elapsed,
        100.0 * client_cpu / elapsed,
        errors.get()
    );
    Ok(format!(
        "{{\"mode\":\"fanout\",\"subs\":{subs},\"rate\":{},\"published\":{count},\"expected\":{expected},\
         \"delivered\":{got},\"exact\":{},\"p50_ms\":{},\"p99_ms\":{},\"max_ms\":{},\"mean_ms\":{},\
         \"elapsed\":{},\"publish_s\":{},\"server_cpu_s\":{},\"client_cpu_s\":{},\"server_cpu_pct\":{},\
         \"client_cpu_pct\":{},\"msg_per_s\":{},\"msg_per_server_cpu_s\":{},\"errors\":{},\"connect_s\":{},{}}}",
        args.rate,
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
        w.other_json()
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
    let t = Instant::now();
    // Each connection upgrades and does one 20-byte echo, then stays open and silent.
    let conns = connect_many(args, args.conns, "/echo", move |mut s, mut buf, a, b| {
        let frame = frame.clone();
        Box::pin(async move {
            s.write_all(&frame).await?;
            let mut parser = Parser::default();
            let mut got = false;
            parser.feed(&buf[a..b], |f| got |= f.opcode == OP_BINARY);
            while !got {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Err(io::Error::other("closed before the echo"));
                }
                parser.feed(&buf[..n], |f| got |= f.opcode == OP_BINARY);
            }
            Ok(s)
        })
    })
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
         \"kib_per_conn\":{},\"connect_s\":{}}}",
        num(per),
        num(connect_s)
    ))
}
