//! The hand-written EVE writer against the serde-based one it replaced ([`super::reference`]):
//! every line must be identical, byte for byte.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::decode::net::{Tunnel, TunnelKind};

use crate::testutil::Rng;

/// Generators for the writer's inputs, on the shared test PRNG.
impl Rng {
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
    fn u16(&mut self) -> u16 {
        self.next() as u16
    }

    /// A string built from pieces that stress the escaper: quotes, backslashes, every control
    /// byte, DEL, `/`, multi-byte UTF-8, runs that straddle 8-byte words.
    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "",
            "\"",
            "\\",
            "/",
            "\u{7f}",
            "é",
            "日本語",
            "😀",
            "\u{2028}",
            "\u{fffd}",
            "\\\"",
            "\"\"",
            "a",
            "example.com",
            "GET",
            "\\x00",
            "\r\n",
            "<script>",
        ];
        let mut s = String::new();
        for _ in 0..self.below(7) {
            match self.below(6) {
                0 => s.push_str(self.pick::<&str>(PIECES)),
                1 => s.push(char::from(self.below(0x20) as u8)),
                2 => {
                    for _ in 0..self.below(20) {
                        s.push(char::from(0x20 + self.below(0x5f) as u8));
                    }
                }
                3 => {
                    if let Some(c) = char::from_u32(self.below(0x11_0000) as u32) {
                        s.push(c);
                    }
                }
                4 => s.push(char::from(self.below(0x80) as u8)),
                _ => s.push_str(&"x".repeat(self.below(24) as usize)),
            }
        }
        s
    }
    fn opt_string(&mut self) -> Option<String> {
        (!self.chance(3)).then(|| self.string())
    }

    fn ipv6(&mut self) -> Ipv6Addr {
        match self.below(6) {
            0 => Ipv6Addr::UNSPECIFIED,
            1 => Ipv4Addr::from(self.next() as u32).to_ipv6_mapped(),
            2 => Ipv4Addr::from(self.next() as u32).to_ipv6_compatible(),
            3 => Ipv6Addr::from(self.next() as u128 | (u128::from(self.next()) << 64)),
            _ => {
                // Zero runs of every length and position, small and large groups.
                let mut seg = [0u16; 8];
                for s in &mut seg {
                    *s = match self.below(4) {
                        0 | 1 => 0,
                        2 => self.below(16) as u16,
                        _ => self.u16(),
                    };
                }
                Ipv6Addr::from(seg)
            }
        }
    }
    fn ip(&mut self) -> IpAddr {
        if self.chance(2) {
            IpAddr::V4(Ipv4Addr::from(match self.below(3) {
                0 => 0,
                1 => u32::MAX,
                _ => self.next() as u32,
            }))
        } else {
            IpAddr::V6(self.ipv6())
        }
    }

    fn meta(&mut self) -> Meta {
        const TUNNELS: &[TunnelKind] = &[
            TunnelKind::Gre,
            TunnelKind::Erspan,
            TunnelKind::Vxlan,
            TunnelKind::Geneve,
            TunnelKind::Teredo,
            TunnelKind::GtpU,
            TunnelKind::IpInIp,
            TunnelKind::Ipv6InIp,
            TunnelKind::Mpls,
            TunnelKind::Pppoe,
        ];
        let tunnel = self.chance(3).then(|| Tunnel {
            kind: *self.pick(TUNNELS),
            src: self.ip(),
            dst: self.ip(),
            depth: self.next() as u8,
        });
        Meta {
            ts_us: match self.below(8) {
                0 => 0,
                1 => u64::MAX,
                // Years beyond 9999 (chrono writes them with a sign).
                2 => self.below(1 << 60),
                _ => 1_500_000_000_000_000 + self.below(1 << 50),
            },
            // Below 2^63 (the envelope test uses the top of the range).
            flow_id: self.next() >> self.below(64).max(1),
            src: self.ip(),
            src_port: self.u16(),
            dst: self.ip(),
            dst_port: self.u16(),
            proto: *self.pick(&[6, 17, 1, 58, 132, 0, 47, 255]),
            vlan: [self.u16() & 0x0fff, self.u16(), self.u16()],
            vlan_len: if self.chance(20) {
                self.next() as u8
            } else {
                self.below(4) as u8
            },
            tunnel,
            recv_ns: self.next(),
        }
    }

    fn rrtype(&mut self) -> u16 {
        if self.chance(4) {
            self.u16()
        } else {
            *self.pick(&[1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 64, 65, 255, 257, 0, 300])
        }
    }
    /// A section's records: owner name, type, TTL, rdata.
    fn answers(&mut self) -> Vec<(String, u16, u32, Option<String>)> {
        (0..self.below(4))
            .map(|_| {
                let rrname = self.string();
                let rrtype = self.rrtype();
                (rrname, rrtype, self.next() as u32, self.opt_string())
            })
            .collect()
    }
    fn dns(&mut self) -> dns::Message {
        fn answer(
            (rrname, rrtype, ttl, rdata): &(String, u16, u32, Option<String>),
        ) -> dns::Answer<'_> {
            dns::Answer {
                rrname,
                rrtype: *rrtype,
                ttl: *ttl,
                rdata: rdata.as_deref(),
            }
        }
        dns::Message {
            id: self.u16(),
            flags: self.u16(),
            opcode: self.below(16) as u8,
            qr: self.chance(2),
            aa: self.chance(2),
            tc: self.chance(2),
            rd: self.chance(2),
            ra: self.chance(2),
            rcode: if self.chance(3) {
                self.u16()
            } else {
                self.below(24) as u16
            },
            sections: {
                let queries: Vec<(String, u16)> = (0..self.below(3))
                    .map(|_| (self.string(), self.rrtype()))
                    .collect();
                let (answers, authorities) = (self.answers(), self.answers());
                dns::Sections::new(
                    queries.iter().map(|(rrname, rrtype)| dns::Query {
                        rrname,
                        rrtype: *rrtype,
                    }),
                    answers.iter().map(answer),
                    authorities.iter().map(answer),
                )
            },
            ..Default::default()
        }
    }
    fn version(&mut self) -> u16 {
        if self.chance(3) {
            self.u16()
        } else {
            *self.pick(&[
                0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x7f12, 0xfb17, 0x0002,
            ])
        }
    }
    fn tls(&mut self) -> TlsEvent {
        TlsEvent {
            hello: tls::ClientHello {
                legacy_version: self.version(),
                sni: self.opt_string(),
                alpns: (0..self.below(4)).map(|_| self.string()).collect(),
                supported_versions: (0..self.below(4)).map(|_| self.version()).collect(),
                ja3: self.string(),
                ja3_hash: self.string(),
                ja4: self.string(),
                anomaly: None,
            },
            server: self.chance(2).then(|| tls::ServerHello {
                version: self.version(),
                cipher: self.u16(),
                hello_retry: false,
                anomaly: None,
            }),
        }
    }
    fn opt_u64(&mut self) -> Option<u64> {
        (!self.chance(3)).then(|| self.next() >> self.below(64))
    }
    fn http(&mut self) -> HttpEvent {
        HttpEvent {
            request: http::Request {
                method: self.string(),
                uri: self.string(),
                protocol: self.string(),
                host: self.opt_string(),
                user_agent: self.opt_string(),
                referer: self.opt_string(),
                content_type: self.opt_string(),
                content_length: self.opt_u64(),
                xff: self.opt_string(),
                ..Default::default()
            },
            response: self.chance(2).then(|| http::Response {
                status: self.u16(),
                protocol: self.string(),
                content_type: self.opt_string(),
                content_length: self.opt_u64(),
                location: self.opt_string(),
                ..Default::default()
            }),
        }
    }
    fn opt_v4(&mut self) -> Option<Ipv4Addr> {
        self.chance(2).then(|| Ipv4Addr::from(self.next() as u32))
    }
    fn kind(&mut self) -> Kind {
        match self.below(5) {
            0 => Kind::Dns(Box::new(self.dns())),
            1 => Kind::Tls(Box::new(self.tls())),
            2 => Kind::Http(Box::new(self.http())),
            3 => Kind::Dhcp(Box::new(DhcpEvent {
                kind: "request",
                id: self.next() as u32,
                client_mac: self.opt_string(),
                assigned_ip: self.opt_v4(),
                client_ip: self.opt_v4(),
                relay_ip: self.opt_v4(),
                requested_ip: self.opt_v4(),
                dhcp_type: self.chance(2).then_some("DHCPACK"),
                hostname: self.opt_string(),
                lease_time: self.chance(2).then(|| self.next() as u32),
                binding: None,
            })),
            _ => Kind::Krb5(Box::new(Krb5Event {
                msg_type: "KRB_AS_REQ",
                cname: self.opt_string(),
                realm: self.opt_string(),
                sname: self.opt_string(),
                error_code: self.opt_string(),
            })),
        }
    }
}

