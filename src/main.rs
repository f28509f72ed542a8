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
    },
    /// Service mode: sources and outputs from a TOML configuration file.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a configuration file; exits non-zero naming the bad key and why.
    CheckConfig { file: PathBuf },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CROSSWIRE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("crosswire: {e:#}");
            ExitCode::from(2)
        }
    }
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
            let s = pipeline::replay(&cfg, &paths, out, &stop);
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
            run_live(&cfg)
        }
        Cmd::Run { config } => {
            let cfg = config::load(&config)?;
            if cfg.interface.is_some() {
                run_live(&cfg)
            } else {
                let stop = stop_flag()?;
                let out = open_output(&cfg.eve)?;
                let s = pipeline::replay(&cfg, &cfg.files, out, &stop);
                Ok(report(&s))
            }
        }
    }
}

fn run_live(cfg: &Config) -> Result<ExitCode> {
    let Some(interface) = cfg.interface.clone() else {
        bail!("no capture interface configured");
    };
    let opts = live::Options {
        interface,
        promiscuous: cfg.promiscuous,
        snaplen: cfg.snaplen,
        buffer_bytes: cfg.buffer_bytes,
        bpf: cfg.bpf.clone(),
    };
    let cap = live::open(&opts).map_err(|e| anyhow::anyhow!(e))?;
    let stop = stop_flag()?;
    let out = open_output(&cfg.eve)?;
    let mut p = Pipeline::start(cfg, out, false);
    let stats_tx = p.stats_sender();
    let res = live::run(
        cap,
        &stop,
        &mut p.dispatcher,
        cfg.stats_interval,
        &mut |d| stats_tx(d.counters),
    );
    drop(stats_tx);
    let mut errors = Vec::new();
    if let Err(e) = res {
        errors.push(e);
    }
    let s = p.finish(errors);
    Ok(report(&s))
}
