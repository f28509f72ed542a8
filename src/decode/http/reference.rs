//! The HTTP/1.x decoder as it was before the allocation-free header handling and the
//! single-pass head search, kept verbatim (test builds only) as the oracle of the
//! differential tests in `super::tests`: the parsers must return what these return, for
//! every input and every way of cutting it into `feed` calls.

#![allow(dead_code)]

use super::{
    Error, Feed, MAX_CHUNK_LINE_LEN, MAX_HEAD_LEN, MAX_HEADERS, MAX_METHOD_LEN,
    MAX_PENDING_METHODS, MAX_RESYNC_LEN, MAX_TRAILER_LEN, Request, Response,
};

use std::collections::VecDeque;
use std::fmt::Write as _;

/// Longest all-caps token [`looks_like_request`] accepts as an unknown method.
const MAX_DETECT_METHOD_LEN: usize = 20;
/// Shortest all-caps token [`looks_like_request`] accepts as an unknown method.
const MIN_DETECT_METHOD_LEN: usize = 3;

/// Methods known to be HTTP: RFC 9110, PATCH, WebDAV (RFC 4918, 3253, 3648,
/// 3744, 4791, 5323, 5842), UPnP/SSDP, cache purges, Microsoft extensions.
/// Used by [`looks_like_request`] and to accept version-less request lines.
#[rustfmt::skip]
const KNOWN_METHODS: &[&[u8]] = &[
    b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH",
    b"QUERY", b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK",
    b"SEARCH", b"REPORT", b"CHECKOUT", b"CHECKIN", b"UNCHECKOUT", b"MKWORKSPACE", b"UPDATE",
    b"LABEL", b"MERGE", b"BASELINE-CONTROL", b"MKACTIVITY", b"VERSION-CONTROL", b"ORDERPATCH",
    b"ACL", b"MKCALENDAR", b"MKREDIRECTREF", b"UPDATEREDIRECTREF", b"BIND", b"UNBIND",
    b"REBIND", b"NOTIFY", b"SUBSCRIBE", b"UNSUBSCRIBE", b"M-SEARCH", b"PURGE", b"LINK",
    b"UNLINK", b"POLL", b"BCOPY", b"BDELETE", b"BMOVE", b"BPROPFIND", b"BPROPPATCH",
    b"CCM_POST", b"RPC_IN_DATA", b"RPC_OUT_DATA", b"SSTP_DUPLEX_POST",
];

// ---------------------------------------------------------------------------
// Detection

/// Three-way answer for "does a message start here" on possibly short input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Yes,
    No,
    NeedMore,
}

/// First bytes are a method token followed by a space: a known method
/// (WebDAV ones included) or an all-caps token (`A-Z`, `_`, `-`) of 3 to 20
/// characters. Cheap; meant to detect HTTP on any port.
pub fn looks_like_request(buf: &[u8]) -> bool {
    request_start(buf) == Verdict::Yes
}

/// First bytes are `HTTP/1.`.
pub fn looks_like_response(buf: &[u8]) -> bool {
    response_start(buf) == Verdict::Yes
}

fn request_start(buf: &[u8]) -> Verdict {
    let window = buf.get(..MAX_DETECT_METHOD_LEN + 1).unwrap_or(buf);
    // A known method alone on its line (`OPTIONS\r\n`) is a request too, as tshark sees it.
    if let Some(eol) = window.iter().position(|&c| c == b'\r' || c == b'\n')
        && !window.get(..eol).unwrap_or_default().contains(&b' ')
    {
        return if is_known_method(window.get(..eol).unwrap_or_default()) {
            Verdict::Yes
        } else {
            Verdict::No
        };
    }
    let Some(sp) = window.iter().position(|&c| c == b' ') else {
        let could_grow = window.len() <= MAX_DETECT_METHOD_LEN
            && window
                .iter()
                .all(|&c| c.is_ascii_uppercase() || c == b'_' || c == b'-');
        return if could_grow {
            Verdict::NeedMore
        } else {
            Verdict::No
        };
    };
    let token = window.get(..sp).unwrap_or_default();
    let generic = token.len() >= MIN_DETECT_METHOD_LEN
        && token
            .iter()
            .all(|&c| c.is_ascii_uppercase() || c == b'_' || c == b'-')
        && token.iter().any(u8::is_ascii_uppercase);
    if generic || is_known_method(token) {
        Verdict::Yes
    } else {
        Verdict::No
    }
}

