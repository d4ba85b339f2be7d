//! The typed limiter API over `RL.*` commands.
//!
//! Every check is sent with a fresh `ID` token, generated once per call and
//! reused by every retry of that call, so a check whose reply was lost in a
//! failover is answered from the cluster's de-duplication table instead of
//! being charged again. Replies are parsed from RESP2, the shape every
//! server version answers by default.

use std::time::{Duration, SystemTime};

use rand::Rng;
use redis::Value;

use crate::client::{value_text, Client, Retry};
use crate::error::{ClientError, Result};

/// The algorithm of an inline limit (see docs/limiter.md): the server's own
/// type, so names and parsing cannot drift apart.
pub use raftlimit_limiter::Algo;

/// Parses an algorithm name (`gcra`, `sliding`, `fixed`, any case).
pub fn parse_algo(text: &str) -> Result<Algo> {
    text.trim()
        .parse::<Algo>()
        .map_err(|e| ClientError::Config(e.to_string()))
}

/// What a key is limited to: inline numbers, or a named server-side policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    Rate {
        limit: u64,
        period: Duration,
        burst: Option<u64>,
        algo: Algo,
    },
    Policy(String),
}

impl Limit {
    /// `limit` per `period`, GCRA with a burst of `limit`.
    pub fn per(limit: u64, period: Duration) -> Limit {
        Limit::Rate {
            limit,
            period,
            burst: None,
            algo: Algo::Gcra,
        }
    }

    pub fn per_second(limit: u64) -> Limit {
        Limit::per(limit, Duration::from_secs(1))
    }

    pub fn per_minute(limit: u64) -> Limit {
        Limit::per(limit, Duration::from_secs(60))
    }

    pub fn per_hour(limit: u64) -> Limit {
        Limit::per(limit, Duration::from_secs(3600))
    }

    /// The named policy `name` (`RL.POLICY SET`, or `[policies.NAME]`).
    pub fn policy(name: impl Into<String>) -> Limit {
        Limit::Policy(name.into())
    }

    /// The same limit with a GCRA bucket of `burst`.
    pub fn burst(self, burst: u64) -> Limit {
        match self {
            Limit::Rate {
                limit,
                period,
                algo,
                ..
            } => Limit::Rate {
                limit,
                period,
                burst: Some(burst),
                algo,
            },
            other => other,
        }
    }

    pub fn algo(self, algo: Algo) -> Limit {
        match self {
            Limit::Rate {
                limit,
                period,
                burst,
                ..
            } => Limit::Rate {
                limit,
                period,
                burst,
                algo,
            },
            other => other,
        }
    }

    /// The period, when the limit is inline (a policy's lives on the server).
    pub fn window(&self) -> Option<Duration> {
        match self {
            Limit::Rate { period, .. } => Some(*period),
            Limit::Policy(_) => None,
        }
    }

    /// The arguments after the key for `RL.CHECK` (for `RL.MCHECK`,
    /// `clause` prefixes inline numbers with `LIMIT`).
    fn push_args(&self, cmd: &mut redis::Cmd, clause: bool) {
        match self {
            Limit::Rate {
                limit,
                period,
                burst,
                algo,
            } => {
                if clause {
                    cmd.arg("LIMIT");
                }
                cmd.arg(*limit).arg(format_period(*period));
                if let Some(burst) = burst {
                    cmd.arg("BURST").arg(*burst);
                }
                if *algo != Algo::Gcra {
                    cmd.arg("ALGO").arg(algo.as_str());
                }
            }
            Limit::Policy(name) => {
                cmd.arg("POLICY").arg(name);
            }
        }
    }
}

/// A period in the server's duration syntax, in its largest exact unit
/// (`1m`, `1500ms`); anything finer than a millisecond (the server's
/// smallest unit) is cut.
pub fn format_period(period: Duration) -> String {
    let ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX / 1_000_000);
    raftlimit_limiter::format_duration(ms.saturating_mul(1_000_000))
}

/// Parses the server's duration syntax (`500ms`, `10s`, `1m`, `24h`, `7d`,
/// `60`) with the server's own parser.
pub fn parse_period(text: &str) -> Result<Duration> {
    raftlimit_limiter::parse_duration(text.trim().as_bytes())
        .map(Duration::from_nanos)
        .map_err(|e| ClientError::Config(e.to_string()))
}

