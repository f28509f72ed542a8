//! Validated settings of the domain intelligence (`[state]`, `[network]`, `[intel]` in the
//! configuration; see `config.rs` for the file shape) and the home-network address ranges.

use std::net::IpAddr;
use std::path::PathBuf;

/// One address range, e.g. `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` (or a bare address, a /32 or /128).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}` is not an address range like 10.0.0.0/8"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("`{s}`: prefix must be 0..={max}"))?,
        };
        Ok(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The address ranges whose hosts are devices of this network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeNet(pub Vec<Cidr>);

/// RFC 1918, RFC 6598 (carrier-grade NAT), IPv6 ULA and link-local.
pub const DEFAULT_HOME_NET: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
    "fe80::/10",
];

impl Default for HomeNet {
    fn default() -> Self {
        HomeNet(
            DEFAULT_HOME_NET
                .iter()
                .filter_map(|s| Cidr::parse(s).ok())
                .collect(),
        )
    }
}

impl HomeNet {
    pub fn parse(list: &[String]) -> Result<HomeNet, String> {
        list.iter()
            .map(|s| Cidr::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map(HomeNet)
    }

    /// Whether `ip` is a device of this network (IPv4-mapped IPv6 is looked at as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|c| c.contains(ip))
    }
}

/// Score weights (points added when the reason applies; negative ones lower the score).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub young_registration: i32,
    pub listed_nrd: i32,
    pub old_registration: i32,
    pub first_seen: i32,
    pub rare: i32,
    pub persistent_rarity: i32,
    pub common: i32,
    pub dga: i32,
    pub random_subdomain: i32,
    pub lookalike: i32,
    pub risky_tld: i32,
    pub shared_hosting: i32,
    pub established_hosting: i32,
    pub popular: i32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            young_registration: 45,
            listed_nrd: 30,
            old_registration: -25,
            first_seen: 10,
            rare: 15,
            persistent_rarity: 10,
            common: -15,
            dga: 30,
            random_subdomain: 10,
            lookalike: 40,
            risky_tld: 15,
            shared_hosting: 20,
            established_hosting: -15,
            popular: -60,
        }
    }
}

/// TLDs with a high share of abuse in public registrar abuse statistics.
pub const DEFAULT_RISKY_TLDS: &[&str] = &[
    "top", "xyz", "life", "click", "link", "buzz", "rest", "cyou", "sbs", "cfd", "icu", "monster",
    "bond", "quest", "gq", "tk", "ml", "cf", "ga", "zip", "mov", "loan", "win", "bid", "country",
    "kim", "work", "support", "su",
];

const DAY_US: u64 = 86_400_000_000;
const HOUR_US: u64 = 3_600_000_000;

/// Everything the analyzer runs with. Durations are in microseconds of event time.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub home_net: HomeNet,
    pub registration_feeds: Vec<PathBuf>,
    pub popularity_list: Option<PathBuf>,
    /// Ranks up to this count as popular.
    pub popularity_max_rank: u32,
    pub org_domains: Vec<String>,
    pub brands: Vec<String>,
    pub learning_period_us: u64,
    /// RDAP base URL (RFC 9083). Accepted and validated; the client is not built yet.
    pub rdap_url: Option<String>,
    pub risky_tlds: Vec<String>,
    /// A domain scoring at least this breaches `Device / Suspicious Domain`.
    pub breach_threshold: u8,
    /// A registration at most this many days old is young.
    pub young_days: u32,
    /// A domain first seen less than this long ago is new.
    pub new_window_us: u64,
    pub rarity_window_us: u64,
    /// A domain is rare when at most max(rare_max_devices, rare_max_share × active devices)
    /// devices contacted it in the rarity window.
    pub rare_max_devices: u32,
    pub rare_max_share: f64,
    /// Rarity counts extra once the domain has been known this long.
    pub rarity_persist_us: u64,
    /// Domain -> IP bindings from DNS answers are kept this long.
    pub binding_ttl_us: u64,
    pub correlation_devices: u32,
    pub correlation_window_us: u64,
    pub beacon_min_connections: u32,
    pub beacon_min_span_us: u64,
    /// Mean absolute deviation of the intervals over their mean.
    pub beacon_max_jitter: f64,
    pub dga_nxdomain_burst: u32,
    pub dga_window_us: u64,
    pub weights: Weights,
    /// Store bounds.
    pub max_domains: u64,
    pub max_fqdns: u64,
    pub max_devices: u64,
    pub max_ips: u64,
    pub cache_entries: usize,
    /// Page cache of the store (redb), bytes.
    pub store_cache_bytes: usize,
    /// Feed entries kept (registration feeds together).
    pub max_feed_entries: usize,
    /// Commit at least this often in event time, and whenever this many records are dirty.
    pub commit_interval_us: u64,
    pub commit_max_dirty: usize,
    /// `[saas]` model tunables.
    pub saas: crate::models::saas::SaasSettings,
    /// `[correlate]` incident tunables.
    pub correlate: crate::correlate::Settings,
    /// `[correlate] devices_csv`: the static device/user table (`ip or cidr,mac,hostname,user`).
    pub devices_csv: Option<PathBuf>,
    /// `[saas] geoip_city` and `geoip_asn`: mmdb files for login locations and networks.
    pub geoip_city: Option<PathBuf>,
    pub geoip_asn: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            home_net: HomeNet::default(),
            registration_feeds: Vec::new(),
            popularity_list: None,
            popularity_max_rank: 100_000,
            org_domains: Vec::new(),
            brands: Vec::new(),
            learning_period_us: 7 * DAY_US,
            rdap_url: None,
            risky_tlds: DEFAULT_RISKY_TLDS.iter().map(|s| s.to_string()).collect(),
            breach_threshold: 60,
            young_days: 30,
            new_window_us: 7 * DAY_US,
            rarity_window_us: 30 * DAY_US,
            rare_max_devices: 3,
            rare_max_share: 0.05,
            rarity_persist_us: 24 * HOUR_US,
            binding_ttl_us: 7 * DAY_US,
            correlation_devices: 3,
            correlation_window_us: 24 * HOUR_US,
            beacon_min_connections: 20,
            beacon_min_span_us: HOUR_US,
            beacon_max_jitter: 0.1,
            dga_nxdomain_burst: 10,
            dga_window_us: 5 * 60_000_000,
            weights: Weights::default(),
            max_domains: 1_000_000,
            max_fqdns: 2_000_000,
            max_devices: 65_536,
            max_ips: 500_000,
            cache_entries: 100_000,
            store_cache_bytes: 64 << 20,
            max_feed_entries: 5_000_000,
            commit_interval_us: 60_000_000,
            commit_max_dirty: 50_000,
            saas: Default::default(),
            correlate: Default::default(),
            devices_csv: None,
            geoip_city: None,
            geoip_asn: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_net_defaults() {
        let h = HomeNet::default();
        for a in [
            "10.20.0.23",
            "172.31.1.1",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(h.contains(a.parse().unwrap()), "{a}");
        }
        for a in [
            "193.222.96.91",
            "8.8.8.8",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.5",
            "2001:db8::1",
            "172.32.0.1",
        ] {
            assert!(!h.contains(a.parse().unwrap()), "{a}");
        }
        assert!(h.contains("::ffff:10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn cidr_parsing() {
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
        let c = Cidr::parse("192.0.2.7").unwrap();
        assert!(c.contains("192.0.2.7".parse().unwrap()));
        assert!(!c.contains("192.0.2.8".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
    }
}
