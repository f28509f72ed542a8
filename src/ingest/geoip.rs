//! GeoIP/ASN facts about an address (country, coordinates, AS number and organisation) from
//! MaxMind-format (mmdb) files: a City or Country database (GeoIP2, GeoLite2 and DB-IP
//! layouts: `country.iso_code`, `location.latitude/longitude`, and on Enterprise-layout files
//! `traits.autonomous_system_*`) and/or an ASN database (GeoLite2-ASN, GeoIP2-ISP, DB-IP ASN:
//! top-level `autonomous_system_number` / `autonomous_system_organization`).
//!
//! Limits and guarantees:
//! - Each file is read once into memory at open (no `unsafe` memory map, so a file replaced or
//!   truncated on disk while the sensor runs cannot fault it), refused past [`MAX_DB_BYTES`]
//!   or when it is not a regular file. Memory is those buffers and a few counters; nothing
//!   grows with lookups. There is no cache: a lookup is one walk of at most 128 tree nodes per
//!   database plus one record decode, which the reader bounds (nesting depth, values and
//!   bytes expanded per decode).
//! - No input panics. A file that is not a usable mmdb fails [`GeoIp::open`] with the file's
//!   name and why; damage the open checks cannot see (a bad tree pointer, a corrupt record)
//!   makes that lookup return what the other database knows, and is counted in
//!   [`Stats::errors`]. [`GeoIp::verify`] walks a whole database, for `check-config`.
//! - Values are checked before use, and a failing value is dropped and counted in
//!   [`Stats::rejected`]: a country is two ASCII letters (upper-cased; `ZZ`, "unknown", is
//!   dropped uncounted), coordinates are finite and in range, AS 0 is no AS, an organisation
//!   name loses control characters and is cut to [`MAX_AS_ORG_BYTES`].
//! - `country` is where the address is (`country`), never where its block is registered
//!   (`registered_country`); `lat_lon` is taken as given, whatever its accuracy radius.
//! - IPv4 works against IPv4 and IPv6 databases; an IPv4-mapped IPv6 address
//!   (`::ffff:a.b.c.d`) is looked up as IPv4, and an IPv4 address missing from an IPv6
//!   database's `::/96` subtree is tried again at `::ffff:0:0/96`. An IPv6 address against an
//!   IPv4-only database is simply unknown.

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::models::saas::Geo;

/// Largest database file read (1 GiB). GeoLite2-City is under 100 MB and the DB-IP lite
/// City file under 200 MB; a commercial file of a few hundred MB still fits.
pub const MAX_DB_BYTES: u64 = 1 << 30;

/// Longest AS organisation name kept, in bytes (cut at a character boundary).
pub const MAX_AS_ORG_BYTES: usize = 256;

/// The two databases and their counters. `Send + Sync`: lookups take `&self`.
#[derive(Debug)]
pub struct GeoIp {
    city: Option<Db>,
    asn: Option<Db>,
    counters: Counters,
}

/// What lookups have met since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Calls to [`GeoIp::lookup`].
    pub lookups: u64,
    /// Lookups that returned facts.
    pub found: u64,
    /// Database lookups or record decodes that failed on a damaged file (per database).
    pub errors: u64,
    /// Values present but dropped by the checks (bad country code, coordinates, AS number).
    pub rejected: u64,
}

/// One opened database, for logs and staleness checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbInfo {
    /// `city` or `asn`: the slot it was opened for.
    pub role: &'static str,
    pub path: PathBuf,
    /// The file's own `database_type`, e.g. `GeoLite2-City`, `DBIP-ASN-Lite`.
    pub database_type: String,
    /// When the file was built, microseconds since the epoch (compare with event time).
    pub build_us: u64,
    /// 4 or 6.
    pub ip_version: u16,
    pub node_count: u32,
    /// File size (= memory held).
    pub bytes: usize,
}

impl fmt::Display for DbInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} database {}: {}, built {} s after the epoch, IPv{}, {} nodes, {} bytes",
            self.role,
            self.path.display(),
            self.database_type,
            self.build_us / 1_000_000,
            self.ip_version,
            self.node_count,
            self.bytes
        )
    }
}

#[derive(Debug, Default)]
struct Counters {
    lookups: AtomicU64,
    found: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Which slot a database is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    City,
    Asn,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::City => "city",
            Role::Asn => "asn",
        }
    }
}

