//! The two database engines behind one small interface: SQLite (embedded, one file, WAL) and
//! PostgreSQL (a server shared by many stations).
//!
//! Owns connections, the connection pool, parameter binding and row decoding. Every statement
//! the store runs is written once, with `$1, $2, ...` placeholders (rewritten to SQLite's `?1`),
//! and every value travels as a [`Value`] bound as a parameter: no SQL is ever built from data.
//! Columns use a common subset of types: `BIGINT` (integers and booleans as 0/1),
//! `DOUBLE PRECISION`, `TEXT` and a blob (`BLOB`/`BYTEA`).
//!
//! Contract: [`Pool::get`] blocks until a connection is free (the pool is sized for the server's
//! workers); a connection returns to the pool when its guard drops, rolled back if a
//! transaction was left open.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use postgres::types::{IsNull, ToSql, Type};

/// One value in or out of the database.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (also booleans, 0 or 1).
    I64(i64),
    /// A double.
    F64(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::I64(v as i64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F64(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A row, its columns in the order the query named them.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as an integer (0 for NULL or another type).
    pub fn i64(&self, i: usize) -> i64 {
        self.opt_i64(i).unwrap_or(0)
    }
    /// Column `i` as an integer, `None` for NULL.
    pub fn opt_i64(&self, i: usize) -> Option<i64> {
        match self.0.get(i) {
            Some(Value::I64(v)) => Some(*v),
            Some(Value::F64(v)) => Some(*v as i64),
            _ => None,
        }
    }
    /// Column `i` as a double, `None` for NULL.
    pub fn opt_f64(&self, i: usize) -> Option<f64> {
        match self.0.get(i) {
            Some(Value::F64(v)) => Some(*v),
            Some(Value::I64(v)) => Some(*v as f64),
            _ => None,
        }
    }
    /// Column `i` as a double (NaN for NULL).
    pub fn f64(&self, i: usize) -> f64 {
        self.opt_f64(i).unwrap_or(f64::NAN)
    }
    /// Column `i` as text (empty for NULL).
    pub fn text(&self, i: usize) -> String {
        self.opt_text(i).unwrap_or_default()
    }
    /// Column `i` as text, `None` for NULL.
    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.0.get(i) {
            Some(Value::Text(v)) => Some(v.clone()),
            _ => None,
        }
    }
    /// Column `i` as bytes (empty for NULL).
    pub fn blob(&self, i: usize) -> Vec<u8> {
        match self.0.get(i) {
            Some(Value::Blob(v)) => v.clone(),
            Some(Value::Text(v)) => v.clone().into_bytes(),
            _ => Vec::new(),
        }
    }
    /// Column `i` as a boolean (non-zero), `None` for NULL.
    pub fn opt_bool(&self, i: usize) -> Option<bool> {
        self.opt_i64(i).map(|v| v != 0)
    }
}

/// What failed in the database layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The SQLite file could not be opened or a statement failed.
    #[error("SQLite database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The PostgreSQL server could not be reached or a statement failed.
    #[error("PostgreSQL database {url}: {source}")]
    Postgres {
        /// The connection URL, password removed.
        url: String,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// The URL names no engine haptwin speaks.
    #[error("database URL {0:?}: expected a file path, sqlite:PATH or postgres://...")]
    Url(String),
    /// The folder for the SQLite file could not be made.
    #[error("cannot create the folder {path} for the database: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Which engine, and where.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user:password@host:port/db`).
    Postgres(String),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl fmt::Display for Target {
    /// The target as shown to people: a PostgreSQL password is replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Sqlite(p) => write!(f, "{}", p.display()),
            Target::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

/// `url` with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(x) => x,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl Target {
    /// Reads `--db`: `postgres://...` or `postgresql://...`, `sqlite:PATH`, or a file path.
    pub fn parse(s: &str) -> Result<Self, DbError> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Target::Postgres(s.to_string()))
        } else if let Some(p) = s.strip_prefix("sqlite://") {
            Ok(Target::Sqlite(PathBuf::from(p)))
        } else if let Some(p) = s.strip_prefix("sqlite:") {
            Ok(Target::Sqlite(PathBuf::from(p)))
        } else if s.is_empty() || s.contains("://") {
            Err(DbError::Url(s.to_string()))
        } else {
            Ok(Target::Sqlite(PathBuf::from(s)))
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Target::Postgres(_))
    }
}

/// One open connection.
pub enum Conn {
    /// SQLite.
    Sqlite {
        /// The connection.
        conn: rusqlite::Connection,
        /// Its file (for errors).
        path: PathBuf,
    },
    /// PostgreSQL.
    Postgres {
        /// The client.
        client: Box<postgres::Client>,
        /// Its URL, password removed (for errors).
        url: String,
    },
}

