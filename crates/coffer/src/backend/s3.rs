//! S3 and S3-compatible stores (AWS, MinIO, Garage, Ceph, Wasabi, Backblaze
//! B2) through OpenDAL's s3 service, with retries and timeouts as layers.

use std::fmt;
use std::time::Duration;

use opendal::Operator;
use opendal::layers::{RetryLayer, TimeoutLayer};
use serde::Deserialize;

use super::opendal::{OpendalBackend, backend_error};
use crate::error::{Error, ErrorKind, Result};
use crate::sigv4::{self, Credentials};

/// Parts of a multipart upload when the settings do not say (S3's minimum is 5 MiB).
pub const DEFAULT_PART_SIZE_MIB: u64 = 8;
/// Parts uploaded at once when the settings do not say.
pub const DEFAULT_PART_CONCURRENCY: usize = 4;
/// How long one request may take before it is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how to reach an S3 bucket. Credentials left out come from the
/// standard AWS environment variables and profiles (`AWS_ACCESS_KEY_ID`,
/// `AWS_PROFILE`, `~/.aws/credentials` ...).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The region (`us-east-1` when absent and not found in the environment).
    pub region: Option<String>,
    /// The endpoint of an S3-compatible store (`http://127.0.0.1:3900`); AWS when absent.
    pub endpoint: Option<String>,
    /// A folder inside the bucket that holds the store.
    pub prefix: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key (secret).
    pub secret_access_key: Option<String>,
    /// Session token of temporary credentials (secret).
    pub session_token: Option<String>,
    /// A profile of the AWS config files.
    pub profile: Option<String>,
    /// Address the bucket as `bucket.endpoint` instead of `endpoint/bucket`.
    pub virtual_host_style: bool,
    /// Server-side encryption: `AES256` (SSE-S3) or `aws:kms` (SSE-KMS).
    pub server_side_encryption: Option<String>,
    /// The KMS key for `aws:kms`.
    pub kms_key_id: Option<String>,
    /// Storage class of new objects: `STANDARD`, `STANDARD_IA`, `INTELLIGENT_TIERING`, `GLACIER` ...
    pub storage_class: Option<String>,
    /// Create the bucket when it does not exist.
    pub create_bucket: bool,
    /// Size of the parts of a multipart upload, MiB (at least 5).
    pub part_size_mib: Option<u64>,
    /// Parts uploaded at once.
    pub part_concurrency: Option<usize>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "***");
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("session_token", &hidden(&self.session_token))
            .field("profile", &self.profile)
            .field("virtual_host_style", &self.virtual_host_style)
            .field("server_side_encryption", &self.server_side_encryption)
            .field("kms_key_id", &self.kms_key_id)
            .field("storage_class", &self.storage_class)
            .field("create_bucket", &self.create_bucket)
            .field("part_size_mib", &self.part_size_mib)
            .field("part_concurrency", &self.part_concurrency)
            .finish()
    }
}

