//! The dashboard's commands: `serve`, `user`, `cohort`, `station`, `import`, `upload`, and the
//! demo's recording into the embedded store.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use haptwin::serve::{self, ServeConfig};
use haptwin::store::ingest::{ingest_file, IngestTarget};
use haptwin::store::{data_dir, random_hex, Role, Store, Target};

use super::{CohortCmd, StationCmd, UserCmd};

/// The demo resident's login name.
pub const DEMO_RESIDENT: &str = "demo-resident";
/// The demo cohort.
pub const DEMO_COHORT: &str = "Demo cohort";

fn target_of(db: Option<&str>) -> anyhow::Result<Target> {
    Ok(match db {
        Some(d) => Target::parse(d)?,
        None => Store::default_target()?,
    })
}

fn open(db: Option<&str>, connections: usize) -> anyhow::Result<Store> {
    let target = target_of(db)?;
    Store::open(&target, connections).with_context(|| format!("opening the store {target}"))
}

/// Where logs are kept: `--data-dir`, else the SQLite file's folder, else the data folder.
fn logs_root(store: &Store, data: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = data {
        return Ok(d);
    }
    if let Target::Sqlite(p) = store.target() {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            return Ok(dir.to_path_buf());
        }
    }
    Ok(data_dir()?)
}

fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        Ok((line.trim_end_matches(['\r', '\n']).to_string(), false))
    } else {
        Ok((random_hex(8)?, true))
    }
}

/// `haptwin serve`.
pub fn serve(
    addr: &str,
    db: Option<&str>,
    data: Option<PathBuf>,
    workers: usize,
    max_upload_mib: u64,
    secure_cookies: bool,
) -> anyhow::Result<ExitCode> {
    let store = open(db, serve::store_connections(workers))?;
    let data_dir = logs_root(&store, data)?;
    if !store.has_admin()? {
        let pw = random_hex(8)?;
        store.create_user("admin", "Administrator", Role::Admin, &pw)?;
        println!(
            "haptwin serve: no admin account yet: created `admin` with password {pw}\n  \
             (shown once; change it with `haptwin user passwd admin --password-stdin`)"
        );
    }
    let target = store.target().to_string();
    let running = serve::start(
        Arc::new(store),
        ServeConfig {
            addr: addr.to_string(),
            workers,
            data_dir: data_dir.clone(),
            max_upload_bytes: max_upload_mib << 20,
            secure_cookies,
            ..ServeConfig::default()
        },
    )?;
    println!(
        "haptwin serve: dashboard at http://{} (store {target}, logs in {}); Ctrl-C stops",
        running.addr,
        data_dir.display()
    );
    running.wait();
    Ok(ExitCode::SUCCESS)
}

