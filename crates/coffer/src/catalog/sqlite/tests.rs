//! Tests of the SQLite engine that need its file: the audit log's guards and batched purges.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use super::*;
use crate::catalog::plan::PURGE_BATCH;
use crate::catalog::rows::to_i64;

/// Run `sql` on its own connection to the catalog's file, as a stray client would.
async fn raw(path: &Path, sql: &str) -> std::result::Result<u64, String> {
    let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .map(|done| done.rows_affected())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn only_a_purge_removes_audit_rows_and_nothing_changes_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let catalog = SqliteCatalog::open(&path).await.unwrap();
    let key = ObjectKey::new("k").unwrap();
    let version = VersionId::generate();
    catalog
        .record_read(&key, &version, "reader", serde_json::Value::Null)
        .await
        .unwrap();

    for sql in [
        "DELETE FROM audit",
        "UPDATE audit SET actor = 'someone else'",
        // A guard row lets through only rows older than its cutoff.
        "INSERT INTO audit_purge_guard (before) VALUES (1); DELETE FROM audit",
    ] {
        let err = raw(&path, sql).await.expect_err(sql);
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    let rows = catalog
        .audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor, "reader");

    let far_future = Timestamp::from_micros(i64::MAX);
    assert_eq!(
        catalog
            .purge_audit(far_future, "purger", serde_json::Value::Null, false)
            .await
            .unwrap(),
        1
    );
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_purge_guard")
        .fetch_one(&catalog.readers)
        .await
        .unwrap();
    assert_eq!(left, 0, "the guard row never outlives the purge");
    let rows = catalog
        .audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the purge keeps the row that records it");
    assert_eq!(
        (rows[0].action.as_str(), rows[0].detail["removed"].as_u64()),
        ("audit_purge", Some(1))
    );
    assert!(raw(&path, "DELETE FROM audit").await.is_err());
}

#[tokio::test]
async fn a_large_purge_runs_in_batches_each_audited() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db")).await.unwrap();
    let rows = PURGE_BATCH * 2 + 10;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
         INSERT INTO audit (at, actor, action, key, version_id, detail) SELECT i, 'old', 'put', NULL, NULL, '{}' FROM n",
    )
    .bind(to_i64(rows))
    .execute(&catalog.readers)
    .await
    .unwrap();
    let before = Timestamp::from_micros(1_000_000);
    assert_eq!(
        catalog
            .purge_audit(before, "purger", serde_json::Value::Null, true)
            .await
            .unwrap(),
        rows
    );
    assert_eq!(
        catalog
            .purge_audit(before, "purger", serde_json::Value::Null, false)
            .await
            .unwrap(),
        rows
    );
    let purges = catalog
        .audit(&AuditQuery {
            action: Some("audit_purge".into()),
            oldest_first: true,
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let removed: Vec<u64> = purges.iter().filter_map(|row| row.detail["removed"].as_u64()).collect();
    assert_eq!(removed, [PURGE_BATCH, PURGE_BATCH, 10]);
    let left = catalog
        .audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(left.iter().all(|row| row.action == "audit_purge"), "{left:?}");
}
