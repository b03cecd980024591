//! The instructors' dashboard (`haptwin serve`) in a real browser: Debian's headless Chromium,
//! driven over WebDriver by `chromedriver` (package `chromium-driver`, installed by
//! `scripts/install-deps.sh`), against a server over a temporary SQLite store holding real,
//! recorded and ingested sessions.
//!
//! An instructor logs in through the login form, opens their cohort's matrix, clicks through to
//! a session, sees its metrics and plots, rates it on the OSATS form (stored, and shown after the
//! redirect) and logs out; a resident logs in and is refused another cohort's page (403). A
//! second test plays the session's replay and checks the canvas is drawn.
//!
//! Screenshots are kept in `target/test-artifacts/dashboard/`. Without `chromium` or
//! `chromedriver` the tests are skipped, unless `HAPTWIN_REQUIRE_BROWSER=1` (as
//! `scripts/test.sh` sets it), where they fail. Every wait is a bounded poll: one that runs
//! out fails with what it last saw.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use haptwin::demo::{run_demo, DemoOptions};
use haptwin::score::performer::Skill;
use haptwin::serve::{self, ServeConfig};
use haptwin::store::ingest::{ingest_bytes, IngestTarget};
use haptwin::store::{Role, Scale, Store, Target};
use serde_json::{json, Value};

/// Longest any one wait polls before failing.
const POLL_LIMIT: Duration = Duration::from_secs(30);
/// How often a wait looks again.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

const INSTRUCTOR: (&str, &str, &str) = ("inst", "Ines Tutor", "inst-password-1");
const RESIDENT: (&str, &str, &str) = ("res1", "Rae Resident", "res1-password-1");

/// Polls `f` until it answers `Ok`, for at most [`POLL_LIMIT`]; fails naming `what` and the
/// last answer.
fn poll<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("gave up waiting for {what} after {POLL_LIMIT:?}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(POLL_EVERY),
        }
    }
}

// ---- the tools --------------------------------------------------------------------------------

/// `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

/// Chromium and chromedriver, or `None` (the test is skipped) when one is missing and
/// `HAPTWIN_REQUIRE_BROWSER` is not `1`.
fn browser_tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let chromium = Some(PathBuf::from("/usr/bin/chromium"))
        .filter(|p| p.is_file())
        .or_else(|| on_path("chromium"));
    let driver = on_path("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => {
            let missing: Vec<&str> = [("chromium", c.is_none()), ("chromedriver", d.is_none())]
                .into_iter()
                .filter(|(_, m)| *m)
                .map(|(n, _)| n)
                .collect();
            let msg = format!(
                "{test}: {} not installed (scripts/install-deps.sh installs chromium and \
                 chromium-driver)",
                missing.join(" and ")
            );
            if std::env::var("HAPTWIN_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!("{msg}; HAPTWIN_REQUIRE_BROWSER=1 requires them");
            }
            eprintln!("skipped {msg}");
            None
        }
    }
}

/// Where the screenshots are kept.
fn artifact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/dashboard");
    std::fs::create_dir_all(&dir).expect("the artefact folder can be made");
    dir
}

// ---- a small WebDriver client -----------------------------------------------------------------

/// One browser: a chromedriver process (in its own process group, with Chromium under it) and
/// one WebDriver session. Dropping it ends the session and kills the group.
struct Browser {
    agent: ureq::Agent,
    /// `http://127.0.0.1:<chromedriver's port>/session/<id>`.
    session: String,
    driver: Child,
    /// chromedriver's stderr.
    driver_log: PathBuf,
    _dir: tempfile::TempDir,
}

/// A free TCP port on the loopback (free when asked; chromedriver may still lose it to
/// someone else, and [`Browser::start`] then tries another).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port()
}

