//! Unit tests of `poller`, compiled only as its `#[cfg(test)]` module (see poller.rs).
//! A mock Management Activity API on 127.0.0.1 (token, subscriptions/start, paged
//! subscriptions/content, blobs) with fault injection: delivery once, retries, token refresh,
//! restarts from a checkpoint; plus window, time, form and config checks.

use super::*;
use crate::ingest::testutil::{Handler, MockRequest, MockResponse, TempDir, mock_server};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// 2025-06-01T12:00:00Z.
const NOW: u64 = 1_748_779_200_000_000;
const MIN: u64 = 60_000_000;
const HOUR: u64 = 60 * MIN;
const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const APP: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const SECRET: &str = "s3cr&t =+/x~";

struct Blob {
    ct: &'static str,
    id: String,
    created_us: u64,
    body: String,
    uri: Option<String>,
}

/// A Management Activity API as documented, with fault injection.
#[derive(Default)]
struct Api {
    blobs: Vec<Blob>,
    tokens_issued: u32,
    valid_token: Option<String>,
    started: Vec<String>,
    /// Answers (status, Retry-After) given before the real one, per route.
    faults: HashMap<&'static str, VecDeque<(u16, Option<&'static str>)>>,
    /// Fail fetches of this blob with 500, this many times.
    blob_fail_after: Option<(String, u32)>,
    /// The next API call with a valid token gets 401 and the token stops being valid.
    expire_token: bool,
    blob_fetches: HashMap<String, u32>,
    /// Listing calls made through a NextPageUri.
    next_pages: u32,
    /// Protocol violations the mock saw; every test expects none.
    violations: Vec<String>,
}

impl Api {
    fn blob(&mut self, ct: &'static str, id: &str, created_us: u64, n: usize) {
        let records: Vec<Value> = (1..=n)
            .map(|i| json!({"Id": format!("{id}-{i}"), "Workload": ct, "Operation": "Op"}))
            .collect();
        self.blobs.push(Blob {
            ct,
            id: id.to_owned(),
            created_us,
            body: Value::Array(records).to_string(),
            uri: None,
        });
    }

    fn fault(&mut self, route: &'static str, status: u16, retry_after: Option<&'static str>) {
        self.faults
            .entry(route)
            .or_default()
            .push_back((status, retry_after));
    }

    fn handle(&mut self, req: MockRequest) -> MockResponse {
        let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
        let q: HashMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
        let host = req.header("host").unwrap_or("").to_owned();
        if path == format!("/{TENANT}/oauth2/v2.0/token") {
            if let Some(f) = self.take_fault("token") {
                return f;
            }
            return self.token(&req);
        }
        let api = format!("/api/v1.0/{TENANT}/activity/feed/");
        let Some(rest) = path.strip_prefix(&api) else {
            self.violations.push(format!("unknown path {path}"));
            return MockResponse::json(404, json!({}));
        };
        let bearer = self.valid_token.as_ref().map(|t| format!("Bearer {t}"));
        if bearer.is_none() || req.header("authorization") != bearer.as_deref() {
            return MockResponse::json(
                401,
                json!({"error": {"code": "AF50000", "message": "invalid token"}}),
            );
        }
        if self.expire_token {
            self.expire_token = false;
            self.valid_token = None;
            return MockResponse::json(
                401,
                json!({"error": {"code": "AF50000", "message": "token expired"}}),
            );
        }
        let ct = q.get("contentType").copied().unwrap_or("").to_owned();
        match (req.method.as_str(), rest) {
            ("POST", "subscriptions/start") => {
                if let Some(f) = self.take_fault("start") {
                    return f;
                }
                if self.started.contains(&ct) {
                    return MockResponse::json(
                        400,
                        json!({"error": {"code": "AF20024",
                        "message": "The subscription is already enabled. No property change."}}),
                    );
                }
                self.started.push(ct.clone());
                MockResponse::json(
                    200,
                    json!({"contentType": ct, "status": "enabled", "webhook": null}),
                )
            }
            ("GET", "subscriptions/content") => {
                if let Some(f) = self.take_fault("list") {
                    return f;
                }
                if q.contains_key("nextPage") {
                    self.next_pages += 1;
                }
                self.list(&ct, &q, &host, path, query)
            }
            ("GET", r) if r.starts_with("audit/") => {
                if let Some(f) = self.take_fault("blob") {
                    return f;
                }
                let id = &r["audit/".len()..];
                if let Some((fail, n)) = &mut self.blob_fail_after
                    && fail == id
                    && *n > 0
                {
                    *n -= 1;
                    return MockResponse::json(500, json!({}));
                }
                *self.blob_fetches.entry(id.to_owned()).or_default() += 1;
                match self.blobs.iter().find(|b| b.id == id) {
                    Some(b) => MockResponse::json(
                        200,
                        serde_json::from_str(&b.body).unwrap_or(json!(b.body)),
                    ),
                    None => MockResponse::json(404, json!({"error": {"code": "AF20051"}})),
                }
            }
            _ => {
                self.violations
                    .push(format!("unexpected {} {rest}", req.method));
                MockResponse::json(404, json!({}))
            }
        }
    }