/// Stricter start test used after a gap, so that body text with a line
/// starting `GET ` is not taken for a request: the whole line must be seen and
/// carry an ` HTTP/1.` version.
fn request_resync_start(buf: &[u8]) -> Verdict {
    match request_start(buf) {
        Verdict::Yes => {}
        other => return other,
    }
    let window = buf.get(..MAX_HEAD_LEN).unwrap_or(buf);
    match window.iter().position(|&c| c == b'\n') {
        Some(lf) => {
            let line = window.get(..lf).unwrap_or_default();
            if line.windows(8).any(|w| w == b" HTTP/1.") {
                Verdict::Yes
            } else {
                Verdict::No
            }
        }
        None if buf.len() < MAX_HEAD_LEN => Verdict::NeedMore,
        None => Verdict::No,
    }
}

fn response_start(buf: &[u8]) -> Verdict {
    const PREFIX: &[u8] = b"HTTP/1.";
    if buf.starts_with(PREFIX) {
        Verdict::Yes
    } else if buf.len() < PREFIX.len() && PREFIX.starts_with(buf) {
        Verdict::NeedMore
    } else {
        Verdict::No
    }
}

/// Start of a status line inside an established HTTP connection: `HTTP/1.`
/// in any case (servers sending `http/1.1 200 OK` exist; httparse rejects
/// them, the hand-written status-line parser takes them).
fn response_start_any_case(buf: &[u8]) -> Verdict {
    const PREFIX: &[u8] = b"HTTP/1.";
    let n = buf.len().min(PREFIX.len());
    let (Some(head), Some(want)) = (buf.get(..n), PREFIX.get(..n)) else {
        return Verdict::No;
    };
    if !head.eq_ignore_ascii_case(want) {
        Verdict::No
    } else if n == PREFIX.len() {
        Verdict::Yes
    } else {
        Verdict::NeedMore
    }
}

fn is_known_method(m: &[u8]) -> bool {
    KNOWN_METHODS.contains(&m)
}

/// RFC 9110 `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

// ---------------------------------------------------------------------------
// Small byte helpers

/// Bytes as a String: valid UTF-8 kept, invalid bytes and ASCII control
/// characters written as `\xNN` (tshark's presentation).
fn escape(bytes: &[u8]) -> String {
    // The common case, printable ASCII only, is one copy.
    if bytes.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        return std::str::from_utf8(bytes)
            .map(str::to_owned)
            .unwrap_or_default();
    }
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii_control() {
                let _ = write!(s, "\\x{:02x}", u32::from(c));
            } else {
                s.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Lines of `head` without their line ending (LF or CRLF).
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&c| c == b'\n').map(strip_cr)
}

/// Where a head ends, searched for incrementally.
enum Scan {
    /// Head complete: its length (blank line included) and the end of the
    /// first line (index of its LF).
    Found { head_len: usize, line1_lf: usize },
    /// Not complete; `resume` is where the next search starts, `line1_lf`
    /// the first line's LF if seen.
    Partial {
        resume: usize,
        line1_lf: Option<usize>,
    },
    /// No end within [`MAX_HEAD_LEN`].
    TooLong,
}

/// Finds the blank line ending a head that starts at `b[0]` (a non-empty
/// line). `from` is a line start where a previous search stopped.
fn scan_head(b: &[u8], from: usize) -> Scan {
    let window = b.get(..MAX_HEAD_LEN).unwrap_or(b);
    let line1_lf = window.iter().position(|&c| c == b'\n');
    let mut start = from.min(window.len());
    // Bounded: each round moves `start` forward by at least one byte.
    while let Some(rel) = window
        .get(start..)
        .and_then(|w| w.iter().position(|&c| c == b'\n'))
    {
        let lf = start + rel;
        let line = window.get(start..lf).unwrap_or_default();
        if start > 0 && strip_cr(line).is_empty() {
            return Scan::Found {
                head_len: lf + 1,
                line1_lf: line1_lf.unwrap_or(0),
            };
        }
        start = lf + 1;
    }
    if b.len() >= MAX_HEAD_LEN {
        Scan::TooLong
    } else {
        Scan::Partial {
            resume: start,
            line1_lf,
        }
    }
}

