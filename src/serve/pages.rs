//! The dashboard's HTML pages: login, home, cohort, resident and session pages, the rating
//! form, and the static files (stylesheet, replay viewer).
//!
//! Contract: every page is built from the store through the access checks in [`super`]; all
//! text from the store is HTML-escaped ([`esc`]); pages carry no inline script (the replay
//! viewer is `/static/replay.js`); every form that changes something carries the login's CSRF
//! token.

use std::fmt::Write as _;

use super::{
    api, cohort_access, id_of, resident_access, session_access, Answer, App, Fail, Login, Req,
    Resp, LOGIN_CSRF_COOKIE, SESSION_COOKIE,
};
use crate::score::report::{esc, report_css, utc_date_time, with_unit};
use crate::store::{progress_of, random_hex, Progress, Role, Scale, SessionSummary};

/// The dashboard's stylesheet (its own rules, the replay viewer's and the report's plots').
pub fn stylesheet() -> String {
    format!(
        "{}\n{}\n{}",
        include_str!("../../assets/web/dashboard.css"),
        include_str!("../../assets/web/replay.css"),
        report_css()
    )
}

/// The replay viewer.
pub const REPLAY_JS: &str = include_str!("../../assets/web/replay.js");

/// Routes a page request.
pub fn route(app: &App, req: &Req) -> Answer {
    let seg: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let m = req.method.as_str();
    match (m, seg.as_slice()) {
        ("GET", ["static", "dashboard.css"]) => {
            Ok(Resp::new(200, "text/css; charset=utf-8", stylesheet())
                .with("Cache-Control", "max-age=3600"))
        }
        ("GET", ["static", "replay.js"]) => {
            Ok(Resp::new(200, "text/javascript; charset=utf-8", REPLAY_JS)
                .with("Cache-Control", "max-age=3600"))
        }
        ("GET", ["login"]) => login_page(app, req, None),
        ("POST", ["login"]) => login_post(app, req),
        ("POST", ["logout"]) => logout(app, req),
        ("GET", [""]) => home(app, req),
        ("GET", ["cohorts", id]) => cohort_page(app, req, id_of(id)?),
        ("GET", ["residents", id]) => resident_page(app, req, id_of(id)?),
        ("GET", ["sessions", id]) => session_page(app, req, id_of(id)?),
        ("POST", ["sessions", id, "rating"]) => rating_post(app, req, id_of(id)?),
        ("GET", ["sessions", id, "log"]) => api::log_download(app, req, id_of(id)?),
        ("GET", ["export", "sessions.csv"]) => api::export_csv(app, req),
        ("GET", ["export", "xapi.json"]) => api::export_xapi(app, req),
        (
            _,
            ["static", "dashboard.css" | "replay.js"]
            | ["login"]
            | ["logout"]
            | [""]
            | ["cohorts", _]
            | ["residents", _]
            | ["sessions", _]
            | ["sessions", _, "rating" | "log"]
            | ["export", "sessions.csv" | "xapi.json"],
        ) => Err(Fail::Method),
        _ => Err(Fail::NotFound),
    }
}

// ---- layout ---------------------------------------------------------------------------------

fn page(title: &str, login: Option<&Login>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · haptwin</title>\n<link rel=\"stylesheet\" href=\"/static/dashboard.css\">\n\
         </head>\n<body>\n<header class=\"top\"><a class=\"brand\" href=\"/\">haptwin</a>",
        esc(title)
    );
    if let Some(l) = login {
        let _ = write!(
            out,
            "<nav><span id=\"whoami\">{} <small>({})</small></span>\
             <form method=\"post\" action=\"/logout\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" id=\"logout\">Log out</button></form></nav>",
            esc(&l.user.display_name),
            l.user.role.as_str(),
            esc(&l.csrf)
        );
    }
    let _ = write!(out, "</header>\n<main>\n{body}</main>\n</body>\n</html>\n");
    out
}

/// A page for an error status.
pub fn error_page(status: u16, message: &str) -> String {
    page(
        &format!("Error {status}"),
        None,
        &format!(
            "<h1>{status}</h1>\n<p class=\"error\">{}</p>\n<p><a href=\"/\">Back to the dashboard</a></p>\n",
            esc(message)
        ),
    )
}

fn need_login(app: &App, req: &Req) -> Result<Login, Fail> {
    app.require_login(req)
}

