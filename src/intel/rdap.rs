//! RDAP client for domain registration dates (RFC 7480-7484, RFC 9082/9083).
//!
//! Job: answer "on which day was this registrable domain registered?" for the age score, from
//! `GET {rdap_url}/domain/{name}` and the `registration` event of the answer. Off unless
//! `[intel] rdap_url` is set.
//!
//! Shape: [`Rdap`] owns a small current-thread tokio runtime on its own thread, running
//! `max_concurrent` workers (each with its own [`Client`] and connection pool) that take names
//! from a bounded queue. The analyzer thread calls [`Rdap::registration`], which never blocks
//! on the network: it answers from the shared cache, or queues a lookup and says
//! [`Lookup::Pending`]; a later call finds the answer.
//!
//! Limits and guarantees:
//! - Names are checked before anything else: ASCII LDH labels (IDNs arrive as `xn--` A-labels,
//!   normalised by the analyzer), at least two labels, at most 253 bytes, no all-numeric TLD.
//!   Anything else is [`Lookup::Unknown`] and counted (`invalid_names`); it never reaches the
//!   network. The name is percent-encoded in the path all the same.
//! - Only `https://`, or `http://` to a loopback host (tests), for the base URL and for every
//!   redirect (at most [`MAX_REDIRECTS`] per lookup); user-info in URLs is refused.
//! - Queue: at most `queue_cap` names waiting or in flight, each at most once (deduplicated);
//!   a name met when the queue is full is dropped and counted (`dropped`), and asked for again
//!   on a later call. Cache: at most `cache_cap` answers; at the cap the least recently used
//!   eighth is evicted in one pass (counted, `evictions`), so the amortised cost per insert is
//!   constant. The hash maps use std's per-process random seed.
//! - Requests are paced to `rate_per_sec` over all workers. Each request (connect, TLS, reading
//!   the body) runs under `timeout`; a body over [`MAX_BODY`] is abandoned at the cap.
//!   Timeouts, network errors and 5xx are retried `retries` times with doubling backoff (at
//!   most [`MAX_BACKOFF`]); a 429 pauses all requests for its `Retry-After` (at most
//!   [`MAX_RETRY_AFTER`]) and is then retried the same way.
//! - Answers: a registration date is cached as [`Lookup::Known`] (no expiry: it is a fact about
//!   the past; only eviction removes it). A 404, or a well-formed answer without a registration
//!   event, is [`Lookup::Unknown`] for `negative_ttl`. Everything else (retries exhausted, a body
//!   that is not JSON, has no `events`, names another domain, has an unreadable registration
//!   date, is too large; other HTTP statuses; bad redirects) is [`Lookup::Failed`] for
//!   `failure_ttl`, then looked up again. Every outcome has a counter.
//! - Clocks: RDAP is a network protocol, so its deadlines, pacing and cache lifetimes use the
//!   monotonic clock of this machine, not event time; the day returned is event-independent
//!   (days since the epoch, UTC). The wall clock is read only to turn a `Retry-After` HTTP date
//!   into a delay.
//! - Nothing here panics on any answer or name; all JSON is read from a bounded body.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use hyper::header::{ACCEPT, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::ingest::client::{self, Client, Target};

/// Largest answer body read; a larger one is a bad answer.
pub const MAX_BODY: usize = 1 << 20;
/// Redirects followed per lookup.
pub const MAX_REDIRECTS: usize = 3;
/// Longest pause a 429's `Retry-After` can impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Pause after a 429 without a readable `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Longest backoff between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Most workers (concurrent requests) allowed.
pub const MAX_CONCURRENT: usize = 64;
/// Most retries allowed per lookup.
pub const MAX_RETRIES: u32 = 10;
/// Most requests per second allowed.
pub const MAX_RATE: f64 = 1000.0;
/// Fewest requests per second allowed (one per 1000 s).
pub const MIN_RATE: f64 = 0.001;
/// Longest request deadline allowed.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Elements of the `events` array examined per answer.
pub const MAX_EVENTS: usize = 256;
/// Longest domain name (text form).
pub const MAX_NAME_LEN: usize = 253;

