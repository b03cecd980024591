//! Surfaces of the twin pipeline (`haptwin::twin::surface`): isosurfaces of analytic fields
//! (sphere, torus) checked against their closed forms, placement in the patient frame,
//! determinism across thread counts, label surfaces, edge cases, smoothing and decimation.

use haptwin::twin::surface::{
    bench_isosurface, decimate, isosurface_threads, label_surfaces_threads, smooth_taubin, TriMesh,
};
use haptwin::twin::volume::{Grid, LabelVolume, ScalarVolume};
use std::f64::consts::PI;

/// A scalar volume whose voxel `(i, j, k)` holds `f(patient position)`.
fn field(grid: Grid, f: impl Fn([f64; 3]) -> f64) -> ScalarVolume {
    let [nx, ny, nz] = grid.dims;
    let mut data = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let p = grid.voxel_to_patient([i as f64, j as f64, k as f64]);
                data.push(f([p.x, p.y, p.z]) as f32);
            }
        }
    }
    ScalarVolume::new(grid, data).unwrap()
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

fn pos(p: &[f32; 3]) -> [f64; 3] {
    [p[0] as f64, p[1] as f64, p[2] as f64]
}

/// Sphere of radius `r` (voxels of 1 mm) centred in an `n^3` volume: signed distance, inside > 0.
fn sphere(n: usize, r: f64) -> (ScalarVolume, [f64; 3]) {
    let grid = Grid::axis_aligned([n; 3], [0.001; 3], [0.0; 3]);
    let c = [(n - 1) as f64 * 0.0005 + 0.0001; 3];
    (field(grid, |p| r * 0.001 - dist(p, c)), c)
}

fn rel(a: f64, b: f64) -> f64 {
    (a / b - 1.0).abs()
}

#[test]
fn sphere_is_closed_outward_and_on_the_level_set() {
    let r = 10.3;
    let (vol, c) = sphere(32, r);
    let m = isosurface_threads(&vol, 0.0, 2);
    assert!(m.is_closed_manifold());
    assert_eq!(m.euler_characteristic(), 2);
    let rm = r * 0.001;
    let v = m.volume_m3();
    assert!(v > 0.0, "outward normals give a positive volume");
    assert!(rel(v, 4.0 / 3.0 * PI * rm.powi(3)) < 0.02, "volume {v}");
    assert!(rel(m.area_m2(), 4.0 * PI * rm * rm) < 0.03);
    // Vertices on the level set (linear interpolation of a distance: well under 0.05 voxel).
    let worst = m
        .positions_m
        .iter()
        .map(|p| (dist(pos(p), c) - rm).abs())
        .fold(0.0, f64::max);
    assert!(worst < 0.05e-3, "worst {worst}");
    // Normals point out: away from the centre for (almost) every triangle.
    let outward = m
        .triangles
        .iter()
        .filter(|t| {
            let [a, b, cc] = t.map(|i| pos(&m.positions_m[i as usize]));
            let n = [
                (b[1] - a[1]) * (cc[2] - a[2]) - (b[2] - a[2]) * (cc[1] - a[1]),
                (b[2] - a[2]) * (cc[0] - a[0]) - (b[0] - a[0]) * (cc[2] - a[2]),
                (b[0] - a[0]) * (cc[1] - a[1]) - (b[1] - a[1]) * (cc[0] - a[0]),
            ];
            n[0] * (a[0] - c[0]) + n[1] * (a[1] - c[1]) + n[2] * (a[2] - c[2]) > 0.0
        })
        .count();
    assert_eq!(outward, m.triangles.len());
    let (lo, hi) = m.bounding_box().unwrap();
    for a in 0..3 {
        assert!((lo[a] as f64 - (c[a] - rm)).abs() < 0.1e-3);
        assert!((hi[a] as f64 - (c[a] + rm)).abs() < 0.1e-3);
    }
}

