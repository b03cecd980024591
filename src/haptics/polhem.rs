//! Haptikfabriken Polhem over USB HID: the byte protocol of its firmware, on the shared arm
//! device, calibration and emulator of [`super::arm`].
//!
//! Protocol (`shared/reference/devices.md`; packed little-endian `i16`s, as the firmware sends
//! its structs as they are):
//! - input report, 14 bytes: encoder counts of bodies A, B, C, of the gimbal's three axes, and
//!   an info word (bit 0: the calibration switch was pressed; it stays set until the host sets
//!   the encoders);
//! - output report, 14 bytes after the report-ID byte: three motor currents in mA, a command,
//!   and three arguments. Command 0 drives the currents; command 1 sets the arm's encoder
//!   counters to the three arguments and the gimbal's to the three current fields, with the
//!   motors off.
//!
//! The host reads with a short timeout, then drains the queue and keeps the newest report
//! ([`super::arm::ArmDevice::read`] does). The firmware's watchdog switches the amplifiers off
//! 0.5 s after the last output report.

use super::arm::{ArmCommand, ArmConfig, ArmDevice, ArmInput, ArmProtocol, EmulatedArm};
use super::transport::MAX_REPORT;

/// Bytes of an input report.
pub const INPUT_LEN: usize = 14;
/// Bytes of an output report, report-ID byte included.
pub const OUTPUT_LEN: usize = 15;
/// The command word that drives the currents.
pub const COMMAND_CURRENTS: i16 = 0;
/// The command word that sets the encoder counters.
pub const COMMAND_SET_ENCODERS: i16 = 1;

/// The calibration shipped with the repository (the design's nominal values).
pub const DEFAULT_CONFIG: &str = include_str!("../../calibration/polhem.toml");

/// The Polhem firmware's report layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolhemProtocol;

/// A Polhem calibration file.
pub type PolhemConfig = ArmConfig<PolhemProtocol>;
/// A Polhem on a transport.
pub type Polhem<T> = ArmDevice<T, PolhemProtocol>;
/// An emulated Polhem speaking the firmware's bytes.
pub type EmulatedPolhem = EmulatedArm<PolhemProtocol>;

fn words<const N: usize>(bytes: &[u8]) -> [i16; N] {
    std::array::from_fn(|k| i16::from_le_bytes([bytes[2 * k], bytes[2 * k + 1]]))
}

fn put_words(words: &[i16], out: &mut [u8]) {
    for (k, w) in words.iter().enumerate() {
        out[2 * k..2 * k + 2].copy_from_slice(&w.to_le_bytes());
    }
}

impl ArmProtocol for PolhemProtocol {
    const PROFILE: &'static str = "polhem";
    const NAME: &'static str = "Haptikfabriken Polhem";
    const DEFAULT_CONFIG: &'static str = DEFAULT_CONFIG;
    const CONFIG_PATH: &'static str = "calibration/polhem.toml";
    const INPUT_LEN: usize = INPUT_LEN;
    const OUTPUT_LEN: usize = OUTPUT_LEN;
    const SETS_ENCODERS: bool = true;

