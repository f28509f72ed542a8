//! The `[state]`, `[network]` and `[intel]` sections of the configuration file: their raw
//! shape (every key documented, unknown keys rejected) and their validation into
//! [`Settings`]. `crate::config` embeds these sections and calls [`validate`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::names;
use super::settings::{HomeNet, Settings, Weights};
use crate::config::Error;

/// `[state]`: where persistent state lives and how it is bounded.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// State directory (the embedded store `state.redb` lives here). Default: `./crosswire-state`
    /// for replay, `/var/lib/crosswire` for `run`; `--state DIR` overrides it.
    pub dir: Option<PathBuf>,
    /// Commit to the store at least this often, in event time. Default "60s".
    pub commit_interval: Option<String>,
    /// Registrable domains remembered (least recently seen evicted). Default 1000000.
    pub max_domains: Option<u64>,
    /// Host names (FQDNs) remembered. Default 2000000.
    pub max_fqdns: Option<u64>,
    /// Devices remembered. Default 65536.
    pub max_devices: Option<u64>,
    /// External IPs with domain bindings remembered. Default 500000.
    pub max_ips: Option<u64>,
    /// Records cached in memory per table. Default 100000.
    pub cache_entries: Option<usize>,
    /// Page cache of the store, MiB. Default 64.
    pub cache_mib: Option<usize>,
}

/// `[network]`: the monitored network.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// Address ranges whose hosts are devices of this network. Default: RFC 1918, RFC 6598,
    /// fc00::/7, fe80::/10. Everything else is external (documentation ranges included).
    pub home_net: Option<Vec<String>>,
}

/// `[intel]`: domain intelligence and device models.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntel {
    /// Newly-registered-domain feed files: `domain` or `domain,YYYY-MM-DD` per line.
    pub registration_feeds: Option<Vec<PathBuf>>,
    /// Popularity list in Tranco format (`rank,domain`).
    pub popularity_list: Option<PathBuf>,
    /// Ranks up to this count as popular. Default 100000.
    pub popularity_max_rank: Option<u32>,
    /// The organisation's own domains (lookalikes of them score high).
    pub org_domains: Option<Vec<String>>,
    /// Brand names or domains to protect against lookalikes (e.g. "microsoft", "paypal.com").
    pub brands: Option<Vec<String>>,
    /// History is built and "new domain" evidence ignored for this long after the first event.
    /// Default "7d".
    pub learning_period: Option<String>,
    /// RDAP base URL for registration dates of domains no feed dates (RFC 9082/9083): looked
    /// up in the background (cached, rate-limited, with timeouts); off when absent. https, or
    /// http to loopback only.
    pub rdap_url: Option<String>,
    /// TLDs that add to a domain's score. Default: a list of commonly abused TLDs.
    pub risky_tlds: Option<Vec<String>>,
    /// Score (0-100) at which `Device / Suspicious Domain` fires. Default 60.
    pub breach_threshold: Option<i64>,
    /// A registration this many days old or younger is young. Default 30.
    pub young_days: Option<u32>,
    /// A domain first seen less than this long ago is new. Default "7d".
    pub new_window: Option<String>,
    /// Window of the rarity count. Default "30d".
    pub rarity_window: Option<String>,
    /// Rare: at most this many devices (or `rare_max_share`, whichever is larger). Default 3.
    pub rare_max_devices: Option<u32>,
    /// Rare: at most this share of the active devices. Default 0.05.
    pub rare_max_share: Option<f64>,
    /// Rarity counts extra once a domain has been known this long. Default "24h".
    pub rarity_persist: Option<String>,
    /// How long DNS answers bind a domain to an IP. Default "7d".
    pub binding_ttl: Option<String>,
    /// Distinct devices for `Multiple Devices Breaching Same Model`. Default 3.
    pub correlation_devices: Option<u32>,
    /// Window of that correlation. Default "24h".
    pub correlation_window: Option<String>,
    /// Beaconing: at least this many connections. Default 20.
    pub beacon_min_connections: Option<u32>,
    /// Beaconing: spread over at least this long. Default "1h".
    pub beacon_min_span: Option<String>,
    /// Beaconing: mean absolute deviation of the intervals over their mean, at most. Default 0.1.
    pub beacon_max_jitter: Option<f64>,
    /// DGA activity: this many NXDOMAIN answers for random-looking names. Default 10.
    pub dga_nxdomain_burst: Option<u32>,
    /// DGA activity: within this window. Default "5m".
    pub dga_window: Option<String>,
    /// Registration feed entries kept in memory. Default 5000000.
    pub max_feed_entries: Option<usize>,
    /// Score weights; each key optional.
    #[serde(default)]
    pub weights: RawWeights,
}

