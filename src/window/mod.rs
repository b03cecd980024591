//! The desktop window display: the instructor's spectator view of the rehearsal in a winit
//! window, drawn by the Vulkan [`Renderer`] and presented through a swapchain, with mouse and
//! keyboard control of the tool for trying the simulator without a haptic device.
//!
//! Contract:
//! - everything runs on the **render thread** (named `render`) that [`spawn_window_loop`]
//!   starts: the winit event loop (pumped, on a thread that is not the main one), the
//!   window, the renderer and the swapchain. It reads the haptic thread's snapshots from the
//!   triple buffer and publishes the tool target through the pointer's triple buffer
//!   ([`crate::haptics::pointer`]); neither ever waits on the other side, so the haptic
//!   thread is never blocked by the window, whatever the window system or GPU does;
//! - it owns the event loop, the window, the [`Renderer`] (which owns the Vulkan instance and
//!   device) and the [`swapchain::Swapchain`] (with the surface and semaphores), and destroys
//!   them in that reverse order: swapchain and surface first, then the renderer
//!   ([`Renderer::finish`], whose validation report covers the whole run), then the window;
//! - the window is shown only once Vulkan and the swapchain are ready, then the thread says
//!   so on its [`RenderReady`] channel (`Ok(device name)`); when there is no desktop or
//!   Vulkan fails it sends `Err(reason)`, records it in [`RenderLoopReport::skipped`] and
//!   ends; it never panics out (a panic inside is caught and reported the same way);
//! - it renders the newest snapshot every `frame_interval` from an [`OrbitCamera`] that starts
//!   at the configured camera (right drag orbits, the wheel zooms, R resets); with a pointer,
//!   W/S/A/D/Q/E move the tool (Shift: slowly), a left drag moves it in the plane facing the
//!   camera, Space holds the primary button (activate the instrument), M the mark button ([`input`] has the rules);
//! - the loop ends promptly (within about one frame) when `stop` is set; Esc, closing the
//!   window or the `max_frames` being presented ends it too and sets `end_session` (when
//!   given), so the run ends with the window. A window that fails (the X server went away,
//!   the device was lost) ends alone and the session runs on, as without pictures;
//! - on X11 it replaces Xlib's process-wide I/O error handler (whose default is `exit(1)`)
//!   so that a lost X server ends the window, not the process (`survive_x_connection_loss`);
//! - winit allows one event loop per process: a second window in the same process fails
//!   (cleanly, with the reason).

pub mod input;
mod probe;
pub mod swapchain;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use raw_window_handle::{HasDisplayHandle, HasWindowHandle};
use winit::application::ApplicationHandler;
use winit::dpi::{PhysicalPosition, PhysicalSize};
use winit::event::{ElementState, MouseButton, MouseScrollDelta, WindowEvent};
use winit::event_loop::{ActiveEventLoop, EventLoop};
use winit::keyboard::{KeyCode, PhysicalKey};
use winit::platform::pump_events::{EventLoopExtPumpEvents, PumpStatus};
use winit::window::{Window, WindowId};

use crate::bus::{Publisher, Subscriber};
use crate::haptics::haptic_loop::SceneSnapshot;
use crate::haptics::pointer::PointerState;
use crate::render::{FrameOutput, RenderError, Renderer, RendererOptions};
use crate::render_loop::{
    ms_percentiles, RenderLoopConfig, RenderLoopReport, RenderReady, SceneBuilder,
};
use crate::stats::Histogram;

pub use input::{HeldKeys, OrbitCamera, ToolControl};
pub use probe::{parse_display, X11Address};
use swapchain::{present_mode_name, Acquired, Swapchain, WindowHooks};

/// The window's title.
pub const WINDOW_TITLE: &str = "haptwin — spectator";
/// Longest wait for the window system to open the window.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the event loop waits for events between two looks at `stop`.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Whether a window can open here, without opening one: `Ok("Wayland display wayland-0")`
/// or `Ok("X11 display :99")` when a compositor or X server answers on its socket; otherwise
/// why not (`Err("no DISPLAY or WAYLAND_DISPLAY set")`, `Err("DISPLAY=:5: no X server at
/// /tmp/.X11-unix/X5 (...)")`). Cheap (one connection per candidate); never panics.
pub fn probe() -> Result<String, String> {
    probe::probe()
}

