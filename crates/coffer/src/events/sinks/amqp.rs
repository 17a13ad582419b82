//! AMQP 0-9-1 (RabbitMQ): each event published to an exchange with publisher confirms.

use serde::{Deserialize, Serialize};

use super::require;
use crate::error::Result;

/// Settings of an AMQP hook.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmqpConfig {
    /// Broker URL: `amqp://user:password@127.0.0.1:5672/%2f` (the password is a secret).
    pub url: String,
    /// Exchange to publish to; empty for the default exchange (then the
    /// routing key names the queue).
    #[serde(default)]
    pub exchange: String,
    /// Routing key; `{type}` is replaced by the event type.
    pub routing_key: String,
    /// Queue to declare (durable) and bind to the exchange with the routing
    /// key, if it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

impl AmqpConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        require(
            self.url.starts_with("amqp://") || self.url.starts_with("amqps://"),
            || {
                format!(
                    "AMQP URL must start with amqp:// or amqps://, not {}",
                    crate::config::redact_url(&self.url)
                )
            },
        )?;
        require(!self.routing_key.is_empty() || !self.exchange.is_empty(), || {
            "an AMQP hook needs an exchange or a routing key".to_owned()
        })
    }

    pub(crate) fn redacted(&self) -> Self {
        AmqpConfig {
            url: crate::config::redact_url(&self.url),
            ..self.clone()
        }
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.redacted();
        f.debug_struct("AmqpConfig")
            .field("url", &shown.url)
            .field("exchange", &shown.exchange)
            .field("routing_key", &shown.routing_key)
            .field("queue", &shown.queue)
            .finish()
    }
}
