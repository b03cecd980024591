//! The window's Vulkan side: the [`ContextHooks`] that add the surface extensions and make the
//! `VkSurfaceKHR` while the renderer sets Vulkan up, and the [`Swapchain`] the renderer's
//! frames are blitted into and presented from.
//!
//! Contract:
//! - render thread only; every object made here is named through [`GpuContext::name`];
//! - synchronisation is the classic scheme: one acquire semaphore per frame in flight
//!   ([`ACQUIRE_SEMAPHORES`] = [`PIPELINE_DEPTH`] + 1, so a semaphore is reused only after the
//!   renderer has waited for the frame that waited on it) and one render-finished semaphore
//!   per swapchain image (reused only once the image is acquired again);
//! - the swapchain is recreated (after the device is idle) on resize, `OUT_OF_DATE` and
//!   `SUBOPTIMAL`; a zero-sized (minimised) window has no swapchain until it grows again;
//! - the owner calls [`Swapchain::destroy`] before the renderer (which owns the device and
//!   instance) is dropped; the surface is destroyed there too.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};

use ash::vk;
use raw_window_handle::{RawDisplayHandle, RawWindowHandle};

use crate::render::{ContextHooks, GpuContext, RenderError, PIPELINE_DEPTH};

/// Acquire semaphores: one more than the renderer's frames in flight (see the module docs).
pub const ACQUIRE_SEMAPHORES: usize = PIPELINE_DEPTH + 1;
/// Longest wait for a swapchain image, nanoseconds; a frame that waits longer is skipped.
pub const ACQUIRE_TIMEOUT_NS: u64 = 1_000_000_000;

fn target_error(message: impl Into<String>) -> RenderError {
    RenderError::Target {
        target: "window",
        message: message.into(),
    }
}

/// How the renderer's Vulkan set-up takes in the window: surface instance extensions,
/// `VK_KHR_swapchain`, the surface (made once the instance exists) and a queue that can
/// present to it.
pub struct WindowHooks {
    display: RawDisplayHandle,
    window: RawWindowHandle,
    extensions: Vec<CString>,
    surface_fn: RefCell<Option<ash::khr::surface::Instance>>,
    surface: Cell<vk::SurfaceKHR>,
}

impl WindowHooks {
    /// Hooks for the window behind these handles; fails when Vulkan has no surface type for
    /// its window system.
    ///
    /// The handles must stay valid (the window open) until the surface is destroyed.
    pub fn new(display: RawDisplayHandle, window: RawWindowHandle) -> Result<Self, RenderError> {
        let names = ash_window::enumerate_required_extensions(display).map_err(|e| {
            target_error(format!(
                "no Vulkan surface extension for this window system ({display:?}): {e}"
            ))
        })?;
        let extensions = names
            .iter()
            // SAFETY: ash-window returns pointers to its static, NUL-terminated extension
            // names.
            .map(|&p| unsafe { CStr::from_ptr(p) }.to_owned())
            .collect();
        Ok(Self {
            display,
            window,
            extensions,
            surface_fn: RefCell::new(None),
            surface: Cell::new(vk::SurfaceKHR::null()),
        })
    }

    /// The surface and its functions, once the instance was made (the caller now owns the
    /// surface and must destroy it before the instance).
    pub fn take_surface(&self) -> Option<(ash::khr::surface::Instance, vk::SurfaceKHR)> {
        let surface = self.surface.replace(vk::SurfaceKHR::null());
        let surface_fn = self.surface_fn.borrow_mut().take()?;
        (surface != vk::SurfaceKHR::null()).then_some((surface_fn, surface))
    }
}

impl ContextHooks for WindowHooks {
    fn instance_extensions(&self) -> Vec<CString> {
        self.extensions.clone()
    }

    fn device_extensions(&self) -> Vec<CString> {
        vec![ash::khr::swapchain::NAME.to_owned()]
    }

    fn instance_created(
        &self,
        entry: &ash::Entry,
        instance: &ash::Instance,
    ) -> Result<(), RenderError> {
        // SAFETY: the instance was made with the extensions ash-window asked for; the window
        // and its display connection outlive the surface (the window thread destroys the
        // surface before it drops the window).
        let surface =
            unsafe { ash_window::create_surface(entry, instance, self.display, self.window, None) }
                .map_err(RenderError::vk("vkCreate*SurfaceKHR"))?;
        self.surface.set(surface);
        *self.surface_fn.borrow_mut() = Some(ash::khr::surface::Instance::new(entry, instance));
        Ok(())
    }

