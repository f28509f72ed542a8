//! Wires the threads together: one capture thread (the caller's), N workers, one output thread.
//!
//! Queues are bounded crossbeam channels: capture -> worker (batches), worker -> capture (empty
//! batches for reuse), workers -> output (events). Replay waits for room; live drops the newest
//! batch when a worker queue is full and counts it. Shutdown drains everything: the capture side
//! flushes its partial batches and closes the worker queues, each worker ends its flows (handing
//! over pending events), and the output thread writes the final `stats` event last.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::capture::{self, Batch, Dispatcher, StopFlag};
use crate::config::Config;
use crate::decode::{defrag, net};
use crate::event::Event;
use crate::flow;
use crate::output::{self, Msg, OutputTotals, SharedTotals, WorkerTotals};

/// The running pipeline minus its packet source.
pub struct Pipeline {
    pub dispatcher: Dispatcher,
    workers: Vec<JoinHandle<()>>,
    out_tx: Sender<Msg>,
    output: JoinHandle<OutputTotals>,
}

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    pub capture: capture::CaptureCounters,
    pub output: OutputTotals,
    /// Per-file problems (the run went on).
    pub errors: Vec<String>,
}

impl Pipeline {
    /// Starts workers and the output thread writing to `out`.
    pub fn start(cfg: &Config, out: Box<dyn Write + Send>, lossless: bool) -> Pipeline {
        Pipeline::start_with_intel(cfg, out, lossless, None)
    }

    /// Like [`Pipeline::start`], with the domain-intelligence analyzer on the output thread.
    pub fn start_with_intel(
        cfg: &Config,
        out: Box<dyn Write + Send>,
        lossless: bool,
        intel: Option<Box<crate::intel::Analyzer>>,
    ) -> Pipeline {
        Pipeline::start_service(cfg, out, lossless, intel, None)
    }

