//! The haptic thread: it owns the device, the tool and the tissue, and runs at 1 kHz.
//!
//! One tick ([`HapticCore::tick`]):
//! 1. take pending [`Command`]s from the lock-free command queue;
//! 2. read the device (newest sample) and map the tip into the world (`device_to_world`);
//! 3. move the sphere tool: through the [`VirtualCoupling`] (a spring-damper to the tip, clamped
//!    to the device's passivity bound) or onto the tip, and step the tissue
//!    ([`crate::tissue::step`]);
//! 4. smooth the force on the hand (the coupling spring, or the contact force without one), pass
//!    it through the [`ForceGuard`] and write it to the device;
//! 5. publish a [`SceneSnapshot`] in place into the triple buffer;
//! 6. hand back the [`TickRecord`] (the loop adds timing and pushes it to the recorder queue).
//!
//! # Real-time contract
//! After [`HapticCore::new`] and the allocations in [`spawn`] before the first deadline, a tick
//! and the loop around it neither allocate, lock nor make system calls other than the deadline
//! timer (`clock_nanosleep`) and device I/O. The loop calls [`LoopConfig::realtime_hooks`] when it
//! enters and leaves that section, which is how `tests/it/realtime.rs` proves the contract with a
//! counting global allocator over 10,000 ticks. Force is zero within the tick in which a stop,
//! fault, stall or non-finite value appears.
//!
//! # Wall clock
//! Just before that section the loop stores the wall-clock instant of tick 0's deadline in
//! [`LoopConfig::start_clock`] (one atomic store). Tick `k` was due at that instant plus
//! `k` periods plus the lateness of every earlier tick flagged `OVERRUN` (an overrun
//! re-anchors the schedule on the present), and started its record's `lateness_ns` later.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{SystemTime, UNIX_EPOCH};

use nalgebra::{Isometry3, Point3, Vector3};

use super::coupling::{CouplingConfig, VirtualCoupling};
use super::device::{DeviceError, HapticDevice};
use super::instrument::{InstrumentConfig, InstrumentState};
use super::rt::{self, RealtimeStatus, Ticker};
use super::safety::{ForceGuard, GuardInput, SafetyLimits};
use super::watchdog::Heartbeat;
use crate::bus::{tick_flags, Command, Publisher, QueueRx, QueueTx, TickRecord};
use crate::stats::Histogram;
use crate::tissue::{StepParams, Tissue};

/// What the render thread sees of the simulation: written in place by the haptic thread.
#[derive(Debug, PartialEq, Default)]
pub struct SceneSnapshot {
    /// Tick at which the snapshot was taken.
    pub tick: u64,
    /// Tissue particle positions, world frame, metres.
    pub tissue_positions_m: Vec<[f32; 3]>,
    /// The tissue's live boundary triangles (indices into the positions): it changes when the
    /// tissue is cut, resected or torn.
    pub surface_triangles: Vec<[u32; 3]>,
    /// [`Tissue::surface_revision`] of `surface_triangles`.
    pub surface_revision: u64,
    /// Tool centre, world frame, metres.
    pub tool_center_in_world_m: [f32; 3],
    /// Tool radius, metres.
    pub tool_radius_m: f32,
    /// Force sent to the device, world frame, newtons.
    pub force_out_in_world_n: [f32; 3],
}

impl SceneSnapshot {
    /// A snapshot of `tissue` at rest, with room for every particle and for every face of every
    /// tet in the surface (so publishing never allocates, however the tissue is cut).
    pub fn for_tissue(tissue: &Tissue) -> Self {
        let mut surface_triangles = Vec::with_capacity(4 * tissue.tet_count());
        surface_triangles.extend_from_slice(tissue.surface_triangles());
        Self {
            tissue_positions_m: tissue
                .positions_m
                .iter()
                .map(|p| [p.x as f32, p.y as f32, p.z as f32])
                .collect(),
            surface_triangles,
            surface_revision: tissue.surface_revision(),
            ..Self::default()
        }
    }
}

