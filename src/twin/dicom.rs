//! DICOM import (a folder or a list of files to one [`ScalarVolume`] in the patient frame) and
//! export (a volume to a CT series).
//!
//! This module owns reading DICOM files, grouping them into series, ordering and checking the
//! slices, mapping them onto a [`Grid`] and rescaling to Hounsfield units, and writing a CT
//! series back ([`write_series`]).
//!
//! Contract of [`read_series`] / [`read_files`]:
//! - every dataset is de-identified ([`super::deid`]) as soon as it is parsed, before anything
//!   else looks at it; what comes back ([`ImportedSeries`]) holds the volume, a [`Provenance`]
//!   with a pseudonymous case id, and counts: nothing identifying;
//! - errors ([`DicomError`]) name the file (its path) and never hold patient data; a series is
//!   named by a short keyed hash;
//! - files with or without the 128-byte preamble, and data sets without a meta group (implicit
//!   or explicit VR), are read; DICOMDIR index files, files without pixel data and (in a folder)
//!   non-DICOM files are skipped and counted;
//! - transfer syntaxes: native (implicit / explicit little endian, explicit big endian),
//!   deflate, JPEG baseline and lossless, RLE, JPEG 2000; anything else is refused by name
//!   ([`DicomError::UnsupportedTransferSyntax`]); images flagged `BurnedInAnnotation = YES`
//!   are refused, colour images too;
//! - slices are ordered along the slice normal (row × column direction of
//!   ImageOrientationPatient) by ImagePositionPatient; a stack that does not run along the
//!   normal (gantry tilt), a gap of more than 1.5 × the median step (missing slice), duplicate
//!   positions and irregular steps are errors; so are slices that disagree on size, pixel
//!   spacing or orientation;
//! - the grid: origin = the first slice's position, direction columns = row direction, column
//!   direction, normal; spacing `[column spacing, row spacing, slice step]` (PixelSpacing holds
//!   the row spacing first), metres;
//! - values: the modality LUT (RescaleSlope / RescaleIntercept) is applied; HU for CT,
//!   `"arbitrary"` otherwise. One file (single- or multi-frame) is a volume of its frames
//!   (step along `k`: GridFrameOffsetVector, SpacingBetweenSlices, SliceThickness or 1 mm).
//!
//! Nothing here panics on file content: malformed input is an error (third-party decoders run
//! under `catch_unwind` as a last guard).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicom_core::header::HasLength;
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{FileDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use nalgebra::Vector3;

use super::deid::{Deidentifier, PseudonymKey};
use super::provenance::Provenance;
use super::volume::{Grid, ScalarVolume};

/// Why a DICOM import or export failed. Every variant names the file or folder concerned;
/// none holds patient data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DicomError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not DICOM (no `DICM` magic, no recognisable data set).
    #[error("{}: not a DICOM file", file.display())]
    NotDicom {
        /// The file.
        file: PathBuf,
    },
    /// The file looks like DICOM but could not be parsed (truncated, corrupt).
    #[error("{}: unreadable DICOM: {reason}", file.display())]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// What the parser said (no element values).
        reason: String,
    },
    /// The pixel data is encoded in a transfer syntax this build cannot decode.
    #[error("{}: unsupported transfer syntax {name} ({uid})", file.display())]
    UnsupportedTransferSyntax {
        /// The file.
        file: PathBuf,
        /// The transfer syntax UID.
        uid: String,
        /// Its name.
        name: String,
    },
    /// The image says it has text burned into its pixels (BurnedInAnnotation = YES), which
    /// de-identification by tags cannot remove.
    #[error(
        "{}: refused: BurnedInAnnotation is YES (identifying text in the pixels cannot be removed)",
        file.display()
    )]
    BurnedInAnnotation {
        /// The file.
        file: PathBuf,
    },
    /// The image is of a kind that cannot be a scalar volume (colour, odd bit depth, ...).
    #[error("{}: unsupported image: {reason}", file.display())]
    UnsupportedImage {
        /// The file.
        file: PathBuf,
        /// What is unsupported.
        reason: String,
    },
    /// The pixel data could not be decoded or is shorter than the image.
    #[error("{}: bad pixel data: {reason}", file.display())]
    PixelData {
        /// The file.
        file: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An attribute needed to place the image is missing.
    #[error("{}: missing {attribute}", file.display())]
    MissingAttribute {
        /// The file.
        file: PathBuf,
        /// The attribute's keyword.
        attribute: &'static str,
    },
    /// An attribute has an unusable value.
    #[error("{}: bad {attribute}: {reason}", file.display())]
    BadAttribute {
        /// The file.
        file: PathBuf,
        /// The attribute's keyword.
        attribute: &'static str,
        /// Why (geometry only, never patient data).
        reason: String,
    },
    /// A slice disagrees with the first slice of its series.
    #[error("{}: {attribute} differs from the first slice's ({reason})", file.display())]
    Inconsistent {
        /// The file.
        file: PathBuf,
        /// The attribute's keyword.
        attribute: &'static str,
        /// The values (geometry only).
        reason: String,
    },
    /// No image was found.
    #[error("{}: no DICOM image found ({skipped} files skipped)", path.display())]
    NoImages {
        /// The folder (or first file) read.
        path: PathBuf,
        /// Files skipped (not DICOM, index files, no pixel data).
        skipped: usize,
    },
    /// More than one series, and none picked.
    #[error(
        "{}: {} series found, pick one: {}",
        path.display(),
        series.len(),
        series.iter().map(|(s, n)| format!("{s} ({n} slices)")).collect::<Vec<_>>().join(", ")
    )]
    MultipleSeries {
        /// The folder.
        path: PathBuf,
        /// Short series ids and their slice counts.
        series: Vec<(String, usize)>,
    },
    /// The series asked for is not there.
    #[error(
        "{}: no series {wanted}; found: {}",
        path.display(),
        found.iter().map(|(s, n)| format!("{s} ({n} slices)")).collect::<Vec<_>>().join(", ")
    )]
    SeriesNotFound {
        /// The folder.
        path: PathBuf,
        /// The id asked for.
        wanted: String,
        /// Short series ids and their slice counts.
        found: Vec<(String, usize)>,
    },
    /// The slices do not stack along their normal (a tilted gantry or a sheared stack).
    #[error(
        "{}: gantry tilt: the slices stack {angle_deg:.2} degrees off their normal",
        file.display()
    )]
    GantryTilt {
        /// The slice where the deviation was largest.
        file: PathBuf,
        /// Angle between the stacking direction and the slice normal, degrees.
        angle_deg: f64,
    },
    /// A gap of more than 1.5 × the median slice step: a slice is missing.
    #[error(
        "missing slice between {} and {}: gap {gap_mm:.3} mm, step {step_mm:.3} mm",
        before.display(),
        after.display()
    )]
    MissingSlice {
        /// The slice before the gap.
        before: PathBuf,
        /// The slice after the gap.
        after: PathBuf,
        /// The gap, millimetres.
        gap_mm: f64,
        /// The median step, millimetres.
        step_mm: f64,
    },
    /// Two slices at the same position.
    #[error("{} and {} are at the same position", first.display(), second.display())]
    DuplicatePosition {
        /// One slice.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// Slice steps vary (more than 10 % from the median, less than a missing slice).
    #[error(
        "irregular slice spacing between {} and {}: {step_mm:.3} mm against a median of {median_mm:.3} mm",
        first.display(),
        second.display()
    )]
    IrregularSpacing {
        /// The slice before the step.
        first: PathBuf,
        /// The slice after.
        second: PathBuf,
        /// The step, millimetres.
        step_mm: f64,
        /// The median step, millimetres.
        median_mm: f64,
    },
    /// The pseudonym key could not be had.
    #[error("pseudonym key: {0}")]
    Key(#[from] super::deid::KeyError),
    /// The volume could not be built or written (bad grid, too large).
    #[error("{}: {reason}", path.display())]
    Volume {
        /// The folder or file concerned.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

type Result<T, E = DicomError> = std::result::Result<T, E>;

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The series to take when a folder holds several: its short id (as an error lists
    /// them), or a unique prefix of it.
    pub series: Option<String>,
    /// The pseudonym key; `None`: the installation key ([`PseudonymKey::installation`]).
    pub pseudonym_key: Option<PseudonymKey>,
}

/// Files skipped during an import, by reason (counts only: no names).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// DICOMDIR index files.
    pub dicomdir: u32,
    /// Files that are not DICOM.
    pub not_dicom: u32,
    /// DICOM files without pixel data (reports, plans, structure sets).
    pub without_pixels: u32,
    /// Slices of other series in the folder.
    pub other_series: u32,
}

/// An imported, de-identified series: the volume, its provenance, and counts. Holds nothing
/// identifying.
#[derive(Debug, Clone)]
pub struct ImportedSeries {
    /// The intensities (HU for CT) on the patient-frame grid.
    pub volume: ScalarVolume,
    /// Where it came from (pseudonymous).
    pub provenance: Provenance,
    /// The series' short id (keyed hash; what `ImportOptions::series` takes).
    pub series_id: String,
    /// Slices (frames) in the volume.
    pub slices: usize,
    /// Files skipped.
    pub skipped: Skipped,
    /// Remarks for the user (no names, no paths).
    pub notes: Vec<String>,
}

/// How to write a series.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// `(slope, intercept)` of the stored int16 values; `None`: slope 1, intercept -1024 when
    /// the values fit, else a slope that fits them.
    pub rescale: Option<(f64, f64)>,
    /// The StudyInstanceUID to use; `None`: a fresh one.
    pub study_uid: Option<String>,
    /// SeriesNumber.
    pub series_number: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            rescale: None,
            study_uid: None,
            series_number: 1,
        }
    }
}

