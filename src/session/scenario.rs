//! Scenarios: what a rehearsal asks of the trainee, as data files (`assets/scenarios/*.toml`,
//! built into the binary; any other file can be given by path).
//!
//! A scenario names its goals, the instrument it hands you (and its tip), the case it runs on by
//! default, its time limit, the tissue-safe force, the metrics it is scored on (keys of
//! [`crate::score`]'s metrics) and the benchmark it is judged against
//! (`assets/benchmarks/<benchmark>.json`). [`CaseGeometry`] finds what a scenario aims at in a
//! case's tissue: the tumour (its tets, centre and radius), the vessel's particles (no-go) and
//! warm-up targets on the top surface.
//!
//! Contract: loading is strict (unknown keys, unknown instruments or metrics are errors naming
//! the file); geometry is deterministic (same tissue and labels, same points).

use std::path::{Path, PathBuf};

use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

use crate::haptics::instrument::{InstrumentConfig, InstrumentKind};
use crate::tissue::Tissue;
use crate::twin::labels::Label;

/// The scenarios built into haptwin, by name, with their files' text.
pub const BUILTIN: [(&str, &str); 4] = [
    (
        "palpation",
        include_str!("../../assets/scenarios/palpation.toml"),
    ),
    (
        "resection",
        include_str!("../../assets/scenarios/resection.toml"),
    ),
    ("biopsy", include_str!("../../assets/scenarios/biopsy.toml")),
    ("warmup", include_str!("../../assets/scenarios/warmup.toml")),
];

/// The scenario `haptwin demo` runs.
pub const DEFAULT_SCENARIO: &str = "palpation";

/// A scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name (`palpation`).
    pub name: String,
    /// Title for people.
    pub title: String,
    /// Text for the in-world board (upper case: the built-in font).
    pub instructions: String,
    /// The goals, in words.
    pub goals: Vec<String>,
    /// The instrument handed to the trainee.
    pub instrument: InstrumentKind,
    /// Its tip radius, metres.
    pub tip_radius_m: f64,
    /// Direction of a shaft (scalpel, needle) from hub to tip, world frame.
    #[serde(default = "down")]
    pub direction_in_world: [f64; 3],
    /// Default case (`phantom`, `block` or a `.twin` file).
    pub case: String,
    /// Longest the session may run, seconds.
    pub time_limit_s: f64,
    /// Tissue-safe force, newtons.
    pub safe_force_n: f64,
    /// Margin of healthy tissue to take around the tumour, metres (resection).
    #[serde(default)]
    pub margin_m: Option<f64>,
    /// Number of targets on the top surface (warm-up).
    #[serde(default)]
    pub targets: Option<usize>,
    /// Force to hold on a target, newtons (warm-up).
    #[serde(default)]
    pub force_band_n: Option<[f64; 2]>,
    /// Benchmark name (`assets/benchmarks/<name>.json`).
    pub benchmark: String,
    /// Metric keys scored, in order.
    pub metrics: Vec<String>,
}

fn down() -> [f64; 3] {
    [0.0, -1.0, 0.0]
}

/// Errors loading a scenario.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// No built-in scenario has this name and no such file exists.
    #[error("no scenario {name:?}: the built-in ones are palpation, resection, biopsy and warmup, or give a .toml file")]
    Unknown {
        /// What was asked for.
        name: String,
    },
    /// The file could not be read.
    #[error("scenario file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("scenario {path}: {problem}")]
    Invalid {
        /// The file (or the built-in name).
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl Scenario {
    /// A built-in scenario by name, or a scenario file by path.
    pub fn find(name_or_path: &str) -> Result<Self, ScenarioError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::parse(Path::new(&format!("<built-in {name}>")), text);
        }
        let path = Path::new(name_or_path);
        if path.extension().is_some_and(|e| e == "toml") || path.exists() {
            return Self::load(path);
        }
        Err(ScenarioError::Unknown {
            name: name_or_path.to_string(),
        })
    }

    /// Every built-in scenario.
    pub fn builtin() -> Vec<Self> {
        BUILTIN
            .iter()
            .map(|(n, _)| Self::find(n).expect("built-in scenarios parse"))
            .collect()
    }

    /// Loads a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses a scenario's text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ScenarioError> {
        let invalid = |problem: String| ScenarioError::Invalid {
            path: path.to_path_buf(),
            problem,
        };
        let s: Scenario = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        for m in &s.metrics {
            if crate::score::metric_info(m).is_none() {
                return Err(invalid(format!("unknown metric {m:?}")));
            }
        }
        if !(s.tip_radius_m > 0.0 && s.tip_radius_m < 0.05) {
            return Err(invalid(format!(
                "tip_radius_m {} is not between 0 and 5 cm",
                s.tip_radius_m
            )));
        }
        if !(s.time_limit_s > 0.0 && s.safe_force_n > 0.0) {
            return Err(invalid(
                "time_limit_s and safe_force_n must be positive".into(),
            ));
        }
        Ok(s)
    }

    /// The instrument, as the haptic core takes it.
    pub fn instrument_config(&self) -> InstrumentConfig {
        InstrumentConfig {
            kind: self.instrument,
            tip_radius_m: self.tip_radius_m,
            direction_in_world: self.direction_in_world,
            ..InstrumentConfig::default()
        }
    }
}

