//! The analyzer: observations in, history updated, model breaches out.
//!
//! It lives on the output thread. Workers hand their events over in batches, so events reach
//! the output thread roughly, not strictly, in time order (a quiet worker's batch can lag far
//! behind in packet time during replay, because partial batches are only sent when full). The
//! analyzer therefore puts observations through a bounded reorder buffer and analyses them in
//! event-time order: an observation is released once the newest event time is a window past it
//! ([`REPLAY_WINDOW_US`], or [`LIVE_WINDOW_US`] when capturing live), once it has waited
//! [`LIVE_HOLD`] of wall-clock time (live only: this bounds breach latency), or when more than
//! [`REORDER_MAX`] are held. One arriving after later ones were analysed is still analysed, and
//! counted in `late_observations`. Its clock is the largest event time analysed so far. State is committed to the
//! store every `commit_interval` of event time (or when `commit_max_dirty` records changed) and
//! once more at [`Analyzer::finish`].

use std::net::IpAddr;
use std::path::Path;

use serde_json::{Value, json};

use super::feeds::{LoadReport, Popularity, Registrations};
use super::history::{Binding, History};
use super::lookalike::Protected;
use super::score::{Facts, Scored, Scorer, human};
use super::settings::Settings;
use super::{Obs, What, dga, names, observations};
use crate::correlate::{self, BindingTable, Incident};
use crate::event::Event;
use crate::ingest::{Record, SaasEvent, SaasKind};
use crate::models::saas::SaasModels;
use crate::models::{self, Device, Member, ModelBreach};
use crate::store::{self, Store};

/// Event time an observation is held for reordering in replay. Replay sends a worker's batch
/// only when it is full, so with unevenly loaded workers the skew reaches days of packet time;
/// in practice [`REORDER_MAX`] bounds the buffer first.
pub const REPLAY_WINDOW_US: u64 = 7 * 24 * 3_600_000_000;
/// Event time an observation is held for reordering live (the capture side flushes partial
/// batches within milliseconds there).
pub const LIVE_WINDOW_US: u64 = 60_000_000;
/// Wall-clock time an observation is held at most, live.
pub const LIVE_HOLD: std::time::Duration = std::time::Duration::from_secs(2);
/// Wall-clock time between two time-driven commits (bounds fsyncs in fast replay).
pub const MIN_COMMIT_GAP: std::time::Duration = std::time::Duration::from_secs(1);
/// Observations held at most.
pub const REORDER_MAX: usize = 100_000;

/// What the reorder buffer holds: network observations and SaaS/email records, analysed
/// together in event-time order.
enum Item {
    Obs(Obs),
    /// A record, with the source batch it came in (live sources with a checkpoint).
    Record(Box<Record>, Option<u64>),
}

/// An item waiting in the reorder buffer, ordered by (event time, arrival).
struct Held {
    ts: u64,
    seq: u64,
    arrived: std::time::Instant,
    item: Item,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap and the oldest must come out first.
        (o.ts, o.seq).cmp(&(self.ts, self.seq))
    }
}

const META_LEARN_START: &str = "learn_start";
const META_NOW: &str = "now";
const META_MODELS: &str = "models";
const META_SAAS: &str = "saas";
const META_CORRELATE: &str = "correlate";
const META_BINDINGS: &str = "bindings";
/// Wall-clock pacing of commits of SaaS work.
const SAAS_COMMIT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// Prefix of a live source's committed read position.
const META_CHECKPOINT: &str = "checkpoint:";
/// Live source batches in analysis at once.
const MAX_OPEN_BATCHES: usize = 100_000;

/// A batch of records from a live source and its read position after the batch.
struct Batch {
    id: u64,
    source: String,
    remaining: usize,
    checkpoint: Vec<u8>,
}
/// Lifetime of a binding learned from a DHCP lease (the lease time is not carried over).
const LEASE_TTL_US: u64 = 24 * 3_600_000_000;
/// Lifetime of a binding learned from a Kerberos ticket (a TGT's usual lifetime).
const TICKET_TTL_US: u64 = 10 * 3_600_000_000;

/// Running counters, shown in `stats` under `intel`.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub observations: u64,
    /// Names that are not host names (bad characters, too long).
    pub bad_names: u64,
    /// Names without a public registrable domain (`.lan`, `.arpa`, single labels).
    pub ignored_names: u64,
    /// Observations whose client is outside the home networks.
    pub not_a_device: u64,
    pub commits: u64,
    /// Observations that arrived after later ones had already been analysed.
    pub late_observations: u64,
    /// SaaS/email records analysed, and those older than the analyzer's clock when analysed.
    pub records: u64,
    pub late_records: u64,
    /// Sign-ins folded into their twin from the other log.
    pub login_twins: u64,
    /// Source batches given up on (more than `MAX_OPEN_BATCHES` open).
    pub batches_dropped: u64,
    pub breaches: std::collections::BTreeMap<&'static str, u64>,
    pub feeds: LoadReport,
    pub popularity: LoadReport,
}

