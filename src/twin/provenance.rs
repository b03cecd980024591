//! Where a twin came from, without who it came from.
//!
//! [`Provenance`] travels with every imported volume into the `.twin` file and `twin info`. It
//! names the source format, modality, grid and de-identification method; it never holds a
//! patient's name, identifiers, dates or the original UIDs (the importers and their tests see to
//! that).

use super::volume::Grid;

/// The de-identification applied at import.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deidentification {
    /// The method, e.g. `"DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile"`
    /// (DICOM), or `"header cleared"` (NIfTI: `descrip`, `aux_file`, `intent_name` dropped).
    pub method: String,
    /// Codes of the options applied (DICOM CID 7050, e.g. `"113100"`).
    pub codes: Vec<String>,
    /// Elements removed, replaced or emptied.
    pub elements_changed: u32,
}

/// The source of an imported volume.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// A pseudonymous case id (not derived reversibly from any identifier).
    pub case_id: String,
    /// `"dicom"`, `"nifti"` or `"phantom"`.
    pub source_format: String,
    /// DICOM modality (`"CT"`, `"MR"`, ...) or `"unknown"`.
    pub modality: String,
    /// The DICOM transfer syntax's name, if DICOM.
    pub transfer_syntax: Option<String>,
    /// Files read.
    pub files: u32,
    /// The voxel grid, as imported (patient frame, metres).
    pub grid: Grid,
    /// Intensity unit: `"HU"` for CT, `"arbitrary"` otherwise.
    pub intensity_unit: String,
    /// How identity was removed.
    pub deidentification: Deidentification,
    /// haptwin version that imported it.
    pub software_version: String,
}
