//! Domain intelligence end to end (issue 3): a scenario capture generated at test time, replayed
//! through the binary, must yield exactly the expected model breaches; a replay split in two
//! with a `kill -9` between the halves must equal one uninterrupted run.
//!
//! The scenario (10 simulated days, 2024-03-08 .. 2024-03-18, 100 devices in 10.20.1.0/24):
//! - every day each device browses a stable set of popular sites (DNS + TLS);
//! - day 9: 60 devices adopt a new, ordinary service (`acme-timesheets.com`): must stay quiet;
//! - day 10 09:00-12:00: device .50 beacons to `sync.northwind-telemetry.net` every 60 s ± 2 s;
//! - day 10 12:00: device .77 gets 15 NXDOMAIN answers for random names within a minute;
//! - day 10 14:02: device .23 resolves and opens TLS to `rz8js7sjbef.latovafineart.life`
//!   (193.222.96.91), listed in the test NRD feed as registered on 2024-03-14;
//! - day 10 15:00-16:00: devices .31-.34 visit `thecalebgroup.top` on the same IP.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::{bin, tempdir};

const DAY: u64 = 86_400_000_000;
const HOUR: u64 = 3_600_000_000;
const MIN: u64 = 60_000_000;
/// 2024-03-08 00:00:00 UTC.
const T0: u64 = 1_709_856_000_000_000;

const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 2);
const C2_IP: Ipv4Addr = Ipv4Addr::new(193, 222, 96, 91);

/// Popular sites: (fqdn, ip, in the Tranco test list).
const SITES: &[(&str, [u8; 4], bool)] = &[
    ("www.google.com", [142, 250, 74, 4], true),
    ("www.youtube.com", [142, 250, 74, 14], true),
    ("outlook.office365.com", [52, 96, 10, 2], true),
    ("login.microsoftonline.com", [20, 190, 151, 9], true),
    ("www.wikipedia.org", [185, 15, 59, 224], true),
    ("github.com", [140, 82, 121, 4], true),
    ("www.linkedin.com", [13, 107, 42, 14], true),
    ("slack.com", [34, 236, 52, 2], true),
    ("zoom.us", [170, 114, 52, 2], true),
    ("www.amazon.com", [54, 239, 28, 85], true),
    ("d3k9x2p7qz.cloudfront.net", [13, 224, 2, 9], true),
    ("acme-payroll.com", [104, 18, 2, 30], false),
    ("northwind-crm.com", [104, 18, 3, 31], false),
    ("intranet-weather.net", [104, 18, 4, 32], false),
];

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn device(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 20, 1, i)
}

/// One frame with its time.
struct Frame {
    ts: u64,
    data: Vec<u8>,
}

fn checksum(data: &[u8], init: u32) -> u16 {
    let mut sum = init;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + l4.len());
    let last = |a: Ipv4Addr| a.octets()[3];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, last(dst)]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, last(src)]);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let mut p = Vec::new();
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[0, proto]);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum()
}

fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let c = checksum(&u, pseudo(src, dst, 17, len));
    u[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 17, &u)
}

#[allow(clippy::too_many_arguments)]
fn tcp(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let len = 20 + payload.len();
    let mut t = Vec::with_capacity(len);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    let c = checksum(&t, pseudo(src, dst, 6, len));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 6, &t)
}

fn dns_name(name: &str, out: &mut Vec<u8>) {
    for l in name.split('.') {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
}

fn dns(id: u16, name: &str, response: Option<(u16, &[Ipv4Addr])>) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&id.to_be_bytes());
    let (flags, answers): (u16, &[Ipv4Addr]) = match response {
        None => (0x0100, &[]),
        Some((rcode, a)) => (0x8180 | rcode, a),
    };
    d.extend_from_slice(&flags.to_be_bytes());
    d.extend_from_slice(&[0, 1]);
    d.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0, 0, 0]);
    dns_name(name, &mut d);
    d.extend_from_slice(&[0, 1, 0, 1]);
    for a in answers {
        d.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
        d.extend_from_slice(&a.octets());
    }
    d
}

/// A minimal TLS 1.2 ClientHello record carrying one SNI.
fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = Vec::new();
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0x13, 0x01]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

struct Gen {
    frames: Vec<Frame>,
    port: u16,
    id: u16,
}

impl Gen {
    fn next_port(&mut self) -> u16 {
        self.port = if self.port >= 60_000 {
            20_000
        } else {
            self.port + 1
        };
        self.port
    }

