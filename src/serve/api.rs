//! The dashboard's JSON API, its exports (CSV and xAPI) and the stations' resumable upload API.
//!
//! Routes (all JSON; `login` = a dashboard login cookie, `station` = `Authorization: Bearer`
//! with a station token):
//!
//! | route | who |
//! | --- | --- |
//! | `GET /healthz` | anyone |
//! | `GET /api/me` | login |
//! | `GET /api/cohorts` | login (an instructor's own, all for an admin, a resident's own) |
//! | `GET /api/cohorts/{id}` | instructor of it, admin |
//! | `GET /api/residents/{id}/sessions` | the resident, their instructors, admin |
//! | `GET /api/sessions/{id}` | as the session's resident |
//! | `GET /api/sessions/{id}/replay` | as the session's resident (gzip-encoded JSON) |
//! | `GET /api/sessions/{id}/ratings` | as the session's resident |
//! | `POST /api/sessions/{id}/ratings` | instructors and admins who may see it, with `X-CSRF-Token` |
//! | `POST /api/uploads` | station: `{"bytes", "sha256", "resident"}` → `201 {"id", "received_bytes"}` |
//! | `GET /api/uploads/{id}` | the station that began it: how much has arrived |
//! | `PUT /api/uploads/{id}?offset=N` | that station: the next bytes (409 with the right offset when `N` is not it) |
//! | `POST /api/uploads/{id}/finish` | that station: check size and SHA-256, validate, score, store → `{"session_id"}` |
//!
//! Exports (`/export/sessions.csv`, `/export/xapi.json`, with `cohort=`, `resident=` or
//! `session=`) go through the same access checks as the pages.

use std::io::Write as _;
use std::path::PathBuf;

use super::{
    cohort_access, id_of, resident_access, session_access, Answer, App, Fail, Req, Resp, MAX_CHUNK,
};
use crate::score::export::{name_uuid, xapi_statements, XapiActor};
use crate::score::report::utc_date_time;
use crate::store::ingest::{ingest_bytes, IngestError, IngestTarget};
use crate::store::{Role, Scale, SessionSummary, Station};

/// Routes an API request.
pub fn route(app: &App, req: &Req) -> Answer {
    let seg: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), seg.as_slice()) {
        ("GET", ["healthz"]) => Ok(Resp::new(200, "text/plain; charset=utf-8", "ok\n")),
        ("GET", ["api", "me"]) => {
            let l = app.require_login(req)?;
            Ok(Resp::json(
                200,
                &serde_json::json!({"user": l.user, "csrf": l.csrf}),
            ))
        }
        ("GET", ["api", "cohorts"]) => {
            let l = app.require_login(req)?;
            Ok(Resp::json(200, &app.store.cohorts_for(&l.user)?))
        }
        ("GET", ["api", "cohorts", id]) => {
            let l = app.require_login(req)?;
            let id = id_of(id)?;
            let cohort = cohort_access(app, &l, id)?;
            Ok(Resp::json(
                200,
                &serde_json::json!({
                    "cohort": cohort,
                    "residents": app.store.cohort_residents(id)?,
                    "progress": app.store.cohort_progress(id)?,
                }),
            ))
        }
        ("GET", ["api", "residents", id, "sessions"]) => {
            let l = app.require_login(req)?;
            let id = id_of(id)?;
            let resident = resident_access(app, &l, id)?;
            Ok(Resp::json(
                200,
                &serde_json::json!({
                    "resident": resident,
                    "progress": app.store.resident_progress(id)?,
                    "sessions": app.store.sessions_of(id, req.param("scenario"))?,
                }),
            ))
        }
        ("GET", ["api", "sessions", id]) => {
            let l = app.require_login(req)?;
            let id = id_of(id)?;
            session_access(app, &l, id)?;
            Ok(Resp::json(
                200,
                &app.store.session(id)?.ok_or(Fail::NotFound)?,
            ))
        }
        ("GET", ["api", "sessions", id, "replay"]) => {
            let l = app.require_login(req)?;
            let id = id_of(id)?;
            session_access(app, &l, id)?;
            let gz = app.store.session_replay(id)?.ok_or(Fail::NotFound)?;
            Ok(Resp::new(200, "application/json", gz).with("Content-Encoding", "gzip"))
        }
        ("GET", ["api", "sessions", id, "ratings"]) => {
            let l = app.require_login(req)?;
            let id = id_of(id)?;
            session_access(app, &l, id)?;
            Ok(Resp::json(200, &app.store.ratings(id)?))
        }
        ("POST", ["api", "sessions", id, "ratings"]) => {
            let l = app.require_login(req)?;
            let id = id_of(id)?;
            session_access(app, &l, id)?;
            if l.user.role == Role::Resident {
                return Err(Fail::Forbidden("only instructors rate sessions".into()));
            }
            let v: serde_json::Value = serde_json::from_slice(&req.body)
                .map_err(|e| Fail::Bad(format!("rating: not JSON: {e}")))?;
            let mut fields: Vec<(String, String)> = Vec::new();
            if let Some(obj) = v["items"].as_object() {
                for (k, x) in obj {
                    fields.push((
                        k.clone(),
                        x.as_u64().map_or_else(|| x.to_string(), |n| n.to_string()),
                    ));
                }
            }
            fields.push(("scale".into(), v["scale"].as_str().unwrap_or("").into()));
            fields.push(("comment".into(), v["comment"].as_str().unwrap_or("").into()));
            let (scale, items, comment) = rating_from_fields(&fields)?;
            let rid = app.store.add_rating(id, &l.user, scale, &items, &comment)?;
            Ok(Resp::json(201, &serde_json::json!({"id": rid})))
        }
        ("POST", ["api", "uploads"]) => upload_create(app, req),
        ("GET", ["api", "uploads", id]) => upload_state(app, req, id),
        ("PUT", ["api", "uploads", id]) => upload_put(app, req, id),
        ("POST", ["api", "uploads", id, "finish"]) => upload_finish(app, req, id),
        (
            _,
            ["healthz"]
            | ["api", "me" | "cohorts" | "uploads"]
            | ["api", "cohorts" | "sessions" | "uploads", _]
            | ["api", "residents", _, "sessions"]
            | ["api", "sessions", _, "replay" | "ratings"]
            | ["api", "uploads", _, "finish"],
        ) => Err(Fail::Method),
        _ => Err(Fail::NotFound),
    }
}

