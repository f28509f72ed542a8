//! The TLS handshake decoder as it was before the single-buffer fingerprint writers, kept
//! verbatim (test builds only) as the oracle of the differential tests in `super::tests`:
//! the decoder must return what these return, for every input.

#![allow(dead_code)]
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::{
    ClientHello, Error, MAX_ALPNS, MAX_EXTENSIONS, MAX_HANDSHAKE_LEN, MAX_RECORD_LEN, MAX_RECORDS,
    MAX_SCAN, Parse, ServerHello,
};

use std::borrow::Cow;
use std::fmt::Write as _;

use md5::{Digest as _, Md5};
use sha2::Sha256;
use tls_parser::{
    TlsExtension, TlsMessageHandshake, parse_tls_client_hello_extension,
    parse_tls_handshake_client_hello, parse_tls_handshake_msg_server_hello,
    parse_tls_server_hello_extension,
};

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
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

const HEX: &[u8; 16] = b"0123456789abcdef";

// The fingerprint strings hold a hundred numbers or more per hello; these writers avoid the
// formatting machinery, which cost more than parsing the hello itself.

fn push_hex_byte(out: &mut String, b: u8) {
    let digit = |n: u8| char::from(HEX.get(usize::from(n & 0xf)).copied().unwrap_or(b'0'));
    out.push(digit(b >> 4));
    out.push(digit(b));
}

fn push_dec(out: &mut String, mut v: u16) {
    let mut digits = [0u8; 5];
    let mut n = 0;
    // At most 5 iterations for a u16.
    loop {
        if let Some(d) = digits.get_mut(n) {
            *d = b'0' + (v % 10) as u8;
        }
        n += 1;
        v /= 10;
        if v == 0 || n == digits.len() {
            break;
        }
    }
    for d in digits.iter().take(n).rev() {
        out.push(char::from(*d));
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        push_hex_byte(&mut s, b);
    }
    s
}

fn join_dec<I: IntoIterator<Item = u16>>(out: &mut String, it: I) {
    for (i, v) in it.into_iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        push_dec(out, v);
    }
}

fn join_hex(vals: &[u16]) -> String {
    let mut s = String::with_capacity(vals.len() * 5);
    for (i, v) in vals.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let [hi, lo] = v.to_be_bytes();
        push_hex_byte(&mut s, hi);
        push_hex_byte(&mut s, lo);
    }
    s
}

/// First 12 hex chars of SHA-256, or `000000000000` for an empty list (JA4 rule).
fn sha12(empty: bool, text: &str) -> String {
    if empty {
        return "000000000000".to_owned();
    }
    let d = Sha256::digest(text.as_bytes());
    hex(d.get(..6).unwrap_or_default())
}

/// Raw fields of a ClientHello needed for the fingerprints.
#[derive(Default)]
struct Fields<'a> {
    ciphers: Vec<u16>,
    extensions: Vec<u16>,
    groups: Vec<u16>,
    point_formats: &'a [u8],
    sig_algs: Vec<u16>,
    versions: Vec<u16>,
    has_sni_ext: bool,
    sni: Option<&'a [u8]>,
    alpns: Vec<&'a [u8]>,
    anomaly: Option<Error>,
}

impl<'a> Fields<'a> {
    fn note(&mut self, e: Error) {
        self.anomaly.get_or_insert(e);
    }

    fn extension(&mut self, t: u16, raw: &'a [u8]) {
        self.extensions.push(t);
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
            TlsExtension::ALPN(names) => {
                if names.len() > MAX_ALPNS {
                    self.note(Error::TooManyAlpns);
                }
                if self.alpns.is_empty() {
                    self.alpns = names.into_iter().take(MAX_ALPNS).collect();
                }
            }
            TlsExtension::EllipticCurves(g) => self.groups.extend(g.iter().map(|g| g.0)),
            TlsExtension::EcPointFormats(p) => self.point_formats = p,
            TlsExtension::SignatureAlgorithms(s) => self.sig_algs.extend(s),
            TlsExtension::SupportedVersions(v) => self.versions.extend(v.iter().map(|v| v.0)),
            _ => {}
        }
    }
}