    fn take_fault(&mut self, route: &str) -> Option<MockResponse> {
        let (status, retry) = self.faults.get_mut(route)?.pop_front()?;
        let r = MockResponse::json(status, json!({"error": {"code": "fault"}}));
        Some(match retry {
            Some(s) => r.with_header("retry-after", s),
            None => r,
        })
    }

    fn token(&mut self, req: &MockRequest) -> MockResponse {
        if req.method != Method::POST
            || req.header("content-type") != Some("application/x-www-form-urlencoded")
        {
            self.violations
                .push("token request is not a form POST".into());
        }
        let form: HashMap<String, String> = String::from_utf8_lossy(&req.body)
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (form_decode(k), form_decode(v)))
            .collect();
        let want = [
            ("grant_type", "client_credentials"),
            ("client_id", APP),
            ("client_secret", SECRET),
            ("scope", "https://manage.office.com/.default"),
        ];
        if want
            .iter()
            .any(|(k, v)| form.get(*k).map(String::as_str) != Some(*v))
        {
            return MockResponse::json(
                401,
                json!({"error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided."}),
            );
        }
        self.tokens_issued += 1;
        let token = format!("tok-{}", self.tokens_issued);
        self.valid_token = Some(token.clone());
        MockResponse::json(
            200,
            json!({"token_type": "Bearer", "expires_in": 3599,
            "ext_expires_in": 3599, "access_token": token}),
        )
    }

    fn list(
        &mut self,
        ct: &str,
        q: &HashMap<&str, &str>,
        host: &str,
        path: &str,
        query: &str,
    ) -> MockResponse {
        if !self.started.iter().any(|s| s == ct) {
            return MockResponse::json(
                400,
                json!({"error": {"code": "AF20022",
                "message": "No subscription found for the specified content type"}}),
            );
        }
        let (Some(start), Some(end)) = (
            q.get("startTime").and_then(|s| parse_time(s)),
            q.get("endTime").and_then(|s| parse_time(s)),
        ) else {
            self.violations.push(format!("bad window in {query}"));
            return MockResponse::json(400, json!({}));
        };
        if end <= start || end - start > MAX_WINDOW_US || start + MAX_AGE_US < NOW {
            self.violations
                .push(format!("window out of bounds: {query}"));
        }
        let mut listed: Vec<&Blob> = self
            .blobs
            .iter()
            .filter(|b| b.ct == ct && (start..end).contains(&b.created_us))
            .collect();
        listed.sort_by_key(|b| b.created_us);
        let page: usize = q.get("nextPage").and_then(|p| p.parse().ok()).unwrap_or(0);
        let items: Vec<Value> = listed
            .iter()
            .skip(page)
            .take(1)
            .map(|b| {
                json!({
                    "contentType": b.ct,
                    "contentId": b.id,
                    "contentUri": b.uri.clone().unwrap_or_else(||
                        format!("http://{host}/api/v1.0/{TENANT}/activity/feed/audit/{}", b.id)),
                    "contentCreated": format!("{}.000Z", format_time(b.created_us)),
                    "contentExpiration": format!("{}.000Z", format_time(b.created_us + 7 * 24 * HOUR)),
                })
            })
            .collect();
        let r = MockResponse::json(200, Value::Array(items));
        if listed.len() > page + 1 {
            let base: Vec<&str> = query
                .split('&')
                .filter(|p| !p.starts_with("nextPage="))
                .collect();
            let next = format!(
                "http://{host}{path}?{}&nextPage={}",
                base.join("&"),
                page + 1
            );
            return r.with_header("nextpageuri", &next);
        }
        r
    }
}

