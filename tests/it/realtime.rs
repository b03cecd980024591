//! The real-time contract: after start-up the haptic tick allocates nothing, over more than
//! 10,000 ticks, with the recorder (logging the loop's start clock) and a snapshot reader running
//! beside it and commands arriving.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use haptwin::bus::{self, tick_flags, Command, TickRecord};
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
        coupling: serde_json::json!({}),
        seed: 0,
        started_unix_s: 0,
        case: "block".into(),
        tets: 0,
        instrument: None,
        calibration_digest: String::new(),
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
    let (mut cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, mut subscriber) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let device = ScriptedProbe::new(Script::palpation(), cfg.step.dt_s);
    let monitor = device.monitor();
    let core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);

    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("rt.htlog");
    let start_clock = Arc::new(AtomicU64::new(0));
    let (rec_ctl, recorder) = session::spawn_recorder_with(
        &log_path,
        &header(),
        tel_rx,
        session::RecorderOptions {
            clock: Some(session::StartClock {
                tick0_unix_ns: start_clock.clone(),
                period_ns: 1_000_000,
            }),
        },
    )
    .unwrap();

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
            start_clock: Some(start_clock.clone()),
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
    assert!(
        snapshots_seen > 100,
        "the reader saw {snapshots_seen} snapshots"
    );
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
    // The loop's start clock made it into the log, and it was in the past when the loop ran.
    let clock = log.clock.expect("the log has a clock chunk");
    assert_eq!(clock.tick0_unix_ns, start_clock.load(Ordering::Acquire));
    assert_eq!(clock.period_ns, 1_000_000);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(clock.tick0_unix_ns < now_ns);
    // The emergency stop zeroed the force while it was in force.
    assert!(log
        .records
        .iter()
        .any(|r| r.flags & tick_flags::STOPPING != 0 && r.tick < TICKS - 1));
}

#[test]
fn core_tick_allocates_nothing_under_faults() {
    let _g = alloc_counter::EXCLUSIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let cfg = CoreConfig::default();
    let tissue = phantom_block();
    let (mut cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, _subscriber) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let device = ScriptedProbe::new(Script::palpation(), cfg.step.dt_s).with_faults(FaultPlan {
        stall: Some(2_000..2_100),
        garbage: Some(2_500..2_510),
        disconnect_at: Some(11_000),
    });
    let mut core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);
    let (mut tel_tx, tel_rx) = bus::queue::<TickRecord>(4);
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

/// The haptic thread makes no system call but its deadline timer after start-up: no futex wait
/// (a contended lock, a condition variable, a blocking channel), no write (logging to stderr
/// included), no mmap/brk (allocation), no sched_yield (a spinning back-off). Proven with a seccomp filter on that thread, in a child process: any
/// other system call raises SIGSYS and the child reports which and fails.
#[cfg(target_arch = "x86_64")]
#[test]
fn haptic_thread_makes_no_syscall_but_the_timer() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "realtime::seccomp_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HAPTWIN_SECCOMP_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("seccomp-ok"),
        "the haptic thread made a forbidden system call (status {}):\n{stderr}",
        out.status
    );
}

#[cfg(target_arch = "x86_64")]
mod seccomp {
    //! A tiny seccomp-BPF filter: allow the timer, exit, and writes to a private reporting
    //! descriptor (not stderr, so logging from the tick is caught); trap the rest.

    use std::sync::atomic::{AtomicI32, Ordering};

    /// A duplicate of stderr at a high number, used only to report from the filtered thread.
    static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_TRAP: u32 = 0x0003_0000;
    const RET_KILL_PROCESS: u32 = 0x8000_0000;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;

    fn stmt(code: u16, k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
        libc::sock_filter {
            code: JEQ_K,
            jt,
            jf,
            k,
        }
    }

    fn report(msg: &[u8]) {
        let fd = REPORT_FD.load(Ordering::Relaxed);
        // SAFETY: writing a valid buffer to an open descriptor (or failing harmlessly on -1).
        unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
    }

