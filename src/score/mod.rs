//! Scoring sessions: the metrics with evidence behind them, computed from a session's tick
//! records (`../shared/reference/scoring.md`).
//!
//! - [`metrics`]: motion and force metrics of a session (time, path length, movements, idle
//!   time, log dimensionless jerk, peak/RMS/integral force, force rate, time above the
//!   tissue-safe force).
//! - [`card`]: the score card of a session (every metric, its unit, which way is better, its
//!   benchmark bound and whether it is within it).
//!
//! Contract: pure and deterministic; nothing here runs on the haptic thread.

pub mod card;
pub mod metrics;
