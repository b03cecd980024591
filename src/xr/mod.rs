//! The OpenXR display: the rehearsal in a headset, through any OpenXR runtime (Monado in CI,
//! SteamVR or a vendor runtime on a trainee's machine).
//!
//! Owns: the OpenXR instance (`XR_KHR_vulkan_enable2`), the system (a head-mounted display),
//! the Vulkan instance and device made *by the runtime* from the renderer's create infos
//! ([`XrVulkan`], a [`ContextHooks`]), the session and its state machine
//! ([`session::SessionMachine`]), one stereo swapchain (two array layers, one per eye), the
//! stage (or local) reference space, and the action set: both controllers' grip poses (the
//! right one drives the tool when no force device is in use), `select` (tool action),
//! `squeeze` (place the patient in front of the trainee), `menu` (strain overlay on/off) and
//! vibration output (the force's fallback when the hand holds a controller, not a stylus).
//!
//! Contract:
//! - runs on the render thread ([`spawn_xr_loop`]); `xrWaitFrame` paces it (blocking here is
//!   allowed and never reaches the haptic thread, which only publishes snapshots);
//! - views are located at the predicted display time and rendered in one multiview pass
//!   into the swapchain image of the frame, then released and submitted in a projection
//!   layer with both views;
//! - the app leaves through `xrRequestExitSession` when the run ends (`stop`) or after
//!   `max_frames` frames, and follows the runtime through STOPPING and EXITING; a session
//!   that ends before the run (the runtime ended or lost it, or the frames are in) sets
//!   `end_session`, which ends the run;
//! - OpenXR handles are destroyed before the Vulkan device and instance they use.

pub mod session;

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ash::vk;
use ash::vk::Handle as _;
use openxr as xr;

use crate::bus::{Publisher, Subscriber};
use crate::haptics::haptic_loop::SceneSnapshot;
use crate::haptics::pointer::PointerState;
use crate::render::{
    ContextHooks, FrameOutput, PresentTarget, RenderError, Renderer, RendererOptions, ViewCamera,
    COLOR_FORMAT,
};
use crate::render_loop::{
    ms_percentiles, RenderLoopConfig, RenderLoopReport, RenderReady, SceneBuilder,
};
use crate::stats::Histogram;
use session::{LeaveReason, SessionAction, SessionMachine, XrState};

const VIEW_TYPE: xr::ViewConfigurationType = xr::ViewConfigurationType::PRIMARY_STEREO;
/// Near and far planes of the eyes' projections, metres.
const NEAR_M: f32 = 0.02;
const FAR_M: f32 = 20.0;
/// Where the operating table stands in the stage (the floor's origin): 95 cm up (a standing
/// surgeon's working height) and 45 cm in front.
pub const TABLE_IN_STAGE_M: [f32; 3] = [0.0, 0.95, -0.45];
/// How long the runtime gets to let the session go after the app asked to leave.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether an OpenXR runtime with a headset answers here: its name and the system's, or why
/// not. Creates and destroys an instance; opens no session.
pub fn probe() -> Result<String, String> {
    let (instance, system) = instance_and_system()?;
    let props = instance
        .properties()
        .map_err(|e| format!("xrGetInstanceProperties: {e}"))?;
    let sys = instance
        .system_properties(system)
        .map_err(|e| format!("xrGetSystemProperties: {e}"))?;
    Ok(format!(
        "runtime {} {}, system '{}'",
        props.runtime_name, props.runtime_version, sys.system_name
    ))
}

fn instance_and_system() -> Result<(xr::Instance, xr::SystemId), String> {
    // SAFETY: loading the system OpenXR loader runs its initialisers; the entry keeps the
    // library loaded while any instance made from it lives.
    let entry = unsafe { xr::Entry::load(&()) }
        .map_err(|e| format!("no OpenXR loader (libopenxr_loader.so.1): {e}"))?;
    let available = entry
        .enumerate_extensions()
        .map_err(|e| format!("no OpenXR runtime (xrEnumerateInstanceExtensionProperties: {e}; is XR_RUNTIME_JSON or an active runtime set?)"))?;
    if !available.khr_vulkan_enable2 {
        return Err("the OpenXR runtime does not offer XR_KHR_vulkan_enable2".into());
    }
    let mut enabled = xr::ExtensionSet::default();
    enabled.khr_vulkan_enable2 = true;
    let instance = entry
        .create_instance(
            &xr::ApplicationInfo {
                application_name: "haptwin",
                application_version: 1,
                engine_name: "haptwin",
                engine_version: 1,
                api_version: xr::Version::new(1, 0, 0),
            },
            &enabled,
            &[],
            &(),
        )
        .map_err(|e| format!("xrCreateInstance: {e}"))?;
    let system = instance
        .system(xr::FormFactor::HEAD_MOUNTED_DISPLAY)
        .map_err(|e| format!("no headset (xrGetSystem: {e})"))?;
    Ok((instance, system))
}

