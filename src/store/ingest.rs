//! From a finished session's log file to a stored session: validate, score, keep.
//!
//! Owns the door between a station's log and the store. A log is checked before anything is
//! kept: it must parse (every chunk's CRC; a crashed log is accepted for what it kept), hold
//! records, name a scenario this build knows and, when a digest is expected, match it. Then it
//! is scored once by re-simulation, which also samples the replay viewer's frames (tool path at
//! 30 Hz, the tissue surface at up to 10 Hz, at most [`MAX_TISSUE_FRAMES`]), judged against the
//! store's benchmark, its plots drawn, the log copied under its digest, and the session stored.
//!
//! Privacy: the store keeps the case's pseudonym (`case_id`), never the header's `case` (which
//! for a twin is a file path and could carry a name).

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::{sha256_hex, NewSession, Store, StoreError};
use crate::bus::tick_flags;
use crate::score::{self, report};
use crate::session::replay::{replay, ReplayOptions, ReplaySetup};
use crate::session::scenario::Scenario;
use crate::session::SessionLog;

/// Most tissue frames kept for the replay viewer (long sessions are sampled more sparsely).
pub const MAX_TISSUE_FRAMES: usize = 300;
/// Tool-path samples per second for the replay viewer.
pub const TOOL_RATE_HZ: f64 = 30.0;
/// Largest tissue frame rate for the replay viewer.
pub const TISSUE_RATE_HZ: f64 = 10.0;
/// The viewer's integer unit: 0.1 mm.
const UNIT_M: f64 = 1e-4;

