//! `raftlimit watch`: allowed and denied checks per second, per policy.
//!
//! The numbers come from the nodes' own counters
//! (`raftlimit_limiter_checks_total{policy,outcome}` on `/metrics`), summed
//! over all nodes, since a check is counted by the node that answered it.
//! Rates are differences between two samples, so the first sample only
//! sets the baseline.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;

use crate::error::ClientError;

use super::{print, EXIT_OK};

/// Largest /metrics page read.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// GETs `url` (plain HTTP) and returns the body.
pub async fn fetch_text(url: &str) -> Result<String, ClientError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| ClientError::Config(format!("'{url}' is not a URL")))?;
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| ClientError::Unavailable(format!("{url}: timed out")))?
        .map_err(|e| ClientError::Unavailable(format!("{url}: {e}")))?;
    if !response.status().is_success() {
        return Err(ClientError::Unavailable(format!(
            "{url}: HTTP {}",
            response.status()
        )));
    }
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ClientError::Unavailable(format!("{url}: {e}")))?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Check counts by (policy, outcome).
pub type Counts = BTreeMap<(String, String), f64>;

/// `raftlimit_limiter_checks_total` by (policy, outcome).
pub fn limiter_counts(text: &str) -> Counts {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("raftlimit_limiter_checks_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let label = |name: &str| {
            labels.split(',').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k.trim() == name).then(|| v.trim().trim_matches('"').to_owned())
            })
        };
        if let (Some(policy), Some(outcome)) = (label("policy"), label("outcome")) {
            *counts.entry((policy, outcome)).or_insert(0.0) += value;
        }
    }
    counts
}

pub(super) async fn run(
    urls: &[String],
    interval: Duration,
    count: Option<u64>,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, ClientError> {
    let mut previous: Option<(std::time::Instant, Counts)> = None;
    let mut printed = 0u64;
    loop {
        let started = std::time::Instant::now();
        let pages = futures::future::join_all(urls.iter().map(|u| fetch_text(u))).await;
        let mut totals: BTreeMap<(String, String), f64> = BTreeMap::new();
        let mut unreachable = Vec::new();
        for (url, page) in urls.iter().zip(pages) {
            match page {
                Ok(text) => {
                    for (k, v) in limiter_counts(&text) {
                        *totals.entry(k).or_insert(0.0) += v;
                    }
                }
                Err(_) => unreachable.push(url.clone()),
            }
        }
        if unreachable.len() == urls.len() {
            return Err(ClientError::Unavailable(format!(
                "no metrics endpoint answered: {}",
                urls.join(", ")
            )));
        }
        if let Some((at, before)) = &previous {
            let secs = at.elapsed().as_secs_f64().max(0.001);
            let mut policies: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
            for ((policy, outcome), now) in &totals {
                let then = before
                    .get(&(policy.clone(), outcome.clone()))
                    .copied()
                    .unwrap_or(0.0);
                // A restarted node starts its counters again from 0.
                let rate = (now - then).max(0.0) / secs;
                policies
                    .entry(policy.clone())
                    .or_default()
                    .insert(outcome.clone(), rate);
            }
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let rate = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
            let mut text = format!("t={t}");
            if policies.is_empty() {
                text.push_str(" (no limiter checks yet)");
            }
            for (policy, m) in &policies {
                text.push_str(&format!(
                    "\n  {policy:<24} allowed/s {:>10.1}  denied/s {:>10.1}  shadow_denied/s {:>8.1}",
                    rate(m, "allowed"),
                    rate(m, "denied"),
                    rate(m, "shadow_denied")
                ));
            }
            for url in &unreachable {
                text.push_str(&format!("\n  unreachable: {url}"));
            }
            let value =
                serde_json::json!({ "t": t, "policies": policies, "unreachable": unreachable });
            print(out, json, value, text)?;
            let _ = out.flush();
            printed += 1;
            if count.is_some_and(|c| printed >= c) {
                return Ok(EXIT_OK);
            }
        }
        previous = Some((started, totals));
        tokio::time::sleep(interval.saturating_sub(started.elapsed())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_summed_by_policy_and_outcome() {
        let text = "# TYPE raftlimit_limiter_checks_total counter\n\
            raftlimit_limiter_checks_total{policy=\"inline\",outcome=\"allowed\"} 10\n\
            raftlimit_limiter_checks_total{outcome=\"denied\",policy=\"api\"} 2\n\
            raftlimit_limiter_checks_total{policy=\"inline\",outcome=\"allowed\"} 5\n\
            raftlimit_other{policy=\"x\",outcome=\"y\"} 1\n";
        let c = limiter_counts(text);
        assert_eq!(c.get(&("inline".into(), "allowed".into())), Some(&15.0));
        assert_eq!(c.get(&("api".into(), "denied".into())), Some(&2.0));
        assert_eq!(c.len(), 2);
    }
}