/// What a `database_type` says the file holds; `None` for types this module does not know
/// (custom files are accepted in either slot and read for the fields they have).
fn layout_of(database_type: &str) -> Option<Layout> {
    let t = database_type.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if has(&["city", "country", "location", "enterprise"]) {
        Some(Layout::Role(Role::City))
    } else if has(&["asn", "isp"]) {
        Some(Layout::Role(Role::Asn))
    } else if has(&[
        "anonymous",
        "connection-type",
        "domain",
        "density",
        "user-count",
    ]) {
        Some(Layout::Other)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Role(Role),
    /// A MaxMind-format product with neither location nor ASN.
    Other,
}

#[derive(Debug)]
struct Db {
    role: Role,
    path: PathBuf,
    /// File size: the reader holds the whole file.
    bytes: usize,
    reader: Reader<Vec<u8>>,
}

impl Db {
    fn open(role: Role, path: &Path, cap: u64) -> Result<Db, String> {
        let buf = read_db(path, cap)
            .map_err(|why| format!("GeoIP {} database {}: {why}", role.name(), path.display()))?;
        Db::from_buf(role, path, buf)
    }

    /// Parses a file's bytes; `path` is for messages.
    fn from_buf(role: Role, path: &Path, buf: Vec<u8>) -> Result<Db, String> {
        let what = || format!("GeoIP {} database {}", role.name(), path.display());
        let bytes = buf.len();
        let reader = Reader::from_source(buf)
            .map_err(|e| format!("{}: not a usable MaxMind DB file: {e}", what()))?;
        let ty = &reader.metadata().database_type;
        match layout_of(ty) {
            Some(Layout::Role(r)) if r != role => {
                return Err(format!(
                    "{}: its type {ty:?} is a{} database, give it as the {} database",
                    what(),
                    if r == Role::Asn {
                        "n ASN"
                    } else {
                        " City/Country"
                    },
                    r.name()
                ));
            }
            Some(Layout::Other) => {
                return Err(format!(
                    "{}: its type {ty:?} has neither locations nor AS numbers",
                    what()
                ));
            }
            _ => {}
        }
        Ok(Db {
            role,
            path: path.to_path_buf(),
            bytes,
            reader,
        })
    }

    /// The record for `ip` decoded as `T`; `Ok(None)` when the database has none.
    fn record<'a, T: Deserialize<'a>>(&'a self, ip: IpAddr) -> Result<Option<T>, MaxMindDbError> {
        let v6_db = self.reader.metadata().ip_version == 6;
        if ip.is_ipv6() && !v6_db {
            return Ok(None);
        }
        let found = self.reader.lookup(ip)?;
        if found.has_data() {
            return found.decode();
        }
        match ip {
            IpAddr::V4(a) if v6_db => self.reader.lookup(IpAddr::V6(a.to_ipv6_mapped()))?.decode(),
            _ => Ok(None),
        }
    }

    fn info(&self) -> DbInfo {
        let m = self.reader.metadata();
        DbInfo {
            role: self.role.name(),
            path: self.path.clone(),
            database_type: m.database_type.clone(),
            build_us: m.build_epoch.saturating_mul(1_000_000),
            ip_version: m.ip_version,
            node_count: m.node_count,
            bytes: self.bytes,
        }
    }
}

/// Reads a whole regular file of at most `cap` bytes.
fn read_db(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > cap {
        return Err(format!("{} bytes, over the {cap}-byte cap", meta.len()));
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > cap {
        return Err(format!("grew past the {cap}-byte cap while being read"));
    }
    Ok(buf)
}

impl GeoIp {
    /// Opens a City or Country database and/or an ASN database (GeoLite2/GeoIP2 or DB-IP
    /// mmdb layouts). Errors name the file and why. Either may be None (both None gives a
    /// `GeoIp` that knows nothing).
    pub fn open(city: Option<&Path>, asn: Option<&Path>) -> Result<GeoIp, String> {
        GeoIp::open_capped(city, asn, MAX_DB_BYTES)
    }

    fn open_capped(city: Option<&Path>, asn: Option<&Path>, cap: u64) -> Result<GeoIp, String> {
        Ok(GeoIp {
            city: city.map(|p| Db::open(Role::City, p, cap)).transpose()?,
            asn: asn.map(|p| Db::open(Role::Asn, p, cap)).transpose()?,
            counters: Counters::default(),
        })
    }

    /// True when no database was given.
    pub fn is_empty(&self) -> bool {
        self.city.is_none() && self.asn.is_none()
    }

    /// Facts for one address; None when neither database knows it (or what they hold for
    /// it fails the value checks).
    pub fn lookup(&self, ip: IpAddr) -> Option<Geo> {
        bump(&self.counters.lookups);
        let ip = plain(ip);
        let mut geo = Geo::default();
        if let Some(db) = &self.city {
            match db.record::<CityRecord<'_>>(ip) {
                Ok(Some(rec)) => self.fill_city(&mut geo, &rec),
                Ok(None) => {}
                Err(_) => bump(&self.counters.errors),
            }
        }
        if let Some(db) = &self.asn {
            match db.record::<AsnRecord<'_>>(ip) {
                // The ASN database wins over Enterprise `traits` when it knows the address.
                Ok(Some(rec)) => self.fill_asn(&mut geo, &rec),
                Ok(None) => {}
                Err(_) => bump(&self.counters.errors),
            }
        }
        if geo == Geo::default() {
            return None;
        }
        bump(&self.counters.found);
        Some(geo)
    }

    fn fill_city(&self, geo: &mut Geo, rec: &CityRecord<'_>) {
        if let Some(code) = rec.country.as_ref().and_then(|c| c.iso_code) {
            geo.country = self.checked(country_code(code));
        }
        if let Some(loc) = &rec.location {
            match (loc.latitude, loc.longitude) {
                (Some(lat), Some(lon)) => geo.lat_lon = self.checked(lat_lon(lat, lon)),
                (None, None) => {}
                _ => bump(&self.counters.rejected),
            }
        }
        if let Some(traits) = &rec.traits {
            self.fill_asn(geo, traits);
        }
    }

    fn fill_asn(&self, geo: &mut Geo, rec: &AsnRecord<'_>) {
        let Some(n) = rec.autonomous_system_number else {
            return;
        };
        let Some(asn) = self.checked(as_number(n)) else {
            return;
        };
        geo.asn = Some(asn);
        geo.as_org = rec.autonomous_system_organization.and_then(as_org);
    }

    /// Passes a checked value through; `Err(())` is a rejected value and is counted.
    fn checked<T>(&self, v: Result<Option<T>, ()>) -> Option<T> {
        v.unwrap_or_else(|()| {
            bump(&self.counters.rejected);
            None
        })
    }

    /// Counters since open.
    pub fn stats(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            lookups: get(&self.counters.lookups),
            found: get(&self.counters.found),
            errors: get(&self.counters.errors),
            rejected: get(&self.counters.rejected),
        }
    }

    /// The opened databases, city first.
    pub fn databases(&self) -> Vec<DbInfo> {
        [&self.city, &self.asn]
            .into_iter()
            .flatten()
            .map(Db::info)
            .collect()
    }

    /// Checks every tree node and every record of both databases (for `check-config`: it
    /// takes seconds and memory in proportion to the number of distinct records).
    pub fn verify(&self) -> Result<(), String> {
        for db in [&self.city, &self.asn].into_iter().flatten() {
            db.reader.verify().map_err(|e| {
                format!(
                    "GeoIP {} database {}: fails verification: {e}",
                    db.role.name(),
                    db.path.display()
                )
            })?;
        }
        Ok(())
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries; others unchanged.
fn plain(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `Ok(None)`: absent by design; `Err(())`: present but unusable.
type Checked<T> = Result<Option<T>, ()>;

fn country_code(code: &str) -> Checked<String> {
    match code.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            let code = code.to_ascii_uppercase();
            Ok((code != "ZZ").then_some(code))
        }
        _ => Err(()),
    }
}

