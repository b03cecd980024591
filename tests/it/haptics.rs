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
    // The hover phase before contact touches nothing; the hand feels only the coupled tool's
    // 30 g of inertia as it starts to move.
    assert_eq!(recs[100].contact_force_in_world_n, [0.0; 3]);
    assert!(
        mag(recs[100].force_out_in_world_n) < 0.02,
        "{:?}",
        recs[100]
    );
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
        ..EmulatedFaults::default()
    };
    let (mut core, monitor, mut commands, _) = emulated_woodenhaptics_core(faults);
    let mut records: Vec<TickRecord> = Vec::new();
    let mut currents = Vec::new();
    for t in 0..3_000 {
        match t {
            // The solver goes non-finite (a particle in contact with the tool turns NaN).
            2_650 => {
                let tool = nalgebra::Vector3::from(records[t - 1].tool_pos_in_world_m);
                let tissue = core.tissue_mut();
                let nearest = (0..tissue.positions_m.len())
                    .min_by(|&a, &b| {
                        let da = (tissue.positions_m[a] - tool).norm();
                        let db = (tissue.positions_m[b] - tool).norm();
                        da.total_cmp(&db)
                    })
                    .unwrap();
                tissue.positions_m[nearest].x = f64::NAN;
            }
            2_750 => commands.push(Command::EmergencyStop).unwrap(),
            2_760 => commands.push(Command::Resume).unwrap(),
            _ => {}
        }
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
    // Solver fault, short report, e-stop and jump: zero in that very tick.
    for t in [2_650usize, 2_700, 2_750, 2_800] {
        assert!(!nonzero(currents[t]), "tick {t}: {:?}", currents[t]);
    }
    assert_ne!(records[2_650].flags & tick_flags::SOLVER_FAULT, 0);
    assert_ne!(records[2_750].flags & tick_flags::EMERGENCY_STOP, 0);
    assert!(
        nonzero(currents[2_749]) && nonzero(currents[2_799]),
        "force came back"
    );
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
    // The log says what happened, where, and that the force was zero.
    let (events, _) = haptwin::session::log::safety_events(&records);
    let faults: Vec<(u64, &str)> = events
        .iter()
        .filter(|e| !e.what.starts_with("clear"))
        .map(|e| (e.tick, e.what.split(':').next().unwrap()))
        .collect();
    assert_eq!(
        faults,
        [
            (
                stalled as u64,
                "device stalled (no fresh input within the stall window)"
            ),
            (
                2_650,
                "tissue solver produced a non-finite state (rolled back)"
            ),
            (
                2_700,
                "device sent a bad report (garbage, wrong length or impossible jump)"
            ),
            (2_750, "emergency stop"),
            (
                2_800,
                "device sent a bad report (garbage, wrong length or impossible jump)"
            ),
            (2_900, "device disconnected"),
            // Gone, it sends nothing either.
            (
                2_905,
                "device stalled (no fresh input within the stall window)"
            ),
        ],
        "{events:#?}"
    );
    assert!(events
        .iter()
        .all(|e| e.what.starts_with("clear") || e.force_out_n == 0.0));
}

/// The WoodenHaptics path (codec, kinematics, in-process transport, emulator) allocates nothing
/// in the tick.
#[test]
fn emulated_woodenhaptics_ticks_allocate_nothing() {
    use haptwin::haptics::woodenhaptics::EmulatedFaults;

    let _g = crate::alloc_counter::EXCLUSIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let (mut core, monitor, _commands, _) = emulated_woodenhaptics_core(EmulatedFaults::default());
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
) -> (
    HapticCore,
    haptwin::haptics::woodenhaptics::CurrentMonitor,
    bus::QueueTx<Command>,
    haptwin::haptics::arm::EmulatedZeroPort,
) {
    use haptwin::demo::{emulated_woodenhaptics, woodenhaptics_to_world};
    let cfg = CoreConfig {
        device_to_world: woodenhaptics_to_world(),
        ..CoreConfig::default()
    };
    let tissue = phantom_block();
    let (cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, _sub) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let (device, monitor) = emulated_woodenhaptics(cfg.step.dt_s, faults);
    let zero_port = device.transport().device().zero_port();
    (
        HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher),
        monitor,
        cmd_tx,
        zero_port,
    )
}

