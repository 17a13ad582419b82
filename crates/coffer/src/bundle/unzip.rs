//! The unzip decorator of data bundles: gzip and zip resources fetched from
//! the web are decompressed on the way, within limits, and hostile archives
//! are refused.
//!
//! - [`sniff`] tells from a resource's first bytes (and its content type)
//!   whether it is gzip, a zip archive to expand, or plain bytes.
//! - [`gunzip`] decompresses a gzip body as its chunks arrive (several
//!   members in a row, like `gzip -d`), holding at most the current input
//!   chunk plus 64 KiB of output, and fails once the output passes the
//!   [`UnzipLimits`] (a gzip bomb), or when the data is corrupt or truncated.
//! - [`expand_zip`] expands a zip archive that the caller spooled to a file:
//!   it first validates every entry of the central directory (zip slip,
//!   absolute paths, symlinks, encryption, methods, duplicates, declared
//!   sizes), then copies each regular file into its own file while counting
//!   the bytes actually produced, and leaves nothing behind on failure.
//!
//! Every refusal is one [`ErrorKind::InvalidInput`] error whose message
//! starts with the caller's `what` (e.g. `resource https://x/a.gz`) and
//! names the problem; failures of this machine's own files are
//! [`ErrorKind::Io`].

use std::collections::HashSet;
use std::fmt::Display;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes};
use flate2::{Crc, Decompress, FlushDecompress, Status};
use futures::StreamExt;
use zip::{CompressionMethod, ZipArchive};

use crate::body::ByteStream;
use crate::error::{Error, ErrorKind, Result};

/// Limits on what one compressed resource may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnzipLimits {
    /// Total bytes a resource may expand to (default 1 GiB).
    pub max_expanded_bytes: u64,
    /// Expanded bytes per compressed byte, over the whole resource (default
    /// 100); resources under 1 KiB count as 1 KiB, so small files pass.
    pub max_ratio: u64,
    /// Entries (files and folders) of one zip archive (default 10 000).
    pub max_entries: usize,
}

impl Default for UnzipLimits {
    fn default() -> Self {
        UnzipLimits {
            max_expanded_bytes: 1 << 30,
            max_ratio: 100,
            max_entries: 10_000,
        }
    }
}

/// What a resource's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// gzip data (magic `1f 8b 08`), to decompress with [`gunzip`].
    Gzip,
    /// A zip archive to expand with [`expand_zip`].
    Zip,
    /// Anything else, including documents that are zip files inside
    /// (`.docx`, `.xlsx`, `.jar`, `.epub`) served with their own type.
    Plain,
}

/// The content types under which a zip file is an archive to expand (an
/// absent or empty type counts too).
const ZIP_CONTENT_TYPES: [&str; 5] = [
    "application/zip",
    "application/x-zip-compressed",
    "application/x-zip",
    "application/octet-stream",
    "multipart/x-zip",
];

/// Tells from a resource's first bytes (at least 4 of them for a zip) and
/// its content type whether it is gzip, a zip archive to expand, or plain.
///
/// gzip is recognised by its magic whatever the type. A zip (a local file
/// header `PK\x03\x04`, or the end record `PK\x05\x06` of an empty archive)
/// is an archive only when the type is absent or one of the generic zip or
/// binary types; parameters after `;` and case are ignored.
pub(crate) fn sniff(first_bytes: &[u8], content_type: Option<&str>) -> Compression {
    if first_bytes.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Compression::Gzip;
    }
    let zip_magic = first_bytes.starts_with(b"PK\x03\x04") || first_bytes.starts_with(b"PK\x05\x06");
    if zip_magic && zip_type_allowed(content_type) {
        Compression::Zip
    } else {
        Compression::Plain
    }
}

/// Whether a resource of `content_type` with zip magic is an archive to expand.
fn zip_type_allowed(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.is_empty() || ZIP_CONTENT_TYPES.iter().any(|t| t.eq_ignore_ascii_case(essence))
}

/// Resources smaller than this count as this size for the ratio limit.
const RATIO_FLOOR: u64 = 1024;

/// The most output [`gunzip`] produces per chunk, and the copy buffer of
/// [`expand_zip`].
const OUT_CHUNK: usize = 64 * 1024;

/// Fails once `expanded` bytes from `compressed` ones pass the limits;
/// `format` ("gzip", "zip") and `what` name the resource in the error.
fn check_expansion(expanded: u64, compressed: u64, limits: &UnzipLimits, format: &str, what: &str) -> Result<()> {
    if expanded > limits.max_expanded_bytes {
        return Err(Error::invalid_input(format!(
            "{what}: {format} expands past the limit of {} (unzip limits)",
            human_bytes(limits.max_expanded_bytes)
        )));
    }
    if expanded > limits.max_ratio.saturating_mul(compressed.max(RATIO_FLOOR)) {
        return Err(Error::invalid_input(format!(
            "{what}: {format} expands past {} times its compressed size ({} from {}) (unzip limits)",
            limits.max_ratio,
            human_bytes(expanded),
            human_bytes(compressed)
        )));
    }
    Ok(())
}

/// A size for messages: `512 bytes`, `1.0 KiB`, `9.5 MiB`, `1.0 GiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return if n == 1 {
            "1 byte".to_owned()
        } else {
            format!("{n} bytes")
        };
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

// ---------------------------------------------------------------------------
// gzip

/// Decompresses a gzip `body` as its chunks arrive.
///
/// Several members in a row are read as one stream (like `gzip -d`), and
/// zero bytes after the last member are ignored. The stream ends with one
/// [`ErrorKind::InvalidInput`] error, its output past the limit never
/// yielded, as soon as the output passes `limits.max_expanded_bytes` or
/// `limits.max_ratio` times the compressed bytes received so far (at least
/// 1 KiB), or when the data is not gzip, is corrupt (including a checksum or
/// length mismatch in a member's trailer) or ends before a member's trailer.
/// An error of `body` is passed through and ends the stream. Memory stays
/// bounded: the current input chunk, 64 KiB of output and the inflater.
/// `what` starts every message, e.g. `resource https://x/a.gz`.
pub(crate) fn gunzip(body: ByteStream, limits: UnzipLimits, what: String) -> ByteStream {
    let state = Gunzip {
        body,
        decoder: GzipDecoder::new(limits, what),
        pending: Bytes::new(),
        out: vec![0; OUT_CHUNK],
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next_item().await?;
        Some((item, state))
    })
    .boxed()
}

/// The state of a [`gunzip`] stream.
struct Gunzip {
    /// The compressed input.
    body: ByteStream,
    /// The push-style decoder.
    decoder: GzipDecoder,
    /// What is left of the current input chunk.
    pending: Bytes,
    /// The output buffer, [`OUT_CHUNK`] bytes.
    out: Vec<u8>,
    /// Whether the stream has ended (its input, or an error).
    done: bool,
}

