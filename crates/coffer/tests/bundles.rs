//! Bundles: resources streamed into a directory or one zip, unzipped on the
//! way, completed once with their audit row and event, recovered at run
//! start; on the embedded default and on a PostgreSQL catalog.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use coffer::bundle::{BundleConfig, BundleRef, Layout};
use coffer::events::EventFilter;
use coffer::{AuditQuery, ByteStream, ErrorKind, Event, Store};
use futures::{StreamExt, TryStreamExt};

#[macro_use]
mod common;

use common::Fixture;

on_both_catalogs!(
    a_directory_bundle_keeps_its_resources_and_announces_completion_once,
    a_zip_bundle_is_one_zip_that_standard_tools_read,
    unzip_expands_gzip_and_zip_resources,
    hostile_archives_and_broken_streams_leave_nothing,
    abort_removes_everything_stored,
    recovery_runs_pending_callbacks_and_lists_open_bundles,
    a_zip_bundle_reopened_elsewhere_stages_resources_until_completion,
    a_store_that_requires_sqs_refuses_to_complete_without_it,
);

fn body(bytes: impl Into<Bytes>) -> ByteStream {
    let bytes: Bytes = bytes.into();
    let chunks: Vec<coffer::Result<Bytes>> = bytes.chunks(7_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures::stream::iter(chunks).boxed()
}

fn start(layout: Layout, unzip: bool) -> BundleRef {
    let mut meta = serde_json::Map::new();
    meta.insert("source".into(), "us-fl".into());
    BundleRef {
        primary_url: Some("https://example.com/".to_owned()),
        recipe_id: Some("fr".to_owned()),
        meta,
        layout: Some(layout),
        unzip: Some(unzip),
    }
}

fn metadata() -> serde_json::Map<String, serde_json::Value> {
    let mut metadata = serde_json::Map::new();
    metadata.insert("run_id".into(), "run_123".into());
    metadata
}

async fn read(store: &Store, resource: &coffer::bundle::BundleResource) -> Vec<u8> {
    let chunks: Vec<Bytes> = store
        .read_bundle_resource(resource)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}

/// Every key the catalog lists under `prefix`.
async fn keys(store: &Store, prefix: &str) -> Vec<String> {
    store
        .list_stream(prefix)
        .map_ok(|v| v.key.to_string())
        .try_collect()
        .await
        .unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

async fn a_directory_bundle_keeps_its_resources_and_announces_completion_once(f: Fixture) {
    let store = &f.store;
    let seen: Arc<std::sync::Mutex<Vec<Event>>> = Arc::default();
    let sink = seen.clone();
    let filter = EventFilter {
        events: vec!["bundle.completed".to_owned()],
        ..EventFilter::default()
    };
    store
        .on_event("announce", filter, true, move |event| {
            sink.lock().unwrap().push(event);
            async { Ok(()) }
        })
        .await
        .unwrap();
    let callbacks = Arc::new(AtomicUsize::new(0));
    let counter = callbacks.clone();
    store.on_bundle_complete(Some("fr"), move |bundle| {
        assert_eq!(bundle.recipe_id.as_deref(), Some("fr"));
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    });
    store.on_bundle_complete(Some("another-recipe"), |_| async {
        panic!("a callback of another recipe ran")
    });

    let bundle = store.start_bundle(start(Layout::Directory, false)).await.unwrap();
    let id = bundle.id().to_owned();
    assert_eq!(bundle.storage_key(), format!("bundles/{id}/"));
    let html = b"<html><body>hello</body></html>".to_vec();
    let json = br#"{"siren": "123456789"}"#.to_vec();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let (a, b, c, d) = tokio::join!(
        bundle.add_resource("https://example.com/", Some("text/html"), 200, body(html.clone())),
        bundle.add_resource(
            "https://example.com/api?q=1",
            Some("application/json"),
            200,
            body(json.clone())
        ),
        bundle.add_resource("https://example.com/big.bin", None, 200, body(big.clone())),
        bundle.add_resource("https://example.com/missing", Some("text/html"), 404, body(Vec::new())),
    );
    for added in [&a, &b, &c, &d] {
        assert_eq!(added.as_ref().unwrap().len(), 1);
    }
    let completed = bundle.complete(metadata()).await.unwrap();
    assert!(!completed.is_open() && !completed.callbacks_pending);
    assert_eq!(completed.resources_count, 4);
    assert_eq!(callbacks.load(Ordering::SeqCst), 1, "the recipe's callback ran once");

    let resources = store.bundle_resources(&id).await.unwrap();
    let by_url = |url: &str| resources.iter().find(|r| r.url == url).unwrap();
    assert_eq!(read(store, by_url("https://example.com/")).await, html);
    assert_eq!(read(store, by_url("https://example.com/api?q=1")).await, json);
    assert_eq!(read(store, by_url("https://example.com/big.bin")).await, big);
    assert_eq!(by_url("https://example.com/missing").status_code, 404);
    assert!(by_url("https://example.com/").name.ends_with("-index.html"));
    assert_eq!(
        by_url("https://example.com/big.bin").sha256,
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &big))
    );
    // Each resource is an object under the bundle's prefix, and bundle.json lists them.
    let mut listed = keys(store, &format!("bundles/{id}/")).await;
    listed.sort();
    assert_eq!(listed.len(), 5, "{listed:?}");
    let (_, manifest) = store
        .get_bytes(&format!("bundles/{id}/bundle.json"), None)
        .await
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["resources"].as_array().unwrap().len(), 4);
    assert_eq!(manifest["metadata"]["run_id"], "run_123");

    // The event carries the users' message, once.
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    let data = &events[0].data;
    assert_eq!(data["bundle_id"], serde_json::json!(id));
    assert_eq!(data["recipe_id"], "fr");
    assert_eq!(data["primary_url"], "https://example.com/");
    assert_eq!(data["resources_count"], 4);
    assert_eq!(data["storage_key"], serde_json::json!(format!("bundles/{id}/")));
    assert_eq!(data["metadata"]["run_id"], "run_123");
    assert!(data["completion_timestamp"].is_string());

    // Completion happens once.
    let again = store.complete_bundle(&id, metadata()).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict, "{again}");
    let late = store.open_bundle(&id).await.unwrap_err();
    assert_eq!(late.kind(), ErrorKind::Conflict);
    let actions: Vec<String> = store
        .audit(&AuditQuery {
            oldest_first: true,
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("bundle_"))
        .collect();
    assert_eq!(actions, ["bundle_start", "bundle_complete"]);
    coffer::testkit::store::verify_clean(store).await.unwrap();
}

