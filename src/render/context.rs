//! Vulkan context: loader, instance, optional validation, device selection, object naming.
//!
//! Contract:
//! - the loader is `dlopen`ed at run time (`ash::Entry::load`); a missing libvulkan is
//!   [`RenderError::LoaderMissing`], never a crash;
//! - the instance targets Vulkan 1.3; only devices with Vulkan 1.3 `dynamicRendering` and
//!   `synchronization2` and a graphics queue are usable. Preference: discrete GPU, integrated
//!   GPU, virtual GPU, CPU (lavapipe), other; `device_filter` (case-insensitive substring of
//!   the device name) restricts the choice;
//! - with validation, `VK_LAYER_KHRONOS_validation` and a `VK_EXT_debug_utils` messenger
//!   (also chained into instance creation, so instance creation and destruction are
//!   covered) count warnings and errors in atomics and keep the first
//!   [`MAX_KEPT_MESSAGES`] messages;
//! - `VK_EXT_debug_utils` is enabled whenever available, and every object the renderer
//!   creates is named through [`GpuContext::name`];
//! - render thread only; dropping the context destroys device, messenger and instance in
//!   that order (the owner must have destroyed its own objects first).

use std::ffi::{c_void, CStr, CString};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ash::vk;

use super::RenderError;

/// The validation layer the renderer enables on request.
pub const VALIDATION_LAYER: &CStr = c"VK_LAYER_KHRONOS_validation";

/// How many validation messages a [`ValidationReport`] keeps (the counters count them all).
pub const MAX_KEPT_MESSAGES: usize = 20;

/// What the validation layer said so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationReport {
    /// Whether validation was enabled (layer + messenger).
    pub enabled: bool,
    /// Number of error messages.
    pub errors: u32,
    /// Number of warning messages.
    pub warnings: u32,
    /// The first 20 warning/error messages, prefixed with their severity.
    pub messages: Vec<String>,
}

impl ValidationReport {
    /// True when validation was on and said nothing.
    pub fn is_clean(&self) -> bool {
        self.errors == 0 && self.warnings == 0
    }
}

/// Shared between the messenger callback (which may run on any thread the driver uses) and
/// the renderer.
#[derive(Default)]
pub(crate) struct DebugState {
    enabled: bool,
    errors: AtomicU32,
    warnings: AtomicU32,
    messages: Mutex<Vec<String>>,
}

impl DebugState {
    pub(crate) fn report(&self) -> ValidationReport {
        ValidationReport {
            enabled: self.enabled,
            errors: self.errors.load(Ordering::Relaxed),
            warnings: self.warnings.load(Ordering::Relaxed),
            messages: self.messages.lock().map(|m| m.clone()).unwrap_or_default(),
        }
    }
}

unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    _types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user: *mut c_void,
) -> vk::Bool32 {
    if user.is_null() {
        return vk::FALSE;
    }
    // SAFETY: `user` is the `Arc<DebugState>` pointer given at messenger creation; the
    // GpuContext keeps that Arc alive until after the messenger and instance are destroyed.
    let state = unsafe { &*(user as *const DebugState) };
    let label = if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::ERROR) {
        state.errors.fetch_add(1, Ordering::Relaxed);
        "error"
    } else if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::WARNING) {
        state.warnings.fetch_add(1, Ordering::Relaxed);
        "warning"
    } else {
        return vk::FALSE;
    };
    let text = if data.is_null() {
        String::from("(no message)")
    } else {
        // SAFETY: the layer passes a valid callback-data struct whose `p_message` is null or
        // a NUL-terminated string, both valid for the duration of this call.
        unsafe { (*data).message_as_c_str() }
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if let Ok(mut m) = state.messages.lock() {
        if m.len() < MAX_KEPT_MESSAGES {
            m.push(format!("{label}: {text}"));
        }
    }
    vk::FALSE
}

/// Kind of a physical device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DeviceKind {
    /// A discrete GPU.
    DiscreteGpu,
    /// A GPU integrated with the CPU.
    IntegratedGpu,
    /// A virtualised GPU.
    VirtualGpu,
    /// A software implementation on the CPU (e.g. Mesa lavapipe).
    Cpu,
    /// Anything else.
    Other,
}