/// Transfer syntaxes this build decodes (the registry's features: native, deflate, JPEG
/// baseline / lossless, RLE, JPEG 2000).
const SUPPORTED_TS: &[&str] = &[
    "1.2.840.10008.1.2",      // implicit VR little endian
    "1.2.840.10008.1.2.1",    // explicit VR little endian
    "1.2.840.10008.1.2.1.99", // deflated explicit VR little endian
    "1.2.840.10008.1.2.2",    // explicit VR big endian
    "1.2.840.10008.1.2.4.50", // JPEG baseline (8 bit)
    "1.2.840.10008.1.2.4.57", // JPEG lossless
    "1.2.840.10008.1.2.4.70", // JPEG lossless SV1
    "1.2.840.10008.1.2.4.90", // JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91", // JPEG 2000
    "1.2.840.10008.1.2.5",    // RLE lossless
];

const DICOMDIR_CLASS: &str = "1.2.840.10008.1.3.10";
const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
const SECONDARY_CAPTURE_ROOT: &str = "1.2.840.10008.5.1.4.1.1.7";

fn trim_uid(s: &str) -> &str {
    s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// A transfer syntax's name (the registry's, else a few well-known ones).
pub fn transfer_syntax_name(uid: &str) -> String {
    let uid = trim_uid(uid);
    if let Some(ts) = TransferSyntaxRegistry.get(uid) {
        return ts.name().to_string();
    }
    match uid {
        "1.2.840.10008.1.2.4.51" => "JPEG Extended (Process 2 & 4)",
        "1.2.840.10008.1.2.4.80" => "JPEG-LS Lossless",
        "1.2.840.10008.1.2.4.81" => "JPEG-LS Lossy (Near-Lossless)",
        "1.2.840.10008.1.2.4.100" | "1.2.840.10008.1.2.4.101" => "MPEG-2",
        "1.2.840.10008.1.2.4.102" | "1.2.840.10008.1.2.4.103" => "MPEG-4 AVC/H.264",
        _ => "unknown transfer syntax",
    }
    .to_string()
}

/// One image file, read and de-identified, with what the volume needs.
#[derive(Debug)]
struct Slice {
    file: PathBuf,
    series_uid: String,
    case_id: String,
    modality: String,
    ts_name: String,
    rows: usize,
    cols: usize,
    frames: usize,
    pixel_spacing: Option<[f64; 2]>,
    orientation: Option<[f64; 6]>,
    position: Option<[f64; 3]>,
    slice_thickness: Option<f64>,
    spacing_between: Option<f64>,
    frame_offsets: Option<Vec<f64>>,
    data: Vec<f32>,
}

/// What one file turned out to be.
enum Loaded {
    Image(Box<Slice>),
    DicomDir,
    NoPixels,
    NotDicom,
}

/// Imports the one series in `dir` (recursively; see the module doc for the contract).
pub fn read_series(dir: &Path, opts: &ImportOptions) -> Result<ImportedSeries> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    import(dir, &files, false, opts, &read_file)
}

/// Imports the one series in `files`; here a file that is not DICOM is an error.
pub fn read_files(files: &[PathBuf], opts: &ImportOptions) -> Result<ImportedSeries> {
    let path = files.first().cloned().unwrap_or_default();
    import(&path, files, true, opts, &read_file)
}

