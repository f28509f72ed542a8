//! Device <-> user bindings: which user sits at which device, at a given event time.
//!
//! [`BindingTable`] holds what the operator states (a static CSV: `ip or cidr, mac, hostname,
//! user`) and what crosswire observes (DHCP leases: IP -> MAC/hostname; Kerberos ticket
//! requests: IP -> user), and answers both ways: the user of a device, the devices of a user.
//! The caller uses it to implement [`Context`](super::Context)'s binding lookups.
//!
//! Confidence, best first: a Kerberos ticket from the IP (0.9), a DHCP lease whose MAC or
//! hostname the CSV assigns to a user (0.8), a CSV row for the exact IP (0.7), a CSV CIDR row
//! (0.5, longest prefix wins). Learned bindings expire by event time (the lease or ticket
//! lifetime); an observation older than the one held for the same IP does not replace it.
//!
//! Limits: [`MAX_STATIC_ROWS`] exact rows, [`MAX_CIDR_ROWS`] CIDR rows, [`MAX_LEARNED`] leases
//! and as many tickets (expired entries dropped first, then the oldest eighth, counted), CSV
//! input up to [`MAX_CSV_BYTES`] with lines up to [`MAX_LINE_LEN`]; bad lines are counted and
//! the first [`MAX_BAD_LINES`] reported with their line numbers. Lookups scan at most the
//! bounded tables; nothing here panics on any input.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Binding, BindingSource, MAX_TEXT, NEVER, clip};

/// Exact-IP rows of the static table.
pub const MAX_STATIC_ROWS: usize = 65_536;
/// CIDR rows of the static table (scanned per lookup).
pub const MAX_CIDR_ROWS: usize = 4096;
/// Learned DHCP leases; learned Kerberos tickets have the same cap.
pub const MAX_LEARNED: usize = 65_536;
/// Bad CSV lines reported individually (all are counted).
pub const MAX_BAD_LINES: usize = 100;
/// Longest CSV line accepted (bytes).
pub const MAX_LINE_LEN: usize = 1024;
/// Largest CSV accepted (bytes).
pub const MAX_CSV_BYTES: usize = 16 << 20;
/// Bindings returned by one `devices_of_user` lookup.
pub const MAX_DEVICES_PER_USER: usize = 16;
/// A ticket seen this long (µs) after the lookup time still vouches for it (records late).
const TICKET_LOOKBACK_US: u64 = 3_600_000_000;

const CONF_KERBEROS: f32 = 0.9;
const CONF_DHCP: f32 = 0.8;
const CONF_CSV_IP: f32 = 0.7;
const CONF_CSV_CIDR: f32 = 0.5;

/// Why a CSV could not be loaded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("binding table is empty: no header line")]
    NoHeader,
    #[error("line {line}: header must name the columns ip (or cidr), mac, hostname, user")]
    BadHeader { line: usize },
    #[error("binding table larger than {MAX_CSV_BYTES} bytes")]
    TooLarge,
}

/// One rejected CSV line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

/// The outcome of loading a CSV.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvReport {
    pub loaded: usize,
    /// All rejected lines.
    pub bad: usize,
    /// The first [`MAX_BAD_LINES`] of them.
    pub bad_lines: Vec<BadLine>,
}

/// A DHCP or Kerberos observation (or a single static row, with source `Csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub ts_us: u64,
    pub ip: IpAddr,
    pub mac: Option<String>,
    pub hostname: Option<String>,
    /// The Kerberos client principal (`user@realm` or UPN).
    pub user: Option<String>,
    pub source: BindingSource,
    /// Lease or ticket lifetime (µs).
    pub ttl_us: u64,
}

/// A static row: `ip/prefix` -> device facts and user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    ip: IpAddr,
    prefix: u8,
    mac: Option<String>,
    hostname: Option<String>,
    user: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Lease {
    mac: Option<String>,
    hostname: Option<String>,
    ts: u64,
    expires: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ticket {
    user: String,
    ts: u64,
    expires: u64,
}

/// What the table did; shown in `stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BindingCounters {
    pub csv_rows: u64,
    pub csv_bad_lines: u64,
    pub learned: u64,
    /// Observations ignored: no usable user/MAC/hostname, machine accounts, older than held.
    pub ignored: u64,
    pub expired: u64,
    pub evicted: u64,
}

