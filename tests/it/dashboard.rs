//! `haptwin serve` over real HTTP: every route for every role, CSRF, login cookies, login rate
//! limiting, security headers, escaping, station uploads (also through a proxy that drops
//! connections and goes away for a moment) and the CLI end to end.
//!
//! One short real session is recorded once per test binary; distinct logs are derived from it
//! by changing the header's start time (ingest keeps a log once per SHA-256). A template store
//! with the accounts, cohorts and three scored sessions is built once too; every test copies it
//! and starts its own server on port 0, so tests do not see each other.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use haptwin::demo::{run_demo, DemoOptions};
use haptwin::score::performer::Skill;
use haptwin::serve::client::{upload_log, UploadError, UploadOptions};
use haptwin::serve::{self, url_encode, Running, ServeConfig};
use haptwin::session::scenario::Scenario;
use haptwin::session::SessionLog;
use haptwin::store::ingest::{ingest_bytes, IngestTarget};
use haptwin::store::{sha256_hex, Role, Store, Target};

/// Every account's password.
const PASSWORD: &str = "correct horse battery";
/// The largest upload the test servers take.
const MAX_UPLOAD: u64 = 8 << 20;
/// An id nothing has.
const NONE: i64 = 987_654;
/// The session's scenario.
const SCENARIO: &str = "palpation";

// ---- the shared fixture ---------------------------------------------------------------------

/// Ids in the template store (the same in every copy).
#[derive(Debug, Clone, Copy)]
struct Ids {
    cohort_a: i64,
    cohort_b: i64,
    res_a1: i64,
    res_a2: i64,
    res_b1: i64,
    /// res-a1's session.
    s_a1: i64,
    /// res-a2's session.
    s_a2: i64,
    /// res-b1's session.
    s_b1: i64,
}

struct Fixture {
    _dir: tempfile::TempDir,
    /// The template store (closed; copied by each test).
    db: PathBuf,
    ids: Ids,
    /// The logs of `s_a1`, `s_a2`, `s_b1`.
    stored: [PathBuf; 3],
    /// Logs in no store yet.
    spare: [PathBuf; 2],
}

