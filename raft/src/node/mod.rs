//! A running Raft node and the client API the server uses: submit a write or
//! a read, get a [`Reply`]. Routing to the leader, group commit, read
//! barriers, retries and de-duplication all happen behind it.

mod clock;
mod config;
pub mod membership;
mod proposer;
mod read_barrier;
mod script_executor;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{BoxFuture, Either};
use futures::FutureExt;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState, SnapshotPolicy};
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use clock::{wall_clock_ns, Clock};
pub use config::NodeConfig;
pub use membership::MembershipView;
use proposer::Proposer;
use read_barrier::{BarrierError, ReadBarrier};
use script_executor::ScriptExecutor;

use crate::commands::{execute_read, ReadCtx};
use crate::error::{Error, Result};
use crate::network::inbound::{self, RpcHandler};
use crate::network::outbound::NetworkFactory;
use crate::network::peer::PeerContext;
use crate::network::{
    ClientOutcome, MembershipChange, NetFilter, PeerClient, RpcRequest, RpcResponse, Transport,
};
use crate::payload::{Proposal, RequestId, Watch, WriteOp};
use crate::reply::Reply;
use crate::storage::{AppliedState, KeyUsage, LogStore, StateMachine, Store, RETRY_HORIZON};
use crate::types::{NodeId, NodeInfo, Raft};

type RaftMetrics = openraft::RaftMetrics<NodeId, NodeInfo>;

/// A point-in-time view of this node's Raft status (INFO, metrics, /readyz).
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub id: NodeId,
    pub is_leader: bool,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub snapshot_index: Option<u64>,
}

/// The outcome of one attempt at executing a command.
enum Attempt {
    Done(Reply),
    /// Try again (elsewhere). `maybe_applied` says whether the attempt may
    /// have reached a leader's log.
    Retry {
        maybe_applied: bool,
    },
}

/// One raftlimit node: the Raft instance, its storage, and the client API.
pub struct RaftNode {
    config: NodeConfig,
    raft: Raft,
    metrics: watch::Receiver<RaftMetrics>,
    state: Arc<RwLock<AppliedState>>,
    committed_index: Arc<AtomicU64>,
    acl_generation: Arc<AtomicU64>,
    store: Arc<Store>,
    proposer: Proposer,
    barrier: ReadBarrier,
    scripts: ScriptExecutor,
    peer_ctx: PeerContext,
    /// Connections used to forward client commands, one per peer.
    forwarders: Mutex<HashMap<NodeId, Arc<PeerClient>>>,
    origin: u64,
    next_seq: AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The effective leader ([`effective_leader`]), published only when it
    /// changes. Requests in flight wait on this rather than on openraft's
    /// metrics, which openraft sends on every iteration of its core loop:
    /// every waiting request would wake that often for nothing.
    leader: watch::Receiver<Option<NodeId>>,
    /// A handle on the state machine, to re-seal its snapshot file online.
    snapshot_sealer: StateMachine,
    /// Serialises membership changes on the leader, so each one is checked
    /// against the configuration the previous one left.
    membership_lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.config.id)
            .finish()
    }
}

