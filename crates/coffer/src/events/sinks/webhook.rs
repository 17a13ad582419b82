//! Webhooks: an HTTP request per event, signed the Standard Webhooks way.
//!
//! Each request carries `webhook-id` (the event id, for dropping duplicates),
//! `webhook-timestamp` (Unix seconds) and, when the hook has a secret,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//! (<https://www.standardwebhooks.com>). A secret written `whsec_<base64>` is
//! the base64 of the key, as the convention's libraries expect; any other
//! secret is used as the key's bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{REDACTED, require};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Sink};

/// Default time a receiver has to answer.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of a webhook hook.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WebhookConfig {
    /// Where to send: `http://` or `https://`.
    pub url: String,
    /// `POST` or `PUT`.
    pub method: String,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Signing secret (never shown back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// How long the receiver has to answer, in milliseconds.
    pub timeout_ms: u64,
    /// A MiniJinja template rendered with the event (`{{ type }}`,
    /// `{{ subject }}`, `{{ data.key }}` ...) to make the body instead of
    /// the CloudEvents document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

impl WebhookConfig {
    /// A `POST` to `url` with the default timeout, no secret and no template.
    pub fn new(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            method: "POST".to_owned(),
            headers: BTreeMap::new(),
            secret: None,
            timeout_ms: DEFAULT_WEBHOOK_TIMEOUT.as_millis() as u64,
            template: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| Error::invalid_input(format!("invalid webhook URL {}: {e}", self.shown_url())))?;
        require(matches!(url.scheme(), "http" | "https"), || {
            format!("webhook URL must be http:// or https://, not {}", self.shown_url())
        })?;
        require(matches!(self.method.as_str(), "POST" | "PUT"), || {
            format!("webhook method must be POST or PUT, not {}", self.method)
        })?;
        require(self.timeout_ms > 0, || "webhook timeout must be above zero".to_owned())?;
        for (name, value) in &self.headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::invalid_input(format!("invalid header name {name:?}")))?;
            reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| Error::invalid_input(format!("invalid value for header {name}")))?;
        }
        if let Some(secret) = &self.secret {
            signing_key(secret)?;
        }
        if let Some(template) = &self.template {
            template_environment(template)?;
        }
        Ok(())
    }

    pub(crate) fn redacted(&self) -> Self {
        WebhookConfig {
            url: self.shown_url(),
            secret: self.secret.as_ref().map(|_| REDACTED.to_owned()),
            // Header values often carry tokens (`Authorization: Bearer ...`).
            headers: self
                .headers
                .keys()
                .map(|name| (name.clone(), REDACTED.to_owned()))
                .collect(),
            ..self.clone()
        }
    }

    /// The URL as shown: scheme, host, port and path, without the user part,
    /// with each query value replaced by `***`, and each path segment that
    /// looks like a token too (chat webhooks put their tokens in the path).
    fn shown_url(&self) -> String {
        if crate::crypto::secrets::is_sealed(&self.url) {
            return crate::redact::redact_url(&self.url);
        }
        let Ok(url) = reqwest::Url::parse(&self.url) else {
            return "(invalid URL)".to_owned();
        };
        let path: Vec<&str> = url
            .path()
            .split('/')
            .map(|segment| if looks_like_token(segment) { REDACTED } else { segment })
            .collect();
        let mut shown = url.origin().ascii_serialization() + &path.join("/");
        if let Some(query) = url.query() {
            let names: Vec<String> = query
                .split('&')
                .map(|pair| format!("{}={REDACTED}", pair.split('=').next().unwrap_or_default()))
                .collect();
            shown = format!("{shown}?{}", names.join("&"));
        }
        shown
    }
}

/// A path segment of 16 characters or more mixing letters and digits, as
/// tokens and signatures are (`/services/T0001/B0001/XXXX...`); ordinary
/// path words (`/hooks/coffer`, `/api/v2/events`) are shorter or not mixed.
fn looks_like_token(segment: &str) -> bool {
    segment.len() >= 16
        && segment.chars().any(|c| c.is_ascii_digit())
        && segment.chars().any(|c| c.is_ascii_alphabetic())
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.redacted();
        f.debug_struct("WebhookConfig")
            .field("url", &shown.url)
            .field("method", &shown.method)
            .field("headers", &shown.headers)
            .field("secret", &shown.secret)
            .field("timeout_ms", &shown.timeout_ms)
            .field("template", &shown.template)
            .finish()
    }
}

