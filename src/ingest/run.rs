//! Runs the configured SaaS/email sources inside the service: the tailed files on a thread of
//! their own, the webhook and the API poller as tokio tasks on a small runtime of their own.
//! Each hands [`SourceBatch`]es to the analysis thread through `send`.
//!
//! Exactly once for files and the poller: each batch carries the source's read position after
//! it; the analyzer commits that position together with the state the batch produced (see
//! [`crate::intel::Analyzer::observe_source_batch`]), and a restart resumes from the committed
//! position. The webhook answers `202` once records are queued for analysis; a crash before the
//! next commit loses what was queued since (the pusher's retry policy applies).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::config::Sources;
use super::{Raw, Record, file, parse, poller, webhook};
use crate::output::SourceBatch;
use crate::service::ratelimit::Limiter;

/// Records per batch handed to the analysis thread.
pub const BATCH_RECORDS: usize = 1000;
/// Raw records queued between the network tasks and their parser.
const RAW_QUEUE: usize = 4096;

/// The sources' counters, by source, for the `stats` event (`saas_sources`) and `/metrics`.
static STATS: std::sync::Mutex<std::collections::BTreeMap<&'static str, serde_json::Value>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn publish(source: &'static str, v: serde_json::Value) {
    if let Ok(mut m) = STATS.lock() {
        m.insert(source, v);
    }
}

/// The running sources' counters, `None` when no source runs in this process.
pub fn stats() -> Option<serde_json::Value> {
    let m = STATS.lock().ok()?;
    (!m.is_empty()).then(|| serde_json::json!(*m))
}

/// Source names, also the keys of their committed read positions.
pub const FILES: &str = "files";
pub const POLLER: &str = "poller";
pub const WEBHOOK: &str = "webhook";

/// The running sources; [`Running::stop`] ends them.
pub struct Running {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops every source and waits for it (the files thread finishes its current poll).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Starts the sources in `src`. `resume` gives a source's committed read position.
pub fn start(
    src: &Sources,
    resume: &mut dyn FnMut(&str) -> Option<Vec<u8>>,
    send: impl Fn(SourceBatch) + Send + Sync + 'static,
) -> std::io::Result<Running> {
    let stop = Arc::new(AtomicBool::new(false));
    let send = Arc::new(send);
    let mut threads = Vec::new();
    if !src.files.is_empty() {
        let ckpt: Option<file::Checkpoint> =
            resume(FILES).and_then(|b| serde_json::from_slice(&b).ok());
        let paths = src.files.clone();
        let every = src.poll_interval;
        let (stop, send) = (stop.clone(), send.clone());
        threads.push(
            std::thread::Builder::new()
                .name("crosswire-saas-files".into())
                .spawn(move || files_loop(paths, ckpt, every, &stop, &*send))?,
        );
    }
    if src.webhook.is_some() || src.poller.is_some() {
        let ckpt: Option<poller::Checkpoint> =
            resume(POLLER).and_then(|b| serde_json::from_slice(&b).ok());
        let src = src.clone();
        let (stop, send) = (stop.clone(), send.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        threads.push(
            std::thread::Builder::new()
                .name("crosswire-saas-net".into())
                .spawn(move || rt.block_on(net_tasks(src, ckpt, stop, send)))?,
        );
    }
    Ok(Running { stop, threads })
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let until = std::time::Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50).min(d));
    }
}

fn files_loop(
    paths: Vec<std::path::PathBuf>,
    ckpt: Option<file::Checkpoint>,
    every: Duration,
    stop: &AtomicBool,
    send: &(dyn Fn(SourceBatch) + Send + Sync),
) {
    let mut src = file::FileSource::new(paths, ckpt);
    let mut rejected = Limiter::default();
    let mut last = src.checkpoint();
    while !stop.load(Ordering::Relaxed) {
        let mut records: Vec<Record> = Vec::new();
        let mut more = true;
        // One poll reads a bounded chunk; a batch closes at BATCH_RECORDS or when nothing is
        // left, always at a poll boundary (where the checkpoint is exact).
        while more && records.len() < BATCH_RECORDS && !stop.load(Ordering::Relaxed) {
            more = src.poll(&mut |item| match item {
                file::Item::Record(r) => records.push(*r),
                file::Item::Rejected { origin, reason } => {
                    crate::warn_limited!(rejected, "{origin}: rejected: {reason}");
                }
                file::Item::Ignored { .. } => {}
            });
        }
        publish(FILES, serde_json::json!(src.counters()));
        let now = src.checkpoint();
        if !records.is_empty() || now != last {
            send(SourceBatch {
                source: FILES.into(),
                records,
                checkpoint: serde_json::to_vec(&now).ok(),
            });
            last = now;
        }
        if !more {
            sleep_unless(stop, every);
        }
    }
}