/// Imports one file held in memory (`name` is what errors call it); not DICOM is an error.
pub fn read_bytes(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<ImportedSeries> {
    let files = [name.to_path_buf()];
    import(name, &files, true, opts, &|_| Ok(bytes.to_vec()))
}

fn read_file(file: &Path) -> Result<Vec<u8>> {
    std::fs::read(file).map_err(|source| DicomError::Io {
        path: file.to_path_buf(),
        source,
    })
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| DicomError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let ft = entry.file_type().map_err(io)?;
        let p = entry.path();
        if ft.is_dir() {
            collect_files(&p, out)?;
        } else if ft.is_file() || (ft.is_symlink() && p.is_file()) {
            out.push(p);
        }
    }
    Ok(())
}

fn import(
    path: &Path,
    files: &[PathBuf],
    strict: bool,
    opts: &ImportOptions,
    read: &dyn Fn(&Path) -> Result<Vec<u8>>,
) -> Result<ImportedSeries> {
    let key = match &opts.pseudonym_key {
        Some(k) => k.clone(),
        None => PseudonymKey::installation()?,
    };
    let mut deid = Deidentifier::new(key.clone());
    let mut skipped = Skipped::default();
    let mut notes = Vec::new();
    let mut unflagged_sc = 0u32;
    let mut by_series: BTreeMap<String, Vec<Slice>> = BTreeMap::new();
    for file in files {
        match load_file(file, read(file)?, &mut deid, &mut unflagged_sc)? {
            Loaded::Image(s) => by_series.entry(s.series_uid.clone()).or_default().push(*s),
            Loaded::DicomDir => skipped.dicomdir += 1,
            Loaded::NoPixels => skipped.without_pixels += 1,
            Loaded::NotDicom if strict => return Err(DicomError::NotDicom { file: file.clone() }),
            Loaded::NotDicom => skipped.not_dicom += 1,
        }
    }
    let n_skipped = (skipped.dicomdir + skipped.not_dicom + skipped.without_pixels) as usize;
    if by_series.is_empty() {
        return Err(DicomError::NoImages {
            path: path.to_path_buf(),
            skipped: n_skipped,
        });
    }
    let ids: Vec<(String, String, usize)> = by_series
        .iter()
        .map(|(uid, s)| {
            (
                format!("s{}", key.short_id("haptwin-series", uid)),
                uid.clone(),
                s.iter().map(|s| s.frames).sum(),
            )
        })
        .collect();
    let listing = || {
        ids.iter()
            .map(|(s, _, n)| (s.clone(), *n))
            .collect::<Vec<_>>()
    };
    let (series_id, uid) = match &opts.series {
        Some(want) => {
            let w = want.trim().trim_start_matches('s');
            let hits: Vec<_> = ids
                .iter()
                .filter(|(s, _, _)| !w.is_empty() && s[1..].starts_with(w))
                .collect();
            match hits.as_slice() {
                [one] => (one.0.clone(), one.1.clone()),
                _ => {
                    return Err(DicomError::SeriesNotFound {
                        path: path.to_path_buf(),
                        wanted: want.clone(),
                        found: listing(),
                    })
                }
            }
        }
        None if ids.len() == 1 => (ids[0].0.clone(), ids[0].1.clone()),
        None => {
            return Err(DicomError::MultipleSeries {
                path: path.to_path_buf(),
                series: listing(),
            })
        }
    };
    let mut slices = by_series.remove(&uid).unwrap_or_default();
    skipped.other_series = by_series.values().map(|v| v.len() as u32).sum();
    if skipped.dicomdir > 0 {
        notes.push(format!(
            "{} DICOMDIR index file(s) skipped",
            skipped.dicomdir
        ));
    }
    if skipped.not_dicom > 0 {
        notes.push(format!("{} non-DICOM file(s) skipped", skipped.not_dicom));
    }
    if skipped.without_pixels > 0 {
        notes.push(format!(
            "{} DICOM file(s) without pixel data skipped",
            skipped.without_pixels
        ));
    }
    if skipped.other_series > 0 {
        notes.push(format!(
            "{} file(s) of other series skipped",
            skipped.other_series
        ));
    }
    if unflagged_sc > 0 {
        notes.push(format!(
            "{unflagged_sc} secondary capture(s) without BurnedInAnnotation: the pixels may hold \
             identifying text"
        ));
    }
    let (grid, data) = assemble(path, &mut slices, &mut notes)?;
    let first = &slices[0];
    let modality = first.modality.clone();
    let volume = ScalarVolume::new(grid.clone(), data).map_err(|e| DicomError::Volume {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let provenance = Provenance {
        case_id: first.case_id.clone(),
        source_format: "dicom".into(),
        intensity_unit: if modality == "CT" { "HU" } else { "arbitrary" }.into(),
        modality,
        transfer_syntax: Some(first.ts_name.clone()),
        files: slices.len() as u32,
        grid,
        deidentification: deid.summary(),
        software_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    Ok(ImportedSeries {
        slices: volume.grid.dims[2],
        volume,
        provenance,
        series_id,
        skipped,
        notes,
    })
}

/// Opens and de-identifies one file (with or without preamble or meta group), nothing more:
/// for tools that need the de-identified data set itself. `Ok(None)`: not DICOM.
pub fn open_deidentified(
    file: &Path,
    deid: &mut Deidentifier,
) -> Result<Option<FileDicomObject<InMemDicomObject>>> {
    let bytes = std::fs::read(file).map_err(|source| DicomError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    Ok(parse(file, &bytes)?.map(|mut obj| {
        deid.apply(&mut obj);
        obj
    }))
}

/// Opens, de-identifies and decodes one file.
fn load_file(
    file: &Path,
    bytes: Vec<u8>,
    deid: &mut Deidentifier,
    unflagged_sc: &mut u32,
) -> Result<Loaded> {
    let mut obj = match parse(file, &bytes) {
        Ok(Some(o)) => o,
        Ok(None) => return Ok(Loaded::NotDicom),
        Err(_) if is_dicomdir(&bytes) => return Ok(Loaded::DicomDir),
        Err(e) => return Err(e),
    };
    // De-identification at the door: nothing below sees the original data set.
    let outcome = deid.apply(&mut obj);
    drop(bytes);

    if trim_uid(&obj.meta().media_storage_sop_class_uid) == DICOMDIR_CLASS
        || obj.get(tags::DIRECTORY_RECORD_SEQUENCE).is_some()
    {
        return Ok(Loaded::DicomDir);
    }
    if obj.get(tags::PIXEL_DATA).is_none() {
        return Ok(Loaded::NoPixels);
    }
    let burned = obj
        .get(tags::BURNED_IN_ANNOTATION)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().to_ascii_uppercase());
    if burned.as_deref() == Some("YES") {
        return Err(DicomError::BurnedInAnnotation {
            file: file.to_path_buf(),
        });
    }
    let sop_class = obj
        .get(tags::SOP_CLASS_UID)
        .and_then(|e| e.to_str().ok())
        .map(|s| trim_uid(&s).to_string())
        .unwrap_or_else(|| trim_uid(&obj.meta().media_storage_sop_class_uid).to_string());
    if sop_class.starts_with(SECONDARY_CAPTURE_ROOT) && burned.is_none() {
        *unflagged_sc += 1;
    }
    let ts_uid = trim_uid(&obj.meta().transfer_syntax).to_string();
    let ts_name = transfer_syntax_name(&ts_uid);
    if !SUPPORTED_TS.contains(&ts_uid.as_str())
        || !TransferSyntaxRegistry
            .get(&ts_uid)
            .is_some_and(|t| t.can_decode_all())
    {
        return Err(DicomError::UnsupportedTransferSyntax {
            file: file.to_path_buf(),
            uid: ts_uid,
            name: ts_name,
        });
    }

    let us = |tag: Tag, name: &'static str| -> Result<Option<u32>> {
        match obj.get(tag) {
            None => Ok(None),
            Some(e) => e
                .to_int::<u32>()
                .map(Some)
                .map_err(|_| DicomError::BadAttribute {
                    file: file.to_path_buf(),
                    attribute: name,
                    reason: "not an integer".into(),
                }),
        }
    };
    let missing = |attribute| DicomError::MissingAttribute {
        file: file.to_path_buf(),
        attribute,
    };
    let rows = us(tags::ROWS, "Rows")?.ok_or_else(|| missing("Rows"))? as usize;
    let cols = us(tags::COLUMNS, "Columns")?.ok_or_else(|| missing("Columns"))? as usize;
    let samples = us(tags::SAMPLES_PER_PIXEL, "SamplesPerPixel")?.unwrap_or(1);
    let bits =
        us(tags::BITS_ALLOCATED, "BitsAllocated")?.ok_or_else(|| missing("BitsAllocated"))?;
    let frames = match obj.get(tags::NUMBER_OF_FRAMES) {
        None => 1,
        Some(e) => e
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| DicomError::BadAttribute {
                file: file.to_path_buf(),
                attribute: "NumberOfFrames",
                reason: "not a positive integer".into(),
            })? as usize,
    };
    if rows == 0 || cols == 0 {
        return Err(DicomError::BadAttribute {
            file: file.to_path_buf(),
            attribute: "Rows/Columns",
            reason: format!("{rows} x {cols}"),
        });
    }
    if samples != 1 {
        return Err(DicomError::UnsupportedImage {
            file: file.to_path_buf(),
            reason: format!("{samples} samples per pixel (colour): not a scalar image"),
        });
    }
    if !matches!(bits, 8 | 16) {
        return Err(DicomError::UnsupportedImage {
            file: file.to_path_buf(),
            reason: format!("{bits} bits allocated (8 or 16 are decoded)"),
        });
    }
    let want = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(frames))
        .filter(|n| *n <= 1 << 31)
        .ok_or_else(|| DicomError::BadAttribute {
            file: file.to_path_buf(),
            attribute: "Rows/Columns/NumberOfFrames",
            reason: "too many pixels".into(),
        })?;
    if let Some(len) = native_pixel_len(&obj) {
        let need = want * (bits as usize / 8);
        if len < need {
            return Err(DicomError::PixelData {
                file: file.to_path_buf(),
                reason: format!("{len} bytes of pixel data, {need} needed"),
            });
        }
    }
    let data = decode(file, &obj)?;
    if data.len() < want {
        return Err(DicomError::PixelData {
            file: file.to_path_buf(),
            reason: format!("{} pixels decoded, {want} expected", data.len()),
        });
    }
    let mut data = data;
    data.truncate(want);

    let floats = |tag: Tag, name: &'static str, n: usize| -> Result<Option<Vec<f64>>> {
        let Some(e) = obj.get(tag) else {
            return Ok(None);
        };
        let bad = |reason: String| DicomError::BadAttribute {
            file: file.to_path_buf(),
            attribute: name,
            reason,
        };
        if e.value().primitive().is_some_and(|p| p.is_empty()) {
            return Ok(None);
        }
        let v = e
            .to_multi_float64()
            .map_err(|_| bad("not a list of numbers".into()))?;
        if v.len() < n || v.iter().any(|x| !x.is_finite()) {
            return Err(bad(format!(
                "{} finite values expected, {} found",
                n,
                v.len()
            )));
        }
        Ok(Some(v))
    };
    let pixel_spacing = floats(tags::PIXEL_SPACING, "PixelSpacing", 2)?
        .or(floats(tags::IMAGER_PIXEL_SPACING, "ImagerPixelSpacing", 2)?)
        .map(|v| [v[0], v[1]]);
    if let Some(ps) = pixel_spacing {
        if !(ps[0] > 0.0 && ps[1] > 0.0) {
            return Err(DicomError::BadAttribute {
                file: file.to_path_buf(),
                attribute: "PixelSpacing",
                reason: format!("{ps:?} mm"),
            });
        }
    }
    let orientation = floats(
        tags::IMAGE_ORIENTATION_PATIENT,
        "ImageOrientationPatient",
        6,
    )?
    .map(|v| std::array::from_fn(|i| v[i]));
    let position = floats(tags::IMAGE_POSITION_PATIENT, "ImagePositionPatient", 3)?
        .map(|v| [v[0], v[1], v[2]]);
    let positive = |v: Option<Vec<f64>>| v.map(|v| v[0]).filter(|x| *x > 0.0);
    let slice_thickness = positive(floats(tags::SLICE_THICKNESS, "SliceThickness", 1)?);
    let spacing_between = positive(floats(
        tags::SPACING_BETWEEN_SLICES,
        "SpacingBetweenSlices",
        1,
    )?);
    let frame_offsets = if frames > 1 {
        floats(
            tags::GRID_FRAME_OFFSET_VECTOR,
            "GridFrameOffsetVector",
            frames,
        )?
    } else {
        None
    };
    let modality = obj
        .get(tags::MODALITY)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 16
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .unwrap_or_else(|| "unknown".into());
    let series_uid = obj
        .get(tags::SERIES_INSTANCE_UID)
        .and_then(|e| e.to_str().ok())
        .map(|s| trim_uid(&s).to_string())
        .unwrap_or_default();
    Ok(Loaded::Image(Box::new(Slice {
        file: file.to_path_buf(),
        series_uid,
        case_id: outcome.case_id,
        modality,
        ts_name,
        rows,
        cols,
        frames,
        pixel_spacing,
        orientation,
        position,
        slice_thickness,
        spacing_between,
        frame_offsets,
        data,
    })))
}