    extern "C" fn on_sigsys(
        _sig: libc::c_int,
        info: *mut libc::siginfo_t,
        _ctx: *mut libc::c_void,
    ) {
        // si_syscall sits at byte 24 of siginfo_t for SIGSYS on x86_64 Linux.
        // SAFETY: the kernel hands a valid siginfo_t for SIGSYS.
        let nr = unsafe { *(info.cast::<u8>().add(24).cast::<i32>()) };
        let mut buf = *b"forbidden syscall on the haptic thread: nr 000\n";
        let digits = [(nr / 100) % 10, (nr / 10) % 10, nr % 10];
        let n = buf.len();
        for (i, d) in digits.iter().enumerate() {
            buf[n - 4 + i] = b'0' + *d as u8;
        }
        report(&buf);
        // SAFETY: ends the process at once, as intended.
        unsafe { libc::_exit(86) };
    }

    /// Opens the reporting descriptor and installs the SIGSYS reporter (process-wide).
    pub fn install_reporter() {
        // SAFETY: duplicating stderr onto a free descriptor >= 100.
        let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 100) };
        assert!(fd >= 100, "cannot duplicate stderr");
        REPORT_FD.store(fd, Ordering::Relaxed);
        // SAFETY: a zeroed sigaction with a valid handler and SA_SIGINFO.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigsys as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
        }
    }

    /// Filters the calling thread. A plain `fn()` for the loop's `on_enter` hook.
    pub fn install_filter() {
        let allowed = [
            libc::SYS_clock_nanosleep,
            libc::SYS_clock_gettime,
            libc::SYS_exit,
            libc::SYS_exit_group,
            libc::SYS_rt_sigreturn,
        ];
        let mut prog = [stmt(0, 0); 16];
        let mut n = 0;
        let mut push = |f| {
            prog[n] = f;
            n += 1;
        };
        push(stmt(LD_W_ABS, 4)); // arch
        push(jeq(AUDIT_ARCH_X86_64, 1, 0));
        push(stmt(RET_K, RET_KILL_PROCESS));
        push(stmt(LD_W_ABS, 0)); // syscall number
                                 // Each allowed number jumps to the ALLOW at the end.
        let tail = allowed.len() as u8 + 5; // instructions after the first jeq up to ALLOW
        for (i, nr) in allowed.iter().enumerate() {
            push(jeq(*nr as u32, tail - 1 - i as u8, 0));
        }
        push(jeq(libc::SYS_write as u32, 1, 0));
        push(stmt(RET_K, RET_TRAP));
        push(stmt(LD_W_ABS, 16)); // write's fd (low word of args[0])
        push(jeq(REPORT_FD.load(Ordering::Relaxed) as u32, 1, 0));
        push(stmt(RET_K, RET_TRAP));
        push(stmt(RET_K, RET_ALLOW));
        let fprog = libc::sock_fprog {
            len: n as u16,
            filter: prog.as_mut_ptr(),
        };
        // SAFETY: prctl with a valid filter program that outlives the call (the kernel copies it).
        let ok = unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &fprog as *const libc::sock_fprog,
                ) == 0
        };
        if !ok {
            report(b"seccomp filter could not be installed\n");
            // SAFETY: ends the process at once.
            unsafe { libc::_exit(77) };
        }
    }

    /// The loop's `on_exit` hook: report and end the child before anything else runs.
    pub fn report_ok() {
        report(b"seccomp-ok\n");
        // SAFETY: ends the process at once, as intended.
        unsafe { libc::_exit(0) };
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
#[ignore = "runs in a child process of haptic_thread_makes_no_syscall_but_the_timer"]
fn seccomp_child() {
    assert!(
        std::env::var_os("HAPTWIN_SECCOMP_CHILD").is_some(),
        "run through haptic_thread_makes_no_syscall_but_the_timer"
    );
    seccomp::install_reporter();
    let cfg = CoreConfig::default();
    let tissue = phantom_block();
    let (tel_tx, mut tel_rx) = bus::queue::<TickRecord>(1024);
    let (mut cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, mut subscriber) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let device = ScriptedProbe::new(Script::palpation(), cfg.step.dt_s).with_faults(FaultPlan {
        stall: Some(3_000..3_050),
        garbage: Some(4_000..4_010),
        disconnect_at: None,
    });
    let core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);
    let haptic = haptic_loop::spawn(
        core,
        tel_tx,
        LoopConfig {
            max_ticks: Some(6_000),
            realtime_priority: None,
            realtime_hooks: RealtimeHooks {
                on_enter: Some(seccomp::install_filter),
                on_exit: Some(seccomp::report_ok),
            },
            ..LoopConfig::default()
        },
    )
    .unwrap();
    // Drain telemetry and snapshots, and send commands, as the other threads would; contention
    // on the channels is what would make a lock wait.
    let mut n = 0u64;
    loop {
        while tel_rx.pop().is_some() {
            n += 1;
        }
        subscriber.update();
        if n > 2_000 && n < 2_100 {
            let _ = cmd_tx.push(Command::EmergencyStop);
            let _ = cmd_tx.push(Command::Resume);
        }
        if haptic.is_finished() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    // Reaching here means the loop ended without its on_exit hook ending the process.
    panic!("the haptic loop ended without reporting");
}

/// A stalled renderer cannot hold the haptic loop: the reader takes one snapshot and then holds
/// it (as a render thread stuck in a long frame would) for the whole run; every tick still runs,
/// and when the reader wakes up it gets the newest snapshot, not a stale queue of them.
#[test]
fn stalled_snapshot_reader_does_not_hold_the_loop() {
    const TICKS: u64 = 1_500;
    let cfg = CoreConfig::default();
    let tissue = phantom_block();
    let (tel_tx, mut tel_rx) = bus::queue::<TickRecord>(2_048);
    let (_cmd_tx, cmd_rx) = bus::queue::<Command>(4);
    let (publisher, mut subscriber) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let device = ScriptedProbe::new(Script::palpation(), cfg.step.dt_s);
    let core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);
    let haptic = haptic_loop::spawn(
        core,
        tel_tx,
        LoopConfig {
            max_ticks: Some(TICKS),
            realtime_priority: None,
            ..LoopConfig::default()
        },
    )
    .unwrap();
    // Take a snapshot early, then sit on it until the loop is done.
    while !subscriber.update() {
        std::hint::spin_loop();
    }
    let held_tick = subscriber.read().tick;
    let report = haptic.join().unwrap();
    assert_eq!(
        subscriber.read().tick,
        held_tick,
        "the held snapshot must not change under us"
    );
    assert_eq!(report.ticks, TICKS);
    let mut records = 0;
    while tel_rx.pop().is_some() {
        records += 1;
    }
    assert_eq!(records, TICKS);
    assert!(subscriber.update());
    assert_eq!(
        subscriber.read().tick,
        TICKS - 1,
        "the reader gets the newest snapshot"
    );
}

