//! Descriptor-driven generic HID devices: a TOML profile maps the fields a device's report
//! descriptor declares to position, orientation, buttons and force, and [`GenericDevice`] runs
//! any device so described behind [`HapticDevice`].
//!
//! This module owns:
//! - the profile format (`calibration/generic/<name>.toml`, `format_version = 1`, described in
//!   `docs/haptics.md`), read by [`GenericProfile::load`] / [`GenericProfile::parse`] and
//!   validated on load; errors name the file and the field;
//! - [`GenericProfile::bind`]: the profile resolved against a parsed [`Descriptor`] (the one
//!   read from the device, or the one the profile carries) into a [`Binding`] of fixed
//!   extractors, refused with the field that does not match;
//! - [`GenericDevice`], and [`open_hidapi`], which opens a real device, reads its descriptor
//!   through hidapi and falls back to the profile's bytes when the device or kernel cannot give
//!   it;
//! - the profiles shipped in `calibration/generic/` ([`SHIPPED_PROFILES`]).
//!
//! Contract:
//! - [`GenericDevice::read`] drains the transport (at most [`MAX_REPORTS_PER_READ`] reports),
//!   decoding every report it maps: absolute axes keep the newest value, relative ones add every
//!   report's change. It returns a sample when a mapped report arrived and a position report has
//!   been seen. A report whose ID the descriptor does not declare as input, or whose length
//!   differs from the descriptor's, is a bad report ([`DeviceError::BadReport`]).
//!   Numbered reports carry their report-ID byte first, as hidraw delivers them.
//! - [`GenericDevice::write_force`] encodes the force into the output report (rounded, clamped
//!   to each field's logical range; a non-finite force is sent as zero). A profile without force
//!   outputs writes nothing, and its [`DeviceInfo`] says `max_force_n = 0`.
//! - Neither allocates nor blocks after [`GenericDevice::new`]: the binding holds copyable
//!   extractors and the device holds fixed buffers (`tests/it/generic_hid.rs` counts).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::descriptor::{self, Descriptor, DescriptorError, Element, ReportKind, Usage};
use super::device::{DeviceError, DeviceInfo, DeviceSample, HapticDevice};
use super::transport::{HidTransport, HidapiTransport, TransportError, MAX_REPORT};

/// The profile format this haptwin reads.
pub const FORMAT_VERSION: u32 = 1;

/// Most reports one [`GenericDevice::read`] takes from the transport (a device flooding the
/// queue cannot hold the haptic tick; the rest wait for the next tick).
pub const MAX_REPORTS_PER_READ: usize = 64;

/// Most buttons a profile maps (the bits of [`DeviceSample::buttons`]).
pub const MAX_BUTTONS: usize = 32;

/// The profiles in `calibration/generic/`, by name.
pub const SHIPPED_PROFILES: &[(&str, &str)] = &[
    (
        "spacenavigator",
        include_str!("../../calibration/generic/spacenavigator.toml"),
    ),
    (
        "mbed-cartesian",
        include_str!("../../calibration/generic/mbed-cartesian.toml"),
    ),
];

/// Where the report descriptor comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DescriptorSource {
    /// Read it from the device; the profile's bytes, if any, are the fallback.
    #[default]
    Device,
    /// Always use the profile's bytes.
    Profile,
}

/// `[descriptor]`: where the report descriptor comes from.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DescriptorSpec {
    /// `"device"` (default) or `"profile"`.
    #[serde(default)]
    pub source: DescriptorSource,
    /// The descriptor as hex text (`05 01 09 08 ...`; `#` comments allowed).
    pub bytes: Option<String>,
}

/// One value in a report: a field found by usage, optionally a bit range inside it, and how to
/// scale it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AxisSpec {
    /// Usage page of the field (0x01 Generic Desktop, 0xFF00-0xFFFF vendor-defined, ...).
    pub usage_page: u16,
    /// Usage ID of the field.
    pub usage: u16,
    /// Report ID to look in (any report when absent).
    pub report_id: Option<u8>,
    /// For vendor fields whose bytes the descriptor leaves opaque: the value starts this many
    /// bits after the first element with the usage ...
    pub offset_bits: Option<u32>,
    /// ... and is this many bits wide (1 to 32; both or neither).
    pub size_bits: Option<u32>,
    /// ... and is two's complement (default false).
    #[serde(default)]
    pub signed: bool,
    /// +1 or -1 (default +1): the device-frame axis is `sign` times the field.
    #[serde(default = "plus_one")]
    pub sign: i8,
    /// Position axes: metres per logical unit (default: the descriptor's physical range, unit
    /// exponent and length unit).
    pub metres_per_unit: Option<f64>,
    /// Orientation axes: radians per logical unit (default: from the descriptor's angle unit).
    pub radians_per_unit: Option<f64>,
    /// Force axes: newtons per logical unit (default: from the descriptor's force unit).
    pub newtons_per_unit: Option<f64>,
}

