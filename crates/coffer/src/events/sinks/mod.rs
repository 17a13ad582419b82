//! The sinks hooks deliver through, one module per kind, each with its settings.

mod amqp;
mod exec;
mod filelog;
mod nats;
mod sigv4;
mod sqs;
mod webhook;

pub use self::amqp::AmqpConfig;
pub(crate) use self::amqp::AmqpSink;
pub(crate) use self::exec::ExecSink;
pub use self::exec::{DEFAULT_EXEC_TIMEOUT, ExecConfig};
pub(crate) use self::filelog::FileLogSink;
pub use self::filelog::{FileLogConfig, FileLogFormat};
pub use self::nats::NatsConfig;
pub(crate) use self::nats::NatsSink;
pub use self::sqs::SqsConfig;
pub(crate) use self::sqs::{SqsClient, SqsSink};
pub(crate) use self::webhook::WebhookSink;
pub use self::webhook::{DEFAULT_WEBHOOK_TIMEOUT, WebhookConfig, sign};

use super::{HookSpec, Sink};
use crate::error::{Error, ErrorKind, Result};

/// What redacted settings show instead of a secret.
pub const REDACTED: &str = "***";

/// Connect the sink of a queue hook (NATS, AMQP, SQS): connect to the
/// broker and, where the settings ask for it, create the stream or queue.
pub(crate) async fn connect_queue_sink(name: &str, spec: &HookSpec) -> Result<Box<dyn Sink>> {
    match spec {
        HookSpec::Nats(config) => Ok(Box::new(NatsSink::connect(name, config.clone()).await?)),
        HookSpec::Amqp(config) => Ok(Box::new(AmqpSink::connect(name, config.clone()).await?)),
        HookSpec::Sqs(config) => Ok(Box::new(SqsSink::new(name, config.clone(), http_client()?)?)),
        other => Err(Error::invalid_input(format!(
            "hook {name}: a {} hook is not a queue hook",
            other.kind()
        ))),
    }
}

/// Open the sink of hook `name`: connect to its receiver and, where the
/// settings ask for it, create the stream or queue it delivers to.
///
/// Built here: `nats`, `amqp` and `sqs` hooks; other kinds are refused with
/// an invalid-input error for now.
pub async fn connect_sink(name: &str, spec: &HookSpec) -> Result<Box<dyn Sink>> {
    match spec {
        HookSpec::Nats(_) | HookSpec::Amqp(_) | HookSpec::Sqs(_) => connect_queue_sink(name, spec).await,
        other => Err(Error::invalid_input(format!(
            "hook {name}: connect_sink cannot build {} sinks yet",
            other.kind()
        ))),
    }
}

/// An HTTP client for the sinks that speak HTTP.
pub(crate) fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .build()
        .map_err(|e| Error::new(ErrorKind::Delivery, format!("cannot set up an HTTP client: {e}")))
}

/// An invalid-input error with `message` unless `condition` holds.
fn require(condition: bool, message: impl FnOnce() -> String) -> crate::Result<()> {
    if condition {
        Ok(())
    } else {
        Err(crate::Error::invalid_input(message()))
    }
}
