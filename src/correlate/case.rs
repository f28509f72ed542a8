//! Cases (groups of joined breaches) and their timeline entries, and how a case reads as an
//! [`Incident`]: title, severity, entities, timeline, summary and actions.
//!
//! A timeline entry is one breach plus its repeats (same model and entities); when a case has
//! more than `max_events` entries the two oldest of the most frequent model are folded into one
//! (counts and devices kept, bounded by [`MAX_DEVICES_PER_ENTRY`]). Risk counts every distinct
//! breach once, whatever the folding (up to [`MAX_SEEN`] remembered, the rest added blindly).
//! Ids are FNV-1a of the founding breach (stable across runs); dedup hashes are SipHash-1-3 with
//! a per-engine secret key, so input cannot make two breaches collide on purpose. Nothing here
//! panics on any input; every list is capped.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::engine::{Counters, MAX_KEYS_PER_BREACH};
use super::narrative;
use super::{
    Binding, Entities, EntityKey, Incident, Kind, MAX_TEXT, OUTBOUND_SPIKE, Severity, TITLE_HIJACK,
    TITLE_PHISHING, TITLE_SSL_C2, TimelineEvent, clip,
};
use crate::event::format_ts;
use crate::models::{MULTIPLE_DEVICES, ModelBreach, SSL_C2, SUSPICIOUS_DOMAIN};

/// Bindings recorded per incident.
pub const MAX_BINDINGS: usize = 16;
/// Distinct breaches remembered per incident for deduplication; beyond it new ones still add
/// risk but repeats of them are no longer recognised.
pub const MAX_SEEN: usize = 1024;
/// Reasons kept per timeline entry.
pub const MAX_REASONS: usize = 8;
/// Domains kept per timeline entry for "hosted on" / "which hosts".
pub const MAX_HOSTS: usize = 4;
/// Devices kept per timeline entry (multi-device breaches, folded entries).
pub const MAX_DEVICES_PER_ENTRY: usize = 64;
/// Items per entity list of an emitted incident.
pub const MAX_ENTITY_LIST: usize = 64;

/// The device of a breach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeviceRef {
    pub ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// One timeline entry: a breach, its repeats, and (when the timeline is full) older breaches
/// of the same model folded into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub dedup: u64,
    pub ts: u64,
    pub last: u64,
    pub count: u32,
    pub model: String,
    pub score: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Other distinct breaches folded into this entry.
    #[serde(default)]
    pub folded: u32,
}

pub(crate) fn name(s: &Option<String>) -> Option<String> {
    let s = s.as_deref()?.trim().trim_end_matches('.').to_lowercase();
    (!s.is_empty()).then(|| clip(&s, MAX_TEXT))
}

fn text(s: &Option<String>) -> Option<String> {
    let s = s.as_deref()?;
    (!s.trim().is_empty()).then(|| clip(s, MAX_TEXT))
}

impl Entry {
    pub(crate) fn from_breach(b: &ModelBreach) -> Entry {
        Entry {
            dedup: 0,
            ts: b.ts_us,
            last: b.ts_us,
            count: 1,
            model: clip(b.model, MAX_TEXT),
            score: b.score.min(100),
            device: b.device.as_ref().map(|d| DeviceRef {
                ip: d.ip,
                mac: d.mac.as_deref().and_then(super::bindings::normalize_mac),
                hostname: name(&d.hostname),
            }),
            devices: b
                .devices
                .iter()
                .take(MAX_DEVICES_PER_ENTRY)
                .copied()
                .collect(),
            user: name(&b.user),
            domain: name(&b.domain),
            fqdn: name(&b.fqdn),
            ip: b.ip,
            url: text(&b.url),
            rule: b.rule.as_deref().map(|r| clip(r, MAX_TEXT)),
            reasons: b
                .reasons
                .iter()
                .take(MAX_REASONS)
                .map(|r| clip(r, MAX_TEXT))
                .collect(),
            hosts: Vec::new(),
            folded: 0,
        }
    }

    /// Every entity the breach names (joinable or not).
    pub(crate) fn keys(&self) -> Vec<EntityKey> {
        let mut k = Vec::new();
        if let Some(d) = &self.device {
            k.push(EntityKey::new(Kind::Device, d.ip.to_string()));
            if let Some(m) = &d.mac {
                k.push(EntityKey::new(Kind::Mac, m.clone()));
            }
            if let Some(h) = &d.hostname {
                k.push(EntityKey::new(Kind::Host, h.clone()));
            }
        }
        for ip in &self.devices {
            k.push(EntityKey::new(Kind::Device, ip.to_string()));
        }
        if let Some(u) = &self.user {
            k.push(EntityKey::new(Kind::User, u.clone()));
        }
        if let Some(ip) = self.ip {
            k.push(EntityKey::new(Kind::Ip, ip.to_string()));
        }
        if let Some(d) = &self.domain {
            k.push(EntityKey::new(Kind::Domain, d.clone()));
        }
        if let Some(u) = &self.url {
            k.push(EntityKey::new(Kind::Url, u.clone()));
        }
        k.truncate(MAX_KEYS_PER_BREACH);
        k
    }

