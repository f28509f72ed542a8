//! TLS handshake decoder: ClientHello (SNI, ALPN, supported versions, JA3, JA4) and
//! ServerHello (negotiated version, cipher suite).
//!
//! # Input model
//!
//! The caller keeps the in-order bytes of one TCP direction and passes a buffer that starts
//! at a TLS record boundary. Every entry point is stateless: it re-walks the buffer from its
//! start and answers with a [`Parse`]:
//!
//! * [`Parse::Done`]`(msg, n)`: the wanted message; `n` is the length of all the records
//!   that made it up (drop them).
//! * [`Parse::Skip`]`(n)`: the buffer starts with `n` bytes of complete records that do not
//!   start the wanted message (ChangeCipherSpec, alert, application data, heartbeat, or a
//!   handshake message of another type); drop them and call again.
//! * [`Parse::NeedMore`]: the buffer ends before the message (or record) does; wait for
//!   more bytes.
//! * [`Parse::Invalid`]`(e)`: this is not (or no longer) a TLS stream we can decode; count
//!   `e.reason()` and stop looking.
//!
//! A handshake message may be fragmented over several consecutive handshake records; it is
//! reassembled (borrowed when it fits one record, copied once otherwise). SSLv2-format
//! hellos are reported as `Invalid(Error::Sslv2)`: they produce nothing.
//!
//! [`find_client_hello`] locates the first plausible ClientHello record after a cleartext
//! preamble (STARTTLS for SMTP/IMAP/POP3, FTP `AUTH TLS`, PostgreSQL SSLRequest, SOCKS4/5,
//! HTTP CONNECT).
//!
//! # Caps (each named, each hit is reported, never a panic)
//!
//! * [`MAX_RECORD_LEN`]: longest record accepted (2^14 + 2048, TLS 1.2 ciphertext bound).
//! * [`MAX_HANDSHAKE_LEN`]: longest handshake message reassembled (64 KiB) →
//!   [`Error::HandshakeTooLong`].
//! * [`MAX_RECORDS`]: records walked to reassemble one message → [`Error::TooManyRecords`].
//! * [`MAX_EXTENSIONS`]: extensions read from one hello; the rest is ignored and
//!   [`Error::TooManyExtensions`] is put in the hello's `anomaly`.
//! * [`MAX_ALPNS`]: ALPN protocol names kept ([`Error::TooManyAlpns`] as anomaly).
//! * [`MAX_SCAN`]: bytes scanned by [`find_client_hello`].
//!
//! Every other loop (cipher suites, groups, names inside one extension) runs over a slice of
//! a message already bounded by [`MAX_HANDSHAKE_LEN`], so all work and allocation per call
//! is `O(MAX_HANDSHAKE_LEN)`.
//!
//! # Guarantees
//!
//! No `unsafe`, no panics on any input: every read goes through `get`/checked slices and the
//! `tls-parser` combinators (which return errors, not panics). Parsing borrows the caller's
//! buffer; owned data is produced only for the returned summaries (strings) and for a message
//! that spans records (one copy, at most [`MAX_HANDSHAKE_LEN`] bytes).

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::borrow::Cow;

use md5::{Digest as _, Md5};
use sha2::Sha256;
use tls_parser::{
    NamedGroup, TlsCipherSuiteID, TlsExtension, TlsMessageHandshake, TlsVersion,
    parse_tls_client_hello_extension, parse_tls_handshake_client_hello,
    parse_tls_handshake_msg_server_hello, parse_tls_server_hello_extension,
};

/// Longest TLS record accepted (RFC 5246 §6.2.3 ciphertext bound: 2^14 + 2048).
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;
/// Longest handshake message (body, without its 4-byte header) that is reassembled.
pub const MAX_HANDSHAKE_LEN: usize = 64 * 1024;
/// Most records walked to reassemble one handshake message. Generous because some
/// DPI-evasion clients fragment the ClientHello into many tiny records.
pub const MAX_RECORDS: usize = 256;
/// Most extensions read from one hello message.
pub const MAX_EXTENSIONS: usize = 128;
/// Most ALPN protocol names kept from one ClientHello.
pub const MAX_ALPNS: usize = 16;
/// Bytes scanned by [`find_client_hello`] before giving up.
pub const MAX_SCAN: usize = 64 * 1024;

const RECORD_HEADER_LEN: usize = 5;
const HANDSHAKE_HEADER_LEN: usize = 4;
const CONTENT_CCS: u8 = 20;
const CONTENT_HEARTBEAT: u8 = 24;
const CONTENT_HANDSHAKE: u8 = 22;
const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
/// Smallest ClientHello body: version(2) random(32) sid_len(1) cs_len(2) comp_len(1).
const MIN_CLIENT_HELLO_LEN: usize = 38;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;

/// `Random` of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256("HelloRetryRequest").
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Why a buffer could not be decoded, or (in a hello's `anomaly`) what was odd but tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The first record header is not a TLS record (bad content type or version).
    #[error("not a TLS record")]
    NotTls,
    /// An SSLv2-format record (hello); not decoded.
    #[error("SSLv2 record")]
    Sslv2,
    /// A record length above [`MAX_RECORD_LEN`].
    #[error("record longer than {MAX_RECORD_LEN} bytes")]
    RecordTooLong,
    /// A handshake record with no payload (forbidden by RFC 5246 §6.2.1).
    #[error("empty handshake record")]
    EmptyRecord,
    /// A handshake message longer than [`MAX_HANDSHAKE_LEN`].
    #[error("handshake message longer than {MAX_HANDSHAKE_LEN} bytes")]
    HandshakeTooLong,
    /// More than [`MAX_RECORDS`] records for one handshake message.
    #[error("handshake message spread over more than {MAX_RECORDS} records")]
    TooManyRecords,
    /// A non-handshake record arrived in the middle of a fragmented handshake message.
    #[error("non-handshake record inside a fragmented handshake message")]
    Interleaved,
    /// The hello body is malformed (rejected by tls-parser).
    #[error("malformed hello message")]
    Malformed,
    /// A ServerHello with a version whose layout is unknown.
    #[error("ServerHello with unknown version layout")]
    UnknownVersion,
    /// Anomaly: more than [`MAX_EXTENSIONS`] extensions; the rest were ignored.
    #[error("more than {MAX_EXTENSIONS} extensions")]
    TooManyExtensions,
    /// Anomaly: the extension block ends inside an extension.
    #[error("truncated extension block")]
    ExtensionsTruncated,
    /// Anomaly: an extension's content could not be parsed (its type still counts).
    #[error("malformed extension content")]
    BadExtension,
    /// Anomaly: more than [`MAX_ALPNS`] ALPN names; the rest were ignored.
    #[error("more than {MAX_ALPNS} ALPN names")]
    TooManyAlpns,
}

impl Error {
    /// Stable snake_case name, for counters and EVE `anomaly` events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NotTls => "not_tls",
            Error::Sslv2 => "sslv2",
            Error::RecordTooLong => "record_too_long",
            Error::EmptyRecord => "empty_record",
            Error::HandshakeTooLong => "handshake_too_long",
            Error::TooManyRecords => "too_many_records",
            Error::Interleaved => "interleaved_record",
            Error::Malformed => "malformed_hello",
            Error::UnknownVersion => "unknown_version",
            Error::TooManyExtensions => "too_many_extensions",
            Error::ExtensionsTruncated => "extensions_truncated",
            Error::BadExtension => "bad_extension",
            Error::TooManyAlpns => "too_many_alpns",
        }
    }
}

/// Result of one decoding attempt; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse<T> {
    /// The message, and the bytes consumed: all records that made up the message.
    Done(T, usize),
    /// A complete record (or the records of a complete unwanted handshake message) that does
    /// not start the wanted message: drop this many bytes and call again.
    Skip(usize),
    /// The buffer ends before the record or message does.
    NeedMore,
    /// Not decodable; stop looking in this direction.
    Invalid(Error),
}

/// Summary of a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` field of the hello body (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// First `host_name` of the server_name extension; bytes outside printable ASCII are
    /// written `\xNN`. With ECH this is the outer (public) name.
    pub sni: Option<String>,
    /// ALPN protocol names in offered order (escaped like `sni`), at most [`MAX_ALPNS`].
    pub alpns: Vec<String>,
    /// supported_versions extension, offered order, GREASE removed; empty if absent.
    pub supported_versions: Vec<u16>,
    /// JA3 string: `version,ciphers,extensions,groups,point_formats`, decimal, `-`-joined,
    /// GREASE removed.
    pub ja3: String,
    /// MD5 of `ja3`, lowercase hex.
    pub ja3_hash: String,
    /// JA4 fingerprint (FoxIO), transport `t`.
    pub ja4: String,
    /// First non-fatal oddity seen (cap hit, malformed extension), if any.
    pub anomaly: Option<Error>,
}

