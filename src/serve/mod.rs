//! `haptwin serve`: the instructors' dashboard (HTML pages) and its JSON API, and the stations'
//! upload API, over one [`Store`].
//!
//! Owns the HTTP server (a fixed pool of worker threads over `tiny_http`), routing, logins,
//! CSRF, rate limiting and the security headers. Pages are in [`pages`], the JSON API, exports
//! and uploads in [`api`].
//!
//! Contract:
//! - Every route decides access through the store ([`Store::can_view_session`] and friends):
//!   no login → the login page (pages) or 401 (API); someone else's resident, cohort or
//!   session → 403; nothing there → 404.
//! - Logins are cookies (`haptwin_session`: random, `HttpOnly`, `SameSite=Strict`, `Secure`
//!   with `--secure-cookies`), kept in the store as digests and ended by logging out or expiry.
//! - Every state-changing request made with a login cookie carries the login's CSRF token (a
//!   form's `csrf` field or an `X-CSRF-Token` header) and, when the browser sends `Origin`, comes
//!   from this server; the login form itself uses a double-submit cookie.
//! - Five failed logins for one name, or twenty from one address, within 15 minutes lock
//!   further tries out (429, `Retry-After`) until the window passes.
//! - Stations upload with `Authorization: Bearer <station token>`; an upload is limited in size
//!   and stored only once its SHA-256 and log checks pass ([`crate::store::ingest`]).
//! - Pages are served with a strict Content-Security-Policy (no inline script), `nosniff`,
//!   `DENY` framing and no referrer to other sites (`Referrer-Policy: same-origin`: under
//!   `no-referrer` a browser sends `Origin: null` on the dashboard's own form posts, which the
//!   origin check above must refuse).

pub mod api;
pub mod client;
pub mod pages;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::store::{now_unix_s, Store, StoreError, User};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free one).
    pub addr: String,
    /// Worker threads answering requests.
    pub workers: usize,
    /// Folder for uploaded logs and uploads in progress.
    pub data_dir: PathBuf,
    /// Largest log a station may upload, bytes.
    pub max_upload_bytes: u64,
    /// Mark cookies `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// How long a login lasts, seconds.
    pub login_ttl_s: i64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            workers: 16,
            data_dir: PathBuf::from("haptwin-data"),
            max_upload_bytes: 512 << 20,
            secure_cookies: false,
            login_ttl_s: 12 * 3600,
        }
    }
}

/// Connections the store's pool keeps for a server with `workers` worker threads: one per
/// worker (a worker holds one connection at a time, and never waits for a second), at least
/// two, at most 64.
pub fn store_connections(workers: usize) -> usize {
    workers.clamp(2, 64)
}

/// What failed starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {problem}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        problem: String,
    },
    /// A worker thread could not be started.
    #[error("cannot start a server thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// A request, read whole.
#[derive(Debug, Clone, Default)]
pub struct Req {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The client's address.
    pub remote: String,
}

