//! `coffer bundle` end to end, against a web server on 127.0.0.1 that
//! serves HTML, JSON, a gzip file, a zip with nested folders, a 200 MiB
//! body, a 404 and a slow body: bundles fetched into local disk (directory
//! layout) and Garage (zip layout) read back byte for byte, the zip passes
//! Debian's `unzip -t` and Python's `zipfile`, the WARC export passes
//! `warcio check` and `warcio index`, an SQS consumer (the AWS CLI) reads
//! the users' fields, ids from several processes sort by time, and a fetch
//! killed at random points leaves nothing that `bundle recover` and
//! `verify` cannot account for.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use coffer::testkit::{Resource, ResourceBody, ResourceServer, pattern};
use common::garage::garage;
use common::{client, coffer, fails, json, ok};
use serde_json::Value;

const BIG: u64 = 200 * 1024 * 1024;

/// The web server and the runtime it runs on (the server stops first).
struct Site {
    server: ResourceServer,
    _runtime: tokio::runtime::Runtime,
}

impl Site {
    fn start(resources: Vec<(&str, Resource)>) -> Site {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let resources: BTreeMap<String, Resource> = resources.into_iter().map(|(p, r)| (p.to_owned(), r)).collect();
        let server = runtime.block_on(ResourceServer::start(resources)).unwrap();
        Site {
            server,
            _runtime: runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }
}

fn html() -> &'static [u8] {
    b"<!doctype html><title>Permits</title><a href=\"/api/permits.json\">permits</a>\n"
}

fn permits_json() -> &'static [u8] {
    br#"{"permits":[{"id":1,"owner":"Acme"},{"id":2,"owner":"Globex"}]}"#
}

fn csv() -> Vec<u8> {
    "id,owner\n1,Acme\n2,Globex\n".repeat(2_000).into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// The zip's entries: nested folders, a text file, a JSON file.
fn archive_entries() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("readme.txt", b"permits archive\n".to_vec()),
        ("records/2024/a.txt", "permit a\n".repeat(500).into_bytes()),
        ("records/2024/q1/b.json", permits_json().to_vec()),
    ]
}

fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The site every fetch reads; `big` is the size of `/big.bin`.
fn site(big: u64) -> Site {
    Site::start(vec![
        ("/index.html", Resource::ok("text/html; charset=utf-8", html())),
        ("/api/permits.json", Resource::ok("application/json", permits_json())),
        ("/permits.csv.gz", Resource::ok("application/gzip", gzip(&csv()))),
        (
            "/archive.zip",
            Resource::ok("application/zip", zip_of(&archive_entries())),
        ),
        ("/big.bin", Resource::generated("application/octet-stream", big)),
        (
            "/slow.txt",
            Resource::slow(
                "text/plain",
                "slow line\n".repeat(3_000),
                2_000,
                Duration::from_millis(20),
            ),
        ),
        (
            "/cut.bin",
            Resource {
                status: 200,
                content_type: Some("application/octet-stream".to_owned()),
                body: ResourceBody::Truncated {
                    sent: Bytes::from(vec![7u8; 100_000]),
                    promised: 1_000_000,
                },
            },
        ),
        (
            "/bomb.gz",
            Resource::ok("application/gzip", gzip(&vec![0u8; 64 * 1024 * 1024])),
        ),
    ])
}

/// The URLs of a whole fetch, the primary URL first.
fn all_urls(site: &Site) -> Vec<String> {
    [
        "/index.html",
        "/api/permits.json",
        "/permits.csv.gz",
        "/archive.zip",
        "/big.bin",
        "/missing.html",
        "/slow.txt",
    ]
    .iter()
    .map(|p| site.url(p))
    .collect()
}

fn write(d: &Path, name: &str, text: &str) {
    std::fs::write(d.join(name), text).unwrap();
}

fn args<'a>(fixed: &[&'a str], more: &'a [String]) -> Vec<&'a str> {
    let mut all = fixed.to_vec();
    all.extend(more.iter().map(String::as_str));
    all
}