/// Sends one WebDriver command; the answer's `value`, or the error as text.
fn wd(agent: &ureq::Agent, method: &str, url: &str, body: Option<&Value>) -> Result<Value, String> {
    let resp = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, b) => agent
            .post(url)
            .header("Content-Type", "application/json; charset=utf-8")
            .send(b.unwrap_or(&json!({})).to_string()),
    };
    let mut resp = resp.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .map_err(|e| format!("{method} {url}: reading the answer: {e}"))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{method} {url}: HTTP {status}, not JSON ({e}): {text:.300}"))?;
    if status >= 400 || v["value"].get("error").is_some_and(|e| !e.is_null()) {
        return Err(format!(
            "{method} {url}: HTTP {status}: {}: {}",
            v["value"]["error"].as_str().unwrap_or("?"),
            v["value"]["message"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    Ok(v["value"].clone())
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session in it.
    fn start(chromium: &Path, chromedriver: &Path) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let dir = tempfile::tempdir().unwrap();
        let driver_log = dir.path().join("chromedriver.stderr");
        let mut problems = Vec::new();
        for _ in 0..5 {
            let port = free_port();
            let mut driver = Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&driver_log).unwrap())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{} does not start: {e}", chromedriver.display()));
            // chromedriver says "ChromeDriver was started successfully on port N." once it
            // listens, or exits when the port is taken.
            let (tx, rx) = mpsc::channel();
            let stdout = driver.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line);
                }
            });
            let mut said = String::new();
            let listening = poll("chromedriver to start listening", || loop {
                match rx.try_recv() {
                    Ok(line) if line.contains("started successfully") => return Ok(true),
                    Ok(line) => said = line,
                    Err(mpsc::TryRecvError::Disconnected) => return Ok(false),
                    Err(mpsc::TryRecvError::Empty) => return Err(said.clone()),
                }
            });
            if !listening {
                let _ = driver.kill();
                let _ = driver.wait();
                problems.push(format!(
                    "port {port}: {}",
                    std::fs::read_to_string(&driver_log)
                        .unwrap_or_default()
                        .trim()
                ));
                continue;
            }
            let base = format!("http://127.0.0.1:{port}");
            poll("chromedriver's /status to say ready", || {
                let v = wd(&agent, "GET", &format!("{base}/status"), None)?;
                if v["ready"] == json!(true) {
                    Ok(())
                } else {
                    Err(v.to_string())
                }
            });
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.to_str().unwrap(),
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--window-size=1280,900", "--disable-dev-shm-usage",
                             "--hide-scrollbars", "--no-first-run"],
                },
            }}});
            let created = wd(&agent, "POST", &format!("{base}/session"), Some(&caps));
            let mut browser = Self {
                agent,
                session: String::new(),
                driver,
                driver_log,
                _dir: dir,
            };
            match created {
                Ok(v) => {
                    let id = v["sessionId"].as_str().expect("a session id").to_string();
                    browser.session = format!("{base}/session/{id}");
                    return browser;
                }
                Err(e) => panic!(
                    "chromedriver could not start Chromium ({}): {e}\nchromedriver: {}",
                    chromium.display(),
                    browser.driver_log_text()
                ),
            }
        }
        panic!("chromedriver did not start: {problems:#?}");
    }

    fn driver_log_text(&self) -> String {
        std::fs::read_to_string(&self.driver_log).unwrap_or_default()
    }

    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        wd(
            &self.agent,
            method,
            &format!("{}{path}", self.session),
            body,
        )
    }

    fn must(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.cmd(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver: {e}"))
    }

    fn goto(&self, url: &str) {
        self.must("POST", "/url", Some(&json!({ "url": url })));
    }

    fn try_url(&self) -> Result<String, String> {
        Ok(self
            .cmd("GET", "/url", None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    fn url(&self) -> String {
        self.try_url().unwrap_or_else(|e| panic!("WebDriver: {e}"))
    }

    /// The path part of the current URL (no query, no fragment).
    fn try_path(&self) -> Result<String, String> {
        let url = self.try_url()?;
        let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        let path = rest.find('/').map_or("/", |i| &rest[i..]);
        Ok(path.split(['?', '#']).next().unwrap_or("/").to_string())
    }

    /// Waits until the current path is `path`.
    fn wait_path(&self, path: &str) {
        poll(&format!("the browser to be at {path}"), || {
            let now = self.try_path()?;
            if now == path {
                Ok(())
            } else {
                let text = self.try_text("main").unwrap_or_default();
                Err(format!("{now}: {text:.300}"))
            }
        });
    }

    fn find_by(&self, using: &str, value: &str) -> Result<String, String> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(&json!({"using": using, "value": value})),
        )?;
        v[ELEMENT]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no element reference in {v}"))
    }

    /// The element `css` selects, waiting for it to appear.
    fn find(&self, css: &str) -> String {
        poll(&format!("an element {css}"), || {
            self.find_by("css selector", css)
        })
    }

    fn click(&self, el: &str) {
        self.must("POST", &format!("/element/{el}/click"), Some(&json!({})));
    }

    fn click_css(&self, css: &str) {
        let el = self.find(css);
        self.click(&el);
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.must(
            "POST",
            &format!("/element/{el}/value"),
            Some(&json!({ "text": text })),
        );
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    fn try_js(&self, script: &str, args: &[Value]) -> Result<Value, String> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": args})),
        )
    }

    fn js(&self, script: &str, args: &[Value]) -> Value {
        self.try_js(script, args)
            .unwrap_or_else(|e| panic!("WebDriver: {e}"))
    }

    /// The text of the element `css` selects, spaces collapsed (`Err` while there is none).
    fn try_text(&self, css: &str) -> Result<String, String> {
        self.try_js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            &[json!(css)],
        )?
        .as_str()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .ok_or_else(|| format!("no element {css} on {}", self.url()))
    }

    fn text(&self, css: &str) -> String {
        self.try_text(css).unwrap_or_else(|e| panic!("{e}"))
    }

    fn png(&self, path: &str) -> Vec<u8> {
        let b64 = self.must("GET", path, None);
        base64_decode(b64.as_str().expect("a base64 screenshot"))
    }

    /// Screenshot of the viewport, kept as `name` in the artefact folder after checking it is
    /// a real PNG of some size; its path.
    fn shot(&self, name: &str) -> PathBuf {
        let bytes = self.png("/screenshot");
        let (w, h, _) = decode_png(&bytes);
        assert!(
            bytes.len() > 4096 && w >= 1000 && h >= 600,
            "{name}: a {w}x{h} screenshot of {} bytes: blank?",
            bytes.len()
        );
        let path = artifact_dir().join(name);
        std::fs::write(&path, &bytes).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = wd(&self.agent, "DELETE", &self.session, None);
        }
        // chromedriver leads its own process group; Chromium, if still there, is in it.
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            // SAFETY: kill(2) with a process group id we created; no memory is involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Width, height and RGBA pixels of a PNG.
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<[u8; 4]>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a PNG's size")];
    let info = reader.next_frame(&mut buf).expect("a PNG's pixels");
    let n = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks_exact(n)
        .map(|p| match n {
            1 => [p[0], p[0], p[0], 255],
            2 => [p[0], p[0], p[0], p[1]],
            3 => [p[0], p[1], p[2], 255],
            _ => [p[0], p[1], p[2], p[3]],
        })
        .collect();
    (info.width, info.height, px)
}