async fn a_zip_bundle_is_one_zip_that_standard_tools_read(f: Fixture) {
    let store = &f.store;
    let bundle = store.start_bundle(start(Layout::Zip, false)).await.unwrap();
    let id = bundle.id().to_owned();
    assert_eq!(bundle.storage_key(), format!("bundles/{id}/resources.zip"));
    let html = b"<html>hello hello hello hello hello</html>".repeat(1000);
    let png: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 13) as u8).collect();
    let (a, b, c) = tokio::join!(
        bundle.add_resource("https://example.com/", Some("text/html"), 200, body(html.clone())),
        bundle.add_resource(
            "https://example.com/logo.png",
            Some("image/png"),
            200,
            body(png.clone())
        ),
        bundle.add_resource("https://example.com/big.csv", Some("text/csv"), 200, body(big.clone())),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    // Nothing is committed before completion: the zip is still being written.
    assert!(keys(store, &format!("bundles/{id}/")).await.is_empty());
    let completed = bundle.complete(metadata()).await.unwrap();
    assert!(completed.version_id.is_some());
    assert_eq!(
        keys(store, &format!("bundles/{id}/")).await,
        [format!("bundles/{id}/resources.zip")]
    );

    let resources = store.bundle_resources(&id).await.unwrap();
    let png_resource = resources.iter().find(|r| r.url.ends_with("logo.png")).unwrap();
    assert!(
        !png_resource.placement.unwrap().deflated,
        "compressed content is stored as it is"
    );
    let html_resource = resources.iter().find(|r| r.url == "https://example.com/").unwrap();
    assert!(html_resource.placement.unwrap().deflated);
    // Each resource reads back from its place in the zip.
    assert_eq!(read(store, html_resource).await, html);
    assert_eq!(read(store, png_resource).await, png);
    assert_eq!(
        read(store, resources.iter().find(|r| r.url.ends_with("big.csv")).unwrap()).await,
        big
    );

    // The zip itself, checked by the zip crate, Python and unzip.
    let (_, zip_bytes) = store.get_bytes(&completed.storage_key, None).await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.to_vec())).unwrap();
    assert_eq!(archive.len(), 4);
    let last = archive.by_index(3).unwrap().name().unwrap().to_string();
    assert_eq!(last, "bundle.json", "the manifest entry comes last");
    let mut manifest = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("bundle.json").unwrap(), &mut manifest).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let listed: Vec<&str> = manifest["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for resource in &resources {
        assert!(listed.contains(&resource.name.as_str()), "{listed:?}");
        let mut entry = archive.by_name(&resource.name).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        assert_eq!(data.len() as u64, resource.size);
    }
    let path = f.dir.path().join("bundle.zip");
    std::fs::write(&path, &zip_bytes).unwrap();
    let python = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(len(z.namelist()))")
        .arg(&path)
        .output()
        .unwrap();
    assert!(python.status.success(), "{}", String::from_utf8_lossy(&python.stderr));
    assert_eq!(String::from_utf8_lossy(&python.stdout).trim(), "4");
    let unzip = std::process::Command::new("unzip").arg("-t").arg(&path).output();
    match unzip {
        Ok(out) => assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout)),
        Err(_) if !coffer::testkit::services::services_required() => eprintln!("unzip is not installed: skipped"),
        Err(e) => panic!("unzip is required (scripts/services/clients.sh installs it): {e}"),
    }
    coffer::testkit::store::verify_clean(store).await.unwrap();
}

