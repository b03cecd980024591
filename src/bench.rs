//! `haptwin bench tissue`: how fast the tissue steps, and how accurate that same configuration
//! is.
//!
//! Speed: blocks of about 1k, 5k, 20k and 50k tets at tissue scale (5 mm cells, liver-like
//! E = 5.4 kPa with a tumour-like inclusion of E = 27 kPa in the middle, nu = 0.45,
//! 1060 kg/m^3), a 1 cm sphere pressed 5 mm into the top over the tumour, stepped in the
//! default solver configuration at dt = 1 ms: per-step time (p50, p99), tets per millisecond,
//! inverted tets after the run.
//!
//! Accuracy of the same configuration: tip-loaded liver bars of the same 5 mm cells with 2, 4
//! and (by default) 10 cells across against `P L^3 / (3 E I)`, a sphere indentation against
//! Hertz, and stretched bars (Poisson ratio at nu 0.45 and 0.49, volume at 10 % stretch and
//! nu 0.49). Figures, not assertions: `tests/it/tissue.rs` asserts the physics.
//!
//! Anchors (from the issue, measured on this kind of machine, one thread, dt 1 ms): Bender's
//! PositionBasedDynamics XPBD FEM tets at 1 substep x 1 iteration run about 8,000-10,000 tets
//! per ms raw, and about 1,000 tets per ms in the 10-substep configuration that stays accurate at
//! tissue scale. The report gives both ratios.

pub mod serve;

use std::time::Instant;

use nalgebra::Vector3;

use crate::stats::{Histogram, Percentiles};
use crate::tissue::scenes::{
    block_with_materials, Cantilever, CantileverResult, Indentation, IndentationPoint, Stretch,
    StretchResult,
};
use crate::tissue::{step, Material, SphereTool, StepParams, Tissue, TissueError};

pub use serve::{bench_serve, ServeBenchError, ServeBenchOptions, ServeBenchReport};

/// Cell side of the tissue-scale blocks, metres.
pub const CELL_M: f64 = 0.005;

/// Block shapes (cells) for the standard sizes: 1k, 5k, 20k, 50k tets.
pub const SIZES: [[usize; 3]; 4] = [[10, 4, 5], [10, 10, 10], [20, 10, 20], [25, 16, 25]];

/// The tumour-like inclusion: five times stiffer than liver (see shared/reference/tissue.md).
pub const TUMOUR: Material = Material {
    youngs_modulus_pa: 27_000.0,
    ..Material::LIVER
};

/// Raw throughput of the PBD anchor, tets per ms (1 substep x 1 iteration; midpoint of
/// 8,000-10,000).
pub const ANCHOR_RAW_TETS_PER_MS: f64 = 9_000.0;

/// Throughput of the PBD anchor in its accurate configuration (10 substeps), tets per ms.
pub const ANCHOR_ACCURATE_TETS_PER_MS: f64 = 1_000.0;

/// A block of `cells` cells of [`CELL_M`] (top face at y = 0, centred on x = z = 0, bottom
/// fixed) of liver, with a spherical tumour of a quarter of the smallest side in radius centred
/// 40 % of the way down.
pub fn two_material_block(cells: [usize; 3]) -> Tissue {
    let depth = cells[1] as f64 * CELL_M;
    let centre = Vector3::new(0.0, -0.4 * depth, 0.0);
    let smallest = cells.iter().copied().min().unwrap_or(1) as f64 * CELL_M;
    let radius = 0.25 * smallest;
    block_with_materials(CELL_M, cells, &[Material::LIVER, TUMOUR], |c| {
        u16::from((c - centre).norm() < radius)
    })
}

/// The solver configuration being measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SolverConfig {
    pub dt_s: f64,
    pub substeps: u32,
    pub iterations_per_substep: u32,
    pub threads: u32,
    /// Arithmetic of the material kernel and of the positions.
    pub precision: &'static str,
    /// The material kernel's instruction set on this machine.
    pub simd: &'static str,
    pub cell_m: f64,
    pub youngs_modulus_pa: f64,
    pub tumour_youngs_modulus_pa: f64,
    pub poisson_ratio: f64,
    pub density_kg_per_m3: f64,
}

