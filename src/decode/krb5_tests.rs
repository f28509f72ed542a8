//! Unit tests of `krb5`, compiled only as its `#[cfg(test)]` module (see krb5.rs): real
//! MIT Kerberos payloads, DER-built edge cases, every-prefix and seeded-mutation runs.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::*;
use crate::testutil::Rng;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// Payloads recorded by record-bindings.sh (captures/kerberos.pcap): MIT krb5 1.20
// kinit / kvno against MIT krb5kdc, realm EXAMPLE.COM, alice requires preauth.
// UDP frames 1, 2, 3, 5, 8; TCP frames 12 and 24 (with their length prefix).
const AS_REQ: &str = concat!(
    "6a81b43081b1a103020105a20302010aa31a3018300aa10402020096a2020400300aa10402020095a2020400",
    "a48188308185a00703050000000010a1123010a003020101a10930071b05616c696365a20d1b0b4558414d50",
    "4c452e434f4da320301ea003020102a11730151b066b72627467741b0b4558414d504c452e434f4da511180f",
    "32303236313230353233313333365aa70602044dcad79ea81a30180201120201110201140201130201100201",
    "1702011902011a",
);
const ERR_PREAUTH: &str = concat!(
    "7e81e63081e3a003020105a10302011ea411180f32303236313230343233313333365aa5050203014118a603",
    "020119a70d1b0b4558414d504c452e434f4da8123010a003020101a10930071b05616c696365a90d1b0b4558",
    "414d504c452e434f4daa20301ea003020102a11730151b066b72627467741b0b4558414d504c452e434f4dab",
    "101b0e4e45454445445f50524541555448ac520450304e300aa10402020088a20204003026a103020113a21f",
    "041d301b3019a003020112a1121b104558414d504c452e434f4d616c6963653009a103020102a2020400300d",
    "a10402020085a20504034d4954",
);
const AS_REQ_PREAUTH: &str = concat!(
    "6a8201123082010ea103020105a20302010aa3773075300da10402020085a20504034d4954304ca103020102",
    "a24504433041a003020112a23a0438bffd6229de9af669f893118543de39878200a6c23f361f662639262a24",
    "205fa96d8b3279a8667448d3805ba451b19c392189ed63759ee9b3300aa10402020096a2020400300aa10402",
    "020095a2020400a48188308185a00703050000000010a1123010a003020101a10930071b05616c696365a20d",
    "1b0b4558414d504c452e434f4da320301ea003020102a11730151b066b72627467741b0b4558414d504c452e",
    "434f4da511180f32303236313230353233313333365aa706020454c3d13ca81a301802011202011102011402",
    "011302011002011702011902011a",
);
const TGS_REQ: &str = concat!(
    "6c8203f7308203f3a103020105a20302010ca382036c3082036830820280a103020101a2820277048202736e",
    "82026f3082026ba003020105a10302010ea20703050000000000a38201996182019530820191a003020105a1",
    "0d1b0b4558414d504c452e434f4da220301ea003020102a11730151b066b72627467741b0b4558414d504c45",
    "2e434f4da382015730820153a003020112a103020101a2820145048201416dd328e039b142d7ae001b8cd8e7",
    "e7ece0df2f247c10278ecc172c36222f58ad4f9026dcf82aea051489e79c865968a8556508c935c8b01e7c24",
    "ea8115de0f62693fa71702649aaca5b963179c838e2ff74666d73a36f3722c3b480777b02da016a07eaa8255",
    "0dfa7cd872e56fc45176d3b0da5ad395c42e0241f22f674ee9f65d36b16c07c3776733e5755da9135a8c7c17",
    "1a1149978c256303fd96fc1e663ec9b7ae6627cc995fb4bf5bf9aa96d11bf5673cadf29d83c0187d21ac5413",
    "0facd7f259807377c2347f65ff80b4ccf3b21f7899914b98fe38da896f6ec9bfcdf86062ef81464513cb1b54",
    "1164eff848cb8357fde5cbae97a1be811d9c98d7158d54553f064a265ee4e0122837a65c417b9f0bae3347aa",
    "c47c9abe08b7024b9667c25cd3d7b7dffa79b1a705acdada6d4973b866f97b7327e856f82aee71a06f8802a4",
    "81b83081b5a003020112a281ad0481aa990e5b954ae5475029803f641551759999ec42f7d8917c509ab7963d",
    "a3d3e3aa1b7a0d0fe7491e1b75cff70e070cfd5424620d1e7c89fbbaf5056580a73f0377ec7ed7795113b804",
    "1838f59c9100ebdaa226f3f183000cae6680efbdeb5b15f8c588a34c74fb8079f3a7a2ee1dca308ccf1c294e",
    "5905923e0082c9630c54641c333945bc1d2975c5cd4ba9eadf1ec4656a0089a05e6f9784a31e656bce23fdd4",
    "6de0f2622178e29b7d8e3081e1a10402020088a281d80481d5a081d23081cfa1173015a003020110a10e040c",
    "518b7506e1da9bce72e270dea281b33081b0a003020112a281a80481a5542be924c17b489cbfbda96837f1b0",
    "a7d7f6b684f6313661b6a1a627957352f07bb3df48d8f727b12035e33deb324a02b178a3be612695c950dcec",
    "7802ae54ba6b470d62342d13fd9d4d06b31f54434d8b3925524077258f0485268fe6b0844b706078fddc9e35",
    "fef7bbe5fe9261e6e1e3bcfcc9f911ca65564cfc868bd4e4b23c6a4185692881151cc7ed39961a1ea898289f",
    "d8d57683f3ddecf86f7c610412c35465c45ea4773075a00703050000010000a20d1b0b4558414d504c452e43",
    "4f4da3243022a003020101a11b30191b04686f73741b1166696c65732e6578616d706c652e636f6da511180f",
    "32303236313230353233313333365aa70602046bb73f36a81a30180201120201110201140201130201100201",
    "1702011902011a",
);
const ERR_UNKNOWN: &str = concat!(
    "7e819230818fa003020105a10302011ea411180f32303236313230343233313333365aa505020301411aa603",
    "020106a70d1b0b4558414d504c452e434f4da810300ea003020101a10730051b03626f62a90d1b0b4558414d",
    "504c452e434f4daa20301ea003020102a11730151b066b72627467741b0b4558414d504c452e434f4dab121b",
    "10434c49454e545f4e4f545f464f554e44",
);
const TCP_AS_REQ: &str = concat!(
    "000000b76a81b43081b1a103020105a20302010aa31a3018300aa10402020096a2020400300aa10402020095",
    "a2020400a48188308185a00703050000000010a1123010a003020101a10930071b05616c696365a20d1b0b45",
    "58414d504c452e434f4da320301ea003020102a11730151b066b72627467741b0b4558414d504c452e434f4d",
    "a511180f32303236313230353233313333365aa7060204759f35aca81a301802011202011102011402011302",
    "011002011702011902011a",
);
const TCP_AS_REP: &str = concat!(
    "0000031b6b82031730820313a003020105a10302010ba22a30283026a103020113a21f041d301b3019a00302",
    "0112a1121b104558414d504c452e434f4d616c696365a30d1b0b4558414d504c452e434f4da4123010a00302",
    "0101a10930071b05616c696365a58201996182019530820191a003020105a10d1b0b4558414d504c452e434f",
    "4da220301ea003020102a11730151b066b72627467741b0b4558414d504c452e434f4da382015730820153a0",
    "03020112a103020101a2820145048201414fe8b3f097ae6bb70b4a95cc3e29e09161c29d52cc03df7bec2915",
    "bee5cce7b21ca10bbc0162ad54ef2b1b2fed44738d4ba8a915831361104f257c7047f2fc4d42713199abc896",
    "f2667dec3a8c4fd4f0a6408d38e4fe9a0a0a58373c80fa5da55e200d37b079c139dc136c3bc72c884af79024",
    "4a86ac16683951f131f3df4fec8c09918fbbd81c4ca5e927cdfc2b3ecf2212f53cc41a3db13803b4d9c4a775",
    "44b6378d21b182761db1fa7eeab2b55420ebbce2be7457441ff8d8af07ecc072458b755cc1fd56c0d34034c8",
    "755c84a2268b2c6fcd02475ad478df76512221b00e32488fcd873ffa86356c427b240e9b473740370d445f0a",
    "06f4b04c3f97f0c377e2dbef91205750229770beb5f1cbf1550208f88eef337ee1c759aec43166bcb31c5b76",
    "b473e27443d59179ff99122db7326edab37cc04ad1fdfd1218420969d13da682011930820115a003020112a2",
    "82010c04820108ee25f672dd42a0aae0705b42e854e2842b338638217e953d2aa69f86b5eeae1d55f4a23103",
    "912be6f61ebbd1f53d87f0df311cd5923209838e81f5da2f165614c70fd801f1b063d028a95fb9ee9aa81f3a",
    "1457e468c441ba6a4a695d81e1b8c3559d59a3bb3480914810e654737724438e0e6b880ea6d6c5619263177c",
    "a25f98cc52a7450fcc36a30ad1ebdd4d2b64f9d5435f038b1ffc563ff382ca905dd84c66c40fd3d7f7aad759",
    "db34408792674e35d00b09353edb6d1ed784071e03ddc9d78a70358030b8abb5772c2cb7e9ac84b68e38fdbe",
    "c9d0a8b9af3aa919e975679c481104464342356aaaf334f382c91f60b219800c9ef902e91fdf8d3cd422d4c7",
    "f98a5fa6b2dda8",
);

