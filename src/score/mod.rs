//! Scoring sessions: the metrics with evidence behind them, computed from a session's tick
//! records and the tissue it left (`../shared/reference/scoring.md`).
//!
//! - [`metrics`]: motion and force metrics of a session (time, path length, movements, idle
//!   time, log dimensionless jerk, peak/RMS/integral force, force rate, time above the
//!   tissue-safe force).
//! - [`outcome`]: each scenario's outcome metrics (localisation error, tumour and margin
//!   removed, healthy tissue removed, vessel contact, tip error, attempts, targets), tissue
//!   damage and errors.
//! - [`card`]: the score card of a session (every metric, its unit, which way is better, its
//!   benchmark bound and whether it is within it).
//! - [`export`]: research and learning-record exports (JIGSAWS-layout kinematics, xAPI
//!   statements, posting them to a Learning Record Store).
//! - [`report`]: one self-contained HTML report of a session (summary, metrics table, force,
//!   path, speed and benchmark plots as inline SVG, embedded PNG snapshots).
//! - [`benchmark`]: proficiency benchmarks from expert sessions, pass and proficiency rules,
//!   readiness against one's own history.
//! - [`performer`]: scripted expert and novice performances of each scenario.
//!
//! [`score_log`] scores a log: it re-simulates the session from the log's inputs (checking
//! every force bit for bit) to get the tissue the session left, then computes the scenario's
//! metrics. [`score_session`] does the same from a tissue in hand (the live session's).
//!
//! Contract: pure and deterministic; nothing here runs on the haptic thread. The exports'
//! writers and the LRS post are the only I/O.

pub mod benchmark;
pub mod card;
pub mod export;
pub mod metrics;
pub mod outcome;
pub mod performer;
pub mod report;

use card::{Better, MetricValue, ReplayCheck, ScoreCard};

use crate::session::replay::{replay, ReplayError, ReplayOptions, ReplayReport, ReplaySetup};
use crate::session::scenario::{CaseGeometry, Scenario};
use crate::session::SessionLog;
use crate::tissue::Tissue;

/// What a metric is: its words, unit and which way is better.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricInfo {
    /// Stable key.
    pub key: &'static str,
    /// Words for people.
    pub label: &'static str,
    /// Unit as printed.
    pub unit: &'static str,
    /// Which way is better.
    pub better: Better,
}

const fn info(
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    better: Better,
) -> MetricInfo {
    MetricInfo {
        key,
        label,
        unit,
        better,
    }
}

/// Every metric haptwin computes.
pub const METRICS: [MetricInfo; 22] = {
    use Better::{Higher, Lower};
    [
        info("duration_s", "Time", "s", Lower),
        info("path_length_m", "Tool-tip path length", "m", Lower),
        info("movements", "Movements", "", Lower),
        info("idle_s", "Idle time", "s", Lower),
        info("ldlj", "Smoothness (log dimensionless jerk)", "", Higher),
        info("peak_force_n", "Peak force", "N", Lower),
        info("rms_force_n", "RMS force", "N", Lower),
        info("force_integral_ns", "Force integral", "N s", Lower),
        info("mean_force_rate_n_per_s", "Mean force rate", "N/s", Lower),
        info("time_above_safe_s", "Time above the safe force", "s", Lower),
        info(
            "damaged_volume_cm3",
            "Tissue damaged (over-strained)",
            "cm3",
            Lower,
        ),
        info(
            "errors",
            "Errors (no-go contacts, over-force episodes)",
            "",
            Lower,
        ),
        info(
            "localisation_error_mm",
            "Tumour localisation error",
            "mm",
            Lower,
        ),
        info("marked", "Tumour marked", "", Higher),
        info("tumour_removed_pct", "Tumour removed", "%", Higher),
        info("margin_removed_pct", "Margin taken", "%", Higher),
        info(
            "healthy_removed_cm3",
            "Healthy tissue removed beyond the margin",
            "cm3",
            Lower,
        ),
        info("vessel_contact_s", "Vessel contact", "s", Lower),
        info("tip_error_mm", "Needle tip error", "mm", Lower),
        info("attempts", "Needle passes", "", Lower),
        info("targets_touched", "Targets touched", "", Higher),
        info(
            "force_on_target_error_n",
            "Force off the band on targets",
            "N",
            Lower,
        ),
    ]
};

/// What metric `key` is.
pub fn metric_info(key: &str) -> Option<&'static MetricInfo> {
    METRICS.iter().find(|m| m.key == key)
}

/// Errors scoring a log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreError {
    /// The log holds no tick records.
    #[error("the log holds no tick records: nothing to score")]
    Empty,
    /// The session cannot be re-simulated, so the outcome cannot be measured.
    #[error("cannot re-simulate the session to measure its outcome: {0}")]
    Replay(#[from] ReplayError),
}

/// The motion and force metrics of `log`'s records, by key.
fn motion_force(log: &SessionLog, safe_force_n: f64) -> Vec<(String, f64)> {
    let m = metrics::motion_force_metrics(&log.records, log.header.dt_s, safe_force_n);
    let mut v = vec![
        ("duration_s", m.duration_s),
        ("path_length_m", m.path_length_m),
        ("movements", f64::from(m.movements)),
        ("idle_s", m.idle_s),
        ("peak_force_n", m.peak_force_n),
        ("rms_force_n", m.rms_force_n),
        ("force_integral_ns", m.force_integral_ns),
        ("mean_force_rate_n_per_s", m.mean_force_rate_n_per_s),
        ("time_above_safe_s", m.time_above_safe_s),
    ];
    if let Some(l) = m.ldlj {
        v.push(("ldlj", l));
    }
    v.into_iter().map(|(k, x)| (k.to_string(), x)).collect()
}

