//! Research and learning-record exports of a session: JIGSAWS-layout kinematics from a session
//! log, xAPI 1.0.3 statements from a score card, and posting those statements to a Learning
//! Record Store (LRS).
//!
//! Contract: the kinematics and statement builders are pure and deterministic (same input, same
//! bytes); only [`write_jigsaws`], [`write_xapi`] and [`post_statements`] do I/O, and every error
//! names the file or endpoint it concerns. Nothing here runs on the haptic thread. Exports are
//! pseudonymous: the only case identity that leaves is the log's or card's `case_id` pseudonym;
//! the only person named is the trainee given as the [`XapiActor`].
//!
//! # JIGSAWS kinematics
//!
//! [`jigsaws_kinematics`] writes the layout of the JIGSAWS data set's kinematics files: no header,
//! one row per frame, 76 whitespace-separated values per row, 19 per manipulator in the order
//! master left (columns 1-19), master right (20-38), slave left (39-57), slave right (58-76).
//! Each manipulator's 19 values are: tip position x, y, z (metres); rotation matrix, 9 values,
//! row-major (r11 r12 r13 r21 ... r33); linear velocity x, y, z (m/s); angular velocity x, y, z
//! (rad/s); gripper angle (rad). [`jigsaws_columns`] names every column and [`write_jigsaws`]
//! writes a sidecar description beside the data file (JIGSAWS files carry no header).
//!
//! haptwin has one instrument, held in the right hand, and no master/slave split, so:
//!
//! - **slave right** (58-76) is the simulated tool: [`TickRecord::tool_pos_in_world_m`] (the
//!   tool's centre, the tip sphere's centre), world frame;
//! - **master right** (20-38) is the haptic device's stylus tip as calibrated into the world
//!   frame: [`TickRecord::device_pos_in_world_m`] (JIGSAWS masters use the master's own frame;
//!   ours is the world frame, the same as the tool's);
//! - **master left** and **slave left** are all zeros, rotation matrix included (a zero
//!   matrix marks an absent manipulator; it is no rotation).
//!
//! The records carry no orientation: the rotation matrix is the identity and the angular
//! velocity zero in both right-hand slots. The gripper angle, in both right-hand slots, comes
//! from [`tick_flags::INSTRUMENT_ACTIVE`] (the activate button held, jaws closed): the fraction
//! `a` of the frame's ticks with the flag set gives `GRIPPER_OPEN_RAD + a * (GRIPPER_CLOSED_RAD -
//! GRIPPER_OPEN_RAD)`, so an open instrument reads [`GRIPPER_OPEN_RAD`] and a closed one
//! [`GRIPPER_CLOSED_RAD`].
//!
//! Frames: frame `k` covers simulated time `[k / rate, (k + 1) / rate)` from the first record's
//! tick; only whole frames are written (a trailing partial frame is dropped). A frame's position
//! is the mean of its ticks (a box filter before resampling, so no aliasing), taken at the mean
//! time of those ticks; velocity is the central difference of the neighbouring frames' positions
//! over the difference of their mean times (one-sided at the ends), which is exact for motion at
//! constant velocity whatever the tick count of each frame. Non-finite positions (a device that
//! sent garbage) are left out of the mean; a frame with no usable tick (dropped records, a
//! faulty device) is interpolated linearly between its neighbours, held at the ends; a stream
//! with no usable tick at all is written as `NaN`.
//!
//! Numbers are plain decimals with six digits after the point (`{:.6}`: micrometres, µm/s,
//! microradians), as JIGSAWS writes them; negative zero is written as `0.000000`. Rows end in
//! `\n`, values are separated by one space.
//!
//! # xAPI statements
//!
//! [`xapi_statements`] builds an array of xAPI 1.0.3 statements for one scored session:
//!
//! 1. `completed` (the log closed cleanly) or `attempted` (crashed or truncated), with result
//!    `completion` and `duration`, and the score when there is a benchmark;
//! 2. when the card was scored against a benchmark, `passed` or `failed`, with result `score`,
//!    `success`, `completion` and `duration`.
//!
//! The object is an Activity `<activity base><scenario>` (default base
//! `https://haptwin.invalid/scenarios/`, see [`XapiOptions`]) of type
//! `http://adlnet.gov/expapi/activities/simulation`. The score, when a benchmark exists and
//! bounds at least one metric: `raw` = metrics within their bound, `max` = metrics with a bound,
//! `min` = 0, `scaled` = raw / max. The context holds the registration (the session id, or a
//! name-based UUID of it when it is not a UUID), the platform, and extensions with the case id
//! pseudonym, the software version, the benchmark and every metric keyed by its key. The
//! timestamp is the session's start, UTC, to the second; `duration` is ISO 8601 (`PT1M2.345S`).
//!
//! Statement ids are deterministic name-based UUIDs (see [`name_uuid`]): the SHA-256 of the
//! session id and the verb, truncated to 128 bits and stamped with the RFC 4122 variant and
//! version 5 so that strict LRS validators accept them (true version 5 UUIDs use SHA-1; these
//! are "v5-like"). Exporting the same session twice gives the same ids, so an LRS does not store
//! it twice. [`random_uuid_v4`] makes a fresh session id when the caller has none.
//!
//! # Posting to an LRS
//!
//! [`post_statements`] POSTs the statements to `<endpoint>/statements` with the
//! `X-Experience-API-Version: 1.0.3` header, `Content-Type: application/json` and HTTP Basic
//! authentication when a key or secret is given, over the `ureq` HTTP client (`http://` and
//! `https://` with rustls and the Mozilla root certificates; no redirects are followed, so
//! credentials never travel to another host). It returns the ids the LRS answers with.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::bus::{tick_flags, TickRecord};
use crate::score::card::{Better, ScoreCard};
use crate::session::log::SessionLog;

