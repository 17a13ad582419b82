//! What each change writes: the engine side of the plans in
//! `catalog/plan.rs`, as multi-statement SQLite writes run by the writer task.

use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use super::writer::Refused;
use super::{db_error, outbox, search};
use crate::catalog::hot;
use crate::catalog::plan::{
    self, AnnotatePlan, AuditRecord, CommitPlan, CurrentVersion, PrunePlan, PurgePlan, RepairPlan,
};
use crate::catalog::reads;
use crate::catalog::rows::{Param, bind_params, to_i64};
use crate::catalog::sql::Conn;
use crate::catalog::writes;
use crate::catalog::{
    Annotation, DeletedVersion, NewVersion, ObjectVersion, PrunePolicy, Pruned, Repair, VersionContent,
};
use crate::error::{Error, ErrorKind, Result};
use crate::events::built_in;
use crate::key::ObjectKey;
use crate::time::Timestamp;
use crate::version::VersionId;

pub(super) const INSERT_AUDIT: &str =
    "INSERT INTO audit (at, actor, action, key, version_id, detail) VALUES (?, ?, ?, ?, ?, ?);";

/// Record a version: one read, then one multi-statement write, so a commit
/// costs two round trips to SQLite's thread whatever it touches.
pub(super) async fn apply_commit(conn: &mut SqliteConnection, new: &NewVersion) -> Result<ObjectVersion, Refused> {
    let key = new.key.as_str();
    let version_id = new.version_id.as_str();
    let blob = match &new.content {
        VersionContent::Blob(blob) => Some(blob),
        VersionContent::DeleteMarker => None,
    };
    type CurrentRow = (
        Option<String>,
        Option<bool>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let (current_id, current_marker, current_etag, stored_path, stored_damage): CurrentRow = sqlx::query_as(
        "SELECT l.version_id, l.is_delete_marker, v.etag, b.locator, b.damaged \
         FROM (SELECT 1) LEFT JOIN latest l ON l.key = ? \
         LEFT JOIN versions v ON v.key = l.key AND v.version_id = l.version_id \
         LEFT JOIN blobs b ON b.sha256 = ?",
    )
    .bind(key)
    .bind(blob.map(|b| b.sha256.as_str()))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| Refused::Clean(db_error("reading the current version", e)))?;
    let current = current_id.map(|version_id| CurrentVersion {
        version_id,
        is_delete_marker: current_marker.unwrap_or(false),
        etag: current_etag,
    });
    plan::admit_commit(new, current.as_ref()).map_err(Refused::Clean)?;

    /// What the version does to its blob's row.
    enum BlobChange {
        None,
        Insert,
        Reference,
        /// The stored copy is damaged and this version brings a sound one.
        Heal,
    }
    let (blob_change, blob_path) = match (blob, &stored_path, &blob.and_then(|b| b.new_path.clone())) {
        (None, _, _) => (BlobChange::None, None),
        (Some(_), Some(_), Some(fresh)) if stored_damage.is_some() => (BlobChange::Heal, Some(fresh.clone())),
        (Some(_), Some(_), None) if stored_damage.is_some() => {
            return Err(Refused::Clean(Error::new(
                ErrorKind::IntegrityMismatch,
                format!(
                    "the content of {key} is damaged ({})",
                    stored_damage.unwrap_or_default()
                ),
            )));
        }
        (Some(_), Some(stored), _) => (BlobChange::Reference, Some(stored.clone())),
        (Some(_), None, Some(fresh)) => (BlobChange::Insert, Some(fresh.clone())),
        (Some(_), None, None) => {
            return Err(Refused::Clean(Error::not_found(format!(
                "the content of {key} is no longer stored"
            ))));
        }
    };

    let (sha256, size, etag) = match blob {
        Some(b) => (Some(b.sha256.as_str()), b.size, Some(b.md5.as_str())),
        None => (None, 0, None),
    };
    let CommitPlan {
        committed,
        becomes_latest,
        document,
        events,
    } = plan::plan_commit(new, current.as_ref(), blob_path);

    let mut sql = String::new();
    sql.push_str(match blob_change {
        BlobChange::None => "",
        BlobChange::Insert => {
            "INSERT INTO blobs (sha256, md5, size, locator, refcount, created_at, data_key) VALUES (?, ?, ?, ?, 1, ?, ?);"
        }
        BlobChange::Reference => "UPDATE blobs SET refcount = refcount + 1 WHERE sha256 = ?;",
        BlobChange::Heal => {
            "UPDATE blobs SET refcount = refcount + 1, locator = ?, data_key = ?, damaged = NULL WHERE sha256 = ?;"
        }
    });
    sql.push_str(
        "INSERT INTO versions (key, version_id, is_delete_marker, blob_sha256, size, etag, content_type, \
         metadata, created_at, created_by, retention_mode, retain_until, legal_hold) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);",
    );
    if becomes_latest {
        sql.push_str(
            "INSERT INTO latest (key, version_id, is_delete_marker) VALUES (?, ?, ?) ON CONFLICT (key) \
             DO UPDATE SET version_id = excluded.version_id, is_delete_marker = excluded.is_delete_marker;",
        );
    }
    for _ in &new.tags {
        sql.push_str(INSERT_TAG);
    }
    for _ in &new.comments {
        sql.push_str(INSERT_COMMENT);
    }
    if document.is_some() {
        sql.push_str(search::INSERT_DOCUMENT);
    }
    sql.push_str(INSERT_AUDIT);
    // The events go in the same statement as the version: no extra round trip.
    if !events.is_empty() {
        sql.push_str(&outbox::insert_events_sql(events.len()));
    }
    let held = hot::holding(new, &committed);
    if let Some((_, content)) = &held {
        sql.push_str(hot::HOLD_PENDING);
        if content.is_some() {
            sql.push_str(hot::HOLD_CONTENT);
        }
    }

    let metadata = serde_json::to_string(&new.metadata)
        .map_err(|e| Refused::Clean(Error::invalid_input(format!("metadata cannot be encoded: {e}"))))?;
    let mut query = sqlx::query(&sql);
    if let Some(blob) = blob {
        query = match blob_change {
            BlobChange::None => query,
            BlobChange::Insert => query
                .bind(&blob.sha256)
                .bind(&blob.md5)
                .bind(to_i64(blob.size))
                .bind(&committed.blob_path)
                .bind(new.created_at.as_micros())
                .bind(&blob.data_key),
            BlobChange::Reference => query.bind(&blob.sha256),
            BlobChange::Heal => query.bind(&committed.blob_path).bind(&blob.data_key).bind(&blob.sha256),
        };
    }
    query = query
        .bind(key)
        .bind(version_id)
        .bind(blob.is_none())
        .bind(sha256)
        .bind(to_i64(size))
        .bind(etag)
        .bind(&new.content_type)
        .bind(metadata)
        .bind(new.created_at.as_micros())
        .bind(&new.created_by)
        .bind(committed.retention.map(|r| r.mode.as_str()))
        .bind(committed.retention.map(|r| r.until.as_micros()))
        .bind(committed.legal_hold);
    if becomes_latest {
        query = query.bind(key).bind(version_id).bind(blob.is_none());
    }
    for (name, value) in &new.tags {
        query = query.bind(key).bind(version_id).bind(name).bind(value);
    }
    for (seq, comment) in new.comments.iter().enumerate() {
        query = query
            .bind(key)
            .bind(version_id)
            .bind(to_i64(seq as u64 + 1))
            .bind(comment.at.as_micros())
            .bind(&comment.actor)
            .bind(&comment.text);
    }
    if let Some(document) = document {
        query = query.bind(key).bind(version_id).bind(document);
    }
    query = query
        .bind(new.created_at.as_micros())
        .bind(&new.created_by)
        .bind(new.action)
        .bind(key)
        .bind(version_id)
        .bind(new.audit_detail.to_string());
    query = outbox::bind_events(query, &events);
    if let Some((pending, content)) = held {
        query = bind_params!(query, pending.into_iter().chain(content.into_iter().flatten()));
    }
    query.execute(&mut *conn).await.map_err(|e| {
        Refused::Dirty(match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::conflict(format!("version {version_id} of {key} already exists"))
            }
            _ => db_error("recording the version", e),
        })
    })?;
    Ok(committed)
}

