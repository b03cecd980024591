//! The simulation mesh of a twin: a lattice of cubes over the labelled tissue, each split into
//! five tets, sized for the haptic rate, with a label (material) per tet and a quality report.
//!
//! No conforming tetrahedral mesher exists in pure Rust (the TetGen binding is AGPL): like most
//! surgical simulators, haptwin meshes a regular lattice and embeds the fine surface in it
//! (`shared/reference/imaging.md`). [`lattice_tets`]:
//! 1. picks the cell size from the tissue's volume so the mesh lands near the tet budget
//!    (default [`DEFAULT_TET_BUDGET`]), refining the guess until it is within 10 %;
//! 2. keeps every cell at least half full of labelled voxels (counted exactly, voxel by
//!    voxel), and only face-connected pieces holding at least 5 % of the cells (specks and
//!    islands joined by an edge would float free);
//! 3. splits each kept cell into five tets, alternating the split with the cell's parity so
//!    neighbouring cells share faces, every tet positively oriented;
//! 4. labels each tet with the label at its centroid, or the cell's most frequent tissue label
//!    when the centroid falls on background.
//!
//! The five-tet split has dihedral angles of 45 to 90 degrees (corner tets) and 70.5 degrees
//! (the central regular tet) on cubic cells; [`QualityReport`] measures them on the mesh built.
//!
//! Contract: deterministic (same labels and options, same bits); positions in the patient frame
//! (metres).

use std::collections::HashMap;

use nalgebra::Vector3;

use super::labels::Label;
use super::volume::LabelVolume;
use crate::tissue::mesh::{five_tets, signed_volume};

/// Tets aimed for when no budget is given: about what one core steps in a millisecond.
pub const DEFAULT_TET_BUDGET: usize = 20_000;

/// Settings of the lattice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TetOptions {
    /// Tets to aim for.
    pub target_tets: usize,
    /// Fraction of a cell that must be tissue for the cell to be kept.
    pub min_fill: f64,
}

impl Default for TetOptions {
    fn default() -> Self {
        Self {
            target_tets: DEFAULT_TET_BUDGET,
            min_fill: 0.5,
        }
    }
}

/// A twin's simulation mesh (patient frame).
#[derive(Debug, Clone, PartialEq)]
pub struct TwinMesh {
    /// Particle rest positions, metres.
    pub rest_positions_m: Vec<Vector3<f64>>,
    /// Tets, positively oriented.
    pub tets: Vec<[u32; 4]>,
    /// Label of each tet.
    pub tet_labels: Vec<u8>,
    /// Edge of the lattice's cells, metres.
    pub cell_m: f64,
}

/// How good the mesh is.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QualityReport {
    /// Tets.
    pub tets: usize,
    /// Particles.
    pub particles: usize,
    /// Cell edge, metres.
    pub cell_m: f64,
    /// Tets with non-positive volume.
    pub inverted: usize,
    /// Smallest dihedral angle, degrees.
    pub min_dihedral_deg: f64,
    /// Largest dihedral angle, degrees.
    pub max_dihedral_deg: f64,
    /// Mesh volume per label (label value, m^3).
    pub volume_m3_by_label: Vec<(u8, f64)>,
    /// Tissue volume in the label map, m^3 (what the mesh approximates).
    pub labelled_volume_m3: f64,
}

/// Why no mesh could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// The label map holds no tissue.
    #[error("the label map holds no tissue (every voxel is background)")]
    Empty,
    /// The budget is too small to mesh anything.
    #[error("a budget of {0} tets is too small (at least 50)")]
    Budget(usize),
    /// The tissue is too small for even one cell at this budget.
    #[error("no cell is at least {min_fill} full at a {cell_mm:.2} mm cell: the tissue is thinner than the lattice")]
    NoCells { cell_mm: f64, min_fill: f64 },
}

/// Kept cells of the lattice, and how they sit on the voxels.
struct Lattice {
    /// Cell edge in voxels along each axis.
    cell_vox: [f64; 3],
    /// Voxel coordinate of the lattice's corner node.
    corner_vox: [f64; 3],
    /// Cells along each axis.
    cells: [usize; 3],
    /// Kept cells (linear index), in order.
    kept: Vec<usize>,
    /// Most frequent tissue label of each kept cell.
    cell_label: Vec<u8>,
}

