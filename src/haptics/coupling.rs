//! Virtual coupling: a spring-damper between the device's tip and the simulated tool.
//!
//! The tissue never pushes the hand directly. The tool is a small mass that the coupling spring
//! pulls towards the device tip and the tissue pushes back; the hand feels only the spring
//! (Colgate's virtual coupling). However stiff the tissue, its boundary conditions or a bone
//! underneath, the hand never feels more than the coupling's stiffness, and that stiffness is
//! clamped to the device's passivity bound ([`DeviceInfo::max_stiffness_n_per_m`]): a wall of
//! stiffness K rendered at period T is only passive when the device's own damping exceeds
//! `K T / 2` plus the virtual damping, which is what the per-device limit in
//! `calibration/<device>.toml` encodes.
//!
//! Integration (one call of [`VirtualCoupling::step`] per tick): the spring and damper are
//! integrated implicitly (backward Euler: stable for any stiffness and time step), the tissue's
//! contact force of the previous tick explicitly. The damper acts on the velocity of the tool
//! relative to the device (the device's velocity is a low-pass filtered difference of its
//! positions), so a tool moving with the hand in free space costs the hand nothing but the
//! tool's inertia. Damping defaults to critical, `kd = 2 sqrt(m ks)`.
//!
//! Contract: pure arithmetic on `Copy` state, no allocation, no panic on non-finite input (a
//! non-finite device position or contact force leaves the tool where it is).

use nalgebra::Vector3;

use super::device::DeviceInfo;

/// Settings of the coupling.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CouplingConfig {
    /// Spring stiffness asked for, N/m (clamped to the device's passivity bound).
    pub stiffness_n_per_m: f64,
    /// Damping as a fraction of critical damping (1: critical).
    pub damping_ratio: f64,
    /// Mass of the simulated tool, kg.
    pub tool_mass_kg: f64,
    /// Cut-off of the filter on the device's velocity, hertz.
    pub velocity_filter_hz: f64,
}

impl Default for CouplingConfig {
    /// As stiff as any supported device renders passively (the device's limit decides), a
    /// 30 g tool, critically damped, device velocity filtered at 100 Hz.
    fn default() -> Self {
        Self {
            stiffness_n_per_m: 3_000.0,
            damping_ratio: 1.0,
            tool_mass_kg: 0.03,
            velocity_filter_hz: 100.0,
        }
    }
}

/// The coupling's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VirtualCoupling {
    stiffness_n_per_m: f64,
    damping_n_s_per_m: f64,
    mass_kg: f64,
    velocity_alpha: f64,
    stiffness_limited: bool,
    tool_m: Vector3<f64>,
    tool_velocity_m_per_s: Vector3<f64>,
    device_m: Option<Vector3<f64>>,
    device_velocity_m_per_s: Vector3<f64>,
}

impl VirtualCoupling {
    /// A coupling for `device`, ticking every `dt_s`. The stiffness is clamped to the device's
    /// passivity bound ([`Self::stiffness_limited`] says whether it was).
    pub fn new(cfg: &CouplingConfig, device: &DeviceInfo, dt_s: f64) -> Self {
        let asked = if cfg.stiffness_n_per_m.is_finite() && cfg.stiffness_n_per_m > 0.0 {
            cfg.stiffness_n_per_m
        } else {
            device.max_stiffness_n_per_m
        };
        let ks = asked.min(device.max_stiffness_n_per_m);
        let mass_kg = if cfg.tool_mass_kg.is_finite() && cfg.tool_mass_kg > 0.0 {
            cfg.tool_mass_kg
        } else {
            CouplingConfig::default().tool_mass_kg
        };
        let zeta = if cfg.damping_ratio.is_finite() {
            cfg.damping_ratio.max(0.0)
        } else {
            1.0
        };
        let rc = 1.0 / (2.0 * std::f64::consts::PI * cfg.velocity_filter_hz.max(1e-3));
        Self {
            stiffness_n_per_m: ks,
            damping_n_s_per_m: 2.0 * zeta * (mass_kg * ks).sqrt(),
            mass_kg,
            velocity_alpha: dt_s / (rc + dt_s),
            stiffness_limited: ks < asked,
            tool_m: Vector3::zeros(),
            tool_velocity_m_per_s: Vector3::zeros(),
            device_m: None,
            device_velocity_m_per_s: Vector3::zeros(),
        }
    }

