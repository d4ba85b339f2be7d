//! The Wing–Gong–Lowe linearization search for one key's register operations.
//!
//! Operations become *call* and *return* entries in a doubly linked list
//! sorted by time. The search walks the list from the head: at a call entry it
//! tries to linearize that operation next (apply it to the model; if the model
//! accepts, remove the operation's entries from the list and restart from the
//! head); at a return entry it has run out of candidates that may precede that
//! operation's completion, so it backtracks by undoing the most recent
//! linearization and trying the next candidate after it.
//!
//! Memoisation (Lowe's improvement, as in Porcupine): the future of the search
//! depends only on *which* operations are linearized and the model state, so
//! each `(set, state)` configuration is explored at most once. The set is a
//! bitset; its Zobrist hash (XOR of one random word per operation) is kept
//! incrementally so a lookup does not rehash the whole bitset.
//!
//! Indeterminate operations have a call entry but no return entry: they may be
//! linearized anywhere after their call, and they never force a backtrack, so
//! leaving them out ("never took effect") is also explored. The search succeeds
//! once every operation that has a return entry is linearized.
//!
//! Two reductions prune branches that cannot matter (proofs at
//! `Search::run`): a read that can go next and matches the register is taken
//! without trying alternatives, and an indeterminate write whose value no
//! remaining operation observes is never tried.

use std::collections::HashMap;

/// Register value id: 0 is "absent" (nil), other ids index interned strings.
pub(super) type State = u32;

/// What an operation does to, and expects from, the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// A read that returned this value.
    Read(State),
    /// A write of this value.
    Write(State),
    /// `SET … GET`: writes `new`; `prev` is the value it returned, `None`
    /// when the reply is unknown.
    Swap { new: State, prev: Option<State> },
}

impl Step {
    /// The state after applying the step, or `None` if the step's observed
    /// result is impossible in `state`.
    fn apply(self, state: State) -> Option<State> {
        match self {
            Step::Read(v) => (v == state).then_some(state),
            Step::Write(v) => Some(v),
            Step::Swap { new, prev } => match prev {
                Some(p) if p != state => None,
                _ => Some(new),
            },
        }
    }
}

/// One operation as the search sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct SearchOp {
    pub step: Step,
    pub call: u64,
    /// `None` for indeterminate operations (their completion is +∞ and they
    /// may also never take effect).
    pub ret: Option<u64>,
}

/// Limits on the search; exceeding either ends it with [`Outcome::Exhausted`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    pub max_steps: u64,
    pub max_cache_entries: usize,
}

/// How the search ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// A linearization exists.
    Linearizable,
    /// None exists. `prefix` is the longest sequence of operations the search
    /// linearized consistently, `state` the register after it, and `blocked`
    /// the operation whose completion the search could not get past from there.
    Violation {
        blocked: usize,
        prefix: Vec<usize>,
        state: State,
    },
    /// The budget ran out before the search decided.
    Exhausted,
}

/// Effort counters, reported as statistics.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Effort {
    pub steps: u64,
    pub cache_entries: usize,
}

const NIL: usize = usize::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    op: usize,
    is_call: bool,
}

/// The time-ordered entry list with O(1) unlink and relink ("dancing links").
/// Index 0 is the head sentinel.
struct EntryList {
    entries: Vec<Entry>,
    prev: Vec<usize>,
    next: Vec<usize>,
    /// For each operation: its call entry and optional return entry.
    call_of: Vec<usize>,
    ret_of: Vec<Option<usize>>,
}

