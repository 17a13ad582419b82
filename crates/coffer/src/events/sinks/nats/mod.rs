//! NATS JetStream: each event published to a subject and acknowledged by the stream.
//!
//! Every message carries `Nats-Msg-Id: <event id>`, so the stream's duplicate
//! window drops a redelivered event; the sink reports success only once the
//! stream has acknowledged the message. The settings are always built (a
//! catalog may hold NATS hooks); the sink comes with the cargo feature `sink-nats`.

use serde::{Deserialize, Serialize};

use super::{REDACTED, require};
use crate::error::Result;

#[cfg(feature = "sink-nats")]
mod sink;
#[cfg(feature = "sink-nats")]
pub(crate) use self::sink::NatsSink;

/// Settings of a NATS hook.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

    pub(crate) fn redacted(&self) -> Self {
        NatsConfig {
            // A URL may carry credentials too: nats://user:password@host.
            url: crate::redact::redact_url(&self.url),
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