/// Cloning keeps the surface's reserved capacity (the triple buffer clones its first snapshot
/// into all three slots, and each must be able to take any surface without allocating).
impl Clone for SceneSnapshot {
    fn clone(&self) -> Self {
        let mut surface_triangles = Vec::with_capacity(self.surface_triangles.capacity());
        surface_triangles.extend_from_slice(&self.surface_triangles);
        Self {
            tick: self.tick,
            tissue_positions_m: self.tissue_positions_m.clone(),
            surface_triangles,
            surface_revision: self.surface_revision,
            tool_center_in_world_m: self.tool_center_in_world_m,
            tool_radius_m: self.tool_radius_m,
            force_out_in_world_n: self.force_out_in_world_n,
        }
    }
}

fn snapshots_capacity(p: &mut Publisher<SceneSnapshot>) -> (usize, usize) {
    let back = p.back_mut();
    (
        back.tissue_positions_m.len(),
        back.surface_triangles.capacity(),
    )
}

/// The flag that names a device error's kind in the log.
fn device_error_flag(e: &DeviceError) -> u32 {
    match e {
        DeviceError::Disconnected { .. } => tick_flags::DEVICE_DISCONNECTED,
        DeviceError::BadReport { .. } => tick_flags::DEVICE_BAD_REPORT,
        _ => tick_flags::DEVICE_IO_ERROR,
    }
}

/// A typical lattice cell of `tissue` (five tets per cube), metres: it sizes the needle's
/// capture radius.
fn typical_cell_m(tissue: &Tissue) -> f64 {
    (5.0 * tissue.volume_m3() / tissue.tet_count().max(1) as f64).cbrt()
}

/// Everything the haptic thread owns.
#[derive(Debug)]
pub struct HapticCore {
    device: Box<dyn HapticDevice>,
    device_to_world: Isometry3<f64>,
    tissue: Tissue,
    step_params: StepParams,
    tool_radius_m: f64,
    tool_center_in_world_m: Vector3<f64>,
    /// The last device position reported (world frame), garbage included.
    device_pos_m: Vector3<f64>,
    /// The last finite device position (world frame).
    good_device_m: Vector3<f64>,
    guard: ForceGuard,
    /// The spring-damper between the device tip and the tool (`None`: the tool is the tip).
    coupling: Option<VirtualCoupling>,
    /// Whether a good device sample has arrived since start-up or the last fault.
    have_device: bool,
    /// The tissue's force on the tool in the last tick (the coupling feels it this tick).
    last_contact_n: Vector3<f64>,
    /// Low-pass filter coefficient for the contact force (0 = none, towards 1 = heavier).
    smoothing: f64,
    smoothed_force_n: Vector3<f64>,
    tick: u64,
    stopping: bool,
    emergency_stop: bool,
    last_buttons: u32,
    tissue_faults: u64,
    commands: QueueRx<Command>,
    snapshots: Publisher<SceneSnapshot>,
    /// Set from outside (e.g. by a signal handler) to stop; read once per tick, never waited on.
    stop_flag: Option<Arc<AtomicBool>>,
    /// The instrument in the hand.
    instrument: InstrumentState,
}

impl Drop for HapticCore {
    /// However the core goes away (end of the loop, a panic unwinding the haptic thread), the
    /// device is left with zero force.
    fn drop(&mut self) {
        let _ = self.device.write_force([0.0; 3]);
    }
}

/// Settings of the haptic core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Tissue step settings (its `dt_s` is the tick period).
    pub step: StepParams,
    /// Radius of the sphere tool, metres.
    pub tool_radius_m: f64,
    /// Device frame to world frame (the calibration).
    pub device_to_world: Isometry3<f64>,
    /// Ticks without fresh input before the device counts as stalled.
    pub stall_ticks: u32,
    /// Cut-off of the force low-pass filter, hertz (`None`: no filter).
    pub force_smoothing_hz: Option<f64>,
    /// Virtual coupling between the device and the tool (`None`: the tool sits on the device
    /// tip and the hand feels the tissue's contact force directly).
    pub coupling: Option<CouplingConfig>,
    /// The instrument (its tip radius is `tool_radius_m`).
    pub instrument: InstrumentConfig,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            step: StepParams::default(),
            tool_radius_m: 0.012,
            device_to_world: Isometry3::identity(),
            stall_ticks: 5,
            force_smoothing_hz: Some(150.0),
            coupling: Some(CouplingConfig::default()),
            instrument: InstrumentConfig::default(),
        }
    }
}

