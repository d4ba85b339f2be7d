//! `raftlimit-bench`: load generator (`run`) and side-by-side suite (`suite`).
//!
//! `run` drives one target at a given address, closed loop (`-c`, `-P`) or
//! open loop (`--rate`), and prints the throughput and latency percentiles
//! (`--json` for the machine-readable result). `suite` starts raftlimit
//! clusters and redis-server instances itself, measures them side by side
//! and rewrites the results section of `docs/benchmarks.md` and its SVG
//! curve (`make bench`). See `docs/benchmarks.md`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use raftlimit_client::bench::suite::{self, SuiteOptions, TargetKind};
use raftlimit_client::bench::{
    self, report, Edge, RunResult, RunSpec, Target, TlsOptions, Workload,
};

#[derive(Parser, Debug)]
#[command(
    name = "raftlimit-bench",
    version,
    about = "Load generator and side-by-side benchmark for raftlimit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Drive one target with one workload and print the result.
    Run(RunArgs),
    /// Start raftlimit and redis-server, measure them side by side, write the report.
    Suite(SuiteArgs),
}

#[derive(Args, Debug)]
struct SuiteArgs {
    /// A short subset for development (three workloads, three settings, short windows).
    #[arg(long)]
    quick: bool,
    /// Comma-separated targets: leader, follower, secure, redis-always, redis-everysec.
    #[arg(long, value_delimiter = ',')]
    targets: Option<Vec<TargetKind>>,
    /// Comma-separated workloads (see `run --help`).
    #[arg(long, value_delimiter = ',')]
    workloads: Option<Vec<Workload>>,
    /// Comma-separated connection counts without pipelining.
    #[arg(long, value_delimiter = ',')]
    connections: Option<Vec<usize>>,
    /// Pipeline depth of the pipelined setting (at 50 connections; 0: none).
    #[arg(long)]
    pipelined: Option<usize>,
    /// Measured time per cell.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Unmeasured time before each cell's window.
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Measured time of the goal cells (RL.CHECK and the limits script, 50 connections).
    #[arg(long, value_parser = parse_duration)]
    goal_duration: Option<Duration>,
    /// Length of the long RL.CHECK run through the leader (default 60s, none with --quick; 0 skips it).
    #[arg(long, value_parser = parse_duration)]
    steady: Option<Duration>,
    /// Keys are drawn from 0..keyspace.
    #[arg(short = 'r', long)]
    keyspace: Option<u64>,
    /// Load threads.
    #[arg(short = 't', long)]
    threads: Option<usize>,
    /// Refuse to publish when other processes used more than this share of the CPUs (percent).
    #[arg(long, default_value_t = 15.0)]
    busy_threshold: f64,
    /// The raftlimit-server binary (default: $RAFTLIMIT_SERVER_BIN, $RAFTLIMIT_BIN_DIR, or next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Parent of the servers' data directories; must be disk-backed (default $TMPDIR or /tmp).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Keep configs, data and logs.
    #[arg(long)]
    keep: bool,
    /// The document whose generated section is rewritten.
    #[arg(long, default_value = "docs/benchmarks.md")]
    doc: PathBuf,
    /// The latency curve (SVG), linked from the document.
    #[arg(long, default_value = "docs/bench-latency.svg")]
    svg: PathBuf,
    /// Raw results (JSON) and the rendered section go here, published or not.
    #[arg(long, default_value = "bench-results")]
    results_dir: PathBuf,
    /// Print the report without touching the document or the SVG.
    #[arg(long)]
    no_publish: bool,
    /// Print how many measurements would run and how long they would take, then stop.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// host:port of the RESP (or TLS) port.
    #[arg(long, default_value = "127.0.0.1:7001")]
    addr: String,
    /// rl-check-gcra, rl-check-sliding, rl-check-fixed, rl-mcheck, cl-throttle, set, get, incr, limits-evalsha.
    #[arg(short = 'w', long, default_value = "rl-check-gcra")]
    workload: Workload,
    /// Connections.
    #[arg(short = 'c', long, default_value_t = 50)]
    connections: usize,
    /// Requests per pipeline (closed loop).
    #[arg(short = 'P', long, default_value_t = 1)]
    pipeline: usize,
    /// Open loop: total requests per second, latency from each request's due time.
    #[arg(long)]
    rate: Option<f64>,
    /// Measured time, e.g. 10s, 500ms, 2m.
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured time before the window.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Keys are drawn from 0..keyspace.
    #[arg(short = 'r', long, default_value_t = 100_000)]
    keyspace: u64,
    /// Threads, each with its own event loop.
    #[arg(short = 't', long, default_value_t = 1)]
    threads: usize,
    /// Open loop: requests one connection may have in flight.
    #[arg(long, default_value_t = 1024)]
    max_outstanding: usize,
    /// How long to wait for replies after the window.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    drain: Duration,
    #[command(flatten)]
    auth: AuthArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
struct AuthArgs {
    /// Speak TLS, verifying the server against this CA certificate (PEM).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), for servers that require one.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Name to verify in the server certificate (default: the host of --addr).
    #[arg(long)]
    tls_name: Option<String>,
    /// AUTH user.
    #[arg(long)]
    user: Option<String>,
    /// AUTH password (or RAFTLIMIT_BENCH_PASSWORD).
    #[arg(long, env = "RAFTLIMIT_BENCH_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

/// `250ms`, `10s`, `2m`, or plain seconds (`1.5`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("bad duration {s:?}"))
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to no address"))
}

fn target(addr: &str, auth: &AuthArgs) -> anyhow::Result<Target> {
    let sock = resolve(addr)?;
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_matches(['[', ']']);
    Ok(Target {
        addr: sock,
        tls: auth.tls_ca.as_ref().map(|ca| TlsOptions {
            ca: ca.clone(),
            cert: auth.tls_cert.clone(),
            key: auth.tls_key.clone(),
            server_name: auth.tls_name.clone().unwrap_or_else(|| host.to_string()),
        }),
        user: auth.user.clone(),
        password: auth.password.clone(),
    })
}

fn print_result(r: &RunResult) {
    let mode = match r.rate {
        Some(rate) => format!("open loop at {rate:.0}/s"),
        None => format!("closed loop, pipeline {}", r.pipeline),
    };
    println!(
        "{} · {} connections · {mode} · {:.1} s measured",
        r.workload.label(),
        r.connections,
        r.seconds
    );
    println!(
        "  throughput  {:.0} ops/s ({} ok, {} errors)",
        r.ops_per_sec, r.ops, r.errors
    );
    let l = &r.latency;
    println!(
        "  latency ms  p50 {:.3}  p95 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
        l.p50_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
    );
    if let Some(lag) = &r.send_lag {
        println!(
            "  send lag ms p50 {:.3}  p99 {:.3}  max {:.3}",
            lag.p50_ms, lag.p99_ms, lag.max_ms
        );
    }
    for e in &r.error_samples {
        println!("  error reply: {e}");
    }
    if r.io_errors > 0 {
        println!(
            "  {} connections failed: {}",
            r.io_errors,
            r.io_error_samples.join("; ")
        );
    }
    if r.unfinished > 0 {
        println!(
            "  {} measured requests had no reply when the drain timed out",
            r.unfinished
        );
    }
}

fn raise_fd_limit(connections: usize) {
    // Each connection is a descriptor; the default soft limit is often 1024.
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() {
        let want = (connections as u64 + 256).max(soft).min(hard);
        if want > soft {
            let _ = rlimit::Resource::NOFILE.set(want, hard);
        }
    }
}

fn cmd_run(a: &RunArgs) -> anyhow::Result<()> {
    let target = target(&a.addr, &a.auth)?;
    raise_fd_limit(a.connections);
    let spec = RunSpec {
        workload: a.workload,
        connections: a.connections,
        pipeline: a.pipeline,
        rate: a.rate,
        warmup: a.warmup,
        duration: a.duration,
        keyspace: a.keyspace,
        threads: a.threads,
        drain: a.drain,
        max_outstanding: a.max_outstanding,
    };
    let result = bench::run(&target, &spec, &mut |_: Edge| {})
        .with_context(|| format!("benchmarking {}", a.addr))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_result(&result);
    }
    if result.ops == 0 {
        bail!("no request succeeded");
    }
    Ok(())
}

