//! Prints a HID report descriptor's reports and fields, and checks a generic-device profile
//! against it: the first step of writing a profile for a new device (`docs/haptics.md`,
//! "Generic HID devices").
//!
//! ```text
//! cargo run --release --example hid_descriptor -- DESCRIPTOR [PROFILE.toml]
//! ```
//!
//! DESCRIPTOR is the raw descriptor (`/sys/class/hidraw/hidrawN/device/report_descriptor`) or
//! hex text (`05 01 09 08 ...`, `0x05, 0x01, ...`, `#` comments allowed). With a profile, it
//! says whether the profile binds to that descriptor, or which field does not match.

use std::path::Path;
use std::process::ExitCode;

use haptwin::haptics::descriptor::{bytes_from_hex, Descriptor};
use haptwin::haptics::generic::GenericProfile;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(descriptor_path) = args.first() else {
        eprintln!("usage: hid_descriptor DESCRIPTOR [PROFILE.toml]");
        return ExitCode::from(2);
    };
    let raw = match std::fs::read(descriptor_path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {descriptor_path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Hex text if it reads as hex, the raw bytes otherwise.
    let bytes = std::str::from_utf8(&raw)
        .ok()
        .and_then(|t| bytes_from_hex(t).ok())
        .filter(|b| !b.is_empty())
        .unwrap_or(raw);
    let descriptor = match Descriptor::parse(&bytes) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{descriptor_path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{descriptor_path}: {} bytes", bytes.len());
    print!("{descriptor}");
    if let Some(profile_path) = args.get(1) {
        let profile = match GenericProfile::load(Path::new(profile_path)) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        match profile.bind(&descriptor) {
            Ok(b) => println!(
                "{profile_path} binds: position in report {}, {} buttons, force outputs: {}",
                b.position
                    .report_id
                    .map_or("(unnumbered)".to_string(), |id| id.to_string()),
                b.buttons.len(),
                if b.force.is_some() { "yes" } else { "none" }
            ),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
