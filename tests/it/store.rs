//! The dashboard's store, the same on both engines: every test body is written once, taking a
//! [`TestDb`], and runs on a fresh SQLite file and on PostgreSQL (`store::<test>::sqlite`,
//! `store::<test>::postgres`).
//!
//! PostgreSQL is the server named by `HAPTWIN_TEST_PG` (`scripts/pg-start.sh` starts one and
//! prints its URL). Each test makes a schema of its own there (`t_<random>`), connects with
//! `options=-csearch_path=t_<random>` in the URL so every table lands in it, and drops it when
//! done, failed or not. Without `HAPTWIN_TEST_PG` the PostgreSQL variants say they were skipped
//! and pass, unless `HAPTWIN_REQUIRE_PG=1` (as `scripts/test.sh` sets): then they fail, as they
//! do whenever the variable is set and the server cannot be reached.
//!
//! Accounts, cohorts, access, stations, logins, benchmarks, sessions, ratings and uploads use
//! hand-made score cards, so they take milliseconds; the ingest tests store one real session
//! recorded once per test binary (a two-second scripted palpation on a small phantom twin kept
//! in a file whose path looks like a patient's name, which must never reach the database).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use haptwin::demo::{run_demo, DemoCase, DemoOptions};
use haptwin::score::benchmark::Benchmark;
use haptwin::score::card::{Better, MetricBound, MetricValue, ReplayCheck, ScoreCard};
use haptwin::score::export::benchmark_counts;
use haptwin::session::log::{MAGIC, TAG_TICKS};
use haptwin::session::SessionLog;
use haptwin::store::db::Conn;
use haptwin::store::ingest::{ingest_bytes, ingest_file, IngestError, IngestTarget};
use haptwin::store::schema::{self, MigrateError};
use haptwin::store::{
    random_hex, sha256_hex, NewSession, Role, Scale, Store, StoreError, Target, User, Value,
};
use haptwin::twin::build::phantom_twin;
use haptwin::twin::tets::TetOptions;

// ---------------------------------------------------------------------------------------------
// The two engines
// ---------------------------------------------------------------------------------------------

/// A fresh, migrated database for one test, and a folder of its own (the SQLite file, kept
/// logs). Dropping it closes the store, then drops the PostgreSQL schema.
struct TestDb {
    store: Store,
    target: Target,
    dir: tempfile::TempDir,
    /// The PostgreSQL schema (`None` on SQLite); dropped last.
    schema: Option<PgSchema>,
}

/// Drops a test's PostgreSQL schema, also when the test panicked.
struct PgSchema {
    base_url: String,
    name: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        match postgres::Client::connect(&self.base_url, postgres::NoTls) {
            Ok(mut c) => {
                if let Err(e) = c.batch_execute(&sql) {
                    eprintln!("could not drop the test schema {}: {e:?}", self.name);
                }
            }
            Err(e) => eprintln!("could not drop the test schema {}: {e:?}", self.name),
        }
    }
}

/// `url` with `key=value` added to its query (`value` already percent-encoded).
fn with_param(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

impl TestDb {
    /// A fresh SQLite file.
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Sqlite(dir.path().join("haptwin.db"));
        let store = Store::open(&target, 2).unwrap();
        Self {
            store,
            target,
            dir,
            schema: None,
        }
    }

    /// A fresh schema on the PostgreSQL server of `HAPTWIN_TEST_PG`; `None` (after saying so)
    /// when the variable is unset and PostgreSQL is not required.
    fn postgres(test: &str) -> Option<Self> {
        let required = std::env::var("HAPTWIN_REQUIRE_PG").is_ok_and(|v| v == "1");
        let Some(base) = std::env::var("HAPTWIN_TEST_PG")
            .ok()
            .filter(|v| !v.is_empty())
        else {
            assert!(
                !required,
                "HAPTWIN_REQUIRE_PG=1 but HAPTWIN_TEST_PG is not set: start a server with \
                 scripts/pg-start.sh and export the URL it prints"
            );
            eprintln!(
                "store::{test}::postgres skipped: HAPTWIN_TEST_PG is not set (scripts/pg-start.sh \
                 starts a server and prints its URL)"
            );
            return None;
        };
        let base = with_param(&base, "connect_timeout", "10");
        let shown = Target::Postgres(base.clone()).to_string();
        let mut admin = postgres::Client::connect(&base, postgres::NoTls).unwrap_or_else(|e| {
            panic!("HAPTWIN_TEST_PG={shown}: cannot connect: {e:?} (is the server up? scripts/pg-start.sh)")
        });
        let name = format!("t_{}", random_hex(8).unwrap());
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap_or_else(|e| panic!("{shown}: CREATE SCHEMA {name}: {e:?}"));
        let schema = PgSchema {
            base_url: base.clone(),
            name: name.clone(),
        };
        let target = Target::Postgres(with_param(
            &base,
            "options",
            &format!("-csearch_path%3D{name}"),
        ));
        let store = Store::open(&target, 2).unwrap();
        Some(Self {
            store,
            target,
            dir: tempfile::tempdir().unwrap(),
            schema: Some(schema),
        })
    }

    /// A connection of its own to the database, for looking behind the store's back.
    fn raw(&self) -> Conn {
        Conn::open(&self.target).unwrap()
    }

    /// Every row of `sql` (no parameters), each value as text (bytes lossily), for searching.
    fn dump(&self, sql: &str) -> Vec<String> {
        self.raw()
            .query(sql, &[])
            .unwrap()
            .into_iter()
            .flat_map(|r| r.0)
            .map(|v| match v {
                Value::Null => String::new(),
                Value::I64(i) => i.to_string(),
                Value::F64(f) => f.to_string(),
                Value::Text(t) => t,
                Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
            })
            .collect()
    }
}

/// Runs each named test body on both engines, as `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::TestDb::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(db) = super::TestDb::postgres(stringify!($name)) {
                    super::$name(&db);
                }
            }
        }
    )*};
}

on_both_engines!(
    migrations,
    users,
    cohorts_and_access,
    stations,
    logins,
    benchmarks,
    sessions,
    progress,
    ratings,
    uploads,
    hostile_strings_stay_data,
    one_log_stored_at_once_from_many_connections_is_one_session,
    a_panic_inside_a_transaction_rolls_it_back,
    ingest_scores_and_keeps_a_log_once,
    ingest_refuses_a_wrong_digest,
    ingest_of_damaged_logs,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const PASSWORD: &str = "correct horse battery";

fn user(db: &TestDb, name: &str, role: Role) -> User {
    db.store
        .create_user(name, &format!("{name} (display)"), role, PASSWORD)
        .unwrap()
}

fn is_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Invalid(_)))
}

