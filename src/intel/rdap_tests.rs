//! Unit tests of `rdap`, compiled only as its `#[cfg(test)]` module (see rdap.rs).
//! Answer parsing on fixtures shaped like real registry answers, name checks, the cache, and a
//! loopback RDAP server (hyper on 127.0.0.1) with fault injection: 404, slow answers, 429 with
//! Retry-After, 5xx, garbage and oversized bodies, redirects, and 10,000 distinct names.

use super::*;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::HeaderName;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

// ---------------------------------------------------------------- fixtures

/// A .com answer as Verisign's RDAP server gives it (upper-case ldhName, nested entities,
/// notices, secureDNS, "last update of RDAP database").
fn verisign(ldh: &str, registered: &str) -> Value {
    json!({
        "objectClassName": "domain",
        "handle": "2336799_DOMAIN_COM-VRSN",
        "ldhName": ldh,
        "links": [{"value": format!("https://rdap.verisign.com/com/v1/domain/{ldh}"),
                   "rel": "self", "type": "application/rdap+json",
                   "href": format!("https://rdap.verisign.com/com/v1/domain/{ldh}")}],
        "status": ["client delete prohibited", "client transfer prohibited",
                   "client update prohibited"],
        "entities": [{
            "objectClassName": "entity", "handle": "376", "roles": ["registrar"],
            "publicIds": [{"type": "IANA Registrar ID", "identifier": "376"}],
            "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                     ["fn", {}, "text", "RESERVED-Internet Assigned Numbers Authority"]]],
            "entities": [{"objectClassName": "entity", "roles": ["abuse"],
                          "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                                   ["fn", {}, "text", ""],
                                                   ["tel", {"type": "voice"}, "uri", "tel:"],
                                                   ["email", {}, "text", ""]]]}]
        }],
        "events": [
            {"eventAction": "registration", "eventDate": registered},
            {"eventAction": "expiration", "eventDate": "2026-08-13T04:00:00Z"},
            {"eventAction": "last changed", "eventDate": "2025-08-14T07:01:39Z"},
            {"eventAction": "last update of RDAP database", "eventDate": "2025-11-20T10:12:01Z"}
        ],
        "secureDNS": {"delegationSigned": true, "dsData": [{"keyTag": 370, "algorithm": 13,
            "digestType": 2, "digest": "BE74359954660069D5C63D200C39F5603827D7DD02B56F120EE9F3A86764247C"}]},
        "nameservers": [{"objectClassName": "nameserver", "ldhName": "A.IANA-SERVERS.NET"},
                        {"objectClassName": "nameserver", "ldhName": "B.IANA-SERVERS.NET"}],
        "rdapConformance": ["rdap_level_0", "icann_rdap_technical_implementation_guide_0",
                            "icann_rdap_response_profile_0"],
        "notices": [
            {"title": "Terms of Use", "description": ["Service subject to Terms of Use."],
             "links": [{"href": "https://www.verisign.com/domain-names/registration-data-access-protocol/terms-service/index.xhtml",
                        "type": "text/html"}]},
            {"title": "Status Codes",
             "description": ["For more information on domain status codes, please visit https://icann.org/epp"]}
        ]
    })
}

