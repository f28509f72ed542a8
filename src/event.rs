//! The protocol events workers hand to the output thread, and their EVE JSON form.
//!
//! Events are owned and small: the few strings a decoder keeps are copied once out of the packet
//! buffers. Serialisation follows Suricata 8's EVE format field for field for `dns` (version 3),
//! `tls` and `http`, so tools that read Suricata read crosswire. `timestamp` is always the packet
//! time, never the wall clock.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::decode::{dhcp, dns, http, krb5, net, tls};

#[cfg(test)]
mod reference;
#[cfg(test)]
mod writer_tests;

/// Flow context shared by every protocol event.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Packet time of the packet that completed the event, microseconds since the epoch.
    pub ts_us: u64,
    /// Stable id of the flow (same for both directions and every event of the flow).
    pub flow_id: u64,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    pub vlan: [u16; 3],
    pub vlan_len: u8,
    /// Outermost tunnel the packet arrived in, if any.
    pub tunnel: Option<net::Tunnel>,
    /// Monotonic nanoseconds (process clock) when the capture thread received the packet that
    /// completed the event; used for capture-to-event latency.
    pub recv_ns: u64,
}

/// What a worker found.
#[derive(Debug, Clone)]
pub enum Kind {
    Dns(Box<dns::Message>),
    Tls(Box<TlsEvent>),
    Http(Box<HttpEvent>),
    Dhcp(Box<DhcpEvent>),
    Krb5(Box<Krb5Event>),
}

/// A DHCP message: who holds which address, under which name (Suricata's `dhcp` event).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DhcpEvent {
    /// "request" (client to server) or "reply".
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Transaction id.
    pub id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_ip: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_ip: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_ip: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_time: Option<u32>,
    /// The address the client holds after this message, with its MAC (see
    /// [`dhcp::Message::binding`]); not written.
    #[serde(skip)]
    pub binding: Option<(std::net::Ipv4Addr, [u8; 6])>,
}

fn mac_string(m: &[u8]) -> String {
    let mut s = String::with_capacity(17);
    for (i, b) in m.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Host names are kept when printable and short; anything else is dropped (counted by the
/// caller as an odd field, never written raw).
fn printable(b: &[u8], max: usize) -> Option<String> {
    (!b.is_empty() && b.len() <= max && b.iter().all(|c| c.is_ascii_graphic()))
        .then(|| String::from_utf8_lossy(b).into_owned())
}

impl DhcpEvent {
    pub fn from_message(m: &dhcp::Message<'_>) -> DhcpEvent {
        let some = |a: std::net::Ipv4Addr| (!a.is_unspecified()).then_some(a);
        DhcpEvent {
            kind: match m.op {
                dhcp::Op::Reply => "reply",
                _ => "request",
            },
            id: m.xid,
            client_mac: m.mac().map(|x| mac_string(&x)),
            assigned_ip: some(m.yiaddr),
            client_ip: some(m.ciaddr),
            relay_ip: some(m.giaddr),
            requested_ip: m.requested_ip,
            dhcp_type: m.message_type.map(dhcp::MessageType::name),
            hostname: m.hostname.and_then(|h| printable(h, 255)),
            lease_time: m.lease_time,
            binding: m.binding().map(|(ip, mac, _)| (ip, mac)),
        }
    }
}

/// A Kerberos message: which principal asked the KDC for what (Suricata's `krb5` event).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Krb5Event {
    pub msg_type: &'static str,
    /// Client principal name (`alice`, `host/wks-023`), without the realm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl Krb5Event {
    pub fn from_message(m: &krb5::Message<'_>) -> Krb5Event {
        let name = |p: &krb5::PrincipalName<'_>| -> Option<String> {
            let parts: Vec<String> = p
                .components()
                .map(|c| printable(c, 255))
                .collect::<Option<Vec<_>>>()?;
            (!parts.is_empty()).then(|| parts.join("/"))
        };
        Krb5Event {
            msg_type: m.msg_type.name(),
            cname: m.cname.as_ref().and_then(name),
            realm: m.crealm.or(m.realm).and_then(|r| printable(r, 255)),
            sname: m.sname.as_ref().and_then(name),
            error_code: m.error_code.map(|c| match c.name() {
                Some(n) => n.to_string(),
                None => c.0.to_string(),
            }),
        }
    }
}

