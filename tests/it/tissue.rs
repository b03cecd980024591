//! The tissue model against physics (cantilever, Hertz, uniaxial stretch), under abuse (violent
//! scripted handling), and its contracts: cutting, resection, tearing, no tunnelling, same
//! bits twice, no allocation.

use nalgebra::Vector3;

use haptwin::demo::phantom_block;
use haptwin::tissue::needle::{Needle, NeedleParams};
use haptwin::tissue::scenes::{block, Cantilever, Indentation, Stretch};
use haptwin::tissue::topology::segment_hits_triangle;
use haptwin::tissue::{step, CapsuleTool, Material, SphereTool, StepParams, TetMesh, Tissue};

use crate::alloc_counter;

/// Tip-loaded liver bars (E 5.4 kPa, nu 0.45) of 5 mm cells, 8 side lengths long, with 2, 4
/// and 10 cells across (320, 2,560 and 40,000 tets), in the default solver configuration. The
/// load gives a sag of 1 % of the length by `P L^3 / (3 E I)` (small-deflection regime). Linear
/// tets are too stiff in bending on coarse meshes; the error must shrink as the mesh refines
/// and be within 5 % at the finest. Each bar settles with its first bending mode about
/// critically damped (the static sag does not depend on damping).
#[test]
fn cantilever_converges_to_the_beam_formula() {
    let mut errors = Vec::new();
    for across in [2, 4, 10] {
        let bar = Cantilever::new(0.005, 8 * across, across, Material::LIVER, 0.01);
        let params = StepParams {
            damping_per_s: 2.0 * bar.first_mode_rad_per_s(),
            ..StepParams::default()
        };
        let r = bar.settle(&params, 40.0).unwrap();
        assert!(r.settled, "{across} across did not settle: {r:?}");
        assert_eq!(r.inverted_tets, 0);
        errors.push((across, r.error_pct));
    }
    for w in errors.windows(2) {
        assert!(
            w[1].1.abs() < w[0].1.abs(),
            "the error must shrink with refinement: {errors:?}"
        );
    }
    let finest = errors.last().unwrap().1;
    assert!(
        finest.abs() < 5.0,
        "finest mesh off by {finest} %: {errors:?}"
    );
}

/// A 6 cm sphere pressed 1, 2 and 3 mm into a liver block (graded quarter mesh, 3 mm cells at
/// the contact, 20 cm each way): the force follows Hertz within 10 %.
#[test]
fn sphere_indentation_follows_hertz() {
    let scene = Indentation::new(Material::LIVER, 0.06, 0.003, 0.02, 0.2, 1.3);
    let points = scene
        .measure(&StepParams::default(), &[0.001, 0.002, 0.003], 0.005, 0.3)
        .unwrap();
    for p in &points {
        assert!(
            p.error_pct.abs() < 10.0,
            "{:.1} mm: {:.4} N vs Hertz {:.4} N ({:+.1} %)",
            p.depth_m * 1e3,
            p.force_n,
            p.hertz_n,
            p.error_pct
        );
    }
}

/// A bar pulled to about 1 % strain contracts sideways by the Poisson ratio (within 10 %),
/// for liver-like nu = 0.45 and nearly incompressible nu = 0.49.
#[test]
fn uniaxial_stretch_gives_the_poisson_ratio() {
    for nu in [0.45, 0.49] {
        let m = Material {
            poisson_ratio: nu,
            ..Material::LIVER
        };
        let stress_pa = 0.01 * m.youngs_modulus_pa;
        let r = Stretch::new(0.005, 8, 2, m, stress_pa)
            .settle(&StepParams::default(), 4.0)
            .unwrap();
        assert!(
            (r.axial_strain - 0.01).abs() < 0.002,
            "axial strain {}",
            r.axial_strain
        );
        assert!(
            (r.poisson_ratio - nu).abs() < 0.1 * nu,
            "nu {nu}: measured {}",
            r.poisson_ratio
        );
        assert_eq!(r.inverted_tets, 0);
    }
}