/// Why a log was not stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The log does not parse (a bad CRC, a bad header); nothing stored.
    #[error("{0}")]
    Log(#[from] crate::session::LogError),
    /// The log holds no tick records.
    #[error("{path}: no tick records to score")]
    Empty {
        /// The log.
        path: PathBuf,
    },
    /// The log's bytes do not match the digest announced for them.
    #[error("{path}: SHA-256 {found} does not match the announced {expected}")]
    Digest {
        /// The log.
        path: PathBuf,
        /// Announced.
        expected: String,
        /// Computed.
        found: String,
    },
    /// The log names a scenario this build does not know.
    #[error("{path}: scenario {scenario:?} is not one this haptwin knows")]
    Scenario {
        /// The log.
        path: PathBuf,
        /// Its scenario.
        scenario: String,
    },
    /// This log is already stored as another resident's session.
    #[error("{path}: this log is already stored as session {session_id}, another resident's")]
    OtherResident {
        /// The log.
        path: PathBuf,
        /// The session it is stored as.
        session_id: i64,
    },
    /// The log could not be kept on disk.
    #[error("cannot keep the log at {path}: {source}")]
    Keep {
        /// Where.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where and for whom a log is stored.
#[derive(Debug, Clone)]
pub struct IngestTarget {
    /// Whose session.
    pub resident_id: i64,
    /// The uploading station (`None`: this machine).
    pub station_id: Option<i64>,
    /// Folder for the kept logs (named by digest).
    pub logs_dir: PathBuf,
}

/// Stores the log `bytes` (read from `path`, named in errors) for `target`; the session's id.
/// `expected_sha256`, when given, must match.
pub fn ingest_bytes(
    store: &Store,
    path: &Path,
    bytes: &[u8],
    expected_sha256: Option<&str>,
    target: &IngestTarget,
) -> Result<i64, IngestError> {
    let digest = sha256_hex(bytes);
    if let Some(expected) = expected_sha256 {
        if !expected.eq_ignore_ascii_case(&digest) {
            return Err(IngestError::Digest {
                path: path.to_path_buf(),
                expected: expected.to_string(),
                found: digest,
            });
        }
    }
    // A log stored before (a station retrying) is not scored again.
    if let Some((id, resident)) = store.session_by_digest(&digest)? {
        if resident != target.resident_id {
            return Err(IngestError::OtherResident {
                path: path.to_path_buf(),
                session_id: id,
            });
        }
        return Ok(id);
    }
    let session = prepare(store, path, bytes, &digest, target)?;
    Ok(store.insert_session(&session)?)
}

/// Reads and stores the log file at `path`.
pub fn ingest_file(store: &Store, path: &Path, target: &IngestTarget) -> Result<i64, IngestError> {
    let bytes = std::fs::read(path).map_err(|source| {
        IngestError::Log(crate::session::LogError::Io {
            path: path.to_path_buf(),
            source,
        })
    })?;
    ingest_bytes(store, path, &bytes, None, target)
}

/// Validates, scores and keeps the log; the session to insert.
fn prepare(
    store: &Store,
    path: &Path,
    bytes: &[u8],
    digest: &str,
    target: &IngestTarget,
) -> Result<NewSession, IngestError> {
    let log = SessionLog::parse(path, bytes)?;
    if log.records.is_empty() {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
        });
    }
    let scenario = Scenario::find(&log.header.scenario).map_err(|_| IngestError::Scenario {
        path: path.to_path_buf(),
        scenario: log.header.scenario.clone(),
    })?;
    let (mut card, viewer, mut note) = score_with_frames(&log, &scenario);
    if log.damage.is_some() || log.end.is_none() {
        if !note.is_empty() {
            note.push(' ');
        }
        note.push_str(&format!("The log is incomplete: {}.", log.recovery_text()));
    }
    if let Some(bench) = store.benchmark(&scenario.name)? {
        bench.apply(&mut card);
    }
    let plots_html = report::plots_html(&log, &card);
    let replay_gz = viewer.map(|v| gzip(v.to_string().as_bytes()));
    let kept = keep_log(&target.logs_dir, digest, bytes)?;
    Ok(NewSession {
        resident_id: target.resident_id,
        station_id: target.station_id,
        log_path: kept,
        log_sha256: digest.to_string(),
        log_bytes: bytes.len() as u64,
        instrument: log
            .header
            .instrument
            .as_ref()
            .map_or_else(|| "probe".to_string(), |i| i.kind.name().to_string()),
        device: log.header.device.clone(),
        card,
        note,
        plots_html,
        replay_gz,
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Copies the log to `dir/<digest>.htlog` (written aside, then renamed into place).
fn keep_log(dir: &Path, digest: &str, bytes: &[u8]) -> Result<PathBuf, IngestError> {
    let path = dir.join(format!("{digest}.htlog"));
    if path.exists() {
        return Ok(path);
    }
    let err = |source| IngestError::Keep {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(".{digest}.part"));
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}

fn units(v: f64) -> i64 {
    (v / UNIT_M).round() as i64
}

/// Scores `log` by one re-simulation that also samples the viewer's frames; the card, the
/// frames (`None` when the case cannot be rebuilt) and a note on what could not be measured.
pub fn score_with_frames(
    log: &SessionLog,
    scenario: &Scenario,
) -> (score::card::ScoreCard, Option<serde_json::Value>, String) {
    let mut setup = match ReplaySetup::from_log(log) {
        Ok(s) => s,
        Err(e) => {
            return (
                score::score_motion_force(log, scenario),
                None,
                format!("Outcome not measured: the session could not be re-simulated ({e})."),
            )
        }
    };
    let dt_s = log.header.dt_s;
    let n = log.records.len();
    let duration_s = n as f64 * dt_s;
    let tissue_hz = TISSUE_RATE_HZ.min(MAX_TISSUE_FRAMES as f64 / duration_s.max(1e-9));
    let tissue_every = ((1.0 / (tissue_hz * dt_s)).round() as u64).max(1);
    let tool_every = ((1.0 / (TOOL_RATE_HZ * dt_s)).round() as u64).max(1);

    let rest: Vec<[f32; 3]> = setup
        .case
        .tissue
        .positions_m
        .iter()
        .map(|p| [p.x as f32, p.y as f32, p.z as f32])
        .collect();
    let mut subscriber = setup.take_snapshots();
    let mut tool = Vec::new();
    let mut frames = Vec::new();
    let mut surfaces: Vec<serde_json::Value> = Vec::new();
    let mut revision = None;
    let first = log.records[0].tick;
    let mut events = Vec::new();
    let report = replay(&mut setup, log, &ReplayOptions::default(), |rec, got| {
        let i = rec.tick - first;
        if i.is_multiple_of(tool_every) {
            let f = got.force_out_in_world_n;
            let f_n = (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt();
            tool.push(serde_json::json!([
                units(got.tool_pos_in_world_m[0]),
                units(got.tool_pos_in_world_m[1]),
                units(got.tool_pos_in_world_m[2]),
                (f_n * 100.0).round() / 100.0
            ]));
        }
        let ev = rec.flags
            & (tick_flags::CUT
                | tick_flags::PUNCTURE
                | tick_flags::GRASP
                | tick_flags::MARK
                | tick_flags::NO_GO_CONTACT);
        if ev != 0 && events.len() < 2000 {
            events.push(serde_json::json!([i as f64 * dt_s, ev]));
        }
        if i.is_multiple_of(tissue_every) || i as usize == n - 1 {
            subscriber.update();
            let snap = subscriber.read();
            if revision != Some(snap.surface_revision) {
                revision = Some(snap.surface_revision);
                let tris: Vec<u32> = snap.surface_triangles.iter().flatten().copied().collect();
                surfaces.push(serde_json::json!({"from_frame": frames.len(), "triangles": tris}));
            }
            let delta: Vec<i64> = snap
                .tissue_positions_m
                .iter()
                .zip(&rest)
                .flat_map(|(p, r)| [0, 1, 2].map(|k| units(f64::from(p[k]) - f64::from(r[k]))))
                .collect();
            frames.push(serde_json::json!({"t": i as f64 * dt_s, "d": delta}));
        }
    });
    let card = score::score_replayed(log, scenario, &setup, &report);
    let rest_units: Vec<i64> = rest
        .iter()
        .flat_map(|p| [0, 1, 2].map(|k| units(f64::from(p[k]))))
        .collect();
    let tumour = setup
        .geometry
        .tumour_centre_m
        .map(|c| [units(c.x), units(c.y), units(c.z)]);
    let viewer = serde_json::json!({
        "version": 1,
        "unit_m": UNIT_M,
        "duration_s": duration_s,
        "tool_rate_hz": 1.0 / (tool_every as f64 * dt_s),
        "tool_radius_m": log.header.tool_radius_m,
        "safe_force_n": scenario.safe_force_n,
        "tool": tool,
        "events": events,
        "rest": rest_units,
        "surfaces": surfaces,
        "frames": frames,
        "tumour_centre": tumour,
        "landmarks": card.landmarks.iter().map(|l| serde_json::json!({
            "what": l.what,
            "pos": l.pos_in_world_m.map(units),
        })).collect::<Vec<_>>(),
    });
    let note = if report.mismatches > 0 {
        format!(
            "The re-simulation differed from the recording in {} of {} forces (first at tick \
             {}): the outcome metrics may not match what the resident felt.",
            report.mismatches,
            report.compared,
            report.first_divergence.as_ref().map_or(0, |d| d.tick)
        )
    } else {
        String::new()
    };
    (card, Some(viewer), note)
}