/// The JIGSAWS frame rate (its videos and kinematics are at 30 Hz).
pub const JIGSAWS_RATE_HZ: f64 = 30.0;
/// Columns per manipulator.
pub const JIGSAWS_VALUES_PER_MANIPULATOR: usize = 19;
/// Columns per row (two masters, two slaves).
pub const JIGSAWS_COLUMNS: usize = 4 * JIGSAWS_VALUES_PER_MANIPULATOR;
/// Gripper angle of an open instrument (no [`tick_flags::INSTRUMENT_ACTIVE`]), radians.
pub const GRIPPER_OPEN_RAD: f64 = 0.5;
/// Gripper angle of a closed (active) instrument, radians.
pub const GRIPPER_CLOSED_RAD: f64 = 0.0;

/// The xAPI version this module writes and announces.
pub const XAPI_VERSION: &str = "1.0.3";
/// Verb: the session ran to its end.
pub const VERB_COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
/// Verb: the session was tried but did not close cleanly.
pub const VERB_ATTEMPTED: &str = "http://adlnet.gov/expapi/verbs/attempted";
/// Verb: every metric within the benchmark.
pub const VERB_PASSED: &str = "http://adlnet.gov/expapi/verbs/passed";
/// Verb: some metric outside the benchmark.
pub const VERB_FAILED: &str = "http://adlnet.gov/expapi/verbs/failed";
/// Activity type of a scenario.
pub const ACTIVITY_TYPE_SIMULATION: &str = "http://adlnet.gov/expapi/activities/simulation";

/// Environment variable holding the LRS endpoint (e.g. `https://lrs.example.org/xapi`).
pub const ENV_LRS_URL: &str = "HAPTWIN_LRS_URL";
/// Environment variable holding the LRS key (the Basic-auth user name).
pub const ENV_LRS_KEY: &str = "HAPTWIN_LRS_KEY";
/// Environment variable holding the LRS secret (the Basic-auth password).
pub const ENV_LRS_SECRET: &str = "HAPTWIN_LRS_SECRET";
/// How long a POST to an LRS may take unless configured otherwise.
pub const DEFAULT_LRS_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the exports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The frame rate is not a positive finite number no higher than the log's tick rate.
    #[error(
        "JIGSAWS export of case {case_id}: frame rate {rate_hz} Hz is not a positive number no \
         higher than the tick rate"
    )]
    BadRate {
        /// The log's case id.
        case_id: String,
        /// The rate asked for, hertz.
        rate_hz: f64,
    },
    /// The log holds nothing to export (no records, a bad tick period, shorter than a frame).
    #[error("JIGSAWS export of case {case_id}: {what}")]
    BadLog {
        /// The log's case id.
        case_id: String,
        /// What is missing.
        what: String,
    },
    /// An export file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The LRS could not be reached (bad URL, refused or timed-out connection, TLS failure).
    #[error("cannot reach the LRS at {endpoint}: {reason}")]
    LrsConnection {
        /// The statements URL.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// The LRS answered with a status other than 2xx.
    #[error("the LRS at {endpoint} answered {status}: {body}")]
    LrsStatus {
        /// The statements URL.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The first 500 characters of the answer's body.
        body: String,
    },
    /// The LRS answered 2xx, but not with a JSON array of statement ids.
    #[error("the LRS at {endpoint} gave an unreadable answer: {what}")]
    LrsResponse {
        /// The statements URL.
        endpoint: String,
        /// What is wrong with the answer.
        what: String,
    },
    /// The operating system's random source failed.
    #[error("no random numbers for a UUID: {0}")]
    Random(String),
}

// ---------------------------------------------------------------------------------------------
// JIGSAWS kinematics
// ---------------------------------------------------------------------------------------------

const SLOTS: [&str; 4] = ["master_left", "master_right", "slave_left", "slave_right"];

