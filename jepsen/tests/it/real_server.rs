//! The limiter and lease checkers against the server's real algorithms (`raftlimit-limiter`).
//!
//! A simulated cluster applies each command with a timestamp stamped by the
//! current leader's wall clock, as the state machine does. Leaders change
//! every 50 ms and their clocks disagree by up to 2 ms, so timestamps
//! sometimes run backwards across an election, which the algorithms must
//! tolerate and the checkers must not mistake for a violation. A
//! split-brain mode (two diverged copies of the state each admitting on their
//! own, the classic result of serving without a quorum) must be caught.

use std::collections::HashMap;

use proptest::prelude::*;
use raftlimit_jepsen::checker::{Leases, Limiter, Validity};
use raftlimit_jepsen::history::{Algo, History, LeaseArgs, LimitArgs, Outcome, Value, Verdict, F};
use raftlimit_limiter::{LeaseSet, LimiterState, Params};
use rand::Rng;

use crate::support::{run, simulate, Request, SimConfig};

const MS: u64 = 1_000_000;
/// Wall clock at the start of the run.
const EPOCH_NS: u64 = 1_700_000_000_000_000_000;
/// Largest clock difference between two nodes.
const SKEW_NS: u64 = 2 * MS;
const TERM_NS: u64 = 50 * MS;

/// The leader's timestamp for a command applied at `now` (our clock): each
/// term's leader has its own clock error in `[-SKEW/2, +SKEW/2]`.
fn stamp(now: u64) -> u64 {
    let term = now / TERM_NS;
    let error = term.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    EPOCH_NS + now + error % (SKEW_NS + 1) - SKEW_NS / 2
}

/// Replicated state, with an optional diverged second copy between
/// `split.0` and `split.1` (our clock) that serves every other command.
struct Cluster<S: Clone> {
    primary: HashMap<String, S>,
    diverged: Option<HashMap<String, S>>,
    split: Option<(u64, u64)>,
    commands: u64,
}

impl<S: Clone> Cluster<S> {
    fn new(split: Option<(u64, u64)>) -> Self {
        Self {
            primary: HashMap::new(),
            diverged: None,
            split,
            commands: 0,
        }
    }

    /// The copy of the state that serves a command at `now`.
    fn state_for(&mut self, now: u64) -> &mut HashMap<String, S> {
        self.commands += 1;
        match self.split {
            Some((from, to)) if (from..to).contains(&now) => {
                let copy = self.diverged.get_or_insert_with(|| self.primary.clone());
                if self.commands.is_multiple_of(2) {
                    copy
                } else {
                    &mut self.primary
                }
            }
            _ => {
                self.diverged = None;
                &mut self.primary
            }
        }
    }
}

fn to_real(algo: Algo) -> raftlimit_limiter::Algo {
    match algo {
        Algo::Gcra => raftlimit_limiter::Algo::Gcra,
        Algo::Sliding => raftlimit_limiter::Algo::Sliding,
        Algo::Fixed => raftlimit_limiter::Algo::Fixed,
    }
}

fn limiter_run(seed: u64, algo: Algo, split: Option<(u64, u64)>) -> History {
    let args = LimitArgs {
        limit: 5,
        period_ms: 100,
        algo,
        burst: None,
    };
    let params = Params::new(args.limit, args.period_ms * MS, args.burst, to_real(algo)).unwrap();
    let mut cluster: Cluster<LimiterState> = Cluster::new(split);
    // Every check is resolved: indeterminate ones count as admissions, and
    // the harness resends them with their ID until the server answers.
    let cfg = SimConfig {
        workers: 6,
        ops_per_worker: 200,
        max_latency_ns: 3 * MS,
        max_gap_ns: 8 * MS,
        p_info: 0.0,
        ..SimConfig::default()
    };
    let value = Value::Limit(args);
    simulate(
        seed,
        cfg,
        |now, req| {
            let states = cluster.state_for(now);
            let out = raftlimit_limiter::check(states.get(&req.key), &params, 1, stamp(now), false);
            if let Some(state) = out.new_state {
                states.insert(req.key.clone(), state);
            }
            let d = out.decision;
            Value::Verdict(Verdict {
                allowed: d.allowed,
                limit: Some(d.limit),
                remaining: Some(d.remaining),
                retry_after_ms: Some(d.retry_after_ms),
                reset_after_ms: Some(d.reset_after_ms),
            })
        },
        |rng, _, _| {
            let key = if rng.gen_bool(0.5) { "rl0" } else { "rl1" };
            Some(Request::new(F::Check, key, value.clone()))
        },
    )
    .0
}

