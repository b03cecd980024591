//! WoodenHaptics 1.5 over USB HID: the byte protocol of its firmware, on the shared arm
//! device, calibration and emulator of [`super::arm`].
//!
//! Protocol (`shared/reference/devices.md`; little-endian, as the device's LPC1768 is):
//! - input report, 8 bytes: three `i16` quadrature encoder counts (bodies A, B, C) and a `u16`
//!   counter;
//! - output report, 8 bytes after the report-ID byte: three `i16` motor currents in mA and a
//!   `u16` counter.
//!
//! The firmware has no command to set its encoder counters: its home-pose offsets live in the
//! calibration file (`calibration/woodenhaptics.toml`, `encoder_offset_counts`, written by
//! `haptwin calibrate woodenhaptics`). Its watchdog switches the amplifiers off 0.5 s after the
//! last output report.

use super::arm::{ArmCommand, ArmConfig, ArmDevice, ArmInput, ArmProtocol, EmulatedArm};
use super::transport::MAX_REPORT;

pub use super::arm::{ConfigError, CurrentMonitor, EmulatedFaults, DEVICE_WATCHDOG_REPORTS};

/// Bytes of an input report.
pub const INPUT_LEN: usize = 8;
/// Bytes of an output report, report-ID byte included.
pub const OUTPUT_LEN: usize = 9;

/// The calibration shipped with the repository (the open design's defaults).
pub const DEFAULT_CONFIG: &str = include_str!("../../calibration/woodenhaptics.toml");

/// The WoodenHaptics 1.5 firmware's report layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WoodenHapticsProtocol;

/// A WoodenHaptics calibration file.
pub type WoodenHapticsConfig = ArmConfig<WoodenHapticsProtocol>;
/// A WoodenHaptics on a transport.
pub type WoodenHaptics<T> = ArmDevice<T, WoodenHapticsProtocol>;
/// An emulated WoodenHaptics speaking the firmware's bytes.
pub type EmulatedWoodenHaptics = EmulatedArm<WoodenHapticsProtocol>;

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

impl ArmProtocol for WoodenHapticsProtocol {
    const PROFILE: &'static str = "woodenhaptics";
    const NAME: &'static str = "WoodenHaptics 1.5";
    const DEFAULT_CONFIG: &'static str = DEFAULT_CONFIG;
    const CONFIG_PATH: &'static str = "calibration/woodenhaptics.toml";
    const INPUT_LEN: usize = INPUT_LEN;
    const OUTPUT_LEN: usize = OUTPUT_LEN;
    const SETS_ENCODERS: bool = false;

    fn decode_input(bytes: &[u8]) -> Result<ArmInput, &'static str> {
        decode_input(bytes).map(|r| ArmInput {
            counts: r.counts,
            counter: r.counter,
            ..ArmInput::default()
        })
    }

    fn encode_input(input: &ArmInput, out: &mut [u8; MAX_REPORT]) -> usize {
        out[..INPUT_LEN].copy_from_slice(&encode_input(&InputReport {
            counts: input.counts,
            counter: input.counter,
        }));
        INPUT_LEN
    }

    fn encode_output(command: &ArmCommand, counter: u16, out: &mut [u8; MAX_REPORT]) -> usize {
        // No set-encoders command in this firmware: anything but currents goes out as zero.
        let currents = match command {
            ArmCommand::Currents(c) => *c,
            ArmCommand::SetEncoders { .. } => [0; 3],
        };
        out[..OUTPUT_LEN].copy_from_slice(&encode_output(currents, counter));
        OUTPUT_LEN
    }

    fn decode_output(bytes: &[u8]) -> Result<(ArmCommand, u16), &'static str> {
        decode_output(bytes).map(|(c, n)| (ArmCommand::Currents(c), n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haptics::device::{DeviceError, HapticDevice};
    use crate::haptics::sim::Script;
    use crate::haptics::transport::{EmulatedDevice, InProcessTransport};
    use nalgebra::Vector3;
    use std::path::Path;

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
            err.starts_with("x.toml is not a WoodenHaptics 1.5 calibration"),
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
                ..EmulatedFaults::default()
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