/// The name of every column of [`jigsaws_kinematics`], in order (76 names):
/// `<slot>_<quantity>` with slot `master_left`, `master_right`, `slave_left`, `slave_right` and
/// quantity `pos_x`..`pos_z`, `rot_r11`..`rot_r33`, `vel_x`..`vel_z`, `angvel_x`..`angvel_z`,
/// `gripper_angle`.
pub fn jigsaws_columns() -> Vec<String> {
    let mut cols = Vec::with_capacity(JIGSAWS_COLUMNS);
    for slot in SLOTS {
        for a in ["x", "y", "z"] {
            cols.push(format!("{slot}_pos_{a}"));
        }
        for r in 1..=3 {
            for c in 1..=3 {
                cols.push(format!("{slot}_rot_r{r}{c}"));
            }
        }
        for a in ["x", "y", "z"] {
            cols.push(format!("{slot}_vel_{a}"));
        }
        for a in ["x", "y", "z"] {
            cols.push(format!("{slot}_angvel_{a}"));
        }
        cols.push(format!("{slot}_gripper_angle"));
    }
    cols
}

/// The sidecar description of a JIGSAWS export: what the columns hold, their units, the frame
/// rate and where the data came from (scenario, case pseudonym, software version), as text.
pub fn jigsaws_description(log: &SessionLog, rate_hz: f64) -> String {
    let h = &log.header;
    let mut s = String::new();
    let _ = writeln!(s, "# haptwin kinematics in the JIGSAWS layout");
    let _ = writeln!(s, "# scenario: {}", h.scenario);
    let _ = writeln!(s, "# case id (pseudonym): {}", h.case_id);
    let _ = writeln!(s, "# software version: {}", h.software_version);
    let _ = writeln!(s, "# frame rate: {rate_hz} Hz; tick period {} s", h.dt_s);
    let _ = writeln!(
        s,
        "# one row per frame, {JIGSAWS_COLUMNS} values separated by spaces, no header; frame \
         values are means of the frame's ticks"
    );
    let _ = writeln!(
        s,
        "# units: positions m (world frame), velocities m/s, angular velocities rad/s, \
         gripper angle rad (open {GRIPPER_OPEN_RAD}, closed {GRIPPER_CLOSED_RAD})"
    );
    let _ = writeln!(
        s,
        "# slave_right: the simulated tool (centre of the tip sphere); master_right: the \
         haptic device's stylus tip in the world frame; left slots: zeros"
    );
    let _ = writeln!(
        s,
        "# no orientation is recorded: rotation matrices are the identity, angular velocities 0"
    );
    let _ = writeln!(s, "# column (1-based) name");
    for (i, c) in jigsaws_columns().iter().enumerate() {
        let _ = writeln!(s, "{} {c}", i + 1);
    }
    s
}

/// Running sums of one position stream in one frame.
#[derive(Clone, Copy, Default)]
struct Acc {
    sum: [f64; 3],
    t_sum: f64,
    n: u32,
}

impl Acc {
    fn add(&mut self, p: [f64; 3], t: f64) {
        if p.iter().all(|v| v.is_finite()) {
            for (s, v) in self.sum.iter_mut().zip(p) {
                *s += v;
            }
            self.t_sum += t;
            self.n += 1;
        }
    }

    /// (mean time, mean position), if any sample.
    fn mean(&self) -> Option<(f64, [f64; 3])> {
        (self.n > 0).then(|| {
            let n = f64::from(self.n);
            (self.t_sum / n, self.sum.map(|s| s / n))
        })
    }
}

/// One resampled stream: per frame its time and position, gaps filled.
struct Stream {
    t: Vec<f64>,
    p: Vec<[f64; 3]>,
}

impl Stream {
    /// Fills frames without a sample by linear interpolation at the frame's centre, holding the
    /// nearest sample at the ends; all `NaN` when there is no sample at all.
    fn fill(frames: &[Option<(f64, [f64; 3])>], rate_hz: f64) -> Stream {
        let n = frames.len();
        let centre = |k: usize| (k as f64 + 0.5) / rate_hz;
        let mut t = Vec::with_capacity(n);
        let mut p = Vec::with_capacity(n);
        let known: Vec<usize> = (0..n).filter(|&k| frames[k].is_some()).collect();
        if known.is_empty() {
            for k in 0..n {
                t.push(centre(k));
                p.push([f64::NAN; 3]);
            }
            return Stream { t, p };
        }
        let mut next: usize = 0; // index into `known` of the first known frame at or after k
        for (k, f) in frames.iter().enumerate() {
            if let Some((tk, pk)) = *f {
                t.push(tk);
                p.push(pk);
                next += 1;
                continue;
            }
            let before = next.checked_sub(1).and_then(|i| known.get(i)).copied();
            let after = known.get(next).copied();
            let val = |i: usize| frames[i];
            let tc = centre(k);
            let pk = match (before.and_then(val), after.and_then(val)) {
                (Some((ta, pa)), Some((tb, pb))) if tb > ta => {
                    let w = ((tc - ta) / (tb - ta)).clamp(0.0, 1.0);
                    [0, 1, 2].map(|i| pa[i] + w * (pb[i] - pa[i]))
                }
                (Some((_, pa)), _) => pa,
                (None, Some((_, pb))) => pb,
                (None, None) => [f64::NAN; 3],
            };
            t.push(tc);
            p.push(pk);
        }
        Stream { t, p }
    }

