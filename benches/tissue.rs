//! Criterion benchmarks of the tissue step at tissue scale (5 mm cells, liver with a
//! tumour-like inclusion, 1 cm sphere pressed 5 mm into the top), blocks of about 1k, 5k and 20k
//! tets, in the default solver configuration. `haptwin bench tissue` adds 50k tets, p99 figures
//! and the accuracy of the same configuration.
//!
//! Run: `cargo bench --bench tissue`.

use criterion::{criterion_group, criterion_main, Criterion};
use nalgebra::Vector3;

use haptwin::bench::{two_material_block, SIZES};
use haptwin::tissue::{step, SphereTool, StepParams};

fn tissue_blocks(c: &mut Criterion) {
    let params = StepParams::default();
    let tool = SphereTool {
        center_in_world_m: Vector3::new(0.0, 0.005, 0.0),
        radius_m: 0.01,
    };
    for cells in &SIZES[..3] {
        let mut tissue = two_material_block(*cells);
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
