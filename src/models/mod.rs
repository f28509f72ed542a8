//! Device models: turn scored observations into model breaches.
//!
//! - `Device / Suspicious Domain` — decided by the analyzer from a domain's score
//!   ([`crate::intel`]); this module only correlates and formats it.
//! - `Multiple Device Correlations / Multiple Devices Breaching Same Model` — [`Correlator`]:
//!   N distinct devices breach the same model for the same registrable domain or the same
//!   external IP within a window.
//! - `Device / Possible SSL Command and Control` — [`Beacons`]: regular TLS connections from one
//!   device to a rare destination, low jitter, over a long span.
//! - `Device / DGA Activity` — [`NxBursts`]: a burst of NXDOMAIN answers for random-looking
//!   names from one device.
//!
//! All state here is keyed by device/domain/IP strings, bounded (`MAX_KEYS` keys, `MAX_PER_KEY`
//! entries each, least recently updated key evicted and counted) and serialisable, so the
//! analyzer persists it with each store commit and a restart resumes exactly where the last
//! commit left off. Time is event time.

pub mod breach;
pub mod saas;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use breach::{Device, ModelBreach};

pub const SUSPICIOUS_DOMAIN: &str = "Device / Suspicious Domain";
pub const MULTIPLE_DEVICES: &str =
    "Multiple Device Correlations / Multiple Devices Breaching Same Model";
pub const SSL_C2: &str = "Device / Possible SSL Command and Control";
pub const DGA_ACTIVITY: &str = "Device / DGA Activity";

/// Keys each tracker holds at once.
pub const MAX_KEYS: usize = 4096;
/// Entries kept per key.
pub const MAX_PER_KEY: usize = 64;

/// Evicts the least recently updated eighth of `map` when it is full; returns how many.
fn make_room<V>(map: &mut HashMap<String, V>, last: impl Fn(&V) -> u64) -> u64 {
    if map.len() < MAX_KEYS {
        return 0;
    }
    let mut stamps: Vec<u64> = map.values().map(&last).collect();
    let n = (MAX_KEYS / 8).max(1);
    let (_, cut, _) = stamps.select_nth_unstable(n - 1);
    let cut = *cut;
    let before = map.len();
    map.retain(|_, v| last(v) > cut);
    (before - map.len()) as u64
}

/// One breach remembered by the correlator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub device: String,
    pub ts: u64,
    pub score: u8,
    pub flow_id: u64,
}

/// Groups breaches of one model by registrable domain and by external IP.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Correlator {
    groups: HashMap<String, Vec<Member>>,
    #[serde(default)]
    pub evictions: u64,
}

impl Correlator {
    /// Adds a breach to the group `key` and returns the distinct devices seen in it within
    /// `window_us`, oldest first.
    pub fn add(&mut self, key: &str, m: Member, window_us: u64) -> Vec<Member> {
        if !self.groups.contains_key(key) {
            self.evictions += make_room(&mut self.groups, |v| v.last().map_or(0, |m| m.ts));
        }
        let g = self.groups.entry(key.to_string()).or_default();
        let now = m.ts;
        g.retain(|x| x.ts + window_us >= now);
        g.push(m);
        if g.len() > MAX_PER_KEY {
            let extra = g.len() - MAX_PER_KEY;
            g.drain(..extra);
        }
        let mut seen: Vec<Member> = Vec::new();
        for x in g.iter() {
            if !seen.iter().any(|s| s.device == x.device) {
                seen.push(x.clone());
            }
        }
        seen
    }
}

/// Connection times from one device to one destination.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Series {
    pub ts: Vec<u64>,
}

/// What a regular series looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regularity {
    pub count: usize,
    pub mean_s: f64,
    pub mad_s: f64,
    pub span_s: f64,
}

impl Regularity {
    pub fn jitter(&self) -> f64 {
        if self.mean_s > 0.0 {
            self.mad_s / self.mean_s
        } else {
            f64::INFINITY
        }
    }
}

/// Beacon detection: per (device, destination) connection times.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Beacons {
    series: HashMap<String, Series>,
    #[serde(default)]
    pub evictions: u64,
}

impl Beacons {
    /// Records a connection at `ts` (µs). Connections less than a second apart count once (a
    /// browser opening parallel connections). Returns the regularity of the kept series.
    pub fn add(&mut self, key: &str, ts: u64) -> Option<Regularity> {
        if !self.series.contains_key(key) {
            self.evictions += make_room(&mut self.series, |s| s.ts.last().copied().unwrap_or(0));
        }
        let s = self.series.entry(key.to_string()).or_default();
        // Keep the series sorted even if an event arrives late.
        let at = s.ts.partition_point(|&t| t <= ts);
        let near = |t: Option<&u64>| t.is_some_and(|&t| t.abs_diff(ts) < 1_000_000);
        if near(at.checked_sub(1).and_then(|i| s.ts.get(i))) || near(s.ts.get(at)) {
            return None;
        }
        s.ts.insert(at, ts);
        if s.ts.len() > MAX_PER_KEY {
            let extra = s.ts.len() - MAX_PER_KEY;
            s.ts.drain(..extra);
        }
        regularity(&s.ts)
    }
}

