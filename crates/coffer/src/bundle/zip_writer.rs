//! A push-style streaming ZIP encoder that produces bytes and does no I/O.
//!
//! Bundles stream into one zip object while their resources arrive. The caller
//! knows each entry's CRC-32 and sizes before writing it (the resource is
//! spooled, and deflated first when worth it), so every local header carries
//! the real values and no data descriptors are needed. The caller writes
//! [`ZipWriter::entry_header`], then exactly `compressed_size` bytes of data,
//! for each entry, and [`ZipWriter::finish`] once at the end.
//!
//! The layout follows APPNOTE 6.3.x: UTF-8 names (flag bit 11), Unix
//! attributes, DOS time plus an extended-timestamp extra (0x5455), and ZIP64
//! (extra 0x0001, end record and locator) only where a value does not fit.

/// Signature of a local file header.
const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
/// Signature of a central directory file header.
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
/// Signature of the classic end of central directory record.
const EOCD_SIG: u32 = 0x0605_4b50;
/// Signature of the ZIP64 end of central directory record.
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
/// Signature of the ZIP64 end of central directory locator.
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;

/// Version needed to extract: 2.0 (deflate, the baseline we declare).
const VERSION_NEEDED_DEFAULT: u16 = 20;
/// Version needed to extract when the entry or archive uses ZIP64: 4.5.
const VERSION_NEEDED_ZIP64: u16 = 45;
/// Version made by: host system Unix (3) in the high byte, APPNOTE 6.3 in the low byte.
const VERSION_MADE_BY: u16 = (3 << 8) | 63;
/// General purpose flag bit 11: name (and comment) are UTF-8.
const FLAG_UTF8: u16 = 1 << 11;
/// External attributes of a regular file with mode 0644, Unix style.
const EXTERNAL_ATTRS_FILE: u32 = 0o100_644 << 16;

/// Header id of the ZIP64 extended information extra field.
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// Header id of the Info-ZIP extended timestamp extra field.
const TIMESTAMP_EXTRA_ID: u16 = 0x5455;
/// Extended timestamp flags: only the modification time is present.
const TIMESTAMP_FLAG_MTIME: u8 = 1;

/// The 32-bit "see the ZIP64 extra" marker, and the first value that needs it.
const U32_MARKER: u32 = u32::MAX;
/// The 16-bit "see the ZIP64 end record" marker for entry counts.
const U16_MARKER: u16 = u16::MAX;
/// Size of the ZIP64 end record after its signature and size fields.
const ZIP64_EOCD_REMAINING: u64 = 44;

/// 1980-01-01 00:00:00 UTC, the earliest DOS timestamp.
const DOS_MIN_UNIX_SECS: i64 = 315_532_800;
/// 2107-12-31 23:59:58 UTC, the latest DOS timestamp.
const DOS_MAX_UNIX_SECS: i64 = 4_354_819_198;
/// Seconds in a day.
const SECS_PER_DAY: i64 = 86_400;

/// How an entry's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZipMethod {
    /// Bytes as they are (method 0).
    Stored,
    /// Raw deflate, no zlib or gzip wrapper (method 8).
    Deflated,
}

impl ZipMethod {
    /// The compression method code written in the headers.
    fn code(self) -> u16 {
        match self {
            ZipMethod::Stored => 0,
            ZipMethod::Deflated => 8,
        }
    }
}

/// One entry, its sizes and CRC known before its data is written.
#[derive(Debug, Clone)]
pub(crate) struct ZipEntry {
    /// UTF-8 path with '/' separators, no leading '/'.
    pub(crate) name: String,
    /// How the data is stored.
    pub(crate) method: ZipMethod,
    /// CRC-32 of the uncompressed data.
    pub(crate) crc32: u32,
    /// Bytes the caller writes after the header (== uncompressed for Stored).
    pub(crate) compressed_size: u64,
    /// Size of the data once inflated.
    pub(crate) uncompressed_size: u64,
    /// Modification time, seconds since the Unix epoch (UTC).
    pub(crate) modified_unix_secs: i64,
}

/// Streams a ZIP archive out as bytes: one header per entry, then the directory.
#[derive(Debug, Default)]
pub(crate) struct ZipWriter {
    /// Bytes produced so far, declared entry data included.
    offset: u64,
    /// Entries written so far.
    entries: u64,
    /// The central directory, encoded as entries arrive.
    central: Vec<u8>,
    /// Whether [`ZipWriter::finish`] has run.
    finished: bool,
}

impl ZipWriter {
    /// A writer at offset 0 with no entries.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A writer that believes `offset` bytes were already produced (tests of ZIP64 offsets).
    #[cfg(test)]
    fn starting_at(offset: u64) -> Self {
        Self {
            offset,
            ..Self::default()
        }
    }

    /// The local file header of `entry`; the caller writes it, then exactly
    /// `entry.compressed_size` bytes of data. Advances the writer's offset by both.
    ///
    /// A leading '/' is dropped from the name and a name longer than 65,535 bytes
    /// is cut at a character boundary (the field is 16 bits). After
    /// [`ZipWriter::finish`] this returns an empty vector and records nothing.
    pub(crate) fn entry_header(&mut self, entry: ZipEntry) -> Vec<u8> {
        if self.finished {
            return Vec::new();
        }
        let record = Record::new(&entry, self.offset);
        let local = record.local_header();
        record.append_central_header(&mut self.central);
        self.entries = self.entries.saturating_add(1);
        self.offset = self
            .offset
            .saturating_add(len_u64(local.len()))
            .saturating_add(entry.compressed_size);
        local
    }

