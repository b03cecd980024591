//! Calibration of an arm (`haptwin calibrate DEVICE`): encoder offsets at the home pose,
//! registration of the device's workspace into the world by touching known points, and a check
//! of the force scale. The results are versioned TOML files, validated on load.
//!
//! The procedure ([`calibrate`]) talks to a person through an [`Operator`]: a terminal
//! ([`TerminalOperator`]: Enter to confirm, a typed gauge reading) for a real device, or a
//! scripted hand ([`ScriptedOperator`]) for an emulated one. While it waits it keeps reading
//! the device and writing zero force (the firmwares' watchdogs expect a command at least every
//! 0.5 s); the only non-zero force it ever writes is the force check's, ramped by the same
//! [`ForceGuard`] the haptic loop uses and never above the device's limit.
//!
//! 1. **Home**: with the arm in its home pose, the mean encoder counts over 200 reports become
//!    the WoodenHaptics' `encoder_offset_counts`; a Polhem is told to set its counters to the
//!    calibration's home counts (its firmware's command 1).
//! 2. **Registration**: the stylus tip touches each point of a fixture file (world frame); a
//!    least-squares rigid fit (Kabsch, reflection-safe) of the device-frame points onto them
//!    gives `device_to_world`, with the RMS and largest residual. A fit worse than
//!    [`MAX_RESIDUAL_RMS_M`] is refused.
//! 3. **Force scale**: the device pushes up with [`FORCE_CHECK_N`] for a second; the gauge
//!    reading over the command scales the torque constants (refused outside 0.5..2).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nalgebra::{Isometry3, Matrix3, Point3, Quaternion, Translation3, UnitQuaternion, Vector3};

use super::arm::{ArmConfig, ArmDevice, ArmProtocol, CurrentMonitor};
use super::device::{DeviceError, HapticDevice};
use super::safety::{ForceGuard, GuardInput, SafetyLimits};
use super::transport::HidTransport;

/// Reports averaged for each pose.
pub const SAMPLES_PER_POSE: usize = 200;
/// Largest spread (RMS about the mean) of the tip while a pose is averaged, metres.
pub const MAX_POSE_SPREAD_M: f64 = 0.5e-3;
/// Largest RMS residual of the registration accepted, metres.
pub const MAX_RESIDUAL_RMS_M: f64 = 1.5e-3;
/// The force of the force-scale check, newtons (upwards in the device frame).
pub const FORCE_CHECK_N: f64 = 1.0;
/// Ticks the check force is held before the gauge is read.
pub const FORCE_CHECK_TICKS: u64 = 1_000;
/// Ticks to wait for the operator at each step before giving up (two minutes at 1 kHz).
pub const STEP_TIMEOUT_TICKS: u64 = 120_000;

/// Calibration failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrateError {
    /// The device failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The tip moved while a pose was averaged.
    #[error("the tip moved while {step} was measured ({spread_mm:.2} mm RMS, at most {limit_mm:.2} mm): hold it still and run again")]
    Unsteady {
        step: String,
        spread_mm: f64,
        limit_mm: f64,
    },
    /// Nobody confirmed a step in time.
    #[error("no confirmation for {step} within {seconds} s")]
    Timeout { step: String, seconds: u64 },
    /// The operator gave up (end of input).
    #[error("calibration cancelled at {step}")]
    Cancelled { step: String },
    /// The fixture points cannot register a rigid transform.
    #[error("registration impossible: {0}")]
    Fit(String),
    /// The registration is worse than allowed.
    #[error("registration residual {rms_mm:.2} mm RMS (largest {max_mm:.2} mm) exceeds {limit_mm:.2} mm: check the fixture file and touch the points again")]
    Residual {
        rms_mm: f64,
        max_mm: f64,
        limit_mm: f64,
    },
    /// The force gauge reading is implausible.
    #[error("force check: the gauge read {reading_n} N for {commanded_n} N commanded (accepted: half to twice)")]
    ForceScale { reading_n: f64, commanded_n: f64 },
    /// A file could not be read or written, or is invalid.
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
}

/// A step the operator is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Put the arm in its home pose.
    Home,
    /// Touch fixture point `index` (of `count`), at `world_m`.
    Touch {
        index: usize,
        count: usize,
        world_m: [f64; 3],
    },
    /// Hold the stylus on a force gauge: the device will push up.
    ForceCheck,
}

impl Step {
    /// The instruction, in words.
    pub fn instruction(&self) -> String {
        match self {
            Step::Home => "put the arm in its home pose (body A straight ahead, body B upright, \
                           body C level) and hold it still"
                .into(),
            Step::Touch {
                index,
                count,
                world_m,
            } => format!(
                "touch fixture point {} of {count} at ({:.4}, {:.4}, {:.4}) m with the stylus tip and hold still",
                index + 1,
                world_m[0],
                world_m[1],
                world_m[2]
            ),
            Step::ForceCheck => format!(
                "rest the stylus tip on a force gauge (a kitchen scale: 1 N is 102 g); the device \
                 will push down on it with {FORCE_CHECK_N} N for a second"
            ),
        }
    }

