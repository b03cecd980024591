//! The `haptwin` command line: `demo`, `doctor`, `log`.
//!
//! `main` -> [`run`] -> `anyhow::Result<ExitCode>`; errors print their whole chain and exit 1;
//! bad flags exit 2 (clap's usage error).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use haptwin::demo::{self, DemoOptions, DemoReport, RenderStatus};
use haptwin::doctor;

mod dashboard;
use haptwin::haptics::rt::RealtimeStatus;
use haptwin::session::SessionLog;

#[derive(Parser, Debug)]
#[command(
    name = "haptwin",
    version,
    about = "Haptic VR surgical rehearsal on patient digital twins",
    long_about = "Haptic VR surgical rehearsal on patient digital twins.\n\nWith no command, runs the built-in rehearsal (`haptwin demo`)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the built-in rehearsal on the built-in phantom, headless: a scripted probe palpates
    /// the tissue at 1 kHz; writes the session log and rendered frames.
    Demo(DemoArgs),
    /// Run a rehearsal on a display: an OpenXR headset (`xr`), a desktop window with mouse and
    /// keyboard tool control (`window`), or stereo images (`headless`); `auto` tries them in
    /// that order and says which it chose and why.
    Run(RunArgs),
    /// Report what this machine offers: Vulkan, OpenXR, HID, real-time scheduling, timer floor.
    Doctor {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Length of the bare timer test, seconds.
        #[arg(long, default_value_t = 3.0, value_parser = parse_seconds)]
        timer_seconds: f64,
    },
    /// List the HID devices visible, which haptwin profile matches each, and whether this user
    /// may open them (with the fix when not).
    Devices {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Calibrate a force-feedback arm: encoder offsets at its home pose, registration of its
    /// workspace into the world by touching a fixture's points, and a force-scale check. Writes
    /// `<device>.toml` and `<device>-registration.toml`.
    Calibrate {
        /// `woodenhaptics` or `polhem` (a real device over USB HID), or `emulated:woodenhaptics`
        /// or `emulated:polhem` (an emulated arm with known faults, calibrated by a scripted
        /// hand).
        device: String,
        /// The fixture's points in the world frame (default: the shipped phantom tray,
        /// `calibration/registration/phantom-tray.toml`).
        #[arg(long)]
        fixture: Option<PathBuf>,
        /// Folder for the results (default: `$XDG_CONFIG_HOME/haptwin/calibration`, or
        /// `~/.config/haptwin/calibration`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Open this hidraw node instead of the first device with the profile's VID:PID.
        #[arg(long)]
        path: Option<PathBuf>,
        /// The calibration file to start from (default: the shipped one).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Digital twins: build one from imaging, look inside one, export its surface.
    Twin {
        #[command(subcommand)]
        what: TwinCmd,
    },
    /// Measure performance (figures, not pass/fail).
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
    /// Read a session log back and summarise it (recovers what it can from a damaged log).
    Log {
        /// The `.htlog` file.
        path: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Re-run a session from its log's inputs: the same tissue, instrument and device stream,
    /// every force compared with the recording bit for bit.
    Replay {
        /// The `.htlog` file.
        log: PathBuf,
        /// Fail (exit 1) unless every force matches the recording bit for bit, and print the
        /// first divergence.
        #[arg(long)]
        verify: bool,
        /// Pace the replay at this multiple of real time (default: as fast as the CPU allows;
        /// with a display, real time).
        #[arg(long)]
        speed: Option<f64>,
        /// Show the replay in a `window`, or write its frames (`headless`) into OUT/frames.
        #[arg(long)]
        display: Option<haptwin::display::Display>,
        /// Output folder for frames.
        #[arg(long, default_value = "out/replay")]
        out: PathBuf,
        /// Frames per simulated second.
        #[arg(long, default_value_t = 10.0, value_parser = parse_fps)]
        fps: f64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Score sessions: every metric of the scenario against its benchmark (the shipped one, or
    /// --benchmark). Several logs of one trainee, oldest first, also give the proficiency rule
    /// (two passes in a row); --history gives a warm-up's readiness against one's own earlier
    /// sessions.
    Score {
        /// The `.htlog` files, oldest first.
        #[arg(required = true)]
        logs: Vec<PathBuf>,
        /// A benchmark file (`haptwin benchmark build` writes them).
        #[arg(long)]
        benchmark: Option<PathBuf>,
        /// Earlier sessions of the same person and scenario, for the readiness read-out.
        #[arg(long, num_args = 1..)]
        history: Vec<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write a session's report: one self-contained HTML file with the score against the
    /// benchmark, plots (force with the safe threshold, tool path, speed and jerk, every metric
    /// against its bound) and snapshots rendered from a replay.
    Report {
        /// The `.htlog` file.
        log: PathBuf,
        /// Where to write the report.
        #[arg(short, long, default_value = "report.html")]
        out: PathBuf,
        /// A benchmark file (default: the scenario's shipped one).
        #[arg(long)]
        benchmark: Option<PathBuf>,
        /// Do not render snapshots.
        #[arg(long)]
        no_snapshots: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Export a session for research (JIGSAWS-layout kinematics) or a learning record store
    /// (xAPI statements, posted when HAPTWIN_LRS_URL, with HAPTWIN_LRS_KEY and
    /// HAPTWIN_LRS_SECRET, names one).
    Export {
        /// The `.htlog` file.
        log: PathBuf,
        /// Write the kinematics here (and a `.columns.txt` description beside it).
        #[arg(long)]
        jigsaws: Option<PathBuf>,
        /// Kinematics rows per second.
        #[arg(long, default_value_t = haptwin::score::export::JIGSAWS_RATE_HZ)]
        rate: f64,
        /// Write the xAPI statements here.
        #[arg(long)]
        xapi: Option<PathBuf>,
        /// The trainee's name in the statements.
        #[arg(long, default_value = "")]
        actor_name: String,
        /// The trainee's e-mail address (mbox).
        #[arg(long)]
        actor_mbox: Option<String>,
        /// The trainee's account: HOME_PAGE_IRI,NAME (used instead of an e-mail address).
        #[arg(long)]
        actor_account: Option<String>,
        /// Do not post the statements even when a Learning Record Store is configured.
        #[arg(long)]
        no_post: bool,
    },
    /// Proficiency benchmarks.
    Benchmark {
        #[command(subcommand)]
        what: BenchmarkCmd,
    },
    /// The instructors' dashboard and the stations' upload API: residents, cohorts, sessions,
    /// proficiency, replays, ratings and exports, in a browser.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        #[command(flatten)]
        db: DbArg,
        /// Folder for uploaded logs (default: the data folder, beside the embedded database).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Worker threads.
        #[arg(long, default_value_t = 16)]
        workers: usize,
        /// Largest session log a station may upload, MiB.
        #[arg(long, default_value_t = 512)]
        max_upload_mib: u64,
        /// Mark login cookies Secure (when the dashboard is behind HTTPS).
        #[arg(long)]
        secure_cookies: bool,
    },
    /// Dashboard accounts.
    User {
        #[command(subcommand)]
        what: UserCmd,
    },
    /// Cohorts of residents and their instructors.
    Cohort {
        #[command(subcommand)]
        what: CohortCmd,
    },
    /// Simulator stations allowed to upload sessions.
    Station {
        #[command(subcommand)]
        what: StationCmd,
    },
    /// Store session logs recorded on this machine in the dashboard's store, as a resident's.
    Import {
        /// Session logs.
        #[arg(required = true)]
        logs: Vec<PathBuf>,
        /// The resident (user name) they belong to.
        #[arg(long)]
        resident: String,
        #[command(flatten)]
        db: DbArg,
        /// Folder the logs are kept in (default: the data folder).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Upload a finished session log to a dashboard from a station, resuming after a dropped
    /// connection.
    Upload {
        /// The session log.
        log: PathBuf,
        /// The dashboard (`http://host:8080`).
        #[arg(long)]
        to: String,
        /// The resident (user name on the dashboard) whose session it is.
        #[arg(long)]
        resident: String,
        /// The station's token (default: `$HAPTWIN_STATION_TOKEN`).
        #[arg(long, env = "HAPTWIN_STATION_TOKEN", hide_env_values = true)]
        token: String,
        /// Bytes per request.
        #[arg(long, default_value_t = 1 << 20)]
        chunk_bytes: usize,
        /// Tries per request before giving up (waits double from 0.5 s between tries).
        #[arg(long, default_value_t = 8)]
        retries: u32,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `--db`: which store.
#[derive(clap::Args, Debug, Clone)]
struct DbArg {
    /// The store: a SQLite file or `postgres://user:password@host/db` (default: `$HAPTWIN_DB`,
    /// else `haptwin.db` in `$XDG_DATA_HOME/haptwin` or `~/.local/share/haptwin`).
    #[arg(long)]
    db: Option<String>,
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Add an account. The password is read from standard input with `--password-stdin`,
    /// otherwise one is generated and printed once.
    Add {
        /// Login name (letters, digits, '.', '_', '-').
        username: String,
        /// `resident`, `instructor` or `admin`.
        #[arg(long)]
        role: String,
        /// Name shown on the dashboard (default: the login name).
        #[arg(long, default_value = "")]
        name: String,
        /// Add to this cohort (as a member for residents, as its instructor otherwise).
        #[arg(long)]
        cohort: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Set an account's password (first line of standard input, or a generated one).
    Passwd {
        /// Login name.
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand, Debug)]
enum CohortCmd {
    /// Add a cohort.
    Add {
        /// Its name.
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Put users in a cohort: residents as members, instructors as its instructors.
    Assign {
        /// The cohort.
        cohort: String,
        /// User names.
        #[arg(required = true)]
        users: Vec<String>,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand, Debug)]
enum StationCmd {
    /// Register a station; prints its upload token once.
    Add {
        /// Its name.
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Revoke a station's token.
    Revoke {
        /// Its name.
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand, Debug)]
enum BenchmarkCmd {
    /// Build a scenario's benchmark from expert sessions: per metric the experts' mean and SD,
    /// the limit at mean + 2 SD toward the worse side.
    Build {
        /// The scenario (`palpation`, `resection`, `biopsy`, `warmup`).
        scenario: String,
        /// Expert session logs (at least 3).
        #[arg(required = true)]
        logs: Vec<PathBuf>,
        /// Where to write it.
        #[arg(short, long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum TwinCmd {
    /// Build a twin from a DICOM series (a folder, de-identified at import), a DICOM file or a
    /// NIfTI image: labels (a label map or a segmentation preset), surfaces, tets, materials.
    Build {
        /// A DICOM folder, a DICOM file, or a `.nii` / `.nii.gz` image.
        input: PathBuf,
        /// A label map to use instead of segmenting: a `.nii` / `.nii.gz` NIfTI, or a DICOM SEG.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// A segmentation preset: `abdomen-ct` (the default for CT), `bone-ct`, or
        /// `threshold:LABEL=MIN..MAX[,...]`.
        #[arg(long)]
        preset: Option<String>,
        /// Tets to aim for.
        #[arg(long, default_value_t = haptwin::twin::tets::DEFAULT_TET_BUDGET)]
        tets: usize,
        /// Triangles the render surface aims for.
        #[arg(long, default_value_t = haptwin::twin::build::DEFAULT_SURFACE_TRIANGLES)]
        surface_triangles: usize,
        /// A materials override file (TOML).
        #[arg(long)]
        materials: Option<PathBuf>,
        /// The modality of a NIfTI image (NIfTI does not say): `CT` means its values are HU.
        #[arg(long)]
        modality: Option<String>,
        /// The series to take from a folder holding several (its id, as the error lists them).
        #[arg(long)]
        series: Option<String>,
        /// Keep fat and bone in the twin (by default: the organ, its tumours and vessels).
        #[arg(long)]
        all_tissues: bool,
        /// The twin file to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Print one JSON object (and no progress).
        #[arg(long)]
        json: bool,
    },
    /// Write the built-in phantom (a liver-like organ with a stiffer tumour and a vessel) as a
    /// twin.
    Phantom {
        /// The twin file to write.
        #[arg(short, long, default_value = "phantom.twin")]
        output: PathBuf,
        /// Tets to aim for.
        #[arg(long, default_value_t = haptwin::twin::tets::DEFAULT_TET_BUDGET)]
        tets: usize,
        /// Voxel size the phantom is sampled at, millimetres.
        #[arg(long, default_value_t = 1.0)]
        voxel_mm: f64,
        /// Also write its CT as a DICOM series into this folder.
        #[arg(long)]
        dicom: Option<PathBuf>,
        /// Also write its CT as a NIfTI image (`.nii` or `.nii.gz`).
        #[arg(long)]
        nifti: Option<PathBuf>,
        /// Also write its label map as a NIfTI image.
        #[arg(long)]
        labels_nifti: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Describe a twin: provenance (no identity), grid, mesh quality, materials, surface.
    Info {
        /// The `.twin` file.
        path: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Export a twin's surface for Blender or 3D Slicer.
    Export {
        /// The `.twin` file.
        path: PathBuf,
        /// `obj` or `stl` (millimetres, patient LPS) or `glb` (metres, world frame, y up).
        #[arg(long)]
        format: haptwin::twin::export::ExportFormat,
        /// The file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCmd {
    /// Stereo frames (one multiview pass for both eyes) of the demo's phantom twin, its fine
    /// surface deforming every frame, with the instrument and the board: CPU and GPU time per
    /// frame (timestamp queries), two frames in flight, no read-back.
    Render {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Pixels per eye, wide.
        #[arg(long, default_value_t = 2064, value_parser = clap::value_parser!(u32).range(16..=8192))]
        width: u32,
        /// Pixels per eye, high.
        #[arg(long, default_value_t = 2208, value_parser = clap::value_parser!(u32).range(16..=8192))]
        height: u32,
        /// Timed frames.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        frames: u32,
        /// Untimed frames first.
        #[arg(long, default_value_t = 30)]
        warmup: u32,
        /// MSAA samples (1, 2, 4, 8).
        #[arg(long, default_value_t = 4)]
        samples: u32,
        /// The tissue: `phantom`, `block` or a `.twin` file.
        #[arg(long, default_value = "phantom")]
        case: haptwin::demo::DemoCase,
        /// Only use a Vulkan device whose name contains this.
        #[arg(long)]
        device: Option<String>,
    },
    /// Isosurfaces of 256^3 and 512^3 volumes on 1 and 2 threads, a synthetic 300 x 512 x 512
    /// CT series written and loaded as DICOM, and the whole CT-to-twin build of it, next to
    /// the anchors.
    Twin {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Folder for the synthetic series (about 160 MB, removed afterwards).
        #[arg(long, default_value = "out/bench-twin")]
        out: PathBuf,
        /// Small sizes (a quick check that it runs, not figures).
        #[arg(long)]
        small: bool,
    },
    /// Step tissue blocks of about 1k, 5k, 20k and 50k tets at tissue scale and report step
    /// time, throughput, and the accuracy of the same configuration (cantilever, stretch).
    Tissue {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Timed steps per size.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        steps: u32,
        /// Skip sizes above this many tets.
        #[arg(long, default_value_t = 50_000)]
        max_tets: usize,
        /// Cells across the finest cantilever bar of the accuracy check (10: 40,000 tets, the
        /// validation bar, about half a minute).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=16))]
        finest_bar: u32,
    },
    /// Record the default scenario's session at 1 kHz, then replay, score and report it:
    /// log bytes per second, recorder drops, replay speed (multiples of real time), scoring
    /// and report build time.
    Record {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Replays (and scorings) timed.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Where the session log goes.
        #[arg(long, default_value = "out/bench-record")]
        out: PathBuf,
        /// Do not ask for real-time scheduling.
        #[arg(long)]
        no_realtime: bool,
    },
    /// Load-test the instructors' dashboard on loopback: a store with one cohort of residents
    /// and their sessions (two recorded and ingested, copied across the residents), the server
    /// on 127.0.0.1, concurrent clients logged in as the instructor reading session pages (most
    /// requests), the cohort page, the home page and replays: requests per second, latency
    /// percentiles by kind of request, errors (the goal: none).
    Serve {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Concurrent clients, each with its own connection.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        clients: u32,
        /// Seconds the clients send requests.
        #[arg(long, default_value_t = 30.0, value_parser = parse_seconds)]
        seconds: f64,
        /// The server's worker threads.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
        workers: u32,
        /// The store: a PostgreSQL URL (a scratch database: the run adds its users, cohort and
        /// sessions and leaves them) instead of a fresh SQLite file in --out.
        #[arg(long)]
        db: Option<String>,
        /// Residents in the cohort.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        residents: u32,
        /// Sessions across them.
        #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u32).range(2..=100_000))]
        sessions: u32,
        /// Where the recorded sessions, their kept logs and the SQLite file go (the SQLite
        /// file is removed afterwards).
        #[arg(long, default_value = "out/bench-serve")]
        out: PathBuf,
        /// Open the clients' connections all at once rather than one after another.
        #[arg(long)]
        connect_all_at_once: bool,
    },
    /// Run the whole haptic loop (emulated WoodenHaptics I/O, tissue step, guard, recorder) and
    /// the bare timer loop, and report lateness and tick work side by side.
    Haptic {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Seconds of each loop.
        #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
        seconds: f64,
        /// Where the session log of the run goes.
        #[arg(long, default_value = "out/bench-haptic")]
        out: PathBuf,
        /// Do not ask for real-time scheduling.
        #[arg(long)]
        no_realtime: bool,
    },
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Simulated seconds (1000 haptic ticks each); default: the whole scripted performance
    /// (simulated device, emulated arms), the scenario's time limit (a device in the hand).
    #[arg(long, value_parser = parse_seconds)]
    seconds: Option<f64>,
    /// The scenario: `palpation`, `resection`, `biopsy`, `warmup` or a scenario `.toml` file.
    #[arg(long, default_value = "palpation")]
    scenario: String,
    /// Who the simulated device plays: `expert` or `novice`.
    #[arg(long, default_value = "expert")]
    skill: haptwin::score::performer::Skill,
    /// Seed of the scripted performance (varies it slightly).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder for the session log and frames/.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// Print one JSON object with the figures of the run.
    #[arg(long)]
    json: bool,
    /// Fail if frames cannot be rendered (instead of going on without them).
    #[arg(long, conflicts_with = "no_render")]
    require_render: bool,
    /// Do not render frames.
    #[arg(long)]
    no_render: bool,
    /// Frames per second to render and write.
    #[arg(long, default_value_t = 10.0, value_parser = parse_fps)]
    fps: f64,
    /// Frame width in pixels.
    #[arg(long, default_value_t = 640, value_parser = clap::value_parser!(u32).range(16..=8192))]
    width: u32,
    /// Frame height in pixels.
    #[arg(long, default_value_t = 480, value_parser = clap::value_parser!(u32).range(16..=8192))]
    height: u32,
    /// Turn the Vulkan validation layers on and report their findings.
    #[arg(long)]
    validation: bool,
    /// Do not ask for real-time scheduling for the haptic thread.
    #[arg(long)]
    no_realtime: bool,
    /// The device: `sim` (the simulated probe), `emulated:woodenhaptics` or `emulated:polhem`
    /// (an emulated WoodenHaptics 1.5 or Polhem speaking its HID byte protocol in-process), or
    /// `replay:LOG` (the device stream of a recorded session, played back; runs as long as the
    /// recording and checks every force against it), or `woodenhaptics` / `polhem` (a real
    /// device on USB HID, with its `haptwin calibrate` results).
    #[arg(long, default_value = "sim")]
    device: haptwin::demo::DemoDevice,
    /// The tissue: `phantom` (the built-in phantom twin: a liver-like organ with a stiffer
    /// tumour and a vessel), `block` (a 10 cm block of liver-like tissue), or a `.twin` file.
    #[arg(long, default_value = "phantom")]
    case: haptwin::demo::DemoCase,
    /// Tets of the phantom twin (the tick must fit in 1 ms: about 4,000 on one core here).
    #[arg(long, default_value_t = haptwin::demo::DEMO_TETS)]
    tets: usize,
    /// For a real device: the folder with its `haptwin calibrate` results (default: where
    /// `haptwin calibrate` writes them; the shipped calibration when there are none).
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Keep the session out of the dashboard's store (by default the demo records it as the
    /// demo resident's, in the Demo cohort, for `haptwin serve`).
    #[arg(long)]
    no_store: bool,
    /// The store (default: `$HAPTWIN_DB`, else `haptwin.db` in `$XDG_DATA_HOME/haptwin` or
    /// `~/.local/share/haptwin`): a SQLite file or `postgres://user:password@host/db`.
    #[arg(long)]
    db: Option<String>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// `xr`, `window`, `headless` or `auto`.
    #[arg(long, default_value = "auto")]
    display: haptwin::display::DisplayChoice,
    /// The scenario: `palpation`, `resection`, `biopsy`, `warmup` or a scenario `.toml` file.
    #[arg(long, default_value = "palpation")]
    scenario: String,
    /// Seconds of rehearsal (1000 haptic ticks each); default: the scenario's time limit (the
    /// scripted performance's length for the simulated device). Closing the window or leaving
    /// the headset's session ends it sooner.
    #[arg(long, value_parser = parse_seconds)]
    seconds: Option<f64>,
    /// Output folder for the session log (and, headless, the stereo frames).
    #[arg(long, default_value = "out/run")]
    out: PathBuf,
    /// Print one JSON object with the figures of the run.
    #[arg(long)]
    json: bool,
    /// Fail if the display cannot start (instead of going on without pictures).
    #[arg(long)]
    require_render: bool,
    /// Frames per second: written headless (default 10), drawn at most in a window (default
    /// 60; the window's vsync may hold it lower). A headset runs at its runtime's pace.
    #[arg(long, value_parser = parse_fps)]
    fps: Option<f64>,
    /// Image width per eye (headless, default 640) or window width (default 1280).
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..=8192))]
    width: Option<u32>,
    /// Image height per eye (headless, default 480) or window height (default 720).
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..=8192))]
    height: Option<u32>,
    /// Turn the Vulkan validation layers on and report their findings.
    #[arg(long)]
    validation: bool,
    /// Colour the tissue by strain (blue: none, red: 15 %).
    #[arg(long)]
    strain_overlay: bool,
    /// End the run once this many frames are on the display (the headset's session is left
    /// through the runtime), or after --seconds, whichever comes first.
    #[arg(long)]
    frames: Option<u64>,
    /// Do not ask for real-time scheduling for the haptic thread.
    #[arg(long)]
    no_realtime: bool,
    /// The device (as for `demo`), or `pointer`: the window's mouse and keyboard or the
    /// headset's controller. Default: `pointer` with a window or headset, `sim` headless.
    #[arg(long)]
    device: Option<haptwin::demo::DemoDevice>,
    /// The tissue: `phantom`, `block`, or a `.twin` file.
    #[arg(long, default_value = "phantom")]
    case: haptwin::demo::DemoCase,
    /// Tets of the phantom twin.
    #[arg(long, default_value_t = haptwin::demo::DEMO_TETS)]
    tets: usize,
    /// For a real device: the folder with its `haptwin calibrate` results.
    #[arg(long)]
    calibration: Option<PathBuf>,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(v > 0.0 && v <= 86_400.0) {
        return Err(format!("{v} s is out of range (0 < seconds <= 86400)"));
    }
    Ok(v)
}

fn parse_fps(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a frame rate"))?;
    if !(0.1..=240.0).contains(&v) {
        return Err(format!("{v} fps is out of range (0.1 to 240)"));
    }
    Ok(v)
}

fn main() -> ExitCode {
    // A closed pipe (`haptwin twin info case.twin | head`) ends the process quietly, as it does
    // for any Unix tool, instead of panicking in println!.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("haptwin: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        None => {
            // Exactly `haptwin demo` with its defaults.
            match Cli::parse_from(["haptwin", "demo"]).command {
                Some(Cmd::Demo(args)) => run_demo_cmd(&args),
                _ => unreachable!("`haptwin demo` parses as the demo"),
            }
        }
        Some(Cmd::Demo(args)) => run_demo_cmd(&args),
        Some(Cmd::Run(args)) => run_run_cmd(&args),
        Some(Cmd::Doctor {
            json,
            timer_seconds,
        }) => {
            let report = doctor::run_doctor(Duration::from_secs_f64(timer_seconds));
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_doctor(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Devices { json }) => {
            let report = doctor::devices();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_devices(&report);
            }
            match &report.hid.error {
                Some(e) => Err(anyhow::anyhow!("cannot list HID devices: {e}")),
                None => Ok(ExitCode::SUCCESS),
            }
        }
        Some(Cmd::Calibrate {
            device,
            fixture,
            out,
            path,
            config,
            json,
        }) => {
            use haptwin::haptics::calibrate;
            let out_dir = match out {
                Some(o) => o,
                None => default_calibration_dir()?,
            };
            let opts = calibrate::CalibrateOptions {
                device,
                fixture,
                out_dir,
                path,
                config,
            };
            let report = calibrate::run_command(&opts, haptwin::demo::woodenhaptics_to_world())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_calibration(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Twin { what }) => run_twin(what),
        Some(Cmd::Bench {
            what: BenchCmd::Twin { json, out, small },
        }) => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let r = haptwin::bench::bench_twin(&out, small)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("haptwin bench twin:");
                for i in &r.isosurface {
                    println!(
                        "  isosurface {}^3, {} thread(s): {:.3} s median ({} triangles)",
                        i.n, i.threads, i.seconds, i.triangles
                    );
                }
                println!("  anchors (VTK FlyingEdges, 1 thread): 256^3 0.037 s, 512^3 0.33 s");
                println!(
                    "  DICOM series {} x {} x {}: written in {:.2} s, loaded in {:.2} s \
                     (anchor: dicom-rs 0.5 s)",
                    r.series_dims[0],
                    r.series_dims[1],
                    r.series_dims[2],
                    r.series_write_s,
                    r.series_load_s
                );
                let b = &r.build;
                println!(
                    "  CT to twin: {:.2} s (import {:.2}, labels {:.2} ({}), surface {:.2}, \
                     tets {:.2}); goal 5 s; {} tets",
                    b.total_s, b.import_s, b.labels_s, b.labels_from, b.surface_s, b.tets_s, r.tets
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Bench {
            what:
                BenchCmd::Tissue {
                    json,
                    steps,
                    max_tets,
                    finest_bar,
                },
        }) => {
            let report = haptwin::bench::bench_tissue(&haptwin::bench::BenchOptions {
                steps: steps as usize,
                max_tets,
                finest_bar_across: finest_bar as usize,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_bench(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Bench {
            what:
                BenchCmd::Render {
                    json,
                    width,
                    height,
                    frames,
                    warmup,
                    samples,
                    case,
                    device,
                },
        }) => {
            let r = haptwin::bench::bench_render(&haptwin::bench::RenderBenchOptions {
                width,
                height,
                frames,
                warmup,
                samples,
                case,
                device_filter: device,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "haptwin bench render: {} frames, stereo {} x {} per eye, {}x MSAA, on {}",
                    r.frames, r.width, r.height, r.samples, r.device
                );
                println!(
                    "  tissue: {} triangles per view, {} vertices streamed per frame",
                    r.tissue_triangles, r.tissue_vertices
                );
                println!(
                    "  CPU per frame: p50 {:.3} ms, p99 {:.3} ms (goal <= {} ms)",
                    r.cpu_ms.p50, r.cpu_ms.p99, r.goal_cpu_ms
                );
                match &r.gpu_ms {
                    Some(g) => println!(
                        "  GPU per frame: p50 {:.3} ms, p99 {:.3} ms (goal <= {} ms)",
                        g.p50, g.p99, r.goal_gpu_ms
                    ),
                    None => println!("  GPU per frame: no timestamp queries on this device"),
                }
                println!(
                    "  achieved {:.1} frames/s; fence wait p50 {:.3} ms",
                    r.achieved_fps, r.fence_wait_ms.p50
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Bench {
            what:
                BenchCmd::Haptic {
                    json,
                    seconds,
                    out,
                    no_realtime,
                },
        }) => {
            let report = haptwin::bench::bench_haptic(seconds, &out, !no_realtime)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_bench_haptic(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Bench {
            what:
                BenchCmd::Record {
                    json,
                    runs,
                    out,
                    no_realtime,
                },
        }) => {
            let r = haptwin::bench::bench_record(&out, runs, !no_realtime)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("haptwin bench record: {}", r.case);
                println!(
                    "  log: {} bytes for {:.3} s = {:.0} bytes/s at 1 kHz; recorder drops {}, missing ticks {}",
                    r.log_bytes, r.session_s, r.log_bytes_per_s, r.recorder_drops, r.missing_ticks
                );
                println!(
                    "  replay: median {:.3} s over {} runs = {:.1}x real time (goal >= 20x); {} forces differ",
                    r.replay_median_s, r.replay_runs, r.replay_speed_x, r.replay_mismatches
                );
                println!(
                    "  score (replay included): median {:.3} s; report build: median {:.4} s, {} bytes",
                    r.score_median_s, r.report_median_s, r.report_bytes
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Bench {
            what:
                BenchCmd::Serve {
                    json,
                    clients,
                    seconds,
                    workers,
                    db,
                    residents,
                    sessions,
                    out,
                    connect_all_at_once,
                },
        }) => {
            let r = haptwin::bench::bench_serve(&haptwin::bench::ServeBenchOptions {
                clients: clients as usize,
                seconds,
                workers: workers as usize,
                db,
                out_dir: out,
                residents: residents as usize,
                sessions: sessions as usize,
                connect_all_at_once,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_bench_serve(&r);
            }
            Ok(if r.errors == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Some(Cmd::Replay {
            log,
            verify,
            speed,
            display,
            out,
            fps,
            json,
        }) => {
            let outcome = haptwin::review::replay_log_file(&haptwin::review::ReplayCommand {
                log: log.clone(),
                speed,
                display,
                out,
                fps,
            })?;
            let r = &outcome.report;
            if json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            } else {
                println!(
                    "{}: replayed {} ticks ({:.3} s simulated) in {:.3} s, {:.1}x real time; \
                     {} of {} forces differ from the recording",
                    log.display(),
                    r.ticks,
                    r.simulated_s,
                    r.wall_s,
                    r.speed_x,
                    r.mismatches,
                    r.compared
                );
                if let Some(d) = &r.first_divergence {
                    println!(
                        "  first divergence at tick {}: recorded force {:?} N, replayed {:?} N \
                         (tool recorded {:?} m, replayed {:?} m)",
                        d.tick,
                        d.recorded_force_n,
                        d.replayed_force_n,
                        d.recorded_tool_m,
                        d.replayed_tool_m
                    );
                }
                if let Some(n) = &outcome.log_note {
                    println!("  {n}");
                }
                if let Some(dir) = &outcome.frames_dir {
                    println!("  {} frames in {}", outcome.frames, dir.display());
                }
            }
            Ok(if verify && r.mismatches > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Some(Cmd::Score {
            logs,
            benchmark,
            history,
            json,
        }) => {
            let bench = benchmark
                .as_deref()
                .map(haptwin::score::benchmark::Benchmark::load)
                .transpose()?;
            let run = haptwin::review::score_files(&logs, bench.as_ref(), &history)?;
            if json {
                if run.cards.len() == 1 && run.readiness.is_none() {
                    println!("{}", serde_json::to_string_pretty(&run.cards[0])?);
                } else {
                    println!("{}", serde_json::to_string_pretty(&run)?);
                }
            } else {
                for (card, path) in run.cards.iter().zip(&logs) {
                    println!("{}", path.display());
                    print!("{}", haptwin::review::card_text(card));
                }
                if let Some(p) = &run.proficiency {
                    if run.cards.len() > 1 {
                        println!(
                            "proficiency: {} of {} tries passed, {} in a row at the end: {}",
                            p.passes,
                            p.tries,
                            p.consecutive_passes,
                            match p.proficient_at_try {
                                Some(t) => format!("PROFICIENT (from try {t})"),
                                None => "not yet proficient (two passes in a row needed)".into(),
                            }
                        );
                    }
                }
                if let Some(r) = &run.readiness {
                    println!("readiness: {}", r.summary);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Report {
            log,
            out,
            benchmark,
            no_snapshots,
            json,
        }) => {
            let bench = benchmark
                .as_deref()
                .map(haptwin::score::benchmark::Benchmark::load)
                .transpose()?;
            let r = haptwin::review::write_report_file(&log, &out, bench.as_ref(), !no_snapshots)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{}: report of {} ({} bytes, {} snapshots{}); open it in a browser",
                    r.path.display(),
                    log.display(),
                    r.bytes,
                    r.snapshots,
                    r.snapshots_note
                        .as_deref()
                        .map_or(String::new(), |n| format!("; {n}"))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Export {
            log,
            jigsaws,
            rate,
            xapi,
            actor_name,
            actor_mbox,
            actor_account,
            no_post,
        }) => {
            use haptwin::score::export;
            if jigsaws.is_none() && xapi.is_none() {
                anyhow::bail!("nothing to export: give --jigsaws FILE and/or --xapi FILE");
            }
            if let Some(path) = &jigsaws {
                let session = SessionLog::open(&log)?;
                let columns = export::write_jigsaws(&session, rate, path)?;
                println!(
                    "{}: kinematics at {rate} Hz, 76 columns (described in {})",
                    path.display(),
                    columns.display()
                );
            }
            if let Some(path) = &xapi {
                let (card, session, _) = haptwin::review::score_file(&log, None)?;
                let account = actor_account
                    .map(|a| match a.split_once(',') {
                        Some((home, name)) => Ok((home.to_string(), name.to_string())),
                        None => Err(anyhow::anyhow!(
                            "--actor-account takes HOME_PAGE_IRI,NAME; got {a:?}"
                        )),
                    })
                    .transpose()?;
                let actor = export::XapiActor {
                    name: actor_name,
                    mbox: actor_mbox,
                    account,
                };
                let h = &session.header;
                let session_id = export::name_uuid(&[
                    &h.case_id,
                    &h.scenario,
                    &h.started_unix_s.to_string(),
                    &h.seed.to_string(),
                ]);
                let options = export::XapiOptions::default();
                export::write_xapi(&card, &actor, &session_id, &options, path)?;
                println!(
                    "{}: xAPI statements of session {session_id}",
                    path.display()
                );
                match export::LrsConfig::from_env() {
                    Some(lrs) if !no_post => {
                        let statements =
                            export::xapi_statements_with(&card, &actor, &session_id, &options);
                        let ids = export::post_statements(&lrs, &statements)?;
                        println!(
                            "  posted {} statements to {}",
                            ids.len(),
                            lrs.statements_url()
                        );
                    }
                    _ => {}
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Benchmark {
            what:
                BenchmarkCmd::Build {
                    scenario,
                    logs,
                    out,
                },
        }) => {
            let b = haptwin::review::build_benchmark(&scenario, &logs)?;
            b.save(&out)?;
            println!(
                "{}: benchmark for {} from {} expert sessions, {} metrics",
                out.display(),
                b.scenario,
                b.experts,
                b.metrics.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Serve {
            addr,
            db,
            data_dir,
            workers,
            max_upload_mib,
            secure_cookies,
        }) => dashboard::serve(
            &addr,
            db.db.as_deref(),
            data_dir,
            workers,
            max_upload_mib,
            secure_cookies,
        ),
        Some(Cmd::User { what }) => dashboard::user(what),
        Some(Cmd::Cohort { what }) => dashboard::cohort(what),
        Some(Cmd::Station { what }) => dashboard::station(what),
        Some(Cmd::Import {
            logs,
            resident,
            db,
            data_dir,
        }) => dashboard::import(&logs, &resident, db.db.as_deref(), data_dir),
        Some(Cmd::Upload {
            log,
            to,
            resident,
            token,
            chunk_bytes,
            retries,
            json,
        }) => dashboard::upload(&log, &to, &resident, &token, chunk_bytes, retries, json),
        Some(Cmd::Log { path, json }) => {
            let log = SessionLog::open(&path)?;
            let summary = haptwin::session::log::summarize(&log);
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!("{}", summary.to_text(&path));
            }
            Ok(if log.damage.is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// The flag SIGINT and SIGTERM set (a second signal ends the process at once, exit 1).
fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let interrupt = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, interrupt.clone())
            .with_context(|| format!("installing the handler for signal {sig}"))?;
        signal_hook::flag::register(sig, interrupt.clone())
            .with_context(|| format!("installing the handler for signal {sig}"))?;
    }
    Ok(interrupt)
}

fn run_run_cmd(args: &RunArgs) -> anyhow::Result<ExitCode> {
    use haptwin::display::{self, Display};
    let interrupt = interrupt_flag()?;
    let (display, why) = display::choose(args.display);
    if !args.json {
        eprintln!("haptwin run: display {} ({why})", display.name());
    }
    let device = args.device.clone().unwrap_or(match display {
        Display::Headless => demo::DemoDevice::Simulated,
        Display::Window | Display::Xr => demo::DemoDevice::Pointer,
    });
    let (width, height) = match display {
        Display::Window => (args.width.unwrap_or(1280), args.height.unwrap_or(720)),
        _ => (args.width.unwrap_or(640), args.height.unwrap_or(480)),
    };
    let opts = DemoOptions {
        seconds: args.seconds,
        out_dir: args.out.clone(),
        render: true,
        require_render: args.require_render,
        fps: args.fps.unwrap_or(match display {
            Display::Window => 60.0,
            _ => 10.0,
        }),
        width,
        height,
        validation: args.validation,
        realtime: !args.no_realtime,
        device,
        case: args.case.clone(),
        tets: args.tets,
        calibration_dir: args
            .calibration
            .clone()
            .or_else(|| default_calibration_dir().ok()),
        display,
        views: 2,
        strain_overlay: args.strain_overlay,
        max_frames: args.frames,
        scenario: haptwin::session::scenario::Scenario::find(&args.scenario)?,
        skill: haptwin::score::performer::Skill::Expert,
        seed: 0,
    };
    if !args.json {
        eprintln!(
            "haptwin run: {} up to {} on {} (Ctrl-C{} ends it cleanly)...",
            opts.scenario.title,
            match (args.seconds, &opts.device) {
                (Some(s), _) => format!("{s} s"),
                (None, demo::DemoDevice::Simulated) => "the scripted performance's end".into(),
                (None, _) => format!("{} s", opts.scenario.time_limit_s),
            },
            match &args.case {
                demo::DemoCase::Block => "the phantom block".to_string(),
                demo::DemoCase::Phantom => "the phantom twin".to_string(),
                demo::DemoCase::File(p) => p.display().to_string(),
            },
            match display {
                Display::Window => ", Esc or closing the window",
                Display::Xr => " or leaving the session in the headset",
                Display::Headless => "",
            }
        );
    }
    let report = demo::run_demo(&opts, interrupt).context("the rehearsal failed")?;
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["display"] = serde_json::json!({ "chosen": display.name(), "why": why });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_demo("run", &report);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_demo_cmd(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    use haptwin::session::scenario::Scenario;
    let interrupt = interrupt_flag()?;
    // A replayed device stream runs in the scenario, on the case, that it was recorded in.
    let (scenario, case, tets) = match &args.device {
        demo::DemoDevice::Replay(path) => {
            let log = SessionLog::open(path)?;
            let h = &log.header;
            (
                Scenario::find(&h.scenario).or_else(|_| Scenario::find(&args.scenario))?,
                h.case.parse().unwrap_or_else(|_| args.case.clone()),
                if h.tets > 0 { h.tets } else { args.tets },
            )
        }
        _ => (
            Scenario::find(&args.scenario)?,
            args.case.clone(),
            args.tets,
        ),
    };
    let opts = DemoOptions {
        seconds: args.seconds,
        scenario,
        skill: args.skill,
        seed: args.seed,
        out_dir: args.out.clone(),
        render: !args.no_render,
        require_render: args.require_render,
        fps: args.fps,
        width: args.width,
        height: args.height,
        validation: args.validation,
        realtime: !args.no_realtime,
        device: args.device.clone(),
        case,
        tets,
        calibration_dir: args
            .calibration
            .clone()
            .or_else(|| default_calibration_dir().ok()),
        ..DemoOptions::default()
    };
    if !args.json {
        match &args.device {
            demo::DemoDevice::Replay(path) => eprintln!(
                "haptwin demo: replaying the device stream of {} on the phantom block at 1 kHz \
                 (Ctrl-C stops cleanly)...",
                path.display()
            ),
            demo::DemoDevice::WoodenHaptics
            | demo::DemoDevice::Polhem
            | demo::DemoDevice::Generic(_) => eprintln!(
                "haptwin demo: {} s on the phantom block at 1 kHz with the device in your hand: \
                 move the stylus down onto the tissue (Ctrl-C stops cleanly)...",
                args.seconds.unwrap_or(opts.scenario.time_limit_s)
            ),
            _ => eprintln!(
                "haptwin demo: {} ({:?} performance) on the phantom at 1 kHz (Ctrl-C stops \
                 cleanly)...",
                opts.scenario.title, opts.skill
            ),
        }
    }
    let report = demo::run_demo(&opts, interrupt).context("the demo failed")?;
    let stored = if args.no_store {
        None
    } else {
        Some(dashboard::store_demo(&report.log_path, args.db.as_deref()))
    };
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(s) = &stored {
            v["store"] = match s {
                Ok((id, target)) => serde_json::json!({"session_id": id, "db": target}),
                Err(e) => serde_json::json!({"error": format!("{e:#}")}),
            };
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_demo("demo", &report);
        match &stored {
            Some(Ok((id, target))) => println!(
                "  dashboard: stored as session {id} (the demo resident's) in {target}; \
                 see it with `haptwin serve`"
            ),
            Some(Err(e)) => eprintln!("haptwin demo: not stored for the dashboard: {e:#}"),
            None => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_twin(what: TwinCmd) -> anyhow::Result<ExitCode> {
    use haptwin::twin::{build, export, format::Twin, tets::TetOptions};
    match what {
        TwinCmd::Build {
            input,
            labels,
            preset,
            tets,
            surface_triangles,
            materials,
            modality,
            series,
            all_tissues,
            output,
            json,
        } => {
            use haptwin::twin::pipeline::{build_twin_with_progress, TwinBuildOptions};
            use std::io::IsTerminal;
            if !json {
                eprintln!("haptwin twin build: {}", input.display());
            }
            let started = std::time::Instant::now();
            let tty = std::io::stderr().is_terminal();
            let mut progress = |stage: u32, what: &str| {
                if !json {
                    let line = format!(
                        "  [{stage}/4] {what} ({:.1} s)",
                        started.elapsed().as_secs_f64()
                    );
                    if tty {
                        eprint!("\r\x1b[2K{line}");
                    } else {
                        eprintln!("{line}");
                    }
                }
            };
            let built = build_twin_with_progress(
                &TwinBuildOptions {
                    input,
                    labels,
                    preset,
                    tets,
                    surface_triangles,
                    materials,
                    modality,
                    series,
                    all_tissues,
                },
                &mut progress,
            );
            if tty && !json {
                eprintln!();
            }
            let (twin, report) = built?;
            twin.save(&output)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "output": output,
                        "report": report,
                        "header": twin.header,
                    }))?
                );
            } else {
                println!(
                    "  import {:.2} s, labels {:.2} s ({}), surface {:.2} s, tets {:.2} s: {:.2} s in all",
                    report.import_s,
                    report.labels_s,
                    report.labels_from,
                    report.surface_s,
                    report.tets_s,
                    report.total_s
                );
                for n in &report.notes {
                    println!("  note: {n}");
                }
                let bytes = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
                print_twin_info(&output, &twin, bytes, 0.0);
            }
            Ok(ExitCode::SUCCESS)
        }
        TwinCmd::Phantom {
            output,
            tets,
            voxel_mm,
            dicom,
            nifti,
            labels_nifti,
            json,
        } => {
            if dicom.is_some() || nifti.is_some() || labels_nifti.is_some() {
                let (ct, labels) = haptwin::twin::phantom::phantom(voxel_mm * 1e-3)
                    .context("cannot sample the phantom")?;
                if let Some(dir) = &dicom {
                    let files = haptwin::twin::dicom::write_series(
                        &ct,
                        dir,
                        &haptwin::twin::dicom::WriteOptions::default(),
                    )?;
                    eprintln!(
                        "  wrote {} DICOM slices into {}",
                        files.len(),
                        dir.display()
                    );
                }
                if let Some(path) = &nifti {
                    haptwin::twin::nifti::write_nifti(&ct, path)?;
                    eprintln!("  wrote {}", path.display());
                }
                if let Some(path) = &labels_nifti {
                    haptwin::twin::nifti::write_nifti(&labels, path)?;
                    eprintln!("  wrote {}", path.display());
                }
            }
            let t0 = std::time::Instant::now();
            let twin = build::phantom_twin(
                voxel_mm * 1e-3,
                &TetOptions {
                    target_tets: tets,
                    ..TetOptions::default()
                },
            )
            .context("cannot build the phantom")?;
            twin.save(&output)?;
            let seconds = t0.elapsed().as_secs_f64();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "output": output,
                        "seconds": seconds,
                        "header": twin.header,
                    }))?
                );
            } else {
                println!(
                    "haptwin twin phantom: {} ({} tets, {} particles, {:.1} mm cells) in {:.2} s",
                    output.display(),
                    twin.header.tets,
                    twin.header.particles,
                    twin.header.quality.cell_m * 1e3,
                    seconds
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TwinCmd::Info { path, json } => {
            let t0 = std::time::Instant::now();
            let twin = Twin::load(&path)?;
            let load_ms = t0.elapsed().as_secs_f64() * 1e3;
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "path": path,
                        "file_bytes": bytes,
                        "load_ms": load_ms,
                        "header": twin.header,
                    }))?
                );
            } else {
                print_twin_info(&path, &twin, bytes, load_ms);
            }
            Ok(ExitCode::SUCCESS)
        }
        TwinCmd::Export {
            path,
            format,
            output,
        } => {
            let twin = Twin::load(&path)?;
            export::export(&twin, format, &output)?;
            println!("haptwin twin export: wrote {}", output.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_twin_info(
    path: &std::path::Path,
    twin: &haptwin::twin::format::Twin,
    bytes: u64,
    load_ms: f64,
) {
    let h = &twin.header;
    let p = &h.provenance;
    let g = &p.grid;
    println!(
        "{}: case {} ({} bytes, loaded in {:.1} ms)",
        path.display(),
        p.case_id,
        bytes,
        load_ms
    );
    println!(
        "  source: {} {} ({} files{}), grid {} x {} x {} at {:.3} x {:.3} x {:.3} mm, intensities in {}",
        p.source_format,
        p.modality,
        p.files,
        p.transfer_syntax
            .as_deref()
            .map_or(String::new(), |t| format!(", {t}")),
        g.dims[0],
        g.dims[1],
        g.dims[2],
        g.spacing_m[0] * 1e3,
        g.spacing_m[1] * 1e3,
        g.spacing_m[2] * 1e3,
        p.intensity_unit
    );
    println!(
        "  de-identification: {} ({} elements changed)",
        p.deidentification.method, p.deidentification.elements_changed
    );
    let q = &h.quality;
    println!(
        "  mesh: {} tets, {} particles, {:.2} mm cells, {} inverted, dihedral angles {:.1} to {:.1} degrees",
        q.tets, q.particles, q.cell_m * 1e3, q.inverted, q.min_dihedral_deg, q.max_dihedral_deg
    );
    for m in &h.materials {
        let name = haptwin::twin::labels::Label::from_u8(m.label).map_or("?", |l| l.name());
        println!(
            "  {name}: E {:.0} Pa, nu {:.2}, {:.0} kg/m^3, {:.1} ml meshed",
            m.youngs_modulus_pa,
            m.poisson_ratio,
            m.density_kg_per_m3,
            q.volume_m3_by_label
                .iter()
                .find(|(l, _)| *l == m.label)
                .map_or(0.0, |(_, v)| v * 1e6)
        );
    }
    println!(
        "  surface: {} vertices, {} triangles; written by haptwin {}",
        h.surface_vertices, h.surface_triangles, h.software_version
    );
}

/// Where `haptwin calibrate` writes by default.
fn default_calibration_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".config"),
            None => anyhow::bail!("neither XDG_CONFIG_HOME nor HOME is set: give --out DIR"),
        },
    };
    Ok(base.join("haptwin").join("calibration"))
}

fn print_calibration(r: &haptwin::haptics::calibrate::CalibrateReport) {
    let c = &r.result;
    println!("haptwin calibrate {}:", c.device);
    println!(
        "  home pose: counts read {:?}; encoder offsets now {:?}",
        c.home_counts_read, c.encoder_offset_counts
    );
    let reg = &c.registration;
    println!(
        "  registration: {} points, residual {:.3} mm RMS, {:.3} mm largest; device origin at \
         ({:.4}, {:.4}, {:.4}) m in the world",
        reg.points,
        reg.residual_rms_m * 1e3,
        reg.residual_max_m * 1e3,
        reg.translation_m[0],
        reg.translation_m[1],
        reg.translation_m[2]
    );
    println!(
        "  force check: gauge / command = {:.4}; torque constants scaled by it",
        c.force_scale
    );
    if let Some(e) = &r.emulated_truth_error {
        println!(
            "  (emulated arm: {:.3} mm and {:.3} degrees from where it stands, force scale off \
             by {:+.4})",
            e.translation_m * 1e3,
            e.rotation_deg,
            e.force_scale
        );
    }
    println!("  wrote {}", r.config_path.display());
    println!("  wrote {}", r.registration_path.display());
}

fn print_demo(command: &str, r: &DemoReport) {
    println!(
        "haptwin {command} {}: {} ticks in {:.3} s ({:.1} Hz)",
        r.stop_reason, r.ticks, r.seconds, r.rate_hz
    );
    println!(
        "  tick lateness p50 {} us, p99 {} us, p99.9 {} us, max {} us; overruns {}",
        r.lateness_us.p50, r.lateness_us.p99, r.lateness_us.p999, r.lateness_us.max, r.overruns
    );
    println!(
        "  tick work p50 {} us, p99 {} us, max {} us",
        r.tick_work_us.p50, r.tick_work_us.p99, r.tick_work_us.max
    );
    println!("  real-time scheduling: {}", describe_realtime(&r.realtime));
    println!(
        "  tissue: {} particles, {} tets; peak force {:.3} N; final force {:?} N",
        r.tissue.particles, r.tissue.tets, r.peak_force_n, r.final_force_n
    );
    println!(
        "  session log: {} ({} tick records, {} telemetry drops)",
        r.log_path.display(),
        r.log_records,
        r.telemetry_dropped
    );
    match &r.render {
        RenderStatus::Rendered {
            device,
            frames_dir,
            display,
            views,
            frame_ms,
            gpu_ms,
            ..
        } => {
            let place = match (display.as_str(), frames_dir) {
                ("headless", Some(p)) => format!("into {}", p.display()),
                (d, _) => format!("on the {d} display"),
            };
            println!(
                "  frames: {} rendered ({} view{}) on {device} {place}",
                r.frames_rendered,
                views,
                if *views == 1 { "" } else { "s" }
            );
            if let Some(f) = frame_ms {
                print!("  frame time: CPU p50 {:.2} ms, p99 {:.2} ms", f.p50, f.p99);
                match gpu_ms {
                    Some(g) => println!("; GPU p50 {:.2} ms, p99 {:.2} ms", g.p50, g.p99),
                    None => println!(),
                }
            }
        }
        RenderStatus::Skipped { reason } => println!("  frames: none ({reason})"),
        other => println!("  frames: {other:?}"),
    }
    if let Some(v) = &r.replay {
        match v.first_mismatch_tick {
            None => println!(
                "  replay: all {} forces identical to the recording, bit for bit",
                v.compared
            ),
            Some(t) => println!(
                "  replay: {} of {} forces differ from the recording, the first at tick {t}",
                v.mismatches, v.compared
            ),
        }
    }
    if let Some(w) = &r.watchdog {
        println!(
            "  watchdog: {} trips, {} zero writes, longest haptic silence {:.1} ms",
            w.trips,
            w.zero_writes,
            w.longest_silence_s * 1e3
        );
    }
    if let Some(card) = &r.score {
        println!("score ({}):", r.scenario);
        print!("{}", haptwin::review::card_text(card));
    }
    if let Some(p) = &r.score_path {
        println!("  score card: {}", p.display());
    }
    if let Some(p) = &r.report_path {
        println!("  report: {} (open it in a browser)", p.display());
    }
}

fn print_devices(r: &doctor::DevicesReport) {
    if let Some(e) = &r.hid.error {
        println!("haptwin devices: HID unavailable: {e}");
        return;
    }
    println!("haptwin devices: {} HID device(s)", r.hid.devices.len());
    for d in &r.hid.devices {
        println!(
            "  {} {} at {}: {}{}",
            d.vid_pid,
            d.product.as_deref().unwrap_or("(no product string)"),
            d.path,
            d.profile
                .map_or("no haptwin profile".to_string(), |p| format!("profile {p}")),
            if d.accessible {
                ", can be opened"
            } else {
                ", NOT accessible"
            }
        );
        if !d.generic_profiles.is_empty() {
            println!(
                "    generic profiles with this id: {} (demo --device generic:NAME)",
                d.generic_profiles.join(", ")
            );
        }
        if let Some(fix) = &d.fix {
            println!("    fix: {fix}");
        }
    }
    let known: Vec<String> = r
        .known_profiles
        .iter()
        .map(|k| format!("{} ({:04x}:{:04x})", k.name, k.vendor_id, k.product_id))
        .collect();
    println!("  profiles: {}", known.join(", "));
    println!(
        "  udev rules: {} (install: {})",
        r.udev_rules, r.udev_install
    );
}

fn print_doctor(r: &doctor::DoctorReport) {
    println!(
        "haptwin doctor: {} CPUs, kernel {}",
        r.cpus,
        r.kernel.as_deref().unwrap_or("?")
    );
    match &r.vulkan.error {
        Some(e) => println!("  Vulkan: unavailable: {e}"),
        None => {
            println!("  Vulkan: {} device(s)", r.vulkan.devices.len());
            for d in &r.vulkan.devices {
                println!(
                    "    - {} ({}, Vulkan {})",
                    d.name, d.device_type, d.api_version
                );
            }
        }
    }
    match (&r.openxr.runtime, &r.openxr.error) {
        (Some(rt), _) => println!("  OpenXR: runtime {rt}"),
        (None, Some(e)) => println!("  OpenXR: none: {e}"),
        (None, None) => println!("  OpenXR: none"),
    }
    match &r.hid.error {
        Some(e) => println!("  HID: unavailable: {e}"),
        None => {
            println!("  HID: {} device(s)", r.hid.devices.len());
            for d in &r.hid.devices {
                println!(
                    "    - {} {} at {}",
                    d.vid_pid,
                    d.product.as_deref().unwrap_or(""),
                    d.path
                );
                if let Some(fix) = &d.fix {
                    println!("      no permission to open it: {fix}");
                }
            }
        }
    }
    println!("  real-time: {}", describe_realtime(&r.realtime.sched_fifo));
    let t = &r.timer;
    println!(
        "  bare timer ({} ticks of {} us, spin {} us): lateness p50 {} us, p99 {} us, p99.9 {} us, max {} us; overruns {}",
        t.ticks, t.period_us, t.spin_us, t.lateness_us.p50, t.lateness_us.p99, t.lateness_us.p999, t.lateness_us.max, t.overruns
    );
}

fn describe_realtime(status: &RealtimeStatus) -> String {
    match status {
        RealtimeStatus::Granted { priority } => format!("SCHED_FIFO priority {priority} granted"),
        RealtimeStatus::Refused { reason } => {
            format!("REFUSED, the haptic thread runs under the normal scheduler: {reason}")
        }
        RealtimeStatus::NotRequested => "not requested".into(),
        other => format!("{other:?}"),
    }
}

fn print_bench_serve(r: &haptwin::bench::ServeBenchReport) {
    println!(
        "haptwin bench serve: {} clients for {} s on loopback; {} workers, {} store ({} pooled \
         connections); {} CPUs shared by clients and server",
        r.clients, r.seconds, r.workers, r.store, r.pool_connections, r.cpus
    );
    println!(
        "  store: 1 cohort, {} residents, {} sessions (set up and logged in in {:.1} s)",
        r.residents, r.sessions, r.setup_s
    );
    if let Some(load) = r.load_average_before {
        println!("  load average (1 min) before the clients started: {load:.2}");
    }
    println!(
        "  connecting (each client's first request, {}, untimed): p50 {:.2} ms, max {:.2} ms",
        if r.connect_all_at_once {
            "all at once"
        } else {
            "one after another"
        },
        r.connect_ms.p50,
        r.connect_ms.max
    );
    if r.connect_ms.max > 1000.0 {
        println!(
            "    (a new connection waited over a second for one of tiny_http's connection \
             threads: see docs/performance.md, Dashboard)"
        );
    }
    println!(
        "  {} requests in {:.1} s = {:.0} requests/s, {} errors; {:.1} MB read ({:.1} MB/s, replays decoded)",
        r.requests,
        r.elapsed_s,
        r.requests_per_s,
        r.errors,
        r.bytes as f64 / 1e6,
        r.bytes as f64 / 1e6 / r.elapsed_s.max(1e-9)
    );
    println!(
        "  {:<8} {:<30} {:>8} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "kind",
        "route",
        "requests",
        "req/s",
        "kB/answer",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors"
    );
    let row = |kind: &str,
               route: &str,
               n: u64,
               rps: f64,
               kb: f64,
               l: &haptwin::bench::serve::LatencyMs,
               e: u64| {
        println!(
            "  {kind:<8} {route:<30} {n:>8} {rps:>7.1} {kb:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {e:>6}",
            l.p50, l.p90, l.p99, l.max
        );
    };
    for k in &r.routes {
        row(
            k.kind,
            k.route,
            k.requests,
            k.requests_per_s,
            k.mean_bytes / 1e3,
            &k.latency_ms,
            k.errors,
        );
    }
    row(
        "all",
        "",
        r.requests,
        r.requests_per_s,
        r.bytes as f64 / 1e3 / (r.requests - r.errors).max(1) as f64,
        &r.latency_ms,
        r.errors,
    );
    for e in &r.first_errors {
        println!("  error: {e}");
    }
}

fn print_bench_haptic(r: &haptwin::bench::HapticBenchReport) {
    let (b, h) = (&r.bare_timer, &r.haptic);
    println!("haptwin bench haptic: {}", r.case);
    println!(
        "  {:<12} {:>7} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "loop", "ticks", "late p50", "late p99", "late p999", "late max", "overruns"
    );
    println!(
        "  {:<12} {:>7} {:>8.1}us {:>8.1}us {:>8.1}us {:>8.1}us {:>9}",
        "bare timer",
        b.ticks,
        b.lateness_us.p50,
        b.lateness_us.p99,
        b.lateness_us.p999,
        b.lateness_us.max,
        b.overruns
    );
    println!(
        "  {:<12} {:>7} {:>8.1}us {:>8.1}us {:>8.1}us {:>8.1}us {:>9}",
        "haptic loop",
        h.ticks,
        h.lateness_us.p50,
        h.lateness_us.p99,
        h.lateness_us.p999,
        h.lateness_us.max,
        h.overruns
    );
    println!(
        "  p99 lateness ratio {:.2} (goal <= 1.2); tick work p50 {:.1} us, p99 {:.1} us (goal <= {:.0} us); fault ticks {}",
        r.lateness_p99_ratio,
        h.tick_work_us.p50,
        h.tick_work_us.p99,
        r.tick_work_p99_goal_us,
        h.fault_ticks
    );
}

fn print_bench(r: &haptwin::bench::BenchReport) {
    let c = &r.config;
    println!(
        "haptwin bench tissue: dt {} s, {} substeps x {} iteration, {} thread, {}, {}",
        c.dt_s, c.substeps, c.iterations_per_substep, c.threads, c.precision, c.simd
    );
    println!(
        "  blocks of {} mm cells, liver E {} Pa with a tumour of E {} Pa, nu {}, {} kg/m^3; 1 cm sphere 5 mm in",
        c.cell_m * 1000.0,
        c.youngs_modulus_pa,
        c.tumour_youngs_modulus_pa,
        c.poisson_ratio,
        c.density_kg_per_m3
    );
    println!(
        "  {:>7} {:>9} {:>7} {:>12} {:>12} {:>9} {:>9} {:>9}",
        "tets",
        "particles",
        "colours",
        "step p50 us",
        "step p99 us",
        "tets/ms",
        "proj/ms",
        "inverted"
    );
    for s in &r.sizes {
        println!(
            "  {:>7} {:>9} {:>7} {:>12} {:>12} {:>9} {:>9} {:>9}",
            s.tets,
            s.particles,
            s.colours,
            s.step_us.p50,
            s.step_us.p99,
            s.tets_per_ms,
            s.tet_projections_per_ms,
            s.inverted_tets
        );
    }
    let a = &r.accuracy;
    for b in &a.cantilever {
        println!(
            "  cantilever {:>2} cells across ({:>5} tets): sag {:.3} mm vs beam formula {:.3} mm: {:+.1} % (settled after {:.1} s: {})",
            b.cells_across,
            b.tets,
            b.result.measured_m * 1000.0,
            b.result.expected_m * 1000.0,
            b.result.error_pct,
            b.result.settled_after_s,
            b.result.settled
        );
    }
    for h in &a.hertz {
        println!(
            "  hertz {:.0} mm: {:.4} N vs {:.4} N: {:+.1} %",
            h.depth_m * 1000.0,
            h.force_n,
            h.hertz_n,
            h.error_pct
        );
    }
    println!(
        "  stretch 1 %: Poisson ratio {:.3} (material 0.45), {:.3} (material 0.49); 10 % at nu 0.49: volume {:+.2} %",
        a.stretch_nu_045.poisson_ratio,
        a.stretch_nu_049.poisson_ratio,
        a.stretch_10pct_nu_049.volume_change * 100.0
    );
    if let Some(k) = &r.anchors {
        println!(
            "  against the PBD anchors at {} tets: {:.1}x its accurate throughput ({} tets/ms), {:.1}x its raw one ({} tets/ms)",
            k.tets,
            k.accurate_throughput_ratio,
            k.anchor_accurate_tets_per_ms,
            k.raw_throughput_ratio,
            k.anchor_raw_tets_per_ms
        );
    }
}
