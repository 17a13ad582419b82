//! Reading and loading a PostgreSQL catalog's tables row for row, for
//! `catalog migrate`. Loading happens on one connection inside a transaction
//! the caller opens with [`PostgresCatalog::begin_import`], so a copy that
//! fails leaves the destination as it was.

use serde_json::{Map, Value};
use sqlx::Transaction;
use sqlx::postgres::{PgConnection, Postgres};

use super::{PostgresCatalog, db_error};
use crate::catalog::migrate::{Column, Table};
use crate::error::Result;

impl PostgresCatalog {
    /// The transaction a copy loads its rows in; nothing shows until it commits.
    pub(crate) async fn begin_import(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool
            .begin()
            .await
            .map_err(|e| db_error("starting a transaction", e))
    }

    /// Make a copy loaded in `tx` visible.
    pub(crate) async fn commit_import(tx: Transaction<'static, Postgres>) -> Result<()> {
        tx.commit().await.map_err(|e| db_error("committing the copy", e))
    }

    /// Insert `rows` (canonical form) into `table`, leaving rows whose key is
    /// already there as they are; returns how many were inserted.
    pub(crate) async fn import_rows(
        conn: &mut PgConnection,
        table: &Table,
        rows: &[Map<String, Value>],
    ) -> Result<u64> {
        let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
        // A JSON `null` in a JSON column is the value null, not a missing one (SQL NULL).
        let values: Vec<String> = table
            .columns
            .iter()
            .map(|(name, column)| match column {
                Column::Json => format!("COALESCE({name}, 'null'::jsonb)"),
                _ => (*name).to_owned(),
            })
            .collect();
        let on_conflict = if table.overwrite {
            let updates: Vec<String> = columns.iter().map(|c| format!("{c} = excluded.{c}")).collect();
            let mine: Vec<String> = columns.iter().map(|c| format!("{}.{c}", table.name)).collect();
            let theirs: Vec<String> = columns.iter().map(|c| format!("excluded.{c}")).collect();
            // Only a row that differs counts as inserted, so that a second run reports none.
            format!(
                "ON CONFLICT ({}) DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})",
                table.key.join(", "),
                updates.join(", "),
                mine.join(", "),
                theirs.join(", ")
            )
        } else {
            "ON CONFLICT DO NOTHING".to_owned()
        };
        let sql = format!(
            "INSERT INTO {table} ({}) SELECT {} FROM json_populate_recordset(NULL::{table}, $1::json) {on_conflict}",
            columns.join(", "),
            values.join(", "),
            table = table.name
        );
        let rows = Value::Array(rows.iter().cloned().map(Value::Object).collect());
        let done = sqlx::query(&sql)
            .bind(rows.to_string())
            .execute(conn)
            .await
            .map_err(|e| db_error(&format!("loading table {}", table.name), e))?;
        Ok(done.rows_affected())
    }

    /// After loading `table`: new rows of a serial key number on from the copied ids.
    pub(crate) async fn finish_import(conn: &mut PgConnection, table: &Table) -> Result<()> {
        if table.serial {
            let key = table.key.first().copied().unwrap_or("id");
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{key}'), GREATEST((SELECT MAX({key}) FROM {table}), 1))",
                table = table.name
            ))
            .execute(conn)
            .await
            .map_err(|e| db_error(&format!("renumbering table {}", table.name), e))?;
        }
        Ok(())
    }

    /// After a load: give every version without a search document one.
    pub(crate) async fn index_for_search(conn: &mut PgConnection) -> Result<()> {
        sqlx::query(
            "INSERT INTO search_backfill (key, version_id) SELECT v.key, v.version_id FROM versions v \
             WHERE NOT v.is_delete_marker AND NOT EXISTS (SELECT 1 FROM version_search s \
               WHERE s.key = v.key AND s.version_id = v.version_id) \
             ON CONFLICT DO NOTHING",
        )
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("listing versions to index", e))?;
        // Inside the import's transaction, backfill's own transactions are savepoints.
        super::search::backfill(conn).await
    }
}
