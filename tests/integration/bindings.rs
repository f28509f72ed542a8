//! DHCP and Kerberos decoders against tshark on the recorded captures (`captures/dhcp.pcap`,
//! `captures/kerberos.pcap`, made by `captures/record-bindings.sh`, which also writes tshark's
//! reading as `captures/*.tshark.tsv`).
//! Every frame is compared field by field, and the DHCP bindings a user would see are
//! listed. `CROSSWIRE_BINDING_CAPTURES=dir` checks a fresh recording instead.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crosswire::decode::{dhcp, krb5};

/// Transport payloads of an Ethernet / IPv4 classic pcap, with their frame numbers and
/// whether they came over TCP.
fn payloads(name: &str) -> Vec<(usize, bool, Vec<u8>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name);
    let data = std::fs::read(&path).unwrap();
    assert_eq!(
        &data[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian usec pcap"
    );
    assert_eq!(
        u32::from_le_bytes(data[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let mut out = Vec::new();
    let mut at = 24;
    let mut frame = 0;
    while at + 16 <= data.len() {
        frame += 1;
        let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let pkt = &data[at + 16..at + 16 + caplen];
        at += 16 + caplen;
        assert_eq!(&pkt[12..14], &[0x08, 0x00], "IPv4 only");
        let ip = &pkt[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let l4 = &ip[ihl..total];
        let (tcp, payload) = match ip[9] {
            17 => (false, &l4[8..]),
            6 => (true, &l4[usize::from(l4[12] >> 4) * 4..]),
            p => panic!("protocol {p}"),
        };
        out.push((frame, tcp, payload.to_vec()));
    }
    out
}

fn oracle(name: &str) -> Vec<Vec<String>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

fn lossy(b: Option<&[u8]>) -> String {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn join(parts: impl Iterator<Item = String>, sep: &str) -> String {
    parts.collect::<Vec<_>>().join(sep)
}

#[test]
fn dhcp_agrees_with_tshark() {
    let expected = oracle("dhcp.tshark.tsv");
    let packets = payloads("dhcp.pcap");
    assert_eq!(packets.len(), expected.len());
    let mut bindings = Vec::new();
    for ((frame, _, payload), want) in packets.iter().zip(&expected) {
        let m = dhcp::parse(payload).unwrap();
        let mac = m
            .mac()
            .map(|m| join(m.iter().map(|b| format!("{b:02x}")), ":"));
        let fqdn = m.client_fqdn.map(|f| {
            join(
                f.labels().map(|l| String::from_utf8_lossy(l).into_owned()),
                ".",
            )
        });
        let got = vec![
            frame.to_string(),
            opt(m.message_type.map(dhcp::MessageType::value)),
            opt(mac),
            lossy(m.hostname),
            opt(m.requested_ip),
            m.yiaddr.to_string(),
            m.ciaddr.to_string(),
            opt(m.server_id),
            opt(m.lease_time),
            lossy(m.vendor_class),
            opt(fqdn),
        ];
        assert_eq!(&got, want, "frame {frame}");
        assert!(m.events.is_empty(), "frame {frame}: {:?}", m.events);
        if let Some((ip, mac, host)) = m.binding() {
            bindings.push((
                m.message_type.map(dhcp::MessageType::name),
                ip,
                mac[5],
                lossy(host),
            ));
        }
    }
    let ip = |n| Ipv4Addr::new(10, 99, 0, n);
    let (req, ack) = (Some("request"), Some("ack"));
    let (h23, h24) = (String::from("wks-023"), String::from("wks-024"));
    // DISCOVER, OFFER and RELEASE bind nothing; the renewing REQUEST binds its ciaddr.
    // dnsmasq derives the address from the MAC, so a new recording gives the same list.
    assert_eq!(
        bindings,
        [
            (req, ip(71), 0x23, h23.clone()),
            (ack, ip(71), 0x23, h23.clone()),
            (req, ip(71), 0x23, h23.clone()),
            (ack, ip(71), 0x23, h23),
            (req, ip(72), 0x24, h24.clone()),
            (ack, ip(72), 0x24, h24),
        ]
    );
}

#[test]
fn kerberos_agrees_with_tshark() {
    let expected = oracle("kerberos.tshark.tsv");
    let packets = payloads("kerberos.pcap");
    assert_eq!(packets.len(), expected.len());
    let mut decoded = 0;
    for ((frame, tcp, payload), want) in packets.iter().zip(&expected) {
        if payload.is_empty() {
            assert_eq!(want[1], "", "frame {frame}");
            continue;
        }
        let m = krb5::parse(payload, *tcp).unwrap();
        decoded += 1;
        assert!(m.events.is_empty(), "frame {frame}: {:?}", m.events);
        let lossy_all = |name: Option<krb5::PrincipalName<'_>>| {
            opt(name.map(|n| {
                join(
                    n.components()
                        .map(|c| String::from_utf8_lossy(c).into_owned()),
                    ",",
                )
            }))
        };
        // tshark also lists the names inside a TGS-REQ's PA-TGS-REQ ticket (before the
        // req-body), so realm is compared with its last value and sname with its tail.
        let msg_type = want[1].split(',').next().unwrap();
        let realm = want[5].rsplit(',').next().unwrap();
        assert_eq!(m.msg_type.value().to_string(), msg_type, "frame {frame}");
        assert_eq!(opt(m.error_code.map(|c| c.0)), want[2], "frame {frame}");
        assert_eq!(lossy_all(m.cname), want[3], "frame {frame}");
        assert_eq!(lossy(m.crealm), want[4], "frame {frame}");
        assert_eq!(lossy(m.realm), realm, "frame {frame}");
        let sname = lossy_all(m.sname);
        assert!(
            !sname.is_empty() && want[6].ends_with(&sname),
            "frame {frame}"
        );
        // KRB-ERROR PA-DATA sits in e-data, which is not decoded.
        if m.msg_type != krb5::MsgType::Error {
            let padata = join(m.padata().map(|p| p.kind.to_string()), ",");
            assert_eq!(padata, want[7], "frame {frame}");
        }
        assert_eq!(join(m.etypes().map(|e| e.to_string()), ","), want[8]);
    }
    assert_eq!(decoded, 12);
}
