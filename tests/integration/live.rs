//! Live capture on a veth pair inside a private network namespace: what `crosswire capture`
//! reports for frames sent with tcpreplay must equal what `crosswire replay` reports for the
//! same frames, and nothing may be lost on the way.
//!
//! Needs root, `ip netns` and tcpreplay (the rate test also editcap, and ../shared or a
//! prebuilt `target/bench/bench.pcap`); without them each test prints `SKIPPED: <why>` and
//! passes. Every test makes its own namespace (`cw<pid><tag>`) holding both veth ends; a Drop
//! guard deletes it (and with it the veths) and kills a crosswire left running, even when the
//! test fails. No frame leaves the namespace.
//!
//! Knobs for `live_rate_no_loss`: `CW_LIVE_PPS` (default 200000) and `CW_LIVE_SECONDS`
//! (default 20): tcpreplay sends `PPS * SECONDS` packets of the bench capture (or all of them
//! when it is smaller) at that rate.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{bin, root, tempdir};

/// Held by the live and flood tests for their whole run: they measure loss, time and memory,
/// and two of them at once on a small machine would measure each other.
pub(crate) static EXCLUSIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    EXCLUSIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why live tests cannot run here, if they cannot.
pub(crate) fn skip_reason(tools: &[&str]) -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Some("live capture tests need root (network namespaces, veth)".into());
    }
    let ok = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(Command::new("ip").args(["netns", "list"])) {
        return Some("`ip netns` is not available (apt-get install iproute2)".into());
    }
    for t in tools {
        if !ok(Command::new("sh").args(["-c", &format!("command -v {t}")])) {
            return Some(format!(
                "{t} is missing (apt-get install tcpreplay wireshark-common)"
            ));
        }
    }
    None
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A namespace holding a veth pair: frames sent on `tx` arrive on `rx`. Dropping it deletes
/// the namespace and both veth ends.
pub(crate) struct Veth {
    pub ns: String,
    pub tx: String,
    pub rx: String,
    probe: PathBuf,
    dir: PathBuf,
    /// Probe frames sent so far (they reach crosswire too: non-IP, no events).
    pub probes: u64,
}

impl Veth {
    pub fn new(tag: &str) -> Veth {
        let pid = std::process::id();
        let dir = tempdir();
        let probe = dir.join("probe.pcap");
        write_probe(&probe);
        let v = Veth {
            ns: format!("cw{pid}{tag}"),
            tx: format!("cwt{pid}{tag}"),
            rx: format!("cwr{pid}{tag}"),
            probe,
            dir,
            probes: 0,
        };
        let _ = Command::new("ip")
            .args(["netns", "del", &v.ns])
            .stderr(Stdio::null())
            .status();
        v.setup().unwrap_or_else(|e| panic!("netns setup: {e}"));
        v
    }

