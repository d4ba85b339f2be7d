//! A segment tree with range add and global arg-max, for the GCRA span sweep.

/// Values at positions `0..n` supporting "add `delta` to a range" and "largest
/// value and where", both O(log n).
#[derive(Debug, Clone)]
pub(super) struct MaxTree {
    n: usize,
    /// Per node: max of the subtree (including this node's pending add) and
    /// the leftmost position holding it.
    max: Vec<(i128, usize)>,
    /// Per node: an add applied to the whole subtree, not yet pushed down.
    /// Never pushed: the max of a node already includes its own pending add,
    /// so queries on the root need no propagation.
    add: Vec<i128>,
}

impl MaxTree {
    /// A tree over `initial.len()` positions with the given starting values.
    pub(super) fn new(initial: &[i128]) -> Self {
        let n = initial.len().max(1);
        let mut t = Self {
            n,
            max: vec![(i128::MIN, 0); 4 * n],
            add: vec![0; 4 * n],
        };
        t.build(1, 0, n, initial);
        t
    }

    fn build(&mut self, node: usize, lo: usize, hi: usize, initial: &[i128]) {
        if hi - lo == 1 {
            self.max[node] = (initial.get(lo).copied().unwrap_or(i128::MIN), lo);
            return;
        }
        let mid = (lo + hi) / 2;
        self.build(2 * node, lo, mid, initial);
        self.build(2 * node + 1, mid, hi, initial);
        self.pull(node);
    }

    fn pull(&mut self, node: usize) {
        let (l, r) = (self.max[2 * node], self.max[2 * node + 1]);
        let best = if r.0 > l.0 { r } else { l };
        self.max[node] = (best.0.saturating_add(self.add[node]), best.1);
    }

    /// Adds `delta` to every position in `from..to`.
    pub(super) fn add(&mut self, from: usize, to: usize, delta: i128) {
        self.add_in(1, 0, self.n, from, to.min(self.n), delta);
    }

    fn add_in(&mut self, node: usize, lo: usize, hi: usize, from: usize, to: usize, delta: i128) {
        if to <= lo || hi <= from {
            return;
        }
        if from <= lo && hi <= to {
            self.add[node] += delta;
            self.max[node].0 = self.max[node].0.saturating_add(delta);
            return;
        }
        let mid = (lo + hi) / 2;
        self.add_in(2 * node, lo, mid, from, to, delta);
        self.add_in(2 * node + 1, mid, hi, from, to, delta);
        self.pull(node);
    }

    /// The largest value and its leftmost position.
    pub(super) fn max(&self) -> (i128, usize) {
        self.max[1]
    }
}

#[cfg(test)]
mod tests {
    use super::MaxTree;

    #[test]
    fn matches_a_naive_array() {
        let mut naive: Vec<i128> = vec![5, -3, 7, 0, 2, 2, -10, 4];
        let mut tree = MaxTree::new(&naive);
        let updates = [
            (0, 3, 4),
            (2, 8, -6),
            (5, 6, 20),
            (0, 8, 1),
            (7, 8, 100),
            (1, 2, 50),
        ];
        for (from, to, delta) in updates {
            tree.add(from, to, delta);
            for v in &mut naive[from..to] {
                *v += delta;
            }
            let best = naive.iter().copied().max().unwrap_or(i128::MIN);
            let (max, at) = tree.max();
            assert_eq!(max, best);
            assert_eq!(naive[at], best);
        }
    }

    #[test]
    fn single_position() {
        let mut tree = MaxTree::new(&[1]);
        tree.add(0, 1, 2);
        assert_eq!(tree.max(), (3, 0));
    }
}