/// Vulkan made by the OpenXR runtime (`XR_KHR_vulkan_enable2`): the runtime adds what it
/// needs to the renderer's instance and device and names the physical device to use.
pub struct XrVulkan {
    instance: xr::Instance,
    system: xr::SystemId,
    get_instance_proc_addr: Cell<Option<vk::PFN_vkGetInstanceProcAddr>>,
}

impl XrVulkan {
    fn gipa(&self) -> Result<xr::sys::platform::VkGetInstanceProcAddr, RenderError> {
        let f = self
            .get_instance_proc_addr
            .get()
            .ok_or(RenderError::Target {
                target: "openxr",
                message: "device requested before the instance".into(),
            })?;
        // SAFETY: both are `extern "system" fn(instance, name) -> function pointer` with the
        // same ABI; only the pointee types' spellings differ between ash and openxr-sys.
        Ok(unsafe {
            std::mem::transmute::<
                vk::PFN_vkGetInstanceProcAddr,
                xr::sys::platform::VkGetInstanceProcAddr,
            >(f)
        })
    }
}

fn xr_err(call: &str, e: impl std::fmt::Display) -> RenderError {
    RenderError::Target {
        target: "openxr",
        message: format!("{call}: {e}"),
    }
}

impl ContextHooks for XrVulkan {
    fn create_instance(
        &self,
        entry: &ash::Entry,
        info: &vk::InstanceCreateInfo<'_>,
    ) -> Result<vk::Instance, RenderError> {
        let reqs = self
            .instance
            .graphics_requirements::<xr::Vulkan>(self.system)
            .map_err(|e| xr_err("xrGetVulkanGraphicsRequirements2KHR", e))?;
        if reqs.min_api_version_supported > xr::Version::new(1, 3, 0) {
            return Err(xr_err(
                "xrGetVulkanGraphicsRequirements2KHR",
                format!(
                    "the runtime needs Vulkan {} at least; haptwin renders with 1.3",
                    reqs.min_api_version_supported
                ),
            ));
        }
        let gipa = entry.static_fn().get_instance_proc_addr;
        self.get_instance_proc_addr.set(Some(gipa));
        let gipa = self.gipa()?;
        // SAFETY: `info` is a valid VkInstanceCreateInfo living for this call; the runtime
        // creates the instance with our loader's vkGetInstanceProcAddr.
        let raw = unsafe {
            self.instance.create_vulkan_instance(
                self.system,
                gipa,
                info as *const vk::InstanceCreateInfo<'_> as *const c_void,
            )
        }
        .map_err(|e| xr_err("xrCreateVulkanInstanceKHR", e))?
        .map_err(|r| RenderError::Vulkan {
            call: "vkCreateInstance (through xrCreateVulkanInstanceKHR)",
            result: vk::Result::from_raw(r),
        })?;
        Ok(vk::Instance::from_raw(raw as u64))
    }

    fn physical_device(
        &self,
        instance: &ash::Instance,
    ) -> Result<Option<vk::PhysicalDevice>, RenderError> {
        // SAFETY: `instance` was made through this runtime and is alive.
        let raw = unsafe {
            self.instance
                .vulkan_graphics_device(self.system, instance.handle().as_raw() as *const c_void)
        }
        .map_err(|e| xr_err("xrGetVulkanGraphicsDevice2KHR", e))?;
        Ok(Some(vk::PhysicalDevice::from_raw(raw as u64)))
    }

    fn create_device(
        &self,
        _instance: &ash::Instance,
        physical: vk::PhysicalDevice,
        info: &vk::DeviceCreateInfo<'_>,
    ) -> Result<vk::Device, RenderError> {
        let gipa = self.gipa()?;
        // SAFETY: `info` is a valid VkDeviceCreateInfo living for this call; `physical` is the
        // device the runtime named.
        let raw = unsafe {
            self.instance.create_vulkan_device(
                self.system,
                gipa,
                physical.as_raw() as *const c_void,
                info as *const vk::DeviceCreateInfo<'_> as *const c_void,
            )
        }
        .map_err(|e| xr_err("xrCreateVulkanDeviceKHR", e))?
        .map_err(|r| RenderError::Vulkan {
            call: "vkCreateDevice (through xrCreateVulkanDeviceKHR)",
            result: vk::Result::from_raw(r),
        })?;
        Ok(vk::Device::from_raw(raw as u64))
    }
}