/// The byte length of native (not encapsulated) pixel data.
fn native_pixel_len(obj: &InMemDicomObject) -> Option<usize> {
    let p = obj.get(tags::PIXEL_DATA)?.value().primitive()?;
    Some(p.calculate_byte_len())
}

/// Whether the bytes are a DICOMDIR (by its meta group's SOP class; read even when the
/// directory records themselves are broken).
fn is_dicomdir(bytes: &[u8]) -> bool {
    let start = if bytes.get(128..132) == Some(b"DICM") {
        132
    } else if bytes.get(0..4) == Some(b"DICM") {
        4
    } else {
        return false;
    };
    walk_meta(&bytes[start..]).is_ok_and(|m| m.sop_class == DICOMDIR_CLASS)
}

/// Decodes the pixel data to modality values (rescale applied), all frames.
fn decode(file: &Path, obj: &FileDicomObject<InMemDicomObject>) -> Result<Vec<f32>> {
    let run = || -> std::result::Result<Vec<f32>, String> {
        let decoded = obj.decode_pixel_data().map_err(|e| e.to_string())?;
        decoded
            .to_vec_with_options::<f32>(&dicom_pixeldata::ConvertOptions::new())
            .map_err(|e| e.to_string())
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(reason)) => Err(DicomError::PixelData {
            file: file.to_path_buf(),
            reason,
        }),
        Err(_) => Err(DicomError::PixelData {
            file: file.to_path_buf(),
            reason: "the decoder failed on malformed data".into(),
        }),
    }
}

