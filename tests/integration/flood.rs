//! Floods: millions of one-packet TCP SYN flows and DNS queries for distinct random names, with
//! a few ordinary sessions mixed in at known places. crosswire must stay within its memory
//! bound (the flow table evicts, and counts it), keep up, and still report every ordinary
//! session: evicting the flood must not evict the flows that are actually talking.
//!
//! The captures are generated at test time in a temp dir with libpcap's savefile API from
//! hand-built Ethernet/IPv4/TCP/UDP frames (checksums computed), one microsecond apart, so no
//! flow times out during the flood: only the caps can make room.
//!
//! Knobs (defaults in brackets): `CW_FLOOD_FLOWS` [2000000] SYN flows and `CW_FLOOD_NAMES`
//! [1000000] DNS names for `flood_memory_bounded`; `CW_FLOOD_SIZES` [250000,500000,1000000]
//! SYN flows per run for `flood_cost_linear` (each with half as many names); `CW_FLOOD_KEEP`
//! [unset] a directory to keep the generated captures in.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::live::packet_header;
use crate::{bin, tempdir};

/// Final `stats` RSS bound for the 3 M-packet flood.
const MAX_RSS_KIB: u64 = 256 * 1024;
/// Flood packets between two packets of an ordinary session.
const NORMAL_GAP: u64 = 1000;
/// Ordinary sessions in a flood, spread evenly through it.
const NORMAL_SESSIONS: u64 = 5;
/// Every how many DNS queries one gets a response.
const RESPONSE_EVERY: u64 = 4;

/// splitmix64: a fixed-seed generator, so a failing flood can be regenerated exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

// ------------------------------------------------------------------------------- frames

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for p in parts {
        let mut chunks = p.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [b] = chunks.remainder() {
            sum += u32::from(*b) << 8;
        }
    }
    // Parts are concatenated only at even lengths (headers), so per-part padding is exact.
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/// Ethernet + IPv4 around an L4 segment (whose checksum field is filled here).
fn ipv4_frame(src: [u8; 4], dst: [u8; 4], proto: u8, mut l4: Vec<u8>, to_server: bool) -> Vec<u8> {
    let len = l4.len() as u16;
    let pseudo = [&src[..], &dst[..], &[0, proto][..], &len.to_be_bytes()[..]].concat();
    let ck_at = if proto == 6 { 16 } else { 6 };
    let ck = checksum(&[&pseudo, &l4]);
    let ck = if proto == 17 && ck == 0 { 0xffff } else { ck };
    l4[ck_at..ck_at + 2].copy_from_slice(&ck.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&(20 + len).to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let ck = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    let (d, s) = if to_server {
        (SERVER_MAC, CLIENT_MAC)
    } else {
        (CLIENT_MAC, SERVER_MAC)
    };
    let mut f = Vec::with_capacity(14 + ip.len() + l4.len());
    f.extend_from_slice(&d);
    f.extend_from_slice(&s);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const SYN_ACK: u8 = 0x12;
const FIN_ACK: u8 = 0x11;

fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn dns_name(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in name.split('.') {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// A query for `name` IN A; with `answer`, the response carrying that address.
fn dns_message(id: u16, name: &str, answer: Option<[u8; 4]>) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    let flags: u16 = if answer.is_some() { 0x8180 } else { 0x0100 };
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    m.extend_from_slice(&dns_name(name));
    m.extend_from_slice(&[0, 1, 0, 1]);
    if let Some(a) = answer {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
        m.extend_from_slice(&a);
    }
    m
}

/// A TLS 1.2 ClientHello record with SNI `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let mut ext = Vec::new();
    // server_name
    let n = sni.as_bytes();
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&(n.len() as u16 + 5).to_be_bytes());
    ext.extend_from_slice(&(n.len() as u16 + 3).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(n.len() as u16).to_be_bytes());
    ext.extend_from_slice(n);
    // supported_groups x25519, secp256r1; ec_point_formats uncompressed
    ext.extend_from_slice(&[0, 10, 0, 6, 0, 4, 0, 29, 0, 23]);
    ext.extend_from_slice(&[0, 11, 0, 2, 1, 0]);
    let mut hello = vec![0x03, 0x03];
    hello.extend((0..32u8).map(|i| i.wrapping_mul(37)));
    hello.push(0); // session id
    hello.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0xc0, 0x2b]);
    hello.extend_from_slice(&[1, 0]); // compression: null
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&hello);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// What ordinary session `k` must produce.
struct Expected {
    dns_name: String,
    dns_answer: String,
    http_host: String,
    http_url: String,
    http_ua: String,
    tls_sni: String,
}