/// Domain intelligence and device models over one state store.
pub struct Analyzer {
    s: Settings,
    store: Store,
    hist: History,
    scorer: Scorer,
    models: models::State,
    learn_start: Option<u64>,
    now: u64,
    last_commit: u64,
    /// Only build history (the `learn` command): no scoring, no breaches.
    learn_only: bool,
    pub counters: Counters,
    obs: Vec<Obs>,
    held: std::collections::BinaryHeap<Held>,
    /// Replay's records, sorted by event time, merged into the analysis as time passes them.
    preloaded: std::collections::VecDeque<Record>,
    /// Sign-ins waiting for their twin from the other log.
    twins: std::collections::VecDeque<Twin>,
    /// The batch of the record being analysed (live sources).
    record_batch: Option<u64>,
    /// Records analysed since the last commit.
    saas_dirty: u64,
    batch_seq: u64,
    /// Live source batches not yet fully analysed, oldest first.
    batches: std::collections::VecDeque<Batch>,
    /// Read positions safe to commit, by source.
    checkpoints: std::collections::BTreeMap<String, Vec<u8>>,
    seq: u64,
    newest: u64,
    live: bool,
    last_commit_wall: std::time::Instant,
    /// Configurations applied by [`Analyzer::reconfigure`].
    reloads: u64,
    /// SaaS and email models (taken out while they run, see [`super::joint`]).
    saas: Option<SaasModels>,
    /// The correlation engine (taken out while it runs).
    engine: Option<correlate::Engine>,
    bindings: BindingTable,
    /// Incidents opened or updated since the last [`Analyzer::take_incidents`].
    incidents: Vec<Incident>,
    /// `<state>/incidents`: one JSON file per incident, for `crosswire incidents` / `report`.
    incidents_dir: std::path::PathBuf,
    incident_write_errors: u64,
    /// GeoIP/ASN databases for SaaS logins, when configured.
    geoip: Option<crate::ingest::geoip::GeoIp>,
    /// RDAP registration dates, when `[intel] rdap_url` is set.
    rdap: Option<super::rdap::Rdap>,
}

