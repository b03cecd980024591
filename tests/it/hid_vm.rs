//! The real HID path: haptwin's hidapi transport, codecs and kinematics against a virtual
//! WoodenHaptics 1.5 and a virtual Polhem made through `/dev/uhid` (`tests/vm/fake_hid.c`).
//!
//! These tests only run inside the small VM that `scripts/vm-hid-test.sh` boots (the host
//! kernel has no uhid): its `/init` starts both fakes, then runs
//! `it --ignored --test-threads=1 hid_vm`. The fakes send fixed encoder counts at about 1 kHz,
//! log every output report they receive (one hex line, report-ID byte stripped) to the file
//! named by `HID_VM_<DEVICE>_OUT`, and unplug themselves after `HID_VM_<DEVICE>_UNPLUG_AFTER`
//! output reports. The tests decode those lines by the documented byte layout, not with
//! haptwin's decoders. Timings are printed, never asserted.

use std::ffi::CString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use haptwin::bus::{self, tick_flags, Command, TickRecord};
use haptwin::demo::{phantom_block, woodenhaptics_to_world};
use haptwin::haptics::device::{DeviceError, DeviceInfo, DeviceSample, HapticDevice};
use haptwin::haptics::haptic_loop::{CoreConfig, HapticCore, SceneSnapshot};
use haptwin::haptics::polhem::{Polhem, PolhemConfig};
use haptwin::haptics::transport::HidapiTransport;
use haptwin::haptics::woodenhaptics::{WoodenHaptics, WoodenHapticsConfig};
use nalgebra::{Isometry3, Translation3, Vector3};

const WH_VID: u16 = 0x1234;
const WH_PID: u16 = 0x0006;
const POLHEM_VID: u16 = 0x16C0;
const POLHEM_PID: u16 = 0x0486;

/// What the fakes send (tests/vm/fake_hid.c).
const WH_COUNTS: [i16; 3] = [100, -200, 300];
const POLHEM_ARM: [i16; 3] = [150, -250, 350];
const POLHEM_GIMBAL: [i16; 3] = [10, 20, 30];
const POLHEM_INFO: u32 = 1;

/// Round trips timed per device.
const ROUND_TRIPS: usize = 200;
/// Set-encoders round trips timed on the Polhem.
const SET_ROUND_TRIPS: usize = 50;
/// How long any single wait on the VM may take before the test gives up (TCG is slow, but not
/// this slow).
const WAIT: Duration = Duration::from_secs(10);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test runs inside the uhid VM (scripts/vm-hid-test.sh)")
    })
}

/// The fake's output log and unplug point.
struct Fake {
    out: PathBuf,
    unplug_after: usize,
}

impl Fake {
    fn from_env(device: &str) -> Self {
        Self {
            out: PathBuf::from(env(&format!("HID_VM_{device}_OUT"))),
            unplug_after: env(&format!("HID_VM_{device}_UNPLUG_AFTER"))
                .parse()
                .expect("unplug point is a number"),
        }
    }

    /// Every complete line of the log, decoded from hex.
    fn outputs(&self) -> Vec<Vec<u8>> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                (0..l.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&l[i..i + 2], 16).expect("hex line"))
                    .collect()
            })
            .collect()
    }

    /// Waits until the log holds at least `n` reports; returns them all.
    fn wait_outputs(&self, n: usize) -> Vec<Vec<u8>> {
        let start = Instant::now();
        loop {
            let lines = self.outputs();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                start.elapsed() < WAIT,
                "the fake logged {} output reports, expected {n}",
                lines.len()
            );
            std::thread::yield_now();
        }
    }
}

/// Little-endian `i16` words of a report payload.
fn words(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|w| i16::from_le_bytes([w[0], w[1]]))
        .collect()
}

/// Amps to the protocols' milliamps, rounded.
fn milliamps(amps: [f64; 3]) -> [i16; 3] {
    amps.map(|a| (a * 1000.0).round() as i16)
}