/// `bytes` (a session log) with its header's start moved `days` days back: a distinct, valid
/// log with the same records. The header JSON is edited as text so every other field keeps its
/// exact bytes.
fn log_variant(bytes: &[u8], days: u64) -> Vec<u8> {
    let hlen = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let text = std::str::from_utf8(&bytes[16..16 + hlen]).unwrap();
    let key = "\"started_unix_s\":";
    let at = text.find(key).expect("the header has a start") + key.len();
    let end = at
        + text[at..]
            .find(|c: char| !c.is_ascii_digit())
            .expect("the start is a number");
    let started: u64 = text[at..end].parse().unwrap();
    let json = format!("{}{}{}", &text[..at], started - days * 86_400, &text[end..]);
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(&crc32fast::hash(json.as_bytes()).to_le_bytes());
    out.extend_from_slice(&bytes[16 + hlen + 4..]);
    out
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let report = run_demo(
            &DemoOptions {
                seconds: Some(2.0),
                out_dir: dir.path().join("recorded"),
                render: false,
                realtime: false,
                scenario: Scenario::find(SCENARIO).unwrap(),
                skill: Skill::Expert,
                seed: 0,
                ..DemoOptions::default()
            },
            Arc::new(AtomicBool::new(false)),
        )
        .expect("the session runs");
        let recorded = std::fs::read(&report.log_path).unwrap();
        let logs: Vec<PathBuf> = (1..=5)
            .map(|k| {
                let bytes = log_variant(&recorded, k);
                let path = dir.path().join(format!("session-{k}.htlog"));
                let log = SessionLog::parse(&path, &bytes).expect("the variant parses");
                assert!(log.damage.is_none() && log.end.is_some());
                assert!(log.records.len() >= 1000);
                std::fs::write(&path, &bytes).unwrap();
                path
            })
            .collect();

        let db = dir.path().join("template.db");
        let store = Store::open(&Target::Sqlite(db.clone()), 3).unwrap();
        let user = |name: &str, display: &str, role: Role| {
            store.create_user(name, display, role, PASSWORD).unwrap()
        };
        user("admin", "Ada Admin", Role::Admin);
        let inst_a = user("inst-a", "Ian Alder", Role::Instructor);
        let inst_b = user("inst-b", "Iris Birch", Role::Instructor);
        let res_a1 = user("res-a1", "Alice Able", Role::Resident);
        let res_a2 = user("res-a2", "Arthur Aster", Role::Resident);
        let res_b1 = user("res-b1", "Bella Brook", Role::Resident);
        let cohort_a = store.create_cohort("Cohort A").unwrap();
        let cohort_b = store.create_cohort("Cohort B").unwrap();
        for u in [&inst_a, &res_a1, &res_a2] {
            store.add_to_cohort(cohort_a.id, u).unwrap();
        }
        for u in [&inst_b, &res_b1] {
            store.add_to_cohort(cohort_b.id, u).unwrap();
        }
        let logs_dir = dir.path().join("logs");
        let owners = [res_a1.id, res_a2.id, res_b1.id];
        let sessions: Vec<i64> = std::thread::scope(|s| {
            let handles: Vec<_> = owners
                .iter()
                .zip(&logs)
                .map(|(&resident_id, path)| {
                    let (store, logs_dir) = (&store, logs_dir.clone());
                    s.spawn(move || {
                        let bytes = std::fs::read(path).unwrap();
                        ingest_bytes(
                            store,
                            path,
                            &bytes,
                            None,
                            &IngestTarget {
                                resident_id,
                                station_id: None,
                                logs_dir,
                            },
                        )
                        .expect("the log is stored")
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (&id, &owner) in sessions.iter().zip(&owners) {
            let s = store.session(id).unwrap().unwrap();
            assert_eq!(s.summary.resident_id, owner);
            assert_eq!(s.summary.scenario, SCENARIO);
            assert!(
                s.has_replay,
                "the session's case is rebuilt for the replay viewer"
            );
        }
        drop(store);
        assert!(
            !dir.path().join("template.db-wal").exists()
                || std::fs::metadata(dir.path().join("template.db-wal"))
                    .unwrap()
                    .len()
                    == 0,
            "closing the store checkpoints its WAL, so the file alone is a whole copy"
        );
        Fixture {
            db,
            ids: Ids {
                cohort_a: cohort_a.id,
                cohort_b: cohort_b.id,
                res_a1: res_a1.id,
                res_a2: res_a2.id,
                res_b1: res_b1.id,
                s_a1: sessions[0],
                s_a2: sessions[1],
                s_b1: sessions[2],
            },
            stored: [logs[0].clone(), logs[1].clone(), logs[2].clone()],
            spare: [logs[3].clone(), logs[4].clone()],
            _dir: dir,
        }
    })
}

/// A test's own copy of the template store and its own server.
struct Env {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    running: Option<Running>,
    base: String,
    ids: Ids,
}

impl Env {
    fn new() -> Self {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("haptwin.db");
        std::fs::copy(&f.db, &db).unwrap();
        let store = Arc::new(Store::open(&Target::Sqlite(db), 4).unwrap());
        let running = serve::start(
            store.clone(),
            ServeConfig {
                addr: "127.0.0.1:0".into(),
                workers: 4,
                data_dir: dir.path().join("data"),
                max_upload_bytes: MAX_UPLOAD,
                secure_cookies: false,
                login_ttl_s: 3600,
            },
        )
        .expect("the server starts");
        let base = format!("http://{}", running.addr);
        Self {
            dir,
            store,
            running: Some(running),
            base,
            ids: f.ids,
        }
    }

    fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// A client logged in as `user`, with the login's CSRF token.
    fn login(&self, user: &str) -> Client {
        let mut c = self.client();
        let r = c.login(user, PASSWORD);
        assert_eq!(r.status, 303, "{user} logs in: {}", r.text());
        assert_eq!(r.header("location"), Some("/"));
        let me = c.get("/api/me");
        assert_eq!(me.status, 200);
        let me = me.json();
        assert_eq!(me["user"]["username"], user);
        c.csrf = me["csrf"].as_str().unwrap().to_string();
        assert_eq!(c.csrf.len(), 64);
        c
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

// ---- an HTTP client with a cookie jar -------------------------------------------------------

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The `Set-Cookie` of cookie `name`.
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers_named("set-cookie")
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

struct Client {
    agent: ureq::Agent,
    base: String,
    jar: Vec<(String, String)>,
    csrf: String,
}

fn form_body(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// The login form's hidden CSRF token.
fn hidden_csrf(html: &str) -> String {
    let key = "name=\"csrf\" value=\"";
    let at = html.find(key).expect("the page has a CSRF field") + key.len();
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

/// One request to `url` with `headers` and `body`.
fn raw(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    use ureq::http;
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let result = match body {
        Some(bytes) => agent.run(b.body(bytes.to_vec()).unwrap()),
        None => agent.run(b.body(()).unwrap()),
    };
    let mut r = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = r
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("{method} {url}: reading the answer: {e}"));
    Reply {
        status: r.status().as_u16(),
        headers,
        body,
    }
}

impl Client {
    fn new(base: &str) -> Self {
        Self {
            agent: agent(),
            base: base.to_string(),
            jar: Vec::new(),
            csrf: String::new(),
        }
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.jar
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A request with the jar's cookies; the answer's cookies go into the jar.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let cookie = self
            .jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if !cookie.is_empty() {
            h.push(("Cookie", &cookie));
        }
        let r = raw(
            &self.agent,
            method,
            &format!("{}{path}", self.base),
            &h,
            body,
        );
        for c in r.headers_named("set-cookie") {
            let pair = c.split(';').next().unwrap_or("");
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            self.jar.retain(|(n, _)| n != k);
            if !v.is_empty() && !c.contains("Max-Age=0") {
                self.jar.push((k.to_string(), v.to_string()));
            }
        }
        r
    }

    fn get(&mut self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(&form_body(fields)),
        )
    }

    /// GET /login, then POST the form with its token.
    fn login(&mut self, user: &str, password: &str) -> Reply {
        let page = self.get("/login");
        assert_eq!(page.status, 200);
        let csrf = hidden_csrf(&page.text());
        assert_eq!(self.cookie(serve::LOGIN_CSRF_COOKIE), Some(csrf.as_str()));
        self.post_form(
            "/login",
            &[("csrf", &csrf), ("username", user), ("password", password)],
        )
    }

    /// An OSATS rating through the form, with the login's CSRF token.
    fn rate_form(&mut self, session: i64, comment: &str) -> Reply {
        let csrf = self.csrf.clone();
        let mut fields = vec![("csrf", csrf.as_str()), ("scale", "osats")];
        for (key, _) in haptwin::store::Scale::Osats.items() {
            fields.push((key, "4"));
        }
        fields.push(("comment", comment));
        self.post_form(&format!("/sessions/{session}/rating"), &fields)
    }

    /// A GOALS rating through the API, with the login's CSRF token.
    fn rate_api(&mut self, session: i64) -> Reply {
        let csrf = self.csrf.clone();
        let body = serde_json::json!({
            "scale": "goals",
            "items": {"depth_perception": 3, "bimanual_dexterity": 4, "efficiency": 3,
                      "tissue_handling": 5, "autonomy": 2},
            "comment": "steady",
        })
        .to_string();
        self.request(
            "POST",
            &format!("/api/sessions/{session}/ratings"),
            &[
                ("Content-Type", "application/json"),
                ("X-CSRF-Token", &csrf),
            ],
            Some(body.as_bytes()),
        )
    }
}

fn gunzip_if_needed(bytes: &[u8]) -> Vec<u8> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        bytes.to_vec()
    }
}

/// The session ids of a CSV export's rows.
fn csv_sessions(csv: &str) -> Vec<i64> {
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("session_id,resident,scenario"));
    let mut ids: Vec<i64> = lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    ids.dedup();
    ids
}

// ---- 1. every route for every role ----------------------------------------------------------

/// Who asks, in the order of the expectation columns.
const ROLES: [&str; 5] = ["anonymous", "res-a1", "inst-a", "inst-b", "admin"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Body {
    None,
    /// A rating form with the asker's CSRF token.
    RatingForm,
    /// A rating as JSON with the asker's `X-CSRF-Token`.
    RatingJson,
}

#[test]
fn every_route_answers_every_role_as_its_access_rules_say() {
    let env = Env::new();
    let i = env.ids;
    let (ca, cb, a1, a2, b1) = (i.cohort_a, i.cohort_b, i.res_a1, i.res_a2, i.res_b1);
    let (s1, s2, s3, n) = (i.s_a1, i.s_a2, i.s_b1, NONE);
    // res-a1 is the resident: s1 is their own session, s2 a cohort-mate's, s3 another cohort's.
    // inst-a teaches cohort A (a1, a2), inst-b cohort B (b1).
    let all = |s: u16| [s; 5];
    // "METHOD path" and the status for each of ROLES.
    let mut cases: Vec<(String, [u16; 5])> = vec![
        ("GET /".into(), [303, 200, 200, 200, 200]),
        (format!("GET /cohorts/{ca}"), [303, 403, 200, 403, 200]),
        (format!("GET /cohorts/{cb}"), [303, 403, 403, 200, 200]),
        (format!("GET /cohorts/{n}"), [303, 404, 404, 404, 404]),
        (format!("GET /residents/{a1}"), [303, 200, 200, 403, 200]),
        (format!("GET /residents/{a2}"), [303, 403, 200, 403, 200]),
        (format!("GET /residents/{b1}"), [303, 403, 403, 200, 200]),
        (format!("GET /residents/{n}"), [303, 404, 404, 404, 404]),
        (format!("GET /sessions/{s1}"), [303, 200, 200, 403, 200]),
        (format!("GET /sessions/{s2}"), [303, 403, 200, 403, 200]),
        (format!("GET /sessions/{s3}"), [303, 403, 403, 200, 200]),
        (format!("GET /sessions/{n}"), [303, 404, 404, 404, 404]),
        (format!("GET /sessions/{s1}/log"), [303, 200, 200, 403, 200]),
        (format!("GET /sessions/{s2}/log"), [303, 403, 200, 403, 200]),
        (format!("GET /sessions/{s3}/log"), [303, 403, 403, 200, 200]),
        (format!("GET /sessions/{n}/log"), [303, 404, 404, 404, 404]),
        // Rating forms (with the asker's CSRF token): anonymous POSTs are refused, not
        // redirected; residents may not rate even their own sessions.
        (
            format!("POST /sessions/{s1}/rating"),
            [401, 403, 303, 403, 303],
        ),
        (
            format!("POST /sessions/{s2}/rating"),
            [401, 403, 303, 403, 303],
        ),
        (
            format!("POST /sessions/{s3}/rating"),
            [401, 403, 403, 303, 303],
        ),
        (
            format!("POST /sessions/{n}/rating"),
            [401, 404, 404, 404, 404],
        ),
        // The JSON API.
        ("GET /api/me".into(), [401, 200, 200, 200, 200]),
        ("GET /api/cohorts".into(), [401, 200, 200, 200, 200]),
        (format!("GET /api/cohorts/{ca}"), [401, 403, 200, 403, 200]),
        (format!("GET /api/cohorts/{cb}"), [401, 403, 403, 200, 200]),
        (format!("GET /api/cohorts/{n}"), [401, 404, 404, 404, 404]),
        (
            format!("GET /api/residents/{a1}/sessions"),
            [401, 200, 200, 403, 200],
        ),
        (
            format!("GET /api/residents/{a2}/sessions"),
            [401, 403, 200, 403, 200],
        ),
        (
            format!("GET /api/residents/{b1}/sessions"),
            [401, 403, 403, 200, 200],
        ),
        (
            format!("GET /api/residents/{n}/sessions"),
            [401, 404, 404, 404, 404],
        ),
        // Ratings as JSON (with the asker's X-CSRF-Token).
        (
            format!("POST /api/sessions/{s1}/ratings"),
            [401, 403, 201, 403, 201],
        ),
        (
            format!("POST /api/sessions/{s3}/ratings"),
            [401, 403, 403, 201, 201],
        ),
        (
            format!("POST /api/sessions/{n}/ratings"),
            [401, 404, 404, 404, 404],
        ),
        // Wrong methods, whoever asks.
        ("POST /".into(), all(405)),
        ("DELETE /".into(), all(405)),
        (format!("PUT /cohorts/{ca}"), all(405)),
        (format!("POST /residents/{a1}"), all(405)),
        (format!("DELETE /sessions/{s1}"), all(405)),
        (format!("GET /sessions/{s1}/rating"), all(405)),
        (format!("PUT /sessions/{s1}/log"), all(405)),
        ("POST /export/sessions.csv".into(), all(405)),
        ("DELETE /export/xapi.json".into(), all(405)),
        ("GET /logout".into(), all(405)),
        ("PUT /login".into(), all(405)),
        ("DELETE /api/me".into(), all(405)),
        ("POST /api/cohorts".into(), all(405)),
        (format!("PUT /api/cohorts/{ca}"), all(405)),
        (format!("POST /api/residents/{a1}/sessions"), all(405)),
        (format!("DELETE /api/sessions/{s1}"), all(405)),
        (format!("POST /api/sessions/{s1}/replay"), all(405)),
        (format!("PUT /api/sessions/{s1}/ratings"), all(405)),
        ("GET /api/uploads".into(), all(405)),
        // Nothing there, whoever asks (pages look at the path before the login).
        ("GET /nothing".into(), all(404)),
        ("GET /api/nothing".into(), all(404)),
        ("GET /export/other.csv".into(), all(404)),
        ("GET /static/other.js".into(), all(404)),
        (format!("GET /sessions/{s1}/other"), all(404)),
        ("GET /sessions/abc".into(), all(404)),
        ("GET /sessions/0".into(), all(404)),
        ("GET /sessions/-1".into(), all(404)),
        // The API asks for a login first, then looks at the id.
        (
            "GET /api/sessions/abc/replay".into(),
            [401, 404, 404, 404, 404],
        ),
        // Anyone.
        ("GET /healthz".into(), all(200)),
        ("GET /login".into(), [200, 303, 303, 303, 303]),
        ("GET /static/dashboard.css".into(), all(200)),
        ("GET /static/replay.js".into(), all(200)),
    ];
    for kind in ["sessions.csv", "xapi.json"] {
        let e = |q: String| format!("GET /export/{kind}{q}");
        cases.extend([
            (e(format!("?cohort={ca}")), [303, 403, 200, 403, 200]),
            (e(format!("?cohort={cb}")), [303, 403, 403, 200, 200]),
            (e(format!("?cohort={n}")), [303, 404, 404, 404, 404]),
            (e(format!("?resident={a1}")), [303, 200, 200, 403, 200]),
            (e(format!("?resident={a2}")), [303, 403, 200, 403, 200]),
            (e(format!("?resident={b1}")), [303, 403, 403, 200, 200]),
            (e(format!("?resident={n}")), [303, 404, 404, 404, 404]),
            (e(format!("?session={s1}")), [303, 200, 200, 403, 200]),
            (e(format!("?session={s2}")), [303, 403, 200, 403, 200]),
            (e(format!("?session={s3}")), [303, 403, 403, 200, 200]),
            (e(format!("?session={n}")), [303, 404, 404, 404, 404]),
            (e(String::new()), [303, 200, 200, 200, 200]),
        ]);
    }
    for what in ["", "/replay", "/ratings"] {
        let a = |id: i64| format!("GET /api/sessions/{id}{what}");
        cases.extend([
            (a(s1), [401, 200, 200, 403, 200]),
            (a(s2), [401, 403, 200, 403, 200]),
            (a(s3), [401, 403, 403, 200, 200]),
            (a(n), [401, 404, 404, 404, 404]),
        ]);
    }

    let mut clients: Vec<Client> = ROLES
        .iter()
        .map(|&r| {
            if r == "anonymous" {
                env.client()
            } else {
                env.login(r)
            }
        })
        .collect();
    let mut wrong = Vec::new();
    for (case, expect) in &cases {
        let (method, path) = case.split_once(' ').unwrap();
        let body = match method {
            "POST" if path.ends_with("/rating") => Body::RatingForm,
            "POST" if path.ends_with("/ratings") => Body::RatingJson,
            _ => Body::None,
        };
        for (who, c) in clients.iter_mut().enumerate() {
            let r = match body {
                Body::None => c.request(method, path, &[], None),
                Body::RatingForm => c.rate_form(session_of(path), ""),
                Body::RatingJson => c.rate_api(session_of(path)),
            };
            if r.status != expect[who] {
                wrong.push(format!(
                    "{method} {path} as {}: {} (expected {})",
                    ROLES[who], r.status, expect[who]
                ));
                continue;
            }
            // What each answer is.
            let is_api = path.starts_with("/api/");
            match r.status {
                303 if method == "GET" && who == 0 => {
                    assert_eq!(r.header("location"), Some("/login"), "{method} {path}")
                }
                303 if body == Body::RatingForm => assert_eq!(
                    r.header("location"),
                    Some(format!("/sessions/{}#ratings", session_of(path)).as_str())
                ),
                401 | 403 | 404 | 405 if is_api => {
                    assert_eq!(r.header("content-type"), Some("application/json"));
                    assert_eq!(r.json()["status"], r.status, "{method} {path}");
                }
                401 | 403 | 404 | 405 => {
                    assert!(
                        r.header("content-type").unwrap().starts_with("text/html"),
                        "{method} {path}"
                    );
                    assert!(r.text().contains(&format!("<h1>{}</h1>", r.status)));
                }
                200 if path.starts_with("/export/sessions.csv") => {
                    assert!(r.header("content-type").unwrap().starts_with("text/csv"))
                }
                200 if path.ends_with("/log") => assert!(r.body.starts_with(b"HAPTWLOG")),
                200 if is_api || path.starts_with("/export/xapi.json") => {
                    let _ = serde_json::from_slice::<serde_json::Value>(&gunzip_if_needed(&r.body))
                        .unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
                }
                _ => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} answers are wrong:\n{}",
        wrong.len(),
        cases.len() * ROLES.len(),
        wrong.join("\n")
    );

    let [_anon, res_a1, inst_a, inst_b, admin] = &mut clients[..] else {
        unreachable!()
    };
    // A resident sees nothing of another resident.
    let home = res_a1.get("/").text();
    assert!(home.contains("Alice Able") && home.contains(&format!("/sessions/{s1}\"")));
    for other in ["Arthur Aster", "Bella Brook", "Cohort B"] {
        assert!(!home.contains(other), "res-a1's home shows {other}");
    }
    for other in [s2, s3] {
        assert!(!home.contains(&format!("/sessions/{other}\"")));
    }
    assert_eq!(
        res_a1.get("/api/cohorts").json(),
        serde_json::json!([{"id": ca, "name": "Cohort A"}])
    );
    let mine = res_a1.get(&format!("/api/residents/{a1}/sessions")).json();
    let mine: Vec<i64> = mine["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(mine, [s1]);
    assert_eq!(
        csv_sessions(&res_a1.get("/export/sessions.csv").text()),
        [s1]
    );
    let xapi = res_a1.get("/export/xapi.json").json();
    assert!(!xapi.as_array().unwrap().is_empty());
    for st in xapi.as_array().unwrap() {
        assert_eq!(st["actor"]["account"]["name"], "res-a1");
    }
    // The session's log is the stored file, byte for byte.
    assert_eq!(
        res_a1.get(&format!("/sessions/{s1}/log")).body,
        std::fs::read(&fixture().stored[0]).unwrap()
    );

    // An instructor's cohort page lists the cohort's residents only.
    let page = inst_a.get(&format!("/cohorts/{ca}")).text();
    assert!(page.contains("Alice Able") && page.contains("Arthur Aster"));
    assert!(
        page.contains(&format!("/sessions/{s1}\"")) && page.contains(&format!("/sessions/{s2}\""))
    );
    assert!(!page.contains("Bella Brook") && !page.contains(&format!("/sessions/{s3}\"")));
    let home = inst_a.get("/").text();
    assert!(
        home.contains("Cohort A") && !home.contains("Cohort B") && !home.contains("Bella Brook")
    );
    assert_eq!(
        inst_a.get("/api/cohorts").json(),
        serde_json::json!([{"id": ca, "name": "Cohort A"}])
    );
    let cohort = inst_a.get(&format!("/api/cohorts/{ca}")).json();
    let names: Vec<&str> = cohort["residents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["res-a1", "res-a2"]);
    // The cohort's CSV has rows for its sessions only, and for each of them.
    let csv = inst_a
        .get(&format!("/export/sessions.csv?cohort={ca}"))
        .text();
    let mut rows = csv_sessions(&csv);
    rows.sort_unstable();
    let mut want = vec![s1, s2];
    want.sort_unstable();
    assert_eq!(rows, want);
    assert!(csv.lines().count() > 2 * 3, "a row per metric");
    assert_eq!(
        csv_sessions(&inst_b.get("/export/sessions.csv").text()),
        [s3]
    );
    let mut everything = csv_sessions(&admin.get("/export/sessions.csv").text());
    everything.sort_unstable();
    let mut want = vec![s1, s2, s3];
    want.sort_unstable();
    assert_eq!(everything, want);
    assert_eq!(
        admin.get("/api/cohorts").json().as_array().unwrap().len(),
        2
    );

    // The ratings that were allowed are stored, and no others: s1 was rated by inst-a and the
    // admin (form and API each), s2 by both through the form, s3 by inst-b and the admin
    // (form and API each); residents' and other instructors' tries left nothing.
    for (s, raters) in [
        (s1, vec!["Ada Admin", "Ada Admin", "Ian Alder", "Ian Alder"]),
        (s2, vec!["Ada Admin", "Ian Alder"]),
        (
            s3,
            vec!["Ada Admin", "Ada Admin", "Iris Birch", "Iris Birch"],
        ),
    ] {
        let ratings = admin.get(&format!("/api/sessions/{s}/ratings")).json();
        let mut got: Vec<&str> = ratings
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rater_name"].as_str().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, raters, "ratings of session {s}");
    }
    // The rating shows on the session's page.
    let page = inst_a.get(&format!("/sessions/{s1}")).text();
    assert!(page.contains("data-rating=") && page.contains("OSATS") && page.contains("GOALS"));
    // A resident's session page has no rating form.
    let page = res_a1.get(&format!("/sessions/{s1}")).text();
    assert!(page.contains("data-rating=") && !page.contains("rating-form"));
}

/// The session id in `/sessions/{id}/rating` or `/api/sessions/{id}/ratings`.
fn session_of(path: &str) -> i64 {
    path.split('/')
        .skip_while(|s| *s != "sessions")
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

// ---- 2. CSRF --------------------------------------------------------------------------------

#[test]
fn state_changes_need_the_logins_csrf_token_and_this_origin() {
    let env = Env::new();
    let s1 = env.ids.s_a1;
    let mut c = env.login("inst-a");
    let right = c.csrf.clone();
    let items: Vec<(&str, &str)> = haptwin::store::Scale::Osats
        .items()
        .iter()
        .map(|(k, _)| (*k, "3"))
        .collect();
    let rating = |csrf: Option<&str>| {
        let mut f: Vec<(&str, &str)> = vec![("scale", "osats")];
        f.extend(items.iter().copied());
        if let Some(t) = csrf {
            f.push(("csrf", t));
        }
        form_body(&f)
    };
    let path = format!("/sessions/{s1}/rating");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let wrong = "0".repeat(64);
    let host = env.base.trim_start_matches("http://").to_string();
    let own_origin = env.base.clone();

    // The rating form: no token, a wrong one, the right one from another origin.
    for (body, extra) in [
        (rating(None), None),
        (rating(Some("")), None),
        (rating(Some(&wrong)), None),
        (rating(Some(&right[..63])), None),
        (
            rating(Some(&right)),
            Some(("Origin", "http://evil.example")),
        ),
        (rating(Some(&right)), Some(("Origin", "null"))),
        (
            rating(Some(&right)),
            Some(("Origin", "http://127.0.0.1.evil.example")),
        ),
    ] {
        let mut h = form.to_vec();
        h.extend(extra);
        let r = c.request("POST", &path, &h, Some(&body));
        assert_eq!(r.status, 403, "{extra:?}: {}", r.text());
    }
    // The API: no header, a wrong one, a foreign origin.
    let json = serde_json::json!({"scale": "goals", "items": {"depth_perception": 3,
        "bimanual_dexterity": 3, "efficiency": 3, "tissue_handling": 3, "autonomy": 3}})
    .to_string();
    let api = format!("/api/sessions/{s1}/ratings");
    for h in [
        vec![],
        vec![("X-CSRF-Token", wrong.as_str())],
        vec![
            ("X-CSRF-Token", right.as_str()),
            ("Origin", "https://evil.example"),
        ],
    ] {
        let r = c.request("POST", &api, &h, Some(json.as_bytes()));
        assert_eq!(r.status, 403, "{h:?}");
        assert_eq!(r.json()["status"], 403);
    }
    // Nothing was stored.
    assert_eq!(env.store.ratings(s1).unwrap().len(), 0);
    // The right token, with or without this server's own origin.
    let r = c.request("POST", &path, &form, Some(&rating(Some(&right))));
    assert_eq!(r.status, 303);
    let mut h = form.to_vec();
    h.push(("Origin", &own_origin));
    let r = c.request("POST", &path, &h, Some(&rating(Some(&right))));
    assert_eq!(r.status, 303, "{}", r.text());
    let r = c.request(
        "POST",
        &api,
        &[("X-CSRF-Token", &right), ("Origin", &own_origin)],
        Some(json.as_bytes()),
    );
    assert_eq!(r.status, 201);
    assert_eq!(env.store.ratings(s1).unwrap().len(), 3);
    assert!(host.starts_with("127.0.0.1:"));

    // Another login's token is not this login's.
    let other = env.login("admin");
    assert_ne!(other.csrf, right);
    let r = c.request("POST", &path, &form, Some(&rating(Some(&other.csrf))));
    assert_eq!(r.status, 403);

    // Logging out: no token, a wrong one, another origin; then the right one.
    for (fields, origin) in [
        (vec![], None),
        (vec![("csrf", wrong.as_str())], None),
        (vec![("csrf", right.as_str())], Some("http://evil.example")),
    ] {
        let mut h = form.to_vec();
        h.extend(origin.map(|o| ("Origin", o)));
        let r = c.request("POST", "/logout", &h, Some(&form_body(&fields)));
        assert_eq!(r.status, 403, "{fields:?} {origin:?}");
        assert_eq!(c.get("/api/me").status, 200, "still logged in");
    }
    let r = c.post_form("/logout", &[("csrf", &right)]);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));

    // The login form: the double-submit cookie must be there and match the form.
    let mut anon = env.client();
    let page = anon.get("/login");
    let token = hidden_csrf(&page.text());
    let fields = [
        ("csrf", token.as_str()),
        ("username", "inst-a"),
        ("password", PASSWORD),
    ];
    // Without the cookie (a fresh client without the jar).
    let r = raw(
        &agent(),
        "POST",
        &format!("{}/login", env.base),
        &form,
        Some(&form_body(&fields)),
    );
    assert_eq!(r.status, 403);
    assert!(r.set_cookie(serve::SESSION_COOKIE).is_none());
    // With a cookie that is not the form's.
    let mut h = form.to_vec();
    let forged = format!("{}={wrong}", serve::LOGIN_CSRF_COOKIE);
    h.push(("Cookie", &forged));
    let r = raw(
        &agent(),
        "POST",
        &format!("{}/login", env.base),
        &h,
        Some(&form_body(&fields)),
    );
    assert_eq!(r.status, 403);
    // With the cookie but no form token, and from another origin.
    let r = anon.post_form("/login", &[("username", "inst-a"), ("password", PASSWORD)]);
    assert_eq!(r.status, 403);
    let r = anon.request(
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://evil.example"),
        ],
        Some(&form_body(&fields)),
    );
    assert_eq!(r.status, 403);
    assert!(r.set_cookie(serve::SESSION_COOKIE).is_none());
    // Then the real thing works.
    let r = anon.post_form("/login", &fields);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(r.set_cookie(serve::SESSION_COOKIE).is_some());
}

// ---- 3. cookies -----------------------------------------------------------------------------

#[test]
fn the_login_cookie_is_http_only_and_strict_and_logout_ends_it() {
    let env = Env::new();
    let mut c = env.client();
    let page = c.get("/login");
    let login_cookie = page.set_cookie(serve::LOGIN_CSRF_COOKIE).unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(login_cookie.contains(attr), "{login_cookie}");
    }
    let r = c.post_form(
        "/login",
        &[
            ("csrf", &hidden_csrf(&page.text())),
            ("username", "res-a1"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status, 303);
    let cookie = r.set_cookie(serve::SESSION_COOKIE).unwrap().to_string();
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
        assert!(attrs.contains(&attr), "{cookie}");
    }
    assert!(!attrs.contains(&"Secure"), "not asked for: {cookie}");
    let token = c.cookie(serve::SESSION_COOKIE).unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    // The login form's cookie is spent.
    assert!(r
        .set_cookie(serve::LOGIN_CSRF_COOKIE)
        .unwrap()
        .contains("Max-Age=0"));
    // Two logins of the same user are two cookies.
    let other = env.login("res-a1");
    assert_ne!(other.cookie(serve::SESSION_COOKIE), Some(token.as_str()));

    // The old cookie works until logout.
    let with_old = |path: &str| {
        raw(
            &agent(),
            "GET",
            &format!("{}{path}", env.base),
            &[("Cookie", &format!("{}={token}", serve::SESSION_COOKIE))],
            None,
        )
    };
    assert_eq!(with_old("/").status, 200);
    assert_eq!(with_old("/api/me").status, 200);
    let csrf = c.get("/api/me").json()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c.post_form("/logout", &[("csrf", &csrf)]);
    assert_eq!(r.status, 303);
    let cleared = r.set_cookie(serve::SESSION_COOKIE).unwrap();
    assert!(
        cleared.starts_with(&format!("{}=;", serve::SESSION_COOKIE))
            && cleared.contains("Max-Age=0")
    );
    assert!(c.cookie(serve::SESSION_COOKIE).is_none());
    // The old cookie, sent again (as a thief would), no longer logs in.
    let r = with_old("/");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    assert_eq!(with_old("/api/me").status, 401);
    assert_eq!(with_old(&format!("/sessions/{}", env.ids.s_a1)).status, 303);
    // The other login of the same user goes on.
    let mut other = other;
    assert_eq!(other.get("/api/me").status, 200);
    // A made-up cookie is nobody.
    let r = raw(
        &agent(),
        "GET",
        &format!("{}/api/me", env.base),
        &[(
            "Cookie",
            &format!("{}={}", serve::SESSION_COOKIE, "a".repeat(64)),
        )],
        None,
    );
    assert_eq!(r.status, 401);
}

// ---- 4. login rate limiting -----------------------------------------------------------------

#[test]
fn five_wrong_passwords_lock_the_name_out_but_not_other_users() {
    let env = Env::new();
    let mut c = env.client();
    for i in 0..serve::MAX_FAILURES_PER_NAME {
        let r = c.login("inst-a", &format!("wrong password {i}"));
        assert_eq!(r.status, 401, "try {i}");
        assert!(r.text().contains("Wrong user name or password."));
        assert!(r.set_cookie(serve::SESSION_COOKIE).is_none());
    }
    // The sixth try, even with the right password (and in another case), is refused.
    for name in ["inst-a", "INST-A"] {
        let r = c.login(name, PASSWORD);
        assert_eq!(r.status, 429, "{name}");
        assert!(r.set_cookie(serve::SESSION_COOKIE).is_none());
        let retry: i64 = r
            .header("retry-after")
            .expect("429 says when to try again")
            .parse()
            .unwrap();
        assert!(
            (1..=serve::LOCKOUT_WINDOW_S).contains(&retry),
            "Retry-After {retry}"
        );
    }
    assert_eq!(c.get("/api/me").status, 401);
    // Another user, from the same address, is unaffected.
    let mut b = env.client();
    let r = b.login("inst-b", PASSWORD);
    assert_eq!(r.status, 303);
    assert_eq!(b.get("/api/me").json()["user"]["username"], "inst-b");
    // A success clears a name's failures: four wrong tries, a right one, four wrong ones and
    // a right one all pass.
    for round in 0..2 {
        let mut a = env.client();
        for i in 0..serve::MAX_FAILURES_PER_NAME - 1 {
            assert_eq!(
                a.login("res-a1", "not it at all").status,
                401,
                "{round} {i}"
            );
        }
        assert_eq!(a.login("res-a1", PASSWORD).status, 303, "round {round}");
    }
}

// ---- 5. security headers --------------------------------------------------------------------

fn assert_security_headers(r: &Reply, what: &str) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap_or_else(|| panic!("{what}: no script-src in {csp}"));
    assert!(
        !script_src.contains("'unsafe-inline'") && !script_src.contains("'unsafe-eval'"),
        "{what}: {script_src}"
    );
    let default_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("default-src"));
    assert_eq!(default_src, Some("default-src 'self'"), "{what}");
    for directive in [
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{what}: {csp}");
    }
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("same-origin"), "{what}");
}

/// No inline script: every `<script` loads a file, and no element has an event handler.
fn assert_no_inline_script(html: &str, what: &str) {
    for (at, _) in html.match_indices("<script") {
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        assert!(
            tag.contains(" src=\"/static/"),
            "{what}: inline script {tag}"
        );
        assert!(
            html[at..].starts_with(&format!("{tag}></script>")),
            "{what}"
        );
    }
    let lower = html.to_ascii_lowercase();
    for handler in [" onload=\"", " onclick=\"", " onerror=\"", "javascript:"] {
        assert!(!lower.contains(handler), "{what}: {handler}");
    }
}

#[test]
fn pages_carry_a_strict_content_security_policy() {
    let env = Env::new();
    let mut anon = env.client();
    let r = anon.get("/login");
    assert_security_headers(&r, "the login page");
    assert_no_inline_script(&r.text(), "the login page");
    assert_security_headers(&anon.get("/nothing"), "a 404 page");
    assert_security_headers(&anon.get("/"), "the redirect to the login");
    assert_security_headers(&anon.get("/api/me"), "an API 401");
    let mut c = env.login("admin");
    let i = env.ids;
    for path in [
        "/".to_string(),
        format!("/cohorts/{}", i.cohort_a),
        format!("/residents/{}", i.res_a1),
        format!("/sessions/{}", i.s_a1),
    ] {
        let r = c.get(&path);
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        assert_security_headers(&r, &path);
        assert_no_inline_script(&r.text(), &path);
    }
    // The session page loads the replay viewer from a file.
    assert!(c
        .get(&format!("/sessions/{}", i.s_a1))
        .text()
        .contains("<script src=\"/static/replay.js\"></script>"));
    assert_security_headers(&c.get("/export/sessions.csv"), "the CSV export");
    let js = c.get("/static/replay.js");
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert_security_headers(&js, "the viewer's script");
}

// ---- 6. injection and escaping --------------------------------------------------------------

#[test]
fn text_from_the_store_is_escaped_and_odd_ids_are_not_found() {
    let env = Env::new();
    let i = env.ids;
    let cohort_name = "<script>alert(\"c\")</script> & 'Q'";
    let display = "<img src=x onerror=\"alert('n')\">Eve";
    let cohort = env.store.create_cohort(cohort_name).unwrap();
    let eve = env
        .store
        .create_user("res-eve", display, Role::Resident, PASSWORD)
        .unwrap();
    let inst_a = env.store.user_by_name("inst-a").unwrap().unwrap();
    env.store.add_to_cohort(cohort.id, &eve).unwrap();
    env.store.add_to_cohort(cohort.id, &inst_a).unwrap();
    let esc_cohort = "&lt;script&gt;alert(&quot;c&quot;)&lt;/script&gt; &amp; &#39;Q&#39;";
    let esc_display = "&lt;img src=x onerror=&quot;alert(&#39;n&#39;)&quot;&gt;Eve";

    let mut c = env.login("inst-a");
    let home = c.get("/").text();
    assert!(
        home.contains(esc_cohort),
        "the home page escapes the cohort"
    );
    let page = c.get(&format!("/cohorts/{}", cohort.id)).text();
    assert!(page.contains(esc_cohort) && page.contains(esc_display));
    let page2 = c.get(&format!("/residents/{}", eve.id)).text();
    assert!(page2.contains(esc_display));
    for p in [&home, &page, &page2] {
        assert!(!p.contains("<script>alert") && !p.contains("<img src=x"));
        assert_no_inline_script(p, "a page with hostile names");
    }
    // JSON keeps the text as it is, as JSON.
    let api = c.get(&format!("/api/cohorts/{}", cohort.id));
    assert_eq!(api.header("content-type"), Some("application/json"));
    assert_eq!(api.json()["cohort"]["name"], cohort_name);
    assert_eq!(api.json()["residents"][0]["display_name"], display);
    // The resident's own page names them, escaped.
    let mut e = env.login("res-eve");
    let own = e.get("/").text();
    assert!(own.contains(esc_display) && !own.contains("<img src=x"));

    // A rating's comment is escaped on the session page.
    let comment = "</blockquote><script>alert('r')</script><b onclick=\"x()\">hi</b>";
    let r = c.rate_form(i.s_a1, comment);
    assert_eq!(r.status, 303);
    let page = c.get(&format!("/sessions/{}", i.s_a1)).text();
    assert!(page.contains(
        "&lt;/blockquote&gt;&lt;script&gt;alert(&#39;r&#39;)&lt;/script&gt;&lt;b onclick=&quot;x()&quot;&gt;hi&lt;/b&gt;"
    ));
    assert!(!page.contains("<script>alert") && !page.contains("<b onclick"));
    assert_no_inline_script(&page, "the rated session");
    let ratings = c.get(&format!("/api/sessions/{}/ratings", i.s_a1)).json();
    assert_eq!(ratings[0]["comment"], comment);
    // A CSV cell that a spreadsheet would run as a formula is neutralised.
    let mallory = env
        .store
        .create_user(
            "res-mallory",
            "=HYPERLINK(\"http://evil\")",
            Role::Resident,
            PASSWORD,
        )
        .unwrap();
    env.store.add_to_cohort(cohort.id, &mallory).unwrap();
    let bytes = std::fs::read(&fixture().stored[1]).unwrap();
    let sid = ingest_bytes(
        &env.store,
        Path::new("m.htlog"),
        &log_variant(&bytes, 30),
        None,
        &IngestTarget {
            resident_id: mallory.id,
            station_id: None,
            logs_dir: env.dir.path().join("logs"),
        },
    )
    .unwrap();
    let csv = c.get(&format!("/export/sessions.csv?session={sid}")).text();
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "{csv}"
    );

    // Ids that are not numbers are not found, wherever they are.
    let mut admin = env.login("admin");
    for path in [
        "/sessions/1%20OR%201%3D1",
        "/sessions/1%20OR%201=1",
        "/sessions/1;DROP%20TABLE%20sessions",
        "/sessions/1%3BDROP%20TABLE%20sessions",
        "/sessions/1'--",
        "/sessions/1%00",
        "/sessions/%31",
        "/sessions/1.0",
        "/sessions/0x1",
        "/sessions/99999999999999999999999",
        "/sessions/1%20OR%201%3D1/log",
        "/cohorts/1%20OR%201%3D1",
        "/residents/1;DROP",
        "/api/sessions/1%20OR%201%3D1",
        "/api/sessions/1;DROP/ratings",
        "/api/cohorts/1%20OR%201%3D1",
        "/api/residents/1%20OR%201%3D1/sessions",
        "/export/sessions.csv?session=1%20OR%201%3D1",
        "/export/sessions.csv?cohort=1;DROP%20TABLE%20sessions",
        "/export/xapi.json?resident=1%20OR%201%3D1",
    ] {
        let r = admin.get(path);
        // `%31` is `1`: the path is decoded before routing, and session 1 exists.
        let expect = if path == "/sessions/%31" { 200 } else { 404 };
        assert_eq!(r.status, expect, "{path}");
    }
    // A login name made of SQL is just a wrong name.
    let r = env.client().login("' OR '1'='1", "' OR '1'='1");
    assert_eq!(r.status, 401);
    let r = env.client().login("admin' --", "anything at all");
    assert_eq!(r.status, 401);
    // Everything is still there.
    for s in [i.s_a1, i.s_a2, i.s_b1] {
        assert!(env.store.session(s).unwrap().is_some());
    }
    assert_eq!(env.store.users().unwrap().len(), 8);
}

// ---- 7. station uploads ---------------------------------------------------------------------

fn upload_options(base: &str, token: &str, resident: &str) -> UploadOptions {
    UploadOptions {
        base_url: base.to_string(),
        token: token.to_string(),
        resident: resident.to_string(),
        chunk_bytes: 64 << 10,
        retries: 8,
        first_backoff: Duration::from_millis(20),
        timeout: Duration::from_secs(60),
    }
}

/// A station's request to the upload API.
fn station_request(
    env: &Env,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", "application/octet-stream")];
    if let Some(a) = &auth {
        h.push(("Authorization", a.as_str()));
    }
    raw(&agent(), method, &format!("{}{path}", env.base), &h, body)
}

/// Announces an upload; its id.
fn announce(env: &Env, token: &str, bytes: u64, sha256: &str, resident: &str) -> Reply {
    let body = serde_json::json!({"bytes": bytes, "sha256": sha256, "resident": resident});
    station_request(
        env,
        Some(token),
        "POST",
        "/api/uploads",
        Some(body.to_string().as_bytes()),
    )
}

fn announced_id(r: &Reply) -> String {
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/uploads/{id}").as_str())
    );
    id
}