impl DeviceKind {
    fn from_vk(t: vk::PhysicalDeviceType) -> Self {
        match t {
            vk::PhysicalDeviceType::DISCRETE_GPU => Self::DiscreteGpu,
            vk::PhysicalDeviceType::INTEGRATED_GPU => Self::IntegratedGpu,
            vk::PhysicalDeviceType::VIRTUAL_GPU => Self::VirtualGpu,
            vk::PhysicalDeviceType::CPU => Self::Cpu,
            _ => Self::Other,
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::DiscreteGpu => "discrete GPU",
            Self::IntegratedGpu => "integrated GPU",
            Self::VirtualGpu => "virtual GPU",
            Self::Cpu => "CPU",
            Self::Other => "other",
        })
    }
}

/// One Vulkan physical device, as `haptwin doctor` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSummary {
    /// `deviceName`, e.g. `llvmpipe (LLVM 19.1.7, 256 bits)`.
    pub name: String,
    /// Device type, for display: `discrete GPU`, `integrated GPU`, `virtual GPU`, `CPU`,
    /// `other`.
    pub device_type: String,
    /// The same, for matching in code.
    pub kind: DeviceKind,
    /// Supported Vulkan API version, `major.minor.patch` (e.g. `1.4.305`).
    pub api_version: String,
    /// Driver version: the driver's own string (`driverInfo`, e.g. `Mesa 25.0.7`) when it
    /// reports one, else the raw `driverVersion` decoded as major.minor.patch.
    pub driver_version: String,
    /// Driver name (`driverName`, e.g. `llvmpipe`), empty if not reported.
    pub driver_name: String,
    /// Whether the renderer can use it (Vulkan 1.3, dynamic rendering, synchronization2,
    /// a graphics queue); `None` when usable, else why not.
    pub unusable_reason: Option<String>,
}

impl std::fmt::Display for DeviceSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}), Vulkan {}, driver {} {}",
            self.name, self.device_type, self.api_version, self.driver_name, self.driver_version
        )?;
        if let Some(r) = &self.unusable_reason {
            write!(f, " [unusable: {r}]")?;
        }
        Ok(())
    }
}

/// Lists the Vulkan physical devices the loader sees (for `haptwin doctor`).
pub fn list_devices() -> Result<Vec<DeviceSummary>, RenderError> {
    let entry = load_entry()?;
    let instance = create_instance(&entry, false, None, &PlainVulkan)?;
    let result = enumerate(&instance.instance, &PlainVulkan)
        .map(|v| v.into_iter().map(|c| c.summary).collect());
    // SAFETY: no object was created from this instance; it is destroyed exactly once.
    unsafe { instance.instance.destroy_instance(None) };
    result
}

fn load_entry() -> Result<ash::Entry, RenderError> {
    // SAFETY: loading the system Vulkan loader runs its initialisers; it is the documented
    // way to use ash without linking. The Entry keeps the library loaded while in use.
    unsafe { ash::Entry::load() }.map_err(|e| RenderError::LoaderMissing {
        message: e.to_string(),
    })
}

struct CreatedInstance {
    instance: ash::Instance,
    debug_utils: bool,
}

