//! Packet sources (capture files, live interfaces) and the dispatcher that batches packets to the
//! workers.
//!
//! A packet is copied once, out of the reader's buffer (libpcap's, or crosswire's own for classic
//! pcap files) into the current batch of the worker its flow belongs to. Batches are recycled
//! through a return queue, so the steady state allocates nothing.
//! The dispatcher hashes the innermost addresses and ports symmetrically (both directions of a
//! flow reach the same worker); live with a per-process random seed, so hostile traffic cannot
//! aim all flows at one worker, in replay with a fixed one, so that a replay is repeatable. IP
//! fragments hash on addresses only (later fragments carry no ports).

pub mod file;
pub mod live;
pub mod pcapfile;

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};

use std::net::IpAddr;

use crate::decode::net::{self, L4};

/// How long the live capture waits for room in a full worker queue before dropping a batch
/// (the kernel buffer holds about a second of a busy 1 Gb/s link meanwhile).
pub const LIVE_QUEUE_GRACE: Duration = Duration::from_millis(100);

/// Packets per batch.
pub const BATCH_PACKETS: usize = 256;
/// Packet bytes per batch (a batch is sent when either cap is reached).
pub const BATCH_BYTES: usize = 256 * 1024;
/// Packets per batch when the batch refers to a read chunk of a capture file instead of
/// holding copies: nothing is copied, so a batch may be larger, and each hand-over (a wake-up
/// of the worker, and of the capture thread waiting for queue room) is paid for fewer packets.
pub const CHUNK_BATCH_PACKETS: usize = 2048;

/// A partial batch is sent once the packets after its first one are this much later in packet
/// time, so that workers with little traffic do not hold their events back (the output stays
/// near event-time order across workers, in replay as live).
pub const MAX_BATCH_SPAN_US: u64 = 100_000;

/// Packets of one link type: either copied back to back into the batch's own buffer (live
/// capture, libpcap replay), or left where crosswire's pcap reader read them, in a shared read
/// chunk (classic pcap replay: no copy at all on the capture thread).
#[derive(Debug, Default)]
pub struct Batch {
    pub link_type: i32,
    ts_us: Vec<u64>,
    recv_ns: Vec<u64>,
    /// (start, end) of each packet in `data`, or in `chunk` when it is set.
    spans: Vec<(u32, u32)>,
    data: Vec<u8>,
    chunk: Option<Chunk>,
}

/// A read buffer of the pcap reader, shared by the batches whose packets lie in it.
pub type Chunk = std::sync::Arc<Vec<u8>>;

impl Batch {
    pub fn with_capacity() -> Self {
        Batch {
            link_type: 0,
            ts_us: Vec::with_capacity(BATCH_PACKETS),
            recv_ns: Vec::with_capacity(BATCH_PACKETS),
            spans: Vec::with_capacity(BATCH_PACKETS),
            data: Vec::with_capacity(BATCH_BYTES + 16_384),
            chunk: None,
        }
    }