/// Summary of a ServerHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHello {
    /// Negotiated version: the supported_versions extension if present, else the legacy
    /// version field.
    pub version: u16,
    /// Selected cipher suite.
    pub cipher: u16,
    /// The message is a TLS 1.3 HelloRetryRequest (special `Random`); a second ClientHello
    /// and ServerHello follow.
    pub hello_retry: bool,
    /// First non-fatal oddity seen, if any.
    pub anomaly: Option<Error>,
}

/// GREASE value (RFC 8701): `0x?a?a` with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    let [hi, lo] = v.to_be_bytes();
    hi == lo && lo & 0x0f == 0x0a
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

/// A parsed 5-byte record header.
#[derive(Debug, Clone, Copy)]
struct RecordHeader {
    content_type: u8,
    len: usize,
}

impl RecordHeader {
    /// Reads and validates a header; `Ok(None)` when fewer than 5 bytes are present.
    fn read(buf: &[u8]) -> Result<Option<RecordHeader>, Error> {
        let Some(h) = buf.get(..RECORD_HEADER_LEN) else {
            // An SSLv2 header can be recognised from 3 bytes.
            return if is_sslv2(buf) {
                Err(Error::Sslv2)
            } else {
                Ok(None)
            };
        };
        let (ct, major, minor) = match h {
            [ct, major, minor, _, _] => (*ct, *major, *minor),
            _ => return Ok(None),
        };
        if !(CONTENT_CCS..=CONTENT_HEARTBEAT).contains(&ct) || major != 3 || minor > 4 {
            return Err(if is_sslv2(buf) {
                Error::Sslv2
            } else {
                Error::NotTls
            });
        }
        let len = usize::from(be16(h, 3).unwrap_or(0));
        if len > MAX_RECORD_LEN {
            return Err(Error::RecordTooLong);
        }
        Ok(Some(RecordHeader {
            content_type: ct,
            len,
        }))
    }

    fn total(&self) -> usize {
        RECORD_HEADER_LEN + self.len
    }
}

/// SSLv2 record with a 2-byte header carrying a CLIENT-HELLO (msg type 1) with version 2 or 3.x.
fn is_sslv2(buf: &[u8]) -> bool {
    matches!(buf, [b0, _, 1, 0 | 3, ..] if b0 & 0x80 != 0)
}

/// What the record walk found at the start of the buffer.
enum Walk<'a> {
    Message(Cow<'a, [u8]>, usize),
    Skip(usize),
    NeedMore,
}

/// Walks records from the buffer start and reassembles the first handshake message.
fn walk(buf: &[u8], wanted: u8) -> Result<Walk<'_>, Error> {
    let Some(first) = RecordHeader::read(buf)? else {
        return Ok(Walk::NeedMore);
    };
    if first.content_type != CONTENT_HANDSHAKE {
        return Ok(if buf.len() >= first.total() {
            Walk::Skip(first.total())
        } else {
            Walk::NeedMore
        });
    }
    // The common case: the whole message is in the first record. Borrowed, no fragment list;
    // the answer is the one the walk below gives for it.
    if first.len > 0
        && let Some(payload) = buf.get(RECORD_HEADER_LEN..first.total())
        && let [t, l0, l1, l2, ..] = *payload
    {
        let msg_len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
        let end = HANDSHAKE_HEADER_LEN + msg_len;
        if let Some(body) = payload.get(HANDSHAKE_HEADER_LEN..end) {
            return Ok(if t == wanted {
                Walk::Message(Cow::Borrowed(body), first.total())
            } else {
                Walk::Skip(first.total())
            });
        }
    }
    // Type of the first handshake message, once known. An unwanted message whose records
    // cannot all be walked is skipped one record at a time instead of failing.
    let mut msg_type: Option<u8> = None;
    let skip_first = |msg_type: Option<u8>, e: Error| match msg_type {
        Some(t) if t != wanted => Ok(Walk::Skip(first.total())),
        _ => Err(e),
    };
    let mut frags: Vec<&[u8]> = Vec::new();
    let mut have = 0usize;
    let mut pos = 0usize;
    loop {
        if frags.len() >= MAX_RECORDS {
            return skip_first(msg_type, Error::TooManyRecords);
        }
        let rest = buf.get(pos..).unwrap_or_default();
        let hdr = match RecordHeader::read(rest) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(Walk::NeedMore),
            Err(e) if pos == 0 => return Err(e),
            Err(_) => return skip_first(msg_type, Error::Interleaved),
        };
        if hdr.content_type != CONTENT_HANDSHAKE {
            return skip_first(msg_type, Error::Interleaved);
        }
        if hdr.len == 0 {
            return skip_first(msg_type, Error::EmptyRecord);
        }
        let Some(payload) = rest.get(RECORD_HEADER_LEN..hdr.total()) else {
            return Ok(Walk::NeedMore);
        };
        frags.push(payload);
        have += payload.len();
        pos += hdr.total();
        if have < HANDSHAKE_HEADER_LEN {
            continue;
        }
        let mut head = [0u8; HANDSHAKE_HEADER_LEN];
        for (dst, src) in head
            .iter_mut()
            .zip(frags.iter().flat_map(|f| f.iter()).copied())
        {
            *dst = src;
        }
        let [t, l0, l1, l2] = head;
        msg_type = Some(t);
        let msg_len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
        if msg_len > MAX_HANDSHAKE_LEN {
            return skip_first(msg_type, Error::HandshakeTooLong);
        }
        let end = HANDSHAKE_HEADER_LEN + msg_len;
        if have < end {
            continue;
        }
        if t != wanted {
            return Ok(Walk::Skip(pos));
        }
        let body = match frags.as_slice() {
            [one] => Cow::Borrowed(one.get(HANDSHAKE_HEADER_LEN..end).unwrap_or_default()),
            many => Cow::Owned(
                many.iter()
                    .flat_map(|f| f.iter())
                    .skip(HANDSHAKE_HEADER_LEN)
                    .take(msg_len)
                    .copied()
                    .collect(),
            ),
        };
        return Ok(Walk::Message(body, pos));
    }
}

/// Walks the extension block, calling `f(type, raw_extension_bytes)` for each extension
/// (raw bytes include the 4-byte type/length header). Returns the first anomaly.
fn for_each_extension<'a>(block: &'a [u8], mut f: impl FnMut(u16, &'a [u8])) -> Option<Error> {
    let mut rest = block;
    let mut n = 0usize;
    while !rest.is_empty() {
        if n >= MAX_EXTENSIONS {
            return Some(Error::TooManyExtensions);
        }
        let (Some(t), Some(l)) = (be16(rest, 0), be16(rest, 2)) else {
            return Some(Error::ExtensionsTruncated);
        };
        let end = 4 + usize::from(l);
        let (Some(raw), Some(tail)) = (rest.get(..end), rest.get(end..)) else {
            return Some(Error::ExtensionsTruncated);
        };
        f(t, raw);
        rest = tail;
        n += 1;
    }
    None
}

/// Writes `bytes` as text: printable ASCII kept, anything else as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    // The common case, printable ASCII only, is one copy (`fold`, not `all`: a vector loop).
    let printable = bytes
        .iter()
        .fold(true, |ok, &b| ok & (0x20..0x7f).contains(&b));
    if printable && let Ok(text) = std::str::from_utf8(bytes) {
        return text.to_owned();
    }
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str("\\x");
            push_hex_byte(&mut s, b);
        }
    }
    s
}

const HEX: &[u8; 16] = b"0123456789abcdef";

// The fingerprint strings hold a hundred numbers or more per hello; these writers put bytes
// straight into one buffer per string, without the formatting machinery or a String per
// list.

fn hex_digit(n: u8) -> u8 {
    HEX.get(usize::from(n & 0xf)).copied().unwrap_or(b'0')
}

/// `00` to `ff`, two lowercase hex digits each: one look-up per byte.
// Evaluated at compile time: an index out of bounds would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

fn hex_pair(b: u8) -> [u8; 2] {
    HEX_PAIRS.get(usize::from(b)).copied().unwrap_or([b'0'; 2])
}

fn push_hex_byte(out: &mut String, b: u8) {
    let [hi, lo] = hex_pair(b);
    out.push(char::from(hi));
    out.push(char::from(lo));
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        push_hex_byte(out, b);
    }
}

/// `00` to `99`, two ASCII digits each (the pairs table of integer formatters).
// Evaluated at compile time: an index out of bounds would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
const PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

fn pair(n: u16) -> [u8; 2] {
    PAIRS.get(usize::from(n)).copied().unwrap_or([b'0'; 2])
}

