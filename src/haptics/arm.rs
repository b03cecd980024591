//! Serial-link force-feedback arms over USB HID (WoodenHaptics 1.5, Haptikfabriken Polhem): the
//! shared calibration file and kinematics, the device, and an emulated arm that speaks the same
//! bytes.
//!
//! Both devices are 3-DoF arms (`shared/reference/devices.md`): body A turns about the vertical
//! axis, bodies B and C move in the vertical plane through it, each joint driven by a motor
//! through a capstan. Encoder counts become joint angles, forward kinematics gives the stylus
//! tip, and a force becomes joint torques through the Jacobian transpose, motor torques through
//! the capstans, and currents through the torque constants, clamped to the amplifier's limit.
//! The constants come from a versioned TOML file per device (`calibration/<profile>.toml`).
//! What differs between devices is only the byte layout of their reports: an [`ArmProtocol`]
//! (`woodenhaptics.rs`, `polhem.rs`).
//!
//! Contract: [`ArmDevice::read`] drains the transport and keeps the newest report, and neither
//! it nor [`ArmDevice::write_force`] blocks or allocates. A report of the wrong length, or
//! encoder counts that jump further than the arm can move in a millisecond, is a bad report
//! (the loop zeroes the force). Without a believable pose only zero current is written.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;

use nalgebra::{Matrix3, Vector3};

use super::device::{DeviceError, DeviceInfo, DeviceSample, HapticDevice};
use super::sim::Script;
use super::transport::{EmulatedDevice, HidTransport, TransportError, MAX_REPORT};
use super::watchdog::ForceZeroer;

/// One decoded input report of an arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArmInput {
    /// Encoder counts of bodies A, B, C.
    pub counts: [i16; 3],
    /// Encoder counts of the stylus gimbal (devices with 6-DoF input; zero otherwise).
    pub gimbal_counts: [i16; 3],
    /// Button and switch bits (bit 0: the calibration switch on a Polhem).
    pub buttons: u32,
    /// The device's report counter (zero on devices without one).
    pub counter: u16,
}

/// One output report to an arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmCommand {
    /// Drive the motors with these currents, mA.
    Currents([i16; 3]),
    /// Set the encoder counters (arm and gimbal) to these values, with the motors off: how a
    /// device that supports it is calibrated at its home pose.
    SetEncoders {
        /// New counts of bodies A, B, C.
        arm: [i16; 3],
        /// New counts of the gimbal.
        gimbal: [i16; 3],
    },
}

/// The byte layout of one device's reports. Implementations are pure functions on byte slices:
/// no allocation, no panics on any input.
pub trait ArmProtocol: Send + Sync + fmt::Debug + 'static {
    /// Profile name (`calibration/<PROFILE>.toml`, `emulated:<PROFILE>`).
    const PROFILE: &'static str;
    /// Human-readable device name.
    const NAME: &'static str;
    /// The shipped calibration's text.
    const DEFAULT_CONFIG: &'static str;
    /// The shipped calibration's path in the repository.
    const CONFIG_PATH: &'static str;
    /// Bytes of an input report (no report-ID byte).
    const INPUT_LEN: usize;
    /// Bytes of an output report, report-ID byte included.
    const OUTPUT_LEN: usize;
    /// Whether the firmware takes [`ArmCommand::SetEncoders`].
    const SETS_ENCODERS: bool;

    /// Decodes an input report.
    fn decode_input(bytes: &[u8]) -> Result<ArmInput, &'static str>;
    /// Encodes an input report (what the device sends) into `out`; returns its length.
    fn encode_input(input: &ArmInput, out: &mut [u8; MAX_REPORT]) -> usize;
    /// Encodes an output report (report ID 0 first) into `out`; returns its length.
    /// `counter` is sent by devices whose reports carry one.
    fn encode_output(command: &ArmCommand, counter: u16, out: &mut [u8; MAX_REPORT]) -> usize;
    /// Decodes an output report (what the device receives, report-ID byte included).
    fn decode_output(bytes: &[u8]) -> Result<(ArmCommand, u16), &'static str>;
}

