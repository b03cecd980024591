//! The session log format (version 1), its encoder and its reader.
//!
//! Layout, all integers little-endian:
//!
//! ```text
//! file    := "HAPTWLOG" version:u16 reserved:u16 header_len:u32 header:JSON crc32(header):u32 chunk*
//! chunk   := tag:[u8;4] count:u32 payload_len:u32 crc32(tag count payload_len payload):u32 payload
//! "CLCK"  := JSON {tick0_unix_ns, period_ns}, count 0; at most one, before the first "TICK"
//! "TICK"  := count tick records of RECORD_SIZE bytes each
//! "END!"  := JSON {records, dropped, stop_reason}; present only when the session closed cleanly
//! record  := tick:u64 device_pos:3xf64 buttons:u32 tool_pos:3xf64 contact_force:3xf64
//!            force_out:3xf64 lateness_ns:u32 work_ns:u32 flags:u32
//! ```
//!
//! Floats are stored as their exact bits, so a replay can compare forces bit for bit.
//!
//! The clock chunk ([`LogClock`]) ties ticks to the wall clock: `tick0_unix_ns` is the
//! `CLOCK_REALTIME` instant (nanoseconds since the Unix epoch) of tick 0's deadline. Tick `k`
//! started at `tick0_unix_ns + k * period_ns + lateness_ns(k)`, plus the `lateness_ns` of every
//! earlier tick flagged `OVERRUN` (an overrun re-anchors the haptic loop's schedule on the
//! present; see [`LogClock::tick_start_unix_ns`]). Logs without it (older writers, sessions
//! without a haptic loop) still read; `SessionLog::clock` is then `None`.
//!
//! # Reading contract
//! [`SessionLog::parse`] refuses a file whose magic, version or header is wrong with a
//! [`LogError`] naming the file. Otherwise it returns every record of every intact chunk up to
//! the first one that is truncated, fails its checksum, has an implausible length or an unknown
//! tag; [`SessionLog::damage`] then says at which byte and why, and
//! [`SessionLog::recovery_text`] says in one sentence what was recovered.
//!
//! # Durability
//! The recorder writes each chunk with one `write(2)` as soon as it is complete, so a killed
//! process (`kill -9`, a crash) leaves every chunk written so far in the kernel's page cache,
//! which reaches the disk without the process. Only a power loss or kernel crash can lose
//! more: the file is `fsync`ed when the session closes, not per chunk.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::bus::TickRecord;

/// File magic.
pub const MAGIC: &[u8; 8] = b"HAPTWLOG";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Bytes per encoded tick record.
pub const RECORD_SIZE: usize = 8 + 24 + 4 + 24 + 24 + 24 + 4 + 4 + 4;
/// Tag of a chunk of tick records.
pub const TAG_TICKS: &[u8; 4] = b"TICK";
/// Tag of the closing chunk.
pub const TAG_END: &[u8; 4] = b"END!";
/// Tag of the clock chunk.
pub const TAG_CLOCK: &[u8; 4] = b"CLCK";
const CHUNK_HEADER: usize = 16;
/// Largest payload a reader accepts in one chunk (guards against a corrupt length).
pub const MAX_CHUNK_PAYLOAD: usize = 64 << 20;