/// The HMAC key a secret stands for.
fn signing_key(secret: &str) -> Result<Vec<u8>> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => BASE64
            .decode(encoded)
            .map_err(|_| Error::invalid_input("webhook secret whsec_... must be followed by base64")),
        None if secret.is_empty() => Err(Error::invalid_input("webhook secret is empty")),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// The Standard Webhooks signature header value for a body.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let key = signing_key(secret)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key).map_err(|_| Error::invalid_input("webhook secret cannot key an HMAC"))?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

fn template_environment(template: &str) -> Result<minijinja::Environment<'static>> {
    let mut env = minijinja::Environment::new();
    env.add_template_owned("body", template.to_owned())
        .map_err(|e| Error::invalid_input(format!("invalid webhook template: {e}")))?;
    Ok(env)
}

/// Delivers events as HTTP requests.
pub(crate) struct WebhookSink {
    name: String,
    config: WebhookConfig,
    client: reqwest::Client,
    template: Option<minijinja::Environment<'static>>,
}

impl WebhookSink {
    /// A sink for hook `name`, sharing `client`'s connections with other webhooks.
    pub(crate) fn new(name: &str, config: WebhookConfig, client: reqwest::Client) -> Result<Self> {
        config.validate()?;
        let template = config.template.as_deref().map(template_environment).transpose()?;
        Ok(WebhookSink {
            name: name.to_owned(),
            config,
            client,
            template,
        })
    }

    fn body(&self, event: &Event, payload: &str) -> Result<String> {
        let Some(env) = &self.template else {
            return Ok(payload.to_owned());
        };
        let rendered = env
            .get_template("body")
            .and_then(|template| template.render(minijinja::value::Serde(event)));
        rendered.map_err(|e| Error::invalid_input(format!("webhook {}: template failed: {e}", self.name)))
    }
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink").field("config", &self.config).finish()
    }
}

impl fmt::Display for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "webhook {} ({} {})",
            self.name,
            self.config.method,
            self.config.shown_url()
        )
    }
}

#[async_trait]
impl Sink for WebhookSink {
    async fn deliver(&self, event: &Event, payload: &str) -> Result<()> {
        let body = self.body(event, payload)?;
        let timestamp = crate::time::Timestamp::now().as_micros() / 1_000_000;
        let method = if self.config.method == "PUT" {
            reqwest::Method::PUT
        } else {
            reqwest::Method::POST
        };
        let mut request = self
            .client
            .request(method, &self.config.url)
            .timeout(Duration::from_millis(self.config.timeout_ms))
            .header("content-type", "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(secret) = &self.config.secret {
            request = request.header(
                "webhook-signature",
                sign(secret, &event.id, timestamp, body.as_bytes())?,
            );
        }
        for (name, value) in &self.config.headers {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(|e| {
            // reqwest's message names the URL, which may carry a token: say what failed without it.
            let what = if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                "cannot connect".to_owned()
            } else {
                "request failed".to_owned()
            };
            Error::new(ErrorKind::Delivery, format!("{self}: {what}"))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(Error::new(ErrorKind::Delivery, format!("{self}: HTTP {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_test_vector() {
        // From the Standard Webhooks reference implementations' tests.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn settings_are_checked_and_secrets_never_shown() {
        let mut config = WebhookConfig::new("https://hooks.example.com/in?token=abc");
        config.secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        config.headers.insert("Authorization".into(), "Bearer sekrit".into());
        config.validate().unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("sekrit") && !shown.contains("MfKQ9r8") && !shown.contains("abc"),
            "{shown}"
        );
        config.method = "GET".into();
        assert!(config.validate().is_err());
        let mut bad_template = WebhookConfig::new("http://127.0.0.1:1/");
        bad_template.template = Some("{{ unclosed".into());
        assert!(bad_template.validate().is_err());
        assert!(WebhookConfig::new("ftp://example.com/").validate().is_err());
    }

    #[test]
    fn the_shown_url_keeps_the_path_and_hides_credentials() {
        let shown = |url: &str| WebhookConfig::new(url).redacted().url;
        assert_eq!(
            shown("https://erp.example.com:8443/api/v2/coffer-events"),
            "https://erp.example.com:8443/api/v2/coffer-events"
        );
        assert_eq!(
            shown("https://bob:pa55@erp.example.com/in?token=abc&x=1"),
            "https://erp.example.com/in?token=***&x=***"
        );
        assert_eq!(
            shown("https://chat.example.com/services/T0001/B0001/Xy7kQ2mN9pL4rS8tV1wZ"),
            "https://chat.example.com/services/T0001/B0001/***"
        );
    }
}
