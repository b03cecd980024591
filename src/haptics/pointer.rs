//! A pointer as the haptic device: the tool follows a target that a display thread sets —
//! the desktop window's mouse and keyboard, or an OpenXR controller's pose — so the simulator
//! can be tried without a force-feedback device. It cannot push back: the force the tissue
//! makes shows on the in-world gauge (and, in a headset, as controller vibration).
//!
//! Contract: the display thread publishes [`PointerState`] through a triple buffer
//! ([`pointer_channel`]); the haptic thread's [`PointerDevice::read`] takes the newest one
//! without waiting or allocating. A display that stops publishing leaves the tool where it
//! was (a pointer at rest is not a fault); one that publishes a non-finite target gets a bad
//! report (force zeroed within the tick). Positions are in the world frame (metres): the
//! device-to-world transform of a pointer is the identity.

use std::sync::Arc;

use super::device::{DeviceError, DeviceInfo, DeviceSample, HapticDevice};
use crate::bus::{self, Publisher, Subscriber};

/// What the display says the pointer is doing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PointerState {
    /// Where the tool tip should go, world frame, metres.
    pub target_in_world_m: [f64; 3],
    /// Buttons held (bit 0: primary).
    pub buttons: u32,
    /// Incremented by the display each time it publishes.
    pub seq: u64,
}

/// Where a pointer's tool starts: 4 cm above the table's centre (clear of the tissue).
pub const POINTER_START_IN_WORLD_M: [f64; 3] = [0.0, 0.04, 0.0];

/// The two ends of a pointer channel: the display publishes, the device reads.
pub fn pointer_channel() -> (Publisher<PointerState>, Subscriber<PointerState>) {
    bus::triple_buffer(PointerState {
        target_in_world_m: POINTER_START_IN_WORLD_M,
        buttons: 0,
        seq: 0,
    })
}

/// The haptic device side of a pointer. See the module docs.
#[derive(Debug)]
pub struct PointerDevice {
    info: DeviceInfo,
    input: Subscriber<PointerState>,
    name: Arc<str>,
    last_force_n: [f64; 3],
}

impl PointerDevice {
    /// A pointer device reading `input`; `source` names the display (`"window"`,
    /// `"openxr controller"`).
    pub fn new(input: Subscriber<PointerState>, source: &str) -> Self {
        let name = format!("pointer ({source})");
        Self {
            info: DeviceInfo {
                name: name.clone(),
                // The limits of the simulated stylus: the coupling and gauge behave as with it.
                max_force_n: 8.0,
                max_force_rate_n_per_s: 2_000.0,
                max_stiffness_n_per_m: 2_000.0,
            },
            input,
            name: Arc::from(name),
            last_force_n: [0.0; 3],
        }
    }

    /// The force last written (it goes nowhere: a pointer has no motors).
    pub fn last_force_n(&self) -> [f64; 3] {
        self.last_force_n
    }
}

impl HapticDevice for PointerDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn read(&mut self, _tick: u64) -> Result<Option<DeviceSample>, DeviceError> {
        self.input.update();
        let s = self.input.read();
        if !s.target_in_world_m.iter().all(|v| v.is_finite()) {
            return Err(DeviceError::BadReport {
                device: self.name.clone(),
                what: "non-finite pointer target",
            });
        }
        Ok(Some(DeviceSample {
            tip_in_device_m: s.target_in_world_m,
            buttons: s.buttons,
        }))
    }

    fn write_force(&mut self, force_n: [f64; 3]) -> Result<(), DeviceError> {
        self.last_force_n = force_n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_newest_target_and_holds_it() {
        let (mut tx, rx) = pointer_channel();
        let mut dev = PointerDevice::new(rx, "test");
        let first = dev.read(0).unwrap().unwrap();
        assert_eq!(first.tip_in_device_m, POINTER_START_IN_WORLD_M);
        for (i, x) in [0.01, 0.02, 0.03].into_iter().enumerate() {
            *tx.back_mut() = PointerState {
                target_in_world_m: [x, 0.0, 0.0],
                buttons: 1,
                seq: i as u64 + 1,
            };
            tx.publish();
        }
        let s = dev.read(1).unwrap().unwrap();
        assert_eq!(s.tip_in_device_m, [0.03, 0.0, 0.0]);
        assert_eq!(s.buttons, 1);
        // Nothing new: the tool stays.
        assert_eq!(
            dev.read(2).unwrap().unwrap().tip_in_device_m,
            [0.03, 0.0, 0.0]
        );
        dev.write_force([1.0, 2.0, 3.0]).unwrap();
        assert_eq!(dev.last_force_n(), [1.0, 2.0, 3.0]);
    }

    #[test]
    fn a_non_finite_target_is_a_bad_report() {
        let (mut tx, rx) = pointer_channel();
        let mut dev = PointerDevice::new(rx, "test");
        tx.back_mut().target_in_world_m = [f64::NAN, 0.0, 0.0];
        tx.publish();
        assert!(matches!(dev.read(0), Err(DeviceError::BadReport { .. })));
    }
}