    pub fn clear(&mut self) {
        self.ts_us.clear();
        self.recv_ns.clear();
        self.spans.clear();
        self.data.clear();
        self.chunk = None;
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Packet time of the first packet, if any.
    pub fn first_ts(&self) -> Option<u64> {
        self.ts_us.first().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn is_full(&self) -> bool {
        if self.chunk.is_some() {
            self.spans.len() >= CHUNK_BATCH_PACKETS
        } else {
            self.spans.len() >= BATCH_PACKETS || self.data.len() >= BATCH_BYTES
        }
    }

    pub fn push(&mut self, ts_us: u64, recv_ns: u64, data: &[u8]) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(data);
        self.ts_us.push(ts_us);
        self.recv_ns.push(recv_ns);
        self.spans.push((start, self.data.len() as u32));
    }

    /// Whether a packet of `chunk` may join this batch (it is empty, or already refers to the
    /// same chunk).
    fn takes_chunk(&self, chunk: &Chunk) -> bool {
        match &self.chunk {
            Some(c) => std::sync::Arc::ptr_eq(c, chunk),
            None => self.spans.is_empty(),
        }
    }

    /// Adds a packet that lies at `start..end` of `chunk` (see [`Batch::takes_chunk`]).
    fn push_in_chunk(&mut self, ts_us: u64, recv_ns: u64, chunk: &Chunk, start: u32, end: u32) {
        if self.chunk.is_none() {
            self.chunk = Some(chunk.clone());
        }
        self.ts_us.push(ts_us);
        self.recv_ns.push(recv_ns);
        self.spans.push((start, end));
    }

    /// (packet time µs, receive time ns, bytes) of each packet.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64, &[u8])> + '_ {
        let bytes: &[u8] = match &self.chunk {
            Some(c) => c,
            None => &self.data,
        };
        self.spans
            .iter()
            .zip(self.ts_us.iter().zip(self.recv_ns.iter()))
            .map(move |(&(start, end), (&ts, &recv))| {
                (
                    ts,
                    recv,
                    bytes.get(start as usize..end as usize).unwrap_or_default(),
                )
            })
    }
}

/// Capture-side counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct CaptureCounters {
    pub packets: u64,
    pub bytes: u64,
    /// Batches and packets dropped because a worker queue was full (live only).
    pub queue_drop_batches: u64,
    pub queue_drop_packets: u64,
    /// libpcap counters (live only).
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    pub kernel_ifdrops: u64,
    /// Read errors (corrupt or truncated files; live: the interface went down or vanished).
    pub read_errors: u64,
    /// Live: times the capture was reopened after an error.
    pub reopens: u64,
    /// Packet time of the last packet, µs.
    pub last_ts_us: u64,
    /// Configuration reloads applied and rejected (SIGHUP, service mode).
    pub config_reloads: u64,
    pub config_reload_failures: u64,
}

/// Sends packets to workers in batches.
pub struct Dispatcher {
    senders: Vec<Sender<Batch>>,
    recycle: Receiver<Batch>,
    current: Vec<Batch>,
    started: Vec<Option<Instant>>,
    lossless: bool,
    /// Flow-to-worker hash: a fixed seed in replay (the same file always splits the same way,
    /// so a replay's events do not depend on the run), a random one live (hostile traffic
    /// cannot aim its flows at one worker).
    hasher: foldhash::fast::FixedState,
    pub counters: CaptureCounters,
    epoch: Instant,
    /// Batches whose packets were dropped, kept for reuse.
    spare: Vec<Batch>,
    /// Packet time at which partial batches are next checked for age.
    next_span_check: u64,
}

impl Dispatcher {
    /// `lossless`: wait for queue room (replay) instead of dropping the newest batch (live).
    pub fn new(
        senders: Vec<Sender<Batch>>,
        recycle: Receiver<Batch>,
        lossless: bool,
        epoch: Instant,
    ) -> Self {
        let n = senders.len();
        Dispatcher {
            senders,
            recycle,
            current: (0..n).map(|_| Batch::with_capacity()).collect(),
            started: vec![None; n],
            lossless,
            hasher: foldhash::fast::FixedState::with_seed(if lossless {
                0x6372_6f73_7377_6972
            } else {
                foldhash::fast::RandomState::default().hash_one(0u64)
            }),
            counters: CaptureCounters::default(),
            epoch,
            spare: Vec::new(),
            next_span_check: 0,
        }
    }

    /// Nanoseconds since the pipeline's epoch (the clock of capture-to-event latency).
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn worker_for(&self, link_type: i32, data: &[u8]) -> usize {
        let n = self.senders.len();
        if n <= 1 {
            return 0;
        }
        // TODO(issue 7): with several workers this full decode of every packet the fast path
        // does not take (UDP tunnels, MPLS, VLAN stacks) is still a large part of the
        // dispatcher's time, and the worker decodes the packet again.
        let t = fast_tuple(link_type, data).or_else(|| decoded_tuple(link_type, data));
        pick(&self.hasher, n, t)
    }

