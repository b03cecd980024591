//! A simulated haptic device: a probe that plays a scripted trajectory.
//!
//! The script is a list of waypoints in the device frame joined by smooth (cosine-eased)
//! segments and repeated with its period. Time comes from the loop's tick counter, not a clock,
//! so a run is deterministic. The forces the loop writes are visible to other threads through a
//! lock-free [`ForceMonitor`]. A [`FaultPlan`] injects stalls, garbage and disconnects for tests.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::device::{DeviceError, DeviceInfo, DeviceSample, HapticDevice};

/// A point of the script: where the tip is at `t_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Waypoint {
    /// Time since the start of the period, seconds.
    pub t_s: f64,
    /// Tip position in the device frame, metres.
    pub tip_in_device_m: [f64; 3],
}

/// A repeating trajectory through waypoints; the last waypoint's time is the period.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    waypoints: Vec<Waypoint>,
    /// Button changes: from `t_s` on (within a period) the buttons are the given bits.
    buttons: Vec<(f64, u32)>,
}

impl Script {
    /// A script through `waypoints` (at least two, strictly increasing times from 0).
    ///
    /// # Panics
    /// If the waypoints are fewer than two, do not start at 0 or do not increase.
    pub fn new(waypoints: Vec<Waypoint>) -> Self {
        assert!(waypoints.len() >= 2, "a script needs two waypoints");
        assert_eq!(waypoints[0].t_s, 0.0, "a script starts at t = 0");
        assert!(
            waypoints.windows(2).all(|w| w[1].t_s > w[0].t_s),
            "waypoint times must increase"
        );
        Self {
            waypoints,
            buttons: Vec::new(),
        }
    }

    /// The built-in palpation: approach the tissue from above, press 10 mm into it, slide 4 cm
    /// across, withdraw, return; 5 s per cycle. For a 12 mm sphere over a surface at y = 0.
    pub fn palpation() -> Self {
        let wp = |t_s, x, y| Waypoint {
            t_s,
            tip_in_device_m: [x, y, 0.0],
        };
        Self::new(vec![
            wp(0.0, -0.02, 0.05),
            wp(1.0, -0.02, 0.012),
            wp(1.8, -0.02, 0.002),
            wp(3.3, 0.02, 0.002),
            wp(4.2, 0.02, 0.05),
            wp(5.0, -0.02, 0.05),
        ])
    }

    /// Adds button presses: `changes` are `(t_s, bits)` in increasing time, each holding from
    /// its time (within a period) until the next; before the first, no button is held.
    pub fn with_buttons(mut self, changes: Vec<(f64, u32)>) -> Self {
        assert!(
            changes.windows(2).all(|w| w[1].0 > w[0].0),
            "button change times must increase"
        );
        self.buttons = changes;
        self
    }

    /// The buttons held at `t_s` (repeating like the path).
    pub fn buttons_at(&self, t_s: f64) -> u32 {
        let period = self.period_s();
        let t = if period > 0.0 {
            t_s.rem_euclid(period)
        } else {
            t_s
        };
        self.buttons
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(0, |&(_, b)| b)
    }

    /// The waypoints.
    pub fn waypoints(&self) -> &[Waypoint] {
        &self.waypoints
    }

    /// Length of one cycle, seconds.
    pub fn period_s(&self) -> f64 {
        self.waypoints.last().map_or(0.0, |w| w.t_s)
    }

    /// The same script with every waypoint moved by `f` (e.g. into another device's frame).
    pub fn mapped(&self, f: impl Fn([f64; 3]) -> [f64; 3]) -> Self {
        Self {
            buttons: self.buttons.clone(),
            waypoints: self
                .waypoints
                .iter()
                .map(|w| Waypoint {
                    t_s: w.t_s,
                    tip_in_device_m: f(w.tip_in_device_m),
                })
                .collect(),
        }
    }

    /// Tip position at time `t_s` (wrapped into the period). Never allocates.
    pub fn tip_at(&self, t_s: f64) -> [f64; 3] {
        let period = self.period_s();
        let t = t_s.rem_euclid(period);
        let seg = self
            .waypoints
            .windows(2)
            .find(|w| t < w[1].t_s)
            .unwrap_or(&self.waypoints[self.waypoints.len() - 2..]);
        let (a, b) = (seg[0], seg[1]);
        let u = ((t - a.t_s) / (b.t_s - a.t_s)).clamp(0.0, 1.0);
        let s = 0.5 - 0.5 * (std::f64::consts::PI * u).cos();
        [0, 1, 2].map(|i| a.tip_in_device_m[i] + (b.tip_in_device_m[i] - a.tip_in_device_m[i]) * s)
    }
}

/// Faults to inject, by tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Ticks during which the device sends nothing (a stall).
    pub stall: Option<Range<u64>>,
    /// Ticks at which the device sends a garbage report (non-finite position).
    pub garbage: Option<Range<u64>>,
    /// From this tick on the device is gone.
    pub disconnect_at: Option<u64>,
}

