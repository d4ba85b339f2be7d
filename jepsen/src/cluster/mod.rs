//! How the harness reaches and hurts a cluster: client endpoints and faults.
pub mod docker; // docker-compose containers: docker kill/start, docker pause/unpause, iptables via nsenter
pub mod local; // local processes: kill -9, SIGSTOP/SIGCONT (partition unsupported)

use std::collections::BTreeSet;
use std::fmt;

/// Where and how a client connects to one node.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// 1-based node id, as in the server config.
    pub node: u64,
    /// RESP address reachable from the harness.
    pub addr: std::net::SocketAddr,
    /// `Some` => TLS (rediss).
    pub tls: Option<ClientTls>,
    /// AUTH user (`None` => "default").
    pub user: Option<String>,
    /// AUTH password (`None` => no AUTH).
    pub password: Option<String>,
}

/// TLS settings of a client connection.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// CA certificate that signed the node certificates.
    pub ca: std::path::PathBuf,
    /// Client certificate (mTLS), with key.
    pub cert: Option<std::path::PathBuf>,
    /// Private key of the client certificate.
    pub key: Option<std::path::PathBuf>,
    /// Name to verify in the node certificate.
    pub server_name: String,
}

/// A cluster the harness can talk to and inject faults into.
pub trait Cluster: Send + Sync {
    /// Every node's client endpoint, in node order.
    fn endpoints(&self) -> Vec<Endpoint>;
    /// SIGKILL the node (no clean shutdown).
    fn kill(&self, node: u64) -> Result<(), crate::Error>;
    /// Start a killed node again on its existing data.
    fn start(&self, node: u64) -> Result<(), crate::Error>;
    /// Freeze / thaw the node's process (SIGSTOP/SIGCONT, docker pause/unpause).
    fn pause(&self, node: u64) -> Result<(), crate::Error>;
    /// Thaw a paused node.
    fn resume(&self, node: u64) -> Result<(), crate::Error>;
    /// Cut exactly the links `partition` names, in both directions, and
    /// heal every other link (a partition replaces the one in force). An
    /// empty partition cuts nothing. A backend that cannot partition returns
    /// `Err(crate::Error::Unsupported(..))`.
    fn partition(&self, partition: &Partition) -> Result<(), crate::Error>;
    /// Undo every partition.
    fn heal(&self) -> Result<(), crate::Error>;
    /// Copy each node's log into `dir` (one file per node).
    fn collect_logs(&self, dir: &std::path::Path) -> Result<(), crate::Error>;
}

/// A network partition as the set of cut links: unordered pairs of distinct
/// nodes that cannot exchange any traffic. Every other link works.
///
/// Links rather than disjoint groups, because the partitions Jepsen finds
/// most revealing are not transitive: in a *bridge* node 2 talks to 1 and
/// to 3 while 1 and 3 cannot talk, which no grouping of the nodes
/// expresses. [`Partition::from_groups`] builds the usual grouped partition
/// as links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partition {
    /// Each pair ordered (lower id first), so a link appears once.
    cut: BTreeSet<(u64, u64)>,
}

impl Partition {
    /// A partition cutting the given links (`(a, b)` and `(b, a)` are the
    /// same link). Refuses a link from a node to itself.
    pub fn new(links: impl IntoIterator<Item = (u64, u64)>) -> Result<Self, crate::Error> {
        let mut cut = BTreeSet::new();
        for (a, b) in links {
            if a == b {
                return Err(crate::Error::Fault(format!(
                    "a partition cannot cut node {a} from itself"
                )));
            }
            cut.insert((a.min(b), a.max(b)));
        }
        Ok(Self { cut })
    }