impl Gunzip {
    /// The next chunk of output, or the error that ends the stream, or
    /// `None` at its end.
    async fn next_item(&mut self) -> Option<Result<Bytes>> {
        if self.done {
            return None;
        }
        loop {
            // Feed even an empty input: the inflater may hold output that
            // did not fit in the last call.
            match self.decoder.feed(&self.pending, &mut self.out) {
                Ok((used, made)) => {
                    let used = used.min(self.pending.len());
                    self.pending.advance(used);
                    if made > 0 {
                        let chunk = self.out.get(..made).map(Bytes::copy_from_slice).unwrap_or_default();
                        return Some(Ok(chunk));
                    }
                    if used > 0 {
                        continue;
                    }
                    if !self.pending.is_empty() {
                        // Unreachable by construction; never spin.
                        self.done = true;
                        return Some(Err(self.decoder.corrupt("the decoder made no progress")));
                    }
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.decoder.compressed = self.decoder.compressed.saturating_add(chunk.len() as u64);
                    self.pending = chunk;
                }
                Some(Err(err)) => {
                    self.done = true;
                    return Some(Err(err));
                }
                None => {
                    self.done = true;
                    return self.decoder.finish().err().map(Err);
                }
            }
        }
    }
}

/// Where a [`GzipDecoder`] is in its input.
enum Phase {
    /// In a member's header.
    Header(HeaderParser),
    /// In a member's deflate data.
    Body,
    /// In a member's 8-byte trailer (CRC-32 and length), `len` bytes of it seen.
    Trailer {
        /// The trailer's bytes so far.
        bytes: [u8; 8],
        /// How many of `bytes` are filled.
        len: usize,
    },
    /// Just after a member's trailer: another member, zero padding or the end.
    Between,
    /// In zero padding after the last member: only zeros may follow.
    Padding,
}

/// A push-style, multi-member gzip decoder that counts what it reads and
/// writes and enforces the limits.
struct GzipDecoder {
    /// The limits to enforce.
    limits: UnzipLimits,
    /// The resource's name, which starts every message.
    what: String,
    /// Where the decoder is.
    phase: Phase,
    /// The raw-deflate inflater of the current member.
    inflater: Decompress,
    /// CRC-32 and length of the current member's output.
    crc: Crc,
    /// Members read whole.
    members: u64,
    /// Compressed bytes received.
    compressed: u64,
    /// Bytes produced.
    expanded: u64,
}

impl GzipDecoder {
    /// A decoder at the start of its input.
    fn new(limits: UnzipLimits, what: String) -> Self {
        GzipDecoder {
            limits,
            what,
            phase: Phase::Header(HeaderParser::new()),
            inflater: Decompress::new(false),
            crc: Crc::new(),
            members: 0,
            compressed: 0,
            expanded: 0,
        }
    }

    /// The error for corrupt data, with `detail`.
    fn corrupt(&self, detail: impl Display) -> Error {
        corrupt_gzip(&self.what, detail)
    }

    /// Decodes from `input` into `out` until `out` is full or nothing more
    /// can be done with `input`; returns the bytes used and produced.
    fn feed(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize)> {
        let mut used = 0;
        let mut made = 0;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            match &mut self.phase {
                Phase::Header(header) => {
                    if rest.is_empty() {
                        break;
                    }
                    let (n, done) = header.push(rest).map_err(|detail| corrupt_gzip(&self.what, detail))?;
                    used += n;
                    if done {
                        self.inflater.reset(false);
                        self.crc.reset();
                        self.phase = Phase::Body;
                    }
                }
                Phase::Body => {
                    let Some(space) = out.get_mut(made..).filter(|space| !space.is_empty()) else {
                        break;
                    };
                    let (in_before, out_before) = (self.inflater.total_in(), self.inflater.total_out());
                    let status = self
                        .inflater
                        .decompress(rest, space, FlushDecompress::None)
                        .map_err(|err| corrupt_gzip(&self.what, format!("bad deflate data ({err})")))?;
                    let n_in =
                        usize::try_from(self.inflater.total_in().saturating_sub(in_before)).unwrap_or(usize::MAX);
                    let n_out =
                        usize::try_from(self.inflater.total_out().saturating_sub(out_before)).unwrap_or(usize::MAX);
                    let Some(produced) = space.get(..n_out) else {
                        return Err(corrupt_gzip(&self.what, "the inflater overran its buffer"));
                    };
                    self.crc.update(produced);
                    used = used.saturating_add(n_in).min(input.len());
                    made += n_out;
                    self.expanded = self.expanded.saturating_add(n_out as u64);
                    check_expansion(self.expanded, self.compressed, &self.limits, "gzip", &self.what)?;
                    if status == Status::StreamEnd {
                        self.phase = Phase::Trailer { bytes: [0; 8], len: 0 };
                    } else if n_in == 0 && n_out == 0 {
                        if !rest.is_empty() {
                            return Err(corrupt_gzip(&self.what, "the deflate data makes no progress"));
                        }
                        break;
                    }
                }
                Phase::Trailer { bytes, len } => {
                    if rest.is_empty() {
                        break;
                    }
                    let n = (8 - *len).min(rest.len());
                    for (slot, &b) in bytes.iter_mut().skip(*len).zip(rest) {
                        *slot = b;
                    }
                    *len += n;
                    used += n;
                    if *len == 8 {
                        let [c0, c1, c2, c3, l0, l1, l2, l3] = *bytes;
                        if u32::from_le_bytes([c0, c1, c2, c3]) != self.crc.sum() {
                            return Err(self.corrupt("checksum mismatch (CRC-32 of a member)"));
                        }
                        if u32::from_le_bytes([l0, l1, l2, l3]) != self.crc.amount() {
                            return Err(self.corrupt("length mismatch (size of a member)"));
                        }
                        self.members += 1;
                        self.phase = Phase::Between;
                    }
                }
                Phase::Between => match rest.first() {
                    None => break,
                    Some(0x1f) => self.phase = Phase::Header(HeaderParser::new()),
                    Some(0) => self.phase = Phase::Padding,
                    Some(_) => return Err(self.corrupt("data after the end of the gzip stream is not gzip")),
                },
                Phase::Padding => {
                    if rest.iter().any(|&b| b != 0) {
                        return Err(self.corrupt("data after the end of the gzip stream is not gzip"));
                    }
                    used = input.len();
                    break;
                }
            }
        }
        Ok((used, made))
    }

    /// Checks the end of the input: it must fall after a whole member.
    fn finish(&self) -> Result<()> {
        match self.phase {
            Phase::Between | Phase::Padding if self.members > 0 => Ok(()),
            _ if self.members == 0 && self.compressed == 0 => Err(self.corrupt("the input is empty")),
            _ => Err(Error::invalid_input(format!(
                "{}: gzip data is truncated (the input ended before the end of the gzip stream)",
                self.what
            ))),
        }
    }
}