/// One block size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SizeRow {
    pub tets: usize,
    pub particles: usize,
    /// Colours of the material sweep (tets of a colour share no particle).
    pub colours: usize,
    pub steps: usize,
    pub step_us: Percentiles,
    /// Tets stepped per millisecond of wall time (at the median step time).
    pub tets_per_ms: f64,
    /// Tet projections per millisecond (tets x substeps x iterations, at the median).
    pub tet_projections_per_ms: f64,
    pub inverted_tets: usize,
    /// The same configuration's cantilever error at the finest bar (see [`Accuracy`]).
    pub cantilever_error_pct: f64,
}

/// One cantilever bar.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BarRow {
    /// Cells across the square section (the bar is 8 times as long as it is wide).
    pub cells_across: usize,
    pub tets: usize,
    #[serde(flatten)]
    pub result: CantileverResult,
}

/// Accuracy of the configuration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Accuracy {
    /// Liver bars of 5 mm cells, tip load for 1 % sag, coarse to fine.
    pub cantilever: Vec<BarRow>,
    /// Error of the finest bar, per cent.
    pub cantilever_error_pct: f64,
    /// 6 cm sphere into a liver block (graded quarter mesh, 3 mm cells at the contact).
    pub hertz: Vec<IndentationPoint>,
    /// 4 cm bar, 1 cm section, 1 % strain, nu 0.45.
    pub stretch_nu_045: StretchResult,
    /// The same at nu 0.49.
    pub stretch_nu_049: StretchResult,
    /// nu 0.49 stretched about 10 %: the volume change.
    pub stretch_10pct_nu_049: StretchResult,
}

/// The anchors and where this configuration stands against them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AnchorRatios {
    pub anchor_raw_tets_per_ms: f64,
    pub anchor_accurate_tets_per_ms: f64,
    /// Tets of the about-20k block.
    pub tets: usize,
    /// Our tets per ms over the anchor's accurate tets per ms.
    pub accurate_throughput_ratio: f64,
    /// Our tet projections per ms over the anchor's raw tets per ms (one projection each).
    pub raw_throughput_ratio: f64,
}

/// The whole report (`haptwin bench tissue --json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub config: SolverConfig,
    pub sizes: Vec<SizeRow>,
    pub accuracy: Accuracy,
    pub anchors: Option<AnchorRatios>,
}

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Timed steps per size (after 200 untimed steps that bring the sphere in).
    pub steps: usize,
    /// Skip sizes above this many tets.
    pub max_tets: usize,
    /// Cells across the finest cantilever bar (10: 40,000 tets, the validation bar).
    pub finest_bar_across: usize,
}

/// Errors of the benchmark.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The solver failed on a scene.
    #[error("the tissue solver failed on {scene}: {source}")]
    Solver { scene: String, source: TissueError },
}

/// The material kernel's instruction set on this machine.
pub fn simd_in_use() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            return "avx2 (8 f32 lanes)";
        }
    }
    "portable (8 f32 lanes, compiler-vectorised)"
}