/// The answer to one check, as the cluster computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The key's capacity (the burst for GCRA).
    pub limit: u64,
    pub remaining: u64,
    /// How long until the same request would be allowed; `None` when allowed.
    pub retry_after: Option<Duration>,
    /// How long until the key is full again.
    pub reset_after: Duration,
    /// The limit's period, for the `w` of `RateLimit-Policy` (unknown for a
    /// named policy unless the caller sets it).
    pub window: Option<Duration>,
    /// The policy's name in the IETF fields.
    pub policy_name: String,
    /// When the reply was received, for `X-RateLimit-Reset` as an epoch time.
    pub at: SystemTime,
}

impl Decision {
    fn from_reply(command: &str, value: &Value, limit: &Limit, at: SystemTime) -> Result<Decision> {
        let numbers = ints(command, value)?;
        let [allowed, cap, remaining, retry_ms, reset_ms] = numbers.as_slice() else {
            return Err(ClientError::protocol(command, "expected five integers"));
        };
        Ok(Decision {
            allowed: *allowed == 1,
            limit: non_negative(command, *cap)?,
            remaining: non_negative(command, *remaining)?,
            retry_after: (*retry_ms >= 0).then(|| Duration::from_millis(*retry_ms as u64)),
            reset_after: Duration::from_millis(non_negative(command, *reset_ms)?),
            window: limit.window(),
            policy_name: match limit {
                Limit::Policy(name) => name.clone(),
                Limit::Rate { .. } => "default".into(),
            },
            at,
        })
    }

    /// The same decision under another name in the IETF fields.
    pub fn named(mut self, name: impl Into<String>) -> Decision {
        self.policy_name = name.into();
        self
    }
}

/// The answer to `RL.MCHECK`: all or none of the keys were charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiDecision {
    pub allowed: bool,
    /// The longest wait among the denying keys; `None` when allowed.
    pub retry_after: Option<Duration>,
    /// One per key, in the order given.
    pub decisions: Vec<Decision>,
}

impl MultiDecision {
    /// The decision that binds: the denying key with the longest wait, or,
    /// when all allow, the one with the fewest units left.
    pub fn binding(&self) -> Option<&Decision> {
        if self.allowed {
            self.decisions.iter().min_by_key(|d| d.remaining)
        } else {
            self.decisions
                .iter()
                .filter(|d| !d.allowed)
                .max_by_key(|d| d.retry_after)
        }
    }
}

/// Options of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Units to take (default 1; 0 asks without taking).
    pub cost: u64,
    /// Evaluate without changing anything.
    pub peek: bool,
    /// The idempotency token; generated when `None`.
    pub id: Option<String>,
}

impl Default for Check {
    fn default() -> Self {
        Check {
            cost: 1,
            peek: false,
            id: None,
        }
    }
}

impl Check {
    pub fn cost(cost: u64) -> Check {
        Check {
            cost,
            ..Check::default()
        }
    }
}

/// A fresh idempotency token: 128 random bits in hex.
pub fn new_request_id() -> String {
    let bits: u128 = rand::thread_rng().gen();
    format!("{bits:032x}")
}

/// A named policy as `RL.POLICY GET` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub limit: u64,
    pub period: Duration,
    pub burst: u64,
    pub algo: Algo,
    pub shadow: bool,
}

impl Policy {
    pub fn new(limit: u64, period: Duration) -> Policy {
        Policy {
            limit,
            period,
            burst: limit,
            algo: Algo::Gcra,
            shadow: false,
        }
    }
}

/// The outcome of `RL.ACQUIRE`.
#[derive(Debug)]
pub enum Acquired {
    /// A lease, released when the guard is dropped (or by [`LeaseGuard::release`]).
    Lease(LeaseGuard),
    /// All `limit` leases are held.
    Full { held: u64, limit: u64 },
}

/// A held concurrency lease. Dropping it releases the lease in the
/// background; [`LeaseGuard::release`] does so and waits for the answer.
/// If neither happens (the process dies), the lease expires at its TTL.
#[derive(Debug)]
pub struct LeaseGuard {
    client: Option<Client>,
    key: String,
    id: String,
    held: u64,
    limit: u64,
}

impl LeaseGuard {
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn key(&self) -> &str {
        &self.key
    }
    /// Leases held on the key right after this one was taken (this one included).
    pub fn held(&self) -> u64 {
        self.held
    }
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Releases now; `true` if the lease was still held (not expired).
    pub async fn release(mut self) -> Result<bool> {
        match self.client.take() {
            Some(client) => client.release(&self.key, &self.id).await,
            None => Ok(false),
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let (key, id) = (std::mem::take(&mut self.key), std::mem::take(&mut self.id));
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(err) = client.release(&key, &id).await {
                        tracing::warn!(%key, %err, "lease release failed; it expires at its ttl");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(%key, "lease dropped outside a runtime; it expires at its ttl");
            }
        }
    }
}

