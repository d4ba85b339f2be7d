//! What a checker concludes about a history: a verdict, the anomalies behind it, and statistics.

use serde::{Deserialize, Serialize};

/// A checker's verdict.
///
/// Ordered from best to worst, so the verdict of several checks is the
/// maximum ([`Validity::and`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// The property certainly holds for this history.
    Valid,
    /// The checker could not decide (search budget exhausted, history it
    /// cannot interpret). A run must treat this as a failure: it is never
    /// rounded up to `Valid`.
    Unknown,
    /// The property is certainly violated.
    Invalid,
}

impl Validity {
    /// The verdict of two checks together: the worse of the two.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        self.max(other)
    }

    /// Whether the run may pass on this verdict.
    pub fn is_valid(self) -> bool {
        self == Self::Valid
    }
}

/// The outcome of one checker over one history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which checker produced it.
    pub name: String,
    /// The verdict.
    pub valid: Validity,
    /// One line per violation, or per reason the verdict is `Unknown`.
    pub anomalies: Vec<String>,
    /// Checker-specific counters (ops seen, search effort, availability).
    pub stats: serde_json::Value,
}

impl CheckResult {
    /// Combines several results into one named summary whose verdict is the
    /// worst of them; anomalies are prefixed with the checker that found them.
    pub fn summarize(name: impl Into<String>, results: &[CheckResult]) -> Self {
        let mut valid = Validity::Valid;
        let mut anomalies = Vec::new();
        let mut stats = serde_json::Map::new();
        for r in results {
            valid = valid.and(r.valid);
            anomalies.extend(r.anomalies.iter().map(|a| format!("{}: {a}", r.name)));
            stats.insert(
                r.name.clone(),
                serde_json::json!({ "valid": r.valid, "stats": r.stats }),
            );
        }
        Self {
            name: name.into(),
            valid,
            anomalies,
            stats: serde_json::Value::Object(stats),
        }
    }
}