    fn setup(&self) -> Result<(), String> {
        run(Command::new("ip").args(["netns", "add", &self.ns]))?;
        // No IPv6 in the namespace: the kernel would otherwise send DAD/RS frames of its own.
        for k in ["all", "default"] {
            run(self.exec("sh").args([
                "-c",
                &format!("echo 1 > /proc/sys/net/ipv6/conf/{k}/disable_ipv6"),
            ]))?;
        }
        run(Command::new("ip").args([
            "-n", &self.ns, "link", "add", &self.tx, "type", "veth", "peer", "name", &self.rx,
        ]))?;
        for d in [&self.tx, &self.rx] {
            // Bigger than the largest frame of the real captures (14196 bytes).
            run(Command::new("ip").args(["-n", &self.ns, "link", "set", d, "mtu", "65000", "up"]))?;
            // The wire's segments, not GRO's super-packets (ethtool may be absent: then the
            // veth default, GRO off, applies).
            let _ = self
                .exec("ethtool")
                .args(["-K", d, "gro", "off"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        Ok(())
    }

    /// Deletes the veth pair and makes it again under the same names (an interface that
    /// vanishes and comes back, as a USB NIC or a re-created bridge port does).
    pub fn recreate(&self) -> Result<(), String> {
        run(Command::new("ip").args(["-n", &self.ns, "link", "del", &self.tx]))?;
        std::thread::sleep(Duration::from_millis(500));
        run(Command::new("ip").args([
            "-n", &self.ns, "link", "add", &self.tx, "type", "veth", "peer", "name", &self.rx,
        ]))?;
        for d in [&self.tx, &self.rx] {
            run(Command::new("ip").args(["-n", &self.ns, "link", "set", d, "mtu", "65000", "up"]))?;
        }
        Ok(())
    }

    /// A command run inside the namespace.
    pub fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }

    /// Sends one probe frame (ethertype 0x88b5, local experimental) on `tx`.
    pub fn probe(&mut self) {
        let ok = self
            .exec("tcpreplay")
            .args(["-q", "-i", &self.tx])
            .arg(&self.probe)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            self.probes += 1;
        }
    }

    /// Frames the kernel dropped on `rx` before any packet socket saw them (softnet backlog).
    pub fn rx_dropped(&self) -> u64 {
        let p = format!("/sys/class/net/{}/statistics/rx_dropped", self.rx);
        self.exec("cat")
            .arg(p)
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A 60-byte non-IP frame that wakes the capture loop without producing events.
fn write_probe(path: &Path) {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5];
    f.extend_from_slice(b"crosswire live-test probe");
    f.resize(60, 0);
    let cap = pcap::Capture::dead(pcap::Linktype::ETHERNET).expect("dead capture");
    let mut out = cap.savefile(path).expect("probe savefile");
    let header = packet_header(1_700_000_000, 0, f.len());
    out.write(&pcap::Packet::new(&header, &f));
    out.flush().expect("flush probe");
}

/// A savefile record header (the pcap crate's `PacketHeader` holds a `libc::timeval`, which
/// this crate cannot name: start from all zeroes, a valid value of that plain C struct).
pub(crate) fn packet_header(sec: i64, usec: i64, len: usize) -> pcap::PacketHeader {
    // SAFETY: PacketHeader is a plain struct of integers (timeval, u32, u32); all-zero is valid.
    let mut h: pcap::PacketHeader = unsafe { std::mem::zeroed() };
    h.ts.tv_sec = sec as _;
    h.ts.tv_usec = usec as _;
    h.caplen = len as u32;
    h.len = len as u32;
    h
}

/// A running `crosswire capture`; killed on drop if still running.
pub(crate) struct Sensor {
    child: Child,
    pub eve: PathBuf,
    pub stderr: PathBuf,
}

impl Sensor {
    pub fn start(v: &mut Veth, dir: &Path, workers: usize) -> Sensor {
        let eve = dir.join("live.json");
        let stderr = dir.join("live.stderr");
        let child = v
            .exec(bin())
            .args(["capture", "--interface", &v.rx, "--stats-interval", "1"])
            .args(["--workers", &workers.to_string()])
            .arg("--eve")
            .arg(&eve)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start crosswire capture");
        let mut s = Sensor { child, eve, stderr };
        s.wait_ready(v);
        s
    }

    /// Capturing for sure: a periodic stats event that counted a probe frame. (Probes are
    /// also what drives the periodic stats when the interface is otherwise idle.)
    fn wait_ready(&mut self, v: &mut Veth) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "crosswire capture exited early ({st}): {}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            v.probe();
            std::thread::sleep(Duration::from_millis(300));
            let counted = read_eve(&self.eve).iter().any(|l| {
                l["event_type"] == "stats" && l["stats"]["capture"]["packets"].as_u64() >= Some(1)
            });
            if counted {
                return;
            }
        }
        panic!("crosswire capture did not report a captured probe frame within 20 s");
    }