    /// The entity a breach is mainly about.
    pub(crate) fn main_entity(&self) -> String {
        if let Some(d) = &self.device {
            return d.ip.to_string();
        }
        if let Some(ip) = self.devices.first() {
            return ip.to_string();
        }
        self.user
            .clone()
            .or_else(|| self.domain.clone())
            .or_else(|| self.ip.map(|i| i.to_string()))
            .or_else(|| self.url.clone())
            .unwrap_or_default()
    }

    pub(crate) fn is_saas(&self) -> bool {
        self.model.starts_with("SaaS /")
    }

    /// SaaS access and compromise models: evidence that someone else holds the account.
    pub(crate) fn is_account_compromise(&self) -> bool {
        self.model.starts_with("SaaS / Access /") || self.model.starts_with("SaaS / Compromise /")
    }

    pub(crate) fn is_network(&self) -> bool {
        self.device.is_some() || !self.devices.is_empty()
    }

    /// Every device IP of the entry.
    pub(crate) fn device_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.device
            .iter()
            .map(|d| d.ip)
            .chain(self.devices.iter().copied())
    }

    /// An earlier occurrence of the same breach (`e`, whose count and last time are already
    /// added): the entry shows its facts, so the timeline does not depend on arrival order.
    pub(crate) fn take_earlier(&mut self, e: Entry) {
        if e.dedup == self.dedup && self.folded == 0 && e.folded == 0 {
            let (count, last) = (self.count, self.last);
            *self = Entry { count, last, ..e };
        } else {
            self.ts = self.ts.min(e.ts);
        }
    }

    pub(crate) fn order(&self) -> (u64, &str, String) {
        (self.ts, &self.model, self.main_entity())
    }

    pub(crate) fn range(&self) -> (u64, u64) {
        (self.ts, self.last.max(self.ts))
    }
}

/// A group of joined breaches: a silent candidate, or an incident once opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Case {
    pub(crate) id: String,
    /// Time of the founding breach: the earliest one until the case is first emitted.
    pub(crate) founded: u64,
    pub(crate) opened: bool,
    /// Versions emitted so far.
    pub(crate) version: u32,
    pub(crate) entries: Vec<Entry>,
    pub(crate) keys: BTreeSet<EntityKey>,
    /// Dedup hash -> score of every distinct breach (up to [`MAX_SEEN`]).
    pub(crate) seen: BTreeMap<u64, u8>,
    /// Risk of distinct breaches beyond [`MAX_SEEN`].
    pub(crate) overflow_risk: u32,
    pub(crate) bindings: Vec<Binding>,
    pub(crate) merged: Vec<String>,
    pub(crate) first_ts: u64,
    pub(crate) last_ts: u64,
}

impl Case {
    pub(crate) fn risk(&self) -> u32 {
        let seen: u32 = self.seen.values().map(|&s| u32::from(s)).sum();
        seen.saturating_add(self.overflow_risk)
    }

    /// Highest score of any breach, folded ones included.
    pub(crate) fn max_score(&self) -> u8 {
        let entries = self.entries.iter().map(|e| e.score);
        entries
            .chain(self.seen.values().copied())
            .max()
            .unwrap_or(0)
    }

    /// True when some breach of the case lies within `w` of one of `ranges`.
    pub(crate) fn near(&self, ranges: &[(u64, u64)], w: u64) -> bool {
        self.entries.iter().any(|e| {
            let (a0, a1) = e.range();
            ranges.iter().any(|&(b0, b1)| {
                // Both differences are 0 when the ranges overlap.
                let gap = b0.saturating_sub(a1).max(a0.saturating_sub(b1));
                gap <= w
            })
        })
    }

    /// Recomputes the founding breach and id of a case never emitted.
    pub(crate) fn refound(&mut self) {
        if self.version > 0 {
            return;
        }
        if let Some(e) = self.entries.first() {
            self.founded = e.ts;
            self.id = base_id(e);
        }
    }