fn plus_one() -> i8 {
    1
}

/// A button: a field found by usage (one bit, or a bit range inside a vendor field), pressed
/// when non-zero.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonSpec {
    /// Usage page (0x09 Button, ...).
    pub usage_page: u16,
    /// Usage ID.
    pub usage: u16,
    /// Report ID to look in (any when absent).
    pub report_id: Option<u8>,
    /// As in [`AxisSpec::offset_bits`].
    pub offset_bits: Option<u32>,
    /// As in [`AxisSpec::size_bits`].
    pub size_bits: Option<u32>,
}

/// `[position]`: the stylus tip in the device frame (x forward, y left, z up).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PositionSpec {
    /// Read the axes as absolute even when the descriptor marks them relative (for devices
    /// whose descriptor is known to be wrong).
    #[serde(default)]
    pub absolute: bool,
    /// The device-frame point that reads as the origin, metres (subtracted).
    #[serde(default)]
    pub origin_m: [f64; 3],
    /// Device x (forward).
    pub x: AxisSpec,
    /// Device y (left).
    pub y: AxisSpec,
    /// Device z (up).
    pub z: AxisSpec,
}

/// `[orientation]`: rotations about the device axes, radians.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrientationSpec {
    /// As in [`PositionSpec::absolute`].
    #[serde(default)]
    pub absolute: bool,
    /// About device x.
    pub x: AxisSpec,
    /// About device y.
    pub y: AxisSpec,
    /// About device z.
    pub z: AxisSpec,
}

/// `[force]`: the force outputs along the device axes.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForceSpec {
    /// Along device x.
    pub x: AxisSpec,
    /// Along device y.
    pub y: AxisSpec,
    /// Along device z.
    pub z: AxisSpec,
}

/// `[limits]`: what the loop's force guard enforces (required with `[force]`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Largest force magnitude, newtons.
    pub max_force_n: f64,
    /// Largest change of force per second, newtons per second.
    pub max_force_rate_n_per_s: f64,
    /// Highest stiffness rendered stably, newtons per metre.
    pub max_stiffness_n_per_m: f64,
}

/// A generic-device profile file, as written.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Must be [`FORMAT_VERSION`].
    pub format_version: u32,
    /// What the device is.
    pub name: String,
    /// USB vendor ID.
    pub vendor_id: u16,
    /// USB product ID.
    pub product_id: u16,
    /// Where the report descriptor comes from.
    #[serde(default)]
    pub descriptor: DescriptorSpec,
    /// Position axes.
    pub position: PositionSpec,
    /// Orientation axes, if the device has them.
    pub orientation: Option<OrientationSpec>,
    /// Buttons, bit 0 first.
    #[serde(default)]
    pub buttons: Vec<ButtonSpec>,
    /// Force outputs, if the device has them.
    pub force: Option<ForceSpec>,
    /// Force limits (with `[force]` only).
    pub limits: Option<LimitsSpec>,
}

/// Why a profile was refused, or did not fit a descriptor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The profile file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML of the profile's shape.
    #[error("{path} is not a generic HID profile: {message}")]
    Parse {
        /// The profile file.
        path: PathBuf,
        /// What the TOML reader said.
        message: String,
    },
    /// A value is out of range, or a field does not match the descriptor.
    #[error("{path}: {field} {problem}")]
    Invalid {
        /// The profile file.
        path: PathBuf,
        /// The profile field, e.g. `position.x.sign`.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The descriptor the profile is bound to does not parse.
    #[error("{path}: the report descriptor from {origin} does not parse: {source}")]
    Descriptor {
        /// The profile file.
        path: PathBuf,
        /// `"the profile"` or `"the device"`.
        origin: &'static str,
        /// The parser's error.
        source: DescriptorError,
    },
}

/// A validated profile.
#[derive(Debug, Clone, PartialEq)]
pub struct GenericProfile {
    /// Where it was read from (names it in errors).
    pub path: PathBuf,
    /// Its contents.
    pub file: ProfileFile,
    descriptor_bytes: Option<Vec<u8>>,
}

/// Which kind of quantity an axis carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quantity {
    Length,
    Angle,
    Force,
}

impl Quantity {
    fn key(self) -> &'static str {
        match self {
            Quantity::Length => "metres_per_unit",
            Quantity::Angle => "radians_per_unit",
            Quantity::Force => "newtons_per_unit",
        }
    }

    fn per_unit(self, spec: &AxisSpec) -> Option<f64> {
        match self {
            Quantity::Length => spec.metres_per_unit,
            Quantity::Angle => spec.radians_per_unit,
            Quantity::Force => spec.newtons_per_unit,
        }
    }

    fn si_per_hid_unit(self, unit: u32) -> Option<f64> {
        match self {
            Quantity::Length => descriptor::metres_per_unit(unit),
            Quantity::Angle => descriptor::radians_per_unit(unit),
            Quantity::Force => descriptor::newtons_per_unit(unit),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Quantity::Length => "a length",
            Quantity::Angle => "an angle",
            Quantity::Force => "a force",
        }
    }
}

