//! NIfTI import and export on real volumes (nilearn's MNI template and tissue maps, nibabel's
//! test images; `scripts/fetch-test-data.sh` fetches them), round trips, de-identification,
//! corrupt files and a fuzz of the reader.

use std::io::Write;
use std::path::{Path, PathBuf};

use haptwin::twin::labels::Label;
use haptwin::twin::nifti::{
    read_label_nifti, read_nifti, read_nifti_with, resample_labels, write_nifti, ImportOptions,
    NiftiError, Placement, DEIDENTIFICATION_METHOD,
};
use haptwin::twin::segment::{segment, Preset, Threshold};
use haptwin::twin::volume::{Grid, LabelVolume, ScalarVolume, Volume};
use nalgebra::Vector3;
use proptest::prelude::*;

/// A file of the fetched test data; panics with what to do if it is missing.
pub fn test_data(rel: &str) -> PathBuf {
    let root = std::env::var_os("HAPTWIN_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-data"));
    let path = root.join(rel);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-test-data.sh",
        path.display()
    );
    path
}

const MNI_T1: &str = "nilearn/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz";
const MNI_GM: &str = "nilearn/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz";
const MNI_WM: &str = "nilearn/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz";

fn close(a: [f64; 3], b: [f64; 3], tol: f64) -> bool {
    (0..3).all(|n| (a[n] - b[n]).abs() <= tol)
}

#[test]
fn mni_t1_loads_at_1_mm_with_ras_turned_into_lps() {
    let import = read_nifti_with(test_data(MNI_T1), &ImportOptions::default()).unwrap();
    let v = &import.volume;
    let g = &v.grid;
    assert_eq!(g.dims, [197, 233, 189]);
    assert!(close(g.spacing_m, [0.001; 3], 1e-9));
    assert_eq!(import.placement, Placement::Sform);
    assert_eq!(import.volumes_in_file, 1);
    // The sform is the identity in RAS: in LPS, i runs to the patient's right (-x), j to the
    // front (-y), k up (+z).
    assert!(close(g.direction[0], [-1.0, 0.0, 0.0], 1e-9));
    assert!(close(g.direction[1], [0.0, -1.0, 0.0], 1e-9));
    assert!(close(g.direction[2], [0.0, 0.0, 1.0], 1e-9));
    // Voxel (0,0,0) is at RAS (-98, -134, -72) mm: 98 mm to the left, 134 mm behind, 72 mm down.
    assert!(close(g.origin_m, [0.098, 0.134, -0.072], 1e-9));
    // MNI's origin (the anterior commissure) is voxel (98, 134, 72).
    let ac = g.patient_to_voxel(Vector3::zeros());
    assert!(close(ac, [98.0, 134.0, 72.0], 1e-6), "{ac:?}");
    // A point 10 mm to the patient's left (LPS +x) is at a lower i.
    let left = g.patient_to_voxel(Vector3::new(0.010, 0.0, 0.0));
    assert!((left[0] - 88.0).abs() < 1e-6);
    // Values as nibabel reads them (uint8, no scaling).
    assert_eq!(v.get(98, 134, 72), Some(71.0));
    let sum: f64 = v.data.iter().map(|&x| x as f64).sum();
    assert_eq!(sum, 333_468_829.0);
    // Provenance: a random pseudonym, the method, nothing else.
    let p = &import.provenance;
    assert!(p.case_id.starts_with("case-") && p.case_id.len() == 17);
    assert_eq!(p.source_format, "nifti");
    assert_eq!(p.modality, "unknown");
    assert_eq!(p.intensity_unit, "arbitrary");
    assert_eq!(p.deidentification.method, DEIDENTIFICATION_METHOD);
    assert_eq!(&p.grid, g);
    let again = read_nifti(test_data(MNI_T1)).unwrap();
    assert_ne!(again.1.case_id, p.case_id, "case ids are random");
}

