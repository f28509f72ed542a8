//! Kerberos 5 decoder (RFC 4120), ports 88/TCP and 88/UDP: one payload in, a borrowed
//! [`Message`] view out. Its job is user identity on the wire: which client principal
//! (`alice@EXAMPLE.COM`) asks for tickets from which host, whether the KDC refused
//! ([`ErrorCode`]) and for which services (`sname`).
//!
//! # What is decoded
//!
//! * AS-REQ (application 10) / TGS-REQ (12): pvno, msg-type, the PA-DATA types and
//!   values, and from req-body: cname, realm, sname and the requested etypes.
//! * AS-REP (11) / TGS-REP (13): crealm, cname, and the ticket's realm and sname.
//! * KRB-ERROR (30): error-code, crealm, cname, realm, sname, e-text.
//! * Any other application tag (AP-REQ, KRB-SAFE, ...): only pvno and msg-type, with
//!   [`MsgType::Unknown`] or the named variant.
//!
//! Over TCP a 4-byte big-endian length prefix comes first (RFC 4120 §7.2.2). A message
//! longer than the payload (a TCP segment boundary, or a capture cut by snaplen) is
//! still decoded as far as the bytes go: the enclosing constructed values are cut at the
//! end of the payload, every field read must be complete, and [`Events::PARTIAL`] is set.
//! An AS-REP's cname/crealm come before the ticket, so they survive a split; a
//! TGS-REQ's req-body (sname) comes after its PA-TGS-REQ ticket, so a split TGS-REQ
//! loses it. The caller may instead join the segments (up to [`MAX_MESSAGE_LEN`]).
//!
//! # Why hand-written
//!
//! Only about twelve fields are needed. A minimal DER walker over `&[u8]` needs no
//! dependency, never allocates, and decodes what is there instead of failing the whole
//! message on one malformed field, which general ASN.1 crates (which build owned trees
//! and need the complete message) do not offer.
//!
//! # DER rules and limits
//!
//! * Definite lengths only (indefinite is [`Error::IndefiniteLength`] at the outer
//!   levels, a bad field elsewhere); at most 4 length octets; single-octet tags only
//!   (Kerberos never uses tag numbers above 30). Every length is checked against the
//!   remaining slice.
//! * No recursion: the walk follows the fixed Kerberos schema, so nesting depth is
//!   bounded by the schema (at most 10 levels, the reply ticket's sname: message,
//!   SEQUENCE, `[5]`, Ticket, SEQUENCE, `[2]`, PrincipalName, `[1]`, SEQUENCE OF,
//!   string). Anything nested deeper is skipped by its length without being looked at.
//! * [`MAX_FIELDS`] fields per SEQUENCE, [`MAX_COMPONENTS`] name components per
//!   principal (more: the principal is dropped), [`MAX_LIST`] PA-DATA or etypes per
//!   list (more: the rest are not returned), [`MAX_STRING_LEN`] bytes per realm or
//!   name component, [`MAX_MESSAGE_LEN`] bytes for a TCP length prefix.
//! * A field that does not decode is dropped and [`Events::BAD_FIELD`] set; the rest of
//!   the message is kept. The message is an [`Error`] only when its framing, outer tag,
//!   SEQUENCE or pvno (must be 5) is wrong.
//!
//! # Guarantees
//!
//! * No panics: every read is a checked `get`/`split_at_checked`; no `unwrap`, no
//!   indexing, no `unsafe`.
//! * Bounded work: every loop consumes at least one TLV header per step and has a named
//!   cap, so work is linear in the payload size.
//! * No allocation: the [`Message`] borrows the payload; lists and name components are
//!   validated once in [`parse`] and then iterated in place ([`PrincipalName::components`],
//!   [`Message::padata`], [`Message::etypes`]).

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::fmt;

