//! DICOM SEG label maps (`twin::dicom_seg`): synthetic SEGs written here with dicom-object
//! (BINARY bits packed across frame boundaries, per-frame positions, a missing slice, two
//! overlapping segments, FRACTIONAL), corrupt ones (short pixel data, a frame naming a segment
//! that does not exist), `twin build`'s `--labels` with a SEG on another grid, and pydicom's SEG
//! test files (`target/test-data/pydicom/test_files`, or `$HAPTWIN_TEST_DATA/...`).

use std::path::{Path, PathBuf};

use dicom_core::value::{DataSetSequence, PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;

use haptwin::twin::deid::PseudonymKey;
use haptwin::twin::dicom::{read_series, write_series, DicomError, ImportOptions, WriteOptions};
use haptwin::twin::dicom_seg::{label_for_words, read_seg, read_seg_with, SEGMENTATION_STORAGE};
use haptwin::twin::labels::Label;
use haptwin::twin::pipeline::{self, TwinBuildOptions};
use haptwin::twin::volume::{Grid, LabelVolume, ScalarVolume};

const PLANTED_NAME: &str = "SEGPATIENT^PLANTED";
const PLANTED_ID: &str = "PLANTED-ID-4711";

fn opts() -> ImportOptions {
    ImportOptions {
        series: None,
        pseudonym_key: Some(PseudonymKey::from_bytes(b"haptwin test key, not a secret")),
    }
}

fn el(tag: Tag, vr: VR, v: PrimitiveValue) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, v)
}

fn text(tag: Tag, vr: VR, s: &str) -> DataElement<InMemDicomObject> {
    el(tag, vr, PrimitiveValue::from(s))
}

fn ds(tag: Tag, values: &[f64]) -> DataElement<InMemDicomObject> {
    el(
        tag,
        VR::DS,
        PrimitiveValue::Strs(values.iter().map(|v| format!("{v:.6}")).collect()),
    )
}

fn us(tag: Tag, v: u16) -> DataElement<InMemDicomObject> {
    el(tag, VR::US, PrimitiveValue::from(v))
}

fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(
        tag,
        VR::SQ,
        Value::from(DataSetSequence::new(items, Length::UNDEFINED)),
    )
}