    /// Traffic flows within a group only: every link between nodes of
    /// different groups is cut. A node in no group is cut from nobody
    /// (the caller names every node it means to separate). Refuses a node
    /// named twice.
    pub fn from_groups(groups: &[Vec<u64>]) -> Result<Self, crate::Error> {
        let mut seen = BTreeSet::new();
        for &n in groups.iter().flatten() {
            if !seen.insert(n) {
                return Err(crate::Error::Fault(format!(
                    "partition groups {groups:?} name node {n} twice"
                )));
            }
        }
        let mut links = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            for other in &groups[i + 1..] {
                for &a in group {
                    links.extend(other.iter().map(|&b| (a, b)));
                }
            }
        }
        Self::new(links)
    }

    /// Jepsen's bridge: the nodes other than `bridge` split into two halves
    /// (in the order given) that cannot reach each other, while `bridge`
    /// reaches everyone. With three nodes exactly one link is cut, and both
    /// sides of it, each with the bridge, are a majority.
    pub fn bridge(bridge: u64, nodes: &[u64]) -> Result<Self, crate::Error> {
        if !nodes.contains(&bridge) {
            return Err(crate::Error::Fault(format!(
                "bridge node {bridge} is not one of {nodes:?}"
            )));
        }
        let others: Vec<u64> = nodes.iter().copied().filter(|&n| n != bridge).collect();
        let (left, right) = others.split_at(others.len().div_ceil(2));
        Self::from_groups(&[left.to_vec(), right.to_vec()])
    }

    /// Jepsen's majorities ring: the nodes sit on a ring in the order
    /// given, and each keeps the links to the nearest neighbours on both
    /// sides that it needs to see a majority (itself included); every
    /// longer link is cut. Every node sees a majority, but no two nodes see
    /// the same one. With three nodes the nearest neighbour on each side is
    /// everyone, so this cuts nothing: the ring needs five nodes or more
    /// (four gives two cut diagonals).
    pub fn ring(order: &[u64]) -> Self {
        let n = order.len();
        let majority = n / 2 + 1;
        // Seeing itself and `reach` neighbours each side: 1 + 2 * reach >= majority.
        let reach = (majority - 1).div_ceil(2);
        let mut cut = BTreeSet::new();
        for i in 0..n {
            for j in i + 1..n {
                let distance = (j - i).min(n - (j - i));
                if distance > reach {
                    let (a, b) = (order[i], order[j]);
                    cut.insert((a.min(b), a.max(b)));
                }
            }
        }
        Self { cut }
    }

    /// Whether no link is cut.
    pub fn is_empty(&self) -> bool {
        self.cut.is_empty()
    }

    /// The cut links, each once, lower id first, in order.
    pub fn links(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.cut.iter().copied()
    }

    /// Whether `a` and `b` cannot talk.
    pub fn is_cut(&self, a: u64, b: u64) -> bool {
        self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// The peers `node` must neither hear from nor send to, in order: what
    /// a backend enforces on that node's side of each of its cut links.
    pub fn peers_cut(&self, node: u64) -> Vec<u64> {
        self.cut
            .iter()
            .filter_map(|&(a, b)| match node {
                n if n == a => Some(b),
                n if n == b => Some(a),
                _ => None,
            })
            .collect()
    }

    /// Every node at an end of a cut link, in order.
    pub fn nodes(&self) -> Vec<u64> {
        let ends: BTreeSet<u64> = self.cut.iter().flat_map(|&(a, b)| [a, b]).collect();
        ends.into_iter().collect()
    }
}

