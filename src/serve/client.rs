//! `haptwin upload`: a station sends a finished session log to a dashboard, resuming after a
//! dropped connection.
//!
//! Protocol (see [`super::api`]): announce the log (`POST /api/uploads` with its size, SHA-256
//! and resident), send it in chunks (`PUT /api/uploads/{id}?offset=N`), then ask the server to
//! check and store it (`POST .../finish`). When a request fails on the way (connection refused,
//! reset, timed out, a 5xx), the client waits (0.5 s, doubling, at most 8 s), asks the server how
//! much has arrived (`GET /api/uploads/{id}`) and goes on from there; a 409 on a chunk carries
//! the right offset too. A 4xx other than 409 is final: the answer's message is the error. A
//! chunk that fails `retries` times in a row (each time resumed as above) ends the upload.
//! The log on the station is only read, never changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::store::sha256_hex;

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The log could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The log.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The dashboard refused the upload (a 4xx): its message.
    #[error("{url}: the dashboard answered {status}: {message}")]
    Refused {
        /// The request.
        url: String,
        /// The status.
        status: u16,
        /// The dashboard's message.
        message: String,
    },
    /// The dashboard could not be reached, or kept failing, after every retry.
    #[error("{url}: gave up after {tries} tries: {last}")]
    Unreachable {
        /// The request.
        url: String,
        /// Tries made.
        tries: u32,
        /// The last failure.
        last: String,
    },
    /// The dashboard answered something that is not the protocol.
    #[error("{url}: unexpected answer: {what}")]
    Protocol {
        /// The request.
        url: String,
        /// What was wrong.
        what: String,
    },
}

/// How an upload is made.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// The dashboard's base URL (`http://host:8080`).
    pub base_url: String,
    /// The station's token.
    pub token: String,
    /// The resident's user name.
    pub resident: String,
    /// Bytes per chunk.
    pub chunk_bytes: usize,
    /// Tries per request.
    pub retries: u32,
    /// First wait between tries (doubles, at most 8 s).
    pub first_backoff: Duration,
    /// Timeout of one request.
    pub timeout: Duration,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            token: String::new(),
            resident: String::new(),
            chunk_bytes: 1 << 20,
            retries: 8,
            first_backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(120),
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UploadReport {
    /// The stored session's id on the dashboard.
    pub session_id: i64,
    /// The session's page.
    pub session_url: String,
    /// The log's size, bytes.
    pub bytes: u64,
    /// Its SHA-256.
    pub sha256: String,
    /// Chunks sent (including ones sent again).
    pub chunks_sent: u64,
    /// Times the upload resumed after a failure.
    pub resumes: u64,
}

enum Try {
    /// A status and a JSON body.
    Answer(u16, Value),
    /// The request did not complete.
    Failed(String),
}

fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<(&str, &[u8])>,
) -> Try {
    let auth = format!("Bearer {token}");
    let result = match (method, body) {
        ("GET", _) => agent.get(url).header("Authorization", &auth).call(),
        ("POST", Some((ct, b))) => agent
            .post(url)
            .header("Authorization", &auth)
            .header("Content-Type", ct)
            .send(b),
        ("POST", None) => agent.post(url).header("Authorization", &auth).send_empty(),
        ("PUT", Some((ct, b))) => agent
            .put(url)
            .header("Authorization", &auth)
            .header("Content-Type", ct)
            .send(b),
        _ => return Try::Failed(format!("unsupported request {method}")),
    };
    match result {
        Err(e) => Try::Failed(e.to_string()),
        Ok(mut r) => {
            let status = r.status().as_u16();
            match r.body_mut().read_to_string() {
                Ok(text) => Try::Answer(status, serde_json::from_str(&text).unwrap_or(Value::Null)),
                Err(e) => Try::Failed(format!("reading the answer: {e}")),
            }
        }
    }
}