/// Kinematic parameters (see `calibration/woodenhaptics.toml`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct KinematicsConfig {
    pub capstan_diameter_m: [f64; 3],
    pub body_diameter_m: [f64; 3],
    pub body_length_m: [f64; 3],
    pub workspace_origin_m: [f64; 3],
    pub workspace_radius_m: f64,
    pub encoder_cpr: [u32; 3],
    pub encoder_offset_counts: [i32; 3],
    pub motor_sign: [i8; 3],
}

/// Motor constants.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MotorsConfig {
    pub torque_constant_nm_per_a: [f64; 3],
    pub max_current_a: f64,
}

/// Force limits enforced by the loop's guard.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_force_n: f64,
    pub max_force_rate_n_per_s: f64,
    pub max_stiffness_n_per_m: f64,
}

/// The calibration file of an arm speaking protocol `P` (`calibration/<profile>.toml`). The
/// type parameter keeps a Polhem's calibration out of a WoodenHaptics and the other way round.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, bound = "")]
pub struct ArmConfig<P: ArmProtocol> {
    pub format_version: u32,
    pub device: String,
    pub kinematics: KinematicsConfig,
    pub motors: MotorsConfig,
    pub limits: LimitsConfig,
    #[serde(skip)]
    protocol: PhantomData<P>,
}

impl<P: ArmProtocol> Clone for ArmConfig<P> {
    fn clone(&self) -> Self {
        Self {
            format_version: self.format_version,
            device: self.device.clone(),
            kinematics: self.kinematics.clone(),
            motors: self.motors.clone(),
            limits: self.limits.clone(),
            protocol: PhantomData,
        }
    }
}

impl<P: ArmProtocol> PartialEq for ArmConfig<P> {
    fn eq(&self, other: &Self) -> bool {
        self.format_version == other.format_version
            && self.device == other.device
            && self.kinematics == other.kinematics
            && self.motors == other.motors
            && self.limits == other.limits
    }
}

/// Why a calibration file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path} is not a {device} calibration: {message}")]
    Parse {
        path: PathBuf,
        device: &'static str,
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {field} {problem}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
}

impl<P: ArmProtocol> ArmConfig<P> {
    /// The calibration shipped in the repository (the open design's defaults).
    pub fn default_design() -> Self {
        Self::parse(P::DEFAULT_CONFIG, Path::new(P::CONFIG_PATH))
            .expect("the shipped calibrations are valid (tested)")
    }

