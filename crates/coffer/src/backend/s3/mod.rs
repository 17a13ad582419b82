//! S3 and S3-compatible stores (AWS, MinIO, Garage, Ceph, Wasabi, Backblaze
//! B2) through OpenDAL's s3 service, with retries and timeouts as layers.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opendal::Operator;
use opendal::layers::TimeoutLayer;
use serde::Deserialize;

use super::IncompleteUpload;
use super::errors::{DEFAULT_BACKEND_WAIT, Place, retry_layer};
use super::opendal::OpendalBackend;
use crate::error::{Error, ErrorKind, Result};
use crate::sigv4::{self, Credentials};

mod object_lock;
mod restore;

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
    /// Create the bucket with S3 Object Lock on (only when coffer creates
    /// it): coffer then locks the objects of protected versions, so the
    /// store itself refuses to remove them.
    pub object_lock: bool,
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
            .field("object_lock", &self.object_lock)
            .field("part_size_mib", &self.part_size_mib)
            .field("part_concurrency", &self.part_concurrency)
            .finish()
    }
}

impl S3Config {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        let bucket = &self.bucket;
        if bucket.is_empty() {
            return Err(crate::settings::missing_setting(crate::BackendKind::S3, "bucket"));
        }
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
        if self.object_lock && !self.create_bucket {
            return Err(Error::invalid_input(
                "object_lock is set when coffer creates the bucket: it needs create_bucket (--create-bucket)",
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
            Some(endpoint) => crate::redact::redact_url(endpoint),
            None => format!("aws {}", self.region()),
        };
        match &self.prefix {
            Some(prefix) => format!("s3://{}/{} ({place})", self.bucket, prefix.trim_matches('/')),
            None => format!("s3://{} ({place})", self.bucket),
        }
    }

    /// The kind and address of the store, for errors.
    fn place(&self) -> Place {
        let endpoint = self
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.region()));
        Place::remote("s3", &endpoint, "bucket", &self.bucket)
    }

    fn operator(&self, wait: Duration) -> Result<Operator> {
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
            .map_err(|e| self.place().error(e))?
            .layer(TimeoutLayer::new().with_io_timeout(REQUEST_TIMEOUT))
            .layer(retry_layer(wait)))
    }

    /// The URL of the bucket, path or virtual-host style.
    pub(crate) fn bucket_url(&self) -> Result<String> {
        let base = self
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.region()));
        if self.virtual_host_style {
            let parsed = reqwest::Url::parse(&base).map_err(|e| Error::invalid_input(format!("S3 endpoint: {e}")))?;
            let host = parsed.host_str().unwrap_or_default();
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            Ok(format!("{}://{}.{host}{port}/", parsed.scheme(), self.bucket))
        } else {
            Ok(format!("{}/{}", base.trim_end_matches('/'), self.bucket))
        }
    }

    /// One signed call to the bucket (`?uploads`, `key?uploadId=...`):
    /// its status and body. Used for what OpenDAL does not do.
    pub(crate) async fn signed_call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: String,
        what: &str,
    ) -> Result<(reqwest::StatusCode, String)> {
        self.signed_call_with(method, url, &[], body, what).await
    }

    /// [`signed_call`](Self::signed_call) with more headers to send and sign.
    async fn signed_call_with(
        &self,
        method: reqwest::Method,
        url: &str,
        extra_headers: &[(&str, &str)],
        body: String,
        what: &str,
    ) -> Result<(reqwest::StatusCode, String)> {
        let response = self.send_signed(method, url, extra_headers, body, what).await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success()
            && let Some(refused) = self.place().refusal(status.as_u16(), &text)
        {
            return Err(refused);
        }
        Ok((status, text))
    }

    /// One signed request, its response as it came (headers, status, body unread).
    async fn send_signed(
        &self,
        method: reqwest::Method,
        url: &str,
        extra_headers: &[(&str, &str)],
        body: String,
        what: &str,
    ) -> Result<reqwest::Response> {
        let (Some(key), Some(secret)) = (
            self.access_key_id
                .clone()
                .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok()),
            self.secret_access_key
                .clone()
                .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok()),
        ) else {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!("to {what} coffer needs an access key and a secret key (flags, config or AWS_* variables)"),
            ));
        };
        let url = reqwest::Url::parse(url).map_err(|e| Error::invalid_input(format!("S3 endpoint: {e}")))?;
        let region = self.region();
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
            method,
            url: &url,
            headers: &[&[("x-amz-content-sha256", payload_hash.as_str())], extra_headers].concat(),
            body,
            session_token: token.as_deref(),
            region: &region,
            service: "s3",
        };
        let request = sigv4::signed_request(super::side_http()?, &credentials, call).timeout(REQUEST_TIMEOUT);
        request.send().await.map_err(|e| self.place().unreachable(e))
    }

    /// The URL of the object at the store's `path`, with `query` (`retention`, `versionId=...`).
    fn object_url(&self, path: &str, query: &[(&str, &str)]) -> Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&format!(
            "{}/{}{path}",
            self.bucket_url()?.trim_end_matches('/'),
            self.key_prefix()
        ))
        .map_err(|e| Error::invalid_input(format!("S3 endpoint: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Create the bucket (a signed `PUT /bucket`); an existing bucket of ours is fine.
    async fn create_bucket(&self) -> Result<()> {
        let region = self.region();
        let body = if region == "us-east-1" {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            )
        };
        let lock: &[(&str, &str)] = match self.object_lock {
            true => &[("x-amz-bucket-object-lock-enabled", "true")],
            false => &[],
        };
        let (status, text) = self
            .signed_call_with(
                reqwest::Method::PUT,
                &self.bucket_url()?,
                lock,
                body,
                "create the bucket",
            )
            .await?;
        if status.is_success() || text.contains("BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::BackendUnavailable,
            format!("creating bucket {} failed: HTTP {status}", self.bucket),
        ))
    }

    /// The folder of the store inside the bucket, as `a/b/` (empty for the root).
    pub(crate) fn key_prefix(&self) -> String {
        match self.prefix.as_deref().map(|p| p.trim_matches('/')) {
            Some(prefix) if !prefix.is_empty() => format!("{prefix}/"),
            _ => String::new(),
        }
    }

    /// Multipart uploads under the store's folder begun before `cutoff` and
    /// never completed or aborted (`ListMultipartUploads`, every page).
    pub(super) async fn incomplete_uploads(&self, cutoff: SystemTime) -> Result<Vec<IncompleteUpload>> {
        let prefix = self.key_prefix();
        let mut found = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut url = reqwest::Url::parse(&self.bucket_url()?)
                .map_err(|e| Error::invalid_input(format!("S3 endpoint: {e}")))?;
            url.query_pairs_mut()
                .append_pair("uploads", "")
                .append_pair("prefix", &prefix);
            if let Some((key, upload)) = &markers {
                url.query_pairs_mut()
                    .append_pair("key-marker", key)
                    .append_pair("upload-id-marker", upload);
            }
            let (status, text) = self
                .signed_call(
                    reqwest::Method::GET,
                    url.as_str(),
                    String::new(),
                    "list multipart uploads",
                )
                .await?;
            if !status.is_success() {
                return Err(Error::new(
                    ErrorKind::BackendUnavailable,
                    format!("listing multipart uploads failed: HTTP {status}"),
                ));
            }
            for upload in xml_elements(&text, "Upload") {
                let (Some(key), Some(upload_id)) = (xml_text(upload, "Key"), xml_text(upload, "UploadId")) else {
                    continue;
                };
                let begun = xml_text(upload, "Initiated").and_then(|t| {
                    humantime::parse_rfc3339_weak(t.trim_end_matches('Z').split('.').next().unwrap_or(t)).ok()
                });
                if begun.is_some_and(|at| at < cutoff) {
                    found.push(IncompleteUpload {
                        path: key.strip_prefix(&prefix).unwrap_or(key).to_owned(),
                        upload_id: upload_id.to_owned(),
                    });
                }
            }
            if xml_text(&text, "IsTruncated") != Some("true") {
                return Ok(found);
            }
            markers = match (xml_text(&text, "NextKeyMarker"), xml_text(&text, "NextUploadIdMarker")) {
                (Some(key), Some(upload)) => Some((key.to_owned(), upload.to_owned())),
                _ => return Ok(found),
            };
        }
    }

    /// Change the storage class of the object at `path` in place (a
    /// server-side `CopyObject` onto itself, which S3 allows up to 5 GiB).
    pub(super) async fn set_storage_class(&self, path: &str, class: &str) -> Result<()> {
        if class.is_empty() || !class.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            return Err(Error::invalid_input(format!(
                "S3 storage class must be a name like STANDARD_IA or GLACIER, not {class:?}"
            )));
        }
        let url = self.object_url(path, &[])?;
        let source = format!("/{}/{}{path}", self.bucket, self.key_prefix());
        let headers = [
            ("x-amz-copy-source", source.as_str()),
            ("x-amz-storage-class", class),
            ("x-amz-metadata-directive", "COPY"),
        ];
        let (status, text) = self
            .signed_call_with(
                reqwest::Method::PUT,
                url.as_str(),
                &headers,
                String::new(),
                "set the storage class",
            )
            .await?;
        // A copy can fail after its 200 status line: the error is in the body.
        if status.is_success() && !text.contains("<Error>") {
            return Ok(());
        }
        let code = xml_text(&text, "Code").unwrap_or("");
        Err(Error::new(
            ErrorKind::BackendUnavailable,
            format!("setting storage class {class} on {path} failed: HTTP {status} {code}"),
        ))
    }

    /// Abort one multipart upload, freeing its parts.
    pub(super) async fn abort_upload(&self, upload: &IncompleteUpload) -> Result<()> {
        let url = self.object_url(&upload.path, &[("uploadId", &upload.upload_id)])?;
        let (status, _) = self
            .signed_call(
                reqwest::Method::DELETE,
                url.as_str(),
                String::new(),
                "abort a multipart upload",
            )
            .await?;
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::BackendUnavailable,
            format!("aborting the multipart upload of {} failed: HTTP {status}", upload.path),
        ))
    }
}

