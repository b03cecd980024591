//! Tetrahedral meshes: a lattice block generator and boundary extraction.
//!
//! Contract: every tet is stored with positive signed volume (vertices 1, 2, 3 counter-clockwise
//! seen from vertex 0's opposite side, i.e. `(x1-x0) . ((x2-x0) x (x3-x0)) > 0`); boundary
//! triangles are counter-clockwise seen from outside the mesh.

use std::collections::HashMap;

use nalgebra::Vector3;

/// A tetrahedral mesh at rest.
#[derive(Debug, Clone)]
pub struct TetMesh {
    /// Rest positions in the world frame, metres.
    pub rest_positions_m: Vec<Vector3<f64>>,
    /// Tets as four particle indices, positively oriented.
    pub tets: Vec<[u32; 4]>,
    /// Boundary triangles, counter-clockwise from outside.
    pub surface_triangles: Vec<[u32; 3]>,
}

/// Signed volume of a tet, m^3 (positive when positively oriented).
pub fn signed_volume(p: [&Vector3<f64>; 4]) -> f64 {
    (p[1] - p[0]).dot(&(p[2] - p[0]).cross(&(p[3] - p[0]))) / 6.0
}

/// The five tets of a cube cell, from its corners `[c000, c100, c010, c110, c001, c101, c011,
/// c111]` (`cXYZ`: the corner at +X, +Y, +Z). The split alternates with the cell's parity
/// (`even`: `(i + j + k) % 2 == 0`) so that neighbouring cells share their face diagonals.
/// Orientation is not fixed here: callers swap two vertices of a tet whose volume is negative.
pub fn five_tets(c: [u32; 8], even: bool) -> [[u32; 4]; 5] {
    let [c000, c100, c010, c110, c001, c101, c011, c111] = c;
    if even {
        [
            [c000, c100, c010, c001],
            [c110, c100, c010, c111],
            [c101, c100, c001, c111],
            [c011, c010, c001, c111],
            [c100, c010, c001, c111],
        ]
    } else {
        [
            [c100, c000, c110, c101],
            [c010, c000, c110, c011],
            [c001, c000, c101, c011],
            [c111, c110, c101, c011],
            [c000, c110, c101, c011],
        ]
    }
}

impl TetMesh {
    /// A box from `min_m` to `max_m` split into `cells` cubes-ish cells along x, y, z, each cell
    /// into five tets (the split alternates with cell parity so shared faces match).
    ///
    /// # Panics
    /// If any cell count is zero or the box is empty.
    pub fn block(min_m: Vector3<f64>, max_m: Vector3<f64>, cells: [usize; 3]) -> Self {
        assert!(
            cells.iter().all(|&c| c > 0),
            "block needs at least one cell per axis"
        );
        assert!((0..3).all(|a| max_m[a] > min_m[a]), "block needs max > min");
        let line = |a: usize| -> Vec<f64> {
            (0..=cells[a])
                .map(|i| min_m[a] + (max_m[a] - min_m[a]) * (i as f64 / cells[a] as f64))
                .collect()
        };
        Self::grid(&line(0), &line(1), &line(2))
    }

