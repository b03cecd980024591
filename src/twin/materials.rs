//! Materials per tissue label: the defaults of `shared/reference/tissue.md`, overridable by a
//! TOML file (`haptwin twin build --materials FILE`).
//!
//! The file has one table per label name, each with any of the three fields:
//!
//! ```toml
//! format_version = 1
//! [tumour]
//! youngs_modulus_pa = 40000.0
//! [parenchyma]
//! poisson_ratio = 0.47
//! ```
//!
//! Contract: every material returned is valid (E > 0, 0 <= nu < 0.5, density > 0); an unknown
//! label, field or value out of range is an error naming the file and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::labels::Label;
use crate::tissue::Material;

/// A material as stored in a twin (and shown by `twin info`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelMaterial {
    /// Label value.
    pub label: u8,
    /// Young's modulus, pascals.
    pub youngs_modulus_pa: f64,
    /// Poisson ratio.
    pub poisson_ratio: f64,
    /// Density, kg/m^3.
    pub density_kg_per_m3: f64,
}

impl LabelMaterial {
    /// The tissue model's material.
    pub fn material(&self) -> Material {
        Material {
            youngs_modulus_pa: self.youngs_modulus_pa,
            poisson_ratio: self.poisson_ratio,
            density_kg_per_m3: self.density_kg_per_m3,
        }
    }

    /// Whether the values are physically meaningful.
    pub fn problem(&self) -> Option<String> {
        if !(self.youngs_modulus_pa.is_finite() && self.youngs_modulus_pa > 0.0) {
            return Some(format!(
                "youngs_modulus_pa must be positive, is {}",
                self.youngs_modulus_pa
            ));
        }
        if !(0.0..0.5).contains(&self.poisson_ratio) {
            return Some(format!(
                "poisson_ratio must be in [0, 0.5), is {}",
                self.poisson_ratio
            ));
        }
        if !(self.density_kg_per_m3.is_finite() && self.density_kg_per_m3 > 0.0) {
            return Some(format!(
                "density_kg_per_m3 must be positive, is {}",
                self.density_kg_per_m3
            ));
        }
        None
    }
}

/// The default material of every label present.
pub fn defaults(labels: &[u8]) -> Vec<LabelMaterial> {
    labels
        .iter()
        .map(|&l| {
            let m = Label::from_u8(l)
                .unwrap_or(Label::Parenchyma)
                .default_material();
            LabelMaterial {
                label: l,
                youngs_modulus_pa: m.youngs_modulus_pa,
                poisson_ratio: m.poisson_ratio,
                density_kg_per_m3: m.density_kg_per_m3,
            }
        })
        .collect()
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Override {
    youngs_modulus_pa: Option<f64>,
    poisson_ratio: Option<f64>,
    density_kg_per_m3: Option<f64>,
}

#[derive(Debug, serde::Deserialize)]
struct OverrideFile {
    format_version: u32,
    #[serde(flatten)]
    labels: BTreeMap<String, Override>,
}

/// Why a materials file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MaterialsError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// It is not TOML of the expected shape.
    #[error("{path} is not a materials file: {message}")]
    Parse { path: PathBuf, message: String },
    /// A table names no known label, or a value is out of range.
    #[error("{path}: [{label}] {problem}")]
    Invalid {
        path: PathBuf,
        label: String,
        problem: String,
    },
}

/// Applies the overrides in `path` to `materials`.
pub fn apply_overrides(materials: &mut [LabelMaterial], path: &Path) -> Result<(), MaterialsError> {
    let text = std::fs::read_to_string(path).map_err(|source| MaterialsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    apply_override_text(materials, &text, path)
}

/// Applies overrides given as text (`path` names it in errors).
pub fn apply_override_text(
    materials: &mut [LabelMaterial],
    text: &str,
    path: &Path,
) -> Result<(), MaterialsError> {
    let file: OverrideFile = toml::from_str(text).map_err(|e| MaterialsError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let invalid = |label: &str, problem: String| MaterialsError::Invalid {
        path: path.to_path_buf(),
        label: label.to_string(),
        problem,
    };
    if file.format_version != 1 {
        return Err(invalid(
            "format_version",
            format!("is {}, this haptwin reads 1", file.format_version),
        ));
    }
    for (name, o) in &file.labels {
        let label = Label::ALL
            .iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| {
                invalid(
                    name,
                    format!(
                        "is not a label (labels: {})",
                        Label::ALL.map(|l| l.name()).join(", ")
                    ),
                )
            })?;
        for m in materials.iter_mut().filter(|m| m.label == *label as u8) {
            if let Some(v) = o.youngs_modulus_pa {
                m.youngs_modulus_pa = v;
            }
            if let Some(v) = o.poisson_ratio {
                m.poisson_ratio = v;
            }
            if let Some(v) = o.density_kg_per_m3 {
                m.density_kg_per_m3 = v;
            }
            if let Some(p) = m.problem() {
                return Err(invalid(name, p));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_bad_ones_name_the_file_and_label() {
        let mut m = defaults(&[1, 2]);
        assert_eq!(m[1].youngs_modulus_pa, 27_000.0);
        let p = Path::new("m.toml");
        apply_override_text(
            &mut m,
            "format_version = 1\n[tumour]\nyoungs_modulus_pa = 40000.0\n",
            p,
        )
        .unwrap();
        assert_eq!(m[1].youngs_modulus_pa, 40_000.0);
        assert_eq!(m[0].youngs_modulus_pa, 5_400.0);
        let err = apply_override_text(&mut m, "format_version = 1\n[spleen]\n", p)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.toml: [spleen] is not a label"), "{err}");
        let err = apply_override_text(
            &mut m,
            "format_version = 1\n[parenchyma]\npoisson_ratio = 0.5\n",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("poisson_ratio must be in [0, 0.5)"), "{err}");
        let err = apply_override_text(&mut m, "format_version = 1\n[tumour]\nstiffness = 3\n", p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a materials file"), "{err}");
    }
}
