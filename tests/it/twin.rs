//! Twins end to end: the phantom built, written, described and exported through the command
//! line; the `.twin` loader against damaged and random files.

use std::path::Path;
use std::process::Command;

use proptest::prelude::*;

use haptwin::twin::build::phantom_twin;
use haptwin::twin::format::Twin;
use haptwin::twin::tets::TetOptions;

fn haptwin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_haptwin"));
    c.env("XDG_DATA_HOME", crate::test_data_home())
        .env_remove("HAPTWIN_DB");
    c
}

fn small() -> Twin {
    phantom_twin(
        3e-3,
        &TetOptions {
            target_tets: 800,
            ..TetOptions::default()
        },
    )
    .unwrap()
}

/// `twin phantom`, `twin info` and `twin export` as a user runs them.
#[test]
fn the_phantom_twin_is_written_described_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let twin = dir.path().join("phantom.twin");
    let out = haptwin()
        .args([
            "twin",
            "phantom",
            "--tets",
            "3000",
            "--voxel-mm",
            "2",
            "--json",
            "-o",
        ])
        .arg(&twin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tets = j["header"]["tets"].as_u64().unwrap();
    assert!((2_500..=3_500).contains(&tets), "{tets}");
    assert_eq!(j["header"]["quality"]["inverted"], 0);

    let info = haptwin()
        .args(["twin", "info", "--json"])
        .arg(&twin)
        .output()
        .unwrap();
    assert!(info.status.success());
    let i: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(i["header"]["provenance"]["case_id"], "phantom");
    assert_eq!(i["header"]["tets"].as_u64(), Some(tets));
    let labels: Vec<u64> = i["header"]["materials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["label"].as_u64().unwrap())
        .collect();
    assert_eq!(labels, [1, 2, 3], "parenchyma, tumour, vessel");
    let text = haptwin()
        .args(["twin", "info"])
        .arg(&twin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("tumour: E 27000 Pa"), "{text}");

    for (format, magic) in [
        ("obj", &b"# haptwin"[..]),
        ("stl", &b"haptwin"[..]),
        ("glb", &b"glTF"[..]),
    ] {
        let file = dir.path().join(format!("phantom.{format}"));
        let out = haptwin()
            .args(["twin", "export", "--format", format, "-o"])
            .arg(&file)
            .arg(&twin)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&file).unwrap();
        assert!(bytes.starts_with(magic), "{format}");
    }

    // A corrupt twin is refused, saying so; the demo refuses it too.
    let mut bytes = std::fs::read(&twin).unwrap();
    let n = bytes.len();
    bytes[n / 3] ^= 1;
    let bad = dir.path().join("bad.twin");
    std::fs::write(&bad, &bytes).unwrap();
    let out = haptwin().args(["twin", "info"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is corrupt: checksum"));
    let out = haptwin()
        .args(["demo", "--no-render", "--seconds", "0.1", "--case"])
        .arg(&bad)
        .arg("--out")
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is corrupt"));
    // The demo runs on the good one.
    let out = haptwin()
        .args([
            "demo",
            "--no-render",
            "--no-realtime",
            "--seconds",
            "0.5",
            "--json",
            "--case",
        ])
        .arg(&twin)
        .arg("--out")
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["tissue"]["tets"].as_u64(), Some(tets));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Random bytes, and a real twin with bytes changed or cut, never panic the loader; a
    /// changed byte is always caught.
    #[test]
    fn the_twin_loader_never_panics(
        random in proptest::collection::vec(any::<u8>(), 0..256),
        cut in 0usize..100_000,
        flip in 0usize..100_000,
        bit in 0u8..8,
    ) {
        let p = Path::new("fuzz.twin");
        let _ = Twin::from_bytes(&random, p);
        let bytes = TWIN_BYTES.with(|b| b.clone());
        let _ = Twin::from_bytes(&bytes[..cut.min(bytes.len())], p);
        let mut changed = bytes;
        let at = flip % changed.len();
        changed[at] ^= 1 << bit;
        prop_assert!(Twin::from_bytes(&changed, p).is_err());
    }
}

thread_local! {
    static TWIN_BYTES: Vec<u8> = small().to_bytes();
}

fn run_json(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let out = haptwin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "haptwin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The phantom written as a DICOM series (and as NIfTI) and built back into a twin with its
/// label map gives the phantom's own twin: the same tets, labels and materials, positions to a
/// micrometre; and nothing of the series' patient fields reaches the twin.
#[test]
fn phantom_to_dicom_and_nifti_and_back_is_the_phantom_twin() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).into_os_string();
    run_json(&[
        "twin".as_ref(),
        "phantom".as_ref(),
        "--voxel-mm".as_ref(),
        "2".as_ref(),
        "--tets".as_ref(),
        "3000".as_ref(),
        "--json".as_ref(),
        "--dicom".as_ref(),
        &d("dicom"),
        "--nifti".as_ref(),
        &d("ct.nii.gz"),
        "--labels-nifti".as_ref(),
        &d("labels.nii.gz"),
        "-o".as_ref(),
        &d("phantom.twin"),
    ]);
    let phantom = Twin::load(dir.path().join("phantom.twin").as_path()).unwrap();
    for (input, out) in [
        ("dicom", "from-dicom.twin"),
        ("ct.nii.gz", "from-nifti.twin"),
    ] {
        let j = run_json(&[
            "twin".as_ref(),
            "build".as_ref(),
            &d(input),
            "--labels".as_ref(),
            &d("labels.nii.gz"),
            "--modality".as_ref(),
            "CT".as_ref(),
            "--tets".as_ref(),
            "3000".as_ref(),
            "--json".as_ref(),
            "-o".as_ref(),
            &d(out),
        ]);
        assert_eq!(j["report"]["labels_from"], "label map");
        let built = Twin::load(dir.path().join(out).as_path()).unwrap();
        assert_eq!(built.mesh.tets, phantom.mesh.tets, "{input}");
        assert_eq!(built.mesh.tet_labels, phantom.mesh.tet_labels, "{input}");
        assert_eq!(built.header.materials, phantom.header.materials, "{input}");
        let worst = built
            .mesh
            .rest_positions_m
            .iter()
            .zip(&phantom.mesh.rest_positions_m)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max);
        assert!(worst < 1e-6, "{input}: positions differ by {worst} m");
        assert_eq!(built.header.provenance.modality, "CT");
        assert!(built.header.provenance.case_id.starts_with("case-"));
        let bytes = std::fs::read(dir.path().join(out)).unwrap();
        for planted in [&b"PHANTOM^HAPTWIN"[..], b"PHANTOM\""] {
            assert!(
                !bytes.windows(planted.len()).any(|w| w == planted),
                "{input}: the series' patient fields reached the twin"
            );
        }
    }
    // Segmented instead of labelled: the abdomen-ct preset finds the organ and its tumour.
    let j = run_json(&[
        "twin".as_ref(),
        "build".as_ref(),
        &d("dicom"),
        "--tets".as_ref(),
        "3000".as_ref(),
        "--json".as_ref(),
        "-o".as_ref(),
        &d("segmented.twin"),
    ]);
    assert_eq!(j["report"]["labels_from"], "abdomen-ct");
    let voxels: std::collections::HashMap<u64, u64> = j["report"]["label_voxels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
        .collect();
    let truth = |l: u8| {
        let labels =
            haptwin::twin::nifti::read_label_nifti(dir.path().join("labels.nii.gz")).unwrap();
        labels.data.iter().filter(|&&v| v == l).count() as f64
    };
    for (label, tolerance) in [(1u8, 0.1), (2, 0.25)] {
        let got = voxels.get(&u64::from(label)).copied().unwrap_or(0) as f64;
        let want = truth(label);
        assert!(
            (got / want - 1.0).abs() < tolerance,
            "label {label}: {got} voxels segmented, {want} in the phantom"
        );
    }
}