fn cstr_array(raw: &[std::ffi::c_char]) -> String {
    // Fixed-size, NUL-terminated Vulkan strings.
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn create_instance(
    entry: &ash::Entry,
    validation: bool,
    debug: Option<&Arc<DebugState>>,
    hooks: &dyn ContextHooks,
) -> Result<CreatedInstance, RenderError> {
    // SAFETY: plain queries on a loaded entry.
    let version = unsafe { entry.try_enumerate_instance_version() }
        .map_err(RenderError::vk("vkEnumerateInstanceVersion"))?
        .unwrap_or(vk::API_VERSION_1_0);
    if version < vk::API_VERSION_1_3 {
        return Err(RenderError::NoDevice {
            filter: None,
            found: vec![format!(
                "the Vulkan loader only supports instance version {}.{}; 1.3 is needed",
                vk::api_version_major(version),
                vk::api_version_minor(version)
            )],
        });
    }
    // SAFETY: plain query on a loaded entry.
    let extensions = unsafe { entry.enumerate_instance_extension_properties(None) }
        .map_err(RenderError::vk("vkEnumerateInstanceExtensionProperties"))?;
    let debug_utils = extensions
        .iter()
        .any(|e| e.extension_name_as_c_str() == Ok(ash::ext::debug_utils::NAME));
    let mut layers: Vec<*const std::ffi::c_char> = Vec::new();
    if validation {
        // SAFETY: plain query on a loaded entry.
        let available = unsafe { entry.enumerate_instance_layer_properties() }
            .map_err(RenderError::vk("vkEnumerateInstanceLayerProperties"))?;
        if !available
            .iter()
            .any(|l| l.layer_name_as_c_str() == Ok(VALIDATION_LAYER))
        {
            return Err(RenderError::ValidationLayerMissing {
                available: available
                    .iter()
                    .map(|l| cstr_array(&l.layer_name))
                    .collect(),
            });
        }
        if !debug_utils {
            return Err(RenderError::DebugUtilsMissing);
        }
        layers.push(VALIDATION_LAYER.as_ptr());
    }
    let mut ext_names: Vec<*const std::ffi::c_char> = Vec::new();
    if debug_utils {
        ext_names.push(ash::ext::debug_utils::NAME.as_ptr());
    }
    let extra = hooks.instance_extensions();
    for e in &extra {
        if !extensions
            .iter()
            .any(|p| p.extension_name_as_c_str() == Ok(e.as_c_str()))
        {
            return Err(RenderError::ExtensionMissing {
                extension: e.to_string_lossy().into_owned(),
                level: "instance",
            });
        }
        ext_names.push(e.as_ptr());
    }
    let app = vk::ApplicationInfo::default()
        .application_name(c"haptwin")
        .application_version(vk::make_api_version(0, 0, 1, 0))
        .engine_name(c"haptwin-render")
        .api_version(vk::API_VERSION_1_3);
    let mut messenger_info = messenger_create_info(debug);
    let mut info = vk::InstanceCreateInfo::default()
        .application_info(&app)
        .enabled_layer_names(&layers)
        .enabled_extension_names(&ext_names);
    if debug.is_some() && debug_utils {
        info = info.push_next(&mut messenger_info);
    }
    // All pointers in `info` (names, app info, messenger info and its user data, an Arc the
    // caller keeps alive) outlive this call.
    let raw = hooks.create_instance(entry, &info)?;
    // SAFETY: `raw` is a live instance just created from this entry's loader.
    let instance = unsafe { ash::Instance::load(entry.static_fn(), raw) };
    Ok(CreatedInstance {
        instance,
        debug_utils,
    })
}

fn messenger_create_info(
    debug: Option<&Arc<DebugState>>,
) -> vk::DebugUtilsMessengerCreateInfoEXT<'static> {
    let user = debug.map_or(std::ptr::null_mut(), |d| Arc::as_ptr(d) as *mut c_void);
    vk::DebugUtilsMessengerCreateInfoEXT::default()
        .message_severity(
            vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
                | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
        )
        .message_type(
            vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
        )
        .pfn_user_callback(Some(debug_callback))
        .user_data(user)
}

struct Candidate {
    physical: vk::PhysicalDevice,
    queue_family: Option<u32>,
    summary: DeviceSummary,
}