fn lease_run(seed: u64, split: Option<(u64, u64)>) -> History {
    let args = LeaseArgs {
        limit: 2,
        ttl_ms: 40,
    };
    let mut cluster: Cluster<LeaseSet> = Cluster::new(split);
    let mut next_id = 0u64;
    let cfg = SimConfig {
        workers: 6,
        ops_per_worker: 150,
        max_latency_ns: 3 * MS,
        max_gap_ns: 50 * MS,
        ..SimConfig::default()
    };
    simulate(
        seed,
        cfg,
        |now, req| {
            let t = stamp(now);
            let set = cluster.state_for(now).entry(req.key.clone()).or_default();
            match (req.f, &req.args) {
                (F::Acquire, _) => {
                    // Ids come from the log index on the real server: unique.
                    next_id += 1;
                    match set.acquire(args.limit, args.ttl_ms * MS, t, format!("{next_id:019}")) {
                        Ok((id, _held)) => Value::Str(id),
                        Err(_held) => Value::Nil,
                    }
                }
                (F::Release, Value::Str(id)) => Value::Bool(set.release(id, t)),
                _ => Value::Nil,
            }
        },
        |rng, _, last| match last {
            Some(seen) if seen.outcome == Outcome::Ok && seen.request.f == F::Acquire => {
                match &seen.result {
                    Value::Str(id) if rng.gen_bool(0.8) => {
                        Some(Request::new(F::Release, "sem", Value::str(id.as_str())))
                    }
                    _ => Some(Request::new(F::Acquire, "sem", Value::Lease(args))),
                }
            }
            _ => Some(Request::new(F::Acquire, "sem", Value::Lease(args))),
        },
    )
    .0
}

/// Split brain from 200 ms to 700 ms: several periods and many leases long.
const SPLIT: Option<(u64, u64)> = Some((200 * MS, 700 * MS));

proptest! {
    #![proptest_config(crate::support::cases(16))]

    #[test]
    fn real_fixed_window_passes(seed in any::<u64>()) {
        let r = run(&Limiter::default(), &limiter_run(seed, Algo::Fixed, None));
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r.anomalies);
        prop_assert!(r.stats["total"]["claims_checked"].as_u64().unwrap_or(0) > 50, "{}", r.stats);
    }

    #[test]
    fn real_sliding_window_passes(seed in any::<u64>()) {
        let r = run(&Limiter::default(), &limiter_run(seed, Algo::Sliding, None));
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r.anomalies);
    }

    #[test]
    fn real_gcra_passes(seed in any::<u64>()) {
        let r = run(&Limiter::default(), &limiter_run(seed, Algo::Gcra, None));
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r.anomalies);
        prop_assert!(r.stats["total"]["denied"].as_u64().unwrap_or(0) > 100, "{}", r.stats);
    }

    #[test]
    fn real_leases_pass(seed in any::<u64>()) {
        let r = run(&Leases::default(), &lease_run(seed, None));
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r.anomalies);
    }

    #[test]
    fn split_brain_fixed_window_is_caught(seed in any::<u64>()) {
        let r = run(&Limiter::default(), &limiter_run(seed, Algo::Fixed, SPLIT));
        prop_assert_eq!(r.valid, Validity::Invalid, "{}", r.stats);
    }

    #[test]
    fn split_brain_sliding_window_is_caught(seed in any::<u64>()) {
        let r = run(&Limiter::default(), &limiter_run(seed, Algo::Sliding, SPLIT));
        prop_assert_eq!(r.valid, Validity::Invalid, "{}", r.stats);
    }

    #[test]
    fn split_brain_gcra_is_caught(seed in any::<u64>()) {
        let r = run(&Limiter::default(), &limiter_run(seed, Algo::Gcra, SPLIT));
        prop_assert_eq!(r.valid, Validity::Invalid, "{}", r.stats);
    }

    #[test]
    fn split_brain_leases_are_caught(seed in any::<u64>()) {
        let r = run(&Leases::default(), &lease_run(seed, SPLIT));
        prop_assert_eq!(r.valid, Validity::Invalid, "{}", r.stats);
    }
}
