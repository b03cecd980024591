//! Replay: re-runs a recorded session from its log's inputs and checks it bit for bit.
//!
//! The log's header says how the session was set up (case and tet budget, instrument, tool
//! radius, coupling, force smoothing, stall window, device limits); [`ReplaySetup::from_log`]
//! rebuilds the same haptic core around a [`ReplayDevice`] that plays back every device report
//! (samples, buttons, silences, faults) in the world frame. [`replay`] then steps the core once
//! per recorded tick, re-issuing the stops and emergency stops the record's flags show, and
//! compares every force it writes with the recorded one, bit for bit; the first divergence is
//! reported with both values. Because the tissue solver and the core are deterministic, a log
//! that was not tampered with replays with zero mismatches, including cuts, grasps and
//! punctures (their buttons are recorded inputs).
//!
//! Replays run as fast as the CPU allows, or paced at `speed` times real time; snapshots go to
//! an optional triple buffer, so a render thread can show or write frames of the replay.
//!
//! Contract: runs on the calling thread; no real-time scheduling; deterministic.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nalgebra::Isometry3;

use crate::bus::{self, tick_flags, Command, Publisher, QueueTx, Subscriber, TickRecord};
use crate::demo::{case_tissue, CaseTissue, DemoCase};
use crate::haptics::coupling::CouplingConfig;
use crate::haptics::haptic_loop::{CoreConfig, HapticCore, SceneSnapshot};
use crate::haptics::replay::{ReplayDevice, ReplayError as DeviceReplayError};
use crate::session::scenario::CaseGeometry;
use crate::session::SessionLog;

/// Why a log cannot be replayed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The header does not say which case the session ran on (logs from before replay).
    #[error("the log's header does not name its case: it was recorded by an older haptwin and cannot be re-simulated")]
    NoCase,
    /// The case could not be rebuilt (a twin file moved or changed).
    #[error("cannot rebuild case {case}: {problem}")]
    Case {
        /// The case.
        case: String,
        /// What went wrong.
        problem: String,
    },
    /// The rebuilt tissue is not the one recorded (different particle or tet count).
    #[error("the rebuilt case has {found} but the log recorded {recorded}: the twin file or haptwin's mesher changed")]
    TissueMismatch {
        /// What the log says.
        recorded: String,
        /// What was built.
        found: String,
    },
    /// The log cannot drive a replay device.
    #[error(transparent)]
    Device(#[from] DeviceReplayError),
}

/// A replay made ready: the core around the replay device, and what it runs on.
pub struct ReplaySetup {
    /// The core.
    pub core: HapticCore,
    /// The case, its tissue at rest as it was before the first tick.
    pub case: CaseTissue,
    /// What the scenario aims at.
    pub geometry: CaseGeometry,
    /// Subscriber of the core's snapshots (for a render thread).
    pub snapshots: Subscriber<SceneSnapshot>,
    commands: QueueTx<Command>,
}

impl std::fmt::Debug for ReplaySetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplaySetup")
            .field("ticks", &self.core.ticks())
            .finish_non_exhaustive()
    }
}

/// The core configuration a log's header describes (world-frame device: identity).
pub fn core_config_of(log: &SessionLog) -> CoreConfig {
    let h = &log.header;
    let mut cfg = CoreConfig {
        tool_radius_m: h.tool_radius_m,
        device_to_world: Isometry3::identity(),
        ..CoreConfig::default()
    };
    cfg.step.dt_s = h.dt_s;
    if let Some(n) = h.tissue["substeps"].as_u64() {
        cfg.step.substeps = n as u32;
    }
    if let Some(n) = h.coupling["stall_ticks"].as_u64() {
        cfg.stall_ticks = n as u32;
    }
    if !h.coupling.is_null() {
        cfg.force_smoothing_hz = h.coupling["force_smoothing_hz"].as_f64();
        cfg.coupling = serde_json::from_value::<Option<CouplingConfig>>(
            h.coupling["virtual_coupling"].clone(),
        )
        .unwrap_or(cfg.coupling);
    }
    if let Some(i) = h.instrument {
        cfg.instrument = i;
    }
    cfg
}

impl ReplaySetup {
    /// Rebuilds the session `log` recorded.
    pub fn from_log(log: &SessionLog) -> Result<Self, ReplayError> {
        let h = &log.header;
        if h.case.is_empty() {
            return Err(ReplayError::NoCase);
        }
        let case: DemoCase = h.case.parse().map_err(|problem| ReplayError::Case {
            case: h.case.clone(),
            problem,
        })?;
        let case = case_tissue(&case, h.tets).map_err(|e| ReplayError::Case {
            case: h.case.clone(),
            problem: e.to_string(),
        })?;
        let (p, t) = (case.tissue.particle_count(), case.tissue.tet_count());
        let (rp, rt) = (h.tissue["particles"].as_u64(), h.tissue["tets"].as_u64());
        if rp.is_some_and(|n| n as usize != p) || rt.is_some_and(|n| n as usize != t) {
            return Err(ReplayError::TissueMismatch {
                recorded: format!("{:?} particles, {:?} tets", rp, rt),
                found: format!("{p} particles, {t} tets"),
            });
        }
        let geometry = CaseGeometry::of(&case.tissue, &case.tet_labels);
        let device = ReplayDevice::from_log(log)?;
        let cfg = core_config_of(log);
        let (cmd_tx, cmd_rx) = bus::queue::<Command>(64);
        let (publisher, subscriber): (Publisher<SceneSnapshot>, _) =
            bus::triple_buffer(SceneSnapshot::for_tissue(&case.tissue));
        let core = HapticCore::new(
            Box::new(device),
            case.tissue.clone(),
            &cfg,
            cmd_rx,
            publisher,
        )
        .with_no_go(geometry.vessel_particles.clone());
        Ok(Self {
            core,
            case,
            geometry,
            snapshots: subscriber,
            commands: cmd_tx,
        })
    }
}