    /// Adds one packet received now; sends its worker's batch when full.
    pub fn push(&mut self, link_type: i32, ts_us: u64, data: &[u8]) {
        let recv = self.now_ns();
        self.push_received(link_type, ts_us, recv, data);
    }

    /// Adds one packet received at `recv` ([`Dispatcher::now_ns`] clock). File replay reads
    /// the clock once per run of packets instead of once per packet.
    pub fn push_received(&mut self, link_type: i32, ts_us: u64, recv: u64, data: &[u8]) {
        let w = self.route(link_type, data, None);
        if let Some(batch) = self.current.get_mut(w) {
            batch.push(ts_us, recv, data);
        }
        self.pushed(w, ts_us);
    }

    /// Like [`Dispatcher::push_received`] for a packet at `start..end` of a shared read chunk:
    /// the batch refers to the chunk instead of copying the packet.
    pub fn push_chunk(
        &mut self,
        link_type: i32,
        ts_us: u64,
        recv: u64,
        chunk: &Chunk,
        start: usize,
        end: usize,
    ) {
        let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(end)) else {
            return;
        };
        let data = chunk.get(start..end).unwrap_or_default();
        let w = self.route(link_type, data, Some(chunk));
        if let Some(batch) = self.current.get_mut(w) {
            batch.push_in_chunk(ts_us, recv, chunk, s, e);
        }
        self.pushed(w, ts_us);
    }

    /// Counts a packet and picks its worker; first sends that worker's batch if the packet
    /// cannot join it (another link type, or another buffer: a copied packet cannot join a
    /// batch of chunk packets and vice versa).
    fn route(&mut self, link_type: i32, data: &[u8], chunk: Option<&Chunk>) -> usize {
        self.counters.packets += 1;
        self.counters.bytes += data.len() as u64;
        let w = self.worker_for(link_type, data);
        let Some(batch) = self.current.get(w) else {
            return w;
        };
        let fits = match chunk {
            Some(c) => batch.takes_chunk(c),
            None => batch.chunk.is_none(),
        };
        if !batch.is_empty() && (batch.link_type != link_type || !fits) {
            self.send(w);
        }
        if let Some(batch) = self.current.get_mut(w) {
            batch.link_type = link_type;
        }
        w
    }

    /// After a packet joined worker `w`'s batch: sends it when full, and any batch that has
    /// spanned too much packet time.
    fn pushed(&mut self, w: usize, ts_us: u64) {
        self.counters.last_ts_us = ts_us;
        if let Some(s) = self.started.get_mut(w) {
            s.get_or_insert_with(Instant::now);
        }
        if self.current.get(w).is_some_and(Batch::is_full) {
            self.send(w);
        }
        if ts_us >= self.next_span_check {
            self.next_span_check = ts_us.saturating_add(MAX_BATCH_SPAN_US / 4);
            for w in 0..self.current.len() {
                let old = self
                    .current
                    .get(w)
                    .and_then(Batch::first_ts)
                    .is_some_and(|t| ts_us.saturating_sub(t) >= MAX_BATCH_SPAN_US);
                if old {
                    self.send(w);
                }
            }
        }
    }

    fn fresh_batch(&mut self) -> Batch {
        if let Some(b) = self.spare.pop() {
            return b;
        }
        match self.recycle.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => Batch::with_capacity(),
        }
    }

    fn send(&mut self, w: usize) {
        let fresh = self.fresh_batch();
        let Some(slot) = self.current.get_mut(w) else {
            return;
        };
        let link_type = slot.link_type;
        let mut batch = std::mem::replace(slot, fresh);
        if let Some(slot) = self.current.get_mut(w) {
            slot.link_type = link_type;
        }
        if let Some(s) = self.started.get_mut(w) {
            *s = None;
        }
        if batch.is_empty() {
            return;
        }
        let Some(tx) = self.senders.get(w) else {
            return;
        };
        if self.lossless {
            // A worker only goes away when the pipeline is shutting down.
            let _ = tx.send(batch);
        } else {
            // Live: a full queue gets a short grace period, during which the kernel's capture
            // buffer (64 MiB by default) absorbs the burst; after it the batch is dropped and
            // counted, so a worker that stays behind cannot stall the capture.
            match tx.send_timeout(batch, LIVE_QUEUE_GRACE) {
                Ok(()) => {}
                Err(SendTimeoutError::Timeout(b)) | Err(SendTimeoutError::Disconnected(b)) => {
                    self.counters.queue_drop_batches += 1;
                    self.counters.queue_drop_packets += b.len() as u64;
                    batch = b;
                    batch.clear();
                    if self.spare.len() < 4 {
                        self.spare.push(batch);
                    }
                }
            }
        }
    }

    /// Sends batches that have waited longer than `max_age` (live: bounds latency when traffic
    /// is light).
    pub fn flush_stale(&mut self, max_age: Duration) {
        for w in 0..self.current.len() {
            let stale = self
                .started
                .get(w)
                .copied()
                .flatten()
                .is_some_and(|t| t.elapsed() >= max_age);
            if stale {
                self.send(w);
            }
        }
    }

    /// Sends every partial batch.
    pub fn flush(&mut self) {
        for w in 0..self.current.len() {
            self.send(w);
        }
    }
}