fn expected(k: u64) -> Expected {
    Expected {
        dns_name: format!("normal-{k}.crosswire.test"),
        dns_answer: format!("192.0.2.{}", 10 + k),
        http_host: format!("web-{k}.crosswire.test"),
        http_url: format!("/normal/{k}?q=1"),
        http_ua: format!("crosswire-flood-test/{k}"),
        tls_sni: format!("tls-{k}.crosswire.test"),
    }
}

/// A TCP session: handshake, one client payload, one server payload, FIN both ways.
fn tcp_session(
    cli: [u8; 4],
    srv: [u8; 4],
    cport: u16,
    sport: u16,
    request: &[u8],
    response: &[u8],
) -> Vec<Vec<u8>> {
    let (c0, s0) = (1_000_000u32, 5_000_000u32);
    let rq = request.len() as u32;
    let rs = response.len() as u32;
    let c =
        |seq, ack, fl, p: &[u8]| ipv4_frame(cli, srv, 6, tcp(cport, sport, seq, ack, fl, p), true);
    let s =
        |seq, ack, fl, p: &[u8]| ipv4_frame(srv, cli, 6, tcp(sport, cport, seq, ack, fl, p), false);
    vec![
        c(c0, 0, SYN, &[]),
        s(s0, c0 + 1, SYN_ACK, &[]),
        c(c0 + 1, s0 + 1, ACK, &[]),
        c(c0 + 1, s0 + 1, PSH_ACK, request),
        s(s0 + 1, c0 + 1 + rq, PSH_ACK, response),
        c(c0 + 1 + rq, s0 + 1 + rs, FIN_ACK, &[]),
        s(s0 + 1 + rs, c0 + 2 + rq, FIN_ACK, &[]),
        c(c0 + 2 + rq, s0 + 2 + rs, ACK, &[]),
    ]
}

/// The frames of ordinary session `k`, in order.
fn normal_session(k: u64) -> Vec<Vec<u8>> {
    let e = expected(k);
    let cli = [198, 18, 0, 10 + k as u8];
    let dns_srv = [198, 18, 1, 53];
    let web = [198, 18, 2, 80];
    let tls_srv = [198, 18, 3, 43];
    let answer = [192, 0, 2, 10 + k as u8];
    let mut v = vec![
        ipv4_frame(
            cli,
            dns_srv,
            17,
            udp(
                40000 + k as u16,
                53,
                &dns_message(0x4e00 + k as u16, &e.dns_name, None),
            ),
            true,
        ),
        ipv4_frame(
            dns_srv,
            cli,
            17,
            udp(
                53,
                40000 + k as u16,
                &dns_message(0x4e00 + k as u16, &e.dns_name, Some(answer)),
            ),
            false,
        ),
    ];
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\n\r\n",
        e.http_url, e.http_host, e.http_ua
    );
    v.extend(tcp_session(
        cli,
        web,
        41000 + k as u16,
        80,
        req.as_bytes(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok",
    ));
    // ServerHello-ish bytes are enough for the server side; the sensor only needs the hello.
    v.extend(tcp_session(
        cli,
        tls_srv,
        42000 + k as u16,
        443,
        &client_hello(&e.tls_sni),
        &[0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00],
    ));
    v
}

/// Flood packet `i`: a SYN from a random source, or a DNS query for a random name (and, for
/// every `RESPONSE_EVERY`-th query, its response right after).
struct Flood {
    rng: Rng,
    syns_left: u64,
    names_left: u64,
    pending_response: Option<Vec<u8>>,
    queries: u64,
}

