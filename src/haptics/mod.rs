//! Haptic devices, force safety and the 1 kHz haptic loop.
//!
//! - [`device`]: the [`HapticDevice`](device::HapticDevice) trait every device implements
//!   (simulated today; HID devices plug in behind the same trait).
//! - [`sim`]: a simulated probe playing a scripted trajectory, with fault injection for tests.
//! - [`reconnect`]: a transport that hands a vanished device to a helper thread, which opens it
//!   again and hands it back, without the haptic thread ever waiting.
//! - [`replay`]: a device that plays a recorded session's device stream back, and checks the
//!   forces written against the recording bit for bit.
//! - [`profiles`]: the HID devices known by VID:PID, and the udev rules that grant access.
//! - [`descriptor`]: HID report descriptors: the parser, the report layout, and the
//!   allocation-free field extractor.
//! - [`generic`]: descriptor-driven generic HID devices: a TOML profile maps descriptor fields
//!   to position, orientation, buttons and force (`calibration/generic/`).
//! - [`transport`]: raw HID report I/O: `hidapi` for real devices, an in-process pair for
//!   emulated ones.
//! - [`arm`]: serial-link arms over HID: the calibration file, kinematics, the device, and an
//!   emulated arm speaking the same bytes, for any [`arm::ArmProtocol`].
//! - [`woodenhaptics`]: the WoodenHaptics 1.5 firmware's report layout.
//! - [`pointer`]: a pointer as the device: the tool follows the desktop window's mouse and
//!   keyboard or an OpenXR controller, for trying the simulator without a force device.
//! - [`polhem`]: the Haptikfabriken Polhem firmware's report layout and set-encoders command.
//! - [`calibrate`]: `haptwin calibrate`: home-pose encoder offsets, workspace registration by
//!   touched points (least-squares rigid fit), force-scale check; versioned result files.
//! - [`coupling`]: the virtual coupling (spring-damper) between the device and the tool,
//!   clamped to the device's passivity bound.
//! - [`safety`]: the force guard: clamp, rate limit, zero on any fault, stall or stop.
//! - [`watchdog`]: the helper thread that zeroes the device through a second path when the
//!   haptic thread's heartbeat stops.
//! - [`rt`]: the absolute-deadline timer and real-time scheduling request.
//! - [`instrument`]: the instrument in the hand (probe, grasper, scalpel, cautery, needle):
//!   what the tool does to the tissue each tick, and the events it records.
//! - [`haptic_loop`]: the haptic thread: it owns the device, the tool and the tissue.
//!
//! # Real-time contract
//! After start-up the haptic tick neither allocates, locks nor waits on anything but its own
//! deadline timer and the device I/O. It talks to other threads only through lock-free queues
//! and a triple buffer ([`crate::bus`]); a full telemetry queue counts a drop. Force is zeroed
//! within one tick on any fault, stall, non-finite value or stop, independently of the render
//! thread. `tests/it/realtime.rs` proves the no-allocation rule over 10,000 ticks.

pub mod arm;
pub mod calibrate;
pub mod coupling;
pub mod descriptor;
pub mod device;
pub mod generic;
pub mod haptic_loop;
pub mod instrument;
pub mod pointer;
pub mod polhem;
pub mod profiles;
pub mod reconnect;
pub mod replay;
pub mod rt;
pub mod safety;
pub mod sim;
pub mod transport;
pub mod watchdog;
pub mod woodenhaptics;
