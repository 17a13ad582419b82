//! Garage, the S3-compatible store the suites run against: a fresh bucket
//! per test, and the config table that names it.

use std::path::Path;
use std::process::Command;

use coffer::testkit::services::{GARAGE_ACCESS_KEY, GARAGE_SECRET_KEY};

/// A fresh bucket on Garage.
pub struct Garage {
    pub bucket: String,
    pub endpoint: String,
}

/// A fresh bucket, or `None` when Garage is not running (and not required).
pub fn garage() -> Option<Garage> {
    let s3 = coffer::testkit::services::garage_bucket().unwrap()?;
    Some(Garage {
        bucket: s3.bucket,
        endpoint: s3.endpoint.unwrap(),
    })
}

/// A config table `[HEADER]` (`backend`, `stores.NAME`) for `bucket` on
/// Garage at `endpoint`, created on first use.
pub fn garage_table(header: &str, bucket: &str, endpoint: &str) -> String {
    format!(
        "[{header}]\nkind = \"s3\"\nbucket = \"{bucket}\"\nregion = \"garage\"\nendpoint = \"{endpoint}\"\n\
         access_key_id = \"{GARAGE_ACCESS_KEY}\"\nsecret_access_key = \"{GARAGE_SECRET_KEY}\"\ncreate_bucket = true\n"
    )
}

impl Garage {
    /// This bucket's config table `[HEADER]`.
    pub fn table(&self, header: &str) -> String {
        garage_table(header, &self.bucket, &self.endpoint)
    }

    /// The AWS CLI on this bucket's endpoint, with Garage's keys; its output.
    pub fn aws(&self, aws: &Path, args: &[&str]) -> Vec<u8> {
        let output = Command::new(aws)
            .args(["--endpoint-url", &self.endpoint])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", GARAGE_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", GARAGE_SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "garage")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// rclone on this bucket's endpoint, with Garage's keys; its output.
    pub fn rclone(&self, rclone: &Path, args: &[&str]) -> Vec<u8> {
        let output = Command::new(rclone)
            .args(args)
            .args([
                "--s3-provider",
                "Other",
                "--s3-endpoint",
                &self.endpoint,
                "--s3-access-key-id",
                GARAGE_ACCESS_KEY,
                "--s3-secret-access-key",
                GARAGE_SECRET_KEY,
                "--s3-region",
                "garage",
                "--s3-force-path-style",
            ])
            // rclone 1.60 trips on an empty or foreign CA bundle setting.
            .env_remove("AWS_CA_BUNDLE")
            .env("RCLONE_CONFIG", "/dev/null")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "rclone {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }
}

/// A store directory whose `coffer.toml` names a fresh PostgreSQL database
/// and a fresh Garage bucket, initialised; `None` when either service does
/// not answer (and services are not required). The database goes with it.
#[cfg(feature = "catalog-postgres")]
#[allow(dead_code)] // used by the suites of `coffer serve`
pub async fn postgres_and_garage() -> Option<(coffer::testkit::TestDatabase, tempfile::TempDir)> {
    let (Some(database), Some(garage)) = (coffer::testkit::TestDatabase::create().await.unwrap(), garage()) else {
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("coffer.toml"),
        format!("catalog_url = \"{}\"\n{}", database.url(), garage.table("backend")),
    )
    .unwrap();
    super::ok(super::coffer(dir.path(), &["init"]));
    Some((database, dir))
}
