//! `haptwin twin build`: imaging in, a simulation-ready twin out.
//!
//! Stages, each timed in the [`BuildReport`]:
//! 1. **import**: a folder is a DICOM series ([`super::dicom`], de-identified at the door), a
//!    `.nii`/`.nii.gz` file a NIfTI image ([`super::nifti`]), any other file a single DICOM
//!    file;
//! 2. **labels**: a label map (`--labels`: a `.nii`/`.nii.gz` NIfTI, any other file a DICOM
//!    SEG ([`super::dicom_seg`]); resampled onto the image's grid when it lies on another), or
//!    a segmentation preset (`--preset`, [`super::segment`]) run on the image averaged down to
//!    no finer than 0.8 mm; a CT with neither gets `abdomen-ct`, anything else must say which;
//! 3. **surface**: one smooth surface per tissue, extracted at no finer than 1 mm and
//!    decimated to the triangle budget ([`super::build::label_surface`]); fat and bone are left
//!    out of the twin unless asked for;
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
use super::labels::Label;
use super::provenance::Provenance;
use super::segment::{self, Preset};
use super::tets::TetOptions;
use super::volume::{LabelVolume, ScalarVolume};
use super::{dicom, dicom_seg, nifti};

/// What to build.
#[derive(Debug, Clone)]
pub struct TwinBuildOptions {
    /// A DICOM folder, a DICOM file, or a NIfTI file.
    pub input: PathBuf,
    /// A label map (NIfTI, or a DICOM SEG).
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
    /// Keep fat and bone in the twin (by default only the organ, its tumours and vessels are
    /// meshed: fat and bone around them would take the tet budget and the hand never meets
    /// them in these rehearsals).
    pub all_tissues: bool,
}

/// Voxel a preset segments at, at the finest, metres: a 0.4 mm CT is averaged in 2 x 2 x 2
/// blocks first (less noise, an eighth of the work; the lattice's cells are millimetres).
pub const SEGMENT_VOXEL_M: f64 = 0.8e-3;

/// `volume` averaged in blocks of `round(voxel_m / spacing)` voxels along each axis (at least
/// one), or `None` when no axis is finer than half of `voxel_m`.
pub fn downsample_mean(volume: &ScalarVolume, voxel_m: f64) -> Option<ScalarVolume> {
    let g = &volume.grid;
    let f: [usize; 3] =
        std::array::from_fn(|a| ((voxel_m / g.spacing_m[a]).round() as usize).max(1));
    if f == [1, 1, 1] {
        return None;
    }
    let dims: [usize; 3] = std::array::from_fn(|a| g.dims[a].div_ceil(f[a]));
    let mut sum = vec![0f64; dims[0] * dims[1] * dims[2]];
    let mut count = vec![0u32; sum.len()];
    for k in 0..g.dims[2] {
        let ck = k / f[2];
        for j in 0..g.dims[1] {
            let cj = j / f[1];
            let row = g.index(0, j, k);
            let base = dims[0] * (cj + dims[1] * ck);
            for (i, v) in volume.data[row..row + g.dims[0]].iter().enumerate() {
                if v.is_finite() {
                    let c = base + i / f[0];
                    sum[c] += f64::from(*v);
                    count[c] += 1;
                }
            }
        }
    }
    let data = sum
        .iter()
        .zip(&count)
        .map(|(s, &n)| {
            if n > 0 {
                (s / f64::from(n)) as f32
            } else {
                f32::NAN
            }
        })
        .collect();
    // The block's centre: half a block minus half a voxel along each axis.
    let shift: [f64; 3] = std::array::from_fn(|a| (f[a] as f64 - 1.0) / 2.0);
    let origin = g.voxel_to_patient(shift);
    let grid = super::volume::Grid {
        dims,
        spacing_m: std::array::from_fn(|a| g.spacing_m[a] * f[a] as f64),
        origin_m: [origin.x, origin.y, origin.z],
        direction: g.direction,
    };
    Some(ScalarVolume { grid, data })
}

/// Finest voxel the render surface is extracted at, metres: a CT's 0.4 mm voxels give
/// millions of triangles that decimation would throw away.
pub const SURFACE_VOXEL_M: f64 = 1e-3;

