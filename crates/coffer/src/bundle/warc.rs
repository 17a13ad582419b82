//! Writing a bundle of fetched web resources as a WARC 1.1 file
//! (ISO 28500:2017), the format web-archiving tools (warcio, pywb,
//! OpenWayback, the Internet Archive's tools) read.
//!
//! The output follows the `.warc.gz` convention: every record is its own
//! gzip member, so a reader can seek to any record's offset and decompress
//! it alone. A file is a `warcinfo` record (who wrote it, and fields such as
//! the bundle id) followed by `response` records, each holding an HTTP/1.1
//! response head and the resource's bytes.
//!
//! Payloads are streamed: the caller declares a response's length and
//! SHA-256 up front ([`WarcResponse`]), then hands over the bytes in chunks.
//! Nothing holds a whole payload; the compressed bytes go to the output as
//! they come. The declared length and digest are checked as the bytes pass:
//! a payload that does not match what its record header already says is an
//! error, never a silently wrong record.
//!
//! `WARC-Payload-Digest` is written for every response (`sha256:` and the
//! RFC 4648 base32 of the digest, padding included: warcio compares with
//! Python's padded `base64.b32encode` and reads an unpadded 52-character
//! value as base64). `WARC-Block-Digest` is written for `warcinfo` records,
//! whose block is built in memory, but not for responses: it covers the HTTP
//! head and the payload together, its header comes before the payload, and
//! it cannot be derived from the payload's digest, so it would need the
//! payload held or read twice.
//!
//! After any error other than a refused argument (a bad URI, field, status
//! or content type, refused before anything is written), the output holds an
//! incomplete record and the writer refuses further use: discard the output.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// The `software` field of the `warcinfo` records this module writes.
const SOFTWARE: &str = concat!("coffer/", env!("CARGO_PKG_VERSION"));

/// The `format` field of `warcinfo` records, as the WARC 1.1 annex gives it.
const FORMAT: &str = "WARC File Format 1.1";

/// The `conformsTo` field of `warcinfo` records: the WARC 1.1 specification.
const CONFORMS_TO: &str = "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/";

/// How much payload is compressed at a time before its compressed bytes are
/// handed to the output, so a large chunk never builds a large buffer.
const SLICE: usize = 64 * 1024;

/// A WARC file being written: one gzip member per record (the `.warc.gz` convention).
pub(crate) struct WarcWriter<W: Write> {
    /// Where the gzip members go.
    out: W,
    /// Whether a record is open, and the writer still usable.
    state: State,
    /// The `WARC-Record-ID` of the last `warcinfo` record, which later
    /// records name in `WARC-Warcinfo-ID`.
    warcinfo_id: Option<String>,
}

/// Where a [`WarcWriter`] is between calls.
enum State {
    /// Between records: a new one may start, or the file may finish.
    Idle,
    /// A `response` record is open and takes payload.
    Payload(Box<OpenRecord>),
    /// An error left an incomplete record in the output.
    Broken,
}

/// A `response` record whose payload is being written.
struct OpenRecord {
    /// The record's gzip member, compressing into a buffer that is emptied
    /// into the output after every write.
    gz: GzEncoder<Vec<u8>>,
    /// The payload length the headers declare.
    declared: u64,
    /// Payload bytes written so far.
    written: u64,
    /// SHA-256 of the payload bytes written so far.
    hasher: Sha256,
    /// The payload SHA-256 the headers declare.
    expected: [u8; 32],
}

/// What a `response` record says about the resource it holds.
pub(crate) struct WarcResponse<'a> {
    /// The resource's `http:` or `https:` URI (`WARC-Target-URI`).
    pub(crate) target_uri: &'a str,
    /// When the resource was fetched, in microseconds since the Unix epoch
    /// (`WARC-Date`, to the second).
    pub(crate) date_micros: i64,
    /// The HTTP status, 200 to 599.
    pub(crate) status: u16,
    /// The HTTP `Content-Type`, if known.
    pub(crate) content_type: Option<&'a str>,
    /// The payload's length in bytes.
    pub(crate) payload_length: u64,
    /// The payload's SHA-256, known before the payload is written.
    pub(crate) payload_sha256: [u8; 32],
}

impl<W: Write> WarcWriter<W> {
    /// A writer that puts records into `out`, which it does not buffer:
    /// wrap a file in a `BufWriter`.
    pub(crate) fn new(out: W) -> Self {
        WarcWriter {
            out,
            state: State::Idle,
            warcinfo_id: None,
        }
    }