    /// Reads and validates a calibration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates calibration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            device: P::NAME,
            message: e.to_string(),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |field: &'static str, problem: String| {
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                field,
                problem,
            })
        };
        if self.format_version != 1 {
            return bad(
                "format_version",
                format!("is {}, this haptwin reads 1", self.format_version),
            );
        }
        if self.device != P::PROFILE {
            return bad(
                "device",
                format!("is {:?}, expected {:?}", self.device, P::PROFILE),
            );
        }
        let k = &self.kinematics;
        let positive = |v: &[f64]| v.iter().all(|x| x.is_finite() && *x > 0.0);
        if !positive(&k.capstan_diameter_m) {
            return bad("kinematics.capstan_diameter_m", "must be positive".into());
        }
        if !positive(&k.body_diameter_m) {
            return bad("kinematics.body_diameter_m", "must be positive".into());
        }
        if !positive(&k.body_length_m) {
            return bad("kinematics.body_length_m", "must be positive".into());
        }
        if !k.workspace_origin_m.iter().all(|x| x.is_finite()) {
            return bad("kinematics.workspace_origin_m", "must be finite".into());
        }
        if !(k.workspace_radius_m.is_finite() && k.workspace_radius_m > 0.0) {
            return bad("kinematics.workspace_radius_m", "must be positive".into());
        }
        if k.encoder_offset_counts
            .iter()
            .any(|c| !(i16::MIN as i32..=i16::MAX as i32).contains(c))
        {
            return bad(
                "kinematics.encoder_offset_counts",
                format!(
                    "must fit the reports' 16-bit counts, is {:?}",
                    k.encoder_offset_counts
                ),
            );
        }
        if k.encoder_cpr.contains(&0) {
            return bad("kinematics.encoder_cpr", "must be positive".into());
        }
        if !k.motor_sign.iter().all(|s| *s == 1 || *s == -1) {
            return bad(
                "kinematics.motor_sign",
                format!("must be 1 or -1, is {:?}", k.motor_sign),
            );
        }
        if !positive(&self.motors.torque_constant_nm_per_a) {
            return bad("motors.torque_constant_nm_per_a", "must be positive".into());
        }
        let amps = self.motors.max_current_a;
        if !(amps.is_finite() && amps > 0.0 && amps * 1000.0 <= i16::MAX as f64) {
            return bad(
                "motors.max_current_a",
                format!("must be in (0, 32.767] A, is {amps}"),
            );
        }
        let l = &self.limits;
        if !positive(&[
            l.max_force_n,
            l.max_force_rate_n_per_s,
            l.max_stiffness_n_per_m,
        ]) {
            return bad("limits", "every limit must be positive".into());
        }
        Ok(())
    }

    /// Joint angle per encoder count of each body, radians (capstan over body diameter).
    fn rad_per_count(&self) -> [f64; 3] {
        let k = &self.kinematics;
        std::array::from_fn(|i| {
            std::f64::consts::TAU / k.encoder_cpr[i] as f64 * k.capstan_diameter_m[i]
                / k.body_diameter_m[i]
        })
    }

    /// Joint angles `(tA, tB, tC)` at these encoder counts, radians (`tC` from the downward
    /// vertical: 90 degrees at home).
    pub fn joint_angles(&self, counts: [i16; 3]) -> [f64; 3] {
        let per = self.rad_per_count();
        let off = self.kinematics.encoder_offset_counts;
        let a: [f64; 3] = std::array::from_fn(|i| (counts[i] as i32 - off[i]) as f64 * per[i]);
        [a[0], a[1], a[2] + std::f64::consts::FRAC_PI_2]
    }

    /// Encoder counts at these joint angles (rounded; the inverse of [`Self::joint_angles`]).
    pub fn counts_at(&self, angles: [f64; 3]) -> [i16; 3] {
        let per = self.rad_per_count();
        let off = self.kinematics.encoder_offset_counts;
        let rel = [
            angles[0],
            angles[1],
            angles[2] - std::f64::consts::FRAC_PI_2,
        ];
        std::array::from_fn(|i| {
            ((rel[i] / per[i]).round() as i64 + off[i] as i64)
                .clamp(i16::MIN as i64, i16::MAX as i64) as i16
        })
    }

    /// The encoder counts at the home pose (the calibrated offsets).
    pub fn home_counts(&self) -> [i16; 3] {
        self.kinematics
            .encoder_offset_counts
            .map(|c| c.clamp(i16::MIN as i32, i16::MAX as i32) as i16)
    }

    /// The calibration as TOML text (what `haptwin calibrate` writes; [`Self::parse`] reads
    /// it back to the same values).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a calibration always serializes")
    }

    /// Stylus tip in the device frame (x forward, y left, z up, origin at the workspace
    /// centre), metres.
    pub fn tip_position(&self, angles: [f64; 3]) -> Vector3<f64> {
        let [_, b, c] = self.kinematics.body_length_m;
        let a = self.kinematics.body_length_m[0];
        let [ta, tb, tc] = angles;
        let reach = b * tb.sin() + c * tc.sin();
        let o = self.kinematics.workspace_origin_m;
        Vector3::new(
            ta.cos() * reach - o[0],
            ta.sin() * reach - o[1],
            a + b * tb.cos() - c * tc.cos() - o[2],
        )
    }

    /// d tip / d (tA, tB, tC): column j is the tip's velocity per unit rate of joint j.
    pub fn jacobian(&self, angles: [f64; 3]) -> Matrix3<f64> {
        let [_, b, c] = self.kinematics.body_length_m;
        let [ta, tb, tc] = angles;
        let reach = b * tb.sin() + c * tc.sin();
        Matrix3::new(
            -ta.sin() * reach,
            b * ta.cos() * tb.cos(),
            c * ta.cos() * tc.cos(),
            ta.cos() * reach,
            b * ta.sin() * tb.cos(),
            c * ta.sin() * tc.cos(),
            0.0,
            -b * tb.sin(),
            c * tc.sin(),
        )
    }

    /// Joint angles that put the tip at `tip_in_device_m` with the elbow as at home (B above C),
    /// or `None` out of reach.
    pub fn inverse_kinematics(&self, tip_in_device_m: Vector3<f64>) -> Option<[f64; 3]> {
        let [a, b, c] = self.kinematics.body_length_m;
        let o = self.kinematics.workspace_origin_m;
        let p = tip_in_device_m + Vector3::from(o);
        let ta = p.y.atan2(p.x);
        let (r, z) = ((p.x * p.x + p.y * p.y).sqrt(), p.z - a);
        // In the (r, z) plane: B = b (cos beta, sin beta) with beta = 90 deg - tB, C = c (cos
        // psi, sin psi) with psi = tC - 90 deg, and B + C = (r, z).
        let d2 = r * r + z * z;
        let cos_delta = (d2 - b * b - c * c) / (2.0 * b * c);
        if !(-1.0..=1.0).contains(&cos_delta) {
            return None;
        }
        let delta = -cos_delta.acos();
        let beta = z.atan2(r) - (c * delta.sin()).atan2(b + c * delta.cos());
        let psi = beta + delta;
        Some([
            ta,
            std::f64::consts::FRAC_PI_2 - beta,
            psi + std::f64::consts::FRAC_PI_2,
        ])
    }

    /// Motor currents (A, clamped to the amplifier) that make the tip push with `force_n`
    /// (device frame) at these joint angles: joint torques `J^T F`, motor torques through the
    /// capstans (virtual work: a motor turns `body / capstan` times as far as its joint), then
    /// the torque constants and wiring signs.
    pub fn motor_currents_a(&self, force_n: Vector3<f64>, angles: [f64; 3]) -> [f64; 3] {
        let joint = self.jacobian(angles).transpose() * force_n;
        let k = &self.kinematics;
        let max = self.motors.max_current_a;
        std::array::from_fn(|i| {
            let motor_torque = joint[i] * k.capstan_diameter_m[i] / k.body_diameter_m[i];
            let amps =
                motor_torque / self.motors.torque_constant_nm_per_a[i] * f64::from(k.motor_sign[i]);
            amps.clamp(-max, max)
        })
    }

    /// The force at the tip (device frame) that motor currents produce at these joint angles:
    /// the inverse of [`Self::motor_currents_a`] (what the emulated arm pushes with).
    pub fn tip_force_n(&self, currents_a: [f64; 3], angles: [f64; 3]) -> Option<Vector3<f64>> {
        let k = &self.kinematics;
        let joint = Vector3::from_fn(|i, _| {
            currents_a[i]
                * f64::from(k.motor_sign[i])
                * self.motors.torque_constant_nm_per_a[i]
                * k.body_diameter_m[i]
                / k.capstan_diameter_m[i]
        });
        self.jacobian(angles)
            .transpose()
            .try_inverse()
            .map(|jt| jt * joint)
    }
}

