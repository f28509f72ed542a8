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
pub fn run(
    mut cap: pcap::Capture<pcap::Active>,
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
    while !stop.load(Ordering::Relaxed) {
        match cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                let ts_us = (ts.tv_sec.max(0) as u64)
                    .saturating_mul(1_000_000)
                    .saturating_add(ts.tv_usec.max(0) as u64);
                d.push(lt, ts_us, p.data);
            }
            Err(pcap::Error::TimeoutExpired) => {
                // Nothing buffered: send what is waiting, then sleep until the socket is readable.
                d.flush();
                wait_readable(&cap, IDLE_POLL);
            }
            // TODO(issue 6): reopen the interface when it goes down and comes back, instead of
            // ending the capture (systemd restarts the service meanwhile).
            Err(e) => return Err(format!("capture error: {e}")),
        }
        d.flush_stale(FLUSH_AFTER);
        if last_stats_read.elapsed() >= Duration::from_millis(500) {
            read_stats(&mut cap, d);
            last_stats_read = Instant::now();
        }
        if last_tick.elapsed() >= tick_every {
            tick(d);
            last_tick = Instant::now();
        }
    }
    read_stats(&mut cap, d);
    Ok(())
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

fn read_stats(cap: &mut pcap::Capture<pcap::Active>, d: &mut Dispatcher) {
    if let Ok(s) = cap.stats() {
        d.counters.kernel_packets = u64::from(s.received);
        d.counters.kernel_drops = u64::from(s.dropped);
        d.counters.kernel_ifdrops = u64::from(s.if_dropped);
    }
}
