//! Session recording: the session log format, the recorder thread and the log reader.
//!
//! - [`log`]: the on-disk format (`.htlog`): a checksummed header, then checksummed chunks of
//!   fixed-size tick records (after a clock chunk tying tick 0 to the wall clock), then an end
//!   chunk when the session closed cleanly. A reader recovers every complete chunk of a
//!   truncated or damaged log and says where it stopped and what it recovered.
//! - [`recorder`]: the recorder thread, which drains the telemetry queue and writes each chunk
//!   straight to the file at least every 20 ms, so a process crash or `kill -9` loses about the
//!   last 20 ms (at most 100 ms, held by `tests/it/crash.rs`).
//! - [`scenario`]: scenarios as data files (goals, instrument, case, metrics, benchmark) and
//!   what they aim at in a case's tissue.
//! - [`replay`]: re-running a session from its log's inputs, checking every force bit for bit.

pub mod log;
pub mod recorder;
pub mod replay;
pub mod scenario;

pub use log::{LogClock, LogError, LogHeader, SessionLog};
pub use recorder::{
    spawn_recorder, spawn_recorder_with, RecorderOptions, RecorderReport, StartClock,
};
