//! HTTPS webhook: senders POST Microsoft 365 / Entra ID / Defender records, each valid record
//! goes to the analysis side as one [`Raw`] through the caller's bounded channel.
//!
//! Protocol:
//! - `POST /v1/records` (or `POST /`) with `Authorization: Bearer <token>`. The body is NDJSON
//!   (one JSON object a line), one JSON array of objects, or one JSON object; it may be
//!   `Content-Encoding: gzip`. Answer `202 {"accepted":N,"rejected":M,"errors":[...]}`: invalid
//!   lines or elements are rejected one by one (at most [`MAX_ERRORS`] messages are listed) and
//!   the good ones around them are delivered.
//! - `401` (with `WWW-Authenticate: Bearer`) without a token or with a wrong one; `413` over
//!   `max_body_bytes` (reading stops at the limit, also after gzip); `415` for a content type or
//!   encoding that is not JSON; `400` when nothing in the body is a JSON object; `408` when the
//!   body does not arrive within `request_timeout`.
//! - Backpressure: a record waits at most `busy_timeout` for room in the channel; then the
//!   request stops there and is answered `503` with `Retry-After`, the counts so far and
//!   `resume_at`, the 1-based line (NDJSON) or element (array) number of the first record that
//!   was not processed. Records before it were delivered (or rejected, as listed); none after.
//! - `GET /health` answers 200 without a token.
//!
//! Limits and guarantees: no panic on any request; TLS handshake, request head and request body
//! each get `request_timeout` (slow or idle clients are cut, including idle keep-alive
//! connections); at most `max_connections` connections are served at once (others are closed at
//! once and counted); a request holds its body (at most `max_body_bytes`; with gzip also the
//! decoded copy, capped the same) plus one parsed record at a time, whatever the number of
//! records. Bearer tokens are compared in constant time (only a token's length can leak). Tokens,
//! certificate and key are read once, at [`Server::bind`]: changing them needs a restart.

use std::convert::Infallible;
use std::future::Future;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::{ArrayItems, Raw, bump, counters, de_duration};

/// Error messages listed in one response.
pub const MAX_ERRORS: usize = 20;
/// Characters of one error message.
pub const MAX_ERROR_TEXT: usize = 200;
/// Tokens read from the token file.
pub const MAX_TOKENS: usize = 64;
/// Shortest accepted token, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;
/// Buffer for a request head (hyper's read buffer).
pub const MAX_HEAD: usize = 64 * 1024;

/// Webhook settings: documented data, checked by [`WebhookConfig::validate`] before start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Address and port to listen on, e.g. "0.0.0.0:8443".
    pub listen: SocketAddr,
    /// PEM file with the server certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM file with the server private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// File with the accepted bearer tokens, one a line; blank lines and lines starting with `#`
    /// are ignored. Each token is at least 16 printable ASCII characters. Keep it mode 0600.
    pub token_file: PathBuf,
    /// Largest request body, in bytes, after gzip decoding too. Default 16 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Longest NDJSON line, in bytes. Default 10 MiB.
    #[serde(default = "default_max_line")]
    pub max_line_bytes: usize,
    /// Connections served at once; more are closed on accept. Default 32.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Time allowed for the TLS handshake, for a request head (also the idle keep-alive
    /// time) and for a request body, each. Default "60s".
    #[serde(default = "default_request_timeout", deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    /// How long one record may wait for room in the channel before the request is answered
    /// 503. Default "1s".
    #[serde(default = "default_busy_timeout", deserialize_with = "de_duration")]
    pub busy_timeout: Duration,
}

