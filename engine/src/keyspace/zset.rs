//! The sorted-set value: a member → score map plus an ordered index of
//! `(score, member)`, so replies and iteration follow Redis's order (score,
//! then member bytes) on every replica.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A sorted-set score: an `f64` that is never NaN, with the total order Redis
/// uses (numeric; `-0` and `0` compare equal, `-inf` and `inf` are allowed).
#[derive(Debug, Clone, Copy)]
pub struct Score(f64);

impl Score {
    /// `None` for NaN, which Redis never stores.
    pub fn new(value: f64) -> Option<Score> {
        (!value.is_nan()).then_some(Score(value))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        // Never NaN, so `partial_cmp` always answers; the fallback only keeps
        // the order total should that ever change.
        self.0
            .partial_cmp(&other.0)
            .unwrap_or_else(|| self.0.total_cmp(&other.0))
    }
}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Score {}

/// The smallest float greater than `x` (`inf` stays `inf`).
fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    if x > 0.0 {
        f64::from_bits(bits + 1)
    } else {
        f64::from_bits(bits - 1)
    }
}

/// One end of a score interval, as `ZRANGEBYSCORE` parses it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// A sorted set. Both structures always hold the same members.
///
/// Serialized as a plain `(member, score)` sequence; the ordered index is
/// rebuilt on load, so a snapshot cannot hold an inconsistent pair.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(into = "Vec<(Bytes, f64)>", try_from = "Vec<(Bytes, f64)>")]
pub struct ZSet {
    scores: BTreeMap<Bytes, Score>,
    order: BTreeSet<(Score, Bytes)>,
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.scores == other.scores
    }
}

impl From<ZSet> for Vec<(Bytes, f64)> {
    fn from(zset: ZSet) -> Self {
        zset.scores
            .into_iter()
            .map(|(member, score)| (member, score.get()))
            .collect()
    }
}

impl TryFrom<Vec<(Bytes, f64)>> for ZSet {
    type Error = &'static str;