    fn name(&self) -> String {
        match self {
            Step::Home => "the home pose".into(),
            Step::Touch { index, .. } => format!("fixture point {}", index + 1),
            Step::ForceCheck => "the force check".into(),
        }
    }
}

/// The operator gave up (closed the input) or cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorGaveUp;

/// The person calibrating.
pub trait Operator {
    /// Shows the instruction for `step` (called once, when the step begins).
    fn show(&mut self, step: &Step);
    /// Whether the step is confirmed, polled once per tick while the device is read;
    /// `Err(OperatorGaveUp)` when the operator gave up.
    fn confirmed(&mut self, tick: u64) -> Result<bool, OperatorGaveUp>;
    /// The force gauge's reading after the check force has been held, newtons.
    fn gauge_reading_n(&mut self) -> Result<f64, OperatorGaveUp>;
}

/// An operator at a terminal: Enter confirms a step, the gauge reading is typed.
#[derive(Debug)]
pub struct TerminalOperator {
    lines: crossbeam::channel::Receiver<String>,
}

impl TerminalOperator {
    /// Reads lines from standard input on a helper thread (`calibrate-input`).
    pub fn new() -> std::io::Result<Self> {
        let (tx, rx) = crossbeam::channel::unbounded();
        std::thread::Builder::new()
            .name("calibrate-input".into())
            .spawn(move || {
                let mut line = String::new();
                while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                    if tx.send(line.trim().to_string()).is_err() {
                        break;
                    }
                    line.clear();
                }
            })?;
        Ok(Self { lines: rx })
    }
}

impl Operator for TerminalOperator {
    fn show(&mut self, step: &Step) {
        eprintln!("\n{}.\nPress Enter when ready.", step.instruction());
    }

    fn confirmed(&mut self, _tick: u64) -> Result<bool, OperatorGaveUp> {
        match self.lines.try_recv() {
            Ok(_) => Ok(true),
            Err(crossbeam::channel::TryRecvError::Empty) => Ok(false),
            Err(crossbeam::channel::TryRecvError::Disconnected) => Err(OperatorGaveUp),
        }
    }

    fn gauge_reading_n(&mut self) -> Result<f64, OperatorGaveUp> {
        loop {
            eprintln!("What does the gauge read, in newtons (grams / 102)?");
            let line = self.lines.recv().map_err(|_| OperatorGaveUp)?;
            match line.parse::<f64>() {
                Ok(v) if v.is_finite() => return Ok(v),
                _ => eprintln!("{line:?} is not a number"),
            }
        }
    }
}

/// A scripted operator for an emulated device: it confirms each step at a given tick (when the
/// scripted hand is at the pose) and reads the gauge from the emulated motors' currents.
#[derive(Debug)]
pub struct ScriptedOperator<P: ArmProtocol> {
    confirm_at_ticks: Vec<u64>,
    next: usize,
    monitor: CurrentMonitor,
    true_config: ArmConfig<P>,
    gauge_pose_angles: [f64; 3],
}

impl<P: ArmProtocol> ScriptedOperator<P> {
    /// Confirms step `i` at `confirm_at_ticks[i]`; the gauge is the force that the emulated
    /// arm (`true_config`, the arm as built) pushes with at the pose `gauge_pose_angles`.
    pub fn new(
        confirm_at_ticks: Vec<u64>,
        monitor: CurrentMonitor,
        true_config: ArmConfig<P>,
        gauge_pose_angles: [f64; 3],
    ) -> Self {
        Self {
            confirm_at_ticks,
            next: 0,
            monitor,
            true_config,
            gauge_pose_angles,
        }
    }
}

impl<P: ArmProtocol> Operator for ScriptedOperator<P> {
    fn show(&mut self, _step: &Step) {}

