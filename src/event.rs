//! The protocol events workers hand to the output thread, and their EVE JSON form.
//!
//! Events are owned and small: the few strings a decoder keeps are copied once out of the packet
//! buffers. Serialisation follows Suricata 8's EVE format field for field for `dns` (version 3),
//! `tls` and `http`, so tools that read Suricata read crosswire. `timestamp` is always the packet
//! time, never the wall clock.

use std::fmt::Write as _;
use std::io::Write;
use std::net::IpAddr;

use serde::Serialize;

use crate::decode::{dhcp, dns, http, krb5, net, tls};

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
    use std::cell::RefCell;
    // Events come in bursts within the same second: the date part is formatted once per second
    // per thread.
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let secs = ts_us / 1_000_000;
    let micros = ts_us % 1_000_000;
    let mut out = String::with_capacity(31);
    SECOND.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let date = i64::try_from(secs)
                .ok()
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_else(|| "1970-01-01T00:00:00".to_string());
            *c = (secs, date);
        }
        out.push_str(&c.1);
    });
    let _ = write!(out, ".{micros:06}+0000");
    out
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

/// Community ID v1 (seed 0) of a flow tuple, as Suricata and Zeek write it.
pub fn community_id(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, proto: u8) -> String {
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
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn to_v6(a: IpAddr) -> std::net::Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[derive(Serialize)]
struct DnsBody<'a> {
    dns: DnsOut<'a>,
}

#[derive(Serialize)]
struct DnsOut<'a> {
    version: u8,
    #[serde(rename = "type")]
    kind: &'static str,
    id: u16,
    flags: String,
    #[serde(skip_serializing_if = "is_false")]
    qr: bool,
    #[serde(skip_serializing_if = "is_false")]
    aa: bool,
    #[serde(skip_serializing_if = "is_false")]
    tc: bool,
    #[serde(skip_serializing_if = "is_false")]
    rd: bool,
    #[serde(skip_serializing_if = "is_false")]
    ra: bool,
    opcode: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    rcode: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    queries: Vec<RrOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    answers: Vec<RrOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorities: Vec<RrOut<'a>>,
}

#[derive(Serialize)]
struct RrOut<'a> {
    rrname: &'a str,
    rrtype: std::borrow::Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rdata: Option<&'a str>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct TlsBody<'a> {
    tls: TlsOut<'a>,
}

#[derive(Serialize)]
struct TlsOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<&'a str>,
    version: std::borrow::Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cipher_suite: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    client_alpns: &'a [String],
    ja3: Ja3Out<'a>,
    ja4: &'a str,
}

#[derive(Serialize)]
struct Ja3Out<'a> {
    hash: &'a str,
    string: &'a str,
}

#[derive(Serialize)]
struct HttpBody<'a> {
    http: HttpOut<'a>,
}

#[derive(Serialize)]
struct HttpOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xff: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_refer: Option<&'a str>,
    http_method: &'a str,
    protocol: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<u64>,
}

fn rr<'a>(name: &'a str, t: u16, ttl: Option<u32>, rdata: Option<&'a str>) -> RrOut<'a> {
    RrOut {
        rrname: name,
        rrtype: dns::rrtype_name(t),
        ttl,
        rdata,
    }
}

fn rrs(v: &[dns::Answer]) -> Vec<RrOut<'_>> {
    v.iter()
        .map(|a| rr(&a.rrname, a.rrtype, Some(a.ttl), a.rdata.as_deref()))
        .collect()
}

fn dns_body(d: &dns::Message) -> DnsBody<'_> {
    DnsBody {
        dns: DnsOut {
            version: 3,
            kind: if d.qr { "response" } else { "request" },
            id: d.id,
            flags: format!("{:04x}", d.flags),
            qr: d.qr,
            aa: d.aa,
            tc: d.tc,
            rd: d.rd,
            ra: d.ra,
            opcode: d.opcode,
            rcode: d.qr.then(|| dns::rcode_name(d.rcode).into_owned()),
            queries: d
                .queries
                .iter()
                .map(|q| rr(&q.rrname, q.rrtype, None, None))
                .collect(),
            answers: rrs(&d.answers),
            authorities: rrs(&d.authorities),
        },
    }
}

