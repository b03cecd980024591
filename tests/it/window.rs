//! The desktop window display (`haptwin run --display window`) under a real X server: Xvfb,
//! with Mesa lavapipe presenting through the X11 surface, the keyboard driven by `xdotool`.
//!
//! Contract: these tests need `Xvfb`, `xdotool` and `xwd` (and Vulkan, as the renderer tests do);
//! when any is missing they FAIL (never skip) and say to run `scripts/install-deps.sh`. Each
//! test starts its own Xvfb on a display number the server picks itself (`-displayfd`), kills
//! it when done, and gives `DISPLAY` only to its child processes (the test process's own
//! environment is never changed). Assertions are on what the run recorded (events, publishes,
//! the tool target, validation counts), never on wall-clock timing.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use haptwin::haptics::pointer::POINTER_START_IN_WORLD_M;

const HINT: &str = "the window tests need Xvfb, xdotool, xwd and Vulkan (lavapipe, validation layers): run scripts/install-deps.sh";

/// Longest any one step (the server starting, the window appearing, the run ending) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "`{tool}` is not installed; {HINT}");
}

/// A private X server, killed when dropped.
struct Xvfb {
    child: Child,
    display: String,
}

/// Serialises the start of this binary's X servers (see [`Xvfb::start`]).
static XVFB_START: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Xvfb {
    /// A server on the first free display number from 100 (numbers a desktop does not use).
    /// Numbers are chosen here, one start at a time: Xvfb's own search (`-displayfd` alone)
    /// tries the numbers of running servers first, and doing so disturbs them for a moment,
    /// which made another test's client fail to connect now and then.
    fn start() -> Self {
        require("Xvfb");
        let _one_at_a_time = XVFB_START.lock().unwrap_or_else(|e| e.into_inner());
        for number in 100..200u32 {
            let taken = Path::new(&format!("/tmp/.X{number}-lock")).exists()
                || Path::new(&format!("/tmp/.X11-unix/X{number}")).exists();
            if taken {
                continue;
            }
            let display = format!(":{number}");
            // -displayfd: the server writes its number once it accepts connections (no
            // polling for the socket). -noreset: an X server resets when its last client
            // leaves, refusing connections for a moment; the xdotool calls below come and go
            // while haptwin connects.
            let mut child = Command::new("Xvfb")
                .args([
                    display.as_str(),
                    "-displayfd",
                    "1",
                    "-noreset",
                    "-screen",
                    "0",
                    "1024x768x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start Xvfb: {e}; {HINT}"));
            let stdout = child.stdout.take().expect("piped stdout");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            let line = rx.recv_timeout(STEP_TIMEOUT).unwrap_or_default();
            if line.trim() == number.to_string() {
                return Self { child, display };
            }
            // Taken by another process meanwhile, or the server failed: try the next one.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("Xvfb did not start on any display from :100 to :199; {HINT}");
    }

    /// A command that talks to this server only.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DISPLAY", &self.display)
            .env_remove("WAYLAND_DISPLAY");
        c
    }

    /// Runs `xdotool args` against this server and returns its stdout.
    fn xdotool(&self, args: &[&str]) -> String {
        let out = self
            .command("xdotool")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run xdotool: {e}; {HINT}"));
        assert!(
            out.status.success(),
            "xdotool {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Xvfb {
    /// The window's pixels (`xwd -id`).
    fn screenshot(&self, id: &str) -> Screenshot {
        require("xwd");
        let out = self
            .command("xwd")
            .args(["-silent", "-id", id])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run xwd: {e}; {HINT}"));
        assert!(
            out.status.success(),
            "xwd failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Screenshot::from_xwd(&out.stdout)
    }
}

impl Xvfb {
    /// Ends the server now, as a logout would: SIGTERM, so that it closes its clients'
    /// connections and removes its lock file and socket (a server killed outright leaves them
    /// behind, and another test's server starting at the same moment may take them over);
    /// SIGKILL if it is still there after a few seconds.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: kill(2) on our own child, which has not been reaped yet.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let start = Instant::now();
            while matches!(self.child.try_wait(), Ok(None)) {
                if start.elapsed() > Duration::from_secs(5) {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.wait();
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kills a child still running when dropped (a failed assertion must not leave it behind).
struct Reaped(Option<Child>);

impl Reaped {
    fn running(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits for the child to end (killing it after `timeout`) and returns its output.
    fn finish(&mut self, timeout: Duration) -> Output {
        let mut child = self.0.take().expect("child");
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let readers = [
            std::thread::spawn(move || read_all(out.as_mut())),
            std::thread::spawn(move || read_all(err.as_mut())),
        ];
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                break child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let [o, e] = readers.map(|r| r.join().unwrap_or_default());
        Output {
            status,
            stdout: o,
            stderr: e,
        }
    }
}

fn read_all<R: Read>(r: Option<&mut R>) -> Vec<u8> {
    let mut v = Vec::new();
    if let Some(r) = r {
        let _ = r.read_to_end(&mut v);
    }
    v
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
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
            "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn run_args<'a>(out: &'a Path, display: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "run",
        "--display",
        display,
        "--case",
        "block",
        "--json",
        "--no-realtime",
        "--out",
        out.to_str().expect("utf-8 temp path"),
    ];
    a.extend_from_slice(extra);
    a
}

/// Starts `haptwin args` on `x` and waits for its window to be mapped (which happens only
/// once Vulkan and the swapchain are ready); returns the process and the window's id.
fn open_window(x: &Xvfb, args: &[&str]) -> (Reaped, String) {
    let mut run = Reaped(Some(
        x.command(env!("CARGO_BIN_EXE_haptwin"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn haptwin"),
    ));
    let start = Instant::now();
    let id = loop {
        let found = x
            .command("xdotool")
            .args(["search", "--onlyvisible", "--name", "haptwin"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run xdotool: {e}; {HINT}"));
        let ids = String::from_utf8_lossy(&found.stdout).into_owned();
        if let Some(id) = ids.split_whitespace().next() {
            break id.to_owned();
        }
        if !run.running() || start.elapsed() > STEP_TIMEOUT {
            let o = run.finish(Duration::from_secs(5));
            panic!(
                "no visible haptwin window on {} ({}):\nstdout:\n{}\nstderr:\n{}\n{HINT}",
                x.display,
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (run, id)
}

/// The whole window path on a real X server: the window opens (shown once Vulkan is ready),
/// holding A moves the tool left through the pointer device, a resize recreates the
/// swapchain, Esc closes the window and ends the session early, and the validation layers
/// say nothing from start to teardown.
#[test]
fn the_window_shows_the_rehearsal_and_the_keyboard_moves_the_tool() {
    require("xdotool");
    require("xwd");
    let x = Xvfb::start();
    let out = tempfile::tempdir().unwrap();
    // Long enough never to end by itself: Esc must end it (closed_by_user below).
    let args = run_args(
        out.path(),
        "window",
        &[
            "--seconds",
            "60",
            "--validation",
            "--width",
            "640",
            "--height",
            "480",
            "--fps",
            "60",
        ],
    );
    let (mut run, id) = open_window(&x, &args);
    let name = x.xdotool(&["getwindowname", &id]);
    assert_eq!(name.trim(), haptwin::window::WINDOW_TITLE);
    // No window manager: give the window the keyboard focus and the pointer ourselves.
    x.xdotool(&["windowfocus", "--sync", &id]);
    x.xdotool(&["mousemove", "--window", &id, "320", "240"]);
    x.xdotool(&["keydown", "a"]);
    std::thread::sleep(Duration::from_millis(1500));
    x.xdotool(&["keyup", "a"]);
    x.xdotool(&["windowsize", &id, "800", "600"]);
    std::thread::sleep(Duration::from_millis(500));
    // What the window shows, as the X server has it: the spectator view at the new size.
    let shot = x.screenshot(&id);
    x.xdotool(&["key", "Escape"]);
    let o = run.finish(STEP_TIMEOUT);
    let v = json_of(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);

    assert_eq!(v["display"]["chosen"], "window", "{v:#}");
    let r = &v["render"];
    assert_eq!(r["status"], "rendered", "{r:#}\n{HINT}");
    assert_eq!(r["display"], "window");
    assert_eq!(r["views"], 1);
    let frames = v["frames_rendered"].as_u64().unwrap();
    assert!(frames >= 10, "only {frames} frames presented");
    let val = &r["validation"];
    assert_eq!(val["errors"], 0, "validation errors: {val:#}");
    assert_eq!(val["warnings"], 0, "validation warnings: {val:#}");
    let d = &r["details"];
    assert_eq!(d["presents"].as_u64(), Some(frames), "{d:#}");
    assert!(d["key_events"].as_u64().unwrap() >= 3, "{d:#}");
    assert!(d["pointer_publishes"].as_u64().unwrap() > 0, "{d:#}");
    // A = left: the default camera looks down -z from +z, so the tool went towards -x,
    // 1.5 s at 5 cm/s (less what the first frames took), and nowhere else.
    let t: Vec<f64> = (0..3)
        .map(|i| d["tool_target_m"][i].as_f64().unwrap())
        .collect();
    let s = POINTER_START_IN_WORLD_M;
    assert!(t[0] < s[0] - 0.01, "the tool did not move left: {t:?}");
    assert!(
        (t[1] - s[1]).abs() < 1e-9 && (t[2] - s[2]).abs() < 1e-9,
        "{t:?}"
    );
    // The resize went through: the swapchain was made again at the new size.
    assert_eq!(d["window_size"], serde_json::json!([800, 600]), "{d:#}");
    assert!(d["swapchain_recreations"].as_u64().unwrap() >= 1, "{d:#}");
    assert_eq!(d["swapchain_format"], "B8G8R8A8_SRGB", "{d:#}");
    // Esc closed the window and ended the session (60 s were asked for).
    assert_eq!(d["closed_by_user"], true, "{d:#}");
    assert_eq!(d["ended"], "closed", "{d:#}");
    assert_eq!(v["stop_reason"], "ended on the display", "{v:#}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_shows_the_block(&shot);
}

/// The window's picture: background at the corners, tissue where the block's top centre
/// projects from the (untouched) default camera.
fn assert_shows_the_block(shot: &Screenshot) {
    assert_eq!(
        (shot.width, shot.height),
        (800, 600),
        "the window was not resized"
    );
    for (x, y) in [(1, 1), (798, 1), (1, 598), (798, 598)] {
        assert_eq!(
            shot.rgb(x, y),
            haptwin::render::BACKGROUND_SRGB,
            "corner ({x}, {y}) is not background"
        );
    }
    let cam = haptwin::render::Camera::default_for_block();
    let [cx, cy] = cam
        .view(800.0 / 600.0)
        .unwrap()
        .project(800, 600, [0.0, 0.0, 0.0])
        .unwrap();
    let [r, g, b] = shot.rgb(cx as u32, cy as u32).map(i32::from);
    assert!(
        r > g + 40 && r > b + 40,
        "no tissue at the block's centre ({cx}, {cy}): {:?}",
        [r, g, b]
    );
}

/// A window's pixels, read with `xwd`.
struct Screenshot {
    width: u32,
    height: u32,
    /// 0x00RRGGBB per pixel, top row first.
    pixels: Vec<u32>,
}

impl Screenshot {
    fn rgb(&self, x: u32, y: u32) -> [u8; 3] {
        let p = self.pixels[(y * self.width + x) as usize];
        [(p >> 16) as u8, (p >> 8) as u8, p as u8]
    }

    /// Decodes an XWD dump of a 24/32-bit TrueColor window (what Xvfb's 24-bit screen gives).
    fn from_xwd(d: &[u8]) -> Self {
        assert!(d.len() >= 100, "xwd dump too short: {} bytes", d.len());
        let f = |i: usize| u32::from_be_bytes([d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]]);
        let (header, width, height) = (f(0) as usize, f(4), f(5));
        let (lsb_first, bits, bytes_per_line) = (f(7) == 0, f(11), f(12) as usize);
        let masks = [f(14), f(15), f(16)];
        let colours = f(19) as usize;
        assert_eq!(bits, 32, "xwd: {bits} bits per pixel");
        let start = header + 12 * colours;
        assert!(
            d.len() >= start + bytes_per_line * height as usize,
            "xwd dump truncated"
        );
        let mut pixels = Vec::with_capacity((width * height) as usize);
        for y in 0..height as usize {
            for x in 0..width as usize {
                let o = start + y * bytes_per_line + 4 * x;
                let b = [d[o], d[o + 1], d[o + 2], d[o + 3]];
                let p = if lsb_first {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b)
                };
                let [r, g, bl] = masks.map(|m| (p & m) >> m.trailing_zeros());
                pixels.push((r << 16) | (g << 8) | bl);
            }
        }
        Self {
            width,
            height,
            pixels,
        }
    }
}

/// Without a desktop, `--display window` says why plainly: it fails with `--require-render`,
/// goes on without pictures otherwise, and `auto` falls back to headless.
#[test]
fn without_a_desktop_the_window_display_fails_cleanly() {
    let out = tempfile::tempdir().unwrap();
    let haptwin = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_haptwin"));
        c.env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            // No OpenXR runtime either, whatever the machine has installed.
            .env(
                "XR_RUNTIME_JSON",
                "/nonexistent/haptwin-test-no-runtime.json",
            )
            .stdin(Stdio::null());
        c
    };
    let o = haptwin()
        .args(run_args(
            out.path(),
            "window",
            &["--seconds", "1", "--require-render"],
        ))
        .output()
        .expect("run haptwin");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "it should fail: {stderr}");
    assert!(
        stderr.contains("no DISPLAY or WAYLAND_DISPLAY set"),
        "unclear message: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let v = json_of(
        &haptwin()
            .args(run_args(out.path(), "window", &["--seconds", "1"]))
            .output()
            .expect("run haptwin"),
    );
    assert_eq!(v["render"]["status"], "skipped", "{v:#}");
    let reason = v["render"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no DISPLAY or WAYLAND_DISPLAY set"),
        "{reason}"
    );

    // An X display nobody serves: the same, naming the socket it tried.
    let o = haptwin()
        .env("DISPLAY", ":59999")
        .args(run_args(
            out.path(),
            "window",
            &["--seconds", "1", "--require-render"],
        ))
        .output()
        .expect("run haptwin");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "it should fail: {stderr}");
    assert!(stderr.contains("/tmp/.X11-unix/X59999"), "{stderr}");

    let v = json_of(
        &haptwin()
            .args(run_args(out.path(), "auto", &["--seconds", "1"]))
            .output()
            .expect("run haptwin"),
    );
    assert_eq!(v["display"]["chosen"], "headless", "{v:#}");
    let why = v["display"]["why"].as_str().unwrap();
    assert!(why.contains("no DISPLAY or WAYLAND_DISPLAY set"), "{why}");
}

/// The X server going away (a crash, a logout) ends the window, not the process: the session
/// runs to its end and reports why the pictures stopped.
#[test]
fn losing_the_x_server_ends_the_window_but_not_the_session() {
    require("xdotool");
    let mut x = Xvfb::start();
    let out = tempfile::tempdir().unwrap();
    let args = run_args(
        out.path(),
        "window",
        &["--seconds", "4", "--width", "320", "--height", "240"],
    );
    let (mut run, _id) = open_window(&x, &args);
    x.stop();
    let o = run.finish(STEP_TIMEOUT);
    let v = json_of(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(v["stop_reason"], "completed", "{v:#}");
    let r = &v["render"];
    let why = r["note"]
        .as_str()
        .or(r["reason"].as_str())
        .unwrap_or_default();
    assert!(why.contains("the window stopped after"), "{r:#}");
}

/// `--frames N`: the window ends the run once N frames are on the screen.
#[test]
fn the_window_ends_the_run_once_the_frames_asked_for_are_shown() {
    require("xdotool");
    let x = Xvfb::start();
    let out = tempfile::tempdir().unwrap();
    let args = run_args(
        out.path(),
        "window",
        &[
            "--seconds",
            "60",
            "--frames",
            "12",
            "--width",
            "320",
            "--height",
            "240",
        ],
    );
    let mut run = Reaped(Some(
        x.command(env!("CARGO_BIN_EXE_haptwin"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn haptwin"),
    ));
    let o = run.finish(STEP_TIMEOUT);
    let v = json_of(&o);
    assert_eq!(v["frames_rendered"], 12, "{v:#}");
    assert_eq!(v["render"]["details"]["ended"], "frames", "{v:#}");
    assert_eq!(v["stop_reason"], "ended on the display", "{v:#}");
}