impl Client {
    /// `RL.CHECK key …`: takes one unit.
    pub async fn check(&self, key: &str, limit: &Limit) -> Result<Decision> {
        self.check_with(key, limit, &Check::default()).await
    }

    /// `RL.CHECK` with a cost, `PEEK` or a caller's idempotency token.
    pub async fn check_with(&self, key: &str, limit: &Limit, options: &Check) -> Result<Decision> {
        let mut cmd = redis::cmd("RL.CHECK");
        cmd.arg(key);
        limit.push_args(&mut cmd, false);
        push_check_options(&mut cmd, options);
        let value = self.execute(&cmd, Retry::Always).await?;
        Decision::from_reply("RL.CHECK", &value, limit, SystemTime::now())
    }

    /// What a check would answer now, changing nothing.
    pub async fn peek(&self, key: &str, limit: &Limit) -> Result<Decision> {
        let options = Check {
            peek: true,
            ..Check::default()
        };
        self.check_with(key, limit, &options).await
    }

    /// `RL.MCHECK`: charges `cost` to every key or to none.
    pub async fn check_many(&self, keys: &[(&str, Limit)], cost: u64) -> Result<MultiDecision> {
        self.check_many_with(keys, &Check::cost(cost)).await
    }

    pub async fn check_many_with(
        &self,
        keys: &[(&str, Limit)],
        options: &Check,
    ) -> Result<MultiDecision> {
        if keys.is_empty() {
            return Err(ClientError::Config(
                "RL.MCHECK needs at least one key".into(),
            ));
        }
        let mut cmd = redis::cmd("RL.MCHECK");
        cmd.arg(keys.len());
        for (key, _) in keys {
            cmd.arg(*key);
        }
        for (_, limit) in keys {
            limit.push_args(&mut cmd, true);
        }
        push_check_options(&mut cmd, options);
        let value = self.execute(&cmd, Retry::Always).await?;
        let at = SystemTime::now();
        let Value::Array(parts) = &value else {
            return Err(ClientError::protocol("RL.MCHECK", "expected an array"));
        };
        let [allowed, retry_ms, per_key] = parts.as_slice() else {
            return Err(ClientError::protocol(
                "RL.MCHECK",
                "expected three elements",
            ));
        };
        let (Value::Int(allowed), Value::Int(retry_ms), Value::Array(per_key)) =
            (allowed, retry_ms, per_key)
        else {
            return Err(ClientError::protocol(
                "RL.MCHECK",
                "unexpected element types",
            ));
        };
        if per_key.len() != keys.len() {
            return Err(ClientError::protocol(
                "RL.MCHECK",
                "one decision per key expected",
            ));
        }
        let decisions = per_key
            .iter()
            .zip(keys)
            .map(|(v, (_, limit))| Decision::from_reply("RL.MCHECK", v, limit, at))
            .collect::<Result<Vec<_>>>()?;
        Ok(MultiDecision {
            allowed: *allowed == 1,
            retry_after: (*retry_ms >= 0).then(|| Duration::from_millis(*retry_ms as u64)),
            decisions,
        })
    }

    /// `RL.REFUND key n`: the units left after the refund, or `None` for a
    /// missing key. Not resent after an unknown outcome (it would refund twice).
    pub async fn refund(&self, key: &str, units: u64) -> Result<Option<u64>> {
        let mut cmd = redis::cmd("RL.REFUND");
        cmd.arg(key).arg(units);
        match self.execute(&cmd, Retry::IfNotApplied).await? {
            Value::Nil => Ok(None),
            Value::Int(n) => Ok(Some(non_negative("RL.REFUND", n)?)),
            _ => Err(ClientError::protocol(
                "RL.REFUND",
                "expected an integer or nil",
            )),
        }
    }

    /// `RL.RESET key`: whether the key existed.
    pub async fn reset(&self, key: &str) -> Result<bool> {
        let mut cmd = redis::cmd("RL.RESET");
        cmd.arg(key);
        int_reply("RL.RESET", self.execute(&cmd, Retry::Always).await?).map(|n| n == 1)
    }