/// Mean interval and mean absolute deviation of the intervals of `ts` (µs, ascending).
pub fn regularity(ts: &[u64]) -> Option<Regularity> {
    if ts.len() < 3 {
        return None;
    }
    let iv: Vec<f64> = ts
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]) as f64 / 1e6)
        .collect();
    let n = iv.len() as f64;
    let mean = iv.iter().sum::<f64>() / n;
    let mad = iv.iter().map(|x| (x - mean).abs()).sum::<f64>() / n;
    let span = (ts[ts.len() - 1] - ts[0]) as f64 / 1e6;
    Some(Regularity {
        count: ts.len(),
        mean_s: mean,
        mad_s: mad,
        span_s: span,
    })
}

/// NXDOMAIN answers for random-looking names, per device.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct NxBursts {
    per_device: HashMap<String, Vec<(u64, String)>>,
    #[serde(default)]
    pub evictions: u64,
}

impl NxBursts {
    /// Adds one NXDOMAIN name; returns the distinct names within `window_us`.
    pub fn add(&mut self, device: &str, ts: u64, fqdn: &str, window_us: u64) -> Vec<String> {
        if !self.per_device.contains_key(device) {
            self.evictions += make_room(&mut self.per_device, |v| v.last().map_or(0, |x| x.0));
        }
        let v = self.per_device.entry(device.to_string()).or_default();
        v.retain(|(t, _)| t + window_us >= ts);
        if !v.iter().any(|(_, n)| n == fqdn) {
            v.push((ts, fqdn.to_string()));
        }
        if v.len() > MAX_PER_KEY {
            let extra = v.len() - MAX_PER_KEY;
            v.drain(..extra);
        }
        v.iter().map(|(_, n)| n.clone()).collect()
    }
}

/// All model state that must survive a restart.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub correlator: Correlator,
    pub beacons: Beacons,
    pub nx: NxBursts,
}

impl State {
    pub fn evictions(&self) -> u64 {
        self.correlator.evictions + self.beacons.evictions + self.nx.evictions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_series_has_low_jitter() {
        let mut b = Beacons::default();
        let mut r = None;
        for i in 0..30u64 {
            let wobble = [0u64, 2, 1, 0, 2][(i % 5) as usize] * 1_000_000;
            r = b.add("d|x", i * 60_000_000 + wobble);
        }
        let r = r.unwrap();
        assert_eq!(r.count, 30);
        assert!((r.mean_s - 60.0).abs() < 1.0, "{r:?}");
        assert!(r.jitter() < 0.05, "{r:?}");
        // A second connection within a second is not a new beat.
        assert!(b.add("d|x", 29 * 60_000_000 + 2_500_000).is_none());
    }

    #[test]
    fn irregular_series_has_high_jitter() {
        let ts: Vec<u64> = [0u64, 5, 200, 260, 1900, 1910, 4000]
            .iter()
            .map(|s| s * 1_000_000)
            .collect();
        assert!(regularity(&ts).unwrap().jitter() > 0.5);
    }

    #[test]
    fn correlator_counts_distinct_devices_in_window() {
        let mut c = Correlator::default();
        let m = |d: &str, ts: u64| Member {
            device: d.into(),
            ts,
            score: 70,
            flow_id: 1,
        };
        let w = 24 * 3600 * 1_000_000;
        assert_eq!(c.add("ip:1", m("a", 0), w).len(), 1);
        assert_eq!(c.add("ip:1", m("a", 10), w).len(), 1);
        assert_eq!(c.add("ip:1", m("b", 20), w).len(), 2);
        // 25 h later, a and b have left the window.
        assert_eq!(c.add("ip:1", m("c", w + 3_600_000_000), w).len(), 1);
    }

    #[test]
    fn trackers_are_bounded() {
        let mut n = NxBursts::default();
        for i in 0..(MAX_KEYS as u64 * 2) {
            n.add(&format!("dev{i}"), i, "x.com", 10);
        }
        assert!(n.per_device.len() <= MAX_KEYS);
        assert!(n.evictions > 0);
        let names = n.add("one", 0, "a.com", 1000);
        assert_eq!(names.len(), 1);
        for i in 0..200u64 {
            n.add("one", i, &format!("n{i}.com"), 1_000_000);
        }
        assert_eq!(n.add("one", 201, "z.com", 1_000_000).len(), MAX_PER_KEY);
    }
}
