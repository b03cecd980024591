//! Embedded visual surfaces: a finer triangle mesh carried by the tets.
//!
//! Each vertex of the visual surface is bound, at set-up, to the tet that contains it (or, for a
//! vertex just outside the mesh, the nearest tet) by barycentric coordinates. After each step,
//! [`EmbeddedSurface::update`] moves every vertex with its tet. Barycentric interpolation is
//! exact for affine motion of a tet, so the render mesh can be much finer than the simulation
//! mesh and still follow it.
//!
//! Contract: [`EmbeddedSurface::bind`] allocates (set-up); `update` neither allocates nor locks.

use nalgebra::{Matrix3, Vector3};

use super::mesh::TetMesh;

/// A visual surface bound to a tet mesh.
#[derive(Debug, Clone)]
pub struct EmbeddedSurface {
    /// Triangles of the visual surface, indices into its vertices.
    pub triangles: Vec<[u32; 3]>,
    tet_of_vertex: Vec<u32>,
    barycentric: Vec<[f64; 4]>,
}

/// Why a surface could not be bound.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// A vertex lies farther from every tet than the tolerance allows.
    #[error("visual vertex {vertex} lies {distance_m} m outside the tet mesh (tolerance {tolerance_m} m)")]
    OutsideMesh {
        /// Index of the vertex.
        vertex: usize,
        /// Its distance from the nearest tet, metres.
        distance_m: f64,
        /// The tolerance, metres.
        tolerance_m: f64,
    },
    /// A triangle names a vertex that does not exist.
    #[error("visual triangle {triangle} refers to vertex {vertex}, but there are {vertices}")]
    BadIndex {
        /// Index of the triangle.
        triangle: usize,
        /// The bad vertex index.
        vertex: u32,
        /// Number of vertices.
        vertices: usize,
    },
}

/// Barycentric coordinates of `p` in the tet `x` (they sum to 1; all >= 0 inside), or `None`
/// for a flat tet.
pub fn barycentric(x: [Vector3<f64>; 4], p: Vector3<f64>) -> Option<[f64; 4]> {
    let m = Matrix3::from_columns(&[x[1] - x[0], x[2] - x[0], x[3] - x[0]]);
    let b = m.try_inverse()? * (p - x[0]);
    Some([1.0 - b.x - b.y - b.z, b.x, b.y, b.z])
}

/// How far outside a tet a point with these barycentric coordinates lies, roughly in units of
/// the tet's size (0 inside).
fn outside(b: &[f64; 4]) -> f64 {
    b.iter().map(|v| (-v).max(0.0)).sum()
}

impl EmbeddedSurface {
    /// Binds `vertices_m` (rest positions, world frame) and `triangles` to `mesh` at rest.
    /// Vertices outside the mesh by at most `tolerance_m` (measured to the tet's barycentric-
    /// clamped point, a close upper bound of the true distance) are bound to the nearest tet and
    /// extrapolated; farther ones are an error.
    pub fn bind(
        mesh: &TetMesh,
        vertices_m: &[Vector3<f64>],
        triangles: &[[u32; 3]],
        tolerance_m: f64,
    ) -> Result<Self, EmbedError> {
        for (i, t) in triangles.iter().enumerate() {
            if let Some(&v) = t.iter().find(|&&v| v as usize >= vertices_m.len()) {
                return Err(EmbedError::BadIndex {
                    triangle: i,
                    vertex: v,
                    vertices: vertices_m.len(),
                });
            }
        }
        // A uniform grid over the tets' bounding boxes, for the lookup.
        let (lo, hi) = mesh.rest_positions_m.iter().fold(
            (
                Vector3::repeat(f64::INFINITY),
                Vector3::repeat(f64::NEG_INFINITY),
            ),
            |(lo, hi), p| (lo.inf(p), hi.sup(p)),
        );
        let cells_per_axis = ((mesh.tets.len() as f64).cbrt().ceil() as usize).clamp(1, 64);
        let size = (hi - lo).map(|v| v.max(1e-12)) / cells_per_axis as f64;
        let cell_of = |p: &Vector3<f64>| {
            let c = (p - lo).component_div(&size);
            [0, 1, 2].map(|k| (c[k].floor().max(0.0) as usize).min(cells_per_axis - 1))
        };
        let index = |c: [usize; 3]| c[0] + cells_per_axis * (c[1] + cells_per_axis * c[2]);
        let mut grid: Vec<Vec<u32>> = vec![Vec::new(); cells_per_axis.pow(3)];
        for (t, tet) in mesh.tets.iter().enumerate() {
            let pts = tet.map(|q| mesh.rest_positions_m[q as usize]);
            let (a, b) = pts.iter().fold(
                (
                    Vector3::repeat(f64::INFINITY),
                    Vector3::repeat(f64::NEG_INFINITY),
                ),
                |(a, b), p| (a.inf(p), b.sup(p)),
            );
            let (ca, cb) = (cell_of(&a), cell_of(&b));
            for k in ca[2]..=cb[2] {
                for j in ca[1]..=cb[1] {
                    for i in ca[0]..=cb[0] {
                        grid[index([i, j, k])].push(t as u32);
                    }
                }
            }
        }
        let mut tet_of_vertex = Vec::with_capacity(vertices_m.len());
        let mut barycentric_coords = Vec::with_capacity(vertices_m.len());
        for (v, p) in vertices_m.iter().enumerate() {
            let tet_points =
                |t: u32| mesh.tets[t as usize].map(|q| mesh.rest_positions_m[q as usize]);
            let consider = |best: &mut Option<(f64, u32, [f64; 4])>, t: u32| {
                if let Some(b) = barycentric(tet_points(t), *p) {
                    let out = outside(&b);
                    if best.is_none_or(|(o, _, _)| out < o) {
                        *best = Some((out, t, b));
                    }
                }
            };
            let mut best: Option<(f64, u32, [f64; 4])> = None;
            for &t in &grid[index(cell_of(p))] {
                consider(&mut best, t);
            }
            if best.is_none_or(|(o, _, _)| o > 0.0) {
                // Not inside any tet of its cell: search them all (set-up only, rare).
                for t in 0..mesh.tets.len() as u32 {
                    consider(&mut best, t);
                }
            }
            let (_, t, b) = best.expect("a mesh with at least one tet");
            // Distance from the tet: compare with the clamped point.
            let pts = tet_points(t);
            let clamped = {
                let c = b.map(|v| v.max(0.0));
                let s: f64 = c.iter().sum();
                (0..4).fold(Vector3::zeros(), |acc, k| acc + pts[k] * (c[k] / s))
            };
            let distance_m = (p - clamped).norm();
            if distance_m > tolerance_m {
                return Err(EmbedError::OutsideMesh {
                    vertex: v,
                    distance_m,
                    tolerance_m,
                });
            }
            tet_of_vertex.push(t);
            barycentric_coords.push(b);
        }
        Ok(Self {
            triangles: triangles.to_vec(),
            tet_of_vertex,
            barycentric: barycentric_coords,
        })
    }