fn fixed_meta() -> Meta {
    Meta {
        ts_us: 1_710_770_531_204_113,
        flow_id: 42,
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        src_port: 53000,
        dst: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 254)),
        dst_port: 53,
        proto: 17,
        vlan: [0; 3],
        vlan_len: 0,
        tunnel: None,
        recv_ns: 0,
    }
}

/// Writes `ev` with both writers and asserts the lines are identical (and valid JSON).
#[track_caller]
fn assert_same(ev: &Event) {
    let mut new = Vec::new();
    write_eve(ev, &mut new);
    let mut old = Vec::new();
    reference::write_eve(ev, &mut old);
    assert_eq!(
        String::from_utf8_lossy(&new),
        String::from_utf8_lossy(&old),
        "{ev:?}"
    );
    assert_eq!(new, old);
    assert!(
        serde_json::from_slice::<serde_json::Value>(&new).is_ok(),
        "{}",
        String::from_utf8_lossy(&new)
    );
}

fn event(kind: Kind) -> Event {
    Event {
        meta: fixed_meta(),
        kind,
    }
}

/// Strings that exercise every escaping rule, alone and inside clean runs of every alignment.
fn hostile_strings() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        "/",
        "\u{7f}",
        "é",
        "日本語",
        "😀",
        "\u{2028}",
        "a\"b\\c",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for c in (0u8..0x80).map(char::from).chain(['é', '€', '😀']) {
        v.push(c.to_string());
        for pad in 0..17 {
            let p = "p".repeat(pad);
            v.push(format!("{p}{c}"));
            v.push(format!("{c}{p}"));
            v.push(format!("{p}{c}{p}{c}{c}"));
        }
    }
    v
}

