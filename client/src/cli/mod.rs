//! The `raftlimit` command-line tool: limiter commands for scripts, cluster
//! status, a live view of limiter rates, and leadership transfer for drills.
//!
//! Exit codes are part of the interface, so a shell script can branch on a
//! check without parsing output: 0 allowed (or success), 1 denied (or, for
//! `policy get`, no such policy), 2 any error. Connection settings come from
//! flags or the same `RAFTLIMIT_*` variables the library reads.

mod status;
mod watch;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::client::Client;
use crate::config::{ClientConfig, TlsSettings, DEFAULT_URL};
use crate::error::ClientError;
use crate::headers::ceil_secs;
use crate::limiter::{parse_algo, parse_period, Check, Decision, Limit, MultiDecision, Policy};

pub use watch::{fetch_text, limiter_counts};

/// Exit code: allowed, or success.
pub const EXIT_OK: u8 = 0;
/// Exit code: denied (or nothing found).
pub const EXIT_DENIED: u8 = 1;
/// Exit code: any error.
pub const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "raftlimit",
    version,
    about = "Command-line client for a raftlimit cluster",
    after_help = "Exit codes: 0 allowed or success, 1 denied (or not found), 2 error."
)]
pub struct Cli {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Cluster URL: redis[s]://[user[:password]@]host:port[,host:port...]
    #[arg(long, env = "RAFTLIMIT_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,
    /// User name for AUTH (overrides the URL's).
    #[arg(long, env = "RAFTLIMIT_USER", global = true)]
    pub user: Option<String>,
    /// Password for AUTH (overrides the URL's).
    #[arg(
        long,
        env = "RAFTLIMIT_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub password: Option<String>,
    /// CA certificate (PEM) to verify the nodes with; implies TLS.
    #[arg(long, env = "RAFTLIMIT_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, env = "RAFTLIMIT_CERT", global = true)]
    pub cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long = "key", id = "client_key", env = "RAFTLIMIT_KEY", global = true)]
    pub client_key: Option<PathBuf>,
    /// Give up after this long (e.g. 500ms, 5s).
    #[arg(long, env = "RAFTLIMIT_TIMEOUT", default_value = "5s", global = true)]
    pub timeout: String,
}

/// A limit on the command line: `LIMIT PERIOD` or `--policy NAME`.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Units per period (omit with --policy).
    pub limit: Option<u64>,
    /// The period: 500ms, 10s, 1m, 24h, 7d.
    pub period: Option<String>,
    /// Use a named policy instead of LIMIT PERIOD.
    #[arg(long, conflicts_with_all = ["limit", "period", "burst", "algo"])]
    pub policy: Option<String>,
    /// GCRA bucket size (default: LIMIT).
    #[arg(long)]
    pub burst: Option<u64>,
    /// gcra, sliding or fixed.
    #[arg(long)]
    pub algo: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take units from a key (RL.CHECK); exit 0 if allowed, 1 if denied.
    Check {
        key: String,
        #[command(flatten)]
        limit: LimitArgs,
        /// Units to take.
        #[arg(long, default_value_t = 1)]
        cost: u64,
    },
    /// Take units from several keys, all or none (RL.MCHECK).
    Mcheck {
        /// KEY=LIMIT/PERIOD (e.g. user:42=10/1s) or KEY=@POLICY.
        #[arg(required = true)]
        items: Vec<String>,
        #[arg(long, default_value_t = 1)]
        cost: u64,
    },
    /// What a check would answer, changing nothing; exit 0/1 as check.
    Peek {
        key: String,
        #[command(flatten)]
        limit: LimitArgs,
        #[arg(long, default_value_t = 1)]
        cost: u64,
    },
    /// Delete a key's limiter state (RL.RESET).
    Reset { key: String },
    /// Give units back (RL.REFUND).
    Refund { key: String, units: u64 },
    /// Named policies (RL.POLICY).
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Concurrency leases held on a key (RL.LEASES).
    Leases { key: String },
    /// Members, leader, term, commit and applied index, lag and readiness of every node.
    Status,
    /// Live allowed/denied rates per policy, from the nodes' /metrics.
    Watch {
        /// Metrics URLs (default: port 9001-9003 of the local cluster).
        #[arg(
            long = "metrics",
            env = "RAFTLIMIT_METRICS",
            value_delimiter = ',',
            default_value = "http://127.0.0.1:9001/metrics,http://127.0.0.1:9002/metrics,http://127.0.0.1:9003/metrics"
        )]
        urls: Vec<String>,
        /// Time between samples.
        #[arg(long, default_value = "2s")]
        interval: String,
        /// Stop after this many samples (default: run until interrupted).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Move leadership to another node (RAFT.TRANSFER), for failover drills.
    Failover {
        /// The node id to hand leadership to (default: the server picks).
        node: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Create or replace a policy.
    Set {
        name: String,
        limit: u64,
        period: String,
        #[arg(long)]
        burst: Option<u64>,
        #[arg(long)]
        algo: Option<String>,
        /// Count but never deny.
        #[arg(long)]
        shadow: bool,
    },
    /// Show a policy; exit 1 if there is none.
    Get { name: String },
    /// List policy names.
    List,
    /// Delete a policy; exit 1 if there was none.
    Del { name: String },
}