impl HapticCore {
    /// Assembles the core. `snapshots` must have been created from
    /// [`SceneSnapshot::for_tissue`] of this tissue.
    pub fn new(
        device: Box<dyn HapticDevice>,
        tissue: Tissue,
        config: &CoreConfig,
        commands: QueueRx<Command>,
        mut snapshots: Publisher<SceneSnapshot>,
    ) -> Self {
        let info = device.info();
        let (particles, faces) = snapshots_capacity(&mut snapshots);
        assert!(
            particles == tissue.particle_count() && faces >= 4 * tissue.tet_count(),
            "the snapshot buffer must be made with SceneSnapshot::for_tissue(&tissue)"
        );
        let guard = ForceGuard::new(SafetyLimits {
            max_force_n: info.max_force_n,
            max_force_rate_n_per_s: info.max_force_rate_n_per_s,
            stall_ticks: config.stall_ticks,
        });
        let smoothing = config.force_smoothing_hz.map_or(0.0, |fc| {
            let rc = 1.0 / (2.0 * std::f64::consts::PI * fc);
            rc / (rc + config.step.dt_s)
        });
        let coupling = config
            .coupling
            .map(|c| VirtualCoupling::new(&c, info, config.step.dt_s));
        // A cloned tissue lacks the spare room cutting and grasping fill in place.
        let mut tissue = tissue;
        tissue.reserve_working_capacity();
        let instrument = InstrumentState::new(
            InstrumentConfig {
                tip_radius_m: config.tool_radius_m,
                ..config.instrument
            },
            &tissue,
            Vec::new(),
            typical_cell_m(&tissue),
        );
        Self {
            instrument,
            coupling,
            have_device: false,
            last_contact_n: Vector3::zeros(),
            device,
            device_to_world: config.device_to_world,
            tissue,
            step_params: config.step,
            tool_radius_m: config.tool_radius_m,
            tool_center_in_world_m: Vector3::new(0.0, 1.0, 0.0),
            device_pos_m: Vector3::new(0.0, 1.0, 0.0),
            good_device_m: Vector3::new(0.0, 1.0, 0.0),
            guard,
            smoothing,
            smoothed_force_n: Vector3::zeros(),
            tick: 0,
            stopping: false,
            emergency_stop: false,
            last_buttons: 0,
            tissue_faults: 0,
            commands,
            snapshots,
            stop_flag: None,
        }
    }