    /// A `warcinfo` record (software, format, and the given fields as `name: value` lines, e.g. bundle id).
    ///
    /// Field names must be HTTP tokens and values must hold no control
    /// characters; a refused field leaves the writer as it was.
    pub(crate) fn warcinfo(&mut self, date_micros: i64, fields: &[(&str, &str)]) -> Result<()> {
        self.check_idle()?;
        let date = warc_date(date_micros)?;
        let mut block = String::new();
        push_field(&mut block, "software", SOFTWARE);
        push_field(&mut block, "format", FORMAT);
        push_field(&mut block, "conformsTo", CONFORMS_TO);
        for (name, value) in fields {
            check_token("warcinfo field name", name)?;
            check_no_controls("warcinfo field value", value)?;
            push_field(&mut block, name, value);
        }
        let id = record_id();
        let mut head = String::from("WARC/1.1\r\n");
        push_field(&mut head, "WARC-Type", "warcinfo");
        push_field(&mut head, "WARC-Record-ID", &id);
        push_field(&mut head, "WARC-Date", &date);
        push_field(
            &mut head,
            "WARC-Block-Digest",
            &sha256_label(&Sha256::digest(block.as_bytes()).into()),
        );
        push_field(&mut head, "Content-Type", "application/warc-fields");
        push_field(&mut head, "Content-Length", &block.len().to_string());
        head.push_str("\r\n");

        // A failed write below may leave part of a member in the output.
        self.state = State::Broken;
        let mut gz = new_member();
        compress(&mut gz, &mut self.out, head.as_bytes())?;
        compress(&mut gz, &mut self.out, block.as_bytes())?;
        end_member(gz, &mut self.out)?;
        self.state = State::Idle;
        self.warcinfo_id = Some(id);
        Ok(())
    }

    /// Start a `response` record; the caller then calls `write_payload` with exactly `payload_length` bytes in total, then `end_record`.
    ///
    /// Refuses (leaving the writer as it was) a target URI that is not an
    /// `http:` or `https:` URI or holds whitespace or control characters, a
    /// status outside 200..=599, a content type with control or non-ASCII
    /// characters, and a payload for a status that has none (204, 304).
    pub(crate) fn begin_response(&mut self, response: &WarcResponse<'_>) -> Result<()> {
        self.check_idle()?;
        check_target_uri(response.target_uri)?;
        let date = warc_date(response.date_micros)?;
        let http_head = http_head(response.status, response.content_type, response.payload_length)?;
        let length = u64::try_from(http_head.len())
            .ok()
            .and_then(|n| n.checked_add(response.payload_length))
            .ok_or_else(|| Error::invalid_input("WARC response: the payload length is too large"))?;

        let mut head = String::from("WARC/1.1\r\n");
        push_field(&mut head, "WARC-Type", "response");
        push_field(&mut head, "WARC-Record-ID", &record_id());
        push_field(&mut head, "WARC-Date", &date);
        if let Some(id) = &self.warcinfo_id {
            push_field(&mut head, "WARC-Warcinfo-ID", id);
        }
        push_field(&mut head, "WARC-Target-URI", response.target_uri);
        push_field(
            &mut head,
            "WARC-Payload-Digest",
            &sha256_label(&response.payload_sha256),
        );
        push_field(&mut head, "Content-Type", "application/http; msgtype=response");
        push_field(&mut head, "Content-Length", &length.to_string());
        head.push_str("\r\n");
        head.push_str(&http_head);

        self.state = State::Broken;
        let mut record = Box::new(OpenRecord {
            gz: new_member(),
            declared: response.payload_length,
            written: 0,
            hasher: Sha256::new(),
            expected: response.payload_sha256,
        });
        compress(&mut record.gz, &mut self.out, head.as_bytes())?;
        self.state = State::Payload(record);
        Ok(())
    }

    /// Add the next `chunk` of the open response's payload.
    ///
    /// A chunk that would take the payload past its declared length is
    /// refused, none of it written, and the record cannot be completed.
    pub(crate) fn write_payload(&mut self, chunk: &[u8]) -> Result<()> {
        let record = match &mut self.state {
            State::Payload(record) => record,
            State::Idle => return Err(Error::invalid_input("WARC writer: no response record is open")),
            State::Broken => return Err(broken()),
        };
        let total = u64::try_from(chunk.len())
            .ok()
            .and_then(|n| record.written.checked_add(n))
            .filter(|total| *total <= record.declared);
        let Some(total) = total else {
            let declared = record.declared;
            self.state = State::Broken;
            return Err(Error::invalid_input(format!(
                "WARC response: more payload than the {declared} bytes declared"
            )));
        };
        record.hasher.update(chunk);
        record.written = total;
        if let Err(e) = compress(&mut record.gz, &mut self.out, chunk) {
            self.state = State::Broken;
            return Err(e);
        }
        Ok(())
    }