/// A TLS ClientHello, completed by the server's hello when it was seen.
#[derive(Debug, Clone)]
pub struct TlsEvent {
    pub hello: tls::ClientHello,
    pub server: Option<tls::ServerHello>,
}

/// An HTTP request head, completed by its response head when it was seen.
#[derive(Debug, Clone)]
pub struct HttpEvent {
    pub request: http::Request,
    pub response: Option<http::Response>,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub meta: Meta,
    pub kind: Kind,
}

impl Event {
    pub fn protocol(&self) -> &'static str {
        match self.kind {
            Kind::Dns(_) => "dns",
            Kind::Tls(_) => "tls",
            Kind::Http(_) => "http",
            Kind::Dhcp(_) => "dhcp",
            Kind::Krb5(_) => "krb5",
        }
    }
}

/// Formats a packet timestamp the way Suricata's EVE does (`2024-03-18T14:02:11.204113+0000`),
/// always in UTC.
pub fn format_ts(ts_us: u64) -> String {
    let mut out = String::with_capacity(31);
    with_date(ts_us / 1_000_000, |date| out.push_str(date));
    let mut frac = [0u8; 12];
    fill_frac(&mut frac, ts_us);
    out.push_str(std::str::from_utf8(&frac).unwrap_or(".000000+0000"));
    out
}

/// Appends [`format_ts`]`(ts_us)` to `out` without allocating.
fn push_ts(out: &mut Vec<u8>, ts_us: u64) {
    with_date(ts_us / 1_000_000, |date| {
        out.extend_from_slice(date.as_bytes())
    });
    let mut frac = [0u8; 12];
    fill_frac(&mut frac, ts_us);
    out.extend_from_slice(&frac);
}

/// The `.uuuuuu+0000` tail of a timestamp.
fn fill_frac(frac: &mut [u8; 12], ts_us: u64) {
    *frac = *b".000000+0000";
    let mut micros = ts_us % 1_000_000;
    for d in frac.iter_mut().skip(1).take(6).rev() {
        *d = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
}

/// Calls `f` with `secs` (seconds since the epoch) formatted `%Y-%m-%dT%H:%M:%S` in UTC.
fn with_date(secs: u64, f: impl FnOnce(&str)) {
    use std::cell::RefCell;
    // Events come in bursts within the same second: the date part is formatted once per second
    // per thread.
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    SECOND.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let (cached, date) = &mut *c;
            date.clear();
            match i64::try_from(secs)
                .ok()
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            {
                Some(t) => {
                    let _ = write!(date, "{}", t.format("%Y-%m-%dT%H:%M:%S"));
                }
                None => date.push_str("1970-01-01T00:00:00"),
            }
            *cached = secs;
        }
        f(&c.1);
    });
}

fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "TCP",
        17 => "UDP",
        1 => "ICMP",
        58 => "IPv6-ICMP",
        132 => "SCTP",
        _ => "UNKNOWN",
    }
}

/// Length of a Community ID v1: `1:` and the base64 of a SHA-1 digest.
const COMMUNITY_ID_LEN: usize = 30;

/// Community ID v1 (seed 0) of a flow tuple, as Suricata and Zeek write it.
pub fn community_id(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, proto: u8) -> String {
    let id = community_id_bytes(src, sport, dst, dport, proto);
    std::str::from_utf8(&id).unwrap_or_default().to_string()
}