/// `[intel.weights]`: points each reason adds (negative ones subtract).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeights {
    /// Registered at most `young_days` ago (full in the first week). Default 45.
    pub young_registration: Option<i32>,
    /// Listed in an NRD feed without a date. Default 30.
    pub listed_nrd: Option<i32>,
    /// Registered more than a year ago. Default -25.
    pub old_registration: Option<i32>,
    /// First seen on this network within `new_window`. Default 10.
    pub first_seen: Option<i32>,
    /// Contacted by few devices. Default 15.
    pub rare: Option<i32>,
    /// Still rare after `rarity_persist`. Default 10.
    pub persistent_rarity: Option<i32>,
    /// Contacted by many devices. Default -15.
    pub common: Option<i32>,
    /// Random-looking registrable name. Default 30.
    pub dga: Option<i32>,
    /// Random-looking subdomain label. Default 10.
    pub random_subdomain: Option<i32>,
    /// Lookalike of an org domain or brand. Default 40.
    pub lookalike: Option<i32>,
    /// Risky TLD. Default 15.
    pub risky_tld: Option<i32>,
    /// IP shared only with young or rare domains. Default 20.
    pub shared_hosting: Option<i32>,
    /// IP shared with established domains. Default -15.
    pub established_hosting: Option<i32>,
    /// On the popularity list. Default -60.
    pub popular: Option<i32>,
}

