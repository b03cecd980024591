//! The tissue model against physics: a tip-loaded cantilever converges to the beam formula as
//! the mesh refines.

use haptwin::tissue::scenes::Cantilever;
use haptwin::tissue::{Material, StepParams};

/// Tip load sized for a deflection of 1 % of the length (small-deflection regime) on an 8 cm
/// liver bar with a 1 cm square section, meshed with 1, 2 and 4 cells across. Linear tets are
/// too stiff in bending on coarse meshes; the error must shrink with refinement and the finest
/// mesh must be within 5 % of P L^3 / (3 E I). The solver is the demo's configuration.
#[test]
fn cantilever_tip_deflection_converges_to_the_beam_formula() {
    let mut errors = Vec::new();
    for (along, across) in [(8, 1), (16, 2), (32, 4)] {
        let cell_m = 0.08 / along as f64;
        let bar = Cantilever::new(cell_m, along, across, Material::LIVER, 0.01);
        let r = bar.settle(&StepParams::default(), 30.0).unwrap();
        assert!(r.settled, "{along}x{across} did not settle: {r:?}");
        assert_eq!(r.inverted_tets, 0);
        errors.push((across, r.error_pct));
    }
    for w in errors.windows(2) {
        assert!(
            w[1].1.abs() < w[0].1.abs(),
            "the error must shrink with refinement: {errors:?}"
        );
    }
    let (_, finest) = errors[errors.len() - 1];
    assert!(
        finest.abs() < 5.0,
        "finest mesh off by {finest:.2} %: {errors:?}"
    );
}
