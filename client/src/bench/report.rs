//! The report: the generated section of `docs/benchmarks.md` and the
//! latency-versus-throughput SVG, both pure functions of a [`SuiteReport`].
//!
//! The goal rows come first because they are what the numbers are for: each
//! compares raftlimit with the Redis setup it replaces (the `limits`
//! library's fixed-window script) at the same connection count, and states
//! the target next to the measured ratio. The full matrix follows, then the
//! cost of each operation (CPU per process, commands per Raft entry), then
//! the open-loop curves.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::suite::{Cell, CellKind, SuiteReport, TargetKind};
use super::workload::Workload;
use super::BenchError;

/// Start and end markers of the generated section.
pub const BEGIN: &str = "<!-- bench:begin -->";
pub const END: &str = "<!-- bench:end -->";

fn int(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{r:.2}×"))
}

/// A goal: what is measured, the value, the target, whether it is met.
struct Goal {
    what: String,
    measured: String,
    target: &'static str,
    met: Option<bool>,
}

fn mark(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

/// The cell of the Redis baseline for a workload: the same command where
/// Redis has it, the `limits` script where the command is raftlimit's own.
fn baseline(r: &SuiteReport, t: TargetKind, w: Workload, c: usize, p: usize) -> Option<&Cell> {
    let w = if w.on_redis() {
        w
    } else {
        Workload::LimitsEvalsha
    };
    r.cell(t, w, c, p)
}

fn ops(cell: Option<&Cell>) -> Option<f64> {
    cell.and_then(Cell::ops)
}

fn goals(r: &SuiteReport) -> Vec<Goal> {
    let rl = Workload::RlCheckGcra;
    let leader = |c, p| ops(r.cell(TargetKind::Leader, rl, c, p));
    let script = |t, c, p| ops(r.cell(t, Workload::LimitsEvalsha, c, p));
    let ratio_goal =
        |what: String, a: Option<f64>, b: Option<f64>, target: &'static str, min: f64| {
            let q = ratio(a, b);
            Goal {
                what,
                measured: match (q, a, b) {
                    (Some(q), Some(a), Some(b)) => format!("{q:.2}× ({} / {})", int(a), int(b)),
                    _ => "–".into(),
                },
                target,
                met: q.map(|q| q >= min),
            }
        };
    let mut goals = vec![
        ratio_goal(
            "RL.CHECK through the leader ÷ redis `always` running the limits script, 50 connections".into(),
            leader(50, 1),
            script(TargetKind::RedisAlways, 50, 1),
            "≥ 1.0×",
            1.0,
        ),
        ratio_goal(
            "RL.CHECK through the leader ÷ redis `everysec` running the limits script, 50 connections".into(),
            leader(50, 1),
            script(TargetKind::RedisEverysec, 50, 1),
            "≥ 0.5×",
            0.5,
        ),
        ratio_goal(
            "RL.CHECK through a follower ÷ through the leader, 50 connections".into(),
            ops(r.cell(TargetKind::Follower, rl, 50, 1)),
            leader(50, 1),
            "≥ 0.8×",
            0.8,
        ),
        ratio_goal(
            "RL.CHECK through the leader ÷ redis `always` (limits script), 1 connection".into(),
            leader(1, 1),
            script(TargetKind::RedisAlways, 1, 1),
            "≥ 0.5×",
            0.5,
        ),
        ratio_goal(
            "RL.CHECK through the leader ÷ redis `always` (limits script), 50 connections, pipeline 16".into(),
            leader(50, 16),
            script(TargetKind::RedisAlways, 50, 16),
            "≥ 0.5×",
            0.5,
        ),
    ];
    // Worst latencies of RL.CHECK over every connection setting, on every raftlimit target.
    let rl_cells: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| {
            c.kind == CellKind::Matrix
                && c.workload == rl
                && !c.target.is_redis()
                && c.result.is_some()
        })
        .collect();
    let worst = |f: fn(&Cell) -> f64| -> Option<(f64, &Cell)> {
        rl_cells
            .iter()
            .map(|c| (f(c), *c))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let lat = |c: &Cell| c.result.as_ref().map_or(0.0, |r| r.latency.p95_ms);
    let lat999 = |c: &Cell| c.result.as_ref().map_or(0.0, |r| r.latency.p999_ms);
    for (what, f, target, limit) in [
        ("p95", lat as fn(&Cell) -> f64, "< 10 ms", 10.0),
        ("p99.9", lat999 as fn(&Cell) -> f64, "< 25 ms", 25.0),
    ] {
        let w = worst(f);
        goals.push(Goal {
            what: format!(
                "RL.CHECK worst {what} over every connection setting and raftlimit target"
            ),
            measured: w.map_or("–".into(), |(v, c)| {
                format!("{} ms ({}, {})", ms(v), c.target.label(), setting(c))
            }),
            target,
            met: w.map(|(v, _)| v < limit),
        });
    }
    let steady = r
        .cells
        .iter()
        .find(|c| c.kind == CellKind::Steady && c.result.is_some());
    match steady {
        Some(c) => {
            let res = c.result.as_ref();
            let max = res.map_or(0.0, |r| r.latency.max_ms);
            goals.push(Goal {
                what: format!(
                    "RL.CHECK max latency in the {:.0} s run through the leader, 50 connections",
                    res.map_or(0.0, |r| r.seconds)
                ),
                measured: format!("{} ms", ms(max)),
                target: "< 100 ms",
                met: Some(max < 100.0),
            });
        }
        None => {
            let w = worst(|c| c.result.as_ref().map_or(0.0, |r| r.latency.max_ms));
            goals.push(Goal {
                what: "RL.CHECK worst max latency over the matrix (no long run in this report)"
                    .into(),
                measured: w.map_or("–".into(), |(v, c)| {
                    format!("{} ms ({}, {})", ms(v), c.target.label(), setting(c))
                }),
                target: "< 100 ms",
                met: w.map(|(v, _)| v < 100.0),
            });
        }
    }
    let half = r
        .cells
        .iter()
        .find(|c| {
            c.kind == CellKind::Curve(50) && c.target == TargetKind::Leader && c.result.is_some()
        })
        .and_then(|c| c.result.as_ref());
    goals.push(Goal {
        what: "RL.CHECK open loop at 50% of saturation through the leader: p95".into(),
        measured: half.map_or("–".into(), |h| {
            format!(
                "{} ms at {} ops/s",
                ms(h.latency.p95_ms),
                int(h.ops_per_sec)
            )
        }),
        target: "≤ 1 ms",
        met: half.map(|h| h.latency.p95_ms <= 1.0),
    });
    goals.push(Goal {
        what: "RL.CHECK open loop at 50% of saturation through the leader: p99".into(),
        measured: half.map_or("–".into(), |h| format!("{} ms", ms(h.latency.p99_ms))),
        target: "≤ 2 ms",
        met: half.map(|h| h.latency.p99_ms <= 2.0),
    });
    let changes: Option<u64> = r
        .cells
        .iter()
        .filter_map(|c| c.leader_changes)
        .fold(None, |acc, n| Some(acc.unwrap_or(0) + n));
    goals.push(Goal {
        what: "Leader changes during the whole run".into(),
        measured: changes.map_or("–".into(), |n| n.to_string()),
        target: "0",
        met: changes.map(|n| n == 0),
    });
    goals
}