    /// The stiffness in force, N/m.
    pub fn stiffness_n_per_m(&self) -> f64 {
        self.stiffness_n_per_m
    }

    /// The damping in force, N s/m.
    pub fn damping_n_s_per_m(&self) -> f64 {
        self.damping_n_s_per_m
    }

    /// Whether the stiffness asked for was above the device's passivity bound.
    pub fn stiffness_limited(&self) -> bool {
        self.stiffness_limited
    }

    /// Where the tool is, metres (world frame of the caller).
    pub fn tool_m(&self) -> Vector3<f64> {
        self.tool_m
    }

    /// Puts the tool on the device tip at rest (at the first sample, or after the tool was
    /// lost).
    pub fn reset(&mut self, device_m: Vector3<f64>) {
        self.tool_m = device_m;
        self.tool_velocity_m_per_s = Vector3::zeros();
        self.device_m = Some(device_m);
        self.device_velocity_m_per_s = Vector3::zeros();
    }

    /// Advances one tick: the device tip is at `device_m`, and the tissue pushed the tool with
    /// `contact_on_tool_n` during the last tick. Returns the tool's new position.
    pub fn step(
        &mut self,
        device_m: Vector3<f64>,
        contact_on_tool_n: Vector3<f64>,
        dt_s: f64,
    ) -> Vector3<f64> {
        if !device_m.iter().all(|v| v.is_finite()) {
            return self.tool_m;
        }
        let Some(prev) = self.device_m else {
            self.reset(device_m);
            return self.tool_m;
        };
        let raw_velocity = (device_m - prev) / dt_s;
        self.device_velocity_m_per_s +=
            (raw_velocity - self.device_velocity_m_per_s) * self.velocity_alpha;
        self.device_m = Some(device_m);
        let contact = if contact_on_tool_n.iter().all(|v| v.is_finite()) {
            contact_on_tool_n
        } else {
            Vector3::zeros()
        };
        let (ks, kd, m) = (self.stiffness_n_per_m, self.damping_n_s_per_m, self.mass_kg);
        // Backward Euler in the spring and damper:
        // m (v' - v) / dt = ks (xd - x - dt v') + kd (vd - v') + f.
        let rhs = self.tool_velocity_m_per_s
            + (ks * (device_m - self.tool_m) + kd * self.device_velocity_m_per_s + contact)
                * (dt_s / m);
        let v = rhs / (1.0 + dt_s * kd / m + dt_s * dt_s * ks / m);
        self.tool_velocity_m_per_s = v;
        self.tool_m += v * dt_s;
        self.tool_m
    }