/// Distinct colours (5 bits a channel) and pixels other than the commonest colour.
fn colours_and_drawn(px: &[[u8; 4]]) -> (usize, usize) {
    let mut counts = std::collections::HashMap::new();
    for p in px {
        *counts.entry(p.map(|c| c >> 3)).or_insert(0usize) += 1;
    }
    let background = counts.values().copied().max().unwrap_or(0);
    (counts.len(), px.len() - background)
}

// ---- the dashboard under test -----------------------------------------------------------------

/// A server over a store with an instructor teaching "Cohort A" (resident `res1`, with two
/// recorded sessions), and "Cohort B" (resident `res2`), which neither may see.
struct Dashboard {
    store: Arc<Store>,
    base: String,
    cohort_a: i64,
    cohort_b: i64,
    sessions: Vec<i64>,
    scenario: String,
    _server: serve::Running,
    _dir: tempfile::TempDir,
}

fn dashboard() -> &'static Dashboard {
    static D: OnceLock<Dashboard> = OnceLock::new();
    D.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open(&Target::Sqlite(dir.path().join("haptwin.db")), 4).expect("the store"),
        );
        let inst = store
            .create_user(INSTRUCTOR.0, INSTRUCTOR.1, Role::Instructor, INSTRUCTOR.2)
            .unwrap();
        let res1 = store
            .create_user(RESIDENT.0, RESIDENT.1, Role::Resident, RESIDENT.2)
            .unwrap();
        let res2 = store
            .create_user("res2", "Other Resident", Role::Resident, "res2-password-1")
            .unwrap();
        let a = store.create_cohort("Cohort A").unwrap();
        let b = store.create_cohort("Cohort B").unwrap();
        store.add_to_cohort(a.id, &inst).unwrap();
        store.add_to_cohort(a.id, &res1).unwrap();
        store.add_to_cohort(b.id, &res2).unwrap();

        // Two short real sessions of res1: recorded by the simulator, ingested (scored by
        // re-simulation, replay frames sampled) as a station's upload would be.
        let target = IngestTarget {
            resident_id: res1.id,
            station_id: None,
            logs_dir: dir.path().join("logs"),
        };
        let mut sessions = Vec::new();
        for (i, skill) in [Skill::Expert, Skill::Novice].into_iter().enumerate() {
            let report = run_demo(
                &DemoOptions {
                    seconds: Some(3.0),
                    out_dir: dir.path().join(format!("demo-{i}")),
                    render: false,
                    realtime: false,
                    skill,
                    seed: i as u64 + 1,
                    ..DemoOptions::default()
                },
                Arc::new(AtomicBool::new(false)),
            )
            .expect("the session runs");
            let bytes = std::fs::read(&report.log_path).unwrap();
            let id = ingest_bytes(&store, &report.log_path, &bytes, None, &target)
                .expect("the log is ingested");
            sessions.push(id);
        }
        let scenario = store
            .session(sessions[0])
            .unwrap()
            .unwrap()
            .summary
            .scenario;
        assert!(
            store.session(sessions[0]).unwrap().unwrap().has_replay,
            "the ingested session has replay frames"
        );

        let server = serve::start(
            store.clone(),
            ServeConfig {
                addr: "127.0.0.1:0".into(),
                workers: 4,
                data_dir: dir.path().join("data"),
                ..ServeConfig::default()
            },
        )
        .expect("the server starts");
        Dashboard {
            store,
            base: format!("http://{}", server.addr),
            cohort_a: a.id,
            cohort_b: b.id,
            sessions,
            scenario,
            _server: server,
            _dir: dir,
        }
    })
}

