//! Line charts of a job's kept metrics reports (`metric_samples`, read
//! through [`crate::autotune::TunerStore::samples`]): per task, records read
//! per second, busy ratio and consumer lag, as inline SVG. The figures are
//! pure functions of the reports; counters are cumulative per deployment, so
//! rates come from consecutive reports of the same generation.

use std::collections::BTreeMap;

use maud::{html, Markup};

use crate::domain::autotune::Sample;

/// One task's series: `(seconds since the first report, value)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// A chart: its title, what its values are, and a line per task.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    /// A fixed top of the scale (busy ratio: 1), else the largest value.
    pub max: Option<f64>,
    pub lines: Vec<Line>,
}

type TaskId = (u32, u32);

fn task_label((stage, task): TaskId) -> String {
    if stage == 0 {
        format!("task {task}")
    } else {
        format!("stage {stage} task {task}")
    }
}

/// Throughput, busy ratio and lag of each task over `samples` (oldest first).
pub fn task_charts(samples: &[Sample]) -> [Chart; 3] {
    let mut rate: BTreeMap<TaskId, Vec<(f64, f64)>> = BTreeMap::new();
    let mut busy: BTreeMap<TaskId, Vec<(f64, f64)>> = BTreeMap::new();
    let mut lag: BTreeMap<TaskId, Vec<(f64, f64)>> = BTreeMap::new();
    let start = samples.first().map(|s| s.at);
    let secs = |s: &Sample| {
        start
            .map(|t0| (s.at - t0).num_milliseconds() as f64 / 1000.0)
            .unwrap_or(0.0)
    };
    for s in samples {
        for t in &s.tasks {
            lag.entry((t.stage, t.task))
                .or_default()
                .push((secs(s), t.lag.values().map(|v| (*v).max(0) as f64).sum()));
        }
    }
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let dt = (b.at - a.at).num_milliseconds() as f64 / 1000.0;
        if a.generation != b.generation || dt <= 0.0 {
            continue;
        }
        for t in &b.tasks {
            let Some(p) = a
                .tasks
                .iter()
                .find(|p| p.stage == t.stage && p.task == t.task)
            else {
                continue;
            };
            let id = (t.stage, t.task);
            if let Some(read) = t.records_in.checked_sub(p.records_in) {
                rate.entry(id)
                    .or_default()
                    .push((secs(b), read as f64 / dt));
            }
            let worked = t.busy_ms.checked_sub(p.busy_ms);
            let waited = t.idle_ms.checked_sub(p.idle_ms);
            if let (Some(w), Some(i)) = (worked, waited) {
                if w + i > 0 {
                    busy.entry(id)
                        .or_default()
                        .push((secs(b), w as f64 / (w + i) as f64));
                }
            }
        }
    }
    let lines = |m: BTreeMap<TaskId, Vec<(f64, f64)>>| {
        m.into_iter()
            .map(|(id, points)| Line {
                label: task_label(id),
                points,
            })
            .collect()
    };
    [
        Chart {
            id: "throughput",
            title: "Throughput",
            unit: "records read / s",
            max: None,
            lines: lines(rate),
        },
        Chart {
            id: "busy",
            title: "Busy ratio",
            unit: "time on batches / time",
            max: Some(1.0),
            lines: lines(busy),
        },
        Chart {
            id: "lag",
            title: "Consumer lag",
            unit: "records behind",
            max: None,
            lines: lines(lag),
        },
    ]
}

const WIDTH: f64 = 440.0;
const HEIGHT: f64 = 190.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;
const COLOURS: [&str; 8] = [
    "#2f6fd6", "#d6642f", "#2f9d5a", "#9b3fc4", "#c43f6e", "#3fa6c4", "#8a7a1f", "#555555",
];