    fn decode_input(bytes: &[u8]) -> Result<ArmInput, &'static str> {
        if bytes.len() != INPUT_LEN {
            return Err("input report is not 14 bytes");
        }
        let w: [i16; 7] = words(bytes);
        Ok(ArmInput {
            counts: [w[0], w[1], w[2]],
            gimbal_counts: [w[3], w[4], w[5]],
            buttons: u32::from(w[6] as u16),
            counter: 0,
        })
    }

    fn encode_input(input: &ArmInput, out: &mut [u8; MAX_REPORT]) -> usize {
        let [a, b, c] = input.counts;
        let [d, e, f] = input.gimbal_counts;
        put_words(&[a, b, c, d, e, f, input.buttons as u16 as i16], out);
        INPUT_LEN
    }

    fn encode_output(command: &ArmCommand, _counter: u16, out: &mut [u8; MAX_REPORT]) -> usize {
        let w = match *command {
            ArmCommand::Currents([a, b, c]) => [a, b, c, COMMAND_CURRENTS, 0, 0, 0],
            ArmCommand::SetEncoders {
                arm: [a, b, c],
                gimbal: [d, e, f],
            } => [d, e, f, COMMAND_SET_ENCODERS, a, b, c],
        };
        out[0] = 0;
        put_words(&w, &mut out[1..]);
        OUTPUT_LEN
    }

    fn decode_output(bytes: &[u8]) -> Result<(ArmCommand, u16), &'static str> {
        if bytes.len() != OUTPUT_LEN || bytes[0] != 0 {
            return Err("output report is not report 0 with 14 bytes");
        }
        let w: [i16; 7] = words(&bytes[1..]);
        match w[3] {
            COMMAND_CURRENTS => Ok((ArmCommand::Currents([w[0], w[1], w[2]]), 0)),
            COMMAND_SET_ENCODERS => Ok((
                ArmCommand::SetEncoders {
                    arm: [w[4], w[5], w[6]],
                    gimbal: [w[0], w[1], w[2]],
                },
                0,
            )),
            _ => Err("output report has an unknown command"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haptics::device::{DeviceError, HapticDevice};
    use crate::haptics::sim::{Script, Waypoint};
    use crate::haptics::transport::InProcessTransport;
    use nalgebra::Vector3;

    #[test]
    fn codec_bytes_match_the_documented_layout() {
        let input = ArmInput {
            counts: [1, -2, 0x1234],
            gimbal_counts: [3, 4, -5],
            buttons: 1,
            counter: 0,
        };
        let mut buf = [0u8; MAX_REPORT];
        let n = PolhemProtocol::encode_input(&input, &mut buf);
        assert_eq!(
            &buf[..n],
            &[0x01, 0x00, 0xFE, 0xFF, 0x34, 0x12, 0x03, 0x00, 0x04, 0x00, 0xFB, 0xFF, 0x01, 0x00]
        );
        assert_eq!(PolhemProtocol::decode_input(&buf[..n]), Ok(input));
        assert!(PolhemProtocol::decode_input(&buf[..13]).is_err());

        let n = PolhemProtocol::encode_output(&ArmCommand::Currents([1500, -3000, 0]), 9, &mut buf);
        assert_eq!(
            &buf[..n],
            &[0x00, 0xDC, 0x05, 0x48, 0xF4, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let set = ArmCommand::SetEncoders {
            arm: [100, -200, 300],
            gimbal: [7, 8, 9],
        };
        let n = PolhemProtocol::encode_output(&set, 0, &mut buf);
        assert_eq!(
            &buf[..n],
            &[0x00, 7, 0, 8, 0, 9, 0, 1, 0, 100, 0, 0x38, 0xFF, 0x2C, 0x01]
        );
        assert_eq!(PolhemProtocol::decode_output(&buf[..n]), Ok((set, 0)));
        buf[7] = 9;
        assert!(PolhemProtocol::decode_output(&buf[..n]).is_err());
    }

    #[test]
    fn the_shipped_calibration_loads_and_a_woodenhaptics_file_is_refused() {
        let c = PolhemConfig::default_design();
        assert_eq!(c.device, "polhem");
        let wh = crate::haptics::woodenhaptics::DEFAULT_CONFIG;
        let err = PolhemConfig::parse(wh, std::path::Path::new("wh.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "wh.toml: device is \"woodenhaptics\", expected \"polhem\""
        );
        // Home: tip at (c - ox, -oy, a + b - oz).
        let p = c.tip_position(c.joint_angles(c.home_counts()));
        assert!(
            (p - Vector3::new(0.21 - 0.2, 0.0, 0.09 + 0.19 - 0.09)).norm() < 1e-12,
            "{p:?}"
        );
    }

    #[test]
    fn the_device_reads_positions_writes_currents_and_sets_its_encoders() {
        let c = PolhemConfig::default_design();
        let script = Script::new(vec![
            Waypoint {
                t_s: 0.0,
                tip_in_device_m: [0.0, 0.0, 0.0],
            },
            Waypoint {
                t_s: 1.0,
                tip_in_device_m: [0.02, -0.01, 0.02],
            },
        ]);
        // Switched on away from home: every encoder reads 500 counts too many, and the
        // calibration switch is flagged.
        let emulator = EmulatedPolhem::new(c.clone(), script.clone(), 1e-3)
            .with_encoder_shift([500, 500, 500])
            .with_buttons(1);
        let mut dev = Polhem::new(InProcessTransport::new(emulator), c, "emulated Polhem");
        let s = dev.read(0).unwrap().unwrap();
        assert_eq!(s.buttons, 1, "the calibration switch reaches the host");
        let off = (Vector3::from(s.tip_in_device_m) - Vector3::from(script.tip_at(0.0))).norm();
        assert!(off > 0.01, "uncalibrated: {off} m off");
        // Calibrate: the arm stands at the script's start pose; set the counters to what the
        // calibration expects there.
        let want = dev
            .config()
            .counts_at(dev.config().inverse_kinematics(Vector3::zeros()).unwrap());
        dev.set_encoders(want, [0; 3]).unwrap();
        for tick in 1..300u64 {
            let s = dev.read(tick).unwrap().expect("a report each tick");
            assert_eq!(s.buttons, 0, "the switch flag clears");
            let err = (Vector3::from(s.tip_in_device_m)
                - Vector3::from(script.tip_at(tick as f64 * 1e-3)))
            .norm();
            assert!(err < 3e-4, "tick {tick}: {err} m");
            dev.write_force([0.0, 1.0, -0.5]).unwrap();
        }
        let pushed = dev.transport().device().tip_force_n();
        assert!(
            (pushed - Vector3::new(0.0, 1.0, -0.5)).norm() < 0.02,
            "{pushed:?}"
        );
    }

    /// A device that keeps sending its old counts for a few reports after the command, as a
    /// real one does (they were on their way), then the new ones.
    #[derive(Debug)]
    struct Late {
        counts: [i16; 3],
        new_counts: Option<[i16; 3]>,
        late_reports: u32,
        fresh: bool,
    }

    impl crate::haptics::transport::EmulatedDevice for Late {
        fn next_report(
            &mut self,
            buf: &mut [u8; MAX_REPORT],
        ) -> Result<Option<usize>, crate::haptics::transport::TransportError> {
            self.fresh = !self.fresh;
            if !self.fresh {
                return Ok(None);
            }
            if let Some(n) = self.new_counts {
                if self.late_reports == 0 {
                    self.counts = n;
                } else {
                    self.late_reports -= 1;
                }
            }
            let input = ArmInput {
                counts: self.counts,
                ..ArmInput::default()
            };
            Ok(Some(PolhemProtocol::encode_input(&input, buf)))
        }

        fn take_output(
            &mut self,
            report: &[u8],
        ) -> Result<(), crate::haptics::transport::TransportError> {
            if let Ok((ArmCommand::SetEncoders { arm, .. }, _)) =
                PolhemProtocol::decode_output(report)
            {
                self.new_counts = Some(arm);
            }
            Ok(())
        }
    }

    #[test]
    fn reports_sent_before_the_set_encoders_command_took_are_skipped() {
        let late = Late {
            counts: [150, -250, 350],
            new_counts: None,
            late_reports: 3,
            fresh: false,
        };
        let mut dev = Polhem::new(
            InProcessTransport::new(late),
            PolhemConfig::default_design(),
            "late Polhem",
        );
        assert!(dev.read(0).unwrap().is_some());
        dev.set_encoders([1200, -900, 600], [0; 3]).unwrap();
        for tick in 1..=3 {
            assert_eq!(dev.read(tick), Ok(None), "tick {tick}: a stale report");
        }
        assert!(dev.read(4).unwrap().is_some());
        assert_eq!(dev.last_input().unwrap().counts, [1200, -900, 600]);
        for tick in 5..20 {
            assert!(dev.read(tick).unwrap().is_some(), "tick {tick}");
        }
    }

    #[test]
    fn a_woodenhaptics_cannot_be_told_to_set_its_encoders() {
        use crate::haptics::woodenhaptics::{
            EmulatedWoodenHaptics, WoodenHaptics, WoodenHapticsConfig,
        };
        let c = WoodenHapticsConfig::default_design();
        let emu = EmulatedWoodenHaptics::new(c.clone(), Script::palpation(), 1e-3);
        let mut dev = WoodenHaptics::new(InProcessTransport::new(emu), c, "wh");
        assert!(matches!(
            dev.set_encoders([0; 3], [0; 3]),
            Err(DeviceError::BadReport { .. })
        ));
    }
}