fn enumerate(
    instance: &ash::Instance,
    hooks: &dyn ContextHooks,
) -> Result<Vec<Candidate>, RenderError> {
    // SAFETY: valid instance; the queries only fill the structs passed in.
    unsafe {
        let physicals = instance
            .enumerate_physical_devices()
            .map_err(RenderError::vk("vkEnumeratePhysicalDevices"))?;
        let mut out = Vec::with_capacity(physicals.len());
        for physical in physicals {
            let props = instance.get_physical_device_properties(physical);
            let api = props.api_version;
            let mut driver = vk::PhysicalDeviceDriverProperties::default();
            if api >= vk::API_VERSION_1_2 {
                let mut p2 = vk::PhysicalDeviceProperties2::default().push_next(&mut driver);
                instance.get_physical_device_properties2(physical, &mut p2);
            }
            let driver_info = cstr_array(&driver.driver_info);
            let dv = props.driver_version;
            let driver_version = if driver_info.is_empty() {
                format!(
                    "{}.{}.{}",
                    vk::api_version_major(dv),
                    vk::api_version_minor(dv),
                    vk::api_version_patch(dv)
                )
            } else {
                driver_info
            };
            let queue_family = instance
                .get_physical_device_queue_family_properties(physical)
                .iter()
                .enumerate()
                .position(|(i, q)| {
                    q.queue_flags.contains(vk::QueueFlags::GRAPHICS)
                        && q.queue_count > 0
                        && hooks.queue_family_ok(physical, i as u32)
                })
                .map(|i| i as u32);
            let unusable_reason = if api < vk::API_VERSION_1_3 {
                Some("Vulkan 1.3 not supported".to_owned())
            } else if queue_family.is_none() {
                Some("no graphics queue".to_owned())
            } else {
                let mut f11 = vk::PhysicalDeviceVulkan11Features::default();
                let mut f13 = vk::PhysicalDeviceVulkan13Features::default();
                let mut f2 = vk::PhysicalDeviceFeatures2::default()
                    .push_next(&mut f11)
                    .push_next(&mut f13);
                instance.get_physical_device_features2(physical, &mut f2);
                if f13.dynamic_rendering == vk::FALSE {
                    Some("no dynamicRendering".to_owned())
                } else if f13.synchronization2 == vk::FALSE {
                    Some("no synchronization2".to_owned())
                } else if f11.multiview == vk::FALSE {
                    Some("no multiview".to_owned())
                } else {
                    None
                }
            };
            out.push(Candidate {
                physical,
                queue_family,
                summary: DeviceSummary {
                    name: cstr_array(&props.device_name),
                    device_type: DeviceKind::from_vk(props.device_type).to_string(),
                    kind: DeviceKind::from_vk(props.device_type),
                    api_version: format!(
                        "{}.{}.{}",
                        vk::api_version_major(api),
                        vk::api_version_minor(api),
                        vk::api_version_patch(api)
                    ),
                    driver_version,
                    driver_name: cstr_array(&driver.driver_name),
                    unusable_reason,
                },
            });
        }
        Ok(out)
    }
}

/// How a display target takes part in setting Vulkan up: the OpenXR runtime must create the
/// instance and device itself (`XR_KHR_vulkan_enable2`) and names the physical device; a window
/// needs the surface and swapchain extensions and a queue that can present. The default
/// methods set Vulkan up the plain way (headless).
///
/// Render thread only; every method is called once, during [`GpuContext::with_hooks`].
pub trait ContextHooks {
    /// Instance extensions the target needs besides the renderer's own.
    fn instance_extensions(&self) -> Vec<CString> {
        Vec::new()
    }
    /// Device extensions the target needs.
    fn device_extensions(&self) -> Vec<CString> {
        Vec::new()
    }
    /// Creates the instance from the renderer's create info (the OpenXR runtime adds its
    /// own extensions and layers).
    fn create_instance(
        &self,
        entry: &ash::Entry,
        info: &vk::InstanceCreateInfo<'_>,
    ) -> Result<vk::Instance, RenderError> {
        // SAFETY: `info` and everything it points to outlive this call (the caller's locals).
        unsafe { entry.create_instance(info, None) }
            .map(|i| i.handle())
            .map_err(RenderError::vk("vkCreateInstance"))
    }
    /// Called once the instance exists, before devices are enumerated (a window makes its
    /// surface here, so that [`Self::queue_family_ok`] can ask about presenting to it).
    fn instance_created(
        &self,
        _entry: &ash::Entry,
        _instance: &ash::Instance,
    ) -> Result<(), RenderError> {
        Ok(())
    }
    /// The physical device the target insists on (`None`: the renderer chooses).
    fn physical_device(
        &self,
        _instance: &ash::Instance,
    ) -> Result<Option<vk::PhysicalDevice>, RenderError> {
        Ok(None)
    }
    /// Set-up failed after [`Self::instance_created`]: destroy what it made on `instance`
    /// (which is destroyed next). Also called when the renderer fails after the context exists.
    fn instance_failing(&self, _instance: &ash::Instance) {}
    /// Whether the queue family can serve the target (e.g. present to its surface).
    fn queue_family_ok(&self, _physical: vk::PhysicalDevice, _family: u32) -> bool {
        true
    }
    /// Creates the logical device from the renderer's create info.
    fn create_device(
        &self,
        instance: &ash::Instance,
        physical: vk::PhysicalDevice,
        info: &vk::DeviceCreateInfo<'_>,
    ) -> Result<vk::Device, RenderError> {
        // SAFETY: `physical` belongs to `instance`; `info` outlives the call.
        unsafe { instance.create_device(physical, info, None) }
            .map(|d| d.handle())
            .map_err(RenderError::vk("vkCreateDevice"))
    }
}

