//! Office 365 Management Activity API poller: reads the Unified Audit Log content blobs of one
//! tenant and hands every audit record to the analysis side as one [`Raw`].
//!
//! Flow (as Microsoft documents it): an OAuth2 client-credentials token from
//! `{login_base}/{tenant}/oauth2/v2.0/token`; `subscriptions/start` once per content type (an
//! "already enabled" answer is fine); then, per poll, `subscriptions/content` for a window of at
//! most 24 h whose start is no older than 7 days, following `NextPageUri`; each listed blob's
//! `contentUri` returns a JSON array of records.
//!
//! Windows and de-duplication: the listing filters on `contentCreated`, the time a blob became
//! available, which can be a little late. So each window starts `overlap` before the end of the
//! last fully processed one, and the contentIds delivered since then are remembered in the
//! [`Checkpoint`] (bounded by `max_delivered_ids`, oldest evicted first and counted). A blob is
//! marked delivered only after all its records were sent into the channel.
//!
//! Checkpoint contract: the caller runs the schedule (`poll_once` every minute or so), and after
//! `poll_once` returns and the records it sent were processed by the analysis side, persists
//! [`Poller::checkpoint`]. Started again with that checkpoint, the poller neither loses nor
//! repeats a blob. A crash between sending and persisting repeats the blobs of that poll
//! (at-least-once), never loses them. `poll_once` may be cancelled (shutdown): a blob whose
//! records were partly sent is then sent whole again by the next poll.
//!
//! Limits and guarantees: per content type and poll at most `max_pages_per_poll` listing pages,
//! `max_blobs_per_poll` blob downloads and [`MAX_WINDOWS_PER_POLL`] windows; a blob is at most
//! `max_blob_bytes`, a listing page [`MAX_LISTING_BYTES`]; every request has a deadline and at
//! most `max_attempts` tries (exponential backoff with jitter on connection errors, 429 and 5xx,
//! `Retry-After` honoured up to `max_retry_after`; a 401 refreshes the token once). The bearer
//! token is only ever sent to the configured API origin: a `NextPageUri` or `contentUri`
//! elsewhere is refused and counted. A blob that can never be read (too large, not a JSON array,
//! gone) is counted, logged and skipped so it cannot stall the feed. Plain `http://` bases are
//! accepted for loopback addresses only (tests). No panic on any response.
//!
//! Time: windows are computed from a "now" the caller can pass ([`Poller::poll_once_at`]); the
//! API's windows are wall-clock by nature, the records themselves carry their own times.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc::Sender;

use super::client::{self, Client, Target, truncate};
use super::{ArrayItems, Raw, bump, counters, de_duration};

/// Longest listing window the API accepts.
pub const MAX_WINDOW_US: u64 = 24 * 3600 * 1_000_000;
/// Oldest start time the API accepts, before [`START_MARGIN_US`].
pub const MAX_AGE_US: u64 = 7 * 24 * 3600 * 1_000_000;
/// Kept between the 7-day limit and the oldest start asked for (clock skew, request time).
pub const START_MARGIN_US: u64 = 10 * 60 * 1_000_000;
/// Windows listed per content type and poll (7 days of 24 h windows fit).
pub const MAX_WINDOWS_PER_POLL: u32 = 8;
/// Largest listing page body.
pub const MAX_LISTING_BYTES: usize = 16 << 20;
/// Largest token or subscription response body.
pub const MAX_SMALL_BODY: usize = 1 << 20;
/// Longest contentId kept for de-duplication.
pub const MAX_CONTENT_ID: usize = 512;
/// Content types the API serves.
pub const CONTENT_TYPES: [&str; 5] = [
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
];