/// The error for corrupt gzip data of `what`, with `detail`.
fn corrupt_gzip(what: &str, detail: impl Display) -> Error {
    Error::invalid_input(format!("{what}: gzip data is corrupt: {detail}"))
}

/// The flag bits of a gzip header (RFC 1952).
const FHCRC: u8 = 0x02;
/// The header has an extra field.
const FEXTRA: u8 = 0x04;
/// The header has a file name.
const FNAME: u8 = 0x08;
/// The header has a comment.
const FCOMMENT: u8 = 0x10;
/// Flag bits that must be zero.
const FRESERVED: u8 = 0xe0;

/// The parts of a gzip member header, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderStep {
    /// The 10 fixed bytes: magic, method, flags, time, extra flags, OS.
    Fixed,
    /// The 2-byte length of the extra field.
    ExtraLen,
    /// The extra field.
    Extra,
    /// The zero-terminated file name.
    Name,
    /// The zero-terminated comment.
    Comment,
    /// The 2-byte CRC-16 of the header.
    HeaderCrc,
    /// The header is read.
    Done,
}

/// Reads a gzip member header byte by byte, keeping nothing but counters.
struct HeaderParser {
    /// The part being read.
    step: HeaderStep,
    /// The header's flags.
    flags: u8,
    /// Bytes read of the current part.
    at: usize,
    /// A 2-byte little-endian field being read.
    word: [u8; 2],
    /// Bytes of the extra field still to skip.
    extra_left: usize,
    /// CRC-32 of the header bytes, for the optional header CRC.
    crc: Crc,
}

impl HeaderParser {
    /// A parser at the start of a header.
    fn new() -> Self {
        HeaderParser {
            step: HeaderStep::Fixed,
            flags: 0,
            at: 0,
            word: [0; 2],
            extra_left: 0,
            crc: Crc::new(),
        }
    }

    /// Reads header bytes from `input`; returns how many it used and
    /// whether the header is complete, or what is wrong with it.
    fn push(&mut self, input: &[u8]) -> std::result::Result<(usize, bool), &'static str> {
        let mut used = 0;
        for &b in input {
            if self.step == HeaderStep::Done {
                break;
            }
            used += 1;
            if self.step != HeaderStep::HeaderCrc {
                self.crc.update(&[b]);
            }
            match self.step {
                HeaderStep::Fixed => {
                    match (self.at, b) {
                        (0, b) if b != 0x1f => return Err("not gzip data (bad magic number)"),
                        (1, b) if b != 0x8b => return Err("not gzip data (bad magic number)"),
                        (2, b) if b != 8 => return Err("unsupported compression method in a gzip header"),
                        (3, b) if b & FRESERVED != 0 => return Err("reserved flags set in a gzip header"),
                        (3, b) => self.flags = b,
                        _ => {}
                    }
                    self.at += 1;
                    if self.at == 10 {
                        self.advance(HeaderStep::Fixed);
                    }
                }
                HeaderStep::ExtraLen => {
                    if let Some(slot) = self.word.get_mut(self.at) {
                        *slot = b;
                    }
                    self.at += 1;
                    if self.at == 2 {
                        self.extra_left = usize::from(u16::from_le_bytes(self.word));
                        if self.extra_left == 0 {
                            self.advance(HeaderStep::Extra);
                        } else {
                            self.step = HeaderStep::Extra;
                        }
                    }
                }
                HeaderStep::Extra => {
                    self.extra_left = self.extra_left.saturating_sub(1);
                    if self.extra_left == 0 {
                        self.advance(HeaderStep::Extra);
                    }
                }
                HeaderStep::Name | HeaderStep::Comment => {
                    if b == 0 {
                        self.advance(self.step);
                    }
                }
                HeaderStep::HeaderCrc => {
                    if let Some(slot) = self.word.get_mut(self.at) {
                        *slot = b;
                    }
                    self.at += 1;
                    if self.at == 2 {
                        if u32::from(u16::from_le_bytes(self.word)) != self.crc.sum() & 0xffff {
                            return Err("gzip header checksum mismatch");
                        }
                        self.step = HeaderStep::Done;
                    }
                }
                HeaderStep::Done => {}
            }
        }
        Ok((used, self.step == HeaderStep::Done))
    }

    /// Moves to the part after `from` that the flags call for.
    fn advance(&mut self, from: HeaderStep) {
        const ORDER: [(HeaderStep, u8); 4] = [
            (HeaderStep::ExtraLen, FEXTRA),
            (HeaderStep::Name, FNAME),
            (HeaderStep::Comment, FCOMMENT),
            (HeaderStep::HeaderCrc, FHCRC),
        ];
        let start = match from {
            HeaderStep::Fixed => 0,
            HeaderStep::ExtraLen | HeaderStep::Extra => 1,
            HeaderStep::Name => 2,
            HeaderStep::Comment => 3,
            HeaderStep::HeaderCrc | HeaderStep::Done => 4,
        };
        self.at = 0;
        self.step = ORDER
            .get(start..)
            .unwrap_or_default()
            .iter()
            .find(|(_, flag)| self.flags & flag != 0)
            .map_or(HeaderStep::Done, |(step, _)| *step);
    }
}

// ---------------------------------------------------------------------------
// zip

/// One expanded entry: its path inside the archive (validated, '/'
/// separators) and the temp file that holds its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpandedEntry {
    /// The entry's path in the archive: relative, `/`-separated, without
    /// `.`, `..` or empty components.
    pub(crate) name: String,
    /// The file under `out_dir` that holds the entry's bytes (named by the
    /// entry's position in the returned list: `0`, `1`, ...).
    pub(crate) file: PathBuf,
    /// The entry's size in bytes, as counted while expanding.
    pub(crate) size: u64,
}

/// A regular file of an archive, validated, waiting to be expanded.
struct PlannedEntry {
    /// The entry's index in the archive.
    index: usize,
    /// The entry's validated path.
    name: String,
    /// The size the central directory declares.
    declared: u64,
}

/// The unix file-type bits of a mode.
const S_IFMT: u32 = 0o170_000;
/// The unix file type of a symbolic link.
const S_IFLNK: u32 = 0o120_000;