/// Plain Vulkan set-up, for headless rendering.
pub struct PlainVulkan;

impl ContextHooks for PlainVulkan {}

/// Instance-level state; destroys messenger and instance when dropped (after the device).
struct InstanceParts {
    // Keeps the loader library loaded for as long as the instance lives.
    entry: ash::Entry,
    instance: ash::Instance,
    debug_instance: Option<ash::ext::debug_utils::Instance>,
    messenger: vk::DebugUtilsMessengerEXT,
    // The messenger's user data; must outlive messenger and instance.
    _debug: Arc<DebugState>,
}

impl Drop for InstanceParts {
    fn drop(&mut self) {
        // SAFETY: the device (the only child besides the messenger) is destroyed before this
        // runs (GpuContext::drop); each handle is destroyed once.
        unsafe {
            if let Some(di) = &self.debug_instance {
                if self.messenger != vk::DebugUtilsMessengerEXT::null() {
                    di.destroy_debug_utils_messenger(self.messenger, None);
                }
            }
            self.instance.destroy_instance(None);
        }
    }
}

/// The Vulkan instance + logical device the renderer draws with. Display targets make their
/// own objects (swapchains, semaphores) on it through [`crate::render::Renderer::context`].
pub struct GpuContext {
    /// The logical device.
    pub device: ash::Device,
    debug_device: Option<ash::ext::debug_utils::Device>,
    /// The physical device.
    pub physical: vk::PhysicalDevice,
    /// The graphics queue everything is submitted to.
    pub queue: vk::Queue,
    /// Its family.
    pub queue_family: u32,
    /// The device's name.
    pub device_name: String,
    pub(crate) debug: Arc<DebugState>,
    names: Mutex<Vec<String>>,
    // Declared last: dropped after GpuContext::drop destroyed the device.
    inst: InstanceParts,
}

