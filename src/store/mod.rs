//! The dashboard's store: accounts, cohorts, stations, scored sessions, ratings and logins, in
//! SQLite (the embedded default, one file in the user's data folder) or PostgreSQL (`--db
//! postgres://...`, for programmes with many stations), with the same schema and the same
//! behaviour.
//!
//! Contract:
//! - Every statement is parameterised ([`db`]); nothing is formatted into SQL.
//! - Passwords are kept only as argon2id hashes with a per-password salt; login and station
//!   tokens only as SHA-256 digests, so a copy of the database logs no one in.
//! - No patient identity is stored: a session keeps its case's pseudonym, never the twin's file
//!   name or any header field that could carry one ([`ingest`]).
//! - Access is decided here, once, for every route: [`Store::can_view_session`],
//!   [`Store::can_view_resident`], [`Store::can_view_cohort`]. Residents see only their own
//!   sessions, instructors the residents of the cohorts they teach, admins everything.
//! - A session is stored once per log (its SHA-256 is unique); storing it again returns the
//!   first id.

pub mod db;
pub mod ingest;
pub mod schema;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

pub use db::{DbError, Target, Value};
use db::{Pool, Row};

use crate::score::benchmark::{proficiency, Proficiency};
use crate::score::card::ScoreCard;

/// Seconds since the Unix epoch.
pub fn now_unix_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `n` random bytes as hex (tokens, upload ids).
pub fn random_hex(n: usize) -> Result<String, StoreError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(hex(&b))
}

/// What failed in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (its name is in the message).
    #[error(transparent)]
    Db(#[from] DbError),
    /// The schema could not be brought up to date.
    #[error(transparent)]
    Migrate(#[from] schema::MigrateError),
    /// A name is already taken (user, cohort or station).
    #[error("{what} {name:?} already exists")]
    Exists {
        /// `user`, `cohort` or `station`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// No such thing.
    #[error("no {what} {name:?}")]
    NotFound {
        /// `user`, `cohort`, `station` or `session`.
        what: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A value is not acceptable (an empty name, a short password, a rating out of range).
    #[error("{0}")]
    Invalid(String),
    /// Password hashing failed.
    #[error("password hashing: {0}")]
    Hash(String),
    /// The OS had no randomness to give.
    #[error("no randomness for a token: {0}")]
    Random(String),
    /// A stored score card no longer reads.
    #[error("session {id}: stored score card unreadable: {problem}")]
    Card {
        /// The session.
        id: i64,
        /// What failed.
        problem: String,
    },
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees their own sessions.
    Resident,
    /// Sees the residents of the cohorts they teach; rates sessions.
    Instructor,
    /// Sees everything.
    Admin,
}

impl Role {
    /// The role's name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Resident => "resident",
            Role::Instructor => "instructor",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        named(
            s,
            &[Role::Resident, Role::Instructor, Role::Admin],
            Role::as_str,
            "role",
        )
    }
}

/// The one of `all` whose name is `s`, or an error listing the names.
fn named<T: Copy>(
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
    what: &str,
) -> Result<T, StoreError> {
    all.iter().copied().find(|x| name(*x) == s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|x| name(*x)).collect();
        StoreError::Invalid(format!(
            "{what} {s:?}: expected one of {}",
            names.join(", ")
        ))
    })
}

/// An account.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Name shown.
    pub display_name: String,
    /// Role.
    pub role: Role,
}

/// A cohort of residents.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cohort {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
}

/// A simulator station allowed to upload.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Station {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
}

/// A session to store (built by [`ingest`]).
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Whose session.
    pub resident_id: i64,
    /// The station that uploaded it (`None`: recorded on this machine).
    pub station_id: Option<i64>,
    /// Where the log is kept.
    pub log_path: PathBuf,
    /// SHA-256 of the log file, hex.
    pub log_sha256: String,
    /// Size of the log file, bytes.
    pub log_bytes: u64,
    /// The instrument (`probe`, `scalpel`, ...).
    pub instrument: String,
    /// The device the session ran on.
    pub device: String,
    /// The score (its scenario, case pseudonym, start, duration and metrics).
    pub card: ScoreCard,
    /// What could not be measured, for people (empty when everything was).
    pub note: String,
    /// The report's plots (inline SVG), for the session page.
    pub plots_html: String,
    /// The replay viewer's frames, gzipped JSON (`None`: the case could not be rebuilt).
    pub replay_gz: Option<Vec<u8>>,
}

/// One stored session, as lists show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionSummary {
    /// Id.
    pub id: i64,
    /// Whose.
    pub resident_id: i64,
    /// Their name.
    pub resident_name: String,
    /// Scenario.
    pub scenario: String,
    /// Case pseudonym.
    pub case_pseudonym: String,
    /// Start, seconds since the Unix epoch.
    pub started_unix_s: i64,
    /// Simulated duration, seconds.
    pub duration_s: f64,
    /// Passed its benchmark (`None`: none).
    pub passed: Option<bool>,
    /// Share of the benchmarked metrics within their bounds, 0..1 (`None`: no benchmark).
    pub score: Option<f64>,
    /// Metrics within their bounds.
    pub metrics_within: i64,
    /// Metrics with a bound.
    pub metrics_total: i64,
    /// Whether the log closed cleanly.
    pub log_complete: bool,
}