/// `labels` on a grid no finer than `voxel_m` (nearest neighbour), or `None` when it already
/// is that coarse.
pub fn coarsen(labels: &LabelVolume, voxel_m: f64) -> Option<LabelVolume> {
    let g = &labels.grid;
    if g.spacing_m.iter().all(|&s| s >= voxel_m) {
        return None;
    }
    let spacing: [f64; 3] = std::array::from_fn(|a| g.spacing_m[a].max(voxel_m));
    let dims: [usize; 3] = std::array::from_fn(|a| {
        // The last centre stays inside the original's extent.
        ((g.dims[a].saturating_sub(1)) as f64 * g.spacing_m[a] / spacing[a] + 1e-9).floor() as usize
            + 1
    });
    let coarse = super::volume::Grid {
        dims,
        spacing_m: spacing,
        origin_m: g.origin_m,
        direction: g.direction,
    };
    Some(nifti::resample_labels(labels, &coarse))
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
    /// Where the labels came from: `"label map"` (NIfTI), `"DICOM SEG"` or the preset's name.
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

/// The labels of the volume: the label map given (NIfTI or DICOM SEG, resampled if needed),
/// or a preset's. Remarks go to `notes`.
pub fn labels(
    opts: &TwinBuildOptions,
    volume: &ScalarVolume,
    provenance: &Provenance,
    notes: &mut Vec<String>,
) -> Result<(LabelVolume, String), TwinBuildError> {
    if let Some(path) = &opts.labels {
        let (map, from) = if is_nifti(path) {
            (nifti::read_label_nifti(path)?, "label map")
        } else {
            let seg = dicom_seg::read_seg_with(path, &dicom::ImportOptions::default())?;
            notes.extend(seg.notes);
            (seg.labels, "DICOM SEG")
        };
        let map = if map.grid == volume.grid {
            map
        } else {
            if !is_nifti(path) {
                notes.push("the DICOM SEG was resampled onto the image grid".into());
            }
            nifti::resample_labels(&map, &volume.grid)
        };
        return Ok((map, from.into()));
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
    let labels = match downsample_mean(volume, SEGMENT_VOXEL_M) {
        Some(coarse) => segment::segment(&coarse, &preset)?,
        None => segment::segment(volume, &preset)?,
    };
    Ok((labels, name))
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
    let (mut labels, from) = labels(opts, &volume, &provenance, &mut report.notes)?;
    drop(volume);
    if !opts.all_tissues {
        let mut dropped = 0u64;
        for v in labels.data.iter_mut() {
            if *v == Label::Fat as u8 || *v == Label::Bone as u8 {
                *v = 0;
                dropped += 1;
            }
        }
        if dropped > 0 {
            report.notes.push(format!(
                "{dropped} voxels of fat and bone left out of the twin (--all-tissues keeps them)"
            ));
        }
    }
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
    let surface = match coarsen(&labels, SURFACE_VOXEL_M) {
        Some(coarse) => build::label_surface(&coarse, opts.surface_triangles),
        None => build::label_surface(&labels, opts.surface_triangles),
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::volume::Grid;

    /// Block averages of a linear field equal the field at the blocks' centres, where the new
    /// grid says they are; labels coarsen onto a grid covering the same extent.
    #[test]
    fn downsampling_keeps_the_patient_frame() {
        let mut g = Grid::axis_aligned([9, 8, 6], [0.4e-3, 0.4e-3, 0.5e-3], [0.01, -0.02, 0.03]);
        g.direction = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
        let field = |p: nalgebra::Vector3<f64>| (100.0 * p.x - 50.0 * p.y + 30.0 * p.z) as f32;
        let mut data = Vec::new();
        for k in 0..6 {
            for j in 0..8 {
                for i in 0..9 {
                    data.push(field(g.voxel_to_patient([i as f64, j as f64, k as f64])));
                }
            }
        }
        let v = ScalarVolume::new(g.clone(), data).unwrap();
        let d = downsample_mean(&v, 0.8e-3).unwrap();
        assert_eq!(d.grid.dims, [5, 4, 3]);
        for k in 0..3 {
            for j in 0..4 {
                // Full blocks only (the last i block holds one voxel).
                for i in 0..4 {
                    let want = field(d.grid.voxel_to_patient([i as f64, j as f64, k as f64]));
                    let got = d.get(i, j, k).unwrap();
                    assert!((got - want).abs() < 1e-5, "({i},{j},{k}): {got} vs {want}");
                }
            }
        }
        assert!(downsample_mean(&d, 0.8e-3).is_none());
        let labels = crate::twin::volume::Volume::filled(g, 1u8).unwrap();
        let c = coarsen(&labels, 1e-3).unwrap();
        assert!(c.grid.spacing_m.iter().all(|&s| s >= 1e-3));
        assert!(c.data.iter().all(|&l| l == 1));
    }
}
