//! The renderer: draws the scene (operating table, tissue with a material per vertex and an
//! optional strain overlay, the instrument, an in-world board with text and a force gauge)
//! for one view or for two eyes at once (`VK_KHR_multiview`), with MSAA, into its own sRGB
//! image, then hands the frame to an output: read back to the CPU (headless), or copied into
//! a display's image (an OpenXR swapchain image, a window's swapchain image).
//!
//! Contract:
//! - render thread only; [`Renderer::render`] never blocks on the frame it submits: up to
//!   [`PIPELINE_DEPTH`] frames are in flight, and a call waits (fence, with a timeout) only
//!   for the frame submitted `PIPELINE_DEPTH` calls earlier, whose results it returns;
//! - per frame slot: its own command buffer, fence, uniform buffer, descriptor set, tissue and
//!   text vertex buffers (host-visible, grown when a scene needs more) and readback buffer, so
//!   the CPU writes frame N+1 while the GPU draws frame N;
//! - the colour (MSAA), depth and resolve targets are shared by the slots: the GPU orders the
//!   frames on its queue (barriers at the start of each frame);
//! - GPU time per frame comes from timestamp queries when the queue supports them;
//! - Vulkan 1.3 (dynamic rendering, synchronization2) and Vulkan 1.1 `multiview`; every
//!   object is named for the debugger; dropping waits for the device to go idle.

use ash::vk;
use gpu_allocator::MemoryLocation;

use super::context::{ContextHooks, GpuContext, ValidationReport};
use super::font::{FontAtlas, GlyphQuad};
use super::gpu::{color_layer, image_barrier, layer_range, Gpu, GpuBuffer, GpuImage, ImageDesc};
use super::image::RgbaImage;
use super::math::{self, Mat4};
use super::mesh::{self, Vertex, VERTEX_STRIDE};
use super::scene::{material, Panel, RenderScene, ViewCamera, BACKGROUND_SRGB, MATERIALS};
use super::RenderError;

/// Frames in flight: the CPU records one while the GPU draws the other.
pub const PIPELINE_DEPTH: usize = 2;
/// Longest wait for one frame's fence, nanoseconds (10 s), before giving up with VK_TIMEOUT.
pub const FRAME_TIMEOUT_NS: u64 = 10_000_000_000;
/// The renderer's own colour format (sRGB; shaders output linear colour).
pub const COLOR_FORMAT: vk::Format = vk::Format::R8G8B8A8_SRGB;
const DEPTH_FORMAT: vk::Format = vk::Format::D32_SFLOAT;
/// Size of the push-constant block `Draw` in `shaders/mesh.wgsl`.
const PUSH_BYTES: usize = 96;
/// Size of the uniform block `Frame` in `shaders/mesh.wgsl`.
const FRAME_UNIFORM_BYTES: usize = 320;
/// Stride of a text vertex (position, uv).
const TEXT_STRIDE: usize = 20;
/// Timestamp queries per frame slot: the start at `QUERIES_PER_SLOT * s`, the end two
/// further on. A driver may write one query per view for a timestamp after a multiview
/// render pass (lavapipe does, and wrote past a tightly packed pool), so each gets room
/// for two.
const QUERIES_PER_SLOT: u32 = 4;
const LIGHT_TOWARDS: [f32; 3] = [0.3, 1.0, 0.45];
const AMBIENT: f32 = 0.22;

/// Tool tip colour at zero force (linear RGB, grey).
pub const TOOL_COLOR_IDLE: [f32; 3] = [0.50, 0.51, 0.53];
/// Tool tip colour at [`TOOL_FORCE_FULL_RED_N`] and above (linear RGB).
pub const TOOL_COLOR_FORCE: [f32; 3] = [0.80, 0.04, 0.03];
/// Contact force magnitude (N) at which the tool tip is fully red.
pub const TOOL_FORCE_FULL_RED_N: f32 = 5.0;
/// The instrument's shaft: length (m) and colour (linear RGB, brushed steel).
pub const SHAFT_LENGTH_M: f32 = 0.12;
const SHAFT_COLOR: [f32; 3] = [0.62, 0.63, 0.66];
/// Top of the operating table (m).
pub const TABLE_Y_M: f32 = -0.04;
/// Side of the square operating table (m).
pub const TABLE_SIZE_M: f32 = 0.3;
/// Operating table colour (linear RGB), dark green-grey.
pub const TABLE_COLOR: [f32; 3] = [0.035, 0.055, 0.045];
const BOARD_COLOR: [f32; 3] = [0.012, 0.015, 0.02];
const TEXT_COLOR: [f32; 3] = [0.85, 0.86, 0.80];
const GAUGE_TRACK_COLOR: [f32; 3] = [0.06, 0.06, 0.06];

/// How to set the renderer up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RendererOptions {
    /// Image width per view, pixels (1..=16384).
    pub width: u32,
    /// Image height per view, pixels (1..=16384).
    pub height: u32,
    /// 1 (mono) or 2 (stereo, one pass with `VK_KHR_multiview`: layer 0 left, 1 right).
    pub views: u32,
    /// MSAA samples: 1, 2, 4 or 8 (lowered to what the device supports).
    pub samples: u32,
    /// Enable `VK_LAYER_KHRONOS_validation` and count its messages.
    pub validation: bool,
    /// Only use a device whose name contains this (case-insensitive), e.g. `"llvmpipe"`.
    pub device_filter: Option<String>,
    /// Keep a readback buffer per frame slot ([`FrameOutput::Readback`]).
    pub readback: bool,
}

impl Default for RendererOptions {
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            views: 1,
            samples: 4,
            validation: false,
            device_filter: None,
            readback: true,
        }
    }
}

/// Where a frame goes once drawn.
#[derive(Clone, Copy, Debug)]
pub enum FrameOutput {
    /// Nowhere (benchmarks).
    None,
    /// Back to the CPU: [`CompletedFrame::images`], one RGBA image per view.
    Readback,
    /// Into a display's image (copied, scaled if the sizes differ).
    Present(PresentTarget),
}

/// A display's image to copy a frame into. View `i` goes into layer `i` (a one-layer target
/// gets the first view).
#[derive(Clone, Copy, Debug)]
pub struct PresentTarget {
    /// The image (must allow `TRANSFER_DST` and blits).
    pub image: vk::Image,
    /// Its size.
    pub extent: vk::Extent2D,
    /// Its array layers (1 or 2).
    pub layers: u32,
    /// Its layout now (`UNDEFINED` when its contents do not matter).
    pub old_layout: vk::ImageLayout,
    /// The layout to leave it in (`PRESENT_SRC_KHR` for a window, `COLOR_ATTACHMENT_OPTIMAL`
    /// for OpenXR).
    pub new_layout: vk::ImageLayout,
    /// A semaphore to wait on before the copy (a window's acquire semaphore), or null.
    pub wait: vk::Semaphore,
    /// A semaphore to signal when the frame is in the image (for presenting), or null.
    pub signal: vk::Semaphore,
}

/// A frame the GPU has finished.
#[derive(Clone, Debug)]
pub struct CompletedFrame {
    /// Its number (0 = the first frame rendered).
    pub frame: u64,
    /// GPU time from the frame's first to its last command, milliseconds (timestamp
    /// queries), when the queue supports them.
    pub gpu_ms: Option<f64>,
    /// One image per view when the frame was read back (RGBA8, sRGB, top row first).
    pub images: Vec<RgbaImage>,
}

/// Vertex + index buffers of one mesh, with capacities (in vertices / indices).
#[derive(Default)]
struct MeshBuffers {
    vertices: GpuBuffer,
    indices: GpuBuffer,
    vertex_capacity: usize,
    index_capacity: usize,
    index_count: u32,
}

/// One frame in flight's own resources.
#[derive(Default)]
struct Slot {
    pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
    uniform: GpuBuffer,
    set: vk::DescriptorSet,
    tissue: MeshBuffers,
    /// The topology (and triangle count) whose indices the tissue buffer holds.
    tissue_topology: Option<(u64, usize)>,
    text: GpuBuffer,
    text_capacity: usize,
    readback: GpuBuffer,
    /// The frame submitted from this slot and not yet collected: (number, read back?).
    pending: Option<(u64, bool)>,
}

/// One draw of the mesh pipeline.
struct Draw {
    mesh: MeshId,
    push: [u8; PUSH_BYTES],
}

#[derive(Clone, Copy)]
enum MeshId {
    Table,
    Sphere,
    Shaft,
    Quad,
    Tissue,
}

/// See the module docs for the contract.
pub struct Renderer {
    opts: RendererOptions,
    samples: vk::SampleCountFlags,
    color: GpuImage,
    depth: GpuImage,
    resolve: GpuImage,
    atlas: GpuImage,
    font: FontAtlas,
    sampler: vk::Sampler,
    table: MeshBuffers,
    sphere: MeshBuffers,
    shaft: MeshBuffers,
    quad: MeshBuffers,
    set_layout: vk::DescriptorSetLayout,
    descriptor_pool: vk::DescriptorPool,
    layout: vk::PipelineLayout,
    mesh_pipeline: vk::Pipeline,
    text_pipeline: vk::Pipeline,
    queries: vk::QueryPool,
    timestamp_period_ns: Option<f64>,
    slots: Vec<Slot>,
    frames: u64,
    last_wait: std::time::Duration,
    scratch: Vec<Vertex>,
    glyphs: Vec<GlyphQuad>,
    text_bytes: Vec<u8>,
    // Declared last: dropped after Drop::drop destroyed everything above.
    gpu: Gpu,
}