#[test]
fn json_strings_escape_like_serde_json() {
    for s in hostile_strings() {
        let mut out = b"prefix".to_vec();
        push_json_str(&mut out, &s);
        let want = format!("prefix{}", serde_json::to_string(&s).unwrap());
        assert_eq!(String::from_utf8(out).unwrap(), want, "{s:?}");
    }
}

#[test]
fn word_test_finds_exactly_the_bytes_to_escape() {
    let escape = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    // One interesting byte in a word of otherwise arbitrary bytes, at every position.
    let mut rng = Rng(7);
    for _ in 0..200_000 {
        let mut w = [0u8; 8];
        for b in &mut w {
            *b = match rng.below(4) {
                0 => *rng.pick(&[0x00, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d]),
                1 => 0x80 | rng.next() as u8,
                _ => rng.next() as u8,
            };
        }
        assert_eq!(
            word_needs_escape(u64::from_ne_bytes(w)),
            w.iter().any(|&b| escape(b)),
            "{w:02x?}"
        );
    }
    for b in 0..=255u8 {
        for at in 0..8 {
            let mut w = [b'a'; 8];
            w[at] = b;
            assert_eq!(
                word_needs_escape(u64::from_ne_bytes(w)),
                escape(b),
                "{b:#x}"
            );
            let mut w = [0xffu8; 8];
            w[at] = b;
            assert_eq!(
                word_needs_escape(u64::from_ne_bytes(w)),
                escape(b),
                "{b:#x}"
            );
        }
    }
}

#[test]
fn addresses_match_display() {
    let check = |ip: IpAddr| {
        let mut out = Vec::new();
        push_ip(&mut out, ip);
        assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
    };
    for o in 0..=255u8 {
        check(IpAddr::V4(Ipv4Addr::new(o, 0, 255, o)));
        check(IpAddr::V4(Ipv4Addr::new(9, o, o, 100)));
    }
    for a in [
        "::",
        "::1",
        "1::",
        "::ffff:0.0.0.0",
        "::ffff:10.1.2.3",
        "::1.2.3.4",
        "::ffff:0:1.2.3.4",
        "64:ff9b::1.2.3.4",
        "fe80::1:0:0:1",
        "1:0:0:1:0:0:0:1",
        "1:0:0:0:1:0:0:1",
        "0:1:0:1:0:1:0:1",
        "1111:2222:3333:4444:5555:7777::",
        "2001:db8::8:800:200c:417a",
    ] {
        check(a.parse().unwrap());
    }
    // Every pattern of zero and non-zero groups.
    let mut rng = Rng(1);
    for mask in 0..=255u32 {
        for _ in 0..8 {
            let mut seg = [0u16; 8];
            for (i, s) in seg.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *s = match rng.below(3) {
                        0 => 1 + rng.below(15) as u16,
                        1 => 0x100 + rng.below(0xf00) as u16,
                        _ => rng.u16().max(1),
                    };
                }
            }
            check(IpAddr::V6(Ipv6Addr::from(seg)));
        }
    }
    for _ in 0..50_000 {
        let ip = rng.ip();
        check(ip);
    }
}

