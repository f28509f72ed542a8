//! IPv4 and IPv6 fragment reassembly.
//!
//! # Job
//! [`Defrag::push`] takes a decoded [`Frame`] whose `frag` is set (its `l4` is
//! `L4::Other(fragment data)`) and returns the complete reassembled IP payload when the last
//! missing piece arrives. Feed the result to [`super::net::decode_l4`] (or
//! [`super::net::decode_reassembled`] to also unwrap tunnels) with the frame's `proto`.
//!
//! Datagrams are keyed by (src, dst, id, VLAN ids, tunnel depth, and protocol for IPv4).
//!
//! # Caps (all in [`Limits`]; each hit is counted in [`DefragStats`])
//! - `max_datagrams` in flight: the oldest (first-seen order) is evicted to admit a new one.
//! - `max_bytes` buffered over all datagrams: oldest evicted first.
//! - `max_size` of one reassembled payload (65535): a fragment reaching past it is invalid.
//! - `max_fragments` per datagram: one more drops the datagram (invalid).
//! - `timeout_us` by *packet* time: a datagram older than this is dropped on [`Defrag::expire`]
//!   or when its next fragment arrives.
//!
//! # Guarantees
//! - Overlaps are resolved deterministically: bytes already received win ("first wins"); the
//!   overlap is counted. A second, different end of datagram is invalid and ignored.
//! - No panics on any input; memory is bounded by `max_bytes` plus the per-datagram bookkeeping
//!   (`max_fragments` ranges × `max_datagrams`).
//! - The map uses std's randomly seeded `RandomState` hasher, so collisions cannot be
//!   precomputed by hostile traffic.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::net::{Frame, L4};

/// Reassembly limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Datagrams being reassembled at once; the oldest is evicted beyond this.
    pub max_datagrams: usize,
    /// Largest reassembled IP payload, in bytes.
    pub max_size: usize,
    /// Fragments accepted per datagram.
    pub max_fragments: usize,
    /// Bytes buffered over all datagrams; the oldest are evicted beyond this.
    pub max_bytes: usize,
    /// Datagram lifetime in microseconds of packet time, from its first fragment.
    pub timeout_us: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_datagrams: 4096,
            max_size: 65535,
            max_fragments: 64,
            max_bytes: 64 << 20,
            timeout_us: 30_000_000,
        }
    }
}

/// Reassembly counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DefragStats {
    /// Fragments pushed.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Datagrams dropped because their time ran out.
    pub timeouts: u64,
    /// Datagrams dropped to respect `max_datagrams` / `max_bytes`.
    pub evicted: u64,
    /// Fragments that overlapped data already received (the old data was kept).
    pub overlaps: u64,
    /// Fragments rejected: past `max_size`, bad length, conflicting end, too many fragments.
    pub invalid: u64,
    /// Datagrams currently in flight.
    pub in_flight: usize,
    /// Bytes currently buffered.
    pub bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    /// IPv4 protocol (part of the IPv4 key); 0 for IPv6.
    proto: u8,
    vlan: [u16; 3],
    tunnel_depth: u8,
}

#[derive(Debug)]
struct Datagram {
    generation: u64,
    first_us: u64,
    buf: Vec<u8>,
    /// Received byte ranges, sorted, disjoint and non-adjacent.
    ranges: Vec<(usize, usize)>,
    /// End of the datagram, known once the last fragment arrived.
    total: Option<usize>,
    frags: usize,
}

/// Bounded fragment reassembler. See the module docs.
#[derive(Debug)]
pub struct Defrag {
    limits: Limits,
    /// foldhash with a per-process random seed: fast (std's SipHash cost more than the
    /// reassembly itself), and hostile fragments cannot precompute collisions.
    map: HashMap<Key, Datagram, foldhash::fast::RandomState>,
    /// (generation, key) in first-seen order; stale entries are skipped lazily.
    order: VecDeque<(u64, Key)>,
    next_gen: u64,
    stats: DefragStats,
}

impl Defrag {
    /// New reassembler with `limits`.
    pub fn new(limits: Limits) -> Self {
        Defrag {
            limits,
            map: HashMap::default(),
            order: VecDeque::new(),
            next_gen: 0,
            stats: DefragStats::default(),
        }
    }

    /// Current counters.
    pub fn stats(&self) -> DefragStats {
        DefragStats {
            in_flight: self.map.len(),
            ..self.stats
        }
    }