/// [`community_id`] as ASCII bytes, without allocating.
fn community_id_bytes(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    proto: u8,
) -> [u8; COMMUNITY_ID_LEN] {
    use base64::Engine as _;
    use sha1::Digest as _;
    let (a, ap, b, bp) = if (src, sport) <= (dst, dport) {
        (src, sport, dst, dport)
    } else {
        (dst, dport, src, sport)
    };
    let mut h = sha1::Sha1::new();
    h.update(0u16.to_be_bytes());
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => {
            h.update(x.octets());
            h.update(y.octets());
        }
        (x, y) => {
            h.update(to_v6(x).octets());
            h.update(to_v6(y).octets());
        }
    }
    h.update([proto, 0]);
    h.update(ap.to_be_bytes());
    h.update(bp.to_be_bytes());
    let digest = h.finalize();
    let mut id = [0u8; COMMUNITY_ID_LEN];
    let (head, tail) = id.split_at_mut(2);
    head.copy_from_slice(b"1:");
    // 20 digest bytes are exactly 28 base64 characters (one `=` of padding): it always fits.
    let _ = base64::engine::general_purpose::STANDARD.encode_slice(digest, tail);
    id
}

fn to_v6(a: IpAddr) -> std::net::Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Appends the EVE JSON line (with trailing newline) for `ev` to `out`.
///
/// Everything but the rare `dhcp` and `krb5` bodies is written by hand: numbers with `itoa`,
/// addresses digit by digit, and every string taken from the wire through [`push_json_str`],
/// which escapes exactly as serde_json does. The output is byte for byte what the serde
/// writer produced (the tests keep that writer as the reference); the hand-written form costs
/// a fraction of it and allocates nothing (bar the name of a draft or unknown TLS version).
pub fn write_eve(ev: &Event, out: &mut Vec<u8>) {
    let m = &ev.meta;
    let start = out.len();
    out.extend_from_slice(b"{\"timestamp\":\"");
    push_ts(out, m.ts_us);
    out.extend_from_slice(b"\",\"flow_id\":");
    push_int(out, m.flow_id);
    out.extend_from_slice(b",\"event_type\":\"");
    out.extend_from_slice(ev.protocol().as_bytes());
    out.extend_from_slice(b"\",\"src_ip\":\"");
    push_ip(out, m.src);
    out.extend_from_slice(b"\",\"src_port\":");
    push_int(out, m.src_port);
    out.extend_from_slice(b",\"dest_ip\":\"");
    push_ip(out, m.dst);
    out.extend_from_slice(b"\",\"dest_port\":");
    push_int(out, m.dst_port);
    out.extend_from_slice(b",\"proto\":\"");
    out.extend_from_slice(proto_name(m.proto).as_bytes());
    out.push(b'"');
    let vlan = m.vlan.get(..usize::from(m.vlan_len)).unwrap_or(&m.vlan);
    if let Some((first, rest)) = vlan.split_first() {
        out.extend_from_slice(b",\"vlan\":[");
        push_int(out, *first);
        for v in rest {
            out.push(b',');
            push_int(out, *v);
        }
        out.push(b']');
    }
    if let Some(t) = &m.tunnel {
        out.extend_from_slice(b",\"tunnel\":{\"src_ip\":\"");
        push_ip(out, t.src);
        out.extend_from_slice(b"\",\"dest_ip\":\"");
        push_ip(out, t.dst);
        out.extend_from_slice(b"\",\"proto\":\"");
        out.extend_from_slice(t.kind.name().as_bytes());
        out.extend_from_slice(b"\",\"depth\":");
        push_int(out, t.depth);
        out.push(b'}');
    }
    out.extend_from_slice(b",\"community_id\":\"");
    with_community_id(m, |id| out.extend_from_slice(id));
    let res = match &ev.kind {
        Kind::Dns(d) => {
            out.extend_from_slice(b"\",\"dns\":");
            write_dns(d, out);
            Ok(())
        }
        Kind::Tls(t) => {
            out.extend_from_slice(b"\",\"tls\":");
            write_tls(t, out);
            Ok(())
        }
        Kind::Http(h) => {
            out.extend_from_slice(b"\",\"http\":");
            write_http(h, out);
            Ok(())
        }
        Kind::Dhcp(d) => {
            out.extend_from_slice(b"\",\"dhcp\":");
            serde_json::to_writer(&mut *out, d)
        }
        Kind::Krb5(k) => {
            out.extend_from_slice(b"\",\"krb5\":");
            serde_json::to_writer(&mut *out, k)
        }
    };
    if res.is_err() {
        // Serialising plain structs into a Vec cannot fail; keep the line well-formed anyway.
        out.truncate(start);
        out.extend_from_slice(b"{}");
    } else {
        out.push(b'}');
    }
    out.push(b'\n');
}

