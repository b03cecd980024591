use haptwin::tissue::scenes::block;
use haptwin::tissue::topology::point_in_tet;
use haptwin::tissue::{step, Material, SphereTool, StepParams};
use nalgebra::Vector3;
fn main() {
    let radius_m: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(0.001);
    let speed: f64 = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(5e-4);
    let mut tissue = block(0.005, [8, 8, 8], Material::LIVER);
    let params = StepParams {
        tear_stretch: 0.0,
        ..StepParams::default()
    };
    let start = Vector3::new(0.0011, 0.003, 0.0013);
    for i in 0..(0.015 / speed) as usize {
        let c = start - Vector3::y() * (i as f64 * speed);
        let r = step(
            &params,
            &mut tissue,
            &SphereTool {
                center_in_world_m: c,
                radius_m,
            },
        )
        .unwrap();
        let inside: Vec<usize> = (0..tissue.tet_count())
            .filter(|&t| {
                tissue.is_tet_alive(t)
                    && point_in_tet(c, tissue.tets()[t].map(|q| tissue.positions_m[q as usize]))
            })
            .collect();
        // ray parity upward
        let mut crossings = 0;
        for tri in tissue.surface_triangles() {
            let [a, b, cc] = tri.map(|q| tissue.positions_m[q as usize]);
            if haptwin::tissue::topology::segment_hits_triangle(c, c + Vector3::y(), a, b, cc) {
                crossings += 1;
            }
        }
        println!(
            "{i} c.y {:.4} f {:.3} contacts {} inside {:?} crossings {}",
            c.y, r.force_on_tool_n.y, r.contacts, inside, crossings
        );
    }
}
