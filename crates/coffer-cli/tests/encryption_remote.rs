//! End-to-end: encryption at rest on object stores. On moto (S3) and
//! Azurite (Azure) every size round-trips and no stored object holds
//! plaintext; moto's KMS (real AES-GCM, encryption context enforced) wraps
//! the data keys, and a rotation to a second KMS key reads everything back;
//! the spool, the cold tier and a migration keep only ciphertext too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use coffer::{BackendConfig, Config};
use common::sealed::{MARKER, SEGMENT, content, get, put_file};
use common::{client, coffer, coffer_in, json, ok};
use futures::TryStreamExt;

/// Every object `backend` holds, read raw: none may hold the marker.
fn assert_no_plaintext(backend: &BackendConfig) {
    let config = Config::default();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let backend = coffer::open_backend(backend, &config).await.unwrap();
        let paths: Vec<String> = backend.list("").await.unwrap().try_collect().await.unwrap();
        assert!(paths.iter().any(|p| p.starts_with("blobs/")), "{paths:?}");
        for path in paths {
            let chunks: Vec<bytes::Bytes> = backend.read(&path, None).await.unwrap().try_collect().await.unwrap();
            let bytes = chunks.concat();
            assert!(!bytes.windows(MARKER.len()).any(|w| w == MARKER), "plaintext in {path}");
        }
    });
}

fn round_trips(d: &Path, backend: &BackendConfig, env: &[(&str, &str)]) {
    let sizes = [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 100 << 20];
    for (i, size) in sizes.into_iter().enumerate() {
        let data = content(size, i as u8);
        put_file(d, &format!("sizes/{size}"), &data, env);
        assert!(get(d, &[&format!("sizes/{size}")], env) == data, "size {size}");
    }
    let data = content(SEGMENT + 1, 4);
    let key = format!("sizes/{}", SEGMENT + 1);
    let out = d.join("range.bin");
    ok(coffer_in(
        d,
        &["get", &key, "--range", "65534-65536", "-o", out.to_str().unwrap()],
        None,
        env,
    ));
    assert_eq!(std::fs::read(out).unwrap(), &data[SEGMENT - 2..=SEGMENT]);
    assert_no_plaintext(backend);
    let verify = ok(coffer_in(d, &["verify"], None, env)).stdout;
    assert!(verify.contains("0 problems"), "{verify}");
}

fn s3_table(s3: &coffer::backend::S3Config) -> String {
    format!(
        "kind = \"s3\"\nbucket = \"{}\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\n\
         access_key_id = \"test\"\nsecret_access_key = \"test\"\ncreate_bucket = true\n",
        s3.bucket,
        s3.endpoint.as_deref().unwrap()
    )
}

#[test]
fn content_on_moto_and_azurite_is_ciphertext_and_round_trips() {
    if let Some(s3) = coffer::testkit::services::moto_bucket().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        ok(coffer(d, &["keys", "generate", "k.key"]));
        let config = format!("[backend]\n{}\n[encryption]\nkey_file = \"k.key\"\n", s3_table(&s3));
        std::fs::write(d.join("coffer.toml"), config).unwrap();
        round_trips(d, &BackendConfig::S3(Box::new(s3)), &[]);
        // Both layers, where the bucket encrypts too.
        let with_sse = std::fs::read_to_string(d.join("coffer.toml")).unwrap().replace(
            "create_bucket = true\n",
            "create_bucket = true\nserver_side_encryption = \"AES256\"\n",
        );
        std::fs::write(d.join("coffer.toml"), with_sse).unwrap();
        let info = json(coffer(d, &["info", "--json"]));
        assert!(
            info["encryption"].as_str().unwrap().contains("client-side AES-256-GCM"),
            "{info}"
        );
        assert_eq!(
            info["server_side_encryption"], "S3 server-side encryption AES256",
            "{info}"
        );
        put_file(d, "sse.bin", &content(10, 1), &[]);
        assert!(get(d, &["sse.bin"], &[]) == content(10, 1));
        // A presigned URL would hand out ciphertext: the URL is a link
        // through `coffer serve`, which decrypts.
        let link = common::ok(coffer(d, &["url", "sse.bin"])).stdout;
        assert!(link.contains("/links/sse.bin?method=get&version="), "{link}");
    }
    if let Some(azure) = coffer::testkit::services::azurite_container().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        ok(coffer(d, &["keys", "generate", "k.key"]));
        let config = format!(
            "[backend]\nkind = \"azure\"\ncontainer = \"{}\"\nconnection_string = \"{}\"\ncreate_container = true\n\
             [encryption]\nkey_file = \"k.key\"\n",
            azure.container,
            azure.connection_string.clone().unwrap(),
        );
        std::fs::write(d.join("coffer.toml"), config).unwrap();
        round_trips(d, &BackendConfig::Azure(Box::new(azure)), &[]);
    }
}

