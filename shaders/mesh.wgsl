// mesh.wgsl: the one lit-mesh pipeline of haptwin's headless renderer (src/render/).
//
// Contract with src/render/headless.rs:
// - vertex input: binding 0, stride 24 bytes; location 0 = position (vec3<f32>, metres,
//   mesh frame), location 1 = normal (vec3<f32>, mesh frame, need not be unit length);
// - per-draw data: the 128-byte immediate (Vulkan push-constant) block `Draw` below,
//   visible to both stages; its layout must match `DrawPush` in headless.rs;
// - output: one colour attachment in LINEAR colour (the attachment is R8G8B8A8_SRGB,
//   so the hardware sRGB-encodes on write);
// - clip space is Vulkan's (y down, z in [0, 1]); `view_proj` already targets it.
// No multiview yet (a later change adds @builtin(view_index) and a per-view matrix).

struct Draw {
    // World -> Vulkan clip space.
    view_proj: mat4x4<f32>,
    // Mesh -> world: xyz translation (m), w uniform scale.
    model: vec4<f32>,
    // Linear RGB base colour; a = specular strength.
    base_color: vec4<f32>,
    // xyz: direction TOWARDS the light (world frame); w: ambient fraction.
    light_dir: vec4<f32>,
    // xyz: camera position (world, m); w unused.
    eye: vec4<f32>,
}

var<immediate> draw: Draw;

struct VsIn {
    @location(0) position: vec3<f32>,
    @location(1) normal: vec3<f32>,
}

struct VsOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) world_pos: vec3<f32>,
    @location(1) normal: vec3<f32>,
}

@vertex
fn vs_main(v: VsIn) -> VsOut {
    let world = v.position * draw.model.w + draw.model.xyz;
    var out: VsOut;
    out.clip = draw.view_proj * vec4<f32>(world, 1.0);
    out.world_pos = world;
    // Translation + uniform scale leave normal directions unchanged.
    out.normal = v.normal;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    var n = in.normal;
    let len = length(n);
    if len > 1e-12 {
        n = n / len;
    } else {
        n = vec3<f32>(0.0, 1.0, 0.0);
    }
    let to_eye = normalize(draw.eye.xyz - in.world_pos);
    // Two-sided lighting: whatever the winding, light the side facing the camera.
    if dot(n, to_eye) < 0.0 {
        n = -n;
    }
    let l = normalize(draw.light_dir.xyz);
    let diffuse = max(dot(n, l), 0.0);
    let h = normalize(l + to_eye);
    let spec = pow(max(dot(n, h), 0.0), 48.0) * draw.base_color.a;
    let ambient = draw.light_dir.w;
    let rgb = draw.base_color.rgb * (ambient + (1.0 - ambient) * diffuse) + vec3<f32>(spec);
    return vec4<f32>(rgb, 1.0);
}