    /// Like [`Pipeline::start_with_intel`], also keeping a metrics endpoint's snapshot fresh.
    pub fn start_service(
        cfg: &Config,
        out: Box<dyn Write + Send>,
        lossless: bool,
        intel: Option<Box<crate::intel::Analyzer>>,
        metrics: Option<Arc<crate::service::metrics::Shared>>,
    ) -> Pipeline {
        let n = cfg.workers.max(1);
        let epoch = Instant::now();
        let shared: SharedTotals = Arc::new(Mutex::new(vec![WorkerTotals::default(); n]));
        // Each message carries the events of one batch (up to 256 packets): 64 messages bound the
        // events waiting for the output thread to about 16 k.
        let (out_tx, out_rx) = bounded::<Msg>(64);
        // Emptied event vectors, back from the output thread.
        let (spare_tx, spare_rx) = bounded::<Vec<Event>>(64 + n);
        let (recycle_tx, recycle_rx) = bounded::<Batch>(n * cfg.queue_batches + n);
        let mut senders = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        let mut limits = cfg.flow;
        limits.max_flows = (limits.max_flows / n).max(1);
        for i in 0..n {
            let (tx, rx) = bounded::<Batch>(cfg.queue_batches);
            senders.push(tx);
            let w = Worker {
                index: i,
                epoch,
                rx,
                recycle: recycle_tx.clone(),
                out: out_tx.clone(),
                spare: spare_rx.clone(),
                shared: shared.clone(),
                table: flow::Table::new(limits),
                defrag: defrag::Defrag::new(cfg.defrag),
                totals: WorkerTotals::default(),
            };
            let h = std::thread::Builder::new()
                .name(format!("crosswire-worker-{i}"))
                .spawn(move || w.run());
            match h {
                Ok(h) => workers.push(h),
                Err(e) => tracing::error!(error = %e, "cannot start worker thread"),
            }
        }
        let output = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("crosswire-output".into())
                .spawn(move || {
                    output::run(
                        (out_rx, spare_tx),
                        out,
                        shared,
                        epoch,
                        intel,
                        lossless,
                        metrics,
                    )
                })
        };
        let output = match output {
            Ok(h) => h,
            // Without an output thread nothing can be written; fail loudly.
            Err(e) => panic!("cannot start the output thread: {e}"),
        };
        Pipeline {
            dispatcher: Dispatcher::new(senders, recycle_rx, lossless, epoch),
            workers,
            out_tx,
            output,
        }
    }

    /// A handle that hands a reloaded domain-intelligence configuration to the analyzer. Drop
    /// it before [`Pipeline::finish`].
    pub fn reconfigure_sender(&self) -> impl Fn(crate::intel::Settings) + use<> {
        let tx = self.out_tx.clone();
        move |settings| {
            let _ = tx.send(Msg::Reconfigure(Box::new(settings)));
        }
    }

    /// A handle that hands SaaS/email records from a live source to the analysis thread. Drop
    /// it before [`Pipeline::finish`].
    pub fn records_sender(&self) -> impl Fn(output::SourceBatch) + Send + use<> {
        let tx = self.out_tx.clone();
        move |batch| {
            let _ = tx.send(Msg::Records(batch));
        }
    }

    /// A handle that asks the output thread to refresh the metrics snapshot. Drop it before
    /// [`Pipeline::finish`].
    pub fn metrics_sender(&self) -> impl Fn(capture::CaptureCounters) + use<> {
        let tx = self.out_tx.clone();
        move |capture| {
            let _ = tx.try_send(Msg::Metrics { capture });
        }
    }

    /// A handle that asks the output thread for a periodic `stats` event. Drop it before
    /// [`Pipeline::finish`], which waits for every sender to go.
    pub fn stats_sender(&self) -> impl Fn(capture::CaptureCounters) + use<> {
        let tx = self.out_tx.clone();
        move |capture| {
            let _ = tx.send(Msg::Stats {
                capture,
                final_: false,
            });
        }
    }

    /// Drains everything and writes the final `stats` event.
    pub fn finish(mut self, errors: Vec<String>) -> Summary {
        self.dispatcher.flush();
        let capture = self.dispatcher.counters;
        drop(self.dispatcher);
        for h in self.workers {
            let _ = h.join();
        }
        let _ = self.out_tx.send(Msg::Stats {
            capture,
            final_: true,
        });
        drop(self.out_tx);
        let output = self.output.join().unwrap_or_default();
        Summary {
            capture,
            output,
            errors,
        }
    }
}

/// Packets ahead of the one being decoded whose first bytes are prefetched.
const PREFETCH_AHEAD: usize = 4;

/// A hint to bring the first cache line of `d` closer; no effect on the program's state.
#[inline]
fn prefetch(d: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 never faults and has no architectural effect, whatever the address
    // (here it points into a live slice besides); it only moves a cache line. The SSE feature
    // the intrinsic is gated on is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(d.as_ptr().cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = d;
}

/// How often a worker copies its counters to the shared slots read by `stats`.
const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

struct Worker {
    index: usize,
    /// The pipeline's clock origin (receive times are nanoseconds since it).
    epoch: Instant,
    rx: Receiver<Batch>,
    recycle: Sender<Batch>,
    out: Sender<Msg>,
    spare: Receiver<Vec<Event>>,
    shared: SharedTotals,
    table: flow::Table,
    defrag: defrag::Defrag,
    totals: WorkerTotals,
}