/// Largest message length accepted in a TCP length prefix (Windows' largest Kerberos
/// token is 64 KiB; a few PACs more).
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;
/// Fields read per SEQUENCE; later ones are ignored ([`Events::FIELD_CAP`]).
pub const MAX_FIELDS: usize = 16;
/// Name components per principal; a principal with more is dropped
/// ([`Events::COMPONENT_CAP`]).
pub const MAX_COMPONENTS: usize = 8;
/// PA-DATA entries or etypes returned per list; the rest are not ([`Events::LIST_CAP`]).
pub const MAX_LIST: usize = 32;
/// Longest realm or name component, in bytes.
pub const MAX_STRING_LEN: usize = 1024;

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_IA5_STRING: u8 = 0x16;
const TAG_GENERAL_STRING: u8 = 0x1b;
/// Constructed, application class; the tag number is in the low 5 bits.
const APPLICATION: u8 = 0x60;
/// Constructed, context class.
const CONTEXT: u8 = 0xa0;
const CLASS_MASK: u8 = 0xe0;
/// Application tag of a Ticket.
const APP_TICKET: u8 = 1;

/// Why a payload is not a decodable Kerberos message. Small and `Copy`: count it by
/// [`Error::reason`], do not bubble it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The payload ends inside the TCP prefix or the first TLV headers.
    Truncated,
    /// TCP length prefix of 0, above [`MAX_MESSAGE_LEN`], or with the reserved high bit.
    BadFrame,
    /// The outer value is not an application-tagged SEQUENCE, or pvno is missing or
    /// not 5.
    NotKerberos,
    /// An outer value uses the BER indefinite length form.
    IndefiniteLength,
    /// An outer length has more than 4 length octets.
    BadLength,
    /// An outer tag uses the multi-octet tag-number form.
    BadTag,
}

impl Error {
    /// Short snake_case reason for stats counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadFrame => "bad_tcp_frame",
            Error::NotKerberos => "not_kerberos",
            Error::IndefiniteLength => "indefinite_length",
            Error::BadLength => "bad_length",
            Error::BadTag => "bad_tag",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "payload ends inside the message header",
            Error::BadFrame => "invalid TCP length prefix",
            Error::NotKerberos => "not a Kerberos 5 message",
            Error::IndefiniteLength => "indefinite length",
            Error::BadLength => "length with more than 4 octets",
            Error::BadTag => "multi-octet tag",
        })
    }
}

impl std::error::Error for Error {}

/// Anomalies met while decoding one message (an open bit set; the message is still
/// usable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events(u8);

super::event_set_methods!(Events);

impl Events {
    /// The message continues past the payload; fields after the cut are missing.
    pub const PARTIAL: Events = Events(1 << 0);
    /// A field did not decode (bad tag, length, type or value) and was dropped.
    pub const BAD_FIELD: Events = Events(1 << 1);
    /// More than [`MAX_FIELDS`] fields in a SEQUENCE; the rest were ignored.
    pub const FIELD_CAP: Events = Events(1 << 2);
    /// A principal had more than [`MAX_COMPONENTS`] components and was dropped.
    pub const COMPONENT_CAP: Events = Events(1 << 3);
    /// A PA-DATA or etype list had more than [`MAX_LIST`] entries.
    pub const LIST_CAP: Events = Events(1 << 4);
    /// The msg-type field disagrees with the application tag (the tag wins).
    pub const MSG_TYPE_MISMATCH: Events = Events(1 << 5);

    const ALL: [(Events, &'static str); 6] = [
        (Events::PARTIAL, "partial"),
        (Events::BAD_FIELD, "bad_field"),
        (Events::FIELD_CAP, "field_cap"),
        (Events::COMPONENT_CAP, "component_cap"),
        (Events::LIST_CAP, "list_cap"),
        (Events::MSG_TYPE_MISMATCH, "msg_type_mismatch"),
    ];
}

/// Message type, from the application tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    /// 10
    AsReq,
    /// 11
    AsRep,
    /// 12
    TgsReq,
    /// 13
    TgsRep,
    /// 14
    ApReq,
    /// 15
    ApRep,
    /// 30 (KRB-ERROR)
    Error,
    /// Any other application tag (0..=30).
    Unknown(u8),
}

impl From<u8> for MsgType {
    fn from(v: u8) -> MsgType {
        match v {
            10 => MsgType::AsReq,
            11 => MsgType::AsRep,
            12 => MsgType::TgsReq,
            13 => MsgType::TgsRep,
            14 => MsgType::ApReq,
            15 => MsgType::ApRep,
            30 => MsgType::Error,
            n => MsgType::Unknown(n),
        }
    }
}