/// What resource `resource` of `show` should hold, with unzip on: by URL,
/// and for a zip's entries by the entry's name.
fn expected(site: &Site, resource: &Value, unzip: bool) -> Expected {
    let url = resource["url"].as_str().unwrap();
    let name = resource["name"].as_str().unwrap();
    let path = url.strip_prefix(&site.url("")).unwrap();
    Expected::Bytes(match path {
        "/index.html" => html().to_vec(),
        "/api/permits.json" => permits_json().to_vec(),
        "/permits.csv.gz" if unzip => csv(),
        "/permits.csv.gz" => gzip(&csv()),
        "/archive.zip" if unzip => {
            let entry = name.split_once(".zip/").unwrap().1;
            archive_entries().into_iter().find(|(n, _)| *n == entry).unwrap().1
        }
        "/archive.zip" => zip_of(&archive_entries()),
        "/big.bin" => return Expected::Pattern(resource["size"].as_u64().unwrap()),
        "/missing.html" => b"not found\n".to_vec(),
        "/slow.txt" => "slow line\n".repeat(3_000).into_bytes(),
        other => panic!("unexpected resource {other}"),
    })
}

enum Expected {
    Bytes(Vec<u8>),
    Pattern(u64),
}

/// Check the file at `path` holds `expected`, reading it in pieces.
fn assert_file_holds(path: &Path, expected: &Expected, what: &str) {
    match expected {
        Expected::Bytes(bytes) => assert!(std::fs::read(path).unwrap() == *bytes, "{what} differs"),
        Expected::Pattern(len) => {
            let mut file = std::fs::File::open(path).unwrap();
            assert_eq!(file.metadata().unwrap().len(), *len, "{what}: size");
            let mut buffer = vec![0; 4 << 20];
            let mut offset = 0;
            while offset < *len {
                let n = file.read(&mut buffer).unwrap();
                assert!(n > 0, "{what} ends early");
                assert!(buffer[..n] == pattern(offset, n)[..], "{what} differs at {offset}");
                offset += n as u64;
            }
        }
    }
}

/// Every resource of bundle `id` read back with `bundle get --resource`
/// and compared with what the site served.
fn assert_resources_read_back(d: &Path, extra: &[String], site: &Site, id: &str, unzip: bool) -> Value {
    let show = json(coffer(d, &args(&["bundle", "show", id, "--json"], extra)));
    let out = tempfile::tempdir().unwrap();
    for resource in show["resources"].as_array().unwrap() {
        let name = resource["name"].as_str().unwrap();
        let file = out.path().join("resource");
        let file_arg = file.to_str().unwrap();
        ok(coffer(
            d,
            &args(&["bundle", "get", id, "--resource", name, "--output", file_arg], extra),
        ));
        assert_file_holds(&file, &expected(site, resource, unzip), name);
    }
    show
}

/// The resources' names in `show`, by URL path.
fn names_by_path(site: &Site, show: &Value) -> BTreeMap<String, Vec<String>> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for resource in show["resources"].as_array().unwrap() {
        let path = resource["url"].as_str().unwrap().strip_prefix(&site.url("")).unwrap();
        names
            .entry(path.to_owned())
            .or_default()
            .push(resource["name"].as_str().unwrap().to_owned());
    }
    names
}

