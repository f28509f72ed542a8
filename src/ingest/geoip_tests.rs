//! Unit tests of `geoip`, compiled only as its `#[cfg(test)]` module (see geoip.rs). Small
//! City, Country and ASN databases are built with the test-only writer (`geoip_writer.rs`),
//! then looked up: IPv4, IPv4-mapped, IPv6, unknown addresses, value checks, and damaged
//! files (every truncation, every single-bit flip, random bytes).

use super::writer::{Value, Writer, map, s};
use super::*;
use crate::ingest::testutil::TempDir;
use std::net::Ipv4Addr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A GeoIP2-City-shaped record (with the fields crosswire skips, as real files have them).
fn city(iso: &str, name: &str, lat: f64, lon: f64) -> Value {
    map([
        (
            "city",
            map([
                ("geoname_id", Value::U32(1)),
                ("names", map([("en", s(name))])),
            ]),
        ),
        (
            "continent",
            map([("code", s("EU")), ("names", map([("en", s("Europe"))]))]),
        ),
        (
            "country",
            map([
                ("geoname_id", Value::U32(2)),
                ("iso_code", s(iso)),
                ("names", map([("en", s(iso)), ("de", s(iso))])),
            ]),
        ),
        (
            "location",
            map([
                ("accuracy_radius", Value::U16(20)),
                ("latitude", Value::Double(lat)),
                ("longitude", Value::Double(lon)),
                ("time_zone", s("Europe/Amsterdam")),
            ]),
        ),
        ("registered_country", map([("iso_code", s(iso))])),
        (
            "subdivisions",
            Value::Array(vec![map([("iso_code", s("NH"))])]),
        ),
    ])
}

fn asn(n: u32, org: &str) -> Value {
    map([
        ("autonomous_system_number", Value::U32(n)),
        ("autonomous_system_organization", s(org)),
    ])
}

/// IPv6 City database, 28-bit records.
fn city_db() -> Vec<u8> {
    let mut w = Writer::new("GeoLite2-City", 6, 28);
    w.insert("193.222.96.0/24", city("NL", "Amsterdam", 52.37, 4.89))
        .insert("198.51.100.0/24", city("US", "Boston", 42.36, -71.06))
        .insert("198.51.100.128/25", city("US", "Cambridge", 42.37, -71.11))
        .insert("2001:db8::/32", city("DE", "Frankfurt", 50.11, 8.68))
        // Registered in AU, location unknown.
        .insert(
            "203.0.113.0/24",
            map([("registered_country", map([("iso_code", s("AU"))]))]),
        )
        // Values that must not be trusted.
        .insert(
            "192.0.2.0/25",
            map([
                ("country", map([("iso_code", s("N1"))])),
                (
                    "location",
                    map([
                        ("latitude", Value::Double(123.0)),
                        ("longitude", Value::Double(4.0)),
                    ]),
                ),
            ]),
        )
        .insert(
            "192.0.2.128/25",
            map([
                ("country", map([("iso_code", s("zz"))])),
                ("location", map([("latitude", Value::Double(f64::NAN))])),
            ]),
        );
    w.build()
}

/// IPv6 ASN database, 24-bit records.
fn asn_db() -> Vec<u8> {
    let long = format!("Example\u{7}\tHosting {}", "é".repeat(200));
    let mut w = Writer::new("GeoLite2-ASN", 6, 24);
    w.insert("193.222.96.0/22", asn(64500, "Example Hosting NL B.V."))
        .insert("198.51.100.0/24", asn(64501, "Example Cloud US"))
        .insert("2001:db8::/32", asn(64502, "Example Transit DE"))
        .insert("203.0.113.0/24", asn(64503, &long))
        .insert("192.0.2.0/24", asn(0, "Reserved"));
    w.build()
}

/// IPv4-only Country database (DB-IP layout), 24-bit records.
fn country_v4_db() -> Vec<u8> {
    let mut w = Writer::new("DBIP-Country-Lite", 4, 24);
    w.insert(
        "193.222.96.0/24",
        map([
            ("continent", map([("code", s("EU"))])),
            (
                "country",
                map([
                    ("iso_code", s("NL")),
                    ("is_in_european_union", Value::Bool(true)),
                ]),
            ),
        ]),
    );
    w.build()
}

