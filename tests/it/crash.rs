//! Crash safety: the real `haptwin demo` binary is killed with `SIGKILL` at pseudo-random
//! moments (a fixed seed, so every run kills at the same delays). Every log must open (or, for a
//! kill before the header was written, fail with a clear error naming the file), must not have
//! closed, must hold consecutive ticks from 0, must lose at most 100 ms before the kill (measured
//! with the log's clock chunk, exactly), and must replay, bit for bit, up to where it ends.
//!
//! The loss figures are printed (`cargo test --release --test it crash -- --nocapture`).

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use haptwin::session::{LogError, SessionLog};

/// Kill trials.
const TRIALS: usize = 24;
/// The requirement: a kill loses at most this much of the session.
const MAX_LOSS_MS: f64 = 100.0;
/// Trials that must have had a header and records when killed.
const MIN_WITH_RECORDS: usize = 15;
/// Logs replayed (all with records).
const REPLAYS: usize = usize::MAX;

/// xorshift64*: a deterministic pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// When to kill each trial after spawning it: every sixth very early (start-up, the header),
/// the rest spread over 150 ms to 2.5 s.
fn kill_delays() -> Vec<Duration> {
    let mut rng = Rng(0x5EED_C0FF_EE15_DEAD);
    (0..TRIALS)
        .map(|i| {
            if i % 6 == 0 {
                rng.millis(5, 60)
            } else {
                rng.millis(150, 2_500)
            }
        })
        .collect()
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// One killed session.
#[derive(Debug)]
enum Outcome {
    /// Killed before the header was written: the log is missing, empty or ends inside the
    /// header, and opening it says so.
    NoHeader { why: String },
    /// The log opened with this many records (the loss only when there were records).
    Opened {
        records: usize,
        loss_ms: Option<f64>,
        log: PathBuf,
    },
}

/// Runs the demo for up to 30 s, kills it `delay` after spawning it, and checks its log.
fn kill_trial(trial: usize, delay: Duration, out: &Path) -> Outcome {
    let stderr = File::create(out.join("stderr.txt")).unwrap();
    let run_dir = out.join("run");
    let spawned = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_haptwin"))
        .env("XDG_DATA_HOME", crate::test_data_home())
        .env_remove("HAPTWIN_DB")
        .args([
            "demo",
            "--no-render",
            "--no-realtime",
            "--seconds",
            "30",
            "--out",
        ])
        .arg(&run_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    std::thread::sleep(delay.saturating_sub(spawned.elapsed()));
    assert!(
        child.try_wait().unwrap().is_none(),
        "trial {trial}: the demo ended before it was killed: {}",
        std::fs::read_to_string(out.join("stderr.txt")).unwrap_or_default()
    );
    let killed_at = SystemTime::now();
    // SAFETY: kill(2) on our own child, which has not been waited for (its pid is still ours).
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0, "trial {trial}: kill failed");
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "trial {trial}: {status}"
    );

    let path = run_dir.join("session.htlog");
    let len = std::fs::metadata(&path).map_or(None, |m| Some(m.len()));
    let log = match SessionLog::open(&path) {
        Ok(log) => log,
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains(&path.display().to_string()),
                "trial {trial}: the error must name the file: {text}"
            );
            // Only a log that never got a whole header may fail to open.
            match &e {
                LogError::Io { source, .. } if len.is_none() => {
                    assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{text}")
                }
                LogError::BadMagic { .. } => {
                    assert!(len.unwrap() < 8, "trial {trial}: {text}")
                }
                LogError::BadHeader { what, .. } => {
                    assert!(what.contains("ends inside the header"), "{text}")
                }
                _ => panic!("trial {trial}: killed log does not open: {text}"),
            }
            return Outcome::NoHeader { why: text };
        }
    };
    assert!(log.end.is_none(), "trial {trial}: a killed log has no end");
    if let Some(d) = &log.damage {
        // A kill only ever cuts the file short.
        assert!(d.truncated, "trial {trial}: {d:?}");
    }
    let records = log.records.len();
    let mut loss_ms = None;
    if records > 0 {
        let clock = log
            .clock
            .unwrap_or_else(|| panic!("trial {trial}: records but no clock chunk"));
        // Consecutive from 0 (else the clock has no answer).
        let started = clock
            .tick_start_unix_ns(&log.records)
            .unwrap_or_else(|| panic!("trial {trial}: ticks are not consecutive from 0"));
        let last = *started.last().unwrap();
        let loss = (unix_ns(killed_at) as f64 - last as f64) * 1e-6;
        assert!(
            loss > -1.0,
            "trial {trial}: the last tick started {:.3} ms after the kill",
            -loss
        );
        loss_ms = Some(loss);
    }
    eprintln!(
        "crash trial {trial:2}: killed after {:4} ms: {} -> {}",
        delay.as_millis(),
        len.map_or("no file".into(), |l| format!("{l} bytes")),
        log.recovery_text()
    );
    Outcome::Opened {
        records,
        loss_ms,
        log: path,
    }
}

