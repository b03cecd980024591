//! The headless renderer: draws the operating table, the tissue surface and the tool into an
//! offscreen sRGB image and reads it back to the CPU.
//!
//! Contract:
//! - render thread only; [`HeadlessRenderer::render`] records, submits and **waits on a
//!   fence** (one frame in flight), which is allowed here and never happens on the haptic
//!   thread;
//! - input is a borrowed snapshot ([`RenderScene`]): positions in metres, world frame, y up;
//!   nothing is retained between frames except GPU buffers (grown when a scene needs more);
//! - output is RGBA8, sRGB-encoded, top row first;
//! - GPU objects: colour (R8G8B8A8_SRGB) and depth (D32_SFLOAT) images in GPU-only memory,
//!   host-visible vertex/index buffers, a host-visible readback buffer, one pipeline, one
//!   command pool/buffer and one fence; every one is named via debug utils and every memory
//!   allocation is dedicated and named `<resource> memory`;
//! - dropping waits for the device to go idle and destroys everything, children first.

use std::io::Cursor;

use ash::vk;
use gpu_allocator::vulkan::{
    Allocation, AllocationCreateDesc, AllocationScheme, Allocator, AllocatorCreateDesc,
};
use gpu_allocator::MemoryLocation;

use super::context::{GpuContext, ValidationReport};
use super::image::RgbaImage;
use super::math::{self, Mat4};
use super::mesh::{self, Vertex, VERTEX_STRIDE};
use super::RenderError;

/// Background colour (sRGB-encoded bytes) where nothing is drawn.
pub const BACKGROUND_SRGB: [u8; 3] = [30, 34, 40];
/// Longest wait for one frame's fence, nanoseconds (10 s), before giving up with VK_TIMEOUT.
pub const FRAME_TIMEOUT_NS: u64 = 10_000_000_000;
/// Tissue base colour (linear RGB): liver-like red-brown.
pub const TISSUE_COLOR: [f32; 3] = [0.55, 0.18, 0.14];
/// Tool colour at zero force (linear RGB, grey).
pub const TOOL_COLOR_IDLE: [f32; 3] = [0.50, 0.51, 0.53];
/// Tool colour at [`TOOL_FORCE_FULL_RED_N`] and above (linear RGB).
pub const TOOL_COLOR_FORCE: [f32; 3] = [0.80, 0.04, 0.03];
/// Contact force magnitude (N) at which the tool is fully red.
pub const TOOL_FORCE_FULL_RED_N: f32 = 5.0;
/// Operating table: height of its top (m), side length (m), colour (linear RGB).
pub const TABLE_Y_M: f32 = -0.04;
/// Side of the square operating table (m).
pub const TABLE_SIZE_M: f32 = 0.3;
/// Operating table colour (linear RGB), dark green-grey.
pub const TABLE_COLOR: [f32; 3] = [0.035, 0.055, 0.045];

const COLOR_FORMAT: vk::Format = vk::Format::R8G8B8A8_SRGB;
const DEPTH_FORMAT: vk::Format = vk::Format::D32_SFLOAT;
/// Size of the push-constant block `Draw` in `shaders/mesh.wgsl`.
const PUSH_BYTES: u32 = 128;
const LIGHT_TOWARDS: [f32; 3] = [0.3, 1.0, 0.45];
const AMBIENT: f32 = 0.22;

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
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            validation: false,
            device_filter: None,
        }
    }
}

/// A perspective camera in the world frame (metres, y up).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// Eye position (m).
    pub eye_m: [f32; 3],
    /// Point looked at (m).
    pub target_m: [f32; 3],
    /// Up direction (need not be unit length or orthogonal to the view direction).
    pub up: [f32; 3],
    /// Vertical field of view (radians, in (0, π)).
    pub fov_y_rad: f32,
    /// Near plane distance (m, > 0).
    pub near_m: f32,
    /// Far plane distance (m, > near).
    pub far_m: f32,
}

impl Camera {
    /// A view of a ~10 cm tissue block lying on the operating table (top of the tissue at
    /// y = 0, centred on the origin), from the front and above, with the whole table in view
    /// so that the image border shows background.
    pub fn default_for_block() -> Self {
        Self {
            eye_m: [0.0, 0.30, 0.36],
            target_m: [0.0, -0.02, 0.0],
            up: [0.0, 1.0, 0.0],
            fov_y_rad: 40f32.to_radians(),
            near_m: 0.01,
            far_m: 5.0,
        }
    }

    fn check(&self) -> Result<(), RenderError> {
        let ok = self.fov_y_rad > 0.0
            && self.fov_y_rad < std::f32::consts::PI
            && self.near_m > 0.0
            && self.far_m > self.near_m
            && self
                .eye_m
                .iter()
                .chain(&self.target_m)
                .chain(&self.up)
                .all(|v| v.is_finite())
            && math::normalize(math::sub(self.target_m, self.eye_m)).is_some();
        if ok {
            Ok(())
        } else {
            Err(RenderError::InvalidScene {
                reason: format!("unusable camera {self:?}"),
            })
        }
    }

    /// World -> Vulkan clip space for an image of the given aspect ratio.
    fn view_proj(&self, aspect: f32) -> Mat4 {
        let view = math::look_at(self.eye_m, self.target_m, self.up);
        let proj = math::perspective_vk(self.fov_y_rad, aspect, self.near_m, self.far_m);
        math::mul(&proj, &view)
    }
}

