//! Unit tests of `webhook`, compiled only as its `#[cfg(test)]` module (see webhook.rs).
//! A real server on 127.0.0.1 with a test CA, driven by the rustls client of `client` and by raw
//! TLS streams: record formats, auth, limits, backpressure, slow clients, concurrency.

use super::*;
use crate::ingest::client::{Client, Target};
use crate::ingest::testutil::{TempDir, TestPki, test_pki, tls_connect};
use hyper::header::HeaderName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const TOKEN: &str = "test-token-0123456789";
const TOKEN2: &str = "second-token-abcdefghij";

struct Harness {
    addr: SocketAddr,
    rx: mpsc::Receiver<Raw>,
    stats: Arc<Stats>,
    pki: TestPki,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: TempDir,
}

impl Harness {
    async fn start(capacity: usize, tune: impl FnOnce(&mut WebhookConfig)) -> Harness {
        let dir = TempDir::new("webhook");
        let pki = test_pki(&dir);
        let tokens = dir.write(
            "tokens",
            format!("# senders\n{TOKEN}\n\n{TOKEN2}\n").as_bytes(),
        );
        let mut cfg = WebhookConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            pki.cert_file.clone(),
            pki.key_file.clone(),
            tokens,
        );
        tune(&mut cfg);
        let (tx, rx) = mpsc::channel(capacity);
        let server = Server::bind(&cfg, tx).await.unwrap();
        let addr = server.local_addr().unwrap();
        let stats = server.stats();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Harness {
            addr,
            rx,
            stats,
            pki,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    fn client(&self) -> Client {
        Client::new(std::slice::from_ref(&self.pki.ca), Duration::from_secs(10)).unwrap()
    }

    async fn post(
        &self,
        token: Option<&str>,
        body: impl Into<Bytes>,
        extra: &[(&'static str, &'static str)],
    ) -> (StatusCode, Value, hyper::HeaderMap) {
        let mut client = self.client();
        post_with(
            &mut client,
            self.addr,
            "/v1/records",
            token,
            body.into(),
            extra,
        )
        .await
    }

    fn drain(&mut self) -> Vec<Raw> {
        let mut out = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            out.push(r);
        }
        out
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let done = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        assert!(
            matches!(done, Ok(Ok(Ok(())))),
            "server did not stop cleanly"
        );
    }
}

async fn post_with(
    client: &mut Client,
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: Bytes,
    extra: &[(&'static str, &'static str)],
) -> (StatusCode, Value, hyper::HeaderMap) {
    let target = Target::parse(&format!("https://127.0.0.1:{}{path}", addr.port())).unwrap();
    let mut headers = vec![(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    )];
    if let Some(t) = token {
        headers.push((
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        ));
    }
    for (k, v) in extra {
        headers.retain(|(h, _)| h.as_str() != *k);
        headers.push((HeaderName::from_static(k), HeaderValue::from_static(v)));
    }
    let r = client
        .request(Method::POST, &target, &headers, body, 1 << 20)
        .await
        .unwrap();
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v, r.headers)
}

fn records(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| format!("{{\"Id\":\"{tag}-{i}\",\"Operation\":\"UserLoggedIn\"}}\n"))
        .collect()
}