/// Decimal digits of `v`, as `{}` writes them: two digits per table look-up, a fixed-size
/// append per length.
#[inline(always)]
fn push_dec(out: &mut Vec<u8>, v: u16) {
    match v {
        0..=9 => out.push(b'0' + v as u8),
        10..=99 => out.extend_from_slice(&pair(v)),
        100..=999 => {
            let [b, c] = pair(v % 100);
            out.extend_from_slice(&[b'0' + (v / 100) as u8, b, c]);
        }
        1000..=9999 => {
            let ([a, b], [c, d]) = (pair(v / 100), pair(v % 100));
            out.extend_from_slice(&[a, b, c, d]);
        }
        _ => {
            let ([b, c], [d, e]) = (pair(v / 100 % 100), pair(v % 100));
            out.extend_from_slice(&[b'0' + (v / 10000) as u8, b, c, d, e]);
        }
    }
}

/// `v` (at most 99) as two decimal digits, as `{:02}` writes it.
fn push_dec2(out: &mut String, v: usize) {
    let v = v.min(99) as u8;
    out.push(char::from(b'0' + v / 10));
    out.push(char::from(b'0' + v % 10));
}

fn join_dec<I: IntoIterator<Item = u16>>(out: &mut Vec<u8>, it: I) {
    for (i, v) in it.into_iter().enumerate() {
        if i > 0 {
            out.push(b'-');
        }
        push_dec(out, v);
    }
}

/// SHA-256 of a text written in pieces: the JA4 lists are hashed through a small stack
/// buffer instead of being built as Strings first. The digest is that of the whole text,
/// however it was cut.
struct TextHash {
    sha: Sha256,
    buf: [u8; 256],
    len: usize,
}

impl TextHash {
    fn new() -> Self {
        TextHash {
            sha: Sha256::new(),
            buf: [0; 256],
            len: 0,
        }
    }

    fn flush(&mut self) {
        self.sha
            .update(self.buf.get(..self.len).unwrap_or_default());
        self.len = 0;
    }

    /// Appends one byte.
    fn push(&mut self, b: u8) {
        if self.len == self.buf.len() {
            self.flush();
        }
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// `vals` as 4-digit lowercase hex, `,`-joined (the JA4 list form).
    fn hex_list(&mut self, vals: impl IntoIterator<Item = u16>) {
        let item = |v: u16| {
            let [hi, lo] = v.to_be_bytes();
            let ([a, b], [c, d]) = (hex_pair(hi), hex_pair(lo));
            [b',', a, b, c, d]
        };
        let mut vals = vals.into_iter();
        let Some(first) = vals.next() else { return };
        for &b in item(first).get(1..).unwrap_or_default() {
            self.push(b);
        }
        // Then one fixed-size write per value.
        for v in vals {
            if self.len + 5 > self.buf.len() {
                self.flush();
            }
            if let Some(dst) = self.buf.get_mut(self.len..self.len + 5) {
                dst.copy_from_slice(&item(v));
                self.len += 5;
            }
        }
    }

    /// First 12 hex chars of the digest.
    fn push_sha12(mut self, out: &mut String) {
        self.flush();
        let d = self.sha.finalize();
        push_hex(out, d.get(..6).unwrap_or_default());
    }
}

/// JA4 hash part: the first 12 hex chars of SHA-256 of the text `write` produces, or
/// `000000000000` for an empty list (JA4 rule).
fn push_sha12(out: &mut String, empty: bool, write: impl FnOnce(&mut TextHash)) {
    if empty {
        out.push_str("000000000000");
        return;
    }
    let mut h = TextHash::new();
    write(&mut h);
    h.push_sha12(out);
}

/// Raw fields of a ClientHello needed for the fingerprints. The lists tls-parser returns
/// are kept as they are (moved, not copied) unless an extension repeats.
struct Fields<'a> {
    /// Extension types in offered order, GREASE included (at most [`MAX_EXTENSIONS`], the
    /// cap of the extension walk).
    extensions: [u16; MAX_EXTENSIONS],
    n_extensions: usize,
    groups: Vec<NamedGroup>,
    point_formats: &'a [u8],
    sig_algs: Vec<u16>,
    versions: Vec<TlsVersion>,
    has_sni_ext: bool,
    sni: Option<&'a [u8]>,
    alpns: Vec<&'a [u8]>,
    anomaly: Option<Error>,
}

/// Appends `more` to `list`, taking it over when `list` is empty.
fn append<T>(list: &mut Vec<T>, mut more: Vec<T>) {
    if list.is_empty() {
        *list = more;
    } else {
        list.append(&mut more);
    }
}

impl<'a> Fields<'a> {
    fn new() -> Self {
        Fields {
            extensions: [0; MAX_EXTENSIONS],
            n_extensions: 0,
            groups: Vec::new(),
            point_formats: &[],
            sig_algs: Vec::new(),
            versions: Vec::new(),
            has_sni_ext: false,
            sni: None,
            alpns: Vec::new(),
            anomaly: None,
        }
    }

    fn note(&mut self, e: Error) {
        self.anomaly.get_or_insert(e);
    }

    fn extensions(&self) -> &[u16] {
        self.extensions.get(..self.n_extensions).unwrap_or_default()
    }

    fn extension(&mut self, t: u16, raw: &'a [u8]) {
        if let Some(slot) = self.extensions.get_mut(self.n_extensions) {
            *slot = t;
            self.n_extensions += 1;
        }
        if is_grease(t) {
            return;
        }
        if t == EXT_SERVER_NAME {
            self.has_sni_ext = true;
        }
        let Ok((_, ext)) = parse_tls_client_hello_extension(raw) else {
            self.note(Error::BadExtension);
            return;
        };
        match ext {
            TlsExtension::SNI(names) if self.sni.is_none() => {
                self.sni = names.iter().find(|(k, _)| k.0 == 0).map(|(_, n)| *n);
            }
            TlsExtension::ALPN(mut names) => {
                if names.len() > MAX_ALPNS {
                    self.note(Error::TooManyAlpns);
                }
                if self.alpns.is_empty() {
                    names.truncate(MAX_ALPNS);
                    self.alpns = names;
                }
            }
            TlsExtension::EllipticCurves(g) => append(&mut self.groups, g),
            TlsExtension::EcPointFormats(p) => self.point_formats = p,
            TlsExtension::SignatureAlgorithms(s) => append(&mut self.sig_algs, s),
            TlsExtension::SupportedVersions(v) => append(&mut self.versions, v),
            _ => {}
        }
    }
}

fn ja3(legacy_version: u16, ciphers: &[TlsCipherSuiteID], f: &Fields<'_>) -> String {
    // At most 5 digits and a separator per number.
    let numbers = 1 + ciphers.len() + f.n_extensions + f.groups.len() + f.point_formats.len();
    let mut s = Vec::with_capacity(6 * numbers);
    push_dec(&mut s, legacy_version);
    s.push(b',');
    join_dec(
        &mut s,
        ciphers.iter().map(|c| c.0).filter(|c| !is_grease(*c)),
    );
    s.push(b',');
    join_dec(
        &mut s,
        f.extensions().iter().copied().filter(|e| !is_grease(*e)),
    );
    s.push(b',');
    join_dec(
        &mut s,
        f.groups.iter().map(|g| g.0).filter(|g| !is_grease(*g)),
    );
    s.push(b',');
    join_dec(&mut s, f.point_formats.iter().map(|p| u16::from(*p)));
    // Digits and separators only: always valid.
    String::from_utf8(s).unwrap_or_default()
}

fn ja4_version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// JA4 ALPN part: first and last char of the first ALPN value, hex rule for non-alphanumerics.
fn push_ja4_alpn(out: &mut String, first: Option<&[u8]>) {
    let Some((&a, &z)) = first.and_then(|v| Some((v.first()?, v.last()?))) else {
        out.push_str("00");
        return;
    };
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        out.push(char::from(a));
        out.push(char::from(z));
    } else {
        // First and last char of the hex of both bytes.
        out.push(char::from(hex_digit(a >> 4)));
        out.push(char::from(hex_digit(z)));
    }
}