impl Analyzer {
    /// Opens the store in `state_dir` and loads feeds and lists. Bad feed lines are counted
    /// and logged with `file:line`; only a store that cannot be opened is an error.
    pub fn open(
        s: &Settings,
        state_dir: &Path,
        learn_only: bool,
    ) -> Result<Analyzer, store::Error> {
        let mut store = Store::open(state_dir, s.store_cache_bytes)?;
        let hist = History::open(&mut store, s);
        let mut counters = Counters::default();
        let regs = Registrations::load(
            &s.registration_feeds,
            s.max_feed_entries,
            &mut counters.feeds,
        );
        let pop = Popularity::load(
            s.popularity_list.as_deref(),
            s.popularity_max_rank,
            &mut counters.popularity,
        );
        for m in counters
            .feeds
            .messages
            .iter()
            .chain(&counters.popularity.messages)
        {
            tracing::warn!("feed: {m}");
        }
        let u64_meta = |store: &mut Store, k| {
            store
                .meta(k)
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map(u64::from_le_bytes)
        };
        let learn_start = u64_meta(&mut store, META_LEARN_START);
        let now = u64_meta(&mut store, META_NOW).unwrap_or(0);
        let models = store
            .meta(META_MODELS)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let saas_state = store
            .meta(META_SAAS)
            .and_then(|b| serde_json::from_slice(&b).ok());
        let saas = match saas_state {
            Some(st) => SaasModels::from_state(s.saas.clone(), st),
            None => SaasModels::new(s.saas.clone()),
        };
        let mut engine: correlate::Engine = store
            .meta(META_CORRELATE)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| correlate::Engine::new(s.correlate.clone()));
        engine.reconfigure(s.correlate.clone());
        let mut bindings: BindingTable = store
            .meta(META_BINDINGS)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if let Some(p) = &s.devices_csv {
            load_devices(&mut bindings, p);
        }
        tracing::info!(
            dir = %state_dir.display(),
            domains = hist.domains.counters.rows,
            devices = hist.known_devices(),
            feed_entries = regs.len(),
            popular = pop.len(),
            "domain intelligence ready"
        );
        Ok(Analyzer {
            scorer: Scorer {
                regs,
                pop,
                dga: dga::Model::shipped(),
                protected: Protected::new(&s.org_domains, &s.brands),
            },
            s: s.clone(),
            store,
            hist,
            models,
            learn_start,
            now,
            last_commit: now,
            learn_only,
            counters,
            obs: Vec::new(),
            held: std::collections::BinaryHeap::new(),
            preloaded: std::collections::VecDeque::new(),
            twins: std::collections::VecDeque::new(),
            record_batch: None,
            saas_dirty: 0,
            batch_seq: 0,
            batches: std::collections::VecDeque::new(),
            checkpoints: std::collections::BTreeMap::new(),
            seq: 0,
            newest: 0,
            live: false,
            last_commit_wall: std::time::Instant::now(),
            reloads: 0,
            saas: Some(saas),
            engine: Some(engine),
            bindings,
            incidents: Vec::new(),
            incidents_dir: state_dir.join("incidents"),
            incident_write_errors: 0,
            geoip: open_geoip(s),
            rdap: if learn_only { None } else { start_rdap(s) },
        })
    }

    /// Applies a reloaded configuration (SIGHUP): thresholds, weights, feeds, popularity list,
    /// organisation domains and brands. The store and its caps keep their opening values until
    /// a restart.
    pub fn reconfigure(&mut self, s: &Settings) {
        let mut counters = Default::default();
        let regs = Registrations::load(&s.registration_feeds, s.max_feed_entries, &mut counters);
        let mut pop_counters = Default::default();
        let pop = Popularity::load(
            s.popularity_list.as_deref(),
            s.popularity_max_rank,
            &mut pop_counters,
        );
        for m in counters.messages.iter().chain(&pop_counters.messages) {
            tracing::warn!("feed: {m}");
        }
        self.counters.feeds = counters;
        self.counters.popularity = pop_counters;
        self.scorer.regs = regs;
        self.scorer.pop = pop;
        self.scorer.protected = Protected::new(&s.org_domains, &s.brands);
        if let Some(m) = self.saas.as_mut() {
            m.reconfigure(s.saas.clone());
        }
        if let Some(e) = self.engine.as_mut() {
            e.reconfigure(s.correlate.clone());
        }
        if s.devices_csv != self.s.devices_csv
            && let Some(p) = &s.devices_csv
        {
            load_devices(&mut self.bindings, p);
        }
        if (&s.geoip_city, &s.geoip_asn) != (&self.s.geoip_city, &self.s.geoip_asn) {
            self.geoip = open_geoip(s);
        }
        if s.rdap_url != self.s.rdap_url && !self.learn_only {
            self.rdap = start_rdap(s);
        }
        self.s = s.clone();
        self.reloads += 1;
        tracing::info!(
            breach_threshold = s.breach_threshold,
            "domain intelligence reconfigured"
        );
    }

    /// Live capture: a short reorder window and a wall-clock bound on how long an observation
    /// waits (replay, the default, waits for event time only).
    pub fn set_live(&mut self, live: bool) {
        self.live = live;
    }

    /// Takes one protocol event into the reorder buffer and analyses what is due; breaches are
    /// appended to `out`.
    pub fn observe_event(&mut self, ev: &Event, out: &mut Vec<ModelBreach>) {
        let mut obs = std::mem::take(&mut self.obs);
        obs.clear();
        observations(ev, &mut obs);
        self.observe_batch(obs.drain(..), out);
        self.obs = obs;
    }

    /// Takes observations already extracted from events (on another thread) into the reorder
    /// buffer and analyses what is due, like [`Analyzer::observe_event`].
    pub fn observe_batch(
        &mut self,
        batch: impl IntoIterator<Item = Obs>,
        out: &mut Vec<ModelBreach>,
    ) {
        let now = std::time::Instant::now();
        for o in batch {
            self.newest = self.newest.max(o.ts_us);
            self.seq += 1;
            self.held.push(Held {
                ts: o.ts_us,
                seq: self.seq,
                arrived: now,
                item: Item::Obs(o),
            });
        }
        self.release(out, false);
    }

    /// Takes SaaS/email records (from a live source) into the reorder buffer and analyses what
    /// is due. Records carry their own event time and may be hours late: they are analysed in
    /// order with the observations around them when they arrive in time, else on arrival.
    pub fn observe_records(
        &mut self,
        batch: impl IntoIterator<Item = Record>,
        out: &mut Vec<ModelBreach>,
    ) {
        self.hold_records(batch, None);
        self.release(out, false);
    }

    /// Replay: records read from files before the packets start. They are kept aside, sorted
    /// by event time, and merged with the observations as packet time passes them, so a
    /// replay sees them in the order the live sensor would have.
    pub fn preload_records(&mut self, mut records: Vec<Record>) {
        records.sort_by_key(Record::ts_us);
        let mut all: Vec<Record> = self.preloaded.drain(..).collect();
        all.extend(records);
        all.sort_by_key(Record::ts_us);
        self.preloaded = all.into();
    }

    /// Analyses the held observations that are due (all of them with `all`).
    pub fn release(&mut self, out: &mut Vec<ModelBreach>, all: bool) {
        let now = std::time::Instant::now();
        let window = if self.live {
            LIVE_WINDOW_US
        } else {
            REPLAY_WINDOW_US
        };
        loop {
            // A preloaded record goes first when it is older than the held top.
            let pre = self.preloaded.front().map(Record::ts_us);
            let top = self.held.peek().map(|h| h.ts);
            let take_pre = match (pre, top) {
                (Some(p), Some(t)) => p <= t,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if take_pre {
                let ts = pre.unwrap_or(0);
                if !(all || ts.saturating_add(window) <= self.newest) {
                    break;
                }
                if let Some(r) = self.preloaded.pop_front() {
                    let n = out.len();
                    self.flush_twins(Some(r.ts_us()), out);
                    self.observe_record(&r, out);
                    self.correlate_new(out, n);
                }
                continue;
            }
            let Some(top) = self.held.peek() else {
                if all || self.live {
                    let n = out.len();
                    self.flush_twins(if all { None } else { Some(self.newest) }, out);
                    self.correlate_new(out, n);
                }
                break;
            };
            let due = all
                || top.ts.saturating_add(window) <= self.newest
                || (self.live && now.duration_since(top.arrived) >= LIVE_HOLD)
                || self.held.len() > REORDER_MAX;
            if !due {
                break;
            }
            if let Some(h) = self.held.pop() {
                let n = out.len();
                self.flush_twins(Some(h.ts), out);
                match h.item {
                    Item::Obs(o) => self.observe(&o, out),
                    Item::Record(r, batch) => {
                        self.record_batch = batch;
                        self.observe_record(&r, out);
                        self.record_batch = None;
                    }
                }
                self.correlate_new(out, n);
            }
        }
        if self.saas_dirty > 0 {
            self.maybe_commit();
        }
    }

    /// Analyses one SaaS/email record now. A sign-in waits up to [`TWIN_WAIT_US`] of event
    /// time (or [`TWIN_HOLD`] of wall-clock time live) for its twin from the other log — the
    /// same sign-in appears in the unified audit log and in SigninLogs, often only one of them
    /// with the location — and the two go to the models as one.
    pub fn observe_record(&mut self, r: &Record, out: &mut Vec<ModelBreach>) {
        if r.ts_us() < self.now {
            self.counters.late_records += 1;
        }
        self.counters.records += 1;
        if self.learn_only {
            let b = self.record_batch;
            self.batch_done(b);
            return;
        }
        if let Record::Saas(e) = r
            && matches!(e.kind, SaasKind::Login { .. })
        {
            if let Some(t) = self.twins.iter_mut().find(|t| is_twin(&t.rec, e)) {
                merge_twin(&mut t.rec, e);
                self.counters.login_twins += 1;
                let b = self.record_batch;
                self.batch_done(b);
                return;
            }
            self.twins.push_back(Twin {
                rec: e.clone(),
                arrived: std::time::Instant::now(),
                batch: self.record_batch,
            });
            if self.twins.len() > MAX_TWINS
                && let Some(t) = self.twins.pop_front()
            {
                self.run_saas(&Record::Saas(t.rec), out);
                self.batch_done(t.batch);
            }
            return;
        }
        self.run_saas(r, out);
        let b = self.record_batch;
        self.batch_done(b);
    }

    /// Takes a batch of records from a live source whose read position after the batch is
    /// `checkpoint`. The checkpoint is committed with the analysis state only once every record
    /// of this batch and of every earlier one went through the models, so a restart (even
    /// `kill -9`) resumes the source exactly after the last record whose effect was committed:
    /// nothing lost, nothing counted twice.
    pub fn observe_source_batch(
        &mut self,
        source: &str,
        records: Vec<Record>,
        checkpoint: Vec<u8>,
        out: &mut Vec<ModelBreach>,
    ) {
        self.batch_seq += 1;
        let id = self.batch_seq;
        if self.batches.len() >= MAX_OPEN_BATCHES {
            // Never expected (batches complete within the reorder window); keep going but
            // give up exactness for the oldest rather than grow without bound.
            self.batches.pop_front();
            self.counters.batches_dropped += 1;
        }
        self.batches.push_back(Batch {
            id,
            source: source.to_string(),
            remaining: records.len(),
            checkpoint,
        });
        self.hold_records(records, Some(id));
        self.settle_batches();
        self.release(out, false);
    }

    /// Puts records (of source batch `batch`, if any) into the reorder buffer.
    fn hold_records(&mut self, records: impl IntoIterator<Item = Record>, batch: Option<u64>) {
        let now = std::time::Instant::now();
        for r in records {
            let ts = r.ts_us();
            self.newest = self.newest.max(ts);
            self.seq += 1;
            self.held.push(Held {
                ts,
                seq: self.seq,
                arrived: now,
                item: Item::Record(Box::new(r), batch),
            });
        }
    }

    /// One record of batch `b` went through the models (or into a twin).
    fn batch_done(&mut self, b: Option<u64>) {
        let Some(b) = b else {
            return;
        };
        if let Some(x) = self.batches.iter_mut().find(|x| x.id == b) {
            x.remaining = x.remaining.saturating_sub(1);
        }
        self.settle_batches();
    }

    /// Moves the checkpoints of the leading finished batches to what the next commit writes.
    fn settle_batches(&mut self) {
        while self.batches.front().is_some_and(|b| b.remaining == 0) {
            if let Some(b) = self.batches.pop_front() {
                self.checkpoints.insert(b.source, b.checkpoint);
                self.saas_dirty += 1;
            }
        }
    }

    /// The committed read position of a live source (`None` on a fresh state).
    pub fn source_checkpoint(&mut self, source: &str) -> Option<Vec<u8>> {
        self.store.meta(&format!("{META_CHECKPOINT}{source}"))
    }

    /// Hands the sign-ins whose twin wait is over (all with `upto` None) to the models.
    fn flush_twins(&mut self, upto: Option<u64>, out: &mut Vec<ModelBreach>) {
        if self.twins.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        let live = self.live;
        let due = |t: &Twin| match upto {
            None => true,
            Some(ts) => {
                t.rec.ts_us.saturating_add(TWIN_WAIT_US) <= ts
                    || (live && now.duration_since(t.arrived) >= TWIN_HOLD)
            }
        };
        // Sign-ins wait in arrival order: while the oldest is not due, none is looked at (this
        // runs before every analysed item).
        if upto.is_some() && self.twins.front().is_some_and(|t| !due(t)) {
            return;
        }
        let mut ready: Vec<Twin> = Vec::new();
        let mut keep = std::collections::VecDeque::with_capacity(self.twins.len());
        for t in self.twins.drain(..) {
            if due(&t) {
                ready.push(t);
            } else {
                keep.push_back(t);
            }
        }
        self.twins = keep;
        ready.sort_by_key(|t| t.rec.ts_us);
        for t in ready {
            self.run_saas(&Record::Saas(t.rec), out);
            self.batch_done(t.batch);
        }
    }

    fn run_saas(&mut self, r: &Record, out: &mut Vec<ModelBreach>) {
        self.saas_dirty += 1;
        let Some(mut m) = self.saas.take() else {
            return;
        };
        let n = out.len();
        m.observe(r, self, out);
        self.saas = Some(m);
        for b in out.iter_mut().skip(n) {
            *self.counters.breaches.entry(b.model).or_default() += 1;
            // Domains in breaches are registrable domains, the host goes to `fqdn`, as in the
            // network breaches, so both join on the same entity.
            if let Some(host) = b.domain.take() {
                let fqdn = names::normalise(&host);
                let reg = fqdn
                    .as_deref()
                    .and_then(names::registrable)
                    .map(str::to_owned);
                match (fqdn, reg) {
                    (Some(f), Some(r)) => {
                        b.fqdn.get_or_insert(f);
                        b.domain = Some(r);
                    }
                    _ => b.domain = Some(host),
                }
            }
        }
        self.maybe_commit();
    }

    /// Hands the breaches `out[from..]` to the correlation engine; incidents it opens or
    /// updates are kept for [`Analyzer::take_incidents`] and written to `<state>/incidents`.
    fn correlate_new(&mut self, out: &[ModelBreach], from: usize) {
        if out.len() <= from {
            return;
        }
        let Some(mut e) = self.engine.take() else {
            return;
        };
        let mut inc = Vec::new();
        for b in out.get(from..).unwrap_or_default() {
            e.add(b, self, &mut inc);
        }
        self.engine = Some(e);
        for i in &inc {
            self.save_incident(i);
        }
        self.incidents.extend(inc);
    }

    /// Writes one incident as `<state>/incidents/<id>.json` (atomically: temp file, rename),
    /// so `crosswire incidents` and `report` read it while the sensor runs.
    fn save_incident(&mut self, i: &Incident) {
        let safe = i.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !safe {
            self.incident_write_errors += 1;
            return;
        }
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.incidents_dir)?;
            let tmp = self.incidents_dir.join(format!(".{}.json.tmp", i.id));
            let body = serde_json::to_vec_pretty(i).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, body)?;
            std::fs::rename(&tmp, self.incidents_dir.join(format!("{}.json", i.id)))
        };
        if let Err(e) = write() {
            self.incident_write_errors += 1;
            tracing::warn!(error = %e, id = %i.id, "cannot write the incident file");
        }
    }

    /// Incidents opened or updated since the last call, in the order they changed.
    pub fn take_incidents(&mut self) -> Vec<Incident> {
        std::mem::take(&mut self.incidents)
    }

    /// Analyses one observation now (no reordering).
    pub fn observe(&mut self, o: &Obs, out: &mut Vec<ModelBreach>) {
        if o.ts_us < self.now {
            self.counters.late_observations += 1;
        }
        self.counters.observations += 1;
        if matches!(o.what, What::Lease { .. } | What::Principal) {
            self.bind_device(o);
            return;
        }
        let Some(fqdn) = names::normalise(&o.name) else {
            self.counters.bad_names += 1;
            return;
        };
        let Some(domain) = names::registrable(&fqdn).map(str::to_owned) else {
            self.counters.ignored_names += 1;
            return;
        };
        self.now = self.now.max(o.ts_us);
        let learn_start = *self.learn_start.get_or_insert(o.ts_us);
        let learning = self.now < learn_start.saturating_add(self.s.learning_period_us);
        let home = self.s.home_net.contains(o.client);
        let external = (!self.s.home_net.contains(o.server)).then_some(o.server);
        let ip = match &o.what {
            What::Answer(ips) => ips.iter().copied().find(|i| !self.s.home_net.contains(*i)),
            What::Tls | What::Http => external,
            What::Query | What::NxDomain | What::Lease { .. } | What::Principal => None,
        };
        if home {
            self.hist
                .contact(&mut self.store, o.ts_us, o.client, &domain, &fqdn, ip);
        } else {
            self.counters.not_a_device += 1;
        }
        let scoring = home && !self.learn_only && !matches!(o.what, What::Query);
        let scored = if scoring || matches!(o.what, What::Answer(_)) {
            Some(self.score(o.ts_us, &domain, &fqdn, ip, learning))
        } else {
            None
        };
        if let (What::Answer(ips), Some(sc)) = (&o.what, &scored) {
            for &a in ips.iter().filter(|a| !self.s.home_net.contains(**a)) {
                let b = Binding {
                    domain: domain.clone(),
                    fqdn: fqdn.clone(),
                    ts: o.ts_us,
                    suspect: sc.suspect,
                    score: sc.score,
                    device: home.then_some(o.client),
                };
                self.hist.bind(&mut self.store, a, b, self.s.binding_ttl_us);
            }
        }
        if scoring && let Some(sc) = scored {
            match o.what {
                What::NxDomain => self.nxdomain(o, &fqdn, &domain, out),
                What::Query => {}
                _ => {
                    self.suspicious(o, &fqdn, &domain, ip, &sc, out);
                    if matches!(o.what, What::Tls) {
                        self.beacon(o, &fqdn, &domain, ip, &sc, out);
                    }
                }
            }
        }
        self.maybe_commit();
    }

    /// A device binding seen on the wire (DHCP lease, Kerberos ticket).
    fn bind_device(&mut self, o: &Obs) {
        if !self.s.home_net.contains(o.client) {
            self.counters.not_a_device += 1;
            return;
        }
        let (mac, hostname, user, source, ttl_us) = match &o.what {
            What::Lease { mac } => (
                Some(
                    mac.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                ),
                (!o.name.is_empty()).then(|| o.name.clone()),
                None,
                correlate::BindingSource::Dhcp,
                LEASE_TTL_US,
            ),
            _ => (
                None,
                None,
                Some(o.name.clone()),
                correlate::BindingSource::Kerberos,
                TICKET_TTL_US,
            ),
        };
        self.bindings.learn(&correlate::Observation {
            ts_us: o.ts_us,
            ip: o.client,
            mac,
            hostname,
            user,
            source,
            ttl_us,
        });
    }

    /// The analyzer's settings.
    pub fn settings(&self) -> &Settings {
        &self.s
    }

    /// The device/user binding table.
    pub fn binding_table(&self) -> &BindingTable {
        &self.bindings
    }

    /// GeoIP/ASN facts for an address, when databases are configured.
    pub fn geo_lookup(&self, ip: IpAddr) -> Option<crate::models::saas::Geo> {
        self.geoip.as_ref()?.lookup(ip)
    }

    /// Whether a registrable domain is on the popularity list.
    pub fn is_popular(&self, domain: &str) -> bool {
        self.scorer.pop.rank(domain).is_some()
    }

    /// The domains bound to `ip` (DNS answers) within the binding window before `ts_us`.
    pub(super) fn bindings_on(&mut self, ip: IpAddr, ts_us: u64) -> Vec<Binding> {
        let since = ts_us.saturating_sub(self.s.binding_ttl_us);
        self.hist.bound_to(&mut self.store, ip, since)
    }

    /// How a domain scores at `ts_us` (no IP context), as the email-link model asks.
    pub(super) fn score_at(&mut self, ts_us: u64, domain: &str, fqdn: &str) -> Scored {
        let learning = self
            .learn_start
            .is_none_or(|l| ts_us < l.saturating_add(self.s.learning_period_us));
        self.score(ts_us, domain, fqdn, None, learning)
    }

    /// Scores as of the observation's own time `now` (which is behind the analyzer's clock for a
    /// late observation).
    fn score(
        &mut self,
        now: u64,
        domain: &str,
        fqdn: &str,
        ip: Option<IpAddr>,
        learning: bool,
    ) -> Scored {
        let since = now.saturating_sub(self.s.rarity_window_us);
        let active = self.hist.active_devices(now, since);
        let cohosted = match ip {
            Some(ip) => {
                let since = now.saturating_sub(self.s.binding_ttl_us);
                self.hist.bound_to(&mut self.store, ip, since)
            }
            None => Vec::new(),
        };
        let rec = self.hist.domains.get(&mut self.store, domain).cloned();
        // RDAP only where no feed dates the domain; a pending lookup answers a later event.
        // Popular domains are never looked up: they cannot breach, and the lookups are rate
        // limited. Answers come on the wall clock: live, a later sighting of the domain uses
        // them; a fast replay analyses in event-time order at its own pace and mostly scores
        // before any answer is back.
        let rdap_day = match (&self.rdap, self.scorer.regs.get(domain)) {
            (Some(r), None | Some(super::feeds::Registered::Listed))
                if self.scorer.pop.rank(domain).is_none() =>
            {
                r.registration(domain).day()
            }
            _ => None,
        };
        self.scorer.score(
            &self.s,
            &Facts {
                now,
                domain,
                fqdn,
                rec: rec.as_ref(),
                active_devices: active,
                ip,
                cohosted: &cohosted,
                learning,
                rdap_day,
            },
        )
    }

    fn breach(&mut self, model: &'static str, o: &Obs, score: u8) -> ModelBreach {
        *self.counters.breaches.entry(model).or_default() += 1;
        let (mac, hostname) = self.bindings.device_facts(o.client, o.ts_us);
        ModelBreach {
            ts_us: o.ts_us,
            model,
            score,
            device: Some(Device {
                ip: o.client,
                mac,
                hostname,
            }),
            user: None,
            devices: Vec::new(),
            domain: None,
            fqdn: None,
            ip: None,
            url: None,
            rule: None,
            reasons: Vec::new(),
            flow_ids: vec![o.flow_id],
        }
    }

    fn suspicious(
        &mut self,
        o: &Obs,
        fqdn: &str,
        domain: &str,
        ip: Option<IpAddr>,
        sc: &Scored,
        out: &mut Vec<ModelBreach>,
    ) {
        if sc.popular || sc.score < self.s.breach_threshold {
            return;
        }
        // During learning only name and registration evidence can breach: the score left out
        // novelty and rarity.
        let key = format!("sd|{}|{domain}", o.client);
        if !self.hist.fire_once(&mut self.store, &key, o.ts_us) {
            return;
        }
        let mut b = self.breach(models::SUSPICIOUS_DOMAIN, o, sc.score);
        b.domain = Some(domain.to_string());
        b.fqdn = Some(fqdn.to_string());
        b.ip = ip;
        b.reasons = sc.reasons.clone();
        out.push(b);
        self.correlate(o, fqdn, domain, ip, sc.score, out);
    }

    fn correlate(
        &mut self,
        o: &Obs,
        fqdn: &str,
        domain: &str,
        ip: Option<IpAddr>,
        score: u8,
        out: &mut Vec<ModelBreach>,
    ) {
        let member = Member {
            device: o.client.to_string(),
            ts: o.ts_us,
            score,
            flow_id: o.flow_id,
        };
        let w = self.s.correlation_window_us;
        let mut groups = vec![(format!("d:{domain}"), domain.to_string())];
        if let Some(ip) = ip {
            groups.push((format!("i:{ip}"), ip.to_string()));
        }
        let mut hit: Option<(String, Vec<Member>)> = None;
        for (key, label) in &groups {
            let devs = self.models.correlator.add(key, member.clone(), w);
            if hit.is_none() && devs.len() >= self.s.correlation_devices as usize {
                hit = Some((label.clone(), devs));
            }
        }
        let Some((label, devs)) = hit else {
            return;
        };
        // One breach per group instance: mark every group of this breach as fired.
        let mut fresh = true;
        for (key, _) in &groups {
            let k = format!("mc|{key}");
            if self.hist.fired.get(&mut self.store, &k).is_some() {
                fresh = false;
            }
        }
        if !fresh {
            return;
        }
        for (key, _) in &groups {
            self.hist
                .fire_once(&mut self.store, &format!("mc|{key}"), o.ts_us);
        }
        let score = devs.iter().map(|m| m.score).max().unwrap_or(score);
        let mut b = self.breach(models::MULTIPLE_DEVICES, o, score.max(80));
        b.domain = Some(domain.to_string());
        b.fqdn = Some(fqdn.to_string());
        b.ip = ip;
        b.devices = devs.iter().filter_map(|m| m.device.parse().ok()).collect();
        b.flow_ids = devs.iter().map(|m| m.flow_id).collect();
        let first = devs.iter().map(|m| m.ts).min().unwrap_or(o.ts_us);
        let last = devs.iter().map(|m| m.ts).max().unwrap_or(o.ts_us);
        b.reasons = vec![
            format!(
                "{} devices breached {} for {label} within {}",
                devs.len(),
                models::SUSPICIOUS_DOMAIN,
                human(last.saturating_sub(first))
            ),
            format!(
                "devices: {}",
                devs.iter()
                    .map(|m| m.device.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ];
        out.push(b);
    }

    fn beacon(
        &mut self,
        o: &Obs,
        fqdn: &str,
        domain: &str,
        ip: Option<IpAddr>,
        sc: &Scored,
        out: &mut Vec<ModelBreach>,
    ) {
        if sc.popular || !sc.rare {
            return;
        }
        let key = format!("{}|{domain}", o.client);
        let Some(r) = self.models.beacons.add(&key, o.ts_us) else {
            return;
        };
        let s = &self.s;
        if r.count < s.beacon_min_connections as usize
            || r.span_s * 1e6 < s.beacon_min_span_us as f64
            || r.jitter() > s.beacon_max_jitter
            || r.mean_s < 1.0
        {
            return;
        }
        if !self
            .hist
            .fire_once(&mut self.store, &format!("c2|{key}"), o.ts_us)
        {
            return;
        }
        let regular = 1.0 - (r.jitter() / s.beacon_max_jitter).min(1.0);
        let score = (70.0 + 25.0 * regular).round().clamp(0.0, 100.0) as u8;
        let mut b = self.breach(models::SSL_C2, o, score.max(sc.score));
        b.domain = Some(domain.to_string());
        b.fqdn = Some(fqdn.to_string());
        b.ip = ip;
        b.reasons = vec![format!(
            "{} TLS connections to {fqdn} every {:.0} s ± {:.1} s over {}",
            r.count,
            r.mean_s,
            r.mad_s,
            human((r.span_s * 1e6) as u64)
        )];
        b.reasons.extend(
            sc.reasons
                .iter()
                .filter(|x| x.contains("devices") || x.contains("first seen"))
                .cloned(),
        );
        out.push(b);
    }

    fn nxdomain(&mut self, o: &Obs, fqdn: &str, domain: &str, out: &mut Vec<ModelBreach>) {
        let random = self
            .scorer
            .dga
            .judge(names::registrable_label(domain))
            .random
            || names::sub_labels(fqdn, domain).any(|l| self.scorer.dga.judge(l).random);
        if !random {
            return;
        }
        let dev = o.client.to_string();
        let names = self
            .models
            .nx
            .add(&dev, o.ts_us, fqdn, self.s.dga_window_us);
        if names.len() < self.s.dga_nxdomain_burst as usize {
            return;
        }
        let day = o.ts_us / 86_400_000_000;
        if !self
            .hist
            .fire_once(&mut self.store, &format!("dga|{dev}|{day}"), o.ts_us)
        {
            return;
        }
        let mut b = self.breach(models::DGA_ACTIVITY, o, 85);
        b.domain = Some(domain.to_string());
        b.fqdn = Some(fqdn.to_string());
        let sample: Vec<&str> = names.iter().rev().take(5).map(String::as_str).collect();
        b.reasons = vec![
            format!(
                "{} NXDOMAIN answers for random-looking names within {}",
                names.len(),
                human(self.s.dga_window_us)
            ),
            format!("e.g. {}", sample.join(", ")),
        ];
        out.push(b);
    }

    /// The domains that resolved to `ip` within `window_us` before the analyzer's clock and
    /// were young or rare at the time — the question the SaaS correlation asks.
    pub fn suspect_domains_on(&mut self, ip: IpAddr, window_us: u64) -> Vec<Binding> {
        let since = self.now.saturating_sub(window_us);
        self.hist
            .bound_to(&mut self.store, ip, since)
            .into_iter()
            .filter(|b| b.suspect)
            .collect()
    }

    fn maybe_commit(&mut self) {
        let time_due = self.now >= self.last_commit.saturating_add(self.s.commit_interval_us)
            && self.last_commit_wall.elapsed() >= MIN_COMMIT_GAP;
        // SaaS records do not move the packet clock: their work is committed by wall-clock
        // pacing (durability only; no window depends on it).
        let saas_due = self.saas_dirty > 0 && self.last_commit_wall.elapsed() >= SAAS_COMMIT_EVERY;
        if time_due || saas_due || self.hist.dirty() >= self.s.commit_max_dirty {
            self.commit();
        }
    }

    /// Writes everything to the store now.
    pub fn commit(&mut self) -> bool {
        let models = serde_json::to_vec(&self.models).unwrap_or_default();
        if let Some(e) = self.engine.as_mut() {
            e.advance(self.now);
        }
        let mut meta = vec![
            (META_NOW, self.now.to_le_bytes().to_vec()),
            (META_MODELS, models),
            (
                META_BINDINGS,
                serde_json::to_vec(&self.bindings).unwrap_or_default(),
            ),
        ];
        if let Some(m) = &self.saas {
            meta.push((META_SAAS, serde_json::to_vec(m.state()).unwrap_or_default()));
        }
        if let Some(e) = &self.engine {
            meta.push((META_CORRELATE, serde_json::to_vec(e).unwrap_or_default()));
        }
        let ckpt_keys: Vec<(String, Vec<u8>)> = self
            .checkpoints
            .iter()
            .map(|(k, v)| (format!("{META_CHECKPOINT}{k}"), v.clone()))
            .collect();
        if let Some(l) = self.learn_start {
            meta.push((META_LEARN_START, l.to_le_bytes().to_vec()));
        }
        for (k, v) in &ckpt_keys {
            meta.push((k.as_str(), v.clone()));
        }
        let mut tables = self.hist.tables();
        let ok = self.store.commit(&mut tables, &meta);
        if ok {
            self.saas_dirty = 0;
            self.counters.commits += 1;
            self.last_commit = self.now;
            self.last_commit_wall = std::time::Instant::now();
        }
        ok
    }

    /// Analyses everything still held and commits; call when the input ends.
    pub fn finish(&mut self, out: &mut Vec<ModelBreach>) {
        self.release(out, true);
        self.commit();
    }

    /// The `intel` object of the `stats` event.
    pub fn stats(&self) -> Value {
        let c = &self.counters;
        let tables: serde_json::Map<String, Value> = self
            .hist
            .counters()
            .iter()
            .map(|(k, v)| ((*k).to_string(), json!(v)))
            .collect();
        json!({
            "breach_threshold": self.s.breach_threshold,
            "reloads": self.reloads,
            "observations": c.observations,
            "bad_names": c.bad_names,
            "ignored_names": c.ignored_names,
            "not_a_device": c.not_a_device,
            "late_observations": c.late_observations,
            "records": c.records,
            "late_records": c.late_records,
            "login_twins": c.login_twins,
            "held": self.held.len(),
            "devices": self.hist.known_devices(),
            "breaches": c.breaches,
            "saas": self.saas.as_ref().map(SaasModels::counters),
            "correlate": self.engine.as_ref().map(|e| json!(e.counters())),
            "incident_write_errors": self.incident_write_errors,
            "geoip": self.geoip.as_ref().map(|g| json!(g.stats())),
            "rdap": self.rdap.as_ref().map(super::rdap::Rdap::counters),
            "bindings": json!(self.bindings.counters()),
            "store": {
                "commits": c.commits,
                "commit_errors": self.store.commit_errors,
                "read_errors": self.store.read_errors,
                "tables": tables,
            },
            "evictions": {
                "record_lists": self.hist.list_evictions,
                "devices": self.hist.active_evictions,
                "models": self.models.evictions(),
            },
            "feeds": {
                "loaded": c.feeds.loaded,
                "bad_lines": c.feeds.bad_lines,
                "dropped": c.feeds.dropped,
            },
            "popularity": {
                "loaded": c.popularity.loaded,
                "bad_lines": c.popularity.bad_lines,
                "dropped": c.popularity.dropped,
            },
        })
    }

    /// The store's own counters (for tests and `learn`).
    pub fn rows(&self, table: &str) -> u64 {
        self.hist
            .counters()
            .iter()
            .find(|(k, _)| *k == table)
            .map_or(0, |(_, c)| c.rows)
    }

    /// A domain's history, for tests and the `learn` summary.
    pub fn domain(&mut self, domain: &str) -> Option<super::history::DomainRec> {
        self.hist.domains.get(&mut self.store, domain).cloned()
    }
}

/// Event time a sign-in waits for its twin from the other log.
pub const TWIN_WAIT_US: u64 = 5 * 60_000_000;
/// Wall-clock time a sign-in waits for its twin, live.
pub const TWIN_HOLD: std::time::Duration = std::time::Duration::from_secs(30);
/// Sign-ins waiting at once.
const MAX_TWINS: usize = 10_000;

/// A sign-in waiting for its twin.
struct Twin {
    rec: SaasEvent,
    arrived: std::time::Instant,
    /// Source batch of the record (done when the twin goes to the models).
    batch: Option<u64>,
}

/// The same sign-in seen in two logs: same user, address and outcome within two minutes
/// (or the same correlation id).
fn is_twin(a: &SaasEvent, b: &SaasEvent) -> bool {
    let (
        SaasKind::Login {
            success: sa,
            correlation_id: ca,
            ..
        },
        SaasKind::Login {
            success: sb,
            correlation_id: cb,
            ..
        },
    ) = (&a.kind, &b.kind)
    else {
        return false;
    };
    if a.user != b.user || sa != sb || a.schema == b.schema {
        return false;
    }
    if let (Some(x), Some(y)) = (ca, cb)
        && x == y
    {
        return true;
    }
    a.ip == b.ip && a.ts_us.abs_diff(b.ts_us) <= 120_000_000
}

/// Fills what `into` lacks (location, agent, ids) from its twin.
fn merge_twin(into: &mut SaasEvent, from: &SaasEvent) {
    if into.ip.is_none() {
        into.ip = from.ip;
    }
    if let (
        SaasKind::Login {
            error_code,
            country,
            city,
            geo,
            user_agent,
            correlation_id,
            ..
        },
        SaasKind::Login {
            error_code: e2,
            country: c2,
            city: ci2,
            geo: g2,
            user_agent: u2,
            correlation_id: co2,
            ..
        },
    ) = (&mut into.kind, &from.kind)
    {
        let fill = |a: &mut Option<String>, b: &Option<String>| {
            if a.is_none() {
                a.clone_from(b);
            }
        };
        fill(error_code, e2);
        fill(country, c2);
        fill(city, ci2);
        fill(user_agent, u2);
        fill(correlation_id, co2);
        if geo.is_none() {
            *geo = *g2;
        }
    }
}

/// Starts the RDAP client for `[intel] rdap_url`; a failure is logged and scoring goes on
/// with the feeds alone.
fn start_rdap(s: &Settings) -> Option<super::rdap::Rdap> {
    let url = s.rdap_url.as_deref()?;
    match super::rdap::Rdap::start(super::rdap::RdapConfig::new(url)) {
        Ok(r) => {
            tracing::info!(url, "RDAP lookups on");
            Some(r)
        }
        Err(e) => {
            tracing::error!(url, error = %e, "cannot start the RDAP client");
            None
        }
    }
}

/// Opens the configured GeoIP databases; a failure is logged and lookups answer nothing.
fn open_geoip(s: &Settings) -> Option<crate::ingest::geoip::GeoIp> {
    if s.geoip_city.is_none() && s.geoip_asn.is_none() {
        return None;
    }
    match crate::ingest::geoip::GeoIp::open(s.geoip_city.as_deref(), s.geoip_asn.as_deref()) {
        Ok(g) => {
            for d in g.databases() {
                tracing::info!("GeoIP database: {d}");
            }
            Some(g)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot open the GeoIP databases");
            None
        }
    }
}

/// Loads the static device/user table; bad lines are logged with their line numbers.
fn load_devices(t: &mut BindingTable, path: &Path) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot read the device table");
            return;
        }
    };
    match t.load_csv(&text) {
        Ok(r) => {
            for b in &r.bad_lines {
                tracing::warn!("{}:{}: {}", path.display(), b.line, b.reason);
            }
            tracing::info!(file = %path.display(), loaded = r.loaded, bad = r.bad, "device table loaded");
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot load the device table")
        }
    }
}

impl Drop for Analyzer {
    fn drop(&mut self) {
        // A clean shutdown commits; `kill -9` loses at most one commit interval.
        if self.hist.dirty() > 0
            || !self.held.is_empty()
            || !self.preloaded.is_empty()
            || !self.twins.is_empty()
        {
            let mut sink = Vec::new();
            self.release(&mut sink, true);
            self.commit();
        }
    }
}
