//! Object keys and user metadata: every rule about what a caller may name is here.
//!
//! ```
//! use coffer::ObjectKey;
//! use coffer::key::{MAX_KEY_BYTES, validate_tag};
//!
//! assert!(ObjectKey::new("invoices/2024/inv_001.pdf").is_ok());
//! assert!(ObjectKey::new("../etc/passwd").is_err());
//! assert!(ObjectKey::new("x".repeat(MAX_KEY_BYTES + 1)).is_err());
//! assert!(validate_tag("stage", "draft").is_ok());
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Longest key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest metadata name, in bytes.
pub const MAX_METADATA_NAME_BYTES: usize = 128;
/// Longest single metadata value, in bytes.
pub const MAX_METADATA_VALUE_BYTES: usize = 2048;
/// Largest total of all metadata names and values of one version, in bytes.
pub const MAX_METADATA_TOTAL_BYTES: usize = 8192;
/// Longest content type, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;

/// A validated object key such as `invoices/2024/inv_001.pdf`.
///
/// Keys are UTF-8, 1 to 1024 bytes, made of `/`-separated segments that are
/// neither empty, `.` nor `..`; no leading `/`, no NUL or other control
/// characters. Keys never name a path on a backend directly, so no key can reach
/// outside a store's root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Validate `key`.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        validate_key(&key)?;
        Ok(ObjectKey(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn invalid_key(key: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidKey,
        format!("invalid key {:?}: {why}", printable(key)),
    )
}

fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(invalid_key(key, "a key cannot be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid_key(key, &format!("longer than {MAX_KEY_BYTES} bytes")));
    }
    if key.starts_with('/') {
        return Err(invalid_key(key, "a key cannot start with '/'"));
    }
    if key.chars().any(char::is_control) {
        return Err(invalid_key(key, "control characters (including NUL) are not allowed"));
    }
    for segment in key.split('/') {
        match segment {
            "" => {
                return Err(invalid_key(key, "empty path segment ('//' or trailing '/')"));
            }
            "." | ".." => return Err(invalid_key(key, "'.' and '..' segments are not allowed")),
            _ => {}
        }
    }
    Ok(())
}

/// Check a key prefix (of a token, a rule): empty, or the start of a valid
/// key (`invoices/`, `invoices/2024`).
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    validate_key(&format!("{prefix}x")).map_err(|e| {
        let why = e.message().rsplit(": ").next().unwrap_or_default().to_owned();
        Error::new(
            ErrorKind::InvalidKey,
            format!("invalid prefix {:?}: {why}", printable(prefix)),
        )
    })
}

impl TryFrom<String> for ObjectKey {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        ObjectKey::new(s)
    }
}

impl TryFrom<&str> for ObjectKey {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        ObjectKey::new(s)
    }
}

impl From<ObjectKey> for String {
    fn from(k: ObjectKey) -> String {
        k.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// User metadata of a version: names to values, sorted by name.
pub type Metadata = BTreeMap<String, String>;

/// Check user metadata against the size and character rules.
pub fn validate_metadata(metadata: &Metadata) -> Result<()> {
    let mut total = 0;
    for (name, value) in metadata {
        validate_metadata_entry(name, value)?;
        total += name.len() + value.len();
    }
    if total > MAX_METADATA_TOTAL_BYTES {
        return Err(Error::invalid_input(format!(
            "metadata totals {total} bytes; the limit is {MAX_METADATA_TOTAL_BYTES}"
        )));
    }
    Ok(())
}

/// Check one metadata entry: its name's characters and length, its value's length and characters.
pub fn validate_metadata_entry(name: &str, value: &str) -> Result<()> {
    let name_ok = !name.is_empty()
        && name.len() <= MAX_METADATA_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !name_ok {
        return Err(Error::invalid_input(format!(
            "invalid metadata name {:?}: use 1-{MAX_METADATA_NAME_BYTES} ASCII letters, digits, '-', '_' or '.'",
            printable(name)
        )));
    }
    if value.len() > MAX_METADATA_VALUE_BYTES {
        return Err(Error::invalid_input(format!(
            "metadata value of {name:?} is {} bytes; the limit is {MAX_METADATA_VALUE_BYTES}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid_input(format!(
            "metadata value of {name:?} contains control characters"
        )));
    }
    Ok(())
}

/// Tags of a version: names to values, sorted by name.
pub type Tags = BTreeMap<String, String>;

/// Longest tag name, in bytes.
pub const MAX_TAG_NAME_BYTES: usize = 128;
/// Longest tag value, in bytes.
pub const MAX_TAG_VALUE_BYTES: usize = 256;
/// Most tags on one version.
pub const MAX_TAGS: usize = 50;
/// Longest comment, in bytes.
pub const MAX_COMMENT_BYTES: usize = 4096;

/// Check a tag name: 1-128 ASCII letters, digits or `-_.:/@`.
pub fn validate_tag_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TAG_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "invalid tag name {:?}: use 1-{MAX_TAG_NAME_BYTES} ASCII letters, digits or '-_.:/@'",
            printable(name)
        )))
    }
}