/// Presses a probe 3 mm (tool surface into the block's top face) into a block of `material`,
/// fixed at its bottom, and holds it there; returns the forces written over the hold.
fn press_and_hold(
    material: haptwin::tissue::Material,
    coupling: Option<haptwin::haptics::coupling::CouplingConfig>,
) -> Vec<[f64; 3]> {
    use haptwin::haptics::sim::Waypoint;
    use haptwin::tissue::{TetMesh, Tissue};
    use nalgebra::Vector3;
    let cfg = CoreConfig {
        coupling,
        ..CoreConfig::default()
    };
    let min = Vector3::new(-0.04, -0.02, -0.04);
    let mesh = TetMesh::block(min, Vector3::new(0.04, 0.0, 0.04), [8, 2, 8]);
    let tissue = Tissue::new(&mesh, material, |p| p.y <= min.y + 1e-9);
    let r = cfg.tool_radius_m;
    let wp = |t_s, y| Waypoint {
        t_s,
        tip_in_device_m: [0.0, y, 0.0],
    };
    // Touch at 0.5 s, 3 mm in at 1.5 s, hold until 4 s.
    let script = Script::new(vec![
        wp(0.0, r + 0.01),
        wp(0.5, r),
        wp(1.5, r - 0.003),
        wp(4.0, r - 0.003),
        wp(4.5, r + 0.01),
    ]);
    let (_cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, _sub) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let device = ScriptedProbe::new(script, cfg.step.dt_s);
    let monitor = device.monitor();
    let mut core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);
    let mut hold = Vec::new();
    for t in 0..4_000u64 {
        core.tick();
        if t >= 2_500 {
            hold.push(monitor.last_force_n());
        }
    }
    hold
}

/// The hand never feels what it presses stiffer than the coupling allows: 3 mm into a stiff
/// (100 kPa) block, the bare contact force is several newtons, while through a 500 N/m
/// coupling it is at most 500 N/m x 3 mm, and the hold is steady (no buzz).
#[test]
fn the_coupling_caps_the_stiffness_the_hand_feels_and_holds_steady() {
    use haptwin::haptics::coupling::CouplingConfig;
    use haptwin::tissue::Material;
    let stiff = Material {
        youngs_modulus_pa: 100_000.0,
        poisson_ratio: 0.45,
        density_kg_per_m3: 1060.0,
    };
    let bare = press_and_hold(stiff, None);
    let coupled = press_and_hold(
        stiff,
        Some(CouplingConfig {
            stiffness_n_per_m: 500.0,
            ..CouplingConfig::default()
        }),
    );
    let up = |v: &[[f64; 3]]| v.iter().map(|f| f[1]).collect::<Vec<f64>>();
    let (bare, coupled) = (up(&bare), up(&coupled));
    let bare_mean = bare.iter().sum::<f64>() / bare.len() as f64;
    assert!(bare_mean > 3.0, "bare contact {bare_mean} N");
    let (lo, hi) = coupled
        .iter()
        .fold((f64::MAX, f64::MIN), |a, &y| (a.0.min(y), a.1.max(y)));
    assert!(
        hi <= 500.0 * 0.003 + 1e-9,
        "felt {hi} N through 500 N/m at 3 mm"
    );
    assert!(lo > 0.5, "the block still pushes back: {lo} N");
    assert!(hi - lo < 0.01 * hi, "the hold buzzes: {lo}..{hi} N");
}

/// A haptic thread that hangs inside a device call cannot zero its own force: the watchdog
/// does, through the device's second port, while the hang lasts.
#[test]
fn the_watchdog_zeroes_the_device_while_the_haptic_thread_hangs() {
    use haptwin::haptics::haptic_loop::{self, LoopConfig};
    use haptwin::haptics::watchdog::{Heartbeat, Watchdog, WatchdogConfig};
    use haptwin::haptics::woodenhaptics::EmulatedFaults;
    use std::time::Duration;

    let faults = EmulatedFaults {
        // Pressing into the phantom at report 2,600: the motors are pushing.
        hang: Some((2_600, Duration::from_millis(400))),
        ..EmulatedFaults::default()
    };
    let (core, monitor, _commands, zero_port) = emulated_woodenhaptics_core(faults);
    let heartbeat = Heartbeat::new();
    let dog = Watchdog::spawn(
        heartbeat.clone(),
        Box::new(zero_port),
        WatchdogConfig {
            timeout: Duration::from_millis(50),
            ..WatchdogConfig::default()
        },
    )
    .unwrap();
    let (tx, _rx) = bus::queue::<TickRecord>(8);
    let handle = haptic_loop::spawn(
        core,
        tx,
        LoopConfig {
            max_ticks: Some(2_800),
            realtime_priority: None,
            heartbeat: Some(heartbeat),
            ..LoopConfig::default()
        },
    )
    .unwrap();
    // Watch the amplifiers from here, as a meter on the motor leads would.
    let mut samples = Vec::new();
    while !handle.is_finished() {
        samples.push((monitor.outputs(), monitor.currents_ma()));
        std::thread::sleep(Duration::from_micros(500));
    }
    let report = handle.join().unwrap();
    let dog = dog.stop();
    assert!(dog.trips >= 1, "{dog:?}");
    assert_eq!(report.final_force_n, [0.0; 3]);
    // The hang: the output count the haptic thread left standing longest.
    let mut longest = (0u64, 0usize);
    let mut run = (u64::MAX, 0usize);
    for (outputs, _) in &samples {
        run = if *outputs == run.0 {
            (run.0, run.1 + 1)
        } else {
            (*outputs, 1)
        };
        if run.1 > longest.1 {
            longest = run;
        }
    }
    let during: Vec<[i32; 3]> = samples
        .iter()
        .filter(|(o, _)| *o == longest.0)
        .map(|(_, c)| *c)
        .collect();
    let nonzero = |c: &[i32; 3]| c.iter().any(|&v| v != 0);
    assert!(
        nonzero(&during[0]),
        "the motors were pushing when the thread hung: {:?}",
        &during[..3]
    );
    assert!(
        !nonzero(during.last().unwrap()),
        "the watchdog must have zeroed them: {:?}",
        during.last()
    );
}