fn text(p: Option<Principal<'_>>) -> Option<String> {
    p.map(|p| p.to_string())
}

const ETYPES: [i32; 8] = [18, 17, 20, 19, 16, 23, 25, 26];

#[test]
fn real_as_req_without_preauth() {
    let p = unhex(AS_REQ);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.msg_type, MsgType::AsReq);
    assert_eq!(
        text(m.client_principal()).as_deref(),
        Some("alice@EXAMPLE.COM")
    );
    let client = m.client_principal().unwrap();
    assert_eq!(client.name.name_type, 1);
    assert_eq!(client.name.components().collect::<Vec<_>>(), [b"alice"]);
    assert_eq!(client.realm, b"EXAMPLE.COM");
    assert_eq!(
        text(m.server_principal()).as_deref(),
        Some("krbtgt/EXAMPLE.COM@EXAMPLE.COM")
    );
    assert_eq!(m.sname.unwrap().name_type, 2);
    assert_eq!(m.padata().map(|p| p.kind).collect::<Vec<_>>(), [150, 149]);
    assert!(!m.padata().any(|p| p.kind == 2));
    assert_eq!(m.etypes().collect::<Vec<_>>(), ETYPES);
    assert_eq!((m.error_code, m.crealm), (None, None));
    assert!(m.events.is_empty(), "{:?}", m.events);
}

