//! The output thread: EVE JSON lines for every event, `stats` events, and the capture-to-event
//! latency histogram.
//!
//! Workers send their events in one message per batch; the capture side sends stats requests.
//! The writer is buffered and flushed whenever the queue runs empty, so a live event reaches the
//! file within milliseconds while replay writes in large blocks.

pub mod report;
pub mod sink;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

use crate::capture::CaptureCounters;
use crate::event::{self, Event};
use crate::flow;

/// Counters the workers publish after every batch.
#[derive(Debug, Default, Clone)]
pub struct WorkerTotals {
    pub packets: u64,
    pub bytes: u64,
    pub not_ip: u64,
    pub decode_errors: BTreeMap<&'static str, u64>,
    pub defrag_reassembled: u64,
    pub defrag_timeouts: u64,
    pub defrag_evicted: u64,
    pub defrag_invalid: u64,
    pub tunnels: u64,
    pub flow: flow::Counters,
    pub active_flows: u64,
}

impl WorkerTotals {
    pub fn merge(&mut self, o: &WorkerTotals) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.not_ip += o.not_ip;
        for (k, v) in &o.decode_errors {
            *self.decode_errors.entry(k).or_default() += v;
        }
        self.defrag_reassembled += o.defrag_reassembled;
        self.defrag_timeouts += o.defrag_timeouts;
        self.defrag_evicted += o.defrag_evicted;
        self.defrag_invalid += o.defrag_invalid;
        self.tunnels += o.tunnels;
        self.flow.merge(&o.flow);
        self.active_flows += o.active_flows;
    }
}

/// One slot per worker, overwritten with that worker's running totals.
pub type SharedTotals = Arc<Mutex<Vec<WorkerTotals>>>;

/// What the output thread receives.
pub enum Msg {
    Events(Vec<Event>),
    /// Normalised SaaS/email records from a live source, for the analysis thread.
    Records(SourceBatch),
    /// A reloaded configuration for domain intelligence (SIGHUP).
    Reconfigure(Box<crate::intel::Settings>),
    /// Refresh the metrics endpoint's snapshot with these capture counters (no EVE line).
    Metrics {
        capture: CaptureCounters,
    },
    /// Write a `stats` event with these capture counters; `final_` marks the last one.
    Stats {
        capture: CaptureCounters,
        final_: bool,
    },
}

/// Running output counters.
#[derive(Debug, Default, Clone)]
pub struct OutputTotals {
    pub events: BTreeMap<&'static str, u64>,
    pub write_errors: u64,
    /// The domain-intelligence counters at the end (when it ran).
    pub intel: Option<Value>,
}

/// Runs the output loop until every sender is gone. Returns the totals.
/// The EVE writer, shared by the output thread and the domain-intelligence thread; each takes
/// the lock for whole lines only.
pub type SharedWriter = Arc<Mutex<Box<dyn Write + Send>>>;

fn lock_writer(w: &SharedWriter) -> std::sync::MutexGuard<'_, Box<dyn Write + Send>> {
    match w.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Observations queued for the domain-intelligence thread (in batches, one per event batch).
const INTEL_QUEUE: usize = 256;

/// Records from a live source, with the source's read position after them (committed with
/// the analysis state once they are analysed) when it has one.
pub struct SourceBatch {
    pub source: String,
    pub records: Vec<crate::ingest::Record>,
    pub checkpoint: Option<Vec<u8>>,
}

enum IntelMsg {
    Obs(Vec<crate::intel::Obs>),
    Records(SourceBatch),
    /// Analyse what is due and publish the counters.
    Tick,
    Reconfigure(Box<crate::intel::Settings>),
    /// Analyse everything held, write the breaches, answer with the final counters.
    Finish(crossbeam_channel::Sender<Value>),
}