/// The S3 calls that OpenDAL's s3 service does not make, with what they
/// learn of the bucket once.
pub(crate) struct S3Extras {
    /// The settings.
    pub(crate) config: S3Config,
    /// Whether the bucket has Object Lock on: asked when first needed.
    object_lock: tokio::sync::OnceCell<bool>,
}

impl S3Extras {
    fn new(config: S3Config) -> Self {
        S3Extras {
            config,
            object_lock: tokio::sync::OnceCell::new(),
        }
    }
}

/// The contents of each `<name>...</name>` element of `xml`.
fn xml_elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    found
}

/// The text of the first `<name>` element of `xml`.
pub(crate) fn xml_text<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    xml_elements(xml, name).into_iter().next()
}

impl OpendalBackend {
    /// A backend on an S3 bucket, created first if the settings ask for
    /// it, whose calls retry a store that does not answer for about 3 s.
    pub async fn s3(config: &S3Config) -> Result<Self> {
        Self::s3_waiting(config, DEFAULT_BACKEND_WAIT).await
    }

    /// [`s3`](Self::s3), with calls that retry for at most `wait`.
    pub async fn s3_waiting(config: &S3Config, wait: Duration) -> Result<Self> {
        config.validate()?;
        // A store that cannot be reached now is no reason to refuse opening
        // it (writes may go to a spool): its operations will say so.
        if config.create_bucket
            && let Err(e) = config.create_bucket().await
            && !e.is_retryable()
        {
            return Err(e);
        }
        let part_size = config.part_size_mib.unwrap_or(DEFAULT_PART_SIZE_MIB) << 20;
        let concurrency = config.part_concurrency.unwrap_or(DEFAULT_PART_CONCURRENCY);
        Ok(OpendalBackend::remote(
            config.operator(wait)?,
            config.describe(),
            config.place(),
            part_size as usize,
            concurrency,
        )
        .with_s3(Arc::new(S3Extras::new(config.clone()))))
    }
}