impl MsgType {
    /// The wire value.
    pub fn value(self) -> u8 {
        match self {
            MsgType::AsReq => 10,
            MsgType::AsRep => 11,
            MsgType::TgsReq => 12,
            MsgType::TgsRep => 13,
            MsgType::ApReq => 14,
            MsgType::ApRep => 15,
            MsgType::Error => 30,
            MsgType::Unknown(n) => n,
        }
    }

    /// Snake_case name for EVE records ("unknown" for other values).
    pub fn name(self) -> &'static str {
        match self {
            MsgType::AsReq => "as_req",
            MsgType::AsRep => "as_rep",
            MsgType::TgsReq => "tgs_req",
            MsgType::TgsRep => "tgs_rep",
            MsgType::ApReq => "ap_req",
            MsgType::ApRep => "ap_rep",
            MsgType::Error => "krb_error",
            MsgType::Unknown(_) => "unknown",
        }
    }
}

/// KRB-ERROR error-code (an open set: any `i32` is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub i32);

impl ErrorCode {
    /// Client not found in the Kerberos database (user enumeration).
    pub const C_PRINCIPAL_UNKNOWN: ErrorCode = ErrorCode(6);
    /// Server not found in the Kerberos database.
    pub const S_PRINCIPAL_UNKNOWN: ErrorCode = ErrorCode(7);
    /// Clients credentials have been revoked (disabled or locked account).
    pub const CLIENT_REVOKED: ErrorCode = ErrorCode(18);
    /// Password has expired.
    pub const KEY_EXPIRED: ErrorCode = ErrorCode(23);
    /// Pre-authentication failed (wrong password).
    pub const PREAUTH_FAILED: ErrorCode = ErrorCode(24);
    /// Pre-authentication required (the normal first answer to an AS-REQ).
    pub const PREAUTH_REQUIRED: ErrorCode = ErrorCode(25);

    /// RFC 4120 §7.5.9 name of common codes, `None` for the others.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "KDC_ERR_NONE",
            1 => "KDC_ERR_NAME_EXP",
            2 => "KDC_ERR_SERVICE_EXP",
            3 => "KDC_ERR_BAD_PVNO",
            6 => "KDC_ERR_C_PRINCIPAL_UNKNOWN",
            7 => "KDC_ERR_S_PRINCIPAL_UNKNOWN",
            8 => "KDC_ERR_PRINCIPAL_NOT_UNIQUE",
            12 => "KDC_ERR_POLICY",
            13 => "KDC_ERR_BADOPTION",
            14 => "KDC_ERR_ETYPE_NOSUPP",
            18 => "KDC_ERR_CLIENT_REVOKED",
            23 => "KDC_ERR_KEY_EXPIRED",
            24 => "KDC_ERR_PREAUTH_FAILED",
            25 => "KDC_ERR_PREAUTH_REQUIRED",
            31 => "KRB_AP_ERR_BAD_INTEGRITY",
            32 => "KRB_AP_ERR_TKT_EXPIRED",
            34 => "KRB_AP_ERR_REPEAT",
            37 => "KRB_AP_ERR_SKEW",
            41 => "KRB_AP_ERR_MODIFIED",
            52 => "KRB_ERR_RESPONSE_TOO_BIG",
            60 => "KRB_ERR_GENERIC",
            68 => "KDC_ERR_WRONG_REALM",
            _ => return None,
        })
    }
}

/// One DER TLV: tag, value, and whether the value was cut at the end of the payload.
#[derive(Debug, Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    value: &'a [u8],
    cut: bool,
}

/// Reads one TLV from the start of `buf`; returns it and the bytes after it. With
/// `partial`, a constructed value longer than `buf` is cut at its end (`cut` set).
fn tlv(buf: &[u8], partial: bool) -> Result<(Tlv<'_>, &[u8]), Error> {
    let (&tag, rest) = buf.split_first().ok_or(Error::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(Error::BadTag);
    }
    let (&first, rest) = rest.split_first().ok_or(Error::Truncated)?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x80 => return Err(Error::IndefiniteLength),
        0x81..=0x84 => {
            let (octets, rest) = rest
                .split_at_checked(usize::from(first & 0x7f))
                .ok_or(Error::Truncated)?;
            let len = octets
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            (usize::try_from(len).map_err(|_| Error::BadLength)?, rest)
        }
        _ => return Err(Error::BadLength),
    };
    match rest.split_at_checked(len) {
        Some((value, next)) => Ok((
            Tlv {
                tag,
                value,
                cut: false,
            },
            next,
        )),
        None if partial && tag & 0x20 != 0 => Ok((
            Tlv {
                tag,
                value: rest,
                cut: true,
            },
            &[],
        )),
        None => Err(Error::Truncated),
    }
}