    /// The force the coupling pulls the hand with now, newtons: the spring stretched from the
    /// device tip to the tool, plus the damper on their relative velocity.
    pub fn force_on_device_n(&self) -> Vector3<f64> {
        match self.device_m {
            None => Vector3::zeros(),
            Some(d) => {
                self.stiffness_n_per_m * (self.tool_m - d)
                    + self.damping_n_s_per_m
                        * (self.tool_velocity_m_per_s - self.device_velocity_m_per_s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(max_stiffness_n_per_m: f64) -> DeviceInfo {
        DeviceInfo {
            name: "test".into(),
            max_force_n: 5.0,
            max_force_rate_n_per_s: 2000.0,
            max_stiffness_n_per_m,
        }
    }

    #[test]
    fn stiffness_is_clamped_to_the_device_passivity_bound() {
        let c = VirtualCoupling::new(&CouplingConfig::default(), &device(1000.0), 1e-3);
        assert_eq!(c.stiffness_n_per_m(), 1000.0);
        assert!(c.stiffness_limited());
        let expected_kd = 2.0 * (0.03f64 * 1000.0).sqrt();
        assert!((c.damping_n_s_per_m() - expected_kd).abs() < 1e-12);
        let soft = CouplingConfig {
            stiffness_n_per_m: 400.0,
            ..CouplingConfig::default()
        };
        let c = VirtualCoupling::new(&soft, &device(1000.0), 1e-3);
        assert_eq!(c.stiffness_n_per_m(), 400.0);
        assert!(!c.stiffness_limited());
    }

    /// Against an infinitely stiff wall (the tool cannot pass z = 0) the hand feels the
    /// coupling's stiffness and no more.
    #[test]
    fn a_rigid_wall_feels_no_stiffer_than_the_coupling() {
        let mut c = VirtualCoupling::new(&CouplingConfig::default(), &device(1000.0), 1e-3);
        let dt = 1e-3;
        let mut contact = Vector3::zeros();
        c.reset(Vector3::new(0.0, 0.0, 0.01));
        // Press 4 mm into the wall over 0.5 s, then hold for 0.5 s.
        for i in 0..1000 {
            let t = (i as f64 * dt).min(0.5);
            let dev = Vector3::new(0.0, 0.0, 0.01 - 0.028 * t);
            let tool = c.step(dev, contact, dt);
            // The wall: whatever pushed the tool below z = 0 is pushed back out (a contact
            // impulse, as the tissue's constraints give).
            contact = if tool.z < 0.0 {
                Vector3::new(0.0, 0.0, -tool.z * c.mass_kg / (dt * dt))
                    - Vector3::new(
                        0.0,
                        0.0,
                        c.tool_velocity_m_per_s.z.min(0.0) * c.mass_kg / dt,
                    )
            } else {
                Vector3::zeros()
            };
        }
        let f = c.force_on_device_n();
        // 4 mm at 1000 N/m is 4 N; the tool rests a hair inside the wall.
        assert!(f.z > 3.5 && f.z < 4.2, "{f:?}");
        assert!(
            f.z / 0.004 <= 1000.0 * 1.05,
            "felt stiffness {}",
            f.z / 0.004
        );
    }

    /// In free space the tool follows the hand: at constant velocity the hand feels nothing,
    /// and a stop costs only the tool's inertia.
    #[test]
    fn free_space_costs_the_hand_only_the_tools_inertia() {
        let mut c = VirtualCoupling::new(&CouplingConfig::default(), &device(1000.0), 1e-3);
        let dt = 1e-3;
        c.reset(Vector3::zeros());
        let mut peak = 0.0f64;
        for i in 0..600 {
            let t = i as f64 * dt;
            // 0.2 m/s for 0.3 s, then stand still.
            let dev = Vector3::new(0.2 * t.min(0.3), 0.0, 0.0);
            c.step(dev, Vector3::zeros(), dt);
            if i > 100 && i < 290 {
                let f = c.force_on_device_n().norm();
                assert!(f < 0.02, "tick {i}: {f} N at constant velocity");
            }
            peak = peak.max(c.force_on_device_n().norm());
        }
        // Starting and stopping 0.2 m/s within a few ms with 30 g: well under 2 N.
        assert!(peak < 2.0, "{peak}");
        assert!((c.tool_m() - Vector3::new(0.06, 0.0, 0.0)).norm() < 1e-4);
        assert!(c.force_on_device_n().norm() < 1e-3);
    }

    #[test]
    fn non_finite_input_leaves_the_tool_in_place() {
        let mut c = VirtualCoupling::new(&CouplingConfig::default(), &device(1000.0), 1e-3);
        c.reset(Vector3::new(0.0, 0.0, 0.0));
        let before = c.tool_m();
        c.step(Vector3::new(f64::NAN, 0.0, 0.0), Vector3::zeros(), 1e-3);
        assert_eq!(c.tool_m(), before);
        c.step(
            Vector3::new(0.001, 0.0, 0.0),
            Vector3::new(f64::INFINITY, 0.0, 0.0),
            1e-3,
        );
        assert!(c.tool_m().iter().all(|v| v.is_finite()));
        assert!(c.force_on_device_n().iter().all(|v| v.is_finite()));
    }
}