    /// Velocity at frame `k`: central difference over the neighbours' mean times, one-sided at
    /// the ends, zero for a single frame.
    fn velocity(&self, k: usize) -> [f64; 3] {
        let n = self.p.len();
        if n < 2 {
            return [0.0; 3];
        }
        let lo = k.saturating_sub(1);
        let hi = (k + 1).min(n - 1);
        let dt = self.t[hi] - self.t[lo];
        if dt > 0.0 {
            [0, 1, 2].map(|i| (self.p[hi][i] - self.p[lo][i]) / dt)
        } else {
            [0.0; 3]
        }
    }
}

/// Appends one value as a plain decimal with six digits, negative zero as zero.
fn push_value(row: &mut String, v: f64) {
    if !row.is_empty() {
        row.push(' ');
    }
    let start = row.len();
    let _ = write!(row, "{v:.6}");
    if row[start..].starts_with('-') && row[start + 1..].bytes().all(|b| b == b'0' || b == b'.') {
        row.remove(start);
    }
}

/// Appends one manipulator's 19 values.
fn push_manipulator(row: &mut String, pos: [f64; 3], vel: [f64; 3], gripper: f64) {
    for v in pos {
        push_value(row, v);
    }
    // No orientation is recorded: the identity, row-major.
    for v in [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0] {
        push_value(row, v);
    }
    for v in vel {
        push_value(row, v);
    }
    for _ in 0..3 {
        push_value(row, 0.0);
    }
    push_value(row, gripper);
}

/// Appends an absent manipulator: 19 zeros.
fn push_absent(row: &mut String) {
    for _ in 0..JIGSAWS_VALUES_PER_MANIPULATOR {
        push_value(row, 0.0);
    }
}

/// The session's kinematics in the JIGSAWS layout at `rate_hz` frames per second (use
/// [`JIGSAWS_RATE_HZ`] for JIGSAWS' 30 Hz): one line per whole frame, 76 values each (see the
/// module docs for the column map, the resampling and the number format).
///
/// Errors: [`ExportError::BadRate`] for a rate that is not positive and finite or is above the
/// tick rate; [`ExportError::BadLog`] for a log without records, with a tick period that is not
/// positive and finite, or shorter than one frame.
pub fn jigsaws_kinematics(log: &SessionLog, rate_hz: f64) -> Result<String, ExportError> {
    let case_id = &log.header.case_id;
    let bad_log = |what: &str| ExportError::BadLog {
        case_id: case_id.clone(),
        what: what.to_string(),
    };
    let dt = log.header.dt_s;
    if !(dt.is_finite() && dt > 0.0) {
        return Err(bad_log(&format!("tick period {dt} s is not positive")));
    }
    if !(rate_hz.is_finite() && rate_hz > 0.0 && rate_hz * dt <= 1.0 + 1e-9) {
        return Err(ExportError::BadRate {
            case_id: case_id.clone(),
            rate_hz,
        });
    }
    let (Some(first), Some(last)) = (log.records.first(), log.records.last()) else {
        return Err(bad_log("the log holds no tick records"));
    };
    let span_ticks = last.tick.saturating_sub(first.tick).saturating_add(1);
    let span_s = span_ticks as f64 * dt;
    let frames_f = (span_s * rate_hz + 1e-9).floor();
    if frames_f < 1.0 {
        return Err(bad_log(&format!(
            "the log covers {span_s} s, less than one frame at {rate_hz} Hz"
        )));
    }
    let n_frames = frames_f as usize;

    let mut tool = vec![Acc::default(); n_frames];
    let mut device = vec![Acc::default(); n_frames];
    let mut ticks = vec![0u32; n_frames];
    let mut active = vec![0u32; n_frames];
    for r in &log.records {
        let Some(k) = frame_of(r, first.tick, dt, rate_hz, n_frames) else {
            continue;
        };
        let t = (r.tick - first.tick) as f64 * dt;
        tool[k].add(r.tool_pos_in_world_m, t);
        device[k].add(r.device_pos_in_world_m, t);
        ticks[k] += 1;
        if r.flags & tick_flags::INSTRUMENT_ACTIVE != 0 {
            active[k] += 1;
        }
    }
    let tool = Stream::fill(&tool.iter().map(Acc::mean).collect::<Vec<_>>(), rate_hz);
    let device = Stream::fill(&device.iter().map(Acc::mean).collect::<Vec<_>>(), rate_hz);

    // Gripper: fraction of active ticks; frames without ticks hold the previous frame's value.
    let mut gripper = Vec::with_capacity(n_frames);
    let mut held = None;
    for (&n, &on) in ticks.iter().zip(&active) {
        if n > 0 {
            let a = f64::from(on) / f64::from(n);
            held = Some(GRIPPER_OPEN_RAD + a * (GRIPPER_CLOSED_RAD - GRIPPER_OPEN_RAD));
        }
        gripper.push(held);
    }
    let first_gripper = gripper.iter().flatten().next().copied();
    let gripper: Vec<f64> = gripper
        .into_iter()
        .map(|g| g.or(first_gripper).unwrap_or(GRIPPER_OPEN_RAD))
        .collect();

    let mut out = String::with_capacity(n_frames * JIGSAWS_COLUMNS * 10);
    let mut row = String::with_capacity(JIGSAWS_COLUMNS * 10);
    for (k, &grip) in gripper.iter().enumerate() {
        row.clear();
        // Master left: absent, all zeros (rotation included).
        push_absent(&mut row);
        // Master right: the device.
        push_manipulator(&mut row, device.p[k], device.velocity(k), grip);
        // Slave left: absent.
        push_absent(&mut row);
        // Slave right: the tool.
        push_manipulator(&mut row, tool.p[k], tool.velocity(k), grip);
        out.push_str(&row);
        out.push('\n');
    }
    Ok(out)
}