/// Header fields of interest, gathered from either parser.
#[derive(Default)]
struct Fields {
    host: Option<String>,
    user_agent: Option<String>,
    referer: Option<String>,
    content_type: Option<String>,
    xff: Option<String>,
    location: Option<String>,
    content_length: Length,
    /// `Some(final coding is chunked)` when Transfer-Encoding was present.
    transfer_encoding: Option<bool>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Length {
    #[default]
    Absent,
    Valid(u64),
    Invalid,
}

fn join(slot: &mut Option<String>, value: &[u8]) {
    match slot {
        Some(s) => {
            s.push(',');
            s.push_str(&escape(value));
        }
        None => *slot = Some(escape(value)),
    }
}

impl Fields {
    fn add(&mut self, name: &[u8], value: &[u8]) {
        let value = trim(value);
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if is("host") {
            join(&mut self.host, value);
        } else if is("user-agent") {
            join(&mut self.user_agent, value);
        } else if is("referer") {
            join(&mut self.referer, value);
        } else if is("content-type") {
            join(&mut self.content_type, value);
        } else if is("x-forwarded-for") {
            join(&mut self.xff, value);
        } else if is("location") {
            join(&mut self.location, value);
        } else if is("content-length") {
            self.add_content_length(value);
        } else if is("transfer-encoding") {
            let last = value.split(|&c| c == b',').map(trim).next_back();
            self.transfer_encoding = Some(last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")));
        }
    }

    /// RFC 9110 §8.6: a list of identical values is accepted as one.
    fn add_content_length(&mut self, value: &[u8]) {
        for item in value.split(|&c| c == b',').map(trim) {
            let parsed =
                (!item.is_empty() && item.len() <= 19 && item.iter().all(u8::is_ascii_digit))
                    .then(|| std::str::from_utf8(item).ok()?.parse::<u64>().ok())
                    .flatten();
            self.content_length = match (self.content_length, parsed) {
                (Length::Invalid, _) | (_, None) => Length::Invalid,
                (Length::Absent, Some(n)) => Length::Valid(n),
                (Length::Valid(old), Some(n)) if old == n => Length::Valid(n),
                (Length::Valid(_), Some(_)) => Length::Invalid,
            };
        }
    }

    fn content_length(&self) -> Option<u64> {
        match self.content_length {
            Length::Valid(n) => Some(n),
            _ => None,
        }
    }

    /// Hand-written header parser for heads httparse rejected: `name: value`
    /// lines after the start line; lines without a colon and obs-fold
    /// continuation lines are skipped.
    fn from_lenient_lines<'a>(header_lines: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut f = Fields::default();
        for line in header_lines.take(MAX_HEADERS) {
            if line.starts_with(b" ") || line.starts_with(b"\t") {
                continue;
            }
            if let Some(colon) = line.iter().position(|&c| c == b':') {
                let name = trim(line.get(..colon).unwrap_or_default());
                f.add(name, line.get(colon + 1..).unwrap_or_default());
            }
        }
        f
    }