/// (innermost source, destination, source port, destination port) as the workers will see
/// them; ports are 0 for fragments and for packets that are neither TCP nor UDP. Addresses are
/// integers (an IPv4 address is its 32 bits), not `IpAddr`s: the tuple is ordered and hashed
/// right after it is built, and an `IpAddr` written field by field and read back whole stalls
/// store forwarding.
type Tuple = (u128, u128, u16, u16);

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The worker (of `n`) for a packet of tuple `t`: the same for both directions of a flow.
fn pick(hasher: &foldhash::fast::FixedState, n: usize, t: Option<Tuple>) -> usize {
    let h = match t {
        Some((src, dst, sp, dp)) => {
            let (lo, hi) = if src <= dst { (src, dst) } else { (dst, src) };
            let (lp, hp) = if sp <= dp { (sp, dp) } else { (dp, sp) };
            hasher.hash_one((lo, hi, u32::from(lp) << 16 | u32::from(hp)))
        }
        None => 0,
    };
    // Into 0..n by multiply and shift: a 64-bit division per packet costs more.
    ((u128::from(h) * n as u128) >> 64) as usize
}

/// The tuple by a full decode (tunnels, VLAN stacks, every link type).
fn decoded_tuple(link_type: i32, data: &[u8]) -> Option<Tuple> {
    let f = net::decode(link_type, data).ok()?;
    let (sp, dp) = match (&f.l4, f.frag) {
        (_, Some(_)) => (0, 0),
        (L4::Tcp(t), None) => (t.src_port, t.dst_port),
        (L4::Udp(u), None) => (u.src_port, u.dst_port),
        (L4::Other(_), None) => (0, 0),
    };
    Some((addr_bits(f.src), addr_bits(f.dst), sp, dp))
}

/// The tuple of the common case read straight off the headers, without building a frame:
/// Ethernet, at most one VLAN tag, IPv4 without options and not fragmented or IPv6 without
/// extension headers, carrying TCP or UDP that is not a tunnel port, or one plain GRE tunnel
/// (IP, Ethernet, ERSPAN type I/II or Aruba 802.11 inside) around such a packet. `None` for everything else,
/// which then takes the full decode. Both give the same tuple for the same packet (a unit test
/// checks this over every frame of the real captures), so a flow's two directions always reach
/// the same worker.
fn fast_tuple(link_type: i32, data: &[u8]) -> Option<Tuple> {
    if link_type != 1 {
        return None;
    }
    fast_ether(data, true)
}