    /// Close the open response record, once all its payload is written.
    ///
    /// Errors if fewer or more payload bytes were written than declared, or
    /// if their SHA-256 is not the declared one.
    pub(crate) fn end_record(&mut self) -> Result<()> {
        match self.state {
            State::Payload(_) => {}
            State::Idle => return Err(Error::invalid_input("WARC writer: no response record is open")),
            State::Broken => return Err(broken()),
        }
        let State::Payload(record) = std::mem::replace(&mut self.state, State::Broken) else {
            return Err(broken());
        };
        let OpenRecord {
            gz,
            declared,
            written,
            hasher,
            expected,
        } = *record;
        if written != declared {
            return Err(Error::invalid_input(format!(
                "WARC response: {written} payload bytes written, {declared} declared"
            )));
        }
        if <[u8; 32]>::from(hasher.finalize()) != expected {
            return Err(Error::new(
                ErrorKind::IntegrityMismatch,
                "WARC response: the payload's SHA-256 is not the one declared",
            ));
        }
        end_member(gz, &mut self.out)?;
        self.state = State::Idle;
        Ok(())
    }

    /// Flush the output and hand it back; errors if a record is still open
    /// or an earlier error left one incomplete.
    pub(crate) fn finish(mut self) -> Result<W> {
        match self.state {
            State::Idle => {}
            State::Payload(_) => return Err(Error::invalid_input("WARC writer: a response record is still open")),
            State::Broken => return Err(broken()),
        }
        self.out.flush().map_err(|e| Error::io("writing the WARC output", e))?;
        Ok(self.out)
    }

    /// Errors unless the writer is between records.
    fn check_idle(&self) -> Result<()> {
        match self.state {
            State::Idle => Ok(()),
            State::Payload(_) => Err(Error::invalid_input("WARC writer: a response record is still open")),
            State::Broken => Err(broken()),
        }
    }
}

/// The error for any use of a writer that an earlier error left broken.
fn broken() -> Error {
    Error::invalid_input("WARC writer: an earlier error left a record incomplete; the output is unusable")
}

/// A new gzip member that compresses into memory.
fn new_member() -> GzEncoder<Vec<u8>> {
    GzEncoder::new(Vec::new(), Compression::default())
}

/// Compress `bytes` into `gz`, a slice at a time, moving the compressed
/// bytes to `out` as they appear.
fn compress<W: Write>(gz: &mut GzEncoder<Vec<u8>>, out: &mut W, bytes: &[u8]) -> Result<()> {
    for slice in bytes.chunks(SLICE) {
        gz.write_all(slice)
            .map_err(|e| Error::io("compressing a WARC record", e))?;
        let buffer = gz.get_mut();
        if !buffer.is_empty() {
            out.write_all(buffer)
                .map_err(|e| Error::io("writing the WARC output", e))?;
            buffer.clear();
        }
    }
    Ok(())
}

/// End a record: its closing blank lines, then the rest of its gzip member to `out`.
fn end_member<W: Write>(mut gz: GzEncoder<Vec<u8>>, out: &mut W) -> Result<()> {
    gz.write_all(b"\r\n\r\n")
        .map_err(|e| Error::io("compressing a WARC record", e))?;
    let rest = gz.finish().map_err(|e| Error::io("compressing a WARC record", e))?;
    out.write_all(&rest)
        .map_err(|e| Error::io("writing the WARC output", e))
}

/// A fresh `WARC-Record-ID`: a UUID URN in angle brackets.
fn record_id() -> String {
    format!("<urn:uuid:{}>", uuid::Uuid::now_v7())
}

/// Append a `name: value` line (WARC header or `warc-fields` line).
fn push_field(buf: &mut String, name: &str, value: &str) {
    buf.push_str(name);
    buf.push_str(": ");
    buf.push_str(value);
    buf.push_str("\r\n");
}

/// The HTTP/1.1 response head of a response record: status line,
/// `Content-Type` and `Content-Length`, and the blank line.
fn http_head(status: u16, content_type: Option<&str>, payload_length: u64) -> Result<String> {
    if !(200..=599).contains(&status) {
        return Err(Error::invalid_input(format!(
            "WARC response: HTTP status {status} is not a final response status (200 to 599)"
        )));
    }
    // RFC 9110 §6.4.1 and §8.6: a 204 or 304 has no content, and a 204 has
    // no Content-Length (a 304's would describe a 200's, not its own).
    let bodiless = status == 204 || status == 304;
    if bodiless && payload_length != 0 {
        return Err(Error::invalid_input(format!(
            "WARC response: an HTTP {status} response has no payload"
        )));
    }
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    if let Some(content_type) = content_type {
        if content_type.trim().is_empty() {
            return Err(Error::invalid_input("WARC response: the content type is empty"));
        }
        if !content_type.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(Error::invalid_input(
                "WARC response: the content type holds a control or non-ASCII character",
            ));
        }
        push_field(&mut head, "Content-Type", content_type);
    }
    if !bodiless {
        push_field(&mut head, "Content-Length", &payload_length.to_string());
    }
    head.push_str("\r\n");
    Ok(head)
}