/// The device <-> user binding table. `Serialize + Deserialize` so learned bindings survive a
/// restart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BindingTable {
    exact: BTreeMap<IpAddr, Row>,
    cidrs: Vec<Row>,
    mac_user: BTreeMap<String, String>,
    host_user: BTreeMap<String, String>,
    leases: BTreeMap<IpAddr, Lease>,
    tickets: BTreeMap<IpAddr, Ticket>,
    counters: BindingCounters,
}

/// `aa:bb:cc:dd:ee:ff` from any of `AA-BB-..`, `aabb.ccdd.eeff`, `aabbccddeeff`; `None` for
/// malformed, all-zero and broadcast addresses.
pub fn normalize_mac(s: &str) -> Option<String> {
    let hex: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    if hex == "000000000000" || hex == "ffffffffffff" {
        return None;
    }
    let pairs: Vec<&str> = (0..6).filter_map(|i| hex.get(i * 2..i * 2 + 2)).collect();
    Some(pairs.join(":"))
}

fn normalize_host(s: &str) -> Option<String> {
    let h = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    ok.then_some(h)
}

fn normalize_user(s: &str) -> Option<String> {
    let u = s.trim().to_lowercase();
    let ok = !u.is_empty()
        && u.len() <= MAX_TEXT
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(u)
}

/// `ip` or `ip/prefix`.
fn parse_net(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.trim().parse::<u8>().ok().filter(|&p| p <= max)?,
        None => max,
    };
    Some((ip, prefix))
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (a, b, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = bits - u32::from(prefix).min(bits);
    if shift >= 128 {
        return true;
    }
    (a >> shift) == (b >> shift)
}

/// Drops entries expired at `now`, then (still full) the oldest eighth; returns (expired,
/// evicted).
fn make_room<V>(
    map: &mut BTreeMap<IpAddr, V>,
    now: u64,
    ts: impl Fn(&V) -> (u64, u64),
) -> (u64, u64) {
    if map.len() < MAX_LEARNED {
        return (0, 0);
    }
    let before = map.len();
    map.retain(|_, v| ts(v).1 >= now);
    let expired = (before - map.len()) as u64;
    if map.len() < MAX_LEARNED {
        return (expired, 0);
    }
    let mut stamps: Vec<u64> = map.values().map(|v| ts(v).0).collect();
    let n = (MAX_LEARNED / 8).max(1);
    let (_, cut, _) = stamps.select_nth_unstable(n - 1);
    let cut = *cut;
    let full = map.len();
    map.retain(|_, v| ts(v).0 > cut);
    (expired, (full - map.len()) as u64)
}