impl S3Config {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        let bucket = &self.bucket;
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(Error::invalid_input(format!(
                "invalid S3 bucket name {bucket:?}: 3 to 63 lowercase letters, digits, '-' and '.'"
            )));
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(Error::invalid_input(format!(
                "S3 endpoint must start with http:// or https://, not {endpoint:?}"
            )));
        }
        if let Some(sse) = &self.server_side_encryption
            && !matches!(sse.as_str(), "AES256" | "aws:kms")
        {
            return Err(Error::invalid_input(format!(
                "server-side encryption must be AES256 or aws:kms, not {sse:?}"
            )));
        }
        if self.kms_key_id.is_some() && self.server_side_encryption.as_deref() != Some("aws:kms") {
            return Err(Error::invalid_input(
                "a KMS key id needs server-side encryption aws:kms",
            ));
        }
        if self.part_size_mib.is_some_and(|mib| !(5..=5 * 1024).contains(&mib)) {
            return Err(Error::invalid_input("S3 part size must be 5 to 5120 MiB"));
        }
        if self.part_concurrency == Some(0) {
            return Err(Error::invalid_input("S3 part concurrency must be at least 1"));
        }
        Ok(())
    }

    /// The region requests are signed for.
    fn region(&self) -> String {
        self.region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned())
    }

    /// How the backend names itself: never with credentials.
    fn describe(&self) -> String {
        let place = match &self.endpoint {
            Some(endpoint) => crate::config::redact_url(endpoint),
            None => format!("aws {}", self.region()),
        };
        match &self.prefix {
            Some(prefix) => format!("s3://{}/{} ({place})", self.bucket, prefix.trim_matches('/')),
            None => format!("s3://{} ({place})", self.bucket),
        }
    }

    fn operator(&self) -> Result<Operator> {
        // OpenDAL's process-wide HTTP transport (reqwest); installing it again is a no-op.
        opendal::install_default();
        let mut builder = opendal::services::S3::default()
            .bucket(&self.bucket)
            .region(&self.region());
        if let Some(endpoint) = &self.endpoint {
            builder = builder.endpoint(endpoint);
        }
        if let Some(prefix) = &self.prefix {
            builder = builder.root(&format!("/{}", prefix.trim_matches('/')));
        }
        if let Some(key) = &self.access_key_id {
            builder = builder.access_key_id(key);
        }
        if let Some(secret) = &self.secret_access_key {
            builder = builder.secret_access_key(secret);
        }
        if let Some(token) = &self.session_token {
            builder = builder.session_token(token);
        }
        if let Some(profile) = &self.profile {
            builder = builder.profile(profile);
        }
        if self.virtual_host_style {
            builder = builder.enable_virtual_host_style();
        }
        if let Some(sse) = &self.server_side_encryption {
            builder = builder.server_side_encryption(sse);
        }
        if let Some(key) = &self.kms_key_id {
            builder = builder.server_side_encryption_aws_kms_key_id(key);
        }
        if let Some(class) = &self.storage_class {
            builder = builder.default_storage_class(class);
        }
        Ok(Operator::new(builder)
            .map_err(backend_error)?
            .layer(TimeoutLayer::new().with_io_timeout(REQUEST_TIMEOUT))
            .layer(RetryLayer::new().with_jitter().with_max_times(4)))
    }

    /// Create the bucket (a signed `PUT /bucket`); an existing bucket of ours is fine.
    async fn create_bucket(&self) -> Result<()> {
        let (Some(key), Some(secret)) = (
            self.access_key_id
                .clone()
                .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok()),
            self.secret_access_key
                .clone()
                .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok()),
        ) else {
            return Err(Error::invalid_input(
                "creating a bucket needs an access key and a secret key (flags, config or AWS_* variables)",
            ));
        };
        let region = self.region();
        let base = self
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let url = if self.virtual_host_style {
            let parsed = reqwest::Url::parse(&base).map_err(|e| Error::invalid_input(format!("S3 endpoint: {e}")))?;
            let host = parsed.host_str().unwrap_or_default();
            format!("{}://{}.{host}/", parsed.scheme(), self.bucket)
        } else {
            format!("{}/{}", base.trim_end_matches('/'), self.bucket)
        };
        let url = reqwest::Url::parse(&url).map_err(|e| Error::invalid_input(format!("S3 endpoint: {e}")))?;
        let body = if region == "us-east-1" {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            )
        };
        let payload_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
        let token = self
            .session_token
            .clone()
            .or_else(|| std::env::var("AWS_SESSION_TOKEN").ok());
        let credentials = Credentials {
            access_key_id: &key,
            secret_access_key: &secret,
        };
        let call = sigv4::Call {
            method: reqwest::Method::PUT,
            url: &url,
            headers: &[("x-amz-content-sha256", &payload_hash)],
            body,
            session_token: token.as_deref(),
            region: &region,
            service: "s3",
        };
        let request = sigv4::signed_request(&reqwest::Client::new(), &credentials, call).timeout(REQUEST_TIMEOUT);
        let response = request.send().await.map_err(|e| {
            Error::new(
                ErrorKind::BackendUnavailable,
                format!("cannot reach {} to create the bucket: {e}", self.describe()),
            )
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() || text.contains("BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::BackendUnavailable,
            format!("creating bucket {} failed: HTTP {status}", self.bucket),
        ))
    }
}

impl OpendalBackend {
    /// A backend on an S3 bucket, created first if the settings ask for it.
    pub async fn s3(config: &S3Config) -> Result<Self> {
        config.validate()?;
        if config.create_bucket {
            config.create_bucket().await?;
        }
        let part_size = config.part_size_mib.unwrap_or(DEFAULT_PART_SIZE_MIB) << 20;
        let concurrency = config.part_concurrency.unwrap_or(DEFAULT_PART_CONCURRENCY);
        Ok(OpendalBackend::remote(
            config.operator()?,
            config.describe(),
            part_size as usize,
            concurrency,
        ))
    }
}