/// `1234567` as `1.2M`, `0.25` as `0.25`.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The chart as an SVG figure; each line is a `polyline` whose
/// `data-points` says how many reports it was drawn from.
pub fn render(chart: &Chart) -> Markup {
    let span = chart
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let top = chart
        .max
        .unwrap_or_else(|| {
            chart
                .lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .fold(0.0_f64, f64::max)
        })
        .max(1e-9);
    let top = if chart.max.is_none() && top < 1.0 {
        1.0
    } else {
        top
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |t: f64| LEFT + t / span * plot_w;
    let y = |v: f64| TOP + plot_h - (v / top).clamp(0.0, 1.0) * plot_h;
    let points: usize = chart.lines.iter().map(|l| l.points.len()).sum();
    html! {
        figure.chart id=(chart.id) data-points=(points) {
            figcaption { (chart.title) " " span.note { "(" (chart.unit) ")" } }
            svg xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(HEIGHT)
                viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(chart.title) {
                rect x=(LEFT) y=(TOP) width=(plot_w) height=(plot_h) fill="#fbfcfe" stroke="#d9dde5" {}
                @for frac in [0.0, 0.5, 1.0] {
                    line x1=(LEFT) x2=(LEFT + plot_w) y1=(y(top * frac)) y2=(y(top * frac))
                        stroke="#e6e9ef" {}
                    text x=(LEFT - 4.0) y=(y(top * frac) + 4.0) text-anchor="end" font-size="11"
                        fill="#6a7385" { (compact(top * frac)) }
                }
                text x=(LEFT) y=(HEIGHT - 6.0) font-size="11" fill="#6a7385" { "0 s" }
                text x=(LEFT + plot_w) y=(HEIGHT - 6.0) font-size="11" fill="#6a7385"
                    text-anchor="end" { (format!("{span:.0} s")) }
                @if points == 0 {
                    text x=(LEFT + plot_w / 2.0) y=(TOP + plot_h / 2.0) text-anchor="middle"
                        font-size="13" fill="#6a7385" { "no metrics reports yet" }
                }
                @for (i, line) in chart.lines.iter().enumerate() {
                    polyline.series data-task=(line.label) data-points=(line.points.len())
                        fill="none" stroke=(COLOURS[i % COLOURS.len()]) stroke-width="1.6"
                        points=(line.points.iter()
                            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                            .collect::<Vec<_>>().join(" ")) {}
                    @if line.points.len() == 1 {
                        @for (t, v) in &line.points {
                            circle cx=(x(*t)) cy=(y(*v)) r="2.5" fill=(COLOURS[i % COLOURS.len()]) {}
                        }
                    }
                }
            }
            div.legend {
                @for (i, line) in chart.lines.iter().enumerate() {
                    svg width="10" height="10" { rect width="10" height="10" fill=(COLOURS[i % COLOURS.len()]) {} }
                    " " (line.label) " "
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report as the runtime publishes it (docs/metrics.md), read as the
    /// tuner reads it.
    fn sample(secs: i64, generation: u64, read: u64, busy: u64, lag: i64) -> Sample {
        let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs);
        serde_json::from_value(serde_json::json!({
            "tenant": "acme", "job": "orders", "version": 1, "generation": generation,
            "parallelism": 1, "at": at,
            "tasks": [{
                "task": 0, "records_in": read, "records_out": read, "bytes_in": 0,
                "bytes_out": 0, "dead_lettered": 0, "errors": 0, "busy_ms": busy,
                "idle_ms": secs as u64 * 1000 - busy, "operator_ns_per_record": 0.0,
                "restarts": 0, "lag": {"in/0": lag, "in/1": 1}
            }]
        }))
        .unwrap()
    }

    #[test]
    fn rates_come_from_consecutive_reports_of_one_generation() {
        let samples = [
            sample(2, 1, 100, 1000, 10),
            sample(4, 1, 500, 2500, 20),
            // A new deployment: counters start again; no rate across it.
            sample(6, 2, 50, 1000, 5),
            sample(8, 2, 250, 1500, 0),
        ];
        let [rate, busy, lag] = task_charts(&samples);
        assert_eq!(rate.lines[0].points, [(2.0, 200.0), (6.0, 100.0)]);
        assert_eq!(busy.lines[0].points, [(2.0, 0.75), (6.0, 0.25)]);
        assert_eq!(
            lag.lines[0].points,
            [(0.0, 11.0), (2.0, 21.0), (4.0, 6.0), (6.0, 1.0)]
        );
        let svg = render(&rate).into_string();
        assert!(svg.contains(r#"data-points="2""#), "{svg}");
        assert!(svg.contains("<polyline"), "{svg}");
    }

    #[test]
    fn no_reports_draw_an_empty_chart_that_says_so() {
        let [rate, ..] = task_charts(&[]);
        let svg = render(&rate).into_string();
        assert!(svg.contains("no metrics reports yet"), "{svg}");
        assert!(svg.contains(r#"data-points="0""#));
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(1500.0), "1.5k");
        assert_eq!(compact(2_500_000.0), "2.5M");
    }
}