/// Uploads the log at `path`.
pub fn upload_log(path: &Path, opts: &UploadOptions) -> Result<UploadReport, UploadError> {
    let bytes = std::fs::read(path).map_err(|source| UploadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let sha256 = sha256_hex(&bytes);
    let base = opts.base_url.trim_end_matches('/').to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(opts.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let tries = opts.retries.max(1);
    let mut resumes = 0u64;
    let mut chunks_sent = 0u64;

    // Runs one request with retries; a 5xx or a failed connection is retried, a 4xx returned.
    let with_retries = |method: &str, url: &str, body: Option<(&str, &[u8])>| {
        let mut wait = opts.first_backoff;
        let mut last = String::new();
        for i in 0..tries {
            if i > 0 {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(8));
            }
            match request(&agent, method, url, &opts.token, body) {
                Try::Answer(s, v) if s < 500 => return Ok((s, v)),
                Try::Answer(s, v) => last = format!("{s}: {}", v["error"].as_str().unwrap_or("")),
                Try::Failed(e) => last = e,
            }
        }
        Err(UploadError::Unreachable {
            url: url.to_string(),
            tries,
            last,
        })
    };
    let refused = |url: &str, status: u16, v: &Value| UploadError::Refused {
        url: url.to_string(),
        status,
        message: v["error"].as_str().unwrap_or("(no message)").to_string(),
    };

    let url = format!("{base}/api/uploads");
    let announce = serde_json::json!({
        "bytes": bytes.len(),
        "sha256": sha256,
        "resident": opts.resident,
    })
    .to_string();
    let (status, v) = with_retries(
        "POST",
        &url,
        Some(("application/json", announce.as_bytes())),
    )?;
    if status != 201 {
        return Err(refused(&url, status, &v));
    }
    let id = v["id"]
        .as_str()
        .ok_or_else(|| UploadError::Protocol {
            url: url.clone(),
            what: "no upload id".into(),
        })?
        .to_string();
    let upload_url = format!("{base}/api/uploads/{id}");

    let mut offset = 0usize;
    let chunk = opts.chunk_bytes.max(1);
    // Chunk requests in a row that did not get a chunk in: as many as `tries`, then give up
    // (a server that answers every chunk with a 5xx would otherwise be asked forever).
    let mut stalled = 0u32;
    while offset < bytes.len() {
        let end = (offset + chunk).min(bytes.len());
        let url = format!("{upload_url}?offset={offset}");
        chunks_sent += 1;
        let answer = request(
            &agent,
            "PUT",
            &url,
            &opts.token,
            Some(("application/octet-stream", &bytes[offset..end])),
        );
        if !matches!(answer, Try::Answer(200, _)) {
            stalled += 1;
            if stalled >= tries {
                return Err(UploadError::Unreachable {
                    url,
                    tries: stalled,
                    last: match &answer {
                        Try::Answer(s, v) => format!("{s}: {}", v["error"].as_str().unwrap_or("")),
                        Try::Failed(e) => e.clone(),
                    },
                });
            }
        }
        match answer {
            Try::Answer(200, v) => {
                stalled = 0;
                offset = v["received_bytes"].as_u64().unwrap_or(end as u64) as usize;
            }
            Try::Answer(409, v) if v["received_bytes"].is_u64() => {
                resumes += 1;
                offset = v["received_bytes"].as_u64().unwrap_or(0) as usize;
            }
            Try::Answer(s, v) if s < 500 => return Err(refused(&url, s, &v)),
            Try::Answer(..) | Try::Failed(_) => {
                // Ask how much arrived, with retries (the server may be restarting); wait
                // longer each time in a row.
                resumes += 1;
                let wait = opts
                    .first_backoff
                    .saturating_mul(1 << (stalled - 1).min(16))
                    .min(Duration::from_secs(8).max(opts.first_backoff));
                std::thread::sleep(wait);
                let (s, v) = with_retries("GET", &upload_url, None)?;
                if s != 200 {
                    return Err(refused(&upload_url, s, &v));
                }
                offset = v["received_bytes"].as_u64().unwrap_or(0) as usize;
            }
        }
        if offset > bytes.len() {
            return Err(UploadError::Protocol {
                url: upload_url.clone(),
                what: format!(
                    "the server has {offset} bytes of a {}-byte log",
                    bytes.len()
                ),
            });
        }
    }

    let url = format!("{upload_url}/finish");
    let (status, v) = with_retries("POST", &url, None)?;
    if !(200..300).contains(&status) {
        return Err(refused(&url, status, &v));
    }
    let session_id = v["session_id"]
        .as_i64()
        .ok_or_else(|| UploadError::Protocol {
            url: url.clone(),
            what: "no session id".into(),
        })?;
    Ok(UploadReport {
        session_id,
        session_url: format!("{base}/sessions/{session_id}"),
        bytes: bytes.len() as u64,
        sha256,
        chunks_sent,
        resumes,
    })
}
