//! The load engine: many connections on a few threads, closed or open loop.
//!
//! Each thread runs a `current_thread` tokio runtime and owns its share of
//! the connections; a thread never hands work to another, so a request costs
//! one patch of the template, one write, one read and a boundary scan.
//! Statistics are per thread (an HDR histogram each) and merged at the end.
//!
//! * **Closed loop** (`rate: None`): every connection sends `pipeline`
//!   requests, waits for all their replies, and sends again. Latency runs
//!   from the write to the read that completed the reply.
//! * **Open loop** (`rate: Some(r)`): a pacer thread releases requests at
//!   `r` per second over all connections ([`Schedule`]); a connection sends
//!   each released request at once, without waiting for earlier replies (up
//!   to `max_outstanding` in flight), and latency runs from the moment the
//!   request was *due*. The pacer sleeps with the OS's high-resolution
//!   timer, because tokio's timer wheel has a 1 ms granularity that would
//!   itself add up to a millisecond to every measured latency.
//!
//! Only requests that start (closed loop) or are due (open loop) inside the
//! measurement window are counted. After the window the run waits up to
//! `drain` for their replies; those still missing are reported as
//! `unfinished`, never silently dropped.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::conn::{Conn, Connector, Target};
use super::resp::{reply_len, reply_text, Template};
use super::schedule::{Schedule, Window};
use super::workload::Workload;
use super::BenchError;

/// What to run against one target.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The command.
    pub workload: Workload,
    /// Connections, all open before the run starts.
    pub connections: usize,
    /// Requests per write in the closed loop (1 = no pipelining).
    pub pipeline: usize,
    /// Open loop at this many requests per second in total; closed loop when `None`.
    pub rate: Option<f64>,
    /// Run, unmeasured, before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Keys are drawn uniformly from `0..keyspace`.
    pub keyspace: u64,
    /// Threads with a runtime each.
    pub threads: usize,
    /// How long to wait for replies to measured requests after the window.
    pub drain: Duration,
    /// Open loop: requests one connection may have in flight.
    pub max_outstanding: usize,
}

impl RunSpec {
    /// A closed-loop run with the defaults of the command line.
    pub fn closed(workload: Workload, connections: usize, pipeline: usize) -> Self {
        Self {
            workload,
            connections,
            pipeline,
            rate: None,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(5),
            keyspace: 100_000,
            threads: 1,
            drain: Duration::from_secs(5),
            max_outstanding: 1024,
        }
    }

    fn check(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::Config(m.into()));
        if self.connections == 0 {
            return bad("at least one connection");
        }
        if self.pipeline == 0 {
            return bad("the pipeline must be at least 1");
        }
        if self.rate.is_some() && self.pipeline > 1 {
            return bad(
                "an open-loop run sends each request when it is due; pipelining does not apply",
            );
        }
        if self.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return bad("the rate must be a positive number of requests per second");
        }
        if self.keyspace == 0 || self.keyspace > super::resp::MAX_KEYSPACE {
            return bad("the keyspace must be between 1 and 10^12");
        }
        if self.duration.is_zero() {
            return bad("the duration must be positive");
        }
        if self.threads == 0 || self.max_outstanding == 0 {
            return bad("threads and max outstanding must be at least 1");
        }
        Ok(())
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Self {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1e6,
        }
    }
}

/// The outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub workload: Workload,
    pub connections: usize,
    pub pipeline: usize,
    /// The open-loop rate asked for.
    pub rate: Option<f64>,
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// Successful replies to measured requests.
    pub ops: u64,
    /// `ops / seconds`.
    pub ops_per_sec: f64,
    /// Error replies to measured requests.
    pub errors: u64,
    /// A few distinct error replies.
    pub error_samples: Vec<String>,
    /// Connections lost during the run.
    pub io_errors: u64,
    /// Why, for the first few.
    pub io_error_samples: Vec<String>,
    /// Measured requests still without a reply when the drain timed out.
    pub unfinished: u64,
    /// Latency of successful and error replies alike.
    pub latency: Latency,
    /// Open loop: how late requests left after they were due (client-side lag).
    pub send_lag: Option<Latency>,
}

