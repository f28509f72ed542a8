//! DNS message decoder: one UDP payload (or one TCP-framed message, *without* its
//! 2-byte length prefix) in, an owned [`Message`] summary out, ready for EVE `dns`
//! records.
//!
//! # Why the record walker and name decoder are hand-written
//!
//! Neither candidate library can walk a message record by record and keep going past a
//! bad record, at the speed a line-rate sensor needs:
//!
//! * `simple-dns` 0.13 exposes only `Packet::parse`, which decodes every section with `?`:
//!   one malformed record fails the whole message (verified in the tests below on the
//!   real `zeek-dns-loc-invalid-length` capture and on an SVCB record with one bad
//!   parameter). Its per-record `WireFormat::parse` is `pub(crate)`, so it cannot be
//!   driven record by record, and each name is built as a `Vec` of labels.
//! * `hickory-proto` has a public `BinDecoder`/`Record::read`, but after an rdata error
//!   the caller must re-read the owner name and fixed fields itself to find the next
//!   record, and `Record::read` eagerly decodes every rdata type (SVCB, CAA, ...) into
//!   owned structures we would throw away. (Not benchmarked here; the hand-written path
//!   measures ~400 ns per real-capture message in release, allocation included.)
//!
//! The part we need (header, names with compression, fixed record fields, rdata of eight
//! simple types) is small, so it is done here on `&[u8]` with explicit caps. `simple-dns`
//! is still used, as a dev-dependency, for a differential test on well-formed messages.
//!
//! # Presentation (checked against tshark 4.0.17)
//!
//! Names: labels as on the wire (case kept) joined by `.`, no trailing dot, root `.`;
//! every byte outside `0x21..=0x7E` (space included) as RFC 1035 decimal `\DDD`, so the
//! text is lossless ASCII. tshark 4.0 differs on bytes the real captures do not contain:
//! it keeps space and valid UTF-8, writes `\t`-style C escapes and *octal* `\ooo` for
//! other control bytes (identical to `\DDD` only for 0x00-0x07). Neither escapes `.` or
//! `\` inside a label. TXT: strings concatenated, bytes outside `0x20..=0x7E` as `\xNN`
//! (tshark: `\xN` for control bytes, U+FFFD for bytes >= 0x80).
//!
//! The decoder itself borrows the message; only the output summary is owned, because the
//! EVE writer needs it after the packet buffer is recycled.
//!
//! # Limits (all `pub const`)
//!
//! [`MAX_QUESTIONS`] questions and [`MAX_RECORDS`] records per section are decoded; the
//! rest are skipped without decoding (an [`Events`] bit records it). A name may use at
//! most [`MAX_POINTER_JUMPS`] compression pointers, each pointing strictly before the
//! label run that contains it (so loops are impossible), and is at most
//! [`MAX_NAME_LEN`] wire bytes and [`MAX_LABELS`] labels.
//!
//! # Guarantees
//!
//! * No panics: every read is a checked `get`, no `unwrap`/`expect`/slice indexing on
//!   input-derived offsets, no `unsafe`.
//! * Bounded work: each name costs at most `MAX_LABELS + MAX_POINTER_JUMPS + 1` steps and
//!   renders at most 255 wire bytes (a cached suffix is copied, never re-walked); every
//!   other loop consumes at least one byte of the message per step or is bounded by a
//!   header count (`u16`), so work is linear in the message size.
//! * Allocation only for the owned output, and at most two allocations for it whatever
//!   the record count: the text of all names and rdata, and the records that point into
//!   it (see [`Sections`]). Both are built in per-thread buffers reused from message to
//!   message (at most 16 KiB of text and the capped records kept between messages) and
//!   copied out at their final size. Every name is rendered once, straight into the
//!   text buffer, and a compression pointer to a label already rendered in the same
//!   message is served from a small direct-mapped cache (label offset -> rendered
//!   suffix): a whole cached name is shared, a suffix after new labels is copied,
//!   neither is walked again. The cache forgets every message before the next one
//!   starts: results depend on the message alone. [`looks_like_dns`] allocates nothing.
//! * Robustness: an undecodable owner name or rdata drops or blanks that one record and
//!   sets [`Message::malformed`]; everything decodable before and after is kept. Parsing
//!   stops early only when the next record's start can no longer be located.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;

mod sections;

pub use sections::{Answer, Answers, Queries, Query, Sections};
use sections::{Record, Span};

/// Size of the fixed DNS header.
pub const HEADER_LEN: usize = 12;
/// Questions decoded per message; further ones are skipped ([`Events::QUESTION_CAP`]).
pub const MAX_QUESTIONS: usize = 16;
/// Records decoded per Answer / Authority section; further ones are skipped
/// ([`Events::RECORD_CAP`]).
pub const MAX_RECORDS: usize = 256;
/// Maximum wire length of a name, length octets and root octet included (RFC 1035 3.1).
pub const MAX_NAME_LEN: usize = 255;
/// Maximum number of labels in a name (a 255-byte name has at most 127).
pub const MAX_LABELS: usize = 128;
/// Maximum compression pointers followed while decoding one name.
pub const MAX_POINTER_JUMPS: usize = 32;

const TYPE_A: u16 = 1;
const TYPE_NS: u16 = 2;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const TYPE_PTR: u16 = 12;
const TYPE_MX: u16 = 15;
const TYPE_TXT: u16 = 16;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;
const TYPE_OPT: u16 = 41;

/// A decoded DNS message. Names are rendered as on the wire (case kept), labels joined
/// by `.`, no trailing dot, root as `.`, and bytes outside `0x21..=0x7E` as `\DDD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Transaction id.
    pub id: u16,
    /// The raw 16-bit header flags word.
    pub flags: u16,
    /// Header opcode (0 QUERY, 1 IQUERY, 2 STATUS, 4 NOTIFY, 5 UPDATE, 6 DSO).
    pub opcode: u8,
    /// QR bit: this is a response.
    pub qr: bool,
    /// Authoritative answer.
    pub aa: bool,
    /// Truncated (the sender cut the message).
    pub tc: bool,
    /// Recursion desired.
    pub rd: bool,
    /// Recursion available.
    pub ra: bool,
    /// Response code: the 4-bit header rcode, with the upper 8 bits from the first OPT
    /// record's extended rcode merged in when an OPT record is present (RFC 6891).
    pub rcode: u16,
    /// The Question, Answer and Authority sections; read them through
    /// [`Message::queries`], [`Message::answers`] and [`Message::authorities`].
    pub sections: Sections,
    /// An OPT (EDNS) record was found in the Additional section.
    pub edns: bool,
    /// Something was skipped or cut short; what could be decoded is still here.
    /// Equal to `!events.is_empty()`.
    pub malformed: bool,
    /// What exactly was wrong (for per-reason stats counters).
    pub events: Events,
}

/// Why [`parse`] gave up on a whole message. Only the header and the first question
/// can make a message unusable; later problems are [`Events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Fewer than [`HEADER_LEN`] bytes.
    #[error("message shorter than the 12-byte DNS header")]
    HeaderTruncated,
    /// The first question's type/class (or its name) runs past the end.
    #[error("first question truncated")]
    QuestionTruncated,
    /// The first question's name cannot be decoded.
    #[error("first question name undecodable: {0}")]
    QuestionName(NameError),
}

impl Error {
    /// Short snake_case reason for stats counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::HeaderTruncated => "header_truncated",
            Error::QuestionTruncated => "question_truncated",
            Error::QuestionName(NameError::Truncated) => "question_truncated",
            Error::QuestionName(NameError::BadPointer) => "qname_bad_pointer",
            Error::QuestionName(NameError::TooManyJumps) => "qname_too_many_jumps",
            Error::QuestionName(NameError::TooLong) => "qname_too_long",
            Error::QuestionName(NameError::TooManyLabels) => "qname_too_many_labels",
            Error::QuestionName(NameError::BadLabelType) => "qname_bad_label_type",
        }
    }
}

/// Why one name could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A label or pointer runs past the end of the message.
    #[error("name runs past the end of the message")]
    Truncated,
    /// A compression pointer does not point strictly backwards (loop or forward pointer).
    #[error("compression pointer not strictly backwards")]
    BadPointer,
    /// More than [`MAX_POINTER_JUMPS`] pointers.
    #[error("too many compression pointers")]
    TooManyJumps,
    /// Longer than [`MAX_NAME_LEN`] wire bytes.
    #[error("name longer than 255 bytes")]
    TooLong,
    /// More than [`MAX_LABELS`] labels.
    #[error("too many labels")]
    TooManyLabels,
    /// Label type 0x40 / 0x80 (extended / reserved).
    #[error("extended or reserved label type")]
    BadLabelType,
}

/// Set of anomalies met while decoding one message (an open bit set; hitting a cap or a
/// bad record is an event, never a panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events(u16);

super::event_set_methods!(Events);

impl Events {
    /// A section ended before its header count (or a record's rdata runs past the end).
    pub const TRUNCATED: Events = Events(1 << 0);
    /// A name had a forward/self pointer or too many jumps (Suricata's "infinite loop").
    pub const NAME_POINTER: Events = Events(1 << 1);
    /// A name was longer than [`MAX_NAME_LEN`].
    pub const NAME_TOO_LONG: Events = Events(1 << 2);
    /// A name had more than [`MAX_LABELS`] labels.
    pub const NAME_TOO_MANY_LABELS: Events = Events(1 << 3);
    /// A name used an extended/reserved label type.
    pub const NAME_BAD_LABEL_TYPE: Events = Events(1 << 4);
    /// A name ran past the end of the message.
    pub const NAME_TRUNCATED: Events = Events(1 << 5);
    /// The rdata of a type we render (A, AAAA, names, TXT) did not decode.
    pub const BAD_RDATA: Events = Events(1 << 6);
    /// More than [`MAX_QUESTIONS`] questions; the rest were skipped.
    pub const QUESTION_CAP: Events = Events(1 << 7);
    /// More than [`MAX_RECORDS`] records in a section; the rest were skipped.
    pub const RECORD_CAP: Events = Events(1 << 8);

