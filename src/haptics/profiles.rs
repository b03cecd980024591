//! The force-feedback devices haptwin knows by USB vendor and product id, and the udev rules
//! file that grants access to them (`calibration/udev/70-haptwin.rules`).
//!
//! Matching is by VID:PID only: under some kernels (uhid, no USB parent) the manufacturer
//! string, interface number and release are empty, so they are never used to match.

/// A known device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KnownDevice {
    /// Profile name, as used on the command line and in `calibration/`.
    pub profile: &'static str,
    /// What it is.
    pub name: &'static str,
    /// USB vendor id.
    pub vendor_id: u16,
    /// USB product id.
    pub product_id: u16,
}

/// Every device with a profile (see `shared/reference/devices.md` for their report layouts).
pub const KNOWN_DEVICES: &[KnownDevice] = &[
    KnownDevice {
        profile: "woodenhaptics",
        name: "WoodenHaptics 1.5",
        vendor_id: 0x1234,
        product_id: 0x0006,
    },
    KnownDevice {
        profile: "polhem",
        name: "Haptikfabriken Polhem",
        vendor_id: 0x16C0,
        product_id: 0x0486,
    },
];

/// Where the udev rules live in the repository.
pub const UDEV_RULES_PATH: &str = "calibration/udev/70-haptwin.rules";

/// The udev rules file, as shipped.
pub const UDEV_RULES: &str = include_str!("../../calibration/udev/70-haptwin.rules");

/// The shell line that installs the rules (run from the repository root).
pub const UDEV_INSTALL: &str = "sudo cp calibration/udev/70-haptwin.rules /etc/udev/rules.d/ \
    && sudo udevadm control --reload && sudo udevadm trigger";

/// The known device with this vendor and product id.
pub fn match_profile(vendor_id: u16, product_id: u16) -> Option<&'static KnownDevice> {
    KNOWN_DEVICES
        .iter()
        .find(|d| d.vendor_id == vendor_id && d.product_id == product_id)
}

/// A one-device udev rule line in the form of the shipped file (for devices not in it).
pub fn udev_rule(vendor_id: u16, product_id: u16) -> String {
    format!(
        "KERNEL==\"hidraw*\", ATTRS{{idVendor}}==\"{vendor_id:04x}\", \
         ATTRS{{idProduct}}==\"{product_id:04x}\", MODE=\"0660\", GROUP=\"plugdev\", \
         TAG+=\"uaccess\""
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_device_has_its_rule_in_the_shipped_file_and_nothing_else_does() {
        let rules: Vec<&str> = UDEV_RULES
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(rules.len(), KNOWN_DEVICES.len(), "{rules:?}");
        for d in KNOWN_DEVICES {
            let rule = udev_rule(d.vendor_id, d.product_id);
            assert!(rules.contains(&rule.as_str()), "missing: {rule}");
        }
    }

    #[test]
    fn profiles_match_by_vid_pid_only() {
        assert_eq!(
            match_profile(0x1234, 0x0006).unwrap().profile,
            "woodenhaptics"
        );
        assert_eq!(match_profile(0x16c0, 0x0486).unwrap().profile, "polhem");
        assert!(match_profile(0x1234, 0x0007).is_none());
        let ids: Vec<(u16, u16)> = KNOWN_DEVICES
            .iter()
            .map(|d| (d.vendor_id, d.product_id))
            .collect();
        for (i, a) in ids.iter().enumerate() {
            assert!(!ids[i + 1..].contains(a), "duplicate id {a:?}");
        }
    }
}
