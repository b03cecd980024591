//! HID report descriptors (Device Class Definition for HID 1.11, section 6.2.2): the parser, the
//! report layout it yields, and a bit-level field extractor.
//!
//! This module owns three things:
//! - [`Descriptor::parse`]: short and long items; main items (Input, Output, Feature with their
//!   flag bits, Collection and End Collection with nesting and type); global items (usage page,
//!   logical and physical extents, unit exponent, unit, report size, ID and count, push and
//!   pop); local items (usages, 4-byte extended usages that carry their page, usage ranges;
//!   designators, strings and delimiters are read and ignored). The result lists, per report ID
//!   and kind, every field with its usages, bit offset, size, count, signedness, ranges, unit and
//!   collection path, and each report's length in bytes.
//! - [`Element`], [`read_bits`] and [`write_bits`]: read a value of any bit offset and size (1 to
//!   32 bits, signed or not) from a report, or write one into an output report, without
//!   allocating: they are the part used on the haptic thread.
//! - Names of the common usage pages and usages, for display ([`Usage`]'s `Display`).
//!
//! Contract:
//! - Bit offsets count from the first byte of the report *as hidraw carries it*: when the
//!   descriptor declares report IDs, byte 0 is the report ID and the first field starts at bit 8;
//!   otherwise the first field starts at bit 0. [`Report::len_bytes`] counts the same way.
//!   (hidraw writes always start with a report-ID byte, 0 for unnumbered reports; see
//!   [`Report::output_buffer_len`].)
//! - Logical and physical maxima are read as unsigned when the matching minimum is not negative,
//!   as Linux does (a one-byte `Logical Maximum (0xFF)` after `Logical Minimum (0)` is 255, not
//!   -1). The minimum in force at the main item decides; Linux decides at the maximum item, which
//!   agrees whenever the minimum comes first, as it does in every descriptor in the tests. A
//!   field is signed when its logical minimum is negative.
//! - Short usages (one or two bytes) take the usage page in force when they are read; at a main
//!   item, trailing short usages read before the last Usage Page item take that page instead
//!   (what Linux does since it moved the concatenation to the main item).
//! - Physical extents that are both zero default to the logical ones (HID 1.11, 6.2.2.7).
//! - Errors name the byte offset of the item at fault. Nothing the parser reads can make it
//!   panic or allocate without bound: the descriptor is at most [`MAX_DESCRIPTOR_BYTES`], input
//!   and output reports at most [`MAX_REPORT_BYTES`], usage ranges are kept as ranges.

use std::fmt;

/// Longest report descriptor accepted, bytes (hidapi's and Linux's limit).
pub const MAX_DESCRIPTOR_BYTES: usize = 4096;

/// Longest input or output report accepted, bytes, report-ID byte included: what a full-speed
/// interrupt endpoint carries, and the transport's buffer
/// ([`MAX_REPORT`](super::transport::MAX_REPORT)).
pub const MAX_REPORT_BYTES: usize = super::transport::MAX_REPORT;

/// Longest feature report accepted, bytes. Feature reports travel over the control pipe and may
/// be longer than interrupt reports; haptwin never moves them on the haptic path.
pub const MAX_FEATURE_REPORT_BYTES: usize = 4096;

/// Deepest collection nesting accepted.
pub const MAX_COLLECTION_DEPTH: usize = 32;

/// Deepest Push stack accepted.
pub const MAX_PUSH_DEPTH: usize = 16;

/// Widest data field read or written, bits.
pub const MAX_FIELD_BITS: u32 = 32;

/// Why a report descriptor was refused. Offsets are byte offsets into the descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// The descriptor is longer than [`MAX_DESCRIPTOR_BYTES`].
    #[error("report descriptor is {len} bytes, more than the {MAX_DESCRIPTOR_BYTES} allowed")]
    TooLong {
        /// Its length, bytes.
        len: usize,
    },
    /// An item's data runs past the end of the descriptor.
    #[error("item at byte {offset} needs {needed} bytes, only {available} left")]
    Truncated {
        /// Offset of the item's prefix byte.
        offset: usize,
        /// Bytes the item needs, prefix included.
        needed: usize,
        /// Bytes left from its prefix to the end.
        available: usize,
    },
    /// An End Collection with no open collection.
    #[error("End Collection at byte {offset} closes no collection")]
    UnbalancedEndCollection {
        /// Offset of the End Collection item.
        offset: usize,
    },
    /// The descriptor ends inside a collection.
    #[error("collection opened at byte {offset} is never closed ({open} still open at the end)")]
    UnclosedCollection {
        /// Offset of the innermost Collection item left open.
        offset: usize,
        /// How many collections are still open.
        open: usize,
    },
    /// Collections nest deeper than [`MAX_COLLECTION_DEPTH`].
    #[error("collection at byte {offset} nests deeper than {MAX_COLLECTION_DEPTH}")]
    CollectionTooDeep {
        /// Offset of the Collection item.
        offset: usize,
    },
    /// A Pop with nothing pushed.
    #[error("Pop at byte {offset} without a Push")]
    PopWithoutPush {
        /// Offset of the Pop item.
        offset: usize,
    },
    /// Pushes nest deeper than [`MAX_PUSH_DEPTH`].
    #[error("Push at byte {offset} nests deeper than {MAX_PUSH_DEPTH}")]
    PushTooDeep {
        /// Offset of the Push item.
        offset: usize,
    },
    /// A data (non-constant) main item whose Report Size is 0 or more than [`MAX_FIELD_BITS`].
    #[error("{kind} item at byte {offset} has report size {size} bits (data fields need 1 to {MAX_FIELD_BITS})")]
    BadReportSize {
        /// Offset of the main item.
        offset: usize,
        /// Which main item.
        kind: ReportKind,
        /// The report size in force, bits.
        size: u32,
    },
    /// A report grows past its limit ([`MAX_REPORT_BYTES`], or [`MAX_FEATURE_REPORT_BYTES`] for
    /// feature reports).
    #[error(
        "{kind} item at byte {offset} makes {kind} report {} {bytes} bytes long, more than the {max} allowed",
        id_text(.report_id)
    )]
    ReportTooLong {
        /// Offset of the main item that overflowed it.
        offset: usize,
        /// The report's kind.
        kind: ReportKind,
        /// Its report ID (`None` when the descriptor uses none).
        report_id: Option<u8>,
        /// Its length with this item, bytes (at least; saturates for absurd counts).
        bytes: u64,
        /// The limit for this kind, bytes.
        max: usize,
    },
    /// A Report ID item of 0 or above 255.
    #[error("Report ID at byte {offset} is {value} (valid IDs are 1 to 255)")]
    BadReportId {
        /// Offset of the Report ID item.
        offset: usize,
        /// Its value.
        value: u32,
    },
    /// Main items both with and without a report ID in one descriptor.
    #[error("item at byte {offset} mixes numbered and unnumbered reports in one descriptor")]
    MixedReportIds {
        /// Offset of the item that mixed them.
        offset: usize,
    },
    /// A main or global item with a tag HID 1.11 does not define.
    #[error("unknown {class} item (prefix 0x{prefix:02x}) at byte {offset}")]
    UnknownItem {
        /// Offset of the item.
        offset: usize,
        /// Its prefix byte.
        prefix: u8,
        /// `"main"` or `"global"`.
        class: &'static str,
    },
    /// An item's value does not fit what it sets (a usage page above 0xFFFF, for instance).
    #[error("{item} at byte {offset} is {value:#x}, out of range")]
    ValueOutOfRange {
        /// Offset of the item.
        offset: usize,
        /// Which item.
        item: &'static str,
        /// Its value.
        value: u32,
    },
    /// A Usage Maximum below its Usage Minimum, on another page, or with no Usage Minimum.
    #[error("usage range ending at byte {offset} is invalid: {problem}")]
    BadUsageRange {
        /// Offset of the Usage Maximum item.
        offset: usize,
        /// What is wrong.
        problem: &'static str,
    },
}

