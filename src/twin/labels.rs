//! The tissue labels of a twin and their default materials.
//!
//! Label values are what label maps hold (`0` is background). The default materials come from
//! `shared/reference/tissue.md`'s table; a TOML file can override them (`twin build
//! --materials`).

use crate::tissue::Material;

/// A tissue label.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[repr(u8)]
pub enum Label {
    /// Nothing (air, outside the patient, or tissue the preset does not keep).
    Background = 0,
    /// The organ's parenchyma (liver in the abdominal presets and the phantom).
    Parenchyma = 1,
    /// A tumour or lesion.
    Tumour = 2,
    /// A blood vessel.
    Vessel = 3,
    /// Fat.
    Fat = 4,
    /// Bone (rigid in the simulation).
    Bone = 5,
}

impl Label {
    /// Every label, in value order.
    pub const ALL: [Label; 6] = [
        Label::Background,
        Label::Parenchyma,
        Label::Tumour,
        Label::Vessel,
        Label::Fat,
        Label::Bone,
    ];

    /// The label with this value.
    pub fn from_u8(v: u8) -> Option<Label> {
        Label::ALL.get(v as usize).copied()
    }

    /// Its name in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Label::Background => "background",
            Label::Parenchyma => "parenchyma",
            Label::Tumour => "tumour",
            Label::Vessel => "vessel",
            Label::Fat => "fat",
            Label::Bone => "bone",
        }
    }

    /// The default material of this tissue (E, nu, density).
    pub fn default_material(self) -> Material {
        let m = |e: f64, nu: f64, rho: f64| Material {
            youngs_modulus_pa: e,
            poisson_ratio: nu,
            density_kg_per_m3: rho,
        };
        match self {
            Label::Background => m(1_000.0, 0.3, 1.0),
            Label::Parenchyma => Material::LIVER,
            Label::Tumour => m(27_000.0, 0.45, 1_060.0),
            Label::Vessel => m(20_000.0, 0.45, 1_050.0),
            Label::Fat => m(3_000.0, 0.45, 920.0),
            Label::Bone => m(100_000.0, 0.3, 1_900.0),
        }
    }
}