/// Decodes a form field as a server would (`+` is a space, `%XX` a byte).
fn form_decode(s: &str) -> String {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap());
            }
            c => out.push(c),
        }
    }
    String::from_utf8(out).unwrap()
}

struct Harness {
    api: Arc<Mutex<Api>>,
    addr: SocketAddr,
    dir: TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if !std::thread::panicking()
            && let Ok(api) = self.api.lock()
        {
            assert!(api.violations.is_empty(), "{:?}", api.violations);
        }
    }
}

impl Harness {
    async fn start(setup: impl FnOnce(&mut Api)) -> Harness {
        let mut api = Api::default();
        setup(&mut api);
        let api = Arc::new(Mutex::new(api));
        let shared = api.clone();
        let handler: Handler = Arc::new(move |req| shared.lock().unwrap().handle(req));
        let addr = mock_server(handler).await;
        Harness {
            api,
            addr,
            dir: TempDir::new("poller"),
        }
    }

    fn config(&self, types: &[&str]) -> PollerConfig {
        let secret = self.dir.write("secret", format!("{SECRET}\n").as_bytes());
        let mut c = PollerConfig::new(TENANT, APP, secret);
        c.content_types = types.iter().map(|s| s.to_string()).collect();
        c.login_base = format!("http://127.0.0.1:{}", self.addr.port());
        c.api_base = format!("http://127.0.0.1:{}/", self.addr.port());
        c.backoff_base = Duration::from_millis(10);
        c.backoff_max = Duration::from_millis(40);
        c.max_attempts = 4;
        c.request_timeout = Duration::from_secs(5);
        c
    }

    fn api(&self) -> std::sync::MutexGuard<'_, Api> {
        self.api.lock().unwrap()
    }
}

fn drain(rx: &mut mpsc::Receiver<Raw>) -> Vec<String> {
    let mut ids = Vec::new();
    while let Ok(r) = rx.try_recv() {
        ids.push(r.value["Id"].as_str().unwrap_or("?").to_owned());
    }
    ids
}

/// Blob "A" (3 records, 2 h ago) and "B" (2 records, 20 min ago) of Audit.Exchange: one
/// window, two listing pages.
fn two_blobs(api: &mut Api) {
    api.blob("Audit.Exchange", "A", NOW - 2 * HOUR, 3);
    api.blob("Audit.Exchange", "B", NOW - 20 * MIN, 2);
}

const AB: [&str; 5] = ["A-1", "A-2", "A-3", "B-1", "B-2"];