fn lat_lon(lat: Num, lon: Num) -> Checked<(f64, f64)> {
    let (lat, lon) = (lat.as_f64(), lon.as_f64());
    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
        Ok(Some((lat, lon)))
    } else {
        Err(())
    }
}

fn as_number(n: Num) -> Checked<u32> {
    match n {
        Num::U(0) => Ok(None),
        Num::U(v) => u32::try_from(v).map(Some).map_err(|_| ()),
        Num::I(v) if v > 0 => u32::try_from(v).map(Some).map_err(|_| ()),
        Num::I(_) | Num::F(_) => Err(()),
    }
}

fn as_org(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.trim().chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_AS_ORG_BYTES {
            break;
        }
        out.push(c);
    }
    let out = out.trim_end();
    (!out.is_empty()).then(|| out.to_string())
}

// ---------------------------------------------------------------------------------------------
// Record layouts: only the fields read; everything else is skipped without being expanded.
// ---------------------------------------------------------------------------------------------

/// City / Country / Enterprise layout.
#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow)]
    country: Option<Place<'a>>,
    location: Option<Location>,
    #[serde(borrow)]
    traits: Option<AsnRecord<'a>>,
}

#[derive(Deserialize)]
struct Place<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Location {
    latitude: Option<Num>,
    longitude: Option<Num>,
}

/// ASN / ISP layout (also Enterprise `traits`).
#[derive(Deserialize)]
struct AsnRecord<'a> {
    autonomous_system_number: Option<Num>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
}

/// Any mmdb number (uint16/32/64/128, int32, float, double): files differ in which they use.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    U(u64),
    I(i64),
    F(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::U(v) => v as f64,
            Num::I(v) => v as f64,
            Num::F(v) => v,
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num::U(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Num, E> {
                Ok(u64::try_from(v).map_or(Num::F(f64::INFINITY), Num::U))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num::I(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num::F(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
#[path = "geoip_writer.rs"]
pub(crate) mod writer;

#[cfg(test)]
#[path = "geoip_tests.rs"]
mod tests;
