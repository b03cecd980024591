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
use crate::render::{
    material, Camera, HeadlessRenderer, Panel, RenderOptions, RenderScene, ValidationReport,
    DEFAULT_IPD_M,
};
use crate::stats::{Histogram, Percentiles};

/// Settings of the render thread. With `frames_dir`, frames are written as `frame_NNNNN.png`
/// (stereo: `frame_NNNNN_left.png` and `frame_NNNNN_right.png`) and indexed in `frames.csv`
/// (frame, tick, tool centre in the world in metres, force in newtons).
#[derive(Clone)]
pub struct RenderLoopConfig {
    /// Where frames are written as PNG (`None`: render without writing).
    pub frames_dir: Option<PathBuf>,
    /// Time between frames.
    pub frame_interval: Duration,
    /// Renderer settings (`views: 2` renders both eyes, through multiview).
    pub options: RenderOptions,
    /// The viewpoint (the middle of the two eyes in stereo).
    pub camera: Camera,
    /// Stop after this many frames (`None`: until told to stop); the display then sets
    /// `end_session`.
    pub max_frames: Option<u64>,
    /// What the scene holds besides the snapshot: labels, the fine surface, the board.
    pub scene: SceneSetup,
    /// Called before each frame on the render thread (tests stall the renderer with it).
    pub before_frame: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    /// Set by the display when the user ends the session there (window closed, the OpenXR
    /// runtime asked the app to exit); the run watches it like Ctrl-C.
    pub end_session: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for RenderLoopConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderLoopConfig")
            .field("frames_dir", &self.frames_dir)
            .field("frame_interval", &self.frame_interval)
            .field("options", &self.options)
            .field("camera", &self.camera)
            .field("max_frames", &self.max_frames)
            .finish_non_exhaustive()
    }
}

/// What the scene needs besides the haptic thread's snapshots: fixed for a session.
#[derive(Debug, Clone, Default)]
pub struct SceneSetup {
    /// The tissue's tets (particle indices), for the strain overlay.
    pub tets: Vec<[u32; 4]>,
    /// The label of each particle ([`crate::render::material`] indices): colours the tet
    /// mesh's boundary when it is drawn (after a cut).
    pub particle_labels: Vec<u8>,
    /// A fine surface embedded in the tets (a twin's), drawn instead of the tet mesh's
    /// boundary while the tissue is whole.
    pub embedded: Option<EmbeddedView>,
    /// Colour the tissue by strain ([`STRAIN_FULL_SCALE`] is red).
    pub strain_overlay: bool,
    /// Instructions shown on the board (none: no board).
    pub instructions: Option<String>,
    /// The force gauge's full scale (the device's limit), newtons.
    pub force_max_n: f32,
}

/// Green-Lagrange strain (Frobenius norm) at which the overlay is red.
pub const STRAIN_FULL_SCALE: f32 = 0.15;

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
    /// The label of each vertex ([`crate::render::material`] indices; empty: default).
    pub vertex_labels: Vec<u8>,
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

    /// Interpolates a per-particle value at each vertex, into `out`.
    pub fn interpolate(&self, per_particle: &[f32], out: &mut Vec<f32>) {
        out.clear();
        for (&t, w) in self.vertex_tets.iter().zip(&self.vertex_barycentric) {
            let v = self.tets.get(t as usize).map_or(0.0, |tet| {
                (0..4)
                    .map(|k| w[k] * per_particle.get(tet[k] as usize).copied().unwrap_or(0.0))
                    .sum()
            });
            out.push(v);
        }
    }
}

/// Builds each frame's [`RenderScene`] from a snapshot and the session's [`SceneSetup`]:
/// the fine surface while the tissue is whole, the live tet boundary after a cut (faces that
/// were not on the original boundary are cut surface), the strain overlay, the board's text.
/// Owns its scratch buffers, so a frame allocates only when the scene grows.
#[derive(Debug, Default)]
pub struct SceneBuilder {
    setup: SceneSetup,
    whole_revision: Option<u64>,
    original_faces: std::collections::HashSet<[u32; 3]>,
    cut_revision: Option<u64>,
    rest_inverse: Vec<[[f32; 3]; 3]>,
    positions: Vec<[f32; 3]>,
    materials: Vec<u8>,
    particle_strain: Vec<f32>,
    particle_weight: Vec<f32>,
    overlay: Vec<f32>,
    text: String,
}

impl SceneBuilder {
    /// A builder for one session.
    pub fn new(setup: SceneSetup) -> Self {
        Self {
            setup,
            ..Self::default()
        }
    }

    /// Turns the strain overlay on or off (the headset's menu button does).
    pub fn set_strain_overlay(&mut self, on: bool) {
        self.setup.strain_overlay = on;
    }