async fn unzip_expands_gzip_and_zip_resources(f: Fixture) {
    let store = &f.store;
    for layout in [Layout::Directory, Layout::Zip] {
        let bundle = store.start_bundle(start(layout, true)).await.unwrap();
        let id = bundle.id().to_owned();
        let json = br#"{"records": [1, 2, 3]}"#.repeat(500);
        let added = bundle
            .add_resource(
                "https://example.com/data.json.gz",
                Some("application/gzip"),
                200,
                body(gzip(&json)),
            )
            .await
            .unwrap();
        assert_eq!(added.len(), 1);
        assert!(added[0].name.ends_with("-data.json"), "{}", added[0].name);
        assert_eq!(added[0].size, json.len() as u64);
        let archive = zip_of(&[
            ("top.txt", b"top"),
            ("folder/inner/deep.csv", b"a,b\n1,2\n"),
            ("folder/b.txt", b""),
        ]);
        let entries = bundle
            .add_resource(
                "https://example.com/archive.zip",
                Some("application/zip"),
                200,
                body(archive),
            )
            .await
            .unwrap();
        let names: Vec<&str> = entries.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(
            names.iter().any(|n| n.ends_with("-archive.zip/folder/inner/deep.csv")),
            "{names:?}"
        );
        // A docx is a document, not an archive to expand.
        let docx = zip_of(&[("word/document.xml", b"<w/>")]);
        let kept = bundle
            .add_resource(
                "https://example.com/report.docx",
                Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
                200,
                body(docx.clone()),
            )
            .await
            .unwrap();
        assert_eq!(kept.len(), 1);
        bundle.complete(metadata()).await.unwrap();
        let resources = store.bundle_resources(&id).await.unwrap();
        assert_eq!(resources.len(), 5);
        let find = |suffix: &str| resources.iter().find(|r| r.name.ends_with(suffix)).unwrap();
        assert_eq!(read(store, find("-data.json")).await, json);
        assert_eq!(read(store, find("folder/inner/deep.csv")).await, b"a,b\n1,2\n");
        assert_eq!(read(store, find("top.txt")).await, b"top");
        assert_eq!(read(store, find("folder/b.txt")).await, b"");
        assert_eq!(read(store, find("report.docx")).await, docx);
    }
    coffer::testkit::store::verify_clean(store).await.unwrap();
}

