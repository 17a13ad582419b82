//! Moving an embedded SQLite catalog into PostgreSQL: every table, row for
//! row (versions, latest pointers, blobs and their reference counts, tags,
//! comments, the audit log with its ids, hooks, the outbox and its
//! deliveries and counters), then a check that both sides hold the same rows.
//!
//! Rows travel as JSON in pages ordered by primary key, into one destination
//! transaction: a migration that fails or is interrupted leaves the
//! destination as it was. The destination ignores rows it already has, so a
//! second run inserts nothing. Derived data (the search index) is not copied:
//! the destination builds its own, in the same transaction.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnection;

use super::rows::Param;
use super::sql::Conn;
use super::{PostgresCatalog, SqliteCatalog};
use crate::error::{Error, ErrorKind, Result};
use crate::progress::Progress;

/// Rows moved per round trip.
const PAGE: usize = 5_000;

/// How a column's values are compared and carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Text,
    Int,
    /// Stored as 0/1 by SQLite, as `boolean` by PostgreSQL.
    Bool,
    /// JSON text in SQLite, `jsonb` in PostgreSQL.
    Json,
    /// Binary: `BLOB` in SQLite, `bytea` in PostgreSQL; carried as hex text.
    Bytes,
}

/// A table both catalogs hold with the same columns.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: &'static str,
    pub(crate) columns: &'static [(&'static str, Column)],
    /// The primary key: pages are ordered and resumed by it.
    pub(crate) key: &'static [&'static str],
    /// The key is a serial number: the destination's sequence moves on past the copied ids.
    pub(crate) serial: bool,
    /// A copied row replaces the destination's row of the same key (counters
    /// that a new catalog starts at zero) instead of leaving it.
    pub(crate) overwrite: bool,
}

impl Table {
    /// The primary key's values of a row, for resuming after it.
    fn key_of(&self, row: &Map<String, Value>) -> Vec<Value> {
        self.key
            .iter()
            .map(|k| row.get(*k).cloned().unwrap_or(Value::Null))
            .collect()
    }
}

use Column::{Bool, Bytes, Int, Json, Text};