/// Validates every entry of the archive at `archive` first, then expands
/// each regular file into its own file under `out_dir` (which exists and is
/// empty), enforcing limits on the actual bytes; blocking code (the caller
/// runs it in `spawn_blocking`).
///
/// Refused, before anything is written, each with one
/// [`ErrorKind::InvalidInput`] error naming the entry (control characters
/// escaped): an archive whose central directory cannot be read (truncated or
/// corrupt), more entries than `limits.max_entries`, two entries of the same
/// path, a path with a `..` component (zip slip), an absolute path (`/x`,
/// `\x`, `C:x`, `\\server\x`), a NUL or control character, a symbolic link,
/// an encrypted entry, a compression method other than stored or deflate,
/// and declared sizes that add up past the limits. While copying, the bytes
/// actually produced are counted against `limits.max_expanded_bytes` and
/// `limits.max_ratio` times the archive's size (at least 1 KiB), each
/// entry's CRC-32 and declared size are checked, and an error ends the
/// expansion. Folder entries are skipped. On any error every file this call
/// created in `out_dir` is removed before the error is returned. `what`
/// starts every message, e.g. `resource https://x/a.zip`.
pub(crate) fn expand_zip(
    archive: &Path,
    out_dir: &Path,
    limits: UnzipLimits,
    what: &str,
) -> Result<Vec<ExpandedEntry>> {
    let file = File::open(archive).map_err(|err| {
        Error::new(
            ErrorKind::Io,
            format!("{what}: cannot open the spooled archive {}: {err}", archive.display()),
        )
    })?;
    let archive_size = file
        .metadata()
        .map_err(|err| {
            Error::new(
                ErrorKind::Io,
                format!("{what}: cannot read {}: {err}", archive.display()),
            )
        })?
        .len();
    let mut zip = ZipArchive::new(BufReader::new(file)).map_err(|err| {
        Error::invalid_input(format!(
            "{what}: not a readable zip archive (truncated or corrupt): {err}"
        ))
    })?;
    let job = ZipJob {
        what,
        limits,
        archive_size,
    };
    let planned = job.validate(&zip)?;
    let mut created = Vec::new();
    let expanded = job.expand(&mut zip, &planned, out_dir, &mut created);
    if expanded.is_err() {
        for path in &created {
            // Best effort: the error being returned is the one that matters.
            fs::remove_file(path).ok();
        }
    }
    expanded
}

/// What one [`expand_zip`] call works with.
struct ZipJob<'a> {
    /// The resource's name, which starts every message.
    what: &'a str,
    /// The limits to enforce.
    limits: UnzipLimits,
    /// The archive file's size in bytes.
    archive_size: u64,
}

impl ZipJob<'_> {
    /// An [`ErrorKind::InvalidInput`] error about the entry `name`.
    fn entry_error(&self, name: &str, problem: impl Display) -> Error {
        Error::invalid_input(format!("{}: zip entry \"{}\" {problem}", self.what, printable(name)))
    }

    /// Validates every entry of the central directory; returns the regular
    /// files to expand, in archive order.
    fn validate<R: Read + io::Seek>(&self, zip: &ZipArchive<R>) -> Result<Vec<PlannedEntry>> {
        let what = self.what;
        let count = zip.len();
        if count > self.limits.max_entries {
            return Err(Error::invalid_input(format!(
                "{what}: zip has {count} entries, more than the limit of {} (unzip limits)",
                self.limits.max_entries
            )));
        }
        if zip.has_duplicate_names() {
            return Err(Error::invalid_input(format!(
                "{what}: zip has two entries of the same name (refused)"
            )));
        }
        let metadata = zip.metadata();
        let mut seen = HashSet::new();
        let mut planned = Vec::new();
        let mut declared_total: u64 = 0;
        for index in 0..count {
            let entry = metadata.entry(index).map_err(|err| {
                Error::invalid_input(format!(
                    "{what}: not a readable zip archive (truncated or corrupt): {err}"
                ))
            })?;
            let raw_name = entry.name().map_err(|err| {
                Error::invalid_input(format!(
                    "{what}: zip entry #{index} has a name that cannot be decoded: {err}"
                ))
            })?;
            let name = validate_entry_path(&raw_name).map_err(|problem| self.entry_error(&raw_name, problem))?;
            let mode = entry.external_attributes() >> 16;
            if entry.is_symlink() || mode & S_IFMT == S_IFLNK {
                return Err(self.entry_error(&raw_name, "is a symbolic link (refused)"));
            }
            if entry.encrypted() {
                return Err(self.entry_error(&raw_name, "is encrypted (refused)"));
            }
            if entry.is_dir() || raw_name.ends_with('/') || raw_name.ends_with('\\') {
                continue;
            }
            if name.is_empty() {
                return Err(self.entry_error(&raw_name, "has an empty path"));
            }
            let method = entry.compression();
            if !matches!(method, CompressionMethod::Stored | CompressionMethod::Deflated) {
                return Err(self.entry_error(
                    &raw_name,
                    format!("uses the compression method {method}, which is not supported (only stored and deflate)"),
                ));
            }
            if !seen.insert(name.clone()) {
                return Err(self.entry_error(&raw_name, "has the same path as another entry (refused)"));
            }
            declared_total = declared_total.saturating_add(entry.size());
            planned.push(PlannedEntry {
                index,
                name,
                declared: entry.size(),
            });
        }
        if declared_total > self.limits.max_expanded_bytes {
            return Err(Error::invalid_input(format!(
                "{what}: zip expands past the limit of {} (its entries declare {}) (unzip limits)",
                human_bytes(self.limits.max_expanded_bytes),
                human_bytes(declared_total)
            )));
        }
        // The same check as while copying, on the declared sizes: refuse early.
        check_expansion(declared_total, self.archive_size, &self.limits, "zip", what)?;
        Ok(planned)
    }

    /// Expands the `planned` entries into files `0`, `1`, ... of `out_dir`,
    /// recording each file in `created` as soon as it exists.
    fn expand<R: Read + io::Seek>(
        &self,
        zip: &mut ZipArchive<R>,
        planned: &[PlannedEntry],
        out_dir: &Path,
        created: &mut Vec<PathBuf>,
    ) -> Result<Vec<ExpandedEntry>> {
        let what = self.what;
        let mut buf = vec![0; OUT_CHUNK];
        let mut total: u64 = 0;
        let mut entries = Vec::with_capacity(planned.len());
        for (position, plan) in planned.iter().enumerate() {
            let mut reader = zip
                .by_index(plan.index)
                .map_err(|err| self.entry_error(&plan.name, format!("cannot be read (corrupt archive): {err}")))?;
            let path = out_dir.join(position.to_string());
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|err| {
                    Error::new(
                        ErrorKind::Io,
                        format!("{what}: cannot create {}: {err}", path.display()),
                    )
                })?;
            created.push(path.clone());
            let mut size: u64 = 0;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => {
                        return Err(self.entry_error(
                            &plan.name,
                            format!("is corrupt (bad data, checksum or declared size): {err}"),
                        ));
                    }
                };
                let Some(chunk) = buf.get(..n) else {
                    return Err(self.entry_error(&plan.name, "cannot be read (the reader overran its buffer)"));
                };
                size = size.saturating_add(n as u64);
                total = total.saturating_add(n as u64);
                check_expansion(total, self.archive_size, &self.limits, "zip", what)?;
                file.write_all(chunk).map_err(|err| {
                    Error::new(ErrorKind::Io, format!("{what}: cannot write {}: {err}", path.display()))
                })?;
            }
            if size != plan.declared {
                return Err(self.entry_error(
                    &plan.name,
                    format!(
                        "is corrupt: it holds {size} bytes, not the {} its header declares",
                        plan.declared
                    ),
                ));
            }
            file.flush()
                .map_err(|err| Error::new(ErrorKind::Io, format!("{what}: cannot write {}: {err}", path.display())))?;
            entries.push(ExpandedEntry {
                name: plan.name.clone(),
                file: path,
                size,
            });
        }
        Ok(entries)
    }
}

