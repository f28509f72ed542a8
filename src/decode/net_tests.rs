//! Unit tests of `net`, compiled only as its `#[cfg(test)]` module (see net.rs).
//! Byte-array fixtures for every link type, L2.5 header and tunnel, plus truncation and
//! pseudo-random robustness runs.

use super::*;
use crate::testutil::Rng;
use std::net::{Ipv4Addr, Ipv6Addr};

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];
const C: [u8; 4] = [192, 168, 1, 1];
const D: [u8; 4] = [192, 168, 1, 2];
const A6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const MAC: [u8; 12] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
const SNAP_IP4: [u8; 8] = [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];

pub(super) fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    ipv4_frag(proto, src, dst, 0x1234, 0, false, payload)
}

pub(super) fn ipv4_frag(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    offset: u16,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let fo = (offset / 8) | if more { 0x2000 } else { 0 };
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&fo.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(payload);
    v
}

pub(super) fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next, 64]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(payload);
    v
}

pub(super) fn udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sp.to_be_bytes());
    v.extend_from_slice(&dp.to_be_bytes());
    v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

pub(super) fn tcp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sp.to_be_bytes());
    v.extend_from_slice(&dp.to_be_bytes());
    v.extend_from_slice(&1000u32.to_be_bytes());
    v.extend_from_slice(&2000u32.to_be_bytes());
    v.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    v.extend_from_slice(payload);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[&MAC, &ethertype.to_be_bytes(), payload])
}

/// Inner packet used in tunnels: IPv4 C -> D, TCP 1234 -> 80, "GET".
fn inner_tcp4() -> Vec<u8> {
    ipv4(6, C, D, &tcp(1234, 80, b"GET"))
}

fn ip4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn ip6(a: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
}

/// Assert the innermost packet is C -> D TCP 1234 -> 80 with payload "GET".
fn assert_inner(f: &Frame<'_>) {
    assert_eq!((f.src, f.dst, f.proto), (ip4(C), ip4(D), 6), "{f:?}");
    match f.l4 {
        L4::Tcp(t) => {
            assert_eq!(
                (t.src_port, t.dst_port, t.seq, t.ack, t.flags),
                (1234, 80, 1000, 2000, 0x18)
            );
            assert_eq!(t.payload, b"GET");
        }
        other => panic!("not tcp: {other:?}"),
    }
    assert_eq!(f.inner_error, None);
}

fn assert_tunnel(f: &Frame<'_>, kind: TunnelKind, depth: u8) {
    let t = f.tunnel.expect("tunnel");
    assert_eq!((t.kind, t.depth), (kind, depth), "{f:?}");
    if kind.has_ip() {
        assert_eq!((t.src, t.dst), (ip4(A), ip4(B)));
    }
}

/// Outer IPv4 A -> B carrying UDP sp -> dp with `payload`, in Ethernet.
fn eth_udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    eth(0x0800, &ipv4(17, A, B, &udp(sp, dp, payload)))
}

fn wifi_data(qos: bool, four_addr: bool, htc: bool, body: &[u8]) -> Vec<u8> {
    let subtype: u8 = if qos { 8 } else { 0 };
    let fc0 = (subtype << 4) | (2 << 2);
    let mut fc1 = if four_addr { 0x03 } else { 0x01 };
    if htc {
        fc1 |= 0x80;
    }
    let mut v = vec![fc0, fc1, 0, 0];
    v.extend_from_slice(&[0x11; 18]);
    v.extend_from_slice(&[0, 0]);
    if four_addr {
        v.extend_from_slice(&[0x22; 6]);
    }
    if qos {
        v.extend_from_slice(&[0, 0]);
    }
    if htc {
        v.extend_from_slice(&[0; 4]);
    }
    v.extend_from_slice(body);
    v
}