pub(super) const INSERT_TAG: &str = "INSERT INTO version_tags (key, version_id, name, value) VALUES (?, ?, ?, ?) \
     ON CONFLICT (key, version_id, name) DO UPDATE SET value = excluded.value;";
pub(super) const INSERT_COMMENT: &str =
    "INSERT INTO version_comments (key, version_id, seq, at, actor, text) VALUES (?, ?, ?, ?, ?, ?);";

pub(super) async fn apply_delete_version(
    conn: &mut SqliteConnection,
    key: &ObjectKey,
    version_id: &VersionId,
    actor: &str,
    bypass_governance: bool,
) -> Result<DeletedVersion, Refused> {
    let found = reads::version(Conn::from(&mut *conn), key.as_str(), version_id.as_str())
        .await
        .map_err(Refused::Clean)?;
    let version = plan::named_version(found, key, version_id).map_err(Refused::Clean)?;
    let bypassed = plan::check_removal(&version, bypass_governance, Timestamp::now()).map_err(Refused::Clean)?;
    let successor: Option<(String, bool)> = if version.is_latest {
        sqlx::query_as(
            "SELECT version_id, is_delete_marker FROM versions WHERE key = ? AND version_id <> ? \
             ORDER BY version_id DESC LIMIT 1",
        )
        .bind(key.as_str())
        .bind(version_id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| Refused::Clean(db_error("finding the previous version", e)))?
    } else {
        None
    };
    remove_version(conn, version, successor, "delete_version", actor, bypassed).await
}

