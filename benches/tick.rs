//! Benchmarks of the haptic tick: the tissue step alone and the whole core tick (device read,
//! tissue step, force guard, snapshot publish), on the demo's phantom block.
//!
//! Run: `cargo bench --bench tick`. The figures are quoted in the README ("Figures") and in the
//! issue notes.

use criterion::{criterion_group, criterion_main, Criterion};
use nalgebra::Vector3;

use haptwin::bus::{self, Command};
use haptwin::demo::phantom_block;
use haptwin::haptics::haptic_loop::{CoreConfig, HapticCore, SceneSnapshot};
use haptwin::haptics::sim::{Script, ScriptedProbe};
use haptwin::tissue::{step, SphereTool, StepParams};

fn tissue_step(c: &mut Criterion) {
    let params = StepParams::default();
    let mut tissue = phantom_block();
    // Pressed in 8 mm, the busiest part of the script.
    let tool = SphereTool {
        center_in_world_m: Vector3::new(0.0, 0.004, 0.0),
        radius_m: 0.012,
    };
    for _ in 0..500 {
        step(&params, &mut tissue, &tool).unwrap();
    }
    c.bench_function("tissue_step_phantom_block_in_contact", |b| {
        b.iter(|| step(&params, &mut tissue, &tool).unwrap())
    });
}

fn core_tick(c: &mut Criterion) {
    let cfg = CoreConfig::default();
    let tissue = phantom_block();
    let (_cmd_tx, cmd_rx) = bus::queue::<Command>(8);
    let (publisher, _subscriber) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let device = ScriptedProbe::new(Script::palpation(), cfg.step.dt_s);
    let mut core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);
    c.bench_function("haptic_core_tick_palpation_script", |b| {
        b.iter(|| core.tick())
    });
}

criterion_group!(benches, tissue_step, core_tick);
criterion_main!(benches);
