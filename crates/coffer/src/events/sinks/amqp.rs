//! AMQP 0-9-1 (RabbitMQ): each event published to an exchange with publisher confirms.
//!
//! Messages are persistent JSON with `message_id` = the event id and `type` =
//! the event type, published with `mandatory` on a channel in confirm mode:
//! a delivery succeeds only once the broker acks the message, and a nack or
//! an unroutable (returned) message is an error. Publishes are serialized on
//! one channel, so the next confirm (and any return before it) is always the
//! one for the message just sent. A broken connection is dropped and opened
//! again by the next delivery.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use amqprs::callbacks::{ChannelCallback, DefaultConnectionCallback};
use amqprs::channel::{
    BasicPublishArguments, Channel, ConfirmSelectArguments, ExchangeDeclareArguments, QueueBindArguments,
    QueueDeclareArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::tls::TlsAdaptor;
use amqprs::{Ack, BasicProperties, Cancel, CloseChannel, DELIVERY_MODE_PERSISTENT, Nack, Return};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc};

use super::require;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Sink};

/// What the AMQP client's calls return.
type AmqpResult<T> = std::result::Result<T, amqprs::error::Error>;

/// How long connecting, declaring, and waiting for a confirm may each take.
const AMQP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest AMQP short string: names, routing keys and message properties.
const MAX_SHORT_STRING: usize = 255;

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

    /// The routing key for one event type.
    fn routing_key_for(&self, event_type: &str) -> String {
        self.routing_key.replace("{type}", event_type)
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

/// Where and how to connect, parsed from the URL.
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
        let shown = crate::config::redact_url(&config.url);
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

    fn connection_arguments(&self, name: &str) -> Result<OpenConnectionArguments> {
        let mut arguments = OpenConnectionArguments::new(&self.host, self.port, &self.user, &self.password);
        arguments
            .virtual_host(&self.vhost)
            .connection_name(&format!("coffer hook {name}"));
        if self.tls {
            arguments.tls_adaptor(TlsAdaptor::new(tls_connector()?, self.host.clone()));
        }
        Ok(arguments.finish())
    }
}

/// A TLS connector trusting the platform's roots, with aws-lc-rs chosen
/// explicitly (rustls panics when it has to guess a provider and cannot).
fn tls_connector() -> Result<tokio_rustls::TlsConnector> {
    let failed = |e: rustls::Error| Error::new(ErrorKind::Delivery, format!("cannot set up TLS: {e}"));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).map_err(failed)?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(failed)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
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

/// What the broker said about published messages, forwarded from the channel's callback.
#[derive(Debug)]
enum Confirm {
    Ack { tag: u64, multiple: bool },
    Nack { tag: u64, multiple: bool },
    Returned { code: u16, text: String },
    Closed { code: u16, text: String },
}

/// The channel callback: forwards confirms, returns and closes in the order they arrive.
struct Forwarder(mpsc::UnboundedSender<Confirm>);

#[async_trait]
impl ChannelCallback for Forwarder {
    async fn close(&mut self, _channel: &Channel, close: CloseChannel) -> AmqpResult<()> {
        let (code, text) = (close.reply_code(), close.reply_text().clone());
        // The receiver may be gone with its session: nothing is waiting then.
        let _ = self.0.send(Confirm::Closed { code, text });
        Ok(())
    }

    async fn cancel(&mut self, _channel: &Channel, _cancel: Cancel) -> AmqpResult<()> {
        Ok(())
    }

    async fn flow(&mut self, _channel: &Channel, active: bool) -> AmqpResult<bool> {
        Ok(active)
    }

    async fn publish_ack(&mut self, _channel: &Channel, ack: Ack) {
        let (tag, multiple) = (ack.delivery_tag(), ack.mutiple());
        let _ = self.0.send(Confirm::Ack { tag, multiple });
    }

    async fn publish_nack(&mut self, _channel: &Channel, nack: Nack) {
        let (tag, multiple) = (nack.delivery_tag(), nack.multiple());
        let _ = self.0.send(Confirm::Nack { tag, multiple });
    }

    async fn publish_return(&mut self, _channel: &Channel, ret: Return, _properties: BasicProperties, _: Vec<u8>) {
        let (code, text) = (ret.reply_code(), ret.reply_text().clone());
        let _ = self.0.send(Confirm::Returned { code, text });
    }
}

/// One open connection with its publishing channel in confirm mode.
struct Session {
    connection: Connection,
    channel: Channel,
    confirms: mpsc::UnboundedReceiver<Confirm>,
    /// Messages published on the channel: the broker numbers confirms 1, 2, ...
    published: u64,
}

/// Why a publish failed, and whether its session is still usable.
struct Failure {
    message: String,
    session_usable: bool,
}