/// Amps to the protocols' mA, rounded and clamped to `i16`.
pub fn to_milliamps(a: f64) -> i16 {
    (a * 1000.0).round().clamp(i16::MIN as f64, i16::MAX as f64) as i16
}

/// The largest encoder jump between two reports that is still believable: a quarter turn of a
/// motor (the arm cannot move that far in a millisecond).
fn max_jump_counts<P: ArmProtocol>(cfg: &ArmConfig<P>) -> [i32; 3] {
    std::array::from_fn(|i| (cfg.kinematics.encoder_cpr[i] / 4).max(1) as i32)
}

/// An arm speaking protocol `P` on a transport.
#[derive(Debug)]
pub struct ArmDevice<T: HidTransport, P: ArmProtocol> {
    transport: T,
    config: ArmConfig<P>,
    info: DeviceInfo,
    name: Arc<str>,
    buf: [u8; MAX_REPORT],
    out: [u8; MAX_REPORT],
    last: Option<ArmInput>,
    max_jump: [i32; 3],
    counter: u16,
    /// Counts a set-encoders command asked for, until a report carries them (reports sent
    /// before the device took the command still hold the old counts).
    pending_counts: Option<[i16; 3]>,
    /// Reports read while waiting for them.
    pending_reports: u32,
}

/// Reports a set-encoders command may take to show before it counts as refused.
pub const SET_ENCODERS_REPORTS: u32 = 200;

