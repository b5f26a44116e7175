//! Shared bits of the benchmark clients: the command line, the measured window and the JSON
//! result, so that `cli-endpoint` (endpoint's `Client`) and `cli-tungstenite` (a hand-written
//! tokio-tungstenite client) differ only in the client code they measure.
//!
//! ```text
//! cli-endpoint|cli-tungstenite echo --port P [--conns 100] [--payload 20] [--inflight 1]
//! cli-endpoint|cli-tungstenite idle --port P [--conns 10000] [--connect-concurrency 64]
//! common: [--duration 10] [--warmup 1] [--server-pid PID] [--host 127.0.0.1]
//! ```
//!
//! Both connect to the endpoint benchmark server's `/echo` (`bench/servers`, `srv-endpoint`).
//!
//! - echo: `--conns` connections, each with `--inflight` binary messages of `--payload` bytes in
//!   flight: every echo the client receives it sends back (so K stay in flight). Traffic starts
//!   once every connection is open; after `--warmup` seconds the window of `--duration` seconds
//!   is measured: messages received, this process's CPU (utime + stime of all its threads, from
//!   `/proc/self/stat`), the server's (`/proc/PID/stat`) and everyone else's (`/proc/stat`). A
//!   connection that received nothing in the window counts as stalled (an error).
//! - idle: `--conns` connections, each opened, one 20-byte binary echo, then silent and kept;
//!   the figure is this process's VmRSS growth from before the first connection to 0.5 s (or
//!   `--warmup`) after the last, per connection (and the server's, with `--server-pid`). One
//!   process holds every socket: 10,000 fit the 20,000 open files a process may have here.
//!
//! Prints one JSON object on stdout (the last line; `bench/run` parses it) and a summary on
//! stderr. Every run is bounded: a watchdog thread ends the process after warm-up + duration +
//! 150 s whatever happens, and the process exits by itself when done (its sockets close with it).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The command line (module docs).
#[derive(Debug, Clone)]
pub struct Args {
    /// `echo` or `idle`.
    pub mode: String,
    /// The server's host (loopback).
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// The server's pid, for its CPU and RSS.
    pub server_pid: Option<u32>,
    /// Seconds measured.
    pub duration: f64,
    /// Seconds of traffic before the window (echo); settling time before the RSS (idle).
    pub warmup: f64,
    /// Connections.
    pub conns: usize,
    /// Bytes per echo message.
    pub payload: usize,
    /// Messages in flight per connection.
    pub inflight: usize,
    /// Handshakes at once.
    pub connect_concurrency: usize,
}

impl Args {
    /// `ws://HOST:PORT/echo`.
    pub fn url(&self) -> String {
        format!("ws://{}:{}/echo", self.host, self.port)
    }
}

fn usage(name: &str) -> ! {
    eprintln!(
        "usage: {name} echo|idle --port P [--host H] [--server-pid PID] [--duration S] \
         [--warmup S] [--conns N] [--payload B] [--inflight K] [--connect-concurrency N]"
    );
    std::process::exit(2)
}

/// Parses the command line (`name` for the usage line).
pub fn parse_args(name: &str) -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_else(|| usage(name));
    if !matches!(mode.as_str(), "echo" | "idle") {
        usage(name)
    }
    let mut a = Args {
        conns: if mode == "idle" { 10_000 } else { 100 },
        mode,
        host: "127.0.0.1".into(),
        port: 0,
        server_pid: None,
        duration: 10.0,
        warmup: 1.0,
        payload: 20,
        inflight: 1,
        connect_concurrency: 64,
    };
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage(name));
        match flag.as_str() {
            "--port" => a.port = val().parse().unwrap_or_else(|_| usage(name)),
            "--host" => a.host = val(),
            "--server-pid" => a.server_pid = Some(val().parse().unwrap_or_else(|_| usage(name))),
            "--duration" => a.duration = val().parse().unwrap_or_else(|_| usage(name)),
            "--warmup" => a.warmup = val().parse().unwrap_or_else(|_| usage(name)),
            "--conns" => a.conns = val().parse().unwrap_or_else(|_| usage(name)),
            "--payload" => a.payload = val().parse().unwrap_or_else(|_| usage(name)),
            "--inflight" => a.inflight = val().parse().unwrap_or_else(|_| usage(name)),
            "--connect-concurrency" => {
                a.connect_concurrency = val().parse().unwrap_or_else(|_| usage(name))
            }
            _ => usage(name),
        }
    }
    if a.port == 0 || a.conns == 0 || a.inflight == 0 {
        usage(name)
    }
    a
}

