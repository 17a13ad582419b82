//! Exec hooks: a command per event, the event's JSON on its standard input.

use std::fmt;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::require;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Sink};

/// Default time a command has to finish.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a failed command's standard error its error message quotes.
const STDERR_QUOTED: usize = 200;

/// Settings of an exec hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExecConfig {
    /// A command line, run by `sh -c`.
    pub command: String,
    /// How long it may run, in milliseconds, before it is killed (a failed attempt).
    pub timeout_ms: u64,
}

impl ExecConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        require(!self.command.trim().is_empty(), || {
            "an exec hook needs a command".to_owned()
        })?;
        require(self.timeout_ms > 0, || "exec timeout must be above zero".to_owned())
    }
}

/// Runs a command per event: the CloudEvents document on standard input,
/// `COFFER_EVENT_ID`, `COFFER_EVENT_TYPE` and `COFFER_EVENT_SUBJECT` in its
/// environment. Exit status 0 is a delivery; anything else a failed attempt.
#[derive(Debug)]
pub(crate) struct ExecSink {
    name: String,
    config: ExecConfig,
}

impl ExecSink {
    pub(crate) fn new(name: &str, config: ExecConfig) -> Result<Self> {
        config.validate()?;
        Ok(ExecSink {
            name: name.to_owned(),
            config,
        })
    }

    fn failed(&self, what: String) -> Error {
        Error::new(ErrorKind::Delivery, format!("{self}: {what}"))
    }
}

impl fmt::Display for ExecSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exec hook {}", self.name)
    }
}

#[async_trait]
impl Sink for ExecSink {
    async fn deliver(&self, event: &Event, payload: &str) -> Result<()> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.config.command)
            .env("COFFER_EVENT_ID", &event.id)
            .env("COFFER_EVENT_TYPE", &event.event_type)
            .env("COFFER_EVENT_SUBJECT", event.subject.as_deref().unwrap_or(""))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.failed(format!("cannot start: {e}")))?;
        let run = async {
            if let Some(mut stdin) = child.stdin.take() {
                // A command that does not read its input is not an error.
                let _ = stdin.write_all(payload.as_bytes()).await;
            }
            child.wait_with_output().await
        };
        let output = tokio::time::timeout(Duration::from_millis(self.config.timeout_ms), run)
            .await
            .map_err(|_| self.failed(format!("still running after {} ms: killed", self.config.timeout_ms)))?
            .map_err(|e| self.failed(format!("failed: {e}")))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last_line = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        let quoted: String = last_line.chars().take(STDERR_QUOTED).collect();
        Err(self.failed(format!("{}: {quoted}", output.status)))
    }
}