struct ReportIdDisplay(Option<u8>);

fn id_text(id: &Option<u8>) -> ReportIdDisplay {
    ReportIdDisplay(*id)
}

impl fmt::Display for ReportIdDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id}"),
            None => f.write_str("(unnumbered)"),
        }
    }
}

/// Which way a report goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum ReportKind {
    /// Device to host (interrupt IN).
    Input,
    /// Host to device (interrupt OUT, or SET_REPORT).
    Output,
    /// Either way over the control pipe (GET/SET_REPORT).
    Feature,
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReportKind::Input => "Input",
            ReportKind::Output => "Output",
            ReportKind::Feature => "Feature",
        })
    }
}

/// A usage: page and ID (HID Usage Tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Usage {
    /// Usage page (0x01 Generic Desktop, 0x09 Button, 0xFF00-0xFFFF vendor-defined, ...).
    pub page: u16,
    /// Usage ID within the page.
    pub id: u16,
}

impl Usage {
    /// A usage from its page and ID.
    pub const fn new(page: u16, id: u16) -> Self {
        Self { page, id }
    }

    /// A usage from its 32-bit extended form (page in the high 16 bits).
    pub const fn from_extended(value: u32) -> Self {
        Self {
            page: (value >> 16) as u16,
            id: value as u16,
        }
    }

    /// The 32-bit extended form.
    pub const fn extended(self) -> u32 {
        (self.page as u32) << 16 | self.id as u32
    }
}

/// Generic Desktop page.
pub const PAGE_GENERIC_DESKTOP: u16 = 0x01;
/// Button page.
pub const PAGE_BUTTON: u16 = 0x09;

/// The name of a usage page, for the common ones.
pub fn usage_page_name(page: u16) -> Option<&'static str> {
    Some(match page {
        0x01 => "Generic Desktop",
        0x02 => "Simulation Controls",
        0x05 => "Game Controls",
        0x06 => "Generic Device Controls",
        0x07 => "Keyboard/Keypad",
        0x08 => "LED",
        0x09 => "Button",
        0x0B => "Telephony",
        0x0C => "Consumer",
        0x0D => "Digitizers",
        0x0F => "Physical Input Device",
        0x20 => "Sensors",
        0xFF00..=0xFFFF => "Vendor-defined",
        _ => return None,
    })
}

fn generic_desktop_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x01 => "Pointer",
        0x02 => "Mouse",
        0x04 => "Joystick",
        0x05 => "Game Pad",
        0x06 => "Keyboard",
        0x07 => "Keypad",
        0x08 => "Multi-axis Controller",
        0x30 => "X",
        0x31 => "Y",
        0x32 => "Z",
        0x33 => "Rx",
        0x34 => "Ry",
        0x35 => "Rz",
        0x36 => "Slider",
        0x37 => "Dial",
        0x38 => "Wheel",
        0x39 => "Hat Switch",
        0x3A => "Counted Buffer",
        0x3B => "Byte Count",
        0x80 => "System Control",
        _ => return None,
    })
}

impl fmt::Display for Usage {
    /// `Generic Desktop X (0x0001:0x0030)`, `Button 2 (0x0009:0x0002)`,
    /// `Vendor-defined 0x0001 (0xffab:0x0001)`, `page 0x0042 usage 0x0007 (0x0042:0x0007)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.page, usage_page_name(self.page)) {
            (PAGE_GENERIC_DESKTOP, Some(p)) => match generic_desktop_name(self.id) {
                Some(u) => write!(f, "{p} {u}")?,
                None => write!(f, "{p} 0x{:04x}", self.id)?,
            },
            (PAGE_BUTTON, Some(p)) => write!(f, "{p} {}", self.id)?,
            (_, Some(p)) => write!(f, "{p} 0x{:04x}", self.id)?,
            (_, None) => write!(f, "page 0x{:04x} usage 0x{:04x}", self.page, self.id)?,
        }
        write!(f, " (0x{:04x}:0x{:04x})", self.page, self.id)
    }
}

/// An inclusive run of usages on one page (a single usage has `min == max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UsageSpan {
    /// Usage page.
    pub page: u16,
    /// First usage ID.
    pub min: u16,
    /// Last usage ID (inclusive).
    pub max: u16,
}

impl UsageSpan {
    /// How many usages it holds.
    pub fn len(&self) -> u32 {
        u32::from(self.max) - u32::from(self.min) + 1
    }

    /// Always false (a span holds at least one usage); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The flag bits of an Input, Output or Feature item (HID 1.11, 6.2.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct MainFlags(pub u32);

impl MainFlags {
    /// Bit 0: constant (padding, or values the host cannot change).
    pub const CONSTANT: u32 = 1 << 0;
    /// Bit 1: variable (one usage per element) rather than array (elements hold usage indices).
    pub const VARIABLE: u32 = 1 << 1;
    /// Bit 2: relative (change since the last report) rather than absolute.
    pub const RELATIVE: u32 = 1 << 2;
    /// Bit 3: wraps around.
    pub const WRAP: u32 = 1 << 3;
    /// Bit 4: non-linear.
    pub const NON_LINEAR: u32 = 1 << 4;
    /// Bit 5: no preferred state.
    pub const NO_PREFERRED: u32 = 1 << 5;
    /// Bit 6: has a null state (values outside the logical range mean "no value").
    pub const NULL_STATE: u32 = 1 << 6;
    /// Bit 7: volatile (Output and Feature only).
    pub const VOLATILE: u32 = 1 << 7;
    /// Bit 8: buffered bytes rather than a bit field.
    pub const BUFFERED_BYTES: u32 = 1 << 8;