/// The frame a record falls in, if it is in a whole frame.
fn frame_of(r: &TickRecord, first: u64, dt: f64, rate_hz: f64, n_frames: usize) -> Option<usize> {
    let rel = r.tick.checked_sub(first)?;
    let k = (rel as f64 * dt * rate_hz + 1e-9).floor();
    (k >= 0.0 && k < n_frames as f64).then_some(k as usize)
}

/// Where [`write_jigsaws`] puts the sidecar description of `path`: the same name with the
/// extension `columns.txt` (`Suturing_B001.txt` → `Suturing_B001.columns.txt`).
pub fn jigsaws_sidecar_path(path: &Path) -> PathBuf {
    path.with_extension("columns.txt")
}

/// Writes [`jigsaws_kinematics`] to `path` and [`jigsaws_description`] beside it (at
/// [`jigsaws_sidecar_path`]); returns the sidecar's path.
pub fn write_jigsaws(log: &SessionLog, rate_hz: f64, path: &Path) -> Result<PathBuf, ExportError> {
    let data = jigsaws_kinematics(log, rate_hz)?;
    write_file(path, data.as_bytes())?;
    let sidecar = jigsaws_sidecar_path(path);
    write_file(&sidecar, jigsaws_description(log, rate_hz).as_bytes())?;
    Ok(sidecar)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    std::fs::write(path, bytes).map_err(|source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------------------------------------
// xAPI statements
// ---------------------------------------------------------------------------------------------

/// The learner the statements are about: an xAPI Agent. Give an `mbox` or an `account` (an
/// account on the programme's system is the pseudonymous choice); with both, the account is
/// used (an Agent has exactly one identifier); with neither, the Agent is identified by an
/// account named `name` on the activity base IRI's home page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XapiActor {
    /// Display name (may be empty: then it is left out).
    pub name: String,
    /// E-mail address, with or without `mailto:`.
    pub mbox: Option<String>,
    /// An account: (home page IRI, account name).
    pub account: Option<(String, String)>,
}

/// How statements are built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XapiOptions {
    /// IRI the scenario name is appended to for the Activity id (ends in `/`).
    pub activity_base: String,
    /// IRI the extension names are appended to (ends in `/`).
    pub extension_base: String,
    /// Language tag of the names and descriptions.
    pub language: String,
    /// The `context.platform`.
    pub platform: String,
}

impl Default for XapiOptions {
    fn default() -> Self {
        XapiOptions {
            activity_base: "https://haptwin.invalid/scenarios/".into(),
            extension_base: "https://haptwin.invalid/xapi/extensions/".into(),
            language: "en-US".into(),
            platform: "haptwin".into(),
        }
    }
}

/// The xAPI statements of a scored session with the default [`XapiOptions`] (see the module
/// docs). `session_id` should be a UUID (it becomes the registration); anything else is
/// turned into a name-based UUID.
pub fn xapi_statements(card: &ScoreCard, actor: &XapiActor, session_id: &str) -> Value {
    xapi_statements_with(card, actor, session_id, &XapiOptions::default())
}

