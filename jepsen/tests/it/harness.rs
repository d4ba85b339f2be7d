//! The harness end to end against local `raftlimit-server` processes: every workload under kill and pause faults.
//!
//! Needs the server binary (`RAFTLIMIT_SERVER_BIN`, or the shared release
//! build that `make test` makes first) and fails with instructions without
//! it. Runs are a few seconds each; ports are picked at run time.

use std::sync::Arc;
use std::time::Duration;

use raftlimit_jepsen::checker::Validity;
use raftlimit_jepsen::cluster::local::{server_binary, LocalCluster, LocalOptions};
use raftlimit_jepsen::history::OpKind;
use raftlimit_jepsen::nemesis::{FaultKind, Schedule};
use raftlimit_jepsen::run::{run, RunConfig};
use raftlimit_jepsen::workload::NAMES;
use raftlimit_jepsen::Error;

fn cluster() -> Arc<LocalCluster> {
    let bin = server_binary().unwrap_or_else(|e| panic!("{e}"));
    Arc::new(LocalCluster::start(&LocalOptions::new(bin)).unwrap())
}

fn short(workload: &str, nemeses: Vec<FaultKind>, dir: &std::path::Path) -> RunConfig {
    let mut c = RunConfig::new(workload, nemeses, dir.join(workload));
    // Room for two faults (kill, then pause) with seconds to spare, however
    // slowly a killed node restarts on a loaded machine.
    c.duration = Duration::from_secs(8);
    c.quiet = Duration::from_secs(1);
    c.schedule = Schedule {
        interval: Duration::from_millis(1000),
        fault_duration: Duration::from_millis(1500),
    };
    c.workers = Some(6);
    c.rate = Some(20.0);
    c.op_timeout = Duration::from_secs(3);
    c.seed = Some(7);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_is_valid_under_kill_and_pause() {
    let dir = tempfile::tempdir().unwrap();
    for workload in NAMES {
        let config = short(
            workload,
            vec![FaultKind::Kill, FaultKind::Pause],
            dir.path(),
        );
        let outcome = run(cluster(), &config).await.unwrap();
        let s = &outcome.summary;
        println!("{}", s.verdict_line());
        assert_eq!(
            s.valid,
            Validity::Valid,
            "{workload}: {:#?}",
            outcome
                .results
                .iter()
                .map(|r| &r.anomalies)
                .collect::<Vec<_>>()
        );
        assert!(
            outcome.history.ops().iter().any(|o| o.kind == OpKind::Ok),
            "{workload}: no ok operation"
        );
        let kinds: Vec<FaultKind> = outcome.faults.iter().map(|f| f.kind).collect();
        assert!(
            kinds.contains(&FaultKind::Kill) && kinds.contains(&FaultKind::Pause),
            "{workload}: faults {kinds:?}"
        );
        assert!(outcome.faults.iter().all(|f| f.end_ns > f.start_ns));
        for file in [
            "history.jsonl",
            "faults.json",
            "summary.json",
            "logs/node1.log",
        ] {
            assert!(config.dir.join(file).is_file(), "{workload}: no {file}");
        }
        let reloaded =
            raftlimit_jepsen::history::History::load(config.dir.join("history.jsonl")).unwrap();
        assert_eq!(reloaded, outcome.history);
        let svg = std::fs::read_to_string(config.dir.join("plot.svg")).unwrap();
        assert!(
            svg.contains("latency (ms)") && svg.contains("<rect"),
            "{workload}: plot"
        );
        for r in &outcome.results {
            assert!(config.dir.join(format!("check-{}.json", r.name)).is_file());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_partitions_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let config = short("register", vec![FaultKind::Partition], dir.path());
    match run(cluster(), &config).await {
        Err(Error::Unsupported(why)) => assert!(why.contains("partition"), "{why}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(!config.dir.exists(), "nothing ran, so no run directory");
}
