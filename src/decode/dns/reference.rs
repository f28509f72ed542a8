//! The DNS decoder as it was before the name cache and the single-pass renderer, kept
//! verbatim (test builds only) as the oracle of the differential tests in
//! `super::tests`: [`parse`] and [`looks_like_dns`] must return what these return, for
//! every input. It still builds its sections as a `Vec` of owned records per section,
//! as the message type was then; [`parse`] copies them into a [`Message`] at the end,
//! so the tests compare the two decoders through the message's accessors.

use super::{
    Error, Events, HEADER_LEN, MAX_LABELS, MAX_NAME_LEN, MAX_POINTER_JUMPS, MAX_QUESTIONS,
    MAX_RECORDS, Message, NameError, Sections,
};
use std::net::{Ipv4Addr, Ipv6Addr};

/// One question, owned.
struct Query {
    rrname: String,
    rrtype: u16,
}

/// One Answer or Authority record, owned.
struct Answer {
    rrname: String,
    rrtype: u16,
    ttl: u32,
    rdata: Option<String>,
}

impl Query {
    fn view(&self) -> super::Query<'_> {
        super::Query {
            rrname: &self.rrname,
            rrtype: self.rrtype,
        }
    }
}

impl Answer {
    fn view(&self) -> super::Answer<'_> {
        super::Answer {
            rrname: &self.rrname,
            rrtype: self.rrtype,
            ttl: self.ttl,
            rdata: self.rdata.as_deref(),
        }
    }
}

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

/// A decoded name in wire form (length-prefixed labels, compression resolved, no root
/// octet), kept on the stack so that checking a name costs no allocation.
struct NameBuf {
    buf: [u8; MAX_NAME_LEN],
    len: usize,
}

impl NameBuf {
    fn new() -> Self {
        NameBuf {
            buf: [0; MAX_NAME_LEN],
            len: 0,
        }
    }

