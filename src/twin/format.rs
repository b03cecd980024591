//! The `.twin` file: a simulation-ready digital twin, versioned and checksummed.
//!
//! Layout (little-endian throughout):
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `HAPTWIN` + `0x1a` |
//! | 4 | format version ([`FORMAT_VERSION`]) |
//! | 4 | header length `h` |
//! | h | header, JSON ([`TwinHeader`]: provenance, materials, quality, counts) |
//! | ... | arrays, each as `u64` element count then the elements: rest positions (`f64` x 3), tets (`u32` x 4), tet labels (`u8`), surface vertices (`f32` x 3), surface triangles (`u32` x 3), triangle labels (`u8`), vertex tets (`u32`), vertex barycentric coordinates (`f32` x 4) |
//! | 4 | CRC-32 of every byte before it |
//!
//! [`Twin::load`] checks the magic, the version (a different one is refused, saying which this
//! haptwin reads), the checksum (a corrupt file is refused before anything is parsed), the
//! counts against the header, and every index against its range. Loading a 20,000-tet twin
//! takes a few milliseconds: one read, one CRC pass, straight copies.

use std::path::{Path, PathBuf};

use nalgebra::Vector3;

use super::materials::LabelMaterial;
use super::provenance::Provenance;
use super::tets::{QualityReport, TwinMesh};

/// The magic bytes at the start of every `.twin` file.
pub const MAGIC: [u8; 8] = *b"HAPTWIN\x1a";
/// The format version this haptwin writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The fine surface of a twin, embedded in its tets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TwinSurface {
    /// Vertices at rest, patient frame, metres.
    pub vertices_m: Vec<[f32; 3]>,
    /// Triangles, counter-clockwise from outside.
    pub triangles: Vec<[u32; 3]>,
    /// The label each triangle bounds.
    pub triangle_labels: Vec<u8>,
    /// The tet each vertex moves with.
    pub vertex_tets: Vec<u32>,
    /// Its barycentric coordinates in that tet.
    pub vertex_barycentric: Vec<[f32; 4]>,
}

/// What `.twin`'s JSON header holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TwinHeader {
    /// Where it came from (no identity).
    pub provenance: Provenance,
    /// Material of each label present.
    pub materials: Vec<LabelMaterial>,
    /// The mesh's quality.
    pub quality: QualityReport,
    /// Particles.
    pub particles: u64,
    /// Tets.
    pub tets: u64,
    /// Surface vertices.
    pub surface_vertices: u64,
    /// Surface triangles.
    pub surface_triangles: u64,
    /// haptwin version that wrote it.
    pub software_version: String,
}

/// A digital twin.
#[derive(Debug, Clone, PartialEq)]
pub struct Twin {
    /// Provenance, materials, quality.
    pub header: TwinHeader,
    /// The simulation mesh.
    pub mesh: TwinMesh,
    /// The render surface.
    pub surface: TwinSurface,
}

/// Why a `.twin` file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TwinFileError {
    /// It could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// It does not start with the magic bytes.
    #[error("{path} is not a haptwin twin (no HAPTWIN magic)")]
    NotATwin { path: PathBuf },
    /// It was written in another format version.
    #[error("{path} is a version {found} twin; this haptwin reads version {FORMAT_VERSION} (rebuild it with `haptwin twin build`)")]
    Version { path: PathBuf, found: u32 },
    /// Its checksum does not match its contents.
    #[error("{path} is corrupt: checksum {stored:08x} stored, {computed:08x} computed")]
    Checksum {
        path: PathBuf,
        stored: u32,
        computed: u32,
    },
    /// It ends early.
    #[error("{path} is truncated: {what} runs past the end of the file")]
    Truncated { path: PathBuf, what: &'static str },
    /// Its contents contradict each other.
    #[error("{path} is inconsistent: {what}")]
    Inconsistent { path: PathBuf, what: String },
}