/// Starts the window's render thread (named `render`). It opens the window, sets Vulkan up
/// and says how that went on the returned [`RenderReady`] channel, then shows the newest
/// snapshot every `cfg.frame_interval` until `stop` is set or the user closes the window
/// (Esc, the close button: then `cfg.end_session` is set). With `pointer`, the keyboard and
/// mouse move the tool and each change is published there. See the module docs.
pub fn spawn_window_loop(
    snapshots: Subscriber<SceneSnapshot>,
    stop: Arc<AtomicBool>,
    cfg: RenderLoopConfig,
    pointer: Option<Publisher<PointerState>>,
) -> std::io::Result<(JoinHandle<RenderLoopReport>, RenderReady)> {
    let (ready_tx, ready_rx) = crossbeam::channel::bounded(1);
    let handle = thread::Builder::new()
        .name("render".into())
        .spawn(move || window_thread(snapshots, stop, cfg, pointer, ready_tx))?;
    Ok((handle, ready_rx))
}

type ReadyTx = crossbeam::channel::Sender<Result<String, String>>;

fn window_thread(
    snapshots: Subscriber<SceneSnapshot>,
    stop: Arc<AtomicBool>,
    cfg: RenderLoopConfig,
    pointer: Option<Publisher<PointerState>>,
    ready: ReadyTx,
) -> RenderLoopReport {
    let mut report = RenderLoopReport::new(None, 1);
    report.display = "window".into();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        run(snapshots, &stop, &cfg, pointer, &ready, &mut report)
    }));
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(reason),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Some(format!("the window thread failed: {what}"))
        }
    };
    if let Some(reason) = failure {
        // Bounded(1) and sent at most once before: never blocks.
        let _ = ready.try_send(Err(reason.clone()));
        report.skipped.get_or_insert(reason);
    }
    report
}

/// What the user did, counted for the report.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    key_events: u64,
    mouse_button_events: u64,
    wheel_events: u64,
    cursor_moves: u64,
    resizes: u64,
    pointer_publishes: u64,
}

/// The winit side: the window, and the input state its events change.
struct App {
    size: PhysicalSize<u32>,
    window: Option<Window>,
    open_error: Option<String>,
    orbit: OrbitCamera,
    tool: ToolControl,
    keys: HeldKeys,
    space: bool,
    /// M held: the mark button (bit 1).
    mark: bool,
    left_drag: bool,
    right_drag: bool,
    cursor: Option<PhysicalPosition<f64>>,
    /// The tool target changed since it was last published.
    tool_moved: bool,
    resized: bool,
    close_requested: bool,
    counts: Counts,
}

impl App {
    fn new(cfg: &RenderLoopConfig) -> Self {
        Self {
            size: PhysicalSize::new(cfg.options.width, cfg.options.height),
            window: None,
            open_error: None,
            orbit: OrbitCamera::new(cfg.camera),
            tool: ToolControl::default(),
            keys: HeldKeys::default(),
            space: false,
            mark: false,
            left_drag: false,
            right_drag: false,
            cursor: None,
            tool_moved: false,
            resized: false,
            close_requested: false,
            counts: Counts::default(),
        }
    }

    /// The window's size as its last `Resized` said (asking the window would be a round trip
    /// to the X server every frame, and a panic in winit once the server is gone).
    fn window_px(&self) -> (u32, u32) {
        (self.size.width, self.size.height)
    }

    fn key(&mut self, code: KeyCode, pressed: bool, repeat: bool, synthetic: bool) {
        if !repeat && !synthetic {
            self.counts.key_events += 1;
        }
        let k = &mut self.keys;
        match code {
            KeyCode::KeyW => k.forward = pressed,
            KeyCode::KeyS => k.back = pressed,
            KeyCode::KeyA => k.left = pressed,
            KeyCode::KeyD => k.right = pressed,
            KeyCode::KeyQ => k.down = pressed,
            KeyCode::KeyE => k.up = pressed,
            KeyCode::Space => self.space = pressed,
            KeyCode::KeyM => self.mark = pressed,
            KeyCode::KeyR if pressed && !repeat => self.orbit.reset(),
            KeyCode::Escape if pressed && !synthetic => self.close_requested = true,
            _ => {}
        }
    }