/// The single complete TLV that an explicit context tag wraps, with the expected tag.
fn inner(content: &[u8], tag: u8) -> Option<&[u8]> {
    match tlv(content, false) {
        Ok((t, _)) if t.tag == tag => Some(t.value),
        _ => None,
    }
}

/// DER INTEGER of 1..=8 octets, two's complement.
fn integer(content: &[u8]) -> Option<i64> {
    let v = inner(content, TAG_INTEGER)?;
    if v.is_empty() || v.len() > 8 {
        return None;
    }
    let first = *v.first()?;
    let init: i64 = if first & 0x80 != 0 { -1 } else { 0 };
    Some(v.iter().fold(init, |acc, &b| (acc << 8) | i64::from(b)))
}

fn int32(content: &[u8]) -> Option<i32> {
    integer(content).and_then(|n| i32::try_from(n).ok())
}

/// KerberosString (GeneralString; UTF8String and IA5String accepted too).
fn string(content: &[u8]) -> Option<&[u8]> {
    let (t, _) = tlv(content, false).ok()?;
    let ok = matches!(t.tag, TAG_GENERAL_STRING | TAG_UTF8_STRING | TAG_IA5_STRING);
    Some(t.value).filter(|v| ok && v.len() <= MAX_STRING_LEN)
}

/// Iterator over the complete TLVs of a SEQUENCE OF body, at most `left` of them.
#[derive(Debug, Clone)]
struct Items<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        self.left = self.left.checked_sub(1)?;
        let (t, next) = tlv(self.rest, false).ok()?;
        self.rest = next;
        Some(t)
    }
}

/// Walks the context-tagged fields of a SEQUENCE body, calling `f(number, field)`.
/// `cut`: the body itself was cut at the end of the payload, so its last field may be
/// too. Stops at [`MAX_FIELDS`] or at a TLV that cannot be read; skips non-context TLVs.
fn fields<'a>(body: &'a [u8], cut: bool, events: &mut Events, mut f: impl FnMut(u8, Tlv<'a>)) {
    let mut rest = body;
    for _ in 0..MAX_FIELDS {
        if rest.is_empty() {
            return;
        }
        let (t, next) = match tlv(rest, cut) {
            Ok(x) => x,
            Err(Error::Truncated) if cut => return,
            Err(_) => {
                events.insert(Events::BAD_FIELD);
                return;
            }
        };
        if t.tag & CLASS_MASK == CONTEXT {
            f(t.tag & 0x1f, t);
        } else {
            events.insert(Events::BAD_FIELD);
        }
        rest = next;
    }
    if !rest.is_empty() {
        events.insert(Events::FIELD_CAP);
    }
}

/// Records a field that did not decode, unless it was cut by the end of the payload.
fn check<T>(v: Option<T>, field: &Tlv<'_>, events: &mut Events) -> Option<T> {
    if v.is_none() && !field.cut {
        events.insert(Events::BAD_FIELD);
    }
    v
}

/// A PrincipalName: name-type and its name-string components, validated at parse time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrincipalName<'a> {
    /// name-type (1 NT-PRINCIPAL, 2 NT-SRV-INST, 3 NT-SRV-HST, 10 NT-ENTERPRISE, ...).
    pub name_type: i32,
    /// Body of the name-string SEQUENCE OF.
    strings: &'a [u8],
    count: usize,
}