/// One stored session with everything its page shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionDetail {
    /// The list's fields.
    #[serde(flatten)]
    pub summary: SessionSummary,
    /// Instrument.
    pub instrument: String,
    /// Device.
    pub device: String,
    /// haptwin version that recorded it.
    pub software_version: String,
    /// When it was stored, seconds since the Unix epoch.
    pub stored_unix_s: i64,
    /// SHA-256 of the log.
    pub log_sha256: String,
    /// Log size, bytes.
    pub log_bytes: i64,
    /// The benchmark it was judged against.
    pub benchmark: Option<String>,
    /// What could not be measured.
    pub note: String,
    /// The score card.
    pub card: ScoreCard,
    /// Whether replay frames are stored.
    pub has_replay: bool,
    /// The station that uploaded it.
    pub station: Option<String>,
}

/// A rating scale for an instructor's global rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// OSATS global rating scale (7 items, 1-5 each; open surgery).
    Osats,
    /// GOALS (5 items, 1-5 each; laparoscopy).
    Goals,
}

impl Scale {
    /// Item keys and labels, in order.
    pub fn items(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Scale::Osats => &[
                ("respect_for_tissue", "Respect for tissue"),
                ("time_and_motion", "Time and motion"),
                ("instrument_handling", "Instrument handling"),
                ("knowledge_of_instruments", "Knowledge of instruments"),
                ("use_of_assistants", "Use of assistants"),
                (
                    "flow_of_operation",
                    "Flow of operation and forward planning",
                ),
                ("knowledge_of_procedure", "Knowledge of specific procedure"),
            ],
            Scale::Goals => &[
                ("depth_perception", "Depth perception"),
                ("bimanual_dexterity", "Bimanual dexterity"),
                ("efficiency", "Efficiency"),
                ("tissue_handling", "Tissue handling"),
                ("autonomy", "Autonomy"),
            ],
        }
    }

    /// The scale's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Osats => "osats",
            Scale::Goals => "goals",
        }
    }
}

impl std::str::FromStr for Scale {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        named(
            s,
            &[Scale::Osats, Scale::Goals],
            Scale::as_str,
            "rating scale",
        )
    }
}

/// An instructor's rating of a session.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rating {
    /// Id.
    pub id: i64,
    /// The session.
    pub session_id: i64,
    /// Who rated.
    pub rater_name: String,
    /// The scale.
    pub scale: Scale,
    /// Item key and its score (1-5), in the scale's order.
    pub items: Vec<(String, u8)>,
    /// Sum of the items.
    pub total: i64,
    /// Free text.
    pub comment: String,
    /// When, seconds since the Unix epoch.
    pub created_unix_s: i64,
}

/// One resident's standing in one scenario.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Progress {
    /// The resident.
    pub resident_id: i64,
    /// Their name.
    pub resident_name: String,
    /// The scenario.
    pub scenario: String,
    /// Sessions stored.
    pub sessions: usize,
    /// The proficiency rule over the benchmarked tries, oldest first.
    pub proficiency: Proficiency,
    /// The latest session's id and score.
    pub last: Option<(i64, Option<f64>)>,
    /// The best score.
    pub best: Option<f64>,
    /// Scores oldest first (the trend), `None` where unbenchmarked.
    pub trend: Vec<Option<f64>>,
}

/// The store: a pool of connections to one database.
#[derive(Debug)]
pub struct Store {
    pool: Pool,
}

const MIN_PASSWORD_CHARS: usize = 10;

fn user_of(r: &Row) -> User {
    User {
        id: r.i64(0),
        username: r.text(1),
        display_name: r.text(2),
        role: r.text(3).parse().unwrap_or(Role::Resident),
    }
}

const USER_COLS: &str = "u.id, u.username, u.display_name, u.role";
const SUMMARY_COLS: &str = "s.id, s.resident_id, u.display_name, s.scenario, s.case_pseudonym, \
     s.started_unix_s, s.duration_s, s.passed, s.score, s.metrics_within, s.metrics_total, \
     s.log_complete";

fn summary_of(r: &Row) -> SessionSummary {
    SessionSummary {
        id: r.i64(0),
        resident_id: r.i64(1),
        resident_name: r.text(2),
        scenario: r.text(3),
        case_pseudonym: r.text(4),
        started_unix_s: r.i64(5),
        duration_s: r.f64(6),
        passed: r.opt_bool(7),
        score: r.opt_f64(8),
        metrics_within: r.i64(9),
        metrics_total: r.i64(10),
        log_complete: r.i64(11) != 0,
    }
}

/// Hashes `password` with argon2id and a fresh salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| StoreError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash that no password matches, verified when a login names no account so that the
/// answer takes as long as for a real one.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

impl Store {
    /// Opens (creating if need be) the database at `target` with a pool of `connections`, and
    /// brings its schema up to date.
    pub fn open(target: &Target, connections: usize) -> Result<Self, StoreError> {
        let pool = Pool::open(target, connections)?;
        schema::migrate(&mut pool.get())?;
        Ok(Self { pool })
    }

    /// The database.
    pub fn target(&self) -> &Target {
        self.pool.target()
    }