#[test]
fn timestamps_match_reference() {
    let mut rng = Rng(3);
    let check = |ts: u64| {
        let mut out = b"x".to_vec();
        push_ts(&mut out, ts);
        let want = reference::format_ts(ts);
        assert_eq!(String::from_utf8(out).unwrap(), format!("x{want}"), "{ts}");
        assert_eq!(format_ts(ts), want, "{ts}");
    };
    for ts in [
        0,
        1,
        999_999,
        1_000_000,
        1_710_770_531_204_113,
        253_402_300_799_999_999,
        253_402_300_800_000_000,
        u64::MAX,
        i64::MAX as u64,
        (i64::MAX as u64) + 1,
    ] {
        check(ts);
    }
    for _ in 0..20_000 {
        let ts = rng.next() >> rng.below(64);
        check(ts);
        check(ts + 1);
    }
}

#[test]
fn envelope_matches_reference() {
    let kind = || Kind::Dns(Box::default());
    let addrs: Vec<IpAddr> = [
        "10.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:192.0.2.1",
        "2001:db8::1",
        "fe80::1ff:fe23:4567:890a",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    // Flow ids from the top of the range: no other test uses them (the Community ID cache is per
    // thread and a flow id must always name the same flow).
    let mut flow_id = u64::MAX;
    for &src in &addrs {
        for &dst in &addrs {
            for vlan_len in 0..=4 {
                for tunnel in [
                    None,
                    Some(Tunnel {
                        kind: TunnelKind::Vxlan,
                        src: dst,
                        dst: src,
                        depth: 2,
                    }),
                ] {
                    for proto in [6, 17, 1, 58, 132, 99] {
                        let meta = Meta {
                            flow_id,
                            src,
                            dst,
                            proto,
                            vlan: [0, 4095, 100],
                            vlan_len,
                            tunnel,
                            ..fixed_meta()
                        };
                        assert_same(&Event { meta, kind: kind() });
                        flow_id -= 1;
                    }
                }
            }
        }
    }
}

#[test]
fn dns_field_combinations_match_reference() {
    let answer = |rdata| dns::Answer {
        rrname: "a\"b.example",
        rrtype: 5,
        ttl: 300,
        rdata,
    };
    for mask in 0..1u32 << 11 {
        let bit = |i: u32| mask & (1 << i) != 0;
        let rdata = if bit(9) { Some("x\\y\n") } else { None };
        let d = dns::Message {
            id: mask as u16,
            flags: (mask as u16).wrapping_mul(0x1235),
            opcode: (mask % 16) as u8,
            qr: bit(0),
            aa: bit(1),
            tc: bit(2),
            rd: bit(3),
            ra: bit(4),
            rcode: if bit(10) { 3 } else { 4000 },
            sections: dns::Sections::new(
                [
                    bit(5).then_some(dns::Query {
                        rrname: "q.example",
                        rrtype: 1,
                    }),
                    bit(8).then_some(dns::Query {
                        rrname: "",
                        rrtype: 65280,
                    }),
                ]
                .into_iter()
                .flatten(),
                if bit(6) {
                    vec![answer(rdata), answer(None)]
                } else {
                    Vec::new()
                },
                if bit(7) {
                    vec![answer(rdata)]
                } else {
                    Vec::new()
                },
            ),
            ..Default::default()
        };
        assert_same(&event(Kind::Dns(Box::new(d))));
    }
}

#[test]
fn every_rrtype_rcode_version_and_cipher_matches_reference() {
    for v in 0..=u16::MAX {
        let d = dns::Message {
            qr: true,
            rcode: v,
            flags: v,
            sections: dns::Sections::new(
                [dns::Query {
                    rrname: "q",
                    rrtype: v,
                }],
                [dns::Answer {
                    rrname: "a",
                    rrtype: v,
                    ttl: u32::from(v),
                    rdata: None,
                }],
                [],
            ),
            ..Default::default()
        };
        assert_same(&event(Kind::Dns(Box::new(d))));
        let hello = tls::ClientHello {
            legacy_version: v,
            sni: None,
            alpns: Vec::new(),
            supported_versions: Vec::new(),
            ja3: String::new(),
            ja3_hash: String::new(),
            ja4: String::new(),
            anomaly: None,
        };
        let server = tls::ServerHello {
            version: v,
            cipher: v,
            hello_retry: false,
            anomaly: None,
        };
        assert_same(&event(Kind::Tls(Box::new(TlsEvent {
            hello: hello.clone(),
            server: None,
        }))));
        assert_same(&event(Kind::Tls(Box::new(TlsEvent {
            hello,
            server: Some(server),
        }))));
    }
}

#[test]
fn tls_field_combinations_match_reference() {
    for mask in 0..1u32 << 6 {
        let bit = |i: u32| mask & (1 << i) != 0;
        let hello = tls::ClientHello {
            legacy_version: 0x0303,
            sni: bit(0).then(|| "www.\"example\".com\u{1}".to_string()),
            alpns: match mask >> 4 {
                0 => Vec::new(),
                1 => vec!["h2".into()],
                2 => vec!["h2".into(), "http/1.1".into(), String::new()],
                _ => vec!["\\\u{0}".into()],
            },
            supported_versions: if bit(1) {
                vec![0x0303, 0x0304, 0x7f17]
            } else {
                Vec::new()
            },
            ja3: "771,4865-4866,0-23,29,0".into(),
            ja3_hash: if bit(3) {
                String::new()
            } else {
                "3faa4ad39f690c4ef1c3160caa375465".into()
            },
            ja4: "t13d1516h2_8daaf6152771_b0da82dd1658".into(),
            anomaly: None,
        };
        let server = bit(2).then_some(tls::ServerHello {
            version: 0x0304,
            cipher: 0x1301,
            hello_retry: false,
            anomaly: None,
        });
        assert_same(&event(Kind::Tls(Box::new(TlsEvent { hello, server }))));
    }
}

#[test]
fn http_field_combinations_match_reference() {
    for mask in 0..1u32 << 11 {
        let bit = |i: u32| mask & (1 << i) != 0;
        let s = |i: u32, v: &str| bit(i).then(|| v.to_string());
        let request = http::Request {
            method: "GET".into(),
            uri: "/a?b=\"c\"&d=\\e\u{7f}".into(),
            protocol: "HTTP/1.1".into(),
            host: s(0, "example.com:8080"),
            user_agent: s(1, "Mozilla/5.0 (\u{1b}[31m)"),
            referer: s(2, "http://r.example/é"),
            content_type: s(3, "text/plain"),
            content_length: bit(3).then_some(17),
            xff: s(4, "10.0.0.1, 10.0.0.2"),
            ..Default::default()
        };
        let response = bit(5).then(|| http::Response {
            status: if bit(9) { 200 } else { 999 },
            protocol: "HTTP/1.0".into(),
            content_type: s(6, "text/html; charset=\"utf-8\""),
            content_length: bit(7).then_some(if bit(10) { 0 } else { u64::MAX }),
            location: s(8, "/next\t"),
            ..Default::default()
        });
        assert_same(&event(Kind::Http(Box::new(HttpEvent {
            request,
            response,
        }))));
    }
}

#[test]
fn random_events_match_reference() {
    let mut rng = Rng(0x00c0_ffee);
    // Lines are appended to one buffer, as the output thread does between flushes.
    let (mut new, mut old) = (Vec::new(), Vec::new());
    // A flow id always names the same flow (as the flow table guarantees); a quarter of the
    // events belong to an earlier flow, in either direction, so the Community ID cache both
    // hits and misses.
    let mut flows: Vec<Meta> = Vec::new();
    // 42 is the flow of `fixed_meta`.
    let mut ids = std::collections::HashSet::from([42]);
    for i in 0..30_000 {
        let mut meta = rng.meta();
        if !flows.is_empty() && rng.chance(4) {
            let f = &flows[rng.below(flows.len() as u64) as usize];
            meta.flow_id = f.flow_id;
            meta.proto = f.proto;
            (meta.src, meta.src_port, meta.dst, meta.dst_port) = if rng.chance(2) {
                (f.src, f.src_port, f.dst, f.dst_port)
            } else {
                (f.dst, f.dst_port, f.src, f.src_port)
            };
        } else {
            while !ids.insert(meta.flow_id) {
                meta.flow_id = rng.next() >> rng.below(64).max(1);
            }
            flows.push(meta.clone());
        }
        let ev = Event {
            meta,
            kind: rng.kind(),
        };
        assert_same(&ev);
        write_eve(&ev, &mut new);
        reference::write_eve(&ev, &mut old);
        if i % 64 == 63 {
            assert_eq!(new, old);
            new.clear();
            old.clear();
        }
    }
    assert_eq!(new, old);
}

#[test]
fn hex_groups_match_format() {
    for g in 0..=u16::MAX {
        let (text, len) = hex_group(g);
        assert_eq!(&text[..len], format!("{g:x}").as_bytes(), "{g:#x}");
    }
}