    fn from_httparse(headers: &[httparse::Header<'_>]) -> Self {
        let mut f = Fields::default();
        for h in headers {
            f.add(h.name.as_bytes(), h.value);
        }
        f
    }
}

fn version_string(minor: Option<u8>) -> String {
    match minor {
        Some(0) => "HTTP/1.0".to_owned(),
        _ => "HTTP/1.1".to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Framing shared by both directions

/// Where a direction is between two `feed` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a message head (after optional empty lines).
    Head,
    /// Skipping a body.
    Body(Body),
    /// After a gap: looking for a line that starts a message.
    Resync { skipped: usize },
    /// Not HTTP any more; `feed` returns `Tunnel(0)`.
    Tunnel,
    /// Given up; `feed` returns `Stop(e)`.
    Stopped(Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Bytes still to skip (never 0).
    Length(u64),
    Chunked(Chunk),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Chunk data bytes still to skip (never 0).
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailer { seen: usize },
}

/// What the direction-specific head parser decided.
enum HeadStep {
    /// Incomplete: wait for more bytes.
    Wait,
    /// Skip this many bytes (empty lines, stray header lines); stay in `Head`.
    Skip(usize),
    /// A head of `len` bytes was handled; continue with `next`.
    Done { len: usize, next: Next },
}

enum Next {
    Head,
    Body(Body),
    Tunnel,
    Stop(Error),
}

/// Body framing decided from a head.
fn body_for(fields: &Fields) -> Result<Next, Error> {
    match (fields.transfer_encoding, fields.content_length) {
        (Some(true), _) => Ok(Next::Body(Body::Chunked(Chunk::Size))),
        (Some(false), _) => Err(Error::BadTransferEncoding),
        (None, Length::Invalid) => Err(Error::BadContentLength),
        (None, Length::Valid(n)) if n > 0 => Ok(Next::Body(Body::Length(n))),
        (None, _) => Ok(Next::Head),
    }
}

/// Direction-specific head parser: `(input, scan_from) -> step`, where
/// `scan_from` is the resumable head-end search position.
type HeadParser<'a> = dyn FnMut(&[u8], &mut usize) -> Result<HeadStep, Error> + 'a;

/// State machine for one direction, independent of message kind.
#[derive(Debug)]
struct Framer {
    state: State,
    /// Line start where the last incomplete head search stopped.
    scan_from: usize,
}

impl Framer {
    fn new() -> Self {
        Framer {
            state: State::Head,
            scan_from: 0,
        }
    }

    fn gap(&mut self) {
        self.scan_from = 0;
        if matches!(self.state, State::Head | State::Body(_)) {
            self.state = State::Resync { skipped: 0 };
        }
    }

    fn stop(&mut self, e: Error) -> Feed {
        self.state = State::Stopped(e);
        Feed::Stop(e)
    }

    fn drive(
        &mut self,
        buf: &[u8],
        start: fn(&[u8]) -> Verdict,
        head: &mut HeadParser<'_>,
    ) -> Feed {
        let mut pos = 0usize;
        // Cap: every round consumes at least one byte, returns, or changes
        // state without consuming (at most once per consuming round).
        for _ in 0..=buf.len().saturating_mul(2).saturating_add(1) {
            let rest = buf.get(pos..).unwrap_or_default();
            match self.state {
                State::Stopped(e) => return Feed::Stop(e),
                State::Tunnel => return Feed::Tunnel(pos),
                _ if rest.is_empty() => return Feed::Consumed(pos),
                State::Head => match head(rest, &mut self.scan_from) {
                    Err(e) => return self.stop(e),
                    Ok(HeadStep::Wait) => return Feed::Consumed(pos),
                    Ok(HeadStep::Skip(n)) => {
                        pos = pos.saturating_add(n.max(1)).min(buf.len());
                        self.scan_from = 0;
                    }
                    Ok(HeadStep::Done { len, next }) => {
                        pos = pos.saturating_add(len.max(1)).min(buf.len());
                        self.scan_from = 0;
                        match next {
                            Next::Head => {}
                            Next::Body(b) => self.state = State::Body(b),
                            Next::Tunnel => {
                                self.state = State::Tunnel;
                                return Feed::Tunnel(pos);
                            }
                            Next::Stop(e) => return self.stop(e),
                        }
                    }
                },
                State::Body(body) => match body_step(body, rest) {
                    Err(e) => return self.stop(e),
                    Ok((0, _)) => return Feed::Consumed(pos),
                    Ok((n, next)) => {
                        pos = pos.saturating_add(n).min(buf.len());
                        self.state = next;
                    }
                },
                State::Resync { skipped } => {
                    let (n, found) = resync(rest, start);
                    let skipped = skipped.saturating_add(n);
                    pos = pos.saturating_add(n).min(buf.len());
                    if found {
                        self.state = State::Head;
                    } else if skipped > MAX_RESYNC_LEN {
                        return self.stop(Error::ResyncFailed);
                    } else {
                        self.state = State::Resync { skipped };
                        if n == 0 {
                            return Feed::Consumed(pos);
                        }
                    }
                }
            }
        }
        Feed::Consumed(pos)
    }
}

/// After a gap: bytes to drop before the next line that starts a message,
/// and whether such a line was found (`false` with a prefix kept when the
/// candidate is too short to tell).
fn resync(b: &[u8], start: fn(&[u8]) -> Verdict) -> (usize, bool) {
    let candidates = std::iter::once(0).chain(
        b.iter()
            .enumerate()
            .filter(|&(_, &c)| c == b'\n')
            .map(|(i, _)| i + 1),
    );
    for at in candidates {
        match start(b.get(at..).unwrap_or_default()) {
            Verdict::Yes => return (at, true),
            Verdict::NeedMore => return (at, false),
            Verdict::No => {}
        }
    }
    (b.len(), false)
}

/// Skips body bytes; returns (consumed, next state). Consumes 0 only when
/// more input is needed.
fn body_step(body: Body, b: &[u8]) -> Result<(usize, State), Error> {
    let avail = b.len() as u64;
    match body {
        Body::Length(left) => {
            let n = left.min(avail);
            let next = if n == left {
                State::Head
            } else {
                State::Body(Body::Length(left - n))
            };
            Ok((usize::try_from(n).unwrap_or(b.len()), next))
        }
        Body::Chunked(Chunk::Data(left)) => {
            let n = left.min(avail);
            let next = if n == left {
                Chunk::DataEnd
            } else {
                Chunk::Data(left - n)
            };
            Ok((
                usize::try_from(n).unwrap_or(b.len()),
                State::Body(Body::Chunked(next)),
            ))
        }
        Body::Chunked(Chunk::DataEnd) => match b {
            [b'\n', ..] => Ok((1, State::Body(Body::Chunked(Chunk::Size)))),
            [b'\r', b'\n', ..] => Ok((2, State::Body(Body::Chunked(Chunk::Size)))),
            [b'\r'] => Ok((0, State::Body(body))),
            _ => Err(Error::BadChunk),
        },
        Body::Chunked(Chunk::Size) => {
            let window = b.get(..MAX_CHUNK_LINE_LEN).unwrap_or(b);
            let Some(lf) = window.iter().position(|&c| c == b'\n') else {
                return if b.len() >= MAX_CHUNK_LINE_LEN {
                    Err(Error::BadChunk)
                } else {
                    Ok((0, State::Body(body)))
                };
            };
            let line = strip_cr(window.get(..lf).unwrap_or_default());
            let size = line
                .split(|&c| c == b';')
                .next()
                .map(trim)
                .unwrap_or_default();
            if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
                return Err(Error::BadChunk);
            }
            let n = std::str::from_utf8(size)
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or(Error::BadChunk)?;
            let next = if n == 0 {
                Chunk::Trailer { seen: 0 }
            } else {
                Chunk::Data(n)
            };
            Ok((lf + 1, State::Body(Body::Chunked(next))))
        }
        Body::Chunked(Chunk::Trailer { seen }) => {
            let room = MAX_TRAILER_LEN.saturating_sub(seen);
            let window = b.get(..=room).unwrap_or(b);
            let Some(lf) = window.iter().position(|&c| c == b'\n') else {
                return if b.len() > room {
                    Err(Error::TrailerTooLong)
                } else {
                    Ok((0, State::Body(body)))
                };
            };
            if strip_cr(window.get(..lf).unwrap_or_default()).is_empty() {
                return Ok((lf + 1, State::Head));
            }
            let seen = seen.saturating_add(lf + 1);
            if seen > MAX_TRAILER_LEN {
                return Err(Error::TrailerTooLong);
            }
            Ok((lf + 1, State::Body(Body::Chunked(Chunk::Trailer { seen }))))
        }
    }
}

/// Leading CR/LF bytes before a start line (RFC 9112 §2.2 allows empty lines).
fn leading_newlines(b: &[u8]) -> usize {
    b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count()
}

// ---------------------------------------------------------------------------
// Client direction

/// Request-line parts as the hand-written parser splits them.
struct RequestLine<'a> {
    method: &'a [u8],
    uri: &'a [u8],
    version: Option<&'a [u8]>,
}

/// Hand-written request-line parser, used where httparse says no. Splits the
/// way tshark does: the method ends at the first space, further spaces are
/// skipped, and a version is present only if the last space-separated token
/// starts with `HTTP/`. Without a version (HTTP/0.9 style) the method must be
/// a known one, so that other text protocols (`EHLO host`) are not taken
/// for HTTP.
fn parse_request_line(line: &[u8]) -> Result<RequestLine<'_>, Error> {
    let (method, rest) = match line.iter().position(|&c| c == b' ') {
        Some(sp) => (
            line.get(..sp).unwrap_or_default(),
            line.get(sp + 1..).unwrap_or_default(),
        ),
        None => (line, &b""[..]),
    };
    if method.is_empty() || method.len() > MAX_METHOD_LEN || !method.iter().all(|&c| is_tchar(c)) {
        return Err(Error::NotHttp);
    }
    let rest = trim(rest);
    let split = rest.iter().rposition(|&c| c == b' ').and_then(|sp| {
        let version = rest.get(sp + 1..)?;
        version
            .starts_with(b"HTTP/")
            .then(|| (trim(rest.get(..sp).unwrap_or_default()), version))
    });
    match split {
        Some((uri, version)) => {
            if version.starts_with(b"HTTP/2") || version.starts_with(b"HTTP/3") {
                return Err(Error::Http2);
            }
            Ok(RequestLine {
                method,
                uri,
                version: Some(version),
            })
        }
        None if is_known_method(method) => Ok(RequestLine {
            method,
            uri: rest,
            version: None,
        }),
        None => Err(Error::NotHttp),
    }
}

/// Is this line a header line (`token:`)? Used after an HTTP/0.9 request.
fn is_header_line(line: &[u8]) -> bool {
    let name_len = line.iter().take_while(|&&c| is_tchar(c)).count();
    name_len > 0 && matches!(line.get(name_len), Some(b':'))
}

/// Decodes requests from the client-to-server byte stream of one connection.
#[derive(Debug)]
pub struct ClientParser {
    framer: Framer,
    /// The last request was HTTP/0.9 emitted before its following line was
    /// seen: header lines that turn up next belong to it and are skipped.
    after_http09: bool,
}

impl Default for ClientParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientParser {
    /// A parser at the start of a connection.
    pub fn new() -> Self {
        ClientParser {
            framer: Framer::new(),
            after_http09: false,
        }
    }

