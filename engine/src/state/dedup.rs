//! The de-duplication table: replies to recently applied requests, kept in
//! the replicated state (and its snapshots) so that a retried request is
//! answered from here on every replica instead of being applied twice.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::payload::RequestId;
use crate::reply::Reply;

/// How long a request id is remembered. Retries of a forwarded or re-proposed
/// write happen within the no-leader timeout, far inside this window; a
/// client resending an `RL.CHECK … ID token` has this long to do it
/// (docs/limiter.md).
const DEDUP_WINDOW_NS: u64 = 60 * 1_000_000_000;

/// Replies to recently applied requests, so a retried request is answered
/// from here instead of being applied twice.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct DedupTable {
    replies: HashMap<RequestId, Reply>,
    /// `(stamp_ns, id)` in apply order, for expiring old ids deterministically.
    order: VecDeque<(u64, RequestId)>,
}

impl DedupTable {
    pub(crate) fn get(&self, id: &RequestId) -> Option<&Reply> {
        self.replies.get(id)
    }

    pub(crate) fn insert(&mut self, id: RequestId, stamp_ns: u64, reply: Reply) {
        self.replies.insert(id, reply);
        self.order.push_back((stamp_ns, id));
    }

    pub(crate) fn prune(&mut self, now_ns: u64) {
        while let Some(&(stamp, id)) = self.order.front() {
            if now_ns.saturating_sub(stamp) <= DEDUP_WINDOW_NS {
                break;
            }
            self.order.pop_front();
            self.replies.remove(&id);
        }
    }
}
