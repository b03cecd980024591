//! Exports of a twin's surface for Blender, 3D Slicer and the like: OBJ, binary STL and binary
//! glTF (GLB).
//!
//! The surface exported is the twin's fine render surface, or, when it has none, the boundary of
//! its tet mesh and the faces between tissues (a tumour inside the organ), labelled.
//! - OBJ and STL: millimetres in the patient frame (DICOM LPS), as medical tools expect; OBJ
//!   has one group per label (`g parenchyma`, `g tumour`, ...), STL one solid.
//! - GLB: metres in the simulator's world frame (+y up: the patient supine, the tissue's top at
//!   y = 0), one primitive per label with a material of that tissue's colour, as glTF expects.
//!
//! Contract: the files are written whole through a temporary name; nothing in them identifies
//! the patient (the twin holds no identity).

use std::path::{Path, PathBuf};

use nalgebra::{Point3, Vector3};

use super::build::patient_to_world;
use super::format::Twin;
use super::labels::Label;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Wavefront OBJ (text), millimetres, LPS.
    Obj,
    /// Binary STL, millimetres, LPS.
    Stl,
    /// Binary glTF 2.0, metres, world frame (y up).
    Glb,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "obj" => Ok(Self::Obj),
            "stl" => Ok(Self::Stl),
            "glb" => Ok(Self::Glb),
            other => Err(format!("unknown format {other:?}: use obj, stl or glb")),
        }
    }
}

/// A write failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct ExportError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// The surface to export: vertices (patient frame, metres), triangles, triangle labels.
fn surface(twin: &Twin) -> (Vec<Vector3<f64>>, Vec<[u32; 3]>, Vec<u8>) {
    if !twin.surface.triangles.is_empty() {
        let v = twin
            .surface
            .vertices_m
            .iter()
            .map(|p| Vector3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2])))
            .collect();
        return (
            v,
            twin.surface.triangles.clone(),
            twin.surface.triangle_labels.clone(),
        );
    }
    // The tet mesh's boundary, each face labelled by its tet, and the faces between tets of
    // different labels (a tumour inside the organ), labelled with the inner tissue's label
    // (the larger value) and facing out of it.
    let tets = &twin.mesh.tets;
    let labels_of = &twin.mesh.tet_labels;
    let mut owners: std::collections::HashMap<[u32; 3], Vec<(usize, [u32; 3])>> =
        std::collections::HashMap::new();
    for (t, tet) in tets.iter().enumerate() {
        // Faces as seen from outside tet t (positively oriented tets).
        let oriented = [
            [tet[1], tet[2], tet[3]],
            [tet[0], tet[3], tet[2]],
            [tet[0], tet[1], tet[3]],
            [tet[0], tet[2], tet[1]],
        ];
        for f in oriented {
            let mut k = f;
            k.sort_unstable();
            owners.entry(k).or_default().push((t, f));
        }
    }
    let mut keys: Vec<&[u32; 3]> = owners.keys().collect();
    keys.sort_unstable();
    let mut faces = Vec::new();
    let mut labels = Vec::new();
    for k in keys {
        match owners[k].as_slice() {
            [(t, f)] => {
                faces.push(*f);
                labels.push(labels_of[*t]);
            }
            [(a, fa), (b, fb)] if labels_of[*a] != labels_of[*b] => {
                let (t, f) = if labels_of[*a] > labels_of[*b] {
                    (a, fa)
                } else {
                    (b, fb)
                };
                faces.push(*f);
                labels.push(labels_of[*t]);
            }
            _ => {}
        }
    }
    (twin.mesh.rest_positions_m.clone(), faces, labels)
}

fn label_name(l: u8) -> &'static str {
    Label::from_u8(l).map_or("tissue", Label::name)
}

fn label_colour(l: u8) -> [f32; 4] {
    match Label::from_u8(l) {
        Some(Label::Tumour) => [0.85, 0.75, 0.25, 1.0],
        Some(Label::Vessel) => [0.55, 0.05, 0.08, 1.0],
        Some(Label::Fat) => [0.95, 0.85, 0.55, 1.0],
        Some(Label::Bone) => [0.92, 0.90, 0.85, 1.0],
        _ => [0.62, 0.22, 0.18, 1.0],
    }
}

