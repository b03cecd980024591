//! The session report: one self-contained HTML5 file an instructor or a resident opens in any
//! browser, built from a session log, its score card and optional rendered snapshots.
//!
//! Sections, in order (each a `<section id=…>`): `summary` (scenario, case pseudonym, version,
//! date, duration, pass/fail badge, incomplete-log warning, replay check), `metrics` (the score
//! card as a table), `force` (force on the hand over time with the safe force and instrument
//! events), `path` (tool path, top and front views, with landmarks), `speed` (tool-tip speed
//! and jerk from the 100 Hz resampled tip), `benchmarks` (a bullet chart of every metric
//! against its bound) and `snapshots` (embedded PNG images).
//!
//! Contract: [`build_report`] is pure and deterministic (the same inputs give the same bytes;
//! nothing depends on the current time or locale) and never panics on odd data: empty or single
//! records, non-finite values (skipped) and a bad tick period give notes instead of plots.
//! The output references nothing outside itself: inline CSS, inline SVG plots (each root
//! `<svg>` carries `data-plot="force" | "path" | "speed" | "benchmarks"`), images as
//! `data:image/png;base64,…` URLs. All text from the inputs is HTML-escaped. Lengths in metres
//! are shown in millimetres throughout; other units as the card gives them.

use std::fmt::Write as _;

use crate::bus::{tick_flags, TickRecord};
use crate::score::card::{Better, MetricValue, ScoreCard};
use crate::score::metrics::{resample_block, resampled_tip};
use crate::session::log::SessionLog;

/// A rendered view of the session, embedded in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSnapshot {
    /// What it shows.
    pub caption: String,
    /// The tick it was rendered at.
    pub tick: u64,
    /// The image, PNG-encoded.
    pub png: Vec<u8>,
}

/// Most points a plotted series keeps (min/max per bucket, so peaks survive).
pub const MAX_PLOT_POINTS: usize = 2000;

/// Appends formatted text to a `String` (writing to a `String` cannot fail).
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// The instrument events marked on the force plot: flag, legend name, colour.
const EVENTS: [(u32, &str, &str); 6] = [
    (tick_flags::CUT, "cut", "#d62728"),
    (tick_flags::GRASP, "grasp", "#1f77b4"),
    (tick_flags::RELEASE, "release", "#17becf"),
    (tick_flags::PUNCTURE, "puncture", "#9467bd"),
    (tick_flags::MARK, "mark", "#2ca02c"),
    (tick_flags::NO_GO_CONTACT, "no-go contact", "#ff7f0e"),
];

const CSS: &str = "\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;max-width:980px;\
margin:0 auto;padding:1.5em}\
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;border-bottom:1px solid #ccc;\
padding-bottom:.2em;margin-top:1.6em}\
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:.6em 0}\
dl.facts dt{color:#555}dl.facts dd{margin:0}\
.badge{display:inline-block;padding:.15em .7em;border-radius:.8em;font-weight:700;color:#fff}\
.badge.pass{background:#2e7d32}.badge.fail{background:#c62828}.badge.none{background:#757575}\
.warning{background:#fff3cd;border:1px solid #e0b000;padding:.5em .8em;border-radius:.3em}\
.note{color:#666;font-style:italic}\
table{border-collapse:collapse;width:100%}th,td{padding:.3em .5em;border-bottom:1px solid #e3e3e3;\
text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}\
tr.outside td{background:#fdecea}td.mark{text-align:center;font-weight:700}\
tr.within td.mark{color:#2e7d32}tr.outside td.mark{color:#c62828}\
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}\
svg{width:100%;height:auto;background:#fff}\
svg text{font:12px system-ui,sans-serif;fill:#333}\
svg .frame{fill:none;stroke:#888}svg .grid{stroke:#e6e6e6}\
svg .title{font-size:13px;fill:#111}\
img{max-width:100%;border:1px solid #ccc}\
footer{margin-top:2em;color:#777;font-size:.85em}";