/// A rating's scale, its items' scores and the comment.
pub type RatingFields = (Scale, Vec<(String, u8)>, String);

/// A rating's scale, items and comment from form fields (`scale`, one field per item key,
/// `comment`).
pub fn rating_from_fields(fields: &[(String, String)]) -> Result<RatingFields, Fail> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let scale: Scale = get("scale").unwrap_or("").parse()?;
    let mut items = Vec::new();
    for (k, v) in fields {
        if k == "scale" || k == "comment" || k == "csrf" {
            continue;
        }
        let n = v
            .trim()
            .parse::<u8>()
            .map_err(|_| Fail::Bad(format!("rating: {k} is {v:?}, expected 1 to 5")))?;
        items.push((k.clone(), n));
    }
    Ok((
        scale,
        items,
        get("comment").unwrap_or("").trim().to_string(),
    ))
}

/// `GET /sessions/{id}/log`: the stored log file.
pub fn log_download(app: &App, req: &Req, id: i64) -> Answer {
    let l = app.require_login(req)?;
    session_access(app, &l, id)?;
    let (path, digest) = app.store.session_log(id)?.ok_or(Fail::NotFound)?;
    let bytes = std::fs::read(&path)
        .map_err(|e| Fail::Internal(format!("session {id}'s log {}: {e}", path.display())))?;
    Ok(Resp::new(200, "application/octet-stream", bytes).with(
        "Content-Disposition",
        &format!(
            "attachment; filename=\"session-{id}-{}.htlog\"",
            &digest[..12.min(digest.len())]
        ),
    ))
}

/// The sessions an export covers: `session=`, `cohort=` or `resident=` (default: the
/// logged-in resident's own, or everything an instructor or admin may see).
fn export_sessions(app: &App, req: &Req) -> Result<Vec<SessionSummary>, Fail> {
    let l = app.require_login(req)?;
    if let Some(id) = req.param("session") {
        let id = id_of(id)?;
        session_access(app, &l, id)?;
        return Ok(app
            .store
            .session(id)?
            .map(|s| vec![s.summary])
            .unwrap_or_default());
    }
    if let Some(id) = req.param("cohort") {
        let id = id_of(id)?;
        cohort_access(app, &l, id)?;
        return Ok(app.store.sessions_of_cohort(id)?);
    }
    if let Some(id) = req.param("resident") {
        let id = id_of(id)?;
        resident_access(app, &l, id)?;
        return Ok(app.store.sessions_of(id, None)?);
    }
    let mut all = app.store.sessions_visible_to(&l.user, i64::MAX)?;
    all.reverse();
    Ok(all)
}