impl ConnArgs {
    pub fn config(&self) -> Result<ClientConfig, ClientError> {
        let mut config = ClientConfig::from_url(&self.url)?;
        if self.user.is_some() {
            config.username = self.user.clone();
        }
        if self.password.is_some() {
            config.password = self.password.clone();
        }
        if self.ca.is_some() || self.cert.is_some() || self.client_key.is_some() {
            let tls = config.tls.get_or_insert_with(TlsSettings::default);
            tls.ca_file = self.ca.clone().or(tls.ca_file.take());
            tls.cert_file = self.cert.clone().or(tls.cert_file.take());
            tls.key_file = self.client_key.clone().or(tls.key_file.take());
        }
        let timeout = parse_period(&self.timeout)?;
        config.retry.budget = timeout;
        config.response_timeout = config.response_timeout.min(timeout);
        config.connect_timeout = config.connect_timeout.min(timeout);
        config.pool_size = 1;
        Ok(config)
    }
}

impl LimitArgs {
    fn limit(&self) -> Result<Limit, ClientError> {
        if let Some(name) = &self.policy {
            return Ok(Limit::policy(name));
        }
        let (Some(limit), Some(period)) = (self.limit, &self.period) else {
            return Err(ClientError::Config(
                "give LIMIT PERIOD, or --policy NAME".into(),
            ));
        };
        let mut out = Limit::per(limit, parse_period(period)?);
        if let Some(burst) = self.burst {
            out = out.burst(burst);
        }
        if let Some(algo) = &self.algo {
            out = out.algo(parse_algo(algo)?);
        }
        Ok(out)
    }
}

/// `KEY=LIMIT/PERIOD` or `KEY=@POLICY`.
fn parse_item(item: &str) -> Result<(String, Limit), ClientError> {
    let (key, spec) = item.rsplit_once('=').ok_or_else(|| {
        ClientError::Config(format!(
            "'{item}': expected KEY=LIMIT/PERIOD or KEY=@POLICY"
        ))
    })?;
    if let Some(policy) = spec.strip_prefix('@') {
        return Ok((key.to_owned(), Limit::policy(policy)));
    }
    let (limit, period) = spec
        .split_once('/')
        .ok_or_else(|| ClientError::Config(format!("'{spec}': expected LIMIT/PERIOD")))?;
    let limit = limit
        .parse::<u64>()
        .map_err(|_| ClientError::Config(format!("'{limit}' is not a number")))?;
    Ok((key.to_owned(), Limit::per(limit, parse_period(period)?)))
}

fn ms(d: Option<Duration>) -> i64 {
    d.map_or(-1, |d| d.as_millis() as i64)
}