const AXES: [&str; 3] = ["x", "y", "z"];

/// Where a profile says a value is: a usage (in one report, or any), and optionally a bit range
/// inside the field with that usage.
#[derive(Debug, Clone, Copy)]
struct Place {
    usage: Usage,
    report_id: Option<u8>,
    offset_bits: Option<u32>,
    size_bits: Option<u32>,
    signed: bool,
}

impl GenericProfile {
    /// Reads and validates a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates profile text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ProfileError> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut profile = Self {
            path: path.to_path_buf(),
            file,
            descriptor_bytes: None,
        };
        profile.validate()?;
        Ok(profile)
    }

    /// A shipped profile by name (see [`SHIPPED_PROFILES`]).
    pub fn shipped(name: &str) -> Option<Result<Self, ProfileError>> {
        SHIPPED_PROFILES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| {
                Self::parse(
                    text,
                    &Path::new("calibration/generic").join(format!("{n}.toml")),
                )
            })
    }

    /// The descriptor bytes the profile carries, if any.
    pub fn descriptor_bytes(&self) -> Option<&[u8]> {
        self.descriptor_bytes.as_deref()
    }

    fn invalid(&self, field: impl Into<String>, problem: impl Into<String>) -> ProfileError {
        ProfileError::Invalid {
            path: self.path.clone(),
            field: field.into(),
            problem: problem.into(),
        }
    }

    fn validate(&mut self) -> Result<(), ProfileError> {
        let f = &self.file;
        if f.format_version != FORMAT_VERSION {
            return Err(self.invalid(
                "format_version",
                format!(
                    "is {}, this haptwin reads {FORMAT_VERSION}",
                    f.format_version
                ),
            ));
        }
        if f.name.trim().is_empty() {
            return Err(self.invalid("name", "is empty"));
        }
        let mut checks: Vec<(String, &AxisSpec, Quantity)> = Vec::new();
        for (i, a) in [&f.position.x, &f.position.y, &f.position.z]
            .into_iter()
            .enumerate()
        {
            checks.push((format!("position.{}", AXES[i]), a, Quantity::Length));
        }
        if let Some(o) = &f.orientation {
            for (i, a) in [&o.x, &o.y, &o.z].into_iter().enumerate() {
                checks.push((format!("orientation.{}", AXES[i]), a, Quantity::Angle));
            }
        }
        if let Some(force) = &f.force {
            for (i, a) in [&force.x, &force.y, &force.z].into_iter().enumerate() {
                checks.push((format!("force.{}", AXES[i]), a, Quantity::Force));
            }
        }
        for (field, spec, quantity) in &checks {
            self.validate_axis(field, spec, *quantity)?;
        }
        if !f.position.origin_m.iter().all(|v| v.is_finite()) {
            return Err(self.invalid("position.origin_m", "must be finite"));
        }
        if f.buttons.len() > MAX_BUTTONS {
            return Err(self.invalid(
                "buttons",
                format!("maps {} buttons, at most {MAX_BUTTONS}", f.buttons.len()),
            ));
        }
        for (i, b) in f.buttons.iter().enumerate() {
            self.validate_overlay(&format!("buttons[{i}]"), b.offset_bits, b.size_bits)?;
        }
        match (&f.force, &f.limits) {
            (Some(_), None) => {
                return Err(self.invalid("limits", "are required with force outputs"));
            }
            (None, Some(_)) => {
                return Err(self.invalid("limits", "are given but the profile has no force"));
            }
            (Some(_), Some(l)) => {
                for (name, v) in [
                    ("limits.max_force_n", l.max_force_n),
                    ("limits.max_force_rate_n_per_s", l.max_force_rate_n_per_s),
                    ("limits.max_stiffness_n_per_m", l.max_stiffness_n_per_m),
                ] {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(self.invalid(name, format!("must be positive, is {v}")));
                    }
                }
            }
            (None, None) => {}
        }
        let bytes = match &f.descriptor.bytes {
            Some(text) => Some(
                descriptor::bytes_from_hex(text)
                    .map_err(|e| self.invalid("descriptor.bytes", e.to_string()))?,
            ),
            None => None,
        };
        if f.descriptor.source == DescriptorSource::Profile && bytes.is_none() {
            return Err(self.invalid(
                "descriptor.bytes",
                "are required with descriptor.source = \"profile\"",
            ));
        }
        if let Some(b) = &bytes {
            // Bind now, so a profile that does not fit its own descriptor fails on load.
            let d = Descriptor::parse(b).map_err(|source| ProfileError::Descriptor {
                path: self.path.clone(),
                origin: "the profile",
                source,
            })?;
            self.bind(&d)?;
        }
        self.descriptor_bytes = bytes;
        Ok(())
    }

    fn validate_overlay(
        &self,
        field: &str,
        offset_bits: Option<u32>,
        size_bits: Option<u32>,
    ) -> Result<(), ProfileError> {
        match (offset_bits, size_bits) {
            (Some(_), Some(size)) if !(1..=32).contains(&size) => Err(self.invalid(
                format!("{field}.size_bits"),
                format!("must be 1 to 32, is {size}"),
            )),
            (Some(_), None) | (None, Some(_)) => Err(self.invalid(
                field,
                "needs offset_bits and size_bits together, or neither",
            )),
            _ => Ok(()),
        }
    }

    fn validate_axis(
        &self,
        field: &str,
        spec: &AxisSpec,
        quantity: Quantity,
    ) -> Result<(), ProfileError> {
        if spec.sign != 1 && spec.sign != -1 {
            return Err(self.invalid(
                format!("{field}.sign"),
                format!("must be 1 or -1, is {}", spec.sign),
            ));
        }
        for q in [Quantity::Length, Quantity::Angle, Quantity::Force] {
            let Some(v) = q.per_unit(spec) else { continue };
            if q != quantity {
                return Err(self.invalid(
                    format!("{field}.{}", q.key()),
                    format!("does not belong here (this axis takes {})", quantity.key()),
                ));
            }
            if !(v.is_finite() && v != 0.0) {
                return Err(self.invalid(
                    format!("{field}.{}", q.key()),
                    format!("must be finite and non-zero, is {v}"),
                ));
            }
        }
        self.validate_overlay(field, spec.offset_bits, spec.size_bits)?;
        if spec.offset_bits.is_some() && quantity.per_unit(spec).is_none() {
            return Err(self.invalid(
                format!("{field}.{}", quantity.key()),
                "is required for a bit range (offset_bits) inside a field",
            ));
        }
        if spec.offset_bits.is_none() && spec.signed {
            return Err(self.invalid(
                format!("{field}.signed"),
                "applies to a bit range (offset_bits) only; fields take the descriptor's sign",
            ));
        }
        Ok(())
    }

    /// Finds the element `place` names in `d`.
    fn locate(
        &self,
        d: &Descriptor,
        field: &str,
        kind: ReportKind,
        place: Place,
    ) -> Result<(Option<u8>, Element), ProfileError> {
        let Place {
            usage,
            report_id,
            offset_bits,
            size_bits,
            signed,
        } = place;
        let Some((report, f, index)) = d.find(kind, usage, report_id) else {
            let place = match report_id {
                Some(id) => format!(" in report {id}"),
                None => String::new(),
            };
            return Err(self.invalid(
                field,
                format!(
                    "names {usage}, but the descriptor has no {kind} data field with it{place}"
                ),
            ));
        };
        let element = f
            .element(index)
            .ok_or_else(|| self.invalid(field, "names a field wider than 32 bits"))?;
        let element = match (offset_bits, size_bits) {
            (Some(offset), Some(size)) => {
                let start = u64::from(element.bit_offset) + u64::from(offset);
                let field_end = u64::from(f.bit_offset) + u64::from(f.bit_len());
                if start + u64::from(size) > field_end {
                    return Err(self.invalid(
                        field,
                        format!(
                            "bits {offset}..{} lie outside the {}-bit field with {usage}",
                            u64::from(offset) + u64::from(size),
                            field_end - u64::from(element.bit_offset)
                        ),
                    ));
                }
                let (lo, hi) = if signed {
                    (-(1i64 << (size - 1)), (1i64 << (size - 1)) - 1)
                } else {
                    (0, (1i64 << size) - 1)
                };
                Element {
                    bit_offset: start as u32,
                    bit_size: size,
                    signed,
                    logical_min: lo,
                    logical_max: hi,
                    physical_min: lo,
                    physical_max: hi,
                    unit_exponent: 0,
                    unit: 0,
                    relative: element.relative,
                }
            }
            _ => element,
        };
        Ok((report.id, element))
    }

    fn bind_axes(
        &self,
        d: &Descriptor,
        section: &str,
        specs: [&AxisSpec; 3],
        quantity: Quantity,
        kind: ReportKind,
    ) -> Result<(Option<u8>, [LinearAxis; 3]), ProfileError> {
        let mut report = None;
        let mut axes = [LinearAxis::default(); 3];
        for (i, spec) in specs.into_iter().enumerate() {
            let field = format!("{section}.{}", AXES[i]);
            let place = Place {
                usage: Usage::new(spec.usage_page, spec.usage),
                report_id: spec.report_id,
                offset_bits: spec.offset_bits,
                size_bits: spec.size_bits,
                signed: spec.signed,
            };
            let (id, element) = self.locate(d, &field, kind, place)?;
            match report {
                None => report = Some(id),
                Some(first) if first != id => {
                    return Err(self.invalid(
                        field,
                        format!(
                            "is in report {}, the other {section} axes in report {}: they must \
                             share one report",
                            id.map_or(0, u16::from),
                            first.map_or(0, u16::from)
                        ),
                    ));
                }
                Some(_) => {}
            }
            let (si_offset, si_per_unit) = match quantity.per_unit(spec) {
                Some(per) => (0.0, per),
                None => {
                    let si = quantity.si_per_hid_unit(element.unit).ok_or_else(|| {
                        self.invalid(
                            format!("{field}.{}", quantity.key()),
                            format!(
                                "is needed: the field's unit (0x{:x}) is not {}",
                                element.unit,
                                quantity.what()
                            ),
                        )
                    })?;
                    let (Some(per), Some(at_zero)) =
                        (element.physical_per_logical(), element.physical(0))
                    else {
                        return Err(self.invalid(
                            format!("{field}.{}", quantity.key()),
                            "is needed: the field's logical range is empty",
                        ));
                    };
                    (at_zero * si, per * si)
                }
            };
            if !(si_per_unit.is_finite() && si_per_unit != 0.0 && si_offset.is_finite()) {
                return Err(self.invalid(
                    field,
                    "scales to zero or a non-finite value from the descriptor's ranges",
                ));
            }
            axes[i] = LinearAxis {
                element,
                sign: f64::from(spec.sign),
                si_offset,
                si_per_unit,
            };
        }
        Ok((report.unwrap_or(None), axes))
    }

    /// Resolves the profile against a parsed descriptor.
    pub fn bind(&self, d: &Descriptor) -> Result<Binding, ProfileError> {
        let f = &self.file;
        let p = &f.position;
        let (position_report, position) = self.bind_axes(
            d,
            "position",
            [&p.x, &p.y, &p.z],
            Quantity::Length,
            ReportKind::Input,
        )?;
        let orientation = match &f.orientation {
            Some(o) => {
                let (report_id, axes) = self.bind_axes(
                    d,
                    "orientation",
                    [&o.x, &o.y, &o.z],
                    Quantity::Angle,
                    ReportKind::Input,
                )?;
                Some(InputAxes {
                    report_id,
                    absolute: o.absolute,
                    axes,
                })
            }
            None => None,
        };
        let mut buttons = Vec::with_capacity(f.buttons.len());
        for (i, b) in f.buttons.iter().enumerate() {
            let place = Place {
                usage: Usage::new(b.usage_page, b.usage),
                report_id: b.report_id,
                offset_bits: b.offset_bits,
                size_bits: b.size_bits,
                signed: false,
            };
            let (report_id, element) =
                self.locate(d, &format!("buttons[{i}]"), ReportKind::Input, place)?;
            buttons.push(ButtonBinding { report_id, element });
        }
        let force = match &f.force {
            Some(force) => {
                let (report_id, mut axes) = self.bind_axes(
                    d,
                    "force",
                    [&force.x, &force.y, &force.z],
                    Quantity::Force,
                    ReportKind::Output,
                )?;
                let report = d
                    .report(ReportKind::Output, report_id)
                    .ok_or_else(|| self.invalid("force", "has no output report"))?;
                let shift = report.output_bit_shift();
                for a in &mut axes {
                    a.element = a.element.shifted(shift);
                }
                Some(OutputAxes {
                    report_id,
                    buffer_len: report.output_buffer_len(),
                    axes,
                })
            }
            None => None,
        };
        let limits = f.limits.as_ref();
        Ok(Binding {
            numbered: d.uses_report_ids,
            input_lens: d
                .reports_of(ReportKind::Input)
                .map(|r| (r.id, r.len_bytes))
                .collect(),
            position: InputAxes {
                report_id: position_report,
                absolute: p.absolute,
                axes: position,
            },
            origin_m: p.origin_m,
            orientation,
            buttons,
            force,
            max_force_n: limits.map_or(0.0, |l| l.max_force_n),
            max_force_rate_n_per_s: limits.map_or(0.0, |l| l.max_force_rate_n_per_s),
            max_stiffness_n_per_m: limits.map_or(0.0, |l| l.max_stiffness_n_per_m),
        })
    }

    /// Resolves the profile against the descriptor it carries.
    pub fn bind_own_descriptor(&self) -> Result<Binding, ProfileError> {
        let bytes = self.descriptor_bytes().ok_or_else(|| {
            self.invalid("descriptor.bytes", "are needed: the profile carries none")
        })?;
        let d = Descriptor::parse(bytes).map_err(|source| ProfileError::Descriptor {
            path: self.path.clone(),
            origin: "the profile",
            source,
        })?;
        self.bind(&d)
    }
}

