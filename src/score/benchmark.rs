//! Proficiency benchmarks, the pass and proficiency rules, and readiness.
//!
//! A benchmark is built from expert sessions of one scenario
//! (`haptwin benchmark build SCENARIO LOGS...`): per metric, the experts' mean and standard
//! deviation, and a limit at the mean plus [`SD_ALLOWANCE`] standard deviations toward the
//! worse side (a common curriculum rule, `../shared/reference/scoring.md`), but at least
//! [`MIN_ALLOWANCE_FRACTION`] of the mean away from it. The shipped ones
//! are in `assets/benchmarks/`.
//!
//! - Pass: every metric within its bound; no trading one metric against another.
//! - Proficient: [`CONSECUTIVE_PASSES`] passes in a row.
//! - Readiness (warm-up): today's session against the surgeon's own history: every metric no
//!   worse than their own mean plus two of their standard deviations.
//!
//! Contract: pure and deterministic; the JSON of a benchmark is stable (fields only grow).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::card::{Better, MetricBound, ScoreCard};

/// Standard deviations toward the worse side the limit allows.
pub const SD_ALLOWANCE: f64 = 2.0;
/// Least allowance, as a fraction of the experts' mean: experts who all score nearly the same
/// (a scripted expert's tissue damage) would otherwise set a limit no one can hold to.
pub const MIN_ALLOWANCE_FRACTION: f64 = 0.1;
/// Passes in a row that make a trainee proficient.
pub const CONSECUTIVE_PASSES: usize = 2;
/// Fewest expert sessions a benchmark is built from.
pub const MIN_EXPERTS: usize = 3;

/// A benchmark: bounds per metric for one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Benchmark {
    /// Scenario it judges.
    pub scenario: String,
    /// Expert sessions behind it.
    pub experts: u32,
    /// How the limits were set, in words.
    pub rule: String,
    /// haptwin version that built it.
    pub software_version: String,
    /// Bounds by metric key.
    pub metrics: BTreeMap<String, MetricBound>,
}

/// Errors building, reading or writing a benchmark.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchmarkError {
    /// Too few expert sessions.
    #[error("a benchmark needs at least {MIN_EXPERTS} expert sessions; got {0}")]
    TooFew(usize),
    /// A session is of another scenario.
    #[error("session {index} is of scenario {found:?}, not {want:?}")]
    WrongScenario {
        /// Its place among the sessions given.
        index: usize,
        /// Its scenario.
        found: String,
        /// The benchmark's.
        want: String,
    },
    /// The file could not be read or written.
    #[error("benchmark file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a benchmark.
    #[error("benchmark file {path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// The mean and sample standard deviation of `v`.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// The bound of a metric improving towards `better` from samples `v`.
fn bound(v: &[f64], better: Better) -> MetricBound {
    let (mean, sd) = mean_sd(v);
    let allowance = (SD_ALLOWANCE * sd).max(MIN_ALLOWANCE_FRACTION * mean.abs());
    MetricBound {
        limit: match better {
            Better::Lower => mean + allowance,
            Better::Higher => mean - allowance,
        },
        expert_mean: mean,
        expert_sd: sd,
        experts: v.len() as u32,
    }
}

impl Benchmark {
    /// Builds a benchmark for `scenario` from expert score cards (of that scenario). A metric
    /// enters the benchmark when every expert session has it.
    pub fn build(scenario: &str, experts: &[ScoreCard]) -> Result<Self, BenchmarkError> {
        if experts.len() < MIN_EXPERTS {
            return Err(BenchmarkError::TooFew(experts.len()));
        }
        for (index, c) in experts.iter().enumerate() {
            if c.scenario != scenario {
                return Err(BenchmarkError::WrongScenario {
                    index,
                    found: c.scenario.clone(),
                    want: scenario.into(),
                });
            }
        }
        let mut metrics = BTreeMap::new();
        for m in &experts[0].metrics {
            let values: Vec<f64> = experts
                .iter()
                .filter_map(|c| c.metric(&m.key).map(|x| x.value))
                .filter(|v| v.is_finite())
                .collect();
            if values.len() == experts.len() {
                metrics.insert(m.key.clone(), bound(&values, m.better));
            }
        }
        Ok(Self {
            scenario: scenario.into(),
            experts: experts.len() as u32,
            rule: format!(
                "expert mean + max({SD_ALLOWANCE} SD, {MIN_ALLOWANCE_FRACTION} x |mean|) toward the worse side; pass = every metric within its limit"
            ),
            software_version: env!("CARGO_PKG_VERSION").into(),
            metrics,
        })
    }

    /// Reads a benchmark file.
    pub fn load(path: &Path) -> Result<Self, BenchmarkError> {
        let text = std::fs::read_to_string(path).map_err(|source| BenchmarkError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| BenchmarkError::Invalid {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })
    }

    /// The shipped benchmark of a scenario (`assets/benchmarks/<name>.json`, built in).
    pub fn shipped(name: &str) -> Option<Self> {
        let text = match name {
            "palpation" => include_str!("../../assets/benchmarks/palpation.json"),
            "resection" => include_str!("../../assets/benchmarks/resection.json"),
            "biopsy" => include_str!("../../assets/benchmarks/biopsy.json"),
            "warmup" => include_str!("../../assets/benchmarks/warmup.json"),
            _ => return None,
        };
        serde_json::from_str(text).ok()
    }

