//! `haptwin bench tissue`: how fast the tissue steps, and how accurate that same configuration
//! is.
//!
//! For blocks of about 1k, 5k, 20k and 50k tets at tissue scale (5 mm cells, liver-like
//! E = 5.4 kPa, nu = 0.45, 1060 kg/m^3), with a 1 cm sphere pressed 5 mm into the top, it steps
//! the demo's solver configuration at dt = 1 ms and reports the per-step time (p50, p99), tets per
//! millisecond and inverted tets after the run. Accuracy of the same configuration comes from a
//! cantilever bar of the same cells and material (settled tip sag against `P L^3 / (3 E I)`) and a
//! stretched bar (measured Poisson ratio and volume change). Figures, not assertions: the tests
//! in `tests/it/tissue.rs` check physics; this reports.

use std::time::Instant;

use nalgebra::Vector3;

use crate::stats::{Histogram, Percentiles};
use crate::tissue::scenes::{self, Cantilever, CantileverResult, Stretch, StretchResult};
use crate::tissue::{step, Material, SphereTool, StepParams, TissueError};

/// Cell side of the tissue-scale blocks, metres.
pub const CELL_M: f64 = 0.005;

/// Block shapes (cells) for the standard sizes: 1k, 5k, 20k, 50k tets.
pub const SIZES: [[usize; 3]; 4] = [[10, 4, 5], [10, 10, 10], [20, 10, 20], [25, 16, 25]];

/// The solver configuration being measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SolverConfig {
    pub dt_s: f64,
    pub substeps: u32,
    pub iterations_per_substep: u32,
    pub threads: u32,
    pub precision: &'static str,
    pub cell_m: f64,
    pub youngs_modulus_pa: f64,
    pub poisson_ratio: f64,
    pub density_kg_per_m3: f64,
}

/// One block size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SizeRow {
    pub tets: usize,
    pub particles: usize,
    pub steps: usize,
    pub step_us: Percentiles,
    /// Tets stepped per millisecond of wall time (at the median step time).
    pub tets_per_ms: f64,
    pub inverted_tets: usize,
    /// The same configuration's cantilever error (see [`BenchReport::cantilever`]).
    pub cantilever_error_pct: f64,
}

/// The whole report (`haptwin bench tissue --json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub config: SolverConfig,
    pub sizes: Vec<SizeRow>,
    /// 8 cm bar, 1 cm square section, 5 mm cells (16 x 2 x 2), tip load for 1 % sag.
    pub cantilever: CantileverResult,
    /// 4 cm bar, 1 cm square section, 5 mm cells, 54 Pa nominal stress (about 1 % strain).
    pub stretch: StretchResult,
}

/// Errors of the benchmark.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The solver failed on a scene.
    #[error("the tissue solver failed on {scene}: {source}")]
    Solver { scene: String, source: TissueError },
}

/// Runs the benchmark: `steps` timed steps per size (after 50 warm-up steps), sizes up to
/// `max_tets`.
pub fn bench_tissue(steps: usize, max_tets: usize) -> Result<BenchReport, BenchError> {
    let material = Material::LIVER;
    let params = StepParams::default();
    let solver_err = |scene: &str| {
        let scene = scene.to_string();
        move |source| BenchError::Solver { scene, source }
    };
    let cantilever = Cantilever::new(CELL_M, 16, 2, material, 0.01)
        .settle(&params, 30.0)
        .map_err(solver_err("cantilever"))?;
    let stretch = Stretch::new(CELL_M, 8, 2, material, 54.0)
        .settle(&params, 4.0)
        .map_err(solver_err("stretch"))?;

    let mut sizes = Vec::new();
    for cells in SIZES {
        if cells.iter().product::<usize>() * 5 > max_tets {
            continue;
        }
        let mut tissue = scenes::block(CELL_M, cells, material);
        let name = format!("block {}x{}x{}", cells[0], cells[1], cells[2]);
        let radius_m = 0.01;
        let mut hist = Histogram::new();
        for i in 0..(50 + steps) {
            // Lower the sphere onto the top centre over the first 200 steps, then hold it 5 mm in.
            let depth_m = 0.005 * (i as f64 / 200.0).min(1.0);
            let tool = SphereTool {
                center_in_world_m: Vector3::new(0.0, radius_m - depth_m, 0.0),
                radius_m,
            };
            let t0 = Instant::now();
            step(&params, &mut tissue, &tool).map_err(solver_err(&name))?;
            let ns = t0.elapsed().as_nanos() as u64;
            if i >= 50 {
                hist.record(ns);
            }
        }
        let step_us = Percentiles::of_ns_in_us(&hist);
        sizes.push(SizeRow {
            tets: tissue.tet_count(),
            particles: tissue.particle_count(),
            steps,
            tets_per_ms: (tissue.tet_count() as f64 / (step_us.p50 / 1000.0)).round(),
            step_us,
            inverted_tets: tissue.inverted_tets(),
            cantilever_error_pct: cantilever.error_pct,
        });
    }
    Ok(BenchReport {
        config: SolverConfig {
            dt_s: params.dt_s,
            substeps: params.substeps,
            iterations_per_substep: params.iterations,
            threads: 1,
            precision: "f64",
            cell_m: CELL_M,
            youngs_modulus_pa: material.youngs_modulus_pa,
            poisson_ratio: material.poisson_ratio,
            density_kg_per_m3: material.density_kg_per_m3,
        },
        sizes,
        cantilever,
        stretch,
    })
}
