//! Small column-major 4x4 matrix helpers for the renderer.
//!
//! Contract: matrices are `[[f32; 4]; 4]` indexed `m[column][row]`, the memory layout WGSL's
//! `mat4x4<f32>` expects; projections target **Vulkan clip space** (x right, y down,
//! z in [0, 1]) from a right-handed world (camera looks down -z in view space).

pub(crate) type Mat4 = [[f32; 4]; 4];
pub(crate) type Vec3 = [f32; 3];

pub(crate) fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub(crate) fn scale(a: Vec3, s: f32) -> Vec3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

pub(crate) fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn dot(a: Vec3, b: Vec3) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub(crate) fn length(a: Vec3) -> f32 {
    dot(a, a).sqrt()
}

/// Normalises `a`, or returns `None` for a (near-)zero or non-finite vector.
pub(crate) fn normalize(a: Vec3) -> Option<Vec3> {
    let l = length(a);
    if l.is_finite() && l > 1e-20 {
        Some([a[0] / l, a[1] / l, a[2] / l])
    } else {
        None
    }
}

/// `a * b` (apply `b` first).
pub(crate) fn mul(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut r = [[0.0f32; 4]; 4];
    for (c, col) in r.iter_mut().enumerate() {
        for (row, v) in col.iter_mut().enumerate() {
            *v = (0..4).map(|k| a[k][row] * b[c][k]).sum();
        }
    }
    r
}

pub(crate) fn transform(m: &Mat4, p: [f32; 4]) -> [f32; 4] {
    let mut r = [0.0f32; 4];
    for (row, v) in r.iter_mut().enumerate() {
        *v = (0..4).map(|k| m[k][row] * p[k]).sum();
    }
    r
}

/// Right-handed look-at view matrix. Falls back to a different up vector when `up` is
/// parallel to the viewing direction.
pub(crate) fn look_at(eye: Vec3, target: Vec3, up: Vec3) -> Mat4 {
    let f = normalize(sub(target, eye)).unwrap_or([0.0, 0.0, -1.0]);
    let s = normalize(cross(f, up))
        .or_else(|| normalize(cross(f, [0.0, 0.0, 1.0])))
        .unwrap_or([1.0, 0.0, 0.0]);
    let u = cross(s, f);
    [
        [s[0], u[0], -f[0], 0.0],
        [s[1], u[1], -f[1], 0.0],
        [s[2], u[2], -f[2], 0.0],
        [-dot(s, eye), -dot(u, eye), dot(f, eye), 1.0],
    ]
}

/// Perspective projection into Vulkan clip space: y down, depth 0 at `near`, 1 at `far`.
pub(crate) fn perspective_vk(fov_y: f32, aspect: f32, near: f32, far: f32) -> Mat4 {
    let f = 1.0 / (0.5 * fov_y).tan();
    let a = far / (near - far);
    let b = near * far / (near - far);
    [
        [f / aspect, 0.0, 0.0, 0.0],
        [0.0, -f, 0.0, 0.0],
        [0.0, 0.0, a, -1.0],
        [0.0, 0.0, b, 0.0],
    ]
}

/// Asymmetric perspective projection into Vulkan clip space from the tangents of the four
/// half-angles (OpenXR's `XrFovf`: `left` and `down` are negative for a usual eye).
pub(crate) fn frustum_vk(
    tan_left: f32,
    tan_right: f32,
    tan_up: f32,
    tan_down: f32,
    near: f32,
    far: f32,
) -> Mat4 {
    let w = tan_right - tan_left;
    let h = tan_up - tan_down;
    let a = far / (near - far);
    let b = near * far / (near - far);
    // x_ndc = (2 x / -z - (r + l)) / w; y_ndc is flipped (Vulkan y down).
    [
        [2.0 / w, 0.0, 0.0, 0.0],
        [0.0, -2.0 / h, 0.0, 0.0],
        [
            (tan_right + tan_left) / w,
            -(tan_up + tan_down) / h,
            a,
            -1.0,
        ],
        [0.0, 0.0, b, 0.0],
    ]
}

/// The rotation matrix of a unit quaternion `[x, y, z, w]` (columns).
pub(crate) fn quat_to_mat3(q: [f32; 4]) -> [[f32; 3]; 3] {
    let [x, y, z, w] = q;
    [
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y + z * w),
            2.0 * (x * z - y * w),
        ],
        [
            2.0 * (x * y - z * w),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z + x * w),
        ],
        [
            2.0 * (x * z + y * w),
            2.0 * (y * z - x * w),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ]
}

