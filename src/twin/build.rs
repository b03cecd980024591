//! Building a twin: labels -> tets, materials, the render surface embedded in the tets; and
//! placing a twin in the simulator's world.
//!
//! [`from_labels`] is the common end of every route (phantom, NIfTI, DICOM): it meshes the
//! labelled tissue ([`super::tets`]), gives each label its material, and embeds the render
//! surface by barycentric coordinates in the tet that holds each vertex (found through a hash
//! grid of tets; a vertex just outside the lattice goes to the nearest tet). [`to_tissue`] turns
//! a twin into the tissue model in the world frame.
//!
//! Contract: deterministic; no identity enters (provenance is built by the importers).

use std::collections::HashMap;

use nalgebra::{Isometry3, Point3, Rotation3, Translation3, UnitQuaternion, Vector3};

use super::format::{Twin, TwinHeader, TwinSurface};
use super::materials::{self, LabelMaterial};
use super::provenance::Provenance;
use super::tets::{self, MeshError, TetOptions, TwinMesh};
use super::volume::LabelVolume;
use crate::tissue::embed::barycentric;
use crate::tissue::{mesh::TetMesh, Material, Tissue};

/// A triangle surface with a label per triangle (patient frame, metres).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelledSurface {
    /// Vertices.
    pub vertices_m: Vec<[f32; 3]>,
    /// Triangles.
    pub triangles: Vec<[u32; 3]>,
    /// Label of each triangle.
    pub triangle_labels: Vec<u8>,
}

/// Triangles the render surface aims for, all labels together.
pub const DEFAULT_SURFACE_TRIANGLES: usize = 60_000;

/// The render surface of a label map: one closed surface per tissue label
/// ([`super::surface::label_surfaces`]), Taubin-smoothed (volume kept), then decimated so the
/// whole stays near `triangle_budget` (each label's share in proportion to its triangles).
pub fn label_surface(labels: &LabelVolume, triangle_budget: usize) -> LabelledSurface {
    use super::surface::{decimate, label_surfaces, smooth_taubin};
    let mut present = [false; 256];
    for &v in &labels.data {
        present[v as usize] = true;
    }
    let wanted: Vec<u8> = (1..=255u8).filter(|&l| present[l as usize]).collect();
    let mut meshes = label_surfaces(labels, &wanted);
    let total: usize = meshes.iter().map(|(_, m)| m.triangles.len()).sum();
    let mut out = LabelledSurface::default();
    for (label, mesh) in meshes.iter_mut() {
        if mesh.triangles.is_empty() {
            continue;
        }
        smooth_taubin(mesh, 10, 0.5, -0.53);
        if total > triangle_budget {
            let share = (mesh.triangles.len() as f64 * triangle_budget as f64 / total as f64)
                .round()
                .max(200.0) as usize;
            decimate(mesh, share);
        }
        let base = out.vertices_m.len() as u32;
        out.vertices_m.extend_from_slice(&mesh.positions_m);
        out.triangles
            .extend(mesh.triangles.iter().map(|t| t.map(|v| v + base)));
        out.triangle_labels
            .extend(std::iter::repeat_n(*label, mesh.triangles.len()));
    }
    out
}

/// Binds every vertex to the tet holding it (or the nearest one), through a hash grid of tets
/// with buckets one lattice cell wide. Returns the tets, the coordinates and the largest
/// distance outside the mesh, metres.
pub fn embed(mesh: &TwinMesh, vertices_m: &[[f32; 3]]) -> (Vec<u32>, Vec<[f32; 4]>, f64) {
    let h = mesh.cell_m.max(1e-6);
    let key = |p: Vector3<f64>| -> (i64, i64, i64) {
        (
            (p.x / h).floor() as i64,
            (p.y / h).floor() as i64,
            (p.z / h).floor() as i64,
        )
    };
    let mut buckets: HashMap<(i64, i64, i64), Vec<u32>> = HashMap::new();
    for (t, tet) in mesh.tets.iter().enumerate() {
        let c = tet.iter().fold(Vector3::zeros(), |s, &q| {
            s + mesh.rest_positions_m[q as usize]
        }) / 4.0;
        buckets.entry(key(c)).or_default().push(t as u32);
    }
    let mut tets_out = Vec::with_capacity(vertices_m.len());
    let mut bary_out = Vec::with_capacity(vertices_m.len());
    let mut worst = 0.0f64;
    for v in vertices_m {
        let p = Vector3::new(f64::from(v[0]), f64::from(v[1]), f64::from(v[2]));
        let (kx, ky, kz) = key(p);
        let mut best: Option<(f64, u32, [f64; 4])> = None;
        // Rings of buckets outwards until a tet holds it, or (outside) the nearest is found.
        for r in 0..4i64 {
            for dz in -r..=r {
                for dy in -r..=r {
                    for dx in -r..=r {
                        if dx.abs().max(dy.abs()).max(dz.abs()) != r {
                            continue;
                        }
                        let Some(list) = buckets.get(&(kx + dx, ky + dy, kz + dz)) else {
                            continue;
                        };
                        for &t in list {
                            let x =
                                mesh.tets[t as usize].map(|q| mesh.rest_positions_m[q as usize]);
                            if let Some(b) = barycentric(x, p) {
                                let out: f64 = b.iter().map(|w| (-w).max(0.0)).sum();
                                if best.is_none_or(|(o, bt, _)| out < o || (out == o && t < bt)) {
                                    best = Some((out, t, b));
                                }
                            }
                        }
                    }
                }
            }
            if best.is_some_and(|(o, _, _)| o == 0.0) || (best.is_some() && r >= 1) {
                break;
            }
        }
        let (out, t, b) = best.unwrap_or((f64::INFINITY, 0, [1.0, 0.0, 0.0, 0.0]));
        worst = worst.max(out * h);
        tets_out.push(t);
        bary_out.push(b.map(|w| w as f32));
    }
    (tets_out, bary_out, worst)
}