impl Renderer {
    /// Sets Vulkan up (through `hooks`: plain, a window's, or an OpenXR runtime's), the
    /// targets, pipelines, static meshes and font atlas, and the frame slots.
    pub fn new(opts: &RendererOptions, hooks: &dyn ContextHooks) -> Result<Self, RenderError> {
        if opts.width == 0 || opts.height == 0 || opts.width > 16384 || opts.height > 16384 {
            return Err(RenderError::InvalidOptions {
                reason: format!(
                    "image size {}x{} (each side must be 1..=16384)",
                    opts.width, opts.height
                ),
            });
        }
        if !(1..=2).contains(&opts.views) {
            return Err(RenderError::InvalidOptions {
                reason: format!("{} views (1 or 2)", opts.views),
            });
        }
        if ![1, 2, 4, 8].contains(&opts.samples) {
            return Err(RenderError::InvalidOptions {
                reason: format!("{} MSAA samples (1, 2, 4 or 8)", opts.samples),
            });
        }
        let gpu = Gpu::new(opts.validation, opts.device_filter.as_deref(), hooks)?;
        let mut r = Renderer {
            opts: opts.clone(),
            samples: vk::SampleCountFlags::TYPE_1,
            color: GpuImage::default(),
            depth: GpuImage::default(),
            resolve: GpuImage::default(),
            atlas: GpuImage::default(),
            font: FontAtlas::builtin_scaled(2),
            sampler: vk::Sampler::null(),
            table: MeshBuffers::default(),
            sphere: MeshBuffers::default(),
            shaft: MeshBuffers::default(),
            quad: MeshBuffers::default(),
            set_layout: vk::DescriptorSetLayout::null(),
            descriptor_pool: vk::DescriptorPool::null(),
            layout: vk::PipelineLayout::null(),
            mesh_pipeline: vk::Pipeline::null(),
            text_pipeline: vk::Pipeline::null(),
            queries: vk::QueryPool::null(),
            timestamp_period_ns: None,
            slots: Vec::new(),
            frames: 0,
            last_wait: std::time::Duration::ZERO,
            scratch: Vec::new(),
            glyphs: Vec::new(),
            text_bytes: Vec::new(),
            gpu,
        };
        // Everything starts null; if `init` fails, Drop destroys what was made (after the
        // target destroyed its own objects on the instance).
        if let Err(e) = r.init() {
            hooks.instance_failing(r.ctx().instance());
            return Err(e);
        }
        Ok(r)
    }

    fn ctx(&self) -> &GpuContext {
        &self.gpu.ctx
    }

    fn init(&mut self) -> Result<(), RenderError> {
        let instance = self.ctx().instance().clone();
        let physical = self.ctx().physical;
        // SAFETY: plain queries on the chosen physical device.
        let (depth_props, props, families) = unsafe {
            (
                instance.get_physical_device_format_properties(physical, DEPTH_FORMAT),
                instance.get_physical_device_properties(physical),
                instance.get_physical_device_queue_family_properties(physical),
            )
        };
        if !depth_props
            .optimal_tiling_features
            .contains(vk::FormatFeatureFlags::DEPTH_STENCIL_ATTACHMENT)
        {
            return Err(RenderError::Vulkan {
                call: "vkGetPhysicalDeviceFormatProperties(D32_SFLOAT depth attachment)",
                result: vk::Result::ERROR_FORMAT_NOT_SUPPORTED,
            });
        }
        let supported = props.limits.framebuffer_color_sample_counts
            & props.limits.framebuffer_depth_sample_counts;
        let mut samples = self.opts.samples;
        while samples > 1 && !supported.contains(vk::SampleCountFlags::from_raw(samples)) {
            samples /= 2;
        }
        self.samples = vk::SampleCountFlags::from_raw(samples);
        let family = families.get(self.ctx().queue_family as usize);
        if family.is_some_and(|f| f.timestamp_valid_bits > 0) && props.limits.timestamp_period > 0.0
        {
            self.timestamp_period_ns = Some(f64::from(props.limits.timestamp_period));
        }

        let (w, h, views) = (self.opts.width, self.opts.height, self.opts.views);
        if samples > 1 {
            self.color = self.gpu.create_image(&ImageDesc {
                name: "msaa color target",
                format: COLOR_FORMAT,
                width: w,
                height: h,
                layers: views,
                samples: self.samples,
                usage: vk::ImageUsageFlags::COLOR_ATTACHMENT
                    | vk::ImageUsageFlags::TRANSIENT_ATTACHMENT,
                aspect: vk::ImageAspectFlags::COLOR,
                view_type: vk::ImageViewType::TYPE_2D_ARRAY,
            })?;
        }
        self.depth = self.gpu.create_image(&ImageDesc {
            name: "depth target",
            format: DEPTH_FORMAT,
            width: w,
            height: h,
            layers: views,
            samples: self.samples,
            usage: vk::ImageUsageFlags::DEPTH_STENCIL_ATTACHMENT,
            aspect: vk::ImageAspectFlags::DEPTH,
            view_type: vk::ImageViewType::TYPE_2D_ARRAY,
        })?;
        self.resolve = self.gpu.create_image(&ImageDesc {
            name: "color target",
            format: COLOR_FORMAT,
            width: w,
            height: h,
            layers: views,
            samples: vk::SampleCountFlags::TYPE_1,
            usage: vk::ImageUsageFlags::COLOR_ATTACHMENT | vk::ImageUsageFlags::TRANSFER_SRC,
            aspect: vk::ImageAspectFlags::COLOR,
            view_type: vk::ImageViewType::TYPE_2D_ARRAY,
        })?;
        let (v, i) = mesh::table_quad(TABLE_SIZE_M, TABLE_Y_M);
        self.table = self.static_mesh("table", &v, &i)?;
        let (v, i) = mesh::uv_sphere(16, 24);
        self.sphere = self.static_mesh("tool tip sphere", &v, &i)?;
        let (v, i) = mesh::cylinder(16);
        self.shaft = self.static_mesh("tool shaft", &v, &i)?;
        let (v, i) = mesh::unit_quad();
        self.quad = self.static_mesh("panel quad", &v, &i)?;
        self.create_atlas()?;
        self.create_descriptors()?;
        self.mesh_pipeline = self.create_pipeline("mesh", true)?;
        self.text_pipeline = self.create_pipeline("text", false)?;
        self.create_slots()?;
        Ok(())
    }

    /// The name of the Vulkan device in use (e.g. `llvmpipe (LLVM 19.1.7, 256 bits)`).
    pub fn device_name(&self) -> &str {
        &self.ctx().device_name
    }

    /// Image size per view in pixels (width, height).
    pub fn size(&self) -> (u32, u32) {
        (self.opts.width, self.opts.height)
    }

    /// Views per frame (1 or 2).
    pub fn views(&self) -> u32 {
        self.opts.views
    }

    /// MSAA samples in use.
    pub fn samples(&self) -> u32 {
        self.samples.as_raw()
    }

    /// Whether frames report GPU time (timestamp queries).
    pub fn has_gpu_timing(&self) -> bool {
        self.timestamp_period_ns.is_some()
    }

    /// Frames submitted so far.
    pub fn frames_submitted(&self) -> u64 {
        self.frames
    }

    /// How long the last [`Self::render`] waited for the GPU (the fence of the frame it
    /// collected): subtracted from its duration, what remains is the CPU's own work.
    pub fn last_fence_wait(&self) -> std::time::Duration {
        self.last_wait
    }

    /// What the validation layer reported so far.
    pub fn validation(&self) -> ValidationReport {
        self.ctx().debug.report()
    }

    /// The debug names given to Vulkan objects so far, as `"<ObjectType> <name>"`.
    pub fn object_names(&self) -> Vec<String> {
        self.ctx().object_names()
    }

    /// The Vulkan handles, for a display target that makes its own objects (swapchains,
    /// semaphores) on the renderer's device.
    pub fn context(&self) -> &GpuContext {
        self.ctx()
    }

    /// Destroys everything and returns the final validation report, which includes anything
    /// the layer said during teardown and instance destruction.
    pub fn finish(self) -> ValidationReport {
        let debug = self.ctx().debug.clone();
        drop(self);
        debug.report()
    }

