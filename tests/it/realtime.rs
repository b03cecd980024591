//! The real-time contract: after start-up the haptic tick allocates nothing, over more than
//! 10,000 ticks, with the recorder and a snapshot reader running beside it and commands arriving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use haptwin::bus::{self, Command, TickRecord};
use haptwin::demo::phantom_block;
use haptwin::haptics::haptic_loop::{
    self, CoreConfig, HapticCore, LoopConfig, RealtimeHooks, SceneSnapshot,
};
use haptwin::haptics::sim::{FaultPlan, Script, ScriptedProbe};
use haptwin::session::{self, LogHeader, SessionLog};

use crate::alloc_counter;

fn header() -> LogHeader {
    LogHeader {
        software_version: "test".into(),
        scenario: "realtime-test".into(),
        case_id: "phantom-block".into(),
        device: "simulated probe".into(),
        dt_s: 1e-3,
        tissue: serde_json::json!({}),
        tool_radius_m: 0.012,
        seed: 0,
        started_unix_s: 0,
    }
}

#[test]
fn haptic_thread_allocates_nothing_over_10500_ticks() {
    let _g = alloc_counter::EXCLUSIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    const TICKS: u64 = 10_500;
    let cfg = CoreConfig::default();
    let tissue = phantom_block();
    let (tel_tx, tel_rx) = bus::queue::<TickRecord>(1024);
    let (cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, mut subscriber) =
        bus::triple_buffer(SceneSnapshot::with_capacity(tissue.particle_count()));
    let device = ScriptedProbe::new(Script::palpation(), cfg.step.dt_s);
    let monitor = device.monitor();
    let core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);

    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("rt.htlog");
    let (rec_ctl, recorder) = session::spawn_recorder(&log_path, &header(), tel_rx).unwrap();

    // A reader of snapshots, as the render thread would be.
    let done = Arc::new(AtomicBool::new(false));
    let reader_done = done.clone();
    let reader = std::thread::spawn(move || {
        let mut seen = 0u64;
        while !reader_done.load(Ordering::Acquire) {
            if subscriber.update() {
                seen += 1;
                assert!(subscriber.read().tissue_positions_m.len() > 100);
            }
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        seen
    });

    let before = alloc_counter::violations();
    let haptic = haptic_loop::spawn(
        core,
        tel_tx,
        LoopConfig {
            max_ticks: Some(TICKS),
            realtime_priority: None,
            realtime_hooks: RealtimeHooks {
                on_enter: Some(alloc_counter::arm),
                on_exit: Some(alloc_counter::disarm),
            },
            ..LoopConfig::default()
        },
    )
    .unwrap();
    // Commands arrive while the loop runs: an emergency stop and its release.
    std::thread::sleep(std::time::Duration::from_millis(3000));
    cmd_tx.push(Command::EmergencyStop).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    cmd_tx.push(Command::Resume).unwrap();
    let report = haptic.join().unwrap();
    let allocations = alloc_counter::violations() - before;
    done.store(true, Ordering::Release);
    let snapshots_seen = reader.join().unwrap();
    rec_ctl.finish("test");
    let rec = recorder.join().unwrap().unwrap();

    assert_eq!(
        allocations, 0,
        "the haptic thread allocated {allocations} times after start-up"
    );
    assert_eq!(report.ticks, TICKS);
    assert_eq!(report.lateness_ns.count(), TICKS);
    assert!(snapshots_seen > 100, "the reader saw {snapshots_seen} snapshots");
    assert!(
        monitor.nonzero_writes() > 1000,
        "the probe should have felt the tissue: {} non-zero writes",
        monitor.nonzero_writes()
    );
    assert_eq!(report.final_force_n, [0.0; 3]);
    assert_eq!(rec.records + report.telemetry_dropped, TICKS);
    let log = SessionLog::open(&log_path).unwrap();
    assert!(log.damage.is_none());
    assert_eq!(log.records.len() as u64, rec.records);
    // The emergency stop zeroed the force while it was in force.
    assert!(log
        .records
        .iter()
        .any(|r| r.flags & haptwin::bus::tick_flags::STOPPING != 0 && r.tick < TICKS - 1));
}

#[test]
fn core_tick_allocates_nothing_under_faults() {
    let _g = alloc_counter::EXCLUSIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let cfg = CoreConfig::default();
    let tissue = phantom_block();
    let (cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, _subscriber) =
        bus::triple_buffer(SceneSnapshot::with_capacity(tissue.particle_count()));
    let device = ScriptedProbe::new(Script::palpation(), cfg.step.dt_s).with_faults(FaultPlan {
        stall: Some(2_000..2_100),
        garbage: Some(2_500..2_510),
        disconnect_at: Some(11_000),
    });
    let mut core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);
    let (tel_tx, tel_rx) = bus::queue::<TickRecord>(4);
    let before = alloc_counter::violations();
    alloc_counter::arm();
    for i in 0..12_000u64 {
        if i == 5_000 {
            let _ = cmd_tx.push(Command::EmergencyStop);
        }
        if i == 5_010 {
            let _ = cmd_tx.push(Command::Resume);
        }
        let rec = core.tick();
        // The queue fills at once and stays full: every push after that is a counted drop.
        let _ = tel_tx.push(rec);
    }
    alloc_counter::disarm();
    assert_eq!(alloc_counter::violations() - before, 0);
    assert_eq!(tel_rx.len(), 4);
    assert_eq!(tel_tx.dropped(), 12_000 - 4);
}
