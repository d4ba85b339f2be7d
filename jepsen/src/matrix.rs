//! `make chaos`: every workload against every nemesis, each on a fresh cluster, collected into one table.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::utc_now;
use crate::cluster::Cluster;
use crate::nemesis::{FaultKind, Nemesis};
use crate::report::{ChaosTable, MatrixRow};
use crate::run::{run, RunConfig};
use crate::Error;

/// What the matrix runs.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Workload names.
    pub workloads: Vec<String>,
    /// Nemeses, one run each (per workload).
    pub nemeses: Vec<FaultKind>,
    /// Settings shared by every run; `workload`, `nemeses` and `dir` are replaced.
    pub template: RunConfig,
    /// Parent of the run directories.
    pub runs_dir: PathBuf,
    /// Backend name for the table.
    pub target: String,
    /// Duration as the user wrote it, for the table.
    pub duration_label: String,
}

/// The run directory name: `<timestamp>-<workload>-<nemesis>`.
pub fn run_dir(runs_dir: &Path, workload: &str, nemesis: &str) -> PathBuf {
    runs_dir.join(format!("{}-{workload}-{nemesis}", utc_now().0))
}

impl Matrix {
    /// Runs every cell, printing each verdict line as it finishes. A cell
    /// that cannot run becomes a `NotRun` row; `new_cluster` is called once
    /// per run, with the run directory and the run's nemesis (a backend may
    /// be chosen per nemesis).
    pub async fn run(
        &self,
        mut new_cluster: impl FnMut(&Path, FaultKind) -> Result<Arc<dyn Cluster>, Error>,
    ) -> ChaosTable {
        let mut rows = Vec::new();
        for workload in &self.workloads {
            for &kind in &self.nemeses {
                let not_run = |reason: String| MatrixRow::NotRun {
                    workload: workload.clone(),
                    nemesis: kind.name().to_owned(),
                    reason,
                };
                if let Err(e) = Nemesis::new(vec![kind], self.template.schedule, 0) {
                    println!("NOT RUN: {workload} under {}: {e}", kind.name());
                    rows.push(not_run(e.to_string()));
                    continue;
                }
                let mut config = self.template.clone();
                config.workload = workload.clone();
                config.nemeses = vec![kind];
                config.dir = run_dir(&self.runs_dir, workload, kind.name());
                let outcome = match new_cluster(&config.dir, kind) {
                    Ok(cluster) => run(cluster, &config).await,
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(o) => {
                        println!("{}", o.summary.verdict_line());
                        rows.push(MatrixRow::Ran(Box::new(o.summary)));
                    }
                    Err(e) => {
                        println!("NOT RUN: {workload} under {}: {e}", kind.name());
                        rows.push(not_run(e.to_string()));
                    }
                }
            }
        }
        ChaosTable {
            duration: self.duration_label.clone(),
            target: self.target.clone(),
            generated: utc_now().1,
            rows,
        }
    }
}
