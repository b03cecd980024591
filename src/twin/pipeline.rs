//! `haptwin twin build`: imaging in, a simulation-ready twin out.
//!
//! Stages, each timed in the [`BuildReport`]:
//! 1. **import**: a folder is a DICOM series ([`super::dicom`], de-identified at the door), a
//!    `.nii`/`.nii.gz` file a NIfTI image ([`super::nifti`]), any other file a single DICOM
//!    file;
//! 2. **labels**: a label map (`--labels`, NIfTI; resampled onto the image's grid when it lies
//!    on another), or a segmentation preset (`--preset`, [`super::segment`]); a CT with
//!    neither gets `abdomen-ct`, anything else must say which;
//! 3. **surface**: one smooth surface per tissue, decimated to the triangle budget
//!    ([`super::build::label_surface`]);
//! 4. **tets**: the lattice mesh at the tet budget, materials, the surface embedded
//!    ([`super::build::from_labels`]).
//!
//! Contract: nothing identifying passes from the input to the twin, the report or the errors
//! (the importers see to the input side; this module only ever handles their de-identified
//! output and file paths the user gave).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::build::{self, BuildError};
use super::format::Twin;
use super::provenance::Provenance;
use super::segment::{self, Preset};
use super::tets::TetOptions;
use super::volume::{LabelVolume, ScalarVolume};
use super::{dicom, nifti};

/// What to build.
#[derive(Debug, Clone)]
pub struct TwinBuildOptions {
    /// A DICOM folder, a DICOM file, or a NIfTI file.
    pub input: PathBuf,
    /// A label map (NIfTI).
    pub labels: Option<PathBuf>,
    /// A segmentation preset name (`abdomen-ct`, `bone-ct`, `threshold:...`).
    pub preset: Option<String>,
    /// Tets to aim for.
    pub tets: usize,
    /// Triangles the render surface aims for.
    pub surface_triangles: usize,
    /// A materials override file.
    pub materials: Option<PathBuf>,
    /// The modality of a NIfTI input (NIfTI does not say; `CT` means HU).
    pub modality: Option<String>,
    /// Which series of a DICOM folder holding several.
    pub series: Option<String>,
}

/// Seconds per stage, and what each found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BuildReport {
    /// Import, seconds.
    pub import_s: f64,
    /// Labels (reading or segmenting), seconds.
    pub labels_s: f64,
    /// Surfaces, seconds.
    pub surface_s: f64,
    /// Tets, materials and embedding, seconds.
    pub tets_s: f64,
    /// All of it, seconds.
    pub total_s: f64,
    /// Where the labels came from: `"label map"` or the preset's name.
    pub labels_from: String,
    /// Voxels per label (label value, count).
    pub label_voxels: Vec<(u8, u64)>,
    /// Remarks (no identity).
    pub notes: Vec<String>,
}