#[test]
fn nibabel_big_endian_anatomical_loads_with_its_values_and_placement() {
    let (v, _) = read_nifti(test_data("nibabel/anatomical.nii")).unwrap();
    let g = &v.grid;
    assert_eq!(g.dims, [33, 41, 25]);
    assert!(close(g.spacing_m, [0.002; 3], 1e-9));
    // sform diag(-2, 2, 2) + (32, -40, -16) in RAS: i runs to the left (+x in LPS), j to the
    // front (-y), k up.
    assert!(close(
        g.direction_matrix().column(0).into(),
        [1.0, 0.0, 0.0],
        1e-9
    ));
    assert!(close(
        g.direction_matrix().column(1).into(),
        [0.0, -1.0, 0.0],
        1e-9
    ));
    assert!(close(g.origin_m, [-0.032, 0.040, -0.016], 1e-9));
    // Big-endian int16 read right: nibabel's values.
    assert_eq!(v.get(0, 0, 0), Some(10712.0));
    assert_eq!(v.get(16, 20, 12), Some(11881.0));
    let (min, max) = v
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    assert_eq!((min, max), (-610.0, 30393.0));
    let sum: f64 = v.data.iter().map(|&x| x as f64).sum();
    assert_eq!(sum, 284_166_082.0);
}

