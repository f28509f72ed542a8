//! Criterion benches per decoder over real payloads (`Throughput::Bytes`): frames from the
//! project's captures (and ../shared/captures/real when present) are decoded once to pull out
//! DNS messages, TLS ClientHello records and HTTP request heads, then each decoder is timed on
//! those bytes.

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crosswire::decode::{dns, http, net, tls};

struct Corpus {
    frames: Vec<(i32, Vec<u8>)>,
    dns: Vec<Vec<u8>>,
    hellos: Vec<Vec<u8>>,
    http: Vec<Vec<u8>>,
}

fn corpus() -> Corpus {
    let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures")];
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/captures/real");
    if shared.is_dir() {
        dirs.push(shared);
    }
    let mut c = Corpus {
        frames: Vec::new(),
        dns: Vec::new(),
        hellos: Vec::new(),
        http: Vec::new(),
    };
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            if !matches!(
                f.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            ) {
                continue;
            }
            let Ok(mut cap) = pcap::Capture::from_file(&f) else {
                continue;
            };
            let lt = cap.get_datalink().0;
            while let Ok(p) = cap.next_packet() {
                let data = p.data.to_vec();
                if let Ok(fr) = net::decode(lt, &data) {
                    match fr.l4 {
                        net::L4::Udp(u) if u.src_port == 53 || u.dst_port == 53 => {
                            c.dns.push(u.payload.to_vec())
                        }
                        net::L4::Tcp(t)
                            if tls::looks_like_record(t.payload)
                                && t.payload.get(5) == Some(&1) =>
                        {
                            c.hellos.push(t.payload.to_vec())
                        }
                        net::L4::Tcp(t) if http::looks_like_request(t.payload) => {
                            c.http.push(t.payload.to_vec())
                        }
                        _ => {}
                    }
                }
                c.frames.push((lt, data));
            }
        }
    }
    c
}

fn bytes(v: &[Vec<u8>]) -> u64 {
    v.iter().map(|x| x.len() as u64).sum()
}

fn benches(cr: &mut Criterion) {
    let c = corpus();
    let mut g = cr.benchmark_group("decoders");
    g.throughput(Throughput::Bytes(
        c.frames.iter().map(|(_, d)| d.len() as u64).sum(),
    ));
    g.bench_function(format!("net::decode ({} frames)", c.frames.len()), |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (lt, d) in &c.frames {
                if net::decode(*lt, d).is_ok() {
                    n += 1;
                }
            }
            n
        })
    });
    g.throughput(Throughput::Bytes(bytes(&c.dns)));
    g.bench_function(format!("dns::parse ({} messages)", c.dns.len()), |b| {
        b.iter(|| c.dns.iter().filter(|m| dns::parse(m).is_ok()).count())
    });
    g.throughput(Throughput::Bytes(bytes(&c.hellos)));
    g.bench_function(
        format!("tls::client_hello ({} records)", c.hellos.len()),
        |b| {
            b.iter(|| {
                c.hellos
                    .iter()
                    .filter(|h| matches!(tls::client_hello(h), tls::Parse::Done(..)))
                    .count()
            })
        },
    );
    g.throughput(Throughput::Bytes(bytes(&c.http)));
    g.bench_function(
        format!("http::ClientParser ({} segments)", c.http.len()),
        |b| {
            b.iter(|| {
                let mut out = Vec::new();
                for s in &c.http {
                    let mut p = http::ClientParser::new();
                    let _ = p.feed(s, &mut out);
                }
                out.len()
            })
        },
    );
    g.finish();
}

criterion_group!(decoders, benches);
criterion_main!(decoders);
