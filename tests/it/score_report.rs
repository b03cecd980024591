//! The HTML session report: one well-formed, self-contained document with its four plots, the
//! safe-force line where the plot's scale puts it, the failing metric shown as outside, the
//! snapshot embedded byte for byte, every input string escaped, and notes instead of plots (no
//! panic) for empty, single-record and non-finite logs.

use haptwin::bus::{tick_flags, TickRecord};
use haptwin::score::card::{Better, Landmark, MetricBound, MetricValue, ReplayCheck, ScoreCard};
use haptwin::score::report::{build_report, ReportSnapshot};
use haptwin::session::log::{Damage, LogEnd};
use haptwin::session::{LogHeader, SessionLog};

const DT: f64 = 1e-3;
const SAFE_N: f64 = 3.0;

fn header(scenario: &str) -> LogHeader {
    // Through serde, so fields added later with defaults do not break the test.
    serde_json::from_value(serde_json::json!({
        "software_version": "0.9.0-test",
        "scenario": scenario,
        "case_id": "case-7f3a",
        "device": "virtual",
        "dt_s": DT,
        "tissue": {"particles": 10},
        "tool_radius_m": 0.002,
        "coupling": {},
        "seed": 0,
        "started_unix_s": 1_700_000_000u64,
    }))
    .unwrap()
}

fn min_jerk(tau: f64) -> f64 {
    let t = tau.clamp(0.0, 1.0);
    10.0 * t.powi(3) - 15.0 * t.powi(4) + 6.0 * t.powi(5)
}

/// A 2 s, 8 cm reach with a grasp and a release, then a press to 4.5 N with a puncture, a cut,
/// a mark and a brush against a vessel; 3 s at 1 kHz.
fn records() -> Vec<TickRecord> {
    (0..3000u64)
        .map(|i| {
            let t = i as f64 * DT;
            let force = if t > 2.0 {
                4.5 * ((t - 2.0) / 0.5).min(1.0)
            } else {
                0.0
            };
            let mut flags = 0;
            if i == 500 {
                flags |= tick_flags::GRASP;
            }
            if i == 1000 {
                flags |= tick_flags::RELEASE;
            }
            if i == 2100 {
                flags |= tick_flags::PUNCTURE;
            }
            if (2200..2400).contains(&i) {
                flags |= tick_flags::CUT | tick_flags::INSTRUMENT_ACTIVE;
            }
            if i == 2500 {
                flags |= tick_flags::MARK;
            }
            if (2600..2700).contains(&i) {
                flags |= tick_flags::NO_GO_CONTACT;
            }
            if t > 2.0 {
                flags |= tick_flags::CONTACT;
            }
            TickRecord {
                tick: i,
                tool_pos_in_world_m: [0.08 * min_jerk(t / 2.0), 0.01, 0.005 * min_jerk(t / 2.0)],
                device_pos_in_world_m: [0.08 * min_jerk(t / 2.0), 0.01, 0.0],
                force_out_in_world_n: [0.0, force, 0.0],
                contact_force_in_world_n: [0.0, force, 0.0],
                flags,
                ..TickRecord::default()
            }
        })
        .collect()
}

fn log_of(scenario: &str, records: Vec<TickRecord>) -> SessionLog {
    let n = records.len() as u64;
    SessionLog {
        header: header(scenario),
        records,
        end: Some(LogEnd {
            records: n,
            dropped: 0,
            stop_reason: "stop".into(),
        }),
        damage: None,
        clock: None,
        chunks: 2,
        file_len: 0,
    }
}

fn metric(
    key: &str,
    label: &str,
    unit: &str,
    value: f64,
    better: Better,
    bound: Option<(f64, f64, f64)>,
) -> MetricValue {
    let benchmark = bound.map(|(limit, expert_mean, expert_sd)| MetricBound {
        limit,
        expert_mean,
        expert_sd,
        experts: 5,
    });
    let within = benchmark.as_ref().map(|b| b.admits(value, better));
    MetricValue {
        key: key.into(),
        label: label.into(),
        unit: unit.into(),
        value,
        better,
        benchmark,
        within,
    }
}