    /// Add one fragment seen at packet time `ts_us`. Returns the reassembled IP payload (starting
    /// with the transport header, or IPv6 extension headers that followed the fragment header)
    /// when this fragment completes its datagram. Frames that are not fragments return `None`.
    pub fn push(&mut self, ts_us: u64, frame: &Frame<'_>) -> Option<Vec<u8>> {
        let f = frame.frag?;
        let L4::Other(data) = frame.l4 else {
            return None;
        };
        self.stats.fragments += 1;
        let start = usize::try_from(f.offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(data.len());
        if end > self.limits.max_size || (f.more && (data.is_empty() || data.len() % 8 != 0)) {
            self.stats.invalid += 1;
            return None;
        }
        let key = Key {
            src: frame.src,
            dst: frame.dst,
            id: f.id,
            proto: if frame.src.is_ipv4() { frame.proto } else { 0 },
            vlan: frame.vlan,
            tunnel_depth: frame.tunnel.map_or(0, |t| t.depth),
        };
        if let Some(dg) = self.map.get(&key)
            && ts_us.saturating_sub(dg.first_us) > self.limits.timeout_us
        {
            self.remove(&key);
            self.stats.timeouts += 1;
        }
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.limits.max_datagrams.max(1) {
                if !self.evict_oldest() {
                    break;
                }
            }
            let generation = self.next_gen;
            self.next_gen += 1;
            let dg = Datagram {
                generation,
                first_us: ts_us,
                buf: Vec::new(),
                ranges: Vec::new(),
                total: None,
                frags: 0,
            };
            self.map.insert(key, dg);
            self.order.push_back((generation, key));
            self.compact_order();
        }
        // Room for the bytes this fragment may add.
        let grow = end.saturating_sub(self.map.get(&key).map_or(0, |d| d.buf.len()));
        while self.stats.bytes + grow > self.limits.max_bytes {
            let front_is_self = self.order.front().is_some_and(|(_, k)| *k == key);
            if front_is_self || !self.evict_oldest() {
                // Cannot make room without dropping the datagram being built.
                self.remove(&key);
                self.stats.evicted += 1;
                return None;
            }
        }
        let limits = self.limits;
        let dg = self.map.get_mut(&key)?;
        if dg.frags >= limits.max_fragments {
            self.stats.invalid += 1;
            self.remove(&key);
            return None;
        }
        dg.frags += 1;
        let received_end = dg.ranges.last().map_or(0, |r| r.1);
        if !f.more {
            if dg.total.is_some_and(|t| t != end) || received_end > end {
                self.stats.invalid += 1;
                return None;
            }
            dg.total = Some(end);
        } else if dg.total.is_some_and(|t| end > t) {
            self.stats.invalid += 1;
            return None;
        }
        if dg.buf.len() < end {
            self.stats.bytes += end - dg.buf.len();
            dg.buf.resize(end, 0);
        }
        if Self::fill(dg, start, data) {
            self.stats.overlaps += 1;
        }
        let done = dg
            .total
            .is_some_and(|t| dg.ranges.as_slice() == [(0, t)] || t == 0);
        if !done {
            return None;
        }
        let mut dg = self.remove(&key)?;
        dg.buf.truncate(dg.total.unwrap_or(0));
        self.stats.reassembled += 1;
        Some(dg.buf)
    }

    /// Drop every datagram whose first fragment is older than the timeout at packet time
    /// `now_us`.
    pub fn expire(&mut self, now_us: u64) {
        while let Some(&(generation, key)) = self.order.front() {
            match self.map.get(&key) {
                Some(dg) if dg.generation == generation => {
                    if now_us.saturating_sub(dg.first_us) <= self.limits.timeout_us {
                        break;
                    }
                    self.remove(&key);
                    self.stats.timeouts += 1;
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Copy the parts of `data` (at `start`) not received yet; record the range.
    /// Returns true if `data` overlapped bytes already received (those are kept).
    fn fill(dg: &mut Datagram, start: usize, data: &[u8]) -> bool {
        let end = start + data.len();
        if start == end {
            return false;
        }
        let mut overlap = false;
        let mut cursor = start;
        let copy = |buf: &mut Vec<u8>, from: usize, to: usize| {
            if let (Some(dst), Some(src)) =
                (buf.get_mut(from..to), data.get(from - start..to - start))
            {
                dst.copy_from_slice(src);
            }
        };
        for &(rs, re) in &dg.ranges {
            if re <= cursor {
                continue;
            }
            if rs >= end {
                break;
            }
            overlap = true;
            if rs > cursor {
                copy(&mut dg.buf, cursor, rs);
            }
            cursor = cursor.max(re);
            if cursor >= end {
                break;
            }
        }
        if cursor < end {
            copy(&mut dg.buf, cursor, end);
        }
        // Insert and merge the new range.
        let at = dg.ranges.partition_point(|r| r.0 < start);
        dg.ranges.insert(at, (start, end));
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(dg.ranges.len());
        for &(s, e) in &dg.ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        dg.ranges = merged;
        overlap
    }

    fn remove(&mut self, key: &Key) -> Option<Datagram> {
        let dg = self.map.remove(key)?;
        self.stats.bytes = self.stats.bytes.saturating_sub(dg.buf.len());
        Some(dg)
    }

    /// Evict the datagram seen first. Returns false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((generation, key)) = self.order.pop_front() {
            if self
                .map
                .get(&key)
                .is_some_and(|d| d.generation == generation)
            {
                self.remove(&key);
                self.stats.evicted += 1;
                return true;
            }
        }
        false
    }

    /// Drop stale queue entries once the queue grows well past the map.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.limits.max_datagrams.max(1) + 16 {
            let map = &self.map;
            self.order.retain(|(generation, key)| {
                map.get(key).is_some_and(|d| d.generation == *generation)
            });
        }
    }
}

#[cfg(test)]
#[path = "defrag_tests.rs"]
mod tests;