/// What the OpenXR display reports in [`RenderLoopReport::details`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct XrDetails {
    /// The runtime's name and version.
    pub runtime: String,
    /// The system's name (the headset).
    pub system: String,
    /// Pixels per eye (the runtime's recommendation).
    pub eye_width: u32,
    /// Pixels per eye.
    pub eye_height: u32,
    /// The swapchain's Vulkan format (as a number) and array layers.
    pub swapchain_format: i64,
    /// Swapchain array layers (2: one per eye).
    pub swapchain_layers: u32,
    /// The reference space: `stage` or `local`.
    pub space: String,
    /// Session states in the order the runtime reported them.
    pub states: Vec<XrState>,
    /// Whether FOCUSED was reached.
    pub focused: bool,
    /// Frames ended with a projection layer holding both views.
    pub frames_submitted: u64,
    /// Frames ended without layers (the runtime said not to render).
    pub frames_skipped: u64,
    /// Why the loop ended.
    pub left_because: Option<LeaveReason>,
    /// Whether the app asked to leave (`xrRequestExitSession`).
    pub exit_requested: bool,
    /// Controller pose samples that moved the tool.
    pub pointer_updates: u64,
    /// Vibrations sent to the controller (force fallback).
    pub vibrations: u64,
    /// Times the trainee placed the patient (squeeze).
    pub placements: u64,
}

/// Starts the OpenXR render thread (named `render`). It says on the returned channel
/// whether the runtime, headset and Vulkan came up, then runs the session until `stop` is set
/// (then asks the runtime to let it go) or the runtime ends it.
pub fn spawn_xr_loop(
    snapshots: Subscriber<SceneSnapshot>,
    stop: Arc<AtomicBool>,
    cfg: RenderLoopConfig,
    pointer: Option<Publisher<PointerState>>,
) -> std::io::Result<(JoinHandle<RenderLoopReport>, RenderReady)> {
    let (ready_tx, ready_rx) = crossbeam::channel::bounded(1);
    let handle = thread::Builder::new()
        .name("render".into())
        .spawn(move || {
            let mut report = RenderLoopReport::new(None, 2);
            report.display = "xr".into();
            let mut details = XrDetails::default();
            let result = xr_loop(
                snapshots,
                &stop,
                &cfg,
                pointer,
                &ready_tx,
                &mut report,
                &mut details,
            );
            if let Err(reason) = result {
                // Only the first word on the channel counts: a failure after set-up is a note.
                let _ = ready_tx.try_send(Err(reason.clone()));
                report.skipped = Some(reason);
            }
            report.details = serde_json::to_value(&details).ok();
            report
        })?;
    Ok((handle, ready_rx))
}

/// The handles that must go before the Vulkan device: dropped first.
struct XrSession {
    session: xr::Session<xr::Vulkan>,
    frame_wait: xr::FrameWaiter,
    frame_stream: xr::FrameStream<xr::Vulkan>,
    space: xr::Space,
    actions: Actions,
    swapchain: Option<(xr::Swapchain<xr::Vulkan>, Vec<vk::Image>)>,
}

struct Actions {
    set: xr::ActionSet,
    pose: xr::Action<xr::Posef>,
    select: xr::Action<bool>,
    squeeze: xr::Action<bool>,
    menu: xr::Action<bool>,
    vibrate: xr::Action<xr::Haptic>,
    right: xr::Path,
    right_space: xr::Space,
    head_space: xr::Space,
}

