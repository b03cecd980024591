//! haptwin: a haptic VR surgical rehearsal simulator on patient-specific digital twins.
//!
//! The crate is organised by role (see `docs/architecture.md`):
//!
//! - [`haptics`]: device trait, simulated devices, force safety and the 1 kHz haptic loop;
//! - [`tissue`]: the XPBD tetrahedral tissue model and tool contact (pure library);
//! - [`render`]: the Vulkan renderer (multiview stereo, MSAA, frames in flight, text);
//! - [`display`], [`xr`], [`window`]: the displays (an OpenXR headset, a desktop window, or
//!   headless images) and choosing one;
//! - [`twin`]: digital twins from imaging; [`score`]: session metrics, score cards,
//!   benchmarks, proficiency and readiness, scripted performances;
//! - [`session`]: scenarios, the session log, its writer (the recorder thread) and reader, and
//!   replay;
//! - [`review`]: replaying, scoring, benchmarking, reporting and exporting logs (the CLI's
//!   after-session commands);
//! - [`store`]: the dashboard's database (SQLite or PostgreSQL): accounts, cohorts, scored
//!   sessions, ratings; [`serve`]: the instructors' dashboard and the stations' upload API;
//! - [`bus`]: the typed lock-free channels between threads;
//! - [`stats`]: fixed-size latency histograms;
//! - [`render_loop`]: the render thread that draws snapshots;
//! - [`demo`], [`doctor`] and [`mod@bench`]: the jobs behind the CLI.
//!
//! Units are SI inside (metres, seconds, newtons, kilograms, pascals); the world frame is
//! right-handed with +y up, the tissue's top surface at y = 0.

pub mod bench;
pub mod bus;
pub mod demo;
pub mod display;
pub mod doctor;
pub mod haptics;
pub mod render;
pub mod render_loop;
pub mod review;
pub mod score;
pub mod serve;
pub mod session;
pub mod stats;
pub mod store;
pub mod tissue;
pub mod twin;
pub mod window;
pub mod xr;
