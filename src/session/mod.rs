//! Session recording: the session log format, the recorder thread and the log reader.
//!
//! - [`log`]: the on-disk format (`.htlog`): a checksummed header, then checksummed chunks of
//!   fixed-size tick records, then an end chunk when the session closed cleanly. A reader
//!   recovers every complete chunk of a truncated or damaged log and says where it stopped.
//! - [`scenario`]: scenarios as data files (goals, instrument, case, metrics, benchmark) and
//!   what they aim at in a case's tissue.
//! - [`replay`]: re-running a session from its log's inputs, checking every force bit for bit.
//! - [`recorder`]: the recorder thread, which drains the telemetry queue and writes chunks at
//!   least every 50 ms, so a process crash loses about the last 50 ms.

pub mod log;
pub mod recorder;
pub mod replay;
pub mod scenario;

pub use log::{LogError, LogHeader, SessionLog};
pub use recorder::{spawn_recorder, RecorderReport};
