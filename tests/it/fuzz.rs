//! Property tests (proptest) of everything that reads bytes a device controls: the report
//! descriptor parser on random bytes and on mutated real descriptors, the field extractor on
//! random reports, offsets and sizes, and `GenericDevice`'s report decoding. None may panic;
//! what the parser accepts must be self-consistent (every field inside its report's declared
//! length, within the size limits).

use proptest::prelude::*;

use haptwin::haptics::descriptor::{
    read_bits, write_bits, Descriptor, Element, ReportKind, MAX_FEATURE_REPORT_BYTES,
    MAX_REPORT_BYTES,
};
use haptwin::haptics::device::{DeviceError, HapticDevice};
use haptwin::haptics::generic::{GenericDevice, GenericProfile, SHIPPED_PROFILES};
use haptwin::haptics::transport::{EmulatedDevice, InProcessTransport, TransportError, MAX_REPORT};

use crate::hid_descriptors::{bytes, ALL};

/// What every accepted descriptor must satisfy.
fn check_consistent(d: &Descriptor) {
    for r in &d.reports {
        let max = match r.kind {
            ReportKind::Feature => MAX_FEATURE_REPORT_BYTES,
            _ => MAX_REPORT_BYTES,
        };
        assert!(
            r.len_bytes <= max,
            "{:?} report {:?} is {} bytes",
            r.kind,
            r.id,
            r.len_bytes
        );
        assert!(!r.fields.is_empty());
        assert_eq!(r.id.is_some(), d.uses_report_ids);
        let mut at = u64::from(r.id.is_some()) * 8;
        for f in &r.fields {
            assert_eq!(u64::from(f.bit_offset), at);
            at += u64::from(f.bit_len());
            assert!(
                at <= r.len_bytes as u64 * 8,
                "field past the report's length"
            );
            assert_eq!((f.kind, f.report_id), (r.kind, r.id));
            if !f.flags.is_constant() {
                assert!((1..=32).contains(&f.bit_size));
            }
            assert!(f.collection.is_none_or(|c| c < d.collections.len()));
            // Every element reads from a report of the declared length.
            let buf = vec![0xA5u8; r.len_bytes];
            for i in 0..f.count.min(64) {
                let _ = f.usage(i);
                if let Some(e) = f.element(i) {
                    assert!(e.read(&buf).is_some());
                }
            }
            let _ = d.collection_path(f);
        }
        assert_eq!(r.len_bytes as u64, at.div_ceil(8));
    }
    for (i, c) in d.collections.iter().enumerate() {
        assert!(c.parent.is_none_or(|p| p < i));
    }
    let _ = d.to_string();
}

fn parse_checked(b: &[u8]) {
    if let Ok(d) = Descriptor::parse(b) {
        check_consistent(&d);
    }
}

/// One edit of a descriptor: set, insert or remove a byte, or cut the rest.
fn mutate(mut b: Vec<u8>, edits: &[(u16, u8, u8)]) -> Vec<u8> {
    for &(at, value, op) in edits {
        let at = usize::from(at);
        match op {
            0 if !b.is_empty() => {
                let i = at % b.len();
                b[i] = value;
            }
            1 => {
                let i = at % (b.len() + 1);
                b.insert(i, value);
            }
            2 if !b.is_empty() => {
                let i = at % b.len();
                b.remove(i);
            }
            3 => b.truncate(at % (b.len() + 1)),
            _ => {}
        }
    }
    b
}

