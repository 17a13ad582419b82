//! The small description of SQL dialects that lets a read be written once
//! for both engines: placeholders, casts, and JSON construction and
//! aggregation. The SQL texts that need only this description live here too.

use super::rows::{Param, VERSION_JOINS};
use super::{CatalogStats, ObjectVersion};

/// What a SQL text written once needs to know about its database.
pub(super) struct Dialect {
    /// Appended to a `SUM` of integers to keep it an integer
    /// (PostgreSQL's sum of `bigint`s is `numeric`).
    sum_cast: &'static str,
    /// Appended to a JSON column to read it as text.
    json_text: &'static str,
    /// Appended to a boolean to read it as 0 or 1.
    as_int: &'static str,
    /// Wrapped around 0 or 1 to store it as a boolean.
    int_as_bool: (&'static str, &'static str),
    /// JSON constructors: an array and an object of the values given.
    json_array: &'static str,
    json_object: &'static str,
    /// JSON aggregates: an array of the rows' values, an object of their pairs.
    json_agg: &'static str,
    json_object_agg: &'static str,
    /// An empty JSON object and array.
    empty_object: &'static str,
    empty_array: &'static str,
    /// Appended to a select whose rows a transaction changes, so that
    /// concurrent transactions take other rows (PostgreSQL's `FOR UPDATE
    /// SKIP LOCKED`; SQLite has one writer at a time).
    pub(super) skip_locked: &'static str,
    /// Wrapped around JSON kept or built as text, so that a constructor
    /// embeds it as JSON rather than as a string (SQLite's `json(...)`).
    json_value: (&'static str, &'static str),
    /// Wrapped around a placeholder whose text goes into a JSON column
    /// (PostgreSQL's `jsonb` takes no text without a cast).
    json_param: (&'static str, &'static str),
    /// Many rows come back fastest as one JSON text (SQLite, whose rows
    /// cross a thread one by one) rather than row by row (PostgreSQL's
    /// binary rows, where building JSON costs the server more).
    pub(super) bulk_as_json: bool,
    /// Wrapped around a binary column to read it as PostgreSQL's hex text
    /// of bytes (`\x0a1b...`), which JSON can hold (for `catalog migrate`).
    #[cfg(feature = "catalog-postgres")]
    bytes_as_hex: (&'static str, &'static str),
}

/// SQLite's dialect.
pub(super) const SQLITE: Dialect = Dialect {
    sum_cast: "",
    json_text: "",
    as_int: "",
    int_as_bool: ("", ""),
    json_array: "json_array",
    json_object: "json_object",
    json_agg: "json_group_array",
    json_object_agg: "json_group_object",
    empty_object: "'{}'",
    empty_array: "'[]'",
    skip_locked: "",
    json_value: ("json(", ")"),
    json_param: ("", ""),
    bulk_as_json: true,
    #[cfg(feature = "catalog-postgres")]
    bytes_as_hex: ("'\\x' || lower(hex(", "))"),
};

/// PostgreSQL's dialect.
#[cfg(feature = "catalog-postgres")]
pub(super) const POSTGRES: Dialect = Dialect {
    sum_cast: "::bigint",
    json_text: "::text",
    as_int: "::int",
    int_as_bool: ("(", " <> 0)"),
    json_array: "json_build_array",
    json_object: "json_build_object",
    json_agg: "json_agg",
    json_object_agg: "json_object_agg",
    empty_object: "'{}'::json",
    empty_array: "'[]'::json",
    skip_locked: " FOR UPDATE SKIP LOCKED",
    json_value: ("", ""),
    json_param: ("CAST(", " AS jsonb)"),
    bulk_as_json: false,
    bytes_as_hex: ("", ""),
};

impl Dialect {
    /// The JSON column `column` read as text.
    pub(super) fn json_text(&self, column: &str) -> String {
        format!("{column}{}", self.json_text)
    }

    /// The integer `value` (0 or 1) as a boolean.
    pub(super) fn int_as_bool(&self, value: &str) -> String {
        format!("{}{value}{}", self.int_as_bool.0, self.int_as_bool.1)
    }

    /// JSON kept or built as text (`json`), as a value a JSON constructor embeds as JSON.
    /// A binary column as hex text (`\x...`), as PostgreSQL writes and reads bytes.
    #[cfg(feature = "catalog-postgres")]
    pub(super) fn bytes_as_hex(&self, column: &str) -> String {
        format!("{}{column}{}", self.bytes_as_hex.0, self.bytes_as_hex.1)
    }

    /// `placeholder`, for text going into a JSON column.
    pub(super) fn json_param(&self, placeholder: &str) -> String {
        format!("{}{placeholder}{}", self.json_param.0, self.json_param.1)
    }