fn csv_field(s: &str) -> String {
    // Quote always; a leading formula character is neutralised for spreadsheets.
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `GET /export/sessions.csv`: one row per session and metric (long format).
pub fn export_csv(app: &App, req: &Req) -> Answer {
    let sessions = export_sessions(app, req)?;
    let mut out = String::from(
        "session_id,resident,scenario,case,started_utc,duration_s,log_complete,passed,score,\
         metric,value,unit,bound,within\n",
    );
    for s in &sessions {
        let detail = app.store.session(s.id)?.ok_or(Fail::NotFound)?;
        let head = [
            s.id.to_string(),
            csv_field(&s.resident_name),
            csv_field(&s.scenario),
            csv_field(&s.case_pseudonym),
            utc_date_time(s.started_unix_s.max(0) as u64),
            format!("{:.3}", s.duration_s),
            s.log_complete.to_string(),
            s.passed.map_or(String::new(), |p| p.to_string()),
            s.score.map_or(String::new(), |v| format!("{v:.4}")),
        ]
        .join(",");
        for m in &detail.card.metrics {
            out += &format!(
                "{head},{},{},{},{},{}\n",
                csv_field(&m.key),
                if m.value.is_finite() {
                    format!("{}", m.value)
                } else {
                    String::new()
                },
                csv_field(&m.unit),
                m.benchmark
                    .as_ref()
                    .map_or(String::new(), |b| format!("{}", b.limit)),
                m.within.map_or(String::new(), |w| w.to_string())
            );
        }
    }
    Ok(Resp::new(200, "text/csv; charset=utf-8", out).with(
        "Content-Disposition",
        "attachment; filename=\"haptwin-sessions.csv\"",
    ))
}

/// `GET /export/xapi.json`: the xAPI statements of the sessions, the actor being the
/// resident's account on this dashboard (their user name, no e-mail).
pub fn export_xapi(app: &App, req: &Req) -> Answer {
    let sessions = export_sessions(app, req)?;
    let home = format!(
        "http://{}/",
        req.header("host").unwrap_or("haptwin.invalid")
    );
    let mut statements = Vec::new();
    for s in &sessions {
        let detail = app.store.session(s.id)?.ok_or(Fail::NotFound)?;
        let user = app.store.user(s.resident_id)?.ok_or(Fail::NotFound)?;
        let actor = XapiActor {
            name: user.display_name.clone(),
            mbox: None,
            account: Some((home.clone(), user.username.clone())),
        };
        let registration = name_uuid(&["haptwin-session", &detail.log_sha256]);
        match xapi_statements(&detail.card, &actor, &registration) {
            serde_json::Value::Array(v) => statements.extend(v),
            v => statements.push(v),
        }
    }
    Ok(Resp::json(200, &statements).with(
        "Content-Disposition",
        "attachment; filename=\"haptwin-xapi.json\"",
    ))
}

// ---- uploads --------------------------------------------------------------------------------

fn station(app: &App, req: &Req) -> Result<Station, Fail> {
    let token = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Fail::Unauthorized)?;
    app.store.station_by_token(token)?.ok_or(Fail::Unauthorized)
}

fn part_path(app: &App, id: &str) -> PathBuf {
    app.cfg.data_dir.join("uploads").join(format!("{id}.part"))
}

fn valid_upload_id(id: &str) -> Result<&str, Fail> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(Fail::NotFound)
    }
}

fn upload_create(app: &App, req: &Req) -> Answer {
    let st = station(app, req)?;
    let v: serde_json::Value = serde_json::from_slice(&req.body)
        .map_err(|e| Fail::Bad(format!("upload: not JSON: {e}")))?;
    let bytes = v["bytes"]
        .as_u64()
        .ok_or_else(|| Fail::Bad("upload: `bytes` (the log's size) is missing".into()))?;
    let sha = v["sha256"].as_str().unwrap_or("").to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Fail::Bad("upload: `sha256` must be 64 hex digits".into()));
    }
    if bytes == 0 {
        return Err(Fail::Bad("upload: the log is empty".into()));
    }
    if bytes > app.cfg.max_upload_bytes {
        return Err(Fail::TooLarge(format!(
            "upload: {bytes} bytes is over this server's limit of {} bytes",
            app.cfg.max_upload_bytes
        )));
    }
    let name = v["resident"].as_str().unwrap_or("");
    let resident = app
        .store
        .user_by_name(name)?
        .filter(|u| u.role == Role::Resident)
        .ok_or_else(|| Fail::Bad(format!("upload: no resident named {name:?}")))?;
    let id = app.store.create_upload(&st, resident.id, bytes, &sha)?;
    let path = part_path(app, &id);
    std::fs::create_dir_all(path.parent().unwrap_or(&app.cfg.data_dir))
        .and_then(|_| std::fs::File::create(&path).map(|_| ()))
        .map_err(|e| Fail::Internal(format!("upload {}: {e}", path.display())))?;
    Ok(Resp::json(
        201,
        &serde_json::json!({"id": id, "received_bytes": 0, "expected_bytes": bytes}),
    )
    .with("Location", &format!("/api/uploads/{id}")))
}

