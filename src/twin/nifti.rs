//! NIfTI-1 import and export (`.nii`, `.nii.gz`), label maps, and resampling of a label map onto
//! an image's grid.
//!
//! This module owns haptwin's NIfTI reader and writer. It is a small reader of its own (the
//! 348-byte NIfTI-1 header, `flate2` for gzip), so that every way a file can be wrong ends in a
//! named [`NiftiError`] that names the file, never in a panic or an unbounded allocation.
//!
//! Contract of the reader ([`read_nifti`], [`read_nifti_with`], [`read_label_nifti`]):
//! - Byte order from `sizeof_hdr` (348 either way round); gzip detected by its magic bytes, not
//!   the file name. NIfTI-2 (540-byte header), NIfTI pairs (`.hdr`/`.img`) and Analyze files are
//!   refused by name.
//! - Datatypes uint8, int8, int16, uint16, int32, float32 and float64; the others (complex, RGB,
//!   64-bit integers, float128, binary) are refused by name. Values are scaled by
//!   `scl_slope`/`scl_inter` when the slope is non-zero; a non-finite voxel is refused.
//! - Placement: the sform when `sform_code > 0` (a sheared sform falls back to the qform when
//!   `qform_code > 0`, and is refused otherwise), else the qform when `qform_code > 0`, else the
//!   spec's "method 1" fallback (`pixdim` scaling, identity axes, origin at zero: not an
//!   anatomical placement). NIfTI's RAS frame becomes haptwin's LPS frame (x and y negated);
//!   millimetres (or the units of `xyzt_units`) become metres. The axes are re-orthonormalised
//!   (polar decomposition) to remove the float32 rounding of the file.
//! - 4-D (and higher) images: refused with [`NiftiError::MultiVolume`] unless
//!   [`ImportOptions::first_volume_of_4d`] asks for the first volume; [`NiftiImport`] then says
//!   how many volumes the file held.
//! - Identity: the header's free-text fields (`data_type`, `db_name`, `descrip`, `aux_file`,
//!   `intent_name`) and all header extensions (which may carry a whole DICOM header) are never
//!   copied anywhere; the provenance's de-identification method is [`DEIDENTIFICATION_METHOD`]
//!   and counts what was dropped. The case id is a random pseudonym (`case-` and 12 hex digits
//!   from the operating system's random source) unless the options give one.
//!
//! The writer ([`write_nifti`]) writes float32 scalar volumes and uint8 label volumes,
//! little-endian, gzip when the name ends in `.gz`, with the sform and the qform both set (LPS
//! turned back into RAS, millimetres), so that a round trip gives the same grid (to float32
//! rounding, well under 1e-6 m) and the same voxels.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use nalgebra::{Matrix3, Vector3};

use super::provenance::{Deidentification, Provenance};
use super::volume::{Grid, LabelVolume, ScalarVolume, Volume, VolumeError};

/// The provenance's de-identification method for NIfTI imports.
pub const DEIDENTIFICATION_METHOD: &str = "NIfTI header text fields dropped";

/// The largest image the reader accepts, in voxels of one volume (2^31: a 1290^3 image).
pub const MAX_VOXELS: usize = 1 << 31;

const HEADER_LEN: usize = 348;
/// Where the voxels start in the files written here (header and the 4-byte extension flag).
const WRITE_VOX_OFFSET: usize = 352;
/// `NIFTI_INTENT_LABEL`: what label maps are marked with.
const INTENT_LABEL: i16 = 1002;
/// `NIFTI_XFORM_SCANNER_ANAT`.
const XFORM_SCANNER: i16 = 1;

