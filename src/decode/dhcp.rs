//! DHCPv4 / BOOTP decoder (RFC 2131, RFC 2132): one UDP payload (ports 67/68) in, a
//! borrowed [`Message`] view out. Its job is device identity: which MAC holds which IPv4
//! address under which hostname ([`Message::binding`]), plus the fingerprinting fields
//! (vendor class, parameter request list, client identifier).
//!
//! # Why hand-written
//!
//! The sensor needs the fixed header and ten options; a walker over `&[u8]` is about a
//! hundred lines, needs no dependency and never allocates, which no general DHCP crate
//! promises (they build owned option lists per packet).
//!
//! # Options
//!
//! * The magic cookie `99.130.83.99` is required: a payload without it (plain BOOTP, or
//!   not DHCP at all) is [`Error::BadCookie`].
//! * Pad (0) is skipped; End (255) ends an area. An area that ends without End is
//!   accepted ([`Events::NO_END`]).
//! * Option overload (52) is honoured: after the options field, `file` and then `sname`
//!   are walked as option areas (RFC 2131 §4.1). Overload inside those areas is ignored.
//! * An option whose length runs past the end of its area is dropped and ends the walk
//!   of that area ([`Events::TRUNCATED`]); every option before it is kept.
//! * A decoded option with a length invalid for its type (e.g. a requested IP of 3
//!   bytes) is ignored ([`Events::BAD_OPTION`]); the walk goes on.
//! * A repeated option keeps its first instance ([`Events::REPEATED_OPTION`]). RFC 3396
//!   concatenation of split long options is not done: it would need a copy.
//! * Hostname (12) loses trailing NUL bytes, which some clients append.
//!
//! # Limits
//!
//! At most [`MAX_OPTIONS`] non-pad options are read per message, over all areas; the
//! rest are ignored ([`Events::OPTION_CAP`]). An FQDN (81) in DNS wire form may have at
//! most [`MAX_FQDN_LABELS`] labels.
//!
//! # Guarantees
//!
//! * No panics: the length is checked once in [`parse`] and every read afterwards is a
//!   checked `get`/`split_at_checked`; no `unwrap`, no indexing, no `unsafe`.
//! * Bounded work: each option step consumes at least one byte, pads included, and at
//!   most [`MAX_OPTIONS`] options are decoded, so work is linear in the payload size.
//! * No allocation: [`Message`] borrows the payload; [`Fqdn::labels`] iterates in place.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::fmt;
use std::net::Ipv4Addr;

/// Length of the fixed BOOTP header (op .. file).
pub const FIXED_LEN: usize = 236;
/// Fixed header plus the magic cookie: the shortest DHCP message accepted.
pub const MIN_LEN: usize = FIXED_LEN + 4;
/// Most non-pad options read from one message, all areas together.
pub const MAX_OPTIONS: usize = 255;
/// Most labels accepted in a wire-form client FQDN (a 255-byte name has at most 127).
pub const MAX_FQDN_LABELS: usize = 128;

const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;

const OPT_PAD: u8 = 0;
const OPT_HOSTNAME: u8 = 12;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_LEASE_TIME: u8 = 51;
const OPT_OVERLOAD: u8 = 52;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAM_REQUEST_LIST: u8 = 55;
const OPT_VENDOR_CLASS: u8 = 60;
const OPT_CLIENT_ID: u8 = 61;
const OPT_CLIENT_FQDN: u8 = 81;
const OPT_END: u8 = 255;

/// Why a payload is not a DHCP message at all. Small and `Copy`: count it by
/// [`Error::reason`], do not bubble it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than [`MIN_LEN`] (fixed header + magic cookie).
    Truncated,
    /// The magic cookie is missing: plain BOOTP or not DHCP.
    BadCookie,
}

impl Error {
    /// Short snake_case reason for stats counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadCookie => "bad_cookie",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "payload shorter than the 240-byte DHCP header",
            Error::BadCookie => "DHCP magic cookie missing",
        })
    }
}

impl std::error::Error for Error {}

/// Anomalies met while walking the options (an open bit set; the message is still
/// usable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events(u8);

super::event_set_methods!(Events);

impl Events {
    /// An option ran past the end of its area; it and the rest of the area were dropped.
    pub const TRUNCATED: Events = Events(1 << 0);
    /// A decoded option had a length (or value) invalid for its type and was ignored.
    pub const BAD_OPTION: Events = Events(1 << 1);
    /// A decoded option appeared more than once; the first instance was kept.
    pub const REPEATED_OPTION: Events = Events(1 << 2);
    /// More than [`MAX_OPTIONS`] options; the rest were ignored.
    pub const OPTION_CAP: Events = Events(1 << 3);
    /// An option area ended without the End option.
    pub const NO_END: Events = Events(1 << 4);

