//! Shared test tooling: a terse history builder and a discrete-event simulator of clients.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use raftlimit_jepsen::checker::{CheckResult, Checker, Validity};
use raftlimit_jepsen::history::{History, Op, OpKind, Outcome, Value, F};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How a planted operation ends.
#[derive(Debug, Clone)]
pub enum End {
    Ok(Value, u64),
    Fail(u64),
    Info(u64),
    Never,
}

/// Builds histories from whole operations; records are sorted by time on
/// `build`, completions before invocations at equal times so a process's
/// next invocation may share its previous completion's timestamp.
#[derive(Debug, Default)]
pub struct Planted {
    ops: Vec<Op>,
}

impl Planted {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn op(mut self, process: u64, f: F, key: &str, args: Value, at: u64, end: End) -> Self {
        let invoke = Op::invoke(process, f, key, args, at);
        let completion = match end {
            End::Ok(v, t) => Some(invoke.complete(OpKind::Ok, v, t)),
            End::Fail(t) => Some(
                invoke
                    .complete(OpKind::Fail, Value::Nil, t)
                    .with_error("refused"),
            ),
            End::Info(t) => Some(
                invoke
                    .complete(OpKind::Info, Value::Nil, t)
                    .with_error("timeout"),
            ),
            End::Never => None,
        };
        self.ops.push(invoke);
        self.ops.extend(completion);
        self
    }

    pub fn build(mut self) -> History {
        self.ops
            .sort_by_key(|op| (op.time_ns, op.kind == OpKind::Invoke));
        History::from_ops(self.ops)
    }
}

/// A string value.
pub fn s(v: &str) -> Value {
    Value::str(v)
}

/// Runs a checker over a history that must pair cleanly.
pub fn run(checker: &dyn Checker, history: &History) -> CheckResult {
    let pairs = history
        .pairs()
        .unwrap_or_else(|e| panic!("history does not pair: {e}"));
    checker.check(&pairs)
}

/// Asserts a verdict, printing the result when it differs.
#[track_caller]
pub fn assert_verdict(result: &CheckResult, expected: Validity) {
    assert_eq!(
        result.valid, expected,
        "unexpected verdict; anomalies: {:#?}\nstats: {}",
        result.anomalies, result.stats
    );
}

/// A request a simulated client sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub f: F,
    pub key: String,
    pub args: Value,
}

impl Request {
    pub fn new(f: F, key: &str, args: Value) -> Self {
        Self {
            f,
            key: key.to_owned(),
            args,
        }
    }
}

/// What a client saw for its previous request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub request: Request,
    pub outcome: Outcome,
    pub result: Value,
}

/// Timing and fault mix of a simulation.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    pub workers: usize,
    pub ops_per_worker: usize,
    /// Latency of a request is uniform in `1..=max_latency_ns`.
    pub max_latency_ns: u64,
    /// Think time between a completion and the next invocation.
    pub max_gap_ns: u64,
    /// Probability a request ends `Info`.
    pub p_info: f64,
    /// Probability an `Info` request nevertheless takes effect.
    pub p_info_applied: f64,
    /// Probability a request ends `Fail` (and takes no effect).
    pub p_fail: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            ops_per_worker: 30,
            max_latency_ns: 100,
            max_gap_ns: 30,
            p_info: 0.1,
            p_info_applied: 0.5,
            p_fail: 0.05,
        }
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    // Declaration order is the tie-break at equal times: an effect is applied
    // before a completion that shares its instant reports it.
    Effect(usize),
    Complete(usize),
    Invoke(usize),
}

struct InFlight {
    worker: usize,
    process: u64,
    request: Request,
    outcome: Outcome,
    result: Value,
}