/// One frame's worth of things to draw (borrowed; nothing is kept after `render` returns).
#[derive(Clone, Copy, Debug)]
pub struct RenderScene<'a> {
    /// Particle positions in the world frame (m); changes every frame.
    pub tissue_positions_m: &'a [[f32; 3]],
    /// Boundary triangles, counter-clockwise seen from outside, indices into
    /// `tissue_positions_m`. Usually fixed per session, but any set is accepted each frame.
    pub tissue_triangles: &'a [[u32; 3]],
    /// Centre of the spherical tool tip (m).
    pub tool_center_m: [f32; 3],
    /// Radius of the tool tip (m); not drawn when ≤ 0.
    pub tool_radius_m: f32,
    /// Contact force on the tool (N); tints the tool from grey (0 N) to red (≥ 5 N).
    pub tool_force_n: [f32; 3],
}

/// Linear colour of the tool for a contact force.
pub(crate) fn tool_color(force_n: [f32; 3]) -> [f32; 3] {
    let t = (math::length(force_n) / TOOL_FORCE_FULL_RED_N).clamp(0.0, 1.0);
    let t = if t.is_nan() { 0.0 } else { t };
    std::array::from_fn(|i| TOOL_COLOR_IDLE[i] + (TOOL_COLOR_FORCE[i] - TOOL_COLOR_IDLE[i]) * t)
}