/// Settings of the client; [`RdapConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct RdapConfig {
    /// Base URL; a lookup is `GET {base_url}/domain/{name}`. `https://`, or `http://` to a
    /// loopback host; no query or fragment.
    pub base_url: String,
    /// Deadline of one request (connect, TLS, whole body), at most [`MAX_TIMEOUT`]. Default 5 s.
    pub timeout: Duration,
    /// Concurrent requests (workers), 1 to [`MAX_CONCURRENT`]. Default 4.
    pub max_concurrent: usize,
    /// Requests per second over all workers, [`MIN_RATE`] to [`MAX_RATE`]. Default 2.
    pub rate_per_sec: f64,
    /// Answers cached. Default 100000.
    pub cache_cap: usize,
    /// Names waiting for or in a lookup. Default 1024.
    pub queue_cap: usize,
    /// How long a 404 or an answer without a registration date is kept. Default 1 day.
    pub negative_ttl: Duration,
    /// How long a failure is kept before the name is looked up again. Default 10 min.
    pub failure_ttl: Duration,
    /// Retries after a timeout, network error, 5xx or 429, at most [`MAX_RETRIES`]. Default 2.
    pub retries: u32,
    /// Delay before the first retry, doubled for each next one. Default 1 s.
    pub backoff: Duration,
}

impl RdapConfig {
    /// The defaults, with this base URL.
    pub fn new(base_url: impl Into<String>) -> RdapConfig {
        RdapConfig {
            base_url: base_url.into(),
            timeout: Duration::from_secs(5),
            max_concurrent: 4,
            rate_per_sec: 2.0,
            cache_cap: 100_000,
            queue_cap: 1024,
            negative_ttl: Duration::from_secs(86_400),
            failure_ttl: Duration::from_secs(600),
            retries: 2,
            backoff: Duration::from_secs(1),
        }
    }

    /// Checks the settings; returns the base URL checked and the base path without a trailing
    /// slash.
    fn validate(&self) -> Result<(Target, String), String> {
        let base = Target::parse(&self.base_url).map_err(|e| format!("rdap_url: {e}"))?;
        let path = base.path_and_query();
        if path.contains('?') || path.contains('#') || self.base_url.contains('#') {
            return Err("rdap_url: a base URL takes no query or fragment".to_owned());
        }
        let path = path.trim_end_matches('/').to_owned();
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(format!(
                "rdap timeout must be above zero and at most {MAX_TIMEOUT:?}"
            ));
        }
        if !(1..=MAX_CONCURRENT).contains(&self.max_concurrent) {
            return Err(format!("rdap max_concurrent must be 1 to {MAX_CONCURRENT}"));
        }
        if !(MIN_RATE..=MAX_RATE).contains(&self.rate_per_sec) {
            return Err(format!(
                "rdap rate must be {MIN_RATE} to {MAX_RATE} per second"
            ));
        }
        if self.cache_cap == 0 || self.queue_cap == 0 {
            return Err("rdap cache and queue caps must be above zero".to_owned());
        }
        if self.retries > MAX_RETRIES {
            return Err(format!("rdap retries must be at most {MAX_RETRIES}"));
        }
        Ok((base, path))
    }
}

/// What is known about a domain's registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Registered on this day (days since 1970-01-01, UTC).
    Known(i64),
    /// Looked up: not found, or the registry gives no registration date (or the name cannot
    /// be looked up at all).
    Unknown,
    /// A lookup is queued or running (or the queue was full); ask again later.
    Pending,
    /// The last lookup failed recently; it is retried after the failure ttl.
    Failed,
}

impl Lookup {
    /// The registration day, when known.
    pub fn day(self) -> Option<i64> {
        match self {
            Lookup::Known(d) => Some(d),
            _ => None,
        }
    }
}

/// A finished lookup, as cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Known(i64),
    Unknown,
    Failed,
}

impl From<Answer> for Lookup {
    fn from(a: Answer) -> Lookup {
        match a {
            Answer::Known(d) => Lookup::Known(d),
            Answer::Unknown => Lookup::Unknown,
            Answer::Failed => Lookup::Failed,
        }
    }
}

#[derive(Debug)]
struct Entry {
    answer: Answer,
    /// `None`: kept until evicted.
    expires: Option<Instant>,
    /// Value of [`Cache::tick`] at the last use.
    used: u64,
}

/// Answers and the names being looked up; both bounded.
#[derive(Debug)]
struct Cache {
    map: HashMap<String, Entry>,
    pending: HashSet<String>,
    tick: u64,
    cap: usize,
    queue_cap: usize,
    evictions: u64,
}