/// Poller settings: documented data, checked by [`PollerConfig::validate`] before start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollerConfig {
    /// Entra ID tenant whose audit log is read: its GUID or a verified domain.
    pub tenant: String,
    /// Application (client) id of the app registration with the `ActivityFeed.Read` permission.
    pub client_id: String,
    /// File holding the app's client secret (one line). Keep it mode 0600.
    pub client_secret_file: PathBuf,
    /// Content types to subscribe to and read. Default Audit.AzureActiveDirectory,
    /// Audit.Exchange, Audit.General.
    #[serde(default = "default_content_types")]
    pub content_types: Vec<String>,
    /// Identity platform base URL. Default `https://login.microsoftonline.com`.
    #[serde(default = "default_login_base")]
    pub login_base: String,
    /// Management API base URL. Default `https://manage.office.com`.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// OAuth2 scope asked for. Default `https://manage.office.com/.default`.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// `PublisherIdentifier` sent with API calls (the quota owner's tenant GUID). Default none.
    #[serde(default)]
    pub publisher_id: Option<String>,
    /// PEM file of extra CA certificates to trust (e.g. a TLS-inspecting proxy). Default none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How far back the first poll (no checkpoint) starts. At most 7 days. Default "24h".
    #[serde(default = "default_initial_lookback", deserialize_with = "de_duration")]
    pub initial_lookback: Duration,
    /// How far before the end of the last processed window the next one starts, to catch
    /// blobs listed late. Default "15m".
    #[serde(default = "default_overlap", deserialize_with = "de_duration")]
    pub overlap: Duration,
    /// Listing pages fetched per content type and poll. Default 200.
    #[serde(default = "default_max_pages")]
    pub max_pages_per_poll: u32,
    /// Blobs downloaded per content type and poll. Default 500.
    #[serde(default = "default_max_blobs")]
    pub max_blobs_per_poll: u32,
    /// Largest blob, in bytes. Default 64 MiB.
    #[serde(default = "default_max_blob_bytes")]
    pub max_blob_bytes: usize,
    /// contentIds remembered per content type for de-duplication. Default 50000.
    #[serde(default = "default_max_delivered")]
    pub max_delivered_ids: usize,
    /// Tries per request (the first one included). Default 5.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubled on each retry, with jitter. Default "1s".
    #[serde(default = "default_backoff_base", deserialize_with = "de_duration")]
    pub backoff_base: Duration,
    /// Longest retry delay. Default "60s".
    #[serde(default = "default_backoff_max", deserialize_with = "de_duration")]
    pub backoff_max: Duration,
    /// Longest `Retry-After` honoured. Default "5m".
    #[serde(default = "default_max_retry_after", deserialize_with = "de_duration")]
    pub max_retry_after: Duration,
    /// Deadline of one request, body included. Default "120s".
    #[serde(default = "default_request_timeout", deserialize_with = "de_duration")]
    pub request_timeout: Duration,
}

fn default_content_types() -> Vec<String> {
    [
        "Audit.AzureActiveDirectory",
        "Audit.Exchange",
        "Audit.General",
    ]
    .map(String::from)
    .to_vec()
}
fn default_login_base() -> String {
    "https://login.microsoftonline.com".into()
}
fn default_api_base() -> String {
    "https://manage.office.com".into()
}
fn default_scope() -> String {
    "https://manage.office.com/.default".into()
}
fn default_initial_lookback() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_overlap() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_max_pages() -> u32 {
    200
}
fn default_max_blobs() -> u32 {
    500
}
fn default_max_blob_bytes() -> usize {
    64 << 20
}
fn default_max_delivered() -> usize {
    50_000
}
fn default_max_attempts() -> u32 {
    5
}
fn default_backoff_base() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(60)
}
fn default_max_retry_after() -> Duration {
    Duration::from_secs(300)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(120)
}

impl PollerConfig {
    /// Settings with the defaults for everything but the tenant and the app.
    pub fn new(tenant: &str, client_id: &str, client_secret_file: PathBuf) -> PollerConfig {
        PollerConfig {
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            client_secret_file,
            content_types: default_content_types(),
            login_base: default_login_base(),
            api_base: default_api_base(),
            scope: default_scope(),
            publisher_id: None,
            ca_file: None,
            initial_lookback: default_initial_lookback(),
            overlap: default_overlap(),
            max_pages_per_poll: default_max_pages(),
            max_blobs_per_poll: default_max_blobs(),
            max_blob_bytes: default_max_blob_bytes(),
            max_delivered_ids: default_max_delivered(),
            max_attempts: default_max_attempts(),
            backoff_base: default_backoff_base(),
            backoff_max: default_backoff_max(),
            max_retry_after: default_max_retry_after(),
            request_timeout: default_request_timeout(),
        }
    }

