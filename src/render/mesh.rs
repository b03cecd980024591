//! CPU-side mesh building for the renderer: tissue vertices with smooth normals, the tool's
//! UV sphere and the operating-table quad.
//!
//! Contract: pure functions, no Vulkan. Vertices are `position, normal, material, overlay`
//! (32 bytes, matching the vertex input of `shaders/mesh.wgsl`); indices are `u32` triangle
//! lists.

use super::math::{cross, normalize, sub};
use super::RenderError;

/// One vertex as the pipeline reads it (binding 0, stride 32): `repr(C)`, so its bytes are
/// the GPU's layout.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub(crate) struct Vertex {
    pub pos: [f32; 3],
    pub normal: [f32; 3],
    /// Index into the frame's material table.
    pub material: u32,
    /// Overlay value, 0..1 (stress heat map).
    pub overlay: f32,
}

impl Vertex {
    pub(crate) fn new(pos: [f32; 3], normal: [f32; 3]) -> Self {
        Self {
            pos,
            normal,
            material: 0,
            overlay: 0.0,
        }
    }
}

pub(crate) const VERTEX_STRIDE: usize = 32;

const _: () = assert!(std::mem::size_of::<Vertex>() == VERTEX_STRIDE);

/// Serialises vertices into `dst` (native endianness, as the GPU reads them): one copy.
pub(crate) fn write_vertices(dst: &mut [u8], verts: &[Vertex]) {
    let n = verts.len().min(dst.len() / VERTEX_STRIDE);
    // SAFETY: `Vertex` is `repr(C)` with eight 4-byte fields and no padding (size checked
    // above), so its bytes are initialised; the view covers exactly `n` vertices.
    let bytes =
        unsafe { std::slice::from_raw_parts(verts.as_ptr() as *const u8, n * VERTEX_STRIDE) };
    dst[..bytes.len()].copy_from_slice(bytes);
}

/// Serialises `u32` indices into `dst`.
pub(crate) fn write_indices(dst: &mut [u8], indices: impl Iterator<Item = u32>) {
    for (chunk, i) in dst.chunks_exact_mut(4).zip(indices) {
        chunk.copy_from_slice(&i.to_ne_bytes());
    }
}

/// Builds the tissue vertices: the given positions with smooth per-vertex normals (the
/// area-weighted sum of the adjacent faces' normals; a vertex touched by no usable face gets
/// +y). Checks every index; `out` is reused to avoid reallocating each frame. `materials` and
/// `overlay` are per vertex; when shorter (e.g. empty), the rest gets `default_material` and 0.
pub(crate) fn tissue_vertices(
    positions: &[[f32; 3]],
    triangles: &[[u32; 3]],
    materials: &[u8],
    overlay: &[f32],
    default_material: u32,
    out: &mut Vec<Vertex>,
) -> Result<(), RenderError> {
    out.clear();
    out.extend(positions.iter().enumerate().map(|(i, &pos)| {
        Vertex {
            pos,
            normal: [0.0; 3],
            material: materials.get(i).map_or(default_material, |&m| u32::from(m)),
            overlay: overlay
                .get(i)
                .copied()
                .filter(|v| v.is_finite())
                .unwrap_or(0.0),
        }
    }));
    for (t, tri) in triangles.iter().enumerate() {
        if let Some(&bad) = tri.iter().find(|&&i| i as usize >= positions.len()) {
            return Err(RenderError::InvalidScene {
                reason: format!(
                    "tissue triangle {t} uses vertex {bad} but there are {} positions",
                    positions.len()
                ),
            });
        }
        let [a, b, c] = tri.map(|i| positions[i as usize]);
        // Counter-clockwise seen from outside: (b - a) x (c - a) points outwards; its length
        // is twice the area, which gives the area weighting for free.
        let n = cross(sub(b, a), sub(c, a));
        if !n.iter().all(|v| v.is_finite()) {
            continue;
        }
        for &i in tri {
            let v = &mut out[i as usize].normal;
            v[0] += n[0];
            v[1] += n[1];
            v[2] += n[2];
        }
    }
    for v in out.iter_mut() {
        v.normal = normalize(v.normal).unwrap_or([0.0, 1.0, 0.0]);
    }
    Ok(())
}

/// A unit UV sphere (radius 1, centred at the origin) with outward normals.
pub(crate) fn uv_sphere(stacks: u32, slices: u32) -> (Vec<Vertex>, Vec<u32>) {
    let mut verts = Vec::with_capacity(((stacks + 1) * (slices + 1)) as usize);
    for i in 0..=stacks {
        let theta = std::f32::consts::PI * i as f32 / stacks as f32;
        for j in 0..=slices {
            let phi = std::f32::consts::TAU * j as f32 / slices as f32;
            let p = [
                theta.sin() * phi.cos(),
                theta.cos(),
                theta.sin() * phi.sin(),
            ];
            verts.push(Vertex::new(p, p));
        }
    }
    let mut idx = Vec::with_capacity((stacks * slices * 6) as usize);
    let row = slices + 1;
    for i in 0..stacks {
        for j in 0..slices {
            let a = i * row + j;
            let b = a + row;
            // Counter-clockwise seen from outside.
            idx.extend_from_slice(&[a, a + 1, b, a + 1, b + 1, b]);
        }
    }
    (verts, idx)
}