#[test]
fn real_preauth_required() {
    let p = unhex(ERR_PREAUTH);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.msg_type, MsgType::Error);
    assert_eq!(m.error_code, Some(ErrorCode::PREAUTH_REQUIRED));
    assert_eq!(
        m.error_code.and_then(ErrorCode::name),
        Some("KDC_ERR_PREAUTH_REQUIRED")
    );
    assert_eq!(
        text(m.client_principal()).as_deref(),
        Some("alice@EXAMPLE.COM")
    );
    assert_eq!(
        text(m.server_principal()).as_deref(),
        Some("krbtgt/EXAMPLE.COM@EXAMPLE.COM")
    );
    assert_eq!(m.e_text, Some(&b"NEEDED_PREAUTH"[..]));
    assert!(m.events.is_empty(), "{:?}", m.events);
}

#[test]
fn real_as_req_with_encrypted_timestamp() {
    let p = unhex(AS_REQ_PREAUTH);
    let m = parse(&p, false).unwrap();
    let kinds: Vec<i32> = m.padata().map(|p| p.kind).collect();
    assert_eq!(kinds, [133, 2, 150, 149]);
    let ts = m.padata().find(|p| p.kind == 2).unwrap();
    assert_eq!(ts.value.first(), Some(&0x30)); // an EncryptedData SEQUENCE
    assert_eq!(
        text(m.client_principal()).as_deref(),
        Some("alice@EXAMPLE.COM")
    );
}