    /// The default embedded database: `$HAPTWIN_DB` if set, else `haptwin.db` in
    /// [`data_dir`].
    pub fn default_target() -> Result<Target, StoreError> {
        if let Some(db) = std::env::var("HAPTWIN_DB").ok().filter(|v| !v.is_empty()) {
            return Ok(Target::parse(&db)?);
        }
        Ok(Target::Sqlite(data_dir()?.join("haptwin.db")))
    }

    // ---- users ---------------------------------------------------------------------------

    /// Creates an account.
    pub fn create_user(
        &self,
        username: &str,
        display_name: &str,
        role: Role,
        password: &str,
    ) -> Result<User, StoreError> {
        let username = username.trim();
        if username.is_empty()
            || username.len() > 64
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(StoreError::Invalid(format!(
                "user name {username:?}: 1 to 64 letters, digits, '.', '_' or '-'"
            )));
        }
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(StoreError::Invalid(format!(
                "password for {username:?}: at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        let display = if display_name.trim().is_empty() {
            username
        } else {
            display_name.trim()
        };
        let hash = hash_password(password)?;
        let mut c = self.pool.get();
        if c.query_one(
            "SELECT id FROM users WHERE username = $1",
            &[username.into()],
        )?
        .is_some()
        {
            return Err(StoreError::Exists {
                what: "user",
                name: username.into(),
            });
        }
        let id = c
            .query_one(
                "INSERT INTO users (username, display_name, role, password_hash, created_unix_s) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    username.into(),
                    display.into(),
                    role.as_str().into(),
                    hash.into(),
                    now_unix_s().into(),
                ],
            )?
            .map_or(0, |r| r.i64(0));
        Ok(User {
            id,
            username: username.into(),
            display_name: display.into(),
            role,
        })
    }