/// Why a NIfTI file is refused or cannot be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NiftiError {
    /// The file cannot be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file ends before what its header announces.
    #[error("{path}: truncated: the {what} needs {need} bytes, the file has {have}")]
    Truncated {
        path: PathBuf,
        what: &'static str,
        need: u64,
        have: u64,
    },
    /// The gzip stream is corrupt.
    #[error("{path}: corrupt gzip stream: {source}")]
    Gzip {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `sizeof_hdr` is neither 348 nor 540 in either byte order: not a NIfTI file.
    #[error(
        "{path}: not a NIfTI-1 file: sizeof_hdr is {value} (348 expected, in either byte order)"
    )]
    BadSizeofHdr { path: PathBuf, value: i32 },
    /// A NIfTI-2 file (540-byte header).
    #[error("{path}: NIfTI-2 (540-byte header) is not supported; save it as NIfTI-1")]
    Nifti2 { path: PathBuf },
    /// The magic is not `n+1`: an Analyze 7.5 file or a NIfTI pair.
    #[error("{path}: magic {magic:?} is not \"n+1\": {what} is not supported; save it as a single .nii or .nii.gz")]
    BadMagic {
        path: PathBuf,
        magic: [u8; 4],
        what: &'static str,
    },
    /// The dimensions are impossible.
    #[error("{path}: bad dimensions dim = {dim:?}: {why}")]
    BadDims {
        path: PathBuf,
        dim: [i16; 8],
        why: &'static str,
    },
    /// More voxels than [`MAX_VOXELS`].
    #[error("{path}: {voxels} voxels in a volume is over the limit of {limit}")]
    TooLarge {
        path: PathBuf,
        voxels: u128,
        limit: usize,
    },
    /// A datatype this reader does not take.
    #[error("{path}: datatype {code} ({name}) is not supported (uint8, int8, int16, uint16, int32, float32 or float64)")]
    UnsupportedDatatype {
        path: PathBuf,
        code: i16,
        name: &'static str,
    },
    /// A voxel spacing is zero or not finite.
    #[error("{path}: bad voxel spacing {spacing:?} (pixdim or the sform's columns)")]
    BadSpacing { path: PathBuf, spacing: [f64; 3] },
    /// `vox_offset` is not a whole number of bytes at or after the header.
    #[error("{path}: bad vox_offset {value}")]
    BadVoxOffset { path: PathBuf, value: f32 },
    /// The sform or qform cannot place the grid.
    #[error("{path}: bad orientation: {why}")]
    BadOrientation { path: PathBuf, why: String },
    /// `scl_slope` / `scl_inter` are not finite.
    #[error("{path}: bad scaling scl_slope = {slope}, scl_inter = {inter}")]
    BadScaling {
        path: PathBuf,
        slope: f32,
        inter: f32,
    },
    /// A voxel is NaN or infinite (after scaling).
    #[error("{path}: voxel {index} is not finite ({value})")]
    NonFinite {
        path: PathBuf,
        index: usize,
        value: f64,
    },
    /// A 4-D (or higher) image, and the options did not ask for its first volume.
    #[error("{path}: {volumes} volumes (dim = {dim:?}); a 4-D image is refused unless its first volume is asked for (ImportOptions::first_volume_of_4d)")]
    MultiVolume {
        path: PathBuf,
        dim: [i16; 8],
        volumes: u128,
    },
    /// A label map holds a value that is not an integer in `0..=255`.
    #[error("{path}: label value {value} at voxel {index} is not an integer in 0..=255")]
    LabelValue {
        path: PathBuf,
        index: usize,
        value: f64,
    },
    /// The grid read (or to be written) is not a valid grid.
    #[error("{path}: {source}")]
    Grid {
        path: PathBuf,
        #[source]
        source: VolumeError,
    },
    /// The volume cannot be written as NIfTI-1 (a dimension over 32767).
    #[error("{path}: cannot write: {why}")]
    Unwritable { path: PathBuf, why: String },
    /// The operating system's random source failed (for the case id).
    #[error("cannot draw a random case id: {0}")]
    Random(String),
}

/// How to import a NIfTI file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The pseudonymous case id to use; a random `case-xxxxxxxxxxxx` when `None`.
    pub case_id: Option<String>,
    /// The modality, when the caller knows it (NIfTI does not say): `"CT"` makes the intensity
    /// unit `"HU"`. `None` gives `"unknown"` and `"arbitrary"`.
    pub modality: Option<String>,
    /// Take the first volume of a 4-D image instead of refusing it.
    pub first_volume_of_4d: bool,
}

/// What [`read_nifti_with`] gives back.
#[derive(Debug, Clone, PartialEq)]
pub struct NiftiImport {
    /// The (first) volume, patient frame (LPS, metres).
    pub volume: ScalarVolume,
    /// Its provenance (no text of the header).
    pub provenance: Provenance,
    /// Volumes the file held (1 for a 3-D image).
    pub volumes_in_file: u128,
    /// Non-empty free-text header fields dropped.
    pub text_fields_dropped: u32,
    /// Header extensions dropped.
    pub extensions_dropped: u32,
    /// Which transform placed the grid.
    pub placement: Placement,
}

/// Which of the header's transforms placed the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// The sform (`sform_code > 0`).
    Sform,
    /// The qform (`qform_code > 0`, and no usable sform).
    Qform,
    /// Neither: `pixdim` only, identity axes, origin at zero.
    PixdimOnly,
}

/// Reads a 3-D NIfTI-1 image (`.nii` or `.nii.gz`) as intensities in the patient frame, with a
/// random case id. 4-D images are refused ([`NiftiError::MultiVolume`]).
pub fn read_nifti(path: impl AsRef<Path>) -> Result<(ScalarVolume, Provenance), NiftiError> {
    read_nifti_with(path, &ImportOptions::default()).map(|i| (i.volume, i.provenance))
}