    /// Adds an entry; returns `None` for a new breach, `Some(emit)` for a repeat.
    pub(crate) fn put(
        &mut self,
        e: Entry,
        gap_us: u64,
        max_events: usize,
        c: &mut Counters,
    ) -> Option<bool> {
        self.first_ts = self.first_ts.min(e.ts);
        self.last_ts = self.last_ts.max(e.last);
        if let Some(s) = self.seen.get_mut(&e.dedup) {
            *s = (*s).max(e.score);
            c.repeats += 1;
            let at = self
                .entries
                .iter()
                .position(|x| x.dedup == e.dedup)
                .or_else(|| self.entries.iter().position(|x| x.model == e.model));
            let Some(x) = at.and_then(|i| self.entries.get_mut(i)) else {
                return Some(false);
            };
            let emit = e.ts > x.last.saturating_add(gap_us);
            x.count = x.count.saturating_add(e.count);
            x.last = x.last.max(e.last);
            if e.ts < x.ts {
                x.take_earlier(e);
                self.entries.sort_by(|a, b| a.order().cmp(&b.order()));
            }
            return Some(emit);
        }
        if self.seen.len() < MAX_SEEN {
            self.seen.insert(e.dedup, e.score);
        } else {
            self.overflow_risk = self.overflow_risk.saturating_add(u32::from(e.score));
            c.seen_overflow += 1;
        }
        let at = self.entries.partition_point(|x| x.order() <= e.order());
        self.entries.insert(at, e);
        while self.entries.len() > max_events {
            self.fold();
            c.timeline_folds += 1;
        }
        None
    }

    /// Folds the two oldest entries of the model with most entries into one.
    pub(crate) fn fold(&mut self) {
        let mut per_model: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            per_model.entry(&e.model).or_insert((0, i)).0 += 1;
        }
        let best = per_model
            .values()
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .copied();
        let (first, second) = match best {
            Some((n, i)) if n >= 2 => {
                let model = self.entries.get(i).map(|e| e.model.clone());
                let j = self
                    .entries
                    .iter()
                    .enumerate()
                    .skip(i + 1)
                    .find(|(_, e)| Some(&e.model) == model.as_ref())
                    .map(|(j, _)| j);
                (i, j.unwrap_or(1))
            }
            _ => (0, 1),
        };
        if second >= self.entries.len() || first == second {
            self.entries.truncate(self.entries.len().saturating_sub(1));
            return;
        }
        let b = self.entries.remove(second);
        if let Some(a) = self.entries.get_mut(first) {
            a.count = a.count.saturating_add(b.count);
            a.last = a.last.max(b.last);
            a.folded = a.folded.saturating_add(b.folded).saturating_add(1);
            for ip in b.device_ips() {
                if a.devices.len() < MAX_DEVICES_PER_ENTRY
                    && a.device.as_ref().is_none_or(|d| d.ip != ip)
                    && !a.devices.contains(&ip)
                {
                    a.devices.push(ip);
                }
            }
        }
    }

    pub(crate) fn add_binding(&mut self, b: Binding) -> bool {
        let same =
            |x: &Binding| x.device_ip == b.device_ip && x.user == b.user && x.source == b.source;
        if self.bindings.iter().any(same) || self.bindings.len() >= MAX_BINDINGS {
            return false;
        }
        self.bindings.push(b);
        true
    }
}

/// FNV-1a over `parts` (with separators): stable across runs, for ids only.
pub(crate) fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

pub(crate) fn base_id(e: &Entry) -> String {
    let ts = e.ts.to_string();
    let h = fnv(&[
        e.model.as_bytes(),
        e.main_entity().as_bytes(),
        ts.as_bytes(),
    ]);
    format!("inc-{:012x}", h >> 16)
}