impl RaftNode {
    /// Opens storage, starts Raft and the inter-node server on
    /// `raft_listener`, and bootstraps the configured voters if this node's
    /// log is empty.
    pub async fn start(
        config: NodeConfig,
        raft_listener: TcpListener,
        transport: Arc<dyn Transport>,
        filter: NetFilter,
    ) -> Result<Arc<Self>> {
        if !config.members.contains_key(&config.id) {
            return Err(Error::Config(format!(
                "node {} is not among the cluster members",
                config.id
            )));
        }
        let store = Store::open(&config.data_dir.join("raft"), config.encryption.clone())?;
        let log_store = LogStore::new(store.clone());
        let committed_index = log_store.committed_index();
        let flushed_stamp = log_store.flushed_stamp();
        let state_machine = StateMachine::open(
            store.clone(),
            config.acl_users.clone(),
            &config.data_dir.join("snapshots"),
        )?;
        let applied_stamp = state_machine.applied_stamp();
        if state_machine.reseal_snapshot()? {
            tracing::info!("re-sealed the snapshot file with the current encryption key");
        }
        let snapshot_sealer = state_machine.clone();
        let state = state_machine.state();
        let acl_generation = state.read().acl_generation();
        let leader_flag = state_machine.leader_flag();

        let raft_config = openraft::Config {
            cluster_name: config.cluster_name.clone(),
            heartbeat_interval: config.heartbeat_interval.as_millis() as u64,
            election_timeout_min: config.election_timeout_min.as_millis() as u64,
            election_timeout_max: config.election_timeout_max.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            // Keep some log after a snapshot so a briefly lagging follower
            // catches up by log rather than by a full snapshot.
            max_in_snapshot_log_to_keep: config.snapshot_every / 2,
            install_snapshot_timeout: 5_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::Config(e.to_string()))?;

        let peer_ctx = PeerContext {
            me: config.id,
            cluster: config.cluster_name.clone(),
            transport: transport.clone(),
            filter,
        };
        let network = NetworkFactory::new(peer_ctx.clone());
        let raft = Raft::new(
            config.id,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| Error::Raft(e.to_string()))?;

        let proposer = Proposer::spawn(
            raft.clone(),
            applied_stamp,
            flushed_stamp,
            config.max_batch,
            config.clock.clone(),
        );
        let barrier = ReadBarrier::spawn(raft.clone(), config.no_leader_timeout);
        let scripts = ScriptExecutor::spawn(
            state.clone(),
            proposer.clone(),
            barrier.clone(),
            config.clock.clone(),
        )?;
        let (leader_tx, leader_rx) = watch::channel(None);
        let node = Arc::new(RaftNode {
            leader: leader_rx,
            snapshot_sealer,
            metrics: raft.metrics(),
            raft,
            state,
            committed_index,
            acl_generation,
            store,
            proposer,
            barrier,
            scripts,
            peer_ctx,
            forwarders: Mutex::new(HashMap::new()),
            origin: RequestId::node_origin(rand::random()),
            next_seq: AtomicU64::new(1),
            tasks: Mutex::new(Vec::new()),
            membership_lock: Arc::new(tokio::sync::Mutex::new(())),
            config,
        });

        let server = tokio::spawn(inbound::serve(raft_listener, transport, node.clone()));
        let sweeper = tokio::spawn(sweep_expired(Arc::downgrade(&node)));
        let leadership = tokio::spawn(track_leadership(
            node.metrics.clone(),
            node.config.clone(),
            leader_flag,
            leader_tx,
        ));
        let learners = tokio::spawn(keep_learners(Arc::downgrade(&node)));
        node.tasks
            .lock()
            .extend([server, sweeper, leadership, learners]);

        // Every node may initialize with the same voters: the first log entry
        // it writes is identical on all of them, so this is idempotent. A
        // random pause first lets a node that already hears from an elected
        // peer skip it (and openraft's complaint about it).
        //
        // Only a pristine node (no log, no vote) initializes: after a
        // restart the membership comes from the replicated log and snapshot,
        // so voters removed by RAFT.REMOVE stay removed whatever the static
        // configuration lists.
        if !node.is_initialized().await? {
            let window = node.config.election_timeout_min.as_millis().max(1) as u64;
            tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % window)).await;
            if !node.is_initialized().await? {
                if let Err(err) = node.raft.initialize(node.config.members.clone()).await {
                    tracing::debug!(%err, "initialize skipped");
                }
            }
        }
        tracing::info!(node = node.config.id, "raft node started");
        Ok(node)
    }

    async fn is_initialized(&self) -> Result<bool> {
        self.raft
            .is_initialized()
            .await
            .map_err(|e| Error::Raft(e.to_string()))
    }

    pub fn id(&self) -> NodeId {
        self.config.id
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The applied state, for reads by INFO and metrics.
    pub fn state(&self) -> &Arc<RwLock<AppliedState>> {
        &self.state
    }

    /// Changes whenever the replicated user table does: a connection may
    /// keep its user's permissions while this stays the same.
    pub fn acl_generation(&self) -> u64 {
        self.acl_generation.load(Ordering::Acquire)
    }

    pub fn filter(&self) -> &NetFilter {
        &self.peer_ctx.filter
    }

    pub fn status(&self) -> NodeStatus {
        let m = self.metrics.borrow();
        NodeStatus {
            id: self.config.id,
            is_leader: m.state == ServerState::Leader,
            leader: m.current_leader,
            term: m.current_term,
            commit_index: self.committed_index.load(Ordering::Relaxed),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            last_log_index: m.last_log_index.unwrap_or(0),
            snapshot_index: m.snapshot.map(|s| s.index),
        }
    }

    /// The current leader's id and addresses, if one is known.
    pub fn leader(&self) -> Option<(NodeId, NodeInfo)> {
        let m = self.metrics.borrow();
        let id = m.current_leader?;
        let info = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, info))
    }

    /// On the leader: each follower and the last log index it has
    /// replicated. Empty elsewhere.
    pub fn replication(&self) -> BTreeMap<NodeId, u64> {
        let m = self.metrics.borrow();
        m.replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .filter(|(id, _)| **id != self.config.id)
                    .map(|(id, log)| (*id, log.map_or(0, |l| l.index)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Voters, learners and their addresses, as this node last saw the
    /// replicated membership.
    pub fn membership(&self) -> MembershipView {
        MembershipView::of(&self.metrics.borrow().membership_config)
    }

    /// Every node of the replicated membership (voters and learners) and
    /// its addresses.
    pub fn members(&self) -> BTreeMap<NodeId, NodeInfo> {
        let m = self.metrics.borrow();
        m.membership_config
            .membership()
            .nodes()
            .map(|(id, info)| (*id, info.clone()))
            .collect()
    }

    /// The leader commands should go to. A node that believes it leads but
    /// has not heard from a quorum for a while cannot commit anything, so it
    /// counts as no leader: clients get `CLUSTERDOWN` instead of a hang.
    fn effective_leader(&self) -> Option<NodeId> {
        effective_leader(&self.metrics.borrow(), &self.config)
    }

    fn next_request_id(&self) -> RequestId {
        RequestId {
            origin: self.origin,
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn forwarder(&self, leader: NodeId) -> Option<Arc<PeerClient>> {
        let mut forwarders = self.forwarders.lock();
        if let Some(client) = forwarders.get(&leader) {
            return Some(client.clone());
        }
        let addr = self.members().get(&leader)?.raft_addr.clone();
        let client = Arc::new(PeerClient::new(self.peer_ctx.clone(), leader, addr));
        forwarders.insert(leader, client.clone());
        Some(client)
    }

    /// Hands a write to this node, the leader: scripts to the script
    /// executor, everything else to the log.
    fn submit_here(&self, id: RequestId, op: WriteOp) -> oneshot::Receiver<ClientOutcome> {
        match crate::script::runs_on_executor(&op) {
            Some((user, argv)) => self
                .scripts
                .submit(id, user.map(str::to_owned), argv.to_vec()),
            None => self.proposer.submit(Proposal::Client { id, op }),
        }
    }

    /// Starts one attempt at a write. The submission happens before this
    /// returns, so calls made in order are proposed in order.
    fn start_write(&self, id: RequestId, op: &WriteOp) -> BoxFuture<'static, Attempt> {
        let leader = self.effective_leader();
        match leader {
            Some(leader) if leader == self.config.id => {
                let rx = self.submit_here(id, op.clone());
                async move {
                    match rx.await {
                        Ok(ClientOutcome::Reply(reply)) => Attempt::Done(reply),
                        _ => Attempt::Retry {
                            maybe_applied: true,
                        },
                    }
                }
                .boxed()
            }
            Some(leader) => match self.forwarder(leader) {
                Some(client) => {
                    let rx = client.submit(RpcRequest::Write { id, op: op.clone() });
                    async move {
                        match rx.await {
                            Ok(Ok(RpcResponse::Client(ClientOutcome::Reply(reply)))) => {
                                Attempt::Done(reply)
                            }
                            Ok(Ok(RpcResponse::Client(ClientOutcome::NotLeader { .. }))) => {
                                Attempt::Retry {
                                    maybe_applied: false,
                                }
                            }
                            _ => Attempt::Retry {
                                maybe_applied: true,
                            },
                        }
                    }
                    .boxed()
                }
                None => async {
                    Attempt::Retry {
                        maybe_applied: false,
                    }
                }
                .boxed(),
            },
            None => async {
                Attempt::Retry {
                    maybe_applied: false,
                }
            }
            .boxed(),
        }
    }

    /// Executes a write command through the Raft log, on whichever node leads.
    ///
    /// Submission is synchronous (see [`RaftNode::start_write`]); the returned
    /// future resolves to the reply. A write whose fate is unknown is retried
    /// with the same request id, so it is applied at most once; if it still
    /// has no answer at the deadline, the reply says the outcome is unknown.
    ///
    /// The membership commands (`RAFT.ADD`, `RAFT.REMOVE`) arrive here like
    /// any write, but they are not state-machine commands: they become an
    /// openraft membership change on the leader ([`RaftNode::change_membership`]).
    pub fn write(
        self: &Arc<Self>,
        argv: Vec<Bytes>,
    ) -> impl Future<Output = Reply> + Send + 'static {
        match membership::parse_command(&argv) {
            Some(Ok(change)) => Either::Left(self.change_membership(change).boxed()),
            Some(Err(reply)) => Either::Left(std::future::ready(reply).boxed()),
            None => Either::Right(self.submit(WriteOp::Command(argv))),
        }
    }

    /// Carries out a membership change on the leader, from any node: a
    /// follower forwards it. Retried while no leader is known or the one
    /// asked no longer leads; a retry after a lost answer may be refused
    /// because the first attempt already made the change.
    pub fn change_membership(
        self: &Arc<Self>,
        change: MembershipChange,
    ) -> impl Future<Output = Reply> + Send + 'static {
        let node = self.clone();
        async move {
            // Promotion waits up to a request timeout for the node to catch
            // up, and the change itself commits two entries: allow for both.
            let deadline = Instant::now() + 3 * node.config.request_timeout;
            loop {
                let outcome = match node.effective_leader() {
                    Some(leader) if leader == node.config.id => {
                        node.clone().change_here(change).await
                    }
                    Some(leader) => match node.forwarder(leader) {
                        Some(client) => {
                            let rx = client.submit(RpcRequest::Membership(change));
                            match tokio::time::timeout_at(deadline, rx).await {
                                Ok(Ok(Ok(RpcResponse::Client(outcome)))) => outcome,
                                Ok(Ok(Ok(_))) => {
                                    ClientOutcome::Unknown("unexpected response".into())
                                }
                                // Not sent, or sent and the answer lost: ask again; the
                                // checks refuse a change that was already made.
                                Ok(_) => ClientOutcome::NotLeader { leader: None },
                                Err(_) => return membership::unknown_outcome(),
                            }
                        }
                        None => ClientOutcome::NotLeader { leader: None },
                    },
                    None => ClientOutcome::NotLeader { leader: None },
                };
                match outcome {
                    ClientOutcome::Reply(reply) => return reply,
                    ClientOutcome::Unknown(why) => {
                        tracing::warn!(?change, %why, "membership change outcome unknown");
                        return membership::unknown_outcome();
                    }
                    ClientOutcome::NotLeader { .. } => {}
                }
                if Instant::now() >= deadline || node.wait_for_leader(deadline).await.is_none() {
                    return Reply::no_leader();
                }
            }
        }
    }

    /// Carries out a membership change on this node, if it leads.
    async fn change_here(self: Arc<Self>, change: MembershipChange) -> ClientOutcome {
        let _one_at_a_time = self.membership_lock.clone().lock_owned().await;
        if !self.status().is_leader {
            return ClientOutcome::NotLeader {
                leader: self.status().leader,
            };
        }
        let mut view = self.membership();
        if let (true, Some(next)) = (view.joint, view.next_voters.clone()) {
            // A leader lost half-way through a change leaves the joint
            // configuration in place; openraft does not finish it by itself.
            tracing::info!(?next, "completing an interrupted membership change");
            match self.raft.change_membership(next, true).await {
                Ok(response) => self.see_membership(response.log_id.index).await,
                Err(err) => return membership_error(err),
            }
            view = self.membership();
        }
        let step = match membership::plan(change, &view, &self.config.members) {
            Ok(step) => step,
            Err(refusal) => return ClientOutcome::Reply(refusal),
        };
        tracing::info!(?change, ?step, "membership change");
        let result = match step {
            membership::Step::Demote(id) => {
                // openraft lets a leader that is only a learner stay in
                // office, so the leader leaves the membership altogether:
                // then it steps down once the change applies, and the next
                // leader adds it back as a learner (`keep_learners`).
                let retain = id != self.config.id;
                self.raft
                    .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), retain)
                    .await
            }
            membership::Step::Promote { id, add_learner } => {
                if let Some(info) = add_learner {
                    // Not blocking: the catch-up wait below is bounded.
                    if let Err(err) = self.raft.add_learner(id, info, false).await {
                        return membership_error(err);
                    }
                }
                if !self.caught_up(id).await {
                    return ClientOutcome::Reply(membership::not_caught_up(id));
                }
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), true)
                    .await
            }
        };
        match result {
            Ok(response) => {
                self.see_membership(response.log_id.index).await;
                ClientOutcome::Reply(Reply::Ok)
            }
            Err(err) => membership_error(err),
        }
    }

    /// Waits (briefly) until this node's view shows the configuration of
    /// log entry `index`, so the next check, and RAFT.MEMBERS right after
    /// the reply, see the change.
    async fn see_membership(&self, index: u64) {
        let _ = self
            .raft
            .wait(Some(self.config.request_timeout))
            .metrics(
                |m| {
                    m.membership_config
                        .log_id()
                        .is_some_and(|l| l.index >= index)
                },
                "membership in view",
            )
            .await;
    }

    /// Waits (up to the request timeout) until `id` has replicated this
    /// leader's log as far as it reached when the wait began.
    async fn caught_up(&self, id: NodeId) -> bool {
        let target = self.metrics.borrow().last_log_index.unwrap_or(0);
        self.raft
            .wait(Some(self.config.request_timeout))
            .metrics(
                |m| {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id))
                        .is_some_and(|matched| matched.map_or(0, |l| l.index) >= target)
                },
                "learner caught up",
            )
            .await
            .is_ok()
    }

    /// Runs a script command (EVAL, EVALSHA, …) on the leader as `user`,
    /// whose ACL permissions every command of the script must pass.
    pub fn eval(
        self: &Arc<Self>,
        user: String,
        argv: Vec<Bytes>,
    ) -> impl Future<Output = Reply> + Send + 'static {
        self.submit(WriteOp::Script { user, argv })
    }

    /// Executes a transaction (MULTI/EXEC) atomically through the log.
    pub fn transaction(
        self: &Arc<Self>,
        watch: Option<Watch>,
        commands: Vec<Vec<Bytes>>,
    ) -> impl Future<Output = Reply> + Send + 'static {
        self.submit(WriteOp::Transaction { watch, commands })
    }

    /// Executes a write command under a request id the caller derived from
    /// the client's idempotency token ([`RequestId::for_idempotent`]): a
    /// resend with the same id, through any node, within the
    /// de-duplication window, is answered with the first reply.
    pub fn write_as(
        self: &Arc<Self>,
        id: RequestId,
        argv: Vec<Bytes>,
    ) -> impl Future<Output = Reply> + Send + 'static {
        self.submit_as(id, WriteOp::Command(argv))
    }

    /// Submits a write op; see [`RaftNode::write`].
    pub fn submit(self: &Arc<Self>, op: WriteOp) -> impl Future<Output = Reply> + Send + 'static {
        self.submit_as(self.next_request_id(), op)
    }

    fn submit_as(
        self: &Arc<Self>,
        id: RequestId,
        op: WriteOp,
    ) -> impl Future<Output = Reply> + Send + 'static {
        let mut target = self.effective_leader();
        let first = self.start_write(id, &op);
        let node = self.clone();
        async move {
            let sent = Instant::now();
            let deadline = sent + node.config.request_timeout;
            let mut maybe_applied = false;
            let mut attempt = first;
            loop {
                let outcome = tokio::select! {
                    outcome = tokio::time::timeout_at(deadline, &mut attempt) => outcome,
                    // A frozen or cut-off leader may hold the attempt until
                    // the deadline: once another node leads, try there. The
                    // request id keeps the retry from applying twice.
                    () = node.leader_moves_from(target), if target.is_some() => {
                        Ok(Attempt::Retry { maybe_applied: true })
                    }
                };
                match outcome {
                    Ok(Attempt::Done(reply)) => return reply,
                    Ok(Attempt::Retry {
                        maybe_applied: maybe,
                    }) => maybe_applied |= maybe,
                    Err(_) => maybe_applied = true,
                }
                let gave_up = || {
                    if maybe_applied {
                        unknown_outcome()
                    } else {
                        Reply::no_leader()
                    }
                };
                if Instant::now() >= deadline || node.wait_for_leader(deadline).await.is_none() {
                    return gave_up();
                }
                // Replicas remember this id only so long: a later re-send
                // could apply the write twice.
                if maybe_applied && sent.elapsed() > RETRY_HORIZON {
                    return gave_up();
                }
                target = node.effective_leader();
                attempt = node.start_write(id, &op);
            }
        }
    }

    /// Executes a read command linearizably: on the leader after a read
    /// barrier, or forwarded to it.
    pub fn read(
        self: &Arc<Self>,
        argv: Vec<Bytes>,
    ) -> impl Future<Output = Reply> + Send + 'static {
        let node = self.clone();
        async move {
            let deadline = Instant::now() + node.config.request_timeout;
            loop {
                let target = node.effective_leader();
                let attempt = node.start_read(&argv);
                let outcome = tokio::select! {
                    outcome = tokio::time::timeout_at(deadline, attempt) => outcome,
                    () = node.leader_moves_from(target), if target.is_some() => {
                        Ok(Attempt::Retry { maybe_applied: false })
                    }
                };
                if let Ok(Attempt::Done(reply)) = outcome {
                    return reply;
                }
                if Instant::now() >= deadline || node.wait_for_leader(deadline).await.is_none() {
                    return Reply::no_leader();
                }
            }
        }
    }

    fn start_read(self: &Arc<Self>, argv: &[Bytes]) -> BoxFuture<'static, Attempt> {
        let leader = self.effective_leader();
        match leader {
            Some(leader) if leader == self.config.id => {
                let node = self.clone();
                let argv = argv.to_vec();
                async move {
                    match node.read_local(&argv).await {
                        ClientOutcome::Reply(reply) => Attempt::Done(reply),
                        _ => Attempt::Retry {
                            maybe_applied: false,
                        },
                    }
                }
                .boxed()
            }
            Some(leader) => match self.forwarder(leader) {
                Some(client) => {
                    let rx = client.submit(RpcRequest::Read {
                        argv: argv.to_vec(),
                    });
                    async move {
                        match rx.await {
                            Ok(Ok(RpcResponse::Client(ClientOutcome::Reply(reply)))) => {
                                Attempt::Done(reply)
                            }
                            _ => Attempt::Retry {
                                maybe_applied: false,
                            },
                        }
                    }
                    .boxed()
                }
                None => async {
                    Attempt::Retry {
                        maybe_applied: false,
                    }
                }
                .boxed(),
            },
            None => async {
                Attempt::Retry {
                    maybe_applied: false,
                }
            }
            .boxed(),
        }
    }

    /// Serves a read on this node after confirming leadership.
    async fn read_local(&self, argv: &[Bytes]) -> ClientOutcome {
        match self.barrier.wait().await {
            Ok(()) => {
                let state = self.state.read();
                let ctx = ReadCtx {
                    data: &state.data,
                    now_ms: state.read_now_ms(self.config.clock.now_ns()),
                    applied_index: state.last_applied.map_or(0, |l| l.index),
                };
                ClientOutcome::Reply(execute_read(&ctx, argv))
            }
            Err(BarrierError::NotLeader(leader)) => ClientOutcome::NotLeader { leader },
            Err(BarrierError::Timeout) => {
                ClientOutcome::Unknown("leadership not confirmed in time".into())
            }
        }
    }

    /// Waits until this node has applied everything the leader had applied
    /// when asked: the leader's applied index comes from a linearizable read
    /// (the one WATCH makes), then this node's own apply must reach it. For
    /// what a node answers from its own copy, such as the user table AUTH
    /// checks: a user created through another node a moment ago is visible
    /// here afterwards. False if the leader could not be asked, or this node
    /// did not catch up within the request timeout.
    pub async fn catch_up(self: &Arc<Self>) -> bool {
        let argv = vec![Bytes::from_static(b"WATCH"), Bytes::from_static(b"")];
        let Reply::Int(index) = self.read(argv).await else {
            return false;
        };
        let target = u64::try_from(index).unwrap_or(0);
        target == 0
            || self
                .raft
                .wait(Some(self.config.request_timeout))
                .applied_index_at_least(Some(target), "caught up with the leader")
                .await
                .is_ok()
    }

    /// Resolves once a leader other than `target` is known.
    async fn leader_moves_from(&self, target: Option<NodeId>) {
        let mut leader = self.leader.clone();
        if leader
            .wait_for(|l| l.is_some() && *l != target)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }

    /// Waits until some leader is known, or until the no-leader timeout (or
    /// `deadline`, whichever is first) passes.
    async fn wait_for_leader(&self, deadline: Instant) -> Option<NodeId> {
        let until = deadline.min(Instant::now() + self.config.no_leader_timeout);
        // A short pause avoids spinning when the known leader keeps refusing.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut leader = self.leader.clone();
        let found = match tokio::time::timeout_at(until, leader.wait_for(Option::is_some)).await {
            Ok(Ok(found)) => *found,
            _ => None,
        };
        found
    }

    /// Builds a snapshot now (admin and tests).
    pub async fn trigger_snapshot(&self) -> Result<()> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| Error::Raft(e.to_string()))
    }

    /// Flushes RocksDB's memtables and WAL and compacts its files, so
    /// deleted and overwritten values are dropped from disk.
    pub fn compact_storage(&self) -> Result<()> {
        self.store.compact()
    }

    /// Re-seals every stored record that an older key sealed with the current
    /// key, then compacts so the old ciphertexts leave the disk. Returns how
    /// many records were re-sealed. A node also does this when it opens its
    /// storage, so after a rotation a restart is enough; this does it online.
    pub fn reseal_storage(&self) -> Result<u64> {
        let mut resealed = self.store.reseal()?;
        if self.snapshot_sealer.reseal_snapshot()? {
            resealed += 1;
        }
        self.store.compact()?;
        Ok(resealed)
    }

    /// How many stored records each key id seals (empty without encryption).
    pub fn storage_key_usage(&self) -> Result<KeyUsage> {
        self.store.key_usage()
    }

    /// Stops Raft and the node's tasks. Storage closes when the last
    /// reference to the node is dropped.
    pub async fn shutdown(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
        self.forwarders.lock().clear();
        if let Err(err) = self.raft.shutdown().await {
            tracing::warn!(%err, "raft shutdown");
        }
    }
}