/// The tissue step allocates nothing with every feature in use: friction, damage tracking,
/// attachments, and grasps taken and released mid-run.
#[test]
fn tissue_step_allocates_nothing_with_grasp_friction_damage_and_attachments() {
    use haptwin::tissue::{step, SphereTool, StepParams};
    use nalgebra::Vector3;
    let _g = alloc_counter::EXCLUSIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut tissue = phantom_block();
    for q in 0..tissue.particle_count() {
        if tissue.positions_m[q].x < -0.049 {
            let anchor = tissue.positions_m[q];
            tissue.attach(q, anchor, 1e-4);
        }
    }
    let params = StepParams {
        contact_friction: 0.4,
        damage_strain: 0.05,
        iterations: 2,
        ..StepParams::default()
    };
    let before = alloc_counter::violations();
    alloc_counter::arm();
    let mut grasped = 0;
    for i in 0..3_000u64 {
        let t_s = i as f64 * 1e-3;
        let tool = SphereTool {
            center_in_world_m: Vector3::new(0.02 * (6.0 * t_s).sin(), 0.004, 0.0),
            radius_m: 0.012,
        };
        if i % 500 == 100 {
            grasped += tissue.grasp(tool.center_in_world_m, 0.014);
        }
        if i % 500 == 300 {
            tissue.release();
        }
        step(&params, &mut tissue, &tool).unwrap();
    }
    alloc_counter::disarm();
    assert_eq!(alloc_counter::violations() - before, 0);
    assert!(grasped > 0, "the grasps must have taken tissue");
    assert!(
        tissue.damage().iter().any(|&d| d > 0.0),
        "damage must have been tracked"
    );
}