    const ALL: [(Events, &'static str); 5] = [
        (Events::TRUNCATED, "option_truncated"),
        (Events::BAD_OPTION, "bad_option"),
        (Events::REPEATED_OPTION, "repeated_option"),
        (Events::OPTION_CAP, "option_cap"),
        (Events::NO_END, "no_end_option"),
    ];
}

/// BOOTP `op` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// 1: client to server.
    Request,
    /// 2: server to client.
    Reply,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for Op {
    fn from(v: u8) -> Op {
        match v {
            1 => Op::Request,
            2 => Op::Reply,
            n => Op::Unknown(n),
        }
    }
}

/// DHCP message type (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 1
    Discover,
    /// 2
    Offer,
    /// 3
    Request,
    /// 4
    Decline,
    /// 5
    Ack,
    /// 6
    Nak,
    /// 7
    Release,
    /// 8
    Inform,
    /// 9 (RFC 3203)
    ForceRenew,
    /// Any other value (lease query types, ...).
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> MessageType {
        match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            9 => MessageType::ForceRenew,
            n => MessageType::Unknown(n),
        }
    }
}

impl MessageType {
    /// The wire value (option 53).
    pub fn value(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::ForceRenew => 9,
            MessageType::Unknown(n) => n,
        }
    }

    /// Lower-case name as written in EVE `dhcp_type` ("unknown" for other values).
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Discover => "discover",
            MessageType::Offer => "offer",
            MessageType::Request => "request",
            MessageType::Decline => "decline",
            MessageType::Ack => "ack",
            MessageType::Nak => "nak",
            MessageType::Release => "release",
            MessageType::Inform => "inform",
            MessageType::ForceRenew => "forcerenew",
            MessageType::Unknown(_) => "unknown",
        }
    }
}

/// Client FQDN option (81, RFC 4702), validated at parse time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fqdn<'a> {
    /// Flags octet: S 0x01, O 0x02, E 0x04 (name in DNS wire form), N 0x08.
    pub flags: u8,
    /// The domain name field as sent: dotted ASCII, or DNS labels when
    /// [`Fqdn::encoded`]. May be empty or a partial name.
    pub name: &'a [u8],
}

impl<'a> Fqdn<'a> {
    /// The E flag: the name is in DNS wire form (length-prefixed labels).
    pub fn encoded(&self) -> bool {
        self.flags & 0x04 != 0
    }

    /// The name's labels, without dots or length octets, whichever the encoding.
    /// Allocates nothing; at most [`MAX_FQDN_LABELS`] labels.
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            rest: self.name,
            encoded: self.encoded(),
            left: MAX_FQDN_LABELS,
        }
    }
}

/// Iterator over the labels of a [`Fqdn`].
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    rest: &'a [u8],
    encoded: bool,
    left: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.left = self.left.checked_sub(1)?;
        if self.encoded {
            let (&len, tail) = self.rest.split_first()?;
            let Some((label, next)) = tail.split_at_checked(usize::from(len)).filter(|_| len > 0)
            else {
                self.rest = &[];
                return None;
            };
            self.rest = next;
            Some(label)
        } else {
            if self.rest.is_empty() {
                return None;
            }
            let (label, next) = match self.rest.iter().position(|&b| b == b'.') {
                Some(dot) => (
                    self.rest.get(..dot).unwrap_or_default(),
                    self.rest.get(dot + 1..).unwrap_or_default(),
                ),
                None => (self.rest, &[][..]),
            };
            self.rest = next;
            // "a.b." ends with an empty label: that is the root, not a label.
            if label.is_empty() && next.is_empty() {
                return None;
            }
            Some(label)
        }
    }
}

/// Checks a wire-form FQDN: labels of 0..=63 bytes inside the slice, at most
/// [`MAX_FQDN_LABELS`], optionally ended by the root octet (a partial name is allowed).
fn wire_name_ok(name: &[u8]) -> bool {
    let mut rest = name;
    for _ in 0..MAX_FQDN_LABELS {
        let Some((&len, tail)) = rest.split_first() else {
            return true;
        };
        if len == 0 {
            return tail.is_empty();
        }
        if len > 63 {
            return false;
        }
        match tail.split_at_checked(usize::from(len)) {
            Some((_, next)) => rest = next,
            None => return false,
        }
    }
    rest.is_empty()
}

/// What [`Message::binding`] returns: the client's IPv4 address, its MAC, and the
/// hostname (option 12) when this message carries one.
pub type Binding<'a> = (Ipv4Addr, [u8; 6], Option<&'a [u8]>);

