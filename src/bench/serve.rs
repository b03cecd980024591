//! `haptwin bench serve`: the instructors' dashboard under load, on loopback.
//!
//! Builds a store with realistic content (one cohort, its instructor, residents and their
//! sessions: two real sessions recorded with the demo and ingested, copied under other digests
//! to the other residents), starts [`crate::serve::start`] on `127.0.0.1:0`, logs in as the
//! instructor through the login form, then runs concurrent clients for a fixed time, each with
//! its own connection and the login cookie, over a mix of the pages an instructor reads:
//! session pages (most of them, random sessions), the cohort page, the home page and the replay
//! viewer's frames. Every answer must be a 200 with its page's markers in the body; anything
//! else is an error, and the first few are kept. Before the timed run each client opens its
//! connection with one `GET /healthz`, one client after another (or all at once, on request);
//! that first request is reported on its own.
//!
//! Figures, not assertions: requests per second and latency percentiles (each request from
//! before it is sent until its whole body is read, the client's own work on the same machine
//! included). Every client stops sending at the deadline and each request has a time limit,
//! so the run ends a bounded time after it was asked to.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::serve::{self, ServeConfig, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::stats::Histogram;
use crate::store::ingest::{ingest_file, IngestTarget};
use crate::store::{random_hex, sha256_hex, NewSession, Role, Store, Target, User};

/// Settings of `haptwin bench serve`.
#[derive(Debug, Clone)]
pub struct ServeBenchOptions {
    /// Concurrent clients, each with its own connection.
    pub clients: usize,
    /// How long the clients send requests, seconds.
    pub seconds: f64,
    /// The server's worker threads.
    pub workers: usize,
    /// The store: `None` for a fresh SQLite file in `out_dir`, or a PostgreSQL URL (a scratch
    /// database: the run adds its users, cohort and sessions to it and leaves them there).
    pub db: Option<String>,
    /// Folder for the recorded sessions, the kept logs and the SQLite file.
    pub out_dir: PathBuf,
    /// Residents in the cohort.
    pub residents: usize,
    /// Sessions across them (at least the two recorded ones).
    pub sessions: usize,
    /// Open the clients' connections all at once instead of one after another (tiny_http
    /// 0.12 can then leave a new connection unserved for seconds: see
    /// `docs/performance.md`).
    pub connect_all_at_once: bool,
}

impl Default for ServeBenchOptions {
    fn default() -> Self {
        Self {
            clients: 50,
            seconds: 30.0,
            workers: ServeConfig::default().workers,
            db: None,
            out_dir: PathBuf::from("out/bench-serve"),
            residents: 10,
            sessions: 80,
            connect_all_at_once: false,
        }
    }
}

/// The kinds of request the clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// `GET /sessions/{id}`, a random session.
    Session,
    /// `GET /cohorts/{id}`.
    Cohort,
    /// `GET /`.
    Home,
    /// `GET /api/sessions/{id}/replay`, a random session (gzipped JSON, decoded by the client
    /// as a browser does).
    Replay,
}

impl RouteKind {
    /// Every kind, in report order.
    pub const ALL: [RouteKind; 4] = [
        RouteKind::Session,
        RouteKind::Cohort,
        RouteKind::Home,
        RouteKind::Replay,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            RouteKind::Session => "session",
            RouteKind::Cohort => "cohort",
            RouteKind::Home => "home",
            RouteKind::Replay => "replay",
        }
    }

    /// The route, as a pattern.
    pub fn route(self) -> &'static str {
        match self {
            RouteKind::Session => "GET /sessions/{id}",
            RouteKind::Cohort => "GET /cohorts/{id}",
            RouteKind::Home => "GET /",
            RouteKind::Replay => "GET /api/sessions/{id}/replay",
        }
    }

    /// Percent of the requests of this kind.
    pub fn share_percent(self) -> u32 {
        match self {
            RouteKind::Session => 70,
            RouteKind::Cohort => 10,
            RouteKind::Home => 10,
            RouteKind::Replay => 10,
        }
    }

    /// What a good answer's body contains (a session page: its metrics, and the replay
    /// viewer, which it shows only when replay frames are stored).
    pub fn markers(self) -> &'static [&'static str] {
        match self {
            RouteKind::Session => &["id=\"metrics\"", "id=\"replay\""],
            RouteKind::Cohort => &["id=\"cohort-matrix\""],
            RouteKind::Home => &["<h2>Recent sessions</h2>"],
            RouteKind::Replay => &["\"frames\""],
        }
    }

    fn index(self) -> usize {
        match self {
            RouteKind::Session => 0,
            RouteKind::Cohort => 1,
            RouteKind::Home => 2,
            RouteKind::Replay => 3,
        }
    }

    /// The kind for a number drawn in 0..100.
    fn of_draw(d: u32) -> RouteKind {
        let mut acc = 0;
        for k in RouteKind::ALL {
            acc += k.share_percent();
            if d < acc {
                return k;
            }
        }
        RouteKind::Session
    }
}

