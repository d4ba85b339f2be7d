//! The layer configured from environment variables, the way the
//! deployments configure their pods.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `RATE_LIMIT_DEFAULT` | requests per window for paths no endpoint names | 100 |
//! | `RATE_LIMIT_<NAME>` | requests per window under `/<name>` (lowercased; `__` is `/`), e.g. `RATE_LIMIT_SEARCH=60`; `60/10s` sets its own window | |
//! | `RATE_LIMIT_WINDOW` | the window of every limit without its own | `1m` |
//! | `RATE_LIMIT_ALGO` | `gcra`, `sliding` or `fixed` | `gcra` |
//! | `RATE_LIMIT_KEY` | `ip`, `api_key`, `bearer` or `header:<name>` (falling back to the IP) | `ip` |
//! | `RATE_LIMIT_EXEMPT` | comma-separated exempt paths | `/healthz,/readyz,/docs,/openapi.json,/metrics` |
//! | `RATE_LIMIT_DEADLINE_MS` | how long a check may take before the fallback decides | 3000 |
//! | `RATE_LIMIT_ON_UNAVAILABLE` | `fallback`, `open` or `closed` | `fallback` |
//! | `RATE_LIMIT_FALLBACK_SHARE` | share of each limit the local fallback allows, in (0, 1] | 0.5 |
//! | `RATE_LIMIT_SHADOW` | `1`/`true`: count but never deny | off |
//! | `RATE_LIMIT_KEY_PREFIX` | prefix of the cluster keys | `rl` |
//! | `TRUSTED_PROXIES` | CIDRs whose `X-Forwarded-For` is believed | none |

use std::time::Duration;

use http::header::HeaderName;

use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::fallback::DEFAULT_SHARE;
use crate::layer::{
    KeyExtractor, LimitSpec, OnUnavailable, RateLimitBuilder, RateLimitLayer, Rule, TrustedProxies,
    DEFAULT_DEADLINE,
};
use crate::limiter::{parse_algo, parse_period, Algo, Limit};

/// The exempt paths when `RATE_LIMIT_EXEMPT` is not set.
pub const DEFAULT_EXEMPT: &[&str] = &["/healthz", "/readyz", "/docs", "/openapi.json", "/metrics"];

/// One endpoint's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointLimit {
    /// The metric label and key part (the path without its leading `/`).
    pub endpoint: String,
    pub path: String,
    pub limit: u64,
    pub window: Duration,
}

/// Settings read from `RATE_LIMIT_*` and `TRUSTED_PROXIES`.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSettings {
    pub default_limit: u64,
    pub window: Duration,
    pub endpoints: Vec<EndpointLimit>,
    pub algo: Algo,
    pub key: String,
    pub exempt: Vec<String>,
    pub trusted: TrustedProxies,
    pub deadline: Duration,
    pub on_unavailable: OnUnavailable,
    pub shadow: bool,
    pub key_prefix: String,
}

const RESERVED: &[&str] = &[
    "DEFAULT",
    "WINDOW",
    "ALGO",
    "KEY",
    "EXEMPT",
    "DEADLINE_MS",
    "ON_UNAVAILABLE",
    "FALLBACK_SHARE",
    "SHADOW",
    "KEY_PREFIX",
];

fn bad(name: &str, why: impl std::fmt::Display) -> ClientError {
    ClientError::Config(format!("{name}: {why}"))
}

/// `60` or `60/10s`.
fn parse_rate(name: &str, value: &str, window: Duration) -> Result<(u64, Duration)> {
    let (count, own_window) = match value.split_once('/') {
        Some((c, w)) => (c, Some(parse_period(w).map_err(|e| bad(name, e))?)),
        None => (value, None),
    };
    let count = count
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            bad(
                name,
                format!("'{value}' is not a positive number of requests"),
            )
        })?;
    Ok((count, own_window.unwrap_or(window)))
}

