//! The S3 endpoint of `coffer serve` (`--s3-listen`), started as a real
//! process, driven by the S3 clients people use: the AWS CLI, boto3 and
//! rclone; on local disk with SQLite, and on Garage with PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::garage::postgres_and_garage;
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

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_on_garage_and_postgres() {
    let Some((_database, dir)) = postgres_and_garage().await else {
        return;
    };
    let d = dir.path();
    let server = s3_server(d, &[]);
    tokio::task::block_in_place(|| aws_cli_story(d, &server, &[]));
    let info = json(coffer(d, &["info", "--json"]));
    assert!(info["catalog"].as_str().unwrap().starts_with("postgres"), "{info}");
}

/// 1 GiB through `aws s3 cp`, up in parts and back, byte for byte.
#[test]
fn a_gibibyte_goes_up_in_parts_and_comes_back() {
    let Some(bin) = client("aws") else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = s3_server(d, &[]);
    let aws = Aws {
        bin,
        endpoint: server.s3_url.as_deref().unwrap(),
        keys: s3_keys(d, "write", "big"),
    };
    aws.ok(&["s3", "mb", "s3://big"]);
    let file = d.join("gib.bin");
    let sha = big_file(&file, 1 << 30);
    aws.ok(&["s3", "cp", file.to_str().unwrap(), "s3://big/gib.bin"]);
    std::fs::remove_file(&file).unwrap();
    aws.ok(&["s3", "cp", "s3://big/gib.bin", file.to_str().unwrap()]);
    assert_eq!(sha256_file(&file), sha, "1 GiB reads back");
    let head = aws.json(&["s3api", "head-object", "--bucket", "big", "--key", "gib.bin"]);
    assert_eq!(head["ContentLength"], 1u64 << 30);
    let verify = ok(coffer(d, &["verify"]));
    assert_eq!(verify.code, 0, "no part is left behind");
}

/// boto3's story, as a script: buckets, put and get with metadata,
/// multipart, versions, tags, retention refusing a delete, a presigned URL
/// and an altered one, batch delete.
const BOTO3_SCRIPT: &str = r#"
import os, sys, urllib.request, urllib.error
import boto3
from botocore.exceptions import ClientError

s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
                  aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"])

def code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None

s3.create_bucket(Bucket="boto")
assert "boto" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
first = s3.put_object(Bucket="boto", Key="a/b.txt", Body=b"one", Metadata={"origin": "boto3"},
                      ContentType="text/plain")
second = s3.put_object(Bucket="boto", Key="a/b.txt", Body=b"two")
assert first["VersionId"] != second["VersionId"]
got = s3.get_object(Bucket="boto", Key="a/b.txt", VersionId=first["VersionId"])
assert got["Body"].read() == b"one" and got["Metadata"] == {"origin": "boto3"}, got
assert s3.get_object(Bucket="boto", Key="a/b.txt", Range="bytes=1-")["Body"].read() == b"wo"
assert code(lambda: s3.get_object(Bucket="boto", Key="missing")) == "NoSuchKey"

