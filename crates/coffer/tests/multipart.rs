//! Multipart uploads and buckets, on both catalogs and on an encrypted store:
//! what an S3 client relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use bytes::Bytes;
use coffer::{AuditQuery, CompletedPart, ErrorKind, MIN_PART_SIZE, PutOptions, Store, VerifyOptions};
use futures::StreamExt;

#[macro_use]
mod common;

use common::Fixture;

on_both_catalogs!(
    parts_in_any_order_become_one_version,
    bad_completions_change_nothing,
    abort_removes_the_parts,
    buckets_are_first_segments_or_made_empty,
    parts_sent_in_order_complete_as_sent,
    completions_other_than_the_parts_sent_still_complete,
    large_uploads_have_the_etag_of_a_plain_put,
);

fn stream(bytes: Vec<u8>) -> coffer::body::ByteStream {
    futures::stream::iter(
        bytes
            .chunks(1 << 20)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
    .boxed()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn hex_md5(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

/// Upload parts 1..=n of `parts`, last first, and return what each answered.
async fn upload_all(store: &Store, upload_id: &str, parts: &[Vec<u8>]) -> Vec<CompletedPart> {
    let mut done = Vec::new();
    for (i, part) in parts.iter().enumerate().rev() {
        let number = i as u32 + 1;
        let answered = store
            .upload_part(upload_id, number, stream(part.clone()), Some(&hex_md5(part)))
            .await
            .unwrap();
        assert_eq!(answered.etag, hex_md5(part), "a part's ETag is its MD5");
        done.push(CompletedPart {
            part_number: number,
            etag: format!("\"{}\"", answered.etag),
        });
    }
    done.reverse();
    done
}

async fn parts_in_any_order_become_one_version(fixture: Fixture) {
    let store = &fixture.store;
    let mut metadata = coffer::Metadata::new();
    metadata.insert("origin".into(), "scanner".into());
    let options = PutOptions {
        content_type: Some("application/pdf".into()),
        metadata,
        ..PutOptions::default()
    };
    let upload = store.start_multipart("scans/big.pdf", &options).await.unwrap();
    let parts = vec![
        pattern(MIN_PART_SIZE as usize, 1),
        pattern(MIN_PART_SIZE as usize, 2),
        pattern(1000, 3),
    ];
    // A part uploaded twice: the second upload counts.
    store
        .upload_part(&upload.upload_id, 2, stream(vec![9; 10]), None)
        .await
        .unwrap();
    let completed = upload_all(store, &upload.upload_id, &parts).await;
    let listed = store.multipart_uploads("scans/").await.unwrap();
    assert_eq!(listed.len(), 1, "the upload is listed while in progress");
    assert_eq!(store.multipart_parts(&upload.upload_id).await.unwrap().len(), 3);

    let version = store.complete_multipart(&upload.upload_id, &completed).await.unwrap();
    let whole: Vec<u8> = parts.concat();
    assert_eq!(version.size, whole.len() as u64);
    assert_eq!(version.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(version.metadata.get("origin").map(String::as_str), Some("scanner"));
    let (_, read) = store.get_bytes("scans/big.pdf", None).await.unwrap();
    assert!(read[..] == whole[..], "the version reads back as the parts in order");
    assert!(
        store.multipart_uploads("").await.unwrap().is_empty(),
        "the upload ended"
    );
    let puts = store
        .audit(&AuditQuery {
            key: Some(coffer::ObjectKey::new("scans/big.pdf").unwrap()),
            action: Some("put".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(puts.len(), 1, "one audited put");
    let report = store.verify(&VerifyOptions::default()).await.unwrap();
    assert!(report.is_clean(), "no part is left behind: {:?}", report.problems);
}

/// Upload `parts` as parts 1..=n, in order, as S3 clients send them.
async fn upload_in_order(store: &Store, upload_id: &str, parts: &[Vec<u8>]) -> Vec<CompletedPart> {
    let mut done = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let answered = store
            .upload_part(upload_id, i as u32 + 1, stream(part.clone()), None)
            .await
            .unwrap();
        done.push(CompletedPart {
            part_number: i as u32 + 1,
            etag: answered.etag,
        });
    }
    done
}

/// `verify` finds nothing left behind, however young (what an upload
/// staged goes once it ends, a moment later when it was given up).
async fn nothing_left_behind(store: &Store) {
    let options = VerifyOptions {
        min_orphan_age: std::time::Duration::ZERO,
        ..VerifyOptions::default()
    };
    let mut report = store.verify(&options).await.unwrap();
    for _ in 0..50 {
        if report.is_clean() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        report = store.verify(&options).await.unwrap();
    }
    panic!("left behind: {:?}", report.problems);
}

/// Parts sent in order are put together while they arrive; the version is
/// the same as ever.
async fn parts_sent_in_order_complete_as_sent(fixture: Fixture) {
    use sha2::Digest;
    let store = &fixture.store;
    let upload = store
        .start_multipart("k/ordered", &PutOptions::default())
        .await
        .unwrap();
    let parts = vec![
        pattern(MIN_PART_SIZE as usize, 1),
        pattern(MIN_PART_SIZE as usize, 2),
        pattern(3000, 3),
    ];
    let completed = upload_in_order(store, &upload.upload_id, &parts).await;
    let version = store.complete_multipart(&upload.upload_id, &completed).await.unwrap();
    let whole = parts.concat();
    assert_eq!(version.size, whole.len() as u64);
    assert_eq!(
        version.sha256.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&whole)).as_str())
    );
    let (_, read) = store.get_bytes("k/ordered", None).await.unwrap();
    assert!(read[..] == whole[..], "the version reads back as the parts in order");
    nothing_left_behind(store).await;

    // An upload aborted half-way leaves nothing either.
    let upload = store
        .start_multipart("k/dropped", &PutOptions::default())
        .await
        .unwrap();
    upload_in_order(store, &upload.upload_id, &parts[..2]).await;
    store.abort_multipart(&upload.upload_id).await.unwrap();
    assert!(!store.exists("k/dropped").await.unwrap());
    nothing_left_behind(store).await;
}

/// A completion that leaves out a part sent, or a part sent again after
/// the parts after it, completes with exactly the parts it names.
async fn completions_other_than_the_parts_sent_still_complete(fixture: Fixture) {
    let store = &fixture.store;
    let parts = vec![
        pattern(MIN_PART_SIZE as usize, 1),
        pattern(MIN_PART_SIZE as usize, 2),
        pattern(3000, 3),
    ];

    let upload = store
        .start_multipart("k/skipped", &PutOptions::default())
        .await
        .unwrap();
    let completed = upload_in_order(store, &upload.upload_id, &parts).await;
    let chosen = [completed[0].clone(), completed[2].clone()];
    store.complete_multipart(&upload.upload_id, &chosen).await.unwrap();
    let (_, read) = store.get_bytes("k/skipped", None).await.unwrap();
    assert!(
        read[..] == [&parts[0][..], &parts[2][..]].concat()[..],
        "parts 1 and 3 only"
    );

    let upload = store.start_multipart("k/resent", &PutOptions::default()).await.unwrap();
    upload_in_order(store, &upload.upload_id, &parts[..2]).await;
    let again = pattern(MIN_PART_SIZE as usize, 9);
    let resent = store
        .upload_part(&upload.upload_id, 1, stream(again.clone()), None)
        .await
        .unwrap();
    let mut completed = upload_in_order(store, &upload.upload_id, &parts).await;
    let last = store
        .upload_part(&upload.upload_id, 1, stream(again.clone()), None)
        .await
        .unwrap();
    assert_eq!(resent.etag, last.etag);
    completed[0].etag = last.etag;
    store.complete_multipart(&upload.upload_id, &completed).await.unwrap();
    let (_, read) = store.get_bytes("k/resent", None).await.unwrap();
    let expected = [&again[..], &parts[1][..], &parts[2][..]].concat();
    assert!(read[..] == expected[..], "the part sent last counts");
    nothing_left_behind(store).await;
}

/// An object uploaded in the AWS CLI's 8 MiB parts, in order or not, has
/// the ETag a plain put of the same bytes gives (told by the parts' MD5s).
async fn large_uploads_have_the_etag_of_a_plain_put(fixture: Fixture) {
    let store = &fixture.store;
    let part = 8 << 20;
    let parts: Vec<Vec<u8>> = (0..9).map(|i| pattern(part, i)).chain([pattern(1000, 9)]).collect();
    let whole = parts.concat();
    let plain = store
        .put_bytes("k/plain", whole.clone(), PutOptions::default())
        .await
        .unwrap();
    assert!(
        plain.etag.as_deref().is_some_and(|etag| etag.ends_with("-10")),
        "{plain:?}"
    );

    let upload = store
        .start_multipart("k/in-order", &PutOptions::default())
        .await
        .unwrap();
    let completed = upload_in_order(store, &upload.upload_id, &parts).await;
    let in_order = store.complete_multipart(&upload.upload_id, &completed).await.unwrap();
    let upload = store
        .start_multipart("k/any-order", &PutOptions::default())
        .await
        .unwrap();
    let completed = upload_all(store, &upload.upload_id, &parts).await;
    let any_order = store.complete_multipart(&upload.upload_id, &completed).await.unwrap();
    for version in [&in_order, &any_order] {
        assert_eq!(version.etag, plain.etag, "{}", version.key);
        assert_eq!(version.sha256, plain.sha256, "{}", version.key);
        let (_, read) = store.get_bytes(version.key.as_str(), None).await.unwrap();
        assert!(read[..] == whole[..], "{} reads back whole", version.key);
    }
    nothing_left_behind(store).await;
}

async fn bad_completions_change_nothing(fixture: Fixture) {
    let store = &fixture.store;
    let upload = store.start_multipart("k/obj", &PutOptions::default()).await.unwrap();
    let parts = vec![pattern(1000, 1), pattern(1000, 2)];
    let completed = upload_all(store, &upload.upload_id, &parts).await;

    let refused = |parts: Vec<CompletedPart>| {
        let store = store.clone();
        let upload_id = upload.upload_id.clone();
        async move { store.complete_multipart(&upload_id, &parts).await.unwrap_err() }
    };
    let small = refused(completed.clone()).await;
    assert_eq!(small.kind(), ErrorKind::InvalidInput, "{small}");
    assert!(small.to_string().contains("5 MiB"), "{small}");
    let reversed = refused(completed.iter().rev().cloned().collect()).await;
    assert!(reversed.to_string().contains("ascending"), "{reversed}");
    let wrong_etag = refused(vec![CompletedPart {
        part_number: 1,
        etag: "00".repeat(16),
    }])
    .await;
    assert!(wrong_etag.to_string().contains("was not uploaded"), "{wrong_etag}");
    let empty = refused(Vec::new()).await;
    assert_eq!(empty.kind(), ErrorKind::InvalidInput);

    let bad_md5 = store
        .upload_part(&upload.upload_id, 3, stream(vec![1, 2, 3]), Some(&"ab".repeat(16)))
        .await
        .unwrap_err();
    assert_eq!(bad_md5.kind(), ErrorKind::IntegrityMismatch, "{bad_md5}");
    let bad_number = store
        .upload_part(&upload.upload_id, 10_001, stream(vec![1]), None)
        .await
        .unwrap_err();
    assert_eq!(bad_number.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        store.multipart_parts(&upload.upload_id).await.unwrap().len(),
        2,
        "refused parts are not kept"
    );
    assert!(!store.exists("k/obj").await.unwrap(), "no version was made");

    // The last part alone may be small: one part completes.
    let version = store
        .complete_multipart(&upload.upload_id, &completed[..1])
        .await
        .unwrap();
    assert_eq!(version.size, 1000);
    let again = store
        .complete_multipart(&upload.upload_id, &completed[..1])
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::NotFound, "{again}");
}

async fn abort_removes_the_parts(fixture: Fixture) {
    let store = &fixture.store;
    let upload = store.start_multipart("k/gone", &PutOptions::default()).await.unwrap();
    upload_all(store, &upload.upload_id, &[pattern(100, 1)]).await;
    store.abort_multipart(&upload.upload_id).await.unwrap();
    let late = store
        .upload_part(&upload.upload_id, 2, stream(vec![1]), None)
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ErrorKind::NotFound, "{late}");
    let report = store.verify(&VerifyOptions::default()).await.unwrap();
    assert!(report.is_clean(), "aborted parts are gone: {:?}", report.problems);
    assert!(!store.exists("k/gone").await.unwrap());
}

async fn buckets_are_first_segments_or_made_empty(fixture: Fixture) {
    let store = &fixture.store;
    store
        .put_bytes("invoices/2024/a.pdf", "a", PutOptions::default())
        .await
        .unwrap();
    store.create_bucket("empty").await.unwrap();
    let names: Vec<String> = store.buckets().await.unwrap().into_iter().map(|b| b.name).collect();
    assert_eq!(names, ["empty", "invoices"]);
    assert!(store.bucket_exists("invoices").await.unwrap());
    assert!(!store.bucket_exists("nothing").await.unwrap());

    let taken = store.create_bucket("invoices").await.unwrap_err();
    assert_eq!(taken.kind(), ErrorKind::Conflict, "{taken}");
    let full = store.delete_bucket("invoices").await.unwrap_err();
    assert_eq!(full.kind(), ErrorKind::Conflict, "{full}");
    let missing = store.delete_bucket("nothing").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    let slash = store.create_bucket("a/b").await.unwrap_err();
    assert_eq!(slash.kind(), ErrorKind::InvalidInput, "{slash}");

    store.delete_bucket("empty").await.unwrap();
    assert!(!store.bucket_exists("empty").await.unwrap());
    let audited = store
        .audit(&AuditQuery {
            action: Some("bucket_create".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "making a bucket is audited");
}

/// In an encrypted store the staged parts are sealed.
#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_stores_parts_are_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::encrypted_store(dir.path()).await;
    let marker = b"plaintext-marker-77aa".repeat(100);
    let upload = store
        .start_multipart("secret/part", &PutOptions::default())
        .await
        .unwrap();
    let completed = upload_all(&store, &upload.upload_id, std::slice::from_ref(&marker)).await;
    let parts = store.multipart_parts(&upload.upload_id).await.unwrap();
    let staged = std::fs::read(dir.path().join("data/store").join(&parts[0].path)).unwrap();
    assert!(
        !staged.windows(21).any(|w| w == &marker[..21]),
        "the staged part is sealed"
    );
    store.complete_multipart(&upload.upload_id, &completed).await.unwrap();
    assert_eq!(store.get_bytes("secret/part", None).await.unwrap().1[..], marker[..]);
}
