//! What this network has seen: per registrable domain, per FQDN, per device and per external
//! IP, kept in the state store (see [`crate::store`]) behind bounded caches.
//!
//! Every list inside a record is capped ([`MAX_DOMAIN_DEVICES`], [`MAX_DOMAIN_IPS`],
//! [`MAX_DEVICE_DOMAINS`], [`MAX_IP_BINDINGS`]); when full, the least recently seen entry is
//! replaced and the replacement counted. A domain whose device list is full is simply "common":
//! rarity only needs exact counts when they are small.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::settings::Settings;
use crate::store::{self, Flush, Record, Store, Table, TableCounters};

pub const MAX_DOMAIN_DEVICES: usize = 32;
pub const MAX_DOMAIN_IPS: usize = 16;
pub const MAX_DEVICE_DOMAINS: usize = 128;
pub const MAX_IP_BINDINGS: usize = 32;

/// A registrable domain's history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DomainRec {
    pub first: u64,
    pub last: u64,
    pub hits: u64,
    /// Devices that contacted it, with when they last did.
    pub devices: Vec<(IpAddr, u64)>,
    /// Addresses it resolved to (or was connected to), with when.
    pub ips: Vec<(IpAddr, u64)>,
}

impl Record for DomainRec {
    fn last_us(&self) -> u64 {
        self.last
    }
}

impl DomainRec {
    /// Devices seen within the window ending at `now`; `full` when the list is at its cap.
    pub fn devices_since(&self, since: u64) -> (usize, bool) {
        let n = self.devices.iter().filter(|(_, t)| *t >= since).count();
        (n, self.devices.len() >= MAX_DOMAIN_DEVICES)
    }
}

/// An FQDN's history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FqdnRec {
    pub first: u64,
    pub last: u64,
    pub hits: u64,
}

impl Record for FqdnRec {
    fn last_us(&self) -> u64 {
        self.last
    }
}

/// A device's history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceRec {
    pub first: u64,
    pub last: u64,
    /// Registrable domains it contacted, with when it last did.
    pub domains: Vec<(String, u64)>,
}

impl Record for DeviceRec {
    fn last_us(&self) -> u64 {
        self.last
    }
}

/// A domain bound to an IP by a DNS answer (or a connection).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Binding {
    pub domain: String,
    pub fqdn: String,
    pub ts: u64,
    /// The domain was young or rare (scored as suspect) when bound.
    pub suspect: bool,
    pub score: u8,
    /// The device that asked (the latest one when several did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<IpAddr>,
}

/// An external IP's bindings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IpRec {
    pub last: u64,
    pub bindings: Vec<Binding>,
}

impl Record for IpRec {
    fn last_us(&self) -> u64 {
        self.last
    }
}

/// A breach already emitted (fires once per instance).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Fired {
    pub ts: u64,
}

impl Record for Fired {
    fn last_us(&self) -> u64 {
        self.ts
    }
}

/// Replaces the least recently seen entry of a capped `(key, last)` list, or pushes.
fn touch<K: PartialEq>(list: &mut Vec<(K, u64)>, key: K, ts: u64, cap: usize) -> u64 {
    if let Some(e) = list.iter_mut().find(|(k, _)| *k == key) {
        e.1 = e.1.max(ts);
        return 0;
    }
    if list.len() < cap {
        list.push((key, ts));
        return 0;
    }
    if let Some(oldest) = list.iter_mut().min_by_key(|(_, t)| *t) {
        *oldest = (key, ts);
    }
    1
}

/// The tables plus the in-memory device activity index.
pub struct History {
    pub domains: Table<DomainRec>,
    pub fqdns: Table<FqdnRec>,
    pub devices: Table<DeviceRec>,
    pub ips: Table<IpRec>,
    pub fired: Table<Fired>,
    /// Device -> last seen, for the active-device count (at most `max_devices`).
    active: HashMap<IpAddr, u64>,
    max_devices: usize,
    active_cache: Option<(u64, usize)>,
    /// Entries replaced inside capped per-record lists.
    pub list_evictions: u64,
    pub active_evictions: u64,
}

