//! End-to-end through `coffer serve`, started as a real process on a free
//! port: tokens and what each may do, the objects API through a real HTTP
//! client (a 1 GiB streamed put, ranges, conditional requests), links for
//! local disk, the same API on PostgreSQL and Garage, background work, and
//! a graceful stop with an upload in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::garage::postgres_and_garage;
use common::serve::{Served, serve};
use common::{coffer, coffer_in, json, ok};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A token of `scope` (and more `args`), its secret.
fn token(d: &Path, scope: &str, args: &[&str]) -> String {
    let mut all = vec!["token", "create", "--scope", scope, "--json"];
    all.extend_from_slice(args);
    json(coffer(d, &all))["secret"].as_str().unwrap().to_owned()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn put(server: &Served, secret: Option<&str>, key: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    let mut request = client().put(server.at(&format!("/api/v1/objects/{key}"))).body(body);
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    request.send().await.unwrap()
}

async fn get(server: &Served, secret: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client().get(server.at(path)).bearer_auth(secret);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The problem details of a refused request, after checking its status.
async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{body}");
    body
}

fn exists(d: &Path, key: &str) -> bool {
    coffer(d, &["exists", key]).code == 0
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_decide_who_may_do_what_and_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let writer = token(d, "write", &["--name", "writer"]);
    let reader = token(d, "read", &["--name", "reader"]);
    let docs = token(d, "write", &["--name", "docs-only", "--prefix", "docs/"]);
    let expiring = token(d, "write", &["--name", "brief", "--expires", "1s"]);
    let revoked = token(d, "write", &["--name", "gone"]);
    ok(coffer(d, &["token", "revoke", "gone"]));
    let server = serve(d, &[], &[]);

    // No token: 401 with a challenge, and nothing stored.
    let refused = put(&server, None, "docs/a.txt", "x").await;
    assert_eq!(refused.headers()["www-authenticate"], "Bearer realm=\"coffer\"");
    problem(refused, StatusCode::UNAUTHORIZED).await;
    for (secret, why) in [
        ("coffer_not-a-token", "the token is not known"),
        (revoked.as_str(), "the token was revoked"),
    ] {
        let body = problem(
            put(&server, Some(secret), "docs/a.txt", "x").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_eq!(body["detail"], why);
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let body = problem(
        put(&server, Some(&expiring), "docs/a.txt", "x").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["detail"], "the token expired");
    // Outside a scope or prefix: 403.
    let body = problem(
        put(&server, Some(&reader), "docs/a.txt", "x").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(body["kind"], "forbidden");
    assert_eq!(body["detail"], "token reader has scope read; this needs write");
    problem(put(&server, Some(&docs), "hr/a.txt", "x").await, StatusCode::FORBIDDEN).await;
    assert!(
        !exists(d, "docs/a.txt") && !exists(d, "hr/a.txt"),
        "a refused put stored nothing"
    );

    // Within them: stored, and audited as the token.
    assert_eq!(
        put(&server, Some(&docs), "docs/a.txt", "by docs").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        put(&server, Some(&writer), "hr/a.txt", "by writer").await.status(),
        StatusCode::CREATED
    );
    let read = get(&server, &reader, "/api/v1/objects/docs/a.txt", &[]).await;
    assert_eq!(read.text().await.unwrap(), "by docs");
    problem(
        get(&server, &docs, "/api/v1/objects/hr/a.txt", &[]).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let audit = json(coffer(d, &["audit", "--json", "--action", "put"]));
    let actors: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["token:writer", "token:docs-only"]);
    // A prefixed token lists what it reaches, and nothing else.
    let listing: Value = get(&server, &docs, "/api/v1/objects", &[]).await.json().await.unwrap();
    let keys: Vec<&str> = listing["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["docs/a.txt"]);
    problem(
        get(&server, &docs, "/api/v1/objects?prefix=hr/", &[]).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // Secrets are shown once: never in the listing, the audit log or the logs.
    let list = ok(coffer(d, &["token", "list"])).stdout;
    assert!(list.contains("docs-only") && list.contains("revoked"), "{list}");
    let everything = format!("{list}{}{}", json(coffer(d, &["audit", "--json"])), server.logs());
    for secret in [&writer, &reader, &docs, &expiring, &revoked] {
        assert!(!everything.contains(secret.as_str()), "a secret leaked");
    }
    common::fails(coffer(d, &["token", "revoke", "nobody"]), 3, "no token named nobody");
    common::fails(
        coffer(d, &["token", "create", "--scope", "read", "--name", "writer"]),
        6,
        "a token named writer exists already",
    );
}

/// A body of `len` bytes made as it is sent, and its SHA-256.
fn generated(len: u64) -> (reqwest::Body, String) {
    const CHUNK: u64 = 1 << 20;
    let piece = move |i: u64| -> Bytes {
        let size = CHUNK.min(len - i * CHUNK) as usize;
        Bytes::from(
            (0..size)
                .map(|j| ((i as usize * 31 + j * 7) % 251) as u8)
                .collect::<Vec<u8>>(),
        )
    };
    let chunks = len.div_ceil(CHUNK);
    let mut hash = Sha256::new();
    for i in 0..chunks {
        hash.update(piece(i));
    }
    let stream = futures::stream::iter((0..chunks).map(move |i| Ok::<_, std::io::Error>(piece(i))));
    (reqwest::Body::wrap_stream(stream), hex::encode(hash.finalize()))
}

/// The objects API on one store: put (streamed), get whole and in ranges,
/// conditional reads, head, metadata, list, delete and a version's removal.
async fn objects_round_trip(d: &Path, server: &Served, size: u64) {
    let secret = token(d, "admin", &[]);
    let (body, sha256) = generated(size);
    let created = put(server, Some(&secret), "big/data.bin", body).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let version: Value = created.json().await.unwrap();
    assert_eq!(version["size"], size);
    assert_eq!(version["sha256"], sha256.as_str());
    let version_id = version["version_id"].as_str().unwrap().to_owned();

    // The whole object, streamed back and hashed.
    let mut whole = get(server, &secret, "/api/v1/objects/big/data.bin", &[]).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-length"], size.to_string().as_str());
    assert_eq!(whole.headers()["x-coffer-version-id"], version_id.as_str());
    let etag = whole.headers()["etag"].to_str().unwrap().to_owned();
    let mut hash = Sha256::new();
    while let Some(chunk) = whole.chunk().await.unwrap() {
        hash.update(&chunk);
    }
    assert_eq!(hex::encode(hash.finalize()), sha256);

    // Ranges: 206 with the bytes and their place; past the end, 416.
    let expected = |from: u64, to: u64| -> Vec<u8> {
        (from..=to)
            .map(|at| (((at >> 20) as usize * 31 + (at & 0xF_FFFF) as usize * 7) % 251) as u8)
            .collect()
    };
    let middle = size / 2;
    let range = format!("bytes={middle}-{}", middle + 99);
    let part = get(server, &secret, "/api/v1/objects/big/data.bin", &[("range", &range)]).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes {middle}-{}/{size}", middle + 99).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().to_vec(), expected(middle, middle + 99));
    let tail = get(
        server,
        &secret,
        "/api/v1/objects/big/data.bin",
        &[("range", "bytes=-10")],
    )
    .await;
    assert_eq!(tail.bytes().await.unwrap().to_vec(), expected(size - 10, size - 1));
    let beyond = format!("bytes={size}-");
    problem(
        get(server, &secret, "/api/v1/objects/big/data.bin", &[("range", &beyond)]).await,
        StatusCode::RANGE_NOT_SATISFIABLE,
    )
    .await;

    // Conditional reads.
    let same = get(
        server,
        &secret,
        "/api/v1/objects/big/data.bin",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(same.status(), StatusCode::NOT_MODIFIED);
    let other = get(
        server,
        &secret,
        "/api/v1/objects/big/data.bin",
        &[("if-match", "\"other\"")],
    )
    .await;
    assert_eq!(other.status(), StatusCode::PRECONDITION_FAILED);
    let last_modified = same.headers()["last-modified"].to_str().unwrap().to_owned();
    let unchanged = get(
        server,
        &secret,
        "/api/v1/objects/big/data.bin",
        &[("if-modified-since", &last_modified)],
    )
    .await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);

    // A small object with metadata; HEAD shows it without a body.
    let small = client()
        .put(server.at("/api/v1/objects/docs/note.txt"))
        .bearer_auth(&secret)
        .header("content-type", "text/plain")
        .header("x-coffer-meta-project", "apollo")
        .body("first")
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), StatusCode::CREATED);
    let first: Value = small.json().await.unwrap();
    let head = client()
        .head(server.at("/api/v1/objects/docs/note.txt"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["x-coffer-meta-project"], "apollo");
    assert_eq!(head.headers()["content-type"], "text/plain");
    assert_eq!(head.headers()["content-length"], "5");
    // If-None-Match: * refuses to overwrite: 412, as HTTP has it.
    let overwrite = client()
        .put(server.at("/api/v1/objects/docs/note.txt"))
        .bearer_auth(&secret)
        .header("if-none-match", "*")
        .body("second")
        .send()
        .await
        .unwrap();
    problem(overwrite, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(
        put(server, Some(&secret), "docs/note.txt", "second").await.status(),
        StatusCode::CREATED
    );
    let old = format!(
        "/api/v1/objects/docs/note.txt?version={}",
        first["version_id"].as_str().unwrap()
    );
    assert_eq!(get(server, &secret, &old, &[]).await.text().await.unwrap(), "first");

    let page: Value = get(server, &secret, "/api/v1/objects?delimiter=/", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["common_prefixes"], serde_json::json!(["big/", "docs/"]), "{page}");
    let listed: Value = get(server, &secret, "/api/v1/objects?prefix=docs/", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["objects"][0]["key"], "docs/note.txt");

    // Delete: a marker, then the key is gone; removing the old version for good.
    let deleted = client()
        .delete(server.at("/api/v1/objects/docs/note.txt"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    let marker: Value = deleted.json().await.unwrap();
    assert_eq!(marker["is_delete_marker"], true);
    problem(
        get(server, &secret, "/api/v1/objects/docs/note.txt", &[]).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let removed = client()
        .delete(server.at(&old))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::OK);
    problem(get(server, &secret, &old, &[]).await, StatusCode::NOT_FOUND).await;
    let bad = get(server, &secret, "/api/v1/objects/a%00b", &[]).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    ok(coffer(d, &["verify"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_stream_through_the_api_on_sqlite_and_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    let server = serve(d, &[], &[]);
    objects_round_trip(d, &server, 1 << 30).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_stream_through_the_api_on_postgres_and_garage() {
    let Some((_database, dir)) = postgres_and_garage().await else {
        return;
    };
    let d = dir.path();
    let server = serve(d, &[], &[]);
    objects_round_trip(d, &server, 20 << 20).await;
    let info = json(coffer(d, &["info", "--json"]));
    assert!(info["catalog"].as_str().unwrap().starts_with("postgres"), "{info}");
}

/// The value of query parameter `name` in `url` replaced by `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(n, v)| (n.to_string(), if n == name { value.to_owned() } else { v.to_string() }))
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn links_reach_local_disk_without_a_token_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = json(coffer_in(d, &["put", "docs/a.txt", "--json"], Some(b"first"), &[]));
    ok(coffer_in(d, &["put", "docs/a.txt"], Some(b"second"), &[]));
    let server = serve(d, &[], &[]);
    let base = server.url.clone();
    let link = |args: &[&str]| -> String {
        let mut all = vec!["url"];
        all.extend_from_slice(args);
        let made = coffer_in(d, &all, None, &[("COFFER_SERVER_PUBLIC_URL", &base)]);
        assert_eq!(made.code, 0, "{}", made.stderr);
        made.stdout.trim().to_owned()
    };
    let version = first["version_id"].as_str().unwrap();
    let old = link(&["docs/a.txt", "--version", version, "--expires", "60"]);
    let latest = link(&["docs/a.txt", "--expires", "60"]);
    assert!(
        old.starts_with(&format!("{base}/links/docs/a.txt?method=get&version={version}")),
        "{old}"
    );
    assert_eq!(reqwest::get(&old).await.unwrap().text().await.unwrap(), "first");
    // A link names the version current when it was made.
    ok(coffer_in(d, &["put", "docs/a.txt"], Some(b"third"), &[]));
    assert_eq!(reqwest::get(&latest).await.unwrap().text().await.unwrap(), "second");

    // Altered in any part, or used another way: refused.
    let signature = reqwest::Url::parse(&old)
        .unwrap()
        .query_pairs()
        .find(|(n, _)| n == "signature")
        .unwrap()
        .1
        .into_owned();
    let flipped = format!(
        "{}{}",
        if signature.starts_with('0') { "1" } else { "0" },
        &signature[1..]
    );
    for altered in [
        with_param(&old, "signature", &flipped),
        with_param(&old, "expires", "9999999999"),
        with_param(&old, "version", "01a0000000000000000000000000000"),
        old.replace("/links/docs/a.txt", "/links/docs/b.txt"),
    ] {
        let body = problem(reqwest::get(&altered).await.unwrap(), StatusCode::UNAUTHORIZED).await;
        assert!(
            body["detail"].as_str().unwrap().contains("signature does not match"),
            "{body}"
        );
    }
    let wrong_way = client().put(&old).body("x").send().await.unwrap();
    assert_eq!(wrong_way.status(), StatusCode::METHOD_NOT_ALLOWED);
    let brief = link(&["docs/a.txt", "--expires", "1"]);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let body = problem(reqwest::get(&brief).await.unwrap(), StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["detail"], "the link expired");

    // An upload link stores the next version, recorded as made through a link.
    let upload = link(&["docs/upload.txt", "--method", "put", "--expires", "60"]);
    let stored = client().put(&upload).body("uploaded").send().await.unwrap();
    assert_eq!(stored.status(), StatusCode::CREATED);
    assert_eq!(ok(coffer(d, &["get", "docs/upload.txt"])).stdout, "uploaded");
    let made = json(coffer(d, &["metadata", "docs/upload.txt", "--json"]));
    assert_eq!(made["created_by"], "link");
    // A link from another server key is refused.
    std::fs::write(d.join("coffer-data/other.key"), "07".repeat(32)).unwrap();
    let foreign = coffer_in(
        d,
        &["url", "docs/a.txt"],
        None,
        &[
            ("COFFER_SERVER_PUBLIC_URL", &base),
            ("COFFER_SERVER_KEY_FILE", "coffer-data/other.key"),
        ],
    );
    problem(
        reqwest::get(foreign.stdout.trim()).await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("coffer-data/server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the server key is its owner's alone");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_runs_the_background_work_and_answers_health_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    let log = d.join("events.jsonl");
    ok(coffer(d, &["hooks", "add", "filelog", "log", log.to_str().unwrap()]));
    let server = serve(d, &[], &[]);
    let live: Value = reqwest::get(server.at("/healthz")).await.unwrap().json().await.unwrap();
    assert_eq!(live["status"], "ok");
    let ready = reqwest::get(server.at("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["catalog"]["engine"], "sqlite");
    assert_eq!(ready["backend"]["ok"], true);
    let secret = token(d, "write", &[]);
    // A small put stays hot; the server's flusher writes it to disk, and
    // its dispatcher delivers the event.
    assert_eq!(
        put(&server, Some(&secret), "docs/hot.txt", "small").await.status(),
        StatusCode::CREATED
    );
    let mut waited = 0;
    loop {
        let status = json(coffer(d, &["hot", "status", "--json"]));
        let delivered = std::fs::read_to_string(&log).unwrap_or_default();
        if status["pending_versions"] == 0 && status["unflushed_objects"] == 0 && delivered.contains("docs/hot.txt") {
            break;
        }
        waited += 1;
        assert!(
            waited < 100,
            "not flushed or delivered after 10 s: {status} {delivered}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    problem(
        reqwest::get(server.at("/no/such/route")).await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    // What the server counted, in Prometheus' format.
    let metrics = reqwest::get(server.at("/metrics")).await.unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let metrics = metrics.text().await.unwrap();
    for line in [
        "coffer_http_requests_total{route=\"/api/v1/objects/{*key}\",method=\"PUT\",status=\"201\"} 1",
        "coffer_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "coffer_http_request_duration_seconds_count{route=\"/readyz\"} 1",
        "coffer_http_received_bytes_total 5",
        "coffer_outbox_events_waiting 0",
        "coffer_hot_objects 1",
        "coffer_hot_unflushed_objects 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing from:\n{metrics}");
    }
    assert!(!metrics.contains("docs/hot.txt"), "keys stay out of the metrics");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_upload_in_flight_and_takes_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    let secret = token(d, "write", &[]);
    let mut server = serve(d, &[], &[]);
    // An upload of 8 pieces, 200 ms apart.
    let slow = futures::stream::unfold(0u8, |i| async move {
        if i == 8 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((Ok::<_, std::io::Error>(Bytes::from(vec![i; 1024])), i + 1))
    });
    let upload = {
        let url = server.at("/api/v1/objects/docs/slow.bin");
        let secret = secret.clone();
        tokio::spawn(async move {
            client()
                .put(url)
                .bearer_auth(secret)
                .body(reqwest::Body::wrap_stream(slow))
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.terminate();
    let response = upload.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "the upload in flight finished");
    assert!(server.wait(Duration::from_secs(20)).success(), "{}", server.logs());
    assert!(reqwest::get(server.at("/healthz")).await.is_err(), "no new requests");
    let got = ok(coffer(d, &["get", "docs/slow.bin"])).stdout.into_bytes();
    assert_eq!(got.len(), 8 * 1024);
}

/// A JSON request with the token, its status and JSON answer.
async fn call(
    server: &Served,
    secret: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client().request(method, server.at(path)).bearer_auth(secret);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_reaches_versions_annotations_search_audit_hooks_and_bundles() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    let admin = token(d, "admin", &["--name", "admin"]);
    let writer = token(d, "write", &["--name", "writer"]);
    let server = serve(d, &[], &[]);
    let v1: Value = put(&server, Some(&writer), "notes/a.txt", "alpha one\n")
        .await
        .json()
        .await
        .unwrap();
    let v2: Value = put(&server, Some(&writer), "notes/a.txt", "alpha two\n")
        .await
        .json()
        .await
        .unwrap();
    let (id1, id2) = (v1["version_id"].as_str().unwrap(), v2["version_id"].as_str().unwrap());

    let (status, versions) = call(&server, &writer, Method::GET, "/api/v1/versions/notes/a.txt", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let (_, history) = call(
        &server,
        &writer,
        Method::GET,
        "/api/v1/history/notes/a.txt?limit=5",
        None,
    )
    .await;
    assert_eq!(history[0]["version_id"], id2);
    let compare = format!("/api/v1/compare/notes/a.txt?from={id1}&to={id2}");
    let (_, diff) = call(&server, &writer, Method::GET, &compare, None).await;
    assert!(diff.to_string().contains("alpha two"), "{diff}");

    let (status, rolled) = call(
        &server,
        &writer,
        Method::POST,
        "/api/v1/rollback/notes/a.txt",
        Some(serde_json::json!({ "version": id1, "comment": "back" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    let latest = rolled["version_id"].as_str().unwrap().to_owned();
    assert_eq!(ok(coffer(d, &["get", "notes/a.txt"])).stdout, "alpha one\n");
    let tags = format!("/api/v1/tags/notes/a.txt?version={latest}");
    let (_, tagged) = call(
        &server,
        &writer,
        Method::PUT,
        &tags,
        Some(serde_json::json!({ "set": { "stage": "final" } })),
    )
    .await;
    assert_eq!(tagged["tags"]["stage"], "final");
    let comments = format!("/api/v1/comments/notes/a.txt?version={latest}");
    let (_, commented) = call(
        &server,
        &writer,
        Method::POST,
        &comments,
        Some(serde_json::json!({ "text": "checked" })),
    )
    .await;
    assert_eq!(commented["comments"].as_array().unwrap().len(), 2, "{commented}");
    let (_, changed) = call(
        &server,
        &writer,
        Method::PATCH,
        "/api/v1/metadata/notes/a.txt",
        Some(serde_json::json!({ "set": { "owner": "ops" } })),
    )
    .await;
    assert_eq!(changed["metadata"]["owner"], "ops");
    let newest = changed["version_id"].as_str().unwrap().to_owned();

    // Retention and legal hold win over removal, whoever asks.
    let retention = format!("/api/v1/retention/notes/a.txt?version={id2}");
    let (status, kept) = call(
        &server,
        &writer,
        Method::PUT,
        &retention,
        Some(serde_json::json!({ "span": "1d" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    let (status, locked) = call(
        &server,
        &admin,
        Method::DELETE,
        &format!("/api/v1/objects/notes/a.txt?version={id2}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::LOCKED);
    assert_eq!(locked["kind"], "retention_locked");
    let hold = format!("/api/v1/legal-hold/notes/a.txt?version={id1}");
    let (_, held) = call(
        &server,
        &writer,
        Method::PUT,
        &hold,
        Some(serde_json::json!({ "on": true })),
    )
    .await;
    assert_eq!(held["legal_hold"], true);
    let (status, _) = call(
        &server,
        &writer,
        Method::DELETE,
        &format!("/api/v1/objects/notes/a.txt?version={id1}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::LOCKED);
    // Bypassing a governance retention needs admin.
    let bypass = format!("/api/v1/objects/notes/a.txt?version={id2}&bypass_governance=true");
    let (status, _) = call(&server, &writer, Method::DELETE, &bypass, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, gone) = call(&server, &admin, Method::DELETE, &bypass, None).await;
    assert_eq!(status, StatusCode::OK, "{gone}");

    let (_, copied) = call(
        &server,
        &writer,
        Method::POST,
        "/api/v1/copy/notes/b.txt",
        Some(serde_json::json!({ "source": "notes/a.txt" })),
    )
    .await;
    assert_eq!(copied["key"], "notes/b.txt");
    call(&server, &writer, Method::DELETE, "/api/v1/objects/notes/b.txt", None).await;
    let (status, back) = call(
        &server,
        &writer,
        Method::POST,
        "/api/v1/undelete/notes/b.txt",
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{back}");

    // Search and audit.
    let (_, found) = call(
        &server,
        &writer,
        Method::GET,
        "/api/v1/search?q=ops&tag=stage=final",
        None,
    )
    .await;
    let hits: Vec<&str> = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["key"].as_str().unwrap())
        .collect();
    assert_eq!(hits, ["notes/a.txt"], "{found}");
    let (_, rows) = call(
        &server,
        &writer,
        Method::GET,
        "/api/v1/audit?key=notes/a.txt&oldest_first=true",
        None,
    )
    .await;
    let actions: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "put",
            "put",
            "rollback",
            "tag",
            "comment",
            "metadata",
            "retention",
            "legal_hold",
            "delete_version"
        ],
        "{rows}"
    );
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["actor"].as_str().unwrap().starts_with("token:"))
    );
    let (status, bad) = call(&server, &writer, Method::GET, "/api/v1/audit?action=nothing", None).await;
    assert_eq!(
        (status, bad["kind"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );

    // Hooks: an admin adds and removes them; no one adds a hook that acts on the server's machine.
    let webhook = serde_json::json!({
        "name": "ci", "spec": { "kind": "webhook", "url": "http://127.0.0.1:9/hook", "method": "POST", "timeout_ms": 1000,
                  "secret": "s3cret-value" },
        "filter": { "events": ["version.created"] },
    });
    let (status, _) = call(&server, &writer, Method::POST, "/api/v1/hooks", Some(webhook.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, added) = call(&server, &admin, Method::POST, "/api/v1/hooks", Some(webhook)).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let (_, hooks) = call(&server, &writer, Method::GET, "/api/v1/hooks", None).await;
    assert_eq!(hooks[0]["name"], "ci");
    assert!(
        !hooks.to_string().contains("s3cret-value"),
        "a hook's secret is hidden: {hooks}"
    );
    let exec = serde_json::json!({ "name": "x", "spec": { "kind": "exec", "command": "true", "timeout_ms": 1000 } });
    let (status, refused) = call(&server, &admin, Method::POST, "/api/v1/hooks", Some(exec)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (_, stats) = call(&server, &writer, Method::GET, "/api/v1/hooks/stats", None).await;
    assert!(stats["events_fired"].as_u64().unwrap() > 0, "{stats}");
    let (status, _) = call(&server, &admin, Method::DELETE, "/api/v1/hooks/ci", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, event) = call(
        &server,
        &writer,
        Method::POST,
        "/api/v1/events",
        Some(serde_json::json!({ "type": "qc.approved", "key": "notes/a.txt", "data": { "by": "qa" } })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{event}");
    assert_eq!(event["type"], "qc.approved");

    // A bundle built over HTTP.
    let (status, bundle) = call(
        &server,
        &writer,
        Method::POST,
        "/api/v1/bundles",
        Some(serde_json::json!({ "primary_url": "https://example.org/", "recipe_id": "r1", "layout": "directory" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{bundle}");
    let id = bundle["bundle_id"].as_str().unwrap().to_owned();
    let added = client()
        .put(server.at(&format!(
            "/api/v1/bundles/{id}/resources?url=https://example.org/&status=200"
        )))
        .bearer_auth(&writer)
        .header("content-type", "text/html")
        .body("<html>hi</html>")
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let complete = format!("/api/v1/bundles/{id}/complete");
    let (status, done) = call(
        &server,
        &writer,
        Method::POST,
        &complete,
        Some(serde_json::json!({ "metadata": { "n": 1 } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["resources_count"], 1);
    let read = get(
        &server,
        &writer,
        &format!("/api/v1/bundles/{id}/resource?which=https://example.org/"),
        &[],
    )
    .await;
    assert_eq!(read.headers()["content-type"], "text/html");
    assert_eq!(read.text().await.unwrap(), "<html>hi</html>");
    let (_, listed) = call(&server, &writer, Method::GET, "/api/v1/bundles", None).await;
    assert_eq!(listed[0]["bundle_id"], id.as_str());

    // Bad input: one problem, nothing changed.
    let malformed = client()
        .post(server.at("/api/v1/rollback/notes/a.txt"))
        .bearer_auth(&writer)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(malformed, StatusCode::BAD_REQUEST).await;
    let current = json(coffer(d, &["metadata", "notes/a.txt", "--json"]));
    assert_eq!(current["version_id"], newest.as_str());
    ok(coffer(d, &["verify"]));
}

#[test]
fn schemathesis_finds_no_server_error_and_every_answer_matches_the_openapi_document() {
    let Some(schemathesis) = common::client("schemathesis") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    let secret = token(d, "admin", &[]);
    // Fuzzed hooks would deliver to whatever URL they name: no dispatcher here.
    let server = serve(d, &[], &[("COFFER_SERVER_DISPATCH", "0")]);
    let output = std::process::Command::new(schemathesis)
        // It keeps a cache in its working directory.
        .current_dir(d)
        .args(["run", &server.at("/api/v1/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {secret}")])
        .args(["--max-examples", "30", "--seed", "1"])
        // What the issue asks: no 5xx, and every answer as documented (the
        // inputs' own rules, such as the key's, are stricter than their schemas).
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,\
             content_type_conformance,response_headers_conformance",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("Tested: 32"), "every operation was tested: {report}");
    assert!(!report.contains(&secret), "the token stays out of the report");
}
