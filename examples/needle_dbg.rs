use haptwin::tissue::needle::{Needle, NeedleParams};
use haptwin::tissue::scenes::block;
use haptwin::tissue::{Material, StepParams};
use nalgebra::Vector3;
fn main() {
    let mut tissue = block(0.005, [8, 8, 8], Material::LIVER);
    let params = StepParams::default();
    let mut needle = Needle::new(NeedleParams::biopsy(0.005), 0.08, &tissue);
    let dir = Vector3::new(0.0, -1.0, 0.0);
    let start = Vector3::new(0.0011, 0.005, 0.0013);
    for i in 0..2500 {
        let tip = start + dir * (i as f64 * 2e-5);
        let r = needle.step(&params, &mut tissue, tip, dir).unwrap();
        if i % 100 == 0 {
            println!(
                "{i} tip {:.4} res {:.3} ins {} depth {:.4} cap {}",
                tip.y, r.axial_resistance_n, r.inserted, r.depth_m, r.captured
            );
        }
    }
}