    fn confirmed(&mut self, tick: u64) -> Result<bool, OperatorGaveUp> {
        match self.confirm_at_ticks.get(self.next) {
            None => Err(OperatorGaveUp),
            Some(&at) if tick >= at => {
                self.next += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
        }
    }

    fn gauge_reading_n(&mut self) -> Result<f64, OperatorGaveUp> {
        let amps = self.monitor.currents_ma().map(|ma| f64::from(ma) / 1000.0);
        let f = self
            .true_config
            .tip_force_n(amps, self.gauge_pose_angles)
            .ok_or(OperatorGaveUp)?;
        // The gauge measures the push along the device's vertical.
        Ok(-f.z)
    }
}

/// The rigid transform that maps `device_m` onto `world_m` best in the least-squares sense
/// (Kabsch), and each point's residual, metres.
pub fn rigid_fit(
    device_m: &[Vector3<f64>],
    world_m: &[Vector3<f64>],
) -> Result<(Isometry3<f64>, Vec<f64>), String> {
    if device_m.len() != world_m.len() {
        return Err(format!(
            "{} device points for {} fixture points",
            device_m.len(),
            world_m.len()
        ));
    }
    if device_m.len() < 3 {
        return Err(format!("{} points: at least 3 are needed", device_m.len()));
    }
    let n = device_m.len() as f64;
    let cd = device_m.iter().sum::<Vector3<f64>>() / n;
    let cw = world_m.iter().sum::<Vector3<f64>>() / n;
    let mut h = Matrix3::zeros();
    for (d, w) in device_m.iter().zip(world_m) {
        h += (d - cd) * (w - cw).transpose();
    }
    let svd = h.svd(true, true);
    let (u, v_t) = match (svd.u, svd.v_t) {
        (Some(u), Some(v_t)) => (u, v_t),
        _ => return Err("the fit did not converge".into()),
    };
    let mut s = svd.singular_values;
    s.as_mut_slice()
        .sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
    if s[1].is_nan() || s[1] <= 1e-6 * s[0].max(1e-12) {
        return Err("the fixture points are collinear (or all the same)".into());
    }
    let mut d = Matrix3::identity();
    if (v_t.transpose() * u.transpose()).determinant() < 0.0 {
        d[(2, 2)] = -1.0;
    }
    let r = v_t.transpose() * d * u.transpose();
    let rotation = UnitQuaternion::from_matrix(&r);
    let translation = cw - rotation * cd;
    let iso = Isometry3::from_parts(Translation3::from(translation), rotation);
    let residuals = device_m
        .iter()
        .zip(world_m)
        .map(|(d, w)| (iso * Point3::from(*d) - Point3::from(*w)).norm())
        .collect();
    Ok((iso, residuals))
}

/// Fixture points to touch, world frame (`calibration/registration/*.toml`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub format_version: u32,
    /// What the fixture is.
    pub description: String,
    /// The points, world frame, metres.
    pub points_m: Vec<[f64; 3]>,
}

impl Fixture {
    /// Reads and validates a fixture file.
    pub fn load(path: &Path) -> Result<Self, CalibrateError> {
        let text = read(path)?;
        let f: Self = toml::from_str(&text).map_err(|e| file_error(path, e.to_string()))?;
        if f.format_version != 1 {
            return Err(file_error(
                path,
                format!(
                    "format_version is {}, this haptwin reads 1",
                    f.format_version
                ),
            ));
        }
        if f.points_m.len() < 3 {
            return Err(file_error(
                path,
                format!(
                    "points_m has {} points, at least 3 are needed",
                    f.points_m.len()
                ),
            ));
        }
        if f.points_m.iter().flatten().any(|v| !v.is_finite()) {
            return Err(file_error(path, "points_m must be finite".into()));
        }
        Ok(f)
    }
}

/// Where the device's workspace lies in the world: the result of a registration.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub format_version: u32,
    /// Device profile.
    pub device: String,
    /// Device frame to world frame: translation, metres.
    pub translation_m: [f64; 3],
    /// Device frame to world frame: rotation as a unit quaternion `[x, y, z, w]`.
    pub rotation_xyzw: [f64; 4],
    /// RMS residual of the fit, metres.
    pub residual_rms_m: f64,
    /// Largest residual of the fit, metres.
    pub residual_max_m: f64,
    /// Points touched.
    pub points: u32,
}

impl Registration {
    /// The device-to-world transform.
    pub fn device_to_world(&self) -> Isometry3<f64> {
        let [x, y, z, w] = self.rotation_xyzw;
        Isometry3::from_parts(
            Translation3::from(Vector3::from(self.translation_m)),
            UnitQuaternion::new_normalize(Quaternion::new(w, x, y, z)),
        )
    }

    /// Reads and validates a registration file for `device`.
    pub fn load(path: &Path, device: &str) -> Result<Self, CalibrateError> {
        let text = read(path)?;
        let r: Self = toml::from_str(&text).map_err(|e| file_error(path, e.to_string()))?;
        let bad = |problem: String| Err(file_error(path, problem));
        if r.format_version != 1 {
            return bad(format!(
                "format_version is {}, this haptwin reads 1",
                r.format_version
            ));
        }
        if r.device != device {
            return bad(format!("device is {:?}, expected {device:?}", r.device));
        }
        if r.translation_m
            .iter()
            .chain(&r.rotation_xyzw)
            .any(|v| !v.is_finite())
        {
            return bad("translation_m and rotation_xyzw must be finite".into());
        }
        let norm = r.rotation_xyzw.iter().map(|v| v * v).sum::<f64>().sqrt();
        if (norm - 1.0).abs() > 1e-6 {
            return bad(format!(
                "rotation_xyzw is not a unit quaternion (norm {norm})"
            ));
        }
        if !(r.residual_rms_m >= 0.0 && r.residual_max_m >= r.residual_rms_m) {
            return bad("residual_rms_m and residual_max_m are inconsistent".into());
        }
        Ok(r)
    }
}

fn read(path: &Path) -> Result<String, CalibrateError> {
    std::fs::read_to_string(path).map_err(|e| file_error(path, e.to_string()))
}

fn file_error(path: &Path, problem: String) -> CalibrateError {
    CalibrateError::File {
        path: path.to_path_buf(),
        problem,
    }
}