/// The score of a card against its benchmark: (metrics within, metrics with a bound).
pub fn benchmark_counts(card: &ScoreCard) -> (u32, u32) {
    let mut within = 0;
    let mut bounded = 0;
    for m in &card.metrics {
        let inside = match (&m.benchmark, m.within) {
            (_, Some(w)) => Some(w),
            (Some(b), None) => Some(b.admits(m.value, m.better)),
            (None, None) => None,
        };
        if let Some(w) = inside {
            bounded += 1;
            within += u32::from(w);
        }
    }
    (within, bounded)
}

/// Like [`xapi_statements`], with `options`.
pub fn xapi_statements_with(
    card: &ScoreCard,
    actor: &XapiActor,
    session_id: &str,
    options: &XapiOptions,
) -> Value {
    let registration = if is_uuid(session_id) {
        session_id.to_ascii_lowercase()
    } else {
        name_uuid(&["haptwin-session", session_id])
    };
    let ext = |name: &str| format!("{}{name}", options.extension_base);
    let lang = |text: String| {
        let mut m = Map::new();
        m.insert(options.language.clone(), Value::String(text));
        Value::Object(m)
    };

    let agent = agent_json(actor, options);
    let object = json!({
        "objectType": "Activity",
        "id": format!("{}{}", options.activity_base, percent_encode(&card.scenario)),
        "definition": {
            "type": ACTIVITY_TYPE_SIMULATION,
            "name": lang(format!("haptwin {} scenario", card.scenario)),
            "description": lang(format!(
                "Haptic VR surgical rehearsal: the {} scenario on a digital twin of a case, \
                 scored with motion, force and outcome metrics",
                card.scenario
            )),
        },
    });

    let mut metrics = Map::new();
    for m in &card.metrics {
        let mut o = Map::new();
        o.insert("label".into(), json!(m.label));
        o.insert("value".into(), json!(m.value));
        o.insert("unit".into(), json!(m.unit));
        o.insert(
            "better".into(),
            json!(match m.better {
                Better::Lower => "lower",
                Better::Higher => "higher",
            }),
        );
        if let Some(b) = &m.benchmark {
            o.insert("limit".into(), json!(b.limit));
            o.insert("expert_mean".into(), json!(b.expert_mean));
        }
        if let Some(w) = m.within {
            o.insert("within".into(), json!(w));
        }
        metrics.insert(m.key.clone(), Value::Object(o));
    }
    let mut extensions = Map::new();
    extensions.insert(ext("case-id"), json!(card.case_id));
    extensions.insert(ext("software-version"), json!(card.software_version));
    extensions.insert(ext("log-complete"), json!(card.log_complete));
    if let Some(b) = &card.benchmark {
        extensions.insert(ext("benchmark"), json!(b));
    }
    extensions.insert(ext("metrics"), Value::Object(metrics));
    let context = json!({
        "registration": registration,
        "platform": options.platform,
        "language": options.language,
        "extensions": Value::Object(extensions),
    });

    let benchmarked = card.benchmark.is_some() || card.passed.is_some();
    let (within, bounded) = benchmark_counts(card);
    let score = (benchmarked && bounded > 0).then(|| {
        json!({
            "scaled": f64::from(within) / f64::from(bounded),
            "raw": within,
            "min": 0,
            "max": bounded,
        })
    });
    let success = benchmarked.then(|| {
        card.passed
            .unwrap_or(card.failed_metrics.is_empty() && within == bounded)
    });
    let duration = iso8601_duration(card.duration_s);
    let timestamp = iso8601_utc(card.started_unix_s);

    let statement = |verb_id: &str, verb_word: &str, with_success: bool| {
        let mut result = Map::new();
        if let Some(s) = &score {
            result.insert("score".into(), s.clone());
        }
        if with_success {
            if let Some(s) = success {
                result.insert("success".into(), json!(s));
            }
        }
        result.insert("completion".into(), json!(card.log_complete));
        result.insert("duration".into(), json!(duration));
        json!({
            "id": name_uuid(&["haptwin-statement", &registration, verb_id]),
            "actor": agent,
            "verb": { "id": verb_id, "display": lang(verb_word.to_string()) },
            "object": object,
            "result": Value::Object(result),
            "context": context,
            "timestamp": timestamp,
        })
    };

    let mut statements = Vec::with_capacity(2);
    if card.log_complete {
        statements.push(statement(VERB_COMPLETED, "completed", false));
    } else {
        statements.push(statement(VERB_ATTEMPTED, "attempted", false));
    }
    match success {
        Some(true) => statements.push(statement(VERB_PASSED, "passed", true)),
        Some(false) => statements.push(statement(VERB_FAILED, "failed", true)),
        None => {}
    }
    Value::Array(statements)
}