fn tissue_box(labels: &LabelVolume) -> Option<([usize; 3], [usize; 3], usize)> {
    let [nx, ny, nz] = labels.grid.dims;
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    let mut count = 0usize;
    for k in 0..nz {
        for j in 0..ny {
            let row = labels.grid.index(0, j, k);
            for (i, &v) in labels.data[row..row + nx].iter().enumerate() {
                if v != 0 {
                    count += 1;
                    for (a, c) in [i, j, k].into_iter().enumerate() {
                        lo[a] = lo[a].min(c);
                        hi[a] = hi[a].max(c);
                    }
                }
            }
        }
    }
    (count > 0).then_some((lo, hi, count))
}

fn build_lattice(
    labels: &LabelVolume,
    lo: [usize; 3],
    hi: [usize; 3],
    cell_m: f64,
    min_fill: f64,
) -> Lattice {
    let g = &labels.grid;
    let cell_vox: [f64; 3] = std::array::from_fn(|a| cell_m / g.spacing_m[a]);
    let corner_vox: [f64; 3] = std::array::from_fn(|a| lo[a] as f64 - 0.5);
    let cells: [usize; 3] = std::array::from_fn(|a| {
        (((hi[a] - lo[a] + 1) as f64 / cell_vox[a]).ceil() as usize).max(1)
    });
    let n_cells = cells[0] * cells[1] * cells[2];
    // Per cell: voxels, tissue voxels, and tissue voxels per label.
    let mut total = vec![0u32; n_cells];
    let mut by_label = vec![[0u32; 6]; n_cells];
    let cell_of = |c: usize, a: usize| {
        (((c as f64 - corner_vox[a]) / cell_vox[a]).floor() as usize).min(cells[a] - 1)
    };
    let ci_of: Vec<usize> = (lo[0]..=hi[0]).map(|i| cell_of(i, 0)).collect();
    for k in lo[2]..=hi[2] {
        let ck = cell_of(k, 2);
        for j in lo[1]..=hi[1] {
            let cj = cell_of(j, 1);
            let row = g.index(lo[0], j, k);
            for (n, &v) in labels.data[row..row + (hi[0] - lo[0] + 1)]
                .iter()
                .enumerate()
            {
                let c = ci_of[n] + cells[0] * (cj + cells[1] * ck);
                total[c] += 1;
                if v != 0 {
                    by_label[c][(v as usize).min(5)] += 1;
                }
            }
        }
    }
    // A cell on the box's far edge covers voxels past the box: count them as background.
    let full = (cell_vox[0] * cell_vox[1] * cell_vox[2]).max(1.0);
    let mut keep = vec![false; n_cells];
    for c in 0..n_cells {
        let tissue: u32 = by_label[c].iter().sum();
        let seen = f64::from(total[c]).max(full);
        keep[c] = tissue > 0 && f64::from(tissue) / seen >= min_fill;
    }
    // Face-connected pieces: keep those with at least 5 % of the kept cells.
    let mut piece = vec![u32::MAX; n_cells];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..n_cells {
        if !keep[start] || piece[start] != u32::MAX {
            continue;
        }
        let id = sizes.len() as u32;
        let mut size = 0usize;
        piece[start] = id;
        stack.push(start);
        while let Some(c) = stack.pop() {
            size += 1;
            let (ci, rest) = (c % cells[0], c / cells[0]);
            let (cj, ck) = (rest % cells[1], rest / cells[1]);
            let mut visit = |n: usize| {
                if keep[n] && piece[n] == u32::MAX {
                    piece[n] = id;
                    stack.push(n);
                }
            };
            if ci > 0 {
                visit(c - 1);
            }
            if ci + 1 < cells[0] {
                visit(c + 1);
            }
            if cj > 0 {
                visit(c - cells[0]);
            }
            if cj + 1 < cells[1] {
                visit(c + cells[0]);
            }
            if ck > 0 {
                visit(c - cells[0] * cells[1]);
            }
            if ck + 1 < cells[2] {
                visit(c + cells[0] * cells[1]);
            }
        }
        sizes.push(size);
    }
    let kept_total: usize = sizes.iter().sum();
    let kept: Vec<usize> = (0..n_cells)
        .filter(|&c| keep[c] && sizes[piece[c] as usize] * 20 >= kept_total)
        .collect();
    let cell_label = kept
        .iter()
        .map(|&c| {
            (1..6u8)
                .max_by_key(|&l| (by_label[c][l as usize], std::cmp::Reverse(l)))
                .unwrap_or(1)
        })
        .collect();
    Lattice {
        cell_vox,
        corner_vox,
        cells,
        kept,
        cell_label,
    }
}

