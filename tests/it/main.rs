//! haptwin's integration tests: one binary, one module per area.
//!
//! The binary installs a counting global allocator ([`alloc_counter`]) so the real-time tests can
//! prove that the haptic thread allocates nothing after start-up.

mod alloc_counter;
mod channels;
mod cli;
mod crash;
mod fuzz;
mod generic_hid;
mod haptics;
mod hid_descriptors;
mod hid_vm;
mod realtime;
mod render;
mod score_export;
mod score_report;
mod scoring;
mod session_log;
mod tissue;
mod twin;
mod twin_dicom;
mod twin_nifti;
mod twin_seg;
mod twin_segment;
mod twin_surface;
mod window;
mod xr;