impl Req {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The cookie named `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    /// The query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as form fields (`application/x-www-form-urlencoded`).
    pub fn form(&self) -> Vec<(String, String)> {
        parse_query(&String::from_utf8_lossy(&self.body))
    }

    /// Whether this is an API request (JSON answers).
    pub fn is_api(&self) -> bool {
        self.path.starts_with("/api/")
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Resp {
    /// A response with `status`, content type and body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }
    /// An HTML page.
    pub fn html(status: u16, body: String) -> Self {
        Self::new(status, "text/html; charset=utf-8", body)
    }
    /// JSON.
    pub fn json(status: u16, value: &impl serde::Serialize) -> Self {
        Self::new(
            status,
            "application/json",
            serde_json::to_vec(value).unwrap_or_default(),
        )
    }
    /// A redirect after a form (303 See Other).
    pub fn redirect(to: &str) -> Self {
        Self::new(303, "text/plain; charset=utf-8", format!("See {to}\n")).with("Location", to)
    }
    /// Adds a header.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Why a route did not answer with its content.
#[derive(Debug, Clone, PartialEq)]
pub enum Fail {
    /// Not logged in (or a bad station token).
    Unauthorized,
    /// Logged in, not allowed.
    Forbidden(String),
    /// Nothing there.
    NotFound,
    /// The request is wrong.
    Bad(String),
    /// The method is not allowed on this path.
    Method,
    /// The request does not fit the resource's state.
    Conflict(String),
    /// The body is too large.
    TooLarge(String),
    /// Too many failed logins.
    TooMany {
        /// Seconds until the next try.
        retry_after_s: i64,
    },
    /// The server failed.
    Internal(String),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => Fail::Bad(m),
            StoreError::NotFound { .. } => Fail::NotFound,
            StoreError::Exists { .. } => Fail::Conflict(e.to_string()),
            e => Fail::Internal(e.to_string()),
        }
    }
}

impl Fail {
    fn status(&self) -> u16 {
        match self {
            Fail::Unauthorized => 401,
            Fail::Forbidden(_) => 403,
            Fail::NotFound => 404,
            Fail::Bad(_) => 400,
            Fail::Method => 405,
            Fail::Conflict(_) => 409,
            Fail::TooLarge(_) => 413,
            Fail::TooMany { .. } => 429,
            Fail::Internal(_) => 500,
        }
    }

    fn message(&self) -> String {
        match self {
            Fail::Unauthorized => "log in first".into(),
            Fail::Forbidden(m) => format!("not allowed: {m}"),
            Fail::NotFound => "not found".into(),
            Fail::Bad(m) | Fail::Conflict(m) | Fail::TooLarge(m) => m.clone(),
            Fail::Method => "method not allowed".into(),
            Fail::TooMany { retry_after_s } => {
                format!("too many failed logins: try again in {retry_after_s} s")
            }
            Fail::Internal(_) => "internal error (see the server's log)".into(),
        }
    }

    /// The response for `req`: JSON for the API, a page otherwise (a login redirect for
    /// [`Fail::Unauthorized`]).
    pub fn respond(&self, req: &Req) -> Resp {
        if let Fail::Internal(m) = self {
            eprintln!("haptwin serve: {} {}: {m}", req.method, req.path);
        }
        let mut r = if req.is_api() {
            Resp::json(
                self.status(),
                &serde_json::json!({"error": self.message(), "status": self.status()}),
            )
        } else if *self == Fail::Unauthorized && req.method == "GET" {
            Resp::redirect("/login")
        } else {
            Resp::html(
                self.status(),
                pages::error_page(self.status(), &self.message()),
            )
        };
        if let Fail::TooMany { retry_after_s } = self {
            r = r.with("Retry-After", &retry_after_s.to_string());
        }
        r
    }
}

/// A route's result.
pub type Answer = Result<Resp, Fail>;

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Login {
    /// Who.
    pub user: User,
    /// The login's CSRF token.
    pub csrf: String,
    /// The login's cookie token.
    pub token: String,
}

/// The failed-login windows.
#[derive(Debug, Default)]
struct Limiter {
    failures: HashMap<String, Vec<i64>>,
}

/// Failed logins for one name allowed in [`LOCKOUT_WINDOW_S`].
pub const MAX_FAILURES_PER_NAME: usize = 5;
/// Failed logins from one address allowed in [`LOCKOUT_WINDOW_S`].
pub const MAX_FAILURES_PER_ADDRESS: usize = 20;
/// The window failed logins are counted in, seconds.
pub const LOCKOUT_WINDOW_S: i64 = 15 * 60;

/// The dashboard: the store and the server's state, shared by the workers.
#[derive(Debug)]
pub struct App {
    /// The store.
    pub store: Arc<Store>,
    /// The configuration.
    pub cfg: ServeConfig,
    limiter: Mutex<Limiter>,
    /// Locks taken by an upload's id, so that its check-then-write steps (a chunk, the finish)
    /// run one at a time even when a request is sent again while the first copy is still
    /// being handled.
    upload_locks: Vec<Mutex<()>>,
}

/// Largest body of a request other than an upload chunk.
const MAX_BODY: u64 = 64 * 1024;
/// Largest upload chunk.
pub const MAX_CHUNK: u64 = 8 << 20;
/// Upload locks (uploads share them by their id's hash).
const UPLOAD_LOCKS: usize = 64;

impl App {
    /// The dashboard over `store`.
    pub fn new(store: Arc<Store>, cfg: ServeConfig) -> Self {
        Self {
            store,
            cfg,
            limiter: Mutex::new(Limiter::default()),
            upload_locks: (0..UPLOAD_LOCKS).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Holds the lock of upload `id` until the guard is dropped.
    pub fn lock_upload(&self, id: &str) -> std::sync::MutexGuard<'_, ()> {
        let h = id.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        self.upload_locks[h % self.upload_locks.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The logged-in user of `req`, if any.
    pub fn login(&self, req: &Req) -> Result<Option<Login>, Fail> {
        let Some(token) = req.cookie(SESSION_COOKIE).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        Ok(self
            .store
            .login(&token)?
            .map(|(user, csrf)| Login { user, csrf, token }))
    }

    /// The logged-in user, or [`Fail::Unauthorized`]; for a state-changing method, also checks
    /// the CSRF token (form field `csrf` or header `X-CSRF-Token`) and the origin.
    pub fn require_login(&self, req: &Req) -> Result<Login, Fail> {
        let login = self.login(req)?.ok_or(Fail::Unauthorized)?;
        if req.method != "GET" && req.method != "HEAD" {
            check_origin(req)?;
            let sent = req
                .header("x-csrf-token")
                .map(str::to_string)
                .or_else(|| {
                    req.form()
                        .into_iter()
                        .find(|(k, _)| k == "csrf")
                        .map(|(_, v)| v)
                })
                .unwrap_or_default();
            if !constant_time_eq(sent.as_bytes(), login.csrf.as_bytes()) {
                return Err(Fail::Forbidden("missing or wrong CSRF token".into()));
            }
        }
        Ok(login)
    }

    /// Seconds until `name` or `remote` may try to log in again (`None`: now).
    pub fn locked_out(&self, name: &str, remote: &str) -> Option<i64> {
        let now = now_unix_s();
        let mut l = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for (key, max) in [
            (
                format!("name:{}", name.to_lowercase()),
                MAX_FAILURES_PER_NAME,
            ),
            (format!("addr:{remote}"), MAX_FAILURES_PER_ADDRESS),
        ] {
            if let Some(v) = l.failures.get_mut(&key) {
                v.retain(|t| now - t < LOCKOUT_WINDOW_S);
                if v.len() >= max {
                    let until = v[v.len() - max] + LOCKOUT_WINDOW_S - now;
                    wait = Some(wait.map_or(until, |w: i64| w.max(until)).max(1));
                }
            }
        }
        wait
    }

    /// Counts a failed login.
    pub fn login_failed(&self, name: &str, remote: &str) {
        let now = now_unix_s();
        let mut l = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        if l.failures.len() > 100_000 {
            l.failures
                .retain(|_, v| v.last().is_some_and(|t| now - t < LOCKOUT_WINDOW_S));
        }
        for key in [
            format!("name:{}", name.to_lowercase()),
            format!("addr:{remote}"),
        ] {
            l.failures.entry(key).or_default().push(now);
        }
    }

    /// Forgets a name's failures after it logged in.
    pub fn login_succeeded(&self, name: &str) {
        let mut l = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        l.failures.remove(&format!("name:{}", name.to_lowercase()));
    }

    /// A `Set-Cookie` value.
    pub fn cookie(&self, name: &str, value: &str, max_age_s: i64) -> String {
        format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
            if self.cfg.secure_cookies {
                "; Secure"
            } else {
                ""
            }
        )
    }

    /// Answers one request.
    pub fn handle(&self, req: &Req) -> Resp {
        let result = if req.is_api() || req.path == "/healthz" {
            api::route(self, req)
        } else {
            pages::route(self, req)
        };
        let mut resp = match result {
            Ok(r) => r,
            Err(f) => f.respond(req),
        };
        for (k, v) in SECURITY_HEADERS {
            if !resp.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)) {
                resp.headers.push(((*k).into(), (*v).into()));
            }
        }
        resp
    }
}

/// The login cookie's name.
pub const SESSION_COOKIE: &str = "haptwin_session";
/// The login form's double-submit cookie's name.
pub const LOGIN_CSRF_COOKIE: &str = "haptwin_login_csrf";

const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
         script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    // Not `no-referrer`: under it browsers send `Origin: null` with the dashboard's own form
    // posts (login, logout, ratings), and `check_origin` refuses them all.
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
];

/// Whether two byte strings are equal, in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A state-changing request whose `Origin` (when sent) is not this server is refused.
pub fn check_origin(req: &Req) -> Result<(), Fail> {
    let (Some(origin), Some(host)) = (req.header("origin"), req.header("host")) else {
        return Ok(());
    };
    let ok = origin == format!("http://{host}") || origin == format!("https://{host}");
    if ok {
        Ok(())
    } else {
        Err(Fail::Forbidden(format!(
            "request from another origin ({origin})"
        )))
    }
}

/// Decodes `%XX` and `+` in a URL-encoded string (a bad escape is kept as it is).
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).and_then(|c| hex(*c)),
                b.get(i + 2).and_then(|c| hex(*c)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes `s` for a URL query or form.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `a=1&b=2`.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (url_decode(k), url_decode(v)),
            None => (url_decode(p), String::new()),
        })
        .collect()
}

/// The running server.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Stops accepting, finishes the requests in hand and joins the workers.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }

    /// Waits until the workers end (they end on [`Running::shutdown`] from elsewhere, or
    /// never: a foreground server runs until it is killed).
    pub fn wait(mut self) {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Starts the server over `store`.
pub fn start(store: Arc<Store>, cfg: ServeConfig) -> Result<Running, ServeError> {
    let bind = |problem: String| ServeError::Bind {
        addr: cfg.addr.clone(),
        problem,
    };
    let listener = std::net::TcpListener::bind(&cfg.addr).map_err(|e| bind(e.to_string()))?;
    no_delay(&listener);
    let server =
        tiny_http::Server::from_listener(listener, None).map_err(|e| bind(e.to_string()))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| ServeError::Bind {
            addr: cfg.addr.clone(),
            problem: "not an IP address".into(),
        })?;
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let app = Arc::new(App::new(store, cfg.clone()));
    let mut workers = Vec::new();
    for i in 0..cfg.workers.max(1) {
        let (server, stop, app) = (server.clone(), stop.clone(), app.clone());
        let w = std::thread::Builder::new()
            .name(format!("haptwin-http-{i}"))
            .spawn(move || worker(&server, &stop, &app))
            .map_err(ServeError::Thread)?;
        workers.push(w);
    }
    Ok(Running {
        addr,
        server,
        stop,
        workers,
    })
}

/// Turns Nagle's algorithm off for the connections `listener` accepts (Linux gives accepted
/// sockets the listener's `TCP_NODELAY`; tiny_http does not set it). tiny_http writes an
/// answer's head and its body separately: with Nagle on, the body waited for the client's
/// delayed acknowledgement of the head, about 40 ms on Linux, on every page of less than about
/// 64 kB.
fn no_delay(listener: &std::net::TcpListener) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: the descriptor is the listener's, open for the whole call; the option value
        // points at a live c_int and its size is passed with it.
        let rc = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            eprintln!(
                "haptwin serve: cannot turn off Nagle's algorithm ({}); small pages may take 40 ms longer",
                std::io::Error::last_os_error()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = listener;
}

fn worker(server: &tiny_http::Server, stop: &AtomicBool, app: &App) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(request) = server.recv() else { break };
        if stop.load(Ordering::SeqCst) {
            let _ = request.respond(tiny_http::Response::empty(503));
            break;
        }
        serve_one(app, request);
    }
}

fn serve_one(app: &App, mut request: tiny_http::Request) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let mut req = Req {
        method: request.method().as_str().to_ascii_uppercase(),
        path: url_decode(path),
        query: parse_query(query),
        headers: request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect(),
        body: Vec::new(),
        remote: request
            .remote_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default(),
    };
    let limit = if req.method == "PUT" && req.path.starts_with("/api/uploads/") {
        MAX_CHUNK
    } else {
        MAX_BODY
    };
    let declared = request.body_length().map(|n| n as u64);
    let resp = if declared.is_some_and(|n| n > limit) {
        Fail::TooLarge(format!("request body over {limit} bytes")).respond(&req)
    } else {
        let mut body = Vec::new();
        match request.as_reader().take(limit + 1).read_to_end(&mut body) {
            Err(e) => Fail::Bad(format!("reading the body: {e}")).respond(&req),
            Ok(_) if body.len() as u64 > limit => {
                Fail::TooLarge(format!("request body over {limit} bytes")).respond(&req)
            }
            Ok(_) => {
                req.body = body;
                app.handle(&req)
            }
        }
    };
    // The whole body is in hand: send its length rather than chunks (tiny_http chunks bodies
    // of 32 kB and more unless told otherwise).
    let mut r = tiny_http::Response::from_data(resp.body)
        .with_status_code(resp.status)
        .with_chunked_threshold(usize::MAX);
    for (k, v) in &resp.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            r.add_header(h);
        }
    }
    let _ = request.respond(r);
}

/// The id in a path segment.
pub fn id_of(segment: &str) -> Result<i64, Fail> {
    segment
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or(Fail::NotFound)
}

/// Checks that `login` may see session `id`: 404 when there is none, 403 when it is not theirs
/// to see.
pub fn session_access(app: &App, login: &Login, id: i64) -> Result<(), Fail> {
    if app.store.can_view_session(&login.user, id)? {
        return Ok(());
    }
    if app.store.session_log(id)?.is_none() {
        return Err(Fail::NotFound);
    }
    Err(Fail::Forbidden("this session is not yours to see".into()))
}

/// Checks that `login` may see resident `id`.
pub fn resident_access(app: &App, login: &Login, id: i64) -> Result<User, Fail> {
    let user = app
        .store
        .user(id)?
        .filter(|u| u.role == crate::store::Role::Resident)
        .ok_or(Fail::NotFound)?;
    if app.store.can_view_resident(&login.user, id)? {
        Ok(user)
    } else {
        Err(Fail::Forbidden(
            "this resident is not in your cohorts".into(),
        ))
    }
}

/// Checks that `login` may see cohort `id`.
pub fn cohort_access(app: &App, login: &Login, id: i64) -> Result<crate::store::Cohort, Fail> {
    let cohort = app.store.cohort(id)?.ok_or(Fail::NotFound)?;
    if app.store.can_view_cohort(&login.user, id)? {
        Ok(cohort)
    } else {
        Err(Fail::Forbidden("this cohort is not yours".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_coding_round_trips() {
        let s = "a b&c=d/é%";
        assert_eq!(url_decode(&url_encode(s)), s);
        assert_eq!(
            parse_query("x=1&y=a+b&z=%2F%zz"),
            vec![
                ("x".to_string(), "1".to_string()),
                ("y".to_string(), "a b".to_string()),
                ("z".to_string(), "/%zz".to_string())
            ]
        );
    }

    #[test]
    fn cookies_and_origins() {
        let req = Req {
            method: "POST".into(),
            headers: vec![
                ("cookie".into(), "a=1; haptwin_session=tok; b=2".into()),
                ("host".into(), "127.0.0.1:8080".into()),
                ("origin".into(), "http://evil.example".into()),
            ],
            ..Req::default()
        };
        assert_eq!(req.cookie(SESSION_COOKIE).as_deref(), Some("tok"));
        assert!(check_origin(&req).is_err());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