    /// Draws one frame for `views` (as many as the renderer has) and sends it to `output`.
    /// Returns the frame submitted [`PIPELINE_DEPTH`] calls ago, if that one was waited for
    /// now (its slot is reused); [`Self::drain`] collects the rest.
    pub fn render(
        &mut self,
        scene: &RenderScene<'_>,
        views: &[ViewCamera],
        output: FrameOutput,
    ) -> Result<Option<CompletedFrame>, RenderError> {
        if views.len() != self.opts.views as usize {
            return Err(RenderError::InvalidScene {
                reason: format!(
                    "{} cameras for a renderer with {} views",
                    views.len(),
                    self.opts.views
                ),
            });
        }
        if let Some(bad) = views.iter().find(|v| {
            !v.view_proj
                .iter()
                .flatten()
                .chain(&v.eye_m)
                .all(|x| x.is_finite())
        }) {
            return Err(RenderError::InvalidScene {
                reason: format!("a camera is not finite: {bad:?}"),
            });
        }
        if matches!(output, FrameOutput::Readback) && !self.opts.readback {
            return Err(RenderError::InvalidOptions {
                reason: "read back asked of a renderer made without readback".into(),
            });
        }
        let s = (self.frames % PIPELINE_DEPTH as u64) as usize;
        self.last_wait = std::time::Duration::ZERO;
        let completed = self.collect(s)?;
        self.write_tissue(s, scene)?;
        let text_vertices = self.write_text(s, scene.panel.as_ref())?;
        self.write_uniform(s, views, !scene.tissue_overlay.is_empty())?;
        let draws = self.draws(scene, s);
        self.record(s, &draws, text_vertices, &output)?;
        self.submit(s, &output)?;
        self.slots[s].pending = Some((self.frames, matches!(output, FrameOutput::Readback)));
        self.frames += 1;
        Ok(completed)
    }

