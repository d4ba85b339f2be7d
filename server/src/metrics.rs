//! Prometheus metrics: the recorder, metric names, and the periodic gauges
//! that describe this node.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::ServerError;
use crate::shared::Shared;

pub const COMMAND_DURATION: &str = "raftlimit_command_duration_seconds";
pub const COMMANDS_TOTAL: &str = "raftlimit_commands_total";
pub const COMMAND_ERRORS_TOTAL: &str = "raftlimit_command_errors_total";
pub const CONNECTED_CLIENTS: &str = "raftlimit_connected_clients";
pub const KEYS: &str = "raftlimit_keys";

/// Installs the process-wide Prometheus recorder once and returns its handle.
/// Several in-process nodes (tests) share it.
pub fn recorder() -> Result<PrometheusHandle, ServerError> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0,
            ],
        )
        .map_err(|e| ServerError::Metrics(e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        // Another thread won the race; use the handle it stored.
        return HANDLE
            .get()
            .cloned()
            .ok_or_else(|| ServerError::Metrics("recorder installed elsewhere".into()));
    }
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

/// Refreshes the node gauges every second: role, term, leader, indexes,
/// apply lag, clients and keys.
pub async fn update_gauges(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut tick_count = 0u64;
    loop {
        tick.tick().await;
        let status = shared.node.status();
        metrics::gauge!("raftlimit_raft_is_leader").set(if status.is_leader { 1.0 } else { 0.0 });
        metrics::gauge!("raftlimit_raft_term").set(status.term as f64);
        metrics::gauge!("raftlimit_raft_leader_id").set(status.leader.map_or(-1.0, |l| l as f64));
        metrics::gauge!("raftlimit_raft_commit_index").set(status.commit_index as f64);
        metrics::gauge!("raftlimit_raft_applied_index").set(status.applied_index as f64);
        metrics::gauge!("raftlimit_raft_apply_lag")
            .set(status.commit_index.saturating_sub(status.applied_index) as f64);
        metrics::gauge!(CONNECTED_CLIENTS).set(shared.clients.len() as f64);
        let keys = shared.node.state().read().data.keyspace.len();
        metrics::gauge!(KEYS).set(keys as f64);
        if tick_count.is_multiple_of(5) {
            count_limiter_state(&shared);
        }
        tick_count += 1;
    }
}

/// Limiter keys and held leases. A full pass over the keyspace, so it runs
/// every few seconds, not every second.
fn count_limiter_state(shared: &Shared) {
    use raftlimit_raft::keyspace::Value;
    let (mut limiters, mut leases) = (0u64, 0u64);
    {
        let state = shared.node.state().read();
        let now_ms = state.read_now_ms(shared.node.config().clock.now_ns());
        for (_, entry) in state.data.keyspace.live(now_ms) {
            match &entry.value {
                Value::Limiter(_) => limiters += 1,
                Value::Leases(set) => leases += set.held(now_ms * 1_000_000),
                _ => {}
            }
        }
    }
    metrics::gauge!("raftlimit_limiter_keys").set(limiters as f64);
    metrics::gauge!("raftlimit_leases_held").set(leases as f64);
}