fn card(scenario: &str) -> ScoreCard {
    let metrics = vec![
        metric(
            "path_length_m",
            "Tool-tip path length",
            "m",
            0.0802,
            Better::Lower,
            Some((0.1, 0.085, 0.01)),
        ),
        metric(
            "peak_force_n",
            "Peak force",
            "N",
            4.5,
            Better::Lower,
            Some((3.5, 2.0, 0.5)),
        ),
        metric("ldlj", "Smoothness (LDLJ)", "", -6.5, Better::Higher, None),
    ];
    let failed_metrics = metrics
        .iter()
        .filter(|m| m.within == Some(false))
        .map(|m| m.key.clone())
        .collect();
    ScoreCard {
        scenario: scenario.into(),
        case_id: "case-7f3a".into(),
        software_version: "0.9.0-test".into(),
        started_unix_s: 1_700_000_000,
        duration_s: 3.0,
        safe_force_n: SAFE_N,
        metrics,
        landmarks: vec![Landmark {
            what: "tumour centre".into(),
            pos_in_world_m: [0.06, 0.0, 0.004],
        }],
        benchmark: Some("palpation experts (n = 5)".into()),
        passed: Some(false),
        failed_metrics,
        log_complete: true,
        replay: Some(ReplayCheck {
            ticks: 3000,
            compared: 3000,
            mismatches: 0,
            first_mismatch_tick: None,
        }),
    }
}

/// A 2x2 RGBA PNG.
fn tiny_png() -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, 2, 2);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[
            255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 128,
        ])
        .unwrap();
        w.finish().unwrap();
    }
    bytes
}

fn snapshot() -> ReportSnapshot {
    ReportSnapshot {
        caption: "Press on the tumour".into(),
        tick: 2300,
        png: tiny_png(),
    }
}

fn report() -> String {
    build_report(
        &log_of("palpation", records()),
        &card("palpation"),
        &[snapshot()],
    )
}

/// The root `<svg …data-plot="name"…>…</svg>` element.
fn plot<'a>(html: &'a str, name: &str) -> &'a str {
    let key = format!("data-plot=\"{name}\"");
    let at = html.find(&key).unwrap_or_else(|| panic!("no {name} plot"));
    let start = html[..at].rfind("<svg").unwrap();
    let end = at + html[at..].find("</svg>").unwrap() + "</svg>".len();
    &html[start..end]
}

/// The value of attribute `name` in the tag starting at the beginning of `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let tag = &tag[..tag.find('>')?];
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    Some(tag[at..at + tag[at..].find('"')?].to_string())
}

/// Every start tag `<name …>` in `html`, from its `<`.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    html.match_indices(&open)
        .map(|(i, _)| &html[i..])
        .filter(|rest| matches!(rest.as_bytes().get(open.len()), Some(b' ' | b'>' | b'/')))
        .collect()
}

fn data_plots(html: &str) -> Vec<String> {
    tags(html, "svg")
        .iter()
        .filter_map(|t| attr(t, "data-plot"))
        .collect()
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = A.iter().position(|&a| a == c).expect("base64 alphabet") as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn the_report_is_one_well_formed_html_document_with_four_plots() {
    let html = report();
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40]);
    assert!(html.trim_end().ends_with("</html>"));
    for el in [
        "html", "head", "body", "section", "svg", "figure", "table", "tr", "g", "text",
    ] {
        assert_eq!(
            tags(&html, el).len(),
            html.matches(&format!("</{el}>")).count(),
            "<{el}> opened and closed as often"
        );
    }
    assert_eq!(data_plots(&html), ["force", "path", "speed", "benchmarks"]);
    for name in ["force", "path", "speed", "benchmarks"] {
        let svg = plot(&html, name);
        assert!(attr(svg, "viewBox").is_some(), "{name} has a viewBox");
        assert!(svg.contains("<title"), "{name} has a title");
        assert!(
            svg.contains("class=\"tx\"") || name == "benchmarks",
            "{name} axes"
        );
    }
    // The same inputs give the same bytes.
    assert_eq!(html, report());
    // Facts in the header.
    assert!(html.contains("2023-11-14 22:13:20 UTC"));
    assert!(html.contains("case-7f3a"));
    assert!(html.contains("0.9.0-test"));
    assert!(html.contains("3000 ticks re-simulated, 3000 forces compared, 0 mismatches"));
    assert!(html.contains("badge fail"));
    assert!(!html.contains("NaN"));
}