impl<'a> PrincipalName<'a> {
    /// Decodes `SEQUENCE { [0] name-type, [1] SEQUENCE OF KerberosString }`.
    fn decode(content: &'a [u8], events: &mut Events) -> Option<Self> {
        let body = inner(content, TAG_SEQUENCE)?;
        let (mut name_type, mut strings) = (None, None);
        let mut bad = Events::default();
        fields(body, false, &mut bad, |n, t| match n {
            0 => name_type = name_type.or(int32(t.value)),
            1 => strings = strings.or(inner(t.value, TAG_SEQUENCE)),
            _ => {}
        });
        let (name_type, strings) = (name_type?, strings?);
        let mut count = 0;
        let mut rest = strings;
        while !rest.is_empty() {
            if count == MAX_COMPONENTS {
                events.insert(Events::COMPONENT_CAP);
                return None;
            }
            let (_, next) = tlv(rest, false).ok()?;
            string(rest)?;
            count += 1;
            rest = next;
        }
        Some(PrincipalName {
            name_type,
            strings,
            count,
        })
    }

    /// Number of name components (at most [`MAX_COMPONENTS`]).
    pub fn component_count(&self) -> usize {
        self.count
    }

    /// The name components as sent (`["krbtgt", "EXAMPLE.COM"]`), without copying.
    pub fn components(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        Items {
            rest: self.strings,
            left: self.count,
        }
        .map(|t| t.value)
    }
}

/// A principal with its realm, borrowed. `Display` writes the usual text form:
/// components joined by `/`, then `@realm`; `/`, `@` and `\` inside a component or
/// realm are escaped with `\`, bytes outside `0x20..=0x7E` as `\xNN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal<'a> {
    /// Name type and components.
    pub name: PrincipalName<'a>,
    /// Realm as sent.
    pub realm: &'a [u8],
}

fn write_escaped(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for &b in bytes {
        match b {
            b'/' | b'@' | b'\\' => write!(f, "\\{}", char::from(b))?,
            0x20..=0x7e => write!(f, "{}", char::from(b))?,
            _ => write!(f, "\\x{b:02x}")?,
        }
    }
    Ok(())
}

impl fmt::Display for Principal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.name.components().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write_escaped(f, c)?;
        }
        f.write_str("@")?;
        write_escaped(f, self.realm)
    }
}

/// One PA-DATA entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaData<'a> {
    /// padata-type (2 PA-ENC-TIMESTAMP, 1 PA-TGS-REQ, 19 PA-ETYPE-INFO2, 128 PA-PAC-REQUEST,
    /// 136 PA-FX-FAST, ...).
    pub kind: i32,
    /// padata-value, raw.
    pub value: &'a [u8],
}

/// PA-DATA ::= SEQUENCE { [1] padata-type Int32, [2] padata-value OCTET STRING }.
fn pa_data<'a>(t: &Tlv<'a>) -> Option<PaData<'a>> {
    if t.tag != TAG_SEQUENCE {
        return None;
    }
    let (mut kind, mut value) = (None, None);
    let mut bad = Events::default();
    fields(t.value, false, &mut bad, |n, f| match n {
        1 => kind = kind.or(int32(f.value)),
        2 => value = value.or(inner(f.value, TAG_OCTET_STRING)),
        _ => {}
    });
    Some(PaData {
        kind: kind?,
        value: value?,
    })
}

/// An INTEGER element of a SEQUENCE OF Int32.
fn int_item(t: &Tlv<'_>) -> Option<i32> {
    if t.tag != TAG_INTEGER || t.value.is_empty() || t.value.len() > 4 {
        return None;
    }
    let first = *t.value.first()?;
    let init: i32 = if first & 0x80 != 0 { -1 } else { 0 };
    Some(
        t.value
            .iter()
            .fold(init, |acc, &b| (acc << 8) | i32::from(b)),
    )
}

/// A validated SEQUENCE OF body and how many of its items are returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct List<'a> {
    body: &'a [u8],
    count: usize,
}

impl<'a> List<'a> {
    /// Validates every item (up to [`MAX_LIST`]) of the SEQUENCE OF in `content`.
    fn decode<T>(
        content: &'a [u8],
        events: &mut Events,
        item: fn(&Tlv<'a>) -> Option<T>,
    ) -> Option<Self> {
        let body = inner(content, TAG_SEQUENCE)?;
        let mut count = 0;
        let mut rest = body;
        while !rest.is_empty() {
            if count == MAX_LIST {
                events.insert(Events::LIST_CAP);
                break;
            }
            let (t, next) = tlv(rest, false).ok()?;
            item(&t)?;
            count += 1;
            rest = next;
        }
        Some(List { body, count })
    }

    fn items(&self) -> Items<'a> {
        Items {
            rest: self.body,
            left: self.count,
        }
    }
}