    /// Constant.
    pub fn is_constant(self) -> bool {
        self.0 & Self::CONSTANT != 0
    }
    /// Variable (each element has its own usage).
    pub fn is_variable(self) -> bool {
        self.0 & Self::VARIABLE != 0
    }
    /// Array (elements are indices into the usage list).
    pub fn is_array(self) -> bool {
        !self.is_variable()
    }
    /// Relative.
    pub fn is_relative(self) -> bool {
        self.0 & Self::RELATIVE != 0
    }
    /// Has a null state.
    pub fn has_null_state(self) -> bool {
        self.0 & Self::NULL_STATE != 0
    }
}

impl fmt::Display for MainFlags {
    /// `Data,Var,Abs` style, as descriptor tools print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_constant() { "Cnst" } else { "Data" })?;
        f.write_str(if self.is_variable() { ",Var" } else { ",Ary" })?;
        f.write_str(if self.is_relative() { ",Rel" } else { ",Abs" })?;
        for (bit, name) in [
            (Self::WRAP, ",Wrap"),
            (Self::NON_LINEAR, ",NLin"),
            (Self::NO_PREFERRED, ",NPrf"),
            (Self::NULL_STATE, ",Null"),
            (Self::VOLATILE, ",Vol"),
            (Self::BUFFERED_BYTES, ",Buf"),
        ] {
            if self.0 & bit != 0 {
                f.write_str(name)?;
            }
        }
        Ok(())
    }
}

/// A collection's type (HID 1.11, 6.2.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CollectionKind {
    /// 0x00.
    Physical,
    /// 0x01.
    Application,
    /// 0x02.
    Logical,
    /// 0x03.
    Report,
    /// 0x04.
    NamedArray,
    /// 0x05.
    UsageSwitch,
    /// 0x06.
    UsageModifier,
    /// 0x07-0x7F.
    Reserved(u8),
    /// 0x80-0xFF.
    VendorDefined(u8),
}

impl CollectionKind {
    fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Physical,
            1 => Self::Application,
            2 => Self::Logical,
            3 => Self::Report,
            4 => Self::NamedArray,
            5 => Self::UsageSwitch,
            6 => Self::UsageModifier,
            0x07..=0x7F => Self::Reserved(b),
            _ => Self::VendorDefined(b),
        }
    }
}

/// A collection, with its place in the tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Collection {
    /// Its type.
    pub kind: CollectionKind,
    /// Its usage (the first usage declared before it), if any.
    pub usage: Option<Usage>,
    /// Index of the enclosing collection in [`Descriptor::collections`].
    pub parent: Option<usize>,
    /// Byte offset of its Collection item.
    pub item_offset: usize,
}

/// One Input, Output or Feature item: `count` elements of `bit_size` bits each.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Field {
    /// Which report kind it belongs to.
    pub kind: ReportKind,
    /// Its report's ID (`None` when the descriptor uses none).
    pub report_id: Option<u8>,
    /// Offset of its first element from the start of the report, bits (report-ID byte counted).
    pub bit_offset: u32,
    /// Size of one element, bits.
    pub bit_size: u32,
    /// Number of elements.
    pub count: u32,
    /// The item's flags.
    pub flags: MainFlags,
    /// Logical minimum.
    pub logical_min: i64,
    /// Logical maximum.
    pub logical_max: i64,
    /// Physical minimum as declared (see [`Field::physical_range`]).
    pub physical_min: i64,
    /// Physical maximum as declared.
    pub physical_max: i64,
    /// Unit exponent (power of ten of the physical unit).
    pub unit_exponent: i8,
    /// Unit (HID 1.11, 6.2.2.7: nibbles for system, length, mass, time, ...).
    pub unit: u32,
    /// Its usages: for a variable field, element `i` has the `i`-th usage (the last one repeats);
    /// for an array field, the usages its elements select from.
    pub usages: Vec<UsageSpan>,
    /// Innermost enclosing collection, index into [`Descriptor::collections`].
    pub collection: Option<usize>,
    /// Byte offset of its main item in the descriptor.
    pub item_offset: usize,
}

impl Field {
    /// Values are two's complement (the logical minimum is negative).
    pub fn is_signed(&self) -> bool {
        self.logical_min < 0
    }

    /// Bits the whole field takes.
    pub fn bit_len(&self) -> u32 {
        self.bit_size * self.count
    }

    /// Physical extents, defaulting to the logical ones when both are declared as 0.
    pub fn physical_range(&self) -> (i64, i64) {
        if self.physical_min == 0 && self.physical_max == 0 {
            (self.logical_min, self.logical_max)
        } else {
            (self.physical_min, self.physical_max)
        }
    }

    /// The usage of element `index` of a variable field (the last usage repeats for elements
    /// past the list), or `None` for arrays, constants, fields without usages or indices past
    /// the count.
    pub fn usage(&self, index: u32) -> Option<Usage> {
        if index >= self.count || !self.flags.is_variable() || self.flags.is_constant() {
            return None;
        }
        let mut left = index;
        let mut last = None;
        for span in &self.usages {
            if left < span.len() {
                return Some(Usage::new(span.page, span.min + left as u16));
            }
            left -= span.len();
            last = Some(Usage::new(span.page, span.max));
        }
        last
    }

    /// Element `index` as an extractor, or `None` past the count.
    pub fn element(&self, index: u32) -> Option<Element> {
        if index >= self.count || self.bit_size == 0 || self.bit_size > MAX_FIELD_BITS {
            return None;
        }
        let (physical_min, physical_max) = self.physical_range();
        Some(Element {
            bit_offset: self.bit_offset + index * self.bit_size,
            bit_size: self.bit_size,
            signed: self.is_signed(),
            logical_min: self.logical_min,
            logical_max: self.logical_max,
            physical_min,
            physical_max,
            unit_exponent: self.unit_exponent,
            unit: self.unit,
            relative: self.flags.is_relative(),
        })
    }
}

/// One report: a kind and an ID, its length, and its fields in order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Input, output or feature.
    pub kind: ReportKind,
    /// Report ID (`None` when the descriptor uses none).
    pub id: Option<u8>,
    /// Length on the wire, bytes, report-ID byte included when there is one.
    pub len_bytes: usize,
    /// Its fields, constant padding included, in bit order.
    pub fields: Vec<Field>,
}

impl Report {
    /// Bytes a hidraw write of this report takes: hidraw always wants a report-ID byte first
    /// (0 for unnumbered reports), so unnumbered reports take one byte more than
    /// [`Report::len_bytes`]. Field bit offsets then shift by [`Report::output_bit_shift`].
    pub fn output_buffer_len(&self) -> usize {
        self.len_bytes + usize::from(self.id.is_none())
    }

