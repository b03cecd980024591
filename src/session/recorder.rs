//! The recorder thread: drains the telemetry queue into the session log.
//!
//! It wakes every 2 ms, takes every waiting [`TickRecord`] and writes a checksummed chunk once
//! its oldest record is [`FLUSH_INTERVAL`] (20 ms) old or it holds [`CHUNK_RECORDS`] records.
//! Each chunk goes to the file with one `write(2)` at once (the buffered writer is flushed after
//! every chunk), so a process crash or `kill -9` loses only the records not yet in a chunk:
//! about the last 20 ms, plus the 2 ms poll and any delay in scheduling this thread; the crash
//! tests (`tests/it/crash.rs`) hold it to at most 100 ms. Surviving a kill needs no `fsync`
//! (the kernel holds the written bytes); surviving a power loss would, and the file is synced
//! only when the session closes. When told the session is over it drains the queue, writes the
//! end chunk and syncs the file.
//!
//! Given the haptic loop's start clock ([`RecorderOptions::clock`], the cell of
//! `LoopConfig::start_clock`), it writes the `CLCK` chunk as soon as the cell is set, before
//! the first `TICK` chunk, so the log says when each tick ran on the wall clock.
//!
//! It never touches the haptic thread: the haptic side only pushes into a lock-free queue and
//! stores the start clock once.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::log::{
    self, LogClock, LogEnd, LogError, LogHeader, RECORD_SIZE, TAG_CLOCK, TAG_END, TAG_TICKS,
};
use crate::bus::{QueueRx, TickRecord};

/// Records per chunk at most.
pub const CHUNK_RECORDS: usize = 200;
/// Longest time a record waits in memory before its chunk is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// How often the recorder looks at the queue.
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// The haptic loop's start clock, as the recorder reads it.
#[derive(Debug, Clone)]
pub struct StartClock {
    /// The cell the haptic loop sets to tick 0's wall-clock deadline (`LoopConfig::start_clock`;
    /// zero until set).
    pub tick0_unix_ns: Arc<AtomicU64>,
    /// Tick period, nanoseconds.
    pub period_ns: u64,
}

/// Options of [`spawn_recorder_with`].
#[derive(Debug, Clone, Default)]
pub struct RecorderOptions {
    /// Write a `CLCK` chunk from this cell once it is set (`None`: the log has no clock).
    pub clock: Option<StartClock>,
}

/// What the recorder did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecorderReport {
    /// The log file.
    pub path: PathBuf,
    /// Tick records written.
    pub records: u64,
    /// Chunks written.
    pub chunks: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Gaps in the tick sequence (records the haptic thread dropped).
    pub tick_gaps: u64,
}

/// How the recorder learns the session is over, and why.
#[derive(Debug, Clone, Default)]
pub struct RecorderControl {
    done: Arc<AtomicBool>,
    reason: Arc<std::sync::OnceLock<String>>,
}

impl RecorderControl {
    /// Tells the recorder to drain, close the log with `reason` and end.
    pub fn finish(&self, reason: &str) {
        let _ = self.reason.set(reason.to_string());
        self.done.store(true, Ordering::Release);
    }
}

/// Creates the log at `path`, writes `header`, and spawns the recorder thread (named
/// `recorder`) draining `rx` until [`RecorderControl::finish`]. The end chunk counts the records
/// the producer dropped (the queue's own drop counter). The log has no clock chunk: see
/// [`spawn_recorder_with`].
pub fn spawn_recorder(
    path: &Path,
    header: &LogHeader,
    rx: QueueRx<TickRecord>,
) -> Result<
    (
        RecorderControl,
        JoinHandle<Result<RecorderReport, LogError>>,
    ),
    LogError,
> {
    spawn_recorder_with(path, header, rx, RecorderOptions::default())
}

/// [`spawn_recorder`] with options (the start clock).
pub fn spawn_recorder_with(
    path: &Path,
    header: &LogHeader,
    rx: QueueRx<TickRecord>,
    options: RecorderOptions,
) -> Result<
    (
        RecorderControl,
        JoinHandle<Result<RecorderReport, LogError>>,
    ),
    LogError,