#[test]
fn a_site_fetched_into_local_disk_reads_back_and_exports_to_files_and_warc() {
    let site = site(BIG);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    let urls = all_urls(&site);
    let fetched = json(coffer(
        d,
        &args(
            &[
                "bundle",
                "fetch",
                "--unzip",
                "--recipe",
                "fr",
                "--meta",
                "source=us-fl",
                "--complete-meta",
                "run_id=run_123",
                "--json",
            ],
            &urls,
        ),
    ));
    let id = fetched["bundle_id"].as_str().unwrap().to_owned();
    assert_eq!(fetched["layout"], "directory");
    assert_eq!(fetched["primary_url"], urls[0].as_str());
    assert!(fetched["completed_at"].is_string(), "{fetched}");
    // The zip became its three entries, the gzip its CSV.
    assert_eq!(fetched["resources_count"], 9);

    let show = assert_resources_read_back(d, &[], &site, &id, true);
    let resources = show["resources"].as_array().unwrap();
    // The primary URL is first; the 404 is kept with its status.
    assert_eq!(resources[0]["url"], urls[0].as_str());
    assert_eq!(resources[0]["position"], 1);
    let missing = resources
        .iter()
        .find(|r| r["url"].as_str().unwrap().ends_with("/missing.html"))
        .unwrap();
    assert_eq!(missing["status_code"], 404);
    let names = names_by_path(&site, &show);
    assert_eq!(names["/permits.csv.gz"].len(), 1);
    assert!(names["/permits.csv.gz"][0].ends_with("-permits.csv"), "{names:?}");
    assert_eq!(names["/archive.zip"].len(), 3);

    // Each resource is an object of its own under the bundle's prefix, with bundle.json beside them.
    let prefix = format!("bundles/{id}/");
    let listed = json(coffer(d, &["list", "--prefix", &prefix, "--json"]));
    assert_eq!(listed["objects"].as_array().unwrap().len(), 10, "{listed}");
    let manifest: Value =
        serde_json::from_str(&ok(coffer(d, &["get", &format!("{prefix}bundle.json")])).stdout).unwrap();
    assert_eq!(manifest["bundle_id"], id.as_str());
    assert_eq!(manifest["metadata"]["run_id"], "run_123");
    let listed_names: BTreeSet<&str> = manifest["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let shown_names: BTreeSet<&str> = resources.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(listed_names, shown_names);

    // The users' file layout: each resource a file with a .meta file beside it.
    let export = d.join("export");
    ok(coffer(d, &["bundle", "export", &id, export.to_str().unwrap()]));
    let bundle_dir = export.join(format!("bundle_{id}"));
    for resource in resources {
        let name = resource["name"].as_str().unwrap();
        assert_file_holds(&bundle_dir.join(name), &expected(&site, resource, true), name);
        let meta: Value =
            serde_json::from_slice(&std::fs::read(bundle_dir.join(format!("{name}.meta"))).unwrap()).unwrap();
        assert_eq!(meta["url"], resource["url"]);
        assert_eq!(meta["status_code"], resource["status_code"]);
    }

    // The WARC export: warcio reads every record and checks every digest.
    let warc = d.join("bundle.warc.gz");
    ok(coffer(d, &["bundle", "export", &id, "--warc", warc.to_str().unwrap()]));
    let Some(warcio) = client("warcio") else { return };
    let check = Command::new(&warcio).args(["check", "-v"]).arg(&warc).output().unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "warcio check: {report}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // One record per resource, and the warcinfo record first.
    assert_eq!(report.matches("digest pass").count(), resources.len() + 1, "{report}");
    assert!(!report.contains("fail"), "{report}");
    let index = Command::new(&warcio)
        .args(["index", "-f", "warc-type,warc-target-uri,http:status"])
        .arg(&warc)
        .output()
        .unwrap();
    assert!(index.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&index.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| r["warc-type"] == "response")
        .collect();
    assert_eq!(lines.len(), resources.len());
    for (line, resource) in lines.iter().zip(resources) {
        assert_eq!(line["warc-target-uri"], resource["url"]);
        assert_eq!(line["http:status"], resource["status_code"].to_string());
    }
}

#[test]
fn a_fetch_that_breaks_or_meets_a_bomb_fails_in_one_line_and_leaves_nothing() {
    let site = site(1024);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    let cut = [site.url("/index.html"), site.url("/cut.bin")];
    fails(
        coffer(d, &args(&["bundle", "fetch"], &cut)),
        10,
        &format!("resource {}: the body broke off", cut[1]),
    );
    let bomb = [site.url("/index.html"), site.url("/bomb.gz")];
    write(d, "coffer.toml", "[bundles]\nmax_expanded_bytes = 1048576\n");
    let run = coffer(d, &args(&["bundle", "fetch", "--unzip"], &bomb));
    assert_ne!(run.code, 0);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("/bomb.gz"), "{}", run.stderr);
    // Both bundles were aborted: none is left, nor any object.
    assert_eq!(json(coffer(d, &["bundle", "list", "--json"])), serde_json::json!([]));
    assert_eq!(
        json(coffer(d, &["list", "--prefix", "", "--json"]))["objects"],
        serde_json::json!([])
    );
    ok(coffer(d, &["verify"]));
}

