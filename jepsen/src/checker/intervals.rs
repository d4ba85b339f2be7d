//! Counting which of many closed time intervals meet a query interval, in O(log n) per query.

/// A static set of closed intervals `[start, end]`.
#[derive(Debug, Clone, Default)]
pub(super) struct Intervals {
    starts: Vec<i128>,
    ends: Vec<i128>,
}

impl Intervals {
    /// Indexes the intervals; each must have `start <= end`.
    pub(super) fn new(intervals: &[(i128, i128)]) -> Self {
        let mut starts: Vec<i128> = intervals.iter().map(|i| i.0).collect();
        let mut ends: Vec<i128> = intervals.iter().map(|i| i.1).collect();
        starts.sort_unstable();
        ends.sort_unstable();
        Self { starts, ends }
    }

    /// How many intervals meet `[lo, hi]`.
    ///
    /// An interval misses the query iff it starts after `hi` or ends before
    /// `lo`; it cannot do both (that would need `end < lo <= hi < start`), so
    /// the two counts never overlap.
    pub(super) fn meeting(&self, lo: i128, hi: i128) -> usize {
        let starts_after = self.starts.len() - self.starts.partition_point(|&t| t <= hi);
        let ends_before = self.ends.partition_point(|&t| t < lo);
        self.starts.len().saturating_sub(starts_after + ends_before)
    }
}

#[cfg(test)]
mod tests {
    use super::Intervals;

    #[test]
    fn matches_a_naive_count() {
        let set = [(0, 10), (5, 5), (8, 20), (30, 40), (-5, 0)];
        let index = Intervals::new(&set);
        for lo in -10..45 {
            for hi in lo..45 {
                let naive = set.iter().filter(|&&(s, e)| s <= hi && e >= lo).count();
                assert_eq!(index.meeting(lo, hi), naive, "[{lo}, {hi}]");
            }
        }
    }
}
