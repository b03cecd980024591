//! Reconnecting a HID device off the haptic thread.
//!
//! [`ReconnectingTransport`] wraps a transport for the haptic thread. When the device goes
//! away (the transport says [`TransportError::Disconnected`]), it hands the dead transport to a
//! helper thread (named `hid-reconnect`) through a lock-free queue and reports the
//! disconnection (the loop zeroes the force). The helper closes the dead handle, then tries to
//! open the device again every [`RECONNECT_INTERVAL`] through its [`Opener`] (for a real
//! device: enumerate with hidapi and open by VID:PID), and hands a fresh transport back
//! through a second queue. The haptic thread picks it up at its next read. Neither side ever
//! waits for the other: opening, enumerating and closing, which block and allocate, all happen
//! on the helper.
//!
//! After a reconnection the device's incremental encoders may have restarted from zero (a
//! device powered by USB resets): the arm device forgets its last pose at a disconnection, so
//! no jump check or force uses the old one, and the user should re-home it
//! (`haptwin calibrate`) if positions look shifted.
//!
//! Contract (haptic side): `read_report` and `write_report` never block and never allocate or
//! free; a dead transport that cannot be queued is kept until it can.

use std::ffi::CString;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::transport::{HidTransport, HidapiTransport, TransportError, MAX_REPORT};
use crate::bus::{self, QueueRx, QueueTx};

/// How often the helper tries to open the device again.
pub const RECONNECT_INTERVAL: Duration = Duration::from_millis(100);

/// Opens a device (on the helper thread: it may block and allocate).
pub trait Opener: Send + 'static {
    /// The transport it opens.
    type Transport: HidTransport + 'static;
    /// A fresh transport, or `None` when the device is not there (yet).
    fn open(&mut self) -> Option<Self::Transport>;
}

/// Opens a real device by VID:PID (or by path) through `hidapi`, enumerating afresh each time.
#[derive(Debug, Clone)]
pub struct HidapiOpener {
    /// Vendor id.
    pub vendor_id: u16,
    /// Product id.
    pub product_id: u16,
    /// A hidraw path to open instead (it may change when the device is plugged in again).
    pub path: Option<CString>,
}

impl Opener for HidapiOpener {
    type Transport = HidapiTransport;

    fn open(&mut self) -> Option<HidapiTransport> {
        let api = hidapi::HidApi::new().ok()?;
        let by_id = HidapiTransport::open(&api, self.vendor_id, self.product_id);
        match (&self.path, by_id) {
            (_, Ok(t)) => Some(t),
            (Some(p), Err(_)) => HidapiTransport::open_path(&api, p).ok(),
            (None, Err(_)) => None,
        }
    }
}

/// Counts of what the reconnection did, readable from any thread.
#[derive(Debug, Clone, Default)]
pub struct ReconnectStats(Arc<[AtomicU64; 2]>);

impl ReconnectStats {
    /// Disconnections seen.
    pub fn disconnections(&self) -> u64 {
        self.0[0].load(Ordering::Acquire)
    }

    /// Fresh transports delivered after a disconnection.
    pub fn reconnections(&self) -> u64 {
        self.0[1].load(Ordering::Acquire)
    }
}

/// A transport that survives its device going away and coming back.
pub struct ReconnectingTransport<T: HidTransport + 'static> {
    current: Option<T>,
    /// A dead transport waiting for room in the queue to the helper.
    dead: Option<T>,
    to_helper: QueueTx<T>,
    from_helper: QueueRx<T>,
    stats: ReconnectStats,
    stop: Arc<AtomicBool>,
    helper: Option<JoinHandle<()>>,
}

impl<T: HidTransport + 'static> fmt::Debug for ReconnectingTransport<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconnectingTransport")
            .field("connected", &self.current.is_some())
            .field("disconnections", &self.stats.disconnections())
            .field("reconnections", &self.stats.reconnections())
            .finish_non_exhaustive()
    }
}

impl<T: HidTransport + 'static> ReconnectingTransport<T> {
    /// Wraps `transport` (already open) and starts the helper thread with `opener`.
    pub fn new<O: Opener<Transport = T>>(transport: T, mut opener: O) -> std::io::Result<Self> {
        let (to_helper, mut dead_rx) = bus::queue::<T>(4);
        let (mut fresh_tx, from_helper) = bus::queue::<T>(1);
        let stats = ReconnectStats::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (stats2, stop2) = (stats.clone(), stop.clone());
        let helper = thread::Builder::new()
            .name("hid-reconnect".into())
            .spawn(move || {
                let mut wanted = false;
                let mut last_try: Option<Instant> = None;
                while !stop2.load(Ordering::Acquire) {
                    while let Some(dead) = dead_rx.pop() {
                        // Closing the handle happens here, off the haptic thread.
                        drop(dead);
                        wanted = true;
                    }
                    let due = last_try.is_none_or(|t| t.elapsed() >= RECONNECT_INTERVAL);
                    if wanted && due {
                        last_try = Some(Instant::now());
                        if let Some(t) = opener.open() {
                            match fresh_tx.push(t) {
                                Ok(()) => {
                                    stats2.0[1].fetch_add(1, Ordering::AcqRel);
                                    wanted = false;
                                    last_try = None;
                                }
                                // One is already waiting to be picked up.
                                Err(extra) => drop(extra),
                            }
                        }
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            })?;
        Ok(Self {
            current: Some(transport),
            dead: None,
            to_helper,
            from_helper,
            stats,
            stop,
            helper: Some(helper),
        })
    }

    /// What the reconnection did so far.
    pub fn stats(&self) -> ReconnectStats {
        self.stats.clone()
    }

    /// Whether a transport is in use now.
    pub fn is_connected(&self) -> bool {
        self.current.is_some()
    }

    /// The transport to use now, picking up a fresh one from the helper if needed.
    fn transport(&mut self) -> Option<&mut T> {
        if let Some(dead) = self.dead.take() {
            if let Err(back) = self.to_helper.push(dead) {
                self.dead = Some(back);
            }
        }
        if self.current.is_none() {
            self.current = self.from_helper.pop();
        }
        self.current.as_mut()
    }

    fn lost(&mut self) {
        if let Some(t) = self.current.take() {
            self.stats.0[0].fetch_add(1, Ordering::AcqRel);
            if let Err(back) = self.to_helper.push(t) {
                self.dead = Some(back);
            }
        }
    }
}

impl<T: HidTransport + 'static> Drop for ReconnectingTransport<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.helper.take() {
            let _ = h.join();
        }
    }
}

impl<T: HidTransport + 'static> HidTransport for ReconnectingTransport<T> {
    fn read_report(&mut self, buf: &mut [u8; MAX_REPORT]) -> Result<Option<usize>, TransportError> {
        let Some(t) = self.transport() else {
            return Err(TransportError::Disconnected);
        };
        match t.read_report(buf) {
            Err(TransportError::Disconnected) => {
                self.lost();
                Err(TransportError::Disconnected)
            }
            other => other,
        }
    }

    fn write_report(&mut self, report: &[u8]) -> Result<(), TransportError> {
        let Some(t) = self.current.as_mut() else {
            return Err(TransportError::Disconnected);
        };
        match t.write_report(report) {
            Err(TransportError::Disconnected) => {
                self.lost();
                Err(TransportError::Disconnected)
            }
            other => other,
        }
    }
}