async fn hostile_archives_and_broken_streams_leave_nothing(f: Fixture) {
    let store = f.store.with_bundles(BundleConfig {
        max_expanded_bytes: 1 << 20,
        ..BundleConfig::default()
    });
    let zeros = vec![0u8; 8 << 20];
    let zip_bomb = zip_of(&[("zeros.bin", &zeros)]);
    let mut slip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    slip.start_file("../../etc/x", zip::write::SimpleFileOptions::default())
        .unwrap();
    slip.write_all(b"owned").unwrap();
    let slip = slip.finish().unwrap().into_inner();
    let mut absolute = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    absolute
        .start_file("/etc/x", zip::write::SimpleFileOptions::default())
        .unwrap();
    absolute.write_all(b"owned").unwrap();
    let absolute = absolute.finish().unwrap().into_inner();
    let mut link = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    link.add_symlink("passwd", "/etc/passwd", zip::write::SimpleFileOptions::default())
        .unwrap();
    let link = link.finish().unwrap().into_inner();
    let mut locked = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().with_aes_encryption(zip::AesMode::Aes256, "secret");
    locked.start_file("secret.txt", options).unwrap();
    locked.write_all(b"hidden").unwrap();
    let locked = locked.finish().unwrap().into_inner();
    let good = zip_of(&[("a.txt", b"aaaa"), ("b.txt", b"bbbb")]);
    let truncated = good[..good.len() / 2].to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zip bomb", zip_bomb, "limit"),
        ("gzip bomb", gzip(&zeros), "limit"),
        ("zip slip", slip, "escapes"),
        ("absolute path", absolute, "absolute"),
        ("symlink", link, "symlink"),
        ("encrypted entry", locked, "encrypted"),
        ("truncated zip", truncated, "not a readable zip"),
    ];
    for layout in [Layout::Directory, Layout::Zip] {
        let bundle = store.start_bundle(start(layout, true)).await.unwrap();
        let id = bundle.id().to_owned();
        for (what, bytes, expected) in &cases {
            let url = format!("https://example.com/{}", what.replace(' ', "-"));
            let err = bundle
                .add_resource(&url, None, 200, body(bytes.clone()))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
            assert!(err.message().contains(expected), "{what}: {err}");
            assert!(err.message().starts_with(&format!("resource {url}")), "{what}: {err}");
            assert!(!err.message().contains('\n'), "one line: {err}");
        }
        // A stream that breaks mid-resource.
        let broken = futures::stream::iter(vec![
            Ok(Bytes::from(vec![b'x'; 100_000])),
            Err(coffer::Error::new(ErrorKind::Io, "connection reset by peer")),
        ])
        .boxed();
        let err = bundle
            .add_resource("https://example.com/cut", Some("text/plain"), 200, broken)
            .await
            .unwrap_err();
        assert!(err.message().contains("connection reset by peer"), "{err}");
        assert!(
            store.bundle_resources(&id).await.unwrap().is_empty(),
            "no partial resource remains"
        );
        // The bundle goes on: a good resource is taken after all that.
        bundle
            .add_resource(
                "https://example.com/ok.txt",
                Some("text/plain"),
                200,
                body(&b"fine"[..]),
            )
            .await
            .unwrap();
        let completed = bundle.complete(metadata()).await.unwrap();
        assert_eq!(completed.resources_count, 1);
        let stored = keys(&store, &format!("bundles/{id}/")).await;
        assert!(
            stored.iter().all(|k| !k.contains("bomb") && !k.contains("slip")),
            "{stored:?}"
        );
    }
    // Bad input to the context itself.
    let bundle = store.start_bundle(start(Layout::Directory, false)).await.unwrap();
    for (url, status) in [("", 200), ("https://x/\n", 200), ("https://x/", 42)] {
        let err = bundle
            .add_resource(url, None, status, body(&b"x"[..]))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    bundle.abort().await.unwrap();
    coffer::testkit::store::verify_clean(&store).await.unwrap();
}

