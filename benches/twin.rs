//! Criterion benchmarks of the twin pipeline's surface extraction: the isosurface of the
//! synthetic blob volume ([`haptwin::twin::surface::bench_volume`]) at 128^3 and 256^3, on one
//! and two threads. `bench_isosurface` (median of 5) gives the 512^3 figures of `docs/twin.md`.
//!
//! Run: `cargo bench --bench twin`.

use criterion::{criterion_group, criterion_main, Criterion};

use haptwin::twin::surface::{bench_volume, isosurface_threads, BENCH_LEVEL};

fn isosurfaces(c: &mut Criterion) {
    let mut g = c.benchmark_group("isosurface");
    g.sample_size(20);
    for n in [128usize, 256] {
        let vol = bench_volume(n, 2);
        for threads in [1usize, 2] {
            let tris = isosurface_threads(&vol, BENCH_LEVEL, threads)
                .triangles
                .len();
            let name = format!("{n}^3_{tris}_triangles_{threads}_threads");
            g.bench_function(&name, |b| {
                b.iter(|| isosurface_threads(&vol, BENCH_LEVEL, threads))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, isosurfaces);
criterion_main!(benches);