/// `$1` -> `?1` (SQLite's numbered parameters); text inside quotes is left alone.
fn sqlite_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_quote = false;
    for c in sql.chars() {
        if c == '\'' {
            in_quote = !in_quote;
        }
        out.push(if c == '$' && !in_quote { '?' } else { c });
    }
    out
}

struct PgParam<'a>(&'a Value);

impl fmt::Debug for PgParam<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::I64(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::F64(v) => match *ty {
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Text(v) => v.to_sql(ty, out),
            Value::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn pg_value(row: &postgres::Row, i: usize) -> Result<Value, postgres::Error> {
    let ty = row.columns()[i].type_().clone();
    Ok(match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.into(),
        Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(i64::from).into(),
        Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(i64::from).into(),
        Type::BOOL => row.try_get::<_, Option<bool>>(i)?.into(),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.into(),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(f64::from).into(),
        Type::NUMERIC => {
            // SUM/AVG of BIGINT give NUMERIC; the store casts those, but read them as text.
            row.try_get::<_, Option<String>>(i)
                .ok()
                .flatten()
                .and_then(|s| s.parse::<f64>().ok())
                .into()
        }
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.into(),
        _ => row.try_get::<_, Option<String>>(i)?.into(),
    })
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef as R;
    match v {
        R::Null => Value::Null,
        R::Integer(i) => Value::I64(i),
        R::Real(f) => Value::F64(f),
        // The strict check is much faster than the lossy one on long text (the plots).
        R::Text(t) => Value::Text(match std::str::from_utf8(t) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(t).into_owned(),
        }),
        R::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn sqlite_param(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Null => S::Null,
        Value::I64(i) => S::Integer(*i),
        Value::F64(f) => S::Real(*f),
        Value::Text(t) => S::Text(t.clone()),
        Value::Blob(b) => S::Blob(b.clone()),
    }
}

impl Conn {
    /// Opens a connection to `target`.
    pub fn open(target: &Target) -> Result<Self, DbError> {
        match target {
            Target::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| DbError::Folder {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                let err = |source| DbError::Sqlite {
                    path: path.clone(),
                    source,
                };
                let conn = rusqlite::Connection::open(path).map_err(err)?;
                conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
                conn.execute_batch(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON;",
                )
                .map_err(err)?;
                Ok(Conn::Sqlite {
                    conn,
                    path: path.clone(),
                })
            }
            Target::Postgres(url) => {
                let shown = redact_url(url);
                let client = postgres::Client::connect(url, postgres::NoTls).map_err(|source| {
                    DbError::Postgres {
                        url: shown.clone(),
                        source,
                    }
                })?;
                Ok(Conn::Postgres {
                    client: Box::new(client),
                    url: shown,
                })
            }
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Conn::Postgres { .. })
    }

    /// Whether the connection is closed (a PostgreSQL server restarted or dropped it).
    pub fn is_broken(&self) -> bool {
        match self {
            Conn::Sqlite { .. } => false,
            Conn::Postgres { client, .. } => client.is_closed(),
        }
    }

    fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> DbError + '_ {
        move |source| DbError::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Runs statements with no parameters and no rows (schema, `BEGIN`).
    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Conn::Sqlite { conn, path } => conn.execute_batch(sql).map_err(Self::sqlite_err(path)),
            Conn::Postgres { client, url } => {
                client
                    .batch_execute(sql)
                    .map_err(|source| DbError::Postgres {
                        url: url.clone(),
                        source,
                    })
            }
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        match self {
            Conn::Sqlite { conn, path } => {
                let mut st = conn
                    .prepare_cached(&sqlite_sql(sql))
                    .map_err(Self::sqlite_err(path))?;
                let n = st
                    .execute(rusqlite::params_from_iter(params.iter().map(sqlite_param)))
                    .map_err(Self::sqlite_err(path))?;
                Ok(n as u64)
            }
            Conn::Postgres { client, url } => {
                let p: Vec<PgParam<'_>> = params.iter().map(PgParam).collect();
                let refs: Vec<&(dyn ToSql + Sync)> =
                    p.iter().map(|x| x as &(dyn ToSql + Sync)).collect();
                client
                    .execute(sql, &refs)
                    .map_err(|source| DbError::Postgres {
                        url: url.clone(),
                        source,
                    })
            }
        }
    }

    /// Runs a query; its rows.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        match self {
            Conn::Sqlite { conn, path } => {
                let err = Self::sqlite_err(path);
                let mut st = conn.prepare_cached(&sqlite_sql(sql)).map_err(&err)?;
                let n = st.column_count();
                let mut rows = st
                    .query(rusqlite::params_from_iter(params.iter().map(sqlite_param)))
                    .map_err(&err)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(&err)? {
                    let mut vals = Vec::with_capacity(n);
                    for i in 0..n {
                        vals.push(sqlite_value(r.get_ref(i).map_err(&err)?));
                    }
                    out.push(Row(vals));
                }
                Ok(out)
            }
            Conn::Postgres { client, url } => {
                let perr = |source| DbError::Postgres {
                    url: url.clone(),
                    source,
                };
                let p: Vec<PgParam<'_>> = params.iter().map(PgParam).collect();
                let refs: Vec<&(dyn ToSql + Sync)> =
                    p.iter().map(|x| x as &(dyn ToSql + Sync)).collect();
                let rows = client.query(sql, &refs).map_err(perr)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let mut vals = Vec::with_capacity(r.len());
                    for i in 0..r.len() {
                        vals.push(pg_value(r, i).map_err(|source| DbError::Postgres {
                            url: url.clone(),
                            source,
                        })?);
                    }
                    out.push(Row(vals));
                }
                Ok(out)
            }
        }
    }

    /// The first row of a query, if any.
    pub fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs `f` in a transaction: committed when it returns `Ok`, rolled back otherwise (also
    /// when `f` panics or the commit fails), so the connection never goes back to its pool
    /// inside a transaction.
    pub fn transaction<T, E: From<DbError>>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        self.batch(if self.is_postgres() {
            "BEGIN"
        } else {
            "BEGIN IMMEDIATE"
        })?;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        match result {
            Ok(Ok(v)) => match self.batch("COMMIT") {
                Ok(()) => Ok(v),
                Err(e) => {
                    // A failed COMMIT can leave SQLite's transaction open.
                    let _ = self.batch("ROLLBACK");
                    Err(e.into())
                }
            },
            Ok(Err(e)) => {
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
            Err(panic) => {
                let _ = self.batch("ROLLBACK");
                std::panic::resume_unwind(panic)
            }
        }
    }
}