/// Meshes the tissue of `labels` (every non-zero label) into a lattice of tets.
pub fn lattice_tets(
    labels: &LabelVolume,
    opts: &TetOptions,
) -> Result<(TwinMesh, QualityReport), MeshError> {
    if opts.target_tets < 50 {
        return Err(MeshError::Budget(opts.target_tets));
    }
    let (lo, hi, count) = tissue_box(labels).ok_or(MeshError::Empty)?;
    let voxel_m3: f64 = labels.grid.spacing_m.iter().product();
    let tissue_m3 = count as f64 * voxel_m3;
    // Five tets per cell.
    let mut cell_m = (5.0 * tissue_m3 / opts.target_tets as f64).cbrt();
    let min_cell = labels
        .grid
        .spacing_m
        .iter()
        .cloned()
        .fold(f64::MAX, f64::min);
    let mut lattice = build_lattice(labels, lo, hi, cell_m.max(min_cell), opts.min_fill);
    for _ in 0..6 {
        let tets = 5 * lattice.kept.len();
        let ratio = tets as f64 / opts.target_tets as f64;
        if tets > 0 && (0.9..=1.1).contains(&ratio) {
            break;
        }
        cell_m *= if tets == 0 { 0.5 } else { ratio.cbrt() };
        lattice = build_lattice(labels, lo, hi, cell_m.max(min_cell), opts.min_fill);
    }
    let cell_m = cell_m.max(min_cell);
    if lattice.kept.is_empty() {
        return Err(MeshError::NoCells {
            cell_mm: cell_m * 1e3,
            min_fill: opts.min_fill,
        });
    }
    let g = &labels.grid;
    let [cx, cy, _] = lattice.cells;
    let node_key = |i: usize, j: usize, k: usize| i + (cx + 1) * (j + (cy + 1) * k);
    let mut node_index: HashMap<usize, u32> = HashMap::with_capacity(lattice.kept.len() * 2);
    let mut positions: Vec<Vector3<f64>> = Vec::with_capacity(lattice.kept.len() * 2);
    let mut tets = Vec::with_capacity(lattice.kept.len() * 5);
    let mut tet_labels = Vec::with_capacity(lattice.kept.len() * 5);
    for (n, &c) in lattice.kept.iter().enumerate() {
        let (i, rest) = (c % cx, c / cx);
        let (j, k) = (rest % cy, rest / cy);
        let mut corner = |a: usize, b: usize, d: usize| -> u32 {
            let key = node_key(i + a, j + b, k + d);
            *node_index.entry(key).or_insert_with(|| {
                let v = [
                    lattice.corner_vox[0] + (i + a) as f64 * lattice.cell_vox[0],
                    lattice.corner_vox[1] + (j + b) as f64 * lattice.cell_vox[1],
                    lattice.corner_vox[2] + (k + d) as f64 * lattice.cell_vox[2],
                ];
                positions.push(g.voxel_to_patient(v));
                (positions.len() - 1) as u32
            })
        };
        let (c000, c100, c010, c110) = (
            corner(0, 0, 0),
            corner(1, 0, 0),
            corner(0, 1, 0),
            corner(1, 1, 0),
        );
        let (c001, c101, c011, c111) = (
            corner(0, 0, 1),
            corner(1, 0, 1),
            corner(0, 1, 1),
            corner(1, 1, 1),
        );
        let split = five_tets(
            [c000, c100, c010, c110, c001, c101, c011, c111],
            (i + j + k) % 2 == 0,
        );
        for mut t in split {
            if signed_volume(t.map(|q| &positions[q as usize])) < 0.0 {
                t.swap(2, 3);
            }
            let centroid = t
                .iter()
                .fold(Vector3::zeros(), |s, &q| s + positions[q as usize])
                / 4.0;
            let v = g.patient_to_voxel(centroid);
            let at = labels.get(
                v[0].round().max(0.0) as usize,
                v[1].round().max(0.0) as usize,
                v[2].round().max(0.0) as usize,
            );
            let label = match at {
                Some(l) if l != 0 => l,
                _ => lattice.cell_label[n],
            };
            tets.push(t);
            tet_labels.push(label);
        }
    }
    let mesh = TwinMesh {
        rest_positions_m: positions,
        tets,
        tet_labels,
        cell_m,
    };
    let report = quality(&mesh, tissue_m3);
    Ok((mesh, report))
}

/// The dihedral angles of a tet, radians.
fn dihedral_angles(p: [Vector3<f64>; 4]) -> [f64; 6] {
    // The face opposite vertex v has normal n[v] (outward).
    let face = |a: usize, b: usize, c: usize, opp: usize| {
        let n = (p[b] - p[a]).cross(&(p[c] - p[a]));
        if n.dot(&(p[opp] - p[a])) > 0.0 {
            -n
        } else {
            n
        }
    };
    let n = [
        face(1, 2, 3, 0),
        face(0, 2, 3, 1),
        face(0, 1, 3, 2),
        face(0, 1, 2, 3),
    ];
    let mut out = [0.0; 6];
    let mut e = 0;
    for a in 0..4 {
        for b in a + 1..4 {
            // The edge shared by the faces opposite a and b; interior angle between them.
            let cos = -n[a].dot(&n[b]) / (n[a].norm() * n[b].norm()).max(1e-300);
            out[e] = cos.clamp(-1.0, 1.0).acos();
            e += 1;
        }
    }
    out
}