    fn resolve(&mut self, ts: u64, dev: Ipv4Addr, name: &str, rcode: u16, ips: &[Ipv4Addr]) {
        let port = self.next_port();
        self.id = self.id.wrapping_add(1);
        let q = dns(self.id, name, None);
        let r = dns(self.id, name, Some((rcode, ips)));
        self.frames.push(Frame {
            ts,
            data: udp(dev, port, RESOLVER, 53, &q),
        });
        self.frames.push(Frame {
            ts: ts + 20_000,
            data: udp(RESOLVER, 53, dev, port, &r),
        });
    }

    fn tls(&mut self, ts: u64, dev: Ipv4Addr, ip: Ipv4Addr, sni: &str) {
        let p = self.next_port();
        let hello = client_hello(sni);
        let (c, s) = (1000u32, 5000u32);
        let n = hello.len() as u32;
        let pkts = [
            (0, tcp(dev, p, ip, 443, c, 0, 0x02, &[])),
            (10_000, tcp(ip, 443, dev, p, s, c + 1, 0x12, &[])),
            (20_000, tcp(dev, p, ip, 443, c + 1, s + 1, 0x10, &[])),
            (21_000, tcp(dev, p, ip, 443, c + 1, s + 1, 0x18, &hello)),
            (40_000, tcp(dev, p, ip, 443, c + 1 + n, s + 1, 0x11, &[])),
            (50_000, tcp(ip, 443, dev, p, s + 1, c + 2 + n, 0x11, &[])),
            (60_000, tcp(dev, p, ip, 443, c + 2 + n, s + 2, 0x10, &[])),
        ];
        for (dt, data) in pkts {
            self.frames.push(Frame { ts: ts + dt, data });
        }
    }

    fn visit(&mut self, ts: u64, dev: Ipv4Addr, name: &str, ip: Ipv4Addr) {
        self.resolve(ts, dev, name, 0, &[ip]);
        self.tls(ts + 100_000, dev, ip, name);
    }
}

/// Builds the scenario, sorted by time.
fn scenario() -> Vec<Frame> {
    let mut g = Gen {
        frames: Vec::new(),
        port: 20_000,
        id: 0,
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for day in 0..10u64 {
        for d in 1..=100u8 {
            for _ in 0..6 {
                let (name, ip, _) = SITES[rng.below(SITES.len() as u64) as usize];
                let ts = T0 + day * DAY + 8 * HOUR + rng.below(10 * HOUR);
                g.visit(ts, device(d), name, Ipv4Addr::from(ip));
            }
        }
    }
    // Day 9: a new ordinary service adopted by 60 devices.
    for d in 1..=60u8 {
        let ts = T0 + 8 * DAY + 9 * HOUR + u64::from(d) * 3 * MIN;
        g.visit(
            ts,
            device(d),
            "app.acme-timesheets.com",
            Ipv4Addr::new(104, 21, 7, 7),
        );
    }
    let day10 = T0 + 10 * DAY;
    // Beaconing: every 60 s ± 2 s for three hours.
    let beacon = "sync.northwind-telemetry.net";
    let bip = Ipv4Addr::new(45, 77, 10, 20);
    g.resolve(day10 + 9 * HOUR - MIN, device(50), beacon, 0, &[bip]);
    let mut t = day10 + 9 * HOUR;
    for _ in 0..180 {
        g.tls(t, device(50), bip, beacon);
        t += 58_000_000 + rng.below(4_000_001);
    }
    // DGA: 15 NXDOMAIN answers for random names within a minute.
    for i in 0..15u64 {
        let label: String = (0..12)
            .map(|_| {
                let c = rng.below(36) as u8;
                if c < 26 {
                    (b'a' + c) as char
                } else {
                    (b'0' + c - 26) as char
                }
            })
            .collect();
        let tld = ["com", "net", "org"][(i % 3) as usize];
        g.resolve(
            day10 + 12 * HOUR + i * 4_000_000,
            device(77),
            &format!("{label}.{tld}"),
            3,
            &[],
        );
    }
    // The reference case.
    g.visit(
        day10 + 14 * HOUR + 2 * MIN,
        device(23),
        "rz8js7sjbef.latovafineart.life",
        C2_IP,
    );
    for (k, d) in [31u8, 32, 33, 34].iter().enumerate() {
        g.visit(
            day10 + 15 * HOUR + k as u64 * 15 * MIN,
            device(*d),
            "thecalebgroup.top",
            C2_IP,
        );
    }
    g.frames.sort_by_key(|f| f.ts);
    g.frames
}

/// Writes frames as a classic pcap file (microsecond timestamps, Ethernet).
fn write_pcap(path: &Path, frames: &[Frame]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create pcap"));
    let mut hdr = Vec::new();
    hdr.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&[0; 8]);
    hdr.extend_from_slice(&65535u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    f.write_all(&hdr).unwrap();
    for fr in frames {
        let mut r = Vec::with_capacity(16 + fr.data.len());
        r.extend_from_slice(&((fr.ts / 1_000_000) as u32).to_le_bytes());
        r.extend_from_slice(&((fr.ts % 1_000_000) as u32).to_le_bytes());
        r.extend_from_slice(&(fr.data.len() as u32).to_le_bytes());
        r.extend_from_slice(&(fr.data.len() as u32).to_le_bytes());
        r.extend_from_slice(&fr.data);
        f.write_all(&r).unwrap();
    }
    f.flush().unwrap();
}

/// Feed, popularity list and config for the scenario.
fn setup(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("nrd.csv"),
        "# test NRD feed\nlatovafineart.life,2024-03-14\nnot a domain!,2024-03-01\n",
    )
    .unwrap();
    let tranco: String = SITES
        .iter()
        .filter(|s| s.2)
        .enumerate()
        .map(|(i, s)| {
            let reg = crosswire::intel::names::registrable(s.0).unwrap();
            format!("{},{reg}\n", i + 1)
        })
        .collect();
    std::fs::write(dir.join("tranco.csv"), tranco).unwrap();
    let cfg = dir.join("crosswire.toml");
    std::fs::write(
        &cfg,
        format!(
            "[intel]\nregistration_feeds = [\"{}\"]\npopularity_list = \"{}\"\n",
            dir.join("nrd.csv").display(),
            dir.join("tranco.csv").display()
        ),
    )
    .unwrap();
    cfg
}