    /// Checks every value that does not need a file (files are read by [`Poller::new`]).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key, why: &str| {
            Err(Error::Invalid {
                key,
                why: why.to_owned(),
            })
        };
        let word = |s: &str, extra: &[u8]| {
            !s.is_empty()
                && s.len() <= 255
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
        };
        if !word(&self.tenant, b".-") {
            return bad("tenant", "must be a tenant GUID or domain name");
        }
        if !word(&self.client_id, b"-") {
            return bad("client_id", "must be an application (client) id");
        }
        if self.publisher_id.as_deref().is_some_and(|p| !word(p, b"-")) {
            return bad("publisher_id", "must be a tenant GUID");
        }
        if self.content_types.is_empty() {
            return bad("content_types", "must name at least one content type");
        }
        for (i, ct) in self.content_types.iter().enumerate() {
            if !CONTENT_TYPES.contains(&ct.as_str()) {
                return bad(
                    "content_types",
                    &format!("`{ct}` is not one of {CONTENT_TYPES:?}"),
                );
            }
            if self.content_types[..i].contains(ct) {
                return bad("content_types", &format!("`{ct}` is listed twice"));
            }
        }
        base_url("login_base", &self.login_base)?;
        base_url("api_base", &self.api_base)?;
        if self.scope.is_empty() || self.scope.len() > 1024 {
            return bad(
                "scope",
                "must be a scope like https://manage.office.com/.default",
            );
        }
        if self.initial_lookback.as_micros() > u128::from(MAX_AGE_US - START_MARGIN_US) {
            return bad("initial_lookback", "must be under 7 days");
        }
        if self.overlap > Duration::from_secs(6 * 3600) {
            return bad("overlap", "must be at most 6h");
        }
        if self.max_pages_per_poll == 0 || self.max_blobs_per_poll == 0 {
            return bad(
                "max_pages_per_poll",
                "page and blob limits must be at least 1",
            );
        }
        if !(1024..=1 << 30).contains(&self.max_blob_bytes) {
            return bad("max_blob_bytes", "must be between 1 KiB and 1 GiB");
        }
        if !(1..=10_000_000).contains(&self.max_delivered_ids) {
            return bad("max_delivered_ids", "must be between 1 and 10000000");
        }
        if !(1..=20).contains(&self.max_attempts) {
            return bad("max_attempts", "must be between 1 and 20");
        }
        if self.backoff_base.is_zero() || self.backoff_base > self.backoff_max {
            return bad("backoff_base", "must be above zero and at most backoff_max");
        }
        if self.request_timeout < Duration::from_millis(10) {
            return bad("request_timeout", "must be at least 10ms");
        }
        Ok(())
    }
}

/// Parses a base URL, which has no path.
fn base_url(key: &'static str, url: &str) -> Result<Target, Error> {
    let t = Target::parse(url.trim_end_matches('/')).map_err(|e| Error::Invalid {
        key,
        why: e.to_string(),
    })?;
    if t.path_and_query() != "/" {
        return Err(Error::Invalid {
            key,
            why: "must be scheme://host[:port] without a path".into(),
        });
    }
    Ok(t)
}

/// Where each content type stands; persist it (serde) as the module docs describe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Per content type (e.g. "Audit.Exchange").
    #[serde(default)]
    pub content: BTreeMap<String, Cursor>,
}

/// Where one content type stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// End of the last fully processed listing window, µs since the epoch (on a first start:
    /// the start of the lookback).
    pub done_until_us: u64,
    /// contentIds already delivered that a coming window may list again, with their
    /// `contentCreated` (µs since the epoch).
    #[serde(default)]
    pub delivered: BTreeMap<String, u64>,
}

/// What one poll did, per content type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollReport {
    pub content: Vec<TypeReport>,
}

