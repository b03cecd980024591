//! The built-in rehearsal: a scripted probe palpating the phantom tissue block, headless.
//!
//! [`run_demo`] assembles the system as `docs/architecture.md` describes it (haptic thread,
//! render thread, recorder thread, control on the calling thread), runs it for a number of
//! ticks, and returns a [`DemoReport`]. A stop request (Ctrl-C / SIGTERM through `interrupt`)
//! zeroes the force on the next tick, flushes and closes the log, and ends cleanly.
//! `--require-render` is checked before anything is simulated.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nalgebra::{Isometry3, Matrix3, Point3, Rotation3, Translation3, UnitQuaternion, Vector3};

use crate::bus::{self, Command, TickRecord};
use crate::display::{self, Display};
use crate::haptics::arm::{ArmConfig, ArmDevice, ArmProtocol, EmulatedArm};
use crate::haptics::device::HapticDevice;
use crate::haptics::haptic_loop::{self, CoreConfig, HapticCore, LoopConfig, SceneSnapshot};
use crate::haptics::pointer::{pointer_channel, PointerDevice};
use crate::haptics::polhem::PolhemProtocol;
use crate::haptics::replay::ReplayDevice;
use crate::haptics::rt::RealtimeStatus;
use crate::haptics::sim::{Script, ScriptedProbe};
use crate::haptics::transport::InProcessTransport;
use crate::haptics::watchdog::{
    ArmZeroer, ForceZeroer, Heartbeat, Watchdog, WatchdogConfig, WatchdogReport,
};
use crate::haptics::woodenhaptics::{
    CurrentMonitor, EmulatedFaults, EmulatedWoodenHaptics, WoodenHaptics, WoodenHapticsProtocol,
};
use crate::render::material;
use crate::render::{Camera, RenderOptions};
use crate::render_loop::{
    EmbeddedView, RenderLoopConfig, RenderLoopReport, SceneSetup, ValidationSummary,
};
use crate::score::performer::{performance, Skill};
use crate::session::scenario::{CaseGeometry, Scenario, DEFAULT_SCENARIO};
use crate::session::{self, LogHeader};
use crate::stats::Percentiles;
use crate::tissue::{Material, TetMesh, Tissue};

/// Capacity of the telemetry queue: 16 s of ticks at 1 kHz before a drop.
pub const TELEMETRY_CAPACITY: usize = 16_384;
/// Capacity of the command queue.
pub const COMMAND_CAPACITY: usize = 64;

/// Settings of a demo run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Simulated seconds (ticks = seconds * 1000); `None`: as long as the scripted
    /// performance for the simulated device and the emulated arms, the scenario's time limit
    /// for a device in the hand.
    pub seconds: Option<f64>,
    /// Output folder: the session log and `frames/`.
    pub out_dir: PathBuf,
    /// Render frames (headless Vulkan).
    pub render: bool,
    /// Fail when rendering is unavailable instead of going on without it.
    pub require_render: bool,
    /// Frames per second rendered and written.
    pub fps: f64,
    /// Frame size in pixels.
    pub width: u32,
    /// Frame size in pixels.
    pub height: u32,
    /// Turn the Vulkan validation layers on.
    pub validation: bool,
    /// Ask for real-time scheduling for the haptic thread.
    pub realtime: bool,
    /// Which device plays the palpation.
    pub device: DemoDevice,
    /// The tissue it runs on.
    pub case: DemoCase,
    /// Tet budget of the phantom twin.
    pub tets: usize,
    /// Where a real device's calibration and registration files are
    /// (`<profile>.toml`, `<profile>-registration.toml`, as `haptwin calibrate` writes them);
    /// missing files fall back to the shipped calibration and the demo's placement.
    pub calibration_dir: Option<PathBuf>,
    /// Where the rehearsal is shown: headless images (`demo`), a window, or a headset.
    pub display: Display,
    /// Views per frame of the headless display (2: stereo pairs, as `run` writes them).
    pub views: u32,
    /// Colour the tissue by strain.
    pub strain_overlay: bool,
    /// End the run after this many frames on the display (`None`: after `seconds`).
    pub max_frames: Option<u64>,
    /// The scenario played.
    pub scenario: Scenario,
    /// Who the simulated device plays (its scripted performance of the scenario).
    pub skill: Skill,
    /// Seed of the scripted performance.
    pub seed: u64,
}

/// The tissue the demo runs on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DemoCase {
    /// The built-in phantom twin: a liver-like organ with a stiffer tumour and a vessel,
    /// meshed to the demo's tet budget.
    #[default]
    Phantom,
    /// The 10 x 3.75 x 10 cm block of liver-like tissue ([`phantom_block`]).
    Block,
    /// A twin file (`haptwin twin build` or `haptwin twin phantom` writes them).
    File(PathBuf),
}

impl std::str::FromStr for DemoCase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "phantom" => Ok(Self::Phantom),
            "block" => Ok(Self::Block),
            _ if s.ends_with(".twin") => Ok(Self::File(PathBuf::from(s))),
            other => Err(format!(
                "unknown case {other:?}: use \"phantom\", \"block\" or a .twin file"
            )),
        }
    }
}

