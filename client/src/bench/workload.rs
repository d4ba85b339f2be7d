//! The commands a run can send, each as one request template.
//!
//! Every limiter workload takes a fresh random key per request over the
//! keyspace, so the server's work per request is the steady-state cost of a
//! limiter check and not one hot key. `LimitsEvalsha` is the fixed-window
//! script of the Python `limits` library (INCRBY, then EXPIRE on the first
//! hit of a window) called by its SHA, exactly as that library drives Redis;
//! it is the baseline a Redis user runs today, and the one RL.CHECK is
//! compared with.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::conn::Conn;
use super::resp::{bulk_payload, reply_text, Arg};
use super::BenchError;

/// The `limits` library's fixed-window script: `KEYS[1]` the window's
/// counter, `ARGV[1]` the window length in seconds, `ARGV[2]` the cost.
pub const LIMITS_FIXED_WINDOW_SCRIPT: &str = "\
local current
local amount = tonumber(ARGV[2])
current = redis.call(\"incrby\", KEYS[1], amount)
if tonumber(current) == amount then
    redis.call(\"expire\", KEYS[1], ARGV[1])
end
return current
";

/// A benchmark workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `RL.CHECK rl:<key> 100 60s ALGO gcra`.
    RlCheckGcra,
    /// `RL.CHECK … ALGO sliding`.
    RlCheckSliding,
    /// `RL.CHECK … ALGO fixed`.
    RlCheckFixed,
    /// `RL.MCHECK` over three keys (user, tenant, global-style prefixes).
    RlMcheck,
    /// redis-cell's `CL.THROTTLE cl:<key> 99 100 60`.
    ClThrottle,
    /// `SET key:<key> xxx`.
    Set,
    /// `GET key:<key>`.
    Get,
    /// `INCR counter:<key>`.
    Incr,
    /// The `limits` fixed-window script through `EVALSHA` (loaded first).
    LimitsEvalsha,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 9] = [
        Workload::RlCheckGcra,
        Workload::RlCheckSliding,
        Workload::RlCheckFixed,
        Workload::RlMcheck,
        Workload::ClThrottle,
        Workload::Set,
        Workload::Get,
        Workload::Incr,
        Workload::LimitsEvalsha,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::RlCheckGcra => "rl-check-gcra",
            Workload::RlCheckSliding => "rl-check-sliding",
            Workload::RlCheckFixed => "rl-check-fixed",
            Workload::RlMcheck => "rl-mcheck",
            Workload::ClThrottle => "cl-throttle",
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Incr => "incr",
            Workload::LimitsEvalsha => "limits-evalsha",
        }
    }

    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Workload::RlCheckGcra => "RL.CHECK gcra",
            Workload::RlCheckSliding => "RL.CHECK sliding",
            Workload::RlCheckFixed => "RL.CHECK fixed",
            Workload::RlMcheck => "RL.MCHECK ×3",
            Workload::ClThrottle => "CL.THROTTLE",
            Workload::Set => "SET",
            Workload::Get => "GET",
            Workload::Incr => "INCR",
            Workload::LimitsEvalsha => "limits script (EVALSHA)",
        }
    }

    /// Whether plain Redis has the command (the others are raftlimit's own).
    pub fn on_redis(self) -> bool {
        matches!(
            self,
            Workload::Set | Workload::Get | Workload::Incr | Workload::LimitsEvalsha
        )
    }

    /// Whether the command changes state (goes through the Raft log on raftlimit).
    pub fn writes(self) -> bool {
        self != Workload::Get
    }

    /// The request, given what [`Workload::prepare`] returned.
    pub fn args(self, prepared: &Prepared) -> Vec<Arg> {
        let rl_check = |algo: &str| {
            vec![
                Arg::lit("RL.CHECK"),
                Arg::key("rl:"),
                Arg::lit("100"),
                Arg::lit("60s"),
                Arg::lit("ALGO"),
                Arg::lit(algo),
            ]
        };
        match self {
            Workload::RlCheckGcra => rl_check("gcra"),
            Workload::RlCheckSliding => rl_check("sliding"),
            Workload::RlCheckFixed => rl_check("fixed"),
            Workload::RlMcheck => vec![
                Arg::lit("RL.MCHECK"),
                Arg::lit("3"),
                Arg::key("rl:user:"),
                Arg::key("rl:tenant:"),
                Arg::key("rl:route:"),
                Arg::lit("LIMIT"),
                Arg::lit("100"),
                Arg::lit("60s"),
                Arg::lit("LIMIT"),
                Arg::lit("1000"),
                Arg::lit("60s"),
                Arg::lit("LIMIT"),
                Arg::lit("10000"),
                Arg::lit("60s"),
            ],
            Workload::ClThrottle => vec![
                Arg::lit("CL.THROTTLE"),
                Arg::key("cl:"),
                Arg::lit("99"),
                Arg::lit("100"),
                Arg::lit("60"),
            ],
            Workload::Set => vec![Arg::lit("SET"), Arg::key("key:"), Arg::lit("xxx")],
            Workload::Get => vec![Arg::lit("GET"), Arg::key("key:")],
            Workload::Incr => vec![Arg::lit("INCR"), Arg::key("counter:")],
            Workload::LimitsEvalsha => vec![
                Arg::lit("EVALSHA"),
                Arg::lit(prepared.script_sha.as_deref().unwrap_or("")),
                Arg::lit("1"),
                Arg::key("LIMITS:"),
                Arg::lit("60"),
                Arg::lit("1"),
            ],
        }
    }

    /// One-off setup on the target (SCRIPT LOAD), then one request to check
    /// that the target answers the command without an error.
    pub async fn prepare(self, conn: &mut Conn) -> Result<Prepared, BenchError> {
        let mut prepared = Prepared::default();
        if self == Workload::LimitsEvalsha {
            let reply = conn
                .call(&[
                    Arg::lit("SCRIPT"),
                    Arg::lit("LOAD"),
                    Arg::lit(LIMITS_FIXED_WINDOW_SCRIPT),
                ])
                .await?;
            let sha = bulk_payload(&reply)
                .filter(|s| s.len() == 40 && s.iter().all(u8::is_ascii_hexdigit))
                .ok_or_else(|| {
                    BenchError::Target(format!("SCRIPT LOAD answered {}", reply_text(&reply)))
                })?;
            prepared.script_sha = Some(String::from_utf8_lossy(sha).into_owned());
        }
        let reply = conn.call(&self.args(&prepared)).await?;
        if reply.starts_with(b"-") {
            return Err(BenchError::Target(format!(
                "{} answered {}",
                self.label(),
                reply_text(&reply)
            )));
        }
        Ok(prepared)
    }
}

/// What a workload's setup produced.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// The SHA-1 the target gave the `limits` script.
    pub script_sha: Option<String>,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
                BenchError::Config(format!(
                    "unknown workload {s:?}; one of {}",
                    names.join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::resp::Template;
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>().unwrap(), w);
        }
        assert!("nope".parse::<Workload>().is_err());
    }

    #[test]
    fn every_workload_has_random_keys() {
        let prepared = Prepared {
            script_sha: Some("a".repeat(40)),
        };
        for w in Workload::ALL {
            let t = Template::new(&w.args(&prepared));
            let want = if w == Workload::RlMcheck { 3 } else { 1 };
            assert_eq!(t.key_count(), want, "{w}");
        }
        let evalsha = Template::new(&Workload::LimitsEvalsha.args(&prepared));
        assert!(evalsha
            .bytes()
            .starts_with(b"*6\r\n$7\r\nEVALSHA\r\n$40\r\naaaa"));
    }
}
