//! Scenarios, replay and scoring through the whole simulator: scripted expert and novice
//! sessions of the built-in scenarios on the phantom twin (haptic thread, recorder, instrument,
//! tissue), replayed bit for bit and scored.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use haptwin::bus::tick_flags;
use haptwin::demo::{run_demo, DemoOptions};
use haptwin::review::{self, ReplayCommand};
use haptwin::score::benchmark::{proficiency, readiness, Benchmark};
use haptwin::score::card::{Better, ScoreCard};
use haptwin::score::performer::Skill;
use haptwin::session::scenario::Scenario;
use haptwin::session::SessionLog;

/// Runs a scripted session and returns its log and its live score card.
fn session(
    dir: &Path,
    scenario: Scenario,
    skill: Skill,
    seed: u64,
    seconds: Option<f64>,
) -> (PathBuf, ScoreCard) {
    let report = run_demo(
        &DemoOptions {
            seconds,
            out_dir: dir.to_path_buf(),
            render: false,
            realtime: false,
            scenario,
            skill,
            seed,
            ..DemoOptions::default()
        },
        Arc::new(AtomicBool::new(false)),
    )
    .expect("the session runs");
    assert_eq!(report.telemetry_dropped, 0);
    (
        report.log_path,
        report.score.expect("the session is scored"),
    )
}

struct Sessions {
    _dir: tempfile::TempDir,
    expert: Vec<(PathBuf, ScoreCard)>,
    novice: (PathBuf, ScoreCard),
    resection: PathBuf,
    biopsy: PathBuf,
    grasp: PathBuf,
}

/// The sessions the tests share, run once, side by side.
fn sessions() -> &'static Sessions {
    static S: OnceLock<Sessions> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let palp = || Scenario::find("palpation").unwrap();
        let grasp_scenario = Scenario::parse(
            Path::new("grasp-drill.toml"),
            &haptwin::session::scenario::BUILTIN[0]
                .1
                .replace("name = \"palpation\"", "name = \"grasp-drill\"")
                .replace("instrument = \"probe\"", "instrument = \"grasper\""),
        )
        .unwrap();
        std::thread::scope(|s| {
            let e: Vec<_> = (1..=3)
                .map(|seed| {
                    let d = d.join(format!("expert{seed}"));
                    s.spawn(move || session(&d, palp(), Skill::Expert, seed, None))
                })
                .collect();
            let n = {
                let d = d.join("novice");
                s.spawn(move || session(&d, palp(), Skill::Novice, 1, None))
            };
            let r = {
                let d = d.join("resection");
                s.spawn(move || {
                    session(
                        &d,
                        Scenario::find("resection").unwrap(),
                        Skill::Expert,
                        0,
                        Some(4.0),
                    )
                    .0
                })
            };
            let b = {
                let d = d.join("biopsy");
                s.spawn(move || {
                    session(
                        &d,
                        Scenario::find("biopsy").unwrap(),
                        Skill::Novice,
                        0,
                        None,
                    )
                    .0
                })
            };
            let g = {
                let d = d.join("grasp");
                s.spawn(move || session(&d, grasp_scenario, Skill::Expert, 0, None).0)
            };
            Sessions {
                expert: e.into_iter().map(|h| h.join().unwrap()).collect(),
                novice: n.join().unwrap(),
                resection: r.join().unwrap(),
                biopsy: b.join().unwrap(),
                grasp: g.join().unwrap(),
                _dir: dir,
            }
        })
    })
}

fn flag_count(log: &Path, flag: u32) -> usize {
    SessionLog::open(log)
        .unwrap()
        .records
        .iter()
        .filter(|r| r.flags & flag != 0)
        .count()
}

fn verify(log: &Path) -> review::ReplayOutcome {
    let out = review::replay_log_file(&ReplayCommand {
        log: log.to_path_buf(),
        ..ReplayCommand::default()
    })
    .unwrap();
    assert_eq!(
        out.report.mismatches,
        0,
        "{}: first divergence {:?}",
        log.display(),
        out.report.first_divergence
    );
    assert_eq!(out.report.tool_mismatches, 0);
    assert_eq!(
        out.report.compared,
        SessionLog::open(log).unwrap().records.len() as u64
    );
    out
}