/// What a session log says about itself. No patient identity goes here.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogHeader {
    /// haptwin version that wrote the log.
    pub software_version: String,
    /// Scenario name (`"palpation"`; a built-in scenario or a scenario file's `name`).
    pub scenario: String,
    /// Case id (a pseudonym; the built-in phantom is `"phantom-block"`).
    pub case_id: String,
    /// Device name.
    pub device: String,
    /// Tick period, seconds.
    pub dt_s: f64,
    /// Tissue description (particles, tets, material).
    pub tissue: serde_json::Value,
    /// Tool radius, metres.
    pub tool_radius_m: f64,
    /// How device input became the tool and the force went back: calibration (device to world),
    /// stall window, force smoothing, the device's force and force-rate limits.
    #[serde(default)]
    pub coupling: serde_json::Value,
    /// Random seed of the session (the demo is fully scripted: 0).
    pub seed: u64,
    /// Seconds since the Unix epoch when the session started.
    pub started_unix_s: u64,
    /// How to rebuild the tissue for a replay: `phantom`, `block` or the twin file's path.
    #[serde(default)]
    pub case: String,
    /// Tet budget the phantom was meshed to.
    #[serde(default)]
    pub tets: usize,
    /// The instrument in the hand (`None` in logs from before instruments: a probe).
    #[serde(default)]
    pub instrument: Option<crate::haptics::instrument::InstrumentConfig>,
    /// SHA-256 of the device calibration and coupling above (hex), so sessions on the same
    /// set-up can be told apart from sessions on a changed one.
    #[serde(default)]
    pub calibration_digest: String,
}

impl LogHeader {
    /// SHA-256 (hex) of the coupling and calibration JSON.
    pub fn digest_of(coupling: &serde_json::Value) -> String {
        use sha2::Digest;
        let bytes = serde_json::to_vec(coupling).unwrap_or_default();
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The closing summary of a cleanly ended session.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogEnd {
    /// Tick records written.
    pub records: u64,
    /// Records the haptic thread could not hand over (full queue).
    pub dropped: u64,
    /// Why the session ended.
    pub stop_reason: String,
}

/// When tick 0 was due on the wall clock, and the tick period (the `CLCK` chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogClock {
    /// `CLOCK_REALTIME` nanoseconds since the Unix epoch of tick 0's deadline.
    pub tick0_unix_ns: u64,
    /// Tick period, nanoseconds.
    pub period_ns: u64,
}

impl LogClock {
    /// The wall-clock instant (nanoseconds since the Unix epoch) at which each of `records`
    /// started, in order. `records` must run consecutively from tick 0 (as a log without
    /// dropped records does): a deadline after an `OVERRUN` tick moves by that tick's lateness,
    /// so a missing overrun record would make the later instants early. Returns `None` when
    /// the records are not consecutive from tick 0.
    pub fn tick_start_unix_ns(&self, records: &[TickRecord]) -> Option<Vec<u64>> {
        let mut shift = 0u64;
        let mut out = Vec::with_capacity(records.len());
        for (k, r) in records.iter().enumerate() {
            if r.tick != k as u64 {
                return None;
            }
            let due = self.tick0_unix_ns + k as u64 * self.period_ns + shift;
            out.push(due + u64::from(r.lateness_ns));
            if r.flags & crate::bus::tick_flags::OVERRUN != 0 {
                shift += u64::from(r.lateness_ns);
            }
        }
        Some(out)
    }
}

/// Errors reading or writing a session log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The file could not be opened, read or written.
    #[error("session log {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Not a haptwin session log.
    #[error("{path} is not a haptwin session log (bad magic)")]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// Written by a format version this build cannot read.
    #[error("session log {path} has format version {found}; this build reads version {VERSION}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u16,
    },
    /// The header is truncated, fails its checksum or is not valid JSON.
    #[error("session log {path}: header is damaged ({what})")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// Appends one record's bytes to `out`. Never allocates if `out` has room.