    pub(super) fn json_value(&self, json: &str) -> String {
        format!("{}{json}{}", self.json_value.0, self.json_value.1)
    }

    /// The rows a query selects as one JSON text: an array of objects of
    /// `fields` (`'name', value, ...`) in `order`.
    #[cfg(feature = "catalog-postgres")]
    pub(super) fn objects_json(&self, fields: &str, order: &str) -> String {
        format!(
            "{}({}({fields}) ORDER BY {order}){}",
            self.json_agg, self.json_object, self.json_text
        )
    }

    /// A version's tags as a JSON object, looked up for the row `v`.
    pub(super) fn tags_of_row(&self) -> String {
        format!(
            "COALESCE((SELECT {}(t.name, t.value) FROM version_tags t \
             WHERE t.key = v.key AND t.version_id = v.version_id), {})",
            self.json_object_agg, self.empty_object
        )
    }

    /// A version's comments as a JSON array, oldest first, looked up for the row `v`.
    pub(super) fn comments_of_row(&self) -> String {
        format!(
            "COALESCE((SELECT {}({} ORDER BY c.seq) FROM version_comments c \
             WHERE c.key = v.key AND c.version_id = v.version_id), {})",
            self.json_agg,
            self.comment_json("c."),
            self.empty_array
        )
    }

    /// A comment (columns `at`, `actor`, `text` of `table`, as `c.`) as a JSON object.
    fn comment_json(&self, table: &str) -> String {
        format!(
            "{}('at', {table}at, 'actor', {table}actor, 'text', {table}text)",
            self.json_object
        )
    }

    /// One version (`v`, joined by [`VERSION_JOINS`]) as the JSON array that
    /// [`super::rows::JsonVersion`] decodes, with tags and comments from the SQL given.
    pub(super) fn version_json(&self, tags: &str, comments: &str) -> String {
        let fields = self.version_fields(tags, comments, &|json| self.json_value(json));
        let values: Vec<&str> = fields.iter().map(|(value, _)| value.as_str()).collect();
        format!("{}({})", self.json_array, values.join(", "))
    }

    /// One version (`v`, joined by [`VERSION_JOINS`]) as the columns of a
    /// [`super::rows::VersionRow`], with its tags and comments looked up for
    /// its row, its JSON fields as text.
    pub(super) fn version_columns_of_rows(&self) -> String {
        let (tags, comments) = (self.tags_of_row(), self.comments_of_row());
        let fields = self.version_fields(&tags, &comments, &|json| format!("({json}){}", self.json_text));
        let columns: Vec<String> = fields
            .iter()
            .map(|(value, name)| format!("{value} AS {name}"))
            .collect();
        columns.join(", ")
    }

