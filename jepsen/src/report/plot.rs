//! The run's plot (SVG): latency and throughput over time, with fault windows shaded.
//!
//! Drawn with `plotters`' SVG backend only: text goes out as SVG `<text>`
//! elements sized by plotters' built-in estimate, so no system fonts are
//! read and a headless machine draws the same file.

use std::path::Path;

use plotters::prelude::*;

use crate::history::{Outcome, Pair};
use crate::nemesis::FaultWindow;
use crate::Error;

/// Time buckets across the run.
const BUCKETS: usize = 120;
const FAULT_SHADE: RGBColor = RGBColor(255, 170, 170);

/// One bucket's numbers.
#[derive(Debug, Default, Clone)]
struct Bucket {
    latencies_ms: Vec<f64>,
    ok: u64,
    fail: u64,
    info: u64,
}

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Plot(e.to_string())
}

/// Draws `pairs` and `faults` into an SVG file at `path`.
pub fn plot(
    path: &Path,
    pairs: &[Pair],
    faults: &[FaultWindow],
    workload: &str,
    nemesis: &str,
) -> Result<(), Error> {
    let end_ns = pairs
        .iter()
        .map(|p| p.complete_ns.unwrap_or(p.invoke_ns))
        .chain(faults.iter().map(|f| f.end_ns))
        .max()
        .unwrap_or(0)
        .max(1);
    let width_ns = end_ns.div_ceil(BUCKETS as u64).max(1);
    let mut buckets = vec![Bucket::default(); BUCKETS];
    for p in pairs {
        let i = usize::try_from(p.invoke_ns / width_ns).unwrap_or(BUCKETS - 1);
        let Some(b) = buckets.get_mut(i.min(BUCKETS - 1)) else {
            continue;
        };
        match (p.outcome, p.complete_ns) {
            (Outcome::Ok, Some(c)) => {
                b.ok += 1;
                b.latencies_ms
                    .push(c.saturating_sub(p.invoke_ns) as f64 / 1e6);
            }
            (Outcome::Fail, _) => b.fail += 1,
            _ => b.info += 1,
        }
    }
    let secs = |ns: u64| ns as f64 / 1e9;
    let bucket_s = secs(width_ns);
    let x = |i: usize| (i as f64 + 0.5) * bucket_s;
    let x_max = secs(end_ns);
    let mut lat: [Vec<(f64, f64)>; 3] = Default::default();
    for (i, b) in buckets.iter_mut().enumerate() {
        if b.latencies_ms.is_empty() {
            continue;
        }
        b.latencies_ms.sort_by(f64::total_cmp);
        let n = b.latencies_ms.len();
        let q = |p: f64| {
            let rank = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            b.latencies_ms.get(rank).copied().unwrap_or(0.0)
        };
        for (series, value) in lat.iter_mut().zip([q(0.5), q(0.99), q(1.0)]) {
            series.push((x(i), value));
        }
    }
    let rate = |f: fn(&Bucket) -> u64| -> Vec<(f64, f64)> {
        buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (x(i), f(b) as f64 / bucket_s))
            .collect()
    };
    let throughput = [
        ("ok/s", rate(|b| b.ok), GREEN),
        ("fail/s", rate(|b| b.fail), RED),
        ("info/s", rate(|b| b.info), MAGENTA),
    ];
    let lat_max = lat.iter().flatten().map(|(_, y)| *y).fold(1.0, f64::max) * 1.1;
    let tp_max = throughput
        .iter()
        .flat_map(|(_, s, _)| s.iter().map(|(_, y)| *y))
        .fold(1.0, f64::max)
        * 1.1;

    let root = SVGBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (top, bottom) = root.split_vertically(400);
    let shade = |y_max: f64| {
        faults
            .iter()
            .map(move |f| {
                Rectangle::new(
                    [
                        (secs(f.start_ns), 0.0),
                        (secs(f.end_ns.max(f.start_ns)), y_max),
                    ],
                    FAULT_SHADE.mix(0.5).filled(),
                )
            })
            .collect::<Vec<_>>()
    };

    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("{workload} under {nemesis}: latency of ok operations (shaded: faults)"),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..lat_max)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("latency (ms)")
        .draw()
        .map_err(plot_err)?;
    chart.draw_series(shade(lat_max)).map_err(plot_err)?;
    for ((name, color), series) in [("p50", BLUE), ("p99", CYAN), ("max", BLACK)]
        .into_iter()
        .zip(lat)
    {
        chart
            .draw_series(LineSeries::new(series, color))
            .map_err(plot_err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;

    let mut chart = ChartBuilder::on(&bottom)
        .caption("throughput by outcome (shaded: faults)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..tp_max)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("operations/s")
        .draw()
        .map_err(plot_err)?;
    chart.draw_series(shade(tp_max)).map_err(plot_err)?;
    for (name, series, color) in throughput {
        chart
            .draw_series(LineSeries::new(series, color))
            .map_err(plot_err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)
}
