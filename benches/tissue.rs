//! Criterion benchmarks of the tissue step at tissue scale (5 mm cells, liver-like material),
//! blocks of about 1k and 5k tets with a sphere pressed into the top. The larger sizes (20k, 50k)
//! are in `haptwin bench tissue`, which also reports the configuration's accuracy.
//!
//! Run: `cargo bench --bench tissue`.

use criterion::{criterion_group, criterion_main, Criterion};
use nalgebra::Vector3;

use haptwin::bench::{CELL_M, SIZES};
use haptwin::tissue::scenes::block;
use haptwin::tissue::{step, Material, SphereTool, StepParams};

fn tissue_blocks(c: &mut Criterion) {
    let params = StepParams::default();
    let tool = SphereTool {
        center_in_world_m: Vector3::new(0.0, 0.005, 0.0),
        radius_m: 0.01,
    };
    for cells in &SIZES[..2] {
        let mut tissue = block(CELL_M, *cells, Material::LIVER);
        for _ in 0..200 {
            step(&params, &mut tissue, &tool).unwrap();
        }
        let name = format!("tissue_step_{}_tets_5mm_cells", tissue.tet_count());
        c.bench_function(&name, |b| {
            b.iter(|| step(&params, &mut tissue, &tool).unwrap())
        });
    }
}

criterion_group!(benches, tissue_blocks);
criterion_main!(benches);