/// Tets of the demo's phantom twin: what one core steps well inside a 1 ms tick.
pub const DEMO_TETS: usize = 4_000;

/// Voxel size the demo samples the phantom at, metres.
pub const DEMO_PHANTOM_VOXEL_M: f64 = 2e-3;

/// A demo case made ready: its tissue in the world frame, its case id, its materials (for the
/// log), and its fine render surface, if it has one.
#[derive(Debug)]
pub struct CaseTissue {
    /// The tissue.
    pub tissue: Tissue,
    /// Pseudonymous case id.
    pub case_id: String,
    /// Materials per label, as JSON.
    pub materials: serde_json::Value,
    /// What the renderer needs besides the snapshots: tets, particle labels, the twin's fine
    /// surface (instructions and the gauge's scale are filled in by the run).
    pub scene: SceneSetup,
    /// The label of each tet ([`crate::twin::labels::Label`] values).
    pub tet_labels: Vec<u8>,
}

/// The tissue of a demo case.
pub fn case_tissue(case: &DemoCase, tets: usize) -> Result<CaseTissue, DemoError> {
    use crate::twin::{build, format::Twin, tets::TetOptions};
    let twin = match case {
        DemoCase::Block => {
            let m = Material::LIVER;
            let tissue = phantom_block();
            let scene = SceneSetup {
                tets: tissue.tets().to_vec(),
                particle_labels: vec![material::PARENCHYMA; tissue.particle_count()],
                ..SceneSetup::default()
            };
            return Ok(CaseTissue {
                tet_labels: vec![crate::twin::labels::Label::Parenchyma as u8; tissue.tet_count()],
                tissue,
                case_id: "phantom-block".into(),
                materials: serde_json::json!([{
                    "label": 1,
                    "youngs_modulus_pa": m.youngs_modulus_pa,
                    "poisson_ratio": m.poisson_ratio,
                    "density_kg_per_m3": m.density_kg_per_m3,
                }]),
                scene,
            });
        }
        DemoCase::Phantom => build::phantom_twin(
            DEMO_PHANTOM_VOXEL_M,
            &TetOptions {
                target_tets: tets,
                ..TetOptions::default()
            },
        )
        .map_err(|e| DemoError::Case {
            case: "phantom".into(),
            problem: e.to_string(),
        })?,
        DemoCase::File(path) => Twin::load(path).map_err(|e| DemoError::Case {
            case: path.display().to_string(),
            problem: e.to_string(),
        })?,
    };
    let to_world = build::patient_to_world(&twin);
    let tissue = build::to_tissue(&twin, &to_world);
    let materials = serde_json::to_value(&twin.header.materials).unwrap_or_default();
    let s = &twin.surface;
    // Each label's surface has vertices of its own, so a vertex takes its triangles' label.
    let mut vertex_labels = vec![material::DEFAULT; s.vertices_m.len()];
    for (t, &label) in s.triangles.iter().zip(&s.triangle_labels) {
        for &v in t {
            if let Some(l) = vertex_labels.get_mut(v as usize) {
                *l = label.min(material::CUT - 1);
            }
        }
    }
    let embedded = (!s.triangles.is_empty()).then(|| EmbeddedView {
        tets: twin.mesh.tets.clone(),
        vertex_tets: s.vertex_tets.clone(),
        vertex_barycentric: s.vertex_barycentric.clone(),
        triangles: s.triangles.clone(),
        vertex_labels,
    });
    // A particle shows the most telling label of its tets: tumour, then vessel, then any.
    let rank = |l: u8| match l {
        material::TUMOUR => 3,
        material::VESSEL => 2,
        0 => 0,
        _ => 1,
    };
    let mut particle_labels = vec![material::DEFAULT; tissue.particle_count()];
    for (tet, &label) in twin.mesh.tets.iter().zip(&twin.mesh.tet_labels) {
        let label = label.min(material::CUT - 1);
        for &p in tet {
            if let Some(cur) = particle_labels.get_mut(p as usize) {
                if rank(label) > rank(*cur) {
                    *cur = label;
                }
            }
        }
    }
    Ok(CaseTissue {
        tet_labels: twin.mesh.tet_labels.clone(),
        scene: SceneSetup {
            tets: tissue.tets().to_vec(),
            particle_labels,
            embedded,
            ..SceneSetup::default()
        },
        tissue,
        case_id: twin.header.provenance.case_id.clone(),
        materials,
    })
}