fn srgb_to_linear(c: u8) -> f32 {
    let c = c as f32 / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// A buffer with its dedicated allocation.
#[derive(Default)]
struct GpuBuffer {
    buffer: vk::Buffer,
    alloc: Option<Allocation>,
}

/// An image, its view and its dedicated allocation.
#[derive(Default)]
struct GpuImage {
    image: vk::Image,
    view: vk::ImageView,
    alloc: Option<Allocation>,
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

/// Offscreen renderer for the simulator's scene. See the module docs for its contract.
pub struct HeadlessRenderer {
    width: u32,
    height: u32,
    color: GpuImage,
    depth: GpuImage,
    readback: GpuBuffer,
    table: MeshBuffers,
    tool: MeshBuffers,
    tissue: MeshBuffers,
    layout: vk::PipelineLayout,
    pipeline: vk::Pipeline,
    pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
    scratch: Vec<Vertex>,
    frames: u64,
    allocator: Option<Allocator>,
    // Declared last so it is dropped after everything above was destroyed in `Drop::drop`.
    ctx: GpuContext,
}

impl HeadlessRenderer {
    /// Creates the Vulkan context, targets, pipeline and static meshes.
    pub fn new(opts: &RenderOptions) -> Result<Self, RenderError> {
        if opts.width == 0 || opts.height == 0 || opts.width > 16384 || opts.height > 16384 {
            return Err(RenderError::InvalidOptions {
                reason: format!(
                    "image size {}x{} (each side must be 1..=16384)",
                    opts.width, opts.height
                ),
            });
        }
        let ctx = GpuContext::new(opts.validation, opts.device_filter.as_deref())?;
        let allocator = Allocator::new(&AllocatorCreateDesc {
            instance: ctx.instance().clone(),
            device: ctx.device.clone(),
            physical_device: ctx.physical,
            debug_settings: Default::default(),
            buffer_device_address: false,
            allocation_sizes: Default::default(),
        })
        .map_err(|source| RenderError::Allocation {
            what: "allocator".into(),
            source,
        })?;
        // Everything starts null; if `init` fails, Drop destroys what was created.
        let mut r = HeadlessRenderer {
            width: opts.width,
            height: opts.height,
            color: GpuImage::default(),
            depth: GpuImage::default(),
            readback: GpuBuffer::default(),
            table: MeshBuffers::default(),
            tool: MeshBuffers::default(),
            tissue: MeshBuffers::default(),
            layout: vk::PipelineLayout::null(),
            pipeline: vk::Pipeline::null(),
            pool: vk::CommandPool::null(),
            cmd: vk::CommandBuffer::null(),
            fence: vk::Fence::null(),
            scratch: Vec::new(),
            frames: 0,
            allocator: Some(allocator),
            ctx,
        };
        r.init()?;
        Ok(r)
    }

    fn init(&mut self) -> Result<(), RenderError> {
        // SAFETY: plain format query on the chosen physical device.
        let depth_props = unsafe {
            self.ctx
                .instance()
                .get_physical_device_format_properties(self.ctx.physical, DEPTH_FORMAT)
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
        self.color = self.create_image(
            "color target",
            COLOR_FORMAT,
            vk::ImageUsageFlags::COLOR_ATTACHMENT | vk::ImageUsageFlags::TRANSFER_SRC,
            vk::ImageAspectFlags::COLOR,
        )?;
        self.depth = self.create_image(
            "depth target",
            DEPTH_FORMAT,
            vk::ImageUsageFlags::DEPTH_STENCIL_ATTACHMENT,
            vk::ImageAspectFlags::DEPTH,
        )?;
        let pixels = u64::from(self.width) * u64::from(self.height) * 4;
        self.readback = self.create_buffer(
            "readback buffer",
            pixels,
            vk::BufferUsageFlags::TRANSFER_DST,
            MemoryLocation::GpuToCpu,
        )?;
        let (v, i) = mesh::table_quad(TABLE_SIZE_M, TABLE_Y_M);
        self.table = self.create_mesh("table", v.len(), i.len())?;
        Self::upload_mesh(&mut self.table, &v, &i)?;
        let (v, i) = mesh::uv_sphere(16, 24);
        self.tool = self.create_mesh("tool sphere", v.len(), i.len())?;
        Self::upload_mesh(&mut self.tool, &v, &i)?;
        self.create_pipeline()?;
        self.create_commands()?;
        Ok(())
    }

    /// The name of the Vulkan device in use (e.g. `llvmpipe (LLVM 19.1.7, 256 bits)`).
    pub fn device_name(&self) -> &str {
        &self.ctx.device_name
    }

    /// Image size in pixels (width, height).
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Number of frames rendered so far.
    pub fn frames_rendered(&self) -> u64 {
        self.frames
    }

    /// What the validation layer reported so far (all zero and `enabled: false` when
    /// validation is off).
    pub fn validation(&self) -> ValidationReport {
        self.ctx.debug.report()
    }

    /// The debug names given to Vulkan objects so far, as `"<ObjectType> <name>"` (empty when
    /// `VK_EXT_debug_utils` is unavailable).
    pub fn object_names(&self) -> Vec<String> {
        self.ctx.object_names()
    }

    /// Destroys everything (like `drop`) and returns the final validation report, which
    /// includes anything the layer said during teardown and instance destruction.
    pub fn finish(self) -> ValidationReport {
        let debug = self.ctx.debug.clone();
        drop(self);
        debug.report()
    }

    /// Projects a world point to pixel coordinates (x right, y down, pixel centres at +0.5)
    /// with exactly the matrices the GPU uses; `None` if the point is behind the camera,
    /// outside the depth range, or the camera is unusable. Points outside the image still
    /// get coordinates (outside `0..width`, `0..height`).
    pub fn project(&self, camera: &Camera, p_m: [f32; 3]) -> Option<[f32; 2]> {
        camera.check().ok()?;
        let vp = camera.view_proj(self.width as f32 / self.height as f32);
        let c = math::transform(&vp, [p_m[0], p_m[1], p_m[2], 1.0]);
        if c[3] <= 1e-9 {
            return None;
        }
        let ndc = [c[0] / c[3], c[1] / c[3], c[2] / c[3]];
        if !(0.0..=1.0).contains(&ndc[2]) {
            return None;
        }
        Some([
            (ndc[0] * 0.5 + 0.5) * self.width as f32,
            (ndc[1] * 0.5 + 0.5) * self.height as f32,
        ])
    }

    /// Draws one frame and returns it. Blocks until the GPU has finished (fence wait).
    pub fn render(
        &mut self,
        scene: &RenderScene<'_>,
        camera: &Camera,
    ) -> Result<RgbaImage, RenderError> {
        camera.check()?;
        // Tissue: CPU normals, then into the (grown if needed) host-visible buffers. The
        // previous frame has completed (we waited on its fence), so the buffers are free.
        let mut scratch = std::mem::take(&mut self.scratch);
        let built = mesh::tissue_vertices(
            scene.tissue_positions_m,
            scene.tissue_triangles,
            &mut scratch,
        );
        let uploaded = built.and_then(|()| {
            let index_count = scene.tissue_triangles.len() * 3;
            if index_count > u32::MAX as usize {
                return Err(RenderError::InvalidScene {
                    reason: "too many tissue triangles".into(),
                });
            }
            if index_count == 0 {
                // Nothing to draw (and nothing to allocate for).
                self.tissue.index_count = 0;
                return Ok(());
            }
            self.ensure_tissue_capacity(scratch.len(), index_count)?;
            let indices = scene.tissue_triangles.iter().flatten().copied();
            Self::write_mesh(&mut self.tissue, &scratch, indices, index_count)
        });
        self.scratch = scratch;
        uploaded?;
        self.flush(&self.tissue.vertices)?;
        self.flush(&self.tissue.indices)?;

        let vp = camera.view_proj(self.width as f32 / self.height as f32);
        let light = math::normalize(LIGHT_TOWARDS).unwrap_or([0.0, 1.0, 0.0]);
        let eye = camera.eye_m;
        let push = |model: [f32; 4], color: [f32; 3], spec: f32| -> [u8; PUSH_BYTES as usize] {
            let mut f = [0f32; 32];
            for (c, col) in vp.iter().enumerate() {
                f[c * 4..c * 4 + 4].copy_from_slice(col);
            }
            f[16..20].copy_from_slice(&model);
            f[20..24].copy_from_slice(&[color[0], color[1], color[2], spec]);
            f[24..28].copy_from_slice(&[light[0], light[1], light[2], AMBIENT]);
            f[28..32].copy_from_slice(&[eye[0], eye[1], eye[2], 0.0]);
            let mut b = [0u8; PUSH_BYTES as usize];
            for (chunk, v) in b.chunks_exact_mut(4).zip(f) {
                chunk.copy_from_slice(&v.to_ne_bytes());
            }
            b
        };
        let mut draws: Vec<(&MeshBuffers, [u8; PUSH_BYTES as usize])> = Vec::with_capacity(3);
        draws.push((&self.table, push([0.0, 0.0, 0.0, 1.0], TABLE_COLOR, 0.05)));
        if self.tissue.index_count > 0 {
            draws.push((&self.tissue, push([0.0, 0.0, 0.0, 1.0], TISSUE_COLOR, 0.25)));
        }
        let r = scene.tool_radius_m;
        if r > 0.0 && r.is_finite() && scene.tool_center_m.iter().all(|v| v.is_finite()) {
            let c = scene.tool_center_m;
            draws.push((
                &self.tool,
                push([c[0], c[1], c[2], r], tool_color(scene.tool_force_n), 0.6),
            ));
        }
        self.record(&draws)?;
        self.submit_and_wait()?;

        let pixels = {
            let alloc = self.readback.alloc.as_ref().expect("readback allocation");
            self.invalidate(alloc)?;
            let len = self.width as usize * self.height as usize * 4;
            let mapped = alloc
                .mapped_slice()
                .ok_or_else(|| RenderError::Allocation {
                    what: "readback buffer".into(),
                    source: gpu_allocator::AllocationError::FailedToMap("not host visible".into()),
                })?;
            mapped[..len].to_vec()
        };
        self.frames += 1;
        Ok(RgbaImage {
            width: self.width,
            height: self.height,
            pixels,
        })
    }

    fn allocator(&mut self) -> &mut Allocator {
        self.allocator.as_mut().expect("allocator lives until drop")
    }

    fn create_buffer(
        &mut self,
        name: &str,
        size: u64,
        usage: vk::BufferUsageFlags,
        location: MemoryLocation,
    ) -> Result<GpuBuffer, RenderError> {
        let info = vk::BufferCreateInfo::default()
            .size(size.max(4))
            .usage(usage)
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        let device = self.ctx.device.clone();
        // SAFETY: valid device and create info.
        let buffer = unsafe { device.create_buffer(&info, None) }
            .map_err(RenderError::vk_res("vkCreateBuffer", name))?;
        self.ctx.name(buffer, name);
        // SAFETY: `buffer` was just created on this device.
        let requirements = unsafe { device.get_buffer_memory_requirements(buffer) };
        let mem_name = format!("{name} memory");
        let alloc = self.allocator().allocate(&AllocationCreateDesc {
            name: &mem_name,
            requirements,
            location,
            linear: true,
            allocation_scheme: AllocationScheme::DedicatedBuffer(buffer),
        });
        let alloc = match alloc {
            Ok(a) => a,
            Err(source) => {
                // SAFETY: the buffer is unused and not bound.
                unsafe { device.destroy_buffer(buffer, None) };
                return Err(RenderError::Allocation {
                    what: name.to_owned(),
                    source,
                });
            }
        };
        let mut out = GpuBuffer {
            buffer,
            alloc: None,
        };
        // SAFETY: `alloc` came from this device's allocator and satisfies `requirements`.
        let bound = unsafe { device.bind_buffer_memory(buffer, alloc.memory(), alloc.offset()) };
        // SAFETY: the allocation's memory object is alive (owned by `alloc`).
        self.ctx.name(unsafe { alloc.memory() }, &mem_name);
        out.alloc = Some(alloc);
        if let Err(result) = bound {
            self.destroy_buffer(&mut out);
            return Err(RenderError::VulkanResource {
                call: "vkBindBufferMemory",
                resource: name.into(),
                result,
            });
        }
        Ok(out)
    }

    fn destroy_buffer(&mut self, b: &mut GpuBuffer) {
        // SAFETY: the GPU is idle with respect to this buffer (callers wait on the frame fence
        // or the device); the handle is destroyed once (null afterwards; null is allowed).
        unsafe { self.ctx.device.destroy_buffer(b.buffer, None) };
        b.buffer = vk::Buffer::null();
        if let Some(a) = b.alloc.take() {
            // A failing free only leaks memory until the allocator is dropped.
            let _ = self.allocator().free(a);
        }
    }

    fn create_image(
        &mut self,
        name: &str,
        format: vk::Format,
        usage: vk::ImageUsageFlags,
        aspect: vk::ImageAspectFlags,
    ) -> Result<GpuImage, RenderError> {
        let device = self.ctx.device.clone();
        let info = vk::ImageCreateInfo::default()
            .image_type(vk::ImageType::TYPE_2D)
            .format(format)
            .extent(vk::Extent3D {
                width: self.width,
                height: self.height,
                depth: 1,
            })
            .mip_levels(1)
            .array_layers(1)
            .samples(vk::SampleCountFlags::TYPE_1)
            .tiling(vk::ImageTiling::OPTIMAL)
            .usage(usage)
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .initial_layout(vk::ImageLayout::UNDEFINED);
        // SAFETY: valid device and create info.
        let image = unsafe { device.create_image(&info, None) }
            .map_err(RenderError::vk_res("vkCreateImage", name))?;
        self.ctx.name(image, name);
        let mut out = GpuImage {
            image,
            ..Default::default()
        };
        // SAFETY: `image` was just created on this device.
        let requirements = unsafe { device.get_image_memory_requirements(image) };
        let mem_name = format!("{name} memory");
        match self.allocator().allocate(&AllocationCreateDesc {
            name: &mem_name,
            requirements,
            location: MemoryLocation::GpuOnly,
            linear: false,
            allocation_scheme: AllocationScheme::DedicatedImage(image),
        }) {
            Ok(a) => out.alloc = Some(a),
            Err(source) => {
                self.destroy_image(&mut out);
                return Err(RenderError::Allocation {
                    what: name.to_owned(),
                    source,
                });
            }
        }
        let alloc = out.alloc.as_ref().expect("just set");
        // SAFETY: the allocation satisfies the image's requirements and is alive.
        let (mem, offset) = unsafe { (alloc.memory(), alloc.offset()) };
        self.ctx.name(mem, &mem_name);
        // SAFETY: binding fresh memory to a fresh, unbound image.
        if let Err(result) = unsafe { device.bind_image_memory(image, mem, offset) } {
            self.destroy_image(&mut out);
            return Err(RenderError::VulkanResource {
                call: "vkBindImageMemory",
                resource: name.into(),
                result,
            });
        }
        let view_info = vk::ImageViewCreateInfo::default()
            .image(image)
            .view_type(vk::ImageViewType::TYPE_2D)
            .format(format)
            .subresource_range(full_range(aspect));
        // SAFETY: the image is bound to memory; the view matches its format and aspects.
        match unsafe { device.create_image_view(&view_info, None) } {
            Ok(v) => out.view = v,
            Err(result) => {
                self.destroy_image(&mut out);
                return Err(RenderError::VulkanResource {
                    call: "vkCreateImageView",
                    resource: name.into(),
                    result,
                });
            }
        }
        self.ctx.name(out.view, &format!("{name} view"));
        Ok(out)
    }

    fn destroy_image(&mut self, i: &mut GpuImage) {
        // SAFETY: the device is idle with respect to these objects; each is destroyed once
        // (null afterwards; destroying null is allowed).
        unsafe {
            self.ctx.device.destroy_image_view(i.view, None);
            self.ctx.device.destroy_image(i.image, None);
        }
        i.view = vk::ImageView::null();
        i.image = vk::Image::null();
        if let Some(a) = i.alloc.take() {
            let _ = self.allocator().free(a);
        }
    }

    fn create_mesh(
        &mut self,
        name: &str,
        vertices: usize,
        indices: usize,
    ) -> Result<MeshBuffers, RenderError> {
        let vertices = vertices.max(1);
        let indices = indices.max(1);
        let vb = self.create_buffer(
            &format!("{name} vertices"),
            (vertices * VERTEX_STRIDE) as u64,
            vk::BufferUsageFlags::VERTEX_BUFFER,
            MemoryLocation::CpuToGpu,
        )?;
        let ib = match self.create_buffer(
            &format!("{name} indices"),
            (indices * 4) as u64,
            vk::BufferUsageFlags::INDEX_BUFFER,
            MemoryLocation::CpuToGpu,
        ) {
            Ok(b) => b,
            Err(e) => {
                let mut vb = vb;
                self.destroy_buffer(&mut vb);
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
        self.destroy_buffer(&mut m.vertices);
        self.destroy_buffer(&mut m.indices);
        m.vertex_capacity = 0;
        m.index_capacity = 0;
        m.index_count = 0;
    }

    fn ensure_tissue_capacity(
        &mut self,
        vertices: usize,
        indices: usize,
    ) -> Result<(), RenderError> {
        if vertices <= self.tissue.vertex_capacity && indices <= self.tissue.index_capacity {
            return Ok(());
        }
        let mut old = std::mem::take(&mut self.tissue);
        let vcap = vertices
            .max(old.vertex_capacity)
            .max(256)
            .next_power_of_two();
        let icap = indices.max(old.index_capacity).max(768).next_power_of_two();
        // The previous frame has completed (fence), so the old buffers are unused.
        self.destroy_mesh(&mut old);
        self.tissue = self.create_mesh("tissue", vcap, icap)?;
        Ok(())
    }

    fn upload_mesh(m: &mut MeshBuffers, v: &[Vertex], i: &[u32]) -> Result<(), RenderError> {
        Self::write_mesh(m, v, i.iter().copied(), i.len())
    }

    fn write_mesh(
        m: &mut MeshBuffers,
        v: &[Vertex],
        indices: impl Iterator<Item = u32>,
        index_count: usize,
    ) -> Result<(), RenderError> {
        let map_err = || RenderError::Allocation {
            what: "mesh buffer".into(),
            source: gpu_allocator::AllocationError::FailedToMap("not host visible".into()),
        };
        let vb = m
            .vertices
            .alloc
            .as_mut()
            .and_then(|a| a.mapped_slice_mut())
            .ok_or_else(map_err)?;
        mesh::write_vertices(&mut vb[..v.len() * VERTEX_STRIDE], v);
        let ib = m
            .indices
            .alloc
            .as_mut()
            .and_then(|a| a.mapped_slice_mut())
            .ok_or_else(map_err)?;
        mesh::write_indices(&mut ib[..index_count * 4], indices);
        m.index_count = index_count as u32;
        Ok(())
    }

    /// Makes host writes visible to the GPU when the memory is not host-coherent.
    fn flush(&self, b: &GpuBuffer) -> Result<(), RenderError> {
        match &b.alloc {
            Some(a) => self.sync_mapped(a, true),
            None => Ok(()),
        }
    }

    /// Makes GPU writes visible to the host when the memory is not host-coherent.
    fn invalidate(&self, a: &Allocation) -> Result<(), RenderError> {
        self.sync_mapped(a, false)
    }

    /// Flushes (`to_gpu`) or invalidates a whole mapped allocation unless it is host-coherent.
    /// Dedicated allocations start at offset 0, so the whole range is valid.
    fn sync_mapped(&self, a: &Allocation, to_gpu: bool) -> Result<(), RenderError> {
        if a.memory_properties()
            .contains(vk::MemoryPropertyFlags::HOST_COHERENT)
        {
            return Ok(());
        }
        // SAFETY: the memory is mapped (host-visible allocation) and the GPU is not using it
        // (before submit when flushing, after the fence wait when invalidating).
        let range = [vk::MappedMemoryRange::default()
            .memory(unsafe { a.memory() })
            .offset(0)
            .size(vk::WHOLE_SIZE)];
        // SAFETY: as above; `range` covers a mapped dedicated allocation.
        unsafe {
            if to_gpu {
                self.ctx
                    .device
                    .flush_mapped_memory_ranges(&range)
                    .map_err(RenderError::vk("vkFlushMappedMemoryRanges"))
            } else {
                self.ctx
                    .device
                    .invalidate_mapped_memory_ranges(&range)
                    .map_err(RenderError::vk("vkInvalidateMappedMemoryRanges"))
            }
        }
    }

    fn create_pipeline(&mut self) -> Result<(), RenderError> {
        let device = self.ctx.device.clone();
        let spirv = super::shader_spirv("mesh").expect("build.rs compiles shaders/mesh.wgsl");
        let words =
            ash::util::read_spv(&mut Cursor::new(spirv)).map_err(|_| RenderError::Vulkan {
                call: "read_spv(mesh.spv)",
                result: vk::Result::ERROR_INVALID_SHADER_NV,
            })?;
        let info = vk::ShaderModuleCreateInfo::default().code(&words);
        // SAFETY: valid SPIR-V produced and validated by naga at build time.
        let module = unsafe { device.create_shader_module(&info, None) }.map_err(
            RenderError::vk_res("vkCreateShaderModule", "mesh shader module"),
        )?;
        self.ctx
            .name(module, "mesh shader module (shaders/mesh.wgsl)");
        let result = self.create_pipeline_with(module);
        // SAFETY: the pipeline (if any) no longer needs the module once created.
        unsafe { device.destroy_shader_module(module, None) };
        result
    }

    fn create_pipeline_with(&mut self, module: vk::ShaderModule) -> Result<(), RenderError> {
        let device = self.ctx.device.clone();
        let ranges = [vk::PushConstantRange::default()
            .stage_flags(vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT)
            .offset(0)
            .size(PUSH_BYTES)];
        let layout_info = vk::PipelineLayoutCreateInfo::default().push_constant_ranges(&ranges);
        // SAFETY: valid device and create info.
        self.layout = unsafe { device.create_pipeline_layout(&layout_info, None) }.map_err(
            RenderError::vk_res("vkCreatePipelineLayout", "mesh pipeline layout"),
        )?;
        self.ctx.name(self.layout, "mesh pipeline layout");

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
        let bindings = [vk::VertexInputBindingDescription::default()
            .binding(0)
            .stride(VERTEX_STRIDE as u32)
            .input_rate(vk::VertexInputRate::VERTEX)];
        let attributes = [
            vk::VertexInputAttributeDescription::default()
                .location(0)
                .binding(0)
                .format(vk::Format::R32G32B32_SFLOAT)
                .offset(0),
            vk::VertexInputAttributeDescription::default()
                .location(1)
                .binding(0)
                .format(vk::Format::R32G32B32_SFLOAT)
                .offset(12),
        ];
        let vertex_input = vk::PipelineVertexInputStateCreateInfo::default()
            .vertex_binding_descriptions(&bindings)
            .vertex_attribute_descriptions(&attributes);
        let input_assembly = vk::PipelineInputAssemblyStateCreateInfo::default()
            .topology(vk::PrimitiveTopology::TRIANGLE_LIST);
        let viewports = [vk::Viewport {
            x: 0.0,
            y: 0.0,
            width: self.width as f32,
            height: self.height as f32,
            min_depth: 0.0,
            max_depth: 1.0,
        }];
        let scissors = [vk::Rect2D {
            offset: vk::Offset2D { x: 0, y: 0 },
            extent: vk::Extent2D {
                width: self.width,
                height: self.height,
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
        let multisample = vk::PipelineMultisampleStateCreateInfo::default()
            .rasterization_samples(vk::SampleCountFlags::TYPE_1);
        let depth = vk::PipelineDepthStencilStateCreateInfo::default()
            .depth_test_enable(true)
            .depth_write_enable(true)
            .depth_compare_op(vk::CompareOp::LESS);
        let blend_attachments = [vk::PipelineColorBlendAttachmentState::default()
            .blend_enable(false)
            .color_write_mask(vk::ColorComponentFlags::RGBA)];
        let blend =
            vk::PipelineColorBlendStateCreateInfo::default().attachments(&blend_attachments);
        let color_formats = [COLOR_FORMAT];
        let mut rendering = vk::PipelineRenderingCreateInfo::default()
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
        // SAFETY: every pointer in `info` refers to locals alive for the call; dynamic
        // rendering is enabled on the device.
        let pipelines =
            unsafe { device.create_graphics_pipelines(vk::PipelineCache::null(), &[info], None) }
                .map_err(|(_, result)| RenderError::VulkanResource {
                call: "vkCreateGraphicsPipelines",
                resource: "mesh pipeline".into(),
                result,
            })?;
        self.pipeline = pipelines[0];
        self.ctx.name(self.pipeline, "mesh pipeline");
        Ok(())
    }

    fn create_commands(&mut self) -> Result<(), RenderError> {
        let device = self.ctx.device.clone();
        let info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(self.ctx.queue_family)
            .flags(vk::CommandPoolCreateFlags::TRANSIENT);
        // SAFETY: valid device and create info.
        self.pool = unsafe { device.create_command_pool(&info, None) }.map_err(
            RenderError::vk_res("vkCreateCommandPool", "frame command pool"),
        )?;
        self.ctx.name(self.pool, "frame command pool");
        let alloc_info = vk::CommandBufferAllocateInfo::default()
            .command_pool(self.pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        // SAFETY: the pool was just created on this device.
        self.cmd = unsafe { device.allocate_command_buffers(&alloc_info) }.map_err(
            RenderError::vk_res("vkAllocateCommandBuffers", "frame command buffer"),
        )?[0];
        self.ctx.name(self.cmd, "frame command buffer");
        // SAFETY: valid device.
        self.fence = unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }
            .map_err(RenderError::vk_res("vkCreateFence", "frame fence"))?;
        self.ctx.name(self.fence, "frame fence");
        Ok(())
    }

    fn record(
        &self,
        draws: &[(&MeshBuffers, [u8; PUSH_BYTES as usize])],
    ) -> Result<(), RenderError> {
        let d = &self.ctx.device;
        let cmd = self.cmd;
        let extent = vk::Extent2D {
            width: self.width,
            height: self.height,
        };
        let bg = BACKGROUND_SRGB.map(srgb_to_linear);
        // SAFETY: the command buffer is not in use (previous submission waited on); every
        // handle recorded is alive until after the fence wait in `submit_and_wait`.
        unsafe {
            d.reset_command_pool(self.pool, vk::CommandPoolResetFlags::empty())
                .map_err(RenderError::vk("vkResetCommandPool"))?;
            d.begin_command_buffer(
                cmd,
                &vk::CommandBufferBeginInfo::default()
                    .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
            )
            .map_err(RenderError::vk("vkBeginCommandBuffer"))?;

            // Discard last frame's contents: colour after the previous copy (WAR), depth after
            // the previous depth writes (WAW).
            let to_attachments = [
                vk::ImageMemoryBarrier2::default()
                    .src_stage_mask(vk::PipelineStageFlags2::COPY)
                    .src_access_mask(vk::AccessFlags2::NONE)
                    .dst_stage_mask(vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT)
                    .dst_access_mask(vk::AccessFlags2::COLOR_ATTACHMENT_WRITE)
                    .old_layout(vk::ImageLayout::UNDEFINED)
                    .new_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
                    .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                    .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                    .image(self.color.image)
                    .subresource_range(full_range(vk::ImageAspectFlags::COLOR)),
                vk::ImageMemoryBarrier2::default()
                    .src_stage_mask(vk::PipelineStageFlags2::LATE_FRAGMENT_TESTS)
                    .src_access_mask(vk::AccessFlags2::DEPTH_STENCIL_ATTACHMENT_WRITE)
                    .dst_stage_mask(
                        vk::PipelineStageFlags2::EARLY_FRAGMENT_TESTS
                            | vk::PipelineStageFlags2::LATE_FRAGMENT_TESTS,
                    )
                    .dst_access_mask(
                        vk::AccessFlags2::DEPTH_STENCIL_ATTACHMENT_READ
                            | vk::AccessFlags2::DEPTH_STENCIL_ATTACHMENT_WRITE,
                    )
                    .old_layout(vk::ImageLayout::UNDEFINED)
                    .new_layout(vk::ImageLayout::DEPTH_ATTACHMENT_OPTIMAL)
                    .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                    .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                    .image(self.depth.image)
                    .subresource_range(full_range(vk::ImageAspectFlags::DEPTH)),
            ];
            d.cmd_pipeline_barrier2(
                cmd,
                &vk::DependencyInfo::default().image_memory_barriers(&to_attachments),
            );

            let color_attachment = [vk::RenderingAttachmentInfo::default()
                .image_view(self.color.view)
                .image_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
                .load_op(vk::AttachmentLoadOp::CLEAR)
                .store_op(vk::AttachmentStoreOp::STORE)
                .clear_value(vk::ClearValue {
                    color: vk::ClearColorValue {
                        float32: [bg[0], bg[1], bg[2], 1.0],
                    },
                })];
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
                .color_attachments(&color_attachment)
                .depth_attachment(&depth_attachment);
            d.cmd_begin_rendering(cmd, &rendering);
            d.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::GRAPHICS, self.pipeline);
            for (m, push) in draws {
                d.cmd_bind_vertex_buffers(cmd, 0, &[m.vertices.buffer], &[0]);
                d.cmd_bind_index_buffer(cmd, m.indices.buffer, 0, vk::IndexType::UINT32);
                d.cmd_push_constants(
                    cmd,
                    self.layout,
                    vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT,
                    0,
                    push,
                );
                d.cmd_draw_indexed(cmd, m.index_count, 1, 0, 0, 0);
            }
            d.cmd_end_rendering(cmd);

            let to_copy = [vk::ImageMemoryBarrier2::default()
                .src_stage_mask(vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT)
                .src_access_mask(vk::AccessFlags2::COLOR_ATTACHMENT_WRITE)
                .dst_stage_mask(vk::PipelineStageFlags2::COPY)
                .dst_access_mask(vk::AccessFlags2::TRANSFER_READ)
                .old_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
                .new_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
                .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .image(self.color.image)
                .subresource_range(full_range(vk::ImageAspectFlags::COLOR))];
            d.cmd_pipeline_barrier2(
                cmd,
                &vk::DependencyInfo::default().image_memory_barriers(&to_copy),
            );
            let region = [vk::BufferImageCopy::default()
                .buffer_offset(0)
                .buffer_row_length(0)
                .buffer_image_height(0)
                .image_subresource(vk::ImageSubresourceLayers {
                    aspect_mask: vk::ImageAspectFlags::COLOR,
                    mip_level: 0,
                    base_array_layer: 0,
                    layer_count: 1,
                })
                .image_extent(vk::Extent3D {
                    width: self.width,
                    height: self.height,
                    depth: 1,
                })];
            d.cmd_copy_image_to_buffer(
                cmd,
                self.color.image,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                self.readback.buffer,
                &region,
            );
            let to_host = [vk::BufferMemoryBarrier2::default()
                .src_stage_mask(vk::PipelineStageFlags2::COPY)
                .src_access_mask(vk::AccessFlags2::TRANSFER_WRITE)
                .dst_stage_mask(vk::PipelineStageFlags2::HOST)
                .dst_access_mask(vk::AccessFlags2::HOST_READ)
                .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .buffer(self.readback.buffer)
                .offset(0)
                .size(vk::WHOLE_SIZE)];
            d.cmd_pipeline_barrier2(
                cmd,
                &vk::DependencyInfo::default().buffer_memory_barriers(&to_host),
            );
            d.end_command_buffer(cmd)
                .map_err(RenderError::vk("vkEndCommandBuffer"))?;
        }
        Ok(())
    }

    fn submit_and_wait(&self) -> Result<(), RenderError> {
        let d = &self.ctx.device;
        let cmds = [vk::CommandBufferSubmitInfo::default().command_buffer(self.cmd)];
        let submit = [vk::SubmitInfo2::default().command_buffer_infos(&cmds)];
        // SAFETY: the command buffer is fully recorded; the fence is unsignalled (reset after
        // each wait); waiting here is allowed (render thread).
        unsafe {
            d.queue_submit2(self.ctx.queue, &submit, self.fence)
                .map_err(RenderError::vk("vkQueueSubmit2"))?;
            // A frame that takes this long means a hung device: report it (VK_TIMEOUT) rather
            // than block the render thread, and with it the end of the session, for ever.
            d.wait_for_fences(&[self.fence], true, FRAME_TIMEOUT_NS)
                .map_err(RenderError::vk("vkWaitForFences"))?;
            d.reset_fences(&[self.fence])
                .map_err(RenderError::vk("vkResetFences"))?;
        }
        Ok(())
    }
}

fn full_range(aspect: vk::ImageAspectFlags) -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange {
        aspect_mask: aspect,
        base_mip_level: 0,
        level_count: 1,
        base_array_layer: 0,
        layer_count: 1,
    }
}

impl Drop for HeadlessRenderer {
    fn drop(&mut self) {
        // SAFETY: waiting for idle makes every object below unused by the GPU; each handle is
        // destroyed exactly once (null handles, from a failed `new`, are allowed).
        unsafe {
            let _ = self.ctx.device.device_wait_idle();
            self.ctx.device.destroy_fence(self.fence, None);
            // Frees the command buffer with it.
            self.ctx.device.destroy_command_pool(self.pool, None);
            self.ctx.device.destroy_pipeline(self.pipeline, None);
            self.ctx.device.destroy_pipeline_layout(self.layout, None);
        }
        self.fence = vk::Fence::null();
        self.pool = vk::CommandPool::null();
        self.pipeline = vk::Pipeline::null();
        self.layout = vk::PipelineLayout::null();
        for mut m in [
            std::mem::take(&mut self.tissue),
            std::mem::take(&mut self.tool),
            std::mem::take(&mut self.table),
        ] {
            self.destroy_mesh(&mut m);
        }
        let mut b = std::mem::take(&mut self.readback);
        self.destroy_buffer(&mut b);
        let mut i = std::mem::take(&mut self.depth);
        self.destroy_image(&mut i);
        let mut i = std::mem::take(&mut self.color);
        self.destroy_image(&mut i);
        // The allocator frees its memory blocks before the device goes (ctx drops after).
        drop(self.allocator.take());
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
}
