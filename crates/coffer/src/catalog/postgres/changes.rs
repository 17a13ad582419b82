//! What each change writes: the engine side of the plans in
//! `catalog/plan.rs`, as PostgreSQL statements in the change's transaction.

use sqlx::postgres::PgConnection;

use super::{db_error, outbox, search};
use crate::catalog::plan::{
    self, AnnotatePlan, AuditRecord, CommitPlan, CurrentVersion, PrunePlan, PurgePlan, RepairPlan,
};
use crate::catalog::rows::to_i64;
use crate::catalog::sql::Conn;
use crate::catalog::writes;
use crate::catalog::{
    Annotation, BlobRef, DeletedVersion, NewVersion, ObjectVersion, PrunePolicy, Pruned, Repair, VersionContent,
};
use crate::catalog::{hot, reads};
use crate::error::{Error, ErrorKind, Result};
use crate::events::built_in;
use crate::key::ObjectKey;
use crate::time::Timestamp;
use crate::version::VersionId;

/// Record a version. The key is locked first, so the current version read
/// next is still current when the new one is written.
pub(super) async fn apply_commit(conn: &mut PgConnection, new: &NewVersion) -> Result<ObjectVersion> {
    let key = new.key.as_str();
    let version_id = new.version_id.as_str();
    let blob = match &new.content {
        VersionContent::Blob(blob) => Some(blob),
        VersionContent::DeleteMarker => None,
    };
    // The current version, read with the reference on the blob taken in the
    // same statement: a failed precondition rolls the reference back.
    let (current_id, current_marker, current_etag, blob_path) =
        read_current_and_reference_blob(conn, key, blob, new.created_at).await?;
    let current = current_id.map(|version_id| CurrentVersion {
        version_id,
        is_delete_marker: current_marker.unwrap_or(false),
        etag: current_etag,
    });
    plan::admit_commit(new, current.as_ref())?;
    if let (Some(blob), None) = (blob, &blob_path) {
        return Err(unreferenced_blob_error(conn, key, &blob.sha256).await);
    }
    let (sha256, size, etag) = match blob {
        Some(b) => (Some(b.sha256.as_str()), b.size, Some(b.md5.as_str())),
        None => (None, 0, None),
    };
    let metadata = serde_json::to_string(&new.metadata)
        .map_err(|e| Error::invalid_input(format!("metadata cannot be encoded: {e}")))?;
    let (tag_names, tag_values): (Vec<&str>, Vec<&str>) =
        new.tags.iter().map(|(n, v)| (n.as_str(), v.as_str())).unzip();
    let comment_at: Vec<i64> = new.comments.iter().map(|c| c.at.as_micros()).collect();
    let comment_actors: Vec<&str> = new.comments.iter().map(|c| c.actor.as_str()).collect();
    let comment_texts: Vec<&str> = new.comments.iter().map(|c| c.text.as_str()).collect();
    let CommitPlan {
        committed,
        becomes_latest,
        document,
        events,
    } = plan::plan_commit(new, current.as_ref(), blob_path);
    let document = document.map(|document| search::tsvector_literal(&document));
    let columns = outbox::EventColumns::of(&events);
    // The version, its latest pointer, tags, comments, search document,
    // audit row and events in one statement: one round trip, and foreign keys are
    // checked at its end.
    sqlx::query(
        "WITH v AS (INSERT INTO versions (key, version_id, is_delete_marker, blob_sha256, size, etag, \
                    content_type, metadata, created_at, created_by, retention_mode, retain_until, legal_hold) \
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $25, $26, $27) \
                    RETURNING key, version_id), \
         l AS (INSERT INTO latest (key, version_id, is_delete_marker) SELECT key, version_id, $3 FROM v WHERE $11 \
               ON CONFLICT (key) DO UPDATE SET version_id = excluded.version_id, \
               is_delete_marker = excluded.is_delete_marker), \
         t AS (INSERT INTO version_tags (key, version_id, name, value) \
               SELECT v.key, v.version_id, n, val FROM v, unnest($12::text[], $13::text[]) AS tag(n, val)), \
         c AS (INSERT INTO version_comments (key, version_id, seq, at, actor, text) \
               SELECT v.key, v.version_id, ord, at, actor, text FROM v, \
               unnest($14::bigint[], $15::text[], $16::text[]) WITH ORDINALITY AS cm(at, actor, text, ord)), \
         s AS (INSERT INTO version_search (key, version_id, document) \
               SELECT key, version_id, $19::tsvector FROM v WHERE $19 IS NOT NULL), \
         e AS (INSERT INTO outbox (event_id, type, key, at, payload) \
               SELECT * FROM unnest($20::text[], $21::text[], $22::text[], $23::bigint[], $24::text[])) \
         INSERT INTO audit (at, actor, action, key, version_id, detail) \
         SELECT $9, $10, $17, key, version_id, $18::jsonb FROM v",
    )
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
    .bind(becomes_latest)
    .bind(tag_names)
    .bind(tag_values)
    .bind(comment_at)
    .bind(comment_actors)
    .bind(comment_texts)
    .bind(new.action)
    .bind(new.audit_detail.to_string())
    .bind(document)
    .bind(columns.ids)
    .bind(columns.types)
    .bind(columns.keys)
    .bind(columns.times)
    .bind(columns.payloads)
    .bind(committed.retention.map(|r| r.mode.as_str()))
    .bind(committed.retention.map(|r| r.until.as_micros()))
    .bind(committed.legal_hold)
    .execute(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::conflict(format!("version {version_id} of {key} already exists"))
        }
        _ => db_error("recording the version", e),
    })?;
    hot::hold(Conn::from(&mut *conn), new, &committed).await?;
    Ok(committed)
}