/// A DHCP message, borrowed from the payload. Option fields are `None` when the option
/// is absent or was ignored (see [`Message::events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// BOOTP op.
    pub op: Op,
    /// Hardware address type (1 = Ethernet).
    pub htype: u8,
    /// Hardware address length as sent.
    pub hlen: u8,
    /// Relay hops.
    pub hops: u8,
    /// Transaction id.
    pub xid: u32,
    /// Seconds since the client began acquisition.
    pub secs: u16,
    /// Flags (0x8000 = broadcast).
    pub flags: u16,
    /// Client address (set when the client already holds one: renew, rebind, inform).
    pub ciaddr: Ipv4Addr,
    /// "Your" address: the address the server assigns.
    pub yiaddr: Ipv4Addr,
    /// Next server address.
    pub siaddr: Ipv4Addr,
    /// Relay agent address.
    pub giaddr: Ipv4Addr,
    /// Client hardware address: the first `min(hlen, 16)` bytes of `chaddr`.
    pub chaddr: &'a [u8],
    /// Option 53.
    pub message_type: Option<MessageType>,
    /// Option 12, trailing NULs removed; never empty.
    pub hostname: Option<&'a [u8]>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 51, seconds (`u32::MAX` = infinite).
    pub lease_time: Option<u32>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 55, raw option codes in the client's order (a fingerprinting input).
    pub param_request_list: Option<&'a [u8]>,
    /// Option 60, raw.
    pub vendor_class: Option<&'a [u8]>,
    /// Option 61, raw (type octet first).
    pub client_id: Option<&'a [u8]>,
    /// Option 81.
    pub client_fqdn: Option<Fqdn<'a>>,
    /// Option 52 value (1 file, 2 sname, 3 both) when valid and honoured.
    pub overload: Option<u8>,
    /// Non-pad options read, all areas together (at most [`MAX_OPTIONS`]).
    pub option_count: u16,
    /// What was odd while walking the options.
    pub events: Events,
}

impl<'a> Message<'a> {
    /// The client MAC, when `htype` is Ethernet (1) and `hlen` is 6.
    pub fn mac(&self) -> Option<[u8; 6]> {
        if self.htype != 1 || self.hlen != 6 {
            return None;
        }
        self.chaddr.try_into().ok()
    }

    /// The address the client holds after this message, with its MAC and hostname, for
    /// the caller to bind IP <-> MAC <-> hostname:
    ///
    /// * ACK: `yiaddr` (or `ciaddr` when `yiaddr` is 0, the answer to an INFORM);
    /// * REQUEST: the requested IP (option 50), else `ciaddr` (renew / rebind). This is
    ///   the client's claim; the server's ACK confirms it;
    /// * INFORM: `ciaddr` (a client with a static address).
    ///
    /// `None` for every other type (DISCOVER, OFFER, NAK, RELEASE, DECLINE: the client
    /// holds nothing afterwards), without an Ethernet MAC, or when the address is
    /// unspecified, broadcast or multicast. The hostname is option 12 of *this*
    /// message; servers often omit it in the ACK.
    pub fn binding(&self) -> Option<Binding<'a>> {
        let mac = self.mac()?;
        let ip = match self.message_type? {
            MessageType::Ack if self.yiaddr.is_unspecified() => self.ciaddr,
            MessageType::Ack => self.yiaddr,
            MessageType::Request => self
                .requested_ip
                .filter(|ip| !ip.is_unspecified())
                .unwrap_or(self.ciaddr),
            MessageType::Inform => self.ciaddr,
            _ => return None,
        };
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || mac == [0; 6] {
            return None;
        }
        Some((ip, mac, self.hostname))
    }
}

fn ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let a: [u8; 4] = b.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

/// Option walk state across areas.
struct Walk {
    count: usize,
    /// Bit per decoded option (index in `DECODED`) already seen.
    seen: u16,
}

const DECODED: [u8; 10] = [
    OPT_HOSTNAME,
    OPT_REQUESTED_IP,
    OPT_LEASE_TIME,
    OPT_OVERLOAD,
    OPT_MESSAGE_TYPE,
    OPT_SERVER_ID,
    OPT_PARAM_REQUEST_LIST,
    OPT_VENDOR_CLASS,
    OPT_CLIENT_ID,
    OPT_CLIENT_FQDN,
];

