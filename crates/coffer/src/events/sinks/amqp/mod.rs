//! AMQP 0-9-1 (RabbitMQ): each event published to an exchange with publisher confirms.
//!
//! Messages are persistent JSON with `message_id` = the event id and `type` =
//! the event type, published with `mandatory` on a channel in confirm mode:
//! a delivery succeeds only once the broker acks the message, and a nack or
//! an unroutable (returned) message is an error. Publishes are serialized on
//! one channel, so the next confirm (and any return before it) is always the
//! one for the message just sent. A broken connection is dropped and opened
//! again by the next delivery.
//!
//! The settings are always built (a catalog may hold AMQP hooks); the sink
//! comes with the cargo feature `sink-amqp`.

use serde::{Deserialize, Serialize};

use super::require;
use crate::error::{Error, Result};

#[cfg(feature = "sink-amqp")]
mod sink;
#[cfg(feature = "sink-amqp")]
pub(crate) use self::sink::AmqpSink;

/// Longest AMQP short string: names, routing keys and message properties.
const MAX_SHORT_STRING: usize = 255;

/// Settings of an AMQP hook.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
                    crate::redact::redact_url(&self.url)
                )
            },
        )?;
        require(!self.routing_key.is_empty() || !self.exchange.is_empty(), || {
            "an AMQP hook needs an exchange or a routing key".to_owned()
        })?;
        for (what, value) in [
            ("exchange", Some(&self.exchange)),
            ("routing key", Some(&self.routing_key)),
            ("queue", self.queue.as_ref()),
        ] {
            let too_long = value.is_some_and(|v| v.len() > MAX_SHORT_STRING);
            require(!too_long, || {
                format!("AMQP {what} is longer than {MAX_SHORT_STRING} bytes")
            })?;
        }
        Endpoint::parse(self).map(|_| ())
    }

    pub(crate) fn redacted(&self) -> Self {
        AmqpConfig {
            url: crate::redact::redact_url(&self.url),
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

/// Where and how to connect, parsed from the URL.
// Without the sink, only the parse (validation) is used.
#[cfg_attr(not(feature = "sink-amqp"), allow(dead_code))]
struct Endpoint {
    host: String,
    port: u16,
    tls: bool,
    user: String,
    password: String,
    vhost: String,
}

impl Endpoint {
    /// Parse `amqp[s]://[user[:password]@]host[:port][/vhost]` (user and
    /// password default to guest; an empty vhost means `/`).
    fn parse(config: &AmqpConfig) -> Result<Self> {
        let shown = crate::redact::redact_url(&config.url);
        let invalid = |what: &str| Error::invalid_input(format!("invalid AMQP URL {shown}: {what}"));
        let url = reqwest::Url::parse(&config.url).map_err(|e| invalid(&e.to_string()))?;
        let tls = match url.scheme() {
            "amqp" => false,
            "amqps" => true,
            _ => return Err(invalid("the scheme must be amqp or amqps")),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host"))?;
        // An IPv6 literal comes bracketed; the socket address wants it bare.
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let decode = |text: &str, what: &str| percent_decode(text).ok_or_else(|| invalid(what));
        let user = decode(url.username(), "bad escape in the user name")?;
        let password = decode(url.password().unwrap_or_default(), "bad escape in the password")?;
        let vhost = decode(
            url.path().strip_prefix('/').unwrap_or(url.path()),
            "bad escape in the virtual host",
        )?;
        let endpoint = Endpoint {
            host,
            port: url.port().unwrap_or(if tls { 5671 } else { 5672 }),
            tls,
            user: if user.is_empty() { "guest".to_owned() } else { user },
            password: if url.password().is_none() {
                "guest".to_owned()
            } else {
                password
            },
            vhost: if vhost.is_empty() { "/".to_owned() } else { vhost },
        };
        require(endpoint.vhost.len() <= MAX_SHORT_STRING, || {
            format!("AMQP URL {shown}: the virtual host is longer than {MAX_SHORT_STRING} bytes")
        })?;
        Ok(endpoint)
    }
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> AmqpConfig {
        AmqpConfig {
            url: url.into(),
            exchange: "events".into(),
            routing_key: "coffer.{type}".into(),
            queue: Some("audit".into()),
        }
    }

    #[test]
    fn urls_give_host_credentials_and_virtual_host() {
        let plain = Endpoint::parse(&config("amqp://127.0.0.1")).unwrap();
        assert_eq!((plain.host.as_str(), plain.port, plain.tls), ("127.0.0.1", 5672, false));
        assert_eq!(
            (plain.user.as_str(), plain.password.as_str(), plain.vhost.as_str()),
            ("guest", "guest", "/")
        );
        let full = Endpoint::parse(&config("amqps://app:p%40ss@mq.example.com/%2fprod")).unwrap();
        assert_eq!(
            (full.host.as_str(), full.port, full.tls),
            ("mq.example.com", 5671, true)
        );
        assert_eq!(
            (full.user.as_str(), full.password.as_str(), full.vhost.as_str()),
            ("app", "p@ss", "/prod")
        );
        let default_vhost = Endpoint::parse(&config("amqp://app:pw@[::1]:5673/%2f")).unwrap();
        assert_eq!((default_vhost.host.as_str(), default_vhost.port), ("::1", 5673));
        assert_eq!(default_vhost.vhost, "/");
        let bad = Endpoint::parse(&config("amqp://app:secret@host/%zz")).err().unwrap();
        assert!(!bad.message().contains("secret"), "{}", bad.message());
        assert_eq!(percent_decode("a%2Fb%20c"), Some("a/b c".to_owned()));
        assert_eq!(percent_decode("%4"), None);
    }
}