fn geoip(city: Option<Vec<u8>>, asn: Option<Vec<u8>>) -> GeoIp {
    let dir = TempDir::new("geoip");
    let c = city.map(|b| dir.write("city.mmdb", &b));
    let a = asn.map(|b| dir.write("asn.mmdb", &b));
    GeoIp::open(c.as_deref(), a.as_deref()).unwrap()
}

fn both() -> GeoIp {
    geoip(Some(city_db()), Some(asn_db()))
}

#[test]
fn ipv4_joins_city_and_asn() {
    let g = both();
    assert_eq!(
        g.lookup(ip("193.222.96.10")),
        Some(Geo {
            country: Some("NL".into()),
            asn: Some(64500),
            as_org: Some("Example Hosting NL B.V.".into()),
            lat_lon: Some((52.37, 4.89)),
        })
    );
    // In the ASN /22 but outside the City /24: ASN facts only.
    assert_eq!(
        g.lookup(ip("193.222.97.1")),
        Some(Geo {
            asn: Some(64500),
            as_org: Some("Example Hosting NL B.V.".into()),
            ..Geo::default()
        })
    );
    assert_eq!(
        g.stats(),
        Stats {
            lookups: 2,
            found: 2,
            errors: 0,
            rejected: 0
        }
    );
}

#[test]
fn longest_prefix_wins() {
    let g = both();
    let boston = g.lookup(ip("198.51.100.5")).unwrap();
    let cambridge = g.lookup(ip("198.51.100.200")).unwrap();
    assert_eq!(boston.lat_lon, Some((42.36, -71.06)));
    assert_eq!(cambridge.lat_lon, Some((42.37, -71.11)));
    assert_eq!(cambridge.country.as_deref(), Some("US"));
    assert_eq!(cambridge.asn, Some(64501));
}

#[test]
fn ipv4_mapped_is_looked_up_as_ipv4() {
    let g = both();
    let v4 = g.lookup(ip("193.222.96.10"));
    assert!(v4.is_some());
    assert_eq!(g.lookup(ip("::ffff:193.222.96.10")), v4);
    // Not to be confused with other IPv6 addresses that end in the same 32 bits.
    assert_eq!(g.lookup(ip("64:ff9b::193.222.96.10")), None);
}

#[test]
fn ipv6_lookup() {
    let g = both();
    assert_eq!(
        g.lookup(ip("2001:db8:1234::1")),
        Some(Geo {
            country: Some("DE".into()),
            asn: Some(64502),
            as_org: Some("Example Transit DE".into()),
            lat_lon: Some((50.11, 8.68)),
        })
    );
    assert_eq!(g.lookup(ip("2001:db9::1")), None);
}

#[test]
fn unknown_addresses_are_none_and_not_errors() {
    let g = both();
    for a in [
        "10.1.2.3",
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "ffff::1",
    ] {
        assert_eq!(g.lookup(ip(a)), None, "{a}");
    }
    let st = g.stats();
    assert_eq!((st.lookups, st.found, st.errors, st.rejected), (7, 0, 0, 0));
}

#[test]
fn country_is_where_the_address_is_not_where_it_is_registered() {
    let g = both();
    let geo = g.lookup(ip("203.0.113.9")).unwrap();
    assert_eq!(geo.country, None);
    assert_eq!(geo.asn, Some(64503));
    // City alone: the registered country is no fact about the address.
    assert_eq!(geoip(Some(city_db()), None).lookup(ip("203.0.113.9")), None);
}

#[test]
fn bad_values_are_dropped_and_counted() {
    let g = geoip(Some(city_db()), None);
    // Country "N1" and latitude 123: both rejected, nothing left.
    assert_eq!(g.lookup(ip("192.0.2.1")), None);
    assert_eq!(g.stats().rejected, 2);
    // "ZZ" (unknown) is dropped without counting; a latitude without longitude is counted.
    assert_eq!(g.lookup(ip("192.0.2.200")), None);
    assert_eq!(g.stats().rejected, 3);
    assert_eq!(g.stats().errors, 0);

    // AS 0 is no AS (and its organisation goes with it).
    let g = both();
    let geo = g.lookup(ip("192.0.2.1"));
    assert_eq!(geo, None);
}