fn fmt_score(score: Option<f64>) -> String {
    score.map_or_else(|| "—".to_string(), |s| format!("{:.0} %", s * 100.0))
}

fn fmt_passed(passed: Option<bool>) -> &'static str {
    match passed {
        Some(true) => "<span class=\"badge pass\">pass</span>",
        Some(false) => "<span class=\"badge fail\">not yet</span>",
        None => "<span class=\"badge none\">no benchmark</span>",
    }
}

/// A small line of scores (0..1), oldest first; gaps where unbenchmarked.
fn sparkline(trend: &[Option<f64>]) -> String {
    let (w, h) = (90.0, 22.0);
    let n = trend.len();
    if n == 0 {
        return String::new();
    }
    let x = |i: usize| {
        if n == 1 {
            w / 2.0
        } else {
            2.0 + i as f64 * (w - 4.0) / (n - 1) as f64
        }
    };
    let y = |v: f64| h - 2.0 - v.clamp(0.0, 1.0) * (h - 4.0);
    let pts: Vec<String> = trend
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
        .collect();
    let mut s = format!(
        "<svg class=\"spark\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-label=\"score trend over {n} sessions\">"
    );
    if pts.len() > 1 {
        let _ = write!(s, "<polyline points=\"{}\"/>", pts.join(" "));
    }
    if let Some(last) = pts.last() {
        let (cx, cy) = last.split_once(',').unwrap_or(("0", "0"));
        let _ = write!(s, "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"2.5\"/>");
    }
    s.push_str("</svg>");
    s
}

fn proficiency_badge(p: &Progress) -> String {
    if p.proficiency.proficient {
        format!(
            "<span class=\"badge pass\">proficient</span> <small>at try {}</small>",
            p.proficiency.proficient_at_try.unwrap_or(0)
        )
    } else if p.proficiency.tries == 0 {
        "<span class=\"badge none\">no benchmark</span>".into()
    } else {
        format!(
            "<span class=\"badge fail\">not yet</span> <small>{} of {} passed, {} in a row</small>",
            p.proficiency.passes, p.proficiency.tries, p.proficiency.consecutive_passes
        )
    }
}