impl Dashboard {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Logs in through the form (the browser is sent to the login page first).
fn log_in(b: &Browser, d: &Dashboard, (user, name, password): (&str, &str, &str), role: &str) {
    b.goto(&d.url("/login"));
    b.type_into("#username", user);
    b.type_into("#password", password);
    b.click_css("#login-submit");
    b.wait_path("/");
    let who = poll("#whoami", || b.try_text("#whoami"));
    assert_eq!(who, format!("{name} ({role})"));
}

/// Waits for an error page with `status`.
fn wait_error_page(b: &Browser, status: u16) -> String {
    poll(&format!("the {status} error page"), || {
        let v = b.try_js(
            "const h = document.querySelector('main h1'); \
             const p = document.querySelector('main p.error'); \
             return [document.title, h ? h.textContent : '', p ? p.textContent : ''];",
            &[],
        )?;
        if v[1] == json!(status.to_string()) {
            Ok(v[2].as_str().unwrap_or_default().to_string())
        } else {
            Err(v.to_string())
        }
    })
}

// ---- the tests --------------------------------------------------------------------------------

#[test]
fn an_instructor_logs_in_opens_the_cohort_and_rates_a_session_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_tools("dashboard_browser") else {
        return;
    };
    let d = dashboard();
    let b = Browser::start(&chromium, &chromedriver);

