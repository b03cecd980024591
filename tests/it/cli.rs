//! The `haptwin` binary as a user runs it: the demo and its JSON, the doctor, bad flags, and a
//! clean stop on SIGTERM / SIGINT.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use haptwin::session::SessionLog;

fn haptwin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_haptwin"));
    c.env("XDG_DATA_HOME", crate::test_data_home())
        .env_remove("HAPTWIN_DB");
    c
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "haptwin failed: {}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Decodes an RGBA8 PNG: (width, height, pixels).
fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn rgb_at(img: &(u32, u32, Vec<u8>), p: [f32; 2]) -> [u8; 3] {
    let (x, y) = (p[0].round() as usize, p[1].round() as usize);
    let i = (y * img.0 as usize + x) * 4;
    [img.2[i], img.2[i + 1], img.2[i + 2]]
}

/// The demo's own frames show what they should: background at the corners, liver-coloured
/// tissue where the block's top centre projects, and the grey tool where `frames.csv` says the
/// tool was (projected with the renderer's own matrices).
fn assert_frames_show_tissue_and_tool(frames_dir: &Path) {
    use haptwin::render::{Camera, HeadlessRenderer, RenderOptions};
    let projector = HeadlessRenderer::new(&RenderOptions::default()).unwrap();
    let camera = Camera::default_for_block();
    let csv = std::fs::read_to_string(frames_dir.join("frames.csv")).unwrap();
    let mut checked_tool = 0;
    for line in csv.lines().skip(1) {
        let f: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        let (frame, tool) = (f[0] as u32, [f[2] as f32, f[3] as f32, f[4] as f32]);
        let img = read_png(&frames_dir.join(format!("frame_{frame:05}.png")));
        assert_eq!((img.0, img.1), (640, 480));
        for corner in [[1.0, 1.0], [638.0, 1.0], [1.0, 478.0], [638.0, 478.0]] {
            let c = rgb_at(&img, corner);
            let bg = haptwin::render::BACKGROUND_SRGB;
            assert!(
                (0..3).all(|k| c[k].abs_diff(bg[k]) <= 6),
                "frame {frame}: corner {corner:?} is {c:?}, not background"
            );
        }
        // Tissue: the top face's centre, when the tool is well away from it.
        if tool[0].abs() > 0.015 || tool[1] > 0.03 {
            let p = projector.project(&camera, [0.0, -0.001, 0.0]).unwrap();
            let [r, g, b] = rgb_at(&img, p);
            assert!(
                r as f32 > 1.4 * g as f32 && r as f32 > 1.4 * b as f32 && r > 120,
                "frame {frame}: tissue pixel at {p:?} is {:?}",
                [r, g, b]
            );
        }
        // Tool: grey (tinted towards red only at several newtons), at its projected centre.
        let p = projector.project(&camera, tool).unwrap();
        let [r, g, b] = rgb_at(&img, p);
        assert!(
            g as f32 > 0.75 * r as f32 && b as f32 > 0.75 * r as f32 && r > 100,
            "frame {frame}: tool pixel at {p:?} is {:?}",
            [r, g, b]
        );
        checked_tool += 1;
    }
    assert!(checked_tool >= 1);
}