    /// Changes a user's password.
    pub fn set_password(&self, username: &str, password: &str) -> Result<(), StoreError> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(StoreError::Invalid(format!(
                "password for {username:?}: at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        let hash = hash_password(password)?;
        let n = self.pool.get().execute(
            "UPDATE users SET password_hash = $1 WHERE username = $2",
            &[hash.into(), username.into()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "user",
                name: username.into(),
            });
        }
        Ok(())
    }

    /// The user named `username` whose password is `password`, if any (disabled accounts
    /// never match). Takes about as long whether or not the account exists.
    pub fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, StoreError> {
        let row = self.pool.get().query_one(
            &format!("SELECT {USER_COLS}, u.password_hash, u.disabled FROM users u WHERE u.username = $1"),
            &[username.into()],
        )?;
        match row {
            Some(r) => {
                let ok = verify_password(password, &r.text(4)) && r.i64(5) == 0;
                Ok(ok.then(|| user_of(&r)))
            }
            None => {
                verify_password(password, decoy_hash());
                Ok(None)
            }
        }
    }

    /// The user with `id`.
    pub fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one(
                &format!("SELECT {USER_COLS} FROM users u WHERE u.id = $1"),
                &[id.into()],
            )?
            .map(|r| user_of(&r)))
    }

    /// The user named `username`.
    pub fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one(
                &format!("SELECT {USER_COLS} FROM users u WHERE u.username = $1"),
                &[username.into()],
            )?
            .map(|r| user_of(&r)))
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        Ok(self
            .pool
            .get()
            .query(
                &format!("SELECT {USER_COLS} FROM users u ORDER BY u.username"),
                &[],
            )?
            .iter()
            .map(user_of)
            .collect())
    }

    /// Whether any admin account exists.
    pub fn has_admin(&self) -> Result<bool, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one(
                "SELECT id FROM users WHERE role = 'admin' AND disabled = 0",
                &[],
            )?
            .is_some())
    }

    // ---- cohorts -------------------------------------------------------------------------

    /// Creates a cohort.
    pub fn create_cohort(&self, name: &str) -> Result<Cohort, StoreError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 120 {
            return Err(StoreError::Invalid(format!(
                "cohort name {name:?}: 1 to 120 characters"
            )));
        }
        let mut c = self.pool.get();
        if c.query_one("SELECT id FROM cohorts WHERE name = $1", &[name.into()])?
            .is_some()
        {
            return Err(StoreError::Exists {
                what: "cohort",
                name: name.into(),
            });
        }
        let id = c
            .query_one(
                "INSERT INTO cohorts (name, created_unix_s) VALUES ($1, $2) RETURNING id",
                &[name.into(), now_unix_s().into()],
            )?
            .map_or(0, |r| r.i64(0));
        Ok(Cohort {
            id,
            name: name.into(),
        })
    }

    /// The cohort named `name`.
    pub fn cohort_by_name(&self, name: &str) -> Result<Option<Cohort>, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one(
                "SELECT id, name FROM cohorts WHERE name = $1",
                &[name.into()],
            )?
            .map(|r| Cohort {
                id: r.i64(0),
                name: r.text(1),
            }))
    }

    /// The cohort with `id`.
    pub fn cohort(&self, id: i64) -> Result<Option<Cohort>, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one("SELECT id, name FROM cohorts WHERE id = $1", &[id.into()])?
            .map(|r| Cohort {
                id: r.i64(0),
                name: r.text(1),
            }))
    }

    /// Adds `user` to `cohort`: as a resident member, or as one of its instructors (by the
    /// user's role). Adding twice is harmless.
    pub fn add_to_cohort(&self, cohort_id: i64, user: &User) -> Result<(), StoreError> {
        let table = match user.role {
            Role::Resident => "cohort_members",
            Role::Instructor | Role::Admin => "cohort_instructors",
        };
        let mut c = self.pool.get();
        let sql = format!("SELECT 1 FROM {table} WHERE cohort_id = $1 AND user_id = $2");
        if c.query_one(&sql, &[cohort_id.into(), user.id.into()])?
            .is_none()
        {
            c.execute(
                &format!("INSERT INTO {table} (cohort_id, user_id) VALUES ($1, $2)"),
                &[cohort_id.into(), user.id.into()],
            )?;
        }
        Ok(())
    }

    /// The cohorts `user` may see: an instructor's own, every cohort for an admin, the
    /// cohorts a resident belongs to.
    pub fn cohorts_for(&self, user: &User) -> Result<Vec<Cohort>, StoreError> {
        let (sql, params): (&str, Vec<Value>) = match user.role {
            Role::Admin => ("SELECT id, name FROM cohorts ORDER BY name", vec![]),
            Role::Instructor => (
                "SELECT c.id, c.name FROM cohorts c JOIN cohort_instructors i \
                 ON i.cohort_id = c.id WHERE i.user_id = $1 ORDER BY c.name",
                vec![user.id.into()],
            ),
            Role::Resident => (
                "SELECT c.id, c.name FROM cohorts c JOIN cohort_members m \
                 ON m.cohort_id = c.id WHERE m.user_id = $1 ORDER BY c.name",
                vec![user.id.into()],
            ),
        };
        Ok(self
            .pool
            .get()
            .query(sql, &params)?
            .iter()
            .map(|r| Cohort {
                id: r.i64(0),
                name: r.text(1),
            })
            .collect())
    }

    /// The residents of a cohort, by name.
    pub fn cohort_residents(&self, cohort_id: i64) -> Result<Vec<User>, StoreError> {
        Ok(self
            .pool
            .get()
            .query(
                &format!(
                    "SELECT {USER_COLS} FROM users u JOIN cohort_members m ON m.user_id = u.id \
                     WHERE m.cohort_id = $1 ORDER BY u.display_name, u.id"
                ),
                &[cohort_id.into()],
            )?
            .iter()
            .map(user_of)
            .collect())
    }

    // ---- access --------------------------------------------------------------------------

    /// Whether `user` may see the cohort: admins all, instructors those they teach (residents
    /// see no cohort pages).
    pub fn can_view_cohort(&self, user: &User, cohort_id: i64) -> Result<bool, StoreError> {
        Ok(match user.role {
            Role::Admin => self.cohort(cohort_id)?.is_some(),
            Role::Instructor => self
                .pool
                .get()
                .query_one(
                    "SELECT 1 FROM cohort_instructors WHERE cohort_id = $1 AND user_id = $2",
                    &[cohort_id.into(), user.id.into()],
                )?
                .is_some(),
            Role::Resident => false,
        })
    }

    /// Whether `user` may see the resident `resident_id`'s sessions.
    pub fn can_view_resident(&self, user: &User, resident_id: i64) -> Result<bool, StoreError> {
        Ok(match user.role {
            Role::Admin => self
                .user(resident_id)?
                .is_some_and(|u| u.role == Role::Resident),
            Role::Resident => user.id == resident_id,
            Role::Instructor => self
                .pool
                .get()
                .query_one(
                    "SELECT 1 FROM cohort_members m JOIN cohort_instructors i \
                     ON i.cohort_id = m.cohort_id WHERE m.user_id = $1 AND i.user_id = $2",
                    &[resident_id.into(), user.id.into()],
                )?
                .is_some(),
        })
    }

    /// Whether `user` may see session `session_id` (and `false` when there is none).
    pub fn can_view_session(&self, user: &User, session_id: i64) -> Result<bool, StoreError> {
        let owner = self
            .pool
            .get()
            .query_one(
                "SELECT resident_id FROM sessions WHERE id = $1",
                &[session_id.into()],
            )?
            .map(|r| r.i64(0));
        match owner {
            Some(resident) => self.can_view_resident(user, resident),
            None => Ok(false),
        }
    }

    // ---- stations ------------------------------------------------------------------------

    /// Registers a station; its upload token (shown once; only its digest is kept).
    pub fn create_station(&self, name: &str) -> Result<(Station, String), StoreError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 120 {
            return Err(StoreError::Invalid(format!(
                "station name {name:?}: 1 to 120 characters"
            )));
        }
        let token = format!("hts_{}", random_hex(24)?);
        let mut c = self.pool.get();
        if c.query_one("SELECT id FROM stations WHERE name = $1", &[name.into()])?
            .is_some()
        {
            return Err(StoreError::Exists {
                what: "station",
                name: name.into(),
            });
        }
        let id = c
            .query_one(
                "INSERT INTO stations (name, token_sha256, created_unix_s) VALUES ($1, $2, $3) \
                 RETURNING id",
                &[
                    name.into(),
                    sha256_hex(token.as_bytes()).into(),
                    now_unix_s().into(),
                ],
            )?
            .map_or(0, |r| r.i64(0));
        Ok((
            Station {
                id,
                name: name.into(),
            },
            token,
        ))
    }

    /// The station whose token is `token` (revoked stations never match).
    pub fn station_by_token(&self, token: &str) -> Result<Option<Station>, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one(
                "SELECT id, name FROM stations WHERE token_sha256 = $1 AND revoked = 0",
                &[sha256_hex(token.as_bytes()).into()],
            )?
            .map(|r| Station {
                id: r.i64(0),
                name: r.text(1),
            }))
    }

    /// Revokes a station's token.
    pub fn revoke_station(&self, name: &str) -> Result<(), StoreError> {
        let n = self.pool.get().execute(
            "UPDATE stations SET revoked = 1 WHERE name = $1",
            &[name.into()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "station",
                name: name.into(),
            });
        }
        Ok(())
    }

    // ---- logins --------------------------------------------------------------------------

    /// Starts a login for `user` lasting `ttl_s`: its cookie token and CSRF token.
    pub fn create_login(&self, user: &User, ttl_s: i64) -> Result<(String, String), StoreError> {
        let token = random_hex(32)?;
        let csrf = random_hex(32)?;
        let now = now_unix_s();
        let mut c = self.pool.get();
        c.execute(
            "DELETE FROM logins WHERE expires_unix_s < $1",
            &[now.into()],
        )?;
        c.execute(
            "INSERT INTO logins (token_sha256, user_id, csrf, created_unix_s, expires_unix_s) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                sha256_hex(token.as_bytes()).into(),
                user.id.into(),
                csrf.clone().into(),
                now.into(),
                (now + ttl_s).into(),
            ],
        )?;
        Ok((token, csrf))
    }

    /// The user and CSRF token of a live login (`None`: unknown, expired or disabled).
    pub fn login(&self, token: &str) -> Result<Option<(User, String)>, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one(
                &format!(
                    "SELECT {USER_COLS}, l.csrf FROM logins l JOIN users u ON u.id = l.user_id \
                     WHERE l.token_sha256 = $1 AND l.expires_unix_s > $2 AND u.disabled = 0"
                ),
                &[sha256_hex(token.as_bytes()).into(), now_unix_s().into()],
            )?
            .map(|r| (user_of(&r), r.text(4))))
    }

    /// Ends a login.
    pub fn logout(&self, token: &str) -> Result<(), StoreError> {
        self.pool.get().execute(
            "DELETE FROM logins WHERE token_sha256 = $1",
            &[sha256_hex(token.as_bytes()).into()],
        )?;
        Ok(())
    }

    // ---- benchmarks ----------------------------------------------------------------------

    /// Stores `scenario`'s benchmark (replacing an earlier one).
    pub fn put_benchmark(
        &self,
        bench: &crate::score::benchmark::Benchmark,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(bench).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut c = self.pool.get();
        c.transaction(|c| -> Result<(), StoreError> {
            c.execute(
                "DELETE FROM benchmarks WHERE scenario = $1",
                &[bench.scenario.clone().into()],
            )?;
            c.execute(
                "INSERT INTO benchmarks (scenario, json, updated_unix_s) VALUES ($1, $2, $3)",
                &[
                    bench.scenario.clone().into(),
                    json.into(),
                    now_unix_s().into(),
                ],
            )?;
            Ok(())
        })
    }

    /// The benchmark for `scenario`: the programme's own if stored, else the shipped one.
    pub fn benchmark(
        &self,
        scenario: &str,
    ) -> Result<Option<crate::score::benchmark::Benchmark>, StoreError> {
        let row = self.pool.get().query_one(
            "SELECT json FROM benchmarks WHERE scenario = $1",
            &[scenario.into()],
        )?;
        if let Some(b) = row.and_then(|r| serde_json::from_str(&r.text(0)).ok()) {
            return Ok(Some(b));
        }
        Ok(crate::score::benchmark::Benchmark::shipped(scenario))
    }

    // ---- sessions ------------------------------------------------------------------------

    /// Stores a scored session and its metrics; its id (the first one's, when this log was
    /// stored before).
    pub fn insert_session(&self, s: &NewSession) -> Result<i64, StoreError> {
        let mut c = self.pool.get();
        if let Some(r) = c.query_one(
            "SELECT id FROM sessions WHERE log_sha256 = $1",
            &[s.log_sha256.clone().into()],
        )? {
            return Ok(r.i64(0));
        }
        let (within, total) = crate::score::export::benchmark_counts(&s.card);
        let score = (total > 0).then(|| within as f64 / total as f64);
        let card_json =
            serde_json::to_string(&s.card).map_err(|e| StoreError::Invalid(e.to_string()))?;
        c.transaction(|c| -> Result<i64, StoreError> {
            // The same log stored meanwhile through another connection (a station retrying its
            // upload): keep the first, return its id.
            let inserted = c
                .query_one(
                    "INSERT INTO sessions (resident_id, station_id, scenario, case_pseudonym, \
                     instrument, device, software_version, started_unix_s, duration_s, \
                     stored_unix_s, log_path, log_sha256, log_bytes, log_complete, benchmark, \
                     passed, metrics_within, metrics_total, score, note, card_json, plots_html, \
                     replay_gz) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                     $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) \
                     ON CONFLICT (log_sha256) DO NOTHING RETURNING id",
                    &[
                        s.resident_id.into(),
                        s.station_id.into(),
                        s.card.scenario.clone().into(),
                        s.card.case_id.clone().into(),
                        s.instrument.clone().into(),
                        s.device.clone().into(),
                        s.card.software_version.clone().into(),
                        (s.card.started_unix_s as i64).into(),
                        s.card.duration_s.into(),
                        now_unix_s().into(),
                        s.log_path.to_string_lossy().into_owned().into(),
                        s.log_sha256.clone().into(),
                        (s.log_bytes as i64).into(),
                        s.card.log_complete.into(),
                        s.card.benchmark.clone().into(),
                        s.card.passed.into(),
                        i64::from(within).into(),
                        i64::from(total).into(),
                        score.into(),
                        s.note.clone().into(),
                        card_json.into(),
                        s.plots_html.clone().into(),
                        s.replay_gz.clone().into(),
                    ],
                )?
                .map(|r| r.i64(0));
            let Some(id) = inserted else {
                return Ok(c
                    .query_one(
                        "SELECT id FROM sessions WHERE log_sha256 = $1",
                        &[s.log_sha256.clone().into()],
                    )?
                    .map_or(0, |r| r.i64(0)));
            };
            for m in &s.card.metrics {
                c.execute(
                    "INSERT INTO session_metrics (session_id, key, value, within) \
                     VALUES ($1, $2, $3, $4)",
                    &[
                        id.into(),
                        m.key.clone().into(),
                        Value::from(m.value.is_finite().then_some(m.value)),
                        m.within.into(),
                    ],
                )?;
            }
            Ok(id)
        })
    }

    /// The session with `id`, everything its page shows.
    pub fn session(&self, id: i64) -> Result<Option<SessionDetail>, StoreError> {
        // `length()` of a blob is read from the row's header (SQLite) or the value's size
        // (PostgreSQL); `replay_gz IS NOT NULL` made SQLite read the whole replay, hundreds of
        // kB, on every session page.
        let row = self.pool.get().query_one(
            &format!(
                "SELECT {SUMMARY_COLS}, s.instrument, s.device, s.software_version, \
                 s.stored_unix_s, s.log_sha256, s.log_bytes, s.benchmark, s.note, s.card_json, \
                 length(s.replay_gz) > 0, st.name FROM sessions s \
                 JOIN users u ON u.id = s.resident_id \
                 LEFT JOIN stations st ON st.id = s.station_id WHERE s.id = $1"
            ),
            &[id.into()],
        )?;
        let Some(r) = row else { return Ok(None) };
        let card = serde_json::from_str(&r.text(20)).map_err(|e| StoreError::Card {
            id,
            problem: e.to_string(),
        })?;
        Ok(Some(SessionDetail {
            summary: summary_of(&r),
            instrument: r.text(12),
            device: r.text(13),
            software_version: r.text(14),
            stored_unix_s: r.i64(15),
            log_sha256: r.text(16),
            log_bytes: r.i64(17),
            benchmark: r.opt_text(18),
            note: r.text(19),
            card,
            has_replay: r.opt_bool(21).unwrap_or(false),
            station: r.opt_text(22),
        }))
    }

    /// The session whose log has SHA-256 `digest`, if stored: its id and resident.
    pub fn session_by_digest(&self, digest: &str) -> Result<Option<(i64, i64)>, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one(
                "SELECT id, resident_id FROM sessions WHERE log_sha256 = $1",
                &[digest.into()],
            )?
            .map(|r| (r.i64(0), r.i64(1))))
    }

    /// The stored plots of session `id`.
    pub fn session_plots(&self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one(
                "SELECT plots_html FROM sessions WHERE id = $1",
                &[id.into()],
            )?
            .map(|r| r.text(0)))
    }

    /// The replay viewer's frames of session `id` (gzipped JSON), if stored.
    pub fn session_replay(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one("SELECT replay_gz FROM sessions WHERE id = $1", &[id.into()])?
            .map(|r| r.blob(0))
            .filter(|b| !b.is_empty()))
    }

    /// Where session `id`'s log is kept, and its digest.
    pub fn session_log(&self, id: i64) -> Result<Option<(PathBuf, String)>, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one(
                "SELECT log_path, log_sha256 FROM sessions WHERE id = $1",
                &[id.into()],
            )?
            .map(|r| (PathBuf::from(r.text(0)), r.text(1))))
    }

    /// A resident's sessions, oldest first (optionally of one scenario).
    pub fn sessions_of(
        &self,
        resident_id: i64,
        scenario: Option<&str>,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        let mut sql = format!(
            "SELECT {SUMMARY_COLS} FROM sessions s JOIN users u ON u.id = s.resident_id \
             WHERE s.resident_id = $1"
        );
        let mut params: Vec<Value> = vec![resident_id.into()];
        if let Some(sc) = scenario {
            sql += " AND s.scenario = $2";
            params.push(sc.into());
        }
        sql += " ORDER BY s.started_unix_s, s.id";
        Ok(self
            .pool
            .get()
            .query(&sql, &params)?
            .iter()
            .map(summary_of)
            .collect())
    }

    /// Every session of a cohort's residents, oldest first.
    pub fn sessions_of_cohort(&self, cohort_id: i64) -> Result<Vec<SessionSummary>, StoreError> {
        Ok(self
            .pool
            .get()
            .query(
                &format!(
                    "SELECT {SUMMARY_COLS} FROM sessions s JOIN users u ON u.id = s.resident_id \
                     JOIN cohort_members m ON m.user_id = s.resident_id \
                     WHERE m.cohort_id = $1 ORDER BY s.started_unix_s, s.id"
                ),
                &[cohort_id.into()],
            )?
            .iter()
            .map(summary_of)
            .collect())
    }

    /// Every session `user` may see, newest first, at most `limit` (none when negative).
    pub fn sessions_visible_to(
        &self,
        user: &User,
        limit: i64,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        // SQLite reads a negative LIMIT as none, PostgreSQL refuses it.
        let limit = limit.max(0);
        let (filter, params): (&str, Vec<Value>) = match user.role {
            Role::Admin => ("", vec![limit.into()]),
            Role::Resident => (
                "WHERE s.resident_id = $2",
                vec![limit.into(), user.id.into()],
            ),
            Role::Instructor => (
                "WHERE s.resident_id IN (SELECT m.user_id FROM cohort_members m \
                 JOIN cohort_instructors i ON i.cohort_id = m.cohort_id WHERE i.user_id = $2)",
                vec![limit.into(), user.id.into()],
            ),
        };
        Ok(self
            .pool
            .get()
            .query(
                &format!(
                    "SELECT {SUMMARY_COLS} FROM sessions s JOIN users u ON u.id = s.resident_id \
                     {filter} ORDER BY s.started_unix_s DESC, s.id DESC LIMIT $1"
                ),
                &params,
            )?
            .iter()
            .map(summary_of)
            .collect())
    }

    /// Each resident x scenario standing of a cohort (residents without sessions have no
    /// entries).
    pub fn cohort_progress(&self, cohort_id: i64) -> Result<Vec<Progress>, StoreError> {
        Ok(progress_of(&self.sessions_of_cohort(cohort_id)?))
    }

    /// A resident's standing in each scenario they have tried.
    pub fn resident_progress(&self, resident_id: i64) -> Result<Vec<Progress>, StoreError> {
        Ok(progress_of(&self.sessions_of(resident_id, None)?))
    }

    /// For a warm-up session: the resident's readiness that day against their own earlier
    /// warm-ups in the store (`None` for other scenarios).
    pub fn readiness(
        &self,
        session: &SessionDetail,
    ) -> Result<Option<crate::score::benchmark::Readiness>, StoreError> {
        if session.summary.scenario != "warmup" {
            return Ok(None);
        }
        let earlier: Vec<i64> = self
            .sessions_of(session.summary.resident_id, Some("warmup"))?
            .iter()
            .filter(|s| {
                (s.started_unix_s, s.id) < (session.summary.started_unix_s, session.summary.id)
            })
            .map(|s| s.id)
            .collect();
        let mut history = Vec::with_capacity(earlier.len());
        for id in earlier {
            if let Some(d) = self.session(id)? {
                history.push(d.card);
            }
        }
        Ok(Some(crate::score::benchmark::readiness(
            &session.card,
            &history,
        )))
    }

    // ---- ratings -------------------------------------------------------------------------

    /// Stores an instructor's rating of a session; its id. Every item of the scale needs a
    /// score from 1 to 5.
    pub fn add_rating(
        &self,
        session_id: i64,
        rater: &User,
        scale: Scale,
        items: &[(String, u8)],
        comment: &str,
    ) -> Result<i64, StoreError> {
        let mut ordered = Vec::new();
        for (key, label) in scale.items() {
            let v = items
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| *v)
                .ok_or_else(|| StoreError::Invalid(format!("rating: {label} is not scored")))?;
            if !(1..=5).contains(&v) {
                return Err(StoreError::Invalid(format!(
                    "rating: {label} is {v}, expected 1 to 5"
                )));
            }
            ordered.push(((*key).to_string(), v));
        }
        if let Some((k, _)) = items
            .iter()
            .find(|(k, _)| !scale.items().iter().any(|(key, _)| key == k))
        {
            return Err(StoreError::Invalid(format!(
                "rating: {k:?} is not an item of {}",
                scale.as_str()
            )));
        }
        if items.len() != ordered.len() {
            return Err(StoreError::Invalid(
                "rating: an item is scored more than once".into(),
            ));
        }
        if comment.len() > 4000 {
            return Err(StoreError::Invalid(
                "rating: the comment is longer than 4000 bytes".into(),
            ));
        }
        let total: i64 = ordered.iter().map(|(_, v)| i64::from(*v)).sum();
        let items_json = serde_json::to_string(&ordered).unwrap_or_default();
        let mut c = self.pool.get();
        if c.query_one("SELECT 1 FROM sessions WHERE id = $1", &[session_id.into()])?
            .is_none()
        {
            return Err(StoreError::NotFound {
                what: "session",
                name: session_id.to_string(),
            });
        }
        Ok(c.query_one(
            "INSERT INTO ratings (session_id, rater_id, scale, items_json, total, comment, \
             created_unix_s) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                session_id.into(),
                rater.id.into(),
                scale.as_str().into(),
                items_json.into(),
                total.into(),
                comment.into(),
                now_unix_s().into(),
            ],
        )?
        .map_or(0, |r| r.i64(0)))
    }

    /// A session's ratings, oldest first.
    pub fn ratings(&self, session_id: i64) -> Result<Vec<Rating>, StoreError> {
        Ok(self
            .pool
            .get()
            .query(
                "SELECT r.id, r.session_id, u.display_name, r.scale, r.items_json, r.total, \
                 r.comment, r.created_unix_s FROM ratings r JOIN users u ON u.id = r.rater_id \
                 WHERE r.session_id = $1 ORDER BY r.created_unix_s, r.id",
                &[session_id.into()],
            )?
            .iter()
            .map(|r| Rating {
                id: r.i64(0),
                session_id: r.i64(1),
                rater_name: r.text(2),
                scale: r.text(3).parse().unwrap_or(Scale::Osats),
                items: serde_json::from_str(&r.text(4)).unwrap_or_default(),
                total: r.i64(5),
                comment: r.text(6),
                created_unix_s: r.i64(7),
            })
            .collect())
    }

    // ---- uploads -------------------------------------------------------------------------

    /// Starts an upload of a log of `bytes` bytes with SHA-256 `sha256` for `resident_id`
    /// from `station`; its id.
    pub fn create_upload(
        &self,
        station: &Station,
        resident_id: i64,
        bytes: u64,
        sha256: &str,
    ) -> Result<String, StoreError> {
        let id = random_hex(16)?;
        self.pool.get().execute(
            "INSERT INTO uploads (id, station_id, resident_id, expected_bytes, sha256, \
             received_bytes, created_unix_s) VALUES ($1, $2, $3, $4, $5, 0, $6)",
            &[
                id.clone().into(),
                station.id.into(),
                resident_id.into(),
                (bytes as i64).into(),
                sha256.into(),
                now_unix_s().into(),
            ],
        )?;
        Ok(id)
    }

    /// An upload of `station`'s: (resident, expected bytes, sha256, received bytes, session id
    /// once finished).
    pub fn upload(&self, station: &Station, id: &str) -> Result<Option<UploadState>, StoreError> {
        Ok(self
            .pool
            .get()
            .query_one(
                "SELECT resident_id, expected_bytes, sha256, received_bytes, session_id \
                 FROM uploads WHERE id = $1 AND station_id = $2",
                &[id.into(), station.id.into()],
            )?
            .map(|r| UploadState {
                id: id.to_string(),
                resident_id: r.i64(0),
                expected_bytes: r.i64(1) as u64,
                sha256: r.text(2),
                received_bytes: r.i64(3) as u64,
                session_id: r.opt_i64(4),
            }))
    }

    /// Records how many bytes of an upload have arrived.
    pub fn set_upload_received(&self, id: &str, received: u64) -> Result<(), StoreError> {
        self.pool.get().execute(
            "UPDATE uploads SET received_bytes = $1 WHERE id = $2",
            &[(received as i64).into(), id.into()],
        )?;
        Ok(())
    }

    /// Marks an upload finished as session `session_id`.
    pub fn finish_upload(&self, id: &str, session_id: i64) -> Result<(), StoreError> {
        self.pool.get().execute(
            "UPDATE uploads SET session_id = $1 WHERE id = $2",
            &[session_id.into(), id.into()],
        )?;
        Ok(())
    }
}