/// The device the demo's palpation runs on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DemoDevice {
    /// The simulated probe: the script is the tip position, in the world frame.
    #[default]
    Simulated,
    /// An emulated WoodenHaptics 1.5: the script moves the arm, whose encoder counts travel as
    /// HID report bytes and go back through the codec and kinematics, and forces go out as
    /// motor currents (`calibration/woodenhaptics.toml`).
    EmulatedWoodenHaptics,
    /// An emulated Haptikfabriken Polhem, the same way through its own report layout
    /// (`calibration/polhem.toml`).
    EmulatedPolhem,
    /// The device stream of a recorded session log, played back tick by tick (the run lasts
    /// as long as the recording); every force written is checked against the recording.
    Replay(PathBuf),
    /// A real WoodenHaptics 1.5 on USB HID (the hand moves it; no script).
    WoodenHaptics,
    /// A real Haptikfabriken Polhem on USB HID.
    Polhem,
    /// A descriptor-driven generic HID device: a shipped profile's name
    /// (`calibration/generic/NAME.toml`) or a profile file's path.
    Generic(String),
    /// The display's pointer: the window's mouse and keyboard, or a headset's controller
    /// ([`crate::haptics::pointer`]); no force reaches the hand.
    Pointer,
}

impl std::str::FromStr for DemoDevice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sim" | "simulated" => Ok(Self::Simulated),
            "emulated:woodenhaptics" => Ok(Self::EmulatedWoodenHaptics),
            "emulated:polhem" => Ok(Self::EmulatedPolhem),
            "woodenhaptics" => Ok(Self::WoodenHaptics),
            "polhem" => Ok(Self::Polhem),
            "pointer" => Ok(Self::Pointer),
            _ if s.starts_with("generic:") && s.len() > "generic:".len() => {
                Ok(Self::Generic(s["generic:".len()..].to_string()))
            }
            other => match other.strip_prefix("replay:") {
                Some(path) if !path.is_empty() => Ok(Self::Replay(PathBuf::from(path))),
                _ => Err(format!(
                    "unknown device {other:?}: use \"sim\", \"emulated:woodenhaptics\", \
                     \"emulated:polhem\", \"woodenhaptics\", \"polhem\", \"generic:PROFILE\", \
                     \"pointer\" or \"replay:LOG\""
                )),
            },
        }
    }
}

/// The demo's emulated WoodenHaptics (shipped calibration) with the palpation moved into its
/// frame (see [`woodenhaptics_to_world`], which the loop must use as its device-to-world
/// transform), and a monitor of the currents it drives.
pub fn emulated_woodenhaptics(
    dt_s: f64,
    faults: EmulatedFaults,
) -> (
    WoodenHaptics<InProcessTransport<EmulatedWoodenHaptics>>,
    CurrentMonitor,
) {
    emulated_arm::<WoodenHapticsProtocol>(dt_s, faults)
}

/// The demo's emulated arm speaking protocol `P` (its shipped calibration), placed as
/// [`woodenhaptics_to_world`] says, playing the palpation; and a monitor of its currents.
pub fn emulated_arm<P: ArmProtocol>(
    dt_s: f64,
    faults: EmulatedFaults,
) -> (
    ArmDevice<InProcessTransport<EmulatedArm<P>>, P>,
    CurrentMonitor,
) {
    emulated_arm_playing::<P>(dt_s, faults, &Script::palpation())
}

/// [`emulated_arm`] playing `script_in_world` (a scenario's scripted performance) instead; the
/// arm reports positions only (its buttons are not emulated).
pub fn emulated_arm_playing<P: ArmProtocol>(
    dt_s: f64,
    faults: EmulatedFaults,
    script_in_world: &Script,
) -> (
    ArmDevice<InProcessTransport<EmulatedArm<P>>, P>,
    CurrentMonitor,
) {
    let config = ArmConfig::<P>::default_design();
    let to_device = woodenhaptics_to_world().inverse();
    let script = script_in_world.mapped(|p| {
        to_device
            .transform_point(&Point3::from(Vector3::from(p)))
            .coords
            .into()
    });
    let emulator = EmulatedArm::<P>::new(config.clone(), script, dt_s).with_faults(faults);
    let monitor = emulator.monitor();
    let name = format!("{} (emulated, in-process HID transport)", P::NAME);
    let device = ArmDevice::new(InProcessTransport::new(emulator), config, &name);
    (device, monitor)
}

/// Opens a generic HID device by a shipped profile's name or a profile file's path.
fn open_generic(which: &str) -> Result<Box<dyn HapticDevice>, DemoError> {
    use crate::haptics::generic::{open_hidapi, GenericProfile};
    let fail = |problem: String| DemoError::Device {
        device: "generic",
        problem,
    };
    let profile = match GenericProfile::shipped(which) {
        Some(p) => p,
        None => GenericProfile::load(Path::new(which)),
    }
    .map_err(|e| fail(e.to_string()))?;
    let api = hidapi::HidApi::new().map_err(|e| fail(format!("cannot list HID devices: {e}")))?;
    let (device, _) = open_hidapi(&api, &profile).map_err(|e| fail(e.to_string()))?;
    Ok(Box::new(device))
}

/// A real arm, opened for the demo.
struct RealArm {
    device: Box<dyn HapticDevice>,
    device_to_world: Isometry3<f64>,
    zeroer: Box<dyn ForceZeroer>,
}