impl BindingTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counters(&self) -> &BindingCounters {
        &self.counters
    }

    /// Replaces the static part with the rows of `text` (`ip or cidr, mac, hostname, user` with
    /// a header naming the columns, in any order; `#` comment lines and blank lines skipped).
    /// Bad lines are skipped and reported; learned bindings are kept.
    pub fn load_csv(&mut self, text: &str) -> Result<CsvReport, CsvError> {
        if text.len() > MAX_CSV_BYTES {
            return Err(CsvError::TooLarge);
        }
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_start_matches('\u{feff}').trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let (hline, header) = lines.next().ok_or(CsvError::NoHeader)?;
        let cols: Vec<String> = header
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
            .collect();
        let find = |names: &[&str]| cols.iter().position(|c| names.contains(&c.as_str()));
        let (Some(ci), Some(cm), Some(ch), Some(cu)) = (
            find(&["ip", "cidr", "ip or cidr", "ip_or_cidr", "network"]),
            find(&["mac", "mac address", "mac_address"]),
            find(&["hostname", "host", "name"]),
            find(&["user", "upn", "username"]),
        ) else {
            return Err(CsvError::BadHeader { line: hline });
        };
        self.exact.clear();
        self.cidrs.clear();
        self.mac_user.clear();
        self.host_user.clear();
        let mut report = CsvReport::default();
        for (n, line) in lines {
            match self.parse_row(line, cols.len(), [ci, cm, ch, cu]) {
                Ok(()) => report.loaded += 1,
                Err(reason) => {
                    report.bad += 1;
                    if report.bad_lines.len() < MAX_BAD_LINES {
                        report.bad_lines.push(BadLine { line: n, reason });
                    }
                }
            }
        }
        self.counters.csv_rows = report.loaded as u64;
        self.counters.csv_bad_lines += report.bad as u64;
        Ok(report)
    }

    fn parse_row(
        &mut self,
        line: &str,
        ncols: usize,
        [ci, cm, ch, cu]: [usize; 4],
    ) -> Result<(), String> {
        if line.len() > MAX_LINE_LEN {
            return Err(format!("line longer than {MAX_LINE_LEN} bytes"));
        }
        let f: Vec<&str> = line
            .split(',')
            .map(|c| c.trim().trim_matches('"').trim())
            .collect();
        if f.len() != ncols {
            return Err(format!("expected {ncols} fields, found {}", f.len()));
        }
        let field = |i: usize| f.get(i).copied().unwrap_or("");
        let (ip, prefix) = parse_net(field(ci))
            .ok_or_else(|| format!("not an IP address or CIDR: {:?}", clip(field(ci), 64)))?;
        let mac = match field(cm) {
            "" => None,
            m => Some(
                normalize_mac(m).ok_or_else(|| format!("bad MAC address: {:?}", clip(m, 64)))?,
            ),
        };
        let hostname = match field(ch) {
            "" => None,
            h => Some(normalize_host(h).ok_or_else(|| format!("bad hostname: {:?}", clip(h, 64)))?),
        };
        let user = normalize_user(field(cu))
            .ok_or_else(|| format!("bad or missing user: {:?}", clip(field(cu), 64)))?;
        let row = Row {
            ip,
            prefix,
            mac,
            hostname,
            user,
        };
        self.add_row(row)
    }

    fn add_row(&mut self, row: Row) -> Result<(), String> {
        let exact = row.prefix == if row.ip.is_ipv4() { 32 } else { 128 };
        if exact && self.exact.len() >= MAX_STATIC_ROWS && !self.exact.contains_key(&row.ip) {
            return Err(format!("table full ({MAX_STATIC_ROWS} rows)"));
        }
        if !exact && self.cidrs.len() >= MAX_CIDR_ROWS {
            return Err(format!("too many CIDR rows ({MAX_CIDR_ROWS})"));
        }
        if let Some(m) = &row.mac {
            self.mac_user.insert(m.clone(), row.user.clone());
        }
        if let Some(h) = &row.hostname {
            self.host_user.insert(h.clone(), row.user.clone());
        }
        if exact {
            self.exact.insert(row.ip, row);
        } else {
            self.cidrs.push(row);
        }
        Ok(())
    }

    /// Learns from one DHCP lease or Kerberos ticket request (or adds one static row).
    pub fn learn(&mut self, o: &Observation) {
        let expires = o.ts_us.saturating_add(o.ttl_us);
        match o.source {
            BindingSource::Dhcp => {
                let mac = o.mac.as_deref().and_then(normalize_mac);
                let hostname = o.hostname.as_deref().and_then(normalize_host);
                if mac.is_none() && hostname.is_none() {
                    self.counters.ignored += 1;
                    return;
                }
                if self.leases.get(&o.ip).is_some_and(|l| l.ts > o.ts_us) {
                    self.counters.ignored += 1;
                    return;
                }
                if !self.leases.contains_key(&o.ip) {
                    let (x, e) = make_room(&mut self.leases, o.ts_us, |l| (l.ts, l.expires));
                    self.counters.expired += x;
                    self.counters.evicted += e;
                }
                // A server's ACK rarely repeats the host name the client's REQUEST sent:
                // keep the name known for the same MAC.
                let hostname = hostname.or_else(|| {
                    self.leases
                        .get(&o.ip)
                        .filter(|l| l.mac == mac)
                        .and_then(|l| l.hostname.clone())
                });
                self.leases.insert(
                    o.ip,
                    Lease {
                        mac,
                        hostname,
                        ts: o.ts_us,
                        expires,
                    },
                );
            }
            BindingSource::Kerberos => {
                // `alice@CORP.EXAMPLE` and `alice@corp.example` are the same principal; host
                // principals (`WKS-023$`) name a machine, not a user.
                let user = o.user.as_deref().and_then(normalize_user);
                let Some(user) = user.filter(|u| !u.split('@').next().unwrap_or("").ends_with('$'))
                else {
                    self.counters.ignored += 1;
                    return;
                };
                if self.tickets.get(&o.ip).is_some_and(|t| t.ts > o.ts_us) {
                    self.counters.ignored += 1;
                    return;
                }
                if !self.tickets.contains_key(&o.ip) {
                    let (x, e) = make_room(&mut self.tickets, o.ts_us, |t| (t.ts, t.expires));
                    self.counters.expired += x;
                    self.counters.evicted += e;
                }
                self.tickets.insert(
                    o.ip,
                    Ticket {
                        user,
                        ts: o.ts_us,
                        expires,
                    },
                );
            }
            BindingSource::Csv => {
                let row = o.user.as_deref().and_then(normalize_user).map(|user| Row {
                    ip: o.ip,
                    prefix: if o.ip.is_ipv4() { 32 } else { 128 },
                    mac: o.mac.as_deref().and_then(normalize_mac),
                    hostname: o.hostname.as_deref().and_then(normalize_host),
                    user,
                });
                if row.map(|r| self.add_row(r)).is_none_or(|r| r.is_err()) {
                    self.counters.ignored += 1;
                    return;
                }
            }
        }
        self.counters.learned += 1;
    }

    /// Forgets learned bindings expired at `ts_us`.
    pub fn expire(&mut self, ts_us: u64) {
        let before = self.leases.len() + self.tickets.len();
        self.leases.retain(|_, l| l.expires >= ts_us);
        self.tickets.retain(|_, t| t.expires >= ts_us);
        self.counters.expired += (before - self.leases.len() - self.tickets.len()) as u64;
    }

    fn lease(&self, ip: IpAddr, ts: u64) -> Option<&Lease> {
        self.leases
            .get(&ip)
            .filter(|l| l.expires >= ts && l.ts <= ts.saturating_add(TICKET_LOOKBACK_US))
    }

    fn lease_user(&self, l: &Lease) -> Option<&String> {
        l.mac
            .as_ref()
            .and_then(|m| self.mac_user.get(m))
            .or_else(|| l.hostname.as_ref().and_then(|h| self.host_user.get(h)))
    }

    /// The MAC and host name of the device at `ip` at event time `ts_us` (DHCP lease, else the
    /// static table), whether or not a user is known.
    pub fn device_facts(&self, ip: IpAddr, ts_us: u64) -> (Option<String>, Option<String>) {
        match (self.lease(ip, ts_us), self.exact.get(&ip)) {
            (Some(l), r) => (
                l.mac.clone().or_else(|| r.and_then(|r| r.mac.clone())),
                l.hostname
                    .clone()
                    .or_else(|| r.and_then(|r| r.hostname.clone())),
            ),
            (None, Some(r)) => (r.mac.clone(), r.hostname.clone()),
            (None, None) => (None, None),
        }
    }

    /// The user of the device at `ip` at event time `ts_us`, best source first.
    pub fn user_of_device(&self, ip: IpAddr, ts_us: u64) -> Option<Binding> {
        let lease = self.lease(ip, ts_us);
        let (mac, hostname) = match (lease, self.exact.get(&ip)) {
            (Some(l), _) => (l.mac.clone(), l.hostname.clone()),
            (None, Some(r)) => (r.mac.clone(), r.hostname.clone()),
            (None, None) => (None, None),
        };
        let make = |user: &str, source, confidence, expires_us| Binding {
            device_ip: ip,
            mac: mac.clone(),
            hostname: hostname.clone(),
            user: user.to_string(),
            source,
            confidence,
            expires_us,
        };
        if let Some(t) = self
            .tickets
            .get(&ip)
            .filter(|t| t.expires >= ts_us && t.ts <= ts_us.saturating_add(TICKET_LOOKBACK_US))
        {
            return Some(make(
                &t.user,
                BindingSource::Kerberos,
                CONF_KERBEROS,
                t.expires,
            ));
        }
        if let Some((l, u)) = lease.and_then(|l| self.lease_user(l).map(|u| (l, u))) {
            return Some(make(u, BindingSource::Dhcp, CONF_DHCP, l.expires));
        }
        if let Some(r) = self.exact.get(&ip) {
            return Some(make(&r.user, BindingSource::Csv, CONF_CSV_IP, NEVER));
        }
        self.cidrs
            .iter()
            .filter(|r| in_net(ip, r.ip, r.prefix))
            .max_by_key(|r| r.prefix)
            .map(|r| make(&r.user, BindingSource::Csv, CONF_CSV_CIDR, NEVER))
    }

    /// The devices `user` was on at event time `ts_us`, best first (at most
    /// [`MAX_DEVICES_PER_USER`]).
    pub fn devices_of_user(&self, user: &str, ts_us: u64) -> Vec<Binding> {
        let Some(user) = normalize_user(user) else {
            return Vec::new();
        };
        let mut found: BTreeMap<IpAddr, Binding> = BTreeMap::new();
        let mut offer = |b: Binding| {
            let better = found
                .get(&b.device_ip)
                .is_none_or(|o| o.confidence < b.confidence);
            if better {
                found.insert(b.device_ip, b);
            }
        };
        for (&ip, t) in &self.tickets {
            if t.user == user
                && t.expires >= ts_us
                && t.ts <= ts_us.saturating_add(TICKET_LOOKBACK_US)
            {
                let l = self.lease(ip, ts_us);
                offer(Binding {
                    device_ip: ip,
                    mac: l.and_then(|l| l.mac.clone()),
                    hostname: l.and_then(|l| l.hostname.clone()),
                    user: user.clone(),
                    source: BindingSource::Kerberos,
                    confidence: CONF_KERBEROS,
                    expires_us: t.expires,
                });
            }
        }
        for (&ip, l) in &self.leases {
            if self.lease(ip, ts_us).is_some() && self.lease_user(l) == Some(&user) {
                offer(Binding {
                    device_ip: ip,
                    mac: l.mac.clone(),
                    hostname: l.hostname.clone(),
                    user: user.clone(),
                    source: BindingSource::Dhcp,
                    confidence: CONF_DHCP,
                    expires_us: l.expires,
                });
            }
        }
        for (&ip, r) in &self.exact {
            if r.user == user {
                offer(Binding {
                    device_ip: ip,
                    mac: r.mac.clone(),
                    hostname: r.hostname.clone(),
                    user: user.clone(),
                    source: BindingSource::Csv,
                    confidence: CONF_CSV_IP,
                    expires_us: NEVER,
                });
            }
        }
        let mut v: Vec<Binding> = found.into_values().collect();
        v.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then(a.device_ip.cmp(&b.device_ip))
        });
        v.truncate(MAX_DEVICES_PER_USER);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const CSV: &str = "\
# site bindings
ip,mac,hostname,user
10.20.0.23,3C-52-82-AA-01-23,WKS-023,Victim@Example.com
10.30.0.0/16,,,lab@example.com
10.30.5.0/24,,,lab5@example.com