#[test]
fn country_codes_are_normalised() {
    assert_eq!(country_code("nl"), Ok(Some("NL".into())));
    assert_eq!(country_code("ZZ"), Ok(None));
    for bad in ["", "N", "NLD", "N1", "é", "\0\0"] {
        assert_eq!(country_code(bad), Err(()), "{bad:?}");
    }
}

#[test]
fn as_org_is_cleaned_and_capped() {
    let g = both();
    let org = g.lookup(ip("203.0.113.9")).unwrap().as_org.unwrap();
    assert!(org.starts_with("ExampleHosting éé"), "{org}");
    assert!(org.len() <= MAX_AS_ORG_BYTES && org.len() >= MAX_AS_ORG_BYTES - 1);
    assert!(!org.chars().any(char::is_control));
    assert_eq!(as_org(" \u{1b}[31m "), Some("[31m".into()));
    assert_eq!(as_org("\n\t"), None);
}

#[test]
fn ipv4_only_database() {
    let g = geoip(Some(country_v4_db()), None);
    let nl = Some(Geo {
        country: Some("NL".into()),
        ..Geo::default()
    });
    assert_eq!(g.lookup(ip("193.222.96.1")), nl);
    assert_eq!(g.lookup(ip("::ffff:193.222.96.1")), nl);
    assert_eq!(g.lookup(ip("2001:db8::1")), None);
    assert_eq!(g.lookup(ip("193.222.95.255")), None);
    assert_eq!(g.stats().errors, 0);
}

#[test]
fn ipv4_found_under_the_mapped_subtree_of_an_ipv6_database() {
    let mut w = Writer::new("Example-City", 6, 24);
    w.insert(
        "::ffff:192.0.2.0/120",
        map([("country", map([("iso_code", s("FR"))]))]),
    );
    let g = geoip(Some(w.build()), None);
    let fr = Some(Geo {
        country: Some("FR".into()),
        ..Geo::default()
    });
    assert_eq!(g.lookup(ip("192.0.2.77")), fr);
    assert_eq!(g.lookup(ip("::ffff:192.0.2.77")), fr);
    assert_eq!(g.lookup(ip("192.0.3.1")), None);
}

#[test]
fn numbers_of_any_width_are_read() {
    let mut w = Writer::new("DBIP-City-Lite", 4, 32);
    w.insert(
        "198.51.100.0/24",
        map([
            (
                "location",
                map([
                    ("latitude", Value::Float(42.5)),
                    ("longitude", Value::U16(71)),
                ]),
            ),
            (
                "traits",
                map([("autonomous_system_number", Value::U16(64501))]),
            ),
        ]),
    )
    .insert(
        "192.0.2.0/24",
        map([(
            "traits",
            map([("autonomous_system_number", Value::U64(1 << 33))]),
        )]),
    );
    let g = geoip(Some(w.build()), None);
    assert_eq!(
        g.lookup(ip("198.51.100.1")),
        Some(Geo {
            asn: Some(64501),
            lat_lon: Some((42.5, 71.0)),
            ..Geo::default()
        })
    );
    // An AS number past 32 bits is rejected, not truncated.
    assert_eq!(g.lookup(ip("192.0.2.1")), None);
    assert_eq!(g.stats().rejected, 1);
}

#[test]
fn enterprise_traits_give_asn_and_the_asn_database_wins() {
    let mut w = Writer::new("GeoIP2-Enterprise", 6, 28);
    let rec = |n| {
        map([
            ("country", map([("iso_code", s("US"))])),
            (
                "traits",
                map([
                    ("autonomous_system_number", Value::U32(n)),
                    ("autonomous_system_organization", s("From Traits")),
                    ("isp", s("Some ISP")),
                ]),
            ),
        ])
    };
    w.insert("198.51.100.0/24", rec(64999))
        .insert("100.64.0.0/10", rec(64998));
    let ent = w.build();
    let alone = geoip(Some(ent.clone()), None);
    let geo = alone.lookup(ip("198.51.100.1")).unwrap();
    assert_eq!(
        (geo.asn, geo.as_org.as_deref()),
        (Some(64999), Some("From Traits"))
    );

    let with_asn = geoip(Some(ent), Some(asn_db()));
    let geo = with_asn.lookup(ip("198.51.100.1")).unwrap();
    assert_eq!(
        (geo.asn, geo.as_org.as_deref()),
        (Some(64501), Some("Example Cloud US"))
    );
    // The ASN database does not know 100.64/10: traits stay.
    assert_eq!(with_asn.lookup(ip("100.64.0.1")).unwrap().asn, Some(64998));
}

