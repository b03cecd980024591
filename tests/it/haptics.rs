//! Safety on the haptic path: every fault drops the force to zero within one tick, on the real
//! core (device, tissue, guard), with the simulated probe's fault injection.

use haptwin::bus::{self, tick_flags, Command, TickRecord};
use haptwin::demo::phantom_block;
use haptwin::haptics::haptic_loop::{CoreConfig, HapticCore, SceneSnapshot};
use haptwin::haptics::sim::{FaultPlan, Script, ScriptedProbe};

/// Runs the palpation for `ticks` with `faults`, sending `commands` at the given ticks; returns
/// every record and the forces the device received.
fn run(
    ticks: u64,
    faults: FaultPlan,
    commands: &[(u64, Command)],
) -> (Vec<TickRecord>, Vec<[f64; 3]>) {
    let cfg = CoreConfig::default();
    let tissue = phantom_block();
    let (mut cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, _sub) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let device = ScriptedProbe::new(Script::palpation(), cfg.step.dt_s).with_faults(faults);
    let monitor = device.monitor();
    let mut core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);
    let mut records = Vec::new();
    let mut written = Vec::new();
    for t in 0..ticks {
        for (at, c) in commands {
            if *at == t {
                cmd_tx.push(*c).unwrap();
            }
        }
        records.push(core.tick());
        written.push(monitor.last_force_n());
    }
    (records, written)
}

