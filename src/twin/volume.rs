//! Volumes on a voxel grid placed in the patient frame: the common currency of the twin
//! pipeline (imaging in, segmentation, surfaces, meshing).
//!
//! A [`Volume`] holds `dims[0] * dims[1] * dims[2]` voxels, `i` fastest, then `j`, then `k`
//! (index `i + dims[0] * (j + dims[1] * k)`). Voxel `(i, j, k)`'s centre lies at
//! `origin_m + direction * diag(spacing_m) * (i, j, k)` in the patient frame: DICOM's LPS (x
//! towards the patient's left, y posterior, z head), metres. `direction`'s columns are the unit
//! vectors of the `i`, `j` and `k` axes in that frame (orthonormal; a NIfTI's RAS frame is
//! turned into LPS at import). SI inside: metres, not the millimetres of the file formats.
//!
//! Contract: constructors check that the data length matches the dimensions and that spacing
//! is positive and finite; accessors never panic on an index inside `dims`.

use nalgebra::{Matrix3, Vector3};

/// What a voxel grid is and where it lies.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Grid {
    /// Voxels along `i`, `j`, `k`.
    pub dims: [usize; 3],
    /// Distance between voxel centres along `i`, `j`, `k`, metres.
    pub spacing_m: [f64; 3],
    /// Centre of voxel `(0, 0, 0)` in the patient frame (LPS), metres.
    pub origin_m: [f64; 3],
    /// Columns: unit vectors of the `i`, `j`, `k` axes in the patient frame (row-major here:
    /// `direction[r][c]` is row `r`, column `c`).
    pub direction: [[f64; 3]; 3],
}

/// Why a grid or volume is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VolumeError {
    /// A dimension is zero, or the voxel count overflows.
    #[error("bad dimensions {0:?}")]
    Dims([usize; 3]),
    /// A spacing is not positive and finite.
    #[error("bad voxel spacing {0:?} m")]
    Spacing([f64; 3]),
    /// The direction matrix is not orthonormal.
    #[error("the axes are not orthonormal: {0:?}")]
    Direction([[f64; 3]; 3]),
    /// The data does not match the dimensions.
    #[error("{got} voxels for dimensions {dims:?} ({want} expected)")]
    Length {
        dims: [usize; 3],
        want: usize,
        got: usize,
    },
}

impl Grid {
    /// An axis-aligned grid (identity direction).
    pub fn axis_aligned(dims: [usize; 3], spacing_m: [f64; 3], origin_m: [f64; 3]) -> Self {
        Self {
            dims,
            spacing_m,
            origin_m,
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    /// Checks dimensions, spacing and direction.
    pub fn validate(&self) -> Result<(), VolumeError> {
        if self.dims.contains(&0)
            || self.dims[0]
                .checked_mul(self.dims[1])
                .and_then(|n| n.checked_mul(self.dims[2]))
                .is_none()
        {
            return Err(VolumeError::Dims(self.dims));
        }
        if !self.spacing_m.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(VolumeError::Spacing(self.spacing_m));
        }
        let d = self.direction_matrix();
        let err = (d.transpose() * d - Matrix3::identity()).abs().max();
        if err.is_nan() || err >= 1e-4 {
            return Err(VolumeError::Direction(self.direction));
        }
        Ok(())
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }

    /// Whether the grid has no voxels (never, once validated).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of voxel `(i, j, k)`.
    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.dims[0] * (j + self.dims[1] * k)
    }

    /// The direction as a matrix (columns: the axes).
    pub fn direction_matrix(&self) -> Matrix3<f64> {
        let d = &self.direction;
        Matrix3::new(
            d[0][0], d[0][1], d[0][2], d[1][0], d[1][1], d[1][2], d[2][0], d[2][1], d[2][2],
        )
    }

    /// Patient-frame position of a (possibly fractional) voxel coordinate, metres.
    pub fn voxel_to_patient(&self, ijk: [f64; 3]) -> Vector3<f64> {
        let scaled = Vector3::new(
            ijk[0] * self.spacing_m[0],
            ijk[1] * self.spacing_m[1],
            ijk[2] * self.spacing_m[2],
        );
        Vector3::from(self.origin_m) + self.direction_matrix() * scaled
    }