/// A real volume from a registry package (nilearn's MNI T1) builds into a twin the demo runs on.
#[test]
fn a_twin_from_a_real_mri_runs_in_the_demo() {
    let t1 =
        crate::twin_nifti::test_data("nilearn/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz");
    let dir = tempfile::tempdir().unwrap();
    let twin = dir.path().join("mni.twin");
    let j = run_json(&[
        "twin".as_ref(),
        "build".as_ref(),
        t1.as_os_str(),
        "--preset".as_ref(),
        "threshold:parenchyma=50..".as_ref(),
        "--tets".as_ref(),
        "3000".as_ref(),
        "--json".as_ref(),
        "-o".as_ref(),
        twin.as_os_str(),
    ]);
    assert_eq!(j["header"]["provenance"]["source_format"], "nifti");
    assert_eq!(j["header"]["quality"]["inverted"], 0);
    let d = run_json(&[
        "demo".as_ref(),
        "--no-render".as_ref(),
        "--no-realtime".as_ref(),
        "--seconds".as_ref(),
        "2".as_ref(),
        "--json".as_ref(),
        "--case".as_ref(),
        twin.as_os_str(),
        "--out".as_ref(),
        dir.path().join("demo").as_os_str(),
    ]);
    assert_eq!(d["ticks"], 2000);
    assert_eq!(d["fault_ticks"], 0);
    assert_eq!(d["tissue"]["tets"], j["header"]["tets"]);
    // The scripted probe presses where the phantom's top is; on a head it grazes the face.
    assert!(d["peak_force_n"].as_f64().unwrap() > 0.0, "{d}");
}

/// `haptwin bench twin --small` runs every stage and reports its figures (not asserted).
#[test]
fn bench_twin_reports_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let j = run_json(&[
        "bench".as_ref(),
        "twin".as_ref(),
        "--small".as_ref(),
        "--json".as_ref(),
        "--out".as_ref(),
        dir.path().as_os_str(),
    ]);
    assert_eq!(j["isosurface"].as_array().unwrap().len(), 4);
    assert!(j["isosurface"][0]["triangles"].as_u64().unwrap() > 1_000);
    assert!(j["series_load_s"].as_f64().unwrap() > 0.0);
    assert_eq!(j["build"]["labels_from"], "abdomen-ct");
    assert!(j["tets"].as_u64().unwrap() > 1_000);
    assert!(
        !dir.path().join("bench-series").exists(),
        "the series is cleaned up"
    );
}