    /// Waits for every frame in flight and returns them, oldest first.
    pub fn drain(&mut self) -> Result<Vec<CompletedFrame>, RenderError> {
        let mut out = Vec::new();
        for k in 0..PIPELINE_DEPTH as u64 {
            let s = ((self.frames + k) % PIPELINE_DEPTH as u64) as usize;
            if let Some(f) = self.collect(s)? {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// Waits for slot `s`'s frame, if one is pending, and returns its results.
    fn collect(&mut self, s: usize) -> Result<Option<CompletedFrame>, RenderError> {
        let Some((frame, readback)) = self.slots[s].pending.take() else {
            return Ok(None);
        };
        let d = self.ctx().device.clone();
        let fence = self.slots[s].fence;
        let waited = std::time::Instant::now();
        // SAFETY: the fence belongs to this device and was submitted with the slot's frame.
        // Waiting is allowed on the render thread; a hung device ends in VK_TIMEOUT.
        unsafe {
            d.wait_for_fences(&[fence], true, FRAME_TIMEOUT_NS)
                .map_err(RenderError::vk("vkWaitForFences"))?;
            self.last_wait += waited.elapsed();
            d.reset_fences(&[fence])
                .map_err(RenderError::vk("vkResetFences"))?;
        }
        let gpu_ms = match self.timestamp_period_ns {
            Some(period) => {
                let mut start = [0u64; 1];
                let mut end = [0u64; 1];
                let first = QUERIES_PER_SLOT * s as u32;
                // SAFETY: both queries were written by the frame just waited for.
                let got = unsafe {
                    d.get_query_pool_results(
                        self.queries,
                        first,
                        &mut start,
                        vk::QueryResultFlags::TYPE_64,
                    )
                    .and_then(|()| {
                        d.get_query_pool_results(
                            self.queries,
                            first + 2,
                            &mut end,
                            vk::QueryResultFlags::TYPE_64,
                        )
                    })
                };
                got.ok()
                    .map(|()| end[0].wrapping_sub(start[0]) as f64 * period / 1e6)
            }
            None => None,
        };
        let mut images = Vec::new();
        if readback {
            self.gpu.sync_mapped(&self.slots[s].readback, false)?;
            let (w, h) = (self.opts.width, self.opts.height);
            let per = w as usize * h as usize * 4;
            let bytes = self.slots[s].readback.mapped()?;
            for v in 0..self.opts.views as usize {
                images.push(RgbaImage {
                    width: w,
                    height: h,
                    pixels: bytes[v * per..(v + 1) * per].to_vec(),
                });
            }
        }
        Ok(Some(CompletedFrame {
            frame,
            gpu_ms,
            images,
        }))
    }

    fn write_tissue(&mut self, s: usize, scene: &RenderScene<'_>) -> Result<(), RenderError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = mesh::tissue_vertices(
            scene.tissue_positions_m,
            scene.tissue_triangles,
            scene.tissue_materials,
            scene.tissue_overlay,
            u32::from(material::DEFAULT),
            &mut scratch,
        )
        .and_then(|()| {
            let index_count = scene.tissue_triangles.len() * 3;
            if index_count > u32::MAX as usize {
                return Err(RenderError::InvalidScene {
                    reason: "too many tissue triangles".into(),
                });
            }
            if index_count == 0 {
                self.slots[s].tissue.index_count = 0;
                return Ok(());
            }
            self.ensure_tissue_capacity(s, scratch.len(), index_count)?;
            let topology = (scene.tissue_topology, scene.tissue_triangles.len());
            let keep_indices =
                scene.tissue_topology != 0 && self.slots[s].tissue_topology == Some(topology);
            let m = &mut self.slots[s].tissue;
            mesh::write_vertices(
                &mut m.vertices.mapped_mut()?[..scratch.len() * VERTEX_STRIDE],
                &scratch,
            );
            if !keep_indices {
                mesh::write_indices(
                    &mut m.indices.mapped_mut()?[..index_count * 4],
                    scene.tissue_triangles.iter().flatten().copied(),
                );
                self.slots[s].tissue_topology = Some(topology);
            }
            let m = &mut self.slots[s].tissue;
            m.index_count = index_count as u32;
            self.gpu.sync_mapped(&self.slots[s].tissue.vertices, true)?;
            self.gpu.sync_mapped(&self.slots[s].tissue.indices, true)
        });
        self.scratch = scratch;
        result
    }

    /// Lays the panel's text out in the world and writes its vertices; returns how many.
    fn write_text(&mut self, s: usize, panel: Option<&Panel<'_>>) -> Result<u32, RenderError> {
        let Some(p) = panel else { return Ok(0) };
        let mut glyphs = std::mem::take(&mut self.glyphs);
        self.font.layout(p.text, p.glyph_height_m, &mut glyphs);
        let (ex, eu, n) = panel_axes(p);
        let margin = panel_margin(p);
        let lift = math::scale(n, 0.0015);
        let mut bytes = std::mem::take(&mut self.text_bytes);
        bytes.clear();
        for g in &glyphs {
            let corner = |x: f32, y: f32| {
                math::add(
                    math::add(p.top_left_m, lift),
                    math::add(math::scale(ex, margin + x), math::scale(eu, -(margin + y))),
                )
            };
            let quad = [
                (corner(g.min[0], g.max[1]), [g.uv_min[0], g.uv_max[1]]),
                (corner(g.max[0], g.max[1]), [g.uv_max[0], g.uv_max[1]]),
                (corner(g.max[0], g.min[1]), [g.uv_max[0], g.uv_min[1]]),
                (corner(g.min[0], g.min[1]), [g.uv_min[0], g.uv_min[1]]),
            ];
            for k in [0usize, 1, 2, 0, 2, 3] {
                let (pos, uv) = quad[k];
                for f in pos.iter().chain(uv.iter()) {
                    bytes.extend_from_slice(&f.to_ne_bytes());
                }
            }
        }
        self.glyphs = glyphs;
        let count = bytes.len() / TEXT_STRIDE;
        let result = (|| {
            if count == 0 {
                return Ok(());
            }
            if count > self.slots[s].text_capacity {
                let cap = count.max(1024).next_power_of_two();
                let mut old = std::mem::take(&mut self.slots[s].text);
                // The slot's previous frame has completed (collected), so it is unused.
                self.gpu.destroy_buffer(&mut old);
                self.slots[s].text_capacity = 0;
                self.slots[s].text = self.gpu.create_buffer(
                    &format!("frame slot {s} text vertices"),
                    (cap * TEXT_STRIDE) as u64,
                    vk::BufferUsageFlags::VERTEX_BUFFER,
                    MemoryLocation::CpuToGpu,
                )?;
                self.slots[s].text_capacity = cap;
            }
            self.slots[s].text.mapped_mut()?[..bytes.len()].copy_from_slice(&bytes);
            self.gpu.sync_mapped(&self.slots[s].text, true)
        })();
        self.text_bytes = bytes;
        result.map(|()| count as u32)
    }

    fn write_uniform(
        &mut self,
        s: usize,
        views: &[ViewCamera],
        overlay: bool,
    ) -> Result<(), RenderError> {
        let light = math::normalize(LIGHT_TOWARDS).unwrap_or([0.0, 1.0, 0.0]);
        let mut f = [0f32; FRAME_UNIFORM_BYTES / 4];
        for v in 0..2 {
            let cam = &views[v.min(views.len() - 1)];
            let base = v * 20;
            for (c, col) in cam.view_proj.iter().enumerate() {
                f[base + c * 4..base + c * 4 + 4].copy_from_slice(col);
            }
            f[base + 16..base + 19].copy_from_slice(&cam.eye_m);
        }
        f[40..44].copy_from_slice(&[light[0], light[1], light[2], AMBIENT]);
        for (m, c) in MATERIALS.iter().enumerate() {
            f[44 + 4 * m..48 + 4 * m].copy_from_slice(c);
        }
        f[76] = if overlay { 1.0 } else { 0.0 };
        let dst = self.slots[s].uniform.mapped_mut()?;
        for (chunk, v) in dst[..FRAME_UNIFORM_BYTES].chunks_exact_mut(4).zip(f) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        self.gpu.sync_mapped(&self.slots[s].uniform, true)
    }

    fn draws(&self, scene: &RenderScene<'_>, s: usize) -> Vec<Draw> {
        let mut draws = Vec::with_capacity(8);
        draws.push(Draw {
            mesh: MeshId::Table,
            push: push(&math::IDENTITY, TABLE_COLOR, 0.05, true, false),
        });
        if self.slots[s].tissue.index_count > 0 {
            draws.push(Draw {
                mesh: MeshId::Tissue,
                push: push(&math::IDENTITY, [0.0; 3], 0.0, false, true),
            });
        }
        let r = scene.tool_radius_m;
        let c = scene.tool_center_m;
        if r > 0.0 && r.is_finite() && c.iter().all(|v| v.is_finite()) {
            let axis = math::normalize(scene.tool_axis)
                .filter(|a| a.iter().all(|v| v.is_finite()))
                .unwrap_or(DEFAULT_TOOL_AXIS);
            let shaft_r = (0.35 * r).max(0.0008);
            draws.push(Draw {
                mesh: MeshId::Shaft,
                push: push(
                    &math::model_along(c, axis, [shaft_r, SHAFT_LENGTH_M, shaft_r]),
                    SHAFT_COLOR,
                    0.8,
                    true,
                    false,
                ),
            });
            draws.push(Draw {
                mesh: MeshId::Sphere,
                push: push(
                    &math::translate_scale(c, r),
                    tool_color(scene.tool_force_n),
                    0.6,
                    true,
                    false,
                ),
            });
        }
        if let Some(p) = &scene.panel {
            let (ex, eu, n) = panel_axes(p);
            let margin = panel_margin(p);
            let (_, lines) = self.font.measure(p.text);
            let text_h = lines.max(1) as f32 * 1.2 * p.glyph_height_m;
            let gauge_h = p.glyph_height_m;
            let height = 2.0 * margin + text_h + 0.5 * p.glyph_height_m + gauge_h;
            let bottom_left = math::add(p.top_left_m, math::scale(eu, -height));
            draws.push(Draw {
                mesh: MeshId::Quad,
                push: push(
                    &math::model_from_axes(
                        bottom_left,
                        math::scale(ex, p.width_m),
                        math::scale(eu, height),
                        n,
                    ),
                    BOARD_COLOR,
                    0.05,
                    true,
                    false,
                ),
            });
            // The gauge: a dark track and a bar from green (0) to red (full scale).
            let track_w = p.width_m - 2.0 * margin;
            let track_origin = math::add(
                math::add(bottom_left, math::scale(n, 0.0008)),
                math::add(math::scale(ex, margin), math::scale(eu, margin)),
            );
            draws.push(Draw {
                mesh: MeshId::Quad,
                push: push(
                    &math::model_from_axes(
                        track_origin,
                        math::scale(ex, track_w),
                        math::scale(eu, gauge_h),
                        n,
                    ),
                    GAUGE_TRACK_COLOR,
                    0.0,
                    true,
                    false,
                ),
            });
            let fraction = gauge_fraction(p.force_n, p.force_max_n);
            if fraction > 0.0 {
                draws.push(Draw {
                    mesh: MeshId::Quad,
                    push: push(
                        &math::model_from_axes(
                            math::add(track_origin, math::scale(n, 0.0006)),
                            math::scale(ex, track_w * fraction),
                            math::scale(eu, gauge_h),
                            n,
                        ),
                        gauge_color(fraction),
                        0.0,
                        true,
                        false,
                    ),
                });
            }
        }
        draws
    }

    fn mesh(&self, id: MeshId, s: usize) -> &MeshBuffers {
        match id {
            MeshId::Table => &self.table,
            MeshId::Sphere => &self.sphere,
            MeshId::Shaft => &self.shaft,
            MeshId::Quad => &self.quad,
            MeshId::Tissue => &self.slots[s].tissue,
        }
    }

    fn record(
        &self,
        s: usize,
        draws: &[Draw],
        text_vertices: u32,
        output: &FrameOutput,
    ) -> Result<(), RenderError> {
        let d = &self.ctx().device;
        let slot = &self.slots[s];
        let cmd = slot.cmd;
        let (w, h, views) = (self.opts.width, self.opts.height, self.opts.views);
        let extent = vk::Extent2D {
            width: w,
            height: h,
        };
        let bg = BACKGROUND_SRGB.map(srgb_to_linear);
        let msaa = self.samples != vk::SampleCountFlags::TYPE_1;
        let colour_range = layer_range(vk::ImageAspectFlags::COLOR, 0, views);
        // SAFETY: the slot's command buffer is not in use (its previous frame was waited for
        // in `collect`); every handle recorded lives until the slot's fence is waited for.
        unsafe {
            d.reset_command_pool(slot.pool, vk::CommandPoolResetFlags::empty())
                .map_err(RenderError::vk("vkResetCommandPool"))?;
            d.begin_command_buffer(
                cmd,
                &vk::CommandBufferBeginInfo::default()
                    .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
            )
            .map_err(RenderError::vk("vkBeginCommandBuffer"))?;
            if self.timestamp_period_ns.is_some() {
                d.cmd_reset_query_pool(
                    cmd,
                    self.queries,
                    QUERIES_PER_SLOT * s as u32,
                    QUERIES_PER_SLOT,
                );
                d.cmd_write_timestamp2(
                    cmd,
                    vk::PipelineStageFlags2::TOP_OF_PIPE,
                    self.queries,
                    QUERIES_PER_SLOT * s as u32,
                );
            }
            // The previous frame's contents are discarded: wait for its attachment writes and
            // copies (same queue), then start from UNDEFINED.
            let mut barriers = vec![
                image_barrier(
                    self.resolve.image,
                    colour_range,
                    vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT
                        | vk::PipelineStageFlags2::COPY
                        | vk::PipelineStageFlags2::BLIT,
                    vk::AccessFlags2::COLOR_ATTACHMENT_WRITE,
                    vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT,
                    vk::AccessFlags2::COLOR_ATTACHMENT_WRITE,
                    vk::ImageLayout::UNDEFINED,
                    vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
                ),
                image_barrier(
                    self.depth.image,
                    layer_range(vk::ImageAspectFlags::DEPTH, 0, views),
                    vk::PipelineStageFlags2::LATE_FRAGMENT_TESTS,
                    vk::AccessFlags2::DEPTH_STENCIL_ATTACHMENT_WRITE,
                    vk::PipelineStageFlags2::EARLY_FRAGMENT_TESTS
                        | vk::PipelineStageFlags2::LATE_FRAGMENT_TESTS,
                    vk::AccessFlags2::DEPTH_STENCIL_ATTACHMENT_READ
                        | vk::AccessFlags2::DEPTH_STENCIL_ATTACHMENT_WRITE,
                    vk::ImageLayout::UNDEFINED,
                    vk::ImageLayout::DEPTH_ATTACHMENT_OPTIMAL,
                ),
            ];
            if msaa {
                barriers.push(image_barrier(
                    self.color.image,
                    colour_range,
                    vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT,
                    vk::AccessFlags2::COLOR_ATTACHMENT_WRITE,
                    vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT,
                    vk::AccessFlags2::COLOR_ATTACHMENT_WRITE,
                    vk::ImageLayout::UNDEFINED,
                    vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
                ));
            }
            d.cmd_pipeline_barrier2(
                cmd,
                &vk::DependencyInfo::default().image_memory_barriers(&barriers),
            );

            let clear = vk::ClearValue {
                color: vk::ClearColorValue {
                    float32: [bg[0], bg[1], bg[2], 1.0],
                },
            };
            let mut colour = vk::RenderingAttachmentInfo::default()
                .image_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
                .load_op(vk::AttachmentLoadOp::CLEAR)
                .clear_value(clear);
            colour = if msaa {
                colour
                    .image_view(self.color.view)
                    .store_op(vk::AttachmentStoreOp::DONT_CARE)
                    .resolve_mode(vk::ResolveModeFlags::AVERAGE)
                    .resolve_image_view(self.resolve.view)
                    .resolve_image_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
            } else {
                colour
                    .image_view(self.resolve.view)
                    .store_op(vk::AttachmentStoreOp::STORE)
            };
            let colour = [colour];
            let depth_attachment = vk::RenderingAttachmentInfo::default()
                .image_view(self.depth.view)
                .image_layout(vk::ImageLayout::DEPTH_ATTACHMENT_OPTIMAL)
                .load_op(vk::AttachmentLoadOp::CLEAR)
                .store_op(vk::AttachmentStoreOp::DONT_CARE)
                .clear_value(vk::ClearValue {
                    depth_stencil: vk::ClearDepthStencilValue {
                        depth: 1.0,
                        stencil: 0,
                    },
                });
            let rendering = vk::RenderingInfo::default()
                .render_area(vk::Rect2D {
                    offset: vk::Offset2D { x: 0, y: 0 },
                    extent,
                })
                .layer_count(1)
                .view_mask(view_mask(views))
                .color_attachments(&colour)
                .depth_attachment(&depth_attachment);
            d.cmd_begin_rendering(cmd, &rendering);
            d.cmd_bind_descriptor_sets(
                cmd,
                vk::PipelineBindPoint::GRAPHICS,
                self.layout,
                0,
                &[slot.set],
                &[],
            );
            d.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::GRAPHICS, self.mesh_pipeline);
            for draw in draws {
                let m = self.mesh(draw.mesh, s);
                d.cmd_bind_vertex_buffers(cmd, 0, &[m.vertices.buffer], &[0]);
                d.cmd_bind_index_buffer(cmd, m.indices.buffer, 0, vk::IndexType::UINT32);
                d.cmd_push_constants(
                    cmd,
                    self.layout,
                    vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT,
                    0,
                    &draw.push,
                );
                d.cmd_draw_indexed(cmd, m.index_count, 1, 0, 0, 0);
            }
            if text_vertices > 0 {
                d.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::GRAPHICS, self.text_pipeline);
                d.cmd_bind_vertex_buffers(cmd, 0, &[slot.text.buffer], &[0]);
                d.cmd_push_constants(
                    cmd,
                    self.layout,
                    vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT,
                    0,
                    &push(&math::IDENTITY, TEXT_COLOR, 0.0, true, false),
                );
                d.cmd_draw(cmd, text_vertices, 1, 0, 0);
            }
            d.cmd_end_rendering(cmd);

            let to_src = [image_barrier(
                self.resolve.image,
                colour_range,
                vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT,
                vk::AccessFlags2::COLOR_ATTACHMENT_WRITE,
                vk::PipelineStageFlags2::COPY | vk::PipelineStageFlags2::BLIT,
                vk::AccessFlags2::TRANSFER_READ,
                vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            )];
            d.cmd_pipeline_barrier2(
                cmd,
                &vk::DependencyInfo::default().image_memory_barriers(&to_src),
            );
            match output {
                FrameOutput::None => {}
                FrameOutput::Readback => self.record_readback(cmd, slot),
                FrameOutput::Present(t) => self.record_present(cmd, t),
            }
            if self.timestamp_period_ns.is_some() {
                d.cmd_write_timestamp2(
                    cmd,
                    vk::PipelineStageFlags2::ALL_COMMANDS,
                    self.queries,
                    QUERIES_PER_SLOT * s as u32 + 2,
                );
            }
            d.end_command_buffer(cmd)
                .map_err(RenderError::vk("vkEndCommandBuffer"))?;
        }
        Ok(())
    }