/// The reason phrase RFC 9110 (and the IANA registry) gives `status`, or
/// an empty one (which HTTP/1.1 allows) for an unregistered status.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// Refuse a target URI that is not an `http:`/`https:` URI, or that holds
/// whitespace or control characters (which could end the header line).
///
/// Readers such as warcio parse a response record's HTTP head only for
/// these two schemes; for any other, they would take the head for payload.
fn check_target_uri(uri: &str) -> Result<()> {
    if let Some(c) = uri.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid_input(format!(
            "WARC response: the target URI holds the character {c:?}"
        )));
    }
    let host_and_rest = uri.strip_prefix("http://").or_else(|| uri.strip_prefix("https://"));
    match host_and_rest {
        Some(rest) if !rest.is_empty() => Ok(()),
        _ => Err(Error::invalid_input(
            "WARC response: the target URI is not an http:// or https:// URI",
        )),
    }
}

/// Refuse a name that is not an HTTP token (RFC 9110 §5.6.2), so it can be
/// neither empty nor hold a colon, whitespace or a control character.
fn check_token(what: &str, name: &str) -> Result<()> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(tchar) {
        return Err(Error::invalid_input(format!("{what} {name:?} is not a token")));
    }
    Ok(())
}

/// Refuse a value that holds a control character (CR, LF, tab, NUL ...).
fn check_no_controls(what: &str, value: &str) -> Result<()> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(Error::invalid_input(format!(
            "{what} holds the control character {c:?}"
        ))),
        None => Ok(()),
    }
}

/// A digest header value: `sha256:` and the padded RFC 4648 base32 of `digest`.
fn sha256_label(digest: &[u8; 32]) -> String {
    format!("sha256:{}", base32(digest))
}