/// Parses raw records into normalised ones; rejections are logged (rate-limited).
fn parse_raw(raw: Raw, out: &mut Vec<Record>, limiter: &mut Limiter) {
    parse::visit(&raw.value, &mut |r| match r {
        Ok(parse::Outcome::Record(rec)) => out.push(*rec),
        Ok(parse::Outcome::Ignored(_)) => {}
        Err(e) => crate::warn_limited!(limiter, "{}: rejected: {e}", raw.origin),
    });
}

async fn net_tasks(
    src: Sources,
    ckpt: Option<poller::Checkpoint>,
    stop: Arc<AtomicBool>,
    send: Arc<dyn Fn(SourceBatch) + Send + Sync>,
) {
    let stopped = {
        let stop = stop.clone();
        move || {
            let stop = stop.clone();
            async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(cfg) = src.webhook.clone() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Raw>(RAW_QUEUE);
        match webhook::Server::bind(&cfg, tx).await {
            Ok(server) => {
                if let Ok(a) = server.local_addr() {
                    tracing::info!(listen = %a, "SaaS webhook listening");
                }
                let counters = server.stats();
                let stop2 = stop.clone();
                tasks.spawn(async move {
                    while !stop2.load(Ordering::Relaxed) {
                        publish(WEBHOOK, serde_json::json!(counters.snapshot()));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                });
                tasks.spawn(async move {
                    if let Err(e) = server.run(stopped()).await {
                        tracing::error!(error = %e, "SaaS webhook stopped");
                    }
                });
                let send = send.clone();
                tasks.spawn(async move {
                    let mut limiter = Limiter::default();
                    while let Some(raw) = rx.recv().await {
                        let mut records = Vec::new();
                        parse_raw(raw, &mut records, &mut limiter);
                        while records.len() < BATCH_RECORDS {
                            match rx.try_recv() {
                                Ok(raw) => parse_raw(raw, &mut records, &mut limiter),
                                Err(_) => break,
                            }
                        }
                        if !records.is_empty() {
                            send(SourceBatch {
                                source: WEBHOOK.into(),
                                records,
                                checkpoint: None,
                            });
                        }
                    }
                });
            }
            Err(e) => tracing::error!(error = %e, "cannot start the SaaS webhook"),
        }
    }
    if let Some((cfg, every)) = src.poller.clone() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Raw>(RAW_QUEUE);
        match poller::Poller::new(cfg, ckpt, tx) {
            Ok(mut p) => {
                let stop = stop.clone();
                tasks.spawn(async move {
                    let mut limiter = Limiter::default();
                    let mut failing = Limiter::default();
                    while !stop.load(Ordering::Relaxed) {
                        let mut records = Vec::new();
                        // Batches handed over mid-poll carry the position before the poll, so
                        // the analyzer tracks them too; the last one carries the new position.
                        let before = serde_json::to_vec(&p.checkpoint()).ok();
                        let res = {
                            let fut = p.poll_once();
                            tokio::pin!(fut);
                            // Records are taken while the poll runs (the queue is bounded), and
                            // handed over in order before the checkpoint that covers them.
                            loop {
                                tokio::select! {
                                    r = &mut fut => break r,
                                    Some(raw) = rx.recv() => {
                                        parse_raw(raw, &mut records, &mut limiter);
                                        if records.len() >= BATCH_RECORDS {
                                            send(SourceBatch {
                                                source: POLLER.into(),
                                                records: std::mem::take(&mut records),
                                                checkpoint: before.clone(),
                                            });
                                        }
                                    }
                                }
                            }
                        };
                        while let Ok(raw) = rx.try_recv() {
                            parse_raw(raw, &mut records, &mut limiter);
                        }
                        if let Err(e) = &res {
                            crate::warn_limited!(failing, error = %e, "Management Activity API poll failed; retrying");
                        }
                        publish(POLLER, serde_json::json!(p.stats().snapshot()));
                        send(SourceBatch {
                            source: POLLER.into(),
                            records,
                            checkpoint: serde_json::to_vec(&p.checkpoint()).ok(),
                        });
                        let until = tokio::time::Instant::now() + every;
                        while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < until {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the Management Activity API poller")
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}
