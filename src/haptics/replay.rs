//! A device that replays a recorded session's device stream.
//!
//! Every tick record of a session log holds what the device reported that tick (the tip in the
//! world frame, buttons, whether nothing came, whether it failed and how) and the force written
//! back. [`ReplayDevice`] plays the reports back tick by tick (its frame is the world frame:
//! run it with an identity `device_to_world`), including the silences, garbage and failures, so
//! the haptic core meets exactly the input it met when the session was recorded. Because the
//! tissue solver and the loop are deterministic, the forces the core writes must then match
//! the recorded ones bit for bit; the device compares every write with the record and counts
//! the ticks that differ ([`ReplayDevice::verification`]).
//!
//! Contract: `read` and `write_force` index a vector made at construction: no allocation, no
//! blocking. After the last record the device reports itself disconnected (the force goes to
//! zero).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::device::{DeviceError, DeviceInfo, DeviceSample, HapticDevice};
use crate::bus::{tick_flags, TickRecord};
use crate::session::SessionLog;

/// What the device did in one recorded tick.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Report {
    Sample { tip_m: [f64; 3], buttons: u32 },
    Nothing,
    Failed(u32),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Recorded {
    report: Report,
    /// The write failed with this kind of error.
    write_failed: Option<u32>,
    force_out_n: [f64; 3],
}

/// The kind bits of a device fault.
const KINDS: u32 =
    tick_flags::DEVICE_DISCONNECTED | tick_flags::DEVICE_BAD_REPORT | tick_flags::DEVICE_IO_ERROR;

/// How far a replay agreed with its recording, readable from any thread.
#[derive(Debug, Clone, Default)]
pub struct ReplayVerification(Arc<[AtomicU64; 3]>);

impl ReplayVerification {
    /// Forces compared with the recording.
    pub fn compared(&self) -> u64 {
        self.0[0].load(Ordering::Acquire)
    }

    /// Forces that differed from the recording in any bit.
    pub fn mismatches(&self) -> u64 {
        self.0[1].load(Ordering::Acquire)
    }

    /// The first tick whose force differed, if any.
    pub fn first_mismatch_tick(&self) -> Option<u64> {
        match self.0[2].load(Ordering::Acquire) {
            u64::MAX => None,
            t => Some(t),
        }
    }
}

/// Why a log cannot be replayed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The log's header lacks the device limits the replay needs.
    #[error("the log's header has no device limits ({0}): it was recorded by an older haptwin")]
    NoLimits(&'static str),
    /// The log holds no tick records.
    #[error("the log holds no tick records")]
    Empty,
}

/// A device playing back recorded device reports.
#[derive(Debug)]
pub struct ReplayDevice {
    info: DeviceInfo,
    name: Arc<str>,
    records: Vec<Recorded>,
    first_tick: u64,
    verification: ReplayVerification,
    /// Index of the record the last read played (writes compare against it).
    current: Option<usize>,
}

impl ReplayDevice {
    /// Replays `records` (one per tick, from tick `records[0].tick`) on a device with `info`'s
    /// limits.
    pub fn from_records(records: &[TickRecord], info: DeviceInfo) -> Result<Self, ReplayError> {
        let first_tick = records.first().ok_or(ReplayError::Empty)?.tick;
        let recorded = records
            .iter()
            .map(|r| {
                let fault = r.flags & tick_flags::DEVICE_FAULT != 0;
                let no_input = r.flags & tick_flags::NO_INPUT != 0;
                let report = if no_input && fault {
                    Report::Failed(r.flags & KINDS)
                } else if no_input {
                    Report::Nothing
                } else {
                    Report::Sample {
                        tip_m: r.device_pos_in_world_m,
                        buttons: r.device_buttons,
                    }
                };
                // A fault with a report in hand (and a finite one) came from the write.
                let finite = r.device_pos_in_world_m.iter().all(|v| v.is_finite());
                let write_failed = (fault && !no_input && finite).then_some(r.flags & KINDS);
                Recorded {
                    report,
                    write_failed,
                    force_out_n: r.force_out_in_world_n,
                }
            })
            .collect();
        let name = format!("replay of {} ({} ticks)", info.name, records.len());
        let verification = ReplayVerification::default();
        verification.0[2].store(u64::MAX, Ordering::Release);
        Ok(Self {
            info: DeviceInfo {
                name: name.clone(),
                ..info
            },
            name: Arc::from(name.as_str()),
            records: recorded,
            first_tick,
            verification,
            current: None,
        })
    }

    /// Replays a session log, with the device limits its header recorded.
    pub fn from_log(log: &SessionLog) -> Result<Self, ReplayError> {
        let limits = &log.header.coupling;
        let get = |key: &'static str| limits[key].as_f64().ok_or(ReplayError::NoLimits(key));
        let info = DeviceInfo {
            name: log.header.device.clone(),
            max_force_n: get("max_force_n")?,
            max_force_rate_n_per_s: get("max_force_rate_n_per_s")?,
            max_stiffness_n_per_m: get("max_stiffness_n_per_m")?,
        };
        Self::from_records(&log.records, info)
    }

    /// Ticks recorded.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing was recorded (never: construction refuses an empty log).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A handle on the comparison of written forces with the recording.
    pub fn verification(&self) -> ReplayVerification {
        self.verification.clone()
    }

    fn error(&self, kinds: u32) -> DeviceError {
        let device = self.name.clone();
        if kinds & tick_flags::DEVICE_DISCONNECTED != 0 {
            DeviceError::Disconnected { device }
        } else if kinds & tick_flags::DEVICE_BAD_REPORT != 0 {
            DeviceError::BadReport {
                device,
                what: "replayed bad report",
            }
        } else {
            DeviceError::Io { device, errno: 0 }
        }
    }
}

impl HapticDevice for ReplayDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn read(&mut self, tick: u64) -> Result<Option<DeviceSample>, DeviceError> {
        let index = tick
            .checked_sub(self.first_tick)
            .map(|i| i as usize)
            .filter(|&i| i < self.records.len());
        self.current = index;
        let Some(i) = index else {
            return Err(DeviceError::Disconnected {
                device: self.name.clone(),
            });
        };
        match self.records[i].report {
            Report::Sample { tip_m, buttons } => Ok(Some(DeviceSample {
                tip_in_device_m: tip_m,
                buttons,
            })),
            Report::Nothing => Ok(None),
            Report::Failed(kinds) => Err(self.error(kinds)),
        }
    }

    fn write_force(&mut self, force_n: [f64; 3]) -> Result<(), DeviceError> {
        // One write per read is compared; another (the core's final zero on drop) has no
        // record to answer to.
        let Some(i) = self.current.take() else {
            return Ok(());
        };
        let rec = self.records[i];
        let v = &self.verification.0;
        v[0].fetch_add(1, Ordering::AcqRel);
        let same = (0..3).all(|k| force_n[k].to_bits() == rec.force_out_n[k].to_bits());
        if !same {
            v[1].fetch_add(1, Ordering::AcqRel);
            let tick = self.first_tick + i as u64;
            let _ = v[2].fetch_min(tick, Ordering::AcqRel);
        }
        match rec.write_failed {
            Some(kinds) => Err(self.error(kinds)),
            None => Ok(()),
        }
    }
}
