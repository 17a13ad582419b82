//! The hot store's rows: small content committed with its version
//! (`hot_content`) and versions whose manifest waits for the flusher
//! (`hot_pending`). The SQL is written once for both engines; a commit
//! appends or runs the two holding statements in its own transaction.

use bytes::Bytes;
use serde::Serialize;

use super::reads::versions_in;
use super::rows::{Param, to_i64};
use super::sql::Conn;
use super::{NewVersion, ObjectVersion, VersionContent};
use crate::error::Result;
use crate::hot::HotObject;
use crate::time::Timestamp;

/// A commit of hot content records its version as waiting for its manifest.
pub(super) const HOLD_PENDING: &str = "INSERT INTO hot_pending (key, version_id, at) VALUES (?, ?, ?);";

/// ... and, when its copy is the one the blob row took, the bytes (a
/// damaged copy healed by hot content is replaced the same way).
pub(super) const HOLD_CONTENT: &str = "INSERT INTO hot_content (sha256, content, stored_at, flushed) \
     VALUES (?, ?, ?, FALSE) ON CONFLICT (sha256) DO UPDATE SET content = excluded.content, \
     stored_at = excluded.stored_at, flushed = FALSE;";

/// What a commit of `new` holds hot, as `committed`: the pending row's
/// values, and the content's when the blob row took this commit's copy.
pub(super) fn holding(new: &NewVersion, committed: &ObjectVersion) -> Option<(Vec<Param>, Option<Vec<Param>>)> {
    let VersionContent::Blob(blob) = &new.content else {
        return None;
    };
    let content = blob.hot.as_ref()?;
    let at = Param::Int(new.created_at.as_micros());
    let pending = vec![
        Param::Text(new.key.to_string()),
        Param::Text(new.version_id.to_string()),
        at,
    ];
    let ours = blob.new_path.is_some() && committed.blob_path == blob.new_path;
    let content = ours.then(|| {
        vec![
            Param::Text(blob.sha256.clone()),
            Param::Bytes(content.to_vec()),
            Param::Int(new.created_at.as_micros()),
        ]
    });
    Some((pending, content))
}

/// Run [`holding`]'s statements on `conn` (an engine that cannot append
/// them to its commit's statement).
#[cfg(feature = "catalog-postgres")]
pub(super) async fn hold(mut conn: Conn<'_>, new: &NewVersion, committed: &ObjectVersion) -> Result<()> {
    let Some((pending, content)) = holding(new, committed) else {
        return Ok(());
    };
    conn.execute("holding the version hot", HOLD_PENDING, pending).await?;
    if let Some(content) = content {
        conn.execute("holding the content hot", HOLD_CONTENT, content).await?;
    }
    Ok(())
}

/// A blob's hot copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotCopy {
    /// The bytes as stored (sealed, in an encrypted store).
    pub content: Bytes,
    /// The backend holds them too.
    pub flushed: bool,
}

/// Content the backend does not hold yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotBlob {
    /// Its SHA-256.
    pub sha256: String,
    /// Where on the backend it goes (the blob row's path).
    pub path: String,
    /// The bytes as stored.
    pub content: Bytes,
}

/// What the flusher has to write, oldest first.
#[derive(Debug, Clone, Default)]
pub struct HotBacklog {
    /// Versions whose manifest is not on the backend yet.
    pub versions: Vec<ObjectVersion>,
    /// Content not on the backend yet.
    pub blobs: Vec<HotBlob>,
}

impl HotBacklog {
    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty() && self.blobs.is_empty()
    }
}

/// What a flush wrote that the catalog no longer wants: removed while it
/// was written, so its objects are to be deleted again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushLeftovers {
    /// Versions gone: (key, version id).
    pub versions: Vec<(String, String)>,
    /// Blob paths no blob row names any more.
    pub blob_paths: Vec<String>,
}

/// The hot store's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HotStats {
    /// Blobs held hot, and their bytes (as put).
    pub objects: u64,
    /// Bytes held hot.
    pub bytes: u64,
    /// Blobs whose content is not on the backend yet, and their bytes.
    pub unflushed_objects: u64,
    /// Bytes not on the backend yet.
    pub unflushed_bytes: u64,
    /// Versions whose manifest is not on the backend yet.
    pub pending_versions: u64,
    /// When the oldest of the waiting versions and contents was put.
    pub oldest_pending: Option<Timestamp>,
    /// Hot copies dropped by expiry over the store's life.
    pub expired: u64,
}