/// The two moments a caller may want to sample around: the window's edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The measured window begins (warmup is over).
    Start,
    /// The measured window ends.
    End,
}

/// Distinct samples kept per kind of failure.
const SAMPLES: usize = 5;

/// Per-thread counters and histograms.
struct Stats {
    latency: Histogram<u64>,
    lag: Histogram<u64>,
    ops: u64,
    errors: u64,
    error_samples: Vec<String>,
    io_errors: u64,
    io_samples: Vec<String>,
    /// Measured requests sent and not yet answered.
    in_flight: u64,
}

/// Histogram range: 1 ns to 100 s, 3 significant digits.
fn histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)] // constant, valid bounds
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

impl Stats {
    fn new() -> Self {
        Self {
            latency: histogram(),
            lag: histogram(),
            ops: 0,
            errors: 0,
            error_samples: Vec::new(),
            io_errors: 0,
            io_samples: Vec::new(),
            in_flight: 0,
        }
    }

    fn reply(&mut self, latency_ns: u64, error: Option<&[u8]>) {
        self.latency.saturating_record(latency_ns.max(1));
        self.in_flight = self.in_flight.saturating_sub(1);
        match error {
            None => self.ops += 1,
            Some(reply) => {
                self.errors += 1;
                if self.error_samples.len() < SAMPLES {
                    let text = reply_text(reply);
                    if !self.error_samples.contains(&text) {
                        self.error_samples.push(text);
                    }
                }
            }
        }
    }

    fn io_error(&mut self, e: &BenchError) {
        self.io_errors += 1;
        if self.io_samples.len() < SAMPLES {
            self.io_samples.push(e.to_string());
        }
    }

    fn merge(&mut self, other: Stats) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.lag.add(&other.lag);
        self.ops += other.ops;
        self.errors += other.errors;
        self.io_errors += other.io_errors;
        self.in_flight += other.in_flight;
        for s in other.error_samples {
            if self.error_samples.len() < SAMPLES && !self.error_samples.contains(&s) {
                self.error_samples.push(s);
            }
        }
        for s in other.io_samples {
            if self.io_samples.len() < SAMPLES {
                self.io_samples.push(s);
            }
        }
    }
}

/// The open-loop pacer's handle on one connection.
struct Pace {
    /// Requests of this connection released so far.
    released: AtomicU64,
    /// No more will be released.
    done: AtomicBool,
    notify: Notify,
}

/// What every connection of a run shares.
struct Shared {
    /// `pipeline` requests back to back.
    template: Template,
    pipeline: u64,
    keyspace: u64,
    window: Window,
    schedule: Option<Schedule>,
    max_outstanding: usize,
}

