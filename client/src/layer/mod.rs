//! HTTP rate limiting as a `tower::Layer`, so one implementation serves
//! axum, hyper and tonic.
//!
//! The layer asks the cluster (one `RL.CHECK`, or one `RL.MCHECK` when a
//! rule has several limits) and answers 429 with a JSON body and the headers
//! of [`crate::headers`], or passes the request on and adds the headers to
//! the response. What happens when the cluster cannot answer within the
//! deadline is [`OnUnavailable`]: by default a local limiter at a share of
//! each limit takes over ([`crate::fallback`]). The switch is a circuit: the
//! first request to miss the deadline moves the layer to local decisions at
//! once for everyone (no request waits on a dead cluster again), and a
//! background probe moves it back as soon as the cluster answers a check.
//!
//! The decision itself ([`RateLimitLayer::decide`]) is independent of tower,
//! for frameworks that want to call it directly.

pub mod env;
pub mod key;
pub mod rules;
mod service;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use http::header::HeaderMap;
use http::request::Parts;
use parking_lot::Mutex;

use crate::client::Client;
use crate::error::ClientError;
use crate::fallback::{FallbackLimiter, DEFAULT_SHARE};
use crate::headers::{ceil_secs, headers_for, HeaderStyle};
use crate::limiter::{Check, Decision, Limit};
use crate::metrics::LimiterMetrics;

pub use key::{KeyExtractor, PeerAddr, TrustedProxies};
pub use rules::{LimitSpec, Rule};
pub use service::{RateLimitBody, RateLimitService};

use rules::{PathPattern, Rules};

/// What to do when the cluster does not answer a check in time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OnUnavailable {
    /// Decide locally at `share` of each limit (the default, share 0.5).
    Fallback { share: f64 },
    /// Let every request through, without rate-limit headers.
    Open,
    /// Refuse every limited request with 503 (`Retry-After: 1`).
    Closed,
}

impl Default for OnUnavailable {
    fn default() -> Self {
        OnUnavailable::Fallback {
            share: DEFAULT_SHARE,
        }
    }
}

/// The default deadline: long enough to ride out a leader election without
/// leaving the cluster's answers (an election timeout is 0.4 to 0.8 s, a
/// split vote takes a second round, then the client retries on the new
/// leader; 1.3 to 2.4 s was the slowest request seen across a leader kill in the
/// tests), short enough that an outage costs one slow request per pod.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3);

/// What the layer decided for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not rate limited (exempt path, or no rule applies).
    Exempt,
    /// Let through; add these headers to the response.
    Allow { headers: HeaderMap },
    /// Answer 429.
    Deny {
        endpoint: String,
        headers: HeaderMap,
        retry_after_secs: u64,
    },
    /// The cluster did not answer and the layer fails closed: answer 503.
    Unavailable { endpoint: String },
}

struct Degraded {
    since: Instant,
    accounted: Instant,
}

pub(crate) struct Engine {
    client: Client,
    rules: Rules,
    trusted: TrustedProxies,
    deadline: Duration,
    on_unavailable: OnUnavailable,
    style: HeaderStyle,
    metrics: LimiterMetrics,
    fallback: FallbackLimiter,
    prefix: String,
    shadow: bool,
    probe_interval: Duration,
    degraded: Mutex<Option<Degraded>>,
}

/// The tower layer; cheap to clone (all clones share one engine).
#[derive(Clone)]
pub struct RateLimitLayer {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("rules", &self.engine.rules)
            .field("deadline", &self.engine.deadline)
            .finish()
    }
}

/// Builds a [`RateLimitLayer`].
pub struct RateLimitBuilder {
    client: Client,
    rules: Rules,
    trusted: TrustedProxies,
    deadline: Duration,
    on_unavailable: OnUnavailable,
    style: HeaderStyle,
    metrics: Option<LimiterMetrics>,
    prefix: String,
    shadow: bool,
    probe_interval: Duration,
}

impl std::fmt::Debug for RateLimitBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitBuilder")
            .field("rules", &self.rules)
            .finish()
    }
}

impl RateLimitBuilder {
    /// The rule for requests under `pattern` (a path prefix; end it with `$`
    /// for an exact path).
    pub fn route(mut self, pattern: &str, rule: Rule) -> Self {
        self.rules.routes.push((PathPattern::new(pattern), rule));
        self
    }

    /// The rule for requests no route matches (without one they pass unlimited).
    pub fn default_rule(mut self, rule: Rule) -> Self {
        self.rules.default = Some(rule);
        self
    }