impl Flood {
    fn new(flows: u64, names: u64) -> Flood {
        Flood {
            rng: Rng(0x00c0_ffee),
            syns_left: flows,
            names_left: names,
            pending_response: None,
            queries: 0,
        }
    }

    fn next(&mut self) -> Option<Vec<u8>> {
        if let Some(r) = self.pending_response.take() {
            return Some(r);
        }
        let total = self.syns_left + self.names_left;
        if total == 0 {
            return None;
        }
        let r = self.rng.next();
        if r % total < self.syns_left {
            self.syns_left -= 1;
            let src = [10, (r >> 8) as u8, (r >> 16) as u8, (r >> 24) as u8];
            let dst = [203, 0, 113, (r >> 32) as u8];
            let sport = 1024 + ((r >> 40) as u16 % 60000);
            let dport = [80, 443, 22, 8080][(r >> 58) as usize % 4];
            Some(ipv4_frame(
                src,
                dst,
                6,
                tcp(sport, dport, (r >> 13) as u32, 0, SYN, &[]),
                true,
            ))
        } else {
            self.names_left -= 1;
            self.queries += 1;
            let q = self.rng.next();
            let label: String = (0..14)
                .map(|i| {
                    let c = ((q >> (i * 4)) & 0x1f) as u8 % 36;
                    if c < 26 {
                        (b'a' + c) as char
                    } else {
                        (b'0' + c - 26) as char
                    }
                })
                .collect();
            let name = format!("{label}{}.flood.example", self.queries);
            let src = [
                172,
                16 | ((r >> 8) as u8 & 0x0f),
                (r >> 16) as u8,
                (r >> 24) as u8,
            ];
            let srv = [198, 51, 100, 53];
            let sport = 1024 + ((r >> 40) as u16 % 60000);
            let id = (r >> 48) as u16;
            if self.queries.is_multiple_of(RESPONSE_EVERY) {
                let a = [100, 64, (q >> 48) as u8, (q >> 56) as u8];
                self.pending_response = Some(ipv4_frame(
                    srv,
                    src,
                    17,
                    udp(53, sport, &dns_message(id, &name, Some(a))),
                    false,
                ));
            }
            Some(ipv4_frame(
                src,
                srv,
                17,
                udp(sport, 53, &dns_message(id, &name, None)),
                true,
            ))
        }
    }
}

/// Writes the flood capture; returns its packet count.
fn write_flood(path: &Path, flows: u64, names: u64) -> u64 {
    let cap = pcap::Capture::dead(pcap::Linktype::ETHERNET).expect("dead capture");
    let mut out = cap.savefile(path).expect("savefile");
    let flood_total = flows + names + names / RESPONSE_EVERY;
    let mut flood = Flood::new(flows, names);
    // Ordinary session k starts at flood packet (k+1)/(SESSIONS+1) of the way through and
    // sends one packet every NORMAL_GAP flood packets.
    let mut normal: Vec<(u64, std::collections::VecDeque<Vec<u8>>)> = (0..NORMAL_SESSIONS)
        .map(|k| {
            (
                flood_total * (k + 1) / (NORMAL_SESSIONS + 1),
                normal_session(k).into(),
            )
        })
        .collect();
    let mut n: u64 = 0;
    let mut i: u64 = 0;
    let mut write = |f: &[u8], n: &mut u64| {
        let ts = 1_700_000_000_000_000u64 + *n;
        let h = packet_header((ts / 1_000_000) as i64, (ts % 1_000_000) as i64, f.len());
        out.write(&pcap::Packet::new(&h, f));
        *n += 1;
    };
    loop {
        for (start, frames) in normal.iter_mut() {
            if i >= *start
                && (i - *start).is_multiple_of(NORMAL_GAP)
                && let Some(f) = frames.pop_front()
            {
                write(&f, &mut n);
            }
        }
        match flood.next() {
            Some(f) => write(&f, &mut n),
            None => break,
        }
        i += 1;
    }
    // Whatever of the ordinary sessions is left goes at the end.
    for (_, frames) in normal.iter_mut() {
        for f in frames.drain(..) {
            write(&f, &mut n);
        }
    }
    out.flush().expect("flush flood");
    n
}