/// Runs a core on `device` for `ticks`, returning its records.
fn run_core(
    device: Box<dyn haptwin::haptics::device::HapticDevice>,
    tissue: haptwin::tissue::Tissue,
    device_to_world: nalgebra::Isometry3<f64>,
    ticks: u64,
) -> Vec<TickRecord> {
    let cfg = CoreConfig {
        device_to_world,
        ..CoreConfig::default()
    };
    let (_cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, _sub) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let mut core = HapticCore::new(device, tissue, &cfg, cmd_rx, publisher);
    (0..ticks).map(|_| core.tick()).collect()
}

/// A recorded device stream, faults included, replays through a fresh core to the same forces
/// and tool path, bit for bit; on other tissue it does not, and the replay says where.
#[test]
fn a_recorded_device_stream_replays_bit_for_bit() {
    use haptwin::demo::{emulated_woodenhaptics, woodenhaptics_to_world};
    use haptwin::haptics::device::HapticDevice;
    use haptwin::haptics::replay::ReplayDevice;
    use haptwin::haptics::woodenhaptics::EmulatedFaults;
    use nalgebra::Isometry3;

    let (device, _) = emulated_woodenhaptics(
        1e-3,
        EmulatedFaults {
            stall: Some(1_900..1_910),
            short_report: Some(2_000..2_001),
            jump: Some(2_100..2_101),
            unplug_at: Some(2_900),
            ..EmulatedFaults::default()
        },
    );
    let info = device.info().clone();
    let recorded = run_core(
        Box::new(device),
        phantom_block(),
        woodenhaptics_to_world(),
        3_000,
    );
    assert!(recorded.iter().any(|r| r.flags & tick_flags::STALLED != 0));
    let bits = |v: [f64; 3]| v.map(f64::to_bits);

    let replay = ReplayDevice::from_records(&recorded, info.clone()).unwrap();
    let check = replay.verification();
    let replayed = run_core(
        Box::new(replay),
        phantom_block(),
        Isometry3::identity(),
        3_000,
    );
    assert_eq!(check.compared(), 3_000);
    assert_eq!(
        check.mismatches(),
        0,
        "first at {:?}",
        check.first_mismatch_tick()
    );
    for (a, b) in recorded.iter().zip(&replayed) {
        assert_eq!(
            bits(a.force_out_in_world_n),
            bits(b.force_out_in_world_n),
            "tick {}",
            a.tick
        );
        assert_eq!(
            bits(a.tool_pos_in_world_m),
            bits(b.tool_pos_in_world_m),
            "tick {}",
            a.tick
        );
        assert_eq!(
            a.flags & !tick_flags::OVERRUN,
            b.flags & !tick_flags::OVERRUN,
            "tick {}",
            a.tick
        );
    }

    // The same hand on stiffer tissue (which sags less, so it is touched a little sooner): the
    // hover is the same, the forces part around the first contact.
    let replay = ReplayDevice::from_records(&recorded, info).unwrap();
    let check = replay.verification();
    let min = nalgebra::Vector3::new(-0.05, -0.0375, -0.05);
    let mesh =
        haptwin::tissue::TetMesh::block(min, nalgebra::Vector3::new(0.05, 0.0, 0.05), [8, 3, 8]);
    let stiffer = haptwin::tissue::Tissue::new(
        &mesh,
        haptwin::tissue::Material {
            youngs_modulus_pa: 8_000.0,
            ..haptwin::tissue::Material::LIVER
        },
        |p| p.y <= min.y + 1e-9,
    );
    run_core(Box::new(replay), stiffer, Isometry3::identity(), 3_000);
    let first = check
        .first_mismatch_tick()
        .expect("different tissue, different forces");
    let touch = recorded
        .iter()
        .find(|r| r.contact_force_in_world_n != [0.0; 3])
        .unwrap()
        .tick;
    assert!(
        first + 100 > touch && first < touch + 100,
        "parted at {first}, the first contact was at {touch}"
    );
    assert!(check.mismatches() > 100);
}