    const ALL: [(Events, &'static str); 9] = [
        (Events::TRUNCATED, "truncated"),
        (Events::NAME_POINTER, "name_bad_pointer"),
        (Events::NAME_TOO_LONG, "name_too_long"),
        (Events::NAME_TOO_MANY_LABELS, "name_too_many_labels"),
        (Events::NAME_BAD_LABEL_TYPE, "name_bad_label_type"),
        (Events::NAME_TRUNCATED, "name_truncated"),
        (Events::BAD_RDATA, "bad_rdata"),
        (Events::QUESTION_CAP, "question_cap"),
        (Events::RECORD_CAP, "record_cap"),
    ];
}

impl From<NameError> for Events {
    fn from(e: NameError) -> Events {
        match e {
            NameError::Truncated => Events::NAME_TRUNCATED,
            NameError::BadPointer | NameError::TooManyJumps => Events::NAME_POINTER,
            NameError::TooLong => Events::NAME_TOO_LONG,
            NameError::TooManyLabels => Events::NAME_TOO_MANY_LABELS,
            NameError::BadLabelType => Events::NAME_BAD_LABEL_TYPE,
        }
    }
}

/// Slots of the per-message label cache (direct-mapped on the message offset).
const LABEL_SLOTS: usize = 64;
/// Decoded names whose totals the cache remembers (by sequence number, modulo).
const NAME_SLOTS: usize = 32;
/// Only offsets a compression pointer can reach (14 bits) are cached.
const POINTER_RANGE: usize = 0x4000;
/// Text capacity a thread keeps between messages (more is freed after a big message).
const TEXT_KEEP: usize = 16 * 1024;
/// Bound on the text of one message: at most 16 questions and 2 * 256 records with an
/// owner name and a name in rdata are rendered, each name in at most 4 * 255 bytes, and
/// rendered rdata (A, AAAA, TXT) takes at most 4 text bytes per rdata byte, of which a
/// message has fewer than 64 KiB. So text offsets always fit the `u32`s of the cache
/// and of [`Span`].
const TEXT_MAX: usize =
    (MAX_QUESTIONS + 4 * MAX_RECORDS) * 4 * MAX_NAME_LEN + 4 * (u16::MAX as usize);
const _: () = assert!(TEXT_MAX < u32::MAX as usize);

/// Per-thread decoding buffers, reused from message to message so that decoding a
/// message allocates nothing but its output: the name cache with the message's text,
/// and its records so far. Both are copied out at their final size by [`sections`].
struct Scratch {
    names: Names,
    /// Bounded by the caps: at most `MAX_QUESTIONS + 2 * MAX_RECORDS` records.
    records: Vec<Record>,
}

impl Scratch {
    const fn new() -> Self {
        Scratch {
            names: Names::new(),
            records: Vec::new(),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch::new()) };
}

// Every label takes at least two wire bytes, so a name within MAX_NAME_LEN has fewer than
// MAX_LABELS labels: the label cap can never be the first limit a walk of
// [`Names::read`] hits, so the walk and its cache do not count labels.
const _: () = assert!(2 * MAX_LABELS + 1 > MAX_NAME_LEN);

/// A label decoded in place by a walk: its offset, where its text starts, and `tag`:
/// the sequence number of the walk's name (bits 32..64, 0 for an empty slot), the
/// pointers (bits 8..16) and wire bytes (bits 0..8) that name had decoded before it.
#[derive(Clone, Copy)]
struct LabelSlot {
    tag: u64,
    text: u32,
    key: u16,
}

/// A name that decoded: where its text ends, its wire bytes and its pointers.
#[derive(Clone, Copy)]
struct NameSlot {
    /// Sequence number of the name (0: empty slot).
    name: u32,
    end: u32,
    wire: u8,
    jumps: u8,
}

impl LabelSlot {
    const EMPTY: LabelSlot = LabelSlot {
        tag: 0,
        text: 0,
        key: 0,
    };
}

impl NameSlot {
    const EMPTY: NameSlot = NameSlot {
        name: 0,
        end: 0,
        wire: 0,
        jumps: 0,
    };
}

/// A name suffix that starts at a label and decodes: its text (never empty, within
/// `Names::text`), wire bytes (length octets and labels, no root octet) and pointers.
struct Suffix {
    text: Range<usize>,
    wire: usize,
    jumps: usize,
}

/// Every name of one message, rendered once into one text buffer, and a cache from
/// label offsets to rendered suffixes so that a compression pointer to an already
/// rendered name is a lookup and a copy instead of a second walk.
///
/// The suffix from a label is known once the name it was decoded in has decoded: its
/// text runs from the label's text to the end of that name's text, its counts are that
/// name's totals minus those before the label. A label slot whose name failed, or was
/// overwritten in the name slots, is a miss.
///
/// A cached suffix was decoded from a label that sat either at the start of a label run
/// or inside one; reading it again from a pointer only relaxes the "strictly before the
/// run" pointer rule, so it decodes the same way. Joined to a prefix it is exactly what
/// the walk would decode, provided the combined counts stay within [`MAX_NAME_LEN`] and
/// [`MAX_POINTER_JUMPS`] (each check is monotonic, so the totals decide); otherwise the
/// walk goes on the long way and meets the same error at the same step.
struct Names {
    /// Text of the message being decoded (ASCII only): its names, and its rendered
    /// rdata between them.
    text: String,
    labels: [LabelSlot; LABEL_SLOTS],
    names: [NameSlot; NAME_SLOTS],
    /// Sequence number of the last walk; names of earlier messages have lower numbers.
    seq: u32,
    /// Sequence number of this message's first walk.
    first: u32,
}

fn slot_index(offset: usize) -> usize {
    // Multiplicative (Fibonacci) hashing of the 14-bit offset onto the slots.
    (offset.wrapping_mul(0x9e37_79b9) >> 11) & (LABEL_SLOTS - 1)
}

impl Names {
    const fn new() -> Self {
        Names {
            text: String::new(),
            labels: [LabelSlot::EMPTY; LABEL_SLOTS],
            names: [NameSlot::EMPTY; NAME_SLOTS],
            seq: 0,
            first: 1,
        }
    }

    /// Forgets the previous message: its text, and (by sequence number) its cache.
    fn begin(&mut self) {
        self.text.clear();
        if self.text.capacity() > TEXT_KEEP {
            self.text = String::new();
        }
        // Far below any wrap-around: a message has at most a few thousand names.
        if self.seq > u32::MAX / 2 {
            *self = Names::new();
        }
        self.first = self.seq + 1;
    }

    /// The decoded suffix starting at the label at `offset`, if cached.
    fn cached(&self, offset: usize) -> Option<Suffix> {
        let l = self.labels.get(slot_index(offset))?;
        let name = (l.tag >> 32) as u32;
        if usize::from(l.key) != offset || name < self.first {
            return None;
        }
        let n = self.names.get(name as usize % NAME_SLOTS)?;
        let text = l.text as usize..n.end as usize;
        if n.name != name || text.is_empty() || text.end > self.text.len() {
            return None;
        }
        Some(Suffix {
            text,
            wire: usize::from(n.wire.checked_sub(l.tag as u8)?),
            jumps: usize::from(n.jumps.checked_sub((l.tag >> 8) as u8)?),
        })
    }

    /// Where the presentation form of a name returned by [`Names::read`] lies in the
    /// text: where it was rendered or cached, or a `.` appended for the root.
    #[inline(always)]
    fn span(&mut self, text: Range<usize>) -> Span {
        let text = if text.is_empty() {
            let at = self.text.len();
            self.text.push('.');
            at..at + 1
        } else {
            text
        };
        // text.end <= TEXT_MAX: the casts are exact.
        Span {
            start: text.start as u32,
            end: text.end as u32,
        }
    }

    /// Appends what `render` writes to the text and returns its span; when `render`
    /// fails, the text is left as it was.
    #[inline(always)]
    fn push(&mut self, render: impl FnOnce(&mut String) -> Result<(), ()>) -> Result<Span, ()> {
        let start = self.text.len();
        match render(&mut self.text) {
            // start <= end <= TEXT_MAX: the casts are exact.
            Ok(()) => Ok(Span {
                start: start as u32,
                end: self.text.len() as u32,
            }),
            Err(()) => {
                self.text.truncate(start);
                Err(())
            }
        }
    }

    /// Decodes the name starting at `start` and renders it (labels joined by `.`, bytes
    /// outside 0x21..=0x7E as `\DDD`, the root as empty text). Returns the offset just
    /// past the name's in-place bytes (after its root octet or first pointer) and the
    /// range of its text in `self.text`.
    #[inline(always)]
    fn read(&mut self, msg: &[u8], start: usize) -> Result<(usize, Range<usize>), NameError> {
        // Most owner names are one pointer to a name already rendered: the walk would
        // check the pointer (backwards, first jump) and take the cached suffix.
        if let Some(&[b, lo]) = msg.get(start..start + 2)
            && b & 0xc0 == 0xc0
        {
            let target = (usize::from(b & 0x3f) << 8) | usize::from(lo);
            if target < start
                && let Some(s) = self.cached(target)
                && s.jumps < MAX_POINTER_JUMPS
            {
                return Ok((start + 2, s.text));
            }
        }
        self.walk(msg, start)
    }

    /// Decodes and renders the labels in place from `pos` up to the first byte that is
    /// not a label length (root octet, pointer or reserved label type), remembering each
    /// label in the cache with `run_tag` (see [`LabelSlot`]); returns that byte's offset
    /// and the wire bytes decoded so far.
    #[inline(always)]
    fn run(
        &mut self,
        msg: &[u8],
        mut pos: usize,
        mut wire: usize,
        run_tag: u64,
    ) -> Result<(usize, usize), NameError> {
        loop {
            let Some(&b) = msg.get(pos) else {
                return Err(NameError::Truncated);
            };
            if b == 0 || b & 0xc0 != 0 {
                return Ok((pos, wire));
            }
            let len = usize::from(b);
            let Some(label) = msg.get(pos + 1..pos + 1 + len) else {
                return Err(NameError::Truncated);
            };
            // + 1 for the root octet still to come.
            if wire + 1 + len + 1 > MAX_NAME_LEN {
                return Err(NameError::TooLong);
            }
            if wire != 0 {
                self.text.push('.');
            }
            if pos < POINTER_RANGE
                && let Some(slot) = self.labels.get_mut(slot_index(pos))
            {
                // pos < 0x4000 and text < TEXT_MAX fit their fields, wire < 255 the
                // tag's low byte: the casts are exact.
                *slot = LabelSlot {
                    tag: run_tag | wire as u64,
                    text: self.text.len() as u32,
                    key: pos as u16,
                };
            }
            push_label(&mut self.text, label);
            wire += 1 + len;
            pos += 1 + len;
        }
    }

