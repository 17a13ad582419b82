//! Restoring S3 objects from GLACIER and DEEP_ARCHIVE: `RestoreObject`
//! makes a temporary readable copy for some days; `HeadObject`'s
//! `x-amz-restore` header says how far it has got.

use super::{S3Config, xml_text};
use crate::backend::{RestoreState, RestoreTier};
use crate::error::{Error, ErrorKind, Result};
use crate::time::Timestamp;

/// The classes whose objects cannot be read until restored.
const ARCHIVE_CLASSES: [&str; 2] = ["GLACIER", "DEEP_ARCHIVE"];

impl S3Config {
    /// Ask for a copy of the archived object at `path`, readable for `days`,
    /// retrieved at the speed of `tier`; then say where it stands. One
    /// already under way is no error.
    pub(crate) async fn restore(&self, path: &str, days: u32, tier: RestoreTier) -> Result<RestoreState> {
        let tier = match tier {
            RestoreTier::Expedited => "Expedited",
            RestoreTier::Standard => "Standard",
            RestoreTier::Bulk => "Bulk",
        };
        let body = format!(
            "<RestoreRequest xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Days>{days}</Days>\
             <GlacierJobParameters><Tier>{tier}</Tier></GlacierJobParameters></RestoreRequest>"
        );
        let url = self.object_url(path, &[("restore", "")])?;
        let (status, text) = self
            .signed_call(reqwest::Method::POST, url.as_str(), body, "restore an archived object")
            .await?;
        let code = xml_text(&text, "Code").unwrap_or("");
        if !status.is_success() && code != "RestoreAlreadyInProgress" {
            return Err(Error::new(
                ErrorKind::BackendUnavailable,
                format!("restoring {path} failed: HTTP {status} {code}"),
            ));
        }
        self.restore_status(path).await
    }

    /// Where the object at `path` stands: its class and its restore header.
    pub(crate) async fn restore_status(&self, path: &str) -> Result<RestoreState> {
        let head = self.head(path, None).await?;
        let header = |name: &str| head.get(name).and_then(|v| v.to_str().ok());
        let class = header("x-amz-storage-class").unwrap_or("STANDARD");
        if !ARCHIVE_CLASSES.contains(&class) {
            return Ok(RestoreState::NotArchived);
        }
        Ok(restore_state(class, header("x-amz-restore")))
    }
}

/// The state an `x-amz-restore` header (`ongoing-request="false",
/// expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`) gives an object of an archive class.
fn restore_state(class: &str, header: Option<&str>) -> RestoreState {
    let class = class.to_owned();
    match header {
        None => RestoreState::Archived { class },
        Some(text) if text.contains("ongoing-request=\"true\"") => RestoreState::InProgress { class },
        Some(text) => {
            let until = text
                .split_once("expiry-date=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .and_then(|(date, _)| http_date(date));
            RestoreState::Restored { until }
        }
    }
}

/// An HTTP date (`Fri, 21 Dec 2012 00:00:00 GMT`).
fn http_date(text: &str) -> Option<Timestamp> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, ..] = parts.as_slice() else {
        return None;
    };
    let month = month.get(..3)?.to_ascii_lowercase();
    let month = MONTHS.iter().position(|m| *m == month)? + 1;
    Timestamp::parse(&format!("{year}-{month:02}-{:02}T{time}Z", day.parse::<u32>().ok()?)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restore_header_gives_the_state() {
        assert_eq!(
            restore_state("GLACIER", None),
            RestoreState::Archived {
                class: "GLACIER".into()
            }
        );
        assert_eq!(
            restore_state("DEEP_ARCHIVE", Some("ongoing-request=\"true\"")),
            RestoreState::InProgress {
                class: "DEEP_ARCHIVE".into()
            }
        );
        assert_eq!(
            restore_state(
                "GLACIER",
                Some("ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"")
            ),
            RestoreState::Restored {
                until: Some(Timestamp::parse("2012-12-21T00:00:00Z").unwrap())
            }
        );
    }
}
