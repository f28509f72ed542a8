//! Minimal HTTP/1.1 client for the Management Activity API poller (rustls, ring provider).
//!
//! Job: send one request to an absolute `https://` URL and return the status, headers and the
//! whole body. Limits and guarantees:
//! - Plain `http://` is accepted only for loopback hosts (`127.0.0.0/8`, `::1`, `localhost`), so
//!   tests can use a mock server and a bearer token never leaves the machine in clear text.
//! - URLs with user-info (`user@host`) are refused.
//! - Every request (connect, TLS handshake, sending, reading the whole body) runs under one
//!   deadline; a response body over the caller's cap is an error and reading stops at the cap.
//! - At most [`MAX_POOLED`] idle connections are kept for reuse; a new connection is made when
//!   none is idle for the origin.
//! - Trust: the bundled Mozilla roots plus any extra roots the caller gives (a corporate CA, or a
//!   test CA).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_LENGTH, HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Idle connections kept for reuse (the poller talks to two origins: login and API).
pub const MAX_POOLED: usize = 4;
/// Longest URL accepted (NextPageUri and contentUri come from the server).
pub const MAX_URL: usize = 8192;

/// A request failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad URL `{url}`: {why}")]
    Url { url: String, why: &'static str },
    #[error("plain http is allowed only to loopback hosts: `{0}`")]
    Insecure(String),
    #[error("connect to {origin}: {source}")]
    Connect {
        origin: String,
        source: std::io::Error,
    },
    #[error("TLS with {origin}: {source}")]
    Tls {
        origin: String,
        source: std::io::Error,
    },
    #[error("HTTP exchange with {origin}: {source}")]
    Http {
        origin: String,
        source: hyper::Error,
    },
    #[error("request to {origin} timed out after {after:?}")]
    Timeout { origin: String, after: Duration },
    #[error("response body from {origin} larger than {cap} bytes")]
    TooLarge { origin: String, cap: usize },
    #[error("TLS setup: {0}")]
    Setup(#[from] rustls::Error),
}

impl Error {
    /// True for failures that may go away on a retry (network, TLS, timeouts).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::Tls { .. } | Error::Http { .. } | Error::Timeout { .. }
        )
    }
}

/// A checked absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    https: bool,
    host: String,
    port: u16,
    path_and_query: String,
}

impl Target {
    /// Parses and checks an absolute `http(s)://` URL (see the module docs for the rules).
    pub fn parse(url: &str) -> Result<Target, Error> {
        let bad = |why| Error::Url {
            url: truncate(url, 200),
            why,
        };
        if url.len() > MAX_URL {
            return Err(bad("too long"));
        }
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            _ => return Err(bad("scheme is not http or https")),
        };
        let auth = uri.authority().ok_or_else(|| bad("no host"))?;
        if auth.as_str().contains('@') {
            return Err(bad("user-info is not allowed"));
        }
        let host = auth.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = auth.port_u16().unwrap_or(if https { 443 } else { 80 });
        let target = Target {
            https,
            host: host.to_ascii_lowercase(),
            port,
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        };
        if !https && !target.is_loopback() {
            return Err(Error::Insecure(truncate(url, 200)));
        }
        Ok(target)
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// `scheme://host:port`, for same-origin checks and messages.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// The path and query, e.g. `/api/v1.0/x/activity/feed/subscriptions/content?...`.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The same origin with another path and query (which must start with `/`).
    pub fn with_path(&self, path_and_query: String) -> Target {
        Target {
            path_and_query,
            ..self.clone()
        }
    }

    fn host_header(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

struct Pooled {
    origin: String,
    sender: SendRequest<Full<Bytes>>,
}

/// The client: TLS settings, a request deadline and a small pool of idle connections.
pub struct Client {
    tls: TlsConnector,
    timeout: Duration,
    pool: Vec<Pooled>,
}

impl Client {
    /// A client trusting the bundled Mozilla roots plus `extra_roots`.
    pub fn new(
        extra_roots: &[CertificateDer<'static>],
        timeout: Duration,
    ) -> Result<Client, Error> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in extra_roots {
            roots.add(cert.clone())?;
        }
        let mut config = rustls::ClientConfig::builder_with_provider(super::tls_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client {
            tls: TlsConnector::from(Arc::new(config)),
            timeout,
            pool: Vec::new(),
        })
    }

    /// Sends one request and reads the whole response body, at most `max_body` bytes.
    pub async fn request(
        &mut self,
        method: Method,
        target: &Target,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        max_body: usize,
    ) -> Result<Response, Error> {
        let after = self.timeout;
        match tokio::time::timeout(
            after,
            self.exchange(method, target, headers, body, max_body),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                origin: target.origin(),
                after,
            }),
        }
    }