/// What a failed openraft membership call means to the client.
fn membership_error(err: RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>) -> ClientOutcome {
    match err {
        RaftError::APIError(ClientWriteError::ForwardToLeader(fwd)) => ClientOutcome::NotLeader {
            leader: fwd.leader_id,
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            openraft::error::ChangeMembershipError::InProgress(_),
        )) => ClientOutcome::Reply(Reply::error(
            "ERR another membership change is in progress; retry",
        )),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(other)) => {
            ClientOutcome::Reply(Reply::error(format!(
                "ERR membership change refused: {other}"
            )))
        }
        // The joint entry may already be in the log: the change may complete
        // under the next leader.
        RaftError::Fatal(fatal) => ClientOutcome::Unknown(fatal.to_string()),
    }
}

fn unknown_outcome() -> Reply {
    Reply::error("TRYAGAIN write outcome unknown: the leader changed before it was confirmed; it may or may not have been applied")
}

impl RpcHandler for RaftNode {
    fn raft(&self) -> &Raft {
        &self.raft
    }

    fn cluster_name(&self) -> &str {
        &self.config.cluster_name
    }

    fn filter(&self) -> &NetFilter {
        &self.peer_ctx.filter
    }

    fn is_member(&self, node: NodeId) -> bool {
        self.config.members.contains_key(&node) || self.members().contains_key(&node)
    }