/// The view matrix (world -> eye) of an eye at `position` with orientation `q` (eye -> world
/// rotation, `[x, y, z, w]`, looking down the eye's -z).
pub(crate) fn view_from_pose(position: Vec3, q: [f32; 4]) -> Mat4 {
    let r = quat_to_mat3(q);
    // Inverse of a rigid motion: R^T, -R^T p.
    let mut m = [[0.0f32; 4]; 4];
    for (c, col) in m.iter_mut().take(3).enumerate() {
        for (row, v) in col.iter_mut().take(3).enumerate() {
            *v = r[row][c];
        }
    }
    for row in 0..3 {
        m[3][row] = -dot(r[row], position);
    }
    m[3][3] = 1.0;
    m
}

/// A model matrix whose local +y runs along `axis` (normalised here), scaled by `scale`
/// (local x, y, z), placed at `origin`.
pub(crate) fn model_along(origin: Vec3, axis: Vec3, scale: Vec3) -> Mat4 {
    let y = normalize(axis).unwrap_or([0.0, 1.0, 0.0]);
    let helper = if y[0].abs() < 0.9 {
        [1.0, 0.0, 0.0]
    } else {
        [0.0, 0.0, 1.0]
    };
    let x = normalize(cross(helper, y)).unwrap_or([1.0, 0.0, 0.0]);
    let z = cross(x, y);
    [
        [x[0] * scale[0], x[1] * scale[0], x[2] * scale[0], 0.0],
        [y[0] * scale[1], y[1] * scale[1], y[2] * scale[1], 0.0],
        [z[0] * scale[2], z[1] * scale[2], z[2] * scale[2], 0.0],
        [origin[0], origin[1], origin[2], 1.0],
    ]
}

/// A model matrix from an origin and three (already scaled) axis columns.
pub(crate) fn model_from_axes(origin: Vec3, x: Vec3, y: Vec3, z: Vec3) -> Mat4 {
    [
        [x[0], x[1], x[2], 0.0],
        [y[0], y[1], y[2], 0.0],
        [z[0], z[1], z[2], 0.0],
        [origin[0], origin[1], origin[2], 1.0],
    ]
}

/// Translation + uniform scale.
pub(crate) fn translate_scale(t: Vec3, s: f32) -> Mat4 {
    [
        [s, 0.0, 0.0, 0.0],
        [0.0, s, 0.0, 0.0],
        [0.0, 0.0, s, 0.0],
        [t[0], t[1], t[2], 1.0],
    ]
}

pub(crate) const IDENTITY: Mat4 = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_maps_near_far_to_vulkan_depth() {
        let p = perspective_vk(1.0, 1.5, 0.1, 10.0);
        let n = transform(&p, [0.0, 0.0, -0.1, 1.0]);
        let f = transform(&p, [0.0, 0.0, -10.0, 1.0]);
        assert!((n[2] / n[3]).abs() < 1e-6);
        assert!((f[2] / f[3] - 1.0).abs() < 1e-6);
        // +y in view space goes up on screen, i.e. negative clip y.
        let up = transform(&p, [0.0, 1.0, -1.0, 1.0]);
        assert!(up[1] < 0.0);
    }

    #[test]
    fn symmetric_frustum_matches_perspective() {
        let t = (0.5f32).tan();
        let f = frustum_vk(-t * 1.5, t * 1.5, t, -t, 0.1, 10.0);
        let p = perspective_vk(1.0, 1.5, 0.1, 10.0);
        for c in 0..4 {
            for r in 0..4 {
                assert!((f[c][r] - p[c][r]).abs() < 1e-5, "{c} {r}: {f:?} {p:?}");
            }
        }
    }

    #[test]
    fn pose_view_inverts_the_pose() {
        // 90 degrees about y: the eye looks down world -x.
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let v = view_from_pose([1.0, 2.0, 3.0], [0.0, h, 0.0, h]);
        let ahead = transform(&v, [0.0, 2.0, 3.0, 1.0]);
        assert!(ahead[0].abs() < 1e-5 && ahead[1].abs() < 1e-5, "{ahead:?}");
        assert!((ahead[2] + 1.0).abs() < 1e-5, "{ahead:?}");
        let m = model_along([0.0; 3], [0.0, 0.0, 2.0], [1.0, 3.0, 1.0]);
        let tip = transform(&m, [0.0, 1.0, 0.0, 1.0]);
        assert!(
            (tip[2] - 3.0).abs() < 1e-5 && tip[0].abs() < 1e-5,
            "{tip:?}"
        );
    }

    #[test]
    fn look_at_puts_target_on_axis() {
        let v = look_at([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]);
        let t = transform(&v, [0.0, 0.0, 0.0, 1.0]);
        assert!(t[0].abs() < 1e-5 && t[1].abs() < 1e-5);
        assert!((t[2] + 14f32.sqrt()).abs() < 1e-5);
        let m = mul(&perspective_vk(1.0, 1.0, 0.1, 10.0), &v);
        let c = transform(&m, [0.0, 0.0, 0.0, 1.0]);
        assert!(c[0].abs() < 1e-5 && c[1].abs() < 1e-5 && c[3] > 0.0);
    }
}