#[test]
fn replay_is_bit_exact_with_marks_cuts_punctures_and_grasps() {
    let s = sessions();
    for (log, flag, what) in [
        (&s.expert[0].0, tick_flags::MARK, "mark"),
        (&s.resection, tick_flags::CUT, "cut"),
        (&s.biopsy, tick_flags::PUNCTURE, "puncture"),
        (&s.grasp, tick_flags::GRASP, "grasp"),
        (&s.grasp, tick_flags::RELEASE, "release"),
    ] {
        assert!(
            flag_count(log, flag) > 0,
            "{what}: no such event in {}",
            log.display()
        );
        verify(log);
    }
    // The novice biopsy made more than one pass.
    assert!(flag_count(&s.biopsy, tick_flags::PUNCTURE) >= 2);
    // `haptwin log` counts the events.
    let summary = haptwin::session::log::summarize(&SessionLog::open(&s.resection).unwrap());
    assert!(summary.flag_counts["cut"].as_u64().unwrap() > 0);
    assert!(summary.flag_counts["instrument_active"].as_u64().unwrap() > 0);
    assert!(summary.flag_counts["contact"].as_u64().unwrap() > 0);
}

#[test]
fn a_changed_input_is_found_at_its_tick() {
    let s = sessions();
    let log_path = &s.expert[0].0;
    let mut log = SessionLog::open(log_path).unwrap();
    // Move the recorded device 1 mm at tick 3000 (in contact): the replay must diverge there
    // or within the few ticks the force takes to change through the coupling and smoothing.
    let at = 3000;
    log.records[at].device_pos_in_world_m[1] -= 1e-3;
    let mut setup = haptwin::session::replay::ReplaySetup::from_log(&log).unwrap();
    let r = haptwin::session::replay::replay(
        &mut setup,
        &log,
        &haptwin::session::replay::ReplayOptions::default(),
        |_, _| {},
    );
    let d = r.first_divergence.expect("the change is found");
    assert!(d.tick >= at as u64 && d.tick <= at as u64 + 2, "{d:?}");
    assert!(r.mismatches > 0);
}

#[test]
fn expert_and_novice_separate_on_every_metric() {
    let s = sessions();
    let (e, n) = (&s.expert[0].1, &s.novice.1);
    for m in &e.metrics {
        let nv = n.metric(&m.key).unwrap().value;
        let better = match m.better {
            Better::Lower => m.value < nv,
            Better::Higher => m.value > nv,
        };
        // Both marked the tumour and neither crossed... every other metric must separate.
        let tie_allowed = m.key == "marked";
        assert!(
            better || (tie_allowed && m.value == nv),
            "{}: expert {} novice {} ({:?} is better)",
            m.key,
            m.value,
            nv,
            m.better
        );
    }
    assert!(n.metric("localisation_error_mm").unwrap().value > 5.0);
    assert!(e.metric("localisation_error_mm").unwrap().value < 3.0);
}

#[test]
fn the_proficiency_rule_passes_the_expert_and_fails_the_novice() {
    let s = sessions();
    // A benchmark from three expert sessions (seeds 1-3).
    let experts: Vec<ScoreCard> = s.expert.iter().map(|e| e.1.clone()).collect();
    let b = Benchmark::build("palpation", &experts).unwrap();
    assert!(b.metrics.contains_key("localisation_error_mm"));
    let judge = |c: &ScoreCard| {
        let mut c = c.clone();
        b.apply(&mut c);
        c
    };
    let e1 = judge(&s.expert[0].1);
    let e2 = judge(&s.expert[1].1);
    let nov = judge(&s.novice.1);
    assert_eq!(e1.passed, Some(true), "{:?}", e1.failed_metrics);
    assert_eq!(e2.passed, Some(true), "{:?}", e2.failed_metrics);
    assert_eq!(nov.passed, Some(false));
    assert!(nov.failed_metrics.len() >= 5, "{:?}", nov.failed_metrics);
    let p = proficiency(&[nov.passed.unwrap(), e1.passed.unwrap(), e2.passed.unwrap()]);
    assert!(p.proficient);
    assert_eq!(p.proficient_at_try, Some(3));
    assert!(!proficiency(&[e1.passed.unwrap(), nov.passed.unwrap()]).proficient);

    // Readiness: the novice's try against the expert's own history is below usual.
    let r = readiness(&nov, &experts);
    assert_eq!(r.ready, Some(false), "{}", r.summary);
    let r = readiness(&e1, &experts);
    assert_eq!(r.ready, Some(true), "{}", r.summary);
}