#[test]
fn real_tgs_req_names_the_service_not_the_client() {
    let p = unhex(TGS_REQ);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.msg_type, MsgType::TgsReq);
    assert_eq!(m.client_principal(), None);
    assert_eq!(
        text(m.server_principal()).as_deref(),
        Some("host/files.example.com@EXAMPLE.COM")
    );
    assert_eq!(m.padata().map(|p| p.kind).collect::<Vec<_>>(), [1, 136]);
    assert_eq!(m.etypes().collect::<Vec<_>>(), ETYPES);
    assert!(m.events.is_empty(), "{:?}", m.events);
}

#[test]
fn real_unknown_client() {
    let p = unhex(ERR_UNKNOWN);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.error_code, Some(ErrorCode::C_PRINCIPAL_UNKNOWN));
    assert_eq!(
        text(m.client_principal()).as_deref(),
        Some("bob@EXAMPLE.COM")
    );
    assert_eq!(m.e_text, Some(&b"CLIENT_NOT_FOUND"[..]));
}

#[test]
fn real_tcp_framing() {
    let p = unhex(TCP_AS_REQ);
    let m = parse(&p, true).unwrap();
    assert_eq!(m.msg_type, MsgType::AsReq);
    assert_eq!(
        text(m.client_principal()).as_deref(),
        Some("alice@EXAMPLE.COM")
    );
    assert!(m.events.is_empty());
    // The wrong transport is rejected, not misread.
    assert_eq!(parse(&p, false), Err(Error::NotKerberos));
    assert_eq!(parse(&unhex(AS_REQ), true), Err(Error::BadFrame));
}

#[test]
fn real_tcp_as_rep_and_segment_cuts() {
    let p = unhex(TCP_AS_REP);
    let full = parse(&p, true).unwrap();
    assert_eq!(full.msg_type, MsgType::AsRep);
    assert_eq!(
        text(full.client_principal()).as_deref(),
        Some("alice@EXAMPLE.COM")
    );
    assert_eq!(full.crealm, Some(&b"EXAMPLE.COM"[..]));
    assert_eq!(
        text(full.server_principal()).as_deref(),
        Some("krbtgt/EXAMPLE.COM@EXAMPLE.COM")
    );
    assert_eq!(full.padata().map(|p| p.kind).collect::<Vec<_>>(), [19]);
    assert!(full.events.is_empty(), "{:?}", full.events);

    // Cut as a TCP segment boundary would: once pvno is in, every cut decodes and
    // says PARTIAL; once the client name is complete it is kept for every longer cut.
    let (mut first_ok, mut seen_client) = (None, None);
    for len in 0..p.len() {
        match parse(&p[..len], true) {
            Ok(m) => {
                first_ok.get_or_insert(len);
                assert!(m.events.contains(Events::PARTIAL), "cut at {len}");
                assert!(!m.events.contains(Events::BAD_FIELD), "cut at {len}");
                if m.client_principal().is_some() {
                    seen_client.get_or_insert(len);
                }
                if seen_client.is_some() {
                    assert_eq!(m.client_principal(), full.client_principal());
                }
            }
            Err(e) => assert!(first_ok.is_none(), "cut at {len}: {e}"),
        }
    }
    // 4 prefix + 4 application + 4 SEQUENCE + 5 pvno field.
    assert_eq!(first_ok, Some(17));
    // The client name fits in the smallest first segment (the IPv4 minimum MSS).
    assert!(seen_client.unwrap() <= 536, "{seen_client:?}");
}

fn reals() -> Vec<(Vec<u8>, bool)> {
    let mut v: Vec<(Vec<u8>, bool)> = [AS_REQ, ERR_PREAUTH, AS_REQ_PREAUTH, TGS_REQ, ERR_UNKNOWN]
        .iter()
        .map(|h| (unhex(h), false))
        .collect();
    v.push((unhex(TCP_AS_REQ), true));
    v.push((unhex(TCP_AS_REP), true));
    v
}

#[test]
fn every_prefix_is_an_error_or_partial() {
    for (p, tcp) in reals() {
        for len in 0..p.len() {
            if let Ok(m) = parse(&p[..len], tcp) {
                assert!(m.events.contains(Events::PARTIAL), "cut at {len}");
            }
            fuzz_krb5(&p[..len]);
        }
    }
}