    /// Paths that are never limited (prefixes, or exact with a trailing `$`).
    pub fn exempt<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.rules
            .exempt
            .extend(patterns.into_iter().map(|p| PathPattern::new(p.as_ref())));
        self
    }

    pub fn trusted_proxies(mut self, trusted: TrustedProxies) -> Self {
        self.trusted = trusted;
        self
    }

    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn on_unavailable(mut self, mode: OnUnavailable) -> Self {
        self.on_unavailable = mode;
        self
    }

    pub fn headers(mut self, style: HeaderStyle) -> Self {
        self.style = style;
        self
    }

    /// Record into this registry (to share it with other layers).
    pub fn metrics(mut self, metrics: LimiterMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The prefix of every key the layer writes (default `rl`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Shadow mode for every rule: count and report, never deny.
    pub fn shadow(mut self, shadow: bool) -> Self {
        self.shadow = shadow;
        self
    }

    /// How often the cluster is probed while the layer decides locally.
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    pub fn build(self) -> RateLimitLayer {
        let share = match self.on_unavailable {
            OnUnavailable::Fallback { share } => share,
            _ => DEFAULT_SHARE,
        };
        RateLimitLayer {
            engine: Arc::new(Engine {
                client: self.client,
                rules: self.rules,
                trusted: self.trusted,
                deadline: self.deadline,
                on_unavailable: self.on_unavailable,
                style: self.style,
                metrics: self.metrics.unwrap_or_default(),
                fallback: FallbackLimiter::new(share),
                prefix: self.prefix,
                shadow: self.shadow,
                probe_interval: self.probe_interval,
                degraded: Mutex::new(None),
            }),
        }
    }
}

impl RateLimitLayer {
    pub fn builder(client: Client) -> RateLimitBuilder {
        RateLimitBuilder {
            client,
            rules: Rules::default(),
            trusted: TrustedProxies::none(),
            deadline: DEFAULT_DEADLINE,
            on_unavailable: OnUnavailable::default(),
            style: HeaderStyle::default(),
            metrics: None,
            prefix: "rl".into(),
            shadow: false,
            probe_interval: Duration::from_millis(250),
        }
    }

    pub fn metrics(&self) -> &LimiterMetrics {
        &self.engine.metrics
    }

    /// Whether checks are decided locally now (the cluster did not answer).
    pub fn is_degraded(&self) -> bool {
        self.engine.degraded.lock().is_some()
    }

    /// The decision for a request, without tower.
    pub async fn decide(&self, parts: &Parts) -> Verdict {
        Engine::decide(&self.engine, parts).await
    }
}

/// Without the peer address every client would share one budget; say so
/// once rather than on every request.
fn warn_no_peer_address() {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "requests carry no peer address, so every client shares the `anonymous` budget; \
             serve with axum's into_make_service_with_connect_info::<SocketAddr>() or insert a PeerAddr extension"
        );
    }
}

/// The keys and limits of one request.
struct Planned {
    endpoint: String,
    shadow: bool,
    cost: u64,
    items: Vec<(String, String, Limit)>,
}

impl Engine {
    fn plan(&self, parts: &Parts) -> Option<Planned> {
        let path = parts.uri.path();
        if self.rules.is_exempt(path) {
            return None;
        }
        let rule = self.rules.rule_for(path)?;
        if rule.limits.is_empty() {
            return None;
        }
        let items = rule
            .limits
            .iter()
            .map(|spec| {
                let identity = spec
                    .key
                    .extract(parts, &self.trusted, &rule.endpoint)
                    .unwrap_or_else(|| {
                        if matches!(spec.key, KeyExtractor::ClientIp) {
                            warn_no_peer_address();
                        }
                        "anonymous".into()
                    });
                let key = format!("{}:{}:{}:{identity}", self.prefix, rule.endpoint, spec.name);
                (spec.name.clone(), key, spec.limit.clone())
            })
            .collect();
        Some(Planned {
            endpoint: rule.endpoint.clone(),
            shadow: self.shadow || rule.shadow,
            cost: rule.cost_of(parts),
            items,
        })
    }

    async fn decide(this: &Arc<Engine>, parts: &Parts) -> Verdict {
        let Some(plan) = this.plan(parts) else {
            return Verdict::Exempt;
        };
        let decisions = if this.is_degraded() {
            Err(true)
        } else {
            this.ask_cluster(&plan).await
        };
        let decisions = match decisions {
            Ok(d) => d,
            Err(unavailable) => {
                if unavailable {
                    Engine::enter_degraded(this);
                }
                match this.decide_locally(&plan) {
                    Some(d) => d,
                    None if this.on_unavailable == OnUnavailable::Closed => {
                        return Verdict::Unavailable {
                            endpoint: plan.endpoint,
                        };
                    }
                    None => {
                        return Verdict::Allow {
                            headers: HeaderMap::new(),
                        };
                    }
                }
            }
        };
        this.verdict(plan, decisions)
    }