/// Replays `pcap` with `state`; returns EVE lines and stderr. With `kill`, the process is
/// SIGKILLed as soon as its final `stats` line is out instead of being left to exit.
fn run(
    pcap: &Path,
    cfg: &Path,
    state: &Path,
    out: &Path,
    kill: bool,
    workers: &str,
) -> (Vec<Value>, String) {
    let mut child = Command::new(bin())
        .arg("replay")
        .arg(pcap)
        .arg("--config")
        .arg(cfg)
        .arg("--state")
        .arg(state)
        .args(["--workers", workers, "--eve"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run crosswire");
    if kill {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(out).unwrap_or_default();
            if text.contains("\"final\":true") || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = child.kill();
    }
    let o = child.wait_with_output().expect("wait");
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
        .collect();
    (lines, String::from_utf8_lossy(&o.stderr).into_owned())
}

type Key = (String, String, String, String);

fn breaches(lines: &[Value]) -> Vec<Key> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut v: Vec<Key> = lines
        .iter()
        .filter(|l| l["event_type"] == "model_breach")
        .map(|l| {
            let m = &l["model_breach"];
            (
                s(&m["model"]),
                s(&m["device"]["ip"]),
                s(&m["domain"]),
                s(&m["ip"]),
            )
        })
        .collect();
    v.sort();
    v
}

fn expected() -> Vec<Key> {
    let k = |m: &str, d: &str, dom: &str, ip: &str| (m.into(), d.into(), dom.into(), ip.into());
    let sd = "Device / Suspicious Domain";
    let mut v = vec![
        k(sd, "10.20.1.23", "latovafineart.life", "193.222.96.91"),
        k(sd, "10.20.1.31", "thecalebgroup.top", "193.222.96.91"),
        k(sd, "10.20.1.32", "thecalebgroup.top", "193.222.96.91"),
        k(sd, "10.20.1.33", "thecalebgroup.top", "193.222.96.91"),
        k(sd, "10.20.1.34", "thecalebgroup.top", "193.222.96.91"),
        k(
            "Multiple Device Correlations / Multiple Devices Breaching Same Model",
            "10.20.1.32",
            "thecalebgroup.top",
            "193.222.96.91",
        ),
        k(
            "Device / Possible SSL Command and Control",
            "10.20.1.50",
            "northwind-telemetry.net",
            "45.77.10.20",
        ),
    ];
    v.push(k("Device / DGA Activity", "10.20.1.77", "", ""));
    v.sort();
    v
}

/// The DGA breach's domain is whichever random name completed the burst; compare without it.
fn normalised(mut v: Vec<Key>) -> Vec<Key> {
    for k in &mut v {
        if k.0 == "Device / DGA Activity" {
            k.2.clear();
        }
    }
    v.sort();
    v
}

#[test]
fn scenario_yields_exactly_the_expected_breaches() {
    let dir = tempdir();
    let cfg = setup(&dir);
    let pcap = dir.join("scenario.pcap");
    write_pcap(&pcap, &scenario());
    // Two workers: events reach the analyzer out of time order and must still add up.
    let (lines, stderr) = run(
        &pcap,
        &cfg,
        &dir.join("state"),
        &dir.join("eve.json"),
        false,
        "2",
    );
    let got = normalised(breaches(&lines));
    assert_eq!(got, expected(), "stderr: {stderr}");
    // No breach names a popular or commonly used domain.
    let popular: BTreeSet<&str> = SITES
        .iter()
        .filter_map(|s| crosswire::intel::names::registrable(s.0))
        .chain(["acme-timesheets.com"])
        .collect();
    for l in lines.iter().filter(|l| l["event_type"] == "model_breach") {
        let d = l["model_breach"]["domain"].as_str().unwrap_or("");
        assert!(!popular.contains(d), "breach for popular domain: {l}");
    }
    // The reference breach explains itself.
    let first = lines
        .iter()
        .find(|l| l["model_breach"]["domain"] == "latovafineart.life")
        .expect("reference breach");
    let reasons: Vec<&str> = first["model_breach"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        reasons.contains(&"registered 4 days ago (feed)"),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("1 of 100 devices")),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"risky TLD .life"), "{reasons:?}");
    assert_eq!(first["src_ip"], "10.20.1.23");
    assert_eq!(first["dest_ip"], "193.222.96.91");
    assert!(first["model_breach"]["score"].as_u64().unwrap() >= 60);
    assert_eq!(first["timestamp"].as_str().unwrap().len(), 31);
    // The bad feed line is reported with file:line; the rest of the feed was used.
    assert!(stderr.contains("nrd.csv:3: not a domain name"), "{stderr}");
    let stats = lines.iter().rfind(|l| l["event_type"] == "stats").unwrap();
    let intel = &stats["stats"]["intel"];
    assert_eq!(intel["feeds"]["bad_lines"], 1, "{intel}");
    assert_eq!(intel["devices"], 100, "{intel}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_9_between_halves_equals_one_run() {
    let dir = tempdir();
    let cfg = setup(&dir);
    let frames = scenario();
    // Split on day 10 at 13:00: after the beacon and the DGA burst, before the reference case.
    let cut = T0 + 10 * DAY + 13 * HOUR;
    let (a, b): (Vec<Frame>, Vec<Frame>) = frames.into_iter().partition(|f| f.ts < cut);
    let mut all = Vec::with_capacity(a.len() + b.len());
    write_pcap(&dir.join("a.pcap"), &a);
    write_pcap(&dir.join("b.pcap"), &b);
    all.extend(a);
    all.extend(b);
    write_pcap(&dir.join("all.pcap"), &all);

    let (one, _) = run(
        &dir.join("all.pcap"),
        &cfg,
        &dir.join("s1"),
        &dir.join("one.json"),
        false,
        "1",
    );
    let (h1, _) = run(
        &dir.join("a.pcap"),
        &cfg,
        &dir.join("s2"),
        &dir.join("h1.json"),
        true,
        "1",
    );
    let (h2, _) = run(
        &dir.join("b.pcap"),
        &cfg,
        &dir.join("s2"),
        &dir.join("h2.json"),
        false,
        "1",
    );
    let mut halves = breaches(&h1);
    halves.extend(breaches(&h2));
    halves.sort();
    assert_eq!(halves, breaches(&one));
    assert_eq!(normalised(halves), expected());

    // First-seen times and device counts agree record by record.
    let settings = crosswire::intel::Settings::default();
    let mut x = crosswire::intel::Analyzer::open(&settings, &dir.join("s1"), true).unwrap();
    let mut y = crosswire::intel::Analyzer::open(&settings, &dir.join("s2"), true).unwrap();
    for d in [
        "latovafineart.life",
        "thecalebgroup.top",
        "northwind-telemetry.net",
        "acme-timesheets.com",
        "google.com",
        "acme-payroll.com",
    ] {
        let (p, q) = (x.domain(d), y.domain(d));
        assert!(p.is_some(), "{d} missing");
        let (p, q) = (p.unwrap(), q.unwrap());
        assert_eq!(p.first, q.first, "{d} first seen");
        assert_eq!(p.hits, q.hits, "{d} hits");
        assert_eq!(p.devices.len(), q.devices.len(), "{d} devices");
    }
    assert_eq!(x.rows("domains"), y.rows("domains"));
    assert_eq!(x.rows("devices"), y.rows("devices"));
    let _ = std::fs::remove_dir_all(&dir);
}