/// How the procedure paces its ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// One tick per millisecond of wall time (a real device).
    RealTime,
    /// As fast as the device answers (an emulated one, which makes one report per read).
    Immediate,
}

/// What a calibration found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CalibrationResult {
    /// Device profile.
    pub device: String,
    /// Encoder counts at the home pose as read before calibration.
    pub home_counts_read: [i16; 3],
    /// The offsets now in the calibration (WoodenHaptics), or the counts the device was set to
    /// (Polhem).
    pub encoder_offset_counts: [i32; 3],
    /// The registration.
    pub registration: Registration,
    /// Each fixture point's residual, metres.
    pub residuals_m: Vec<f64>,
    /// Gauge reading over commanded force.
    pub force_scale: f64,
    /// The calibration with the new offsets and torque constants (TOML).
    #[serde(skip)]
    pub config_toml: String,
}

struct Session<'a, T: HidTransport, P: ArmProtocol, O: Operator> {
    device: &'a mut ArmDevice<T, P>,
    operator: &'a mut O,
    pacing: Pacing,
    tick: u64,
}

impl<T: HidTransport, P: ArmProtocol, O: Operator> Session<'_, T, P, O> {
    /// One tick: read the device, write `force_n`; returns the newest sample's tip.
    fn tick(&mut self, force_n: [f64; 3]) -> Result<Option<Vector3<f64>>, CalibrateError> {
        if self.pacing == Pacing::RealTime {
            std::thread::sleep(Duration::from_millis(1));
        }
        let sample = self.device.read(self.tick)?;
        self.device.write_force(force_n)?;
        self.tick += 1;
        Ok(sample.map(|s| Vector3::from(s.tip_in_device_m)))
    }

    fn wait_for(&mut self, step: &Step) -> Result<(), CalibrateError> {
        self.operator.show(step);
        let start = self.tick;
        loop {
            self.tick([0.0; 3])?;
            match self.operator.confirmed(self.tick) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(OperatorGaveUp) => return Err(CalibrateError::Cancelled { step: step.name() }),
            }
            if self.tick - start > STEP_TIMEOUT_TICKS {
                return Err(CalibrateError::Timeout {
                    step: step.name(),
                    seconds: STEP_TIMEOUT_TICKS / 1000,
                });
            }
        }
    }

    /// Averages [`SAMPLES_PER_POSE`] reports: the tip and the raw counts.
    fn average(&mut self, step: &Step) -> Result<(Vector3<f64>, [f64; 3]), CalibrateError> {
        let mut tips = Vec::with_capacity(SAMPLES_PER_POSE);
        let mut counts = [0.0; 3];
        let mut guard = 0;
        while tips.len() < SAMPLES_PER_POSE {
            if let Some(tip) = self.tick([0.0; 3])? {
                tips.push(tip);
                let raw = self.device.last_input().map_or([0; 3], |i| i.counts);
                for k in 0..3 {
                    counts[k] += f64::from(raw[k]);
                }
            }
            guard += 1;
            if guard > 50 * SAMPLES_PER_POSE {
                return Err(CalibrateError::Device(DeviceError::BadReport {
                    device: self.device.info().name.as_str().into(),
                    what: "the device sends no reports",
                }));
            }
        }
        let n = tips.len() as f64;
        let mean = tips.iter().sum::<Vector3<f64>>() / n;
        let spread = (tips.iter().map(|t| (t - mean).norm_squared()).sum::<f64>() / n).sqrt();
        if spread > MAX_POSE_SPREAD_M {
            return Err(CalibrateError::Unsteady {
                step: step.name(),
                spread_mm: spread * 1e3,
                limit_mm: MAX_POSE_SPREAD_M * 1e3,
            });
        }
        Ok((mean, counts.map(|c| c / n)))
    }
}