/// The report of `log`, scored as `card`, with `snapshots` (may be empty): one HTML5 document.
pub fn build_report(log: &SessionLog, card: &ScoreCard, snapshots: &[ReportSnapshot]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!(
        "haptwin session report: {} / {}",
        card.scenario, card.case_id
    );
    w!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    summary_section(&mut out, log, card);
    metrics_section(&mut out, card);
    let dt_ok = log.header.dt_s.is_finite() && log.header.dt_s > 0.0;
    section_open(&mut out, "force", "Force on the hand");
    if log.records.is_empty() {
        note(&mut out, "No tick records: nothing to plot.");
    } else if !dt_ok {
        note(
            &mut out,
            "The log's tick period is not valid: no time axis.",
        );
    } else {
        force_plot(&mut out, &log.records, log.header.dt_s, card.safe_force_n);
    }
    out.push_str("</section>\n");
    section_open(&mut out, "path", "Tool path");
    if log.records.is_empty() {
        note(&mut out, "No tick records: nothing to plot.");
    } else {
        path_plot(&mut out, &log.records, log.header.dt_s, card);
    }
    out.push_str("</section>\n");
    section_open(&mut out, "speed", "Tool-tip speed and jerk");
    if log.records.is_empty() {
        note(&mut out, "No tick records: nothing to plot.");
    } else if !dt_ok {
        note(
            &mut out,
            "The log's tick period is not valid: no time axis.",
        );
    } else {
        speed_plot(&mut out, &log.records, log.header.dt_s);
    }
    out.push_str("</section>\n");
    benchmark_section(&mut out, card);
    snapshot_section(&mut out, snapshots, log.header.dt_s);
    w!(
        out,
        "<footer>Generated by haptwin from the session log and its score card; self-contained, \
         no network access needed.</footer>\n</body>\n</html>\n"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Sections

fn section_open(out: &mut String, id: &str, heading: &str) {
    w!(
        out,
        "<section id=\"{}\">\n<h2>{}</h2>\n",
        esc(id),
        esc(heading)
    );
}

fn note(out: &mut String, text: &str) {
    w!(out, "<p class=\"note\">{}</p>\n", esc(text));
}

fn summary_section(out: &mut String, log: &SessionLog, card: &ScoreCard) {
    w!(
        out,
        "<section id=\"summary\">\n<h1>Session report: {}</h1>\n",
        esc(&card.scenario)
    );
    let badge = match card.passed {
        Some(true) => "<span class=\"badge pass\">PASS</span>".to_string(),
        Some(false) => "<span class=\"badge fail\">FAIL</span>".to_string(),
        None => "<span class=\"badge none\">no benchmark</span>".to_string(),
    };
    w!(out, "<p class=\"result\">{badge}");
    if let Some(b) = &card.benchmark {
        w!(out, " against benchmark <strong>{}</strong>", esc(b));
    }
    if card.passed == Some(false) && !card.failed_metrics.is_empty() {
        let names: Vec<String> = card
            .failed_metrics
            .iter()
            .map(|k| {
                card.metric(k)
                    .map_or_else(|| k.clone(), |m| m.label.clone())
            })
            .collect();
        w!(out, "; outside: {}", esc(&names.join(", ")));
    }
    out.push_str("</p>\n");
    if !card.log_complete {
        w!(
            out,
            "<p class=\"warning\" id=\"incomplete\">⚠ The session log is incomplete (the session \
             crashed or the file was truncated): scored on what was recovered ({} tick records",
            log.records.len()
        );
        if let Some(d) = &log.damage {
            w!(
                out,
                "; reading stopped at byte {}: {}",
                d.offset,
                esc(&d.reason)
            );
        }
        out.push_str(").</p>\n");
    }
    out.push_str("<dl class=\"facts\">\n");
    let mut fact = |k: &str, v: &str| {
        w!(out, "<dt>{}</dt><dd>{}</dd>\n", esc(k), esc(v));
    };
    fact("Scenario", &card.scenario);
    fact("Case (pseudonym)", &card.case_id);
    fact("Software version", &card.software_version);
    fact("Date", &utc_date_time(card.started_unix_s));
    fact("Duration", &fmt_duration(card.duration_s));
    fact("Device", &log.header.device);
    let rate = if log.header.dt_s > 0.0 && log.header.dt_s.is_finite() {
        format!("{} Hz", fmt_num(1.0 / log.header.dt_s))
    } else {
        "unknown".to_string()
    };
    fact("Haptic rate", &rate);
    fact("Tick records", &log.records.len().to_string());
    match &log.end {
        Some(end) => fact(
            "Session end",
            &format!("{} ({} records dropped)", end.stop_reason, end.dropped),
        ),
        None => fact("Session end", "not recorded"),
    }
    fact("Safe force", &format!("{} N", fmt_num(card.safe_force_n)));
    if let Some(r) = &card.replay {
        let mut s = format!(
            "{} ticks re-simulated, {} forces compared, {} mismatches",
            r.ticks, r.compared, r.mismatches
        );
        if let Some(t) = r.first_mismatch_tick {
            w!(s, " (first at tick {t})");
        }
        fact("Replay check", &s);
    }
    out.push_str("</dl>\n</section>\n");
}

/// A value and its unit as shown: metres as millimetres, everything else as given.
fn shown(value: f64, unit: &str) -> (f64, String) {
    match unit {
        "m" => (value * 1000.0, "mm".to_string()),
        "m/s" => (value * 1000.0, "mm/s".to_string()),
        _ => (value, unit.to_string()),
    }
}

fn with_unit(value: f64, unit: &str) -> String {
    let (v, u) = shown(value, unit);
    if u.is_empty() {
        fmt_num(v)
    } else {
        format!("{} {}", fmt_num(v), u)
    }
}

fn metrics_section(out: &mut String, card: &ScoreCard) {
    section_open(out, "metrics", "Metrics");
    if card.metrics.is_empty() {
        note(out, "The score card has no metrics.");
        out.push_str("</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th>Metric</th><th>Value</th><th>Benchmark limit</th>\
         <th>Expert mean ± SD</th><th>Better</th><th>Within</th></tr></thead>\n<tbody>\n",
    );
    for m in &card.metrics {
        let class = match m.within {
            Some(true) => "within",
            Some(false) => "outside",
            None => "unbounded",
        };
        let mark = match m.within {
            Some(true) => "✓",
            Some(false) => "✗",
            None => "—",
        };
        let (limit, expert) = match &m.benchmark {
            Some(b) => {
                let cmp = match m.better {
                    Better::Lower => "≤ ",
                    Better::Higher => "≥ ",
                };
                let (sd, _) = shown(b.expert_sd, &m.unit);
                let (_, u) = shown(b.expert_mean, &m.unit);
                let unit = if u.is_empty() {
                    String::new()
                } else {
                    format!(" {u}")
                };
                (
                    format!("{cmp}{}", with_unit(b.limit, &m.unit)),
                    format!(
                        "{} ± {}{unit} (n = {})",
                        fmt_num(shown(b.expert_mean, &m.unit).0),
                        fmt_num(sd),
                        b.experts
                    ),
                )
            }
            None => ("no bound".to_string(), "—".to_string()),
        };
        let better = match m.better {
            Better::Lower => "lower",
            Better::Higher => "higher",
        };
        w!(
            out,
            "<tr class=\"{class}\" data-key=\"{}\"><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{better}</td>\
             <td class=\"mark\">{mark}</td></tr>\n",
            esc(&m.key),
            esc(&m.label),
            esc(&with_unit(m.value, &m.unit)),
            esc(&limit),
            esc(&expert),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn snapshot_section(out: &mut String, snapshots: &[ReportSnapshot], dt_s: f64) {
    section_open(out, "snapshots", "Snapshots");
    if snapshots.is_empty() {
        note(out, "No snapshots: rendering unavailable.");
    }
    for s in snapshots {
        let time = if dt_s.is_finite() && dt_s > 0.0 {
            format!(" (t = {} s)", fmt_num(s.tick as f64 * dt_s))
        } else {
            String::new()
        };
        out.push_str("<figure class=\"snapshot\">\n");
        if s.png.starts_with(PNG_SIGNATURE) {
            w!(
                out,
                "<img src=\"data:image/png;base64,{}\" alt=\"{}\">\n",
                base64_encode(&s.png),
                esc(&s.caption)
            );
        } else {
            note(out, "This snapshot is not a PNG image and was left out.");
        }
        w!(
            out,
            "<figcaption>{} — tick {}{}</figcaption>\n</figure>\n",
            esc(&s.caption),
            s.tick,
            esc(&time)
        );
    }
    out.push_str("</section>\n");
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

// ---------------------------------------------------------------------------------------------
// Plots

/// A plot area in SVG user units.
#[derive(Debug, Clone, Copy)]
struct Area {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Area {
    fn right(&self) -> f64 {
        self.left + self.width
    }
    fn bottom(&self) -> f64 {
        self.top + self.height
    }
}

/// A linear map from data `[d0, d1]` to pixels `[p0, p1]`.
#[derive(Debug, Clone, Copy)]
struct Scale {
    d0: f64,
    d1: f64,
    p0: f64,
    p1: f64,
}

impl Scale {
    fn at(&self, v: f64) -> f64 {
        if self.d1 == self.d0 {
            return self.p0;
        }
        self.p0 + (v - self.d0) / (self.d1 - self.d0) * (self.p1 - self.p0)
    }
}

/// A 1-2-5 step giving about `target` intervals over `span`.
fn nice_step(span: f64, target: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / target.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let k = if n < 1.5 {
        1.0
    } else if n < 3.0 {
        2.0
    } else if n < 7.0 {
        5.0
    } else {
        10.0
    };
    k * mag
}

/// Widens a degenerate or non-finite range so it can be drawn.
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let tiny = 1e-12 * lo.abs().max(hi.abs()).max(1e-300);
    if hi - lo <= tiny {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    } else {
        (lo, hi)
    }
}

/// `[lo, hi]` widened out to whole steps of a nice step; the step.
fn nice_extent(lo: f64, hi: f64, target: f64) -> (f64, f64, f64) {
    let (lo, hi) = widen(lo, hi);
    let step = nice_step(hi - lo, target);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

/// Multiples of `step` within `[lo, hi]` (at most 60).
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    if !(step > 0.0 && lo.is_finite() && hi.is_finite()) {
        return Vec::new();
    }
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last.min(first.saturating_add(60)))
        .map(|k| k as f64 * step)
        .collect()
}

/// A tick label with as many decimals as the step needs.
fn fmt_tick(v: f64, step: f64) -> String {
    let decimals = (-(step.log10() + 1e-9).floor()).clamp(0.0, 12.0) as usize;
    format!("{:.*}", decimals, v + 0.0)
}

/// Frame, grid, tick labels (`class="tx"` / `class="ty"`, placed at the tick's exact pixel) and
/// axis titles.
#[allow(clippy::too_many_arguments)]
fn axes(
    out: &mut String,
    a: Area,
    xs: Scale,
    ys: Scale,
    (xt, xstep): (&[f64], f64),
    (yt, ystep): (&[f64], f64),
    xtitle: Option<&str>,
    ytitle: &str,
) {
    for &v in yt {
        let y = ys.at(v);
        w!(
            out,
            "<line class=\"grid\" stroke=\"#e6e6e6\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"ty\" x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"end\" \
             dominant-baseline=\"middle\">{}</text>\n",
            a.left,
            a.right(),
            a.left - 6.0,
            fmt_tick(v, ystep)
        );
    }
    for &v in xt {
        let x = xs.at(v);
        w!(
            out,
            "<line class=\"grid\" stroke=\"#e6e6e6\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text class=\"tx\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            a.top,
            a.bottom(),
            a.bottom() + 16.0,
            fmt_tick(v, xstep)
        );
    }
    w!(
        out,
        "<rect class=\"frame\" fill=\"none\" stroke=\"#888\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>\n",
        a.left,
        a.top,
        a.width,
        a.height
    );
    if let Some(t) = xtitle {
        w!(
            out,
            "<text class=\"title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            a.left + a.width / 2.0,
            a.bottom() + 34.0,
            esc(t)
        );
    }
    let (tx, ty) = (a.left - 52.0, a.top + a.height / 2.0);
    w!(
        out,
        "<text class=\"title\" x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" \
         transform=\"rotate(-90 {tx:.1} {ty:.1})\">{}</text>\n",
        esc(ytitle)
    );
}

fn svg_open(out: &mut String, plot: &str, width: f64, height: f64, title: &str) {
    w!(
        out,
        "<figure>\n<svg xmlns=\"http://www.w3.org/2000/svg\" data-plot=\"{plot}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-labelledby=\"{plot}-title\">\n\
         <title id=\"{plot}-title\">{}</title>\n",
        esc(title)
    );
}

fn svg_close(out: &mut String, caption: &str) {
    w!(
        out,
        "</svg>\n<figcaption>{}</figcaption>\n</figure>\n",
        esc(caption)
    );
}

/// A polyline of `points` (already in data units) mapped by `xs`, `ys`.
fn polyline(out: &mut String, points: &[(f64, f64)], xs: Scale, ys: Scale, style: &str) {
    if points.is_empty() {
        return;
    }
    w!(out, "<polyline fill=\"none\" {style} points=\"");
    for (i, &(x, y)) in points.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        w!(out, "{:.1},{:.1}", xs.at(x), ys.at(y));
    }
    out.push_str("\"/>\n");
}

/// At most `max_points` of `points` (in order), keeping each bucket's minimum and maximum `y`
/// so that peaks survive; points with a non-finite coordinate are dropped first.
pub(crate) fn decimate_min_max(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if finite.len() <= max_points.max(2) {
        return finite;
    }
    let buckets = (max_points / 2).max(1);
    let n = finite.len();
    let mut out = Vec::with_capacity(buckets * 2);
    for b in 0..buckets {
        let (s, e) = (b * n / buckets, (b + 1) * n / buckets);
        let chunk = &finite[s..e];
        let Some(first) = chunk.first() else { continue };
        let (mut lo, mut hi) = ((0, first.1), (0, first.1));
        for (i, &(_, y)) in chunk.iter().enumerate() {
            if y < lo.1 {
                lo = (i, y);
            }
            if y > hi.1 {
                hi = (i, y);
            }
        }
        let (a, b) = if lo.0 <= hi.0 {
            (lo.0, hi.0)
        } else {
            (hi.0, lo.0)
        };
        out.push(chunk[a]);
        if b != a {
            out.push(chunk[b]);
        }
    }
    out
}

fn norm(v: [f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

fn force_plot(out: &mut String, records: &[TickRecord], dt_s: f64, safe_force_n: f64) {
    let series: Vec<(f64, f64)> = records
        .iter()
        .map(|r| (r.tick as f64 * dt_s, norm(r.force_out_in_world_n)))
        .collect();
    let pts = decimate_min_max(&series, MAX_PLOT_POINTS);
    let t0 = records.first().map_or(0.0, |r| r.tick as f64 * dt_s);
    let t1 = records.last().map_or(1.0, |r| r.tick as f64 * dt_s);
    let (t0, t1) = widen(t0, t1);
    let peak = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let safe_ok = safe_force_n.is_finite();
    let top = if safe_ok {
        peak.max(safe_force_n * 1.15)
    } else {
        peak
    };
    let (ylo, yhi, ystep) = nice_extent(0.0, top.max(0.1), 5.0);
    let xstep = nice_step(t1 - t0, 10.0);
    let a = Area {
        left: 70.0,
        top: 40.0,
        width: 800.0,
        height: 260.0,
    };
    let xs = Scale {
        d0: t0,
        d1: t1,
        p0: a.left,
        p1: a.right(),
    };
    let ys = Scale {
        d0: ylo,
        d1: yhi,
        p0: a.bottom(),
        p1: a.top,
    };
    svg_open(
        out,
        "force",
        900.0,
        350.0,
        "Force magnitude on the hand over time",
    );
    axes(
        out,
        a,
        xs,
        ys,
        (&ticks(t0, t1, xstep), xstep),
        (&ticks(ylo, yhi, ystep), ystep),
        Some("time (s)"),
        "force (N)",
    );
    polyline(
        out,
        &pts,
        xs,
        ys,
        "stroke=\"#1565c0\" stroke-width=\"1.2\" class=\"series\"",
    );
    if safe_ok && safe_force_n >= ylo && safe_force_n <= yhi {
        let y = ys.at(safe_force_n);
        w!(
            out,
            "<line class=\"safe\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" \
             stroke=\"#c62828\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#c62828\">safe force \
             ({} N)</text>\n",
            a.left,
            a.right(),
            a.right() - 4.0,
            y - 4.0,
            fmt_num(safe_force_n)
        );
    }
    // Instrument events: the ticks a flag turns on, one marker per pixel column, in a row each
    // along the time axis.
    let mut counts = [0usize; EVENTS.len()];
    for (row, &(flag, name, colour)) in EVENTS.iter().enumerate() {
        let mut prev = false;
        let mut last_px = f64::NEG_INFINITY;
        let (y1, y2) = (
            a.bottom() - 3.0 - 8.0 * row as f64,
            a.bottom() - 9.0 - 8.0 * row as f64,
        );
        for r in records {
            let on = r.flags & flag != 0;
            if on && !prev {
                counts[row] += 1;
                let x = xs.at(r.tick as f64 * dt_s);
                if (x - last_px).abs() >= 1.0 {
                    last_px = x;
                    w!(
                        out,
                        "<line class=\"event\" data-event=\"{name}\" x1=\"{x:.1}\" \
                         y1=\"{y1:.1}\" x2=\"{x:.1}\" y2=\"{y2:.1}\" stroke=\"{colour}\" \
                         stroke-width=\"2\"/>\n"
                    );
                }
            }
            prev = on;
        }
    }
    // Legend above the plot.
    let mut x = a.left;
    w!(
        out,
        "<g class=\"legend\"><line x1=\"{x:.1}\" y1=\"20\" x2=\"{:.1}\" y2=\"20\" \
         stroke=\"#1565c0\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"24\">|force|</text>",
        x + 16.0,
        x + 20.0
    );
    x += 80.0;
    for (i, &(_, name, colour)) in EVENTS.iter().enumerate() {
        w!(
            out,
            "<line x1=\"{x:.1}\" y1=\"14\" x2=\"{x:.1}\" y2=\"26\" stroke=\"{colour}\" \
             stroke-width=\"3\"/><text x=\"{:.1}\" y=\"24\">{name} ({})</text>",
            x + 6.0,
            counts[i]
        );
        x += 20.0 + 7.0 * (name.len() as f64 + 4.0);
    }
    out.push_str("</g>\n");
    svg_close(
        out,
        "Force sent to the hand (magnitude) over session time; dashed: the tissue-safe force; \
         coloured ticks on the time axis: instrument events (counts in the legend).",
    );
}

fn path_plot(out: &mut String, records: &[TickRecord], dt_s: f64, card: &ScoreCard) {
    let (_, tip) = if dt_s.is_finite() && dt_s > 0.0 {
        resampled_tip(records, dt_s)
    } else {
        (0.0, Vec::new())
    };
    let raw: Vec<[f64; 3]> = if tip.len() >= 2 {
        tip
    } else {
        records.iter().map(|r| r.tool_pos_in_world_m).collect()
    };
    let mm: Vec<[f64; 3]> = raw
        .iter()
        .filter(|p| p.iter().all(|v| v.is_finite()))
        .map(|p| p.map(|v| v * 1000.0))
        .collect();
    let stride = mm.len().div_ceil(MAX_PLOT_POINTS).max(1);
    let mut path: Vec<[f64; 3]> = mm.iter().step_by(stride).copied().collect();
    if let (Some(&last), Some(&kept)) = (mm.last(), path.last()) {
        if last != kept {
            path.push(last);
        }
    }
    let landmarks: Vec<(&str, [f64; 3])> = card
        .landmarks
        .iter()
        .filter(|l| l.pos_in_world_m.iter().all(|v| v.is_finite()))
        .map(|l| (l.what.as_str(), l.pos_in_world_m.map(|v| v * 1000.0)))
        .collect();
    if path.is_empty() {
        note(
            out,
            "The tool position is not finite anywhere: no path to plot.",
        );
        return;
    }
    svg_open(
        out,
        "path",
        900.0,
        470.0,
        "Tool path: top view (x–z) and front view (x–y), millimetres",
    );
    let views = [
        ("top view (x–z, z down)", 2usize, "z (mm)", false, 70.0),
        ("front view (x–y)", 1usize, "y (mm)", true, 520.0),
    ];
    for (name, axis, ytitle, up, left) in views {
        let a = Area {
            left,
            top: 40.0,
            width: 360.0,
            height: 360.0,
        };
        let all = path
            .iter()
            .map(|p| (p[0], p[axis]))
            .chain(landmarks.iter().map(|l| (l.1[0], l.1[axis])));
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for (x, y) in all {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        let span = ((x1 - x0).max(y1 - y0) * 1.1).max(2.0);
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        let xs = Scale {
            d0: cx - span / 2.0,
            d1: cx + span / 2.0,
            p0: a.left,
            p1: a.right(),
        };
        let ys = Scale {
            d0: cy - span / 2.0,
            d1: cy + span / 2.0,
            p0: if up { a.bottom() } else { a.top },
            p1: if up { a.top } else { a.bottom() },
        };
        let step = nice_step(span, 6.0);
        w!(
            out,
            "<g class=\"view\" data-view=\"{}\">\n<text class=\"title\" x=\"{:.1}\" y=\"26\" \
             text-anchor=\"middle\">{}</text>\n",
            if up { "front" } else { "top" },
            a.left + a.width / 2.0,
            esc(name)
        );
        axes(
            out,
            a,
            xs,
            ys,
            (&ticks(xs.d0, xs.d1, step), step),
            (&ticks(ys.d0, ys.d1, step), step),
            Some("x (mm)"),
            ytitle,
        );
        let pts: Vec<(f64, f64)> = path.iter().map(|p| (p[0], p[axis])).collect();
        polyline(
            out,
            &pts,
            xs,
            ys,
            "stroke=\"#1565c0\" stroke-width=\"1.2\" class=\"series\"",
        );
        if let (Some(s), Some(e)) = (pts.first(), pts.last()) {
            let (sx, sy, ex, ey) = (xs.at(s.0), ys.at(s.1), xs.at(e.0), ys.at(e.1));
            w!(
                out,
                "<circle class=\"start\" cx=\"{sx:.1}\" cy=\"{sy:.1}\" r=\"5\" fill=\"#2e7d32\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#2e7d32\">start</text>\n\
                 <rect class=\"end\" x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"9\" \
                 fill=\"#c62828\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c62828\">end</text>\n",
                sx + 7.0,
                sy - 7.0,
                ex - 4.5,
                ey - 4.5,
                ex + 7.0,
                ey + 14.0
            );
        }
        for (what, p) in &landmarks {
            let (x, y) = (xs.at(p[0]), ys.at(p[axis]));
            w!(
                out,
                "<path class=\"landmark\" d=\"M{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} \
                 {:.1}Z\" fill=\"#6a1b9a\"/><text x=\"{:.1}\" y=\"{:.1}\" \
                 fill=\"#6a1b9a\">{}</text>\n",
                x - 6.0,
                y - 6.0,
                x + 6.0,
                y + 6.0,
                x + 8.0,
                y + 4.0,
                esc(what)
            );
        }
        out.push_str("</g>\n");
    }
    let caption = if landmarks.is_empty() {
        "Tool path (100 Hz resampled tip), equal aspect; green circle: start, red square: end. \
         No landmarks."
    } else {
        "Tool path (100 Hz resampled tip), equal aspect; green circle: start, red square: end, \
         purple diamonds: landmarks."
    };
    svg_close(out, caption);
}

fn speed_plot(out: &mut String, records: &[TickRecord], dt_s: f64) {
    let (h, tip) = resampled_tip(records, dt_s);
    if tip.len() < 2 {
        note(
            out,
            "Too few tick records for a speed (fewer than two 100 Hz samples).",
        );
        return;
    }
    let block = resample_block(dt_s);
    let t0 = records.first().map_or(0.0, |r| r.tick as f64 * dt_s);
    // Sample k is the mean of ticks k*block .. (k+1)*block: its time is their middle.
    let t_tip = |k: f64| t0 + (k * block as f64 + (block as f64 - 1.0) / 2.0) * dt_s;
    let velocity: Vec<[f64; 3]> = tip
        .windows(2)
        .map(|w| [0, 1, 2].map(|i| (w[1][i] - w[0][i]) / h))
        .collect();
    let speed: Vec<(f64, f64)> = velocity
        .iter()
        .enumerate()
        .map(|(k, &v)| (t_tip(k as f64 + 0.5), norm(v) * 1000.0))
        .collect();
    let jerk: Vec<(f64, f64)> = velocity
        .windows(3)
        .enumerate()
        .map(|(k, w)| {
            let j = [0, 1, 2].map(|i| (w[2][i] - 2.0 * w[1][i] + w[0][i]) / (h * h));
            (t_tip(k as f64 + 1.5), norm(j))
        })
        .collect();
    let speed = decimate_min_max(&speed, MAX_PLOT_POINTS);
    let jerk = decimate_min_max(&jerk, MAX_PLOT_POINTS);
    if speed.is_empty() {
        note(out, "The tool position is not finite: no speed to plot.");
        return;
    }
    let (ta, tb) = widen(t_tip(0.0), t_tip((tip.len() - 1) as f64));
    let xstep = nice_step(tb - ta, 10.0);
    let xt = ticks(ta, tb, xstep);
    svg_open(
        out,
        "speed",
        900.0,
        540.0,
        "Tool-tip speed and jerk magnitude over time",
    );
    let panels = [
        (&speed, "speed (mm/s)", 20.0, false, "#1565c0"),
        (&jerk, "jerk (m/s³)", 290.0, true, "#6a1b9a"),
    ];
    for (series, ytitle, top, last, colour) in panels {
        let a = Area {
            left: 70.0,
            top,
            width: 800.0,
            height: 200.0,
        };
        let xs = Scale {
            d0: ta,
            d1: tb,
            p0: a.left,
            p1: a.right(),
        };
        let peak = series.iter().map(|p| p.1).fold(0.0, f64::max);
        let (ylo, yhi, ystep) = nice_extent(0.0, peak.max(1e-6), 4.0);
        let ys = Scale {
            d0: ylo,
            d1: yhi,
            p0: a.bottom(),
            p1: a.top,
        };
        w!(out, "<g class=\"panel\" data-series=\"{}\">\n", esc(ytitle));
        axes(
            out,
            a,
            xs,
            ys,
            (&xt, xstep),
            (&ticks(ylo, yhi, ystep), ystep),
            last.then_some("time (s)"),
            ytitle,
        );
        if series.is_empty() {
            w!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">too few samples</text>\n",
                a.left + a.width / 2.0,
                a.top + a.height / 2.0
            );
        }
        polyline(
            out,
            series,
            xs,
            ys,
            &format!("stroke=\"{colour}\" stroke-width=\"1.2\" class=\"series\""),
        );
        out.push_str("</g>\n");
    }
    svg_close(
        out,
        "Tool-tip speed (top, mm/s) and jerk magnitude (bottom, m/s³) from the tip resampled \
         to 100 Hz, by finite differences.",
    );
}

/// Where a metric sits on the benchmark scale: 0 at the expert mean, ±1 at the limit, the worse
/// direction positive. `None` without a usable bound.
fn bullet_positions(m: &MetricValue) -> Option<(f64, f64)> {
    let b = m.benchmark.as_ref()?;
    if !(b.limit.is_finite() && b.expert_mean.is_finite()) {
        return None;
    }
    let worse = match m.better {
        Better::Lower => 1.0,
        Better::Higher => -1.0,
    };
    let gap = (b.limit - b.expert_mean).abs();
    let unit = if gap > 0.0 {
        gap
    } else if b.expert_sd.is_finite() && b.expert_sd > 0.0 {
        b.expert_sd
    } else if b.limit != 0.0 {
        b.limit.abs() * 0.1
    } else {
        1.0
    };
    let d = worse * unit;
    Some(((m.value - b.expert_mean) / d, (b.limit - b.expert_mean) / d))
}

fn benchmark_section(out: &mut String, card: &ScoreCard) {
    section_open(out, "benchmarks", "Against the benchmark");
    if card.metrics.is_empty() {
        note(out, "The score card has no metrics.");
        out.push_str("</section>\n");
        return;
    }
    if card.benchmark.is_none() {
        note(
            out,
            "This session was not scored against a benchmark: no metric has a bound.",
        );
    }
    const ROW: f64 = 34.0;
    const LO: f64 = -1.5;
    const HI: f64 = 3.0;
    let a = Area {
        left: 270.0,
        top: 30.0,
        width: 420.0,
        height: ROW * card.metrics.len() as f64,
    };
    let xs = Scale {
        d0: LO,
        d1: HI,
        p0: a.left,
        p1: a.right(),
    };
    svg_open(
        out,
        "benchmarks",
        900.0,
        a.bottom() + 60.0,
        "Every metric against its benchmark bound",
    );
    w!(
        out,
        "<text class=\"title\" x=\"{:.1}\" y=\"18\" text-anchor=\"middle\">0 = expert mean, \
         1 = benchmark limit, worse to the right</text>\n",
        a.left + a.width / 2.0
    );
    for (i, m) in card.metrics.iter().enumerate() {
        let top = a.top + ROW * i as f64;
        let mid = top + ROW / 2.0;
        let class = match m.within {
            Some(true) => "within",
            Some(false) => "outside",
            None => "unbounded",
        };
        w!(
            out,
            "<g class=\"bullet {class}\" data-key=\"{}\">\n<text x=\"{:.1}\" y=\"{mid:.1}\" \
             text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>\n",
            esc(&m.key),
            a.left - 10.0,
            esc(&m.label)
        );
        match (bullet_positions(m), m.value.is_finite()) {
            (Some((nv, nl)), true) => {
                let (xl, x0) = (xs.at(nl.clamp(LO, HI)), xs.at(0.0));
                w!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"20\" \
                     fill=\"#e8f5e9\"/><rect x=\"{xl:.1}\" y=\"{:.1}\" width=\"{:.1}\" \
                     height=\"20\" fill=\"#fdecea\"/>\n",
                    a.left,
                    mid - 10.0,
                    xl - a.left,
                    mid - 10.0,
                    a.right() - xl
                );
                let colour = match m.within {
                    Some(true) => "#2e7d32",
                    Some(false) => "#c62828",
                    None => "#757575",
                };
                let xv = xs.at(nv.clamp(LO, HI));
                w!(
                    out,
                    "<rect class=\"value\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" \
                     fill=\"{colour}\"/>\n<line class=\"mean\" x1=\"{x0:.1}\" y1=\"{:.1}\" \
                     x2=\"{x0:.1}\" y2=\"{:.1}\" stroke=\"#222\" stroke-width=\"2\"/>\n\
                     <line class=\"limit\" x1=\"{xl:.1}\" y1=\"{:.1}\" x2=\"{xl:.1}\" \
                     y2=\"{:.1}\" stroke=\"#b71c1c\" stroke-width=\"3\"/>\n\
                     <circle cx=\"{xv:.1}\" cy=\"{mid:.1}\" r=\"4\" fill=\"{colour}\"/>\n",
                    x0.min(xv),
                    mid - 4.0,
                    (xv - x0).abs(),
                    mid - 9.0,
                    mid + 9.0,
                    mid - 12.0,
                    mid + 12.0
                );
                if !(LO..=HI).contains(&nv) {
                    let (ax, dir) = if nv > HI {
                        (a.right(), 1.0)
                    } else {
                        (a.left, -1.0)
                    };
                    w!(
                        out,
                        "<path d=\"M{:.1} {:.1}L{:.1} {mid:.1}L{:.1} {:.1}Z\" \
                         fill=\"{colour}\"><title>off the scale</title></path>\n",
                        ax - dir * 8.0,
                        mid - 6.0,
                        ax + dir * 2.0,
                        ax - dir * 8.0,
                        mid + 6.0
                    );
                }
                let limit = m.benchmark.as_ref().map_or(f64::NAN, |b| b.limit);
                let mark = match m.within {
                    Some(true) => "✓",
                    Some(false) => "✗",
                    None => "",
                };
                w!(
                    out,
                    "<text x=\"{:.1}\" y=\"{mid:.1}\" dominant-baseline=\"middle\" \
                     fill=\"{colour}\">{mark} {} (limit {})</text>\n",
                    a.right() + 10.0,
                    esc(&with_unit(m.value, &m.unit)),
                    esc(&with_unit(limit, &m.unit))
                );
            }
            (Some(_), false) => {
                w!(
                    out,
                    "<text x=\"{:.1}\" y=\"{mid:.1}\" dominant-baseline=\"middle\" \
                     class=\"note\">no value</text>\n",
                    a.left + 6.0
                );
            }
            (None, _) => {
                let why = if m.benchmark.is_some() {
                    "bound not usable"
                } else {
                    "no benchmark bound"
                };
                w!(
                    out,
                    "<text x=\"{:.1}\" y=\"{mid:.1}\" dominant-baseline=\"middle\" \
                     fill=\"#757575\">{why}: {}</text>\n",
                    a.left + 6.0,
                    esc(&with_unit(m.value, &m.unit))
                );
            }
        }
        out.push_str("</g>\n");
    }
    for (v, label) in [
        (0.0, "expert mean"),
        (1.0, "limit"),
        (-1.0, "−1"),
        (2.0, "2"),
    ] {
        let x = xs.at(v);
        w!(
            out,
            "<line class=\"grid\" stroke=\"#e6e6e6\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text class=\"tx\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>\n",
            a.bottom(),
            a.bottom() + 5.0,
            a.bottom() + 18.0
        );
    }
    w!(
        out,
        "<line class=\"frame\" stroke=\"#888\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\n",
        a.left,
        a.bottom(),
        a.right(),
        a.bottom()
    );
    svg_close(
        out,
        "Bullet chart: each metric's value (dot and bar) against the expert mean (black) and \
         the benchmark limit (red) on a scale where the expert mean is 0 and the limit 1; green \
         band: within, red band: outside. Values off the scale are marked with an arrow.",
    );
    out.push_str("</section>\n");
}

// ---------------------------------------------------------------------------------------------
// Text

/// `s` escaped for HTML text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number with about four significant digits; integers as integers; `—` when not finite.
fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        return "—".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞" } else { "−∞" }.to_string();
    }
    let a = v.abs();
    let s = if v.fract() == 0.0 || a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    };
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

/// `1234.5 s` → `1234.5 s (20 min 34.5 s)`.
fn fmt_duration(s: f64) -> String {
    if !s.is_finite() {
        return "unknown".to_string();
    }
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        let min = (s / 60.0).floor();
        format!("{s:.1} s ({min:.0} min {:.1} s)", s - min * 60.0)
    }
}

/// `secs` since the Unix epoch as `YYYY-MM-DD hh:mm:ss UTC` (proleptic Gregorian calendar).
pub fn utc_date_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = super::export::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Standard base64 (RFC 4648 §4, with padding).
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let sextet = |i: u32| char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
        out.push(sextet(0));
        out.push(sextet(1));
        out.push(if chunk.len() > 1 { sextet(2) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(3) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded, "{plain:?}");
        }
        // Every sextet value, including the last two characters of the alphabet.
        assert_eq!(base64_encode(&[0xfb, 0xff, 0xbf]), "+/+/");
        assert_eq!(base64_encode(&[0, 0, 0]), "AAAA");
    }

    #[test]
    fn decimation_keeps_the_peak_and_the_trough() {
        let mut pts: Vec<(f64, f64)> = (0..100_000)
            .map(|i| (i as f64 * 1e-3, (i as f64 * 0.01).sin()))
            .collect();
        pts[31_337].1 = 42.0;
        pts[77_777].1 = -17.0;
        pts[500].1 = f64::NAN;
        let d = decimate_min_max(&pts, MAX_PLOT_POINTS);
        assert!(d.len() <= MAX_PLOT_POINTS, "{}", d.len());
        assert!(d.len() > MAX_PLOT_POINTS / 2);
        assert!(d.contains(&pts[31_337]), "the peak survives");
        assert!(d.contains(&pts[77_777]), "the trough survives");
        assert!(d.iter().all(|p| p.1.is_finite()), "NaN dropped");
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "still in time order");
        // Short series pass through.
        assert_eq!(
            decimate_min_max(&pts[..10], MAX_PLOT_POINTS),
            pts[..10].to_vec()
        );
        assert!(decimate_min_max(&[], MAX_PLOT_POINTS).is_empty());
    }

    #[test]
    fn dates_are_utc_gregorian() {
        assert_eq!(utc_date_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_date_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_date_time(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn escaping_and_numbers() {
        assert_eq!(
            esc("<script>a&b\"'</script>"),
            "&lt;script&gt;a&amp;b&quot;&#39;&lt;/script&gt;"
        );
        assert_eq!(fmt_num(5.0), "5");
        assert_eq!(fmt_num(0.0825), "0.083");
        assert_eq!(fmt_num(-0.0001), "-1.00e-4");
        assert_eq!(fmt_num(f64::NAN), "—");
        assert_eq!(with_unit(0.0825, "m"), "82.50 mm");
        assert_eq!(fmt_tick(0.5, 0.5), "0.5");
        assert_eq!(fmt_tick(-0.0, 1.0), "0");
        assert_eq!(ticks(0.0, 1.0, 0.25), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn bullet_scale_puts_the_limit_on_the_worse_side() {
        use crate::score::card::MetricBound;
        let mut m = MetricValue {
            key: "k".into(),
            label: "k".into(),
            unit: String::new(),
            value: 12.0,
            better: Better::Lower,
            benchmark: Some(MetricBound {
                limit: 10.0,
                expert_mean: 6.0,
                expert_sd: 2.0,
                experts: 5,
            }),
            within: Some(false),
        };
        assert_eq!(bullet_positions(&m), Some((1.5, 1.0)));
        m.better = Better::Higher;
        m.value = -8.0;
        m.benchmark = Some(MetricBound {
            limit: -7.0,
            expert_mean: -5.0,
            expert_sd: 1.0,
            experts: 5,
        });
        assert_eq!(bullet_positions(&m), Some((1.5, 1.0)));
        m.benchmark = None;
        assert_eq!(bullet_positions(&m), None);
    }
}