/// Remove `version` (its tags and comments go with it), moving the latest
/// pointer to `successor` if it was the latest, and release its blob.
pub(super) async fn remove_version(
    conn: &mut SqliteConnection,
    version: ObjectVersion,
    successor: Option<(String, bool)>,
    action: &str,
    actor: &str,
    bypassed: bool,
) -> Result<DeletedVersion, Refused> {
    let key = version.key.as_str();
    let mut sql = String::new();
    match (&successor, version.is_latest) {
        (Some(_), true) => sql.push_str("UPDATE latest SET version_id = ?, is_delete_marker = ? WHERE key = ?;"),
        (None, true) => sql.push_str("DELETE FROM latest WHERE key = ?;"),
        (_, false) => {}
    }
    sql.push_str("DELETE FROM versions WHERE key = ? AND version_id = ?;");
    if version.sha256.is_some() {
        // The last reference takes the blob row with it; any other just counts down.
        sql.push_str(
            "DELETE FROM blobs WHERE sha256 = ? AND refcount = 1 RETURNING locator;\
             UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = ?;",
        );
    }
    sql.push_str(INSERT_AUDIT);

    let mut query = sqlx::query(&sql);
    match (&successor, version.is_latest) {
        (Some((id, is_marker)), true) => query = query.bind(id).bind(is_marker).bind(key),
        (None, true) => query = query.bind(key),
        (_, false) => {}
    }
    query = query.bind(key).bind(version.version_id.as_str());
    if let Some(sha256) = &version.sha256 {
        query = query.bind(sha256).bind(sha256);
    }
    let detail = plan::removal_detail(&version, bypassed);
    query = query
        .bind(Timestamp::now().as_micros())
        .bind(actor)
        .bind(action)
        .bind(key)
        .bind(version.version_id.as_str())
        .bind(detail.to_string());
    let released = query
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| Refused::Dirty(db_error("removing the version", e)))?;
    let unreferenced_blob = released.first().map(|row| row.get::<String, _>(0));
    let event = built_in::removed_version(&version, action, actor, Timestamp::now());
    outbox::insert_events(conn, &[event]).await.map_err(Refused::Dirty)?;
    Ok(DeletedVersion {
        version,
        unreferenced_blob,
    })
}

