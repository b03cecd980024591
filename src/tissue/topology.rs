//! Tet adjacency and the live boundary surface, plus the small geometric tests that cutting and
//! surface contact need.
//!
//! The boundary of the live tets is the set of tet faces whose neighbour across the face is
//! missing or removed. Neighbours are found once at set-up; after that the surface is rebuilt in
//! place, into a buffer reserved for every face of every tet, so cutting never allocates.

use std::collections::HashMap;

use nalgebra::Vector3;

/// No neighbour across a face (the face is on the mesh's outer boundary).
pub const NONE: u32 = u32::MAX;

/// Faces of a positively oriented tet `(a, b, c, d)`, counter-clockwise seen from outside.
#[inline]
pub fn tet_faces(t: &[u32; 4]) -> [[u32; 3]; 4] {
    let [a, b, c, d] = *t;
    [[a, c, b], [a, b, d], [a, d, c], [b, c, d]]
}

/// For each tet and each of its four faces (in [`tet_faces`] order), the tet across that face
/// or [`NONE`]. Set-up only: allocates.
pub fn face_neighbours(tets: &[[u32; 4]]) -> Vec<[u32; 4]> {
    let mut first: HashMap<[u32; 3], (u32, u8)> = HashMap::with_capacity(tets.len() * 2);
    let mut out = vec![[NONE; 4]; tets.len()];
    for (t, tet) in tets.iter().enumerate() {
        for (f, face) in tet_faces(tet).iter().enumerate() {
            let mut key = *face;
            key.sort_unstable();
            if let Some((other, of)) = first.remove(&key) {
                out[t][f] = other;
                out[other as usize][of as usize] = t as u32;
            } else {
                first.insert(key, (t as u32, f as u8));
            }
        }
    }
    out
}

/// Rewrites `out` with the faces of live tets that have no live neighbour, in tet order
/// (deterministic), and `owners` with the tet of each face. Never allocates when both have
/// capacity for `4 * tets.len()` faces.
pub fn rebuild_surface(
    tets: &[[u32; 4]],
    neighbours: &[[u32; 4]],
    alive: &[bool],
    out: &mut Vec<[u32; 3]>,
    owners: &mut Vec<u32>,
) {
    out.clear();
    owners.clear();
    for (t, tet) in tets.iter().enumerate() {
        if !alive[t] {
            continue;
        }
        for (f, face) in tet_faces(tet).iter().enumerate() {
            let n = neighbours[t][f];
            if n == NONE || !alive[n as usize] {
                out.push(*face);
                owners.push(t as u32);
            }
        }
    }
}

/// Closest point of triangle `(a, b, c)` to `p`, with its barycentric coordinates
/// (Ericson, Real-Time Collision Detection, 5.1.5).
pub fn closest_on_triangle(
    p: Vector3<f64>,
    a: Vector3<f64>,
    b: Vector3<f64>,
    c: Vector3<f64>,
) -> (Vector3<f64>, [f64; 3]) {
    let ab = b - a;
    let ac = c - a;
    let ap = p - a;
    let d1 = ab.dot(&ap);
    let d2 = ac.dot(&ap);
    if d1 <= 0.0 && d2 <= 0.0 {
        return (a, [1.0, 0.0, 0.0]);
    }
    let bp = p - b;
    let d3 = ab.dot(&bp);
    let d4 = ac.dot(&bp);
    if d3 >= 0.0 && d4 <= d3 {
        return (b, [0.0, 1.0, 0.0]);
    }
    let vc = d1 * d4 - d3 * d2;
    if vc <= 0.0 && d1 >= 0.0 && d3 <= 0.0 {
        let v = d1 / (d1 - d3);
        return (a + ab * v, [1.0 - v, v, 0.0]);
    }
    let cp = p - c;
    let d5 = ab.dot(&cp);
    let d6 = ac.dot(&cp);
    if d6 >= 0.0 && d5 <= d6 {
        return (c, [0.0, 0.0, 1.0]);
    }
    let vb = d5 * d2 - d1 * d6;
    if vb <= 0.0 && d2 >= 0.0 && d6 <= 0.0 {
        let w = d2 / (d2 - d6);
        return (a + ac * w, [1.0 - w, 0.0, w]);
    }
    let va = d3 * d6 - d5 * d4;
    if va <= 0.0 && (d4 - d3) >= 0.0 && (d5 - d6) >= 0.0 {
        let w = (d4 - d3) / ((d4 - d3) + (d5 - d6));
        return (b + (c - b) * w, [0.0, 1.0 - w, w]);
    }
    let denom = 1.0 / (va + vb + vc);
    let v = vb * denom;
    let w = vc * denom;
    (a + ab * v + ac * w, [1.0 - v - w, v, w])
}

