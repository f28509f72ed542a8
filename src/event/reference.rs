//! The serde-based EVE writer crosswire shipped before [`super::write_eve`] wrote the protocol
//! bodies by hand; tests compare the two byte for byte. It computes the Community ID afresh
//! for every line (no cache), so the tests also check the writer's cache.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

use std::net::IpAddr;

use super::{Event, HttpEvent, Kind, TlsEvent, proto_name, to_v6};
use crate::decode::{dns, tls};

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
    rrtype: Cow<'static, str>,
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
    version: Cow<'static, str>,
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

fn rrs(v: dns::Answers<'_>) -> Vec<RrOut<'_>> {
    v.map(|a| rr(a.rrname, a.rrtype, Some(a.ttl), a.rdata))
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
                .queries()
                .map(|q| rr(q.rrname, q.rrtype, None, None))
                .collect(),
            answers: rrs(d.answers()),
            authorities: rrs(d.authorities()),
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
pub(super) fn write_eve(ev: &Event, out: &mut Vec<u8>) {
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
    out.extend_from_slice(community_id(m.src, m.src_port, m.dst, m.dst_port, m.proto).as_bytes());
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

/// Formats a packet timestamp the way Suricata's EVE does (`2024-03-18T14:02:11.204113+0000`),
/// always in UTC.
pub(super) fn format_ts(ts_us: u64) -> String {
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

/// Community ID v1 (seed 0) of a flow tuple, as Suricata and Zeek write it.
pub(super) fn community_id(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, proto: u8) -> String {
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