fn us(d: std::time::Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// Validates the three sections into `settings` and the state directory.
pub fn validate(
    path: &Path,
    state: RawState,
    network: RawNetwork,
    intel: RawIntel,
) -> Result<(Settings, Option<PathBuf>), Error> {
    let invalid = |key: &'static str, why: String| Error::Invalid {
        path: path.to_owned(),
        key,
        why,
    };
    let dur = |key: &'static str, v: &Option<String>| -> Result<Option<u64>, Error> {
        match v {
            None => Ok(None),
            Some(s) => humantime::parse_duration(s)
                .map(|d| Some(us(d)))
                .map_err(|e| invalid(key, format!("`{s}` is not a duration like \"7d\": {e}"))),
        }
    };
    let range = |key: &'static str, v: u64, lo: u64, hi: u64| -> Result<u64, Error> {
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(invalid(key, format!("{v} is not within {lo}..={hi}")))
        }
    };
    let mut s = Settings::default();

    if let Some(d) = &state.dir
        && d.as_os_str().is_empty()
    {
        return Err(invalid("state.dir", "is empty".into()));
    }
    if let Some(d) = dur("state.commit_interval", &state.commit_interval)? {
        if d < 1_000_000 {
            return Err(invalid(
                "state.commit_interval",
                "must be at least 1s".into(),
            ));
        }
        s.commit_interval_us = d;
    }
    if let Some(v) = state.max_domains {
        s.max_domains = range("state.max_domains", v, 1000, 1_000_000_000)?;
    }
    if let Some(v) = state.max_fqdns {
        s.max_fqdns = range("state.max_fqdns", v, 1000, 1_000_000_000)?;
    }
    if let Some(v) = state.max_devices {
        s.max_devices = range("state.max_devices", v, 16, 10_000_000)?;
    }
    if let Some(v) = state.max_ips {
        s.max_ips = range("state.max_ips", v, 1000, 1_000_000_000)?;
    }
    if let Some(v) = state.cache_mib {
        s.store_cache_bytes = (range("state.cache_mib", v as u64, 1, 65_536)? as usize) << 20;
    }
    if let Some(v) = state.cache_entries {
        s.cache_entries = range("state.cache_entries", v as u64, 1000, 100_000_000)? as usize;
    }

    if let Some(list) = &network.home_net {
        s.home_net = HomeNet::parse(list).map_err(|why| invalid("network.home_net", why))?;
    }

    if let Some(f) = intel.registration_feeds {
        for p in &f {
            if !p.is_file() {
                return Err(invalid(
                    "intel.registration_feeds",
                    format!("{} is not a readable file", p.display()),
                ));
            }
        }
        s.registration_feeds = f;
    }
    if let Some(p) = intel.popularity_list {
        if !p.is_file() {
            return Err(invalid(
                "intel.popularity_list",
                format!("{} is not a readable file", p.display()),
            ));
        }
        s.popularity_list = Some(p);
    }
    if let Some(r) = intel.popularity_max_rank {
        s.popularity_max_rank =
            range("intel.popularity_max_rank", u64::from(r), 1, 100_000_000)? as u32;
    }
    let domains = |key: &'static str, v: Vec<String>| -> Result<Vec<String>, Error> {
        v.into_iter()
            .map(|d| {
                names::normalise(&d)
                    .ok_or_else(|| invalid(key, format!("`{d}` is not a domain name")))
            })
            .collect()
    };
    if let Some(v) = intel.org_domains {
        s.org_domains = domains("intel.org_domains", v)?;
    }
    if let Some(v) = intel.brands {
        s.brands = domains("intel.brands", v)?;
    }
    if let Some(d) = dur("intel.learning_period", &intel.learning_period)? {
        s.learning_period_us = d;
    }
    if let Some(u) = intel.rdap_url {
        if !(u.starts_with("https://") || u.starts_with("http://")) || u.len() < 10 {
            return Err(invalid(
                "intel.rdap_url",
                format!("`{u}` is not an http(s) URL"),
            ));
        }
        s.rdap_url = Some(u);
    }
    if let Some(v) = intel.risky_tlds {
        let mut out = Vec::new();
        for t in v {
            let t = t.trim_start_matches('.').to_ascii_lowercase();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(invalid("intel.risky_tlds", format!("`{t}` is not a TLD")));
            }
            out.push(t);
        }
        s.risky_tlds = out;
    }
    if let Some(t) = intel.breach_threshold {
        if !(1..=100).contains(&t) {
            return Err(invalid(
                "intel.breach_threshold",
                format!("{t} is not within 1..=100"),
            ));
        }
        s.breach_threshold = t as u8;
    }
    if let Some(v) = intel.young_days {
        s.young_days = range("intel.young_days", u64::from(v), 1, 3650)? as u32;
    }
    if let Some(d) = dur("intel.new_window", &intel.new_window)? {
        s.new_window_us = d;
    }
    if let Some(d) = dur("intel.rarity_window", &intel.rarity_window)? {
        if d < 3_600_000_000 {
            return Err(invalid("intel.rarity_window", "must be at least 1h".into()));
        }
        s.rarity_window_us = d;
    }
    if let Some(v) = intel.rare_max_devices {
        s.rare_max_devices = range("intel.rare_max_devices", u64::from(v), 1, 1000)? as u32;
    }
    if let Some(v) = intel.rare_max_share {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            return Err(invalid(
                "intel.rare_max_share",
                format!("{v} is not within 0..=1"),
            ));
        }
        s.rare_max_share = v;
    }
    if let Some(d) = dur("intel.rarity_persist", &intel.rarity_persist)? {
        s.rarity_persist_us = d;
    }
    if let Some(d) = dur("intel.binding_ttl", &intel.binding_ttl)? {
        s.binding_ttl_us = d;
    }
    if let Some(v) = intel.correlation_devices {
        s.correlation_devices = range("intel.correlation_devices", u64::from(v), 2, 1000)? as u32;
    }
    if let Some(d) = dur("intel.correlation_window", &intel.correlation_window)? {
        s.correlation_window_us = d;
    }
    if let Some(v) = intel.beacon_min_connections {
        s.beacon_min_connections =
            range("intel.beacon_min_connections", u64::from(v), 4, 64)? as u32;
    }
    if let Some(d) = dur("intel.beacon_min_span", &intel.beacon_min_span)? {
        s.beacon_min_span_us = d;
    }
    if let Some(v) = intel.beacon_max_jitter {
        if !(v.is_finite() && v > 0.0 && v <= 1.0) {
            return Err(invalid(
                "intel.beacon_max_jitter",
                format!("{v} is not within (0, 1]"),
            ));
        }
        s.beacon_max_jitter = v;
    }
    if let Some(v) = intel.dga_nxdomain_burst {
        s.dga_nxdomain_burst = range("intel.dga_nxdomain_burst", u64::from(v), 2, 64)? as u32;
    }
    if let Some(d) = dur("intel.dga_window", &intel.dga_window)? {
        s.dga_window_us = d;
    }
    if let Some(v) = intel.max_feed_entries {
        s.max_feed_entries = range("intel.max_feed_entries", v as u64, 1, 100_000_000)? as usize;
    }
    let w = intel.weights;
    let d = Weights::default();
    let wt = |key: &'static str, v: Option<i32>, def: i32| -> Result<i32, Error> {
        match v {
            None => Ok(def),
            Some(x) if (-100..=100).contains(&x) => Ok(x),
            Some(x) => Err(invalid(key, format!("{x} is not within -100..=100"))),
        }
    };
    s.weights = Weights {
        young_registration: wt(
            "intel.weights.young_registration",
            w.young_registration,
            d.young_registration,
        )?,
        listed_nrd: wt("intel.weights.listed_nrd", w.listed_nrd, d.listed_nrd)?,
        old_registration: wt(
            "intel.weights.old_registration",
            w.old_registration,
            d.old_registration,
        )?,
        first_seen: wt("intel.weights.first_seen", w.first_seen, d.first_seen)?,
        rare: wt("intel.weights.rare", w.rare, d.rare)?,
        persistent_rarity: wt(
            "intel.weights.persistent_rarity",
            w.persistent_rarity,
            d.persistent_rarity,
        )?,
        common: wt("intel.weights.common", w.common, d.common)?,
        dga: wt("intel.weights.dga", w.dga, d.dga)?,
        random_subdomain: wt(
            "intel.weights.random_subdomain",
            w.random_subdomain,
            d.random_subdomain,
        )?,
        lookalike: wt("intel.weights.lookalike", w.lookalike, d.lookalike)?,
        risky_tld: wt("intel.weights.risky_tld", w.risky_tld, d.risky_tld)?,
        shared_hosting: wt(
            "intel.weights.shared_hosting",
            w.shared_hosting,
            d.shared_hosting,
        )?,
        established_hosting: wt(
            "intel.weights.established_hosting",
            w.established_hosting,
            d.established_hosting,
        )?,
        popular: wt("intel.weights.popular", w.popular, d.popular)?,
    };
    Ok((s, state.dir))
}