#[test]
fn four_d_images_are_refused_unless_the_first_volume_is_asked_for() {
    let path = test_data("nibabel/example4d.nii.gz");
    let err = read_nifti(&path).unwrap_err();
    assert!(
        matches!(err, NiftiError::MultiVolume { volumes: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("example4d.nii.gz"));
    let opts = ImportOptions {
        first_volume_of_4d: true,
        case_id: Some("case-given".to_owned()),
        modality: Some("MR".to_owned()),
    };
    let import = read_nifti_with(&path, &opts).unwrap();
    assert_eq!(import.volumes_in_file, 2);
    assert_eq!(import.provenance.case_id, "case-given");
    assert_eq!(import.provenance.modality, "MR");
    let v = &import.volume;
    assert_eq!(v.grid.dims, [128, 96, 24]);
    assert_eq!(v.get(64, 48, 12), Some(265.0));
    let sum: f64 = v.data.iter().map(|&x| x as f64).sum();
    assert_eq!(sum, 50_994_397.0, "the first volume, not the second");
    // An oblique sform: 2 mm in-plane, 2.2 mm slices, tilted about x.
    assert!(close(v.grid.spacing_m, [0.002, 0.002, 0.0022], 1e-7));
    let d = v.grid.direction_matrix();
    assert!(
        (d.transpose() * d - nalgebra::Matrix3::identity())
            .abs()
            .max()
            < 1e-12
    );
    assert!(d[(2, 1)].abs() > 0.1, "j tilts towards z: {d}");
    // 20 volumes of functional.nii: refused the same way.
    assert!(matches!(
        read_nifti(test_data("nibabel/functional.nii")),
        Err(NiftiError::MultiVolume { volumes: 20, .. })
    ));
}

#[test]
fn the_other_nibabel_images_load_or_are_refused_by_name() {
    // float32, big-endian, sform.
    let (v, _) = read_nifti(test_data("nibabel/reoriented_anat_moved.nii")).unwrap();
    assert_eq!(v.grid.dims, [21, 26, 22]);
    let max = v.data.iter().cloned().fold(f32::MIN, f32::max);
    assert!((max - 21199.936).abs() < 0.01);
    // NaN where the resampling had no data: refused by name (a twin needs every voxel).
    let err = read_nifti(test_data("nibabel/resampled_anat_moved.nii")).unwrap_err();
    assert!(
        matches!(err, NiftiError::NonFinite { index: 0, .. }),
        "{err}"
    );
    // uint8, no qform, sform diag(1, 3, 2).
    let import = read_nifti_with(
        test_data("nibabel/standard.nii.gz"),
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(import.volume.grid.dims, [4, 5, 7]);
    assert!(close(
        import.volume.grid.spacing_m,
        [0.001, 0.003, 0.002],
        1e-9
    ));
    assert_eq!(&import.volume.data[..4], &[0.0, 255.0, 0.0, 0.0]);
    // NIfTI-2 (and CIFTI, which is NIfTI-2): refused by name.
    for f in [
        "nibabel/example_nifti2.nii.gz",
        "nibabel/row_major.dconn.nii",
    ] {
        let err = read_nifti(test_data(f)).unwrap_err();
        assert!(matches!(err, NiftiError::Nifti2 { .. }), "{f}: {err}");
    }
}

#[test]
fn grey_and_white_matter_maps_become_a_label_map_on_the_t1_grid() {
    let (t1, _) = read_nifti(test_data(MNI_T1)).unwrap();
    let (gm, _) = read_nifti(test_data(MNI_GM)).unwrap();
    let (wm, _) = read_nifti(test_data(MNI_WM)).unwrap();
    // Probability maps stored as uint8 0..255: at least half is 128.
    let half = |label| {
        Preset::Threshold(vec![Threshold {
            label,
            min: 128.0,
            max: f32::INFINITY,
        }])
    };
    let gm_labels = segment(&gm, &half(Label::Parenchyma)).unwrap();
    let wm_labels = segment(&wm, &half(Label::Vessel)).unwrap();
    let count = |l: &LabelVolume, v: u8| l.data.iter().filter(|&&x| x == v).count();
    assert_eq!(count(&gm_labels, Label::Parenchyma as u8), 1_079_599);
    assert_eq!(count(&wm_labels, Label::Vessel as u8), 632_004);
    let mut brain = gm_labels.clone();
    for (b, &w) in brain.data.iter_mut().zip(&wm_labels.data) {
        if w != 0 {
            *b = w;
        }
    }
    // Same grid: resampling is the identity.
    let on_t1 = resample_labels(&brain, &t1.grid);
    assert_eq!(on_t1.data, brain.data);
    // Onto a grid that runs the other way along i: the same labels, mirrored in i.
    let g = &t1.grid;
    let mut flipped = g.clone();
    let last = g.voxel_to_patient([(g.dims[0] - 1) as f64, 0.0, 0.0]);
    flipped.origin_m = [last.x, last.y, last.z];
    for row in flipped.direction.iter_mut() {
        row[0] = -row[0];
    }
    let mirrored = resample_labels(&brain, &flipped);
    for (i, j, k) in [(0, 0, 0), (10, 120, 90), (150, 33, 60), (196, 232, 188)] {
        assert_eq!(
            mirrored.get(i, j, k),
            brain.get(g.dims[0] - 1 - i, j, k),
            "voxel {i} {j} {k}"
        );
    }
    // Onto a 2 mm grid over the same field: an eighth of the voxels of each tissue, give or
    // take the sampling.
    let coarse = Grid {
        dims: [99, 117, 95],
        spacing_m: [0.002; 3],
        ..g.clone()
    };
    let small = resample_labels(&brain, &coarse);
    for l in [Label::Parenchyma as u8, Label::Vessel as u8] {
        let ratio = 8.0 * count(&small, l) as f64 / count(&brain, l) as f64;
        assert!((ratio - 1.0).abs() < 0.05, "label {l}: {ratio}");
    }
    // Outside the map: background.
    let away = Grid {
        origin_m: [1.0, 1.0, 1.0],
        dims: [4, 4, 4],
        ..g.clone()
    };
    assert!(resample_labels(&brain, &away).data.iter().all(|&x| x == 0));
    // The label map written and read back as a label map.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("brain-labels.nii.gz");
    write_nifti(&on_t1, &out).unwrap();
    let back = read_label_nifti(&out).unwrap();
    assert_eq!(back.data, on_t1.data);
    assert!(close(back.grid.origin_m, on_t1.grid.origin_m, 1e-6));
}

#[test]
fn label_maps_refuse_values_that_are_not_labels() {
    // int16 up to 30393.
    let err = read_label_nifti(test_data("nibabel/anatomical.nii")).unwrap_err();
    assert!(matches!(err, NiftiError::LabelValue { index: 0, value, .. } if value == 10712.0));
    // float32 with fractions.
    let err = read_label_nifti(test_data("nibabel/reoriented_anat_moved.nii")).unwrap_err();
    assert!(matches!(err, NiftiError::LabelValue { .. }), "{err}");
    // A float map holding whole numbers is fine; a negative one is not.
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::axis_aligned([3, 2, 1], [0.001; 3], [0.0; 3]);
    let ok = Volume::new(grid.clone(), vec![0.0f32, 1.0, 2.0, 5.0, 255.0, 3.0]).unwrap();
    write_nifti(&ok, dir.path().join("ok.nii")).unwrap();
    assert_eq!(
        read_label_nifti(dir.path().join("ok.nii")).unwrap().data,
        vec![0, 1, 2, 5, 255, 3]
    );
    let bad = Volume::new(grid, vec![0.0f32, 1.0, -1.0, 5.0, 256.0, 3.0]).unwrap();
    write_nifti(&bad, dir.path().join("bad.nii")).unwrap();
    assert!(matches!(
        read_label_nifti(dir.path().join("bad.nii")),
        Err(NiftiError::LabelValue { index: 2, .. })
    ));
}

/// An oblique, left-handed grid with awkward numbers.
fn oblique_grid() -> Grid {
    let r = nalgebra::Rotation3::from_euler_angles(0.3, -0.7, 2.1).into_inner();
    // A reflection too (det -1), as a flipped slice order gives.
    let d = r * nalgebra::Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, -1.0));
    let mut direction = [[0.0; 3]; 3];
    for (rr, row) in direction.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = d[(rr, c)];
        }
    }
    Grid {
        dims: [7, 5, 4],
        spacing_m: [0.00071, 0.00083, 0.0025],
        origin_m: [0.1234, -0.0871, 0.3012],
        direction,
    }
}