/// Latency percentiles, milliseconds (to 1 µs; the histogram keeps each value to about 3 %).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencyMs {
    fn of(h: &Histogram) -> Self {
        let ms = |ns: f64| (ns / 1e3).round() / 1e3;
        Self {
            p50: ms(h.quantile(0.50) as f64),
            p90: ms(h.quantile(0.90) as f64),
            p99: ms(h.quantile(0.99) as f64),
            max: ms(h.max() as f64),
            mean: ms(h.mean()),
        }
    }
}

/// One kind of request's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteFigures {
    /// `session`, `cohort`, `home` or `replay`.
    pub kind: &'static str,
    /// The route.
    pub route: &'static str,
    /// Requests sent (answered or not).
    pub requests: u64,
    /// Requests that were not a 200 with the expected body.
    pub errors: u64,
    /// Requests per second over the run.
    pub requests_per_s: f64,
    /// Body bytes the clients read (the replay's as decoded: the client, like a browser,
    /// decodes its gzip).
    pub bytes: u64,
    /// Mean body bytes per answer.
    pub mean_bytes: f64,
    /// Latency of every request of this kind.
    pub latency_ms: LatencyMs,
}

/// What `haptwin bench serve` measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServeBenchReport {
    /// `sqlite` or `postgresql`.
    pub store: &'static str,
    /// The store, as shown to people (no password).
    pub store_target: String,
    /// The server's worker threads.
    pub workers: usize,
    /// The store's pooled connections.
    pub pool_connections: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Seconds the clients were asked to run.
    pub seconds: f64,
    /// Seconds from the clients' start until the last one finished.
    pub elapsed_s: f64,
    /// CPUs of this machine (clients and server share them).
    pub cpus: usize,
    /// Residents in the cohort.
    pub residents: usize,
    /// Sessions the instructor may see.
    pub sessions: usize,
    /// Seconds spent recording, ingesting and copying the sessions and logging in.
    pub setup_s: f64,
    /// The system's one-minute load average just before the clients started (the set-up's
    /// own work included; `None` where there is no `/proc/loadavg`): figures taken while
    /// other work ran on the machine are not comparable.
    pub load_average_before: Option<f64>,
    /// Whether the clients connected all at once (else one after another).
    pub connect_all_at_once: bool,
    /// Each client's first request (`GET /healthz` on a new connection, before the timed
    /// run; not in the figures below).
    pub connect_ms: LatencyMs,
    /// Requests sent.
    pub requests: u64,
    /// Requests that were not a 200 with the expected body (the goal: zero).
    pub errors: u64,
    /// The first few errors, described.
    pub first_errors: Vec<String>,
    /// Requests per second over the run.
    pub requests_per_s: f64,
    /// Body bytes the clients read (replays decoded).
    pub bytes: u64,
    /// Latency of every request.
    pub latency_ms: LatencyMs,
    /// By kind of request.
    pub routes: Vec<RouteFigures>,
}

impl ServeBenchReport {
    /// The figures of one kind of request.
    pub fn route(&self, kind: RouteKind) -> Option<&RouteFigures> {
        self.routes.iter().find(|r| r.kind == kind.name())
    }
}