fn decision_json(d: &Decision) -> serde_json::Value {
    serde_json::json!({
        "allowed": d.allowed,
        "limit": d.limit,
        "remaining": d.remaining,
        "retry_after_ms": ms(d.retry_after),
        "reset_after_ms": d.reset_after.as_millis() as u64,
    })
}

fn decision_text(d: &Decision) -> String {
    let mut text = format!(
        "{} limit={} remaining={} reset_after={}s",
        if d.allowed { "allowed" } else { "denied" },
        d.limit,
        d.remaining,
        ceil_secs(d.reset_after)
    );
    if let Some(wait) = d.retry_after {
        text.push_str(&format!(" retry_after={}ms", wait.as_millis()));
    }
    text
}

/// Runs the tool; returns the exit code. Errors are printed to `err`.
pub async fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match execute(&cli, out).await {
        Ok(code) => code,
        Err(e) => {
            let message = match &e {
                ClientError::UnknownCommand { command, .. }
                    if command.eq_ignore_ascii_case("RAFT.TRANSFER") =>
                {
                    "this cluster does not support leadership transfer (RAFT.TRANSFER is an unknown command); \
                     upgrade the nodes to a version that has it, or stop the leader to force an election"
                        .to_string()
                }
                other => other.to_string(),
            };
            let _ = writeln!(err, "error: {message}");
            EXIT_ERROR
        }
    }
}

fn print(
    out: &mut dyn Write,
    json: bool,
    value: serde_json::Value,
    text: String,
) -> Result<(), ClientError> {
    let line = if json { value.to_string() } else { text };
    writeln!(out, "{line}").map_err(|e| ClientError::Config(format!("cannot write output: {e}")))
}

/// `1`/`0` as redis-cli prints the reply, or `{"existed": …}`.
fn print_existed(out: &mut dyn Write, json: bool, existed: bool) -> Result<(), ClientError> {
    let value = serde_json::json!({ "existed": existed });
    print(out, json, value, u8::from(existed).to_string())
}

async fn execute(cli: &Cli, out: &mut dyn Write) -> Result<u8, ClientError> {
    let client = Client::new(cli.conn.config()?)?;
    let json = cli.json;
    match &cli.command {
        Command::Check { key, limit, cost } | Command::Peek { key, limit, cost } => {
            let peek = matches!(cli.command, Command::Peek { .. });
            let options = Check {
                cost: *cost,
                peek,
                id: None,
            };
            let d = client.check_with(key, &limit.limit()?, &options).await?;
            print(out, json, decision_json(&d), decision_text(&d))?;
            Ok(if d.allowed { EXIT_OK } else { EXIT_DENIED })
        }
        Command::Mcheck { items, cost } => {
            let parsed = items
                .iter()
                .map(|i| parse_item(i))
                .collect::<Result<Vec<_>, _>>()?;
            let keys: Vec<(&str, Limit)> = parsed
                .iter()
                .map(|(k, l)| (k.as_str(), l.clone()))
                .collect();
            let m: MultiDecision = client.check_many(&keys, *cost).await?;
            let value = serde_json::json!({
                "allowed": m.allowed,
                "retry_after_ms": ms(m.retry_after),
                "limits": m.decisions.iter().map(decision_json).collect::<Vec<_>>(),
            });
            let mut text = if m.allowed { "allowed" } else { "denied" }.to_string();
            if let Some(wait) = m.retry_after {
                text.push_str(&format!(" retry_after={}ms", wait.as_millis()));
            }
            for ((key, _), d) in parsed.iter().zip(&m.decisions) {
                text.push_str(&format!("\n  {key}: {}", decision_text(d)));
            }
            print(out, json, value, text)?;
            Ok(if m.allowed { EXIT_OK } else { EXIT_DENIED })
        }
        Command::Reset { key } => {
            let existed = client.reset(key).await?;
            print_existed(out, json, existed)?;
            Ok(EXIT_OK)
        }
        Command::Refund { key, units } => {
            let left = client.refund(key, *units).await?;
            let text = left.map_or("(nil)".to_string(), |n| n.to_string());
            print(out, json, serde_json::json!({ "remaining": left }), text)?;
            Ok(if left.is_some() { EXIT_OK } else { EXIT_DENIED })
        }
        Command::Leases { key } => {
            let held = client.leases(key).await?;
            print(
                out,
                json,
                serde_json::json!({ "held": held }),
                held.to_string(),
            )?;
            Ok(EXIT_OK)
        }
        Command::Policy { action } => policy(&client, action, json, out).await,
        Command::Status => status::run(&client, json, out).await,
        Command::Watch {
            urls,
            interval,
            count,
        } => watch::run(urls, parse_period(interval)?, *count, json, out).await,
        Command::Failover { node } => failover(&client, *node, json, out).await,
    }
}