fn setting(c: &Cell) -> String {
    match c.kind {
        CellKind::Curve(p) => format!("open loop {p}%"),
        _ if c.pipeline > 1 => format!("{} conns, P{}", c.connections, c.pipeline),
        _ => format!("{} conns", c.connections),
    }
}

/// The Markdown section, markers included.
pub fn render_markdown(r: &SuiteReport, svg_name: &str) -> String {
    let mut out = String::new();
    let m = &r.meta;
    let _ = writeln!(out, "{BEGIN}");
    let _ = writeln!(
        out,
        "<!-- Generated by `make bench` (raftlimit-bench suite); edits between these markers are overwritten. -->"
    );
    let _ = writeln!(out, "## Results\n");
    let _ = writeln!(out, "| | |\n|---|---|");
    for (k, v) in [
        ("Date", m.date.clone()),
        ("CPUs", m.cpus.clone()),
        ("Memory", m.memory.clone()),
        ("Kernel", m.kernel.clone()),
        ("Data directories", format!("{} filesystem", m.filesystem)),
        ("redis-server", m.redis_version.clone()),
        ("raftlimit commit", m.commit.clone()),
        ("Parameters", m.parameters.clone()),
        (
            "Other processes' CPU",
            format!(
                "{:.0}% before the run, {:.0}% during it (refused above {:.0}%)",
                m.busy_before_pct,
                r.others_pct(),
                r.busy_threshold_pct
            ),
        ),
        ("Run time", format!("{:.0} s", m.elapsed_s)),
    ] {
        let _ = writeln!(out, "| {k} | {v} |");
    }

    let _ = writeln!(out, "\n### Goals\n");
    let _ = writeln!(out, "| Goal | Measured | Target | |\n|---|---:|---:|---|");
    for g in goals(r) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            g.what,
            g.measured,
            g.target,
            mark(g.met)
        );
    }

    let targets: Vec<TargetKind> = TargetKind::ALL
        .into_iter()
        .filter(|t| r.cells.iter().any(|c| c.target == *t))
        .collect();
    let workloads: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|w| r.cells.iter().any(|c| c.workload == *w))
        .collect();
    let mut settings: Vec<(usize, usize)> = Vec::new();
    for c in r.cells.iter().filter(|c| c.kind == CellKind::Matrix) {
        if !settings.contains(&(c.connections, c.pipeline)) {
            settings.push((c.connections, c.pipeline));
        }
    }
    settings.sort_by_key(|&(c, p)| (p, c));

    let _ = writeln!(out, "\n### Throughput\n");
    let _ = writeln!(
        out,
        "Operations per second, closed loop. Ratios compare the same command; for raftlimit's own commands \
         (RL.\\*, CL.THROTTLE), marked †, the Redis side is the `limits` fixed-window script at the same setting."
    );
    let _ = writeln!(out);
    let mut head = "| Workload | Conns | P |".to_string();
    let mut sep = "|---|---:|---:|".to_string();
    for t in &targets {
        let _ = write!(head, " {} |", t.label());
        sep.push_str("---:|");
    }
    head.push_str(
        " leader ÷ always | leader ÷ everysec | follower ÷ leader | TLS+AUTH+enc ÷ leader |",
    );
    sep.push_str("---:|---:|---:|---:|");
    let _ = writeln!(out, "{head}\n{sep}");
    for &w in &workloads {
        for &(c, p) in &settings {
            if !targets.iter().any(|&t| r.cell(t, w, c, p).is_some()) {
                continue;
            }
            let dagger = if w.on_redis() { "" } else { " †" };
            let mut row = format!("| {}{dagger} | {c} | {p} |", w.label());
            for &t in &targets {
                let text = match r.cell(t, w, c, p) {
                    None if t.is_redis() && !w.on_redis() => "n/a".into(),
                    None => "–".into(),
                    Some(cell) => match cell.ops() {
                        Some(o) => int(o),
                        None => "failed".into(),
                    },
                };
                let _ = write!(row, " {text} |");
            }
            let leader = ops(r.cell(TargetKind::Leader, w, c, p));
            let _ = write!(
                row,
                " {} | {} | {} | {} |",
                ratio_text(ratio(
                    leader,
                    ops(baseline(r, TargetKind::RedisAlways, w, c, p))
                )),
                ratio_text(ratio(
                    leader,
                    ops(baseline(r, TargetKind::RedisEverysec, w, c, p))
                )),
                ratio_text(ratio(ops(r.cell(TargetKind::Follower, w, c, p)), leader)),
                ratio_text(ratio(ops(r.cell(TargetKind::Secure, w, c, p)), leader)),
            );
            let _ = writeln!(out, "{row}");
        }
    }

    let _ = writeln!(out, "\n### Latency and cost per operation\n");
    let _ = writeln!(
        out,
        "Latency in milliseconds from the request's write to its reply. *cmds/entry*: mean commands per Raft \
         log entry on the leader (group commit). CPU in microseconds per operation: *server* is the leader or \
         redis-server, *replicas* each follower, *client* this load generator."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "{COST_HEADER}");
    for &w in &workloads {
        for &(c, p) in &settings {
            for &t in &targets {
                if let Some(cell) = r.cell(t, w, c, p) {
                    let _ = writeln!(
                        out,
                        "{}",
                        cost_row(
                            cell,
                            &format!("| {} | {c} | {p} | {} |", w.label(), t.label())
                        )
                    );
                }
            }
        }
    }

    let curves: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| matches!(c.kind, CellKind::Curve(_)))
        .collect();
    if !curves.is_empty() {
        let _ = writeln!(out, "\n### Latency against throughput (open loop)\n");
        let _ = writeln!(
            out,
            "Each target at fixed request rates from 10% to 100% of its best closed-loop throughput without \
             pipelining, {} connections; latency is measured from when each request was due, so time spent \
             queued behind a slow reply counts. raftlimit runs RL.CHECK, Redis the `limits` script. *send lag*: \
             how late the generator sent requests (its own share of the latency).\n",
            curves.first().map_or(0, |c| c.connections)
        );
        let _ = writeln!(
            out,
            "![p50 and p99 latency against throughput]({svg_name})\n"
        );
        let _ = writeln!(
            out,
            "| Target | Workload | % of saturation | rate asked | ops/s | p50 | p95 | p99 | p99.9 | max | send lag p99 |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for &t in &targets {
            let mut cs: Vec<&&Cell> = curves.iter().filter(|c| c.target == t).collect();
            cs.sort_by_key(|c| match c.kind {
                CellKind::Curve(p) => p,
                _ => 0,
            });
            for c in cs {
                let CellKind::Curve(pct) = c.kind else {
                    continue;
                };
                let row = match &c.result {
                    Some(res) => format!(
                        "| {} | {} | {pct}% | {} | {} | {} | {} | {} | {} | {} | {} |",
                        t.label(),
                        c.workload.label(),
                        int(res.rate.unwrap_or(0.0)),
                        int(res.ops_per_sec),
                        ms(res.latency.p50_ms),
                        ms(res.latency.p95_ms),
                        ms(res.latency.p99_ms),
                        ms(res.latency.p999_ms),
                        ms(res.latency.max_ms),
                        res.send_lag.map_or("–".into(), |l| ms(l.p99_ms)),
                    ),
                    None => format!(
                        "| {} | {} | {pct}% | | failed | | | | | | |",
                        t.label(),
                        c.workload.label()
                    ),
                };
                let _ = writeln!(out, "{row}");
            }
        }
    }

    let steady: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| c.kind == CellKind::Steady)
        .collect();
    if !steady.is_empty() {
        let _ = writeln!(out, "\n### Long run\n");
        let _ = writeln!(out, "{COST_HEADER}");
        for c in steady {
            let secs = c.result.as_ref().map_or(0.0, |r| r.seconds);
            let _ = writeln!(
                out,
                "{}",
                cost_row(
                    c,
                    &format!(
                        "| {} ({secs:.0} s) | {} | {} | {} |",
                        c.workload.label(),
                        c.connections,
                        c.pipeline,
                        c.target.label()
                    )
                )
            );
        }
    }

    let notes = notes(r);
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes from this run:\n");
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    let _ = writeln!(out, "{END}");
    out
}

