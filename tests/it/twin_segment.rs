//! Segmentation of a synthetic abdominal CT with the `abdomen-ct` preset, against the ground
//! truth it was drawn from (Dice per label), and its tools on known shapes.

use haptwin::twin::labels::Label;
use haptwin::twin::segment::{
    components, fill_holes, keep_largest, segment, segment_with, AbdomenCt, Mask, Preset,
    SegmentError,
};
use haptwin::twin::volume::{Grid, LabelVolume, ScalarVolume, Volume};

/// Noise of the synthetic CT, HU (one standard deviation).
const NOISE_HU: f64 = 8.0;
const MUSCLE_HU: f64 = 45.0;

/// A synthetic abdominal CT (HU) and its ground truth, over a 240 x 192 x 192 mm field (LPS:
/// x to the patient's left, y to the back, z up; millimetres below).
///
/// - Air outside an elliptic body (semi-axes 116 x 92 mm): 12 mm of subcutaneous fat
///   (-100 HU), a 10 mm muscle wall (45 HU), visceral fat (-90 HU) inside.
/// - A liver ellipsoid on the patient's right (60 HU; semi-axes 38, 40, 50 mm) with a 30 HU
///   lesion sphere (radius 11 mm) and a 250 HU vessel tube (radius 6 mm) through it along z,
///   running on past the liver into the fat; a thin muscle bridge (radius 2.5 mm) joins the
///   liver to the muscle wall.
/// - A spleen-like ellipsoid on the left (50 HU): not liver.
/// - A spine-like cylinder at the back (radius 14 mm): a 3 mm cortical shell at 1000 HU around a
///   cancellous core at 250 HU, the same HU as the vessel.
/// - Gaussian noise of 8 HU, from a fixed seed.
fn synthetic_ct(dims: [usize; 3]) -> (ScalarVolume, LabelVolume) {
    let field_mm = [240.0, 192.0, 192.0];
    let spacing_mm: [f64; 3] = std::array::from_fn(|a| field_mm[a] / dims[a] as f64);
    let grid = Grid::axis_aligned(dims, spacing_mm.map(|s| s / 1000.0), [0.0; 3]);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut hu = Vec::with_capacity(grid.len());
    let mut truth = Vec::with_capacity(grid.len());
    let sq = |v: f64| v * v;
    for k in 0..dims[2] {
        let z = (k as f64 + 0.5) * spacing_mm[2];
        for j in 0..dims[1] {
            let y = (j as f64 + 0.5) * spacing_mm[1];
            for i in 0..dims[0] {
                let x = (i as f64 + 0.5) * spacing_mm[0];
                let ellipse = |a: f64, b: f64| sq((x - 120.0) / a) + sq((y - 96.0) / b) <= 1.0;
                let liver =
                    sq((x - 78.0) / 38.0) + sq((y - 90.0) / 40.0) + sq((z - 96.0) / 50.0) <= 1.0;
                let lesion = sq(x - 88.0) + sq(y - 100.0) + sq(z - 100.0) <= sq(11.0);
                let vessel = sq(x - 65.0) + sq(y - 80.0) <= sq(6.0) && (20.0..172.0).contains(&z);
                let bridge = sq(y - 90.0) + sq(z - 96.0) <= sq(2.5) && (20.0..45.0).contains(&x);
                let spleen =
                    sq((x - 165.0) / 20.0) + sq((y - 85.0) / 25.0) + sq((z - 96.0) / 30.0) <= 1.0;
                let spine_r2 = sq(x - 120.0) + sq(y - 160.0);
                let (value, label) = if spine_r2 <= sq(11.0) {
                    (250.0, Label::Bone)
                } else if spine_r2 <= sq(14.0) {
                    (1000.0, Label::Bone)
                } else if vessel {
                    (250.0, Label::Vessel)
                } else if lesion {
                    (30.0, Label::Tumour)
                } else if liver {
                    (60.0, Label::Parenchyma)
                } else if spleen {
                    (50.0, Label::Background)
                } else if bridge {
                    (MUSCLE_HU, Label::Background)
                } else if ellipse(94.0, 70.0) {
                    (-90.0, Label::Fat)
                } else if ellipse(104.0, 80.0) {
                    (MUSCLE_HU, Label::Background)
                } else if ellipse(116.0, 92.0) {
                    (-100.0, Label::Fat)
                } else {
                    (-1000.0, Label::Background)
                };
                // Box-Muller.
                let (u1, u2) = (next().max(1e-12), next());
                let noise = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                hu.push((value + NOISE_HU * noise) as f32);
                truth.push(label as u8);
            }
        }
    }
    (
        Volume::new(grid.clone(), hu).unwrap(),
        Volume::new(grid, truth).unwrap(),
    )
}