    /// Parses as many requests from `buf` as are complete, appending them to
    /// `out`. See the module docs for the contract.
    pub fn feed(&mut self, buf: &[u8], out: &mut Vec<Request>) -> Feed {
        let after = &mut self.after_http09;
        self.framer
            .drive(buf, request_resync_start, &mut |b, scan_from| {
                request_head(b, scan_from, after, out)
            })
    }

    /// Data was lost: resynchronise on the next line that starts with a method
    /// token (see [`looks_like_request`]), giving up after [`MAX_RESYNC_LEN`].
    pub fn gap(&mut self) {
        self.after_http09 = false;
        self.framer.gap();
    }
}

fn request_head(
    b: &[u8],
    scan_from: &mut usize,
    after_http09: &mut bool,
    out: &mut Vec<Request>,
) -> Result<HeadStep, Error> {
    let skip = leading_newlines(b);
    if skip > 0 {
        return Ok(HeadStep::Skip(skip));
    }
    // Early rejection of non-HTTP: a method token ending in SP/CR/LF.
    let token_len = b
        .iter()
        .take(MAX_METHOD_LEN + 1)
        .take_while(|&&c| is_tchar(c))
        .count();
    if token_len == 0 || token_len > MAX_METHOD_LEN {
        return Err(Error::NotHttp);
    }
    match b.get(token_len) {
        None => return Ok(HeadStep::Wait),
        Some(b':') if *after_http09 => return skip_headers(b, scan_from),
        Some(b' ' | b'\r' | b'\n') => {}
        Some(_) => return Err(Error::NotHttp),
    }
    let (head_len, line1_lf) = match scan_head(b, *scan_from) {
        Scan::TooLong => return Err(Error::HeadTooLong),
        Scan::Found { head_len, line1_lf } => (head_len, line1_lf),
        Scan::Partial { resume, line1_lf } => {
            *scan_from = resume;
            return match line1_lf {
                Some(lf) => partial_request(b, lf, after_http09, out),
                None => Ok(HeadStep::Wait),
            };
        }
    };
    *after_http09 = false;
    let head = b.get(..head_len).unwrap_or(b);
    let (req, fields) = match parse_request_httparse(head) {
        Some(parsed) => parsed,
        None => parse_request_lenient(head, line1_lf)?,
    };
    let next = if req.method.eq_ignore_ascii_case("CONNECT") {
        Next::Tunnel
    } else if req.protocol == "HTTP/0.9" {
        Next::Head
    } else {
        body_for(&fields).unwrap_or_else(Next::Stop)
    };
    let content_length = fields.content_length();
    let Fields {
        host,
        user_agent,
        referer,
        content_type,
        xff,
        ..
    } = fields;
    out.push(Request {
        host,
        user_agent,
        referer,
        content_type,
        content_length,
        xff,
        chunked: matches!(next, Next::Body(Body::Chunked(_))),
        head_len,
        ..req
    });
    Ok(HeadStep::Done {
        len: head_len,
        next,
    })
}

/// The request line is complete but the head is not. httparse has no
/// HTTP/0.9: a version-less request is one line, so it is reported at once
/// unless a header line follows (tshark reads headers after such a line; we
/// then wait for the blank line like for any head).
fn partial_request(
    b: &[u8],
    lf: usize,
    after_http09: &mut bool,
    out: &mut Vec<Request>,
) -> Result<HeadStep, Error> {
    let line = parse_request_line(strip_cr(b.get(..lf).unwrap_or_default()))?;
    if line.version.is_some() {
        return Ok(HeadStep::Wait);
    }
    let next = b.get(lf + 1..).unwrap_or_default();
    let next_line = strip_cr(next.split(|&c| c == b'\n').next().unwrap_or_default());
    let header_follows = if next.contains(&b'\n') {
        is_header_line(next_line)
    } else {
        // Incomplete next line: `name:` already, or still a name prefix?
        let name_len = next.iter().take_while(|&&c| is_tchar(c)).count();
        name_len > 0 && (name_len == next.len() || next.get(name_len) == Some(&b':'))
    };
    if header_follows {
        return Ok(HeadStep::Wait);
    }
    // Headers may still arrive in a later segment: skip them then.
    *after_http09 = next.is_empty();
    let next_state = if line.method.eq_ignore_ascii_case(b"CONNECT") {
        Next::Tunnel
    } else {
        Next::Head
    };
    out.push(Request {
        method: escape(line.method),
        uri: escape(line.uri),
        protocol: "HTTP/0.9".to_owned(),
        lenient: true,
        head_len: lf + 1,
        ..Request::default()
    });
    Ok(HeadStep::Done {
        len: lf + 1,
        next: next_state,
    })
}

/// Hand-written head parser for requests httparse rejected.
fn parse_request_lenient(head: &[u8], line1_lf: usize) -> Result<(Request, Fields), Error> {
    let line = parse_request_line(strip_cr(head.get(..line1_lf).unwrap_or_default()))?;
    let fields = Fields::from_lenient_lines(lines(head.get(line1_lf + 1..).unwrap_or_default()));
    let request = Request {
        method: escape(line.method),
        uri: escape(line.uri),
        protocol: line.version.map_or_else(|| "HTTP/0.9".to_owned(), escape),
        lenient: true,
        ..Request::default()
    };
    Ok((request, fields))
}

/// Header lines left over after an early-reported HTTP/0.9 request: skip
/// them up to and including the blank line.
fn skip_headers(b: &[u8], scan_from: &mut usize) -> Result<HeadStep, Error> {
    match scan_head(b, *scan_from) {
        Scan::Found { head_len, .. } => Ok(HeadStep::Skip(head_len)),
        Scan::Partial { resume, .. } => {
            *scan_from = resume;
            Ok(HeadStep::Wait)
        }
        Scan::TooLong => Err(Error::HeadTooLong),
    }
}

/// httparse on a complete head; `None` when it rejects the head.
fn parse_request_httparse(head: &[u8]) -> Option<(Request, Fields)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let mut config = httparse::ParserConfig::default();
    config.ignore_invalid_headers_in_requests(true);
    match config.parse_request(&mut req, head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let request = Request {
        method: escape(req.method?.as_bytes()),
        uri: escape(req.path?.as_bytes()),
        protocol: version_string(req.version),
        ..Request::default()
    };
    Some((request, Fields::from_httparse(req.headers)))
}

// ---------------------------------------------------------------------------
// Server direction

/// What the server side needs to know about a request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MethodKind {
    Head,
    Connect,
    Other,
}