fn default_max_body() -> usize {
    16 << 20
}
fn default_max_line() -> usize {
    10 << 20
}
fn default_max_connections() -> usize {
    32
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_busy_timeout() -> Duration {
    Duration::from_secs(1)
}

impl WebhookConfig {
    /// Settings with the defaults for everything but the address and the files.
    pub fn new(
        listen: SocketAddr,
        cert_file: PathBuf,
        key_file: PathBuf,
        token_file: PathBuf,
    ) -> Self {
        WebhookConfig {
            listen,
            cert_file,
            key_file,
            token_file,
            max_body_bytes: default_max_body(),
            max_line_bytes: default_max_line(),
            max_connections: default_max_connections(),
            request_timeout: default_request_timeout(),
            busy_timeout: default_busy_timeout(),
        }
    }

    /// Checks the numbers (files are checked by [`Server::bind`], which reads them).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key, why: &str| {
            Err(Error::Invalid {
                key,
                why: why.to_owned(),
            })
        };
        if !(1024..=1 << 30).contains(&self.max_body_bytes) {
            return bad("max_body_bytes", "must be between 1 KiB and 1 GiB");
        }
        if self.max_line_bytes == 0 || self.max_line_bytes > self.max_body_bytes {
            return bad("max_line_bytes", "must be between 1 and max_body_bytes");
        }
        if !(1..=100_000).contains(&self.max_connections) {
            return bad("max_connections", "must be between 1 and 100000");
        }
        let sane = Duration::from_millis(10)..=Duration::from_secs(3600);
        if !sane.contains(&self.request_timeout) {
            return bad("request_timeout", "must be between 10ms and 1h");
        }
        if !sane.contains(&self.busy_timeout) {
            return bad("busy_timeout", "must be between 10ms and 1h");
        }
        Ok(())
    }
}

/// A setup problem (configuration, files, socket).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("webhook: `{key}`: {why}")]
    Invalid { key: &'static str, why: String },
    #[error("webhook: {path}: {why}")]
    File { path: PathBuf, why: String },
    #[error("webhook: TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("webhook: bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

counters!(
    /// Webhook counters, shown in stats.
    Stats,
    StatsSnapshot {
        /// Connections taken on.
        connections,
        /// Connections closed on accept because `max_connections` were busy.
        conn_refused,
        /// Failed TLS handshakes.
        tls_failed,
        /// Handshakes, heads or bodies cut by `request_timeout`.
        timeouts,
        /// HTTP requests seen.
        requests,
        /// Requests answered 202.
        requests_ok,
        /// Records delivered to the channel.
        accepted,
        /// Lines or elements rejected (invalid JSON, not an object, too long).
        rejected,
        /// Requests answered 401.
        unauthorised,
        /// Requests answered 413.
        too_large,
        /// Requests answered 415.
        unsupported,
        /// Requests answered 400.
        bad_request,
        /// Requests answered 503 because the channel stayed full (or closed).
        busy,
        /// Requests answered 404 or 405.
        not_found,
    }
);

struct Shared {
    tokens: Vec<Vec<u8>>,
    tx: Sender<Raw>,
    stats: Arc<Stats>,
    max_body: usize,
    max_line: usize,
    request_timeout: Duration,
    busy_timeout: Duration,
    seq: AtomicU64,
}

/// A bound, ready webhook; [`Server::run`] serves it.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    max_connections: usize,
}