/// The cut links as `1-3, 2-3`; `no link cut` when empty.
impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cut.is_empty() {
            return f.write_str("no link cut");
        }
        for (i, (a, b)) in self.cut.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{a}-{b}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn links(p: &Partition) -> Vec<(u64, u64)> {
        p.links().collect()
    }

    #[test]
    fn groups_cut_every_link_between_groups_and_none_within() -> Result<(), Error> {
        let p = Partition::from_groups(&[vec![2], vec![3, 1]])?;
        assert_eq!(links(&p), vec![(1, 2), (2, 3)]);
        assert!(p.is_cut(2, 1) && p.is_cut(3, 2) && !p.is_cut(1, 3));
        assert_eq!(p.peers_cut(2), vec![1, 3]);
        assert_eq!(p.peers_cut(1), vec![2]);
        assert_eq!(p.nodes(), vec![1, 2, 3]);
        assert_eq!(p.to_string(), "1-2, 2-3");

        let three = Partition::from_groups(&[vec![1], vec![2], vec![3, 4]])?;
        assert_eq!(links(&three), vec![(1, 2), (1, 3), (1, 4), (2, 3), (2, 4)]);

        // One group, or none, cuts nothing.
        assert!(Partition::from_groups(&[vec![1, 2, 3]])?.is_empty());
        assert!(Partition::from_groups(&[])?.is_empty());
        assert_eq!(Partition::default().to_string(), "no link cut");
        Ok(())
    }

    #[test]
    fn groups_naming_a_node_twice_and_self_links_are_refused() -> Result<(), Error> {
        assert!(Partition::from_groups(&[vec![1, 2], vec![2, 3]]).is_err());
        assert!(Partition::new([(1, 1)]).is_err());
        let p = Partition::new([(3, 1), (1, 3)])?;
        assert_eq!(links(&p), vec![(1, 3)]);
        Ok(())
    }

    #[test]
    fn a_three_node_bridge_cuts_one_link_and_the_bridge_keeps_both() -> Result<(), Error> {
        for bridge in 1..=3 {
            let p = Partition::bridge(bridge, &[1, 2, 3])?;
            let cut = links(&p);
            assert_eq!(cut.len(), 1, "bridge {bridge}: {cut:?}");
            assert!(p.peers_cut(bridge).is_empty(), "bridge {bridge}: {cut:?}");
            let ends: Vec<u64> = (1..=3).filter(|&n| n != bridge).collect();
            assert_eq!(cut, vec![(ends[0], ends[1])]);
            assert_eq!(p.nodes(), ends);
            // Not transitive: each end reaches the bridge, which reaches the other end.
            assert!(!p.is_cut(ends[0], bridge) && !p.is_cut(bridge, ends[1]));
        }
        assert!(Partition::bridge(4, &[1, 2, 3]).is_err());
        Ok(())
    }

    #[test]
    fn a_five_node_bridge_joins_two_halves() -> Result<(), Error> {
        let p = Partition::bridge(3, &[1, 2, 3, 4, 5])?;
        assert_eq!(links(&p), vec![(1, 4), (1, 5), (2, 4), (2, 5)]);
        assert!(p.peers_cut(3).is_empty());
        Ok(())
    }

    #[test]
    fn a_three_node_majorities_ring_is_no_partition() {
        assert!(Partition::ring(&[1, 2, 3]).is_empty());
        assert!(Partition::ring(&[3, 1, 2]).is_empty());
    }

    #[test]
    fn in_a_larger_ring_every_node_sees_a_distinct_majority() {
        for n in 4..=7u64 {
            let order: Vec<u64> = (1..=n).rev().collect();
            let p = Partition::ring(&order);
            assert!(!p.is_empty(), "{n} nodes");
            let majority = n / 2 + 1;
            let mut views = BTreeSet::new();
            for &node in &order {
                let sees: Vec<u64> = order
                    .iter()
                    .copied()
                    .filter(|&o| o == node || !p.is_cut(node, o))
                    .collect();
                assert!(
                    sees.len() as u64 >= majority,
                    "{n} nodes: {node} sees {sees:?}"
                );
                views.insert(sees);
            }
            assert_eq!(views.len() as u64, n, "{n} nodes: {p}");
        }
        // Five nodes: each keeps its two ring neighbours and loses the other two.
        let p = Partition::ring(&[1, 2, 3, 4, 5]);
        assert_eq!(links(&p), vec![(1, 3), (1, 4), (2, 4), (2, 5), (3, 5)]);
    }
}