    /// Records the copy of every view into the slot's readback buffer.
    ///
    /// # Safety
    /// `cmd` is recording; the resolve image is in `TRANSFER_SRC_OPTIMAL`.
    unsafe fn record_readback(&self, cmd: vk::CommandBuffer, slot: &Slot) {
        let d = &self.ctx().device;
        let (w, h) = (self.opts.width, self.opts.height);
        let per = u64::from(w) * u64::from(h) * 4;
        let regions: Vec<vk::BufferImageCopy> = (0..self.opts.views)
            .map(|v| {
                vk::BufferImageCopy::default()
                    .buffer_offset(u64::from(v) * per)
                    .image_subresource(color_layer(v))
                    .image_extent(vk::Extent3D {
                        width: w,
                        height: h,
                        depth: 1,
                    })
            })
            .collect();
        // SAFETY: per the function's contract; the buffer holds every view.
        unsafe {
            d.cmd_copy_image_to_buffer(
                cmd,
                self.resolve.image,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                slot.readback.buffer,
                &regions,
            );
            let to_host = [vk::BufferMemoryBarrier2::default()
                .src_stage_mask(vk::PipelineStageFlags2::COPY)
                .src_access_mask(vk::AccessFlags2::TRANSFER_WRITE)
                .dst_stage_mask(vk::PipelineStageFlags2::HOST)
                .dst_access_mask(vk::AccessFlags2::HOST_READ)
                .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .buffer(slot.readback.buffer)
                .offset(0)
                .size(vk::WHOLE_SIZE)];
            d.cmd_pipeline_barrier2(
                cmd,
                &vk::DependencyInfo::default().buffer_memory_barriers(&to_host),
            );
        }
    }

    /// Records the blit of every view into a display's image.
    ///
    /// # Safety
    /// `cmd` is recording; the resolve image is in `TRANSFER_SRC_OPTIMAL`; `t.image` is a
    /// live image of this device in `t.old_layout`.
    unsafe fn record_present(&self, cmd: vk::CommandBuffer, t: &PresentTarget) {
        let d = &self.ctx().device;
        let layers = t.layers.clamp(1, self.opts.views);
        let range = layer_range(vk::ImageAspectFlags::COLOR, 0, layers);
        let to_dst = [image_barrier(
            t.image,
            range,
            vk::PipelineStageFlags2::BLIT,
            vk::AccessFlags2::NONE,
            vk::PipelineStageFlags2::BLIT,
            vk::AccessFlags2::TRANSFER_WRITE,
            vk::ImageLayout::UNDEFINED,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
        )];
        let corner = |w: u32, h: u32| {
            [
                vk::Offset3D { x: 0, y: 0, z: 0 },
                vk::Offset3D {
                    x: w as i32,
                    y: h as i32,
                    z: 1,
                },
            ]
        };
        let same = t.extent.width == self.opts.width && t.extent.height == self.opts.height;
        let regions: Vec<vk::ImageBlit> = (0..layers)
            .map(|v| {
                let sub = color_layer(v);
                vk::ImageBlit::default()
                    .src_subresource(sub)
                    .src_offsets(corner(self.opts.width, self.opts.height))
                    .dst_subresource(sub)
                    .dst_offsets(corner(t.extent.width, t.extent.height))
            })
            .collect();
        let to_final = [image_barrier(
            t.image,
            range,
            vk::PipelineStageFlags2::BLIT,
            vk::AccessFlags2::TRANSFER_WRITE,
            vk::PipelineStageFlags2::ALL_COMMANDS,
            vk::AccessFlags2::NONE,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            t.new_layout,
        )];
        // SAFETY: per the function's contract.
        unsafe {
            d.cmd_pipeline_barrier2(
                cmd,
                &vk::DependencyInfo::default().image_memory_barriers(&to_dst),
            );
            d.cmd_blit_image(
                cmd,
                self.resolve.image,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                t.image,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                &regions,
                if same {
                    vk::Filter::NEAREST
                } else {
                    vk::Filter::LINEAR
                },
            );
            d.cmd_pipeline_barrier2(
                cmd,
                &vk::DependencyInfo::default().image_memory_barriers(&to_final),
            );
        }
    }

    fn submit(&self, s: usize, output: &FrameOutput) -> Result<(), RenderError> {
        let d = &self.ctx().device;
        let cmds = [vk::CommandBufferSubmitInfo::default().command_buffer(self.slots[s].cmd)];
        let mut waits = Vec::new();
        let mut signals = Vec::new();
        if let FrameOutput::Present(t) = output {
            if t.wait != vk::Semaphore::null() {
                waits.push(
                    vk::SemaphoreSubmitInfo::default()
                        .semaphore(t.wait)
                        .stage_mask(vk::PipelineStageFlags2::BLIT),
                );
            }
            if t.signal != vk::Semaphore::null() {
                signals.push(
                    vk::SemaphoreSubmitInfo::default()
                        .semaphore(t.signal)
                        .stage_mask(vk::PipelineStageFlags2::ALL_COMMANDS),
                );
            }
        }
        let submit = [vk::SubmitInfo2::default()
            .command_buffer_infos(&cmds)
            .wait_semaphore_infos(&waits)
            .signal_semaphore_infos(&signals)];
        // SAFETY: the command buffer is fully recorded; the slot's fence is unsignalled
        // (reset when collected, or never used).
        unsafe { d.queue_submit2(self.ctx().queue, &submit, self.slots[s].fence) }
            .map_err(RenderError::vk("vkQueueSubmit2"))
    }

    fn static_mesh(
        &mut self,
        name: &str,
        v: &[Vertex],
        i: &[u32],
    ) -> Result<MeshBuffers, RenderError> {
        let mut m = self.create_mesh(name, v.len(), i.len())?;
        let written = (|| {
            mesh::write_vertices(&mut m.vertices.mapped_mut()?[..v.len() * VERTEX_STRIDE], v);
            mesh::write_indices(
                &mut m.indices.mapped_mut()?[..i.len() * 4],
                i.iter().copied(),
            );
            self.gpu.sync_mapped(&m.vertices, true)?;
            self.gpu.sync_mapped(&m.indices, true)
        })();
        if let Err(e) = written {
            self.destroy_mesh(&mut m);
            return Err(e);
        }
        m.index_count = i.len() as u32;
        Ok(m)
    }

