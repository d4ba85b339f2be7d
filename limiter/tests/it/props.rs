//! Property tests of `check` and `refund`: decisions equal the reference
//! models, every algorithm keeps its promise over any window, retry and reset
//! times are exact, PEEK never writes, refunds never overfill, state never
//! moves back, and nothing panics on extreme inputs.

use proptest::prelude::*;
use raftlimit_limiter::units::{NS_PER_MS, NS_PER_SEC};
use raftlimit_limiter::{
    check, refund, Algo, LimiterState, Params, StateKind, MAX_LIMIT, MAX_PERIOD_NS,
};

use crate::model::{TokenBucket, Windows};

/// Deliberately not aligned to any period.
const T0: u64 = 1_700_000_000 * NS_PER_SEC + 123_456_789;

#[derive(Clone, Debug)]
struct Step {
    advance_ns: u64,
    cost: u64,
    peek: bool,
}

fn period() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(NS_PER_MS),
        Just(7 * NS_PER_MS),
        Just(NS_PER_SEC),
        Just(1337 * NS_PER_MS),
        Just(60 * NS_PER_SEC),
        (1u64..=5000).prop_map(|ms| ms * NS_PER_MS),
    ]
}

fn params(algo: Algo) -> impl Strategy<Value = Params> {
    (1u64..=40, period(), 1u64..=60).prop_map(move |(limit, period_ns, burst)| {
        Params::new(limit, period_ns, Some(burst), algo).unwrap()
    })
}

fn step(p: Params) -> impl Strategy<Value = Step> {
    let interval = (p.period_ns / p.limit).max(1);
    let advance = prop_oneof![
        3 => Just(0u64),
        4 => 0..=interval * 2,
        2 => 0..=p.period_ns * 2,
        1 => Just(p.period_ns),
    ];
    let cap = p.capacity();
    let cost = prop_oneof![6 => Just(1u64), 3 => 0..=cap, 1 => 0..=cap + 2];
    (advance, cost, prop::bool::weighted(0.2)).prop_map(|(advance_ns, cost, peek)| Step {
        advance_ns,
        cost,
        peek,
    })
}

fn scenario(algo: Algo) -> impl Strategy<Value = (Params, Vec<Step>)> {
    params(algo).prop_flat_map(|p| (Just(p), prop::collection::vec(step(p), 1..80)))
}

/// How far a state has progressed; it must never decrease.
fn progress(state: &LimiterState) -> (u64, u128) {
    match state.kind {
        StateKind::Gcra { tat_ns, tat_frac } => (
            tat_ns,
            // The fraction as a share of a nanosecond, comparable across
            // limits: tat_frac / limit scaled by MAX_LIMIT.
            u128::from(tat_frac) * u128::from(MAX_LIMIT) / u128::from(state.params.limit),
        ),
        StateKind::Sliding {
            window_start_ns, ..
        }
        | StateKind::Fixed {
            window_start_ns, ..
        } => (window_start_ns, 0),
    }
}

enum Model {
    Bucket(TokenBucket),
    Windows(Windows),
}

impl Model {
    fn new(p: Params) -> Self {
        match p.algo {
            Algo::Gcra => Self::Bucket(TokenBucket::new(p, T0)),
            _ => Self::Windows(Windows::new(p)),
        }
    }

    fn take(&mut self, cost: u64, now: u64, commit: bool) -> (bool, u64) {
        match self {
            Self::Bucket(b) => b.take(cost, now, commit),
            Self::Windows(w) if w.p.algo == Algo::Fixed => w.take_fixed(cost, now, commit),
            Self::Windows(w) => w.take_sliding(cost, now, commit),
        }
    }
}