/// How a replay of a log went.
#[derive(Debug)]
struct Replayed {
    ticks: u64,
    compared: u64,
    mismatches: u64,
    tool_mismatches: u64,
    first_divergence: serde_json::Value,
}

/// Replays `log` with `haptwin replay --verify` (as fast as the CPU allows): the same core
/// re-simulated from the recorded inputs, every force compared bit for bit.
fn replay(log: &Path) -> Replayed {
    let output = Command::new(env!("CARGO_BIN_EXE_haptwin"))
        .args(["replay", "--verify", "--json"])
        .arg(log)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "replay of {} failed: {}\n{}\n{}",
        log.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    Replayed {
        ticks: j["ticks"].as_u64().unwrap(),
        compared: j["compared"].as_u64().unwrap(),
        mismatches: j["mismatches"].as_u64().unwrap(),
        tool_mismatches: j["tool_mismatches"].as_u64().unwrap(),
        first_divergence: j["first_divergence"].clone(),
    }
}

#[test]
fn kill_9_at_random_moments_loses_at_most_100_ms_and_replays() {
    let dirs: Vec<_> = (0..TRIALS).map(|_| tempfile::tempdir().unwrap()).collect();
    let outcomes: Vec<_> = kill_delays()
        .into_iter()
        .enumerate()
        .map(|(i, delay)| (delay, kill_trial(i, delay, dirs[i].path())))
        .collect();

    let mut no_header = 0;
    let mut header_only = 0;
    let mut losses = Vec::new();
    let mut with_records = Vec::new();
    for (i, (delay, o)) in outcomes.iter().enumerate() {
        match o {
            Outcome::NoHeader { why } => {
                no_header += 1;
                eprintln!(
                    "crash trial {i:2}: killed after {:4} ms, before the header: {why}",
                    delay.as_millis()
                );
            }
            Outcome::Opened { records: 0, .. } => header_only += 1,
            Outcome::Opened {
                records,
                loss_ms,
                log,
            } => {
                losses.push((i, loss_ms.unwrap()));
                with_records.push((*records, log.clone()));
            }
        }
    }
    let mut sorted: Vec<f64> = losses.iter().map(|l| l.1).collect();
    sorted.sort_by(f64::total_cmp);
    eprintln!(
        "crash: {TRIALS} kills: {no_header} before the header, {header_only} with a header but \
         no records, {} with records",
        sorted.len()
    );
    if !sorted.is_empty() {
        eprintln!(
            "crash: loss per kill, ms: min {:.1}, median {:.1}, max {:.1}; all: {:?}",
            sorted[0],
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1],
            losses
                .iter()
                .map(|(i, l)| format!("#{i} {l:.1}"))
                .collect::<Vec<_>>()
        );
    }
    assert!(
        sorted.len() >= MIN_WITH_RECORDS,
        "only {} of {TRIALS} killed sessions had records",
        sorted.len()
    );
    for (i, loss) in &losses {
        assert!(
            *loss <= MAX_LOSS_MS,
            "trial {i}: the kill lost {loss:.1} ms (at most {MAX_LOSS_MS} ms allowed); all: \
             {losses:?}"
        );
    }

    // The longest logs replay to the same forces and tool positions, bit for bit, up to where
    // they end (a killed session has no stop tick: the replay re-issues only recorded stops).
    with_records.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    for (n, log) in with_records.iter().take(REPLAYS) {
        let r = replay(log);
        let n = *n as u64;
        assert_eq!(r.ticks, n, "{}: {r:?}", log.display());
        assert_eq!(r.compared, n, "{}: {r:?}", log.display());
        assert_eq!(r.mismatches, 0, "{}: {r:?}", log.display());
        assert_eq!(r.tool_mismatches, 0, "{}: {r:?}", log.display());
        eprintln!(
            "crash: replayed {n} ticks of {}: {} compared, {} mismatches (first: {})",
            log.display(),
            r.compared,
            r.mismatches,
            r.first_divergence
        );
    }
}