/// What one poll did for one content type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TypeReport {
    pub content_type: String,
    /// Listing windows completed.
    pub windows: u32,
    /// Blobs whose records were sent.
    pub blobs: u64,
    /// Records sent.
    pub records: u64,
    /// True when the last window reached "now" (nothing left to read until the next poll).
    pub caught_up: bool,
    /// Why the poll of this type stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A poller failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("poller: `{key}`: {why}")]
    Invalid { key: &'static str, why: String },
    #[error("poller: {path}: {why}")]
    File { path: PathBuf, why: String },
    #[error("poller: {0}")]
    Client(#[from] client::Error),
    #[error("poller: token endpoint refused: {0}")]
    Auth(String),
    #[error("poller: {what} answered {status}: {body}")]
    Status {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error("poller: {what} failed after {attempts} tries: {last}")]
    GaveUp {
        what: &'static str,
        attempts: u32,
        last: String,
    },
    #[error("poller: {what}: {why}")]
    BadResponse { what: &'static str, why: String },
    #[error("poller: refusing a URL outside the API origin: {0}")]
    Foreign(String),
    #[error("poller: the record channel is closed")]
    ChannelClosed,
}

counters!(
    /// Poller counters, shown in stats.
    Stats,
    StatsSnapshot {
        /// `poll_once` calls.
        polls,
        /// Token requests made.
        token_requests,
        /// Tokens dropped because the API answered 401.
        token_refreshes,
        /// Subscriptions started (or found enabled).
        subscriptions,
        /// Listing pages read.
        pages,
        /// Blobs whose records were sent.
        blobs,
        /// Listed blobs skipped as already delivered.
        blobs_skipped,
        /// Blobs that could not be read and were given up (too large, not JSON, gone, foreign).
        blobs_failed,
        /// Records sent into the channel.
        records,
        /// Blob elements that were not JSON objects.
        records_rejected,
        /// Requests that failed at the connection, TLS or deadline level.
        fetch_errors,
        /// Answers 429.
        throttled,
        /// Answers 5xx.
        server_errors,
        /// Unexpected answers (4xx other than 401/429, bad bodies).
        http_errors,
        /// Retries made.
        retries,
        /// NextPageUri/contentUri refused for pointing outside the API origin.
        foreign_urls,
        /// Remembered contentIds evicted at `max_delivered_ids`.
        delivered_evicted,
        /// Windows that had to skip time older than the API's 7 days.
        gaps,
        /// Polls of a type stopped by `max_pages_per_poll` (a window that needs more pages than
        /// that is listed again from its first page on each poll and never completes: raise it).
        page_cap_hits,
        /// Polls of a type stopped by `max_blobs_per_poll`.
        blob_cap_hits,
    }
);

struct Token {
    value: HeaderValue,
    refresh_at: tokio::time::Instant,
}

/// Per content type and poll.
struct Budget {
    pages: u32,
    blobs: u32,
}

/// One blob as the listing names it.
#[derive(Deserialize)]
struct BlobRef {
    #[serde(rename = "contentId", default)]
    content_id: String,
    #[serde(rename = "contentUri", default)]
    content_uri: String,
    #[serde(rename = "contentCreated", default)]
    content_created: String,
}

/// The Management Activity API poller (see the module docs).
pub struct Poller {
    cfg: PollerConfig,
    token_url: Target,
    api: Target,
    secret: String,
    client: Client,
    tx: Sender<Raw>,
    token: Option<Token>,
    subscribed: Vec<String>,
    state: Checkpoint,
    stats: Arc<Stats>,
    rng: u64,
}

impl Poller {
    /// Validates `cfg`, reads the secret and CA files and resumes from `checkpoint` (cursors of
    /// content types no longer configured are dropped). No network traffic happens here.
    pub fn new(
        cfg: PollerConfig,
        checkpoint: Option<Checkpoint>,
        tx: Sender<Raw>,
    ) -> Result<Poller, Error> {
        cfg.validate()?;
        let file_err = |path: &PathBuf, why: String| Error::File {
            path: path.clone(),
            why,
        };
        let secret = super::read_capped(&cfg.client_secret_file, 64 * 1024)
            .map_err(|e| file_err(&cfg.client_secret_file, e.to_string()))?;
        let secret = String::from_utf8(secret)
            .map_err(|_| file_err(&cfg.client_secret_file, "not UTF-8".into()))?
            .trim()
            .to_owned();
        if secret.is_empty() {
            return Err(file_err(&cfg.client_secret_file, "empty".into()));
        }
        let roots = match &cfg.ca_file {
            Some(p) => super::read_certs(p).map_err(|e| file_err(p, e.to_string()))?,
            None => Vec::new(),
        };
        let client = Client::new(&roots, cfg.request_timeout)?;
        let login = base_url("login_base", &cfg.login_base)?;
        let token_url = login.with_path(format!("/{}/oauth2/v2.0/token", cfg.tenant));
        let api = base_url("api_base", &cfg.api_base)?;
        let mut state = checkpoint.unwrap_or_default();
        state
            .content
            .retain(|ct, _| cfg.content_types.iter().any(|c| c == ct));
        let stats = Arc::new(Stats::default());
        for cursor in state.content.values_mut() {
            let evicted = trim_delivered(&mut cursor.delivered, cfg.max_delivered_ids);
            stats
                .delivered_evicted
                .fetch_add(evicted, std::sync::atomic::Ordering::Relaxed);
        }
        let rng = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            | 1;
        Ok(Poller {
            cfg,
            token_url,
            api,
            secret,
            client,
            tx,
            token: None,
            subscribed: Vec::new(),
            state,
            stats,
            rng,
        })
    }

    /// The counters, shared.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Where every content type stands: persist it after the records sent so far were
    /// processed (see the module docs).
    pub fn checkpoint(&self) -> Checkpoint {
        self.state.clone()
    }

    /// One poll with "now" read from the system clock.
    pub async fn poll_once(&mut self) -> Result<PollReport, Error> {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros().min(u128::from(u64::MAX)) as u64);
        self.poll_once_at(now_us).await
    }

    /// One poll of every content type, with windows ending no later than `now_us`. A failure of
    /// one type is reported in its [`TypeReport`] and the others go on; only a closed channel
    /// ends the poll with an error.
    pub async fn poll_once_at(&mut self, now_us: u64) -> Result<PollReport, Error> {
        bump(&self.stats.polls);
        let mut report = PollReport::default();
        for ct in self.cfg.content_types.clone() {
            let mut r = TypeReport {
                content_type: ct.clone(),
                ..TypeReport::default()
            };
            match self.poll_type(&ct, now_us, &mut r).await {
                Ok(()) => {}
                Err(Error::ChannelClosed) => return Err(Error::ChannelClosed),
                Err(e) => {
                    tracing::warn!(content_type = %ct, error = %e, "audit poll stopped early");
                    r.error = Some(e.to_string());
                }
            }
            report.content.push(r);
        }
        Ok(report)
    }

    async fn poll_type(&mut self, ct: &str, now_us: u64, r: &mut TypeReport) -> Result<(), Error> {
        if !self.subscribed.iter().any(|s| s == ct) {
            self.start_subscription(ct).await?;
        }
        let lookback = duration_us(self.cfg.initial_lookback);
        let overlap = duration_us(self.cfg.overlap);
        let mut budget = Budget {
            pages: self.cfg.max_pages_per_poll,
            blobs: self.cfg.max_blobs_per_poll,
        };
        for _ in 0..MAX_WINDOWS_PER_POLL {
            let cursor = self
                .state
                .content
                .entry(ct.to_owned())
                .or_insert_with(|| Cursor {
                    done_until_us: now_us.saturating_sub(lookback),
                    delivered: BTreeMap::new(),
                });
            let Some(w) = window(cursor.done_until_us, overlap, now_us) else {
                r.caught_up = true;
                return Ok(());
            };
            if w.gap {
                bump(&self.stats.gaps);
                tracing::warn!(content_type = %ct, "audit feed resumed after more than 7 days: older blobs are no longer listed");
            }
            if !self.list_window(ct, w, &mut budget, r).await? {
                return Ok(());
            }
            r.windows += 1;
            if let Some(cursor) = self.state.content.get_mut(ct) {
                cursor.done_until_us = w.end;
                let keep_from = w.end.saturating_sub(overlap);
                cursor.delivered.retain(|_, created| *created >= keep_from);
            }
            if w.reaches_now {
                r.caught_up = true;
                return Ok(());
            }
        }
        Ok(())
    }

    async fn start_subscription(&mut self, ct: &str) -> Result<(), Error> {
        let target = self.api.with_path(format!(
            "/api/v1.0/{}/activity/feed/subscriptions/start?contentType={ct}{}",
            self.cfg.tenant,
            self.publisher_param()
        ));
        let resp = self
            .call(
                Method::POST,
                &target,
                None,
                MAX_SMALL_BODY,
                "subscriptions/start",
            )
            .await?;
        let already = resp.status == StatusCode::BAD_REQUEST && {
            let text = String::from_utf8_lossy(&resp.body);
            text.contains("AF20024") || text.contains("already enabled")
        };
        if !resp.status.is_success() && !already {
            bump(&self.stats.http_errors);
            return Err(status_error("subscriptions/start", &resp));
        }
        bump(&self.stats.subscriptions);
        self.subscribed.push(ct.to_owned());
        Ok(())
    }

    /// Lists one window, page by page, delivering each new blob. True when the whole window
    /// was processed.
    async fn list_window(
        &mut self,
        ct: &str,
        w: Window,
        budget: &mut Budget,
        r: &mut TypeReport,
    ) -> Result<bool, Error> {
        let mut target = self.api.with_path(format!(
            "/api/v1.0/{}/activity/feed/subscriptions/content?contentType={ct}&startTime={}&endTime={}{}",
            self.cfg.tenant,
            format_time(w.start),
            format_time(w.end),
            self.publisher_param()
        ));
        loop {
            if budget.pages == 0 {
                bump(&self.stats.page_cap_hits);
                return Ok(false);
            }
            budget.pages -= 1;
            let resp = self
                .call(
                    Method::GET,
                    &target,
                    None,
                    MAX_LISTING_BYTES,
                    "content listing",
                )
                .await?;
            if resp.status != StatusCode::OK {
                bump(&self.stats.http_errors);
                if String::from_utf8_lossy(&resp.body).contains("AF20022") {
                    // No subscription (any more): start it again on the next poll.
                    self.subscribed.retain(|s| s != ct);
                }
                return Err(status_error("content listing", &resp));
            }
            let blobs: Vec<BlobRef> = serde_json::from_slice(&resp.body).map_err(|e| {
                bump(&self.stats.http_errors);
                Error::BadResponse {
                    what: "content listing",
                    why: truncate(&e.to_string(), 200),
                }
            })?;
            bump(&self.stats.pages);
            let next = resp
                .headers
                .get("NextPageUri")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().to_owned());
            for blob in blobs {
                let seen = self
                    .state
                    .content
                    .get(ct)
                    .is_some_and(|c| c.delivered.contains_key(&blob.content_id));
                if seen {
                    bump(&self.stats.blobs_skipped);
                    continue;
                }
                if budget.blobs == 0 {
                    bump(&self.stats.blob_cap_hits);
                    return Ok(false);
                }
                budget.blobs -= 1;
                let created = parse_time(&blob.content_created).unwrap_or(w.end);
                let sent = self.fetch_blob(ct, &blob).await?;
                if let Some(n) = sent {
                    r.blobs += 1;
                    r.records += n;
                }
                self.mark_delivered(ct, &blob.content_id, created);
            }
            match next {
                None => return Ok(true),
                Some(url) => target = self.same_origin(&url)?,
            }
        }
    }

    /// Downloads one blob and sends its records. `Ok(Some(n))`: n records sent; `Ok(None)`:
    /// the blob can never be read and was skipped (counted); `Err`: try again on a later poll.
    async fn fetch_blob(&mut self, ct: &str, blob: &BlobRef) -> Result<Option<u64>, Error> {
        let give_up = |stats: &Stats, why: &str| {
            bump(&stats.blobs_failed);
            tracing::warn!(content_type = %ct, content_id = %truncate(&blob.content_id, 100), why, "audit blob skipped");
            Ok(None)
        };
        if blob.content_id.is_empty() || blob.content_id.len() > MAX_CONTENT_ID {
            return give_up(&self.stats, "missing or overlong contentId");
        }
        let target = match self.same_origin(&blob.content_uri) {
            Ok(t) => t,
            Err(_) => return give_up(&self.stats, "contentUri outside the API origin"),
        };
        let max = self.cfg.max_blob_bytes;
        let resp = match self
            .call(Method::GET, &target, None, max, "content blob")
            .await
        {
            Ok(r) => r,
            Err(Error::Client(client::Error::TooLarge { .. })) => {
                return give_up(&self.stats, "larger than max_blob_bytes");
            }
            Err(e) => return Err(e),
        };
        match resp.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return give_up(&self.stats, "gone (expired)");
            }
            _ => {
                bump(&self.stats.http_errors);
                return Err(status_error("content blob", &resp));
            }
        }
        let Some(items) = ArrayItems::new(&resp.body) else {
            return give_up(&self.stats, "not a JSON array");
        };
        let mut sent = 0;
        for (i, item) in items.enumerate() {
            let value = match serde_json::from_str::<Value>(item.get()) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    bump(&self.stats.records_rejected);
                    continue;
                }
            };
            let raw = Raw {
                origin: format!("poller {ct} {} #{}", blob.content_id, i + 1),
                value,
            };
            self.tx.send(raw).await.map_err(|_| Error::ChannelClosed)?;
            bump(&self.stats.records);
            sent += 1;
        }
        bump(&self.stats.blobs);
        Ok(Some(sent))
    }

    fn mark_delivered(&mut self, ct: &str, id: &str, created: u64) {
        if id.is_empty() || id.len() > MAX_CONTENT_ID {
            return;
        }
        let Some(cursor) = self.state.content.get_mut(ct) else {
            return;
        };
        cursor.delivered.insert(id.to_owned(), created);
        while cursor.delivered.len() > self.cfg.max_delivered_ids {
            evict_oldest(&mut cursor.delivered);
            bump(&self.stats.delivered_evicted);
        }
    }

    /// Parses a server-given URL and checks it is on the API origin (the token goes with it).
    fn same_origin(&self, url: &str) -> Result<Target, Error> {
        let foreign = || {
            bump(&self.stats.foreign_urls);
            Error::Foreign(truncate(url, 200))
        };
        let t = Target::parse(url.trim()).map_err(|_| foreign())?;
        if t.origin() != self.api.origin() {
            return Err(foreign());
        }
        Ok(t)
    }

    fn publisher_param(&self) -> String {
        self.cfg
            .publisher_id
            .as_ref()
            .map_or_else(String::new, |p| format!("&PublisherIdentifier={p}"))
    }

    /// The bearer header, from the cache or a new token.
    async fn bearer(&mut self) -> Result<HeaderValue, Error> {
        if let Some(t) = &self.token
            && tokio::time::Instant::now() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        bump(&self.stats.token_requests);
        let form = form_encode(&[
            ("grant_type", "client_credentials"),
            ("client_id", &self.cfg.client_id),
            ("client_secret", &self.secret),
            ("scope", &self.cfg.scope),
        ]);
        let target = self.token_url.clone();
        let resp = self
            .send_retrying(
                Method::POST,
                &target,
                Some(Bytes::from(form)),
                MAX_SMALL_BODY,
                "token",
                None,
            )
            .await?;
        #[derive(Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            access_token: String,
            #[serde(default)]
            expires_in: Option<Value>,
            #[serde(default)]
            error: Option<String>,
            #[serde(default)]
            error_description: Option<String>,
        }
        let parsed: Option<TokenResponse> = serde_json::from_slice(&resp.body).ok();
        let Some(tr) =
            parsed.filter(|t| resp.status == StatusCode::OK && !t.access_token.is_empty())
        else {
            let why = serde_json::from_slice::<TokenResponse>(&resp.body)
                .ok()
                .map(|t| {
                    format!(
                        "{} {}",
                        t.error.unwrap_or_default(),
                        t.error_description.unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            return Err(Error::Auth(format!(
                "{}: {}",
                resp.status,
                truncate(why.trim(), 300)
            )));
        };
        let lifetime = tr
            .expires_in
            .as_ref()
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(3600)
            .clamp(60, 24 * 3600);
        let early = (lifetime / 10).clamp(30, 300);
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", tr.access_token)).map_err(|_| {
                Error::BadResponse {
                    what: "token",
                    why: "access_token is not a valid header value".into(),
                }
            })?;
        value.set_sensitive(true);
        self.token = Some(Token {
            value: value.clone(),
            refresh_at: tokio::time::Instant::now() + Duration::from_secs(lifetime - early),
        });
        Ok(value)
    }

    /// An API call with the bearer token: retried, and on a 401 retried once with a new token.
    async fn call(
        &mut self,
        method: Method,
        target: &Target,
        body: Option<Bytes>,
        max_body: usize,
        what: &'static str,
    ) -> Result<client::Response, Error> {
        let bearer = self.bearer().await?;
        let resp = self
            .send_retrying(
                method.clone(),
                target,
                body.clone(),
                max_body,
                what,
                Some(bearer),
            )
            .await?;
        if resp.status != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        bump(&self.stats.token_refreshes);
        self.token = None;
        let bearer = self.bearer().await?;
        let resp = self
            .send_retrying(method, target, body, max_body, what, Some(bearer))
            .await?;
        if resp.status == StatusCode::UNAUTHORIZED {
            bump(&self.stats.http_errors);
            return Err(status_error(what, &resp));
        }
        Ok(resp)
    }

    /// Sends with retries on connection errors, 429 and 5xx (with `bearer` when given). Other
    /// answers are returned.
    async fn send_retrying(
        &mut self,
        method: Method,
        target: &Target,
        body: Option<Bytes>,
        max_body: usize,
        what: &'static str,
        bearer: Option<HeaderValue>,
    ) -> Result<client::Response, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(3);
            headers.push((header::ACCEPT, HeaderValue::from_static("application/json")));
            if let Some(b) = &bearer {
                headers.push((header::AUTHORIZATION, b.clone()));
            }
            if body.is_some() {
                headers.push((
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                ));
            }
            let result = self
                .client
                .request(
                    method.clone(),
                    target,
                    &headers,
                    body.clone().unwrap_or_default(),
                    max_body,
                )
                .await;
            let (last, wait) = match result {
                Ok(resp) if resp.status == StatusCode::TOO_MANY_REQUESTS => {
                    bump(&self.stats.throttled);
                    let wait = retry_after(&resp.headers, self.cfg.max_retry_after);
                    (format!("{}", resp.status), wait)
                }
                Ok(resp) if resp.status.is_server_error() => {
                    bump(&self.stats.server_errors);
                    let wait = retry_after(&resp.headers, self.cfg.max_retry_after);
                    (format!("{}", resp.status), wait)
                }
                Ok(resp) => return Ok(resp),
                Err(e) if e.is_transient() => {
                    bump(&self.stats.fetch_errors);
                    (e.to_string(), None)
                }
                Err(e) => return Err(e.into()),
            };
            if attempt >= self.cfg.max_attempts {
                return Err(Error::GaveUp {
                    what,
                    attempts: attempt,
                    last,
                });
            }
            bump(&self.stats.retries);
            let delay = wait.unwrap_or_else(|| self.backoff(attempt));
            tracing::debug!(what, attempt, ?delay, last = %last, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// Exponential backoff with jitter: a delay in [d/2, d], d = base * 2^(attempt-1) <= max.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let d = self
            .cfg
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.cfg.backoff_max);
        // xorshift64: jitter only, no security use.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = d / 2;
        let spread = half.as_micros().max(1) as u64;
        half + Duration::from_micros(self.rng % spread)
    }
}