    /// SIGTERM, then wait. Returns whether it exited by itself within `grace` on an idle
    /// interface; if not, probe frames are sent until it does (so that the rest of the test
    /// can still check its output).
    pub fn stop(&mut self, v: &mut Veth, grace: Duration) -> (std::process::ExitStatus, bool) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let t0 = Instant::now();
        while t0.elapsed() < grace {
            if let Ok(Some(st)) = self.child.try_wait() {
                return (st, true);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let t1 = Instant::now();
        while t1.elapsed() < Duration::from_secs(30) {
            v.probe();
            std::thread::sleep(Duration::from_millis(200));
            if let Ok(Some(st)) = self.child.try_wait() {
                return (st, false);
            }
        }
        let _ = self.child.kill();
        panic!("crosswire capture did not exit within 30 s of SIGTERM, even with traffic");
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every EVE line of a file (a partial last line is ignored).
pub(crate) fn read_eve(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Comparable protocol events, as a multiset, plus the last `stats` event, read line by line
/// (bench outputs are large).
pub(crate) fn eve_summary(path: &Path) -> (HashMap<String, i64>, Value) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut items: HashMap<String, i64> = HashMap::new();
    let mut stats = Value::Null;
    for line in BufReader::new(f).lines() {
        let line = line.expect("read EVE");
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad EVE line {line}: {e}"));
        if v["event_type"] == "stats" {
            stats = v;
        } else if let Some(k) = event_key(&v) {
            *items.entry(k).or_default() += 1;
        }
    }
    (items, stats)
}

/// dns: type, queries and answers; tls: SNI and JA3; http: method, host, URL, user agent;
/// each with its flow tuple. `None` for other event types.
pub(crate) fn event_key(v: &Value) -> Option<String> {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let tuple = format!(
        "{} {}:{} > {}:{}",
        s(&v["proto"]),
        s(&v["src_ip"]),
        s(&v["src_port"]),
        s(&v["dest_ip"]),
        s(&v["dest_port"])
    );
    let body = match v["event_type"].as_str()? {
        "dns" => {
            let d = &v["dns"];
            let list = |k: &str, fields: &[&str]| {
                d[k].as_array()
                    .into_iter()
                    .flatten()
                    .map(|q| {
                        fields
                            .iter()
                            .map(|f| s(&q[*f]))
                            .collect::<Vec<_>>()
                            .join("/")
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            format!(
                "dns {} q[{}] a[{}]",
                s(&d["type"]),
                list("queries", &["rrname", "rrtype"]),
                list("answers", &["rrname", "rrtype", "rdata"])
            )
        }
        "tls" => format!(
            "tls {} {}",
            s(&v["tls"]["sni"]),
            s(&v["tls"]["ja3"]["hash"])
        ),
        "http" => {
            let h = &v["http"];
            format!(
                "http {} {} {} {}",
                s(&h["http_method"]),
                s(&h["hostname"]),
                s(&h["url"]),
                s(&h["http_user_agent"])
            )
        }
        _ => return None,
    };
    Some(format!("{body} | {tuple}"))
}

/// (missing from `got`, extra in `got`), each with its count.
pub(crate) fn diff(want: &HashMap<String, i64>, got: &HashMap<String, i64>) -> (Counts, Counts) {
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    for (k, n) in want {
        let g = got.get(k).copied().unwrap_or(0);
        if g < *n {
            missing.push((k.clone(), n - g));
        }
    }
    for (k, n) in got {
        let w = want.get(k).copied().unwrap_or(0);
        if *n > w {
            extra.push((k.clone(), n - w));
        }
    }
    missing.sort();
    extra.sort();
    (missing, extra)
}

fn per_type(items: &HashMap<String, i64>) -> String {
    let mut m: HashMap<&str, i64> = HashMap::new();
    for (k, n) in items {
        *m.entry(k.split(' ').next().unwrap_or("")).or_default() += n;
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort();
    v.iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// tcpreplay's report: (successful packets, failed packets, achieved packets/s).
struct Sent {
    ok: u64,
    failed: u64,
    pps: f64,
    seconds: f64,
}

fn tcpreplay(v: &Veth, rate: &[&str], files: &[PathBuf]) -> Sent {
    let out = v
        .exec("tcpreplay")
        .args(["-i", &v.tx])
        .args(rate)
        .args(files)
        .output()
        .expect("run tcpreplay");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tcpreplay failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|r| r.trim().parse().ok())
            .unwrap_or(0)
    };
    let rated = text
        .lines()
        .find(|l| l.trim_start().starts_with("Rated:"))
        .and_then(|l| l.split(',').find(|p| p.contains("pps")))
        .and_then(|p| p.trim().trim_end_matches("pps").trim().parse().ok())
        .unwrap_or(0.0);
    let seconds = text
        .lines()
        .find(|l| l.trim_start().starts_with("Actual:"))
        .and_then(|l| l.split(" sent in ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .unwrap_or(0.0);
    Sent {
        ok: field("Successful packets:"),
        failed: field("Failed packets:"),
        pps: rated,
        seconds,
    }
}

fn is_ethernet(p: &Path) -> bool {
    pcap::Capture::from_file(p).is_ok_and(|c| c.get_datalink() == pcap::Linktype::ETHERNET)
}

fn ethernet_captures(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .filter(|p| is_ethernet(p))
        .collect();
    v.sort();
    v
}

fn stat(stats: &Value, path: &[&str]) -> u64 {
    let mut v = &stats["stats"];
    for p in path {
        v = &v[*p];
    }
    v.as_u64().unwrap_or(0)
}

/// What one live run measured.
struct Live {
    items: HashMap<String, i64>,
    stats: Value,
    sent: Sent,
    probes_before: u64,
    probes: u64,
    idle_exit: bool,
    veth_rx_dropped: u64,
}

/// Starts crosswire on `rx`, sends `files` with tcpreplay `rate`, stops crosswire and reads
/// its output.
fn live_run(tag: &str, rate: &[&str], files: &[PathBuf], dir: &Path) -> Live {
    let mut v = Veth::new(tag);
    let mut sensor = Sensor::start(&mut v, dir, 2);
    let probes_before = v.probes;
    let sent = tcpreplay(&v, rate, files);
    // Let the kernel ring and the queues drain.
    std::thread::sleep(Duration::from_secs(2));
    let (status, idle_exit) = sensor.stop(&mut v, Duration::from_secs(5));
    let stderr = std::fs::read_to_string(&sensor.stderr).unwrap_or_default();
    assert!(
        status.success(),
        "crosswire capture exited {status}: {stderr}"
    );
    let (items, stats) = eve_summary(&sensor.eve);
    assert_eq!(
        stats["stats"]["final"], true,
        "the last EVE line must be the final stats event: {stats}"
    );
    Live {
        items,
        stats,
        sent,
        probes_before,
        probes: v.probes,
        idle_exit,
        veth_rx_dropped: v.rx_dropped(),
    }
}

fn report(name: &str, l: &Live) {
    let s = &l.stats;
    println!(
        "{name}: sent {} packets in {:.2} s ({:.0} pps, {} failed) + {} probe frames; \
         veth rx_dropped {} (includes frames the namespace's stack discards after capture)",
        l.sent.ok, l.sent.seconds, l.sent.pps, l.sent.failed, l.probes, l.veth_rx_dropped
    );
    println!(
        "{name}: crosswire packets {} kernel_packets {} kernel_drops {} kernel_ifdrops {} \
         queue_drop_packets {} flow.evicted {} max_rss {} KiB",
        stat(s, &["capture", "packets"]),
        stat(s, &["capture", "kernel_packets"]),
        stat(s, &["capture", "kernel_drops"]),
        stat(s, &["capture", "kernel_ifdrops"]),
        stat(s, &["capture", "queue_drop_packets"]),
        stat(s, &["flow", "evicted"]),
        stat(s, &["memory", "max_rss_kib"]),
    );
    println!(
        "{name}: events {}; latency_us p50 {} p99 {} p999 {} max {}",
        per_type(&l.items),
        stat(s, &["latency_us", "p50"]),
        stat(s, &["latency_us", "p99"]),
        stat(s, &["latency_us", "p999"]),
        stat(s, &["latency_us", "max"]),
    );
}

/// Event keys with how often they occur.
type Counts = Vec<(String, i64)>;

/// The checks both live tests make. `tolerance` is the share of packets that may be lost and of
/// events that may differ from the replay: 0 for the moderate-rate test. The 200 k/s test allows
/// 0.1% (issue 7's "highest rate with under 0.1% loss"): on these shared 2-core machines
/// tcpreplay takes one core, and flows whose 5-tuples repeat across the bench capture's copies
/// can decode differently when live timestamps differ from the file's. Zero loss at 200 k/s is
/// what the closing notes report when measured on a quiet machine.
fn check(name: &str, l: &Live, replayed: &HashMap<String, i64>, tolerance: f64) {
    let s = &l.stats;
    let (missing, extra) = diff(replayed, &l.items);
    for (k, n) in missing.iter().take(10) {
        println!("{name}: missing live {n}x {k}");
    }
    for (k, n) in extra.iter().take(10) {
        println!("{name}: extra live   {n}x {k}");
    }
    let mut problems = Vec::new();
    if l.sent.failed > 0 {
        problems.push(format!(
            "tcpreplay failed to send {} packets",
            l.sent.failed
        ));
    }
    let lost = stat(s, &["capture", "kernel_drops"]) + stat(s, &["capture", "queue_drop_packets"]);
    let allowed_loss = (l.sent.ok as f64 * tolerance) as u64;
    if lost > allowed_loss {
        problems.push(format!(
            "kernel_drops {} + queue_drop_packets {} exceed {allowed_loss}",
            stat(s, &["capture", "kernel_drops"]),
            stat(s, &["capture", "queue_drop_packets"])
        ));
    }
    let captured = stat(s, &["capture", "packets"]);
    if captured + allowed_loss < l.sent.ok + l.probes_before {
        problems.push(format!(
            "crosswire saw {captured} packets, {} were sent (+{} probes)",
            l.sent.ok, l.probes_before
        ));
    }
    let differing: i64 =
        missing.iter().map(|m| m.1).sum::<i64>() + extra.iter().map(|m| m.1).sum::<i64>();
    let total: i64 = replayed.values().sum();
    if differing as f64 > total as f64 * tolerance {
        problems.push(format!(
            "live events differ from replay: {} missing, {} extra (live {} / replay {})",
            missing.iter().map(|m| m.1).sum::<i64>(),
            extra.iter().map(|m| m.1).sum::<i64>(),
            per_type(&l.items),
            per_type(replayed)
        ));
    }
    if !l.idle_exit {
        problems.push(
            "crosswire capture did not exit within 5 s of SIGTERM while the interface was idle \
             (it only stopped after more frames arrived): pcap_next_ex keeps re-polling its 1 ms timeout inside libpcap and never returns to the capture loop"
                .into(),
        );
    }
    assert!(problems.is_empty(), "{name}: {}", problems.join("; "));
}

fn replay_items(files: &[PathBuf], dir: &Path) -> (HashMap<String, i64>, Value) {
    let eve = dir.join("replay.json");
    let out = Command::new(bin())
        .arg("replay")
        .args(files)
        .args(["--workers", "2", "--eve"])
        .arg(&eve)
        .output()
        .expect("run crosswire replay");
    assert!(
        out.status.success(),
        "crosswire replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eve_summary(&eve)
}

#[test]
fn live_capture_matches_replay() {
    let _one_at_a_time = exclusive();
    if let Some(why) = skip_reason(&["tcpreplay"]) {
        println!("SKIPPED: {why}");
        return;
    }
    let mut files = ethernet_captures(&root().join("captures"));
    let shared = root().join("../shared/captures/real");
    if shared.is_dir() {
        files.extend(ethernet_captures(&shared));
    }
    if files.is_empty() {
        println!("SKIPPED: no Ethernet captures in captures/ or ../shared/captures/real");
        return;
    }
    let dir = tempdir();
    let live = live_run("m", &["--pps", "5000"], &files, &dir);
    report("live_capture_matches_replay", &live);
    let (replayed, _) = replay_items(&files, &dir);
    println!(
        "live_capture_matches_replay: {} files; replay events {}",
        files.len(),
        per_type(&replayed)
    );
    check("live_capture_matches_replay", &live, &replayed, 0.0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An interface that vanishes mid-capture and comes back: the capture reopens it by itself,
/// counts the error and the reopen, and what is sent afterwards is captured as before.
#[test]
fn capture_survives_interface_recreated() {
    let _one_at_a_time = exclusive();
    if let Some(why) = skip_reason(&["tcpreplay"]) {
        println!("SKIPPED: {why}");
        return;
    }
    let demo = root().join("captures/demo.pcap");
    let dir = tempdir();
    let mut v = Veth::new("r");
    let mut sensor = Sensor::start(&mut v, &dir, 1);
    tcpreplay(&v, &["--pps", "1000"], std::slice::from_ref(&demo));
    v.recreate()
        .unwrap_or_else(|e| panic!("recreate veth: {e}"));
    // Reopen attempts back off to 2 s at most; wait until a probe is counted again.
    let before = stat(&last_stats(&sensor.eve), &["capture", "packets"]);
    let t0 = Instant::now();
    loop {
        v.probe();
        std::thread::sleep(Duration::from_millis(300));
        let now = stat(&last_stats(&sensor.eve), &["capture", "packets"]);
        if now > before {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no packet captured within 20 s of the interface coming back: {}",
            std::fs::read_to_string(&sensor.stderr).unwrap_or_default()
        );
    }
    // Other flows than before (the same TCP flows again would be retransmissions).
    let after = root().join("captures/http.pcap");
    tcpreplay(&v, &["--pps", "1000"], std::slice::from_ref(&after));
    std::thread::sleep(Duration::from_secs(2));
    let (status, _) = sensor.stop(&mut v, Duration::from_secs(5));
    assert!(status.success(), "crosswire capture exited {status}");
    let (items, stats) = eve_summary(&sensor.eve);
    let (mut expected, _) = replay_items(std::slice::from_ref(&demo), &dir);
    let dir2 = tempdir();
    for (k, n) in replay_items(std::slice::from_ref(&after), &dir2).0 {
        *expected.entry(k).or_default() += n;
    }
    println!(
        "capture_survives_interface_recreated: read_errors {}, reopens {}, events {}",
        stat(&stats, &["capture", "read_errors"]),
        stat(&stats, &["capture", "reopens"]),
        per_type(&items)
    );
    assert!(stat(&stats, &["capture", "read_errors"]) >= 1, "{stats}");
    assert!(stat(&stats, &["capture", "reopens"]) >= 1, "{stats}");
    assert_eq!(
        items, expected,
        "what was sent before and after the interface vanished is all captured"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

fn last_stats(eve: &Path) -> Value {
    read_eve(eve)
        .into_iter()
        .rev()
        .find(|l| l["event_type"] == "stats")
        .unwrap_or(Value::Null)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Packets in a capture file.
pub(crate) fn count_packets(p: &Path) -> u64 {
    let mut c = pcap::Capture::from_file(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut n = 0;
    while c.next_packet().is_ok() {
        n += 1;
    }
    n
}

/// The bench capture with at least `want` packets if it can be built, else whatever exists.
pub(crate) fn bench_capture(want: u64) -> Result<PathBuf, String> {
    let bench = root().join("target/bench/bench.pcap");
    if root().join("../shared/captures/real").is_dir() {
        let st = Command::new(root().join("scripts/make-bench-capture.sh"))
            .arg(&bench)
            .env("BENCH_PACKETS", want.to_string())
            .status()
            .map_err(|e| format!("make-bench-capture.sh: {e}"))?;
        if !st.success() {
            return Err(format!("make-bench-capture.sh failed: {st}"));
        }
    }
    if bench.is_file() {
        Ok(bench)
    } else {
        Err(format!(
            "{} is missing and ../shared/captures/real is absent to build it from",
            bench.display()
        ))
    }
}

#[test]
fn live_rate_no_loss() {
    let _one_at_a_time = exclusive();
    if let Some(why) = skip_reason(&["tcpreplay", "editcap"]) {
        println!("SKIPPED: {why}");
        return;
    }
    let pps = env_u64("CW_LIVE_PPS", 200_000);
    let seconds = env_u64("CW_LIVE_SECONDS", 20);
    let want = pps * seconds;
    let bench = match bench_capture(want) {
        Ok(b) => b,
        Err(why) => {
            println!("SKIPPED: {why}");
            return;
        }
    };
    let total = count_packets(&bench);
    let n = want.min(total);
    let dir = tempdir();
    // The exact packets tcpreplay sends, for the replay comparison.
    let sent_file = if n < total {
        let p = dir.join("prefix.pcap");
        run(Command::new("editcap")
            .arg("-r")
            .arg(&bench)
            .arg(&p)
            .arg(format!("1-{n}")))
        .unwrap_or_else(|e| panic!("{e}"));
        p
    } else {
        bench.clone()
    };
    let name = "live_rate_no_loss";
    println!("{name}: {n} packets of {} at {pps} pps", bench.display());
    let pps_s = pps.to_string();
    let n_s = n.to_string();
    let live = live_run(
        "r",
        &["--pps", &pps_s, "--limit", &n_s],
        std::slice::from_ref(&bench),
        &dir,
    );
    report(name, &live);
    let t0 = Instant::now();
    let (replayed, _) = replay_items(&[sent_file], &dir);
    println!(
        "{name}: replay of the {n} packets: {} in {:.1} s",
        per_type(&replayed),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(
        live.sent.ok, n,
        "tcpreplay sent {} of {n} packets",
        live.sent.ok
    );
    check(name, &live, &replayed, 0.001);
    let _ = std::fs::remove_dir_all(&dir);
}