fn ja3(legacy_version: u16, f: &Fields<'_>) -> String {
    let mut s = String::with_capacity(256);
    push_dec(&mut s, legacy_version);
    s.push(',');
    join_dec(&mut s, f.ciphers.iter().copied().filter(|c| !is_grease(*c)));
    s.push(',');
    join_dec(
        &mut s,
        f.extensions.iter().copied().filter(|e| !is_grease(*e)),
    );
    s.push(',');
    join_dec(&mut s, f.groups.iter().copied().filter(|g| !is_grease(*g)));
    s.push(',');
    join_dec(&mut s, f.point_formats.iter().map(|p| u16::from(*p)));
    s
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
fn ja4_alpn(first: Option<&[u8]>) -> String {
    let Some((&a, &z)) = first.and_then(|v| Some((v.first()?, v.last()?))) else {
        return "00".to_owned();
    };
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        return [char::from(a), char::from(z)].iter().collect();
    }
    let h = hex(&[a, z]);
    h.chars().take(1).chain(h.chars().last()).collect()
}

fn ja4(legacy_version: u16, f: &Fields<'_>) -> String {
    let version = f
        .versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(legacy_version);
    let mut ciphers: Vec<u16> = f
        .ciphers
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let exts: Vec<u16> = f
        .extensions
        .iter()
        .copied()
        .filter(|e| !is_grease(*e))
        .collect();
    let mut a = String::with_capacity(10);
    a.push('t');
    a.push_str(ja4_version(version));
    a.push(if f.has_sni_ext { 'd' } else { 'i' });
    let _ = write!(a, "{:02}{:02}", ciphers.len().min(99), exts.len().min(99));
    a.push_str(&ja4_alpn(f.alpns.first().copied()));

    ciphers.sort_unstable();
    let b = sha12(ciphers.is_empty(), &join_hex(&ciphers));

    let mut sorted: Vec<u16> = exts
        .into_iter()
        .filter(|e| *e != EXT_SERVER_NAME && *e != EXT_ALPN)
        .collect();
    sorted.sort_unstable();
    let sigs: Vec<u16> = f
        .sig_algs
        .iter()
        .copied()
        .filter(|s| !is_grease(*s))
        .collect();
    let mut c_text = join_hex(&sorted);
    if !sigs.is_empty() {
        c_text.push('_');
        c_text.push_str(&join_hex(&sigs));
    }
    let c = sha12(sorted.is_empty(), &c_text);
    format!("{a}_{b}_{c}")
}

fn decode_client_hello(body: &[u8]) -> Result<ClientHello, Error> {
    let (_, ch) = parse_tls_handshake_client_hello(body).map_err(|_| Error::Malformed)?;
    let legacy_version = ch.version.0;
    let mut f = Fields {
        ciphers: ch.ciphers.iter().map(|c| c.0).collect(),
        ..Fields::default()
    };
    if let Some(block) = ch.ext
        && let Some(e) = for_each_extension(block, |t, raw| f.extension(t, raw))
    {
        f.note(e);
    }
    let ja3 = ja3(legacy_version, &f);
    let ja3_hash = hex(&Md5::digest(ja3.as_bytes()));
    let ja4 = ja4(legacy_version, &f);
    Ok(ClientHello {
        legacy_version,
        sni: f.sni.map(escape),
        alpns: f.alpns.iter().map(|a| escape(a)).collect(),
        supported_versions: f
            .versions
            .iter()
            .copied()
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
    window
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == CONTENT_HANDSHAKE)
        .map(|(i, _)| i)
        .find(|&i| client_hello_at(buf.get(i..).unwrap_or_default()))
}