/// Checks an entry's path and returns it normalised: `/` separators (a `\`
/// counts as one too), without empty or `.` components; the result is empty
/// for the archive's root. Refuses, with what is wrong: a control character
/// (NUL included), an absolute path (`/x`, `\x`, `\\server\x`, a drive
/// letter `C:`), a `..` component (zip slip).
fn validate_entry_path(name: &str) -> std::result::Result<String, &'static str> {
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(if c == '\0' {
            "has a NUL character in its path (refused)"
        } else {
            "has a control character in its path (refused)"
        });
    }
    if name.starts_with(['/', '\\']) {
        return Err("has an absolute path (refused)");
    }
    if let [drive, b':', ..] = name.as_bytes()
        && drive.is_ascii_alphabetic()
    {
        return Err("has an absolute path with a drive letter (refused)");
    }
    let mut parts = Vec::new();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err("has a path that escapes the archive (a \"..\" component, zip slip)"),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// An entry's name for a message: control and invisible formatting
/// characters escaped as `\u{..}`, cut to 200 characters.
fn printable(name: &str) -> String {
    const MAX_CHARS: usize = 200;
    let mut out = String::with_capacity(name.len().min(4 * MAX_CHARS));
    for (count, c) in name.chars().enumerate() {
        if count == MAX_CHARS {
            out.push('…');
            break;
        }
        let invisible =
            matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
        if c.is_control() || invisible {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder};
    use std::io::Cursor;
    use zip::write::{SimpleFileOptions, ZipWriter};

    const WHAT_GZ: &str = "resource https://x/a.gz";
    const WHAT_ZIP: &str = "resource https://x/a.zip";
    const MB: usize = 1_000_000;

    /// Text-like bytes that compress moderately.
    fn sample(len: usize) -> Vec<u8> {
        let words: [&[u8]; 8] = [
            b"alpha ", b"beta ", b"gamma\n", b"delta ", b"42 ", b"zeta, ", b"eta; ", b"theta ",
        ];
        let mut state: u32 = 7;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            out.extend_from_slice(words[(state >> 16) as usize % words.len()]);
            out.push((state >> 8) as u8);
        }
        out.truncate(len);
        out
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// gzip of `zeros` zero bytes, written a piece at a time.
    fn gz_zeros(zeros: usize) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let piece = vec![0u8; MB];
        let mut left = zeros;
        while left > 0 {
            let n = left.min(piece.len());
            encoder.write_all(&piece[..n]).unwrap();
            left -= n;
        }
        encoder.finish().unwrap()
    }

    /// A gzip member with every optional header field, built by hand.
    fn gz_full_header(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, FEXTRA | FNAME | FCOMMENT | FHCRC, 1, 2, 3, 4, 0, 3];
        out.extend_from_slice(&5u16.to_le_bytes());
        out.extend_from_slice(b"AB\x01\x00z");
        out.extend_from_slice(b"name.txt\0");
        out.extend_from_slice(b"a comment\0");
        let mut crc = Crc::new();
        crc.update(&out);
        out.extend_from_slice(&((crc.sum() & 0xffff) as u16).to_le_bytes());
        let mut deflate = DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflate.write_all(data).unwrap();
        out.extend(deflate.finish().unwrap());
        let mut crc = Crc::new();
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&crc.amount().to_le_bytes());
        out
    }

    /// `data` cut into chunks whose sizes cycle through `sizes`.
    fn chunks(data: &[u8], sizes: &[usize]) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut at = 0;
        for &size in sizes.iter().cycle() {
            if at >= data.len() {
                break;
            }
            let end = (at + size).min(data.len());
            out.push(Bytes::copy_from_slice(&data[at..end]));
            at = end;
        }
        out
    }

    /// What a gunzip stream gave: its output, its error, its largest chunk.
    struct Run {
        output: Vec<u8>,
        error: Option<Error>,
        largest_chunk: usize,
    }

    async fn run_items(input: Vec<Result<Bytes>>, limits: UnzipLimits) -> Run {
        let body = futures::stream::iter(input).boxed();
        let mut stream = gunzip(body, limits, WHAT_GZ.to_owned());
        let mut run = Run {
            output: Vec::new(),
            error: None,
            largest_chunk: 0,
        };
        while let Some(item) = stream.next().await {
            assert!(run.error.is_none(), "an item after the error");
            match item {
                Ok(chunk) => {
                    assert!(!chunk.is_empty(), "an empty chunk");
                    run.largest_chunk = run.largest_chunk.max(chunk.len());
                    run.output.extend_from_slice(&chunk);
                }
                Err(err) => run.error = Some(err),
            }
        }
        run
    }

    async fn run(input: Vec<Bytes>, limits: UnzipLimits) -> Run {
        run_items(input.into_iter().map(Ok).collect(), limits).await
    }

    async fn gunzip_err(data: &[u8], limits: UnzipLimits) -> Error {
        let run = run(chunks(data, &[4096]), limits).await;
        let err = run.error.expect("the stream should fail");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.message().starts_with(WHAT_GZ), "{err}");
        err
    }

    #[tokio::test]
    async fn gzip_decompresses_through_tiny_and_large_chunks() {
        let data = sample(300_000);
        let compressed = gz(&data);
        for sizes in [
            &[1usize, 2, 3, 4, 5, 6, 7][..],
            &[1],
            &[7],
            &[64 * 1024],
            &[compressed.len()],
        ] {
            let run = run(chunks(&compressed, sizes), UnzipLimits::default()).await;
            assert!(run.error.is_none(), "{:?}", run.error);
            assert!(run.output == data, "output differs with chunks {sizes:?}");
            assert!(run.largest_chunk <= OUT_CHUNK);
        }
    }

    #[tokio::test]
    async fn gzip_output_comes_in_bounded_chunks() {
        let data = vec![0u8; 5 * MB];
        let limits = UnzipLimits {
            max_ratio: 100_000,
            ..UnzipLimits::default()
        };
        let run = run(vec![Bytes::from(gz(&data))], limits).await;
        assert!(run.error.is_none(), "{:?}", run.error);
        assert_eq!(run.output.len(), data.len());
        assert!(run.largest_chunk <= OUT_CHUNK, "{}", run.largest_chunk);
    }

    #[tokio::test]
    async fn gzip_reads_every_member() {
        let (a, b, c) = (sample(70_000), b"second member\n".to_vec(), Vec::new());
        let mut compressed = gz(&a);
        compressed.extend(gz(&b));
        compressed.extend(gz(&c));
        compressed.extend(gz_full_header(b"third, with every header field"));
        let mut expected = [a, b, c].concat();
        expected.extend_from_slice(b"third, with every header field");
        for sizes in [&[1usize, 2, 3, 4, 5, 6, 7][..], &[64 * 1024]] {
            let run = run(chunks(&compressed, sizes), UnzipLimits::default()).await;
            assert!(run.error.is_none(), "{:?}", run.error);
            assert!(run.output == expected);
        }
    }

    #[tokio::test]
    async fn gzip_ignores_zero_padding_but_not_garbage() {
        let data = sample(10_000);
        let mut padded = gz(&data);
        padded.extend_from_slice(&[0; 100]);
        let run = run(chunks(&padded, &[3]), UnzipLimits::default()).await;
        assert!(run.error.is_none(), "{:?}", run.error);
        assert!(run.output == data);

        let mut garbage = gz(&data);
        garbage.extend_from_slice(b"trailing junk");
        let err = gunzip_err(&garbage, UnzipLimits::default()).await;
        assert!(err.message().contains("is not gzip"), "{err}");
        padded.push(1);
        let err = gunzip_err(&padded, UnzipLimits::default()).await;
        assert!(err.message().contains("is not gzip"), "{err}");
    }

    #[tokio::test]
    async fn gzip_bomb_fails_at_the_size_limit() {
        let bomb = gz_zeros(50 * MB);
        let limits = UnzipLimits {
            max_expanded_bytes: 10 * MB as u64,
            max_ratio: 1_000_000,
            ..UnzipLimits::default()
        };
        let run = run(chunks(&bomb, &[64 * 1024]), limits).await;
        let err = run.error.expect("the bomb should fail");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            err.message(),
            "resource https://x/a.gz: gzip expands past the limit of 9.5 MiB (unzip limits)"
        );
        assert!(run.output.len() <= 10 * MB, "{} bytes yielded", run.output.len());
    }

    #[tokio::test]
    async fn gzip_ratio_bomb_fails() {
        let bomb = gz_zeros(5 * MB);
        let err = gunzip_err(&bomb, UnzipLimits::default()).await;
        assert!(
            err.message().contains("expands past 100 times its compressed size"),
            "{err}"
        );
        assert!(err.message().ends_with("(unzip limits)"), "{err}");
    }

    #[tokio::test]
    async fn gzip_small_file_is_not_refused_for_ratio() {
        let data = vec![0u8; 100_000];
        let compressed = gz(&data);
        assert!(compressed.len() * 100 < data.len());
        let run = run(chunks(&compressed, &[5]), UnzipLimits::default()).await;
        assert!(run.error.is_none(), "{:?}", run.error);
        assert_eq!(run.output.len(), data.len());
    }

    #[tokio::test]
    async fn gzip_truncated_fails() {
        let compressed = gz(&sample(100_000));
        for cut in [
            compressed.len() - 1,
            compressed.len() - 4,
            compressed.len() - 8,
            compressed.len() / 2,
            10,
            5,
        ] {
            let err = gunzip_err(&compressed[..cut], UnzipLimits::default()).await;
            assert!(err.message().contains("gzip data is truncated"), "cut at {cut}: {err}");
        }
        let err = gunzip_err(&[], UnzipLimits::default()).await;
        assert!(err.message().contains("empty"), "{err}");
    }

    #[tokio::test]
    async fn gzip_corrupt_fails() {
        let data = sample(100_000);
        let good = gz(&data);

        let mut bad_deflate = good[..10].to_vec();
        bad_deflate.extend_from_slice(&[0xff; 64]);
        let err = gunzip_err(&bad_deflate, UnzipLimits::default()).await;
        assert!(
            err.message().contains("gzip data is corrupt: bad deflate data"),
            "{err}"
        );

        let mut bad_crc = good.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 0xff;
        let err = gunzip_err(&bad_crc, UnzipLimits::default()).await;
        assert!(err.message().contains("checksum mismatch"), "{err}");

        let mut bad_len = good.clone();
        let at = bad_len.len() - 1;
        bad_len[at] ^= 0xff;
        let err = gunzip_err(&bad_len, UnzipLimits::default()).await;
        assert!(err.message().contains("length mismatch"), "{err}");

        let mut bad_header = gz_full_header(b"x");
        bad_header[30] ^= 0xff; // in the header's CRC-16
        let err = gunzip_err(&bad_header, UnzipLimits::default()).await;
        assert!(err.message().contains("header checksum"), "{err}");

        let err = gunzip_err(b"plain text, not gzip", UnzipLimits::default()).await;
        assert!(err.message().contains("not gzip data"), "{err}");

        let mut bad_flags = good.clone();
        bad_flags[3] = 0x80;
        let err = gunzip_err(&bad_flags, UnzipLimits::default()).await;
        assert!(err.message().contains("reserved flags"), "{err}");

        // Flipping bytes inside the deflate data: some error, never a panic or success.
        for at in [20, 100, 1000, good.len() / 2] {
            let mut flipped = good.clone();
            flipped[at] ^= 0x5a;
            let run = run(chunks(&flipped, &[777]), UnzipLimits::default()).await;
            let err = run.error.expect("corrupt data should fail");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        }
    }

    #[tokio::test]
    async fn gzip_passes_input_errors_through() {
        let compressed = gz(&sample(100_000));
        let input = vec![
            Ok(Bytes::copy_from_slice(&compressed[..1000])),
            Err(Error::new(ErrorKind::Io, "connection reset")),
            Ok(Bytes::copy_from_slice(&compressed[1000..])),
        ];
        let run = run_items(input, UnzipLimits::default()).await;
        let err = run.error.expect("the input's error");
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_eq!(err.message(), "connection reset");
    }

    // --- zip -------------------------------------------------------------

    type Writer = ZipWriter<Cursor<Vec<u8>>>;

    fn build_zip(build: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        build(&mut writer);
        writer.finish().unwrap().into_inner()
    }

    fn deflated() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
    }

    fn stored() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
    }

    fn add(writer: &mut Writer, name: &str, data: &[u8], options: SimpleFileOptions) {
        writer.start_file(name, options).unwrap();
        writer.write_all(data).unwrap();
    }

    /// The archive in a temp dir, expanded into its empty folder `out`.
    struct Expansion {
        _dir: tempfile::TempDir,
        out: PathBuf,
        result: Result<Vec<ExpandedEntry>>,
    }

    fn expand(bytes: &[u8], limits: UnzipLimits) -> Expansion {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive.zip");
        fs::write(&archive, bytes).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let result = expand_zip(&archive, &out, limits, WHAT_ZIP);
        Expansion { _dir: dir, out, result }
    }

    fn out_files(out: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Expands `bytes` and checks it is refused with a message containing
    /// `needle`, and that nothing is left in the output folder.
    fn refused(bytes: &[u8], limits: UnzipLimits, needle: &str) -> Error {
        let expansion = expand(bytes, limits);
        let err = expansion.result.expect_err("the archive should be refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.message().starts_with(WHAT_ZIP), "{err}");
        assert!(err.message().contains(needle), "{err:?} lacks {needle:?}");
        assert!(
            out_files(&expansion.out).is_empty(),
            "left {:?}",
            out_files(&expansion.out)
        );
        err
    }

    fn u16_at(bytes: &[u8], at: usize) -> usize {
        usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
    }

    fn u32_at(bytes: &[u8], at: usize) -> usize {
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
    }

    fn put_u16(bytes: &mut [u8], at: usize, value: u16) {
        bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
    }

    fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// The offsets of each entry's central and local headers, from the end record.
    fn headers(zip: &[u8]) -> Vec<(usize, usize)> {
        let end = zip.len() - 22;
        assert_eq!(&zip[end..end + 4], b"PK\x05\x06");
        let mut at = u32_at(zip, end + 16);
        let mut out = Vec::new();
        for _ in 0..u16_at(zip, end + 10) {
            assert_eq!(&zip[at..at + 4], b"PK\x01\x02");
            out.push((at, u32_at(zip, at + 42)));
            at += 46 + u16_at(zip, at + 28) + u16_at(zip, at + 30) + u16_at(zip, at + 32);
        }
        out
    }

    /// Rewrites entry `index`'s name (same length) in both its headers.
    fn rename(zip: &mut [u8], index: usize, name: &[u8]) {
        let (central, local) = headers(zip)[index];
        assert_eq!(u16_at(zip, central + 28), name.len());
        zip[central + 46..central + 46 + name.len()].copy_from_slice(name);
        zip[local + 30..local + 30 + name.len()].copy_from_slice(name);
    }

    #[test]
    fn zip_expands_nested_folders_with_their_paths() {
        let big = sample(200_000);
        let bytes = build_zip(|w| {
            w.add_directory("docs/", stored()).unwrap();
            w.add_directory("docs/deep/", stored()).unwrap();
            add(w, "docs/deep/b.txt", &big, deflated());
            add(w, "top.txt", b"top", stored());
            add(w, "docs/empty.txt", b"", deflated());
            add(w, "./docs\\win.txt", b"backslashes", deflated());
        });
        let expansion = expand(&bytes, UnzipLimits::default());
        let entries = expansion.result.unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["docs/deep/b.txt", "top.txt", "docs/empty.txt", "docs/win.txt"]);
        let contents: [&[u8]; 4] = [&big, b"top", b"", b"backslashes"];
        for (i, (entry, content)) in entries.iter().zip(contents).enumerate() {
            assert_eq!(entry.file, expansion.out.join(i.to_string()));
            assert_eq!(entry.size, content.len() as u64);
            assert!(fs::read(&entry.file).unwrap() == content, "{}", entry.name);
        }
        assert_eq!(out_files(&expansion.out), ["0", "1", "2", "3"]);
    }

    #[test]
    fn zip_empty_archive_gives_no_entries() {
        let bytes = build_zip(|_| {});
        assert_eq!(&bytes[..4], b"PK\x05\x06");
        assert_eq!(sniff(&bytes, None), Compression::Zip);
        let expansion = expand(&bytes, UnzipLimits::default());
        assert!(expansion.result.unwrap().is_empty());
        assert!(out_files(&expansion.out).is_empty());
    }

    fn ten_mb_limit() -> UnzipLimits {
        UnzipLimits {
            max_expanded_bytes: 10 * MB as u64,
            max_ratio: 1_000_000,
            ..UnzipLimits::default()
        }
    }

    fn zeros_zip(zeros: usize) -> Vec<u8> {
        let piece = vec![0u8; MB];
        build_zip(|w| {
            add(w, "first.txt", b"a small file before the bomb", deflated());
            w.start_file("bomb.bin", deflated()).unwrap();
            for _ in 0..zeros / MB {
                w.write_all(&piece).unwrap();
            }
        })
    }

    #[test]
    fn zip_bomb_is_refused_by_its_declared_size() {
        refused(
            &zeros_zip(50 * MB),
            ten_mb_limit(),
            "zip expands past the limit of 9.5 MiB",
        );
    }

    #[test]
    fn zip_bomb_lying_about_its_size_fails_while_expanding_and_leaves_nothing() {
        let mut bytes = zeros_zip(50 * MB);
        let (central, local) = headers(&bytes)[1];
        put_u32(&mut bytes, central + 24, 1000);
        put_u32(&mut bytes, local + 22, 1000);
        // Checked before expanding: the declared sizes pass.
        let err = refused(&bytes, ten_mb_limit(), "zip entry \"bomb.bin\" is corrupt");
        assert!(err.message().contains("declared"), "{err}");
    }

    #[test]
    fn zip_ratio_bomb_is_refused() {
        refused(
            &zeros_zip(5 * MB),
            UnzipLimits::default(),
            "zip expands past 100 times its compressed size",
        );
    }

    #[test]
    fn zip_small_archive_is_not_refused_for_ratio() {
        let bytes = build_zip(|w| add(w, "zeros", &[0; 50_000], deflated()));
        assert!(bytes.len() * 20 < 50_000);
        assert_eq!(expand(&bytes, UnzipLimits::default()).result.unwrap()[0].size, 50_000);
    }

    #[test]
    fn zip_slip_is_refused() {
        for name in ["../../etc/x", "a/../../x", "a/..", "..\\..\\x", "ok/..\\x"] {
            let bytes = build_zip(|w| {
                add(w, "fine.txt", b"fine", stored());
                add(w, name, b"evil", stored());
            });
            let err = refused(&bytes, UnzipLimits::default(), "escapes the archive");
            assert!(err.message().contains(&format!("\"{name}\"")), "{err}");
        }
    }

    #[test]
    fn zip_absolute_paths_are_refused() {
        for name in ["/etc/x", "C:\\x", "c:x", "\\\\server\\x", "\\x"] {
            let bytes = build_zip(|w| add(w, name, b"evil", stored()));
            let err = refused(&bytes, UnzipLimits::default(), "absolute path");
            assert!(err.message().contains(&format!("\"{name}\"")), "{err}");
        }
    }

    #[test]
    fn zip_control_characters_are_refused_and_escaped() {
        let mut bytes = build_zip(|w| add(w, "a_b", b"x", stored()));
        rename(&mut bytes, 0, b"a\0b");
        let err = refused(&bytes, UnzipLimits::default(), "NUL character");
        assert!(err.message().contains("\"a\\u{0}b\""), "{err}");
        rename(&mut bytes, 0, b"a\x1bb");
        let err = refused(&bytes, UnzipLimits::default(), "control character");
        assert!(err.message().contains("\"a\\u{1b}b\""), "{err}");
    }

    #[test]
    fn zip_symlink_is_refused() {
        let bytes = build_zip(|w| {
            add(w, "fine.txt", b"fine", stored());
            w.add_symlink("link", "/etc/passwd", stored()).unwrap();
        });
        refused(&bytes, UnzipLimits::default(), "\"link\" is a symbolic link");
    }

    #[test]
    fn zip_encrypted_entry_is_refused() {
        let bytes = build_zip(|w| {
            let options = deflated().with_aes_encryption(zip::AesMode::Aes256, "secret");
            add(w, "secret.txt", b"hidden", options);
        });
        refused(&bytes, UnzipLimits::default(), "\"secret.txt\" is encrypted");
    }

    #[test]
    fn zip_unsupported_method_is_refused() {
        let mut bytes = build_zip(|w| add(w, "data.bin", b"data", stored()));
        let (central, local) = headers(&bytes)[0];
        put_u16(&mut bytes, central + 10, 12); // bzip2
        put_u16(&mut bytes, local + 8, 12);
        refused(
            &bytes,
            UnzipLimits::default(),
            "\"data.bin\" uses the compression method",
        );
    }

    #[test]
    fn zip_duplicate_names_are_refused() {
        let mut bytes = build_zip(|w| {
            add(w, "a.txt", b"one", stored());
            add(w, "b.txt", b"two", stored());
        });
        rename(&mut bytes, 1, b"a.txt");
        refused(&bytes, UnzipLimits::default(), "two entries of the same name");
        let bytes = build_zip(|w| {
            add(w, "dir/a.txt", b"one", stored());
            add(w, "dir//a.txt", b"two", stored());
        });
        refused(&bytes, UnzipLimits::default(), "same path as another entry");
    }

    #[test]
    fn zip_bad_checksum_fails_and_leaves_nothing() {
        let mut bytes = build_zip(|w| {
            add(w, "first.txt", b"first", stored());
            add(w, "second.txt", b"second", stored());
        });
        let (_, local) = headers(&bytes)[1];
        let data = local + 30 + "second.txt".len();
        assert_eq!(&bytes[data..data + 6], b"second");
        bytes[data] = b'S';
        let err = refused(&bytes, UnzipLimits::default(), "\"second.txt\" is corrupt");
        assert!(err.message().contains("checksum"), "{err}");
    }

    #[test]
    fn zip_truncated_or_garbage_is_refused() {
        let bytes = build_zip(|w| {
            add(w, "a.txt", &sample(10_000), deflated());
            add(w, "b.txt", &sample(10_000), deflated());
        });
        let needle = "not a readable zip archive (truncated or corrupt)";
        refused(&bytes[..bytes.len() / 2], UnzipLimits::default(), needle);
        refused(&bytes[..bytes.len() - 1], UnzipLimits::default(), needle);
        refused(b"PK\x03\x04 and then nothing", UnzipLimits::default(), needle);
        refused(b"", UnzipLimits::default(), needle);
    }

    #[test]
    fn zip_with_too_many_entries_is_refused() {
        let bytes = build_zip(|w| {
            for i in 0..11 {
                add(w, &format!("f{i}"), b"x", stored());
            }
        });
        let limits = UnzipLimits {
            max_entries: 10,
            ..UnzipLimits::default()
        };
        refused(&bytes, limits, "zip has 11 entries, more than the limit of 10");
        let limits = UnzipLimits {
            max_entries: 11,
            ..UnzipLimits::default()
        };
        assert_eq!(expand(&bytes, limits).result.unwrap().len(), 11);
    }

    /// A deterministic pseudo-random sequence for the mutation tests.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as usize % n.max(1)
        }

        /// `good` with one to four bytes changed, and cut short in one round of five.
        fn mutate(&mut self, good: &[u8], round: usize) -> Vec<u8> {
            let mut bytes = good.to_vec();
            for _ in 0..1 + self.below(4) {
                let at = self.below(bytes.len());
                bytes[at] = self.below(256) as u8;
            }
            if round.is_multiple_of(5) {
                bytes.truncate(self.below(bytes.len()));
            }
            bytes
        }
    }

    #[test]
    fn zip_mutations_never_panic_nor_leave_files() {
        let good = build_zip(|w| {
            w.add_directory("d/", stored()).unwrap();
            add(w, "d/a.txt", &sample(3000), deflated());
            add(w, "b.txt", b"stored bytes", stored());
        });
        let mut rng = Lcg(1);
        for round in 0..FUZZ_ROUNDS {
            let bytes = rng.mutate(&good, round);
            let expansion = expand(&bytes, UnzipLimits::default());
            match expansion.result {
                Ok(entries) => assert_eq!(out_files(&expansion.out).len(), entries.len()),
                Err(err) => {
                    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
                    assert!(out_files(&expansion.out).is_empty(), "round {round}: {err}");
                }
            }
        }
    }

    #[tokio::test]
    async fn gzip_mutations_never_panic() {
        let mut good = gz(&sample(20_000));
        good.extend(gz_full_header(b"second"));
        let mut rng = Lcg(2);
        for round in 0..FUZZ_ROUNDS {
            let bytes = rng.mutate(&good, round);
            let size = 1 + rng.below(300);
            let run = run(chunks(&bytes, &[size]), UnzipLimits::default()).await;
            if let Some(err) = run.error {
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            }
        }
    }

    /// Rounds of the mutation tests.
    const FUZZ_ROUNDS: usize = 500;

    // --- sniff -----------------------------------------------------------

    #[test]
    fn sniff_tells_gzip_zip_and_plain() {
        let zip_head = b"PK\x03\x04\x14\x00";
        assert_eq!(sniff(&[0x1f, 0x8b, 0x08, 0], None), Compression::Gzip);
        assert_eq!(sniff(&[0x1f, 0x8b, 0x08], Some("text/plain")), Compression::Gzip);
        assert_eq!(sniff(&[0x1f, 0x8b, 0x07], None), Compression::Plain);
        assert_eq!(sniff(&[0x1f], None), Compression::Plain);
        assert_eq!(sniff(b"", None), Compression::Plain);
        assert_eq!(sniff(b"hello", None), Compression::Plain);
        assert_eq!(sniff(zip_head, None), Compression::Zip);
        assert_eq!(sniff(b"PK\x05\x06", Some("application/zip")), Compression::Zip);
        assert_eq!(sniff(b"PK\x01\x02", None), Compression::Plain);
        for ct in [
            "application/zip",
            "Application/ZIP; charset=binary",
            "application/x-zip-compressed",
            "application/x-zip",
            "application/octet-stream",
            "multipart/x-zip",
            " application/zip ;x=y",
            "",
        ] {
            assert_eq!(sniff(zip_head, Some(ct)), Compression::Zip, "{ct}");
        }
        for ct in [
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/java-archive",
            "application/epub+zip",
            "text/plain",
        ] {
            assert_eq!(sniff(zip_head, Some(ct)), Compression::Plain, "{ct}");
        }
    }

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(1), "1 byte");
        assert_eq!(human_bytes(1023), "1023 bytes");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn printable_escapes_and_cuts() {
        assert_eq!(printable("a\u{202e}b\nc"), "a\\u{202e}b\\u{a}c");
        let long = "x".repeat(500);
        assert_eq!(printable(&long).chars().count(), 201);
    }
}