/// RFC 4648 base32 (upper-case alphabet, `=` padding to a multiple of 8).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut text = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for group in bytes.chunks(5) {
        let mut padded = [0u8; 5];
        padded[..group.len()].copy_from_slice(group);
        let bits = padded.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        // Characters carrying data for 1..=5 input bytes: ceil(8n / 5).
        let used = (group.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < used {
                let index = (bits >> (35 - 5 * i)) & 0x1f;
                text.push(char::from(ALPHABET[index as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// `micros` since the Unix epoch as a `WARC-Date`: RFC 3339 UTC to the
/// second (`2024-01-15T10:30:00Z`), the fraction dropped. Years outside
/// 0000..=9999 have no such form and are refused.
fn warc_date(micros: i64) -> Result<String> {
    let seconds = micros.div_euclid(1_000_000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = crate::time::civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err(Error::invalid_input(format!(
            "WARC date: {micros} µs since the epoch falls in year {year}, outside 0000 to 9999"
        )));
    }
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::bufread::GzDecoder;
    use flate2::read::MultiGzDecoder;
    use std::cell::RefCell;
    use std::io::Read;
    use std::rc::Rc;

    /// 2024-01-15T10:30:00Z in microseconds.
    const JAN_15: i64 = 1_705_314_600_000_000;

    /// The SHA-256 of `bytes`.
    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    /// A response for `uri` with `payload`'s true length and digest.
    fn response<'a>(uri: &'a str, status: u16, content_type: Option<&'a str>, payload: &[u8]) -> WarcResponse<'a> {
        WarcResponse {
            target_uri: uri,
            date_micros: JAN_15,
            status,
            content_type,
            payload_length: payload.len() as u64,
            payload_sha256: sha(payload),
        }
    }

    /// Write a whole response record, the payload in chunks of `chunk` bytes.
    fn put(w: &mut WarcWriter<Vec<u8>>, r: &WarcResponse<'_>, payload: &[u8], chunk: usize) {
        w.begin_response(r).unwrap();
        for piece in payload.chunks(chunk) {
            w.write_payload(piece).unwrap();
        }
        w.end_record().unwrap();
    }

    /// All gzip members of `gz`, each decompressed alone.
    fn members(gz: &[u8]) -> Vec<String> {
        let mut rest = gz;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let mut decoder = GzDecoder::new(rest);
            let mut text = String::new();
            decoder.read_to_string(&mut text).unwrap();
            rest = decoder.into_inner();
            out.push(text);
        }
        out
    }

    /// Replace every record id by `<ID>` after checking it is a UUID v7 URN,
    /// and return the ids found, in order.
    fn mask_ids(text: &str) -> (String, Vec<String>) {
        let mut masked = String::new();
        let mut ids = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("<urn:uuid:") {
            masked.push_str(&rest[..at]);
            let id = &rest[at + 10..at + 46];
            assert_eq!(&rest[at + 46..at + 47], ">");
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
            ids.push(id.to_string());
            masked.push_str("<ID>");
            rest = &rest[at + 47..];
        }
        masked.push_str(rest);
        (masked, ids)
    }

    /// The payloads of the sample file.
    const HTML: &[u8] = b"<!doctype html>\n<title>Hello</title>\n<p>Hi.</p>\n";
    /// A JSON payload.
    const JSON: &[u8] = b"{\"name\":\"coffer\",\"ok\":true}\n";
    /// The 404 page.
    const NOT_FOUND: &[u8] = b"<!doctype html>\n<title>Not Found</title>\n";

    /// A warcinfo and four responses: HTML, JSON, an empty body, a 404.
    fn sample() -> Vec<u8> {
        let mut w = WarcWriter::new(Vec::new());
        w.warcinfo(
            JAN_15,
            &[("bundle-id", "b-0001"), ("operator", "Zoë <ops@example.org>")],
        )
        .unwrap();
        put(
            &mut w,
            &response("https://example.org/", 200, Some("text/html; charset=utf-8"), HTML),
            HTML,
            7,
        );
        put(
            &mut w,
            &response(
                "https://example.org/api/v1?q=a&b=c",
                200,
                Some("application/json"),
                JSON,
            ),
            JSON,
            1024,
        );
        put(
            &mut w,
            &response("http://example.org/empty", 200, Some("text/plain"), b""),
            b"",
            1,
        );
        put(
            &mut w,
            &response("https://example.org/missing", 404, Some("text/html"), NOT_FOUND),
            NOT_FOUND,
            5,
        );
        w.finish().unwrap()
    }

    /// The sample decompresses, as one stream, into exactly the expected records.
    #[test]
    fn sample_file_decompresses_to_the_expected_text() {
        let gz = sample();
        let mut text = String::new();
        MultiGzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
        let (masked, ids) = mask_ids(&text);
        let info = format!(
            "software: coffer/{}\r\nformat: WARC File Format 1.1\r\nconformsTo: {CONFORMS_TO}\r\n\
             bundle-id: b-0001\r\noperator: Zoë <ops@example.org>\r\n",
            env!("CARGO_PKG_VERSION")
        );
        let info_digest = sha256_label(&sha(info.as_bytes()));
        let expected = format!(
            "WARC/1.1\r\n\
             WARC-Type: warcinfo\r\n\
             WARC-Record-ID: <ID>\r\n\
             WARC-Date: 2024-01-15T10:30:00Z\r\n\
             WARC-Block-Digest: {info_digest}\r\n\
             Content-Type: application/warc-fields\r\n\
             Content-Length: {}\r\n\
             \r\n\
             {info}\r\n\r\n\
             WARC/1.1\r\n\
             WARC-Type: response\r\n\
             WARC-Record-ID: <ID>\r\n\
             WARC-Date: 2024-01-15T10:30:00Z\r\n\
             WARC-Warcinfo-ID: <ID>\r\n\
             WARC-Target-URI: https://example.org/\r\n\
             WARC-Payload-Digest: sha256:EI2KGQAJOY5NL6WCKTQ6TXF7JBKMEF2T4IOJV2VIOVLRRV62KW3A====\r\n\
             Content-Type: application/http; msgtype=response\r\n\
             Content-Length: 127\r\n\
             \r\n\
             HTTP/1.1 200 OK\r\n\
             Content-Type: text/html; charset=utf-8\r\n\
             Content-Length: 48\r\n\
             \r\n\
             <!doctype html>\n<title>Hello</title>\n<p>Hi.</p>\n\r\n\r\n\
             WARC/1.1\r\n\
             WARC-Type: response\r\n\
             WARC-Record-ID: <ID>\r\n\
             WARC-Date: 2024-01-15T10:30:00Z\r\n\
             WARC-Warcinfo-ID: <ID>\r\n\
             WARC-Target-URI: https://example.org/api/v1?q=a&b=c\r\n\
             WARC-Payload-Digest: sha256:C3YJMYZ3IBVIKJT2FQZS2URW7O3ATFLOONNZUENTXFSJRO3GOF6Q====\r\n\
             Content-Type: application/http; msgtype=response\r\n\
             Content-Length: 99\r\n\
             \r\n\
             HTTP/1.1 200 OK\r\n\
             Content-Type: application/json\r\n\
             Content-Length: 28\r\n\
             \r\n\
             {{\"name\":\"coffer\",\"ok\":true}}\n\r\n\r\n\
             WARC/1.1\r\n\
             WARC-Type: response\r\n\
             WARC-Record-ID: <ID>\r\n\
             WARC-Date: 2024-01-15T10:30:00Z\r\n\
             WARC-Warcinfo-ID: <ID>\r\n\
             WARC-Target-URI: http://example.org/empty\r\n\
             WARC-Payload-Digest: sha256:4OYMIQUY7QOBJGX36TEJS35ZEQT24QPEMSNZGTFESWMRW6CSXBKQ====\r\n\
             Content-Type: application/http; msgtype=response\r\n\
             Content-Length: 64\r\n\
             \r\n\
             HTTP/1.1 200 OK\r\n\
             Content-Type: text/plain\r\n\
             Content-Length: 0\r\n\
             \r\n\
             \r\n\r\n\
             WARC/1.1\r\n\
             WARC-Type: response\r\n\
             WARC-Record-ID: <ID>\r\n\
             WARC-Date: 2024-01-15T10:30:00Z\r\n\
             WARC-Warcinfo-ID: <ID>\r\n\
             WARC-Target-URI: https://example.org/missing\r\n\
             WARC-Payload-Digest: sha256:FIFNXNDJUVW4HAKFMXSHS3NRIW4GKDGKO74P5UXPI26MVBYF5RRQ====\r\n\
             Content-Type: application/http; msgtype=response\r\n\
             Content-Length: 112\r\n\
             \r\n\
             HTTP/1.1 404 Not Found\r\n\
             Content-Type: text/html\r\n\
             Content-Length: 41\r\n\
             \r\n\
             <!doctype html>\n<title>Not Found</title>\n\r\n\r\n",
            info.len()
        );
        assert_eq!(masked, expected);
        // Every response names the warcinfo; all record ids differ.
        assert_eq!(ids.len(), 9);
        let records = [&ids[0], &ids[1], &ids[3], &ids[5], &ids[7]];
        for warcinfo_ref in [&ids[2], &ids[4], &ids[6], &ids[8]] {
            assert_eq!(warcinfo_ref, &ids[0]);
        }
        let unique: std::collections::HashSet<_> = records.iter().collect();
        assert_eq!(unique.len(), 5);
    }

    /// Each record is its own gzip member, which decompresses alone.
    #[test]
    fn each_record_is_its_own_gzip_member() {
        let members = members(&sample());
        assert_eq!(members.len(), 5);
        assert!(members[0].contains("WARC-Type: warcinfo\r\n"));
        for member in &members {
            assert!(member.starts_with("WARC/1.1\r\n"));
            assert!(member.ends_with("\r\n\r\n"));
        }
        assert!(members[4].contains("HTTP/1.1 404 Not Found\r\n"));
    }

    /// The record's Content-Length counts exactly the block: HTTP head and payload.
    #[test]
    fn content_length_counts_the_block() {
        for member in members(&sample()).iter().skip(1) {
            let (head, rest) = member.split_once("\r\n\r\n").unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(rest.len(), length + 4, "{member}");
        }
    }

    /// Fewer payload bytes than declared are refused at `end_record`.
    #[test]
    fn short_payload_is_refused() {
        let mut w = WarcWriter::new(Vec::new());
        w.begin_response(&response("https://example.org/", 200, None, HTML))
            .unwrap();
        w.write_payload(&HTML[..10]).unwrap();
        let err = w.end_record().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("10 payload bytes written, 48 declared"), "{err}");
        // The output holds an incomplete record: the writer stays refused.
        assert!(w.end_record().is_err());
        assert!(w.finish().is_err());
    }

    /// More payload bytes than declared are refused before any is written,
    /// and the record cannot be completed.
    #[test]
    fn long_payload_is_refused() {
        let mut w = WarcWriter::new(Vec::new());
        let mut r = response("https://example.org/", 200, None, HTML);
        r.payload_length = 47;
        w.begin_response(&r).unwrap();
        let err = w.write_payload(HTML).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("47 bytes declared"), "{err}");
        assert!(w.write_payload(b"x").is_err());
        assert!(w.end_record().is_err());
        assert!(w.finish().is_err());

        // Too much across chunks, too.
        let mut w = WarcWriter::new(Vec::new());
        w.begin_response(&response("https://example.org/", 200, None, b"abc"))
            .unwrap();
        w.write_payload(b"ab").unwrap();
        assert!(w.write_payload(b"cd").is_err());
        assert!(w.end_record().is_err());
    }

    /// A payload whose SHA-256 is not the declared one is refused.
    #[test]
    fn wrong_payload_digest_is_refused() {
        let mut w = WarcWriter::new(Vec::new());
        w.begin_response(&response("https://example.org/", 200, None, b"abc"))
            .unwrap();
        w.write_payload(b"abd").unwrap();
        assert_eq!(w.end_record().unwrap_err().kind(), ErrorKind::IntegrityMismatch);
        assert!(w.finish().is_err());
    }

    /// CR, LF and other controls or whitespace in a target URI are refused,
    /// as are non-HTTP URIs; the writer stays usable after a refusal.
    #[test]
    fn bad_target_uris_are_refused() {
        let mut w = WarcWriter::new(Vec::new());
        for uri in [
            "https://example.org/\r\nWARC-Type: revisit",
            "https://example.org/\nx",
            "https://example.org/\rx",
            "https://example.org/\0",
            "https://example.org/\u{85}",
            "https://example.org/a b",
            "https://example.org/\tb",
            "",
            "https://",
            "example.org/",
            "ftp://example.org/",
            "HTTP://example.org/",
        ] {
            let err = w.begin_response(&response(uri, 200, None, b"")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{uri:?}");
            assert!(!err.message().contains('\n') && !err.message().contains('\r'));
        }
        put(&mut w, &response("https://example.org/ok", 200, None, b"ok"), b"ok", 2);
        let text = members(&w.finish().unwrap()).concat();
        assert_eq!(text.matches("WARC/1.1\r\n").count(), 1);
        assert!(text.contains("WARC-Target-URI: https://example.org/ok\r\n"));
    }

    /// Header injection through warcinfo fields or the content type is refused.
    #[test]
    fn bad_fields_and_content_types_are_refused() {
        let mut w = WarcWriter::new(Vec::new());
        for (name, value) in [
            ("bundle-id", "x\r\nWARC-Type: response"),
            ("bundle-id", "x\ny"),
            ("bundle-id", "tab\there"),
            ("bundle id", "x"),
            ("bundle:id", "x"),
            ("", "x"),
            ("bündle", "x"),
            ("a\r\nb", "x"),
        ] {
            let err = w.warcinfo(JAN_15, &[("ok", "fine"), (name, value)]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name:?}: {value:?}");
        }
        for content_type in [
            "text/html\r\nX-Evil: 1",
            "text/html\n",
            "text/\u{7f}",
            "",
            "  ",
            "tëxt/html",
        ] {
            let r = response("https://example.org/", 200, Some(content_type), b"");
            assert_eq!(w.begin_response(&r).unwrap_err().kind(), ErrorKind::InvalidInput);
        }
        // Nothing was written by the refusals.
        assert!(w.finish().unwrap().is_empty());
    }

    /// Statuses: the standard reason phrase, an empty one for an unregistered
    /// code, no Content-Length and no payload for 204 and 304, and
    /// non-final or invalid codes refused.
    #[test]
    fn statuses() {
        assert_eq!(
            http_head(201, None, 3).unwrap(),
            "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\n"
        );
        assert_eq!(
            http_head(299, None, 0).unwrap(),
            "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(
            http_head(503, Some("text/plain"), 0).unwrap(),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(http_head(204, None, 0).unwrap(), "HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(http_head(304, None, 0).unwrap(), "HTTP/1.1 304 Not Modified\r\n\r\n");
        for (status, length) in [(204, 1), (304, 1), (0, 0), (100, 0), (199, 0), (600, 0), (u16::MAX, 0)] {
            assert_eq!(
                http_head(status, None, length).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{status}"
            );
        }
        // A declared length that would overflow the record's is refused.
        let mut w = WarcWriter::new(Vec::new());
        let mut r = response("https://example.org/", 200, None, b"");
        r.payload_length = u64::MAX - 10;
        assert_eq!(w.begin_response(&r).unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    /// Misuse of the call order is refused.
    #[test]
    fn call_order_is_enforced() {
        let mut w = WarcWriter::new(Vec::new());
        assert!(w.write_payload(b"x").is_err());
        assert!(w.end_record().is_err());
        w.begin_response(&response("https://example.org/", 200, None, b"x"))
            .unwrap();
        assert!(
            w.begin_response(&response("https://example.org/", 200, None, b"x"))
                .is_err()
        );
        assert!(w.warcinfo(JAN_15, &[]).is_err());
        w.write_payload(b"x").unwrap();
        w.end_record().unwrap();
        let mut w = WarcWriter::new(Vec::new());
        w.begin_response(&response("https://example.org/", 200, None, b""))
            .unwrap();
        assert!(w.finish().is_err());
    }

    /// `WARC-Date` of known instants, sub-second parts dropped.
    #[test]
    fn dates_of_known_instants() {
        for (micros, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (999_999, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (JAN_15, "2024-01-15T10:30:00Z"),
            (1_709_251_199_000_000, "2024-02-29T23:59:59Z"),
            (1_709_251_199_999_999, "2024-02-29T23:59:59Z"),
            (1_709_251_200_000_000, "2024-03-01T00:00:00Z"),
            (951_825_600_000_000, "2000-02-29T12:00:00Z"),
            (2_147_483_647_000_000, "2038-01-19T03:14:07Z"),
            (2_147_483_648_000_000, "2038-01-19T03:14:08Z"),
            (4_107_542_399_000_000, "2100-02-28T23:59:59Z"),
            (4_107_542_400_000_000, "2100-03-01T00:00:00Z"),
            (253_402_300_799_999_999, "9999-12-31T23:59:59Z"),
            (-62_167_219_200_000_000, "0000-01-01T00:00:00Z"),
        ] {
            assert_eq!(warc_date(micros).unwrap(), text, "{micros}");
        }
    }

    /// Instants outside years 0000..=9999 are refused, down to `i64`'s ends.
    #[test]
    fn dates_out_of_range_are_refused() {
        for micros in [253_402_300_800_000_000, -62_167_219_200_000_001, i64::MAX, i64::MIN] {
            assert_eq!(warc_date(micros).unwrap_err().kind(), ErrorKind::InvalidInput);
        }
        let mut w = WarcWriter::new(Vec::new());
        assert!(w.warcinfo(i64::MAX, &[]).is_err());
        assert!(w.finish().unwrap().is_empty());
    }

    /// Day-by-day agreement of `civil_from_days` with a plain calendar walk
    /// across four centuries either side of the epoch.
    #[test]
    fn civil_from_days_walks_the_calendar() {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_days = |y: i64, m: i64| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (mut y, mut m, mut d) = (1570, 1, 1);
        let start = -146_097; // 1570-01-01 is 400 Gregorian years before 1970-01-01
        for days in start..146_097 * 2 {
            assert_eq!(crate::time::civil_from_days(days), (y, m, d), "{days}");
            d += 1;
            if d > month_days(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    /// RFC 4648 §10 test vectors.
    #[test]
    fn base32_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "MY======"),
            ("fo", "MZXQ===="),
            ("foo", "MZXW6==="),
            ("foob", "MZXW6YQ="),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI======"),
        ] {
            assert_eq!(base32(input.as_bytes()), output);
        }
        assert_eq!(
            sha256_label(&sha(b"")),
            "sha256:4OYMIQUY7QOBJGX36TEJS35ZEQT24QPEMSNZGTFESWMRW6CSXBKQ===="
        );
    }

    /// An output shared with the test, to watch bytes arrive.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Compressed payload reaches the output before the record ends.
    #[test]
    fn payload_is_streamed() {
        // 4 MiB of incompressible bytes (xorshift).
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let payload: Vec<u8> = (0..4 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let shared = Shared::default();
        let mut w = WarcWriter::new(shared.clone());
        w.begin_response(&response(
            "https://example.org/big",
            200,
            Some("application/octet-stream"),
            &payload,
        ))
        .unwrap();
        for piece in payload.chunks(1 << 20) {
            w.write_payload(piece).unwrap();
        }
        assert!(shared.0.borrow().len() > 3 << 20);
        w.end_record().unwrap();
        w.finish().unwrap();
        let mut text = Vec::new();
        MultiGzDecoder::new(&shared.0.borrow()[..])
            .read_to_end(&mut text)
            .unwrap();
        assert!(text.ends_with(&[&payload[payload.len() - 100..], b"\r\n\r\n"].concat()));
    }

    /// An output that fails after `budget` bytes.
    struct Failing {
        /// Bytes still accepted.
        budget: usize,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.budget == 0 {
                return Err(std::io::Error::other("disk full"));
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A failing output is an `Io` error and leaves the writer refused.
    #[test]
    fn output_errors_break_the_writer() {
        let mut w = WarcWriter::new(Failing { budget: 10 });
        let err = w.warcinfo(JAN_15, &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains("disk full"), "{err}");
        assert!(
            w.begin_response(&response("https://example.org/", 200, None, b""))
                .is_err()
        );
        assert!(w.finish().is_err());
    }
}