/// One axis: a value in a report, and the affine map to SI units (`si_offset + si_per_unit *
/// logical`, times `sign`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearAxis {
    /// Where the value lies.
    pub element: Element,
    /// +1 or -1.
    pub sign: f64,
    /// SI value at logical 0.
    pub si_offset: f64,
    /// SI units per logical unit.
    pub si_per_unit: f64,
}

impl Default for LinearAxis {
    fn default() -> Self {
        Self {
            element: Element {
                bit_offset: 0,
                bit_size: 1,
                signed: false,
                logical_min: 0,
                logical_max: 1,
                physical_min: 0,
                physical_max: 1,
                unit_exponent: 0,
                unit: 0,
                relative: false,
            },
            sign: 1.0,
            si_offset: 0.0,
            si_per_unit: 1.0,
        }
    }
}

/// Three input axes in one report.
#[derive(Debug, Clone, PartialEq)]
pub struct InputAxes {
    /// Their report.
    pub report_id: Option<u8>,
    /// Read relative fields as absolute.
    pub absolute: bool,
    /// Device x, y, z.
    pub axes: [LinearAxis; 3],
}

/// A button bit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ButtonBinding {
    /// Its report.
    pub report_id: Option<u8>,
    /// Where it lies.
    pub element: Element,
}