/// Runs the benchmark.
pub fn bench_tissue(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    let params = StepParams::default();
    let solver_err = |scene: &str| {
        let scene = scene.to_string();
        move |source| BenchError::Solver { scene, source }
    };

    let mut sizes = Vec::new();
    for cells in SIZES {
        if cells.iter().product::<usize>() * 5 > opts.max_tets {
            continue;
        }
        let mut tissue = two_material_block(cells);
        let name = format!("block {}x{}x{}", cells[0], cells[1], cells[2]);
        let radius_m = 0.01;
        let mut hist = Histogram::new();
        for i in 0..(200 + opts.steps) {
            // Lower the sphere onto the top centre over the first 200 steps, then hold it 5 mm in.
            let depth_m = 0.005 * (i as f64 / 200.0).min(1.0);
            let tool = SphereTool {
                center_in_world_m: Vector3::new(0.0, radius_m - depth_m, 0.0),
                radius_m,
            };
            let t0 = Instant::now();
            step(&params, &mut tissue, &tool).map_err(solver_err(&name))?;
            let ns = t0.elapsed().as_nanos() as u64;
            if i >= 200 {
                hist.record(ns);
            }
        }
        let step_us = Percentiles::of_ns_in_us(&hist);
        let per_ms = |n: f64| (n / (step_us.p50 / 1000.0)).round();
        let projections = (tissue.tet_count() as u32 * params.substeps * params.iterations) as f64;
        sizes.push(SizeRow {
            tets: tissue.tet_count(),
            particles: tissue.particle_count(),
            colours: tissue.colour_count(),
            steps: opts.steps,
            tets_per_ms: per_ms(tissue.tet_count() as f64),
            tet_projections_per_ms: per_ms(projections),
            step_us,
            inverted_tets: tissue.inverted_tets(),
            cantilever_error_pct: f64::NAN,
        });
    }

    let accuracy = accuracy(&params, opts.finest_bar_across)?;
    for row in &mut sizes {
        row.cantilever_error_pct = accuracy.cantilever_error_pct;
    }
    let anchors = sizes
        .iter()
        .find(|r| (15_000..=25_000).contains(&r.tets))
        .map(|r| AnchorRatios {
            anchor_raw_tets_per_ms: ANCHOR_RAW_TETS_PER_MS,
            anchor_accurate_tets_per_ms: ANCHOR_ACCURATE_TETS_PER_MS,
            tets: r.tets,
            accurate_throughput_ratio: r.tets_per_ms / ANCHOR_ACCURATE_TETS_PER_MS,
            raw_throughput_ratio: r.tet_projections_per_ms / ANCHOR_RAW_TETS_PER_MS,
        });
    Ok(BenchReport {
        config: SolverConfig {
            dt_s: params.dt_s,
            substeps: params.substeps,
            iterations_per_substep: params.iterations,
            threads: 1,
            precision: "f32 material kernel, f64 positions",
            simd: simd_in_use(),
            cell_m: CELL_M,
            youngs_modulus_pa: Material::LIVER.youngs_modulus_pa,
            tumour_youngs_modulus_pa: TUMOUR.youngs_modulus_pa,
            poisson_ratio: Material::LIVER.poisson_ratio,
            density_kg_per_m3: Material::LIVER.density_kg_per_m3,
        },
        sizes,
        accuracy,
        anchors,
    })
}

fn accuracy(params: &StepParams, finest_bar_across: usize) -> Result<Accuracy, BenchError> {
    let solver_err = |scene: String| move |source| BenchError::Solver { scene, source };
    let mut cantilever = Vec::new();
    let mut across: Vec<usize> = [2, 4]
        .into_iter()
        .filter(|&n| n < finest_bar_across)
        .collect();
    across.push(finest_bar_across.max(1));
    for n in across {
        let bar = Cantilever::new(CELL_M, 8 * n, n, Material::LIVER, 0.01);
        let tets = bar.tissue.tet_count();
        // Settled with its first bending mode about critically damped: the static sag does not
        // depend on the damping, and comes soonest.
        let p = StepParams {
            damping_per_s: 2.0 * bar.first_mode_rad_per_s(),
            ..*params
        };
        let result = bar
            .settle(&p, 40.0)
            .map_err(solver_err(format!("cantilever {n} across")))?;
        cantilever.push(BarRow {
            cells_across: n,
            tets,
            result,
        });
    }
    let cantilever_error_pct = cantilever.last().map_or(f64::NAN, |r| r.result.error_pct);
    let hertz = Indentation::new(Material::LIVER, 0.06, 0.003, 0.02, 0.2, 1.3)
        .measure(params, &[0.001, 0.002, 0.003], 0.005, 0.3)
        .map_err(solver_err("hertz".into()))?;
    let stretch = |nu: f64, strain: f64| {
        let m = Material {
            poisson_ratio: nu,
            ..Material::LIVER
        };
        Stretch::new(CELL_M, 8, 2, m, strain * m.youngs_modulus_pa)
            .settle(params, 4.0)
            .map_err(solver_err(format!("stretch nu {nu}")))
    };
    Ok(Accuracy {
        cantilever,
        cantilever_error_pct,
        hertz,
        stretch_nu_045: stretch(0.45, 0.01)?,
        stretch_nu_049: stretch(0.49, 0.01)?,
        stretch_10pct_nu_049: stretch(0.49, 0.1)?,
    })
}