fn server_bin(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(bin) if bin.is_file() => Ok(bin.clone()),
        Some(bin) => bail!("{} is not a file", bin.display()),
        None => Ok(raftlimit_launcher::server_binary()?),
    }
}

fn suite_options(a: &SuiteArgs) -> anyhow::Result<SuiteOptions> {
    let bin = server_bin(a.server_bin.as_ref())?;
    let mut o = if a.quick {
        SuiteOptions::quick(bin)
    } else {
        SuiteOptions::full(bin)
    };
    if let Some(t) = &a.targets {
        o.targets = t.clone();
    }
    if let Some(w) = &a.workloads {
        o.workloads = w.clone();
    }
    if a.connections.is_some() || a.pipelined.is_some() {
        let conns: Vec<usize> = match &a.connections {
            Some(c) => c.clone(),
            None => o.configs.iter().filter(|c| c.1 == 1).map(|c| c.0).collect(),
        };
        let pipelined = match a.pipelined {
            Some(p) => p,
            None => o.configs.iter().find(|c| c.1 > 1).map_or(0, |c| c.1),
        };
        o.configs = conns.into_iter().map(|c| (c, 1)).collect();
        if pipelined > 1 {
            o.configs.push((50, pipelined));
        }
    }
    if let Some(d) = a.duration {
        o.duration = d;
    }
    if let Some(d) = a.warmup {
        o.warmup = d;
    }
    if let Some(d) = a.goal_duration {
        o.goal_duration = d;
    }
    if let Some(d) = a.steady {
        o.steady = d;
    }
    if let Some(k) = a.keyspace {
        o.keyspace = k;
    }
    if let Some(t) = a.threads {
        o.threads = t;
    }
    if let Some(d) = &a.tmp_dir {
        o.tmp_dir = d.clone();
    }
    o.keep_dir = a.keep;
    o.busy_threshold_pct = a.busy_threshold;
    if o.targets.is_empty() || o.workloads.is_empty() || o.configs.is_empty() {
        bail!("nothing to run: targets, workloads and connection settings must not be empty");
    }
    Ok(o)
}