    async fn exchange(
        &mut self,
        method: Method,
        target: &Target,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        max_body: usize,
    ) -> Result<Response, Error> {
        let origin = target.origin();
        let http_err = |source| Error::Http {
            origin: origin.clone(),
            source,
        };
        let mut sender = match self.take_idle(&origin).await {
            Some(s) => s,
            None => self.connect(target).await?,
        };
        let mut req = Request::builder()
            .method(method)
            .uri(target.path_and_query.as_str())
            .header(USER_AGENT, concat!("crosswire/", env!("CARGO_PKG_VERSION")))
            .header(CONTENT_LENGTH, body.len());
        if let Ok(h) = HeaderValue::from_str(&target.host_header()) {
            req = req.header(HOST, h);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req.body(Full::new(body)).map_err(|_| Error::Url {
            url: truncate(&target.path_and_query, 200),
            why: "cannot form a request",
        })?;
        let resp = sender.send_request(req).await.map_err(http_err)?;
        let (parts, mut incoming) = resp.into_parts();
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_body as u64) {
            return Err(Error::TooLarge {
                origin,
                cap: max_body,
            });
        }
        let mut buf = BytesMut::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(http_err)?;
            if let Ok(data) = frame.into_data() {
                if buf.len().saturating_add(data.len()) > max_body {
                    return Err(Error::TooLarge {
                        origin,
                        cap: max_body,
                    });
                }
                buf.extend_from_slice(&data);
            }
        }
        let close = parts
            .headers
            .get(hyper::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        if !close && !sender.is_closed() {
            if self.pool.len() >= MAX_POOLED {
                self.pool.remove(0);
            }
            self.pool.push(Pooled { origin, sender });
        }
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body: buf.freeze(),
        })
    }

    /// An idle pooled connection to `origin` that is still usable.
    async fn take_idle(&mut self, origin: &str) -> Option<SendRequest<Full<Bytes>>> {
        while let Some(i) = self.pool.iter().position(|p| p.origin == origin) {
            let mut p = self.pool.swap_remove(i);
            if !p.sender.is_closed() && p.sender.ready().await.is_ok() {
                return Some(p.sender);
            }
        }
        None
    }

    async fn connect(&self, target: &Target) -> Result<SendRequest<Full<Bytes>>, Error> {
        let origin = target.origin();
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|source| Error::Connect {
                origin: origin.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let http_err = |source| Error::Http {
            origin: origin.clone(),
            source,
        };
        if target.https {
            let name = ServerName::try_from(target.host.clone()).map_err(|_| Error::Url {
                url: origin.clone(),
                why: "host is not a valid TLS server name",
            })?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|source| Error::Tls {
                    origin: origin.clone(),
                    source,
                })?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(http_err)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(http_err)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(sender)
        }
    }
}

/// At most `max` bytes of `s`, cut on a character boundary, with "..." when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_to_loopback() {
        assert!(Target::parse("http://127.0.0.1:8080/x").is_ok());
        assert!(Target::parse("http://127.9.9.9/x").is_ok());
        assert!(Target::parse("http://[::1]:99/").is_ok());
        assert!(Target::parse("http://localhost/").is_ok());
        assert!(matches!(
            Target::parse("http://manage.office.com/api"),
            Err(Error::Insecure(_))
        ));
        assert!(matches!(
            Target::parse("http://10.0.0.1/api"),
            Err(Error::Insecure(_))
        ));
        assert!(Target::parse("https://manage.office.com/api").is_ok());
    }

    #[test]
    fn rejects_odd_urls() {
        for url in [
            "ftp://x/",
            "/relative",
            "https://user:pw@manage.office.com/",
            "https:///nohost",
            "",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
        assert!(Target::parse(&format!("https://a/{}", "x".repeat(MAX_URL))).is_err());
    }

    #[test]
    fn origin_and_host_header() {
        let t = Target::parse("https://Manage.Office.com/api/v1.0/t?x=1").unwrap();
        assert_eq!(t.origin(), "https://manage.office.com:443");
        assert_eq!(t.host_header(), "manage.office.com");
        assert_eq!(t.path_and_query(), "/api/v1.0/t?x=1");
        let t = Target::parse("http://[::1]:8080").unwrap();
        assert_eq!(t.origin(), "http://[::1]:8080");
        assert_eq!(t.host_header(), "[::1]:8080");
        assert_eq!(t.path_and_query(), "/");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é...");
    }
}
