//! Reading EVE JSON logs (crosswire's or Suricata's) back into observations, for
//! `crosswire learn`. Lines that are not JSON, or not `dns`/`tls`/`http` events, are counted and
//! skipped.

use std::io::BufRead;
use std::net::IpAddr;

use serde_json::Value;

use super::{Obs, What};

/// Parses an EVE timestamp (`2024-03-18T14:02:11.204113+0000`) into µs since the epoch.
pub fn parse_ts(s: &str) -> Option<u64> {
    let t = chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .ok()?;
    u64::try_from(t.timestamp_micros()).ok()
}

/// Observations in one EVE line.
pub fn line_observations(line: &str, out: &mut Vec<Obs>) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return false;
    };
    let Some(ts) = v["timestamp"].as_str().and_then(parse_ts) else {
        return false;
    };
    let ip = |k: &str| v[k].as_str().and_then(|s| s.parse::<IpAddr>().ok());
    let (Some(src), Some(dst)) = (ip("src_ip"), ip("dest_ip")) else {
        return false;
    };
    let flow_id = v["flow_id"].as_u64().unwrap_or(0);
    let mk = |client, server, name: &str, what| Obs {
        ts_us: ts,
        flow_id,
        client,
        server,
        name: name.to_string(),
        what,
    };
    match v["event_type"].as_str() {
        Some("dns") => {
            let d = &v["dns"];
            let qname = d["queries"][0]["rrname"]
                .as_str()
                .or_else(|| d["rrname"].as_str());
            let Some(qname) = qname else {
                return false;
            };
            if d["type"] == "request" || d["type"] == "query" {
                out.push(mk(src, dst, qname, What::Query));
            } else if d["rcode"] == "NXDOMAIN" {
                out.push(mk(dst, src, qname, What::NxDomain));
            } else if d["rcode"] == "NOERROR" || d["rcode"].is_null() {
                let ips = d["answers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|a| a["rrtype"] == "A" || a["rrtype"] == "AAAA")
                    .filter_map(|a| a["rdata"].as_str()?.parse().ok())
                    .take(16)
                    .collect();
                out.push(mk(dst, src, qname, What::Answer(ips)));
            }
            true
        }
        Some("tls") => {
            if let Some(sni) = v["tls"]["sni"].as_str() {
                out.push(mk(src, dst, sni, What::Tls));
            }
            true
        }
        Some("http") => {
            if let Some(h) = v["http"]["hostname"].as_str() {
                out.push(mk(src, dst, h, What::Http));
            }
            true
        }
        _ => false,
    }
}

/// Reads an EVE file, calling `each` per observation. Returns (lines used, lines skipped).
pub fn read_eve(r: impl BufRead, mut each: impl FnMut(&Obs)) -> std::io::Result<(u64, u64)> {
    let mut used = 0;
    let mut skipped = 0;
    let mut obs = Vec::new();
    for line in r.lines() {
        let line = line?;
        obs.clear();
        if line_observations(&line, &mut obs) {
            used += 1;
            obs.iter().for_each(&mut each);
        } else {
            skipped += 1;
        }
    }
    Ok((used, skipped))
}

/// Whether a file looks like EVE JSON (its first non-blank byte is `{`) rather than a capture.
pub fn is_eve(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 64];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut buf).unwrap_or(0);
    buf[..n]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_example_lines() {
        let text = r#"{"timestamp":"2024-03-18T14:02:11.204113+0000","flow_id":1,"event_type":"dns","src_ip":"10.20.0.23","src_port":53124,"dest_ip":"10.20.0.2","dest_port":53,"proto":"UDP","dns":{"version":3,"type":"request","id":4711,"queries":[{"rrname":"rz8js7sjbef.latovafineart.life","rrtype":"A"}]}}
{"timestamp":"2024-03-18T14:02:11.231900+0000","flow_id":1,"event_type":"dns","src_ip":"10.20.0.2","src_port":53,"dest_ip":"10.20.0.23","dest_port":53124,"proto":"UDP","dns":{"version":3,"type":"response","rcode":"NOERROR","queries":[{"rrname":"rz8js7sjbef.latovafineart.life","rrtype":"A"}],"answers":[{"rrname":"rz8js7sjbef.latovafineart.life","rrtype":"A","ttl":300,"rdata":"193.222.96.91"}]}}
{"timestamp":"2024-03-18T14:02:11.402337+0000","flow_id":2,"event_type":"tls","src_ip":"10.20.0.23","src_port":50312,"dest_ip":"193.222.96.91","dest_port":443,"proto":"TCP","tls":{"sni":"rz8js7sjbef.latovafineart.life"}}
not json
{"timestamp":"2024-03-18T14:05:00.000000+0000","event_type":"stats","stats":{}}
"#;
        let mut got = Vec::new();
        let (used, skipped) = read_eve(text.as_bytes(), |o| got.push(o.clone())).unwrap();
        assert_eq!((used, skipped), (3, 2));
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].what, What::Query);
        assert_eq!(got[1].client.to_string(), "10.20.0.23");
        assert_eq!(
            got[1].what,
            What::Answer(vec!["193.222.96.91".parse().unwrap()])
        );
        assert_eq!(got[2].what, What::Tls);
        assert_eq!(got[2].ts_us, 1_710_770_531_402_337);
    }
}