    /// Bits to add to a field's offset to place it in the hidraw write buffer (8 for unnumbered
    /// reports, whose buffer starts with a 0 byte; 0 for numbered ones).
    pub fn output_bit_shift(&self) -> u32 {
        if self.id.is_none() {
            8
        } else {
            0
        }
    }
}

/// A parsed report descriptor.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Descriptor {
    /// Every report, in order of first appearance.
    pub reports: Vec<Report>,
    /// Every collection, in order of appearance; fields point into it.
    pub collections: Vec<Collection>,
    /// Whether the descriptor declares report IDs (then every report starts with its ID byte).
    pub uses_report_ids: bool,
}

/// One value's place in a report and how to read it: a copyable, allocation-free extractor
/// taken from a [`Field`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Element {
    /// Offset from the start of the report buffer, bits.
    pub bit_offset: u32,
    /// Size, bits (1 to 32).
    pub bit_size: u32,
    /// Two's complement.
    pub signed: bool,
    /// Logical minimum.
    pub logical_min: i64,
    /// Logical maximum.
    pub logical_max: i64,
    /// Physical minimum (logical when undeclared).
    pub physical_min: i64,
    /// Physical maximum (logical when undeclared).
    pub physical_max: i64,
    /// Unit exponent.
    pub unit_exponent: i8,
    /// Unit code.
    pub unit: u32,
    /// The descriptor marks it relative.
    pub relative: bool,
}

impl Element {
    /// The value in `report`, or `None` if it lies past the end.
    pub fn read(&self, report: &[u8]) -> Option<i64> {
        let raw = read_bits(report, self.bit_offset, self.bit_size)?;
        Some(if self.signed {
            i64::from(sign_extend(raw, self.bit_size))
        } else {
            i64::from(raw)
        })
    }

    /// The smallest and largest values the element can carry: its logical range, narrowed to
    /// what its bits can hold (a descriptor's range may claim more).
    pub fn value_range(&self) -> (i64, i64) {
        let (lo, hi) = bit_range(self.bit_size, self.signed);
        let (a, b) = (self.logical_min.max(lo), self.logical_max.min(hi));
        if a <= b {
            (a, b)
        } else {
            (lo, hi)
        }
    }

    /// Writes `value`, clamped to [`Element::value_range`], into `report`; `None` if the
    /// element lies past the end of the buffer. Returns the value written.
    pub fn write(&self, report: &mut [u8], value: i64) -> Option<i64> {
        let (lo, hi) = self.value_range();
        let v = value.clamp(lo, hi);
        write_bits(report, self.bit_offset, self.bit_size, v as u32)?;
        Some(v)
    }

    /// The same element placed `bits` further into a buffer (see [`Report::output_bit_shift`]).
    pub fn shifted(mut self, bits: u32) -> Self {
        self.bit_offset += bits;
        self
    }

    /// Physical units per logical unit, unit exponent applied (`None` if the logical range is
    /// empty).
    pub fn physical_per_logical(&self) -> Option<f64> {
        let dl = self.logical_max - self.logical_min;
        if dl == 0 {
            return None;
        }
        let dp = (self.physical_max - self.physical_min) as f64;
        Some(dp / dl as f64 * 10f64.powi(i32::from(self.unit_exponent)))
    }

    /// The physical value of logical `value` (unit exponent applied, in the element's unit).
    pub fn physical(&self, value: i64) -> Option<f64> {
        let per = self.physical_per_logical()?;
        let base = self.physical_min as f64 * 10f64.powi(i32::from(self.unit_exponent));
        Some(base + (value - self.logical_min) as f64 * per)
    }
}