    fn create_mesh(
        &mut self,
        name: &str,
        vertices: usize,
        indices: usize,
    ) -> Result<MeshBuffers, RenderError> {
        let vertices = vertices.max(1);
        let indices = indices.max(1);
        let mut vb = self.gpu.create_buffer(
            &format!("{name} vertices"),
            (vertices * VERTEX_STRIDE) as u64,
            vk::BufferUsageFlags::VERTEX_BUFFER,
            MemoryLocation::CpuToGpu,
        )?;
        let ib = match self.gpu.create_buffer(
            &format!("{name} indices"),
            (indices * 4) as u64,
            vk::BufferUsageFlags::INDEX_BUFFER,
            MemoryLocation::CpuToGpu,
        ) {
            Ok(b) => b,
            Err(e) => {
                self.gpu.destroy_buffer(&mut vb);
                return Err(e);
            }
        };
        Ok(MeshBuffers {
            vertices: vb,
            indices: ib,
            vertex_capacity: vertices,
            index_capacity: indices,
            index_count: 0,
        })
    }

    fn destroy_mesh(&mut self, m: &mut MeshBuffers) {
        self.gpu.destroy_buffer(&mut m.vertices);
        self.gpu.destroy_buffer(&mut m.indices);
        m.vertex_capacity = 0;
        m.index_capacity = 0;
        m.index_count = 0;
    }

    fn ensure_tissue_capacity(
        &mut self,
        s: usize,
        vertices: usize,
        indices: usize,
    ) -> Result<(), RenderError> {
        let cur = &self.slots[s].tissue;
        if vertices <= cur.vertex_capacity && indices <= cur.index_capacity {
            return Ok(());
        }
        let mut old = std::mem::take(&mut self.slots[s].tissue);
        let vcap = vertices
            .max(old.vertex_capacity)
            .max(256)
            .next_power_of_two();
        let icap = indices.max(old.index_capacity).max(768).next_power_of_two();
        // The slot's previous frame has completed (collected), so the old buffers are unused.
        self.destroy_mesh(&mut old);
        self.slots[s].tissue_topology = None;
        self.slots[s].tissue = self.create_mesh(&format!("frame slot {s} tissue"), vcap, icap)?;
        Ok(())
    }