    // Not logged in: the dashboard sends the browser to the login form.
    b.goto(&d.url("/"));
    b.wait_path("/login");
    b.find("form.login #username");
    b.find("#password");
    b.find("#login-submit");
    b.shot("01-login.png");

    b.type_into("#username", INSTRUCTOR.0);
    b.type_into("#password", INSTRUCTOR.2);
    b.click_css("#login-submit");
    b.wait_path("/");
    assert_eq!(
        poll("#whoami", || b.try_text("#whoami")),
        format!("{} (instructor)", INSTRUCTOR.1)
    );

    // The home page lists the cohort; its link opens the matrix.
    let link = poll("the link to Cohort A", || {
        b.find_by("link text", "Cohort A")
    });
    b.click(&link);
    b.wait_path(&format!("/cohorts/{}", d.cohort_a));
    b.find("#cohort-matrix");
    let matrix = b.js(
        "const t = document.getElementById('cohort-matrix'); \
         return { heads: [...t.querySelectorAll('thead th')].map(e => e.textContent.trim()), \
                  residents: [...t.querySelectorAll('tbody tr > th')].map(e => e.textContent.trim()), \
                  sessions: [...t.querySelectorAll('tbody a[href^=\"/sessions/\"]')].map(e => e.getAttribute('href')) };",
        &[],
    );
    assert_eq!(matrix["residents"], json!([RESIDENT.1]), "{matrix}");
    assert_eq!(
        matrix["heads"],
        json!(["Resident", d.scenario.as_str()]),
        "{matrix}"
    );
    assert_eq!(
        matrix["sessions"].as_array().map(Vec::len),
        Some(1),
        "{matrix}"
    );
    b.shot("02-cohort.png");

    // Through to the session page: the resident's last session.
    b.click_css("#cohort-matrix tbody a[href^='/sessions/']");
    let session_id: i64 = poll("a session page", || {
        let p = b.try_path()?;
        p.strip_prefix("/sessions/")
            .and_then(|id| id.parse().ok())
            .ok_or(p)
    });
    assert!(d.sessions.contains(&session_id), "{session_id}");
    b.find("#summary");
    let page = b.js(
        "return { metrics: document.querySelectorAll('#metrics table tbody tr[data-metric]').length, \
                  plots: [...document.querySelectorAll('svg[data-plot]')].map(e => e.getAttribute('data-plot')), \
                  title: document.querySelector('main h1').textContent, \
                  replay: !!document.querySelector('#replay #replay-canvas') };",
        &[],
    );
    assert!(page["metrics"].as_u64().unwrap_or(0) > 0, "{page}");
    assert_eq!(
        page["plots"],
        json!(["force", "path", "speed", "benchmarks"]),
        "{page}"
    );
    assert!(
        page["title"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&d.scenario),
        "{page}"
    );
    assert_eq!(page["replay"], json!(true), "{page}");
    b.shot("03-session-top.png");