/// Why the load test could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeBenchError {
    /// The options make no run (no clients, no time).
    #[error("{0}")]
    Options(String),
    /// The output folder could not be made or cleared.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Recording a session failed.
    #[error("recording a session: {0}")]
    Demo(#[from] crate::demo::DemoError),
    /// Ingesting a recorded session failed.
    #[error("ingesting a recorded session: {0}")]
    Ingest(#[from] crate::store::ingest::IngestError),
    /// The server did not start.
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    /// Logging in through the form failed.
    #[error("logging in: {0}")]
    Login(String),
}

/// Most errors described in the report.
pub const FIRST_ERRORS: usize = 8;
/// Longest any one request may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Most requests one client sends, however fast the server is.
pub const MAX_REQUESTS_PER_CLIENT: u64 = 10_000_000;
/// Largest body a client reads (the replay's decoded JSON is a few MB).
const MAX_BODY_BYTES: u64 = 256 << 20;

/// The store, its users and the session ids the clients read.
struct Fixture {
    store: Store,
    instructor: (String, String),
    cohort_id: i64,
    session_ids: Vec<i64>,
    residents: usize,
}

/// Runs the load test.
pub fn bench_serve(opts: &ServeBenchOptions) -> Result<ServeBenchReport, ServeBenchError> {
    if opts.clients == 0 || !(opts.seconds > 0.0 && opts.seconds.is_finite()) {
        return Err(ServeBenchError::Options(
            "the load test needs at least one client and a positive number of seconds".into(),
        ));
    }
    let setup = Instant::now();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServeBenchError::Io { path, source }
    };
    std::fs::create_dir_all(&opts.out_dir).map_err(io(&opts.out_dir))?;
    let workers = opts.workers.max(1);
    let pool_connections = serve::store_connections(workers);
    let target = match &opts.db {
        Some(url) => Target::parse(url).map_err(crate::store::StoreError::from)?,
        None => {
            let path = opts.out_dir.join("bench-serve.db");
            remove_sqlite(&path).map_err(io(&path))?;
            Target::Sqlite(path)
        }
    };
    let fixture = build_fixture(&target, pool_connections, opts)?;
    let sessions = fixture.session_ids.len();
    let running = serve::start(
        Arc::new(fixture.store),
        ServeConfig {
            addr: "127.0.0.1:0".into(),
            workers,
            data_dir: opts.out_dir.join("data"),
            ..ServeConfig::default()
        },
    )?;
    let base = format!("http://{}", running.addr);
    let cookie = match login(&base, &fixture.instructor.0, &fixture.instructor.1) {
        Ok(c) => c,
        Err(e) => {
            running.shutdown();
            return Err(e);
        }
    };
    let setup_s = setup.elapsed().as_secs_f64();
    let load_average_before = load_average();

    let plan = Arc::new(Plan {
        base,
        cookie,
        cohort_id: fixture.cohort_id,
        session_ids: fixture.session_ids,
        duration: Duration::from_secs_f64(opts.seconds),
    });
    let gate = Arc::new(Gate::default());
    let mut threads = Vec::with_capacity(opts.clients);
    let ready_by = Instant::now() + READY_WAIT;
    for i in 0..opts.clients {
        if !opts.connect_all_at_once {
            // The next client connects once the one before has its answer.
            gate.wait_ready(i, ready_by.saturating_duration_since(Instant::now()));
        }
        let (plan, held) = (plan.clone(), gate.clone());
        match std::thread::Builder::new()
            .name(format!("bench-client-{i}"))
            .spawn(move || client(i as u64, &plan, &held))
        {
            Ok(t) => threads.push(t),
            Err(source) => {
                // The clients started so far end without sending.
                gate.open(false);
                for t in threads {
                    let _ = t.join();
                }
                running.shutdown();
                return Err(ServeBenchError::Io {
                    path: PathBuf::from("(a client thread)"),
                    source,
                });
            }
        }
    }
    let ready = gate.wait_ready(
        opts.clients,
        ready_by.saturating_duration_since(Instant::now()),
    );
    gate.open(true);
    let t0 = Instant::now();
    let mut total = Tally::default();
    for t in threads {
        match t.join() {
            Ok(tally) => total.merge(tally),
            Err(_) => total.note_error("a client thread panicked".into(), None),
        }
    }
    let elapsed_s = t0.elapsed().as_secs_f64();
    if ready < opts.clients {
        total.note_error(
            format!(
                "{} of {} clients had not connected after {} s",
                opts.clients - ready,
                opts.clients,
                READY_WAIT.as_secs()
            ),
            None,
        );
    }
    running.shutdown();
    if let Target::Sqlite(p) = &target {
        let _ = remove_sqlite(p);
    }

    let per_s = |n: u64| n as f64 / elapsed_s.max(1e-9);
    let mut all = Histogram::new();
    let mut routes = Vec::new();
    for k in RouteKind::ALL {
        let r = &total.routes[k.index()];
        all.merge(&r.latency);
        routes.push(RouteFigures {
            kind: k.name(),
            route: k.route(),
            requests: r.latency.count(),
            errors: r.errors,
            requests_per_s: per_s(r.latency.count()),
            bytes: r.bytes,
            mean_bytes: r.bytes as f64 / (r.latency.count() - r.errors).max(1) as f64,
            latency_ms: LatencyMs::of(&r.latency),
        });
    }
    let errors = total.routes.iter().map(|r| r.errors).sum::<u64>() + total.other_errors;
    let bytes = total.routes.iter().map(|r| r.bytes).sum();
    Ok(ServeBenchReport {
        store: if target.is_postgres() {
            "postgresql"
        } else {
            "sqlite"
        },
        store_target: target.to_string(),
        workers,
        pool_connections,
        clients: opts.clients,
        seconds: opts.seconds,
        elapsed_s,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        residents: fixture.residents,
        sessions,
        setup_s,
        load_average_before,
        connect_all_at_once: opts.connect_all_at_once,
        connect_ms: LatencyMs::of(&total.connect),
        requests: all.count(),
        errors,
        first_errors: total.first_errors,
        requests_per_s: per_s(all.count()),
        bytes,
        latency_ms: LatencyMs::of(&all),
        routes,
    })
}