    /// Number of visual vertices.
    pub fn vertex_count(&self) -> usize {
        self.tet_of_vertex.len()
    }

    /// Writes the current visual vertex positions into `out` (one per vertex) from the tets'
    /// particle `positions_m`. Never allocates.
    ///
    /// # Panics
    /// If `out` is shorter than [`EmbeddedSurface::vertex_count`].
    pub fn update(&self, tets: &[[u32; 4]], positions_m: &[Vector3<f64>], out: &mut [[f32; 3]]) {
        for ((o, &t), b) in out
            .iter_mut()
            .zip(&self.tet_of_vertex)
            .zip(&self.barycentric)
        {
            let tet = tets[t as usize];
            let mut p = Vector3::zeros();
            for k in 0..4 {
                p += positions_m[tet[k] as usize] * b[k];
            }
            *o = [p.x as f32, p.y as f32, p.z as f32];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block's top face as a fine grid of `n` x `n` quads (two triangles each).
    fn fine_top(n: usize, half: f64) -> (Vec<Vector3<f64>>, Vec<[u32; 3]>) {
        let mut v = Vec::new();
        for j in 0..=n {
            for i in 0..=n {
                let f = |k: usize| -half + 2.0 * half * k as f64 / n as f64;
                v.push(Vector3::new(f(i), 0.0, f(j)));
            }
        }
        let mut t = Vec::new();
        let id = |i: usize, j: usize| (i + (n + 1) * j) as u32;
        for j in 0..n {
            for i in 0..n {
                t.push([id(i, j), id(i, j + 1), id(i + 1, j)]);
                t.push([id(i + 1, j), id(i, j + 1), id(i + 1, j + 1)]);
            }
        }
        (v, t)
    }

    fn block() -> TetMesh {
        TetMesh::block(
            Vector3::new(-0.05, -0.03, -0.05),
            Vector3::new(0.05, 0.0, 0.05),
            [4, 2, 4],
        )
    }

    #[test]
    fn rest_positions_come_back_and_affine_motion_is_exact() {
        let mesh = block();
        let (verts, tris) = fine_top(20, 0.05);
        let s = EmbeddedSurface::bind(&mesh, &verts, &tris, 1e-9).unwrap();
        assert_eq!(s.vertex_count(), 21 * 21);
        let mut out = vec![[0.0f32; 3]; s.vertex_count()];
        s.update(&mesh.tets, &mesh.rest_positions_m, &mut out);
        for (o, v) in out.iter().zip(&verts) {
            for k in 0..3 {
                assert!((o[k] as f64 - v[k]).abs() < 1e-6);
            }
        }
        // An affine deformation of all particles moves the visual vertices by the same map.
        let a = Matrix3::new(1.1, 0.05, 0.0, -0.02, 0.9, 0.03, 0.0, 0.1, 1.05);
        let shift = Vector3::new(0.01, -0.02, 0.005);
        let moved: Vec<_> = mesh
            .rest_positions_m
            .iter()
            .map(|p| a * p + shift)
            .collect();
        s.update(&mesh.tets, &moved, &mut out);
        for (o, v) in out.iter().zip(&verts) {
            let want = a * v + shift;
            for k in 0..3 {
                assert!((o[k] as f64 - want[k]).abs() < 1e-6, "{o:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn far_vertices_and_bad_triangles_are_refused() {
        let mesh = block();
        let far = vec![Vector3::new(0.0, 0.05, 0.0)];
        let err = EmbeddedSurface::bind(&mesh, &far, &[], 1e-3).unwrap_err();
        assert!(
            matches!(err, EmbedError::OutsideMesh { vertex: 0, .. }),
            "{err}"
        );
        let near = vec![Vector3::new(0.0, 0.0005, 0.0)];
        assert!(EmbeddedSurface::bind(&mesh, &near, &[], 1e-3).is_ok());
        let err = EmbeddedSurface::bind(&mesh, &near, &[[0, 0, 3]], 1e-3).unwrap_err();
        assert!(matches!(err, EmbedError::BadIndex { vertex: 3, .. }));
    }
}