/// Binds and serves until `shutdown` completes (see [`Server`] to learn the bound address).
pub async fn serve(
    cfg: &WebhookConfig,
    tx: Sender<Raw>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let server = Server::bind(cfg, tx).await?;
    let addr = server.local_addr().unwrap_or(cfg.listen);
    server
        .run(shutdown)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

impl Server {
    /// Validates `cfg`, reads the certificate, key and tokens, and binds the socket.
    pub async fn bind(cfg: &WebhookConfig, tx: Sender<Raw>) -> Result<Server, Error> {
        cfg.validate()?;
        let tokens = read_tokens(&cfg.token_file)?;
        let acceptor = tls_acceptor(&cfg.cert_file, &cfg.key_file)?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: cfg.listen,
                source,
            })?;
        Ok(Server {
            listener,
            acceptor,
            max_connections: cfg.max_connections,
            shared: Arc::new(Shared {
                tokens,
                tx,
                stats: Arc::new(Stats::default()),
                max_body: cfg.max_body_bytes,
                max_line: cfg.max_line_bytes,
                request_timeout: cfg.request_timeout,
                busy_timeout: cfg.busy_timeout,
                seq: AtomicU64::new(0),
            }),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The counters, shared with the running server.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets open requests finish
    /// (at most `request_timeout`) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let stats = self.shared.stats.clone();
        tokio::pin!(shutdown);
        loop {
            while tasks.try_join_next().is_some() {}
            let (tcp, peer) = tokio::select! {
                () = &mut shutdown => break,
                r = self.listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::debug!(error = %e, "webhook accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                bump(&stats.conn_refused);
                drop(tcp);
                continue;
            };
            bump(&stats.connections);
            let acceptor = self.acceptor.clone();
            let shared = self.shared.clone();
            let stop = stop_rx.clone();
            tasks.spawn(async move {
                connection(tcp, peer, acceptor, shared, stop).await;
                drop(permit);
            });
        }
        drop(self.listener);
        let _ = stop_tx.send(true);
        let grace = self.shared.request_timeout;
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.shutdown().await;
        Ok(())
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let stats = shared.stats.clone();
    let tls = match tokio::time::timeout(shared.request_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            bump(&stats.tls_failed);
            tracing::debug!(%peer, error = %e, "webhook TLS handshake failed");
            return;
        }
        Err(_) => {
            bump(&stats.timeouts);
            return;
        }
    };
    let svc_shared = shared.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = svc_shared.clone();
        async move { Ok::<_, Infallible>(handle(req, peer, &shared).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.request_timeout)
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(tls), svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            bump(&stats.timeouts);
        }
        tracing::debug!(%peer, error = %e, "webhook connection ended");
    }
}

type Resp = Response<Full<Bytes>>;

async fn handle(req: Request<Incoming>, peer: SocketAddr, shared: &Shared) -> Resp {
    let stats = &shared.stats;
    bump(&stats.requests);
    let path = req.uri().path();
    let ingest_path = path == "/" || path == "/v1/records";
    match (req.method(), path) {
        (&Method::GET | &Method::HEAD, "/health") => {
            reply(StatusCode::OK, &json!({"status": "ok"}))
        }
        (&Method::POST, _) if ingest_path => ingest(req, peer, shared).await,
        (_, "/health") => {
            bump(&stats.not_found);
            not_allowed("GET")
        }
        _ if ingest_path => {
            bump(&stats.not_found);
            not_allowed("POST")
        }
        _ => {
            bump(&stats.not_found);
            reply(StatusCode::NOT_FOUND, &json!({"error": "not found"}))
        }
    }
}

async fn ingest(req: Request<Incoming>, peer: SocketAddr, shared: &Shared) -> Resp {
    let stats = &shared.stats;
    match authorise(req.headers(), &shared.tokens) {
        Auth::Ok => {}
        how => {
            bump(&stats.unauthorised);
            let challenge = if how == Auth::Missing {
                "Bearer"
            } else {
                "Bearer error=\"invalid_token\""
            };
            let mut r = closing(reply(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "missing or wrong bearer token"}),
            ));
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            return r;
        }
    }
    if !json_content_type(req.headers().get(header::CONTENT_TYPE)) {
        bump(&stats.unsupported);
        return closing(reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &json!({"error": "content type must be JSON or NDJSON"}),
        ));
    }
    let gzip = match req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.as_bytes())
    {
        None => false,
        Some(v) if v.eq_ignore_ascii_case(b"identity") => false,
        Some(v) if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") => true,
        Some(_) => {
            bump(&stats.unsupported);
            return closing(reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &json!({"error": "content encoding must be gzip or none"}),
            ));
        }
    };
    let body = match read_body(req.into_body(), shared.max_body, shared.request_timeout).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return too_large(shared),
        Err(BodyError::Timeout) => {
            bump(&stats.timeouts);
            return closing(reply(
                StatusCode::REQUEST_TIMEOUT,
                &json!({"error": "request body too slow"}),
            ));
        }
        Err(BodyError::Broken) => {
            bump(&stats.bad_request);
            return closing(reply(
                StatusCode::BAD_REQUEST,
                &json!({"error": "request body could not be read"}),
            ));
        }
    };
    let body = if gzip {
        match gunzip(&body, shared.max_body) {
            Ok(b) => b,
            Err(BodyError::TooLarge) => return too_large(shared),
            Err(_) => {
                bump(&stats.bad_request);
                return reply(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "body is not valid gzip"}),
                );
            }
        }
    } else {
        body
    };
    let req_id = shared.seq.fetch_add(1, Ordering::Relaxed) + 1;
    deliver(&body, peer, req_id, shared).await
}