/// `haptwin user ...`.
pub fn user(cmd: UserCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCmd::Add {
            username,
            role,
            name,
            cohort,
            password_stdin,
            db,
        } => {
            let store = open(db.db.as_deref(), 1)?;
            let role: Role = role.parse()?;
            let (pw, generated) = password(password_stdin)?;
            let user = store.create_user(&username, &name, role, &pw)?;
            if let Some(c) = cohort {
                let cohort = match store.cohort_by_name(&c)? {
                    Some(x) => x,
                    None => store.create_cohort(&c)?,
                };
                store.add_to_cohort(cohort.id, &user)?;
            }
            println!(
                "added {} `{}`{}",
                role.as_str(),
                user.username,
                if generated {
                    format!(" with password {pw} (shown once)")
                } else {
                    String::new()
                }
            );
        }
        UserCmd::Passwd {
            username,
            password_stdin,
            db,
        } => {
            let store = open(db.db.as_deref(), 1)?;
            let (pw, generated) = password(password_stdin)?;
            store.set_password(&username, &pw)?;
            if generated {
                println!("new password for `{username}`: {pw} (shown once)");
            } else {
                println!("password for `{username}` changed");
            }
        }
        UserCmd::List { db } => {
            let store = open(db.db.as_deref(), 1)?;
            for u in store.users()? {
                println!(
                    "{:<24} {:<10} {}",
                    u.username,
                    u.role.as_str(),
                    u.display_name
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `haptwin cohort ...`.
pub fn cohort(cmd: CohortCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CohortCmd::Add { name, db } => {
            let store = open(db.db.as_deref(), 1)?;
            let c = store.create_cohort(&name)?;
            println!("added cohort `{}` (id {})", c.name, c.id);
        }
        CohortCmd::Assign { cohort, users, db } => {
            let store = open(db.db.as_deref(), 1)?;
            let c = store
                .cohort_by_name(&cohort)?
                .with_context(|| format!("no cohort {cohort:?}"))?;
            for name in &users {
                let u = store
                    .user_by_name(name)?
                    .with_context(|| format!("no user {name:?}"))?;
                store.add_to_cohort(c.id, &u)?;
                println!(
                    "`{}` is in `{}` as {}",
                    u.username,
                    c.name,
                    if u.role == Role::Resident {
                        "a resident"
                    } else {
                        "an instructor"
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `haptwin station ...`.
pub fn station(cmd: StationCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        StationCmd::Add { name, db } => {
            let store = open(db.db.as_deref(), 1)?;
            let (s, token) = store.create_station(&name)?;
            println!(
                "added station `{}`; its upload token (shown once):\n{token}\n\
                 on the station: HAPTWIN_STATION_TOKEN={token} haptwin upload LOG --to URL --resident NAME",
                s.name
            );
        }
        StationCmd::Revoke { name, db } => {
            let store = open(db.db.as_deref(), 1)?;
            store.revoke_station(&name)?;
            println!("station `{name}` can no longer upload");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `haptwin import`.
pub fn import(
    logs: &[PathBuf],
    resident: &str,
    db: Option<&str>,
    data: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let store = open(db, 1)?;
    let user = store
        .user_by_name(resident)?
        .filter(|u| u.role == Role::Resident)
        .with_context(|| format!("no resident named {resident:?}"))?;
    let target = IngestTarget {
        resident_id: user.id,
        station_id: None,
        logs_dir: logs_root(&store, data)?.join("logs"),
    };
    let mut failed = 0;
    for log in logs {
        match ingest_file(&store, log, &target) {
            Ok(id) => println!("{}: stored as session {id}", log.display()),
            Err(e) => {
                failed += 1;
                eprintln!("haptwin import: {}: {e}", log.display());
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `haptwin upload`.
pub fn upload(
    log: &Path,
    to: &str,
    resident: &str,
    token: &str,
    chunk_bytes: usize,
    retries: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = serve::client::upload_log(
        log,
        &serve::client::UploadOptions {
            base_url: to.to_string(),
            token: token.to_string(),
            resident: resident.to_string(),
            chunk_bytes,
            retries,
            ..Default::default()
        },
    )
    .with_context(|| format!("uploading {}", log.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: stored as session {} ({} bytes, {} chunk{}, {} resume{}): {}",
            log.display(),
            report.session_id,
            report.bytes,
            report.chunks_sent,
            if report.chunks_sent == 1 { "" } else { "s" },
            report.resumes,
            if report.resumes == 1 { "" } else { "s" },
            report.session_url
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Records the demo's log in the store as the demo resident's (in the demo cohort); the
/// session id and the store.
pub fn store_demo(log: &Path, db: Option<&str>) -> anyhow::Result<(i64, String)> {
    let store = open(db, 1)?;
    let user = match store.user_by_name(DEMO_RESIDENT)? {
        Some(u) => u,
        None => {
            // Nobody logs in as the demo resident: a random password, never shown.
            let pw = random_hex(16)?;
            store.create_user(DEMO_RESIDENT, "Demo Resident", Role::Resident, &pw)?
        }
    };
    let cohort = match store.cohort_by_name(DEMO_COHORT)? {
        Some(c) => c,
        None => store.create_cohort(DEMO_COHORT)?,
    };
    store.add_to_cohort(cohort.id, &user)?;
    let target = IngestTarget {
        resident_id: user.id,
        station_id: None,
        logs_dir: logs_root(&store, None)?.join("logs"),
    };
    let id = ingest_file(&store, log, &target)?;
    Ok((id, store.target().to_string()))
}
