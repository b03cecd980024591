//! The force guard: the last word on every force before it reaches the device.
//!
//! Contract, applied every tick by [`ForceGuard::apply`]:
//! - a stop, an emergency stop, a device fault or a stall (no fresh input for
//!   [`SafetyLimits::stall_ticks`] ticks) makes the output exactly zero *this* tick;
//! - a non-finite desired force (NaN, infinity) makes the output exactly zero this tick;
//! - otherwise the force is clamped to [`SafetyLimits::max_force_n`] in magnitude, and its change
//!   from the previous output is limited to `max_force_rate_n_per_s * dt_s` (so force rises
//!   smoothly; falling to zero on a fault is never delayed).
//!
//! Never allocates; pure arithmetic.

use nalgebra::Vector3;

use crate::bus::tick_flags;

/// Limits for one device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafetyLimits {
    /// Largest force magnitude, newtons.
    pub max_force_n: f64,
    /// Largest change of force per second, newtons per second.
    pub max_force_rate_n_per_s: f64,
    /// Ticks without fresh device input after which the device counts as stalled.
    pub stall_ticks: u32,
}

/// What the guard was told about this tick besides the desired force.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GuardInput {
    /// The device delivered fresh input this tick.
    pub fresh_input: bool,
    /// The device reported an error this tick.
    pub device_fault: bool,
    /// A stop or emergency stop is in force.
    pub stopping: bool,
}

/// Stateful force guard (remembers the last output and the input freshness).
#[derive(Debug, Clone)]
pub struct ForceGuard {
    limits: SafetyLimits,
    last_out_n: Vector3<f64>,
    ticks_without_input: u32,
}

impl ForceGuard {
    /// A guard with `limits`, starting at zero force.
    pub fn new(limits: SafetyLimits) -> Self {
        Self {
            limits,
            last_out_n: Vector3::zeros(),
            ticks_without_input: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &SafetyLimits {
        &self.limits
    }

    /// The force to write this tick, and the [`tick_flags`] that explain it.
    pub fn apply(
        &mut self,
        desired_n: Vector3<f64>,
        input: GuardInput,
        dt_s: f64,
    ) -> (Vector3<f64>, u32) {
        let mut flags = 0;
        if input.fresh_input {
            self.ticks_without_input = 0;
        } else {
            self.ticks_without_input = self.ticks_without_input.saturating_add(1);
        }
        if input.stopping {
            flags |= tick_flags::STOPPING;
        }
        if input.device_fault {
            flags |= tick_flags::DEVICE_FAULT;
        }
        if self.ticks_without_input > self.limits.stall_ticks {
            flags |= tick_flags::STALLED;
        }
        if !desired_n.iter().all(|v| v.is_finite()) {
            flags |= tick_flags::NON_FINITE;
        }
        if flags != 0 {
            self.last_out_n = Vector3::zeros();
            return (self.last_out_n, flags);
        }
        let mut f = desired_n;
        let mag = f.norm();
        if mag > self.limits.max_force_n {
            f *= self.limits.max_force_n / mag;
            flags |= tick_flags::CLAMPED;
        }
        let step = f - self.last_out_n;
        let max_step = self.limits.max_force_rate_n_per_s * dt_s;
        let step_mag = step.norm();
        if step_mag > max_step {
            f = self.last_out_n + step * (max_step / step_mag);
            flags |= tick_flags::RATE_LIMITED;
        }
        self.last_out_n = f;
        (f, flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> ForceGuard {
        ForceGuard::new(SafetyLimits {
            max_force_n: 5.0,
            max_force_rate_n_per_s: 1000.0,
            stall_ticks: 3,
        })
    }

    const OK: GuardInput = GuardInput {
        fresh_input: true,
        device_fault: false,
        stopping: false,
    };

    #[test]
    fn clamps_and_rate_limits() {
        let mut g = guard();
        let (f, flags) = g.apply(Vector3::new(0.0, 100.0, 0.0), OK, 1e-3);
        assert_eq!(f, Vector3::new(0.0, 1.0, 0.0));
        assert_ne!(flags & tick_flags::CLAMPED, 0);
        assert_ne!(flags & tick_flags::RATE_LIMITED, 0);
        for _ in 0..10 {
            g.apply(Vector3::new(0.0, 100.0, 0.0), OK, 1e-3);
        }
        let (f, _) = g.apply(Vector3::new(0.0, 100.0, 0.0), OK, 1e-3);
        assert!((f.norm() - 5.0).abs() < 1e-12);
    }

    #[test]
    fn any_fault_zeroes_within_the_tick() {
        for bad in [
            (Vector3::new(f64::NAN, 0.0, 0.0), OK),
            (Vector3::new(0.0, f64::INFINITY, 0.0), OK),
            (
                Vector3::new(0.0, 1.0, 0.0),
                GuardInput {
                    device_fault: true,
                    ..OK
                },
            ),
            (
                Vector3::new(0.0, 1.0, 0.0),
                GuardInput {
                    stopping: true,
                    ..OK
                },
            ),
        ] {
            let mut g = guard();
            for _ in 0..10 {
                g.apply(Vector3::new(0.0, 3.0, 0.0), OK, 1e-3);
            }
            let (f, flags) = g.apply(bad.0, bad.1, 1e-3);
            assert_eq!(f, Vector3::zeros());
            assert_ne!(flags, 0);
        }
    }

    #[test]
    fn stall_zeroes_after_window() {
        let mut g = guard();
        let stale = GuardInput {
            fresh_input: false,
            ..OK
        };
        for _ in 0..10 {
            g.apply(Vector3::new(0.0, 3.0, 0.0), OK, 1e-3);
        }
        for _ in 0..3 {
            let (f, _) = g.apply(Vector3::new(0.0, 3.0, 0.0), stale, 1e-3);
            assert!(f.norm() > 0.0);
        }
        let (f, flags) = g.apply(Vector3::new(0.0, 3.0, 0.0), stale, 1e-3);
        assert_eq!(f, Vector3::zeros());
        assert_ne!(flags & tick_flags::STALLED, 0);
    }
}
