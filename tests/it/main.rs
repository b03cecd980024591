//! haptwin's integration tests: one binary, one module per area.
//!
//! The binary installs a counting global allocator ([`alloc_counter`]) so the real-time tests can
//! prove that the haptic thread allocates nothing after start-up.

mod alloc_counter;
mod channels;
mod cli;
mod crash;
mod dashboard;
mod dashboard_browser;
mod dashboard_load;
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
mod store;
mod tissue;
mod twin;
mod twin_dicom;
mod twin_nifti;
mod twin_seg;
mod twin_segment;
mod twin_surface;
mod window;
mod xr;

/// A data folder for the binary's `demo` runs (`XDG_DATA_HOME`), so the tests' demos record into
/// a store of their own, never the user's; one per test binary, removed when the process ends
/// (it is a temp dir the OS cleans; the tests only add to it).
pub fn test_data_home() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir for the tests' data home"))
        .path()
}