    fn forwarded_write(&self, id: RequestId, op: WriteOp) -> BoxFuture<'static, ClientOutcome> {
        let (leader, state) = {
            let m = self.metrics.borrow();
            (m.current_leader, m.state)
        };
        if leader != Some(self.config.id) || state != ServerState::Leader {
            return async move { ClientOutcome::NotLeader { leader } }.boxed();
        }
        let rx = self.submit_here(id, op);
        async move {
            rx.await
                .unwrap_or_else(|_| ClientOutcome::Unknown("proposer stopped".into()))
        }
        .boxed()
    }

    fn forwarded_membership(
        self: Arc<Self>,
        change: MembershipChange,
    ) -> BoxFuture<'static, ClientOutcome> {
        self.change_here(change).boxed()
    }

    fn forwarded_read(&self, argv: Vec<Bytes>) -> BoxFuture<'static, ClientOutcome> {
        let (leader, state) = {
            let m = self.metrics.borrow();
            (m.current_leader, m.state)
        };
        if leader != Some(self.config.id) || state != ServerState::Leader {
            return async move { ClientOutcome::NotLeader { leader } }.boxed();
        }
        let barrier = self.barrier.clone();
        let state = self.state.clone();
        let clock = self.config.clock.clone();
        async move {
            match barrier.wait().await {
                Ok(()) => {
                    let state = state.read();
                    let ctx = ReadCtx {
                        data: &state.data,
                        now_ms: state.read_now_ms(clock.now_ns()),
                        applied_index: state.last_applied.map_or(0, |l| l.index),
                    };
                    ClientOutcome::Reply(execute_read(&ctx, &argv))
                }
                Err(BarrierError::NotLeader(leader)) => ClientOutcome::NotLeader { leader },
                Err(BarrierError::Timeout) => {
                    ClientOutcome::Unknown("leadership not confirmed".into())
                }
            }
        }
        .boxed()
    }
}