impl EntryList {
    fn new(ops: &[SearchOp]) -> Self {
        // (time, 0 for call / 1 for return, op). At equal times calls sort
        // before returns, which makes touching operations concurrent: the
        // conservative choice, since it only ever adds allowed orders.
        let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.call, 0, i));
            if let Some(r) = op.ret {
                order.push((r, 1, i));
            }
        }
        order.sort_unstable();
        let n = order.len();
        let mut entries = Vec::with_capacity(n + 1);
        entries.push(Entry {
            op: NIL,
            is_call: false,
        });
        let mut call_of = vec![NIL; ops.len()];
        let mut ret_of = vec![None; ops.len()];
        for (pos, &(_, kind, op)) in order.iter().enumerate() {
            let idx = pos + 1;
            entries.push(Entry {
                op,
                is_call: kind == 0,
            });
            if kind == 0 {
                call_of[op] = idx;
            } else {
                ret_of[op] = Some(idx);
            }
        }
        let prev = (0..=n).map(|i| i.wrapping_sub(1)).collect();
        let next = (0..=n).map(|i| if i == n { NIL } else { i + 1 }).collect();
        Self {
            entries,
            prev,
            next,
            call_of,
            ret_of,
        }
    }

    fn unlink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = x;
        if n != NIL {
            self.prev[n] = x;
        }
    }

    /// Removes an operation's call and return entries.
    fn lift(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        if let Some(r) = self.ret_of[op] {
            self.unlink(r);
        }
    }

    /// Restores what [`Self::lift`] removed; lifts are undone in LIFO order,
    /// which is what keeps the saved neighbour pointers valid.
    fn unlift(&mut self, op: usize) {
        if let Some(r) = self.ret_of[op] {
            self.relink(r);
        }
        self.relink(self.call_of[op]);
    }
}

/// Bitset of linearized operations plus its incremental Zobrist hash.
struct Linearized {
    words: Vec<u64>,
    hash: u64,
    keys: Vec<u64>,
}

impl Linearized {
    fn new(n: usize) -> Self {
        Self {
            words: vec![0; n.div_ceil(64)],
            hash: 0,
            keys: (0..n as u64).map(splitmix64).collect(),
        }
    }

    fn toggle(&mut self, op: usize) {
        self.words[op / 64] ^= 1 << (op % 64);
        self.hash ^= self.keys[op];
    }
}

/// A fixed pseudo-random word per operation; determinism keeps runs reproducible.
fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Configurations already explored, bucketed by (set hash, state).
#[derive(Default)]
struct Seen {
    buckets: HashMap<(u64, State), Vec<Box<[u64]>>>,
    len: usize,
}

impl Seen {
    /// Records the configuration; `false` if it was already there.
    fn insert(&mut self, set: &Linearized, state: State) -> bool {
        let bucket = self.buckets.entry((set.hash, state)).or_default();
        if bucket.iter().any(|w| **w == *set.words) {
            return false;
        }
        bucket.push(set.words.clone().into_boxed_slice());
        self.len += 1;
        true
    }
}

/// Searches for a linearization of `ops` starting from an absent register.
pub(super) fn search(ops: &[SearchOp], budget: Budget) -> (Outcome, Effort) {
    Search::new(ops).run(budget)
}

/// One level of the search: the operation linearized there, the register
/// before it, and whether it was a forced read (see [`Search::run`]).
#[derive(Debug, Clone, Copy)]
struct Frame {
    op: usize,
    before: State,
    forced: bool,
}

