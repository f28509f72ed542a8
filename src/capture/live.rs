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
        .timeout(1)
        .immediate_mode(true)
        .open()
        .map_err(|e| format!("interface {}: cannot open: {e}", o.interface))?;
    let mut cap = cap;
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
            Err(pcap::Error::TimeoutExpired) => {}
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

fn read_stats(cap: &mut pcap::Capture<pcap::Active>, d: &mut Dispatcher) {
    if let Ok(s) = cap.stats() {
        d.counters.kernel_packets = u64::from(s.received);
        d.counters.kernel_drops = u64::from(s.dropped);
        d.counters.kernel_ifdrops = u64::from(s.if_dropped);
    }
}
