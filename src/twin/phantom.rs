//! The built-in phantom: a procedural liver-like organ with a stiffer tumour and a vessel,
//! as a CT volume (Hounsfield units) and its label map. Deterministic: the same voxel size gives
//! the same bits.
//!
//! Shape (patient frame, LPS, metres, centred on the origin): the organ is the smooth union of
//! a large flattened ellipsoid (the right lobe) and a smaller one reaching to the patient's
//! left (the left lobe), cut flat underneath where it lies on the table (4 cm thick, about
//! 18 x 12 cm, half a litre), with a gentle relief on its top so it is not a textbook shape.
//! The tumour is an 11 mm-radius sphere in the right lobe, its top about 9 mm under the
//! surface; the vessel is a 4 mm-radius tube curving through the organ beside the tumour. HU: air -1000, table/background fat -100, parenchyma 60, tumour 35
//! (hypodense, as many liver lesions on contrast CT), vessel 250 (contrast-filled).
//!
//! Contract: [`phantom`] allocates the two volumes and nothing else; a voxel size outside
//! 0.25-5 mm is refused.

use nalgebra::Vector3;

use super::labels::Label;
use super::volume::{Grid, LabelVolume, ScalarVolume, VolumeError};

/// HU of the phantom's tissues.
pub const HU_AIR: f32 = -1000.0;
/// HU of the fat the organ lies in.
pub const HU_FAT: f32 = -100.0;
/// HU of the parenchyma.
pub const HU_PARENCHYMA: f32 = 60.0;
/// HU of the tumour.
pub const HU_TUMOUR: f32 = 35.0;
/// HU of the (contrast-filled) vessel.
pub const HU_VESSEL: f32 = 250.0;

/// Where the organ is cut flat underneath (LPS y, metres): the table it lies on.
pub const TABLE_Y_M: f64 = 0.016;

/// Half extents of the phantom's field of view, metres (x, y, z in LPS).
pub const HALF_EXTENT_M: [f64; 3] = [0.105, 0.06, 0.08];

/// The phantom's geometry, as signed-distance-like functions of a patient-frame point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhantomShape {
    /// Tumour centre, metres.
    pub tumour_center_m: [f64; 3],
    /// Tumour radius, metres.
    pub tumour_radius_m: f64,
    /// Vessel radius, metres.
    pub vessel_radius_m: f64,
}

impl Default for PhantomShape {
    fn default() -> Self {
        Self {
            // Anterior is -y in LPS: the top of the organ (facing the surgeon) is at -y.
            tumour_center_m: [-0.02, -0.004, 0.0],
            tumour_radius_m: 0.011,
            vessel_radius_m: 0.004,
        }
    }
}

/// Smooth minimum (polynomial, blend width `k`).
fn smin(a: f64, b: f64, k: f64) -> f64 {
    let h = (0.5 + 0.5 * (b - a) / k).clamp(0.0, 1.0);
    b + (a - b) * h - k * h * (1.0 - h)
}

/// Approximate signed distance to an axis-aligned ellipsoid (negative inside), metres.
fn ellipsoid(p: Vector3<f64>, c: Vector3<f64>, r: Vector3<f64>) -> f64 {
    let q = p - c;
    let k0 = Vector3::new(q.x / r.x, q.y / r.y, q.z / r.z).norm();
    let k1 = Vector3::new(q.x / (r.x * r.x), q.y / (r.y * r.y), q.z / (r.z * r.z)).norm();
    if k1 == 0.0 {
        return -r.min();
    }
    k0 * (k0 - 1.0) / k1
}

impl PhantomShape {
    /// Signed distance (approximate, negative inside) to the organ's outer surface.
    pub fn organ(&self, p: Vector3<f64>) -> f64 {
        let right = ellipsoid(
            p,
            Vector3::new(-0.02, 0.0, 0.0),
            Vector3::new(0.07, 0.024, 0.06),
        );
        let left = ellipsoid(
            p,
            Vector3::new(0.045, -0.004, 0.008),
            Vector3::new(0.05, 0.016, 0.042),
        );
        let body = smin(right, left, 0.015);
        // A gentle relief on the top (anterior, -y) surface.
        let relief = 0.0015 * (p.x * 90.0).sin() * (p.z * 70.0).cos();
        // Flat underneath, where it lies on the table (posterior, +y).
        let table = p.y - TABLE_Y_M;
        body.max(table) + relief
    }

    /// Signed distance to the tumour.
    pub fn tumour(&self, p: Vector3<f64>) -> f64 {
        (p - Vector3::from(self.tumour_center_m)).norm() - self.tumour_radius_m
    }

    /// Signed distance to the vessel: a tube along a gentle arc in the x-z plane, beside the
    /// tumour.
    pub fn vessel(&self, p: Vector3<f64>) -> f64 {
        // Centre line: z from -0.07 to 0.07, x = 0.01 + 0.12 (z^2) - 0.03 * ..., y = 0.0.
        let z = p.z.clamp(-0.075, 0.075);
        let cx = 0.008 + 6.0 * z * z;
        let cy = 0.002;
        let d = ((p.x - cx).powi(2) + (p.y - cy).powi(2)).sqrt();
        let along = (p.z - z).abs();
        (d - self.vessel_radius_m).max(along - 0.0)
    }

