//! DICOM Segmentation (SEG) label maps: one SEG object to a [`LabelVolume`] in the patient
//! frame, its segments mapped onto haptwin's tissue [`Label`]s.
//!
//! Contract of [`read_seg`] / [`read_seg_with`]:
//! - the file is de-identified on read through [`dicom::open_deidentified`], exactly as the
//!   series import does; nothing below sees the original data set, and what comes back (the
//!   label volume, segment numbers and labels, notes) holds no free text from the file;
//! - errors ([`DicomError`]) name the file and never hold element values other than geometry
//!   and counts;
//! - the SOP class must be Segmentation Storage (1.2.840.10008.5.1.4.1.1.66.4); the pixel data
//!   must be native (implicit / explicit little endian, explicit big endian, deflate): an
//!   encapsulated (compressed) SEG is refused by its transfer syntax's name;
//! - `SegmentationType` BINARY: 1 bit per pixel, the frames' bits packed one after the other
//!   across frame boundaries (a frame need not start on a byte), least significant bit first;
//!   FRACTIONAL: 8 bits per pixel, a pixel is in its segment when it is at least half of
//!   `MaximumFractionalValue`; LABELMAP and other types are refused by name;
//! - per frame: its segment (ReferencedSegmentNumber of the SegmentIdentificationSequence in
//!   PerFrameFunctionalGroupsSequence), its position (PlanePositionSequence's
//!   ImagePositionPatient), orientation (PlaneOrientationSequence) and spacing
//!   (PixelMeasuresSequence: PixelSpacing, SpacingBetweenSlices, else SliceThickness), each per
//!   frame or shared (SharedFunctionalGroupsSequence); a frame naming a segment that
//!   SegmentSequence does not define is an error; functional groups listed for more frames than
//!   the pixel data holds are ignored, with a note;
//! - the grid: the frames' distinct positions ordered along the normal (row × column
//!   direction); the slice step is SpacingBetweenSlices, else SliceThickness, else (when
//!   those do not fit) the smallest step between positions; gaps are allowed on whole multiples
//!   of the step (a SEG may hold only the slices where a segment is), anything else is an
//!   error, and so are frames that do not stack along the normal. Origin: the lowest frame's
//!   position; direction columns and spacing as in [`dicom`] (`[column spacing, row spacing,
//!   step]`, metres);
//! - segments to labels by the words of SegmentLabel and the SegmentedPropertyTypeCodeSequence
//!   CodeMeaning: tumour words (tumor, tumour, lesion, neoplasm, mass, cancer, metastasis)
//!   first, then vessel (vessel, vein, artery, portal, aorta, vena cava), bone (bone, spine,
//!   rib, vertebra), fat (fat, adipose), parenchyma (liver, parenchyma, organ); anything else is
//!   parenchyma, with a note. Where segments overlap the higher priority wins: tumour, vessel,
//!   bone, fat, parenchyma.
//!
//! Nothing here panics on file content.

use std::path::{Path, PathBuf};

use dicom_core::header::HasLength;
use dicom_core::value::PrimitiveValue;
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use nalgebra::Vector3;

use super::deid::{Deidentifier, PseudonymKey};
use super::dicom::{self, DicomError, ImportOptions};
use super::labels::Label;
use super::volume::{Grid, LabelVolume};

type Result<T, E = DicomError> = std::result::Result<T, E>;

/// Segmentation Storage SOP class UID.
pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";

/// Transfer syntaxes whose pixel data is native (deflate is inflated by the parser).
const NATIVE_TS: &[&str] = &[
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
];

/// Most slices a SEG grid may have (a guard against nonsense positions).
const MAX_SLICES: usize = 8192;

/// One segment of a SEG and the label it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// SegmentNumber.
    pub number: u16,
    /// The tissue it was mapped to.
    pub label: Label,
    /// Whether its words were recognised (else it was taken as parenchyma).
    pub recognised: bool,
    /// Pixels set in this segment's frames (before overlaps are settled).
    pub voxels: u64,
}