/// Reads a NIfTI-1 image with options (case id, modality, first volume of a 4-D image).
pub fn read_nifti_with(
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<NiftiImport, NiftiError> {
    let path = path.as_ref();
    let raw = load(path, options.first_volume_of_4d)?;
    let data = convert(&raw, path, |index, v| {
        let f = v as f32;
        if f.is_finite() {
            Ok(f)
        } else {
            Err(NiftiError::NonFinite {
                path: path.to_owned(),
                index,
                value: v,
            })
        }
    })?;
    let volume = Volume::new(raw.grid.clone(), data).map_err(|source| NiftiError::Grid {
        path: path.to_owned(),
        source,
    })?;
    let case_id = match &options.case_id {
        Some(id) => id.clone(),
        None => random_case_id()?,
    };
    let modality = options
        .modality
        .clone()
        .unwrap_or_else(|| "unknown".to_owned());
    let intensity_unit = if modality.eq_ignore_ascii_case("CT") {
        "HU"
    } else {
        "arbitrary"
    };
    let provenance = Provenance {
        case_id,
        source_format: "nifti".to_owned(),
        modality,
        transfer_syntax: None,
        files: 1,
        grid: raw.grid.clone(),
        intensity_unit: intensity_unit.to_owned(),
        deidentification: Deidentification {
            method: DEIDENTIFICATION_METHOD.to_owned(),
            codes: Vec::new(),
            elements_changed: raw.text_fields + raw.extensions,
        },
        software_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    Ok(NiftiImport {
        volume,
        provenance,
        volumes_in_file: raw.volumes,
        text_fields_dropped: raw.text_fields,
        extensions_dropped: raw.extensions,
        placement: raw.placement,
    })
}

/// Reads a 3-D label map: every voxel (after scaling) must be an integer in `0..=255`
/// ([`NiftiError::LabelValue`] names the first that is not). The values are kept as they are;
/// whether they mean haptwin's [`super::labels::Label`]s is the caller's mapping.
pub fn read_label_nifti(path: impl AsRef<Path>) -> Result<LabelVolume, NiftiError> {
    let path = path.as_ref();
    let raw = load(path, false)?;
    let data = convert(&raw, path, |index, v| {
        if v.fract() == 0.0 && (0.0..=255.0).contains(&v) {
            Ok(v as u8)
        } else {
            Err(NiftiError::LabelValue {
                path: path.to_owned(),
                index,
                value: v,
            })
        }
    })?;
    Volume::new(raw.grid, data).map_err(|source| NiftiError::Grid {
        path: path.to_owned(),
        source,
    })
}

/// A random pseudonymous case id, `case-` and 12 hex digits (48 bits from the OS).
pub fn random_case_id() -> Result<String, NiftiError> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| NiftiError::Random(e.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("case-{hex}"))
}

/// A voxel type the writer can store.
pub trait NiftiVoxel: Copy {
    /// NIfTI datatype code.
    const DATATYPE: i16;
    /// Bits per voxel.
    const BITPIX: i16;
    /// NIfTI intent code (0: none; label maps: `NIFTI_INTENT_LABEL`).
    const INTENT: i16;
    /// Appends the little-endian bytes.
    fn put_le(self, out: &mut Vec<u8>);
}

impl NiftiVoxel for f32 {
    const DATATYPE: i16 = 16;
    const BITPIX: i16 = 32;
    const INTENT: i16 = 0;
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NiftiVoxel for u8 {
    const DATATYPE: i16 = 2;
    const BITPIX: i16 = 8;
    const INTENT: i16 = INTENT_LABEL;
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}

/// Writes a volume as NIfTI-1: float32 for a [`ScalarVolume`], uint8 (intent "label") for a
/// [`LabelVolume`]; gzip when the name ends in `.gz`. Sform and qform are both set (code 1,
/// scanner), millimetres, RAS; the text fields are left empty.
pub fn write_nifti<T: NiftiVoxel>(
    volume: &Volume<T>,
    path: impl AsRef<Path>,
) -> Result<(), NiftiError> {
    let path = path.as_ref();
    let grid = &volume.grid;
    grid.validate().map_err(|source| NiftiError::Grid {
        path: path.to_owned(),
        source,
    })?;
    if volume.data.len() != grid.len() {
        return Err(NiftiError::Grid {
            path: path.to_owned(),
            source: VolumeError::Length {
                dims: grid.dims,
                want: grid.len(),
                got: volume.data.len(),
            },
        });
    }
    let mut dims16 = [0i16; 3];
    for (d16, &d) in dims16.iter_mut().zip(&grid.dims) {
        *d16 = i16::try_from(d).map_err(|_| NiftiError::Unwritable {
            path: path.to_owned(),
            why: format!("dimension {d} is over NIfTI-1's 32767"),
        })?;
    }

    // LPS metres -> RAS millimetres.
    let flip = Matrix3::from_diagonal(&Vector3::new(-1.0, -1.0, 1.0));
    let dir = orthonormalize(grid.direction_matrix());
    let ras = flip * dir;
    let origin = flip * Vector3::from(grid.origin_m) * 1000.0;
    let spacing_mm: [f64; 3] = std::array::from_fn(|a| grid.spacing_m[a] * 1000.0);

    let mut h = vec![0u8; WRITE_VOX_OFFSET];
    let put_i16 = |h: &mut [u8], at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 = |h: &mut [u8], at: usize, v: f32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    h[0..4].copy_from_slice(&(HEADER_LEN as i32).to_le_bytes());
    h[38] = b'r'; // "regular", as Analyze readers expect
    put_i16(&mut h, 40, 3);
    for (a, &d) in dims16.iter().enumerate() {
        put_i16(&mut h, 42 + 2 * a, d);
    }
    for a in 3..7 {
        put_i16(&mut h, 42 + 2 * a, 1);
    }
    put_i16(&mut h, 68, T::INTENT);
    put_i16(&mut h, 70, T::DATATYPE);
    put_i16(&mut h, 72, T::BITPIX);

    // The qform: a rotation and qfac = det sign.
    let mut rot = ras;
    let qfac = if rot.determinant() < 0.0 {
        for r in 0..3 {
            rot[(r, 2)] = -rot[(r, 2)];
        }
        -1.0
    } else {
        1.0
    };
    let [qa, qb, qc, qd] = quaternion_from_rotation(&rot);
    debug_assert!(qa >= 0.0);
    put_f32(&mut h, 76, qfac as f32);
    for (a, &s) in spacing_mm.iter().enumerate() {
        put_f32(&mut h, 80 + 4 * a, s as f32);
    }
    for a in 3..7 {
        put_f32(&mut h, 80 + 4 * a, 1.0);
    }
    put_f32(&mut h, 108, WRITE_VOX_OFFSET as f32);
    put_f32(&mut h, 112, 1.0); // scl_slope
    put_f32(&mut h, 116, 0.0); // scl_inter
    h[123] = 2; // xyzt_units: millimetres
    put_i16(&mut h, 252, XFORM_SCANNER);
    put_i16(&mut h, 254, XFORM_SCANNER);
    for (n, v) in [qb, qc, qd].into_iter().enumerate() {
        put_f32(&mut h, 256 + 4 * n, v as f32);
    }
    for a in 0..3 {
        put_f32(&mut h, 268 + 4 * a, origin[a] as f32);
    }
    for r in 0..3 {
        for c in 0..3 {
            put_f32(
                &mut h,
                280 + 16 * r + 4 * c,
                (ras[(r, c)] * spacing_mm[c]) as f32,
            );
        }
        put_f32(&mut h, 280 + 16 * r + 12, origin[r] as f32);
    }
    h[344..348].copy_from_slice(b"n+1\0");
    // Bytes 348..352: the extension flag, zero (no extensions).

    let mut body = Vec::with_capacity(volume.data.len() * (T::BITPIX as usize / 8));
    for &v in &volume.data {
        v.put_le(&mut body);
    }

    let io = |source| NiftiError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if gz {
        let mut enc =
            flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        enc.write_all(&h).map_err(io)?;
        enc.write_all(&body).map_err(io)?;
        let mut w = enc.finish().map_err(io)?;
        w.flush().map_err(io)?;
    } else {
        let mut w = BufWriter::new(file);
        w.write_all(&h).map_err(io)?;
        w.write_all(&body).map_err(io)?;
        w.flush().map_err(io)?;
    }
    Ok(())
}

/// A label map on `onto`'s grid: each voxel of `onto` takes the label of the nearest voxel
/// centre of `labels` at the same patient-frame position (nearest neighbour; a position outside
/// `labels`' grid is background, 0). Ties (exactly half-way) go to the higher index.
pub fn resample_labels(labels: &LabelVolume, onto: &Grid) -> LabelVolume {
    let src = &labels.grid;
    // Source voxel coordinate of target voxel (i, j, k) = base + i * di + j * dj + k * dk.
    let to_src = |p: Vector3<f64>| Vector3::from(src.patient_to_voxel(p));
    let base = to_src(onto.voxel_to_patient([0.0, 0.0, 0.0]));
    let di = to_src(onto.voxel_to_patient([1.0, 0.0, 0.0])) - base;
    let dj = to_src(onto.voxel_to_patient([0.0, 1.0, 0.0])) - base;
    let dk = to_src(onto.voxel_to_patient([0.0, 0.0, 1.0])) - base;
    let [nx, ny, nz] = onto.dims;
    let [sx, sy, sz] = src.dims.map(|d| d as f64);
    let mut out = Vec::with_capacity(onto.len());
    for k in 0..nz {
        for j in 0..ny {
            let row = base + dj * j as f64 + dk * k as f64;
            for i in 0..nx {
                let p = row + di * i as f64;
                let (x, y, z) = (
                    (p.x + 0.5).floor(),
                    (p.y + 0.5).floor(),
                    (p.z + 0.5).floor(),
                );
                let inside = x >= 0.0 && y >= 0.0 && z >= 0.0 && x < sx && y < sy && z < sz;
                out.push(if inside {
                    labels.data[src.index(x as usize, y as usize, z as usize)]
                } else {
                    0
                });
            }
        }
    }
    Volume {
        grid: onto.clone(),
        data: out,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// A datatype the reader takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Datatype {
    U8,
    I8,
    I16,
    U16,
    I32,
    F32,
    F64,
}

impl Datatype {
    fn from_code(code: i16) -> Result<Datatype, &'static str> {
        Ok(match code {
            2 => Datatype::U8,
            256 => Datatype::I8,
            4 => Datatype::I16,
            512 => Datatype::U16,
            8 => Datatype::I32,
            16 => Datatype::F32,
            64 => Datatype::F64,
            0 => return Err("unknown"),
            1 => return Err("binary"),
            32 => return Err("complex64"),
            128 => return Err("rgb24"),
            768 => return Err("uint32"),
            1024 => return Err("int64"),
            1280 => return Err("uint64"),
            1536 => return Err("float128"),
            1792 => return Err("complex128"),
            2048 => return Err("complex256"),
            2304 => return Err("rgba32"),
            _ => return Err("not a NIfTI datatype"),
        })
    }

    fn size(self) -> usize {
        match self {
            Datatype::U8 | Datatype::I8 => 1,
            Datatype::I16 | Datatype::U16 => 2,
            Datatype::I32 | Datatype::F32 => 4,
            Datatype::F64 => 8,
        }
    }
}

/// The header fields the reader uses, and the voxel bytes of the first volume.
struct Raw {
    grid: Grid,
    datatype: Datatype,
    big_endian: bool,
    slope: f64,
    inter: f64,
    bytes: Vec<u8>,
    volumes: u128,
    text_fields: u32,
    extensions: u32,
    placement: Placement,
}

/// Reads `buf.len()` bytes; `Ok(n)` with `n < buf.len()` at the end of the stream.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(m) => n += m,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn load(path: &Path, first_volume_of_4d: bool) -> Result<Raw, NiftiError> {
    let p = || path.to_owned();
    let io = |source| NiftiError::Io { path: p(), source };
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut reader, &mut magic).map_err(io)?;
    // Put the two bytes back in front of the rest.
    let head = std::io::Cursor::new(magic[..got].to_vec());
    let gz = got == 2 && magic == [0x1f, 0x8b];
    let mut stream: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(head.chain(reader)))
    } else {
        Box::new(head.chain(reader))
    };
    // Errors inside a gzip stream are the stream's fault; plain reads are I/O errors.
    let read_err = |source: std::io::Error| {
        if gz {
            NiftiError::Gzip { path: p(), source }
        } else {
            NiftiError::Io { path: p(), source }
        }
    };
    // What the file can hold (unknown for gzip: checked as the bytes come).
    let have = |n: usize| if gz { n as u64 } else { file_len };

    let mut hdr = [0u8; HEADER_LEN];
    let n = read_up_to(&mut stream, &mut hdr).map_err(read_err)?;
    if n < HEADER_LEN {
        // A 540-byte NIfTI-2 header still starts with its size: say what it is.
        if n >= 4 && is_nifti2(&hdr) {
            return Err(NiftiError::Nifti2 { path: p() });
        }
        return Err(NiftiError::Truncated {
            path: p(),
            what: "header",
            need: HEADER_LEN as u64,
            have: have(n),
        });
    }
    let le = i32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
    let be = i32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
    let big = match (le, be) {
        (348, _) => false,
        (_, 348) => true,
        _ if is_nifti2(&hdr) => return Err(NiftiError::Nifti2 { path: p() }),
        _ => {
            return Err(NiftiError::BadSizeofHdr {
                path: p(),
                value: le,
            })
        }
    };
    let i16_at = |at: usize| {
        let b = [hdr[at], hdr[at + 1]];
        if big {
            i16::from_be_bytes(b)
        } else {
            i16::from_le_bytes(b)
        }
    };
    let f32_at = |at: usize| {
        let b = [hdr[at], hdr[at + 1], hdr[at + 2], hdr[at + 3]];
        if big {
            f32::from_be_bytes(b)
        } else {
            f32::from_le_bytes(b)
        }
    };

    let magic: [u8; 4] = [hdr[344], hdr[345], hdr[346], hdr[347]];
    match &magic {
        b"n+1\0" => {}
        b"ni1\0" => {
            return Err(NiftiError::BadMagic {
                path: p(),
                magic,
                what: "a NIfTI pair (.hdr/.img)",
            })
        }
        _ => {
            return Err(NiftiError::BadMagic {
                path: p(),
                magic,
                what: "an Analyze 7.5 file or an unknown format",
            })
        }
    }

    let dim: [i16; 8] = std::array::from_fn(|n| i16_at(40 + 2 * n));
    let bad_dims = |why| NiftiError::BadDims {
        path: p(),
        dim,
        why,
    };
    let ndim = dim[0];
    if !(1..=7).contains(&ndim) {
        return Err(bad_dims("dim[0] must be 1 to 7"));
    }
    let ndim = ndim as usize;
    if dim[1..=ndim].iter().any(|&d| d < 1) {
        return Err(bad_dims("a used dimension is zero or negative"));
    }
    let size = |a: usize| if a <= ndim { dim[a] as usize } else { 1 };
    let dims = [size(1), size(2), size(3)];
    let volumes: u128 = (4..=7).map(|a| size(a) as u128).product();
    let voxels = dims.iter().map(|&d| d as u128).product::<u128>();
    if voxels > MAX_VOXELS as u128 {
        return Err(NiftiError::TooLarge {
            path: p(),
            voxels,
            limit: MAX_VOXELS,
        });
    }
    let voxels = voxels as usize;
    if volumes > 1 && !first_volume_of_4d {
        return Err(NiftiError::MultiVolume {
            path: p(),
            dim,
            volumes,
        });
    }

    let code = i16_at(70);
    let datatype = Datatype::from_code(code).map_err(|name| NiftiError::UnsupportedDatatype {
        path: p(),
        code,
        name,
    })?;

    let pixdim: [f32; 8] = std::array::from_fn(|n| f32_at(76 + 4 * n));
    let vox_offset = f32_at(108);
    if !(vox_offset.is_finite() && vox_offset >= HEADER_LEN as f32 && vox_offset.fract() == 0.0)
        || vox_offset > 1.0e9
    {
        return Err(NiftiError::BadVoxOffset {
            path: p(),
            value: vox_offset,
        });
    }
    let vox_offset = vox_offset as usize;

    let (slope, inter) = (f32_at(112), f32_at(116));
    // A zero (or NaN) slope means "no scaling", as the standard and nibabel read it.
    let (slope, inter) = if slope == 0.0 || slope.is_nan() {
        (1.0, 0.0)
    } else if !(slope.is_finite() && inter.is_finite()) {
        return Err(NiftiError::BadScaling {
            path: p(),
            slope,
            inter,
        });
    } else {
        (slope as f64, inter as f64)
    };

    let unit_m = match hdr[123] & 0x07 {
        1 => 1.0,
        3 => 1e-6,
        _ => 1e-3, // 2 = mm, and 0 = unknown is taken as mm, as everyone does
    };
    let qform_code = i16_at(252);
    let sform_code = i16_at(254);
    let quatern = [f32_at(256), f32_at(260), f32_at(264)];
    let qoffset = [f32_at(268), f32_at(272), f32_at(276)];
    let srow: [[f32; 4]; 3] =
        std::array::from_fn(|r| std::array::from_fn(|c| f32_at(280 + 16 * r + 4 * c)));

    let (dir_ras, spacing, origin_ras, placement) = placement(
        path, ndim, &pixdim, qform_code, sform_code, quatern, qoffset, &srow,
    )?;
    let flip = Matrix3::from_diagonal(&Vector3::new(-1.0, -1.0, 1.0));
    let dir = flip * dir_ras;
    let origin = flip * origin_ras * unit_m;
    let mut direction = [[0.0; 3]; 3];
    for (r, row) in direction.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = dir[(r, c)];
        }
    }
    let grid = Grid {
        dims,
        spacing_m: spacing.map(|s| s * unit_m),
        origin_m: [origin.x, origin.y, origin.z],
        direction,
    };
    grid.validate()
        .map_err(|source| NiftiError::Grid { path: p(), source })?;

    // Free-text fields: data_type, db_name, descrip, aux_file, intent_name. Counted, never kept.
    let text_fields = [4..14, 14..32, 148..228, 228..252, 328..344]
        .into_iter()
        .filter(|r| hdr[r.clone()].iter().any(|&b| b != 0))
        .count() as u32;

    // Extensions (between the header and the voxels): counted, never kept.
    let ext_len = vox_offset - HEADER_LEN;
    let mut ext = Vec::new();
    let got = (&mut stream)
        .take(ext_len as u64)
        .read_to_end(&mut ext)
        .map_err(read_err)?;
    if got < ext_len {
        return Err(NiftiError::Truncated {
            path: p(),
            what: "header extensions",
            need: vox_offset as u64,
            have: have(HEADER_LEN + got),
        });
    }
    let extensions = count_extensions(&ext, big);

    let nbytes = voxels * datatype.size();
    let need = (vox_offset + nbytes) as u64;
    if !gz && file_len < need {
        return Err(NiftiError::Truncated {
            path: p(),
            what: "voxel data",
            need,
            have: file_len,
        });
    }
    let mut bytes = Vec::new();
    let got = stream
        .take(nbytes as u64)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if got < nbytes {
        return Err(NiftiError::Truncated {
            path: p(),
            what: "voxel data",
            need,
            have: have(vox_offset + got),
        });
    }
    Ok(Raw {
        grid,
        datatype,
        big_endian: big,
        slope,
        inter,
        bytes,
        volumes,
        text_fields,
        extensions,
        placement,
    })
}