/// Parses a file's bytes: with or without the 128-byte preamble, or a bare data set without
/// a meta group. `Ok(None)`: not DICOM at all.
fn parse(file: &Path, bytes: &[u8]) -> Result<Option<FileDicomObject<InMemDicomObject>>> {
    let corrupt = |reason: String| DicomError::Corrupt {
        file: file.to_path_buf(),
        reason,
    };
    let start = if bytes.get(128..132) == Some(b"DICM") {
        Some(128)
    } else if bytes.get(0..4) == Some(b"DICM") {
        Some(0)
    } else {
        None
    };
    let run = || -> std::result::Result<Option<FileDicomObject<InMemDicomObject>>, String> {
        if let Some(start) = start {
            check_file_lengths(&bytes[start + 4..])?;
            let obj = OpenFileOptions::new()
                .read_preamble(ReadPreamble::Never)
                .from_reader(&bytes[start..])
                .map_err(|e| e.to_string())?;
            return Ok(Some(obj));
        }
        // No meta group: sniff the first element (group 0008, little or big endian, explicit
        // VR letters or not).
        let Some(head) = bytes.get(0..8) else {
            return Ok(None);
        };
        let le_group = u16::from_le_bytes([head[0], head[1]]);
        let be_group = u16::from_be_bytes([head[0], head[1]]);
        let explicit = head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase();
        let ts_uid = if le_group == 0x0008 {
            if explicit {
                "1.2.840.10008.1.2.1"
            } else {
                "1.2.840.10008.1.2"
            }
        } else if be_group == 0x0008 && explicit {
            "1.2.840.10008.1.2.2"
        } else {
            return Ok(None);
        };
        let Some(ts) = TransferSyntaxRegistry.get(ts_uid) else {
            return Ok(None);
        };
        if check_lengths(bytes, ts_uid != "1.2.840.10008.1.2", be_group == 0x0008, 0).is_err() {
            return Ok(None);
        }
        let ds = InMemDicomObject::read_dataset_with_ts(bytes, ts).map_err(|e| e.to_string())?;
        if ds.get(tags::SOP_CLASS_UID).is_none() && ds.get(tags::PIXEL_DATA).is_none() {
            return Ok(None);
        }
        let obj = ds
            .with_meta(FileMetaTableBuilder::new().transfer_syntax(ts_uid))
            .map_err(|e| e.to_string())?;
        Ok(Some(obj))
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(o)) => Ok(o),
        // With the magic it is DICOM, only broken; without, it is not DICOM.
        Ok(Err(reason)) if start.is_some() => Err(corrupt(reason)),
        Ok(Err(_)) => Ok(None),
        Err(_) => Err(corrupt("the parser failed on malformed data".into())),
    }
}

/// What the walk over a meta group found.
struct MetaWalk {
    /// Where the data set starts (bytes after `DICM`).
    end: usize,
    transfer_syntax: String,
    sop_class: String,
}

/// Walks the meta group (explicit VR little endian, group 0002; `meta_and_data` starts after
/// `DICM`), checking each length against the bytes there are and the group length against
/// the elements.
fn walk_meta(meta_and_data: &[u8]) -> std::result::Result<MetaWalk, String> {
    let mut pos = 0;
    let mut group_len = None;
    let (mut ts, mut class) = (String::new(), String::new());
    while let Some(h) = meta_and_data.get(pos..pos + 8) {
        let elem = u16::from_le_bytes([h[2], h[3]]);
        if u16::from_le_bytes([h[0], h[1]]) != 0x0002 {
            break;
        }
        let (head, len) = explicit_header(h, meta_and_data.get(pos + 8..pos + 12), false)
            .ok_or("truncated meta group")?;
        let end = pos
            .checked_add(head + len)
            .filter(|p| *p <= meta_and_data.len())
            .ok_or("meta element length beyond the end of the file")?;
        let value = &meta_and_data[pos + head..end];
        let text = || trim_uid(&String::from_utf8_lossy(value)).to_string();
        match elem {
            0x0000 if len == 4 => {
                group_len = Some(u32::from_le_bytes([value[0], value[1], value[2], value[3]]))
            }
            0x0002 => class = text(),
            0x0010 => ts = text(),
            _ => {}
        }
        pos = end;
    }
    if let Some(g) = group_len {
        if pos < 12 || g as usize != pos - 12 {
            return Err("the meta group's length disagrees with its elements".into());
        }
    }
    Ok(MetaWalk {
        end: pos,
        transfer_syntax: ts,
        sop_class: class,
    })
}

/// Checks the declared lengths of a file's elements (meta group, then data set) against the
/// bytes there are, before the parser sees them: the parser allocates what a length declares,
/// so a corrupt length would cost gigabytes. `meta_and_data` starts after `DICM`.
fn check_file_lengths(meta_and_data: &[u8]) -> std::result::Result<(), String> {
    let meta = walk_meta(meta_and_data)?;
    let data = &meta_and_data[meta.end..];
    match meta.transfer_syntax.as_str() {
        "1.2.840.10008.1.2" => check_lengths(data, false, false, 0),
        "1.2.840.10008.1.2.2" => check_lengths(data, true, true, 0),
        "1.2.840.10008.1.2.1.99" => Ok(()), // deflated: bounded by inflating
        _ => check_lengths(data, true, false, 0),
    }
}