fn ja4(legacy_version: u16, ciphers: &[TlsCipherSuiteID], f: &Fields<'_>) -> String {
    let version = f
        .versions
        .iter()
        .map(|v| v.0)
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(legacy_version);
    let mut sorted_ciphers = Vec::with_capacity(ciphers.len());
    sorted_ciphers.extend(ciphers.iter().map(|c| c.0).filter(|c| !is_grease(*c)));
    let mut ciphers = sorted_ciphers;
    let exts = f.extensions();
    let n_exts = exts.iter().filter(|e| !is_grease(**e)).count();
    // `t13d1516h2_8daaf6152771_e5627efa2ab1`
    let mut out = String::with_capacity(36);
    out.push('t');
    out.push_str(ja4_version(version));
    out.push(if f.has_sni_ext { 'd' } else { 'i' });
    push_dec2(&mut out, ciphers.len());
    push_dec2(&mut out, n_exts);
    push_ja4_alpn(&mut out, f.alpns.first().copied());

    out.push('_');
    ciphers.sort_unstable();
    push_sha12(&mut out, ciphers.is_empty(), |h| {
        h.hex_list(ciphers.iter().copied());
    });

    out.push('_');
    let mut sorted = [0u16; MAX_EXTENSIONS];
    let mut n = 0;
    for &e in exts {
        if !is_grease(e)
            && e != EXT_SERVER_NAME
            && e != EXT_ALPN
            && let Some(slot) = sorted.get_mut(n)
        {
            *slot = e;
            n += 1;
        }
    }
    let sorted = sorted.get_mut(..n).unwrap_or_default();
    sorted.sort_unstable();
    let sigs = || f.sig_algs.iter().copied().filter(|s| !is_grease(*s));
    push_sha12(&mut out, sorted.is_empty(), |h| {
        h.hex_list(sorted.iter().copied());
        if sigs().next().is_some() {
            h.push(b'_');
            h.hex_list(sigs());
        }
    });
    out
}

fn decode_client_hello(body: &[u8]) -> Result<ClientHello, Error> {
    let (_, ch) = parse_tls_handshake_client_hello(body).map_err(|_| Error::Malformed)?;
    let legacy_version = ch.version.0;
    let mut f = Fields::new();
    if let Some(block) = ch.ext
        && let Some(e) = for_each_extension(block, |t, raw| f.extension(t, raw))
    {
        f.note(e);
    }
    let ja3 = ja3(legacy_version, &ch.ciphers, &f);
    let mut ja3_hash = String::with_capacity(32);
    push_hex(&mut ja3_hash, &Md5::digest(ja3.as_bytes()));
    let ja4 = ja4(legacy_version, &ch.ciphers, &f);
    Ok(ClientHello {
        legacy_version,
        sni: f.sni.map(escape),
        alpns: f.alpns.iter().map(|a| escape(a)).collect(),
        supported_versions: f
            .versions
            .iter()
            .map(|v| v.0)
            .filter(|v| !is_grease(*v))
            .collect(),
        ja3,
        ja3_hash,
        ja4,
        anomaly: f.anomaly,
    })
}

fn decode_server_hello(body: &[u8]) -> Result<ServerHello, Error> {
    let legacy = be16(body, 0).ok_or(Error::Malformed)?;
    let is_pre22_draft = legacy == 0x0304 || (legacy >> 8 == 0x7f && legacy != 0x7f12);
    if is_pre22_draft {
        // TLS 1.3 drafts before 22 (and 0x0304 in even earlier drafts): version(2),
        // random(32), cipher(2), extensions. tls-parser only knows draft 18's layout.
        let cipher = be16(body, 34).ok_or(Error::Malformed)?;
        return Ok(ServerHello {
            version: legacy,
            cipher,
            hello_retry: false,
            anomaly: None,
        });
    }
    if !(0x0300..=0x0303).contains(&legacy) && legacy != 0x7f12 {
        return Err(Error::UnknownVersion);
    }
    let (_, msg) = parse_tls_handshake_msg_server_hello(body).map_err(|_| Error::Malformed)?;
    let (random, cipher, ext) = match msg {
        TlsMessageHandshake::ServerHello(sh) => (sh.random, sh.cipher.0, sh.ext),
        TlsMessageHandshake::ServerHelloV13Draft18(sh) => (sh.random, sh.cipher.0, sh.ext),
        _ => return Err(Error::Malformed),
    };
    let mut version = legacy;
    let mut anomaly = None;
    if let Some(block) = ext {
        anomaly = for_each_extension(block, |_, raw| {
            match parse_tls_server_hello_extension(raw) {
                Ok((_, TlsExtension::SupportedVersions(v))) => {
                    if let Some(sel) = v.first() {
                        version = sel.0;
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    anomaly.get_or_insert(Error::BadExtension);
                }
            }
        })
        .or(anomaly);
    }
    Ok(ServerHello {
        version,
        cipher,
        hello_retry: random == HRR_RANDOM.as_slice(),
        anomaly,
    })
}

fn decode<T>(buf: &[u8], wanted: u8, f: impl FnOnce(&[u8]) -> Result<T, Error>) -> Parse<T> {
    match walk(buf, wanted) {
        Ok(Walk::Message(body, n)) => match f(&body) {
            Ok(v) => Parse::Done(v, n),
            Err(e) => Parse::Invalid(e),
        },
        Ok(Walk::Skip(n)) => Parse::Skip(n),
        Ok(Walk::NeedMore) => Parse::NeedMore,
        Err(e) => Parse::Invalid(e),
    }
}

/// Total length (header included) of the non-handshake record (ChangeCipherSpec, alert,
/// application data) whose valid header starts `buf`, or `None`. Such a record can be skipped
/// by its header alone, without buffering its body.
pub fn other_record_len(buf: &[u8]) -> Option<usize> {
    match RecordHeader::read(buf) {
        Ok(Some(h)) if h.content_type != CONTENT_HANDSHAKE => Some(h.total()),
        _ => None,
    }
}

/// Decodes the ClientHello starting at `buf[0]` (a record boundary).
pub fn client_hello(buf: &[u8]) -> Parse<ClientHello> {
    decode(buf, HS_CLIENT_HELLO, decode_client_hello)
}

/// Decodes the ServerHello starting at `buf[0]` (a record boundary). A HelloRetryRequest is
/// returned as a ServerHello with `hello_retry` set.
pub fn server_hello(buf: &[u8]) -> Parse<ServerHello> {
    decode(buf, HS_SERVER_HELLO, decode_server_hello)
}

/// True when `buf` starts with a handshake record header: `0x16 0x03 0x00..=0x04` and a
/// length in `1..=MAX_RECORD_LEN`. Needs the 5 header bytes.
pub fn looks_like_record(buf: &[u8]) -> bool {
    matches!(buf, [CONTENT_HANDSHAKE, 3, 0..=4, _, _, ..])
        && be16(buf, 3).is_some_and(|l| l != 0 && usize::from(l) <= MAX_RECORD_LEN)
}

/// True when a ClientHello record starts at `buf[0]`: a handshake record header, handshake
/// type 1, a body length in `MIN_CLIENT_HELLO_LEN..=MAX_HANDSHAKE_LEN` that is consistent
/// with the record (fits it, or fills it when the message spans records) and a 3.x
/// legacy_version.
fn client_hello_at(buf: &[u8]) -> bool {
    if !looks_like_record(buf) {
        return false;
    }
    let (Some(rec_len), Some(&[ty, l0, l1, l2, major, minor])) =
        (be16(buf, 3).map(usize::from), buf.get(5..11))
    else {
        return false;
    };
    let msg_len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
    ty == HS_CLIENT_HELLO
        && major == 3
        && minor <= 4
        && (MIN_CLIENT_HELLO_LEN..=MAX_HANDSHAKE_LEN).contains(&msg_len)
        && rec_len >= HANDSHAKE_HEADER_LEN
}

/// Offset of the first plausible ClientHello record header in the first [`MAX_SCAN`] bytes
/// of `buf` (see `client_hello_at` for the checks). Used to find TLS after a cleartext
/// preamble (STARTTLS, FTP AUTH TLS, PostgreSQL SSLRequest, SOCKS4/5, HTTP CONNECT).
pub fn find_client_hello(buf: &[u8]) -> Option<usize> {
    let window = buf.get(..MAX_SCAN).unwrap_or(buf);
    memchr::memchr_iter(CONTENT_HANDSHAKE, window)
        .find(|&i| client_hello_at(buf.get(i..).unwrap_or_default()))
}

/// Suricata EVE name of a TLS version (`SSLVersionToString`): "SSLv2", "SSLv3", "TLSv1",
/// "TLS 1.1", "TLS 1.2", "TLS 1.3", "TLS 1.3 draft-NN" (0x7f10..=0x7f1c),
/// "TLS 1.3 draft-<16" (0x7f01..=0x7f0f), "TLS 1.3 draft-NN-fb" (Facebook's 0xfb14/15/16/17/1a),
/// "UNDETERMINED" for 0, and `0x%04x` for anything else.
pub fn version_name(v: u16) -> Cow<'static, str> {
    Cow::Borrowed(match v {
        0x0000 => "UNDETERMINED",
        0x0200 | 0x0002 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv1",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        0x7f01..=0x7f0f => "TLS 1.3 draft-<16",
        0x7f10..=0x7f1c => return Cow::Owned(format!("TLS 1.3 draft-{}", v & 0xff)),
        0xfb14 | 0xfb15 | 0xfb16 | 0xfb17 | 0xfb1a => {
            return Cow::Owned(format!("TLS 1.3 draft-{}-fb", v & 0xff));
        }
        _ => return Cow::Owned(format!("0x{v:04x}")),
    })
}