/// Parses the body item by item and sends each good record, stopping if the channel stays full.
async fn deliver(body: &[u8], peer: SocketAddr, req_id: u64, shared: &Shared) -> Resp {
    let stats = &shared.stats;
    let mut outcome = Outcome::default();
    for (pos, item) in Items::new(body, shared.max_line) {
        let value = match item {
            Ok(v) => v,
            Err(why) => {
                bump(&stats.rejected);
                outcome.reject(format!("{pos}: {why}"));
                continue;
            }
        };
        let raw = Raw {
            origin: format!("webhook {peer} req {req_id} {pos}"),
            value,
        };
        match shared.tx.send_timeout(raw, shared.busy_timeout).await {
            Ok(()) => {
                bump(&stats.accepted);
                outcome.accepted += 1;
            }
            Err(e) => {
                bump(&stats.busy);
                let why = match e {
                    SendTimeoutError::Timeout(_) => "busy: the analysis queue stayed full",
                    SendTimeoutError::Closed(_) => "shutting down",
                };
                let mut r = reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({
                        "accepted": outcome.accepted,
                        "rejected": outcome.rejected,
                        "errors": outcome.errors,
                        "error": why,
                        "resume_at": pos.number(),
                    }),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
        }
    }
    let summary = json!({
        "accepted": outcome.accepted,
        "rejected": outcome.rejected,
        "errors": outcome.errors,
    });
    if outcome.accepted == 0 && (outcome.rejected > 0 || body.trim_ascii().is_empty()) {
        bump(&stats.bad_request);
        let mut summary = summary;
        if let Some(o) = summary.as_object_mut() {
            o.insert("error".into(), json!("no JSON object records in the body"));
        }
        return reply(StatusCode::BAD_REQUEST, &summary);
    }
    bump(&stats.requests_ok);
    reply(StatusCode::ACCEPTED, &summary)
}

#[derive(Default)]
struct Outcome {
    accepted: u64,
    rejected: u64,
    errors: Vec<String>,
}

impl Outcome {
    fn reject(&mut self, why: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors
                .push(super::client::truncate(&why, MAX_ERROR_TEXT));
        }
    }
}

/// Where an item sits in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    /// 1-based NDJSON line.
    Line(usize),
    /// 1-based element of a top-level array.
    Element(usize),
    /// The body is one object.
    Whole,
}

impl Pos {
    fn number(self) -> usize {
        match self {
            Pos::Line(n) | Pos::Element(n) => n,
            Pos::Whole => 1,
        }
    }
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pos::Line(n) => write!(f, "line {n}"),
            Pos::Element(n) => write!(f, "element {n}"),
            Pos::Whole => f.write_str("body"),
        }
    }
}

/// The records of a body, parsed one at a time: an array's elements, a single object, or
/// NDJSON lines. A body that is not one valid JSON array or object is read as NDJSON.
enum Items<'a> {
    Array(std::iter::Enumerate<ArrayItems<'a>>),
    Single(Option<&'a RawValue>),
    Lines {
        lines: std::iter::Enumerate<LineSplit<'a>>,
        max_line: usize,
    },
}

type LineSplit<'a> = std::slice::Split<'a, u8, fn(&u8) -> bool>;

impl<'a> Items<'a> {
    fn new(body: &'a [u8], max_line: usize) -> Items<'a> {
        let t = body.trim_ascii();
        match t.first() {
            Some(b'[') => {
                if let Some(items) = ArrayItems::new(t) {
                    return Items::Array(items.enumerate());
                }
            }
            Some(b'{') => {
                if let Ok(v) = serde_json::from_slice::<&RawValue>(t) {
                    return Items::Single(Some(v));
                }
            }
            _ => {}
        }
        let newline: fn(&u8) -> bool = |b| *b == b'\n';
        Items::Lines {
            lines: body.split(newline).enumerate(),
            max_line,
        }
    }
}

impl Iterator for Items<'_> {
    type Item = (Pos, Result<Value, String>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Items::Array(it) => {
                let (i, raw) = it.next()?;
                Some((Pos::Element(i + 1), object(raw.get().as_bytes())))
            }
            Items::Single(one) => one
                .take()
                .map(|raw| (Pos::Whole, object(raw.get().as_bytes()))),
            Items::Lines { lines, max_line } => loop {
                let (i, line) = lines.next()?;
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                let pos = Pos::Line(i + 1);
                if line.len() > *max_line {
                    return Some((pos, Err(format!("longer than {max_line} bytes"))));
                }
                return Some((pos, object(line)));
            },
        }
    }
}