/// What `haptwin bench haptic` measured: the whole haptic loop (emulated WoodenHaptics I/O
/// through its codec and kinematics, the demo phantom's tissue step, guard, telemetry to the
/// recorder) next to the bare timer loop, measured one after the other in the same run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HapticBenchReport {
    /// What ran.
    pub case: &'static str,
    /// The bare timer loop (same ticker, period, spin and scheduling; no work).
    pub bare_timer: crate::doctor::TimerProbe,
    /// The haptic loop.
    pub haptic: crate::demo::DemoReport,
    /// Haptic p99 lateness over the bare loop's (the goal is at most 1.2).
    pub lateness_p99_ratio: f64,
    /// The goal for the tick's p99 work, microseconds.
    pub tick_work_p99_goal_us: f64,
}

/// Errors of the haptic benchmark.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HapticBenchError {
    /// The loop under test failed.
    #[error("the haptic loop failed: {0}")]
    Demo(#[from] crate::demo::DemoError),
}

/// Runs the bare timer for `seconds`, then the haptic loop on the emulated WoodenHaptics for
/// `seconds` (no rendering; the session log goes to `out_dir`).
pub fn bench_haptic(
    seconds: f64,
    out_dir: &std::path::Path,
    realtime: bool,
) -> Result<HapticBenchReport, HapticBenchError> {
    let loop_defaults = crate::haptics::haptic_loop::LoopConfig::default();
    let bare_timer = crate::doctor::probe_timer(
        std::time::Duration::from_secs_f64(seconds),
        loop_defaults.period_ns,
        loop_defaults.spin_ns,
        realtime,
    );
    let opts = crate::demo::DemoOptions {
        seconds: Some(seconds),
        out_dir: out_dir.to_path_buf(),
        render: false,
        realtime,
        device: crate::demo::DemoDevice::EmulatedWoodenHaptics,
        ..crate::demo::DemoOptions::default()
    };
    let never = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let haptic = crate::demo::run_demo(&opts, never)?;
    let bare = bare_timer.lateness_us.p99;
    Ok(HapticBenchReport {
        case: "demo palpation, emulated WoodenHaptics 1.5, phantom block (960 tets), recorder on, no render",
        lateness_p99_ratio: if bare > 0.0 {
            haptic.lateness_us.p99 / bare
        } else {
            f64::NAN
        },
        bare_timer,
        haptic,
        tick_work_p99_goal_us: 600.0,
    })
}

/// What `haptwin bench twin` measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TwinBench {
    /// Isosurface runs: volume edge, threads, median seconds, triangles.
    pub isosurface: Vec<crate::twin::surface::IsoBench>,
    /// The anchors (one thread, this machine kind): VTK FlyingEdges 0.037 s at 256^3 and 0.33 s
    /// at 512^3.
    pub isosurface_anchor_s: [(usize, f64); 2],
    /// Slices x rows x columns of the synthetic CT series.
    pub series_dims: [usize; 3],
    /// Writing it as DICOM, seconds.
    pub series_write_s: f64,
    /// Loading it back (read, de-identify, order, check, HU), seconds.
    pub series_load_s: f64,
    /// The anchor: dicom-rs 0.5 s on one thread (pydicom 1.1-2.8 s).
    pub series_load_anchor_s: f64,
    /// The whole CT-to-twin build of that series (abdomen-ct preset, 20,000 tets), by stage.
    pub build: crate::twin::pipeline::BuildReport,
    /// The goal for the whole build, seconds.
    pub build_goal_s: f64,
    /// Tets of the twin built.
    pub tets: u64,
}