/// The key's current version (id, delete marker, ETag), and where the new
/// version's bytes are once it holds a reference on their blob.
///
/// With a fresh copy (`new_path`), the blob row is created, or its count goes
/// up; a damaged stored copy is replaced by the fresh one (healed). Without
/// one, the blob must be stored and sound, else no path comes back. Each is a
/// single-row change, so a concurrent removal of the last reference either
/// happens before (and the fresh copy makes a new row) or waits for this
/// transaction. The caller holds the key's lock, so the current version read
/// here stays current.
pub(super) async fn read_current_and_reference_blob(
    conn: &mut PgConnection,
    key: &str,
    blob: Option<&BlobRef>,
    created_at: Timestamp,
) -> Result<(Option<String>, Option<bool>, Option<String>, Option<String>)> {
    let reference = match blob {
        None => "SELECT NULL::text AS locator",
        Some(b) if b.new_path.is_some() => {
            "INSERT INTO blobs (sha256, md5, size, locator, refcount, created_at, data_key) \
             VALUES ($2, $3, $4, $5, 1, $6, $7) \
             ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1, \
               locator = CASE WHEN blobs.damaged IS NULL THEN blobs.locator ELSE excluded.locator END, \
               data_key = CASE WHEN blobs.damaged IS NULL THEN blobs.data_key ELSE excluded.data_key END, \
               damaged = NULL \
             RETURNING locator"
        }
        Some(_) => "UPDATE blobs SET refcount = refcount + 1 WHERE sha256 = $2 AND damaged IS NULL RETURNING locator",
    };
    let sql = format!(
        "WITH b AS ({reference}) SELECT l.version_id, l.is_delete_marker, v.etag, (SELECT locator FROM b) \
         FROM (SELECT 1) one LEFT JOIN latest l ON l.key = $1 \
         LEFT JOIN versions v ON v.key = l.key AND v.version_id = l.version_id"
    );
    let mut query = sqlx::query_as(&sql).bind(key);
    if let Some(blob) = blob {
        query = query.bind(&blob.sha256);
        if let Some(fresh) = &blob.new_path {
            query = query
                .bind(&blob.md5)
                .bind(to_i64(blob.size))
                .bind(fresh)
                .bind(created_at.as_micros())
                .bind(&blob.data_key);
        }
    }
    query
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("reading the current version", e))
}