    fn instance_failing(&self, _instance: &ash::Instance) {
        if let Some((surface_fn, surface)) = self.take_surface() {
            // SAFETY: the surface was made on this instance, which is still alive; no
            // swapchain was made on it (set-up failed before the window took it over).
            unsafe { surface_fn.destroy_surface(surface, None) };
        }
    }

    fn queue_family_ok(&self, physical: vk::PhysicalDevice, family: u32) -> bool {
        let guard = self.surface_fn.borrow();
        let Some(surface_fn) = guard.as_ref() else {
            return false;
        };
        // SAFETY: `physical` and the surface belong to the instance the surface was made on.
        unsafe {
            surface_fn.get_physical_device_surface_support(physical, family, self.surface.get())
        }
        .unwrap_or(false)
    }
}

/// What [`Swapchain::acquire`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// An image to draw into: its index and the semaphore signalled when it is free.
    Image {
        /// Index into the swapchain's images.
        index: u32,
        /// Wait on this before writing the image.
        ready: vk::Semaphore,
    },
    /// No image this time (out of date, timed out, or the window has no area); try the next
    /// frame.
    Skip,
}

/// The window's swapchain and its semaphores. See the module docs for the contract.
pub struct Swapchain {
    surface_fn: ash::khr::surface::Instance,
    swapchain_fn: ash::khr::swapchain::Device,
    surface: vk::SurfaceKHR,
    swapchain: vk::SwapchainKHR,
    images: Vec<vk::Image>,
    extent: vk::Extent2D,
    format: vk::SurfaceFormatKHR,
    present_mode: vk::PresentModeKHR,
    acquire_semaphores: Vec<vk::Semaphore>,
    rendered_semaphores: Vec<vk::Semaphore>,
    /// Set when the swapchain no longer matches the window.
    stale: bool,
    recreations: u64,
    presents: u64,
    skipped_acquires: u64,
}

impl Swapchain {
    /// Takes over `surface` (made by [`WindowHooks`]) and makes a swapchain of the window's
    /// size `window_px`. On error, the surface is destroyed.
    pub fn new(
        ctx: &GpuContext,
        surface_fn: ash::khr::surface::Instance,
        surface: vk::SurfaceKHR,
        window_px: (u32, u32),
    ) -> Result<Self, RenderError> {
        ctx.name(surface, "window surface");
        let mut s = Self {
            swapchain_fn: ash::khr::swapchain::Device::new(ctx.instance(), &ctx.device),
            surface_fn,
            surface,
            swapchain: vk::SwapchainKHR::null(),
            images: Vec::new(),
            extent: vk::Extent2D::default(),
            format: vk::SurfaceFormatKHR::default(),
            present_mode: vk::PresentModeKHR::FIFO,
            acquire_semaphores: Vec::new(),
            rendered_semaphores: Vec::new(),
            stale: true,
            recreations: 0,
            presents: 0,
            skipped_acquires: 0,
        };
        let made = (|| {
            for k in 0..ACQUIRE_SEMAPHORES {
                let sem = create_semaphore(ctx, &format!("window acquire semaphore {k}"))?;
                s.acquire_semaphores.push(sem);
            }
            s.choose_format(ctx)?;
            s.rebuild(ctx, window_px)
        })();
        match made {
            Ok(()) => Ok(s),
            Err(e) => {
                s.destroy(ctx);
                Err(e)
            }
        }
    }

    /// The swapchain's format (`B8G8R8A8_SRGB`, ...).
    pub fn format(&self) -> vk::Format {
        self.format.format
    }

    /// The present mode in use.
    pub fn present_mode(&self) -> vk::PresentModeKHR {
        self.present_mode
    }

    /// The images' size (zero while the window has no area).
    pub fn extent(&self) -> vk::Extent2D {
        self.extent
    }

    /// Times the swapchain was made again (resize, out of date, suboptimal).
    pub fn recreations(&self) -> u64 {
        self.recreations
    }