pub fn encode_record(r: &TickRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&r.tick.to_le_bytes());
    for v in r.device_pos_in_world_m {
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    out.extend_from_slice(&r.device_buttons.to_le_bytes());
    for v in r
        .tool_pos_in_world_m
        .iter()
        .chain(&r.contact_force_in_world_n)
        .chain(&r.force_out_in_world_n)
    {
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    out.extend_from_slice(&r.lateness_ns.to_le_bytes());
    out.extend_from_slice(&r.work_ns.to_le_bytes());
    out.extend_from_slice(&r.flags.to_le_bytes());
}

/// Decodes one record from exactly [`RECORD_SIZE`] bytes.
pub fn decode_record(b: &[u8]) -> TickRecord {
    assert_eq!(b.len(), RECORD_SIZE);
    let mut at = 0;
    let mut u64_ = || {
        let v = u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        at += 8;
        v
    };
    let tick = u64_();
    let dev = [0; 3].map(|_: u8| f64::from_bits(u64_()));
    let buttons = u32::from_le_bytes(b[32..36].try_into().unwrap());
    let mut at = 36;
    let mut f = || {
        let v = f64::from_bits(u64::from_le_bytes(b[at..at + 8].try_into().unwrap()));
        at += 8;
        v
    };
    let tool = [f(), f(), f()];
    let contact = [f(), f(), f()];
    let out = [f(), f(), f()];
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    TickRecord {
        tick,
        device_pos_in_world_m: dev,
        device_buttons: buttons,
        tool_pos_in_world_m: tool,
        contact_force_in_world_n: contact,
        force_out_in_world_n: out,
        lateness_ns: u32_at(108),
        work_ns: u32_at(112),
        flags: u32_at(116),
    }
}

/// Writes the file header.
pub fn write_header(w: &mut impl Write, header: &LogHeader) -> io::Result<()> {
    let json = serde_json::to_vec(header).map_err(io::Error::other)?;
    w.write_all(MAGIC)?;
    w.write_all(&VERSION.to_le_bytes())?;
    w.write_all(&0u16.to_le_bytes())?;
    w.write_all(&(json.len() as u32).to_le_bytes())?;
    w.write_all(&json)?;
    w.write_all(&crc32fast::hash(&json).to_le_bytes())
}

/// The checksum of a chunk: its tag, count and length, then its payload, so a flipped bit
/// anywhere in a chunk is caught.
fn chunk_crc(head12: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head12);
    h.update(payload);
    h.finalize()
}

/// Writes one chunk.
pub fn write_chunk(
    w: &mut impl Write,
    tag: &[u8; 4],
    count: u32,
    payload: &[u8],
) -> io::Result<()> {
    let mut head = [0u8; CHUNK_HEADER];
    head[..4].copy_from_slice(tag);
    head[4..8].copy_from_slice(&count.to_le_bytes());
    head[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = chunk_crc(&head[..12], payload);
    head[12..16].copy_from_slice(&crc.to_le_bytes());
    w.write_all(&head)?;
    w.write_all(payload)
}

/// Where and why reading stopped early.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Damage {
    /// Byte offset of the first chunk that could not be read.
    pub offset: u64,
    /// What was wrong with it.
    pub reason: String,
    /// The file ends inside this chunk (or its header): what a crash or a cut copy leaves,
    /// as opposed to a corrupt chunk followed by more bytes.
    pub truncated: bool,
}

/// A session log read back.
#[derive(Debug, Clone)]
pub struct SessionLog {
    /// The header.
    pub header: LogHeader,
    /// Every tick record recovered, in order.
    pub records: Vec<TickRecord>,
    /// The closing summary, if the session closed cleanly.
    pub end: Option<LogEnd>,
    /// Set when the log is truncated or damaged: everything before `offset` was recovered.
    pub damage: Option<Damage>,
    /// When tick 0 was due on the wall clock (the `CLCK` chunk), if the log has one.
    pub clock: Option<LogClock>,
    /// Intact chunks read (every kind).
    pub chunks: usize,
    /// Length of the file, bytes.
    pub file_len: u64,
}