/// Why a version could not reference stored content: it is damaged, or
/// gone. A sound row found now was deleted and made again by other writers
/// since the reference was tried: gone too, for this put, which then
/// stores its own copy.
pub(super) async fn unreferenced_blob_error(conn: &mut PgConnection, key: &str, sha256: &str) -> Error {
    let damage: Result<Option<Option<String>>, _> = sqlx::query_scalar("SELECT damaged FROM blobs WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(&mut *conn)
        .await;
    match damage {
        Err(e) => db_error("reading the blob", e),
        Ok(Some(Some(problem))) => Error::new(
            ErrorKind::IntegrityMismatch,
            format!("the content of {key} is damaged ({problem})"),
        ),
        Ok(Some(None) | None) => Error::not_found(format!("the content of {key} is no longer stored")),
    }
}

pub(super) async fn apply_delete_version(
    conn: &mut PgConnection,
    key: &ObjectKey,
    version_id: &VersionId,
    actor: &str,
    bypass_governance: bool,
) -> Result<DeletedVersion> {
    let found = reads::version(Conn::from(&mut *conn), key.as_str(), version_id.as_str()).await?;
    let version = plan::named_version(found, key, version_id)?;
    let bypassed = plan::check_removal(&version, bypass_governance, Timestamp::now())?;
    remove_version(conn, version, "delete_version", actor, bypassed).await
}

/// Remove `version` (its tags and comments go with it), moving the latest
/// pointer to the key's next newest version if it was the latest, and release
/// its blob. The caller holds the key's lock.
pub(super) async fn remove_version(
    conn: &mut PgConnection,
    version: ObjectVersion,
    action: &str,
    actor: &str,
    bypassed: bool,
) -> Result<DeletedVersion> {
    let key = version.key.as_str();
    let version_id = version.version_id.as_str();
    if version.is_latest {
        sqlx::query("DELETE FROM latest WHERE key = $1")
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error("moving the latest pointer", e))?;
    }
    let detail = plan::removal_detail(&version, bypassed);
    sqlx::query(
        "WITH gone AS (DELETE FROM versions WHERE key = $1 AND version_id = $2 RETURNING key, version_id) \
         INSERT INTO audit (at, actor, action, key, version_id, detail) \
         SELECT $3, $4, $5, key, version_id, $6::jsonb FROM gone",
    )
    .bind(key)
    .bind(version_id)
    .bind(Timestamp::now().as_micros())
    .bind(actor)
    .bind(action)
    .bind(detail.to_string())
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error("removing the version", e))?;
    if version.is_latest {
        sqlx::query(
            "INSERT INTO latest (key, version_id, is_delete_marker) \
             SELECT key, version_id, is_delete_marker FROM versions WHERE key = $1 \
             ORDER BY version_id DESC LIMIT 1",
        )
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("moving the latest pointer", e))?;
    }
    let unreferenced_blob = match &version.sha256 {
        None => None,
        Some(sha256) => release_blob(conn, sha256).await?,
    };
    let event = built_in::removed_version(&version, action, actor, Timestamp::now());
    outbox::insert_events(conn, &[event]).await?;
    Ok(DeletedVersion {
        version,
        unreferenced_blob,
    })
}

/// Drop one reference on a blob; the last one takes the row with it, and its
/// path is returned. The row is locked first: two transactions releasing the
/// same blob (for different keys) then take turns, and each sees the count
/// the other left.
pub(super) async fn release_blob(conn: &mut PgConnection, sha256: &str) -> Result<Option<String>> {
    let failed = |e| db_error("releasing the blob", e);
    let refcount: i64 = sqlx::query_scalar("SELECT refcount FROM blobs WHERE sha256 = $1 FOR UPDATE")
        .bind(sha256)
        .fetch_one(&mut *conn)
        .await
        .map_err(failed)?;
    if refcount > 1 {
        sqlx::query("UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = $1")
            .bind(sha256)
            .execute(&mut *conn)
            .await
            .map_err(failed)?;
        return Ok(None);
    }
    sqlx::query_scalar("DELETE FROM blobs WHERE sha256 = $1 RETURNING locator")
        .bind(sha256)
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed)
}

pub(super) async fn apply_prune(
    conn: &mut PgConnection,
    key: &ObjectKey,
    policy: PrunePolicy,
    actor: &str,
    dry_run: bool,
) -> Result<Pruned> {
    plan::check_prune(key, policy)?;
    let versions = reads::versions(Conn::from(&mut *conn), key.as_str(), None).await?;
    let PrunePlan { mut doomed, held } = plan::plan_prune(key, versions, policy, Timestamp::now())?;
    if dry_run {
        let removed = reads::dry_run_removals(Conn::from(&mut *conn), doomed).await?;
        return Ok(Pruned { removed, held });
    }
    // Blobs are released in hash order, so two prunes sharing blobs cannot deadlock.
    doomed.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    let mut removed = Vec::with_capacity(doomed.len());
    for version in doomed {
        removed.push(remove_version(conn, version, "prune", actor, false).await?);
    }
    removed.sort_by(|a, b| b.version.version_id.cmp(&a.version.version_id));
    Ok(Pruned { removed, held })
}