/// A horizontal square of side `size_m` at height `y_m`, centred on the y axis, normal +y,
/// counter-clockwise seen from above.
pub(crate) fn table_quad(size_m: f32, y_m: f32) -> (Vec<Vertex>, Vec<u32>) {
    let h = 0.5 * size_m;
    let n = [0.0, 1.0, 0.0];
    let verts = [[-h, y_m, -h], [-h, y_m, h], [h, y_m, h], [h, y_m, -h]]
        .map(|pos| Vertex::new(pos, n))
        .to_vec();
    (verts, vec![0, 1, 2, 0, 2, 3])
}

/// An open cylinder of radius 1 from y = 0 to y = 1 (the instrument's shaft, scaled and
/// placed by the model matrix), outward normals, with a flat cap at y = 1.
pub(crate) fn cylinder(slices: u32) -> (Vec<Vertex>, Vec<u32>) {
    let mut verts = Vec::with_capacity((slices as usize + 1) * 2 + slices as usize + 1);
    for j in 0..=slices {
        let phi = std::f32::consts::TAU * j as f32 / slices as f32;
        let (s, c) = phi.sin_cos();
        verts.push(Vertex::new([c, 0.0, s], [c, 0.0, s]));
        verts.push(Vertex::new([c, 1.0, s], [c, 0.0, s]));
    }
    let mut idx = Vec::with_capacity(slices as usize * 9);
    for j in 0..slices {
        let a = 2 * j;
        // Counter-clockwise seen from outside.
        idx.extend_from_slice(&[a, a + 1, a + 2, a + 2, a + 1, a + 3]);
    }
    let centre = verts.len() as u32;
    verts.push(Vertex::new([0.0, 1.0, 0.0], [0.0, 1.0, 0.0]));
    let ring = centre + 1;
    for j in 0..=slices {
        let phi = std::f32::consts::TAU * j as f32 / slices as f32;
        let (s, c) = phi.sin_cos();
        verts.push(Vertex::new([c, 1.0, s], [0.0, 1.0, 0.0]));
    }
    for j in 0..slices {
        idx.extend_from_slice(&[centre, ring + j + 1, ring + j]);
    }
    (verts, idx)
}

/// A unit square in the x-y plane (0..1 on both), normal +z: panels and gauges, scaled and
/// placed by the model matrix.
pub(crate) fn unit_quad() -> (Vec<Vertex>, Vec<u32>) {
    let n = [0.0, 0.0, 1.0];
    let verts = [
        [0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0],
        [1.0, 1.0, 0.0],
        [0.0, 1.0, 0.0],
    ]
    .map(|pos| Vertex::new(pos, n))
    .to_vec();
    (verts, vec![0, 1, 2, 0, 2, 3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_square_normals_point_up() {
        let pos = [
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0],
            [1.0, 0.0, 1.0],
            [1.0, 0.0, 0.0],
        ];
        let tris = [[0, 1, 2], [0, 2, 3]];
        let mut out = Vec::new();
        tissue_vertices(&pos, &tris, &[2], &[0.5, f32::NAN], 1, &mut out).unwrap();
        for v in &out {
            assert!((v.normal[1] - 1.0).abs() < 1e-6, "{v:?}");
        }
        assert_eq!(
            out.iter().map(|v| v.material).collect::<Vec<_>>(),
            [2, 1, 1, 1]
        );
        assert_eq!(
            out.iter().map(|v| v.overlay).collect::<Vec<_>>(),
            [0.5, 0.0, 0.0, 0.0]
        );
        assert!(tissue_vertices(&pos, &[[0, 1, 9]], &[], &[], 0, &mut out).is_err());
    }

    #[test]
    fn sphere_winding_is_outward() {
        let (v, i) = uv_sphere(8, 12);
        for t in i.chunks(3) {
            let [a, b, c] = [
                v[t[0] as usize].pos,
                v[t[1] as usize].pos,
                v[t[2] as usize].pos,
            ];
            let n = cross(sub(b, a), sub(c, a));
            let centre = [
                (a[0] + b[0] + c[0]) / 3.0,
                (a[1] + b[1] + c[1]) / 3.0,
                (a[2] + b[2] + c[2]) / 3.0,
            ];
            // Degenerate pole triangles have n == 0.
            assert!(super::super::math::dot(n, centre) >= -1e-6);
        }
    }

    #[test]
    fn vertex_bytes_layout() {
        let mut buf = [0u8; 32];
        write_vertices(
            &mut buf,
            &[Vertex {
                pos: [1.0, 2.0, 3.0],
                normal: [4.0, 5.0, 6.0],
                material: 3,
                overlay: 0.25,
            }],
        );
        assert_eq!(f32::from_ne_bytes(buf[20..24].try_into().unwrap()), 6.0);
        assert_eq!(u32::from_ne_bytes(buf[24..28].try_into().unwrap()), 3);
        assert_eq!(f32::from_ne_bytes(buf[28..32].try_into().unwrap()), 0.25);
    }
}