/// Domain intelligence on its own thread: its store commits (disk syncs) must never hold back
/// the EVE output, and through it the workers and the capture.
struct Intel {
    tx: crossbeam_channel::Sender<IntelMsg>,
    stats: Arc<Mutex<Value>>,
    /// Observation batches not queued because the thread was behind (live only; counted).
    dropped: u64,
    lossless: bool,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Intel {
    fn start(mut a: Box<crate::intel::Analyzer>, w: SharedWriter, lossless: bool) -> Option<Intel> {
        let (tx, rx) = crossbeam_channel::bounded::<IntelMsg>(INTEL_QUEUE);
        let stats = Arc::new(Mutex::new(Value::Null));
        let published = stats.clone();
        let handle = std::thread::Builder::new()
            .name("crosswire-intel".into())
            .spawn(move || {
                let mut breaches = Vec::new();
                let mut written = 0u64;
                let mut line = Vec::with_capacity(1024);
                // Breaches, then the incidents they opened or updated.
                let mut write = |breaches: &mut Vec<crate::models::ModelBreach>,
                                 a: &mut crate::intel::Analyzer,
                                 written: &mut u64| {
                    let incidents = a.take_incidents();
                    if breaches.is_empty() && incidents.is_empty() {
                        return;
                    }
                    let mut out = lock_writer(&w);
                    for b in breaches.drain(..) {
                        line.clear();
                        b.write_eve(&mut line);
                        let _ = out.write_all(&line);
                        *written += 1;
                    }
                    for i in &incidents {
                        line.clear();
                        i.write_eve(&mut line);
                        let _ = out.write_all(&line);
                    }
                };
                let publish = |a: &crate::intel::Analyzer, written: u64| {
                    let mut v = a.stats();
                    v["breaches_written"] = json!(written);
                    if let Ok(mut s) = published.lock() {
                        *s = v.clone();
                    }
                    v
                };
                publish(&a, written);
                let mut published_at = std::time::Instant::now();
                while let Ok(m) = rx.recv() {
                    match m {
                        IntelMsg::Obs(batch) => {
                            a.observe_batch(batch, &mut breaches);
                            write(&mut breaches, &mut a, &mut written);
                            if published_at.elapsed() >= std::time::Duration::from_millis(500) {
                                publish(&a, written);
                                published_at = std::time::Instant::now();
                            }
                        }
                        IntelMsg::Records(b) => {
                            match b.checkpoint {
                                Some(c) => {
                                    a.observe_source_batch(&b.source, b.records, c, &mut breaches)
                                }
                                None => a.observe_records(b.records, &mut breaches),
                            }
                            write(&mut breaches, &mut a, &mut written);
                        }
                        IntelMsg::Reconfigure(s) => {
                            a.reconfigure(&s);
                            publish(&a, written);
                        }
                        IntelMsg::Tick => {
                            a.release(&mut breaches, false);
                            write(&mut breaches, &mut a, &mut written);
                            publish(&a, written);
                        }
                        IntelMsg::Finish(reply) => {
                            a.finish(&mut breaches);
                            write(&mut breaches, &mut a, &mut written);
                            let _ = reply.send(publish(&a, written));
                            return;
                        }
                    }
                }
                // The output thread went away without a final request.
                a.finish(&mut breaches);
                write(&mut breaches, &mut a, &mut written);
                publish(&a, written);
            });
        match handle {
            Ok(h) => Some(Intel {
                tx,
                stats,
                dropped: 0,
                lossless,
                handle: Some(h),
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the domain-intelligence thread");
                None
            }
        }
    }

    fn send(&mut self, batch: Vec<crate::intel::Obs>) {
        if batch.is_empty() {
            return;
        }
        if self.lossless {
            let _ = self.tx.send(IntelMsg::Obs(batch));
        } else if self.tx.try_send(IntelMsg::Obs(batch)).is_err() {
            self.dropped += 1;
        }
    }

    fn stats(&self) -> Value {
        let mut v = match self.stats.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if v.is_null() {
            v = json!({});
        }
        v["dropped_batches"] = json!(self.dropped);
        v
    }

    /// Waits for everything queued to be analysed and written; returns the final counters.
    fn finish(&mut self) -> Value {
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        let mut v = if self.tx.send(IntelMsg::Finish(rtx)).is_ok() {
            rrx.recv().unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        if v.is_null() {
            v = self.stats();
        }
        v["dropped_batches"] = json!(self.dropped);
        v
    }
}

/// Runs the output loop until every sender is gone. Returns the totals. With an analyzer,
/// domain intelligence runs on its own thread fed from here; `lossless` (replay) makes this
/// thread wait for it rather than drop observations.
///
/// `queues`: the messages in, and the emptied event vectors back to the workers.
pub fn run(
    queues: (Receiver<Msg>, Sender<Vec<Event>>),
    w: Box<dyn Write + Send>,
    shared: SharedTotals,
    epoch: Instant,
    intel: Option<Box<crate::intel::Analyzer>>,
    lossless: bool,
    metrics: Option<Arc<crate::service::metrics::Shared>>,
) -> OutputTotals {
    let (rx, spare) = queues;
    let w: SharedWriter = Arc::new(Mutex::new(w));
    let mut totals = OutputTotals::default();
    let mut intel = intel.and_then(|a| Intel::start(a, w.clone(), lossless));
    // 1 µs .. 60 s, 3 significant digits; cannot fail with these bounds.
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).ok();
    let mut line = Vec::with_capacity(4096);
    let started = Instant::now();
    let mut finished = false;
    loop {
        let msg = match rx.try_recv() {
            Ok(m) => m,
            Err(crossbeam_channel::TryRecvError::Empty) => {
                if lock_writer(&w).flush().is_err() {
                    totals.write_errors += 1;
                }
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            Err(crossbeam_channel::TryRecvError::Disconnected) => break,
        };
        match msg {
            Msg::Events(evs) => {
                let now_ns = epoch.elapsed().as_nanos() as u64;
                {
                    let mut out = lock_writer(&w);
                    for ev in &evs {
                        line.clear();
                        event::write_eve(ev, &mut line);
                        if out.write_all(&line).is_err() {
                            totals.write_errors += 1;
                        }
                        *totals.events.entry(ev.protocol()).or_default() += 1;
                        if let Some(h) = hist.as_mut() {
                            let us = now_ns.saturating_sub(ev.meta.recv_ns) / 1000;
                            let _ = h.record(us.clamp(1, 60_000_000));
                        }
                    }
                }
                if let Some(i) = intel.as_mut() {
                    let mut obs = Vec::with_capacity(evs.len());
                    for ev in &evs {
                        crate::intel::observations(ev, &mut obs);
                    }
                    i.send(obs);
                }
                // The emptied vector goes back to the workers, so that steady state allocates
                // no event vectors (a full return queue just drops it).
                let mut evs = evs;
                evs.clear();
                let _ = spare.try_send(evs);
            }
            Msg::Records(batch) => {
                if let Some(i) = intel.as_mut() {
                    // Records are few and must not be lost: wait for room.
                    let _ = i.tx.send(IntelMsg::Records(batch));
                }
            }
            Msg::Reconfigure(settings) => {
                if let Some(i) = intel.as_mut() {
                    // Queued behind the observations already sent: applied in order.
                    let _ = i.tx.send(IntelMsg::Reconfigure(settings));
                }
            }
            Msg::Metrics { capture } => {
                if let Some(m) = &metrics {
                    let workers = merged(&shared);
                    let mut v =
                        stats_json(&capture, &workers, &totals, hist.as_ref(), started, false);
                    if let Some(i) = intel.as_ref() {
                        v["stats"]["intel"] = i.stats();
                    }
                    let text = crate::service::metrics::render(&v);
                    if let Ok(mut t) = m.text.lock() {
                        *t = text;
                    }
                }
            }
            Msg::Stats { capture, final_ } => {
                let workers = merged(&shared);
                let intel_stats = match intel.as_mut() {
                    Some(i) if final_ => {
                        finished = true;
                        Some(i.finish())
                    }
                    Some(i) => {
                        let _ = i.tx.try_send(IntelMsg::Tick);
                        Some(i.stats())
                    }
                    None => None,
                };
                let mut v = stats_json(&capture, &workers, &totals, hist.as_ref(), started, final_);
                if let Some(is) = intel_stats {
                    v["stats"]["intel"] = is.clone();
                    totals.intel = Some(is);
                }
                if let Some(m) = &metrics
                    && let Ok(mut t) = m.text.lock()
                {
                    *t = crate::service::metrics::render(&v);
                }
                line.clear();
                if serde_json::to_writer(&mut line, &v).is_ok() {
                    line.push(b'\n');
                    if lock_writer(&w).write_all(&line).is_err() {
                        totals.write_errors += 1;
                    }
                }
            }
        }
    }
    if !finished && let Some(i) = intel.as_mut() {
        totals.intel = Some(i.finish());
    }
    if lock_writer(&w).flush().is_err() {
        totals.write_errors += 1;
    }
    totals
}

fn merged(shared: &SharedTotals) -> WorkerTotals {
    let mut t = WorkerTotals::default();
    let slots = match shared.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    for s in slots.iter() {
        t.merge(s);
    }
    t
}

fn map_of(m: &BTreeMap<&'static str, u64>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| ((*k).to_string(), json!(v)))
            .collect::<Map<_, _>>(),
    )
}

/// Resident and peak resident memory of the process in KiB (Linux `/proc/self/status`).
fn memory() -> Value {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    json!({ "rss_kib": field("VmRSS:"), "max_rss_kib": field("VmHWM:") })
}

/// The `stats` event. Its timestamp is the packet time of the last packet read.
pub fn stats_json(
    c: &CaptureCounters,
    w: &WorkerTotals,
    o: &OutputTotals,
    hist: Option<&Histogram<u64>>,
    started: Instant,
    final_: bool,
) -> Value {
    let lat = hist.map(|h| {
        json!({
            "count": h.len(),
            "p50": h.value_at_quantile(0.50),
            "p99": h.value_at_quantile(0.99),
            "p999": h.value_at_quantile(0.999),
            "max": h.max(),
        })
    });
    let f = &w.flow;
    let mut v = json!({
        "timestamp": event::format_ts(c.last_ts_us),
        "event_type": "stats",
        "stats": {
            "final": final_,
            "uptime": started.elapsed().as_secs(),
            "capture": {
                "packets": c.packets,
                "bytes": c.bytes,
                "kernel_packets": c.kernel_packets,
                "kernel_drops": c.kernel_drops,
                "kernel_ifdrops": c.kernel_ifdrops,
                "queue_drop_batches": c.queue_drop_batches,
                "queue_drop_packets": c.queue_drop_packets,
                "read_errors": c.read_errors,
                "reopens": c.reopens,
            },
            "service": {
                "config_reloads": c.config_reloads,
                "config_reload_failures": c.config_reload_failures,
            },
            "decoder": {
                "packets": w.packets,
                "bytes": w.bytes,
                "not_ip": w.not_ip,
                "tunnelled": w.tunnels,
                "errors": map_of(&w.decode_errors),
            },
            "defrag": {
                "reassembled": w.defrag_reassembled,
                "timeouts": w.defrag_timeouts,
                "evicted": w.defrag_evicted,
                "invalid": w.defrag_invalid,
            },
            "flow": {
                "created": f.flows_created,
                "expired": f.flows_expired,
                "evicted": f.flows_evicted,
                "active": w.active_flows,
            },
            "tcp": {
                "gaps": f.tcp_gaps,
                "retransmitted": f.tcp_retransmitted,
                "ooo_dropped": f.tcp_ooo_dropped,
                "inspect_cap": f.stream_inspect_cap,
            },
            "app_layer": {
                "events": map_of(&o.events),
                "errors": Value::Object(
                    f.app_errors
                        .iter()
                        .map(|((p, r), v)| (format!("{p}.{r}"), json!(v)))
                        .collect::<Map<_, _>>()
                ),
                "http_unmatched_responses": f.http_unmatched_responses,
            },
            "latency_us": lat,
            "output": { "write_errors": o.write_errors },
            "memory": memory(),
        }
    });
    if let Some(src) = crate::ingest::run::stats() {
        v["stats"]["saas_sources"] = src;
    }
    v
}