/// The `dns` object (Suricata's version 3 layout). Optional members are left out exactly
/// where Suricata leaves them out: false flags, `rcode` on requests, empty sections.
fn write_dns(d: &dns::Message, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"version\":3,\"type\":\"");
    out.extend_from_slice(if d.qr {
        b"response".as_slice()
    } else {
        b"request".as_slice()
    });
    out.extend_from_slice(b"\",\"id\":");
    push_int(out, d.id);
    out.extend_from_slice(b",\"flags\":\"");
    push_hex4(out, d.flags);
    out.push(b'"');
    for (set, member) in [
        (d.qr, b",\"qr\":true".as_slice()),
        (d.aa, b",\"aa\":true".as_slice()),
        (d.tc, b",\"tc\":true".as_slice()),
        (d.rd, b",\"rd\":true".as_slice()),
        (d.ra, b",\"ra\":true".as_slice()),
    ] {
        if set {
            out.extend_from_slice(member);
        }
    }
    out.extend_from_slice(b",\"opcode\":");
    push_int(out, d.opcode);
    if d.qr {
        out.extend_from_slice(b",\"rcode\":\"");
        // Names and numbers: nothing to escape.
        match dns::rcode_mnemonic(d.rcode) {
            Some(n) => out.extend_from_slice(n.as_bytes()),
            None => push_int(out, d.rcode),
        }
        out.push(b'"');
    }
    let queries = d.queries();
    if queries.len() > 0 {
        out.extend_from_slice(b",\"queries\":[");
        for (i, q) in queries.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_rr_head(out, q.rrname, q.rrtype);
            out.push(b'}');
        }
        out.push(b']');
    }
    write_records(out, b",\"answers\":[", d.answers());
    write_records(out, b",\"authorities\":[", d.authorities());
    out.push(b'}');
}

