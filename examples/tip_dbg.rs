use haptwin::tissue::scenes::block;
use haptwin::tissue::{step, Material, SphereTool, StepParams};
use nalgebra::Vector3;
fn main() {
    let r: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(0.0006);
    let mut tissue = block(0.005, [8, 6, 8], Material::LIVER);
    let params = StepParams {
        tear_stretch: std::env::args()
            .nth(2)
            .map(|s| s.parse().unwrap())
            .unwrap_or(1.8),
        ..StepParams::default()
    };
    let start = Vector3::new(0.0011, 0.005, 0.0013);
    for i in 0..1500 {
        let c = start - Vector3::y() * (i as f64 * 2e-5);
        let res = step(
            &params,
            &mut tissue,
            &SphereTool {
                center_in_world_m: c,
                radius_m: r,
            },
        )
        .unwrap();
        if i % 50 == 0 {
            // nearest particles
            let mut d: Vec<(f64, usize)> = tissue
                .positions_m
                .iter()
                .enumerate()
                .map(|(q, p)| ((p - c).norm(), q))
                .collect();
            d.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            let near: Vec<String> = d[..3]
                .iter()
                .map(|(_, q)| {
                    let p = tissue.positions_m[*q];
                    format!("({:.4},{:.4},{:.4})", p.x, p.y, p.z)
                })
                .collect();
            println!(
                "{i} c.y {:.4} f {:.3} contacts {} near {:?}",
                c.y, res.force_on_tool_n.y, res.contacts, near
            );
        }
    }
}
