//! WoodenHaptics 1.5 over USB HID: the byte protocol, the arm's kinematics, the device, and an
//! emulated device that speaks the same bytes.
//!
//! Protocol (`shared/reference/devices.md`; little-endian, as the device's LPC1768 is):
//! - input report, 8 bytes: three `i16` quadrature encoder counts (bodies A, B, C) and a `u16`
//!   counter;
//! - output report, 8 bytes after the report-ID byte: three `i16` motor currents in mA and a
//!   `u16` counter.
//!
//! Kinematics and electrical constants come from a versioned TOML file
//! (`calibration/woodenhaptics.toml`, described there): encoder counts become joint angles
//! through the capstan drives, forward kinematics gives the stylus tip, and a force becomes joint
//! torques through the Jacobian transpose, motor torques through the capstans, and currents
//! through the torque constants, clamped to the amplifier's limit.
//!
//! Contract: [`WoodenHaptics::read`] drains the transport and keeps the newest report, and
//! neither it nor [`WoodenHaptics::write_force`] blocks or allocates. A report of the wrong
//! length, or encoder counts that jump further than the arm can move in a millisecond, is a
//! bad report (the loop zeroes the force).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;

use nalgebra::{Matrix3, Vector3};

use super::device::{DeviceError, DeviceInfo, DeviceSample, HapticDevice};
use super::sim::Script;
use super::transport::{EmulatedDevice, HidTransport, TransportError, MAX_REPORT};

/// Bytes of an input report.
pub const INPUT_LEN: usize = 8;
/// Bytes of an output report, report-ID byte included.
pub const OUTPUT_LEN: usize = 9;

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

/// A WoodenHaptics calibration file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WoodenHapticsConfig {
    pub format_version: u32,
    pub device: String,
    pub kinematics: KinematicsConfig,
    pub motors: MotorsConfig,
    pub limits: LimitsConfig,
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
    #[error("{path} is not a WoodenHaptics calibration: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is out of range.
    #[error("{path}: {field} {problem}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
}

/// The calibration shipped with the repository (the open design's defaults).
pub const DEFAULT_CONFIG: &str = include_str!("../../calibration/woodenhaptics.toml");

impl WoodenHapticsConfig {
    /// The shipped defaults.
    pub fn default_design() -> Self {
        Self::parse(DEFAULT_CONFIG, Path::new("calibration/woodenhaptics.toml"))
            .expect("the shipped calibration is valid (tested)")
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
        if self.device != "woodenhaptics" {
            return bad(
                "device",
                format!("is {:?}, expected \"woodenhaptics\"", self.device),
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

/// A decoded input report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputReport {
    pub counts: [i16; 3],
    pub counter: u16,
}

/// Decodes an input report.
pub fn decode_input(bytes: &[u8]) -> Result<InputReport, &'static str> {
    if bytes.len() != INPUT_LEN {
        return Err("input report is not 8 bytes");
    }
    let i = |k: usize| i16::from_le_bytes([bytes[2 * k], bytes[2 * k + 1]]);
    Ok(InputReport {
        counts: [i(0), i(1), i(2)],
        counter: u16::from_le_bytes([bytes[6], bytes[7]]),
    })
}

/// Encodes an input report (what the device sends).
pub fn encode_input(r: &InputReport) -> [u8; INPUT_LEN] {
    let mut out = [0u8; INPUT_LEN];
    for k in 0..3 {
        out[2 * k..2 * k + 2].copy_from_slice(&r.counts[k].to_le_bytes());
    }
    out[6..8].copy_from_slice(&r.counter.to_le_bytes());
    out
}

/// Encodes an output report: report ID 0, three currents in mA, a counter.
pub fn encode_output(currents_ma: [i16; 3], counter: u16) -> [u8; OUTPUT_LEN] {
    let mut out = [0u8; OUTPUT_LEN];
    for k in 0..3 {
        out[1 + 2 * k..3 + 2 * k].copy_from_slice(&currents_ma[k].to_le_bytes());
    }
    out[7..9].copy_from_slice(&counter.to_le_bytes());
    out
}

/// Decodes an output report (what the device receives, report-ID byte included).
pub fn decode_output(bytes: &[u8]) -> Result<([i16; 3], u16), &'static str> {
    if bytes.len() != OUTPUT_LEN || bytes[0] != 0 {
        return Err("output report is not report 0 with 8 bytes");
    }
    let i = |k: usize| i16::from_le_bytes([bytes[1 + 2 * k], bytes[2 + 2 * k]]);
    Ok(([i(0), i(1), i(2)], u16::from_le_bytes([bytes[7], bytes[8]])))
}

/// Amps to the protocol's mA, rounded and clamped to `i16`.
fn to_milliamps(a: f64) -> i16 {
    (a * 1000.0).round().clamp(i16::MIN as f64, i16::MAX as f64) as i16
}

/// The largest encoder jump between two reports that is still believable: a quarter turn of a
/// motor (the arm cannot move that far in a millisecond).
fn max_jump_counts(cfg: &WoodenHapticsConfig) -> [i32; 3] {
    std::array::from_fn(|i| (cfg.kinematics.encoder_cpr[i] / 4).max(1) as i32)
}

/// A WoodenHaptics on a transport.
#[derive(Debug)]
pub struct WoodenHaptics<T: HidTransport> {
    transport: T,
    config: WoodenHapticsConfig,
    info: DeviceInfo,
    name: Arc<str>,
    buf: [u8; MAX_REPORT],
    last_counts: Option<[i16; 3]>,
    max_jump: [i32; 3],
    counter: u16,
}

impl<T: HidTransport> WoodenHaptics<T> {
    /// A WoodenHaptics with `config` on `transport`, named `name` in errors and reports.
    pub fn new(transport: T, config: WoodenHapticsConfig, name: &str) -> Self {
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
            last_counts: None,
            counter: 0,
        }
    }