/// A SEG read: the label map, its segments, counts and notes (nothing identifying).
#[derive(Debug, Clone)]
pub struct ImportedSeg {
    /// The labels on the SEG's own grid.
    pub labels: LabelVolume,
    /// The segments, in SegmentSequence order.
    pub segments: Vec<SegmentInfo>,
    /// Frames read.
    pub frames: usize,
    /// Pseudonymous case id (as the series import gives).
    pub case_id: String,
    /// Remarks for the user (no names, no free text from the file).
    pub notes: Vec<String>,
}

/// Reads a DICOM SEG file to a label volume (see the module doc).
pub fn read_seg(path: &Path, opts: &ImportOptions) -> Result<LabelVolume> {
    read_seg_with(path, opts).map(|s| s.labels)
}

/// Reads a DICOM SEG file: the label volume, its segments and notes.
pub fn read_seg_with(path: &Path, opts: &ImportOptions) -> Result<ImportedSeg> {
    let key = match &opts.pseudonym_key {
        Some(k) => k.clone(),
        None => PseudonymKey::installation()?,
    };
    let mut deid = Deidentifier::new(key);
    let obj = dicom::open_deidentified(path, &mut deid)?.ok_or_else(|| DicomError::NotDicom {
        file: path.to_path_buf(),
    })?;
    // The profile put the pseudonymous case id in PatientID (action D).
    let case_id = obj
        .get(tags::PATIENT_ID)
        .and_then(|e| e.to_str().ok())
        .map(|s| trim(&s).to_string())
        .filter(|s| s.starts_with("case-"))
        .unwrap_or_default();
    let ts_uid = trim(&obj.meta().transfer_syntax).to_string();
    let sop_class = obj
        .get(tags::SOP_CLASS_UID)
        .and_then(|e| e.to_str().ok())
        .map(|s| trim(&s).to_string())
        .unwrap_or_else(|| trim(&obj.meta().media_storage_sop_class_uid).to_string());
    let r = Reader {
        file: path.to_path_buf(),
    };
    if sop_class != SEGMENTATION_STORAGE {
        return Err(DicomError::UnsupportedImage {
            file: r.file.clone(),
            reason: format!(
                "not a DICOM Segmentation (SOP class {})",
                short_uid(&sop_class)
            ),
        });
    }
    if !NATIVE_TS.contains(&ts_uid.as_str()) {
        return Err(DicomError::UnsupportedTransferSyntax {
            file: r.file.clone(),
            name: dicom::transfer_syntax_name(&ts_uid),
            uid: ts_uid,
        });
    }
    let (labels, segments, frames, notes) = r.read(&obj)?;
    Ok(ImportedSeg {
        labels,
        segments,
        frames,
        case_id,
        notes,
    })
}

fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// A UID for an error message: DICOM-defined ones in full, others not at all.
fn short_uid(uid: &str) -> String {
    if uid.starts_with("1.2.840.10008.") && uid.len() <= 64 {
        uid.to_string()
    } else if uid.is_empty() {
        "none".into()
    } else {
        "not DICOM-defined".into()
    }
}