/// A new-gTLD answer (lower-case names, fractional seconds, redacted registrant, remarks).
fn gtld(ldh: &str, registered: &str) -> Value {
    json!({
        "rdapConformance": ["rdap_level_0", "icann_rdap_response_profile_1",
                            "icann_rdap_technical_implementation_guide_1", "redacted"],
        "objectClassName": "domain",
        "handle": "5d7f1b2c8e0a4f6b9c3d2e1f0a9b8c7d-DONUTS",
        "ldhName": ldh,
        "unicodeName": ldh,
        "port43": "whois.nic.life",
        "status": ["client transfer prohibited", "server transfer prohibited", "add period"],
        "events": [
            {"eventAction": "registration", "eventDate": registered},
            {"eventAction": "expiration", "eventDate": "2026-11-20T08:41:07.213Z"},
            {"eventAction": "last changed", "eventDate": "2025-11-20T08:41:09.002Z"},
            {"eventAction": "last update of RDAP database", "eventDate": "2025-11-24T01:02:03.000Z"}
        ],
        "entities": [
            {"objectClassName": "entity", "handle": "1068", "roles": ["registrar"],
             "publicIds": [{"type": "IANA Registrar ID", "identifier": "1068"}],
             "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "NameCheap, Inc."]]]},
            {"objectClassName": "entity", "roles": ["registrant"],
             "remarks": [{"title": "REDACTED FOR PRIVACY", "type": "object redacted due to authorization"}]}
        ],
        "redacted": [{"name": {"type": "Registry Registrant ID"}, "method": "removal"}],
        "notices": [{"title": "Terms of Use", "description": ["By querying our RDAP service you agree..."]}]
    })
}

/// A ccTLD answer with a numeric-offset date and no nameservers.
fn cctld(ldh: &str, registered: &str) -> Value {
    json!({
        "objectClassName": "domain",
        "handle": "DOM000000000001-FRNIC",
        "ldhName": ldh,
        "status": ["active"],
        "events": [
            {"eventAction": "registration", "eventDate": registered},
            {"eventAction": "last changed", "eventDate": "2024-01-09T10:00:00+01:00"}
        ],
        "entities": [{"objectClassName": "entity", "handle": "AFNIC", "roles": ["registrar"]}],
        "notices": [{"title": "Terms of service", "description": ["Legal notice"]}],
        "rdapConformance": ["rdap_level_0"]
    })
}

/// A ccTLD answer that gives no registration date, only the last change.
fn no_registration(ldh: &str) -> Value {
    json!({
        "objectClassName": "domain", "ldhName": ldh, "handle": ldh,
        "events": [{"eventAction": "last changed", "eventDate": "2018-03-12T21:44:25+01:00"}],
        "notices": [{"title": "Terms", "description": ["..."]}],
        "rdapConformance": ["rdap_level_0"]
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

// ---------------------------------------------------------------- parsing

#[test]
fn reads_registration_day_from_registry_answers() {
    let com = verisign("EXAMPLE.COM", "1995-08-14T04:00:00Z");
    assert_eq!(parse_answer(&bytes(&com), "example.com"), Ok(Some(9356)));
    let life = gtld("latovafineart.life", "2025-11-20T08:41:07.213Z");
    assert_eq!(
        parse_answer(&bytes(&life), "latovafineart.life"),
        Ok(Some(20412))
    );
    // 23:30 at UTC-1 is the next day in UTC.
    let fr = cctld("nic.fr", "2004-02-18T23:30:00-01:00");
    assert_eq!(parse_answer(&bytes(&fr), "nic.fr"), Ok(Some(12467)));
    assert_eq!(
        parse_answer(&bytes(&no_registration("denic.de")), "denic.de"),
        Ok(None)
    );
}

#[test]
fn earliest_registration_and_later_reregistration() {
    let body = json!({"events": [
        {"eventAction": "registration", "eventDate": "2001-06-01T00:00:00Z"},
        {"eventAction": "registration", "eventDate": "2004-02-18T00:00:00Z"}]});
    assert_eq!(parse_answer(&bytes(&body), "a.com"), Ok(Some(11474)));
    let body = json!({"events": [
        {"eventAction": "registration", "eventDate": "2001-06-01T00:00:00Z"},
        {"eventAction": "reregistration", "eventDate": "2025-11-20T00:00:00Z"}]});
    assert_eq!(parse_answer(&bytes(&body), "a.com"), Ok(Some(20412)));
    // One unreadable registration does not hide a readable one.
    let body = json!({"events": [
        {"eventAction": "registration", "eventDate": "soon"},
        {"eventAction": "registration", "eventDate": "2023-12-31"}]});
    assert_eq!(parse_answer(&bytes(&body), "a.com"), Ok(Some(19722)));
}

#[test]
fn garbage_answers_are_refused_not_panicked_on() {
    let cases: Vec<(Vec<u8>, BadAnswer)> = vec![
        (b"<html>busy</html>".to_vec(), BadAnswer::NotJson),
        (b"".to_vec(), BadAnswer::NotJson),
        (b"[1,2]".to_vec(), BadAnswer::NotJson),
        (vec![0xff, 0xfe, b'{'], BadAnswer::NotJson),
        ("[".repeat(100_000).into_bytes(), BadAnswer::NotJson),
        (bytes(&json!({"ldhName": "a.com"})), BadAnswer::NoEvents),
        (bytes(&json!({"events": {"x": 1}})), BadAnswer::NoEvents),
        (
            bytes(&json!({"objectClassName": "entity", "events": []})),
            BadAnswer::NotDomain,
        ),
        (
            bytes(&json!({"ldhName": "b.com", "events": []})),
            BadAnswer::OtherName,
        ),
        (
            bytes(&json!({"ldhName": 7, "events": []})),
            BadAnswer::OtherName,
        ),
        (
            bytes(&json!({"events": [{"eventAction": "registration", "eventDate": "2024-13-40"}]})),
            BadAnswer::BadDate,
        ),
        (
            bytes(
                &json!({"events": [{"eventAction": "registration", "eventDate": 1_700_000_000}]}),
            ),
            BadAnswer::BadDate,
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            parse_answer(&body, "a.com"),
            Err(want),
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(40)])
        );
    }
    // Odd event elements are skipped.
    let body = json!({"ldhName": "A.COM.", "events": [null, 3, "x", {"eventAction": 5},
        {"eventAction": "registration", "eventDate": "2023-12-31T23:59:59Z"}]});
    assert_eq!(parse_answer(&bytes(&body), "a.com"), Ok(Some(19722)));
}

#[test]
fn event_dates() {
    assert_eq!(parse_day("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_day("2024-03-14T09:12:00Z"), Some(19796));
    assert_eq!(parse_day("2024-03-14T09:12:00.123456Z"), Some(19796));
    assert_eq!(parse_day("2024-03-14T09:12:00"), Some(19796));
    assert_eq!(parse_day("2024-03-14"), Some(19796));
    assert_eq!(parse_day("2024-03-14T00:30:00+01:00"), Some(19795));
    for bad in [
        "",
        "2024",
        "14/03/2024",
        "2024-03-14X",
        "1969-12-31T00:00:00Z",
        "2024-02-30",
        "é2024-03-1",
    ] {
        assert_eq!(parse_day(bad), None, "{bad}");
    }
}

#[test]
fn names_are_checked_and_lower_cased() {
    assert_eq!(ldh_name("example.com").as_deref(), Some("example.com"));
    assert_eq!(ldh_name("Example.COM.").as_deref(), Some("example.com"));
    assert_eq!(
        ldh_name("xn--bcher-kva.de").as_deref(),
        Some("xn--bcher-kva.de")
    );
    let long = format!("{}.com", vec!["a".repeat(63); 4].join("."));
    for bad in [
        "",
        ".",
        "com",
        "a..com",
        "-a.com",
        "a-.com",
        "a_b.com",
        "a b.com",
        "a/b.com",
        "ä.com",
        "1.2.3.4",
        "a.com%2f",
        "..",
        long.as_str(),
        &format!("{}.com", "a".repeat(64)),
    ] {
        assert!(ldh_name(bad).is_none(), "{bad}");
    }
    assert_eq!(encode("a-b.c_d~e"), "a-b.c_d~e");
    assert_eq!(encode("a/b?c"), "a%2Fb%3Fc");
}

#[test]
fn retry_after_forms() {
    let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let h = |v: &str| {
        let mut m = HeaderMap::new();
        m.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        m
    };
    assert_eq!(retry_after(&h("2"), now), Duration::from_secs(2));
    assert_eq!(retry_after(&h("0"), now), Duration::from_secs(1));
    assert_eq!(retry_after(&h("99999999999"), now), MAX_RETRY_AFTER);
    assert_eq!(
        retry_after(&h("Wed, 21 Oct 2015 07:29:00 GMT"), now),
        Duration::from_secs(60)
    );
    assert_eq!(
        retry_after(&h("Wed, 21 Oct 2015 07:00:00 GMT"), now),
        Duration::from_secs(1)
    );
    assert_eq!(retry_after(&h("soon"), now), DEFAULT_RETRY_AFTER);
    assert_eq!(retry_after(&HeaderMap::new(), now), DEFAULT_RETRY_AFTER);
}

// ---------------------------------------------------------------- cache and config

#[test]
fn cache_evicts_least_recently_used_at_cap() {
    let mut c = Cache::new(100, 10);
    let t0 = Instant::now();
    c.insert("keep.com".to_owned(), Answer::Known(1), None);
    for i in 0..10_000 {
        c.insert(format!("n{i}.com"), Answer::Unknown, None);
        assert!(c.map.len() <= 100);
        assert_eq!(c.get("keep.com", t0), Some(Answer::Known(1)), "at {i}");
    }
    assert!(c.evictions >= 9_900, "{}", c.evictions);
    assert!(c.get("n0.com", t0).is_none());
    assert_eq!(c.get("n9999.com", t0), Some(Answer::Unknown));
}

#[test]
fn cache_entries_expire() {
    let mut c = Cache::new(10, 10);
    let t0 = Instant::now();
    c.insert(
        "a.com".to_owned(),
        Answer::Failed,
        Some(t0 + Duration::from_secs(60)),
    );
    assert_eq!(c.get("a.com", t0), Some(Answer::Failed));
    assert_eq!(c.get("a.com", t0 + Duration::from_secs(61)), None);
    assert!(c.map.is_empty());
}

#[test]
fn start_refuses_bad_settings() {
    let ok = RdapConfig::new("https://rdap.org/");
    assert!(ok.validate().is_ok());
    assert_eq!(ok.validate().unwrap().1, "");
    let base = |u: &str| RdapConfig::new(u).validate();
    assert_eq!(base("http://127.0.0.1:9/rdap//").unwrap().1, "/rdap");
    for bad in [
        "http://rdap.org",
        "ftp://rdap.org",
        "https://u:p@rdap.org",
        "https://rdap.org/?x=1",
        "rdap.org",
        "",
    ] {
        assert!(Rdap::start(RdapConfig::new(bad)).is_err(), "{bad}");
    }
    let with = |f: &dyn Fn(&mut RdapConfig)| {
        let mut c = RdapConfig::new("https://rdap.org");
        f(&mut c);
        c.validate().is_err()
    };
    assert!(with(&|c| c.rate_per_sec = 0.0));
    assert!(with(&|c| c.rate_per_sec = f64::NAN));
    assert!(with(&|c| c.rate_per_sec = 1e-300));
    assert!(with(&|c| c.timeout = Duration::MAX));
    assert!(with(&|c| c.max_concurrent = 0));
    assert!(with(&|c| c.cache_cap = 0));
    assert!(with(&|c| c.queue_cap = 0));
    assert!(with(&|c| c.retries = MAX_RETRIES + 1));
    assert!(with(&|c| c.timeout = Duration::ZERO));
}

// ---------------------------------------------------------------- loopback server

/// A body of `left` bytes sent in 64 KiB chunks without a declared length.
struct Chunked {
    left: usize,
}

impl Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b' '; n])))))
    }
}