    // Rate it with OSATS: a score for every item, a comment (with markup, to be shown as text).
    let scores = [4u8, 3, 5, 2, 4, 3, 5];
    let items = Scale::Osats.items();
    assert_eq!(items.len(), scores.len());
    for ((key, _), v) in items.iter().zip(scores) {
        b.click_css(&format!("#rate-osats input[name='{key}'][value='{v}']"));
    }
    let comment = "Steady hands; mind the <b>vessel</b> & the tumour's edge.";
    b.type_into("#rate-osats textarea[name='comment']", comment);
    let checked = b.js(
        "return [...document.querySelectorAll('#rate-osats input[type=radio]:checked')].map(e => [e.name, +e.value]);",
        &[],
    );
    let expected: Vec<Value> = items
        .iter()
        .zip(scores)
        .map(|((k, _), v)| json!([k, v]))
        .collect();
    assert_eq!(checked, json!(expected));
    b.click_css("#save-osats");
    let total: i64 = scores.iter().map(|&v| i64::from(v)).sum();
    let shown = poll("the saved rating on the session page", || {
        let v = b.try_js(
            "const r = document.querySelector('#ratings div.rating'); \
             if (!r) return null; \
             const q = r.querySelector('blockquote'); \
             return { head: r.querySelector('p').textContent.replace(/\\s+/g, ' ').trim(), \
                      comment: q ? q.textContent : null, markup: q ? q.querySelectorAll('*').length : -1, \
                      items: r.querySelectorAll('li').length, hash: location.hash };",
            &[],
        )?;
        if v.is_null() {
            Err(b.try_url()?)
        } else {
            Ok(v)
        }
    });
    b.wait_path(&format!("/sessions/{session_id}"));
    assert!(
        shown["head"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!("OSATS {total} / 35 by {}", INSTRUCTOR.1)),
        "{shown}"
    );
    assert_eq!(shown["comment"], json!(comment), "{shown}");
    assert_eq!(shown["markup"], json!(0), "the comment is text: {shown}");
    assert_eq!(shown["items"], json!(scores.len()), "{shown}");
    assert_eq!(shown["hash"], json!("#ratings"), "{shown}");
    b.js("document.getElementById('ratings').scrollIntoView();", &[]);
    b.shot("05-after-rating.png");

    // The store has it.
    let ratings = d.store.ratings(session_id).unwrap();
    assert_eq!(ratings.len(), 1, "{ratings:?}");
    let r = &ratings[0];
    assert_eq!(r.scale, Scale::Osats);
    assert_eq!(r.total, total);
    assert_eq!(r.comment, comment);
    assert_eq!(r.rater_name, INSTRUCTOR.1);
    let stored: Vec<(String, u8)> = items
        .iter()
        .zip(scores)
        .map(|((k, _), v)| ((*k).to_string(), v))
        .collect();
    assert_eq!(r.items, stored);

    // A cohort the instructor does not teach: 403.
    b.goto(&d.url(&format!("/cohorts/{}", d.cohort_b)));
    let why = wait_error_page(&b, 403);
    assert!(why.contains("not allowed"), "{why}");

    // Log out: back at the login form, and the dashboard is closed again.
    b.goto(&d.url("/"));
    b.click_css("#logout");
    b.wait_path("/login");
    b.find("#login-submit");
    b.goto(&d.url(&format!("/cohorts/{}", d.cohort_a)));
    b.wait_path("/login");

    // The resident: their own progress, and 403 on another cohort's page.
    log_in(&b, d, RESIDENT, "resident");
    assert_eq!(b.text("main h1"), "Your progress");
    b.goto(&d.url(&format!("/cohorts/{}", d.cohort_b)));
    let why = wait_error_page(&b, 403);
    assert!(why.contains("not allowed"), "{why}");
    b.shot("06-resident-forbidden.png");
}