#[test]
fn the_report_is_self_contained() {
    let html = report();
    for scheme in ["http://", "https://"] {
        for (i, _) in html.match_indices(scheme) {
            assert!(
                html[i..].starts_with("http://www.w3.org/2000/svg\""),
                "external reference: {}",
                &html[i..(i + 60).min(html.len())]
            );
        }
    }
    for forbidden in ["<script", "<link", "@import", "url("] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
    for img in tags(&html, "img") {
        assert!(attr(img, "src")
            .unwrap()
            .starts_with("data:image/png;base64,"));
    }
}

/// The y pixel of `value` on the force plot's y axis, from its tick labels.
fn force_axis_y(svg: &str, value: f64) -> f64 {
    let ticks: Vec<(f64, f64)> = tags(svg, "text")
        .into_iter()
        .filter(|t| attr(t, "class").as_deref() == Some("ty"))
        .map(|t| {
            let y: f64 = attr(t, "y").unwrap().parse().unwrap();
            let label = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
            (label.parse::<f64>().unwrap(), y)
        })
        .collect();
    assert!(ticks.len() >= 2, "{ticks:?}");
    let ((v0, y0), (v1, y1)) = (ticks[0], ticks[ticks.len() - 1]);
    assert!(y1 < y0, "force grows upwards");
    y0 + (value - v0) * (y1 - y0) / (v1 - v0)
}

#[test]
fn the_safe_force_line_sits_at_the_safe_force() {
    for safe in [SAFE_N, 2.0, 4.0] {
        let mut c = card("palpation");
        c.safe_force_n = safe;
        let html = build_report(&log_of("palpation", records()), &c, &[]);
        let svg = plot(&html, "force");
        let lines = tags(svg, "line");
        let line = lines
            .iter()
            .find(|t| attr(t, "class").as_deref() == Some("safe"))
            .expect("a safe-force line");
        let y: f64 = attr(line, "y1").unwrap().parse().unwrap();
        assert_eq!(attr(line, "y2").unwrap().parse::<f64>().unwrap(), y);
        assert!(attr(line, "stroke-dasharray").is_some(), "dashed");
        let want = force_axis_y(svg, safe);
        assert!(
            (y - want).abs() < 0.15,
            "safe {safe} N: line at {y}, scale says {want}"
        );
        assert!(svg.contains("safe force"));
    }
}

#[test]
fn the_failing_metric_is_shown_outside() {
    let html = report();
    let row = |key: &str| {
        let at = html
            .find(&format!("data-key=\"{key}\""))
            .unwrap_or_else(|| panic!("no row {key}"));
        let start = html[..at].rfind("<tr").unwrap();
        &html[start..start + html[start..].find("</tr>").unwrap()]
    };
    let peak = row("peak_force_n");
    assert_eq!(attr(peak, "class").as_deref(), Some("outside"));
    assert!(peak.contains('✗') && !peak.contains('✓'), "{peak}");
    assert!(
        peak.contains("4.50 N") && peak.contains("≤ 3.50 N"),
        "{peak}"
    );
    let path = row("path_length_m");
    assert_eq!(attr(path, "class").as_deref(), Some("within"));
    assert!(path.contains('✓'), "{path}");
    assert!(
        path.contains("80.20 mm"),
        "metres shown as millimetres: {path}"
    );
    let ldlj = row("ldlj");
    assert!(ldlj.contains("no bound"), "{ldlj}");
    // The bullet chart agrees.
    let chart = plot(&html, "benchmarks");
    let bullet = |key: &str| {
        tags(chart, "g")
            .into_iter()
            .find(|t| attr(t, "data-key").as_deref() == Some(key))
            .and_then(|t| attr(t, "class"))
    };
    assert_eq!(bullet("peak_force_n").as_deref(), Some("bullet outside"));
    assert_eq!(bullet("path_length_m").as_deref(), Some("bullet within"));
    assert_eq!(bullet("ldlj").as_deref(), Some("bullet unbounded"));
    assert!(chart.contains("no benchmark bound"));
    // And the summary names it.
    assert!(html.contains("outside: Peak force"));
}