impl GpuContext {
    /// Sets Vulkan up with `hooks` deciding how the instance and device are made.
    pub(crate) fn with_hooks(
        validation: bool,
        device_filter: Option<&str>,
        hooks: &dyn ContextHooks,
    ) -> Result<Self, RenderError> {
        let entry = load_entry()?;
        let debug = Arc::new(DebugState {
            enabled: validation,
            ..Default::default()
        });
        let created = create_instance(&entry, validation, validation.then_some(&debug), hooks)?;
        let mut inst = InstanceParts {
            debug_instance: created
                .debug_utils
                .then(|| ash::ext::debug_utils::Instance::new(&entry, &created.instance)),
            entry,
            instance: created.instance,
            messenger: vk::DebugUtilsMessengerEXT::null(),
            _debug: debug.clone(),
        };
        if validation {
            if let Some(di) = &inst.debug_instance {
                let info = messenger_create_info(Some(&debug));
                // SAFETY: valid instance; the user-data Arc is kept in `inst._debug`.
                inst.messenger = unsafe { di.create_debug_utils_messenger(&info, None) }
                    .map_err(RenderError::vk("vkCreateDebugUtilsMessengerEXT"))?;
            }
        }
        // Everything from here on may fail after the target made its own instance objects:
        // it gets to destroy them (`instance_failing`) before the instance goes.
        let made = (|| -> Result<(ash::Device, vk::PhysicalDevice, u32, String), RenderError> {
            hooks.instance_created(&inst.entry, &inst.instance)?;
            let candidates = enumerate(&inst.instance, hooks)?;
            let filter_lc = device_filter.map(str::to_lowercase);
            let required = hooks.physical_device(&inst.instance)?;
            let chosen = candidates
                .iter()
                .filter(|c| c.summary.unusable_reason.is_none())
                .filter(|c| required.is_none_or(|r| r == c.physical))
                .filter(|c| filter_lc.as_ref().is_none_or(|f| c.summary.name.to_lowercase().contains(f)))
                .min_by_key(|c| c.summary.kind)
                .ok_or_else(|| RenderError::NoDevice {
                    filter: device_filter.map(str::to_owned),
                    found: if candidates.is_empty() {
                        vec!["no Vulkan devices (is a driver such as mesa-vulkan-drivers installed? see scripts/install-deps.sh)".to_owned()]
                    } else {
                        candidates.iter().map(|c| c.summary.to_string()).collect()
                    },
                })?;
            let queue_family = chosen.queue_family.unwrap_or(0);
            let priorities = [1.0f32];
            let queue_info = [vk::DeviceQueueCreateInfo::default()
                .queue_family_index(queue_family)
                .queue_priorities(&priorities)];
            let mut f11 = vk::PhysicalDeviceVulkan11Features::default().multiview(true);
            let mut f13 = vk::PhysicalDeviceVulkan13Features::default()
                .dynamic_rendering(true)
                .synchronization2(true);
            let dev_ext = hooks.device_extensions();
            // SAFETY: plain query on a physical device of this instance.
            let available = unsafe {
                inst.instance
                    .enumerate_device_extension_properties(chosen.physical)
            }
            .map_err(RenderError::vk("vkEnumerateDeviceExtensionProperties"))?;
            for e in &dev_ext {
                if !available
                    .iter()
                    .any(|p| p.extension_name_as_c_str() == Ok(e.as_c_str()))
                {
                    return Err(RenderError::ExtensionMissing {
                        extension: e.to_string_lossy().into_owned(),
                        level: "device",
                    });
                }
            }
            let dev_ext_ptrs: Vec<*const std::ffi::c_char> =
                dev_ext.iter().map(|e| e.as_ptr()).collect();
            let info = vk::DeviceCreateInfo::default()
                .queue_create_infos(&queue_info)
                .enabled_extension_names(&dev_ext_ptrs)
                .push_next(&mut f11)
                .push_next(&mut f13);
            // `chosen.physical` came from this instance; `info` and its chain outlive the call.
            let raw = hooks.create_device(&inst.instance, chosen.physical, &info)?;
            // SAFETY: `raw` is a live device just created on this instance.
            let device = unsafe { ash::Device::load(inst.instance.fp_v1_0(), raw) };
            Ok((
                device,
                chosen.physical,
                queue_family,
                chosen.summary.name.clone(),
            ))
        })();
        let (device, physical, queue_family, device_name) = match made {
            Ok(m) => m,
            Err(e) => {
                hooks.instance_failing(&inst.instance);
                return Err(e);
            }
        };
        // SAFETY: queue 0 of a family requested at device creation.
        let queue = unsafe { device.get_device_queue(queue_family, 0) };
        let debug_device = created
            .debug_utils
            .then(|| ash::ext::debug_utils::Device::new(&inst.instance, &device));
        let ctx = GpuContext {
            device,
            debug_device,
            physical,
            queue,
            queue_family,
            device_name,
            debug,
            names: Mutex::new(Vec::new()),
            inst,
        };
        ctx.name(ctx.device.handle(), "haptwin device");
        ctx.name(ctx.queue, "haptwin graphics queue");
        Ok(ctx)
    }

    /// The instance.
    pub fn instance(&self) -> &ash::Instance {
        &self.inst.instance
    }

    /// The loader entry (display targets load their extension functions from it).
    pub fn entry(&self) -> &ash::Entry {
        &self.inst.entry
    }

    /// Gives `handle` a debug name (`vkSetDebugUtilsObjectNameEXT`) when debug utils is
    /// available, and records it in [`Self::object_names`]. Naming never fails the caller.
    pub fn name<H: vk::Handle>(&self, handle: H, name: &str) {
        let Some(du) = &self.debug_device else { return };
        let Ok(c) = CString::new(name) else { return };
        let info = vk::DebugUtilsObjectNameInfoEXT::default()
            .object_handle(handle)
            .object_name(&c);
        // SAFETY: `handle` is a live object of this device (callers name right after creating).
        let ok = unsafe { du.set_debug_utils_object_name(&info) }.is_ok();
        if ok {
            if let Ok(mut n) = self.names.lock() {
                n.push(format!("{:?} {name}", H::TYPE));
            }
        }
    }

    /// Every name given so far, as `"<ObjectType> <name>"`.
    pub(crate) fn object_names(&self) -> Vec<String> {
        self.names.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

impl Drop for GpuContext {
    fn drop(&mut self) {
        // SAFETY: the owner destroyed every object it created from this device before dropping
        // the context; the device is destroyed once, then `inst` (messenger, instance) drops.
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.destroy_device(None);
        }
    }
}