/// The promise of each algorithm over the consumed requests `(time, cost)`.
fn check_promise(p: &Params, taken: &[(u64, u64)]) -> Result<(), TestCaseError> {
    let (limit, period, burst) = (
        u128::from(p.limit),
        u128::from(p.period_ns),
        u128::from(p.burst),
    );
    for (i, &(start, _)) in taken.iter().enumerate() {
        let mut sum = 0u128;
        for &(t, cost) in &taken[i..] {
            sum += u128::from(cost);
            let elapsed = u128::from(t - start);
            match p.algo {
                // Units in [start, t] never exceed the bucket plus the refill.
                Algo::Gcra => prop_assert!(
                    sum <= burst + elapsed * limit / period,
                    "{sum} units in {elapsed} ns"
                ),
                // At most twice the limit in any span shorter than a period.
                Algo::Sliding if elapsed < period => prop_assert!(sum <= 2 * limit),
                _ => {}
            }
        }
    }
    if p.algo != Algo::Gcra {
        // Both windowed algorithms keep every aligned window within limit.
        let mut per_window = std::collections::BTreeMap::<u64, u64>::new();
        for &(t, cost) in taken {
            *per_window.entry(t / p.period_ns).or_default() += cost;
        }
        for (&w, &sum) in &per_window {
            prop_assert!(sum <= p.limit, "window {w} holds {sum}");
        }
    }
    Ok(())
}

fn peek_at(state: Option<&LimiterState>, p: &Params, cost: u64, at: u64) -> (bool, u64) {
    let out = check(state, p, cost, at, true);
    (out.decision.allowed, out.decision.remaining)
}