/// Whether the segment `p`-`q` crosses the triangle `(a, b, c)` (Möller-Trumbore, both sides).
pub fn segment_hits_triangle(
    p: Vector3<f64>,
    q: Vector3<f64>,
    a: Vector3<f64>,
    b: Vector3<f64>,
    c: Vector3<f64>,
) -> bool {
    let dir = q - p;
    let e1 = b - a;
    let e2 = c - a;
    let h = dir.cross(&e2);
    let det = e1.dot(&h);
    let scale = e1.norm() * e2.norm() * dir.norm();
    if det.abs() <= 1e-12 * scale || scale == 0.0 {
        return false;
    }
    let inv = 1.0 / det;
    let s = p - a;
    let u = s.dot(&h) * inv;
    if !(0.0..=1.0).contains(&u) {
        return false;
    }
    let qv = s.cross(&e1);
    let v = dir.dot(&qv) * inv;
    if v < 0.0 || u + v > 1.0 {
        return false;
    }
    let t = e2.dot(&qv) * inv;
    (0.0..=1.0).contains(&t)
}

/// Whether `p` lies inside the tet `x` (positively oriented), boundary included.
pub fn point_in_tet(p: Vector3<f64>, x: [Vector3<f64>; 4]) -> bool {
    tet_faces(&[0, 1, 2, 3]).iter().all(|f| {
        let [a, b, c] = f.map(|k| x[k as usize]);
        // Outward normal of the face; inside means not in front of any face.
        (b - a).cross(&(c - a)).dot(&(p - a)) <= 0.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tissue::TetMesh;

    #[test]
    fn neighbours_are_symmetric_and_surface_matches_the_mesh_boundary() {
        let m = TetMesh::block(Vector3::zeros(), Vector3::new(0.03, 0.02, 0.03), [3, 2, 3]);
        let n = face_neighbours(&m.tets);
        for (t, faces) in n.iter().enumerate() {
            for &o in faces {
                if o != NONE {
                    assert!(n[o as usize].contains(&(t as u32)));
                }
            }
        }
        let alive = vec![true; m.tets.len()];
        let mut surface = Vec::with_capacity(4 * m.tets.len());
        rebuild_surface(&m.tets, &n, &alive, &mut surface, &mut Vec::new());
        assert_eq!(surface, m.surface_triangles);
    }

    #[test]
    fn removing_a_tet_opens_its_faces_and_keeps_the_surface_closed() {
        let m = TetMesh::block(Vector3::zeros(), Vector3::new(0.03, 0.03, 0.03), [3, 3, 3]);
        let n = face_neighbours(&m.tets);
        let mut alive = vec![true; m.tets.len()];
        // The centre tet of the centre cell: all four of its neighbours are live.
        let centre = 13 * 5 + 4;
        assert!(n[centre].iter().all(|&o| o != NONE));
        alive[centre] = false;
        let mut surface = Vec::with_capacity(4 * m.tets.len());
        rebuild_surface(&m.tets, &n, &alive, &mut surface, &mut Vec::new());
        assert_eq!(surface.len(), m.surface_triangles.len() + 4);
        // Still closed: the signed volume it encloses is the volume of the live tets.
        let v6: f64 = surface
            .iter()
            .map(|t| {
                let [a, b, c] = t.map(|q| m.rest_positions_m[q as usize]);
                a.dot(&b.cross(&c))
            })
            .sum();
        let live: f64 = m
            .tets
            .iter()
            .zip(&alive)
            .filter(|(_, &a)| a)
            .map(|(t, _)| {
                crate::tissue::mesh::signed_volume(t.map(|q| &m.rest_positions_m[q as usize]))
            })
            .sum();
        assert!((v6 / 6.0 - live).abs() < 1e-12);
    }

    #[test]
    fn geometric_tests() {
        let (a, b, c) = (
            Vector3::new(0.0, 0.0, 0.0),
            Vector3::new(1.0, 0.0, 0.0),
            Vector3::new(0.0, 1.0, 0.0),
        );
        let (p, bary) = closest_on_triangle(Vector3::new(0.25, 0.25, 2.0), a, b, c);
        assert_eq!(p, Vector3::new(0.25, 0.25, 0.0));
        assert!((bary.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let (p, _) = closest_on_triangle(Vector3::new(2.0, -1.0, 0.0), a, b, c);
        assert_eq!(p, b);
        let up = Vector3::new(0.2, 0.2, 1.0);
        let down = Vector3::new(0.2, 0.2, -1.0);
        assert!(segment_hits_triangle(up, down, a, b, c));
        assert!(!segment_hits_triangle(
            up,
            Vector3::new(0.2, 0.2, 0.5),
            a,
            b,
            c
        ));
        assert!(!segment_hits_triangle(
            Vector3::new(2.0, 2.0, 1.0),
            Vector3::new(2.0, 2.0, -1.0),
            a,
            b,
            c
        ));
        let tet = [a, b, c, Vector3::new(0.0, 0.0, 1.0)];
        assert!(point_in_tet(Vector3::new(0.1, 0.1, 0.1), tet));
        assert!(!point_in_tet(Vector3::new(0.5, 0.5, 0.5), tet));
    }
}