/// Decodes responses from the server-to-client byte stream of one connection.
#[derive(Debug)]
pub struct ServerParser {
    framer: Framer,
    /// Methods of requests not answered yet, oldest first.
    pending: VecDeque<MethodKind>,
    /// Methods not remembered because [`MAX_PENDING_METHODS`] was reached.
    pub dropped_methods: u64,
}

impl Default for ServerParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerParser {
    /// A parser at the start of a connection.
    pub fn new() -> Self {
        ServerParser {
            framer: Framer::new(),
            pending: VecDeque::new(),
            dropped_methods: 0,
        }
    }

    /// Parses as many responses from `buf` as are complete, appending them to
    /// `out`. See the module docs for the contract.
    pub fn feed(&mut self, buf: &[u8], out: &mut Vec<Response>) -> Feed {
        let pending = &mut self.pending;
        self.framer
            .drive(buf, response_start_any_case, &mut |b, scan_from| {
                response_head(b, scan_from, pending, out)
            })
    }

    /// Data was lost: resynchronise on the next line starting `HTTP/1.`,
    /// giving up after [`MAX_RESYNC_LEN`]. Forgets pending request methods.
    pub fn gap(&mut self) {
        self.pending.clear();
        self.framer.gap();
    }

    /// Tells the method of the next request on this connection, in request
    /// order, so that responses to `HEAD` (no body) and `CONNECT` (tunnel)
    /// are framed correctly.
    pub fn request_method(&mut self, m: &str) {
        if self.pending.len() >= MAX_PENDING_METHODS {
            self.dropped_methods = self.dropped_methods.saturating_add(1);
            return;
        }
        let kind = if m.eq_ignore_ascii_case("HEAD") {
            MethodKind::Head
        } else if m.eq_ignore_ascii_case("CONNECT") {
            MethodKind::Connect
        } else {
            MethodKind::Other
        };
        self.pending.push_back(kind);
    }
}