fn refused_status(e: &UploadError) -> u16 {
    match e {
        UploadError::Refused { status, .. } => *status,
        e => panic!("expected a refusal, got {e}"),
    }
}

#[test]
fn stations_upload_logs_that_are_checked_before_they_are_stored() {
    let env = Env::new();
    let (station, token) = env.store.create_station("st1").unwrap();
    let (_, other_token) = env.store.create_station("st2").unwrap();
    let (_, revoked) = env.store.create_station("old").unwrap();
    env.store.revoke_station("old").unwrap();
    let log = &fixture().spare[0];
    let bytes = std::fs::read(log).unwrap();
    let sha = sha256_hex(&bytes);
    let a1 = env.ids.res_a1;
    let count = || env.store.sessions_of(a1, None).unwrap().len();
    assert_eq!(count(), 1);

    // Bad tokens: none, wrong, revoked; for every upload route.
    let opts = upload_options(&env.base, "hts_wrong", "res-a1");
    assert_eq!(refused_status(&upload_log(log, &opts).unwrap_err()), 401);
    let opts = upload_options(&env.base, &revoked, "res-a1");
    assert_eq!(refused_status(&upload_log(log, &opts).unwrap_err()), 401);
    let id = announced_id(&announce(&env, &token, bytes.len() as u64, &sha, "res-a1"));
    for t in [None, Some("hts_wrong"), Some(revoked.as_str()), Some("")] {
        for (method, path, body) in [
            ("POST", "/api/uploads".to_string(), Some(&b"{}"[..])),
            ("GET", format!("/api/uploads/{id}"), None),
            (
                "PUT",
                format!("/api/uploads/{id}?offset=0"),
                Some(&bytes[..10]),
            ),
            ("POST", format!("/api/uploads/{id}/finish"), None),
        ] {
            let r = station_request(&env, t, method, &path, body);
            assert_eq!(r.status, 401, "{method} {path} with {t:?}");
        }
    }
    // A dashboard login is not a station.
    let mut inst = env.login("inst-a");
    let r = inst.request("GET", &format!("/api/uploads/{id}"), &[], None);
    assert_eq!(r.status, 401);
    // Another station's upload is not there for it.
    let r = station_request(
        &env,
        Some(&other_token),
        "GET",
        &format!("/api/uploads/{id}"),
        None,
    );
    assert_eq!(r.status, 404);
    let r = station_request(
        &env,
        Some(&other_token),
        "PUT",
        &format!("/api/uploads/{id}?offset=0"),
        Some(&bytes[..10]),
    );
    assert_eq!(r.status, 404);
    // Ids that are not upload ids.
    for bad in ["abc", "../../etc/passwd", &"g".repeat(32)] {
        let r = station_request(
            &env,
            Some(&token),
            "GET",
            &format!("/api/uploads/{}", url_encode(bad)),
            None,
        );
        assert_eq!(r.status, 404, "{bad}");
    }

    // Announcements that are refused.
    let r = announce(&env, &token, MAX_UPLOAD + 1, &sha, "res-a1");
    assert_eq!(r.status, 413, "{}", r.text());
    let r = announce(&env, &token, bytes.len() as u64, &sha, "nobody");
    assert_eq!(r.status, 400);
    let r = announce(&env, &token, bytes.len() as u64, &sha, "inst-a");
    assert_eq!(r.status, 400, "an instructor is not a resident");
    let r = announce(&env, &token, bytes.len() as u64, "abc", "res-a1");
    assert_eq!(r.status, 400);
    let r = announce(&env, &token, 0, &sha, "res-a1");
    assert_eq!(r.status, 400);
    let r = station_request(
        &env,
        Some(&token),
        "POST",
        "/api/uploads",
        Some(b"not json"),
    );
    assert_eq!(r.status, 400);
    let opts = upload_options(&env.base, &token, "nobody");
    assert_eq!(refused_status(&upload_log(log, &opts).unwrap_err()), 400);

    // Chunks: at the wrong offset (409 with what has arrived), past the announced size (413),
    // and finishing early (409).
    let put = |id: &str, offset: u64, body: &[u8]| {
        station_request(
            &env,
            Some(&token),
            "PUT",
            &format!("/api/uploads/{id}?offset={offset}"),
            Some(body),
        )
    };
    let r = put(&id, 0, &bytes[..100]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["received_bytes"], 100);
    for wrong in [0, 50, 101, 1 << 20] {
        let r = put(&id, wrong, &bytes[wrong.min(100) as usize..200]);
        assert_eq!(r.status, 409, "offset {wrong}");
        assert_eq!(r.json()["received_bytes"], 100);
    }
    let r = station_request(
        &env,
        Some(&token),
        "PUT",
        &format!("/api/uploads/{id}"),
        Some(&bytes[100..200]),
    );
    assert_eq!(r.status, 400, "no offset");
    let r = station_request(
        &env,
        Some(&token),
        "POST",
        &format!("/api/uploads/{id}/finish"),
        None,
    );
    assert_eq!(r.status, 409, "finish before every byte arrived");
    let mut past = bytes[100..].to_vec();
    past.push(0);
    let r = put(&id, 100, &past);
    assert_eq!(r.status, 413);
    let state = station_request(
        &env,
        Some(&token),
        "GET",
        &format!("/api/uploads/{id}"),
        None,
    );
    assert_eq!(state.status, 200);
    assert_eq!(state.json()["received_bytes"], 100);
    assert_eq!(state.json()["expected_bytes"], bytes.len());
    assert!(state.json()["session_id"].is_null());

    // A digest that is not the bytes': finish is 422, nothing is stored, and the upload starts
    // over.
    let not_sha = sha256_hex(b"something else");
    let bad = announced_id(&announce(
        &env,
        &token,
        bytes.len() as u64,
        &not_sha,
        "res-a1",
    ));
    assert_eq!(put(&bad, 0, &bytes).status, 200);
    let r = station_request(
        &env,
        Some(&token),
        "POST",
        &format!("/api/uploads/{bad}/finish"),
        None,
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("SHA-256"));
    assert_eq!(count(), 1);
    let state = station_request(
        &env,
        Some(&token),
        "GET",
        &format!("/api/uploads/{bad}"),
        None,
    );
    assert_eq!(state.json()["received_bytes"], 0);
    assert!(state.json()["session_id"].is_null());
    assert!(!env
        .dir
        .path()
        .join("data/logs")
        .join(format!("{sha}.htlog"))
        .exists());
    // Bytes that are not a log: 422.
    let junk = b"this is not a session log, whatever its digest says".repeat(20);
    let j = announced_id(&announce(
        &env,
        &token,
        junk.len() as u64,
        &sha256_hex(&junk),
        "res-a1",
    ));
    assert_eq!(put(&j, 0, &junk).status, 200);
    let r = station_request(
        &env,
        Some(&token),
        "POST",
        &format!("/api/uploads/{j}/finish"),
        None,
    );
    assert_eq!(r.status, 422);
    // A log cut short inside its header: 422 too.
    let cut = &bytes[..20];
    let k = announced_id(&announce(
        &env,
        &token,
        cut.len() as u64,
        &sha256_hex(cut),
        "res-a1",
    ));
    assert_eq!(put(&k, 0, cut).status, 200);
    let r = station_request(
        &env,
        Some(&token),
        "POST",
        &format!("/api/uploads/{k}/finish"),
        None,
    );
    assert_eq!(r.status, 422);
    assert_eq!(count(), 1);

    // The real thing, by hand: chunks, then finish; a second finish answers the same session.
    let real = announced_id(&announce(
        &env,
        &token,
        bytes.len() as u64,
        &sha.to_uppercase(),
        "res-a1",
    ));
    let mut offset = 0;
    for chunk in bytes.chunks(100 << 10) {
        let r = put(&real, offset, chunk);
        assert_eq!(r.status, 200);
        offset += chunk.len() as u64;
        assert_eq!(r.json()["received_bytes"], offset);
    }
    let r = station_request(
        &env,
        Some(&token),
        "POST",
        &format!("/api/uploads/{real}/finish"),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let sid = r.json()["session_id"].as_i64().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/sessions/{sid}").as_str())
    );
    let again = station_request(
        &env,
        Some(&token),
        "POST",
        &format!("/api/uploads/{real}/finish"),
        None,
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["session_id"], sid);
    assert_eq!(
        put(&real, offset, b"x").status,
        409,
        "a finished upload takes no more bytes"
    );
    let s = env.store.session(sid).unwrap().unwrap();
    assert_eq!(s.summary.resident_id, a1);
    assert_eq!(s.summary.scenario, SCENARIO);
    assert_eq!(s.station.as_deref(), Some(station.name.as_str()));
    assert_eq!(s.log_sha256, sha);
    assert_eq!(count(), 2);
    let (path, _) = env.store.session_log(sid).unwrap().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), bytes);
    assert!(
        !env.dir
            .path()
            .join(format!("data/uploads/{real}.part"))
            .exists(),
        "the upload's part file is gone"
    );

    // The same log through the client: the same session.
    let report = upload_log(log, &upload_options(&env.base, &token, "res-a1")).unwrap();
    assert_eq!(report.session_id, sid);
    assert_eq!(report.sha256, sha);
    assert_eq!(report.bytes, bytes.len() as u64);
    assert_eq!(report.resumes, 0);
    assert_eq!(report.chunks_sent, bytes.len().div_ceil(64 << 10) as u64);
    assert_eq!(report.session_url, format!("{}/sessions/{sid}", env.base));
    assert_eq!(count(), 2);
    // The same log named as another resident's is refused (409), not filed under either.
    let err = upload_log(log, &upload_options(&env.base, &token, "res-a2")).unwrap_err();
    assert_eq!(refused_status(&err), 409, "{err}");
    assert!(err.to_string().contains("another resident"), "{err}");
    assert_eq!(count(), 2);
    // The instructor sees it, with its station.
    let page = inst.get(&format!("/sessions/{sid}")).text();
    assert!(page.contains("<dt>Station</dt><dd>st1</dd>"));
    let list = inst.get(&format!("/api/residents/{a1}/sessions")).json();
    let ids: Vec<i64> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&sid) && ids.contains(&env.ids.s_a1));
}