/// Every table with rows of its own, parents before children.
pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "blobs",
        columns: &[
            ("sha256", Text),
            ("md5", Text),
            ("size", Int),
            ("locator", Text),
            ("refcount", Int),
            ("created_at", Int),
            ("damaged", Text),
            ("placement", Text),
            ("restore_pending", Text),
            ("data_key", Text),
        ],
        key: &["sha256"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "store_settings",
        columns: &[("name", Text), ("value", Text)],
        key: &["name"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "versions",
        columns: &[
            ("key", Text),
            ("version_id", Text),
            ("is_delete_marker", Bool),
            ("blob_sha256", Text),
            ("size", Int),
            ("etag", Text),
            ("content_type", Text),
            ("metadata", Json),
            ("created_at", Int),
            ("created_by", Text),
            ("retention_mode", Text),
            ("retain_until", Int),
            ("legal_hold", Bool),
        ],
        key: &["key", "version_id"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "hot_content",
        columns: &[
            ("sha256", Text),
            ("content", Bytes),
            ("stored_at", Int),
            ("flushed", Bool),
        ],
        key: &["sha256"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "hot_pending",
        columns: &[("key", Text), ("version_id", Text), ("at", Int)],
        key: &["key", "version_id"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "latest",
        columns: &[("key", Text), ("version_id", Text), ("is_delete_marker", Bool)],
        key: &["key"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "version_tags",
        columns: &[("key", Text), ("version_id", Text), ("name", Text), ("value", Text)],
        key: &["key", "version_id", "name"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "version_comments",
        columns: &[
            ("key", Text),
            ("version_id", Text),
            ("seq", Int),
            ("at", Int),
            ("actor", Text),
            ("text", Text),
        ],
        key: &["key", "version_id", "seq"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "audit",
        columns: &[
            ("id", Int),
            ("at", Int),
            ("actor", Text),
            ("action", Text),
            ("key", Text),
            ("version_id", Text),
            ("detail", Json),
        ],
        key: &["id"],
        serial: true,
        overwrite: false,
    },
    Table {
        name: "hooks",
        columns: &[("name", Text), ("definition", Text), ("first_event", Int)],
        key: &["name"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "outbox",
        columns: &[
            ("id", Int),
            ("event_id", Text),
            ("type", Text),
            ("key", Text),
            ("at", Int),
            ("payload", Text),
            ("fanned_out", Bool),
        ],
        key: &["id"],
        serial: true,
        overwrite: false,
    },
    Table {
        name: "hook_deliveries",
        columns: &[
            ("id", Int),
            ("hook", Text),
            ("event", Int),
            ("state", Text),
            ("attempts", Int),
            ("due_at", Int),
            ("claimed_by", Text),
            ("last_error", Text),
            ("finished_at", Int),
        ],
        key: &["id"],
        serial: true,
        overwrite: false,
    },
    Table {
        name: "hook_stats",
        columns: &[
            ("hook", Text),
            ("executed", Int),
            ("failed", Int),
            ("total_micros", Int),
            ("histogram", Text),
        ],
        key: &["hook"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "bundles",
        columns: &[
            ("bundle_id", Text),
            ("storage_key", Text),
            ("layout", Text),
            ("unzip", Bool),
            ("primary_url", Text),
            ("recipe_id", Text),
            ("meta", Text),
            ("created_at", Int),
            ("created_by", Text),
            ("completed_at", Int),
            ("metadata", Text),
            ("version_id", Text),
            ("callbacks_pending", Bool),
        ],
        key: &["bundle_id"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "bundle_resources",
        columns: &[
            ("bundle_id", Text),
            ("position", Int),
            ("name", Text),
            ("url", Text),
            ("content_type", Text),
            ("status_code", Int),
            ("size", Int),
            ("sha256", Text),
            ("key", Text),
            ("version_id", Text),
            ("data_offset", Int),
            ("stored_size", Int),
            ("deflated", Bool),
            ("added_at", Int),
        ],
        key: &["bundle_id", "position"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "tokens",
        columns: &[
            ("name", Text),
            ("secret_sha256", Text),
            ("access_key", Text),
            ("scope", Text),
            ("prefix", Text),
            ("created_at", Int),
            ("created_by", Text),
            ("expires_at", Int),
            ("revoked_at", Int),
        ],
        key: &["name"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "buckets",
        columns: &[("name", Text), ("created_at", Int), ("created_by", Text)],
        key: &["name"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "multipart_uploads",
        columns: &[
            ("upload_id", Text),
            ("key", Text),
            ("content_type", Text),
            ("metadata", Text),
            ("created_at", Int),
            ("created_by", Text),
        ],
        key: &["upload_id"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "multipart_parts",
        columns: &[
            ("upload_id", Text),
            ("part_number", Int),
            ("size", Int),
            ("etag", Text),
            ("path", Text),
            ("data_key", Text),
            ("uploaded_at", Int),
        ],
        key: &["upload_id", "part_number"],
        serial: false,
        overwrite: false,
    },
    Table {
        name: "outbox_counters",
        columns: &[("name", Text), ("value", Int)],
        key: &["name"],
        serial: false,
        overwrite: true,
    },
];

/// One row in the form both catalogs agree on: only the table's columns,
/// booleans as booleans, JSON columns as JSON values, keys sorted.
pub(crate) fn canonical_row(table: &Table, row: Value) -> Result<Map<String, Value>> {
    let Value::Object(mut fields) = row else {
        return Err(Error::new(
            ErrorKind::Catalog,
            format!("a row of {} is not an object", table.name),
        ));
    };
    let mut out = Map::new();
    for (name, column) in table.columns {
        let value = fields.remove(*name).unwrap_or(Value::Null);
        let value = match (column, value) {
            (Bool, Value::Number(n)) => Value::Bool(n.as_i64() != Some(0)),
            (Json, Value::String(text)) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            (_, value) => value,
        };
        out.insert((*name).to_owned(), value);
    }
    Ok(out)
}

/// What the migration found and did, per table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableMigration {
    /// The table.
    pub table: String,
    /// Rows in the source (and, once verified, in the destination).
    pub rows: u64,
    /// Rows this run inserted (fewer on a re-run: the rest were already there).
    pub inserted: u64,
    /// Hex SHA-256 over the table's rows in key order, the same on both sides.
    pub checksum: String,
}

/// The outcome of [`migrate_catalog`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CatalogMigration {
    /// Each table, in the order copied.
    pub tables: Vec<TableMigration>,
}

/// Running digest of a table's rows.
struct Digest256 {
    hasher: Sha256,
    rows: u64,
}

impl Digest256 {
    fn new() -> Self {
        Digest256 {
            hasher: Sha256::new(),
            rows: 0,
        }
    }

    fn add(&mut self, row: &Map<String, Value>) {
        // serde_json's maps keep keys sorted, so equal rows give equal text.
        self.hasher.update(Value::Object(row.clone()).to_string().as_bytes());
        self.hasher.update(b"\n");
        self.rows += 1;
    }

    fn finish(self) -> (u64, String) {
        (self.rows, hex::encode(self.hasher.finalize()))
    }
}

/// Copy every row of `from` into `to` and check that both hold the same rows
/// (counts and checksums per table). The copy is one transaction: when
/// anything fails, `to` is left as it was. Rows `to` already has are left
/// as they are, so running it again reports nothing inserted; rows that
/// differ make the check fail. `progress` counts rows.
///
/// Stop the processes that write to `from` first: changes made during the
/// copy may be missed (the check then reports them).
pub async fn migrate_catalog(
    from: &SqliteCatalog,
    to: &PostgresCatalog,
    progress: &dyn Progress,
) -> Result<CatalogMigration> {
    let mut total = 0;
    for table in TABLES {
        total += count_rows(from.reader().await?, table).await?;
    }
    progress.start(Some(total));
    let outcome = async {
        let mut tx = to.begin_import().await?;
        let report = copy_tables(from, &mut tx, progress).await?;
        PostgresCatalog::index_for_search(&mut tx).await?;
        PostgresCatalog::commit_import(tx).await?;
        Ok(report)
    }
    .await;
    progress.finish();
    outcome
}

/// Copy and check each table inside the import's transaction `tx`.
async fn copy_tables(from: &SqliteCatalog, tx: &mut PgConnection, progress: &dyn Progress) -> Result<CatalogMigration> {
    let mut report = CatalogMigration::default();
    for table in TABLES {
        let mut source = Digest256::new();
        let mut inserted = 0;
        let mut after = None;
        loop {
            let rows = export_rows(from.reader().await?, table, after.as_deref(), PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = Some(table.key_of(last));
            for row in &rows {
                source.add(row);
            }
            inserted += PostgresCatalog::import_rows(tx, table, &rows).await?;
            progress.advance(rows.len() as u64);
            if rows.len() < PAGE {
                break;
            }
        }
        PostgresCatalog::finish_import(tx, table).await?;
        let (rows, checksum) = source.finish();
        let (copied_rows, copied_checksum) = digest_of(tx, table).await?;
        if (copied_rows, &copied_checksum) != (rows, &checksum) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "after the copy, table {} holds {} in PostgreSQL and {rows} in SQLite, \
                     and their checksums {}: was either catalog changed during the migration, or did the \
                     destination already hold other data? Nothing was copied",
                    table.name,
                    if copied_rows == 1 {
                        "1 row".to_owned()
                    } else {
                        format!("{copied_rows} rows")
                    },
                    if copied_checksum == checksum { "agree" } else { "differ" }
                ),
            ));
        }
        report.tables.push(TableMigration {
            table: table.name.to_owned(),
            rows,
            inserted,
            checksum,
        });
    }
    Ok(report)
}

async fn digest_of(tx: &mut PgConnection, table: &Table) -> Result<(u64, String)> {
    let mut digest = Digest256::new();
    let mut after = None;
    loop {
        let rows = export_rows(Conn::from(&mut *tx), table, after.as_deref(), PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = Some(table.key_of(last));
        for row in &rows {
            digest.add(row);
        }
        if rows.len() < PAGE {
            break;
        }
    }
    Ok(digest.finish())
}

/// How many rows `table` holds.
async fn count_rows(mut conn: Conn<'_>, table: &Table) -> Result<u64> {
    let sql = format!("SELECT COUNT(*) FROM {}", table.name);
    let (count,): (i64,) = conn.one("counting rows", &sql, Vec::new()).await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Up to `limit` rows of `table` after the key `after`, in key order, in canonical form.
async fn export_rows(
    mut conn: Conn<'_>,
    table: &Table,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Map<String, Value>>> {
    let dialect = conn.dialect();
    let fields: Vec<String> = table
        .columns
        .iter()
        .map(|(name, column)| match column {
            Column::Json => format!("'{name}', {}", dialect.json_value(name)),
            Column::Bytes => format!("'{name}', {}", dialect.bytes_as_hex(name)),
            _ => format!("'{name}', {name}"),
        })
        .collect();
    let order = table.key.join(", ");
    let (after, params) = after_clause(table, after, limit);
    let sql = format!(
        "SELECT {} FROM (SELECT * FROM {} WHERE {after} ORDER BY {order} LIMIT ?) page",
        dialect.objects_json(&fields.join(", "), &order),
        table.name,
    );
    let what = format!("reading table {}", table.name);
    let (json,): (Option<String>,) = conn.one(&what, &sql, params).await?;
    parse_rows(table, json.as_deref().unwrap_or("[]"))
}

/// `(k1, k2) > (?, ?)` for resuming after a key (`TRUE` on the first page),
/// and the values for its placeholders followed by `limit`'s.
fn after_clause(table: &Table, after: Option<&[Value]>, limit: usize) -> (String, Vec<Param>) {
    let clause = match after {
        None => "TRUE".to_owned(),
        Some(_) => format!(
            "({}) > ({})",
            table.key.join(", "),
            vec!["?"; table.key.len()].join(", ")
        ),
    };
    // Key columns are text or integers, never null.
    let mut params: Vec<Param> = after
        .unwrap_or_default()
        .iter()
        .map(|value| match value {
            Value::Number(n) => Param::Int(n.as_i64().unwrap_or(i64::MAX)),
            Value::String(s) => Param::Text(s.clone()),
            other => Param::Text(other.to_string()),
        })
        .collect();
    params.push(Param::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    (clause, params)
}

/// The rows of `table` a catalog returned as one JSON array, in canonical form.
fn parse_rows(table: &Table, json: &str) -> Result<Vec<Map<String, Value>>> {
    let rows: Vec<Value> = serde_json::from_str(json)
        .map_err(|e| Error::new(ErrorKind::Catalog, format!("catalog returned invalid JSON: {e}")))?;
    rows.into_iter().map(|row| canonical_row(table, row)).collect()
}