#[tokio::test]
async fn ndjson_records_are_delivered_in_order() {
    let mut h = Harness::start(100, |_| {}).await;
    let (status, v, _) = h.post(Some(TOKEN), records(3, "a"), &[]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(v, json!({"accepted": 3, "rejected": 0, "errors": []}));
    let got = h.drain();
    assert_eq!(got.len(), 3);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.value["Id"], json!(format!("a-{i}")));
        assert!(r.origin.starts_with("webhook 127.0.0.1:"), "{}", r.origin);
        assert!(
            r.origin.ends_with(&format!("line {}", i + 1)),
            "{}",
            r.origin
        );
    }
    // The second token of the file works too, and "/" is the same endpoint.
    let mut c = h.client();
    let (status, v, _) = post_with(
        &mut c,
        h.addr,
        "/",
        Some(TOKEN2),
        Bytes::from("{\"x\":1}"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(v["accepted"], 1);
    assert_eq!(h.drain()[0].origin.rsplit(' ').next(), Some("body"));
    let s = h.stats.snapshot();
    assert_eq!((s.accepted, s.requests_ok, s.rejected), (4, 2, 0));
    h.stop().await;
}

#[tokio::test]
async fn json_array_and_pretty_object() {
    let mut h = Harness::start(100, |_| {}).await;
    let body = r#"[{"Id":"x1"}, {"Id":"x2"}, 7, {"Id":"x3"}]"#;
    let (status, v, _) = h
        .post(Some(TOKEN), body, &[("content-type", "application/json")])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(v["accepted"], 3);
    assert_eq!(v["errors"], json!(["element 3: not a JSON object"]));
    let got = h.drain();
    let ids: Vec<_> = got.iter().map(|r| r.value["Id"].clone()).collect();
    assert_eq!(ids, [json!("x1"), json!("x2"), json!("x3")]);
    assert!(got[1].origin.ends_with("element 2"));
    // One object spread over several lines is one record, not broken lines.
    let (status, v, _) = h
        .post(
            Some(TOKEN),
            "{\n  \"Id\": \"p\",\n  \"n\": [1, 2]\n}\n",
            &[],
        )
        .await;
    assert_eq!(
        (status, v["accepted"].clone()),
        (StatusCode::ACCEPTED, json!(1))
    );
    assert_eq!(h.drain()[0].value, json!({"Id": "p", "n": [1, 2]}));
    h.stop().await;
}

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let mut h = Harness::start(100, |_| {}).await;
    let (status, _, headers) = h.post(None, records(1, "n"), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let (status, _, headers) = h
        .post(Some("test-token-0123456788"), records(1, "w"), &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (status, _, _) = h.post(Some("short"), records(1, "s"), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = h
        .post(
            None,
            records(1, "b"),
            &[("authorization", "Basic dGVzdDp0ZXN0")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(h.drain().is_empty());
    assert_eq!(h.stats.snapshot().unauthorised, 4);
    h.stop().await;
}

#[tokio::test]
async fn oversize_body_is_413() {
    let mut h = Harness::start(100, |c| {
        c.max_body_bytes = 1024;
        c.max_line_bytes = 512;
    })
    .await;
    let big = records(100, "big");
    assert!(big.len() > 1024);
    let (status, _, _) = h.post(Some(TOKEN), big.clone(), &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked (no Content-Length): reading stops at the limit.
    let mut tls = tls_connect(h.addr, &h.pki.ca).await;
    let mut req = format!(
        "POST /v1/records HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    for _ in 0..4 {
        req.push_str(&format!("{:x}\r\n{}\r\n", 600, "x".repeat(600)));
    }
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_string(&mut resp)).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    // Gzip that inflates past the limit is refused as well.
    let bomb = gzip(&vec![b' '; 10_000]);
    let (status, _, _) = h
        .post(Some(TOKEN), bomb, &[("content-encoding", "gzip")])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(h.drain().is_empty());
    assert_eq!(h.stats.snapshot().too_large, 3);
    h.stop().await;
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn gzip_body_is_decoded() {
    let mut h = Harness::start(100, |_| {}).await;
    let (status, v, _) = h
        .post(
            Some(TOKEN),
            gzip(records(5, "z").as_bytes()),
            &[("content-encoding", "gzip")],
        )
        .await;
    assert_eq!(
        (status, v["accepted"].clone()),
        (StatusCode::ACCEPTED, json!(5))
    );
    assert_eq!(h.drain().len(), 5);
    let (status, _, _) = h
        .post(Some(TOKEN), "not gzip", &[("content-encoding", "gzip")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = h
        .post(Some(TOKEN), records(1, "br"), &[("content-encoding", "br")])
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    h.stop().await;
}

#[tokio::test]
async fn bad_lines_are_rejected_one_by_one() {
    let mut h = Harness::start(100, |c| c.max_line_bytes = 100).await;
    let long = format!("{{\"pad\":\"{}\"}}", "p".repeat(200));
    let body = format!(
        "{{\"Id\":\"g1\"}}\r\n{{\"Id\": broken\n[1,2]\n\n{long}\n{{\"Id\":\"g2\"}}\n\"str\""
    );
    let (status, v, _) = h.post(Some(TOKEN), body, &[]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["rejected"], 4);
    let errors: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(errors[0].starts_with("line 2: invalid JSON"), "{errors:?}");
    assert_eq!(errors[1], "line 3: not a JSON object");
    assert_eq!(errors[2], "line 5: longer than 100 bytes");
    assert_eq!(errors[3], "line 7: not a JSON object");
    let ids: Vec<_> = h
        .drain()
        .into_iter()
        .map(|r| r.value["Id"].clone())
        .collect();
    assert_eq!(ids, [json!("g1"), json!("g2")]);
    assert_eq!(h.stats.snapshot().rejected, 4);
    h.stop().await;
}

#[tokio::test]
async fn error_list_is_capped() {
    let mut h = Harness::start(100, |_| {}).await;
    let mut body = "nope\n".repeat(30);
    body.push_str("{\"ok\":true}\n");
    let (status, v, _) = h.post(Some(TOKEN), body, &[]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(v["rejected"], 30);
    assert_eq!(v["errors"].as_array().unwrap().len(), MAX_ERRORS);
    assert_eq!(h.drain().len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn not_json_is_400_or_415() {
    let mut h = Harness::start(100, |_| {}).await;
    let (status, v, _) = h.post(Some(TOKEN), "hello\nworld\n", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["rejected"], 2);
    let (status, _, _) = h.post(Some(TOKEN), "", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = h
        .post(Some(TOKEN), "<html/>", &[("content-type", "text/html")])
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // An empty array is valid and simply holds nothing.
    let (status, v, _) = h.post(Some(TOKEN), "[]", &[]).await;
    assert_eq!(
        (status, v["accepted"].clone()),
        (StatusCode::ACCEPTED, json!(0))
    );
    assert!(h.drain().is_empty());
    let s = h.stats.snapshot();
    assert_eq!((s.bad_request, s.unsupported), (2, 1));
    h.stop().await;
}

#[tokio::test]
async fn full_channel_is_503_with_counts() {
    let mut h = Harness::start(1, |c| c.busy_timeout = Duration::from_millis(100)).await;
    let body = "{\"Id\":1}\nbad\n{\"Id\":2}\n{\"Id\":3}\n";
    let (status, v, headers) = h.post(Some(TOKEN), body, &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["rejected"], 1);
    assert_eq!(v["resume_at"], 3, "line 3 was the first not taken: {v}");
    let got = h.drain();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value["Id"], 1);
    assert_eq!(h.stats.snapshot().busy, 1);
    // With room again, the rest goes through.
    let (status, v, _) = h.post(Some(TOKEN), "{\"Id\":2}", &[]).await;
    assert_eq!(
        (status, v["accepted"].clone()),
        (StatusCode::ACCEPTED, json!(1))
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_all_arrive() {
    let mut h = Harness::start(16, |_| {}).await;
    let mut rx = std::mem::replace(&mut h.rx, mpsc::channel(1).1);
    let collector = tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        while seen.len() < 400 {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(r)) => {
                    seen.insert(r.value["Id"].as_str().unwrap().to_owned());
                }
                _ => break,
            }
        }
        seen
    });
    let mut posts = JoinSet::new();
    for t in 0..8 {
        let addr = h.addr;
        let mut client = h.client();
        posts.spawn(async move {
            let tag = format!("c{t}");
            post_with(
                &mut client,
                addr,
                "/v1/records",
                Some(TOKEN),
                records(50, &tag).into(),
                &[],
            )
            .await
        });
    }
    while let Some(r) = posts.join_next().await {
        let (status, v, _) = r.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(v["accepted"], 50);
    }
    let seen = collector.await.unwrap();
    assert_eq!(seen.len(), 400);
    assert_eq!(h.stats.snapshot().accepted, 400);
    h.stop().await;
}

#[tokio::test]
async fn slow_clients_are_cut() {
    let h = Harness::start(100, |c| c.request_timeout = Duration::from_millis(300)).await;
    // A head that never ends.
    let mut tls = tls_connect(h.addr, &h.pki.ca).await;
    tls.write_all(b"POST /v1/records HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let cut = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    assert!(cut.is_ok(), "connection with a stalled head was not closed");
    // A body that never ends.
    let mut tls = tls_connect(h.addr, &h.pki.ca).await;
    let head = format!(
        "POST /v1/records HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 100\r\n\r\n{{\"Id\":"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut resp = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_string(&mut resp)).await;
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    // An idle connection that never sends anything.
    let mut tls = tls_connect(h.addr, &h.pki.ca).await;
    let cut = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    assert!(cut.is_ok(), "idle connection was not closed");
    assert!(h.stats.snapshot().timeouts >= 2);
    h.stop().await;
}

#[tokio::test]
async fn connection_limit_refuses_extra_connections() {
    let h = Harness::start(100, |c| c.max_connections = 1).await;
    let _held = tls_connect(h.addr, &h.pki.ca).await;
    let mut client = h.client();
    let target = Target::parse(&format!("https://127.0.0.1:{}/health", h.addr.port())).unwrap();
    let r = client
        .request(Method::GET, &target, &[], Bytes::new(), 1024)
        .await;
    assert!(r.is_err(), "second connection was served");
    assert_eq!(h.stats.snapshot().conn_refused, 1);
    drop(_held);
    h.stop().await;
}

#[tokio::test]
async fn health_and_routing() {
    let h = Harness::start(100, |_| {}).await;
    let mut client = h.client();
    let url = |p: &str| Target::parse(&format!("https://127.0.0.1:{}{p}", h.addr.port())).unwrap();
    let r = client
        .request(Method::GET, &url("/health"), &[], Bytes::new(), 1024)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let r = client
        .request(Method::GET, &url("/v1/records"), &[], Bytes::new(), 1024)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers[header::ALLOW], "POST");
    let (status, _, _) = post_with(
        &mut client,
        h.addr,
        "/v2/other",
        Some(TOKEN),
        Bytes::from("{}"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.stop().await;
}

#[tokio::test]
async fn bad_setup_is_refused() {
    let dir = TempDir::new("webhook-bad");
    let pki = test_pki(&dir);
    let short = dir.write("short", b"tooshort\n");
    let empty = dir.write("empty", b"# nothing\n\n");
    let good = dir.write("good", TOKEN.as_bytes());
    let (tx, _rx) = mpsc::channel(1);
    let cfg = |tokens: &Path, key: &Path| {
        WebhookConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            pki.cert_file.clone(),
            key.to_owned(),
            tokens.to_owned(),
        )
    };
    for (tokens, key) in [
        (&short, &pki.key_file),
        (&empty, &pki.key_file),
        (&good, &pki.cert_file),
        (&dir.path().join("missing"), &pki.key_file),
    ] {
        let r = Server::bind(&cfg(tokens, key), tx.clone()).await;
        assert!(matches!(r, Err(Error::File { .. })), "{tokens:?} {key:?}");
    }
    let mut c = cfg(&good, &pki.key_file);
    c.max_line_bytes = c.max_body_bytes + 1;
    assert!(matches!(
        Server::bind(&c, tx.clone()).await,
        Err(Error::Invalid {
            key: "max_line_bytes",
            ..
        })
    ));
}

#[test]
fn config_from_toml_like_json_with_defaults() {
    let c: WebhookConfig = serde_json::from_value(json!({
        "listen": "0.0.0.0:8443",
        "cert_file": "/etc/crosswire/webhook.crt",
        "key_file": "/etc/crosswire/webhook.key",
        "token_file": "/etc/crosswire/webhook.tokens",
        "request_timeout": "2m",
    }))
    .unwrap();
    assert_eq!(c.request_timeout, Duration::from_secs(120));
    assert_eq!(c.busy_timeout, Duration::from_secs(1));
    assert_eq!(c.max_body_bytes, 16 << 20);
    assert!(c.validate().is_ok());
    let unknown = serde_json::from_value::<WebhookConfig>(json!({
        "listen": "0.0.0.0:8443", "cert_file": "a", "key_file": "b", "token_file": "c",
        "tokens": "inline",
    }));
    assert!(unknown.is_err());
}

#[test]
fn bearer_check() {
    let tokens = vec![TOKEN.as_bytes().to_vec(), TOKEN2.as_bytes().to_vec()];
    let with = |v: &str| {
        let mut h = hyper::HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        authorise(&h, &tokens)
    };
    assert_eq!(authorise(&hyper::HeaderMap::new(), &tokens), Auth::Missing);
    assert_eq!(with(&format!("Bearer {TOKEN}")), Auth::Ok);
    assert_eq!(with(&format!("bearer {TOKEN2}")), Auth::Ok);
    assert_eq!(with(&format!("Bearer {TOKEN}x")), Auth::Wrong);
    assert_eq!(with("Bearer"), Auth::Wrong);
    assert_eq!(with(TOKEN), Auth::Wrong);
    assert!(ct_eq(b"abc", b"abc"));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"ab"));
}

#[test]
fn content_types() {
    let ok = |v: &str| json_content_type(Some(&HeaderValue::from_str(v).unwrap()));
    assert!(json_content_type(None));
    assert!(ok("application/json; charset=utf-8"));
    assert!(ok("Application/X-NDJSON"));
    assert!(ok("application/cloudevents-batch+json"));
    assert!(!ok("multipart/form-data; boundary=x"));
    assert!(!ok("application/x-www-form-urlencoded"));
}

#[test]
fn items_split_and_number() {
    let collect = |b: &str| -> Vec<(Pos, bool)> {
        Items::new(b.as_bytes(), 1000)
            .map(|(p, r)| (p, r.is_ok()))
            .collect()
    };
    assert_eq!(
        collect("{\"a\":1}\n\n{\"b\":2}\n"),
        [(Pos::Line(1), true), (Pos::Line(3), true)]
    );
    assert_eq!(collect(" {\"a\":1} "), [(Pos::Whole, true)]);
    assert_eq!(
        collect("[{\"a\":1},\"x\"]"),
        [(Pos::Element(1), true), (Pos::Element(2), false)]
    );
    // A broken array falls back to lines, each reported.
    assert_eq!(collect("[{\"a\":1},"), [(Pos::Line(1), false)]);
    assert!(collect("").is_empty());
    // Deep nesting is an error, not a stack overflow.
    let deep = format!(
        "{{\"a\":{}1{}}}",
        "[".repeat(4_000_000),
        "]".repeat(4_000_000)
    );
    assert_eq!(collect(&deep), [(Pos::Whole, false)]);
    let deep = format!("[{}1{}]", "[".repeat(4_000_000), "]".repeat(4_000_000));
    assert_eq!(collect(&deep), [(Pos::Element(1), false)]);
}
