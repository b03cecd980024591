//! The thin layer under a HID device: send and receive raw reports.
//!
//! [`HidTransport`] is what a device codec talks to. Two implementations:
//! - [`HidapiTransport`]: a real hidraw device through `hidapi`, opened by VID:PID or path,
//!   non-blocking.
//! - [`InProcessTransport`]: the host end of an in-process pair whose other end is an emulated
//!   device ([`EmulatedDevice`]), so the whole codec and kinematics path runs in tests and in
//!   the demo without hardware.
//!
//! Contract: `read_report` and `write_report` never block; after opening, neither allocates.
//! Reports carry no report-ID byte on input; on output the first byte is the report ID (0 for
//! devices without numbered reports), as hidraw expects.

use std::fmt;

/// Largest report handled, bytes (full-speed interrupt endpoints carry at most 64).
pub const MAX_REPORT: usize = 64;

/// Transport failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The device is gone (unplugged, or the emulator was told to vanish).
    #[error("device disconnected")]
    Disconnected,
    /// An operating-system error, with its errno (0 when unknown).
    #[error("I/O error (errno {0})")]
    Io(i32),
}

/// Raw report I/O with one device.
pub trait HidTransport: Send + fmt::Debug {
    /// The next queued input report into `buf`: `Ok(Some(len))`, or `Ok(None)` when none is
    /// waiting. Never blocks.
    fn read_report(&mut self, buf: &mut [u8; MAX_REPORT]) -> Result<Option<usize>, TransportError>;

    /// Sends an output report (`report[0]` is the report ID). Never blocks.
    fn write_report(&mut self, report: &[u8]) -> Result<(), TransportError>;
}

/// A real HID device through `hidapi` (hidraw on Linux), in non-blocking mode.
pub struct HidapiTransport {
    device: hidapi::HidDevice,
}

impl fmt::Debug for HidapiTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HidapiTransport").finish_non_exhaustive()
    }
}

impl HidapiTransport {
    /// Opens the first device with this vendor and product id.
    pub fn open(api: &hidapi::HidApi, vendor_id: u16, product_id: u16) -> hidapi::HidResult<Self> {
        Self::from_device(api.open(vendor_id, product_id)?)
    }

    /// Opens the device at `path` (e.g. `/dev/hidraw0`).
    pub fn open_path(api: &hidapi::HidApi, path: &std::ffi::CStr) -> hidapi::HidResult<Self> {
        Self::from_device(api.open_path(path)?)
    }

    fn from_device(device: hidapi::HidDevice) -> hidapi::HidResult<Self> {
        device.set_blocking_mode(false)?;
        Ok(Self { device })
    }
}

/// A failed write: hidraw refuses writes to a removed device with `ENODEV`; a USB host
/// controller reports an unplugged device as `EPIPE` or `ESHUTDOWN`.
fn io_error(e: &hidapi::HidError) -> TransportError {
    match e {
        hidapi::HidError::IoError { error } => match error.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::EPIPE) | Some(libc::ESHUTDOWN) => {
                TransportError::Disconnected
            }
            Some(errno) => TransportError::Io(errno),
            None => TransportError::Io(0),
        },
        _ => TransportError::Io(0),
    }
}

/// A failed read. Once a hidraw device is removed, `poll` on it reports `POLLHUP | POLLERR`,
/// which `hidapi`'s Linux backend returns as a `HidApiError` (with a message, no errno: in a
/// non-blocking read that is its only non-I/O error; seen under uhid, `tests/it/hid_vm.rs`). A
/// `read` that gets past the poll returns `EIO`, which hidraw's read returns only for a removed
/// device. Both mean the device is gone.
fn read_error(e: &hidapi::HidError) -> TransportError {
    match e {
        hidapi::HidError::HidApiError { .. } => TransportError::Disconnected,
        hidapi::HidError::IoError { error } if error.raw_os_error() == Some(libc::EIO) => {
            TransportError::Disconnected
        }
        other => io_error(other),
    }
}

impl HidTransport for HidapiTransport {
    fn read_report(&mut self, buf: &mut [u8; MAX_REPORT]) -> Result<Option<usize>, TransportError> {
        match self.device.read(buf) {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(e) => Err(read_error(&e)),
        }
    }

    fn write_report(&mut self, report: &[u8]) -> Result<(), TransportError> {
        self.device
            .write(report)
            .map(|_| ())
            .map_err(|e| io_error(&e))
    }
}

/// The device side of an in-process transport: it answers the host's reads and takes its
/// writes. Implementations must not allocate or block.
pub trait EmulatedDevice: Send + fmt::Debug {
    /// Called once per host read: the device's newest input report into `buf`
    /// (`Ok(Some(len))`), nothing new (`Ok(None)`), or an error (gone).
    fn next_report(&mut self, buf: &mut [u8; MAX_REPORT]) -> Result<Option<usize>, TransportError>;

    /// Takes an output report from the host (with its report-ID byte).
    fn take_output(&mut self, report: &[u8]) -> Result<(), TransportError>;
}

/// The host end of an in-process transport: each read asks the emulated device for its newest
/// report, as a 1 kHz device has produced one between two 1 ms ticks. Deterministic: the
/// emulator advances by one report per read.
#[derive(Debug)]
pub struct InProcessTransport<D: EmulatedDevice> {
    device: D,
}

impl<D: EmulatedDevice> InProcessTransport<D> {
    /// Wraps an emulated device.
    pub fn new(device: D) -> Self {
        Self { device }
    }

    /// The emulated device (for inspection).
    pub fn device(&self) -> &D {
        &self.device
    }
}

impl<D: EmulatedDevice> HidTransport for InProcessTransport<D> {
    fn read_report(&mut self, buf: &mut [u8; MAX_REPORT]) -> Result<Option<usize>, TransportError> {
        self.device.next_report(buf)
    }

    fn write_report(&mut self, report: &[u8]) -> Result<(), TransportError> {
        self.device.take_output(report)
    }
}