not-an-ip,,,x@example.com
10.20.0.24,zz:zz,,y@example.com
10.20.0.25,,bad host!,z@example.com
10.20.0.26,,,
10.20.0.27,,wks-027
10.20.0.28,,wks-028,carol@example.com
";

    #[test]
    fn csv_loads_good_rows_and_reports_bad_lines_by_number() {
        let mut t = BindingTable::new();
        let r = t.load_csv(CSV).unwrap();
        assert_eq!(r.loaded, 4);
        assert_eq!(r.bad, 5);
        let lines: Vec<usize> = r.bad_lines.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![7, 8, 9, 10, 11]);
        assert!(
            r.bad_lines[0].reason.contains("not an IP"),
            "{:?}",
            r.bad_lines
        );
        assert!(r.bad_lines[1].reason.contains("MAC"));
        assert!(r.bad_lines[2].reason.contains("hostname"));
        assert!(r.bad_lines[3].reason.contains("user"));
        assert!(r.bad_lines[4].reason.contains("expected 4 fields"));
        let b = t.user_of_device(ip("10.20.0.23"), 0).unwrap();
        assert_eq!(b.user, "victim@example.com");
        assert_eq!(b.mac.as_deref(), Some("3c:52:82:aa:01:23"));
        assert_eq!(b.hostname.as_deref(), Some("wks-023"));
        assert_eq!(b.source, BindingSource::Csv);
    }

    #[test]
    fn csv_without_usable_header_is_an_error() {
        let mut t = BindingTable::new();
        assert_eq!(t.load_csv("# only comments\n\n"), Err(CsvError::NoHeader));
        assert_eq!(
            t.load_csv("# c\naddress,who\n10.0.0.1,x"),
            Err(CsvError::BadHeader { line: 2 })
        );
        // Columns in another order are fine.
        let r = t
            .load_csv("user,hostname,mac,ip\nbob@example.com,,,10.0.0.9\n")
            .unwrap();
        assert_eq!(r.loaded, 1);
        assert_eq!(
            t.user_of_device(ip("10.0.0.9"), 0).unwrap().user,
            "bob@example.com"
        );
    }

    #[test]
    fn cidr_rows_match_longest_prefix() {
        let mut t = BindingTable::new();
        t.load_csv(CSV).unwrap();
        let b = t.user_of_device(ip("10.30.5.7"), 0).unwrap();
        assert_eq!(b.user, "lab5@example.com");
        assert!(b.confidence < CONF_CSV_IP);
        assert_eq!(
            t.user_of_device(ip("10.30.9.7"), 0).unwrap().user,
            "lab@example.com"
        );
        assert!(t.user_of_device(ip("10.31.0.1"), 0).is_none());
        assert!(t.user_of_device(ip("::1"), 0).is_none());
    }

    #[test]
    fn kerberos_beats_csv_and_expires_by_event_time() {
        let mut t = BindingTable::new();
        t.load_csv(CSV).unwrap();
        t.learn(&Observation {
            ts_us: 10 * H,
            ip: ip("10.20.0.23"),
            mac: None,
            hostname: None,
            user: Some("Dana@Example.com".into()),
            source: BindingSource::Kerberos,
            ttl_us: 10 * H,
        });
        let b = t.user_of_device(ip("10.20.0.23"), 12 * H).unwrap();
        assert_eq!(
            (b.user.as_str(), b.source),
            ("dana@example.com", BindingSource::Kerberos)
        );
        assert_eq!(b.expires_us, 20 * H);
        // After the ticket lifetime the static row answers again.
        let b = t.user_of_device(ip("10.20.0.23"), 21 * H).unwrap();
        assert_eq!(b.source, BindingSource::Csv);
        // Machine accounts are not users.
        t.learn(&Observation {
            ts_us: 11 * H,
            ip: ip("10.20.0.40"),
            mac: None,
            hostname: None,
            user: Some("WKS-040$@corp.example".into()),
            source: BindingSource::Kerberos,
            ttl_us: 10 * H,
        });
        assert!(t.user_of_device(ip("10.20.0.40"), 12 * H).is_none());
        assert_eq!(t.counters().ignored, 1);
    }

    #[test]
    fn dhcp_lease_maps_a_moved_device_to_its_owner_both_ways() {
        let mut t = BindingTable::new();
        t.load_csv(CSV).unwrap();
        // carol's laptop (wks-028) got a new address by DHCP.
        t.learn(&Observation {
            ts_us: 5 * H,
            ip: ip("10.20.7.7"),
            mac: None,
            hostname: Some("WKS-028.".into()),
            user: None,
            source: BindingSource::Dhcp,
            ttl_us: 8 * H,
        });
        let b = t.user_of_device(ip("10.20.7.7"), 6 * H).unwrap();
        assert_eq!(
            (b.user.as_str(), b.source),
            ("carol@example.com", BindingSource::Dhcp)
        );
        let devs = t.devices_of_user("Carol@example.com", 6 * H);
        let ips: Vec<String> = devs.iter().map(|b| b.device_ip.to_string()).collect();
        assert_eq!(
            ips,
            vec!["10.20.7.7", "10.20.0.28"],
            "dhcp (0.8) before csv (0.7)"
        );
        // The lease expired: only the static row is left.
        assert_eq!(t.devices_of_user("carol@example.com", 14 * H).len(), 1);
        // An older lease for the same IP does not replace the newer one.
        t.learn(&Observation {
            ts_us: 4 * H,
            ip: ip("10.20.7.7"),
            mac: Some("00:11:22:33:44:55".into()),
            hostname: None,
            user: None,
            source: BindingSource::Dhcp,
            ttl_us: 8 * H,
        });
        assert_eq!(
            t.user_of_device(ip("10.20.7.7"), 6 * H).unwrap().user,
            "carol@example.com"
        );
    }

    #[test]
    fn learned_tables_are_bounded() {
        let mut t = BindingTable::new();
        for i in 0..(MAX_LEARNED as u64 + 100) {
            let a = ip(&format!(
                "10.{}.{}.{}",
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255
            ));
            t.learn(&Observation {
                ts_us: i,
                ip: a,
                mac: None,
                hostname: None,
                user: Some(format!("u{i}@example.com")),
                source: BindingSource::Kerberos,
                ttl_us: u64::MAX,
            });
        }
        assert!(t.tickets.len() <= MAX_LEARNED);
        assert!(t.counters().evicted > 0);
        // The newest survive.
        let last = MAX_LEARNED as u64 + 99;
        let a = ip(&format!(
            "10.{}.{}.{}",
            (last >> 16) & 255,
            (last >> 8) & 255,
            last & 255
        ));
        assert!(t.user_of_device(a, last).is_some());
    }

    #[test]
    fn mac_forms_normalise() {
        assert_eq!(
            normalize_mac("3C-52-82-AA-01-23").as_deref(),
            Some("3c:52:82:aa:01:23")
        );
        assert_eq!(
            normalize_mac("3c52.82aa.0123").as_deref(),
            Some("3c:52:82:aa:01:23")
        );
        assert_eq!(normalize_mac("00:00:00:00:00:00"), None);
        assert_eq!(normalize_mac("ff:ff:ff:ff:ff:ff"), None);
        assert_eq!(normalize_mac("3c:52:82:aa:01"), None);
        assert_eq!(normalize_mac("é3c:52:82:aa:01:2"), None);
    }

    #[test]
    fn table_survives_a_serde_round_trip() {
        let mut t = BindingTable::new();
        t.load_csv(CSV).unwrap();
        t.learn(&Observation {
            ts_us: H,
            ip: ip("10.20.0.99"),
            mac: None,
            hostname: None,
            user: Some("eve@example.com".into()),
            source: BindingSource::Kerberos,
            ttl_us: H,
        });
        let json = serde_json::to_string(&t).unwrap();
        let back: BindingTable = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.user_of_device(ip("10.20.0.99"), H),
            t.user_of_device(ip("10.20.0.99"), H)
        );
        assert_eq!(
            back.devices_of_user("carol@example.com", 0),
            t.devices_of_user("carol@example.com", 0)
        );
    }
}