/// Builds a twin from a label map (and, when there is one, the render surface).
pub fn from_labels(
    labels: &LabelVolume,
    provenance: Provenance,
    surface: Option<LabelledSurface>,
    tet_options: &TetOptions,
    materials_override: Option<&std::path::Path>,
) -> Result<Twin, BuildError> {
    let (mesh, quality) = tets::lattice_tets(labels, tet_options)?;
    let mut present: Vec<u8> = mesh.tet_labels.clone();
    present.sort_unstable();
    present.dedup();
    let mut mats: Vec<LabelMaterial> = materials::defaults(&present);
    if let Some(path) = materials_override {
        materials::apply_overrides(&mut mats, path)?;
    }
    let surface = match surface {
        Some(s) => {
            let (vertex_tets, vertex_barycentric, _) = embed(&mesh, &s.vertices_m);
            TwinSurface {
                vertices_m: s.vertices_m,
                triangles: s.triangles,
                triangle_labels: s.triangle_labels,
                vertex_tets,
                vertex_barycentric,
            }
        }
        None => TwinSurface::default(),
    };
    Ok(Twin {
        header: TwinHeader {
            provenance,
            materials: mats,
            quality,
            particles: mesh.rest_positions_m.len() as u64,
            tets: mesh.tets.len() as u64,
            surface_vertices: surface.vertices_m.len() as u64,
            surface_triangles: surface.triangles.len() as u64,
            software_version: env!("CARGO_PKG_VERSION").into(),
        },
        mesh,
        surface,
    })
}