fn assert_same_grid(a: &Grid, b: &Grid) {
    assert_eq!(a.dims, b.dims);
    assert!(close(a.origin_m, b.origin_m, 1e-6), "{a:?} vs {b:?}");
    assert!(close(a.spacing_m, b.spacing_m, 1e-9), "{a:?} vs {b:?}");
    for r in 0..3 {
        assert!(
            close(a.direction[r], b.direction[r], 1e-6),
            "{a:?} vs {b:?}"
        );
    }
    // Every voxel lands within 1e-6 m of where it was.
    for ijk in [[0.0, 0.0, 0.0], [6.0, 4.0, 3.0], [3.0, 0.0, 2.0]] {
        assert!((a.voxel_to_patient(ijk) - b.voxel_to_patient(ijk)).norm() < 1e-6);
    }
}

#[test]
fn round_trips_keep_grid_and_voxels() {
    let dir = tempfile::tempdir().unwrap();
    let grid = oblique_grid();
    let data: Vec<f32> = (0..grid.len())
        .map(|n| (n as f32 * 37.3).sin() * 1000.0 - 3.25)
        .collect();
    let v: ScalarVolume = Volume::new(grid.clone(), data).unwrap();
    let labels: LabelVolume = Volume::new(
        grid.clone(),
        (0..grid.len()).map(|n| (n % 6) as u8).collect(),
    )
    .unwrap();
    for name in ["v.nii", "v.nii.gz"] {
        let path = dir.path().join(name);
        write_nifti(&v, &path).unwrap();
        let import = read_nifti_with(&path, &ImportOptions::default()).unwrap();
        assert_eq!(import.placement, Placement::Sform);
        assert_same_grid(&import.volume.grid, &grid);
        assert_eq!(import.volume.data, v.data);
        assert_eq!(import.text_fields_dropped, 0);
        let lpath = dir.path().join(format!("l-{name}"));
        write_nifti(&labels, &lpath).unwrap();
        let back = read_label_nifti(&lpath).unwrap();
        assert_same_grid(&back.grid, &grid);
        assert_eq!(back.data, labels.data);
    }
    // The qform written agrees with the sform: clear the sform code and read again.
    let path = dir.path().join("q.nii");
    write_nifti(&v, &path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[254..256].copy_from_slice(&0i16.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let import = read_nifti_with(&path, &ImportOptions::default()).unwrap();
    assert_eq!(import.placement, Placement::Qform);
    assert_same_grid(&import.volume.grid, &grid);
    // A real volume: MNI T1 out and in again.
    let (t1, _) = read_nifti(test_data(MNI_T1)).unwrap();
    let path = dir.path().join("t1.nii.gz");
    write_nifti(&t1, &path).unwrap();
    let (back, _) = read_nifti(&path).unwrap();
    assert_eq!(back.grid.dims, t1.grid.dims);
    assert!(close(back.grid.origin_m, t1.grid.origin_m, 1e-6));
    assert_eq!(back.data, t1.data);
}

#[test]
fn header_text_and_extensions_never_reach_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::axis_aligned([4, 3, 2], [0.001; 3], [0.0; 3]);
    let v = Volume::new(grid, vec![7.0f32; 24]).unwrap();
    let path = dir.path().join("named.nii");
    write_nifti(&v, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut named = bytes[..348].to_vec();
    let mut put = |at: usize, text: &[u8]| named[at..at + text.len()].copy_from_slice(text);
    put(4, b"DOE^JANE"); // data_type
    put(14, b"MRN 0012345"); // db_name
    put(148, b"Jane Doe 1970-01-01 St Elsewhere"); // descrip
    put(228, b"jane_doe.txt"); // aux_file
    put(328, b"Doe"); // intent_name
                      // An extension (a comment, ecode 6) with the name again; vox_offset moves past it.
    let ext_body = b"Patient: Jane Doe, born 1970-01-01\0\0\0\0\0\0";
    let esize = 8 + ext_body.len();
    assert_eq!(esize % 16, 0);
    named.extend_from_slice(&[1, 0, 0, 0]);
    named.extend_from_slice(&(esize as i32).to_le_bytes());
    named.extend_from_slice(&6i32.to_le_bytes());
    named.extend_from_slice(ext_body);
    let vox_offset = named.len();
    named[108..112].copy_from_slice(&(vox_offset as f32).to_le_bytes());
    named.extend_from_slice(&bytes[352..]);
    std::fs::write(&path, &named).unwrap();

    let import = read_nifti_with(&path, &ImportOptions::default()).unwrap();
    assert_eq!(import.volume.data, v.data);
    assert_eq!(import.text_fields_dropped, 5);
    assert_eq!(import.extensions_dropped, 1);
    let p = &import.provenance;
    assert_eq!(p.deidentification.method, DEIDENTIFICATION_METHOD);
    assert_eq!(p.deidentification.elements_changed, 6);
    let everything = format!(
        "{import:?} {}",
        serde_json::to_string(&import.provenance).unwrap()
    );
    for needle in ["Doe", "DOE", "Jane", "0012345", "1970", "Elsewhere", "jane"] {
        assert!(
            !everything.contains(needle),
            "{needle} leaked: {everything}"
        );
    }
}

/// Writes `bytes` to a file in `dir` and reads it as NIfTI.
fn read_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<ScalarVolume, NiftiError> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    read_nifti_with(&path, &ImportOptions::default()).map(|i| i.volume)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn corrupt_files_give_named_errors_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(test_data("nibabel/anatomical.nii")).unwrap();
    let d = dir.path();
    let set_i16_be =
        |b: &mut Vec<u8>, at: usize, v: i16| b[at..at + 2].copy_from_slice(&v.to_be_bytes());

    let err = read_bytes(d, "short-header.nii", &good[..200]).unwrap_err();
    assert!(
        matches!(err, NiftiError::Truncated { what: "header", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("short-header.nii"), "{err}");
    let err = read_bytes(d, "short-data.nii", &good[..good.len() - 1]).unwrap_err();
    assert!(
        matches!(
            err,
            NiftiError::Truncated {
                what: "voxel data",
                ..
            }
        ),
        "{err}"
    );
    let err = read_bytes(d, "short-data.nii.gz", &gzip(&good[..good.len() - 100])).unwrap_err();
    assert!(
        matches!(
            err,
            NiftiError::Truncated {
                what: "voxel data",
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        read_bytes(d, "empty.nii", &[]),
        Err(NiftiError::Truncated { .. })
    ));

    let mut b = good.clone();
    b[0..4].copy_from_slice(&349i32.to_be_bytes());
    assert!(matches!(
        read_bytes(d, "sizeof.nii", &b),
        Err(NiftiError::BadSizeofHdr { .. })
    ));

    let mut b = good.clone();
    set_i16_be(&mut b, 70, 32);
    let err = read_bytes(d, "complex.nii", &b).unwrap_err();
    assert!(
        matches!(
            err,
            NiftiError::UnsupportedDatatype {
                code: 32,
                name: "complex64",
                ..
            }
        ),
        "{err}"
    );
    set_i16_be(&mut b, 70, 9999);
    assert!(matches!(
        read_bytes(d, "dt.nii", &b),
        Err(NiftiError::UnsupportedDatatype { code: 9999, .. })
    ));

    let mut b = good.clone();
    for a in 1..4 {
        set_i16_be(&mut b, 40 + 2 * a, 32767);
    }
    let err = read_bytes(d, "huge.nii", &b).unwrap_err();
    assert!(matches!(err, NiftiError::TooLarge { .. }), "{err}");
    let mut b = good.clone();
    set_i16_be(&mut b, 44, -41);
    assert!(matches!(
        read_bytes(d, "neg.nii", &b),
        Err(NiftiError::BadDims { .. })
    ));
    set_i16_be(&mut b, 40, 9);
    assert!(matches!(
        read_bytes(d, "dim0.nii", &b),
        Err(NiftiError::BadDims { .. })
    ));
    // Dimensions that fit the limit but not the file: refused before any allocation.
    let mut b = good.clone();
    for a in 1..4 {
        set_i16_be(&mut b, 40 + 2 * a, 1200);
    }
    assert!(matches!(
        read_bytes(d, "big.nii", &b),
        Err(NiftiError::Truncated { .. })
    ));
    assert!(matches!(
        read_bytes(d, "big.nii.gz", &gzip(&b)),
        Err(NiftiError::Truncated { .. })
    ));

    let mut garbage = vec![0x1f, 0x8b];
    garbage.extend((0..500u32).map(|n| (n * 97 % 251) as u8));
    let err = read_bytes(d, "garbage.nii.gz", &garbage).unwrap_err();
    assert!(matches!(err, NiftiError::Gzip { .. }), "{err}");
    assert!(err.to_string().contains("garbage.nii.gz"));

    let mut b = good.clone();
    b[344..348].copy_from_slice(b"ni1\0");
    assert!(matches!(
        read_bytes(d, "pair.nii", &b),
        Err(NiftiError::BadMagic { .. })
    ));
    b[344..348].copy_from_slice(b"\0\0\0\0");
    assert!(matches!(
        read_bytes(d, "analyze.nii", &b),
        Err(NiftiError::BadMagic { .. })
    ));

    let mut b = good.clone();
    b[108..112].copy_from_slice(&f32::NAN.to_be_bytes());
    assert!(matches!(
        read_bytes(d, "off.nii", &b),
        Err(NiftiError::BadVoxOffset { .. })
    ));
    let mut b = good.clone();
    b[76 + 8..76 + 12].copy_from_slice(&0f32.to_be_bytes()); // pixdim[2] with no sform
    set_i16_be(&mut b, 254, 0);
    assert!(matches!(
        read_bytes(d, "zoom.nii", &b),
        Err(NiftiError::BadSpacing { .. })
    ));
    let mut b = good.clone();
    b[280..284].copy_from_slice(&f32::INFINITY.to_be_bytes());
    assert!(matches!(
        read_bytes(d, "sform.nii", &b),
        Err(NiftiError::BadOrientation { .. })
    ));
    let mut b = good.clone();
    b[112..116].copy_from_slice(&f32::INFINITY.to_be_bytes());
    assert!(matches!(
        read_bytes(d, "slope.nii", &b),
        Err(NiftiError::BadScaling { .. })
    ));

    let err = read_nifti(d.join("not-there.nii")).unwrap_err();
    assert!(matches!(err, NiftiError::Io { .. }));
    assert!(err.to_string().contains("not-there.nii"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_bytes_never_panic_the_reader(
        bytes in proptest::collection::vec(any::<u8>(), 0..1200),
        gz in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = if gz { gzip(&bytes) } else { bytes };
        let _ = read_bytes(dir.path(), "r.nii", &bytes);
        let path = dir.path().join("r.nii");
        let _ = read_label_nifti(&path);
    }

    #[test]
    fn mutated_real_headers_never_panic_the_reader(
        edits in proptest::collection::vec((0usize..352, any::<u8>()), 1..8),
        gz in any::<bool>(),
        cut in proptest::option::of(0usize..70_000),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = std::fs::read(test_data("nibabel/anatomical.nii")).unwrap();
        for (at, v) in edits {
            bytes[at] = v;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut);
        }
        let bytes = if gz { gzip(&bytes) } else { bytes };
        if let Ok(v) = read_bytes(dir.path(), "m.nii", &bytes) {
            prop_assert_eq!(v.data.len(), v.grid.len());
            prop_assert!(v.data.iter().all(|x| x.is_finite()));
        }
        let _ = read_label_nifti(dir.path().join("m.nii"));
    }
}
