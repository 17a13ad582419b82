//! The backend suite: what every [`Backend`] must do.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::{Context, Outcome, unique};
use crate::backend::Backend;
use crate::body::ByteStream;
use crate::error::{ErrorKind, Result};

fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
    futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed()
}

async fn read_all(backend: &dyn Backend, path: &str, range: Option<std::ops::Range<u64>>) -> Result<Vec<u8>> {
    let chunks: Vec<Bytes> = backend.read(path, range).await?.try_collect().await?;
    Ok(chunks.concat())
}

/// Run every backend check against `backend`.
pub async fn backend_suite(backend: &dyn Backend) -> Outcome {
    backend_write_read_roundtrip(backend).await?;
    backend_ranged_reads(backend).await?;
    backend_stat_and_delete(backend).await?;
    backend_rename_replaces_target(backend).await?;
    backend_list_finds_every_object(backend).await?;
    backend_failed_write_reports_error(backend).await?;
    backend_deferred_writes_after_sync(backend).await?;
    backend.health().await.ctx("health")?;
    Ok(())
}

/// Bytes written in many chunks read back identical; empty objects work.
pub async fn backend_write_read_roundtrip(backend: &dyn Backend) -> Outcome {
    let path = unique("conformance/roundtrip");
    let chunks: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100_000 + usize::from(i)]).collect();
    let expected = chunks.concat();
    let written = backend.write(&path, body(chunks)).await.ctx("write")?;
    check!(
        written == expected.len() as u64,
        "write returned {written}, wrote {}",
        expected.len()
    );
    check!(
        read_all(backend, &path, None).await.ctx("read")? == expected,
        "bytes read back differ"
    );
    let empty = unique("conformance/empty");
    backend.write(&empty, body(vec![])).await.ctx("write empty")?;
    check!(
        read_all(backend, &empty, None).await.ctx("read empty")?.is_empty(),
        "empty object not empty"
    );
    check!(
        backend.stat(&empty).await.ctx("stat empty")? == Some(0),
        "empty object has no size 0"
    );
    Ok(())
}

/// Ranges return exactly the bytes asked for.
pub async fn backend_ranged_reads(backend: &dyn Backend) -> Outcome {
    let path = unique("conformance/range");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    backend.write(&path, body(vec![data.clone()])).await.ctx("write")?;
    for range in [0..1, 0..10_000, 17..4_000, 9_999..10_000] {
        let got = read_all(backend, &path, Some(range.clone())).await.ctx("ranged read")?;
        check!(
            got == data[range.start as usize..range.end as usize],
            "range {range:?} returned wrong bytes"
        );
    }
    Ok(())
}

/// `stat` sees sizes; `delete` removes and is idempotent; missing paths read as NotFound.
pub async fn backend_stat_and_delete(backend: &dyn Backend) -> Outcome {
    let path = unique("conformance/stat");
    check!(
        backend.stat(&path).await.ctx("stat missing")?.is_none(),
        "missing path has a size"
    );
    backend.write(&path, body(vec![vec![7; 1234]])).await.ctx("write")?;
    check!(
        backend.stat(&path).await.ctx("stat")? == Some(1234),
        "stat reports the wrong size"
    );
    backend.delete(&path).await.ctx("delete")?;
    check!(
        backend.stat(&path).await.ctx("stat deleted")?.is_none(),
        "deleted path still exists"
    );
    backend.delete(&path).await.ctx("second delete")?;
    match backend.read(&path, None).await {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "reading a missing path failed with {:?}, not NotFound",
            e.kind()
        )),
        Ok(stream) => match stream.try_collect::<Vec<Bytes>>().await {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => Err(format!("reading a missing path gave {:?}", other.map(|c| c.len()))),
        },
    }
}