#[test]
fn the_snapshot_is_embedded_byte_for_byte() {
    let html = report();
    let key = "data:image/png;base64,";
    let at = html.find(key).unwrap() + key.len();
    let b64 = &html[at..at + html[at..].find('"').unwrap()];
    let bytes = base64_decode(b64);
    assert_eq!(bytes, tiny_png());
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (2, 2));
    assert!(html.contains("Press on the tumour — tick 2300 (t = 2.30 s)"));
    // Without snapshots: a note.
    let html = build_report(&log_of("palpation", records()), &card("palpation"), &[]);
    assert!(!html.contains("<img"));
    assert!(html
        .to_lowercase()
        .contains("no snapshots: rendering unavailable"));
}

#[test]
fn text_from_the_inputs_is_escaped() {
    let evil = "<script>alert('x')</script>";
    let mut c = card(evil);
    c.case_id = "a&b\"c".into();
    c.landmarks[0].what = "<b>vessel</b>".into();
    c.metrics[0].label = "<i>path</i>".into();
    let snap = ReportSnapshot {
        caption: "<img src=x onerror=alert(1)>".into(),
        ..snapshot()
    };
    let html = build_report(&log_of(evil, records()), &c, &[snap]);
    assert!(!html.contains("<script"), "raw script tag");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(html.contains("a&amp;b&quot;c"));
    assert!(!html.contains("<b>vessel"));
    assert!(html.contains("&lt;b&gt;vessel&lt;/b&gt;"));
    assert!(!html.contains("<i>path"));
    assert!(!html.contains("<img src=x"));
    assert_eq!(tags(&html, "img").len(), 1);
}

