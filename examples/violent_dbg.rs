use haptwin::demo::phantom_block;
use haptwin::tissue::{step, CapsuleTool, SphereTool, StepParams};
use nalgebra::Vector3;
fn main() {
    let mut tissue = phantom_block();
    let params = StepParams::default();
    let tau = std::f64::consts::TAU;
    for i in 0..4_000u64 {
        let t_s = i as f64 * 1e-3;
        let center = Vector3::new(
            0.03 * (tau * 2.5 * t_s).sin(),
            0.012 - 0.02 * (0.5 - 0.5 * (tau * 5.0 * t_s).cos()),
            0.02 * (tau * 1.3 * t_s).cos(),
        );
        step(
            &params,
            &mut tissue,
            &SphereTool {
                center_in_world_m: center,
                radius_m: 0.012,
            },
        )
        .unwrap();
        if i % 250 == 0 {
            println!(
                "stab {i} torn {} inverted {}",
                tissue.torn_tets(),
                tissue.inverted_tets()
            );
        }
    }
    for i in 0..3_000u64 {
        let angle = tau * 3.0 * i as f64 * 1e-3;
        let jaw = CapsuleTool {
            center_in_world_m: Vector3::new(0.0, 0.006 - 0.01 * (i as f64 / 300.0).min(1.0), 0.0),
            half_axis_in_world_m: Vector3::new(angle.cos(), 0.0, angle.sin()) * 0.02,
            radius_m: 0.006,
        };
        step(&params, &mut tissue, &jaw).unwrap();
        if i % 250 == 0 {
            println!(
                "twist {i} torn {} inverted {}",
                tissue.torn_tets(),
                tissue.inverted_tets()
            );
        }
    }
    for k in 0..5 {
        let x = -0.025 + 0.0125 * k as f64;
        let mut jaws = SphereTool {
            center_in_world_m: Vector3::new(x, 0.01, 0.0),
            radius_m: 0.004,
        };
        for i in 0..600u64 {
            let y = if i < 200 {
                0.01 - 0.01 * i as f64 / 200.0
            } else {
                0.02 * ((i as f64 - 200.0) / 50.0).min(1.0)
            };
            jaws.center_in_world_m.y = y;
            if i == 200 {
                let near = tissue
                    .positions_m
                    .iter()
                    .enumerate()
                    .map(|(q, p)| ((p - jaws.center_in_world_m).norm(), q))
                    .fold((1.0, 0), |a, b| if b.0 < a.0 { b } else { a });
                println!(
                    "yank {k} grasped {} nearest {:?} at {:?} alive {}",
                    tissue.grasp(jaws.center_in_world_m, 0.008),
                    near,
                    tissue.positions_m[near.1],
                    tissue.is_particle_alive(near.1)
                );
            }
            step(&params, &mut tissue, &jaws).unwrap();
        }
        println!("after yank {k} torn {}", tissue.torn_tets());
        tissue.release();
    }
}
#[allow(dead_code)]
fn unused() {}