#[test]
fn a_record_that_fails_to_decode_is_counted_and_the_other_database_still_answers() {
    let mut w = Writer::new("GeoLite2-City", 6, 24);
    // `iso_code` must be a string.
    w.insert(
        "198.51.100.0/24",
        map([("country", map([("iso_code", Value::U32(7))]))]),
    );
    let g = geoip(Some(w.build()), Some(asn_db()));
    let geo = g.lookup(ip("198.51.100.1")).unwrap();
    assert_eq!((geo.country, geo.asn), (None, Some(64501)));
    assert_eq!(g.stats().errors, 1);
}

#[test]
fn shared_across_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let g = both();
    send_sync(&g);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| assert!(g.lookup(ip("193.222.96.10")).is_some()));
        }
    });
    assert_eq!(g.stats().found, 2);
}

#[test]
fn open_errors_name_the_file_and_why() {
    let dir = TempDir::new("geoip-open");
    let missing = dir.path().join("nope.mmdb");
    let err = GeoIp::open(Some(&missing), None).unwrap_err();
    assert!(
        err.contains("city database") && err.contains("nope.mmdb"),
        "{err}"
    );

    let err = GeoIp::open(None, Some(dir.path())).unwrap_err();
    assert!(
        err.contains("asn database") && err.contains("not a regular file"),
        "{err}"
    );

    for (name, bytes) in [
        ("empty.mmdb", Vec::new()),
        ("text.mmdb", b"193.222.96.0/24,NL\n".to_vec()),
        ("marker-only.mmdb", b"\xAB\xCD\xEFMaxMind.com".to_vec()),
    ] {
        let p = dir.write(name, &bytes);
        let err = GeoIp::open(Some(&p), None).unwrap_err();
        assert!(
            err.contains(name) && err.contains("not a usable MaxMind DB"),
            "{err}"
        );
    }

    let p = dir.write("big.mmdb", &city_db());
    let err = GeoIp::open_capped(Some(&p), None, 100).unwrap_err();
    assert!(
        err.contains("big.mmdb") && err.contains("over the 100-byte cap"),
        "{err}"
    );
    assert!(GeoIp::open_capped(Some(&p), None, 1 << 20).is_ok());
}

#[test]
fn swapped_or_foreign_databases_are_refused() {
    let dir = TempDir::new("geoip-swap");
    let city = dir.write("city.mmdb", &city_db());
    let asn = dir.write("asn.mmdb", &asn_db());
    let err = GeoIp::open(Some(&asn), Some(&city)).unwrap_err();
    assert!(
        err.contains("asn.mmdb") && err.contains("give it as the asn database"),
        "{err}"
    );
    let err = GeoIp::open(None, Some(&city)).unwrap_err();
    assert!(
        err.contains("city.mmdb") && err.contains("give it as the city database"),
        "{err}"
    );

    let mut w = Writer::new("GeoIP2-Anonymous-IP", 6, 24);
    w.insert(
        "198.51.100.0/24",
        map([("is_anonymous", Value::Bool(true))]),
    );
    let anon = dir.write("anon.mmdb", &w.build());
    let err = GeoIp::open(Some(&anon), None).unwrap_err();
    assert!(
        err.contains("anon.mmdb") && err.contains("neither locations nor AS"),
        "{err}"
    );
}

#[test]
fn no_databases_knows_nothing() {
    let g = GeoIp::open(None, None).unwrap();
    assert!(g.is_empty());
    assert_eq!(g.lookup(ip("193.222.96.10")), None);
    assert!(g.databases().is_empty());
    assert!(!both().is_empty());
}

