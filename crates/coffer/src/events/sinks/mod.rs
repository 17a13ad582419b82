//! The sinks hooks deliver through, one module per kind, each with its settings.

mod amqp;
mod exec;
mod filelog;
mod nats;
mod sqs;
mod webhook;

pub use self::amqp::AmqpConfig;
#[cfg(feature = "sink-amqp")]
use self::amqp::AmqpSink;
use self::exec::ExecSink;
pub use self::exec::{DEFAULT_EXEC_TIMEOUT, ExecConfig};
use self::filelog::FileLogSink;
pub use self::filelog::{FileLogConfig, FileLogFormat};
pub use self::nats::NatsConfig;
#[cfg(feature = "sink-nats")]
use self::nats::NatsSink;
#[cfg(any(test, feature = "testkit"))]
pub(crate) use self::sqs::SqsClient;
pub use self::sqs::SqsConfig;
pub(crate) use self::sqs::SqsSink;
use self::webhook::WebhookSink;
pub use self::webhook::{DEFAULT_WEBHOOK_TIMEOUT, WebhookConfig, sign};

use super::{HookSpec, Sink};
use crate::error::{Error, ErrorKind, Result};

/// What redacted settings show instead of a secret.
pub const REDACTED: &str = "***";

/// Build the sink of hook `name`, sharing `http`'s connections for the
/// kinds that speak HTTP; queue sinks connect to their broker and, where the
/// settings ask for it, create the stream or queue they deliver to.
/// Callbacks have no settings to build from: they are functions registered
/// with `Store::on_event`.
pub(crate) async fn build_sink(name: &str, spec: &HookSpec, http: &reqwest::Client) -> Result<Box<dyn Sink>> {
    Ok(match spec {
        HookSpec::Webhook(config) => Box::new(WebhookSink::new(name, config.clone(), http.clone())?),
        HookSpec::Filelog(config) => Box::new(FileLogSink::new(name, config.clone())?),
        HookSpec::Exec(config) => Box::new(ExecSink::new(name, config.clone())?),
        #[cfg(feature = "sink-nats")]
        HookSpec::Nats(config) => Box::new(NatsSink::connect(name, config.clone()).await?),
        #[cfg(feature = "sink-amqp")]
        HookSpec::Amqp(config) => Box::new(AmqpSink::connect(name, config.clone()).await?),
        HookSpec::Sqs(config) => Box::new(SqsSink::new(name, config.clone(), http.clone())?),
        HookSpec::Callback => {
            return Err(Error::invalid_input(format!(
                "hook {name} is a callback: register its function with Store::on_event"
            )));
        }
        // The kinds this build leaves out.
        #[allow(unreachable_patterns)]
        other => return Err(not_built(other)),
    })
}

/// The cargo feature that brings the sink of `spec`'s kind, for the kinds a
/// build may leave out, with whether this build has it.
fn cargo_feature(spec: &HookSpec) -> Option<(&'static str, bool)> {
    match spec {
        HookSpec::Nats(_) => Some(("sink-nats", cfg!(feature = "sink-nats"))),
        HookSpec::Amqp(_) => Some(("sink-amqp", cfg!(feature = "sink-amqp"))),
        _ => None,
    }
}

/// Refuse a hook whose sink this build leaves out, naming the cargo feature
/// that brings it.
pub(crate) fn ensure_built(spec: &HookSpec) -> Result<()> {
    match cargo_feature(spec) {
        Some((_, false)) => Err(not_built(spec)),
        _ => Ok(()),
    }
}

fn not_built(spec: &HookSpec) -> Error {
    let feature = cargo_feature(spec).map_or("", |(feature, _)| feature);
    Error::not_built(&format!("{} hooks", spec.kind()), feature)
}

/// Open the sink of hook `name` on its own (what a dispatcher does on
/// first use): connect to its receiver and, where the settings ask for it,
/// create the stream or queue it delivers to.
pub async fn connect_sink(name: &str, spec: &HookSpec) -> Result<Box<dyn Sink>> {
    build_sink(name, spec, &http_client()?).await
}

/// An HTTP client for the sinks that speak HTTP; a dispatcher keeps up to
/// its concurrency of connections to one receiver open.
pub(crate) fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
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