/// Runs the whole calibration of `device` (whose config is the one to improve) with the
/// `fixture`'s points. The device's config is updated in place (offsets, torque constants).
pub fn calibrate<T: HidTransport, P: ArmProtocol, O: Operator>(
    device: &mut ArmDevice<T, P>,
    fixture: &Fixture,
    operator: &mut O,
    pacing: Pacing,
) -> Result<CalibrationResult, CalibrateError> {
    let mut s = Session {
        device,
        operator,
        pacing,
        tick: 0,
    };
    // 1. Home.
    s.wait_for(&Step::Home)?;
    let (_, mean_counts) = s.average(&Step::Home)?;
    let home_read = mean_counts.map(|c| c.round() as i16);
    let mut config = s.device.config().clone();
    if P::SETS_ENCODERS {
        let home = config.home_counts();
        s.device.set_encoders(home, [0; 3])?;
        // Reports already on their way carry the old counts: let them pass.
        for _ in 0..50 {
            match s.tick([0.0; 3]) {
                Ok(_) | Err(CalibrateError::Device(DeviceError::BadReport { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        let (_, now) = s.average(&Step::Home)?;
        if (0..3).any(|k| (now[k] - f64::from(home[k])).abs() > 2.0) {
            return Err(CalibrateError::Device(DeviceError::BadReport {
                device: s.device.info().name.as_str().into(),
                what: "the device did not take the set-encoders command",
            }));
        }
    } else {
        config.kinematics.encoder_offset_counts = home_read.map(i32::from);
        s.device.replace_config(config.clone());
    }
    // 2. Registration.
    let world: Vec<Vector3<f64>> = fixture.points_m.iter().map(|p| Vector3::from(*p)).collect();
    let mut touched = Vec::with_capacity(world.len());
    for (index, w) in world.iter().enumerate() {
        let step = Step::Touch {
            index,
            count: world.len(),
            world_m: (*w).into(),
        };
        s.wait_for(&step)?;
        touched.push(s.average(&step)?.0);
    }
    let (iso, residuals) = rigid_fit(&touched, &world).map_err(CalibrateError::Fit)?;
    let rms = (residuals.iter().map(|r| r * r).sum::<f64>() / residuals.len() as f64).sqrt();
    let max = residuals.iter().cloned().fold(0.0, f64::max);
    if rms > MAX_RESIDUAL_RMS_M {
        return Err(CalibrateError::Residual {
            rms_mm: rms * 1e3,
            max_mm: max * 1e3,
            limit_mm: MAX_RESIDUAL_RMS_M * 1e3,
        });
    }
    let q = iso.rotation.coords;
    let registration = Registration {
        format_version: 1,
        device: P::PROFILE.into(),
        translation_m: iso.translation.vector.into(),
        rotation_xyzw: [q.x, q.y, q.z, q.w],
        residual_rms_m: rms,
        residual_max_m: max,
        points: world.len() as u32,
    };
    // 3. Force scale: push down on the gauge (device -z), ramped by the loop's guard.
    s.wait_for(&Step::ForceCheck)?;
    let info = s.device.info().clone();
    let mut guard = ForceGuard::new(SafetyLimits {
        max_force_n: info.max_force_n,
        max_force_rate_n_per_s: info.max_force_rate_n_per_s.min(20.0),
        stall_ticks: 20,
    });
    let mut fresh = true;
    for _ in 0..FORCE_CHECK_TICKS {
        let (f, _) = guard.apply(
            Vector3::new(0.0, 0.0, -FORCE_CHECK_N),
            GuardInput {
                fresh_input: fresh,
                ..GuardInput::default()
            },
            1e-3,
        );
        fresh = s.tick(f.into())?.is_some();
    }
    let reading = s.operator.gauge_reading_n();
    // Release before anything else.
    s.tick([0.0; 3])?;
    let reading = reading.map_err(|OperatorGaveUp| CalibrateError::Cancelled {
        step: Step::ForceCheck.name(),
    })?;
    let scale = reading / FORCE_CHECK_N;
    if !(0.5..=2.0).contains(&scale) {
        return Err(CalibrateError::ForceScale {
            reading_n: reading,
            commanded_n: FORCE_CHECK_N,
        });
    }
    for k in config.motors.torque_constant_nm_per_a.iter_mut() {
        *k *= scale;
    }
    let config_toml = config.to_toml();
    s.device.replace_config(config.clone());
    Ok(CalibrationResult {
        device: P::PROFILE.into(),
        home_counts_read: home_read,
        encoder_offset_counts: config.kinematics.encoder_offset_counts,
        registration,
        residuals_m: residuals,
        force_scale: scale,
        config_toml,
    })
}

/// The registration fixture shipped with the repository.
pub const DEFAULT_FIXTURE: &str = include_str!("../../calibration/registration/phantom-tray.toml");
/// Its path in the repository.
pub const DEFAULT_FIXTURE_PATH: &str = "calibration/registration/phantom-tray.toml";

/// An emulated arm as built, to calibrate: what is wrong with it and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatedArmTruth {
    /// Its encoders read this many counts more than the shipped calibration expects.
    pub encoder_shift_counts: [i32; 3],
    /// Its motors push this much harder than the shipped torque constants say.
    pub torque_scale: f64,
    /// Where it really stands: device frame to world frame.
    pub device_to_world: Isometry3<f64>,
}

/// Ticks the scripted hand dwells at each pose; it arrives over [`MOVE_TICKS`] before.
const DWELL_TICKS: u64 = 1_500;
const MOVE_TICKS: u64 = 500;

/// An emulated arm (`truth`) with the shipped calibration on the host side, and a scripted
/// operator whose hand takes the stylus to the home pose, to each of `fixture`'s points and
/// onto the gauge, confirming each step once it is there.
#[allow(clippy::type_complexity)]
pub fn emulated<P: ArmProtocol>(
    fixture: &Fixture,
    truth: &EmulatedArmTruth,
) -> Result<
    (
        ArmDevice<super::transport::InProcessTransport<super::arm::EmulatedArm<P>>, P>,
        ScriptedOperator<P>,
    ),
    CalibrateError,
> {
    use super::arm::EmulatedArm;
    use super::sim::{Script, Waypoint};
    use super::transport::InProcessTransport;

    let shipped = ArmConfig::<P>::default_design();
    let mut built = shipped.clone();
    for k in built.motors.torque_constant_nm_per_a.iter_mut() {
        *k *= truth.torque_scale;
    }
    let home = shipped.tip_position(shipped.joint_angles(shipped.home_counts()));
    let to_device = truth.device_to_world.inverse();
    let mut poses: Vec<Vector3<f64>> = vec![home];
    for p in &fixture.points_m {
        poses.push(to_device.transform_point(&Point3::from(*p)).coords);
    }
    // The gauge sits at the workspace centre.
    let gauge = Vector3::zeros();
    poses.push(gauge);
    let gauge_angles = built.inverse_kinematics(gauge).ok_or_else(|| {
        CalibrateError::Fit("the workspace centre is out of the arm's reach".into())
    })?;
    let mut waypoints = Vec::new();
    let mut confirm = Vec::new();
    for (i, p) in poses.iter().enumerate() {
        if built.inverse_kinematics(*p).is_none() {
            return Err(CalibrateError::Fit(format!(
                "pose {i} ({:.3}, {:.3}, {:.3}) m in the device frame is out of the arm's reach",
                p.x, p.y, p.z
            )));
        }
        let arrive = i as u64 * (MOVE_TICKS + DWELL_TICKS) + if i == 0 { 0 } else { MOVE_TICKS };
        let leave = (i as u64 + 1) * (MOVE_TICKS + DWELL_TICKS);
        // The last pose (the gauge) is held for a minute.
        let leave = if i + 1 == poses.len() {
            leave + 60_000
        } else {
            leave
        };
        for t in [arrive, leave] {
            waypoints.push(Waypoint {
                t_s: t as f64 * 1e-3,
                tip_in_device_m: (*p).into(),
            });
        }
        // Confirm a little after arriving; the 200-report average fits in the dwell. The
        // Polhem's home step reads twice (before and after setting its counters).
        confirm.push(arrive + 300);
    }
    let emulator = EmulatedArm::<P>::new(built.clone(), Script::new(waypoints), 1e-3)
        .with_encoder_shift(truth.encoder_shift_counts);
    let operator = ScriptedOperator::new(confirm, emulator.monitor(), built, gauge_angles);
    let name = format!("{} (emulated, to calibrate)", P::NAME);
    let device = ArmDevice::new(InProcessTransport::new(emulator), shipped, &name);
    Ok((device, operator))
}

/// What `haptwin calibrate` is asked to do.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    /// `woodenhaptics`, `polhem`, `emulated:woodenhaptics` or `emulated:polhem`.
    pub device: String,
    /// Fixture file (`None`: the shipped phantom tray).
    pub fixture: Option<PathBuf>,
    /// Folder the results go to.
    pub out_dir: PathBuf,
    /// The hidraw node to open (`None`: the first device with the profile's VID:PID).
    pub path: Option<PathBuf>,
    /// Calibration file to start from (`None`: the shipped one).
    pub config: Option<PathBuf>,
}

/// What `haptwin calibrate` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CalibrateReport {
    /// The result.
    pub result: CalibrationResult,
    /// The calibration file written.
    pub config_path: PathBuf,
    /// The registration file written.
    pub registration_path: PathBuf,
    /// For an emulated device: how far the result is from the arm as it was built.
    pub emulated_truth_error: Option<TruthError>,
}

/// How far an emulated calibration landed from the truth.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TruthError {
    pub translation_m: f64,
    pub rotation_deg: f64,
    pub force_scale: f64,
}

/// The emulated arm `haptwin calibrate emulated:*` calibrates: encoders 37, -52 and 18 counts
/// off, motors 8 % weaker than the shipped constants, stood 3 to 4 mm and 4 degrees away from
/// where the demo puts it (`placement`).
pub fn demo_truth(placement: Isometry3<f64>) -> EmulatedArmTruth {
    let nudge = Isometry3::from_parts(
        Translation3::new(0.003, -0.002, 0.004),
        UnitQuaternion::from_axis_angle(&Vector3::y_axis(), 4f64.to_radians()),
    );
    EmulatedArmTruth {
        encoder_shift_counts: [37, -52, 18],
        torque_scale: 0.92,
        device_to_world: nudge * placement,
    }
}

/// Runs `haptwin calibrate`: picks the device, calibrates it, writes and re-validates the
/// result files. `placement` is where emulated arms stand nominally.
pub fn run_command(
    opts: &CalibrateOptions,
    placement: Isometry3<f64>,
) -> Result<CalibrateReport, CalibrateError> {
    use super::polhem::PolhemProtocol;
    use super::woodenhaptics::WoodenHapticsProtocol;
    let fixture = match &opts.fixture {
        Some(p) => Fixture::load(p)?,
        None => toml::from_str(DEFAULT_FIXTURE)
            .map_err(|e| file_error(Path::new(DEFAULT_FIXTURE_PATH), e.to_string()))?,
    };
    match opts.device.as_str() {
        "emulated:woodenhaptics" => {
            run_emulated::<WoodenHapticsProtocol>(opts, &fixture, placement)
        }
        "emulated:polhem" => run_emulated::<PolhemProtocol>(opts, &fixture, placement),
        "woodenhaptics" => run_real::<WoodenHapticsProtocol>(opts, &fixture),
        "polhem" => run_real::<PolhemProtocol>(opts, &fixture),
        other => Err(CalibrateError::File {
            path: PathBuf::from(other),
            problem: "unknown device: use woodenhaptics, polhem, emulated:woodenhaptics or \
                      emulated:polhem"
                .into(),
        }),
    }
}

fn run_emulated<P: ArmProtocol>(
    opts: &CalibrateOptions,
    fixture: &Fixture,
    placement: Isometry3<f64>,
) -> Result<CalibrateReport, CalibrateError> {
    let truth = demo_truth(placement);
    let (mut device, mut operator) = emulated::<P>(fixture, &truth)?;
    let result = calibrate(&mut device, fixture, &mut operator, Pacing::Immediate)?;
    let found = result.registration.device_to_world();
    let error = TruthError {
        translation_m: (found.translation.vector - truth.device_to_world.translation.vector).norm(),
        rotation_deg: found
            .rotation
            .angle_to(&truth.device_to_world.rotation)
            .to_degrees(),
        force_scale: result.force_scale - truth.torque_scale,
    };
    let mut report = write_results::<P>(&opts.out_dir, result)?;
    report.emulated_truth_error = Some(error);
    Ok(report)
}

fn run_real<P: ArmProtocol>(
    opts: &CalibrateOptions,
    fixture: &Fixture,
) -> Result<CalibrateReport, CalibrateError> {
    use super::transport::HidapiTransport;
    let config = match &opts.config {
        Some(p) => ArmConfig::<P>::load(p).map_err(|e| file_error(p, e.to_string()))?,
        None => ArmConfig::<P>::default_design(),
    };
    let known = super::profiles::KNOWN_DEVICES
        .iter()
        .find(|d| d.profile == P::PROFILE)
        .ok_or_else(|| file_error(Path::new(P::PROFILE), "no such profile".into()))?;
    let hid_error = |e: hidapi::HidError| {
        file_error(
            opts.path.as_deref().unwrap_or(Path::new(P::PROFILE)),
            format!(
                "cannot open the device: {e} (is it plugged in? `haptwin devices` checks \
                 access)"
            ),
        )
    };
    let api = hidapi::HidApi::new().map_err(hid_error)?;
    let transport = match &opts.path {
        Some(p) => {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
                .map_err(|_| file_error(p, "a path without NUL bytes".into()))?;
            HidapiTransport::open_path(&api, &c)
        }
        None => HidapiTransport::open(&api, known.vendor_id, known.product_id),
    }
    .map_err(hid_error)?;
    let mut device = ArmDevice::<_, P>::new(transport, config, known.name);
    let mut operator =
        TerminalOperator::new().map_err(|e| file_error(Path::new("stdin"), e.to_string()))?;
    let result = calibrate(&mut device, fixture, &mut operator, Pacing::RealTime)?;
    write_results::<P>(&opts.out_dir, result)
}

/// Writes `<profile>.toml` and `<profile>-registration.toml` into `dir` and reads them back
/// through their validating loaders.
pub fn write_results<P: ArmProtocol>(
    dir: &Path,
    result: CalibrationResult,
) -> Result<CalibrateReport, CalibrateError> {
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e.to_string()))?;
    let config_path = dir.join(format!("{}.toml", P::PROFILE));
    let registration_path = dir.join(format!("{}-registration.toml", P::PROFILE));
    let header = format!(
        "# Written by `haptwin calibrate {}` (haptwin {}). Encoder offsets at the home pose and\n\
         # torque constants scaled by the force check ({:.4}); see {} for the fields.\n\n",
        P::PROFILE,
        env!("CARGO_PKG_VERSION"),
        result.force_scale,
        P::CONFIG_PATH
    );
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|e| file_error(path, e.to_string()))
    };
    write(&config_path, header + &result.config_toml)?;
    let reg_header = format!(
        "# Written by `haptwin calibrate {}`: the device frame in the world frame, fitted to {} \
         touched points\n# (RMS residual {:.3} mm, largest {:.3} mm).\n\n",
        P::PROFILE,
        result.registration.points,
        result.registration.residual_rms_m * 1e3,
        result.registration.residual_max_m * 1e3
    );
    let reg_text = toml::to_string(&result.registration)
        .map_err(|e| file_error(&registration_path, e.to_string()))?;
    write(&registration_path, reg_header + &reg_text)?;
    ArmConfig::<P>::load(&config_path).map_err(|e| file_error(&config_path, e.to_string()))?;
    Registration::load(&registration_path, P::PROFILE)?;
    Ok(CalibrateReport {
        result,
        config_path,
        registration_path,
        emulated_truth_error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haptics::polhem::PolhemProtocol;
    use crate::haptics::woodenhaptics::WoodenHapticsProtocol;

    fn truth() -> EmulatedArmTruth {
        demo_truth(crate::demo::woodenhaptics_to_world())
    }

    fn fixture() -> Fixture {
        toml::from_str(DEFAULT_FIXTURE).unwrap()
    }

    fn check<P: ArmProtocol>() -> CalibrationResult {
        let t = truth();
        let (mut dev, mut op) = emulated::<P>(&fixture(), &t).unwrap();
        let r = calibrate(&mut dev, &fixture(), &mut op, Pacing::Immediate).unwrap();
        // Registration: the true placement, to encoder quantisation.
        let found = r.registration.device_to_world();
        let dt = (found.translation.vector - t.device_to_world.translation.vector).norm();
        let dr = found.rotation.angle_to(&t.device_to_world.rotation);
        assert!(dt < 0.5e-3, "translation off by {dt} m");
        assert!(dr < 0.2f64.to_radians(), "rotation off by {dr} rad");
        assert!(
            r.registration.residual_rms_m < 0.3e-3,
            "{:?}",
            r.registration
        );
        // Force: the motors are 8 % weaker than the shipped constants say.
        assert!((r.force_scale - 0.92).abs() < 0.02, "{}", r.force_scale);
        // The saved calibration reads back.
        let back = ArmConfig::<P>::parse(&r.config_toml, Path::new("x.toml")).unwrap();
        assert_eq!(&back, dev.config());
        r
    }

    #[test]
    fn an_emulated_woodenhaptics_is_calibrated_back_to_how_it_was_built() {
        let r = check::<WoodenHapticsProtocol>();
        // Its home reads the shift; the offsets take it.
        assert_eq!(r.home_counts_read, [37, -52, 18]);
        assert_eq!(r.encoder_offset_counts, [37, -52, 18]);
    }

    #[test]
    fn an_emulated_polhem_is_told_its_home_counts() {
        let r = check::<PolhemProtocol>();
        assert_eq!(r.home_counts_read, [37, -52, 18]);
        // The counters were set to the calibration's home: the offsets stay.
        assert_eq!(r.encoder_offset_counts, [0, 0, 0]);
    }

    #[test]
    fn rigid_fit_recovers_a_transform_and_refuses_degenerate_points() {
        let iso = truth().device_to_world;
        let d: Vec<Vector3<f64>> = vec![
            Vector3::new(0.0, 0.0, 0.0),
            Vector3::new(0.05, 0.0, 0.0),
            Vector3::new(0.0, 0.05, 0.01),
            Vector3::new(0.02, -0.03, 0.04),
        ];
        let w: Vec<Vector3<f64>> = d.iter().map(|p| (iso * Point3::from(*p)).coords).collect();
        let (fit, res) = rigid_fit(&d, &w).unwrap();
        assert!(res.iter().all(|r| *r < 1e-12), "{res:?}");
        assert!((fit.translation.vector - iso.translation.vector).norm() < 1e-12);
        // A mirror image is not a rigid motion: the fit stays a rotation.
        let mirrored: Vec<Vector3<f64>> = w.iter().map(|p| Vector3::new(-p.x, p.y, p.z)).collect();
        let (fit, res) = rigid_fit(&d, &mirrored).unwrap();
        assert!(fit.rotation.to_rotation_matrix().matrix().determinant() > 0.99);
        assert!(res.iter().any(|r| *r > 1e-3));
        let line: Vec<Vector3<f64>> = (0..4)
            .map(|i| Vector3::new(i as f64 * 0.01, 0.0, 0.0))
            .collect();
        assert!(rigid_fit(&line, &w).unwrap_err().contains("collinear"));
        assert!(rigid_fit(&d[..2], &w[..2])
            .unwrap_err()
            .contains("at least 3"));
    }

    #[test]
    fn bad_files_are_refused_with_the_path_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("reg.toml");
        let good = Registration {
            format_version: 1,
            device: "woodenhaptics".into(),
            translation_m: [0.0, 0.02, 0.0],
            rotation_xyzw: [0.0, 0.0, 0.0, 1.0],
            residual_rms_m: 1e-4,
            residual_max_m: 2e-4,
            points: 5,
        };
        std::fs::write(&p, toml::to_string(&good).unwrap()).unwrap();
        assert_eq!(Registration::load(&p, "woodenhaptics").unwrap(), good);
        let err = Registration::load(&p, "polhem").unwrap_err().to_string();
        assert!(
            err.contains("reg.toml") && err.contains("expected \"polhem\""),
            "{err}"
        );
        let bad = toml::to_string(&Registration {
            rotation_xyzw: [0.0, 0.0, 0.5, 1.0],
            ..good.clone()
        })
        .unwrap();
        std::fs::write(&p, bad).unwrap();
        let err = Registration::load(&p, "woodenhaptics")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a unit quaternion"), "{err}");
        std::fs::write(&p, "format_version = 2").unwrap();
        assert!(Registration::load(&p, "woodenhaptics").is_err());
        let f = dir.path().join("fixture.toml");
        std::fs::write(
            &f,
            "format_version = 1\ndescription = \"x\"\npoints_m = [[0.0, 0.0, 0.0]]\n",
        )
        .unwrap();
        let err = Fixture::load(&f).unwrap_err().to_string();
        assert!(err.contains("at least 3"), "{err}");
    }
}