struct Search<'a> {
    ops: &'a [SearchOp],
    list: EntryList,
    set: Linearized,
    seen: Seen,
    /// Operations with a return entry not yet linearized.
    remaining: usize,
    state: State,
    stack: Vec<Frame>,
    /// Per value: unlinearized `Ok` operations that observe it (reads that
    /// returned it, swaps that returned it as the previous value).
    observers: Vec<u32>,
    /// Deepest consistent prefix seen, its state, and the op it was stuck on.
    best: Option<(Vec<usize>, State, usize)>,
    effort: Effort,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [SearchOp]) -> Self {
        let mut observers = Vec::new();
        for op in ops {
            if let Some(v) = observed(op) {
                let v = v as usize;
                if observers.len() <= v {
                    observers.resize(v + 1, 0);
                }
                observers[v] += 1;
            }
        }
        Self {
            ops,
            list: EntryList::new(ops),
            set: Linearized::new(ops.len()),
            seen: Seen::default(),
            remaining: ops.iter().filter(|op| op.ret.is_some()).count(),
            state: 0,
            stack: Vec::new(),
            observers,
            best: None,
            effort: Effort::default(),
        }
    }

    /// The search proper, with two reductions that keep it complete:
    ///
    /// - **Forced reads.** If an `Ok` read is a candidate (nothing still
    ///   unlinearized must precede it) and returns the current value, then any
    ///   valid completion of the current configuration can be rearranged to
    ///   start with that read: it changes nothing, and moving it earlier breaks
    ///   no real-time order. So the read is linearized at once, and if that
    ///   branch fails the configuration itself is dead: backtracking skips
    ///   the other candidates at that level.
    /// - **Useless indeterminate writes.** An `Info` write or swap whose value
    ///   no unlinearized operation observes is never tried: linearizing it
    ///   now could only be followed by ops that do not check the register
    ///   before it is overwritten (see the module docs of the checker for the
    ///   same argument), so dropping it leaves any completion valid.
    fn run(mut self, budget: Budget) -> (Outcome, Effort) {
        let mut cursor = self.list.next[0];
        let mut fresh = true;
        while self.remaining > 0 {
            self.effort.steps += 1;
            if self.effort.steps > budget.max_steps || self.seen.len > budget.max_cache_entries {
                return self.finish(Outcome::Exhausted);
            }
            if fresh {
                fresh = false;
                cursor = self.list.next[0];
                if let Some(read) = self.matching_read() {
                    if self.try_lift(read, self.state, true) {
                        fresh = true;
                    } else {
                        // This configuration plus the read was explored and failed.
                        match self.backtrack() {
                            Some(c) => cursor = c,
                            None => return self.violation(),
                        }
                    }
                    continue;
                }
            }
            let entry = (cursor != NIL).then(|| self.list.entries[cursor]);
            match entry {
                Some(Entry { op, is_call: true }) => {
                    if !self.useless(op) {
                        if let Some(next) = self.ops[op].step.apply(self.state) {
                            if self.try_lift(op, next, false) {
                                fresh = true;
                                continue;
                            }
                        }
                    }
                    cursor = self.list.next[cursor];
                }
                other => {
                    // A return entry: its operation cannot be linearized after
                    // the current prefix. (`None` cannot happen while an
                    // operation with a return entry is unlinearized, as its
                    // return entry lies ahead; it is treated as a dead end.)
                    if let Some(Entry { op: blocked, .. }) = other {
                        self.note_dead_end(blocked);
                    }
                    match self.backtrack() {
                        Some(c) => cursor = c,
                        None => return self.violation(),
                    }
                }
            }
        }
        self.finish(Outcome::Linearizable)
    }

    /// A candidate `Ok` read that returns the current value.
    fn matching_read(&self) -> Option<usize> {
        let mut c = self.list.next[0];
        while c != NIL {
            let e = self.list.entries[c];
            if !e.is_call {
                return None;
            }
            let op = &self.ops[e.op];
            if op.ret.is_some() && op.step == Step::Read(self.state) {
                return Some(e.op);
            }
            c = self.list.next[c];
        }
        None
    }

    /// Whether `op` is an indeterminate write nobody still needs to see.
    fn useless(&self, op: usize) -> bool {
        let op = &self.ops[op];
        let value = match op.step {
            Step::Write(v) | Step::Swap { new: v, prev: None } if op.ret.is_none() => v,
            _ => return false,
        };
        self.observers.get(value as usize).is_none_or(|&n| n == 0)
    }

    /// Linearizes `op` next, leaving the register at `next`, unless that
    /// configuration was explored before.
    fn try_lift(&mut self, op: usize, next: State, forced: bool) -> bool {
        self.set.toggle(op);
        if !self.seen.insert(&self.set, next) {
            self.set.toggle(op);
            return false;
        }
        self.stack.push(Frame {
            op,
            before: self.state,
            forced,
        });
        self.state = next;
        self.list.lift(op);
        if self.ops[op].ret.is_some() {
            self.remaining -= 1;
        }
        if let Some(v) = observed(&self.ops[op]) {
            self.observers[v as usize] -= 1;
        }
        true
    }

    /// Undoes linearizations until one whose level has untried candidates;
    /// returns where to resume scanning, or `None` when nothing is left.
    fn backtrack(&mut self) -> Option<usize> {
        loop {
            let frame = self.stack.pop()?;
            self.set.toggle(frame.op);
            self.state = frame.before;
            self.list.unlift(frame.op);
            if self.ops[frame.op].ret.is_some() {
                self.remaining += 1;
            }
            if let Some(v) = observed(&self.ops[frame.op]) {
                self.observers[v as usize] += 1;
            }
            if !frame.forced {
                return Some(self.list.next[self.list.call_of[frame.op]]);
            }
        }
    }

    fn note_dead_end(&mut self, blocked: usize) {
        if self
            .best
            .as_ref()
            .is_none_or(|(p, _, _)| self.stack.len() > p.len())
        {
            let prefix = self.stack.iter().map(|f| f.op).collect();
            self.best = Some((prefix, self.state, blocked));
        }
    }

    fn violation(mut self) -> (Outcome, Effort) {
        let (prefix, state, blocked) = self.best.take().unwrap_or((Vec::new(), 0, 0));
        self.finish(Outcome::Violation {
            blocked,
            prefix,
            state,
        })
    }

    fn finish(mut self, outcome: Outcome) -> (Outcome, Effort) {
        self.effort.cache_entries = self.seen.len;
        (outcome, self.effort)
    }
}

