//! Twins end to end: the phantom built, written, described and exported through the command
//! line; the `.twin` loader against damaged and random files.

use std::path::Path;
use std::process::Command;

use proptest::prelude::*;

use haptwin::twin::build::phantom_twin;
use haptwin::twin::format::Twin;
use haptwin::twin::tets::TetOptions;

fn haptwin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_haptwin"))
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
