//! ClickHouse as the hot engine: a copy of recent small objects (their
//! metadata and their bytes as stored) in one table, fed from the outbox,
//! read before the catalog's hot copies, and expired a day partition at a
//! time. Only what ClickHouse 18.16 has is used: the HTTP interface,
//! `ReplacingMergeTree` partitioned by day (duplicates of a version, from
//! at-least-once delivery, collapse by its id), `RowBinary`, `FINAL`,
//! `system.parts` and `ALTER TABLE ... DROP PARTITION`.

use bytes::Bytes;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::redact::redact_url;
use crate::time::Timestamp;

/// The table, in the URL's database.
const TABLE: &str = "coffer_hot";
/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// A ClickHouse server's HTTP interface, and the database the URL names
/// (`?database=NAME`; `default` without one).
#[derive(Clone)]
pub(crate) struct ClickHouse {
    client: reqwest::Client,
    url: reqwest::Url,
    table: String,
}

impl std::fmt::Debug for ClickHouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "clickhouse {}", redact_url(self.url.as_str()))
    }
}

/// One version's row.
#[derive(Debug, Clone)]
pub(crate) struct HotRow {
    pub version_id: String,
    pub key: String,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    pub metadata: String,
    pub created_at: Timestamp,
    /// The bytes as stored (sealed, in an encrypted store).
    pub body: Bytes,
}

/// A recent object, as `coffer hot query` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HotObject {
    /// The key.
    pub key: String,
    /// The version.
    pub version_id: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its content type.
    pub content_type: String,
    /// When it was put.
    pub created_at: Timestamp,
}

impl ClickHouse {
    /// The server at `url` (`http://HOST:8123/?database=NAME`, credentials
    /// as `user:password@`).
    pub(crate) fn new(url: &str) -> Result<ClickHouse> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| Error::invalid_input(format!("hot.clickhouse_url {}: {e}", redact_url(url))))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid_input(format!(
                "hot.clickhouse_url {}: ClickHouse is reached over http or https",
                redact_url(url.as_str())
            )));
        }
        let database = url
            .query_pairs()
            .find(|(name, _)| name == "database")
            .map_or_else(|| "default".to_owned(), |(_, value)| value.into_owned());
        if database.is_empty() || !database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::invalid_input(format!(
                "hot.clickhouse_url: database {database:?} must be letters, digits and '_'"
            )));
        }
        // Tables are named with their database: the session needs none
        // (and one that does not exist yet would fail its creation).
        let mut url = url;
        let others: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| name != "database")
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        url.set_query(None);
        if !others.is_empty() {
            url.query_pairs_mut().extend_pairs(others);
        }
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot build an HTTP client: {e}")))?;
        Ok(ClickHouse {
            client,
            table: format!("{database}.{TABLE}"),
            url,
        })
    }

    /// Run `sql`, with `data` as the body of an `INSERT`; the answer's bytes.
    async fn run(&self, sql: &str, data: Option<Vec<u8>>) -> Result<Bytes> {
        let mut url = self.url.clone();
        let request = match data {
            Some(data) => {
                url.query_pairs_mut().append_pair("query", sql);
                self.client.post(url).body(data)
            }
            None => self.client.post(url).body(sql.to_owned()),
        };
        let unavailable = |e: String| {
            Error::new(
                ErrorKind::BackendUnavailable,
                format!("ClickHouse {}: {e}", redact_url(self.url.as_str())),
            )
            .retryable()
        };
        // reqwest's errors name the URL, credentials and all: not shown.
        let answer = request
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = answer.status();
        let body = answer
            .bytes()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let first = text.lines().next().unwrap_or_default().trim();
            return Err(unavailable(format!("{status}: {first}")));
        }
        Ok(body)
    }

    /// Create the database and the table unless they exist.
    pub(crate) async fn ensure_table(&self) -> Result<()> {
        if let Some((database, _)) = self.table.split_once('.') {
            self.run(&format!("CREATE DATABASE IF NOT EXISTS {database}"), None)
                .await?;
        }
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (day Date, version_id String, key String, sha256 String, \
             size UInt64, content_type String, metadata String, created_at DateTime, body String) \
             ENGINE = ReplacingMergeTree() PARTITION BY day ORDER BY (sha256, version_id)",
            self.table
        );
        self.run(&sql, None).await.map(|_| ())
    }

    /// Insert `rows` (a version inserted twice collapses into one).
    pub(crate) async fn insert(&self, rows: &[HotRow]) -> Result<()> {
        let mut data = Vec::new();
        for row in rows {
            let micros = row.created_at.as_micros();
            let day = u16::try_from(micros.div_euclid(DAY_MICROS)).unwrap_or(0);
            data.extend_from_slice(&day.to_le_bytes());
            for text in [&row.version_id, &row.key, &row.sha256] {
                put_string(&mut data, text.as_bytes());
            }
            data.extend_from_slice(&row.size.to_le_bytes());
            put_string(&mut data, row.content_type.as_bytes());
            put_string(&mut data, row.metadata.as_bytes());
            let seconds = u32::try_from(micros.div_euclid(1_000_000)).unwrap_or(0);
            data.extend_from_slice(&seconds.to_le_bytes());
            put_string(&mut data, &row.body);
        }
        let sql = format!("INSERT INTO {} FORMAT RowBinary", self.table);
        self.run(&sql, Some(data)).await.map(|_| ())
    }

    /// The bytes (as stored) of content `sha256`, if a row holds them.
    pub(crate) async fn body(&self, sha256: &str) -> Result<Option<Bytes>> {
        if !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let sql = format!(
            "SELECT body FROM {} WHERE sha256 = '{sha256}' LIMIT 1 FORMAT RowBinary",
            self.table
        );
        let answer = self.run(&sql, None).await?;
        if answer.is_empty() {
            return Ok(None);
        }
        let (length, used) = read_varint(&answer)
            .ok_or_else(|| Error::new(ErrorKind::Catalog, "ClickHouse answered a body it did not frame"))?;
        let end = used
            .checked_add(length)
            .filter(|end| *end <= answer.len())
            .ok_or_else(|| Error::new(ErrorKind::Catalog, "ClickHouse answered a body shorter than it said"))?;
        Ok(Some(answer.slice(used..end)))
    }

    /// The day partitions (`YYYY-MM-DD`) before the day of `before`; with
    /// `drop`, dropped.
    pub(crate) async fn days_before(&self, before: Timestamp, drop: bool) -> Result<Vec<String>> {
        let Some((database, table)) = self.table.split_once('.') else {
            return Ok(Vec::new());
        };
        let cutoff = u16::try_from(before.as_micros().div_euclid(DAY_MICROS)).unwrap_or(0);
        let sql = format!(
            "SELECT DISTINCT partition FROM system.parts WHERE database = '{database}' AND table = '{table}' \
             AND active AND toUInt16(toDate(partition)) < {cutoff} ORDER BY partition FORMAT TabSeparated"
        );
        let answer = self.run(&sql, None).await?;
        let days: Vec<String> = String::from_utf8_lossy(&answer)
            .lines()
            .filter(|day| day.chars().all(|c| c.is_ascii_digit() || c == '-'))
            .map(str::to_owned)
            .collect();
        if drop {
            for day in &days {
                self.run(&format!("ALTER TABLE {} DROP PARTITION '{day}'", self.table), None)
                    .await?;
            }
        }
        Ok(days)
    }

    /// The newest objects under `prefix` put since `since`, at most `limit`.
    pub(crate) async fn recent(&self, prefix: &str, since: Timestamp, limit: usize) -> Result<Vec<HotObject>> {
        let seconds = since.as_micros().div_euclid(1_000_000).max(0);
        let sql = format!(
            "SELECT key, version_id, size, content_type, toUnixTimestamp(created_at) FROM {} FINAL \
             WHERE startsWith(key, '{}') AND created_at >= toDateTime({seconds}) \
             ORDER BY created_at DESC, key LIMIT {limit} FORMAT TabSeparated",
            self.table,
            quote(prefix)
        );
        let answer = self.run(&sql, None).await?;
        String::from_utf8_lossy(&answer)
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                let [key, version_id, size, content_type, at] = fields.as_slice() else {
                    return Err(Error::new(
                        ErrorKind::Catalog,
                        "ClickHouse answered a row of the wrong shape",
                    ));
                };
                Ok(HotObject {
                    key: unescape(key),
                    version_id: (*version_id).to_owned(),
                    size: size.parse().unwrap_or(0),
                    content_type: unescape(content_type),
                    created_at: Timestamp::from_micros(at.parse::<i64>().unwrap_or(0) * 1_000_000),
                })
            })
            .collect()
    }
}