/// A small hand-made score card: two benchmarked metrics (the first within its bound when
/// `passed`), one without a bound.
fn card(scenario: &str, started_unix_s: u64, passed: bool) -> ScoreCard {
    let bound = |limit: f64| MetricBound {
        limit,
        expert_mean: limit * 0.6,
        expert_sd: limit * 0.1,
        experts: 5,
    };
    let duration_s = if passed { 41.25 } else { 97.5 };
    ScoreCard {
        scenario: scenario.into(),
        case_id: "case-7f3a".into(),
        software_version: "0.1.0".into(),
        started_unix_s,
        duration_s,
        safe_force_n: 3.0,
        metrics: vec![
            MetricValue {
                key: "duration_s".into(),
                label: "Time".into(),
                unit: "s".into(),
                value: duration_s,
                better: Better::Lower,
                benchmark: Some(bound(60.0)),
                within: Some(passed),
            },
            MetricValue {
                key: "path_length_m".into(),
                label: "Tool-tip path length".into(),
                unit: "m".into(),
                value: 0.123_456_789_012_345_6,
                better: Better::Lower,
                benchmark: Some(bound(0.5)),
                within: Some(true),
            },
            MetricValue {
                key: "smoothness".into(),
                label: "Smoothness".into(),
                unit: String::new(),
                value: -7.5,
                better: Better::Higher,
                benchmark: None,
                within: None,
            },
        ],
        landmarks: vec![],
        benchmark: Some(format!("{scenario} (5 experts)")),
        passed: Some(passed),
        failed_metrics: if passed {
            vec![]
        } else {
            vec!["duration_s".into()]
        },
        log_complete: true,
        replay: Some(ReplayCheck {
            ticks: 41_250,
            compared: 41_250,
            mismatches: 0,
            first_mismatch_tick: None,
        }),
    }
}

/// A session of `resident` made by hand; `tag` makes its log digest unique.
fn new_session(resident: &User, tag: &str, card: ScoreCard) -> NewSession {
    let sha = sha256_hex(tag.as_bytes());
    NewSession {
        resident_id: resident.id,
        station_id: None,
        log_path: PathBuf::from(format!("/var/lib/haptwin/logs/{sha}.htlog")),
        log_sha256: sha,
        log_bytes: 123_456,
        instrument: "probe".into(),
        device: "simulated".into(),
        card,
        note: String::new(),
        plots_html: "<svg viewBox=\"0 0 10 10\"></svg>".into(),
        replay_gz: Some(vec![0x1f, 0x8b, 0, 1, 2, 255]),
    }
}

