//! The render thread: draws snapshots of the simulation with the headless Vulkan renderer.
//!
//! Contract: the render thread only *reads* snapshots from the triple buffer (it never waits on
//! the haptic thread, and the haptic thread never waits on it). It may block on the GPU, on
//! PNG encoding and on the file system; if it stalls or dies, the haptic loop goes on unaffected.
//! Vulkan is set up on this thread; when that fails, the thread reports why and ends, and the
//! session goes on without pictures.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::bus::Subscriber;
use crate::haptics::haptic_loop::SceneSnapshot;
use crate::render::{Camera, HeadlessRenderer, RenderOptions, RenderScene, ValidationReport};
use crate::stats::{Histogram, Percentiles};

/// Settings of the render thread. With `frames_dir`, frames are written as `frame_NNNNN.png`
/// and indexed in `frames.csv` (frame, tick, tool centre in the world in metres, force in
/// newtons).
#[derive(Debug, Clone)]
pub struct RenderLoopConfig {
    /// Where frames are written as `frame_NNNNN.png` (`None`: render without writing).
    pub frames_dir: Option<PathBuf>,
    /// Time between frames.
    pub frame_interval: Duration,
    /// Renderer settings.
    pub options: RenderOptions,
    /// The viewpoint.
    pub camera: Camera,
    /// Stop after this many frames (`None`: until told to stop).
    pub max_frames: Option<u64>,
    /// A fine surface embedded in the tets (a twin's), drawn instead of the tet mesh's
    /// boundary while the tissue is whole; after a cut the live boundary is drawn.
    pub embedded_surface: Option<EmbeddedView>,
}

/// A fine render surface carried by the tets: each vertex moves with its tet by barycentric
/// coordinates (computed on the render thread from the snapshot's particle positions).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EmbeddedView {
    /// The tets, in the order and vertex order the coordinates refer to.
    pub tets: Vec<[u32; 4]>,
    /// The tet of each vertex.
    pub vertex_tets: Vec<u32>,
    /// Its coordinates in that tet.
    pub vertex_barycentric: Vec<[f32; 4]>,
    /// Triangles of the surface.
    pub triangles: Vec<[u32; 3]>,
}

impl EmbeddedView {
    /// The vertices' positions for these particle positions, into `out`.
    pub fn positions(&self, particles: &[[f32; 3]], out: &mut Vec<[f32; 3]>) {
        out.clear();
        for (&t, w) in self.vertex_tets.iter().zip(&self.vertex_barycentric) {
            let mut p = [0.0f32; 3];
            if let Some(tet) = self.tets.get(t as usize) {
                for k in 0..4 {
                    let q = particles.get(tet[k] as usize).copied().unwrap_or_default();
                    for a in 0..3 {
                        p[a] += w[k] * q[a];
                    }
                }
            }
            out.push(p);
        }
    }
}

/// What the render thread did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenderLoopReport {
    /// The Vulkan device used, when rendering ran.
    pub device: Option<String>,
    /// Why rendering was skipped or ended early, if it was.
    pub skipped: Option<String>,
    /// Frames rendered.
    pub frames_rendered: u64,
    /// Frames written as PNG.
    pub frames_written: u64,
    /// Where the frames went.
    pub frames_dir: Option<PathBuf>,
    /// Time per frame on the CPU side (record, submit, wait, read back), milliseconds.
    pub frame_ms: Option<Percentiles>,
    /// Validation-layer findings, when validation was on.
    pub validation: Option<ValidationSummary>,
}

/// Validation-layer counts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ValidationSummary {
    /// Errors reported.
    pub errors: u32,
    /// Warnings reported.
    pub warnings: u32,
    /// The first messages.
    pub messages: Vec<String>,
}

impl From<ValidationReport> for ValidationSummary {
    fn from(v: ValidationReport) -> Self {
        Self {
            errors: v.errors,
            warnings: v.warnings,
            messages: v.messages,
        }
    }
}

/// The render thread's word on its Vulkan set-up: the device name, or why there is none.
pub type RenderReady = crossbeam::channel::Receiver<Result<String, String>>;

/// Spawns the render thread (named `render`). It sets Vulkan up and says how that went on the
/// returned [`RenderReady`] channel, then renders the newest snapshot every `frame_interval`
/// until `stop` is set, renders the last snapshot once more and ends.
pub fn spawn_render_loop(
    snapshots: Subscriber<SceneSnapshot>,
    stop: Arc<AtomicBool>,
    cfg: RenderLoopConfig,
) -> std::io::Result<(JoinHandle<RenderLoopReport>, RenderReady)> {
    let (ready_tx, ready_rx) = crossbeam::channel::bounded(1);
    let handle = thread::Builder::new()
        .name("render".into())
        .spawn(move || render_loop(snapshots, stop, cfg, ready_tx))?;
    Ok((handle, ready_rx))
}