#[test]
fn the_plots_show_events_landmarks_and_both_panels() {
    let html = report();
    let force = plot(&html, "force");
    for (event, count) in [
        ("cut", 1),
        ("grasp", 1),
        ("release", 1),
        ("puncture", 1),
        ("mark", 1),
        ("no-go contact", 1),
    ] {
        assert!(
            force.contains(&format!("data-event=\"{event}\"")),
            "{event} marker"
        );
        assert!(
            force.contains(&format!("{event} ({count})")),
            "{event} legend"
        );
    }
    let path = plot(&html, "path");
    assert_eq!(
        path.matches("tumour centre").count(),
        2,
        "top and front views"
    );
    assert_eq!(path.matches("class=\"start\"").count(), 2);
    assert_eq!(path.matches("class=\"end\"").count(), 2);
    assert!(path.contains("x (mm)") && path.contains("z (mm)") && path.contains("y (mm)"));
    let speed = plot(&html, "speed");
    assert!(speed.contains("speed (mm/s)") && speed.contains("jerk (m/s³)"));
    assert_eq!(speed.matches("<polyline").count(), 2);
    // Decimated: no series longer than the cap.
    for svg in [force, path, speed] {
        for p in tags(svg, "polyline") {
            let n = attr(p, "points").unwrap().split(' ').count();
            assert!(n <= haptwin::score::report::MAX_PLOT_POINTS + 1, "{n}");
        }
    }
    // The peak force survives decimation: some point sits at the top of the press.
    let top = force_axis_y(force, 4.5);
    let pts = tags(force, "polyline")[0];
    let peak_y = attr(pts, "points")
        .unwrap()
        .split(' ')
        .map(|p| p.split(',').nth(1).unwrap().parse::<f64>().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!((peak_y - top).abs() < 0.15, "{peak_y} vs {top}");
}

#[test]
fn an_incomplete_log_is_flagged() {
    let mut log = log_of("palpation", records());
    log.end = None;
    log.damage = Some(Damage {
        offset: 123_456,
        reason: "chunk CRC mismatch".into(),
        truncated: false,
    });
    let mut c = card("palpation");
    c.log_complete = false;
    let html = build_report(&log, &c, &[]);
    assert!(html.contains("id=\"incomplete\""));
    assert!(html.contains("scored on what was recovered"));
    assert!(html.contains("chunk CRC mismatch"));
    assert!(!report().contains("id=\"incomplete\""));
}

#[test]
fn empty_single_and_non_finite_logs_give_notes_not_panics() {
    let c = card("palpation");
    // No records at all.
    let html = build_report(&log_of("palpation", Vec::new()), &c, &[]);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(data_plots(&html), ["benchmarks"]);
    assert_eq!(html.matches("No tick records: nothing to plot.").count(), 3);
    // One record.
    let one = records()[2500..2501].to_vec();
    let html = build_report(&log_of("palpation", one), &c, &[]);
    assert_eq!(data_plots(&html), ["force", "path", "benchmarks"]);
    assert!(html.contains("Too few tick records for a speed"));
    assert!(!html.contains("NaN") && !html.contains("inf"));
    // Non-finite positions and forces are skipped.
    let mut recs = records();
    for r in recs.iter_mut().skip(100).step_by(37) {
        r.tool_pos_in_world_m[0] = f64::NAN;
        r.force_out_in_world_n[1] = f64::INFINITY;
    }
    let mut c2 = c.clone();
    c2.metrics[0].value = f64::NAN;
    let html = build_report(&log_of("palpation", recs), &c2, &[]);
    assert_eq!(data_plots(&html), ["force", "path", "speed", "benchmarks"]);
    assert!(!html.contains("NaN") && !html.contains("inf"));
    // No benchmark and no metrics at all.
    let mut bare = c.clone();
    bare.metrics.clear();
    bare.benchmark = None;
    bare.passed = None;
    bare.landmarks.clear();
    let mut log = log_of("palpation", records());
    log.header.dt_s = 0.0;
    let html = build_report(&log, &bare, &[]);
    assert!(html.contains("badge none"));
    assert!(html.contains("The score card has no metrics."));
    assert!(html.contains("tick period is not valid"));
}

#[test]
fn snapshot_of_the_report_structure() {
    let html = report();
    let mut outline = Vec::new();
    let mut rest = html.as_str();
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        if rest.starts_with("<section") {
            outline.push(format!("section#{}", attr(rest, "id").unwrap()));
        } else if let Some(level) = ["<h1>", "<h2>"].iter().find(|h| rest.starts_with(**h)) {
            let end = rest.find("</h").unwrap();
            outline.push(format!("{}:{}", &level[1..3], &rest[4..end]));
        } else if rest.starts_with("<svg") {
            outline.push(format!("svg:{}", attr(rest, "data-plot").unwrap()));
        } else if rest.starts_with("<table") {
            outline.push("table".to_string());
        } else if rest.starts_with("<img") {
            outline.push("img".to_string());
        }
        rest = &rest[1..];
    }
    let expected = [
        "section#summary",
        "h1:Session report: palpation",
        "section#metrics",
        "h2:Metrics",
        "table",
        "section#force",
        "h2:Force on the hand",
        "svg:force",
        "section#path",
        "h2:Tool path",
        "svg:path",
        "section#speed",
        "h2:Tool-tip speed and jerk",
        "svg:speed",
        "section#benchmarks",
        "h2:Against the benchmark",
        "svg:benchmarks",
        "section#snapshots",
        "h2:Snapshots",
        "img",
    ];
    assert_eq!(outline, expected);
}

/// The report opened in a real browser (headless Chromium, installed by
/// `scripts/install-deps.sh`): Chromium parses it into a DOM with the four plots and the
/// snapshot, and its screenshot is a drawn page (many colours), not a blank one.
#[test]
fn the_report_renders_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, report()).unwrap();
    let url = format!("file://{}", page.display());
    let chromium = |extra: &[&str]| {
        let out = std::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--window-size=1200,2400",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium runs (scripts/install-deps.sh installs it)");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let dom = String::from_utf8(chromium(&["--dump-dom"]).stdout).unwrap();
    let plots = data_plots(&dom);
    assert_eq!(plots, ["force", "path", "speed", "benchmarks"], "{plots:?}");
    assert_eq!(tags(&dom, "img").len(), 1);

    let shot = dir.path().join("shot.png");
    chromium(&[&format!("--screenshot={}", shot.display())]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let mut colours = std::collections::BTreeSet::new();
    let mut ink = 0usize;
    for p in buf[..info.buffer_size()].chunks_exact(px) {
        colours.insert((p[0] >> 3, p[1] >> 3, p[2] >> 3));
        if p[0] < 200 || p[1] < 200 || p[2] < 200 {
            ink += 1;
        }
    }
    let total = (info.width * info.height) as usize;
    assert!(
        colours.len() > 50,
        "{} colours: a blank page?",
        colours.len()
    );
    assert!(ink * 100 > total, "only {ink} of {total} pixels drawn");
}
