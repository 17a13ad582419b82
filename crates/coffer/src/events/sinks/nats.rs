//! NATS JetStream: each event published to a subject and acknowledged by the stream.
//!
//! Every message carries `Nats-Msg-Id: <event id>`, so the stream's duplicate
//! window drops a redelivered event; the sink reports success only once the
//! stream has acknowledged the message.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{REDACTED, require};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Sink};

/// How long connecting, and each JetStream request (a publish's ack), may take.
const NATS_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of a NATS hook.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatsConfig {
    /// Server URL: `nats://127.0.0.1:4222`.
    pub url: String,
    /// Subject to publish to; `{type}` is replaced by the event type
    /// (`coffer.{type}` gives `coffer.object.archived`).
    pub subject: String,
    /// JetStream stream to create, capturing the subject(s), if it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// User name, with `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Token (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl NatsConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        require(
            self.url.starts_with("nats://") || self.url.starts_with("tls://"),
            || format!("NATS URL must start with nats:// or tls://, not {:?}", self.url),
        )?;
        require(!self.subject.is_empty(), || "a NATS hook needs a subject".to_owned())
    }

    /// The subject for one event type.
    fn subject_for(&self, event_type: &str) -> String {
        self.subject.replace("{type}", event_type)
    }

    /// The subject filter a created stream captures: the subject with
    /// `{type}` replaced by `>`, which NATS allows only as the last token.
    fn stream_subject(&self) -> Result<String> {
        let subject = self.subject_for(">");
        let wildcards = subject.matches('>').count();
        require(
            wildcards == 0 || (wildcards == 1 && (subject == ">" || subject.ends_with(".>"))),
            || {
                format!(
                    "NATS subject {:?}: to create a stream, {{type}} must be the whole last part (coffer.{{type}})",
                    self.subject
                )
            },
        )?;
        Ok(subject)
    }

    pub(crate) fn redacted(&self) -> Self {
        NatsConfig {
            // A URL may carry credentials too: nats://user:password@host.
            url: crate::config::redact_url(&self.url),
            password: self.password.as_ref().map(|_| REDACTED.to_owned()),
            token: self.token.as_ref().map(|_| REDACTED.to_owned()),
            ..self.clone()
        }
    }
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.redacted();
        f.debug_struct("NatsConfig")
            .field("url", &shown.url)
            .field("subject", &shown.subject)
            .field("stream", &shown.stream)
            .field("user", &shown.user)
            .field("password", &shown.password)
            .field("token", &shown.token)
            .finish()
    }
}

/// Publishes events to a JetStream subject.
pub(crate) struct NatsSink {
    name: String,
    config: NatsConfig,
    jetstream: async_nats::jetstream::Context,
}

impl NatsSink {
    /// Connect for hook `name`, creating the configured stream if it does not exist.
    pub(crate) async fn connect(name: &str, config: NatsConfig) -> Result<Self> {
        config.validate()?;
        let stream_subject = config.stream.as_ref().map(|_| config.stream_subject()).transpose()?;
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("coffer hook {name}"))
            .connection_timeout(NATS_TIMEOUT);
        if let Some(user) = &config.user {
            options = options.user_and_password(user.clone(), config.password.clone().unwrap_or_default());
        }
        if let Some(token) = &config.token {
            options = options.token(token.clone());
        }
        let shown = Shown(name, &config);
        let client = options
            .connect(config.url.as_str())
            .await
            .map_err(|e| Error::new(ErrorKind::Delivery, format!("{shown}: cannot connect: {e}")).retryable())?;
        let mut jetstream = async_nats::jetstream::new(client);
        jetstream.set_timeout(NATS_TIMEOUT);
        if let (Some(stream), Some(subject)) = (&config.stream, stream_subject) {
            let stream_config = async_nats::jetstream::stream::Config {
                name: stream.clone(),
                subjects: vec![subject],
                ..Default::default()
            };
            jetstream.get_or_create_stream(stream_config).await.map_err(|e| {
                Error::new(
                    ErrorKind::Delivery,
                    format!("{shown}: cannot create stream {stream}: {e}"),
                )
            })?;
        }
        Ok(NatsSink {
            name: name.to_owned(),
            config,
            jetstream,
        })
    }
}

/// How a NATS hook is named in messages: hook name, server and subject, no secrets.
struct Shown<'a>(&'a str, &'a NatsConfig);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Shown(name, config) = self;
        write!(
            f,
            "nats hook {name} ({} {})",
            crate::config::redact_url(&config.url),
            config.subject
        )
    }
}

impl fmt::Display for NatsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Shown(&self.name, &self.config).fmt(f)
    }
}

impl fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSink")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Sink for NatsSink {
    async fn deliver(&self, event: &Event, payload: &str) -> Result<()> {
        let subject = self.config.subject_for(&event.event_type);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event.id.as_str());
        let failed = |what: &str, e: &dyn fmt::Display| {
            Error::new(ErrorKind::Delivery, format!("{self}: {what} {subject}: {e}")).retryable()
        };
        let ack = self
            .jetstream
            .publish_with_headers(subject.clone(), headers, payload.to_owned().into())
            .await
            .map_err(|e| failed("cannot publish to", &e))?;
        // A duplicate ack means the stream already holds this event: delivered.
        ack.await.map_err(|e| failed("no acknowledgement for", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(subject: &str) -> NatsConfig {
        NatsConfig {
            url: "nats://app:hunter2@127.0.0.1:4222".into(),
            subject: subject.into(),
            stream: Some("COFFER".into()),
            user: None,
            password: Some("pw-secret".into()),
            token: Some("tok-secret".into()),
        }
    }

    #[test]
    fn streams_capture_every_type_under_the_subject() {
        assert_eq!(config("coffer.{type}").stream_subject().unwrap(), "coffer.>");
        assert_eq!(config("{type}").stream_subject().unwrap(), ">");
        assert_eq!(config("coffer.events").stream_subject().unwrap(), "coffer.events");
        assert!(config("coffer.{type}.v1").stream_subject().is_err());
        assert!(config("coffer-{type}").stream_subject().is_err());
        assert_eq!(
            config("coffer.{type}").subject_for("object.archived"),
            "coffer.object.archived"
        );
    }

    #[test]
    fn names_show_no_secrets() {
        let config = config("coffer.{type}");
        let shown = Shown("audit", &config).to_string();
        assert_eq!(shown, "nats hook audit (nats://app:***@127.0.0.1:4222 coffer.{type})");
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret") && !debug.contains("hunter2"), "{debug}");
    }
}