fn render_loop(
    mut snapshots: Subscriber<SceneSnapshot>,
    stop: Arc<AtomicBool>,
    cfg: RenderLoopConfig,
    ready: crossbeam::channel::Sender<Result<String, String>>,
) -> RenderLoopReport {
    let mut report = RenderLoopReport {
        device: None,
        skipped: None,
        frames_rendered: 0,
        frames_written: 0,
        frames_dir: cfg.frames_dir.clone(),
        frame_ms: None,
        validation: None,
    };
    let mut renderer = match HeadlessRenderer::new(&cfg.options) {
        Ok(r) => r,
        Err(e) => {
            let reason = format!("no Vulkan rendering: {e}");
            let _ = ready.send(Err(reason.clone()));
            report.skipped = Some(reason);
            return report;
        }
    };
    report.device = Some(renderer.device_name().to_string());
    let _ = ready.send(Ok(renderer.device_name().to_string()));
    let mut frame_ns = Histogram::new();
    // frames.csv: which tick each frame shows, where the tool was and the force on the hand.
    let mut index = match &cfg.frames_dir {
        Some(dir) => match File::create(dir.join("frames.csv")) {
            Ok(f) => {
                let mut w = BufWriter::new(f);
                let _ = writeln!(w, "frame,tick,tool_x_m,tool_y_m,tool_z_m,force_n");
                Some(w)
            }
            Err(e) => {
                report.skipped = Some(format!(
                    "cannot write {}: {e}",
                    dir.join("frames.csv").display()
                ));
                return report;
            }
        },
        None => None,
    };
    let mut last_frame: Option<Instant> = None;
    let mut have_snapshot = false;
    let mut fine_positions: Vec<[f32; 3]> = Vec::new();
    let mut whole_revision: Option<u64> = None;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        have_snapshot |= snapshots.update();
        let due = last_frame.is_none_or(|t| t.elapsed() >= cfg.frame_interval);
        if have_snapshot && (due || stopping) {
            last_frame = Some(Instant::now());
            let snap = snapshots.read();
            // The fine surface while the tissue is as it started (its first surface revision).
            let whole =
                *whole_revision.get_or_insert(snap.surface_revision) == snap.surface_revision;
            let (positions, triangles): (&[[f32; 3]], &[[u32; 3]]) =
                match (&cfg.embedded_surface, whole) {
                    (Some(view), true) if !view.triangles.is_empty() => {
                        view.positions(&snap.tissue_positions_m, &mut fine_positions);
                        (&fine_positions, &view.triangles)
                    }
                    _ => (&snap.tissue_positions_m, &snap.surface_triangles),
                };
            let scene = RenderScene {
                tissue_positions_m: positions,
                tissue_triangles: triangles,
                tool_center_m: snap.tool_center_in_world_m,
                tool_radius_m: snap.tool_radius_m,
                tool_force_n: snap.force_out_in_world_n,
            };
            let t0 = Instant::now();
            let image = match renderer.render(&scene, &cfg.camera) {
                Ok(img) => img,
                Err(e) => {
                    report.skipped = Some(format!(
                        "rendering stopped after {} frames: {e}",
                        report.frames_rendered
                    ));
                    break;
                }
            };
            frame_ns.record(t0.elapsed().as_nanos() as u64);
            if let Some(dir) = &cfg.frames_dir {
                let path = dir.join(format!("frame_{:05}.png", report.frames_rendered));
                if let Err(e) = image.save_png(&path) {
                    report.skipped = Some(format!("writing frames stopped: {e}"));
                    break;
                }
                report.frames_written += 1;
                if let Some(w) = index.as_mut() {
                    let [x, y, z] = snap.tool_center_in_world_m;
                    let f = snap.force_out_in_world_n;
                    let force = (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt();
                    let _ = writeln!(
                        w,
                        "{},{},{x},{y},{z},{force}",
                        report.frames_rendered, snap.tick
                    );
                }
            }
            report.frames_rendered += 1;
            if cfg.max_frames.is_some_and(|m| report.frames_rendered >= m) {
                break;
            }
        }
        if stopping {
            break;
        }
        thread::sleep(Duration::from_millis(2));
    }
    if let Some(mut w) = index {
        let _ = w.flush();
    }
    if frame_ns.count() > 0 {
        // Reported in milliseconds (3 decimals), with the same percentile fields.
        let ms = |ns: f64| (ns / 1e3).round() / 1e3;
        report.frame_ms = Some(Percentiles {
            p50: ms(frame_ns.quantile(0.50) as f64),
            p99: ms(frame_ns.quantile(0.99) as f64),
            p999: ms(frame_ns.quantile(0.999) as f64),
            max: ms(frame_ns.max() as f64),
            mean: ms(frame_ns.mean()),
        });
    }
    let v = renderer.validation();
    if v.enabled {
        report.validation = Some(v.into());
    }
    report
}