pub(super) async fn apply_annotate(
    conn: &mut PgConnection,
    key: &ObjectKey,
    version_id: &VersionId,
    annotation: &Annotation,
    actor: &str,
) -> Result<ObjectVersion> {
    let (k, v) = (key.as_str(), version_id.as_str());
    let version = plan::named_version(reads::version(Conn::from(&mut *conn), k, v).await?, key, version_id)?;
    let AnnotatePlan {
        version,
        comment,
        document,
        protection,
        audit,
        event,
    } = plan::plan_annotate(version, annotation, actor, Timestamp::now())?;
    if let Some(protection) = &protection {
        writes::set_protection(Conn::from(&mut *conn), k, v, protection).await?;
    }
    if let Annotation::Tags { set, remove } = annotation {
        let (names, values): (Vec<&str>, Vec<&str>) = set.iter().map(|(n, v)| (n.as_str(), v.as_str())).unzip();
        sqlx::query(
            "WITH gone AS (DELETE FROM version_tags WHERE key = $1 AND version_id = $2 AND name = ANY($3)) \
             INSERT INTO version_tags (key, version_id, name, value) \
             SELECT $1, $2, n, val FROM unnest($4::text[], $5::text[]) AS tag(n, val) \
             ON CONFLICT (key, version_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(k)
        .bind(v)
        .bind(remove)
        .bind(names)
        .bind(values)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("tagging the version", e))?;
    }
    if let Some(comment) = &comment {
        sqlx::query(
            "INSERT INTO version_comments (key, version_id, seq, at, actor, text) \
             SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5 FROM version_comments \
             WHERE key = $1 AND version_id = $2",
        )
        .bind(k)
        .bind(v)
        .bind(comment.at.as_micros())
        .bind(&comment.actor)
        .bind(&comment.text)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("commenting on the version", e))?;
    }
    if let Some(document) = document {
        sqlx::query("UPDATE version_search SET document = $3::tsvector WHERE key = $1 AND version_id = $2")
            .bind(k)
            .bind(v)
            .bind(search::tsvector_literal(&document))
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error("indexing the version", e))?;
    }
    insert_audit(conn, &audit).await?;
    outbox::insert_events(conn, &[event]).await?;
    Ok(version)
}

/// Write one audit row.
pub(super) async fn insert_audit(conn: &mut PgConnection, row: &AuditRecord) -> Result<()> {
    sqlx::query("INSERT INTO audit (at, actor, action, key, version_id, detail) VALUES ($1, $2, $3, $4, $5, $6::jsonb)")
        .bind(row.at.as_micros())
        .bind(&row.actor)
        .bind(&row.action)
        .bind(&row.key)
        .bind(&row.version_id)
        .bind(row.detail.to_string())
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| db_error("writing the audit log", e))
}

pub(super) async fn apply_repair(conn: &mut PgConnection, repair: &Repair, actor: &str) -> Result<()> {
    match plan::plan_repair(repair, actor, Timestamp::now()) {
        // One audit row for each version whose content this is.
        RepairPlan::MarkDamaged {
            sha256,
            problem,
            at,
            actor,
            detail,
        } => sqlx::query(
            "WITH marked AS (UPDATE blobs SET damaged = $1 WHERE sha256 = $2) \
             INSERT INTO audit (at, actor, action, key, version_id, detail) \
             SELECT $3, $4, 'repair', key, version_id, $5::jsonb FROM versions WHERE blob_sha256 = $2",
        )
        .bind(problem)
        .bind(sha256)
        .bind(at.as_micros())
        .bind(actor)
        .bind(detail.to_string())
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| db_error("recording a repair", e)),
        RepairPlan::Place {
            sha256,
            placement,
            audit,
        } => {
            writes::set_placement(Conn::from(&mut *conn), &sha256, placement.as_deref()).await?;
            insert_audit(conn, &audit).await
        }
        RepairPlan::Restore {
            sha256,
            pending,
            audit,
            event,
        } => {
            writes::set_restore_pending(Conn::from(&mut *conn), &sha256, pending.as_deref()).await?;
            if let Some(event) = event {
                outbox::insert_events(conn, &[event]).await?;
            }
            insert_audit(conn, &audit).await
        }
        RepairPlan::DataKey { sha256, data_key } => {
            writes::set_data_key(Conn::from(&mut *conn), &sha256, &data_key).await
        }
        RepairPlan::Setting {
            name,
            value,
            if_absent,
            audit,
        } => {
            writes::set_setting(Conn::from(&mut *conn), name, value.as_deref(), if_absent).await?;
            match audit {
                Some(audit) => insert_audit(conn, &audit).await,
                None => Ok(()),
            }
        }
        RepairPlan::Audit(row) => insert_audit(conn, &row).await,
    }
}

/// Remove up to [`PURGE_BATCH`] audit rows of `purge` (older than its line,
/// no newer than its `up_to_id`), oldest first, and record that in an
/// `audit_purge` row. The transaction-local setting lets the
/// `audit_no_delete` trigger pass these deletes only.
pub(super) async fn apply_purge_audit(conn: &mut PgConnection, purge: &PurgePlan) -> Result<u64> {
    let failed = |e| db_error("purging the audit log", e);
    sqlx::query("SELECT set_config('coffer.audit_purge_before', $1, true)")
        .bind(purge.before.as_micros().to_string())
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
    let removed = writes::delete_audit_batch(Conn::from(&mut *conn), purge).await?;
    sqlx::query("SELECT set_config('coffer.audit_purge_before', '', true)")
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
    insert_audit(conn, &purge.record(removed, Timestamp::now())).await?;
    Ok(removed)
}