/// Why a twin could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Meshing failed.
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// The materials file was refused.
    #[error(transparent)]
    Materials(#[from] materials::MaterialsError),
    /// A volume was malformed.
    #[error(transparent)]
    Volume(#[from] super::volume::VolumeError),
}

/// The provenance of the built-in phantom (synthetic: no patient).
pub fn phantom_provenance(grid: &super::volume::Grid) -> Provenance {
    Provenance {
        case_id: "phantom".into(),
        source_format: "phantom".into(),
        modality: "CT".into(),
        transfer_syntax: None,
        files: 0,
        grid: grid.clone(),
        intensity_unit: "HU".into(),
        deidentification: super::provenance::Deidentification {
            method: "synthetic: no patient data".into(),
            codes: vec![],
            elements_changed: 0,
        },
        software_version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// The built-in phantom as a twin, sampled at `voxel_m`, meshed to `tet_options`, with its
/// render surface.
pub fn phantom_twin(voxel_m: f64, tet_options: &TetOptions) -> Result<Twin, BuildError> {
    let (_, labels) = super::phantom::phantom(voxel_m)?;
    let surface = label_surface(&labels, DEFAULT_SURFACE_TRIANGLES);
    from_labels(
        &labels,
        phantom_provenance(&labels.grid),
        Some(surface),
        tet_options,
        None,
    )
}

/// Where a twin lies in the simulator's world (+y up, the tissue's top at y = 0, centred over
/// the origin): the patient lies supine on the table, so the patient's anterior (-y in LPS) is
/// up; x stays the patient's left, and z points to the feet (a proper rotation).
pub fn patient_to_world(twin: &Twin) -> Isometry3<f64> {
    let rotation = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(
        nalgebra::Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0),
    ));
    let turned: Vec<Vector3<f64>> = twin
        .mesh
        .rest_positions_m
        .iter()
        .map(|p| rotation * p)
        .collect();
    let (lo, hi) = turned.iter().fold(
        (
            Vector3::repeat(f64::INFINITY),
            Vector3::repeat(f64::NEG_INFINITY),
        ),
        |(lo, hi), p| (lo.inf(p), hi.sup(p)),
    );
    let shift = Vector3::new(-(lo.x + hi.x) / 2.0, -hi.y, -(lo.z + hi.z) / 2.0);
    Isometry3::from_parts(Translation3::from(shift), rotation)
}

/// The tissue model of a twin, placed by `to_world`; the particles within half a cell of the
/// lowest point are held (the organ lies on the table).
pub fn to_tissue(twin: &Twin, to_world: &Isometry3<f64>) -> Tissue {
    let rest: Vec<Vector3<f64>> = twin
        .mesh
        .rest_positions_m
        .iter()
        .map(|p| to_world.transform_point(&Point3::from(*p)).coords)
        .collect();
    let mut tets_world = twin.mesh.tets.clone();
    // A reflection would turn tets inside out; a proper rotation never does, but check.
    for t in tets_world.iter_mut() {
        if crate::tissue::mesh::signed_volume(t.map(|q| &rest[q as usize])) < 0.0 {
            t.swap(2, 3);
        }
    }
    let mesh = TetMesh {
        surface_triangles: crate::tissue::mesh::boundary_triangles(&tets_world),
        rest_positions_m: rest,
        tets: tets_world,
    };
    let index_of: HashMap<u8, u16> = twin
        .header
        .materials
        .iter()
        .enumerate()
        .map(|(i, m)| (m.label, i as u16))
        .collect();
    let materials: Vec<Material> = twin.header.materials.iter().map(|m| m.material()).collect();
    let ids: Vec<u16> = twin
        .mesh
        .tet_labels
        .iter()
        .map(|l| index_of.get(l).copied().unwrap_or(0))
        .collect();
    let bottom = mesh
        .rest_positions_m
        .iter()
        .map(|p| p.y)
        .fold(f64::INFINITY, f64::min);
    let hold = bottom + 0.5 * twin.mesh.cell_m;
    Tissue::with_materials(&mesh, &materials, &ids, |p| p.y <= hold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::format::TwinFileError;
    use crate::twin::phantom;
    use crate::twin::provenance::Deidentification;
    use std::path::Path;

    fn provenance(labels: &LabelVolume) -> Provenance {
        Provenance {
            case_id: "case-phantom".into(),
            source_format: "phantom".into(),
            modality: "CT".into(),
            transfer_syntax: None,
            files: 0,
            grid: labels.grid.clone(),
            intensity_unit: "HU".into(),
            deidentification: Deidentification {
                method: "synthetic: no patient".into(),
                codes: vec![],
                elements_changed: 0,
            },
            software_version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn small_twin() -> Twin {
        let (_, labels) = phantom::phantom(3e-3).unwrap();
        // The tet mesh's own boundary as the surface stands in for a fine one here.
        let (mesh, _) = tets::lattice_tets(
            &labels,
            &TetOptions {
                target_tets: 2_000,
                ..TetOptions::default()
            },
        )
        .unwrap();
        let tris = crate::tissue::mesh::boundary_triangles(&mesh.tets);
        let surface = LabelledSurface {
            vertices_m: mesh
                .rest_positions_m
                .iter()
                .map(|p| [p.x as f32, p.y as f32, p.z as f32])
                .collect(),
            triangle_labels: vec![1; tris.len()],
            triangles: tris,
        };
        from_labels(
            &labels,
            provenance(&labels),
            Some(surface),
            &TetOptions {
                target_tets: 2_000,
                ..TetOptions::default()
            },
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_twin_round_trips_through_its_file_and_every_damage_is_named() {
        let twin = small_twin();
        // Every surface vertex lies in a tet (they are the tets' own corners).
        let (_, _, worst) = embed(&twin.mesh, &twin.surface.vertices_m);
        assert!(worst < 1e-6, "{worst}");
        let bytes = twin.to_bytes();
        let p = Path::new("case.twin");
        let back = Twin::from_bytes(&bytes, p).unwrap();
        assert!(back == twin, "the twin changed through its file");
        // Version, corruption, truncation, not a twin.
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(matches!(
            Twin::from_bytes(&v2, p),
            Err(TwinFileError::Version { found: 2, .. })
        ));
        let mut flipped = bytes.clone();
        let mid = bytes.len() / 2;
        flipped[mid] ^= 0x40;
        let err = Twin::from_bytes(&flipped, p).unwrap_err().to_string();
        assert!(err.starts_with("case.twin is corrupt: checksum"), "{err}");
        assert!(matches!(
            Twin::from_bytes(&bytes[..bytes.len() - 100], p),
            Err(TwinFileError::Checksum { .. })
        ));
        assert!(matches!(
            Twin::from_bytes(b"PK\x03\x04 a zip", p),
            Err(TwinFileError::NotATwin { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phantom.twin");
        twin.save(&path).unwrap();
        assert!(Twin::load(&path).unwrap() == twin);
    }

    #[test]
    fn a_twin_becomes_tissue_lying_on_the_table_top_at_zero() {
        let twin = small_twin();
        let to_world = patient_to_world(&twin);
        let tissue = to_tissue(&twin, &to_world);
        let top = tissue
            .positions_m
            .iter()
            .map(|p| p.y)
            .fold(f64::MIN, f64::max);
        assert!(top.abs() < 1e-9, "top at {top}");
        assert_eq!(tissue.inverted_tets(), 0);
        assert!(tissue.tet_materials().iter().any(|&m| m != 0));
        assert!((0..tissue.particle_count()).any(|q| tissue.is_fixed(q)));
    }
}