/// Runs one scenario through `check`, asserting every per-step property.
fn run(p: Params, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut model = Model::new(p);
    let mut state: Option<LimiterState> = None;
    let mut taken = Vec::new();
    let mut now = T0;
    let cap = p.capacity();
    for s in steps {
        now += s.advance_ns;
        let out = check(state.as_ref(), &p, s.cost, now, s.peek);
        let d = out.decision;

        // Same decision as the reference model.
        let (allowed, remaining) = model.take(s.cost, now, !s.peek);
        prop_assert_eq!(d.allowed, allowed, "step {:?} at {}", s, now);
        prop_assert_eq!(d.remaining, remaining);
        prop_assert_eq!(d.limit, cap);
        prop_assert!(d.remaining <= cap);

        // PEEK evaluates identically and never writes.
        let peeked = check(state.as_ref(), &p, s.cost, now, true);
        prop_assert_eq!(peeked.decision, d);
        prop_assert!(peeked.new_state.is_none());
        prop_assert_eq!(out.new_state.is_some(), d.allowed && !s.peek && s.cost > 0);

        if d.allowed {
            prop_assert_eq!(d.retry_after_ms, -1);
        } else if s.cost <= cap {
            // Exact retry: denied one millisecond before, allowed at it.
            let retry = u64::try_from(d.retry_after_ms).unwrap();
            prop_assert!(retry >= 1);
            let at = now + retry * NS_PER_MS;
            prop_assert!(peek_at(state.as_ref(), &p, s.cost, at).0);
            prop_assert!(!peek_at(state.as_ref(), &p, s.cost, at - NS_PER_MS).0);
        } else {
            prop_assert_eq!(d.retry_after_ms, p.period_ns.div_ceil(NS_PER_MS) as i64);
        }

        if let Some(new) = out.new_state {
            if let Some(old) = &state {
                prop_assert!(progress(&new) >= progress(old), "{old:?} -> {new:?}");
            }
            prop_assert_eq!(new.params, p);
            taken.push((now, s.cost));
            state = Some(new);
        }

        // Reset and expiry are exact for the state now stored, when this
        // step's decision describes it (a denial, or a write).
        let describes_stored = !d.allowed || (!s.peek && s.cost > 0);
        if describes_stored {
            let reset = d.reset_after_ms;
            prop_assert_eq!(
                peek_at(state.as_ref(), &p, 0, now + reset * NS_PER_MS).1,
                cap
            );
            if reset > 0 {
                let before = now + (reset - 1) * NS_PER_MS;
                prop_assert!(peek_at(state.as_ref(), &p, 0, before).1 < cap);
            }
            prop_assert!(out.expires_at_ns >= now);
            prop_assert_eq!(peek_at(state.as_ref(), &p, 0, out.expires_at_ns).1, cap);
            if out.expires_at_ns > now {
                prop_assert!(peek_at(state.as_ref(), &p, 0, out.expires_at_ns - 1).1 < cap);
            }
        }

        // A refund of n units restores exactly min(cap, remaining + n) for
        // GCRA and fixed; sliding may restore less when it has to take from
        // the previous window, whose units weigh less than one each.
        if let Some(current) = &state {
            let n = s.cost;
            let before = current.remaining(now);
            let after = refund(current, n, now).remaining(now);
            let full = cap.min(before + n);
            if p.algo == Algo::Sliding {
                prop_assert!(before <= after && after <= full, "{before} +{n} -> {after}");
            } else {
                prop_assert_eq!(after, full);
            }
        }
    }
    check_promise(&p, &taken)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn gcra_matches_token_bucket((p, steps) in scenario(Algo::Gcra)) {
        run(p, &steps)?;
    }

    #[test]
    fn fixed_matches_window_counts((p, steps) in scenario(Algo::Fixed)) {
        run(p, &steps)?;
    }

    #[test]
    fn sliding_matches_weighted_formula((p, steps) in scenario(Algo::Sliding)) {
        run(p, &steps)?;
    }

    /// Policies and algorithms changing between requests: no panic, the
    /// reply always within capacity, and a write carries the new policy.
    #[test]
    fn policy_changes_are_safe(
        policies in prop::collection::vec(
            prop_oneof![params(Algo::Gcra), params(Algo::Sliding), params(Algo::Fixed)], 1..4),
        steps in prop::collection::vec((0usize..4, 0u64..3_000_000_000, 0u64..70, any::<bool>()), 1..60),
    ) {
        let mut state: Option<LimiterState> = None;
        let mut now = T0;
        for (pick, advance, cost, peek) in steps {
            let p = policies[pick % policies.len()];
            now += advance;
            let out = check(state.as_ref(), &p, cost, now, peek);
            prop_assert!(out.decision.remaining <= p.capacity());
            if let Some(new) = out.new_state {
                prop_assert_eq!(new.params, p);
                if let Some(old) = &state {
                    if old.algo() == new.algo() {
                        prop_assert!(progress(&new) >= progress(old));
                    }
                }
                state = Some(new);
            }
        }
    }

    /// Extreme clocks and policies, valid or not, saturate rather than panic.
    #[test]
    fn extreme_inputs_never_panic(
        algo in prop_oneof![Just(Algo::Gcra), Just(Algo::Sliding), Just(Algo::Fixed)],
        limit in prop_oneof![Just(1u64), Just(MAX_LIMIT), 1u64..=MAX_LIMIT],
        burst in prop_oneof![Just(1u64), Just(MAX_LIMIT), 1u64..=MAX_LIMIT],
        period_ns in prop_oneof![Just(NS_PER_MS), Just(MAX_PERIOD_NS), NS_PER_MS..=MAX_PERIOD_NS],
        times in prop::collection::vec(any::<u64>(), 1..10),
        costs in prop::collection::vec(prop_oneof![0u64..3, any::<u64>()], 1..10),
    ) {
        // Built without validation: the refill bound is deliberately ignored.
        let p = Params { limit, period_ns, burst, algo };
        let mut state: Option<LimiterState> = None;
        for (now, cost) in times.iter().zip(costs.iter().cycle()) {
            let out = check(state.as_ref(), &p, *cost, *now, false);
            prop_assert!(out.decision.remaining <= p.capacity());
            if let Some(new) = out.new_state {
                state = Some(new);
            }
            if let Some(s) = &state {
                let r = refund(s, *cost, *now);
                prop_assert!(r.remaining(*now) <= p.capacity());
            }
        }
    }
}