fn response_head(
    b: &[u8],
    scan_from: &mut usize,
    pending: &mut VecDeque<MethodKind>,
    out: &mut Vec<Response>,
) -> Result<HeadStep, Error> {
    let skip = leading_newlines(b);
    if skip > 0 {
        return Ok(HeadStep::Skip(skip));
    }
    match response_start_any_case(b) {
        Verdict::Yes => {}
        Verdict::NeedMore => return Ok(HeadStep::Wait),
        Verdict::No => return Err(Error::NotHttp),
    }
    let (head_len, line1_lf) = match scan_head(b, *scan_from) {
        Scan::TooLong => return Err(Error::HeadTooLong),
        Scan::Partial { resume, .. } => {
            *scan_from = resume;
            return Ok(HeadStep::Wait);
        }
        Scan::Found { head_len, line1_lf } => (head_len, line1_lf),
    };
    let head = b.get(..head_len).unwrap_or(b);
    let (resp, fields) = match parse_response_httparse(head) {
        Some(parsed) => parsed,
        None => parse_response_lenient(head, line1_lf)?,
    };
    let status = resp.status;
    let method = if status >= 200 || status == 101 {
        pending.pop_front().unwrap_or(MethodKind::Other)
    } else {
        MethodKind::Other
    };
    let no_body = status < 200 || status == 204 || status == 304 || method == MethodKind::Head;
    let tunnel = status == 101 || (method == MethodKind::Connect && (200..300).contains(&status));
    let next = if tunnel {
        Next::Tunnel
    } else if no_body {
        Next::Head
    } else {
        match (fields.transfer_encoding, fields.content_length) {
            (Some(true), _) => Next::Body(Body::Chunked(Chunk::Size)),
            // RFC 9112 §6.3: any other final coding is read until close.
            (Some(false), _) => Next::Stop(Error::UntilClose),
            (None, Length::Invalid) => Next::Stop(Error::BadContentLength),
            (None, Length::Valid(0)) => Next::Head,
            (None, Length::Valid(n)) => Next::Body(Body::Length(n)),
            (None, Length::Absent) => Next::Stop(Error::UntilClose),
        }
    };
    let content_length = fields.content_length();
    out.push(Response {
        content_type: fields.content_type,
        content_length,
        location: fields.location,
        chunked: matches!(next, Next::Body(Body::Chunked(_))),
        head_len,
        ..resp
    });
    Ok(HeadStep::Done {
        len: head_len,
        next,
    })
}

