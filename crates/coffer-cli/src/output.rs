//! Formatting: tables for people, JSON for scripts, one-line errors, exit codes.

use std::io::Write;

use coffer::{ErrorKind, ObjectVersion};

/// Exit code of anything without a kind of its own.
pub const EXIT_OTHER: u8 = 1;

/// Documented in `--help` and the README; never renumber.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  other error
  2  usage error (bad flags or arguments)
  3  not found (key or version)
  4  invalid key
  5  invalid input (metadata, range, version id, config ...)
  6  conflict (a conditional write's precondition failed)
  7  integrity mismatch (stored bytes do not match their hash)
  8  backend unavailable
  9  catalog error
 10  I/O error reading input or writing output
 11  unsupported by this backend or build
 12  a hook could not deliver (hooks test)
 13  no store there (a read found no store; run `coffer init`, or pass --data-dir)
 14  archived: the content is in an archive storage class (GLACIER, Azure Archive); restore it first (coffer restore KEY --version ID)
 15  unauthorized: the store refused the credentials (missing or wrong keys, wrong region, no permission)
 16  retention locked: a retention or legal hold forbids the change
 17  key unavailable: the store's encryption key is missing, wrong or unreachable
 18  forbidden: the token's scope or prefix does not allow this";

/// Exit code when standard output was closed early, as a shell reports a
/// command that a pipe's SIGPIPE ended (128 + 13): `ls | head` ends so.
const EXIT_CLOSED_STDOUT: i32 = 141;

/// Write to standard output (what `print!` and `println!` do in this crate).
pub fn write_stdout(text: std::fmt::Arguments<'_>) {
    if let Err(err) = std::io::stdout().lock().write_fmt(text) {
        let err = stdout_failed(err);
        eprintln!("coffer: {err}");
        std::process::exit(i32::from(exit_code(err.kind())));
    }
}

/// The error of a failed write to standard output. A reader that went away
/// (`| head`) is no error: the command ends at once, quietly.
pub fn stdout_failed(err: std::io::Error) -> coffer::Error {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(EXIT_CLOSED_STDOUT);
    }
    coffer::Error::new(ErrorKind::Io, format!("writing to standard output: {err}"))
}

/// The exit code for an error kind.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::NotFound => 3,
        ErrorKind::InvalidKey => 4,
        ErrorKind::InvalidInput => 5,
        ErrorKind::Conflict => 6,
        ErrorKind::IntegrityMismatch => 7,
        ErrorKind::BackendUnavailable => 8,
        ErrorKind::Catalog => 9,
        ErrorKind::Io => 10,
        ErrorKind::Unsupported => 11,
        ErrorKind::Delivery => 12,
        ErrorKind::NoStore => 13,
        ErrorKind::Archived => 14,
        ErrorKind::Unauthorized => 15,
        ErrorKind::RetentionLocked => 16,
        ErrorKind::KeyUnavailable => 17,
        ErrorKind::Forbidden => 18,
        _ => EXIT_OTHER,
    }
}

/// Print what caused `error`, each cause on lines of its own (`-v`): the
/// one-line message leaves out the storage library's details.
pub fn print_causes(error: Option<&coffer::Error>) {
    let mut cause = error.and_then(std::error::Error::source);
    while let Some(error) = cause {
        eprintln!("  caused by: {}", hide_signatures(&error.to_string()));
        cause = error.source();
    }
}

/// `text` with the values of signing query parameters (an Azure SAS's
/// `sig`, S3's `X-Amz-Signature` ...) replaced by `***`: request URLs in
/// the storage library's details may carry them.
fn hide_signatures(text: &str) -> String {
    const SECRET_PARAMS: [&str; 4] = ["sig=", "X-Amz-Signature=", "X-Amz-Credential=", "X-Amz-Security-Token="];
    let mut shown = text.to_owned();
    for param in SECRET_PARAMS {
        let mut from = 0;
        while let Some(at) = shown[from..].find(param) {
            let start = from + at + param.len();
            let end = shown[start..]
                .find(['&', '"', ',', ' ', '}'])
                .map_or(shown.len(), |n| start + n);
            shown.replace_range(start..end, "***");
            from = start + 3;
        }
    }
    shown
}

/// Print `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Print rows as columns aligned under a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Print `label: value` lines aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
    for (label, value) in fields {
        println!("{:<width$} {value}", format!("{label}:"));
    }
}

