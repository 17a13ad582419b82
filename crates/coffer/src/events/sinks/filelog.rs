//! File logs: one line per event, appended to a file.

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::require;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Sink};

/// How a file log writes an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum FileLogFormat {
    /// The CloudEvents document, one per line (JSON Lines).
    Json,
    /// `TIME TYPE SUBJECT VERSION ID`, space-separated (`-` for what is absent).
    Text,
}

/// Settings of a file log hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FileLogConfig {
    /// The file (created, with its directory, if missing).
    pub path: PathBuf,
    /// Line format.
    pub format: FileLogFormat,
}

impl FileLogConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        require(!self.path.as_os_str().is_empty(), || {
            "a file log needs a path".to_owned()
        })
    }
}

/// Appends events to a file; each line is written with one call, so a
/// reader never sees half a line of a delivered event.
#[derive(Debug)]
pub(crate) struct FileLogSink {
    name: String,
    config: FileLogConfig,
    file: Mutex<Option<tokio::fs::File>>,
}

impl FileLogSink {
    pub(crate) fn new(name: &str, config: FileLogConfig) -> Result<Self> {
        config.validate()?;
        Ok(FileLogSink {
            name: name.to_owned(),
            config,
            file: Mutex::new(None),
        })
    }

    fn line(&self, event: &Event, payload: &str) -> String {
        match self.config.format {
            FileLogFormat::Json => format!("{payload}\n"),
            FileLogFormat::Text => {
                let version = event.data.get("version_id").and_then(serde_json::Value::as_str);
                format!(
                    "{} {} {} {} {}\n",
                    event.time,
                    event.event_type,
                    event.subject.as_deref().unwrap_or("-"),
                    version.unwrap_or("-"),
                    event.id
                )
            }
        }
    }

    fn failed(&self, what: &str, err: std::io::Error) -> Error {
        Error::new(ErrorKind::Delivery, format!("{self}: {what}: {err}"))
    }
}

impl fmt::Display for FileLogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file log {} ({})", self.name, self.config.path.display())
    }
}

#[async_trait]
impl Sink for FileLogSink {
    async fn deliver(&self, event: &Event, payload: &str) -> Result<()> {
        let line = self.line(event, payload);
        let mut file = self.file.lock().await;
        if file.is_none() {
            if let Some(dir) = self.config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| self.failed("cannot create its directory", e))?;
            }
            let opened = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.config.path)
                .await
                .map_err(|e| self.failed("cannot open", e))?;
            *file = Some(opened);
        }
        let Some(open) = file.as_mut() else {
            return Err(Error::new(ErrorKind::Delivery, format!("{self}: not open")));
        };
        let written = async {
            open.write_all(line.as_bytes()).await?;
            open.flush().await
        }
        .await;
        if let Err(err) = written {
            // Open again next time: the file may have been moved or its disk replaced.
            *file = None;
            return Err(self.failed("cannot append", err));
        }
        Ok(())
    }
}