/// Simulates `cfg.workers` clients against a linearizable server.
///
/// Each request takes effect atomically at one instant: inside its
/// `[invoke, complete]` interval when it ends `Ok`, never when it ends
/// `Fail`, and for `Info` either never or at any instant after invocation,
/// up to three latencies later (so possibly after the client gave up). The
/// server is `apply(effect_time_ns, request) -> reply`; `next` picks each
/// worker's next request from what it saw last. A worker whose request
/// ended `Info` continues as a new process, as the runner does. Returns the
/// history and the time of the last event (effects included), after which
/// final reads observe the server's final state.
pub fn simulate(
    seed: u64,
    cfg: SimConfig,
    mut apply: impl FnMut(u64, &Request) -> Value,
    mut next: impl FnMut(&mut StdRng, usize, Option<&Seen>) -> Option<Request>,
) -> (History, u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut end = 0;
    let mut history = History::new();
    let mut queue: BinaryHeap<Reverse<(u64, Event)>> = BinaryHeap::new();
    let mut flights: Vec<InFlight> = Vec::new();
    let mut process: Vec<u64> = (0..cfg.workers as u64).collect();
    let mut issued = vec![0usize; cfg.workers];
    let mut last: Vec<Option<Seen>> = vec![None; cfg.workers];
    for w in 0..cfg.workers {
        let start = rng.gen_range(0..=cfg.max_gap_ns);
        queue.push(Reverse((start, Event::Invoke(w))));
    }
    while let Some(Reverse((now, event))) = queue.pop() {
        end = end.max(now);
        match event {
            Event::Invoke(w) => {
                if issued[w] >= cfg.ops_per_worker {
                    continue;
                }
                let Some(request) = next(&mut rng, w, last[w].as_ref()) else {
                    continue;
                };
                issued[w] += 1;
                let latency = rng.gen_range(1..=cfg.max_latency_ns);
                let roll: f64 = rng.gen();
                let (outcome, effect) = if roll < cfg.p_fail {
                    (Outcome::Fail, None)
                } else if roll < cfg.p_fail + cfg.p_info {
                    let applied = rng.gen_bool(cfg.p_info_applied);
                    (
                        Outcome::Info,
                        applied.then(|| now + rng.gen_range(0..=3 * latency)),
                    )
                } else {
                    (Outcome::Ok, Some(now + rng.gen_range(0..=latency)))
                };
                let id = flights.len();
                history.push(Op::invoke(
                    process[w],
                    request.f,
                    &request.key,
                    request.args.clone(),
                    now,
                ));
                flights.push(InFlight {
                    worker: w,
                    process: process[w],
                    request,
                    outcome,
                    result: Value::Nil,
                });
                if let Some(t) = effect {
                    queue.push(Reverse((t, Event::Effect(id))));
                }
                queue.push(Reverse((now + latency, Event::Complete(id))));
            }
            Event::Effect(id) => {
                let reply = apply(now, &flights[id].request);
                flights[id].result = reply;
            }
            Event::Complete(id) => {
                let f = &flights[id];
                let kind = match f.outcome {
                    Outcome::Ok => OpKind::Ok,
                    Outcome::Fail => OpKind::Fail,
                    Outcome::Info => OpKind::Info,
                };
                let value = if f.outcome == Outcome::Ok {
                    f.result.clone()
                } else {
                    Value::Nil
                };
                let invoke = Op::invoke(f.process, f.request.f, &f.request.key, Value::Nil, 0);
                history.push(invoke.complete(kind, value.clone(), now));
                let w = f.worker;
                if f.outcome == Outcome::Info {
                    process[w] = History::next_process(process[w], cfg.workers as u64);
                }
                last[w] = Some(Seen {
                    request: f.request.clone(),
                    outcome: f.outcome,
                    result: value,
                });
                let gap = rng.gen_range(0..=cfg.max_gap_ns);
                queue.push(Reverse((now + gap, Event::Invoke(w))));
            }
        }
    }
    (history, end)
}

/// Proptest settings with `default` cases, or `PROPTEST_CASES` when set, so
/// a long soak of the randomized tests needs no code change.
pub fn cases(default: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    proptest::test_runner::Config::with_cases(cases)
}