// ------------------------------------------------------------------------------- checks

/// What one replay of a flood showed.
struct Outcome {
    packets: u64,
    seconds: f64,
    stats: Value,
    /// Events of the ordinary sessions (everything mentioning crosswire.test).
    normal: Vec<Value>,
    dns_events: u64,
}

fn replay_flood(pcap: &Path, dir: &Path) -> Outcome {
    let eve = dir.join("flood.json");
    let t0 = Instant::now();
    let out = Command::new(bin())
        .arg("replay")
        .arg(pcap)
        .args(["--workers", "2", "--eve"])
        .arg(&eve)
        .output()
        .expect("run crosswire replay");
    let seconds = t0.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "crosswire replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut stats = Value::Null;
    let mut normal = Vec::new();
    let mut dns_events = 0;
    let f = std::fs::File::open(&eve).expect("open EVE");
    for line in BufReader::new(f).lines() {
        let line = line.expect("read EVE");
        if line.contains("\"event_type\":\"dns\"") {
            dns_events += 1;
        }
        if line.contains("\"event_type\":\"stats\"") {
            stats = serde_json::from_str(&line).expect("stats JSON");
        } else if line.contains("crosswire.test") {
            normal.push(serde_json::from_str(&line).expect("event JSON"));
        }
    }
    let _ = std::fs::remove_file(&eve);
    Outcome {
        packets: stats["stats"]["capture"]["packets"].as_u64().unwrap_or(0),
        seconds,
        stats,
        normal,
        dns_events,
    }
}

fn st(o: &Outcome, path: &[&str]) -> u64 {
    let mut v = &o.stats["stats"];
    for p in path {
        v = &v[*p];
    }
    v.as_u64().unwrap_or(0)
}