async fn policy(
    client: &Client,
    action: &PolicyAction,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, ClientError> {
    match action {
        PolicyAction::Set {
            name,
            limit,
            period,
            burst,
            algo,
            shadow,
        } => {
            let policy = Policy {
                limit: *limit,
                period: parse_period(period)?,
                burst: burst.unwrap_or(*limit),
                algo: algo
                    .as_deref()
                    .map(parse_algo)
                    .transpose()?
                    .unwrap_or_default(),
                shadow: *shadow,
            };
            client.set_policy(name, &policy).await?;
            print(out, json, serde_json::json!({ "ok": true }), "OK".into())?;
            Ok(EXIT_OK)
        }
        PolicyAction::Get { name } => match client.get_policy(name).await? {
            Some(p) => {
                let period = crate::limiter::format_period(p.period);
                let value = serde_json::json!({
                    "name": name, "limit": p.limit, "period": period, "burst": p.burst,
                    "algo": p.algo.as_str(), "shadow": p.shadow,
                });
                let text = format!(
                    "{name}: limit={} period={period} burst={} algo={}{}",
                    p.limit,
                    p.burst,
                    p.algo.as_str(),
                    if p.shadow { " shadow" } else { "" }
                );
                print(out, json, value, text)?;
                Ok(EXIT_OK)
            }
            None => {
                print(out, json, serde_json::Value::Null, "(nil)".into())?;
                Ok(EXIT_DENIED)
            }
        },
        PolicyAction::List => {
            let names = client.list_policies().await?;
            print(out, json, serde_json::json!(names), names.join("\n"))?;
            Ok(EXIT_OK)
        }
        PolicyAction::Del { name } => {
            let existed = client.delete_policy(name).await?;
            print_existed(out, json, existed)?;
            Ok(if existed { EXIT_OK } else { EXIT_DENIED })
        }
    }
}

async fn failover(
    client: &Client,
    node: Option<u64>,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, ClientError> {
    let before = client.discover_leader().await;
    let mut cmd = redis::cmd("RAFT.TRANSFER");
    if let Some(node) = node {
        cmd.arg(node);
    }
    // Moving leadership twice is harmless, but only resend when the first
    // attempt certainly did not arrive.
    match client
        .execute(&cmd, crate::client::Retry::IfNotApplied)
        .await?
    {
        redis::Value::Okay => {}
        redis::Value::SimpleString(s) if s == "OK" => {}
        other => {
            return Err(ClientError::protocol(
                "RAFT.TRANSFER",
                format!("expected OK, got {other:?}"),
            ));
        }
    }
    // Report the new leader once the seeds agree it changed.
    let deadline = tokio::time::Instant::now() + client.config().retry.budget;
    let mut after = client.discover_leader().await;
    while after == before && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = client.discover_leader().await;
    }
    let nodes = client.nodes();
    let name = |i: Option<usize>| i.map_or("unknown".to_string(), |i| nodes[i].to_string());
    print(
        out,
        json,
        serde_json::json!({ "ok": true, "leader_before": name(before), "leader_after": name(after) }),
        format!("OK: leader {} -> {}", name(before), name(after)),
    )?;
    Ok(EXIT_OK)
}