fn make_actions(
    instance: &xr::Instance,
    session: &xr::Session<xr::Vulkan>,
) -> Result<Actions, String> {
    let e = |call: &str| {
        let call = call.to_owned();
        move |err: xr::sys::Result| format!("{call}: {err}")
    };
    let left = instance
        .string_to_path("/user/hand/left")
        .map_err(e("xrStringToPath"))?;
    let right = instance
        .string_to_path("/user/hand/right")
        .map_err(e("xrStringToPath"))?;
    let set = instance
        .create_action_set("rehearsal", "Rehearsal", 0)
        .map_err(e("xrCreateActionSet"))?;
    let hands = [left, right];
    let pose = set
        .create_action::<xr::Posef>("tool_pose", "Tool pose", &hands)
        .map_err(e("xrCreateAction(tool_pose)"))?;
    let select = set
        .create_action::<bool>("tool_action", "Tool action", &hands)
        .map_err(e("xrCreateAction(tool_action)"))?;
    let squeeze = set
        .create_action::<bool>("place_patient", "Place the patient", &hands)
        .map_err(e("xrCreateAction(place_patient)"))?;
    let menu = set
        .create_action::<bool>("menu", "Menu (strain overlay)", &hands)
        .map_err(e("xrCreateAction(menu)"))?;
    let vibrate = set
        .create_action::<xr::Haptic>("force_feedback", "Force feedback", &hands)
        .map_err(e("xrCreateAction(force_feedback)"))?;
    let path = |p: &str| instance.string_to_path(p).map_err(e("xrStringToPath"));
    // The Khronos simple controller: every runtime binds it to whatever controller is held.
    let simple = path("/interaction_profiles/khr/simple_controller")?;
    let mut bindings = Vec::new();
    for hand in ["left", "right"] {
        bindings.push(xr::Binding::new(
            &pose,
            path(&format!("/user/hand/{hand}/input/grip/pose"))?,
        ));
        bindings.push(xr::Binding::new(
            &select,
            path(&format!("/user/hand/{hand}/input/select/click"))?,
        ));
        bindings.push(xr::Binding::new(
            &menu,
            path(&format!("/user/hand/{hand}/input/menu/click"))?,
        ));
        bindings.push(xr::Binding::new(
            &vibrate,
            path(&format!("/user/hand/{hand}/output/haptic"))?,
        ));
    }
    instance
        .suggest_interaction_profile_bindings(simple, &bindings)
        .map_err(e("xrSuggestInteractionProfileBindings(simple_controller)"))?;
    // Controllers with a grip button: squeeze places the patient.
    let touch = path("/interaction_profiles/oculus/touch_controller")?;
    let mut touch_bindings = Vec::new();
    for hand in ["left", "right"] {
        touch_bindings.push(xr::Binding::new(
            &pose,
            path(&format!("/user/hand/{hand}/input/grip/pose"))?,
        ));
        touch_bindings.push(xr::Binding::new(
            &select,
            path(&format!("/user/hand/{hand}/input/trigger/value"))?,
        ));
        touch_bindings.push(xr::Binding::new(
            &squeeze,
            path(&format!("/user/hand/{hand}/input/squeeze/value"))?,
        ));
        touch_bindings.push(xr::Binding::new(
            &vibrate,
            path(&format!("/user/hand/{hand}/output/haptic"))?,
        ));
    }
    touch_bindings.push(xr::Binding::new(
        &menu,
        path("/user/hand/left/input/menu/click")?,
    ));
    // A runtime without this profile refuses it; the simple profile still works.
    let _ = instance.suggest_interaction_profile_bindings(touch, &touch_bindings);
    session
        .attach_action_sets(&[&set])
        .map_err(e("xrAttachSessionActionSets"))?;
    let right_space = pose
        .create_space(session, right, xr::Posef::IDENTITY)
        .map_err(e("xrCreateActionSpace"))?;
    let head_space = session
        .create_reference_space(xr::ReferenceSpaceType::VIEW, xr::Posef::IDENTITY)
        .map_err(e("xrCreateReferenceSpace(VIEW)"))?;
    Ok(Actions {
        set,
        pose,
        select,
        squeeze,
        menu,
        vibrate,
        right,
        right_space,
        head_space,
    })
}

