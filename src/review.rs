//! After the session: `haptwin replay`, `haptwin score`, `haptwin benchmark build`,
//! `haptwin report` and `haptwin export`, as library functions the CLI prints.
//!
//! Everything here starts from a session log on disk and re-simulates it
//! ([`crate::session::replay`]) where the tissue matters; nothing touches a device.
//!
//! Contract: a log that cannot be read is an error naming the file; a damaged or truncated log
//! is reviewed on what was recovered and says so (the card's `log_complete`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::display::{self, Display};
use crate::render::{Camera, HeadlessRenderer, RenderOptions};
use crate::render_loop::{RenderLoopConfig, SceneBuilder};
use crate::score::benchmark::{self, Benchmark, BenchmarkError, Proficiency, Readiness};
use crate::score::card::ScoreCard;
use crate::score::report::ReportSnapshot;
use crate::score::{score_log, ScoreError};
use crate::session::replay::{replay, ReplayError, ReplayOptions, ReplayReport, ReplaySetup};
use crate::session::scenario::{Scenario, ScenarioError};
use crate::session::{LogError, SessionLog};

/// Errors of the review commands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReviewError {
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The log cannot be replayed.
    #[error("cannot replay {path}: {source}")]
    Replay {
        /// The log.
        path: PathBuf,
        /// Why.
        source: ReplayError,
    },
    /// The log cannot be scored.
    #[error("cannot score {path}: {source}")]
    Score {
        /// The log.
        path: PathBuf,
        /// Why.
        source: ScoreError,
    },
    /// The log's scenario is unknown to this build.
    #[error("{path}: {source}")]
    Scenario {
        /// The log.
        path: PathBuf,
        /// Why.
        source: ScenarioError,
    },
    /// A benchmark could not be built, read or written.
    #[error(transparent)]
    Benchmark(#[from] BenchmarkError),
    /// The replay's display could not start.
    #[error("cannot start the {display} display for the replay: {problem}")]
    Display {
        /// Which display.
        display: &'static str,
        /// Why.
        problem: String,
    },
    /// The output could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Settings of `haptwin replay`.
#[derive(Debug, Clone, Default)]
pub struct ReplayCommand {
    /// The log.
    pub log: PathBuf,
    /// Pace at this multiple of real time (`None`: as fast as the CPU allows; with a display,
    /// real time).
    pub speed: Option<f64>,
    /// Show the replay (window) or write its frames (headless) into `out/frames`.
    pub display: Option<Display>,
    /// Where frames go.
    pub out: PathBuf,
    /// Frames per second written or shown.
    pub fps: f64,
}

/// What `haptwin replay` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplayOutcome {
    /// The replay's check and speed.
    #[serde(flatten)]
    pub report: ReplayReport,
    /// Scenario of the session.
    pub scenario: String,
    /// What the log is missing (truncated, no end chunk), in words.
    pub log_note: Option<String>,
    /// Frames written or shown.
    pub frames: u64,
    /// Where frames were written.
    pub frames_dir: Option<PathBuf>,
}

/// A log's recovery in words, when it is not whole.
pub fn log_note(log: &SessionLog) -> Option<String> {
    match (&log.damage, &log.end) {
        (Some(d), _) => Some(format!(
            "log damaged at byte {}: {}; {} ticks recovered before it",
            d.offset,
            d.reason,
            log.records.len()
        )),
        (None, None) => Some(format!(
            "log not closed (the session did not end cleanly); {} ticks recovered",
            log.records.len()
        )),
        _ => None,
    }
}