/// Header size and value length of an explicit-VR element whose first 8 bytes are `h`.
fn explicit_header(h: &[u8], next4: Option<&[u8]>, big: bool) -> Option<(usize, usize)> {
    // As the parser reads them: the short-form VRs (PS3.5 7.1.2) take a 16-bit length,
    // everything else (unknown VRs included, read as UN) a 32-bit one.
    let short = matches!(
        &h[4..6],
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    );
    if !short {
        let l = next4?;
        let l = [l[0], l[1], l[2], l[3]];
        Some((
            12,
            if big {
                u32::from_be_bytes(l)
            } else {
                u32::from_le_bytes(l)
            } as usize,
        ))
    } else {
        let l = [h[6], h[7]];
        Some((
            8,
            if big {
                u16::from_be_bytes(l)
            } else {
                u16::from_le_bytes(l)
            } as usize,
        ))
    }
}

/// Walks element and item headers, checking every defined length against the bytes left.
fn check_lengths(
    data: &[u8],
    explicit: bool,
    big: bool,
    depth: u32,
) -> std::result::Result<(), String> {
    const UNDEFINED: usize = 0xFFFF_FFFF;
    if depth > 64 {
        return Err("sequences nested too deep".into());
    }
    let u16at = |b: &[u8], i: usize| {
        let x = [b[i], b[i + 1]];
        if big {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        }
    };
    let u32at = |b: &[u8], i: usize| {
        let x = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        (if big {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        }) as usize
    };
    let mut pos = 0usize;
    while let Some(h) = data.get(pos..pos + 8) {
        let (group, elem) = (u16at(h, 0), u16at(h, 2));
        let (head, len, is_sq) = if group == 0xFFFE {
            (8, u32at(h, 4), elem == 0xE000)
        } else if explicit {
            let (head, len) =
                explicit_header(h, data.get(pos + 8..pos + 12), big).ok_or("truncated header")?;
            (head, len, &h[4..6] == b"SQ")
        } else {
            (8, u32at(h, 4), false)
        };
        let fragments = group != 0xFFFE
            && if explicit {
                &h[4..6] != b"SQ"
            } else {
                (group, elem) == (0x7FE0, 0x0010)
            };
        if len == UNDEFINED && explicit && &h[4..6] == b"UN" {
            // A sequence encoded as implicit VR inside (PS3.5 6.2.2): beyond this guard.
            return Ok(());
        }
        if len == UNDEFINED && fragments {
            // Encapsulated pixel data: items of raw bytes up to the sequence delimiter.
            pos += head;
            while let Some(f) = data.get(pos..pos + 8) {
                let (fe, flen) = (u16at(f, 2), u32at(f, 4));
                if u16at(f, 0) != 0xFFFE {
                    return Err("bad pixel data fragment".into());
                }
                pos = pos
                    .checked_add(8 + if fe == 0xE000 { flen } else { 0 })
                    .filter(|e| *e <= data.len())
                    .ok_or_else(|| format!("pixel data fragment declares {flen} bytes"))?;
                if fe == 0xE0DD {
                    break;
                }
            }
            continue;
        }
        if len == UNDEFINED {
            // A sequence or item of undefined length: its contents follow inline.
            pos += head;
            continue;
        }
        let end = pos
            .checked_add(head)
            .and_then(|p| p.checked_add(len))
            .filter(|e| *e <= data.len())
            .ok_or_else(|| {
                format!(
                    "element ({group:04X},{elem:04X}) declares {len} bytes, {} remain",
                    data.len().saturating_sub(pos + head)
                )
            })?;
        if is_sq {
            check_lengths(&data[pos + head..end], explicit, big, depth + 1)?;
        }
        pos = end;
    }
    Ok(())
}

fn unit(v: Vector3<f64>) -> Option<Vector3<f64>> {
    let n = v.norm();
    (n.is_finite() && n > 1e-6).then(|| v / n)
}

/// Row direction, column direction and normal from ImageOrientationPatient (checked and made
/// orthonormal).
fn axes(file: &Path, iop: &[f64; 6]) -> Result<[Vector3<f64>; 3]> {
    let bad = |reason: &str| DicomError::BadAttribute {
        file: file.to_path_buf(),
        attribute: "ImageOrientationPatient",
        reason: reason.into(),
    };
    let r = unit(Vector3::new(iop[0], iop[1], iop[2])).ok_or_else(|| bad("zero row direction"))?;
    let c = Vector3::new(iop[3], iop[4], iop[5]);
    if r.dot(&c).abs() > 0.01 * c.norm() {
        return Err(bad("row and column directions are not perpendicular"));
    }
    let c = unit(c - r * r.dot(&c)).ok_or_else(|| bad("zero column direction"))?;
    Ok([r, c, r.cross(&c)])
}

