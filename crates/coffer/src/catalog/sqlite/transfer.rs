//! Reading a SQLite catalog's tables row for row, for `catalog migrate`.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::{SqliteCatalog, db_error};
use crate::catalog::migrate::{Column, Table, after_clause, parse_rows};
use crate::catalog::rows::bind_params;
use crate::error::Result;

impl SqliteCatalog {
    /// How many rows `table` holds.
    pub(crate) async fn count_rows(&self, table: &Table) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", table.name))
            .fetch_one(&self.readers)
            .await
            .map_err(|e| db_error("counting rows", e))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Up to `limit` rows of `table` after the key `after`, in key order, in canonical form.
    pub(crate) async fn export_rows(
        &self,
        table: &Table,
        after: Option<&[Value]>,
        limit: usize,
    ) -> Result<Vec<Map<String, Value>>> {
        let fields: Vec<String> = table
            .columns
            .iter()
            .map(|(name, column)| match column {
                Column::Json => format!("'{name}', json({name})"),
                _ => format!("'{name}', {name}"),
            })
            .collect();
        let (after, params) = after_clause(table, after, limit);
        let sql = format!(
            "SELECT json_group_array(json_object({})) FROM (SELECT * FROM {} WHERE {} ORDER BY {} LIMIT ?)",
            fields.join(", "),
            table.name,
            after,
            table.key.join(", ")
        );
        let json: String = bind_params!(sqlx::query_scalar(&sql), params)
            .fetch_one(&self.readers)
            .await
            .map_err(|e| db_error(&format!("reading table {}", table.name), e))?;
        let mut rows = parse_rows(table, &json)?;
        // The aggregate need not keep the subquery's order.
        rows.sort_by(|a, b| compare_keys(table, a, b));
        Ok(rows)
    }
}

/// Order two rows by the table's key, as both catalogs do (bytes of text, value of numbers).
fn compare_keys(table: &Table, a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
    for key in table.key {
        let ordering = match (a.get(*key), b.get(*key)) {
            (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_i64().cmp(&y.as_i64()),
            (Some(Value::String(x)), Some(Value::String(y))) => x.as_bytes().cmp(y.as_bytes()),
            _ => Ordering::Equal,
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}
