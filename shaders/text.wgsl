// text.wgsl: in-world text from the built-in font atlas (src/render/font.rs), drawn by
// src/render/renderer.rs after the meshes.
//
// Contract with src/render/renderer.rs:
// - vertex input: binding 0, stride 20 bytes; location 0 = position (vec3<f32>, world, m),
//   location 1 = atlas uv (vec2<f32>);
// - group 0: binding 0 the same `Frame` uniform as mesh.wgsl (only `views` is read here),
//   binding 1 the atlas (R8, coverage in .r), binding 2 its sampler (nearest);
// - per-draw data: the 96-byte immediate block `Draw` of mesh.wgsl; only `color` (linear RGB)
//   is read;
// - glyph pixels with coverage below one half are discarded (alpha test: no blending, so no
//   ordering problems; MSAA smooths the edges). Multiview as in mesh.wgsl.

struct View {
    view_proj: mat4x4<f32>,
    eye: vec4<f32>,
}

struct Frame {
    views: array<View, 2>,
    light_dir: vec4<f32>,
    materials: array<vec4<f32>, 8>,
    overlay: vec4<f32>,
}

@group(0) @binding(0) var<uniform> frame: Frame;
@group(0) @binding(1) var atlas: texture_2d<f32>;
@group(0) @binding(2) var atlas_sampler: sampler;

struct Draw {
    model: mat4x4<f32>,
    color: vec4<f32>,
    params: vec4<f32>,
}

var<immediate> draw: Draw;

struct VsIn {
    @location(0) position: vec3<f32>,
    @location(1) uv: vec2<f32>,
}

struct VsOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) uv: vec2<f32>,
}

@vertex
fn vs_main(v: VsIn, @builtin(view_index) view: u32) -> VsOut {
    var out: VsOut;
    out.clip = frame.views[min(view, 1u)].view_proj * draw.model * vec4<f32>(v.position, 1.0);
    out.uv = v.uv;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    let coverage = textureSample(atlas, atlas_sampler, in.uv).r;
    if coverage < 0.5 {
        discard;
    }
    return vec4<f32>(draw.color.rgb, 1.0);
}