/// The words of a segment mapped to a label (`None`: not recognised).
pub fn label_for_words(text: &str) -> Option<Label> {
    let t = text.to_lowercase();
    let words: Vec<&str> = t
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    // A word, or its singular (`-s`, `-es`, `-ies`), is in the list.
    let has = |list: &[&str]| {
        words.iter().any(|w| {
            let ies = w.strip_suffix("ies").map(|s| format!("{s}y"));
            let forms = [
                Some(w.to_string()),
                w.strip_suffix('s').map(str::to_string),
                w.strip_suffix("es").map(str::to_string),
                ies,
            ];
            forms.iter().flatten().any(|f| list.contains(&f.as_str()))
        })
    };
    let phrase = |p: &str| t.contains(p);
    if has(&[
        "tumor",
        "tumour",
        "lesion",
        "neoplasm",
        "mass",
        "cancer",
        "carcinoma",
        "metastasis",
        "metastases",
        "nodule",
    ]) {
        Some(Label::Tumour)
    } else if has(&[
        "vessel",
        "vein",
        "artery",
        "portal",
        "aorta",
        "vasculature",
        "ivc",
    ]) || phrase("vena cava")
        || phrase("hepatic vein")
    {
        Some(Label::Vessel)
    } else if has(&["bone", "spine", "rib", "vertebra", "vertebrae", "skeleton"]) {
        Some(Label::Bone)
    } else if has(&["fat", "adipose"]) {
        Some(Label::Fat)
    } else if has(&["liver", "parenchyma", "organ"]) {
        Some(Label::Parenchyma)
    } else {
        None
    }
}

/// The first item of sequence `seq` in `obj`.
fn first_item(obj: &InMemDicomObject, seq: Tag) -> Option<&InMemDicomObject> {
    obj.get(seq).and_then(|e| e.items()).and_then(|i| i.first())
}

/// Overlap priority: the higher wins a voxel.
fn priority(l: Label) -> u8 {
    match l {
        Label::Background => 0,
        Label::Parenchyma => 1,
        Label::Fat => 2,
        Label::Bone => 3,
        Label::Vessel => 4,
        Label::Tumour => 5,
    }
}

/// Reads one SEG data set; knows its file for the errors.
struct Reader {
    file: PathBuf,
}

type ReadOut = (LabelVolume, Vec<SegmentInfo>, usize, Vec<String>);

impl Reader {
    fn missing(&self, attribute: &'static str) -> DicomError {
        DicomError::MissingAttribute {
            file: self.file.clone(),
            attribute,
        }
    }

    fn bad(&self, attribute: &'static str, reason: impl Into<String>) -> DicomError {
        DicomError::BadAttribute {
            file: self.file.clone(),
            attribute,
            reason: reason.into(),
        }
    }

    fn int(&self, obj: &InMemDicomObject, tag: Tag, name: &'static str) -> Result<Option<u32>> {
        match obj.get(tag) {
            None => Ok(None),
            Some(e) if e.value().primitive().is_some_and(|p| p.is_empty()) => Ok(None),
            Some(e) => e
                .to_str()
                .ok()
                .and_then(|s| trim(&s).parse::<u32>().ok())
                .or_else(|| e.to_int::<u32>().ok())
                .map(Some)
                .ok_or_else(|| self.bad(name, "not a non-negative integer")),
        }
    }

    fn floats(
        &self,
        obj: &InMemDicomObject,
        tag: Tag,
        name: &'static str,
        n: usize,
    ) -> Result<Option<Vec<f64>>> {
        let Some(e) = obj.get(tag) else {
            return Ok(None);
        };
        if e.value().primitive().is_some_and(|p| p.is_empty()) {
            return Ok(None);
        }
        let v = e
            .to_multi_float64()
            .map_err(|_| self.bad(name, "not a list of numbers"))?;
        if v.len() < n || v.iter().any(|x| !x.is_finite()) {
            return Err(self.bad(
                name,
                format!("{n} finite values expected, {} found", v.len()),
            ));
        }
        Ok(Some(v))
    }