/// A force that changes every round trip (newtons, well under either device's limit).
fn force(i: usize) -> [f64; 3] {
    let t = i as f64 * 0.1;
    [1.5 * t.sin(), 1.0 * t.cos(), -0.5 + 0.005 * i as f64]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(what: &str, mut d: Vec<Duration>) {
    d.sort();
    println!(
        "hid_vm timing: {what}: n {}, p50 {:.0} us, p90 {:.0} us, max {:.0} us",
        d.len(),
        percentile(&d, 0.5).as_secs_f64() * 1e6,
        percentile(&d, 0.9).as_secs_f64() * 1e6,
        d[d.len() - 1].as_secs_f64() * 1e6
    );
}

fn hidraw_path(api: &hidapi::HidApi, vid: u16, pid: u16) -> CString {
    let found: Vec<_> = api
        .device_list()
        .filter(|d| d.vendor_id() == vid && d.product_id() == pid)
        .collect();
    assert_eq!(found.len(), 1, "{vid:04x}:{pid:04x} enumerated {found:?}");
    found[0].path().to_owned()
}

/// Reads until a fresh sample arrives.
fn wait_sample<D: HapticDevice>(dev: &mut D) -> DeviceSample {
    let start = Instant::now();
    loop {
        if let Some(s) = dev.read(0).expect("read") {
            return s;
        }
        assert!(start.elapsed() < WAIT, "no input report within {WAIT:?}");
        std::thread::yield_now();
    }
}

fn assert_tip(sample: &DeviceSample, expected: Vector3<f64>) {
    let got = Vector3::from(sample.tip_in_device_m);
    assert!(
        (got - expected).norm() < 1e-12,
        "tip {got:?}, expected {expected:?}"
    );
}

/// Writes `ROUND_TRIPS` forces through `dev`; for each, waits until the fake has logged the
/// report, checks its currents against `expected_ma(force)` with `decode` (the documented
/// layout), then reads the next input report. Returns the reports logged so far.
fn round_trips<D: HapticDevice>(
    dev: &mut D,
    fake: &Fake,
    what: &str,
    expected_ma: impl Fn([f64; 3]) -> [i16; 3],
    decode: impl Fn(&[u8]) -> [i16; 3],
) -> usize {
    let mut logged = fake.outputs().len();
    let (mut write_t, mut read_t, mut out_t, mut rt_t) = (vec![], vec![], vec![], vec![]);
    let mut nonzero = 0;
    for i in 0..ROUND_TRIPS {
        let f = force(i);
        let t0 = Instant::now();
        dev.write_force(f).expect("write_force");
        let t1 = Instant::now();
        let lines = fake.wait_outputs(logged + 1);
        let t2 = Instant::now();
        assert_eq!(lines.len(), logged + 1, "one output report per write");
        logged += 1;
        let got = decode(&lines[logged - 1]);
        assert_eq!(got, expected_ma(f), "round trip {i}: force {f:?}");
        if got != [0; 3] {
            nonzero += 1;
        }
        // The way back: the next input report after the device took the command.
        let r0 = Instant::now();
        let mut sample = dev.read(0).expect("read");
        read_t.push(r0.elapsed());
        while sample.is_none() {
            assert!(t2.elapsed() < WAIT, "no input report within {WAIT:?}");
            std::thread::yield_now();
            sample = dev.read(0).expect("read");
        }
        let t3 = Instant::now();
        write_t.push(t1 - t0);
        out_t.push(t2 - t0);
        rt_t.push(t3 - t0);
    }
    assert!(
        nonzero > ROUND_TRIPS / 2,
        "only {nonzero} of {ROUND_TRIPS} commands had a current"
    );
    summary(&format!("{what} write_force call"), write_t);
    summary(&format!("{what} read call"), read_t);
    summary(
        &format!("{what} write_force -> report logged by the device"),
        out_t,
    );
    summary(
        &format!("{what} round trip (command logged by the device, next input report read)"),
        rt_t,
    );
    logged
}

/// Both fakes are visible to hidapi as hidraw nodes, by VID:PID, on the USB bus, with the
/// vendor usage page; nothing else about them can be relied on (no USB parent under uhid).
#[test]
#[ignore = "runs inside the uhid VM: scripts/vm-hid-test.sh"]
fn both_devices_enumerate_as_hidraw() {
    let api = hidapi::HidApi::new().expect("hidapi");
    for (vid, pid, product) in [
        (WH_VID, WH_PID, "WoodenHaptics 1.5"),
        (POLHEM_VID, POLHEM_PID, "Haptikfabriken Polhem"),
    ] {
        let d = api
            .device_list()
            .find(|d| d.vendor_id() == vid && d.product_id() == pid)
            .unwrap_or_else(|| panic!("{vid:04x}:{pid:04x} not enumerated"));
        let path = d.path().to_str().expect("utf-8 path");
        println!(
            "hid_vm: {vid:04x}:{pid:04x} at {path}, bus {:?}, product {:?}, manufacturer {:?}, \
             usage page {:#06x}, interface {}",
            d.bus_type(),
            d.product_string(),
            d.manufacturer_string(),
            d.usage_page(),
            d.interface_number()
        );
        assert!(path.starts_with("/dev/hidraw"), "{path}");
        assert!(matches!(d.bus_type(), hidapi::BusType::Usb));
        assert_eq!(d.usage_page(), 0xff00);
        assert!(
            d.product_string().is_some_and(|p| p.starts_with(product)),
            "{:?}",
            d.product_string()
        );
    }
}

/// `haptwin devices --json` (the static binary in the VM, `HID_VM_HAPTWIN`) lists both fakes
/// among its HID devices, each with its profile, a hidraw path, and accessible.
#[test]
#[ignore = "runs inside the uhid VM: scripts/vm-hid-test.sh"]
fn haptwin_devices_json_lists_both_fakes() {
    let out = std::process::Command::new(env("HID_VM_HAPTWIN"))
        .args(["devices", "--json"])
        .output()
        .expect("run haptwin devices --json");
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let devices = report["hid"]["devices"].as_array().expect("hid.devices");
    for (vid_pid, profile) in [("1234:0006", "woodenhaptics"), ("16c0:0486", "polhem")] {
        let listed: Vec<_> = devices.iter().filter(|d| d["vid_pid"] == vid_pid).collect();
        assert_eq!(listed.len(), 1, "{vid_pid} in {devices:?}");
        let d = listed[0];
        assert_eq!(d["profile"], profile, "{d}");
        assert!(
            d["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/dev/hidraw")),
            "{d}"
        );
        assert_eq!(d["accessible"], true, "{d}");
    }
}