/// Why a twin could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TwinBuildError {
    /// The DICOM input was refused.
    #[error(transparent)]
    Dicom(#[from] dicom::DicomError),
    /// The NIfTI input or label map was refused.
    #[error(transparent)]
    Nifti(#[from] nifti::NiftiError),
    /// Segmentation failed.
    #[error(transparent)]
    Segment(#[from] segment::SegmentError),
    /// Meshing or materials failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The input does not say how to label it.
    #[error("{input}: a {modality} image needs --labels FILE or --preset NAME ({presets})")]
    NoLabels {
        input: PathBuf,
        modality: String,
        presets: &'static str,
    },
    /// The labels hold no tissue.
    #[error("{0}: the labels hold no tissue (every voxel is background)")]
    NoTissue(PathBuf),
}

fn is_nifti(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase());
    name.is_some_and(|n| n.ends_with(".nii") || n.ends_with(".nii.gz"))
}

/// Imports the input: the intensities and their provenance.
pub fn import(
    opts: &TwinBuildOptions,
    notes: &mut Vec<String>,
) -> Result<(ScalarVolume, Provenance), TwinBuildError> {
    if is_nifti(&opts.input) {
        let imported = nifti::read_nifti_with(
            &opts.input,
            &nifti::ImportOptions {
                modality: opts.modality.clone(),
                ..nifti::ImportOptions::default()
            },
        )?;
        if imported.text_fields_dropped > 0 || imported.extensions_dropped > 0 {
            notes.push(format!(
                "dropped {} free-text header fields and {} header extensions",
                imported.text_fields_dropped, imported.extensions_dropped
            ));
        }
        return Ok((imported.volume, imported.provenance));
    }
    let dicom_opts = dicom::ImportOptions {
        series: opts.series.clone(),
        ..dicom::ImportOptions::default()
    };
    let series = if opts.input.is_dir() {
        dicom::read_series(&opts.input, &dicom_opts)?
    } else {
        dicom::read_files(std::slice::from_ref(&opts.input), &dicom_opts)?
    };
    notes.extend(series.notes.iter().cloned());
    Ok((series.volume, series.provenance))
}

/// The labels of the volume: the label map given (resampled if needed), or a preset's.
pub fn labels(
    opts: &TwinBuildOptions,
    volume: &ScalarVolume,
    provenance: &Provenance,
) -> Result<(LabelVolume, String), TwinBuildError> {
    if let Some(path) = &opts.labels {
        let map = nifti::read_label_nifti(path)?;
        let map = if map.grid == volume.grid {
            map
        } else {
            nifti::resample_labels(&map, &volume.grid)
        };
        return Ok((map, "label map".into()));
    }
    let name = match (&opts.preset, provenance.modality.as_str()) {
        (Some(p), _) => p.clone(),
        (None, "CT") => "abdomen-ct".into(),
        (None, other) => {
            return Err(TwinBuildError::NoLabels {
                input: opts.input.clone(),
                modality: other.to_string(),
                presets: segment::PRESET_NAMES,
            })
        }
    };
    let preset = Preset::from_name(&name)?;
    Ok((segment::segment(volume, &preset)?, name))
}

/// Builds the twin (and says how long each stage took).
pub fn build_twin(opts: &TwinBuildOptions) -> Result<(Twin, BuildReport), TwinBuildError> {
    build_twin_with_progress(opts, &mut |_, _| {})
}

/// [`build_twin`], telling `progress` as each stage starts (`stage` of 4, and what it does).
pub fn build_twin_with_progress(
    opts: &TwinBuildOptions,
    progress: &mut dyn FnMut(u32, &str),
) -> Result<(Twin, BuildReport), TwinBuildError> {
    let t0 = Instant::now();
    let mut report = BuildReport::default();
    progress(1, "importing and de-identifying");
    let (volume, provenance) = import(opts, &mut report.notes)?;
    report.import_s = t0.elapsed().as_secs_f64();
    progress(
        2,
        if opts.labels.is_some() {
            "reading the label map"
        } else {
            "segmenting"
        },
    );

    let t = Instant::now();
    let (labels, from) = labels(opts, &volume, &provenance)?;
    drop(volume);
    report.labels_s = t.elapsed().as_secs_f64();
    report.labels_from = from;
    let mut counts = [0u64; 256];
    for &v in &labels.data {
        counts[v as usize] += 1;
    }
    report.label_voxels = (1..=255u8)
        .filter(|&l| counts[l as usize] > 0)
        .map(|l| (l, counts[l as usize]))
        .collect();
    if report.label_voxels.is_empty() {
        return Err(TwinBuildError::NoTissue(opts.input.clone()));
    }

    progress(3, "extracting, smoothing and decimating the surfaces");
    let t = Instant::now();
    let surface = build::label_surface(&labels, opts.surface_triangles);
    report.surface_s = t.elapsed().as_secs_f64();

    progress(4, "meshing tets, materials, embedding the surface");
    let t = Instant::now();
    let twin = build::from_labels(
        &labels,
        provenance,
        Some(surface),
        &TetOptions {
            target_tets: opts.tets,
            ..TetOptions::default()
        },
        opts.materials.as_deref(),
    )?;
    report.tets_s = t.elapsed().as_secs_f64();
    report.total_s = t0.elapsed().as_secs_f64();
    Ok((twin, report))
}