#[test]
fn torus_has_genus_one() {
    let (big, small) = (0.010, 0.004);
    let grid = Grid::axis_aligned([40, 40, 20], [0.001; 3], [-0.0195, -0.0195, -0.0095]);
    let vol = field(grid, |p| {
        let q = (p[0] * p[0] + p[1] * p[1]).sqrt() - big;
        small - (q * q + p[2] * p[2]).sqrt()
    });
    let m = isosurface_threads(&vol, 0.0, 2);
    assert!(m.is_closed_manifold());
    assert_eq!(m.euler_characteristic(), 0);
    assert!(rel(m.volume_m3(), 2.0 * PI * PI * big * small * small) < 0.03);
    assert!(rel(m.area_m2(), 4.0 * PI * PI * big * small) < 0.03);
}

#[test]
fn rotated_mirrored_anisotropic_grids_place_the_surface_in_the_patient_frame() {
    let c = [0.012, -0.03, 0.2];
    let r = 0.006;
    for direction in [
        // i along +y, j along -x, k along z (a rotation).
        [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
        // A reflection (left-handed axes).
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]],
        // A general rotation.
        [[0.36, 0.48, -0.8], [-0.8, 0.6, 0.0], [0.48, 0.64, 0.6]],
    ] {
        let spacing = [0.0005, 0.0008, 0.0012];
        let mut grid = Grid::axis_aligned([34, 22, 16], spacing, [0.0; 3]);
        grid.direction = direction;
        grid.validate().unwrap();
        // Put the volume's centre on the sphere's centre.
        let mid = grid.voxel_to_patient([16.5, 10.5, 7.5]);
        grid.origin_m = [c[0] - mid.x, c[1] - mid.y, c[2] - mid.z];
        let vol = field(grid, |p| r - dist(p, c));
        let m = isosurface_threads(&vol, 0.0, 2);
        assert!(m.is_closed_manifold());
        assert_eq!(m.euler_characteristic(), 2);
        assert!(
            m.volume_m3() > 0.0,
            "outward in the patient frame for {direction:?}"
        );
        assert!(rel(m.volume_m3(), 4.0 / 3.0 * PI * r.powi(3)) < 0.03);
        let worst = m
            .positions_m
            .iter()
            .map(|p| (dist(pos(p), c) - r).abs())
            .fold(0.0, f64::max);
        assert!(worst < 0.05e-3, "worst {worst} for {direction:?}");
    }
}

fn bits(m: &TriMesh) -> (Vec<[u32; 3]>, Vec<[u32; 3]>) {
    (
        m.positions_m.iter().map(|p| p.map(f32::to_bits)).collect(),
        m.triangles.clone(),
    )
}

#[test]
fn output_is_bitwise_the_same_for_any_thread_count() {
    let grid = Grid::axis_aligned([37, 29, 31], [0.001, 0.0011, 0.0009], [0.01, 0.02, 0.03]);
    let vol = field(grid, |p| {
        let x = p.map(|v| v * 400.0);
        x[0].sin() * x[1].cos() + x[2].sin() * 0.7 + (x[0] * 2.1).cos() * 0.3
    });
    let one = isosurface_threads(&vol, 0.1, 1);
    assert!(one.triangles.len() > 1000);
    assert!(one.is_closed_manifold());
    for threads in [2, 3, 7, 64] {
        let other = isosurface_threads(&vol, 0.1, threads);
        assert!(bits(&one) == bits(&other), "{threads} threads differ");
    }
}