    /// [`Names::read`] the long way.
    ///
    /// Every pointer must target an offset strictly below the start of the label run
    /// that contains it, so each jump lands strictly lower than anything read so far: no
    /// loop is possible, and [`MAX_POINTER_JUMPS`] additionally bounds long backward
    /// chains. Steps: at most MAX_LABELS labels + MAX_POINTER_JUMPS pointers + the root
    /// octet; at most 255 wire bytes are rendered.
    #[inline(never)]
    fn walk(&mut self, msg: &[u8], start: usize) -> Result<(usize, Range<usize>), NameError> {
        self.seq += 1;
        let seq = self.seq;
        let base = self.text.len();
        let mut pos = start;
        let mut run_start = start;
        let mut end = None;
        let mut jumps = 0usize;
        // Wire bytes decoded so far: length octets and labels, no root octet.
        let mut wire = 0usize;
        let result = loop {
            // jumps <= 32 fits the tag's second byte.
            let run_tag = u64::from(seq) << 32 | (jumps as u64) << 8;
            (pos, wire) = match self.run(msg, pos, wire, run_tag) {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            let Some(&b) = msg.get(pos) else {
                break Err(NameError::Truncated);
            };
            match b & 0xc0 {
                0x00 => break Ok(end.unwrap_or(pos + 1)),
                0xc0 => {
                    let Some(&lo) = msg.get(pos + 1) else {
                        break Err(NameError::Truncated);
                    };
                    let target = (usize::from(b & 0x3f) << 8) | usize::from(lo);
                    let end = *end.get_or_insert(pos + 2);
                    if target >= run_start {
                        break Err(NameError::BadPointer);
                    }
                    jumps += 1;
                    if jumps > MAX_POINTER_JUMPS {
                        break Err(NameError::TooManyJumps);
                    }
                    if let Some(s) = self.cached(target)
                        && wire + s.wire < MAX_NAME_LEN
                        && jumps + s.jumps <= MAX_POINTER_JUMPS
                    {
                        if wire == 0 {
                            // The whole name is a cached suffix: nothing to render.
                            return Ok((end, s.text));
                        }
                        self.text.push('.');
                        self.text.extend_from_within(s.text);
                        wire += s.wire;
                        jumps += s.jumps;
                        break Ok(end);
                    }
                    pos = target;
                    run_start = target;
                }
                _ => break Err(NameError::BadLabelType),
            }
        };
        match result {
            Ok(end) => {
                let text_end = self.text.len();
                if let Some(slot) = self.names.get_mut(seq as usize % NAME_SLOTS) {
                    // wire < 255, jumps <= 32 (checked above), text < TEXT_MAX: the
                    // casts are exact.
                    *slot = NameSlot {
                        name: seq,
                        end: text_end as u32,
                        wire: wire as u8,
                        jumps: jumps as u8,
                    };
                }
                Ok((end, base..text_end))
            }
            Err(e) => {
                self.text.truncate(base);
                Err(e)
            }
        }
    }
}

/// Appends one label: bytes in 0x21..=0x7E as they are, others as `\DDD`. Byte by
/// byte: labels are short (often one byte in reverse-lookup names), where a check pass
/// plus `str::from_utf8` costs more than the pushes.
fn push_label(s: &mut String, label: &[u8]) {
    for &b in label {
        if (0x21..=0x7e).contains(&b) {
            s.push(char::from(b));
        } else {
            push_decimal_escape(s, b);
        }
    }
}

fn push_decimal_escape(s: &mut String, b: u8) {
    s.push('\\');
    s.push(char::from(b'0' + b / 100));
    s.push(char::from(b'0' + (b / 10) % 10));
    s.push(char::from(b'0' + b % 10));
}

fn push_hex_escape(s: &mut String, b: u8) {
    s.push('\\');
    s.push('x');
    s.push(hex_digit(b >> 4));
    s.push(hex_digit(b & 0x0f));
}

/// Lowercase hex digit of the low nibble of `n`.
fn hex_digit(n: u8) -> char {
    let n = n & 0x0f;
    char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    let b = msg.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Checks the name at `start` like [`Names::read`] without rendering it; returns the
/// offset just past its in-place bytes. Same rules, same errors, same bounds.
fn name_end(msg: &[u8], start: usize) -> Result<usize, NameError> {
    let mut pos = start;
    let mut run_start = start;
    let mut end = None;
    let mut jumps = 0usize;
    let mut labels = 0usize;
    let mut wire = 0usize;
    loop {
        let b = *msg.get(pos).ok_or(NameError::Truncated)?;
        match b & 0xc0 {
            0x00 if b == 0 => return Ok(end.unwrap_or(pos + 1)),
            0x00 => {
                let len = usize::from(b);
                msg.get(pos + 1..pos + 1 + len)
                    .ok_or(NameError::Truncated)?;
                labels += 1;
                if labels > MAX_LABELS {
                    return Err(NameError::TooManyLabels);
                }
                if wire + 1 + len + 1 > MAX_NAME_LEN {
                    return Err(NameError::TooLong);
                }
                wire += 1 + len;
                pos += 1 + len;
            }
            0xc0 => {
                let lo = *msg.get(pos + 1).ok_or(NameError::Truncated)?;
                let target = (usize::from(b & 0x3f) << 8) | usize::from(lo);
                end.get_or_insert(pos + 2);
                if target >= run_start {
                    return Err(NameError::BadPointer);
                }
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(NameError::TooManyJumps);
                }
                pos = target;
                run_start = target;
            }
            _ => return Err(NameError::BadLabelType),
        }
    }
}

/// Finds the end of the name at `start` without following pointers, to step over a name
/// that [`Names::read`] rejected or that is not decoded. `Err` when even its in-place
/// part is unusable.
fn skip_name(msg: &[u8], start: usize) -> Result<usize, NameError> {
    let mut pos = start;
    // A name has at most MAX_LABELS labels; +1 step for the terminator.
    for _ in 0..=MAX_LABELS {
        let b = *msg.get(pos).ok_or(NameError::Truncated)?;
        match b & 0xc0 {
            0x00 if b == 0 => return Ok(pos + 1),
            0x00 => pos += 1 + usize::from(b),
            0xc0 => {
                msg.get(pos + 1).ok_or(NameError::Truncated)?;
                return Ok(pos + 2);
            }
            _ => return Err(NameError::BadLabelType),
        }
    }
    Err(NameError::TooManyLabels)
}

/// Which section a record walk is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Answer or Authority.
    Answer,
    Additional,
}

/// Parse state: the message, a read offset, what went wrong so far, and the text and
/// records decoded so far.
struct Decoder<'a> {
    msg: &'a [u8],
    pos: usize,
    events: Events,
    names: &'a mut Names,
    records: &'a mut Vec<Record>,
    /// TTL field of the first OPT record (carries the extended rcode).
    opt_ttl: Option<u32>,
}

impl<'a> Decoder<'a> {
    /// Decodes or skips the owner name at `pos`. `Ok(Some(name))` decoded, `Ok(None)`
    /// undecodable or not decoded but stepped over, `Err(())` the walk cannot continue.
    #[inline(always)]
    fn owner_name(&mut self, decode: bool) -> Result<Option<Span>, ()> {
        let read_err = if decode {
            match self.names.read(self.msg, self.pos) {
                Ok((end, text)) => {
                    self.pos = end;
                    return Ok(Some(self.names.span(text)));
                }
                Err(e) => Some(e),
            }
        } else {
            None
        };
        match skip_name(self.msg, self.pos) {
            Ok(end) => {
                if let Some(e) = read_err {
                    self.events.insert(e.into());
                }
                self.pos = end;
                Ok(None)
            }
            // The section ends before its header count: the message was cut.
            Err(NameError::Truncated) => {
                self.events.insert(Events::TRUNCATED);
                Err(())
            }
            Err(e) => {
                self.events.insert(e.into());
                Err(())
            }
        }
    }

    /// Walks questions 2..=`count` (the first is handled by [`parse`]).
    fn questions(&mut self, count: usize) -> Result<(), ()> {
        for i in 1..count {
            let decode = i < MAX_QUESTIONS;
            if !decode {
                self.events.insert(Events::QUESTION_CAP);
            }
            let name = self.owner_name(decode)?;
            let Some(rrtype) = be16(self.msg, self.pos).filter(|_| self.pos + 4 <= self.msg.len())
            else {
                self.events.insert(Events::TRUNCATED);
                return Err(());
            };
            self.pos += 4;
            if let Some(name) = name {
                self.records.push(Record {
                    name,
                    rdata: None,
                    ttl: 0,
                    rrtype,
                });
            }
        }
        Ok(())
    }

    /// Walks `count` records of the Answer or Authority section: the first
    /// [`MAX_RECORDS`] with a decodable owner name are kept, the rest are skipped.
    fn records(&mut self, count: usize) -> Result<(), ()> {
        // Bounded by the u16 header count; each record consumes >= 11 bytes.
        for _ in 0..count.min(MAX_RECORDS) {
            let name = self.owner_name(true)?;
            let (rrtype, ttl, rstart, rend) = self.fixed_fields()?;
            if let Some(name) = name {
                let rdata = match self.rdata(rrtype, rstart, rend) {
                    Ok(r) => r,
                    Err(()) => {
                        self.events.insert(Events::BAD_RDATA);
                        None
                    }
                };
                self.records.push(Record {
                    name,
                    rdata,
                    ttl,
                    rrtype,
                });
            }
            self.pos = rend;
        }
        if count > MAX_RECORDS {
            self.events.insert(Events::RECORD_CAP);
            self.skip_records(count - MAX_RECORDS, Section::Answer)?;
        }
        Ok(())
    }

    /// Steps over `count` records without decoding them (the Additional section, and
    /// records past [`MAX_RECORDS`]); in the Additional section, keeps the first OPT
    /// record's TTL.
    fn skip_records(&mut self, count: usize, section: Section) -> Result<(), ()> {
        // Bounded by the u16 header count; each record consumes >= 11 bytes.
        for _ in 0..count {
            self.pos = match skip_name(self.msg, self.pos) {
                Ok(end) => end,
                // The section ends before its header count: the message was cut.
                Err(NameError::Truncated) => {
                    self.events.insert(Events::TRUNCATED);
                    return Err(());
                }
                Err(e) => {
                    self.events.insert(e.into());
                    return Err(());
                }
            };
            let (rrtype, ttl, _, rend) = self.fixed_fields()?;
            if section == Section::Additional && rrtype == TYPE_OPT && self.opt_ttl.is_none() {
                self.opt_ttl = Some(ttl);
            }
            self.pos = rend;
        }
        Ok(())
    }