/// How the document links the SVG: by file name when both share a directory.
fn svg_link(doc: &std::path::Path, svg: &std::path::Path) -> String {
    match (doc.parent(), svg.parent(), svg.file_name()) {
        (Some(d), Some(s), Some(name)) if d == s => name.to_string_lossy().into_owned(),
        _ => svg.display().to_string(),
    }
}

fn cmd_suite(a: &SuiteArgs) -> anyhow::Result<()> {
    let opts = suite_options(a)?;
    let publish = !a.no_publish;
    let fs = suite::filesystem_type(&opts.tmp_dir);
    if fs == "tmpfs" && publish {
        bail!(
            "{} is on tmpfs, where fsync costs nothing and the durable targets would look far faster than they are; \
             pass --tmp-dir on a disk-backed filesystem",
            opts.tmp_dir.display()
        );
    }
    let (cells, estimate) = opts.estimate();
    eprintln!(
        "==> {cells} measurements, about {:.0} s",
        estimate.as_secs_f64()
    );
    if a.dry_run {
        return Ok(());
    }
    let busy = suite::busy_now(Duration::from_secs(1));
    if busy > opts.busy_threshold_pct && publish {
        bail!(
            "the machine is busy: other processes use {busy:.0}% of the CPUs (limit {:.0}%); nothing was run or written. \
             Rerun on an idle machine (or --no-publish / --busy-threshold to measure anyway)",
            opts.busy_threshold_pct
        );
    }
    // Children (every node and redis-server) inherit the raised limit.
    let max_conns = opts.configs.iter().map(|c| c.0).max().unwrap_or(1);
    raise_fd_limit(max_conns * 4 + 4096);
    let meta = suite::gather_meta(&opts, busy);
    let report = suite::run_suite(&opts, meta, &mut |line| eprintln!("{line}"))?;

    let section = report::render_markdown(&report, &svg_link(&a.doc, &a.svg));
    let svg = report::render_svg(&report)?;
    std::fs::create_dir_all(&a.results_dir)
        .with_context(|| format!("creating {}", a.results_dir.display()))?;
    let stamp = report.meta.date.replace([' ', ':'], "-");
    let raw = a.results_dir.join(format!("bench-{stamp}.json"));
    std::fs::write(&raw, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", raw.display()))?;
    let md = a.results_dir.join(format!("bench-{stamp}.md"));
    std::fs::write(&md, &section).with_context(|| format!("writing {}", md.display()))?;
    let svg_copy = a.results_dir.join(format!("bench-{stamp}.svg"));
    std::fs::write(&svg_copy, &svg).with_context(|| format!("writing {}", svg_copy.display()))?;
    println!("{section}");
    eprintln!(
        "==> raw results in {}, {} and {}",
        raw.display(),
        md.display(),
        svg_copy.display()
    );
    if let Some(why) = &report.incomplete {
        bail!(
            "not published: {why}; {} and {} are unchanged",
            a.doc.display(),
            a.svg.display()
        );
    }
    if !publish {
        eprintln!(
            "==> --no-publish: {} and {} left unchanged",
            a.doc.display(),
            a.svg.display()
        );
        return Ok(());
    }
    if let Some(why) = report.busy_reason() {
        bail!(
            "not published: {why}; {} and {} are unchanged",
            a.doc.display(),
            a.svg.display()
        );
    }
    let doc = std::fs::read_to_string(&a.doc).unwrap_or_else(|_| "# Benchmarks\n\n".into());
    std::fs::write(&a.svg, svg).with_context(|| format!("writing {}", a.svg.display()))?;
    std::fs::write(&a.doc, report::replace_section(&doc, &section))
        .with_context(|| format!("writing {}", a.doc.display()))?;
    eprintln!("==> updated {} and {}", a.doc.display(), a.svg.display());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(a) => cmd_run(a),
        Command::Suite(a) => cmd_suite(a),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("x").is_err());
    }
}
