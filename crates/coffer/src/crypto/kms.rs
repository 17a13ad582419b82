//! The AWS KMS calls a KMS key-encryption key makes (the JSON API, signed
//! with SigV4): `GenerateDataKey`, `Encrypt`, `Decrypt` and `ReEncrypt`,
//! each with the encryption context that names the store and the data key.
//! Credentials come from the standard `AWS_*` variables.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::KeyContext;
use super::wrapper::unavailable;
use crate::error::{Error, ErrorKind, Result};
use crate::sigv4::{self, Credentials};

const KMS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Signed calls to one KMS key.
pub(crate) struct KmsClient {
    key_id: String,
    endpoint: reqwest::Url,
    region: String,
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
    http: reqwest::Client,
}

impl KmsClient {
    /// A client for `key_id`, at `endpoint` (AWS's for the region when
    /// absent); the region from `region`, the key's ARN, `AWS_REGION`,
    /// `AWS_DEFAULT_REGION` or `us-east-1`.
    pub(crate) fn new(key_id: &str, endpoint: Option<&str>, region: Option<&str>) -> Result<KmsClient> {
        let from_arn = key_id
            .strip_prefix("arn:")
            .and_then(|arn| arn.split(':').nth(2))
            .filter(|r| !r.is_empty());
        let region = region
            .map(str::to_owned)
            .or_else(|| from_arn.map(str::to_owned))
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = endpoint
            .map(str::to_owned)
            .unwrap_or_else(|| format!("https://kms.{region}.amazonaws.com/"));
        let endpoint = reqwest::Url::parse(&endpoint)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
            .ok_or_else(|| Error::invalid_input(format!("kms_endpoint {endpoint:?} is not an http(s) URL")))?;
        let credential = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(access_key_id), Some(secret)) =
            (credential("AWS_ACCESS_KEY_ID"), credential("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(unavailable(format!(
                "the KMS key {key_id} needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )));
        };
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start an HTTP client: {e}")))?;
        Ok(KmsClient {
            key_id: key_id.to_owned(),
            endpoint,
            region,
            access_key_id,
            secret_access_key: Zeroizing::new(secret),
            session_token: credential("AWS_SESSION_TOKEN").map(Zeroizing::new),
            http,
        })
    }

    /// A new data key for `context`: its plaintext and its ciphertext blob.
    pub(crate) async fn generate_data_key(&self, context: &KeyContext<'_>) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
        let answer = self
            .call(
                "GenerateDataKey",
                json!({ "KeyId": self.key_id, "KeySpec": "AES_256", "EncryptionContext": encryption_context(context) }),
            )
            .await?;
        Ok((
            Zeroizing::new(field(&answer, "Plaintext")?),
            field(&answer, "CiphertextBlob")?,
        ))
    }

    /// `plaintext` encrypted under the key, for `context`.
    pub(crate) async fn encrypt(&self, plaintext: &[u8], context: &KeyContext<'_>) -> Result<Vec<u8>> {
        let answer = self
            .call(
                "Encrypt",
                json!({ "KeyId": self.key_id, "Plaintext": BASE64.encode(plaintext), "EncryptionContext": encryption_context(context) }),
            )
            .await?;
        field(&answer, "CiphertextBlob")
    }

    /// The plaintext of a ciphertext blob this key made for `context`.
    pub(crate) async fn decrypt(&self, blob: &[u8], context: &KeyContext<'_>) -> Result<Zeroizing<Vec<u8>>> {
        let answer = self
            .call(
                "Decrypt",
                json!({ "KeyId": self.key_id, "CiphertextBlob": BASE64.encode(blob), "EncryptionContext": encryption_context(context) }),
            )
            .await?;
        field(&answer, "Plaintext").map(Zeroizing::new)
    }

    /// A ciphertext blob of another KMS key, encrypted under this key
    /// instead, inside KMS.
    pub(crate) async fn re_encrypt(&self, blob: &[u8], context: &KeyContext<'_>) -> Result<Vec<u8>> {
        let context = encryption_context(context);
        let answer = self
            .call(
                "ReEncrypt",
                json!({
                    "CiphertextBlob": BASE64.encode(blob),
                    "SourceEncryptionContext": context,
                    "DestinationKeyId": self.key_id,
                    "DestinationEncryptionContext": context,
                }),
            )
            .await?;
        field(&answer, "CiphertextBlob")
    }

    async fn call(&self, action: &str, body: Value) -> Result<Value> {
        let target = format!("TrentService.{action}");
        let credentials = Credentials {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
        };
        let call = sigv4::Call {
            method: reqwest::Method::POST,
            url: &self.endpoint,
            headers: &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", &target),
            ],
            body: body.to_string(),
            session_token: self.session_token.as_deref().map(String::as_str),
            region: &self.region,
            service: "kms",
        };
        let response = sigv4::signed_request(&self.http, &credentials, call)
            .timeout(KMS_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                let what = if e.is_timeout() { "timed out" } else { "cannot connect" };
                unavailable(format!("KMS {action} at {}: {what}", self.endpoint)).retryable()
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|_| unavailable(format!("KMS {action}: the answer broke off")).retryable())?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        // KMS names the error in `__type` (`…#AccessDeniedException`) and says why in `message`.
        let kind = answer["__type"].as_str().unwrap_or("error");
        let kind = kind.rsplit('#').next().unwrap_or(kind);
        let message = answer["message"]
            .as_str()
            .or_else(|| answer["Message"].as_str())
            .unwrap_or_default();
        let error = unavailable(format!(
            "KMS {action} with the key {} failed: {kind} ({status}){}",
            self.key_id,
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        ));
        Err(match status.is_server_error() {
            true => error.retryable(),
            false => error,
        })
    }
}

fn encryption_context(context: &KeyContext<'_>) -> Value {
    json!({ "coffer:store": context.store, "coffer:data-key": context.key })
}

fn field(answer: &Value, name: &str) -> Result<Vec<u8>> {
    answer[name]
        .as_str()
        .and_then(|text| BASE64.decode(text).ok())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::KeyUnavailable,
                format!("KMS answered without a valid {name}"),
            )
        })
}