    /// The type, TTL and rdata range of the record whose owner name ends at `pos`;
    /// `Err` (truncated) when they run past the end of the message.
    #[inline(always)]
    fn fixed_fields(&mut self) -> Result<(u16, u32, usize, usize), ()> {
        let fixed = self.pos;
        let Some(&[t0, t1, _, _, l0, l1, l2, l3, r0, r1]) = self.msg.get(fixed..fixed + 10) else {
            self.events.insert(Events::TRUNCATED);
            return Err(());
        };
        let rstart = fixed + 10;
        let rend = rstart + usize::from(u16::from_be_bytes([r0, r1]));
        if rend > self.msg.len() {
            self.events.insert(Events::TRUNCATED);
            return Err(());
        }
        let ttl = u32::from_be_bytes([l0, l1, l2, l3]);
        Ok((u16::from_be_bytes([t0, t1]), ttl, rstart, rend))
    }

    /// Text of the rdata at `start..end` for the types we render; `Ok(None)` otherwise.
    fn rdata(&mut self, rrtype: u16, start: usize, end: usize) -> Result<Option<Span>, ()> {
        let rdata = self.msg.get(start..end).ok_or(())?;
        let text = match rrtype {
            TYPE_A => {
                let b = rdata.try_into().map_err(|_| ())?;
                self.names.push(|s| {
                    push_ipv4(s, b);
                    Ok(())
                })?
            }
            TYPE_AAAA => {
                let b = rdata.try_into().map_err(|_| ())?;
                self.names.push(|s| {
                    push_ipv6(s, b);
                    Ok(())
                })?
            }
            TYPE_CNAME | TYPE_NS | TYPE_PTR | TYPE_SOA => self.rdata_name(start, end)?,
            TYPE_MX => self.rdata_name(start + 2, end)?,
            TYPE_SRV => self.rdata_name(start + 6, end)?,
            TYPE_TXT => self.names.push(|s| push_txt(s, rdata))?,
            _ => return Ok(None),
        };
        Ok(Some(text))
    }

    /// A name inside rdata: it must decode and its in-place part must end within rdata.
    fn rdata_name(&mut self, start: usize, end: usize) -> Result<Span, ()> {
        if start >= end {
            return Err(());
        }
        match self.names.read(self.msg, start) {
            Ok((name_end, text)) if name_end <= end => Ok(self.names.span(text)),
            _ => Err(()),
        }
    }
}

/// Appends `n` in decimal.
fn push_u8_decimal(s: &mut String, n: u8) {
    if n >= 100 {
        s.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        s.push(char::from(b'0' + (n / 10) % 10));
    }
    s.push(char::from(b'0' + n % 10));
}

/// Appends the dotted quad, as `Ipv4Addr`'s `Display` writes it.
fn push_ipv4(s: &mut String, b: [u8; 4]) {
    let [a, b, c, d] = b;
    push_u8_decimal(s, a);
    s.push('.');
    push_u8_decimal(s, b);
    s.push('.');
    push_u8_decimal(s, c);
    s.push('.');
    push_u8_decimal(s, d);
}

/// Appends `n` in lowercase hex without leading zeros (`{:x}`).
fn push_u16_hex(s: &mut String, n: u16) {
    let [hi, lo] = n.to_be_bytes();
    if n >= 0x1000 {
        s.push(hex_digit(hi >> 4));
    }
    if n >= 0x100 {
        s.push(hex_digit(hi));
    }
    if n >= 0x10 {
        s.push(hex_digit(lo >> 4));
    }
    s.push(hex_digit(lo));
}

/// Segments joined by `:`, each as `{:x}`.
fn push_segments(s: &mut String, segments: &[u16]) {
    for (i, &seg) in segments.iter().enumerate() {
        if i != 0 {
            s.push(':');
        }
        push_u16_hex(s, seg);
    }
}

/// Appends the text `Ipv6Addr`'s `Display` writes (RFC 5952): IPv4-mapped addresses as
/// `::ffff:a.b.c.d`, otherwise hex segments with the first longest run of two or more
/// zero segments written as `::`.
fn push_ipv6(s: &mut String, b: [u8; 16]) {
    let mut segments = [0u16; 8];
    for (seg, pair) in segments.iter_mut().zip(b.chunks_exact(2)) {
        if let [hi, lo] = *pair {
            *seg = u16::from_be_bytes([hi, lo]);
        }
    }
    if let ([0, 0, 0, 0, 0, 0xffff, _, _], [.., a, b, c, d]) = (segments, b) {
        s.push_str("::ffff:");
        push_ipv4(s, [a, b, c, d]);
        return;
    }
    // First longest run of zero segments.
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let (mut cur_start, mut cur_len) = (0usize, 0usize);
    for (i, &seg) in segments.iter().enumerate() {
        if seg == 0 {
            if cur_len == 0 {
                cur_start = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                (best_start, best_len) = (cur_start, cur_len);
            }
        } else {
            cur_len = 0;
        }
    }
    match (
        segments.get(..best_start),
        segments.get(best_start + best_len..),
    ) {
        (Some(head), Some(tail)) if best_len > 1 => {
            push_segments(s, head);
            s.push_str("::");
            push_segments(s, tail);
        }
        _ => push_segments(s, &segments),
    }
}

/// Appends TXT rdata: character-strings concatenated; bytes outside 0x20..=0x7E as
/// `\xNN` (tshark's rendering). Each step consumes at least one rdata byte. `Err` (with
/// part of the text appended) when a string runs past the end.
fn push_txt(s: &mut String, rdata: &[u8]) -> Result<(), ()> {
    let mut rest = rdata;
    while let Some((&len, tail)) = rest.split_first() {
        let (chunk, next) = tail.split_at_checked(usize::from(len)).ok_or(())?;
        // Without an early exit, so that the check runs many bytes at a time.
        let printable = chunk
            .iter()
            .fold(true, |ok, &b| ok & (0x20..=0x7e).contains(&b));
        if printable && let Ok(text) = std::str::from_utf8(chunk) {
            s.push_str(text);
        } else {
            for &b in chunk {
                if (0x20..=0x7e).contains(&b) {
                    s.push(char::from(b));
                } else {
                    push_hex_escape(s, b);
                }
            }
        }
        rest = next;
    }
    Ok(())
}

/// Decodes one DNS message. `Err` only when the header or the first question is
/// unusable; every later problem sets [`Message::malformed`] and keeps the rest.
pub fn parse(msg: &[u8]) -> Result<Message, Error> {
    if msg.len() < HEADER_LEN {
        return Err(Error::HeaderTruncated);
    }
    let mut m = header(msg);
    let h = |at| usize::from(be16(msg, at).unwrap_or(0));
    let counts = [h(4), h(6), h(8), h(10)];
    if counts == [0; 4] {
        return Ok(m);
    }
    SCRATCH
        .try_with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => sections(msg, &mut m, counts, &mut scratch),
            // Not reached: parse does not call itself.
            Err(_) => sections(msg, &mut m, counts, &mut Scratch::new()),
        })
        // The thread is exiting and its buffers are gone.
        .unwrap_or_else(|_| sections(msg, &mut m, counts, &mut Scratch::new()))?;
    Ok(m)
}

/// The message with only its header fields set (`msg` holds at least the header).
fn header(msg: &[u8]) -> Message {
    let flags = be16(msg, 2).unwrap_or(0);
    Message {
        id: be16(msg, 0).unwrap_or(0),
        flags,
        opcode: ((flags >> 11) & 0x0f) as u8,
        qr: flags & 0x8000 != 0,
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        rd: flags & 0x0100 != 0,
        ra: flags & 0x0080 != 0,
        rcode: flags & 0x000f,
        ..Message::default()
    }
}

/// [`parse`] after the header: the questions and the records of `counts` (question,
/// answer, authority, additional), decoded into the buffers of `scratch` and then
/// copied into `m` at their final size.
fn sections(
    msg: &[u8],
    m: &mut Message,
    counts: [usize; 4],
    scratch: &mut Scratch,
) -> Result<(), Error> {
    let [qdcount, ancount, nscount, arcount] = counts;
    scratch.names.begin();
    scratch.records.clear();
    let mut d = Decoder {
        msg,
        pos: HEADER_LEN,
        events: Events::default(),
        names: &mut scratch.names,
        records: &mut scratch.records,
        opt_ttl: None,
    };

    if qdcount > 0 {
        let (end, text) = d.names.read(msg, HEADER_LEN).map_err(|e| match e {
            NameError::Truncated => Error::QuestionTruncated,
            e => Error::QuestionName(e),
        })?;
        let rrtype = be16(msg, end)
            .filter(|_| end + 4 <= msg.len())
            .ok_or(Error::QuestionTruncated)?;
        d.pos = end + 4;
        let name = d.names.span(text);
        d.records.push(Record {
            name,
            rdata: None,
            ttl: 0,
            rrtype,
        });
    }

    // Each step stops at the first section whose records can no longer be located; the
    // sections not reached are empty.
    let mut starts = [None; 2];
    let _ = d
        .questions(qdcount)
        .and_then(|()| {
            starts[0] = Some(d.records.len());
            d.records(ancount)
        })
        .and_then(|()| {
            starts[1] = Some(d.records.len());
            d.records(nscount)
        })
        .and_then(|()| d.skip_records(arcount, Section::Additional));

    // At most MAX_QUESTIONS + 2 * MAX_RECORDS records: the casts are exact.
    let len = d.records.len();
    m.sections = Sections {
        text: Box::from(d.names.text.as_str()),
        records: Box::from(d.records.as_slice()),
        answers_at: starts[0].unwrap_or(len) as u16,
        authorities_at: starts[1].unwrap_or(len) as u16,
    };

    if let Some(ttl) = d.opt_ttl {
        m.edns = true;
        m.rcode |= ((ttl >> 24) as u16) << 4;
    }
    m.events = d.events;
    m.malformed = !m.events.is_empty();
    Ok(())
}

/// Cheap heuristic for DNS on a non-standard UDP port: sane opcode, Z bit clear,
/// assigned 4-bit rcode, 1..=[`MAX_QUESTIONS`] questions, record counts that fit the
/// payload, and a first question that decodes with a known class. Allocates nothing.
pub fn looks_like_dns(payload: &[u8]) -> bool {
    let h = |at| usize::from(be16(payload, at).unwrap_or(0));
    if payload.len() < HEADER_LEN + 5 {
        return false;
    }
    let flags = h(2);
    let opcode = (flags >> 11) & 0x0f;
    if !matches!(opcode, 0 | 1 | 2 | 4 | 5 | 6) || flags & 0x0040 != 0 || flags & 0x0f > 10 {
        return false;
    }
    let (qd, records) = (h(4), h(6) + h(8) + h(10));
    if qd == 0 || qd > MAX_QUESTIONS || HEADER_LEN + qd * 5 + records * 11 > payload.len() {
        return false;
    }
    let Ok(end) = name_end(payload, HEADER_LEN) else {
        return false;
    };
    match (be16(payload, end), be16(payload, end + 2)) {
        (Some(qtype), Some(qclass)) => qtype != 0 && matches!(qclass, 1 | 3 | 4 | 254 | 255),
        _ => false,
    }
}