part = os.urandom(5 << 20)
upload = s3.create_multipart_upload(Bucket="boto", Key="big.bin")["UploadId"]
assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="boto")["Uploads"]] == [upload]
e1 = s3.upload_part(Bucket="boto", Key="big.bin", UploadId=upload, PartNumber=1, Body=part)["ETag"]
e2 = s3.upload_part(Bucket="boto", Key="big.bin", UploadId=upload, PartNumber=2, Body=b"tail")["ETag"]
assert len(s3.list_parts(Bucket="boto", Key="big.bin", UploadId=upload)["Parts"]) == 2
s3.complete_multipart_upload(Bucket="boto", Key="big.bin", UploadId=upload,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
assert s3.get_object(Bucket="boto", Key="big.bin")["Body"].read() == part + b"tail"
aborted = s3.create_multipart_upload(Bucket="boto", Key="never.bin")["UploadId"]
s3.abort_multipart_upload(Bucket="boto", Key="never.bin", UploadId=aborted)
assert code(lambda: s3.list_parts(Bucket="boto", Key="never.bin", UploadId=aborted)) == "NoSuchUpload"

s3.put_object_tagging(Bucket="boto", Key="a/b.txt", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
assert s3.get_object_tagging(Bucket="boto", Key="a/b.txt")["TagSet"] == [{"Key": "k", "Value": "v"}]
s3.copy_object(Bucket="boto", Key="copy.txt", CopySource={"Bucket": "boto", "Key": "a/b.txt"})
assert s3.get_object(Bucket="boto", Key="copy.txt")["Body"].read() == b"two"

import datetime
s3.put_object_retention(Bucket="boto", Key="copy.txt", Retention={"Mode": "COMPLIANCE",
    "RetainUntilDate": datetime.datetime(2099, 1, 1, tzinfo=datetime.timezone.utc)})
current = s3.head_object(Bucket="boto", Key="copy.txt")["VersionId"]
assert code(lambda: s3.delete_object(Bucket="boto", Key="copy.txt", VersionId=current)) == "AccessDenied"

url = s3.generate_presigned_url("get_object", Params={"Bucket": "boto", "Key": "a/b.txt"}, ExpiresIn=300)
assert urllib.request.urlopen(url).read() == b"two"
try:
    urllib.request.urlopen(url.replace("Signature=", "Signature=0"))
    sys.exit("an altered presigned URL was accepted")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code

versions = s3.list_object_versions(Bucket="boto", Prefix="a/")["Versions"]
assert len(versions) == 2, versions
deleted = s3.delete_objects(Bucket="boto", Delete={"Objects": [{"Key": "a/b.txt"}, {"Key": "big.bin"}]})
assert len(deleted["Deleted"]) == 2, deleted
markers = s3.list_object_versions(Bucket="boto", Prefix="a/")["DeleteMarkers"]
assert len(markers) == 1 and markers[0]["IsLatest"], markers
print("boto3 story done")
"#;

#[test]
fn boto3_drives_the_endpoint() {
    let Some(python) = client("python3") else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = s3_server(d, &[]);
    let (ak, sk) = s3_keys(d, "write", "boto");
    let script = d.join("story.py");
    std::fs::write(&script, BOTO3_SCRIPT).unwrap();
    let output = Command::new(python)
        .arg(&script)
        .env("ENDPOINT", server.s3_url.as_deref().unwrap())
        .env("AK", ak)
        .env("SK", sk)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The same keys through the CLI.
    assert_eq!(coffer(d, &["get", "boto/copy.txt"]).stdout, "two");
}

#[test]
fn rclone_copies_lists_and_checks_hashes() {
    let Some(rclone) = client("rclone") else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = s3_server(d, &[]);
    let (ak, sk) = s3_keys(d, "write", "rclone");
    let source = d.join("source");
    std::fs::create_dir_all(source.join("sub")).unwrap();
    std::fs::write(source.join("a.txt"), "alpha").unwrap();
    std::fs::write(source.join("sub/b.bin"), vec![7u8; 3 << 20]).unwrap();
    let rclone_on = |args: &[&str]| {
        Command::new(&rclone)
            .args(args)
            .args([
                "--s3-provider",
                "Other",
                "--s3-endpoint",
                server.s3_url.as_deref().unwrap(),
                "--s3-access-key-id",
                &ak,
                "--s3-secret-access-key",
                &sk,
                "--s3-region",
                "us-east-1",
                "--s3-force-path-style",
            ])
            .env_remove("AWS_CA_BUNDLE")
            .env("RCLONE_CONFIG", "/dev/null")
            .output()
            .unwrap()
    };
    let run = |args: &[&str]| {
        let output = rclone_on(args);
        assert!(
            output.status.success(),
            "rclone {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let source = source.to_str().unwrap();
    run(&["mkdir", ":s3:mirror"]);
    run(&["copy", source, ":s3:mirror/files"]);
    let listed = run(&["ls", ":s3:mirror"]);
    assert!(
        listed.contains("files/a.txt") && listed.contains("files/sub/b.bin"),
        "{listed}"
    );
    // check compares sizes and MD5 hashes (coffer's ETags).
    run(&["check", source, ":s3:mirror/files"]);
    assert_eq!(coffer(d, &["get", "mirror/files/a.txt"]).stdout, "alpha");
    // A changed file is seen by check, and copied as a new version.
    std::fs::write(Path::new(source).join("a.txt"), "beta").unwrap();
    let differs = rclone_on(&["check", source, ":s3:mirror/files"]);
    assert!(!differs.status.success(), "check finds the changed file");
    run(&["copy", source, ":s3:mirror/files"]);
    run(&["check", source, ":s3:mirror/files"]);
    let versions = json(coffer(d, &["versions", "mirror/files/a.txt", "--json"]));
    assert_eq!(versions.as_array().unwrap().len(), 2, "{versions}");
}