/// A new KMS key on moto: its ARN.
fn moto_kms_key(aws: &Path, endpoint: &str) -> String {
    let out = std::process::Command::new(aws)
        .args([
            "--endpoint-url",
            endpoint,
            "kms",
            "create-key",
            "--query",
            "KeyMetadata.Arn",
            "--output",
            "text",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn kms_keys_on_moto_wrap_data_keys_and_rotate_to_another_kms_key() {
    let Some(s3) = coffer::testkit::services::moto_bucket().unwrap() else {
        return;
    };
    let Some(aws) = client("aws") else {
        return;
    };
    let endpoint = s3.endpoint.clone().unwrap();
    let (first, second) = (moto_kms_key(&aws, &endpoint), moto_kms_key(&aws, &endpoint));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")];
    let config = |key: &str| {
        format!(
            "[backend]\n{}\n[encryption]\nkms_key_id = \"{key}\"\nkms_endpoint = \"{endpoint}\"\n",
            s3_table(&s3)
        )
    };
    std::fs::write(d.join("coffer.toml"), config(&first)).unwrap();
    let data = content(3 * SEGMENT, 1);
    for i in 0..5 {
        put_file(d, &format!("kms/{i}"), &content(1000 + i, i as u8), &env);
    }
    put_file(d, "kms/big", &data, &env);
    assert!(get(d, &["kms/big"], &env) == data);
    // Without credentials the key cannot be reached: one line, exit 17.
    common::fails(coffer(d, &["get", "kms/big"]), 17, "needs credentials");

    let rotated = json(coffer_in(
        d,
        &[
            "keys",
            "rotate",
            "--new-kms-key-id",
            &second,
            "--new-kms-endpoint",
            &endpoint,
            "--json",
        ],
        None,
        &env,
    ));
    assert_eq!(rotated["rewrapped"], 6, "{rotated}");
    std::fs::write(d.join("coffer.toml"), config(&second)).unwrap();
    assert!(get(d, &["kms/big"], &env) == data);
    for i in 0..5 {
        assert!(get(d, &[&format!("kms/{i}")], &env) == content(1000 + i, i as u8));
    }
    let status = json(coffer_in(d, &["keys", "status", "--json"], None, &env));
    assert_eq!(status["key_id"], format!("kms:{second}"));
    assert_eq!(status["data_keys"][format!("kms:{second}")], 6, "{status}");
    assert_no_plaintext(&BackendConfig::S3(Box::new(s3)));
}

#[test]
fn the_spool_the_cold_tier_and_a_migration_hold_only_ciphertext() {
    let Some(s3) = coffer::testkit::services::moto_bucket().unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["keys", "generate", "k.key"]));
    let dead = coffer::backend::S3Config {
        endpoint: Some("http://127.0.0.1:9".into()),
        ..s3.clone()
    };
    let tables = |backend: &coffer::backend::S3Config| {
        format!(
            "spool = \"spool\"\nbackend_wait = \"0s\"\ncold_store = \"cold\"\n[backend]\n{}\n\
             [stores.cold]\nkind = \"fs\"\nroot = \"cold\"\n[stores.copy]\nkind = \"fs\"\nroot = \"copy\"\n\
             [encryption]\nkey_file = \"k.key\"\n",
            s3_table(backend)
        )
    };
    // The store does not answer: the put waits in the spool, sealed.
    std::fs::write(d.join("coffer.toml"), tables(&dead)).unwrap();
    let data = content(2 * SEGMENT + 7, 9);
    std::fs::write(d.join("upload.bin"), &data).unwrap();
    let spooled = coffer(d, &["put", "spooled.bin", "-f", "upload.bin"]);
    assert_eq!(spooled.code, 0, "{}", spooled.stderr);
    assert!(
        spooled.stderr.contains("waits in the local spool"),
        "{}",
        spooled.stderr
    );
    assert_no_plaintext(&BackendConfig::Fs {
        root: Some(d.join("spool")),
    });
    std::fs::write(d.join("coffer.toml"), tables(&s3)).unwrap();
    ok(coffer(d, &["sync"]));
    assert!(get(d, &["spooled.bin"], &[]) == data);
    let id = json(coffer(d, &["versions", "spooled.bin", "--json"]))[0]["version_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(coffer(
        d,
        &["tier", "move", "spooled.bin", "--version", &id, "--to", "cold"],
    ));
    assert!(get(d, &["spooled.bin"], &[]) == data);
    assert_no_plaintext(&BackendConfig::Fs {
        root: Some(d.join("cold")),
    });
    ok(coffer(
        d,
        &["tier", "move", "spooled.bin", "--version", &id, "--to", "hot"],
    ));
    ok(coffer(d, &["migrate", "--to", "copy"]));
    assert_no_plaintext(&BackendConfig::Fs {
        root: Some(d.join("copy")),
    });
    ok(coffer(d, &["migrate", "--to", "copy", "--switch"]));
    assert!(get(d, &["spooled.bin"], &[]) == data);
    assert_no_plaintext(&BackendConfig::S3(Box::new(s3)));
}