/// A decoded Kerberos message, borrowed from the payload. Fields are `None` when absent
/// from this message type, absent from the message, cut off ([`Events::PARTIAL`]) or
/// undecodable ([`Events::BAD_FIELD`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// From the application tag.
    pub msg_type: MsgType,
    /// Client name: req-body cname (AS-REQ; TGS-REQ only in rare cases), the reply's
    /// cname, or the KRB-ERROR cname.
    pub cname: Option<PrincipalName<'a>>,
    /// Client realm of a reply or KRB-ERROR (`crealm`).
    pub crealm: Option<&'a [u8]>,
    /// Server realm: req-body realm (in an AS-REQ also the client's realm), the reply
    /// ticket's realm, or the KRB-ERROR realm.
    pub realm: Option<&'a [u8]>,
    /// Server name: req-body sname, the reply ticket's sname, or the KRB-ERROR sname.
    pub sname: Option<PrincipalName<'a>>,
    /// KRB-ERROR error-code.
    pub error_code: Option<ErrorCode>,
    /// KRB-ERROR e-text.
    pub e_text: Option<&'a [u8]>,
    padata: Option<List<'a>>,
    etypes: Option<List<'a>>,
    /// What was odd or missing.
    pub events: Events,
}

impl<'a> Message<'a> {
    /// The client principal with its realm, e.g. `alice@EXAMPLE.COM`: cname with the
    /// req-body realm for an AS-REQ (and a TGS-REQ that carries a cname), cname with
    /// crealm for a reply or KRB-ERROR. `None` when either part is missing (a TGS-REQ
    /// names its client only inside the encrypted authenticator).
    pub fn client_principal(&self) -> Option<Principal<'a>> {
        let realm = match self.msg_type {
            MsgType::AsReq | MsgType::TgsReq => self.realm,
            _ => self.crealm,
        };
        Some(Principal {
            name: self.cname?,
            realm: realm?,
        })
    }

    /// The server principal (`krbtgt/EXAMPLE.COM@EXAMPLE.COM`,
    /// `host/files.example.com@EXAMPLE.COM`): sname with the server realm.
    pub fn server_principal(&self) -> Option<Principal<'a>> {
        Some(Principal {
            name: self.sname?,
            realm: self.realm?,
        })
    }

    /// PA-DATA of a request or reply, in order (at most [`MAX_LIST`]). A request with
    /// type 2 (PA-ENC-TIMESTAMP) is a password attempt.
    pub fn padata(&self) -> impl Iterator<Item = PaData<'a>> + use<'a> {
        self.padata
            .into_iter()
            .flat_map(|l| l.items())
            .filter_map(|t| pa_data(&t))
    }

    /// Encryption types a request asks for, in preference order (at most [`MAX_LIST`];
    /// 23 = RC4-HMAC, 17/18 = AES).
    pub fn etypes(&self) -> impl Iterator<Item = i32> + use<'a> {
        self.etypes
            .into_iter()
            .flat_map(|l| l.items())
            .filter_map(|t| int_item(&t))
    }
}

/// Message under construction: the field walkers fill it in.
struct Decoder<'a> {
    m: Message<'a>,
    pvno: Option<i32>,
    msg_type: Option<i32>,
}

