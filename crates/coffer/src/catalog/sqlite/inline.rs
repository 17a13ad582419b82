//! A key's version, read on the calling thread.
//!
//! Every GET and HEAD reads one version. SQLite answers that point read in
//! a few microseconds; handing it to one of sqlx's connection threads and
//! back cost several times that in thread switches, and set the rate of
//! small reads. So this one read runs on read-only connections of the same
//! SQLite library (through rusqlite), taken from a small set and run where
//! it is asked. The SQL is the shared one of [`reads`].

use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{BUSY_TIMEOUT, CACHE_KIB, MMAP_BYTES};
use crate::catalog::ObjectVersion;
use crate::catalog::dialect::SQLITE;
use crate::catalog::reads;
use crate::error::{Error, ErrorKind, Result};

/// Connections kept open between reads; more are opened while more read at once.
const IDLE_CONNECTIONS: usize = 4;

static VERSION_SQL: LazyLock<String> = LazyLock::new(|| reads::version_sql(&SQLITE));
static LATEST_SQL: LazyLock<String> = LazyLock::new(|| reads::latest_sql(&SQLITE));

/// Read-only connections to one catalog file.
pub(super) struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl InlineReader {
    pub(super) fn new(path: &Path) -> Self {
        InlineReader {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Version `version_id` of `key`, or its latest (a delete marker included) with `None`.
    pub(super) fn version(&self, key: &str, version_id: Option<&str>) -> Result<Option<ObjectVersion>> {
        let json = self.with_connection(|conn| {
            let row = |row: &rusqlite::Row<'_>| row.get::<_, Option<String>>(0);
            match version_id {
                Some(id) => conn.prepare_cached(&VERSION_SQL)?.query_row((key, id), row),
                None => conn.prepare_cached(&LATEST_SQL)?.query_row([key], row),
            }
            .optional()
            .map(Option::flatten)
        })?;
        Ok(reads::versions_of(json)?.pop())
    }

    fn with_connection<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => self.open().map_err(|e| read_error("cannot open a reader", e))?,
        };
        let result = read(&conn).map_err(|e| read_error("reading a version", e));
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_CONNECTIONS
        {
            idle.push(conn);
        }
        result
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // Read-write flags (never used to write: `query_only`), so the
        // connection may take its share of the WAL index as any reader does.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        conn.pragma_update(None, "cache_size", format!("-{CACHE_KIB}"))?;
        Ok(conn)
    }
}

fn read_error(context: &str, err: rusqlite::Error) -> Error {
    let busy = matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    let error = Error::new(ErrorKind::Catalog, format!("catalog: {context}: {err}")).with_source(err);
    if busy { error.retryable() } else { error }
}
