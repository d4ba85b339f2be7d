//! HTTP rate-limit headers for a [`Decision`].
//!
//! Two sets exist in the wild and clients read one or the other:
//!
//! * the de facto `X-RateLimit-Limit`, `X-RateLimit-Remaining`,
//!   `X-RateLimit-Reset` (GitHub, Twitter, most API gateways), which the
//!   deployments' checklists test, with `X-RateLimit-Reset` as epoch seconds;
//! * the IETF fields of draft-ietf-httpapi-ratelimit-headers (draft 09, the
//!   current structured-field form): `RateLimit-Policy: "name";q=…;w=…` and
//!   `RateLimit: "name";r=…;t=…`, a list with one member per policy.
//!
//! The default sends **both**, with `X-RateLimit-Reset` in epoch seconds, so
//! existing clients keep working while new ones can read the standard form;
//! [`HeaderStyle`] turns either set off or sends the reset as a delta.
//! `Retry-After` (delay-seconds) is added to every denial. Every number of
//! seconds is rounded up, so a client that waits as told is never early.

use std::time::{Duration, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use crate::limiter::{Decision, MultiDecision};

pub const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// How `X-RateLimit-Reset` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetFormat {
    /// Seconds since the UNIX epoch at which the key is full again.
    #[default]
    EpochSeconds,
    /// Seconds from now (as the IETF `t` parameter).
    DeltaSeconds,
}