    fn create_atlas(&mut self) -> Result<(), RenderError> {
        let (aw, ah) = (self.font.width, self.font.height);
        self.atlas = self.gpu.create_image(&ImageDesc {
            name: "font atlas",
            format: vk::Format::R8_UNORM,
            width: aw,
            height: ah,
            layers: 1,
            samples: vk::SampleCountFlags::TYPE_1,
            usage: vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST,
            aspect: vk::ImageAspectFlags::COLOR,
            view_type: vk::ImageViewType::TYPE_2D,
        })?;
        let mut staging = self.gpu.create_buffer(
            "font atlas staging",
            self.font.pixels.len() as u64,
            vk::BufferUsageFlags::TRANSFER_SRC,
            MemoryLocation::CpuToGpu,
        )?;
        let uploaded = (|| {
            staging.mapped_mut()?[..self.font.pixels.len()].copy_from_slice(&self.font.pixels);
            self.gpu.sync_mapped(&staging, true)?;
            let image = self.atlas.image;
            let buffer = staging.buffer;
            self.one_time_commands("font atlas upload", |d, cmd| {
                let range = layer_range(vk::ImageAspectFlags::COLOR, 0, 1);
                let to_dst = [image_barrier(
                    image,
                    range,
                    vk::PipelineStageFlags2::NONE,
                    vk::AccessFlags2::NONE,
                    vk::PipelineStageFlags2::COPY,
                    vk::AccessFlags2::TRANSFER_WRITE,
                    vk::ImageLayout::UNDEFINED,
                    vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                )];
                let region = [vk::BufferImageCopy::default()
                    .image_subresource(color_layer(0))
                    .image_extent(vk::Extent3D {
                        width: aw,
                        height: ah,
                        depth: 1,
                    })];
                let to_read = [image_barrier(
                    image,
                    range,
                    vk::PipelineStageFlags2::COPY,
                    vk::AccessFlags2::TRANSFER_WRITE,
                    vk::PipelineStageFlags2::FRAGMENT_SHADER,
                    vk::AccessFlags2::SHADER_SAMPLED_READ,
                    vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                    vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
                )];
                // SAFETY: `cmd` is recording; image and buffer are live and sized alike.
                unsafe {
                    d.cmd_pipeline_barrier2(
                        cmd,
                        &vk::DependencyInfo::default().image_memory_barriers(&to_dst),
                    );
                    d.cmd_copy_buffer_to_image(
                        cmd,
                        buffer,
                        image,
                        vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                        &region,
                    );
                    d.cmd_pipeline_barrier2(
                        cmd,
                        &vk::DependencyInfo::default().image_memory_barriers(&to_read),
                    );
                }
            })
        })();
        self.gpu.destroy_buffer(&mut staging);
        uploaded?;
        let info = vk::SamplerCreateInfo::default()
            .mag_filter(vk::Filter::NEAREST)
            .min_filter(vk::Filter::NEAREST)
            .mipmap_mode(vk::SamplerMipmapMode::NEAREST)
            .address_mode_u(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .address_mode_v(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .address_mode_w(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .max_lod(0.0);
        let d = self.ctx().device.clone();
        // SAFETY: valid device and create info.
        self.sampler = unsafe { d.create_sampler(&info, None) }
            .map_err(RenderError::vk_res("vkCreateSampler", "font atlas sampler"))?;
        self.ctx().name(self.sampler, "font atlas sampler");
        Ok(())
    }

    /// Records `f` into a temporary command buffer, submits it and waits (start-up only).
    fn one_time_commands(
        &self,
        what: &str,
        f: impl FnOnce(&ash::Device, vk::CommandBuffer),
    ) -> Result<(), RenderError> {
        let d = self.ctx().device.clone();
        let info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(self.ctx().queue_family)
            .flags(vk::CommandPoolCreateFlags::TRANSIENT);
        // SAFETY: valid device and create info; the pool is destroyed below on every path,
        // after the queue finished with it.
        unsafe {
            let pool = d
                .create_command_pool(&info, None)
                .map_err(RenderError::vk_res("vkCreateCommandPool", what))?;
            self.ctx().name(pool, &format!("{what} command pool"));
            let result = (|| {
                let cmd = d
                    .allocate_command_buffers(
                        &vk::CommandBufferAllocateInfo::default()
                            .command_pool(pool)
                            .level(vk::CommandBufferLevel::PRIMARY)
                            .command_buffer_count(1),
                    )
                    .map_err(RenderError::vk_res("vkAllocateCommandBuffers", what))?[0];
                d.begin_command_buffer(
                    cmd,
                    &vk::CommandBufferBeginInfo::default()
                        .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
                )
                .map_err(RenderError::vk("vkBeginCommandBuffer"))?;
                f(&d, cmd);
                d.end_command_buffer(cmd)
                    .map_err(RenderError::vk("vkEndCommandBuffer"))?;
                let cmds = [vk::CommandBufferSubmitInfo::default().command_buffer(cmd)];
                let submit = [vk::SubmitInfo2::default().command_buffer_infos(&cmds)];
                d.queue_submit2(self.ctx().queue, &submit, vk::Fence::null())
                    .map_err(RenderError::vk("vkQueueSubmit2"))?;
                d.queue_wait_idle(self.ctx().queue)
                    .map_err(RenderError::vk("vkQueueWaitIdle"))
            })();
            d.destroy_command_pool(pool, None);
            result
        }
    }

    fn create_descriptors(&mut self) -> Result<(), RenderError> {
        let d = self.ctx().device.clone();
        let both = vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT;
        let bindings = [
            vk::DescriptorSetLayoutBinding::default()
                .binding(0)
                .descriptor_type(vk::DescriptorType::UNIFORM_BUFFER)
                .descriptor_count(1)
                .stage_flags(both),
            vk::DescriptorSetLayoutBinding::default()
                .binding(1)
                .descriptor_type(vk::DescriptorType::SAMPLED_IMAGE)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::FRAGMENT),
            vk::DescriptorSetLayoutBinding::default()
                .binding(2)
                .descriptor_type(vk::DescriptorType::SAMPLER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::FRAGMENT),
        ];
        // SAFETY: valid device and create infos; objects named right after creation.
        unsafe {
            self.set_layout = d
                .create_descriptor_set_layout(
                    &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
                    None,
                )
                .map_err(RenderError::vk_res(
                    "vkCreateDescriptorSetLayout",
                    "frame descriptor set layout",
                ))?;
            self.ctx()
                .name(self.set_layout, "frame descriptor set layout");
            let n = PIPELINE_DEPTH as u32;
            let sizes = [
                vk::DescriptorPoolSize {
                    ty: vk::DescriptorType::UNIFORM_BUFFER,
                    descriptor_count: n,
                },
                vk::DescriptorPoolSize {
                    ty: vk::DescriptorType::SAMPLED_IMAGE,
                    descriptor_count: n,
                },
                vk::DescriptorPoolSize {
                    ty: vk::DescriptorType::SAMPLER,
                    descriptor_count: n,
                },
            ];
            self.descriptor_pool = d
                .create_descriptor_pool(
                    &vk::DescriptorPoolCreateInfo::default()
                        .max_sets(n)
                        .pool_sizes(&sizes),
                    None,
                )
                .map_err(RenderError::vk_res(
                    "vkCreateDescriptorPool",
                    "frame descriptor pool",
                ))?;
            self.ctx()
                .name(self.descriptor_pool, "frame descriptor pool");
            let ranges = [vk::PushConstantRange {
                stage_flags: both,
                offset: 0,
                size: PUSH_BYTES as u32,
            }];
            let layouts = [self.set_layout];
            self.layout = d
                .create_pipeline_layout(
                    &vk::PipelineLayoutCreateInfo::default()
                        .set_layouts(&layouts)
                        .push_constant_ranges(&ranges),
                    None,
                )
                .map_err(RenderError::vk_res(
                    "vkCreatePipelineLayout",
                    "scene pipeline layout",
                ))?;
            self.ctx().name(self.layout, "scene pipeline layout");
        }
        Ok(())
    }

    fn create_pipeline(&mut self, shader: &str, mesh: bool) -> Result<vk::Pipeline, RenderError> {
        let d = self.ctx().device.clone();
        let spirv = super::shader_spirv(shader).ok_or_else(|| RenderError::InvalidOptions {
            reason: format!("shader module '{shader}' was not built"),
        })?;
        let words = ash::util::read_spv(&mut std::io::Cursor::new(spirv)).map_err(|e| {
            RenderError::InvalidOptions {
                reason: format!("shaders/{shader}.wgsl: bad SPIR-V ({e})"),
            }
        })?;
        let module_name = format!("{shader} shader module (shaders/{shader}.wgsl)");
        // SAFETY: `words` is SPIR-V that naga produced and validated at build time.
        let module = unsafe {
            d.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None)
        }
        .map_err(RenderError::vk_res("vkCreateShaderModule", &module_name))?;
        self.ctx().name(module, &module_name);
        let stages = [
            vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::VERTEX)
                .module(module)
                .name(c"vs_main"),
            vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::FRAGMENT)
                .module(module)
                .name(c"fs_main"),
        ];
        let mesh_attrs = [
            vk::VertexInputAttributeDescription {
                location: 0,
                binding: 0,
                format: vk::Format::R32G32B32_SFLOAT,
                offset: 0,
            },
            vk::VertexInputAttributeDescription {
                location: 1,
                binding: 0,
                format: vk::Format::R32G32B32_SFLOAT,
                offset: 12,
            },
            vk::VertexInputAttributeDescription {
                location: 2,
                binding: 0,
                format: vk::Format::R32_UINT,
                offset: 24,
            },
            vk::VertexInputAttributeDescription {
                location: 3,
                binding: 0,
                format: vk::Format::R32_SFLOAT,
                offset: 28,
            },
        ];
        let text_attrs = [
            vk::VertexInputAttributeDescription {
                location: 0,
                binding: 0,
                format: vk::Format::R32G32B32_SFLOAT,
                offset: 0,
            },
            vk::VertexInputAttributeDescription {
                location: 1,
                binding: 0,
                format: vk::Format::R32G32_SFLOAT,
                offset: 12,
            },
        ];
        let vertex_bindings = [vk::VertexInputBindingDescription {
            binding: 0,
            stride: if mesh { VERTEX_STRIDE } else { TEXT_STRIDE } as u32,
            input_rate: vk::VertexInputRate::VERTEX,
        }];
        let vertex_input = vk::PipelineVertexInputStateCreateInfo::default()
            .vertex_binding_descriptions(&vertex_bindings)
            .vertex_attribute_descriptions(if mesh { &mesh_attrs } else { &text_attrs });
        let input_assembly = vk::PipelineInputAssemblyStateCreateInfo::default()
            .topology(vk::PrimitiveTopology::TRIANGLE_LIST);
        let viewports = [vk::Viewport {
            x: 0.0,
            y: 0.0,
            width: self.opts.width as f32,
            height: self.opts.height as f32,
            min_depth: 0.0,
            max_depth: 1.0,
        }];
        let scissors = [vk::Rect2D {
            offset: vk::Offset2D { x: 0, y: 0 },
            extent: vk::Extent2D {
                width: self.opts.width,
                height: self.opts.height,
            },
        }];
        let viewport = vk::PipelineViewportStateCreateInfo::default()
            .viewports(&viewports)
            .scissors(&scissors);
        // Culling off: the tissue must be visible whatever the winding of the boundary the
        // simulation hands over; the fragment shader lights the side facing the camera.
        let raster = vk::PipelineRasterizationStateCreateInfo::default()
            .polygon_mode(vk::PolygonMode::FILL)
            .cull_mode(vk::CullModeFlags::NONE)
            .front_face(vk::FrontFace::COUNTER_CLOCKWISE)
            .line_width(1.0);
        let multisample =
            vk::PipelineMultisampleStateCreateInfo::default().rasterization_samples(self.samples);
        let depth = vk::PipelineDepthStencilStateCreateInfo::default()
            .depth_test_enable(true)
            .depth_write_enable(true)
            .depth_compare_op(vk::CompareOp::LESS_OR_EQUAL);
        let blend_attachments = [vk::PipelineColorBlendAttachmentState::default()
            .blend_enable(false)
            .color_write_mask(vk::ColorComponentFlags::RGBA)];
        let blend =
            vk::PipelineColorBlendStateCreateInfo::default().attachments(&blend_attachments);
        let color_formats = [COLOR_FORMAT];
        let mut rendering = vk::PipelineRenderingCreateInfo::default()
            .view_mask(view_mask(self.opts.views))
            .color_attachment_formats(&color_formats)
            .depth_attachment_format(DEPTH_FORMAT);
        let info = vk::GraphicsPipelineCreateInfo::default()
            .stages(&stages)
            .vertex_input_state(&vertex_input)
            .input_assembly_state(&input_assembly)
            .viewport_state(&viewport)
            .rasterization_state(&raster)
            .multisample_state(&multisample)
            .depth_stencil_state(&depth)
            .color_blend_state(&blend)
            .layout(self.layout)
            .push_next(&mut rendering);
        let name = format!("{shader} pipeline");
        // SAFETY: every pointer in `info` refers to locals alive for the call; dynamic
        // rendering and multiview are enabled on the device.
        let created =
            unsafe { d.create_graphics_pipelines(vk::PipelineCache::null(), &[info], None) };
        // SAFETY: the module is only needed while creating the pipeline.
        unsafe { d.destroy_shader_module(module, None) };
        let pipeline = created.map_err(|(_, result)| RenderError::VulkanResource {
            call: "vkCreateGraphicsPipelines",
            resource: name.clone(),
            result,
        })?[0];
        self.ctx().name(pipeline, &name);
        Ok(pipeline)
    }

    fn create_slots(&mut self) -> Result<(), RenderError> {
        let d = self.ctx().device.clone();
        if self.timestamp_period_ns.is_some() {
            let info = vk::QueryPoolCreateInfo::default()
                .query_type(vk::QueryType::TIMESTAMP)
                .query_count(QUERIES_PER_SLOT * PIPELINE_DEPTH as u32);
            // SAFETY: valid device and create info.
            self.queries = unsafe { d.create_query_pool(&info, None) }
                .map_err(RenderError::vk_res("vkCreateQueryPool", "frame timestamps"))?;
            self.ctx().name(self.queries, "frame timestamps");
        }
        let readback_bytes = u64::from(self.opts.width)
            * u64::from(self.opts.height)
            * 4
            * u64::from(self.opts.views);
        for s in 0..PIPELINE_DEPTH {
            self.slots.push(Slot::default());
            let pool_info = vk::CommandPoolCreateInfo::default()
                .queue_family_index(self.ctx().queue_family)
                .flags(vk::CommandPoolCreateFlags::TRANSIENT);
            // SAFETY: valid device and create infos; each object is stored in the slot right
            // away so Drop destroys it on a later failure.
            unsafe {
                let pool = d
                    .create_command_pool(&pool_info, None)
                    .map_err(RenderError::vk_res(
                        "vkCreateCommandPool",
                        "frame command pool",
                    ))?;
                self.slots[s].pool = pool;
                self.ctx()
                    .name(pool, &format!("frame slot {s} command pool"));
                let cmd = d
                    .allocate_command_buffers(
                        &vk::CommandBufferAllocateInfo::default()
                            .command_pool(pool)
                            .level(vk::CommandBufferLevel::PRIMARY)
                            .command_buffer_count(1),
                    )
                    .map_err(RenderError::vk_res(
                        "vkAllocateCommandBuffers",
                        "frame command buffer",
                    ))?[0];
                self.slots[s].cmd = cmd;
                self.ctx()
                    .name(cmd, &format!("frame slot {s} command buffer"));
                let fence = d
                    .create_fence(&vk::FenceCreateInfo::default(), None)
                    .map_err(RenderError::vk_res("vkCreateFence", "frame fence"))?;
                self.slots[s].fence = fence;
                self.ctx().name(fence, &format!("frame slot {s} fence"));
            }
            self.slots[s].uniform = self.gpu.create_buffer(
                &format!("frame slot {s} uniforms"),
                FRAME_UNIFORM_BYTES as u64,
                vk::BufferUsageFlags::UNIFORM_BUFFER,
                MemoryLocation::CpuToGpu,
            )?;
            if self.opts.readback {
                self.slots[s].readback = self.gpu.create_buffer(
                    &format!("frame slot {s} readback"),
                    readback_bytes,
                    vk::BufferUsageFlags::TRANSFER_DST,
                    MemoryLocation::GpuToCpu,
                )?;
            }
            let layouts = [self.set_layout];
            // SAFETY: the pool has room for one set per slot.
            let set = unsafe {
                d.allocate_descriptor_sets(
                    &vk::DescriptorSetAllocateInfo::default()
                        .descriptor_pool(self.descriptor_pool)
                        .set_layouts(&layouts),
                )
            }
            .map_err(RenderError::vk_res(
                "vkAllocateDescriptorSets",
                "frame descriptor set",
            ))?[0];
            self.slots[s].set = set;
            self.ctx()
                .name(set, &format!("frame slot {s} descriptor set"));
            let buffer_info = [vk::DescriptorBufferInfo {
                buffer: self.slots[s].uniform.buffer,
                offset: 0,
                range: FRAME_UNIFORM_BYTES as u64,
            }];
            let image_info = [vk::DescriptorImageInfo {
                sampler: vk::Sampler::null(),
                image_view: self.atlas.view,
                image_layout: vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
            }];
            let sampler_info = [vk::DescriptorImageInfo {
                sampler: self.sampler,
                image_view: vk::ImageView::null(),
                image_layout: vk::ImageLayout::UNDEFINED,
            }];
            let writes = [
                vk::WriteDescriptorSet::default()
                    .dst_set(set)
                    .dst_binding(0)
                    .descriptor_type(vk::DescriptorType::UNIFORM_BUFFER)
                    .buffer_info(&buffer_info),
                vk::WriteDescriptorSet::default()
                    .dst_set(set)
                    .dst_binding(1)
                    .descriptor_type(vk::DescriptorType::SAMPLED_IMAGE)
                    .image_info(&image_info),
                vk::WriteDescriptorSet::default()
                    .dst_set(set)
                    .dst_binding(2)
                    .descriptor_type(vk::DescriptorType::SAMPLER)
                    .image_info(&sampler_info),
            ];
            // SAFETY: the set, buffer, view and sampler are live objects of this device.
            unsafe { d.update_descriptor_sets(&writes, &[]) };
        }
        Ok(())
    }
}