/// Stretched by about 10 %, a nu = 0.49 bar keeps its volume within 2 %; a compressible
/// (nu = 0.3) bar does not, so the check can fail.
#[test]
fn nearly_incompressible_tissue_keeps_its_volume() {
    let change = |nu: f64| {
        let m = Material {
            poisson_ratio: nu,
            ..Material::LIVER
        };
        Stretch::new(0.005, 8, 2, m, 0.1 * m.youngs_modulus_pa)
            .settle(&StepParams::default(), 4.0)
            .unwrap()
    };
    let tight = change(0.49);
    assert!(tight.axial_strain > 0.08, "{tight:?}");
    assert!(tight.volume_change.abs() < 0.02, "{tight:?}");
    let loose = change(0.3);
    assert!(loose.volume_change > 0.02, "{loose:?}");
}

/// 10 s of violent handling of the demo's phantom, in three acts: fast stabs 2 cm deep at
/// 5 Hz while sweeping sideways at up to about 0.5 m/s; a jaw (capsule) twisting at 3 turns a
/// second pressed 1 cm in; grasp-and-yank, 2 cm up in 50 ms with a quarter twist, five times.
/// No step may fail, no live tet may stay inverted, and with the tool withdrawn the kinetic
/// energy only decays.
#[test]
fn violent_handling_stays_stable_and_energy_decays_after() {
    let mut tissue = phantom_block();
    let params = StepParams::default();
    let tau = std::f64::consts::TAU;
    let mut deepest_m = 0.0f64;
    for i in 0..4_000u64 {
        let t_s = i as f64 * 1e-3;
        let center = Vector3::new(
            0.03 * (tau * 2.5 * t_s).sin(),
            0.012 - 0.02 * (0.5 - 0.5 * (tau * 5.0 * t_s).cos()),
            0.02 * (tau * 1.3 * t_s).cos(),
        );
        deepest_m = deepest_m.max(0.012 - center.y);
        let tool = SphereTool {
            center_in_world_m: center,
            radius_m: 0.012,
        };
        let r = step(&params, &mut tissue, &tool);
        assert!(r.is_ok(), "stab step {i} failed: {r:?}");
    }
    assert!(deepest_m > 0.019, "the stabs must go deep: {deepest_m}");
    for i in 0..3_000u64 {
        let angle = tau * 3.0 * i as f64 * 1e-3;
        let jaw = CapsuleTool {
            center_in_world_m: Vector3::new(0.0, 0.006 - 0.01 * (i as f64 / 300.0).min(1.0), 0.0),
            half_axis_in_world_m: Vector3::new(angle.cos(), 0.0, angle.sin()) * 0.02,
            radius_m: 0.006,
        };
        let r = step(&params, &mut tissue, &jaw);
        assert!(r.is_ok(), "twist step {i} failed: {r:?}");
    }
    let mut yanks = 0;
    for k in 0..5 {
        let x = -0.025 + 0.0125 * k as f64;
        // Capsule jaws 1 cm long: come down onto the surface, grasp, yank 2 cm up in 50 ms
        // while twisting them a quarter turn, hold, let go.
        let jaws = |y: f64, turn: f64| CapsuleTool {
            center_in_world_m: Vector3::new(x, y, 0.0),
            half_axis_in_world_m: Vector3::new(turn.cos(), 0.0, turn.sin()) * 0.005,
            radius_m: 0.004,
        };
        for i in 0..600u64 {
            let (y, turn) = if i < 200 {
                (0.01 - 0.01 * i as f64 / 200.0, 0.0)
            } else {
                let f = ((i as f64 - 200.0) / 50.0).min(1.0);
                (0.02 * f, f * tau / 4.0)
            };
            if i == 200 && tissue.grasp_tool(&jaws(y, turn), 0.013) > 0 {
                yanks += 1;
            }
            let r = step(&params, &mut tissue, &jaws(y, turn));
            assert!(r.is_ok(), "yank {k} step {i} failed: {r:?}");
        }
        tissue.release();
    }
    assert!(
        yanks >= 3,
        "the jaws must take hold: {yanks} grasps, {} torn, {} live of {}",
        tissue.torn_tets(),
        tissue.live_tet_count(),
        tissue.tet_count()
    );
    let away = SphereTool {
        center_in_world_m: Vector3::new(0.0, 0.5, 0.0),
        radius_m: 0.012,
    };
    let mut last = f64::INFINITY;
    for i in 0..3_000 {
        step(&params, &mut tissue, &away).unwrap();
        if i % 100 == 99 {
            let e = tissue.kinetic_energy_j();
            assert!(e.is_finite());
            // 1e-12 J on this 0.4 kg phantom is a jitter of about 2 um/s: the floor of the
            // solver's single-precision arithmetic, far below anything visible or felt.
            assert!(
                e <= last * 1.01 + 1e-12,
                "energy grew without input: {last} -> {e} J"
            );
            last = e;
        }
    }
    assert!(last < 1e-9, "still moving after 3 s: {last} J");
    assert_eq!(tissue.inverted_tets(), 0);
    assert!(tissue
        .positions_m
        .iter()
        .all(|p| p.iter().all(|v| v.is_finite())));
}

