//! HTTP/1.x decoder for one TCP connection: request heads from the client
//! direction ([`ClientParser`]), response heads from the server direction
//! ([`ServerParser`]).
//!
//! # Job
//! The caller keeps the in-order, not yet consumed bytes of one direction and
//! calls `feed(&buf, &mut out)`. The parser appends every complete message
//! head it finds to `out` and returns how many leading bytes of `buf` it is
//! done with ([`Feed::Consumed`]); the caller drops those and calls again later
//! with the remainder plus new bytes. Between calls the parser remembers where
//! it is: body bytes still to skip (`Content-Length`), the position inside a
//! chunked body (parsed chunk by chunk), so keep-alive and pipelined messages
//! are all found. Bodies are skipped, never buffered or returned.
//!
//! Heads are parsed with `httparse`. Where httparse rejects a head that a
//! sensor must still report, a small hand-written parser takes over
//! ([`Request::lenient`] / [`Response::lenient`] is then set): HTTP/0.9
//! request lines without a version (`GET /path`), a known method alone on a
//! line, broken versions (`HTTP/1.`), several spaces between tokens,
//! non-UTF-8 bytes in the request-target, malformed header lines, status
//! lines with a lower-case or odd version (`http/1.1 200`, `HTTP/1.1.1`). The
//! request-line split follows tshark (first space ends the method, the last
//! space before an `HTTP/` token starts the version), so that `OPTIONS  HTTP/1.1`
//! gives the URI `HTTP/1.1`, as the tshark oracle does.
//!
//! # Caps (every loop over input is bounded; hitting a cap is an [`Error`])
//! - [`MAX_HEAD_LEN`]: a head (start line + headers + blank line) must end
//!   within this many bytes, else [`Error::HeadTooLong`].
//! - [`MAX_HEADERS`]: header lines looked at per head; further ones ignored.
//! - [`MAX_METHOD_LEN`]: longest method token accepted.
//! - [`MAX_CHUNK_LINE_LEN`]: longest chunk-size line (size + extensions),
//!   else [`Error::BadChunk`]; at most 16 hex digits.
//! - [`MAX_TRAILER_LEN`]: total trailer bytes after the last chunk, else
//!   [`Error::TrailerTooLong`].
//! - [`MAX_RESYNC_LEN`]: bytes skipped after a [`ClientParser::gap`] /
//!   [`ServerParser::gap`] while looking for the next message start, else
//!   [`Error::ResyncFailed`].
//! - [`MAX_PENDING_METHODS`]: request methods remembered by the server side.
//!
//! # Guarantees
//! - No panics on any input: no `unwrap`, `expect` or unchecked indexing on
//!   input-derived positions (slices are taken with `get`), no arithmetic that
//!   can overflow on input-derived values. No `unsafe`.
//! - Progress: every `feed` returns after at most `buf.len() + 1` loop rounds;
//!   each round consumes at least one byte or returns.
//! - Bounded buffering: after `Feed::Consumed(n)` the caller is left holding
//!   fewer than [`MAX_HEAD_LEN`] unconsumed bytes (the parser never waits on
//!   more than that), so per-direction memory is bounded.
//! - Allocation: only the owned strings of emitted [`Request`]/[`Response`]
//!   values and a bounded method queue; heads are parsed in place (httparse
//!   header array on the stack).
//! - Once `Stop` (or `Tunnel`) is returned, every later `feed` returns the same
//!   verdict (`Tunnel(0)` for tunnels) without looking at the input.
//!
//! # Limits
//! - A client `Upgrade` (WebSocket, h2c) is only known to succeed from the
//!   server's `101`; the server side returns [`Feed::Tunnel`] then, while the
//!   client side will stop with [`Error::NotHttp`] on the first frame: the
//!   caller should stop feeding both directions on either `Tunnel`.
//! - Responses to `HEAD` / `CONNECT` are only framed correctly when the caller
//!   reports request methods with [`ServerParser::request_method`].
//! - HTTP/0.9 responses (no status line) are not recognised ([`Error::NotHttp`]).
//! - Obsolete line folding is ignored by the hand-written header parser (the
//!   continuation lines are skipped).

use std::collections::VecDeque;
use std::fmt::Write as _;

/// Longest message head (start line, header lines and the blank line).
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// Header lines examined per head; later lines are ignored (httparse's
/// `TooManyHeaders` falls back to the hand-written parser, which stops there).
pub const MAX_HEADERS: usize = 128;
/// Longest method token accepted in a request line.
pub const MAX_METHOD_LEN: usize = 32;
/// Longest chunk-size line, chunk extensions included.
pub const MAX_CHUNK_LINE_LEN: usize = 1024;
/// Most trailer bytes accepted after the last chunk of a chunked body.
pub const MAX_TRAILER_LEN: usize = 16 * 1024;
/// Most bytes skipped after a gap while looking for the next message.
pub const MAX_RESYNC_LEN: usize = 1024 * 1024;
/// Request methods remembered by [`ServerParser::request_method`] until
/// their response arrives; further ones are dropped (and counted).
pub const MAX_PENDING_METHODS: usize = 64;
/// Longest all-caps token [`looks_like_request`] accepts as an unknown method.
const MAX_DETECT_METHOD_LEN: usize = 20;
/// Shortest all-caps token [`looks_like_request`] accepts as an unknown method.
const MIN_DETECT_METHOD_LEN: usize = 3;

/// Methods known to be HTTP: RFC 9110, PATCH, WebDAV (RFC 4918, 3253, 3648,
/// 3744, 4791, 5323, 5842), UPnP/SSDP, cache purges, Microsoft extensions.
/// Used by [`looks_like_request`] and to accept version-less request lines.
/// A `match` rather than a table walk: the compiler dispatches on length and
/// bytes, where a list costs a comparison per entry on every non-method token.
#[rustfmt::skip]
fn is_known_method(m: &[u8]) -> bool {
    matches!(
        m,
        b"GET" | b"HEAD" | b"POST" | b"PUT" | b"DELETE" | b"CONNECT" | b"OPTIONS" | b"TRACE"
            | b"PATCH" | b"QUERY" | b"PROPFIND" | b"PROPPATCH" | b"MKCOL" | b"COPY" | b"MOVE"
            | b"LOCK" | b"UNLOCK" | b"SEARCH" | b"REPORT" | b"CHECKOUT" | b"CHECKIN"
            | b"UNCHECKOUT" | b"MKWORKSPACE" | b"UPDATE" | b"LABEL" | b"MERGE"
            | b"BASELINE-CONTROL" | b"MKACTIVITY" | b"VERSION-CONTROL" | b"ORDERPATCH" | b"ACL"
            | b"MKCALENDAR" | b"MKREDIRECTREF" | b"UPDATEREDIRECTREF" | b"BIND" | b"UNBIND"
            | b"REBIND" | b"NOTIFY" | b"SUBSCRIBE" | b"UNSUBSCRIBE" | b"M-SEARCH" | b"PURGE"
            | b"LINK" | b"UNLINK" | b"POLL" | b"BCOPY" | b"BDELETE" | b"BMOVE" | b"BPROPFIND"
            | b"BPROPPATCH" | b"CCM_POST" | b"RPC_IN_DATA" | b"RPC_OUT_DATA"
            | b"SSTP_DUPLEX_POST"
    )
}