#[test]
fn the_session_replay_plays_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_tools("dashboard_browser") else {
        return;
    };
    let d = dashboard();
    let b = Browser::start(&chromium, &chromedriver);
    log_in(&b, d, INSTRUCTOR, "instructor");
    let session_id = d.sessions[0];
    b.goto(&d.url(&format!("/sessions/{session_id}")));
    b.find("#replay #replay-canvas");

    let state = |b: &Browser| {
        b.try_js(
            "const r = document.getElementById('replay'); \
             return { state: r.dataset.state || null, time: r.dataset.time || null, \
                      frame: r.dataset.frame || null, triangles: r.dataset.triangles || null, \
                      status: document.getElementById('replay-status').textContent };",
            &[],
        )
    };
    poll(
        "the replay viewer to be ready (#replay data-state=ready)",
        || {
            let s = state(&b)?;
            match s["state"].as_str() {
                Some("ready") => Ok(()),
                Some("error") => panic!("the replay viewer failed: {s}"),
                _ => Err(s.to_string()),
            }
        },
    );
    b.click_css("#replay-play");
    let playing = poll(
        "the replay to play past 0.5 s (data-state playing or ended)",
        || {
            let s = state(&b)?;
            let t: f64 = s["time"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0.0);
            match s["state"].as_str() {
                Some("playing" | "ended") if t > 0.5 => Ok(s),
                Some("error") => panic!("the replay viewer failed: {s}"),
                _ => Err(s.to_string()),
            }
        },
    );
    let frame: i64 = playing["frame"]
        .as_str()
        .and_then(|f| f.parse().ok())
        .unwrap_or(-1);
    let triangles: i64 = playing["triangles"]
        .as_str()
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    assert!(frame >= 1, "the tissue frame moved on: {playing}");
    assert!(triangles > 0, "the tissue surface is drawn: {playing}");

    b.js("document.getElementById('replay').scrollIntoView();", &[]);
    b.shot("04-replay-playing.png");

    // The canvas is drawn, not blank: its own pixels (a 2D canvas is read directly, a WebGL
    // one through a 2D copy), and what the browser composited (the element's screenshot).
    let pixels = b.js(
        "const c = document.getElementById('replay-canvas'); \
         let ctx = null; try { ctx = c.getContext('2d'); } catch (e) {} \
         let kind = '2d'; \
         if (!ctx) { const o = document.createElement('canvas'); o.width = c.width; o.height = c.height; \
                     ctx = o.getContext('2d'); ctx.drawImage(c, 0, 0); kind = 'copy'; } \
         const d = ctx.getImageData(0, 0, c.width, c.height).data; \
         const counts = new Map(); \
         for (let i = 0; i < d.length; i += 4) { \
           const k = ((d[i] >> 3) << 15) | ((d[i + 1] >> 3) << 10) | ((d[i + 2] >> 3) << 5) | (d[i + 3] >> 3); \
           counts.set(k, (counts.get(k) || 0) + 1); } \
         let bg = 0; for (const n of counts.values()) bg = Math.max(bg, n); \
         return { kind, pixels: d.length / 4, colours: counts.size, drawn: d.length / 4 - bg };",
        &[],
    );
    let el = b.find("#replay-canvas");
    let (w, h, px) = decode_png(&b.png(&format!("/element/{el}/screenshot")));
    let (colours, drawn) = colours_and_drawn(&px);
    eprintln!(
        "replay canvas: {pixels}; element screenshot {w}x{h}: {colours} colours, {drawn} drawn"
    );
    assert!(
        colours > 8 && drawn * 100 > px.len(),
        "the replay canvas looks blank on screen: {colours} colours, {drawn} of {} pixels drawn",
        px.len()
    );
    let total = pixels["pixels"].as_u64().unwrap_or(0);
    let drawn_js = pixels["drawn"].as_u64().unwrap_or(0);
    let colours_js = pixels["colours"].as_u64().unwrap_or(0);
    // A WebGL canvas without preserveDrawingBuffer may read back cleared between frames; the
    // screenshot above stands for it then.
    if pixels["kind"] == json!("2d") {
        assert!(
            colours_js > 8 && drawn_js * 100 > total,
            "the replay canvas's pixels look blank: {pixels}"
        );
    }
}