/// Runs `spec` against `target`; `probe` is called at the window's start and
/// end (from the calling thread, while the load runs elsewhere).
pub fn run(
    target: &Target,
    spec: &RunSpec,
    probe: &mut dyn FnMut(Edge),
) -> Result<RunResult, BenchError> {
    spec.check()?;
    let connector = Connector::new(target)?;
    let prepared = runtime()?.block_on(async {
        let mut conn = connector.connect().await?;
        spec.workload.prepare(&mut conn).await
    })?;
    let template = Template::new(&spec.workload.args(&prepared));
    let threads = spec.threads.min(spec.connections);
    let schedule = match spec.rate {
        Some(rate) => Some(
            Schedule::new(rate, spec.connections)
                .ok_or_else(|| BenchError::Config("the rate must be positive".into()))?,
        ),
        None => None,
    };
    let shared = Arc::new(Shared {
        template: template.repeat(spec.pipeline),
        pipeline: spec.pipeline as u64,
        keyspace: spec.keyspace,
        window: Window::new(spec.warmup, spec.duration),
        schedule,
        max_outstanding: spec.max_outstanding,
    });
    let paces: Vec<Arc<Pace>> = (0..spec.connections)
        .map(|_| {
            Arc::new(Pace {
                released: AtomicU64::new(0),
                done: AtomicBool::new(false),
                notify: Notify::new(),
            })
        })
        .collect();

    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), BenchError>>();
    let mut starts = Vec::new();
    let mut handles = Vec::new();
    for t in 0..threads {
        let (start_tx, start_rx) = mpsc::channel::<Instant>();
        starts.push(start_tx);
        let conns: Vec<(usize, Arc<Pace>)> = (t..spec.connections)
            .step_by(threads)
            .map(|c| (c, paces[c].clone()))
            .collect();
        let connector = connector.clone();
        let shared = shared.clone();
        let ready_tx = ready_tx.clone();
        let deadline = spec.warmup + spec.duration + spec.drain;
        let handle = std::thread::Builder::new()
            .name(format!("bench-io-{t}"))
            .spawn(move || io_thread(&connector, &shared, conns, ready_tx, &start_rx, deadline))
            .map_err(|e| BenchError::Io(format!("spawning a thread: {e}")))?;
        handles.push(handle);
    }
    drop(ready_tx);
    let mut failure = None;
    for _ in 0..threads {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(_) => {
                failure.get_or_insert(BenchError::Io(
                    "a load thread stopped while connecting".into(),
                ));
            }
        }
    }
    if let Some(e) = failure {
        // Dropping the start senders lets every thread return.
        drop(starts);
        for h in handles {
            let _ = h.join();
        }
        return Err(e);
    }

    let start = Instant::now() + Duration::from_millis(2);
    for s in &starts {
        let _ = s.send(start);
    }
    let pacer = match schedule {
        Some(schedule) => {
            let end_ns = shared.window.end_ns;
            Some(
                std::thread::Builder::new()
                    .name("bench-pacer".into())
                    .spawn(move || pace(schedule, &paces, start, end_ns))
                    .map_err(|e| BenchError::Io(format!("spawning the pacer: {e}")))?,
            )
        }
        None => None,
    };
    sleep_until(start + spec.warmup);
    probe(Edge::Start);
    sleep_until(start + spec.warmup + spec.duration);
    probe(Edge::End);

    let mut stats = Stats::new();
    for h in handles {
        match h.join() {
            Ok(s) => stats.merge(s),
            Err(_) => return Err(BenchError::Io("a load thread panicked".into())),
        }
    }
    if let Some(p) = pacer {
        let _ = p.join();
    }
    let seconds = shared.window.seconds();
    Ok(RunResult {
        workload: spec.workload,
        connections: spec.connections,
        pipeline: spec.pipeline,
        rate: spec.rate,
        seconds,
        ops: stats.ops,
        ops_per_sec: stats.ops as f64 / seconds,
        errors: stats.errors,
        error_samples: stats.error_samples,
        io_errors: stats.io_errors,
        io_error_samples: stats.io_samples,
        unfinished: stats.in_flight,
        latency: Latency::of(&stats.latency),
        send_lag: spec.rate.map(|_| Latency::of(&stats.lag)),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Io(format!("tokio runtime: {e}")))
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Connections opened at once per thread: a burst of a thousand SYNs
/// would overflow a listen backlog and measure the kernel's retry timer.
const CONNECT_BATCH: usize = 64;

fn io_thread(
    connector: &Connector,
    shared: &Arc<Shared>,
    conns: Vec<(usize, Arc<Pace>)>,
    // Owned, so that it is gone once this thread has reported (or died):
    // the caller then never waits for a thread that cannot answer.
    ready: mpsc::Sender<Result<(), BenchError>>,
    start: &mpsc::Receiver<Instant>,
    deadline: Duration,
) -> Stats {
    let stats = Rc::new(RefCell::new(Stats::new()));
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return Stats::new();
        }
    };
    let local = tokio::task::LocalSet::new();
    let opened = local.block_on(&rt, async {
        let mut opened = Vec::with_capacity(conns.len());
        for chunk in conns.chunks(CONNECT_BATCH) {
            let mut set = tokio::task::JoinSet::new();
            for (i, (c, pace)) in chunk.iter().enumerate() {
                let connector = connector.clone();
                let (c, pace) = (*c, pace.clone());
                set.spawn_local(async move { (i, c, pace, connector.connect().await) });
            }
            let mut got: Vec<_> = set.join_all().await;
            got.sort_by_key(|g| g.0);
            for (_, c, pace, conn) in got {
                opened.push((c, pace, conn?));
            }
        }
        Ok::<_, BenchError>(opened)
    });
    let opened = match opened {
        Ok(o) => {
            let _ = ready.send(Ok(()));
            drop(ready);
            o
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return Stats::new();
        }
    };
    let Ok(start) = start.recv() else {
        return Stats::new();
    };
    local.block_on(&rt, async {
        let mut tasks = tokio::task::JoinSet::new();
        for (c, pace, conn) in opened {
            let shared = shared.clone();
            let stats = stats.clone();
            tasks.spawn_local(async move {
                let outcome = match conn {
                    Conn::Plain(s) => drive(s, c, &pace, &shared, &stats, start).await,
                    Conn::Tls(s) => drive(*s, c, &pace, &shared, &stats, start).await,
                };
                if let Err(e) = outcome {
                    stats.borrow_mut().io_error(&e);
                }
            });
        }
        // Every task ends by itself once its requests are answered; the
        // deadline bounds the wait for a server that stopped answering, and
        // what is still in flight then counts as unfinished.
        let until = tokio::time::Instant::from_std(start + deadline);
        let _ =
            tokio::time::timeout_at(until, async { while tasks.join_next().await.is_some() {} })
                .await;
        tasks.abort_all();
    });
    drop(local);
    match Rc::try_unwrap(stats) {
        Ok(cell) => cell.into_inner(),
        Err(rc) => std::mem::replace(&mut *rc.borrow_mut(), Stats::new()),
    }
}