/// Scores a session of `scenario` whose tissue started as `rest` (tets labelled
/// `tet_labels`) and ended as `after`.
pub fn score_session(
    log: &SessionLog,
    scenario: &Scenario,
    rest: &Tissue,
    tet_labels: &[u8],
    geometry: &CaseGeometry,
    after: &Tissue,
    replay: Option<ReplayCheck>,
) -> ScoreCard {
    let mut values = motion_force(log, scenario.safe_force_n);
    values.extend(outcome::outcome_metrics(
        scenario,
        geometry,
        rest,
        after,
        tet_labels,
        &log.records,
        log.header.dt_s,
    ));
    let metrics = scenario_metrics(scenario, &values);
    let mut landmarks = Vec::new();
    if let Some(c) = geometry.tumour_centre_m {
        landmarks.push(card::Landmark {
            what: "tumour centre".into(),
            pos_in_world_m: c.into(),
        });
    }
    for (i, r) in log
        .records
        .iter()
        .filter(|r| r.flags & crate::bus::tick_flags::MARK != 0)
        .enumerate()
    {
        landmarks.push(card::Landmark {
            what: format!("mark {}", i + 1),
            pos_in_world_m: r.tool_pos_in_world_m,
        });
    }
    if scenario.targets.is_some() {
        for (i, t) in geometry
            .warmup_targets(rest, scenario.targets.unwrap_or(5))
            .iter()
            .enumerate()
        {
            landmarks.push(card::Landmark {
                what: format!("target {}", i + 1),
                pos_in_world_m: (*t).into(),
            });
        }
    }
    card_of(log, scenario, metrics, landmarks, replay)
}

/// A card for `log` in `scenario` with these metrics and landmarks, not yet judged.
fn card_of(
    log: &SessionLog,
    scenario: &Scenario,
    metrics: Vec<MetricValue>,
    landmarks: Vec<card::Landmark>,
    replay: Option<ReplayCheck>,
) -> ScoreCard {
    ScoreCard {
        scenario: scenario.name.clone(),
        case_id: log.header.case_id.clone(),
        software_version: log.header.software_version.clone(),
        started_unix_s: log.header.started_unix_s,
        duration_s: log.records.len() as f64 * log.header.dt_s,
        safe_force_n: scenario.safe_force_n,
        metrics,
        landmarks,
        benchmark: None,
        passed: None,
        failed_metrics: Vec::new(),
        log_complete: log.end.is_some() && log.damage.is_none(),
        replay,
    }
}

/// The scenario's metrics, in its order, from `values` by key.
fn scenario_metrics(scenario: &Scenario, values: &[(String, f64)]) -> Vec<MetricValue> {
    scenario
        .metrics
        .iter()
        .filter_map(|key| {
            let value = values.iter().find(|(k, _)| k == key)?.1;
            let info = metric_info(key)?;
            Some(MetricValue {
                key: key.clone(),
                label: info.label.into(),
                unit: info.unit.into(),
                value,
                better: info.better,
                benchmark: None,
                within: None,
            })
        })
        .collect()
}

/// Scores `log` on motion and force alone, when its case cannot be rebuilt to measure the
/// outcome (a twin this machine does not have): the outcome metrics are left out.
pub fn score_motion_force(log: &SessionLog, scenario: &Scenario) -> ScoreCard {
    let values = motion_force(log, scenario.safe_force_n);
    card_of(
        log,
        scenario,
        scenario_metrics(scenario, &values),
        Vec::new(),
        None,
    )
}

/// The scenario a log was recorded in (its header's name), or `None` when it names none this
/// build knows.
pub fn scenario_of(log: &SessionLog) -> Option<Scenario> {
    Scenario::find(&log.header.scenario).ok()
}

/// Scores a log: re-simulates it (as fast as the CPU allows) to measure the outcome, and
/// returns the card with the replay's check and the replay's report.
pub fn score_log(
    log: &SessionLog,
    scenario: &Scenario,
) -> Result<(ScoreCard, ReplayReport), ScoreError> {
    if log.records.is_empty() {
        return Err(ScoreError::Empty);
    }
    let mut setup = ReplaySetup::from_log(log)?;
    let report = replay(&mut setup, log, &ReplayOptions::default(), |_, _| {});
    let card = score_replayed(log, scenario, &setup, &report);
    Ok((card, report))
}

/// Scores `log` after it was replayed on `setup` (the tissue as the replay left it), with the
/// replay's check.
pub fn score_replayed(
    log: &SessionLog,
    scenario: &Scenario,
    setup: &ReplaySetup,
    report: &ReplayReport,
) -> ScoreCard {
    let check = ReplayCheck {
        ticks: report.ticks,
        compared: report.compared,
        mismatches: report.mismatches,
        first_mismatch_tick: report.first_divergence.as_ref().map(|d| d.tick),
    };
    score_session(
        log,
        scenario,
        &setup.case.tissue,
        &setup.case.tet_labels,
        &setup.geometry,
        setup.core.tissue(),
        Some(check),
    )
}