fn insert(db: &TestDb, resident: &User, tag: &str, card: ScoreCard) -> i64 {
    db.store
        .insert_session(&new_session(resident, tag, card))
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

fn migrations(db: &TestDb) {
    let mut raw = db.raw();
    if let Target::Postgres(_) = db.target {
        // The URL's search_path puts every table in the test's own schema.
        let schema = raw
            .query_one("SELECT current_schema()", &[])
            .unwrap()
            .unwrap()
            .text(0);
        assert_eq!(Some(&schema), db.schema.as_ref().map(|s| &s.name));
    }
    // One row per migration, the newest this build knows.
    let rows = raw
        .query(
            "SELECT version, name, applied_unix_s FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len() as i64, schema::latest_version());
    assert_eq!(rows.last().unwrap().i64(0), schema::latest_version());
    assert!(!rows[0].text(1).is_empty());
    assert!(rows[0].i64(2) > 1_600_000_000);

    // Migrating again, or opening again, applies nothing and keeps the data.
    let admin = user(db, "admin", Role::Admin);
    assert_eq!(schema::migrate(&mut raw).unwrap(), Vec::<i64>::new());
    let again = Store::open(&db.target, 1).unwrap();
    assert_eq!(again.user(admin.id).unwrap(), Some(admin));
    assert_eq!(
        raw.query("SELECT version FROM schema_migrations", &[])
            .unwrap()
            .len() as i64,
        schema::latest_version()
    );

    // A database from a newer haptwin is refused, not written to.
    let newer = schema::latest_version() + 1;
    raw.execute(
        "INSERT INTO schema_migrations (version, name, applied_unix_s) VALUES ($1, $2, $3)",
        &[newer.into(), "from the future".into(), 0i64.into()],
    )
    .unwrap();
    match Store::open(&db.target, 1) {
        Err(StoreError::Migrate(MigrateError::TooNew { found, known })) => {
            assert_eq!((found, known), (newer, schema::latest_version()));
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    assert!(matches!(
        schema::migrate(&mut raw),
        Err(MigrateError::TooNew { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------------------

fn users(db: &TestDb) {
    let s = &db.store;
    assert!(!s.has_admin().unwrap());
    let ana = s
        .create_user("  ana.r-1_x  ", "Ana R.", Role::Resident, PASSWORD)
        .unwrap();
    assert_eq!(ana.username, "ana.r-1_x", "the name is trimmed");
    assert_eq!(ana.display_name, "Ana R.");
    assert_eq!(ana.role, Role::Resident);
    assert!(ana.id > 0);
    // An empty display name becomes the user name.
    let bo = s
        .create_user("bo", "   ", Role::Instructor, PASSWORD)
        .unwrap();
    assert_eq!(bo.display_name, "bo");
    assert_ne!(bo.id, ana.id);

    match s.create_user("ana.r-1_x", "Other", Role::Admin, PASSWORD) {
        Err(StoreError::Exists { what, name }) => {
            assert_eq!((what, name.as_str()), ("user", "ana.r-1_x"))
        }
        other => panic!("expected Exists, got {other:?}"),
    }
    for bad in [
        "",
        "   ",
        "two words",
        "semi;colon",
        "quote'",
        "ünï",
        "a/b",
        &"x".repeat(65),
    ] {
        assert!(
            is_invalid(s.create_user(bad, "", Role::Resident, PASSWORD)),
            "user name {bad:?} must be refused"
        );
    }
    assert!(s
        .create_user(&"x".repeat(64), "", Role::Resident, PASSWORD)
        .is_ok());
    for short in ["", "short", "123456789", "ééééééééé"] {
        assert!(
            is_invalid(s.create_user("shorty", "", Role::Resident, short)),
            "password {short:?} must be refused"
        );
    }
    assert_eq!(s.user_by_name("shorty").unwrap(), None);

    // Passwords.
    assert_eq!(
        s.check_password("ana.r-1_x", PASSWORD).unwrap(),
        Some(ana.clone())
    );
    assert_eq!(
        s.check_password("ana.r-1_x", "wrong password!").unwrap(),
        None
    );
    assert_eq!(s.check_password("ana.r-1_x", "").unwrap(), None);
    assert_eq!(s.check_password("nobody", PASSWORD).unwrap(), None);
    let hash = db.dump("SELECT password_hash FROM users WHERE username = 'ana.r-1_x'");
    assert!(hash[0].starts_with("$argon2id$"), "{hash:?}");
    assert!(!hash[0].contains(PASSWORD));

    assert!(is_invalid(s.set_password("ana.r-1_x", "too short")));
    assert!(matches!(
        s.set_password("nobody", "a long new password"),
        Err(StoreError::NotFound { what: "user", .. })
    ));
    s.set_password("ana.r-1_x", "a long new password").unwrap();
    assert_eq!(s.check_password("ana.r-1_x", PASSWORD).unwrap(), None);
    assert_eq!(
        s.check_password("ana.r-1_x", "a long new password")
            .unwrap(),
        Some(ana.clone())
    );

    // A disabled account never matches.
    db.raw()
        .execute(
            "UPDATE users SET disabled = 1 WHERE id = $1",
            &[ana.id.into()],
        )
        .unwrap();
    assert_eq!(
        s.check_password("ana.r-1_x", "a long new password")
            .unwrap(),
        None
    );

    // Look-ups.
    assert_eq!(s.user(ana.id).unwrap(), Some(ana.clone()));
    assert_eq!(s.user(999_999).unwrap(), None);
    assert_eq!(s.user_by_name("bo").unwrap(), Some(bo.clone()));
    let names: Vec<String> = s.users().unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(
        names,
        ["ana.r-1_x".to_string(), "bo".into(), "x".repeat(64)]
    );
    assert!(!s.has_admin().unwrap());
    user(db, "root", Role::Admin);
    assert!(s.has_admin().unwrap());
}

fn cohorts_and_access(db: &TestDb) {
    let s = &db.store;
    let a = s.create_cohort("  2025 A ").unwrap();
    assert_eq!(a.name, "2025 A");
    let b = s.create_cohort("2025 B").unwrap();
    assert!(matches!(
        s.create_cohort("2025 A"),
        Err(StoreError::Exists { what: "cohort", .. })
    ));
    assert!(is_invalid(s.create_cohort("  ")));
    assert!(is_invalid(s.create_cohort(&"c".repeat(121))));
    assert_eq!(s.cohort_by_name("2025 B").unwrap(), Some(b.clone()));
    assert_eq!(s.cohort(a.id).unwrap(), Some(a.clone()));
    assert_eq!(s.cohort(999_999).unwrap(), None);

    let r1 = user(db, "r1", Role::Resident);
    let r2 = user(db, "r2", Role::Resident);
    let loner = user(db, "loner", Role::Resident);
    let i1 = user(db, "i1", Role::Instructor);
    let i2 = user(db, "i2", Role::Instructor);
    let idle = user(db, "idle", Role::Instructor);
    let admin = user(db, "admin", Role::Admin);
    s.add_to_cohort(a.id, &r1).unwrap();
    s.add_to_cohort(a.id, &r1).unwrap(); // twice is harmless
    s.add_to_cohort(a.id, &i1).unwrap();
    s.add_to_cohort(a.id, &i1).unwrap();
    s.add_to_cohort(b.id, &r2).unwrap();
    s.add_to_cohort(b.id, &i2).unwrap();
    assert_eq!(s.cohort_residents(a.id).unwrap(), vec![r1.clone()]);
    assert_eq!(s.cohort_residents(b.id).unwrap(), vec![r2.clone()]);

    assert_eq!(s.cohorts_for(&admin).unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(s.cohorts_for(&i1).unwrap(), vec![a.clone()]);
    assert_eq!(s.cohorts_for(&i2).unwrap(), vec![b.clone()]);
    assert_eq!(s.cohorts_for(&idle).unwrap(), vec![]);
    assert_eq!(s.cohorts_for(&r1).unwrap(), vec![a.clone()]);
    assert_eq!(s.cohorts_for(&loner).unwrap(), vec![]);

    let s1 = insert(db, &r1, "s1", card("palpation", 1_000, true));
    let s2 = insert(db, &r2, "s2", card("palpation", 2_000, false));
    let s3 = insert(db, &loner, "s3", card("biopsy", 3_000, true));
    let missing = s1.max(s2).max(s3) + 1_000;

    // Sessions: residents their own; instructors their cohorts' residents; admins all; no one
    // a session that does not exist.
    let matrix: [(&User, [bool; 3]); 7] = [
        (&r1, [true, false, false]),
        (&r2, [false, true, false]),
        (&loner, [false, false, true]),
        (&i1, [true, false, false]),
        (&i2, [false, true, false]),
        (&idle, [false, false, false]),
        (&admin, [true, true, true]),
    ];
    for (who, want) in matrix {
        let got = [s1, s2, s3].map(|id| s.can_view_session(who, id).unwrap());
        assert_eq!(got, want, "{} viewing sessions", who.username);
        assert!(
            !s.can_view_session(who, missing).unwrap(),
            "{}",
            who.username
        );
        let got = [&r1, &r2, &loner].map(|r| s.can_view_resident(who, r.id).unwrap());
        assert_eq!(got, want, "{} viewing residents", who.username);
        assert!(!s.can_view_resident(who, 999_999).unwrap());
    }
    // Cohorts: admins all, instructors theirs, residents none.
    for (who, want) in [
        (&admin, [true, true]),
        (&i1, [true, false]),
        (&i2, [false, true]),
        (&idle, [false, false]),
        (&r1, [false, false]),
        (&r2, [false, false]),
    ] {
        let got = [a.id, b.id].map(|c| s.can_view_cohort(who, c).unwrap());
        assert_eq!(got, want, "{} viewing cohorts", who.username);
        assert!(!s.can_view_cohort(who, 999_999).unwrap());
    }
    // An instructor who starts teaching a cohort sees its residents from then on.
    s.add_to_cohort(b.id, &i1).unwrap();
    assert!(s.can_view_session(&i1, s2).unwrap());
    assert!(s.can_view_cohort(&i1, b.id).unwrap());
    assert!(!s.can_view_session(&i1, s3).unwrap());
}

fn stations(db: &TestDb) {
    let s = &db.store;
    let (or1, token) = s.create_station(" OR 1 ").unwrap();
    assert_eq!(or1.name, "OR 1");
    assert!(token.starts_with("hts_") && token.len() > 40, "{token}");
    let (or2, token2) = s.create_station("OR 2").unwrap();
    assert_ne!(token, token2);
    assert!(matches!(
        s.create_station("OR 1"),
        Err(StoreError::Exists {
            what: "station",
            ..
        })
    ));
    assert!(is_invalid(s.create_station("")));

    assert_eq!(s.station_by_token(&token).unwrap(), Some(or1.clone()));
    assert_eq!(s.station_by_token(&token2).unwrap(), Some(or2.clone()));
    assert_eq!(s.station_by_token("hts_wrong").unwrap(), None);
    assert_eq!(s.station_by_token("").unwrap(), None);
    assert_eq!(s.station_by_token(&token.to_uppercase()).unwrap(), None);
    assert_eq!(s.station_by_token(&token[..token.len() - 1]).unwrap(), None);

    // Only the token's digest is kept.
    let cells = db.dump("SELECT * FROM stations");
    let secret = token.trim_start_matches("hts_");
    for cell in &cells {
        assert!(
            !cell.contains(secret) && !cell.contains(token2.trim_start_matches("hts_")),
            "a station token is stored in clear: {cells:?}"
        );
    }
    assert!(cells.contains(&sha256_hex(token.as_bytes())), "{cells:?}");

    s.revoke_station("OR 1").unwrap();
    assert_eq!(s.station_by_token(&token).unwrap(), None);
    assert_eq!(s.station_by_token(&token2).unwrap(), Some(or2));
    assert!(matches!(
        s.revoke_station("OR 9"),
        Err(StoreError::NotFound {
            what: "station",
            ..
        })
    ));
}

fn logins(db: &TestDb) {
    let s = &db.store;
    let ana = user(db, "ana", Role::Resident);
    let bo = user(db, "bo", Role::Instructor);
    let (token, csrf) = s.create_login(&ana, 3600).unwrap();
    let (token_b, csrf_b) = s.create_login(&bo, 3600).unwrap();
    assert_ne!(token, csrf);
    assert_ne!(token, token_b);
    assert_eq!(s.login(&token).unwrap(), Some((ana.clone(), csrf.clone())));
    assert_eq!(s.login(&token_b).unwrap(), Some((bo.clone(), csrf_b)));
    assert_eq!(s.login("not a token").unwrap(), None);
    assert_eq!(s.login(&csrf).unwrap(), None, "the CSRF token is no login");
    // Only digests of login tokens are kept.
    for cell in db.dump("SELECT token_sha256 FROM logins") {
        assert_ne!(cell, token);
        assert_ne!(cell, token_b);
    }

    s.logout(&token).unwrap();
    assert_eq!(s.login(&token).unwrap(), None);
    assert_eq!(s.login(&token_b).unwrap().map(|(u, _)| u), Some(bo.clone()));
    s.logout(&token).unwrap(); // twice is harmless

    // An expired login does not work (and the next login clears it away).
    let (old, _) = s.create_login(&ana, -10).unwrap();
    assert_eq!(s.login(&old).unwrap(), None);
    let (fresh, _) = s.create_login(&ana, 60).unwrap();
    assert_eq!(s.login(&fresh).unwrap().map(|(u, _)| u), Some(ana.clone()));
    let digest = sha256_hex(old.as_bytes());
    assert!(!db.dump("SELECT token_sha256 FROM logins").contains(&digest));

    // A disabled account's logins end.
    db.raw()
        .execute(
            "UPDATE users SET disabled = 1 WHERE id = $1",
            &[ana.id.into()],
        )
        .unwrap();
    assert_eq!(s.login(&fresh).unwrap(), None);
    assert!(s.login(&token_b).unwrap().is_some());
}

fn benchmarks(db: &TestDb) {
    let s = &db.store;
    let shipped = Benchmark::shipped("palpation").expect("palpation ships a benchmark");
    assert_eq!(s.benchmark("palpation").unwrap(), Some(shipped.clone()));
    assert_eq!(s.benchmark("no-such-scenario").unwrap(), None);

    let mut own = shipped.clone();
    own.experts = 12;
    own.rule = "our programme's own \"rule\"; it's stricter".into();
    for b in own.metrics.values_mut() {
        b.limit *= 0.9;
    }
    s.put_benchmark(&own).unwrap();
    assert_eq!(s.benchmark("palpation").unwrap(), Some(own.clone()));
    // Stored again, it replaces the first.
    own.experts = 13;
    s.put_benchmark(&own).unwrap();
    assert_eq!(s.benchmark("palpation").unwrap(), Some(own.clone()));
    assert_eq!(
        db.dump("SELECT scenario FROM benchmarks"),
        vec!["palpation".to_string()]
    );
    // Other scenarios still fall back to theirs.
    assert_eq!(s.benchmark("biopsy").unwrap(), Benchmark::shipped("biopsy"));
    // A programme's benchmark for a scenario that ships none.
    let mut drill = shipped;
    drill.scenario = "grasp-drill".into();
    s.put_benchmark(&drill).unwrap();
    assert_eq!(s.benchmark("grasp-drill").unwrap(), Some(drill));
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

fn sessions(db: &TestDb) {
    let s = &db.store;
    let ana = user(db, "ana", Role::Resident);
    let bo = user(db, "bo", Role::Resident);
    let (station, _) = s.create_station("OR 3").unwrap();

    let first_card = card("palpation", 1_700_000_300, true);
    let mut first = new_session(&ana, "ana-1", first_card.clone());
    first.station_id = Some(station.id);
    first.note = "Outcome not measured: \"quoted\" and 'single'.".into();
    let id = s.insert_session(&first).unwrap();
    assert!(id > 0);
    // The same log again (by its digest) is the same session, whatever else it says.
    let mut again = new_session(&bo, "ana-1", card("biopsy", 5, false));
    again.log_bytes = 1;
    assert_eq!(s.insert_session(&again).unwrap(), id);
    assert_eq!(s.insert_session(&first).unwrap(), id);
    assert_eq!(db.dump("SELECT id FROM sessions").len(), 1);

    // The detail reads back what was stored.
    let d = s.session(id).unwrap().expect("stored");
    assert_eq!(d.card, first_card);
    assert_eq!(d.summary.id, id);
    assert_eq!(d.summary.resident_id, ana.id);
    assert_eq!(d.summary.resident_name, ana.display_name);
    assert_eq!(d.summary.scenario, "palpation");
    assert_eq!(d.summary.case_pseudonym, "case-7f3a");
    assert_eq!(d.summary.started_unix_s, 1_700_000_300);
    assert_eq!(d.summary.duration_s, 41.25);
    assert_eq!(d.summary.passed, Some(true));
    assert_eq!((d.summary.metrics_within, d.summary.metrics_total), (2, 2));
    assert_eq!(d.summary.score, Some(1.0));
    assert!(d.summary.log_complete);
    assert_eq!(d.instrument, "probe");
    assert_eq!(d.device, "simulated");
    assert_eq!(d.software_version, "0.1.0");
    assert!((d.stored_unix_s - haptwin::store::now_unix_s()).abs() < 3600);
    assert_eq!(d.log_sha256, sha256_hex(b"ana-1"));
    assert_eq!(d.log_bytes, 123_456);
    assert_eq!(d.benchmark.as_deref(), Some("palpation (5 experts)"));
    assert_eq!(d.note, first.note);
    assert!(d.has_replay);
    assert_eq!(d.station.as_deref(), Some("OR 3"));
    assert_eq!(s.session_plots(id).unwrap(), Some(first.plots_html.clone()));
    assert_eq!(s.session_replay(id).unwrap(), first.replay_gz.clone());
    assert_eq!(
        s.session_log(id).unwrap(),
        Some((first.log_path.clone(), first.log_sha256.clone()))
    );
    assert!(s.session(id + 1000).unwrap().is_none());
    assert_eq!(s.session_plots(id + 1000).unwrap(), None);
    assert_eq!(s.session_replay(id + 1000).unwrap(), None);
    assert_eq!(s.session_log(id + 1000).unwrap(), None);

    // One metric row per metric; unbenchmarked ones have no verdict.
    let mut raw = db.raw();
    let rows = raw
        .query(
            "SELECT key, value, within FROM session_metrics WHERE session_id = $1 ORDER BY key",
            &[id.into()],
        )
        .unwrap();
    let got: Vec<(String, f64, Option<i64>)> = rows
        .iter()
        .map(|r| (r.text(0), r.f64(1), r.opt_i64(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("duration_s".to_string(), 41.25, Some(1)),
            (
                "path_length_m".to_string(),
                0.123_456_789_012_345_6,
                Some(1)
            ),
            ("smoothness".to_string(), -7.5, None),
        ]
    );

    // A failed session without a replay, and one without a benchmark.
    let failed_card = card("palpation", 1_700_000_100, false);
    let mut failed = new_session(&ana, "ana-0", failed_card.clone());
    failed.replay_gz = None;
    let failed_id = s.insert_session(&failed).unwrap();
    let d = s.session(failed_id).unwrap().unwrap();
    assert_eq!(d.card, failed_card);
    assert_eq!(d.summary.passed, Some(false));
    assert_eq!((d.summary.metrics_within, d.summary.metrics_total), (1, 2));
    assert_eq!(d.summary.score, Some(0.5));
    assert!(!d.has_replay);
    assert_eq!(d.station, None);
    assert_eq!(s.session_replay(failed_id).unwrap(), None);

    let mut bare = card("biopsy", 1_700_000_200, true);
    bare.benchmark = None;
    bare.passed = None;
    for m in &mut bare.metrics {
        m.benchmark = None;
        m.within = None;
    }
    bare.log_complete = false;
    let bare_id = insert(db, &ana, "ana-2", bare.clone());
    let d = s.session(bare_id).unwrap().unwrap();
    assert_eq!(d.card, bare);
    assert_eq!(d.summary.passed, None);
    assert_eq!(d.summary.score, None);
    assert_eq!((d.summary.metrics_within, d.summary.metrics_total), (0, 0));
    assert_eq!(d.benchmark, None);
    assert!(!d.summary.log_complete);

    // Lists: oldest first (by start, whatever the order stored), per scenario.
    let bo_id = insert(db, &bo, "bo-1", card("palpation", 1_700_000_150, true));
    let ids = |v: Vec<haptwin::store::SessionSummary>| v.iter().map(|x| x.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.sessions_of(ana.id, None).unwrap()),
        [failed_id, bare_id, id]
    );
    assert_eq!(
        ids(s.sessions_of(ana.id, Some("palpation")).unwrap()),
        [failed_id, id]
    );
    assert_eq!(
        ids(s.sessions_of(ana.id, Some("biopsy")).unwrap()),
        [bare_id]
    );
    assert_eq!(
        ids(s.sessions_of(ana.id, Some("warmup")).unwrap()),
        [0i64; 0]
    );
    assert_eq!(ids(s.sessions_of(bo.id, None).unwrap()), [bo_id]);
    let listed = s.sessions_of(ana.id, None).unwrap();
    assert_eq!(listed[2], s.session(id).unwrap().unwrap().summary);

    // What each role sees: newest first, at most `limit`.
    let teacher = user(db, "teacher", Role::Instructor);
    let admin = user(db, "admin", Role::Admin);
    let cohort = s.create_cohort("C").unwrap();
    s.add_to_cohort(cohort.id, &bo).unwrap();
    s.add_to_cohort(cohort.id, &teacher).unwrap();
    assert_eq!(
        ids(s.sessions_visible_to(&ana, 100).unwrap()),
        [id, bare_id, failed_id]
    );
    assert_eq!(ids(s.sessions_visible_to(&ana, 2).unwrap()), [id, bare_id]);
    assert_eq!(ids(s.sessions_visible_to(&bo, 100).unwrap()), [bo_id]);
    assert_eq!(ids(s.sessions_visible_to(&teacher, 100).unwrap()), [bo_id]);
    assert_eq!(
        ids(s.sessions_visible_to(&admin, 100).unwrap()),
        [id, bare_id, bo_id, failed_id]
    );
    assert_eq!(ids(s.sessions_visible_to(&admin, 1).unwrap()), [id]);
    assert_eq!(ids(s.sessions_visible_to(&admin, 0).unwrap()), [0i64; 0]);
    assert_eq!(ids(s.sessions_visible_to(&admin, -1).unwrap()), [0i64; 0]);
    assert_eq!(ids(s.sessions_of_cohort(cohort.id).unwrap()), [bo_id]);
}

fn progress(db: &TestDb) {
    let s = &db.store;
    let ana = user(db, "ana", Role::Resident);
    let bo = user(db, "bo", Role::Resident);
    let outsider = user(db, "outsider", Role::Resident);
    let cohort = s.create_cohort("Progress").unwrap();
    for r in [&ana, &bo] {
        s.add_to_cohort(cohort.id, r).unwrap();
    }
    // Ana: fail, pass, fail, pass, pass (stored out of order): proficient at her 5th try.
    let tries = [(5, true), (1, false), (3, false), (2, true), (4, true)];
    for (t, passed) in tries {
        insert(
            db,
            &ana,
            &format!("ana-{t}"),
            card("palpation", 1_000 + t, passed),
        );
    }
    insert(db, &ana, "ana-biopsy", card("biopsy", 1_010, true));
    // Bo: pass, fail: not yet.
    insert(db, &bo, "bo-1", card("palpation", 1_001, true));
    insert(db, &bo, "bo-2", card("palpation", 1_002, false));
    insert(db, &outsider, "out-1", card("palpation", 1_001, true));
    insert(db, &outsider, "out-2", card("palpation", 1_002, true));

    let p = s.cohort_progress(cohort.id).unwrap();
    let keys: Vec<(&str, &str)> = p
        .iter()
        .map(|x| (x.resident_name.as_str(), x.scenario.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("ana (display)", "biopsy"),
            ("ana (display)", "palpation"),
            ("bo (display)", "palpation"),
        ],
        "one standing per resident and scenario, the outsider left out"
    );
    let ana_p = &p[1];
    assert_eq!(ana_p.resident_id, ana.id);
    assert_eq!(ana_p.sessions, 5);
    assert_eq!(ana_p.proficiency.tries, 5);
    assert_eq!(ana_p.proficiency.passes, 3);
    assert_eq!(ana_p.proficiency.consecutive_passes, 2);
    assert!(ana_p.proficiency.proficient);
    assert_eq!(ana_p.proficiency.proficient_at_try, Some(5));
    assert_eq!(
        ana_p.trend,
        [Some(0.5), Some(1.0), Some(0.5), Some(1.0), Some(1.0)]
    );
    assert_eq!(ana_p.best, Some(1.0));
    let last = s.sessions_of(ana.id, Some("palpation")).unwrap();
    assert_eq!(ana_p.last, Some((last[4].id, Some(1.0))));
    assert_eq!(last[4].started_unix_s, 1_005);

    let bo_p = &p[2];
    assert_eq!(bo_p.sessions, 2);
    assert!(!bo_p.proficiency.proficient);
    assert_eq!(bo_p.proficiency.consecutive_passes, 0);
    assert_eq!(bo_p.trend, [Some(1.0), Some(0.5)]);

    // One try is not proficiency; the outsider's two passes are.
    assert!(!p[0].proficiency.proficient);
    let out = s.resident_progress(outsider.id).unwrap();
    assert_eq!(out.len(), 1);
    assert!(out[0].proficiency.proficient);
    assert_eq!(out[0].proficiency.proficient_at_try, Some(2));
    assert_eq!(s.resident_progress(ana.id).unwrap().len(), 2);
    assert_eq!(s.cohort_progress(999_999).unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// Ratings and uploads
// ---------------------------------------------------------------------------------------------

fn osats(values: [u8; 7]) -> Vec<(String, u8)> {
    Scale::Osats
        .items()
        .iter()
        .zip(values)
        .map(|((k, _), v)| ((*k).to_string(), v))
        .collect()
}

fn ratings(db: &TestDb) {
    let s = &db.store;
    let ana = user(db, "ana", Role::Resident);
    let teacher = user(db, "teacher", Role::Instructor);
    let id = insert(db, &ana, "rated", card("palpation", 1_000, true));
    assert_eq!(s.ratings(id).unwrap(), vec![]);

    // Items in any order are stored in the scale's order, with their total.
    let mut items = osats([5, 4, 3, 2, 1, 2, 3]);
    items.reverse();
    let comment = "Good 'flow'; watch the \"force\" — ça va.";
    let r1 = s
        .add_rating(id, &teacher, Scale::Osats, &items, comment)
        .unwrap();
    let goals: Vec<(String, u8)> = Scale::Goals
        .items()
        .iter()
        .map(|(k, _)| ((*k).to_string(), 4))
        .collect();
    let r2 = s
        .add_rating(id, &teacher, Scale::Goals, &goals, "")
        .unwrap();
    let got = s.ratings(id).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, r1);
    assert_eq!(got[0].session_id, id);
    assert_eq!(got[0].rater_name, teacher.display_name);
    assert_eq!(got[0].scale, Scale::Osats);
    assert_eq!(got[0].items, osats([5, 4, 3, 2, 1, 2, 3]));
    assert_eq!(got[0].total, 20);
    assert_eq!(got[0].comment, comment);
    assert!(got[0].created_unix_s > 1_600_000_000);
    assert_eq!(got[1].id, r2);
    assert_eq!(got[1].scale, Scale::Goals);
    assert_eq!(got[1].total, 20);

    // Every item once, each 1 to 5, nothing else.
    let mut missing = osats([3; 7]);
    missing.pop();
    assert!(is_invalid(s.add_rating(
        id,
        &teacher,
        Scale::Osats,
        &missing,
        ""
    )));
    for bad in [0, 6, 255] {
        let mut v = [3; 7];
        v[2] = bad;
        assert!(
            is_invalid(s.add_rating(id, &teacher, Scale::Osats, &osats(v), "")),
            "value {bad}"
        );
    }
    let mut unknown = osats([3; 7]);
    unknown.push(("bedside_manner".into(), 3));
    assert!(is_invalid(s.add_rating(
        id,
        &teacher,
        Scale::Osats,
        &unknown,
        ""
    )));
    assert!(is_invalid(s.add_rating(
        id,
        &teacher,
        Scale::Goals,
        &osats([3; 7]),
        ""
    )));
    assert!(is_invalid(s.add_rating(
        id,
        &teacher,
        Scale::Osats,
        &[],
        ""
    )));
    let mut twice = osats([3; 7]);
    twice.push((twice[0].0.clone(), 9));
    assert!(is_invalid(s.add_rating(
        id,
        &teacher,
        Scale::Osats,
        &twice,
        ""
    )));
    assert!(is_invalid(s.add_rating(
        id,
        &teacher,
        Scale::Osats,
        &osats([3; 7]),
        &"x".repeat(4001)
    )));
    match s.add_rating(id + 1000, &teacher, Scale::Osats, &osats([3; 7]), "") {
        Err(StoreError::NotFound { what, name }) => {
            assert_eq!((what, name), ("session", (id + 1000).to_string()));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(
        s.ratings(id).unwrap().len(),
        2,
        "nothing refused was stored"
    );
    assert_eq!(s.ratings(id + 1000).unwrap(), vec![]);
    assert_eq!("osats".parse::<Scale>().unwrap(), Scale::Osats);
    assert!(matches!(
        "OSATS ".parse::<Scale>(),
        Err(StoreError::Invalid(_))
    ));
}

fn uploads(db: &TestDb) {
    let s = &db.store;
    let ana = user(db, "ana", Role::Resident);
    let (st, _) = s.create_station("OR 4").unwrap();
    let (other, _) = s.create_station("OR 5").unwrap();
    let sha = sha256_hex(b"the log");
    let up = s.create_upload(&st, ana.id, 4_000_000_000, &sha).unwrap();
    assert_eq!(up.len(), 32);
    let up2 = s.create_upload(&st, ana.id, 10, &sha).unwrap();
    assert_ne!(up, up2);

    let state = s.upload(&st, &up).unwrap().expect("started");
    assert_eq!(state.id, up);
    assert_eq!(state.resident_id, ana.id);
    assert_eq!(state.expected_bytes, 4_000_000_000);
    assert_eq!(state.sha256, sha);
    assert_eq!(state.received_bytes, 0);
    assert_eq!(state.session_id, None);
    assert_eq!(
        s.upload(&other, &up).unwrap(),
        None,
        "another station's upload"
    );
    assert_eq!(s.upload(&st, "no-such-upload").unwrap(), None);

    s.set_upload_received(&up, 3_000_000_000).unwrap();
    assert_eq!(
        s.upload(&st, &up).unwrap().unwrap().received_bytes,
        3_000_000_000
    );
    let session = insert(db, &ana, "uploaded", card("palpation", 1, true));
    s.finish_upload(&up, session).unwrap();
    let done = s.upload(&st, &up).unwrap().unwrap();
    assert_eq!(done.session_id, Some(session));
    assert_eq!(done.received_bytes, 3_000_000_000);
    assert_eq!(s.upload(&st, &up2).unwrap().unwrap().session_id, None);
}

/// Quotes, comment markers and statement separators are data, stored and read back verbatim.
fn hostile_strings_stay_data(db: &TestDb) {
    let s = &db.store;
    for name in [
        "x'; DROP TABLE users; --",
        "x\"; DROP TABLE users; --",
        "a' OR '1'='1",
        "$1",
    ] {
        assert!(
            is_invalid(s.create_user(name, "", Role::Resident, PASSWORD)),
            "{name:?}"
        );
    }
    let display = "Robert'); DROP TABLE users; -- \"Bobby\" $1 ?1";
    let bobby = s
        .create_user("bobby", display, Role::Resident, PASSWORD)
        .unwrap();
    assert_eq!(s.user(bobby.id).unwrap().unwrap().display_name, display);
    assert_eq!(s.check_password("a' OR '1'='1", PASSWORD).unwrap(), None);
    assert_eq!(s.check_password("bobby", "' OR '1'='1").unwrap(), None);

    let cohort_name = "O'Brien's \"cohort\"; DROP TABLE cohorts; -- $2 ?1 \\ %";
    let c = s.create_cohort(cohort_name).unwrap();
    assert_eq!(c.name, cohort_name);
    assert_eq!(s.cohort_by_name(cohort_name).unwrap(), Some(c.clone()));
    assert_eq!(s.cohort(c.id).unwrap().unwrap().name, cohort_name);
    assert_eq!(s.cohort_by_name("O'Brien's").unwrap(), None);
    assert_eq!(s.cohort_by_name("%").unwrap(), None);

    let station_name = "Room 1'; UPDATE stations SET revoked = 0; --";
    let (st, token) = s.create_station(station_name).unwrap();
    assert_eq!(st.name, station_name);
    assert_eq!(
        s.station_by_token(&token).unwrap().unwrap().name,
        station_name
    );
    assert_eq!(s.station_by_token("' OR '1'='1").unwrap(), None);
    assert!(matches!(
        s.revoke_station("' OR '1'='1"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.station_by_token(&token).unwrap().is_some());

    let mut quoted = card("palpation", 1, true);
    quoted.case_id = "case '); DELETE FROM sessions; --".into();
    let id = insert(db, &bobby, "quoted", quoted.clone());
    assert_eq!(s.session(id).unwrap().unwrap().card, quoted);
    assert_eq!(
        s.sessions_of(bobby.id, Some("palpation' OR '1'='1"))
            .unwrap(),
        vec![]
    );

    // Every table is still there and whole.
    assert_eq!(db.dump("SELECT username FROM users"), ["bobby"]);
    assert_eq!(db.dump("SELECT name FROM cohorts"), [cohort_name]);
    assert_eq!(db.dump("SELECT id FROM sessions"), [id.to_string()]);
}

/// A station retrying an upload while the first is being stored: every insert of the same log
/// returns the one session's id, none fails on the unique digest.
fn one_log_stored_at_once_from_many_connections_is_one_session(db: &TestDb) {
    const THREADS: usize = 6;
    let ana = user(db, "ana", Role::Resident);
    let store = Store::open(&db.target, THREADS).unwrap();
    for round in 0..20 {
        let barrier = std::sync::Barrier::new(THREADS);
        let tag = format!("retried-{round}");
        let ids: Vec<i64> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (store, barrier, ana, tag) = (&store, &barrier, &ana, &tag);
                    scope.spawn(move || {
                        let session = new_session(ana, tag, card("palpation", 1, true));
                        barrier.wait();
                        store.insert_session(&session).unwrap()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|&id| id == ids[0]), "round {round}: {ids:?}");
        let d = store.session(ids[0]).unwrap().unwrap();
        assert_eq!(d.log_sha256, sha256_hex(tag.as_bytes()));
    }
    assert_eq!(db.dump("SELECT id FROM sessions").len(), 20);
    // Metrics were stored once per session.
    assert_eq!(db.dump("SELECT key FROM session_metrics").len(), 20 * 3);
}

/// A transaction whose body panics is rolled back, and its connection goes back to the pool
/// usable.
fn a_panic_inside_a_transaction_rolls_it_back(db: &TestDb) {
    use haptwin::store::db::Pool;
    use haptwin::store::DbError;
    let pool = Pool::open(&db.target, 1).unwrap();
    let add = |c: &mut Conn, name: &str| {
        c.execute(
            "INSERT INTO cohorts (name, created_unix_s) VALUES ($1, 1)",
            &[name.into()],
        )
        .map(|_| ())
    };
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = pool.get().transaction(|c| -> Result<(), DbError> {
            add(c, "half done")?;
            panic!("a bug inside a transaction");
        });
    }));
    assert!(panicked.is_err());
    let names = |c: &mut Conn| -> Vec<String> {
        c.query("SELECT name FROM cohorts ORDER BY name", &[])
            .unwrap()
            .iter()
            .map(|r| r.text(0))
            .collect()
    };
    // The same (only) connection: no transaction left open, nothing of it kept.
    let mut c = pool.get();
    assert_eq!(names(&mut c), Vec::<String>::new());
    c.transaction(|c| add(c, "after")).unwrap();
    // An error inside a transaction rolls back too.
    let failed: Result<(), DbError> = c.transaction(|c| {
        add(c, "undone")?;
        add(c, "after") // the name is taken
    });
    assert!(failed.is_err());
    drop(c);
    assert_eq!(names(&mut db.raw()), ["after"]);
    assert_eq!(names(&mut pool.get()), ["after"]);
}

// ---------------------------------------------------------------------------------------------
// Ingest: a real session
// ---------------------------------------------------------------------------------------------

/// A real session log, recorded once per test binary.
struct Recorded {
    /// Keeps the twin (the log's replay rebuilds the tissue from it) and the log.
    _dir: tempfile::TempDir,
    /// The twin's path, as the log's header names it; it looks like a patient's name.
    twin_path: PathBuf,
    bytes: Vec<u8>,
    log: SessionLog,
}

/// A two-second scripted palpation on a small phantom twin saved under a name-like path.
fn recorded() -> &'static Recorded {
    static R: OnceLock<Recorded> = OnceLock::new();
    R.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let twin_dir = dir.path().join("Doe-Jane-1956-03-14");
        std::fs::create_dir_all(&twin_dir).unwrap();
        let twin_path = twin_dir.join("Jane_Doe_MRN_4711.twin");
        phantom_twin(
            3e-3,
            &TetOptions {
                target_tets: 800,
                ..TetOptions::default()
            },
        )
        .unwrap()
        .save(&twin_path)
        .unwrap();
        let report = run_demo(
            &DemoOptions {
                seconds: Some(2.0),
                out_dir: dir.path().join("run"),
                render: false,
                realtime: false,
                case: DemoCase::File(twin_path.clone()),
                seed: 3,
                ..DemoOptions::default()
            },
            Arc::new(AtomicBool::new(false)),
        )
        .expect("the session runs");
        let bytes = std::fs::read(&report.log_path).unwrap();
        let log = SessionLog::parse(&report.log_path, &bytes).unwrap();
        assert_eq!(log.header.case, twin_path.display().to_string());
        assert!(log.damage.is_none() && log.end.is_some());
        Recorded {
            _dir: dir,
            twin_path,
            bytes,
            log,
        }
    })
}

fn target(db: &TestDb, resident: &User) -> IngestTarget {
    IngestTarget {
        resident_id: resident.id,
        station_id: None,
        logs_dir: db.dir.path().join("logs"),
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Files under `dir` (none when it does not exist).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

fn ingest_scores_and_keeps_a_log_once(db: &TestDb) {
    let rec = recorded();
    let s = &db.store;
    let ana = user(db, "ana", Role::Resident);
    let (station, _) = s.create_station("OR 6").unwrap();
    let mut to = target(db, &ana);
    to.station_id = Some(station.id);
    let sha = sha256_hex(&rec.bytes);
    // The announced digest is compared without regard to case.
    let id = ingest_bytes(
        s,
        Path::new("upload.htlog"),
        &rec.bytes,
        Some(&sha.to_uppercase()),
        &to,
    )
    .unwrap();

    let d = s.session(id).unwrap().expect("stored");
    let h = &rec.log.header;
    assert_eq!(d.summary.resident_id, ana.id);
    assert_eq!(d.summary.scenario, h.scenario);
    assert_eq!(d.summary.case_pseudonym, h.case_id);
    assert_eq!(d.card.case_id, h.case_id);
    assert_eq!(d.summary.started_unix_s, h.started_unix_s as i64);
    assert!((d.summary.duration_s - rec.log.records.len() as f64 * h.dt_s).abs() < 0.01);
    assert_eq!(d.instrument, "probe");
    assert_eq!(d.device, h.device);
    assert_eq!(d.software_version, h.software_version);
    assert_eq!(d.station.as_deref(), Some("OR 6"));
    assert_eq!(d.log_sha256, sha);
    assert_eq!(d.log_bytes, rec.bytes.len() as i64);
    assert!(d.summary.log_complete && d.card.log_complete);
    assert_eq!(d.note, "", "a clean log replays exactly");
    let check = d.card.replay.as_ref().expect("scored by re-simulation");
    assert_eq!(check.ticks as usize, rec.log.records.len());
    assert_eq!(check.mismatches, 0);

    // Judged against the shipped benchmark; the summary agrees with the card.
    assert!(d.card.benchmark.is_some());
    assert_eq!(d.benchmark, d.card.benchmark);
    let (within, total) = benchmark_counts(&d.card);
    assert!(total > 0);
    assert_eq!(
        (d.summary.metrics_within, d.summary.metrics_total),
        (i64::from(within), i64::from(total))
    );
    assert_eq!(d.summary.score, Some(f64::from(within) / f64::from(total)));
    assert_eq!(d.summary.passed, d.card.passed);
    assert_eq!(d.card.passed, Some(within == total));
    assert!(d.card.metrics.len() >= 5);
    let metric_rows = db
        .raw()
        .query(
            "SELECT key, value FROM session_metrics WHERE session_id = $1",
            &[id.into()],
        )
        .unwrap();
    assert_eq!(metric_rows.len(), d.card.metrics.len());
    for r in &metric_rows {
        assert_eq!(
            Some(r.f64(1)),
            d.card.metric(&r.text(0)).map(|m| m.value),
            "{}",
            r.text(0)
        );
    }

    // The plots and the replay viewer's frames.
    let plots = s.session_plots(id).unwrap().unwrap();
    assert!(plots.contains("<svg"), "{}", &plots[..plots.len().min(200)]);
    assert!(d.has_replay);
    let viewer: serde_json::Value =
        serde_json::from_slice(&gunzip(&s.session_replay(id).unwrap().unwrap())).unwrap();
    for key in ["frames", "tool", "rest", "surfaces"] {
        assert!(
            viewer[key].as_array().is_some_and(|a| !a.is_empty()),
            "{key} is empty"
        );
    }
    assert!(viewer["frames"][0]["d"].is_array());

    // The log is kept under its digest, byte for byte.
    let kept = db.dir.path().join("logs").join(format!("{sha}.htlog"));
    assert_eq!(std::fs::read(&kept).unwrap(), rec.bytes);
    assert_eq!(
        s.session_log(id).unwrap(),
        Some((kept.clone(), sha.clone()))
    );
    assert_eq!(
        files_in(&db.dir.path().join("logs")),
        std::slice::from_ref(&kept)
    );

    // The same bytes again, from anywhere, are the same session.
    assert_eq!(
        ingest_bytes(s, Path::new("again.htlog"), &rec.bytes, None, &to).unwrap(),
        id
    );
    let elsewhere = db.dir.path().join("copy.htlog");
    std::fs::write(&elsewhere, &rec.bytes).unwrap();
    assert_eq!(ingest_file(s, &elsewhere, &target(db, &ana)).unwrap(), id);
    assert_eq!(s.sessions_of(ana.id, None).unwrap().len(), 1);
    assert_eq!(files_in(&db.dir.path().join("logs")), [kept]);

    // Privacy: the twin's file name (the header's `case`) is nowhere in the database.
    let twin = rec.twin_path.display().to_string();
    let name = "Jane_Doe";
    let mut cells = db.dump("SELECT * FROM sessions");
    cells.extend(db.dump("SELECT * FROM session_metrics"));
    cells.push(String::from_utf8_lossy(&gunzip(&s.session_replay(id).unwrap().unwrap())).into());
    for cell in &cells {
        assert!(
            !cell.contains(&twin) && !cell.contains(name) && !cell.contains("Doe-Jane"),
            "the twin's path is stored: {}",
            &cell[..cell.len().min(300)]
        );
    }
    if let Target::Sqlite(file) = &db.target {
        // Every byte SQLite wrote (the database and its write-ahead log).
        let mut bytes = std::fs::read(file).unwrap();
        bytes.extend(std::fs::read(file.with_extension("db-wal")).unwrap_or_default());
        for needle in [twin.as_bytes(), name.as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "the SQLite file holds the twin's path"
            );
        }
    }
}

fn ingest_refuses_a_wrong_digest(db: &TestDb) {
    let rec = recorded();
    let ana = user(db, "ana", Role::Resident);
    let to = target(db, &ana);
    let wrong = sha256_hex(b"something else");
    match ingest_bytes(
        &db.store,
        Path::new("up.htlog"),
        &rec.bytes,
        Some(&wrong),
        &to,
    ) {
        Err(IngestError::Digest {
            path,
            expected,
            found,
        }) => {
            assert_eq!(path, Path::new("up.htlog"));
            assert_eq!(expected, wrong);
            assert_eq!(found, sha256_hex(&rec.bytes));
        }
        other => panic!("expected a digest error, got {other:?}"),
    }
    assert!(matches!(
        ingest_bytes(&db.store, Path::new("up.htlog"), &rec.bytes, Some(""), &to),
        Err(IngestError::Digest { .. })
    ));
    assert_eq!(db.store.sessions_of(ana.id, None).unwrap(), vec![]);
    assert_eq!(db.dump("SELECT id FROM sessions"), Vec::<String>::new());
    assert_eq!(files_in(&to.logs_dir), Vec::<PathBuf>::new());
}

/// (tag, payload offset, payload length) of every chunk of `bytes`, a valid log.
fn chunks(bytes: &[u8]) -> Vec<([u8; 4], usize, usize)> {
    assert_eq!(&bytes[..8], MAGIC);
    let hlen = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut at = 16 + hlen + 4;
    let mut out = Vec::new();
    while at < bytes.len() {
        let tag: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push((tag, at + 16, len));
        at += 16 + len;
    }
    out
}

fn ingest_of_damaged_logs(db: &TestDb) {
    let rec = recorded();
    let s = &db.store;
    let ana = user(db, "ana", Role::Resident);
    let to = target(db, &ana);
    let ticks: Vec<(usize, usize)> = chunks(&rec.bytes)
        .into_iter()
        .filter(|(tag, _, _)| tag == TAG_TICKS)
        .map(|(_, at, len)| (at, len))
        .collect();
    assert!(ticks.len() >= 3, "{} tick chunks", ticks.len());
    let flipped = |(at, len): (usize, usize)| {
        let mut b = rec.bytes.clone();
        b[at + len / 2] ^= 0x40;
        b
    };
    let nothing_stored = |what: &str| {
        assert_eq!(s.sessions_of(ana.id, None).unwrap(), vec![], "{what}");
        assert_eq!(files_in(&to.logs_dir), Vec::<PathBuf>::new(), "{what}");
    };

    // Cut to its header: it parses, but holds nothing to score.
    let header_end = 16 + u32::from_le_bytes(rec.bytes[12..16].try_into().unwrap()) as usize + 4;
    let header_only = &rec.bytes[..header_end];
    assert!(SessionLog::parse(Path::new("h"), header_only)
        .unwrap()
        .records
        .is_empty());
    assert!(matches!(
        ingest_bytes(s, Path::new("header.htlog"), header_only, None, &to),
        Err(IngestError::Empty { .. })
    ));
    nothing_stored("header only");

    // A flipped byte in the header JSON, or a log cut inside it: not a log.
    let mut bad_header = rec.bytes.clone();
    bad_header[20] ^= 0x01;
    for (what, bytes) in [
        ("header byte", &bad_header[..]),
        ("cut header", &rec.bytes[..header_end - 2]),
        ("no magic", &rec.bytes[8..]),
    ] {
        assert!(
            matches!(
                ingest_bytes(s, Path::new("bad.htlog"), bytes, None, &to),
                Err(IngestError::Log(_))
            ),
            "{what}"
        );
        nothing_stored(what);
    }

    // A flipped byte in the first tick chunk: nothing before it to recover.
    let first = flipped(ticks[0]);
    let parsed = SessionLog::parse(Path::new("f"), &first).unwrap();
    assert!(parsed.records.is_empty() && parsed.damage.is_some());
    assert!(matches!(
        ingest_bytes(s, Path::new("first.htlog"), &first, None, &to),
        Err(IngestError::Empty { .. })
    ));
    nothing_stored("first chunk flipped");

    // A flipped byte in a later tick chunk: the chunks before it are recovered and scored,
    // and the session says the log is incomplete.
    let later = flipped(ticks[2]);
    let parsed = SessionLog::parse(Path::new("l"), &later).unwrap();
    let damage = parsed.damage.as_ref().expect("damage found");
    assert!(damage.reason.contains("checksum"), "{}", damage.reason);
    assert!(!parsed.records.is_empty() && parsed.records.len() < rec.log.records.len());
    let id = ingest_bytes(s, Path::new("later.htlog"), &later, None, &to).unwrap();
    let d = s.session(id).unwrap().unwrap();
    assert!(!d.summary.log_complete && !d.card.log_complete);
    assert!(
        d.note.contains("The log is incomplete") && d.note.contains(&parsed.recovery_text()),
        "{}",
        d.note
    );
    assert_eq!(d.log_sha256, sha256_hex(&later));
    assert_eq!(
        d.card.replay.as_ref().map(|r| r.ticks as usize),
        Some(parsed.records.len())
    );
    let kept = to.logs_dir.join(format!("{}.htlog", sha256_hex(&later)));
    assert_eq!(std::fs::read(&kept).unwrap(), later, "kept as received");
    assert_eq!(files_in(&to.logs_dir), [kept]);

    // A log cut inside its last chunk (a crash): what was written is kept.
    let cut = &rec.bytes[..rec.bytes.len() - 3];
    let cut_id = ingest_bytes(s, Path::new("cut.htlog"), cut, None, &to).unwrap();
    assert_ne!(cut_id, id);
    let d = s.session(cut_id).unwrap().unwrap();
    assert!(!d.summary.log_complete);
    assert!(d.note.contains("The log is incomplete"), "{}", d.note);
    assert_eq!(s.sessions_of(ana.id, None).unwrap().len(), 2);
}