    /// Stops at the first tick that sees `flag` set (a stop tick: zero force, then the loop
    /// ends). Lets a signal handler stop the session within one tick.
    pub fn with_stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop_flag = Some(flag);
        self
    }

    /// Sets the particles the instrument must not touch (vessels): touching them is flagged
    /// [`tick_flags::NO_GO_CONTACT`]. Set-up only.
    pub fn with_no_go(mut self, particles: Vec<u32>) -> Self {
        let cell_m = typical_cell_m(&self.tissue);
        self.instrument =
            InstrumentState::new(*self.instrument.config(), &self.tissue, particles, cell_m);
        self
    }

    /// The tissue (for inspection after the loop has ended).
    pub fn tissue(&self) -> &Tissue {
        &self.tissue
    }

    /// The tissue, to change between ticks on the haptic thread (an instrument cuts or grasps).
    /// The next tick publishes the changed surface to the render thread.
    pub fn tissue_mut(&mut self) -> &mut Tissue {
        &mut self.tissue
    }

    /// The device.
    pub fn device(&self) -> &dyn HapticDevice {
        self.device.as_ref()
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.tick
    }

    /// Whether a stop command has been taken.
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Makes the next tick a stop tick (zero force, then the loop ends).
    pub fn request_stop(&mut self) {
        self.stopping = true;
    }

    /// Tissue steps that failed (non-finite) and were rolled back.
    pub fn tissue_faults(&self) -> u64 {
        self.tissue_faults
    }

    /// The virtual coupling, when one is in use.
    pub fn coupling(&self) -> Option<&VirtualCoupling> {
        self.coupling.as_ref()
    }

    /// Tick period, seconds.
    pub fn dt_s(&self) -> f64 {
        self.step_params.dt_s
    }

    /// Runs one tick (see the module docs). Never allocates or blocks.
    pub fn tick(&mut self) -> TickRecord {
        if self
            .stop_flag
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
        {
            self.stopping = true;
        }
        while let Some(cmd) = self.commands.pop() {
            match cmd {
                Command::Stop => self.stopping = true,
                Command::EmergencyStop => self.emergency_stop = true,
                Command::Resume => self.emergency_stop = false,
            }
        }

        let mut flags = 0u32;
        let mut fresh = false;
        let mut device_fault = false;
        match self.device.read(self.tick) {
            Ok(Some(sample)) => {
                let tip = self.device_to_world * Point3::from(sample.tip_in_device_m);
                self.device_pos_m = tip.coords;
                if tip.coords.iter().all(|v| v.is_finite()) {
                    if !self.have_device {
                        // First sample, or the first after a fault: the tool starts on the
                        // tip, at rest (never sprung across a jump).
                        if let Some(c) = &mut self.coupling {
                            c.reset(tip.coords);
                        }
                        self.have_device = true;
                    }
                    self.good_device_m = tip.coords;
                    self.last_buttons = sample.buttons;
                    fresh = true;
                } else {
                    // Garbage in: keep the last good pose, count it as no fresh input.
                    flags |= tick_flags::NON_FINITE | tick_flags::DEVICE_BAD_REPORT;
                    device_fault = true;
                }
            }
            Ok(None) => flags |= tick_flags::NO_INPUT,
            Err(e) => {
                flags |= tick_flags::NO_INPUT | device_error_flag(&e);
                device_fault = true;
            }
        }
        if device_fault {
            self.have_device = false;
        }
        if self.have_device {
            self.tool_center_in_world_m = match &mut self.coupling {
                Some(c) => c.step(
                    self.good_device_m,
                    self.last_contact_n,
                    self.step_params.dt_s,
                ),
                None => self.good_device_m,
            };
        }

        let live = self.have_device && !device_fault && !self.stopping && !self.emergency_stop;
        let contact_n = match self.instrument.step(
            &self.step_params,
            &mut self.tissue,
            self.tool_center_in_world_m,
            self.last_buttons,
            live,
        ) {
            Ok(r) => {
                flags |= r.flags;
                r.force_on_tool_n
            }
            Err(_) => {
                self.tissue_faults += 1;
                flags |= tick_flags::NON_FINITE | tick_flags::SOLVER_FAULT;
                Vector3::new(f64::NAN, f64::NAN, f64::NAN)
            }
        };
        let contact_ok = contact_n.iter().all(|v| v.is_finite());
        self.last_contact_n = if contact_ok {
            contact_n
        } else {
            Vector3::zeros()
        };
        // The hand feels the coupling spring, or without one the force the tissue exerts on the
        // tool.
        let hand_n = match &self.coupling {
            Some(c) if self.have_device => c.force_on_device_n(),
            Some(_) => Vector3::zeros(),
            None => contact_n,
        };
        if contact_ok {
            self.smoothed_force_n =
                self.smoothed_force_n * self.smoothing + hand_n * (1.0 - self.smoothing);
        } else {
            self.smoothed_force_n = Vector3::zeros();
        }
        let desired = if contact_ok {
            self.smoothed_force_n
        } else {
            contact_n
        };
        let (force_world, guard_flags) = self.guard.apply(
            desired,
            GuardInput {
                fresh_input: fresh,
                device_fault,
                stopping: self.stopping || self.emergency_stop,
            },
            self.step_params.dt_s,
        );
        flags |= guard_flags;
        if self.emergency_stop {
            flags |= tick_flags::EMERGENCY_STOP;
        }
        let force_device = self.device_to_world.inverse_transform_vector(&force_world);
        if let Err(e) = self.device.write_force(force_device.into()) {
            flags |= tick_flags::DEVICE_FAULT | device_error_flag(&e);
        }

        let snap = self.snapshots.back_mut();
        snap.tick = self.tick;
        for (dst, src) in snap
            .tissue_positions_m
            .iter_mut()
            .zip(&self.tissue.positions_m)
        {
            *dst = [src.x as f32, src.y as f32, src.z as f32];
        }
        if snap.surface_revision != self.tissue.surface_revision() {
            // Within the reserved capacity: no allocation.
            snap.surface_triangles.clear();
            snap.surface_triangles
                .extend_from_slice(self.tissue.surface_triangles());
            snap.surface_revision = self.tissue.surface_revision();
        }
        snap.tool_center_in_world_m = [
            self.tool_center_in_world_m.x as f32,
            self.tool_center_in_world_m.y as f32,
            self.tool_center_in_world_m.z as f32,
        ];
        snap.tool_radius_m = self.tool_radius_m as f32;
        snap.force_out_in_world_n = [
            force_world.x as f32,
            force_world.y as f32,
            force_world.z as f32,
        ];
        self.snapshots.publish();

        let record = TickRecord {
            tick: self.tick,
            device_pos_in_world_m: self.device_pos_m.into(),
            device_buttons: self.last_buttons,
            tool_pos_in_world_m: self.tool_center_in_world_m.into(),
            contact_force_in_world_n: if contact_n.iter().all(|v| v.is_finite()) {
                contact_n.into()
            } else {
                [0.0; 3]
            },
            force_out_in_world_n: force_world.into(),
            lateness_ns: 0,
            work_ns: 0,
            flags,
        };
        self.tick += 1;
        record
    }
}

