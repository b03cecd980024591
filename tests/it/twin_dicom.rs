//! DICOM import and de-identification (`twin::dicom`, `twin::deid`): synthetic series written
//! with `write_series` (round trip, missing / duplicate slices, mixed series, gantry tilt,
//! burned-in annotation, truncated and garbage files), planted PHI that must not survive an
//! import, pydicom's test files (fetched by `scripts/fetch-test-data.sh` into
//! `target/test-data/pydicom/test_files`, or `$HAPTWIN_TEST_DATA/pydicom/test_files`), and
//! property tests of the reader on random and mutated bytes.

use std::path::{Path, PathBuf};

use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileDicomObject, InMemDicomObject, OpenFileOptions};
use proptest::prelude::*;

use haptwin::twin::deid::{Deidentifier, PseudonymKey};
use haptwin::twin::dicom::{
    open_deidentified, read_bytes, read_files, read_series, write_series, DicomError,
    ImportOptions, ImportedSeries, WriteOptions,
};
use haptwin::twin::volume::{Grid, ScalarVolume};

fn key() -> PseudonymKey {
    PseudonymKey::from_bytes(b"haptwin test key, not a secret")
}

fn opts() -> ImportOptions {
    ImportOptions {
        series: None,
        pseudonym_key: Some(key()),
    }
}

/// A small CT-like volume on a rotated, offset grid (right-handed), values -1100..2900 HU.
fn phantom(dims: [usize; 3]) -> ScalarVolume {
    let (s, c) = (0.3f64.sin(), 0.3f64.cos());
    let grid = Grid {
        dims,
        spacing_m: [0.7e-3, 0.8e-3, 2.5e-3],
        origin_m: [-0.1234567, 0.0456, 0.31],
        // i along (c, s, 0), j along (-s, c, 0), k along z.
        direction: [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]],
    };
    let n = grid.len();
    let data = (0..n)
        .map(|q| -1100.0 + ((q * 37) % 4000) as f32 + 0.25)
        .collect();
    ScalarVolume::new(grid, data).unwrap()
}

fn write(dir: &Path, dims: [usize; 3]) -> (ScalarVolume, Vec<PathBuf>) {
    let v = phantom(dims);
    let files = write_series(&v, dir, &WriteOptions::default()).unwrap();
    (v, files)
}

fn open(file: &Path) -> FileDicomObject<InMemDicomObject> {
    OpenFileOptions::new().open_file(file).unwrap()
}

fn edit(file: &Path, f: impl FnOnce(&mut FileDicomObject<InMemDicomObject>)) {
    let mut obj = open(file);
    f(&mut obj);
    obj.write_to_file(file).unwrap();
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn twin_dicom_round_trip_keeps_grid_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let (v, files) = write(dir.path(), [20, 16, 6]);
    assert_eq!(files.len(), 6);
    let s = read_series(dir.path(), &opts()).unwrap();
    let (a, b) = (&v.grid, &s.volume.grid);
    assert_eq!(a.dims, b.dims);
    for i in 0..3 {
        assert!(
            (a.spacing_m[i] - b.spacing_m[i]).abs() < 1e-6,
            "{a:?} {b:?}"
        );
        assert!((a.origin_m[i] - b.origin_m[i]).abs() < 1e-6, "{a:?} {b:?}");
        for j in 0..3 {
            assert!(
                (a.direction[i][j] - b.direction[i][j]).abs() < 1e-6,
                "{a:?} {b:?}"
            );
        }
    }
    let worst = v
        .data
        .iter()
        .zip(&s.volume.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 0.5 + 1e-3, "worst {worst} HU");
    let p = &s.provenance;
    assert_eq!(p.modality, "CT");
    assert_eq!(p.intensity_unit, "HU");
    assert_eq!(p.source_format, "dicom");
    assert_eq!(p.files, 6);
    assert_eq!(
        p.transfer_syntax.as_deref(),
        Some("Explicit VR Little Endian")
    );
    assert!(p.case_id.starts_with("case-") && p.case_id.len() == 17);
    assert!(p.deidentification.codes.contains(&"113100".to_string()));
    assert!(p.deidentification.elements_changed > 0);
    assert_eq!(s.slices, 6);
    assert_eq!(s.skipped, Default::default());
    // Same key, same study: same case; another key: another case.
    let again = read_series(dir.path(), &opts()).unwrap();
    assert_eq!(again.provenance.case_id, p.case_id);
    assert_eq!(again.series_id, s.series_id);
    let other = read_series(
        dir.path(),
        &ImportOptions {
            series: None,
            pseudonym_key: Some(PseudonymKey::from_bytes(b"another installation")),
        },
    )
    .unwrap();
    assert_ne!(other.provenance.case_id, p.case_id);
    // The slices are ordered by position, not by file name.
    let shuffled = tempfile::tempdir().unwrap();
    for (k, f) in files.iter().enumerate() {
        std::fs::copy(f, shuffled.path().join(format!("z{}", (k * 7) % 11))).unwrap();
    }
    let s2 = read_series(shuffled.path(), &opts()).unwrap();
    assert_eq!(s2.volume.data, s.volume.data);
}