/// Device errors seen, with the tick and the call (`"read"` or `"write"`).
type ErrorLog = std::sync::Arc<std::sync::Mutex<Vec<(u64, &'static str, DeviceError)>>>;

/// Records every device error with the tick that saw it, and passes everything through.
#[derive(Debug)]
struct ErrorSpy<D> {
    inner: D,
    tick: u64,
    errors: ErrorLog,
}

impl<D: HapticDevice> HapticDevice for ErrorSpy<D> {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }

    fn read(&mut self, tick: u64) -> Result<Option<DeviceSample>, DeviceError> {
        self.tick = tick;
        let r = self.inner.read(tick);
        if let Err(e) = &r {
            self.errors.lock().unwrap().push((tick, "read", e.clone()));
        }
        r
    }

    fn write_force(&mut self, force_n: [f64; 3]) -> Result<(), DeviceError> {
        let r = self.inner.write_force(force_n);
        if let Err(e) = &r {
            self.errors
                .lock()
                .unwrap()
                .push((self.tick, "write", e.clone()));
        }
        r
    }
}

/// The WoodenHaptics 1.5 through hidraw: encoder counts in (the tip where the kinematics put
/// it), current commands out (the fake receives `J^T F` through the capstans as mA), then the
/// whole haptic core on the real device, pressing into the phantom, until the fake unplugs
/// itself: from the tick that sees it on, the device fault is flagged and the force is zero.
#[test]
#[ignore = "runs inside the uhid VM: scripts/vm-hid-test.sh"]
fn woodenhaptics_counts_in_currents_out_then_unplug_through_the_core() {
    let fake = Fake::from_env("WOODENHAPTICS");
    let cfg = WoodenHapticsConfig::default_design();
    let angles = cfg.joint_angles(WH_COUNTS);
    let tip = cfg.tip_position(angles);
    let api = hidapi::HidApi::new().expect("hidapi");

    // Opened by VID:PID: encoder counts in.
    {
        let t = HidapiTransport::open(&api, WH_VID, WH_PID).expect("open by VID:PID");
        let mut dev = WoodenHaptics::new(t, cfg.clone(), "WoodenHaptics 1.5 (uhid)");
        assert_tip(&wait_sample(&mut dev), tip);
        let i = dev.last_input().expect("an input report");
        assert_eq!(i.counts, WH_COUNTS);
        println!("hid_vm: woodenhaptics tip at {:?} m", tip.as_slice());
    }

    // Opened by path: current commands out, many round trips.
    let path = hidraw_path(&api, WH_VID, WH_PID);
    let t = HidapiTransport::open_path(&api, &path).expect("open by path");
    let mut dev = WoodenHaptics::new(t, cfg.clone(), "WoodenHaptics 1.5 (uhid)");
    assert_tip(&wait_sample(&mut dev), tip);
    let before = fake.outputs().len();
    let logged = round_trips(
        &mut dev,
        &fake,
        "woodenhaptics",
        |f| milliamps(cfg.motor_currents_a(Vector3::from(f), angles)),
        |b| {
            assert_eq!(b.len(), 8, "WoodenHaptics output payload is 8 bytes");
            let w = words(b);
            [w[0], w[1], w[2]]
        },
    );
    // The report counter (u16 after the currents) goes up by one per report.
    let lines = fake.outputs();
    for k in before.max(1)..logged {
        let prev = u16::from_le_bytes([lines[k - 1][6], lines[k - 1][7]]);
        let this = u16::from_le_bytes([lines[k][6], lines[k][7]]);
        assert_eq!(this, prev.wrapping_add(1), "output counter at report {k}");
    }
    assert!(
        logged < fake.unplug_after,
        "the unplug point must leave room for the core"
    );

    // The whole core on the real device, the tool 6 mm into the phantom's top (y = 0), until
    // the fake unplugs after its N-th output report.
    let rotation = woodenhaptics_to_world().rotation;
    let target = Vector3::new(0.0, 0.012 - 0.006, 0.0);
    let core_cfg = CoreConfig {
        device_to_world: Isometry3::from_parts(
            Translation3::from(target - rotation * tip),
            rotation,
        ),
        // TCG jitter: a slow tick is not what this test is about.
        stall_ticks: 50,
        ..CoreConfig::default()
    };
    let errors = ErrorLog::default();
    let spy = ErrorSpy {
        inner: dev,
        tick: 0,
        errors: errors.clone(),
    };
    let tissue = phantom_block();
    let (_cmd_tx, cmd_rx) = bus::queue::<Command>(16);
    let (publisher, _sub) = bus::triple_buffer(SceneSnapshot::for_tissue(&tissue));
    let mut core = HapticCore::new(Box::new(spy), tissue, &core_cfg, cmd_rx, publisher);
    // Core tick k writes output report `logged + k + 1`: the unplugging one is tick `last_ok`.
    let last_ok = (fake.unplug_after - logged - 1) as u64;
    let bound = 50u64;
    let mut records: Vec<TickRecord> = Vec::new();
    let period = Duration::from_millis(1);
    let mut next = Instant::now();
    let start = Instant::now();
    while records.len() as u64 <= last_ok + bound {
        records.push(core.tick());
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    let elapsed = start.elapsed();
    drop(core);

    let fault = |r: &TickRecord| r.flags & tick_flags::DEVICE_FAULT != 0;
    let first = records
        .iter()
        .position(fault)
        .expect("the unplug must be seen") as u64;
    println!(
        "hid_vm: woodenhaptics core: {} ticks in {:.2} s, unplugged after tick {last_ok}, \
         first fault at tick {first}",
        records.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        first > last_ok && first <= last_ok + bound,
        "first fault at tick {first}, the fake unplugged after tick {last_ok}"
    );
    let mag = |f: [f64; 3]| f.iter().map(|v| v * v).sum::<f64>().sqrt();
    let pushed = records[..first as usize]
        .iter()
        .filter(|r| mag(r.force_out_in_world_n) > 0.1)
        .count();
    assert!(pushed > 0, "the tool never pushed before the unplug");
    let errors = errors.lock().unwrap();
    // From the tick that sees the unplug on, the fault is flagged and no force goes out: the
    // guard outputs zero, except in the unplug tick itself when the read still succeeded and
    // the write was refused (nothing reached the device).
    for (t, r) in records.iter().enumerate().skip(first as usize) {
        assert!(fault(r), "tick {t}: {r:?}");
        let refused = errors
            .iter()
            .any(|(tick, op, _)| *tick == t as u64 && *op == "write");
        assert!(
            r.force_out_in_world_n == [0.0; 3] || (t as u64 == first && refused),
            "tick {t}: force {:?} after the unplug",
            r.force_out_in_world_n
        );
    }
    // The device logged exactly N reports, the pushes among them as currents.
    let lines = fake.outputs();
    assert_eq!(lines.len(), fake.unplug_after, "reports logged by the fake");
    assert!(
        lines[logged..].iter().any(|b| words(b)[..3] != [0, 0, 0]),
        "no current reached the device from the core"
    );
    // Every error after the unplug, from reads and writes alike, is a disconnect.
    assert!(errors.iter().any(|(_, op, _)| *op == "read"), "{errors:?}");
    assert!(errors.iter().any(|(_, op, _)| *op == "write"), "{errors:?}");
    for (tick, op, e) in errors.iter() {
        assert!(
            *tick >= first,
            "{op} error at tick {tick} before the unplug: {e:?}"
        );
        assert!(
            matches!(e, DeviceError::Disconnected { .. }),
            "tick {tick}, {op}: {e:?}"
        );
    }
    println!(
        "hid_vm: woodenhaptics: {pushed} ticks pushed before the unplug, {} errors after, all \
         disconnects",
        errors.len()
    );
}

/// The Polhem through hidraw: arm and gimbal counts and the calibration switch in, currents
/// out, the set-encoders command (the next reports carry the new counts), then the device
/// unplugged mid-stream: reads and writes say it is disconnected.
#[test]
#[ignore = "runs inside the uhid VM: scripts/vm-hid-test.sh"]
fn polhem_counts_in_currents_out_set_encoders_then_unplug() {
    let fake = Fake::from_env("POLHEM");
    let cfg = PolhemConfig::default_design();
    let api = hidapi::HidApi::new().expect("hidapi");
    let angles = cfg.joint_angles(POLHEM_ARM);

    // Opened by VID:PID: counts and the switch in.
    {
        let t = HidapiTransport::open(&api, POLHEM_VID, POLHEM_PID).expect("open by VID:PID");
        let mut dev = Polhem::new(t, cfg.clone(), "Polhem (uhid)");
        let s = wait_sample(&mut dev);
        assert_tip(&s, cfg.tip_position(angles));
        let i = dev.last_input().expect("an input report");
        assert_eq!(i.counts, POLHEM_ARM);
        assert_eq!(i.gimbal_counts, POLHEM_GIMBAL);
        assert_eq!(i.buttons & 1, POLHEM_INFO, "calibration switch");
    }

    let path = hidraw_path(&api, POLHEM_VID, POLHEM_PID);
    let t = HidapiTransport::open_path(&api, &path).expect("open by path");
    let mut dev = Polhem::new(t, cfg.clone(), "Polhem (uhid)");
    assert_tip(&wait_sample(&mut dev), cfg.tip_position(angles));
    let logged = round_trips(
        &mut dev,
        &fake,
        "polhem",
        |f| milliamps(cfg.motor_currents_a(Vector3::from(f), angles)),
        |b| {
            assert_eq!(b.len(), 14, "Polhem output payload is 14 bytes");
            let w = words(b);
            assert_eq!(w[3..], [0, 0, 0, 0], "command 0 (currents), no arguments");
            [w[0], w[1], w[2]]
        },
    );

    // Set the encoders far from where they were (as calibration at the home pose does): arm
    // a, b, c go in the arguments, gimbal d, e, f in the current fields. As on a real bus, the
    // reports queued before the command still carry the old counts (let a few pile up, then
    // read right after the command, as the haptic loop's next tick would); the device must not
    // take the new counts for an encoder jump when they arrive.
    let new_arm = [1200, -900, 600];
    let new_gimbal = [-7, 8, -9];
    std::thread::sleep(Duration::from_millis(5));
    dev.set_encoders(new_arm, new_gimbal).expect("set_encoders");
    let (mut stale, mut jumps, mut came_back) = (0, 0, false);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        match dev.read(0) {
            Ok(Some(_)) if dev.last_input().is_some_and(|i| i.counts == new_arm) => {
                came_back = true;
                break;
            }
            Ok(Some(_)) => stale += 1,
            Ok(None) => {}
            Err(DeviceError::BadReport { .. }) => jumps += 1,
            Err(e) => panic!("after set_encoders: {e:?}"),
        }
        std::thread::yield_now();
    }
    println!(
        "hid_vm: polhem set_encoders far away: new counts read back: {came_back}, {stale} stale \
         sample(s) and {jumps} bad report(s) on the way"
    );
    let lines = fake.wait_outputs(logged + 1);
    assert_eq!(
        words(&lines[logged]),
        [-7, 8, -9, 1, 1200, -900, 600],
        "set-encoders report: gimbal in the current fields, command 1, arm in the arguments"
    );
    let mut logged = logged + 1;

    // A fresh device on the same node (whatever the old one made of that): the new counts.
    let t = HidapiTransport::open_path(&api, &path).expect("open by path");
    let mut dev = Polhem::new(t, cfg.clone(), "Polhem (uhid)");
    assert_tip(
        &wait_sample(&mut dev),
        cfg.tip_position(cfg.joint_angles(new_arm)),
    );
    let i = dev.last_input().unwrap();
    assert_eq!((i.counts, i.gimbal_counts), (new_arm, new_gimbal));

    // Command out, its effect in: set the encoders a few counts apart, time until a report
    // carries them (the fake sends one every millisecond).
    let mut rt = Vec::new();
    for k in 0..SET_ROUND_TRIPS {
        let arm = [
            new_arm[0] + (k % 7) as i16,
            new_arm[1] - (k % 5) as i16,
            new_arm[2],
        ];
        let t0 = Instant::now();
        dev.set_encoders(arm, new_gimbal).expect("set_encoders");
        logged += 1;
        loop {
            let _ = dev.read(0).expect("read after set_encoders");
            if dev.last_input().is_some_and(|i| i.counts == arm) {
                break;
            }
            assert!(
                t0.elapsed() < WAIT,
                "set_encoders {k}: {arm:?} never came back"
            );
            std::thread::yield_now();
        }
        rt.push(t0.elapsed());
    }
    summary(
        "polhem round trip (set_encoders out, a report with the new counts in)",
        rt,
    );
    let lines = fake.wait_outputs(logged);
    assert_eq!(lines.len(), logged);

    // Stream until the fake unplugs: within a bounded number of ticks reads and writes say
    // disconnected, and keep saying it.
    assert!(
        logged < fake.unplug_after,
        "the unplug point must leave room"
    );
    let mut first_err = None;
    let mut tick = 0usize;
    while first_err.is_none() {
        match dev.write_force([0.5, -0.25, 0.75]) {
            Ok(()) => logged += 1,
            Err(e) => first_err = Some(("write", e)),
        }
        if first_err.is_none() {
            if let Err(e) = dev.read(0) {
                first_err = Some(("read", e));
            }
        }
        tick += 1;
        assert!(
            logged <= fake.unplug_after + 200,
            "still writing {} reports after the unplug point",
            logged - fake.unplug_after
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let (op, e) = first_err.unwrap();
    println!(
        "hid_vm: polhem unplugged: first error from {op} after {tick} ticks ({logged} reports \
         accepted, the fake unplugs after {}): {e:?}",
        fake.unplug_after
    );
    assert!(matches!(e, DeviceError::Disconnected { .. }), "{op}: {e:?}");
    assert!(
        logged >= fake.unplug_after && logged <= fake.unplug_after + 200,
        "{logged} reports accepted, the fake unplugs after {}",
        fake.unplug_after
    );
    for _ in 0..5 {
        let r = dev.read(0);
        assert!(
            matches!(r, Err(DeviceError::Disconnected { .. })),
            "read after unplug: {r:?}"
        );
        let w = dev.write_force([0.0; 3]);
        assert!(
            matches!(w, Err(DeviceError::Disconnected { .. })),
            "write after unplug: {w:?}"
        );
    }
    assert_eq!(fake.outputs().len(), fake.unplug_after);

    // Last, as it does not stop the checks above: after a set-encoders command, reports from
    // before it must not make the new counts look like an encoder jump.
    assert!(
        came_back && jumps == 0,
        "after set_encoders far from the old counts, the device took {stale} stale report(s) \
         and then reported {jumps} encoder jump(s) (new counts read back: {came_back})"
    );
}
