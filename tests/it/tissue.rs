//! The tissue model against physics: a tip-loaded cantilever's error against the beam formula
//! shrinks as the mesh refines; violent tool motion leaves no NaN, no inverted tet, and no energy that grows
//! without input.

use nalgebra::Vector3;

use haptwin::demo::phantom_block;
use haptwin::tissue::scenes::Cantilever;
use haptwin::tissue::{step, Material, SphereTool, StepParams};

/// Tip load sized for a deflection of 1 % of the length (small-deflection regime) on an 8 cm
/// liver bar with a 1 cm square section, meshed with 1, 2 and 4 cells across, in the demo's
/// solver configuration. Linear tets are too stiff in bending on coarse meshes: the error against
/// P L^3 / (3 E I) must shrink as the mesh refines, and nothing may invert.
///
/// Not asserted: closeness at the finest mesh. It lands at about -1 %, but only because two
/// errors cancel. One iteration per substep is slightly too soft, and the tets are too stiff.
/// Converged solves of the same bar (8 iterations, or 8 substeps) give -10 % to -13 %; see
/// docs/tissue.md. Issue 3 owns the 5 % target.
#[test]
fn cantilever_error_shrinks_as_the_mesh_refines() {
    let mut errors = Vec::new();
    for (along, across) in [(8, 1), (16, 2), (32, 4)] {
        let cell_m = 0.08 / along as f64;
        let bar = Cantilever::new(cell_m, along, across, Material::LIVER, 0.01);
        let r = bar.settle(&StepParams::default(), 30.0).unwrap();
        assert!(r.settled, "{along}x{across} did not settle: {r:?}");
        assert_eq!(r.inverted_tets, 0);
        assert!(r.measured_m > 0.0, "the bar must sag under its load: {r:?}");
        errors.push((across, r.error_pct));
    }
    for w in errors.windows(2) {
        assert!(
            w[1].1.abs() < w[0].1.abs(),
            "the error must shrink with refinement: {errors:?}"
        );
    }
}

/// 10 s of fast stabs (2 cm deep at 5 Hz) while sweeping sideways at up to about 0.5 m/s, on
/// the demo's phantom: no step fails, no tet inverts; then, with the tool withdrawn, the kinetic
/// energy only decays.
#[test]
fn violent_tool_motion_stays_stable_and_energy_decays_after() {
    let mut tissue = phantom_block();
    let params = StepParams::default();
    let tau = std::f64::consts::TAU;
    let mut deepest_m = 0.0f64;
    for i in 0..10_000u64 {
        let t_s = i as f64 * 1e-3;
        let center = Vector3::new(
            0.03 * (tau * 2.5 * t_s).sin(),
            0.012 - 0.02 * (0.5 + 0.5 * (tau * 5.0 * t_s).sin()),
            0.02 * (tau * 1.3 * t_s).cos(),
        );
        deepest_m = deepest_m.max(0.012 - center.y);
        let tool = SphereTool {
            center_in_world_m: center,
            radius_m: 0.012,
        };
        let r = step(&params, &mut tissue, &tool);
        assert!(r.is_ok(), "step {i} failed: {r:?}");
        if i % 50 == 0 {
            assert_eq!(tissue.inverted_tets(), 0, "inverted tets at step {i}");
        }
    }
    assert!(deepest_m > 0.019, "the stabs must go deep: {deepest_m}");
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
            assert!(
                e <= last * 1.01 + 1e-15,
                "energy grew without input: {last} -> {e} J"
            );
            last = e;
        }
    }
    assert!(last < 1e-9, "still moving after 3 s: {last} J");
    assert_eq!(tissue.inverted_tets(), 0);
}