impl Cache {
    fn new(cap: usize, queue_cap: usize) -> Cache {
        Cache {
            map: HashMap::new(),
            pending: HashSet::new(),
            tick: 0,
            cap,
            queue_cap,
            evictions: 0,
        }
    }

    /// The cached answer, unless absent or expired (an expired one is removed).
    fn get(&mut self, name: &str, now: Instant) -> Option<Answer> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.map.get_mut(name)?;
        if e.expires.is_some_and(|t| now >= t) {
            self.map.remove(name);
            return None;
        }
        e.used = tick;
        Some(e.answer)
    }

    fn insert(&mut self, name: String, answer: Answer, expires: Option<Instant>) {
        self.tick += 1;
        if !self.map.contains_key(&name) && self.map.len() >= self.cap {
            self.evict();
        }
        let used = self.tick;
        self.map.insert(
            name,
            Entry {
                answer,
                expires,
                used,
            },
        );
    }

    /// Removes the least recently used eighth (at least one entry).
    fn evict(&mut self) {
        let mut ages: Vec<u64> = self.map.values().map(|e| e.used).collect();
        if ages.is_empty() {
            return;
        }
        let k = (self.cap / 8).min(ages.len() - 1);
        let (_, &mut cutoff, _) = ages.select_nth_unstable(k);
        let before = self.map.len();
        self.map.retain(|_, e| e.used > cutoff);
        self.evictions += (before - self.map.len()) as u64;
    }
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    queued: AtomicU64,
    dropped: AtomicU64,
    invalid_names: AtomicU64,
    known: AtomicU64,
    not_found: AtomicU64,
    no_date: AtomicU64,
    failed: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
    server_errors: AtomicU64,
    http_errors: AtomicU64,
    rate_limited: AtomicU64,
    bad_answers: AtomicU64,
    too_large: AtomicU64,
    redirects: AtomicU64,
    bad_redirects: AtomicU64,
    retries: AtomicU64,
    in_flight: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// State shared by the caller's thread and the workers.
#[derive(Debug)]
struct Shared {
    cache: Mutex<Cache>,
    counters: Counters,
    negative_ttl: Duration,
    failure_ttl: Duration,
}

impl Shared {
    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a finished lookup.
    fn finish(&self, name: String, answer: Answer) {
        let c = &self.counters;
        let ttl = match answer {
            Answer::Known(_) => {
                inc(&c.known);
                None
            }
            Answer::Unknown => Some(self.negative_ttl),
            Answer::Failed => {
                inc(&c.failed);
                Some(self.failure_ttl)
            }
        };
        let expires = ttl.and_then(|t| Instant::now().checked_add(t));
        let mut cache = self.cache();
        cache.pending.remove(&name);
        cache.insert(name, answer, expires);
    }
}