    fn cursor_moved(&mut self, to: PhysicalPosition<f64>) {
        self.counts.cursor_moves += 1;
        let from = self.cursor.replace(to);
        let Some(from) = from else { return };
        let (dx, dy) = (to.x - from.x, to.y - from.y);
        if self.right_drag {
            self.orbit.orbit(dx as f32, dy as f32);
        }
        if self.left_drag {
            let (_, h) = self.window_px();
            let camera = self.orbit.camera();
            self.tool_moved |= self.tool.drag(dx, dy, &camera, f64::from(h));
        }
    }
}

impl ApplicationHandler for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_some() || self.open_error.is_some() {
            return;
        }
        // Hidden until Vulkan and the swapchain are ready (see the module docs).
        let attrs = Window::default_attributes()
            .with_title(WINDOW_TITLE)
            .with_inner_size(self.size)
            .with_visible(false);
        match event_loop.create_window(attrs) {
            Ok(w) => {
                self.size = w.inner_size();
                self.window = Some(w);
            }
            Err(e) => self.open_error = Some(format!("cannot open the window: {e}")),
        }
    }

    fn window_event(&mut self, _event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested | WindowEvent::Destroyed => self.close_requested = true,
            WindowEvent::Resized(size) => {
                self.size = size;
                self.counts.resizes += 1;
                self.resized = true;
            }
            WindowEvent::Focused(false) => {
                // Keys released while another window has the focus never arrive.
                self.keys = HeldKeys::default();
                self.space = false;
                self.mark = false;
                self.left_drag = false;
                self.right_drag = false;
            }
            WindowEvent::ModifiersChanged(m) => self.keys.slow = m.state().shift_key(),
            WindowEvent::KeyboardInput {
                event,
                is_synthetic,
                ..
            } => {
                if let PhysicalKey::Code(code) = event.physical_key {
                    self.key(
                        code,
                        event.state == ElementState::Pressed,
                        event.repeat,
                        is_synthetic,
                    );
                }
            }
            WindowEvent::MouseInput { state, button, .. } => {
                self.counts.mouse_button_events += 1;
                let pressed = state == ElementState::Pressed;
                match button {
                    MouseButton::Left => self.left_drag = pressed,
                    MouseButton::Right => self.right_drag = pressed,
                    _ => {}
                }
            }
            WindowEvent::CursorMoved { position, .. } => self.cursor_moved(position),
            WindowEvent::CursorLeft { .. } => self.cursor = None,
            WindowEvent::MouseWheel { delta, .. } => {
                self.counts.wheel_events += 1;
                let lines = match delta {
                    MouseScrollDelta::LineDelta(_, y) => y,
                    // About 40 px per wheel line.
                    MouseScrollDelta::PixelDelta(p) => (p.y / 40.0) as f32,
                };
                self.orbit.zoom(lines);
            }
            _ => {}
        }
    }
}