/// Opens the first arm with `P`'s VID:PID over hidapi, with its calibration from `dir` (or the
/// shipped one), behind a reconnecting transport, and a second handle for the watchdog.
fn open_real_arm<P: ArmProtocol>(dir: Option<&Path>) -> Result<RealArm, DemoError> {
    use crate::haptics::calibrate::Registration;
    use crate::haptics::reconnect::{HidapiOpener, ReconnectingTransport};
    use crate::haptics::transport::HidapiTransport;
    let fail = |problem: String| DemoError::Device {
        device: P::PROFILE,
        problem,
    };
    let known = crate::haptics::profiles::KNOWN_DEVICES
        .iter()
        .find(|d| d.profile == P::PROFILE)
        .ok_or_else(|| fail("no such profile".into()))?;
    let config_path = dir.map(|d| d.join(format!("{}.toml", P::PROFILE)));
    let config = match &config_path {
        Some(p) if p.exists() => ArmConfig::<P>::load(p).map_err(|e| fail(e.to_string()))?,
        _ => ArmConfig::<P>::default_design(),
    };
    let reg_path = dir.map(|d| d.join(format!("{}-registration.toml", P::PROFILE)));
    let device_to_world = match &reg_path {
        Some(p) if p.exists() => Registration::load(p, P::PROFILE)
            .map_err(|e| fail(e.to_string()))?
            .device_to_world(),
        _ => woodenhaptics_to_world(),
    };
    let api = hidapi::HidApi::new().map_err(|e| fail(format!("cannot list HID devices: {e}")))?;
    let info = api
        .device_list()
        .find(|d| d.vendor_id() == known.vendor_id && d.product_id() == known.product_id)
        .ok_or_else(|| {
            fail(format!(
                "no {} ({:04x}:{:04x}) is plugged in (`haptwin devices` lists what is there)",
                known.name, known.vendor_id, known.product_id
            ))
        })?;
    let path = info.path().to_owned();
    let open = |what: &str| {
        HidapiTransport::open_path(&api, &path).map_err(|e| {
            fail(format!(
                "cannot open {} for {what}: {e} (`haptwin devices` checks access)",
                path.to_string_lossy()
            ))
        })
    };
    let main = open("the haptic loop")?;
    let second = open("the watchdog")?;
    let transport = ReconnectingTransport::new(
        main,
        HidapiOpener {
            vendor_id: known.vendor_id,
            product_id: known.product_id,
            path: Some(path.clone()),
        },
    )
    .map_err(|e| fail(format!("cannot start the hid-reconnect thread: {e}")))?;
    let name = format!("{} ({})", known.name, path.to_string_lossy());
    Ok(RealArm {
        device: Box::new(ArmDevice::new(transport, config, &name)),
        device_to_world,
        zeroer: Box::new(ArmZeroer::<_, P>::new(second)),
    })
}

/// Where the emulated arms (WoodenHaptics, Polhem) stand: their frame (x forward, y left, z up, origin at the
/// workspace centre) turned into the world's (y up, the user looking down -z), its workspace
/// centre 2 cm above the phantom's top centre.
pub fn woodenhaptics_to_world() -> Isometry3<f64> {
    let rotation = Rotation3::from_matrix_unchecked(Matrix3::new(
        0.0, -1.0, 0.0, //
        0.0, 0.0, 1.0, //
        -1.0, 0.0, 0.0,
    ));
    Isometry3::from_parts(
        Translation3::new(0.0, 0.02, 0.0),
        UnitQuaternion::from_rotation_matrix(&rotation),
    )
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            seconds: Some(5.0),
            out_dir: PathBuf::from("out/demo"),
            render: true,
            require_render: false,
            fps: 10.0,
            width: 640,
            height: 480,
            validation: false,
            realtime: true,
            device: DemoDevice::Simulated,
            case: DemoCase::Phantom,
            tets: DEMO_TETS,
            calibration_dir: None,
            display: Display::Headless,
            views: 1,
            strain_overlay: false,
            max_frames: None,
            scenario: Scenario::find(DEFAULT_SCENARIO).expect("the default scenario is built in"),
            skill: Skill::Expert,
            seed: 0,
        }
    }
}

/// Lateness percentiles, microseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LatenessUs {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// Work-time percentiles, microseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkUs {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// What the render thread did, as reported by `demo --json`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
// Made once per run and printed: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum RenderStatus {
    /// Frames were rendered on this Vulkan device.
    Rendered {
        device: String,
        /// `headless`, `window` or `xr`.
        display: String,
        /// Views per frame (2: stereo).
        views: u32,
        frames_dir: Option<PathBuf>,
        /// CPU time per frame, milliseconds.
        frame_ms: Option<Percentiles>,
        /// GPU time per frame (timestamp queries), milliseconds.
        gpu_ms: Option<Percentiles>,
        /// Validation-layer findings (with `--validation`).
        validation: Option<ValidationSummary>,
        /// What the display adds (OpenXR states and frames, window presents and input).
        details: Option<serde_json::Value>,
        note: Option<String>,
    },
    /// Rendering was skipped, and why.
    Skipped { reason: String },
}