/// Orders and checks the slices, and builds the grid and the data.
fn assemble(
    path: &Path,
    slices: &mut [Slice],
    notes: &mut Vec<String>,
) -> Result<(Grid, Vec<f32>)> {
    let first = &slices[0];
    let (rows, cols) = (first.rows, first.cols);
    let ps = match first.pixel_spacing {
        Some(ps) => ps,
        None => {
            notes.push("no PixelSpacing: 1 mm assumed".into());
            [1.0, 1.0]
        }
    };
    if slices.len() == 1 {
        let s = &mut slices[0];
        let [r, c, n] = match &s.orientation {
            Some(iop) => axes(&s.file, iop)?,
            None => {
                notes.push("no ImageOrientationPatient: axis-aligned assumed".into());
                [Vector3::x(), Vector3::y(), Vector3::z()]
            }
        };
        let mut origin = Vector3::from(s.position.unwrap_or([0.0; 3]));
        let mut step = s.spacing_between.or(s.slice_thickness).unwrap_or(1.0);
        if let Some(off) = &s.frame_offsets {
            let d = off[1] - off[0];
            if d.abs() > 1e-6 {
                step = d.abs();
                origin += n * off[0];
                if d < 0.0 {
                    // Frames run against the normal: reverse them so k runs along it.
                    origin += n * (d * (s.frames - 1) as f64);
                    let plane = rows * cols;
                    let frames: Vec<&[f32]> = s.data.chunks(plane).rev().collect();
                    s.data = frames.concat();
                }
            }
        }
        let grid = Grid {
            dims: [cols, rows, s.frames],
            spacing_m: [ps[1] * 1e-3, ps[0] * 1e-3, step * 1e-3],
            origin_m: (origin * 1e-3).into(),
            direction: [[r.x, c.x, n.x], [r.y, c.y, n.y], [r.z, c.z, n.z]],
        };
        return Ok((grid, std::mem::take(&mut s.data)));
    }

    // Several files: one frame each, all placed, all alike.
    let missing = |file: &Path, attribute| DicomError::MissingAttribute {
        file: file.to_path_buf(),
        attribute,
    };
    let iop0 = first
        .orientation
        .ok_or_else(|| missing(&first.file, "ImageOrientationPatient"))?;
    let [r, c, n] = axes(&first.file, &iop0)?;
    for s in slices.iter() {
        let inconsistent = |attribute, reason: String| DicomError::Inconsistent {
            file: s.file.clone(),
            attribute,
            reason,
        };
        if s.frames != 1 {
            return Err(inconsistent(
                "NumberOfFrames",
                format!("{} frames in a multi-file series", s.frames),
            ));
        }
        if (s.rows, s.cols) != (rows, cols) {
            return Err(inconsistent(
                "Rows/Columns",
                format!("{} x {} against {} x {}", s.rows, s.cols, rows, cols),
            ));
        }
        let sps = s.pixel_spacing.unwrap_or([1.0, 1.0]);
        if (0..2).any(|a| (sps[a] - ps[a]).abs() > 1e-4 * ps[a].max(1e-3)) {
            return Err(inconsistent(
                "PixelSpacing",
                format!("{sps:?} mm against {ps:?} mm"),
            ));
        }
        let iop = s
            .orientation
            .ok_or_else(|| missing(&s.file, "ImageOrientationPatient"))?;
        if (0..6).any(|a| (iop[a] - iop0[a]).abs() > 1e-4) {
            return Err(inconsistent(
                "ImageOrientationPatient",
                format!("{iop:?} against {iop0:?}"),
            ));
        }
        if s.position.is_none() {
            return Err(missing(&s.file, "ImagePositionPatient"));
        }
    }
    let pos = |s: &Slice| Vector3::from(s.position.unwrap_or([0.0; 3]));
    slices.sort_by(|a, b| pos(a).dot(&n).total_cmp(&pos(b).dot(&n)));
    let d: Vec<f64> = slices.iter().map(|s| pos(s).dot(&n)).collect();
    let steps: Vec<f64> = d.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, st) in steps.iter().enumerate() {
        if *st < 1e-3 {
            return Err(DicomError::DuplicatePosition {
                first: slices[i].file.clone(),
                second: slices[i + 1].file.clone(),
            });
        }
    }
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[(sorted.len() - 1) / 2];
    // Tilt: the stack must run along the normal.
    let p0 = pos(&slices[0]);
    let mut worst: Option<(usize, f64)> = None;
    for (k, s) in slices.iter().enumerate().skip(1) {
        let delta = pos(s) - p0;
        let along = delta.dot(&n);
        let lateral = (delta - n * along).norm();
        let angle = lateral.atan2(along.abs()).to_degrees();
        if worst.is_none_or(|(_, a)| angle > a) {
            worst = Some((k, angle));
        }
    }
    if let Some((k, angle)) = worst {
        if angle > 0.1 {
            return Err(DicomError::GantryTilt {
                file: slices[k].file.clone(),
                angle_deg: angle,
            });
        }
    }
    for (i, st) in steps.iter().enumerate() {
        if *st > 1.5 * median {
            return Err(DicomError::MissingSlice {
                before: slices[i].file.clone(),
                after: slices[i + 1].file.clone(),
                gap_mm: *st,
                step_mm: median,
            });
        }
        if (st - median).abs() > 0.1 * median {
            return Err(DicomError::IrregularSpacing {
                first: slices[i].file.clone(),
                second: slices[i + 1].file.clone(),
                step_mm: *st,
                median_mm: median,
            });
        }
    }
    // The mean step, so the last slice lands where it is.
    let step = (d[d.len() - 1] - d[0]) / (d.len() - 1) as f64;
    let plane = rows * cols;
    let total = plane
        .checked_mul(slices.len())
        .ok_or_else(|| DicomError::Volume {
            path: path.to_path_buf(),
            reason: "too many voxels".into(),
        })?;
    let mut data = Vec::with_capacity(total);
    for s in slices.iter_mut() {
        data.extend_from_slice(&s.data[..plane]);
        s.data = Vec::new();
    }
    let grid = Grid {
        dims: [cols, rows, slices.len()],
        spacing_m: [ps[1] * 1e-3, ps[0] * 1e-3, step * 1e-3],
        origin_m: (p0 * 1e-3).into(),
        direction: [[r.x, c.x, n.x], [r.y, c.y, n.y], [r.z, c.z, n.z]],
    };
    Ok((grid, data))
}

/// A fresh UID: `2.25.` and a random 128-bit number in decimal.
pub fn fresh_uid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No system randomness: fall back on time and address entropy (uniqueness only).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let a = &b as *const _ as usize as u128;
        b = (t ^ (a << 64) ^ u128::from(std::process::id())).to_be_bytes();
    }
    // A version-4 UUID's layout.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(b))
}

/// A DS value (at most 16 characters) as close to `v` as fits.
fn ds(v: f64) -> String {
    let v = if v.abs() < 1e-12 { 0.0 } else { v };
    for prec in (0..=10).rev() {
        let s = format!("{v:.prec$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        if s.len() <= 16 {
            return if s == "-0" { "0".into() } else { s };
        }
    }
    format!("{v:.3e}")
}

fn strs(values: impl IntoIterator<Item = String>) -> PrimitiveValue {
    PrimitiveValue::Strs(values.into_iter().collect())
}