fn item(elements: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

/// One frame: its segment, its slice index on the grid, its mask (`i` fastest).
struct Frame {
    segment: u16,
    k: usize,
    mask: Vec<bool>,
}

/// How to spoil a SEG.
#[derive(Default)]
struct Spoil {
    /// Bytes cut off the pixel data.
    cut_bytes: usize,
    /// FRACTIONAL with this maximum (values: 0 or the maximum, and one half-way value).
    fractional: Option<u8>,
    /// The last frame moved this many slices along the normal.
    shift_last: f64,
    /// The pixel data encapsulated, the transfer syntax RLE Lossless.
    rle: bool,
}

/// Writes a SEG of `frames` on `grid` (positions from the grid, `k` per frame).
fn write_seg(
    path: &Path,
    grid: &Grid,
    segments: &[(u16, &str, &str)],
    frames: &[Frame],
    spoil: &Spoil,
) {
    let [cols, rows, _] = grid.dims;
    let d = &grid.direction;
    let iop = [d[0][0], d[1][0], d[2][0], d[0][1], d[1][1], d[2][1]];
    let mm = |x: f64| x * 1e3;
    let mut pixels = Vec::new();
    match spoil.fractional {
        None => {
            let bits: Vec<bool> = frames.iter().flat_map(|f| f.mask.iter().copied()).collect();
            pixels.resize(bits.len().div_ceil(8), 0u8);
            for (q, b) in bits.iter().enumerate() {
                if *b {
                    pixels[q / 8] |= 1 << (q % 8);
                }
            }
        }
        Some(max) => {
            for f in frames {
                // Inside: the maximum, or just over half; outside: 0 or just under half.
                pixels.extend(f.mask.iter().enumerate().map(|(p, b)| match (b, p % 2) {
                    (true, 0) => max,
                    (true, _) => max.div_ceil(2),
                    (false, 0) => 0,
                    (false, _) => max.div_ceil(2) - 1,
                }));
            }
            if pixels.len() % 2 == 1 {
                pixels.push(0);
            }
        }
    }
    pixels.truncate(pixels.len().saturating_sub(spoil.cut_bytes));
    let segment_items = segments
        .iter()
        .map(|(n, label, meaning)| {
            item(vec![
                us(tags::SEGMENT_NUMBER, *n),
                text(tags::SEGMENT_LABEL, VR::LO, label),
                seq(
                    tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
                    vec![item(vec![
                        text(tags::CODE_VALUE, VR::SH, "0000"),
                        text(tags::CODING_SCHEME_DESIGNATOR, VR::SH, "99TEST"),
                        text(tags::CODE_MEANING, VR::LO, meaning),
                    ])],
                ),
            ])
        })
        .collect();
    let per_frame = frames
        .iter()
        .enumerate()
        .map(|(q, f)| {
            let shift = if q + 1 == frames.len() {
                spoil.shift_last
            } else {
                0.0
            };
            let p = grid.voxel_to_patient([0.0, 0.0, f.k as f64 + shift]);
            item(vec![
                seq(
                    tags::PLANE_POSITION_SEQUENCE,
                    vec![item(vec![ds(
                        tags::IMAGE_POSITION_PATIENT,
                        &[mm(p.x), mm(p.y), mm(p.z)],
                    )])],
                ),
                seq(
                    tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                    vec![item(vec![us(tags::REFERENCED_SEGMENT_NUMBER, f.segment)])],
                ),
            ])
        })
        .collect();
    let shared = item(vec![
        seq(
            tags::PLANE_ORIENTATION_SEQUENCE,
            vec![item(vec![ds(tags::IMAGE_ORIENTATION_PATIENT, &iop)])],
        ),
        seq(
            tags::PIXEL_MEASURES_SEQUENCE,
            vec![item(vec![
                ds(
                    tags::PIXEL_SPACING,
                    &[mm(grid.spacing_m[1]), mm(grid.spacing_m[0])],
                ),
                ds(tags::SPACING_BETWEEN_SLICES, &[mm(grid.spacing_m[2])]),
                ds(tags::SLICE_THICKNESS, &[mm(grid.spacing_m[2])]),
            ])],
        ),
    ]);
    let (seg_type, bits) = match spoil.fractional {
        None => ("BINARY", 1),
        Some(_) => ("FRACTIONAL", 8),
    };
    let mut elements = vec![
        text(tags::SOP_CLASS_UID, VR::UI, SEGMENTATION_STORAGE),
        text(tags::SOP_INSTANCE_UID, VR::UI, "2.25.1001"),
        text(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.1002"),
        text(tags::SERIES_INSTANCE_UID, VR::UI, "2.25.1003"),
        text(tags::PATIENT_NAME, VR::PN, PLANTED_NAME),
        text(tags::PATIENT_ID, VR::LO, PLANTED_ID),
        text(tags::MODALITY, VR::CS, "SEG"),
        text(tags::SEGMENTATION_TYPE, VR::CS, seg_type),
        us(tags::SAMPLES_PER_PIXEL, 1),
        text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        text(tags::NUMBER_OF_FRAMES, VR::IS, &frames.len().to_string()),
        us(tags::ROWS, rows as u16),
        us(tags::COLUMNS, cols as u16),
        us(tags::BITS_ALLOCATED, bits),
        us(tags::BITS_STORED, bits),
        us(tags::HIGH_BIT, bits - 1),
        us(tags::PIXEL_REPRESENTATION, 0),
        seq(tags::SEGMENT_SEQUENCE, segment_items),
        seq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]),
        seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame),
    ];
    elements.push(if spoil.rle {
        DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            Value::from(PixelFragmentSequence::new(Vec::<u32>::new(), vec![pixels])),
        )
    } else {
        el(tags::PIXEL_DATA, VR::OB, PrimitiveValue::U8(pixels.into()))
    });
    if let Some(max) = spoil.fractional {
        elements.push(text(
            tags::SEGMENTATION_FRACTIONAL_TYPE,
            VR::CS,
            "PROBABILITY",
        ));
        elements.push(us(tags::MAXIMUM_FRACTIONAL_VALUE, u16::from(max)));
    }
    let obj = InMemDicomObject::from_element_iter(elements)
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(if spoil.rle {
                    "1.2.840.10008.1.2.5"
                } else {
                    "1.2.840.10008.1.2.1"
                })
                .media_storage_sop_class_uid(SEGMENTATION_STORAGE)
                .media_storage_sop_instance_uid("2.25.1001"),
        )
        .unwrap();
    obj.write_to_file(path).unwrap();
}

/// A rotated grid whose slices (15 pixels) do not fill whole bytes.
fn small_grid() -> Grid {
    let (s, c) = (0.4f64.sin(), 0.4f64.cos());
    Grid {
        dims: [3, 5, 5],
        spacing_m: [0.7e-3, 0.8e-3, 2.0e-3],
        origin_m: [-0.1, 0.05, 0.2],
        direction: [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]],
    }
}

