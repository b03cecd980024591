//! Uniaxial stretch sweep (development aid): `stretch NU STRESS_PA SUBSTEPS ACROSS`.
use haptwin::tissue::scenes::Stretch;
use haptwin::tissue::{Material, StepParams};
fn main() {
    let a: Vec<f64> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let g = |i: usize, d: f64| a.get(i).copied().unwrap_or(d);
    let m = Material {
        poisson_ratio: g(0, 0.49),
        ..Material::LIVER
    };
    let p = StepParams {
        substeps: g(2, 2.0) as u32,
        ..StepParams::default()
    };
    let n = g(3, 2.0) as usize;
    let r = Stretch::new(0.005, 4 * n, n, m, g(1, 540.0))
        .settle(&p, 4.0)
        .unwrap();
    println!("{r:?}");
}
