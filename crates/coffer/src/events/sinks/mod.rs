//! The sinks hooks deliver through, one module per kind, each with its settings.

mod amqp;
mod exec;
mod filelog;
mod nats;
mod sqs;
mod webhook;

pub use self::amqp::AmqpConfig;
pub(crate) use self::exec::ExecSink;
pub use self::exec::{DEFAULT_EXEC_TIMEOUT, ExecConfig};
pub(crate) use self::filelog::FileLogSink;
pub use self::filelog::{FileLogConfig, FileLogFormat};
pub use self::nats::NatsConfig;
pub use self::sqs::SqsConfig;
pub(crate) use self::webhook::WebhookSink;
pub use self::webhook::{DEFAULT_WEBHOOK_TIMEOUT, WebhookConfig, sign};

use super::{HookSpec, Sink};

/// Connect the sink of a queue hook (NATS, AMQP, SQS).
pub(crate) async fn connect_queue_sink(name: &str, spec: &HookSpec) -> crate::Result<Box<dyn Sink>> {
    Err(crate::Error::new(
        crate::ErrorKind::Unsupported,
        format!("hook {name}: {} sinks are being merged", spec.kind()),
    ))
}

/// What redacted settings show instead of a secret.
pub const REDACTED: &str = "***";

/// An invalid-input error with `message` unless `condition` holds.
fn require(condition: bool, message: impl FnOnce() -> String) -> crate::Result<()> {
    if condition {
        Ok(())
    } else {
        Err(crate::Error::invalid_input(message()))
    }
}
