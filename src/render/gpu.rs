//! GPU resources of the renderer: the Vulkan context with its memory allocator, and named
//! buffers and images with dedicated allocations.
//!
//! Contract:
//! - render thread only; every object is named for the debugger right after creation
//!   (`<name>`, `<name> view`, `<name> memory`);
//! - every allocation is dedicated (one `VkDeviceMemory` per resource, carrying its name);
//! - destroying is the caller's job once the GPU no longer uses the resource (after a fence
//!   wait or device idle); `destroy_*` accept half-made and already destroyed (null) ones;
//! - a failure leaves nothing behind and names the resource.

use ash::vk;
use gpu_allocator::vulkan::{
    Allocation, AllocationCreateDesc, AllocationScheme, Allocator, AllocatorCreateDesc,
};
use gpu_allocator::MemoryLocation;

use super::context::{ContextHooks, GpuContext};
use super::RenderError;

/// A buffer with its dedicated allocation.
#[derive(Default)]
pub(crate) struct GpuBuffer {
    pub buffer: vk::Buffer,
    pub alloc: Option<Allocation>,
    pub size: u64,
}

impl GpuBuffer {
    /// The mapped bytes (host-visible buffers only).
    pub fn mapped_mut(&mut self) -> Result<&mut [u8], RenderError> {
        self.alloc
            .as_mut()
            .and_then(|a| a.mapped_slice_mut())
            .ok_or_else(|| RenderError::Allocation {
                what: "mapped buffer".into(),
                source: gpu_allocator::AllocationError::FailedToMap("not host visible".into()),
            })
    }

    /// The mapped bytes, read-only.
    pub fn mapped(&self) -> Result<&[u8], RenderError> {
        self.alloc
            .as_ref()
            .and_then(|a| a.mapped_slice())
            .ok_or_else(|| RenderError::Allocation {
                what: "mapped buffer".into(),
                source: gpu_allocator::AllocationError::FailedToMap("not host visible".into()),
            })
    }
}

/// An image, its view and its dedicated allocation.
#[derive(Default)]
pub(crate) struct GpuImage {
    pub image: vk::Image,
    pub view: vk::ImageView,
    pub alloc: Option<Allocation>,
}

/// What an image is made as.
pub(crate) struct ImageDesc<'a> {
    pub name: &'a str,
    pub format: vk::Format,
    pub width: u32,
    pub height: u32,
    pub layers: u32,
    pub samples: vk::SampleCountFlags,
    pub usage: vk::ImageUsageFlags,
    pub aspect: vk::ImageAspectFlags,
    /// `TYPE_2D_ARRAY` for render targets (one layer per view), `TYPE_2D` for textures.
    pub view_type: vk::ImageViewType,
}

/// The context and its allocator.
pub(crate) struct Gpu {
    allocator: Option<Allocator>,
    // Declared last so it is dropped after the allocator.
    pub ctx: GpuContext,
}

impl Gpu {
    pub fn new(
        validation: bool,
        device_filter: Option<&str>,
        hooks: &dyn ContextHooks,
    ) -> Result<Self, RenderError> {
        let ctx = GpuContext::with_hooks(validation, device_filter, hooks)?;
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
        Ok(Self {
            allocator: Some(allocator),
            ctx,
        })
    }

    fn allocator(&mut self) -> &mut Allocator {
        self.allocator.as_mut().expect("allocator lives until drop")
    }

    pub fn create_buffer(
        &mut self,
        name: &str,
        size: u64,
        usage: vk::BufferUsageFlags,
        location: MemoryLocation,
    ) -> Result<GpuBuffer, RenderError> {
        let size = size.max(4);
        let info = vk::BufferCreateInfo::default()
            .size(size)
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
        // SAFETY: `alloc` came from this device's allocator and satisfies `requirements`.
        let bound = unsafe { device.bind_buffer_memory(buffer, alloc.memory(), alloc.offset()) };
        // SAFETY: the allocation's memory object is alive (owned by `alloc`).
        self.ctx.name(unsafe { alloc.memory() }, &mem_name);
        let mut out = GpuBuffer {
            buffer,
            alloc: Some(alloc),
            size,
        };
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

    pub fn destroy_buffer(&mut self, b: &mut GpuBuffer) {
        // SAFETY: the GPU no longer uses this buffer (callers wait on fences or the device);
        // the handle is destroyed once (null afterwards; null is allowed).
        unsafe { self.ctx.device.destroy_buffer(b.buffer, None) };
        b.buffer = vk::Buffer::null();
        b.size = 0;
        if let Some(a) = b.alloc.take() {
            // A failing free only leaks memory until the allocator is dropped.
            let _ = self.allocator().free(a);
        }
    }

    pub fn create_image(&mut self, d: &ImageDesc<'_>) -> Result<GpuImage, RenderError> {
        let device = self.ctx.device.clone();
        let name = d.name;
        let info = vk::ImageCreateInfo::default()
            .image_type(vk::ImageType::TYPE_2D)
            .format(d.format)
            .extent(vk::Extent3D {
                width: d.width,
                height: d.height,
                depth: 1,
            })
            .mip_levels(1)
            .array_layers(d.layers)
            .samples(d.samples)
            .tiling(vk::ImageTiling::OPTIMAL)
            .usage(d.usage)
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
            .view_type(d.view_type)
            .format(d.format)
            .subresource_range(layer_range(d.aspect, 0, d.layers));
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

    pub fn destroy_image(&mut self, i: &mut GpuImage) {
        // SAFETY: the GPU no longer uses these objects; each is destroyed once (null
        // afterwards; destroying null is allowed).
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

    /// Makes host writes visible to the GPU (`to_gpu`) or GPU writes visible to the host,
    /// unless the memory is host-coherent. Dedicated allocations start at offset 0, so the
    /// whole range is valid.
    pub fn sync_mapped(&self, b: &GpuBuffer, to_gpu: bool) -> Result<(), RenderError> {
        let Some(a) = &b.alloc else { return Ok(()) };
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
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // The allocator frees its memory blocks before the device goes (ctx drops after).
        drop(self.allocator.take());
    }
}

/// Layers `base..base + count` of mip 0 of an image.
pub(crate) fn layer_range(
    aspect: vk::ImageAspectFlags,
    base: u32,
    count: u32,
) -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange {
        aspect_mask: aspect,
        base_mip_level: 0,
        level_count: 1,
        base_array_layer: base,
        layer_count: count,
    }
}

/// One colour layer of mip 0, for copies and blits.
pub(crate) fn color_layer(layer: u32) -> vk::ImageSubresourceLayers {
    vk::ImageSubresourceLayers {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        mip_level: 0,
        base_array_layer: layer,
        layer_count: 1,
    }
}

/// An image layout transition (synchronization2) of the given layers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn image_barrier(
    image: vk::Image,
    range: vk::ImageSubresourceRange,
    src_stage: vk::PipelineStageFlags2,
    src_access: vk::AccessFlags2,
    dst_stage: vk::PipelineStageFlags2,
    dst_access: vk::AccessFlags2,
    old_layout: vk::ImageLayout,
    new_layout: vk::ImageLayout,
) -> vk::ImageMemoryBarrier2<'static> {
    vk::ImageMemoryBarrier2::default()
        .src_stage_mask(src_stage)
        .src_access_mask(src_access)
        .dst_stage_mask(dst_stage)
        .dst_access_mask(dst_access)
        .old_layout(old_layout)
        .new_layout(new_layout)
        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .image(image)
        .subresource_range(range)
}