#[cfg(test)]
mod reference;

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod tests {
    use super::*;

    /// Real ClientHello record (arkime `tls-alpn-h2`, curl to www.cloudflare.com, TLS 1.2,
    /// ALPN h2). Oracle JA3 from tshark; JA4 published by FoxIO for the same capture.
    const CF_HELLO_HEX: &str = concat!(
        "16030100e8010000e40303858226c04fbaeddef4246093b4cfdab38f9dcfef145360e417686575cac49c7000005cc030",
        "c02cc028c024c014c00a009f006b0039cca9cca8ccaaff8500c400880081009d003d003500c00084c02fc02bc027c023",
        "c013c009009e0067003300be0045009c003c002f00ba0041c011c00700050004c012c0080016000a00ff0100005f0000",
        "001700150000127777772e636c6f7564666c6172652e636f6d000b00020100000a00080006001d00170018000d001c00",
        "1a06010603efef0501050304010403eeeeeded03010303020102030010000e000c02683208687474702f312e31",
    );
    const CF_JA3: &str = "771,49200-49196-49192-49188-49172-49162-159-107-57-52393-52392-52394-65413-196-136-129-157-61-53-192-132-49199-49195-49191-49187-49171-49161-158-103-51-190-69-156-60-47-186-65-49169-49159-5-4-49170-49160-22-10-255,0-11-10-13-16,29-23-24,0";
    const CF_JA3_HASH: &str = "3faa4ad39f690c4ef1c3160caa375465";
    const CF_JA4: &str = "t12d4605h2_85626a9a5f7f_aaf95bb78ec9";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn record(ct: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![ct, 3, 1];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn handshake(t: u8, body: &[u8]) -> Vec<u8> {
        let l = (body.len() as u32).to_be_bytes();
        let mut v = vec![t, l[1], l[2], l[3]];
        v.extend_from_slice(body);
        v
    }

    fn ext(t: u16, data: &[u8]) -> Vec<u8> {
        let mut v = t.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    fn u16s(len_bytes: usize, vals: &[u16]) -> Vec<u8> {
        let n = vals.len() * 2;
        let mut v = if len_bytes == 1 {
            vec![n as u8]
        } else {
            (n as u16).to_be_bytes().to_vec()
        };
        for x in vals {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    fn client_body(version: u16, ciphers: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[0x42; 32]);
        b.push(0);
        b.extend(u16s(2, ciphers));
        b.extend_from_slice(&[1, 0]);
        let e: Vec<u8> = exts.concat();
        b.extend_from_slice(&(e.len() as u16).to_be_bytes());
        b.extend(e);
        b
    }

    /// Hand-built hello with GREASE in ciphers, extensions, groups and supported_versions.
    fn grease_hello() -> Vec<u8> {
        let sni = {
            let name = b"example.org";
            let mut e = ((name.len() + 3) as u16).to_be_bytes().to_vec();
            e.push(0);
            e.extend_from_slice(&(name.len() as u16).to_be_bytes());
            e.extend_from_slice(name);
            e
        };
        let alpn = {
            let mut l = vec![2, b'h', b'2', 8];
            l.extend_from_slice(b"http/1.1");
            let mut e = (l.len() as u16).to_be_bytes().to_vec();
            e.extend(l);
            e
        };
        let exts = [
            ext(0x1a1a, &[]),
            ext(0x0000, &sni),
            ext(0x000a, &u16s(2, &[0x2a2a, 0x001d, 0x0017])),
            ext(0x000b, &[1, 0]),
            ext(0x000d, &u16s(2, &[0x0403, 0x0804, 0x0401])),
            ext(0x0010, &alpn),
            ext(0x002b, &u16s(1, &[0x3a3a, 0x0304, 0x0303])),
            ext(0x4a4a, &[0]),
        ];
        let body = client_body(0x0303, &[0x0a0a, 0x1301, 0x1302, 0xc02b, 0x00ff], &exts);
        record(22, &handshake(1, &body))
    }

    fn done<T: std::fmt::Debug>(p: Parse<T>) -> (T, usize) {
        match p {
            Parse::Done(v, n) => (v, n),
            other => panic!("expected Done, got {other:?}"),
        }
    }

    /// The JA4 hash part of a text, through the writer the decoder uses.
    fn sha12(empty: bool, text: &str) -> String {
        let mut s = String::new();
        push_sha12(&mut s, empty, |h| {
            for &b in text.as_bytes() {
                h.push(b);
            }
        });
        s
    }

    fn join_hex(vals: &[u16]) -> String {
        let hex: Vec<String> = vals.iter().map(|v| format!("{v:04x}")).collect();
        hex.join(",")
    }

    fn ja4_alpn(first: Option<&[u8]>) -> String {
        let mut s = String::new();
        push_ja4_alpn(&mut s, first);
        s
    }

    #[test]
    fn decimal_and_hex_writers() {
        for v in (0..=u16::MAX)
            .step_by(7)
            .chain([0, 7, 9, 10, 99, 100, 999, 1000, 4865, 9999, 10000, 65535])
        {
            let mut s = Vec::new();
            push_dec(&mut s, v);
            assert_eq!(s, v.to_string().as_bytes());
        }
        for v in [0usize, 5, 10, 42, 99, 100, 5000] {
            let mut s = String::new();
            push_dec2(&mut s, v);
            assert_eq!(s, format!("{:02}", v.min(99)));
        }
        let mut s = String::new();
        push_hex(&mut s, &[0x00, 0xff, 0x5a]);
        assert_eq!(s, "00ff5a");
    }

    /// The streamed hex list hashes to what the joined text hashes to, also for lists longer
    /// than the writer's buffer.
    #[test]
    fn streamed_hex_list_hash() {
        for n in [1usize, 2, 51, 52, 53, 103, 500, 5000] {
            let vals: Vec<u16> = (0..n).map(|i| (i as u16).wrapping_mul(40_503)).collect();
            let mut streamed = String::new();
            push_sha12(&mut streamed, false, |h| {
                h.hex_list(vals.iter().copied());
                h.push(b'_');
                h.hex_list(vals.iter().copied().rev());
            });
            let text = format!(
                "{}_{}",
                join_hex(&vals),
                join_hex(&vals.iter().copied().rev().collect::<Vec<_>>())
            );
            let d = Sha256::digest(text.as_bytes());
            let want: String = d[..6].iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(streamed, want, "{n} values");
            assert_eq!(sha12(false, &text), want);
        }
        assert_eq!(sha12(true, "anything"), "000000000000");
    }

    #[test]
    fn real_hello_in_one_record() {
        let buf = unhex(CF_HELLO_HEX);
        let (ch, n) = done(client_hello(&buf));
        assert_eq!(n, buf.len());
        assert_eq!(ch.legacy_version, 0x0303);
        assert_eq!(ch.sni.as_deref(), Some("www.cloudflare.com"));
        assert_eq!(ch.alpns, ["h2", "http/1.1"]);
        assert!(ch.supported_versions.is_empty());
        assert_eq!(ch.ja3, CF_JA3);
        assert_eq!(ch.ja3_hash, CF_JA3_HASH);
        assert_eq!(ch.ja4, CF_JA4);
        assert_eq!(ch.anomaly, None);
        assert!(looks_like_record(&buf));
        assert_eq!(find_client_hello(&buf), Some(0));
    }

    /// The same handshake message fragmented over two (and three) handshake records.
    #[test]
    fn real_hello_split_across_records() {
        let buf = unhex(CF_HELLO_HEX);
        let msg = &buf[5..];
        let whole = done(client_hello(&buf)).0;
        for cuts in [vec![2], vec![100], vec![3, 150], vec![msg.len() - 1]] {
            let mut split = Vec::new();
            let mut start = 0;
            for &c in cuts.iter().chain(std::iter::once(&msg.len())) {
                split.extend(record(22, &msg[start..c]));
                start = c;
            }
            let trailing = record(20, &[1]);
            let mut with_ccs = split.clone();
            with_ccs.extend(&trailing);
            let (ch, n) = done(client_hello(&with_ccs));
            assert_eq!(n, split.len(), "cuts {cuts:?}");
            assert_eq!(ch, whole);
            assert_eq!(client_hello(&with_ccs[n..]), Parse::Skip(6));
            // Every proper prefix waits for more.
            for end in 0..split.len() {
                assert_eq!(client_hello(&split[..end]), Parse::NeedMore, "end {end}");
            }
        }
    }

    #[test]
    fn tiny_record_fragmentation() {
        let buf = unhex(CF_HELLO_HEX);
        let whole = done(client_hello(&buf)).0;
        let tiny: Vec<u8> = buf[5..].iter().flat_map(|b| record(22, &[*b])).collect();
        assert_eq!(done(client_hello(&tiny)), (whole, tiny.len()));
        // A message that needs more than MAX_RECORDS records is refused, not buffered forever.
        let mut msg = handshake(1, &[0x03; 1000]);
        msg.truncate(MAX_RECORDS + 10);
        let many: Vec<u8> = msg.iter().flat_map(|b| record(22, &[*b])).collect();
        assert_eq!(client_hello(&many), Parse::Invalid(Error::TooManyRecords));
    }

    #[test]
    fn truncated_needs_more() {
        let buf = unhex(CF_HELLO_HEX);
        for end in 0..buf.len() {
            assert_eq!(client_hello(&buf[..end]), Parse::NeedMore, "end {end}");
        }
        assert_eq!(server_hello(&buf[..3]), Parse::NeedMore);
    }

    #[test]
    fn garbage_is_invalid() {
        assert_eq!(
            client_hello(b"GET / HTTP/1.1\r\n\r\n"),
            Parse::Invalid(Error::NotTls)
        );
        assert_eq!(
            client_hello(&[0x16, 0x02, 0x00, 0, 5, 1, 2, 3, 4, 5]),
            Parse::Invalid(Error::NotTls)
        );
        assert_eq!(
            client_hello(&[0x16, 3, 1, 0xff, 0xff]),
            Parse::Invalid(Error::RecordTooLong)
        );
        assert_eq!(
            client_hello(&[0x16, 3, 1, 0, 0]),
            Parse::Invalid(Error::EmptyRecord)
        );
        // Handshake header claims 16 MiB.
        assert_eq!(
            client_hello(&record(22, &[1, 0xff, 0xff, 0xff, 3, 3])),
            Parse::Invalid(Error::HandshakeTooLong)
        );
        // A ClientHello whose body is garbage.
        assert_eq!(
            client_hello(&record(22, &handshake(1, &[3, 3, 0]))),
            Parse::Invalid(Error::Malformed)
        );
        // SSLv2-format CLIENT-HELLO (2-byte header, msg type 1, version 3.1): nothing produced.
        let v2 = [
            0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
        ];
        assert_eq!(client_hello(&v2), Parse::Invalid(Error::Sslv2));
        assert_eq!(client_hello(&v2[..4]), Parse::Invalid(Error::Sslv2));
        assert_eq!(find_client_hello(&v2), None);
        // Application data between two fragments of one handshake message.
        let buf = unhex(CF_HELLO_HEX);
        let mut bad = record(22, &buf[5..50]);
        bad.extend(record(23, &[0; 8]));
        bad.extend(record(22, &buf[50..]));
        assert_eq!(client_hello(&bad), Parse::Invalid(Error::Interleaved));
    }

    #[test]
    fn skips_other_records_and_messages() {
        let buf = unhex(CF_HELLO_HEX);
        let ccs = record(20, &[1]);
        let mut v = ccs.clone();
        v.extend(&buf);
        assert_eq!(client_hello(&v), Parse::Skip(6));
        assert_eq!(client_hello(&[0x14, 3, 3, 0, 1]), Parse::NeedMore);
        assert_eq!(client_hello(&record(23, &[])), Parse::Skip(5));
        // A ServerHello is a handshake message of another type for client_hello.
        let sh = record(22, &handshake(2, &tls12_server_body()));
        assert_eq!(client_hello(&sh), Parse::Skip(sh.len()));
        // And a ClientHello is skipped by server_hello.
        assert_eq!(server_hello(&buf), Parse::Skip(buf.len()));
    }

    #[test]
    fn grease_removed_from_ja3_ja4_versions() {
        let buf = grease_hello();
        let (ch, n) = done(client_hello(&buf));
        assert_eq!(n, buf.len());
        assert_eq!(ch.sni.as_deref(), Some("example.org"));
        assert_eq!(ch.alpns, ["h2", "http/1.1"]);
        assert_eq!(ch.supported_versions, [0x0304, 0x0303]);
        assert_eq!(ch.ja3, "771,4865-4866-49195-255,0-10-11-13-16-43,29-23,0");
        assert_eq!(ch.ja3_hash, "f8dc1ea5477d8e9e3e383c2e5dae5bd2");
        // Hand-computed from the FoxIO spec:
        //   a = t 13 d 04 06 h2
        //   b = sha256("00ff,1301,1302,c02b")[..12]
        //   c = sha256("000a,000b,000d,002b_0403,0804,0401")[..12]
        assert_eq!(ch.ja4, "t13d0406h2_d71680ff791e_0d385148b956");
        assert_eq!(ch.anomaly, None);
    }

    #[test]
    fn ja4_minimal_hello() {
        // No SNI, no ALPN, no signature algorithms: 'i', "00", and `c` without '_'.
        let exts = [ext(0x0017, &[]), ext(0xff01, &[0])];
        let buf = record(22, &handshake(1, &client_body(0x0302, &[0x002f], &exts)));
        let (ch, _) = done(client_hello(&buf));
        assert_eq!(ch.sni, None);
        assert_eq!(ch.ja3, "770,47,23-65281,,");
        assert_eq!(ch.ja4, "t11i010200_ba72b8082249_5333cdffa7d9");
        // No extensions at all (SSLv3 style): c is all zeros.
        let mut body = client_body(0x0300, &[0x0004], &[]);
        body.truncate(body.len() - 2);
        let (ch, _) = done(client_hello(&record(22, &handshake(1, &body))));
        assert_eq!(ch.ja3, "768,4,,,");
        assert!(ch.ja4.starts_with("ts3i0100"));
        assert!(ch.ja4.ends_with("_000000000000"));
    }

    #[test]
    fn ja4_spec_examples() {
        let ciphers = [
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let mut sorted = ciphers;
        sorted.sort_unstable();
        assert_eq!(sha12(false, &join_hex(&sorted)), "8daaf6152771");
        let exts = "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01";
        let sigs = "0403,0804,0401,0503,0805,0501,0806,0601";
        assert_eq!(sha12(false, &format!("{exts}_{sigs}")), "e5627efa2ab1");
        assert_eq!(sha12(false, exts), "6d807ffa2a79");
        // ALPN rule examples from the spec.
        assert_eq!(ja4_alpn(Some(b"h2")), "h2");
        assert_eq!(ja4_alpn(Some(b"http/1.1")), "h1");
        assert_eq!(ja4_alpn(Some(b"h")), "hh");
        assert_eq!(ja4_alpn(Some(b"")), "00");
        assert_eq!(ja4_alpn(None), "00");
        assert_eq!(ja4_alpn(Some(&[0xab])), "ab");
        assert_eq!(ja4_alpn(Some(&[0xab, 0xcd])), "ad");
        assert_eq!(ja4_alpn(Some(&[0x30, 0xab])), "3b");
        assert_eq!(ja4_alpn(Some(&[0x30, 0x31, 0xab, 0xcd])), "3d");
        assert_eq!(ja4_alpn(Some(&[0x30, 0xab, 0xcd, 0x31])), "01");
    }

    #[test]
    fn sni_bytes_escaped() {
        let name = b"a\x00b\xffc\\";
        let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name);
        let buf = record(
            22,
            &handshake(1, &client_body(0x0303, &[0x1301], &[ext(0, &sni)])),
        );
        let (ch, _) = done(client_hello(&buf));
        assert_eq!(ch.sni.as_deref(), Some("a\\x00b\\xffc\\"));
    }

    #[test]
    fn extension_cap_and_bad_extension_are_anomalies() {
        let exts: Vec<Vec<u8>> = (0..MAX_EXTENSIONS as u16 + 5)
            .map(|i| ext(0x7000 + i, &[]))
            .collect();
        let buf = record(22, &handshake(1, &client_body(0x0303, &[0x1301], &exts)));
        let (ch, _) = done(client_hello(&buf));
        assert_eq!(ch.anomaly, Some(Error::TooManyExtensions));
        assert_eq!(
            ch.ja3.split(',').nth(2).unwrap().split('-').count(),
            MAX_EXTENSIONS
        );
        // Malformed supported_groups content: type still counted in JA3.
        let buf = record(
            22,
            &handshake(1, &client_body(0x0303, &[0x1301], &[ext(10, &[0, 9])])),
        );
        let (ch, _) = done(client_hello(&buf));
        assert_eq!(ch.anomaly, Some(Error::BadExtension));
        assert_eq!(ch.ja3, "771,4865,10,,");
    }

    fn tls12_server_body() -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[0x11; 32]);
        b.push(32);
        b.extend_from_slice(&[0x22; 32]);
        b.extend_from_slice(&[0xc0, 0x2f, 0x00]);
        let e = ext(0xff01, &[0]);
        b.extend_from_slice(&(e.len() as u16).to_be_bytes());
        b.extend(e);
        b
    }

    fn tls13_server_body(random: [u8; 32], key_share: &[u8]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&random);
        b.push(32);
        b.extend_from_slice(&[0x22; 32]);
        b.extend_from_slice(&[0x13, 0x01, 0x00]);
        let e = [ext(0x002b, &[3, 4]), ext(0x0033, key_share)].concat();
        b.extend_from_slice(&(e.len() as u16).to_be_bytes());
        b.extend(e);
        b
    }

    #[test]
    fn server_hello_tls12() {
        let mut buf = record(22, &handshake(2, &tls12_server_body()));
        let sh_len = buf.len();
        // A Certificate message in a following record is not consumed.
        buf.extend(record(22, &handshake(11, &[0, 0, 0])));
        let (sh, n) = done(server_hello(&buf));
        assert_eq!(n, sh_len);
        assert_eq!(
            (sh.version, sh.cipher, sh.hello_retry),
            (0x0303, 0xc02f, false)
        );
        assert_eq!(version_name(sh.version), "TLS 1.2");
    }

    #[test]
    fn server_hello_tls13_and_hrr() {
        let mut ks = vec![0x00, 0x1d, 0x00, 0x20];
        ks.extend_from_slice(&[7; 32]);
        let buf = record(22, &handshake(2, &tls13_server_body([0x33; 32], &ks)));
        let (sh, _) = done(server_hello(&buf));
        assert_eq!(
            (sh.version, sh.cipher, sh.hello_retry),
            (0x0304, 0x1301, false)
        );
        assert_eq!(version_name(sh.version), "TLS 1.3");
        let hrr = record(
            22,
            &handshake(2, &tls13_server_body(HRR_RANDOM, &[0x00, 0x17])),
        );
        let (sh, _) = done(server_hello(&hrr));
        assert_eq!((sh.version, sh.hello_retry), (0x0304, true));
        // Draft-19 layout: version 0x7f13, random, cipher, extensions.
        let mut d = vec![0x7f, 0x13];
        d.extend_from_slice(&[0; 32]);
        d.extend_from_slice(&[0x13, 0x02, 0, 0]);
        let (sh, _) = done(server_hello(&record(22, &handshake(2, &d))));
        assert_eq!((sh.version, sh.cipher), (0x7f13, 0x1302));
        assert_eq!(version_name(sh.version), "TLS 1.3 draft-19");
        // Unknown layout.
        let mut u = vec![0x12, 0x34];
        u.extend_from_slice(&[0; 40]);
        assert_eq!(
            server_hello(&record(22, &handshake(2, &u))),
            Parse::Invalid(Error::UnknownVersion)
        );
    }

    #[test]
    fn hrr_second_client_hello_after_ccs() {
        let first = unhex(CF_HELLO_HEX);
        let mut stream = first.clone();
        stream.extend(record(20, &[1]));
        stream.extend(grease_hello());
        let mut off = 0;
        let mut seen = Vec::new();
        loop {
            match client_hello(&stream[off..]) {
                Parse::Done(ch, n) => {
                    seen.push(ch.sni.unwrap());
                    off += n;
                }
                Parse::Skip(n) => off += n,
                Parse::NeedMore => break,
                Parse::Invalid(e) => panic!("{e}"),
            }
        }
        assert_eq!(seen, ["www.cloudflare.com", "example.org"]);
        assert_eq!(off, stream.len());
    }

    #[test]
    fn find_after_smtp_starttls() {
        // Client direction of a real SMTP STARTTLS exchange (zeek `smtp-starttls`).
        let mut buf = b"EHLO openssl.client.net\r\nSTARTTLS\r\n".to_vec();
        let at = buf.len();
        buf.extend(unhex(CF_HELLO_HEX));
        assert_eq!(find_client_hello(&buf), Some(at));
        assert!(!looks_like_record(&buf));
        let (ch, _) = done(client_hello(&buf[at..]));
        assert_eq!(ch.ja3_hash, CF_JA3_HASH);
        // Only the header so far: not yet found; the caller retries with more bytes.
        assert_eq!(find_client_hello(&buf[..at + 8]), None);
    }

    #[test]
    fn find_after_socks5_and_socks4() {
        // SOCKS5 greeting + CONNECT www.google.com:443 (zeek `tls-in-socks`).
        let mut buf = b"\x05\x01\x00\x05\x01\x00\x03\x0ewww.google.com\x01\xbb".to_vec();
        let at = buf.len();
        buf.extend(unhex(CF_HELLO_HEX));
        assert_eq!(find_client_hello(&buf), Some(at));
        // SOCKS4 CONNECT (arkime `tls-socks-https`), and a PostgreSQL SSLRequest.
        for pre in [
            &b"\x04\x01\x01\xbb]\xb8\xd8w\x00"[..],
            &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f],
        ] {
            let mut buf = pre.to_vec();
            buf.extend(unhex(CF_HELLO_HEX));
            assert_eq!(find_client_hello(&buf), Some(pre.len()));
        }
        assert_eq!(
            find_client_hello(b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00"),
            None
        );
    }

    #[test]
    fn version_names() {
        let cases = [
            (0x0002, "SSLv2"),
            (0x0300, "SSLv3"),
            (0x0301, "TLSv1"),
            (0x0302, "TLS 1.1"),
            (0x0303, "TLS 1.2"),
            (0x0304, "TLS 1.3"),
            (0x7f10, "TLS 1.3 draft-16"),
            (0x7f17, "TLS 1.3 draft-23"),
            (0x7f1c, "TLS 1.3 draft-28"),
            (0x7f05, "TLS 1.3 draft-<16"),
            (0xfb17, "TLS 1.3 draft-23-fb"),
            (0x1234, "0x1234"),
            (0x0000, "UNDETERMINED"),
        ];
        for (v, name) in cases {
            assert_eq!(version_name(v), name, "{v:#06x}");
        }
        assert_eq!(Error::Interleaved.reason(), "interleaved_record");
    }

    /// Several hundred thousand random and mutated inputs into every public function.
    #[test]
    fn no_panic_on_hostile_input() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [
            unhex(CF_HELLO_HEX),
            grease_hello(),
            record(22, &handshake(2, &tls12_server_body())),
            record(
                22,
                &handshake(2, &tls13_server_body(HRR_RANDOM, &[0, 0x17])),
            ),
            {
                let m = unhex(CF_HELLO_HEX);
                [record(22, &m[5..60]), record(22, &m[60..])].concat()
            },
        ];
        let mut buf = Vec::new();
        for i in 0..300_000u32 {
            let r = next();
            buf.clear();
            if i % 10 == 0 {
                // Pure noise, often starting like a handshake record.
                let len = (r % 300) as usize;
                buf.extend((0..len).map(|_| next() as u8));
                if r & 0x100 != 0 && buf.len() >= 3 {
                    buf[..3].copy_from_slice(&[0x16, 3, (r >> 9) as u8 % 5]);
                }
            } else {
                buf.extend_from_slice(&seeds[(r % seeds.len() as u64) as usize]);
                let flips = 1 + (r >> 8) % 6;
                for _ in 0..flips {
                    let x = next();
                    let pos = (x % buf.len() as u64) as usize;
                    match (x >> 32) % 4 {
                        0 => buf[pos] = (x >> 40) as u8,
                        1 => buf[pos] ^= 1 << ((x >> 40) % 8),
                        2 => buf.truncate(pos),
                        _ => buf[pos] = [0, 0xff, 0x01, 0x7f][((x >> 40) % 4) as usize],
                    }
                    if buf.is_empty() {
                        break;
                    }
                }
            }
            let _ = client_hello(&buf);
            let _ = server_hello(&buf);
            let _ = looks_like_record(&buf);
            let _ = find_client_hello(&buf);
            let _ = version_name(r as u16);
            if let Parse::Done(ch, n) = client_hello(&buf) {
                assert!(n <= buf.len());
                assert_eq!(ch.ja3_hash.len(), 32);
            }
        }
    }

    // ---- Differential tests against the previous implementation (`super::reference`).

    use crate::decode::test_streams;
    use crate::testutil::Rng;

    /// Asserts that every entry point answers on `buf` what the reference answers.
    fn same_as_reference(buf: &[u8], what: &dyn std::fmt::Display) {
        let (ours, theirs) = (client_hello(buf), reference::client_hello(buf));
        if ours != theirs {
            let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
            panic!("{what}: client_hello differs on {hex}\nnew: {ours:?}\nold: {theirs:?}");
        }
        assert_eq!(
            server_hello(buf),
            reference::server_hello(buf),
            "{what}: server_hello"
        );
        assert_eq!(
            find_client_hello(buf),
            reference::find_client_hello(buf),
            "{what}: find_client_hello"
        );
        assert_eq!(
            looks_like_record(buf),
            reference::looks_like_record(buf),
            "{what}: looks_like_record"
        );
        assert_eq!(
            other_record_len(buf),
            reference::other_record_len(buf),
            "{what}: other_record_len"
        );
    }

    /// Walks `stream` the way the flow layer does (from its start and from the first
    /// ClientHello found in it, as client and as server), comparing at every step.
    fn same_walk(stream: &[u8], what: &dyn std::fmt::Display) {
        let starts = [Some(0), find_client_hello(stream)];
        for start in starts.into_iter().flatten() {
            for server in [false, true] {
                let mut off = start;
                for _ in 0..64 {
                    let Some(b) = stream.get(off..) else { break };
                    same_as_reference(b, what);
                    let step = if server {
                        match server_hello(b) {
                            Parse::Done(_, n) | Parse::Skip(n) => Some(n),
                            _ => None,
                        }
                    } else {
                        match client_hello(b) {
                            Parse::Done(_, n) | Parse::Skip(n) => Some(n),
                            _ => None,
                        }
                    };
                    match step.or_else(|| other_record_len(b)) {
                        Some(n) if n > 0 => off += n,
                        _ => break,
                    }
                }
            }
        }
    }

    /// A value for a u16 list: GREASE, anything, or a common one.
    fn list_value(rng: &mut Rng) -> u16 {
        match rng.index(5) {
            0 => 0x0a0a + 0x1010 * rng.index(16) as u16,
            1 => rng.next() as u16,
            _ => [
                0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0x009c, 0x002f, 0x0035, 0x001d, 0x0017,
                0x0304, 0x0303, 0x0403, 0x0804, 0x0000, 0x0010, 0x000a, 0xff01,
            ][rng.index(18)],
        }
    }

    /// Up to `max - 1` bytes, mostly letters.
    fn random_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
        let n = rng.index(max);
        (0..n)
            .map(|_| match rng.index(4) {
                0 => rng.next() as u8,
                _ => b'a' + rng.index(26) as u8,
            })
            .collect()
    }

    /// A ClientHello with random lists (GREASE, repeats, lists longer than the hash
    /// writer's buffer), random and repeated extensions, odd SNI and ALPN bytes, sometimes
    /// malformed extension contents; as one record, or cut over several.
    fn random_hello(rng: &mut Rng) -> Vec<u8> {
        let n_ciphers = [0, 1, 3, 20, 60, 200][rng.index(6)];
        let ciphers: Vec<u16> = (0..n_ciphers).map(|_| list_value(rng)).collect();
        let mut exts = Vec::new();
        for _ in 0..rng.index(30) {
            let list = |rng: &mut Rng, max: usize| -> Vec<u16> {
                (0..rng.index(max)).map(|_| list_value(rng)).collect()
            };
            let e = match rng.index(12) {
                0 => {
                    let mut names = Vec::new();
                    for _ in 0..1 + rng.index(3) {
                        let name = random_bytes(rng, 20);
                        names.push(if rng.index(5) == 0 { 1 } else { 0 });
                        names.extend_from_slice(&(name.len() as u16).to_be_bytes());
                        names.extend(name);
                    }
                    let mut d = (names.len() as u16).to_be_bytes().to_vec();
                    d.extend(names);
                    ext(0, &d)
                }
                1 => {
                    let mut l = Vec::new();
                    for _ in 0..rng.index(20) {
                        let name = random_bytes(rng, 10);
                        l.push(name.len() as u8);
                        l.extend(name);
                    }
                    let mut d = (l.len() as u16).to_be_bytes().to_vec();
                    d.extend(l);
                    ext(16, &d)
                }
                2 => ext(10, &u16s(2, &list(rng, 30))),
                3 => {
                    let p = random_bytes(rng, 4);
                    let mut d = vec![p.len() as u8];
                    d.extend(p);
                    ext(11, &d)
                }
                4 => ext(13, &u16s(2, &list(rng, 80))),
                5 => ext(43, &u16s(1, &list(rng, 8))),
                6 => ext(list_value(rng), &random_bytes(rng, 8)),
                7 => ext(rng.next() as u16, &random_bytes(rng, 8)),
                8 => ext(
                    [0, 10, 11, 13, 16, 43, 51, 5][rng.index(8)],
                    &random_bytes(rng, 6),
                ),
                9 => ext(51, &[0, 6, 0, 0x1d, 0, 2, 1, 2]),
                10 => ext(21, &vec![0; rng.index(300)]),
                _ => ext(0x0a0a + 0x1010 * rng.index(16) as u16, &[]),
            };
            exts.push(e);
        }
        let version = [0x0303, 0x0301, 0x0300, 0x0304, 0x0002, 0xfefd, 0x7f12][rng.index(7)];
        let mut body = client_body(version, &ciphers, &exts);
        if rng.index(10) == 0 {
            // No extension block at all.
            let cut = 2 + 32 + 1 + 2 + 2 * ciphers.len() + 2;
            body.truncate(cut);
        }
        let msg = handshake(1, &body);
        let mut out = Vec::new();
        let mut at = 0;
        while at < msg.len() {
            let n = if rng.index(3) == 0 {
                1 + rng.index(300)
            } else {
                msg.len()
            };
            let end = (at + n).min(msg.len());
            out.extend(record(22, &msg[at..end]));
            at = end;
        }
        if rng.index(3) == 0 {
            out.extend(record(20, &[1]));
        }
        out
    }

    /// A random change: bit flips, byte values that matter (lengths, types), truncation,
    /// insertions, deletions, pieces of another input spliced in.
    fn mutate(rng: &mut Rng, buf: &mut Vec<u8>, other: &[u8]) {
        for _ in 0..1 + rng.index(4) {
            if buf.is_empty() {
                return;
            }
            let at = rng.index(buf.len());
            match rng.index(8) {
                0 => buf[at] ^= 1 << rng.index(8),
                1 => buf[at] = rng.next() as u8,
                2 => buf.truncate(at),
                3 => buf[at] = [0, 1, 2, 0x16, 0x03, 0x0a, 0x7f, 0xff][rng.index(8)],
                4 => buf.insert(at, rng.next() as u8),
                5 => {
                    buf.remove(at);
                }
                6 => {
                    let v = list_value(rng).to_be_bytes();
                    buf[at] = v[0];
                    if let Some(b) = buf.get_mut(at + 1) {
                        *b = v[1];
                    }
                }
                _ if !other.is_empty() => {
                    let from = rng.index(other.len());
                    let len = rng.index(40).min(other.len() - from);
                    let piece = other[from..from + len].to_vec();
                    buf.splice(at..at, piece);
                }
                _ => {}
            }
        }
    }

    /// The decoder answers exactly what the previous implementation answered: on the TCP
    /// streams of real captures (the repository's and the shared real-world ones), on
    /// mutations of them, and on generated hellos.
    #[test]
    fn same_results_as_reference() {
        let files = test_streams::capture_files("tls differential");
        let mut seeds: Vec<Vec<u8>> = test_streams::tcp_streams(&files)
            .into_iter()
            .map(|s| {
                let mut v = s.concat();
                v.truncate(64 * 1024);
                v
            })
            .filter(|s| find_client_hello(s).is_some() || looks_like_record(s))
            .collect();
        assert!(seeds.len() > 20, "too few TLS streams: {}", seeds.len());
        eprintln!("tls differential: {} TLS streams", seeds.len());
        seeds.extend([
            unhex(CF_HELLO_HEX),
            grease_hello(),
            record(22, &handshake(2, &tls12_server_body())),
            record(
                22,
                &handshake(2, &tls13_server_body(HRR_RANDOM, &[0, 0x17])),
            ),
        ]);
        for (i, s) in seeds.iter().enumerate() {
            same_walk(s, &format_args!("stream {i}"));
        }
        let mut rng = Rng(0x5eed_7157_dead_beef);
        let mut buf = Vec::new();
        for (i, seed) in seeds.iter().enumerate() {
            // Mutate the hello at the start of the stream (or where it is found), not the
            // encrypted records after it.
            let start = find_client_hello(seed).unwrap_or(0);
            let hello = &seed[start..seed.len().min(start + 4096)];
            for j in 0..300 {
                buf.clear();
                buf.extend_from_slice(hello);
                let other = &seeds[rng.index(seeds.len())];
                mutate(&mut rng, &mut buf, other);
                same_walk(&buf, &format_args!("mutant {j} of stream {i}"));
            }
        }
        for i in 0..30_000 {
            let mut h = random_hello(&mut rng);
            same_walk(&h, &format_args!("generated hello {i}"));
            let other = &seeds[rng.index(seeds.len())];
            mutate(&mut rng, &mut h, other);
            same_walk(&h, &format_args!("mutated generated hello {i}"));
        }
    }
}