/// SipHash-1-3 with a per-engine secret key: dedup hashes that input cannot collide on purpose.
pub(crate) fn siphash13((k0, k1): (u64, u64), data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let m = u64::from_le_bytes(w);
        v[3] ^= m;
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = (data.len() as u64) << 56;
    for (i, &b) in chunks.remainder().iter().enumerate() {
        last |= u64::from(b) << (8 * i);
    }
    v[3] ^= last;
    round(&mut v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..3 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn push_unique(list: &mut Vec<String>, v: String) {
    if list.len() < MAX_ENTITY_LIST && !list.contains(&v) {
        list.push(v);
    }
}

fn entities(case: &Case) -> Entities {
    let mut out = Entities::default();
    for e in &case.entries {
        for ip in e.device_ips() {
            push_unique(&mut out.devices, ip.to_string());
        }
        if let Some(u) = &e.user {
            push_unique(&mut out.users, u.clone());
        }
        if let Some(ip) = e.ip {
            push_unique(&mut out.ips, ip.to_string());
        }
        if let Some(d) = e.domain.as_ref().or(e.fqdn.as_ref()) {
            push_unique(&mut out.domains, d.clone());
        }
        if let Some(u) = &e.url {
            push_unique(&mut out.urls, u.clone());
        }
    }
    for b in &case.bindings {
        push_unique(&mut out.devices, b.device_ip.to_string());
        push_unique(&mut out.users, b.user.clone());
    }
    out
}

/// The fixed-vocabulary title.
fn title(case: &Case) -> String {
    let entries = &case.entries;
    let compromise: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.is_account_compromise())
        .collect();
    if !compromise.is_empty() {
        let models: BTreeSet<&str> = compromise.iter().map(|e| e.model.as_str()).collect();
        let net_ips: BTreeSet<IpAddr> = entries
            .iter()
            .filter(|e| e.is_network())
            .filter_map(|e| e.ip)
            .collect();
        let net_devices: BTreeSet<IpAddr> = entries
            .iter()
            .filter(|e| e.is_network())
            .flat_map(|e| e.device_ips())
            .collect();
        let same_ip = compromise
            .iter()
            .filter_map(|e| e.ip)
            .any(|ip| net_ips.contains(&ip));
        let bound_device = case.bindings.iter().any(|b| {
            net_devices.contains(&b.device_ip)
                && compromise.iter().any(|e| e.user.as_ref() == Some(&b.user))
        });
        if same_ip || bound_device || models.len() >= 2 {
            return TITLE_HIJACK.to_string();
        }
    }
    let saas = entries.iter().any(Entry::is_saas);
    if !saas && entries.iter().any(|e| e.model == SSL_C2) {
        return TITLE_SSL_C2.to_string();
    }
    if !saas && phishing_devices(entries) {
        return TITLE_PHISHING.to_string();
    }
    let main = entries
        .first()
        .map(|e| {
            e.device
                .as_ref()
                .and_then(|d| d.hostname.as_ref())
                .map(|h| format!("{h} ({})", e.main_entity()))
                .unwrap_or_else(|| e.main_entity())
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "unknown entity".to_string());
    format!("Suspicious Activity on {main}")
}

/// A multi-device breach, or at least three devices breaching `Device / Suspicious Domain`.
fn phishing_devices(entries: &[Entry]) -> bool {
    let devices: BTreeSet<IpAddr> = entries
        .iter()
        .filter(|e| e.model == SUSPICIOUS_DOMAIN)
        .flat_map(|e| e.device_ips())
        .collect();
    devices.len() >= 3 || entries.iter().any(|e| e.model == MULTIPLE_DEVICES)
}

fn severity(case: &Case, title: &str) -> Severity {
    let risk = case.risk();
    let by_risk = match risk {
        600.. => Severity::Critical,
        300.. => Severity::High,
        150.. => Severity::Medium,
        _ => Severity::Low,
    };
    let spike = case.entries.iter().any(|e| e.model == OUTBOUND_SPIKE);
    let by_title = match title {
        TITLE_HIJACK if spike => Severity::Critical,
        TITLE_HIJACK | TITLE_SSL_C2 => Severity::High,
        TITLE_PHISHING => Severity::Medium,
        _ if case.max_score() >= 80 => Severity::Medium,
        _ => Severity::Low,
    };
    by_risk.max(by_title)
}

pub(crate) fn snapshot(case: &Case) -> Incident {
    let title = title(case);
    let entities = entities(case);
    let events = case
        .entries
        .iter()
        .map(|e| TimelineEvent {
            timestamp: format_ts(e.ts),
            model: e.model.clone(),
            score: e.score,
            summary: narrative::event_line(e),
            device: e.device_ips().next().map(|ip| ip.to_string()),
            user: e.user.clone(),
            ip: e.ip.map(|ip| ip.to_string()),
            domain: e.domain.clone(),
            url: e.url.clone(),
            rule: e.rule.clone(),
            count: e.count,
            last_timestamp: (e.count > 1).then(|| format_ts(e.last)),
        })
        .collect();
    Incident {
        id: case.id.clone(),
        version: case.version,
        severity: severity(case, &title),
        title,
        summary: narrative::summary(&case.entries),
        actions: narrative::actions(&case.entries),
        entities,
        events,
        bindings: case.bindings.clone(),
        first_ts: case.first_ts,
        last_ts: case.last_ts,
        risk: case.risk(),
        merged: case.merged.clone(),
    }
}