/// Every fixture: (link type, bytes). Each decodes to the inner TCP packet.
pub(super) fn fixtures() -> Vec<(i32, Vec<u8>)> {
    let inner = inner_tcp4();
    let inner_eth = eth(0x0800, &inner);
    let mut v = vec![
        (1, eth(0x0800, &inner)),
        (0, cat(&[&2u32.to_le_bytes(), &inner])),
        (0, cat(&[&2u32.to_be_bytes(), &inner])),
        (108, cat(&[&2u32.to_be_bytes(), &inner])),
        (10, cat(&[&[0x50], &MAC, &SNAP_IP4, &inner])),
        (12, inner.clone()),
        (14, inner.clone()),
        (101, inner.clone()),
        (228, inner.clone()),
        (
            113,
            cat(&[
                &[0, 0, 0, 1, 0, 6],
                &[1, 2, 3, 4, 5, 6, 0, 0],
                &[0x08, 0x00],
                &inner,
            ]),
        ),
        (
            276,
            cat(&[
                &[0x08, 0x00, 0, 0],
                &[0, 0, 0, 2],
                &[0, 1, 0, 6],
                &[1, 2, 3, 4, 5, 6, 0, 0],
                &inner,
            ]),
        ),
        // NFLOG: header, a prefix TLV (type 10, "ab" padded), then the payload TLV (type 9).
        (239, {
            let mut n = vec![2, 0, 0, 0, 6, 0, 10, 0, b'a', b'b', 0, 0];
            n.extend_from_slice(&((4 + inner.len()) as u16).to_le_bytes());
            n.extend_from_slice(&[9, 0]);
            n.extend_from_slice(&inner);
            n
        }),
        (
            105,
            wifi_data(false, false, false, &cat(&[&SNAP_IP4, &inner])),
        ),
        (105, wifi_data(true, true, true, &cat(&[&SNAP_IP4, &inner]))),
        (
            127,
            cat(&[
                &[0, 0, 12, 0, 0x04, 0, 0, 0, 0x10, 0, 0, 0],
                &wifi_data(true, false, false, &cat(&[&SNAP_IP4, &inner])),
            ]),
        ),
        // 802.3 length + LLC/SNAP in Ethernet.
        (
            1,
            cat(&[
                &MAC,
                &((8 + inner.len()) as u16).to_be_bytes(),
                &SNAP_IP4,
                &inner,
            ]),
        ),
        // VLAN, QinQ.
        (1, eth(0x8100, &cat(&[&[0x00, 0x64, 0x08, 0x00], &inner]))),
        (
            1,
            eth(
                0x88a8,
                &cat(&[&[0x00, 0x0a, 0x81, 0x00], &[0x00, 0x14, 0x08, 0x00], &inner]),
            ),
        ),
        // MPLS two labels; MPLS pseudowire with control word.
        (
            1,
            eth(
                0x8847,
                &cat(&[&[0, 0x01, 0x00, 64], &[0, 0x02, 0x01, 64], &inner]),
            ),
        ),
        (
            1,
            eth(
                0x8847,
                &cat(&[&[0, 0x01, 0x01, 64], &[0, 0, 0, 0], &inner_eth]),
            ),
        ),
        // PPPoE session.
        (
            1,
            eth(
                0x8864,
                &cat(&[
                    &[0x11, 0, 0, 1],
                    &((2 + inner.len()) as u16).to_be_bytes(),
                    &[0, 0x21],
                    &inner,
                ]),
            ),
        ),
    ];
    // Tunnels with outer IPv4 A -> B.
    let gre = |hdr: &[u8], body: &[u8]| eth(0x0800, &ipv4(47, A, B, &cat(&[hdr, body])));
    v.push((1, gre(&[0, 0, 0x08, 0x00], &inner)));
    v.push((
        1,
        gre(
            &[0xb0, 0, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1],
            &inner,
        ),
    ));
    v.push((1, gre(&[0, 0, 0x65, 0x58], &inner_eth)));
    v.push((
        1,
        gre(
            &[0x10, 0, 0x88, 0xbe, 0, 0, 0, 1],
            &cat(&[&[0x10, 0, 0, 1, 0, 0, 0, 0], &inner_eth]),
        ),
    ));
    v.push((1, gre(&[0, 0, 0x88, 0xbe], &inner_eth)));
    v.push((
        1,
        gre(
            &[0, 0, 0x22, 0xeb],
            &cat(&[
                &[0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
                &[0; 8],
                &inner_eth,
            ]),
        ),
    ));
    v.push((
        1,
        gre(
            &[0, 0, 0x82, 0x00],
            &wifi_data(true, false, false, &cat(&[&SNAP_IP4, &inner])),
        ),
    ));
    v.push((
        1,
        gre(&[0, 0, 0x88, 0x47], &cat(&[&[0, 0x01, 0x01, 64], &inner])),
    ));
    v.push((
        1,
        eth_udp(
            5000,
            4789,
            &cat(&[&[0x08, 0, 0, 0, 0, 0, 1, 0], &inner_eth]),
        ),
    ));
    v.push((
        1,
        eth_udp(
            5000,
            6081,
            &cat(&[
                &[0x01, 0, 0x65, 0x58, 0, 0, 1, 0],
                &[0, 1, 2, 3],
                &inner_eth,
            ]),
        ),
    ));
    v.push((
        1,
        eth_udp(
            2152,
            2152,
            &cat(&[
                &[0x30, 0xff],
                &(inner.len() as u16).to_be_bytes(),
                &[0, 0, 0, 1],
                &inner,
            ]),
        ),
    ));
    // GTP-U with sequence number and one extension header (PDU session container).
    v.push((
        1,
        eth_udp(
            2152,
            2152,
            &cat(&[
                &[0x36, 0xff, 0, 0, 0, 0, 0, 1],
                &[0, 1, 0, 0x85],
                &[1, 0x10, 0x09, 0],
                &inner,
            ]),
        ),
    ));
    v.push((1, eth(0x0800, &ipv4(4, A, B, &inner))));
    v
}

#[test]
fn every_fixture_decodes_to_inner_tcp() {
    for (i, (lt, bytes)) in fixtures().iter().enumerate() {
        let f = decode(*lt, bytes).unwrap_or_else(|e| panic!("fixture {i} lt {lt}: {e:?}"));
        assert_inner(&f);
    }
}

#[test]
fn ethernet_ipv4_udp() {
    let pkt = eth_udp(53, 5353, b"hello");
    let f = decode(1, &pkt).unwrap();
    assert_eq!(
        (f.src, f.dst, f.proto, f.tunnel, f.frag),
        (ip4(A), ip4(B), 17, None, None)
    );
    assert_eq!(
        f.l4,
        L4::Udp(Udp {
            src_port: 53,
            dst_port: 5353,
            payload: b"hello"
        })
    );
}

#[test]
fn ethernet_trailer_is_trimmed() {
    let mut pkt = eth(0x0800, &inner_tcp4());
    pkt.extend_from_slice(&[0; 6]);
    assert_inner(&decode(1, &pkt).unwrap());
}

#[test]
fn null_ipv6_families_and_loop() {
    let inner = ipv6(17, A6, B6, &udp(1, 2, b"x"));
    for fam in [24u32, 28, 30] {
        for hdr in [fam.to_le_bytes(), fam.to_be_bytes()] {
            let pkt = cat(&[&hdr, &inner]);
            let f = decode(0, &pkt).unwrap();
            assert_eq!((f.src, f.dst, f.proto), (ip6(A6), ip6(B6), 17));
        }
    }
    assert_eq!(
        decode(0, &cat(&[&7u32.to_le_bytes(), &inner])),
        Err(Error::NotIp)
    );
    assert_eq!(decode(229, &inner).unwrap().dst, ip6(B6));
}

#[test]
fn unsupported_link_type() {
    let e = decode(9999, &[0; 64]).unwrap_err();
    assert_eq!(e, Error::UnsupportedLinkType(9999));
    assert_eq!(e.reason(), "unsupported_link_type");
    assert_eq!(decode(-1, &[]), Err(Error::UnsupportedLinkType(-1)));
}

#[test]
fn non_ip_frames() {
    assert_eq!(decode(1, &eth(0x0806, &[0; 28])), Err(Error::NotIp));
    // STP over 802.3/LLC.
    assert_eq!(
        decode(1, &cat(&[&MAC, &[0, 38], &[0x42, 0x42, 0x03], &[0; 35]])),
        Err(Error::NotIp)
    );
    // 802.11 beacon (management), null data, protected data.
    assert_eq!(
        decode(105, &cat(&[&[0x80, 0], &[0; 40]])),
        Err(Error::NotIp)
    );
    assert_eq!(
        decode(105, &cat(&[&[0x48, 0x01], &[0; 22]])),
        Err(Error::NotIp)
    );
    assert_eq!(
        decode(105, &cat(&[&[0x08, 0x41], &[0; 40]])),
        Err(Error::NotIp)
    );
    // SLL with a non-IP protocol; NFLOG without payload TLV.
    assert_eq!(
        decode(113, &cat(&[&[0; 14], &[0x88, 0xcc], &[0; 10]])),
        Err(Error::NotIp)
    );
    assert_eq!(
        decode(239, &[2, 0, 0, 0, 8, 0, 1, 0, 0, 0, 0, 0]),
        Err(Error::NotIp)
    );
    assert_eq!(decode(1, &[0; 10]), Err(Error::Truncated(Layer::Link)));
}

#[test]
fn vlan_ids_recorded_outermost_first_capped_at_three() {
    let inner = inner_tcp4();
    let tag = |id: u8, next: u16| cat(&[&[0, id], &next.to_be_bytes()]);
    let pkt = eth(
        0x88a8,
        &cat(&[
            &tag(1, 0x8100),
            &tag(2, 0x8100),
            &tag(3, 0x8100),
            &tag(4, 0x0800),
            &inner,
        ]),
    );
    let f = decode(1, &pkt).unwrap();
    assert_inner(&f);
    assert_eq!(f.vlans(), &[1, 2, 3]);
    let mut body = Vec::new();
    for _ in 0..9 {
        body.extend_from_slice(&tag(5, 0x8100));
    }
    assert_eq!(decode(1, &eth(0x8100, &body)), Err(Error::TooDeep));
}

#[test]
fn l25_tunnel_kinds() {
    let fx = fixtures();
    let mpls = decode(1, &fx[18].1).unwrap();
    assert_tunnel(&mpls, TunnelKind::Mpls, 1);
    let pppoe = decode(1, &fx[20].1).unwrap();
    assert_tunnel(&pppoe, TunnelKind::Pppoe, 1);
    assert_eq!(pppoe.tunnel.unwrap().src, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    // PPPoE over QinQ.
    let pkt = eth(
        0x8100,
        &cat(&[&[0, 7, 0x81, 0], &[0, 8, 0x88, 0x64], &fx[20].1[14..]]),
    );
    let f = decode(1, &pkt).unwrap();
    assert_inner(&f);
    assert_eq!(f.vlans(), &[7, 8]);
    // PPPoE with a non-IP PPP protocol (LCP).
    assert_eq!(
        decode(1, &eth(0x8864, &[0x11, 0, 0, 1, 0, 4, 0xc0, 0x21, 1, 1])),
        Err(Error::NotIp)
    );
}

#[test]
fn ip_tunnel_kinds_and_depth() {
    let fx = fixtures();
    let kinds = [
        TunnelKind::Gre,
        TunnelKind::Gre,
        TunnelKind::Gre,
        TunnelKind::Erspan,
        TunnelKind::Erspan,
        TunnelKind::Erspan,
        TunnelKind::Gre,
        TunnelKind::Gre,
        TunnelKind::Vxlan,
        TunnelKind::Geneve,
        TunnelKind::GtpU,
        TunnelKind::GtpU,
        TunnelKind::IpInIp,
    ];
    for (i, kind) in kinds.iter().enumerate() {
        let (lt, bytes) = &fx[21 + i];
        let f = decode(*lt, bytes).unwrap();
        assert_inner(&f);
        assert_tunnel(&f, *kind, 1);
        assert!(!kind.name().is_empty());
    }
}

#[test]
fn six_in_four_and_six_in_six_and_teredo() {
    let inner6 = ipv6(6, A6, B6, &tcp(1234, 80, b"GET"));
    let pkt = eth(0x0800, &ipv4(41, A, B, &inner6));
    let f = decode(1, &pkt).unwrap();
    assert_eq!(
        (f.src, f.dst, f.tunnel.unwrap().kind),
        (ip6(A6), ip6(B6), TunnelKind::Ipv6InIp)
    );
    let pkt = eth(0x86dd, &ipv6(41, B6, A6, &inner6));
    let f = decode(1, &pkt).unwrap();
    let t = f.tunnel.unwrap();
    assert_eq!((f.src, t.src, t.depth), (ip6(A6), ip6(B6), 1));
    // Teredo with origin indication.
    let origin = [0, 0, 0xf2, 0x27, 0x3f, 0xff, 0xff, 0xfe];
    let pkt = eth_udp(3544, 40000, &cat(&[&origin, &inner6]));
    let f = decode(1, &pkt).unwrap();
    assert_eq!(
        (f.src, f.tunnel.unwrap().kind),
        (ip6(A6), TunnelKind::Teredo)
    );
    assert!(matches!(f.l4, L4::Tcp(t) if t.payload == b"GET"));
    // Teredo with authentication indicator (id len 2, auth len 1).
    let auth = [0, 1, 2, 1, 9, 9, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let pkt = eth_udp(40000, 3544, &cat(&[&auth[..], &origin, &inner6]));
    let f = decode(1, &pkt).unwrap();
    assert_eq!(f.tunnel.unwrap().kind, TunnelKind::Teredo);
    // Port 3544 but not IPv6: plain UDP, no tunnel.
    let pkt = eth_udp(3544, 40000, b"not teredo at all, nope");
    let f = decode(1, &pkt).unwrap();
    assert_eq!((f.tunnel, f.inner_error), (None, None));
    assert!(matches!(f.l4, L4::Udp(u) if u.src_port == 3544));
}

#[test]
fn tunnel_inner_failure_falls_back_to_outer() {
    // VXLAN carrying ARP.
    let arp = eth(0x0806, &[0; 28]);
    let pkt = eth_udp(5000, 4789, &cat(&[&[0x08, 0, 0, 0, 0, 0, 1, 0], &arp]));
    let f = decode(1, &pkt).unwrap();
    assert_eq!(
        (f.src, f.inner_error, f.tunnel),
        (ip4(A), Some(Error::NotIp), None)
    );
    assert!(matches!(f.l4, L4::Udp(u) if u.dst_port == 4789));
    // VXLAN with a truncated inner Ethernet frame.
    let pkt = eth_udp(5000, 4789, &[0x08, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3]);
    let f = decode(1, &pkt).unwrap();
    assert_eq!(f.inner_error, Some(Error::Truncated(Layer::Link)));
    // VXLAN flags without I bit: not VXLAN.
    let pkt = eth_udp(5000, 4789, &[0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3]);
    let f = decode(1, &pkt).unwrap();
    assert_eq!(f.inner_error, None);
    // GRE with source routing: outer GRE packet kept.
    let pkt = eth(0x0800, &ipv4(47, A, B, &[0x40, 0, 8, 0, 0, 0, 0, 0]));
    let f = decode(1, &pkt).unwrap();
    assert_eq!(
        (f.proto, f.inner_error),
        (47, Some(Error::Malformed(Layer::Gre)))
    );
}

#[test]
fn tunnel_depth_cap_returns_deepest_allowed() {
    let mut pkt = inner_tcp4();
    for _ in 0..12 {
        pkt = ipv4(4, A, B, &pkt);
    }
    let f = decode(101, &pkt).unwrap();
    assert_eq!(f.inner_error, Some(Error::TooDeep));
    assert_eq!(f.tunnel.unwrap().depth, MAX_TUNNEL_DEPTH);
    assert_eq!(f.proto, 4);
}

#[test]
fn ipv6_extension_headers() {
    // Hop-by-hop (8 bytes) -> destination options (8 bytes) -> TCP.
    let hbh = [60, 0, 1, 4, 0, 0, 0, 0];
    let dst = [6, 0, 1, 4, 0, 0, 0, 0];
    let pkt = ipv6(0, A6, B6, &cat(&[&hbh, &dst, &tcp(1, 443, b"hi")]));
    let f = decode(229, &pkt).unwrap();
    assert_eq!(f.proto, 6);
    assert!(matches!(f.l4, L4::Tcp(t) if t.dst_port == 443 && t.payload == b"hi"));
    // Routing header type 0 with no segments left, then UDP.
    let rh = [17, 0, 0, 0, 0, 0, 0, 0];
    let pkt = ipv6(43, A6, B6, &cat(&[&rh, &udp(1, 53, b"q")]));
    let f = decode(229, &pkt).unwrap();
    assert!(matches!(f.l4, L4::Udp(u) if u.payload == b"q"));
    // Atomic fragment (offset 0, M=0) is not a fragment.
    let fh = [17, 0, 0, 0, 0, 0, 0, 9];
    let pkt = ipv6(44, A6, B6, &cat(&[&fh, &udp(1, 53, b"q")]));
    let f = decode(229, &pkt).unwrap();
    assert_eq!((f.frag, f.proto), (None, 17));
}

#[test]
fn fragments_are_reported_not_decoded() {
    let pkt = ipv4_frag(17, A, B, 77, 0, true, &udp(1, 2, &[0; 16])[..16]);
    let f = decode(101, &pkt).unwrap();
    assert_eq!(
        f.frag,
        Some(Fragment {
            id: 77,
            offset: 0,
            more: true
        })
    );
    assert!(matches!(f.l4, L4::Other(d) if d.len() == 16));
    let pkt = ipv4_frag(17, A, B, 77, 16, false, b"abc");
    let f = decode(101, &pkt).unwrap();
    assert_eq!(
        f.frag,
        Some(Fragment {
            id: 77,
            offset: 16,
            more: false
        })
    );
    // IPv6 non-first fragment whose next header is destination options: data starts right after
    // the fragment header.
    let fh = [60, 0, 0, 0x11, 0, 0, 0, 5];
    let body = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let pkt = ipv6(44, A6, B6, &cat(&[&fh, &body]));
    let f = decode(229, &pkt).unwrap();
    assert_eq!(
        f.frag,
        Some(Fragment {
            id: 5,
            offset: 16,
            more: true
        })
    );
    assert_eq!((f.proto, f.l4), (60, L4::Other(&body)));
}

#[test]
fn decode_l4_skips_extension_headers() {
    let dst = [17, 0, 1, 4, 0, 0, 0, 0];
    let p = cat(&[&dst, &udp(7, 8, b"z")]);
    assert!(matches!(decode_l4(60, &p), L4::Udp(u) if u.dst_port == 8 && u.payload == b"z"));
    assert_eq!(decode_l4(6, &[1, 2, 3]), L4::Other(&[1, 2, 3]));
    assert_eq!(decode_l4(1, &[8, 0]), L4::Other(&[8, 0]));
}

#[test]
fn decode_reassembled_unwraps_tunnels() {
    let gtp = udp(
        2152,
        2152,
        &cat(&[&[0x30, 0xff, 0, 43], &[0, 0, 0, 1], &inner_tcp4()]),
    );
    let first = ipv4_frag(17, A, B, 9, 0, true, &gtp[..24]);
    let outer = decode(101, &first).unwrap();
    let f = decode_reassembled(&outer, &gtp);
    assert_inner(&f);
    assert_tunnel(&f, TunnelKind::GtpU, 1);
}

#[test]
fn truncated_at_every_length_never_panics_and_keeps_payload_prefix() {
    for (lt, bytes) in fixtures() {
        for n in 0..=bytes.len() {
            let _ = decode(lt, &bytes[..n]);
        }
    }
    let pkt = eth(0x0800, &ipv4(6, A, B, &tcp(1, 2, b"0123456789")));
    for n in 54..pkt.len() {
        let f = decode(1, &pkt[..n]).unwrap();
        assert!(matches!(f.l4, L4::Tcp(t) if t.payload == &b"0123456789"[..n - 54]));
    }
    assert_eq!(decode(1, &pkt[..20]), Err(Error::Truncated(Layer::Ip)));
}

#[test]
fn error_reasons_are_snake_case() {
    let errs = [
        Error::NotIp,
        Error::TooDeep,
        Error::Truncated(Layer::Gtp),
        Error::Malformed(Layer::Ip),
    ];
    for e in errs {
        let r = e.reason();
        assert!(r.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{r}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn random_and_mutated_frames_never_panic() {
    let fx = fixtures();
    let link_types = [
        0, 1, 10, 12, 14, 101, 105, 108, 113, 127, 228, 229, 239, 276, 42,
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::with_capacity(2048);
    let mut ok = 0usize;
    for i in 0..300_000 {
        buf.clear();
        let lt;
        if i % 4 == 0 {
            // Pure noise under a random link type.
            lt = link_types[rng.index(link_types.len())];
            let n = rng.index(200);
            buf.extend((0..n).map(|_| rng.next() as u8));
        } else {
            // Mutated fixture: flip bytes, sometimes truncate or extend.
            let (flt, bytes) = &fx[rng.index(fx.len())];
            lt = if rng.index(10) == 0 {
                link_types[rng.index(link_types.len())]
            } else {
                *flt
            };
            buf.extend_from_slice(bytes);
            for _ in 0..1 + rng.index(4) {
                let at = rng.index(buf.len());
                buf[at] = rng.next() as u8;
            }
            match rng.index(4) {
                0 => buf.truncate(rng.index(buf.len() + 1)),
                1 => buf.extend((0..rng.index(64)).map(|_| rng.next() as u8)),
                _ => {}
            }
        }
        if let Ok(f) = decode(lt, &buf) {
            ok += 1;
            if let L4::Other(p) = f.l4 {
                let _ = decode_l4(f.proto, p);
                let _ = decode_reassembled(&f, p);
            }
        }
    }
    assert!(ok > 10_000, "only {ok} decoded");
}

/// Rough throughput check: `cargo test --release --lib -- --ignored --nocapture decode_speed`.
#[test]
#[ignore]
fn decode_speed() {
    let pkt = eth(0x0800, &ipv4(6, A, B, &tcp(1, 2, &[0u8; 512])));
    let vx = fixtures()[29].1.clone();
    for (name, p) in [("eth/ipv4/tcp", &pkt), ("vxlan", &vx)] {
        let n = 20_000_000u32;
        let t = std::time::Instant::now();
        let mut sum = 0usize;
        for _ in 0..n {
            if let Ok(Frame { l4: L4::Tcp(t), .. }) = decode(1, std::hint::black_box(p)) {
                sum += t.payload.len();
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        println!("{name}: {ns:.1} ns/packet ({:.1} Mpps) {sum}", 1000.0 / ns);
    }
}