    /// A tensor-product grid of boxes with the given grid lines along x, y and z (strictly
    /// increasing, metres), each box split into five tets as in [`TetMesh::block`]. Graded
    /// lines give fine cells where the physics needs them (under a probe) and coarse ones
    /// elsewhere.
    ///
    /// # Panics
    /// If an axis has fewer than two lines or they do not increase.
    pub fn grid(xs: &[f64], ys: &[f64], zs: &[f64]) -> Self {
        for l in [xs, ys, zs] {
            assert!(l.len() >= 2, "a grid axis needs at least two lines");
            assert!(
                l.windows(2).all(|w| w[1] > w[0]),
                "grid lines must increase"
            );
        }
        let [nx, ny, nz] = [xs.len() - 1, ys.len() - 1, zs.len() - 1];
        let idx = |i: usize, j: usize, k: usize| (i + (nx + 1) * (j + (ny + 1) * k)) as u32;
        let mut rest = Vec::with_capacity((nx + 1) * (ny + 1) * (nz + 1));
        for &z in zs {
            for &y in ys {
                for &x in xs {
                    rest.push(Vector3::new(x, y, z));
                }
            }
        }
        let mut tets = Vec::with_capacity(nx * ny * nz * 5);
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    // c[abc] = corner at (i+a, j+b, k+c)
                    let c = |a: usize, b: usize, cc: usize| idx(i + a, j + b, k + cc);
                    let (c000, c100, c010, c110) = (c(0, 0, 0), c(1, 0, 0), c(0, 1, 0), c(1, 1, 0));
                    let (c001, c101, c011, c111) = (c(0, 0, 1), c(1, 0, 1), c(0, 1, 1), c(1, 1, 1));
                    let cell_tets = five_tets(
                        [c000, c100, c010, c110, c001, c101, c011, c111],
                        (i + j + k) % 2 == 0,
                    );
                    for mut t in cell_tets {
                        let v = signed_volume(t.map(|q| &rest[q as usize]));
                        if v < 0.0 {
                            t.swap(2, 3);
                        }
                        tets.push(t);
                    }
                }
            }
        }
        let surface_triangles = boundary_triangles(&tets);
        Self {
            rest_positions_m: rest,
            tets,
            surface_triangles,
        }
    }

    /// Total rest volume, m^3.
    pub fn volume_m3(&self) -> f64 {
        self.tets
            .iter()
            .map(|t| signed_volume(t.map(|q| &self.rest_positions_m[q as usize])))
            .sum()
    }
}

/// The faces that belong to exactly one tet, counter-clockwise seen from outside, in a
/// deterministic order (the order of the tets, then of their faces).
pub fn boundary_triangles(tets: &[[u32; 4]]) -> Vec<[u32; 3]> {
    // Faces of a positively oriented tet (a, b, c, d), each counter-clockwise from outside.
    let faces = |t: &[u32; 4]| {
        let [a, b, c, d] = *t;
        [[a, c, b], [a, b, d], [a, d, c], [b, c, d]]
    };
    let mut count: HashMap<[u32; 3], u32> = HashMap::new();
    for t in tets {
        for f in faces(t) {
            let mut key = f;
            key.sort_unstable();
            *count.entry(key).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    for t in tets {
        for f in faces(t) {
            let mut key = f;
            key.sort_unstable();
            if count[&key] == 1 {
                out.push(f);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_volume_and_orientation() {
        let m = TetMesh::block(Vector3::zeros(), Vector3::new(0.1, 0.03, 0.1), [4, 2, 4]);
        assert_eq!(m.tets.len(), 4 * 2 * 4 * 5);
        assert!((m.volume_m3() - 0.1 * 0.03 * 0.1).abs() < 1e-12);
        for t in &m.tets {
            assert!(signed_volume(t.map(|q| &m.rest_positions_m[q as usize])) > 0.0);
        }
    }

    #[test]
    fn boundary_is_closed_and_outward() {
        let m = TetMesh::block(Vector3::zeros(), Vector3::new(0.1, 0.03, 0.1), [3, 2, 3]);
        // Each box face of a x b cells gives 2ab triangles.
        assert_eq!(m.surface_triangles.len(), 2 * 2 * (3 * 2 + 3 * 3 + 2 * 3));
        // Divergence theorem: the outward surface encloses the volume.
        let mut v6 = 0.0;
        for t in &m.surface_triangles {
            let [a, b, c] = t.map(|q| m.rest_positions_m[q as usize]);
            v6 += a.dot(&b.cross(&c));
        }
        assert!((v6 / 6.0 - m.volume_m3()).abs() < 1e-12);
    }
}