fn mask(n: usize, seed: usize, density: usize) -> Vec<bool> {
    (0..n).map(|p| (p * 7 + seed * 3) % density < 3).collect()
}

/// Frames of the synthetic SEG: liver on k = 0, 1, 3, 4 (2 is missing), tumour on 1 and 3,
/// written out of order. Returns the frames and the expected labels.
fn liver_and_tumour(grid: &Grid) -> (Vec<Frame>, Vec<u8>) {
    let n = grid.dims[0] * grid.dims[1];
    let mut frames = Vec::new();
    for k in [3, 0, 4, 1] {
        frames.push(Frame {
            segment: 1,
            k,
            mask: mask(n, k, 4),
        });
    }
    for k in [1, 3] {
        frames.push(Frame {
            segment: 2,
            k,
            mask: mask(n, k + 10, 5),
        });
    }
    let mut want = vec![0u8; grid.len()];
    for f in &frames {
        let l = if f.segment == 1 {
            Label::Parenchyma
        } else {
            Label::Tumour
        } as u8;
        for (p, on) in f.mask.iter().enumerate() {
            let q = f.k * n + p;
            if *on && want[q] < l {
                want[q] = l;
            }
        }
    }
    (frames, want)
}

fn assert_grid_near(a: &Grid, b: &Grid) {
    assert_eq!(a.dims, b.dims);
    for r in 0..3 {
        assert!(
            (a.spacing_m[r] - b.spacing_m[r]).abs() < 1e-8,
            "{a:?} {b:?}"
        );
        assert!((a.origin_m[r] - b.origin_m[r]).abs() < 1e-8, "{a:?} {b:?}");
        for c in 0..3 {
            assert!(
                (a.direction[r][c] - b.direction[r][c]).abs() < 1e-5,
                "{a:?} {b:?}"
            );
        }
    }
}

fn assert_no_phi(msg: &str) {
    for planted in [PLANTED_NAME, "SEGPATIENT", PLANTED_ID, "2.25.1002"] {
        assert!(!msg.contains(planted), "leaked {planted}: {msg}");
    }
}

#[test]
fn twin_seg_binary_packed_across_frames_with_a_gap_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg.dcm");
    let grid = small_grid();
    let (frames, want) = liver_and_tumour(&grid);
    write_seg(
        &path,
        &grid,
        &[(1, "Liver", "Liver"), (2, "Tumor", "Neoplasm")],
        &frames,
        &Spoil::default(),
    );
    let seg = read_seg_with(&path, &opts()).unwrap();
    assert_grid_near(&seg.labels.grid, &grid);
    assert_eq!(seg.labels.data, want);
    assert_eq!(seg.frames, 6);
    assert!(seg.labels.data[2 * 15..3 * 15].iter().all(|&v| v == 0));
    assert_eq!(
        seg.segments.iter().map(|s| s.label).collect::<Vec<_>>(),
        [Label::Parenchyma, Label::Tumour]
    );
    assert!(seg.segments.iter().all(|s| s.recognised));
    let tumour = want.iter().filter(|&&v| v == 2).count() as u64;
    assert_eq!(seg.segments[1].voxels, tumour);
    assert!(tumour > 0 && seg.segments[0].voxels > 0);
    assert!(seg.case_id.starts_with("case-"), "{}", seg.case_id);
    assert!(
        seg.notes.iter().any(|n| n.contains("cover 4 of 5")),
        "{:?}",
        seg.notes
    );
    assert_no_phi(&format!("{seg:?}"));
    // The short form gives the same volume.
    assert_eq!(read_seg(&path, &opts()).unwrap(), seg.labels);
}

#[test]
fn twin_seg_fractional_thresholds_at_half_and_unknown_segments_are_parenchyma() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frac.dcm");
    let grid = small_grid();
    let (frames, want) = liver_and_tumour(&grid);
    write_seg(
        &path,
        &grid,
        &[(1, "Region 1", "Something"), (2, "Lesion", "Lesion")],
        &frames,
        &Spoil {
            fractional: Some(255),
            ..Spoil::default()
        },
    );
    let seg = read_seg_with(&path, &opts()).unwrap();
    assert_eq!(seg.labels.data, want);
    assert!(!seg.segments[0].recognised);
    assert!(
        seg.notes.iter().any(|n| n.contains("segment 1")),
        "{:?}",
        seg.notes
    );
    assert!(!format!("{:?}", seg.notes).contains("Region 1"));
}