#[tokio::test]
async fn full_flow_delivers_every_record_once() {
    let h = Harness::start(|api| {
        two_blobs(api);
        api.blob("Audit.AzureActiveDirectory", "C", NOW - 3 * HOUR, 1);
        api.blob("Audit.Exchange", "old", NOW - 30 * HOUR, 1);
    })
    .await;
    let (tx, mut rx) = mpsc::channel(100);
    let cfg = h.config(&["Audit.Exchange", "Audit.AzureActiveDirectory"]);
    let mut p = Poller::new(cfg, None, tx).unwrap();
    let report = p.poll_once_at(NOW).await.unwrap();
    assert_eq!(report.content.len(), 2);
    let ex = &report.content[0];
    assert_eq!(
        (ex.blobs, ex.records, ex.caught_up, ex.error.as_deref()),
        (2, 5, true, None)
    );
    assert_eq!(report.content[1].records, 1);
    let mut got = Vec::new();
    while let Ok(r) = rx.try_recv() {
        got.push(r);
    }
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.value["Id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["A-1", "A-2", "A-3", "B-1", "B-2", "C-1"]);
    assert_eq!(got[0].origin, "poller Audit.Exchange A #1");
    assert_eq!(got[4].origin, "poller Audit.Exchange B #2");
    // A later poll re-lists the overlap (B) but delivers nothing twice; a new blob arrives.
    h.api().blob("Audit.Exchange", "D", NOW + 2 * MIN, 1);
    let report = p.poll_once_at(NOW + 5 * MIN).await.unwrap();
    assert_eq!(report.content[0].records, 1);
    assert_eq!(drain(&mut rx), ["D-1"]);
    let s = p.stats().snapshot();
    assert!(s.blobs_skipped >= 1, "{s:?}");
    assert_eq!((s.blobs, s.records, s.pages), (4, 7, 7));
    let api = h.api();
    assert!(api.next_pages >= 1, "NextPageUri was followed");
    assert_eq!(api.tokens_issued, 1, "the token is cached");
    assert_eq!(
        api.started,
        ["Audit.Exchange", "Audit.AzureActiveDirectory"]
    );
    assert!(
        api.blob_fetches.values().all(|n| *n == 1),
        "{:?}",
        api.blob_fetches
    );
    assert!(
        !api.blob_fetches.contains_key("old"),
        "older than the lookback"
    );
    assert!(api.violations.is_empty(), "{:?}", api.violations);
}

#[tokio::test]
async fn subscription_already_enabled_is_fine() {
    let h = Harness::start(|api| {
        two_blobs(api);
        api.started.push("Audit.Exchange".into());
    })
    .await;
    let (tx, mut rx) = mpsc::channel(100);
    let mut p = Poller::new(h.config(&["Audit.Exchange"]), None, tx).unwrap();
    let report = p.poll_once_at(NOW).await.unwrap();
    assert_eq!(report.content[0].error, None);
    assert_eq!(drain(&mut rx), AB);
}

#[tokio::test]
async fn throttled_429_honours_retry_after() {
    let h = Harness::start(|api| {
        two_blobs(api);
        api.fault("list", 429, Some("1"));
    })
    .await;
    let (tx, mut rx) = mpsc::channel(100);
    let mut p = Poller::new(h.config(&["Audit.Exchange"]), None, tx).unwrap();
    let started = std::time::Instant::now();
    p.poll_once_at(NOW).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(drain(&mut rx), AB);
    let s = p.stats().snapshot();
    assert_eq!((s.throttled, s.retries), (1, 1));
}

#[tokio::test]
async fn server_errors_are_retried() {
    let h = Harness::start(|api| {
        two_blobs(api);
        api.fault("blob", 500, None);
        api.fault("blob", 503, None);
    })
    .await;
    let (tx, mut rx) = mpsc::channel(100);
    let mut p = Poller::new(h.config(&["Audit.Exchange"]), None, tx).unwrap();
    let report = p.poll_once_at(NOW).await.unwrap();
    assert_eq!(report.content[0].error, None);
    assert_eq!(drain(&mut rx), AB);
    let s = p.stats().snapshot();
    assert_eq!((s.server_errors, s.retries), (2, 2));
}

#[tokio::test]
async fn expired_token_is_refreshed_once() {
    let h = Harness::start(|api| {
        two_blobs(api);
    })
    .await;
    let (tx, mut rx) = mpsc::channel(100);
    let mut p = Poller::new(h.config(&["Audit.Exchange"]), None, tx).unwrap();
    p.poll_once_at(NOW - HOUR).await.unwrap();
    assert_eq!(drain(&mut rx), ["A-1", "A-2", "A-3"]);
    h.api().expire_token = true;
    let report = p.poll_once_at(NOW).await.unwrap();
    assert_eq!(report.content[0].error, None);
    assert_eq!(drain(&mut rx), ["B-1", "B-2"]);
    assert_eq!(h.api().tokens_issued, 2);
    assert_eq!(p.stats().snapshot().token_refreshes, 1);
}

#[tokio::test]
async fn restart_from_checkpoint_after_blob_cap() {
    let h = Harness::start(two_blobs).await;
    let (tx, mut rx) = mpsc::channel(100);
    let mut cfg = h.config(&["Audit.Exchange"]);
    cfg.max_blobs_per_poll = 1;
    let mut p = Poller::new(cfg.clone(), None, tx).unwrap();
    let report = p.poll_once_at(NOW).await.unwrap();
    assert!(!report.content[0].caught_up);
    assert_eq!(drain(&mut rx), ["A-1", "A-2", "A-3"]);
    assert_eq!(p.stats().snapshot().blob_cap_hits, 1);
    let saved = serde_json::to_string(&p.checkpoint()).unwrap();
    drop(p);
    let (tx, mut rx) = mpsc::channel(100);
    let restored: Checkpoint = serde_json::from_str(&saved).unwrap();
    let mut p = Poller::new(cfg, Some(restored), tx).unwrap();
    let report = p.poll_once_at(NOW + MIN).await.unwrap();
    assert!(report.content[0].caught_up);
    assert_eq!(drain(&mut rx), ["B-1", "B-2"]);
    p.poll_once_at(NOW + 2 * MIN).await.unwrap();
    assert!(drain(&mut rx).is_empty());
    assert!(h.api().blob_fetches.values().all(|n| *n == 1));
}

#[tokio::test]
async fn restart_after_failure_midway_delivers_the_rest() {
    let h = Harness::start(|api| {
        two_blobs(api);
    })
    .await;
    let (tx, mut rx) = mpsc::channel(100);
    let cfg = h.config(&["Audit.Exchange"]);
    let mut p = Poller::new(cfg.clone(), None, tx).unwrap();
    // A is listed first and goes through; B then fails on every try (max_attempts = 4).
    {
        let mut api = h.api();
        api.blob_fail_after = Some(("B".into(), 4));
    }
    let report = p.poll_once_at(NOW).await.unwrap();
    let err = report.content[0].error.clone().unwrap_or_default();
    assert!(err.contains("after 4 tries"), "{err}");
    assert_eq!(drain(&mut rx), ["A-1", "A-2", "A-3"]);
    let saved = p.checkpoint();
    let cursor = &saved.content["Audit.Exchange"];
    assert!(cursor.done_until_us < NOW, "the failed window is not done");
    drop(p);
    let (tx, mut rx) = mpsc::channel(100);
    let mut p = Poller::new(cfg, Some(saved), tx).unwrap();
    let report = p.poll_once_at(NOW + MIN).await.unwrap();
    assert_eq!(report.content[0].error, None);
    assert_eq!(drain(&mut rx), ["B-1", "B-2"]);
    assert_eq!(h.api().blob_fetches["A"], 1, "A is never fetched twice");
}

#[tokio::test]
async fn bad_blobs_are_skipped_and_foreign_urls_refused() {
    let h = Harness::start(|api| {
        two_blobs(api);
        api.blob("Audit.Exchange", "notarray", NOW - 3 * HOUR, 0);
        api.blobs.last_mut().unwrap().body = "{\"not\":\"an array\"}".into();
        api.blob("Audit.Exchange", "mixed", NOW - 4 * HOUR, 0);
        api.blobs.last_mut().unwrap().body = r#"[{"Id":"M-1"}, 42, "x"]"#.into();
        api.blob("Audit.Exchange", "elsewhere", NOW - 90 * MIN, 1);
        api.blobs.last_mut().unwrap().uri =
            Some("http://127.0.0.2:9/api/v1.0/x/activity/feed/audit/elsewhere".into());
    })
    .await;
    let (tx, mut rx) = mpsc::channel(100);
    let mut p = Poller::new(h.config(&["Audit.Exchange"]), None, tx).unwrap();
    let report = p.poll_once_at(NOW).await.unwrap();
    assert!(
        report.content[0].caught_up,
        "bad blobs must not stall the feed"
    );
    assert_eq!(drain(&mut rx), ["M-1", "A-1", "A-2", "A-3", "B-1", "B-2"]);
    let s = p.stats().snapshot();
    assert_eq!(
        (s.blobs_failed, s.foreign_urls, s.records_rejected),
        (2, 1, 2)
    );
    assert_eq!(s.fetch_errors, 0, "nothing was sent to the foreign host");
    // Skipped blobs are remembered: the next poll does not try them again.
    p.poll_once_at(NOW + MIN).await.unwrap();
    assert_eq!(h.api().blob_fetches["notarray"], 1);
}

#[tokio::test]
async fn refused_token_is_reported_not_retried() {
    let h = Harness::start(two_blobs).await;
    let (tx, mut rx) = mpsc::channel(100);
    let wrong = h.dir.write("wrong", b"not-the-secret");
    let mut cfg = h.config(&["Audit.Exchange"]);
    cfg.client_secret_file = wrong;
    let mut p = Poller::new(cfg, None, tx).unwrap();
    let report = p.poll_once_at(NOW).await.unwrap();
    let err = report.content[0].error.clone().unwrap_or_default();
    assert!(
        err.contains("token endpoint refused") && err.contains("AADSTS7000215"),
        "{err}"
    );
    assert!(!err.contains("not-the-secret"));
    assert!(drain(&mut rx).is_empty());
    let s = p.stats().snapshot();
    assert_eq!((s.token_requests, s.retries), (1, 0));
}

#[tokio::test]
async fn delivered_ids_are_bounded() {
    let h = Harness::start(|api| {
        two_blobs(api);
        api.blob("Audit.Exchange", "C", NOW - 10 * MIN, 1);
    })
    .await;
    let (tx, mut rx) = mpsc::channel(100);
    let mut cfg = h.config(&["Audit.Exchange"]);
    cfg.max_delivered_ids = 1;
    let mut p = Poller::new(cfg, None, tx).unwrap();
    p.poll_once_at(NOW).await.unwrap();
    assert_eq!(drain(&mut rx), ["A-1", "A-2", "A-3", "B-1", "B-2", "C-1"]);
    let cp = p.checkpoint();
    let kept: Vec<_> = cp.content["Audit.Exchange"].delivered.keys().collect();
    assert_eq!(kept, ["C"], "the newest id is kept");
    assert_eq!(p.stats().snapshot().delivered_evicted, 2);
}

#[tokio::test]
async fn closed_channel_ends_the_poll() {
    let h = Harness::start(two_blobs).await;
    let (tx, rx) = mpsc::channel(100);
    drop(rx);
    let mut p = Poller::new(h.config(&["Audit.Exchange"]), None, tx).unwrap();
    assert!(matches!(
        p.poll_once_at(NOW).await,
        Err(Error::ChannelClosed)
    ));
    assert!(
        p.checkpoint().content["Audit.Exchange"]
            .delivered
            .is_empty()
    );
}

#[test]
fn windows_respect_api_limits() {
    let overlap = 15 * MIN;
    // Fresh start 24 h back: one full window up to now.
    let w = window(NOW - 24 * HOUR, overlap, NOW).unwrap();
    assert_eq!((w.start, w.end), (NOW - 24 * HOUR - overlap, NOW - overlap));
    assert!(!w.reaches_now && !w.gap);
    // Caught up: the window re-reads the overlap and reaches now.
    let w = window(NOW - MIN, overlap, NOW).unwrap();
    assert_eq!(
        (w.start, w.end, w.reaches_now),
        (NOW - MIN - overlap, NOW, true)
    );
    // Ten days behind: the start moves up to the 7-day limit, and that is flagged.
    let w = window(NOW - 240 * HOUR, overlap, NOW).unwrap();
    assert!(w.gap);
    assert_eq!(w.start, NOW - MAX_AGE_US + START_MARGIN_US);
    assert_eq!(w.end - w.start, MAX_WINDOW_US);
    // Whole seconds; nothing to list when the start is not before now.
    let w = window(NOW - HOUR + 123_456, 0, NOW + 999_999).unwrap();
    assert_eq!((w.start % 1_000_000, w.end), (0, NOW));
    assert_eq!(window(NOW + HOUR, overlap, NOW), None);
    assert_eq!(window(0, overlap, 0), None);
}

#[test]
fn times_and_forms() {
    assert_eq!(format_time(NOW), "2025-06-01T12:00:00");
    assert_eq!(parse_time("2025-06-01T12:00:00.000Z"), Some(NOW));
    assert_eq!(parse_time("2025-06-01T12:00:00"), Some(NOW));
    assert_eq!(parse_time("2025-06-01T14:00:00+02:00"), Some(NOW));
    assert_eq!(parse_time("yesterday"), None);
    assert_eq!(
        form_encode(&[("a b", "x&y=z/~"), ("k", "")]),
        "a%20b=x%26y%3Dz%2F~&k="
    );
    assert_eq!(form_decode(&form_encode(&[("s", SECRET)])[2..]), SECRET);
}

#[test]
fn retry_after_and_backoff() {
    let mut h = hyper::HeaderMap::new();
    assert_eq!(retry_after(&h, Duration::from_secs(60)), None);
    h.insert(header::RETRY_AFTER, HeaderValue::from_static(" 7 "));
    assert_eq!(
        retry_after(&h, Duration::from_secs(60)),
        Some(Duration::from_secs(7))
    );
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("86400"));
    assert_eq!(
        retry_after(&h, Duration::from_secs(60)),
        Some(Duration::from_secs(60))
    );
    h.insert(
        header::RETRY_AFTER,
        HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    assert_eq!(retry_after(&h, Duration::from_secs(60)), None);

    let dir = TempDir::new("poller-backoff");
    let secret = dir.write("s", b"x");
    let (tx, _rx) = mpsc::channel(1);
    let mut p = Poller::new(PollerConfig::new(TENANT, APP, secret), None, tx).unwrap();
    for attempt in 1..40 {
        let d = p.backoff(attempt);
        let full = Duration::from_secs(1u64 << (attempt - 1).min(6)).min(Duration::from_secs(60));
        assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
    }
}

#[test]
fn files_are_read_at_start() {
    let dir = TempDir::new("poller-files");
    let pki = crate::ingest::testutil::test_pki(&dir);
    let secret = dir.write("secret", b"  s3cret \n");
    let empty = dir.write("empty", b"\n");
    let (tx, _rx) = mpsc::channel(1);
    let mut cfg = PollerConfig::new(TENANT, APP, secret);
    cfg.ca_file = Some(pki.ca_file.clone());
    let p = Poller::new(cfg.clone(), None, tx.clone()).unwrap();
    assert_eq!(p.secret, "s3cret");
    cfg.ca_file = Some(pki.key_file.clone());
    assert!(matches!(
        Poller::new(cfg.clone(), None, tx.clone()),
        Err(Error::File { .. })
    ));
    cfg.ca_file = None;
    cfg.client_secret_file = empty;
    assert!(matches!(
        Poller::new(cfg.clone(), None, tx.clone()),
        Err(Error::File { .. })
    ));
    cfg.client_secret_file = dir.path().join("missing");
    assert!(matches!(
        Poller::new(cfg, None, tx),
        Err(Error::File { .. })
    ));
}

#[test]
fn checkpoint_is_trimmed_to_the_config() {
    let dir = TempDir::new("poller-cp");
    let secret = dir.write("s", b"x");
    let (tx, _rx) = mpsc::channel(1);
    let mut cfg = PollerConfig::new(TENANT, APP, secret);
    cfg.content_types = vec!["Audit.Exchange".into()];
    cfg.max_delivered_ids = 2;
    let cursor = Cursor {
        done_until_us: NOW,
        delivered: (0..5).map(|i| (format!("id{i}"), NOW + i)).collect(),
    };
    let cp = Checkpoint {
        content: [
            ("Audit.Exchange".to_owned(), cursor.clone()),
            ("DLP.All".to_owned(), cursor),
        ]
        .into_iter()
        .collect(),
    };
    let p = Poller::new(cfg, Some(cp), tx).unwrap();
    let cp = p.checkpoint();
    assert_eq!(cp.content.keys().collect::<Vec<_>>(), ["Audit.Exchange"]);
    let kept: Vec<_> = cp.content["Audit.Exchange"].delivered.keys().collect();
    assert_eq!(kept, ["id3", "id4"]);
    assert_eq!(p.stats().snapshot().delivered_evicted, 3);
}

#[test]
fn config_is_checked() {
    let ok = PollerConfig::new(TENANT, APP, "/x".into());
    assert!(ok.validate().is_ok());
    let check = |f: &dyn Fn(&mut PollerConfig)| {
        let mut c = ok.clone();
        f(&mut c);
        match c.validate() {
            Err(Error::Invalid { key, .. }) => key,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        check(&|c| c.api_base = "http://manage.office.com".into()),
        "api_base"
    );
    assert_eq!(
        check(&|c| c.login_base = "https://login.example/x".into()),
        "login_base"
    );
    assert_eq!(
        check(&|c| c.content_types = vec!["Audit.Nope".into()]),
        "content_types"
    );
    assert_eq!(
        check(&|c| c.content_types = vec!["DLP.All".into(), "DLP.All".into()]),
        "content_types"
    );
    assert_eq!(check(&|c| c.tenant = "a/b".into()), "tenant");
    assert_eq!(
        check(&|c| c.initial_lookback = Duration::from_secs(8 * 86400)),
        "initial_lookback"
    );
    let c: PollerConfig = serde_json::from_value(json!({
        "tenant": "contoso.onmicrosoft.com",
        "client_id": APP,
        "client_secret_file": "/etc/crosswire/o365.secret",
        "overlap": "5m",
    }))
    .unwrap();
    assert_eq!(c.overlap, Duration::from_secs(300));
    assert_eq!(
        c.content_types,
        [
            "Audit.AzureActiveDirectory",
            "Audit.Exchange",
            "Audit.General"
        ]
    );
    assert!(c.validate().is_ok());
    assert!(
        serde_json::from_value::<PollerConfig>(json!({
            "tenant": "t", "client_id": "c", "client_secret_file": "s", "client_secret": "inline",
        }))
        .is_err()
    );
}