/// Three force outputs in one output report; elements are placed in the hidraw write buffer
/// (report-ID byte first).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputAxes {
    /// Their report.
    pub report_id: Option<u8>,
    /// Bytes of the hidraw write, report-ID byte included.
    pub buffer_len: usize,
    /// Device x, y, z.
    pub axes: [LinearAxis; 3],
}

/// A profile resolved against a descriptor: everything [`GenericDevice`] needs, fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The descriptor uses report IDs.
    pub numbered: bool,
    /// Every input report the descriptor declares, with its length (report-ID byte included).
    pub input_lens: Vec<(Option<u8>, usize)>,
    /// Position.
    pub position: InputAxes,
    /// Subtracted from the position, metres.
    pub origin_m: [f64; 3],
    /// Orientation, if mapped.
    pub orientation: Option<InputAxes>,
    /// Buttons, bit 0 first.
    pub buttons: Vec<ButtonBinding>,
    /// Force outputs, if any.
    pub force: Option<OutputAxes>,
    /// Force limit, newtons (0 without force outputs).
    pub max_force_n: f64,
    /// Force rate limit, newtons per second.
    pub max_force_rate_n_per_s: f64,
    /// Stiffness limit, newtons per metre.
    pub max_stiffness_n_per_m: f64,
}

/// The decoded state of a device.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct State {
    position_m: [f64; 3],
    have_position: bool,
    orientation_rad: [f64; 3],
    buttons: u32,
}