#[test]
fn label_surfaces_are_closed_and_meet_where_labels_meet() {
    let n = 24;
    let grid = Grid::axis_aligned([n; 3], [0.001; 3], [0.0; 3]);
    let mut labels = LabelVolume::filled(grid, 0).unwrap();
    for k in 0..n {
        for j in 0..n {
            for i in 0..n {
                let d2 = (i as f64 - 11.5).powi(2)
                    + (j as f64 - 11.5).powi(2)
                    + (k as f64 - 11.5).powi(2);
                let l = if d2 < 16.0 {
                    2 // a tumour inside
                } else if d2 < 81.0 {
                    1 // parenchyma around it
                } else if i >= 20 && j < 6 {
                    3 // a vessel along the border, touching the volume's faces
                } else {
                    0
                };
                labels.set(i, j, k, l);
            }
        }
    }
    let out = label_surfaces_threads(&labels, &[1, 2, 3, 2, 5], 2);
    assert_eq!(
        out.iter().map(|o| o.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 5]
    );
    for (l, m) in &out[..3] {
        assert!(m.is_closed_manifold(), "label {l}");
        assert!(m.volume_m3() > 0.0);
    }
    assert!(out[3].1.is_empty(), "an absent label gives an empty mesh");
    // Parenchyma is a shell: outer and inner surfaces, Euler characteristic 2 + 2.
    assert_eq!(out[0].1.euler_characteristic(), 4);
    // The tumour's surface is the parenchyma's inner surface: every tumour vertex is one.
    let mut outer: Vec<[u32; 3]> = out[0]
        .1
        .positions_m
        .iter()
        .map(|p| p.map(f32::to_bits))
        .collect();
    outer.sort_unstable();
    let shared = out[1]
        .1
        .positions_m
        .iter()
        .filter(|p| outer.binary_search(&p.map(f32::to_bits)).is_ok())
        .count();
    assert_eq!(shared, out[1].1.positions_m.len());
    // Volumes: the tumour's surface encloses about its voxel count.
    let tumour_voxels = labels.data.iter().filter(|v| **v == 2).count() as f64 * 1e-9;
    assert!(rel(out[1].1.volume_m3(), tumour_voxels) < 0.15);
}

#[test]
fn empty_full_thin_and_nan_volumes_do_not_panic() {
    let grid = Grid::axis_aligned([5, 6, 7], [0.001; 3], [0.0; 3]);
    let empty = ScalarVolume::filled(grid.clone(), -1.0).unwrap();
    assert!(isosurface_threads(&empty, 0.0, 2).is_empty());
    let nan = ScalarVolume::filled(grid.clone(), f32::NAN).unwrap();
    assert!(isosurface_threads(&nan, 0.0, 2).is_empty());
    assert!(isosurface_threads(&empty, f32::NAN, 2).is_empty());
    // A full volume is a region touching every face: the padded border closes it as a box
    // half a voxel beyond the border voxels' centres.
    let full = ScalarVolume::filled(grid.clone(), 1.0).unwrap();
    let m = isosurface_threads(&full, 0.0, 2);
    assert!(m.is_closed_manifold());
    // (Marching cubes bevels the box's edges and corners.)
    let box_m3 = 5.0 * 6.0 * 7.0 * 1e-9;
    assert!(m.volume_m3() < box_m3 && m.volume_m3() > 0.7 * box_m3);
    // One voxel.
    let one =
        ScalarVolume::filled(Grid::axis_aligned([1, 1, 1], [0.001; 3], [0.0; 3]), 1.0).unwrap();
    let m = isosurface_threads(&one, 0.0, 3);
    assert!(m.is_closed_manifold());
    assert_eq!(m.euler_characteristic(), 2);
    // One voxel thick: a disc closes into a flat slab.
    let thin = field(Grid::axis_aligned([30, 30, 1], [0.001; 3], [0.0; 3]), |p| {
        0.01 - dist(p, [0.0145, 0.0145, 0.0])
    });
    let m = isosurface_threads(&thin, 0.0, 2);
    assert!(m.is_closed_manifold());
    assert_eq!(m.euler_characteristic(), 2);
    // (Marching cubes bevels the rim: a few % under the disc.)
    assert!(rel(m.volume_m3(), PI * 1e-4 * 1e-3) < 0.1);
    // NaN voxels are outside: a sphere with NaN holes stays closed.
    let (mut vol, _) = sphere(20, 7.0);
    for (i, v) in vol.data.iter_mut().enumerate() {
        if i % 7 == 3 {
            *v = f32::NAN;
        } else if i % 97 == 5 {
            *v = f32::INFINITY;
        } else if i % 89 == 1 {
            *v = f32::NEG_INFINITY;
        }
    }
    let m = isosurface_threads(&vol, 0.0, 2);
    assert!(m.is_closed_manifold());
    assert!(m.positions_m.iter().flatten().all(|x| x.is_finite()));
    // A label volume of one label everywhere, and an empty one.
    let labels = LabelVolume::filled(grid, 4).unwrap();
    let out = label_surfaces_threads(&labels, &[4, 0], 2);
    assert!(out[0].1.is_closed_manifold());
    assert!(out[1].1.is_empty());
    // Smoothing and decimating empty meshes.
    let mut e = TriMesh::default();
    smooth_taubin(&mut e, 5, 0.5, -0.53);
    assert_eq!(decimate(&mut e, 10), 0);
}