#[allow(clippy::too_many_arguments)]
fn xr_loop(
    mut snapshots: Subscriber<SceneSnapshot>,
    stop: &AtomicBool,
    cfg: &RenderLoopConfig,
    mut pointer: Option<Publisher<PointerState>>,
    ready: &crossbeam::channel::Sender<Result<String, String>>,
    report: &mut RenderLoopReport,
    details: &mut XrDetails,
) -> Result<(), String> {
    let (instance, system) = instance_and_system()?;
    let props = instance
        .properties()
        .map_err(|e| format!("xrGetInstanceProperties: {e}"))?;
    details.runtime = format!("{} {}", props.runtime_name, props.runtime_version);
    details.system = instance
        .system_properties(system)
        .map(|p| p.system_name)
        .unwrap_or_default();
    let views = instance
        .enumerate_view_configuration_views(system, VIEW_TYPE)
        .map_err(|e| format!("xrEnumerateViewConfigurationViews: {e}"))?;
    if views.len() != 2 {
        return Err(format!(
            "the headset has {} views; haptwin renders 2 (stereo)",
            views.len()
        ));
    }
    let (w, h) = (
        views[0].recommended_image_rect_width,
        views[0].recommended_image_rect_height,
    );
    details.eye_width = w;
    details.eye_height = h;
    let blend = instance
        .enumerate_environment_blend_modes(system, VIEW_TYPE)
        .map_err(|e| format!("xrEnumerateEnvironmentBlendModes: {e}"))?
        .first()
        .copied()
        .unwrap_or(xr::EnvironmentBlendMode::OPAQUE);

    let hooks = XrVulkan {
        instance: instance.clone(),
        system,
        get_instance_proc_addr: Cell::new(None),
    };
    let mut renderer = Renderer::new(
        &RendererOptions {
            width: w,
            height: h,
            views: 2,
            samples: cfg.options.samples,
            validation: cfg.options.validation,
            device_filter: None,
            readback: false,
        },
        &hooks,
    )
    .map_err(|e| format!("Vulkan through OpenXR: {e}"))?;
    report.device = Some(renderer.device_name().to_string());

    let result = run_session(
        &instance,
        system,
        blend,
        &mut renderer,
        &mut snapshots,
        stop,
        cfg,
        &mut pointer,
        ready,
        report,
        details,
    );
    // The session and swapchain are gone (run_session dropped them); now Vulkan may go.
    let validation = renderer.finish();
    if validation.enabled {
        report.validation = Some(validation.into());
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_session(
    instance: &xr::Instance,
    system: xr::SystemId,
    blend: xr::EnvironmentBlendMode,
    renderer: &mut Renderer,
    snapshots: &mut Subscriber<SceneSnapshot>,
    stop: &AtomicBool,
    cfg: &RenderLoopConfig,
    pointer: &mut Option<Publisher<PointerState>>,
    ready: &crossbeam::channel::Sender<Result<String, String>>,
    report: &mut RenderLoopReport,
    details: &mut XrDetails,
) -> Result<(), String> {
    let ctx = renderer.context();
    let info = xr::vulkan::SessionCreateInfo {
        instance: ctx.instance().handle().as_raw() as *const c_void,
        physical_device: ctx.physical.as_raw() as *const c_void,
        device: ctx.device.handle().as_raw() as *const c_void,
        queue_family_index: ctx.queue_family,
        queue_index: 0,
    };
    // SAFETY: the handles are the renderer's live instance, device and queue, made through
    // this runtime; the session is dropped before the renderer (see `xr_loop`).
    let (session, frame_wait, frame_stream) =
        unsafe { instance.create_session::<xr::Vulkan>(system, &info) }
            .map_err(|e| format!("xrCreateSession: {e}"))?;
    let spaces = session
        .enumerate_reference_spaces()
        .map_err(|e| format!("xrEnumerateReferenceSpaces: {e}"))?;
    let (space_type, space_name) = if spaces.contains(&xr::ReferenceSpaceType::STAGE) {
        (xr::ReferenceSpaceType::STAGE, "stage")
    } else {
        (xr::ReferenceSpaceType::LOCAL, "local")
    };
    details.space = space_name.into();
    let space = session
        .create_reference_space(space_type, xr::Posef::IDENTITY)
        .map_err(|e| format!("xrCreateReferenceSpace({space_name}): {e}"))?;
    let actions = make_actions(instance, &session)?;
    let mut xs = XrSession {
        session,
        frame_wait,
        frame_stream,
        space,
        actions,
        swapchain: None,
    };
    let _ = ready.send(Ok(format!(
        "{} via {}",
        renderer.device_name(),
        details.runtime
    )));

    let mut machine = SessionMachine::new();
    let mut events = xr::EventDataBuffer::new();
    let mut builder = SceneBuilder::new(cfg.scene.clone());
    let mut have_snapshot = false;
    let mut frame_ns = Histogram::new();
    let mut gpu_ns = Histogram::new();
    let mut table_in_stage = TABLE_IN_STAGE_M;
    let mut exit_asked_at: Option<Instant> = None;
    let mut overlay = cfg.scene.strain_overlay;
    let mut menu_was_down = false;
    let mut squeeze_was_down = false;
    let mut seq = 0u64;
    let max_force_n = cfg.scene.force_max_n.max(1e-3);
    let outcome: Result<(), String> = 'frames: loop {
        // Leave when the run is over (or the frames asked for are in): ask the runtime, then
        // follow it.
        let enough = cfg
            .max_frames
            .is_some_and(|m| details.frames_submitted >= m);
        if (stop.load(Ordering::Acquire) || enough) && !machine.exit_requested() {
            match machine.request_exit() {
                SessionAction::End => {
                    if let Err(e) = xs.session.request_exit() {
                        break 'frames Err(format!("xrRequestExitSession: {e}"));
                    }
                    exit_asked_at = Some(Instant::now());
                }
                SessionAction::Leave(why) => {
                    details.left_because = Some(why);
                    break 'frames Ok(());
                }
                _ => {}
            }
        }
        if exit_asked_at.is_some_and(|t| t.elapsed() > EXIT_TIMEOUT) {
            break 'frames Err(format!(
                "the runtime did not end the session within {} s of xrRequestExitSession",
                EXIT_TIMEOUT.as_secs()
            ));
        }
        // Events.
        loop {
            let event = match instance.poll_event(&mut events) {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => break 'frames Err(format!("xrPollEvent: {e}")),
            };
            match event {
                xr::Event::SessionStateChanged(ev) => {
                    let state = XrState::from_raw(ev.state().into_raw());
                    match machine.on_state(state) {
                        SessionAction::Begin => {
                            if let Err(e) = xs.session.begin(VIEW_TYPE) {
                                break 'frames Err(format!("xrBeginSession: {e}"));
                            }
                        }
                        SessionAction::End => {
                            if let Err(e) = xs.session.end() {
                                break 'frames Err(format!("xrEndSession: {e}"));
                            }
                        }
                        SessionAction::Leave(why) => {
                            details.left_because = Some(why);
                            break 'frames Ok(());
                        }
                        SessionAction::None => {}
                    }
                }
                xr::Event::InstanceLossPending(_) => {
                    details.left_because = Some(LeaveReason::Lost);
                    break 'frames Ok(());
                }
                _ => {}
            }
        }
        if !machine.running() {
            thread::sleep(Duration::from_millis(10));
            continue;
        }
        // One frame: wait (paced by the runtime), begin, render if asked, end.
        let state = match xs.frame_wait.wait() {
            Ok(s) => s,
            Err(e) => break 'frames Err(format!("xrWaitFrame: {e}")),
        };
        if let Err(e) = xs.frame_stream.begin() {
            break 'frames Err(format!("xrBeginFrame: {e}"));
        }
        let time = state.predicted_display_time;
        if !state.should_render || !machine.wants_frames() {
            if let Err(e) = xs.frame_stream.end(time, blend, &[]) {
                break 'frames Err(format!("xrEndFrame: {e}"));
            }
            details.frames_skipped += 1;
            continue;
        }
        // Input: only with focus.
        if machine.focused() {
            if let Err(e) = xs.session.sync_actions(&[(&xs.actions.set).into()]) {
                break 'frames Err(format!("xrSyncActions: {e}"));
            }
            let a = &xs.actions;
            let down = |action: &xr::Action<bool>| {
                action
                    .state(&xs.session, xr::Path::NULL)
                    .map(|s| s.is_active && s.current_state)
                    .unwrap_or(false)
            };
            let (menu_down, squeeze_down, select_down) =
                (down(&a.menu), down(&a.squeeze), down(&a.select));
            if menu_down && !menu_was_down {
                overlay = !overlay;
                builder.set_strain_overlay(overlay);
            }
            menu_was_down = menu_down;
            if squeeze_down && !squeeze_was_down {
                // Place the table 45 cm in front of the head, 50 cm below the eyes.
                if let Ok(head) = a.head_space.locate(&xs.space, time) {
                    if head
                        .location_flags
                        .contains(xr::SpaceLocationFlags::POSITION_VALID)
                    {
                        table_in_stage = place_table(head.pose);
                        details.placements += 1;
                    }
                }
            }
            squeeze_was_down = squeeze_down;
            if let Some(p) = pointer.as_mut() {
                let active = a.pose.is_active(&xs.session, a.right).unwrap_or(false);
                if let (true, Ok(loc)) = (active, a.right_space.locate(&xs.space, time)) {
                    if loc
                        .location_flags
                        .contains(xr::SpaceLocationFlags::POSITION_VALID)
                    {
                        let q = loc.pose.position;
                        seq += 1;
                        *p.back_mut() = PointerState {
                            target_in_world_m: [
                                f64::from(q.x - table_in_stage[0]),
                                f64::from(q.y - table_in_stage[1]),
                                f64::from(q.z - table_in_stage[2]),
                            ],
                            buttons: u32::from(select_down),
                            seq,
                        };
                        p.publish();
                        details.pointer_updates += 1;
                    }
                }
            }
        }
        have_snapshot |= snapshots.update();
        let (_, located) = match xs.session.locate_views(VIEW_TYPE, time, &xs.space) {
            Ok(v) => v,
            Err(e) => break 'frames Err(format!("xrLocateViews: {e}")),
        };
        if located.len() != 2 {
            break 'frames Err(format!("xrLocateViews gave {} views", located.len()));
        }
        let eyes = [0, 1].map(|i| eye_in_world(&located[i], table_in_stage));
        // The swapchain, made on the first frame that renders.
        if xs.swapchain.is_none() {
            match make_swapchain(&xs.session, renderer, details) {
                Ok(sc) => xs.swapchain = Some(sc),
                Err(e) => break 'frames Err(e),
            }
        }
        let Some((swapchain, images)) = xs.swapchain.as_mut() else {
            break 'frames Err("no swapchain".into());
        };
        let index = match swapchain.acquire_image() {
            Ok(i) => i as usize,
            Err(e) => break 'frames Err(format!("xrAcquireSwapchainImage: {e}")),
        };
        if let Err(e) = swapchain.wait_image(xr::Duration::INFINITE) {
            break 'frames Err(format!("xrWaitSwapchainImage: {e}"));
        }
        if let Some(hook) = &cfg.before_frame {
            hook(report.frames_rendered);
        }
        let t0 = Instant::now();
        let target = PresentTarget {
            image: images[index],
            extent: vk::Extent2D {
                width: details.eye_width,
                height: details.eye_height,
            },
            layers: 2,
            old_layout: vk::ImageLayout::UNDEFINED,
            new_layout: vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
            wait: vk::Semaphore::null(),
            signal: vk::Semaphore::null(),
        };
        let default_snapshot;
        let snap = if have_snapshot {
            snapshots.read()
        } else {
            default_snapshot = SceneSnapshot::default();
            &default_snapshot
        };
        let scene = builder.build(snap);
        let rendered = renderer.render(&scene, &eyes, FrameOutput::Present(target));
        let done = match rendered {
            Ok(done) => done,
            Err(e) => break 'frames Err(format!("rendering: {e}")),
        };
        frame_ns.record(t0.elapsed().as_nanos() as u64);
        if let Some(ms) = done.and_then(|f| f.gpu_ms) {
            gpu_ns.record((ms * 1e6) as u64);
        }
        // Force on a controller: vibrate in proportion (the fallback of a force device).
        let f = snap.force_out_in_world_n;
        let force_n = (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt();
        if pointer.is_some() && machine.focused() && force_n > 0.2 {
            let amplitude = (force_n / max_force_n).clamp(0.0, 1.0);
            let buzz = xr::HapticVibration::new()
                .amplitude(amplitude)
                .frequency(xr::FREQUENCY_UNSPECIFIED)
                .duration(xr::Duration::from_nanos(20_000_000));
            if xs
                .actions
                .vibrate
                .apply_feedback(&xs.session, xs.actions.right, &buzz)
                .is_ok()
            {
                details.vibrations += 1;
            }
        }
        if let Err(e) = swapchain.release_image() {
            break 'frames Err(format!("xrReleaseSwapchainImage: {e}"));
        }
        let rect = xr::Rect2Di {
            offset: xr::Offset2Di { x: 0, y: 0 },
            extent: xr::Extent2Di {
                width: details.eye_width as i32,
                height: details.eye_height as i32,
            },
        };
        let projection_views = [0u32, 1].map(|i| {
            xr::CompositionLayerProjectionView::new()
                .pose(located[i as usize].pose)
                .fov(located[i as usize].fov)
                .sub_image(
                    xr::SwapchainSubImage::new()
                        .swapchain(swapchain)
                        .image_array_index(i)
                        .image_rect(rect),
                )
        });
        let layer = xr::CompositionLayerProjection::new()
            .space(&xs.space)
            .views(&projection_views);
        if let Err(e) = xs.frame_stream.end(time, blend, &[&layer]) {
            break 'frames Err(format!("xrEndFrame: {e}"));
        }
        details.frames_submitted += 1;
        report.frames_rendered += 1;
    };
    details.states = machine.seen().to_vec();
    details.focused = machine.focused_once();
    details.exit_requested = machine.exit_requested();
    // Frames still in flight finish before the swapchain goes.
    let drained = renderer.drain();
    for f in drained.iter().flatten() {
        if let Some(ms) = f.gpu_ms {
            gpu_ns.record((ms * 1e6) as u64);
        }
    }
    report.frame_ms = ms_percentiles(&frame_ns);
    report.gpu_ms = ms_percentiles(&gpu_ns);
    if !stop.load(Ordering::Acquire) {
        // The session ended before the run did (the runtime ended or lost it, or the frames
        // asked for are in): the rehearsal ends with it.
        if let Some(flag) = &cfg.end_session {
            flag.store(true, Ordering::Release);
        }
    }
    drop(xs);
    outcome
}

