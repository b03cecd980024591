//! The headless renderer: the [`Renderer`] drawing into its own image and reading every
//! frame back to the CPU, one frame at a time. For tests, reports, replays and `haptwin run
//! --display headless`.
//!
//! Contract:
//! - render thread only; [`HeadlessRenderer::render`] and [`HeadlessRenderer::render_stereo`]
//!   submit and **wait** for their frame (allowed here, never on the haptic thread);
//! - output is RGBA8, sRGB-encoded, top row first, one image per view;
//! - dropping waits for the device to go idle and destroys everything.

use super::context::{PlainVulkan, ValidationReport};
use super::image::RgbaImage;
use super::renderer::{FrameOutput, Renderer, RendererOptions};
use super::scene::{Camera, RenderScene, ViewCamera};
use super::RenderError;

/// Size of the offscreen image and how to set up Vulkan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// Image width in pixels (> 0).
    pub width: u32,
    /// Image height in pixels (> 0).
    pub height: u32,
    /// Enable `VK_LAYER_KHRONOS_validation` and count its messages
    /// ([`HeadlessRenderer::validation`]).
    pub validation: bool,
    /// Only use a device whose name contains this (case-insensitive), e.g. `"llvmpipe"`.
    pub device_filter: Option<String>,
    /// 1 (mono) or 2 (stereo through multiview, [`HeadlessRenderer::render_stereo`]).
    pub views: u32,
    /// MSAA samples (1, 2, 4, 8; lowered to what the device supports).
    pub samples: u32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            validation: false,
            device_filter: None,
            views: 1,
            samples: 4,
        }
    }
}

/// Offscreen renderer for the simulator's scene. See the module docs for its contract.
pub struct HeadlessRenderer {
    inner: Renderer,
    frames: u64,
    last_gpu_ms: Option<f64>,
}

impl HeadlessRenderer {
    /// Creates the Vulkan context, targets, pipelines and static meshes.
    pub fn new(opts: &RenderOptions) -> Result<Self, RenderError> {
        let inner = Renderer::new(
            &RendererOptions {
                width: opts.width,
                height: opts.height,
                views: opts.views,
                samples: opts.samples,
                validation: opts.validation,
                device_filter: opts.device_filter.clone(),
                readback: true,
            },
            &PlainVulkan,
        )?;
        Ok(Self {
            inner,
            frames: 0,
            last_gpu_ms: None,
        })
    }

    /// The name of the Vulkan device in use (e.g. `llvmpipe (LLVM 19.1.7, 256 bits)`).
    pub fn device_name(&self) -> &str {
        self.inner.device_name()
    }

    /// Image size in pixels (width, height), per view.
    pub fn size(&self) -> (u32, u32) {
        self.inner.size()
    }

    /// Views per frame.
    pub fn views(&self) -> u32 {
        self.inner.views()
    }

    /// MSAA samples in use.
    pub fn samples(&self) -> u32 {
        self.inner.samples()
    }

    /// Number of frames rendered so far.
    pub fn frames_rendered(&self) -> u64 {
        self.frames
    }

    /// GPU time of the last frame, milliseconds (timestamp queries), if the device has them.
    pub fn last_gpu_ms(&self) -> Option<f64> {
        self.last_gpu_ms
    }

    /// What the validation layer reported so far (all zero and `enabled: false` when
    /// validation is off).
    pub fn validation(&self) -> ValidationReport {
        self.inner.validation()
    }

    /// The debug names given to Vulkan objects so far, as `"<ObjectType> <name>"` (empty when
    /// `VK_EXT_debug_utils` is unavailable).
    pub fn object_names(&self) -> Vec<String> {
        self.inner.object_names()
    }

    /// Destroys everything (like `drop`) and returns the final validation report, which
    /// includes anything the layer said during teardown and instance destruction.
    pub fn finish(self) -> ValidationReport {
        self.inner.finish()
    }

    /// Projects a world point to pixel coordinates (x right, y down, pixel centres at +0.5)
    /// with exactly the matrices the GPU uses; `None` if the point is behind the camera,
    /// outside the depth range, or the camera is unusable. Points outside the image still
    /// get coordinates (outside `0..width`, `0..height`).
    pub fn project(&self, camera: &Camera, p_m: [f32; 3]) -> Option<[f32; 2]> {
        let (w, h) = self.size();
        camera.view(w as f32 / h as f32).ok()?.project(w, h, p_m)
    }

    /// Draws one frame seen from `camera` and returns it (mono renderers). Blocks until the
    /// GPU has finished.
    pub fn render(
        &mut self,
        scene: &RenderScene<'_>,
        camera: &Camera,
    ) -> Result<RgbaImage, RenderError> {
        let (w, h) = self.size();
        let view = camera.view(w as f32 / h as f32)?;
        let mut images = self.render_views(scene, &[view])?;
        Ok(images.swap_remove(0))
    }

    /// Draws one stereo frame (stereo renderers): the two eyes `ipd_m` apart around `camera`
    /// ([`Camera::stereo`]); returns (left, right). Blocks until the GPU has finished.
    pub fn render_stereo(
        &mut self,
        scene: &RenderScene<'_>,
        camera: &Camera,
        ipd_m: f32,
    ) -> Result<(RgbaImage, RgbaImage), RenderError> {
        let (w, h) = self.size();
        let views = camera.stereo(w as f32 / h as f32, ipd_m)?;
        let mut images = self.render_views(scene, &views)?;
        let right = images.pop();
        match (images.pop(), right) {
            (Some(l), Some(r)) => Ok((l, r)),
            _ => Err(RenderError::InvalidOptions {
                reason: "render_stereo needs a renderer made with views: 2".into(),
            }),
        }
    }

    /// Draws one frame for explicit views (as many as the renderer has) and returns one
    /// image per view. Blocks until the GPU has finished.
    pub fn render_views(
        &mut self,
        scene: &RenderScene<'_>,
        views: &[ViewCamera],
    ) -> Result<Vec<RgbaImage>, RenderError> {
        self.inner.render(scene, views, FrameOutput::Readback)?;
        let mut done = self.inner.drain()?;
        let frame = done.pop().ok_or_else(|| RenderError::InvalidScene {
            reason: "the frame did not complete".into(),
        })?;
        self.frames += 1;
        self.last_gpu_ms = frame.gpu_ms;
        Ok(frame.images)
    }
}
