//! Running SQL written once for both engines: a connection of either engine
//! that binds [`Param`]s, decodes rows, and maps errors the engine's way.
//!
//! An enum rather than generics over `sqlx::Database`: with two engines it
//! keeps every shared read free of sqlx's trait bounds, and a new engine is
//! one more arm in each method here.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{Sqlite, SqliteConnection, SqliteRow};
use sqlx::{Database, FromRow};

use super::dialect::{Dialect, SQLITE};
use super::rows::{Param, bind_params};
use crate::error::{Error, ErrorKind, Result};

#[cfg(feature = "catalog-postgres")]
use super::dialect::{POSTGRES, numbered};
#[cfg(feature = "catalog-postgres")]
use sqlx::postgres::{PgConnection, PgRow, Postgres};

/// A connection of either engine, for SQL written once (with `?` placeholders).
pub(super) enum Conn<'c> {
    Sqlite(Held<'c, Sqlite>),
    #[cfg(feature = "catalog-postgres")]
    Postgres(Held<'c, Postgres>),
}

/// A connection borrowed (inside a transaction) or taken from a pool.
pub(super) enum Held<'c, DB: Database> {
    Borrowed(&'c mut DB::Connection),
    Pooled(PoolConnection<DB>),
}

impl<DB: Database> Deref for Held<'_, DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        match self {
            Held::Borrowed(conn) => conn,
            Held::Pooled(conn) => conn,
        }
    }
}

impl<DB: Database> DerefMut for Held<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            Held::Borrowed(conn) => conn,
            Held::Pooled(conn) => conn,
        }
    }
}

impl<'c> From<&'c mut SqliteConnection> for Conn<'c> {
    fn from(conn: &'c mut SqliteConnection) -> Self {
        Conn::Sqlite(Held::Borrowed(conn))
    }
}

impl From<PoolConnection<Sqlite>> for Conn<'static> {
    fn from(conn: PoolConnection<Sqlite>) -> Self {
        Conn::Sqlite(Held::Pooled(conn))
    }
}

#[cfg(feature = "catalog-postgres")]
impl<'c> From<&'c mut PgConnection> for Conn<'c> {
    fn from(conn: &'c mut PgConnection) -> Self {
        Conn::Postgres(Held::Borrowed(conn))
    }
}

#[cfg(feature = "catalog-postgres")]
impl From<PoolConnection<Postgres>> for Conn<'static> {
    fn from(conn: PoolConnection<Postgres>) -> Self {
        Conn::Postgres(Held::Pooled(conn))
    }
}

/// A row type every engine decodes (sqlx's derived `FromRow` and tuples are).
#[cfg(feature = "catalog-postgres")]
pub(super) trait AnyRow: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
#[cfg(feature = "catalog-postgres")]
impl<T> AnyRow for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
/// A row type every engine decodes (sqlx's derived `FromRow` and tuples are).
#[cfg(not(feature = "catalog-postgres"))]
pub(super) trait AnyRow: for<'r> FromRow<'r, SqliteRow> + Send + Unpin {}
#[cfg(not(feature = "catalog-postgres"))]
impl<T> AnyRow for T where T: for<'r> FromRow<'r, SqliteRow> + Send + Unpin {}

impl Conn<'_> {
    /// The dialect of this connection's engine.
    pub(super) fn dialect(&self) -> &'static Dialect {
        match self {
            Conn::Sqlite(_) => &SQLITE,
            #[cfg(feature = "catalog-postgres")]
            Conn::Postgres(_) => &POSTGRES,
        }
    }

    /// Every row `sql` returns; `what` names the read in an error.
    pub(super) async fn all<T: AnyRow>(&mut self, what: &str, sql: &str, params: Vec<Param>) -> Result<Vec<T>> {
        match self {
            Conn::Sqlite(conn) => bind_params!(sqlx::query_as(sql), params)
                .fetch_all(&mut **conn)
                .await
                .map_err(|e| super::sqlite::db_error(what, e)),
            #[cfg(feature = "catalog-postgres")]
            Conn::Postgres(conn) => {
                let sql = numbered(sql);
                bind_params!(sqlx::query_as(&sql), params)
                    .fetch_all(&mut **conn)
                    .await
                    .map_err(|e| super::postgres::db_error(what, e))
            }
        }
    }

    /// Run a statement; returns how many rows it changed.
    pub(super) async fn execute(&mut self, what: &str, sql: &str, params: Vec<Param>) -> Result<u64> {
        match self {
            Conn::Sqlite(conn) => bind_params!(sqlx::query(sql), params)
                .execute(&mut **conn)
                .await
                .map(|done| done.rows_affected())
                .map_err(|e| super::sqlite::db_error(what, e)),
            #[cfg(feature = "catalog-postgres")]
            Conn::Postgres(conn) => {
                let sql = numbered(sql);
                bind_params!(sqlx::query(&sql), params)
                    .execute(&mut **conn)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(|e| super::postgres::db_error(what, e))
            }
        }
    }

    /// The first row `sql` returns, if any.
    pub(super) async fn optional<T: AnyRow>(&mut self, what: &str, sql: &str, params: Vec<Param>) -> Result<Option<T>> {
        Ok(self.all(what, sql, params).await?.into_iter().next())
    }

    /// The first row `sql` returns (an error when it returns none).
    pub(super) async fn one<T: AnyRow>(&mut self, what: &str, sql: &str, params: Vec<Param>) -> Result<T> {
        self.optional(what, sql, params)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Catalog, format!("catalog: {what}: no row returned")))
    }
}