fn upload_state(app: &App, req: &Req, id: &str) -> Answer {
    let st = station(app, req)?;
    let id = valid_upload_id(id)?;
    let u = app.store.upload(&st, id)?.ok_or(Fail::NotFound)?;
    Ok(Resp::json(200, &u))
}

fn upload_put(app: &App, req: &Req, id: &str) -> Answer {
    let st = station(app, req)?;
    let id = valid_upload_id(id)?;
    // A chunk whose connection dropped may still be being written: take turns with it.
    let _turn = app.lock_upload(id);
    let u = app.store.upload(&st, id)?.ok_or(Fail::NotFound)?;
    if u.session_id.is_some() {
        return Err(Fail::Conflict("upload: already finished".into()));
    }
    let offset: u64 = req
        .param("offset")
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| Fail::Bad("upload: `offset` is missing".into()))?;
    if offset != u.received_bytes {
        return Ok(Resp::json(
            409,
            &serde_json::json!({
                "error": format!("upload: offset {offset}, but {} bytes have arrived", u.received_bytes),
                "received_bytes": u.received_bytes,
            }),
        ));
    }
    if req.body.len() as u64 > MAX_CHUNK {
        return Err(Fail::TooLarge("upload: chunk too large".into()));
    }
    let end = offset + req.body.len() as u64;
    if end > u.expected_bytes {
        return Err(Fail::TooLarge(format!(
            "upload: {end} bytes is more than the {} announced",
            u.expected_bytes
        )));
    }
    let path = part_path(app, id);
    let write = || -> std::io::Result<()> {
        let f = std::fs::OpenOptions::new().write(true).open(&path)?;
        // A chunk that arrived but whose answer was lost is written again at the same place.
        f.set_len(offset)?;
        let mut f = f;
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(offset))?;
        f.write_all(&req.body)?;
        f.sync_data()
    };
    write().map_err(|e| Fail::Internal(format!("upload {}: {e}", path.display())))?;
    app.store.set_upload_received(id, end)?;
    Ok(Resp::json(
        200,
        &serde_json::json!({"received_bytes": end, "expected_bytes": u.expected_bytes}),
    ))
}

fn upload_finish(app: &App, req: &Req, id: &str) -> Answer {
    let st = station(app, req)?;
    let id = valid_upload_id(id)?;
    // A finish asked again (its answer lost or late) waits for the first and answers its
    // session.
    let _turn = app.lock_upload(id);
    let u = app.store.upload(&st, id)?.ok_or(Fail::NotFound)?;
    if let Some(sid) = u.session_id {
        return Ok(Resp::json(200, &serde_json::json!({"session_id": sid})));
    }
    if u.received_bytes != u.expected_bytes {
        return Err(Fail::Conflict(format!(
            "upload: {} of {} bytes have arrived",
            u.received_bytes, u.expected_bytes
        )));
    }
    let path = part_path(app, id);
    let bytes = std::fs::read(&path)
        .map_err(|e| Fail::Internal(format!("upload {}: {e}", path.display())))?;
    let target = IngestTarget {
        resident_id: u.resident_id,
        station_id: Some(st.id),
        logs_dir: app.cfg.data_dir.join("logs"),
    };
    let name = PathBuf::from(format!("upload {id}"));
    match ingest_bytes(&app.store, &name, &bytes, Some(&u.sha256), &target) {
        Ok(sid) => {
            app.store.finish_upload(id, sid)?;
            let _ = std::fs::remove_file(&path);
            Ok(Resp::json(201, &serde_json::json!({"session_id": sid}))
                .with("Location", &format!("/sessions/{sid}")))
        }
        Err(IngestError::Store(e)) => Err(e.into()),
        Err(e @ IngestError::OtherResident { .. }) => Err(Fail::Conflict(e.to_string())),
        Err(IngestError::Keep { path, source }) => Err(Fail::Internal(format!(
            "keeping {}: {source}",
            path.display()
        ))),
        Err(e) => {
            // The bytes are refused: start over (the station still has its log).
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::File::create(&path);
            app.store.set_upload_received(id, 0)?;
            Ok(Resp::json(
                422,
                &serde_json::json!({"error": e.to_string(), "status": 422}),
            ))
        }
    }
}