fn dice(a: &LabelVolume, b: &LabelVolume, label: Label) -> f64 {
    let l = label as u8;
    let (mut both, mut na, mut nb) = (0u64, 0u64, 0u64);
    for (&x, &y) in a.data.iter().zip(&b.data) {
        na += (x == l) as u64;
        nb += (y == l) as u64;
        both += (x == l && y == l) as u64;
    }
    2.0 * both as f64 / (na + nb).max(1) as f64
}

const TISSUES: [Label; 5] = [
    Label::Parenchyma,
    Label::Tumour,
    Label::Vessel,
    Label::Fat,
    Label::Bone,
];

#[test]
fn abdomen_ct_recovers_every_tissue_of_a_synthetic_ct() {
    // 1.5 x 1.5 x 2 mm voxels.
    let (ct, truth) = synthetic_ct([160, 128, 96]);
    let labels = segment(&ct, &Preset::from_name("abdomen-ct").unwrap()).unwrap();
    assert_eq!(labels.grid, ct.grid);
    let scores: Vec<(Label, f64)> = TISSUES
        .iter()
        .map(|&l| (l, dice(&labels, &truth, l)))
        .collect();
    eprintln!("abdomen-ct Dice on the synthetic CT: {scores:?}");
    for (l, d) in &scores {
        assert!(*d >= 0.9, "{}: Dice {d:.3} ({scores:?})", l.name());
    }

    let at = |x_mm: f64, y_mm: f64, z_mm: f64| {
        let s = ct.grid.spacing_m.map(|s| s * 1000.0);
        let ijk = [x_mm / s[0], y_mm / s[1], z_mm / s[2]].map(|v| v as usize);
        labels.get(ijk[0], ijk[1], ijk[2]).unwrap()
    };
    // Vessel and bone kept apart: the spine's 250 HU core is bone, the liver's 250 HU vessel is
    // vessel, and no voxel of one is called the other.
    assert_eq!(at(120.0, 160.0, 96.0), Label::Bone as u8);
    assert_eq!(at(65.0, 80.0, 96.0), Label::Vessel as u8);
    assert_eq!(
        at(65.0, 80.0, 25.0),
        Label::Vessel as u8,
        "the vessel past the liver"
    );
    let confused = labels
        .data
        .iter()
        .zip(&truth.data)
        .filter(|(&l, &t)| {
            (l == Label::Vessel as u8 && t == Label::Bone as u8)
                || (l == Label::Bone as u8 && t == Label::Vessel as u8)
        })
        .count();
    assert_eq!(confused, 0);
    // Components: the muscle bridge, the muscle wall and the spleen are not liver.
    assert_eq!(at(33.0, 90.0, 96.0), Label::Background as u8, "bridge");
    assert_eq!(at(21.0, 96.0, 96.0), Label::Background as u8, "muscle wall");
    assert_eq!(at(165.0, 85.0, 96.0), Label::Background as u8, "spleen");
    let muscle_as_liver = labels
        .data
        .iter()
        .zip(&ct.data)
        .zip(&truth.data)
        .filter(|((&l, _), &t)| l == Label::Parenchyma as u8 && t == Label::Background as u8)
        .count();
    let liver = truth
        .data
        .iter()
        .filter(|&&t| t == Label::Parenchyma as u8)
        .count();
    assert!(
        (muscle_as_liver as f64) < 0.01 * liver as f64,
        "{muscle_as_liver} background voxels called liver"
    );
    // Holes filled: liver voxels that the noise took below the liver's window are still liver.
    let (mut dark, mut dark_kept) = (0, 0);
    for n in 0..ct.data.len() {
        if truth.data[n] == Label::Parenchyma as u8 && ct.data[n] < 40.0 {
            dark += 1;
            dark_kept += (labels.data[n] == Label::Parenchyma as u8) as u32;
        }
    }
    assert!(dark > 100, "the noise makes some: {dark}");
    assert!(
        dark_kept as f64 >= 0.95 * dark as f64,
        "{dark_kept} of {dark}"
    );
    // One lesion, one vessel tree.
    let lesion = Mask {
        grid: labels.grid.clone(),
        data: labels
            .data
            .iter()
            .map(|&l| l == Label::Tumour as u8)
            .collect(),
    };
    assert_eq!(components(&lesion).count(), 1);
}