/// Opens a table with a header row.
fn table_open(out: &mut String, class: &str, headers: &[&str]) {
    let _ = write!(out, "<table class=\"{class}\">\n<thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
}

fn sessions_table(out: &mut String, sessions: &[SessionSummary], with_resident: bool) {
    if sessions.is_empty() {
        out.push_str("<p class=\"empty\">No sessions yet.</p>\n");
        return;
    }
    let resident: &[&str] = if with_resident { &["Resident"] } else { &[] };
    table_open(
        out,
        "sessions",
        &[
            &["Started (UTC)"],
            resident,
            &["Scenario", "Case", "Duration", "Benchmark", "Score"],
        ]
        .concat(),
    );
    for s in sessions {
        let _ = write!(
            out,
            "<tr><td><a href=\"/sessions/{}\">{}</a>{}</td>",
            s.id,
            esc(&utc_date_time(s.started_unix_s.max(0) as u64)),
            if s.log_complete {
                ""
            } else {
                " <span class=\"badge warn\" title=\"the log did not close\">incomplete</span>"
            }
        );
        if with_resident {
            let _ = write!(
                out,
                "<td><a href=\"/residents/{}\">{}</a></td>",
                s.resident_id,
                esc(&s.resident_name)
            );
        }
        let _ = writeln!(
            out,
            "<td>{}</td><td>{}</td><td>{:.1} s</td><td>{}</td><td>{}</td></tr>",
            esc(&s.scenario),
            esc(&s.case_pseudonym),
            s.duration_s,
            fmt_passed(s.passed),
            fmt_score(s.score)
        );
    }
    out.push_str("</tbody></table>\n");
}

fn progress_table(out: &mut String, progress: &[Progress], with_resident: bool) {
    if progress.is_empty() {
        out.push_str("<p class=\"empty\">No sessions yet.</p>\n");
        return;
    }
    let resident: &[&str] = if with_resident { &["Resident"] } else { &[] };
    table_open(
        out,
        "progress",
        &[
            resident,
            &[
                "Scenario",
                "Sessions",
                "Proficiency",
                "Last",
                "Best",
                "Trend",
            ],
        ]
        .concat(),
    );
    for p in progress {
        out.push_str("<tr>");
        if with_resident {
            let _ = write!(
                out,
                "<td><a href=\"/residents/{}\">{}</a></td>",
                p.resident_id,
                esc(&p.resident_name)
            );
        }
        let last = p.last.map_or_else(
            || "—".to_string(),
            |(id, score)| format!("<a href=\"/sessions/{id}\">{}</a>", fmt_score(score)),
        );
        let _ = writeln!(
            out,
            "<td>{}</td><td>{}</td><td>{}</td><td>{last}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.scenario),
            p.sessions,
            proficiency_badge(p),
            fmt_score(p.best),
            sparkline(&p.trend)
        );
    }
    out.push_str("</tbody></table>\n");
}

// ---- login ----------------------------------------------------------------------------------

fn login_page(app: &App, req: &Req, problem: Option<(u16, &str)>) -> Answer {
    if problem.is_none() && app.login(req)?.is_some() {
        return Ok(Resp::redirect("/"));
    }
    let token = random_hex(16)?;
    let mut body = String::from("<h1>Log in</h1>\n");
    if let Some((_, msg)) = problem {
        let _ = writeln!(
            body,
            "<p class=\"error\" id=\"login-error\">{}</p>",
            esc(msg)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/login\" class=\"login\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\n\
         <label>User name <input name=\"username\" id=\"username\" autocomplete=\"username\" required></label>\n\
         <label>Password <input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\n\
         <button type=\"submit\" id=\"login-submit\">Log in</button>\n</form>\n"
    );
    Ok(
        Resp::html(problem.map_or(200, |(s, _)| s), page("Log in", None, &body))
            .with("Set-Cookie", &app.cookie(LOGIN_CSRF_COOKIE, &token, 3600)),
    )
}

fn login_post(app: &App, req: &Req) -> Answer {
    super::check_origin(req)?;
    let form = req.form();
    let field = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let sent = field("csrf");
    let cookie = req.cookie(LOGIN_CSRF_COOKIE).unwrap_or_default();
    if sent.is_empty() || !super::constant_time_eq(sent.as_bytes(), cookie.as_bytes()) {
        return Err(Fail::Forbidden(
            "the login form expired or came from elsewhere: reload the page".into(),
        ));
    }
    let username = field("username");
    if let Some(wait) = app.locked_out(&username, &req.remote) {
        let f = Fail::TooMany {
            retry_after_s: wait,
        };
        return login_page(app, req, Some((429, &f.message())))
            .map(|r| r.with("Retry-After", &wait.to_string()));
    }
    match app.store.check_password(&username, &field("password"))? {
        Some(user) => {
            app.login_succeeded(&username);
            let (token, _csrf) = app.store.create_login(&user, app.cfg.login_ttl_s)?;
            Ok(Resp::redirect("/")
                .with(
                    "Set-Cookie",
                    &app.cookie(SESSION_COOKIE, &token, app.cfg.login_ttl_s),
                )
                .with("Set-Cookie", &app.cookie(LOGIN_CSRF_COOKIE, "", 0)))
        }
        None => {
            app.login_failed(&username, &req.remote);
            login_page(app, req, Some((401, "Wrong user name or password.")))
        }
    }
}

fn logout(app: &App, req: &Req) -> Answer {
    let login = need_login(app, req)?;
    app.store.logout(&login.token)?;
    Ok(Resp::redirect("/login").with("Set-Cookie", &app.cookie(SESSION_COOKIE, "", 0)))
}

// ---- pages ----------------------------------------------------------------------------------

fn home(app: &App, req: &Req) -> Answer {
    let login = need_login(app, req)?;
    let mut body = String::new();
    match login.user.role {
        Role::Resident => {
            let _ = writeln!(
                body,
                "<h1>Your progress</h1>\n<p class=\"lead\">Each scenario is judged against its \
                 expert benchmark; two passes in a row make you proficient.</p>"
            );
            progress_table(
                &mut body,
                &app.store.resident_progress(login.user.id)?,
                false,
            );
            body.push_str("<h2>Your sessions</h2>\n");
            let mut sessions = app.store.sessions_of(login.user.id, None)?;
            sessions.reverse();
            sessions_table(&mut body, &sessions, false);
            let _ = writeln!(
                body,
                "<p class=\"exports\">Export: <a href=\"/export/sessions.csv?resident={0}\">CSV</a> · \
                 <a href=\"/export/xapi.json?resident={0}\">xAPI</a></p>",
                login.user.id
            );
        }
        Role::Instructor | Role::Admin => {
            body.push_str("<h1>Cohorts</h1>\n");
            let cohorts = app.store.cohorts_for(&login.user)?;
            if cohorts.is_empty() {
                body.push_str(
                    "<p class=\"empty\">No cohorts yet: an admin adds them with \
                     <code>haptwin cohort add</code>.</p>\n",
                );
            } else {
                body.push_str("<ul class=\"cohorts\">\n");
                for c in &cohorts {
                    let n = app.store.cohort_residents(c.id)?.len();
                    let _ = writeln!(
                        body,
                        "<li><a href=\"/cohorts/{}\">{}</a> <small>{n} resident{}</small></li>",
                        c.id,
                        esc(&c.name),
                        if n == 1 { "" } else { "s" }
                    );
                }
                body.push_str("</ul>\n");
            }
            body.push_str("<h2>Recent sessions</h2>\n");
            sessions_table(
                &mut body,
                &app.store.sessions_visible_to(&login.user, 25)?,
                true,
            );
        }
    }
    Ok(Resp::html(200, page("Dashboard", Some(&login), &body)))
}

fn cohort_page(app: &App, req: &Req, id: i64) -> Answer {
    let login = need_login(app, req)?;
    let cohort = cohort_access(app, &login, id)?;
    let residents = app.store.cohort_residents(id)?;
    // One read of the cohort's sessions serves both the matrix and the list.
    let mut sessions = app.store.sessions_of_cohort(id)?;
    let progress = progress_of(&sessions);
    let mut scenarios: Vec<String> = progress.iter().map(|p| p.scenario.clone()).collect();
    scenarios.sort();
    scenarios.dedup();
    let mut body = format!(
        "<h1>{}</h1>\n<p class=\"lead\">{} resident{} · proficiency is two benchmark passes in a row.</p>\n",
        esc(&cohort.name),
        residents.len(),
        if residents.len() == 1 { "" } else { "s" }
    );
    if residents.is_empty() {
        body.push_str("<p class=\"empty\">No residents in this cohort yet.</p>\n");
    } else {
        body.push_str(
            "<table class=\"matrix\" id=\"cohort-matrix\">\n<thead><tr><th>Resident</th>",
        );
        for s in &scenarios {
            let _ = write!(body, "<th>{}</th>", esc(s));
        }
        body.push_str("</tr></thead>\n<tbody>\n");
        for r in &residents {
            let _ = write!(
                body,
                "<tr><th><a href=\"/residents/{}\">{}</a></th>",
                r.id,
                esc(&r.display_name)
            );
            for s in &scenarios {
                match progress
                    .iter()
                    .find(|p| p.resident_id == r.id && &p.scenario == s)
                {
                    Some(p) => {
                        let last = p.last.map_or_else(String::new, |(sid, score)| {
                            format!("last <a href=\"/sessions/{sid}\">{}</a>", fmt_score(score))
                        });
                        let _ = write!(
                            body,
                            "<td>{}<br><small>{} session{} · {last} · best {}</small><br>{}</td>",
                            proficiency_badge(p),
                            p.sessions,
                            if p.sessions == 1 { "" } else { "s" },
                            fmt_score(p.best),
                            sparkline(&p.trend)
                        );
                    }
                    None => body.push_str("<td class=\"empty\">—</td>"),
                }
            }
            body.push_str("</tr>\n");
        }
        body.push_str("</tbody></table>\n");
    }
    let _ = writeln!(
        body,
        "<p class=\"exports\">Export: <a href=\"/export/sessions.csv?cohort={id}\">CSV</a> · \
         <a href=\"/export/xapi.json?cohort={id}\">xAPI</a></p>"
    );
    body.push_str("<h2>Sessions</h2>\n");
    sessions.reverse();
    sessions_table(&mut body, &sessions, true);
    Ok(Resp::html(200, page(&cohort.name, Some(&login), &body)))
}

fn resident_page(app: &App, req: &Req, id: i64) -> Answer {
    let login = need_login(app, req)?;
    let resident = resident_access(app, &login, id)?;
    let mut body = format!("<h1>{}</h1>\n", esc(&resident.display_name));
    progress_table(&mut body, &app.store.resident_progress(id)?, false);
    body.push_str("<h2>Sessions</h2>\n");
    let mut sessions = app.store.sessions_of(id, None)?;
    sessions.reverse();
    sessions_table(&mut body, &sessions, false);
    let _ = writeln!(
        body,
        "<p class=\"exports\">Export: <a href=\"/export/sessions.csv?resident={id}\">CSV</a> · \
         <a href=\"/export/xapi.json?resident={id}\">xAPI</a></p>"
    );
    Ok(Resp::html(
        200,
        page(&resident.display_name, Some(&login), &body),
    ))
}

fn session_page(app: &App, req: &Req, id: i64) -> Answer {
    let login = need_login(app, req)?;
    session_access(app, &login, id)?;
    let s = app.store.session(id)?.ok_or(Fail::NotFound)?;
    let sum = &s.summary;
    let mut body = String::with_capacity(96 * 1024);
    let _ = write!(
        body,
        "<h1>{} <small>{}</small></h1>\n<section id=\"summary\"><dl class=\"facts\">\
         <dt>Resident</dt><dd><a href=\"/residents/{}\">{}</a></dd>\
         <dt>Started (UTC)</dt><dd>{}</dd><dt>Duration</dt><dd>{:.1} s</dd>\
         <dt>Case</dt><dd>{}</dd><dt>Instrument</dt><dd>{}</dd><dt>Device</dt><dd>{}</dd>\
         <dt>Benchmark</dt><dd>{} {}</dd><dt>Score</dt><dd id=\"score\">{} <small>({} of {} metrics within bounds)</small></dd>\
         <dt>Station</dt><dd>{}</dd><dt>Log</dt><dd>{} bytes, SHA-256 <code>{}</code> · \
         <a href=\"/sessions/{id}/log\">download</a> · <a href=\"/export/xapi.json?session={id}\">xAPI</a></dd>\
         </dl>\n",
        esc(&sum.scenario),
        esc(&utc_date_time(sum.started_unix_s.max(0) as u64)),
        sum.resident_id,
        esc(&sum.resident_name),
        esc(&utc_date_time(sum.started_unix_s.max(0) as u64)),
        sum.duration_s,
        esc(&sum.case_pseudonym),
        esc(&s.instrument),
        esc(&s.device),
        fmt_passed(sum.passed),
        esc(s.benchmark.as_deref().unwrap_or("")),
        fmt_score(sum.score),
        sum.metrics_within,
        sum.metrics_total,
        esc(s.station.as_deref().unwrap_or("this machine")),
        s.log_bytes,
        esc(&s.log_sha256[..s.log_sha256.len().min(16)]),
    );
    if !s.note.is_empty() {
        let _ = write!(body, "<p class=\"note\">{}</p>", esc(&s.note));
    }
    if let Some(r) = &s.card.replay {
        let _ = write!(
            body,
            "<p class=\"check\">Outcome measured by re-simulating {} ticks: {} forces differed from the recording.</p>",
            r.ticks, r.mismatches
        );
    }
    if let Some(r) = app.store.readiness(&s)? {
        let _ = write!(
            body,
            "<p class=\"readiness\" id=\"readiness\">Readiness against {}'s own earlier warm-ups: \
             <strong>{}</strong></p>",
            esc(&sum.resident_name),
            esc(&r.summary)
        );
    }
    body.push_str("</section>\n<section id=\"metrics\"><h2>Metrics against the benchmark</h2>\n");
    body.push_str(
        "<table class=\"metrics\">\n<thead><tr><th>Metric</th><th>Value</th><th>Benchmark bound</th><th></th></tr></thead>\n<tbody>\n",
    );
    for m in &s.card.metrics {
        let bound = m.benchmark.as_ref().map_or_else(
            || "—".to_string(),
            |b| {
                let side = match m.better {
                    crate::score::card::Better::Lower => "≤",
                    crate::score::card::Better::Higher => "≥",
                };
                format!("{side} {}", with_unit(b.limit, &m.unit))
            },
        );
        let mark = match m.within {
            Some(true) => "<span class=\"ok\">within</span>",
            Some(false) => "<span class=\"bad\">outside</span>",
            None => "",
        };
        let _ = writeln!(
            body,
            "<tr data-metric=\"{}\"><td>{}</td><td>{}</td><td>{bound}</td><td>{mark}</td></tr>",
            esc(&m.key),
            esc(&m.label),
            with_unit(m.value, &m.unit)
        );
    }
    body.push_str("</tbody></table>\n</section>\n");
    if s.has_replay {
        let _ = write!(
            body,
            "<section id=\"replay\" data-src=\"/api/sessions/{id}/replay\">\n<h2>Replay</h2>\n\
             <canvas id=\"replay-canvas\" width=\"760\" height=\"420\" aria-label=\"Replay of the tool and the tissue surface\"></canvas>\n\
             <div class=\"replay-controls\">\n<button type=\"button\" id=\"replay-play\">Play</button>\n\
             <input type=\"range\" id=\"replay-time\" min=\"0\" max=\"1000\" value=\"0\" aria-label=\"Time\">\n\
             <select id=\"replay-speed\" aria-label=\"Speed\"><option value=\"0.5\">0.5×</option>\
             <option value=\"1\" selected>1×</option><option value=\"2\">2×</option><option value=\"4\">4×</option></select>\n\
             <span id=\"replay-clock\">0.0 s</span>\n</div>\n<p id=\"replay-status\"></p>\n</section>\n\
             <script src=\"/static/replay.js\"></script>\n"
        );
    }
    body.push_str("<div class=\"plots\">\n");
    body.push_str(&app.store.session_plots(id)?.unwrap_or_default());
    body.push_str("</div>\n");
    ratings_section(app, &login, id, &mut body)?;
    Ok(Resp::html(
        200,
        page(&format!("Session {id}"), Some(&login), &body),
    ))
}

fn ratings_section(app: &App, login: &Login, id: i64, body: &mut String) -> Result<(), Fail> {
    body.push_str("<section id=\"ratings\"><h2>Instructor ratings</h2>\n");
    let ratings = app.store.ratings(id)?;
    if ratings.is_empty() {
        body.push_str("<p class=\"empty\">Not rated yet.</p>\n");
    }
    for r in &ratings {
        let max = r.items.len() * 5;
        let _ = write!(
            body,
            "<div class=\"rating\" data-rating=\"{}\"><p><strong>{}</strong> {} / {max} \
             <small>by {} on {}</small></p><ul>",
            r.id,
            r.scale.as_str().to_uppercase(),
            r.total,
            esc(&r.rater_name),
            esc(&utc_date_time(r.created_unix_s.max(0) as u64))
        );
        for (key, v) in &r.items {
            let label = r
                .scale
                .items()
                .iter()
                .find(|(k, _)| k == key)
                .map_or(key.as_str(), |(_, l)| l);
            let _ = write!(body, "<li>{}: {v}</li>", esc(label));
        }
        body.push_str("</ul>");
        if !r.comment.is_empty() {
            let _ = write!(body, "<blockquote>{}</blockquote>", esc(&r.comment));
        }
        body.push_str("</div>\n");
    }
    if login.user.role != Role::Resident {
        for scale in [Scale::Osats, Scale::Goals] {
            let name = scale.as_str();
            let _ = write!(
                body,
                "<details{}><summary>Rate with {}</summary>\n\
                 <form method=\"post\" action=\"/sessions/{id}/rating\" class=\"rating-form\" id=\"rate-{name}\">\n\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
                 <input type=\"hidden\" name=\"scale\" value=\"{name}\">\n<table>",
                if scale == Scale::Osats { " open" } else { "" },
                name.to_uppercase(),
                esc(&login.csrf)
            );
            for (key, label) in scale.items() {
                let _ = write!(body, "<tr><th>{}</th><td>", esc(label));
                for v in 1..=5 {
                    let _ = write!(
                        body,
                        "<label><input type=\"radio\" name=\"{key}\" value=\"{v}\" required> {v}</label> "
                    );
                }
                body.push_str("</td></tr>\n");
            }
            let _ = write!(
                body,
                "</table>\n<label class=\"comment\">Comment <textarea name=\"comment\" rows=\"3\" maxlength=\"4000\"></textarea></label>\n\
                 <button type=\"submit\" id=\"save-{name}\">Save rating</button>\n</form></details>\n"
            );
        }
    }
    body.push_str("</section>\n");
    Ok(())
}

fn rating_post(app: &App, req: &Req, id: i64) -> Answer {
    let login = need_login(app, req)?;
    session_access(app, &login, id)?;
    if login.user.role == Role::Resident {
        return Err(Fail::Forbidden("only instructors rate sessions".into()));
    }
    let form = req.form();
    let (scale, items, comment) = api::rating_from_fields(&form)?;
    app.store
        .add_rating(id, &login.user, scale, &items, &comment)?;
    Ok(Resp::redirect(&format!("/sessions/{id}#ratings")))
}