    /// The central directory and end records (ZIP64 end record and locator when
    /// needed). Call once, after the last entry; later calls return an empty vector.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        let mut out = std::mem::take(&mut self.central);
        let end = EndOfDirectory {
            entries: self.entries,
            directory_offset: self.offset,
            directory_size: len_u64(out.len()),
        };
        if end.needs_zip64() {
            let zip64_end_offset = end.directory_offset.saturating_add(end.directory_size);
            end.append_zip64_record(&mut out);
            append_zip64_locator(&mut out, zip64_end_offset);
        }
        end.append_classic_record(&mut out);
        self.offset = self.offset.saturating_add(len_u64(out.len()));
        out
    }

    /// Bytes produced so far (headers + declared data, and the directory once finished).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }
}

/// Everything the local and central headers of one entry are made from.
struct Record<'a> {
    /// The name as written (leading '/' dropped, length capped).
    name: &'a str,
    /// Compression method code.
    method: u16,
    /// CRC-32 of the uncompressed data.
    crc32: u32,
    /// Stored data size.
    compressed_size: u64,
    /// Inflated data size.
    uncompressed_size: u64,
    /// Offset of the local header from the start of the archive.
    local_offset: u64,
    /// DOS time field.
    dos_time: u16,
    /// DOS date field.
    dos_date: u16,
    /// Unix mtime for the extended timestamp.
    mtime: u32,
}

impl<'a> Record<'a> {
    /// The record of `entry` whose local header starts at `local_offset`.
    fn new(entry: &'a ZipEntry, local_offset: u64) -> Self {
        let (dos_time, dos_date) = dos_date_time(entry.modified_unix_secs);
        Self {
            name: archive_name(&entry.name),
            method: entry.method.code(),
            crc32: entry.crc32,
            compressed_size: entry.compressed_size,
            uncompressed_size: entry.uncompressed_size,
            local_offset,
            dos_time,
            dos_date,
            mtime: extended_mtime(entry.modified_unix_secs),
        }
    }

    /// Whether a size does not fit its 32-bit slot (the local header then holds both in a ZIP64 extra).
    fn has_large_size(&self) -> bool {
        needs_zip64(self.compressed_size) || needs_zip64(self.uncompressed_size)
    }

    /// Whether any ZIP64 extension is used for this entry, in either header.
    fn uses_zip64(&self) -> bool {
        self.has_large_size() || needs_zip64(self.local_offset)
    }

    /// Version needed to extract, the same in both headers.
    fn version_needed(&self) -> u16 {
        if self.uses_zip64() {
            VERSION_NEEDED_ZIP64
        } else {
            VERSION_NEEDED_DEFAULT
        }
    }

    /// The local file header, name and extra fields included.
    fn local_header(&self) -> Vec<u8> {
        let extra = self.local_extra();
        let mut out = Vec::with_capacity(30 + self.name.len() + extra.len());
        put_u32(&mut out, LOCAL_HEADER_SIG);
        self.put_common_fields(&mut out);
        if self.has_large_size() {
            put_u32(&mut out, U32_MARKER);
            put_u32(&mut out, U32_MARKER);
        } else {
            put_u32(&mut out, classic_u32(self.compressed_size));
            put_u32(&mut out, classic_u32(self.uncompressed_size));
        }
        put_u16(&mut out, len_u16(self.name.len()));
        put_u16(&mut out, len_u16(extra.len()));
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&extra);
        out
    }

    /// Appends the central directory header to `out`.
    fn append_central_header(&self, out: &mut Vec<u8>) {
        let extra = self.central_extra();
        put_u32(out, CENTRAL_HEADER_SIG);
        put_u16(out, VERSION_MADE_BY);
        self.put_common_fields(out);
        put_u32(out, classic_u32(self.compressed_size));
        put_u32(out, classic_u32(self.uncompressed_size));
        put_u16(out, len_u16(self.name.len()));
        put_u16(out, len_u16(extra.len()));
        put_u16(out, 0); // file comment length
        put_u16(out, 0); // disk number start
        put_u16(out, 0); // internal attributes
        put_u32(out, EXTERNAL_ATTRS_FILE);
        put_u32(out, classic_u32(self.local_offset));
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&extra);
    }

    /// The fields both headers share, from "version needed" through the CRC.
    fn put_common_fields(&self, out: &mut Vec<u8>) {
        put_u16(out, self.version_needed());
        put_u16(out, FLAG_UTF8);
        put_u16(out, self.method);
        put_u16(out, self.dos_time);
        put_u16(out, self.dos_date);
        put_u32(out, self.crc32);
    }

    /// Local extra fields: ZIP64 with both sizes when one is large, then the timestamp.
    fn local_extra(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.has_large_size() {
            put_extra(
                &mut out,
                ZIP64_EXTRA_ID,
                &[self.uncompressed_size, self.compressed_size],
            );
        }
        self.put_timestamp_extra(&mut out);
        out
    }

    /// Central extra fields: ZIP64 with only the values whose slot holds the marker, then the timestamp.
    fn central_extra(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let large: Vec<u64> = [self.uncompressed_size, self.compressed_size, self.local_offset]
            .into_iter()
            .filter(|&value| needs_zip64(value))
            .collect();
        if !large.is_empty() {
            put_extra(&mut out, ZIP64_EXTRA_ID, &large);
        }
        self.put_timestamp_extra(&mut out);
        out
    }

    /// The extended timestamp extra with the modification time only (same form in both headers).
    fn put_timestamp_extra(&self, out: &mut Vec<u8>) {
        put_u16(out, TIMESTAMP_EXTRA_ID);
        put_u16(out, 5);
        out.push(TIMESTAMP_FLAG_MTIME);
        put_u32(out, self.mtime);
    }
}

/// The values the end records describe.
struct EndOfDirectory {
    /// Number of entries in the archive.
    entries: u64,
    /// Offset of the first central directory header.
    directory_offset: u64,
    /// Size of the central directory in bytes.
    directory_size: u64,
}

impl EndOfDirectory {
    /// Whether a value does not fit the classic record, so the ZIP64 end record and locator are needed.
    fn needs_zip64(&self) -> bool {
        self.entries >= u64::from(U16_MARKER) || needs_zip64(self.directory_offset) || needs_zip64(self.directory_size)
    }

