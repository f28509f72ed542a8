//! The incident engine: joins model breaches that share entities into incidents.
//!
//! Joining. Two groups of breaches ("cases") belong together when they share a joinable entity
//! key and some breach of one lies within `window_us` (event time) of some breach of the other.
//! A new breach is a group of one; when it joins several cases they merge into the one founded
//! earliest, preferring one already emitted (its id survives; the others' ids are listed in
//! `merged` and never emitted again).
//! Because that relation only grows as groups merge, the final grouping does not depend on the
//! order breaches arrive in: SaaS records hours late land where they would have landed on time.
//!
//! Opening. A case stays silent until one breach scores `strong_score` or its risk (the summed
//! score of its distinct breaches; repeats of the same model and entities count once) reaches
//! `open_risk`. From then on every change emits a new version. A repeat only emits when it comes
//! `repeat_emit_gap_us` after the previous occurrence.
//!
//! Bounds: `max_cases` cases (silent candidates evicted first, then the least recently updated
//! incident, which is closed), `max_events` timeline entries per incident (the oldest entries of
//! the most repeated model are folded together), `max_keys_per_case` join keys per incident,
//! [`MAX_INDEX_KEYS`] keys in the entity index, `max_fanout` incidents per key (a key shared by
//! more stops joining), `max_closed` closed incidents kept for listing. Cases idle for
//! `window_us + lateness_us` behind the newest breach time are closed. Every cap has a counter.

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::case::{Case, Entry, MAX_HOSTS, MAX_SEEN, fnv, name, siphash13, snapshot};
use super::{Binding, Context, EntityKey, Incident, Kind, MAX_TEXT, clip, is_joinable_external_ip};
use crate::models::ModelBreach;

const HOUR_US: u64 = 3_600_000_000;

/// Entity keys taken from one breach (its own and those added by bindings).
pub const MAX_KEYS_PER_BREACH: usize = 64;
/// Keys in the entity index (bounded anyway by `max_cases * max_keys_per_case`).
pub const MAX_INDEX_KEYS: usize = 262_144;
/// Binding lookups per breach (devices of a multi-device breach, devices of a user).
pub const MAX_BINDING_LOOKUPS: usize = 8;
/// Merged-away ids listed per incident.
pub const MAX_MERGED_IDS: usize = 32;
/// Candidate checks while looking for the incidents a breach joins.
pub const MAX_JOIN_CHECKS: usize = 4096;
/// Rounds of "the joined incidents' keys find more incidents".
const MAX_JOIN_ROUNDS: usize = 8;
/// The idle sweep runs at most this often (event time).
const SWEEP_EVERY_US: u64 = 60_000_000;

/// Tunables. Defaults suit one site; every value is clamped to a sane range on use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Breaches further apart than this (µs) do not join.
    pub window_us: u64,
    /// How late (µs) a breach may arrive behind the newest one and still join an incident.
    pub lateness_us: u64,
    /// One breach scoring at least this opens an incident.
    pub strong_score: u8,
    /// Summed risk that opens an incident.
    pub open_risk: u32,
    /// Incidents and silent candidates in memory.
    pub max_cases: usize,
    /// Closed incidents kept for listing.
    pub max_closed: usize,
    /// Timeline entries per incident.
    pub max_events: usize,
    /// Incidents an entity may join before it stops joining.
    pub max_fanout: usize,
    /// Join keys per incident.
    pub max_keys_per_case: usize,
    /// A repeat of a breach re-emits the incident only this long (µs) after the last one.
    pub repeat_emit_gap_us: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window_us: 48 * HOUR_US,
            lateness_us: 12 * HOUR_US,
            strong_score: 80,
            open_risk: 150,
            max_cases: 1024,
            max_closed: 256,
            max_events: 64,
            max_fanout: 16,
            max_keys_per_case: 128,
            repeat_emit_gap_us: HOUR_US,
        }
    }
}

impl Settings {
    fn clamped(mut self) -> Self {
        self.window_us = self.window_us.max(1_000_000);
        self.max_cases = self.max_cases.clamp(1, 1 << 20);
        self.max_closed = self.max_closed.min(1 << 20);
        self.max_events = self.max_events.clamp(2, 4096);
        self.max_fanout = self.max_fanout.clamp(1, 4096);
        self.max_keys_per_case = self.max_keys_per_case.clamp(8, 4096);
        self
    }
}