    /// The label at a point.
    pub fn label(&self, p: Vector3<f64>) -> Label {
        if self.organ(p) > 0.0 {
            return Label::Background;
        }
        if self.tumour(p) <= 0.0 {
            Label::Tumour
        } else if self.vessel(p) <= 0.0 {
            Label::Vessel
        } else {
            Label::Parenchyma
        }
    }
}

/// The phantom sampled at `voxel_m` (isotropic): its CT and its labels on the same grid.
pub fn phantom(voxel_m: f64) -> Result<(ScalarVolume, LabelVolume), VolumeError> {
    if !(0.25e-3..=5e-3).contains(&voxel_m) {
        return Err(VolumeError::Spacing([voxel_m; 3]));
    }
    let dims: [usize; 3] =
        std::array::from_fn(|a| (2.0 * HALF_EXTENT_M[a] / voxel_m).round() as usize + 1);
    let origin: [f64; 3] = std::array::from_fn(|a| -HALF_EXTENT_M[a]);
    phantom_on(&Grid::axis_aligned(dims, [voxel_m; 3], origin))
}

/// The phantom sampled on any grid (e.g. a CT's 512 x 512 x 300), on up to two threads.
pub fn phantom_on(grid: &Grid) -> Result<(ScalarVolume, LabelVolume), VolumeError> {
    grid.validate()?;
    let shape = PhantomShape::default();
    let n = grid.len();
    let mut hu = vec![0f32; n];
    let mut labels = vec![0u8; n];
    let plane = grid.dims[0] * grid.dims[1];
    let half = grid.dims[2].div_ceil(2) * plane;
    std::thread::scope(|s| {
        for (part, (hu, labels)) in hu.chunks_mut(half).zip(labels.chunks_mut(half)).enumerate() {
            let shape = &shape;
            s.spawn(move || {
                for (o, (h, l)) in hu.iter_mut().zip(labels.iter_mut()).enumerate() {
                    let idx = part * half + o;
                    let i = idx % grid.dims[0];
                    let j = (idx / grid.dims[0]) % grid.dims[1];
                    let k = idx / plane;
                    let p = grid.voxel_to_patient([i as f64, j as f64, k as f64]);
                    let label = shape.label(p);
                    *h = match label {
                        Label::Background if p.y > TABLE_Y_M => HU_AIR,
                        Label::Background => HU_FAT,
                        Label::Tumour => HU_TUMOUR,
                        Label::Vessel => HU_VESSEL,
                        _ => HU_PARENCHYMA,
                    };
                    *l = label as u8;
                }
            });
        }
    });
    Ok((
        ScalarVolume::new(grid.clone(), hu)?,
        LabelVolume::new(grid.clone(), labels)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phantom_has_its_parts_where_they_belong_and_is_deterministic() {
        let (ct, labels) = phantom(2e-3).unwrap();
        let count = |l: Label| labels.data.iter().filter(|&&v| v == l as u8).count();
        let voxel_m3 = 8e-9;
        let organ_m3 = (count(Label::Parenchyma) + count(Label::Tumour) + count(Label::Vessel))
            as f64
            * voxel_m3;
        // A liver-sized organ: a few hundred millilitres.
        assert!((0.3e-3..0.8e-3).contains(&organ_m3), "{organ_m3} m^3");
        let tumour_m3 = count(Label::Tumour) as f64 * voxel_m3;
        let r = PhantomShape::default().tumour_radius_m;
        let sphere = 4.0 / 3.0 * std::f64::consts::PI * r.powi(3);
        assert!(
            (tumour_m3 / sphere - 1.0).abs() < 0.1,
            "{tumour_m3} vs {sphere}"
        );
        assert!(count(Label::Vessel) > 100);
        // The tumour is inside the organ, under its top.
        let s = PhantomShape::default();
        let c = Vector3::from(s.tumour_center_m);
        assert!(s.organ(c) < -0.015, "tumour centre depth {}", -s.organ(c));
        // HU follow the labels.
        for (h, l) in ct.data.iter().zip(&labels.data) {
            match Label::from_u8(*l).unwrap() {
                Label::Tumour => assert_eq!(*h, HU_TUMOUR),
                Label::Vessel => assert_eq!(*h, HU_VESSEL),
                Label::Parenchyma => assert_eq!(*h, HU_PARENCHYMA),
                _ => assert!(*h == HU_AIR || *h == HU_FAT),
            }
        }
        let (ct2, labels2) = phantom(2e-3).unwrap();
        assert!(ct
            .data
            .iter()
            .zip(&ct2.data)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(labels.data, labels2.data);
        assert!(phantom(10e-3).is_err());
    }
}