/// EVE mnemonic of a record type, as Suricata writes it; unknown types are written in
/// decimal (Suricata's behaviour). Differences from Suricata 7's table: SVCB, CAA, AXFR,
/// IXFR and MAILB are named, and three Suricata typos are not copied (it writes "ND" for
/// MD, "NSAPPT" for NSAP-PTR and "CDSNKEY" for CDNSKEY).
pub fn rrtype_name(t: u16) -> Cow<'static, str> {
    match rrtype_mnemonic(t) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_string()),
    }
}

/// The mnemonic [`rrtype_name`] writes for a known record type; `None` when it writes the
/// number.
pub fn rrtype_mnemonic(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return None,
    })
}

/// EVE name of a response code (header rcode, or the 12-bit extended rcode); unknown
/// codes in decimal, as Suricata does. 16 is written "BADVERS/BADSIG" like Suricata.
pub fn rcode_name(r: u16) -> Cow<'static, str> {
    match rcode_mnemonic(r) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(r.to_string()),
    }
}

/// The name [`rcode_name`] writes for a known response code; `None` when it writes the number.
pub fn rcode_mnemonic(r: u16) -> Option<&'static str> {
    Some(match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS/BADSIG",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => return None,
    })
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;
    use std::time::{Duration, Instant};

    /// One entry of a section, by index (panics when there are fewer).
    impl Message {
        fn query(&self, i: usize) -> Query<'_> {
            self.queries().nth(i).expect("no such question")
        }
        fn answer(&self, i: usize) -> Answer<'_> {
            self.answers().nth(i).expect("no such answer")
        }
        fn authority(&self, i: usize) -> Answer<'_> {
            self.authorities().nth(i).expect("no such authority record")
        }
    }

    /// Header words (id, flags, qd, an, ns, ar) followed by the body pieces.
    fn msg(h: [u16; 6], body: &[&[u8]]) -> Vec<u8> {
        let mut v: Vec<u8> = h.iter().flat_map(|w| w.to_be_bytes()).collect();
        for b in body {
            v.extend_from_slice(b);
        }
        v
    }

    const QNAME: &[u8] = b"\x03www\x07example\x03com\x00"; // at offset 12
    const Q_A: &[u8] = b"\x00\x01\x00\x01"; // qtype A, class IN
    /// Record tail: type A, class IN, ttl 300, rdlen 4, 93.184.216.34.
    const RR_A: &[u8] = b"\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\x5d\xb8\xd8\x22";

    fn a_query() -> Vec<u8> {
        msg([0x1234, 0x0100, 1, 0, 0, 0], &[QNAME, Q_A])
    }

    fn a_response() -> Vec<u8> {
        msg(
            [0x1234, 0x8180, 1, 1, 0, 0],
            &[QNAME, Q_A, b"\xc0\x0c", RR_A],
        )
    }

    fn cname_chain() -> Vec<u8> {
        msg(
            [7, 0x8180, 1, 3, 0, 0],
            &[
                QNAME,
                Q_A,
                // www.example.com CNAME edge.example.com   (rdata at 45: "\x04edge" + ptr 16)
                b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x07\x04edge\xc0\x10",
                // edge.example.com CNAME a1.cdn.net   (owner = ptr to 45; rdata at 64)
                b"\xc0\x2d\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x0c\x02a1\x03cdn\x03net\x00",
                // a1.cdn.net A 10.0.0.1
                b"\xc0\x40\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01",
            ],
        )
    }

    fn mx_response() -> Vec<u8> {
        msg(
            [9, 0x8180, 1, 1, 0, 0],
            &[
                b"\x07example\x03com\x00",
                b"\x00\x0f\x00\x01",
                b"\xc0\x0c\x00\x0f\x00\x01\x00\x00\x0e\x10\x00\x09\x00\x0a\x04mail\xc0\x0c",
            ],
        )
    }

    fn txt_response() -> Vec<u8> {
        msg(
            [10, 0x8180, 1, 1, 0, 0],
            &[
                QNAME,
                b"\x00\x10\x00\x01",
                b"\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x10",
                b"\x06v=spf1\x05 -all\x02\x01\xff",
            ],
        )
    }

    /// HTTPS query + answer (priority 1, target ".", alpn=h2) + SVCB answer.
    fn https_svcb_response() -> Vec<u8> {
        msg(
            [11, 0x8180, 1, 2, 0, 0],
            &[
                QNAME,
                b"\x00\x41\x00\x01",
                b"\xc0\x0c\x00\x41\x00\x01\x00\x00\x00\x3c\x00\x0a",
                b"\x00\x01\x00\x00\x01\x00\x03\x02h2",
                // SVCB: priority 1, target svc.example.com, port=443
                b"\xc0\x0c\x00\x40\x00\x01\x00\x00\x00\x3c\x00\x19",
                b"\x00\x01\x03svc\x07example\x03com\x00\x00\x03\x00\x02\x01\xbb",
            ],
        )
    }

    #[test]
    fn a_query_decodes() {
        let m = parse(&a_query()).unwrap();
        assert_eq!(
            (m.id, m.flags, m.opcode, m.qr, m.rd),
            (0x1234, 0x0100, 0, false, true)
        );
        assert_eq!(
            m.queries().collect::<Vec<_>>(),
            [Query {
                rrname: "www.example.com",
                rrtype: 1
            }]
        );
        assert!(m.answers().len() == 0 && !m.malformed);
        assert!(looks_like_dns(&a_query()));
    }

    #[test]
    fn response_with_compression() {
        let m = parse(&a_response()).unwrap();
        assert!(m.qr && m.rd && m.ra && !m.aa && !m.tc && !m.malformed);
        assert_eq!(rcode_name(m.rcode), "NOERROR");
        let a = m.answer(0);
        assert_eq!((a.rrname, a.rrtype, a.ttl), ("www.example.com", 1, 300));
        assert_eq!(a.rdata, Some("93.184.216.34"));
    }

    #[test]
    fn cname_chain_follows_pointers_into_rdata() {
        let m = parse(&cname_chain()).unwrap();
        assert!(!m.malformed, "{:?}", m.events);
        let rows: Vec<_> = m.answers().map(|a| (a.rrname, a.rrtype, a.rdata)).collect();
        assert_eq!(
            rows,
            [
                ("www.example.com", 5, Some("edge.example.com")),
                ("edge.example.com", 5, Some("a1.cdn.net")),
                ("a1.cdn.net", 1, Some("10.0.0.1")),
            ]
        );
    }

    /// Names and rdata text are laid out once per message: an owner name that points
    /// at a name already rendered shares its text, and each record costs no text of
    /// its own.
    #[test]
    fn names_share_the_message_text() {
        let m = parse(&cname_chain()).unwrap();
        assert_eq!(
            &*m.sections.text,
            "www.example.comedge.example.coma1.cdn.net10.0.0.1"
        );
        assert_eq!(m.sections.records.len(), 4);
    }

    /// Sections are equal when they read the same, wherever their texts lie; which
    /// section a record is in, and an absent versus an empty rdata, tell them apart.
    #[test]
    fn sections_equal_when_they_read_the_same() {
        let parsed = parse(&a_response()).unwrap().sections;
        let q = Query {
            rrname: "www.example.com",
            rrtype: 1,
        };
        let a = Answer {
            rrname: "www.example.com",
            rrtype: 1,
            ttl: 300,
            rdata: Some("93.184.216.34"),
        };
        let built = Sections::new([q], [a], []);
        assert_ne!(parsed.text, built.text);
        assert_eq!(parsed, built);
        assert_ne!(built, Sections::new([q], [], [a]));
        let no_rdata = Answer { rdata: None, ..a };
        let empty_rdata = Answer {
            rdata: Some(""),
            ..a
        };
        assert_ne!(
            Sections::new([q], [no_rdata], []),
            Sections::new([q], [empty_rdata], [])
        );
    }

    #[test]
    fn mx_exchange() {
        let m = parse(&mx_response()).unwrap();
        assert_eq!(m.answer(0).rdata, Some("mail.example.com"));
        assert_eq!(rrtype_name(m.answer(0).rrtype), "MX");
    }

    #[test]
    fn txt_strings_concatenated_and_escaped() {
        let m = parse(&txt_response()).unwrap();
        assert_eq!(m.answer(0).rdata, Some("v=spf1 -all\\x01\\xff"));
        assert!(!m.malformed);
    }

    #[test]
    fn https_and_svcb() {
        let q = msg([5, 0x0100, 1, 0, 0, 0], &[QNAME, b"\x00\x41\x00\x01"]);
        let m = parse(&q).unwrap();
        assert_eq!(m.query(0).rrtype, 65);
        assert_eq!(rrtype_name(65), "HTTPS");
        let m = parse(&https_svcb_response()).unwrap();
        assert!(!m.malformed);
        let rows: Vec<_> = m.answers().map(|a| (a.rrtype, a.rdata)).collect();
        assert_eq!(rows, [(65, None), (64, None)]);
        assert_eq!(rrtype_name(64), "SVCB");
    }

    #[test]
    fn pointer_loop_in_question_is_an_error() {
        let m = msg([1, 0x0100, 1, 0, 0, 0], &[b"\xc0\x0c\x00\x01\x00\x01"]);
        assert_eq!(parse(&m), Err(Error::QuestionName(NameError::BadPointer)));
        assert_eq!(parse(&m).unwrap_err().reason(), "qname_bad_pointer");
        // Two-step loop: label at 12, pointer at 14 back to 12.
        let m = msg([1, 0x0100, 1, 0, 0, 0], &[b"\x01a\xc0\x0c\x00\x01\x00\x01"]);
        assert_eq!(parse(&m), Err(Error::QuestionName(NameError::BadPointer)));
        assert!(!looks_like_dns(&m));
    }

    #[test]
    fn forward_pointer_is_rejected() {
        let m = msg(
            [1, 0x0100, 1, 0, 0, 0],
            &[b"\x03foo\xc0\x16\x00\x01\x00\x01\x03bar\x00"],
        );
        assert_eq!(parse(&m), Err(Error::QuestionName(NameError::BadPointer)));
    }

    #[test]
    fn truncated_message_keeps_what_is_there() {
        let mut m = msg(
            [3, 0x8180, 1, 3, 0, 0],
            &[QNAME, Q_A, b"\xc0\x0c", RR_A, b"\xc0\x0c", RR_A],
        );
        m.truncate(m.len() - 2); // second answer's rdata cut, third missing
        let d = parse(&m).unwrap();
        assert_eq!(d.answers().len(), 1);
        assert!(d.malformed && d.events.contains(Events::TRUNCATED));
        assert_eq!(d.events.reasons().collect::<Vec<_>>(), ["truncated"]);
        assert_eq!(parse(&m[..11]), Err(Error::HeaderTruncated));
        assert_eq!(parse(&m[..20]), Err(Error::QuestionTruncated));
        assert_eq!(parse(&m[..30]), Err(Error::QuestionTruncated));
    }

    #[test]
    fn unknown_type_65280() {
        let m = msg(
            [4, 0x8180, 1, 2, 0, 0],
            &[
                QNAME,
                b"\xff\x00\x00\x01",
                b"\xc0\x0c\xff\x00\x00\x01\x00\x00\x00\x01\x00\x03abc",
                b"\xc0\x0c",
                RR_A,
            ],
        );
        let d = parse(&m).unwrap();
        assert!(!d.malformed);
        assert_eq!(d.query(0).rrtype, 65280);
        assert_eq!((d.answer(0).rrtype, d.answer(0).rdata), (65280, None));
        assert_eq!(d.answer(1).rdata, Some("93.184.216.34"));
        assert_eq!(rrtype_name(65280), "65280");
    }

    #[test]
    fn malformed_record_in_the_middle_keeps_the_next() {
        let m = msg(
            [6, 0x8180, 1, 5, 0, 0],
            &[
                QNAME,
                Q_A,
                b"\xc0\x0c",
                RR_A,
                // owner name is a forward pointer: dropped, but skippable
                b"\xc0\xf0",
                RR_A,
                // A with rdlen 3: kept with rdata None
                b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x03\x01\x02\x03",
                // LOC (29) with a 15-byte rdata: not rendered, not an error
                b"\xc0\x0c\x00\x1d\x00\x01\x00\x00\x00\x3c\x00\x0f",
                &[0u8; 15],
                // good record after all of that
                b"\x04last\xc0\x0c",
                RR_A,
            ],
        );
        let d = parse(&m).unwrap();
        let rows: Vec<_> = d.answers().map(|a| (a.rrname, a.rrtype, a.rdata)).collect();
        assert_eq!(
            rows,
            [
                ("www.example.com", 1, Some("93.184.216.34")),
                ("www.example.com", 1, None),
                ("www.example.com", 29, None),
                ("last.www.example.com", 1, Some("93.184.216.34")),
            ]
        );
        assert!(d.malformed);
        assert!(d.events.contains(Events::NAME_POINTER) && d.events.contains(Events::BAD_RDATA));
        assert!(!d.events.contains(Events::TRUNCATED));
    }

    #[test]
    fn extended_rcode_via_opt() {
        // OPT: root owner, type 41, udp 1232, ttl = ext-rcode 1 | version 0 | flags 0.
        let opt = b"\x00\x00\x29\x04\xd0\x01\x00\x00\x00\x00\x00";
        let d = parse(&msg([8, 0x8180, 1, 0, 0, 1], &[QNAME, Q_A, opt])).unwrap();
        assert_eq!(d.rcode, 16);
        assert!(d.edns && !d.malformed);
        assert_eq!(rcode_name(d.rcode), "BADVERS/BADSIG");
        let d = parse(&msg([8, 0x8183, 1, 0, 0, 0], &[QNAME, Q_A])).unwrap();
        assert_eq!((d.rcode, rcode_name(d.rcode)), (3, "NXDOMAIN".into()));
        assert_eq!(rcode_name(4000), "4000");
    }

    #[test]
    fn non_ascii_labels_are_escaped() {
        let name: &[u8] = b"\x10www\x00allyourba\x04\x05\x06\x0barebelongto\x02cn\x00";
        let name2: &[u8] = b"\x05a b\xc3\xa9\x02Ex\x00";
        let d = parse(&msg([1, 0, 2, 0, 0, 0], &[name, Q_A, name2, Q_A])).unwrap();
        assert_eq!(
            d.query(0).rrname,
            "www\\000allyourba\\004\\005\\006.arebelongto.cn"
        );
        assert_eq!(d.query(1).rrname, "a\\032b\\195\\169.Ex");
        let root = parse(&msg([1, 0, 1, 0, 0, 0], &[b"\x00\x00\x02\x00\x01"])).unwrap();
        assert_eq!(root.query(0).rrname, ".");
    }

    #[test]
    fn name_caps() {
        // 128 one-byte labels fit in 255 bytes? No: 128*2+1 = 257 > 255.
        let mut long = Vec::new();
        for _ in 0..127 {
            long.extend_from_slice(b"\x01x");
        }
        long.push(0);
        assert_eq!(long.len(), 255);
        let d = parse(&msg([1, 0, 1, 0, 0, 0], &[&long, Q_A])).unwrap();
        assert_eq!(d.query(0).rrname.len(), 127 * 2 - 1);
        long.insert(0, b'x');
        long.insert(0, 1);
        let m = msg([1, 0, 1, 0, 0, 0], &[&long, Q_A]);
        assert_eq!(parse(&m), Err(Error::QuestionName(NameError::TooLong)));
        let m = msg([1, 0, 1, 0, 0, 0], &[b"\x41abc\x00", Q_A]);
        assert_eq!(parse(&m), Err(Error::QuestionName(NameError::BadLabelType)));
    }

    #[test]
    fn caps_on_counts() {
        let mut body: Vec<&[u8]> = vec![QNAME, Q_A];
        for _ in 0..(MAX_RECORDS + 10) {
            body.push(b"\xc0\x0c");
            body.push(RR_A);
        }
        let d = parse(&msg([1, 0x8180, 1, (MAX_RECORDS + 10) as u16, 0, 1], &body)).unwrap();
        assert_eq!(d.answers().len(), MAX_RECORDS);
        assert!(d.events.contains(Events::RECORD_CAP));
        // the additional count is 1 but nothing follows: located as truncated
        assert!(d.events.contains(Events::TRUNCATED));
    }

    /// Answer `i`'s owner name points at answer `i - 1`'s, so it needs `i + 1` jumps.
    fn pointer_chain(records: usize) -> Vec<u8> {
        let mut m = msg([1, 0x8180, 1, records as u16, 0, 0], &[b"\x00", Q_A]);
        let mut prev = HEADER_LEN;
        for _ in 0..records {
            let here = m.len();
            m.extend_from_slice(&(0xc000 | prev as u16).to_be_bytes());
            m.extend_from_slice(RR_A);
            prev = here;
        }
        m
    }

    #[test]
    fn pointer_chains_terminate_fast() {
        let m = pointer_chain(4000);
        assert!(m.len() < 65_536);
        let t = Instant::now();
        let d = parse(&m).unwrap();
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!(d.answers().len(), MAX_POINTER_JUMPS);
        assert!(d.answers().all(|a| a.rrname == "."));
        assert!(d.events.contains(Events::NAME_POINTER) && d.events.contains(Events::RECORD_CAP));
    }

    #[test]
    fn looks_like_dns_heuristic() {
        assert!(looks_like_dns(&a_response()));
        assert!(looks_like_dns(&cname_chain()));
        assert!(!looks_like_dns(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!looks_like_dns(&[0u8; 40]));
        let mut m = a_query();
        m[2] |= 0x38; // opcode 7
        assert!(!looks_like_dns(&m));
        let mut m = a_query();
        m[7] = 50; // 50 answers cannot fit
        assert!(!looks_like_dns(&m));
    }

    /// Real messages from /work/shared/captures/real (hex of the DNS payload).
    const REAL_DNS53_COMPRESSION: &str = concat!(
        "646584800001000800070007027573037632370b6469737472696275746564036e65740000010001c00c0001000100000384",
        "0004ce6d40bac00c00010001000003840004d801cd51c00c00010001000003840004cd95a3d3c00c00010001000003840004",
        "86358387c00c00010001000003840004863583c0c00c0001000100000384000480681294c00c00010001000003840004cc98",
        "ba8bc00c000100010000038400043f4d21e2037632370b6469737472696275746564036e6574000002000100000384000603",
        "6e7331c0acc0a800020001000003840006036e7332c0acc0a800020001000003840006036e7333c0acc0a800020001000003",
        "840006036e7336c0acc0a80002000100000384000e036e7331046265737403636f6d00c0a800020001000003840006036e73",
        "32c113c0a800020001000003840006036e7333c113c0c700010001000038400004d162200ec0d90001000100003840000440",
        "09a7a6c0eb00010001000038400004d801cd51c0fd00010001000038400004cd95a3d3c10f000100010002ecac0004d11895",
        "29c129000100010001bcf40004d19d660bc13b000100010001bcf40004d118952a",
    );
    const REAL_HTTPS_RR: &str = concat!(
        "f29f818000010001000000010a636c6f7564666c61726503636f6d0000410001c00c0041000100000081004f000100000100",
        "180268330568332d32390568332d32380568332d323702683200040008681084e5681085e500060020260647000000000000",
        "000000681084e5260647000000000000000000681085e50000291000000000000000",
    );
    const REAL_SVCB: &str = concat!(
        "c96481000001000100000000076578616d706c6503636f6d0000400001076578616d706c6503636f6d000040000100000258",
        "0013000003666f6f076578616d706c6503636f6d00",
    );
    const REAL_LOC_BAD_LENGTH: &str = concat!(
        "111181800001000100000000076578616d706c6503636f6d00001d0001c00c001d00010000003c000f000102030405060708",
        "090a0b0c0d0e",
    );
    const REAL_MAX_COMPRESSION_DEPTH: &str = concat!(
        "12348180000100070000000001610000010001016100000100010000012c00047f000001c013000100010000012c00047f00",
        "0002c024000100010000012c00047f000003c034000100010000012c00047f000004c044000100010000012c00047f000005",
        "c054000100010000012c00047f000006c064000100010000012c00047f000007",
    );

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    fn answers(hex: &str) -> Vec<(String, u16, Option<String>)> {
        let m = parse(&unhex(hex)).unwrap();
        assert!(!m.malformed, "{:?}", m.events);
        m.answers()
            .map(|a| (a.rrname.to_string(), a.rrtype, a.rdata.map(String::from)))
            .collect()
    }

    #[test]
    fn real_zeek_dns53_udp_compression() {
        let m = parse(&unhex(REAL_DNS53_COMPRESSION)).unwrap();
        assert_eq!(m.answers().len(), 8);
        assert_eq!(m.answer(0).rrname, "us.v27.distributed.net");
        assert_eq!(m.answer(7).rdata, Some("63.77.33.226"));
        assert_eq!(m.authorities().len(), 7);
        assert_eq!(m.authority(4).rdata, Some("ns1.best.com"));
        assert!(!m.malformed);
    }

    #[test]
    fn real_zeek_https_rr_and_svcb() {
        assert_eq!(
            answers(REAL_HTTPS_RR),
            [("cloudflare.com".into(), 65, None)]
        );
        assert_eq!(answers(REAL_SVCB), [("example.com".into(), 64, None)]);
        assert!(parse(&unhex(REAL_HTTPS_RR)).unwrap().edns);
    }

    #[test]
    fn real_zeek_loc_invalid_length() {
        // simple-dns fails the whole message on this record; we keep it (rdata not rendered).
        assert!(simple_dns::Packet::parse(&unhex(REAL_LOC_BAD_LENGTH)).is_err());
        assert_eq!(
            answers(REAL_LOC_BAD_LENGTH),
            [("example.com".into(), 29, None)]
        );
    }

    #[test]
    fn real_zeek_max_compression_depth() {
        let rows = answers(REAL_MAX_COMPRESSION_DEPTH);
        assert_eq!(rows.len(), 7);
        assert!(rows.iter().all(|r| r.0 == "a"));
        assert_eq!(rows[6].2.as_deref(), Some("127.0.0.7"));
    }

    fn fixtures() -> Vec<Vec<u8>> {
        let mut v = vec![
            a_query(),
            a_response(),
            cname_chain(),
            mx_response(),
            txt_response(),
            https_svcb_response(),
            pointer_chain(40),
        ];
        for hex in [
            REAL_DNS53_COMPRESSION,
            REAL_HTTPS_RR,
            REAL_SVCB,
            REAL_LOC_BAD_LENGTH,
            REAL_MAX_COMPRESSION_DEPTH,
        ] {
            v.push(unhex(hex));
        }
        v
    }

    /// Differential check against simple-dns on well-formed messages.
    #[test]
    fn agrees_with_simple_dns() {
        // Fixture 6 (a 41-deep pointer chain) is deliberately past our jump cap.
        for (i, f) in fixtures().iter().enumerate().filter(|(i, _)| *i != 6) {
            let ours = parse(f).unwrap();
            let theirs = match simple_dns::Packet::parse(f) {
                Ok(p) => p,
                // simple-dns rejects the whole message for the LOC with a bad length.
                Err(_) if i == 10 => continue,
                Err(e) => panic!("fixture {i}: {e:?}"),
            };
            let q: Vec<_> = theirs
                .questions
                .iter()
                .map(|q| (q.qname.to_string(), u16::from(q.qtype)))
                .collect();
            let oq: Vec<_> = ours
                .queries()
                .map(|q| (q.rrname.to_string(), q.rrtype))
                .collect();
            assert_eq!(q, oq);
            let a: Vec<_> = theirs
                .answers
                .iter()
                .map(|r| (r.name.to_string(), u16::from(r.rdata.type_code()), r.ttl))
                .collect();
            let oa: Vec<_> = ours
                .answers()
                .map(|r| (r.rrname.to_string(), r.rrtype, r.ttl))
                .collect();
            assert_eq!(a, oa);
        }
    }

    /// The robustness gap that made us hand-write the walker: simple-dns rejects the
    /// whole message for one bad SVCB parameter; we keep every record.
    #[test]
    fn one_bad_svcb_param_does_not_lose_the_message() {
        let mut m = https_svcb_response();
        let len = m.len();
        m[len - 3] = 0; // port param length 2 -> 0
        m.extend_from_slice(b"\xc0\x0c");
        m.extend_from_slice(RR_A);
        m[7] = 3; // ancount
        assert!(simple_dns::Packet::parse(&m).is_err());
        let d = parse(&m).unwrap();
        let types: Vec<_> = d.answers().map(|a| a.rrtype).collect();
        assert_eq!(types, [65, 64, 1]);
    }

    fn check_invariants(buf: &[u8]) {
        let _ = looks_like_dns(buf);
        if let Ok(m) = parse(buf) {
            assert_eq!(m.malformed, !m.events.is_empty());
            assert!(m.queries().len() <= MAX_QUESTIONS);
            assert!(m.answers().len() <= MAX_RECORDS && m.authorities().len() <= MAX_RECORDS);
            for n in m
                .queries()
                .map(|q| q.rrname)
                .chain(m.answers().map(|a| a.rrname))
            {
                assert!(!n.is_empty() && n.len() <= MAX_NAME_LEN * 4);
            }
        }
    }

    #[test]
    fn fuzz_no_panic() {
        let seeds = fixtures();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut buf = Vec::with_capacity(1024);
        for i in 0..300_000 {
            buf.clear();
            if i % 4 == 0 {
                // random bytes behind a plausible header
                let len = rng.index(300);
                buf.extend((0..len).map(|_| rng.next() as u8));
                if buf.len() >= HEADER_LEN {
                    buf[4..12].copy_from_slice(&[
                        0,
                        1,
                        0,
                        rng.index(8) as u8,
                        0,
                        rng.index(4) as u8,
                        0,
                        rng.index(4) as u8,
                    ]);
                }
            } else {
                buf.extend_from_slice(&seeds[rng.index(seeds.len())]);
                for _ in 0..1 + rng.index(4) {
                    let at = rng.index(buf.len());
                    match rng.index(5) {
                        0 => buf[at] = rng.next() as u8,
                        1 => buf[at] = 0xc0 | (rng.index(4) as u8),
                        2 => buf[at] = rng.index(64) as u8,
                        3 => buf.truncate(at),
                        _ => {
                            let extra = rng.next() as u8;
                            buf.insert(at, extra);
                        }
                    }
                    if buf.is_empty() {
                        break;
                    }
                }
            }
            check_invariants(&buf);
        }
    }

    #[test]
    fn rrtype_names() {
        for (t, n) in [
            (1, "A"),
            (2, "NS"),
            (5, "CNAME"),
            (6, "SOA"),
            (12, "PTR"),
            (15, "MX"),
            (16, "TXT"),
            (28, "AAAA"),
            (33, "SRV"),
            (35, "NAPTR"),
            (41, "OPT"),
            (43, "DS"),
            (46, "RRSIG"),
            (47, "NSEC"),
            (48, "DNSKEY"),
            (50, "NSEC3"),
            (52, "TLSA"),
            (249, "TKEY"),
            (250, "TSIG"),
            (255, "ANY"),
            (257, "CAA"),
            (0, "0"),
            (100, "100"),
        ] {
            assert_eq!(rrtype_name(t), n);
        }
    }

    // ---- Differential tests against the previous implementation (`super::reference`).

    /// Asserts that the decoder and the reference agree on `buf` (results, errors and
    /// the heuristic).
    fn same_as_reference(buf: &[u8], what: &dyn std::fmt::Display) {
        let (ours, theirs) = (parse(buf), reference::parse(buf));
        if ours != theirs {
            let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
            panic!("{what}: parse differs on {hex}\nnew: {ours:?}\nold: {theirs:?}");
        }
        assert_eq!(
            looks_like_dns(buf),
            reference::looks_like_dns(buf),
            "{what}: looks_like_dns differs"
        );
    }

    /// UDP payloads and TCP segments (as they are, and without a 2-byte length prefix)
    /// of every capture file in `dir` (`.pcap`, `.pcapng`, `.cap`); the DNS ones (port
    /// 53, 5353 or 5355, or looking like DNS) in `dns`, the others in `other`. Returns
    /// the number of files read, `None` when `dir` cannot be listed.
    fn capture_payloads(
        dir: &std::path::Path,
        dns: &mut std::collections::BTreeSet<Vec<u8>>,
        other: &mut std::collections::BTreeSet<Vec<u8>>,
    ) -> Option<usize> {
        let files = crate::capture::file::expand(&[dir.to_path_buf()]).ok()?;
        for path in &files {
            capture_file_payloads(path, dns, other);
        }
        Some(files.len())
    }

    fn capture_file_payloads(
        path: &std::path::Path,
        dns: &mut std::collections::BTreeSet<Vec<u8>>,
        other: &mut std::collections::BTreeSet<Vec<u8>>,
    ) {
        use crate::decode::net::{self, L4};
        let mut cap =
            pcap::Capture::from_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let link = cap.get_datalink().0;
        let dns_port = |p: u16| matches!(p, 53 | 5353 | 5355);
        while let Ok(packet) = cap.next_packet() {
            let Ok(frame) = net::decode(link, packet.data) else {
                continue;
            };
            let (payload, ports, tcp) = match frame.l4 {
                L4::Udp(u) => (u.payload, [u.src_port, u.dst_port], false),
                L4::Tcp(t) => (t.payload, [t.src_port, t.dst_port], true),
                L4::Other(_) => continue,
            };
            let mut pieces = vec![payload];
            if tcp && let Some(rest) = payload.get(2..) {
                pieces.push(rest);
            }
            for p in pieces.into_iter().filter(|p| !p.is_empty()) {
                if ports.into_iter().any(dns_port) || reference::looks_like_dns(p) {
                    dns.insert(p.to_vec());
                } else {
                    other.insert(p.to_vec());
                }
            }
        }
    }

    /// A random change to a message: bit flips, byte values that matter to the name
    /// decoder (lengths, label types, pointers to the first name, to earlier or later
    /// offsets, to themselves), header counts, truncation, insertions, deletions and
    /// pieces spliced in from `other`.
    fn mutate(rng: &mut Rng, buf: &mut Vec<u8>, other: &[u8]) {
        for _ in 0..1 + rng.index(4) {
            if buf.is_empty() {
                return;
            }
            let at = rng.index(buf.len());
            match rng.index(11) {
                0 => buf[at] ^= 1 << rng.index(8),
                1 => buf[at] = rng.next() as u8,
                2 => buf.truncate(at),
                3 | 4 => {
                    let target = match rng.index(5) {
                        0 => HEADER_LEN,
                        1 => rng.index(at + 1),
                        2 => at,
                        3 => at + 1 + rng.index(16),
                        _ => rng.index(0x4000),
                    };
                    buf[at] = 0xc0 | ((target >> 8) & 0x3f) as u8;
                    if let Some(lo) = buf.get_mut(at + 1) {
                        *lo = target as u8;
                    }
                }
                5 => buf[at] = rng.index(64) as u8,
                6 => buf[at] = [0x00, 0x3f, 0x40, 0x80, 0xc0, 0x20, 0x7f, 0xff][rng.index(8)],
                7 => {
                    let field = 4 + 2 * rng.index(4);
                    let v: u16 = [0, 1, 2, 3, 15, 16, 17, 255, 256, 257, 0xffff][rng.index(11)];
                    if let Some(f) = buf.get_mut(field..field + 2) {
                        f.copy_from_slice(&v.to_be_bytes());
                    }
                }
                8 => buf.insert(at, rng.next() as u8),
                9 => {
                    buf.remove(at);
                }
                _ => {
                    let from = rng.index(other.len());
                    let len = rng.index(40).min(other.len() - from);
                    let piece = other[from..from + len].to_vec();
                    buf.splice(at..at, piece);
                }
            }
        }
    }

    /// Appends a random name: labels (mostly short and printable, sometimes up to 63
    /// bytes of anything), then the root or a pointer to a label written earlier.
    /// Records where each label starts in `labels`.
    fn random_name(rng: &mut Rng, m: &mut Vec<u8>, labels: &mut Vec<usize>) {
        let count = match rng.index(8) {
            0 => 0,
            1 => 20 + rng.index(110),
            _ => rng.index(5),
        };
        for _ in 0..count {
            let len = 1 + if rng.index(6) == 0 {
                rng.index(63)
            } else {
                rng.index(8)
            };
            labels.push(m.len());
            m.push(len as u8);
            for _ in 0..len {
                m.push(match rng.index(20) {
                    0 => rng.next() as u8,
                    _ => b'a' + rng.index(26) as u8,
                });
            }
        }
        if labels.is_empty() || rng.index(4) == 0 {
            m.push(0);
        } else {
            let target = labels[rng.index(labels.len())];
            m.extend_from_slice(&(0xc000 | target as u16).to_be_bytes());
        }
    }

    /// A message made to exercise compression: every name may point into any name
    /// before it (so pointer chains grow deep and names long), records of every
    /// rendered rdata type, counts that may not match.
    fn random_message(rng: &mut Rng) -> Vec<u8> {
        let records = rng.index(40);
        let (an, ns) = (rng.index(records + 1), rng.index(4));
        let mut m = msg(
            [
                rng.next() as u16,
                0x8180,
                1 + rng.index(2) as u16,
                an as u16,
                ns as u16,
                (records - an) as u16 + rng.index(2) as u16,
            ],
            &[],
        );
        let mut labels = Vec::new();
        random_name(rng, &mut m, &mut labels);
        m.extend_from_slice(Q_A);
        for _ in 0..records + ns {
            random_name(rng, &mut m, &mut labels);
            let rrtype: u16 = [1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 65, 99][rng.index(12)];
            m.extend_from_slice(&rrtype.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
            let len_at = m.len();
            m.extend_from_slice(&[0, 0]);
            let start = m.len();
            match rrtype {
                1 => m.extend((0..[4, 4, 4, 3, 5][rng.index(5)]).map(|_| rng.next() as u8)),
                28 => {
                    for _ in 0..8 {
                        let seg: u16 = match rng.index(4) {
                            0 | 1 => 0,
                            2 => rng.index(0x100) as u16,
                            _ => rng.next() as u16,
                        };
                        m.extend_from_slice(&seg.to_be_bytes());
                    }
                }
                16 => {
                    for _ in 0..rng.index(4) {
                        let len = rng.index(40);
                        m.push(len as u8);
                        m.extend((0..len).map(|_| rng.next() as u8));
                    }
                }
                2 | 5 | 6 | 12 | 15 | 33 => {
                    let skip = match rrtype {
                        15 => 2,
                        33 => 6,
                        _ => 0,
                    };
                    m.extend((0..skip).map(|_| rng.next() as u8));
                    random_name(rng, &mut m, &mut labels);
                }
                _ => m.extend((0..rng.index(12)).map(|_| rng.next() as u8)),
            }
            let rdlen = (m.len() - start) as u16;
            let rdlen = if rng.index(10) == 0 {
                rdlen.wrapping_sub(1)
            } else {
                rdlen
            };
            m[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        }
        m
    }

    /// The decoder returns exactly what the previous implementation returned: on real
    /// DNS traffic (the captures of this repository and the shared real-world captures),
    /// on mutations of it, and on generated messages full of compression pointers.
    #[test]
    fn same_results_as_reference() {
        use std::collections::BTreeSet;
        use std::path::Path;
        let (mut dns, mut other) = (BTreeSet::new(), BTreeSet::new());
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let own = capture_payloads(&root.join("captures"), &mut dns, &mut other)
            .expect("captures/ of the repository");
        assert!(own > 0);
        let shared = root.join("../shared/captures/real");
        match capture_payloads(&shared, &mut dns, &mut other) {
            Some(n) => eprintln!(
                "dns differential: {n} capture files in {}",
                shared.display()
            ),
            None => eprintln!(
                "dns differential: {} is absent, skipping its captures",
                shared.display()
            ),
        }
        // More captures (e.g. a large replay file): CROSSWIRE_DNS_DIFF_PCAPS=a.pcap:b.pcap
        if let Ok(extra) = std::env::var("CROSSWIRE_DNS_DIFF_PCAPS") {
            for path in extra.split(':').filter(|p| !p.is_empty()) {
                capture_file_payloads(Path::new(path), &mut dns, &mut other);
            }
        }
        let mut seeds: Vec<Vec<u8>> = dns.into_iter().collect();
        seeds.extend(fixtures());
        eprintln!(
            "dns differential: {} DNS payloads, {} other payloads",
            seeds.len(),
            other.len()
        );
        assert!(seeds.len() > 100, "too few DNS payloads: {}", seeds.len());
        for (i, p) in seeds.iter().chain(&other).enumerate() {
            same_as_reference(p, &format_args!("payload {i}"));
        }

        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut buf = Vec::with_capacity(2048);
        let mutants = (400_000 / seeds.len()).clamp(20, 400);
        for (i, seed) in seeds.iter().enumerate() {
            for j in 0..mutants {
                buf.clear();
                buf.extend_from_slice(seed);
                let other = &seeds[rng.index(seeds.len())];
                mutate(&mut rng, &mut buf, other);
                same_as_reference(&buf, &format_args!("mutant {j} of payload {i}"));
            }
        }
        for i in 0..100_000 {
            let mut m = random_message(&mut rng);
            same_as_reference(&m, &format_args!("generated message {i}"));
            let other = &seeds[rng.index(seeds.len())];
            mutate(&mut rng, &mut m, other);
            same_as_reference(&m, &format_args!("mutated generated message {i}"));
        }
    }

    /// Names near the limits, where a cached suffix joined to a prefix must fail exactly
    /// like the walk: the 255-byte limit and the pointer cap reached through the cache.
    #[test]
    fn cache_joins_stop_at_the_limits() {
        for first_len in [200usize, 230, 240, 245, 250, 252, 253] {
            for prefix in 0..8 {
                // qname: labels of 9 bytes (+ a shorter last one) filling `first_len`
                // wire bytes; answers: `prefix` 1-byte labels + a pointer to the qname,
                // then a pointer to that answer's owner.
                let mut name = Vec::new();
                while name.len() + 10 <= first_len {
                    name.extend_from_slice(b"\x09abcdefghi");
                }
                let rest = first_len - name.len();
                if rest > 1 {
                    name.push((rest - 1) as u8);
                    name.extend(std::iter::repeat_n(b'z', rest - 1));
                }
                name.push(0);
                let mut m = msg([1, 0x8180, 1, 3, 0, 0], &[&name, Q_A]);
                // The qname again through the cache, then with a prefix.
                m.extend_from_slice(b"\xc0\x0c");
                m.extend_from_slice(RR_A);
                let owner = m.len();
                for _ in 0..prefix {
                    m.extend_from_slice(b"\x01p");
                }
                m.extend_from_slice(b"\xc0\x0c");
                m.extend_from_slice(RR_A);
                m.extend_from_slice(&(0xc000 | owner as u16).to_be_bytes());
                m.extend_from_slice(RR_A);
                same_as_reference(&m, &format_args!("qname {first_len}, prefix {prefix}"));
            }
        }
        // Chains of pointers 25 to 40 deep, walked and reached through cached names:
        // owner `k` is a label and a pointer to owner `k - 1`; then one bare pointer and
        // one label + pointer to the last owner.
        for depth in 25..40 {
            same_as_reference(&pointer_chain(depth), &format_args!("chain {depth}"));
            let mut m = msg([1, 0x8180, 1, depth as u16 + 2, 0, 0], &[b"\x01q\x00", Q_A]);
            let mut prev = HEADER_LEN;
            for _ in 0..depth {
                let here = m.len();
                m.extend_from_slice(b"\x01x");
                m.extend_from_slice(&(0xc000 | prev as u16).to_be_bytes());
                m.extend_from_slice(RR_A);
                prev = here;
            }
            m.extend_from_slice(&(0xc000 | prev as u16).to_be_bytes());
            m.extend_from_slice(RR_A);
            m.extend_from_slice(b"\x01y");
            m.extend_from_slice(&(0xc000 | prev as u16).to_be_bytes());
            m.extend_from_slice(RR_A);
            same_as_reference(&m, &format_args!("labelled chain {depth}"));
        }
    }

    /// Names rendered for one message are never served to the next one, even when it
    /// points at the same offsets.
    #[test]
    fn cache_does_not_leak_between_messages() {
        let a = a_response();
        let mut b = a_response();
        b[HEADER_LEN + 1] = b'x'; // "xww.example.com"
        for m in [&a, &b, &a, &b] {
            same_as_reference(m, &"alternating messages");
        }
        assert_eq!(parse(&b).unwrap().answer(0).rrname, "xww.example.com");
    }

    #[test]
    fn address_text_matches_std() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let text = |push: &dyn Fn(&mut String)| {
            let mut s = String::new();
            push(&mut s);
            s
        };
        for n in 0..=255u8 {
            let b = [n, 255 - n, n / 3, n.wrapping_mul(7)];
            assert_eq!(text(&|s| push_ipv4(s, b)), Ipv4Addr::from(b).to_string());
        }
        for i in 0..300_000u32 {
            let mut b = [0u8; 16];
            for seg in b.chunks_exact_mut(2) {
                let v: u16 = match rng.index(5) {
                    0 | 1 => 0,
                    2 => rng.index(0x10) as u16,
                    3 => rng.index(0x1000) as u16,
                    _ => rng.next() as u16,
                };
                seg.copy_from_slice(&v.to_be_bytes());
            }
            if i % 7 == 0 {
                b[..10].fill(0);
                b[10..12].fill(0xff);
            }
            assert_eq!(
                text(&|s| push_ipv6(s, b)),
                Ipv6Addr::from(b).to_string(),
                "{b:?}"
            );
        }
    }
}