/// Ends the process (with an error result) if the run has not finished within warm-up +
/// duration + 150 s: connecting 10,000 sockets takes a few seconds, so this only fires when
/// something hangs.
pub fn watchdog(args: &Args, client: &'static str) {
    let limit = Duration::from_secs_f64(args.warmup + args.duration + 150.0);
    let mode = args.mode.clone();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("{client} {mode}: watchdog: not done after {limit:?}, exiting");
        println!(
            "{{\"mode\":\"client-{mode}\",\"client\":\"{client}\",\"error\":\"watchdog: not done after {} s\"}}",
            limit.as_secs()
        );
        std::process::exit(3)
    });
}

/// Prints the result (or the error as a JSON result) and exits: open sockets close with the
/// process.
pub fn finish(args: &Args, client: &str, result: io::Result<String>) -> ! {
    match result {
        Ok(json) => {
            println!("{json}");
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("{client} {}: {e}", args.mode);
            println!(
                "{{\"mode\":\"client-{}\",\"client\":\"{client}\",\"error\":{:?}}}",
                args.mode,
                e.to_string()
            );
            std::process::exit(1)
        }
    }
}

/// The echo payload: `--payload` bytes of `abc...z` repeated (as the load generator's).
pub fn payload(len: usize) -> Bytes {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Runs `open(i)` for `i` in `0..n`, at most `concurrency` at once, and returns the results in
/// order, or the first error. `concurrency` tasks take the next index in turn (rather than one
/// task per connection): a finished task's cell, which holds its whole future (a handshake's
/// state), would otherwise stay allocated until joined, and inflate the RSS the idle case
/// measures.
pub async fn connect_all<T, F, Fut>(n: usize, concurrency: usize, open: F) -> io::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = io::Result<T>> + Send + 'static,
{
    let open = Arc::new(open);
    let next = Arc::new(AtomicU64::new(0));
    let slots: Arc<std::sync::Mutex<Vec<Option<T>>>> =
        Arc::new(std::sync::Mutex::new((0..n).map(|_| None).collect()));
    let workers: Vec<_> = (0..concurrency.clamp(1, n.max(1)))
        .map(|_| {
            let (open, next, slots) = (open.clone(), next.clone(), slots.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= n {
                        return Ok::<(), io::Error>(());
                    }
                    let value = open(i).await?;
                    slots.lock().expect("slots")[i] = Some(value);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.map_err(io::Error::other)??;
    }
    let slots = std::mem::take(&mut *slots.lock().expect("slots"));
    Ok(slots
        .into_iter()
        .map(|v| v.expect("every slot filled"))
        .collect())
}

/// What the echo connections count: echoes received per connection, errors, and whether the
/// measured window is over (after which a closing connection is no error).
#[derive(Debug)]
pub struct EchoCounters {
    /// Echoes received, per connection.
    pub per_conn: Vec<AtomicU64>,
    /// Wrong replies (length, kind), closes and failed sends before the end.
    pub errors: AtomicU64,
    /// Set when the window is over.
    pub stop: AtomicBool,
}

impl EchoCounters {
    /// Counters for `n` connections.
    pub fn new(n: usize) -> Arc<Self> {
        Arc::new(EchoCounters {
            per_conn: (0..n).map(|_| AtomicU64::new(0)).collect(),
            errors: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        })
    }

    /// One echo received on connection `i`.
    #[inline]
    pub fn received(&self, i: usize) {
        self.per_conn[i].fetch_add(1, Ordering::Relaxed);
    }

    /// One error (ignored once the window is over).
    pub fn error(&self) {
        if !self.stop.load(Ordering::Relaxed) {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> Vec<u64> {
        self.per_conn
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

/// Waits the warm-up, measures the window and returns the JSON result of an echo run (the
/// traffic is already running).
pub async fn measure_echo(
    args: &Args,
    client: &str,
    counters: &EchoCounters,
    connect_s: f64,
) -> io::Result<String> {
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let c0 = counters.snapshot();
    let mut w = CpuWindow::start(args.server_pid);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let c1 = counters.snapshot();
    let (elapsed, server_cpu, client_cpu) = w.end();
    counters.stop.store(true, Ordering::Relaxed);
    let msgs: u64 = c1.iter().zip(&c0).map(|(b, a)| b - a).sum();
    let stalled = c1.iter().zip(&c0).filter(|(b, a)| b == a).count() as u64;
    let errors = counters.errors.load(Ordering::Relaxed) + stalled;
    let rate = msgs as f64 / elapsed;
    eprintln!(
        "{client} client echo {} conns x {} B x {} in flight: {rate:.0} msg/s, client CPU {:.0}% \
         ({:.0} msg per client CPU-s), server CPU {:.0}%, errors {errors} ({stalled} stalled)",
        args.conns,
        args.payload,
        args.inflight,
        100.0 * client_cpu / elapsed,
        msgs as f64 / client_cpu,
        100.0 * server_cpu / elapsed,
    );
    if msgs == 0 {
        return Err(io::Error::other("no echo received"));
    }
    Ok(format!(
        "{{\"mode\":\"client-echo\",\"client\":\"{client}\",\"conns\":{},\"payload\":{},\"inflight\":{},\
         \"messages\":{msgs},\"elapsed\":{},\"msg_per_s\":{},\"client_cpu_s\":{},\"server_cpu_s\":{},\
         \"client_cpu_pct\":{},\"server_cpu_pct\":{},\"msg_per_client_cpu_s\":{},\
         \"msg_per_server_cpu_s\":{},\"errors\":{errors},\"stalled\":{stalled},\"connect_s\":{},{}}}",
        args.conns,
        args.payload,
        args.inflight,
        num(elapsed),
        num(rate),
        num(client_cpu),
        num(server_cpu),
        num(100.0 * client_cpu / elapsed),
        num(100.0 * server_cpu / elapsed),
        num(msgs as f64 / client_cpu),
        num(msgs as f64 / server_cpu),
        num(connect_s),
        w.other_json()
    ))
}

/// The RSS of this process and of the server before an idle run.
#[derive(Debug, Clone, Copy)]
pub struct IdleBaseline {
    client_kib: u64,
    server_kib: Option<u64>,
    start: Instant,
}

impl IdleBaseline {
    /// Reads both RSS now.
    pub fn take(args: &Args) -> io::Result<Self> {
        Ok(IdleBaseline {
            client_kib: self_rss_kib()?,
            server_kib: args.server_pid.and_then(rss_kib),
            start: Instant::now(),
        })
    }

    /// After the `n` connections are open: settles, reads both RSS again and returns the JSON
    /// result.
    pub async fn report(self, args: &Args, client: &str, n: usize) -> io::Result<String> {
        let connect_s = self.start.elapsed().as_secs_f64();
        // Let the allocator and the runtime settle (lazy frees), as the server's idle case does.
        tokio::time::sleep(Duration::from_secs_f64(args.warmup.max(0.5))).await;
        let after = self_rss_kib()?;
        let server_after = args.server_pid.and_then(rss_kib);
        let per = (after as f64 - self.client_kib as f64) / n as f64;
        let server_per = match (self.server_kib, server_after) {
            (Some(a), Some(b)) => (b as f64 - a as f64) / n as f64,
            _ => f64::NAN,
        };
        eprintln!(
            "{client} client idle {n} connections: client RSS {} -> {after} KiB, {per:.2} KiB/conn \
             (server {server_per:.2} KiB/conn), opened in {connect_s:.1}s",
            self.client_kib
        );
        let opt = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
        Ok(format!(
            "{{\"mode\":\"client-idle\",\"client\":\"{client}\",\"conns\":{n},\"rss_before_kib\":{},\
             \"rss_after_kib\":{after},\"kib_per_conn\":{},\"server_rss_before_kib\":{},\
             \"server_rss_after_kib\":{},\"server_kib_per_conn\":{},\"connect_s\":{}}}",
            self.client_kib,
            num(per),
            opt(self.server_kib),
            opt(server_after),
            num(server_per),
            num(connect_s)
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// /proc sampling (as bench/loadgen does)

/// utime + stime of a process (all its threads; this one with `None`), in seconds.
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
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

/// Busy CPU time of the whole machine (all cores, every process), in seconds.
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

fn rss_in(path: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    rss_in(&format!("/proc/{pid}/status"))
}

/// VmRSS of this process, in KiB.
pub fn self_rss_kib() -> io::Result<u64> {
    rss_in("/proc/self/status").ok_or_else(|| io::Error::other("cannot read this process's VmRSS"))
}

/// CPU use of the server, of this process and of everyone else over a window.
struct CpuWindow {
    start: Instant,
    server: f64,
    client: f64,
    machine: f64,
    other_pct: f64,
    pid: Option<u32>,
}

impl CpuWindow {
    fn start(pid: Option<u32>) -> Self {
        CpuWindow {
            start: Instant::now(),
            server: pid.map_or(f64::NAN, |p| cpu_seconds(Some(p))),
            client: cpu_seconds(None),
            machine: machine_busy_seconds(),
            other_pct: f64::NAN,
            pid,
        }
    }

    /// (elapsed seconds, server CPU seconds, client CPU seconds).
    fn end(&mut self) -> (f64, f64, f64) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let server = self
            .pid
            .map_or(f64::NAN, |p| cpu_seconds(Some(p)) - self.server);
        let client = cpu_seconds(None) - self.client;
        let machine = machine_busy_seconds() - self.machine;
        let known = client + if server.is_finite() { server } else { 0.0 };
        self.other_pct = 100.0 * (machine - known).max(0.0) / elapsed;
        (elapsed, server, client)
    }

    fn other_json(&self) -> String {
        format!("\"other_cpu_pct\":{}", num(self.other_pct))
    }
}

/// A JSON number (`null` when not finite).
pub fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "null".into()
    }
}