impl History {
    pub fn open(store: &mut Store, s: &Settings) -> History {
        let cache = s.cache_entries;
        let max_devices = s.max_devices as usize;
        let mut h = History {
            domains: Table::new(store, "domains", cache, s.max_domains),
            fqdns: Table::new(store, "fqdns", cache, s.max_fqdns),
            devices: Table::new(store, "devices", cache.min(max_devices), s.max_devices),
            ips: Table::new(store, "ips", cache, s.max_ips),
            fired: Table::new(store, "fired", cache, 100_000),
            active: HashMap::new(),
            max_devices,
            active_cache: None,
            list_evictions: 0,
            active_evictions: 0,
        };
        for (k, rec) in store.load_all::<DeviceRec>("devices", max_devices) {
            if let Ok(ip) = k.parse::<IpAddr>() {
                h.active.insert(ip, rec.last);
            }
        }
        h
    }

    /// Records that `device` contacted `fqdn` (registrable `domain`) at `ts`, optionally via
    /// external `ip`.
    pub fn contact(
        &mut self,
        store: &mut Store,
        ts: u64,
        device: IpAddr,
        domain: &str,
        fqdn: &str,
        ip: Option<IpAddr>,
    ) {
        let new = |ts| DomainRec {
            first: ts,
            last: ts,
            ..DomainRec::default()
        };
        let d = self.domains.entry(store, domain, || new(ts));
        d.first = d.first.min(ts);
        d.last = d.last.max(ts);
        d.hits += 1;
        let mut ev = touch(&mut d.devices, device, ts, MAX_DOMAIN_DEVICES);
        if let Some(ip) = ip {
            ev += touch(&mut d.ips, ip, ts, MAX_DOMAIN_IPS);
        }
        let f = self.fqdns.entry(store, fqdn, || FqdnRec {
            first: ts,
            last: ts,
            hits: 0,
        });
        f.first = f.first.min(ts);
        f.last = f.last.max(ts);
        f.hits += 1;
        let dv = self
            .devices
            .entry(store, &device.to_string(), || DeviceRec {
                first: ts,
                last: ts,
                domains: Vec::new(),
            });
        dv.last = dv.last.max(ts);
        ev += touch(&mut dv.domains, domain.to_string(), ts, MAX_DEVICE_DOMAINS);
        self.list_evictions += ev;
        self.seen_device(device, ts);
    }

    fn seen_device(&mut self, device: IpAddr, ts: u64) {
        if let Some(t) = self.active.get_mut(&device) {
            *t = (*t).max(ts);
            return;
        }
        if self.active.len() >= self.max_devices
            && let Some((&oldest, _)) = self.active.iter().min_by_key(|(_, t)| **t)
        {
            self.active.remove(&oldest);
            self.active_evictions += 1;
        }
        self.active.insert(device, ts);
        self.active_cache = None;
    }

    /// Devices active since `since`; recomputed at most once a minute of event time.
    pub fn active_devices(&mut self, now: u64, since: u64) -> usize {
        if let Some((at, n)) = self.active_cache
            && now >= at
            && now < at + 60_000_000
        {
            return n;
        }
        let n = self.active.values().filter(|t| **t >= since).count();
        self.active_cache = Some((now, n));
        n
    }

    /// Binds `domain` to external `ip` from a DNS answer.
    pub fn bind(&mut self, store: &mut Store, ip: IpAddr, b: Binding, ttl_us: u64) {
        let now = b.ts;
        let r = self.ips.entry(store, &ip.to_string(), IpRec::default);
        r.last = r.last.max(now);
        r.bindings.retain(|x| x.ts + ttl_us >= now);
        if let Some(x) = r
            .bindings
            .iter_mut()
            .find(|x| x.domain == b.domain && x.fqdn == b.fqdn)
        {
            x.ts = x.ts.max(b.ts);
            x.suspect = b.suspect;
            x.score = b.score;
            if b.device.is_some() {
                x.device = b.device;
            }
            return;
        }
        if r.bindings.len() >= MAX_IP_BINDINGS
            && let Some(i) = r
                .bindings
                .iter()
                .enumerate()
                .min_by_key(|(_, x)| x.ts)
                .map(|(i, _)| i)
        {
            r.bindings.swap_remove(i);
            self.list_evictions += 1;
        }
        r.bindings.push(b);
    }