async fn abort_removes_everything_stored(f: Fixture) {
    let store = &f.store;
    for layout in [Layout::Directory, Layout::Zip] {
        let bundle = store.start_bundle(start(layout, false)).await.unwrap();
        let id = bundle.id().to_owned();
        for n in 0..3 {
            bundle
                .add_resource(
                    &format!("https://example.com/{n}.txt"),
                    None,
                    200,
                    body(vec![b'a' + n; 1000]),
                )
                .await
                .unwrap();
        }
        bundle.abort().await.unwrap();
        assert!(keys(store, &format!("bundles/{id}/")).await.is_empty());
        let gone = store.bundle_info(&id).await.unwrap_err();
        assert_eq!(gone.kind(), ErrorKind::NotFound);
    }
    // Abort from another handle, after a run left a bundle open.
    let bundle = store.start_bundle(start(Layout::Directory, false)).await.unwrap();
    bundle
        .add_resource("https://example.com/x", None, 200, body(&b"x"[..]))
        .await
        .unwrap();
    let id = bundle.id().to_owned();
    drop(bundle);
    store.abort_bundle(&id).await.unwrap();
    assert!(keys(store, "bundles/").await.is_empty());
    let done = store.start_bundle(start(Layout::Directory, false)).await.unwrap();
    let done_id = done.id().to_owned();
    done.complete(metadata()).await.unwrap();
    let err = store.abort_bundle(&done_id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    coffer::testkit::store::verify_clean(store).await.unwrap();
}

async fn recovery_runs_pending_callbacks_and_lists_open_bundles(f: Fixture) {
    let store = &f.store;
    // A run whose callback fails: the bundle is complete, its callbacks pending.
    let failing = store.with_actor("run-1");
    let tracker_down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let down = tracker_down.clone();
    failing.on_bundle_complete(None, move |_| {
        let down = down.load(Ordering::SeqCst);
        async move {
            match down {
                true => Err(coffer::Error::new(ErrorKind::Delivery, "tracker is down")),
                false => Ok(()),
            }
        }
    });
    let bundle = failing.start_bundle(start(Layout::Directory, false)).await.unwrap();
    let done_id = bundle.id().to_owned();
    let completed = bundle.complete(metadata()).await.unwrap();
    assert!(completed.callbacks_pending);
    let open = store.start_bundle(start(Layout::Zip, false)).await.unwrap();
    let open_id = open.id().to_owned();
    drop(open);

    // The tracker is back; the next run registers its callback and recovers.
    tracker_down.store(false, Ordering::SeqCst);
    let next = store.with_actor("run-2");
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    next.on_bundle_complete(Some("fr"), move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    });
    let report = next.recover_bundles(None).await.unwrap();
    assert_eq!(report.callbacks_run, std::slice::from_ref(&done_id));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(
        report.open.iter().map(|b| b.bundle_id.clone()).collect::<Vec<_>>(),
        std::slice::from_ref(&open_id)
    );
    assert!(!next.bundle_info(&done_id).await.unwrap().callbacks_pending);
    let again = next.recover_bundles(None).await.unwrap();
    assert!(again.callbacks_run.is_empty(), "callbacks run once");
    // Old open bundles can be aborted by age.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = next.recover_bundles(Some(Duration::from_millis(10))).await.unwrap();
    assert_eq!(report.aborted, [open_id]);
    assert!(report.open.is_empty());
    coffer::testkit::store::verify_clean(store).await.unwrap();
}

async fn a_zip_bundle_reopened_elsewhere_stages_resources_until_completion(f: Fixture) {
    let store = &f.store;
    let bundle = store.start_bundle(start(Layout::Zip, false)).await.unwrap();
    let id = bundle.id().to_owned();
    bundle
        .add_resource("https://example.com/lost", None, 200, body(&b"lost"[..]))
        .await
        .unwrap();
    // The run dies: what it streamed never landed.
    drop(bundle);
    let reopened = store.open_bundle(&id).await.unwrap();
    reopened
        .add_resource(
            "https://example.com/staged",
            Some("text/plain"),
            200,
            body(&b"staged"[..]),
        )
        .await
        .unwrap();
    let err = reopened.complete(metadata()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("resume"), "{err}");
    let resumed = store.resume_bundle(&id).await.unwrap();
    let completed = resumed.complete(metadata()).await.unwrap();
    assert_eq!(completed.resources_count, 1);
    let resources = store.bundle_resources(&id).await.unwrap();
    assert_eq!(resources[0].url, "https://example.com/staged");
    assert!(resources[0].key.is_none(), "the staged copy is gone: the zip holds it");
    assert_eq!(read(store, &resources[0]).await, b"staged");
    assert_eq!(
        keys(store, &format!("bundles/{id}/")).await,
        [format!("bundles/{id}/resources.zip")]
    );
    coffer::testkit::store::verify_clean(store).await.unwrap();
}

async fn a_store_that_requires_sqs_refuses_to_complete_without_it(f: Fixture) {
    let store = f.store.with_bundles(BundleConfig {
        require_sqs: true,
        ..BundleConfig::default()
    });
    let bundle = store.start_bundle(start(Layout::Directory, false)).await.unwrap();
    let id = bundle.id().to_owned();
    let err = bundle.complete(metadata()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("requires an SQS hook"), "{err}");
    assert!(store.bundle_info(&id).await.unwrap().is_open(), "nothing changed");
}