/// Writes `volume` as a CT series in `dir` (created if needed): one file per `k` slice, int16
/// with a rescale to HU, explicit VR little endian, geometry from the grid, fresh UIDs,
/// PatientName `PHANTOM^HAPTWIN`, PatientID `PHANTOM`. Returns the files, in `k` order.
///
/// The grid's direction should be right-handed (`i × j = k`): a reader orders slices along
/// `i × j`.
pub fn write_series(
    volume: &ScalarVolume,
    dir: &Path,
    opts: &WriteOptions,
) -> Result<Vec<PathBuf>> {
    let g = &volume.grid;
    let bad = |reason: String| DicomError::Volume {
        path: dir.to_path_buf(),
        reason,
    };
    g.validate().map_err(|e| bad(e.to_string()))?;
    if volume.data.len() != g.len() {
        return Err(bad("data length does not match the grid".into()));
    }
    if g.dims[0] > u16::MAX as usize || g.dims[1] > u16::MAX as usize {
        return Err(bad(format!(
            "slices of {} x {} are too large",
            g.dims[0], g.dims[1]
        )));
    }
    std::fs::create_dir_all(dir).map_err(|source| DicomError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let (slope, intercept) = match opts.rescale {
        Some((s, i)) if s.is_finite() && s > 0.0 && i.is_finite() => (s, i),
        Some(r) => return Err(bad(format!("bad rescale {r:?}"))),
        None => {
            let (lo, hi) = volume
                .data
                .iter()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(*v as f64), hi.max(*v as f64))
                });
            if !lo.is_finite() || (lo >= -1024.0 - 32768.0 && hi <= 32767.0 - 1024.0) {
                (1.0, -1024.0)
            } else {
                (((hi - lo) / 65000.0).max(1e-6), (hi + lo) / 2.0)
            }
        }
    };
    let study = opts.study_uid.clone().unwrap_or_else(fresh_uid);
    let series = fresh_uid();
    let frame_of_ref = fresh_uid();
    let dm = g.direction_matrix();
    let (r, c) = (dm.column(0), dm.column(1));
    let iop: Vec<String> = [r.x, r.y, r.z, c.x, c.y, c.z]
        .iter()
        .map(|v| ds(*v))
        .collect();
    let plane = g.dims[0] * g.dims[1];
    let mut out = Vec::with_capacity(g.dims[2]);
    for k in 0..g.dims[2] {
        let p = g.voxel_to_patient([0.0, 0.0, k as f64]) * 1e3;
        let mut pixels = Vec::with_capacity(plane * 2);
        for v in &volume.data[k * plane..(k + 1) * plane] {
            let s = if v.is_finite() {
                ((*v as f64 - intercept) / slope)
                    .round()
                    .clamp(i16::MIN as f64, i16::MAX as f64) as i16
            } else {
                0
            };
            pixels.extend_from_slice(&s.to_le_bytes());
        }
        let sop = fresh_uid();
        let el = |tag, vr, v: PrimitiveValue| DataElement::new(tag, vr, v);
        let obj = InMemDicomObject::from_element_iter([
            el(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100".into()),
            el(
                tags::IMAGE_TYPE,
                VR::CS,
                strs(["DERIVED".into(), "SECONDARY".into(), "AXIAL".into()]),
            ),
            el(tags::SOP_CLASS_UID, VR::UI, CT_IMAGE_STORAGE.into()),
            el(tags::SOP_INSTANCE_UID, VR::UI, sop.clone().into()),
            el(tags::MODALITY, VR::CS, "CT".into()),
            el(tags::MANUFACTURER, VR::LO, "haptwin".into()),
            el(tags::PATIENT_NAME, VR::PN, "PHANTOM^HAPTWIN".into()),
            el(tags::PATIENT_ID, VR::LO, "PHANTOM".into()),
            el(tags::STUDY_INSTANCE_UID, VR::UI, study.clone().into()),
            el(tags::SERIES_INSTANCE_UID, VR::UI, series.clone().into()),
            el(
                tags::SERIES_NUMBER,
                VR::IS,
                opts.series_number.to_string().into(),
            ),
            el(tags::INSTANCE_NUMBER, VR::IS, (k + 1).to_string().into()),
            el(
                tags::FRAME_OF_REFERENCE_UID,
                VR::UI,
                frame_of_ref.clone().into(),
            ),
            el(
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                strs([ds(p.x), ds(p.y), ds(p.z)]),
            ),
            el(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, strs(iop.clone())),
            el(
                tags::SLICE_THICKNESS,
                VR::DS,
                ds(g.spacing_m[2] * 1e3).into(),
            ),
            el(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
            el(
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                "MONOCHROME2".into(),
            ),
            el(tags::ROWS, VR::US, PrimitiveValue::from(g.dims[1] as u16)),
            el(
                tags::COLUMNS,
                VR::US,
                PrimitiveValue::from(g.dims[0] as u16),
            ),
            el(
                tags::PIXEL_SPACING,
                VR::DS,
                strs([ds(g.spacing_m[1] * 1e3), ds(g.spacing_m[0] * 1e3)]),
            ),
            el(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
            el(tags::BITS_STORED, VR::US, PrimitiveValue::from(16u16)),
            el(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16)),
            el(
                tags::PIXEL_REPRESENTATION,
                VR::US,
                PrimitiveValue::from(1u16),
            ),
            el(tags::BURNED_IN_ANNOTATION, VR::CS, "NO".into()),
            el(tags::RESCALE_INTERCEPT, VR::DS, ds(intercept).into()),
            el(tags::RESCALE_SLOPE, VR::DS, ds(slope).into()),
            el(tags::RESCALE_TYPE, VR::LO, "HU".into()),
            el(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U8(pixels.into())),
        ]);
        let file = dir.join(format!("CT{:05}.dcm", k + 1));
        let obj = obj
            .with_meta(
                FileMetaTableBuilder::new()
                    .transfer_syntax("1.2.840.10008.1.2.1")
                    .media_storage_sop_class_uid(CT_IMAGE_STORAGE)
                    .media_storage_sop_instance_uid(sop),
            )
            .map_err(|e| bad(e.to_string()))?;
        obj.write_to_file(&file).map_err(|e| DicomError::Volume {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        out.push(file);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_values_fit_sixteen_characters() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -1024.0,
            std::f64::consts::FRAC_1_SQRT_2,
            -123.456789012345,
            1e-13,
            98765.4321,
        ] {
            let s = ds(v);
            assert!(s.len() <= 16, "{s}");
            let back: f64 = s.parse().unwrap();
            assert!((back - v).abs() < 1e-6 * v.abs().max(1.0), "{v} -> {s}");
        }
        assert_eq!(ds(-1024.0), "-1024");
        assert_eq!(ds(0.5), "0.5");
    }

    #[test]
    fn fresh_uids_are_valid_and_distinct() {
        let a = fresh_uid();
        let b = fresh_uid();
        assert_ne!(a, b);
        assert!(a.starts_with("2.25.") && a.len() <= 64);
        assert!(a[5..].chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn orientation_axes_follow_the_row_then_column_convention() {
        let [r, c, n] = axes(Path::new("x"), &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).unwrap();
        assert_eq!((r, c, n), (Vector3::x(), Vector3::y(), Vector3::z()));
        assert!(axes(Path::new("x"), &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).is_err());
        assert!(axes(Path::new("x"), &[0.0; 6]).is_err());
    }

    #[test]
    fn unsupported_syntaxes_are_named() {
        assert_eq!(
            transfer_syntax_name("1.2.840.10008.1.2.4.51"),
            "JPEG Extended (Process 2 & 4)"
        );
        assert!(!SUPPORTED_TS.contains(&"1.2.840.10008.1.2.4.80"));
        assert_eq!(transfer_syntax_name("1.2.3"), "unknown transfer syntax");
    }
}
