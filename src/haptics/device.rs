//! The device trait shared by simulated and real (HID) haptic devices.
//!
//! Contract for implementors: [`HapticDevice::read`] and [`HapticDevice::write_force`] are
//! called on the haptic thread once per tick; they must not block, allocate or lock. A read
//! returns the newest input since the previous call (draining any queue), or `Ok(None)` when no
//! fresh input arrived.

use std::fmt;
use std::sync::Arc;

/// What a device can do, and the limits the force guard enforces for it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeviceInfo {
    /// Human-readable name, e.g. `"simulated probe (scripted)"`.
    pub name: String,
    /// Largest force magnitude the device may output, newtons.
    pub max_force_n: f64,
    /// Largest change of force per second, newtons per second.
    pub max_force_rate_n_per_s: f64,
    /// Highest stiffness it renders stably, newtons per metre (passivity bound).
    pub max_stiffness_n_per_m: f64,
}

/// One input sample from a device.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DeviceSample {
    /// Stylus tip in the device's own frame, metres.
    pub tip_in_device_m: [f64; 3],
    /// Button bits.
    pub buttons: u32,
}

/// Device failures, reported to the haptic loop (which zeroes the force).
///
/// The device's name is an `Arc<str>` made when the device is opened, so building an error on
/// the haptic thread clones a pointer and never allocates.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The device disappeared (unplugged, closed).
    #[error("device {device} disconnected")]
    Disconnected {
        /// Device name.
        device: Arc<str>,
    },
    /// The device sent a report that does not parse or holds impossible values.
    #[error("device {device} sent a bad report: {what}")]
    BadReport {
        /// Device name.
        device: Arc<str>,
        /// What was wrong.
        what: &'static str,
    },
    /// An I/O error from the transport.
    #[error("device {device} I/O error: {errno}")]
    Io {
        /// Device name.
        device: Arc<str>,
        /// OS error number.
        errno: i32,
    },
}

/// A force-feedback device as the haptic loop sees it.
pub trait HapticDevice: Send + fmt::Debug {
    /// Name and limits.
    fn info(&self) -> &DeviceInfo;

    /// The newest input, or `Ok(None)` when nothing fresh arrived since the last call.
    /// `tick` is the loop's tick counter (simulated devices play their script from it; real
    /// devices ignore it).
    fn read(&mut self, tick: u64) -> Result<Option<DeviceSample>, DeviceError>;

    /// Commands `force_n` (device frame, newtons) until the next write.
    fn write_force(&mut self, force_n: [f64; 3]) -> Result<(), DeviceError>;
}