fn is_nifti2(hdr: &[u8]) -> bool {
    let b = [hdr[0], hdr[1], hdr[2], hdr[3]];
    i32::from_le_bytes(b) == 540 || i32::from_be_bytes(b) == 540
}

/// Counts the header extensions (esize, ecode, data), stopping at anything malformed.
fn count_extensions(ext: &[u8], big: bool) -> u32 {
    if ext.len() < 4 || ext[0] == 0 {
        return 0;
    }
    let mut at = 4;
    let mut n = 0;
    while at + 8 <= ext.len() {
        let b = [ext[at], ext[at + 1], ext[at + 2], ext[at + 3]];
        let esize = if big {
            i32::from_be_bytes(b)
        } else {
            i32::from_le_bytes(b)
        };
        if esize < 8 {
            break;
        }
        n += 1;
        at = at.saturating_add(esize as usize);
    }
    n.max(1)
}

/// The grid's axes (RAS, columns), spacing (file units), origin (RAS, file units), and which
/// transform gave them.
type Placed = (Matrix3<f64>, [f64; 3], Vector3<f64>, Placement);

/// Places the grid from the header's transforms (see the module's contract).
#[allow(clippy::too_many_arguments)]
fn placement(
    path: &Path,
    ndim: usize,
    pixdim: &[f32; 8],
    qform_code: i16,
    sform_code: i16,
    quatern: [f32; 3],
    qoffset: [f32; 3],
    srow: &[[f32; 4]; 3],
) -> Result<Placed, NiftiError> {
    let bad = |why: String| NiftiError::BadOrientation {
        path: path.to_owned(),
        why,
    };
    // pixdim of the spatial axes; an axis past dim[0] may leave it 0: take 1.
    let zoom: [f64; 3] = std::array::from_fn(|a| {
        let z = pixdim[a + 1] as f64;
        if a + 1 > ndim && (z == 0.0 || !z.is_finite()) {
            1.0
        } else {
            z.abs()
        }
    });
    let zoom_ok = zoom.iter().all(|z| z.is_finite() && *z > 0.0);

    if sform_code > 0 {
        let m = Matrix3::from_fn(|r, c| srow[r][c] as f64);
        let t = Vector3::from_fn(|r, _| srow[r][3] as f64);
        if !(m.iter().all(|v| v.is_finite()) && t.iter().all(|v| v.is_finite())) {
            return Err(bad("the sform is not finite".to_owned()));
        }
        let norms: [f64; 3] = std::array::from_fn(|c| m.column(c).norm());
        if norms.iter().any(|n| !(n.is_finite() && *n > 0.0)) {
            return Err(NiftiError::BadSpacing {
                path: path.to_owned(),
                spacing: norms,
            });
        }
        let dir = Matrix3::from_fn(|r, c| m[(r, c)] / norms[c]);
        let shear = (dir.transpose() * dir - Matrix3::identity()).abs().max();
        if shear <= 1e-3 {
            return Ok((orthonormalize(dir), norms, t, Placement::Sform));
        }
        if qform_code <= 0 {
            return Err(bad(format!(
                "the sform's axes are sheared (|D'D - I| = {shear:.2e}) and there is no qform"
            )));
        }
        // A sheared sform cannot be a voxel grid: fall back to the qform, as ITK does.
    }
    if !zoom_ok {
        return Err(NiftiError::BadSpacing {
            path: path.to_owned(),
            spacing: zoom,
        });
    }
    if qform_code > 0 || sform_code > 0 {
        let [b, c, d] = quatern.map(|v| v as f64);
        let t = Vector3::new(qoffset[0] as f64, qoffset[1] as f64, qoffset[2] as f64);
        if !([b, c, d].iter().all(|v| v.is_finite()) && t.iter().all(|v| v.is_finite())) {
            return Err(bad("the qform is not finite".to_owned()));
        }
        let bcd2 = b * b + c * c + d * d;
        if bcd2 > 1.0 + 1e-3 {
            return Err(bad(format!(
                "the qform's quaternion (b, c, d) = ({b}, {c}, {d}) is longer than 1"
            )));
        }
        let (a, b, c, d) = if bcd2 >= 1.0 {
            let n = bcd2.sqrt();
            (0.0, b / n, c / n, d / n)
        } else {
            ((1.0 - bcd2).sqrt(), b, c, d)
        };
        let mut r = rotation_from_quaternion([a, b, c, d]);
        if pixdim[0] < 0.0 {
            for row in 0..3 {
                r[(row, 2)] = -r[(row, 2)];
            }
        }
        return Ok((orthonormalize(r), zoom, t, Placement::Qform));
    }
    Ok((
        Matrix3::identity(),
        zoom,
        Vector3::zeros(),
        Placement::PixdimOnly,
    ))
}