    /// The domains bound to `ip` since `since` (newest first) — "which domains resolved to
    /// this IP recently?". Filter on `suspect` for the young or rare ones.
    pub fn bound_to(&mut self, store: &mut Store, ip: IpAddr, since: u64) -> Vec<Binding> {
        let mut v: Vec<Binding> = self
            .ips
            .get(store, &ip.to_string())
            .map(|r| {
                r.bindings
                    .iter()
                    .filter(|b| b.ts >= since)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|b| std::cmp::Reverse(b.ts));
        v
    }

    /// Whether `key` already fired; marks it fired at `ts` otherwise.
    pub fn fire_once(&mut self, store: &mut Store, key: &str, ts: u64) -> bool {
        if self.fired.get(store, key).is_some() {
            return false;
        }
        self.fired.entry(store, key, || Fired { ts });
        true
    }

    pub fn dirty(&self) -> usize {
        self.domains.dirty_len()
            + self.fqdns.dirty_len()
            + self.devices.dirty_len()
            + self.ips.dirty_len()
            + self.fired.dirty_len()
    }

    pub fn tables(&mut self) -> [&mut dyn Flush; 5] {
        [
            &mut self.domains,
            &mut self.fqdns,
            &mut self.devices,
            &mut self.ips,
            &mut self.fired,
        ]
    }

    pub fn counters(&self) -> [(&'static str, TableCounters); 5] {
        [
            ("domains", self.domains.counters),
            ("fqdns", self.fqdns.counters),
            ("devices", self.devices.counters),
            ("ips", self.ips.counters),
            ("fired", self.fired.counters),
        ]
    }

    pub fn known_devices(&self) -> usize {
        self.active.len()
    }
}

/// Re-export for callers that only need the error type.
pub type StoreError = store::Error;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_lists_replace_the_oldest() {
        let mut v: Vec<(u32, u64)> = Vec::new();
        for i in 0..4 {
            assert_eq!(touch(&mut v, i, u64::from(i) + 10, 4), 0);
        }
        assert_eq!(touch(&mut v, 2, 100, 4), 0);
        assert_eq!(touch(&mut v, 9, 50, 4), 1);
        assert!(v.iter().all(|(k, _)| *k != 0), "{v:?}");
        assert_eq!(v.len(), 4);
    }

    #[test]
    fn bindings_expire_and_answer_queries() {
        let d = std::env::temp_dir().join(format!("crosswire-hist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mut store = Store::open(&d, 1 << 20).unwrap();
        let s = Settings::default();
        let mut h = History::open(&mut store, &s);
        let ip: IpAddr = "193.222.96.91".parse().unwrap();
        let b = |dom: &str, ts, suspect| Binding {
            domain: dom.into(),
            fqdn: dom.into(),
            ts,
            suspect,
            score: 0,
            device: None,
        };
        h.bind(&mut store, ip, b("old.com", 0, false), 100);
        h.bind(&mut store, ip, b("latovafineart.life", 200, true), 100);
        h.bind(&mut store, ip, b("thecalebgroup.top", 250, true), 100);
        let v = h.bound_to(&mut store, ip, 150);
        let names: Vec<_> = v.iter().map(|b| b.domain.as_str()).collect();
        assert_eq!(names, ["thecalebgroup.top", "latovafineart.life"]);
        // Expired on the last bind: old.com is gone even when asking from 0.
        assert_eq!(h.bound_to(&mut store, ip, 0).len(), 2);
        assert!(h.fire_once(&mut store, "k", 1));
        assert!(!h.fire_once(&mut store, "k", 2));
        let _ = std::fs::remove_dir_all(&d);
    }
}