    /// `RL.ACQUIRE key limit ttl`: a concurrency lease, held until the guard
    /// is dropped or `ttl` passes.
    pub async fn acquire(&self, key: &str, limit: u64, ttl: Duration) -> Result<Acquired> {
        let mut cmd = redis::cmd("RL.ACQUIRE");
        cmd.arg(key).arg(limit).arg(format_period(ttl));
        let value = self.execute(&cmd, Retry::IfNotApplied).await?;
        let Value::Array(parts) = &value else {
            return Err(ClientError::protocol("RL.ACQUIRE", "expected an array"));
        };
        let [ok, id, held, cap] = parts.as_slice() else {
            return Err(ClientError::protocol(
                "RL.ACQUIRE",
                "expected four elements",
            ));
        };
        let (Value::Int(ok), Value::Int(held), Value::Int(cap)) = (ok, held, cap) else {
            return Err(ClientError::protocol(
                "RL.ACQUIRE",
                "unexpected element types",
            ));
        };
        let held = non_negative("RL.ACQUIRE", *held)?;
        let limit = non_negative("RL.ACQUIRE", *cap)?;
        if *ok != 1 {
            return Ok(Acquired::Full { held, limit });
        }
        let id =
            value_text(id).ok_or_else(|| ClientError::protocol("RL.ACQUIRE", "no lease id"))?;
        Ok(Acquired::Lease(LeaseGuard {
            client: Some(self.clone()),
            key: key.to_owned(),
            id,
            held,
            limit,
        }))
    }

    /// `RL.RELEASE key id`: whether the lease was held.
    pub async fn release(&self, key: &str, lease_id: &str) -> Result<bool> {
        let mut cmd = redis::cmd("RL.RELEASE");
        cmd.arg(key).arg(lease_id);
        int_reply("RL.RELEASE", self.execute(&cmd, Retry::Always).await?).map(|n| n == 1)
    }

    /// `RL.LEASES key`: leases held now.
    pub async fn leases(&self, key: &str) -> Result<u64> {
        let mut cmd = redis::cmd("RL.LEASES");
        cmd.arg(key);
        int_reply("RL.LEASES", self.execute(&cmd, Retry::Always).await?)
            .and_then(|n| non_negative("RL.LEASES", n))
    }

    /// `RL.POLICY SET name …`.
    pub async fn set_policy(&self, name: &str, policy: &Policy) -> Result<()> {
        let mut cmd = redis::cmd("RL.POLICY");
        cmd.arg("SET")
            .arg(name)
            .arg(policy.limit)
            .arg(format_period(policy.period))
            .arg("BURST")
            .arg(policy.burst)
            .arg("ALGO")
            .arg(policy.algo.as_str());
        if policy.shadow {
            cmd.arg("SHADOW");
        }
        match self.execute(&cmd, Retry::Always).await? {
            Value::Okay => Ok(()),
            Value::SimpleString(s) if s == "OK" => Ok(()),
            _ => Err(ClientError::protocol("RL.POLICY SET", "expected OK")),
        }
    }

    /// `RL.POLICY GET name`: the policy, or `None` if there is none.
    pub async fn get_policy(&self, name: &str) -> Result<Option<Policy>> {
        let mut cmd = redis::cmd("RL.POLICY");
        cmd.arg("GET").arg(name);
        let value = self.execute(&cmd, Retry::Always).await?;
        let fields = match &value {
            Value::Nil => return Ok(None),
            Value::Array(items) => items,
            _ => return Err(ClientError::protocol("RL.POLICY GET", "expected an array")),
        };
        let mut policy = Policy::new(0, Duration::ZERO);
        for pair in fields.chunks(2) {
            let [name, value] = pair else {
                return Err(ClientError::protocol("RL.POLICY GET", "odd field list"));
            };
            let (Some(name), Some(text)) = (value_text(name), value_text(value)) else {
                return Err(ClientError::protocol("RL.POLICY GET", "non-text field"));
            };
            let number = || {
                text.parse::<u64>()
                    .map_err(|_| ClientError::protocol("RL.POLICY GET", format!("bad {name}")))
            };
            match name.as_str() {
                "limit" => policy.limit = number()?,
                "burst" => policy.burst = number()?,
                "period" => policy.period = parse_period(&text)?,
                "algo" => policy.algo = parse_algo(&text)?,
                "shadow" => policy.shadow = number()? == 1,
                _ => {}
            }
        }
        Ok(Some(policy))
    }

