//! S3 Object Lock, the store's own guard: coffer mirrors the catalog's
//! protection of a version onto its objects (a retention in the mode and
//! until the date the catalog holds, and the legal hold), so that a raw
//! client of the bucket cannot remove them either. A bucket with Object
//! Lock is versioned: removing an object there means removing each of its
//! versions by id, which the store refuses while a lock holds.

use base64::Engine;
use reqwest::header::HeaderMap;

use super::{S3Config, S3Extras, xml_elements, xml_text};
use crate::error::{Error, ErrorKind, Result};
use crate::retention::{Protection, Retention, RetentionMode};
use crate::time::Timestamp;

/// What coffer sends to lift a governance lock it set (S3 allows lowering
/// one with the bypass, not removing it on every store): a date this far ahead.
const LIFT_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl S3Extras {
    /// Whether the bucket has Object Lock on (asked once per process).
    pub(crate) async fn object_lock(&self) -> Result<bool> {
        self.object_lock
            .get_or_try_init(|| self.config.ask_object_lock())
            .await
            .copied()
    }

    /// The guard `info` names, if the bucket has one.
    pub(crate) async fn native_guard(&self) -> Result<Option<String>> {
        Ok(self
            .object_lock()
            .await?
            .then(|| format!("S3 Object Lock on bucket {}", self.config.bucket)))
    }

    /// Lock every version of the object at `path` as `protection` says
    /// (a rewritten manifest leaves older versions behind, which must not
    /// keep a hold the catalog has cleared); nothing where the bucket has
    /// no Object Lock. Returns whether anything had to be changed.
    pub(crate) async fn lock(&self, path: &str, protection: &Protection) -> Result<bool> {
        if !self.object_lock().await? {
            return Ok(false);
        }
        let mut changed = false;
        let config = &self.config;
        let key = format!("{}{path}", config.key_prefix());
        let now = Timestamp::now();
        for version in config.object_versions(&key).await?.0 {
            let ObjectVersion::Stored(version_id) = version else {
                continue;
            };
            let head = config.head(path, Some(&version_id)).await?;
            if let Some(retention) = retention_to_put(current_retention(&head), protection.active(now), now) {
                config.put_retention(path, &version_id, &retention).await?;
                changed = true;
            }
            let held = head.get("x-amz-object-lock-legal-hold").and_then(|v| v.to_str().ok()) == Some("ON");
            if held != protection.legal_hold {
                config.put_legal_hold(path, &version_id, protection.legal_hold).await?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Remove the object at `path` for good: on an Object Lock bucket every
    /// version of it by id (a plain delete would only hide it behind a
    /// delete marker). The store refuses while a lock holds.
    pub(crate) async fn delete_every_version(&self, path: &str) -> Result<()> {
        let config = &self.config;
        let key = format!("{}{path}", config.key_prefix());
        loop {
            let (versions, truncated) = config.object_versions(&key).await?;
            for version in &versions {
                config.delete_object_version(path, version.id()).await?;
            }
            if !truncated || versions.is_empty() {
                return Ok(());
            }
        }
    }
}

impl S3Config {
    /// `GetObjectLockConfiguration`: whether Object Lock is on. Stores
    /// without it (Garage, MinIO buckets made without it) answer with an error.
    async fn ask_object_lock(&self) -> Result<bool> {
        let url = format!("{}?object-lock", self.bucket_url()?);
        let response = self
            .send_signed(
                reqwest::Method::GET,
                &url,
                &[],
                String::new(),
                "read the Object Lock setting",
            )
            .await?;
        let ok = response.status().is_success();
        let text = response.text().await.unwrap_or_default();
        Ok(ok && xml_text(&text, "ObjectLockEnabled") == Some("Enabled"))
    }

    /// `HeadObject` of the object at `path` (of one version of it): its headers.
    pub(crate) async fn head(&self, path: &str, version_id: Option<&str>) -> Result<HeaderMap> {
        let query: &[(&str, &str)] = match version_id {
            Some(id) => &[("versionId", id)],
            None => &[],
        };
        let url = self.object_url(path, query)?;
        let response = self
            .send_signed(
                reqwest::Method::HEAD,
                url.as_str(),
                &[],
                String::new(),
                "read an object's state",
            )
            .await?;
        match response.status() {
            status if status.is_success() => Ok(response.headers().clone()),
            reqwest::StatusCode::NOT_FOUND => Err(Error::not_found(format!("{path} is not on s3://{}", self.bucket))),
            status => Err(self
                .place()
                .refusal(status.as_u16(), "")
                .unwrap_or_else(|| failed(&format!("reading the state of {path}"), status, ""))),
        }
    }

    /// `PutObjectRetention` on one version of `path`, lowering a governance
    /// lock if need be (the catalog has allowed the change).
    async fn put_retention(&self, path: &str, version_id: &str, retention: &Retention) -> Result<()> {
        let mode = match retention.mode {
            RetentionMode::Governance => "GOVERNANCE",
            RetentionMode::Compliance => "COMPLIANCE",
        };
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{mode}</Mode>\
             <RetainUntilDate>{}</RetainUntilDate></Retention>",
            s3_date(retention.until)
        );
        self.put_lock_part(path, version_id, "retention", body, true).await
    }

    /// `PutObjectLegalHold` on one version of `path`.
    async fn put_legal_hold(&self, path: &str, version_id: &str, on: bool) -> Result<()> {
        let body = format!(
            "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{}</Status></LegalHold>",
            if on { "ON" } else { "OFF" }
        );
        self.put_lock_part(path, version_id, "legal-hold", body, false).await
    }

    async fn put_lock_part(&self, path: &str, version_id: &str, part: &str, body: String, bypass: bool) -> Result<()> {
        let url = self.object_url(path, &[(part, ""), ("versionId", version_id)])?;
        // S3 asks for the body's MD5 on every Object Lock call.
        let md5 = base64::engine::general_purpose::STANDARD.encode(<md5::Md5 as md5::Digest>::digest(body.as_bytes()));
        let mut headers = vec![("content-md5", md5.as_str())];
        if bypass {
            headers.push(("x-amz-bypass-governance-retention", "true"));
        }
        let what = format!("lock {path}");
        let (status, text) = self
            .signed_call_with(reqwest::Method::PUT, url.as_str(), &headers, body, &what)
            .await?;
        match status.is_success() {
            true => Ok(()),
            false => Err(failed(&format!("setting the {part} of {path}"), status, &text)),
        }
    }

    /// The versions of the object `key` (its delete markers too), and
    /// whether the listing was cut short.
    async fn object_versions(&self, key: &str) -> Result<(Vec<ObjectVersion>, bool)> {
        let mut url =
            reqwest::Url::parse(&self.bucket_url()?).map_err(|e| Error::invalid_input(format!("S3 endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("versions", "")
            .append_pair("prefix", key);
        let (status, text) = self
            .signed_call(
                reqwest::Method::GET,
                url.as_str(),
                String::new(),
                "list object versions",
            )
            .await?;
        if !status.is_success() {
            return Err(failed(&format!("listing the versions of {key}"), status, &text));
        }
        let of_key = |element: &str| {
            xml_elements(&text, element)
                .into_iter()
                .filter(|entry| xml_text(entry, "Key") == Some(key))
                .filter_map(|entry| xml_text(entry, "VersionId").map(str::to_owned))
                .collect::<Vec<_>>()
        };
        let stored = of_key("Version").into_iter().map(ObjectVersion::Stored);
        let markers = of_key("DeleteMarker").into_iter().map(ObjectVersion::DeleteMarker);
        let versions = stored.chain(markers).collect();
        Ok((versions, xml_text(&text, "IsTruncated") == Some("true")))
    }

    /// `DeleteObject` of one version of `path`. Coffer removes only what its
    /// catalog allows, so a governance lock is bypassed; a compliance lock or
    /// a legal hold refuses (`RetentionLocked`).
    async fn delete_object_version(&self, path: &str, version_id: &str) -> Result<()> {
        let url = self.object_url(path, &[("versionId", version_id)])?;
        let response = self
            .send_signed(
                reqwest::Method::DELETE,
                url.as_str(),
                &[("x-amz-bypass-governance-retention", "true")],
                String::new(),
                "delete an object version",
            )
            .await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        match status {
            s if s.is_success() || s == reqwest::StatusCode::NOT_FOUND => Ok(()),
            reqwest::StatusCode::FORBIDDEN if xml_text(&text, "Code") == Some("AccessDenied") => Err(Error::new(
                ErrorKind::RetentionLocked,
                format!(
                    "s3://{} keeps {path} under its Object Lock: it cannot be removed before the lock ends",
                    self.bucket
                ),
            )),
            s => Err(self
                .place()
                .refusal(s.as_u16(), &text)
                .unwrap_or_else(|| failed(&format!("deleting a version of {path}"), s, &text))),
        }
    }
}

/// One version of an object on a versioned bucket, by its id.
enum ObjectVersion {
    /// A version with bytes.
    Stored(String),
    /// A delete marker.
    DeleteMarker(String),
}

impl ObjectVersion {
    fn id(&self) -> &str {
        match self {
            ObjectVersion::Stored(id) | ObjectVersion::DeleteMarker(id) => id,
        }
    }
}

/// The retention the object's headers say it has.
fn current_retention(head: &HeaderMap) -> Option<Retention> {
    let header = |name: &str| head.get(name).and_then(|v| v.to_str().ok());
    let mode = match header("x-amz-object-lock-mode")? {
        "COMPLIANCE" => RetentionMode::Compliance,
        "GOVERNANCE" => RetentionMode::Governance,
        _ => return None,
    };
    let until = Timestamp::parse(header("x-amz-object-lock-retain-until-date")?).ok()?;
    Some(Retention { mode, until })
}

/// What retention to put on an object locked as `current` so that it holds
/// `wanted` (the catalog's, in force at `now`), or `None` if nothing needs
/// sending. The store's rules bound it: a compliance lock is only ever
/// extended (it keeps its mode), a governance one may be lowered and lifted.
fn retention_to_put(current: Option<Retention>, wanted: Option<Retention>, now: Timestamp) -> Option<Retention> {
    let current = current.filter(|r| r.in_force(now));
    let wanted = wanted.map(|r| Retention {
        until: whole_second_after(r.until),
        ..r
    });
    match (current, wanted) {
        (_, Some(wanted)) if current == Some(wanted) => None,
        (
            Some(
                held @ Retention {
                    mode: RetentionMode::Compliance,
                    ..
                },
            ),
            wanted,
        ) => wanted
            .filter(|w| w.until > held.until)
            .map(|w| Retention { until: w.until, ..held }),
        (_, Some(wanted)) => Some(wanted),
        (Some(_governance), None) => Some(Retention {
            mode: RetentionMode::Governance,
            until: whole_second_after(now.plus(LIFT_AFTER)),
        }),
        (None, None) => None,
    }
}

/// `at`, rounded up to a whole second (S3's dates have no fraction, and a
/// lock must not end before the catalog's retention).
fn whole_second_after(at: Timestamp) -> Timestamp {
    let micros = at.as_micros();
    let rounded = micros.saturating_add(999_999).div_euclid(1_000_000) * 1_000_000;
    Timestamp::from_micros(rounded)
}

/// `at` as S3's Object Lock dates are written: `2033-01-01T00:00:00Z`.
fn s3_date(at: Timestamp) -> String {
    let seconds = u64::try_from(whole_second_after(at).as_micros() / 1_000_000).unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds)).to_string()
}

fn failed(what: &str, status: reqwest::StatusCode, body: &str) -> Error {
    let code = xml_text(body, "Code").unwrap_or("");
    Error::new(
        ErrorKind::BackendUnavailable,
        format!("{what} failed: HTTP {status} {code}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn retention(mode: RetentionMode, until: &str) -> Retention {
        Retention { mode, until: at(until) }
    }

    #[test]
    fn the_lock_sent_follows_the_catalog_within_the_stores_rules() {
        use RetentionMode::{Compliance, Governance};
        let now = at("2030-01-01T00:00:00Z");
        let later = retention(Governance, "2031-01-01T00:00:00Z");
        // A new lock, in the catalog's mode, rounded up to the second.
        assert_eq!(
            retention_to_put(None, Some(retention(Compliance, "2031-01-01T00:00:00.2Z")), now),
            Some(retention(Compliance, "2031-01-01T00:00:01Z"))
        );
        // The same lock again: nothing to send.
        assert_eq!(retention_to_put(Some(later), Some(later), now), None);
        // Governance is lowered, and lifted one second ahead.
        let sooner = retention(Governance, "2030-06-01T00:00:00Z");
        assert_eq!(retention_to_put(Some(later), Some(sooner), now), Some(sooner));
        assert_eq!(
            retention_to_put(Some(later), None, now),
            Some(retention(Governance, "2030-01-01T00:00:01Z"))
        );
        // Compliance is only extended, and keeps its mode.
        let held = retention(Compliance, "2031-01-01T00:00:00Z");
        assert_eq!(retention_to_put(Some(held), Some(sooner), now), None);
        assert_eq!(retention_to_put(Some(held), None, now), None);
        assert_eq!(
            retention_to_put(Some(held), Some(retention(Governance, "2032-01-01T00:00:00Z")), now),
            Some(retention(Compliance, "2032-01-01T00:00:00Z"))
        );
        // A lock already over counts as none.
        let over = retention(Compliance, "2029-01-01T00:00:00Z");
        assert_eq!(retention_to_put(Some(over), None, now), None);
        assert_eq!(retention_to_put(Some(over), Some(later), now), Some(later));
    }

    #[test]
    fn dates_are_written_as_s3_reads_them() {
        assert_eq!(s3_date(at("2033-01-01T00:00:00Z")), "2033-01-01T00:00:00Z");
        assert_eq!(s3_date(at("2033-01-01T00:00:00.000001Z")), "2033-01-01T00:00:01Z");
    }
}