/// The store setting counting hot copies expired.
const EXPIRED_SETTING: &str = "hot_expired";

/// A blob's hot copy, if it has one.
pub(super) async fn copy(mut conn: Conn<'_>, sha256: &str) -> Result<Option<HotCopy>> {
    let row: Option<(Vec<u8>, bool)> = conn
        .optional(
            "reading hot content",
            "SELECT content, flushed FROM hot_content WHERE sha256 = ?",
            vec![Param::Text(sha256.to_owned())],
        )
        .await?;
    Ok(row.map(|(content, flushed)| HotCopy {
        content: Bytes::from(content),
        flushed,
    }))
}

/// Up to `versions` versions and `blobs` contents waiting, oldest first.
pub(super) async fn backlog(mut conn: Conn<'_>, versions: usize, blobs: usize) -> Result<HotBacklog> {
    let limit = |n: usize| Param::Int(to_i64(n.min(i64::MAX as usize) as u64));
    let blobs: Vec<(String, String, Vec<u8>)> = match blobs {
        0 => Vec::new(),
        n => {
            conn.all(
                "reading unflushed content",
                "SELECT h.sha256, b.locator, h.content FROM hot_content h JOIN blobs b ON b.sha256 = h.sha256 \
                 WHERE NOT h.flushed ORDER BY h.stored_at LIMIT ?",
                vec![limit(n)],
            )
            .await?
        }
    };
    let mut versions = match versions {
        0 => Vec::new(),
        n => {
            versions_in(
                conn,
                "SELECT key, version_id FROM hot_pending ORDER BY at LIMIT ?",
                vec![limit(n)],
            )
            .await?
        }
    };
    versions.sort_by(|a, b| (a.created_at, &a.key).cmp(&(b.created_at, &b.key)));
    Ok(HotBacklog {
        versions,
        blobs: blobs
            .into_iter()
            .map(|(sha256, path, content)| HotBlob {
                sha256,
                path,
                content: Bytes::from(content),
            })
            .collect(),
    })
}

/// A `WITH` naming `rows` of two values as `p(c1, c2)`, and the values
/// for its placeholders.
fn pairs_cte(rows: &[(String, String)]) -> (String, Vec<Param>) {
    let cte = format!("WITH p(c1, c2) AS (VALUES {})", vec!["(?, ?)"; rows.len()].join(", "));
    let params = rows
        .iter()
        .flat_map(|(first, second)| [Param::Text(first.clone()), Param::Text(second.clone())])
        .collect();
    (cte, params)
}

/// Mark what a flush wrote as on the backend, in the caller's transaction:
/// the versions' manifests and the contents at `blobs` (SHA-256, path).
/// Returns what was removed meanwhile, whose objects the flusher deletes.
pub(super) async fn mark_flushed(
    mut conn: Conn<'_>,
    versions: &[(String, String)],
    blobs: &[(String, String)],
) -> Result<FlushLeftovers> {
    let mut leftovers = FlushLeftovers::default();
    if !versions.is_empty() {
        let (cte, params) = pairs_cte(versions);
        conn.execute(
            "marking manifests flushed",
            &format!("{cte} DELETE FROM hot_pending WHERE (key, version_id) IN (SELECT c1, c2 FROM p)"),
            params.clone(),
        )
        .await?;
        leftovers.versions = conn
            .all(
                "finding versions removed during a flush",
                &format!(
                    "{cte} SELECT c1, c2 FROM p WHERE NOT EXISTS \
                     (SELECT 1 FROM versions v WHERE v.key = p.c1 AND v.version_id = p.c2)"
                ),
                params,
            )
            .await?;
    }
    if !blobs.is_empty() {
        let (cte, params) = pairs_cte(blobs);
        // Only a copy still at the path written: a heal may have moved it.
        conn.execute(
            "marking content flushed",
            &format!(
                "{cte} UPDATE hot_content SET flushed = TRUE WHERE sha256 IN \
                 (SELECT c1 FROM p JOIN blobs b ON b.sha256 = p.c1 AND b.locator = p.c2)"
            ),
            params.clone(),
        )
        .await?;
        let gone: Vec<(String,)> = conn
            .all(
                "finding content removed during a flush",
                &format!(
                    "{cte} SELECT c2 FROM p WHERE NOT EXISTS \
                     (SELECT 1 FROM blobs b WHERE b.sha256 = p.c1 AND b.locator = p.c2)"
                ),
                params,
            )
            .await?;
        leftovers.blob_paths = gone.into_iter().map(|(path,)| path).collect();
    }
    Ok(leftovers)
}