impl InputAxes {
    /// Updates `values` from `report`; `None` if a value lies past its end.
    fn update(&self, report: &[u8], values: &mut [f64; 3]) -> Option<()> {
        for (axis, value) in self.axes.iter().zip(values.iter_mut()) {
            let v = axis.element.read(report)?;
            if axis.element.relative && !self.absolute {
                *value += axis.sign * axis.si_per_unit * v as f64;
            } else {
                *value = axis.sign * (axis.si_offset + axis.si_per_unit * v as f64);
            }
        }
        Some(())
    }
}

impl Binding {
    /// Decodes one input report into `state`: `Ok(true)` if it carried anything mapped.
    fn decode(&self, report: &[u8], state: &mut State) -> Result<bool, &'static str> {
        let id = if self.numbered {
            match report.first() {
                Some(&id) => Some(id),
                None => return Err("empty input report"),
            }
        } else {
            None
        };
        let Some(&(_, len)) = self.input_lens.iter().find(|(r, _)| *r == id) else {
            return Err("input report ID the descriptor does not declare");
        };
        if report.len() != len {
            return Err("input report length differs from the descriptor's");
        }
        const SHORT: &str = "input report shorter than its fields";
        let mut mapped = false;
        if self.position.report_id == id {
            self.position
                .update(report, &mut state.position_m)
                .ok_or(SHORT)?;
            state.have_position = true;
            mapped = true;
        }
        if let Some(o) = &self.orientation {
            if o.report_id == id {
                o.update(report, &mut state.orientation_rad).ok_or(SHORT)?;
                mapped = true;
            }
        }
        for (bit, b) in self.buttons.iter().enumerate() {
            if b.report_id == id {
                let pressed = b.element.read(report).ok_or(SHORT)? != 0;
                if pressed {
                    state.buttons |= 1 << bit;
                } else {
                    state.buttons &= !(1 << bit);
                }
                mapped = true;
            }
        }
        Ok(mapped)
    }
}

/// A device described by a [`Binding`], on a transport.
#[derive(Debug)]
pub struct GenericDevice<T: HidTransport> {
    transport: T,
    binding: Binding,
    info: DeviceInfo,
    name: Arc<str>,
    buf: [u8; MAX_REPORT],
    out: [u8; MAX_REPORT + 1],
    state: State,
}