    /// `RL.POLICY DEL name`: whether it existed.
    pub async fn delete_policy(&self, name: &str) -> Result<bool> {
        let mut cmd = redis::cmd("RL.POLICY");
        cmd.arg("DEL").arg(name);
        int_reply("RL.POLICY DEL", self.execute(&cmd, Retry::Always).await?).map(|n| n == 1)
    }

    /// `RL.POLICY LIST`: the names, sorted.
    pub async fn list_policies(&self) -> Result<Vec<String>> {
        let mut cmd = redis::cmd("RL.POLICY");
        cmd.arg("LIST");
        match self.execute(&cmd, Retry::Always).await? {
            Value::Array(items) => items
                .iter()
                .map(|v| {
                    value_text(v)
                        .ok_or_else(|| ClientError::protocol("RL.POLICY LIST", "non-text name"))
                })
                .collect(),
            _ => Err(ClientError::protocol("RL.POLICY LIST", "expected an array")),
        }
    }
}

fn push_check_options(cmd: &mut redis::Cmd, options: &Check) {
    if options.cost != 1 {
        cmd.arg("COST").arg(options.cost);
    }
    if options.peek {
        cmd.arg("PEEK");
    } else {
        // A peek changes nothing, so only charging checks need a token.
        let id = options.id.clone().unwrap_or_else(new_request_id);
        cmd.arg("ID").arg(id);
    }
}

fn ints(command: &str, value: &Value) -> Result<Vec<i64>> {
    let Value::Array(items) = value else {
        return Err(ClientError::protocol(command, "expected an array"));
    };
    items
        .iter()
        .map(|v| match v {
            Value::Int(n) => Ok(*n),
            _ => Err(ClientError::protocol(command, "expected integers")),
        })
        .collect()
}

fn int_reply(command: &str, value: Value) -> Result<i64> {
    match value {
        Value::Int(n) => Ok(n),
        _ => Err(ClientError::protocol(command, "expected an integer")),
    }
}

fn non_negative(command: &str, n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| ClientError::protocol(command, format!("negative value {n}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_round_trip_in_server_syntax() {
        assert_eq!(format_period(Duration::from_secs(60)), "1m");
        assert_eq!(format_period(Duration::from_secs(90)), "90s");
        assert_eq!(format_period(Duration::from_millis(1500)), "1500ms");
        assert_eq!(parse_period("1m").ok(), Some(Duration::from_secs(60)));
        assert_eq!(parse_period("500ms").ok(), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_period("7D").ok(),
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(parse_period("60").ok(), Some(Duration::from_secs(60)));
        for bad in ["0s", "1.5s", "-1", "", "s", "99999999999999999999d"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn check_arguments() {
        let mut cmd = redis::cmd("RL.CHECK");
        cmd.arg("k");
        Limit::per_minute(100)
            .burst(20)
            .algo(Algo::Sliding)
            .push_args(&mut cmd, false);
        push_check_options(
            &mut cmd,
            &Check {
                cost: 3,
                peek: false,
                id: Some("t".into()),
            },
        );
        let args: Vec<String> = cmd
            .args_iter()
            .filter_map(|a| match a {
                redis::Arg::Simple(b) => Some(String::from_utf8_lossy(b).into_owned()),
                redis::Arg::Cursor => None,
            })
            .collect();
        assert_eq!(
            args,
            [
                "RL.CHECK", "k", "100", "1m", "BURST", "20", "ALGO", "sliding", "COST", "3", "ID",
                "t"
            ]
        );
    }

    #[test]
    fn request_ids_are_distinct_hex() {
        let a = new_request_id();
        let b = new_request_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn decisions_parse_and_refuse_bad_replies() {
        let at = SystemTime::now();
        let limit = Limit::per_second(5);
        let reply = Value::Array([1, 5, 4, -1, 200].map(Value::Int).to_vec());
        let d =
            Decision::from_reply("RL.CHECK", &reply, &limit, at).unwrap_or_else(|e| panic!("{e}"));
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining, d.retry_after), (5, 4, None));
        assert_eq!(d.reset_after, Duration::from_millis(200));
        assert_eq!(d.window, Some(Duration::from_secs(1)));
        let short = Value::Array([1, 5].map(Value::Int).to_vec());
        assert!(Decision::from_reply("RL.CHECK", &short, &limit, at).is_err());
        let negative = Value::Array([1, -5, 4, -1, 200].map(Value::Int).to_vec());
        assert!(Decision::from_reply("RL.CHECK", &negative, &limit, at).is_err());
    }
}
