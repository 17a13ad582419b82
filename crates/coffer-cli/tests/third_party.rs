//! Cross-checks with third-party S3 clients on Garage: what coffer writes is
//! read back exactly by the AWS CLI and by rclone, and a bucket the AWS CLI
//! filled comes into coffer with every byte intact.
//! `scripts/services/clients.sh` installs both clients.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[allow(dead_code)] // this file uses some of the shared helpers
mod common;

use common::garage::garage;
use common::{client, coffer, coffer_in, flush, json, ok};
use sha2::Digest;

fn varied(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[test]
fn what_coffer_writes_reads_back_through_the_aws_cli_and_rclone() {
    let (Some(garage), Some(aws), Some(rclone)) = (garage(), client("aws"), client("rclone")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("coffer.toml"),
        format!("store = \"s3\"\n{}", garage.table("stores.s3")),
    )
    .unwrap();
    let small = b"region,total\nnorth,10\n".to_vec();
    let large = varied(11 << 20, 7); // uploaded in parts
    std::fs::write(d.join("large.bin"), &large).unwrap();
    let v_small = json(coffer_in(d, &["put", "reports/q1.csv", "--json"], Some(&small), &[]));
    let v_large = json(coffer(d, &["put", "data/large.bin", "--file", "large.bin", "--json"]));
    flush(d);

    for (version, bytes) in [(&v_small, &small), (&v_large, &large)] {
        let path = version["blob_path"].as_str().unwrap();
        let sha256 = version["sha256"].as_str().unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(bytes)), sha256);
        let url = format!("s3://{}/{path}", garage.bucket);
        let through_aws = garage.aws(&aws, &["s3", "cp", &url, "-"]);
        assert!(through_aws == *bytes, "the AWS CLI reads {path} exactly");
        let remote = format!(":s3:{}/{path}", garage.bucket);
        let through_rclone = garage.rclone(&rclone, &["cat", &remote]);
        assert!(through_rclone == *bytes, "rclone reads {path} exactly");
        let check = garage.rclone(&rclone, &["hashsum", "sha256", "--download", &remote]);
        assert!(
            String::from_utf8_lossy(&check).starts_with(sha256),
            "rclone's SHA-256 is coffer's"
        );
    }
    // Each version's manifest is there for other tools to read too.
    let listing = String::from_utf8(garage.aws(
        &aws,
        &["s3", "ls", "--recursive", &format!("s3://{}/manifests/", garage.bucket)],
    ))
    .unwrap();
    assert_eq!(listing.lines().count(), 2, "{listing}");
}

#[test]
fn a_bucket_filled_by_the_aws_cli_comes_into_coffer_intact() {
    let (Some(garage), Some(aws)) = (garage(), client("aws")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let source = d.join("source");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("a.txt", b"alpha".to_vec()),
        ("nested/deeper/b.csv", b"x,y\n1,2\n".to_vec()),
        ("nested/c.bin", varied(9 << 20, 3)), // the AWS CLI uploads this in parts
        ("empty.dat", Vec::new()),
    ];
    for (name, bytes) in &files {
        let path = source.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    garage.aws(&aws, &["s3", "mb", &format!("s3://{}", garage.bucket)]);
    garage.aws(
        &aws,
        &[
            "s3",
            "cp",
            "--recursive",
            source.to_str().unwrap(),
            &format!("s3://{}/export/", garage.bucket),
        ],
    );

    std::fs::write(d.join("coffer.toml"), garage.table("stores.theirs")).unwrap();
    let imported = ok(coffer(
        d,
        &[
            "import",
            "--from-store",
            "theirs",
            "--source-prefix",
            "export",
            "--prefix",
            "imported/",
        ],
    ));
    assert!(imported.stdout.contains("imported 4 objects"), "{}", imported.stdout);
    for (name, bytes) in &files {
        let got = coffer(d, &["get", &format!("imported/{name}"), "--output", "out.bin"]);
        assert_eq!(got.code, 0, "{}", got.stderr);
        assert!(std::fs::read(d.join("out.bin")).unwrap() == *bytes, "{name} intact");
        let meta = json(coffer(d, &["metadata", &format!("imported/{name}"), "--json"]));
        assert_eq!(
            meta["sha256"].as_str().unwrap(),
            hex::encode(sha2::Sha256::digest(bytes))
        );
    }
}

/// Above 64 MiB a version's ETag is S3's multipart ETag over 8 MiB parts:
/// the one Garage gives the same file uploaded by the AWS CLI (whose
/// default part size is 8 MiB). Up to 64 MiB it is the MD5 of the bytes.
#[test]
fn a_large_objects_etag_is_the_one_the_aws_cli_upload_gets() {
    let (Some(garage), Some(aws)) = (garage(), client("aws")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let large = varied(100 << 20, 11);
    std::fs::write(d.join("large.bin"), &large).unwrap();
    garage.aws(&aws, &["s3", "mb", &format!("s3://{}", garage.bucket)]);
    let url = format!("s3://{}/large.bin", garage.bucket);
    garage.aws(&aws, &["s3", "cp", d.join("large.bin").to_str().unwrap(), &url]);
    let head = garage.aws(
        &aws,
        &["s3api", "head-object", "--bucket", &garage.bucket, "--key", "large.bin"],
    );
    let head: serde_json::Value = serde_json::from_slice(&head).unwrap();
    let theirs = head["ETag"].as_str().unwrap().trim_matches('"').to_owned();
    assert!(theirs.ends_with("-13"), "{theirs}");
    let ours = json(coffer(d, &["put", "large.bin", "--file", "large.bin", "--json"]));
    assert_eq!(ours["etag"], theirs.as_str());
    let small = varied(64 << 20, 5);
    std::fs::write(d.join("small.bin"), &small).unwrap();
    let ours = json(coffer(d, &["put", "small.bin", "--file", "small.bin", "--json"]));
    assert_eq!(ours["etag"], hex::encode(md5_of(&small)));
}

fn md5_of(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest as _;
    md5::Md5::digest(bytes).into()
}