impl SessionLog {
    /// Reads a log, recovering every intact chunk of a truncated or damaged file.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let io_err = |source| LogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io_err)?;
        Self::parse(path, &bytes)
    }

    /// Parses a log held in memory (`path` names it in errors).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, LogError> {
        let bad_header = |what: &str| LogError::BadHeader {
            path: path.to_path_buf(),
            what: what.to_string(),
        };
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(LogError::BadMagic {
                path: path.to_path_buf(),
            });
        }
        if bytes.len() < 16 {
            return Err(bad_header("file ends inside the header"));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != VERSION {
            return Err(LogError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
            });
        }
        let hlen = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let hend = 16usize.saturating_add(hlen);
        if bytes.len() < hend + 4 {
            return Err(bad_header("file ends inside the header"));
        }
        let json = &bytes[16..hend];
        let crc = u32::from_le_bytes(bytes[hend..hend + 4].try_into().unwrap());
        if crc32fast::hash(json) != crc {
            return Err(bad_header("checksum mismatch"));
        }
        let header: LogHeader =
            serde_json::from_slice(json).map_err(|e| bad_header(&e.to_string()))?;

        let mut at = hend + 4;
        let mut records = Vec::new();
        let mut end = None;
        let mut damage = None;
        let mut clock = None;
        let mut chunks = 0;
        while at < bytes.len() {
            let fail = |reason: String| {
                Some(Damage {
                    offset: at as u64,
                    reason,
                    truncated: false,
                })
            };
            let cut = |reason: String| {
                Some(Damage {
                    offset: at as u64,
                    reason,
                    truncated: true,
                })
            };
            if bytes.len() - at < CHUNK_HEADER {
                damage = cut(format!(
                    "truncated chunk header ({} of {CHUNK_HEADER} bytes)",
                    bytes.len() - at
                ));
                break;
            }
            let tag: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
            let count = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap());
            if len > MAX_CHUNK_PAYLOAD {
                damage = fail(format!("chunk length {len} is implausible"));
                break;
            }
            let start = at + CHUNK_HEADER;
            if bytes.len() - start < len {
                damage = cut(format!(
                    "truncated chunk ({} of {len} payload bytes)",
                    bytes.len() - start
                ));
                break;
            }
            let payload = &bytes[start..start + len];
            if chunk_crc(&bytes[at..at + 12], payload) != crc {
                damage = fail("chunk checksum mismatch".into());
                break;
            }
            match &tag {
                TAG_TICKS => {
                    if len != count * RECORD_SIZE {
                        damage = fail(format!("chunk says {count} records but holds {len} bytes"));
                        break;
                    }
                    records.extend(payload.chunks_exact(RECORD_SIZE).map(decode_record));
                }
                TAG_END => match serde_json::from_slice(payload) {
                    Ok(e) => end = Some(e),
                    Err(e) => {
                        damage = fail(format!("end chunk is not valid JSON: {e}"));
                        break;
                    }
                },
                // The writer puts at most one before the first records; a reader keeps the
                // first it meets.
                TAG_CLOCK => match serde_json::from_slice::<LogClock>(payload) {
                    Ok(c) => {
                        clock.get_or_insert(c);
                    }
                    Err(e) => {
                        damage = fail(format!("clock chunk is not valid JSON: {e}"));
                        break;
                    }
                },
                other => {
                    damage = fail(format!(
                        "unknown chunk tag {:?}",
                        String::from_utf8_lossy(other)
                    ));
                    break;
                }
            }
            chunks += 1;
            at = start + len;
        }
        Ok(Self {
            header,
            records,
            end,
            damage,
            clock,
            chunks,
            file_len: bytes.len() as u64,
        })
    }

    /// One sentence saying what was recovered and how the log ends, e.g. "recovered 1,234
    /// ticks (0 to 1,233, 1.234 s) from 58 chunks; the log ends inside a chunk at byte 150,296
    /// of 150,396 (truncated chunk (84 of 2,400 payload bytes)): the session did not close".
    pub fn recovery_text(&self) -> String {
        let n = self.records.len() as u64;
        let mut s = format!(
            "recovered {} tick{}",
            thousands(n),
            if n == 1 { "" } else { "s" }
        );
        if let (Some(a), Some(b)) = (self.records.first(), self.records.last()) {
            let span = b.tick.saturating_sub(a.tick) + 1;
            s += &format!(
                " ({} to {}, {:.3} s)",
                thousands(a.tick),
                thousands(b.tick),
                span as f64 * self.header.dt_s
            );
        }
        s += &format!(
            " from {} chunk{}",
            thousands(self.chunks as u64),
            if self.chunks == 1 { "" } else { "s" }
        );
        match (&self.damage, &self.end) {
            (Some(d), _) if d.truncated => {
                s += &format!(
                    "; the log ends inside a chunk at byte {} of {} ({}): the session did not \
                     close, everything before that chunk was kept",
                    thousands(d.offset),
                    thousands(self.file_len),
                    d.reason
                )
            }
            (Some(d), _) => {
                s += &format!(
                    "; damaged chunk at byte {} of {} ({}): it and the {} bytes after it \
                     were not read",
                    thousands(d.offset),
                    thousands(self.file_len),
                    d.reason,
                    thousands(self.file_len.saturating_sub(d.offset))
                )
            }
            (None, Some(e)) => s += &format!("; closed cleanly ({})", e.stop_reason),
            (None, None) => {
                s += "; the log ends after a whole chunk with no end chunk: the session did not \
                      close"
            }
        }
        s
    }
}