/// One request head.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Method token as sent (any case).
    pub method: String,
    /// Request-target verbatim (origin-, absolute-, authority- or asterisk-form).
    pub uri: String,
    /// `HTTP/1.1`, `HTTP/1.0`, `HTTP/0.9` (no version on the line), or the
    /// version token verbatim when it is odd (e.g. `HTTP/1.`).
    pub protocol: String,
    /// `Host` value verbatim (may include `:port`); repeats joined with `,`.
    pub host: Option<String>,
    /// `User-Agent`; repeats joined with `,`.
    pub user_agent: Option<String>,
    /// `Referer`; repeats joined with `,`.
    pub referer: Option<String>,
    /// `Content-Type`; repeats joined with `,`.
    pub content_type: Option<String>,
    /// `Content-Length` when valid (identical repeats allowed).
    pub content_length: Option<u64>,
    /// `X-Forwarded-For`; repeats joined with `,`.
    pub xff: Option<String>,
    /// Body uses chunked transfer coding.
    pub chunked: bool,
    /// httparse rejected the head; the hand-written parser produced this one.
    pub lenient: bool,
    /// Bytes of the head, blank line included.
    pub head_len: usize,
}

/// One response head.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// Status code, 100..=999.
    pub status: u16,
    /// `HTTP/1.1`, `HTTP/1.0`, or the version token verbatim when odd.
    pub protocol: String,
    /// `Content-Type`; repeats joined with `,`.
    pub content_type: Option<String>,
    /// `Content-Length` when valid (identical repeats allowed).
    pub content_length: Option<u64>,
    /// `Location`; repeats joined with `,`.
    pub location: Option<String>,
    /// Body uses chunked transfer coding.
    pub chunked: bool,
    /// httparse rejected the head; the hand-written parser produced this one.
    pub lenient: bool,
    /// Bytes of the head, blank line included.
    pub head_len: usize,
}

/// Outcome of one `feed` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// This many leading bytes are done with; 0 means "call again with more".
    Consumed(usize),
    /// Consumed up to the end of a `CONNECT` request head, a `101` response
    /// or a 2xx answer to `CONNECT`: what follows is not HTTP (often TLS).
    Tunnel(usize),
    /// Not HTTP or given up: the caller stops feeding this direction.
    Stop(Error),
}

/// Why a direction was given up. Small and `Copy`: count it, do not bubble it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The first bytes are not an HTTP/1.x request line / status line.
    #[error("not HTTP/1.x")]
    NotHttp,
    /// The HTTP/2 connection preface (`PRI * HTTP/2.0`).
    #[error("HTTP/2 connection preface")]
    Http2,
    /// A head did not end within [`MAX_HEAD_LEN`] bytes.
    #[error("message head longer than {MAX_HEAD_LEN} bytes")]
    HeadTooLong,
    /// `Content-Length` is not a number or repeats with different values.
    #[error("invalid or conflicting Content-Length")]
    BadContentLength,
    /// A request `Transfer-Encoding` whose final coding is not `chunked`.
    #[error("request Transfer-Encoding without final chunked")]
    BadTransferEncoding,
    /// Malformed chunk-size line or missing CRLF after chunk data.
    #[error("malformed chunked body")]
    BadChunk,
    /// More than [`MAX_TRAILER_LEN`] trailer bytes.
    #[error("chunked trailer longer than {MAX_TRAILER_LEN} bytes")]
    TrailerTooLong,
    /// A response body delimited by connection close: nothing more to parse.
    /// This is a normal end, not an anomaly (see [`Error::is_anomaly`]).
    #[error("response body runs to connection close")]
    UntilClose,
    /// No message start within [`MAX_RESYNC_LEN`] bytes after a gap.
    #[error("no message start within {MAX_RESYNC_LEN} bytes after a gap")]
    ResyncFailed,
}

impl Error {
    /// Short stable name for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NotHttp => "not_http",
            Error::Http2 => "http2_preface",
            Error::HeadTooLong => "head_too_long",
            Error::BadContentLength => "bad_content_length",
            Error::BadTransferEncoding => "bad_transfer_encoding",
            Error::BadChunk => "bad_chunk",
            Error::TrailerTooLong => "trailer_too_long",
            Error::UntilClose => "until_close",
            Error::ResyncFailed => "resync_failed",
        }
    }

    /// False for the normal end [`Error::UntilClose`], true otherwise.
    pub fn is_anomaly(&self) -> bool {
        !matches!(self, Error::UntilClose)
    }
}

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
    let is_upper_token = |t: &[u8]| {
        t.iter()
            .all(|&c| c.is_ascii_uppercase() || c == b'_' || c == b'-')
    };
    // One pass to the first space or line end.
    match window
        .iter()
        .position(|&c| c == b' ' || c == b'\r' || c == b'\n')
    {
        None => {
            if window.len() <= MAX_DETECT_METHOD_LEN && is_upper_token(window) {
                Verdict::NeedMore
            } else {
                Verdict::No
            }
        }
        Some(end) => {
            let token = window.get(..end).unwrap_or_default();
            if window.get(end) != Some(&b' ') {
                // A known method alone on its line (`OPTIONS\r\n`) is a request too, as
                // tshark sees it.
                return if is_known_method(token) {
                    Verdict::Yes
                } else {
                    Verdict::No
                };
            }
            let generic = token.len() >= MIN_DETECT_METHOD_LEN
                && is_upper_token(token)
                && token.iter().any(u8::is_ascii_uppercase);
            if generic || is_known_method(token) {
                Verdict::Yes
            } else {
                Verdict::No
            }
        }
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

/// RFC 9110 `tchar`, as a table: request lines and header names test it per byte.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        c += 1;
    }
    t
};

/// RFC 9110 `tchar`.
fn is_tchar(c: u8) -> bool {
    TCHAR.get(usize::from(c)).copied().unwrap_or(false)
}

// ---------------------------------------------------------------------------
// Small byte helpers