impl Drop for Renderer {
    fn drop(&mut self) {
        let d = self.ctx().device.clone();
        // SAFETY: waiting for idle makes every object below unused by the GPU; each handle is
        // destroyed exactly once (null handles, from a failed `new`, are allowed).
        unsafe {
            let _ = d.device_wait_idle();
            for s in &self.slots {
                d.destroy_fence(s.fence, None);
                // Frees the command buffer with it.
                d.destroy_command_pool(s.pool, None);
            }
            d.destroy_query_pool(self.queries, None);
            d.destroy_pipeline(self.mesh_pipeline, None);
            d.destroy_pipeline(self.text_pipeline, None);
            d.destroy_pipeline_layout(self.layout, None);
            // Frees the sets with it.
            d.destroy_descriptor_pool(self.descriptor_pool, None);
            d.destroy_descriptor_set_layout(self.set_layout, None);
            d.destroy_sampler(self.sampler, None);
        }
        let mut slots = std::mem::take(&mut self.slots);
        for s in slots.iter_mut() {
            self.destroy_mesh(&mut s.tissue);
            self.gpu.destroy_buffer(&mut s.text);
            self.gpu.destroy_buffer(&mut s.uniform);
            self.gpu.destroy_buffer(&mut s.readback);
        }
        for mut m in [
            std::mem::take(&mut self.table),
            std::mem::take(&mut self.sphere),
            std::mem::take(&mut self.shaft),
            std::mem::take(&mut self.quad),
        ] {
            self.destroy_mesh(&mut m);
        }
        for mut i in [
            std::mem::take(&mut self.atlas),
            std::mem::take(&mut self.resolve),
            std::mem::take(&mut self.depth),
            std::mem::take(&mut self.color),
        ] {
            self.gpu.destroy_image(&mut i);
        }
    }
}

/// The shaft's direction when the scene gives none: up, a little towards the trainee (+z) and
/// to the right, as a right-handed instrument is held.
pub const DEFAULT_TOOL_AXIS: [f32; 3] = [0.35, 0.9, 0.25];

fn view_mask(views: u32) -> u32 {
    if views > 1 {
        (1 << views) - 1
    } else {
        0
    }
}

/// A `Draw` push-constant block (layout of `shaders/mesh.wgsl`).
fn push(
    model: &Mat4,
    color: [f32; 3],
    spec: f32,
    use_color: bool,
    overlay: bool,
) -> [u8; PUSH_BYTES] {
    let mut f = [0f32; PUSH_BYTES / 4];
    for (c, col) in model.iter().enumerate() {
        f[c * 4..c * 4 + 4].copy_from_slice(col);
    }
    f[16..20].copy_from_slice(&[color[0], color[1], color[2], spec]);
    f[20] = if use_color { 1.0 } else { 0.0 };
    f[21] = if overlay { 1.0 } else { 0.0 };
    let mut b = [0u8; PUSH_BYTES];
    for (chunk, v) in b.chunks_exact_mut(4).zip(f) {
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    b
}

/// The board's right, up (in its plane) and normal directions.
fn panel_axes(p: &Panel<'_>) -> ([f32; 3], [f32; 3], [f32; 3]) {
    let (s, c) = p.lean_rad.sin_cos();
    ([1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c])
}

fn panel_margin(p: &Panel<'_>) -> f32 {
    0.8 * p.glyph_height_m
}

/// How full the force gauge is, 0..1.
pub(crate) fn gauge_fraction(force_n: f32, max_n: f32) -> f32 {
    let f = force_n / max_n;
    if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The gauge bar's colour: green, through yellow, to red at full scale.
fn gauge_color(fraction: f32) -> [f32; 3] {
    let t = fraction.clamp(0.0, 1.0);
    [
        (2.0 * t).min(1.0) * 0.8,
        (2.0 - 2.0 * t).min(1.0) * 0.6,
        0.02,
    ]
}

/// Linear colour of the tool tip for a contact force.
pub(crate) fn tool_color(force_n: [f32; 3]) -> [f32; 3] {
    let t = (math::length(force_n) / TOOL_FORCE_FULL_RED_N).clamp(0.0, 1.0);
    let t = if t.is_nan() { 0.0 } else { t };
    std::array::from_fn(|i| TOOL_COLOR_IDLE[i] + (TOOL_COLOR_FORCE[i] - TOOL_COLOR_IDLE[i]) * t)
}

pub(crate) fn srgb_to_linear(c: u8) -> f32 {
    let c = c as f32 / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_tint_goes_grey_to_red() {
        assert_eq!(tool_color([0.0; 3]), TOOL_COLOR_IDLE);
        let close = |a: [f32; 3], b: [f32; 3]| (0..3).all(|i| (a[i] - b[i]).abs() < 1e-6);
        assert!(close(tool_color([0.0, 5.0, 0.0]), TOOL_COLOR_FORCE));
        assert!(close(tool_color([30.0, 0.0, 0.0]), TOOL_COLOR_FORCE));
        let half = tool_color([0.0, 0.0, 2.5]);
        assert!(half[0] > TOOL_COLOR_IDLE[0] && half[0] < TOOL_COLOR_FORCE[0]);
        assert_eq!(tool_color([f32::NAN; 3]), TOOL_COLOR_IDLE);
    }

    #[test]
    fn srgb_roundtrip_of_background() {
        assert!((srgb_to_linear(255) - 1.0).abs() < 1e-6);
        assert!(srgb_to_linear(30) > 0.01 && srgb_to_linear(30) < 0.02);
    }

    #[test]
    fn gauge_clamps_and_survives_nan() {
        assert_eq!(gauge_fraction(2.0, 4.0), 0.5);
        assert_eq!(gauge_fraction(9.0, 4.0), 1.0);
        assert_eq!(gauge_fraction(-1.0, 4.0), 0.0);
        assert_eq!(gauge_fraction(f32::NAN, 4.0), 0.0);
        assert_eq!(gauge_fraction(1.0, 0.0), 0.0);
        assert_eq!(gauge_fraction(0.0, 0.0), 0.0);
        assert!(gauge_color(0.0)[1] > gauge_color(0.0)[0]);
        assert!(gauge_color(1.0)[0] > gauge_color(1.0)[1]);
    }

    #[test]
    fn view_masks() {
        assert_eq!(view_mask(1), 0);
        assert_eq!(view_mask(2), 0b11);
    }
}
