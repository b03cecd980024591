//! Digital twins from imaging: import (DICOM, NIfTI), de-identification, segmentation,
//! surfaces, tetrahedral meshing, materials, the `.twin` file, and the built-in phantom.
//!
//! - [`volume`]: voxel grids in the patient frame (LPS, metres), scalar and label volumes.
//! - [`labels`]: the tissue labels and their default materials.
//! - [`phantom`]: the built-in phantom: a liver-like organ with a tumour and a vessel.
//! - [`tets`]: the lattice tet mesh sized for the haptic rate, with its quality report.
//! - [`materials`]: materials per label, and their TOML override file.
//! - [`format`]: the `.twin` file (versioned, checksummed).
//! - [`build`]: labels to twin (tets, materials, embedded surface), and a twin to tissue.
//! - [`export`]: the surface as OBJ, STL or GLB, for Blender or 3D Slicer.
//! - [`provenance`]: where an imported volume came from, without who it came from.
//! - [`nifti`]: NIfTI-1 import and export (`.nii`, `.nii.gz`), label maps, label resampling.
//! - [`segment`]: segmentation without a label map: HU presets, connected components,
//!   morphology, hole filling.
//! - [`pipeline`]: `haptwin twin build`: imaging in, a twin out, each stage timed.
//! - [`deid`]: de-identification at the door (DICOM PS3.15 Annex E basic profile), the
//!   pseudonym key and keyed case ids.
//! - [`dicom`]: DICOM series import (ordering, geometry checks, HU) and CT series export.
//! - [`dicom_seg`]: DICOM Segmentation (SEG) label maps, BINARY and FRACTIONAL, segments to
//!   tissue labels.
//! - [`surface`]: isosurfaces and per-label surfaces (closed, outward), Taubin smoothing that
//!   keeps volume, quadric decimation to a triangle budget.

pub mod build;
pub mod deid;
pub mod dicom;
pub mod dicom_seg;
pub mod export;
pub mod format;
pub mod labels;
pub mod materials;
pub mod nifti;
pub mod phantom;
pub mod pipeline;
pub mod provenance;
pub mod segment;
pub mod surface;
pub mod tets;
pub mod volume;
