//! Hertz indentation sweep (development aid): `hertz RADIUS FINE_CELL FINE_EXTENT EXTENT RATIO SUBSTEPS`.
use haptwin::tissue::scenes::Indentation;
use haptwin::tissue::{Material, StepParams};
fn main() {
    let a: Vec<f64> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let g = |i: usize, d: f64| a.get(i).copied().unwrap_or(d);
    let s = Indentation::new(
        Material::LIVER,
        g(0, 0.06),
        g(1, 0.003),
        g(2, 0.02),
        g(3, 0.13),
        g(4, 1.3),
    );
    println!("tets {}", s.tissue.tet_count());
    let p = StepParams {
        substeps: g(5, 2.0) as u32,
        ..StepParams::default()
    };
    let t = std::time::Instant::now();
    for pt in s.measure(&p, &[0.001, 0.002, 0.003], 0.005, 0.3).unwrap() {
        println!("{pt:?}");
    }
    println!("wall {:?}", t.elapsed());
}
