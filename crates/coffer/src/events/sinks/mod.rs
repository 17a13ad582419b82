//! The sinks hooks deliver through, one module per kind, each with its settings.

mod amqp;
mod exec;
mod filelog;
mod nats;
mod sqs;
mod webhook;

pub use self::amqp::AmqpConfig;
pub use self::exec::ExecConfig;
pub use self::filelog::{FileLogConfig, FileLogFormat};
pub use self::nats::NatsConfig;
pub use self::sqs::SqsConfig;
pub use self::webhook::WebhookConfig;

/// What redacted settings show instead of a secret.
pub const REDACTED: &str = "***";

/// An invalid-input error with `message` unless `condition` holds.
fn require(condition: bool, message: impl FnOnce() -> String) -> crate::Result<()> {
    if condition { Ok(()) } else { Err(crate::Error::invalid_input(message())) }
}