/// Heading of the tables with one row per measurement ([`cost_row`]).
const COST_HEADER: &str = "| Workload | Conns | P | Target | ops/s | p50 | p95 | p99 | p99.9 | max | errors | cmds/entry | CPU µs/op server | replicas | client | leader changes | snapshots |\n|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

fn cost_row(cell: &Cell, lead: &str) -> String {
    let Some(res) = &cell.result else {
        return format!("{lead} failed | | | | | | | | | | | | |");
    };
    let cpu = |roles: &[&str]| -> String {
        let vals: Vec<f64> = cell
            .cpu
            .iter()
            .filter(|p| roles.contains(&p.role.as_str()))
            .filter_map(|p| p.us_per_op)
            .collect();
        if vals.is_empty() {
            "–".into()
        } else {
            // One value per process: the two followers are shown side by side.
            vals.iter()
                .map(|v| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        }
    };
    let l = &res.latency;
    format!(
        "{lead} {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        int(res.ops_per_sec),
        ms(l.p50_ms),
        ms(l.p95_ms),
        ms(l.p99_ms),
        ms(l.p999_ms),
        ms(l.max_ms),
        res.errors,
        cell.batch_mean.map_or("–".into(), |b| format!("{b:.1}")),
        cpu(&["leader", "redis"]),
        cpu(&["follower"]),
        cpu(&["client"]),
        cell.leader_changes.map_or("–".into(), |n| n.to_string()),
        cell.snapshots.map_or("–".into(), |n| n.to_string()),
    )
}

fn notes(r: &SuiteReport) -> Vec<String> {
    let mut notes = r.notes.clone();
    if let Some(why) = &r.incomplete {
        notes.insert(0, format!("**Incomplete run:** {why}."));
    }
    for c in &r.cells {
        let at = format!(
            "{} {} ({})",
            c.target.label(),
            c.workload.label(),
            setting(c)
        );
        if let Some(f) = &c.failure {
            notes.push(format!("{at} failed: {f}"));
        }
        if let Some(res) = &c.result {
            if res.errors > 0 {
                notes.push(format!(
                    "{at}: {} error replies, e.g. {}",
                    res.errors,
                    res.error_samples.join("; ")
                ));
            }
            if res.io_errors > 0 {
                notes.push(format!(
                    "{at}: {} connections lost: {}",
                    res.io_errors,
                    res.io_error_samples.join("; ")
                ));
            }
            if res.unfinished > 0 {
                notes.push(format!(
                    "{at}: {} requests still unanswered at the end",
                    res.unfinished
                ));
            }
        }
        if let Some(n) = c.leader_changes.filter(|&n| n > 0) {
            notes.push(format!(
                "{at}: the Raft term rose by {n} (leader elections) during the measurement"
            ));
        }
    }
    notes
}

/// Colour per target, fixed so runs compare at a glance.
fn color(t: TargetKind) -> RGBColor {
    match t {
        TargetKind::Leader => RGBColor(31, 119, 180),
        TargetKind::Follower => RGBColor(44, 160, 44),
        TargetKind::Secure => RGBColor(148, 103, 189),
        TargetKind::RedisAlways => RGBColor(214, 39, 40),
        TargetKind::RedisEverysec => RGBColor(255, 127, 14),
    }
}

/// The open-loop curves as SVG text: p50 and p99 against achieved throughput,
/// one line per target, latency on a log scale (Redis and raftlimit differ by
/// orders of magnitude).
pub fn render_svg(r: &SuiteReport) -> Result<String, BenchError> {
    let plot = |e: &dyn std::fmt::Display| BenchError::Config(format!("plot: {e}"));
    /// (achieved ops/s, p50 ms, p99 ms) per curve point.
    type Points = Vec<(f64, f64, f64)>;
    let mut series: Vec<(TargetKind, Points)> = Vec::new();
    for t in TargetKind::ALL {
        let mut pts: Vec<(u32, f64, f64, f64)> = r
            .cells
            .iter()
            .filter(|c| c.target == t)
            .filter_map(|c| match (c.kind, &c.result) {
                (CellKind::Curve(p), Some(res)) if res.ops > 0 => Some((
                    p,
                    res.ops_per_sec,
                    res.latency.p50_ms.max(0.001),
                    res.latency.p99_ms.max(0.001),
                )),
                _ => None,
            })
            .collect();
        pts.sort_by_key(|p| p.0);
        if !pts.is_empty() {
            series.push((t, pts.into_iter().map(|(_, x, a, b)| (x, a, b)).collect()));
        }
    }
    let x_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0f64, f64::max)
        * 1.05;
    let y_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.2))
        .fold(1.0f64, f64::max)
        * 8.0; // headroom on the log scale, above the data, for the legend
    let y_min = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(y_max, f64::min)
        .min(0.1)
        * 0.7;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot(&e))?;
        let panels = root.split_evenly((1, 2));
        for (panel, (title, pick)) in panels.iter().zip([
            ("p50 latency (ms) against throughput", 0usize),
            ("p99 latency (ms) against throughput", 1usize),
        ]) {
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..x_max, (y_min..y_max).log_scale())
                .map_err(|e| plot(&e))?;
            chart
                .configure_mesh()
                .x_desc("achieved ops/s")
                .y_desc("ms (log scale)")
                .x_label_formatter(&|x| int(*x))
                .y_label_formatter(&|y| format!("{y}"))
                .draw()
                .map_err(|e| plot(&e))?;
            for (t, pts) in &series {
                let c = color(*t);
                let line: Vec<(f64, f64)> = pts
                    .iter()
                    .map(|p| (p.0, if pick == 0 { p.1 } else { p.2 }))
                    .collect();
                chart
                    .draw_series(LineSeries::new(line.clone(), c.stroke_width(2)))
                    .map_err(|e| plot(&e))?
                    .label(t.label())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                chart
                    .draw_series(line.into_iter().map(|p| Circle::new(p, 3, c.filled())))
                    .map_err(|e| plot(&e))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| plot(&e))?;
        }
        root.present().map_err(|e| plot(&e))?;
    }
    Ok(svg)
}