/// What a scenario aims at in a case's tissue (world frame, at rest).
#[derive(Debug, Clone, PartialEq)]
pub struct CaseGeometry {
    /// Tets labelled tumour.
    pub tumour_tets: Vec<u32>,
    /// Centre of the tumour (volume-weighted centroid of its tets), when there is one.
    pub tumour_centre_m: Option<Vector3<f64>>,
    /// Radius of a sphere of the tumour's volume, metres.
    pub tumour_radius_m: f64,
    /// Particles of vessel tets: the instrument must not touch them.
    pub vessel_particles: Vec<u32>,
    /// Particles on the top (upward-facing) surface.
    pub top_particles: Vec<u32>,
    /// Lowest and highest corner of the tissue.
    pub bounds_m: [Vector3<f64>; 2],
}

impl CaseGeometry {
    /// Finds the tumour, the vessel and the top surface of `tissue` at rest, whose tets carry
    /// `tet_labels` ([`Label`] values).
    pub fn of(tissue: &Tissue, tet_labels: &[u8]) -> Self {
        let tets = tissue.tets();
        let vol = tissue.tet_rest_volumes_m3();
        let centroid = |t: usize| {
            tets[t]
                .iter()
                .map(|&q| tissue.positions_m[q as usize])
                .sum::<Vector3<f64>>()
                / 4.0
        };
        let with = |l: Label| {
            (0..tets.len())
                .filter(|&t| tet_labels.get(t) == Some(&(l as u8)))
                .collect::<Vec<_>>()
        };
        let tumour: Vec<usize> = with(Label::Tumour);
        let tumour_volume: f64 = tumour.iter().map(|&t| vol[t]).sum();
        let tumour_centre_m = (tumour_volume > 0.0).then(|| {
            tumour
                .iter()
                .map(|&t| centroid(t) * vol[t])
                .sum::<Vector3<f64>>()
                / tumour_volume
        });
        let mut vessel_particles: Vec<u32> =
            with(Label::Vessel).iter().flat_map(|&t| tets[t]).collect();
        vessel_particles.sort_unstable();
        vessel_particles.dedup();
        let mut lo = Vector3::repeat(f64::INFINITY);
        let mut hi = Vector3::repeat(f64::NEG_INFINITY);
        for p in &tissue.positions_m {
            lo = lo.inf(p);
            hi = hi.sup(p);
        }
        // Top surface: vertices of surface triangles whose normal points up.
        let mut top: Vec<u32> = tissue
            .surface_triangles()
            .iter()
            .filter(|tri| {
                let [a, b, c] = tri.map(|q| tissue.positions_m[q as usize]);
                let n = (b - a).cross(&(c - a));
                n.norm() > 0.0 && n.y / n.norm() > 0.5
            })
            .flat_map(|tri| *tri)
            .collect();
        top.sort_unstable();
        top.dedup();
        Self {
            tumour_tets: tumour.iter().map(|&t| t as u32).collect(),
            tumour_centre_m,
            tumour_radius_m: (3.0 * tumour_volume / (4.0 * std::f64::consts::PI)).cbrt(),
            vessel_particles,
            top_particles: top,
            bounds_m: [lo, hi],
        }
    }

    /// Height of the top surface near `(x, z)`: the highest top particle within `reach_m`
    /// horizontally (or the tissue's top when none is that close).
    pub fn surface_y_at(&self, tissue: &Tissue, x: f64, z: f64, reach_m: f64) -> f64 {
        let r2 = reach_m * reach_m;
        self.top_particles
            .iter()
            .map(|&q| tissue.positions_m[q as usize])
            .filter(|p| (p.x - x).powi(2) + (p.z - z).powi(2) <= r2)
            .map(|p| p.y)
            .fold(None, |m: Option<f64>, y| Some(m.map_or(y, |m| m.max(y))))
            .unwrap_or(self.bounds_m[1].y)
    }

    /// `n` warm-up targets on the top surface: points on a ring around the top's centre (half
    /// way to its edge), each moved to the nearest top-surface particle, in turn around the
    /// ring.
    pub fn warmup_targets(&self, tissue: &Tissue, n: usize) -> Vec<Vector3<f64>> {
        let [lo, hi] = self.bounds_m;
        let c = (lo + hi) / 2.0;
        let half = (hi - lo) / 2.0;
        (0..n)
            .filter_map(|k| {
                let a = std::f64::consts::TAU * k as f64 / n as f64;
                let want = (c.x + 0.5 * half.x * a.cos(), c.z + 0.5 * half.z * a.sin());
                self.top_particles
                    .iter()
                    .map(|&q| tissue.positions_m[q as usize])
                    .min_by(|p, q| {
                        let d = |p: &Vector3<f64>| (p.x - want.0).powi(2) + (p.z - want.1).powi(2);
                        d(p).total_cmp(&d(q))
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_scenario_parses() {
        let all = Scenario::builtin();
        assert_eq!(all.len(), 4);
        for s in &all {
            assert!(!s.metrics.is_empty(), "{}", s.name);
            assert!(s.instructions.chars().all(|c| !c.is_lowercase()));
        }
        assert_eq!(
            Scenario::find("biopsy").unwrap().instrument,
            InstrumentKind::Needle
        );
    }

    #[test]
    fn strict_loading_names_the_problem() {
        let text = BUILTIN[0].1.replace("\"marked\"", "\"nonsense_metric\"");
        let e = Scenario::parse(Path::new("x.toml"), &text).unwrap_err();
        assert!(e.to_string().contains("nonsense_metric"), "{e}");
        let text = format!("{}\nextra_key = 1\n", BUILTIN[0].1);
        let e = Scenario::parse(Path::new("x.toml"), &text).unwrap_err();
        assert!(e.to_string().contains("extra_key"), "{e}");
        assert!(matches!(
            Scenario::find("nope"),
            Err(ScenarioError::Unknown { .. })
        ));
    }
}