fn tls_body(t: &TlsEvent) -> TlsBody<'_> {
    let h = &t.hello;
    let version = match &t.server {
        Some(s) => tls::version_name(s.version),
        None => tls::version_name(
            h.supported_versions
                .iter()
                .copied()
                .max()
                .unwrap_or(h.legacy_version),
        ),
    };
    let cipher_suite = t.server.as_ref().map(|s| {
        let mut c = String::new();
        let _ = write!(c, "0x{:04x}", s.cipher);
        c
    });
    TlsBody {
        tls: TlsOut {
            sni: h.sni.as_deref(),
            version,
            cipher_suite,
            client_alpns: &h.alpns,
            ja3: Ja3Out {
                hash: &h.ja3_hash,
                string: &h.ja3,
            },
            ja4: &h.ja4,
        },
    }
}

fn http_body(h: &HttpEvent) -> HttpBody<'_> {
    let r = &h.request;
    let resp = h.response.as_ref();
    HttpBody {
        http: HttpOut {
            hostname: r.host.as_deref(),
            url: &r.uri,
            http_user_agent: r.user_agent.as_deref(),
            xff: r.xff.as_deref(),
            http_content_type: resp.and_then(|x| x.content_type.as_deref()),
            http_refer: r.referer.as_deref(),
            http_method: &r.method,
            protocol: &r.protocol,
            status: resp.map(|x| x.status),
            redirect: resp.and_then(|x| x.location.as_deref()),
            length: resp.and_then(|x| x.content_length),
        },
    }
}

/// Appends the EVE JSON line (with trailing newline) for `ev` to `out`.
pub fn write_eve(ev: &Event, out: &mut Vec<u8>) {
    // The envelope is written directly (its values are numbers, addresses and fixed names, none
    // needing escapes); the protocol object goes through serde, which escapes every string taken
    // from the wire. A flattened serde envelope cost a third of the output thread.
    let m = &ev.meta;
    let start = out.len();
    let _ = write!(
        out,
        "{{\"timestamp\":\"{}\",\"flow_id\":{},\"event_type\":\"{}\",\"src_ip\":\"{}\",\"src_port\":{},\"dest_ip\":\"{}\",\"dest_port\":{},\"proto\":\"{}\"",
        format_ts(m.ts_us),
        m.flow_id,
        ev.protocol(),
        m.src,
        m.src_port,
        m.dst,
        m.dst_port,
        proto_name(m.proto),
    );
    let vlan = &m.vlan[..usize::from(m.vlan_len).min(3)];
    if !vlan.is_empty() {
        out.extend_from_slice(b",\"vlan\":[");
        for (i, v) in vlan.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let _ = write!(out, "{v}");
        }
        out.push(b']');
    }
    if let Some(t) = &m.tunnel {
        let _ = write!(
            out,
            ",\"tunnel\":{{\"src_ip\":\"{}\",\"dest_ip\":\"{}\",\"proto\":\"{}\",\"depth\":{}}}",
            t.src,
            t.dst,
            t.kind.name(),
            t.depth
        );
    }
    out.extend_from_slice(b",\"community_id\":\"");
    with_community_id(m, |id| out.extend_from_slice(id.as_bytes()));
    let res = match &ev.kind {
        Kind::Dns(d) => {
            out.extend_from_slice(b"\",\"dns\":");
            serde_json::to_writer(&mut *out, &dns_body(d).dns)
        }
        Kind::Tls(t) => {
            out.extend_from_slice(b"\",\"tls\":");
            serde_json::to_writer(&mut *out, &tls_body(t).tls)
        }
        Kind::Http(h) => {
            out.extend_from_slice(b"\",\"http\":");
            serde_json::to_writer(&mut *out, &http_body(h).http)
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

/// Calls `f` with the flow's Community ID, from a small per-thread cache keyed by flow id (the
/// events of a flow come close together; the hash costs more than the rest of the envelope).
fn with_community_id(m: &Meta, f: impl FnOnce(&str)) {
    use std::cell::RefCell;
    const SLOTS: usize = 256;
    thread_local! {
        static CACHE: RefCell<Vec<(u64, String)>> = const { RefCell::new(Vec::new()) };
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_empty() {
            c.resize(SLOTS, (u64::MAX, String::new()));
        }
        let slot = (m.flow_id as usize) % SLOTS;
        if let Some(e) = c.get_mut(slot) {
            if e.0 != m.flow_id {
                *e = (
                    m.flow_id,
                    community_id(m.src, m.src_port, m.dst, m.dst_port, m.proto),
                );
            }
            f(&e.1);
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