impl<'a> Decoder<'a> {
    fn principal(&mut self, t: &Tlv<'a>) -> Option<PrincipalName<'a>> {
        let p = PrincipalName::decode(t.value, &mut self.m.events);
        check(p, t, &mut self.m.events)
    }

    fn string(&mut self, t: &Tlv<'a>) -> Option<&'a [u8]> {
        check(string(t.value), t, &mut self.m.events)
    }

    fn int(&mut self, t: &Tlv<'a>) -> Option<i32> {
        check(int32(t.value), t, &mut self.m.events)
    }

    /// KDC-REQ: [1] pvno, [2] msg-type, [3] padata, [4] req-body.
    fn kdc_req(&mut self, n: u8, t: Tlv<'a>) {
        match n {
            1 => self.pvno = self.pvno.or(self.int(&t)),
            2 => self.msg_type = self.msg_type.or(self.int(&t)),
            3 => self.padata(&t),
            4 => {
                let seq = tlv(t.value, t.cut)
                    .ok()
                    .filter(|(seq, _)| seq.tag == TAG_SEQUENCE);
                let Some((seq, _)) = seq else {
                    check::<()>(None, &t, &mut self.m.events);
                    return;
                };
                let mut events = self.m.events;
                fields(seq.value, seq.cut, &mut events, |n, t| self.req_body(n, t));
                self.m.events.insert(events);
            }
            _ => {}
        }
    }

    /// KDC-REQ-BODY: [1] cname, [2] realm, [3] sname, [8] etype.
    fn req_body(&mut self, n: u8, t: Tlv<'a>) {
        match n {
            1 => self.m.cname = self.m.cname.or(self.principal(&t)),
            2 => self.m.realm = self.m.realm.or(self.string(&t)),
            3 => self.m.sname = self.m.sname.or(self.principal(&t)),
            8 => {
                let l = List::decode(t.value, &mut self.m.events, int_item);
                let l = check(l, &t, &mut self.m.events);
                self.m.etypes = self.m.etypes.or(l);
            }
            _ => {}
        }
    }

    fn padata(&mut self, t: &Tlv<'a>) {
        let l = List::decode(t.value, &mut self.m.events, pa_data);
        let l = check(l, t, &mut self.m.events);
        self.m.padata = self.m.padata.or(l);
    }

    /// KDC-REP: [0] pvno, [1] msg-type, [2] padata, [3] crealm, [4] cname, [5] ticket.
    fn kdc_rep(&mut self, n: u8, t: Tlv<'a>) {
        match n {
            0 => self.pvno = self.pvno.or(self.int(&t)),
            1 => self.msg_type = self.msg_type.or(self.int(&t)),
            2 => self.padata(&t),
            3 => self.m.crealm = self.m.crealm.or(self.string(&t)),
            4 => self.m.cname = self.m.cname.or(self.principal(&t)),
            5 => self.ticket(&t),
            _ => {}
        }
    }

    /// Ticket ::= [APPLICATION 1] SEQUENCE { [0] tkt-vno, [1] realm, [2] sname, ... }.
    fn ticket(&mut self, t: &Tlv<'a>) {
        let seq = tlv(t.value, t.cut)
            .ok()
            .filter(|(app, _)| app.tag == APPLICATION | APP_TICKET)
            .and_then(|(app, _)| tlv(app.value, app.cut).ok())
            .filter(|(seq, _)| seq.tag == TAG_SEQUENCE);
        let Some((seq, _)) = seq else {
            check::<()>(None, t, &mut self.m.events);
            return;
        };
        let mut events = self.m.events;
        fields(seq.value, seq.cut, &mut events, |n, t| match n {
            1 => self.m.realm = self.m.realm.or(self.string(&t)),
            2 => self.m.sname = self.m.sname.or(self.principal(&t)),
            _ => {}
        });
        self.m.events.insert(events);
    }

    /// KRB-ERROR: [0] pvno, [1] msg-type, [6] error-code, [7] crealm, [8] cname,
    /// [9] realm, [10] sname, [11] e-text.
    fn krb_error(&mut self, n: u8, t: Tlv<'a>) {
        match n {
            0 => self.pvno = self.pvno.or(self.int(&t)),
            1 => self.msg_type = self.msg_type.or(self.int(&t)),
            6 => self.m.error_code = self.m.error_code.or(self.int(&t).map(ErrorCode)),
            7 => self.m.crealm = self.m.crealm.or(self.string(&t)),
            8 => self.m.cname = self.m.cname.or(self.principal(&t)),
            9 => self.m.realm = self.m.realm.or(self.string(&t)),
            10 => self.m.sname = self.m.sname.or(self.principal(&t)),
            11 => self.m.e_text = self.m.e_text.or(self.string(&t)),
            _ => {}
        }
    }

    /// Other messages (AP-REQ, KRB-SAFE, ...): [0] pvno, [1] msg-type.
    fn other(&mut self, n: u8, t: Tlv<'a>) {
        match n {
            0 => self.pvno = self.pvno.or(self.int(&t)),
            1 => self.msg_type = self.msg_type.or(self.int(&t)),
            _ => {}
        }
    }
}

/// Removes the TCP length prefix; returns the message bytes and whether the message
/// continues past the payload.
fn unframe(payload: &[u8]) -> Result<(&[u8], bool), Error> {
    let (prefix, rest) = payload.split_at_checked(4).ok_or(Error::Truncated)?;
    let len = u32::from_be_bytes(prefix.try_into().map_err(|_| Error::Truncated)?);
    let len = usize::try_from(len).map_err(|_| Error::BadFrame)?;
    if len == 0 || len > MAX_MESSAGE_LEN {
        return Err(Error::BadFrame);
    }
    Ok(match rest.get(..len) {
        Some(msg) => (msg, false),
        None => (rest, true),
    })
}

/// Decodes one Kerberos message: AS-REQ / TGS-REQ, AS-REP / TGS-REP, KRB-ERROR (any
/// other type: msg-type only). With `tcp`, `payload` starts with the 4-byte length
/// prefix. `Err` only for bad framing, outer tags or pvno; see the module docs.
pub fn parse(payload: &[u8], tcp: bool) -> Result<Message<'_>, Error> {
    let (msg, mut partial) = if tcp {
        unframe(payload)?
    } else {
        (payload, false)
    };
    // A value may be cut only where everything around it is: at the end of the payload
    // (a TCP segment boundary, or a capture cut by snaplen).
    let (app, _) = tlv(msg, true)?;
    if app.tag & CLASS_MASK != APPLICATION {
        return Err(Error::NotKerberos);
    }
    let (seq, _) = tlv(app.value, app.cut)?;
    if seq.tag != TAG_SEQUENCE {
        return Err(Error::NotKerberos);
    }
    partial |= app.cut || seq.cut;
    let msg_type = MsgType::from(app.tag & 0x1f);
    let mut d = Decoder {
        m: Message {
            msg_type,
            cname: None,
            crealm: None,
            realm: None,
            sname: None,
            error_code: None,
            e_text: None,
            padata: None,
            etypes: None,
            events: Events::default(),
        },
        pvno: None,
        msg_type: None,
    };
    let mut events = Events::default();
    fields(seq.value, seq.cut, &mut events, |n, t| match msg_type {
        MsgType::AsReq | MsgType::TgsReq => d.kdc_req(n, t),
        MsgType::AsRep | MsgType::TgsRep => d.kdc_rep(n, t),
        MsgType::Error => d.krb_error(n, t),
        _ => d.other(n, t),
    });
    if d.pvno != Some(5) {
        return Err(Error::NotKerberos);
    }
    let mut m = d.m;
    m.events.insert(events);
    if partial {
        m.events.insert(Events::PARTIAL);
    }
    if d.msg_type.is_some_and(|t| t != i32::from(msg_type.value())) {
        m.events.insert(Events::MSG_TYPE_MISMATCH);
    }
    Ok(m)
}

/// Fuzz entry point: parses `data` as UDP and as TCP and reads every field and
/// accessor. Never panics.
pub fn fuzz_krb5(data: &[u8]) {
    use std::hint::black_box;
    for tcp in [false, true] {
        match parse(data, tcp) {
            Ok(m) => {
                black_box(&m);
                black_box((m.msg_type.name(), m.msg_type.value()));
                black_box(m.error_code.map(ErrorCode::name));
                for p in [m.client_principal(), m.server_principal()]
                    .into_iter()
                    .flatten()
                {
                    black_box(p.to_string());
                    black_box(p.name.component_count());
                }
                for name in [m.cname, m.sname].into_iter().flatten() {
                    for c in name.components() {
                        black_box(c);
                    }
                }
                for pa in m.padata() {
                    black_box(pa);
                }
                for e in m.etypes() {
                    black_box(e);
                }
                for reason in m.events.reasons() {
                    black_box(reason);
                }
            }
            Err(e) => {
                black_box((e.reason(), e.to_string()));
            }
        }
    }
}

#[cfg(test)]
#[path = "krb5_tests.rs"]
mod tests;
