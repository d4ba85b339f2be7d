//! `raftlimit-bench`: load generator (`run`) for raftlimit and Redis.
//!
//! `run` drives one target at a given address, closed loop (`-c`, `-P`) or
//! open loop (`--rate`), and prints the throughput and latency percentiles
//! (`--json` for the machine-readable result). See `docs/benchmarks.md`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use raftlimit_client::bench::{self, Edge, RunResult, RunSpec, Target, TlsOptions, Workload};

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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(a) => cmd_run(a),
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
