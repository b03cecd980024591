//! Digital twins from imaging: import (DICOM, NIfTI), de-identification, segmentation,
//! surfaces, tetrahedral meshing, materials, the `.twin` file, and the built-in phantom.
//!
//! - [`volume`]: voxel grids in the patient frame (LPS, metres), scalar and label volumes.
//! - [`labels`]: the tissue labels and their default materials.
//! - [`provenance`]: where an imported volume came from, without who it came from.

pub mod labels;
pub mod provenance;
pub mod volume;