/// Which header sets to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderStyle {
    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset`.
    pub x_ratelimit: bool,
    /// `RateLimit` and `RateLimit-Policy`.
    pub ietf: bool,
    pub reset: ResetFormat,
}

impl Default for HeaderStyle {
    fn default() -> Self {
        HeaderStyle {
            x_ratelimit: true,
            ietf: true,
            reset: ResetFormat::EpochSeconds,
        }
    }
}

/// Whole seconds, rounded up.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A policy name as a structured-field string: characters outside a safe
/// set become `_`, so a name can never break the field.
fn sf_string(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:/".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("\"{clean}\"")
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: String) {
    // Every value built here is ASCII digits, quotes and `;=,_-.:/`.
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}

impl Decision {
    /// The headers for this decision in the default style (both sets).
    pub fn headers(&self) -> HeaderMap {
        self.headers_with(HeaderStyle::default())
    }

    pub fn headers_with(&self, style: HeaderStyle) -> HeaderMap {
        headers_for(std::slice::from_ref(self), self, style)
    }

    /// `X-RateLimit-Reset` as this decision's style writes it.
    pub fn reset_value(&self, format: ResetFormat) -> u64 {
        match format {
            ResetFormat::DeltaSeconds => ceil_secs(self.reset_after),
            ResetFormat::EpochSeconds => {
                let at = self.at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
                ceil_secs(at + self.reset_after)
            }
        }
    }

    fn ietf_policy(&self) -> String {
        let mut out = format!("{};q={}", sf_string(&self.policy_name), self.limit);
        if let Some(window) = self.window {
            out.push_str(&format!(";w={}", ceil_secs(window)));
        }
        out
    }

    fn ietf_state(&self) -> String {
        format!(
            "{};r={};t={}",
            sf_string(&self.policy_name),
            self.remaining,
            ceil_secs(self.reset_after)
        )
    }
}

impl MultiDecision {
    /// The IETF fields list every policy; the `X-RateLimit-*` set and
    /// `Retry-After` describe the binding one ([`MultiDecision::binding`]).
    pub fn headers_with(&self, style: HeaderStyle) -> HeaderMap {
        match self.binding() {
            Some(binding) => {
                let mut headers = headers_for(&self.decisions, binding, style);
                if let (false, Some(wait)) = (self.allowed, self.retry_after) {
                    insert(&mut headers, RETRY_AFTER, ceil_secs(wait).to_string());
                }
                headers
            }
            None => HeaderMap::new(),
        }
    }
}

/// Headers for several policies, `binding` being the one the `X-` set shows.
pub fn headers_for(all: &[Decision], binding: &Decision, style: HeaderStyle) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if style.x_ratelimit {
        insert(&mut headers, X_RATELIMIT_LIMIT, binding.limit.to_string());
        insert(
            &mut headers,
            X_RATELIMIT_REMAINING,
            binding.remaining.to_string(),
        );
        insert(
            &mut headers,
            X_RATELIMIT_RESET,
            binding.reset_value(style.reset).to_string(),
        );
    }
    if style.ietf {
        let policies: Vec<String> = all.iter().map(Decision::ietf_policy).collect();
        let states: Vec<String> = all.iter().map(Decision::ietf_state).collect();
        insert(&mut headers, RATELIMIT_POLICY, policies.join(", "));
        insert(&mut headers, RATELIMIT, states.join(", "));
    }
    if !binding.allowed {
        let wait = binding.retry_after.unwrap_or(Duration::from_secs(1));
        insert(&mut headers, RETRY_AFTER, ceil_secs(wait).to_string());
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(allowed: bool, remaining: u64, retry_ms: Option<u64>, reset_ms: u64) -> Decision {
        Decision {
            allowed,
            limit: 100,
            remaining,
            retry_after: retry_ms.map(Duration::from_millis),
            reset_after: Duration::from_millis(reset_ms),
            window: Some(Duration::from_secs(60)),
            policy_name: "default".into(),
            at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
        }
    }

    fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
        h.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn the_documented_example() {
        // docs/limiter.md section 10: [0, 100, 0, 300, 59700].
        let h = decision(false, 0, Some(300), 59_700).headers();
        assert_eq!(get(&h, "ratelimit-policy"), Some("\"default\";q=100;w=60"));
        assert_eq!(get(&h, "ratelimit"), Some("\"default\";r=0;t=60"));
        assert_eq!(get(&h, "x-ratelimit-limit"), Some("100"));
        assert_eq!(get(&h, "x-ratelimit-remaining"), Some("0"));
        // 1_700_000_000.250 s + 59.7 s = 1_700_000_059.950 → 1_700_000_060.
        assert_eq!(get(&h, "x-ratelimit-reset"), Some("1700000060"));
        assert_eq!(get(&h, "retry-after"), Some("1"));
    }

    #[test]
    fn allowed_has_no_retry_after_and_delta_reset_rounds_up() {
        let style = HeaderStyle {
            reset: ResetFormat::DeltaSeconds,
            ..HeaderStyle::default()
        };
        let h = decision(true, 99, None, 600).headers_with(style);
        assert_eq!(get(&h, "x-ratelimit-reset"), Some("1"));
        assert_eq!(get(&h, "retry-after"), None);
        let only_ietf = HeaderStyle {
            x_ratelimit: false,
            ..HeaderStyle::default()
        };
        let h = decision(true, 99, None, 600).headers_with(only_ietf);
        assert_eq!(get(&h, "x-ratelimit-limit"), None);
        assert_eq!(get(&h, "ratelimit"), Some("\"default\";r=99;t=1"));
    }

    #[test]
    fn several_policies_are_listed_and_names_sanitised() {
        let a = decision(true, 7, None, 1_000).named("per-ip");
        let mut b = decision(true, 3, None, 2_000).named("tenant \"x\"");
        b.window = None;
        let multi = MultiDecision {
            allowed: true,
            retry_after: None,
            decisions: vec![a, b],
        };
        let h = multi.headers_with(HeaderStyle::default());
        assert_eq!(
            get(&h, "ratelimit-policy"),
            Some("\"per-ip\";q=100;w=60, \"tenant__x_\";q=100")
        );
        assert_eq!(
            get(&h, "ratelimit"),
            Some("\"per-ip\";r=7;t=1, \"tenant__x_\";r=3;t=2")
        );
        assert_eq!(get(&h, "x-ratelimit-remaining"), Some("3"));
    }

    #[test]
    fn ceil_secs_rounds_up_only_fractions() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(2001)), 3);
    }
}