pub(super) async fn apply_prune(
    conn: &mut SqliteConnection,
    key: &ObjectKey,
    policy: PrunePolicy,
    actor: &str,
    dry_run: bool,
) -> Result<Pruned, Refused> {
    plan::check_prune(key, policy).map_err(Refused::Clean)?;
    let versions = reads::versions(Conn::from(&mut *conn), key.as_str(), None)
        .await
        .map_err(Refused::Clean)?;
    let PrunePlan { doomed, held } =
        plan::plan_prune(key, versions, policy, Timestamp::now()).map_err(Refused::Clean)?;
    let removed = if dry_run {
        reads::dry_run_removals(Conn::from(&mut *conn), doomed)
            .await
            .map_err(Refused::Clean)?
    } else {
        let mut removed = Vec::with_capacity(doomed.len());
        for version in doomed {
            removed.push(remove_version(conn, version, None, "prune", actor, false).await?);
        }
        removed
    };
    Ok(Pruned { removed, held })
}

pub(super) async fn apply_annotate(
    conn: &mut SqliteConnection,
    key: &ObjectKey,
    version_id: &VersionId,
    annotation: &Annotation,
    actor: &str,
) -> Result<ObjectVersion, Refused> {
    let found = reads::version(Conn::from(&mut *conn), key.as_str(), version_id.as_str())
        .await
        .map_err(Refused::Clean)?;
    let version = plan::named_version(found, key, version_id).map_err(Refused::Clean)?;
    let AnnotatePlan {
        version,
        comment,
        document,
        protection,
        audit,
        event,
    } = plan::plan_annotate(version, annotation, actor, Timestamp::now()).map_err(Refused::Clean)?;
    if let Some(protection) = &protection {
        writes::set_protection(Conn::from(&mut *conn), key.as_str(), version_id.as_str(), protection)
            .await
            .map_err(Refused::Dirty)?;
    }
    let (k, v) = (key.as_str(), version_id.as_str());
    let mut sql = String::new();
    let mut params = Vec::new();
    if let Annotation::Tags { set, remove } = annotation {
        for name in remove {
            sql.push_str("DELETE FROM version_tags WHERE key = ? AND version_id = ? AND name = ?;");
            params.extend([k, v, name].map(|p| Param::Text(p.to_owned())));
        }
        for (name, value) in set {
            sql.push_str(INSERT_TAG);
            params.extend([k, v, name, value].map(|p| Param::Text(p.to_owned())));
        }
    }
    if let Some(comment) = &comment {
        sql.push_str(
            "INSERT INTO version_comments (key, version_id, seq, at, actor, text) \
             SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM version_comments \
             WHERE key = ? AND version_id = ?;",
        );
        params.extend([
            Param::Text(k.to_owned()),
            Param::Text(v.to_owned()),
            Param::Int(comment.at.as_micros()),
            Param::Text(comment.actor.clone()),
            Param::Text(comment.text.clone()),
            Param::Text(k.to_owned()),
            Param::Text(v.to_owned()),
        ]);
    }
    if let Some(document) = document {
        sql.push_str(search::REWRITE_DOCUMENT);
        params.extend([document, k.to_owned(), v.to_owned()].map(Param::Text));
    }
    sql.push_str(INSERT_AUDIT);
    params.extend(audit_params(&audit));
    bind_params!(sqlx::query(&sql), params)
        .execute(&mut *conn)
        .await
        .map_err(|e| Refused::Dirty(db_error("annotating the version", e)))?;
    outbox::insert_events(conn, &[event]).await.map_err(Refused::Dirty)?;
    Ok(version)
}

