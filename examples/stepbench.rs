use haptwin::tissue::scenes::block;
use haptwin::tissue::{step, Material, SphereTool, StepParams};
use nalgebra::Vector3;
fn main() {
    let cells: Vec<usize> = std::env::args()
        .nth(1)
        .map(|s| s.split(',').map(|v| v.parse().unwrap()).collect())
        .unwrap_or(vec![20, 10, 20]);
    let mut t = block(0.005, [cells[0], cells[1], cells[2]], Material::LIVER);
    let p = StepParams::default();
    let tool = SphereTool {
        center_in_world_m: Vector3::new(0.0, 0.005, 0.0),
        radius_m: 0.01,
    };
    for _ in 0..100 {
        step(&p, &mut t, &tool).unwrap();
    }
    let n = 2000;
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        step(&p, &mut t, &tool).unwrap();
    }
    println!(
        "{} tets colours {}: {:.1} us/step",
        t.tet_count(),
        t.colour_count(),
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