    /// The text of a short string attribute (for word matching only).
    fn text(obj: &InMemDicomObject, tag: Tag) -> String {
        obj.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.into_owned())
            .unwrap_or_default()
    }

    fn read(&self, obj: &InMemDicomObject) -> Result<ReadOut> {
        let mut notes = Vec::new();
        let seg_type = obj
            .get(tags::SEGMENTATION_TYPE)
            .and_then(|e| e.to_str().ok())
            .map(|s| trim(&s).to_ascii_uppercase())
            .ok_or_else(|| self.missing("SegmentationType"))?;
        let rows = self
            .int(obj, tags::ROWS, "Rows")?
            .ok_or_else(|| self.missing("Rows"))? as usize;
        let cols = self
            .int(obj, tags::COLUMNS, "Columns")?
            .ok_or_else(|| self.missing("Columns"))? as usize;
        if rows == 0 || cols == 0 {
            return Err(self.bad("Rows/Columns", format!("{rows} x {cols}")));
        }
        let frames = self
            .int(obj, tags::NUMBER_OF_FRAMES, "NumberOfFrames")?
            .unwrap_or(1) as usize;
        if frames == 0 {
            return Err(self.bad("NumberOfFrames", "0"));
        }
        let bits = self
            .int(obj, tags::BITS_ALLOCATED, "BitsAllocated")?
            .ok_or_else(|| self.missing("BitsAllocated"))?;
        let frame_px = rows * cols;
        let total = frame_px
            .checked_mul(frames)
            .filter(|n| *n <= 1usize << 32)
            .ok_or_else(|| self.bad("Rows/Columns/NumberOfFrames", "too many pixels"))?;

        // Pixel test per (frame, pixel).
        let fractional_max = match seg_type.as_str() {
            "BINARY" => {
                if bits != 1 {
                    return Err(self.bad(
                        "BitsAllocated",
                        format!("{bits} for a BINARY segmentation (1 expected)"),
                    ));
                }
                None
            }
            "FRACTIONAL" => {
                if bits != 8 {
                    return Err(self.bad(
                        "BitsAllocated",
                        format!("{bits} for a FRACTIONAL segmentation (8 expected)"),
                    ));
                }
                let max = self
                    .int(
                        obj,
                        tags::MAXIMUM_FRACTIONAL_VALUE,
                        "MaximumFractionalValue",
                    )?
                    .ok_or_else(|| self.missing("MaximumFractionalValue"))?;
                if max == 0 || max > 255 {
                    return Err(self.bad("MaximumFractionalValue", format!("{max}")));
                }
                Some(max)
            }
            other => {
                return Err(DicomError::UnsupportedImage {
                    file: self.file.clone(),
                    reason: format!(
                        "SegmentationType {} (BINARY and FRACTIONAL are read)",
                        if other.len() <= 16 && other.chars().all(|c| c.is_ascii_uppercase()) {
                            other
                        } else {
                            "unknown"
                        }
                    ),
                })
            }
        };
        let pixels = self.pixel_bytes(obj)?;
        let need = if fractional_max.is_some() {
            total
        } else {
            total.div_ceil(8)
        };
        if pixels.len() < need {
            return Err(DicomError::PixelData {
                file: self.file.clone(),
                reason: format!(
                    "{} bytes of pixel data, {need} needed for {frames} frames of {rows} x {cols}",
                    pixels.len()
                ),
            });
        }
        let on = |f: usize, p: usize| -> bool {
            let q = f * frame_px + p;
            match fractional_max {
                None => pixels[q / 8] >> (q % 8) & 1 == 1,
                Some(max) => 2 * u32::from(pixels[q]) >= max,
            }
        };

        // Segments.
        let mut segments = Vec::new();
        for item in obj
            .get(tags::SEGMENT_SEQUENCE)
            .and_then(|e| e.items())
            .ok_or_else(|| self.missing("SegmentSequence"))?
        {
            let number = self
                .int(item, tags::SEGMENT_NUMBER, "SegmentNumber")?
                .ok_or_else(|| self.missing("SegmentNumber"))?;
            let number = u16::try_from(number)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| self.bad("SegmentNumber", format!("{number}")))?;
            if segments.iter().any(|s: &SegmentInfo| s.number == number) {
                return Err(self.bad("SegmentNumber", format!("{number} defined twice")));
            }
            let mut words = Self::text(item, tags::SEGMENT_LABEL);
            if let Some(codes) = item
                .get(tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE)
                .and_then(|e| e.items())
            {
                for c in codes {
                    words.push(' ');
                    words.push_str(&Self::text(c, tags::CODE_MEANING));
                }
            }
            let (label, recognised) = match label_for_words(&words) {
                Some(l) => (l, true),
                None => {
                    notes.push(format!(
                        "SEG segment {number}: label not recognised, taken as parenchyma"
                    ));
                    (Label::Parenchyma, false)
                }
            };
            segments.push(SegmentInfo {
                number,
                label,
                recognised,
                voxels: 0,
            });
        }
        if segments.is_empty() {
            return Err(self.bad("SegmentSequence", "no segments"));
        }

        // Functional groups.
        let shared = obj
            .get(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|i| i.first());
        let per_frame = obj
            .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
            .and_then(|e| e.items())
            .unwrap_or(&[]);
        if per_frame.len() < frames && !(frames == 1 && shared.is_some()) {
            return Err(self.bad(
                "PerFrameFunctionalGroupsSequence",
                format!("{} items for {frames} frames", per_frame.len()),
            ));
        }
        if per_frame.len() > frames {
            notes.push(format!(
                "SEG lists {} frames' functional groups for {frames} frames of pixel data: the \
                 extra ones are ignored",
                per_frame.len()
            ));
        }
        // The item of macro `seq` for frame f: per frame, else shared.
        let group = |f: usize, seq: Tag| {
            per_frame
                .get(f)
                .and_then(|g| first_item(g, seq))
                .or_else(|| shared.and_then(|g| first_item(g, seq)))
        };

        let mut orientation: Option<[f64; 6]> = None;
        let mut measures: Option<(Vec<f64>, Option<f64>, Option<f64>)> = None;
        let mut frame_info = Vec::with_capacity(frames);
        for f in 0..frames {
            let iop = match group(f, tags::PLANE_ORIENTATION_SEQUENCE) {
                Some(g) => self.floats(
                    g,
                    tags::IMAGE_ORIENTATION_PATIENT,
                    "ImageOrientationPatient",
                    6,
                )?,
                None => self.floats(
                    obj,
                    tags::IMAGE_ORIENTATION_PATIENT,
                    "ImageOrientationPatient",
                    6,
                )?,
            }
            .ok_or_else(|| self.missing("ImageOrientationPatient"))?;
            let iop: [f64; 6] = std::array::from_fn(|i| iop[i]);
            match &orientation {
                None => orientation = Some(iop),
                Some(o) if o.iter().zip(&iop).all(|(a, b)| (a - b).abs() < 1e-4) => {}
                Some(o) => {
                    return Err(DicomError::Inconsistent {
                        file: self.file.clone(),
                        attribute: "ImageOrientationPatient",
                        reason: format!("frame {}: {iop:?} against {o:?}", f + 1),
                    })
                }
            }
            let pm = group(f, tags::PIXEL_MEASURES_SEQUENCE).unwrap_or(obj);
            let ps = self
                .floats(pm, tags::PIXEL_SPACING, "PixelSpacing", 2)?
                .ok_or_else(|| self.missing("PixelSpacing"))?;
            if !(ps[0] > 0.0 && ps[1] > 0.0) {
                return Err(self.bad("PixelSpacing", format!("{:?} mm", &ps[..2])));
            }
            let pos1 = |v: Option<Vec<f64>>| v.map(|v| v[0]).filter(|x| *x > 0.0);
            let between =
                pos1(self.floats(pm, tags::SPACING_BETWEEN_SLICES, "SpacingBetweenSlices", 1)?);
            let thick = pos1(self.floats(pm, tags::SLICE_THICKNESS, "SliceThickness", 1)?);
            let m = (ps[..2].to_vec(), between, thick);
            match &measures {
                None => measures = Some(m),
                Some(o) if (o.0[0] - m.0[0]).abs() < 1e-4 && (o.0[1] - m.0[1]).abs() < 1e-4 => {}
                Some(o) => {
                    return Err(DicomError::Inconsistent {
                        file: self.file.clone(),
                        attribute: "PixelSpacing",
                        reason: format!("frame {}: {:?} against {:?} mm", f + 1, m.0, o.0),
                    })
                }
            }
            let pos = match group(f, tags::PLANE_POSITION_SEQUENCE) {
                Some(g) => {
                    self.floats(g, tags::IMAGE_POSITION_PATIENT, "ImagePositionPatient", 3)?
                }
                None => {
                    self.floats(obj, tags::IMAGE_POSITION_PATIENT, "ImagePositionPatient", 3)?
                }
            }
            .ok_or_else(|| self.missing("ImagePositionPatient"))?;
            let seg = match group(f, tags::SEGMENT_IDENTIFICATION_SEQUENCE) {
                Some(g) => self.int(
                    g,
                    tags::REFERENCED_SEGMENT_NUMBER,
                    "ReferencedSegmentNumber",
                )?,
                None if segments.len() == 1 => Some(u32::from(segments[0].number)),
                None => None,
            }
            .ok_or_else(|| self.missing("ReferencedSegmentNumber"))?;
            let si = segments
                .iter()
                .position(|s| u32::from(s.number) == seg)
                .ok_or_else(|| {
                    self.bad(
                        "ReferencedSegmentNumber",
                        format!(
                            "frame {} refers to segment {seg}, which SegmentSequence does not \
                             define",
                            f + 1
                        ),
                    )
                })?;
            frame_info.push((Vector3::new(pos[0], pos[1], pos[2]), si));
        }
        let (Some(iop), Some((ps, between, thick))) = (orientation, measures) else {
            return Err(self.missing("ImageOrientationPatient"));
        };

        // Axes and the slices along the normal.
        let unit = |v: Vector3<f64>| {
            let n = v.norm();
            (n.is_finite() && n > 1e-6).then(|| v / n)
        };
        let row = unit(Vector3::new(iop[0], iop[1], iop[2]));
        let col = unit(Vector3::new(iop[3], iop[4], iop[5]));
        let (row, col) = match (row, col) {
            (Some(r), Some(c)) if r.dot(&c).abs() < 1e-3 => (r, c),
            _ => {
                return Err(self.bad(
                    "ImageOrientationPatient",
                    format!("{iop:?}: not two orthogonal directions"),
                ))
            }
        };
        let normal = row.cross(&col).normalize();
        let col = normal.cross(&row);
        let (min_f, _) = frame_info
            .iter()
            .enumerate()
            .min_by(|a, b| a.1 .0.dot(&normal).total_cmp(&b.1 .0.dot(&normal)))
            .ok_or_else(|| self.bad("NumberOfFrames", "no frames"))?;
        let origin = frame_info[min_f].0;
        let in_plane_tol = 0.01 * ps[0].min(ps[1]) + 1e-3;
        let mut offsets = Vec::with_capacity(frames);
        for (f, (p, _)) in frame_info.iter().enumerate() {
            let d = p - origin;
            let off = d.dot(&row).abs().max(d.dot(&col).abs());
            if off > in_plane_tol {
                return Err(self.bad(
                    "ImagePositionPatient",
                    format!(
                        "frame {} lies {off:.3} mm off the stack's normal (frames must stack \
                         along it)",
                        f + 1
                    ),
                ));
            }
            offsets.push(d.dot(&normal));
        }
        let mut distinct: Vec<f64> = Vec::new();
        let mut sorted = offsets.clone();
        sorted.sort_by(f64::total_cmp);
        for d in sorted {
            if distinct.last().is_none_or(|l| d - l > 1e-3) {
                distinct.push(d);
            }
        }
        let fits = |step: f64| {
            step > 0.0
                && distinct.iter().all(|d| {
                    let k = d / step;
                    (k - k.round()).abs() < 0.05 && k.round() < MAX_SLICES as f64
                })
        };
        let smallest = distinct
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, f64::min);
        let step = if let Some(s) = between.filter(|s| fits(*s)) {
            s
        } else if let Some(s) = thick.filter(|s| between.is_none() && fits(*s)) {
            s
        } else if smallest.is_finite() && fits(smallest) {
            if between.is_some() || thick.is_some() {
                notes.push(format!(
                    "SEG slice step taken from the frame positions ({smallest:.3} mm): the \
                     stated spacing does not fit them"
                ));
            }
            smallest
        } else if distinct.len() == 1 {
            between.or(thick).unwrap_or(1.0)
        } else {
            return Err(self.bad(
                "ImagePositionPatient",
                format!(
                    "frame positions along the normal ({} distinct, {:.3} mm to {:.3} mm) are \
                     not whole multiples of one slice step",
                    distinct.len(),
                    distinct.first().copied().unwrap_or(0.0),
                    distinct.last().copied().unwrap_or(0.0)
                ),
            ));
        };
        let last = distinct.last().copied().unwrap_or(0.0);
        let nk = (last / step).round() as usize + 1;
        if nk > MAX_SLICES {
            return Err(self.bad(
                "ImagePositionPatient",
                format!("{nk} slices: more than {MAX_SLICES}"),
            ));
        }
        if nk > distinct.len() {
            notes.push(format!(
                "SEG frames cover {} of {nk} slices; the others are background",
                distinct.len()
            ));
        }
        let grid = Grid {
            dims: [cols, rows, nk],
            spacing_m: [ps[1] * 1e-3, ps[0] * 1e-3, step * 1e-3],
            origin_m: [origin.x * 1e-3, origin.y * 1e-3, origin.z * 1e-3],
            direction: std::array::from_fn(|r| [row[r], col[r], normal[r]]),
        };
        let volume_err = |e: super::volume::VolumeError| DicomError::Volume {
            path: self.file.clone(),
            reason: e.to_string(),
        };
        grid.validate().map_err(volume_err)?;
        if grid.len() > 1 << 31 {
            return Err(DicomError::Volume {
                path: self.file.clone(),
                reason: format!("{:?} voxels: too large", grid.dims),
            });
        }
        let mut vol = LabelVolume::filled(grid, 0).map_err(volume_err)?;

        // Fill: higher priority wins where segments overlap.
        for (f, &(_, si)) in frame_info.iter().enumerate() {
            let k = (offsets[f] / step).round() as usize;
            let label = segments[si].label;
            let base = k * frame_px;
            let mut set = 0u64;
            for p in 0..frame_px {
                if on(f, p) {
                    set += 1;
                    let q = base + p;
                    let cur = Label::from_u8(vol.data[q]).unwrap_or(Label::Background);
                    if priority(label) > priority(cur) {
                        vol.data[q] = label as u8;
                    }
                }
            }
            segments[si].voxels += set;
        }
        Ok((vol, segments, frames, notes))
    }

    /// The raw pixel data bytes (native only), in little-endian order.
    fn pixel_bytes(&self, obj: &InMemDicomObject) -> Result<Vec<u8>> {
        let e = obj
            .get(tags::PIXEL_DATA)
            .ok_or_else(|| self.missing("PixelData"))?;
        let Some(p) = e.value().primitive() else {
            return Err(DicomError::PixelData {
                file: self.file.clone(),
                reason: "encapsulated pixel data in a native transfer syntax".into(),
            });
        };
        match p {
            PrimitiveValue::U8(b) => Ok(b.to_vec()),
            PrimitiveValue::U16(w) => Ok(w.iter().flat_map(|x| x.to_le_bytes()).collect()),
            PrimitiveValue::Empty => Ok(Vec::new()),
            _ => Err(DicomError::PixelData {
                file: self.file.clone(),
                reason: "pixel data is neither OB nor OW".into(),
            }),
        }
    }
}