    /// Voxel coordinate (fractional) of a patient-frame position.
    pub fn patient_to_voxel(&self, p_m: Vector3<f64>) -> [f64; 3] {
        let local = self.direction_matrix().transpose() * (p_m - Vector3::from(self.origin_m));
        [
            local.x / self.spacing_m[0],
            local.y / self.spacing_m[1],
            local.z / self.spacing_m[2],
        ]
    }

    /// Physical extent along each axis (first to last voxel centre), metres.
    pub fn extent_m(&self) -> [f64; 3] {
        std::array::from_fn(|a| (self.dims[a].saturating_sub(1)) as f64 * self.spacing_m[a])
    }
}

/// Voxels of type `T` on a [`Grid`].
#[derive(Debug, Clone, PartialEq)]
pub struct Volume<T> {
    /// Where the voxels are.
    pub grid: Grid,
    /// The voxels, `i` fastest.
    pub data: Vec<T>,
}

/// Intensities: Hounsfield units for CT, the scanner's scale for MR.
pub type ScalarVolume = Volume<f32>;
/// Tissue labels (see [`super::labels`]).
pub type LabelVolume = Volume<u8>;

impl<T: Copy> Volume<T> {
    /// A volume from its grid and data (checked).
    pub fn new(grid: Grid, data: Vec<T>) -> Result<Self, VolumeError> {
        grid.validate()?;
        if data.len() != grid.len() {
            return Err(VolumeError::Length {
                dims: grid.dims,
                want: grid.len(),
                got: data.len(),
            });
        }
        Ok(Self { grid, data })
    }

    /// A volume filled with `value`.
    pub fn filled(grid: Grid, value: T) -> Result<Self, VolumeError> {
        grid.validate()?;
        let n = grid.len();
        Ok(Self {
            grid,
            data: vec![value; n],
        })
    }

    /// Voxel `(i, j, k)`, or `None` outside.
    #[inline]
    pub fn get(&self, i: usize, j: usize, k: usize) -> Option<T> {
        let [a, b, c] = self.grid.dims;
        (i < a && j < b && k < c).then(|| self.data[self.grid.index(i, j, k)])
    }

    /// Sets voxel `(i, j, k)` (ignored outside).
    #[inline]
    pub fn set(&mut self, i: usize, j: usize, k: usize, value: T) {
        let [a, b, c] = self.grid.dims;
        if i < a && j < b && k < c {
            let n = self.grid.index(i, j, k);
            self.data[n] = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voxel_and_patient_coordinates_round_trip_and_bad_grids_are_refused() {
        let mut g = Grid::axis_aligned([4, 5, 6], [0.001, 0.002, 0.003], [0.1, -0.2, 0.3]);
        // Turned 90 degrees about z: i runs along +y, j along -x.
        g.direction = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
        g.validate().unwrap();
        let p = g.voxel_to_patient([2.0, 3.0, 1.0]);
        assert!((p - Vector3::new(0.1 - 0.006, -0.2 + 0.002, 0.303)).norm() < 1e-12);
        let back = g.patient_to_voxel(p);
        assert!((0..3).all(|a| (back[a] - [2.0, 3.0, 1.0][a]).abs() < 1e-9));
        assert_eq!(g.index(1, 2, 3), 1 + 4 * (2 + 5 * 3));
        let v = Volume::new(g.clone(), vec![0u8; 120]).unwrap();
        assert_eq!(v.get(3, 4, 5), Some(0));
        assert_eq!(v.get(4, 0, 0), None);
        assert!(matches!(
            Volume::new(g.clone(), vec![0u8; 119]),
            Err(VolumeError::Length { .. })
        ));
        let mut bad = g.clone();
        bad.spacing_m[1] = 0.0;
        assert!(matches!(bad.validate(), Err(VolumeError::Spacing(_))));
        let mut bad = g;
        bad.direction[0][0] = 0.5;
        assert!(matches!(bad.validate(), Err(VolumeError::Direction(_))));
    }
}