/// `n` with a comma every three digits.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A human-sized summary of a session log (`haptwin log`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogSummary {
    /// The header.
    pub header: LogHeader,
    /// Tick records recovered.
    pub records: u64,
    /// First and last tick recovered.
    pub first_tick: Option<u64>,
    /// Last tick recovered.
    pub last_tick: Option<u64>,
    /// Simulated seconds covered.
    pub seconds: f64,
    /// Ticks missing inside the recovered range.
    pub missing_ticks: u64,
    /// Largest force written to the device, newtons.
    pub peak_force_n: f64,
    /// Force on the last recovered tick, newtons.
    pub final_force_n: Option<[f64; 3]>,
    /// Ticks carrying each flag.
    pub flag_counts: serde_json::Value,
    /// Safety events, in order: each fault as it began (what, and the force written on that
    /// tick) and when the force path was clear again. At most [`MAX_EVENTS`].
    pub events: Vec<LogEvent>,
    /// Events beyond [`MAX_EVENTS`], counted but not listed.
    pub events_not_listed: u64,
    /// The closing summary, when the session closed cleanly.
    pub end: Option<LogEnd>,
    /// Where reading stopped early, when the log is damaged.
    pub damage: Option<Damage>,
    /// What was recovered, in one sentence ([`SessionLog::recovery_text`]).
    pub recovery: String,
    /// When tick 0 was due on the wall clock, if the log says.
    pub clock: Option<LogClock>,
    /// Motion and force metrics of the recovered records (`crate::score::metrics`), against
    /// the default tissue-safe force.
    pub metrics: crate::score::metrics::MotionForceMetrics,
}

/// Events listed in a summary at most.
pub const MAX_EVENTS: usize = 200;

/// A safety event read from the log's tick flags.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogEvent {
    /// Tick at which it happened.
    pub tick: u64,
    /// What happened, in words.
    pub what: &'static str,
    /// Magnitude of the force written on that tick, newtons (zero for every fault).
    pub force_out_n: f64,
}

/// The faults a tick's flags can carry, most specific first, with their words.
const FAULT_EVENTS: [(u32, &str); 7] = {
    use crate::bus::tick_flags as tf;
    [
        (tf::DEVICE_DISCONNECTED, "device disconnected: force zeroed"),
        (
            tf::DEVICE_BAD_REPORT,
            "device sent a bad report (garbage, wrong length or impossible jump): force zeroed",
        ),
        (tf::DEVICE_IO_ERROR, "device I/O error: force zeroed"),
        (
            tf::STALLED,
            "device stalled (no fresh input within the stall window): force zeroed",
        ),
        (
            tf::SOLVER_FAULT,
            "tissue solver produced a non-finite state (rolled back): force zeroed",
        ),
        (tf::EMERGENCY_STOP, "emergency stop: force zeroed"),
        (tf::NON_FINITE, "non-finite force: force zeroed"),
    ]
};

