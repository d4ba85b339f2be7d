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
    let mut list = EntryList::new(ops);
    let mut set = Linearized::new(ops.len());
    let mut seen = Seen::default();
    let mut remaining = ops.iter().filter(|op| op.ret.is_some()).count();
    let mut state: State = 0;
    // (operation linearized, state before it)
    let mut stack: Vec<(usize, State)> = Vec::new();
    // Deepest consistent prefix seen so far, for the explanation.
    let mut best: Option<(Vec<usize>, State, usize)> = None;
    let mut effort = Effort::default();
    let mut cursor = list.next[0];

    while remaining > 0 {
        effort.steps += 1;
        if effort.steps > budget.max_steps || seen.len > budget.max_cache_entries {
            effort.cache_entries = seen.len;
            return (Outcome::Exhausted, effort);
        }
        let entry = if cursor == NIL {
            // Unreachable while an operation with a return entry is still
            // unlinearized (its return entry lies ahead); treated as a dead end.
            None
        } else {
            Some(list.entries[cursor])
        };
        match entry {
            Some(Entry { op, is_call: true }) => {
                if let Some(next_state) = ops[op].step.apply(state) {
                    set.toggle(op);
                    if seen.insert(&set, next_state) {
                        stack.push((op, state));
                        state = next_state;
                        list.lift(op);
                        if ops[op].ret.is_some() {
                            remaining -= 1;
                        }
                        cursor = list.next[0];
                        continue;
                    }
                    set.toggle(op);
                }
                cursor = list.next[cursor];
            }
            other => {
                if let Some(Entry { op: blocked, .. }) = other {
                    if best.as_ref().is_none_or(|(p, _, _)| stack.len() > p.len()) {
                        let prefix = stack.iter().map(|&(o, _)| o).collect();
                        best = Some((prefix, state, blocked));
                    }
                }
                let Some((op, before)) = stack.pop() else {
                    effort.cache_entries = seen.len;
                    let (prefix, state, blocked) = best.unwrap_or((Vec::new(), 0, 0));
                    return (
                        Outcome::Violation {
                            blocked,
                            prefix,
                            state,
                        },
                        effort,
                    );
                };
                set.toggle(op);
                state = before;
                list.unlift(op);
                if ops[op].ret.is_some() {
                    remaining += 1;
                }
                cursor = list.next[list.call_of[op]];
            }
        }
    }
    effort.cache_entries = seen.len;
    (Outcome::Linearizable, effort)
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
