//! Small column-major 4x4 matrix helpers for the renderer.
//!
//! Contract: matrices are `[[f32; 4]; 4]` indexed `m[column][row]`, the memory layout WGSL's
//! `mat4x4<f32>` expects; projections target **Vulkan clip space** (x right, y down,
//! z in [0, 1]) from a right-handed world (camera looks down -z in view space).

pub(crate) type Mat4 = [[f32; 4]; 4];
pub(crate) type Vec3 = [f32; 3];

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