/// DER TLV with a definite length in the shortest form.
fn t(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = parts.concat();
    let mut v = vec![tag];
    let len = body.len();
    if len < 0x80 {
        v.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        v.push(0x80 | (4 - skip) as u8);
        v.extend_from_slice(&bytes[skip..]);
    }
    v.extend_from_slice(&body);
    v
}

fn int(n: i64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut skip = 0;
    while skip < 7
        && ((bytes[skip] == 0 && bytes[skip + 1] & 0x80 == 0)
            || (bytes[skip] == 0xff && bytes[skip + 1] & 0x80 != 0))
    {
        skip += 1;
    }
    t(0x02, &[&bytes[skip..]])
}

fn ctx(n: u8, inner: &[u8]) -> Vec<u8> {
    t(0xa0 | n, &[inner])
}

fn gstr(s: &[u8]) -> Vec<u8> {
    t(0x1b, &[s])
}

fn principal(name_type: i64, comps: &[&[u8]]) -> Vec<u8> {
    let strings: Vec<Vec<u8>> = comps.iter().map(|c| gstr(c)).collect();
    let refs: Vec<&[u8]> = strings.iter().map(Vec::as_slice).collect();
    t(0x30, &[&ctx(0, &int(name_type)), &ctx(1, &t(0x30, &refs))])
}

/// An AS-REQ with the given req-body fields (after kdc-options).
fn as_req(body_fields: &[&[u8]]) -> Vec<u8> {
    let mut body = vec![ctx(0, &t(0x03, &[&[0, 0x40, 0, 0, 0x10]]))];
    body.extend(body_fields.iter().map(|f| f.to_vec()));
    let refs: Vec<&[u8]> = body.iter().map(Vec::as_slice).collect();
    t(
        0x6a,
        &[&t(
            0x30,
            &[
                &ctx(1, &int(5)),
                &ctx(2, &int(10)),
                &ctx(4, &t(0x30, &refs)),
            ],
        )],
    )
}

fn alice() -> Vec<u8> {
    ctx(1, &principal(1, &[b"alice"]))
}

fn realm() -> Vec<u8> {
    ctx(2, &gstr(b"EXAMPLE.COM"))
}

#[test]
fn synthetic_as_req_matches_the_real_decoding() {
    let p = as_req(&[&alice(), &realm()]);
    let m = parse(&p, false).unwrap();
    assert_eq!(
        text(m.client_principal()).as_deref(),
        Some("alice@EXAMPLE.COM")
    );
    assert!(m.events.is_empty());
}

#[test]
fn outer_errors() {
    let good = as_req(&[&alice(), &realm()]);
    // Indefinite length, 5 length octets, multi-octet tag, wrong class, pvno 4.
    let mut indefinite = good.clone();
    indefinite[1] = 0x80;
    assert_eq!(parse(&indefinite, false), Err(Error::IndefiniteLength));
    assert_eq!(
        parse(&[0x6a, 0x85, 0, 0, 0, 0, 1], false),
        Err(Error::BadLength)
    );
    assert_eq!(parse(&[0x7f, 0x81, 0x01], false), Err(Error::BadTag));
    let mut universal = good.clone();
    universal[0] = 0x30;
    assert_eq!(parse(&universal, false), Err(Error::NotKerberos));
    let v4 = t(0x6a, &[&t(0x30, &[&ctx(1, &int(4)), &ctx(2, &int(10))])]);
    assert_eq!(parse(&v4, false), Err(Error::NotKerberos));
    let no_pvno = t(0x6a, &[&t(0x30, &[&ctx(2, &int(10))])]);
    assert_eq!(parse(&no_pvno, false), Err(Error::NotKerberos));
    assert_eq!(parse(&[], false), Err(Error::Truncated));
    assert_eq!(parse(&[0x6a], false), Err(Error::Truncated));
    assert_eq!(Error::NotKerberos.reason(), "not_kerberos");
}

