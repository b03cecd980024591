//! The score card of one session: every metric with its unit, which way is better, and, when
//! the session was scored against a benchmark, the benchmark's bound and whether the metric is
//! within it. `haptwin score` prints it; the report, the exports and the dashboard read it.
//!
//! Contract: plain data, serialisable (the JSON is a stable interface: field names only grow);
//! built by [`crate::score::score_log`].

use serde::{Deserialize, Serialize};

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Smaller values are better (time, path, force, errors).
    Lower,
    /// Larger values are better (smoothness, tumour removed).
    Higher,
}

/// A benchmark's bound on one metric, from expert sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricBound {
    /// The value a trainee must not be worse than.
    pub limit: f64,
    /// Mean of the experts.
    pub expert_mean: f64,
    /// Standard deviation of the experts (sample, n - 1).
    pub expert_sd: f64,
    /// Expert sessions behind it.
    pub experts: u32,
}

impl MetricBound {
    /// Whether `value` is within the bound for a metric improving towards `better`.
    pub fn admits(&self, value: f64, better: Better) -> bool {
        match better {
            Better::Lower => value <= self.limit,
            Better::Higher => value >= self.limit,
        }
    }
}

/// One metric of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    /// Stable key, unit in the name (`path_length_m`).
    pub key: String,
    /// Words for people (`Tool-tip path length`).
    pub label: String,
    /// Unit as printed (`m`, `N`, `s`, `%`, or empty for counts and ratios).
    pub unit: String,
    /// The session's value (NaN when it could not be measured; JSON `null`).
    #[serde(deserialize_with = "f64_or_nan")]
    pub value: f64,
    /// Which way is better.
    pub better: Better,
    /// The benchmark's bound, when scored against one that covers this metric.
    pub benchmark: Option<MetricBound>,
    /// Whether the value is within the bound (`None`: no bound).
    pub within: Option<bool>,
}

/// A tool-tip mark, a target or a tumour centre: a point the scenario cares about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Landmark {
    /// What it is (`tumour centre`, `mark 1`, `target 2`).
    pub what: String,
    /// World frame, metres.
    pub pos_in_world_m: [f64; 3],
}

/// The score of one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreCard {
    /// Scenario name (`palpation`, `resection`, `biopsy`, `warmup`).
    pub scenario: String,
    /// Pseudonymous case id.
    pub case_id: String,
    /// haptwin version that recorded the session.
    pub software_version: String,
    /// When the session started, seconds since the Unix epoch.
    pub started_unix_s: u64,
    /// Simulated seconds scored.
    pub duration_s: f64,
    /// The tissue-safe force the force metrics used, newtons.
    pub safe_force_n: f64,
    /// Every metric, motion and force first, then the scenario's outcome.
    pub metrics: Vec<MetricValue>,
    /// Points of interest (tumour centre, marks, targets), for the report's path plots.
    pub landmarks: Vec<Landmark>,
    /// The benchmark scored against (its scenario and expert count), if any.
    pub benchmark: Option<String>,
    /// Pass: every metric within its benchmark (`None`: no benchmark).
    pub passed: Option<bool>,
    /// Keys of the metrics outside their bound.
    pub failed_metrics: Vec<String>,
    /// Whether the log closed cleanly (`false`: crashed or truncated; the card covers what was
    /// recovered).
    pub log_complete: bool,
    /// The replay check behind the outcome metrics: ticks re-simulated and forces that
    /// differed from the recording in any bit.
    pub replay: Option<ReplayCheck>,
}

/// How the re-simulation behind a score agreed with the recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayCheck {
    /// Ticks re-simulated.
    pub ticks: u64,
    /// Forces compared with the recording.
    pub compared: u64,
    /// Forces that differed in any bit.
    pub mismatches: u64,
    /// The first tick that differed.
    pub first_mismatch_tick: Option<u64>,
}

impl ScoreCard {
    /// The metric with `key`.
    pub fn metric(&self, key: &str) -> Option<&MetricValue> {
        self.metrics.iter().find(|m| m.key == key)
    }
}

/// Reads a number, or `null` (what JSON makes of a NaN or an infinity) as NaN.
fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_that_could_not_be_measured_reads_back_as_nan() {
        let m = MetricValue {
            key: "ldlj".into(),
            label: "Smoothness".into(),
            unit: String::new(),
            value: f64::NAN,
            better: Better::Higher,
            benchmark: None,
            within: None,
        };
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"value\":null"), "{json}");
        let back: MetricValue = serde_json::from_str(&json).unwrap();
        assert!(back.value.is_nan());
        let finite: MetricValue =
            serde_json::from_str(&json.replace("\"value\":null", "\"value\":-12.5")).unwrap();
        assert_eq!(finite.value, -12.5);
    }
}