impl<T: HidTransport, P: ArmProtocol> ArmDevice<T, P> {
    /// An arm with `config` on `transport`, named `name` in errors and reports.
    pub fn new(transport: T, config: ArmConfig<P>, name: &str) -> Self {
        Self {
            transport,
            info: DeviceInfo {
                name: name.to_string(),
                max_force_n: config.limits.max_force_n,
                max_force_rate_n_per_s: config.limits.max_force_rate_n_per_s,
                max_stiffness_n_per_m: config.limits.max_stiffness_n_per_m,
            },
            max_jump: max_jump_counts(&config),
            config,
            name: Arc::from(name),
            buf: [0; MAX_REPORT],
            out: [0; MAX_REPORT],
            last: None,
            counter: 0,
            pending_counts: None,
            pending_reports: 0,
        }
    }

    /// The transport (for inspection, e.g. the emulator's state).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The calibration in use.
    pub fn config(&self) -> &ArmConfig<P> {
        &self.config
    }

    /// Uses `config` from now on (after a calibration). The jump check starts over.
    pub fn replace_config(&mut self, config: ArmConfig<P>) {
        self.info.max_force_n = config.limits.max_force_n;
        self.info.max_force_rate_n_per_s = config.limits.max_force_rate_n_per_s;
        self.info.max_stiffness_n_per_m = config.limits.max_stiffness_n_per_m;
        self.max_jump = max_jump_counts(&config);
        self.config = config;
        self.last = None;
    }

    /// The newest input report decoded (raw counts, gimbal, buttons), if any arrived yet.
    pub fn last_input(&self) -> Option<ArmInput> {
        self.last
    }

    /// Sets the device's encoder counters to `arm` (and the gimbal's to `gimbal`), with the
    /// motors off. Only firmwares that take the command (`P::SETS_ENCODERS`); the others are
    /// calibrated through `encoder_offset_counts` in their file. Reports that left the device
    /// before it took the command still carry the old counts: [`HapticDevice::read`] skips them
    /// (`Ok(None)`) until one carries the new counts, and the jump check starts over from it;
    /// after [`SET_ENCODERS_REPORTS`] reports without them the command counts as refused.
    pub fn set_encoders(&mut self, arm: [i16; 3], gimbal: [i16; 3]) -> Result<(), DeviceError> {
        if !P::SETS_ENCODERS {
            return Err(DeviceError::BadReport {
                device: self.name.clone(),
                what: "this device's firmware cannot set its encoder counters",
            });
        }
        self.last = None;
        self.pending_counts = Some(arm);
        self.pending_reports = 0;
        self.send(&ArmCommand::SetEncoders { arm, gimbal })
    }

    fn send(&mut self, command: &ArmCommand) -> Result<(), DeviceError> {
        self.counter = self.counter.wrapping_add(1);
        let len = P::encode_output(command, self.counter, &mut self.out);
        self.transport.write_report(&self.out[..len]).map_err(|e| {
            if e == TransportError::Disconnected {
                self.last = None;
            }
            transport_error(&self.name, e)
        })
    }
}

/// A transport error as the device error the loop sees (clones the name: no allocation).
pub fn transport_error(name: &Arc<str>, e: TransportError) -> DeviceError {
    match e {
        TransportError::Disconnected => DeviceError::Disconnected {
            device: name.clone(),
        },
        TransportError::Io(errno) => DeviceError::Io {
            device: name.clone(),
            errno,
        },
    }
}