/// Measures a mesh.
pub fn quality(mesh: &TwinMesh, labelled_volume_m3: f64) -> QualityReport {
    let mut inverted = 0;
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    let mut by_label = [0.0f64; 256];
    for (t, &l) in mesh.tets.iter().zip(&mesh.tet_labels) {
        let p = t.map(|q| mesh.rest_positions_m[q as usize]);
        let v = signed_volume([&p[0], &p[1], &p[2], &p[3]]);
        if v <= 0.0 {
            inverted += 1;
        }
        by_label[l as usize] += v;
        for a in dihedral_angles(p) {
            lo = lo.min(a);
            hi = hi.max(a);
        }
    }
    QualityReport {
        tets: mesh.tets.len(),
        particles: mesh.rest_positions_m.len(),
        cell_m: mesh.cell_m,
        inverted,
        min_dihedral_deg: lo.to_degrees(),
        max_dihedral_deg: hi.to_degrees(),
        volume_m3_by_label: (0..=255u8)
            .filter(|&l| by_label[l as usize] != 0.0)
            .map(|l| (l, by_label[l as usize]))
            .collect(),
        labelled_volume_m3,
    }
}

impl QualityReport {
    /// The mesh's volume of `label`, m^3.
    pub fn volume_of(&self, label: Label) -> f64 {
        self.volume_m3_by_label
            .iter()
            .find(|(l, _)| *l == label as u8)
            .map_or(0.0, |(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::phantom::phantom;
    use crate::twin::volume::{Grid, Volume};

    #[test]
    fn the_phantom_meshes_near_its_budget_with_good_tets_and_its_tissues() {
        let (_, labels) = phantom(2e-3).unwrap();
        for target in [3_000usize, 20_000] {
            let (mesh, q) = lattice_tets(
                &labels,
                &TetOptions {
                    target_tets: target,
                    ..TetOptions::default()
                },
            )
            .unwrap();
            let ratio = q.tets as f64 / target as f64;
            assert!(
                (0.85..=1.15).contains(&ratio),
                "{} tets for {target}",
                q.tets
            );
            assert_eq!(q.inverted, 0);
            assert!(q.min_dihedral_deg > 35.0, "{q:?}");
            assert!(q.max_dihedral_deg < 125.0, "{q:?}");
            let total: f64 = q.volume_m3_by_label.iter().map(|(_, v)| v).sum();
            assert!(
                (total / q.labelled_volume_m3 - 1.0).abs() < 0.12,
                "mesh {total} m^3 for {} m^3 of tissue",
                q.labelled_volume_m3
            );
            assert!(q.volume_of(Label::Tumour) > 0.0, "{q:?}");
            assert_eq!(mesh.tet_labels.len(), mesh.tets.len());
            let again = lattice_tets(
                &labels,
                &TetOptions {
                    target_tets: target,
                    ..TetOptions::default()
                },
            )
            .unwrap()
            .0;
            assert_eq!(mesh, again, "deterministic");
        }
    }

    #[test]
    fn empty_and_speck_label_maps_are_refused_by_name() {
        let grid = Grid::axis_aligned([10, 10, 10], [1e-3; 3], [0.0; 3]);
        let empty = Volume::filled(grid.clone(), 0u8).unwrap();
        assert_eq!(
            lattice_tets(&empty, &TetOptions::default()).unwrap_err(),
            MeshError::Empty
        );
        assert_eq!(
            lattice_tets(
                &empty,
                &TetOptions {
                    target_tets: 10,
                    ..TetOptions::default()
                }
            )
            .unwrap_err(),
            MeshError::Budget(10)
        );
        // A flipped (LPS-like, det -1) grid still gives positive tets.
        let mut flipped = grid;
        flipped.direction = [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let mut cube = Volume::filled(flipped, 0u8).unwrap();
        for k in 2..8 {
            for j in 2..8 {
                for i in 2..8 {
                    cube.set(i, j, k, 1);
                }
            }
        }
        let (_, q) = lattice_tets(
            &cube,
            &TetOptions {
                target_tets: 200,
                ..TetOptions::default()
            },
        )
        .unwrap();
        assert_eq!(q.inverted, 0);
    }
}