// ---- 8. resuming after dropped connections --------------------------------------------------

/// What the proxy does to a PUT request (numbered from 1, in the order they reach it).
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Forward the head and this many body bytes, then cut the connection both ways.
    Cut { put: usize, body_bytes: usize },
    /// Cut every connection and stop listening for this long (the server is away).
    Down { put: usize, for_ms: u64 },
    /// Cut this PUT and every later one after their heads.
    CutFrom { put: usize },
}

#[derive(Default)]
struct ProxyState {
    puts: AtomicUsize,
    cuts: AtomicUsize,
    downs: AtomicUsize,
    accepted: AtomicUsize,
    down_until: Mutex<Option<Instant>>,
    conns: Mutex<Vec<TcpStream>>,
    problems: Mutex<Vec<String>>,
}

/// A TCP proxy in front of the server that drops connections as told.
struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: SocketAddr, faults: Vec<Fault>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(ProxyState::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let faults = Arc::new(faults);
        let thread = std::thread::spawn(move || {
            let mut listener = Some(listener);
            let mut rebinds = 0;
            while !sp.load(Ordering::SeqCst) {
                let down = st
                    .down_until
                    .lock()
                    .unwrap()
                    .is_some_and(|t| Instant::now() < t);
                if down {
                    listener = None;
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                let Some(l) = &listener else {
                    match TcpListener::bind(addr) {
                        Ok(l) => {
                            l.set_nonblocking(true).unwrap();
                            listener = Some(l);
                        }
                        Err(e) => {
                            rebinds += 1;
                            assert!(rebinds < 500, "cannot listen on {addr} again: {e}");
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                    continue;
                };
                match l.accept() {
                    Ok((client, _)) => {
                        st.accepted.fetch_add(1, Ordering::SeqCst);
                        let (st, faults) = (st.clone(), faults.clone());
                        std::thread::spawn(move || {
                            proxy_connection(client, upstream, &st, &faults)
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => st.problems.lock().unwrap().push(format!("accept: {e}")),
                }
            }
        });
        Self {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.state.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn cut(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// Forwards one client connection request by request (the client's side is parsed so the
/// n-th PUT can be cut), the server's answers as they come.
fn proxy_connection(client: TcpStream, upstream: SocketAddr, st: &ProxyState, faults: &[Fault]) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    {
        let mut conns = st.conns.lock().unwrap();
        conns.push(client.try_clone().unwrap());
        conns.push(server.try_clone().unwrap());
    }
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut to_server = server.try_clone().unwrap();
    // At most a few thousand requests on one connection: every loop ends.
    for _ in 0..10_000 {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => {
                    let _ = to_server.shutdown(Shutdown::Write);
                    return;
                }
                Ok(_) => {}
            }
            head.extend_from_slice(&line);
            if line == b"\r\n" || head.len() > 64 << 10 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        if text.contains("transfer-encoding:") {
            st.problems
                .lock()
                .unwrap()
                .push("a chunked request body: the proxy only knows Content-Length".into());
            cut(&client, &server);
            return;
        }
        let len: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        let fault = if text.starts_with("put ") {
            let n = st.puts.fetch_add(1, Ordering::SeqCst) + 1;
            faults.iter().copied().find(|f| match f {
                Fault::Cut { put, .. } | Fault::Down { put, .. } => *put == n,
                Fault::CutFrom { put } => n >= *put,
            })
        } else {
            None
        };
        let forward_body = |reader: &mut BufReader<TcpStream>, to: &mut TcpStream, n: usize| {
            let mut body = vec![0; n];
            reader
                .read_exact(&mut body)
                .and_then(|()| to.write_all(&body))
        };
        match fault {
            Some(f @ (Fault::Cut { .. } | Fault::CutFrom { .. })) => {
                let body_bytes = match f {
                    Fault::Cut { body_bytes, .. } => body_bytes,
                    _ => 0,
                };
                let _ = to_server.write_all(&head);
                let _ = forward_body(&mut reader, &mut to_server, body_bytes.min(len));
                st.cuts.fetch_add(1, Ordering::SeqCst);
                cut(&client, &server);
                return;
            }
            Some(Fault::Down { for_ms, .. }) => {
                *st.down_until.lock().unwrap() =
                    Some(Instant::now() + Duration::from_millis(for_ms));
                st.downs.fetch_add(1, Ordering::SeqCst);
                for c in st.conns.lock().unwrap().iter() {
                    let _ = c.shutdown(Shutdown::Both);
                }
                cut(&client, &server);
                return;
            }
            None => {
                if to_server.write_all(&head).is_err()
                    || forward_body(&mut reader, &mut to_server, len).is_err()
                {
                    cut(&client, &server);
                    return;
                }
            }
        }
    }
    cut(&client, &server);
}

#[test]
fn uploads_resume_after_dropped_connections_and_a_server_away() {
    let env = Env::new();
    let (_, token) = env.store.create_station("st1").unwrap();
    let upstream = env.running.as_ref().unwrap().addr;
    let chunk = 32 << 10;

    // Cut mid-body of the second chunk, then right after the head of the retried one.
    let log = &fixture().spare[0];
    let bytes = std::fs::read(log).unwrap();
    assert!(bytes.len() > 4 * chunk, "enough chunks to cut");
    let proxy = Proxy::start(
        upstream,
        vec![
            Fault::Cut {
                put: 2,
                body_bytes: chunk / 2,
            },
            Fault::Cut {
                put: 3,
                body_bytes: 0,
            },
        ],
    );
    let opts = UploadOptions {
        chunk_bytes: chunk,
        ..upload_options(&format!("http://{}", proxy.addr), &token, "res-a1")
    };
    let report = upload_log(log, &opts).expect("the upload resumes and succeeds");
    assert_eq!(proxy.state.cuts.load(Ordering::SeqCst), 2);
    assert!(
        proxy.state.problems.lock().unwrap().is_empty(),
        "{:?}",
        proxy.state.problems
    );
    assert!(report.resumes >= 2, "{report:?}");
    assert!(
        report.chunks_sent > bytes.len().div_ceil(chunk) as u64,
        "{report:?}"
    );
    let s = env.store.session(report.session_id).unwrap().unwrap();
    assert_eq!(s.summary.resident_id, env.ids.res_a1);
    assert_eq!(s.log_sha256, sha256_hex(&bytes));
    let (path, _) = env.store.session_log(report.session_id).unwrap().unwrap();
    assert_eq!(
        sha256_hex(&std::fs::read(path).unwrap()),
        sha256_hex(&bytes)
    );
    drop(proxy);

    // The server goes away for 300 ms in the middle of the upload: connections are cut and
    // refused until it is back.
    let log = &fixture().spare[1];
    let bytes = std::fs::read(log).unwrap();
    let proxy = Proxy::start(
        upstream,
        vec![Fault::Down {
            put: 3,
            for_ms: 300,
        }],
    );
    let opts = UploadOptions {
        chunk_bytes: chunk,
        ..upload_options(&format!("http://{}", proxy.addr), &token, "res-b1")
    };
    let report = upload_log(log, &opts).expect("the upload waits for the server and succeeds");
    assert_eq!(proxy.state.downs.load(Ordering::SeqCst), 1);
    assert!(
        proxy.state.accepted.load(Ordering::SeqCst) >= 2,
        "the client came back after the server did"
    );
    assert!(
        proxy.state.problems.lock().unwrap().is_empty(),
        "{:?}",
        proxy.state.problems
    );
    assert!(report.resumes >= 1, "{report:?}");
    let s = env.store.session(report.session_id).unwrap().unwrap();
    assert_eq!(s.summary.resident_id, env.ids.res_b1);
    assert_eq!(s.log_sha256, sha256_hex(&bytes));
    let (path, _) = env.store.session_log(report.session_id).unwrap().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), bytes);
    drop(proxy);

    // A server that takes every chunk's head and then drops the connection: the client gives
    // up after its tries instead of sending the chunk forever.
    let proxy = Proxy::start(upstream, vec![Fault::CutFrom { put: 2 }]);
    let opts = UploadOptions {
        chunk_bytes: chunk,
        retries: 3,
        ..upload_options(&format!("http://{}", proxy.addr), &token, "res-a1")
    };
    match upload_log(&fixture().stored[0], &opts) {
        Err(UploadError::Unreachable { tries, url, .. }) => {
            assert_eq!(tries, 3);
            assert!(url.contains("?offset="), "{url}");
        }
        other => panic!("expected to give up, got {other:?}"),
    }
    assert_eq!(proxy.state.cuts.load(Ordering::SeqCst), 3);
    drop(proxy);

    // A server that never comes back: the client gives up after its tries.
    let gone = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let opts = UploadOptions {
        retries: 3,
        ..upload_options(&format!("http://{addr}"), &token, "res-a1")
    };
    match upload_log(log, &opts) {
        Err(UploadError::Unreachable { tries, .. }) => assert_eq!(tries, 3),
        other => panic!("expected to give up, got {other:?}"),
    }
}

// ---- 9. the CLI end to end ------------------------------------------------------------------

/// Kills the child when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn haptwin_in(data_home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_haptwin"));
    c.env("XDG_DATA_HOME", data_home)
        .env_remove("HAPTWIN_DB")
        .env_remove("HAPTWIN_STATION_TOKEN");
    c
}

fn run_ok(mut cmd: Command, stdin: Option<&str>) -> String {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_cli_adds_accounts_and_stations_serves_and_takes_uploads_and_imports() {
    let home = tempfile::tempdir().unwrap();
    let [upload, import] = [&fixture().spare[0], &fixture().stored[0]];
    let res_password = "resident one's password";

    let out = run_ok(
        {
            let mut c = haptwin_in(home.path());
            c.args([
                "user",
                "add",
                "res1",
                "--role",
                "resident",
                "--cohort",
                "C1",
                "--password-stdin",
            ]);
            c
        },
        Some(&format!("{res_password}\n")),
    );
    assert!(out.contains("added resident `res1`"), "{out}");
    assert!(
        !out.contains(res_password),
        "a password from stdin is not echoed"
    );
    assert!(home.path().join("haptwin/haptwin.db").exists());

    let out = run_ok(
        {
            let mut c = haptwin_in(home.path());
            c.args(["station", "add", "st1"]);
            c
        },
        None,
    );
    let token = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("hts_") && !l.contains(' '))
        .unwrap_or_else(|| panic!("no token in:\n{out}"))
        .to_string();

    let mut serve = haptwin_in(home.path());
    serve
        .args(["serve", "--addr", "127.0.0.1:0", "--workers", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = KillOnDrop(serve.spawn().unwrap());
    let stdout = server.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut addr = None;
    let mut admin_password = None;
    let mut seen = Vec::new();
    while addr.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("haptwin serve said no address ({e}); it said {seen:?}"));
        if let Some(rest) = line.split("created `admin` with password ").nth(1) {
            admin_password = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(rest) = line.split("dashboard at http://").nth(1) {
            addr = rest.split_whitespace().next().map(str::to_string);
        }
        seen.push(line);
        assert!(seen.len() < 20, "{seen:?}");
    }
    let addr = addr.unwrap();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    let admin_password = admin_password.expect("the first admin's password is shown");
    let base = format!("http://{addr}");

    let out = run_ok(
        {
            let mut c = haptwin_in(home.path());
            c.arg("upload").arg(upload).args([
                "--to",
                &base,
                "--resident",
                "res1",
                "--token",
                &token,
                "--json",
            ]);
            c
        },
        None,
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let uploaded = report["session_id"].as_i64().expect("a session id");
    assert_eq!(report["resumes"], 0);
    assert_eq!(
        report["sha256"],
        sha256_hex(&std::fs::read(upload).unwrap())
    );
    assert_eq!(report["session_url"], format!("{base}/sessions/{uploaded}"));
    // A wrong token fails, saying why.
    let out = haptwin_in(home.path())
        .arg("upload")
        .arg(upload)
        .args(["--to", &base, "--resident", "res1", "--token", "hts_wrong"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    let out = run_ok(
        {
            let mut c = haptwin_in(home.path());
            c.arg("import").arg(import).args(["--resident", "res1"]);
            c
        },
        None,
    );
    let imported: i64 = out
        .split("stored as session ")
        .nth(1)
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert_ne!(imported, uploaded);
    let out = haptwin_in(home.path())
        .arg("import")
        .arg(import)
        .args(["--resident", "nobody"])
        .output()
        .unwrap();
    assert!(!out.status.success());

    // The running dashboard shows both to the resident, and the admin's password works.
    let mut c = Client::new(&base);
    assert_eq!(c.login("res1", res_password).status, 303);
    let me = c.get("/api/me").json();
    assert_eq!(me["user"]["role"], "resident");
    let id = me["user"]["id"].as_i64().unwrap();
    let sessions = c.get(&format!("/api/residents/{id}/sessions")).json();
    let mut ids: Vec<i64> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = vec![uploaded, imported];
    want.sort_unstable();
    assert_eq!(ids, want);
    assert_eq!(c.get("/api/cohorts").json()[0]["name"], "C1");
    let mut admin = Client::new(&base);
    assert_eq!(admin.login("admin", &admin_password).status, 303);
    assert_eq!(admin.get(&format!("/sessions/{uploaded}")).status, 200);
    drop(server);
}