impl Session {
    async fn publish(
        &mut self,
        arguments: BasicPublishArguments,
        properties: BasicProperties,
        body: Vec<u8>,
    ) -> Result<(), Failure> {
        let broken = |message: String| Failure {
            message,
            session_usable: false,
        };
        self.channel
            .basic_publish(properties, body, arguments)
            .await
            .map_err(|e| broken(format!("cannot publish: {e}")))?;
        self.published += 1;
        let tag = self.published;
        let mut returned = None;
        let outcome = tokio::time::timeout(AMQP_TIMEOUT, async {
            loop {
                match self.confirms.recv().await {
                    None => return Err(broken("the channel closed before the broker confirmed".to_owned())),
                    Some(Confirm::Closed { code, text }) => {
                        return Err(broken(format!("the broker closed the channel: {code} {text}")));
                    }
                    Some(Confirm::Returned { code, text }) => returned = Some(format!("{code} {text}")),
                    Some(Confirm::Ack { tag: acked, multiple }) if covers(acked, multiple, tag) => {
                        return match returned.take() {
                            None => Ok(()),
                            Some(why) => Err(Failure {
                                message: format!("the broker returned the message as unroutable: {why}"),
                                session_usable: true,
                            }),
                        };
                    }
                    Some(Confirm::Nack { tag: nacked, multiple }) if covers(nacked, multiple, tag) => {
                        return Err(Failure {
                            message: "the broker refused the message (nack)".to_owned(),
                            session_usable: true,
                        });
                    }
                    // A confirm for an earlier message: not ours.
                    Some(Confirm::Ack { .. } | Confirm::Nack { .. }) => {}
                }
            }
        })
        .await;
        outcome.unwrap_or_else(|_| Err(broken("no confirm from the broker in time".to_owned())))
    }

    /// Close politely in the background (the broker would otherwise log an abrupt close).
    fn close(self) {
        let Session {
            connection, channel, ..
        } = self;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(AMQP_TIMEOUT, async {
                let _ = channel.close().await;
                let _ = connection.close().await;
            })
            .await;
        });
    }
}

/// Whether a confirm for `confirmed` (and all before it when `multiple`) covers message `tag`.
fn covers(confirmed: u64, multiple: bool, tag: u64) -> bool {
    confirmed == tag || (multiple && confirmed > tag)
}

/// Publishes events to an AMQP exchange with publisher confirms.
pub(crate) struct AmqpSink {
    name: String,
    config: AmqpConfig,
    endpoint: Endpoint,
    session: Mutex<Option<Session>>,
}

impl AmqpSink {
    /// Connect for hook `name`, declaring the configured queue (and its binding).
    pub(crate) async fn connect(name: &str, config: AmqpConfig) -> Result<Self> {
        config.validate()?;
        for (what, value) in [
            ("exchange", Some(&config.exchange)),
            ("routing key", Some(&config.routing_key)),
            ("queue", config.queue.as_ref()),
        ] {
            let too_long = value.is_some_and(|v| v.len() > MAX_SHORT_STRING);
            require(!too_long, || {
                format!("AMQP {what} is longer than {MAX_SHORT_STRING} bytes")
            })?;
        }
        let endpoint = Endpoint::parse(&config)?;
        let sink = AmqpSink {
            name: name.to_owned(),
            config,
            endpoint,
            session: Mutex::new(None),
        };
        let session = sink.open().await?;
        *sink.session.lock().await = Some(session);
        Ok(sink)
    }

    /// Open a connection, declare the topology, and open the publishing channel.
    async fn open(&self) -> Result<Session> {
        let failed = |what: &str, e: &dyn fmt::Display| {
            Error::new(ErrorKind::Delivery, format!("{self}: {what}: {e}")).retryable()
        };
        let arguments = self.endpoint.connection_arguments(&self.name)?;
        let connection = within(Connection::open(&arguments))
            .await
            .map_err(|e| failed("cannot connect", &e))?;
        within(connection.register_callback(DefaultConnectionCallback))
            .await
            .map_err(|e| failed("cannot connect", &e))?;
        if let Some(queue) = &self.config.queue {
            self.declare(&connection, queue)
                .await
                .map_err(|e| failed("cannot declare", &e))?;
        }
        let (sender, confirms) = mpsc::unbounded_channel();
        let channel = within(connection.open_channel(None))
            .await
            .map_err(|e| failed("cannot open a channel", &e))?;
        within(channel.register_callback(Forwarder(sender)))
            .await
            .map_err(|e| failed("cannot open a channel", &e))?;
        within(channel.confirm_select(ConfirmSelectArguments::default()))
            .await
            .map_err(|e| failed("cannot turn on publisher confirms", &e))?;
        Ok(Session {
            connection,
            channel,
            confirms,
            published: 0,
        })
    }