    /// The scene of `snap`, borrowing from `snap` and from this builder.
    pub fn build<'a>(&'a mut self, snap: &'a SceneSnapshot) -> RenderScene<'a> {
        use std::fmt::Write as _;
        let first = self.whole_revision.is_none();
        let whole =
            *self.whole_revision.get_or_insert(snap.surface_revision) == snap.surface_revision;
        if first {
            self.original_faces = snap.surface_triangles.iter().map(|t| sorted(*t)).collect();
            self.rest_inverse = rest_inverses(&self.setup.tets, &snap.tissue_positions_m);
        }
        let overlay_on = self.setup.strain_overlay && !self.setup.tets.is_empty();
        if overlay_on {
            self.particle_strains(&snap.tissue_positions_m);
        }
        let embedded = self
            .setup
            .embedded
            .as_ref()
            .filter(|v| whole && !v.triangles.is_empty());
        let (positions, triangles): (&[[f32; 3]], &[[u32; 3]]) = match embedded {
            Some(view) => {
                view.positions(&snap.tissue_positions_m, &mut self.positions);
                if overlay_on {
                    view.interpolate(&self.particle_strain, &mut self.overlay);
                }
                self.materials.clear();
                self.materials.extend_from_slice(&view.vertex_labels);
                (&self.positions, &view.triangles)
            }
            None => {
                if overlay_on {
                    self.overlay.clear();
                    self.overlay.extend_from_slice(&self.particle_strain);
                }
                if self.cut_revision != Some(snap.surface_revision) {
                    self.cut_revision = Some(snap.surface_revision);
                    self.materials.clear();
                    self.materials
                        .extend_from_slice(&self.setup.particle_labels);
                    self.materials
                        .resize(snap.tissue_positions_m.len(), material::DEFAULT);
                    for t in &snap.surface_triangles {
                        if !self.original_faces.contains(&sorted(*t)) {
                            for &v in t {
                                let m = &mut self.materials[v as usize];
                                if *m != material::TUMOUR && *m != material::VESSEL {
                                    *m = material::CUT;
                                }
                            }
                        }
                    }
                }
                (&snap.tissue_positions_m, &snap.surface_triangles)
            }
        };
        if overlay_on {
            for v in self.overlay.iter_mut() {
                *v = (*v / STRAIN_FULL_SCALE).clamp(0.0, 1.0);
            }
        }
        let f = snap.force_out_in_world_n;
        let force_n = (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt();
        let panel = match &self.setup.instructions {
            Some(instructions) => {
                self.text.clear();
                let t_s = snap.tick as f64 / 1000.0;
                let _ = write!(
                    self.text,
                    "{instructions}\nTIME {:02}:{:04.1}\nFORCE {force_n:.2} N OF {:.1} N",
                    (t_s / 60.0).floor() as u64,
                    t_s % 60.0,
                    self.setup.force_max_n
                );
                Some(Panel::behind_the_table(
                    &self.text,
                    force_n,
                    self.setup.force_max_n,
                ))
            }
            None => None,
        };
        RenderScene {
            tissue_positions_m: positions,
            tissue_triangles: triangles,
            // The fine surface never changes; the live boundary changes with its revision.
            tissue_topology: if embedded.is_some() {
                1
            } else {
                snap.surface_revision.wrapping_add(2).max(2)
            },
            tissue_materials: &self.materials,
            tissue_overlay: if overlay_on { &self.overlay } else { &[] },
            tool_center_m: snap.tool_center_in_world_m,
            tool_radius_m: snap.tool_radius_m,
            tool_axis: [0.0; 3],
            tool_force_n: snap.force_out_in_world_n,
            panel,
        }
    }

    /// Per-particle strain: the mean over its tets of the Green-Lagrange strain's norm.
    fn particle_strains(&mut self, x: &[[f32; 3]]) {
        self.particle_strain.clear();
        self.particle_strain.resize(x.len(), 0.0);
        self.particle_weight.clear();
        self.particle_weight.resize(x.len(), 0.0);
        for (tet, inv) in self.setup.tets.iter().zip(&self.rest_inverse) {
            let Some(p) = tet
                .map(|i| x.get(i as usize).copied())
                .into_iter()
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let e = green_strain_norm([p[0], p[1], p[2], p[3]], inv);
            if !e.is_finite() {
                continue;
            }
            for &i in tet {
                self.particle_strain[i as usize] += e;
                self.particle_weight[i as usize] += 1.0;
            }
        }
        for (s, w) in self.particle_strain.iter_mut().zip(&self.particle_weight) {
            if *w > 0.0 {
                *s /= w;
            }
        }
    }
}

fn sorted(mut t: [u32; 3]) -> [u32; 3] {
    t.sort_unstable();
    t
}

/// The inverse of each tet's rest edge matrix `[x1 - x0, x2 - x0, x3 - x0]` (columns); a
/// degenerate tet gets zeros (no strain).
fn rest_inverses(tets: &[[u32; 4]], rest: &[[f32; 3]]) -> Vec<[[f32; 3]; 3]> {
    tets.iter()
        .map(|t| {
            let p = t.map(|i| rest.get(i as usize).copied().unwrap_or_default());
            let m = edges(&p);
            invert3(&m).unwrap_or([[0.0; 3]; 3])
        })
        .collect()
}

/// Edge matrix, columns `p1 - p0`, `p2 - p0`, `p3 - p0` (indexed `[column][row]`).
fn edges(p: &[[f32; 3]; 4]) -> [[f32; 3]; 3] {
    std::array::from_fn(|c| std::array::from_fn(|r| p[c + 1][r] - p[0][r]))
}

fn invert3(m: &[[f32; 3]; 3]) -> Option<[[f32; 3]; 3]> {
    // Columns a, b, c: inverse rows are (b x c, c x a, a x b) / det.
    let [a, b, c] = *m;
    let cross = |u: [f32; 3], v: [f32; 3]| {
        [
            u[1] * v[2] - u[2] * v[1],
            u[2] * v[0] - u[0] * v[2],
            u[0] * v[1] - u[1] * v[0],
        ]
    };
    let bc = cross(b, c);
    let det = a[0] * bc[0] + a[1] * bc[1] + a[2] * bc[2];
    if det.abs() < 1e-18 || !det.is_finite() {
        return None;
    }
    let rows = [bc, cross(c, a), cross(a, b)];
    // Inverse[column][row] = rows[row][column] / det.
    Some(std::array::from_fn(|col| {
        std::array::from_fn(|row| rows[row][col] / det)
    }))
}

/// ‖E‖ for E = ½(FᵀF − I), F = Ds Dm⁻¹.
pub(crate) fn green_strain_norm(p: [[f32; 3]; 4], dm_inv: &[[f32; 3]; 3]) -> f32 {
    let ds = edges(&p);
    // F[col][row] = sum_k ds[k][row] * dm_inv[col][k]
    let f: [[f32; 3]; 3] = std::array::from_fn(|col| {
        std::array::from_fn(|row| (0..3).map(|k| ds[k][row] * dm_inv[col][k]).sum())
    });
    let mut sum = 0.0f32;
    for i in 0..3 {
        for j in 0..3 {
            let ftf: f32 = (0..3).map(|k| f[i][k] * f[j][k]).sum();
            let e = 0.5 * (ftf - if i == j { 1.0 } else { 0.0 });
            sum += e * e;
        }
    }
    sum.sqrt()
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
    /// Time per frame on the GPU (timestamp queries), milliseconds, when the device has them.
    pub gpu_ms: Option<Percentiles>,
    /// Views per frame (2: stereo).
    pub views: u32,
    /// The display: `headless`, `window` or `xr`.
    pub display: String,
    /// What the display adds (OpenXR: runtime, states reached, frames submitted; window: size,
    /// presents, input events).
    pub details: Option<serde_json::Value>,
    /// Validation-layer findings, when validation was on.
    pub validation: Option<ValidationSummary>,
}

impl RenderLoopReport {
    /// An empty report.
    pub fn new(frames_dir: Option<PathBuf>, views: u32) -> Self {
        Self {
            device: None,
            skipped: None,
            frames_rendered: 0,
            frames_written: 0,
            frames_dir,
            frame_ms: None,
            gpu_ms: None,
            views,
            display: "headless".into(),
            details: None,
            validation: None,
        }
    }
}

/// Milliseconds percentiles of a histogram of nanoseconds, `None` when it is empty (the
/// frame-time fields of a [`RenderLoopReport`]).
pub fn ms_percentiles(h: &Histogram) -> Option<Percentiles> {
    (h.count() > 0).then(|| Percentiles::of_ns_in_ms(h))
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
    let views = cfg.options.views;
    let mut report = RenderLoopReport::new(cfg.frames_dir.clone(), views);
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
    let mut gpu_ns = Histogram::new();
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
    let mut builder = SceneBuilder::new(cfg.scene.clone());
    loop {
        let stopping = stop.load(Ordering::Acquire);
        have_snapshot |= snapshots.update();
        let due = last_frame.is_none_or(|t| t.elapsed() >= cfg.frame_interval);
        if have_snapshot && (due || stopping) {
            if let Some(hook) = &cfg.before_frame {
                hook(report.frames_rendered);
            }
            last_frame = Some(Instant::now());
            let snap = snapshots.read();
            let scene = builder.build(snap);
            let t0 = Instant::now();
            let rendered = if views == 2 {
                renderer
                    .render_stereo(&scene, &cfg.camera, DEFAULT_IPD_M)
                    .map(|(l, r)| vec![l, r])
            } else {
                renderer.render(&scene, &cfg.camera).map(|i| vec![i])
            };
            let images = match rendered {
                Ok(images) => images,
                Err(e) => {
                    report.skipped = Some(format!(
                        "rendering stopped after {} frames: {e}",
                        report.frames_rendered
                    ));
                    break;
                }
            };
            frame_ns.record(t0.elapsed().as_nanos() as u64);
            if let Some(ms) = renderer.last_gpu_ms() {
                gpu_ns.record((ms * 1e6) as u64);
            }
            if let Some(dir) = &cfg.frames_dir {
                let n = report.frames_rendered;
                let names: Vec<String> = if images.len() == 2 {
                    vec![
                        format!("frame_{n:05}_left.png"),
                        format!("frame_{n:05}_right.png"),
                    ]
                } else {
                    vec![format!("frame_{n:05}.png")]
                };
                let mut failed = None;
                for (image, name) in images.iter().zip(&names) {
                    if let Err(e) = image.save_png(&dir.join(name)) {
                        failed = Some(e);
                        break;
                    }
                }
                if let Some(e) = failed {
                    report.skipped = Some(format!("writing frames stopped: {e}"));
                    break;
                }
                report.frames_written += 1;
                if let Some(w) = index.as_mut() {
                    let [x, y, z] = snap.tool_center_in_world_m;
                    let f = snap.force_out_in_world_n;
                    let force = (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt();
                    let _ = writeln!(w, "{n},{},{x},{y},{z},{force}", snap.tick);
                }
            }
            report.frames_rendered += 1;
            if cfg.max_frames.is_some_and(|m| report.frames_rendered >= m) {
                // The frames asked for are in: the run ends with them.
                if let Some(flag) = &cfg.end_session {
                    flag.store(true, Ordering::Release);
                }
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
    report.frame_ms = ms_percentiles(&frame_ns);
    report.gpu_ms = ms_percentiles(&gpu_ns);
    let v = renderer.validation();
    if v.enabled {
        report.validation = Some(v.into());
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_tet() -> [[f32; 3]; 4] {
        [
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
        ]
    }

    #[test]
    fn strain_is_zero_at_rest_and_under_rotation_and_grows_with_stretch() {
        let rest = unit_tet();
        let inv = invert3(&edges(&rest)).unwrap();
        assert!(green_strain_norm(rest, &inv) < 1e-6);
        // A rigid rotation (90 degrees about z) and a translation: still no strain.
        let moved = rest.map(|p| [-p[1] + 3.0, p[0] - 1.0, p[2] + 2.0]);
        assert!(green_strain_norm(moved, &inv) < 1e-6);
        // Stretch x by 10 %: E_xx = ((1.1)^2 - 1) / 2 = 0.105.
        let stretched = rest.map(|p| [1.1 * p[0], p[1], p[2]]);
        assert!((green_strain_norm(stretched, &inv) - 0.105).abs() < 1e-5);
    }

    #[test]
    fn cut_faces_are_cut_surface_unless_tumour() {
        let positions = vec![[0.0f32; 3]; 5];
        let mut snap = SceneSnapshot {
            tissue_positions_m: positions,
            surface_triangles: vec![[0, 1, 2]],
            surface_revision: 1,
            ..SceneSnapshot::default()
        };
        let mut b = SceneBuilder::new(SceneSetup {
            particle_labels: vec![1, 1, 1, 2, 1],
            ..SceneSetup::default()
        });
        assert_eq!(b.build(&snap).tissue_materials, &[1, 1, 1, 2, 1]);
        // A cut exposes face (2, 3, 4): 2 and 4 become cut surface, the tumour stays.
        snap.surface_triangles.push([4, 3, 2]);
        snap.surface_revision = 2;
        assert_eq!(b.build(&snap).tissue_materials, &[1, 1, 6, 2, 6]);
    }

    #[test]
    fn board_text_has_time_and_force() {
        let snap = SceneSnapshot {
            tick: 75_300,
            force_out_in_world_n: [0.0, 3.0, 4.0],
            ..SceneSnapshot::default()
        };
        let mut b = SceneBuilder::new(SceneSetup {
            instructions: Some("PALPATE".into()),
            force_max_n: 8.0,
            ..SceneSetup::default()
        });
        let scene = b.build(&snap);
        let panel = scene.panel.unwrap();
        assert_eq!(panel.text, "PALPATE\nTIME 01:15.3\nFORCE 5.00 N OF 8.0 N");
        assert_eq!(panel.force_n, 5.0);
    }
}