    fn try_from(pairs: Vec<(Bytes, f64)>) -> Result<Self, Self::Error> {
        let mut zset = ZSet::default();
        for (member, score) in pairs {
            let score = Score::new(score).ok_or("NaN score in a sorted set")?;
            zset.set(member, score);
        }
        Ok(zset)
    }
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).map(|s| s.get())
    }

    /// Sets `member`'s score, returning the previous one.
    pub fn insert(&mut self, member: Bytes, score: Score) -> Option<f64> {
        self.set(member, score).map(|s| s.get())
    }

    fn set(&mut self, member: Bytes, score: Score) -> Option<Score> {
        let old = self.scores.insert(member.clone(), score);
        if let Some(old) = old {
            self.order.remove(&(old, member.clone()));
        }
        self.order.insert((score, member));
        old
    }

    /// Removes `member`, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (member, score) = self.scores.remove_entry(member)?;
        self.order.remove(&(score, member));
        Some(score.get())
    }

    /// Removes and returns the lowest `(member, score)`.
    pub fn pop_first(&mut self) -> Option<(Bytes, f64)> {
        let (score, member) = self.order.pop_first()?;
        self.scores.remove(&member);
        Some((member, score.get()))
    }

    /// Removes and returns the highest `(member, score)`.
    pub fn pop_last(&mut self) -> Option<(Bytes, f64)> {
        let (score, member) = self.order.pop_last()?;
        self.scores.remove(&member);
        Some((member, score.get()))
    }

    /// Every `(member, score)` in Redis's order: ascending score, then member.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> {
        self.order
            .iter()
            .map(|(score, member)| (member, score.get()))
    }

    /// Members by member bytes (for SCAN), with their scores.
    pub fn by_member(&self) -> impl Iterator<Item = (&Bytes, f64)> {
        self.scores
            .iter()
            .map(|(member, score)| (member, score.get()))
    }

    /// The 0-based position of `member` in ascending order. Costs O(rank):
    /// the index is a B-tree without subtree counts.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let (member, score) = self.scores.get_key_value(member)?;
        Some(self.order.range(..(*score, member.clone())).count())
    }

    /// Elements with a score inside `[min, max]` (each end possibly
    /// exclusive), in ascending order; reverse the iterator for descending.
    pub fn range_by_score(
        &self,
        min: ScoreBound,
        max: ScoreBound,
    ) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> {
        // `(s, "")` is the smallest element with score `s`, so "score >= s" is
        // `>= (s, "")` and "score <= s" is `< (next_up(s), "")`.
        let lower = if min.exclusive {
            if min.value == f64::INFINITY {
                None
            } else {
                Score::new(next_up(min.value))
            }
        } else {
            Score::new(min.value)
        };
        let upper = if max.exclusive {
            Score::new(max.value).map(Bound::Excluded)
        } else if max.value == f64::INFINITY {
            Some(Bound::Unbounded)
        } else {
            Score::new(next_up(max.value)).map(Bound::Excluded)
        };
        let range = match (lower, upper) {
            (Some(lo), Some(hi)) => {
                let lo = (lo, Bytes::new());
                let hi = match hi {
                    Bound::Excluded(s) => Bound::Excluded((s, Bytes::new())),
                    _ => Bound::Unbounded,
                };
                // BTreeSet::range panics on a reversed interval.
                let empty = matches!(&hi, Bound::Excluded(h) if *h <= lo);
                (!empty).then(|| self.order.range((Bound::Included(lo), hi)))
            }
            _ => None,
        };
        range
            .into_iter()
            .flatten()
            .map(|(score, member)| (member, score.get()))
    }

    /// Approximate heap bytes: both trees' slots plus member bytes (shared
    /// between the two trees).
    pub fn heap_size(&self) -> usize {
        let slot = std::mem::size_of::<(Bytes, Score)>() + std::mem::size_of::<(Score, Bytes)>();
        self.scores
            .keys()
            .map(|member| slot * 3 / 2 + member.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zset(pairs: &[(&str, f64)]) -> ZSet {
        let mut z = ZSet::default();
        for (m, s) in pairs {
            z.insert(Bytes::copy_from_slice(m.as_bytes()), Score(*s));
        }
        z
    }

    fn members<'a>(it: impl Iterator<Item = (&'a Bytes, f64)>) -> Vec<String> {
        it.map(|(m, _)| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn order_is_score_then_member() {
        let z = zset(&[
            ("b", 1.0),
            ("a", 1.0),
            ("c", -0.0),
            ("d", f64::INFINITY),
            ("e", 0.0),
        ]);
        assert_eq!(members(z.iter()), ["c", "e", "a", "b", "d"]);
        assert_eq!(z.rank(b"a"), Some(2));
        assert_eq!(z.rank(b"x"), None);
    }

    #[test]
    fn score_ranges() {
        let z = zset(&[
            ("a", 1.0),
            ("b", 2.0),
            ("c", 2.0),
            ("d", 3.0),
            ("e", f64::INFINITY),
        ]);
        let b = |value, exclusive| ScoreBound { value, exclusive };
        assert_eq!(
            members(z.range_by_score(b(2.0, false), b(2.0, false))),
            ["b", "c"]
        );
        assert_eq!(
            members(z.range_by_score(b(1.0, true), b(3.0, true))),
            ["b", "c"]
        );
        assert_eq!(
            members(
                z.range_by_score(b(f64::NEG_INFINITY, false), b(f64::INFINITY, false))
                    .rev()
            ),
            ["e", "d", "c", "b", "a"]
        );
        assert!(members(z.range_by_score(b(2.0, true), b(2.0, false))).is_empty());
        assert!(members(z.range_by_score(b(3.0, false), b(1.0, false))).is_empty());
        assert!(
            members(z.range_by_score(b(f64::INFINITY, true), b(f64::INFINITY, false))).is_empty()
        );
        assert_eq!(
            members(z.range_by_score(b(3.0, true), b(f64::INFINITY, false))),
            ["e"]
        );
    }

    #[test]
    fn serde_round_trip_rebuilds_the_index() {
        let z = zset(&[("a", 1.5), ("b", -2.0)]);
        let bytes = postcard::to_stdvec(&z).unwrap_or_default();
        let back: ZSet = postcard::from_bytes(&bytes).unwrap_or_default();
        assert_eq!(back, z);
        assert_eq!(members(back.iter()), ["b", "a"]);
        let nan =
            postcard::to_stdvec(&vec![(Bytes::from_static(b"x"), f64::NAN)]).unwrap_or_default();
        assert!(postcard::from_bytes::<ZSet>(&nan).is_err());
    }
}