/// Opens the window and runs the loop; `Err` is the reason the display could not start (or
/// stopped), for the ready channel and the report.
fn run(
    mut snapshots: Subscriber<SceneSnapshot>,
    stop: &AtomicBool,
    cfg: &RenderLoopConfig,
    mut pointer: Option<Publisher<PointerState>>,
    ready: &ReadyTx,
    report: &mut RenderLoopReport,
) -> Result<(), String> {
    let desktop = probe().map_err(|e| format!("no desktop to open a window on: {e}"))?;
    let mut builder = EventLoop::builder();
    // Not the main thread. (The X11 and Wayland builders set the same flag: this covers both.)
    winit::platform::x11::EventLoopBuilderExtX11::with_any_thread(&mut builder, true);
    let mut event_loop = builder
        .build()
        .map_err(|e| format!("cannot start the window system ({desktop}): {e}"))?;
    let mut app = App::new(cfg);
    let opening = Instant::now();
    while app.window.is_none() {
        if let Some(e) = app.open_error.take() {
            return Err(e);
        }
        if stop.load(Ordering::Acquire) {
            return Err("stopped before the window opened".into());
        }
        if opening.elapsed() > OPEN_TIMEOUT {
            return Err(format!(
                "the window did not open within {} s",
                OPEN_TIMEOUT.as_secs()
            ));
        }
        if let PumpStatus::Exit(code) = event_loop.pump_app_events(Some(POLL_INTERVAL), &mut app) {
            return Err(format!("the window system ended the event loop ({code})"));
        }
    }
    let Some(window) = app.window.as_ref() else {
        return Err("the window did not open".into());
    };
    let handles = window
        .display_handle()
        .and_then(|d| window.window_handle().map(|w| (d.as_raw(), w.as_raw())))
        .map_err(|e| format!("the window has no native handles: {e}"))?;
    X_CONNECTION_LOST.store(false, Ordering::Release);
    survive_x_connection_loss(handles.0);
    let hooks = WindowHooks::new(handles.0, handles.1).map_err(|e| e.to_string())?;
    let opts = RendererOptions {
        width: cfg.options.width,
        height: cfg.options.height,
        views: 1,
        samples: cfg.options.samples,
        validation: cfg.options.validation,
        device_filter: cfg.options.device_filter.clone(),
        readback: false,
    };
    let mut renderer = Renderer::new(&opts, &hooks)
        .map_err(|e| format!("no Vulkan rendering in the window: {e}"))?;
    let Some((surface_fn, surface)) = hooks.take_surface() else {
        let _ = renderer.finish();
        return Err("no Vulkan rendering in the window: the surface was not made".into());
    };
    let mut chain = match Swapchain::new(renderer.context(), surface_fn, surface, app.window_px()) {
        Ok(c) => c,
        Err(e) => {
            let _ = renderer.finish();
            return Err(format!("no swapchain for the window: {e}"));
        }
    };
    window.set_visible(true);
    let device = renderer.device_name().to_owned();
    report.device = Some(device.clone());
    let _ = ready.try_send(Ok(device));

    let mut frames = FrameStats::default();
    let outcome = frame_loop(
        &mut event_loop,
        &mut app,
        &mut renderer,
        &mut chain,
        &mut snapshots,
        &mut pointer,
        stop,
        cfg,
        &mut frames,
        report,
    );
    let closed_by_user = matches!(outcome, Ok(LoopEnd::ClosedByUser));
    let ended = match &outcome {
        Ok(LoopEnd::Stopped) => "stop",
        Ok(LoopEnd::ClosedByUser) => "closed",
        Ok(LoopEnd::FramesDone) => "frames",
        Err(_) => "error",
    };
    if matches!(outcome, Ok(LoopEnd::ClosedByUser | LoopEnd::FramesDone)) {
        // The session ends with the window; it need not wait for the teardown below. (A
        // window that fails goes away alone: the session runs on, as without pictures.)
        if let Some(end) = &cfg.end_session {
            end.store(true, Ordering::Release);
        }
    }
    // Teardown, in order: the frames in flight, the swapchain and surface, the renderer
    // (device and instance: its report covers all of it), then the window.
    match renderer.drain() {
        Ok(done) => frames.gpu_of(&done),
        Err(e) => {
            report
                .skipped
                .get_or_insert(format!("finishing frames: {e}"));
        }
    }
    let format = chain.format();
    let present_mode = chain.present_mode();
    let (recreations, presents, skipped_acquires) = (
        chain.recreations(),
        chain.presents(),
        chain.skipped_acquires(),
    );
    chain.destroy(renderer.context());
    let validation = renderer.finish();
    if let Err(e) = &outcome {
        report.skipped = Some(format!(
            "the window stopped after {} frames: {e}",
            report.frames_rendered
        ));
    }
    report.frame_ms = ms_percentiles(&frames.cpu_ns);
    report.gpu_ms = ms_percentiles(&frames.gpu_ns);
    if validation.enabled {
        report.validation = Some(validation.into());
    }
    let c = app.counts;
    let window_px = app.window_px();
    report.details = Some(serde_json::json!({
        "desktop": desktop,
        "title": WINDOW_TITLE,
        "window_size": [window_px.0, window_px.1],
        "render_size": [cfg.options.width, cfg.options.height],
        "swapchain_format": format!("{format:?}"),
        "present_mode": present_mode_name(present_mode),
        "swapchain_recreations": recreations,
        "presents": presents,
        "skipped_acquires": skipped_acquires,
        "key_events": c.key_events,
        "mouse_button_events": c.mouse_button_events,
        "wheel_events": c.wheel_events,
        "cursor_moves": c.cursor_moves,
        "resizes": c.resizes,
        "pointer": pointer.is_some(),
        "pointer_publishes": c.pointer_publishes,
        "tool_target_m": app.tool.target_m(),
        "camera_eye_m": app.orbit.camera().eye_m,
        "closed_by_user": closed_by_user,
        "ended": ended,
    }));
    if X_CONNECTION_LOST.load(Ordering::Acquire) {
        // winit panics on a dead connection when it closes the window and display: leave
        // both to the end of the process (a dead connection holds no server resources).
        std::mem::forget(app.window.take());
        std::mem::forget(event_loop);
    } else {
        drop(app.window.take());
        drop(event_loop);
    }
    Ok(())
}