/// Check tags against the name, size and character rules.
pub fn validate_tags(tags: &Tags) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid_input(format!(
            "{} tags given; a version holds at most {MAX_TAGS}",
            tags.len()
        )));
    }
    for (name, value) in tags {
        validate_tag(name, value)?;
    }
    Ok(())
}

/// Check one tag: its name (see [`validate_tag_name`]) and its value's length and characters.
pub fn validate_tag(name: &str, value: &str) -> Result<()> {
    validate_tag_name(name)?;
    if value.len() > MAX_TAG_VALUE_BYTES || value.chars().any(char::is_control) {
        return Err(Error::invalid_input(format!(
            "invalid value for tag {name:?}: at most {MAX_TAG_VALUE_BYTES} bytes, no control characters"
        )));
    }
    Ok(())
}

/// Check a comment: not blank, at most 4 KiB, no control characters but newlines and tabs.
pub fn validate_comment(text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::invalid_input("a comment cannot be empty"));
    }
    if text.len() > MAX_COMMENT_BYTES {
        return Err(Error::invalid_input(format!(
            "comment is {} bytes; the limit is {MAX_COMMENT_BYTES}",
            text.len()
        )));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid_input("a comment cannot contain control characters"));
    }
    Ok(())
}

/// Check a content type: printable ASCII, `type/subtype` with optional parameters.
pub fn validate_content_type(content_type: &str) -> Result<()> {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let well_formed = content_type.len() <= MAX_CONTENT_TYPE_BYTES
        && content_type.bytes().all(|b| (0x20..0x7f).contains(&b))
        && matches!(essence.split_once('/'), Some((t, s)) if !t.is_empty() && !s.is_empty());
    if well_formed {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "invalid content type {:?}: expected type/subtype, for example application/pdf",
            printable(content_type)
        )))
    }
}

/// Text safe to put in a one-line message: control characters escaped, long text cut.
pub(crate) fn printable(s: &str) -> String {
    const SHOWN: usize = 80;
    let mut out: String = s.chars().take(SHOWN).flat_map(char::escape_debug).collect();
    if s.chars().count() > SHOWN {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_keys() {
        for key in [
            "a",
            "invoices/2024/inv_001.pdf",
            "dir/with space/ü.txt",
            "a/.hidden",
            "x..y",
        ] {
            assert!(ObjectKey::new(key).is_ok(), "{key}");
        }
        assert!(ObjectKey::new("k".repeat(MAX_KEY_BYTES)).is_ok());
    }

    #[test]
    fn rejects_hostile_keys() {
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        for key in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "nul\0",
            "tab\there",
            "cr\r",
            long.as_str(),
        ] {
            let err = ObjectKey::new(key).expect_err(key);
            assert_eq!(err.kind(), ErrorKind::InvalidKey, "{key}");
            assert!(!err.message().contains('\n'));
        }
    }

    #[test]
    fn metadata_limits() {
        let mut m = Metadata::new();
        m.insert("department".into(), "finance".into());
        assert!(validate_metadata(&m).is_ok());
        m.insert("big".into(), "v".repeat(MAX_METADATA_VALUE_BYTES + 1));
        assert!(validate_metadata(&m).is_err());
        let many: Metadata = (0..10).map(|i| (format!("k{i}"), "v".repeat(1000))).collect();
        assert!(validate_metadata(&many).is_err());
        let bad_name: Metadata = [("bad name".to_string(), "v".to_string())].into();
        assert!(validate_metadata(&bad_name).is_err());
    }

    #[test]
    fn content_types() {
        assert!(validate_content_type("application/pdf").is_ok());
        assert!(validate_content_type("text/plain; charset=utf-8").is_ok());
        assert!(validate_content_type("pdf").is_err());
        assert!(validate_content_type("text/plain\n").is_err());
    }
}