type Reply = Response<Either<Full<Bytes>, Chunked>>;

/// Requests the server saw: path -> arrival times.
#[derive(Default)]
struct Seen(Mutex<HashMap<String, Vec<Instant>>>);

impl Seen {
    /// Records a request; returns how many were made to the path, this one included.
    fn record(&self, path: &str) -> usize {
        let mut m = self.0.lock().unwrap();
        let v = m.entry(path.to_owned()).or_default();
        v.push(Instant::now());
        v.len()
    }

    fn times(&self, path: &str) -> Vec<Instant> {
        self.0
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    fn count(&self, path: &str) -> usize {
        self.times(path).len()
    }
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

fn reply(status: u16, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Either::Left(Full::new(body.into())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/rdap+json"),
    );
    r
}

fn header(mut r: Reply, name: HeaderName, value: &str) -> Reply {
    r.headers_mut()
        .insert(name, HeaderValue::from_str(value).unwrap());
    r
}

/// The fixture registry: `/rdap/domain/{name}` (and `/registry/domain/{name}` behind a
/// redirect).
async fn route(path: String, addr: SocketAddr, seen: Arc<Seen>) -> Reply {
    let n = seen.record(&path);
    let name = path.rsplit('/').next().unwrap_or("").to_owned();
    if path.starts_with("/registry/") {
        return reply(200, bytes(&gtld(&name, "2023-12-31T12:00:00Z")));
    }
    match name.as_str() {
        "example.com" => reply(200, bytes(&verisign("EXAMPLE.COM", "1995-08-14T04:00:00Z"))),
        "latovafineart.life" => reply(
            200,
            bytes(&gtld("latovafineart.life", "2025-11-20T08:41:07.213Z")),
        ),
        "nic.fr" => reply(200, bytes(&cctld("nic.fr", "2004-02-18T23:30:00-01:00"))),
        "denic.de" => reply(200, bytes(&no_registration("denic.de"))),
        "slow.com" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            reply(200, bytes(&verisign("SLOW.COM", "2001-06-01T00:00:00Z")))
        }
        "busy.com" if n == 1 => header(reply(429, "{}"), RETRY_AFTER, "1"),
        "busy.com" => reply(200, bytes(&verisign("BUSY.COM", "2001-06-01T00:00:00Z"))),
        "flaky.com" if n == 1 => reply(500, "oops"),
        "flaky.com" => reply(200, bytes(&verisign("FLAKY.COM", "2001-06-01T00:00:00Z"))),
        "down.com" => reply(503, "maintenance"),
        "forbidden.com" => reply(403, "{}"),
        "html.com" => {
            let mut r = reply(200, "<html><body>Service unavailable</body></html>");
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("text/html"),
            );
            r
        }
        "noevents.com" => reply(
            200,
            bytes(&json!({"objectClassName": "domain", "ldhName": "noevents.com"})),
        ),
        "baddate.com" => reply(
            200,
            bytes(
                &json!({"objectClassName": "domain", "ldhName": "baddate.com",
                "events": [{"eventAction": "registration", "eventDate": "yesterday"}]}),
            ),
        ),
        "wrongname.com" => reply(200, bytes(&verisign("OTHER.COM", "2001-06-01T00:00:00Z"))),
        "huge.com" => reply(200, vec![b' '; 5 << 20]),
        "huge-chunked.com" => Response::new(Either::Right(Chunked { left: 5 << 20 })),
        "moved.com" => header(
            reply(302, ""),
            LOCATION,
            &format!("http://{addr}/registry/domain/moved.com"),
        ),
        "loop.com" => header(reply(301, ""), LOCATION, "/rdap/domain/loop.com"),
        "insecure.com" => header(
            reply(302, ""),
            LOCATION,
            "http://rdap.example.net/domain/insecure.com",
        ),
        _ => reply(
            404,
            bytes(&json!({"errorCode": 404, "title": "Not Found",
                "description": ["The requested object was not found."],
                "rdapConformance": ["rdap_level_0"]})),
        ),
    }
}