impl<T: HidTransport, P: ArmProtocol> HapticDevice for ArmDevice<T, P> {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn read(&mut self, _tick: u64) -> Result<Option<DeviceSample>, DeviceError> {
        // Drain the queue, keep the newest report.
        let mut newest: Option<Result<ArmInput, &'static str>> = None;
        loop {
            match self.transport.read_report(&mut self.buf) {
                Ok(Some(n)) => newest = Some(P::decode_input(&self.buf[..n.min(MAX_REPORT)])),
                Ok(None) => break,
                Err(e) => {
                    if e == TransportError::Disconnected {
                        // A device plugged in again may count from elsewhere: no old pose
                        // carries over.
                        self.last = None;
                    }
                    return Err(transport_error(&self.name, e));
                }
            }
        }
        let report = match newest {
            None => return Ok(None),
            Some(Err(what)) => {
                return Err(DeviceError::BadReport {
                    device: self.name.clone(),
                    what,
                })
            }
            Some(Ok(r)) => r,
        };
        if let Some(want) = self.pending_counts {
            let near = (0..3).all(|i| {
                (i32::from(report.counts[i]) - i32::from(want[i])).abs() <= self.max_jump[i]
            });
            if near {
                self.pending_counts = None;
            } else {
                self.pending_reports += 1;
                if self.pending_reports > SET_ENCODERS_REPORTS {
                    self.pending_counts = None;
                    return Err(DeviceError::BadReport {
                        device: self.name.clone(),
                        what: "the device did not take the set-encoders command",
                    });
                }
                // Sent before the device took the command: stale.
                return Ok(None);
            }
        }
        if let Some(last) = self.last {
            let jumped = (0..3).any(|i| {
                (i32::from(report.counts[i]) - i32::from(last.counts[i])).abs() > self.max_jump[i]
            });
            if jumped {
                // Keep the last believable pose: the next good report is compared with it.
                return Err(DeviceError::BadReport {
                    device: self.name.clone(),
                    what: "encoder counts jumped further than the arm can move in a report",
                });
            }
        }
        self.last = Some(report);
        let tip = self
            .config
            .tip_position(self.config.joint_angles(report.counts));
        Ok(Some(DeviceSample {
            tip_in_device_m: tip.into(),
            buttons: report.buttons,
        }))
    }

    fn write_force(&mut self, force_n: [f64; 3]) -> Result<(), DeviceError> {
        // Without a pose there is no Jacobian: only zero current is safe.
        let currents = match self.last {
            Some(last) if force_n.iter().all(|v| v.is_finite()) => self
                .config
                .motor_currents_a(
                    Vector3::from(force_n),
                    self.config.joint_angles(last.counts),
                )
                .map(to_milliamps),
            _ => [0; 3],
        };
        self.send(&ArmCommand::Currents(currents))
    }
}

/// Faults the emulated device can inject, by report number (one report per host tick).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmulatedFaults {
    /// Reports not sent (the device stalls).
    pub stall: Option<std::ops::Range<u64>>,
    /// Reports sent with a wrong length.
    pub short_report: Option<std::ops::Range<u64>>,
    /// Reports whose encoder counts jump by half a motor turn.
    pub jump: Option<std::ops::Range<u64>>,
    /// From this report on, the device is gone.
    pub unplug_at: Option<u64>,
    /// At this report the host's read blocks for this long (a driver call that hangs: only
    /// the watchdog can act).
    pub hang: Option<(u64, std::time::Duration)>,
}

/// A lock-free view of the motor currents an emulated device is driving, from any thread.
#[derive(Debug, Clone, Default)]
pub struct CurrentMonitor(Arc<([AtomicI32; 3], AtomicU64)>);

impl CurrentMonitor {
    /// The currents the amplifiers drive now, mA (zero after the device's watchdog tripped).
    pub fn currents_ma(&self) -> [i32; 3] {
        std::array::from_fn(|i| self.0 .0[i].load(Ordering::Acquire))
    }

    /// Output reports received.
    pub fn outputs(&self) -> u64 {
        self.0 .1.load(Ordering::Acquire)
    }