#[test]
fn demo_json_has_the_promised_fields_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = haptwin()
        .args([
            "demo",
            "--seconds",
            "2",
            "--json",
            "--fps",
            "5",
            "--validation",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let j = json_of(&out);
    assert_eq!(j["ticks"], 2000);
    for key in [
        "seconds",
        "rate_hz",
        "peak_force_n",
        "telemetry_dropped",
        "frames_rendered",
    ] {
        assert!(j[key].is_number(), "{key} missing: {j}");
    }
    for key in ["p50", "p99", "p999", "max"] {
        assert!(
            j["lateness_us"][key].is_number(),
            "lateness_us.{key} missing"
        );
    }
    for key in ["p50", "p99", "max"] {
        assert!(
            j["tick_work_us"][key].is_number(),
            "tick_work_us.{key} missing"
        );
    }
    assert!(
        j["peak_force_n"].as_f64().unwrap() > 0.2,
        "the probe should feel the tissue"
    );
    assert_eq!(j["final_force_n"], serde_json::json!([0.0, 0.0, 0.0]));
    // The demo recorded itself into the embedded store for the dashboard, as the demo
    // resident's, in the Demo cohort.
    let id = j["store"]["session_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("not stored: {}", j["store"]));
    let db = crate::test_data_home().join("haptwin/haptwin.db");
    assert_eq!(j["store"]["db"], db.display().to_string());
    let store = haptwin::store::Store::open(&haptwin::store::Target::Sqlite(db), 1).unwrap();
    let s = store
        .session(id)
        .unwrap()
        .expect("the demo's session is in the store");
    assert_eq!(s.summary.scenario, "palpation");
    assert_eq!(s.summary.resident_name, "Demo Resident");
    assert!(s.has_replay && !s.card.metrics.is_empty());
    let demo_cohort = store.cohort_by_name("Demo cohort").unwrap().unwrap();
    assert!(store
        .cohort_residents(demo_cohort.id)
        .unwrap()
        .iter()
        .any(|u| u.id == s.summary.resident_id));
    // CI installs lavapipe (scripts/install-deps.sh): rendering must have happened.
    assert_eq!(
        j["render"]["status"], "rendered",
        "no frames rendered ({}); run scripts/install-deps.sh for Mesa lavapipe",
        j["render"]
    );
    assert!(j["frames_rendered"].as_u64().unwrap() >= 1);
    // The validation layers watched every frame of the real demo scene and found nothing.
    let v = &j["render"]["validation"];
    assert_eq!(v["errors"], 0, "validation errors: {v}");
    assert_eq!(v["warnings"], 0, "validation warnings: {v}");
    let frames_dir = dir.path().join("frames");
    let pngs = std::fs::read_dir(&frames_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert_eq!(pngs as u64, j["frames_rendered"].as_u64().unwrap());
    assert_frames_show_tissue_and_tool(&frames_dir);
    let log = SessionLog::open(Path::new(j["log_path"].as_str().unwrap())).unwrap();
    assert_eq!(log.records.len(), 2000);
    assert!(log.damage.is_none() && log.end.is_some());
}

#[test]
fn demo_without_vulkan_still_simulates_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let no_vulkan = |cmd: &mut Command| {
        cmd.env("VK_DRIVER_FILES", "/nonexistent/icd.json")
            .env("VK_ICD_FILENAMES", "/nonexistent/icd.json");
    };
    let mut cmd = haptwin();
    cmd.args(["demo", "--seconds", "0.5", "--json", "--out"])
        .arg(dir.path());
    no_vulkan(&mut cmd);
    let j = json_of(&cmd.output().unwrap());
    assert_eq!(j["ticks"], 500);
    assert_eq!(j["render"]["status"], "skipped");
    assert!(
        j["render"]["reason"].as_str().unwrap().len() > 10,
        "{}",
        j["render"]
    );
    assert_eq!(j["frames_rendered"], 0);
    assert!(SessionLog::open(Path::new(j["log_path"].as_str().unwrap())).is_ok());

    // --require-render fails before anything is simulated or recorded.
    let required = tempfile::tempdir().unwrap();
    let mut cmd = haptwin();
    cmd.args(["demo", "--seconds", "30", "--require-render", "--out"])
        .arg(required.path());
    no_vulkan(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--require-render"), "{err}");
    assert!(
        !required.path().join("session.htlog").exists(),
        "nothing should have been recorded"
    );
}

#[test]
fn bad_flags_and_values_fail_with_a_message() {
    for args in [
        &["demo", "--bogus"][..],
        &["demo", "--seconds", "abc"],
        &["demo", "--seconds", "-1"],
        &["demo", "--seconds", "0"],
        &["demo", "--fps", "100000"],
        &["demo", "--require-render", "--no-render"],
        &["frobnicate"],
        &["doctor", "--timer-seconds", "nan"],
    ] {
        let out = haptwin().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} should be a usage error"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "{args:?}: {err}");
    }
}

#[test]
fn log_command_reads_a_log_and_flags_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = haptwin()
        .args([
            "demo",
            "--seconds",
            "0.5",
            "--no-render",
            "--no-realtime",
            "--json",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let log_path = std::path::PathBuf::from(json_of(&out)["log_path"].as_str().unwrap());
    let out = haptwin()
        .arg("log")
        .arg(&log_path)
        .arg("--json")
        .output()
        .unwrap();
    let j = json_of(&out);
    assert_eq!(j["records"], 500);
    assert_eq!(j["end"]["stop_reason"], "completed");
    assert!(j["damage"].is_null());

    let bytes = std::fs::read(&log_path).unwrap();
    let cut = dir.path().join("cut.htlog");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let out = haptwin().arg("log").arg(&cut).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "a damaged log exits 3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DAMAGED"), "{text}");
    assert!(text.contains("recovered"), "{text}");
}

#[test]
fn bench_tissue_reports_speed_and_accuracy() {
    let out = haptwin()
        .args([
            "bench",
            "tissue",
            "--json",
            "--steps",
            "20",
            "--max-tets",
            "1000",
            "--finest-bar",
            "4",
        ])
        .output()
        .unwrap();
    let j = json_of(&out);
    let sizes = j["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 1, "only the 1k block fits --max-tets 1000");
    let row = &sizes[0];
    assert_eq!(row["tets"], 1000);
    assert_eq!(row["steps"], 20);
    for key in ["p50", "p99"] {
        assert!(row["step_us"][key].as_f64().unwrap() > 0.0);
    }
    assert!(row["tets_per_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(row["inverted_tets"], 0);
    let a = &j["accuracy"];
    let bars = a["cantilever"].as_array().unwrap();
    assert_eq!(bars.len(), 2, "2 and 4 cells across");
    assert_eq!(bars[1]["cells_across"], 4);
    assert!(bars.iter().all(|b| b["settled"].as_bool().unwrap()));
    assert_eq!(row["cantilever_error_pct"], bars[1]["error_pct"]);
    assert_eq!(a["cantilever_error_pct"], bars[1]["error_pct"]);
    assert_eq!(a["hertz"].as_array().unwrap().len(), 3);
    assert!(a["stretch_nu_045"]["poisson_ratio"].as_f64().unwrap() > 0.0);
    assert_eq!(j["config"]["substeps"], 2);
    assert!(j["anchors"].is_null(), "no 20k block at --max-tets 1000");
}

#[test]
fn missing_log_is_a_clear_error() {
    let out = haptwin()
        .args(["log", "/nonexistent/x.htlog"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/x.htlog"), "{err}");
}

fn stop_with(signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let child = haptwin()
        .args([
            "demo",
            "--seconds",
            "60",
            "--no-render",
            "--no-realtime",
            "--json",
            "--out",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log_path = dir.path().join("session.htlog");
    // Wait until ticks are being recorded (the log grows past its header).
    let start = Instant::now();
    while std::fs::metadata(&log_path).map_or(0, |m| m.len()) < 20_000 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the demo never started recording"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let out = child.wait_with_output().unwrap();
    let j = json_of(&out);
    assert_eq!(j["stop_reason"], "interrupted");
    assert_eq!(j["final_force_n"], serde_json::json!([0.0, 0.0, 0.0]));
    assert!(j["ticks"].as_u64().unwrap() < 60_000);
    let log = SessionLog::open(&log_path).unwrap();
    assert!(log.damage.is_none());
    assert_eq!(log.end.as_ref().unwrap().stop_reason, "interrupted");
    assert_eq!(log.records.len() as u64, j["ticks"].as_u64().unwrap());
    let last = log.records.last().unwrap();
    assert_eq!(last.force_out_in_world_n, [0.0; 3]);
    assert_ne!(last.flags & haptwin::bus::tick_flags::STOPPING, 0);
}

#[test]
fn sigterm_zeroes_force_flushes_the_log_and_exits_cleanly() {
    stop_with(libc::SIGTERM);
}

#[test]
fn sigint_zeroes_force_flushes_the_log_and_exits_cleanly() {
    stop_with(libc::SIGINT);
}

#[test]
fn doctor_reports_vulkan_timer_and_the_rest() {
    let out = haptwin()
        .args(["doctor", "--json", "--timer-seconds", "0.5"])
        .output()
        .unwrap();
    let j = json_of(&out);
    assert_eq!(j["timer"]["ticks"], 500);
    assert!(j["timer"]["lateness_us"]["p99"].is_number());
    assert!(
        !j["vulkan"]["devices"].as_array().unwrap().is_empty(),
        "no Vulkan device: run scripts/install-deps.sh ({})",
        j["vulkan"]
    );
    // No OpenXR runtime here: it must say why rather than be silent.
    assert!(j["openxr"]["runtime"].is_string() || j["openxr"]["error"].is_string());
    assert!(j["hid"]["devices"].is_array());
    assert!(j["realtime"]["sched_fifo"]["status"].is_string());
}

#[test]
fn no_arguments_runs_the_demo_and_says_where_outputs_went() {
    let dir = tempfile::tempdir().unwrap();
    let out = haptwin()
        .current_dir(dir.path())
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("out/demo/session.htlog"), "{text}");
    // The default scenario's whole scripted performance, then its score and report.
    assert!(text.contains("completed: 8"), "{text}");
    assert!(text.contains("score (palpation):"), "{text}");
    assert!(text.contains("PASS against palpation"), "{text}");
    assert!(text.contains("out/demo/report.html"), "{text}");
    assert!(text.contains("dashboard: stored as session"), "{text}");
    for f in ["session.htlog", "score.json", "report.html"] {
        assert!(dir.path().join("out/demo").join(f).exists(), "{f}");
    }
}

/// `haptwin devices --json` lists what HID offers (on these machines: nothing) and exits 0,
/// naming the known profiles and a udev rules file that exists.
#[test]
fn devices_lists_hid_and_profiles() {
    let out = haptwin().args(["devices", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let j = json_of(&out);
    assert!(j["hid"]["error"].is_null(), "{j}");
    for d in j["hid"]["devices"].as_array().unwrap() {
        assert!(d["vid_pid"].as_str().unwrap().contains(':'));
        assert!(d["accessible"].is_boolean());
        assert_eq!(d["fix"].is_null(), d["accessible"].as_bool().unwrap());
    }
    let profiles: Vec<&str> = j["known_profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["profile"].as_str().unwrap())
        .collect();
    assert_eq!(profiles, ["woodenhaptics", "polhem"]);
    let rules =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(j["udev_rules"].as_str().unwrap());
    assert!(rules.is_file(), "{}", rules.display());
    let text = haptwin().arg("devices").output().unwrap();
    assert_eq!(text.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&text.stdout).contains("udev rules"));
}

/// `haptwin demo --device emulated:woodenhaptics --json` runs the palpation end to end through
/// the WoodenHaptics byte protocol and kinematics; an unknown device is a usage error.
#[test]
fn demo_runs_on_the_emulated_woodenhaptics() {
    demo_runs_on_an_emulated_arm("emulated:woodenhaptics", "WoodenHaptics 1.5 (emulated", 5.0);
    let bad = haptwin()
        .args(["demo", "--device", "falcon", "--no-render"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("emulated:woodenhaptics"));
}

#[test]
fn demo_runs_on_the_emulated_polhem() {
    demo_runs_on_an_emulated_arm("emulated:polhem", "Haptikfabriken Polhem (emulated", 6.0);
}

fn demo_runs_on_an_emulated_arm(device: &str, name: &str, max_force_n: f64) {
    let dir = tempfile::tempdir().unwrap();
    let out = haptwin()
        .args([
            "demo",
            "--device",
            device,
            "--seconds",
            "2",
            "--no-render",
            "--no-realtime",
            "--json",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let j = json_of(&out);
    assert_eq!(j["ticks"], 2000);
    assert_eq!(j["stop_reason"], "completed");
    assert_eq!(j["fault_ticks"], 0, "{j}");
    // In 2 s the scripted palpation's first press (3.5 mm with the 6 mm probe) is felt
    // through the arm's codec: about 0.35 N.
    let peak = j["peak_force_n"].as_f64().unwrap();
    assert!(
        peak > 0.2 && peak <= max_force_n,
        "peak {peak} N (the device's limit is {max_force_n} N)"
    );
    let dog = &j["watchdog"];
    assert!(dog["trips"].is_u64() && dog["zero_writes"].is_u64(), "{j}");
    let log = haptwin()
        .args(["log", "--json"])
        .arg(dir.path().join("session.htlog"))
        .output()
        .unwrap();
    let l = json_of(&log);
    assert!(
        l.to_string().contains(name),
        "the log must name the device: {l}"
    );
    assert_eq!(
        l["events"],
        serde_json::json!([]),
        "a clean run has no safety events"
    );
    // Its device stream replays to the same forces, bit for bit.
    let again = tempfile::tempdir().unwrap();
    let out = haptwin()
        .args(["demo", "--no-render", "--no-realtime", "--json", "--device"])
        .arg(format!(
            "replay:{}",
            dir.path().join("session.htlog").display()
        ))
        .arg("--out")
        .arg(again.path())
        .output()
        .unwrap();
    let r = json_of(&out);
    assert_eq!(r["ticks"], 2000);
    assert_eq!(r["replay"]["compared"], 2000, "{r}");
    assert_eq!(r["replay"]["mismatches"], 0, "{r}");
    assert_eq!(r["peak_force_n"], j["peak_force_n"]);
}

/// `haptwin calibrate` on the emulated arms finds what is wrong with them, writes files that
/// load back, and refuses what it cannot do with the reason.
#[test]
fn calibrate_finds_how_the_emulated_arms_were_built() {
    for (device, profile, offsets) in [
        ("emulated:woodenhaptics", "woodenhaptics", [37, -52, 18]),
        ("emulated:polhem", "polhem", [0, 0, 0]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = haptwin()
            .args(["calibrate", device, "--json", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        let j = json_of(&out);
        let r = &j["result"];
        assert_eq!(r["device"], profile);
        assert_eq!(r["home_counts_read"], serde_json::json!([37, -52, 18]));
        assert_eq!(r["encoder_offset_counts"], serde_json::json!(offsets));
        let rms = r["registration"]["residual_rms_m"].as_f64().unwrap();
        assert!(rms < 0.3e-3, "{rms}");
        let e = &j["emulated_truth_error"];
        assert!(e["translation_m"].as_f64().unwrap() < 0.5e-3, "{e}");
        assert!(e["rotation_deg"].as_f64().unwrap() < 0.2, "{e}");
        assert!(e["force_scale"].as_f64().unwrap().abs() < 0.02, "{e}");
        let cal = std::fs::read_to_string(dir.path().join(format!("{profile}.toml"))).unwrap();
        assert!(cal.contains(&format!("device = \"{profile}\"")));
        assert!(dir
            .path()
            .join(format!("{profile}-registration.toml"))
            .exists());
    }
    // A fixture of collinear points cannot register anything.
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("line.toml");
    std::fs::write(
        &fixture,
        "format_version = 1\ndescription = \"a ruler\"\n\
         points_m = [[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], [0.02, 0.0, 0.0]]\n",
    )
    .unwrap();
    let out = haptwin()
        .args(["calibrate", "emulated:woodenhaptics", "--fixture"])
        .arg(&fixture)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("collinear"), "{err}");
    // No device plugged in: says so, with the way to check.
    let out = haptwin()
        .args(["calibrate", "woodenhaptics", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("haptwin devices"), "{err}");
}

/// `haptwin bench haptic --json` runs the bare timer and the whole loop on the emulated
/// WoodenHaptics and reports them side by side (figures only; nothing about them is asserted).
#[test]
fn bench_haptic_reports_both_loops() {
    let dir = tempfile::tempdir().unwrap();
    let out = haptwin()
        .args([
            "bench",
            "haptic",
            "--json",
            "--seconds",
            "1",
            "--no-realtime",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let j = json_of(&out);
    assert_eq!(j["bare_timer"]["ticks"], 1000);
    assert_eq!(j["haptic"]["ticks"], 1000);
    assert_eq!(j["haptic"]["fault_ticks"], 0);
    for key in ["p50", "p99", "max"] {
        assert!(j["haptic"]["tick_work_us"][key].as_f64().unwrap() > 0.0);
        assert!(j["bare_timer"]["lateness_us"][key].is_number());
    }
    assert!(j["lateness_p99_ratio"].is_number() || j["lateness_p99_ratio"].is_null());
    assert!(j["case"].as_str().unwrap().contains("WoodenHaptics"));
    assert!(dir.path().join("session.htlog").is_file());
}