    /// Appends the ZIP64 end of central directory record.
    fn append_zip64_record(&self, out: &mut Vec<u8>) {
        put_u32(out, ZIP64_EOCD_SIG);
        put_u64(out, ZIP64_EOCD_REMAINING);
        put_u16(out, VERSION_MADE_BY);
        put_u16(out, VERSION_NEEDED_ZIP64);
        put_u32(out, 0); // number of this disk
        put_u32(out, 0); // disk where the central directory starts
        put_u64(out, self.entries); // entries on this disk
        put_u64(out, self.entries); // entries in total
        put_u64(out, self.directory_size);
        put_u64(out, self.directory_offset);
    }

    /// Appends the classic end record, with markers in the fields that do not fit.
    fn append_classic_record(&self, out: &mut Vec<u8>) {
        let entries = u16::try_from(self.entries).unwrap_or(U16_MARKER);
        put_u32(out, EOCD_SIG);
        put_u16(out, 0); // number of this disk
        put_u16(out, 0); // disk where the central directory starts
        put_u16(out, entries); // entries on this disk
        put_u16(out, entries); // entries in total
        put_u32(out, classic_u32(self.directory_size));
        put_u32(out, classic_u32(self.directory_offset));
        put_u16(out, 0); // comment length
    }
}

/// Appends the ZIP64 end of central directory locator pointing at `zip64_end_offset`.
fn append_zip64_locator(out: &mut Vec<u8>, zip64_end_offset: u64) {
    put_u32(out, ZIP64_LOCATOR_SIG);
    put_u32(out, 0); // disk with the ZIP64 end record
    put_u64(out, zip64_end_offset);
    put_u32(out, 1); // total number of disks
}

/// Appends an extra field made of little-endian 64-bit values.
fn put_extra(out: &mut Vec<u8>, id: u16, values: &[u64]) {
    put_u16(out, id);
    put_u16(out, len_u16(values.len() * 8));
    for &value in values {
        put_u64(out, value);
    }
}

/// Whether `value` cannot go in a 32-bit field (0xFFFFFFFF itself is the marker).
fn needs_zip64(value: u64) -> bool {
    value >= u64::from(U32_MARKER)
}

/// The 32-bit field for `value`: the value, or the marker when it does not fit.
fn classic_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(U32_MARKER)
}

