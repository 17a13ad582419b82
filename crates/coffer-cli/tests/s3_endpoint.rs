//! The S3 endpoint of `coffer serve` (`--s3-listen`), started as a real
//! process, driven by the S3 clients people use: the AWS CLI, boto3 and
//! rclone; on local disk with SQLite, and on Garage with PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::serve::{Served, serve};
use common::{client, coffer, coffer_in, json, ok};
use sha2::{Digest, Sha256};

/// S3 credentials of a new token of `scope` (and more `args`).
fn s3_keys(d: &Path, scope: &str, name: &str) -> (String, String) {
    let made = json(coffer(
        d,
        &["token", "create", "--s3", "--scope", scope, "--name", name, "--json"],
    ));
    (
        made["token"]["access_key"].as_str().unwrap().to_owned(),
        made["s3_secret_key"].as_str().unwrap().to_owned(),
    )
}

/// The AWS CLI on the endpoint of `server` with `keys`.
struct Aws<'a> {
    bin: PathBuf,
    endpoint: &'a str,
    keys: (String, String),
}

impl Aws<'_> {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(["--endpoint-url", self.endpoint])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &self.keys.0)
            .env("AWS_SECRET_ACCESS_KEY", &self.keys.1)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .unwrap()
    }

    /// Run, expect success, and return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Run, expect failure naming `code`.
    fn refused(&self, args: &[&str], code: &str) {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "aws {args:?} succeeded");
        assert!(stderr.contains(code), "aws {args:?}: expected {code}, got {stderr}");
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

/// A server with the S3 endpoint in `d`, with `env`.
fn s3_server(d: &Path, env: &[(&str, &str)]) -> Served {
    let server = serve(d, &["--s3-listen", "127.0.0.1:0"], env);
    assert!(server.s3_url.is_some(), "no S3 endpoint: {}", server.logs());
    server
}

/// A file of `size` bytes that do not repeat in 1 MiB blocks, and its SHA-256.
fn big_file(path: &Path, size: usize) -> String {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hash = Sha256::new();
    let mut block: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut left = size;
    let mut n = 0u32;
    while left > 0 {
        block[..4].copy_from_slice(&n.to_le_bytes());
        let take = left.min(block.len());
        file.write_all(&block[..take]).unwrap();
        hash.update(&block[..take]);
        left -= take;
        n += 1;
    }
    file.flush().unwrap();
    hex::encode(hash.finalize())
}

/// `curl` on `url`: the status and the body.
fn curl(url: &str) -> (u16, Vec<u8>) {
    let output = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", url])
        .output()
        .unwrap();
    let mut body = output.stdout;
    let at = body.iter().rposition(|b| *b == b'\n').unwrap();
    let status = std::str::from_utf8(&body[at + 1..]).unwrap().parse().unwrap();
    body.truncate(at);
    (status, body)
}

fn sha256_file(path: &Path) -> String {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hash = Sha256::new();
    std::io::copy(&mut file, &mut hash).unwrap();
    hex::encode(hash.finalize())
}