/// The nearest orthonormal matrix (polar decomposition), keeping a reflection as one.
fn orthonormalize(m: Matrix3<f64>) -> Matrix3<f64> {
    let svd = m.svd(true, true);
    match (svd.u, svd.v_t) {
        (Some(u), Some(v_t)) => u * v_t,
        _ => m,
    }
}

/// NIfTI's rotation from a unit quaternion `(a, b, c, d)`.
fn rotation_from_quaternion([a, b, c, d]: [f64; 4]) -> Matrix3<f64> {
    Matrix3::new(
        a * a + b * b - c * c - d * d,
        2.0 * (b * c - a * d),
        2.0 * (b * d + a * c),
        2.0 * (b * c + a * d),
        a * a + c * c - b * b - d * d,
        2.0 * (c * d - a * b),
        2.0 * (b * d - a * c),
        2.0 * (c * d + a * b),
        a * a + d * d - c * c - b * b,
    )
}

/// The unit quaternion `(a, b, c, d)`, `a >= 0`, of a proper rotation.
fn quaternion_from_rotation(r: &Matrix3<f64>) -> [f64; 4] {
    let (r00, r11, r22) = (r[(0, 0)], r[(1, 1)], r[(2, 2)]);
    let trace = r00 + r11 + r22;
    let q = if trace > 0.0 {
        let s = 0.5 / (trace + 1.0).sqrt();
        [
            0.25 / s,
            (r[(2, 1)] - r[(1, 2)]) * s,
            (r[(0, 2)] - r[(2, 0)]) * s,
            (r[(1, 0)] - r[(0, 1)]) * s,
        ]
    } else if r00 > r11 && r00 > r22 {
        let s = 2.0 * (1.0 + r00 - r11 - r22).sqrt();
        [
            (r[(2, 1)] - r[(1, 2)]) / s,
            0.25 * s,
            (r[(0, 1)] + r[(1, 0)]) / s,
            (r[(0, 2)] + r[(2, 0)]) / s,
        ]
    } else if r11 > r22 {
        let s = 2.0 * (1.0 + r11 - r00 - r22).sqrt();
        [
            (r[(0, 2)] - r[(2, 0)]) / s,
            (r[(0, 1)] + r[(1, 0)]) / s,
            0.25 * s,
            (r[(1, 2)] + r[(2, 1)]) / s,
        ]
    } else {
        let s = 2.0 * (1.0 + r22 - r00 - r11).sqrt();
        [
            (r[(1, 0)] - r[(0, 1)]) / s,
            (r[(0, 2)] + r[(2, 0)]) / s,
            (r[(1, 2)] + r[(2, 1)]) / s,
            0.25 * s,
        ]
    };
    let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
    let sign = if q[0] < 0.0 { -1.0 } else { 1.0 };
    q.map(|v| sign * v / n)
}