impl Walk {
    /// Walks one option area. `main` is the options field (the only place where
    /// overload counts).
    fn area<'a>(&mut self, area: &'a [u8], main: bool, m: &mut Message<'a>) {
        let mut rest = area;
        // Each step consumes at least one byte; non-pad options are capped.
        while let Some((&code, tail)) = rest.split_first() {
            match code {
                OPT_PAD => {
                    rest = tail;
                    continue;
                }
                OPT_END => return,
                _ => {}
            }
            if self.count >= MAX_OPTIONS {
                m.events.insert(Events::OPTION_CAP);
                return;
            }
            self.count += 1;
            let Some((value, next)) = tail
                .split_first()
                .and_then(|(&len, v)| v.split_at_checked(usize::from(len)))
            else {
                m.events.insert(Events::TRUNCATED);
                return;
            };
            self.option(code, value, main, m);
            rest = next;
        }
        m.events.insert(Events::NO_END);
    }

    fn option<'a>(&mut self, code: u8, v: &'a [u8], main: bool, m: &mut Message<'a>) {
        let Some(bit) = DECODED.iter().position(|&c| c == code) else {
            return;
        };
        if code == OPT_OVERLOAD && !main {
            return;
        }
        let bit = 1u16 << bit;
        if self.seen & bit != 0 {
            m.events.insert(Events::REPEATED_OPTION);
            return;
        }
        self.seen |= bit;
        let ok = match code {
            OPT_HOSTNAME => {
                let end = v.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                m.hostname = v.get(..end).filter(|h| !h.is_empty());
                m.hostname.is_some()
            }
            OPT_REQUESTED_IP => {
                m.requested_ip = ipv4(v);
                m.requested_ip.is_some()
            }
            OPT_LEASE_TIME => {
                m.lease_time = be32(v);
                m.lease_time.is_some()
            }
            OPT_OVERLOAD => {
                m.overload = match v {
                    [n @ 1..=3] => Some(*n),
                    _ => None,
                };
                m.overload.is_some()
            }
            OPT_MESSAGE_TYPE => {
                m.message_type = match v {
                    [t] => Some(MessageType::from(*t)),
                    _ => None,
                };
                m.message_type.is_some()
            }
            OPT_SERVER_ID => {
                m.server_id = ipv4(v);
                m.server_id.is_some()
            }
            OPT_PARAM_REQUEST_LIST => {
                m.param_request_list = Some(v).filter(|v| !v.is_empty());
                m.param_request_list.is_some()
            }
            OPT_VENDOR_CLASS => {
                m.vendor_class = Some(v).filter(|v| !v.is_empty());
                m.vendor_class.is_some()
            }
            OPT_CLIENT_ID => {
                m.client_id = Some(v).filter(|v| !v.is_empty());
                m.client_id.is_some()
            }
            OPT_CLIENT_FQDN => {
                m.client_fqdn = match v {
                    [flags, _rcode1, _rcode2, name @ ..]
                        if flags & 0x04 == 0 || wire_name_ok(name) =>
                    {
                        Some(Fqdn {
                            flags: *flags,
                            name,
                        })
                    }
                    _ => None,
                };
                m.client_fqdn.is_some()
            }
            _ => true,
        };
        if !ok {
            m.events.insert(Events::BAD_OPTION);
        }
    }
}

/// Decodes one DHCP message from a UDP payload. `Err` only when the payload is shorter
/// than [`MIN_LEN`] or lacks the magic cookie; option problems are [`Events`].
pub fn parse(payload: &[u8]) -> Result<Message<'_>, Error> {
    let (Some(fixed), Some(cookie), Some(options)) = (
        payload.get(..FIXED_LEN),
        payload.get(FIXED_LEN..MIN_LEN),
        payload.get(MIN_LEN..),
    ) else {
        return Err(Error::Truncated);
    };
    if cookie != MAGIC_COOKIE {
        return Err(Error::BadCookie);
    }
    // `fixed` is exactly FIXED_LEN bytes: every read below is in range; the fallbacks
    // only satisfy the type checker.
    let byte = |at: usize| fixed.get(at).copied().unwrap_or(0);
    let word = |at: usize| fixed.get(at..at + 4).and_then(be32).unwrap_or(0);
    let addr = |at: usize| Ipv4Addr::from(word(at));
    let hlen = byte(2);
    let mut m = Message {
        op: Op::from(byte(0)),
        htype: byte(1),
        hlen,
        hops: byte(3),
        xid: word(4),
        secs: u16::from_be_bytes([byte(8), byte(9)]),
        flags: u16::from_be_bytes([byte(10), byte(11)]),
        ciaddr: addr(12),
        yiaddr: addr(16),
        siaddr: addr(20),
        giaddr: addr(24),
        chaddr: fixed
            .get(28..28 + usize::from(hlen.min(16)))
            .unwrap_or_default(),
        message_type: None,
        hostname: None,
        requested_ip: None,
        lease_time: None,
        server_id: None,
        param_request_list: None,
        vendor_class: None,
        client_id: None,
        client_fqdn: None,
        overload: None,
        option_count: 0,
        events: Events::default(),
    };
    let mut walk = Walk { count: 0, seen: 0 };
    walk.area(options, true, &mut m);
    if let Some(overload) = m.overload {
        if overload & 1 != 0 {
            walk.area(fixed.get(FILE).unwrap_or_default(), false, &mut m);
        }
        if overload & 2 != 0 {
            walk.area(fixed.get(SNAME).unwrap_or_default(), false, &mut m);
        }
    }
    m.option_count = u16::try_from(walk.count).unwrap_or(u16::MAX);
    Ok(m)
}