/// The AWS CLI's story: buckets, small and multipart copies read back
/// byte for byte (and by the CLI, the same objects), listings, versions by
/// id, a presigned URL, retention and legal hold refusing a versioned
/// delete, batch delete, and the token's scope.
fn aws_cli_story(d: &Path, server: &Served, env: &[(&str, &str)]) {
    let Some(bin) = client("aws") else { return };
    let aws = Aws {
        bin,
        endpoint: server.s3_url.as_deref().unwrap(),
        keys: s3_keys(d, "admin", "ci-s3"),
    };
    let coffer_env = |args: &[&str]| coffer_in(d, args, None, env);
    aws.ok(&["s3", "mb", "s3://photos"]);
    assert!(aws.ok(&["s3", "ls"]).contains("photos"), "the new bucket is listed");
    aws.refused(&["s3", "mb", "s3://photos"], "BucketAlreadyOwnedByYou");

    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let one = work.join("one.txt");
    std::fs::write(&one, "x").unwrap();
    let twenty = work.join("twenty.bin");
    let twenty_sha = big_file(&twenty, 20 << 20);
    aws.ok(&["s3", "cp", one.to_str().unwrap(), "s3://photos/one.txt"]);
    aws.ok(&["s3", "cp", twenty.to_str().unwrap(), "s3://photos/2024/twenty.bin"]);
    let back = work.join("back.bin");
    aws.ok(&["s3", "cp", "s3://photos/2024/twenty.bin", back.to_str().unwrap()]);
    assert_eq!(sha256_file(&back), twenty_sha, "20 MiB in parts reads back");
    aws.ok(&["s3", "cp", "s3://photos/one.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), b"x");
    // The same objects through the CLI, and each write is a version with
    // its audit row, made as the token.
    let got = ok(coffer_env(&[
        "get",
        "photos/2024/twenty.bin",
        "-o",
        back.to_str().unwrap(),
    ]));
    assert_eq!(got.code, 0);
    assert_eq!(sha256_file(&back), twenty_sha);
    let audit = json(coffer_env(&["audit", "--key", "photos/2024/twenty.bin", "--json"]));
    assert!(
        audit.to_string().contains("token:ci-s3"),
        "audited as the token: {audit}"
    );

    let listed = aws.ok(&["s3", "ls", "s3://photos/", "--recursive"]);
    assert!(
        listed.contains("one.txt") && listed.contains("2024/twenty.bin"),
        "{listed}"
    );
    let top = aws.json(&["s3api", "list-objects-v2", "--bucket", "photos", "--delimiter", "/"]);
    assert_eq!(top["CommonPrefixes"][0]["Prefix"], "2024/", "{top}");

    // Versions: a second put, the old one read and deleted by id.
    std::fs::write(&one, "y").unwrap();
    aws.ok(&["s3", "cp", one.to_str().unwrap(), "s3://photos/one.txt"]);
    let versions = aws.json(&[
        "s3api",
        "list-object-versions",
        "--bucket",
        "photos",
        "--prefix",
        "one.txt",
    ]);
    let versions = versions["Versions"].as_array().unwrap().clone();
    assert_eq!(versions.len(), 2, "{versions:?}");
    let old = versions.iter().find(|v| v["IsLatest"] == false).unwrap()["VersionId"]
        .as_str()
        .unwrap()
        .to_owned();
    aws.ok(&[
        "s3api",
        "get-object",
        "--bucket",
        "photos",
        "--key",
        "one.txt",
        "--version-id",
        &old,
        back.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&back).unwrap(), b"x", "the old version by id");
    aws.ok(&[
        "s3api",
        "delete-object",
        "--bucket",
        "photos",
        "--key",
        "one.txt",
        "--version-id",
        &old,
    ]);
    aws.refused(
        &[
            "s3api",
            "get-object",
            "--bucket",
            "photos",
            "--key",
            "one.txt",
            "--version-id",
            &old,
            back.to_str().unwrap(),
        ],
        "NoSuchVersion",
    );

    // A presigned URL works for anyone holding it; an altered one does not.
    let url = aws.ok(&["s3", "presign", "s3://photos/one.txt", "--expires-in", "300"]);
    let url = url.trim();
    assert_eq!(curl(url), (200, b"y".to_vec()));
    let altered = url.replace("one.txt", "two.txt");
    assert_eq!(curl(&altered).0, 403, "an altered presigned URL is refused");

    // Retention and a legal hold refuse a versioned delete.
    let head = aws.json(&["s3api", "head-object", "--bucket", "photos", "--key", "one.txt"]);
    let current = head["VersionId"].as_str().unwrap().to_owned();
    aws.ok(&[
        "s3api",
        "put-object-retention",
        "--bucket",
        "photos",
        "--key",
        "one.txt",
        "--retention",
        "Mode=GOVERNANCE,RetainUntilDate=2099-01-01T00:00:00Z",
    ]);
    let retention = aws.json(&[
        "s3api",
        "get-object-retention",
        "--bucket",
        "photos",
        "--key",
        "one.txt",
    ]);
    assert_eq!(retention["Retention"]["Mode"], "GOVERNANCE", "{retention}");
    aws.ok(&[
        "s3api",
        "put-object-legal-hold",
        "--bucket",
        "photos",
        "--key",
        "one.txt",
        "--legal-hold",
        "Status=ON",
    ]);
    let hold = aws.json(&[
        "s3api",
        "get-object-legal-hold",
        "--bucket",
        "photos",
        "--key",
        "one.txt",
    ]);
    assert_eq!(hold["LegalHold"]["Status"], "ON");
    aws.refused(
        &[
            "s3api",
            "delete-object",
            "--bucket",
            "photos",
            "--key",
            "one.txt",
            "--version-id",
            &current,
        ],
        "AccessDenied",
    );
    aws.ok(&[
        "s3api",
        "head-object",
        "--bucket",
        "photos",
        "--key",
        "one.txt",
        "--version-id",
        &current,
    ]);

    // Tags.
    aws.ok(&[
        "s3api",
        "put-object-tagging",
        "--bucket",
        "photos",
        "--key",
        "2024/twenty.bin",
        "--tagging",
        "TagSet=[{Key=team,Value=scans}]",
    ]);
    let tags = aws.json(&[
        "s3api",
        "get-object-tagging",
        "--bucket",
        "photos",
        "--key",
        "2024/twenty.bin",
    ]);
    assert_eq!(tags["TagSet"][0]["Value"], "scans");
    let versioning = aws.json(&["s3api", "get-bucket-versioning", "--bucket", "photos"]);
    assert_eq!(versioning["Status"], "Enabled");

    // A read-only token may read but not write; nothing changes.
    let reader = Aws {
        keys: s3_keys(d, "read", "ci-reader"),
        ..aws
    };
    reader.ok(&["s3", "ls", "s3://photos/"]);
    reader.refused(
        &["s3", "cp", one.to_str().unwrap(), "s3://photos/new.txt"],
        "AccessDenied",
    );
    assert_ne!(coffer_env(&["exists", "photos/new.txt"]).code, 0);
    let stranger = Aws {
        keys: ("CFNOTAKEY".into(), "nope".into()),
        ..reader
    };
    stranger.refused(&["s3", "ls"], "InvalidAccessKeyId");

    // Batch delete: rm --recursive; the bucket then holds one locked key.
    let aws = Aws {
        keys: s3_keys(d, "write", "ci-cleaner"),
        ..stranger
    };
    aws.ok(&["s3", "rm", "s3://photos/2024/", "--recursive"]);
    assert_ne!(coffer_env(&["exists", "photos/2024/twenty.bin"]).code, 0);
    aws.refused(&["s3", "rb", "s3://photos"], "BucketNotEmpty");
}

#[test]
fn the_aws_cli_on_local_disk_and_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let server = s3_server(dir.path(), &[]);
    aws_cli_story(dir.path(), &server, &[]);
}