/// The outcome of a demo run (`haptwin demo --json` prints it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoReport {
    /// Haptic ticks run.
    pub ticks: u64,
    /// Wall-clock seconds of the haptic loop.
    pub seconds: f64,
    /// Achieved tick rate.
    pub rate_hz: f64,
    /// How late ticks started after their deadlines.
    pub lateness_us: LatenessUs,
    /// How long a tick's work took.
    pub tick_work_us: WorkUs,
    /// Ticks that started more than a period late.
    pub overruns: u64,
    /// Telemetry records the haptic thread could not hand to the recorder.
    pub telemetry_dropped: u64,
    /// Frames rendered.
    pub frames_rendered: u64,
    /// Largest force sent to the device, newtons.
    pub peak_force_n: f64,
    /// Force on the last tick (zero: the session ended safely), newtons.
    pub final_force_n: [f64; 3],
    /// The session log.
    pub log_path: PathBuf,
    /// Tick records in the log.
    pub log_records: u64,
    /// The renderer used, or why it was skipped.
    pub render: RenderStatus,
    /// Real-time scheduling of the haptic thread.
    pub realtime: RealtimeStatus,
    /// Ticks with a fault flag.
    pub fault_ticks: u64,
    /// Why the session ended: `"completed"`, `"interrupted"` (Ctrl-C, SIGTERM) or
    /// `"ended on the display"` (window closed, headset session left, frames asked for in).
    pub stop_reason: String,
    /// Tissue size.
    pub tissue: TissueSummary,
    /// What the haptic watchdog did (devices with a second path to their amplifiers).
    pub watchdog: Option<WatchdogReport>,
    /// For a replay: how the forces written compared with the recording.
    pub replay: Option<ReplaySummary>,
    /// The scenario played.
    pub scenario: String,
    /// The session's score card, against the scenario's shipped benchmark
    /// (`None` when the log could not be read back).
    pub score: Option<crate::score::card::ScoreCard>,
    /// Where the score card was written (`score.json` beside the log).
    pub score_path: Option<PathBuf>,
    /// Where the HTML report was written (`report.html` beside the log).
    pub report_path: Option<PathBuf>,
}

/// How a replay's forces compared with its recording.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplaySummary {
    /// Forces compared.
    pub compared: u64,
    /// Forces that differed in any bit.
    pub mismatches: u64,
    /// The first tick that differed.
    pub first_mismatch_tick: Option<u64>,
}

/// The size of the simulated tissue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TissueSummary {
    pub particles: usize,
    pub tets: usize,
    pub surface_triangles: usize,
}

/// Errors of a demo run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The output folder could not be made.
    #[error("cannot create output folder {path}: {source}")]
    OutDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the {thread} thread: {source}")]
    Thread {
        thread: &'static str,
        source: std::io::Error,
    },
    /// The session log failed.
    #[error(transparent)]
    Log(#[from] session::LogError),
    /// Rendering was required but unavailable.
    #[error("rendering was required (--require-render) but {0}")]
    RenderRequired(String),
    /// The pointer device was asked for without a window or headset to point with.
    #[error("the pointer device follows a window's mouse or a headset's controller: use --display window or xr (or another --device)")]
    PointerWithoutDisplay,
    /// A thread panicked.
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    /// A real device could not be opened, or its calibration is invalid.
    #[error("{device}: {problem}")]
    Device {
        device: &'static str,
        problem: String,
    },
    /// The case could not be made or loaded.
    #[error("case {case}: {problem}")]
    Case { case: String, problem: String },
    /// A log cannot be replayed.
    #[error("cannot replay {path}: {source}")]
    Replay {
        path: PathBuf,
        source: crate::haptics::replay::ReplayError,
    },
}

/// The phantom used by the demo: a 10 x 3.75 x 10 cm block of liver-like tissue lying on a
/// table (bottom face fixed), top face at y = 0.
pub fn phantom_block() -> Tissue {
    let min = Vector3::new(-0.05, -0.0375, -0.05);
    let mesh = TetMesh::block(min, Vector3::new(0.05, 0.0, 0.05), [8, 3, 8]);
    Tissue::new(&mesh, Material::LIVER, |p| p.y <= min.y + 1e-9)
}