/// A backend's capabilities on one line, as `info` and `health` show them.
pub fn capabilities_line(caps: &coffer::backend::Capabilities) -> String {
    format!(
        "rename={} persistent={} presign={}",
        caps.rename, caps.persistent, caps.presign
    )
}

/// `ok`, or why the backend did not serve: `unreachable: ...` only for an
/// outage; a refusal or a missing bucket is its own message.
pub fn backend_status(error: Option<&str>, kind: Option<ErrorKind>) -> String {
    match (error, kind) {
        (None, _) => "ok".to_owned(),
        (Some(error), None | Some(ErrorKind::BackendUnavailable)) => format!("unreachable: {error}"),
        (Some(error), Some(_)) => error.to_owned(),
    }
}

/// A count and its noun, plural unless the count is one: `1 blob`,
/// `2 blobs`, `0 deliveries`, `3 matches`. `noun` is the singular; the last
/// word of a noun of several (`delete marker`) takes the plural.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let consonant_y = noun
        .strip_suffix('y')
        .is_some_and(|stem| stem.ends_with(|c: char| !"aeiou".contains(c)));
    if consonant_y {
        format!("{n} {}ies", &noun[..noun.len() - 1])
    } else if ["s", "x", "ch", "sh"].iter().any(|end| noun.ends_with(end)) {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}

/// A search score to three significant digits: `1.38`, `0.0523`, and
/// `1.02e-6` for the tiny scores SQLite's BM25 gives words that most
/// versions hold (which a fixed `0.000` would hide).
pub fn score(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    if magnitude < -3 {
        format!("{value:.2e}")
    } else {
        let decimals = (2 - magnitude).max(0) as usize;
        format!("{value:.decimals$}")
    }
}

/// Bytes in a human unit: 1.5 KiB, 3.2 GiB.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The fields `metadata` shows of a version.
pub fn version_fields(v: &ObjectVersion) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("key", v.key.to_string()),
        ("version_id", v.version_id.to_string()),
        ("is_latest", v.is_latest.to_string()),
        ("size", format!("{} ({})", v.size, human_size(v.size))),
        ("etag", v.etag.clone().unwrap_or_default()),
        ("sha256", v.sha256.clone().unwrap_or_default()),
        ("content_type", v.content_type.clone().unwrap_or_default()),
        ("created_at", v.created_at.to_string()),
        ("created_by", v.created_by.clone()),
    ];
    for (name, value) in &v.metadata {
        fields.push(("metadata", format!("{name}={value}")));
    }
    for (name, value) in &v.tags {
        fields.push(("tag", format!("{name}={value}")));
    }
    for c in &v.comments {
        fields.push(("comment", format!("{} {}: {}", c.at, c.actor, c.text)));
    }
    if let Some(problem) = &v.damaged {
        fields.push(("damaged", problem.clone()));
    }
    if let Some(retention) = &v.retention {
        fields.push(("retention", format!("{} until {}", retention.mode, retention.until)));
    }
    if v.legal_hold {
        fields.push(("legal_hold", "on".to_owned()));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::{count, score};

    #[test]
    fn scores_keep_three_significant_digits() {
        assert_eq!(score(1.379928), "1.38");
        assert_eq!(score(0.0523), "0.0523");
        assert_eq!(score(0.000001), "1.00e-6");
        assert_eq!(score(0.0000012345), "1.23e-6");
        assert_eq!(score(123.4), "123");
        assert_eq!(score(0.0), "0");
    }

    #[test]
    fn counts_are_singular_only_for_one() {
        assert_eq!(count(1, "delete marker"), "1 delete marker");
        assert_eq!(count(0, "delete marker"), "0 delete markers");
        assert_eq!(count(2, "blob"), "2 blobs");
        assert_eq!(count(1, "delivery"), "1 delivery");
        assert_eq!(count(3, "delivery"), "3 deliveries");
        assert_eq!(count(2, "key"), "2 keys");
        assert_eq!(count(2, "match"), "2 matches");
    }

    #[test]
    fn signatures_in_details_are_hidden() {
        assert_eq!(
            super::hide_signatures("uri: https://a/b?sv=2022&sig=abc%2F&se=1, source: x X-Amz-Signature=ff"),
            "uri: https://a/b?sv=2022&sig=***&se=1, source: x X-Amz-Signature=***"
        );
    }
}