impl<T: HidTransport> GenericDevice<T> {
    /// The device `binding` describes, on `transport`, named `name` in errors and reports.
    pub fn new(transport: T, binding: Binding, name: &str) -> Self {
        Self {
            transport,
            info: DeviceInfo {
                name: name.to_string(),
                max_force_n: binding.max_force_n,
                max_force_rate_n_per_s: binding.max_force_rate_n_per_s,
                max_stiffness_n_per_m: binding.max_stiffness_n_per_m,
            },
            binding,
            name: Arc::from(name),
            buf: [0; MAX_REPORT],
            out: [0; MAX_REPORT + 1],
            state: State::default(),
        }
    }

    /// The transport (for inspection, e.g. an emulator's state).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The binding in use.
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// The newest orientation (rotations about device x, y, z), radians; zero until one
    /// arrives or when the profile maps none.
    pub fn orientation_rad(&self) -> [f64; 3] {
        self.state.orientation_rad
    }

    fn error(&self, e: TransportError) -> DeviceError {
        match e {
            TransportError::Disconnected => DeviceError::Disconnected {
                device: self.name.clone(),
            },
            TransportError::Io(errno) => DeviceError::Io {
                device: self.name.clone(),
                errno,
            },
        }
    }
}

impl<T: HidTransport> HapticDevice for GenericDevice<T> {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn read(&mut self, _tick: u64) -> Result<Option<DeviceSample>, DeviceError> {
        let mut fresh = false;
        let mut bad = None;
        for _ in 0..MAX_REPORTS_PER_READ {
            match self.transport.read_report(&mut self.buf) {
                Ok(Some(n)) => {
                    let report = &self.buf[..n.min(MAX_REPORT)];
                    match self.binding.decode(report, &mut self.state) {
                        Ok(mapped) => fresh |= mapped,
                        Err(what) => bad = Some(what),
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(self.error(e)),
            }
        }
        if let Some(what) = bad {
            return Err(DeviceError::BadReport {
                device: self.name.clone(),
                what,
            });
        }
        if !(fresh && self.state.have_position) {
            return Ok(None);
        }
        let p = self.state.position_m;
        let o = self.binding.origin_m;
        Ok(Some(DeviceSample {
            tip_in_device_m: [p[0] - o[0], p[1] - o[1], p[2] - o[2]],
            buttons: self.state.buttons,
        }))
    }

    fn write_force(&mut self, force_n: [f64; 3]) -> Result<(), DeviceError> {
        let Some(out) = &self.binding.force else {
            return Ok(());
        };
        let force_n = if force_n.iter().all(|v| v.is_finite()) {
            force_n
        } else {
            [0.0; 3]
        };
        let buf = &mut self.out[..out.buffer_len];
        buf.fill(0);
        buf[0] = out.report_id.unwrap_or(0);
        for (axis, f) in out.axes.iter().zip(force_n) {
            let logical = ((axis.sign * f - axis.si_offset) / axis.si_per_unit).round();
            // `as` saturates; the element clamps to its logical range.
            let _ = axis.element.write(buf, logical as i64);
        }
        self.transport
            .write_report(&self.out[..out.buffer_len])
            .map_err(|e| self.error(e))
    }
}

/// Which descriptor a device was bound with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescriptorOrigin {
    /// Read from the device.
    Device,
    /// The profile's bytes.
    Profile,
}

/// Why a generic device could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// hidapi could not open the device.
    #[error("cannot open {name} ({vendor_id:04x}:{product_id:04x}): {message}")]
    Hid {
        /// The profile's device name.
        name: String,
        /// USB vendor ID.
        vendor_id: u16,
        /// USB product ID.
        product_id: u16,
        /// hidapi's message.
        message: String,
    },
    /// The device gave no descriptor and the profile carries none.
    #[error("{path}: {name} gave no report descriptor ({message}) and the profile carries none")]
    NoDescriptor {
        /// The profile file.
        path: PathBuf,
        /// The profile's device name.
        name: String,
        /// Why the device gave none.
        message: String,
    },
    /// The profile does not fit the descriptor.
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

/// Opens the device a profile names (its first match by VID:PID) through hidapi, with the
/// descriptor the profile asks for: the device's own (falling back to the profile's bytes when
/// the device or kernel cannot give it) or the profile's.
pub fn open_hidapi(
    api: &hidapi::HidApi,
    profile: &GenericProfile,
) -> Result<(GenericDevice<HidapiTransport>, DescriptorOrigin), OpenError> {
    let f = &profile.file;
    let hid_error = |e: hidapi::HidError| OpenError::Hid {
        name: f.name.clone(),
        vendor_id: f.vendor_id,
        product_id: f.product_id,
        message: e.to_string(),
    };
    let from_device = match f.descriptor.source {
        DescriptorSource::Profile => Err("the profile asks for its own".to_string()),
        DescriptorSource::Device => {
            let device = api.open(f.vendor_id, f.product_id).map_err(hid_error)?;
            let mut buf = vec![0u8; hidapi::MAX_REPORT_DESCRIPTOR_SIZE];
            match device.get_report_descriptor(&mut buf) {
                Ok(n) if n > 0 => {
                    buf.truncate(n);
                    Ok(buf)
                }
                Ok(_) => Err("it is empty".to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let (descriptor, origin) = match (from_device, profile.descriptor_bytes()) {
        (Ok(bytes), _) => {
            let d = Descriptor::parse(&bytes).map_err(|source| ProfileError::Descriptor {
                path: profile.path.clone(),
                origin: "the device",
                source,
            })?;
            (d, DescriptorOrigin::Device)
        }
        (Err(_), Some(bytes)) => {
            let d = Descriptor::parse(bytes).map_err(|source| ProfileError::Descriptor {
                path: profile.path.clone(),
                origin: "the profile",
                source,
            })?;
            (d, DescriptorOrigin::Profile)
        }
        (Err(message), None) => {
            return Err(OpenError::NoDescriptor {
                path: profile.path.clone(),
                name: f.name.clone(),
                message,
            })
        }
    };
    let binding = profile.bind(&descriptor)?;
    let transport = HidapiTransport::open(api, f.vendor_id, f.product_id).map_err(hid_error)?;
    Ok((GenericDevice::new(transport, binding, &f.name), origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> GenericProfile {
        GenericProfile::shipped(name)
            .expect("shipped profile exists")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_shipped_profiles_load_and_bind_their_own_descriptors() {
        for (name, _) in SHIPPED_PROFILES {
            let p = shipped(name);
            p.bind_own_descriptor().unwrap();
        }
        let sn = shipped("spacenavigator").bind_own_descriptor().unwrap();
        assert!(sn.force.is_none());
        assert_eq!(sn.max_force_n, 0.0);
        assert_eq!(sn.position.report_id, Some(1));
        assert_eq!(sn.orientation.as_ref().unwrap().report_id, Some(2));
        let rig = shipped("mbed-cartesian").bind_own_descriptor().unwrap();
        let out = rig.force.as_ref().unwrap();
        assert_eq!((out.report_id, out.buffer_len), (None, 9));
        // Force x is the i16 at bytes 1-2 of the hidraw write (after the report-ID byte).
        assert_eq!(out.axes[0].element.bit_offset, 8);
        assert_eq!(out.axes[0].element.bit_size, 16);
        assert!(out.axes[0].element.signed);
    }

    fn edit(name: &str, from: &str, to: &str) -> Result<GenericProfile, ProfileError> {
        let (_, text) = SHIPPED_PROFILES.iter().find(|(n, _)| *n == name).unwrap();
        assert!(text.contains(from), "{from:?} not in {name}");
        GenericProfile::parse(&text.replacen(from, to, 1), Path::new("p.toml"))
    }

    #[test]
    fn bad_profiles_name_the_file_and_the_field() {
        let msg = |r: Result<GenericProfile, ProfileError>| r.unwrap_err().to_string();
        assert_eq!(
            msg(edit(
                "spacenavigator",
                "format_version = 1",
                "format_version = 2"
            )),
            "p.toml: format_version is 2, this haptwin reads 1"
        );
        assert_eq!(
            msg(edit("spacenavigator", "sign = -1", "sign = 2")),
            "p.toml: position.x.sign must be 1 or -1, is 2"
        );
        let m = msg(edit(
            "mbed-cartesian",
            "max_force_n = 4.0",
            "max_force_n = -4.0",
        ));
        assert_eq!(m, "p.toml: limits.max_force_n must be positive, is -4");
        let m = msg(edit("spacenavigator", "usage = 0x30", "usage = 0x36"));
        assert!(
            m.contains("position.y names Generic Desktop Slider (0x0001:0x0036), but the descriptor has no Input data field with it"),
            "{m}"
        );
        let m = msg(edit(
            "mbed-cartesian",
            "offset_bits = 32",
            "offset_bits = 56",
        ));
        assert!(
            m.contains("bits 56..72 lie outside the 64-bit field"),
            "{m}"
        );
        let m = msg(edit("mbed-cartesian", "[limits]", "[limitz]"));
        assert!(m.starts_with("p.toml is not a generic HID profile"), "{m}");
        let m = msg(edit("spacenavigator", "05 01 09 08", "05 01 09 08 c0"));
        assert!(
            m.contains("the report descriptor from the profile does not parse"),
            "{m}"
        );
        let m = msg(edit(
            "spacenavigator",
            "radians_per_unit = ",
            "metres_per_unit = ",
        ));
        assert!(
            m.contains("orientation.") && m.contains("metres_per_unit does not belong here"),
            "{m}"
        );
        let err = GenericProfile::load(Path::new("/nonexistent/g.toml")).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("cannot read /nonexistent/g.toml"));
    }
}