/// The ordinary sessions' events that are missing.
fn missing_normal(o: &Outcome) -> Vec<String> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut missing = Vec::new();
    for k in 0..NORMAL_SESSIONS {
        let e = expected(k);
        let has = |pred: &dyn Fn(&Value) -> bool| o.normal.iter().any(pred);
        if !has(&|v| {
            v["event_type"] == "dns"
                && v["dns"]["type"] == "request"
                && v["dns"]["queries"][0]["rrname"] == e.dns_name.as_str()
        }) {
            missing.push(format!("dns request {}", e.dns_name));
        }
        if !has(&|v| {
            v["event_type"] == "dns"
                && v["dns"]["type"] == "response"
                && v["dns"]["answers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| a["rrname"] == e.dns_name.as_str() && s(&a["rdata"]) == e.dns_answer)
        }) {
            missing.push(format!("dns response {} -> {}", e.dns_name, e.dns_answer));
        }
        if !has(&|v| {
            v["event_type"] == "http"
                && v["http"]["http_method"] == "GET"
                && v["http"]["hostname"] == e.http_host.as_str()
                && v["http"]["url"] == e.http_url.as_str()
                && v["http"]["http_user_agent"] == e.http_ua.as_str()
        }) {
            missing.push(format!("http GET {}{}", e.http_host, e.http_url));
        }
        if !has(&|v| v["event_type"] == "tls" && v["tls"]["sni"] == e.tls_sni.as_str()) {
            missing.push(format!("tls {}", e.tls_sni));
        }
    }
    missing
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_flood(dir: &Path, flows: u64, names: u64) -> (u64, Outcome) {
    let path: PathBuf = dir.join(format!("flood-{flows}-{names}.pcap"));
    let t0 = Instant::now();
    let written = write_flood(&path, flows, names);
    let gen_s = t0.elapsed().as_secs_f64();
    let o = replay_flood(&path, dir);
    match std::env::var_os("CW_FLOOD_KEEP") {
        // Keep the capture for a closer look (e.g. `crosswire replay --config`).
        Some(keep) => {
            let to = PathBuf::from(keep).join(path.file_name().unwrap_or_default());
            let _ = std::fs::rename(&path, &to).or_else(|_| std::fs::copy(&path, &to).map(drop));
            println!("flood capture kept as {}", to.display());
        }
        None => {
            let _ = std::fs::remove_file(&path);
        }
    }
    println!(
        "flood {flows} SYN flows + {names} names: {written} packets (generated in {gen_s:.1} s), \
         replay {:.1} s = {:.0} packets/s; max_rss {} KiB ({:.1} MiB); flow created {} evicted {} \
         expired {}; dns events {}; latency_us p50 {} p99 {} p999 {}",
        o.seconds,
        written as f64 / o.seconds,
        st(&o, &["memory", "max_rss_kib"]),
        st(&o, &["memory", "max_rss_kib"]) as f64 / 1024.0,
        st(&o, &["flow", "created"]),
        st(&o, &["flow", "evicted"]),
        st(&o, &["flow", "expired"]),
        o.dns_events,
        st(&o, &["latency_us", "p50"]),
        st(&o, &["latency_us", "p99"]),
        st(&o, &["latency_us", "p999"]),
    );
    (written, o)
}

#[test]
fn flood_memory_bounded() {
    let _one_at_a_time = crate::live::exclusive();
    let flows = env_u64("CW_FLOOD_FLOWS", 2_000_000);
    let names = env_u64("CW_FLOOD_NAMES", 1_000_000);
    let dir = tempdir();
    let (written, o) = run_flood(&dir, flows, names);
    let _ = std::fs::remove_dir_all(&dir);
    // Every check is made and reported, then the test fails on any of them.
    let mut problems = Vec::new();
    if o.packets != written {
        problems.push(format!("crosswire read {} of {written} packets", o.packets));
    }
    let rss = st(&o, &["memory", "max_rss_kib"]);
    if rss == 0 || rss >= MAX_RSS_KIB {
        problems.push(format!(
            "max RSS {rss} KiB is not within (0, {MAX_RSS_KIB}) KiB"
        ));
    }
    if st(&o, &["flow", "evicted"]) == 0 {
        problems.push(format!(
            "a flood past the flow cap must evict (and count it): {}",
            o.stats["stats"]["flow"]
        ));
    }
    let missing = missing_normal(&o);
    if !missing.is_empty() {
        problems.push(format!(
            "ordinary traffic lost in the flood: {missing:?}; its events: {:?}",
            o.normal
        ));
    }
    println!(
        "flood_memory_bounded: ordinary-session events found: {} (of {} expected kinds)",
        o.normal.len(),
        NORMAL_SESSIONS * 4
    );
    assert!(problems.is_empty(), "{}", problems.join("; "));
}

#[test]
fn flood_cost_linear() {
    let _one_at_a_time = crate::live::exclusive();
    let sizes: Vec<u64> = std::env::var("CW_FLOOD_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![250_000, 500_000, 1_000_000]);
    assert!(sizes.len() >= 2, "CW_FLOOD_SIZES needs at least two sizes");
    let dir = tempdir();
    let mut rss = Vec::new();
    for &flows in &sizes {
        let (written, o) = run_flood(&dir, flows, flows / 2);
        assert_eq!(o.packets, written, "crosswire read every packet");
        let missing = missing_normal(&o);
        assert!(missing.is_empty(), "ordinary traffic lost: {missing:?}");
        rss.push(st(&o, &["memory", "max_rss_kib"]));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("flood_cost_linear: sizes {sizes:?} max_rss_kib {rss:?}");
    let (small, large) = (rss[0], rss[rss.len() - 1]);
    assert!(
        (large as f64) < small as f64 * 1.5 + 16.0 * 1024.0,
        "memory grows with the flood past the caps: {small} KiB at {} flows, {large} KiB at {} \
         flows",
        sizes[0],
        sizes[sizes.len() - 1]
    );
}