/// A `String` of `RowBinary`: its length as a varint, then its bytes.
fn put_string(data: &mut Vec<u8>, bytes: &[u8]) {
    let mut length = bytes.len() as u64;
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            data.push(byte);
            break;
        }
        data.push(byte | 0x80);
    }
    data.extend_from_slice(bytes);
}

/// A varint at the start of `bytes`: its value and its length.
fn read_varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return usize::try_from(value).ok().map(|v| (v, i + 1));
        }
    }
    None
}

/// `text` inside a ClickHouse string literal.
fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

/// A field of ClickHouse's `TabSeparated` output, unescaped.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_framed_as_row_binary_has_them() {
        let mut data = Vec::new();
        put_string(&mut data, &[7u8; 300]);
        assert_eq!(&data[..2], &[0xac, 0x02]);
        assert_eq!(read_varint(&data), Some((300, 2)));
        assert_eq!(read_varint(&[0x80]), None, "an unfinished varint");
    }

    #[test]
    fn literals_and_fields_survive_their_escapes() {
        assert_eq!(quote(r"it's a \ path"), r"it\'s a \\ path");
        assert_eq!(unescape(r"a\tb\\c\nd"), "a\tb\\c\nd");
    }

    #[test]
    fn a_url_names_its_database_or_is_refused() {
        let server = ClickHouse::new("http://127.0.0.1:8123/?database=hot_1").unwrap();
        assert_eq!(server.table, "hot_1.coffer_hot");
        assert_eq!(ClickHouse::new("http://h:8123/").unwrap().table, "default.coffer_hot");
        let err = ClickHouse::new("http://h/?database=a;drop").unwrap_err();
        assert!(err.message().contains("must be letters, digits and '_'"), "{err}");
        let err = ClickHouse::new("ftp://h/").unwrap_err();
        assert!(err.message().contains("over http or https"), "{err}");
    }
}