/// Runs the twin benchmark: isosurfaces of 256^3 and 512^3 on 1 and 2 threads, a synthetic
/// 300 x 512 x 512 CT series (the phantom sampled at 0.41 x 0.41 x 0.53 mm) written and
/// loaded, and the whole CT-to-twin build of it. `scratch` holds the series (about 160 MB).
pub fn bench_twin(scratch: &std::path::Path, small: bool) -> anyhow::Result<TwinBench> {
    use crate::twin::{dicom, phantom, pipeline, surface, volume::Grid};
    let sizes: &[usize] = if small { &[64, 128] } else { &[256, 512] };
    let mut isosurface = Vec::new();
    for &n in sizes {
        for threads in [1, 2] {
            isosurface.push(surface::bench_isosurface(n, threads));
        }
    }
    let (nx, ny, nz) = if small {
        (128, 128, 60)
    } else {
        (512, 512, 300)
    };
    let grid = Grid::axis_aligned(
        [nx, ny, nz],
        [0.21 / nx as f64, 0.21 / ny as f64, 0.16 / nz as f64],
        [-0.105, -0.105, -0.08],
    );
    let (ct, _) = phantom::phantom_on(&grid)?;
    let dir = scratch.join("bench-series");
    let _ = std::fs::remove_dir_all(&dir);
    let t = std::time::Instant::now();
    dicom::write_series(&ct, &dir, &dicom::WriteOptions::default())?;
    let series_write_s = t.elapsed().as_secs_f64();
    drop(ct);
    let t = std::time::Instant::now();
    let series = dicom::read_series(&dir, &dicom::ImportOptions::default())?;
    let series_load_s = t.elapsed().as_secs_f64();
    drop(series);
    let (twin, build) = pipeline::build_twin(&pipeline::TwinBuildOptions {
        input: dir.clone(),
        labels: None,
        preset: None,
        tets: crate::twin::tets::DEFAULT_TET_BUDGET,
        surface_triangles: crate::twin::build::DEFAULT_SURFACE_TRIANGLES,
        materials: None,
        modality: None,
        series: None,
        all_tissues: false,
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(TwinBench {
        isosurface,
        isosurface_anchor_s: [(256, 0.037), (512, 0.33)],
        series_dims: [nz, ny, nx],
        series_write_s,
        series_load_s,
        series_load_anchor_s: 0.5,
        build,
        build_goal_s: 5.0,
        tets: twin.header.tets,
    })
}

/// Settings of `haptwin bench render`.
#[derive(Debug, Clone)]
pub struct RenderBenchOptions {
    /// Pixels per eye (the default is a Varjo-/Quest-Pro-class 2064 x 2208).
    pub width: u32,
    /// Pixels per eye.
    pub height: u32,
    /// Timed frames (after `warmup`).
    pub frames: u32,
    /// Untimed frames first (pipelines, caches, clocks).
    pub warmup: u32,
    /// MSAA samples.
    pub samples: u32,
    /// The tissue: the demo's case (the phantom twin by default).
    pub case: crate::demo::DemoCase,
    /// Only devices whose name contains this.
    pub device_filter: Option<String>,
}

impl Default for RenderBenchOptions {
    fn default() -> Self {
        Self {
            width: 2064,
            height: 2208,
            frames: 300,
            warmup: 30,
            samples: 4,
            case: crate::demo::DemoCase::Phantom,
            device_filter: None,
        }
    }
}

/// What `haptwin bench render` measured: stereo frames (one multiview pass, both eyes) of the
/// demo's case with its fine surface deforming every frame, the instrument and the board,
/// rendered with two frames in flight and no read-back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenderBench {
    /// The Vulkan device.
    pub device: String,
    /// Pixels per eye.
    pub width: u32,
    /// Pixels per eye.
    pub height: u32,
    /// Views per frame (2).
    pub views: u32,
    /// MSAA samples in use.
    pub samples: u32,
    /// Frames timed.
    pub frames: u32,
    /// Tissue triangles drawn per view.
    pub tissue_triangles: usize,
    /// Tissue vertices streamed per frame.
    pub tissue_vertices: usize,
    /// CPU time per frame, milliseconds: building the scene (surface embedding, materials,
    /// board text), normals, uploads, recording and submitting; the wait for the GPU's frame
    /// two back is not included.
    pub cpu_ms: crate::stats::Percentiles,
    /// Wall time of the fence waits, milliseconds (how long the CPU waited for the GPU).
    pub fence_wait_ms: crate::stats::Percentiles,
    /// GPU time per frame from timestamp queries, milliseconds (`None` without timestamps).
    pub gpu_ms: Option<crate::stats::Percentiles>,
    /// Frames per second the whole loop achieved.
    pub achieved_fps: f64,
    /// The goals: GPU and CPU time per stereo frame, milliseconds (90 Hz with a wide margin).
    pub goal_gpu_ms: f64,
    /// CPU goal, milliseconds.
    pub goal_cpu_ms: f64,
}

/// Renders `opts.frames` stereo frames of the demo's case as fast as the device allows.
pub fn bench_render(opts: &RenderBenchOptions) -> anyhow::Result<RenderBench> {
    use crate::haptics::haptic_loop::SceneSnapshot;
    use crate::render::{Camera, FrameOutput, PlainVulkan, Renderer, RendererOptions};
    use crate::render_loop::{ms_percentiles, SceneBuilder};
    use crate::stats::Histogram;
    use anyhow::Context as _;

    let case = crate::demo::case_tissue(&opts.case, crate::demo::DEMO_TETS)
        .context("making the case's tissue")?;
    let mut setup = case.scene;
    setup.instructions = Some("PALPATE THE ORGAN - FIND THE TUMOUR".into());
    setup.force_max_n = 8.0;
    let (tissue_triangles, tissue_vertices) = match &setup.embedded {
        Some(v) => (v.triangles.len(), v.vertex_tets.len()),
        None => (
            case.tissue.surface_triangles().len(),
            case.tissue.particle_count(),
        ),
    };
    let mut renderer = Renderer::new(
        &RendererOptions {
            width: opts.width,
            height: opts.height,
            views: 2,
            samples: opts.samples,
            validation: false,
            device_filter: opts.device_filter.clone(),
            readback: false,
        },
        &PlainVulkan,
    )
    .context("setting up the renderer")?;
    let rest = SceneSnapshot::for_tissue(&case.tissue);
    let mut snap = rest.clone();
    let mut builder = SceneBuilder::new(setup);
    let cam = Camera::default_for_block();
    let views = cam.stereo(
        opts.width as f32 / opts.height as f32,
        crate::render::DEFAULT_IPD_M,
    )?;
    let mut cpu = Histogram::new();
    let mut wait = Histogram::new();
    let mut gpu = Histogram::new();
    let total = opts.warmup + opts.frames;
    let started = std::time::Instant::now();
    let mut timed_start = started;
    for k in 0..total {
        if k == opts.warmup {
            timed_start = std::time::Instant::now();
        }
        // A press wave through the tissue and a moving tool: every vertex moves every frame.
        let t = k as f32 * 0.011;
        for (p, r) in snap
            .tissue_positions_m
            .iter_mut()
            .zip(&rest.tissue_positions_m)
        {
            let dip = 0.003 * ((r[0] * 60.0 + t * 5.0).sin() * (r[2] * 60.0).cos());
            *p = [r[0], r[1] + dip * (r[1] + 0.04).max(0.0) * 25.0, r[2]];
        }
        snap.tick = u64::from(k);
        snap.tool_center_in_world_m = [0.03 * t.sin(), 0.01, 0.03 * t.cos()];
        snap.tool_radius_m = 0.005;
        snap.force_out_in_world_n = [0.0, 2.0 + 2.0 * t.sin(), 0.0];
        let t0 = std::time::Instant::now();
        let scene = builder.build(&snap);
        let done = renderer.render(&scene, &views, FrameOutput::None)?;
        let elapsed = t0.elapsed();
        let waited = renderer.last_fence_wait();
        if k >= opts.warmup {
            cpu.record(elapsed.saturating_sub(waited).as_nanos() as u64);
            wait.record(waited.as_nanos() as u64);
        }
        // The frame collected now was submitted two calls ago.
        if let Some(ms) = done.and_then(|f| f.gpu_ms) {
            if k >= opts.warmup + crate::render::PIPELINE_DEPTH as u32 {
                gpu.record((ms * 1e6) as u64);
            }
        }
    }
    for f in renderer.drain()? {
        if let Some(ms) = f.gpu_ms {
            gpu.record((ms * 1e6) as u64);
        }
    }
    let seconds = timed_start.elapsed().as_secs_f64();
    Ok(RenderBench {
        device: renderer.device_name().to_string(),
        width: opts.width,
        height: opts.height,
        views: 2,
        samples: renderer.samples(),
        frames: opts.frames,
        tissue_triangles,
        tissue_vertices,
        cpu_ms: crate::stats::Percentiles::of_ns_in_ms(&cpu),
        fence_wait_ms: crate::stats::Percentiles::of_ns_in_ms(&wait),
        gpu_ms: ms_percentiles(&gpu),
        achieved_fps: if seconds > 0.0 {
            f64::from(opts.frames) / seconds
        } else {
            0.0
        },
        goal_gpu_ms: 3.0,
        goal_cpu_ms: 1.0,
    })
}

/// What `haptwin bench record` measured: the log's size at 1 kHz, the recorder's drops, how
/// fast a session replays, and how long scoring and the report take.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordBench {
    /// What ran.
    pub case: String,
    /// Simulated seconds recorded.
    pub session_s: f64,
    /// Size of the log, bytes.
    pub log_bytes: u64,
    /// Log bytes per second of session.
    pub log_bytes_per_s: f64,
    /// Records the haptic thread could not hand to the recorder (goal: zero).
    pub recorder_drops: u64,
    /// Ticks missing from the log.
    pub missing_ticks: u64,
    /// Replays timed, as fast as the CPU allows.
    pub replay_runs: usize,
    /// Median replay wall time, seconds.
    pub replay_median_s: f64,
    /// Replay speed, multiples of real time (median run; goal: at least 20).
    pub replay_speed_x: f64,
    /// Forces that differed from the recording (must be zero).
    pub replay_mismatches: u64,
    /// Median wall time of scoring the log (its replay included), seconds.
    pub score_median_s: f64,
    /// Median wall time of building the HTML report from a score card (no snapshots),
    /// seconds.
    pub report_median_s: f64,
    /// Size of the report, bytes.
    pub report_bytes: usize,
}