/// Called when the haptic thread enters and leaves its real-time section (for tests that watch
/// allocation on that thread). Plain function pointers: calling them allocates nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealtimeHooks {
    /// Called on the haptic thread after start-up, just before the first deadline.
    pub on_enter: Option<fn()>,
    /// Called on the haptic thread after the last tick, before the report is built.
    pub on_exit: Option<fn()>,
}

/// Settings of the loop around the core.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// Period, nanoseconds (1 kHz: 1,000,000).
    pub period_ns: u64,
    /// Run at most this many ticks, the last of them a stop tick with zero force (`None`: run
    /// until a [`Command::Stop`]).
    pub max_ticks: Option<u64>,
    /// Ask for `SCHED_FIFO` at this priority (`None`: don't ask).
    pub realtime_priority: Option<i32>,
    /// Spin this many nanoseconds before each deadline instead of sleeping.
    pub spin_ns: u64,
    /// Hooks around the real-time section.
    pub realtime_hooks: RealtimeHooks,
    /// Beaten after every tick and finished at a clean end, for a [`super::watchdog`].
    pub heartbeat: Option<Heartbeat>,
    /// Set once by the haptic thread, before its real-time section, to the wall-clock
    /// (`CLOCK_REALTIME`, nanoseconds since the Unix epoch) instant of tick 0's deadline, so a
    /// recorder can log when each tick ran (see [`crate::session::log`], the `CLCK` chunk).
    /// Zero until then. The deadline is monotonic; it is converted with one reading of each
    /// clock, so a later step of the wall clock (NTP) does not move it.
    pub start_clock: Option<Arc<AtomicU64>>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            period_ns: 1_000_000,
            max_ticks: None,
            realtime_priority: Some(80),
            spin_ns: 30_000,
            realtime_hooks: RealtimeHooks::default(),
            heartbeat: None,
            start_clock: None,
        }
    }
}

/// What the haptic thread reports when it ends.
#[derive(Debug)]
pub struct LoopReport {
    /// Ticks run.
    pub ticks: u64,
    /// Wall time from the first deadline to the end of the last tick, seconds.
    pub seconds: f64,
    /// Lateness of each tick's start after its deadline, nanoseconds.
    pub lateness_ns: Histogram,
    /// Work time of each tick, nanoseconds.
    pub work_ns: Histogram,
    /// Ticks that started more than one period late.
    pub overruns: u64,
    /// Whether real-time scheduling was granted.
    pub realtime: RealtimeStatus,
    /// Largest force magnitude written to the device, newtons.
    pub peak_force_n: f64,
    /// Ticks whose flags held a fault (non-finite, stall, device fault).
    pub fault_ticks: u64,
    /// The force written on the last tick, newtons (zero after a stop).
    pub final_force_n: [f64; 3],
    /// Records dropped because the telemetry queue was full.
    pub telemetry_dropped: u64,
    /// The core, handed back for inspection.
    pub core: HapticCore,
}

