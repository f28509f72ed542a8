//! Whole-pipeline replay throughput next to a plain libpcap read loop over the same file,
//! measured in the same run (absolute times on shared machines are noisy; the ratio is the
//! figure that matters).
//!
//! `cargo bench --bench pipeline -- [CAPTURE...]`; without arguments it uses the largest real
//! captures in ../shared/captures/real, or the project's own captures.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crosswire::config::Config;
use crosswire::pipeline;

/// The allocator the crosswire binary uses, so that the bench measures what ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the figures `fs` in rounds (each once per round, in turn) until every one has run at
/// least `MIN_RUNS` times and for at least `min` in all, and returns each one's best (fastest)
/// packets/s. Every figure (the floor included) is measured the same way. Taking turns puts
/// every figure under the same conditions: a burst of other work on a shared machine slows a
/// round or two of each, not all the runs of one, and the best run of each is the one least
/// disturbed.
fn measure<const N: usize>(min: Duration, packets: u64, mut fs: [&mut dyn FnMut(); N]) -> [f64; N] {
    const MIN_RUNS: u32 = 5;
    let mut best = [f64::MAX; N];
    let mut spent = [Duration::ZERO; N];
    let mut rounds = 0;
    while rounds < MIN_RUNS || spent.iter().any(|&s| s < min) {
        for ((f, b), s) in fs.iter_mut().zip(&mut best).zip(&mut spent) {
            let t = Instant::now();
            f();
            let d = t.elapsed();
            *b = b.min(d.as_secs_f64());
            *s += d;
        }
        rounds += 1;
    }
    best.map(|b| packets as f64 / b)
}

/// The floor: libpcap reading every packet and touching its bytes.
fn libpcap_loop(path: &Path) -> (u64, u64) {
    let mut cap = pcap::Capture::from_file(path).expect("open capture");
    let (mut n, mut sum) = (0u64, 0u64);
    while let Ok(p) = cap.next_packet() {
        n += 1;
        sum =
            sum.wrapping_add(u64::from(p.data.first().copied().unwrap_or(0)) + p.data.len() as u64);
    }
    (n, sum)
}

fn crosswire_replay(path: &Path, workers: usize) -> u64 {
    let cfg = Config {
        workers,
        ..Config::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let s = pipeline::replay(
        &cfg,
        &[path.to_path_buf()],
        Box::new(std::io::sink()),
        &stop,
    );
    s.output.events.values().sum()
}

/// tshark decoding the same protocols (fields of DNS, TLS ClientHello and HTTP requests, written
/// to /dev/null), over at most `TSHARK_PACKETS` packets of `path` (tshark is two orders of
/// magnitude slower; a prefix keeps the bench short). `None` when tshark is not installed.
fn tshark_pps(path: &Path, packets: u64) -> Option<f64> {
    const TSHARK_PACKETS: u64 = 100_000;
    let n = packets.min(TSHARK_PACKETS);
    let t = Instant::now();
    let status = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args(["-c", &n.to_string(), "-T", "fields"])
        .args([
            "-e",
            "dns.qry.name",
            "-e",
            "tls.handshake.extensions_server_name",
        ])
        .args(["-e", "http.host", "-e", "http.request.uri"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    status
        .success()
        .then(|| n as f64 / t.elapsed().as_secs_f64())
}

fn default_inputs() -> Vec<PathBuf> {
    let real = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/captures/real");
    let bench = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench/bench.pcap");
    if bench.exists() {
        return vec![bench];
    }
    if real.is_dir() {
        return [
            "zeek-http-gre-aruba-80211.pcap",
            "zeek-http-methods.pcap",
            "zeek-wikipedia-dns-http.pcap",
        ]
        .iter()
        .map(|f| real.join(f))
        .filter(|p| p.exists())
        .collect();
    }
    vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/demo.pcap")]
}

fn main() {
    let args: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let inputs = if args.is_empty() {
        default_inputs()
    } else {
        args
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let min = Duration::from_secs(3);
    println!(
        "{:<40} {:>9} {:>13} {:>13} {:>7} {:>13} {:>7}",
        "capture", "packets", "libpcap pps", "1 worker pps", "ratio", "all pps", "ratio"
    );
    for path in inputs {
        let (packets, _) = libpcap_loop(&path);
        if packets == 0 {
            eprintln!("{}: no packets", path.display());
            continue;
        }
        let mut floor_run = || {
            std::hint::black_box(libpcap_loop(&path));
        };
        let mut one_run = || {
            std::hint::black_box(crosswire_replay(&path, 1));
        };
        let mut all_run = || {
            std::hint::black_box(crosswire_replay(&path, cores));
        };
        let [floor, one, all] = measure(min, packets, [&mut floor_run, &mut one_run, &mut all_run]);
        println!(
            "{:<40} {:>9} {:>13.0} {:>13.0} {:>7.3} {:>13.0} {:>7.3}",
            path.file_name().and_then(|f| f.to_str()).unwrap_or("?"),
            packets,
            floor,
            one,
            one / floor,
            all,
            all / floor
        );
        match tshark_pps(&path, packets) {
            Some(t) => println!(
                "{:<40} {:>9} {:>13} {:>13.0} {:>7.4}   (tshark, DNS/TLS/HTTP fields, first packets)",
                "  peer: tshark",
                packets.min(100_000),
                "",
                t,
                t / floor
            ),
            None => println!("  peer: tshark not installed, not measured"),
        }
    }
}