/// Python's `zipfile` opens `zip`, checks every CRC (`testzip`) and prints
/// each entry's name and size, one per line.
fn python_zip_listing(zip: &Path) -> String {
    let script = "import sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  assert z.testzip() is None, z.testzip()\n\
                  for i in z.infolist(): print(i.filename, i.file_size)\n";
    let run = Command::new("python3").args(["-c", script]).arg(zip).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    String::from_utf8(run.stdout).unwrap()
}

#[test]
fn a_site_fetched_into_garage_is_one_zip_that_standard_tools_read() {
    let Some(backend) = garage().map(|g| g.table("backend")) else {
        return;
    };
    let site = site(48 * 1024 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "coffer.toml", &backend);
    ok(coffer(d, &["init"]));
    let urls = all_urls(&site);
    let fetched = json(coffer(d, &args(&["bundle", "fetch", "--json"], &urls)));
    let id = fetched["bundle_id"].as_str().unwrap().to_owned();
    assert_eq!(fetched["layout"], "zip");
    assert_eq!(fetched["storage_key"], format!("bundles/{id}/resources.zip"));
    // Without unzip each answer is one resource; the compressed ones are stored as they came.
    let show = assert_resources_read_back(d, &[], &site, &id, false);
    let resources = show["resources"].as_array().unwrap();
    assert_eq!(resources.len(), urls.len());

    let zip = d.join("bundle.zip");
    ok(coffer(d, &["bundle", "get", &id, "--output", zip.to_str().unwrap()]));
    if let Some(unzip) = client("unzip") {
        let test = Command::new(unzip).arg("-t").arg(&zip).output().unwrap();
        let said = String::from_utf8_lossy(&test.stdout);
        assert!(test.status.success(), "unzip -t: {said}");
        assert!(said.contains("No errors detected"), "{said}");
    }
    let listing = python_zip_listing(&zip);
    let entries: Vec<&str> = listing.lines().collect();
    assert_eq!(entries.len(), resources.len() + 1, "{listing}");
    assert!(
        entries.last().unwrap().starts_with("bundle.json "),
        "the manifest comes last: {listing}"
    );
    // The resources in the order they arrived, each with its size.
    let in_zip: BTreeSet<String> = entries[..resources.len()].iter().map(|e| (*e).to_owned()).collect();
    let recorded: BTreeSet<String> = resources
        .iter()
        .map(|r| format!("{} {}", r["name"].as_str().unwrap(), r["size"]))
        .collect();
    assert_eq!(in_zip, recorded);
    // Each entry unpacked by Python is what the site served.
    let unpacked = d.join("unpacked");
    let run = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
        ])
        .arg(&zip)
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(run.success());
    for resource in resources {
        let name = resource["name"].as_str().unwrap();
        assert_file_holds(&unpacked.join(name), &expected(&site, resource, false), name);
    }
    let manifest: Value = serde_json::from_slice(&std::fs::read(unpacked.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(manifest["resources"].as_array().unwrap().len(), resources.len());
    ok(coffer(d, &["verify"]));
}

#[test]
fn a_zip_bundle_built_from_the_shell_becomes_one_zip_at_completion() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    let id = ok(coffer(
        d,
        &[
            "bundle",
            "start",
            "--layout",
            "zip",
            "--primary-url",
            "https://example.com/",
        ],
    ))
    .stdout
    .trim()
    .to_owned();
    write(d, "permits.json", std::str::from_utf8(permits_json()).unwrap());
    ok(common::coffer_in(
        d,
        &[
            "bundle",
            "add",
            &id,
            "--url",
            "https://example.com/",
            "--content-type",
            "text/html",
            "-",
        ],
        Some(html()),
        &[],
    ));
    ok(coffer(
        d,
        &[
            "bundle",
            "add",
            &id,
            "--url",
            "https://example.com/permits.json",
            "--file",
            "permits.json",
        ],
    ));
    // Until completion the bundle has no zip to get.
    fails(coffer(d, &["bundle", "get", &id]), 5, "has no zip");
    ok(coffer(d, &["bundle", "complete", &id]));
    let zip = d.join("bundle.zip");
    ok(coffer(d, &["bundle", "get", &id, "--output", zip.to_str().unwrap()]));
    let listing = python_zip_listing(&zip);
    let entries: Vec<&str> = listing.lines().collect();
    assert_eq!(
        entries[..2],
        [
            format!("00001-index.html {}", html().len()),
            format!("00002-permits.json {}", permits_json().len())
        ]
    );
    assert!(entries[2].starts_with("bundle.json "), "{listing}");
    assert_eq!(entries.len(), 3);
    ok(coffer(d, &["verify"]));
}