/// The RDAP client: a cache read by the caller, lookups done on a thread of its own.
pub struct Rdap {
    shared: Arc<Shared>,
    tx: mpsc::Sender<String>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Rdap {
    /// Checks the settings and starts the lookup thread.
    pub fn start(cfg: RdapConfig) -> Result<Rdap, String> {
        let (base, base_path) = cfg.validate()?;
        let mut clients = Vec::with_capacity(cfg.max_concurrent);
        for _ in 0..cfg.max_concurrent {
            clients.push(Client::new(&[], cfg.timeout).map_err(|e| e.to_string())?);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("rdap runtime: {e}"))?;
        let shared = Arc::new(Shared {
            cache: Mutex::new(Cache::new(cfg.cache_cap, cfg.queue_cap)),
            counters: Counters::default(),
            negative_ttl: cfg.negative_ttl,
            failure_ttl: cfg.failure_ttl,
        });
        let (tx, rx) = mpsc::channel(cfg.queue_cap);
        let (stop, stopped) = oneshot::channel::<()>();
        let ctx = Arc::new(Ctx {
            shared: shared.clone(),
            base,
            base_path,
            retries: cfg.retries,
            backoff: cfg.backoff,
            interval: Duration::try_from_secs_f64(1.0 / cfg.rate_per_sec)
                .unwrap_or(Duration::from_secs(1)),
            next_slot: Mutex::new(Instant::now()),
        });
        let thread = std::thread::Builder::new()
            .name("rdap".to_owned())
            .spawn(move || {
                rt.block_on(async move {
                    let rx = Arc::new(tokio::sync::Mutex::new(rx));
                    let workers: Vec<_> = clients
                        .into_iter()
                        .map(|client| tokio::spawn(worker(client, rx.clone(), ctx.clone())))
                        .collect();
                    let all = async {
                        for w in workers {
                            let _ = w.await;
                        }
                    };
                    tokio::select! {
                        _ = stopped => {}
                        () = all => {}
                    }
                });
                // Name resolution runs on blocking threads; do not wait long for them.
                rt.shutdown_timeout(Duration::from_millis(500));
            })
            .map_err(|e| format!("rdap thread: {e}"))?;
        Ok(Rdap {
            shared,
            tx,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The registration day of a registrable domain if known, without blocking: a cached
    /// answer, or [`Lookup::Pending`] after queueing a lookup (at most one per name; dropped
    /// and counted when the queue is full). Names that are not ASCII LDH domains are
    /// [`Lookup::Unknown`].
    pub fn registration(&self, registrable: &str) -> Lookup {
        let c = &self.shared.counters;
        let Some(name) = ldh_name(registrable) else {
            inc(&c.invalid_names);
            return Lookup::Unknown;
        };
        let mut cache = self.shared.cache();
        if let Some(a) = cache.get(&name, Instant::now()) {
            inc(&c.hits);
            return a.into();
        }
        inc(&c.misses);
        if cache.pending.contains(name.as_ref()) {
            return Lookup::Pending;
        }
        if cache.pending.len() >= cache.queue_cap {
            inc(&c.dropped);
            return Lookup::Pending;
        }
        let name = name.into_owned();
        match self.tx.try_send(name.clone()) {
            Ok(()) => {
                cache.pending.insert(name);
                inc(&c.queued);
            }
            Err(_) => inc(&c.dropped),
        }
        Lookup::Pending
    }

    /// Counters for `stats`: lookups asked for and answered, every failure kind, gauges.
    pub fn counters(&self) -> Value {
        let c = &self.shared.counters;
        let (cache_size, pending, evictions) = {
            let cache = self.shared.cache();
            (cache.map.len(), cache.pending.len(), cache.evictions)
        };
        json!({
            "requests": get(&c.requests),
            "hits": get(&c.hits),
            "misses": get(&c.misses),
            "queued": get(&c.queued),
            "dropped": get(&c.dropped),
            "invalid_names": get(&c.invalid_names),
            "known": get(&c.known),
            "not_found": get(&c.not_found),
            "no_date": get(&c.no_date),
            "failed": get(&c.failed),
            "timeouts": get(&c.timeouts),
            "errors": get(&c.errors),
            "server_errors": get(&c.server_errors),
            "http_errors": get(&c.http_errors),
            "rate_limited": get(&c.rate_limited),
            "bad_answers": get(&c.bad_answers),
            "too_large": get(&c.too_large),
            "redirects": get(&c.redirects),
            "bad_redirects": get(&c.bad_redirects),
            "retries": get(&c.retries),
            "in_flight": get(&c.in_flight),
            "pending": pending,
            "cache_size": cache_size,
            "evictions": evictions,
        })
    }
}

impl Drop for Rdap {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the workers share.
struct Ctx {
    shared: Arc<Shared>,
    base: Target,
    base_path: String,
    retries: u32,
    backoff: Duration,
    /// Spacing between two requests.
    interval: Duration,
    /// When the next request may go (pushed out by a 429).
    next_slot: Mutex<Instant>,
}

impl Ctx {
    /// Waits for this request's turn under the rate limit.
    async fn wait_turn(&self) {
        let at = {
            let mut next = self.next_slot.lock().unwrap_or_else(|e| e.into_inner());
            let slot = (*next).max(Instant::now());
            *next = slot.checked_add(self.interval).unwrap_or(slot);
            slot
        };
        tokio::time::sleep_until(at.into()).await;
    }

    /// Holds every request back for `d` (a 429).
    fn pause(&self, d: Duration) {
        let mut next = self.next_slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = Instant::now().checked_add(d) {
            *next = (*next).max(until);
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.backoff.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

async fn worker(
    mut client: Client,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<String>>>,
    ctx: Arc<Ctx>,
) {
    loop {
        let next = rx.lock().await.recv().await;
        let Some(name) = next else {
            return;
        };
        let c = &ctx.shared.counters;
        inc(&c.in_flight);
        let answer = lookup(&mut client, &ctx, &name).await;
        c.in_flight.fetch_sub(1, Ordering::Relaxed);
        ctx.shared.finish(name, answer);
    }
}

/// One lookup: attempts with retries.
async fn lookup(client: &mut Client, ctx: &Ctx, name: &str) -> Answer {
    let first = ctx
        .base
        .with_path(format!("{}/domain/{}", ctx.base_path, encode(name)));
    let mut attempt = 0;
    loop {
        let again = match fetch(client, ctx, &first, name).await {
            Outcome::Done(a) => return a,
            Outcome::Again { backoff } => backoff,
        };
        if attempt >= ctx.retries {
            return Answer::Failed;
        }
        attempt += 1;
        inc(&ctx.shared.counters.retries);
        if again {
            tokio::time::sleep(ctx.backoff(attempt)).await;
        }
    }
}

enum Outcome {
    Done(Answer),
    /// Worth another attempt; `backoff: false` when a pause was already imposed (429).
    Again {
        backoff: bool,
    },
}

/// One attempt, following redirects.
async fn fetch(client: &mut Client, ctx: &Ctx, first: &Target, name: &str) -> Outcome {
    let c = &ctx.shared.counters;
    let headers = [(
        ACCEPT,
        HeaderValue::from_static("application/rdap+json, application/json"),
    )];
    let mut target = first.clone();
    for hop in 0..=MAX_REDIRECTS {
        ctx.wait_turn().await;
        inc(&c.requests);
        let resp = match client
            .request(Method::GET, &target, &headers, Bytes::new(), MAX_BODY)
            .await
        {
            Ok(r) => r,
            Err(client::Error::Timeout { .. }) => {
                inc(&c.timeouts);
                return Outcome::Again { backoff: true };
            }
            Err(client::Error::TooLarge { .. }) => {
                inc(&c.too_large);
                inc(&c.bad_answers);
                return Outcome::Done(Answer::Failed);
            }
            Err(e) => {
                inc(&c.errors);
                return if e.is_transient() {
                    Outcome::Again { backoff: true }
                } else {
                    Outcome::Done(Answer::Failed)
                };
            }
        };
        match resp.status.as_u16() {
            200 => {
                return Outcome::Done(match parse_answer(&resp.body, name) {
                    Ok(Some(day)) => Answer::Known(day),
                    Ok(None) => {
                        inc(&c.no_date);
                        Answer::Unknown
                    }
                    Err(_) => {
                        inc(&c.bad_answers);
                        Answer::Failed
                    }
                });
            }
            404 => {
                inc(&c.not_found);
                return Outcome::Done(Answer::Unknown);
            }
            301 | 302 | 303 | 307 | 308 => {
                let next = (hop < MAX_REDIRECTS)
                    .then(|| redirect(&target, &resp.headers))
                    .flatten();
                let Some(next) = next else {
                    inc(&c.bad_redirects);
                    return Outcome::Done(Answer::Failed);
                };
                inc(&c.redirects);
                target = next;
            }
            429 => {
                inc(&c.rate_limited);
                ctx.pause(retry_after(&resp.headers, chrono::Utc::now()));
                return Outcome::Again { backoff: false };
            }
            500..=599 => {
                inc(&c.server_errors);
                return Outcome::Again { backoff: true };
            }
            _ => {
                inc(&c.http_errors);
                return Outcome::Done(Answer::Failed);
            }
        }
    }
    inc(&c.bad_redirects);
    Outcome::Done(Answer::Failed)
}

/// The target of a redirect: an absolute `http(s)` URL (checked like the base URL) or an
/// absolute path on the same origin.
fn redirect(from: &Target, headers: &HeaderMap) -> Option<Target> {
    let loc = headers.get(LOCATION)?.to_str().ok()?.trim();
    if loc.len() > client::MAX_URL {
        return None;
    }
    if loc.starts_with('/') && !loc.starts_with("//") {
        return Some(from.with_path(loc.to_owned()));
    }
    Target::parse(loc).ok()
}

/// The delay a 429 asks for: `Retry-After` as seconds or an HTTP date, within
/// 1 s..=[`MAX_RETRY_AFTER`]; [`DEFAULT_RETRY_AFTER`] when absent or unreadable.
fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Duration {
    let Some(v) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()) else {
        return DEFAULT_RETRY_AFTER;
    };
    let v = v.trim();
    let secs = if let Ok(s) = v.parse::<u64>() {
        s
    } else if let Ok(at) = chrono::DateTime::parse_from_rfc2822(v) {
        u64::try_from((at.with_timezone(&chrono::Utc) - now).num_seconds()).unwrap_or(0)
    } else {
        return DEFAULT_RETRY_AFTER;
    };
    Duration::from_secs(secs.clamp(1, MAX_RETRY_AFTER.as_secs()))
}

/// Why an answer was not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAnswer {
    /// Not a JSON object.
    NotJson,
    /// `objectClassName` is not `domain`.
    NotDomain,
    /// `ldhName` names another domain.
    OtherName,
    /// No `events` array.
    NoEvents,
    /// A registration event whose date cannot be read (and no readable one).
    BadDate,
}

/// Reads an RDAP domain answer: `Ok(Some(day))` with the registration day, `Ok(None)` when the
/// answer is well formed but has no registration event. When several registration events are
/// present the earliest counts; a `reregistration` event later than that replaces it (the
/// domain was deleted and registered anew, so it is as young as the new registration).
pub fn parse_answer(body: &[u8], name: &str) -> Result<Option<i64>, BadAnswer> {
    let v: Value = serde_json::from_slice(body).map_err(|_| BadAnswer::NotJson)?;
    let obj = v.as_object().ok_or(BadAnswer::NotJson)?;
    if let Some(class) = obj.get("objectClassName")
        && class.as_str() != Some("domain")
    {
        return Err(BadAnswer::NotDomain);
    }
    if let Some(ldh) = obj.get("ldhName") {
        let ldh = ldh.as_str().ok_or(BadAnswer::OtherName)?;
        let ldh = ldh.strip_suffix('.').unwrap_or(ldh);
        let name = name.strip_suffix('.').unwrap_or(name);
        if !ldh.eq_ignore_ascii_case(name) {
            return Err(BadAnswer::OtherName);
        }
    }
    let events = obj
        .get("events")
        .and_then(Value::as_array)
        .ok_or(BadAnswer::NoEvents)?;
    let mut registered: Option<i64> = None;
    let mut reregistered: Option<i64> = None;
    let mut unreadable = false;
    for e in events.iter().take(MAX_EVENTS) {
        let action = e.get("eventAction").and_then(Value::as_str).unwrap_or("");
        let slot = if action.eq_ignore_ascii_case("registration") {
            &mut registered
        } else if action.eq_ignore_ascii_case("reregistration") {
            &mut reregistered
        } else {
            continue;
        };
        match e
            .get("eventDate")
            .and_then(Value::as_str)
            .and_then(parse_day)
        {
            Some(day) if action.eq_ignore_ascii_case("registration") => {
                *slot = Some(slot.map_or(day, |d| d.min(day)));
            }
            Some(day) => *slot = Some(slot.map_or(day, |d| d.max(day))),
            None => unreadable = true,
        }
    }
    let day = match (registered, reregistered) {
        (Some(r), Some(rr)) => Some(r.max(rr)),
        (r, rr) => r.or(rr),
    };
    if day.is_none() && unreadable {
        return Err(BadAnswer::BadDate);
    }
    Ok(day)
}

/// Days since 1970-01-01 (UTC) of an RDAP `eventDate` (RFC 3339; a bare `YYYY-MM-DD` or a
/// date-time without offset is read as UTC). `None` for unreadable dates and dates before 1970.
pub fn parse_day(s: &str) -> Option<i64> {
    let s = s.trim();
    let date = match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&chrono::Utc).date_naive(),
        Err(_) => {
            let head = s.get(..10)?;
            let rest = s.get(10..)?;
            if !(rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ')) {
                return None;
            }
            chrono::NaiveDate::parse_from_str(head, "%Y-%m-%d").ok()?
        }
    };
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let days = (date - epoch).num_days();
    (days >= 0).then_some(days)
}

/// The name as an RDAP lookup key: ASCII LDH labels (lower-cased), a trailing dot removed.
/// `None` when it is not a plausible registrable domain (see the module docs).
pub fn ldh_name(name: &str) -> Option<Cow<'_, str>> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() || n.len() > MAX_NAME_LEN {
        return None;
    }
    let mut labels = 0usize;
    let mut last = "";
    for l in n.split('.') {
        let ok = !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return None;
        }
        labels += 1;
        last = l;
    }
    if labels < 2 || last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if n.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(n.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(n))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "rdap_tests.rs"]
mod tests;