/// A 1 mm probe and a 0.3 mm blade back, driven straight down at 0.5 m/s into 5 mm cells to
/// 1.2 cm below the surface, never get inside the tissue (a ray from the tool crosses the live
/// surface an even number of times), and the tissue pushes back harder the deeper they go.
#[test]
fn thin_fast_tools_do_not_tunnel() {
    for radius_m in [0.001, 0.0003] {
        let mut tissue = block(0.005, [8, 8, 8], Material::LIVER);
        let params = StepParams {
            tear_stretch: 0.0,
            ..StepParams::default()
        };
        let start = Vector3::new(0.0011, 0.003, 0.0013);
        let mut forces = Vec::new();
        for i in 0..30 {
            // 0.5 mm per 1 ms tick.
            let c = start - Vector3::y() * (i as f64 * 5e-4);
            let r = step(
                &params,
                &mut tissue,
                &SphereTool {
                    center_in_world_m: c,
                    radius_m,
                },
            )
            .unwrap();
            forces.push(r.force_on_tool_n.y);
            let crossings = tissue
                .surface_triangles()
                .iter()
                .filter(|tri| {
                    let [a, b, t] = tri.map(|q| tissue.positions_m[q as usize]);
                    segment_hits_triangle(c, c + Vector3::new(0.0, 1.0, 0.0), a, b, t)
                })
                .count();
            assert_eq!(
                crossings % 2,
                0,
                "radius {radius_m}: tool inside the tissue at step {i}"
            );
        }
        assert!(
            forces[29] > forces[19] && forces[19] > forces[9] && forces[9] > 0.0,
            "radius {radius_m}: the tissue must resist more and more: {forces:?}"
        );
    }
}

fn two_material_block() -> Tissue {
    // 8 x 4 x 8 cells of 5 mm, the middle third along x a tumour five times stiffer.
    let mesh = TetMesh::block(
        Vector3::new(-0.02, -0.02, -0.02),
        Vector3::new(0.02, 0.0, 0.02),
        [8, 4, 8],
    );
    let tumour = Material {
        youngs_modulus_pa: 27_000.0,
        ..Material::LIVER
    };
    let ids: Vec<u16> = mesh
        .tets
        .iter()
        .map(|t| {
            let cx: f64 = t
                .iter()
                .map(|&q| mesh.rest_positions_m[q as usize].x)
                .sum::<f64>()
                / 4.0;
            u16::from(cx.abs() < 0.0067)
        })
        .collect();
    Tissue::with_materials(&mesh, &[Material::LIVER, tumour], &ids, |p| p.y < -0.0199)
}

