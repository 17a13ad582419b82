//! Whole-store checks, for the suites of remote backends.

use bytes::Bytes;
use futures::StreamExt;

use super::{Context, Outcome};
use crate::error::Result;

/// The store's story on any backend, for the suites of remote backends:
/// versions, copy, delete, rollback, a 12 MiB object sent in parts and read
/// back byte for byte, a clean verify and a healthy backend. `store` must
/// be empty.
pub async fn store_on_backend(store: &crate::Store) -> Outcome {
    use crate::store::PutOptions;
    let first = store
        .put_bytes("docs/a.txt", "one", PutOptions::default())
        .await
        .ctx("put 1")?;
    store
        .put_bytes("docs/a.txt", "two", PutOptions::default())
        .await
        .ctx("put 2")?;
    let (_, old) = store
        .get_bytes("docs/a.txt", Some(&first.version_id))
        .await
        .ctx("get v1")?;
    check!(&old[..] == b"one", "version 1 reads back {old:?}");
    let (_, new) = store.get_bytes("docs/a.txt", None).await.ctx("get latest")?;
    check!(&new[..] == b"two", "the latest reads back {new:?}");
    store
        .copy("docs/a.txt", "docs/b.txt", Default::default())
        .await
        .ctx("copy")?;
    store.delete("docs/a.txt").await.ctx("delete")?;
    check!(!store.exists("docs/a.txt").await.ctx("exists")?, "a deleted key exists");
    let versions = store.versions("docs/a.txt").await.ctx("versions")?;
    check!(
        versions.len() == 3,
        "{} versions after two puts and a delete",
        versions.len()
    );
    let rolled = store
        .rollback("docs/a.txt", &first.version_id, None)
        .await
        .ctx("rollback")?;
    check!(rolled.sha256 == first.sha256, "a rollback shares the old blob");

    let large: Vec<u8> = (0..12u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let chunks: Vec<Result<Bytes>> = large.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let version = store
        .put_stream(
            "big/blob.bin",
            futures::stream::iter(chunks).boxed(),
            PutOptions::default(),
        )
        .await
        .ctx("large put")?;
    check!(
        version.size == large.len() as u64,
        "the large version has {} bytes",
        version.size
    );
    let (_, back) = store.get_bytes("big/blob.bin", None).await.ctx("large get")?;
    check!(back[..] == large[..], "the large object reads back different");

    verify_clean(store).await?;
    let health = store.health().await;
    check!(health.ok, "the backend is not healthy: {health:?}");
    Ok(())
}

/// `store` verifies clean: every referenced blob and manifest is sound, and
/// nothing is orphaned, however new (no minimum age).
pub async fn verify_clean(store: &crate::Store) -> Outcome {
    let report = store
        .verify(&crate::store::VerifyOptions {
            min_orphan_age: std::time::Duration::ZERO,
            ..crate::store::VerifyOptions::default()
        })
        .await
        .ctx("verify")?;
    check!(report.is_clean(), "verify found problems: {report:?}");
    Ok(())
}