/// An upload in progress (or finished).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UploadState {
    /// Id.
    pub id: String,
    /// Whose session.
    pub resident_id: i64,
    /// The log's size, bytes.
    pub expected_bytes: u64,
    /// The log's SHA-256, hex.
    pub sha256: String,
    /// Bytes received so far.
    pub received_bytes: u64,
    /// The stored session, once finished.
    pub session_id: Option<i64>,
}

/// Groups sessions (oldest first) into each resident x scenario standing.
pub fn progress_of(sessions: &[SessionSummary]) -> Vec<Progress> {
    let mut keys: Vec<(String, i64, String)> = sessions
        .iter()
        .map(|s| (s.resident_name.clone(), s.resident_id, s.scenario.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(name, resident_id, scenario)| {
            let mine: Vec<&SessionSummary> = sessions
                .iter()
                .filter(|s| s.resident_id == resident_id && s.scenario == scenario)
                .collect();
            let passed: Vec<bool> = mine.iter().filter_map(|s| s.passed).collect();
            let trend: Vec<Option<f64>> = mine.iter().map(|s| s.score).collect();
            Progress {
                resident_id,
                resident_name: name,
                scenario,
                sessions: mine.len(),
                proficiency: proficiency(&passed),
                last: mine.last().map(|s| (s.id, s.score)),
                best: trend.iter().flatten().copied().reduce(f64::max),
                trend,
            }
        })
        .collect()
}

/// haptwin's data folder: `$XDG_DATA_HOME/haptwin`, else `~/.local/share/haptwin`.
pub fn data_dir() -> Result<PathBuf, StoreError> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(d).join("haptwin"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/haptwin")),
        None => Err(StoreError::Invalid(
            "neither XDG_DATA_HOME nor HOME is set: give --db".into(),
        )),
    }
}
