//! The NATS sink: a JetStream context publishing each event with its id.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::NatsConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::events::sinks::require;
use crate::events::{Event, Sink};

/// How long connecting, and each JetStream request (a publish's ack), may take.
const NATS_TIMEOUT: Duration = Duration::from_secs(10);

impl NatsConfig {
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
            crate::redact::redact_url(&config.url),
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