/// `doc` with the text between the markers replaced by `section` (which
/// carries its own markers), or `section` appended when the markers are missing.
pub fn replace_section(doc: &str, section: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let after = &doc[e + END.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{}{}", &doc[..b], section, after)
        }
        _ => {
            let mut out = doc.to_string();
            if !out.is_empty() && !out.ends_with("\n\n") {
                out.push('\n');
            }
            out.push_str(section);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::run::{Latency, RunResult};
    use super::super::suite::{Meta, ProcessCpu};
    use super::*;

    fn result(w: Workload, c: usize, p: usize, ops: f64, p95: f64, rate: Option<f64>) -> RunResult {
        RunResult {
            workload: w,
            connections: c,
            pipeline: p,
            rate,
            seconds: 2.0,
            ops: (ops * 2.0) as u64,
            ops_per_sec: ops,
            errors: 0,
            error_samples: vec![],
            io_errors: 0,
            io_error_samples: vec![],
            unfinished: 0,
            latency: Latency {
                p50_ms: p95 / 3.0,
                p95_ms: p95,
                p99_ms: p95 * 2.0,
                p999_ms: p95 * 3.0,
                max_ms: p95 * 4.0,
                mean_ms: p95 / 2.0,
            },
            send_lag: rate.map(|_| Latency::default()),
        }
    }

    fn cell(
        t: TargetKind,
        w: Workload,
        kind: CellKind,
        c: usize,
        p: usize,
        ops: f64,
        p95: f64,
    ) -> Cell {
        let rate = match kind {
            CellKind::Curve(pct) => Some(ops * 100.0 / f64::from(pct)),
            _ => None,
        };
        Cell {
            target: t,
            workload: w,
            kind,
            connections: c,
            pipeline: p,
            result: Some(result(w, c, p, ops, p95, rate)),
            failure: None,
            batch_mean: (!t.is_redis()).then_some(4.0),
            cpu: vec![
                ProcessCpu {
                    role: if t.is_redis() {
                        "redis".into()
                    } else {
                        "leader".into()
                    },
                    us_per_op: Some(20.0),
                },
                ProcessCpu {
                    role: if t.is_redis() { "-" } else { "follower" }.into(),
                    us_per_op: Some(11.0),
                },
                ProcessCpu {
                    role: if t.is_redis() { "-" } else { "follower" }.into(),
                    us_per_op: Some(12.5),
                },
                ProcessCpu {
                    role: "client".into(),
                    us_per_op: Some(3.0),
                },
            ],
            leader_changes: (!t.is_redis()).then_some(0),
            snapshots: (!t.is_redis()).then_some(1),
            others_pct: 2.0,
            machine_ticks: 400,
        }
    }

    fn sample() -> SuiteReport {
        let mut cells = Vec::new();
        for (c, p) in [(1, 1), (50, 1), (50, 16)] {
            cells.push(cell(
                TargetKind::Leader,
                Workload::RlCheckGcra,
                CellKind::Matrix,
                c,
                p,
                20_000.0,
                4.0,
            ));
            cells.push(cell(
                TargetKind::Follower,
                Workload::RlCheckGcra,
                CellKind::Matrix,
                c,
                p,
                17_000.0,
                if c == 1 { 5.0 } else { 4.5 },
            ));
            cells.push(cell(
                TargetKind::RedisAlways,
                Workload::LimitsEvalsha,
                CellKind::Matrix,
                c,
                p,
                40_000.0,
                1.0,
            ));
            cells.push(cell(
                TargetKind::RedisEverysec,
                Workload::LimitsEvalsha,
                CellKind::Matrix,
                c,
                p,
                50_000.0,
                0.8,
            ));
            cells.push(cell(
                TargetKind::Leader,
                Workload::Set,
                CellKind::Matrix,
                c,
                p,
                10_000.0,
                12.0,
            ));
            cells.push(cell(
                TargetKind::RedisAlways,
                Workload::Set,
                CellKind::Matrix,
                c,
                p,
                30_000.0,
                1.0,
            ));
        }
        for pct in [25, 50, 100] {
            let f = f64::from(pct) / 100.0;
            cells.push(cell(
                TargetKind::Leader,
                Workload::RlCheckGcra,
                CellKind::Curve(pct),
                50,
                1,
                20_000.0 * f,
                0.5 + f,
            ));
            cells.push(cell(
                TargetKind::RedisAlways,
                Workload::LimitsEvalsha,
                CellKind::Curve(pct),
                50,
                1,
                40_000.0 * f,
                0.1 * f + 0.05,
            ));
        }
        let mut failed = cell(
            TargetKind::Secure,
            Workload::Set,
            CellKind::Matrix,
            50,
            1,
            0.0,
            0.0,
        );
        failed.result = None;
        failed.failure = Some("connect refused".into());
        cells.push(failed);
        SuiteReport {
            meta: Meta {
                date: "2026-12-04 12:00 UTC".into(),
                ..Meta::default()
            },
            cells,
            notes: vec![],
            busy_threshold_pct: 15.0,
            incomplete: None,
        }
    }

    #[test]
    fn goal_rows_compare_rl_check_with_the_limits_script() {
        let md = render_markdown(&sample(), "bench-latency.svg");
        assert!(md.starts_with(BEGIN) && md.trim_end().ends_with(END));
        // 20,000 / 40,000 against always, 20,000 / 50,000 against everysec.
        assert!(md.contains("| RL.CHECK through the leader ÷ redis `always` running the limits script, 50 connections | 0.50× (20,000 / 40,000) | ≥ 1.0× | **missed** |"), "{md}");
        assert!(md.contains("0.40× (20,000 / 50,000) | ≥ 0.5× | **missed** |"));
        assert!(md.contains("0.85× (17,000 / 20,000) | ≥ 0.8× | met |"));
        // Worst p95 over the RL.CHECK cells is the follower's 5 ms; the half-load point has p95 1.0.
        assert!(
            md.contains("5.00 ms (raftlimit follower, 1 conns) | < 10 ms | met |"),
            "{md}"
        );
        assert!(md.contains("| RL.CHECK open loop at 50% of saturation through the leader: p95 | 1.00 ms at 10,000 ops/s | ≤ 1 ms | met |"));
        assert!(md.contains("| Leader changes during the whole run | 0 | 0 | met |"));
    }

    #[test]
    fn throughput_rows_carry_ratios_and_mark_raftlimit_only_commands() {
        let md = render_markdown(&sample(), "x.svg");
        // RL.CHECK against the script (†), n/a in the Redis columns.
        assert!(
            md.contains("| RL.CHECK gcra † | 50 | 1 | 20,000 | 17,000 | – | n/a | n/a | 0.50× | 0.40× | 0.85× | – |"),
            "{md}"
        );
        // SET against SET; everysec did not run SET here, the secure target failed.
        assert!(
            md.contains("| SET | 50 | 1 | 10,000 | – | failed | 30,000 | – | 0.33× | – | – | – |"),
            "{md}"
        );
        // Cost rows: CPU per role, batch size.
        assert!(md.contains("| SET | 50 | 1 | raftlimit leader | 10,000 | 4.00 | 12.0 | 24.0 | 36.0 | 48.0 | 0 | 4.0 | 20.0 | 11.0 / 12.5 | 3.0 | 0 | 1 |"), "{md}");
        assert!(
            md.contains("raftlimit TLS+AUTH+enc Set (50 conns) failed: connect refused")
                || md.contains("failed: connect refused")
        );
        assert!(md.contains("![p50 and p99 latency against throughput](x.svg)"));
        assert!(
            md.contains("| raftlimit leader | RL.CHECK gcra | 50% | 20,000 | 10,000 |"),
            "{md}"
        );
    }

    #[test]
    fn busy_runs_are_refused() {
        let mut r = sample();
        assert_eq!(r.busy_reason(), None);
        r.meta.busy_before_pct = 40.0;
        assert!(r.busy_reason().unwrap().contains("before the run"));
        r.meta.busy_before_pct = 0.0;
        for c in &mut r.cells {
            c.others_pct = 30.0;
        }
        assert!(r.busy_reason().unwrap().contains("during the run"));
        // A few busy cells among many quiet ones pass; many do not.
        for (i, c) in r.cells.iter_mut().enumerate() {
            c.others_pct = if i == 0 { 90.0 } else { 1.0 };
        }
        assert!(r.others_pct() < 15.0);
        assert_eq!(r.busy_reason(), None, "one busy cell in {}", r.cells.len());
        for c in r.cells.iter_mut().take(6) {
            c.others_pct = 20.0;
        }
        assert!(r.busy_reason().is_some());
    }

    #[test]
    fn svg_has_a_line_per_target_with_curve_points() {
        let svg = render_svg(&sample()).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("raftlimit leader") && svg.contains("redis always"));
        assert!(
            !svg.contains("raftlimit follower"),
            "the follower has no curve in the sample"
        );
        assert!(svg.matches("<circle").count() >= 12);
    }

    #[test]
    fn section_replacement_keeps_the_rest_of_the_document() {
        let doc = format!("# Benchmarks\n\nintro\n\n{BEGIN}\nold\n{END}\n\n## After\n");
        let new = format!("{BEGIN}\nnew\n{END}\n");
        assert_eq!(
            replace_section(&doc, &new),
            format!("# Benchmarks\n\nintro\n\n{BEGIN}\nnew\n{END}\n\n## After\n")
        );
        assert_eq!(
            replace_section("# B\n", &new),
            format!("# B\n\n{BEGIN}\nnew\n{END}\n")
        );
        assert_eq!(int(1234567.4), "1,234,567");
        assert_eq!(int(999.0), "999");
    }
}