/// The values of [`INSERT_AUDIT`] for `row`.
pub(super) fn audit_params(row: &AuditRecord) -> [Param; 6] {
    let text = |value: &Option<String>| value.clone().map_or(Param::Null, Param::Text);
    [
        Param::Int(row.at.as_micros()),
        Param::Text(row.actor.clone()),
        Param::Text(row.action.clone()),
        text(&row.key),
        text(&row.version_id),
        Param::Text(row.detail.to_string()),
    ]
}

pub(super) async fn apply_repair(conn: &mut SqliteConnection, repair: &Repair, actor: &str) -> Result<(), Refused> {
    let query = match plan::plan_repair(repair, actor, Timestamp::now()) {
        // One audit row for each version whose content this is.
        RepairPlan::MarkDamaged {
            sha256,
            problem,
            at,
            actor,
            detail,
        } => bind_params!(
            sqlx::query(
                "UPDATE blobs SET damaged = ? WHERE sha256 = ?; \
                 INSERT INTO audit (at, actor, action, key, version_id, detail) \
                 SELECT ?, ?, 'repair', key, version_id, ? FROM versions WHERE blob_sha256 = ?;",
            ),
            [
                Param::Text(problem),
                Param::Text(sha256.clone()),
                Param::Int(at.as_micros()),
                Param::Text(actor),
                Param::Text(detail.to_string()),
                Param::Text(sha256),
            ]
        ),
        RepairPlan::Place {
            sha256,
            placement,
            audit,
        } => {
            writes::set_placement(Conn::from(&mut *conn), &sha256, placement.as_deref())
                .await
                .map_err(Refused::Dirty)?;
            bind_params!(sqlx::query(INSERT_AUDIT), audit_params(&audit))
        }
        RepairPlan::Restore {
            sha256,
            pending,
            audit,
            event,
        } => {
            writes::set_restore_pending(Conn::from(&mut *conn), &sha256, pending.as_deref())
                .await
                .map_err(Refused::Dirty)?;
            if let Some(event) = event {
                outbox::insert_events(conn, &[event]).await.map_err(Refused::Dirty)?;
            }
            bind_params!(sqlx::query(INSERT_AUDIT), audit_params(&audit))
        }
        RepairPlan::DataKey { sha256, data_key } => {
            return writes::set_data_key(Conn::from(&mut *conn), &sha256, &data_key)
                .await
                .map_err(Refused::Dirty);
        }
        RepairPlan::Setting {
            name,
            value,
            if_absent,
            audit,
        } => {
            writes::set_setting(Conn::from(&mut *conn), name, value.as_deref(), if_absent)
                .await
                .map_err(Refused::Dirty)?;
            match audit {
                Some(audit) => bind_params!(sqlx::query(INSERT_AUDIT), audit_params(&audit)),
                None => return Ok(()),
            }
        }
        RepairPlan::Audit(row) => bind_params!(sqlx::query(INSERT_AUDIT), audit_params(&row)),
    };
    query
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| Refused::Dirty(db_error("recording a repair", e)))
}

/// Remove up to [`PURGE_BATCH`] audit rows of `purge` (older than its line,
/// no newer than its `up_to_id`), oldest first, and record that in an
/// `audit_purge` row. The guard row lets the `audit_no_delete` trigger pass
/// these deletes only; it is gone again before the transaction commits.
pub(super) async fn apply_purge_audit(conn: &mut SqliteConnection, purge: &PurgePlan) -> Result<u64, Refused> {
    let failed = |e| Refused::Dirty(db_error("purging the audit log", e));
    sqlx::query("INSERT INTO audit_purge_guard (before) VALUES (?)")
        .bind(purge.before.as_micros())
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
    let removed = writes::delete_audit_batch(Conn::from(&mut *conn), purge)
        .await
        .map_err(Refused::Dirty)?;
    let record = purge.record(removed, Timestamp::now());
    let sql = format!("DELETE FROM audit_purge_guard; {INSERT_AUDIT}");
    bind_params!(sqlx::query(&sql), audit_params(&record))
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
    Ok(removed)
}