    fn set(&self, currents: [i16; 3], count: bool) {
        for (slot, c) in self.0 .0.iter().zip(currents) {
            slot.store(i32::from(c), Ordering::Release);
        }
        if count {
            self.0 .1.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Reports after the last command at which the device's own watchdog switches the amplifiers
/// off (0.5 s at 1 kHz, as both firmwares do).
pub const DEVICE_WATCHDOG_REPORTS: u64 = 500;

/// An emulated arm: its stylus follows a [`Script`] (a hand moving it), it reports its encoder
/// counts in protocol `P`'s bytes and takes its commands, from which it computes the force its
/// motors push the hand with. Deterministic: one report per host drain.
#[derive(Debug)]
pub struct EmulatedArm<P: ArmProtocol> {
    config: ArmConfig<P>,
    script: Script,
    dt_s: f64,
    reports: u64,
    fresh: bool,
    faults: EmulatedFaults,
    last_angles: [f64; 3],
    /// Added to the counts of the pose (what a set-encoders command changes).
    count_shift: [i32; 3],
    gimbal_counts: [i16; 3],
    buttons: u32,
    last_currents_ma: [i16; 3],
    last_counter_in: u16,
    outputs: u64,
    gone: bool,
    last_output_report: u64,
    monitor: CurrentMonitor,
    zero_request: Arc<AtomicBool>,
}

/// A second port into an emulated arm that can only switch its motors off: what the watchdog
/// writes through (as it opens a second hidraw handle on a real device).
#[derive(Debug, Clone)]
pub struct EmulatedZeroPort {
    monitor: CurrentMonitor,
    request: Arc<AtomicBool>,
}

impl ForceZeroer for EmulatedZeroPort {
    fn zero(&mut self) -> Result<(), TransportError> {
        self.request.store(true, Ordering::Release);
        // Not counted as an output report of the host's: the count shows the haptic thread's.
        self.monitor.set([0; 3], false);
        Ok(())
    }
}

impl<P: ArmProtocol> EmulatedArm<P> {
    /// An arm with `config` whose tip follows `script` (device frame), one report per `dt_s`.
    pub fn new(config: ArmConfig<P>, script: Script, dt_s: f64) -> Self {
        let home = config.joint_angles(config.home_counts());
        Self {
            config,
            script,
            dt_s,
            reports: 0,
            fresh: true,
            faults: EmulatedFaults::default(),
            last_angles: home,
            count_shift: [0; 3],
            gimbal_counts: [0; 3],
            buttons: 0,
            last_currents_ma: [0; 3],
            last_counter_in: 0,
            outputs: 0,
            gone: false,
            last_output_report: 0,
            monitor: CurrentMonitor::default(),
            zero_request: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The port a watchdog zeroes the motors through, from any thread.
    pub fn zero_port(&self) -> EmulatedZeroPort {
        EmulatedZeroPort {
            monitor: self.monitor.clone(),
            request: self.zero_request.clone(),
        }
    }

    /// The same arm with faults injected.
    pub fn with_faults(mut self, faults: EmulatedFaults) -> Self {
        self.faults = faults;
        self
    }

    /// The same arm with its encoders reading `shift` more than the calibration expects (an
    /// arm switched on away from its home pose, as real quadrature encoders are).
    pub fn with_encoder_shift(mut self, shift: [i32; 3]) -> Self {
        self.count_shift = shift;
        self
    }

    /// The same arm with its report counter (and its hand's script) starting at `report`: a
    /// device plugged in again in the middle of a session.
    pub fn starting_at_report(mut self, report: u64) -> Self {
        self.reports = report;
        self.last_output_report = report;
        self
    }

    /// The same arm holding these button bits down.
    pub fn with_buttons(mut self, buttons: u32) -> Self {
        self.buttons = buttons;
        self
    }

    /// A handle to watch the currents from another thread.
    pub fn monitor(&self) -> CurrentMonitor {
        self.monitor.clone()
    }

    /// The motor currents last commanded, mA.
    pub fn last_currents_ma(&self) -> [i16; 3] {
        self.last_currents_ma
    }

    /// Output reports received.
    pub fn outputs(&self) -> u64 {
        self.outputs
    }

    /// The counter of the last output report received.
    pub fn last_counter_in(&self) -> u16 {
        self.last_counter_in
    }

    /// The force the motors push the stylus with now (device frame, newtons).
    pub fn tip_force_n(&self) -> Vector3<f64> {
        let amps = self.last_currents_ma.map(|ma| f64::from(ma) / 1000.0);
        self.config
            .tip_force_n(amps, self.last_angles)
            .unwrap_or_else(Vector3::zeros)
    }

    /// The counts the encoders read at the current pose.
    fn counts_now(&self) -> [i16; 3] {
        let c = self.config.counts_at(self.last_angles);
        std::array::from_fn(|i| {
            (i32::from(c[i]) + self.count_shift[i]).clamp(i16::MIN as i32, i16::MAX as i32) as i16
        })
    }
}

fn in_range(r: &Option<std::ops::Range<u64>>, n: u64) -> bool {
    r.as_ref().is_some_and(|r| r.contains(&n))
}

impl<P: ArmProtocol> EmulatedDevice for EmulatedArm<P> {
    fn next_report(&mut self, buf: &mut [u8; MAX_REPORT]) -> Result<Option<usize>, TransportError> {
        if self.gone {
            return Err(TransportError::Disconnected);
        }
        // One report per drain: the host reads until nothing is left, so calls alternate
        // between a new report and the end of the queue (a 1 kHz device produces one report
        // between two 1 ms ticks, whether or not the host writes).
        if !self.fresh {
            self.fresh = true;
            return Ok(None);
        }
        self.fresh = false;
        if self.zero_request.swap(false, Ordering::AcqRel) {
            self.last_currents_ma = [0; 3];
        }
        let n = self.reports;
        self.reports += 1;
        if let Some((at, how_long)) = self.faults.hang {
            if n == at {
                std::thread::sleep(how_long);
            }
        }
        if n.saturating_sub(self.last_output_report) >= DEVICE_WATCHDOG_REPORTS {
            // No command for half a second: the firmware's watchdog cuts the amplifiers.
            self.last_currents_ma = [0; 3];
            self.monitor.set([0; 3], false);
        }
        if self.faults.unplug_at.is_some_and(|at| n >= at) {
            self.gone = true;
            return Err(TransportError::Disconnected);
        }
        if in_range(&self.faults.stall, n) {
            // Nothing this cycle; the next call starts the next one.
            self.fresh = true;
            return Ok(None);
        }
        let tip = Vector3::from(self.script.tip_at(n as f64 * self.dt_s));
        if let Some(angles) = self.config.inverse_kinematics(tip) {
            self.last_angles = angles;
        }
        let mut counts = self.counts_now();
        if in_range(&self.faults.jump, n) {
            counts[1] = counts[1].wrapping_add((self.config.kinematics.encoder_cpr[1] / 2) as i16);
        }
        let len = P::encode_input(
            &ArmInput {
                counts,
                gimbal_counts: self.gimbal_counts,
                buttons: self.buttons,
                counter: n as u16,
            },
            buf,
        );
        if in_range(&self.faults.short_report, n) {
            return Ok(Some(len - 2));
        }
        Ok(Some(len))
    }

    fn take_output(&mut self, report: &[u8]) -> Result<(), TransportError> {
        if self.gone {
            return Err(TransportError::Disconnected);
        }
        // The real devices ignore malformed output; so does the emulator.
        match P::decode_output(report) {
            Ok((ArmCommand::Currents(currents), counter)) => {
                self.last_currents_ma = currents;
                self.last_counter_in = counter;
                self.outputs += 1;
                self.last_output_report = self.reports;
                self.monitor.set(currents, true);
            }
            Ok((ArmCommand::SetEncoders { arm, gimbal }, counter)) => {
                // The firmware sets its counters and drives no current.
                let raw = self.config.counts_at(self.last_angles);
                self.count_shift = std::array::from_fn(|i| i32::from(arm[i]) - i32::from(raw[i]));
                self.gimbal_counts = gimbal;
                self.buttons &= !1;
                self.last_currents_ma = [0; 3];
                self.last_counter_in = counter;
                self.outputs += 1;
                self.last_output_report = self.reports;
                self.monitor.set([0; 3], true);
            }
            Err(_) => {}
        }
        Ok(())
    }
}