fn be16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// An Ethernet frame; `outer` when a GRE tunnel may still follow.
fn fast_ether(data: &[u8], outer: bool) -> Option<Tuple> {
    let (mut etype, mut l3) = (be16_at(data, 12)?, data.get(14..)?);
    if etype == 0x8100 {
        etype = be16_at(l3, 2)?;
        l3 = l3.get(4..)?;
    }
    fast_ip(etype, l3, outer)
}

/// An IP packet of ethertype `etype`; `outer` when a GRE tunnel may still follow.
fn fast_ip(etype: u16, l3: &[u8], outer: bool) -> Option<Tuple> {
    let (src, dst, proto, l4) = match etype {
        0x0800 => {
            let h = l3.first_chunk::<20>()?;
            if h[0] != 0x45 || u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if total < 20 {
                return None;
            }
            let src = u128::from(u32::from_be_bytes([h[12], h[13], h[14], h[15]]));
            let dst = u128::from(u32::from_be_bytes([h[16], h[17], h[18], h[19]]));
            (src, dst, h[9], l3.get(20..total.min(l3.len()))?)
        }
        0x86dd => {
            let h = l3.first_chunk::<40>()?;
            if h[0] >> 4 != 6 {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
            let payload = l3.get(40..40 + len)?;
            if len == 0 {
                return None;
            }
            let a: [u8; 16] = h[8..24].try_into().ok()?;
            let b: [u8; 16] = h[24..40].try_into().ok()?;
            (
                u128::from_be_bytes(a),
                u128::from_be_bytes(b),
                h[6],
                payload,
            )
        }
        _ => return None,
    };
    match proto {
        6 => {
            let off = usize::from(*l4.get(12)? >> 4) * 4;
            if off < 20 || l4.len() < off {
                return None;
            }
            Some((src, dst, be16_at(l4, 0)?, be16_at(l4, 2)?))
        }
        17 => {
            if l4.len() < 8 {
                return None;
            }
            let (sp, dp) = (be16_at(l4, 0)?, be16_at(l4, 2)?);
            let tunnel = |p: u16| matches!(p, 4789 | 6081 | 2152 | 3544);
            if tunnel(sp) || tunnel(dp) {
                return None;
            }
            Some((src, dst, sp, dp))
        }
        47 if outer => fast_gre(l4),
        _ => None,
    }
}

/// A GRE version 0 payload without source routing, read as [`crate::decode::net`] reads it;
/// only the inner packets the fast path knows.
fn fast_gre(d: &[u8]) -> Option<Tuple> {
    let h = d.first_chunk::<4>()?;
    if h[1] & 0x07 != 0 || h[0] & 0x40 != 0 {
        return None;
    }
    let seq = h[0] & 0x10 != 0;
    // Checksum (+ reserved), key and sequence number: 4 bytes each when present.
    let len =
        4 + 4 * (usize::from(h[0] & 0x80 != 0) + usize::from(h[0] & 0x20 != 0) + usize::from(seq));
    let rest = d.get(len..)?;
    match u16::from_be_bytes([h[2], h[3]]) {
        t @ (0x0800 | 0x86dd) => fast_ip(t, rest, false),
        0x6558 => fast_ether(rest, false),
        // ERSPAN type II carries an 8-byte header and the GRE sequence bit; type I neither.
        0x88be if seq => fast_ether(rest.get(8..)?, false),
        0x88be => fast_ether(rest, false),
        // Aruba WLAN: an 802.11 frame straight after GRE.
        0x8200..=0x8300 => fast_wifi(rest),
        _ => None,
    }
}

/// An 802.11 data frame carrying IP over LLC/SNAP, read as [`crate::decode::net`] reads it.
fn fast_wifi(d: &[u8]) -> Option<Tuple> {
    let h = d.first_chunk::<24>()?;
    let (fc0, fc1) = (h[0], h[1]);
    let subtype = fc0 >> 4;
    // Version 0, data frame, not null data, not protected.
    if fc0 & 0x03 != 0 || (fc0 >> 2) & 0x03 != 2 || subtype & 0x04 != 0 || fc1 & 0x40 != 0 {
        return None;
    }
    let mut hlen = if fc1 & 0x03 == 0x03 { 30 } else { 24 };
    let mut amsdu = false;
    if subtype & 0x08 != 0 {
        amsdu = *d.get(hlen)? & 0x80 != 0;
        hlen += if fc1 & 0x80 != 0 { 6 } else { 2 };
    }
    let mut body = d.get(hlen..)?;
    if amsdu {
        body = body.get(14..)?;
    }
    let llc = body.first_chunk::<8>()?;
    if llc[..3] != [0xaa, 0xaa, 0x03] {
        return None;
    }
    fast_ip(u16::from_be_bytes([llc[6], llc[7]]), body.get(8..)?, false)
}

/// Where a stop request comes from (SIGINT/SIGTERM in the binary).
pub type StopFlag = std::sync::Arc<std::sync::atomic::AtomicBool>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_tuple_agrees_with_the_full_decode_on_real_frames() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        for dir in [root.join("captures"), root.join("../shared/captures/real")] {
            if !dir.is_dir() {
                eprintln!("SKIPPED part: {} is absent", dir.display());
                continue;
            }
            files.extend(file::expand(&[dir]).expect("list captures"));
        }
        let (mut fast, mut total) = (0, 0);
        for f in &files {
            let Ok(mut cap) = pcap::Capture::from_file(f) else {
                continue;
            };
            let lt = cap.get_datalink().0;
            while let Ok(p) = cap.next_packet() {
                total += 1;
                let Some(t) = fast_tuple(lt, p.data) else {
                    continue;
                };
                fast += 1;
                assert_eq!(
                    Some(t),
                    decoded_tuple(lt, p.data),
                    "{} frame {total}",
                    f.display()
                );
            }
        }
        eprintln!("fast tuple: {fast} of {total} frames");
        assert!(fast > 0 && total > 0);
        // Hand-made edge cases: a truncated TCP header, a fragment, a VXLAN port, a VLAN tag.
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip.extend_from_slice(&[0, 80, 0x30, 0x39, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 2]);
        ip.extend_from_slice(&[0; 6]);
        let frame: Vec<u8> = eth.iter().chain(ip.iter()).copied().collect();
        assert_eq!(fast_tuple(1, &frame), decoded_tuple(1, &frame));
        assert!(fast_tuple(1, &frame).is_some());
        assert_eq!(fast_tuple(1, &frame[..frame.len() - 8]), None);
        let mut frag = frame.clone();
        frag[14 + 6] = 0x20;
        assert_eq!(fast_tuple(1, &frag), None);
        let mut tagged = frame[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        tagged.extend_from_slice(&frame[12..]);
        assert_eq!(fast_tuple(1, &tagged), decoded_tuple(1, &tagged));
        assert!(fast_tuple(1, &tagged).is_some());
    }

    #[test]
    fn fast_tuple_reads_through_plain_gre_like_the_full_decode() {
        // Inner: IPv4 10.0.0.1:80 -> 10.0.0.2:12345, TCP SYN.
        let mut inner_ip = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        inner_ip.extend_from_slice(&[0, 80, 0x30, 0x39, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 2]);
        inner_ip.extend_from_slice(&[0; 6]);
        let mut inner_eth = vec![0u8; 12];
        inner_eth.extend_from_slice(&[0x08, 0x00]);
        inner_eth.extend_from_slice(&inner_ip);
        // Outer: Ethernet, IPv4 192.0.2.1 -> 192.0.2.2, GRE (flags, protocol, options), inner.
        let outer = |flags: [u8; 2], proto: u16, options: &[u8], inner: &[u8]| -> Vec<u8> {
            let mut gre = flags.to_vec();
            gre.extend_from_slice(&proto.to_be_bytes());
            gre.extend_from_slice(options);
            gre.extend_from_slice(inner);
            let total = (20 + gre.len()) as u16;
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            f.extend_from_slice(&total.to_be_bytes());
            f.extend_from_slice(&[0, 0, 0, 0, 64, 47, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
            f.extend_from_slice(&gre);
            f
        };
        // 802.11 QoS data frame (flags byte `fc1`), QoS control 0, LLC/SNAP, then `inner_ip`.
        let wifi = |fc1: u8| -> Vec<u8> {
            let mut w = vec![0x88, fc1];
            w.extend_from_slice(&[0; 22]);
            w.extend_from_slice(&[0, 0, 0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
            w.extend_from_slice(&inner_ip);
            w
        };
        let inner_tuple = fast_tuple(1, &inner_eth);
        assert!(inner_tuple.is_some());
        let cases = [
            // Plain GRE, IPv4 inside; with key and sequence number; transparent Ethernet.
            (outer([0, 0], 0x0800, &[], &inner_ip), true),
            (outer([0x30, 0], 0x0800, &[0; 8], &inner_ip), true),
            (outer([0x80, 0], 0x6558, &[0; 4], &inner_eth), true),
            // ERSPAN type II (sequence bit, 8-byte header) and type I.
            (outer([0x10, 0], 0x88be, &[0; 12], &inner_eth), true),
            (outer([0, 0], 0x88be, &[], &inner_eth), true),
            // Aruba: 802.11 QoS data (to the DS), LLC/SNAP, IPv4; the same, protected.
            (outer([0, 0], 0x8200, &[], &wifi(0x01)), true),
            (outer([0, 0], 0x8200, &[], &wifi(0x41)), false),
            // Source routing, enhanced GRE (version 1), an unknown protocol, a cut option.
            (outer([0x40, 0], 0x0800, &[], &inner_ip), false),
            (outer([0x30, 1], 0x0800, &[0; 8], &inner_ip), false),
            (outer([0, 0], 0x1234, &[], &inner_ip), false),
            (outer([0x20, 0], 0x0800, &[], &[]), false),
        ];
        for (i, (frame, fast)) in cases.iter().enumerate() {
            let t = fast_tuple(1, frame);
            assert_eq!(t.is_some(), *fast, "case {i}");
            if *fast {
                assert_eq!(t, inner_tuple, "case {i}");
                assert_eq!(t, decoded_tuple(1, frame), "case {i}");
            }
        }
    }

    #[test]
    fn both_directions_of_a_flow_pick_the_same_worker_and_flows_spread_evenly() {
        let hasher = foldhash::fast::FixedState::with_seed(7);
        let mut rng = crate::testutil::Rng(11);
        let mut per_worker = [0usize; 4];
        for i in 0..40_000 {
            let a = u128::from(rng.next()) << if i % 2 == 0 { 0 } else { 64 };
            let b = u128::from(rng.next() as u32);
            let (sp, dp) = (rng.below(65536) as u16, rng.below(65536) as u16);
            let w = pick(&hasher, 4, Some((a, b, sp, dp)));
            assert_eq!(w, pick(&hasher, 4, Some((b, a, dp, sp))));
            per_worker[w] += 1;
        }
        // Each of 4 workers gets a quarter of the flows, give or take.
        assert!(
            per_worker.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{per_worker:?}"
        );
        assert_eq!(pick(&hasher, 3, None), 0);
    }

    #[test]
    fn batch_iterates_packets_in_order() {
        let mut b = Batch::with_capacity();
        b.push(1, 10, b"abc");
        b.push(2, 20, b"");
        b.push(3, 30, b"defg");
        let v: Vec<_> = b.iter().map(|(t, r, d)| (t, r, d.to_vec())).collect();
        assert_eq!(
            v,
            vec![
                (1, 10, b"abc".to_vec()),
                (2, 20, vec![]),
                (3, 30, b"defg".to_vec())
            ]
        );
    }
}
