//! Test helpers for the transports: a throw-away directory, a test CA with a `localhost` /
//! `127.0.0.1` server certificate, a loopback HTTP mock server and a raw TLS client stream.
//! Test-only (`#[cfg(test)]`): nothing here is built into the sensor.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpListener;

pub use crate::testutil::TempDir;

/// A test CA and a server certificate for `localhost` and `127.0.0.1`, written as PEM files.
pub struct TestPki {
    pub ca: CertificateDer<'static>,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

pub fn test_pki(dir: &TempDir) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "crosswire test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    TestPki {
        ca: ca_cert.der().clone(),
        ca_file: dir.write("ca.pem", ca_cert.pem().as_bytes()),
        cert_file: dir.write("cert.pem", leaf.pem().as_bytes()),
        key_file: dir.write("key.pem", leaf_key.serialize_pem().as_bytes()),
    }
}

/// Opens a TLS stream to `addr` trusting only `ca`, for tests that write raw HTTP.
pub async fn tls_connect(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(super::tls_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// A request as the mock server saw it (body read whole).
#[derive(Debug, Clone)]
pub struct MockRequest {
    pub method: Method,
    /// Path and query as sent.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl MockRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the mock answers.
pub struct MockResponse {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl MockResponse {
    pub fn json(status: u16, body: serde_json::Value) -> MockResponse {
        MockResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: vec![(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: Bytes::from(body.to_string()),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> MockResponse {
        self.headers.push((
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        ));
        self
    }
}

pub type Handler = Arc<dyn Fn(MockRequest) -> MockResponse + Send + Sync>;

/// Serves plain HTTP/1.1 on 127.0.0.1 (ephemeral port) until the runtime ends.
pub async fn mock_server(handler: Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let r = handler(MockRequest {
                            method: parts.method,
                            target: parts
                                .uri
                                .path_and_query()
                                .map_or_else(String::new, |p| p.as_str().to_owned()),
                            headers: parts.headers,
                            body,
                        });
                        let mut resp = Response::new(Full::new(r.body));
                        *resp.status_mut() = r.status;
                        for (k, v) in r.headers {
                            resp.headers_mut().append(k, v);
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}
