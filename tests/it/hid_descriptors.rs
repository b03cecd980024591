//! The report-descriptor parser on real, published descriptors (`tests/fixtures/hid/`, each
//! file saying where it was published). Every expectation below is read off the descriptor's
//! items by hand (fields, bit offsets, sizes, ranges, report lengths), not off the parser.

use haptwin::haptics::descriptor::{
    bytes_from_hex, metres_per_unit, radians_per_unit, CollectionKind, Descriptor, Field,
    ReportKind, Usage,
};

const SPACENAVIGATOR: &str = include_str!("../fixtures/hid/spacenavigator_046d_c626.hex");
const MBED_8X8: &str = include_str!("../fixtures/hid/mbed_usbhid_8x8.hex");
const MBED_LEGACY_8X8: &str = include_str!("../fixtures/hid/mbed_usbhid_legacy_8x8.hex");
const TEENSY_RAWHID: &str = include_str!("../fixtures/hid/teensy_rawhid_16c0_0486.hex");
const GADGET_KEYBOARD: &str = include_str!("../fixtures/hid/linux_gadget_hid_keyboard.hex");
const WINGMAN_FORCE_3D: &str =
    include_str!("../fixtures/hid/logitech_wingman_force3d_046d_c283.hex");
const LOGITECH_MOUSE: &str = include_str!("../fixtures/hid/logitech_mouse_046d_c077.hex");
const MICROSOFT_GAMEPAD: &str = include_str!("../fixtures/hid/microsoft_gamepad_045e_02ff.hex");

/// Every real descriptor in the fixtures, with its length in bytes.
pub const ALL: &[(&str, &str, usize)] = &[
    ("spacenavigator", SPACENAVIGATOR, 228),
    ("mbed 8x8", MBED_8X8, 27),
    ("mbed legacy 8x8", MBED_LEGACY_8X8, 28),
    ("teensy rawhid", TEENSY_RAWHID, 28),
    ("gadget keyboard", GADGET_KEYBOARD, 63),
    ("wingman force 3d", WINGMAN_FORCE_3D, 171),
    ("logitech mouse", LOGITECH_MOUSE, 46),
    ("microsoft gamepad", MICROSOFT_GAMEPAD, 120),
];

pub fn bytes(text: &str) -> Vec<u8> {
    bytes_from_hex(text).expect("fixture is hex")
}

fn parse(text: &str) -> Descriptor {
    Descriptor::parse(&bytes(text)).unwrap_or_else(|e| panic!("{e}"))
}

const GD: u16 = 0x01;

/// (bit offset, bit size, count, logical min, logical max, physical range, unit exponent,
/// unit, constant, variable, relative)
type Shape = (
    u32,
    u32,
    u32,
    i64,
    i64,
    (i64, i64),
    i8,
    u32,
    bool,
    bool,
    bool,
);

fn shape(f: &Field) -> Shape {
    (
        f.bit_offset,
        f.bit_size,
        f.count,
        f.logical_min,
        f.logical_max,
        f.physical_range(),
        f.unit_exponent,
        f.unit,
        f.flags.is_constant(),
        f.flags.is_variable(),
        f.flags.is_relative(),
    )
}

fn usages(f: &Field) -> Vec<Option<Usage>> {
    (0..f.count).map(|i| f.usage(i)).collect()
}

