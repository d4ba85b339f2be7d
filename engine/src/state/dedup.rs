//! The de-duplication table: replies to recently applied requests, kept in
//! the replicated state (and its snapshots) so that a retried request is
//! answered from here on every replica instead of being applied twice.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::payload::RequestId;
use crate::reply::Reply;

/// How long a request id derived from a client's idempotency token is
/// remembered: a client resending an `RL.CHECK … ID token` has this long to do
/// it (docs/limiter.md).
const TOKEN_DEDUP_WINDOW_NS: u64 = 60 * 1_000_000_000;

/// How long a node's own request id is remembered. A node re-sends a write
/// whose outcome it does not know only within [`RETRY_HORIZON`] of first
/// sending it, so older ids are never asked about again; keeping them the
/// full token window would hold a reply per write for a minute. The other
/// half of the window is slack for the clocks of two leaders in a row.
const NODE_DEDUP_WINDOW_NS: u64 = 2 * RETRY_HORIZON.as_nanos() as u64;

/// How long after first sending a write a node may still re-send it with the
/// same request id (see [`NODE_DEDUP_WINDOW_NS`]). After that, a write whose
/// outcome is unknown is answered `TRYAGAIN`.
pub const RETRY_HORIZON: std::time::Duration = std::time::Duration::from_secs(5);

/// Replies to recently applied requests, so a retried request is answered
/// from here instead of being applied twice.
///
/// Memory: one map slot (a 16-byte id and a reply, which for RL.CHECK is a
/// boxed 40-byte decision) and one queue slot per write of the last
/// [`NODE_DEDUP_WINDOW_NS`], plus per token-carrying write of the last
/// [`TOKEN_DEDUP_WINDOW_NS`]: about 140 bytes per write, so 40k writes/s
/// hold about 55 MB. Entries leave in apply order, decided by entry stamps,
/// so every replica forgets the same ids at the same log index.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct DedupTable {
    pub(super) replies: HashMap<RequestId, Reply>,
    /// `(stamp_ns, id)` of node-origin ids in apply order.
    pub(super) order: VecDeque<(u64, RequestId)>,
    /// `(stamp_ns, id)` of ids derived from client tokens, in apply order.
    #[serde(default)]
    pub(super) token_order: VecDeque<(u64, RequestId)>,
}

impl DedupTable {
    pub(crate) fn get(&self, id: &RequestId) -> Option<&Reply> {
        self.replies.get(id)
    }

    pub(crate) fn insert(&mut self, id: RequestId, stamp_ns: u64, reply: Reply) {
        self.replies.insert(id, reply);
        if id.is_from_token() {
            self.token_order.push_back((stamp_ns, id));
        } else {
            self.order.push_back((stamp_ns, id));
        }
    }

    pub(crate) fn prune(&mut self, now_ns: u64) {
        for (order, window) in [
            (&mut self.order, NODE_DEDUP_WINDOW_NS),
            (&mut self.token_order, TOKEN_DEDUP_WINDOW_NS),
        ] {
            while let Some(&(stamp, id)) = order.front() {
                if now_ns.saturating_sub(stamp) <= window {
                    break;
                }
                order.pop_front();
                self.replies.remove(&id);
            }
        }
    }

    /// When the oldest remembered id is due to be forgotten (stamp time), if any.
    pub(crate) fn next_expiry_ns(&self) -> Option<u64> {
        let node = self.order.front().map(|(s, _)| s + NODE_DEDUP_WINDOW_NS);
        let token = self
            .token_order
            .front()
            .map(|(s, _)| s + TOKEN_DEDUP_WINDOW_NS);
        node.into_iter().chain(token).min()
    }

    pub(crate) fn len(&self) -> usize {
        self.replies.len()
    }
}