/// The leader commands should go to, from openraft's view: a node that
/// believes it leads but has not heard from a quorum for two election
/// timeouts counts as no leader.
fn effective_leader(m: &RaftMetrics, config: &NodeConfig) -> Option<NodeId> {
    let leader = m.current_leader?;
    if leader == config.id {
        // A leader that removed itself from the voters steps down but
        // keeps its own vote until a successor's reaches it.
        if m.state != ServerState::Leader {
            return None;
        }
        let stale_after = 2 * config.election_timeout_max.as_millis() as u64;
        if m.millis_since_quorum_ack.is_some_and(|ms| ms > stale_after) {
            return None;
        }
    }
    Some(leader)
}

/// Mirrors "this node leads" into the state machine's metrics flag, and
/// publishes the effective leader whenever it changes. Staleness is a matter
/// of time, so it is also re-checked on a timer, not only on metrics changes.
async fn track_leadership(
    mut metrics: watch::Receiver<RaftMetrics>,
    config: NodeConfig,
    flag: Arc<std::sync::atomic::AtomicBool>,
    leader: watch::Sender<Option<NodeId>>,
) {
    let mut recheck = tokio::time::interval(config.heartbeat_interval);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (leading, effective) = {
            let m = metrics.borrow_and_update();
            (
                m.state == ServerState::Leader,
                effective_leader(&m, &config),
            )
        };
        flag.store(leading, Ordering::Relaxed);
        leader.send_if_modified(|known| {
            let changed = *known != effective;
            *known = effective;
            changed
        });
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = recheck.tick() => {}
        }
    }
}