/// Fuzz entry point: parses `data` and reads every field and accessor. Never panics.
pub fn fuzz_dhcp(data: &[u8]) {
    use std::hint::black_box;
    match parse(data) {
        Ok(m) => {
            black_box(&m);
            black_box((m.mac(), m.binding()));
            black_box(m.message_type.map(|t| (t.name(), t.value())));
            if let Some(fqdn) = m.client_fqdn {
                black_box(fqdn.encoded());
                for label in fqdn.labels() {
                    black_box(label);
                }
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

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // UDP payloads recorded by record-bindings.sh (captures/dhcp.pcap): dnsmasq 2.89 as
    // server, busybox 1.35 udhcpc (frames 9, 10, 11, 13) and isc dhclient 4.4.3
    // (frames 16, 17) as clients.
    const REQUEST_UDHCPC: &str = concat!(
        "01010600d6dde403000300000000000000000000000000000000000002005e00002300000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000006382536335010332040a63004736040a630001390202403707010306",
        "0c0f1c2a0c07776b732d3032333c084d53465420352e303d070102005e0000235117010000776b732d303233",
        "2e636f72702e6578616d706c65ff",
    );
    const ACK_UDHCPC: &str = concat!(
        "02010600d6dde40300030000000000000a6300470a6300010000000002005e00002300000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000006382536335010536040a630001330400000e103a04000007083b0400",
        "000c4e0104ffffff001c040a6300ff03040a6300010c07776b732d303233510a01ffff776b732d303233ff",
    );
    const RENEW_UDHCPC: &str = concat!(
        "01010600d6dde403000000000a63004700000000000000000000000002005e00002300000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000638253633501033902024037070103060c0f1c2a0c07776b732d3032",
        "333c084d53465420352e303d070102005e0000235117010000776b732d3032332e636f72702e6578616d706c",
        "65ff",
    );
    const RELEASE_UDHCPC: &str = concat!(
        "01010600c79d6e39000100000a63004700000000000000000000000002005e00002300000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000006382536335010736040a6300013d070102005e000023ff0000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000",
    );
    const REQUEST_DHCLIENT: &str = concat!(
        "01010600bb91c712000000000000000000000000000000000000000002005e00002400000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000006382536335010336040a63000132040a6300480c07776b732d303234",
        "511904000007776b732d30323404636f7270076578616d706c650037050103060f0c3c0b636f72702d6c6170",
        "746f70ff",
    );
    const ACK_DHCLIENT: &str = concat!(
        "02010600bb91c71200000000000000000a6300480a6300010000000002005e00002400000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000006382536335010536040a630001330400000e103a04000007083b0400",
        "000c4e0104ffffff001c040a6300ff03040a6300010c07776b732d303234510b07ffff07776b732d303234ff",
    );

    const MAC_23: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x23];
    const MAC_24: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x24];
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const IP_71: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 71);
    const IP_72: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 72);

    fn real() -> Vec<Vec<u8>> {
        [
            REQUEST_UDHCPC,
            ACK_UDHCPC,
            RENEW_UDHCPC,
            RELEASE_UDHCPC,
            REQUEST_DHCLIENT,
            ACK_DHCLIENT,
        ]
        .iter()
        .map(|h| unhex(h))
        .collect()
    }

    fn labels(f: Option<Fqdn<'_>>) -> Vec<&[u8]> {
        f.unwrap().labels().collect()
    }

    #[test]
    fn real_udhcpc_request_selecting() {
        let p = unhex(REQUEST_UDHCPC);
        let m = parse(&p).unwrap();
        assert_eq!(m.op, Op::Request);
        assert_eq!(m.xid, 0xd6dd_e403);
        assert_eq!(m.message_type, Some(MessageType::Request));
        assert_eq!(m.mac(), Some(MAC_23));
        assert_eq!(m.hostname, Some(&b"wks-023"[..]));
        assert_eq!(m.requested_ip, Some(IP_71));
        assert_eq!(m.server_id, Some(SERVER));
        assert_eq!(m.ciaddr, Ipv4Addr::UNSPECIFIED);
        assert_eq!(m.vendor_class, Some(&b"MSFT 5.0"[..]));
        assert_eq!(m.client_id, Some(&[1, 2, 0, 0x5e, 0, 0, 0x23][..]));
        assert_eq!(m.param_request_list, Some(&[1, 3, 6, 12, 15, 28, 42][..]));
        let fqdn = m.client_fqdn.unwrap();
        assert!(!fqdn.encoded());
        assert_eq!(fqdn.name, b"wks-023.corp.example");
        assert_eq!(
            labels(m.client_fqdn),
            [&b"wks-023"[..], b"corp", b"example"]
        );
        assert_eq!(m.binding(), Some((IP_71, MAC_23, Some(&b"wks-023"[..]))));
        assert!(m.events.is_empty(), "{:?}", m.events);
    }

    #[test]
    fn real_dnsmasq_ack() {
        let p = unhex(ACK_UDHCPC);
        let m = parse(&p).unwrap();
        assert_eq!(m.op, Op::Reply);
        assert_eq!(m.message_type, Some(MessageType::Ack));
        assert_eq!(m.message_type.map(MessageType::name), Some("ack"));
        assert_eq!((m.yiaddr, m.siaddr), (IP_71, SERVER));
        assert_eq!(m.lease_time, Some(3600));
        assert_eq!(m.server_id, Some(SERVER));
        assert_eq!(m.hostname, Some(&b"wks-023"[..]));
        assert_eq!(m.binding(), Some((IP_71, MAC_23, Some(&b"wks-023"[..]))));
        assert!(m.events.is_empty());
    }

    #[test]
    fn real_renew_binds_ciaddr() {
        let p = unhex(RENEW_UDHCPC);
        let m = parse(&p).unwrap();
        assert_eq!(m.message_type, Some(MessageType::Request));
        assert_eq!((m.requested_ip, m.ciaddr), (None, IP_71));
        assert_eq!(m.binding(), Some((IP_71, MAC_23, Some(&b"wks-023"[..]))));
    }

    #[test]
    fn real_release_binds_nothing() {
        let p = unhex(RELEASE_UDHCPC);
        let m = parse(&p).unwrap();
        assert_eq!(m.message_type, Some(MessageType::Release));
        assert_eq!((m.ciaddr, m.mac()), (IP_71, Some(MAC_23)));
        assert_eq!(m.binding(), None);
    }

    #[test]
    fn real_dhclient_encoded_fqdn() {
        let p = unhex(REQUEST_DHCLIENT);
        let m = parse(&p).unwrap();
        assert_eq!(m.mac(), Some(MAC_24));
        assert_eq!(m.hostname, Some(&b"wks-024"[..]));
        assert_eq!(m.vendor_class, Some(&b"corp-laptop"[..]));
        assert_eq!(m.param_request_list, Some(&[1, 3, 6, 15, 12][..]));
        assert!(m.client_fqdn.unwrap().encoded());
        assert_eq!(
            labels(m.client_fqdn),
            [&b"wks-024"[..], b"corp", b"example"]
        );
        assert_eq!(m.binding(), Some((IP_72, MAC_24, Some(&b"wks-024"[..]))));

        // dnsmasq answers with a partial wire-form name (no root octet).
        let p = unhex(ACK_DHCLIENT);
        let m = parse(&p).unwrap();
        assert_eq!(labels(m.client_fqdn), [&b"wks-024"[..]]);
        assert_eq!(m.binding(), Some((IP_72, MAC_24, Some(&b"wks-024"[..]))));
    }

    /// A 240-byte Ethernet DHCP header (op 1, chaddr MAC_23) followed by `options`.
    fn msg(options: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; FIXED_LEN];
        v[..4].copy_from_slice(&[1, 1, 6, 0]);
        v[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
        v[28..34].copy_from_slice(&MAC_23);
        v.extend_from_slice(&MAGIC_COOKIE);
        v.extend_from_slice(options);
        v
    }

    #[test]
    fn header_errors() {
        assert_eq!(parse(&[]), Err(Error::Truncated));
        let m = msg(&[255]);
        assert_eq!(parse(&m[..MIN_LEN - 1]), Err(Error::Truncated));
        let mut bootp = m.clone();
        bootp[236] = 0;
        assert_eq!(parse(&bootp), Err(Error::BadCookie));
        assert_eq!(Error::BadCookie.reason(), "bad_cookie");
        // The bare header with no option at all is a message without a type.
        let m = parse(&m[..MIN_LEN]).unwrap();
        assert_eq!(m.message_type, None);
        assert!(m.events.contains(Events::NO_END));
        assert_eq!(m.binding(), None);
    }

    #[test]
    fn truncated_option_keeps_earlier_ones() {
        let p = msg(&[53, 1, 3, 50, 4, 10, 0, 0, 9, 12, 10, b'a', b'b']);
        let m = parse(&p).unwrap();
        assert_eq!(m.message_type, Some(MessageType::Request));
        assert_eq!(m.requested_ip, Some(Ipv4Addr::new(10, 0, 0, 9)));
        assert_eq!(m.hostname, None);
        assert!(m.events.contains(Events::TRUNCATED));
        assert_eq!(m.binding().map(|b| b.0), Some(Ipv4Addr::new(10, 0, 0, 9)));
        // A code byte with no length byte.
        let p = msg(&[53, 1, 5, 12]);
        let m = parse(&p).unwrap();
        assert_eq!(m.message_type, Some(MessageType::Ack));
        assert_eq!(m.events.reasons().collect::<Vec<_>>(), ["option_truncated"]);
    }

    #[test]
    fn bad_length_drops_only_that_option() {
        let p = msg(&[50, 3, 10, 0, 0, 53, 2, 3, 3, 12, 3, b'p', b'c', b'1', 255]);
        let m = parse(&p).unwrap();
        assert_eq!((m.requested_ip, m.message_type), (None, None));
        assert_eq!(m.hostname, Some(&b"pc1"[..]));
        assert_eq!(m.events.reasons().collect::<Vec<_>>(), ["bad_option"]);
    }

    #[test]
    fn zero_length_everything() {
        let mut opts = Vec::new();
        for code in DECODED {
            opts.extend_from_slice(&[code, 0]);
        }
        opts.push(255);
        let p = msg(&opts);
        let m = parse(&p).unwrap();
        assert_eq!(m.message_type, None);
        assert_eq!(m.hostname, None);
        assert_eq!(m.client_fqdn, None);
        assert_eq!(m.overload, None);
        assert_eq!(m.option_count, 10);
        assert!(m.events.contains(Events::BAD_OPTION));
    }

    #[test]
    fn repeated_option_keeps_first() {
        let p = msg(&[12, 2, b'p', b'1', 12, 2, b'p', b'2', 255]);
        let m = parse(&p).unwrap();
        assert_eq!(m.hostname, Some(&b"p1"[..]));
        assert!(m.events.contains(Events::REPEATED_OPTION));
    }

    #[test]
    fn hostname_trailing_nuls_trimmed() {
        let p = msg(&[12, 6, b'w', b's', b'1', 0, 0, 0, 255]);
        let m = parse(&p).unwrap();
        assert_eq!(m.hostname, Some(&b"ws1"[..]));
        let p = msg(&[12, 2, 0, 0, 255]);
        let m = parse(&p).unwrap();
        assert_eq!(m.hostname, None);
        assert!(m.events.contains(Events::BAD_OPTION));
    }

    #[test]
    fn overload_walks_file_then_sname() {
        let mut p = msg(&[53, 1, 3, 52, 1, 3, 255]);
        // file field (108..236): hostname, and an overload option that must be ignored.
        p[108..121].copy_from_slice(&[12, 4, b'h', b'o', b's', b't', 52, 1, 1, 255, 0, 0, 0]);
        // sname field (44..108): vendor class.
        p[44..51].copy_from_slice(&[60, 4, b'v', b'e', b'n', b'd', 255]);
        let m = parse(&p).unwrap();
        assert_eq!(m.overload, Some(3));
        assert_eq!(m.hostname, Some(&b"host"[..]));
        assert_eq!(m.vendor_class, Some(&b"vend"[..]));
        assert!(m.events.is_empty(), "{:?}", m.events);
        // Without the overload option, the same bytes are just sname/file.
        p[243..246].copy_from_slice(&[0, 0, 0]);
        let m = parse(&p).unwrap();
        assert_eq!((m.hostname, m.vendor_class), (None, None));
    }

    #[test]
    fn option_cap() {
        let mut opts = Vec::new();
        for _ in 0..MAX_OPTIONS + 5 {
            opts.extend_from_slice(&[200, 0]);
        }
        opts.extend_from_slice(&[12, 1, b'x', 255]);
        let p = msg(&opts);
        let m = parse(&p).unwrap();
        assert_eq!(usize::from(m.option_count), MAX_OPTIONS);
        assert_eq!(m.hostname, None);
        assert!(m.events.contains(Events::OPTION_CAP));
    }

    #[test]
    fn unknown_message_type_is_kept() {
        let p = msg(&[53, 1, 42, 255]);
        let m = parse(&p).unwrap();
        assert_eq!(m.message_type, Some(MessageType::Unknown(42)));
        assert_eq!(m.message_type.map(MessageType::name), Some("unknown"));
        assert_eq!(m.message_type.map(MessageType::value), Some(42));
        assert_eq!(m.binding(), None);
    }

    #[test]
    fn binding_rules() {
        let ip = Ipv4Addr::new(192, 168, 1, 20);
        let with = |opts: &[u8], ciaddr: Ipv4Addr, yiaddr: Ipv4Addr| {
            let mut p = msg(opts);
            p[12..16].copy_from_slice(&ciaddr.octets());
            p[16..20].copy_from_slice(&yiaddr.octets());
            p
        };
        let none = Ipv4Addr::UNSPECIFIED;
        // INFORM: the client's static address.
        let p = with(&[53, 1, 8, 255], ip, none);
        assert_eq!(parse(&p).unwrap().binding(), Some((ip, MAC_23, None)));
        // ACK to an INFORM: yiaddr 0, ciaddr set.
        let p = with(&[53, 1, 5, 255], ip, none);
        assert_eq!(parse(&p).unwrap().binding().map(|b| b.0), Some(ip));
        // OFFER, DISCOVER, NAK, DECLINE: nothing held.
        for t in [1, 2, 4, 6] {
            let p = with(&[53, 1, t, 255], ip, ip);
            assert_eq!(parse(&p).unwrap().binding(), None, "type {t}");
        }
        // Unusable addresses.
        for bad in [Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 1), none] {
            let p = with(&[53, 1, 5, 255], none, bad);
            assert_eq!(parse(&p).unwrap().binding(), None, "{bad}");
        }
        // REQUEST with option 50 = 0.0.0.0 falls back to ciaddr.
        let p = with(&[53, 1, 3, 50, 4, 0, 0, 0, 0, 255], ip, none);
        assert_eq!(parse(&p).unwrap().binding().map(|b| b.0), Some(ip));
        // Not Ethernet: no MAC, no binding.
        let mut p = with(&[53, 1, 5, 255], none, ip);
        p[1] = 6;
        let m = parse(&p).unwrap();
        assert_eq!((m.mac(), m.binding()), (None, None));
        assert_eq!(m.chaddr, MAC_23);
    }

    #[test]
    fn fqdn_forms() {
        let p = msg(&[81, 7, 0, 0, 0, b'a', b'.', b'b', b'.', 255]);
        let m = parse(&p).unwrap();
        assert_eq!(labels(m.client_fqdn), [&b"a"[..], b"b"]);
        // Wire form whose label runs past the option: dropped.
        let p = msg(&[81, 6, 4, 0, 0, 5, b'a', b'b', 255]);
        let m = parse(&p).unwrap();
        assert_eq!(m.client_fqdn, None);
        assert!(m.events.contains(Events::BAD_OPTION));
        // Flags and rcodes only: an empty name.
        let p = msg(&[81, 3, 1, 0, 0, 255]);
        let m = parse(&p).unwrap();
        assert_eq!(labels(m.client_fqdn), Vec::<&[u8]>::new());
    }

    #[test]
    fn every_prefix_of_real_messages() {
        for p in real() {
            for len in 0..=p.len() {
                let r = parse(&p[..len]);
                if len < MIN_LEN {
                    assert_eq!(r, Err(Error::Truncated));
                } else {
                    let m = r.unwrap();
                    assert_eq!(m.mac(), parse(&p).unwrap().mac());
                }
                fuzz_dhcp(&p[..len]);
            }
        }
    }

    #[test]
    fn lengths_of_255_everywhere() {
        let mut p = msg(&[]);
        p.extend(std::iter::repeat_n(255u8, 600));
        let m = parse(&p).unwrap();
        assert_eq!(m.option_count, 0); // 255 is End
        let mut p = msg(&[]);
        for code in DECODED {
            p.extend_from_slice(&[code, 255]);
        }
        let m = parse(&p).unwrap();
        // The first option claims 255 bytes that are not there.
        assert_eq!(m.hostname.map(<[u8]>::len), None);
        assert!(m.events.contains(Events::TRUNCATED));
        let mut p = msg(&[]);
        for code in DECODED {
            p.push(code);
            p.push(255);
            p.extend(std::iter::repeat_n(b'x', 255));
        }
        let m = parse(&p).unwrap();
        assert_eq!(m.hostname.map(<[u8]>::len), Some(255));
        assert_eq!(m.vendor_class.map(<[u8]>::len), Some(255));
        assert_eq!(m.requested_ip, None);
        assert!(m.events.contains(Events::BAD_OPTION) && m.events.contains(Events::NO_END));
    }

    #[test]
    fn random_mutations_never_panic() {
        let seeds = real();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut decoded = 0;
        for _ in 0..20_000 {
            let mut buf = seeds[rng.index(seeds.len())].clone();
            for _ in 0..1 + rng.index(6) {
                if buf.len() <= MIN_LEN {
                    break;
                }
                let at = MIN_LEN + rng.index(buf.len() - MIN_LEN);
                match rng.index(4) {
                    0 => buf[at] = rng.next() as u8,
                    1 => buf[at] = 255,
                    2 => buf[at] = [12, 50, 52, 53, 81][rng.index(5)],
                    _ => buf.truncate(at),
                }
            }
            if let Ok(m) = parse(&buf) {
                decoded += 1;
                assert!(usize::from(m.option_count) <= MAX_OPTIONS);
                if let Some((ip, mac, _)) = m.binding() {
                    assert!(!ip.is_unspecified() && mac != [0; 6]);
                }
            }
            fuzz_dhcp(&buf);
        }
        assert_eq!(decoded, 20_000, "the header and cookie were never mutated");
    }
}