/// Runs the loop on the calling thread until `max_ticks` or a [`Command::Stop`].
pub fn run_loop(
    mut core: HapticCore,
    mut telemetry: QueueTx<TickRecord>,
    cfg: &LoopConfig,
) -> LoopReport {
    rt::block_termination_signals();
    let realtime = match cfg.realtime_priority {
        Some(p) => rt::request_realtime(p),
        None => RealtimeStatus::NotRequested,
    };
    let mut lateness = Histogram::new();
    let mut work = Histogram::new();
    let mut peak_force_n = 0.0f64;
    let mut fault_ticks = 0u64;
    let mut final_force_n = [0.0; 3];
    let fault_mask = tick_flags::NON_FINITE | tick_flags::STALLED | tick_flags::DEVICE_FAULT;

    let mut ticker = Ticker::new(cfg.period_ns, cfg.spin_ns);
    if let Some(cell) = &cfg.start_clock {
        cell.store(
            wall_clock_of_ns(ticker.next_deadline_ns()),
            Ordering::Release,
        );
    }
    if let Some(f) = cfg.realtime_hooks.on_enter {
        f();
    }
    let mut first_deadline = None;
    let mut end_ns = 0;
    while !core.is_stopping() {
        // The last tick of a bounded run is a stop tick: it writes zero force.
        if cfg.max_ticks.is_some_and(|m| core.ticks() + 1 >= m) {
            core.request_stop();
        }
        let wake = ticker.wait();
        first_deadline.get_or_insert(wake.deadline_ns);
        let mut rec = core.tick();
        end_ns = rt::now_ns();
        let work_ns = end_ns - wake.woke_ns;
        lateness.record(wake.lateness_ns());
        work.record(work_ns);
        rec.lateness_ns = wake.lateness_ns().min(u32::MAX as u64) as u32;
        rec.work_ns = work_ns.min(u32::MAX as u64) as u32;
        if wake.overrun {
            rec.flags |= tick_flags::OVERRUN;
        }
        if rec.flags & fault_mask != 0 {
            fault_ticks += 1;
        }
        let f = rec.force_out_in_world_n;
        peak_force_n = peak_force_n.max((f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt());
        final_force_n = f;
        // A full queue counts a drop inside push; the tick goes on.
        let _ = telemetry.push(rec);
        if let Some(hb) = &cfg.heartbeat {
            hb.beat(core.ticks());
        }
    }
    if let Some(hb) = &cfg.heartbeat {
        // The last tick was a stop tick: zero force is out.
        hb.finish();
    }
    if let Some(f) = cfg.realtime_hooks.on_exit {
        f();
    }
    let seconds = first_deadline.map_or(0.0, |d| (end_ns.saturating_sub(d)) as f64 * 1e-9);
    LoopReport {
        ticks: core.ticks(),
        seconds,
        lateness_ns: lateness,
        work_ns: work,
        overruns: ticker.overruns(),
        realtime,
        peak_force_n,
        fault_ticks,
        final_force_n,
        telemetry_dropped: telemetry.dropped(),
        core,
    }
}

/// The wall-clock (`CLOCK_REALTIME`) nanoseconds since the Unix epoch of the
/// `CLOCK_MONOTONIC` instant `mono_ns` (one reading of each clock; at least 1, so zero can mean
/// "not set").
fn wall_clock_of_ns(mono_ns: u64) -> u64 {
    let mono_now = rt::now_ns();
    let wall_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let wall = if mono_ns >= mono_now {
        wall_now.saturating_add(mono_ns - mono_now)
    } else {
        wall_now.saturating_sub(mono_now - mono_ns)
    };
    wall.max(1)
}

/// Spawns the haptic thread (named `haptic`) running [`run_loop`].
pub fn spawn(
    core: HapticCore,
    telemetry: QueueTx<TickRecord>,
    cfg: LoopConfig,
) -> std::io::Result<JoinHandle<LoopReport>> {
    thread::Builder::new()
        .name("haptic".into())
        .spawn(move || run_loop(core, telemetry, &cfg))
}