fn make_swapchain(
    session: &xr::Session<xr::Vulkan>,
    renderer: &Renderer,
    details: &mut XrDetails,
) -> Result<(xr::Swapchain<xr::Vulkan>, Vec<vk::Image>), String> {
    let formats = session
        .enumerate_swapchain_formats()
        .map_err(|e| format!("xrEnumerateSwapchainFormats: {e}"))?;
    // The renderer's own format first (a plain copy), then any 8-bit sRGB one (a blit).
    let wanted = [COLOR_FORMAT, vk::Format::B8G8R8A8_SRGB];
    let format = wanted
        .iter()
        .map(|f| f.as_raw() as u32)
        .find(|f| formats.contains(f))
        .ok_or_else(|| {
            format!("the runtime offers no 8-bit sRGB swapchain format (it offers {formats:?})")
        })?;
    let swapchain = session
        .create_swapchain(&xr::SwapchainCreateInfo {
            create_flags: xr::SwapchainCreateFlags::EMPTY,
            usage_flags: xr::SwapchainUsageFlags::COLOR_ATTACHMENT
                | xr::SwapchainUsageFlags::TRANSFER_DST,
            format,
            sample_count: 1,
            width: details.eye_width,
            height: details.eye_height,
            face_count: 1,
            array_size: 2,
            mip_count: 1,
        })
        .map_err(|e| format!("xrCreateSwapchain: {e}"))?;
    let images: Vec<vk::Image> = swapchain
        .enumerate_images()
        .map_err(|e| format!("xrEnumerateSwapchainImages: {e}"))?
        .into_iter()
        .map(vk::Image::from_raw)
        .collect();
    for (i, &image) in images.iter().enumerate() {
        renderer
            .context()
            .name(image, &format!("openxr swapchain image {i}"));
    }
    details.swapchain_format = i64::from(format);
    details.swapchain_layers = 2;
    Ok((swapchain, images))
}