/// Parses one record, which must be a JSON object.
fn object(text: &[u8]) -> Result<Value, String> {
    match serde_json::from_slice::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("not a JSON object".to_owned()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

enum BodyError {
    TooLarge,
    Timeout,
    Broken,
}

/// Reads the body, stopping at `max` bytes or when `timeout` runs out.
async fn read_body(mut body: Incoming, max: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    use hyper::body::Body as _;
    if body.size_hint().lower() > max as u64 {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyError::Broken)?;
            if let Ok(data) = frame.into_data() {
                if buf.len().saturating_add(data.len()) > max {
                    return Err(BodyError::TooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
}

/// Decodes gzip (one or more members), refusing output over `max` bytes.
fn gunzip(data: &[u8], max: usize) -> Result<Bytes, BodyError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| BodyError::Broken)?;
    if out.len() > max {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(out))
}

fn too_large(shared: &Shared) -> Resp {
    bump(&shared.stats.too_large);
    closing(reply(
        StatusCode::PAYLOAD_TOO_LARGE,
        &json!({"error": format!("body larger than {} bytes", shared.max_body)}),
    ))
}

/// Accepts JSON-ish content types, and none at all.
fn json_content_type(v: Option<&HeaderValue>) -> bool {
    let Some(v) = v else { return true };
    let Ok(v) = v.to_str() else { return false };
    let mime = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        mime.as_str(),
        "application/json"
            | "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines"
            | "text/plain"
            | "application/octet-stream"
    ) || mime.ends_with("+json")
}

#[derive(Debug, PartialEq, Eq)]
enum Auth {
    Ok,
    Missing,
    Wrong,
}

fn authorise(headers: &hyper::HeaderMap, tokens: &[Vec<u8>]) -> Auth {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Auth::Missing;
    };
    let v = v.as_bytes();
    let Some(presented) = v
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case(b"bearer "))
        .and_then(|_| v.get(7..))
    else {
        return Auth::Wrong;
    };
    let presented = presented.trim_ascii();
    // No early exit: every configured token is compared.
    let mut hit = false;
    for t in tokens {
        hit |= ct_eq(presented, t);
    }
    if hit { Auth::Ok } else { Auth::Wrong }
}

/// Equality in time independent of where the bytes differ (the length is not hidden).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn read_tokens(path: &Path) -> Result<Vec<Vec<u8>>, Error> {
    let bad = |why: String| Error::File {
        path: path.to_owned(),
        why,
    };
    let data = super::read_capped(path, super::MAX_KEY_FILE).map_err(|e| bad(e.to_string()))?;
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "webhook token file is readable by others");
        }
    }
    let text = std::str::from_utf8(&data).map_err(|_| bad("not UTF-8".into()))?;
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.len() < MIN_TOKEN_LEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(format!(
                "line {}: a token is at least {MIN_TOKEN_LEN} printable ASCII characters",
                i + 1
            )));
        }
        if tokens.len() == MAX_TOKENS {
            return Err(bad(format!("more than {MAX_TOKENS} tokens")));
        }
        tokens.push(t.as_bytes().to_vec());
    }
    if tokens.is_empty() {
        return Err(bad("no token".into()));
    }
    Ok(tokens)
}

fn tls_acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, Error> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let certs = super::read_certs(cert_file).map_err(|e| Error::File {
        path: cert_file.to_owned(),
        why: e.to_string(),
    })?;
    let key_err = |why: String| Error::File {
        path: key_file.to_owned(),
        why,
    };
    let pem =
        super::read_capped(key_file, super::MAX_KEY_FILE).map_err(|e| key_err(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| key_err(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(super::tls_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn reply(status: StatusCode, body: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Marks a response as the last on its connection (used when the body was not read whole).
fn closing(mut r: Resp) -> Resp {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn not_allowed(allow: &'static str) -> Resp {
    let mut r = reply(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"error": "method not allowed"}),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