/// The AWS CLI pointed at the SQS emulator (moto), or `None` when either is missing.
fn aws_sqs() -> Option<Command> {
    let endpoint = std::env::var("COFFER_TEST_SQS").unwrap_or_else(|_| "http://127.0.0.1:5000".to_owned());
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    if !coffer::testkit::services::service_available("the SQS emulator (moto)", &address).unwrap() {
        return None;
    }
    let mut aws = Command::new(client("aws")?);
    aws.args([
        "--endpoint-url",
        &endpoint,
        "--region",
        "us-east-1",
        "--output",
        "json",
        "sqs",
    ])
    .env("AWS_ACCESS_KEY_ID", "testing")
    .env("AWS_SECRET_ACCESS_KEY", "testing")
    .env_remove("AWS_PROFILE");
    Some(aws)
}

fn aws(args: &[&str]) -> Value {
    let mut command = aws_sqs().unwrap();
    let out = command.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "aws sqs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match out.stdout.is_empty() {
        true => Value::Null,
        false => serde_json::from_slice(&out.stdout).unwrap(),
    }
}

#[test]
fn completion_reaches_an_sqs_consumer_with_the_users_fields() {
    if aws_sqs().is_none() {
        return;
    }
    let site = site(1024);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    let queue_name = format!("coffer-bundles-{}", std::process::id());
    let queue = aws(&["create-queue", "--queue-name", &queue_name]);
    let queue_url = queue["QueueUrl"].as_str().unwrap().to_owned();
    let endpoint = std::env::var("COFFER_TEST_SQS").unwrap_or_else(|_| "http://127.0.0.1:5000".to_owned());
    ok(coffer(
        d,
        &[
            "hooks",
            "add",
            "sqs",
            "announce",
            &queue_url,
            "--region",
            "us-east-1",
            "--endpoint",
            &endpoint,
            "--access-key",
            "testing",
            "--secret-key",
            "testing",
            "--events",
            "bundle.completed",
        ],
    ));
    // The users' S3 pipeline: completion needs an SQS hook, which is there.
    write(d, "coffer.toml", "[bundles]\nrequire_sqs = true\n");
    let urls = [site.url("/index.html"), site.url("/api/permits.json")];
    let fetched = json(coffer(
        d,
        &args(
            &[
                "bundle",
                "fetch",
                "--recipe",
                "fr",
                "--complete-meta",
                "run_id=run_123",
                "--json",
            ],
            &urls,
        ),
    ));
    ok(coffer(d, &["hooks", "run", "--once"]));
    let received = aws(&[
        "receive-message",
        "--queue-url",
        &queue_url,
        "--max-number-of-messages",
        "10",
        "--wait-time-seconds",
        "2",
        "--message-attribute-names",
        "All",
    ]);
    aws(&["delete-queue", "--queue-url", &queue_url]);
    let messages = received["Messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{received}");
    let body: Value = serde_json::from_str(messages[0]["Body"].as_str().unwrap()).unwrap();
    assert_eq!(body["bundle_id"], fetched["bundle_id"]);
    assert_eq!(body["recipe_id"], "fr");
    assert_eq!(body["primary_url"], urls[0].as_str());
    assert_eq!(body["resources_count"], 2);
    assert_eq!(body["storage_key"], fetched["storage_key"]);
    assert_eq!(body["completion_timestamp"], fetched["completed_at"]);
    assert_eq!(body["metadata"], serde_json::json!({ "run_id": "run_123" }));
    // The stable id a receiver drops duplicates by.
    let attributes = &messages[0]["MessageAttributes"];
    assert_eq!(attributes["type"]["StringValue"], "bundle.completed");
    assert!(
        attributes["id"]["StringValue"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

#[test]
fn bundle_ids_from_several_processes_are_unique_and_sort_by_creation_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    let started: Vec<Vec<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    (0..5)
                        .map(|_| ok(coffer(d, &["bundle", "start"])).stdout.trim().to_owned())
                        .collect::<Vec<String>>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for ids in &started {
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "one process's ids in order: {ids:?}"
        );
    }
    let all: BTreeSet<&String> = started.iter().flatten().collect();
    assert_eq!(all.len(), 20, "unique");
    let listed = json(coffer(d, &["bundle", "list", "--json"]));
    let mut by_time: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["created_at"].as_str().unwrap().to_owned(),
                b["bundle_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(by_time.len(), 20);
    by_time.sort();
    let mut by_id: Vec<String> = by_time.iter().map(|(_, id)| id.clone()).collect();
    by_id.sort();
    let in_time_order: Vec<String> = by_time.into_iter().map(|(_, id)| id).collect();
    assert_eq!(in_time_order, by_id, "ids sort as their creation times do");
}

/// A small generator of pseudo-random numbers (xorshift), seeded per run and printed.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn fetches_killed_at_random_points_are_recovered_and_verify_clean() {
    let site = Site::start(vec![
        ("/index.html", Resource::ok("text/html", html())),
        ("/api/permits.json", Resource::ok("application/json", permits_json())),
        (
            "/data.bin",
            Resource::generated("application/octet-stream", 3 * 1024 * 1024),
        ),
        (
            "/slow.txt",
            Resource::slow(
                "text/plain",
                "slow line\n".repeat(2_000),
                4_000,
                Duration::from_millis(15),
            ),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    let log = d.join("announced.jsonl");
    ok(coffer(
        d,
        &[
            "hooks",
            "add",
            "filelog",
            "announce",
            log.to_str().unwrap(),
            "--events",
            "bundle.completed",
        ],
    ));
    let urls: Vec<String> = [
        "/index.html",
        "/api/permits.json",
        "/data.bin",
        "/slow.txt",
        "/data.bin",
    ]
    .iter()
    .map(|p| site.url(p))
    .collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut dice = Dice(seed);
    for round in 0..50 {
        let layout = if round % 2 == 0 { "dir" } else { "zip" };
        let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .current_dir(d)
            .args(args(&["bundle", "fetch", "--layout", layout, "--jobs", "2"], &urls))
            .env_remove("COFFER_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(dice.below(700)));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        child.wait().unwrap();
    }

    let recovered = json(coffer(d, &["bundle", "recover", "--json"]));
    let listed = json(coffer(d, &["bundle", "list", "--json"]));
    let bundles = listed.as_array().unwrap();
    let open: BTreeSet<&str> = bundles
        .iter()
        .filter(|b| b["completed_at"].is_null())
        .map(|b| b["bundle_id"].as_str().unwrap())
        .collect();
    let complete: BTreeSet<&str> = bundles
        .iter()
        .filter(|b| !b["completed_at"].is_null())
        .map(|b| b["bundle_id"].as_str().unwrap())
        .collect();
    eprintln!("{} complete, {} open", complete.len(), open.len());
    // Every open bundle is listed by recover.
    let reported_open: BTreeSet<&str> = recovered["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bundle_id"].as_str().unwrap())
        .collect();
    assert_eq!(reported_open, open);
    // Every completed bundle is whole and was announced (at least once).
    let announced: BTreeSet<String> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["data"]["bundle_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for id in &complete {
        assert!(announced.contains(*id), "bundle {id} was completed but never announced");
        let show = json(coffer(d, &["bundle", "show", id, "--json"]));
        assert_eq!(show["resources"].as_array().unwrap().len(), urls.len(), "{show}");
        for resource in show["resources"].as_array().unwrap() {
            ok(coffer(
                d,
                &[
                    "bundle",
                    "get",
                    id,
                    "--resource",
                    resource["name"].as_str().unwrap(),
                    "--output",
                    "/dev/null",
                ],
            ));
        }
    }
    ok(coffer(d, &["verify"]));
    // Aborting what the dead runs left open leaves the store as clean.
    let aborted = json(coffer(d, &["bundle", "recover", "--abort-older-than", "0s", "--json"]));
    assert_eq!(aborted["aborted"].as_array().unwrap().len(), open.len());
    assert_eq!(
        json(coffer(d, &["bundle", "list", "--pending", "--json"])),
        serde_json::json!([])
    );
    ok(coffer(d, &["verify"]));
}