/// Records the default scenario's expert session (real time, no render) into `out_dir`, then
/// replays and scores it `runs` times.
pub fn bench_record(
    out_dir: &std::path::Path,
    runs: usize,
    realtime: bool,
) -> Result<RecordBench, RecordBenchError> {
    let opts = crate::demo::DemoOptions {
        seconds: None,
        out_dir: out_dir.to_path_buf(),
        render: false,
        realtime,
        ..crate::demo::DemoOptions::default()
    };
    let never = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let demo = crate::demo::run_demo(&opts, never)?;
    let log = crate::session::SessionLog::open(&demo.log_path)?;
    let summary = crate::session::log::summarize(&log);
    let log_bytes = std::fs::metadata(&demo.log_path).map_or(0, |m| m.len());
    let session_s = log.records.len() as f64 * log.header.dt_s;
    let scenario = crate::session::scenario::Scenario::find(&log.header.scenario)
        .map_err(|e| RecordBenchError::Review(e.to_string()))?;
    let mut replay_s = Vec::new();
    let mut score_s = Vec::new();
    let mut report_s = Vec::new();
    let mut mismatches = 0;
    let mut report_bytes = 0;
    for _ in 0..runs.max(1) {
        let mut setup = crate::session::replay::ReplaySetup::from_log(&log)
            .map_err(|e| RecordBenchError::Review(e.to_string()))?;
        let r = crate::session::replay::replay(
            &mut setup,
            &log,
            &crate::session::replay::ReplayOptions::default(),
            |_, _| {},
        );
        mismatches += r.mismatches;
        replay_s.push(r.wall_s);
        let t = std::time::Instant::now();
        let (card, _) = crate::score::score_log(&log, &scenario)
            .map_err(|e| RecordBenchError::Review(e.to_string()))?;
        score_s.push(t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        let html = crate::score::report::build_report(&log, &card, &[]);
        report_s.push(t.elapsed().as_secs_f64());
        report_bytes = html.len();
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let replay_median_s = median(&mut replay_s);
    Ok(RecordBench {
        case: format!(
            "{} expert (scripted), phantom twin {} tets, recorder on, no render",
            log.header.scenario, demo.tissue.tets
        ),
        session_s,
        log_bytes,
        log_bytes_per_s: log_bytes as f64 / session_s.max(1e-9),
        recorder_drops: demo.telemetry_dropped,
        missing_ticks: summary.missing_ticks,
        replay_runs: replay_s.len(),
        replay_median_s,
        replay_speed_x: session_s / replay_median_s.max(1e-9),
        replay_mismatches: mismatches,
        score_median_s: median(&mut score_s),
        report_median_s: median(&mut report_s),
        report_bytes,
    })
}

/// Errors of the recording benchmark.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordBenchError {
    /// The session under test failed.
    #[error("the session failed: {0}")]
    Demo(#[from] crate::demo::DemoError),
    /// Its log could not be read back.
    #[error(transparent)]
    Log(#[from] crate::session::LogError),
    /// It could not be replayed or scored.
    #[error("{0}")]
    Review(String),
}