#[test]
fn tcp_frame_errors() {
    let good = as_req(&[&alice(), &realm()]);
    let frame = |len: u32| {
        let mut v = len.to_be_bytes().to_vec();
        v.extend_from_slice(&good);
        v
    };
    let ok = frame(good.len() as u32);
    assert!(parse(&ok, true).unwrap().events.is_empty());
    assert_eq!(parse(&frame(0), true), Err(Error::BadFrame));
    assert_eq!(parse(&frame(0x8000_0000 | 40), true), Err(Error::BadFrame));
    assert_eq!(
        parse(&frame(MAX_MESSAGE_LEN as u32 + 1), true),
        Err(Error::BadFrame)
    );
    assert_eq!(parse(&ok[..3], true), Err(Error::Truncated));
    // A frame longer than the segment: decoded as far as it goes.
    let long = frame(5000);
    let m = parse(&long, true).unwrap();
    assert!(m.events.contains(Events::PARTIAL));
    assert_eq!(
        text(m.client_principal()).as_deref(),
        Some("alice@EXAMPLE.COM")
    );
}

#[test]
fn bad_field_is_dropped_rest_kept() {
    // cname with an INTEGER where the name-string should be; realm still read.
    let bad_cname = ctx(1, &t(0x30, &[&ctx(0, &int(1)), &ctx(1, &int(7))]));
    let p = as_req(&[&bad_cname, &realm()]);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.cname, None);
    assert_eq!(m.realm, Some(&b"EXAMPLE.COM"[..]));
    assert_eq!(m.events.reasons().collect::<Vec<_>>(), ["bad_field"]);
    // An inner length past the end of its (complete) parent is a bad field, not a cut.
    let mut p = as_req(&[&alice(), &realm()]);
    let at = p.windows(2).position(|w| w == [0x1b, 5]).unwrap();
    p[at + 1] = 0x7f;
    let m = parse(&p, false).unwrap();
    assert_eq!(m.cname, None);
    assert!(m.events.contains(Events::BAD_FIELD));
    assert!(!m.events.contains(Events::PARTIAL));
}

#[test]
fn zero_length_everything() {
    let empty: Vec<Vec<u8>> = (0..13).map(|n| ctx(n, &[])).collect();
    let refs: Vec<&[u8]> = empty.iter().map(Vec::as_slice).collect();
    // pvno must be there; every other field is empty.
    let mut fields = vec![ctx(1, &int(5))];
    fields.extend(empty.iter().skip(2).cloned());
    let frefs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    let p = t(0x6a, &[&t(0x30, &frefs)]);
    let m = parse(&p, false).unwrap();
    assert_eq!((m.cname, m.realm, m.sname), (None, None, None));
    assert!(m.events.contains(Events::BAD_FIELD));
    // Without pvno: not Kerberos. Empty application value: truncated.
    let p = t(0x6a, &[&t(0x30, &refs)]);
    assert_eq!(parse(&p, false), Err(Error::NotKerberos));
    assert_eq!(parse(&[0x6a, 0], false), Err(Error::Truncated));
    assert_eq!(parse(&[0x6a, 2, 0x30, 0], false), Err(Error::NotKerberos));
}

#[test]
fn deep_nesting_is_skipped_not_followed() {
    let mut deep = vec![0x05, 0x00];
    for _ in 0..50_000 {
        deep = t(0x30, &[&deep]);
    }
    let p = as_req(&[&alice(), &realm(), &ctx(3, &deep), &ctx(9, &deep)]);
    let m = parse(&p, false).unwrap();
    assert_eq!(
        text(m.client_principal()).as_deref(),
        Some("alice@EXAMPLE.COM")
    );
    assert_eq!(m.sname, None);
    assert!(m.events.contains(Events::BAD_FIELD));
    fuzz_krb5(&p);
}

#[test]
fn component_cap() {
    let eight: Vec<&[u8]> = vec![b"c"; MAX_COMPONENTS];
    let p = as_req(&[&ctx(1, &principal(1, &eight)), &realm()]);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.cname.unwrap().component_count(), MAX_COMPONENTS);
    let nine: Vec<&[u8]> = vec![b"c"; MAX_COMPONENTS + 1];
    let p = as_req(&[&ctx(1, &principal(1, &nine)), &realm()]);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.cname, None);
    assert!(m.events.contains(Events::COMPONENT_CAP));
}