#[test]
fn twin_seg_words_map_to_labels() {
    for (words, want) in [
        ("Liver", Some(Label::Parenchyma)),
        ("Liver tumor", Some(Label::Tumour)),
        ("Hepatic vein", Some(Label::Vessel)),
        ("Portal Vein", Some(Label::Vessel)),
        ("Inferior vena cava", Some(Label::Vessel)),
        ("Arteries", Some(Label::Vessel)),
        ("Subcutaneous adipose tissue", Some(Label::Fat)),
        ("Rib", Some(Label::Bone)),
        ("Lumbar spine", Some(Label::Bone)),
        ("Mass", Some(Label::Tumour)),
        ("Lesions", Some(Label::Tumour)),
        ("Massive", None),
        ("Kidney", None),
    ] {
        assert_eq!(label_for_words(words), want, "{words}");
    }
}

#[test]
fn twin_seg_corrupt_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let grid = small_grid();
    let (frames, _) = liver_and_tumour(&grid);
    let segs = [(1, "Liver", "Liver"), (2, "Tumor", "Tumor")];

    let short = dir.path().join("short.dcm");
    write_seg(
        &short,
        &grid,
        &segs,
        &frames,
        &Spoil {
            cut_bytes: 2,
            ..Spoil::default()
        },
    );
    let err = read_seg(&short, &opts()).unwrap_err();
    assert!(matches!(err, DicomError::PixelData { .. }), "{err:?}");
    let msg = format!("{err}");
    assert!(msg.contains("short.dcm"), "{msg}");
    assert_no_phi(&format!("{err}\n{err:?}"));

    let dangling = dir.path().join("dangling.dcm");
    let mut bad_frames = liver_and_tumour(&grid).0;
    bad_frames[4].segment = 9;
    write_seg(&dangling, &grid, &segs, &bad_frames, &Spoil::default());
    let err = read_seg(&dangling, &opts()).unwrap_err();
    assert!(
        matches!(
            err,
            DicomError::BadAttribute {
                attribute: "ReferencedSegmentNumber",
                ..
            }
        ),
        "{err:?}"
    );
    let msg = format!("{err}");
    assert!(
        msg.contains("dangling.dcm") && msg.contains("segment 9"),
        "{msg}"
    );
    assert_no_phi(&format!("{err}\n{err:?}"));

    // Frames off the slice step, and a compressed SEG.
    let off = dir.path().join("off.dcm");
    let spoil = Spoil {
        shift_last: 0.4,
        ..Spoil::default()
    };
    write_seg(&off, &grid, &segs, &frames, &spoil);
    let err = read_seg(&off, &opts()).unwrap_err();
    assert!(
        matches!(
            err,
            DicomError::BadAttribute {
                attribute: "ImagePositionPatient",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(format!("{err}").contains("off.dcm"), "{err}");
    let rle = dir.path().join("rle.dcm");
    let spoil = Spoil {
        rle: true,
        ..Spoil::default()
    };
    write_seg(&rle, &grid, &segs, &frames, &spoil);
    let err = read_seg(&rle, &opts()).unwrap_err();
    assert!(
        matches!(&err, DicomError::UnsupportedTransferSyntax { name, .. } if name.contains("RLE")),
        "{err:?}"
    );
    assert!(format!("{err}").contains("rle.dcm"), "{err}");

    // Not a SEG, not DICOM, truncated, garbage: errors that name the file, no panic.
    let ct_dir = dir.path().join("ct");
    std::fs::create_dir(&ct_dir).unwrap();
    let ct = ScalarVolume::filled(Grid::axis_aligned([4, 4, 2], [1e-3; 3], [0.0; 3]), 0.0).unwrap();
    let files = write_series(&ct, &ct_dir, &WriteOptions::default()).unwrap();
    let err = read_seg(&files[0], &opts()).unwrap_err();
    assert!(
        matches!(err, DicomError::UnsupportedImage { .. }),
        "{err:?}"
    );
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "not dicom").unwrap();
    let err = read_seg(&text_file, &opts()).unwrap_err();
    assert!(matches!(err, DicomError::NotDicom { .. }), "{err:?}");
    let bytes = std::fs::read(&dangling).unwrap();
    for cut in [140, bytes.len() / 2, bytes.len() - 3] {
        let p = dir.path().join(format!("cut{cut}.dcm"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = read_seg(&p, &opts()).unwrap_err();
        assert!(format!("{err}").contains(&format!("cut{cut}.dcm")), "{err}");
    }
    for flip in (132..bytes.len()).step_by(37) {
        let mut b = bytes.clone();
        b[flip] ^= 0xA5;
        let p = dir.path().join("flipped.dcm");
        std::fs::write(&p, &b).unwrap();
        if let Err(err) = read_seg(&p, &opts()) {
            assert!(format!("{err}").contains("flipped.dcm"), "{err}");
        }
    }
}

#[test]
fn twin_seg_labels_in_the_pipeline_are_resampled_onto_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let ct_dir = dir.path().join("ct");
    std::fs::create_dir(&ct_dir).unwrap();
    let grid = small_grid();
    let ct = ScalarVolume::filled(grid.clone(), 40.0).unwrap();
    write_series(&ct, &ct_dir, &WriteOptions::default()).unwrap();
    let image = read_series(&ct_dir, &opts()).unwrap();
    // A SEG covering slices 1..=3 only: its own grid starts one slice up.
    let (frames, want) = liver_and_tumour(&grid);
    let frames: Vec<Frame> = frames.into_iter().filter(|f| f.k >= 1).collect();
    let path = dir.path().join("labels.seg");
    write_seg(
        &path,
        &grid,
        &[(1, "Liver", "Liver"), (2, "Tumor", "Tumor")],
        &frames,
        &Spoil::default(),
    );
    let own = read_seg(&path, &opts()).unwrap();
    assert_eq!(own.grid.dims, [3, 5, 4]);
    let build = TwinBuildOptions {
        input: ct_dir.clone(),
        labels: Some(path),
        preset: None,
        tets: 1000,
        surface_triangles: 1000,
        materials: None,
        modality: None,
        series: None,
        all_tissues: false,
    };
    let mut notes = Vec::new();
    let (labels, from) =
        pipeline::labels(&build, &image.volume, &image.provenance, &mut notes).unwrap();
    assert_eq!(from, "DICOM SEG");
    assert_eq!(labels.grid, image.volume.grid);
    let mut want = want;
    want[..15].fill(0);
    assert_eq!(labels.data, want, "{notes:?}");
}

// ---------------------------------------------------------------------------------------------
// pydicom's SEG test files.

fn pydicom_dir() -> Option<PathBuf> {
    crate::twin_dicom::pydicom_dir_holding("liver_1frame.dcm")
}

#[test]
fn twin_seg_pydicom_liver_files_load() {
    let Some(dir) = pydicom_dir() else { return };
    let mut loaded: Vec<(String, LabelVolume)> = Vec::new();
    for name in [
        "liver_1frame.dcm",
        "liver_expb_1frame.dcm",
        "liver.dcm",
        "liver_nonbyte_aligned.dcm",
    ] {
        let path = dir.join(name);
        if !path.is_file() {
            eprintln!("{name}: not in the test data, skipped");
            continue;
        }
        let seg = read_seg_with(&path, &opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let v = &seg.labels;
        assert_eq!(&v.grid.dims[..2], &[512, 512], "{name}");
        let liver = v
            .data
            .iter()
            .filter(|&&l| l == Label::Parenchyma as u8)
            .count();
        let slices = v.grid.dims[2];
        // A liver fills some, not most, of an abdominal slice.
        assert!(
            liver > 1000 * slices / 4 && liver < 512 * 512 * slices / 2,
            "{name}: {liver} voxels in {slices} slices"
        );
        assert_eq!(seg.segments.len(), 1, "{name}");
        assert_eq!(seg.segments[0].label, Label::Parenchyma, "{name}");
        assert!((v.grid.spacing_m[0] - 0.810547e-3).abs() < 1e-9, "{name}");
        eprintln!(
            "{name}: dims {:?}, {liver} liver voxels, notes {:?}",
            v.grid.dims, seg.notes
        );
        loaded.push((name.to_string(), seg.labels));
    }
    let get = |n: &str| loaded.iter().find(|(m, _)| m == n).map(|(_, v)| v);
    if let (Some(a), Some(b)) = (get("liver_1frame.dcm"), get("liver_expb_1frame.dcm")) {
        assert_eq!(a, b, "little and big endian files differ");
        assert_eq!(a.grid.dims, [512, 512, 1]);
        // pydicom's own count of set bits in this frame.
        assert_eq!(a.data.iter().filter(|&&l| l == 1).count(), 36233);
    }
    if let (Some(a), Some(b)) = (get("liver.dcm"), get("liver_nonbyte_aligned.dcm")) {
        assert_eq!(a, b, "byte-aligned and non-byte-aligned files differ");
    }
    assert!(!loaded.is_empty());
}
