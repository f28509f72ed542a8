//! TOML configuration: the raw file shape (every key documented, unknown keys rejected) and its
//! validation into the settings the pipeline runs with. `crosswire check-config` runs exactly
//! this and names the bad key and why.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::decode::defrag;
use crate::flow;

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {why}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        why: String,
    },
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// Where packets come from.
    #[serde(default)]
    pub capture: RawCapture,
    /// Threads and queues.
    #[serde(default)]
    pub pipeline: RawPipeline,
    /// Where events go.
    #[serde(default)]
    pub output: RawOutput,
    /// Flow table limits and timeouts (packet time).
    #[serde(default)]
    pub flow: RawFlow,
    /// IP fragment reassembly limits.
    #[serde(default)]
    pub defrag: RawDefrag,
    /// Persistent state: directory and store bounds (see `intel::config`).
    #[serde(default)]
    pub state: crate::intel::config::RawState,
    /// The monitored network: which addresses are devices.
    #[serde(default)]
    pub network: crate::intel::config::RawNetwork,
    /// Domain intelligence: feeds, lists, thresholds, weights.
    #[serde(default)]
    pub intel: crate::intel::config::RawIntel,
    /// Running as a service: privileges, metrics endpoint.
    #[serde(default)]
    pub service: RawService,
    /// SaaS and email records: sources and model tunables.
    #[serde(default)]
    pub saas: crate::ingest::config::RawSaas,
    /// Incidents: join window, opening thresholds, device/user table.
    #[serde(default)]
    pub correlate: crate::ingest::config::RawCorrelate,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// When started as root: the user (and its group) to switch to once the capture is open;
    /// all capabilities are dropped with it.
    pub user: Option<String>,
    /// Keep running as root when no `user` is set. Default false: refuse.
    pub allow_root: Option<bool>,
    /// Address of the Prometheus `/metrics` and `/health` endpoint, e.g. "127.0.0.1:9187".
    /// Absent: no endpoint.
    pub metrics_listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapture {
    /// Live capture interface (e.g. "eth1"). Exactly one of `interface` and `files`.
    pub interface: Option<String>,
    /// Capture files or directories to replay instead of a live interface.
    pub files: Option<Vec<PathBuf>>,
    /// BPF filter expression applied in libpcap.
    pub bpf: Option<String>,
    /// Kernel capture buffer in MiB (live). Default 64.
    pub buffer_mib: Option<u32>,
    /// Snapshot length in bytes (live). Default 65535.
    pub snaplen: Option<u32>,
    /// Promiscuous mode (live). Default true.
    pub promiscuous: Option<bool>,
    /// Replay speed: "max", "realtime" or a factor such as "2.5". Default "max".
    pub speed: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// Worker threads; 0 or absent means one per core.
    pub workers: Option<usize>,
    /// Batches each worker queue holds before the capture thread waits (replay) or drops (live).
    pub queue_batches: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// EVE JSON output: a file path, "-" for stdout, or "syslog" for RFC 5424 messages over
    /// the unix socket `syslog_socket`. Default "-".
    pub eve: Option<String>,
    /// Rotate the EVE file when it would grow past this size, e.g. "512MiB" or a byte count;
    /// "0" or absent: never (SIGHUP reopens it for logrotate either way).
    pub rotate_size: Option<String>,
    /// Rotated files kept (`eve.json.1` .. `eve.json.N`). Default 5.
    pub rotate_keep: Option<u32>,
    /// Unix datagram socket of the local syslog daemon for `eve = "syslog"`. Default "/dev/log".
    pub syslog_socket: Option<PathBuf>,
    /// Interval between `stats` events while capturing live, e.g. "30s". Default "30s".
    pub stats_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlow {
    /// Flows tracked at once across all workers. Default 131072 (about 300 bytes each).
    pub max_flows: Option<usize>,
    /// Idle timeout of a TCP flow. Default "300s".
    pub tcp_timeout: Option<String>,
    /// Idle timeout of a UDP flow. Default "30s".
    pub udp_timeout: Option<String>,
    /// Time a closed (FIN/RST) TCP flow is kept. Default "5s".
    pub closed_timeout: Option<String>,
    /// Bytes of one TCP direction handed to the decoders. Default 4194304.
    pub max_inspect_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefrag {
    /// Datagrams under reassembly at once, per worker. Default 4096.
    pub max_datagrams: Option<usize>,
    /// Time a partial datagram waits for its missing fragments. Default "30s".
    pub timeout: Option<String>,
}

/// Replay pacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    Max,
    /// Packets are released at `factor` times their recorded pace (1.0 = realtime).
    Factor(f64),
}

impl Speed {
    pub fn parse(s: &str) -> Result<Speed, String> {
        match s {
            "max" => Ok(Speed::Max),
            "realtime" => Ok(Speed::Factor(1.0)),
            other => match other.parse::<f64>() {
                Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
                _ => Err(format!(
                    "`{other}` is not max, realtime or a positive factor"
                )),
            },
        }
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub interface: Option<String>,
    pub files: Vec<PathBuf>,
    pub bpf: Option<String>,
    pub buffer_bytes: i32,
    pub snaplen: i32,
    pub promiscuous: bool,
    pub speed: Speed,
    pub workers: usize,
    pub queue_batches: usize,
    pub eve: String,
    /// `[output] rotate_size` in bytes (0: never) and `rotate_keep`.
    pub rotate_bytes: u64,
    pub rotate_keep: u32,
    /// `[output] syslog_socket`.
    pub syslog_socket: PathBuf,
    pub stats_interval: Duration,
    pub flow: flow::Limits,
    pub defrag: defrag::Limits,
    /// `[state] dir`; `None` means the command's default.
    pub state_dir: Option<PathBuf>,
    /// `[service] user`.
    pub service_user: Option<String>,
    /// `[service] allow_root`.
    pub allow_root: bool,
    /// `[service] metrics_listen`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `[network]`, `[intel]`, `[saas]` and `[correlate]` settings, validated.
    pub intel: crate::intel::Settings,
    /// `[saas]` sources to start in service mode.
    pub saas: crate::ingest::config::Sources,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interface: None,
            files: Vec::new(),
            bpf: None,
            buffer_bytes: 64 << 20,
            snaplen: 65535,
            promiscuous: true,
            speed: Speed::Max,
            workers: default_workers(),
            queue_batches: 32,
            eve: "-".into(),
            rotate_bytes: 0,
            rotate_keep: 5,
            syslog_socket: PathBuf::from("/dev/log"),
            stats_interval: Duration::from_secs(30),
            flow: flow::Limits {
                max_flows: 131_072,
                ..flow::Limits::default()
            },
            defrag: defrag::Limits::default(),
            state_dir: None,
            service_user: None,
            allow_root: false,
            metrics_listen: None,
            intel: crate::intel::Settings::default(),
            saas: Default::default(),
        }
    }
}

pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn duration(path: &Path, key: &'static str, v: &Option<String>) -> Result<Option<Duration>, Error> {
    match v {
        None => Ok(None),
        Some(s) => humantime::parse_duration(s)
            .map(Some)
            .map_err(|e| Error::Invalid {
                path: path.to_owned(),
                key,
                why: format!("`{s}` is not a duration like \"30s\" or \"5m\": {e}"),
            }),
    }
}

/// Reads and validates a configuration file.
/// Parses a size: a byte count, or a number with a unit (K, KiB, KB, M, MiB, MB, G, GiB, GB:
/// all binary multiples).
pub fn parse_size(v: &str) -> Result<u64, String> {
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{v:?} is not a size such as \"512MiB\""))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        u => return Err(format!("unknown size unit {u:?} in {v:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{v:?} is too large"))
}

pub fn load(path: &Path) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    from_str(path, &text)
}

/// Validates configuration text; `path` names it in messages.
pub fn from_str(path: &Path, text: &str) -> Result<Config, Error> {
    let raw: Raw = toml::from_str(text).map_err(|e| Error::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let invalid = |key: &'static str, why: String| Error::Invalid {
        path: path.to_owned(),
        key,
        why,
    };
    let mut c = Config::default();
    let cap = raw.capture;
    match (&cap.interface, &cap.files) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "capture.files",
                "give either capture.interface or capture.files, not both".into(),
            ));
        }
        (Some(i), None) if i.is_empty() => {
            return Err(invalid("capture.interface", "is empty".into()));
        }
        (None, Some(f)) if f.is_empty() => {
            return Err(invalid("capture.files", "is an empty list".into()));
        }
        _ => {}
    }
    c.interface = cap.interface;
    c.files = cap.files.unwrap_or_default();
    c.bpf = cap.bpf.filter(|b| !b.trim().is_empty());
    if let Some(b) = cap.buffer_mib {
        if !(1..=2047).contains(&b) {
            return Err(invalid(
                "capture.buffer_mib",
                format!("{b} is not within 1..=2047"),
            ));
        }
        c.buffer_bytes = (b as i32) << 20;
    }
    if let Some(s) = cap.snaplen {
        if !(64..=262_144).contains(&s) {
            return Err(invalid(
                "capture.snaplen",
                format!("{s} is not within 64..=262144"),
            ));
        }
        c.snaplen = s as i32;
    }
    if let Some(p) = cap.promiscuous {
        c.promiscuous = p;
    }
    if let Some(s) = &cap.speed {
        c.speed = Speed::parse(s).map_err(|why| invalid("capture.speed", why))?;
    }
    match raw.pipeline.workers {
        Some(0) | None => {}
        Some(n) if n > 256 => {
            return Err(invalid("pipeline.workers", format!("{n} is more than 256")));
        }
        Some(n) => c.workers = n,
    }
    if let Some(q) = raw.pipeline.queue_batches {
        if !(1..=65_536).contains(&q) {
            return Err(invalid(
                "pipeline.queue_batches",
                format!("{q} is not within 1..=65536"),
            ));
        }
        c.queue_batches = q;
    }
    if let Some(e) = raw.output.eve {
        if e.is_empty() {
            return Err(invalid(
                "output.eve",
                "is empty (use \"-\" for stdout)".into(),
            ));
        }
        c.eve = e;
    }
    if let Some(v) = &raw.output.rotate_size {
        c.rotate_bytes = parse_size(v).map_err(|why| invalid("output.rotate_size", why))?;
        if c.rotate_bytes != 0 && c.rotate_bytes < 4096 {
            return Err(invalid(
                "output.rotate_size",
                "must be 0 (never) or at least 4KiB".into(),
            ));
        }
    }
    if let Some(k) = raw.output.rotate_keep {
        if !(1..=1000).contains(&k) {
            return Err(invalid(
                "output.rotate_keep",
                format!("{k} is not within 1..=1000"),
            ));
        }
        c.rotate_keep = k;
    }
    if let Some(s) = raw.output.syslog_socket {
        if s.as_os_str().is_empty() {
            return Err(invalid("output.syslog_socket", "is empty".into()));
        }
        c.syslog_socket = s;
    }
    if let Some(d) = duration(path, "output.stats_interval", &raw.output.stats_interval)? {
        if d < Duration::from_secs(1) {
            return Err(invalid(
                "output.stats_interval",
                "must be at least 1s".into(),
            ));
        }
        c.stats_interval = d;
    }
    let f = raw.flow;
    if let Some(m) = f.max_flows {
        if !(1..=100_000_000).contains(&m) {
            return Err(invalid(
                "flow.max_flows",
                format!("{m} is not within 1..=100000000"),
            ));
        }
        c.flow.max_flows = m;
    }
    let us = |d: Duration| d.as_micros().min(u128::from(u64::MAX)) as u64;
    if let Some(d) = duration(path, "flow.tcp_timeout", &f.tcp_timeout)? {
        c.flow.tcp_timeout_us = us(d);
    }
    if let Some(d) = duration(path, "flow.udp_timeout", &f.udp_timeout)? {
        c.flow.udp_timeout_us = us(d);
    }
    if let Some(d) = duration(path, "flow.closed_timeout", &f.closed_timeout)? {
        c.flow.closed_timeout_us = us(d);
    }
    if let Some(b) = f.max_inspect_bytes {
        if b < 1024 {
            return Err(invalid(
                "flow.max_inspect_bytes",
                format!("{b} is below 1024"),
            ));
        }
        c.flow.max_inspect = b;
    }
    if let Some(m) = raw.defrag.max_datagrams {
        if !(1..=1_000_000).contains(&m) {
            return Err(invalid(
                "defrag.max_datagrams",
                format!("{m} is not within 1..=1000000"),
            ));
        }
        c.defrag.max_datagrams = m;
    }
    if let Some(d) = duration(path, "defrag.timeout", &raw.defrag.timeout)? {
        c.defrag.timeout_us = us(d);
    }
    (c.intel, c.state_dir) =
        crate::intel::config::validate(path, raw.state, raw.network, raw.intel)?;
    c.saas = crate::ingest::config::validate(path, raw.saas, raw.correlate, &mut c.intel)?;
    let svc = raw.service;
    if let Some(u) = svc.user {
        if u.is_empty() || u.contains(|ch: char| ch.is_whitespace() || ch == ':' || ch == '/') {
            return Err(invalid("service.user", format!("`{u}` is not a user name")));
        }
        c.service_user = Some(u);
    }
    c.allow_root = svc.allow_root.unwrap_or(false);
    if let Some(a) = svc.metrics_listen {
        let addr = a.parse::<std::net::SocketAddr>().map_err(|e| {
            invalid(
                "service.metrics_listen",
                format!("`{a}` is not an address like \"127.0.0.1:9187\": {e}"),
            )
        })?;
        c.metrics_listen = Some(addr);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, Error> {
        from_str(Path::new("test.toml"), text)
    }

    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../systemd/crosswire.toml");
        let c = check(text).expect("shipped example config must validate");
        assert_eq!(c.interface.as_deref(), Some("eth1"));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = check("[capture]\ninterfce = \"eth0\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("interfce"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = check("[flow]\ntcp_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("flow.tcp_timeout"), "{e}");
        let e = check("[capture]\nspeed = \"-2\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("capture.speed"), "{e}");
        let e = check("[capture]\ninterface = \"a\"\nfiles = [\"b\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("capture.files"), "{e}");
        let e = check("[pipeline]\nworkers = \"two\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("workers"), "{e}");
    }

    #[test]
    fn intel_sections_validate() {
        let c = check(
            "[state]\ndir = \"/tmp/x\"\n[network]\nhome_net = [\"10.20.0.0/16\"]\n\
             [intel]\nlearning_period = \"2d\"\nbrands = [\"Microsoft\"]\nbreach_threshold = 70\n\
             [intel.weights]\nrisky_tld = 5\n",
        )
        .unwrap();
        assert_eq!(c.state_dir.as_deref(), Some(Path::new("/tmp/x")));
        assert_eq!(c.intel.learning_period_us, 2 * 86_400_000_000);
        assert_eq!(c.intel.brands, ["microsoft"]);
        assert_eq!(c.intel.breach_threshold, 70);
        assert_eq!(c.intel.weights.risky_tld, 5);
        assert!(c.intel.home_net.contains("10.20.1.1".parse().unwrap()));
        assert!(!c.intel.home_net.contains("192.168.1.1".parse().unwrap()));
        for (text, key) in [
            (
                "[network]\nhome_net = [\"10.0.0.0/40\"]\n",
                "network.home_net",
            ),
            (
                "[intel]\nlearning_period = \"a week\"\n",
                "intel.learning_period",
            ),
            (
                "[intel]\nbreach_threshold = 300\n",
                "intel.breach_threshold",
            ),
            (
                "[intel]\nregistration_feeds = [\"/nonexistent/nrd.csv\"]\n",
                "intel.registration_feeds",
            ),
            ("[intel]\nrdap_url = \"ftp://x\"\n", "intel.rdap_url"),
            ("[intel]\nbrands = [\"not a domain\"]\n", "intel.brands"),
            ("[intel.weights]\ndga = 1000\n", "intel.weights.dga"),
            ("[state]\nmax_domains = 5\n", "state.max_domains"),
            ("[intel]\nrare_max_share = 2.0\n", "intel.rare_max_share"),
            ("[intel]\nlearning_perod = \"7d\"\n", "learning_perod"),
        ] {
            let e = check(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn service_keys_validate() {
        let c = check("[service]\nuser = \"crosswire\"\nmetrics_listen = \"127.0.0.1:9187\"\n")
            .unwrap();
        assert_eq!(c.service_user.as_deref(), Some("crosswire"));
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9187".parse().unwrap()));
        let e = check("[service]\nmetrics_listen = \"localhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("service.metrics_listen"), "{e}");
        let e = check("[service]\nuser = \"a b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("service.user"), "{e}");
    }

    #[test]
    fn saas_and_correlate_keys_validate() {
        let c = check(
            "[saas]\nfiles = [\"/var/lib/crosswire/saas\"]\nlearning_period = \"3d\"\ncountry_window = \"14d\"\n\
             [correlate]\nwindow = \"24h\"\nopen_risk = 120\ndevices_csv = \"/etc/crosswire/devices.csv\"\n",
        )
        .unwrap();
        assert_eq!(c.saas.files, vec![PathBuf::from("/var/lib/crosswire/saas")]);
        assert_eq!(c.intel.saas.learning_period_us, 3 * 86_400_000_000);
        assert_eq!(c.intel.saas.country_window_us, 14 * 86_400_000_000);
        assert_eq!(c.intel.correlate.window_us, 24 * 3_600_000_000);
        assert_eq!(c.intel.correlate.open_risk, 120);
        assert_eq!(
            c.intel.devices_csv,
            Some(PathBuf::from("/etc/crosswire/devices.csv"))
        );
        for (text, key) in [
            (
                "[saas]\nlearning_period = \"soon\"\n",
                "saas.learning_period",
            ),
            ("[saas]\nfiles = 3\n", "files"),
            ("[saas]\nwebhok = 1\n", "webhok"),
            (
                "[correlate]\nstrong_score = 101\n",
                "correlate.strong_score",
            ),
            ("[correlate]\nwindow = \"1s\"\n", "correlate.window"),
            (
                "[saas.poller]\ntenant = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"/x\"\ninterval = \"1s\"\n",
                "saas.poller",
            ),
        ] {
            let e = check(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn output_keys_validate() {
        let c = check("[output]\neve = \"/var/log/crosswire/eve.json\"\nrotate_size = \"512MiB\"\nrotate_keep = 3\n").unwrap();
        assert_eq!(c.rotate_bytes, 512 << 20);
        assert_eq!(c.rotate_keep, 3);
        let c =
            check("[output]\neve = \"syslog\"\nsyslog_socket = \"/run/syslog.sock\"\n").unwrap();
        assert_eq!(c.syslog_socket, PathBuf::from("/run/syslog.sock"));
        for (text, key) in [
            (
                "[output]\nrotate_size = \"12 parsecs\"\n",
                "output.rotate_size",
            ),
            ("[output]\nrotate_size = \"100\"\n", "output.rotate_size"),
            ("[output]\nrotate_keep = 0\n", "output.rotate_keep"),
        ] {
            let e = check(text).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn durations_parse() {
        let c = check("[flow]\ntcp_timeout = \"2m\"\nudp_timeout = \"10s\"\n").unwrap();
        assert_eq!(c.flow.tcp_timeout_us, 120_000_000);
        assert_eq!(c.flow.udp_timeout_us, 10_000_000);
    }
}