    /// Images presented.
    pub fn presents(&self) -> u64 {
        self.presents
    }

    /// Frames skipped because no image came (out of date, timeout, no area).
    pub fn skipped_acquires(&self) -> u64 {
        self.skipped_acquires
    }

    /// Marks the swapchain for recreation before the next frame (the window was resized).
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Picks the surface format once: sRGB B8G8R8A8 or R8G8B8A8 in the sRGB colour space
    /// (blits convert from the renderer's R8G8B8A8_SRGB), else the first one blits can write.
    fn choose_format(&mut self, ctx: &GpuContext) -> Result<(), RenderError> {
        // SAFETY: plain queries on the renderer's physical device and this instance's surface.
        let formats = unsafe {
            self.surface_fn
                .get_physical_device_surface_formats(ctx.physical, self.surface)
        }
        .map_err(RenderError::vk("vkGetPhysicalDeviceSurfaceFormatsKHR"))?;
        let blit_dst = |f: vk::Format| {
            // SAFETY: plain query on the physical device.
            let props = unsafe {
                ctx.instance()
                    .get_physical_device_format_properties(ctx.physical, f)
            };
            props
                .optimal_tiling_features
                .contains(vk::FormatFeatureFlags::BLIT_DST)
        };
        let usable: Vec<vk::SurfaceFormatKHR> =
            formats.into_iter().filter(|f| blit_dst(f.format)).collect();
        let preferred = [vk::Format::B8G8R8A8_SRGB, vk::Format::R8G8B8A8_SRGB];
        self.format = preferred
            .iter()
            .find_map(|p| {
                usable
                    .iter()
                    .copied()
                    .find(|f| f.format == *p && f.color_space == vk::ColorSpaceKHR::SRGB_NONLINEAR)
            })
            .or_else(|| usable.first().copied())
            .ok_or_else(|| target_error("the surface offers no format that blits can write"))?;
        Ok(())
    }