#[test]
fn scoring_by_replay_matches_the_live_score() {
    let s = sessions();
    let (card, _, report) = review::score_file(&s.expert[0].0, None).unwrap();
    assert_eq!(
        card.passed,
        Some(true),
        "the shipped benchmark: {:?}",
        card.failed_metrics
    );
    assert_eq!(report.mismatches, 0);
    let live = &s.expert[0].1;
    for m in &live.metrics {
        assert_eq!(
            card.metric(&m.key).unwrap().value.to_bits(),
            m.value.to_bits(),
            "{}",
            m.key
        );
    }
    assert_eq!(card.replay.as_ref().unwrap().mismatches, 0);
}

/// Snapshot of the score card's JSON shape: the top-level fields, a metric's fields and the
/// palpation scenario's metric keys, in order.
#[test]
fn score_json_snapshot() {
    let s = sessions();
    let v = serde_json::to_value(&s.expert[0].1).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    let mut want = vec![
        "benchmark",
        "case_id",
        "duration_s",
        "failed_metrics",
        "landmarks",
        "log_complete",
        "metrics",
        "passed",
        "replay",
        "safe_force_n",
        "scenario",
        "software_version",
        "started_unix_s",
    ];
    want.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, want);
    let metric_keys: Vec<&str> = v["metrics"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut mk = metric_keys.clone();
    mk.sort_unstable();
    assert_eq!(
        mk,
        [
            "benchmark",
            "better",
            "key",
            "label",
            "unit",
            "value",
            "within"
        ]
    );
    let order: Vec<&str> = v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "duration_s",
            "path_length_m",
            "movements",
            "idle_s",
            "ldlj",
            "peak_force_n",
            "rms_force_n",
            "force_integral_ns",
            "mean_force_rate_n_per_s",
            "time_above_safe_s",
            "damaged_volume_cm3",
            "errors",
            "localisation_error_mm",
            "marked",
        ]
    );
    assert_eq!(v["scenario"], "palpation");
    assert_eq!(v["landmarks"][0]["what"], "tumour centre");
}

#[test]
fn shipped_benchmarks_cover_their_scenarios() {
    for s in Scenario::builtin() {
        let b = Benchmark::shipped(&s.benchmark)
            .unwrap_or_else(|| panic!("no shipped benchmark for {}", s.name));
        assert_eq!(b.scenario, s.name);
        assert!(b.experts >= 3);
        for key in &s.metrics {
            assert!(
                b.metrics.contains_key(key),
                "{}: {key} has no bound",
                s.name
            );
        }
    }
}

/// Runs the haptwin binary with `args`.
fn haptwin(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_haptwin"))
        .env("XDG_DATA_HOME", crate::test_data_home())
        .env_remove("HAPTWIN_DB")
        .args(args)
        .output()
        .unwrap()
}

/// Runs the haptwin binary with `args` and requires success.
fn haptwin_ok(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let out = haptwin(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn cli_replay_score_and_benchmark() {
    use std::ffi::OsStr;
    let s = sessions();
    let log = s.expert[0].0.as_os_str();
    let o = |s: &'static str| OsStr::new(s);
    let out = haptwin_ok(&[o("replay"), o("--verify"), o("--json"), log]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mismatches"], 0);
    assert!(v["speed_x"].as_f64().unwrap() > 0.0);

    let out = haptwin_ok(&[o("score"), o("--json"), log]);
    let card: ScoreCard = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(card.scenario, "palpation");
    assert!(
        card.passed.is_some(),
        "judged against the shipped benchmark"
    );

    // The report and the exports of the same log.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    haptwin_ok(&[
        o("report"),
        o("--no-snapshots"),
        o("--json"),
        o("-o"),
        report.as_os_str(),
        log,
    ]);
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("data-plot=").count(), 4);
    assert!(html.contains("palpation"));
    let (k, x) = (dir.path().join("k.txt"), dir.path().join("x.json"));
    haptwin_ok(&[
        o("export"),
        o("--no-post"),
        o("--actor-name"),
        o("Resident A"),
        o("--jigsaws"),
        k.as_os_str(),
        o("--xapi"),
        x.as_os_str(),
        log,
    ]);
    let rows = std::fs::read_to_string(&k).unwrap();
    let n = SessionLog::open(&s.expert[0].0).unwrap().records.len();
    assert_eq!(rows.lines().count(), n * 30 / 1000);
    assert!(rows.lines().all(|l| l.split_whitespace().count() == 76));
    let statements: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&x).unwrap()).unwrap();
    assert!(statements.as_array().unwrap().len() >= 2);
    assert_eq!(statements[0]["actor"]["name"], "Resident A");

    // Too few experts: a clear error.
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b.json");
    let out = haptwin(&[
        o("benchmark"),
        o("build"),
        o("palpation"),
        log,
        o("-o"),
        b.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 3"));
}