#[test]
fn twin_dicom_missing_slice_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = write(dir.path(), [8, 8, 8]);
    std::fs::remove_file(&files[3]).unwrap();
    let err = read_series(dir.path(), &opts()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DicomError::MissingSlice { .. }), "{err:?}");
    assert!(
        msg.contains("CT00003.dcm") && msg.contains("CT00005.dcm"),
        "{msg}"
    );
}

#[test]
fn twin_dicom_duplicate_position_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = write(dir.path(), [8, 8, 4]);
    std::fs::copy(&files[1], dir.path().join("copy.dcm")).unwrap();
    let err = read_series(dir.path(), &opts()).unwrap_err();
    assert!(
        matches!(err, DicomError::DuplicatePosition { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("CT00002.dcm") && msg.contains("copy.dcm"),
        "{msg}"
    );
}

#[test]
fn twin_dicom_two_series_in_one_folder_must_be_picked() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a"), [8, 8, 3]);
    write(&dir.path().join("b"), [8, 8, 5]);
    let err = read_series(dir.path(), &opts()).unwrap_err();
    let DicomError::MultipleSeries { series, .. } = &err else {
        panic!("{err:?}");
    };
    let mut counts: Vec<usize> = series.iter().map(|(_, n)| *n).collect();
    counts.sort();
    assert_eq!(counts, vec![3, 5]);
    let msg = err.to_string();
    assert!(
        msg.contains("(3 slices)") && msg.contains("(5 slices)"),
        "{msg}"
    );
    // Identified by short keyed hashes only.
    assert!(series
        .iter()
        .all(|(id, _)| id.len() == 9 && id.starts_with('s')));
    let five = series.iter().find(|(_, n)| *n == 5).unwrap().0.clone();
    let s = read_series(
        dir.path(),
        &ImportOptions {
            series: Some(five.clone()),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(s.volume.grid.dims[2], 5);
    assert_eq!(s.series_id, five);
    assert_eq!(s.skipped.other_series, 3);
    let err = read_series(
        dir.path(),
        &ImportOptions {
            series: Some("sffffffff".into()),
            ..opts()
        },
    )
    .unwrap_err();
    assert!(matches!(err, DicomError::SeriesNotFound { .. }), "{err:?}");
}

#[test]
fn twin_dicom_gantry_tilt_is_refused_with_its_angle() {
    let dir = tempfile::tempdir().unwrap();
    let v = ScalarVolume::filled(
        Grid::axis_aligned([8, 8, 5], [1e-3, 1e-3, 2e-3], [0.0, 0.0, 0.0]),
        40.0,
    )
    .unwrap();
    let files = write_series(&v, dir.path(), &WriteOptions::default()).unwrap();
    // Shift each slice along y by tan(15 deg) * z: the stack leans 15 degrees off the normal.
    let t = 15f64.to_radians().tan();
    for (k, f) in files.iter().enumerate() {
        edit(f, |o| {
            let z = 2.0 * k as f64;
            o.put(DataElement::new(
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                PrimitiveValue::Strs(
                    ["0".to_string(), format!("{:.6}", t * z), format!("{z}")]
                        .into_iter()
                        .collect(),
                ),
            ));
        });
    }
    let err = read_series(dir.path(), &opts()).unwrap_err();
    let DicomError::GantryTilt { angle_deg, file } = &err else {
        panic!("{err:?}");
    };
    assert!((angle_deg - 15.0).abs() < 0.01, "{angle_deg}");
    assert!(files.contains(file));
}

#[test]
fn twin_dicom_burned_in_annotation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = write(dir.path(), [8, 8, 3]);
    edit(&files[2], |o| {
        o.put(DataElement::new(
            tags::BURNED_IN_ANNOTATION,
            VR::CS,
            PrimitiveValue::from("YES"),
        ));
    });
    let err = read_series(dir.path(), &opts()).unwrap_err();
    assert!(
        matches!(err, DicomError::BurnedInAnnotation { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("CT00003.dcm"));
}

#[test]
fn twin_dicom_truncated_and_garbage_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = write(dir.path(), [16, 16, 3]);
    let bytes = std::fs::read(&files[1]).unwrap();
    let cut = dir.path().join("cut");
    std::fs::create_dir(&cut).unwrap();
    let truncated = cut.join("truncated.dcm");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let err = read_files(std::slice::from_ref(&truncated), &opts()).unwrap_err();
    assert!(
        matches!(
            err,
            DicomError::Corrupt { .. } | DicomError::PixelData { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("truncated.dcm"), "{err}");

    let garbage = cut.join("garbage.bin");
    std::fs::write(
        &garbage,
        b"this is not a DICOM file at all, just some text\n",
    )
    .unwrap();
    let err = read_files(std::slice::from_ref(&garbage), &opts()).unwrap_err();
    assert!(matches!(err, DicomError::NotDicom { .. }), "{err:?}");
    assert!(err.to_string().contains("garbage.bin"));
    std::fs::write(cut.join("empty"), b"").unwrap();
    assert!(read_files(&[cut.join("empty")], &opts()).is_err());

    // In a folder, a stray non-DICOM file is skipped and counted.
    std::fs::write(dir.path().join("notes.txt"), b"scanner notes").unwrap();
    std::fs::remove_dir_all(&cut).unwrap();
    let s = read_series(dir.path(), &opts()).unwrap();
    assert_eq!(s.skipped.not_dicom, 1);
    assert_eq!(s.volume.grid.dims, [16, 16, 3]);
    assert!(s.notes.iter().any(|n| n.contains("non-DICOM")));
}

/// Distinctive values planted in every PHI attribute of the profile.
const PLANTED: &[(Tag, VR, &str)] = &[
    (tags::PATIENT_NAME, VR::PN, "Zyxwert^Quilla"),
    (tags::PATIENT_ID, VR::LO, "PID-77341902"),
    (tags::PATIENT_BIRTH_DATE, VR::DA, "19461103"),
    (tags::PATIENT_SEX, VR::CS, "O"),
    (tags::PATIENT_AGE, VR::AS, "077Y"),
    (tags::PATIENT_SIZE, VR::DS, "1.8731"),
    (tags::PATIENT_WEIGHT, VR::DS, "93.417"),
    (
        tags::PATIENT_ADDRESS,
        VR::LO,
        "12 Plumtree Crescent Vexholm",
    ),
    (tags::PATIENT_TELEPHONE_NUMBERS, VR::SH, "+44 555 0199"),
    (Tag(0x0010, 0x1001), VR::PN, "Quilla^Maidenname"),
    (Tag(0x0010, 0x1000), VR::LO, "OTHERID-55512"),
    (Tag(0x0010, 0x2160), VR::SH, "ETHNICX"),
    (tags::PATIENT_COMMENTS, VR::LT, "patient comment Xylophorus"),
    (
        tags::ADDITIONAL_PATIENT_HISTORY,
        VR::LT,
        "history Brambleworth",
    ),
    (tags::STUDY_DATE, VR::DA, "20240229"),
    (tags::STUDY_TIME, VR::TM, "235959.123"),
    (tags::SERIES_DATE, VR::DA, "20240228"),
    (tags::ACQUISITION_DATE, VR::DA, "20240227"),
    (tags::CONTENT_DATE, VR::DA, "20240226"),
    (tags::ACCESSION_NUMBER, VR::SH, "ACC90817263"),
    (tags::REFERRING_PHYSICIAN_NAME, VR::PN, "Referrer^Octavian"),
    (tags::STUDY_ID, VR::SH, "STUDY4471"),
    (tags::INSTITUTION_NAME, VR::LO, "Saint Grimwald Infirmary"),
    (tags::INSTITUTION_ADDRESS, VR::ST, "1 Hospital Way Grimwald"),
    (tags::STATION_NAME, VR::SH, "CTSTATION9Q"),
    (tags::OPERATORS_NAME, VR::PN, "Operator^Wenceslas"),
    (tags::PERFORMING_PHYSICIAN_NAME, VR::PN, "Performer^Ysolde"),
    (tags::PHYSICIANS_OF_RECORD, VR::PN, "Record^Barnabus"),
    (tags::DEVICE_SERIAL_NUMBER, VR::LO, "SN-4F7Q-99812"),
    (tags::STUDY_DESCRIPTION, VR::LO, "ABDOMEN Quillastudy"),
    (tags::SERIES_DESCRIPTION, VR::LO, "Arterial Quillaseries"),
    (tags::IMAGE_COMMENTS, VR::LT, "image comment Grumbleton"),
    (tags::PROTOCOL_NAME, VR::LO, "Protocol Vexholm Liver"),
    (
        tags::REQUESTED_PROCEDURE_DESCRIPTION,
        VR::LO,
        "requested Flimwick",
    ),
    (Tag(0x0009, 0x0010), VR::LO, "ACME PRIVATE"),
    (Tag(0x0009, 0x1001), VR::LO, "private Snorbert value"),
];

fn dump(ds: &InMemDicomObject, out: &mut String) {
    for e in ds.iter() {
        out.push_str(&format!("{:?} ", e.tag()));
        match e.value() {
            Value::Sequence(seq) => {
                for item in seq.items() {
                    dump(item, out);
                }
            }
            Value::Primitive(p) if e.tag() != tags::PIXEL_DATA => {
                out.push_str(&p.to_str());
                out.push('\n');
            }
            _ => {}
        }
    }
}

#[test]
fn twin_dicom_planted_phi_never_comes_out() {
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = write(dir.path(), [8, 8, 4]);
    let uid_of = |f: &Path, tag| {
        open(f)
            .element(tag)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches('\0')
            .to_string()
    };
    let sop: Vec<String> = files
        .iter()
        .map(|f| uid_of(f, tags::SOP_INSTANCE_UID))
        .collect();
    let study = uid_of(&files[0], tags::STUDY_INSTANCE_UID);
    let series = uid_of(&files[0], tags::SERIES_INSTANCE_UID);
    let frame = uid_of(&files[0], tags::FRAME_OF_REFERENCE_UID);
    for (k, f) in files.iter().enumerate() {
        let next = sop[(k + 1) % sop.len()].clone();
        edit(f, |o| {
            for (tag, vr, v) in PLANTED {
                o.put(DataElement::new(*tag, *vr, PrimitiveValue::from(*v)));
            }
            // A UID inside a sequence (pointing at the next file), and a name in there too.
            let item = InMemDicomObject::from_element_iter([
                DataElement::new(
                    tags::REFERENCED_SOP_CLASS_UID,
                    VR::UI,
                    PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2"),
                ),
                DataElement::new(
                    tags::REFERENCED_SOP_INSTANCE_UID,
                    VR::UI,
                    PrimitiveValue::from(next.as_str()),
                ),
                DataElement::new(
                    tags::PERSON_NAME,
                    VR::PN,
                    PrimitiveValue::from("Nested^Hieronymus"),
                ),
            ]);
            o.put(DataElement::new(
                tags::REFERENCED_IMAGE_SEQUENCE,
                VR::SQ,
                Value::from(DataSetSequence::new(vec![item], Length::UNDEFINED)),
            ));
        });
    }
    let mut secrets: Vec<String> = PLANTED
        .iter()
        .map(|(_, _, v)| v.to_string())
        .filter(|v| v.len() > 2)
        .collect();
    secrets.extend(["Nested^Hieronymus".to_string(), study, series, frame]);
    secrets.extend(sop.iter().cloned());
    let leaks = |text: &str| -> Vec<String> {
        secrets
            .iter()
            .filter(|s| text.contains(s.as_str()))
            .cloned()
            .collect()
    };

    // The import: nothing planted anywhere in what comes back.
    let s: ImportedSeries = read_series(dir.path(), &opts()).unwrap();
    let json = serde_json::to_string(&s.provenance).unwrap();
    let mut all = format!(
        "{json}\n{:?}\n{}\n{:?}\n{:?}",
        s.provenance, s.series_id, s.notes, s.skipped
    );
    all.push_str(&format!("{:?}", s.volume.grid));
    assert!(leaks(&all).is_empty(), "leaked {:?}", leaks(&all));
    assert!(s.provenance.deidentification.elements_changed as usize >= PLANTED.len() * 4);

    // The de-identified data sets themselves: clean, UIDs replaced one-to-one and
    // consistently, inside sequences and the meta group too.
    let mut deid = Deidentifier::new(key());
    let objs: Vec<_> = files
        .iter()
        .map(|f| open_deidentified(f, &mut deid).unwrap().unwrap())
        .collect();
    let mut text = String::new();
    for o in &objs {
        dump(o, &mut text);
        text.push_str(&format!("{:?}", o.meta()));
    }
    assert!(leaks(&text).is_empty(), "leaked {:?}", leaks(&text));
    let get = |o: &InMemDicomObject, tag| o.element(tag).unwrap().to_str().unwrap().into_owned();
    let new_sop: Vec<String> = objs
        .iter()
        .map(|o| get(o, tags::SOP_INSTANCE_UID))
        .collect();
    for (k, o) in objs.iter().enumerate() {
        assert_eq!(
            get(o, tags::STUDY_INSTANCE_UID),
            get(&objs[0], tags::STUDY_INSTANCE_UID)
        );
        assert_eq!(o.meta().media_storage_sop_instance_uid, new_sop[k]);
        let seq = o.element(tags::REFERENCED_IMAGE_SEQUENCE).unwrap();
        let item = &seq.items().unwrap()[0];
        assert_eq!(
            get(item, tags::REFERENCED_SOP_INSTANCE_UID),
            new_sop[(k + 1) % new_sop.len()]
        );
        assert_eq!(
            get(item, tags::REFERENCED_SOP_CLASS_UID),
            "1.2.840.10008.5.1.4.1.1.2"
        );
        assert_eq!(get(o, tags::PATIENT_IDENTITY_REMOVED), "YES");
        let code = &o
            .element(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()[0];
        assert_eq!(get(code, tags::CODE_VALUE), "113100");
        assert_eq!(get(code, tags::CODING_SCHEME_DESIGNATOR), "DCM");
        assert!(o.iter().all(|e| e.tag().group() % 2 == 0));
        assert_eq!(get(o, tags::PATIENT_ID), s.provenance.case_id);
    }
    let mut distinct = new_sop.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), new_sop.len());
    assert_eq!(deid.uid_map().len(), sop.len() + 3);

    // Error text: a broken planted series names files, never the planted values.
    std::fs::remove_file(&files[1]).unwrap();
    let err = read_series(dir.path(), &opts()).unwrap_err();
    let msg = format!("{err}\n{err:?}");
    assert!(matches!(err, DicomError::MissingSlice { .. }), "{err:?}");
    assert!(leaks(&msg).is_empty(), "leaked {:?}", leaks(&msg));
}

// ---------------------------------------------------------------------------------------------
// pydicom's test files.

fn pydicom_dir() -> Option<PathBuf> {
    pydicom_dir_holding("CT_small.dcm")
}

/// pydicom's test files, when `file` is among them (`None`, with a note, when the data was not
/// fetched; a failure under `HAPTWIN_REQUIRE_TEST_DATA`).
pub fn pydicom_dir_holding(file: &str) -> Option<PathBuf> {
    let base = std::env::var_os("HAPTWIN_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-data"));
    let dir = base.join("pydicom/test_files");
    if dir.join(file).is_file() {
        Some(dir)
    } else {
        assert!(
            std::env::var_os("HAPTWIN_REQUIRE_TEST_DATA").is_none(),
            "{} missing: run scripts/fetch-test-data.sh",
            dir.display()
        );
        eprintln!(
            "skipped: {} missing (run scripts/fetch-test-data.sh)",
            dir.display()
        );
        None
    }
}

fn one(file: &Path) -> Result<ImportedSeries, DicomError> {
    read_files(&[file.to_path_buf()], &opts())
}

#[test]
fn twin_dicom_pydicom_files_load_or_are_refused_by_name() {
    let Some(dir) = pydicom_dir() else { return };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    let mut loaded = 0;
    for f in &entries {
        let n = name(f);
        match one(f) {
            Ok(s) => {
                loaded += 1;
                let g = &s.volume.grid;
                eprintln!(
                    "{n}: loaded {:?} {} {:?} mm, {}",
                    g.dims,
                    s.provenance.modality,
                    g.spacing_m.map(|x| x * 1e3),
                    s.provenance.transfer_syntax.as_deref().unwrap_or("")
                );
                assert!(s.volume.data.iter().all(|v| v.is_finite()), "{n}");
            }
            Err(e) => {
                let msg = e.to_string();
                eprintln!("{n}: refused: {msg}");
                assert!(msg.contains(&n), "{n}: error does not name the file: {msg}");
            }
        }
    }
    assert!(loaded >= 12, "only {loaded} files loaded");

    // CT_small: 128 x 128 CT in HU.
    let ct = one(&dir.join("CT_small.dcm")).unwrap();
    assert_eq!(ct.volume.grid.dims, [128, 128, 1]);
    assert_eq!(ct.provenance.modality, "CT");
    assert_eq!(ct.provenance.intensity_unit, "HU");
    let sp = ct.volume.grid.spacing_m;
    assert!(
        (sp[0] - 0.661468e-3).abs() < 1e-8 && (sp[1] - 0.661468e-3).abs() < 1e-8,
        "{sp:?}"
    );
    let (lo, hi) = ct
        .volume
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    assert!(
        (-1100.0..=-500.0).contains(&lo) && (200.0..=4000.0).contains(&hi),
        "{lo} {hi}"
    );
    let soft = ct
        .volume
        .data
        .iter()
        .filter(|v| (-200.0..=300.0).contains(*v))
        .count();
    assert!(soft > ct.volume.data.len() / 5, "{soft} soft-tissue voxels");

    // MR_small in every lossless syntax: the same pixels.
    let mr = one(&dir.join("MR_small.dcm")).unwrap();
    assert_eq!(mr.volume.grid.dims, [64, 64, 1]);
    assert_eq!(mr.provenance.modality, "MR");
    assert_eq!(mr.provenance.intensity_unit, "arbitrary");
    for other in [
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_padded.dcm",
    ] {
        let o = one(&dir.join(other)).unwrap_or_else(|e| panic!("{other}: {e}"));
        assert_eq!(o.volume.grid, mr.volume.grid, "{other}");
        assert_eq!(o.volume.data, mr.volume.data, "{other}");
    }

    // Lossy JPEG 2000 CT, 512 x 512.
    let j2k = one(&dir.join("693_J2KI.dcm")).unwrap();
    assert_eq!(&j2k.volume.grid.dims[..2], &[512, 512]);
    assert_eq!(j2k.provenance.modality, "CT");

    // JPEG-LS (no charls here) and 12-bit JPEG extended: refused by name.
    for (f, want) in [
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS"),
        ("JPEGLSNearLossless_16.dcm", "JPEG-LS"),
        ("JPGExtended.dcm", "JPEG Extended"),
    ] {
        let err = one(&dir.join(f)).unwrap_err();
        let DicomError::UnsupportedTransferSyntax { name, .. } = &err else {
            panic!("{f}: {err:?}");
        };
        assert!(name.contains(want), "{f}: {name}");
    }
    // Colour secondary captures are not scalar volumes.
    let err = one(&dir.join("SC_rgb_rle.dcm")).unwrap_err();
    assert!(
        matches!(err, DicomError::UnsupportedImage { .. }),
        "{err:?}"
    );
    // A plan holds no image.
    let err = one(&dir.join("rtplan.dcm")).unwrap_err();
    assert!(matches!(err, DicomError::NoImages { .. }), "{err:?}");
    // Truncated pixel data.
    let err = one(&dir.join("MR_truncated.dcm")).unwrap_err();
    assert!(
        matches!(
            err,
            DicomError::PixelData { .. } | DicomError::Corrupt { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn twin_dicom_pydicom_dicomdir_series_loads_as_a_stack() {
    let Some(dir) = pydicom_dir() else { return };
    let root = dir.join("dicomdirtests");
    // The whole tree: DICOMDIRs skipped, several series to choose from.
    let err = read_series(&root, &opts()).unwrap_err();
    let DicomError::MultipleSeries { series, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(series.len() >= 5, "{series:?}");
    // A contiguous CT series of the tree: 5 slices, 2.5 mm apart.
    let ct = read_series(&root.join("98892001/CT5N"), &opts()).unwrap();
    let g = &ct.volume.grid;
    eprintln!(
        "dicomdirtests/98892001/CT5N: {:?} {:?} mm {}",
        g.dims,
        g.spacing_m.map(|x| x * 1e3),
        ct.provenance.modality
    );
    assert_eq!(g.dims, [16, 16, 5]);
    assert!((g.spacing_m[2] - 2.5e-3).abs() < 1e-9, "{g:?}");
    assert_eq!(ct.provenance.modality, "CT");
    assert_eq!(ct.provenance.files, 5);
    // Another, with slices left out of the test set: a missing-slice error naming both sides.
    let err = read_series(&root.join("77654033/CT2"), &opts()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DicomError::MissingSlice { .. }), "{err:?}");
    assert!(msg.contains("17106") && msg.contains("17136"), "{msg}");
    // Scattered localiser-like MR slices do not make a volume.
    let err = read_series(&root.join("98892003/MR700"), &opts()).unwrap_err();
    eprintln!("dicomdirtests/98892003/MR700: {err}");
    // TINY_ALPHA's images hold no pixel data; its DICOMDIR is skipped.
    let err = read_series(&root.join("TINY_ALPHA"), &opts()).unwrap_err();
    assert!(matches!(err, DicomError::NoImages { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Property tests: random and mutated bytes never panic the reader.

fn valid_file_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = write(dir.path(), [6, 5, 1]);
    std::fs::read(&files[0]).unwrap()
}

fn read_mem(bytes: &[u8]) -> Result<ImportedSeries, DicomError> {
    read_bytes(Path::new("fuzz.dcm"), bytes, &opts())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn twin_dicom_random_bytes_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                                          magic in 0u8..3) {
        let mut b = bytes;
        // Give a share of the cases a DICOM magic so the parser proper is exercised.
        match magic {
            1 => { b.splice(0..0, b"DICM".iter().copied()); }
            2 => { let mut p = vec![0u8; 128]; p.extend_from_slice(b"DICM"); b.splice(0..0, p); }
            _ => {}
        }
        let _ = read_mem(&b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 800, ..ProptestConfig::default() })]

    #[test]
    fn twin_dicom_mutated_files_are_errors_or_volumes(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut b = valid_file_bytes_cached().to_vec();
        // Mutations land in the header (first 600 bytes) more often than in the pixels.
        for (i, v) in flips {
            let n = if v % 2 == 0 { b.len().min(600) } else { b.len() };
            let at = i.index(n);
            b[at] = v;
        }
        if truncate {
            let n = cut.index(b.len());
            b.truncate(n);
        }
        if let Ok(s) = read_mem(&b) {
            prop_assert_eq!(s.volume.data.len(), s.volume.grid.len());
        }
    }
}

fn valid_file_bytes_cached() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(valid_file_bytes)
}

/// Timing of a 300 x 512 x 512 series: `cargo test --release --test it twin_dicom_timing --
/// --ignored --nocapture`.
#[test]
#[ignore]
fn twin_dicom_timing_300_slices_of_512() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::axis_aligned([512, 512, 300], [0.7e-3, 0.7e-3, 1e-3], [0.0; 3]);
    let n = grid.len();
    let v =
        ScalarVolume::new(grid, (0..n).map(|q| ((q % 3000) as f32) - 1000.0).collect()).unwrap();
    let t = std::time::Instant::now();
    write_series(&v, dir.path(), &WriteOptions::default()).unwrap();
    let tw = t.elapsed();
    let t = std::time::Instant::now();
    let s = read_series(dir.path(), &opts()).unwrap();
    let tr = t.elapsed();
    assert_eq!(s.volume.grid.dims, [512, 512, 300]);
    eprintln!("300 x 512 x 512: write_series {tw:.2?}, read_series {tr:.2?}");
}