/// What the engine did; shown in `stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub breaches: u64,
    pub new_cases: u64,
    pub joined: u64,
    pub merges: u64,
    pub repeats: u64,
    pub opened: u64,
    pub emitted: u64,
    pub bindings_used: u64,
    /// Keys not joined on: private/resolver addresses, common entities, empty values.
    pub ignored_keys: u64,
    /// Join attempts skipped because the key is shared by too many incidents.
    pub hot_key_skips: u64,
    /// Keys that became too widely shared to join on.
    pub fanout_blocked: u64,
    pub keys_over_cap: u64,
    pub index_full: u64,
    pub join_checks_capped: u64,
    pub timeline_folds: u64,
    pub seen_overflow: u64,
    /// Breaches older than the newest by more than window + lateness.
    pub late_breaches: u64,
    /// Cases pushed out by `max_cases`.
    pub cases_evicted: u64,
    /// Silent candidates that went idle and were dropped.
    pub candidates_expired: u64,
    pub closed: u64,
    /// Closed incidents dropped from memory by `max_closed`.
    pub closed_evicted: u64,
}

/// One key of the entity index: the cases that carry it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Slot {
    cases: BTreeSet<u64>,
    /// Shared by more than `max_fanout` cases: no longer joins.
    #[serde(default)]
    hot: bool,
}

/// The correlation engine. Its whole state is `Serialize + Deserialize`: persist it with the
/// other analysis state and a restart continues exactly where it stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Engine {
    settings: Settings,
    cases: BTreeMap<u64, Case>,
    index: BTreeMap<EntityKey, Slot>,
    closed: VecDeque<Incident>,
    next_handle: u64,
    watermark: u64,
    swept_at: u64,
    hash_key: (u64, u64),
    counters: Counters,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(Settings::default())
    }
}