/// The safety events of a run of records (see [`LogSummary::events`]): every fault flag as it
/// rises, and "clear" when no fault flag is left.
pub fn safety_events(records: &[TickRecord]) -> (Vec<LogEvent>, u64) {
    use crate::bus::tick_flags as tf;
    let fault_mask = FAULT_EVENTS
        .iter()
        .fold(tf::DEVICE_FAULT, |m, (b, _)| m | b);
    let mut events = Vec::new();
    let mut not_listed = 0u64;
    let mut prev = 0u32;
    for r in records {
        let now = r.flags & fault_mask;
        let force_out_n = r
            .force_out_in_world_n
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt();
        let mut push = |what| {
            if events.len() < MAX_EVENTS {
                events.push(LogEvent {
                    tick: r.tick,
                    what,
                    force_out_n,
                });
            } else {
                not_listed += 1;
            }
        };
        let rising = now & !prev;
        let mut named = false;
        for (bit, what) in FAULT_EVENTS {
            // A non-finite force from a named cause (solver, bad report) is not listed twice.
            if rising & bit != 0 && !(bit == tf::NON_FINITE && named) {
                push(what);
                named = true;
            }
        }
        if !named && rising & tf::DEVICE_FAULT != 0 {
            push("device fault: force zeroed");
        }
        if now == 0 && prev != 0 {
            push("clear: force path back to normal");
        }
        prev = now;
    }
    (events, not_listed)
}

/// Summarises a log.
pub fn summarize(log: &SessionLog) -> LogSummary {
    use crate::bus::tick_flags as tf;
    let names = [
        ("clamped", tf::CLAMPED),
        ("rate_limited", tf::RATE_LIMITED),
        ("non_finite", tf::NON_FINITE),
        ("stalled", tf::STALLED),
        ("device_fault", tf::DEVICE_FAULT),
        ("stopping", tf::STOPPING),
        ("overrun", tf::OVERRUN),
        ("no_input", tf::NO_INPUT),
        ("device_disconnected", tf::DEVICE_DISCONNECTED),
        ("device_bad_report", tf::DEVICE_BAD_REPORT),
        ("device_io_error", tf::DEVICE_IO_ERROR),
        ("emergency_stop", tf::EMERGENCY_STOP),
        ("solver_fault", tf::SOLVER_FAULT),
        ("instrument_active", tf::INSTRUMENT_ACTIVE),
        ("cut", tf::CUT),
        ("grasp", tf::GRASP),
        ("release", tf::RELEASE),
        ("puncture", tf::PUNCTURE),
        ("mark", tf::MARK),
        ("no_go_contact", tf::NO_GO_CONTACT),
        ("contact", tf::CONTACT),
    ];
    let (events, events_not_listed) = safety_events(&log.records);
    let mut counts = serde_json::Map::new();
    for (name, bit) in names {
        let n = log.records.iter().filter(|r| r.flags & bit != 0).count();
        counts.insert(name.into(), n.into());
    }
    let first = log.records.first().map(|r| r.tick);
    let last = log.records.last().map(|r| r.tick);
    let span = match (first, last) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 0,
    };
    LogSummary {
        header: log.header.clone(),
        records: log.records.len() as u64,
        first_tick: first,
        last_tick: last,
        seconds: span as f64 * log.header.dt_s,
        missing_ticks: span.saturating_sub(log.records.len() as u64),
        peak_force_n: log
            .records
            .iter()
            .map(|r| {
                r.force_out_in_world_n
                    .iter()
                    .map(|v| v * v)
                    .sum::<f64>()
                    .sqrt()
            })
            .fold(0.0, f64::max),
        final_force_n: log.records.last().map(|r| r.force_out_in_world_n),
        flag_counts: counts.into(),
        events,
        events_not_listed,
        end: log.end.clone(),
        damage: log.damage.clone(),
        recovery: log.recovery_text(),
        clock: log.clock,
        metrics: crate::score::metrics::motion_force_metrics(
            &log.records,
            log.header.dt_s,
            crate::score::metrics::DEFAULT_SAFE_FORCE_N,
        ),
    }
}