/// The real render thread (headless Vulkan on lavapipe), stalled inside a frame for the whole
/// run, cannot hold the haptic loop: every tick runs and is recorded while the renderer sits
/// in its frame, and once released it draws the newest snapshot. (The lateness figures of
/// both runs are printed, not asserted: these machines are shared.)
#[test]
fn stalled_render_thread_does_not_hold_the_haptic_loop() {
    use haptwin::render::{Camera, RenderOptions};
    use haptwin::render_loop::{self, RenderLoopConfig, SceneSetup};
    use std::sync::mpsc;
    use std::time::Duration;

    const TICKS: u64 = 2_000;
    let run = |stall: bool| {
        let cfg = CoreConfig::default();
        let tissue = phantom_block();
        let (tel_tx, mut tel_rx) = bus::queue::<TickRecord>(4_096);
        let (_cmd_tx, cmd_rx) = bus::queue::<Command>(4);
        let (publisher, subscriber) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
        let dir =
            std::env::temp_dir().join(format!("haptwin-stall-{stall}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The hook: frame 1 waits until the test lets it go (after the haptic loop ended).
        let (entered_tx, entered_rx) = mpsc::channel::<u64>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        let hook: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |frame| {
            if stall && frame == 1 {
                let _ = entered_tx.send(frame);
                let _ = release_rx.lock().unwrap().recv();
            }
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (render, ready) = render_loop::spawn_render_loop(
            subscriber,
            stop.clone(),
            RenderLoopConfig {
                frames_dir: Some(dir.clone()),
                frame_interval: Duration::from_millis(20),
                options: RenderOptions {
                    width: 160,
                    height: 120,
                    ..RenderOptions::default()
                },
                camera: Camera::default_for_block(),
                max_frames: None,
                scene: SceneSetup::default(),
                before_frame: Some(hook),
                end_session: None,
            },
        )
        .unwrap();
        ready
            .recv_timeout(Duration::from_secs(60))
            .expect("render set-up")
            .expect("Vulkan (lavapipe) for the render thread");
        let device = ScriptedProbe::new(Script::palpation(), cfg.step.dt_s);
        let core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher);
        let haptic = haptic_loop::spawn(
            core,
            tel_tx,
            LoopConfig {
                max_ticks: Some(TICKS),
                realtime_priority: None,
                ..LoopConfig::default()
            },
        )
        .unwrap();
        if stall {
            // The renderer is stuck in frame 1 before the loop is half done.
            entered_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the render thread reached its stalled frame");
        }
        let report = haptic.join().unwrap();
        let mut records = 0;
        while tel_rx.pop().is_some() {
            records += 1;
        }
        assert_eq!(
            report.ticks, TICKS,
            "every tick ran (stalled renderer: {stall})"
        );
        assert_eq!(
            records, TICKS,
            "every tick was recorded (stalled renderer: {stall})"
        );
        // Stop first, then release: the renderer finishes frame 1, draws the last snapshot once
        // more and ends.
        stop.store(true, Ordering::Release);
        let _ = release_tx.send(());
        let rendered = render.join().expect("render thread");
        assert!(rendered.skipped.is_none(), "{:?}", rendered.skipped);
        // The last frame shows the newest snapshot: the last tick.
        let csv = std::fs::read_to_string(dir.join("frames.csv")).unwrap();
        let last_tick: u64 = csv
            .lines()
            .last()
            .and_then(|l| l.split(',').nth(1))
            .and_then(|t| t.parse().ok())
            .expect("frames.csv has frames");
        assert_eq!(
            last_tick,
            TICKS - 1,
            "the released renderer drew the newest snapshot"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let lat = haptwin::stats::Percentiles::of_ns_in_us(&report.lateness_ns);
        eprintln!(
            "renderer stalled: {stall}: {} ticks, lateness p50 {:.1} us p99 {:.1} us, {} overruns, {} frames",
            report.ticks, lat.p50, lat.p99, report.overruns, rendered.frames_rendered
        );
        rendered.frames_rendered
    };
    run(false);
    let frames_stalled = run(true);
    // The stalled renderer drew frame 0 before the stall and, once released, frame 1 and the
    // final one: nothing while the loop ran.
    assert!(frames_stalled <= 3, "{frames_stalled} frames while stalled");
}

/// Every instrument's tick allocates nothing: the scripted expert (and novice) performances of
/// resection (cautery cutting), biopsy (needle puncturing and sliding), a grasp drill (grasp,
/// lift, release) and a scalpel incision, stepped through the core with an armed allocation
/// counter.
#[test]
fn every_instrument_ticks_without_allocating() {
    use haptwin::haptics::instrument::InstrumentKind;
    use haptwin::score::performer::{performance, Skill};
    use haptwin::session::scenario::{CaseGeometry, Scenario, BUILTIN};
    let _g = alloc_counter::EXCLUSIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let case = haptwin::demo::case_tissue(&haptwin::demo::DemoCase::Phantom, 1_500).unwrap();
    let geometry = CaseGeometry::of(&case.tissue, &case.tet_labels);
    let with_instrument = |kind: &str| {
        Scenario::parse(
            std::path::Path::new("drill.toml"),
            &BUILTIN[0].1.replace(
                "instrument = \"probe\"",
                &format!("instrument = \"{kind}\""),
            ),
        )
        .unwrap()
    };
    let mut seen = 0u32;
    for (scenario, skill) in [
        (Scenario::find("resection").unwrap(), Skill::Novice),
        (Scenario::find("biopsy").unwrap(), Skill::Novice),
        (with_instrument("grasper"), Skill::Expert),
        (with_instrument("scalpel"), Skill::Expert),
    ] {
        let script = performance(&scenario, &case.tissue, &geometry, skill, 0);
        let cfg = CoreConfig {
            tool_radius_m: scenario.tip_radius_m,
            instrument: scenario.instrument_config(),
            ..CoreConfig::default()
        };
        let tissue = case.tissue.clone();
        let (_cmd_tx, cmd_rx) = bus::queue::<Command>(16);
        let (publisher, _subscriber) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
        let device = ScriptedProbe::new(script.clone(), cfg.step.dt_s);
        let mut core = HapticCore::new(Box::new(device), tissue, &cfg, cmd_rx, publisher)
            .with_no_go(geometry.vessel_particles.clone());
        let ticks = (script.period_s() / cfg.step.dt_s) as u64;
        let before = alloc_counter::violations();
        alloc_counter::arm();
        let mut flags = 0u32;
        for _ in 0..ticks {
            flags |= core.tick().flags;
        }
        alloc_counter::disarm();
        assert_eq!(
            alloc_counter::violations() - before,
            0,
            "{:?} allocated on the haptic path",
            scenario.instrument
        );
        seen |= flags;
        match scenario.instrument {
            InstrumentKind::Grasper => assert_ne!(flags & tick_flags::GRASP, 0),
            InstrumentKind::Scalpel => assert_ne!(flags & tick_flags::CUT, 0, "the scalpel cut"),
            _ => {}
        }
    }
    for (flag, what) in [
        (tick_flags::CUT, "cut"),
        (tick_flags::PUNCTURE, "puncture"),
        (tick_flags::GRASP, "grasp"),
        (tick_flags::RELEASE, "release"),
        (tick_flags::MARK, "mark"),
    ] {
        assert_ne!(seen & flag, 0, "no {what} happened");
    }
}
