//! Test databases on a PostgreSQL server (with the cargo feature
//! catalog-postgres): each test gets a database of its own, created on the
//! server and dropped afterwards.
//!
//! The server is named by `COFFER_TEST_POSTGRES` (a URL to an existing
//! database, used only to create and drop others; default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Where no server answers,
//! the test is skipped as [`services`](super::services) says.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::services::services_required;
use crate::error::{Error, ErrorKind, Result};

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database made for one test, dropped (with its connections) when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    server: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Create a fresh database; `Ok(None)` (with a note on stderr) when no
    /// server answers and services are not required.
    pub async fn create() -> Result<Option<TestDatabase>> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let server = std::env::var("COFFER_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_SERVER.to_owned());
        let mut admin = match connect(&server).await {
            Ok(conn) => conn,
            Err(err) if !services_required() => {
                eprintln!(
                    "skipped: no PostgreSQL at {}: {err}",
                    crate::redact::redact_url(&server)
                );
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let name = format!(
            "coffer_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::now_v7().simple().to_string().get(24..).unwrap_or_default()
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .map_err(|e| failed(&format!("cannot create database {name}"), e))?;
        let url = PgConnectOptions::from_str(&server)
            .map(|_| with_database(&server, &name))
            .map_err(|e| failed("bad COFFER_TEST_POSTGRES", e))?;
        Ok(Some(TestDatabase { server, name, url }))
    }

    /// The new database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside any async context we could borrow, so the drop gets a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = connect(&server).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

async fn connect(url: &str) -> Result<PgConnection> {
    PgConnection::connect(url)
        .await
        .map_err(|e| failed(&format!("cannot connect to {}", crate::redact::redact_url(url)), e))
}

fn failed(context: &str, err: sqlx::Error) -> Error {
    Error::new(ErrorKind::Catalog, format!("{context}: {err}"))
}

/// `url` with its database path replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_replace_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://h?sslmode=disable", "t1"),
            "postgres://h/t1?sslmode=disable"
        );
    }
}