#[derive(Debug, Default)]
struct MonitorInner {
    force_bits: [AtomicU64; 3],
    writes: AtomicU64,
    nonzero_writes: AtomicU64,
}

/// A lock-free view of the forces written to a simulated device, readable from any thread.
#[derive(Debug, Clone, Default)]
pub struct ForceMonitor(Arc<MonitorInner>);

impl ForceMonitor {
    /// The force most recently written, newtons.
    pub fn last_force_n(&self) -> [f64; 3] {
        [0, 1, 2].map(|i| f64::from_bits(self.0.force_bits[i].load(Ordering::Acquire)))
    }

    /// How many writes the device received.
    pub fn writes(&self) -> u64 {
        self.0.writes.load(Ordering::Acquire)
    }

    /// How many writes carried a non-zero force.
    pub fn nonzero_writes(&self) -> u64 {
        self.0.nonzero_writes.load(Ordering::Acquire)
    }
}

/// A simulated probe device playing a [`Script`].
#[derive(Debug)]
pub struct ScriptedProbe {
    info: DeviceInfo,
    script: Script,
    dt_s: f64,
    faults: FaultPlan,
    monitor: ForceMonitor,
    /// The name errors carry (made once, cloned without allocating).
    error_name: Arc<str>,
}

impl ScriptedProbe {
    /// A probe playing `script`, one sample per tick of `dt_s` seconds, with limits like a
    /// desktop force-feedback stylus (8 N, 2 kN/s, 2 kN/m).
    pub fn new(script: Script, dt_s: f64) -> Self {
        Self {
            info: DeviceInfo {
                name: "simulated probe (scripted)".into(),
                max_force_n: 8.0,
                max_force_rate_n_per_s: 2_000.0,
                max_stiffness_n_per_m: 2_000.0,
            },
            script,
            dt_s,
            faults: FaultPlan::default(),
            monitor: ForceMonitor::default(),
            error_name: Arc::from("simulated probe (scripted)"),
        }
    }

    /// The same probe with faults injected.
    pub fn with_faults(mut self, faults: FaultPlan) -> Self {
        self.faults = faults;
        self
    }

    /// A handle to watch the forces written to this device.
    pub fn monitor(&self) -> ForceMonitor {
        self.monitor.clone()
    }
}

impl HapticDevice for ScriptedProbe {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn read(&mut self, tick: u64) -> Result<Option<DeviceSample>, DeviceError> {
        if self.faults.disconnect_at.is_some_and(|t| tick >= t) {
            return Err(DeviceError::Disconnected {
                device: self.error_name.clone(),
            });
        }
        if self
            .faults
            .stall
            .as_ref()
            .is_some_and(|r| r.contains(&tick))
        {
            return Ok(None);
        }
        let mut tip = self.script.tip_at(tick as f64 * self.dt_s);
        if self
            .faults
            .garbage
            .as_ref()
            .is_some_and(|r| r.contains(&tick))
        {
            tip[1] = f64::NAN;
        }
        Ok(Some(DeviceSample {
            tip_in_device_m: tip,
            buttons: self.script.buttons_at(tick as f64 * self.dt_s),
        }))
    }

    fn write_force(&mut self, force_n: [f64; 3]) -> Result<(), DeviceError> {
        let m = &self.monitor.0;
        for (slot, v) in m.force_bits.iter().zip(force_n) {
            slot.store(v.to_bits(), Ordering::Release);
        }
        if force_n.iter().any(|&v| v != 0.0) {
            m.nonzero_writes.fetch_add(1, Ordering::AcqRel);
        }
        m.writes.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palpation_touches_presses_and_withdraws() {
        let s = Script::palpation();
        assert_eq!(s.tip_at(0.0), [-0.02, 0.05, 0.0]);
        assert!((s.tip_at(1.8)[1] - 0.002).abs() < 1e-12);
        let mid_slide = s.tip_at(2.55);
        assert!(mid_slide[0].abs() < 1e-9 && (mid_slide[1] - 0.002).abs() < 1e-12);
        assert!((s.tip_at(4.2)[1] - 0.05).abs() < 1e-12);
        // Wraps around.
        assert_eq!(s.tip_at(5.0), s.tip_at(0.0));
        // Continuous: no jumps bigger than 1 mm per ms.
        for i in 0..10_000 {
            let (a, b) = (s.tip_at(i as f64 * 1e-3), s.tip_at((i + 1) as f64 * 1e-3));
            let d: f64 = (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt();
            assert!(d < 1e-3, "jump of {d} m at tick {i}");
        }
    }

    #[test]
    fn faults_are_injected() {
        let mut p = ScriptedProbe::new(Script::palpation(), 1e-3).with_faults(FaultPlan {
            stall: Some(10..12),
            garbage: Some(20..21),
            disconnect_at: Some(30),
        });
        assert!(p.read(9).unwrap().is_some());
        assert!(p.read(10).unwrap().is_none());
        assert!(p.read(20).unwrap().unwrap().tip_in_device_m[1].is_nan());
        let err = p.read(30).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device simulated probe (scripted) disconnected"
        );
    }
}