    /// The transport (for inspection, e.g. the emulator's state).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    fn error(&self, e: TransportError) -> DeviceError {
        match e {
            TransportError::Disconnected => DeviceError::Disconnected {
                device: self.name.clone(),
            },
            TransportError::Io(errno) => DeviceError::Io {
                device: self.name.clone(),
                errno,
            },
        }
    }
}

impl<T: HidTransport> HapticDevice for WoodenHaptics<T> {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn read(&mut self, _tick: u64) -> Result<Option<DeviceSample>, DeviceError> {
        // Drain the queue, keep the newest report.
        let mut newest: Option<Result<InputReport, &'static str>> = None;
        loop {
            match self.transport.read_report(&mut self.buf) {
                Ok(Some(n)) => newest = Some(decode_input(&self.buf[..n])),
                Ok(None) => break,
                Err(e) => return Err(self.error(e)),
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
        if let Some(last) = self.last_counts {
            let jumped = (0..3).any(|i| {
                (i32::from(report.counts[i]) - i32::from(last[i])).abs() > self.max_jump[i]
            });
            if jumped {
                // Keep the last believable pose: the next good report is compared with it.
                return Err(DeviceError::BadReport {
                    device: self.name.clone(),
                    what: "encoder counts jumped further than the arm can move in a report",
                });
            }
        }
        self.last_counts = Some(report.counts);
        let tip = self
            .config
            .tip_position(self.config.joint_angles(report.counts));
        Ok(Some(DeviceSample {
            tip_in_device_m: tip.into(),
            buttons: 0,
        }))
    }

    fn write_force(&mut self, force_n: [f64; 3]) -> Result<(), DeviceError> {
        // Without a pose there is no Jacobian: only zero current is safe.
        let currents = match self.last_counts {
            Some(counts) if force_n.iter().all(|v| v.is_finite()) => self
                .config
                .motor_currents_a(Vector3::from(force_n), self.config.joint_angles(counts))
                .map(to_milliamps),
            _ => [0; 3],
        };
        self.counter = self.counter.wrapping_add(1);
        let report = encode_output(currents, self.counter);
        self.transport
            .write_report(&report)
            .map_err(|e| self.error(e))
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
/// off (0.5 s at 1 kHz, as the firmware does).
pub const DEVICE_WATCHDOG_REPORTS: u64 = 500;

/// An emulated WoodenHaptics: an arm whose stylus follows a [`Script`] (a hand moving it),
/// reporting its encoder counts in the device's byte protocol and taking motor-current
/// commands, from which it computes the force its motors push the hand with.
#[derive(Debug)]
pub struct EmulatedWoodenHaptics {
    config: WoodenHapticsConfig,
    script: Script,
    dt_s: f64,
    reports: u64,
    fresh: bool,
    faults: EmulatedFaults,
    last_angles: [f64; 3],
    last_currents_ma: [i16; 3],
    last_counter_in: u16,
    outputs: u64,
    gone: bool,
    last_output_report: u64,
    monitor: CurrentMonitor,
}

impl EmulatedWoodenHaptics {
    /// An arm with `config` whose tip follows `script` (device frame), one report per `dt_s`.
    pub fn new(config: WoodenHapticsConfig, script: Script, dt_s: f64) -> Self {
        let home = config.joint_angles([0; 3]);
        Self {
            config,
            script,
            dt_s,
            reports: 0,
            fresh: true,
            faults: EmulatedFaults::default(),
            last_angles: home,
            last_currents_ma: [0; 3],
            last_counter_in: 0,
            outputs: 0,
            gone: false,
            last_output_report: 0,
            monitor: CurrentMonitor::default(),
        }
    }

    /// The same arm with faults injected.
    pub fn with_faults(mut self, faults: EmulatedFaults) -> Self {
        self.faults = faults;
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
}

fn in_range(r: &Option<std::ops::Range<u64>>, n: u64) -> bool {
    r.as_ref().is_some_and(|r| r.contains(&n))
}

impl EmulatedDevice for EmulatedWoodenHaptics {
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
        let n = self.reports;
        self.reports += 1;
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
        let mut counts = self.config.counts_at(self.last_angles);
        if in_range(&self.faults.jump, n) {
            counts[1] = counts[1].wrapping_add((self.config.kinematics.encoder_cpr[1] / 2) as i16);
        }
        let bytes = encode_input(&InputReport {
            counts,
            counter: n as u16,
        });
        let len = if in_range(&self.faults.short_report, n) {
            INPUT_LEN - 2
        } else {
            INPUT_LEN
        };
        buf[..len].copy_from_slice(&bytes[..len]);
        Ok(Some(len))
    }

    fn take_output(&mut self, report: &[u8]) -> Result<(), TransportError> {
        if self.gone {
            return Err(TransportError::Disconnected);
        }
        // The real device ignores malformed output; so does the emulator.
        if let Ok((currents, counter)) = decode_output(report) {
            self.last_currents_ma = currents;
            self.last_counter_in = counter;
            self.outputs += 1;
            self.last_output_report = self.reports;
            self.monitor.set(currents, true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haptics::transport::InProcessTransport;

    fn cfg() -> WoodenHapticsConfig {
        WoodenHapticsConfig::default_design()
    }

    #[test]
    fn the_shipped_calibration_loads_and_bad_ones_say_what_and_where() {
        let c = cfg();
        assert_eq!(c.kinematics.encoder_cpr, [2000; 3]);
        let p = Path::new("x.toml");
        let err = WoodenHapticsConfig::parse(&DEFAULT_CONFIG.replace("2000.0", "-1.0"), p)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "x.toml: limits every limit must be positive");
        let err = WoodenHapticsConfig::parse(
            &DEFAULT_CONFIG.replace("motor_sign = [1, 1, 1]", "motor_sign = [1, 2, 1]"),
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("kinematics.motor_sign"), "{err}");
        let err = WoodenHapticsConfig::parse("format_version = 1", p)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.toml is not a WoodenHaptics calibration"),
            "{err}"
        );
        let err = WoodenHapticsConfig::load(Path::new("/nonexistent/wh.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read /nonexistent/wh.toml"), "{err}");
    }

    #[test]
    fn codec_bytes_match_the_documented_layout() {
        let r = InputReport {
            counts: [1, -2, 0x1234],
            counter: 0xBEEF,
        };
        let b = encode_input(&r);
        assert_eq!(b, [0x01, 0x00, 0xFE, 0xFF, 0x34, 0x12, 0xEF, 0xBE]);
        assert_eq!(decode_input(&b), Ok(r));
        assert!(decode_input(&b[..7]).is_err());
        let o = encode_output([1500, -3000, 0], 7);
        assert_eq!(o, [0x00, 0xDC, 0x05, 0x48, 0xF4, 0x00, 0x00, 0x07, 0x00]);
        assert_eq!(decode_output(&o), Ok(([1500, -3000, 0], 7)));
        assert!(decode_output(&o[1..]).is_err());
    }

    #[test]
    fn kinematics_at_hand_computed_poses() {
        let c = cfg();
        // Home: tA = 0, tB = 0 (B upright), tC = 90 degrees (C horizontal, forward):
        // tip at (c - ox, -oy, a + b - oz) = (0.025, 0, 0.205).
        let home = c.joint_angles([0; 3]);
        let p = c.tip_position(home);
        assert!(
            (p - Vector3::new(0.025, 0.0, 0.205)).norm() < 1e-12,
            "{p:?}"
        );
        // A quarter turn of body A (2000 counts per motor turn, 16:1 capstan): 8000 counts; the
        // arm points along +y: tip at (-ox, c - oy, 0.205).
        let quarter = (0.25 * 2000.0 * 160.0 / 10.0) as i16;
        let p = c.tip_position(c.joint_angles([quarter, 0, 0]));
        assert!(
            (p - Vector3::new(-0.220, 0.245, 0.205)).norm() < 1e-12,
            "{p:?}"
        );
        // Body B tilted 90 degrees forward (12:1): B horizontal, C still at its own 90 degrees:
        // reach b + c, height a - oz.
        let b90 = (0.25 * 2000.0 * 120.0 / 10.0) as i16;
        let p = c.tip_position(c.joint_angles([0, b90, 0]));
        assert!(
            (p - Vector3::new(0.205 + 0.245 - 0.220, 0.0, 0.0)).norm() < 1e-12,
            "{p:?}"
        );
    }

    #[test]
    fn jacobian_matches_finite_differences_and_ik_inverts_fk() {
        let c = cfg();
        let q = [0.3, 0.4, 1.2];
        let j = c.jacobian(q);
        let h = 1e-7;
        for k in 0..3 {
            let mut qp = q;
            qp[k] += h;
            let mut qm = q;
            qm[k] -= h;
            let d = (c.tip_position(qp) - c.tip_position(qm)) / (2.0 * h);
            assert!(
                (d - j.column(k)).norm() < 1e-6,
                "column {k}: {d:?} vs {:?}",
                j.column(k)
            );
        }
        for tip in [
            Vector3::new(0.0, 0.0, 0.0),
            Vector3::new(0.03, -0.04, 0.05),
            Vector3::new(-0.05, 0.05, -0.03),
        ] {
            let q = c.inverse_kinematics(tip).expect("reachable");
            assert!((c.tip_position(q) - tip).norm() < 1e-9, "{tip:?}");
        }
        assert!(c.inverse_kinematics(Vector3::new(1.0, 0.0, 0.0)).is_none());
    }

    #[test]
    fn currents_push_with_the_commanded_force() {
        let c = cfg();
        let q = c
            .inverse_kinematics(Vector3::new(0.01, 0.02, -0.01))
            .unwrap();
        let f = Vector3::new(1.0, -0.5, 2.0);
        let amps = c.motor_currents_a(f, q);
        assert!(amps.iter().all(|a| a.abs() <= 3.0));
        let back = c.tip_force_n(amps, q).unwrap();
        assert!((back - f).norm() < 1e-9, "{back:?}");
        // Virtual work: joint power equals tip power for any motion.
        let qd = Vector3::new(0.1, -0.2, 0.3);
        let tip_power = f.dot(&(c.jacobian(q) * qd));
        let joint_power = (c.jacobian(q).transpose() * f).dot(&qd);
        assert!((tip_power - joint_power).abs() < 1e-12);
        // The amplifier limit clamps.
        let big = c.motor_currents_a(f * 1000.0, q);
        assert!(big.iter().any(|a| a.abs() == 3.0));
    }

    #[test]
    fn the_device_reads_positions_and_writes_currents_through_the_bytes() {
        let c = cfg();
        let script = Script::new(vec![
            crate::haptics::sim::Waypoint {
                t_s: 0.0,
                tip_in_device_m: [0.0, 0.0, 0.0],
            },
            crate::haptics::sim::Waypoint {
                t_s: 1.0,
                tip_in_device_m: [0.02, 0.01, -0.02],
            },
        ]);
        let emulator = EmulatedWoodenHaptics::new(c.clone(), script.clone(), 1e-3);
        let mut dev = WoodenHaptics::new(InProcessTransport::new(emulator), c, "emulated");
        for tick in 0..500u64 {
            let s = dev.read(tick).unwrap().expect("a report each tick");
            let want = script.tip_at(tick as f64 * 1e-3);
            let err = (Vector3::from(s.tip_in_device_m) - Vector3::from(want)).norm();
            // Encoder quantisation: a count is 0.2 mrad of a joint, 0.05-0.1 mm at the tip.
            assert!(err < 2e-4, "tick {tick}: {err} m");
            dev.write_force([0.5, 0.0, -1.0]).unwrap();
        }
        let emu = dev.transport().device();
        assert_eq!(emu.outputs(), 500);
        let pushed = emu.tip_force_n();
        // mA quantisation and the angle the counts round to.
        assert!(
            (pushed - Vector3::new(0.5, 0.0, -1.0)).norm() < 0.02,
            "{pushed:?}"
        );
    }

    #[test]
    fn the_emulated_firmware_watchdog_cuts_the_current_half_a_second_after_the_last_command() {
        let c = cfg();
        let mut emu = EmulatedWoodenHaptics::new(c.clone(), Script::palpation(), 1e-3);
        let monitor = emu.monitor();
        let mut buf = [0u8; MAX_REPORT];
        assert!(emu.next_report(&mut buf).unwrap().is_some());
        assert!(
            emu.next_report(&mut buf).unwrap().is_none(),
            "one report per drain"
        );
        emu.take_output(&encode_output([1200, -800, 300], 1))
            .unwrap();
        assert_eq!(monitor.currents_ma(), [1200, -800, 300]);
        assert_eq!(emu.last_counter_in(), 1);
        // The host keeps reading but never writes again.
        for _ in 0..DEVICE_WATCHDOG_REPORTS {
            emu.next_report(&mut buf).unwrap();
            emu.next_report(&mut buf).unwrap();
        }
        assert_eq!(monitor.currents_ma(), [1200, -800, 300], "not yet");
        emu.next_report(&mut buf).unwrap();
        emu.next_report(&mut buf).unwrap();
        assert_eq!(monitor.currents_ma(), [0, 0, 0], "the watchdog must trip");
        assert_eq!(monitor.outputs(), 1);
    }

    #[test]
    fn emulated_faults_reach_the_host_as_errors_or_silence() {
        let c = cfg();
        let emulator = EmulatedWoodenHaptics::new(c.clone(), Script::palpation(), 1e-3)
            .with_faults(EmulatedFaults {
                stall: Some(10..12),
                short_report: Some(20..21),
                jump: Some(30..31),
                unplug_at: Some(40),
            });
        let mut dev = WoodenHaptics::new(InProcessTransport::new(emulator), c, "emulated");
        for tick in 0..45u64 {
            let r = dev.read(tick);
            match tick {
                10 | 11 => assert_eq!(r, Ok(None), "tick {tick}"),
                20 | 30 => assert!(
                    matches!(r, Err(DeviceError::BadReport { .. })),
                    "tick {tick}: {r:?}"
                ),
                40.. => assert!(
                    matches!(r, Err(DeviceError::Disconnected { .. })),
                    "tick {tick}: {r:?}"
                ),
                _ => assert!(matches!(r, Ok(Some(_))), "tick {tick}: {r:?}"),
            }
            let _ = dev.write_force([0.0; 3]);
        }
    }
}
