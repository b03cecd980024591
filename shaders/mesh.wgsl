// mesh.wgsl: the lit-mesh pipeline of haptwin's renderer (src/render/renderer.rs).
//
// Contract with src/render/renderer.rs:
// - vertex input: binding 0, stride 32 bytes; location 0 = position (vec3<f32>, metres, mesh
//   frame), location 1 = normal (vec3<f32>, mesh frame, need not be unit length), location 2 =
//   material (u32, index into `frame.materials`), location 3 = overlay value (f32, 0..1);
// - group 0 binding 0: the per-frame uniform block `Frame` (layout = `FrameUniform` in
//   renderer.rs): one world -> Vulkan clip matrix and eye position per view, the light, the
//   material table, the overlay switch;
// - per-draw data: the 96-byte immediate (push-constant) block `Draw` (layout = `DrawPush`);
// - multiview: `view_index` picks the view (0 = left eye, 1 = right eye; always 0 without
//   multiview);
// - output: one colour attachment in LINEAR colour (the attachment is sRGB, the hardware
//   encodes on write); clip space is Vulkan's (y down, z in [0, 1]).

struct View {
    view_proj: mat4x4<f32>,
    // xyz: eye position (world, m).
    eye: vec4<f32>,
}

struct Frame {
    views: array<View, 2>,
    // xyz: direction TOWARDS the light (world frame); w: ambient fraction.
    light_dir: vec4<f32>,
    // Linear RGB base colour per material; a = specular strength.
    materials: array<vec4<f32>, 8>,
    // x: overlay blend (0 = off, 1 = full heat map); yzw unused.
    overlay: vec4<f32>,
}

@group(0) @binding(0) var<uniform> frame: Frame;

struct Draw {
    // Mesh -> world (rigid motion and uniform scale).
    model: mat4x4<f32>,
    // Linear RGB + specular, used when `params.x` is 1.
    color: vec4<f32>,
    // x: 1 = use `color`, 0 = use the vertex's material; y: 1 = apply the overlay.
    params: vec4<f32>,
}

var<immediate> draw: Draw;

struct VsIn {
    @location(0) position: vec3<f32>,
    @location(1) normal: vec3<f32>,
    @location(2) material: u32,
    @location(3) overlay: f32,
}

struct VsOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) to_eye: vec3<f32>,
    @location(1) normal: vec3<f32>,
    @location(2) base: vec4<f32>,
    @location(3) overlay: f32,
}

@vertex
fn vs_main(v: VsIn, @builtin(view_index) view: u32) -> VsOut {
    let world = draw.model * vec4<f32>(v.position, 1.0);
    let vw = frame.views[min(view, 1u)];
    var out: VsOut;
    out.clip = vw.view_proj * world;
    // Linear in the world position, so interpolating it is exact.
    out.to_eye = vw.eye.xyz - world.xyz;
    // Rigid motion + uniform scale: the upper 3x3 keeps normal directions.
    out.normal = (draw.model * vec4<f32>(v.normal, 0.0)).xyz;
    if draw.params.x > 0.5 {
        out.base = draw.color;
    } else {
        out.base = frame.materials[min(v.material, 7u)];
    }
    out.overlay = clamp(v.overlay, 0.0, 1.0) * draw.params.y * frame.overlay.x;
    return out;
}

// Blue (0) -> cyan -> green -> yellow -> red (1), linear RGB.
fn heat(t: f32) -> vec3<f32> {
    let r = clamp(1.5 - abs(4.0 * t - 3.0), 0.0, 1.0);
    let g = clamp(1.5 - abs(4.0 * t - 2.0), 0.0, 1.0);
    let b = clamp(1.5 - abs(4.0 * t - 1.0), 0.0, 1.0);
    return vec3<f32>(r, g, b);
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
    let to_eye = normalize(in.to_eye);
    // Two-sided lighting: whatever the winding, light the side facing the camera.
    if dot(n, to_eye) < 0.0 {
        n = -n;
    }
    let l = normalize(frame.light_dir.xyz);
    let diffuse = max(dot(n, l), 0.0);
    let h = normalize(l + to_eye);
    let spec = pow(max(dot(n, h), 0.0), 48.0) * in.base.a;
    let ambient = frame.light_dir.w;
    let albedo = mix(in.base.rgb, heat(in.overlay), step(0.001, in.overlay) * 0.75);
    let rgb = albedo * (ambient + (1.0 - ambient) * diffuse) + vec3<f32>(spec);
    return vec4<f32>(rgb, 1.0);
}