    fn wire(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Presentation form: labels joined by '.', `\DDD` outside 0x21..=0x7E, root ".".
    fn render(&self) -> String {
        let wire = self.wire();
        if wire.is_empty() {
            return String::from(".");
        }
        let mut s = String::with_capacity(wire.len());
        let mut rest = wire;
        while let Some((&len, tail)) = rest.split_first() {
            let (label, next) = tail
                .split_at_checked(usize::from(len))
                .unwrap_or((tail, &[]));
            if !s.is_empty() {
                s.push('.');
            }
            for &b in label {
                if (0x21..=0x7e).contains(&b) {
                    s.push(char::from(b));
                } else {
                    push_decimal_escape(&mut s, b);
                }
            }
            rest = next;
        }
        s
    }
}

fn push_decimal_escape(s: &mut String, b: u8) {
    s.push('\\');
    s.push(char::from(b'0' + b / 100));
    s.push(char::from(b'0' + (b / 10) % 10));
    s.push(char::from(b'0' + b % 10));
}

fn push_hex_escape(s: &mut String, b: u8) {
    let digit = |n: u8| char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 });
    s.push_str("\\x");
    s.push(digit(b >> 4));
    s.push(digit(b & 0x0f));
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    let b = msg.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn be32(msg: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = msg.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// Decodes the name starting at `start` into `out`; returns the offset just past the
/// name's in-place bytes (after its root octet or first pointer).
///
/// Every pointer must target an offset strictly below the start of the label run that
/// contains it, so each jump lands strictly lower than anything read so far: no loop is
/// possible, and [`MAX_POINTER_JUMPS`] additionally bounds long backward chains.
fn read_name(msg: &[u8], start: usize, out: &mut NameBuf) -> Result<usize, NameError> {
    out.len = 0;
    let mut pos = start;
    let mut run_start = start;
    let mut end = None;
    let mut jumps = 0usize;
    let mut labels = 0usize;
    // Steps: at most MAX_LABELS labels + MAX_POINTER_JUMPS pointers + the root octet.
    loop {
        let b = *msg.get(pos).ok_or(NameError::Truncated)?;
        match b & 0xc0 {
            0x00 if b == 0 => return Ok(end.unwrap_or(pos + 1)),
            0x00 => {
                let len = usize::from(b);
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(NameError::Truncated)?;
                labels += 1;
                if labels > MAX_LABELS {
                    return Err(NameError::TooManyLabels);
                }
                // + 1 for the root octet still to come.
                if out.len + 1 + len + 1 > MAX_NAME_LEN {
                    return Err(NameError::TooLong);
                }
                let dst = out
                    .buf
                    .get_mut(out.len..out.len + 1 + len)
                    .ok_or(NameError::TooLong)?;
                if let Some((first, rest)) = dst.split_first_mut() {
                    *first = b;
                    rest.copy_from_slice(label);
                }
                out.len += 1 + len;
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
/// that [`read_name`] rejected. `Err` when even its in-place part is unusable.
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
    Answer,
    Authority,
    Additional,
}

/// Parse state: the message, a read offset, and what went wrong so far.
struct Decoder<'a> {
    msg: &'a [u8],
    pos: usize,
    events: Events,
    name: NameBuf,
    /// TTL field of the first OPT record (carries the extended rcode).
    opt_ttl: Option<u32>,
}

impl<'a> Decoder<'a> {
    /// Decodes or skips the owner name at `pos`. `Ok(Some(name))` decoded, `Ok(None)`
    /// undecodable but stepped over, `Err(())` the walk cannot continue.
    fn owner_name(&mut self, decode: bool) -> Result<Option<String>, ()> {
        let read_err = if decode {
            match read_name(self.msg, self.pos, &mut self.name) {
                Ok(end) => {
                    self.pos = end;
                    return Ok(Some(self.name.render()));
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
    fn questions(&mut self, count: usize, out: &mut Vec<Query>) -> Result<(), ()> {
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
            if let Some(rrname) = name {
                out.push(Query { rrname, rrtype });
            }
        }
        Ok(())
    }

    /// Walks `count` records; decoded ones go to `out` (Answer/Authority sections).
    fn records(
        &mut self,
        count: usize,
        section: Section,
        mut out: Option<&mut Vec<Answer>>,
    ) -> Result<(), ()> {
        // Bounded by the u16 header count; each record consumes >= 11 bytes.
        for i in 0..count {
            let decode = out.is_some() && i < MAX_RECORDS;
            if out.is_some() && !decode {
                self.events.insert(Events::RECORD_CAP);
            }
            let name = self.owner_name(decode)?;
            let fixed = self.pos;
            let (Some(rrtype), Some(ttl), Some(rdlen)) = (
                be16(self.msg, fixed),
                be32(self.msg, fixed + 4),
                be16(self.msg, fixed + 8),
            ) else {
                self.events.insert(Events::TRUNCATED);
                return Err(());
            };
            let rstart = fixed + 10;
            let rend = rstart + usize::from(rdlen);
            if rend > self.msg.len() {
                self.events.insert(Events::TRUNCATED);
                return Err(());
            }
            if section == Section::Additional && rrtype == TYPE_OPT && self.opt_ttl.is_none() {
                self.opt_ttl = Some(ttl);
            }
            if let (Some(rrname), Some(out)) = (name, out.as_deref_mut()) {
                let rdata = match self.rdata(rrtype, rstart, rend) {
                    Ok(r) => r,
                    Err(()) => {
                        self.events.insert(Events::BAD_RDATA);
                        None
                    }
                };
                out.push(Answer {
                    rrname,
                    rrtype,
                    ttl,
                    rdata,
                });
            }
            self.pos = rend;
        }
        Ok(())
    }

    /// Text of the rdata at `start..end` for the types we render; `Ok(None)` otherwise.
    fn rdata(&mut self, rrtype: u16, start: usize, end: usize) -> Result<Option<String>, ()> {
        let rdata = self.msg.get(start..end).ok_or(())?;
        let text = match rrtype {
            TYPE_A => {
                let b: [u8; 4] = rdata.try_into().map_err(|_| ())?;
                Ipv4Addr::from(b).to_string()
            }
            TYPE_AAAA => {
                let b: [u8; 16] = rdata.try_into().map_err(|_| ())?;
                Ipv6Addr::from(b).to_string()
            }
            TYPE_CNAME | TYPE_NS | TYPE_PTR | TYPE_SOA => self.rdata_name(start, end)?,
            TYPE_MX => self.rdata_name(start + 2, end)?,
            TYPE_SRV => self.rdata_name(start + 6, end)?,
            TYPE_TXT => txt_text(rdata)?,
            _ => return Ok(None),
        };
        Ok(Some(text))
    }

    /// A name inside rdata: it must decode and its in-place part must end within rdata.
    fn rdata_name(&mut self, start: usize, end: usize) -> Result<String, ()> {
        if start >= end {
            return Err(());
        }
        match read_name(self.msg, start, &mut self.name) {
            Ok(name_end) if name_end <= end => Ok(self.name.render()),
            _ => Err(()),
        }
    }
}

/// TXT: character-strings concatenated; bytes outside 0x20..=0x7E as `\xNN` (tshark's
/// rendering). Each step consumes at least one rdata byte.
fn txt_text(rdata: &[u8]) -> Result<String, ()> {
    let mut s = String::with_capacity(rdata.len());
    let mut rest = rdata;
    while let Some((&len, tail)) = rest.split_first() {
        let (chunk, next) = tail.split_at_checked(usize::from(len)).ok_or(())?;
        for &b in chunk {
            if (0x20..=0x7e).contains(&b) {
                s.push(char::from(b));
            } else {
                push_hex_escape(&mut s, b);
            }
        }
        rest = next;
    }
    Ok(s)
}

/// Decodes one DNS message. `Err` only when the header or the first question is
/// unusable; every later problem sets [`Message::malformed`] and keeps the rest.
pub fn parse(msg: &[u8]) -> Result<Message, Error> {
    if msg.len() < HEADER_LEN {
        return Err(Error::HeaderTruncated);
    }
    let h = |at| be16(msg, at).unwrap_or(0);
    let (id, flags) = (h(0), h(2));
    let (qdcount, ancount, nscount, arcount) = (h(4), h(6), h(8), h(10));
    let mut m = Message {
        id,
        flags,
        opcode: ((flags >> 11) & 0x0f) as u8,
        qr: flags & 0x8000 != 0,
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        rd: flags & 0x0100 != 0,
        ra: flags & 0x0080 != 0,
        rcode: flags & 0x000f,
        ..Message::default()
    };
    let (mut queries, mut answers, mut authorities) = (Vec::new(), Vec::new(), Vec::new());
    let mut d = Decoder {
        msg,
        pos: HEADER_LEN,
        events: Events::default(),
        name: NameBuf::new(),
        opt_ttl: None,
    };

    if qdcount > 0 {
        let end = read_name(msg, HEADER_LEN, &mut d.name).map_err(|e| match e {
            NameError::Truncated => Error::QuestionTruncated,
            e => Error::QuestionName(e),
        })?;
        let rrtype = be16(msg, end)
            .filter(|_| end + 4 <= msg.len())
            .ok_or(Error::QuestionTruncated)?;
        d.pos = end + 4;
        queries.reserve_exact(usize::from(qdcount).min(MAX_QUESTIONS));
        queries.push(Query {
            rrname: d.name.render(),
            rrtype,
        });
    }

    // Each step stops at the first section whose records can no longer be located.
    let _ = d
        .questions(usize::from(qdcount), &mut queries)
        .and_then(|()| {
            answers.reserve_exact(usize::from(ancount).min(MAX_RECORDS));
            d.records(usize::from(ancount), Section::Answer, Some(&mut answers))
        })
        .and_then(|()| {
            d.records(
                usize::from(nscount),
                Section::Authority,
                Some(&mut authorities),
            )
        })
        .and_then(|()| d.records(usize::from(arcount), Section::Additional, None));

    if let Some(ttl) = d.opt_ttl {
        m.edns = true;
        m.rcode |= ((ttl >> 24) as u16) << 4;
    }
    m.events = d.events;
    m.malformed = !m.events.is_empty();
    m.sections = Sections::new(
        queries.iter().map(Query::view),
        answers.iter().map(Answer::view),
        authorities.iter().map(Answer::view),
    );
    Ok(m)
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
    let mut name = NameBuf::new();
    let Ok(end) = read_name(payload, HEADER_LEN, &mut name) else {
        return false;
    };
    match (be16(payload, end), be16(payload, end + 2)) {
        (Some(qtype), Some(qclass)) => qtype != 0 && matches!(qclass, 1 | 3 | 4 | 254 | 255),
        _ => false,
    }
}