/// The range a `bits`-wide value can hold.
fn bit_range(bits: u32, signed: bool) -> (i64, i64) {
    let bits = bits.clamp(1, 32);
    if signed {
        (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
    } else {
        (0, (1i64 << bits) - 1)
    }
}

/// Reads `bit_size` bits (1 to 32) starting `bit_offset` bits into `report`, least significant
/// bit first as HID lays them out. `None` if the size is out of range or the bits run past the
/// end. Never allocates.
pub fn read_bits(report: &[u8], bit_offset: u32, bit_size: u32) -> Option<u32> {
    if bit_size == 0 || bit_size > 32 {
        return None;
    }
    let end = u64::from(bit_offset) + u64::from(bit_size);
    if end > report.len() as u64 * 8 {
        return None;
    }
    let mut value: u64 = 0;
    let mut got = 0u32;
    let mut bit = bit_offset;
    while got < bit_size {
        let byte = report[(bit / 8) as usize];
        let shift = bit % 8;
        let take = (8 - shift).min(bit_size - got);
        let chunk = (u64::from(byte) >> shift) & ((1u64 << take) - 1);
        value |= chunk << got;
        got += take;
        bit += take;
    }
    Some(value as u32)
}

/// Writes the low `bit_size` bits (1 to 32) of `value` starting `bit_offset` bits into `report`,
/// leaving the other bits alone. `None` (and nothing written) if the size is out of range or the
/// bits run past the end. Never allocates.
pub fn write_bits(report: &mut [u8], bit_offset: u32, bit_size: u32, value: u32) -> Option<()> {
    if bit_size == 0 || bit_size > 32 {
        return None;
    }
    let end = u64::from(bit_offset) + u64::from(bit_size);
    if end > report.len() as u64 * 8 {
        return None;
    }
    let value = u64::from(value);
    let mut put = 0u32;
    let mut bit = bit_offset;
    while put < bit_size {
        let byte = &mut report[(bit / 8) as usize];
        let shift = bit % 8;
        let take = (8 - shift).min(bit_size - put);
        let mask = (((1u64 << take) - 1) << shift) as u8;
        let chunk = (((value >> put) << shift) as u8) & mask;
        *byte = (*byte & !mask) | chunk;
        put += take;
        bit += take;
    }
    Some(())
}

/// `raw`'s low `bits` bits as a two's-complement number.
pub fn sign_extend(raw: u32, bits: u32) -> i32 {
    if bits == 0 || bits >= 32 {
        return raw as i32;
    }
    let shift = 32 - bits;
    ((raw << shift) as i32) >> shift
}

/// The global state (HID 1.11, 6.2.2.7), pushed and popped whole.
#[derive(Debug, Clone, Copy, Default)]
struct Globals {
    usage_page: u16,
    logical_min: i64,
    /// Raw data and byte size: signed or unsigned is decided at the main item.
    logical_max: (u32, usize),
    physical_min: i64,
    physical_max: (u32, usize),
    unit_exponent: i8,
    unit: u32,
    report_size: u32,
    report_id: Option<u8>,
    report_count: u32,
}

/// A usage or usage range read from local items; `extended` ones carry their own page.
#[derive(Debug, Clone, Copy)]
struct LocalUsage {
    span: UsageSpan,
    extended: bool,
}

#[derive(Debug, Default)]
struct Locals {
    usages: Vec<LocalUsage>,
    /// A Usage Minimum waiting for its maximum: (page, id, extended).
    minimum: Option<(u16, u16, bool)>,
}

fn signed_value(data: u32, size: usize) -> i64 {
    match size {
        0 => 0,
        1 => i64::from(data as u8 as i8),
        2 => i64::from(data as u16 as i16),
        _ => i64::from(data as i32),
    }
}

/// A maximum's value: unsigned when the minimum is not negative (as Linux reads it).
fn maximum(raw: (u32, usize), minimum: i64) -> i64 {
    if minimum >= 0 {
        i64::from(raw.0)
    } else {
        signed_value(raw.0, raw.1)
    }
}

struct Parser {
    globals: Globals,
    stack: Vec<Globals>,
    locals: Locals,
    open: Vec<usize>,
    collections: Vec<Collection>,
    reports: Vec<Report>,
    saw_report_id: bool,
    saw_unnumbered_main: bool,
}

impl Parser {
    fn main_item(&mut self, prefix: u8, data: u32, offset: usize) -> Result<(), DescriptorError> {
        self.finish_usages();
        let result = match prefix >> 4 {
            0x8 => self.data_item(ReportKind::Input, data, offset),
            0x9 => self.data_item(ReportKind::Output, data, offset),
            0xB => self.data_item(ReportKind::Feature, data, offset),
            0xA => {
                if self.open.len() >= MAX_COLLECTION_DEPTH {
                    return Err(DescriptorError::CollectionTooDeep { offset });
                }
                let usage = self
                    .locals
                    .usages
                    .first()
                    .map(|u| Usage::new(u.span.page, u.span.min));
                self.collections.push(Collection {
                    kind: CollectionKind::from_byte(data as u8),
                    usage,
                    parent: self.open.last().copied(),
                    item_offset: offset,
                });
                self.open.push(self.collections.len() - 1);
                Ok(())
            }
            0xC => match self.open.pop() {
                Some(_) => Ok(()),
                None => Err(DescriptorError::UnbalancedEndCollection { offset }),
            },
            _ => Err(DescriptorError::UnknownItem {
                offset,
                prefix,
                class: "main",
            }),
        };
        self.locals = Locals::default();
        result
    }

    /// Short usages read before the last Usage Page item take that page (see the module doc).
    fn finish_usages(&mut self) {
        let page = self.globals.usage_page;
        for u in self.locals.usages.iter_mut().rev() {
            if u.extended {
                continue;
            }
            if u.span.page == page {
                break;
            }
            u.span.page = page;
        }
    }

    fn data_item(
        &mut self,
        kind: ReportKind,
        data: u32,
        offset: usize,
    ) -> Result<(), DescriptorError> {
        let g = self.globals;
        let flags = MainFlags(data);
        if g.report_id.is_some() {
            if self.saw_unnumbered_main {
                return Err(DescriptorError::MixedReportIds { offset });
            }
        } else if self.saw_report_id {
            return Err(DescriptorError::MixedReportIds { offset });
        } else {
            self.saw_unnumbered_main = true;
        }
        if !flags.is_constant() && (g.report_size == 0 || g.report_size > MAX_FIELD_BITS) {
            return Err(DescriptorError::BadReportSize {
                offset,
                kind,
                size: g.report_size,
            });
        }
        let existing = self
            .reports
            .iter()
            .position(|r| r.kind == kind && r.id == g.report_id);
        let start_bits = existing
            .and_then(|i| self.reports[i].fields.last())
            .map(|f| u64::from(f.bit_offset) + u64::from(f.bit_len()))
            .unwrap_or(if g.report_id.is_some() { 8 } else { 0 });
        let bits = u64::from(g.report_size) * u64::from(g.report_count);
        let end_bits = start_bits.saturating_add(bits);
        let bytes = end_bits.div_ceil(8);
        let max = match kind {
            ReportKind::Feature => MAX_FEATURE_REPORT_BYTES,
            _ => MAX_REPORT_BYTES,
        };
        if bytes > max as u64 {
            return Err(DescriptorError::ReportTooLong {
                offset,
                kind,
                report_id: g.report_id,
                bytes,
                max,
            });
        }
        if bits == 0 {
            // Nothing to place (a zero count): no field, and no report made for it.
            return Ok(());
        }
        let index = match existing {
            Some(i) => i,
            None => {
                self.reports.push(Report {
                    kind,
                    id: g.report_id,
                    len_bytes: 0,
                    fields: Vec::new(),
                });
                self.reports.len() - 1
            }
        };
        let logical_max = maximum(g.logical_max, g.logical_min);
        let physical_max = maximum(g.physical_max, g.physical_min);
        let report = &mut self.reports[index];
        report.fields.push(Field {
            kind,
            report_id: g.report_id,
            bit_offset: start_bits as u32,
            bit_size: g.report_size,
            count: g.report_count,
            flags,
            logical_min: g.logical_min,
            logical_max,
            physical_min: g.physical_min,
            physical_max,
            unit_exponent: g.unit_exponent,
            unit: g.unit,
            usages: self.locals.usages.iter().map(|u| u.span).collect(),
            collection: self.open.last().copied(),
            item_offset: offset,
        });
        report.len_bytes = bytes as usize;
        Ok(())
    }

    fn global_item(
        &mut self,
        prefix: u8,
        data: u32,
        size: usize,
        offset: usize,
    ) -> Result<(), DescriptorError> {
        let g = &mut self.globals;
        match prefix >> 4 {
            0x0 => {
                g.usage_page =
                    u16::try_from(data).map_err(|_| DescriptorError::ValueOutOfRange {
                        offset,
                        item: "Usage Page",
                        value: data,
                    })?
            }
            0x1 => g.logical_min = signed_value(data, size),
            0x2 => g.logical_max = (data, size),
            0x3 => g.physical_min = signed_value(data, size),
            0x4 => g.physical_max = (data, size),
            0x5 => {
                // A 4-bit two's-complement nibble; larger items carry a plain signed value.
                g.unit_exponent = if data <= 0xF {
                    sign_extend(data, 4) as i8
                } else {
                    signed_value(data, size).clamp(-128, 127) as i8
                }
            }
            0x6 => g.unit = data,
            0x7 => g.report_size = data,
            0x8 => {
                if data == 0 || data > 255 {
                    return Err(DescriptorError::BadReportId {
                        offset,
                        value: data,
                    });
                }
                if self.saw_unnumbered_main {
                    return Err(DescriptorError::MixedReportIds { offset });
                }
                g.report_id = Some(data as u8);
                self.saw_report_id = true;
            }
            0x9 => g.report_count = data,
            0xA => {
                if self.stack.len() >= MAX_PUSH_DEPTH {
                    return Err(DescriptorError::PushTooDeep { offset });
                }
                self.stack.push(*g);
            }
            0xB => match self.stack.pop() {
                Some(saved) => self.globals = saved,
                None => return Err(DescriptorError::PopWithoutPush { offset }),
            },
            _ => {
                return Err(DescriptorError::UnknownItem {
                    offset,
                    prefix,
                    class: "global",
                })
            }
        }
        Ok(())
    }

    fn local_item(
        &mut self,
        prefix: u8,
        data: u32,
        size: usize,
        offset: usize,
    ) -> Result<(), DescriptorError> {
        let extended = size == 4;
        let (page, id) = if extended {
            ((data >> 16) as u16, data as u16)
        } else {
            (self.globals.usage_page, data as u16)
        };
        match prefix >> 4 {
            0x0 => self.locals.usages.push(LocalUsage {
                span: UsageSpan {
                    page,
                    min: id,
                    max: id,
                },
                extended,
            }),
            0x1 => self.locals.minimum = Some((page, id, extended)),
            0x2 => {
                let Some((min_page, min_id, min_extended)) = self.locals.minimum.take() else {
                    return Err(DescriptorError::BadUsageRange {
                        offset,
                        problem: "Usage Maximum without a Usage Minimum",
                    });
                };
                if (min_extended || extended) && min_page != page {
                    return Err(DescriptorError::BadUsageRange {
                        offset,
                        problem: "minimum and maximum are on different usage pages",
                    });
                }
                if id < min_id {
                    return Err(DescriptorError::BadUsageRange {
                        offset,
                        problem: "maximum below minimum",
                    });
                }
                self.locals.usages.push(LocalUsage {
                    span: UsageSpan {
                        page: min_page,
                        min: min_id,
                        max: id,
                    },
                    extended: min_extended || extended,
                });
            }
            // Designator index/min/max, string index/min/max, delimiter, and tags HID 1.11
            // leaves reserved: they carry no layout.
            _ => {}
        }
        Ok(())
    }
}

impl Descriptor {
    /// Parses a report descriptor.
    pub fn parse(bytes: &[u8]) -> Result<Self, DescriptorError> {
        if bytes.len() > MAX_DESCRIPTOR_BYTES {
            return Err(DescriptorError::TooLong { len: bytes.len() });
        }
        let mut p = Parser {
            globals: Globals::default(),
            stack: Vec::new(),
            locals: Locals::default(),
            open: Vec::new(),
            collections: Vec::new(),
            reports: Vec::new(),
            saw_report_id: false,
            saw_unnumbered_main: false,
        };
        let mut offset = 0;
        while offset < bytes.len() {
            let prefix = bytes[offset];
            let available = bytes.len() - offset;
            if prefix == 0xFE {
                // Long item: size, tag, then data. HID 1.11 defines no long item tags: skip.
                if available < 3 {
                    return Err(DescriptorError::Truncated {
                        offset,
                        needed: 3,
                        available,
                    });
                }
                let needed = 3 + usize::from(bytes[offset + 1]);
                if available < needed {
                    return Err(DescriptorError::Truncated {
                        offset,
                        needed,
                        available,
                    });
                }
                offset += needed;
                continue;
            }
            let size = match prefix & 0x3 {
                3 => 4,
                s => usize::from(s),
            };
            if available < 1 + size {
                return Err(DescriptorError::Truncated {
                    offset,
                    needed: 1 + size,
                    available,
                });
            }
            let data = bytes[offset + 1..offset + 1 + size]
                .iter()
                .rev()
                .fold(0u32, |acc, b| acc << 8 | u32::from(*b));
            match (prefix >> 2) & 0x3 {
                0 => p.main_item(prefix, data, offset)?,
                1 => p.global_item(prefix, data, size, offset)?,
                2 => p.local_item(prefix, data, size, offset)?,
                // Type 3 short items are reserved: skip them, as Linux does.
                _ => {}
            }
            offset += 1 + size;
        }
        if let Some(&innermost) = p.open.last() {
            return Err(DescriptorError::UnclosedCollection {
                offset: p.collections[innermost].item_offset,
                open: p.open.len(),
            });
        }
        Ok(Self {
            reports: p.reports,
            collections: p.collections,
            uses_report_ids: p.saw_report_id,
        })
    }

    /// The report of this kind and ID.
    pub fn report(&self, kind: ReportKind, id: Option<u8>) -> Option<&Report> {
        self.reports.iter().find(|r| r.kind == kind && r.id == id)
    }

    /// The reports of one kind.
    pub fn reports_of(&self, kind: ReportKind) -> impl Iterator<Item = &Report> {
        self.reports.iter().filter(move |r| r.kind == kind)
    }

    /// The first data element of a variable field of `kind` with `usage` (in report `id` if
    /// given): its report, field and element index.
    pub fn find(
        &self,
        kind: ReportKind,
        usage: Usage,
        id: Option<u8>,
    ) -> Option<(&Report, &Field, u32)> {
        self.reports_of(kind)
            .filter(|r| id.is_none() || r.id == id)
            .flat_map(|r| r.fields.iter().map(move |f| (r, f)))
            .find_map(|(r, f)| {
                (0..f.count)
                    .find(|&i| f.usage(i) == Some(usage))
                    .map(|i| (r, f, i))
            })
    }

    /// The collections around `field`, outermost first.
    pub fn collection_path(&self, field: &Field) -> Vec<&Collection> {
        let mut path = Vec::new();
        let mut at = field.collection;
        // Parents always come before their children, so this ends.
        while let Some(i) = at {
            match self.collections.get(i) {
                Some(c) => {
                    path.push(c);
                    at = c.parent.filter(|&p| p < i);
                }
                None => break,
            }
        }
        path.reverse();
        path
    }
}

impl fmt::Display for Descriptor {
    /// A listing: one line per report, then one per field with its bits, flags, ranges and
    /// usages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.reports {
            writeln!(
                f,
                "{} report {}: {} bytes",
                r.kind,
                ReportIdDisplay(r.id),
                r.len_bytes
            )?;
            for field in &r.fields {
                write!(
                    f,
                    "  bits {}..{}: {} x {} bit [{}]",
                    field.bit_offset,
                    field.bit_offset + field.bit_len(),
                    field.count,
                    field.bit_size,
                    field.flags
                )?;
                if !field.flags.is_constant() {
                    let (pmin, pmax) = field.physical_range();
                    write!(
                        f,
                        " logical {}..{} physical {}..{}",
                        field.logical_min, field.logical_max, pmin, pmax
                    )?;
                    if field.unit != 0 || field.unit_exponent != 0 {
                        write!(f, " unit 0x{:x} exp {}", field.unit, field.unit_exponent)?;
                    }
                }
                for span in &field.usages {
                    let first = Usage::new(span.page, span.min);
                    if span.min == span.max {
                        write!(f, " | {first}")?;
                    } else {
                        write!(f, " | {first} to 0x{:04x}", span.max)?;
                    }
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

/// The exponent of base dimension `index` in a HID unit code (1 length, 2 mass, 3 time,
/// 4 temperature, 5 current, 6 luminous intensity; 4-bit two's complement nibbles), or the
/// system for `index` 0 (1 SI linear, 2 SI rotation, 3 English linear, 4 English rotation).
pub fn unit_nibble(unit: u32, index: u32) -> i8 {
    let nibble = (unit >> (4 * index.min(7))) & 0xF;
    if index == 0 {
        nibble as i8
    } else {
        sign_extend(nibble, 4) as i8
    }
}

/// The unit's exponents of length, mass, time, temperature, current and luminous intensity.
fn unit_dimensions(unit: u32) -> [i8; 6] {
    std::array::from_fn(|i| unit_nibble(unit, i as u32 + 1))
}

/// Metres per physical unit when `unit` is a plain length (SI linear: centimetre; English
/// linear: inch); `None` otherwise.
pub fn metres_per_unit(unit: u32) -> Option<f64> {
    if unit_dimensions(unit) != [1, 0, 0, 0, 0, 0] {
        return None;
    }
    match unit_nibble(unit, 0) {
        1 => Some(0.01),
        3 => Some(0.0254),
        _ => None,
    }
}

/// Radians per physical unit when `unit` is a plain angle (SI rotation: radian; English
/// rotation: degree); `None` otherwise.
pub fn radians_per_unit(unit: u32) -> Option<f64> {
    if unit_dimensions(unit) != [1, 0, 0, 0, 0, 0] {
        return None;
    }
    match unit_nibble(unit, 0) {
        2 => Some(1.0),
        4 => Some(std::f64::consts::PI / 180.0),
        _ => None,
    }
}

/// Newtons per physical unit when `unit` is a force in SI linear units (g cm s^-2, the dyne:
/// 1e-5 N); `None` otherwise.
pub fn newtons_per_unit(unit: u32) -> Option<f64> {
    if unit_nibble(unit, 0) == 1 && unit_dimensions(unit) == [1, 1, -2, 0, 0, 0] {
        Some(1e-5)
    } else {
        None
    }
}

/// Why hex text did not give bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    /// A token that is not one or two hex digits (with an optional `0x`).
    #[error("line {line}: {token:?} is not a hex byte")]
    BadToken {
        /// 1-based line number.
        line: usize,
        /// The token.
        token: String,
    },
}

/// Bytes from hex text: tokens separated by whitespace or commas, each one or two hex digits
/// with an optional `0x`; `#` and `//` start comments that run to the end of the line. Reads
/// `05 01 09 08`, `0x05, 0x01,` and descriptor-tool listings alike.
pub fn bytes_from_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let line = line.split("//").next().unwrap_or("");
        for token in line.split(|c: char| c.is_whitespace() || c == ',') {
            if token.is_empty() {
                continue;
            }
            let digits = token
                .strip_prefix("0x")
                .or_else(|| token.strip_prefix("0X"))
                .unwrap_or(token);
            match u8::from_str_radix(digits, 16) {
                Ok(b) if !digits.is_empty() && digits.len() <= 2 => out.push(b),
                _ => {
                    return Err(HexError::BadToken {
                        line: n + 1,
                        token: token.to_string(),
                    })
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_at_every_offset_and_size() {
        for size in 1..=32u32 {
            for offset in 0..17u32 {
                let mut buf = [0xA5u8; 8];
                let before = buf;
                let value = 0xDEAD_BEEFu32
                    & if size == 32 {
                        u32::MAX
                    } else {
                        (1 << size) - 1
                    };
                write_bits(&mut buf, offset, size, value).unwrap();
                assert_eq!(
                    read_bits(&buf, offset, size),
                    Some(value),
                    "{offset}+{size}"
                );
                // Bits outside the field are untouched.
                for bit in (0..64).filter(|b| *b < offset || *b >= offset + size) {
                    let was = before[bit as usize / 8] >> (bit % 8) & 1;
                    let is = buf[bit as usize / 8] >> (bit % 8) & 1;
                    assert_eq!(was, is, "bit {bit} changed writing {offset}+{size}");
                }
            }
        }
    }

    #[test]
    fn bits_are_little_endian_lsb_first_and_bounds_are_checked() {
        // 12 bits at offset 4 of [0xBC, 0x9A] -> 0x9AB.
        assert_eq!(read_bits(&[0xBC, 0x9A], 4, 12), Some(0x9AB));
        assert_eq!(
            read_bits(&[0x01, 0x02, 0x03, 0x04], 0, 32),
            Some(0x0403_0201)
        );
        assert_eq!(read_bits(&[0xFF], 1, 8), None);
        assert_eq!(read_bits(&[0xFF], 0, 0), None);
        assert_eq!(read_bits(&[0xFF; 8], 0, 33), None);
        assert_eq!(read_bits(&[], u32::MAX, 32), None);
        let mut b = [0u8; 1];
        assert_eq!(write_bits(&mut b, 4, 8, 0xFF), None);
        assert_eq!(b, [0]);
        assert_eq!(sign_extend(0xFFF, 12), -1);
        assert_eq!(sign_extend(0x7FF, 12), 2047);
        assert_eq!(sign_extend(0x8000_0000, 32), i32::MIN);
    }

    #[test]
    fn elements_clamp_to_their_logical_range_and_their_bits() {
        let e = Element {
            bit_offset: 8,
            bit_size: 16,
            signed: true,
            logical_min: -1000,
            logical_max: 1000,
            physical_min: -1000,
            physical_max: 1000,
            unit_exponent: 0,
            unit: 0,
            relative: false,
        };
        let mut buf = [0u8; 3];
        assert_eq!(e.write(&mut buf, 5000), Some(1000));
        assert_eq!(e.read(&buf), Some(1000));
        assert_eq!(e.write(&mut buf, -7), Some(-7));
        assert_eq!(buf, [0, 0xF9, 0xFF]);
        assert_eq!(e.read(&buf), Some(-7));
        // A logical range wider than the bits is narrowed to them.
        let wide = Element {
            bit_size: 4,
            signed: false,
            logical_min: 0,
            logical_max: 1 << 20,
            ..e
        };
        assert_eq!(wide.value_range(), (0, 15));
        assert_eq!(e.write(&mut [0u8; 2], 1), None);
    }

    #[test]
    fn items_the_fixtures_do_not_have_parse_as_hid_1_11_says() {
        // Unit tests of single item kinds on minimal item sequences (not device descriptors;
        // the real ones are in tests/it/hid_descriptors.rs).
        // Long item (skipped), push/pop, a 4-byte extended usage, 4-bit unit exponent.
        let bytes = [
            0x05, 0x01, // Usage Page (Generic Desktop)
            0xFE, 0x02, 0x10, 0xAA, 0xBB, // long item, 2 data bytes
            0x15, 0x00, 0x25, 0xFF, // Logical 0..0xFF (unsigned 255)
            0x75, 0x08, 0x95, 0x01, // 1 x 8 bits
            0xA4, // Push
            0x55, 0x0E, // Unit Exponent -2
            0x0B, 0x30, 0x00, 0x01, 0x00, // Usage (0x0001:0x0030), extended
            0x81, 0x02, // Input (Data,Var,Abs)
            0xB4, // Pop
            0x09, 0x31, // Usage (Y)
            0x81, 0x06, // Input (Data,Var,Rel)
        ];
        let d = Descriptor::parse(&bytes).unwrap();
        let r = d.report(ReportKind::Input, None).unwrap();
        assert_eq!(r.len_bytes, 2);
        let (x, y) = (&r.fields[0], &r.fields[1]);
        assert_eq!(x.usage(0), Some(Usage::new(1, 0x30)));
        assert_eq!(
            (x.logical_min, x.logical_max, x.unit_exponent),
            (0, 255, -2)
        );
        assert!(!x.is_signed());
        assert_eq!((y.bit_offset, y.unit_exponent), (8, 0));
        assert!(y.flags.is_relative());
        // Trailing short usages take the last Usage Page before the main item.
        let late_page = [
            0x09, 0x01, 0x05, 0x09, 0x75, 0x01, 0x95, 0x01, 0x25, 0x01, 0x81, 0x02,
        ];
        let d = Descriptor::parse(&late_page).unwrap();
        assert_eq!(d.reports[0].fields[0].usage(0), Some(Usage::new(9, 1)));
    }

    #[test]
    fn bad_descriptors_say_what_and_where() {
        let err = |b: &[u8]| Descriptor::parse(b).unwrap_err();
        assert_eq!(
            err(&[0x05, 0x01, 0x26, 0xFF]),
            DescriptorError::Truncated {
                offset: 2,
                needed: 3,
                available: 2
            }
        );
        assert_eq!(
            err(&[0xC0]),
            DescriptorError::UnbalancedEndCollection { offset: 0 }
        );
        assert_eq!(
            err(&[0xA1, 0x01, 0xA1, 0x00, 0xC0]),
            DescriptorError::UnclosedCollection { offset: 0, open: 1 }
        );
        assert_eq!(err(&[0xB4]), DescriptorError::PopWithoutPush { offset: 0 });
        assert_eq!(
            err(&[0x95, 0x01, 0x81, 0x02]),
            DescriptorError::BadReportSize {
                offset: 2,
                kind: ReportKind::Input,
                size: 0
            }
        );
        assert_eq!(
            err(&[0x75, 0x21, 0x95, 0x01, 0x91, 0x02]),
            DescriptorError::BadReportSize {
                offset: 4,
                kind: ReportKind::Output,
                size: 33
            }
        );
        assert_eq!(
            err(&[0x75, 0x08, 0x95, 0x41, 0x81, 0x02]),
            DescriptorError::ReportTooLong {
                offset: 4,
                kind: ReportKind::Input,
                report_id: None,
                bytes: 65,
                max: 64
            }
        );
        assert_eq!(
            err(&[0x85, 0x00]),
            DescriptorError::BadReportId {
                offset: 0,
                value: 0
            }
        );
        assert_eq!(
            err(&[0x75, 0x08, 0x95, 0x01, 0x81, 0x02, 0x85, 0x01]),
            DescriptorError::MixedReportIds { offset: 6 }
        );
        assert_eq!(
            err(&[0x29, 0x03]),
            DescriptorError::BadUsageRange {
                offset: 0,
                problem: "Usage Maximum without a Usage Minimum"
            }
        );
        assert!(matches!(
            err(&[0xF4]),
            DescriptorError::UnknownItem {
                offset: 0,
                class: "global",
                ..
            }
        ));
        let long = vec![0u8; MAX_DESCRIPTOR_BYTES + 1];
        assert_eq!(err(&long), DescriptorError::TooLong { len: 4097 });
        let msg = err(&[0x05, 0x01, 0x26, 0xFF]).to_string();
        assert_eq!(msg, "item at byte 2 needs 3 bytes, only 2 left");
    }

    #[test]
    fn usages_print_with_their_names() {
        assert_eq!(
            Usage::new(1, 0x30).to_string(),
            "Generic Desktop X (0x0001:0x0030)"
        );
        assert_eq!(Usage::new(9, 2).to_string(), "Button 2 (0x0009:0x0002)");
        assert_eq!(
            Usage::new(0xFFAB, 0x200).to_string(),
            "Vendor-defined 0x0200 (0xffab:0x0200)"
        );
        assert_eq!(
            Usage::new(0x42, 7).to_string(),
            "page 0x0042 usage 0x0007 (0x0042:0x0007)"
        );
        assert_eq!(Usage::from_extended(0x0001_0035), Usage::new(1, 0x35));
        assert_eq!(Usage::new(1, 0x35).extended(), 0x0001_0035);
    }

    #[test]
    fn units_decode_lengths_angles_and_forces() {
        // 0x11: SI linear, length^1 (centimetres); 0x14: English rotation (degrees).
        assert_eq!(metres_per_unit(0x11), Some(0.01));
        assert_eq!(metres_per_unit(0x13), Some(0.0254));
        assert_eq!(radians_per_unit(0x12), Some(1.0));
        assert_eq!(radians_per_unit(0x14), Some(std::f64::consts::PI / 180.0));
        assert_eq!(metres_per_unit(0x14), None);
        assert_eq!(metres_per_unit(0), None);
        // SI linear, length 1, mass 1, time -2 (nibble 0xE): the dyne.
        assert_eq!(newtons_per_unit(0xE111), Some(1e-5));
        assert_eq!(newtons_per_unit(0x11), None);
        assert_eq!(unit_nibble(0xE111, 3), -2);
    }

    #[test]
    fn hex_text_in_the_usual_spellings() {
        assert_eq!(
            bytes_from_hex("05 01 # comment\n0x09, 0x08, // more\n a1").unwrap(),
            vec![5, 1, 9, 8, 0xA1]
        );
        assert!(matches!(
            bytes_from_hex("05\n0x123"),
            Err(HexError::BadToken { line: 2, .. })
        ));
    }
}