/// A buffer length as a 16-bit field (callers keep lengths in range).
fn len_u16(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// A buffer length as u64.
fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// Appends a little-endian u16.
fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a little-endian u32.
fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a little-endian u64.
fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// The name as written: no leading '/', at most 65,535 bytes, cut at a character boundary.
fn archive_name(name: &str) -> &str {
    let name = name.trim_start_matches('/');
    let end = name.floor_char_boundary(usize::from(u16::MAX));
    name.get(..end).unwrap_or_default()
}

/// The mtime for the extended timestamp: unsigned 32-bit seconds, clamped to 1970..2106.
fn extended_mtime(unix_secs: i64) -> u32 {
    u32::try_from(unix_secs.max(0)).unwrap_or(u32::MAX)
}

/// DOS (time, date) fields of `unix_secs` in UTC, clamped to 1980-01-01..2107-12-31.
fn dos_date_time(unix_secs: i64) -> (u16, u16) {
    let secs = unix_secs.clamp(DOS_MIN_UNIX_SECS, DOS_MAX_UNIX_SECS);
    let (year, month, day) = crate::time::civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let of_day = secs.rem_euclid(SECS_PER_DAY);
    let (hour, minute, second) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    let time = (hour << 11) | (minute << 5) | (second / 2);
    let date = ((year - 1980) << 9) | (month << 5) | day;
    (u16::try_from(time).unwrap_or(0), u16::try_from(date).unwrap_or(0))
}

/// Whether a resource is already compressed and so should be Stored, not deflated.
///
/// The content type decides when it is known and specific; when it is missing,
/// empty or a generic `application/octet-stream`, the file extension of `name`
/// decides. PDF counts as compressed: its streams are nearly always Flate- or
/// DCT-encoded already, so deflate saves a few percent at best for a full pass
/// of CPU, and a Stored PDF stays readable in place with a range request.
pub(crate) fn is_precompressed(content_type: Option<&str>, name: &str) -> bool {
    let essence = content_type.map(media_type_essence).unwrap_or_default();
    if is_generic_media_type(&essence) {
        has_compressed_extension(name)
    } else {
        is_compressed_media_type(&essence)
    }
}

/// The lowercase `type/subtype` of a content type, parameters dropped.
fn media_type_essence(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or_default();
    essence.trim().to_ascii_lowercase()
}

/// Whether a media type says nothing about the content, so the extension decides.
fn is_generic_media_type(essence: &str) -> bool {
    matches!(essence, "" | "application/octet-stream" | "binary/octet-stream")
}

/// Whether a (lowercase) media type names an already compressed format.
fn is_compressed_media_type(essence: &str) -> bool {
    if let Some(subtype) = essence.strip_prefix("image/") {
        return !matches!(subtype, "svg+xml" | "bmp" | "x-bmp" | "x-ms-bmp");
    }
    if essence.starts_with("audio/") || essence.starts_with("video/") {
        return true;
    }
    // Zip packages: OOXML (docx, xlsx, pptx), OpenDocument, EPUB and other `+zip` types.
    if essence.starts_with("application/vnd.openxmlformats-officedocument.")
        || essence.starts_with("application/vnd.oasis.opendocument.")
        || essence.ends_with("+zip")
        || essence.ends_with("+gzip")
    {
        return true;
    }
    matches!(
        essence,
        "application/gzip"
            | "application/x-gzip"
            | "application/zip"
            | "application/x-zip-compressed"
            | "application/x-bzip"
            | "application/x-bzip2"
            | "application/x-xz"
            | "application/zstd"
            | "application/x-zstd"
            | "application/x-7z-compressed"
            | "application/vnd.rar"
            | "application/x-rar"
            | "application/x-rar-compressed"
            | "application/x-brotli"
            | "application/java-archive"
            | "application/vnd.android.package-archive"
            | "application/pdf"
            | "font/woff"
            | "font/woff2"
            | "application/font-woff"
    )
}

/// File extensions (lowercase) of already compressed formats.
#[rustfmt::skip]
const COMPRESSED_EXTENSIONS: &[&str] = &[
    // Archives and compressed streams.
    "gz", "tgz", "zip", "bz2", "tbz2", "xz", "txz", "zst", "7z", "rar", "br", "lz4",
    // Images.
    "jpg", "jpeg", "png", "gif", "webp", "avif", "heic", "jxl",
    // Audio and video.
    "mp3", "mp4", "m4a", "m4v", "mov", "mkv", "webm", "ogg", "opus", "flac", "aac",
    // Fonts and PDF.
    "woff", "woff2", "pdf",
    // Zip packages.
    "docx", "xlsx", "pptx", "odt", "ods", "odp", "jar", "epub", "apk", "whl",
];

/// Whether the file extension of `name` (case-insensitive) names an already compressed format.
fn has_compressed_extension(name: &str) -> bool {
    let file_name = name.rsplit('/').next().unwrap_or_default();
    let Some((_, extension)) = file_name.rsplit_once('.') else {
        return false;
    };
    COMPRESSED_EXTENSIONS
        .iter()
        .any(|known| extension.eq_ignore_ascii_case(known))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Read, Write};

    /// 5 GiB, a size that needs ZIP64.
    const FIVE_GIB: u64 = 5 << 30;
    /// A fixed mtime: 2023-11-14 22:13:20 UTC.
    const MTIME: i64 = 1_700_000_000;

    /// Raw-deflates `data` (no zlib wrapper), as the caller does.
    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// An entry for `data` plus the bytes to write after its header.
    fn entry_for(name: &str, data: &[u8], method: ZipMethod) -> (ZipEntry, Vec<u8>) {
        let body = match method {
            ZipMethod::Stored => data.to_vec(),
            ZipMethod::Deflated => deflate(data),
        };
        let entry = ZipEntry {
            name: name.to_owned(),
            method,
            crc32: crc32fast::hash(data),
            compressed_size: body.len() as u64,
            uncompressed_size: data.len() as u64,
            modified_unix_secs: MTIME,
        };
        (entry, body)
    }

    /// A whole archive of `items`, checking the writer's offset on the way.
    fn build_archive(items: &[(String, Vec<u8>, ZipMethod)]) -> Vec<u8> {
        let mut writer = ZipWriter::new();
        let mut out = Vec::new();
        for (name, data, method) in items {
            let (entry, body) = entry_for(name, data, *method);
            out.extend(writer.entry_header(entry));
            out.extend(body);
            assert_eq!(writer.offset(), out.len() as u64);
        }
        out.extend(writer.finish());
        assert_eq!(writer.offset(), out.len() as u64);
        out
    }

    /// Several stored and deflated entries: empty, nested, UTF-8 named, large and compressible.
    fn mixed_items() -> Vec<(String, Vec<u8>, ZipMethod)> {
        let text = "the quick brown fox jumps over the lazy dog\n"
            .repeat(2000)
            .into_bytes();
        let binary: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        vec![
            ("empty.txt".to_owned(), Vec::new(), ZipMethod::Stored),
            ("empty-deflated.txt".to_owned(), Vec::new(), ZipMethod::Deflated),
            ("a/b/c.txt".to_owned(), b"nested file\n".to_vec(), ZipMethod::Deflated),
            (
                "données/résumé ☃ 日本.txt".to_owned(),
                "héllo wörld ☃\n".as_bytes().to_vec(),
                ZipMethod::Stored,
            ),
            ("big/text.txt".to_owned(), text, ZipMethod::Deflated),
            ("big/binary.bin".to_owned(), binary, ZipMethod::Stored),
        ]
    }

    fn u16_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap())
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    fn u64_at(bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    }

    /// Extra fields as (id, data) pairs.
    fn parse_extra(mut extra: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut fields = Vec::new();
        while !extra.is_empty() {
            let id = u16_at(extra, 0);
            let len = usize::from(u16_at(extra, 2));
            fields.push((id, extra[4..4 + len].to_vec()));
            extra = &extra[4 + len..];
        }
        fields
    }

    /// The data of the extra field `id`, if present.
    fn extra_field(fields: &[(u16, Vec<u8>)], id: u16) -> Option<Vec<u8>> {
        fields
            .iter()
            .find(|(field_id, _)| *field_id == id)
            .map(|(_, data)| data.clone())
    }

    /// A parsed local file header.
    #[derive(Debug)]
    struct Local {
        version_needed: u16,
        flags: u16,
        method: u16,
        crc32: u32,
        compressed: u32,
        uncompressed: u32,
        name: String,
        extra: Vec<(u16, Vec<u8>)>,
        len: usize,
    }

    fn parse_local(bytes: &[u8]) -> Local {
        assert_eq!(u32_at(bytes, 0), LOCAL_HEADER_SIG);
        let name_len = usize::from(u16_at(bytes, 26));
        let extra_len = usize::from(u16_at(bytes, 28));
        Local {
            version_needed: u16_at(bytes, 4),
            flags: u16_at(bytes, 6),
            method: u16_at(bytes, 8),
            crc32: u32_at(bytes, 14),
            compressed: u32_at(bytes, 18),
            uncompressed: u32_at(bytes, 22),
            name: String::from_utf8(bytes[30..30 + name_len].to_vec()).unwrap(),
            extra: parse_extra(&bytes[30 + name_len..30 + name_len + extra_len]),
            len: 30 + name_len + extra_len,
        }
    }

    /// A parsed central directory header.
    #[derive(Debug)]
    struct Central {
        version_made_by: u16,
        version_needed: u16,
        flags: u16,
        compressed: u32,
        uncompressed: u32,
        external_attrs: u32,
        local_offset: u32,
        name: String,
        extra: Vec<(u16, Vec<u8>)>,
    }

    /// Parses the central header at `at`, returning it and the offset after it.
    fn parse_central(bytes: &[u8], at: usize) -> (Central, usize) {
        assert_eq!(u32_at(bytes, at), CENTRAL_HEADER_SIG);
        let name_len = usize::from(u16_at(bytes, at + 28));
        let extra_len = usize::from(u16_at(bytes, at + 30));
        let comment_len = usize::from(u16_at(bytes, at + 32));
        let name_at = at + 46;
        let extra_at = name_at + name_len;
        let central = Central {
            version_made_by: u16_at(bytes, at + 4),
            version_needed: u16_at(bytes, at + 6),
            flags: u16_at(bytes, at + 8),
            compressed: u32_at(bytes, at + 20),
            uncompressed: u32_at(bytes, at + 24),
            external_attrs: u32_at(bytes, at + 38),
            local_offset: u32_at(bytes, at + 42),
            name: String::from_utf8(bytes[name_at..extra_at].to_vec()).unwrap(),
            extra: parse_extra(&bytes[extra_at..extra_at + extra_len]),
        };
        (central, extra_at + extra_len + comment_len)
    }

    /// The classic end record fields at the tail of `tail`: (entries, directory size, directory offset).
    fn parse_classic_end(tail: &[u8]) -> (u16, u32, u32) {
        let at = tail.len() - 22;
        assert_eq!(u32_at(tail, at), EOCD_SIG);
        assert_eq!(u16_at(tail, at + 8), u16_at(tail, at + 10));
        (u16_at(tail, at + 10), u32_at(tail, at + 12), u32_at(tail, at + 16))
    }

    /// The ZIP64 end record before the locator and classic record at the tail of `tail`:
    /// (entries, directory size, directory offset, record offset from the locator).
    fn parse_zip64_end(tail: &[u8]) -> (u64, u64, u64, u64) {
        let locator = tail.len() - 22 - 20;
        assert_eq!(u32_at(tail, locator), ZIP64_LOCATOR_SIG);
        assert_eq!(u32_at(tail, locator + 16), 1);
        let record = locator - 56;
        assert_eq!(u32_at(tail, record), ZIP64_EOCD_SIG);
        assert_eq!(u64_at(tail, record + 4), 44);
        assert_eq!(u16_at(tail, record + 14), VERSION_NEEDED_ZIP64);
        assert_eq!(u64_at(tail, record + 24), u64_at(tail, record + 32));
        (
            u64_at(tail, record + 32),
            u64_at(tail, record + 40),
            u64_at(tail, record + 48),
            u64_at(tail, locator + 8),
        )
    }

    /// Reads every entry of `archive` with the `zip` crate and compares it with `items`.
    fn assert_reads_back(archive: Vec<u8>, items: &[(String, Vec<u8>, ZipMethod)]) {
        let mut zip = zip::ZipArchive::new(Cursor::new(archive)).unwrap();
        assert_eq!(zip.len(), items.len());
        zip.validate_header_consistency().unwrap();
        for (index, (name, data, method)) in items.iter().enumerate() {
            let mut file = zip.by_index(index).unwrap();
            assert_eq!(file.name().unwrap(), name.as_str());
            assert_eq!(file.size(), data.len() as u64);
            assert_eq!(file.crc32(), crc32fast::hash(data));
            let expected_method = match method {
                ZipMethod::Stored => zip::CompressionMethod::Stored,
                ZipMethod::Deflated => zip::CompressionMethod::Deflated,
            };
            assert_eq!(file.compression(), expected_method);
            let mut read = Vec::new();
            file.read_to_end(&mut read).unwrap();
            assert_eq!(&read, data, "{name}");
        }
    }

    #[test]
    fn mixed_entries_read_back_with_the_zip_crate() {
        let items = mixed_items();
        let archive = build_archive(&items);
        assert_reads_back(archive.clone(), &items);

        let mut zip = zip::ZipArchive::new(Cursor::new(archive)).unwrap();
        let file = zip.by_name("a/b/c.txt").unwrap();
        assert_eq!(file.unix_mode(), Some(0o100_644));
        assert_eq!(file.version_made_by(), (6, 3));
        let modified = file.last_modified().unwrap();
        let date = (modified.year(), modified.month(), modified.day());
        let time = (modified.hour(), modified.minute(), modified.second());
        assert_eq!((date, time), ((2023, 11, 14), (22, 13, 20)));
        let mtime = file.extra_data_fields().find_map(|field| match field {
            zip::extra_fields::ExtraField::ExtendedTimestamp(ts) => ts.mod_time(),
            _ => None,
        });
        assert_eq!(mtime, Some(MTIME as u32));
    }

    #[test]
    fn small_archive_has_classic_headers_only() {
        let items = mixed_items();
        let archive = build_archive(&items);
        let (entries, size, offset) = parse_classic_end(&archive);
        assert_eq!(usize::from(entries), items.len());
        assert_eq!(offset as usize + size as usize + 22, archive.len());
        assert!(!archive.windows(4).any(|w| w == ZIP64_EOCD_SIG.to_le_bytes()));

        let local = parse_local(&archive);
        assert_eq!(local.version_needed, VERSION_NEEDED_DEFAULT);
        assert_eq!(local.flags, FLAG_UTF8);
        assert_eq!(local.method, 0);
        assert_eq!(local.name, "empty.txt");
        assert_eq!(local.extra.len(), 1);
        let timestamp = extra_field(&local.extra, TIMESTAMP_EXTRA_ID).unwrap();
        assert_eq!(timestamp[0], TIMESTAMP_FLAG_MTIME);
        assert_eq!(u32_at(&timestamp, 1), MTIME as u32);

        let mut at = offset as usize;
        for (name, _, _) in &items {
            let (central, next) = parse_central(&archive, at);
            assert_eq!(&central.name, name);
            assert_eq!(central.version_made_by, 0x033f);
            assert_eq!(central.version_needed, VERSION_NEEDED_DEFAULT);
            assert_eq!(central.flags, FLAG_UTF8);
            assert_eq!(central.external_attrs, 0o100_644 << 16);
            assert!(extra_field(&central.extra, ZIP64_EXTRA_ID).is_none());
            let local = parse_local(&archive[central.local_offset as usize..]);
            assert_eq!(&local.name, name);
            assert_eq!(local.compressed, central.compressed);
            assert_eq!(local.uncompressed, central.uncompressed);
            at = next;
        }
        assert_eq!(at, offset as usize + size as usize);
    }

    /// `count` tiny stored entries.
    fn many_items(count: u32) -> Vec<(String, Vec<u8>, ZipMethod)> {
        (0..count)
            .map(|i| {
                (
                    format!("d{}/f{i}.txt", i % 97),
                    i.to_string().into_bytes(),
                    ZipMethod::Stored,
                )
            })
            .collect()
    }

    #[test]
    fn more_than_65535_entries_use_zip64_end_records() {
        let count = 65_540;
        let items = many_items(count);
        let archive = build_archive(&items);

        let (entries, size, offset) = parse_classic_end(&archive);
        assert_eq!(entries, U16_MARKER);
        let (entries64, size64, offset64, record_offset) = parse_zip64_end(&archive);
        assert_eq!(entries64, u64::from(count));
        assert_eq!((u64::from(size), u64::from(offset)), (size64, offset64));
        assert_eq!(record_offset, offset64 + size64);
        assert_eq!(archive.len() as u64, record_offset + 56 + 20 + 22);

        assert_reads_back(archive, &items);
    }

    #[test]
    fn end_record_switches_to_zip64_at_the_limits() {
        let end = |entries, directory_offset, directory_size| EndOfDirectory {
            entries,
            directory_offset,
            directory_size,
        };
        assert!(!end(65_534, 0, 0).needs_zip64());
        assert!(end(65_535, 0, 0).needs_zip64());
        assert!(!end(1, 0xFFFF_FFFE, 0).needs_zip64());
        assert!(end(1, 0xFFFF_FFFF, 0).needs_zip64());
        assert!(end(1, 0, 0xFFFF_FFFF).needs_zip64());

        // Only the fields that overflow carry markers in the classic record.
        let mut out = Vec::new();
        end(3, FIVE_GIB, 100).append_classic_record(&mut out);
        assert_eq!(parse_classic_end(&out), (3, 100, U32_MARKER));
    }

    /// A Stored or Deflated entry with declared sizes only.
    fn fake_entry(name: &str, method: ZipMethod, compressed_size: u64, uncompressed_size: u64) -> ZipEntry {
        ZipEntry {
            name: name.to_owned(),
            method,
            crc32: 0x1234_5678,
            compressed_size,
            uncompressed_size,
            modified_unix_secs: MTIME,
        }
    }

    #[test]
    fn five_gib_entry_gets_zip64_sizes_in_both_headers() {
        let mut writer = ZipWriter::new();
        let header = writer.entry_header(fake_entry("huge.bin", ZipMethod::Stored, FIVE_GIB, FIVE_GIB));
        let local = parse_local(&header);
        assert_eq!(local.len, header.len());
        assert_eq!(local.version_needed, VERSION_NEEDED_ZIP64);
        assert_eq!(local.crc32, 0x1234_5678);
        assert_eq!((local.compressed, local.uncompressed), (U32_MARKER, U32_MARKER));
        assert_eq!(local.extra[0].0, ZIP64_EXTRA_ID, "ZIP64 extra comes first");
        let zip64 = extra_field(&local.extra, ZIP64_EXTRA_ID).unwrap();
        assert_eq!(zip64.len(), 16);
        assert_eq!((u64_at(&zip64, 0), u64_at(&zip64, 8)), (FIVE_GIB, FIVE_GIB));
        assert_eq!(writer.offset(), header.len() as u64 + FIVE_GIB);

        let directory_offset = writer.offset();
        let tail = writer.finish();
        let (central, _) = parse_central(&tail, 0);
        assert_eq!(central.version_needed, VERSION_NEEDED_ZIP64);
        assert_eq!((central.compressed, central.uncompressed), (U32_MARKER, U32_MARKER));
        assert_eq!(central.local_offset, 0);
        let zip64 = extra_field(&central.extra, ZIP64_EXTRA_ID).unwrap();
        assert_eq!(zip64.len(), 16, "offset 0 fits, so only the two sizes");
        assert_eq!((u64_at(&zip64, 0), u64_at(&zip64, 8)), (FIVE_GIB, FIVE_GIB));

        // The directory starts past 4 GiB: ZIP64 end records with the real offset.
        let (entries, _, offset) = parse_classic_end(&tail);
        assert_eq!((entries, offset), (1, U32_MARKER));
        let (entries64, size64, offset64, record_offset) = parse_zip64_end(&tail);
        assert_eq!((entries64, offset64), (1, directory_offset));
        assert_eq!(record_offset, directory_offset + size64);
        assert_eq!(writer.offset(), directory_offset + tail.len() as u64);
    }

    #[test]
    fn central_zip64_extra_holds_only_the_overflowing_fields() {
        let mut writer = ZipWriter::new();
        let compressed = 1 << 30;
        let header = writer.entry_header(fake_entry("logs.txt", ZipMethod::Deflated, compressed, FIVE_GIB));
        let local = parse_local(&header);
        assert_eq!(local.method, 8);
        assert_eq!((local.compressed, local.uncompressed), (U32_MARKER, U32_MARKER));
        let zip64 = extra_field(&local.extra, ZIP64_EXTRA_ID).unwrap();
        assert_eq!((u64_at(&zip64, 0), u64_at(&zip64, 8)), (FIVE_GIB, compressed));

        let tail = writer.finish();
        let (central, _) = parse_central(&tail, 0);
        assert_eq!(central.uncompressed, U32_MARKER);
        assert_eq!(u64::from(central.compressed), compressed);
        let zip64 = extra_field(&central.extra, ZIP64_EXTRA_ID).unwrap();
        assert_eq!(zip64.len(), 8);
        assert_eq!(u64_at(&zip64, 0), FIVE_GIB);
        let (entries, _, _) = parse_classic_end(&tail);
        assert_eq!(entries, 1);
        assert!(!tail.windows(4).any(|w| w == ZIP64_EOCD_SIG.to_le_bytes()));
    }

    #[test]
    fn entry_past_4_gib_puts_its_offset_in_the_central_zip64_extra() {
        // Either start high, or follow a (declared) 5 GiB entry: both must agree.
        for (mut writer, first) in [(ZipWriter::starting_at(FIVE_GIB), false), (ZipWriter::new(), true)] {
            if first {
                let _ = writer.entry_header(fake_entry("huge.bin", ZipMethod::Stored, FIVE_GIB, FIVE_GIB));
            }
            let offset = writer.offset();
            assert!(offset >= FIVE_GIB);
            let (entry, _) = entry_for("late.txt", b"late entry\n", ZipMethod::Deflated);
            let header = writer.entry_header(entry);
            let local = parse_local(&header);
            assert_eq!(local.version_needed, VERSION_NEEDED_ZIP64);
            assert!(
                extra_field(&local.extra, ZIP64_EXTRA_ID).is_none(),
                "sizes fit: no local ZIP64 extra"
            );

            let tail = writer.finish();
            let mut at = 0;
            if first {
                at = parse_central(&tail, 0).1;
            }
            let (central, _) = parse_central(&tail, at);
            assert_eq!(central.name, "late.txt");
            assert_eq!(central.version_needed, VERSION_NEEDED_ZIP64);
            assert_eq!(central.local_offset, U32_MARKER);
            assert_ne!(central.compressed, U32_MARKER);
            assert_ne!(central.uncompressed, U32_MARKER);
            let zip64 = extra_field(&central.extra, ZIP64_EXTRA_ID).unwrap();
            assert_eq!(zip64.len(), 8, "only the offset");
            assert_eq!(u64_at(&zip64, 0), offset);
            assert_eq!(central.extra.len(), 2, "ZIP64 then the timestamp");
            assert_eq!(central.extra[1].0, TIMESTAMP_EXTRA_ID);
        }
    }

    #[test]
    fn dos_date_time_converts_and_clamps() {
        // 2023-11-14 22:13:20 UTC.
        let (time, date) = dos_date_time(MTIME);
        assert_eq!(time, (22 << 11) | (13 << 5) | 10);
        assert_eq!(date, ((2023 - 1980) << 9) | (11 << 5) | 14);
        // Odd seconds round down; a leap day.
        let (time, date) = dos_date_time(951_782_399); // 2000-02-28 23:59:59
        assert_eq!(time, (23 << 11) | (59 << 5) | 29);
        assert_eq!(date, (20 << 9) | (2 << 5) | 28);
        assert_eq!(dos_date_time(951_782_400).1, (20 << 9) | (2 << 5) | 29); // 2000-02-29
        // Clamped to the DOS range.
        let earliest = (0, (1 << 5) | 1);
        assert_eq!(dos_date_time(0), earliest);
        assert_eq!(dos_date_time(i64::MIN), earliest);
        let latest = ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31);
        assert_eq!(dos_date_time(DOS_MAX_UNIX_SECS + 1), latest);
        assert_eq!(dos_date_time(i64::MAX), latest);
    }

    #[test]
    fn extended_mtime_clamps_to_unsigned_32_bits() {
        assert_eq!(extended_mtime(MTIME), MTIME as u32);
        assert_eq!(extended_mtime(-5), 0);
        assert_eq!(extended_mtime(3_000_000_000), 3_000_000_000);
        assert_eq!(extended_mtime(i64::MAX), u32::MAX);
    }

    #[test]
    fn names_lose_leading_slashes_and_fit_16_bits() {
        assert_eq!(archive_name("/a/b.txt"), "a/b.txt");
        let long = "é".repeat(40_000); // 80,000 bytes
        let cut = archive_name(&long);
        assert_eq!(cut.len(), 65_534);
        assert!(cut.chars().all(|c| c == 'é'));
        let mut writer = ZipWriter::new();
        let header = writer.entry_header(fake_entry(&long, ZipMethod::Stored, 0, 0));
        assert_eq!(parse_local(&header).name.len(), 65_534);
    }

    #[test]
    fn nothing_is_written_after_finish() {
        let mut writer = ZipWriter::new();
        let (entry, _) = entry_for("a.txt", b"a", ZipMethod::Stored);
        let header = writer.entry_header(entry.clone());
        let tail = writer.finish();
        let end = writer.offset();
        assert_eq!(end, (header.len() + 1 + tail.len()) as u64);
        assert!(writer.finish().is_empty());
        assert!(writer.entry_header(entry).is_empty());
        assert_eq!(writer.offset(), end);
    }

    #[test]
    fn empty_archive_is_valid() {
        let archive = build_archive(&[]);
        assert_eq!(archive.len(), 22);
        assert!(zip::ZipArchive::new(Cursor::new(archive)).unwrap().is_empty());
    }

    #[test]
    fn precompressed_by_content_type() {
        for content_type in [
            "application/gzip",
            "application/x-gzip",
            "application/zip",
            "application/x-bzip2",
            "application/x-xz",
            "application/zstd",
            "application/x-7z-compressed",
            "application/vnd.rar",
            "application/x-brotli",
            "image/jpeg",
            "IMAGE/PNG; charset=binary",
            "image/webp",
            "audio/mpeg",
            "video/mp4",
            "font/woff",
            "font/woff2",
            "application/pdf",
            "application/epub+zip",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ] {
            assert!(is_precompressed(Some(content_type), "x"), "{content_type}");
        }
        for content_type in [
            "text/plain",
            "text/csv; charset=utf-8",
            "application/json",
            "image/svg+xml",
            "image/bmp",
        ] {
            assert!(!is_precompressed(Some(content_type), "x.gz"), "{content_type}");
        }
    }

    #[test]
    fn precompressed_by_extension_when_type_is_unknown() {
        for name in [
            "a.gz",
            "a.tgz",
            "a.zip",
            "a.bz2",
            "a.xz",
            "a.zst",
            "a.7z",
            "a.rar",
            "a.br",
            "a.jpg",
            "A.JPEG",
            "a.png",
            "a.gif",
            "a.webp",
            "a.avif",
            "a.mp3",
            "a.mp4",
            "a.webm",
            "a.ogg",
            "a.woff",
            "a.woff2",
            "a.pdf",
            "a.docx",
            "a.xlsx",
            "a.pptx",
            "a.jar",
            "a.epub",
            "a.odt",
            "dir.d/archive.tar.gz",
        ] {
            assert!(is_precompressed(None, name), "{name}");
            assert!(is_precompressed(Some("application/octet-stream"), name), "{name}");
        }
        for name in [
            "a.txt",
            "a.csv",
            "a.json",
            "dir.zip/readme",
            "noextension",
            "a.svg",
            "a.bmp",
            "a.tar",
        ] {
            assert!(!is_precompressed(None, name), "{name}");
            assert!(!is_precompressed(Some("Application/Octet-Stream"), name), "{name}");
        }
    }

    /// Runs `program args`, or `None` when the program is not installed.
    fn run_tool(program: &str, args: &[&str]) -> Option<std::process::Output> {
        match std::process::Command::new(program).args(args).output() {
            Ok(output) => Some(output),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("{program}: {e}"),
        }
    }

    /// Checks `archive` with Info-ZIP `unzip -t` and Python's `zipfile.testzip`, when installed.
    fn check_with_system_tools(archive: &[u8], label: &str) {
        let path = std::env::temp_dir().join(format!("zip-writer-{label}-{}.zip", std::process::id()));
        std::fs::write(&path, archive).unwrap();
        let path_str = path.to_str().unwrap();

        if let Some(output) = run_tool("unzip", &["-tq", path_str]) {
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "unzip -t {label}: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(stdout.contains("No errors detected"), "unzip -t {label}: {stdout}");
        }
        let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nprint(len(z.infolist()), z.testzip())";
        if let Some(output) = run_tool("python3", &["-c", script, path_str]) {
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "python {label}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(stdout.trim_end().ends_with(" None"), "python testzip {label}: {stdout}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn system_unzip_and_python_accept_the_archive() {
        check_with_system_tools(&build_archive(&mixed_items()), "mixed");
    }

    #[test]
    fn system_unzip_and_python_accept_zip64_end_records() {
        check_with_system_tools(&build_archive(&many_items(65_536)), "many");
    }

    /// CRC-32 of `len` zero bytes, without hashing them all.
    fn crc_of_zeros(len: u64) -> u32 {
        const CHUNK: u64 = 1 << 20;
        assert_eq!(len % CHUNK, 0);
        let mut chunk = crc32fast::Hasher::new();
        chunk.update(&[0; CHUNK as usize]);
        let mut total = crc32fast::Hasher::new();
        for _ in 0..len / CHUNK {
            total.combine(&chunk);
        }
        total.finalize()
    }

    /// A real 5 GiB archive as a sparse file: the data is a hole of zeros.
    /// Slow with the system tools (they read all 5 GiB); run with `--ignored`.
    #[test]
    #[ignore = "writes a 5 GiB sparse file and reads it all with unzip and python"]
    fn sparse_five_gib_archive_reads_back() {
        use std::io::{Seek, SeekFrom};
        let path = std::env::temp_dir().join(format!("zip-writer-sparse-{}.zip", std::process::id()));
        let mut file = std::fs::File::create(&path).unwrap();
        let mut writer = ZipWriter::new();
        let mut huge = fake_entry("huge.bin", ZipMethod::Stored, FIVE_GIB, FIVE_GIB);
        huge.crc32 = crc_of_zeros(FIVE_GIB);
        file.write_all(&writer.entry_header(huge)).unwrap();
        file.seek(SeekFrom::Current(FIVE_GIB as i64)).unwrap();
        let (late, body) = entry_for(
            "late/ünïcode.txt",
            &b"after the hole\n".repeat(100),
            ZipMethod::Deflated,
        );
        file.write_all(&writer.entry_header(late)).unwrap();
        file.write_all(&body).unwrap();
        file.write_all(&writer.finish()).unwrap();
        assert_eq!(file.stream_position().unwrap(), writer.offset());
        drop(file);

        let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(zip.len(), 2);
        {
            let huge = zip.by_name("huge.bin").unwrap();
            assert_eq!((huge.size(), huge.compressed_size()), (FIVE_GIB, FIVE_GIB));
        }
        let mut late = zip.by_name("late/ünïcode.txt").unwrap();
        assert!(late.header_start() > FIVE_GIB);
        let mut text = String::new();
        late.read_to_string(&mut text).unwrap();
        assert_eq!(text, "after the hole\n".repeat(100));
        drop(late);
        drop(zip);

        let path_str = path.to_str().unwrap();
        if let Some(output) = run_tool("unzip", &["-t", path_str]) {
            let stdout = String::from_utf8_lossy(&output.stdout);
            println!("unzip -t: {stdout}");
            assert!(
                output.status.success() && stdout.contains("No errors detected"),
                "{stdout}"
            );
        }
        let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nprint([(i.filename, i.file_size, i.header_offset) for i in z.infolist()], z.testzip())";
        if let Some(output) = run_tool("python3", &["-c", script, path_str]) {
            let stdout = String::from_utf8_lossy(&output.stdout);
            println!("python: {stdout}");
            assert!(
                stdout.trim_end().ends_with(" None"),
                "{stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
}