/// Bytes as a String: valid UTF-8 kept, invalid bytes and ASCII control
/// characters written as `\xNN` (tshark's presentation).
fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    push_escaped(&mut s, bytes);
    s
}

/// [`escape`] for text already known to be UTF-8 (httparse hands out the
/// method and the request-target as `&str`): no second validation.
fn escape_str(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    push_escaped_str(&mut s, text);
    s
}

/// Appends `bytes` escaped as [`escape`] does.
fn push_escaped(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => push_escaped_str(out, text),
        Err(_) => push_escaped_slow(out, bytes),
    }
}

/// Appends valid UTF-8 `text`, ASCII control characters written as `\xNN`.
fn push_escaped_str(out: &mut String, text: &str) {
    // The common case, no control character, is one copy. `fold` rather than
    // `any`: without the early exit the test is a vector loop.
    let control = text
        .bytes()
        .fold(false, |seen, b| seen | (b < 0x20) | (b == 0x7f));
    if control {
        push_escaped_slow(out, text.as_bytes());
    } else {
        out.push_str(text);
    }
}

fn push_escaped_slow(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii_control() {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
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
    // memchr looks at a vector of bytes per step, where a `position` loop
    // looks at one: the head is searched line by line.
    let line1_lf = memchr::memchr(b'\n', window);
    let mut start = from.min(window.len());
    let tail = window.get(start..).unwrap_or_default();
    let base = start;
    // Bounded: one round per LF of the window.
    for rel in memchr::memchr_iter(b'\n', tail) {
        let lf = base + rel;
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

/// Header fields of interest, gathered from either parser. Only the fields the
/// message kind reports are kept (a `Location` in a request or a `Host` in a
/// response is never reported, so it is not copied).
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
    /// The head is a response: keep `location`, not the request fields.
    response: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Length {
    #[default]
    Absent,
    Valid(u64),
    Invalid,
}

/// Appends `value` (escaped) to a field, `,`-joining repeats.
fn join(slot: &mut Option<String>, value: &[u8]) {
    match slot {
        Some(s) => {
            s.push(',');
            push_escaped(s, value);
        }
        None => *slot = Some(escape(value)),
    }
}

impl Fields {
    fn new(response: bool) -> Self {
        Fields {
            response,
            ..Fields::default()
        }
    }

    fn add(&mut self, name: &[u8], value: &[u8]) {
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        let (request, response) = (!self.response, self.response);
        // The length picks the one candidate name; most headers stop there.
        let slot = match name.len() {
            4 if request && is(b"host") => &mut self.host,
            10 if request && is(b"user-agent") => &mut self.user_agent,
            7 if request && is(b"referer") => &mut self.referer,
            12 if is(b"content-type") => &mut self.content_type,
            15 if request && is(b"x-forwarded-for") => &mut self.xff,
            8 if response && is(b"location") => &mut self.location,
            14 if is(b"content-length") => return self.add_content_length(trim(value)),
            17 if is(b"transfer-encoding") => {
                let last = trim(value).split(|&c| c == b',').map(trim).next_back();
                self.transfer_encoding =
                    Some(last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")));
                return;
            }
            _ => return,
        };
        join(slot, trim(value));
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
    fn from_lenient_lines<'a>(
        response: bool,
        header_lines: impl Iterator<Item = &'a [u8]>,
    ) -> Self {
        let mut f = Fields::new(response);
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

    fn from_httparse(response: bool, headers: &[httparse::Header<'_>]) -> Self {
        let mut f = Fields::new(response);
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
    // httparse first, at the start of a head: on a complete head it finds the end itself
    // (see `parse_first`), so the head is searched only when httparse says no.
    let fresh = *scan_from == 0;
    let parsed = if fresh {
        parse_request_httparse(b.get(..MAX_HEAD_LEN).unwrap_or(b))
    } else {
        None
    };
    let (req, fields, head_len) = match parsed {
        Some(parsed) => {
            *after_http09 = false;
            parsed
        }
        None => {
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
            // After a fresh attempt httparse has already said no to this head.
            match parse_request_httparse(head).filter(|_| !fresh) {
                Some(parsed) => parsed,
                None => {
                    let (req, fields) = parse_request_lenient(head, line1_lf)?;
                    (req, fields, head_len)
                }
            }
        }
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
    let fields =
        Fields::from_lenient_lines(false, lines(head.get(line1_lf + 1..).unwrap_or_default()));
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

/// httparse on the bytes from a head start (at most [`MAX_HEAD_LEN`]): the
/// request, its fields and the head length when httparse finds a complete
/// head, `None` when it rejects the bytes or wants more.
///
/// # `parse_first`: why httparse may go before the head search
/// httparse reads line by line, every line ending at an LF (a CR must be
/// followed by one, else it fails), and ends the head at the first line that
/// is empty or a lone CR; header lines it ignores are skipped to their LF. So
/// a complete parse ends exactly where [`scan_head`] finds the first empty
/// line, and httparse's answer on those bytes is its answer on the head alone
/// (it never reads past the blank line). When it says no, the head search
/// runs as before and httparse is not asked again about the same head: the
/// hand-written parser takes it. The differential tests against
/// `reference` hold this on real and mutated traffic.
///
/// The header array is left uninitialised (httparse writes the entries it
/// returns), which spares writing all [`MAX_HEADERS`] entries per head.
fn parse_request_httparse(head: &[u8]) -> Option<(Request, Fields, usize)> {
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let mut config = httparse::ParserConfig::default();
    config.ignore_invalid_headers_in_requests(true);
    let len = match config.parse_request_with_uninit_headers(&mut req, head, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    let request = Request {
        method: escape_str(req.method?),
        uri: escape_str(req.path?),
        protocol: version_string(req.version),
        ..Request::default()
    };
    Some((request, Fields::from_httparse(false, req.headers), len))
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
    // httparse first, at the start of a head (see `parse_first`).
    let fresh = *scan_from == 0;
    let parsed = if fresh {
        parse_response_httparse(b.get(..MAX_HEAD_LEN).unwrap_or(b))
    } else {
        None
    };
    let (resp, fields, head_len) = match parsed {
        Some(parsed) => parsed,
        None => {
            let (head_len, line1_lf) = match scan_head(b, *scan_from) {
                Scan::TooLong => return Err(Error::HeadTooLong),
                Scan::Partial { resume, .. } => {
                    *scan_from = resume;
                    return Ok(HeadStep::Wait);
                }
                Scan::Found { head_len, line1_lf } => (head_len, line1_lf),
            };
            let head = b.get(..head_len).unwrap_or(b);
            // After a fresh attempt httparse has already said no to this head.
            match parse_response_httparse(head).filter(|_| !fresh) {
                Some(parsed) => parsed,
                None => {
                    let (resp, fields) = parse_response_lenient(head, line1_lf)?;
                    (resp, fields, head_len)
                }
            }
        }
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

/// httparse on the bytes from a status line, as [`parse_request_httparse`].
fn parse_response_httparse(head: &[u8]) -> Option<(Response, Fields, usize)> {
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let mut config = httparse::ParserConfig::default();
    config
        .ignore_invalid_headers_in_responses(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true);
    let len = match config.parse_response_with_uninit_headers(&mut resp, head, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    let response = Response {
        status: resp.code?,
        protocol: version_string(resp.version),
        ..Response::default()
    };
    Some((response, Fields::from_httparse(true, resp.headers), len))
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
    let fields =
        Fields::from_lenient_lines(true, lines(head.get(line1_lf + 1..).unwrap_or_default()));
    let response = Response {
        status,
        protocol: escape(version),
        lenient: true,
        ..Response::default()
    };
    Ok((response, fields))
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {

    #[test]
    fn escape_keeps_printable_ascii_and_utf8_and_marks_the_rest() {
        assert_eq!(escape(b"GET /a?b=c d~"), "GET /a?b=c d~");
        assert_eq!(escape(b""), "");
        assert_eq!(escape(b"a\x01\x7f\xffb\tc"), "a\\x01\\x7f\\xffb\\x09c");
        assert_eq!(escape("caf\u{e9}".as_bytes()), "caf\u{e9}");
    }
    use super::*;
    use crate::testutil::Rng;

    /// Feeds `data` in pieces of `chunk` bytes the way the caller does
    /// (keeping unconsumed bytes), returning what was found and the last verdict.
    fn client_in_chunks(data: &[u8], chunk: usize) -> (Vec<Request>, Feed) {
        let mut p = ClientParser::new();
        let mut out = Vec::new();
        let mut held: Vec<u8> = Vec::new();
        let mut last = Feed::Consumed(0);
        for piece in data.chunks(chunk.max(1)) {
            held.extend_from_slice(piece);
            last = p.feed(&held, &mut out);
            match last {
                Feed::Consumed(n) => {
                    held.drain(..n);
                }
                Feed::Tunnel(_) | Feed::Stop(_) => break,
            }
        }
        (out, last)
    }

    fn client(data: &[u8]) -> (Vec<Request>, Feed) {
        client_in_chunks(data, data.len())
    }

    fn server(data: &[u8], methods: &[&str]) -> (Vec<Response>, Feed) {
        let mut p = ServerParser::new();
        for m in methods {
            p.request_method(m);
        }
        let mut out = Vec::new();
        let f = p.feed(data, &mut out);
        (out, f)
    }

    #[test]
    fn simple_get() {
        let data = b"GET /index.html?a=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8.0\r\nReferer: http://x/\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n";
        let (out, f) = client(data);
        assert_eq!(f, Feed::Consumed(data.len()));
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!(r.method, "GET");
        assert_eq!(r.uri, "/index.html?a=1");
        assert_eq!(r.protocol, "HTTP/1.1");
        assert_eq!(r.host.as_deref(), Some("example.com:8080"));
        assert_eq!(r.user_agent.as_deref(), Some("curl/8.0"));
        assert_eq!(r.referer.as_deref(), Some("http://x/"));
        assert_eq!(r.xff.as_deref(), Some("10.0.0.1"));
        assert!(!r.lenient);
        assert_eq!(r.head_len, data.len());
    }

    #[test]
    fn two_pipelined_requests_in_one_buffer() {
        let data = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.0\r\nHost: h\r\n\r\n";
        let (out, f) = client(data);
        assert_eq!(f, Feed::Consumed(data.len()));
        let uris: Vec<_> = out.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(uris, ["/a", "/b"]);
        assert_eq!(out[1].protocol, "HTTP/1.0");
    }

    #[test]
    fn head_split_across_two_feeds() {
        let data = b"GET /split HTTP/1.1\r\nHost: exa";
        let mut p = ClientParser::new();
        let mut out = Vec::new();
        assert_eq!(p.feed(data, &mut out), Feed::Consumed(0));
        assert!(out.is_empty());
        let full = b"GET /split HTTP/1.1\r\nHost: example.com\r\n\r\n";
        assert_eq!(p.feed(full, &mut out), Feed::Consumed(full.len()));
        assert_eq!(out[0].host.as_deref(), Some("example.com"));
        // Every split point and a byte-at-a-time feed give the same answer.
        for chunk in 1..full.len() {
            let (out, _) = client_in_chunks(full, chunk);
            assert_eq!(out.len(), 1, "chunk {chunk}");
            assert_eq!(out[0].host.as_deref(), Some("example.com"));
        }
    }

    #[test]
    fn post_with_content_length_then_get() {
        let data = b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 27\r\n\r\nGET /not-a-request HTTP/1.1GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
        for chunk in [1, 7, 64, data.len()] {
            let (out, f) = client_in_chunks(data, chunk);
            assert!(matches!(f, Feed::Consumed(_)));
            assert_eq!(out.len(), 2, "chunk {chunk}");
            assert_eq!(out[0].method, "POST");
            assert_eq!(out[0].content_length, Some(27));
            assert_eq!(
                out[0].content_type.as_deref(),
                Some("application/x-www-form-urlencoded")
            );
            assert_eq!(out[1].uri, "/next");
        }
    }

    #[test]
    fn chunked_body_then_get() {
        let data = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n";
        for chunk in [1, 3, 10, data.len()] {
            let (out, f) = client_in_chunks(data, chunk);
            assert!(matches!(f, Feed::Consumed(_)), "{f:?}");
            assert_eq!(out.len(), 2, "chunk {chunk}");
            assert!(out[0].chunked);
            assert_eq!(out[1].uri, "/after");
        }
    }

    #[test]
    fn bad_chunk_size_stops() {
        let data = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(client(data).1, Feed::Stop(Error::BadChunk));
    }

    #[test]
    fn connect_is_a_tunnel() {
        let head = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
        let mut data = head.to_vec();
        data.extend_from_slice(&[0x16, 0x03, 0x01, 0x02, 0x00]);
        let mut p = ClientParser::new();
        let mut out = Vec::new();
        assert_eq!(p.feed(&data, &mut out), Feed::Tunnel(head.len()));
        assert_eq!(out[0].uri, "example.com:443");
        assert_eq!(p.feed(&data[head.len()..], &mut out), Feed::Tunnel(0));
    }

    #[test]
    fn http09_request() {
        let (out, f) = client(b"GET /old.html\r\n");
        assert_eq!(f, Feed::Consumed(15));
        assert_eq!(out[0].protocol, "HTTP/0.9");
        assert_eq!(out[0].uri, "/old.html");
        assert!(out[0].lenient);
        // tshark reads header lines after a version-less line.
        let (out, _) = client(b"GET /HTTP/1.1\nHost: www.google.com\n\n");
        assert_eq!(out[0].uri, "/HTTP/1.1");
        assert_eq!(out[0].host.as_deref(), Some("www.google.com"));
        // Odd request lines of zeek-http-methods, split as tshark does.
        let (out, _) = client(b"OPTIONS HTTP/1.1\nHost: g\n\n");
        assert_eq!(
            (out[0].method.as_str(), out[0].uri.as_str()),
            ("OPTIONS", "HTTP/1.1")
        );
        let (out, _) = client(b"OPTIONS\nHost: g\n\n");
        assert_eq!(
            (out[0].method.as_str(), out[0].uri.as_str()),
            ("OPTIONS", "")
        );
        let (out, _) = client(b"GET / HTTP/1.\nHost: g\n\n");
        assert_eq!(out[0].protocol, "HTTP/1.");
        assert_eq!(
            client(b"GET/ HTTP/1.1\nHost: g\n\n").1,
            Feed::Stop(Error::NotHttp)
        );
        assert_eq!(
            client(b"\xc3\x83\xc3 / HTTP/1.\n\n").1,
            Feed::Stop(Error::NotHttp)
        );
        // Other text protocols are not HTTP/0.9.
        assert_eq!(
            client(b"EHLO mail.example.com\r\nMAIL FROM:<a@b>\r\n").1,
            Feed::Stop(Error::NotHttp)
        );
    }

    #[test]
    fn http09_line_then_partial_header_waits() {
        // Regression: `Host: w` (incomplete, has a space) was not seen as a
        // header start, so the 0.9 line was reported and `Host:` hit NotHttp.
        let mut p = ClientParser::new();
        let mut out = Vec::new();
        assert_eq!(
            p.feed(b"OPTIONS HTTP/1.1\nHost: w", &mut out),
            Feed::Consumed(0)
        );
        let full = b"OPTIONS HTTP/1.1\nHost: www.google.com\n\n";
        assert_eq!(p.feed(full, &mut out), Feed::Consumed(full.len()));
        assert_eq!(out[0].host.as_deref(), Some("www.google.com"));
        // Split right after the line: reported at once (HTTP/0.9), the late
        // header lines are skipped, not taken for a new request.
        let (out, f) =
            client_in_chunks(b"GET /old\r\nHost: h\r\n\r\nGET /new HTTP/1.1\r\n\r\n", 10);
        assert!(matches!(f, Feed::Consumed(_)));
        let uris: Vec<_> = out.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(uris, ["/old", "/new"]);
    }

    #[test]
    fn head_too_long_stops() {
        let mut data = b"GET / HTTP/1.1\r\n".to_vec();
        while data.len() <= MAX_HEAD_LEN {
            data.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let (out, f) = client_in_chunks(&data, 1000);
        assert!(out.is_empty());
        assert_eq!(f, Feed::Stop(Error::HeadTooLong));
    }

    #[test]
    fn lower_case_header_names_and_repeats() {
        let data = b"get /x HTTP/1.1\r\nhost: a.example\r\nuser-agent: one\r\nHOST: b.example\r\nUser-Agent: two\r\ncontent-length: 0\r\n\r\n";
        let (out, _) = client(data);
        assert_eq!(out[0].method, "get");
        assert_eq!(out[0].host.as_deref(), Some("a.example,b.example"));
        assert_eq!(out[0].user_agent.as_deref(), Some("one,two"));
        assert_eq!(out[0].content_length, Some(0));
    }

    #[test]
    fn non_utf8_is_escaped() {
        let (out, _) = client(b"GET /caf\xe9\x01 HTTP/1.1\r\nUser-Agent: \xff\xfe\r\n\r\n");
        assert_eq!(out[0].uri, "/caf\\xe9\\x01");
        assert_eq!(out[0].user_agent.as_deref(), Some("\\xff\\xfe"));
        assert!(out[0].lenient);
    }

    #[test]
    fn conflicting_content_length_reports_then_stops() {
        let (out, f) =
            client(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello");
        assert_eq!(out.len(), 1);
        assert_eq!(f, Feed::Stop(Error::BadContentLength));
        let data = b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello";
        let (out, f) = client(data);
        assert_eq!(out[0].content_length, Some(5));
        assert_eq!(f, Feed::Consumed(data.len()));
    }

    #[test]
    fn not_http_is_rejected_early() {
        let mut p = ClientParser::new();
        let mut out = Vec::new();
        assert_eq!(
            p.feed(&[0x16, 0x03, 0x01], &mut out),
            Feed::Stop(Error::NotHttp)
        );
        assert_eq!(
            p.feed(b"GET / HTTP/1.1\r\n\r\n", &mut out),
            Feed::Stop(Error::NotHttp)
        );
        assert_eq!(
            client(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").1,
            Feed::Stop(Error::Http2)
        );
    }

    #[test]
    fn gap_resyncs_on_next_request_line() {
        let mut p = ClientParser::new();
        let mut out = Vec::new();
        let first = b"POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789";
        assert_eq!(p.feed(first, &mut out), Feed::Consumed(first.len()));
        p.gap();
        let after = b"6789\r\nGET this is body text\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(p.feed(after, &mut out), Feed::Consumed(after.len()));
        let uris: Vec<_> = out.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(uris, ["/a", "/b"]);
    }

    #[test]
    fn response_200_with_body_then_304() {
        let data = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 12\r\n\r\nHTTP/1.1 200HTTP/1.1 304 Not Modified\r\nContent-Length: 999\r\n\r\nHTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n";
        let (out, f) = server(data, &["GET", "GET", "GET"]);
        assert_eq!(f, Feed::Consumed(data.len()));
        let codes: Vec<_> = out.iter().map(|r| r.status).collect();
        assert_eq!(codes, [200, 304, 302]);
        assert_eq!(out[0].content_type.as_deref(), Some("text/html"));
        assert_eq!(out[0].content_length, Some(12));
        assert_eq!(out[2].location.as_deref(), Some("/x"));
    }

    #[test]
    fn head_response_without_body() {
        let data = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let (out, f) = server(data, &["HEAD", "GET"]);
        assert_eq!(f, Feed::Consumed(data.len()));
        assert_eq!(out.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 404]);
    }

    #[test]
    fn response_framing_cases() {
        // 100 Continue does not answer the request; chunked body; then close-delimited.
        let data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.0 200 OK\r\n\r\nbody to close";
        let (out, f) = server(data, &["POST", "GET"]);
        assert_eq!(
            out.iter().map(|r| r.status).collect::<Vec<_>>(),
            [100, 200, 200]
        );
        assert!(out[1].chunked);
        assert_eq!(f, Feed::Stop(Error::UntilClose));
        assert!(!Error::UntilClose.is_anomaly());
        // 101 and 2xx-to-CONNECT are tunnels.
        let up = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05";
        assert_eq!(server(up, &["GET"]).1, Feed::Tunnel(up.len() - 2));
        let ok = b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03";
        assert_eq!(server(ok, &["CONNECT"]).1, Feed::Tunnel(ok.len() - 3));
        // Lenient status line.
        let (out, _) = server(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", &[]);
        assert_eq!(out[0].status, 200);
        let (out, _) = server(b"HTTP/1.1.1 404 \xff\r\nContent-Length: 0\r\n\r\n", &[]);
        assert_eq!((out[0].status, out[0].lenient), (404, true));
        assert_eq!(
            server(b"SSH-2.0-OpenSSH\r\n", &[]).1,
            Feed::Stop(Error::NotHttp)
        );
    }

    #[test]
    fn detection() {
        for yes in [
            &b"GET / HTTP/1.1"[..],
            b"PROPFIND /d",
            b"M-SEARCH * HTTP/1.1",
            b"CCM_POST /",
            b"FOOBAR /",
        ] {
            assert!(looks_like_request(yes), "{yes:?}");
        }
        for no in [
            &b"get / HTTP/1.1"[..],
            b"\x16\x03\x01",
            b"GE",
            b"A /",
            b"GET/ x",
            b"THISISAVERYLONGTOKENXYZ /",
        ] {
            assert!(!looks_like_request(no), "{no:?}");
        }
        assert!(looks_like_response(b"HTTP/1.1 200 OK"));
        assert!(!looks_like_response(b"HTTP/2 200"));
        assert_eq!(Error::HeadTooLong.reason(), "head_too_long");
    }

    const SEEDS: &[&[u8]] = &[
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
        b"POST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\nT: 1\r\n\r\n",
        b"GET /09\r\n",
        b"OPTIONS\nHost: x\n\n",
        b"CONNECT h:443 HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nclose",
    ];
    const TOKENS: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b" ",
        b":",
        b"Content-Length: ",
        b"Transfer-Encoding: chunked\r\n",
        b"ffffffffffffffff",
        b"18446744073709551616",
        b"0\r\n",
        b";",
        b"HTTP/1.1",
        b"HTTP/2.0",
        b"GET ",
        b"\x00",
        b"\xff",
        b"Host: ",
        b"HTTP/1.1 101 x\r\n",
        b"9999999999",
    ];

    fn mutated(rng: &mut Rng) -> Vec<u8> {
        let mut data = Vec::new();
        for _ in 0..1 + rng.index(4) {
            data.extend_from_slice(SEEDS[rng.index(SEEDS.len())]);
        }
        for _ in 0..rng.index(6) {
            let at = rng.index(data.len() + 1);
            match rng.index(4) {
                0 => data.insert(at, rng.next() as u8),
                1 if at < data.len() => {
                    data.remove(at);
                }
                2 if at < data.len() => data[at] = rng.next() as u8,
                _ => {
                    let t = TOKENS[rng.index(TOKENS.len())];
                    data.splice(at..at, t.iter().copied());
                }
            }
        }
        if rng.index(50) == 0 {
            data.resize(data.len() + rng.index(40_000), b'a');
        }
        data
    }

    /// Feeds `data` in random chunks with occasional gaps; checks the
    /// contract: no panic, consumed <= len, bounded leftover, stable stop.
    fn drive_random<T>(
        rng: &mut Rng,
        data: &[u8],
        mut feed: impl FnMut(&[u8], &mut Vec<T>) -> Feed,
        mut gap: impl FnMut(),
    ) -> usize {
        let mut held: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let n = 1 + rng.index(64.min(data.len() - at).max(1));
            if rng.index(200) == 0 {
                held.clear();
                gap();
                at += n;
                continue;
            }
            held.extend_from_slice(&data[at..at + n]);
            at += n;
            match feed(&held, &mut out) {
                Feed::Consumed(c) => {
                    assert!(c <= held.len());
                    held.drain(..c);
                    assert!(
                        held.len() < MAX_HEAD_LEN + 64,
                        "unbounded buffering: {}",
                        held.len()
                    );
                }
                Feed::Tunnel(c) => {
                    assert!(c <= held.len());
                    assert_eq!(feed(&held[c..], &mut out), Feed::Tunnel(0));
                    return out.len();
                }
                Feed::Stop(e) => {
                    assert_eq!(feed(&held, &mut out), Feed::Stop(e));
                    return out.len();
                }
            }
        }
        out.len()
    }

    #[test]
    fn robustness_random_inputs_in_random_chunkings() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let rounds = 150_000;
        let (mut requests, mut responses) = (0usize, 0usize);
        for _ in 0..rounds {
            let data = mutated(&mut rng);
            let mut c = ClientParser::new();
            let c_ptr = std::cell::RefCell::new(&mut c);
            requests += drive_random(
                &mut rng,
                &data,
                |b, out: &mut Vec<Request>| c_ptr.borrow_mut().feed(b, out),
                || c_ptr.borrow_mut().gap(),
            );
            let mut s = ServerParser::new();
            s.request_method(["GET", "HEAD", "CONNECT"][rng.index(3)]);
            let s_ptr = std::cell::RefCell::new(&mut s);
            responses += drive_random(
                &mut rng,
                &data,
                |b, out: &mut Vec<Response>| s_ptr.borrow_mut().feed(b, out),
                || s_ptr.borrow_mut().gap(),
            );
        }
        // The mutations must leave most messages parseable, or this tests little.
        assert!(
            requests > rounds / 2 && responses > rounds / 4,
            "{requests} {responses}"
        );
        // Pure noise, too.
        for _ in 0..rounds / 2 {
            let len = rng.index(300);
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mut out = Vec::new();
            let _ = ClientParser::new().feed(&data, &mut out);
            let mut out = Vec::new();
            let _ = ServerParser::new().feed(&data, &mut out);
        }
    }

    // ---- Differential tests against the previous implementation (`super::reference`).

    use crate::decode::test_streams;

    /// One direction's parser, new or old, behind one interface.
    trait Direction {
        type Out: PartialEq + std::fmt::Debug;
        fn feed(&mut self, b: &[u8], out: &mut Vec<Self::Out>) -> Feed;
        fn gap(&mut self);
        fn method(&mut self, _m: &str) {}
        fn dropped(&self) -> u64 {
            0
        }
    }

    impl Direction for ClientParser {
        type Out = Request;
        fn feed(&mut self, b: &[u8], out: &mut Vec<Request>) -> Feed {
            ClientParser::feed(self, b, out)
        }
        fn gap(&mut self) {
            ClientParser::gap(self);
        }
    }

    impl Direction for reference::ClientParser {
        type Out = Request;
        fn feed(&mut self, b: &[u8], out: &mut Vec<Request>) -> Feed {
            reference::ClientParser::feed(self, b, out)
        }
        fn gap(&mut self) {
            reference::ClientParser::gap(self);
        }
    }

    impl Direction for ServerParser {
        type Out = Response;
        fn feed(&mut self, b: &[u8], out: &mut Vec<Response>) -> Feed {
            ServerParser::feed(self, b, out)
        }
        fn gap(&mut self) {
            ServerParser::gap(self);
        }
        fn method(&mut self, m: &str) {
            self.request_method(m);
        }
        fn dropped(&self) -> u64 {
            self.dropped_methods
        }
    }

    impl Direction for reference::ServerParser {
        type Out = Response;
        fn feed(&mut self, b: &[u8], out: &mut Vec<Response>) -> Feed {
            reference::ServerParser::feed(self, b, out)
        }
        fn gap(&mut self) {
            reference::ServerParser::gap(self);
        }
        fn method(&mut self, m: &str) {
            self.request_method(m);
        }
        fn dropped(&self) -> u64 {
            self.dropped_methods
        }
    }

    /// What happens to a direction between two looks at its buffer.
    #[derive(Debug, Clone)]
    enum Step {
        /// The next `n` bytes of the input arrive.
        Data(usize),
        /// Bytes were lost: the caller drops what it holds and tells the parser.
        Gap,
        /// The request method of the next request (server side).
        Method(&'static str),
    }

    /// Drives the new and the old parser through `plan` over `data` the way the flow layer
    /// does (hold what is not consumed, feed again while there is progress) and asserts
    /// that every answer and every message is the same.
    fn same_as_reference<N, O>(mut new: N, mut old: O, data: &[u8], plan: &[Step], what: &str)
    where
        N: Direction,
        O: Direction<Out = N::Out>,
    {
        let (mut held, mut at) = (Vec::new(), 0usize);
        let (mut out_new, mut out_old) = (Vec::new(), Vec::new());
        for (k, step) in plan.iter().enumerate() {
            match *step {
                Step::Gap => {
                    held.clear();
                    new.gap();
                    old.gap();
                    continue;
                }
                Step::Method(m) => {
                    new.method(m);
                    old.method(m);
                    continue;
                }
                Step::Data(n) => {
                    let end = (at + n).min(data.len());
                    held.extend_from_slice(&data[at..end]);
                    at = end;
                }
            }
            for round in 0..64 {
                let (a, b) = (new.feed(&held, &mut out_new), old.feed(&held, &mut out_old));
                if a != b || out_new != out_old {
                    let shown = String::from_utf8_lossy(&held[..held.len().min(2000)]);
                    panic!(
                        "{what}: step {k} round {round} differs\nnew: {a:?} {out_new:?}\nold: {b:?} {out_old:?}\nheld: {shown:?}"
                    );
                }
                match a {
                    Feed::Consumed(0) => break,
                    Feed::Consumed(c) => {
                        held.drain(..c);
                    }
                    Feed::Tunnel(_) | Feed::Stop(_) => return,
                }
            }
        }
        assert_eq!(new.dropped(), old.dropped(), "{what}: dropped methods");
    }

    /// Client and server parsers, new against old, over `data` cut by `plan`.
    fn same_both_ways(data: &[u8], plan: &[Step], what: &str) {
        same_as_reference(
            ClientParser::new(),
            reference::ClientParser::new(),
            data,
            plan,
            what,
        );
        same_as_reference(
            ServerParser::new(),
            reference::ServerParser::new(),
            data,
            plan,
            what,
        );
    }

    /// Plans for one input: all at once, at the given segment boundaries, in small and in
    /// large random pieces with occasional gaps and request methods.
    fn plans(rng: &mut Rng, len: usize, segments: &[usize]) -> Vec<Vec<Step>> {
        let methods = ["GET", "HEAD", "CONNECT", "POST", "get"];
        let mut random = |max: usize| {
            let mut plan = Vec::new();
            let mut left = len;
            for _ in 0..rng.index(3) {
                plan.push(Step::Method(methods[rng.index(methods.len())]));
            }
            while left > 0 {
                let n = (1 + rng.index(max)).min(left);
                left -= n;
                plan.push(Step::Data(n));
                match rng.index(100) {
                    0 => plan.push(Step::Gap),
                    1..=9 => plan.push(Step::Method(methods[rng.index(methods.len())])),
                    _ => {}
                }
            }
            plan
        };
        let small = random(64);
        let large = random(3000);
        let mut whole = vec![Step::Method("GET"), Step::Data(len)];
        whole.push(Step::Data(0));
        let by_segment = segments.iter().map(|&n| Step::Data(n)).collect();
        vec![whole, by_segment, small, large]
    }

    /// Header lines that matter to the parsers, well and badly formed.
    const LINES: &[&[u8]] = &[
        b"Host: example.com",
        b"host:a.example:8080 ",
        b"HOST: b",
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/115.0",
        b"user-agent: \xff\xfe bad",
        b"User-Agent: caf\xc3\xa9 \x01 ctl",
        b"User-Agent:\tTab\there\t",
        b"Referer: http://example.com/a?b=c",
        b"Content-Type: text/html; charset=utf-8",
        b"content-type: a\x7fb",
        b"X-Forwarded-For: 10.0.0.1, 10.0.0.2",
        b"Location: /next",
        b"location: \xe2\x82\xac",
        b"Content-Length: 5",
        b"Content-Length: 0",
        b"Content-Length: 5, 5",
        b"Content-Length: 5, 6",
        b"Content-Length: x",
        b"Content-Length: 18446744073709551616",
        b"Transfer-Encoding: chunked",
        b"Transfer-Encoding: gzip, chunked",
        b"Transfer-Encoding: gzip",
        b"Transfer-Encoding: CHUNKED ",
        b"Connection: keep-alive",
        b"Accept: */*",
        b" folded continuation",
        b"\tfolded tab",
        b"No colon here",
        b"Bad Name: value",
        b"Name : spaced",
        b": empty name",
        b"X-Nul: a\x00b",
        b"X-CR: a\rb",
        b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        b"Upgrade: websocket",
    ];

    const START_LINES: &[&[u8]] = &[
        b"GET / HTTP/1.1",
        b"GET /index.html?a=1 HTTP/1.0",
        b"POST /form HTTP/1.1",
        b"HEAD /h HTTP/1.1",
        b"CONNECT example.com:443 HTTP/1.1",
        b"OPTIONS * HTTP/1.1",
        b"get /lower HTTP/1.1",
        b"GET /caf\xe9 HTTP/1.1",
        b"GET /sp ace HTTP/1.1",
        b"GET  /two-spaces HTTP/1.1",
        b"GET / HTTP/1.",
        b"GET /old",
        b"OPTIONS",
        b"PROPFIND /dav HTTP/1.1",
        b"M-SEARCH * HTTP/1.1",
        b"FOOBAR / HTTP/1.1",
        b"PRI * HTTP/2.0",
        b"GET / HTTP/2",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.0 404 Not Found",
        b"HTTP/1.1 304 Not Modified",
        b"HTTP/1.1 100 Continue",
        b"HTTP/1.1 101 Switching Protocols",
        b"HTTP/1.1 204",
        b"HTTP/1.1 200",
        b"http/1.1 200 ok",
        b"HTTP/1.1.1 404 \xff",
        b"HTTP/1.1  302  Found",
        b"HTTP/1.1 2000 x",
        b"EHLO mail.example.com",
    ];

    /// A run of messages from the vocabularies above: mixed line endings, bodies that match
    /// the framing or not, chunked bodies, junk between messages.
    fn generated(rng: &mut Rng) -> Vec<u8> {
        let mut m = Vec::new();
        for _ in 0..1 + rng.index(4) {
            let eol: &[u8] = if rng.index(4) == 0 { b"\n" } else { b"\r\n" };
            m.extend_from_slice(START_LINES[rng.index(START_LINES.len())]);
            m.extend_from_slice(eol);
            for _ in 0..rng.index(12) {
                m.extend_from_slice(LINES[rng.index(LINES.len())]);
                m.extend_from_slice(if rng.index(10) == 0 { b"\n" } else { eol });
            }
            if rng.index(8) != 0 {
                m.extend_from_slice(eol);
            }
            match rng.index(6) {
                0 => m.extend_from_slice(b"hello"),
                1 => m.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\n"),
                2 => m.extend_from_slice(b"5;x=1\r\nhello\r\n0\r\nT: 1\r\n\r\n"),
                3 => m.extend_from_slice(b"\r\n\r\n"),
                _ => {}
            }
        }
        m
    }

    /// A random change to a stream: the mutations of the robustness test plus header lines
    /// and line ends put in, and pieces of another stream spliced in.
    fn mutate_stream(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
        for _ in 0..1 + rng.index(5) {
            let at = rng.index(data.len() + 1);
            match rng.index(8) {
                0 => data.insert(at, rng.next() as u8),
                1 if at < data.len() => {
                    data.remove(at);
                }
                2 if at < data.len() => data[at] = rng.next() as u8,
                3 => {
                    let t = TOKENS[rng.index(TOKENS.len())];
                    data.splice(at..at, t.iter().copied());
                }
                4 => {
                    let mut line = LINES[rng.index(LINES.len())].to_vec();
                    line.extend_from_slice(b"\r\n");
                    data.splice(at..at, line);
                }
                5 if at < data.len() => {
                    data[at] = [b'\r', b'\n', b' ', b':', b'\t', 0, b'/', b'H'][rng.index(8)];
                }
                6 if !other.is_empty() => {
                    let from = rng.index(other.len());
                    let len = rng.index(200).min(other.len() - from);
                    let piece = other[from..from + len].to_vec();
                    data.splice(at..at, piece);
                }
                _ => data.truncate(at),
            }
        }
    }

    /// The parsers answer exactly what the previous implementation answered, call by call:
    /// on the TCP streams of real captures (the repository's and the shared real-world
    /// ones) cut at their segment boundaries and at random, on mutations of them, and on
    /// generated messages full of odd lines.
    #[test]
    fn same_results_as_reference() {
        let files = test_streams::capture_files("http differential");
        let streams: Vec<(Vec<u8>, Vec<usize>)> = test_streams::tcp_streams(&files)
            .into_iter()
            .filter(|s| {
                s.first()
                    .is_some_and(|p| looks_like_request(p) || looks_like_response(p))
            })
            .map(|s| (s.concat(), s.iter().map(Vec::len).collect()))
            .collect();
        eprintln!("http differential: {} HTTP streams", streams.len());
        assert!(
            streams.len() > 20,
            "too few HTTP streams: {}",
            streams.len()
        );
        let mut rng = Rng(0x0ddc_0ffe_e15b_ad5e);
        for (i, (data, segments)) in streams.iter().enumerate() {
            for plan in plans(&mut rng, data.len(), segments) {
                same_both_ways(data, &plan, &format!("stream {i}"));
            }
        }
        let mut seeds: Vec<Vec<u8>> = streams
            .iter()
            .map(|(d, _)| d[..d.len().min(8 * 1024)].to_vec())
            .collect();
        seeds.extend(SEEDS.iter().map(|s| s.to_vec()));
        for (i, seed) in seeds.iter().enumerate() {
            for j in 0..200 {
                let mut data = seed.clone();
                let other = &seeds[rng.index(seeds.len())];
                mutate_stream(&mut rng, &mut data, other);
                let whole = [data.len()];
                for plan in plans(&mut rng, data.len(), &whole) {
                    same_both_ways(&data, &plan, &format!("mutant {j} of seed {i}"));
                }
            }
        }
        for i in 0..40_000 {
            let mut data = generated(&mut rng);
            if rng.index(2) == 0 {
                let other = &seeds[rng.index(seeds.len())];
                mutate_stream(&mut rng, &mut data, other);
            }
            let whole = [data.len()];
            for plan in plans(&mut rng, data.len(), &whole) {
                same_both_ways(&data, &plan, &format!("generated {i}"));
            }
        }
        // The robustness test's inputs too.
        let mut rng2 = Rng(0x1234_5678_9abc_def1);
        for i in 0..20_000 {
            let data = mutated(&mut rng2);
            let whole = [data.len()];
            for plan in plans(&mut rng, data.len(), &whole) {
                same_both_ways(&data, &plan, &format!("robustness input {i}"));
            }
        }
    }
}
