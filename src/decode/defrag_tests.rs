//! Unit tests of `defrag`, compiled only as its `#[cfg(test)]` module (see defrag.rs).
//! Reassembly tests: in order, reversed, overlapping, timeouts, caps; IPv4 and IPv6.

use super::super::net::{L4, decode, decode_l4};
use super::*;
use crate::testutil::Rng;

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];
const A6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn ipv4_frag(id: u16, offset: u16, more: bool, data: &[u8]) -> Vec<u8> {
    let total = (20 + data.len()) as u16;
    let fo = (offset / 8) | if more { 0x2000 } else { 0 };
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&fo.to_be_bytes());
    v.extend_from_slice(&[64, 17, 0, 0]);
    v.extend_from_slice(&A);
    v.extend_from_slice(&B);
    v.extend_from_slice(data);
    v
}

fn ipv6_frag(id: u32, offset: u16, more: bool, data: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[44, 64]);
    v.extend_from_slice(&A6);
    v.extend_from_slice(&B6);
    let fo = offset | u16::from(more);
    v.extend_from_slice(&[17, 0]);
    v.extend_from_slice(&fo.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// A UDP datagram 1111 -> 53 with a 40-byte payload (48 bytes in all).
fn datagram() -> Vec<u8> {
    let payload: Vec<u8> = (0..40u8).collect();
    let mut v = vec![0x04, 0x57, 0, 53, 0, 48, 0, 0];
    v.extend_from_slice(&payload);
    v
}

/// Split into 16-byte fragments: (offset, more, data).
fn pieces(d: &[u8]) -> Vec<(u16, bool, Vec<u8>)> {
    let n = d.len().div_ceil(16);
    d.chunks(16)
        .enumerate()
        .map(|(i, c)| ((i * 16) as u16, i + 1 < n, c.to_vec()))
        .collect()
}

fn push_raw(df: &mut Defrag, ts: u64, pkt: &[u8]) -> Option<Vec<u8>> {
    let f = decode(101, pkt).expect("decodes");
    assert!(f.frag.is_some());
    df.push(ts, &f)
}

fn check_udp(out: &[u8]) {
    match decode_l4(17, out) {
        L4::Udp(u) => {
            assert_eq!((u.src_port, u.dst_port), (1111, 53));
            assert_eq!(u.payload, (0..40u8).collect::<Vec<_>>().as_slice());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ipv4_in_order_and_reversed() {
    let d = datagram();
    for reverse in [false, true] {
        let mut df = Defrag::new(Limits::default());
        let mut p = pieces(&d);
        if reverse {
            p.reverse();
        }
        let last = p.len() - 1;
        for (i, (off, more, data)) in p.iter().enumerate() {
            let out = push_raw(&mut df, 1_000, &ipv4_frag(7, *off, *more, data));
            if i < last {
                assert!(out.is_none());
            } else {
                let out = out.expect("complete");
                assert_eq!(out, d);
                check_udp(&out);
            }
        }
        let s = df.stats();
        assert_eq!(
            (s.reassembled, s.in_flight, s.bytes, s.overlaps, s.invalid),
            (1, 0, 0, 0, 0)
        );
    }
}

#[test]
fn ipv6_in_order_and_reversed() {
    let d = datagram();
    for reverse in [false, true] {
        let mut df = Defrag::new(Limits::default());
        let mut p = pieces(&d);
        if reverse {
            p.reverse();
        }
        let mut got = None;
        for (off, more, data) in &p {
            let pkt = ipv6_frag(0xdead_beef, *off, *more, data);
            let f = decode(229, &pkt).unwrap();
            assert_eq!(f.frag.map(|f| f.id), Some(0xdead_beef));
            assert_eq!(f.proto, 17);
            got = df.push(5, &f).or(got);
        }
        let out = got.expect("complete");
        assert_eq!(out, d);
        check_udp(&out);
    }
}

#[test]
fn overlapping_fragments_first_wins() {
    let d = datagram();
    let mut df = Defrag::new(Limits::default());
    // 0..16 original, then a forged 8..24 with 0xff, then 16..32 original, then the rest.
    assert!(push_raw(&mut df, 1, &ipv4_frag(9, 0, true, &d[..16])).is_none());
    assert!(push_raw(&mut df, 1, &ipv4_frag(9, 8, true, &[0xff; 16])).is_none());
    assert!(push_raw(&mut df, 1, &ipv4_frag(9, 16, true, &d[16..32])).is_none());
    let out = push_raw(&mut df, 1, &ipv4_frag(9, 32, false, &d[32..])).expect("complete");
    let mut expect = d.clone();
    expect[16..24].copy_from_slice(&[0xff; 8]); // forged bytes 16..24 arrived first
    assert_eq!(out, expect);
    assert_eq!(df.stats().overlaps, 2);
    // Exact duplicate of a whole datagram's first piece: counted, harmless.
    let mut df = Defrag::new(Limits::default());
    assert!(push_raw(&mut df, 1, &ipv4_frag(9, 0, true, &d[..16])).is_none());
    assert!(push_raw(&mut df, 1, &ipv4_frag(9, 0, true, &[0; 16])).is_none());
    assert!(push_raw(&mut df, 1, &ipv4_frag(9, 16, false, &d[16..])).is_some_and(|o| o == d));
    assert_eq!(df.stats().overlaps, 1);
}

#[test]
fn conflicting_end_and_bad_lengths_are_invalid() {
    let mut df = Defrag::new(Limits::default());
    assert!(push_raw(&mut df, 1, &ipv4_frag(3, 32, false, &[1; 8])).is_none());
    assert!(push_raw(&mut df, 1, &ipv4_frag(3, 48, false, &[1; 8])).is_none()); // second end
    assert!(push_raw(&mut df, 1, &ipv4_frag(3, 64, true, &[1; 8])).is_none()); // past the end
    assert!(push_raw(&mut df, 1, &ipv4_frag(4, 0, true, &[1; 7])).is_none()); // not 8-aligned
    assert!(push_raw(&mut df, 1, &ipv4_frag(5, 65528, false, &[1; 16])).is_none()); // > 65535
    assert_eq!(df.stats().invalid, 4);
}

#[test]
fn timeout_by_packet_time() {
    let d = datagram();
    let lim = Limits {
        timeout_us: 30_000_000,
        ..Limits::default()
    };
    let mut df = Defrag::new(lim);
    assert!(push_raw(&mut df, 0, &ipv4_frag(1, 0, true, &d[..16])).is_none());
    assert!(push_raw(&mut df, 0, &ipv4_frag(2, 0, true, &d[..16])).is_none());
    df.expire(29_000_000);
    assert_eq!(df.stats().in_flight, 2);
    // The last piece of datagram 1 arrives too late: the old pieces are gone.
    assert!(push_raw(&mut df, 31_000_000, &ipv4_frag(1, 16, false, &d[16..])).is_none());
    df.expire(31_000_000);
    let s = df.stats();
    assert_eq!((s.timeouts, s.in_flight, s.reassembled), (2, 1, 0));
    df.expire(62_000_000);
    assert_eq!(
        (df.stats().timeouts, df.stats().in_flight, df.stats().bytes),
        (3, 0, 0)
    );
}

#[test]
fn cap_eviction_of_oldest() {
    let d = datagram();
    let lim = Limits {
        max_datagrams: 2,
        ..Limits::default()
    };
    let mut df = Defrag::new(lim);
    for id in 1..=3u16 {
        assert!(push_raw(&mut df, 1, &ipv4_frag(id, 0, true, &d[..16])).is_none());
    }
    assert_eq!((df.stats().evicted, df.stats().in_flight), (1, 2));
    // Datagram 1 was evicted, 3 completes.
    assert!(push_raw(&mut df, 1, &ipv4_frag(1, 16, false, &d[16..])).is_none());
    assert!(push_raw(&mut df, 1, &ipv4_frag(3, 16, false, &d[16..])).is_some_and(|o| o == d));
    assert_eq!(df.stats().evicted, 2); // re-admitting 1 evicted 2
}

#[test]
fn byte_cap_and_fragment_cap() {
    let lim = Limits {
        max_bytes: 64,
        ..Limits::default()
    };
    let mut df = Defrag::new(lim);
    assert!(push_raw(&mut df, 1, &ipv4_frag(1, 0, true, &[0; 48])).is_none());
    assert!(push_raw(&mut df, 1, &ipv4_frag(2, 0, true, &[0; 48])).is_none());
    let s = df.stats();
    assert_eq!((s.evicted, s.in_flight, s.bytes), (1, 1, 48));
    let lim = Limits {
        max_fragments: 4,
        ..Limits::default()
    };
    let mut df = Defrag::new(lim);
    for i in 0..5u16 {
        assert!(push_raw(&mut df, 1, &ipv4_frag(1, i * 8, true, &[0; 8])).is_none());
    }
    assert_eq!((df.stats().invalid, df.stats().in_flight), (1, 0));
}

#[test]
fn non_fragments_are_ignored() {
    let mut df = Defrag::new(Limits::default());
    let pkt = ipv4_frag(1, 0, false, &[0x04, 0x57, 0, 53, 0, 8, 0, 0]);
    let f = decode(101, &pkt).unwrap();
    assert_eq!(f.frag, None);
    assert!(df.push(1, &f).is_none());
    assert_eq!(df.stats().fragments, 0);
}

#[test]
fn random_fragment_storm_stays_bounded() {
    let lim = Limits {
        max_datagrams: 64,
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let mut df = Defrag::new(lim);
    let mut rng = Rng(42);
    let data = [0xabu8; 1480];
    for i in 0..100_000u64 {
        let id = (rng.next() % 200) as u16;
        let off = (rng.next() % 8192) as u16 & !7;
        let len = (rng.next() % 1480) as usize;
        let more = !rng.next().is_multiple_of(4);
        let len = if more { len & !7 } else { len };
        let pkt = ipv4_frag(id, off, more, &data[..len]);
        if let Ok(f) = decode(101, &pkt) {
            let _ = df.push(i * 1000, &f);
        }
        if i % 1000 == 0 {
            df.expire(i * 1000);
        }
        let s = df.stats();
        assert!(s.in_flight <= 64 && s.bytes <= 1 << 20);
    }
    let s = df.stats();
    assert!(s.fragments > 50_000);
    assert!(s.evicted + s.timeouts + s.reassembled > 0, "{s:?}");
}