> {
    let io_err = |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io_err)?;
    let mut out = BufWriter::with_capacity(64 << 10, file);
    log::write_header(&mut out, header).map_err(io_err)?;
    out.flush().map_err(io_err)?;
    let control = RecorderControl::default();
    let ctl = control.clone();
    let path = path.to_path_buf();
    let handle = thread::Builder::new()
        .name("recorder".into())
        .spawn(move || record(out, rx, ctl, path, options.clock))
        .map_err(|source| LogError::Io {
            path: PathBuf::from("<recorder thread>"),
            source,
        })?;
    Ok((control, handle))
}

fn record(
    mut out: BufWriter<File>,
    mut rx: QueueRx<TickRecord>,
    ctl: RecorderControl,
    path: PathBuf,
    mut clock: Option<StartClock>,
) -> Result<RecorderReport, LogError> {
    let io_err = |source| LogError::Io {
        path: path.clone(),
        source,
    };
    let mut payload = Vec::with_capacity(CHUNK_RECORDS * RECORD_SIZE);
    let mut in_chunk = 0usize;
    let mut report = RecorderReport {
        path: path.clone(),
        records: 0,
        chunks: 0,
        bytes: 0,
        tick_gaps: 0,
    };
    let mut next_tick: Option<u64> = None;
    let mut oldest_pending: Option<Instant> = None;
    let write_chunk = |payload: &mut Vec<u8>,
                       in_chunk: &mut usize,
                       report: &mut RecorderReport,
                       out: &mut BufWriter<File>|
     -> std::io::Result<()> {
        if *in_chunk == 0 {
            return Ok(());
        }
        log::write_chunk(out, TAG_TICKS, *in_chunk as u32, payload)?;
        out.flush()?;
        report.records += *in_chunk as u64;
        report.chunks += 1;
        report.bytes += (payload.len() + 16) as u64;
        payload.clear();
        *in_chunk = 0;
        Ok(())
    };
    // Writes the clock chunk once the haptic loop has set the cell (then forgets the cell).
    // Called before every tick chunk: the cell is set before the first record is pushed.
    let write_clock = |clock: &mut Option<StartClock>,
                       report: &mut RecorderReport,
                       out: &mut BufWriter<File>|
     -> std::io::Result<()> {
        let Some(c) = clock else {
            return Ok(());
        };
        let tick0_unix_ns = c.tick0_unix_ns.load(Ordering::Acquire);
        if tick0_unix_ns == 0 {
            return Ok(());
        }
        let json = serde_json::to_vec(&LogClock {
            tick0_unix_ns,
            period_ns: c.period_ns,
        })
        .map_err(std::io::Error::other)?;
        log::write_chunk(out, TAG_CLOCK, 0, &json)?;
        out.flush()?;
        report.chunks += 1;
        report.bytes += (json.len() + 16) as u64;
        *clock = None;
        Ok(())
    };
    loop {
        let finishing = ctl.done.load(Ordering::Acquire);
        write_clock(&mut clock, &mut report, &mut out).map_err(io_err)?;
        while let Some(rec) = rx.pop() {
            if let Some(expected) = next_tick {
                if rec.tick != expected {
                    report.tick_gaps += 1;
                }
            }
            next_tick = Some(rec.tick + 1);
            log::encode_record(&rec, &mut payload);
            in_chunk += 1;
            oldest_pending.get_or_insert_with(Instant::now);
            if in_chunk == CHUNK_RECORDS {
                write_clock(&mut clock, &mut report, &mut out).map_err(io_err)?;
                write_chunk(&mut payload, &mut in_chunk, &mut report, &mut out).map_err(io_err)?;
                oldest_pending = None;
            }
        }
        if oldest_pending.is_some_and(|t| t.elapsed() >= FLUSH_INTERVAL) || finishing {
            write_clock(&mut clock, &mut report, &mut out).map_err(io_err)?;
            write_chunk(&mut payload, &mut in_chunk, &mut report, &mut out).map_err(io_err)?;
            oldest_pending = None;
        }
        if finishing && rx.is_empty() {
            break;
        }
        thread::sleep(POLL_INTERVAL);
    }
    let end = LogEnd {
        records: report.records,
        dropped: rx.dropped(),
        stop_reason: ctl
            .reason
            .get()
            .cloned()
            .unwrap_or_else(|| "finished".into()),
    };
    let json = serde_json::to_vec(&end).map_err(|e| io_err(std::io::Error::other(e)))?;
    log::write_chunk(&mut out, TAG_END, 0, &json).map_err(io_err)?;
    report.bytes += (json.len() + 16) as u64;
    out.flush().map_err(io_err)?;
    out.get_ref().sync_all().map_err(io_err)?;
    Ok(report)
}