    /// Declare `queue` durable and bind it to the exchange, which is declared
    /// as a durable topic exchange unless it exists. The binding key is the
    /// routing key with `{type}` as `#`, which suits a topic exchange; an
    /// existing exchange of another type gets the same key.
    async fn declare(&self, connection: &Connection, queue: &str) -> Result<(), DeclareError> {
        let exchange = &self.config.exchange;
        if !exchange.is_empty() {
            // A passive declare fails (and closes its channel) when the exchange is missing.
            let probe = within(connection.open_channel(None)).await?;
            let exists =
                within(probe.exchange_declare(ExchangeDeclareArguments::new(exchange, "topic").passive(true).finish()))
                    .await
                    .is_ok();
            let _ = within(probe.close()).await;
            if !exists {
                let channel = within(connection.open_channel(None)).await?;
                let declare = ExchangeDeclareArguments::new(exchange, "topic").durable(true).finish();
                within(channel.exchange_declare(declare)).await?;
                let _ = within(channel.close()).await;
            }
        }
        let channel = within(connection.open_channel(None)).await?;
        within(channel.queue_declare(QueueDeclareArguments::durable_client_named(queue))).await?;
        if !exchange.is_empty() {
            let binding = self.config.routing_key_for("#");
            within(channel.queue_bind(QueueBindArguments::new(queue, exchange, &binding))).await?;
        }
        let _ = within(channel.close()).await;
        Ok(())
    }
}

/// An AMQP call's failure: the client's error, or no answer in time.
enum DeclareError {
    Amqp(amqprs::error::Error),
    TimedOut,
}

impl fmt::Display for DeclareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeclareError::Amqp(e) => write!(f, "{e}"),
            DeclareError::TimedOut => write!(f, "no answer in {} s", AMQP_TIMEOUT.as_secs()),
        }
    }
}

/// Run one AMQP call with the time limit.
async fn within<T>(call: impl Future<Output = AmqpResult<T>>) -> Result<T, DeclareError> {
    match tokio::time::timeout(AMQP_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(DeclareError::Amqp(e)),
        Err(_) => Err(DeclareError::TimedOut),
    }
}

impl fmt::Display for AmqpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.config;
        let url = crate::config::redact_url(&config.url);
        let exchange = if config.exchange.is_empty() {
            "(default exchange)"
        } else {
            &config.exchange
        };
        write!(f, "amqp hook {} ({url} {exchange} {})", self.name, config.routing_key)
    }
}

impl fmt::Debug for AmqpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpSink")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for AmqpSink {
    fn drop(&mut self) {
        // amqprs closes a dropped connection from a spawned task, which panics
        // outside a Tokio runtime: there, leave the socket to the process's end.
        if tokio::runtime::Handle::try_current().is_err()
            && let Some(session) = self.session.get_mut().take()
        {
            std::mem::forget(session);
        }
    }
}

#[async_trait]
impl Sink for AmqpSink {
    async fn deliver(&self, event: &Event, payload: &str) -> Result<()> {
        let routing_key = self.config.routing_key_for(&event.event_type);
        for (what, value) in [
            ("routing key", &routing_key),
            ("event id", &event.id),
            ("event type", &event.event_type),
        ] {
            if value.len() > MAX_SHORT_STRING {
                return Err(Error::new(
                    ErrorKind::Delivery,
                    format!("{self}: the {what} is longer than AMQP's {MAX_SHORT_STRING} bytes"),
                ));
            }
        }
        let arguments = BasicPublishArguments::new(&self.config.exchange, &routing_key)
            .mandatory(true)
            .finish();
        let properties = BasicProperties::default()
            .with_content_type("application/json")
            .with_delivery_mode(DELIVERY_MODE_PERSISTENT)
            .with_message_id(&event.id)
            .with_message_type(&event.event_type)
            .finish();
        let mut slot = self.session.lock().await;
        let mut session = match slot.take() {
            Some(session) if session.connection.is_open() && session.channel.is_open() => session,
            stale => {
                if let Some(stale) = stale {
                    stale.close();
                }
                self.open().await?
            }
        };
        match session
            .publish(arguments, properties, payload.as_bytes().to_vec())
            .await
        {
            Ok(()) => {
                *slot = Some(session);
                Ok(())
            }
            Err(failure) => {
                let error = Error::new(ErrorKind::Delivery, format!("{self}: {}", failure.message));
                if failure.session_usable {
                    *slot = Some(session);
                    Err(error)
                } else {
                    // The next delivery connects again.
                    session.close();
                    Err(error.retryable())
                }
            }
        }
    }
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

    #[test]
    fn confirms_cover_their_own_and_earlier_messages() {
        assert!(covers(3, false, 3));
        assert!(!covers(2, false, 3));
        assert!(covers(5, true, 3));
        assert!(!covers(2, true, 3));
    }

    #[tokio::test]
    async fn names_show_no_secrets() {
        let config = config("amqp://app:hunter2@127.0.0.1:5672/%2f");
        let sink = AmqpSink {
            name: "audit".into(),
            endpoint: Endpoint::parse(&config).unwrap(),
            config,
            session: Mutex::new(None),
        };
        assert_eq!(
            sink.to_string(),
            "amqp hook audit (amqp://app:***@127.0.0.1:5672/%2f events coffer.{type})"
        );
        let debug = format!("{sink:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