impl LogSummary {
    /// A few lines of text for a terminal.
    pub fn to_text(&self, path: &Path) -> String {
        let mut s = format!(
            "{}: scenario {}, case {}, device {}, haptwin {}\n",
            path.display(),
            self.header.scenario,
            self.header.case_id,
            self.header.device,
            self.header.software_version
        );
        s += &format!(
            "  {} tick records ({:.3} s simulated, {} missing), peak force {:.3} N, final force {:?} N\n",
            self.records,
            self.seconds,
            self.missing_ticks,
            self.peak_force_n,
            self.final_force_n.unwrap_or_default()
        );
        s += &format!("  flags: {}\n", self.flag_counts);
        let m = &self.metrics;
        s += &format!(
            "  motion: path {:.1} mm, {} movements, idle {:.2} s, LDLJ {}; force: RMS {:.3} N, \
             integral {:.3} N s, mean rate {:.1} N/s, {:.3} s above {:.1} N\n",
            m.path_length_m * 1e3,
            m.movements,
            m.idle_s,
            m.ldlj.map_or("-".into(), |v| format!("{v:.2}")),
            m.rms_force_n,
            m.force_integral_ns,
            m.mean_force_rate_n_per_s,
            m.time_above_safe_s,
            m.safe_force_n
        );
        for e in &self.events {
            s += &format!(
                "  event at tick {}: {} (force out {:.3} N)\n",
                e.tick, e.what, e.force_out_n
            );
        }
        if self.events_not_listed > 0 {
            s += &format!("  ... and {} more events\n", self.events_not_listed);
        }
        s += &format!("  {}\n", self.recovery);
        match (&self.end, &self.damage) {
            (_, Some(d)) => {
                s += &format!(
                    "  DAMAGED at byte {}: {}; everything before it was recovered",
                    d.offset, d.reason
                )
            }
            (Some(e), None) => s += &format!("  closed cleanly: {}", e.stop_reason),
            (None, None) => s += "  not closed (the session did not end cleanly), no damage found",
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> TickRecord {
        TickRecord {
            tick: i,
            device_pos_in_world_m: [0.1, -0.2, i as f64],
            device_buttons: 3,
            tool_pos_in_world_m: [1.0, 2.0, 3.0],
            contact_force_in_world_n: [0.0, f64::MIN_POSITIVE, -0.0],
            force_out_in_world_n: [0.5, 1e-300, 7.0],
            lateness_ns: 12,
            work_ns: 345,
            flags: 9,
        }
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234), "1,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn tick_start_follows_the_overrun_rule() {
        let clock = LogClock {
            tick0_unix_ns: 1_000_000_000,
            period_ns: 1_000_000,
        };
        let mut recs: Vec<_> = (0..4).map(record).collect();
        for r in &mut recs {
            r.flags = 0;
            r.lateness_ns = 10;
        }
        // Tick 1 starts 3 ms late: an overrun, so tick 2 is due 3 ms later than planned.
        recs[1].lateness_ns = 3_000_000;
        recs[1].flags = crate::bus::tick_flags::OVERRUN;
        let t = clock.tick_start_unix_ns(&recs).unwrap();
        assert_eq!(
            t,
            vec![1_000_000_010, 1_004_000_000, 1_005_000_010, 1_006_000_010]
        );
        assert!(clock.tick_start_unix_ns(&recs[1..]).is_none());
    }

    #[test]
    fn record_round_trips_bit_exact() {
        let mut buf = Vec::new();
        encode_record(&record(42), &mut buf);
        assert_eq!(buf.len(), RECORD_SIZE);
        let back = decode_record(&buf);
        assert_eq!(back, record(42));
        assert_eq!(
            back.contact_force_in_world_n[2].to_bits(),
            (-0.0f64).to_bits()
        );
    }
}