    /// Makes the swapchain again for a window of `window_px` (the surface's current extent
    /// wins when it has one). Waits for the device to be idle first.
    fn rebuild(&mut self, ctx: &GpuContext, window_px: (u32, u32)) -> Result<(), RenderError> {
        let d = &ctx.device;
        // SAFETY: waiting for idle is always allowed; afterwards no frame uses the old images
        // or the semaphores (every acquire was followed by a submit that waited on it).
        unsafe { d.device_wait_idle() }.map_err(RenderError::vk("vkDeviceWaitIdle"))?;
        // SAFETY: plain queries on the physical device and surface.
        let (caps, modes) = unsafe {
            (
                self.surface_fn
                    .get_physical_device_surface_capabilities(ctx.physical, self.surface)
                    .map_err(RenderError::vk("vkGetPhysicalDeviceSurfaceCapabilitiesKHR"))?,
                self.surface_fn
                    .get_physical_device_surface_present_modes(ctx.physical, self.surface)
                    .map_err(RenderError::vk("vkGetPhysicalDeviceSurfacePresentModesKHR"))?,
            )
        };
        if !caps
            .supported_usage_flags
            .contains(vk::ImageUsageFlags::TRANSFER_DST)
        {
            return Err(target_error(format!(
                "the swapchain images cannot be blitted into (usage {:?})",
                caps.supported_usage_flags
            )));
        }
        let extent = if caps.current_extent.width != u32::MAX {
            caps.current_extent
        } else {
            vk::Extent2D {
                width: window_px
                    .0
                    .clamp(caps.min_image_extent.width, caps.max_image_extent.width),
                height: window_px
                    .1
                    .clamp(caps.min_image_extent.height, caps.max_image_extent.height),
            }
        };
        if extent.width == 0 || extent.height == 0 {
            // Minimised: keep the old swapchain (if any) unused until the window grows.
            self.extent = vk::Extent2D::default();
            self.stale = true;
            return Ok(());
        }
        // Mailbox shows the newest frame without tearing and without blocking; FIFO always
        // exists.
        self.present_mode = [vk::PresentModeKHR::MAILBOX, vk::PresentModeKHR::FIFO]
            .into_iter()
            .find(|m| modes.contains(m))
            .unwrap_or(vk::PresentModeKHR::FIFO);
        let mut count = caps.min_image_count.max(2) + 1;
        if caps.max_image_count > 0 {
            count = count.min(caps.max_image_count);
        }
        let alpha = [
            vk::CompositeAlphaFlagsKHR::OPAQUE,
            vk::CompositeAlphaFlagsKHR::INHERIT,
            vk::CompositeAlphaFlagsKHR::PRE_MULTIPLIED,
            vk::CompositeAlphaFlagsKHR::POST_MULTIPLIED,
        ]
        .into_iter()
        .find(|a| caps.supported_composite_alpha.contains(*a))
        .unwrap_or(vk::CompositeAlphaFlagsKHR::OPAQUE);
        let old = self.swapchain;
        let info = vk::SwapchainCreateInfoKHR::default()
            .surface(self.surface)
            .min_image_count(count)
            .image_format(self.format.format)
            .image_color_space(self.format.color_space)
            .image_extent(extent)
            .image_array_layers(1)
            .image_usage(vk::ImageUsageFlags::TRANSFER_DST)
            .image_sharing_mode(vk::SharingMode::EXCLUSIVE)
            .pre_transform(caps.current_transform)
            .composite_alpha(alpha)
            .present_mode(self.present_mode)
            .clipped(true)
            .old_swapchain(old);
        // SAFETY: the surface is live and supported by the queue family (checked at device
        // selection); `old` is retired by this call and destroyed right after.
        let made = unsafe { self.swapchain_fn.create_swapchain(&info, None) };
        // SAFETY: the device is idle, so nothing uses the old swapchain's images; the old
        // swapchain is destroyed once (null is allowed).
        unsafe { self.swapchain_fn.destroy_swapchain(old, None) };
        self.swapchain = vk::SwapchainKHR::null();
        self.images.clear();
        let swapchain = made.map_err(RenderError::vk("vkCreateSwapchainKHR"))?;
        self.swapchain = swapchain;
        ctx.name(swapchain, "window swapchain");
        // SAFETY: the swapchain was just made on this device.
        self.images = unsafe { self.swapchain_fn.get_swapchain_images(swapchain) }
            .map_err(RenderError::vk("vkGetSwapchainImagesKHR"))?;
        for (i, &image) in self.images.iter().enumerate() {
            ctx.name(image, &format!("window swapchain image {i}"));
        }
        // One render-finished semaphore per image: made anew with the images (the device is
        // idle, so the presentation engine is done with the old ones).
        for sem in self.rendered_semaphores.drain(..) {
            // SAFETY: idle device; each semaphore is destroyed once.
            unsafe { d.destroy_semaphore(sem, None) };
        }
        for i in 0..self.images.len() {
            let sem = create_semaphore(ctx, &format!("window render-finished semaphore {i}"))?;
            self.rendered_semaphores.push(sem);
        }
        if old != vk::SwapchainKHR::null() {
            self.recreations += 1;
        }
        self.extent = extent;
        self.stale = false;
        Ok(())
    }

    /// Gets the next image for frame number `frame` (the renderer's
    /// [`crate::render::Renderer::frames_submitted`]), recreating the swapchain first when it
    /// is stale. The caller must submit a frame that waits on the returned semaphore.
    pub fn acquire(
        &mut self,
        ctx: &GpuContext,
        frame: u64,
        window_px: (u32, u32),
    ) -> Result<Acquired, RenderError> {
        if self.stale || self.swapchain == vk::SwapchainKHR::null() {
            self.rebuild(ctx, window_px)?;
            if self.stale || self.swapchain == vk::SwapchainKHR::null() {
                self.skipped_acquires += 1;
                return Ok(Acquired::Skip);
            }
        }
        let ready = self.acquire_semaphores[(frame % ACQUIRE_SEMAPHORES as u64) as usize];
        // SAFETY: the swapchain is live; `ready` is unsignalled with no pending operation
        // (its last waiter, frame `frame - ACQUIRE_SEMAPHORES`, was waited for by the renderer).
        let got = unsafe {
            self.swapchain_fn.acquire_next_image(
                self.swapchain,
                ACQUIRE_TIMEOUT_NS,
                ready,
                vk::Fence::null(),
            )
        };
        match got {
            Ok((index, suboptimal)) => {
                // Draw and present this one, then make a better swapchain.
                self.stale |= suboptimal;
                Ok(Acquired::Image { index, ready })
            }
            Err(vk::Result::ERROR_OUT_OF_DATE_KHR) => {
                self.stale = true;
                self.skipped_acquires += 1;
                Ok(Acquired::Skip)
            }
            Err(vk::Result::TIMEOUT | vk::Result::NOT_READY) => {
                self.skipped_acquires += 1;
                Ok(Acquired::Skip)
            }
            Err(e) => Err(RenderError::Vulkan {
                call: "vkAcquireNextImageKHR",
                result: e,
            }),
        }
    }