/// A listing window, µs since the epoch, on whole seconds as the API takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: u64,
    end: u64,
    /// The window ends at "now": nothing more to list in this poll.
    reaches_now: bool,
    /// The start had to move up to the API's 7-day limit: older blobs cannot be listed.
    gap: bool,
}

/// The next window after `done_until_us`, or `None` when there is nothing to list yet.
fn window(done_until_us: u64, overlap_us: u64, now_us: u64) -> Option<Window> {
    let now = now_us - now_us % 1_000_000;
    let floor = now.saturating_sub(MAX_AGE_US - START_MARGIN_US);
    let wanted = done_until_us.saturating_sub(overlap_us);
    let start = wanted.max(floor);
    let start = start - start % 1_000_000;
    let end = start.saturating_add(MAX_WINDOW_US).min(now);
    (end > start).then_some(Window {
        start,
        end,
        reaches_now: end == now,
        gap: done_until_us < floor,
    })
}

fn duration_us(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// Drops the oldest ids (by contentCreated) above `cap`, in one pass; returns how many.
fn trim_delivered(delivered: &mut BTreeMap<String, u64>, cap: usize) -> u64 {
    let excess = delivered.len().saturating_sub(cap);
    if excess == 0 {
        return 0;
    }
    let mut by_age: Vec<(u64, String)> = std::mem::take(delivered)
        .into_iter()
        .map(|(id, created)| (created, id))
        .collect();
    by_age.sort_unstable();
    delivered.extend(by_age.into_iter().skip(excess).map(|(c, id)| (id, c)));
    excess as u64
}

fn evict_oldest(delivered: &mut BTreeMap<String, u64>) {
    if let Some(oldest) = delivered
        .iter()
        .min_by_key(|(_, created)| **created)
        .map(|(id, _)| id.clone())
    {
        delivered.remove(&oldest);
    }
}

/// `Retry-After` in seconds, capped; `None` when absent or not a number of seconds.
fn retry_after(headers: &hyper::HeaderMap, cap: Duration) -> Option<Duration> {
    let secs: u64 = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(cap))
}

fn status_error(what: &'static str, resp: &client::Response) -> Error {
    Error::Status {
        what,
        status: resp.status.as_u16(),
        body: truncate(&String::from_utf8_lossy(&resp.body), 300),
    }
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC), the API's time format.
fn format_time(us: u64) -> String {
    let secs = i64::try_from(us / 1_000_000).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, 0)
        .map_or_else(String::new, |t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
}

/// Parses `contentCreated` ("2015-05-23T17:35:00.000Z", zone optional: UTC) to µs.
fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc())
        })
        .ok()?;
    u64::try_from(t.timestamp_micros()).ok()
}

/// `application/x-www-form-urlencoded` body.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(k, &mut out);
        out.push('=');
        percent_encode(v, &mut out);
    }
    out
}

fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
#[path = "poller_tests.rs"]
mod tests;