/// Well-formed short items (prefix, then 0, 1, 2 or 4 data bytes), mostly with the tags real
/// descriptors use, after a Report Size 8 / Report Count 1 prelude and with collections
/// balanced, so that many streams parse and the accepted layouts get checked.
fn item_stream() -> impl Strategy<Value = Vec<u8>> {
    let tag = prop_oneof![
        // Main: Input, Output, Feature, Collection, End Collection.
        3 => prop::sample::select(vec![0x80u8, 0x90, 0xB0, 0xA0, 0xC0]),
        // Global: usage page .. pop.
        4 => (0u8..12).prop_map(|t| t << 4 | 0x04),
        // Local: usage, usage min, usage max.
        2 => (0u8..3).prop_map(|t| t << 4 | 0x08),
        1 => any::<u8>().prop_map(|p| p & !0x03),
    ];
    let item = (tag, 0u8..4, any::<u32>(), 0u8..4);
    proptest::collection::vec(item, 0..60).prop_map(|items| {
        let mut out = vec![0x75, 0x08, 0x95, 0x01];
        let (mut depth, mut pushed, mut minimum) = (0usize, 0usize, false);
        for (prefix, size, data, small) in items {
            // Drop what would be refused outright (an End Collection closing nothing, a Pop
            // with nothing pushed, a Usage Maximum with no minimum): the parser's refusals
            // are tested on their own; here the point is to reach deep states.
            match prefix {
                0xA0 => depth += 1,
                0xC0 if depth == 0 => continue,
                0xC0 => depth -= 1,
                0xA4 => pushed += 1,
                0xB4 if pushed == 0 => continue,
                0xB4 => pushed -= 1,
                0x18 => minimum = true,
                0x28 if !minimum => continue,
                0x28 => minimum = false,
                _ => {}
            }
            out.push(prefix | size);
            let n = match size {
                3 => 4,
                s => usize::from(s),
            };
            // Small values are what report sizes, counts and IDs usually are.
            let data = if small > 0 { data % 70 } else { data };
            out.extend_from_slice(&data.to_le_bytes()[..n]);
        }
        out.extend(std::iter::repeat_n(0xC0, depth));
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn well_formed_item_streams_never_panic_the_parser(b in item_stream()) {
        parse_checked(&b);
    }

    #[test]
    fn random_bytes_never_panic_the_parser(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        parse_checked(&b);
    }

    #[test]
    fn mutated_real_descriptors_never_panic_the_parser(
        which in 0..ALL.len(),
        edits in proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        parse_checked(&mutate(bytes(ALL[which].1), &edits));
    }

    #[test]
    fn the_extractor_never_panics_and_round_trips_in_bounds(
        report in proptest::collection::vec(any::<u8>(), 0..=64),
        offset in 0u32..600,
        size in 0u32..40,
        value in any::<u32>(),
        signed in any::<bool>(),
    ) {
        let read = read_bits(&report, offset, size);
        let fits = (1..=32).contains(&size) && u64::from(offset) + u64::from(size) <= report.len() as u64 * 8;
        prop_assert_eq!(read.is_some(), fits);
        let mut buf = report.clone();
        prop_assert_eq!(write_bits(&mut buf, offset, size, value).is_some(), fits);
        if fits {
            let mask = if size == 32 { u32::MAX } else { (1 << size) - 1 };
            prop_assert_eq!(read_bits(&buf, offset, size), Some(value & mask));
            let e = Element {
                bit_offset: offset,
                bit_size: size,
                signed,
                logical_min: if signed { -(1i64 << (size - 1)) } else { 0 },
                logical_max: if signed { (1i64 << (size - 1)) - 1 } else { (1i64 << size) - 1 },
                physical_min: 0,
                physical_max: 0,
                unit_exponent: 0,
                unit: 0,
                relative: false,
            };
            let v = i64::from(value as i32);
            let written = e.write(&mut buf, v).unwrap();
            prop_assert_eq!(e.read(&buf), Some(written));
            let (lo, hi) = e.value_range();
            prop_assert!(lo <= written && written <= hi);
        } else {
            prop_assert_eq!(buf, report);
        }
    }
}

/// Up to four queued reports of any length and content.
#[derive(Debug)]
struct RandomReports {
    reports: [([u8; MAX_REPORT], usize); 4],
    queued: usize,
    next: usize,
}

impl EmulatedDevice for RandomReports {
    fn next_report(&mut self, buf: &mut [u8; MAX_REPORT]) -> Result<Option<usize>, TransportError> {
        if self.next >= self.queued {
            return Ok(None);
        }
        let (bytes, len) = &self.reports[self.next];
        self.next += 1;
        buf.copy_from_slice(bytes);
        Ok(Some(*len))
    }

    fn take_output(&mut self, _report: &[u8]) -> Result<(), TransportError> {
        Ok(())
    }
}

fn report_strategy() -> impl Strategy<Value = Vec<u8>> {
    // Mostly the lengths the shipped descriptors declare, so decoding gets past the checks.
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..=MAX_REPORT),
        proptest::collection::vec(any::<u8>(), 8),
        (1u8..=4, proptest::collection::vec(any::<u8>(), 6)).prop_map(|(id, mut v)| {
            v.insert(0, id);
            v
        }),
        (proptest::collection::vec(any::<u8>(), 2)).prop_map(|mut v| {
            v.insert(0, 3);
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn generic_devices_never_panic_on_random_reports_or_forces(
        which in 0..SHIPPED_PROFILES.len(),
        reports in proptest::collection::vec(report_strategy(), 0..=4),
        force in proptest::array::uniform3(prop_oneof![
            any::<f64>(),
            -1e6f64..1e6,
            Just(f64::INFINITY),
            Just(f64::NAN),
        ]),
    ) {
        let (name, text) = SHIPPED_PROFILES[which];
        let profile = GenericProfile::parse(text, std::path::Path::new(name)).unwrap();
        let binding = profile.bind_own_descriptor().unwrap();
        let mut emu = RandomReports {
            reports: [([0; MAX_REPORT], 0); 4],
            queued: 0,
            next: 0,
        };
        for (slot, r) in emu.reports.iter_mut().zip(&reports) {
            slot.0[..r.len()].copy_from_slice(r);
            slot.1 = r.len();
        }
        emu.queued = reports.len();
        let mut dev = GenericDevice::new(InProcessTransport::new(emu), binding, name);
        match dev.read(0) {
            Ok(Some(s)) => prop_assert!(s.tip_in_device_m.iter().all(|v| v.is_finite())),
            Ok(None) | Err(DeviceError::BadReport { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
        prop_assert!(dev.orientation_rad().iter().all(|v| v.is_finite()));
        prop_assert!(dev.write_force(force).is_ok());
    }
}

/// A device that records the output reports it is sent.
#[derive(Debug)]
struct RecordingReports {
    inner: RandomReports,
    outputs: Vec<Vec<u8>>,
}

impl EmulatedDevice for RecordingReports {
    fn next_report(&mut self, buf: &mut [u8; MAX_REPORT]) -> Result<Option<usize>, TransportError> {
        self.inner.next_report(buf)
    }

    fn take_output(&mut self, report: &[u8]) -> Result<(), TransportError> {
        self.outputs.push(report.to_vec());
        Ok(())
    }
}

/// Random reports through an arm (WoodenHaptics or Polhem) twice in a row (so the jump check
/// runs), then a random force: no panic, finite positions, and every output report the
/// firmware's length with currents within the amplifier's limit.
fn arm_never_panics<P: haptwin::haptics::arm::ArmProtocol>(
    reports: &[Vec<u8>],
    force: [f64; 3],
) -> Result<(), TestCaseError> {
    use haptwin::haptics::arm::{ArmCommand, ArmConfig, ArmDevice};
    let mut inner = RandomReports {
        reports: [([0; MAX_REPORT], 0); 4],
        queued: reports.len(),
        next: 0,
    };
    for (slot, r) in inner.reports.iter_mut().zip(reports) {
        slot.0[..r.len()].copy_from_slice(r);
        slot.1 = r.len();
    }
    let config = ArmConfig::<P>::default_design();
    let max_ma = (config.motors.max_current_a * 1000.0).round() as i16;
    let emu = RecordingReports {
        inner,
        outputs: Vec::new(),
    };
    let mut dev = ArmDevice::<_, P>::new(InProcessTransport::new(emu), config, "fuzzed arm");
    for tick in 0..2 {
        match dev.read(tick) {
            Ok(Some(s)) => prop_assert!(s.tip_in_device_m.iter().all(|v| v.is_finite())),
            Ok(None) | Err(DeviceError::BadReport { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
        prop_assert!(dev.write_force(force).is_ok());
    }
    for out in &dev.transport().device().outputs {
        prop_assert_eq!(out.len(), P::OUTPUT_LEN);
        match P::decode_output(out) {
            Ok((ArmCommand::Currents(c), _)) => {
                prop_assert!(c.iter().all(|ma| ma.abs() <= max_ma), "{:?}", c)
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
    Ok(())
}

fn arm_report_strategy(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..=MAX_REPORT),
        proptest::collection::vec(any::<u8>(), len),
    ]
}

fn any_force() -> impl Strategy<Value = [f64; 3]> {
    proptest::array::uniform3(prop_oneof![
        any::<f64>(),
        -1e3f64..1e3,
        Just(f64::INFINITY),
        Just(f64::NAN),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn woodenhaptics_never_panics_on_random_reports_or_forces(
        reports in proptest::collection::vec(arm_report_strategy(8), 0..=4),
        force in any_force(),
    ) {
        arm_never_panics::<haptwin::haptics::woodenhaptics::WoodenHapticsProtocol>(
            &reports, force,
        )?;
    }

    #[test]
    fn polhem_never_panics_on_random_reports_or_forces(
        reports in proptest::collection::vec(arm_report_strategy(14), 0..=4),
        force in any_force(),
    ) {
        arm_never_panics::<haptwin::haptics::polhem::PolhemProtocol>(&reports, force)?;
    }

    #[test]
    fn arm_output_decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..32)) {
        use haptwin::haptics::arm::ArmProtocol;
        let _ = haptwin::haptics::woodenhaptics::WoodenHapticsProtocol::decode_output(&b);
        let _ = haptwin::haptics::polhem::PolhemProtocol::decode_output(&b);
        let _ = haptwin::haptics::woodenhaptics::WoodenHapticsProtocol::decode_input(&b);
        let _ = haptwin::haptics::polhem::PolhemProtocol::decode_input(&b);
    }
}
