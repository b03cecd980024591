//! The renderer's error type.
//!
//! Contract: every failure of the render module is a [`RenderError`]; variants keep the
//! failing Vulkan call and, where there is one, the name of the resource involved.

use std::path::PathBuf;

use ash::vk;

/// Everything that can go wrong in the renderer and its display targets.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum RenderError {
    /// The Vulkan loader (libvulkan.so.1) could not be loaded at run time.
    #[error("Vulkan loader not found ({message}); install libvulkan1 and a driver (scripts/install-deps.sh)")]
    LoaderMissing {
        /// The dynamic loader's message.
        message: String,
    },

    /// No usable physical device: none found, none matching the filter, or none with
    /// Vulkan 1.3 dynamic rendering + synchronization2.
    #[error("no usable Vulkan device (filter: {filter:?}); found: [{}]", found.join("; "))]
    NoDevice {
        /// The `device_filter` that was asked for, if any.
        filter: Option<String>,
        /// Every device seen, with why it was not taken.
        found: Vec<String>,
    },

    /// A Vulkan call failed.
    #[error("{call} failed: {result}")]
    Vulkan {
        /// The Vulkan entry point (and what it was doing).
        call: &'static str,
        /// The `VkResult` it returned.
        result: vk::Result,
    },

    /// A Vulkan call creating or using a named resource failed.
    #[error("{call} failed for '{resource}': {result}")]
    VulkanResource {
        /// The Vulkan entry point.
        call: &'static str,
        /// The debug name of the resource.
        resource: String,
        /// The `VkResult` it returned.
        result: vk::Result,
    },

    /// gpu-allocator could not allocate (or free) memory for a named resource.
    #[error("memory allocation for '{what}' failed: {source}")]
    Allocation {
        /// The debug name of the resource.
        what: String,
        /// The allocator's error.
        #[source]
        source: gpu_allocator::AllocationError,
    },

    /// Writing a PNG file failed.
    #[error("cannot write PNG {}: {source}", path.display())]
    Png {
        /// The file that was being written.
        path: PathBuf,
        /// The encoder's (or file system's) error.
        #[source]
        source: png::EncodingError,
    },

    /// Validation was requested but `VK_LAYER_KHRONOS_validation` is not installed.
    #[error("validation requested but VK_LAYER_KHRONOS_validation is not installed (install vulkan-validationlayers, see scripts/install-deps.sh); layers present: [{}]", available.join(", "))]
    ValidationLayerMissing {
        /// The instance layers that are installed.
        available: Vec<String>,
    },

    /// Validation was requested but the `VK_EXT_debug_utils` instance extension is missing,
    /// so messages could not be counted.
    #[error("validation requested but VK_EXT_debug_utils is not available")]
    DebugUtilsMissing,

    /// A Vulkan extension the display target needs is not offered (e.g. `VK_KHR_swapchain`
    /// for a window).
    #[error("the Vulkan {level} extension {extension} is not available")]
    ExtensionMissing {
        /// The extension's name.
        extension: String,
        /// `instance` or `device`.
        level: &'static str,
    },

    /// The display target (OpenXR runtime, window system) failed; `target` says which.
    #[error("{target}: {message}")]
    Target {
        /// `openxr`, `window`, ...
        target: &'static str,
        /// What went wrong, with the failing call.
        message: String,
    },

    /// The options cannot be honoured (e.g. a zero-sized image).
    #[error("invalid render options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },

    /// The scene cannot be drawn (e.g. a triangle index out of range).
    #[error("invalid scene: {reason}")]
    InvalidScene {
        /// What is wrong.
        reason: String,
    },
}

impl RenderError {
    pub(crate) fn vk(call: &'static str) -> impl FnOnce(vk::Result) -> RenderError {
        move |result| RenderError::Vulkan { call, result }
    }

    pub(crate) fn vk_res(
        call: &'static str,
        resource: &str,
    ) -> impl FnOnce(vk::Result) -> RenderError {
        let resource = resource.to_owned();
        move |result| RenderError::VulkanResource {
            call,
            resource,
            result,
        }
    }
}