/// The one-minute load average, where the system tells it.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Removes a SQLite file and its WAL and shared-memory files, if there.
fn remove_sqlite(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Fills the store: the cohort, its instructor and residents, two recorded sessions (an
/// expert's and a novice's), and copies of them for every resident.
fn build_fixture(
    target: &Target,
    connections: usize,
    opts: &ServeBenchOptions,
) -> Result<Fixture, ServeBenchError> {
    let store = Store::open(target, connections)?;
    // A run tag keeps names unique when a PostgreSQL database is used again.
    let run = random_hex(4)?;
    let cohort = store.create_cohort(&format!("Bench cohort {run}"))?;
    let instructor_pw = random_hex(12)?;
    let instructor = store.create_user(
        &format!("bench-instructor-{run}"),
        "Bench Instructor",
        Role::Instructor,
        &instructor_pw,
    )?;
    store.add_to_cohort(cohort.id, &instructor)?;
    let mut residents: Vec<User> = Vec::new();
    for i in 0..opts.residents.max(1) {
        let r = store.create_user(
            &format!("bench-resident-{run}-{i:02}"),
            &format!("Resident {:02}", i + 1),
            Role::Resident,
            &random_hex(12)?,
        )?;
        store.add_to_cohort(cohort.id, &r)?;
        residents.push(r);
    }

    // Two real sessions, recorded without rendering and ingested (scored by re-simulation,
    // plots drawn, replay frames sampled) as the first two residents'.
    let never = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let logs_dir = opts.out_dir.join("data").join("logs");
    let mut templates: Vec<NewSession> = Vec::new();
    let mut session_ids = Vec::new();
    for (i, skill) in [
        crate::score::performer::Skill::Expert,
        crate::score::performer::Skill::Novice,
    ]
    .into_iter()
    .enumerate()
    {
        let demo = crate::demo::run_demo(
            &crate::demo::DemoOptions {
                seconds: None,
                out_dir: opts.out_dir.join(format!("session-{}", i + 1)),
                render: false,
                realtime: false,
                skill,
                ..crate::demo::DemoOptions::default()
            },
            never.clone(),
        )?;
        let resident = &residents[i % residents.len()];
        let id = ingest_file(
            &store,
            &demo.log_path,
            &IngestTarget {
                resident_id: resident.id,
                station_id: None,
                logs_dir: logs_dir.clone(),
            },
        )?;
        // A log stored by an earlier run (same bytes) keeps its first owner.
        if store.can_view_session(&instructor, id)? {
            session_ids.push(id);
        }
        templates.push(template_of(&store, id)?);
    }

    // Copies under other digests (ingest keeps one session per log), spread over the
    // residents and back in time.
    let wanted = opts.sessions.max(templates.len());
    for k in 0..wanted.saturating_sub(session_ids.len()) {
        let mut s = templates[k % templates.len()].clone();
        s.resident_id = residents[(k + templates.len()) % residents.len()].id;
        s.log_sha256 = sha256_hex(format!("haptwin bench serve {run} {k}").as_bytes());
        s.card.started_unix_s = s.card.started_unix_s.saturating_sub(3600 * (k as u64 + 1));
        session_ids.push(store.insert_session(&s)?);
    }
    Ok(Fixture {
        store,
        instructor: (instructor.username, instructor_pw),
        cohort_id: cohort.id,
        session_ids,
        residents: residents.len(),
    })
}

/// A stored session as a [`NewSession`] to copy.
fn template_of(store: &Store, id: i64) -> Result<NewSession, ServeBenchError> {
    let missing = |what: &str| {
        ServeBenchError::Store(crate::store::StoreError::Invalid(format!(
            "session {id} was stored without {what}"
        )))
    };
    let d = store.session(id)?.ok_or_else(|| missing("its row"))?;
    let (log_path, log_sha256) = store.session_log(id)?.ok_or_else(|| missing("its log"))?;
    Ok(NewSession {
        resident_id: d.summary.resident_id,
        station_id: None,
        log_path,
        log_sha256,
        log_bytes: d.log_bytes.max(0) as u64,
        instrument: d.instrument,
        device: d.device,
        card: d.card,
        note: d.note,
        plots_html: store.session_plots(id)?.unwrap_or_default(),
        replay_gz: Some(
            store
                .session_replay(id)?
                .ok_or_else(|| missing("replay frames"))?,
        ),
    })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into()
}

/// The value `name` is set to by a response's `Set-Cookie` headers.
fn set_cookie(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Logs in through the form, as a browser does: the login page for its double-submit cookie
/// and token, then the form; the login cookie (`haptwin_session=...`).
fn login(base: &str, username: &str, password: &str) -> Result<String, ServeBenchError> {
    let fail = |m: String| ServeBenchError::Login(m);
    let agent = agent();
    let mut page = agent
        .get(format!("{base}/login"))
        .call()
        .map_err(|e| fail(format!("GET /login: {e}")))?;
    let csrf_cookie = set_cookie(&page, LOGIN_CSRF_COOKIE)
        .ok_or_else(|| fail("GET /login set no CSRF cookie".into()))?;
    let html = page
        .body_mut()
        .read_to_string()
        .map_err(|e| fail(format!("GET /login: {e}")))?;
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| fail("the login page has no CSRF field".into()))?;
    let form = format!(
        "csrf={}&username={}&password={}",
        serve::url_encode(token),
        serve::url_encode(username),
        serve::url_encode(password)
    );
    let resp = agent
        .post(format!("{base}/login"))
        .header("Cookie", format!("{LOGIN_CSRF_COOKIE}={csrf_cookie}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(form.as_bytes())
        .map_err(|e| fail(format!("POST /login: {e}")))?;
    if resp.status().as_u16() != 303 {
        return Err(fail(format!(
            "POST /login answered {} instead of 303",
            resp.status()
        )));
    }
    let token = set_cookie(&resp, SESSION_COOKIE)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| fail("POST /login set no login cookie".into()))?;
    Ok(format!("{SESSION_COOKIE}={token}"))
}

/// Holds the clients until every one has connected: the run starts when all are ready (or
/// after [`READY_WAIT`]), or ends before it began when a client could not be started.
#[derive(Default)]
struct Gate {
    /// Clients ready, and whether to go (`None`: not yet decided).
    state: Mutex<(usize, Option<bool>)>,
    changed: Condvar,
}

/// Longest the run waits for all the clients to connect.
pub const READY_WAIT: Duration = Duration::from_secs(2 * REQUEST_TIMEOUT.as_secs() + 10);

impl Gate {
    fn open(&self, go: bool) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = Some(go);
        self.changed.notify_all();
    }

    /// Waits (at most `limit`) until `clients` are ready; how many are.
    fn wait_ready(&self, clients: usize, limit: Duration) -> usize {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (s, _) = self
            .changed
            .wait_timeout_while(s, limit, |s| s.0 < clients)
            .unwrap_or_else(|e| e.into_inner());
        s.0
    }

    /// Says this client is ready, then waits until the gate opens; whether to go.
    fn ready_then_wait(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += 1;
        self.changed.notify_all();
        loop {
            if let Some(go) = s.1 {
                return go;
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// What every client reads.
struct Plan {
    base: String,
    cookie: String,
    cohort_id: i64,
    session_ids: Vec<i64>,
    duration: Duration,
}

/// One kind's counts.
#[derive(Default)]
struct RouteTally {
    latency: Histogram,
    errors: u64,
    bytes: u64,
}

/// One client's counts.
#[derive(Default)]
struct Tally {
    connect: Histogram,
    routes: [RouteTally; 4],
    other_errors: u64,
    first_errors: Vec<String>,
}

impl Tally {
    fn note_error(&mut self, what: String, kind: Option<RouteKind>) {
        match kind {
            Some(k) => self.routes[k.index()].errors += 1,
            None => self.other_errors += 1,
        }
        if self.first_errors.len() < FIRST_ERRORS {
            self.first_errors.push(what);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.connect.merge(&other.connect);
        for (a, b) in self.routes.iter_mut().zip(other.routes.iter()) {
            a.latency.merge(&b.latency);
            a.errors += b.errors;
            a.bytes += b.bytes;
        }
        self.other_errors += other.other_errors;
        for e in other.first_errors {
            if self.first_errors.len() < FIRST_ERRORS {
                self.first_errors.push(e);
            }
        }
    }
}

/// xorshift64*: each client's own sequence of routes and sessions, the same every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n.max(1)
    }
}

/// One client: its own connection, requests until the deadline (or
/// [`MAX_REQUESTS_PER_CLIENT`]).
fn client(index: u64, plan: &Plan, gate: &Gate) -> Tally {
    let agent = agent();
    let mut rng = Rng::new(index + 1);
    let mut tally = Tally::default();
    // The connection first; not part of the timed run.
    let t = Instant::now();
    match fetch(&agent, &plan.base, "/healthz", &plan.cookie) {
        Ok((200, body, _)) if body.starts_with(b"ok") => {}
        Ok((status, body, _)) => tally.note_error(
            format!("/healthz: status {status}: {}", snippet(&body)),
            None,
        ),
        Err(e) => tally.note_error(format!("/healthz: {e}"), None),
    }
    tally.connect.record(t.elapsed().as_nanos() as u64);
    if !gate.ready_then_wait() {
        return tally;
    }
    let deadline = Instant::now() + plan.duration;
    let mut sent = 0u64;
    while Instant::now() < deadline && sent < MAX_REQUESTS_PER_CLIENT {
        sent += 1;
        let kind = RouteKind::of_draw(rng.below(100) as u32);
        let session = plan.session_ids[rng.below(plan.session_ids.len() as u64) as usize];
        let path = match kind {
            RouteKind::Session => format!("/sessions/{session}"),
            RouteKind::Cohort => format!("/cohorts/{}", plan.cohort_id),
            RouteKind::Home => "/".to_string(),
            RouteKind::Replay => format!("/api/sessions/{session}/replay"),
        };
        let t = Instant::now();
        let outcome = fetch(&agent, &plan.base, &path, &plan.cookie);
        let ns = t.elapsed().as_nanos() as u64;
        let r = &mut tally.routes[kind.index()];
        r.latency.record(ns);
        match outcome {
            Ok((200, body, sent_bytes)) if missing(&body, kind).is_none() => {
                r.bytes += sent_bytes;
            }
            Ok((status, body, _)) => tally.note_error(
                format!(
                    "{path}: status {status}, {} body bytes{}",
                    body.len(),
                    if status == 200 {
                        format!(", no {} in the body", missing(&body, kind).unwrap_or(""))
                    } else {
                        format!(": {}", snippet(&body))
                    }
                ),
                Some(kind),
            ),
            Err(e) => tally.note_error(format!("{path}: {e}"), Some(kind)),
        }
    }
    tally
}

/// The first of `kind`'s markers that `body` lacks (`None`: it has them all).
fn missing(body: &[u8], kind: RouteKind) -> Option<&'static str> {
    let text = std::str::from_utf8(body).unwrap_or("");
    kind.markers().iter().copied().find(|m| !text.contains(m))
}

/// The start of a body, on one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(400)]);
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut s = words.join(" ");
    if s.len() > 160 {
        let mut cut = 160;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// One GET: its status, its (decoded) body and the body's size (`Content-Length`, which the
/// client drops when it decodes a gzipped body; else the decoded size).
fn fetch(
    agent: &ureq::Agent,
    base: &str,
    path: &str,
    cookie: &str,
) -> Result<(u16, Vec<u8>, u64), ureq::Error> {
    let mut resp = agent
        .get(format!("{base}{path}"))
        .header("Cookie", cookie)
        .call()?;
    let status = resp.status().as_u16();
    let sent: Option<u64> = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_vec()?;
    let n = sent.unwrap_or(body.len() as u64);
    Ok((status, body, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_draws_every_kind_in_its_share() {
        assert_eq!(
            RouteKind::ALL
                .iter()
                .map(|k| k.share_percent())
                .sum::<u32>(),
            100
        );
        let mut rng = Rng::new(7);
        let mut seen = [0u32; 4];
        for _ in 0..10_000 {
            seen[RouteKind::of_draw(rng.below(100) as u32).index()] += 1;
        }
        for k in RouteKind::ALL {
            let share = f64::from(seen[k.index()]) / 100.0;
            assert!(
                (share - f64::from(k.share_percent())).abs() < 3.0,
                "{}: {share} %",
                k.name()
            );
        }
    }
}