impl ReplaySetup {
    /// Takes the subscriber of the core's snapshots (for a render thread), leaving a detached
    /// one in its place.
    pub fn take_snapshots(&mut self) -> Subscriber<SceneSnapshot> {
        std::mem::replace(
            &mut self.snapshots,
            bus::triple_buffer(SceneSnapshot::default()).1,
        )
    }
}

/// How fast and how far a replay goes.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Pace at this multiple of real time (`None`: as fast as possible).
    pub speed: Option<f64>,
    /// Stop after this many ticks (`None`: all).
    pub max_ticks: Option<u64>,
}

/// Where a replay first differed from its recording.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Divergence {
    /// The tick.
    pub tick: u64,
    /// The recorded force, newtons.
    pub recorded_force_n: [f64; 3],
    /// The replayed force, newtons.
    pub replayed_force_n: [f64; 3],
    /// The recorded and replayed tool positions, metres.
    pub recorded_tool_m: [f64; 3],
    /// The replayed tool position, metres.
    pub replayed_tool_m: [f64; 3],
}

/// What a replay found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplayReport {
    /// Ticks re-simulated.
    pub ticks: u64,
    /// Forces compared with the recording (every tick).
    pub compared: u64,
    /// Forces that differed in any bit.
    pub mismatches: u64,
    /// Tool positions that differed in any bit.
    pub tool_mismatches: u64,
    /// The first divergence.
    pub first_divergence: Option<Divergence>,
    /// Wall-clock seconds the replay took.
    pub wall_s: f64,
    /// Simulated seconds replayed.
    pub simulated_s: f64,
    /// Simulated over wall-clock time.
    pub speed_x: f64,
    /// The log, when replayed from a file.
    pub log: Option<PathBuf>,
}

fn bits(v: [f64; 3]) -> [u64; 3] {
    v.map(f64::to_bits)
}

/// Replays `log` on `setup`'s core, calling `each` with every replayed record.
pub fn replay(
    setup: &mut ReplaySetup,
    log: &SessionLog,
    opts: &ReplayOptions,
    mut each: impl FnMut(&TickRecord, &TickRecord),
) -> ReplayReport {
    let dt_s = log.header.dt_s;
    let n = opts
        .max_ticks
        .map_or(log.records.len(), |m| (m as usize).min(log.records.len()));
    let start = Instant::now();
    let mut mismatches = 0;
    let mut tool_mismatches = 0;
    let mut first_divergence = None;
    let mut estop = false;
    for rec in &log.records[..n] {
        if rec.flags & tick_flags::EMERGENCY_STOP != 0 && !estop {
            let _ = setup.commands.push(Command::EmergencyStop);
            estop = true;
        } else if rec.flags & tick_flags::EMERGENCY_STOP == 0 && estop {
            let _ = setup.commands.push(Command::Resume);
            estop = false;
        }
        if rec.flags & tick_flags::STOPPING != 0 && rec.flags & tick_flags::EMERGENCY_STOP == 0 {
            setup.core.request_stop();
        }
        if let Some(speed) = opts.speed.filter(|s| *s > 0.0) {
            let due =
                Duration::from_secs_f64((rec.tick - log.records[0].tick) as f64 * dt_s / speed);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let got = setup.core.tick();
        if bits(got.force_out_in_world_n) != bits(rec.force_out_in_world_n) {
            mismatches += 1;
            first_divergence.get_or_insert(Divergence {
                tick: rec.tick,
                recorded_force_n: rec.force_out_in_world_n,
                replayed_force_n: got.force_out_in_world_n,
                recorded_tool_m: rec.tool_pos_in_world_m,
                replayed_tool_m: got.tool_pos_in_world_m,
            });
        }
        if bits(got.tool_pos_in_world_m) != bits(rec.tool_pos_in_world_m) {
            tool_mismatches += 1;
        }
        each(rec, &got);
    }
    let wall_s = start.elapsed().as_secs_f64();
    let simulated_s = n as f64 * dt_s;
    ReplayReport {
        ticks: n as u64,
        compared: n as u64,
        mismatches,
        tool_mismatches,
        first_divergence,
        wall_s,
        simulated_s,
        speed_x: if wall_s > 0.0 {
            simulated_s / wall_s
        } else {
            0.0
        },
        log: None,
    }
}