/// Reads into a growable buffer and scans out whole replies.
struct Replies {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// Largest single reply the reader buffers.
const MAX_BUFFER: usize = 64 * 1024 * 1024;

impl Replies {
    fn new() -> Self {
        Self {
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// Reads once; `Ok(false)` at end of stream.
    async fn fill<S: AsyncRead + Unpin>(&mut self, s: &mut S) -> Result<bool, BenchError> {
        self.make_room()?;
        let n = s
            .read(&mut self.buf[self.end..])
            .await
            .map_err(|e| BenchError::Io(format!("read: {e}")))?;
        self.end += n;
        Ok(n > 0)
    }

    fn make_room(&mut self) -> Result<(), BenchError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end < self.buf.len() {
            return Ok(());
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        } else if self.buf.len() < MAX_BUFFER {
            self.buf.resize(self.buf.len() * 2, 0);
        } else {
            return Err(BenchError::Protocol("a reply larger than 64 MiB".into()));
        }
        Ok(())
    }

    /// The next whole reply: its bytes and whether it is an error.
    fn next(&mut self) -> Result<Option<(&[u8], bool)>, BenchError> {
        match reply_len(&self.buf[self.start..self.end])? {
            None => Ok(None),
            Some((len, error)) => {
                let reply = &self.buf[self.start..self.start + len];
                self.start += len;
                Ok(Some((reply, error)))
            }
        }
    }
}

fn nanos_since(start: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(start).as_nanos() as u64
}

async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    conn: usize,
    pace: &Pace,
    shared: &Shared,
    stats: &RefCell<Stats>,
    start: Instant,
) -> Result<(), BenchError> {
    let mut rng = StdRng::from_entropy();
    let mut template = shared.template.clone();
    let mut replies = Replies::new();
    let keyspace = shared.keyspace;
    let window = shared.window;
    let Some(schedule) = shared.schedule else {
        // Closed loop.
        let pipeline = shared.pipeline;
        loop {
            let sent = Instant::now();
            let t = nanos_since(start, sent);
            if t >= window.end_ns {
                return Ok(());
            }
            template.patch(|| rng.gen_range(0..keyspace));
            let measured = window.contains(t);
            if measured {
                stats.borrow_mut().in_flight += pipeline;
            }
            s.write_all(template.bytes())
                .await
                .map_err(|e| BenchError::Io(format!("write: {e}")))?;
            let mut left = pipeline;
            while left > 0 {
                if !replies.fill(&mut s).await? {
                    return Err(BenchError::Io("connection closed by the server".into()));
                }
                let latency = nanos_since(sent, Instant::now());
                while left > 0 {
                    let Some((reply, error)) = replies.next()? else {
                        break;
                    };
                    left -= 1;
                    if measured {
                        stats.borrow_mut().reply(latency, error.then_some(reply));
                    }
                }
            }
        }
    };

    // Open loop.
    let mut due: VecDeque<u64> = VecDeque::with_capacity(shared.max_outstanding);
    let mut out: Vec<u8> = Vec::with_capacity(template.bytes().len() * 16);
    let mut next: u64 = 0;
    loop {
        let released = pace.released.load(Ordering::Acquire);
        let done = pace.done.load(Ordering::Acquire);
        if next < released && due.len() < shared.max_outstanding {
            out.clear();
            let now = nanos_since(start, Instant::now());
            {
                let mut st = stats.borrow_mut();
                while next < released && due.len() < shared.max_outstanding {
                    let at = schedule.due_ns(schedule.global_index(conn, next));
                    template.patch(|| rng.gen_range(0..keyspace));
                    out.extend_from_slice(template.bytes());
                    due.push_back(at);
                    if window.contains(at) {
                        st.in_flight += 1;
                        st.lag.saturating_record(now.saturating_sub(at).max(1));
                    }
                    next += 1;
                }
            }
            s.write_all(&out)
                .await
                .map_err(|e| BenchError::Io(format!("write: {e}")))?;
        }
        if done && next >= released && due.is_empty() {
            return Ok(());
        }
        tokio::select! {
            biased;
            filled = replies.fill(&mut s) => {
                if !filled? {
                    return Err(BenchError::Io("connection closed by the server".into()));
                }
                let now = nanos_since(start, Instant::now());
                while let Some((reply, error)) = replies.next()? {
                    let Some(at) = due.pop_front() else {
                        return Err(BenchError::Protocol(format!("a reply nobody asked for: {}", reply_text(reply))));
                    };
                    if window.contains(at) {
                        stats.borrow_mut().reply(now.saturating_sub(at), error.then_some(reply));
                    }
                }
            }
            () = pace.notify.notified() => {}
        }
    }
}

/// Releases requests on the schedule until the window ends, then tells every
/// connection that no more will come.
fn pace(schedule: Schedule, paces: &[Arc<Pace>], start: Instant, end_ns: u64) {
    // Linux lets a sleeping thread wake up to 50 µs late by default (timer
    // slack, to coalesce wake-ups); every microsecond of that would count as
    // latency, so this thread asks for none. If it cannot, the send lag in
    // the result shows what it cost.
    let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
    let n = paces.len();
    let mut released: u64 = 0;
    loop {
        let now = nanos_since(start, Instant::now());
        let due = schedule.due_by(now.min(end_ns.saturating_sub(1)));
        while released < due {
            let p = &paces[(released % n as u64) as usize];
            p.released.fetch_add(1, Ordering::Release);
            p.notify.notify_one();
            released += 1;
        }
        if now >= end_ns {
            break;
        }
        let next = schedule.due_ns(released).min(end_ns);
        std::thread::sleep(Duration::from_nanos(next.saturating_sub(now)));
    }
    for p in paces {
        p.done.store(true, Ordering::Release);
        p.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::atomic::AtomicU64;

    use tokio::net::TcpListener;

    use super::*;

    /// A RESP server on loopback that answers every request with `+OK`, or
    /// with an error for every `error_every`-th, and counts what it answered.
    fn responder(error_every: u64) -> (std::net::SocketAddr, Arc<AtomicU64>) {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let answered = Arc::new(AtomicU64::new(0));
        let count = answered.clone();
        std::thread::spawn(move || {
            let rt = runtime().unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((mut s, _)) = listener.accept().await else {
                        return;
                    };
                    let count = count.clone();
                    tokio::spawn(async move {
                        let mut replies = Replies::new();
                        let mut out = Vec::new();
                        loop {
                            match replies.fill(&mut s).await {
                                Ok(true) => {}
                                _ => return,
                            }
                            out.clear();
                            // Requests are RESP arrays: the reply scanner splits them too.
                            while let Ok(Some(_)) = replies.next() {
                                let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                                if error_every > 0 && n.is_multiple_of(error_every) {
                                    out.extend_from_slice(b"-ERR synthetic\r\n");
                                } else {
                                    out.extend_from_slice(b"+OK\r\n");
                                }
                            }
                            if s.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
        });
        (addr, answered)
    }

    fn spec(rate: Option<f64>, connections: usize, pipeline: usize) -> RunSpec {
        RunSpec {
            rate,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(500),
            drain: Duration::from_secs(5),
            ..RunSpec::closed(Workload::Set, connections, pipeline)
        }
    }

    #[test]
    fn closed_loop_counts_every_measured_reply() {
        let (addr, answered) = responder(0);
        let mut edges = Vec::new();
        let r = run(&Target::plain(addr), &spec(None, 4, 8), &mut |e| {
            edges.push(e)
        })
        .unwrap();
        assert_eq!(edges, vec![Edge::Start, Edge::End]);
        assert!(r.ops > 0);
        assert_eq!((r.errors, r.io_errors, r.unfinished), (0, 0, 0));
        // Warmup and the setup check are answered too, but not counted.
        assert!(answered.load(Ordering::Relaxed) > r.ops);
        assert!((r.ops_per_sec - r.ops as f64 / 0.5).abs() < 1e-6);
        assert!(r.latency.p50_ms > 0.0 && r.latency.p50_ms <= r.latency.max_ms);
        assert!(r.send_lag.is_none());
    }

    #[test]
    fn open_loop_sends_exactly_the_requests_due_in_the_window() {
        let (addr, _) = responder(0);
        // 2,000/s over a 0.5 s window after 0.1 s: requests 200 to 1199 are measured.
        let r = run(&Target::plain(addr), &spec(Some(2000.0), 7, 1), &mut |_| {}).unwrap();
        assert_eq!(r.ops, 1000);
        assert_eq!(r.ops_per_sec, 2000.0);
        assert_eq!((r.errors, r.unfinished), (0, 0));
        assert!(r.send_lag.is_some());
    }

    #[test]
    fn error_replies_are_counted_and_sampled() {
        let (addr, _) = responder(3);
        let r = run(&Target::plain(addr), &spec(Some(1000.0), 2, 1), &mut |_| {}).unwrap();
        assert_eq!(r.ops + r.errors, 500);
        assert!(r.errors >= 160 && r.errors <= 170, "{} errors", r.errors);
        assert_eq!(r.error_samples, vec!["-ERR synthetic".to_string()]);
    }

    #[test]
    fn a_silent_server_leaves_measured_requests_unfinished() {
        // Accepts connections and reads, never answers (after the setup check).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut first = true;
            let mut held = Vec::new();
            for s in listener.incoming() {
                let Ok(mut s) = s else { return };
                if first {
                    // The setup connection: answer its one check.
                    first = false;
                    let mut buf = [0u8; 256];
                    let _ = std::io::Read::read(&mut s, &mut buf);
                    let _ = std::io::Write::write_all(&mut s, b"+OK\r\n");
                }
                held.push(s);
            }
        });
        let mut s = spec(Some(200.0), 2, 1);
        s.drain = Duration::from_millis(200);
        let r = run(&Target::plain(addr), &s, &mut |_| {}).unwrap();
        assert_eq!(r.ops, 0);
        assert_eq!(r.unfinished, 100);
    }

    #[test]
    fn bad_specs_are_refused_before_connecting() {
        let nowhere = Target::plain("127.0.0.1:9".parse().unwrap());
        for bad in [
            spec(None, 0, 1),
            spec(None, 1, 0),
            spec(Some(100.0), 1, 4),
            spec(Some(-1.0), 1, 1),
            RunSpec {
                keyspace: 0,
                ..spec(None, 1, 1)
            },
        ] {
            assert!(
                matches!(run(&nowhere, &bad, &mut |_| {}), Err(BenchError::Config(_))),
                "{bad:?}"
            );
        }
    }
}