impl Engine {
    pub fn new(settings: Settings) -> Self {
        let rs = RandomState::new();
        Engine {
            settings: settings.clamped(),
            cases: BTreeMap::new(),
            index: BTreeMap::new(),
            closed: VecDeque::new(),
            next_handle: 0,
            watermark: 0,
            swept_at: 0,
            hash_key: (rs.hash_one(0x5eed_u64), rs.hash_one(0xc0ffee_u64)),
            counters: Counters::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// New settings; smaller caps take effect as cases are added or closed.
    pub fn reconfigure(&mut self, settings: Settings) {
        self.settings = settings.clamped();
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Newest breach time seen (µs).
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    /// The current version of every open incident, oldest first.
    pub fn incidents(&self) -> Vec<Incident> {
        let mut v: Vec<Incident> = self
            .cases
            .values()
            .filter(|c| c.version > 0)
            .map(snapshot)
            .collect();
        v.sort_by(|a, b| (a.first_ts, &a.id).cmp(&(b.first_ts, &b.id)));
        v
    }

    /// Closed incidents still in memory, oldest closed first.
    pub fn closed(&self) -> impl Iterator<Item = &Incident> {
        self.closed.iter()
    }

    /// Hands the closed incidents over (for the caller to persist) and forgets them.
    pub fn take_closed(&mut self) -> Vec<Incident> {
        self.closed.drain(..).collect()
    }

    /// Adds one breach; pushes the incident it changed (if open) to `out`.
    pub fn add(&mut self, b: &ModelBreach, ctx: &mut dyn Context, out: &mut Vec<Incident>) {
        self.counters.breaches += 1;
        let t = b.ts_us;
        self.advance(t);
        let s = &self.settings;
        if t.saturating_add(s.window_us).saturating_add(s.lateness_us) < self.watermark {
            self.counters.late_breaches += 1;
        }
        let mut entry = Entry::from_breach(b);
        let raw = entry.keys();
        entry.dedup = self.dedup_hash(&entry, &raw);
        let mut keys = BTreeSet::new();
        for k in raw {
            self.push_key(&mut keys, k, &*ctx);
        }
        let bindings = self.bind(&entry, t, ctx, &mut keys);
        if let Some(ip) = entry
            .ip
            .filter(|&ip| !entry.is_network() && is_joinable_external_ip(ip))
        {
            entry.hosts = ctx
                .domains_on_ip(ip, t)
                .iter()
                .map(|d| clip(d.trim().trim_end_matches('.'), MAX_TEXT).to_lowercase())
                .filter(|d| !d.is_empty())
                .filter(|d| !ctx.is_common_entity(&EntityKey::new(Kind::Domain, d.clone())))
                .take(MAX_HOSTS)
                .collect();
        }

        let joined = self.find(&keys, t);
        let merges = joined.len().saturating_sub(1);
        let handle = self.gather(joined, t);
        let Some(case) = self.cases.get_mut(&handle) else {
            return;
        };
        let mut changed = merges > 0;
        for b in bindings {
            if case.add_binding(b) {
                self.counters.bindings_used += 1;
                changed = true;
            }
        }
        let s = &self.settings;
        match case.put(
            entry,
            s.repeat_emit_gap_us,
            s.max_events,
            &mut self.counters,
        ) {
            None => changed = true,
            Some(emit) => changed |= emit,
        }
        case.refound();
        for k in keys {
            self.add_key(handle, k);
        }
        self.emit(handle, changed, out);
        self.enforce_cap(handle);
    }

    /// Moves event time forward to `ts_us` (breaches do this themselves; call it on idle ticks
    /// with packet time) and closes cases idle for longer than window + lateness.
    pub fn advance(&mut self, ts_us: u64) {
        if ts_us <= self.watermark {
            return;
        }
        self.watermark = ts_us;
        if self.watermark < self.swept_at.saturating_add(SWEEP_EVERY_US) {
            return;
        }
        self.swept_at = self.watermark;
        let idle = self
            .settings
            .window_us
            .saturating_add(self.settings.lateness_us);
        let stale: Vec<u64> = self
            .cases
            .iter()
            .filter(|(_, c)| c.last_ts.saturating_add(idle) < self.watermark)
            .map(|(&h, _)| h)
            .collect();
        for h in stale {
            self.close(h);
        }
    }

    fn dedup_hash(&self, e: &Entry, raw: &[EntityKey]) -> u64 {
        let mut keys: Vec<String> = raw.iter().map(|k| k.to_string()).collect();
        keys.sort();
        keys.dedup();
        let mut s = String::with_capacity(256);
        s.push_str(&e.model);
        for k in keys {
            s.push('\u{1}');
            s.push_str(&k);
        }
        for extra in [&e.fqdn, &e.rule].into_iter().flatten() {
            s.push('\u{2}');
            s.push_str(extra);
        }
        siphash13(self.hash_key, s.as_bytes())
    }

    /// Adds `k` to `keys` if it may join incidents.
    fn push_key(&mut self, keys: &mut BTreeSet<EntityKey>, k: EntityKey, ctx: &dyn Context) {
        let usable = !k.value.is_empty()
            && match k.kind {
                Kind::Ip => k.value.parse::<IpAddr>().is_ok_and(is_joinable_external_ip),
                Kind::Device => k
                    .value
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| !ip.is_unspecified() && !ip.is_multicast()),
                Kind::Host => k.value.len() >= 2,
                _ => true,
            }
            && !ctx.is_common_entity(&k);
        if !usable {
            self.counters.ignored_keys += 1;
        } else if keys.len() < MAX_KEYS_PER_BREACH {
            keys.insert(k);
        } else {
            self.counters.keys_over_cap += 1;
        }
    }

    /// Device <-> user bindings for the breach: adds the bound entities to `keys`.
    fn bind(
        &mut self,
        e: &Entry,
        t: u64,
        ctx: &mut dyn Context,
        keys: &mut BTreeSet<EntityKey>,
    ) -> Vec<Binding> {
        let mut used = Vec::new();
        for ip in e.device_ips().take(MAX_BINDING_LOOKUPS) {
            if let Some(b) = ctx.user_of_device(ip, t).and_then(|b| sane_binding(b, t)) {
                self.push_key(keys, EntityKey::new(Kind::User, b.user.clone()), &*ctx);
                used.push(b);
            }
        }
        if let Some(user) = &e.user {
            let found = ctx.devices_of_user(user, t);
            for b in found.into_iter().filter_map(|b| sane_binding(b, t)) {
                if used.len() >= MAX_BINDING_LOOKUPS {
                    break;
                }
                self.push_key(
                    keys,
                    EntityKey::new(Kind::Device, b.device_ip.to_string()),
                    &*ctx,
                );
                if let Some(h) = &b.hostname {
                    self.push_key(keys, EntityKey::new(Kind::Host, h.clone()), &*ctx);
                }
                if let Some(m) = &b.mac {
                    self.push_key(keys, EntityKey::new(Kind::Mac, m.clone()), &*ctx);
                }
                used.push(b);
            }
        }
        used
    }

    /// The cases a breach at `t` with `keys` joins, and transitively the cases those join.
    fn find(&mut self, keys: &BTreeSet<EntityKey>, t: u64) -> BTreeSet<u64> {
        let w = self.settings.window_us;
        let mut set: BTreeSet<u64> = BTreeSet::new();
        let mut ranges = vec![(t, t)];
        let mut all_keys = keys.clone();
        let mut checks = 0usize;
        for k in keys {
            if self.index.get(k).is_some_and(|s| s.hot) {
                self.counters.hot_key_skips += 1;
            }
        }
        for _ in 0..MAX_JOIN_ROUNDS {
            let mut added = Vec::new();
            'keys: for k in &all_keys {
                let Some(slot) = self.index.get(k).filter(|s| !s.hot) else {
                    continue;
                };
                for h in &slot.cases {
                    if set.contains(h) || added.contains(h) {
                        continue;
                    }
                    checks += 1;
                    if checks > MAX_JOIN_CHECKS {
                        self.counters.join_checks_capped += 1;
                        break 'keys;
                    }
                    if self.cases.get(h).is_some_and(|c| c.near(&ranges, w)) {
                        added.push(*h);
                    }
                }
            }
            if added.is_empty() {
                break;
            }
            for h in added {
                set.insert(h);
                if let Some(c) = self.cases.get(&h) {
                    ranges.extend(c.entries.iter().map(Entry::range));
                    all_keys.extend(c.keys.iter().cloned());
                }
            }
            if checks > MAX_JOIN_CHECKS {
                break;
            }
        }
        set
    }

    /// Merges the joined cases into the one founded first — among those already emitted, if
    /// any, so an id a reader has seen is never retired in favour of a silent candidate — or
    /// opens a new candidate.
    fn gather(&mut self, joined: BTreeSet<u64>, t: u64) -> u64 {
        let survivor = joined
            .iter()
            .filter_map(|h| {
                self.cases
                    .get(h)
                    .map(|c| ((c.version == 0, c.founded, c.id.clone()), *h))
            })
            .min()
            .map(|(_, h)| h);
        let Some(into) = survivor else {
            self.counters.new_cases += 1;
            let h = self.next_handle;
            self.next_handle += 1;
            self.cases.insert(
                h,
                Case {
                    id: String::new(),
                    founded: t,
                    opened: false,
                    version: 0,
                    entries: Vec::new(),
                    keys: BTreeSet::new(),
                    seen: BTreeMap::new(),
                    overflow_risk: 0,
                    bindings: Vec::new(),
                    merged: Vec::new(),
                    first_ts: t,
                    last_ts: t,
                },
            );
            return h;
        };
        self.counters.joined += 1;
        for h in joined {
            if h != into {
                self.merge(into, h);
            }
        }
        into
    }

    fn merge(&mut self, into: u64, from: u64) {
        let Some(src) = self.cases.remove(&from) else {
            return;
        };
        self.counters.merges += 1;
        for k in &src.keys {
            self.unindex(k, from);
        }
        let s = self.settings.clone();
        let Some(dst) = self.cases.get_mut(&into) else {
            return;
        };
        if src.version > 0 {
            dst.merged.push(src.id.clone());
        }
        for id in src.merged {
            dst.merged.push(id);
        }
        dst.merged.sort();
        dst.merged.dedup();
        dst.merged.truncate(MAX_MERGED_IDS);
        dst.opened |= src.opened;
        for (h, score) in src.seen {
            if dst.seen.len() < MAX_SEEN || dst.seen.contains_key(&h) {
                let s = dst.seen.entry(h).or_insert(0);
                *s = (*s).max(score);
            } else {
                dst.overflow_risk = dst.overflow_risk.saturating_add(u32::from(score));
                self.counters.seen_overflow += 1;
            }
        }
        dst.overflow_risk = dst.overflow_risk.saturating_add(src.overflow_risk);
        for e in src.entries {
            let known = dst.entries.iter_mut().find(|x| x.dedup == e.dedup);
            if let Some(x) = known {
                x.count = x.count.saturating_add(e.count);
                x.last = x.last.max(e.last);
                if e.ts < x.ts {
                    x.take_earlier(e);
                }
                continue;
            }
            dst.entries.push(e);
        }
        dst.entries.sort_by(|a, b| a.order().cmp(&b.order()));
        while dst.entries.len() > s.max_events {
            dst.fold();
            self.counters.timeline_folds += 1;
        }
        dst.first_ts = dst.first_ts.min(src.first_ts);
        dst.last_ts = dst.last_ts.max(src.last_ts);
        for b in src.bindings {
            dst.add_binding(b);
        }
        dst.refound();
        for k in src.keys {
            self.add_key(into, k);
        }
    }

    /// Records `k` as a join key of case `h`, within the caps.
    fn add_key(&mut self, h: u64, k: EntityKey) {
        let max_keys = self.settings.max_keys_per_case;
        let max_fanout = self.settings.max_fanout;
        let Some(case) = self.cases.get_mut(&h) else {
            return;
        };
        if case.keys.contains(&k) {
            return;
        }
        if case.keys.len() >= max_keys {
            self.counters.keys_over_cap += 1;
            return;
        }
        if !self.index.contains_key(&k) && self.index.len() >= MAX_INDEX_KEYS {
            self.counters.index_full += 1;
            return;
        }
        case.keys.insert(k.clone());
        let slot = self.index.entry(k).or_default();
        if slot.hot || slot.cases.contains(&h) {
            return;
        }
        if slot.cases.len() >= max_fanout {
            slot.hot = true;
            self.counters.fanout_blocked += 1;
            return;
        }
        slot.cases.insert(h);
    }

    fn unindex(&mut self, k: &EntityKey, h: u64) {
        if let Some(slot) = self.index.get_mut(k) {
            slot.cases.remove(&h);
            if slot.cases.is_empty() {
                self.index.remove(k);
            }
        }
    }

    /// Opens the case when it qualifies and emits it when open and changed.
    fn emit(&mut self, h: u64, changed: bool, out: &mut Vec<Incident>) {
        let s = &self.settings;
        let Some(case) = self.cases.get(&h) else {
            return;
        };
        let qualifies = case.max_score() >= s.strong_score || case.risk() >= s.open_risk;
        if !case.opened && !qualifies {
            return;
        }
        if case.version > 0 && !changed {
            return;
        }
        let fresh = if case.version == 0 {
            Some(self.unique_id(h, &case.id))
        } else {
            None
        };
        let Some(case) = self.cases.get_mut(&h) else {
            return;
        };
        if !case.opened {
            case.opened = true;
            self.counters.opened += 1;
        }
        if let Some(id) = fresh {
            case.id = id;
        }
        case.version = case.version.saturating_add(1);
        self.counters.emitted += 1;
        out.push(snapshot(case));
    }

    /// `base`, or a variant of it no other incident in memory uses.
    fn unique_id(&self, h: u64, base: &str) -> String {
        let taken = |id: &str| {
            self.cases
                .iter()
                .any(|(&o, c)| o != h && c.version > 0 && c.id == id)
                || self.closed.iter().any(|i| i.id == id)
        };
        let mut id = base.to_string();
        for salt in 1u32..=16 {
            if !taken(&id) {
                return id;
            }
            let salt = salt.to_string();
            id = format!(
                "inc-{:012x}",
                fnv(&[base.as_bytes(), salt.as_bytes()]) >> 16
            );
        }
        format!("inc-{:012x}", h)
    }

    /// Keeps `max_cases`: drops the stalest silent candidate, else closes the stalest incident.
    fn enforce_cap(&mut self, keep: u64) {
        while self.cases.len() > self.settings.max_cases {
            let pick = |opened: bool| {
                self.cases
                    .iter()
                    .filter(|(h, c)| **h != keep && c.opened == opened)
                    .min_by_key(|(h, c)| (c.last_ts, **h))
                    .map(|(h, _)| *h)
            };
            let Some(victim) = pick(false).or_else(|| pick(true)) else {
                return;
            };
            self.counters.cases_evicted += 1;
            self.close(victim);
        }
    }

    fn close(&mut self, h: u64) {
        let Some(case) = self.cases.remove(&h) else {
            return;
        };
        for k in &case.keys {
            self.unindex(k, h);
        }
        if case.version == 0 {
            self.counters.candidates_expired += 1;
            return;
        }
        self.counters.closed += 1;
        self.closed.push_back(snapshot(&case));
        while self.closed.len() > self.settings.max_closed {
            self.closed.pop_front();
            self.counters.closed_evicted += 1;
        }
    }
}

/// A binding as the engine records it: valid at `t`, names clipped, confidence in 0..=1.
fn sane_binding(mut b: Binding, t: u64) -> Option<Binding> {
    if b.expires_us < t {
        return None;
    }
    b.user = clip(b.user.trim(), MAX_TEXT).to_lowercase();
    if b.user.is_empty() {
        return None;
    }
    b.mac = b.mac.as_deref().and_then(super::bindings::normalize_mac);
    b.hostname = name(&b.hostname);
    b.confidence = if b.confidence.is_finite() {
        b.confidence.clamp(0.0, 1.0)
    } else {
        0.0
    };
    Some(b)
}