    /// The target the renderer blits image `index` into (waiting on `ready`, signalling the
    /// image's render-finished semaphore).
    pub fn target(&self, index: u32, ready: vk::Semaphore) -> crate::render::PresentTarget {
        crate::render::PresentTarget {
            image: self.images[index as usize],
            extent: self.extent,
            layers: 1,
            old_layout: vk::ImageLayout::UNDEFINED,
            new_layout: vk::ImageLayout::PRESENT_SRC_KHR,
            wait: ready,
            signal: self.rendered_semaphores[index as usize],
        }
    }

    /// Presents image `index` once its frame is in it.
    pub fn present(&mut self, ctx: &GpuContext, index: u32) -> Result<(), RenderError> {
        let waits = [self.rendered_semaphores[index as usize]];
        let swapchains = [self.swapchain];
        let indices = [index];
        let info = vk::PresentInfoKHR::default()
            .wait_semaphores(&waits)
            .swapchains(&swapchains)
            .image_indices(&indices);
        // SAFETY: the image was acquired and a submit that signals `waits` was queued on this
        // queue (render thread only, so the queue is not used concurrently).
        match unsafe { self.swapchain_fn.queue_present(ctx.queue, &info) } {
            Ok(suboptimal) => {
                self.presents += 1;
                self.stale |= suboptimal;
                Ok(())
            }
            Err(vk::Result::ERROR_OUT_OF_DATE_KHR) => {
                self.stale = true;
                Ok(())
            }
            Err(e) => Err(RenderError::Vulkan {
                call: "vkQueuePresentKHR",
                result: e,
            }),
        }
    }

    /// Destroys the swapchain, semaphores and surface (after the device is idle). Call before
    /// the renderer is dropped; calling twice does nothing.
    pub fn destroy(&mut self, ctx: &GpuContext) {
        let d = &ctx.device;
        // SAFETY: after the wait, nothing on the GPU uses these objects; each handle is
        // destroyed once and then forgotten (null handles are allowed).
        unsafe {
            let _ = d.device_wait_idle();
            self.swapchain_fn.destroy_swapchain(self.swapchain, None);
            for sem in self
                .acquire_semaphores
                .drain(..)
                .chain(self.rendered_semaphores.drain(..))
            {
                d.destroy_semaphore(sem, None);
            }
            self.surface_fn.destroy_surface(self.surface, None);
        }
        self.swapchain = vk::SwapchainKHR::null();
        self.surface = vk::SurfaceKHR::null();
        self.images.clear();
    }
}

fn create_semaphore(ctx: &GpuContext, name: &str) -> Result<vk::Semaphore, RenderError> {
    // SAFETY: plain object creation on the renderer's device.
    let sem = unsafe {
        ctx.device
            .create_semaphore(&vk::SemaphoreCreateInfo::default(), None)
    }
    .map_err(|result| RenderError::VulkanResource {
        call: "vkCreateSemaphore",
        resource: name.to_owned(),
        result,
    })?;
    ctx.name(sem, name);
    Ok(sem)
}

/// A present mode's name for reports (`mailbox`, `fifo`, ...).
pub fn present_mode_name(m: vk::PresentModeKHR) -> &'static str {
    match m {
        vk::PresentModeKHR::MAILBOX => "mailbox",
        vk::PresentModeKHR::FIFO => "fifo",
        vk::PresentModeKHR::FIFO_RELAXED => "fifo_relaxed",
        vk::PresentModeKHR::IMMEDIATE => "immediate",
        _ => "other",
    }
}