/// Deferred writes read back like any other, in new directories too, and
/// `sync` succeeds; a deferred write of a failing body leaves nothing readable.
pub async fn backend_deferred_writes_after_sync(backend: &dyn Backend) -> Outcome {
    let paths: Vec<String> = (0..3).map(|i| unique(&format!("conformance/deferred/{i}"))).collect();
    for (i, path) in paths.iter().enumerate() {
        let written = backend
            .write_deferred(path, body(vec![vec![i as u8; 1000 * (i + 1)]]))
            .await
            .ctx("write_deferred")?;
        check!(written == 1000 * (i as u64 + 1), "write_deferred returned {written}");
    }
    backend.sync().await.ctx("sync")?;
    for (i, path) in paths.iter().enumerate() {
        check!(
            read_all(backend, path, None).await.ctx("read deferred")? == vec![i as u8; 1000 * (i + 1)],
            "deferred bytes read back differ"
        );
    }
    let failing = unique("conformance/deferred-failing");
    let broken: ByteStream = futures::stream::iter([
        Ok(Bytes::from_static(b"partial")),
        Err(crate::Error::new(ErrorKind::Io, "the source broke")),
    ])
    .boxed();
    check!(
        backend.write_deferred(&failing, broken).await.is_err(),
        "a failing body's deferred write succeeded"
    );
    check!(
        backend.stat(&failing).await.ctx("stat failed write")?.is_none(),
        "a failed deferred write left an object"
    );
    Ok(())
}

/// `rename` moves bytes and replaces an existing target.
pub async fn backend_rename_replaces_target(backend: &dyn Backend) -> Outcome {
    let from = unique("conformance/rename-from");
    let to = unique("conformance/rename-to/deeper");
    backend
        .write(&to, body(vec![b"old".to_vec()]))
        .await
        .ctx("write target")?;
    backend
        .write(&from, body(vec![b"new content".to_vec()]))
        .await
        .ctx("write source")?;
    backend.rename(&from, &to).await.ctx("rename")?;
    check!(
        backend.stat(&from).await.ctx("stat source")?.is_none(),
        "rename left the source behind"
    );
    check!(
        read_all(backend, &to, None).await.ctx("read target")? == b"new content",
        "rename target has wrong bytes"
    );
    Ok(())
}

/// `list` yields every object under a prefix, nested ones included, and nothing else.
pub async fn backend_list_finds_every_object(backend: &dyn Backend) -> Outcome {
    let root = unique("conformance/list");
    let mut expected: Vec<String> = ["a", "b/c", "b/d/e"].iter().map(|p| format!("{root}/{p}")).collect();
    for path in &expected {
        backend.write(path, body(vec![b"x".to_vec()])).await.ctx("write")?;
    }
    backend
        .write(&format!("{root}-sibling"), body(vec![b"x".to_vec()]))
        .await
        .ctx("write sibling")?;
    let mut listed: Vec<String> = backend
        .list(&format!("{root}/"))
        .await
        .ctx("list")?
        .try_collect()
        .await
        .ctx("list")?;
    listed.sort();
    expected.sort();
    check!(listed == expected, "list returned {listed:?}, expected {expected:?}");
    let none: Vec<String> = backend
        .list(&unique("conformance/nothing-here"))
        .await
        .ctx("list empty")?
        .try_collect()
        .await
        .ctx("list empty")?;
    check!(none.is_empty(), "listing an empty prefix returned {none:?}");
    Ok(())
}

/// A body that fails mid-way fails the write with the body's error.
pub async fn backend_failed_write_reports_error(backend: &dyn Backend) -> Outcome {
    let path = unique("conformance/failed");
    let failing: ByteStream = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(crate::Error::new(ErrorKind::Io, "input truncated")),
    ])
    .boxed();
    match backend.write(&path, failing).await {
        Err(e) => check!(
            e.kind() == ErrorKind::Io,
            "failed write reported {:?}, not the body's Io error",
            e.kind()
        ),
        Ok(n) => return Err(format!("a write whose body failed succeeded with {n} bytes")),
    }
    Ok(())
}