#[test]
fn list_and_field_caps() {
    let ints: Vec<Vec<u8>> = (0..40).map(|_| int(23)).collect();
    let refs: Vec<&[u8]> = ints.iter().map(Vec::as_slice).collect();
    let p = as_req(&[&alice(), &realm(), &ctx(8, &t(0x30, &refs))]);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.etypes().count(), MAX_LIST);
    assert!(m.etypes().all(|e| e == 23));
    assert!(m.events.contains(Events::LIST_CAP));

    let unknown: Vec<Vec<u8>> = (0..MAX_FIELDS).map(|_| ctx(20, &int(0))).collect();
    let mut fields: Vec<&[u8]> = unknown.iter().map(Vec::as_slice).collect();
    let (a, r) = (alice(), realm());
    fields.extend([a.as_slice(), r.as_slice()]);
    let p = as_req(&fields);
    let m = parse(&p, false).unwrap();
    assert!(m.events.contains(Events::FIELD_CAP));
    assert_eq!(m.cname, None);
}

#[test]
fn unknown_and_mismatched_types() {
    // KRB-CRED (22): only pvno/msg-type.
    let p = t(0x76, &[&t(0x30, &[&ctx(0, &int(5)), &ctx(1, &int(22))])]);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.msg_type, MsgType::Unknown(22));
    assert_eq!((m.msg_type.name(), m.msg_type.value()), ("unknown", 22));
    assert!(m.events.is_empty());
    // AS-REQ tag with msg-type 12: the tag wins, the mismatch is recorded.
    let p = t(0x6a, &[&t(0x30, &[&ctx(1, &int(5)), &ctx(2, &int(12))])]);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.msg_type, MsgType::AsReq);
    assert!(m.events.contains(Events::MSG_TYPE_MISMATCH));
    assert_eq!(ErrorCode(-1765328359).name(), None);
}

#[test]
fn principal_text_is_escaped() {
    let p = as_req(&[
        &ctx(1, &principal(10, &[b"a/b@c\\d", b"\x01\xff"])),
        &ctx(2, &gstr(b"R@LM")),
    ]);
    let m = parse(&p, false).unwrap();
    assert_eq!(
        text(m.client_principal()).as_deref(),
        Some("a\\/b\\@c\\\\d/\\x01\\xff@R\\@LM")
    );
}

#[test]
fn long_form_lengths_and_negative_integers() {
    // A 200-byte realm forces a two-octet length; name-type -128 (NT-MS-PRINCIPAL-ish).
    let long = vec![b'R'; 200];
    let p = as_req(&[&ctx(1, &principal(-128, &[b"svc"])), &ctx(2, &gstr(&long))]);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.cname.unwrap().name_type, -128);
    assert_eq!(m.realm.map(<[u8]>::len), Some(200));
    // Over MAX_STRING_LEN: dropped.
    let long = vec![b'R'; MAX_STRING_LEN + 1];
    let p = as_req(&[&alice(), &ctx(2, &gstr(&long))]);
    let m = parse(&p, false).unwrap();
    assert_eq!(m.realm, None);
    assert!(m.events.contains(Events::BAD_FIELD));
}

#[test]
fn random_mutations_never_panic() {
    let seeds = reals();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut decoded = 0;
    for _ in 0..20_000 {
        let (mut buf, tcp) = seeds[rng.index(seeds.len())].clone();
        for _ in 0..1 + rng.index(4) {
            if buf.is_empty() {
                break;
            }
            let at = rng.index(buf.len());
            match rng.index(5) {
                0 => buf[at] = rng.next() as u8,
                1 => buf[at] = [0x80, 0x84, 0x85, 0xff, 0x00][rng.index(5)],
                2 => buf[at] = [0x30, 0x1b, 0x02, 0xa1, 0x6a][rng.index(5)],
                3 => buf[at] ^= 1 << rng.index(8),
                _ => buf.truncate(at),
            }
        }
        if let Ok(m) = parse(&buf, tcp) {
            decoded += 1;
            for name in [m.cname, m.sname].into_iter().flatten() {
                assert!(name.component_count() <= MAX_COMPONENTS);
                assert_eq!(name.components().count(), name.component_count());
            }
            assert!(m.etypes().count() <= MAX_LIST && m.padata().count() <= MAX_LIST);
        }
        fuzz_krb5(&buf);
    }
    // Most mutations leave a decodable message: the decoder is not all-or-nothing.
    assert!(decoded > 10_000, "{decoded}");
}