fn parse_response_httparse(head: &[u8]) -> Option<(Response, Fields)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let mut config = httparse::ParserConfig::default();
    config
        .ignore_invalid_headers_in_responses(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true);
    match config.parse_response(&mut resp, head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let response = Response {
        status: resp.code?,
        protocol: version_string(resp.version),
        ..Response::default()
    };
    Some((response, Fields::from_httparse(resp.headers)))
}

/// Hand-written status-line parser where httparse says no (e.g. an odd
/// version such as `HTTP/1.1.1`, a missing space, non-UTF-8 reason):
/// `HTTP/1.x`, spaces, three digits, anything.
fn parse_response_lenient(head: &[u8], line1_lf: usize) -> Result<(Response, Fields), Error> {
    let line = strip_cr(head.get(..line1_lf).unwrap_or_default());
    let version_len = line
        .iter()
        .take_while(|&&c| c != b' ' && c != b'\t')
        .count();
    let version = line.get(..version_len).unwrap_or_default();
    let rest = line.get(version_len..).map(trim).unwrap_or_default();
    let status = match rest {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9', tail @ ..]
            if matches!(tail.first(), None | Some(b' ' | b'\t')) =>
        {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(Error::NotHttp),
    };
    let fields = Fields::from_lenient_lines(lines(head.get(line1_lf + 1..).unwrap_or_default()));
    let response = Response {
        status,
        protocol: escape(version),
        lenient: true,
        ..Response::default()
    };
    Ok((response, fields))
}