/// A scalpel drawn across the block 8 mm deep, fast (1 cm in 10 ticks): the tets along its
/// path go, the surface opens (more triangles, still closed), the removed rest volume is
/// counted per material, and the block keeps stepping.
#[test]
fn scalpel_cuts_a_continuous_incision_and_counts_volume_per_material() {
    let mut tissue = two_material_block();
    let params = StepParams::default();
    let before_surface = tissue.surface_triangles().len();
    let before_rev = tissue.surface_revision();
    let z = 0.0013;
    let edge_at = |x: f64| {
        [
            Vector3::new(x, 0.005, z),
            Vector3::new(x + 0.002, -0.008, z),
        ]
    };
    let mut x = -0.018;
    let mut prev = edge_at(x);
    let mut removed = 0;
    while x < 0.016 {
        x += 0.001;
        let now = edge_at(x);
        removed += tissue.cut(prev, now);
        let blade = CapsuleTool::blade(now[0], now[1], 0.0003);
        step(&params, &mut tissue, &blade).unwrap();
        prev = now;
    }
    assert!(removed > 20, "removed {removed}");
    assert_eq!(tissue.live_tet_count(), tissue.tet_count() - removed);
    assert!(tissue.surface_revision() > before_rev);
    assert!(tissue.surface_triangles().len() > before_surface);
    // Every cell column the blade crossed lost at least one tet: the cut has no gap.
    for cell in 0..8 {
        let x0 = -0.02 + 0.005 * cell as f64;
        if x0 + 0.005 < -0.0175 || x0 > 0.0175 {
            continue;
        }
        let gone = (0..tissue.tet_count()).any(|t| {
            !tissue.is_tet_alive(t) && {
                let cx: f64 = tissue.tets()[t]
                    .iter()
                    .map(|&q| tissue.positions_m[q as usize].x)
                    .sum::<f64>()
                    / 4.0;
                cx > x0 - 0.001 && cx < x0 + 0.006
            }
        });
        assert!(gone, "no tet removed in the cell column at x = {x0}");
    }
    // Volume accounted per material: both were cut, and the sum is what went.
    let v = tissue.removed_volume_m3();
    assert!(v[0] > 0.0 && v[1] > 0.0, "{v:?}");
    let cell_tet_m3 = 0.005f64.powi(3) / 5.0;
    assert!((v[0] + v[1]) > removed as f64 * cell_tet_m3 * 0.5);
    // The surface is still closed: it encloses the live volume.
    let v6: f64 = tissue
        .surface_triangles()
        .iter()
        .map(|t| {
            let [a, b, c] = t.map(|q| tissue.positions_m[q as usize]);
            a.dot(&b.cross(&c))
        })
        .sum();
    assert!((v6 / 6.0 - tissue.volume_m3()).abs() < 1e-9 * tissue.volume_m3().abs().max(1e-6));
    for _ in 0..500 {
        step(
            &params,
            &mut tissue,
            &SphereTool {
                center_in_world_m: Vector3::new(0.0, 0.5, 0.0),
                radius_m: 0.01,
            },
        )
        .unwrap();
    }
    assert_eq!(tissue.inverted_tets(), 0);
}

/// Cautery over the tumour removes tumour first: the removed volume is mostly tumour.
#[test]
fn resection_removes_what_the_tool_covers() {
    let mut tissue = two_material_block();
    let tool = SphereTool {
        center_in_world_m: Vector3::new(0.0, 0.0, 0.0),
        radius_m: 0.006,
    };
    let removed = tissue.resect(&tool);
    assert!(removed > 0);
    let v = tissue.removed_volume_m3();
    assert!(
        v[1] > 2.0 * v[0],
        "tumour {} m^3, healthy {} m^3",
        v[1],
        v[0]
    );
    // Nothing left within the tool.
    for t in 0..tissue.tet_count() {
        if tissue.is_tet_alive(t) {
            let c: Vector3<f64> = tissue.tets()[t]
                .iter()
                .map(|&q| tissue.positions_m[q as usize])
                .sum::<Vector3<f64>>()
                / 4.0;
            assert!((c - tool.center_in_world_m).norm() > 0.006);
        }
    }
}

/// Grasp and pull far (8 cm up over 0.4 s): the tissue tears (tets removed for over-stretch)
/// instead of stretching without end, and what is left stays sound.
#[test]
fn pulling_too_far_tears() {
    let mut tissue = block(0.005, [8, 4, 8], Material::LIVER);
    let params = StepParams::default();
    let mut jaws = SphereTool {
        center_in_world_m: Vector3::new(0.0, 0.0, 0.0),
        radius_m: 0.003,
    };
    for _ in 0..50 {
        step(&params, &mut tissue, &jaws).unwrap();
    }
    assert!(tissue.grasp(jaws.center_in_world_m, 0.006) > 0);
    let mut torn = 0;
    for i in 0..400 {
        jaws.center_in_world_m.y = 0.08 * i as f64 / 400.0;
        torn += step(&params, &mut tissue, &jaws).unwrap().torn_tets;
    }
    assert!(torn > 0, "an 8 cm pull on 2 cm of liver must tear");
    assert_eq!(torn as u64, tissue.torn_tets());
    assert!(tissue.removed_volume_m3()[0] > 0.0);
    // Gentle pressing tears nothing.
    let mut calm = block(0.005, [8, 4, 8], Material::LIVER);
    for i in 0..500 {
        let tool = SphereTool {
            center_in_world_m: Vector3::new(0.0, 0.01 - 0.012 * (i as f64 / 500.0), 0.0),
            radius_m: 0.01,
        };
        assert_eq!(step(&params, &mut calm, &tool).unwrap().torn_tets, 0);
    }
}