/// A device that vanishes mid-press is handed to the reconnect helper; the force is zero while
/// it is gone, and comes back once the helper has opened it again, the haptic thread never
/// waiting for it.
#[test]
fn a_vanished_device_is_reopened_off_the_haptic_thread() {
    use haptwin::demo::woodenhaptics_to_world;
    use haptwin::haptics::arm::{EmulatedArm, EmulatedFaults};
    use haptwin::haptics::reconnect::{Opener, ReconnectingTransport};
    use haptwin::haptics::transport::InProcessTransport;
    use haptwin::haptics::woodenhaptics::{
        WoodenHaptics, WoodenHapticsConfig, WoodenHapticsProtocol,
    };
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let config = WoodenHapticsConfig::default_design();
    let to_device = woodenhaptics_to_world().inverse();
    let script = Script::palpation().mapped(|p| {
        to_device
            .transform_point(&nalgebra::Point3::from(nalgebra::Vector3::from(p)))
            .coords
            .into()
    });
    // The device is back (enumerable) from this tick on.
    const UNPLUG: u64 = 1_500;
    const BACK: u64 = 1_650;
    let now = Arc::new(AtomicU64::new(0));

    #[derive(Debug)]
    struct Replug {
        config: WoodenHapticsConfig,
        script: Script,
        now: Arc<AtomicU64>,
        tries: u64,
    }
    impl Opener for Replug {
        type Transport = InProcessTransport<EmulatedArm<WoodenHapticsProtocol>>;
        fn open(&mut self) -> Option<Self::Transport> {
            self.tries += 1;
            let t = self.now.load(Ordering::Acquire);
            (t >= BACK).then(|| {
                InProcessTransport::new(
                    EmulatedArm::new(self.config.clone(), self.script.clone(), 1e-3)
                        .starting_at_report(t),
                )
            })
        }
    }

    let first = EmulatedArm::<WoodenHapticsProtocol>::new(config.clone(), script.clone(), 1e-3)
        .with_faults(EmulatedFaults {
            unplug_at: Some(UNPLUG),
            ..EmulatedFaults::default()
        });
    let transport = ReconnectingTransport::new(
        InProcessTransport::new(first),
        Replug {
            config: config.clone(),
            script,
            now: now.clone(),
            tries: 0,
        },
    )
    .unwrap();
    let stats = transport.stats();
    let device = WoodenHaptics::new(transport, config, "WoodenHaptics (reconnecting)");
    let cfg = CoreConfig {
        device_to_world: woodenhaptics_to_world(),
        ..CoreConfig::default()
    };
    let tissue = phantom_block();
    let (_cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, _sub) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let mut core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);
    let _g = crate::alloc_counter::EXCLUSIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut records = Vec::with_capacity(10_000);
    records.push(core.tick());
    // Tick until the device has been back for half a second (at most 10 s of wall time),
    // counting what the haptic thread allocates or frees meanwhile.
    let mut back_at = None;
    let (allocations, ()) = crate::alloc_counter::allocations_during(|| {
        for t in 1..10_000u64 {
            now.store(t, Ordering::Release);
            let r = core.tick();
            if back_at.is_none() && t > UNPLUG && r.flags & tick_flags::DEVICE_FAULT == 0 {
                back_at = Some(t);
            }
            records.push(r);
            if back_at.is_some_and(|b| t > b + 500) {
                break;
            }
            if t >= UNPLUG {
                // Give the helper thread time: about real time while the device is away.
                std::thread::sleep(std::time::Duration::from_micros(500));
            }
        }
    });
    assert_eq!(allocations, 0, "the haptic side allocated or freed");
    let back_at = back_at.expect("the device must come back");
    assert!(back_at >= BACK, "back at {back_at}");
    assert!(
        mag(records[UNPLUG as usize - 1].force_out_in_world_n) > 0.2,
        "pressing before"
    );
    for r in &records[UNPLUG as usize..back_at as usize] {
        assert_ne!(r.flags & tick_flags::DEVICE_FAULT, 0, "tick {}", r.tick);
        assert_eq!(r.force_out_in_world_n, [0.0; 3], "tick {}", r.tick);
    }
    assert_ne!(
        records[UNPLUG as usize].flags & tick_flags::DEVICE_DISCONNECTED,
        0
    );
    assert!(
        mag(records.last().unwrap().force_out_in_world_n) > 0.2,
        "pressing again after the reconnection: {:?}",
        records.last()
    );
    assert_eq!(stats.disconnections(), 1);
    assert_eq!(stats.reconnections(), 1);
}