fn mag(f: [f64; 3]) -> f64 {
    (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt()
}

/// Tick 2600 is in the middle of the slide, pressed 10 mm in: a firm contact force.
const FAULT_AT: u64 = 2_600;

#[test]
fn contact_force_is_felt_before_any_fault() {
    let (recs, written) = run(FAULT_AT + 1, FaultPlan::default(), &[]);
    let f = written[FAULT_AT as usize];
    assert!(
        mag(f) > 0.2,
        "expected a firm contact at tick {FAULT_AT}, got {f:?}"
    );
    assert!(f[1] > 0.0, "the tissue pushes the probe up: {f:?}");
    // The hover phase before contact is force-free.
    assert_eq!(mag(recs[100].force_out_in_world_n), 0.0);
    // What the log says went out is what the device got (the probe's frame is the world's).
    assert_eq!(recs[FAULT_AT as usize].force_out_in_world_n, f);
}

#[test]
fn garbage_report_zeroes_force_on_that_tick() {
    let (recs, written) = run(
        FAULT_AT + 20,
        FaultPlan {
            garbage: Some(FAULT_AT..FAULT_AT + 3),
            ..FaultPlan::default()
        },
        &[],
    );
    assert!(mag(written[FAULT_AT as usize - 1]) > 0.2);
    for t in FAULT_AT..FAULT_AT + 3 {
        assert_eq!(written[t as usize], [0.0; 3], "tick {t}");
        assert_ne!(recs[t as usize].flags & tick_flags::NON_FINITE, 0);
        // The log keeps what the device really sent.
        assert!(recs[t as usize].device_pos_in_world_m[1].is_nan());
    }
    // Recovers (rising under the rate limit) once reports are good again.
    assert!(mag(written[FAULT_AT as usize + 19]) > 0.0);
}

#[test]
fn stall_zeroes_force_one_tick_after_the_stall_window() {
    let stall_ticks = CoreConfig::default().stall_ticks as u64;
    let (recs, written) = run(
        FAULT_AT + 200,
        FaultPlan {
            stall: Some(FAULT_AT..FAULT_AT + 100),
            ..FaultPlan::default()
        },
        &[],
    );
    // Within the stall window the last force is held (input may just be late)...
    assert!(mag(written[(FAULT_AT + stall_ticks - 1) as usize]) > 0.0);
    // ...and the first tick past it writes zero, and every tick until input returns.
    for t in FAULT_AT + stall_ticks..FAULT_AT + 100 {
        assert_eq!(written[t as usize], [0.0; 3], "tick {t}");
        assert_ne!(recs[t as usize].flags & tick_flags::STALLED, 0, "tick {t}");
    }
    for t in FAULT_AT..FAULT_AT + 100 {
        assert_ne!(recs[t as usize].flags & tick_flags::NO_INPUT, 0, "tick {t}");
    }
    assert_eq!(
        recs[(FAULT_AT + 100) as usize].flags & tick_flags::NO_INPUT,
        0
    );
    assert!(mag(written[(FAULT_AT + 199) as usize]) > 0.0);
}

#[test]
fn disconnect_zeroes_force_on_that_tick_and_after() {
    let (recs, written) = run(
        FAULT_AT + 50,
        FaultPlan {
            disconnect_at: Some(FAULT_AT),
            ..FaultPlan::default()
        },
        &[],
    );
    assert!(mag(written[FAULT_AT as usize - 1]) > 0.2);
    for t in FAULT_AT..FAULT_AT + 50 {
        assert_eq!(written[t as usize], [0.0; 3]);
        assert_ne!(recs[t as usize].flags & tick_flags::DEVICE_FAULT, 0);
    }
}

#[test]
fn emergency_stop_zeroes_force_on_the_tick_it_is_taken() {
    let (recs, written) = run(
        FAULT_AT + 100,
        FaultPlan::default(),
        &[
            (FAULT_AT, Command::EmergencyStop),
            (FAULT_AT + 50, Command::Resume),
        ],
    );
    assert!(mag(written[FAULT_AT as usize - 1]) > 0.2);
    for t in FAULT_AT..FAULT_AT + 50 {
        assert_eq!(written[t as usize], [0.0; 3]);
        assert_ne!(recs[t as usize].flags & tick_flags::STOPPING, 0);
    }
    // After the release the force comes back, no faster than the rate limit allows.
    let max_step = 2_000.0 * 1e-3 + 1e-9;
    for t in FAULT_AT + 50..FAULT_AT + 100 {
        let (a, b) = (written[t as usize - 1], written[t as usize]);
        let step = mag([b[0] - a[0], b[1] - a[1], b[2] - a[2]]);
        assert!(step <= max_step, "tick {t}: force jumped {step} N");
    }
    assert!(mag(written[(FAULT_AT + 99) as usize]) > 0.2);
}

#[test]
fn force_never_exceeds_the_device_limit_and_replays_bit_for_bit() {
    let (a, _) = run(5_000, FaultPlan::default(), &[]);
    let (b, _) = run(5_000, FaultPlan::default(), &[]);
    for (x, y) in a.iter().zip(&b) {
        assert!(mag(x.force_out_in_world_n) <= 8.0 + 1e-12);
        for k in 0..3 {
            assert_eq!(
                x.force_out_in_world_n[k].to_bits(),
                y.force_out_in_world_n[k].to_bits(),
                "tick {}",
                x.tick
            );
            assert_eq!(
                x.tool_pos_in_world_m[k].to_bits(),
                y.tool_pos_in_world_m[k].to_bits()
            );
        }
    }
}

/// A cut between ticks reaches the render thread: the next snapshot carries the opened
/// surface, published without an allocation on the haptic thread.
#[test]
fn a_cut_surface_is_published_without_allocating() {
    use nalgebra::Vector3;
    let _g = crate::alloc_counter::EXCLUSIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let cfg = CoreConfig::default();
    let tissue = phantom_block();
    let before = tissue.surface_triangles().len();
    let (_cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, mut sub) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let device = ScriptedProbe::new(Script::palpation(), cfg.step.dt_s);
    let mut core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);
    core.tick();
    let (allocations, removed) = crate::alloc_counter::allocations_during(|| {
        let removed = core.tissue_mut().cut(
            [
                Vector3::new(-0.03, 0.01, 0.001),
                Vector3::new(-0.03, -0.02, 0.001),
            ],
            [
                Vector3::new(0.03, 0.01, 0.001),
                Vector3::new(0.03, -0.02, 0.001),
            ],
        );
        for _ in 0..3 {
            core.tick();
        }
        removed
    });
    assert_eq!(allocations, 0, "the cut or tick allocated");
    assert!(removed > 0);
    assert!(sub.update());
    let snap = sub.read();
    assert_eq!(snap.surface_revision, core.tissue().surface_revision());
    assert_eq!(snap.surface_triangles, core.tissue().surface_triangles());
    assert!(snap.surface_triangles.len() > before);
}