/// A fixed-size pool of connections.
pub struct Pool {
    target: Target,
    idle: Mutex<Vec<Conn>>,
    freed: Condvar,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A connection taken from a [`Pool`]; it goes back when dropped.
pub struct PooledConn<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for PooledConn<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl std::ops::DerefMut for PooledConn<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for PooledConn<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.push(conn);
            self.pool.freed.notify_one();
        }
    }
}

impl Pool {
    /// Opens `size` connections to `target` (at least one).
    pub fn open(target: &Target, size: usize) -> Result<Self, DbError> {
        let mut conns = Vec::new();
        for _ in 0..size.max(1) {
            conns.push(Conn::open(target)?);
        }
        Ok(Self {
            target: target.clone(),
            idle: Mutex::new(conns),
            freed: Condvar::new(),
        })
    }

    /// The database this pool connects to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A free connection, waiting for one if all are in use.
    pub fn get(&self) -> PooledConn<'_> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(mut conn) = idle.pop() {
                if conn.is_broken() {
                    // A server restart closed it: open a fresh one (outside the lock would be
                    // nicer, but this is rare); if that fails too, the broken one reports why.
                    if let Ok(fresh) = Conn::open(&self.target) {
                        conn = fresh;
                    }
                }
                return PooledConn {
                    pool: self,
                    conn: Some(conn),
                };
            }
            idle = self.freed.wait(idle).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_sqlite_numbered_outside_quotes() {
        assert_eq!(
            sqlite_sql("SELECT a FROM t WHERE b = $1 AND c = '$2' AND d = $2"),
            "SELECT a FROM t WHERE b = ?1 AND c = '$2' AND d = ?2"
        );
    }

    #[test]
    fn targets_parse_and_hide_passwords() {
        assert_eq!(
            Target::parse("postgres://u:secret@localhost/db")
                .unwrap()
                .to_string(),
            "postgres://u:***@localhost/db"
        );
        assert_eq!(
            Target::parse("sqlite:/tmp/x.db").unwrap(),
            Target::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            Target::parse("x.db").unwrap(),
            Target::Sqlite("x.db".into())
        );
        assert!(Target::parse("mysql://h/db").is_err());
    }

    #[test]
    fn sqlite_round_trips_every_value_kind() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Conn::open(&Target::Sqlite(dir.path().join("t.db"))).unwrap();
        c.batch("CREATE TABLE t (a BIGINT, b DOUBLE PRECISION, c TEXT, d BLOB, e BIGINT)")
            .unwrap();
        c.execute(
            "INSERT INTO t VALUES ($1, $2, $3, $4, $5)",
            &[
                7.into(),
                1.5.into(),
                "x'; DROP TABLE t; --".into(),
                vec![0u8, 255].into(),
                Value::Null,
            ],
        )
        .unwrap();
        let r = c
            .query_one("SELECT a, b, c, d, e FROM t", &[])
            .unwrap()
            .unwrap();
        assert_eq!(r.i64(0), 7);
        assert_eq!(r.f64(1), 1.5);
        assert_eq!(r.text(2), "x'; DROP TABLE t; --");
        assert_eq!(r.blob(3), vec![0u8, 255]);
        assert_eq!(r.opt_i64(4), None);
    }
}