fn agent_json(actor: &XapiActor, options: &XapiOptions) -> Value {
    let mut a = Map::new();
    a.insert("objectType".into(), json!("Agent"));
    if !actor.name.is_empty() {
        a.insert("name".into(), json!(actor.name));
    }
    match (&actor.account, &actor.mbox) {
        (Some((home_page, name)), _) => {
            a.insert(
                "account".into(),
                json!({ "homePage": home_page, "name": name }),
            );
        }
        (None, Some(mbox)) => {
            let mbox = if mbox.starts_with("mailto:") {
                mbox.clone()
            } else {
                format!("mailto:{mbox}")
            };
            a.insert("mbox".into(), json!(mbox));
        }
        (None, None) => {
            a.insert(
                "account".into(),
                json!({ "homePage": options.activity_base, "name": actor.name }),
            );
        }
    }
    Value::Object(a)
}

/// Writes the statements of [`xapi_statements_with`] to `path` as pretty JSON.
pub fn write_xapi(
    card: &ScoreCard,
    actor: &XapiActor,
    session_id: &str,
    options: &XapiOptions,
    path: &Path,
) -> Result<(), ExportError> {
    let statements = xapi_statements_with(card, actor, session_id, options);
    let mut text = serde_json::to_string_pretty(&statements).map_err(|e| ExportError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    write_file(path, text.as_bytes())
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for an IRI path segment).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A name-based UUID of `parts` (joined with NUL): the first 16 bytes of their SHA-256 with the
/// RFC 4122 variant and version 5 stamped on ("v5-like": real version 5 hashes with SHA-1), in
/// lower-case `8-4-4-4-12` form. Deterministic.
pub fn name_uuid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(p.as_bytes());
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    format_uuid(b, 5)
}

/// A fresh random (version 4) UUID from the operating system's random source.
pub fn random_uuid_v4() -> Result<String, ExportError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| ExportError::Random(e.to_string()))?;
    Ok(format_uuid(b, 4))
}