/// Replays a log (see [`ReplayCommand`]).
pub fn replay_log_file(cmd: &ReplayCommand) -> Result<ReplayOutcome, ReviewError> {
    let log = SessionLog::open(&cmd.log)?;
    let mut setup = ReplaySetup::from_log(&log).map_err(|source| ReviewError::Replay {
        path: cmd.log.clone(),
        source,
    })?;
    let mut frames = 0;
    let mut frames_dir = None;
    let speed = match (cmd.speed, cmd.display) {
        (Some(s), _) => Some(s),
        (None, Some(_)) => Some(1.0),
        (None, None) => None,
    };
    let report = match cmd.display {
        None => replay(
            &mut setup,
            &log,
            &ReplayOptions {
                speed,
                max_ticks: None,
            },
            |_, _| {},
        ),
        Some(display) => {
            let dir = cmd.out.join("frames");
            std::fs::create_dir_all(&dir).map_err(|source| ReviewError::Write {
                path: dir.clone(),
                source,
            })?;
            let mut scene = setup.case.scene.clone();
            scene.instructions = Some(format!("REPLAY OF {}", log.header.scenario.to_uppercase()));
            scene.force_max_n = log.header.coupling["max_force_n"].as_f64().unwrap_or(8.0) as f32;
            // The render thread paces itself in wall time: at speed X it sees X times the
            // session per second, so its interval shrinks to keep `fps` frames per simulated
            // second.
            let interval = 1.0 / cmd.fps.max(0.1) / speed.unwrap_or(1.0).max(1e-3);
            let cfg = RenderLoopConfig {
                frames_dir: (display == Display::Headless).then(|| dir.clone()),
                frame_interval: Duration::from_secs_f64(interval),
                options: RenderOptions::default(),
                camera: Camera::default_for_block(),
                max_frames: None,
                scene,
                before_frame: None,
                end_session: None,
            };
            let stop = Arc::new(AtomicBool::new(false));
            let subscriber = setup.take_snapshots();
            let (handle, _ready) = display::spawn(display, subscriber, stop.clone(), cfg, None)
                .map_err(|e| ReviewError::Display {
                    display: display.name(),
                    problem: e.to_string(),
                })?;
            let report = replay(
                &mut setup,
                &log,
                &ReplayOptions {
                    speed,
                    max_ticks: None,
                },
                |_, _| {},
            );
            stop.store(true, std::sync::atomic::Ordering::Release);
            if let Ok(r) = handle.join() {
                frames = r.frames_rendered;
                frames_dir = r.frames_dir.clone();
            }
            report
        }
    };
    Ok(ReplayOutcome {
        report: ReplayReport {
            log: Some(cmd.log.clone()),
            ..report
        },
        scenario: log.header.scenario.clone(),
        log_note: log_note(&log),
        frames,
        frames_dir,
    })
}

/// The scenario a log names.
pub fn scenario_of(path: &Path, log: &SessionLog) -> Result<Scenario, ReviewError> {
    Scenario::find(&log.header.scenario).map_err(|source| ReviewError::Scenario {
        path: path.to_path_buf(),
        source,
    })
}

/// Scores one log file, against `benchmark` or, without one, the scenario's shipped one.
pub fn score_file(
    path: &Path,
    benchmark: Option<&Benchmark>,
) -> Result<(ScoreCard, SessionLog, ReplayReport), ReviewError> {
    let log = SessionLog::open(path)?;
    let scenario = scenario_of(path, &log)?;
    let (mut card, report) = score_log(&log, &scenario).map_err(|source| ReviewError::Score {
        path: path.to_path_buf(),
        source,
    })?;
    let shipped;
    let bench = match benchmark {
        Some(b) => Some(b),
        None => {
            shipped = Benchmark::shipped(&scenario.benchmark);
            shipped.as_ref()
        }
    };
    if let Some(b) = bench.filter(|b| b.scenario == card.scenario) {
        b.apply(&mut card);
    }
    Ok((card, log, report))
}

/// What `haptwin score` prints for several logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScoreRun {
    /// One card per log, in the order given (oldest first).
    pub cards: Vec<ScoreCard>,
    /// The proficiency rule over the tries, when they were judged against a benchmark.
    pub proficiency: Option<Proficiency>,
    /// Readiness of the last try against `--history` (warm-up).
    pub readiness: Option<Readiness>,
}

