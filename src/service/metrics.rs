//! Prometheus text endpoint (`/metrics`) and health endpoint (`/health`).
//!
//! The output thread renders the same counters as the `stats` event into a shared text snapshot;
//! a small thread serves it. The HTTP side is written by hand on purpose: two fixed GET routes,
//! one request per connection, request head capped at [`MAX_REQUEST`] bytes and a read timeout,
//! so a slow or hostile client cannot hold memory or the thread for long.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// Bytes of a request head read before answering.
pub const MAX_REQUEST: usize = 4096;
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// What the endpoint serves.
#[derive(Default)]
pub struct Shared {
    /// Prometheus exposition text.
    pub text: Mutex<String>,
    /// False once the service is stopping or the capture failed.
    pub healthy: AtomicBool,
}

/// Binds `addr` and serves on a background thread until `stop` is set.
pub fn serve(
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("crosswire-metrics".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => answer(s, &shared),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })?;
    Ok(local)
}

fn answer(mut s: TcpStream, shared: &Shared) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    let mut buf = [0u8; MAX_REQUEST];
    let mut n = 0;
    // Read until the end of the head, the cap, EOF or the timeout.
    while n < buf.len() {
        match s.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                n += k;
                if buf
                    .get(..n)
                    .is_some_and(|b| b.windows(4).any(|w| w == b"\r\n\r\n"))
                {
                    break;
                }
            }
        }
    }
    let head = buf.get(..n).unwrap_or_default();
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (status, ctype, body) = match (method, path) {
        (b"GET", b"/metrics") => {
            let text = match shared.text.lock() {
                Ok(t) => t.clone(),
                Err(p) => p.into_inner().clone(),
            };
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text)
        }
        (b"GET", b"/health") => {
            if shared.healthy.load(Ordering::Relaxed) {
                (
                    "200 OK",
                    "application/json",
                    "{\"status\":\"ok\"}\n".to_string(),
                )
            } else {
                (
                    "503 Service Unavailable",
                    "application/json",
                    "{\"status\":\"unhealthy\"}\n".to_string(),
                )
            }
        }
        (b"GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        ),
    };
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Renders a `stats` event as Prometheus text: every numeric leaf becomes
/// `crosswire_<path>` (a gauge or counter), maps of reasons become one metric with a `reason`
/// label, latency percentiles become a summary with `quantile` labels.
pub fn render(stats: &Value) -> String {
    let mut out = String::new();
    let Some(s) = stats.get("stats") else {
        return out;
    };
    walk(&mut out, "crosswire", s);
    out
}

fn sanitize(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn walk(out: &mut String, prefix: &str, v: &Value) {
    use std::fmt::Write as _;
    let Some(map) = v.as_object() else {
        return;
    };
    for (k, v) in map {
        let name = format!("{prefix}_{}", sanitize(k));
        match v {
            Value::Number(n) => {
                let gauge = k == "active"
                    || k.ends_with("kib")
                    || k == "uptime"
                    || k.contains("threshold")
                    || k == "held"
                    || k == "in_flight";
                if gauge {
                    let _ = writeln!(out, "# TYPE {name} gauge\n{name} {n}");
                } else {
                    // Prometheus naming: a counter's samples end in `_total`.
                    let _ = writeln!(out, "# TYPE {name}_total counter\n{name}_total {n}");
                }
            }
            Value::Bool(b) => {
                let _ = writeln!(out, "# TYPE {name} gauge\n{name} {}", u8::from(*b));
            }
            Value::Object(inner) if k == "latency_us" => {
                let _ = writeln!(out, "# TYPE {name} summary");
                for (q, label) in [("p50", "0.5"), ("p99", "0.99"), ("p999", "0.999")] {
                    if let Some(x) = inner.get(q).and_then(Value::as_u64) {
                        let _ = writeln!(out, "{name}{{quantile=\"{label}\"}} {x}");
                    }
                }
                if let Some(c) = inner.get("count").and_then(Value::as_u64) {
                    let _ = writeln!(out, "{name}_count {c}");
                }
            }
            Value::Object(inner) if k == "errors" || k == "events" => {
                let name = format!("{name}_total");
                let _ = writeln!(out, "# TYPE {name} counter");
                let label = if k == "events" { "proto" } else { "reason" };
                for (r, x) in inner {
                    if let Some(x) = x.as_u64() {
                        let r = r.replace('\\', "\\\\").replace('"', "\\\"");
                        let _ = writeln!(out, "{name}{{{label}=\"{r}\"}} {x}");
                    }
                }
            }
            Value::Object(_) => walk(out, &name, v),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_counters_labels_and_quantiles() {
        let v = json!({"event_type":"stats","stats":{"capture":{"packets":10,"kernel_drops":0},
            "decoder":{"errors":{"truncated_ip":3}},"flow":{"active":5},
            "latency_us":{"count":4,"p50":10,"p99":20,"p999":30,"max":31}}});
        let t = render(&v);
        assert!(t.contains("crosswire_capture_packets_total 10\n"), "{t}");
        assert!(
            t.contains("crosswire_decoder_errors_total{reason=\"truncated_ip\"} 3\n"),
            "{t}"
        );
        assert!(t.contains("# TYPE crosswire_flow_active gauge\n"), "{t}");
        assert!(
            t.contains("crosswire_latency_us{quantile=\"0.99\"} 20\n"),
            "{t}"
        );
        assert!(t.contains("crosswire_latency_us_count 4\n"), "{t}");
    }

    #[test]
    fn serves_metrics_and_health() {
        let shared = Arc::new(Shared::default());
        *shared.text.lock().unwrap() = "crosswire_up 1\n".into();
        shared.healthy.store(true, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0".parse().unwrap(), shared.clone(), stop.clone()).unwrap();
        let get = |path: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut r = String::new();
            s.read_to_string(&mut r).unwrap();
            r
        };
        let m = get("/metrics");
        assert!(
            m.starts_with("HTTP/1.1 200 OK") && m.ends_with("crosswire_up 1\n"),
            "{m}"
        );
        assert!(get("/health").contains("\"ok\""));
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
        shared.healthy.store(false, Ordering::Relaxed);
        assert!(get("/health").starts_with("HTTP/1.1 503"));
        stop.store(true, Ordering::Relaxed);
    }
}
