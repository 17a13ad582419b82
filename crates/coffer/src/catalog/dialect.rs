//! The small description of SQL dialects that lets a read be written once
//! for both engines: placeholders, casts, and reading JSON as text. Reads
//! whose text is the same in both dialects live here too.

use super::rows::Param;
use super::{CatalogStats, ObjectVersion};

/// What a SQL text written once needs to know about its database.
pub(super) struct Dialect {
    /// `?` placeholders stay (SQLite) or become `$1, $2, ...` (PostgreSQL).
    numbered: bool,
    /// Appended to a `SUM` of integers to keep it an integer
    /// (PostgreSQL's sum of `bigint`s is `numeric`).
    sum_cast: &'static str,
    /// Appended to a JSON column to read it as text.
    json_text: &'static str,
}

/// SQLite's dialect.
pub(super) const SQLITE: Dialect = Dialect {
    numbered: false,
    sum_cast: "",
    json_text: "",
};

/// PostgreSQL's dialect.
#[cfg(feature = "catalog-postgres")]
pub(super) const POSTGRES: Dialect = Dialect {
    numbered: true,
    sum_cast: "::bigint",
    json_text: "::text",
};

impl Dialect {
    /// `sql`, written with `?` placeholders, in this dialect.
    pub(super) fn sql(&self, sql: &str) -> String {
        if self.numbered { numbered(sql) } else { sql.to_owned() }
    }

    /// The JSON column `column` read as text.
    pub(super) fn json_text(&self, column: &str) -> String {
        format!("{column}{}", self.json_text)
    }

    /// The totals over the catalog, one row of [`StatsRow`].
    pub(super) fn stats_select(&self) -> String {
        let cast = self.sum_cast;
        format!(
            "SELECT \
               (SELECT COUNT(*) FROM latest WHERE NOT is_delete_marker), \
               (SELECT COALESCE(SUM(v.size), 0){cast} FROM latest l JOIN versions v \
                  ON v.key = l.key AND v.version_id = l.version_id WHERE NOT l.is_delete_marker), \
               (SELECT COUNT(*) FROM versions), \
               (SELECT COALESCE(SUM(size), 0){cast} FROM versions), \
               (SELECT COUNT(*) FROM versions WHERE is_delete_marker), \
               (SELECT COUNT(*) FROM blobs), \
               (SELECT COALESCE(SUM(size), 0){cast} FROM blobs), \
               (SELECT COUNT(*) FROM versions v JOIN blobs b ON b.sha256 = v.blob_sha256 \
                  WHERE b.damaged IS NOT NULL)"
        )
    }

    /// The reference counts of the blobs `versions` hold, as `(sha256, refcount)`
    /// rows, with the values to bind: what a dry-run prune needs.
    pub(super) fn refcounts_select(&self, versions: &[ObjectVersion]) -> (String, Vec<Param>) {
        let mut hashes: Vec<&str> = versions.iter().filter_map(|v| v.sha256.as_deref()).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let placeholders = vec!["?"; hashes.len()].join(", ");
        let sql = if hashes.is_empty() {
            "SELECT sha256, refcount FROM blobs WHERE FALSE".to_owned()
        } else {
            format!("SELECT sha256, refcount FROM blobs WHERE sha256 IN ({placeholders})")
        };
        let params = hashes.into_iter().map(|h| Param::Text(h.to_owned())).collect();
        (self.sql(&sql), params)
    }

    /// One blob by its SHA-256 (bind it), as a `BlobRow`.
    pub(super) fn blob_select(&self) -> String {
        self.sql(&format!("{BLOB_SELECT} WHERE sha256 = ?"))
    }
}

/// Every blob, in hash order, as `BlobRow`s.
pub(super) const BLOBS_SELECT: &str = "SELECT sha256, size, locator, refcount, damaged FROM blobs ORDER BY sha256";
const BLOB_SELECT: &str = "SELECT sha256, size, locator, refcount, damaged FROM blobs";

/// The row [`Dialect::stats_select`] returns.
pub(super) type StatsRow = (i64, i64, i64, i64, i64, i64, i64, i64);

/// The totals in a [`StatsRow`].
pub(super) fn stats_of(row: StatsRow) -> CatalogStats {
    let n = |value: i64| u64::try_from(value).unwrap_or(0);
    CatalogStats {
        objects: n(row.0),
        object_bytes: n(row.1),
        versions: n(row.2),
        version_bytes: n(row.3),
        delete_markers: n(row.4),
        blobs: n(row.5),
        blob_bytes: n(row.6),
        damaged_versions: n(row.7),
    }
}

/// Turn `?` placeholders into PostgreSQL's numbered `$n`, for queries built
/// from optional filters.
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_text_serves_both_dialects() {
        assert_eq!(
            SQLITE.blob_select(),
            "SELECT sha256, size, locator, refcount, damaged FROM blobs WHERE sha256 = ?"
        );
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert!(!SQLITE.stats_select().contains("::"));
        assert_eq!(SQLITE.json_text("detail"), "detail");
    }
}
