//! A Fenwick (binary indexed) tree counting points by position, for sliding-span counts.

/// Counts of inserted positions with O(log n) insert and prefix query.
#[derive(Debug, Clone)]
pub(super) struct Fenwick {
    tree: Vec<u64>,
}

impl Fenwick {
    /// A tree over positions `0..n`, all empty.
    pub(super) fn new(n: usize) -> Self {
        Self {
            tree: vec![0; n + 1],
        }
    }

    /// Adds one point at `pos`.
    pub(super) fn insert(&mut self, pos: usize) {
        let mut i = pos + 1;
        while i < self.tree.len() {
            self.tree[i] += 1;
            i += i & i.wrapping_neg();
        }
    }

    /// Number of points at positions `< end`.
    pub(super) fn count_below(&self, end: usize) -> u64 {
        let mut i = end.min(self.tree.len() - 1);
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::Fenwick;

    #[test]
    fn counts_prefixes() {
        let mut f = Fenwick::new(10);
        for p in [0, 3, 3, 9] {
            f.insert(p);
        }
        assert_eq!(f.count_below(0), 0);
        assert_eq!(f.count_below(1), 1);
        assert_eq!(f.count_below(4), 3);
        assert_eq!(f.count_below(9), 3);
        assert_eq!(f.count_below(10), 4);
        assert_eq!(f.count_below(100), 4);
    }
}