/// One scripted session that cuts, grasps, resects and needles, run twice: same bits.
fn scripted_session() -> Vec<u64> {
    let mut tissue = two_material_block();
    let params = StepParams::default();
    let mut needle = Needle::new(NeedleParams::biopsy(0.005), 0.06, &tissue);
    let mut bits = Vec::new();
    let mut prev = [
        Vector3::new(-0.015, 0.004, 0.001),
        Vector3::new(-0.014, -0.006, 0.001),
    ];
    for i in 0..1500u64 {
        let t = i as f64 * 1e-3;
        let force = match i {
            0..=299 => {
                let now = [
                    Vector3::new(-0.015 + 0.03 * t, 0.004, 0.001),
                    Vector3::new(-0.014 + 0.03 * t, -0.006, 0.001),
                ];
                tissue.cut(prev, now);
                prev = now;
                step(
                    &params,
                    &mut tissue,
                    &CapsuleTool::blade(now[0], now[1], 0.0003),
                )
                .unwrap()
                .force_on_tool_n
            }
            300..=699 => {
                let c = Vector3::new(0.01, 0.004 - 0.01 * (t - 0.3), -0.01);
                if i == 450 {
                    tissue.grasp(c, 0.006);
                }
                step(
                    &params,
                    &mut tissue,
                    &SphereTool {
                        center_in_world_m: c,
                        radius_m: 0.004,
                    },
                )
                .unwrap()
                .force_on_tool_n
            }
            700..=799 => {
                tissue.release();
                let tool = SphereTool {
                    center_in_world_m: Vector3::new(0.0, -0.004, 0.012),
                    radius_m: 0.004,
                };
                tissue.resect(&tool);
                step(&params, &mut tissue, &tool).unwrap().force_on_tool_n
            }
            _ => {
                let tip = Vector3::new(-0.011, 0.004 - 0.03 * (t - 0.8), 0.012);
                needle
                    .step(&params, &mut tissue, tip, -Vector3::y())
                    .unwrap()
                    .force_on_tool_n
            }
        };
        bits.extend(force.iter().map(|v| v.to_bits()));
    }
    bits.extend(
        tissue
            .positions_m
            .iter()
            .flat_map(|p| p.iter().map(|v| v.to_bits())),
    );
    bits.extend(tissue.damage().iter().map(|v| v.to_bits()));
    bits.extend(tissue.removed_volume_m3().iter().map(|v| v.to_bits()));
    bits.extend(
        tissue
            .surface_triangles()
            .iter()
            .flatten()
            .map(|&q| q as u64),
    );
    bits
}

#[test]
fn cutting_grasping_resecting_and_needling_give_the_same_bits_twice() {
    assert_eq!(scripted_session(), scripted_session());
}

/// Stepping, cutting, grasping, resecting and the needle allocate nothing after set-up.
#[test]
fn tissue_operations_allocate_nothing() {
    let _g = alloc_counter::EXCLUSIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut tissue = two_material_block();
    let params = StepParams::default();
    let mut needle = Needle::new(NeedleParams::biopsy(0.005), 0.06, &tissue);
    let sphere = SphereTool {
        center_in_world_m: Vector3::new(0.01, 0.002, -0.01),
        radius_m: 0.004,
    };
    // Warm up every path once (first use of lazily initialised CPU feature detection).
    step(&params, &mut tissue, &sphere).unwrap();
    let (allocations, ()) = alloc_counter::allocations_during(|| {
        for i in 0..200 {
            let x = -0.015 + 1e-4 * i as f64;
            tissue.cut(
                [
                    Vector3::new(x, 0.004, 0.001),
                    Vector3::new(x, -0.006, 0.001),
                ],
                [
                    Vector3::new(x + 1e-4, 0.004, 0.001),
                    Vector3::new(x + 1e-4, -0.006, 0.001),
                ],
            );
            step(&params, &mut tissue, &sphere).unwrap();
        }
        tissue.grasp(sphere.center_in_world_m, 0.006);
        for _ in 0..100 {
            step(&params, &mut tissue, &sphere).unwrap();
        }
        tissue.release();
        tissue.resect(&sphere);
        for i in 0..600 {
            let tip = Vector3::new(-0.011, 0.004 - 5e-5 * i as f64, 0.012);
            needle
                .step(&params, &mut tissue, tip, -Vector3::y())
                .unwrap();
        }
    });
    assert_eq!(
        allocations, 0,
        "tissue operations allocated {allocations} times"
    );
}