/// On the leader, adds every configured node that is missing from the
/// membership back as a learner, so it replicates and knows who leads: a
/// leader that removed itself left the membership entirely (see
/// [`RaftNode::change_here`]).
async fn keep_learners(node: std::sync::Weak<RaftNode>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else { return };
        if !node.status().is_leader {
            continue;
        }
        let Ok(_one_at_a_time) = node.membership_lock.clone().try_lock_owned() else {
            continue;
        };
        let view = node.membership();
        // A leader outside the voters is on its way out: re-adding itself
        // would keep it in office (see `change_here`).
        if view.joint || !view.voters.contains(&node.config.id) {
            continue;
        }
        let missing = node
            .config
            .members
            .iter()
            .find(|(id, _)| !view.nodes.contains_key(id))
            .map(|(id, info)| (*id, info.clone()));
        if let Some((id, info)) = missing {
            tracing::info!(node = id, "adding a configured node back as a learner");
            if let Err(err) = node.raft.add_learner(id, info, false).await {
                tracing::debug!(%err, "add learner");
            }
        }
    }
}

/// On the leader, periodically proposes removal of expired keys. Which keys
/// go is decided at apply time from the replicated state, so every replica
/// removes the same ones.
async fn sweep_expired(node: std::sync::Weak<RaftNode>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else { return };
        if !node.status().is_leader {
            continue;
        }
        let (keys_due, ids_due) = {
            let state = node.state.read();
            let now_ns = node.config.clock.now_ns().max(state.last_stamp_ns);
            let keys_due = state
                .data
                .keyspace
                .first_expiry()
                .is_some_and(|at| at < now_ns / 1_000_000);
            // Remembered request ids are forgotten in apply; without traffic
            // nothing would apply, and they would stay.
            let ids_due = state.dedup_expiry_ns().is_some_and(|at| at < now_ns);
            (keys_due, ids_due)
        };
        if keys_due || ids_due {
            let max_keys = if keys_due { 1000 } else { 0 };
            let rx = node.proposer.submit(Proposal::Sweep { max_keys });
            drop(node);
            let _ = rx.await;
        }
    }
}