/// Drop up to `limit` flushed hot copies stored before `before`, oldest
/// first, in the caller's transaction, adding them to the store's count.
/// Returns how many went.
pub(super) async fn expire_batch(mut conn: Conn<'_>, before: Timestamp, limit: usize) -> Result<u64> {
    let removed = conn
        .execute(
            "expiring hot content",
            "DELETE FROM hot_content WHERE sha256 IN (SELECT sha256 FROM hot_content \
             WHERE flushed AND stored_at < ? ORDER BY stored_at LIMIT ?)",
            vec![Param::Int(before.as_micros()), Param::Int(to_i64(limit as u64))],
        )
        .await?;
    if removed > 0 {
        conn.execute(
            "counting expired hot content",
            "INSERT INTO store_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET \
             value = CAST(CAST(store_settings.value AS BIGINT) + CAST(excluded.value AS BIGINT) AS TEXT)",
            vec![
                Param::Text(EXPIRED_SETTING.to_owned()),
                Param::Text(removed.to_string()),
            ],
        )
        .await?;
    }
    Ok(removed)
}

/// How many flushed hot copies stored before `before` expiry would drop.
pub(super) async fn expirable(mut conn: Conn<'_>, before: Timestamp) -> Result<u64> {
    let (count,): (i64,) = conn
        .one(
            "counting expirable hot content",
            "SELECT COUNT(*) FROM hot_content WHERE flushed AND stored_at < ?",
            vec![Param::Int(before.as_micros())],
        )
        .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The hot store's totals.
pub(super) async fn stats(mut conn: Conn<'_>) -> Result<HotStats> {
    type Totals = (i64, i64, i64, i64, Option<i64>, i64, Option<i64>, Option<String>);
    let (objects, bytes, unflushed_objects, unflushed_bytes, oldest_content, pending, oldest_version, expired): Totals =
        conn.one(
            "reading the hot store's totals",
            "SELECT \
               (SELECT COUNT(*) FROM hot_content), \
               (SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM hot_content h JOIN blobs b ON b.sha256 = h.sha256), \
               (SELECT COUNT(*) FROM hot_content WHERE NOT flushed), \
               (SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM hot_content h JOIN blobs b ON b.sha256 = h.sha256 \
                WHERE NOT h.flushed), \
               (SELECT MIN(stored_at) FROM hot_content WHERE NOT flushed), \
               (SELECT COUNT(*) FROM hot_pending), \
               (SELECT MIN(at) FROM hot_pending), \
               (SELECT value FROM store_settings WHERE name = ?)",
            vec![Param::Text(EXPIRED_SETTING.to_owned())],
        )
        .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let oldest = [oldest_content, oldest_version].into_iter().flatten().min();
    Ok(HotStats {
        objects: count(objects),
        bytes: count(bytes),
        unflushed_objects: count(unflushed_objects),
        unflushed_bytes: count(unflushed_bytes),
        pending_versions: count(pending),
        oldest_pending: oldest.map(Timestamp::from_micros),
        expired: expired.and_then(|n| n.parse().ok()).unwrap_or(0),
    })
}

/// The newest versions under `prefix` made since `since` whose content is
/// held hot, at most `limit`.
pub(super) async fn recent(mut conn: Conn<'_>, prefix: &str, since: Timestamp, limit: usize) -> Result<Vec<HotObject>> {
    type Row = (String, String, i64, Option<String>, i64);
    let rows: Vec<Row> = conn
        .all(
            "listing hot objects",
            "SELECT v.key, v.version_id, v.size, v.content_type, v.created_at FROM hot_content h \
             JOIN versions v ON v.blob_sha256 = h.sha256 \
             WHERE substr(v.key, 1, length(?)) = ? AND v.created_at >= ? \
             ORDER BY v.created_at DESC, v.key LIMIT ?",
            vec![
                Param::Text(prefix.to_owned()),
                Param::Text(prefix.to_owned()),
                Param::Int(since.as_micros()),
                Param::Int(to_i64(limit as u64)),
            ],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(key, version_id, size, content_type, at)| HotObject {
            key,
            version_id,
            size: u64::try_from(size).unwrap_or(0),
            content_type: content_type.unwrap_or_default(),
            created_at: Timestamp::from_micros(at),
        })
        .collect())
}