/// A non-empty record section: `key` is `,"name":[`.
fn write_records(out: &mut Vec<u8>, key: &[u8], rrs: dns::Answers<'_>) {
    if rrs.len() == 0 {
        return;
    }
    out.extend_from_slice(key);
    for (i, a) in rrs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_rr_head(out, a.rrname, a.rrtype);
        out.extend_from_slice(b",\"ttl\":");
        push_int(out, a.ttl);
        if let Some(r) = a.rdata {
            out.extend_from_slice(b",\"rdata\":");
            push_json_str(out, r);
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// `{"rrname":...,"rrtype":"..."` of a question or record, object left open.
fn push_rr_head(out: &mut Vec<u8>, name: &str, rrtype: u16) {
    out.extend_from_slice(b"{\"rrname\":");
    push_json_str(out, name);
    out.extend_from_slice(b",\"rrtype\":\"");
    // Mnemonics and numbers: nothing to escape.
    match dns::rrtype_mnemonic(rrtype) {
        Some(n) => out.extend_from_slice(n.as_bytes()),
        None => push_int(out, rrtype),
    }
    out.push(b'"');
}

/// The `tls` object: the server's version and cipher when its hello was seen, else the
/// highest version the client offered.
fn write_tls(t: &TlsEvent, out: &mut Vec<u8>) {
    let h = &t.hello;
    out.push(b'{');
    if let Some(sni) = &h.sni {
        out.extend_from_slice(b"\"sni\":");
        push_json_str(out, sni);
        out.push(b',');
    }
    let version = match &t.server {
        Some(s) => s.version,
        None => h
            .supported_versions
            .iter()
            .copied()
            .max()
            .unwrap_or(h.legacy_version),
    };
    out.extend_from_slice(b"\"version\":");
    // Only drafts and unknown versions allocate a name.
    push_json_str(out, &tls::version_name(version));
    if let Some(s) = &t.server {
        out.extend_from_slice(b",\"cipher_suite\":\"0x");
        push_hex4(out, s.cipher);
        out.push(b'"');
    }
    if let Some((first, rest)) = h.alpns.split_first() {
        out.extend_from_slice(b",\"client_alpns\":[");
        push_json_str(out, first);
        for a in rest {
            out.push(b',');
            push_json_str(out, a);
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"ja3\":{\"hash\":");
    push_json_str(out, &h.ja3_hash);
    out.extend_from_slice(b",\"string\":");
    push_json_str(out, &h.ja3);
    out.extend_from_slice(b"},\"ja4\":");
    push_json_str(out, &h.ja4);
    out.push(b'}');
}

/// The `http` object: request head, with the response's status, type, redirect and length
/// when the response head was seen.
fn write_http(h: &HttpEvent, out: &mut Vec<u8>) {
    let r = &h.request;
    let resp = h.response.as_ref();
    out.push(b'{');
    if let Some(host) = &r.host {
        out.extend_from_slice(b"\"hostname\":");
        push_json_str(out, host);
        out.push(b',');
    }
    out.extend_from_slice(b"\"url\":");
    push_json_str(out, &r.uri);
    let opt_str = |out: &mut Vec<u8>, key: &[u8], v: Option<&String>| {
        if let Some(v) = v {
            out.extend_from_slice(key);
            push_json_str(out, v);
        }
    };
    opt_str(out, b",\"http_user_agent\":", r.user_agent.as_ref());
    opt_str(out, b",\"xff\":", r.xff.as_ref());
    opt_str(
        out,
        b",\"http_content_type\":",
        resp.and_then(|x| x.content_type.as_ref()),
    );
    opt_str(out, b",\"http_refer\":", r.referer.as_ref());
    out.extend_from_slice(b",\"http_method\":");
    push_json_str(out, &r.method);
    out.extend_from_slice(b",\"protocol\":");
    push_json_str(out, &r.protocol);
    if let Some(x) = resp {
        out.extend_from_slice(b",\"status\":");
        push_int(out, x.status);
        opt_str(out, b",\"redirect\":", x.location.as_ref());
        if let Some(len) = x.content_length {
            out.extend_from_slice(b",\"length\":");
            push_int(out, len);
        }
    }
    out.push(b'}');
}

/// Appends an integer in decimal.
fn push_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Lowercase hex digit of the low nibble of `n`.
fn hex_digit(n: u8) -> u8 {
    let n = n & 0x0f;
    if n < 10 { b'0' + n } else { b'a' + (n - 10) }
}

/// Appends `v` as exactly four lowercase hex digits (`{:04x}`).
fn push_hex4(out: &mut Vec<u8>, v: u16) {
    let [hi, lo] = v.to_be_bytes();
    out.extend_from_slice(&[
        hex_digit(hi >> 4),
        hex_digit(hi),
        hex_digit(lo >> 4),
        hex_digit(lo),
    ]);
}

/// Appends an address as `IpAddr`'s `Display` writes it.
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    let mut buf = [0u8; ADDR_BUF];
    let n = match ip {
        IpAddr::V4(v4) => ipv4_text(&mut buf, 0, v4),
        IpAddr::V6(v6) => ipv6_text(&mut buf, v6),
    };
    out.extend_from_slice(buf.get(..n).unwrap_or_default());
}

/// Room for the longest address text (39 bytes) and the four bytes the writers below store
/// past their end.
const ADDR_BUF: usize = 48;

/// Stores four bytes at `at` (the writers below always store four and keep as many as they
/// need; nothing is stored out of the buffer).
fn store4(buf: &mut [u8; ADDR_BUF], at: usize, v: [u8; 4]) {
    if let Some(d) = buf.get_mut(at..at + 4) {
        d.copy_from_slice(&v);
    }
}

/// For every octet value: its decimal digits followed by `.`, padded to four bytes, and how
/// many of those bytes count.
const OCTET_TEXT: [([u8; 4], usize); 256] = {
    let mut t = [([0u8; 4], 0usize); 256];
    let mut v = 0;
    while v < 256 {
        let (d0, d1, d2) = ((v / 100) as u8, (v / 10 % 10) as u8, (v % 10) as u8);
        t[v] = if v >= 100 {
            ([b'0' + d0, b'0' + d1, b'0' + d2, b'.'], 4)
        } else if v >= 10 {
            ([b'0' + d1, b'0' + d2, b'.', 0], 3)
        } else {
            ([b'0' + d2, b'.', 0, 0], 2)
        };
        v += 1;
    }
    t
};

/// Writes `ip` in dotted decimal at `at`; returns where the text ends.
fn ipv4_text(buf: &mut [u8; ADDR_BUF], mut at: usize, ip: Ipv4Addr) -> usize {
    for o in ip.octets() {
        let (text, len) = OCTET_TEXT[usize::from(o)];
        store4(buf, at, text);
        at += len;
    }
    // Drop the `.` after the last octet.
    at - 1
}

/// Writes `ip` as `Ipv6Addr`'s `Display` does (RFC 5952): IPv4-mapped addresses as
/// `::ffff:a.b.c.d`, otherwise lowercase hex groups without leading zeros, the first longest
/// run of two or more zero groups written `::`. Returns the length.
fn ipv6_text(buf: &mut [u8; ADDR_BUF], ip: Ipv6Addr) -> usize {
    if let Some(v4) = ip.to_ipv4_mapped() {
        if let Some(d) = buf.get_mut(..7) {
            d.copy_from_slice(b"::ffff:");
        }
        return ipv4_text(buf, 7, v4);
    }
    let seg = ip.segments();
    // First longest run of zero groups: (start, len).
    let (mut best, mut cur) = ((0usize, 0usize), (0usize, 0usize));
    for (i, &s) in seg.iter().enumerate() {
        if s == 0 {
            if cur.1 == 0 {
                cur.0 = i;
            }
            cur.1 += 1;
            if cur.1 > best.1 {
                best = cur;
            }
        } else {
            cur.1 = 0;
        }
    }
    // The run written `::` (none when no run is two groups long).
    let (skip, resume) = if best.1 > 1 {
        (best.0, best.0 + best.1)
    } else {
        (usize::MAX, usize::MAX)
    };
    let mut at = 0;
    let mut i = 0;
    while let Some(&g) = seg.get(i) {
        if i == skip {
            store4(buf, at, *b"::\0\0");
            at += 2;
            i = resume;
            continue;
        }
        if i > 0 && i != resume {
            store4(buf, at, *b":\0\0\0");
            at += 1;
        }
        let (text, len) = hex_group(g);
        store4(buf, at, text);
        at += len;
        i += 1;
    }
    at
}

/// A group's lowercase hex digits without leading zeros, left-aligned in four bytes, and
/// their count.
fn hex_group(g: u16) -> ([u8; 4], usize) {
    let g = u32::from(g);
    // One nibble per byte, most significant first, then to ASCII ('a'..'f' for 10..15).
    let nibbles = ((g & 0xf000) << 12) | ((g & 0x0f00) << 8) | ((g & 0x00f0) << 4) | (g & 0x000f);
    let above_9 = ((nibbles + 0x0606_0606) >> 4) & 0x0101_0101;
    let ascii = nibbles + 0x3030_3030 + above_9 * u32::from(b'a' - b'0' - 10);
    // `g | 1` has as many hex digits as `g` (one for zero); shift the leading zeros out.
    let digits = ((32 - (g | 1).leading_zeros()) as usize).div_ceil(4);
    ((ascii << (8 * (4 - digits))).to_be_bytes(), digits)
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes: `"` and `\` with a
/// backslash, the control bytes 0x08, 0x09, 0x0a, 0x0c and 0x0d as `\b` `\t` `\n` `\f` `\r`,
/// the other bytes below 0x20 as `\u00xx` (lowercase hex); everything else (`/`, DEL,
/// non-ASCII) as it is. Strings from the wire almost never need an escape: they are checked
/// eight bytes at a time and copied in one piece.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    if needs_escape(b) {
        push_escaped(out, b);
    } else {
        out.extend_from_slice(b);
    }
    out.push(b'"');
}

fn byte_needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// Whether any byte of `b` needs an escape.
fn needs_escape(b: &[u8]) -> bool {
    match b.last_chunk::<8>() {
        // Whole words, then the last eight bytes (overlapping the words) for the rest.
        Some(last) => {
            let (words, _) = b.as_chunks::<8>();
            words
                .iter()
                .any(|w| word_needs_escape(u64::from_ne_bytes(*w)))
                || word_needs_escape(u64::from_ne_bytes(*last))
        }
        None => b.iter().any(|&c| byte_needs_escape(c)),
    }
}

/// The escaping loop of [`push_json_str`] for a string that needs it: runs of bytes needing
/// no escape are copied in one piece, clean words skipped eight bytes at a time. Kept out of
/// line: the common clean path then needs no spilled registers.
#[cold]
#[inline(never)]
fn push_escaped(out: &mut Vec<u8>, b: &[u8]) {
    // `run` is where the bytes not yet copied start; `i` is the scan position.
    let mut run = 0;
    let mut i = 0;
    while i < b.len() {
        let end = match b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
            Some(w) if !word_needs_escape(u64::from_ne_bytes(*w)) => {
                i += 8;
                continue;
            }
            Some(_) => i + 8,
            None => b.len(),
        };
        for (j, &c) in b.iter().enumerate().take(end).skip(i) {
            if !byte_needs_escape(c) {
                continue;
            }
            out.extend_from_slice(b.get(run..j).unwrap_or_default());
            run = j + 1;
            let short = match c {
                b'"' => b'"',
                b'\\' => b'\\',
                0x08 => b'b',
                0x09 => b't',
                0x0a => b'n',
                0x0c => b'f',
                0x0d => b'r',
                _ => 0,
            };
            if short != 0 {
                out.extend_from_slice(&[b'\\', short]);
            } else {
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex_digit(c >> 4), hex_digit(c)]);
            }
        }
        i = end;
    }
    out.extend_from_slice(b.get(run..).unwrap_or_default());
}

/// Whether any of the eight bytes packed in `w` is below 0x20, `"` or `\` (exact: the
/// classic "has a byte less than n" and "has a zero byte" word tests only ever err on bytes
/// above one that really matches).
const fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * b'"' as u64);
    let quote = q.wrapping_sub(ONES) & !q;
    let bs = w ^ (ONES * b'\\' as u64);
    let backslash = bs.wrapping_sub(ONES) & !bs;
    (control | quote | backslash) & HIGH != 0
}

/// Calls `f` with the flow's Community ID, from a small per-thread cache keyed by flow id (the
/// events of a flow come close together; the hash costs more than the rest of the envelope).
fn with_community_id(m: &Meta, f: impl FnOnce(&[u8])) {
    use std::cell::RefCell;
    const SLOTS: usize = 256;
    /// A cached id: (filled, flow id, Community ID).
    type Slot = (bool, u64, [u8; COMMUNITY_ID_LEN]);
    thread_local! {
        static CACHE: RefCell<[Slot; SLOTS]> =
            const { RefCell::new([(false, 0, [0; COMMUNITY_ID_LEN]); SLOTS]) };
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(e) = c.get_mut((m.flow_id % SLOTS as u64) as usize) {
            if !e.0 || e.1 != m.flow_id {
                *e = (
                    true,
                    m.flow_id,
                    community_id_bytes(m.src, m.src_port, m.dst, m.dst_port, m.proto),
                );
            }
            f(&e.2);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_format_matches_suricata() {
        assert_eq!(
            format_ts(1_710_770_531_204_113),
            "2024-03-18T14:02:11.204113+0000"
        );
        assert_eq!(format_ts(0), "1970-01-01T00:00:00.000000+0000");
    }

    #[test]
    fn community_id_matches_spec_example() {
        // Test vector from the Community ID spec (TCP 128.232.110.120:34855 -> 66.35.250.204:80).
        let id = community_id(
            "128.232.110.120".parse().unwrap(),
            34855,
            "66.35.250.204".parse().unwrap(),
            80,
            6,
        );
        assert_eq!(id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        // Symmetric.
        let rev = community_id(
            "66.35.250.204".parse().unwrap(),
            80,
            "128.232.110.120".parse().unwrap(),
            34855,
            6,
        );
        assert_eq!(id, rev);
    }
}