/// The value an `Ok` operation observes, if it checks the register.
fn observed(op: &SearchOp) -> Option<State> {
    match (op.step, op.ret) {
        (Step::Read(v), Some(_)) | (Step::Swap { prev: Some(v), .. }, Some(_)) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Budget = Budget {
        max_steps: 1_000_000,
        max_cache_entries: 1_000_000,
    };

    fn op(step: Step, call: u64, ret: Option<u64>) -> SearchOp {
        SearchOp { step, call, ret }
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert_eq!(search(&[], BUDGET).0, Outcome::Linearizable);
    }

    #[test]
    fn concurrent_write_may_precede_read() {
        let ops = [
            op(Step::Read(1), 0, Some(10)),
            op(Step::Write(1), 5, Some(20)),
        ];
        assert_eq!(search(&ops, BUDGET).0, Outcome::Linearizable);
    }

    #[test]
    fn touching_intervals_count_as_concurrent() {
        // The write is called exactly when the read returns.
        let ops = [
            op(Step::Read(1), 0, Some(10)),
            op(Step::Write(1), 10, Some(20)),
        ];
        assert_eq!(search(&ops, BUDGET).0, Outcome::Linearizable);
    }

    #[test]
    fn read_before_write_cannot_see_it() {
        let ops = [
            op(Step::Read(1), 0, Some(10)),
            op(Step::Write(1), 11, Some(20)),
        ];
        match search(&ops, BUDGET).0 {
            Outcome::Violation {
                blocked, prefix, ..
            } => {
                assert_eq!(blocked, 0);
                assert!(prefix.is_empty());
            }
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn indeterminate_write_may_land_late_or_never() {
        let late = [
            op(Step::Write(1), 0, None),
            op(Step::Read(0), 10, Some(20)),
            op(Step::Read(1), 30, Some(40)),
        ];
        assert_eq!(search(&late, BUDGET).0, Outcome::Linearizable);
        let never = [op(Step::Write(1), 0, None), op(Step::Read(0), 30, Some(40))];
        assert_eq!(search(&never, BUDGET).0, Outcome::Linearizable);
    }

    #[test]
    fn tiny_budget_is_exhausted_not_passed() {
        let ops: Vec<SearchOp> = (0..20)
            .map(|i| op(Step::Write(i + 1), 0, Some(100)))
            .chain([op(Step::Read(99), 0, Some(100))])
            .collect();
        let budget = Budget {
            max_steps: 50,
            max_cache_entries: 1_000_000,
        };
        assert_eq!(search(&ops, budget).0, Outcome::Exhausted);
    }

    #[test]
    fn lift_and_unlift_restore_the_list() {
        let ops = [
            op(Step::Write(1), 0, Some(3)),
            op(Step::Write(2), 1, Some(2)),
        ];
        let mut list = EntryList::new(&ops);
        let walk = |l: &EntryList| {
            let mut v = Vec::new();
            let mut c = l.next[0];
            while c != NIL {
                v.push((l.entries[c].op, l.entries[c].is_call));
                c = l.next[c];
            }
            v
        };
        let before = walk(&list);
        list.lift(1);
        assert_eq!(walk(&list), vec![(0, true), (0, false)]);
        list.lift(0);
        assert!(walk(&list).is_empty());
        list.unlift(0);
        list.unlift(1);
        assert_eq!(walk(&list), before);
    }
}