/// The file's bytes.
pub fn to_bytes(twin: &Twin, format: ExportFormat) -> Vec<u8> {
    let (v, tris, labels) = surface(twin);
    match format {
        ExportFormat::Obj => obj(&v, &tris, &labels).into_bytes(),
        ExportFormat::Stl => stl(&v, &tris),
        ExportFormat::Glb => {
            let to_world = patient_to_world(twin);
            let w: Vec<Vector3<f64>> = v
                .iter()
                .map(|p| to_world.transform_point(&Point3::from(*p)).coords)
                .collect();
            glb(&w, &tris, &labels)
        }
    }
}

/// Writes the export.
pub fn export(twin: &Twin, format: ExportFormat, path: &Path) -> Result<(), ExportError> {
    let err = |source| ExportError {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, to_bytes(twin, format)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

fn obj(v: &[Vector3<f64>], tris: &[[u32; 3]], labels: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::from("# haptwin twin surface: millimetres, patient frame (DICOM LPS)\n");
    for p in v {
        let _ = writeln!(s, "v {:.4} {:.4} {:.4}", p.x * 1e3, p.y * 1e3, p.z * 1e3);
    }
    let mut order: Vec<u8> = labels.to_vec();
    order.sort_unstable();
    order.dedup();
    for l in order {
        let _ = writeln!(s, "g {}", label_name(l));
        for (t, _) in tris.iter().zip(labels).filter(|(_, &tl)| tl == l) {
            let _ = writeln!(s, "f {} {} {}", t[0] + 1, t[1] + 1, t[2] + 1);
        }
    }
    s
}

fn stl(v: &[Vector3<f64>], tris: &[[u32; 3]]) -> Vec<u8> {
    let mut out = vec![0u8; 80];
    let title = b"haptwin twin surface, millimetres, patient frame (LPS)";
    out[..title.len()].copy_from_slice(title);
    out.extend_from_slice(&(tris.len() as u32).to_le_bytes());
    for t in tris {
        let [a, b, c] = t.map(|i| v[i as usize] * 1e3);
        let n = (b - a)
            .cross(&(c - a))
            .try_normalize(0.0)
            .unwrap_or_default();
        for p in [n, a, b, c] {
            for k in 0..3 {
                out.extend_from_slice(&(p[k] as f32).to_le_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]);
    }
    out
}

fn glb(v: &[Vector3<f64>], tris: &[[u32; 3]], labels: &[u8]) -> Vec<u8> {
    let mut order: Vec<u8> = labels.to_vec();
    order.sort_unstable();
    order.dedup();
    let mut bin: Vec<u8> = Vec::new();
    let (lo, hi) = v.iter().fold(
        (
            Vector3::repeat(f64::INFINITY),
            Vector3::repeat(f64::NEG_INFINITY),
        ),
        |(lo, hi), p| (lo.inf(p), hi.sup(p)),
    );
    for p in v {
        for k in 0..3 {
            bin.extend_from_slice(&(p[k] as f32).to_le_bytes());
        }
    }
    let positions_len = bin.len();
    let mut views = vec![serde_json::json!({
        "buffer": 0, "byteOffset": 0, "byteLength": positions_len, "target": 34962
    })];
    let (lo, hi) = if v.is_empty() {
        (Vector3::zeros(), Vector3::zeros())
    } else {
        (lo, hi)
    };
    let mut accessors = vec![serde_json::json!({
        "bufferView": 0, "componentType": 5126, "count": v.len(), "type": "VEC3",
        "min": [lo.x as f32, lo.y as f32, lo.z as f32],
        "max": [hi.x as f32, hi.y as f32, hi.z as f32],
    })];
    let mut primitives = Vec::new();
    let mut materials = Vec::new();
    for (m, &l) in order.iter().enumerate() {
        let start = bin.len();
        let mut count = 0usize;
        for (t, _) in tris.iter().zip(labels).filter(|(_, &tl)| tl == l) {
            for &i in t {
                bin.extend_from_slice(&i.to_le_bytes());
            }
            count += 3;
        }
        views.push(serde_json::json!({
            "buffer": 0, "byteOffset": start, "byteLength": bin.len() - start, "target": 34963
        }));
        accessors.push(serde_json::json!({
            "bufferView": views.len() - 1, "componentType": 5125, "count": count, "type": "SCALAR"
        }));
        primitives.push(serde_json::json!({
            "attributes": {"POSITION": 0}, "indices": accessors.len() - 1, "material": m
        }));
        materials.push(serde_json::json!({
            "name": label_name(l),
            "pbrMetallicRoughness": {"baseColorFactor": label_colour(l), "metallicFactor": 0.0,
                                     "roughnessFactor": 0.6},
            "doubleSided": false
        }));
    }
    let gltf = serde_json::json!({
        "asset": {"version": "2.0", "generator": concat!("haptwin ", env!("CARGO_PKG_VERSION"))},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "twin"}],
        "meshes": [{"name": "twin", "primitives": primitives}],
        "materials": materials,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": bin.len()}],
    });
    let mut json = serde_json::to_vec(&gltf).expect("glTF JSON serializes");
    while !json.len().is_multiple_of(4) {
        json.push(b' ');
    }
    while !bin.len().is_multiple_of(4) {
        bin.push(0);
    }
    let total = 12 + 8 + json.len() + 8 + bin.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&json);
    out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
    out.extend_from_slice(b"BIN\0");
    out.extend_from_slice(&bin);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::build::phantom_twin;
    use crate::twin::tets::TetOptions;

    fn twin() -> Twin {
        phantom_twin(
            3e-3,
            &TetOptions {
                target_tets: 1_000,
                ..TetOptions::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn exports_are_well_formed_and_in_their_units() {
        let t = twin();
        let (v, tris, labels) = surface(&t);
        assert_eq!(tris.len(), labels.len());
        let obj = String::from_utf8(to_bytes(&t, ExportFormat::Obj)).unwrap();
        assert_eq!(obj.lines().filter(|l| l.starts_with("v ")).count(), v.len());
        assert_eq!(
            obj.lines().filter(|l| l.starts_with("f ")).count(),
            tris.len()
        );
        assert!(obj.contains("g parenchyma") && obj.contains("g tumour"));
        // Millimetres: the phantom is about 18 cm across.
        let xs: Vec<f64> = obj
            .lines()
            .filter_map(|l| l.strip_prefix("v "))
            .map(|l| l.split(' ').next().unwrap().parse().unwrap())
            .collect();
        let span = xs.iter().cloned().fold(f64::MIN, f64::max)
            - xs.iter().cloned().fold(f64::MAX, f64::min);
        assert!((120.0..220.0).contains(&span), "{span} mm");
        let stl = to_bytes(&t, ExportFormat::Stl);
        assert_eq!(stl.len(), 84 + 50 * tris.len());
        assert_eq!(
            u32::from_le_bytes(stl[80..84].try_into().unwrap()) as usize,
            tris.len()
        );
        let glb = to_bytes(&t, ExportFormat::Glb);
        assert_eq!(&glb[..4], b"glTF");
        assert_eq!(
            u32::from_le_bytes(glb[8..12].try_into().unwrap()) as usize,
            glb.len()
        );
        let json_len = u32::from_le_bytes(glb[12..16].try_into().unwrap()) as usize;
        let j: serde_json::Value = serde_json::from_slice(&glb[20..20 + json_len]).unwrap();
        assert_eq!(j["asset"]["version"], "2.0");
        // World frame: the top of the tissue (the tets' top at y = 0; the embedded surface
        // within a lattice cell of it).
        let top = j["accessors"][0]["max"][1].as_f64().unwrap();
        assert!(top.abs() < t.mesh.cell_m, "top at {top} m");
        let bin_len = u32::from_le_bytes(glb[20 + json_len..24 + json_len].try_into().unwrap());
        assert_eq!(
            j["buffers"][0]["byteLength"].as_u64().unwrap(),
            u64::from(bin_len)
        );
    }
}