/// Why the frame loop ended (errors are `Err`).
enum LoopEnd {
    /// `stop` was set.
    Stopped,
    /// `max_frames` were presented.
    FramesDone,
    /// Esc, or the window was closed.
    ClosedByUser,
}

#[derive(Default)]
struct FrameStats {
    cpu_ns: Histogram,
    gpu_ns: Histogram,
}

impl FrameStats {
    fn gpu_of(&mut self, done: &[crate::render::CompletedFrame]) {
        for ms in done.iter().filter_map(|f| f.gpu_ms) {
            self.gpu_ns.record((ms * 1e6) as u64);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn frame_loop(
    event_loop: &mut EventLoop<()>,
    app: &mut App,
    renderer: &mut Renderer,
    chain: &mut Swapchain,
    snapshots: &mut Subscriber<SceneSnapshot>,
    pointer: &mut Option<Publisher<PointerState>>,
    stop: &AtomicBool,
    cfg: &RenderLoopConfig,
    frames: &mut FrameStats,
    report: &mut RenderLoopReport,
) -> Result<LoopEnd, RenderError> {
    let mut builder = SceneBuilder::new(cfg.scene.clone());
    let mut have_snapshot = false;
    // Fixed-rate pacing: frame k is due at start + k * frame_interval; a loop that fell
    // more than a frame behind starts counting again from now (no burst of catch-up frames).
    let mut next_due = Instant::now();
    let mut last_input = Instant::now();
    let mut seq = 0u64;
    let mut published_buttons = 0u32;
    loop {
        // Until the first snapshot there is nothing to draw: just wait for events.
        let wait = if have_snapshot {
            next_due.saturating_duration_since(Instant::now())
        } else {
            POLL_INTERVAL
        }
        .min(POLL_INTERVAL);
        if let PumpStatus::Exit(_) = event_loop.pump_app_events(Some(wait), app) {
            return Ok(LoopEnd::ClosedByUser);
        }
        if app.close_requested {
            return Ok(LoopEnd::ClosedByUser);
        }
        if X_CONNECTION_LOST.load(Ordering::Acquire) {
            return Err(RenderError::Target {
                target: "window",
                message: "the connection to the X server was lost".into(),
            });
        }
        if stop.load(Ordering::Acquire) {
            return Ok(LoopEnd::Stopped);
        }
        // Held keys move the tool for the time since the last look.
        let now = Instant::now();
        let dt = now.duration_since(last_input).as_secs_f64();
        last_input = now;
        app.tool_moved |= app.tool.step(&app.keys, app.orbit.heading(), dt);
        let buttons = u32::from(app.space) | u32::from(app.mark) << 1;
        if let Some(p) = pointer.as_mut() {
            if app.tool_moved || buttons != published_buttons {
                seq += 1;
                *p.back_mut() = PointerState {
                    target_in_world_m: app.tool.target_m(),
                    buttons,
                    seq,
                };
                p.publish();
                app.counts.pointer_publishes += 1;
                published_buttons = buttons;
            }
        }
        app.tool_moved = false;
        if std::mem::take(&mut app.resized) {
            chain.mark_stale();
        }

        have_snapshot |= snapshots.update();
        let due = Instant::now() >= next_due;
        if !(have_snapshot && due) {
            continue;
        }
        if let Some(hook) = &cfg.before_frame {
            hook(report.frames_rendered);
        }
        let now = Instant::now();
        next_due += cfg.frame_interval;
        if next_due + cfg.frame_interval < now {
            next_due = now;
        }
        let t0 = Instant::now();
        let frame = renderer.frames_submitted();
        let window_px = app.window_px();
        let (index, ready) = match chain.acquire(renderer.context(), frame, window_px)? {
            Acquired::Image { index, ready } => (index, ready),
            Acquired::Skip => continue,
        };
        let extent = chain.extent();
        let view = app
            .orbit
            .camera()
            .view(extent.width as f32 / extent.height.max(1) as f32)?;
        let scene = builder.build(snapshots.read());
        let done = renderer.render(
            &scene,
            &[view],
            FrameOutput::Present(chain.target(index, ready)),
        )?;
        frames.gpu_of(done.as_slice());
        let presented = chain.presents();
        chain.present(renderer.context(), index)?;
        frames.cpu_ns.record(t0.elapsed().as_nanos() as u64);
        if chain.presents() > presented {
            report.frames_rendered += 1;
        }
        if cfg.max_frames.is_some_and(|m| report.frames_rendered >= m) {
            return Ok(LoopEnd::FramesDone);
        }
    }
}

/// Set when Xlib reported that the connection to the X server broke (see
/// [`survive_x_connection_loss`]).
static X_CONNECTION_LOST: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn x_io_error(_display: *mut std::ffi::c_void) -> std::ffi::c_int {
    X_CONNECTION_LOST.store(true, Ordering::Release);
    0
}

unsafe extern "C" fn x_io_error_exit(
    _display: *mut std::ffi::c_void,
    _data: *mut std::ffi::c_void,
) {
    // Returning (instead of Xlib's default `exit(1)`) leaves the display marked dead: later
    // Xlib calls on it return at once, and the window thread ends on its own.
    X_CONNECTION_LOST.store(true, Ordering::Release);
}

/// Keeps a lost X server connection from ending the whole process: Xlib's default answer to
/// an I/O error on a display is to print a line and `exit(1)`, which would take the haptic
/// thread and the session log with it. With libX11 1.7 or later (`XSetIOErrorExitHandler`;
/// with an older one nothing changes) the I/O error handler (process-wide: haptwin has no
/// other Xlib user) and the display's exit handler only set [`X_CONNECTION_LOST`], and the
/// window thread ends like any failing display. Returns whether the handlers are in place.
fn survive_x_connection_loss(display: raw_window_handle::RawDisplayHandle) -> bool {
    let raw_window_handle::RawDisplayHandle::Xlib(h) = display else {
        return false;
    };
    let Some(dpy) = h.display else { return false };
    type IoHandler = unsafe extern "C" fn(*mut std::ffi::c_void) -> std::ffi::c_int;
    type SetIoHandler = unsafe extern "C" fn(Option<IoHandler>) -> Option<IoHandler>;
    type ExitHandler = unsafe extern "C" fn(*mut std::ffi::c_void, *mut std::ffi::c_void);
    type SetExitHandler =
        unsafe extern "C" fn(*mut std::ffi::c_void, Option<ExitHandler>, *mut std::ffi::c_void);
    // SAFETY: libX11 is already loaded (winit opened the display with it), so RTLD_NOLOAD only
    // returns a handle to it; dlsym looks symbols up, and the handle is released right after
    // (the library stays loaded for winit).
    let (set_io, set_exit) = unsafe {
        let lib = libc::dlopen(c"libX11.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if lib.is_null() {
            return false;
        }
        let syms = (
            libc::dlsym(lib, c"XSetIOErrorHandler".as_ptr()),
            libc::dlsym(lib, c"XSetIOErrorExitHandler".as_ptr()),
        );
        libc::dlclose(lib);
        syms
    };
    if set_io.is_null() || set_exit.is_null() {
        return false;
    }
    // SAFETY: the two symbols are libX11's `XIOErrorHandler XSetIOErrorHandler(XIOErrorHandler)`
    // and `void XSetIOErrorExitHandler(Display *, XIOErrorExitHandler, void *)`; `dpy` is the
    // live display of our window (winit keeps it open until the event loop is dropped); the
    // handlers only store an atomic, ignore their arguments and never unwind.
    unsafe {
        let set_io = std::mem::transmute::<*mut std::ffi::c_void, SetIoHandler>(set_io);
        let set_exit = std::mem::transmute::<*mut std::ffi::c_void, SetExitHandler>(set_exit);
        set_io(Some(x_io_error));
        set_exit(dpy.as_ptr(), Some(x_io_error_exit), std::ptr::null_mut());
    }
    true
}