#[test]
fn segmentation_is_deterministic_on_any_thread_count() {
    let (ct, truth) = synthetic_ct([96, 80, 64]);
    let preset = Preset::AbdomenCt(AbdomenCt::default());
    let one = segment_with(&ct, &preset, 1).unwrap();
    let two = segment_with(&ct, &preset, 2).unwrap();
    let three = segment_with(&ct, &preset, 3).unwrap();
    let again = segment_with(&ct, &preset, 2).unwrap();
    assert_eq!(one.data, two.data);
    assert_eq!(one.data, three.data);
    assert_eq!(two.data, again.data);
    // A hyperdense lesion (liver 60, lesion 110) is found as well.
    let mut hot = ct.clone();
    for (v, &t) in hot.data.iter_mut().zip(&truth.data) {
        if t == Label::Tumour as u8 {
            *v += 80.0;
        }
    }
    let labels = segment_with(&hot, &preset, 2).unwrap();
    let d = dice(&labels, &truth, Label::Tumour);
    let cold = dice(&one, &truth, Label::Tumour);
    eprintln!("lesion Dice at 2.5 mm voxels: hypodense {cold:.3}, hyperdense {d:.3}");
    assert!(
        cold >= 0.9,
        "hypodense lesion Dice {cold:.3} at 2.5 mm voxels"
    );
    assert!(d >= 0.9, "hyperdense lesion Dice {d:.3} at 2.5 mm voxels");
}

#[test]
fn abdomen_ct_refuses_what_is_not_an_abdominal_ct() {
    // An MR-like volume (no air below -500).
    let grid = Grid::axis_aligned([20, 20, 20], [0.002; 3], [0.0; 3]);
    let mr = Volume::new(grid.clone(), vec![300.0f32; grid.len()]).unwrap();
    let err = segment(&mr, &Preset::from_name("abdomen-ct").unwrap()).unwrap_err();
    assert!(matches!(err, SegmentError::NotCt { .. }), "{err}");
    // A CT of air and fat only: no liver.
    let mut data = vec![-1000.0f32; grid.len()];
    for (n, v) in data.iter_mut().enumerate() {
        if n % 20 > 3 && n % 20 < 16 {
            *v = -100.0;
        }
    }
    let ct = Volume::new(grid, data).unwrap();
    assert!(matches!(
        segment(&ct, &Preset::from_name("abdomen-ct").unwrap()),
        Err(SegmentError::NoLiver { .. })
    ));
}

#[test]
fn threshold_presets_label_by_windows_first_match_first() {
    let (ct, truth) = synthetic_ct([80, 64, 48]);
    let p = Preset::from_name("threshold:bone=400..,fat=-190..-30").unwrap();
    let labels = segment(&ct, &p).unwrap();
    // The cortical shell only (the 250 HU core is not in the window), and the fat.
    assert!(dice(&labels, &truth, Label::Fat) > 0.95);
    assert!(labels
        .data
        .iter()
        .zip(&truth.data)
        .all(|(&l, &t)| l != Label::Bone as u8 || t == Label::Bone as u8));
    assert!(labels.data.iter().all(|&l| l == 0 || l == 4 || l == 5));
}

#[test]
fn tools_fill_holes_and_keep_the_largest_component() {
    let grid = Grid::axis_aligned([12, 12, 12], [0.001; 3], [0.0; 3]);
    let mut m = Mask::filled(grid, false).unwrap();
    for k in 1..9 {
        for j in 1..9 {
            for i in 1..9 {
                let wall = [i, j, k].iter().any(|&c| c == 1 || c == 8);
                m.set(i, j, k, wall);
            }
        }
    }
    m.set(10, 10, 10, true);
    let filled = fill_holes(&m);
    assert_eq!(filled.data.iter().filter(|&&v| v).count(), 8 * 8 * 8 + 1);
    let largest = keep_largest(&filled);
    assert_eq!(largest.data.iter().filter(|&&v| v).count(), 8 * 8 * 8);
    assert_eq!(components(&filled).sizes(), &[512, 1]);
}

/// Timing of `abdomen-ct` on a 512 x 512 x 300 synthetic CT on 1 and 2 threads (for the docs;
/// run with `cargo test --release -- --ignored segment_512`). Prints, asserts nothing on time.
#[test]
#[ignore]
fn segment_512x512x300_timing() {
    let t = std::time::Instant::now();
    let (ct, truth) = synthetic_ct([512, 512, 300]);
    eprintln!("synthesis: {:.2} s", t.elapsed().as_secs_f64());
    let preset = Preset::from_name("abdomen-ct").unwrap();
    let mut results = Vec::new();
    for threads in [1, 2] {
        let t = std::time::Instant::now();
        let labels = segment_with(&ct, &preset, threads).unwrap();
        eprintln!(
            "abdomen-ct 512x512x300, {threads} thread(s): {:.2} s",
            t.elapsed().as_secs_f64()
        );
        results.push(labels);
    }
    assert_eq!(results[0].data, results[1].data);
    for l in TISSUES {
        eprintln!("  Dice {}: {:.3}", l.name(), dice(&results[0], &truth, l));
    }
}