/// The demo's palpation (press 10 mm, slide 4 cm) handles the phantom gently: nothing tears,
/// nothing is left inverted.
#[test]
fn palpation_leaves_the_phantom_whole() {
    let cfg = CoreConfig::default();
    let tissue = phantom_block();
    let (_cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, _sub) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let device = ScriptedProbe::new(Script::palpation(), cfg.step.dt_s);
    let mut core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);
    for _ in 0..5_000 {
        core.tick();
    }
    assert_eq!(core.tissue().torn_tets(), 0);
    assert_eq!(core.tissue().live_tet_count(), core.tissue().tet_count());
    assert_eq!(core.tissue().inverted_tets(), 0);
    assert_eq!(core.tissue_faults(), 0);
}

/// The emulated WoodenHaptics through the whole core: positions come in as HID report bytes,
/// forces go out as motor currents, and every fault the device can show (a stall past the
/// stall window, a short report, an encoder jump, an unplug) takes the current to zero in the
/// tick that sees it, with the fault flagged in the tick record.
#[test]
fn emulated_woodenhaptics_faults_zero_the_current_within_a_tick() {
    use haptwin::haptics::woodenhaptics::EmulatedFaults;

    let faults = EmulatedFaults {
        stall: Some(2_600..2_610),
        short_report: Some(2_700..2_701),
        jump: Some(2_800..2_801),
        unplug_at: Some(2_900),
    };
    let (mut core, monitor) = emulated_woodenhaptics_core(faults);
    let mut records = Vec::new();
    let mut currents = Vec::new();
    for _ in 0..3_000 {
        records.push(core.tick());
        currents.push(monitor.currents_ma());
    }
    let nonzero = |c: [i32; 3]| c.iter().any(|&v| v != 0);
    // Pressed 10 mm into the phantom just before the faults: a real push through the motors.
    assert!(nonzero(currents[2_590]), "no current while pressing");
    assert!(
        records[2_590].force_out_in_world_n[1] > 0.3,
        "{:?}",
        records[2_590]
    );
    // Stall: at most the stall window of stale ticks, then zero.
    let stalled = (2_600..2_610)
        .find(|&t| records[t].flags & tick_flags::STALLED != 0)
        .expect("the stall must be detected");
    assert!(stalled <= 2_600 + 6, "stall seen at {stalled}");
    for (t, c) in currents.iter().enumerate().take(2_610).skip(stalled) {
        assert!(!nonzero(*c), "tick {t}: {c:?}");
    }
    // Short report and jump: zero in that very tick.
    for t in [2_700usize, 2_800] {
        assert_ne!(records[t].flags & tick_flags::DEVICE_FAULT, 0, "tick {t}");
        assert!(!nonzero(currents[t]), "tick {t}: {:?}", currents[t]);
    }
    // Unplugged: flagged every tick after, and nothing pushes (the guard outputs zero; the
    // device itself cuts its amplifiers after its own watchdog).
    for (t, r) in records.iter().enumerate().skip(2_900) {
        assert_ne!(r.flags & tick_flags::DEVICE_FAULT, 0, "tick {t}");
        assert_eq!(r.force_out_in_world_n, [0.0; 3], "tick {t}");
    }
}

/// The WoodenHaptics path (codec, kinematics, in-process transport, emulator) allocates nothing
/// in the tick.
#[test]
fn emulated_woodenhaptics_ticks_allocate_nothing() {
    use haptwin::haptics::woodenhaptics::EmulatedFaults;

    let _g = crate::alloc_counter::EXCLUSIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let (mut core, monitor) = emulated_woodenhaptics_core(EmulatedFaults::default());
    core.tick();
    let (allocations, ()) = crate::alloc_counter::allocations_during(|| {
        for _ in 0..3_000 {
            core.tick();
        }
    });
    assert_eq!(allocations, 0, "the tick allocated");
    assert!(monitor.outputs() > 3_000);
}

/// The core on the demo's phantom with the emulated WoodenHaptics (placed as in the demo) and
/// a monitor of the currents it drives.
fn emulated_woodenhaptics_core(
    faults: haptwin::haptics::woodenhaptics::EmulatedFaults,
) -> (HapticCore, haptwin::haptics::woodenhaptics::CurrentMonitor) {
    use haptwin::demo::{emulated_woodenhaptics, woodenhaptics_to_world};
    let cfg = CoreConfig {
        device_to_world: woodenhaptics_to_world(),
        ..CoreConfig::default()
    };
    let tissue = phantom_block();
    let (_cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, _sub) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let (device, monitor) = emulated_woodenhaptics(cfg.step.dt_s, faults);
    (
        HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher),
        monitor,
    )
}