#[test]
fn databases_are_described() {
    let g = both();
    let info = g.databases();
    assert_eq!(info.len(), 2);
    assert_eq!(
        (info[0].role, info[0].database_type.as_str()),
        ("city", "GeoLite2-City")
    );
    assert_eq!(
        (info[1].role, info[1].database_type.as_str()),
        ("asn", "GeoLite2-ASN")
    );
    assert_eq!(info[0].build_us, 1_748_779_200_000_000);
    assert_eq!(info[0].bytes, city_db().len());
    assert_eq!(info[0].ip_version, 6);
    let line = info[1].to_string();
    assert!(
        line.starts_with("asn database ") && line.contains("GeoLite2-ASN"),
        "{line}"
    );
}

#[test]
fn written_databases_pass_verification() {
    assert_eq!(both().verify(), Ok(()));
    assert_eq!(geoip(Some(country_v4_db()), None).verify(), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Damaged files
// ---------------------------------------------------------------------------------------------

const PROBES: [&str; 8] = [
    "193.222.96.10",
    "198.51.100.200",
    "203.0.113.9",
    "192.0.2.1",
    "10.0.0.1",
    "2001:db8::1",
    "::ffff:193.222.96.10",
    "fe80::1",
];

/// Opens `bytes` as `role` in memory; when it opens, looks up every probe and verifies it.
/// Returns whether it opened. Must never panic.
fn exercise(role: Role, bytes: Vec<u8>) -> Option<GeoIp> {
    let db = Db::from_buf(role, Path::new("damaged.mmdb"), bytes).ok()?;
    let g = match role {
        Role::City => GeoIp {
            city: Some(db),
            asn: None,
            counters: Counters::default(),
        },
        Role::Asn => GeoIp {
            city: None,
            asn: Some(db),
            counters: Counters::default(),
        },
    };
    for p in PROBES {
        let _ = g.lookup(ip(p));
    }
    let _ = g.verify();
    Some(g)
}

#[test]
fn every_truncation_fails_at_open() {
    for (role, db) in [(Role::City, city_db()), (Role::Asn, asn_db())] {
        for len in 0..db.len() {
            let opened = exercise(role, db[..len].to_vec());
            assert!(
                opened.is_none(),
                "{role:?} truncated to {len} of {} opened",
                db.len()
            );
        }
        assert!(exercise(role, db).is_some());
    }
}

#[test]
fn bit_flips_never_panic_and_damage_is_caught_or_counted() {
    for (role, db) in [(Role::City, city_db()), (Role::Asn, asn_db())] {
        let clean = exercise(role, db.clone()).unwrap();
        let want: Vec<Option<Geo>> = PROBES.iter().map(|p| clean.lookup(ip(p))).collect();
        let (mut refused, mut counted, mut changed) = (0, 0, 0);
        for at in 0..db.len() {
            for bit in 0..8 {
                let mut bad = db.clone();
                bad[at] ^= 1 << bit;
                let Some(g) = exercise(role, bad) else {
                    refused += 1;
                    continue;
                };
                if g.stats().errors > 0 {
                    counted += 1;
                }
                let got: Vec<Option<Geo>> = PROBES.iter().map(|p| g.lookup(ip(p))).collect();
                if got != want {
                    changed += 1;
                }
            }
        }
        // All three outcomes occur: the test reaches the open checks, the lookup-time error
        // path and silently different (but well-formed) answers.
        assert!(
            refused > 0 && counted > 0 && changed > 0,
            "{role:?}: {refused} {counted} {changed}"
        );
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let marker = b"\xAB\xCD\xEFMaxMind.com";
    let base = city_db();
    let meta_at = base
        .windows(marker.len())
        .rposition(|w| w == marker)
        .unwrap();
    for round in 0..2_000 {
        let len = (next() % 600) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match round % 3 {
            // Random tree and data under the real metadata: opens, then lookups meet garbage.
            0 => bytes.extend_from_slice(&base[meta_at..]),
            // Random metadata after a marker.
            1 => {
                bytes.extend_from_slice(marker);
                bytes.extend((0..next() % 64).map(|_| next() as u8));
            }
            _ => {}
        }
        exercise(Role::City, bytes);
    }
}

#[test]
fn plain_unwraps_only_ipv4_mapped() {
    assert_eq!(
        plain(ip("::ffff:1.2.3.4")),
        IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))
    );
    assert_eq!(plain(ip("::1.2.3.4")), ip("::1.2.3.4"));
    assert_eq!(plain(ip("1.2.3.4")), ip("1.2.3.4"));
}