/// How long `--require-render` waits for Vulkan to be set up.
pub const RENDER_SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the demo. The haptic thread reads `interrupt` every tick; when it is set (e.g. by a
/// SIGINT/SIGTERM handler), the next tick writes zero force and is the last, and the session
/// closes cleanly (log flushed and closed, `stop_reason` `"interrupted"`).
pub fn run_demo(opts: &DemoOptions, interrupt: Arc<AtomicBool>) -> Result<DemoReport, DemoError> {
    let frames_dir = opts.out_dir.join("frames");
    let mkdir = |p: &Path| {
        fs::create_dir_all(p).map_err(|source| DemoError::OutDir {
            path: p.to_path_buf(),
            source,
        })
    };
    mkdir(&opts.out_dir)?;
    if opts.render {
        mkdir(&frames_dir)?;
        // Frames of an earlier run in the same folder would be mistaken for this run's.
        if let Ok(entries) = fs::read_dir(&frames_dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "png") {
                    let _ = fs::remove_file(p);
                }
            }
        }
    }

    let mut core_cfg = CoreConfig {
        tool_radius_m: opts.scenario.tip_radius_m,
        instrument: opts.scenario.instrument_config(),
        ..CoreConfig::default()
    };
    let CaseTissue {
        tissue,
        case_id,
        materials,
        scene: mut scene_setup,
        tet_labels,
    } = case_tissue(&opts.case, opts.tets)?;
    let geometry = CaseGeometry::of(&tissue, &tet_labels);
    let rest_tissue = tissue.clone();
    let mut script_s = None;
    let tissue_summary = TissueSummary {
        particles: tissue.particle_count(),
        tets: tissue.tet_count(),
        surface_triangles: tissue.surface_triangles().len(),
    };
    // The emulated arms get a watchdog on their second (zero) port, as real ones do on a
    // second hidraw handle; the simulated probe has no amplifiers to cut.
    let mut zero_port = None;
    let mut replay = None;
    let mut hid_zeroer: Option<Box<dyn ForceZeroer>> = None;
    let mut replay_ticks = None;
    let mut pointer = None;
    let device: Box<dyn HapticDevice> = match &opts.device {
        DemoDevice::Pointer => {
            let source = match opts.display {
                Display::Window => "window",
                Display::Xr => "openxr controller",
                Display::Headless => return Err(DemoError::PointerWithoutDisplay),
            };
            if !opts.render {
                return Err(DemoError::PointerWithoutDisplay);
            }
            let (tx, rx) = pointer_channel();
            pointer = Some(tx);
            // The pointer's targets are in the world frame.
            core_cfg.device_to_world = Isometry3::identity();
            Box::new(PointerDevice::new(rx, source))
        }
        DemoDevice::Simulated => {
            let script = performance(&opts.scenario, &tissue, &geometry, opts.skill, opts.seed);
            script_s = Some(script.period_s());
            Box::new(ScriptedProbe::new(script, core_cfg.step.dt_s))
        }
        DemoDevice::EmulatedWoodenHaptics => {
            core_cfg.device_to_world = woodenhaptics_to_world();
            let script = performance(&opts.scenario, &tissue, &geometry, opts.skill, opts.seed);
            script_s = Some(script.period_s());
            let (device, _) = emulated_arm_playing::<WoodenHapticsProtocol>(
                core_cfg.step.dt_s,
                EmulatedFaults::default(),
                &script,
            );
            zero_port = Some(device.transport().device().zero_port());
            Box::new(device)
        }
        DemoDevice::EmulatedPolhem => {
            core_cfg.device_to_world = woodenhaptics_to_world();
            let script = performance(&opts.scenario, &tissue, &geometry, opts.skill, opts.seed);
            script_s = Some(script.period_s());
            let (device, _) = emulated_arm_playing::<PolhemProtocol>(
                core_cfg.step.dt_s,
                EmulatedFaults::default(),
                &script,
            );
            zero_port = Some(device.transport().device().zero_port());
            Box::new(device)
        }
        DemoDevice::Replay(path) => {
            // Read whole before the new log is created (it may be the same file).
            let log = session::SessionLog::open(path)?;
            let device = ReplayDevice::from_log(&log).map_err(|e| DemoError::Replay {
                path: path.clone(),
                source: e,
            })?;
            replay = Some(device.verification());
            replay_ticks = Some(device.len() as u64);
            // The recording holds world-frame positions.
            core_cfg.device_to_world = Isometry3::identity();
            Box::new(device)
        }
        DemoDevice::WoodenHaptics => {
            let real = open_real_arm::<WoodenHapticsProtocol>(opts.calibration_dir.as_deref())?;
            core_cfg.device_to_world = real.device_to_world;
            hid_zeroer = Some(real.zeroer);
            real.device
        }
        DemoDevice::Polhem => {
            let real = open_real_arm::<PolhemProtocol>(opts.calibration_dir.as_deref())?;
            core_cfg.device_to_world = real.device_to_world;
            hid_zeroer = Some(real.zeroer);
            real.device
        }
        DemoDevice::Generic(which) => {
            core_cfg.device_to_world = woodenhaptics_to_world();
            open_generic(which)?
        }
    };
    scene_setup.force_max_n = device.info().max_force_n as f32;
    scene_setup.strain_overlay = opts.strain_overlay;
    scene_setup.instructions = Some(opts.scenario.instructions.clone());
    let header = LogHeader {
        software_version: env!("CARGO_PKG_VERSION").into(),
        scenario: opts.scenario.name.clone(),
        case_id,
        device: device.info().name.clone(),
        dt_s: core_cfg.step.dt_s,
        tissue: serde_json::json!({
            "particles": tissue_summary.particles,
            "tets": tissue_summary.tets,
            "materials": materials,
            "substeps": core_cfg.step.substeps,
        }),
        tool_radius_m: core_cfg.tool_radius_m,
        coupling: serde_json::json!({
            "device_to_world": {
                "translation_m": core_cfg.device_to_world.translation.vector.as_slice(),
                "rotation_xyzw": core_cfg.device_to_world.rotation.coords.as_slice(),
            },
            "stall_ticks": core_cfg.stall_ticks,
            "force_smoothing_hz": core_cfg.force_smoothing_hz,
            "max_force_n": device.info().max_force_n,
            "max_force_rate_n_per_s": device.info().max_force_rate_n_per_s,
            "max_stiffness_n_per_m": device.info().max_stiffness_n_per_m,
            "virtual_coupling": core_cfg.coupling,
        }),
        seed: opts.seed,
        started_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        case: match &opts.case {
            DemoCase::Phantom => "phantom".into(),
            DemoCase::Block => "block".into(),
            DemoCase::File(p) => p.display().to_string(),
        },
        tets: opts.tets,
        instrument: Some(core_cfg.instrument),
        calibration_digest: String::new(),
    };
    let header = LogHeader {
        calibration_digest: LogHeader::digest_of(&header.coupling),
        ..header
    };

    let (tel_tx, tel_rx) = bus::queue::<TickRecord>(TELEMETRY_CAPACITY);
    let (_cmd_tx, cmd_rx) = bus::queue::<Command>(COMMAND_CAPACITY);
    let (publisher, subscriber) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let core = HapticCore::new(device, tissue, &core_cfg, cmd_rx, publisher)
        .with_stop_flag(interrupt.clone())
        .with_no_go(geometry.vessel_particles.clone());

    // The render thread first: with --require-render, a machine without Vulkan fails here,
    // before anything is simulated or recorded. Otherwise nobody waits for its set-up.
    let render_stop = Arc::new(AtomicBool::new(false));
    let display_ended = Arc::new(AtomicBool::new(false));
    let render = if opts.render {
        let cfg = RenderLoopConfig {
            frames_dir: Some(frames_dir.clone()),
            frame_interval: Duration::from_secs_f64(1.0 / opts.fps.max(0.1)),
            options: RenderOptions {
                width: opts.width,
                height: opts.height,
                validation: opts.validation,
                views: opts.views,
                ..RenderOptions::default()
            },
            camera: Camera::default_for_block(),
            max_frames: opts.max_frames,
            scene: scene_setup,
            before_frame: None,
            // Closing the window, the runtime ending the session or the frames asked for
            // being in ends the run (the loop below passes it on to the haptic thread).
            end_session: Some(display_ended.clone()),
        };
        let (handle, ready) =
            display::spawn(opts.display, subscriber, render_stop.clone(), cfg, pointer).map_err(
                |source| DemoError::Thread {
                    thread: "render",
                    source,
                },
            )?;
        if opts.require_render {
            let outcome = ready
                .recv_timeout(RENDER_SETUP_TIMEOUT)
                .unwrap_or_else(|_| Err("Vulkan set-up did not finish in time".into()));
            if let Err(reason) = outcome {
                render_stop.store(true, Ordering::Release);
                let _ = handle.join();
                return Err(DemoError::RenderRequired(reason));
            }
        }
        Some(handle)
    } else {
        None
    };

    let log_path = opts.out_dir.join("session.htlog");
    // The haptic thread sets it to tick 0's wall-clock deadline; the recorder logs it (CLCK).
    let start_clock = Arc::new(AtomicU64::new(0));
    let loop_defaults = LoopConfig::default();
    let (recorder_ctl, recorder) = session::spawn_recorder_with(
        &log_path,
        &header,
        tel_rx,
        session::RecorderOptions {
            clock: Some(session::StartClock {
                tick0_unix_ns: start_clock.clone(),
                period_ns: loop_defaults.period_ns,
            }),
        },
    )?;

    let seconds = opts.seconds.unwrap_or(match &opts.device {
        DemoDevice::Simulated | DemoDevice::EmulatedWoodenHaptics | DemoDevice::EmulatedPolhem => {
            script_s.unwrap_or(5.0)
        }
        _ => opts.scenario.time_limit_s,
    });
    let ticks = replay_ticks.unwrap_or((seconds / core_cfg.step.dt_s).round().max(1.0) as u64);
    let heartbeat = Heartbeat::new();
    let zeroer: Option<Box<dyn ForceZeroer>> = match zero_port {
        Some(port) => Some(Box::new(port)),
        None => hid_zeroer,
    };
    let watchdog = match zeroer {
        Some(zeroer) => Some(
            Watchdog::spawn(heartbeat.clone(), zeroer, WatchdogConfig::default()).map_err(
                |source| DemoError::Thread {
                    thread: "haptic-watchdog",
                    source,
                },
            )?,
        ),
        None => None,
    };
    let loop_cfg = LoopConfig {
        max_ticks: Some(ticks),
        realtime_priority: opts.realtime.then_some(80),
        heartbeat: Some(heartbeat),
        start_clock: Some(start_clock),
        ..loop_defaults
    };
    let haptic =
        haptic_loop::spawn(core, tel_tx, loop_cfg).map_err(|source| DemoError::Thread {
            thread: "haptic",
            source,
        })?;

    // Control: the haptic thread reads the interrupt flag itself every tick (so a signal zeroes
    // the force within one tick); here we only wait for it to end.
    while !haptic.is_finished() {
        if display_ended.load(Ordering::Acquire) {
            interrupt.store(true, Ordering::Release);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let loop_result = haptic.join();
    let watchdog: Option<WatchdogReport> = watchdog.map(Watchdog::stop);
    let stop_reason = match (&loop_result, interrupt.load(Ordering::Acquire)) {
        (Err(_), _) => "haptic thread panicked",
        (Ok(_), true) if display_ended.load(Ordering::Acquire) => "ended on the display",
        (Ok(_), true) => "interrupted",
        (Ok(_), false) => "completed",
    };
    // Whatever happened on the haptic thread, close the log and stop the renderer.
    render_stop.store(true, Ordering::Release);
    recorder_ctl.finish(stop_reason);
    let recorder_result = recorder.join();
    let render_report: Option<RenderLoopReport> = match render {
        Some(h) => Some(h.join().map_err(|_| DemoError::Panicked("render"))?),
        None => None,
    };
    let loop_report = loop_result.map_err(|_| DemoError::Panicked("haptic"))?;
    let recorder_report = recorder_result.map_err(|_| DemoError::Panicked("recorder"))??;

    let render_status = match &render_report {
        None => RenderStatus::Skipped {
            reason: "rendering turned off (--no-render)".into(),
        },
        Some(r) => match &r.device {
            Some(device) if r.frames_rendered > 0 => RenderStatus::Rendered {
                device: device.clone(),
                display: r.display.clone(),
                views: r.views,
                frames_dir: r.frames_dir.clone(),
                frame_ms: r.frame_ms,
                gpu_ms: r.gpu_ms,
                validation: r.validation.clone(),
                details: r.details.clone(),
                note: r.skipped.clone(),
            },
            Some(device) => RenderStatus::Skipped {
                reason: r
                    .skipped
                    .clone()
                    .unwrap_or_else(|| format!("no frame was rendered on {device}")),
            },
            None => RenderStatus::Skipped {
                reason: r.skipped.clone().unwrap_or_else(|| "unknown".into()),
            },
        },
    };
    if opts.require_render {
        if let RenderStatus::Skipped { reason } = &render_status {
            return Err(DemoError::RenderRequired(reason.clone()));
        }
    }

    // Score what was recorded, on the tissue the session left.
    let mut score = None;
    let mut score_path = None;
    let mut report_path = None;
    if let Ok(log) = session::SessionLog::open(&log_path) {
        let mut card = crate::score::score_session(
            &log,
            &opts.scenario,
            &rest_tissue,
            &tet_labels,
            &geometry,
            loop_report.core.tissue(),
            None,
        );
        if let Some(b) = crate::score::benchmark::Benchmark::shipped(&opts.scenario.benchmark) {
            b.apply(&mut card);
        }
        let path = opts.out_dir.join("score.json");
        if let Ok(text) = serde_json::to_string_pretty(&card) {
            if fs::write(&path, text + "\n").is_ok() {
                score_path = Some(path);
            }
        }
        // The report, with snapshots from the frames this run rendered (if any).
        let shots = crate::review::snapshots_from_frames(&frames_dir, 4);
        let html = crate::score::report::build_report(&log, &card, &shots);
        let path = opts.out_dir.join("report.html");
        if fs::write(&path, html).is_ok() {
            report_path = Some(path);
        }
        score = Some(card);
    }

    let lat = Percentiles::of_ns_in_us(&loop_report.lateness_ns);
    let work = Percentiles::of_ns_in_us(&loop_report.work_ns);
    Ok(DemoReport {
        ticks: loop_report.ticks,
        seconds: loop_report.seconds,
        rate_hz: if loop_report.seconds > 0.0 {
            loop_report.ticks as f64 / loop_report.seconds
        } else {
            0.0
        },
        lateness_us: LatenessUs {
            p50: lat.p50,
            p99: lat.p99,
            p999: lat.p999,
            max: lat.max,
        },
        tick_work_us: WorkUs {
            p50: work.p50,
            p99: work.p99,
            max: work.max,
        },
        overruns: loop_report.overruns,
        telemetry_dropped: loop_report.telemetry_dropped,
        frames_rendered: render_report.as_ref().map_or(0, |r| r.frames_rendered),
        peak_force_n: loop_report.peak_force_n,
        final_force_n: loop_report.final_force_n,
        log_path,
        log_records: recorder_report.records,
        render: render_status,
        realtime: loop_report.realtime,
        fault_ticks: loop_report.fault_ticks,
        stop_reason: stop_reason.into(),
        tissue: tissue_summary,
        watchdog,
        replay: replay.map(|r| ReplaySummary {
            compared: r.compared(),
            mismatches: r.mismatches(),
            first_mismatch_tick: r.first_mismatch_tick(),
        }),
        scenario: opts.scenario.name.clone(),
        score,
        score_path,
        report_path,
    })
}
