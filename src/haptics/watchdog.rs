//! The haptic watchdog: a helper thread that watches the haptic thread's heartbeat and, when it
//! stops, zeroes the device through a second, independent path.
//!
//! The haptic tick zeroes the force itself on every fault it can see. What it cannot see is
//! itself stopping: a driver call that blocks, a page fault storm, a bug that spins. The loop
//! stores its tick count into a [`Heartbeat`] after every tick (one atomic store: no lock, no
//! allocation). The watchdog thread (named `haptic-watchdog`, ordinary priority, off the
//! real-time path) polls it every millisecond; when it has not moved for
//! [`WatchdogConfig::timeout`] it calls its [`ForceZeroer`], a second handle on the device
//! (hidraw allows several opens; the in-process emulator has a zero port), which writes a
//! zero-current report. While the silence lasts it writes zero again every
//! [`WatchdogConfig::rezero_every`], so a device whose own watchdog would otherwise re-enable
//! its amplifiers stays quiet. A beat re-arms it. The loop marks a clean end with
//! [`Heartbeat::finish`], after which the watchdog ends without acting.
//!
//! Contract: the haptic side only ever stores to the heartbeat; the watchdog never touches the
//! haptic thread's state, and its zero path shares nothing with the haptic thread's device
//! handle but the device itself.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::arm::{ArmCommand, ArmProtocol};
use super::transport::{HidTransport, TransportError, MAX_REPORT};

/// Heartbeat value after a clean end of the loop.
const FINISHED: u64 = u64::MAX;

/// The haptic thread's pulse: ticks completed, stored after each tick.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Heartbeat {
    /// A heartbeat that has not beaten yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `ticks` ticks are done (the haptic thread, once per tick).
    pub fn beat(&self, ticks: u64) {
        self.0.store(ticks.min(FINISHED - 1), Ordering::Release);
    }

    /// Records that the loop ended cleanly (the device was left at zero force).
    pub fn finish(&self) {
        self.0.store(FINISHED, Ordering::Release);
    }

    fn load(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// A second path to a device's amplifiers that can only make them stop.
pub trait ForceZeroer: Send + fmt::Debug {
    /// Writes zero force (current) to the device now.
    fn zero(&mut self) -> Result<(), TransportError>;
}

/// Zeroes an arm speaking protocol `P` through its own transport (e.g. a second hidraw handle
/// opened by path).
#[derive(Debug)]
pub struct ArmZeroer<T: HidTransport, P: ArmProtocol> {
    transport: T,
    report: [u8; MAX_REPORT],
    len: usize,
    protocol: std::marker::PhantomData<P>,
}

impl<T: HidTransport, P: ArmProtocol> ArmZeroer<T, P> {
    /// A zeroer writing `P`'s zero-current report to `transport`.
    pub fn new(transport: T) -> Self {
        let mut report = [0u8; MAX_REPORT];
        let len = P::encode_output(&ArmCommand::Currents([0; 3]), 0, &mut report);
        Self {
            transport,
            report,
            len,
            protocol: std::marker::PhantomData,
        }
    }
}

impl<T: HidTransport, P: ArmProtocol> ForceZeroer for ArmZeroer<T, P> {
    fn zero(&mut self) -> Result<(), TransportError> {
        self.transport.write_report(&self.report[..self.len])
    }
}

/// Watchdog settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchdogConfig {
    /// Silence after which the device is zeroed.
    pub timeout: Duration,
    /// How often the heartbeat is checked.
    pub poll: Duration,
    /// While the silence lasts, zero again this often.
    pub rezero_every: Duration,
}

impl Default for WatchdogConfig {
    /// 20 ticks of silence at 1 kHz, checked every millisecond, zero repeated every 100 ms.
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(20),
            poll: Duration::from_millis(1),
            rezero_every: Duration::from_millis(100),
        }
    }
}

/// What the watchdog did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WatchdogReport {
    /// Silences that tripped it.
    pub trips: u64,
    /// Zero reports written.
    pub zero_writes: u64,
    /// Zero reports that failed (the device gone, too).
    pub zero_errors: u64,
    /// Longest silence seen, seconds.
    pub longest_silence_s: f64,
}

/// A running watchdog.
#[derive(Debug)]
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<WatchdogReport>,
}

impl Watchdog {
    /// Starts watching `heartbeat`; it arms at the first beat.
    pub fn spawn(
        heartbeat: Heartbeat,
        mut zeroer: Box<dyn ForceZeroer>,
        cfg: WatchdogConfig,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let handle = thread::Builder::new()
            .name("haptic-watchdog".into())
            .spawn(move || {
                let mut report = WatchdogReport::default();
                let mut last = heartbeat.load();
                let mut armed = last != 0;
                let mut last_change = Instant::now();
                let mut tripped = false;
                let mut last_zero = Instant::now();
                while !stop_flag.load(Ordering::Acquire) {
                    thread::sleep(cfg.poll);
                    let now = heartbeat.load();
                    if now == FINISHED {
                        break;
                    }
                    let t = Instant::now();
                    if now != last {
                        last = now;
                        armed = true;
                        tripped = false;
                        last_change = t;
                        continue;
                    }
                    if !armed {
                        continue;
                    }
                    let silence = t - last_change;
                    report.longest_silence_s = report.longest_silence_s.max(silence.as_secs_f64());
                    let due = !tripped || t - last_zero >= cfg.rezero_every;
                    if silence >= cfg.timeout && due {
                        if !tripped {
                            report.trips += 1;
                            tripped = true;
                        }
                        last_zero = t;
                        match zeroer.zero() {
                            Ok(()) => report.zero_writes += 1,
                            Err(_) => report.zero_errors += 1,
                        }
                    }
                }
                report
            })?;
        Ok(Self { stop, handle })
    }

    /// Stops watching and returns what it did.
    pub fn stop(self) -> WatchdogReport {
        self.stop.store(true, Ordering::Release);
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[derive(Debug, Clone, Default)]
    struct Counting(Arc<AtomicU64>);

    impl ForceZeroer for Counting {
        fn zero(&mut self) -> Result<(), TransportError> {
            self.0.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }
    }

    #[test]
    fn a_silent_heartbeat_trips_it_and_a_finished_one_does_not() {
        let zeros = Counting::default();
        let hb = Heartbeat::new();
        let cfg = WatchdogConfig {
            timeout: Duration::from_millis(30),
            poll: Duration::from_millis(1),
            rezero_every: Duration::from_millis(20),
        };
        let dog = Watchdog::spawn(hb.clone(), Box::new(zeros.clone()), cfg).unwrap();
        // Not armed before the first beat, however long it waits.
        thread::sleep(Duration::from_millis(80));
        assert_eq!(zeros.0.load(Ordering::Acquire), 0);
        hb.beat(1);
        // Silent from here: it trips and keeps zeroing.
        thread::sleep(Duration::from_millis(200));
        let report = dog.stop();
        assert_eq!(report.trips, 1);
        assert!(report.zero_writes >= 2, "{report:?}");
        assert_eq!(report.zero_writes, zeros.0.load(Ordering::Acquire));

        let zeros = Counting::default();
        let hb = Heartbeat::new();
        let dog = Watchdog::spawn(hb.clone(), Box::new(zeros.clone()), cfg).unwrap();
        hb.beat(1);
        hb.finish();
        thread::sleep(Duration::from_millis(100));
        let report = dog.stop();
        assert_eq!(report.trips, 0, "a clean end is not a stall");
    }
}