/// Converts the raw bytes (scaled) voxel by voxel with `f`.
fn convert<T>(
    raw: &Raw,
    _path: &Path,
    mut f: impl FnMut(usize, f64) -> Result<T, NiftiError>,
) -> Result<Vec<T>, NiftiError> {
    let (slope, inter) = (raw.slope, raw.inter);
    let scaled = |v: f64| v * slope + inter;
    let big = raw.big_endian;
    let mut out = Vec::with_capacity(raw.bytes.len() / raw.datatype.size());
    macro_rules! each {
        ($t:ty, $n:expr) => {
            for (index, c) in raw.bytes.chunks_exact($n).enumerate() {
                let mut b = [0u8; $n];
                b.copy_from_slice(c);
                let v = if big {
                    <$t>::from_be_bytes(b)
                } else {
                    <$t>::from_le_bytes(b)
                };
                out.push(f(index, scaled(v as f64))?);
            }
        };
    }
    match raw.datatype {
        Datatype::U8 => each!(u8, 1),
        Datatype::I8 => each!(i8, 1),
        Datatype::I16 => each!(i16, 2),
        Datatype::U16 => each!(u16, 2),
        Datatype::I32 => each!(i32, 4),
        Datatype::F32 => each!(f32, 4),
        Datatype::F64 => each!(f64, 8),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quaternions_round_trip_including_half_turns() {
        let turns = [
            Matrix3::identity(),
            Matrix3::from_diagonal(&Vector3::new(-1.0, -1.0, 1.0)),
            Matrix3::from_diagonal(&Vector3::new(1.0, -1.0, -1.0)),
            Matrix3::from_diagonal(&Vector3::new(-1.0, 1.0, -1.0)),
            nalgebra::Rotation3::from_euler_angles(0.3, -1.2, 2.9).into_inner(),
            nalgebra::Rotation3::from_euler_angles(3.1, 0.01, -3.0).into_inner(),
        ];
        for r in turns {
            let q = quaternion_from_rotation(&r);
            assert!(q[0] >= 0.0);
            let back = rotation_from_quaternion(q);
            assert!((back - r).abs().max() < 1e-12, "{r} -> {q:?} -> {back}");
        }
    }

    #[test]
    fn random_case_ids_look_right_and_differ() {
        let a = random_case_id().unwrap();
        let b = random_case_id().unwrap();
        assert_eq!(a.len(), 17);
        assert!(a.starts_with("case-"));
        assert!(a[5..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn every_refused_datatype_has_a_name() {
        for code in [0, 1, 32, 128, 768, 1024, 1280, 1536, 1792, 2048, 2304, 7] {
            assert!(Datatype::from_code(code).is_err());
        }
        assert_eq!(Datatype::from_code(64), Ok(Datatype::F64));
    }
}