#[test]
fn every_fixture_has_its_published_length_and_parses() {
    for (name, text, len) in ALL {
        let b = bytes(text);
        assert_eq!(b.len(), *len, "{name}");
        let d = Descriptor::parse(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Fields tile their report: in bit order, without overlap, inside its length.
        for r in &d.reports {
            let mut at = if r.id.is_some() { 8 } else { 0 };
            for f in &r.fields {
                assert_eq!(f.bit_offset, at, "{name}: {:?} {:?}", r.kind, r.id);
                at += f.bit_len();
            }
            assert_eq!(r.len_bytes, at.div_ceil(8) as usize, "{name}");
        }
        assert!(!d.to_string().is_empty());
    }
}

#[test]
fn spacenavigator_six_relative_axes_in_reports_1_and_2_buttons_in_3_led_out_in_4() {
    let d = parse(SPACENAVIGATOR);
    assert!(d.uses_report_ids);
    let input = |id| d.report(ReportKind::Input, Some(id)).unwrap();
    // Report 1: ID byte, then X, Y, Z as 16-bit signed, -350..350, physical -1400..1400 at
    // 10^-4 in centimetres (unit 0x11), declared relative (0x81 0x06).
    let r1 = input(1);
    assert_eq!(r1.len_bytes, 7);
    assert_eq!(r1.fields.len(), 1);
    let xyz = &r1.fields[0];
    assert_eq!(
        shape(xyz),
        (
            8,
            16,
            3,
            -350,
            350,
            (-1400, 1400),
            -4,
            0x11,
            false,
            true,
            true
        )
    );
    assert!(xyz.is_signed());
    assert_eq!(
        usages(xyz),
        [0x30, 0x31, 0x32].map(|u| Some(Usage::new(GD, u)))
    );
    // Its collection path: Application (Multi-axis Controller), then Physical.
    let path = d.collection_path(xyz);
    assert_eq!(path.len(), 2);
    assert_eq!(path[0].kind, CollectionKind::Application);
    assert_eq!(path[0].usage, Some(Usage::new(GD, 0x08)));
    assert_eq!(path[1].kind, CollectionKind::Physical);
    // The cap's travel: 1400 x 10^-4 cm = 1.4 mm at 350 counts, 4 um per count.
    let x = xyz.element(0).unwrap();
    let metres = x.physical_per_logical().unwrap() * metres_per_unit(x.unit).unwrap();
    assert!((metres - 4e-6).abs() < 1e-18, "{metres}");
    // Report 2: Rx, Ry, Rz with the same globals (they carry over).
    let r2 = input(2);
    assert_eq!(r2.len_bytes, 7);
    assert_eq!(shape(&r2.fields[0]), shape(xyz));
    assert_eq!(
        usages(&r2.fields[0]),
        [0x33, 0x34, 0x35].map(|u| Some(Usage::new(GD, u)))
    );
    // Report 3: buttons 1 and 2 (the second Usage Page, Button, applies), 14 bits of padding.
    let r3 = input(3);
    assert_eq!(r3.len_bytes, 3);
    assert_eq!(
        shape(&r3.fields[0]),
        (8, 1, 2, 0, 1, (0, 1), -4, 0x11, false, true, false)
    );
    assert_eq!(
        usages(&r3.fields[0]),
        [Some(Usage::new(9, 1)), Some(Usage::new(9, 2))]
    );
    assert_eq!(
        (
            r3.fields[1].bit_offset,
            r3.fields[1].count,
            r3.fields[1].bit_size
        ),
        (10, 14, 1)
    );
    assert!(r3.fields[1].flags.is_constant());
    // Output report 4: one LED bit (LED page, Generic Indicator) and 7 bits of padding.
    let out = d.report(ReportKind::Output, Some(4)).unwrap();
    assert_eq!(out.len_bytes, 2);
    assert_eq!(out.output_buffer_len(), 2);
    assert_eq!(usages(&out.fields[0]), [Some(Usage::new(0x08, 0x4B))]);
    // Feature reports 5..0x19 on vendor page 0xFF00, signed bytes -128..127.
    let features: Vec<(Option<u8>, usize)> = d
        .reports_of(ReportKind::Feature)
        .map(|r| (r.id, r.len_bytes))
        .collect();
    assert_eq!(
        features,
        [
            (Some(5), 2),
            (Some(6), 2),
            (Some(7), 2),
            (Some(8), 8),
            (Some(9), 8),
            (Some(10), 8),
            (Some(11), 2),
            (Some(0x13), 2),
            (Some(0x19), 5),
        ]
    );
    let f5 = &d.report(ReportKind::Feature, Some(5)).unwrap().fields[0];
    assert_eq!((f5.logical_min, f5.logical_max), (-128, 127));
    assert_eq!(f5.usage(0), Some(Usage::new(0xFF00, 0x20)));
    // 15 collections: the application, two physical, two logical, the vendor one and its nine.
    assert_eq!(d.collections.len(), 15);
    let (report, field, index) = d
        .find(ReportKind::Input, Usage::new(GD, 0x35), None)
        .unwrap();
    assert_eq!((report.id, field.bit_offset, index), (Some(2), 8, 2));
}

#[test]
fn mbed_generic_descriptor_is_one_8_byte_vendor_field_each_way() {
    for text in [MBED_8X8, MBED_LEGACY_8X8] {
        let d = parse(text);
        assert!(!d.uses_report_ids);
        assert_eq!(d.collections.len(), 1);
        assert_eq!(d.collections[0].kind, CollectionKind::Application);
        assert_eq!(d.collections[0].usage, Some(Usage::new(0xFFAB, 0x0200)));
        let input = d.report(ReportKind::Input, None).unwrap();
        let output = d.report(ReportKind::Output, None).unwrap();
        assert_eq!((input.len_bytes, output.len_bytes), (8, 8));
        // A hidraw write carries the report-ID byte 0 first: 9 bytes, fields one byte in.
        assert_eq!(output.output_buffer_len(), 9);
        assert_eq!(output.output_bit_shift(), 8);
        // Logical 0..255, unsigned: the new descriptor's one-byte 0xFF reads as 255 (not -1)
        // because the minimum is 0, as Linux reads it; the legacy one spells 0x00FF.
        let i = &input.fields[0];
        assert_eq!(
            shape(i),
            (0, 8, 8, 0, 255, (0, 255), 0, 0, false, true, false)
        );
        assert!(!i.is_signed());
        assert_eq!(usages(i), vec![Some(Usage::new(0xFFAB, 0x01)); 8]);
        assert_eq!(
            shape(&output.fields[0]),
            (0, 8, 8, 0, 255, (0, 255), 0, 0, false, true, false)
        );
        assert_eq!(output.fields[0].usage(7), Some(Usage::new(0xFFAB, 0x02)));
    }
    // The two spellings mean the same layout.
    let strip = |d: Descriptor| -> Vec<Shape> {
        d.reports
            .iter()
            .flat_map(|r| r.fields.iter().map(shape))
            .collect()
    };
    assert_eq!(strip(parse(MBED_8X8)), strip(parse(MBED_LEGACY_8X8)));
}

#[test]
fn teensy_rawhid_fills_a_full_speed_report_exactly() {
    let d = parse(TEENSY_RAWHID);
    let input = d.report(ReportKind::Input, None).unwrap();
    let output = d.report(ReportKind::Output, None).unwrap();
    assert_eq!((input.len_bytes, output.len_bytes), (64, 64));
    assert_eq!(output.output_buffer_len(), 65);
    assert_eq!(input.fields[0].count, 64);
    assert_eq!(input.fields[0].usage(63), Some(Usage::new(0xFFAB, 0x01)));
    // One more byte would not fit a full-speed interrupt report.
    let mut longer = bytes(TEENSY_RAWHID);
    let count = longer.iter().position(|&b| b == 0x95).unwrap();
    longer[count + 1] = 65;
    let err = Descriptor::parse(&longer).unwrap_err().to_string();
    assert!(
        err.contains("Input report (unnumbered) 65 bytes long"),
        "{err}"
    );
}

#[test]
fn boot_keyboard_modifier_bits_reserved_byte_six_key_array_and_five_leds() {
    let d = parse(GADGET_KEYBOARD);
    let input = d.report(ReportKind::Input, None).unwrap();
    assert_eq!(input.len_bytes, 8);
    let [mods, reserved, keys] = &input.fields[..] else {
        panic!("{:?}", input.fields)
    };
    assert_eq!(
        shape(mods),
        (0, 1, 8, 0, 1, (0, 1), 0, 0, false, true, false)
    );
    assert_eq!(mods.usage(0), Some(Usage::new(0x07, 0xE0)));
    assert_eq!(mods.usage(7), Some(Usage::new(0x07, 0xE7)));
    assert_eq!((reserved.bit_offset, reserved.bit_size), (8, 8));
    assert!(reserved.flags.is_constant());
    // The key array: six bytes selecting from Keyboard usages 0x00..0x65.
    assert_eq!(
        shape(keys),
        (16, 8, 6, 0, 101, (0, 101), 0, 0, false, false, false)
    );
    assert!(keys.flags.is_array());
    assert_eq!(keys.usage(0), None);
    assert_eq!(
        (keys.usages[0].page, keys.usages[0].min, keys.usages[0].max),
        (0x07, 0x00, 0x65)
    );
    let leds = d.report(ReportKind::Output, None).unwrap();
    assert_eq!(leds.len_bytes, 1);
    assert_eq!(leds.fields[0].count, 5);
    assert_eq!(leds.fields[0].usage(4), Some(Usage::new(0x08, 0x05)));
    assert!(leds.fields[1].flags.is_constant());
    assert_eq!(
        (leds.fields[1].bit_offset, leds.fields[1].bit_len()),
        (5, 3)
    );
}

#[test]
fn wingman_force_3d_stick_hat_buttons_and_an_8_byte_force_output() {
    let d = parse(WINGMAN_FORCE_3D);
    assert!(!d.uses_report_ids);
    let input = d.report(ReportKind::Input, None).unwrap();
    assert_eq!(input.len_bytes, 7);
    let f = &input.fields;
    assert_eq!(f.len(), 8);
    // X, Y: unsigned bytes 0..255 (two-byte Logical Maximum 0x00FF).
    assert_eq!(
        shape(&f[0]),
        (0, 8, 2, 0, 255, (0, 255), 0, 0, false, true, false)
    );
    assert_eq!(
        usages(&f[0]),
        [Some(Usage::new(GD, 0x30)), Some(Usage::new(GD, 0x31))]
    );
    // A vendor nibble.
    assert_eq!(
        (f[1].bit_offset, f[1].bit_size, f[1].logical_max),
        (16, 4, 15)
    );
    assert_eq!(f[1].usage(0), Some(Usage::new(0xFF00, 0x01)));
    // The hat: 0..7 over 0..315 degrees (unit 0x14, English rotation), with a null state.
    assert_eq!(
        shape(&f[2]),
        (20, 4, 1, 0, 7, (0, 315), 0, 0x14, false, true, false)
    );
    assert!(f[2].flags.has_null_state());
    let hat = f[2].element(0).unwrap();
    let rad = hat.physical(7).unwrap() * radians_per_unit(hat.unit).unwrap();
    assert!((rad - 315f64.to_radians()).abs() < 1e-12);
    // Rz (twist), then buttons 1..7 (Physical Maximum 0 with minimum 0: logical applies).
    assert_eq!(f[3].usage(0), Some(Usage::new(GD, 0x35)));
    assert_eq!((f[3].bit_offset, f[3].bit_size), (24, 8));
    assert_eq!(
        shape(&f[4]),
        (32, 1, 7, 0, 1, (0, 1), 0, 0, false, true, false)
    );
    assert_eq!(f[4].usage(6), Some(Usage::new(9, 7)));
    assert!(f[5].flags.is_constant());
    assert_eq!(f[6].usage(0), Some(Usage::new(GD, 0x36)));
    assert_eq!(f[6].bit_offset, 40);
    assert_eq!(f[7].usage(0), Some(Usage::new(0xFF00, 0x01)));
    assert_eq!(f[7].bit_offset, 48);
    // Output: 8 vendor bytes (usage 0xFF00:0x02) in a logical collection of their own.
    let out = d.report(ReportKind::Output, None).unwrap();
    assert_eq!(out.len_bytes, 8);
    assert_eq!(
        shape(&out.fields[0]),
        (0, 8, 8, 0, 255, (0, 255), 0, 0, false, true, false)
    );
    assert_eq!(out.fields[0].usage(0), Some(Usage::new(0xFF00, 0x02)));
    let path = d.collection_path(&out.fields[0]);
    assert_eq!(
        path.iter().map(|c| (c.kind, c.usage)).collect::<Vec<_>>(),
        [
            (CollectionKind::Application, Some(Usage::new(GD, 0x04))),
            (CollectionKind::Logical, Some(Usage::new(0xFF00, 0x00))),
        ]
    );
    let stick = d.collection_path(&f[0]);
    assert_eq!(
        stick.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [
            CollectionKind::Application,
            CollectionKind::Logical,
            CollectionKind::Physical
        ]
    );
    assert_eq!(stick[2].usage, Some(Usage::new(GD, 0x01)));
}

#[test]
fn logitech_mouse_eight_button_bits_and_signed_relative_x_y_wheel() {
    let d = parse(LOGITECH_MOUSE);
    let input = d.report(ReportKind::Input, None).unwrap();
    assert_eq!(input.len_bytes, 4);
    let [buttons, axes] = &input.fields[..] else {
        panic!("{:?}", input.fields)
    };
    // Usages 1..3 for 8 bits: the last usage repeats for the rest.
    assert_eq!(buttons.count, 8);
    assert_eq!(buttons.usage(2), Some(Usage::new(9, 3)));
    assert_eq!(buttons.usage(7), Some(Usage::new(9, 3)));
    assert_eq!(
        shape(axes),
        (8, 8, 3, -127, 127, (-127, 127), 0, 0, false, true, true)
    );
    assert_eq!(
        usages(axes),
        [0x30, 0x31, 0x38].map(|u| Some(Usage::new(GD, u)))
    );
    // A movement of -3 in X reads back as -3.
    let x = axes.element(0).unwrap();
    assert_eq!(x.read(&[0, 0xFD, 0, 0]), Some(-3));
}

#[test]
fn microsoft_gamepad_16_bit_axes_with_an_unsigned_0xffff_maximum() {
    let d = parse(MICROSOFT_GAMEPAD);
    let input = d.report(ReportKind::Input, None).unwrap();
    // 2 x 16 + 2 x 16 + 16 + 16 button bits + 4 hat + 4 + 16 padding = 120 bits.
    assert_eq!(input.len_bytes, 15);
    let f = &input.fields;
    // `26 FF FF` after `15 00` is 65535, not -1, and the values are unsigned.
    assert_eq!(
        shape(&f[0]),
        (0, 16, 2, 0, 65535, (0, 65535), 0, 0, false, true, false)
    );
    let x = f[0].element(0).unwrap();
    assert_eq!(x.read(&[0xFF, 0xFF]), Some(65535));
    assert_eq!(
        usages(&f[1]),
        [Some(Usage::new(GD, 0x33)), Some(Usage::new(GD, 0x34))]
    );
    assert_eq!(
        (f[2].bit_offset, f[2].usage(0)),
        (64, Some(Usage::new(GD, 0x32)))
    );
    assert_eq!((f[3].bit_offset, f[3].count), (80, 16));
    assert_eq!(f[3].usage(15), Some(Usage::new(9, 16)));
    // The buttons keep the axes' logical 0..65535; their one bit holds 0..1.
    assert_eq!(f[3].element(0).unwrap().value_range(), (0, 1));
    assert_eq!(
        shape(&f[4]),
        (96, 4, 1, 1, 8, (0, 4155), 0, 0x0E, false, true, false)
    );
    assert!(f[4].flags.has_null_state());
    assert!(f[5].flags.is_constant() && f[6].flags.is_constant());
    assert_eq!((f[6].bit_offset, f[6].bit_len()), (104, 16));
    assert_eq!(d.collections.len(), 4);
}