impl Worker {
    fn run(mut self) {
        let mut events: Vec<Event> = Vec::new();
        let mut published = Instant::now();
        while let Ok(mut batch) = self.rx.recv() {
            let mut ahead = batch.iter().skip(PREFETCH_AHEAD);
            for (ts, recv, data) in batch.iter() {
                if let Some((_, _, next)) = ahead.next() {
                    prefetch(next);
                }
                self.packet(batch.link_type, ts, recv, data, &mut events);
            }
            drop(ahead);
            // Emptied here, so that the read chunk it may refer to is free for reuse at once.
            batch.clear();
            let _ = self.recycle.try_send(batch);
            if !events.is_empty() {
                let fresh = self.spare.try_recv().unwrap_or_default();
                let _ = self
                    .out
                    .send(Msg::Events(std::mem::replace(&mut events, fresh)));
            }
            // Counters reach `stats` within PUBLISH_EVERY; a lock per batch would cost more.
            if published.elapsed() >= PUBLISH_EVERY {
                self.publish();
                published = Instant::now();
            }
        }
        let now = self.epoch.elapsed().as_nanos() as u64;
        self.table.flush(now, &mut events);
        if !events.is_empty() {
            let _ = self.out.send(Msg::Events(events));
        }
        self.publish();
    }

    fn packet(&mut self, link_type: i32, ts: u64, recv: u64, data: &[u8], events: &mut Vec<Event>) {
        self.totals.packets += 1;
        self.totals.bytes += data.len() as u64;
        // Used in place, by reference: moving the frame out of the result would copy it with
        // wide loads right after `decode` wrote it field by field (a store-forwarding stall).
        let decoded = net::decode(link_type, data);
        let frame = match &decoded {
            Ok(f) => f,
            Err(net::Error::NotIp) => {
                self.totals.not_ip += 1;
                return;
            }
            Err(e) => {
                *self.totals.decode_errors.entry(e.reason()).or_default() += 1;
                return;
            }
        };
        if frame.tunnel.is_some() {
            self.totals.tunnels += 1;
        }
        if let Some(e) = frame.inner_error {
            // The tunnel's inside could not be decoded; the outer packet is still used.
            *self.totals.decode_errors.entry(e.reason()).or_default() += 1;
        }
        if frame.frag.is_some() {
            self.defrag.expire(ts);
            if let Some(datagram) = self.defrag.push(ts, frame) {
                let whole = net::decode_reassembled(frame, &datagram);
                self.table.packet(ts, recv, &whole, &whole.l4, events);
            }
            return;
        }
        self.table.packet(ts, recv, frame, &frame.l4, events);
    }

    fn publish(&mut self) {
        let ds = self.defrag.stats();
        self.totals.defrag_reassembled = ds.reassembled;
        self.totals.defrag_timeouts = ds.timeouts;
        self.totals.defrag_evicted = ds.evicted;
        self.totals.defrag_invalid = ds.invalid;
        self.totals.flow = self.table.counters.clone();
        self.totals.active_flows = self.table.len() as u64;
        let mut slots = match self.shared.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if let Some(s) = slots.get_mut(self.index) {
            *s = self.totals.clone();
        }
    }
}

/// Replays capture files (directories expand to their files in name order).
pub fn replay(
    cfg: &Config,
    paths: &[PathBuf],
    out: Box<dyn Write + Send>,
    stop: &StopFlag,
) -> Summary {
    replay_with_intel(cfg, paths, out, stop, None)
}

/// Like [`replay`], with the domain-intelligence analyzer on the output thread.
pub fn replay_with_intel(
    cfg: &Config,
    paths: &[PathBuf],
    out: Box<dyn Write + Send>,
    stop: &StopFlag,
    intel: Option<Box<crate::intel::Analyzer>>,
) -> Summary {
    let mut errors = Vec::new();
    let files = match capture::file::expand(paths) {
        Ok(f) => f,
        Err(e) => {
            errors.push(format!("cannot list input: {e}"));
            Vec::new()
        }
    };
    let mut p = Pipeline::start_with_intel(cfg, out, true, intel);
    for f in &files {
        if let Err(e) =
            capture::file::replay(f, cfg.bpf.as_deref(), cfg.speed, stop, &mut p.dispatcher)
        {
            tracing::error!("{e}");
            errors.push(e.to_string());
        }
    }
    p.finish(errors)
}