fn put_array<T: Copy, const N: usize>(
    out: &mut Vec<u8>,
    items: &[T],
    bytes: impl Fn(T) -> [u8; N],
) {
    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
    out.reserve(items.len() * N);
    for &x in items {
        out.extend_from_slice(&bytes(x));
    }
}

impl Twin {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("a twin header always serializes");
        let mut out = Vec::with_capacity(64 + header.len() + self.mesh.tets.len() * 60);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        let m = &self.mesh;
        put_array(&mut out, &m.rest_positions_m, |p: Vector3<f64>| {
            let mut b = [0u8; 24];
            for a in 0..3 {
                b[8 * a..8 * a + 8].copy_from_slice(&p[a].to_le_bytes());
            }
            b
        });
        put_array(&mut out, &m.tets, |t: [u32; 4]| {
            let mut b = [0u8; 16];
            for a in 0..4 {
                b[4 * a..4 * a + 4].copy_from_slice(&t[a].to_le_bytes());
            }
            b
        });
        put_array(&mut out, &m.tet_labels, |l: u8| [l]);
        let s = &self.surface;
        put_array(&mut out, &s.vertices_m, |p: [f32; 3]| {
            let mut b = [0u8; 12];
            for a in 0..3 {
                b[4 * a..4 * a + 4].copy_from_slice(&p[a].to_le_bytes());
            }
            b
        });
        put_array(&mut out, &s.triangles, |t: [u32; 3]| {
            let mut b = [0u8; 12];
            for a in 0..3 {
                b[4 * a..4 * a + 4].copy_from_slice(&t[a].to_le_bytes());
            }
            b
        });
        put_array(&mut out, &s.triangle_labels, |l: u8| [l]);
        put_array(&mut out, &s.vertex_tets, |t: u32| t.to_le_bytes());
        put_array(&mut out, &s.vertex_barycentric, |w: [f32; 4]| {
            let mut b = [0u8; 16];
            for a in 0..4 {
                b[4 * a..4 * a + 4].copy_from_slice(&w[a].to_le_bytes());
            }
            b
        });
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Writes the file (through a temporary file renamed into place: a crash never leaves a
    /// half-written twin under the name).
    pub fn save(&self, path: &Path) -> Result<(), TwinFileError> {
        let io = |source| TwinFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("twin.partial");
        std::fs::write(&tmp, self.to_bytes()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Self, TwinFileError> {
        let bytes = std::fs::read(path).map_err(|source| TwinFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses and checks a file's bytes (`path` names it in errors).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, TwinFileError> {
        let p = || path.to_path_buf();
        if bytes.len() < 8 || bytes[..8] != MAGIC {
            return Err(TwinFileError::NotATwin { path: p() });
        }
        let truncated = |what| TwinFileError::Truncated { path: p(), what };
        if bytes.len() < 16 {
            return Err(truncated("the version"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(TwinFileError::Version {
                path: p(),
                found: version,
            });
        }
        if bytes.len() < 20 {
            return Err(truncated("the checksum"));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes(tail.try_into().expect("4 bytes"));
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(TwinFileError::Checksum {
                path: p(),
                stored,
                computed,
            });
        }
        let header_len = u32::from_le_bytes(body[12..16].try_into().expect("4 bytes")) as usize;
        let mut at = 16usize;
        let header_bytes = body
            .get(at..at.saturating_add(header_len))
            .ok_or_else(|| truncated("the header"))?;
        at += header_len;
        let header: TwinHeader =
            serde_json::from_slice(header_bytes).map_err(|e| TwinFileError::Inconsistent {
                path: p(),
                what: format!("the header does not parse: {e}"),
            })?;
        let mut array = |what: &'static str, size: usize| -> Result<&[u8], TwinFileError> {
            let n = body
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                .ok_or(TwinFileError::Truncated { path: p(), what })?;
            at += 8;
            let len = usize::try_from(n)
                .ok()
                .and_then(|n| n.checked_mul(size))
                .ok_or(TwinFileError::Truncated { path: p(), what })?;
            let data = body
                .get(at..at.saturating_add(len))
                .ok_or(TwinFileError::Truncated { path: p(), what })?;
            at += len;
            Ok(data)
        };
        let f64s = |b: &[u8]| -> Vec<f64> {
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect()
        };
        let u32s = |b: &[u8]| -> Vec<u32> {
            b.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        };
        let f32s = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        };
        let positions: Vec<Vector3<f64>> = f64s(array("the rest positions", 24)?)
            .chunks_exact(3)
            .map(|c| Vector3::new(c[0], c[1], c[2]))
            .collect();
        let tets: Vec<[u32; 4]> = u32s(array("the tets", 16)?)
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect();
        let tet_labels = array("the tet labels", 1)?.to_vec();
        let vertices: Vec<[f32; 3]> = f32s(array("the surface vertices", 12)?)
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        let triangles: Vec<[u32; 3]> = u32s(array("the surface triangles", 12)?)
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        let triangle_labels = array("the triangle labels", 1)?.to_vec();
        let vertex_tets = u32s(array("the vertex tets", 4)?);
        let vertex_barycentric: Vec<[f32; 4]> = f32s(array("the barycentric coordinates", 16)?)
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect();
        let inconsistent = |what: String| TwinFileError::Inconsistent { path: p(), what };
        if at != body.len() {
            return Err(inconsistent(format!(
                "{} bytes after the last array",
                body.len() - at
            )));
        }
        let counts = [
            (positions.len(), header.particles, "particles"),
            (tets.len(), header.tets, "tets"),
            (tet_labels.len(), header.tets, "tet labels"),
            (vertices.len(), header.surface_vertices, "surface vertices"),
            (
                triangles.len(),
                header.surface_triangles,
                "surface triangles",
            ),
            (
                triangle_labels.len(),
                header.surface_triangles,
                "triangle labels",
            ),
            (vertex_tets.len(), header.surface_vertices, "vertex tets"),
            (
                vertex_barycentric.len(),
                header.surface_vertices,
                "barycentric coordinates",
            ),
        ];
        for (n, want, what) in counts {
            if n as u64 != want {
                return Err(inconsistent(format!("{n} {what}, the header says {want}")));
            }
        }
        if let Some(t) = tets
            .iter()
            .position(|t| t.iter().any(|&q| q as usize >= positions.len()))
        {
            return Err(inconsistent(format!(
                "tet {t} names a particle out of range"
            )));
        }
        if let Some(t) = triangles
            .iter()
            .position(|t| t.iter().any(|&v| v as usize >= vertices.len()))
        {
            return Err(inconsistent(format!(
                "triangle {t} names a vertex out of range"
            )));
        }
        if let Some(v) = vertex_tets.iter().position(|&t| t as usize >= tets.len()) {
            return Err(inconsistent(format!("vertex {v} names a tet out of range")));
        }
        if !positions.iter().all(|p| p.iter().all(|v| v.is_finite())) {
            return Err(inconsistent("a rest position is not finite".into()));
        }
        let labels_present: Vec<u8> = header.materials.iter().map(|m| m.label).collect();
        if let Some(t) = tet_labels.iter().position(|l| !labels_present.contains(l)) {
            return Err(inconsistent(format!(
                "tet {t} has label {} with no material",
                tet_labels[t]
            )));
        }
        if let Some(m) = header.materials.iter().find_map(|m| m.problem()) {
            return Err(inconsistent(format!("a material is invalid: {m}")));
        }
        let cell_m = header.quality.cell_m;
        Ok(Twin {
            header,
            mesh: TwinMesh {
                rest_positions_m: positions,
                tets,
                tet_labels,
                cell_m,
            },
            surface: TwinSurface {
                vertices_m: vertices,
                triangles,
                triangle_labels,
                vertex_tets,
                vertex_barycentric,
            },
        })
    }
}