/// Scores `logs` (oldest first), applies the proficiency rule across them and, with
/// `history`, the readiness read-out of the last one against the earlier sessions.
pub fn score_files(
    logs: &[PathBuf],
    benchmark: Option<&Benchmark>,
    history: &[PathBuf],
) -> Result<ScoreRun, ReviewError> {
    let cards = logs
        .iter()
        .map(|p| score_file(p, benchmark).map(|(c, _, _)| c))
        .collect::<Result<Vec<_>, _>>()?;
    let passed: Option<Vec<bool>> = cards.iter().map(|c| c.passed).collect();
    let proficiency = passed.map(|p| benchmark::proficiency(&p));
    let readiness = if history.is_empty() {
        None
    } else {
        let past = history
            .iter()
            .map(|p| score_file(p, benchmark).map(|(c, _, _)| c))
            .collect::<Result<Vec<_>, _>>()?;
        cards.last().map(|today| benchmark::readiness(today, &past))
    };
    Ok(ScoreRun {
        cards,
        proficiency,
        readiness,
    })
}

/// Builds a benchmark for `scenario` from expert logs.
pub fn build_benchmark(scenario: &str, logs: &[PathBuf]) -> Result<Benchmark, ReviewError> {
    let cards = logs
        .iter()
        .map(|p| {
            let log = SessionLog::open(p)?;
            let sc = scenario_of(p, &log)?;
            score_log(&log, &sc)
                .map(|(c, _)| c)
                .map_err(|source| ReviewError::Score {
                    path: p.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Benchmark::build(scenario, &cards)?)
}

/// A card as a few lines of text.
pub fn card_text(card: &ScoreCard) -> String {
    let mut s = format!(
        "{} on case {} ({:.1} s){}\n",
        card.scenario,
        card.case_id,
        card.duration_s,
        if card.log_complete {
            ""
        } else {
            " - log incomplete: scored on what was recovered"
        }
    );
    for m in &card.metrics {
        let bound = m.benchmark.as_ref().map_or(String::new(), |b| {
            format!(
                "   limit {:.3} (experts {:.3} ± {:.3})",
                b.limit, b.expert_mean, b.expert_sd
            )
        });
        let mark = match m.within {
            Some(true) => "ok  ",
            Some(false) => "FAIL",
            None => "    ",
        };
        s += &format!(
            "  {mark} {:<45} {:>10.3} {:<4}{bound}\n",
            m.label, m.value, m.unit
        );
    }
    match card.passed {
        Some(true) => {
            s += &format!(
                "  PASS against {}\n",
                card.benchmark.as_deref().unwrap_or("")
            )
        }
        Some(false) => {
            s += &format!(
                "  NOT YET: outside the benchmark on {}\n",
                card.failed_metrics.join(", ")
            )
        }
        None => s += "  no benchmark for this scenario\n",
    }
    if let Some(r) = &card.replay {
        s += &format!(
            "  outcome measured by re-simulating {} ticks: {} forces differed from the recording\n",
            r.ticks, r.mismatches
        );
    }
    s
}

/// Renders snapshots of a replay at `ticks` (headless Vulkan), as PNG bytes with their tick;
/// `Err` says why none could be rendered.
pub fn replay_snapshots(
    log: &SessionLog,
    ticks: &[u64],
    size: (u32, u32),
) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let mut setup = ReplaySetup::from_log(log).map_err(|e| e.to_string())?;
    let mut renderer = HeadlessRenderer::new(&RenderOptions {
        width: size.0,
        height: size.1,
        ..RenderOptions::default()
    })
    .map_err(|e| e.to_string())?;
    let mut scene = setup.case.scene.clone();
    scene.force_max_n = log.header.coupling["max_force_n"].as_f64().unwrap_or(8.0) as f32;
    let mut builder = SceneBuilder::new(scene);
    let camera = Camera::default_for_block();
    let mut out = Vec::new();
    let mut want = ticks.to_vec();
    want.sort_unstable();
    let mut next = 0;
    let mut images = Vec::new();
    let mut subscriber = setup.take_snapshots();
    let mut err = None;
    replay(&mut setup, log, &ReplayOptions::default(), |rec, _| {
        if next < want.len() && rec.tick >= want[next] && err.is_none() {
            next += 1;
            subscriber.update();
            let scene = builder.build(subscriber.read());
            match renderer.render(&scene, &camera) {
                Ok(img) => images.push((rec.tick, img)),
                Err(e) => err = Some(e.to_string()),
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    for (tick, img) in images {
        let mut png = Vec::new();
        crate::render::png_encode(&mut png, &img).map_err(|e| e.to_string())?;
        out.push((tick, png));
    }
    Ok(out)
}

/// Up to `n` snapshots, evenly spread, from a folder of frames the render loop wrote
/// (`frames.csv` and `frame_NNNNN.png`, or the left eye of a stereo pair).
pub fn snapshots_from_frames(dir: &Path, n: usize) -> Vec<ReportSnapshot> {
    let Ok(index) = std::fs::read_to_string(dir.join("frames.csv")) else {
        return Vec::new();
    };
    let rows: Vec<(u64, u64)> = index
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect();
    if rows.is_empty() || n == 0 {
        return Vec::new();
    }
    let picks: Vec<usize> = if rows.len() <= n {
        (0..rows.len()).collect()
    } else {
        (0..n)
            .map(|k| k * (rows.len() - 1) / (n - 1).max(1))
            .collect()
    };
    picks
        .into_iter()
        .filter_map(|i| {
            let (frame, tick) = rows[i];
            let png = std::fs::read(dir.join(format!("frame_{frame:05}.png")))
                .or_else(|_| std::fs::read(dir.join(format!("frame_{frame:05}_left.png"))))
                .ok()?;
            Some(ReportSnapshot {
                caption: format!("frame {frame}"),
                tick,
                png,
            })
        })
        .collect()
}

/// Snapshot ticks for a report: evenly over the session, plus the first cut, puncture, grasp
/// and mark.
pub fn snapshot_ticks(log: &SessionLog, n: usize) -> Vec<u64> {
    use crate::bus::tick_flags as tf;
    let (Some(first), Some(last)) = (log.records.first(), log.records.last()) else {
        return Vec::new();
    };
    let mut ticks: Vec<u64> = (1..=n as u64)
        .map(|k| first.tick + (last.tick - first.tick) * k / (n as u64 + 1))
        .collect();
    for flag in [tf::CUT, tf::PUNCTURE, tf::GRASP, tf::MARK] {
        if let Some(r) = log.records.iter().find(|r| r.flags & flag != 0) {
            ticks.push(r.tick);
        }
    }
    ticks.sort_unstable();
    ticks.dedup();
    ticks
}

/// What `haptwin report` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportOutcome {
    /// The report.
    pub path: PathBuf,
    /// Its size, bytes.
    pub bytes: usize,
    /// Snapshots embedded.
    pub snapshots: usize,
    /// Why there are none, when there are none.
    pub snapshots_note: Option<String>,
    /// The card it shows.
    pub card: ScoreCard,
}

/// Scores `log_path` and writes its HTML report to `out`, with snapshots rendered from a
/// replay (headless Vulkan) unless `snapshots` is false or no Vulkan device is there.
pub fn write_report_file(
    log_path: &Path,
    out: &Path,
    benchmark: Option<&Benchmark>,
    snapshots: bool,
) -> Result<ReportOutcome, ReviewError> {
    let (card, log, _) = score_file(log_path, benchmark)?;
    let (shots, note) = if snapshots {
        match replay_snapshots(&log, &snapshot_ticks(&log, 4), (640, 480)) {
            Ok(v) => (
                v.into_iter()
                    .map(|(tick, png)| ReportSnapshot {
                        caption: format!("replay at tick {tick}"),
                        tick,
                        png,
                    })
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(format!("no snapshots: {e}"))),
        }
    } else {
        (Vec::new(), Some("snapshots turned off".into()))
    };
    let html = crate::score::report::build_report(&log, &card, &shots);
    std::fs::write(out, &html).map_err(|source| ReviewError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(ReportOutcome {
        path: out.to_path_buf(),
        bytes: html.len(),
        snapshots: shots.len(),
        snapshots_note: note,
        card,
    })
}