    /// Writes the benchmark as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), BenchmarkError> {
        let text = serde_json::to_string_pretty(self).expect("a benchmark serialises");
        std::fs::write(path, text + "\n").map_err(|source| BenchmarkError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Judges `card` against this benchmark: sets every covered metric's bound and whether it
    /// is within it, `passed` (every covered metric within) and the failed metrics' keys.
    pub fn apply(&self, card: &mut ScoreCard) {
        card.failed_metrics.clear();
        for m in &mut card.metrics {
            match self.metrics.get(&m.key) {
                Some(b) => {
                    let ok = b.admits(m.value, m.better);
                    m.benchmark = Some(b.clone());
                    m.within = Some(ok);
                    if !ok {
                        card.failed_metrics.push(m.key.clone());
                    }
                }
                None => {
                    m.benchmark = None;
                    m.within = None;
                }
            }
        }
        card.benchmark = Some(format!(
            "{} ({} expert sessions)",
            self.scenario, self.experts
        ));
        card.passed = Some(card.failed_metrics.is_empty());
    }
}

/// Where a trainee stands after a run of tries, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proficiency {
    /// Tries judged.
    pub tries: usize,
    /// Tries passed.
    pub passes: usize,
    /// Passes in a row at the end.
    pub consecutive_passes: usize,
    /// Whether [`CONSECUTIVE_PASSES`] passes in a row happened at any point.
    pub proficient: bool,
    /// The try (1-based) on which proficiency was reached.
    pub proficient_at_try: Option<usize>,
}

/// Applies the proficiency rule to `passed` (one entry per try, oldest first).
pub fn proficiency(passed: &[bool]) -> Proficiency {
    let mut run = 0;
    let mut at = None;
    for (i, &p) in passed.iter().enumerate() {
        run = if p { run + 1 } else { 0 };
        if run >= CONSECUTIVE_PASSES && at.is_none() {
            at = Some(i + 1);
        }
    }
    Proficiency {
        tries: passed.len(),
        passes: passed.iter().filter(|&&p| p).count(),
        consecutive_passes: run,
        proficient: at.is_some(),
        proficient_at_try: at,
    }
}

/// Today's warm-up against one's own history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    /// Earlier sessions compared with.
    pub history: usize,
    /// Every metric no worse than one's own mean + 2 SD (`None`: fewer than
    /// [`MIN_EXPERTS`] earlier sessions).
    pub ready: Option<bool>,
    /// Per metric: key, today's value, own mean, own SD, and how many own SDs worse than the
    /// mean today is (negative: better than usual).
    pub metrics: Vec<ReadinessMetric>,
    /// In words.
    pub summary: String,
}

/// One metric of a readiness read-out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadinessMetric {
    /// Metric key.
    pub key: String,
    /// Today's value.
    pub today: f64,
    /// One's own mean.
    pub own_mean: f64,
    /// One's own standard deviation.
    pub own_sd: f64,
    /// Standard deviations worse than one's mean (negative: better).
    pub sd_worse: f64,
    /// Within one's own usual range.
    pub usual: bool,
}

/// Compares `today` with the same person's earlier sessions of the same scenario.
pub fn readiness(today: &ScoreCard, history: &[ScoreCard]) -> Readiness {
    let mut metrics = Vec::new();
    for m in &today.metrics {
        let past: Vec<f64> = history
            .iter()
            .filter_map(|c| c.metric(&m.key).map(|x| x.value))
            .filter(|v| v.is_finite())
            .collect();
        if past.len() < MIN_EXPERTS {
            continue;
        }
        let b = bound(&past, m.better);
        let worse = match m.better {
            Better::Lower => m.value - b.expert_mean,
            Better::Higher => b.expert_mean - m.value,
        };
        let sd_worse = if b.expert_sd > 0.0 {
            worse / b.expert_sd
        } else if worse > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        metrics.push(ReadinessMetric {
            key: m.key.clone(),
            today: m.value,
            own_mean: b.expert_mean,
            own_sd: b.expert_sd,
            sd_worse: if sd_worse.is_finite() { sd_worse } else { 99.0 },
            usual: b.admits(m.value, m.better),
        });
    }
    let enough = history.len() >= MIN_EXPERTS && !metrics.is_empty();
    let off: Vec<&str> = metrics
        .iter()
        .filter(|m| !m.usual)
        .map(|m| m.key.as_str())
        .collect();
    let ready = enough.then_some(off.is_empty());
    let summary = match ready {
        None => format!(
            "not enough history: {} earlier warm-ups, {MIN_EXPERTS} needed",
            history.len()
        ),
        Some(true) => format!(
            "ready: every metric within your usual range ({} earlier warm-ups)",
            history.len()
        ),
        Some(false) => format!("below your usual on: {}", off.join(", ")),
    };
    Readiness {
        history: history.len(),
        ready,
        metrics,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_consecutive_passes_make_proficient() {
        assert!(!proficiency(&[true, false, true]).proficient);
        let p = proficiency(&[false, true, true, false]);
        assert!(p.proficient);
        assert_eq!(p.proficient_at_try, Some(3));
        assert_eq!(p.consecutive_passes, 0);
        assert_eq!(p.passes, 2);
    }

    #[test]
    fn limits_lie_toward_the_worse_side() {
        let b = bound(&[1.0, 2.0, 3.0], Better::Lower);
        assert_eq!(b.expert_mean, 2.0);
        assert_eq!(b.expert_sd, 1.0);
        assert_eq!(b.limit, 4.0);
        assert!(b.admits(4.0, Better::Lower) && !b.admits(4.01, Better::Lower));
        let b = bound(&[1.0, 2.0, 3.0], Better::Higher);
        assert_eq!(b.limit, 0.0);
        assert!(b.admits(0.0, Better::Higher) && !b.admits(-0.1, Better::Higher));
        // Nearly equal experts: the limit keeps a tenth of the mean.
        let b = bound(&[10.0, 10.0, 10.0], Better::Lower);
        assert_eq!(b.limit, 11.0);
        let b = bound(&[-10.0, -10.0, -10.0], Better::Higher);
        assert_eq!(b.limit, -11.0);
    }
}
