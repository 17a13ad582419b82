//! The AMQP sink: one connection and confirm-mode channel, opened again after a failure.

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
use tokio::sync::{Mutex, mpsc};

use super::{AmqpConfig, Endpoint, MAX_SHORT_STRING};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Sink};

/// What the AMQP client's calls return.
type AmqpResult<T> = std::result::Result<T, amqprs::error::Error>;

/// How long connecting, declaring, and waiting for a confirm may each take.
const AMQP_TIMEOUT: Duration = Duration::from_secs(10);

impl AmqpConfig {
    /// The routing key for one event type.
    fn routing_key_for(&self, event_type: &str) -> String {
        self.routing_key.replace("{type}", event_type)
    }
}

impl Endpoint {
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
        let url = crate::redact::redact_url(&config.url);
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
