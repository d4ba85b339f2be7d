//! The middleware's Prometheus metrics, under the names deployments alert on.
//!
//! Each [`LimiterMetrics`] owns its own registry rather than the process-wide
//! `metrics` recorder: a service may run several layers, or already use the
//! global recorder for something else, and tests run many apps in one
//! process. The application serves [`LimiterMetrics::render`] on its
//! `/metrics` (appending its own metrics if it has any).
//!
//! | name | type | meaning |
//! | --- | --- | --- |
//! | `limiter_redis_errors` | counter | checks the cluster could not answer (error or deadline), after the client's retries |
//! | `rate_limit_rejected_total{endpoint}` | counter | requests answered 429 |
//! | `rate_limit_allowed_total{endpoint}` | counter | requests let through after a check |
//! | `rate_limit_shadow_rejected_total{endpoint}` | counter | would-be 429s let through in shadow mode |
//! | `limiter_fallback_active` | gauge | 1 while the local fallback limiter decides |
//! | `limiter_fallback_seconds` | gauge | total seconds spent in fallback since start |
//! | `limiter_fallback_requests_total` | counter | requests decided by the fallback limiter |
//! | `limiter_cluster_latency_seconds` | histogram | time for the cluster to answer a check |

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub const REDIS_ERRORS: &str = "limiter_redis_errors";
pub const REJECTED: &str = "rate_limit_rejected_total";
pub const ALLOWED: &str = "rate_limit_allowed_total";
pub const SHADOW_REJECTED: &str = "rate_limit_shadow_rejected_total";
pub const FALLBACK_ACTIVE: &str = "limiter_fallback_active";
pub const FALLBACK_SECONDS: &str = "limiter_fallback_seconds";
pub const FALLBACK_REQUESTS: &str = "limiter_fallback_requests_total";
pub const CLUSTER_LATENCY: &str = "limiter_cluster_latency_seconds";

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static METADATA: Metadata<'static> = Metadata::new("raftlimit_client", Level::INFO, None);

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    redis_errors: Counter,
    fallback_active: Gauge,
    fallback_seconds: Gauge,
    fallback_requests: Counter,
    latency: Histogram,
}

/// A registry of the limiter metrics; cheap to clone.
#[derive(Clone)]
pub struct LimiterMetrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LimiterMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LimiterMetrics")
    }
}

impl Default for LimiterMetrics {
    fn default() -> Self {
        LimiterMetrics::new()
    }
}

impl LimiterMetrics {
    pub fn new() -> LimiterMetrics {
        // A fixed set of buckets from sub-millisecond (a local cluster) to
        // seconds (a failover). It only fails for an empty bucket list.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(CLUSTER_LATENCY.into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            recorder.describe_counter(KeyName::from_const_str(name), unit, help.into());
        };
        describe(
            REDIS_ERRORS,
            None,
            "Checks the rate-limit cluster could not answer, after retries",
        );
        describe(REJECTED, None, "Requests rejected with 429, per endpoint");
        describe(
            ALLOWED,
            None,
            "Requests allowed after a rate-limit check, per endpoint",
        );
        describe(
            SHADOW_REJECTED,
            None,
            "Requests that would have been rejected, let through in shadow mode",
        );
        describe(
            FALLBACK_REQUESTS,
            None,
            "Requests decided by the local fallback limiter",
        );
        recorder.describe_gauge(
            KeyName::from_const_str(FALLBACK_ACTIVE),
            None,
            "1 while the local fallback limiter decides".into(),
        );
        recorder.describe_gauge(
            KeyName::from_const_str(FALLBACK_SECONDS),
            Some(Unit::Seconds),
            "Seconds spent in fallback since start".into(),
        );
        recorder.describe_histogram(
            KeyName::from_const_str(CLUSTER_LATENCY),
            Some(Unit::Seconds),
            "Time for the rate-limit cluster to answer a check".into(),
        );
        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_static_name(name), &METADATA);
        let gauge =
            |name: &'static str| recorder.register_gauge(&Key::from_static_name(name), &METADATA);
        let redis_errors = counter(REDIS_ERRORS);
        let fallback_requests = counter(FALLBACK_REQUESTS);
        let fallback_active = gauge(FALLBACK_ACTIVE);
        let fallback_seconds = gauge(FALLBACK_SECONDS);
        let latency =
            recorder.register_histogram(&Key::from_static_name(CLUSTER_LATENCY), &METADATA);
        // Present from the start (at 0), so an alert on a rate sees the series.
        redis_errors.increment(0);
        fallback_requests.increment(0);
        fallback_active.set(0.0);
        fallback_seconds.set(0.0);
        LimiterMetrics {
            inner: Arc::new(Inner {
                recorder,
                handle,
                redis_errors,
                fallback_active,
                fallback_seconds,
                fallback_requests,
                latency,
            }),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.inner.handle.render()
    }

    fn endpoint_counter(&self, name: &'static str, endpoint: &str) -> Counter {
        let key = Key::from_parts(name, vec![Label::new("endpoint", endpoint.to_owned())]);
        self.inner.recorder.register_counter(&key, &METADATA)
    }

    pub fn rejected(&self, endpoint: &str) {
        self.endpoint_counter(REJECTED, endpoint).increment(1);
    }

    pub fn allowed(&self, endpoint: &str) {
        self.endpoint_counter(ALLOWED, endpoint).increment(1);
    }

    pub fn shadow_rejected(&self, endpoint: &str) {
        self.endpoint_counter(SHADOW_REJECTED, endpoint)
            .increment(1);
    }

    pub fn redis_error(&self) {
        self.inner.redis_errors.increment(1);
    }

    pub fn cluster_latency(&self, elapsed: Duration) {
        self.inner.latency.record(elapsed.as_secs_f64());
    }

    pub fn fallback_request(&self) {
        self.inner.fallback_requests.increment(1);
    }

    pub fn fallback_active(&self, active: bool) {
        self.inner
            .fallback_active
            .set(if active { 1.0 } else { 0.0 });
    }

    pub fn fallback_time(&self, elapsed: Duration) {
        self.inner.fallback_seconds.increment(elapsed.as_secs_f64());
    }
}

/// The value of a sample in a Prometheus text exposition (`name` with its
/// labels exactly as written, e.g. `rate_limit_rejected_total{endpoint="search"}`),
/// for tests and the `watch` command.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_render_with_labels() {
        let m = LimiterMetrics::new();
        m.rejected("search");
        m.rejected("search");
        m.redis_error();
        m.cluster_latency(Duration::from_millis(3));
        m.fallback_time(Duration::from_millis(1500));
        let text = m.render();
        assert_eq!(
            sample(&text, "rate_limit_rejected_total{endpoint=\"search\"}"),
            Some(2.0)
        );
        assert_eq!(sample(&text, "limiter_redis_errors"), Some(1.0));
        assert_eq!(sample(&text, "limiter_fallback_seconds"), Some(1.5));
        assert_eq!(
            sample(&text, "limiter_cluster_latency_seconds_count"),
            Some(1.0)
        );
        assert!(
            text.contains("limiter_cluster_latency_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
    }
}
