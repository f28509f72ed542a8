//! Live capture from an interface through libpcap.
//!
//! Promiscuous by default, snaplen 65535, a kernel buffer of configurable size (64 MiB default)
//! and a short read timeout so that partial batches are flushed within a few milliseconds when
//! traffic is light. libpcap's received/dropped counters are read periodically into the capture
//! counters. The loop ends when the stop flag is set (SIGINT/SIGTERM).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Dispatcher, StopFlag};

/// How long a partial batch may wait before it is sent.
pub const FLUSH_AFTER: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct Options {
    pub interface: String,
    pub promiscuous: bool,
    pub snaplen: i32,
    pub buffer_bytes: i32,
    pub bpf: Option<String>,
}

/// Opens the interface (so privileges can be dropped afterwards) .
pub fn open(o: &Options) -> Result<pcap::Capture<pcap::Active>, String> {
    let cap = pcap::Capture::from_device(o.interface.as_str())
        .map_err(|e| format!("interface {}: {e}", o.interface))?
        .promisc(o.promiscuous)
        .snaplen(o.snaplen)
        .buffer_size(o.buffer_bytes)
        // The kernel hands over a block of packets when it fills or after 1 ms: few wake-ups at
        // high rates, at most a millisecond of delay at low ones.
        .timeout(1)
        .open()
        .map_err(|e| format!("interface {}: cannot open: {e}", o.interface))?;
    // Non-blocking: libpcap's own blocking read loops inside pcap_next_ex while the interface is
    // idle, which would keep the stop flag, stats and batch flushes waiting for the next packet.
    let mut cap = cap
        .setnonblock()
        .map_err(|e| format!("interface {}: cannot set non-blocking: {e}", o.interface))?;
    if let Some(f) = &o.bpf {
        cap.filter(f, true)
            .map_err(|e| format!("interface {}: bad BPF filter: {e}", o.interface))?;
    }
    Ok(cap)
}

/// Captures until `stop` is set. `tick` is called about every `tick_every` with the dispatcher
/// (for periodic stats).
///
/// An interface that goes down, or vanishes and comes back, does not end the capture: the error
/// is counted (`read_errors`) and logged (rate-limited), and the loop backs off (up to
/// [`MAX_BACKOFF`]) and tries to open the interface again with `opts`; while that fails (the
/// interface is still missing, or privileges were dropped) it keeps reading the old handle,
/// which resumes by itself when a downed link comes back up. Ticks (stats, watchdog, reload)
/// go on meanwhile.
pub fn run(
    mut cap: pcap::Capture<pcap::Active>,
    opts: &Options,
    stop: &StopFlag,
    d: &mut Dispatcher,
    tick_every: Duration,
    tick: &mut dyn FnMut(&mut Dispatcher),
) -> Result<(), String> {
    let lt = cap.get_datalink().0;
    if !super::file::supported_link_type(lt) {
        return Err(format!("unsupported link type {lt}"));
    }
    let mut last_tick = Instant::now();
    let mut last_stats_read = Instant::now();
    let mut failing = crate::service::ratelimit::Limiter::new(Duration::from_secs(30));
    let mut backoff = MIN_BACKOFF;
    // libpcap's counters restart with a new handle: the old handle's totals are carried here.
    let mut base = KernelBase::default();
    while !stop.load(Ordering::Relaxed) {
        match cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                let ts_us = (ts.tv_sec.max(0) as u64)
                    .saturating_mul(1_000_000)
                    .saturating_add(ts.tv_usec.max(0) as u64);
                d.push(lt, ts_us, p.data);
                backoff = MIN_BACKOFF;
            }
            Err(pcap::Error::TimeoutExpired) => {
                // Nothing buffered: send what is waiting, then sleep until the socket is readable.
                d.flush();
                wait_readable(&cap, IDLE_POLL);
                backoff = MIN_BACKOFF;
            }
            Err(e) => {
                d.counters.read_errors += 1;
                d.flush();
                crate::warn_limited!(failing, interface = %opts.interface, error = %e, "capture error; retrying");
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                match open(opts) {
                    Ok(new) if new.get_datalink().0 == lt => {
                        read_stats(&mut cap, d, &base);
                        base = KernelBase::from(&*d);
                        cap = new;
                        d.counters.reopens += 1;
                        tracing::info!(interface = %opts.interface, "capture reopened");
                    }
                    Ok(_) => {
                        tracing::error!(interface = %opts.interface, "the interface came back with another link type; keeping the old handle");
                    }
                    Err(_) => {}
                }
            }
        }
        d.flush_stale(FLUSH_AFTER);
        if last_stats_read.elapsed() >= Duration::from_millis(500) {
            read_stats(&mut cap, d, &base);
            last_stats_read = Instant::now();
        }
        if last_tick.elapsed() >= tick_every {
            tick(d);
            last_tick = Instant::now();
        }
    }
    read_stats(&mut cap, d, &base);
    Ok(())
}

/// First wait after a capture error.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two attempts to reopen the interface.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

fn sleep_unless_stopped(d: Duration, stop: &StopFlag) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(IDLE_POLL.min(until.saturating_duration_since(Instant::now())));
    }
}

/// Kernel counters of the handles closed so far.
#[derive(Default, Clone, Copy)]
struct KernelBase {
    packets: u64,
    drops: u64,
    ifdrops: u64,
}

impl From<&Dispatcher> for KernelBase {
    fn from(d: &Dispatcher) -> Self {
        KernelBase {
            packets: d.counters.kernel_packets,
            drops: d.counters.kernel_drops,
            ifdrops: d.counters.kernel_ifdrops,
        }
    }
}

/// Longest sleep while idle: bounds how late a stop request or a stats tick is noticed.
const IDLE_POLL: Duration = Duration::from_millis(20);

fn wait_readable(cap: &pcap::Capture<pcap::Active>, timeout: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(cap.as_fd(), PollFlags::POLLIN)];
    // EINTR (a signal) or an error: return and let the loop look at the stop flag.
    let _ = poll(&mut fds, PollTimeout::from(ms));
}

fn read_stats(cap: &mut pcap::Capture<pcap::Active>, d: &mut Dispatcher, base: &KernelBase) {
    if let Ok(s) = cap.stats() {
        d.counters.kernel_packets = base.packets + u64::from(s.received);
        d.counters.kernel_drops = base.drops + u64::from(s.dropped);
        d.counters.kernel_ifdrops = base.ifdrops + u64::from(s.if_dropped);
    }
}