/// Binary sphere mask of radius `r` voxels (1 mm) as a label volume.
fn voxel_sphere(n: usize, r: f64) -> (LabelVolume, [f64; 3]) {
    let grid = Grid::axis_aligned([n; 3], [0.001; 3], [0.0; 3]);
    let c = (n - 1) as f64 / 2.0 + 0.21;
    let mut l = LabelVolume::filled(grid, 0).unwrap();
    for k in 0..n {
        for j in 0..n {
            for i in 0..n {
                let d2 = (i as f64 - c).powi(2) + (j as f64 - c).powi(2) + (k as f64 - c).powi(2);
                if d2 <= r * r {
                    l.set(i, j, k, 1);
                }
            }
        }
    }
    (l, [c * 0.001; 3])
}

fn rms_radius_error(m: &TriMesh, c: [f64; 3], r: f64) -> f64 {
    let s: f64 = m
        .positions_m
        .iter()
        .map(|p| (dist(pos(p), c) - r).powi(2))
        .sum();
    (s / m.positions_m.len() as f64).sqrt()
}

#[test]
fn taubin_smoothing_keeps_volume_and_approaches_the_sphere() {
    let r = 12.0;
    let (labels, c) = voxel_sphere(32, r);
    let mut m = label_surfaces_threads(&labels, &[1], 2).remove(0).1;
    let (v0, e0) = (m.volume_m3(), rms_radius_error(&m, c, r * 0.001));
    smooth_taubin(&mut m, 20, 0.5, -0.53);
    let (v1, e1) = (m.volume_m3(), rms_radius_error(&m, c, r * 0.001));
    assert!(rel(v1, v0) < 0.01, "volume {v0} -> {v1}");
    assert!(e1 < 0.7 * e0, "rms radius error {e0} -> {e1}");
    assert!(m.is_closed_manifold());
}

#[test]
fn decimating_a_200k_triangle_sphere_to_10k_keeps_it_closed_and_round() {
    let r = 73.0;
    let (vol, c) = sphere(152, r);
    let mut m = isosurface_threads(&vol, 0.0, 2);
    assert!(m.triangles.len() > 190_000, "{}", m.triangles.len());
    let v0 = m.volume_m3();
    let left = decimate(&mut m, 10_000);
    assert!(left <= 10_000 && left > 9_000, "{left}");
    assert!(m.is_closed_manifold());
    assert_eq!(m.euler_characteristic(), 2);
    assert!(rel(m.volume_m3(), v0) < 0.02);
    let rm = r * 0.001;
    let worst = m
        .positions_m
        .iter()
        .map(|p| (dist(pos(p), c) - rm).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-3, "worst vertex deviation {worst} m");
    // Triangle centroids too: the faces stay within a voxel of the sphere.
    let worst_face = m
        .triangles
        .iter()
        .map(|t| {
            let p = t.map(|i| pos(&m.positions_m[i as usize]));
            let g = [0, 1, 2].map(|a| (p[0][a] + p[1][a] + p[2][a]) / 3.0);
            (dist(g, c) - rm).abs()
        })
        .fold(0.0, f64::max);
    assert!(worst_face < 1e-3, "worst face deviation {worst_face} m");
}

/// The benchmark of `docs/twin.md` (release only: `cargo test --release -- --ignored
/// isosurface_benchmark --nocapture`).
#[test]
#[ignore]
fn isosurface_benchmark() {
    for n in [256, 512] {
        for threads in [1, 2] {
            let b = bench_isosurface(n, threads);
            println!(
                "{n}^3 {threads} thread(s): median {:.4} s (best {:.4} s), {} triangles, {} vertices",
                b.seconds, b.best_seconds, b.triangles, b.vertices
            );
        }
    }
}