    /// The cluster's decisions, or whether the failure was the cluster's
    /// (`true`: unreachable or too slow) rather than the request's (a
    /// refusal such as `NOPERM` or an unknown policy, which says nothing
    /// about the cluster's health).
    async fn ask_cluster(&self, plan: &Planned) -> Result<(bool, Vec<Decision>), bool> {
        let started = Instant::now();
        let options = Check::cost(plan.cost);
        let outcome = tokio::time::timeout(self.deadline, async {
            if let [(name, key, limit)] = plan.items.as_slice() {
                let d = self.client.check_with(key, limit, &options).await?;
                Ok::<_, ClientError>((d.allowed, vec![d.named(name.clone())]))
            } else {
                let keys: Vec<(&str, Limit)> = plan
                    .items
                    .iter()
                    .map(|(_, key, limit)| (key.as_str(), limit.clone()))
                    .collect();
                let multi = self.client.check_many_with(&keys, &options).await?;
                let named = multi
                    .decisions
                    .into_iter()
                    .zip(&plan.items)
                    .map(|(d, (name, _, _))| d.named(name.clone()))
                    .collect();
                Ok((multi.allowed, named))
            }
        })
        .await;
        match outcome {
            Ok(Ok(decisions)) => {
                self.metrics.cluster_latency(started.elapsed());
                Ok(decisions)
            }
            Ok(Err(err)) => {
                self.metrics.redis_error();
                tracing::warn!(endpoint = %plan.endpoint, %err, "rate-limit check failed");
                Err(err.is_unavailable())
            }
            Err(_) => {
                self.metrics.redis_error();
                tracing::warn!(endpoint = %plan.endpoint, deadline = ?self.deadline, "rate-limit check missed its deadline");
                Err(true)
            }
        }
    }

    /// The fallback limiter's decisions, or `None` when the mode is not
    /// fallback or no limit has local numbers (a named policy).
    fn decide_locally(&self, plan: &Planned) -> Option<(bool, Vec<Decision>)> {
        if !matches!(self.on_unavailable, OnUnavailable::Fallback { .. }) {
            return None;
        }
        self.metrics.fallback_request();
        let mut decisions = Vec::new();
        for (name, key, limit) in &plan.items {
            if let Some(d) = self.fallback.check(key, limit, plan.cost) {
                let denied = !d.allowed;
                decisions.push(d.named(name.clone()));
                // Stop at the first denial, as far as a local limiter can
                // approximate the cluster's all-or-none.
                if denied {
                    return Some((false, decisions));
                }
            }
        }
        if decisions.is_empty() {
            return None;
        }
        Some((true, decisions))
    }

    fn verdict(&self, plan: Planned, (allowed, decisions): (bool, Vec<Decision>)) -> Verdict {
        let binding = if allowed {
            decisions.iter().min_by_key(|d| d.remaining)
        } else {
            decisions
                .iter()
                .filter(|d| !d.allowed)
                .max_by_key(|d| d.retry_after)
        };
        let Some(binding) = binding else {
            return Verdict::Allow {
                headers: HeaderMap::new(),
            };
        };
        // Shadow mode changes nothing a client can see, headers included.
        if allowed {
            self.metrics.allowed(&plan.endpoint);
            let headers = if plan.shadow {
                HeaderMap::new()
            } else {
                headers_for(&decisions, binding, self.style)
            };
            return Verdict::Allow { headers };
        }
        if plan.shadow {
            self.metrics.shadow_rejected(&plan.endpoint);
            return Verdict::Allow {
                headers: HeaderMap::new(),
            };
        }
        self.metrics.rejected(&plan.endpoint);
        Verdict::Deny {
            headers: headers_for(&decisions, binding, self.style),
            retry_after_secs: ceil_secs(binding.retry_after.unwrap_or(Duration::from_secs(1))),
            endpoint: plan.endpoint,
        }
    }

    fn is_degraded(&self) -> bool {
        let mut degraded = self.degraded.lock();
        if let Some(state) = degraded.as_mut() {
            let now = Instant::now();
            self.metrics.fallback_time(now - state.accounted);
            state.accounted = now;
            true
        } else {
            false
        }
    }

    fn enter_degraded(this: &Arc<Engine>) {
        let mut degraded = this.degraded.lock();
        if degraded.is_some() {
            return;
        }
        let now = Instant::now();
        *degraded = Some(Degraded {
            since: now,
            accounted: now,
        });
        this.metrics.fallback_active(true);
        tracing::warn!("rate-limit cluster unavailable; deciding locally");
        let weak = Arc::downgrade(this);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(Engine::probe(weak));
        }
    }

    /// Checks the cluster until it answers, then hands decisions back to it.
    async fn probe(weak: Weak<Engine>) {
        loop {
            let Some(engine) = weak.upgrade() else {
                return;
            };
            let interval = engine.probe_interval;
            drop(engine);
            tokio::time::sleep(interval).await;
            let Some(engine) = weak.upgrade() else {
                return;
            };
            let key = format!("{}:probe", engine.prefix);
            let answered = tokio::time::timeout(
                engine.deadline,
                engine
                    .client
                    .check_with(&key, &Limit::per_second(1), &Check::cost(0)),
            )
            .await;
            engine.is_degraded();
            if let Ok(Ok(_)) = answered {
                engine.leave_degraded();
                return;
            }
        }
    }

    fn leave_degraded(&self) {
        let mut degraded = self.degraded.lock();
        if let Some(state) = degraded.take() {
            self.metrics.fallback_time(state.accounted.elapsed());
            self.metrics.fallback_active(false);
            self.fallback.clear();
            tracing::warn!(after = ?state.since.elapsed(), "rate-limit cluster answers again");
        }
    }
}