/// The table's place in the stage for a head pose: 45 cm ahead (horizontally) and 50 cm below
/// the eyes.
fn place_table(head: xr::Posef) -> [f32; 3] {
    let q = head.orientation;
    // The head's forward (-z) in the stage, flattened onto the floor.
    let fwd = [
        -2.0 * (q.x * q.z + q.w * q.y),
        0.0,
        -(1.0 - 2.0 * (q.x * q.x + q.y * q.y)),
    ];
    let len = fwd[0].hypot(fwd[2]);
    let fwd = if len > 1e-3 {
        [fwd[0] / len, 0.0, fwd[2] / len]
    } else {
        [0.0, 0.0, -1.0]
    };
    let p = head.position;
    [p.x + 0.45 * fwd[0], p.y - 0.5, p.z + 0.45 * fwd[2]]
}

/// An eye's view of the world: the stage pose shifted by the table's place (the world is the
/// stage translated so that the table's centre is the origin).
fn eye_in_world(view: &xr::View, table_in_stage: [f32; 3]) -> ViewCamera {
    let p = view.pose.position;
    let o = view.pose.orientation;
    let f = view.fov;
    ViewCamera::from_pose_fov(
        [
            p.x - table_in_stage[0],
            p.y - table_in_stage[1],
            p.z - table_in_stage[2],
        ],
        [o.x, o.y, o.z, o.w],
        [f.angle_left, f.angle_right, f.angle_up, f.angle_down],
        NEAR_M,
        FAR_M,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_goes_in_front_of_the_head() {
        let head = xr::Posef {
            orientation: xr::Quaternionf {
                x: 0.0,
                y: 0.0,
                z: 0.0,
                w: 1.0,
            },
            position: xr::Vector3f {
                x: 0.1,
                y: 1.6,
                z: 0.2,
            },
        };
        let t = place_table(head);
        assert!((t[0] - 0.1).abs() < 1e-6);
        assert!((t[1] - 1.1).abs() < 1e-6);
        assert!((t[2] - (0.2 - 0.45)).abs() < 1e-6);
        // Turned 90 degrees left (about +y): forward is -x.
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let turned = xr::Posef {
            orientation: xr::Quaternionf {
                x: 0.0,
                y: h,
                z: 0.0,
                w: h,
            },
            ..head
        };
        let t = place_table(turned);
        assert!(
            (t[0] - (0.1 - 0.45)).abs() < 1e-5 && (t[2] - 0.2).abs() < 1e-5,
            "{t:?}"
        );
    }

    #[test]
    fn an_eye_above_the_table_sees_the_origin_in_the_middle() {
        // An eye 50 cm above the table centre looking straight down, square 90-degree fov.
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let view = xr::View {
            pose: xr::Posef {
                // -90 degrees about x: the eye's -z points down.
                orientation: xr::Quaternionf {
                    x: -h,
                    y: 0.0,
                    z: 0.0,
                    w: h,
                },
                position: xr::Vector3f {
                    x: TABLE_IN_STAGE_M[0],
                    y: TABLE_IN_STAGE_M[1] + 0.5,
                    z: TABLE_IN_STAGE_M[2],
                },
            },
            fov: xr::Fovf {
                angle_left: -0.785,
                angle_right: 0.785,
                angle_up: 0.785,
                angle_down: -0.785,
            },
        };
        let cam = eye_in_world(&view, TABLE_IN_STAGE_M);
        let p = cam.project(100, 100, [0.0, 0.0, 0.0]).unwrap();
        assert!(
            (p[0] - 50.0).abs() < 0.1 && (p[1] - 50.0).abs() < 0.1,
            "{p:?}"
        );
        // +x in the world is to the right of a downward eye whose up is -z.
        let right = cam.project(100, 100, [0.1, 0.0, 0.0]).unwrap();
        assert!(right[0] > 55.0, "{right:?}");
    }
}
