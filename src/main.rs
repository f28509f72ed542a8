//! crosswire command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crosswire::capture::{StopFlag, live};

use crosswire::config::{self, Config, Speed};
use crosswire::intel::{self, Analyzer};
use crosswire::pipeline::{self, Pipeline, Summary};

/// mimalloc: events are allocated on worker threads and freed on the output thread; glibc's
/// per-thread arenas spent a tenth of the worker's time on that pattern.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "crosswire",
    version,
    about = "Network sensor: DNS, TLS and HTTP events as EVE JSON"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Replay pcap/pcapng files or directories of them (read in name order).
    Replay {
        /// Capture files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// EVE JSON output file, or "-" for stdout.
        #[arg(long, default_value = "-")]
        eve: String,
        /// Worker threads (default: one per core).
        #[arg(long)]
        workers: Option<usize>,
        /// BPF filter expression.
        #[arg(long)]
        bpf: Option<String>,
        /// Pacing: max, realtime, or a factor (2 = twice as fast as recorded).
        #[arg(long, default_value = "max")]
        speed: String,
        /// Configuration file (limits, timeouts); command-line options override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// State directory (domain history); overrides `[state] dir`. Default ./crosswire-state.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Protocol events only: no domain intelligence, no state directory.
        #[arg(long)]
        no_intel: bool,
        /// Microsoft 365 / Entra ID audit records (NDJSON, JSON, CSV exports; files or
        /// directories), merged with the packets in event-time order.
        #[arg(long, num_args = 1..)]
        saas: Vec<PathBuf>,
        /// Email records (Defender for Office 365 rows, message trace), merged likewise.
        #[arg(long, num_args = 1..)]
        email: Vec<PathBuf>,
    },
    /// Capture live from an interface until SIGINT/SIGTERM.
    Capture {
        #[arg(long, short)]
        interface: String,
        #[arg(long, default_value = "-")]
        eve: String,
        #[arg(long)]
        workers: Option<usize>,
        #[arg(long)]
        bpf: Option<String>,
        /// Kernel capture buffer in MiB.
        #[arg(long, default_value_t = 64)]
        buffer_mib: u32,
        /// Seconds between periodic stats events.
        #[arg(long)]
        stats_interval: Option<u64>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// State directory (domain history); overrides `[state] dir`. Default ./crosswire-state.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Service mode: sources and outputs from a TOML configuration file.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// State directory; overrides `[state] dir`. Default /var/lib/crosswire.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Seed the domain history from past captures or EVE JSON logs (no breaches are written).
    Learn {
        /// Capture files, EVE JSON files, or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// State directory; overrides `[state] dir`. Default ./crosswire-state.
        #[arg(long)]
        state: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Validate a configuration file; exits non-zero naming the bad key and why.
    CheckConfig { file: PathBuf },
    /// List the incidents in a state directory (works while the sensor runs).
    Incidents {
        /// State directory; overrides `[state] dir`. Default ./crosswire-state.
        #[arg(long)]
        state: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// One JSON object per incident instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write one incident as a self-contained HTML page (timeline, entity graph, summary) or
    /// as JSON.
    Report {
        /// Incident id (or an unambiguous prefix).
        id: String,
        #[arg(long)]
        state: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Write the HTML page here ("-" for stdout).
        #[arg(long)]
        html: Option<PathBuf>,
        /// Write the incident as JSON here ("-" for stdout).
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    init_logging();
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("crosswire: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to the journal, with structured fields (`INTERFACE=`, `ERROR=`, ...), when systemd
/// connected stderr to it (`JOURNAL_STREAM` names stderr's device and inode); otherwise to
/// stderr as text. `CROSSWIRE_LOG` sets the filter (default `info`).
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("CROSSWIRE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    if stderr_is_journal()
        && let Ok(layer) = tracing_journald::layer()
    {
        let layer = layer
            .with_syslog_identifier("crosswire".into())
            .with_field_prefix(None);
        if tracing_subscriber::registry()
            .with(filter())
            .with(layer)
            .try_init()
            .is_ok()
        {
            return;
        }
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter())
        .init();
}

/// Whether stderr is the journal stream systemd set up (`JOURNAL_STREAM=dev:inode`).
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let Ok(m) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino())
}

fn load(config: Option<&Path>) -> Result<Config> {
    match config {
        Some(p) => Ok(config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn open_output(eve: &str) -> Result<Box<dyn Write + Send>> {
    if eve == "-" {
        return Ok(Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout(),
        )));
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(eve)
        .with_context(|| format!("cannot open EVE output {eve}"))?;
    Ok(Box::new(std::io::BufWriter::with_capacity(1 << 20, f)))
}

fn stop_flag() -> Result<StopFlag> {
    let stop: StopFlag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("cannot install signal handler")?;
    }
    Ok(stop)
}

fn report(s: &Summary) -> ExitCode {
    tracing::info!(
        packets = s.capture.packets,
        bytes = s.capture.bytes,
        events = ?s.output.events,
        queue_drops = s.capture.queue_drop_packets,
        kernel_drops = s.capture.kernel_drops,
        "done"
    );
    if s.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        for e in &s.errors {
            eprintln!("crosswire: {e}");
        }
        ExitCode::from(1)
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Incidents {
            state,
            config,
            json,
        } => {
            let cfg = load(config.as_deref())?;
            let dir = state_dir(&cfg, state, "crosswire-state");
            let list = crosswire::correlate::store::list(&dir);
            let mut out = std::io::stdout().lock();
            if json {
                for i in &list {
                    serde_json::to_writer(&mut out, i)?;
                    writeln!(out)?;
                }
            } else {
                writeln!(
                    out,
                    "{:<17} {:>3} {:<8} {:<22} {:>6}  title",
                    "id", "ver", "severity", "last event (UTC)", "events"
                )?;
                for i in &list {
                    let last = crosswire::event::format_ts(i.last_ts);
                    writeln!(
                        out,
                        "{:<17} {:>3} {:<8} {:<22} {:>6}  {}",
                        i.id,
                        i.version,
                        i.severity.to_string(),
                        last.get(..19).unwrap_or(&last),
                        i.events.len(),
                        i.title
                    )?;
                }
                if list.is_empty() {
                    writeln!(out, "(no incidents in {})", dir.display())?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Report {
            id,
            state,
            config,
            html,
            json,
        } => {
            let cfg = load(config.as_deref())?;
            let dir = state_dir(&cfg, state, "crosswire-state");
            let inc =
                crosswire::correlate::store::get(&dir, &id).map_err(|e| anyhow::anyhow!(e))?;
            if html.is_none() && json.is_none() {
                bail!("give --html FILE and/or --json FILE");
            }
            let write = |path: &Path, body: &[u8]| -> Result<()> {
                if path == Path::new("-") {
                    std::io::stdout().write_all(body)?;
                } else {
                    std::fs::write(path, body)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                Ok(())
            };
            if let Some(p) = &json {
                let mut body = serde_json::to_vec_pretty(&inc)?;
                body.push(b'\n');
                write(p, &body)?;
            }
            if let Some(p) = &html {
                let v = serde_json::to_value(&inc)?;
                write(p, crosswire::output::report::render_html(&v).as_bytes())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::CheckConfig { file } => match config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("crosswire: {e}");
                Ok(ExitCode::from(1))
            }
        },
        Cmd::Replay {
            paths,
            eve,
            workers,
            bpf,
            speed,
            config,
            state,
            no_intel,
            saas,
            email,
        } => {
            let mut cfg = load(config.as_deref())?;
            if let Some(w) = workers {
                if w == 0 || w > 256 {
                    bail!("--workers must be within 1..=256");
                }
                cfg.workers = w;
            }
            if bpf.is_some() {
                cfg.bpf = bpf;
            }
            cfg.speed = Speed::parse(&speed).map_err(|e| anyhow::anyhow!("--speed: {e}"))?;
            let stop = stop_flag()?;
            let out = open_output(&eve)?;
            let records: Vec<PathBuf> = saas.into_iter().chain(email).collect();
            if let Some(p) = records.iter().find(|p| !p.exists()) {
                bail!("{}: no such file or directory", p.display());
            }
            if no_intel && !records.is_empty() {
                bail!("--saas/--email need domain intelligence (drop --no-intel)");
            }
            let mut intel = if no_intel {
                None
            } else {
                open_intel(&cfg, state.clone(), "crosswire-state", false)?
            };
            if let Some(a) = intel.as_mut()
                && !records.is_empty()
            {
                let (recs, rep) = crosswire::ingest::read_all(&records);
                tracing::info!(
                    records = rep.records,
                    rejected = rep.rejected,
                    ignored = rep.ignored,
                    "SaaS/email records read"
                );
                a.preload_records(recs);
            }
            let s = pipeline::replay_with_intel(&cfg, &paths, out, &stop, intel);
            if !no_intel {
                print_incidents(&state_dir(&cfg, state, "crosswire-state"));
            }
            Ok(report(&s))
        }
        Cmd::Capture {
            interface,
            eve,
            workers,
            bpf,
            buffer_mib,
            stats_interval,
            config,
            state,
        } => {
            let mut cfg = load(config.as_deref())?;
            cfg.interface = Some(interface);
            cfg.eve = eve;
            if let Some(w) = workers {
                cfg.workers = w.clamp(1, 256);
            }
            if bpf.is_some() {
                cfg.bpf = bpf;
            }
            cfg.buffer_bytes = (buffer_mib.clamp(1, 2047) as i32) << 20;
            if let Some(s) = stats_interval {
                cfg.stats_interval = std::time::Duration::from_secs(s.max(1));
            }
            let mut intel = open_intel(&cfg, state, "crosswire-state", false)?;
            if let Some(a) = intel.as_mut() {
                a.set_live(true);
            }
            run_live(&cfg, intel, None)
        }
        Cmd::Run { config, state } => {
            let cfg = config::load(&config)?;
            let mut intel = open_intel(&cfg, state, "/var/lib/crosswire", false)?;
            if let (Some(a), true) = (intel.as_mut(), cfg.interface.is_some()) {
                a.set_live(true);
            }
            if cfg.interface.is_some() {
                run_live(&cfg, intel, Some(&config))
            } else {
                let stop = stop_flag()?;
                let out = open_output(&cfg.eve)?;
                if let Some(a) = intel.as_mut()
                    && !cfg.saas.files.is_empty()
                {
                    let (recs, _) = crosswire::ingest::read_all(&cfg.saas.files);
                    a.preload_records(recs);
                }
                let s = pipeline::replay_with_intel(&cfg, &cfg.files, out, &stop, intel);
                Ok(report(&s))
            }
        }
        Cmd::Learn {
            paths,
            state,
            config,
            workers,
        } => {
            let mut cfg = load(config.as_deref())?;
            if let Some(w) = workers {
                cfg.workers = w.clamp(1, 256);
            }
            learn(&cfg, &paths, state)
        }
    }
}

fn state_dir(cfg: &Config, flag: Option<PathBuf>, default: &str) -> PathBuf {
    flag.or_else(|| cfg.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from(default))
}

/// After a replay: the incidents in the state directory, one paragraph each, on stderr (EVE
/// may be on stdout).
fn print_incidents(state: &Path) {
    let list = crosswire::correlate::store::list(state);
    if list.is_empty() {
        return;
    }
    eprintln!(
        "crosswire: {n} incident{s} in {dir} (crosswire incidents --state {dir}; crosswire report ID --state {dir} --html FILE)",
        n = list.len(),
        s = if list.len() == 1 { "" } else { "s" },
        dir = state.display()
    );
    for i in &list {
        eprintln!(
            "\n[{}] {} ({} v{}, {} events)\n{}",
            i.severity,
            i.title,
            i.id,
            i.version,
            i.events.len(),
            i.summary
        );
    }
}

/// Opens the domain-intelligence analyzer. The state directory is `--state`, else `[state] dir`,
/// else `default`. When neither was given and the default cannot be opened (another crosswire
/// holds it, or it is not writable), the run goes on without domain intelligence.
fn open_intel(
    cfg: &Config,
    flag: Option<PathBuf>,
    default: &str,
    learn_only: bool,
) -> Result<Option<Box<Analyzer>>> {
    let explicit = flag.or_else(|| cfg.state_dir.clone());
    let dir = explicit.clone().unwrap_or_else(|| PathBuf::from(default));
    match Analyzer::open(&cfg.intel, &dir, learn_only) {
        Ok(a) => Ok(Some(Box::new(a))),
        Err(e) if explicit.is_none() => {
            tracing::warn!(dir = %dir.display(), error = %e, "no domain intelligence: cannot open the state store");
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot open state store in {}: {e}",
            dir.display()
        )),
    }
}

/// `crosswire learn`: EVE files are read directly, captures go through the pipeline with the
/// analyzer in learn-only mode and the EVE output discarded.
fn learn(cfg: &Config, paths: &[PathBuf], state: Option<PathBuf>) -> Result<ExitCode> {
    let mut eve_files = Vec::new();
    let mut captures = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file())
                .collect();
            entries.sort();
            for f in entries {
                match f.extension().and_then(|e| e.to_str()) {
                    Some("pcap" | "pcapng" | "cap") => captures.push(f),
                    Some("json" | "eve" | "ndjson") => eve_files.push(f),
                    _ => {}
                }
            }
        } else if intel::learn::is_eve(p) {
            eve_files.push(p.clone());
        } else {
            captures.push(p.clone());
        }
    }
    let dir_flag = state.or_else(|| cfg.state_dir.clone());
    let dir = dir_flag
        .clone()
        .unwrap_or_else(|| PathBuf::from("crosswire-state"));
    let mut failed = false;
    if !eve_files.is_empty() {
        let mut a = Analyzer::open(&cfg.intel, &dir, true)
            .map_err(|e| anyhow::anyhow!("cannot open state store in {}: {e}", dir.display()))?;
        let mut sink = Vec::new();
        for f in &eve_files {
            let file =
                std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
            let r = std::io::BufReader::new(file);
            match intel::learn::read_eve(r, |o| a.observe(o, &mut sink)) {
                Ok((used, skipped)) => {
                    tracing::info!(file = %f.display(), used, skipped, "learned from EVE")
                }
                Err(e) => {
                    eprintln!("crosswire: {}: {e}", f.display());
                    failed = true;
                }
            }
        }
        a.finish(&mut sink);
        println!("{}", a.stats());
    }
    if !captures.is_empty() {
        let a = Analyzer::open(&cfg.intel, &dir, true)
            .map_err(|e| anyhow::anyhow!("cannot open state store in {}: {e}", dir.display()))?;
        let stop = stop_flag()?;
        let s = pipeline::replay_with_intel(
            cfg,
            &captures,
            Box::new(std::io::sink()),
            &stop,
            Some(Box::new(a)),
        );
        if let Some(v) = &s.output.intel {
            println!("{v}");
        }
        if report(&s) != ExitCode::SUCCESS {
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Live capture. `service` (the `run` command): refuse to stay root without `[service] user`,
/// drop privileges after opening the capture, talk to systemd, serve metrics, reopen the EVE
/// file on SIGHUP.
fn run_live(
    cfg: &Config,
    intel: Option<Box<Analyzer>>,
    config_path: Option<&Path>,
) -> Result<ExitCode> {
    let service = config_path.is_some();
    use crosswire::service::{metrics, notify::Notifier, privdrop};
    use std::sync::atomic::Ordering;
    let Some(interface) = cfg.interface.clone() else {
        bail!("no capture interface configured");
    };
    let opts = live::Options {
        interface: interface.clone(),
        promiscuous: cfg.promiscuous,
        snaplen: cfg.snaplen,
        buffer_bytes: cfg.buffer_bytes,
        bpf: cfg.bpf.clone(),
    };
    let cap = live::open(&opts).map_err(|e| anyhow::anyhow!(e))?;
    let stop = stop_flag()?;
    // SIGHUP: reopen the EVE file (logrotate) and, in service mode, reload the configuration.
    let reopen = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for flag in [&reopen, &reload] {
        signal_hook::flag::register(signal_hook::consts::SIGHUP, flag.clone())
            .context("cannot install SIGHUP handler")?;
    }
    let target = match cfg.eve.as_str() {
        "-" => crosswire::output::sink::Target::Stdout,
        "syslog" => crosswire::output::sink::Target::Syslog {
            socket: cfg.syslog_socket.clone(),
        },
        path => crosswire::output::sink::Target::File {
            path: PathBuf::from(path),
            rotate_bytes: cfg.rotate_bytes,
            keep: cfg.rotate_keep,
        },
    };
    let out = crosswire::output::sink::Sink::open(target, reopen.clone())
        .with_context(|| format!("cannot open EVE output {}", cfg.eve))?;
    // The capture handle and the output are open: root is no longer needed. `capture` drops
    // too when the configuration names a user; `run` refuses to stay root without one.
    if let Some(user) = &cfg.service_user {
        let eve = Path::new(&cfg.eve);
        let mut owned: Vec<&Path> = Vec::new();
        if cfg.eve != "-" && cfg.eve != "syslog" {
            owned.push(eve);
        }
        if let Some(dir) = cfg.state_dir.as_deref() {
            owned.push(dir);
            let incidents = dir.join("incidents");
            let _ = std::fs::create_dir_all(&incidents);
            privdrop::hand_over(user, &[&incidents]).map_err(|e| anyhow::anyhow!(e))?;
        }
        privdrop::hand_over(user, &owned).map_err(|e| anyhow::anyhow!(e))?;
    }
    match &cfg.service_user {
        Some(user) => match privdrop::drop_to(user).map_err(|e| anyhow::anyhow!(e))? {
            privdrop::Outcome::Dropped { uid, gid } => {
                tracing::info!(user = %user, uid, gid, "dropped privileges and capabilities")
            }
            privdrop::Outcome::NotRoot => {}
        },
        None if service => {
            privdrop::check_not_root(cfg.allow_root).map_err(|e| anyhow::anyhow!(e))?
        }
        None => {}
    }
    let health = cfg.metrics_listen.map(|addr| {
        let shared = Arc::new(metrics::Shared::default());
        shared.healthy.store(true, Ordering::Relaxed);
        (addr, shared)
    });
    if let Some((addr, shared)) = &health {
        let local = metrics::serve(*addr, shared.clone(), stop.clone())
            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
        tracing::info!(%local, "metrics endpoint");
    }
    let mut intel = intel;
    // Committed read positions of the SaaS sources, read before the analyzer moves to its
    // thread.
    let mut resume = std::collections::HashMap::new();
    if let Some(a) = intel.as_mut() {
        for s in [
            crosswire::ingest::run::FILES,
            crosswire::ingest::run::POLLER,
        ] {
            if let Some(c) = a.source_checkpoint(s) {
                resume.insert(s.to_string(), c);
            }
        }
    } else if !cfg.saas.is_empty() {
        bail!("[saas] sources need domain intelligence (a state directory)");
    }
    let notifier = Notifier::from_env();
    let watchdog = crosswire::service::notify::watchdog_interval();
    let mut p = Pipeline::start_service(
        cfg,
        Box::new(out),
        false,
        intel,
        health.as_ref().map(|h| h.1.clone()),
    );
    let sources = if cfg.saas.is_empty() {
        None
    } else {
        let sent = p.records_sender();
        Some(
            crosswire::ingest::run::start(&cfg.saas, &mut |s| resume.get(s).cloned(), sent)
                .context("cannot start the SaaS sources")?,
        )
    };
    let stats_tx = p.stats_sender();
    let metrics_tx = p.metrics_sender();
    let reconfigure_tx = p.reconfigure_sender();
    notifier.ready(&format!("capturing on {interface}"));
    let mut last_stats = std::time::Instant::now();
    let mut stats_interval = cfg.stats_interval;
    let (mut reloads, mut reload_failures) = (0u64, 0u64);
    let tick_every = watchdog
        .unwrap_or(std::time::Duration::from_secs(1))
        .min(std::time::Duration::from_secs(1));
    let res = live::run(cap, &opts, &stop, &mut p.dispatcher, tick_every, &mut |d| {
        if let Some(path) = config_path
            && reload.swap(false, Ordering::Relaxed)
        {
            // What can change without a restart: domain-intelligence thresholds, weights,
            // feeds and lists, and the stats interval. A bad file changes nothing.
            notifier.reloading();
            match config::load(path) {
                Ok(new) => {
                    reconfigure_tx(new.intel.clone());
                    stats_interval = new.stats_interval;
                    reloads += 1;
                    tracing::info!(config = %path.display(), "configuration reloaded");
                }
                Err(e) => {
                    reload_failures += 1;
                    tracing::error!(error = %e, "configuration reload rejected; the running configuration stays");
                }
            }
            notifier.ready("reloaded");
        }
        d.counters.config_reloads = reloads;
        d.counters.config_reload_failures = reload_failures;
        let c = d.counters;
        notifier.watchdog();
        notifier.status(&format!(
            "capturing on {interface}: {} packets, {} kernel drops, {} queue drops",
            c.packets, c.kernel_drops, c.queue_drop_packets
        ));
        metrics_tx(c);
        if last_stats.elapsed() >= stats_interval {
            stats_tx(c);
            last_stats = std::time::Instant::now();
        }
    });
    notifier.stopping();
    if let Some(s) = sources {
        s.stop();
    }
    if let Some((_, shared)) = &health {
        shared.healthy.store(false, Ordering::Relaxed);
    }
    drop(stats_tx);
    drop(metrics_tx);
    drop(reconfigure_tx);
    let mut errors = Vec::new();
    if let Err(e) = res {
        errors.push(e);
    }
    let s = p.finish(errors);
    Ok(report(&s))
}