/// Starts the fixture registry on its own thread; it lives until the test binary exits.
fn server() -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let path = req.uri().path().to_owned();
                        let seen = seen.clone();
                        async move { Ok::<_, Infallible>(route(path, addr, seen).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
    });
    Server { addr, seen }
}

impl Server {
    fn config(&self) -> RdapConfig {
        RdapConfig {
            timeout: Duration::from_secs(3),
            rate_per_sec: 200.0,
            backoff: Duration::from_millis(20),
            ..RdapConfig::new(format!("http://{}/rdap/", self.addr))
        }
    }

    fn hits(&self, name: &str) -> usize {
        self.seen.count(&format!("/rdap/domain/{name}"))
    }
}

/// Asks until the answer is no longer pending (at most 20 s).
fn settle(r: &Rdap, name: &str) -> Lookup {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let l = r.registration(name);
        if l != Lookup::Pending || Instant::now() > deadline {
            return l;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn counter(r: &Rdap, name: &str) -> u64 {
    r.counters()[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}

// ---------------------------------------------------------------- end to end

#[test]
fn good_answers_go_pending_then_known() {
    let s = server();
    let r = Rdap::start(s.config()).unwrap();
    for (name, day) in [
        ("example.com", 9356),
        ("latovafineart.life", 20412),
        ("nic.fr", 12467),
    ] {
        assert_eq!(r.registration(name), Lookup::Pending, "{name}");
        assert_eq!(settle(&r, name), Lookup::Known(day), "{name}");
    }
    // Cached: another spelling of the same name is answered without a request.
    assert_eq!(r.registration("EXAMPLE.com."), Lookup::Known(9356));
    assert_eq!(s.hits("example.com"), 1);
    assert_eq!(counter(&r, "requests"), 3);
    assert_eq!(counter(&r, "known"), 3);
    assert_eq!(counter(&r, "cache_size"), 3);
    assert_eq!(counter(&r, "pending"), 0);
    assert_eq!(counter(&r, "in_flight"), 0);
    assert!(counter(&r, "hits") >= 4);
}

#[test]
fn lookups_are_deduplicated() {
    let s = server();
    let r = Rdap::start(s.config()).unwrap();
    for _ in 0..200 {
        let _ = r.registration("example.com");
    }
    assert_eq!(settle(&r, "example.com"), Lookup::Known(9356));
    assert_eq!(s.hits("example.com"), 1);
    assert_eq!(counter(&r, "queued"), 1);
}

#[test]
fn not_found_and_no_date_are_unknown() {
    let s = server();
    let r = Rdap::start(s.config()).unwrap();
    assert_eq!(settle(&r, "missing.com"), Lookup::Unknown);
    assert_eq!(settle(&r, "denic.de"), Lookup::Unknown);
    assert_eq!(r.registration("missing.com"), Lookup::Unknown);
    assert_eq!(s.hits("missing.com"), 1);
    assert_eq!(counter(&r, "not_found"), 1);
    assert_eq!(counter(&r, "no_date"), 1);
    assert_eq!(counter(&r, "bad_answers"), 0);
    assert_eq!(counter(&r, "failed"), 0);
}

#[test]
fn invalid_names_never_reach_the_network() {
    let s = server();
    let r = Rdap::start(s.config()).unwrap();
    for bad in [
        "localhost",
        "1.2.3.4",
        "-x.com",
        "a b.com",
        "../../x.com",
        "ünï.com",
    ] {
        assert_eq!(r.registration(bad), Lookup::Unknown, "{bad}");
    }
    assert_eq!(counter(&r, "invalid_names"), 6);
    assert_eq!(counter(&r, "queued"), 0);
    assert_eq!(counter(&r, "requests"), 0);
}

#[test]
fn slow_answer_times_out_retries_then_fails() {
    let s = server();
    let r = Rdap::start(RdapConfig {
        timeout: Duration::from_millis(300),
        retries: 1,
        ..s.config()
    })
    .unwrap();
    assert_eq!(settle(&r, "slow.com"), Lookup::Failed);
    assert_eq!(counter(&r, "timeouts"), 2);
    assert_eq!(counter(&r, "retries"), 1);
    assert_eq!(counter(&r, "failed"), 1);
    assert_eq!(s.hits("slow.com"), 2);
}

#[test]
fn rate_limited_request_waits_for_retry_after() {
    let s = server();
    let r = Rdap::start(s.config()).unwrap();
    assert_eq!(settle(&r, "busy.com"), Lookup::Known(11474));
    assert_eq!(counter(&r, "rate_limited"), 1);
    let t = s.seen.times("/rdap/domain/busy.com");
    assert_eq!(t.len(), 2);
    assert!(
        t[1] - t[0] >= Duration::from_millis(900),
        "{:?}",
        t[1] - t[0]
    );
}

#[test]
fn server_error_is_retried() {
    let s = server();
    let r = Rdap::start(s.config()).unwrap();
    assert_eq!(settle(&r, "flaky.com"), Lookup::Known(11474));
    assert_eq!(counter(&r, "server_errors"), 1);
    assert_eq!(counter(&r, "retries"), 1);
    // Other statuses are not retried.
    assert_eq!(settle(&r, "forbidden.com"), Lookup::Failed);
    assert_eq!(counter(&r, "http_errors"), 1);
    assert_eq!(s.hits("forbidden.com"), 1);
}

#[test]
fn failure_is_cached_briefly_then_retried() {
    let s = server();
    let r = Rdap::start(RdapConfig {
        retries: 2,
        failure_ttl: Duration::from_secs(2),
        ..s.config()
    })
    .unwrap();
    assert_eq!(settle(&r, "down.com"), Lookup::Failed);
    assert_eq!(counter(&r, "server_errors"), 3);
    assert_eq!(s.hits("down.com"), 3);
    assert_eq!(r.registration("down.com"), Lookup::Failed);
    assert_eq!(s.hits("down.com"), 3);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(r.registration("down.com"), Lookup::Pending);
    assert_eq!(settle(&r, "down.com"), Lookup::Failed);
    assert_eq!(s.hits("down.com"), 6);
}

#[test]
fn garbage_answers_are_counted_and_fail() {
    let s = server();
    let r = Rdap::start(s.config()).unwrap();
    let names = [
        "html.com",
        "noevents.com",
        "baddate.com",
        "wrongname.com",
        "huge.com",
        "huge-chunked.com",
    ];
    for name in names {
        assert_eq!(settle(&r, name), Lookup::Failed, "{name}");
        assert_eq!(s.hits(name), 1, "{name} is not retried");
    }
    assert_eq!(counter(&r, "bad_answers"), 6);
    assert_eq!(counter(&r, "too_large"), 2);
    assert_eq!(counter(&r, "known"), 0);
    // The client still works after abandoning big bodies.
    assert_eq!(settle(&r, "example.com"), Lookup::Known(9356));
}

#[test]
fn redirects_are_followed_within_limits() {
    let s = server();
    let r = Rdap::start(s.config()).unwrap();
    assert_eq!(settle(&r, "moved.com"), Lookup::Known(19722));
    assert_eq!(s.seen.count("/registry/domain/moved.com"), 1);
    assert_eq!(counter(&r, "redirects"), 1);
    assert_eq!(settle(&r, "loop.com"), Lookup::Failed);
    assert_eq!(s.hits("loop.com"), 1 + MAX_REDIRECTS);
    // Plain http away from loopback is refused.
    assert_eq!(settle(&r, "insecure.com"), Lookup::Failed);
    assert_eq!(counter(&r, "bad_redirects"), 2);
}

#[test]
fn queue_and_cache_caps_hold_under_10000_names() {
    let s = server();
    let r = Rdap::start(RdapConfig {
        queue_cap: 64,
        cache_cap: 100,
        rate_per_sec: 1000.0,
        ..s.config()
    })
    .unwrap();
    let names: Vec<String> = (0..10_000).map(|i| format!("n{i}.com")).collect();
    for n in &names {
        assert_eq!(r.registration(n), Lookup::Pending);
        assert!(counter(&r, "pending") <= 64);
    }
    assert_eq!(counter(&r, "queued") + counter(&r, "dropped"), 10_000);
    assert!(counter(&r, "dropped") > 0);
    // Keep asking until more answers came back than the cache holds.
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter(&r, "evictions") == 0 && Instant::now() < deadline {
        for n in &names {
            let _ = r.registration(n);
        }
        let c = r.counters();
        assert!(c["pending"].as_u64().unwrap() <= 64);
        assert!(c["cache_size"].as_u64().unwrap() <= 100);
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = r.counters();
    assert!(c["evictions"].as_u64().unwrap() > 0, "{c}");
    assert!(c["cache_size"].as_u64().unwrap() <= 100, "{c}");
    assert!(c["not_found"].as_u64().unwrap() > 100, "{c}");
}

#[test]
fn drop_does_not_wait_for_slow_lookups() {
    let s = server();
    let r = Rdap::start(RdapConfig {
        timeout: Duration::from_secs(30),
        ..s.config()
    })
    .unwrap();
    assert_eq!(r.registration("slow.com"), Lookup::Pending);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.hits("slow.com") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = Instant::now();
    drop(r);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
