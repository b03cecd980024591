//! Accuracy sweep of the tissue solver (development aid): cantilever bars of 5 mm cells with
//! n cells across, and a stretched bar. `accuracy SUBSTEPS NU DAMPING N,N,..`; a negative
//! damping settles each bar at twice its first bending frequency.
use haptwin::tissue::scenes::{Cantilever, Stretch};
use haptwin::tissue::{Material, StepParams};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let substeps: u32 = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(2);
    let nu: f64 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(0.45);
    let damping: f64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(20.0);
    let across: Vec<usize> = args
        .get(4)
        .map(|s| s.split(',').map(|v| v.parse().unwrap()).collect())
        .unwrap_or(vec![2, 4, 8]);
    let e: f64 = std::env::var("E_PA")
        .ok()
        .map(|v| v.parse().unwrap())
        .unwrap_or(5400.0);
    let m = Material {
        poisson_ratio: nu,
        youngs_modulus_pa: e,
        ..Material::LIVER
    };
    let p = StepParams {
        substeps,
        damping_per_s: damping,
        ..StepParams::default()
    };
    for n in across {
        let t = std::time::Instant::now();
        let bar = Cantilever::new(0.005, 8 * n, n, m, 0.01);
        let p = if damping < 0.0 {
            StepParams {
                damping_per_s: 2.0 * bar.first_mode_rad_per_s(),
                ..p
            }
        } else {
            p
        };
        let r = bar.settle(&p, 60.0).unwrap();
        println!(
            "sub {substeps} nu {nu} damp {:.2} {}x{n}: err {:.2}% settled {} {:.1}s wall {:?}",
            p.damping_per_s,
            8 * n,
            r.error_pct,
            r.settled,
            r.settled_after_s,
            t.elapsed()
        );
    }
    let r = Stretch::new(0.005, 8, 2, m, 54.0).settle(&p, 4.0).unwrap();
    println!("stretch {r:?}");
}