fn format_uuid(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// Whether `s` is a UUID in `8-4-4-4-12` hexadecimal form (any case, any version).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian calendar).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift to an era-based count starting 0000-03-01, so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of (March-based) year, 0..365
    let mp = (5 * doy + 2) / 153; // March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds since the Unix epoch as an ISO 8601 UTC timestamp, `YYYY-MM-DDThh:mm:ssZ`.
pub fn iso8601_utc(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Seconds as an ISO 8601 duration to the millisecond, hours and minutes split off and
/// trailing zeros dropped: `PT12.345S`, `PT1M2.5S`, `PT2H0M0S`, `PT0S`. Negative or non-finite
/// durations are written as `PT0S`.
pub fn iso8601_duration(seconds: f64) -> String {
    let ms = if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round().min(u64::MAX as f64) as u64
    } else {
        0
    };
    let h = ms / 3_600_000;
    let m = ms / 60_000 % 60;
    let s = ms / 1000 % 60;
    let frac = ms % 1000;
    let mut out = String::from("PT");
    if h > 0 {
        let _ = write!(out, "{h}H");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}M");
    }
    if frac == 0 {
        let _ = write!(out, "{s}S");
    } else {
        let f = format!("{frac:03}");
        let _ = write!(out, "{s}.{}S", f.trim_end_matches('0'));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Learning Record Store
// ---------------------------------------------------------------------------------------------

/// Where and how to post statements. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct LrsConfig {
    /// The LRS's xAPI endpoint (`https://lrs.example.org/xapi`); `/statements` is appended.
    pub endpoint: String,
    /// The Basic-auth user name (the LRS key).
    pub username: Option<String>,
    /// The Basic-auth password (the LRS secret).
    pub password: Option<String>,
    /// How long the whole request may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for LrsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LrsConfig")
            .field("endpoint", &self.endpoint)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl LrsConfig {
    /// The LRS from [`ENV_LRS_URL`], [`ENV_LRS_KEY`] and [`ENV_LRS_SECRET`]; `None` when the URL
    /// is unset or empty. The timeout is [`DEFAULT_LRS_TIMEOUT`].
    pub fn from_env() -> Option<LrsConfig> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`LrsConfig::from_env`], reading variables through `get` (for tests and config
    /// layers). Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<LrsConfig> {
        let non_empty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        Some(LrsConfig {
            endpoint: non_empty(ENV_LRS_URL)?.trim().to_string(),
            username: non_empty(ENV_LRS_KEY),
            password: non_empty(ENV_LRS_SECRET),
            timeout: DEFAULT_LRS_TIMEOUT,
        })
    }

    /// The statements resource: the endpoint without trailing slashes, then `/statements`.
    pub fn statements_url(&self) -> String {
        format!("{}/statements", self.endpoint.trim_end_matches('/'))
    }

    /// The `Authorization` header's value, when a key or secret is set.
    fn basic_auth(&self) -> Option<String> {
        if self.username.is_none() && self.password.is_none() {
            return None;
        }
        let creds = format!(
            "{}:{}",
            self.username.as_deref().unwrap_or(""),
            self.password.as_deref().unwrap_or("")
        );
        Some(format!(
            "Basic {}",
            super::report::base64_encode(creds.as_bytes())
        ))
    }
}

/// POSTs `statements` (one statement or an array) to the LRS and returns the statement ids it
/// answers with (see the module docs).
///
/// Errors: [`ExportError::LrsConnection`] when the LRS cannot be reached (naming the URL);
/// [`ExportError::LrsStatus`] for a non-2xx answer, with its status and the first 500
/// characters of its body; [`ExportError::LrsResponse`] when a 2xx answer is not a JSON array
/// of strings.
pub fn post_statements(lrs: &LrsConfig, statements: &Value) -> Result<Vec<String>, ExportError> {
    let url = lrs.statements_url();
    let connection = |reason: String| ExportError::LrsConnection {
        endpoint: url.clone(),
        reason,
    };
    let body = serde_json::to_vec(statements).map_err(|e| connection(e.to_string()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(lrs.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut request = agent
        .post(&url)
        .header("X-Experience-API-Version", XAPI_VERSION)
        .header("Content-Type", "application/json");
    if let Some(auth) = lrs.basic_auth() {
        request = request.header("Authorization", auth);
    }
    let mut response = request
        .send(&body[..])
        .map_err(|e| connection(e.to_string()))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| connection(format!("reading the answer: {e}")));
    if !(200..300).contains(&status) {
        let text = text.unwrap_or_default();
        return Err(ExportError::LrsStatus {
            endpoint: url.clone(),
            status,
            body: text.chars().take(500).collect(),
        });
    }
    let text = text?;
    let bad = |what: String| ExportError::LrsResponse {
        endpoint: url.clone(),
        what,
    };
    let answer: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e})")))?;
    let Value::Array(ids) = answer else {
        return Err(bad("not a JSON array of statement ids".into()));
    };
    ids.into_iter()
        .map(|id| match id {
            Value::String(s) => Ok(s),
            other => Err(bad(format!("a statement id is not a string: {other}"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_known_dates() {
        // Checked with `date -u -d @N`.
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601_utc(1_798_675_200), "2026-12-31T00:00:00Z");
        assert_eq!(iso8601_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(iso8601_utc(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(iso8601_utc(68_169_600), "1972-02-29T00:00:00Z");
    }

    #[test]
    fn every_day_of_four_centuries_is_consecutive() {
        // Walk day by day from 1970 to 2370 and check the calendar never skips or repeats.
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        for days in 0..(400 * 365 + 97) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn durations_are_iso8601() {
        assert_eq!(iso8601_duration(12.345), "PT12.345S");
        assert_eq!(iso8601_duration(0.0), "PT0S");
        assert_eq!(iso8601_duration(-3.0), "PT0S");
        assert_eq!(iso8601_duration(f64::NAN), "PT0S");
        assert_eq!(iso8601_duration(62.5), "PT1M2.5S");
        assert_eq!(iso8601_duration(7200.0), "PT2H0M0S");
        assert_eq!(iso8601_duration(3723.04), "PT1H2M3.04S");
        // Rounds to the millisecond without printing 60 seconds.
        assert_eq!(iso8601_duration(59.9999), "PT1M0S");
    }

    #[test]
    fn uuids_are_well_formed() {
        let a = name_uuid(&["x", "y"]);
        assert!(is_uuid(&a));
        assert_eq!(a, name_uuid(&["x", "y"]));
        assert_ne!(a, name_uuid(&["xy"]));
        assert_eq!(&a[14..15], "5");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        let r = random_uuid_v4().unwrap();
        assert!(is_uuid(&r));
        assert_eq!(&r[14..15], "4");
        assert!(!is_uuid("not-a-uuid"));
    }

    #[test]
    fn values_have_no_negative_zero() {
        let mut row = String::new();
        push_value(&mut row, -0.0);
        push_value(&mut row, -0.0000001);
        push_value(&mut row, -0.25);
        assert_eq!(row, "0.000000 0.000000 -0.250000");
    }

    #[test]
    fn scenario_names_are_percent_encoded() {
        assert_eq!(percent_encode("demo-palpation"), "demo-palpation");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn lrs_config_reads_its_variables_and_hides_the_secret() {
        let vars = |name: &str| match name {
            ENV_LRS_URL => Some("http://lrs.test/xapi/".to_string()),
            ENV_LRS_KEY => Some("key".to_string()),
            ENV_LRS_SECRET => Some("s3cret".to_string()),
            _ => None,
        };
        let c = LrsConfig::from_lookup(vars).unwrap();
        assert_eq!(c.statements_url(), "http://lrs.test/xapi/statements");
        assert_eq!(c.basic_auth().as_deref(), Some("Basic a2V5OnMzY3JldA=="));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(LrsConfig::from_lookup(|_| None).is_none());
        assert!(LrsConfig::from_lookup(|n| (n == ENV_LRS_URL).then(String::new)).is_none());
    }
}