impl EnvSettings {
    /// Reads the settings from `vars` (for example `std::env::vars()`).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<EnvSettings> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let get = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_owned())
        };
        let window = match get("RATE_LIMIT_WINDOW") {
            Some(w) => parse_period(&w).map_err(|e| bad("RATE_LIMIT_WINDOW", e))?,
            None => Duration::from_secs(60),
        };
        let default_limit = match get("RATE_LIMIT_DEFAULT") {
            Some(v) => parse_rate("RATE_LIMIT_DEFAULT", &v, window)?.0,
            None => 100,
        };
        let mut endpoints = Vec::new();
        for (name, value) in &vars {
            let Some(suffix) = name.strip_prefix("RATE_LIMIT_") else {
                continue;
            };
            if RESERVED.contains(&suffix) || suffix.is_empty() {
                continue;
            }
            let (limit, own) = parse_rate(name, value.trim(), window)?;
            let endpoint = suffix.to_ascii_lowercase().replace("__", "/");
            if !endpoint
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-/".contains(c))
            {
                return Err(bad(name, "endpoint names are letters, digits, _ and -"));
            }
            endpoints.push(EndpointLimit {
                path: format!("/{endpoint}"),
                endpoint,
                limit,
                window: own,
            });
        }
        endpoints.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        let algo = match get("RATE_LIMIT_ALGO") {
            Some(a) => parse_algo(&a).map_err(|e| bad("RATE_LIMIT_ALGO", e))?,
            None => Algo::Gcra,
        };
        let key = get("RATE_LIMIT_KEY").unwrap_or_else(|| "ip".into());
        key_extractor(&key)?;
        let exempt = match get("RATE_LIMIT_EXEMPT") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => DEFAULT_EXEMPT.iter().map(|s| s.to_string()).collect(),
        };
        let trusted = match get("TRUSTED_PROXIES") {
            Some(list) => TrustedProxies::parse(&list).map_err(|e| bad("TRUSTED_PROXIES", e))?,
            None => TrustedProxies::none(),
        };
        let deadline = match get("RATE_LIMIT_DEADLINE_MS") {
            Some(ms) => Duration::from_millis(
                ms.parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad("RATE_LIMIT_DEADLINE_MS", "expected a positive integer"))?,
            ),
            None => DEFAULT_DEADLINE,
        };
        let share = match get("RATE_LIMIT_FALLBACK_SHARE") {
            Some(s) => s
                .parse::<f64>()
                .ok()
                .filter(|&f| f > 0.0 && f <= 1.0)
                .ok_or_else(|| bad("RATE_LIMIT_FALLBACK_SHARE", "expected a number in (0, 1]"))?,
            None => DEFAULT_SHARE,
        };
        let on_unavailable = match get("RATE_LIMIT_ON_UNAVAILABLE").as_deref() {
            None | Some("fallback") => OnUnavailable::Fallback { share },
            Some("open") => OnUnavailable::Open,
            Some("closed") => OnUnavailable::Closed,
            Some(other) => {
                return Err(bad(
                    "RATE_LIMIT_ON_UNAVAILABLE",
                    format!("'{other}': expected fallback, open or closed"),
                ))
            }
        };
        let shadow = matches!(
            get("RATE_LIMIT_SHADOW").as_deref(),
            Some("1" | "true" | "yes" | "on")
        );
        Ok(EnvSettings {
            default_limit,
            window,
            endpoints,
            algo,
            key,
            exempt,
            trusted,
            deadline,
            on_unavailable,
            shadow,
            key_prefix: get("RATE_LIMIT_KEY_PREFIX").unwrap_or_else(|| "rl".into()),
        })
    }

    pub fn from_env() -> Result<EnvSettings> {
        EnvSettings::from_vars(std::env::vars())
    }

    /// A builder with every setting applied, for more rules on top.
    pub fn builder(&self, client: Client) -> RateLimitBuilder {
        // Checked in from_vars; an unknown kind cannot reach here.
        let key = key_extractor(&self.key).unwrap_or(KeyExtractor::ClientIp);
        let limit = |n: u64, window: Duration| Limit::per(n, window).algo(self.algo);
        let mut builder = RateLimitLayer::builder(client)
            .trusted_proxies(self.trusted.clone())
            .deadline(self.deadline)
            .on_unavailable(self.on_unavailable)
            .shadow(self.shadow)
            .key_prefix(self.key_prefix.clone())
            .exempt(&self.exempt)
            .default_rule(Rule::new("default").limit(LimitSpec::new(
                "default",
                key.clone(),
                limit(self.default_limit, self.window),
            )));
        for e in &self.endpoints {
            builder = builder.route(
                &e.path,
                Rule::new(e.endpoint.clone()).limit(LimitSpec::new(
                    "default",
                    key.clone(),
                    limit(e.limit, e.window),
                )),
            );
        }
        builder
    }

    pub fn layer(&self, client: Client) -> RateLimitLayer {
        self.builder(client).build()
    }
}

fn key_extractor(kind: &str) -> Result<KeyExtractor> {
    let extractor = match kind {
        "ip" => return Ok(KeyExtractor::ClientIp),
        "api_key" => KeyExtractor::api_key(),
        "bearer" => KeyExtractor::BearerSubject,
        other => match other.strip_prefix("header:") {
            Some(name) => KeyExtractor::Header(
                HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| bad("RATE_LIMIT_KEY", format!("'{name}' is not a header name")))?,
            ),
            None => {
                return Err(bad(
                    "RATE_LIMIT_KEY",
                    format!("'{other}': expected ip, api_key, bearer or header:<name>"),
                ))
            }
        },
    };
    Ok(extractor.or(KeyExtractor::ClientIp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_deployments_variables() {
        let s = EnvSettings::from_vars(vars(&[
            ("RATE_LIMIT_SEARCH", "60"),
            ("RATE_LIMIT_RECOMMENDATIONS", "30"),
            ("RATE_LIMIT_API__EXPORT", "5/1h"),
            ("RATE_LIMIT_DEFAULT", "100"),
            ("TRUSTED_PROXIES", "10.0.0.0/8,172.16.0.0/12"),
            ("PATH", "/usr/bin"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.default_limit, 100);
        let got: Vec<(&str, &str, u64, u64)> = s
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.endpoint.as_str(),
                    e.path.as_str(),
                    e.limit,
                    e.window.as_secs(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("api/export", "/api/export", 5, 3600),
                ("recommendations", "/recommendations", 30, 60),
                ("search", "/search", 60, 60),
            ]
        );
        assert_eq!(s.exempt, DEFAULT_EXEMPT);
        assert!(s
            .trusted
            .contains("10.1.1.1".parse().unwrap_or_else(|_| panic!())));
        assert_eq!(s.deadline, DEFAULT_DEADLINE);
        assert_eq!(s.on_unavailable, OnUnavailable::Fallback { share: 0.5 });
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("RATE_LIMIT_SEARCH", "lots"),
            ("RATE_LIMIT_SEARCH", "0"),
            ("RATE_LIMIT_WINDOW", "1.5m"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
            ("RATE_LIMIT_ON_UNAVAILABLE", "maybe"),
            ("RATE_LIMIT_FALLBACK_SHARE", "2"),
            ("RATE_LIMIT_KEY", "cookie"),
            ("RATE_LIMIT_A.B", "1"),
        ] {
            let err = EnvSettings::from_vars(vars(&[(k, v)]))
                .err()
                .map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(k)),
                "{k}={v}: {err:?}"
            );
        }
    }
}