    /// A version's fields in [`super::rows::JsonVersion`]'s order, each with
    /// its name; `json` wraps the fields that are JSON (metadata, tags, comments).
    fn version_fields(
        &self,
        tags: &str,
        comments: &str,
        json: &dyn Fn(&str) -> String,
    ) -> [(String, &'static str); 19] {
        let int = self.as_int;
        [
            ("v.key".to_owned(), "key"),
            ("v.version_id".to_owned(), "version_id"),
            (format!("v.is_delete_marker{int}"), "is_delete_marker"),
            (format!("(l.version_id IS NOT NULL){int}"), "is_latest"),
            ("v.size".to_owned(), "size"),
            ("v.etag".to_owned(), "etag"),
            ("v.blob_sha256".to_owned(), "sha256"),
            ("v.content_type".to_owned(), "content_type"),
            (json("v.metadata"), "metadata"),
            ("v.created_at".to_owned(), "created_at"),
            ("v.created_by".to_owned(), "created_by"),
            ("b.locator".to_owned(), "blob_path"),
            ("b.damaged".to_owned(), "damaged"),
            (json(tags), "tags"),
            (json(comments), "comments"),
            ("v.retention_mode".to_owned(), "retention_mode"),
            ("v.retain_until".to_owned(), "retain_until"),
            (format!("v.legal_hold{int}"), "legal_hold"),
            ("b.placement".to_owned(), "placement"),
        ]
    }

    /// The columns of a [`PlanningRow`](super::rows::PlanningRow) of the
    /// version `v`: the versions table alone (a lookup per row, of its blob
    /// or latest pointer, costs more than the whole scan once the catalog
    /// outgrows the cache), tags only when `tags`. With `as_json`, one JSON
    /// array of them.
    pub(super) fn planning_columns(&self, tags: bool, as_json: bool) -> String {
        let int = self.as_int;
        let tags = match tags {
            // Concatenated to text: SQLite would embed JSON it built as an object.
            true => format!("('' || {})", self.tags_of_row()),
            false => "NULL".to_owned(),
        };
        let columns = format!(
            "v.key, v.version_id, v.is_delete_marker{int}, v.size, v.blob_sha256, v.created_at, {tags}, \
             v.retention_mode, v.retain_until, v.legal_hold{int}"
        );
        match as_json {
            true => format!("{}({}({columns})){}", self.json_agg, self.json_array, self.json_text),
            false => columns,
        }
    }

    /// The aggregate that turns the versions a query selects (as `v`, joined
    /// by [`VERSION_JOINS`]) into one JSON text: an array of
    /// [`Dialect::version_json`]s (`NULL` or `[]` when no row matched; the
    /// order is not kept: callers sort).
    ///
    /// Versions are read as one JSON document: handing rows one by one through
    /// sqlx costs several times what SQLite itself spends (`history` of a key
    /// with 10,000 versions must stay well under 50 ms), and arrays without
    /// field names halve the text to build and parse.
    pub(super) fn versions_json(&self, tags: &str, comments: &str) -> String {
        format!(
            "{}({}){}",
            self.json_agg,
            self.version_json(tags, comments),
            self.json_text
        )
    }

    /// [`Dialect::versions_json`] with each version's tags and comments looked up for its row.
    pub(super) fn versions_json_of_rows(&self) -> String {
        self.versions_json(&self.tags_of_row(), &self.comments_of_row())
    }

    /// A key's versions (bind the key, the key, the key), newest first, at
    /// most `limit`, as [`Dialect::versions_json`]; tags and comments are
    /// grouped once for the key instead of looked up per version.
    pub(super) fn key_versions_select(&self, limit: bool) -> String {
        let limit = if limit { " LIMIT ?" } else { "" };
        format!(
            "SELECT {} FROM (SELECT * FROM versions WHERE key = ? ORDER BY version_id DESC{limit}) v {VERSION_JOINS} \
             LEFT JOIN (SELECT version_id, {}(name, value) AS tags FROM version_tags \
                        WHERE key = ? GROUP BY version_id) t ON t.version_id = v.version_id \
             LEFT JOIN (SELECT version_id, {}({} ORDER BY seq) AS comments FROM version_comments \
                        WHERE key = ? GROUP BY version_id) c ON c.version_id = v.version_id",
            self.versions_json(
                &format!("COALESCE(t.tags, {})", self.empty_object),
                &format!("COALESCE(c.comments, {})", self.empty_array)
            ),
            self.json_object_agg,
            self.json_agg,
            self.comment_json(""),
        )
    }

    /// The select list that gathers a search page (`page.score`, and the
    /// version `v` joined by [`VERSION_JOINS`]) into one JSON text of
    /// `[score, version]` pairs.
    pub(super) fn hits_json(&self) -> String {
        format!(
            "{}({}(page.score, {})){}",
            self.json_agg,
            self.json_array,
            self.version_json(&self.tags_of_row(), &self.comments_of_row()),
            self.json_text
        )
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
}

/// The reference counts of the blobs `versions` hold, as `(sha256, refcount)`
/// rows, with the values to bind: what a dry-run prune needs.
pub(super) fn refcounts_select(versions: &[ObjectVersion]) -> (String, Vec<Param>) {
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
    (sql, params)
}

/// Every blob, in hash order, as `BlobRow`s.
pub(super) const BLOBS_SELECT: &str =
    "SELECT sha256, size, locator, refcount, damaged, data_key FROM blobs ORDER BY sha256";
pub(super) const BLOB_SELECT: &str = "SELECT sha256, size, locator, refcount, damaged, data_key FROM blobs";

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

/// Turn `?` placeholders into PostgreSQL's numbered `$n`: SQL written once
/// runs on PostgreSQL this way.
#[cfg(feature = "catalog-postgres")]
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
        assert!(!SQLITE.stats_select().contains("::"));
        assert_eq!(SQLITE.json_text("detail"), "detail");
        let versions = SQLITE.key_versions_select(true);
        assert!(versions.contains("json_group_array(json_array(v.key"), "{versions}");
        assert!(versions.contains("ORDER BY version_id DESC LIMIT ?"), "{versions}");
        assert!(!SQLITE.key_versions_select(false).contains("LIMIT"));
        assert!(
            SQLITE
                .tags_of_row()
                .starts_with("COALESCE((SELECT json_group_object(t.name, t.value)")
        );
    }

    #[cfg(feature = "catalog-postgres")]
    #[test]
    fn postgres_builds_json_its_own_way() {
        let version = POSTGRES.version_json("t", "c");
        assert!(
            version.starts_with("json_build_array(v.key, v.version_id, v.is_delete_marker::int"),
            "{version}"
        );
        assert!(POSTGRES.versions_json("t", "c").ends_with(")::text"));
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(numbered(&POSTGRES.key_versions_select(true)).matches('$').count(), 4);
    }
}
