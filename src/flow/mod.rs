//! Per-worker flow table: flows keyed by their 5-tuple (plus outer VLAN), TCP stream-head
//! reassembly, application detection and the events a flow yields.
//!
//! Both directions of a flow reach the same worker (the dispatcher hashes symmetrically), so the
//! table needs no lock. Everything is bounded: at most `Limits::max_flows` flows (the least
//! recently active one is evicted and counted when a new flow needs room), each TCP direction
//! keeps at most [`tcp::MAX_BUFFERED`] unconsumed bytes and is inspected for at most
//! `Limits::max_inspect` bytes, and flows expire by **packet time** (`udp_timeout`,
//! `tcp_timeout`, `closed_timeout`), never by the wall clock. A flow that ends, expires or is
//! evicted first hands over the events it was still completing (a TLS ClientHello waiting for
//! the ServerHello, HTTP requests waiting for their responses).

mod map;
pub mod tcp;

use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

use crate::decode::net::{Frame, L4, Tunnel};
use crate::decode::{dhcp, dns, http, krb5, tls};
use crate::event::{DhcpEvent, Event, HttpEvent, Kind, Krb5Event, Meta, TlsEvent};
use tcp::{Accept, Reassembly};

/// TCP flag bits.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;

/// Bytes of a direction searched for a TLS hello when its protocol is not recognised at once
/// (STARTTLS, SOCKS, PostgreSQL SSLRequest, HTTP CONNECT preambles).
pub const SCAN_CAP: usize = 16 * 1024;
/// TLS records walked in a client direction after the first ClientHello (HelloRetryRequest).
const TLS_MAX_RECORDS: u8 = 8;
/// Packet time a TLS ClientHello or HTTP request waits for the server's reply before its event
/// is written without it.
pub const PENDING_WAIT_US: u64 = 2_000_000;
/// Flows tracked in the pending-reply queue (each flow at most once per event it holds).
const MAX_PENDING_DUE: usize = 1 << 16;

/// Steps of the application loop per segment; each step consumes bytes or stops.
const MAX_APP_STEPS: usize = 256;

/// Table limits; all times in microseconds of packet time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_flows: usize,
    pub udp_timeout_us: u64,
    pub tcp_timeout_us: u64,
    pub closed_timeout_us: u64,
    /// Bytes of one TCP direction given to the decoders before the direction is left alone.
    pub max_inspect: u64,
    /// HTTP requests waiting for their responses, per flow.
    pub max_pending_http: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_flows: 65_536,
            udp_timeout_us: 30_000_000,
            tcp_timeout_us: 300_000_000,
            closed_timeout_us: 5_000_000,
            max_inspect: 4 << 20,
            max_pending_http: 16,
        }
    }
}

/// Counters kept by the table, merged into `stats`.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub flows_created: u64,
    pub flows_expired: u64,
    pub flows_evicted: u64,
    pub tcp_gaps: u64,
    pub tcp_retransmitted: u64,
    pub tcp_ooo_dropped: u64,
    pub stream_inspect_cap: u64,
    pub http_unmatched_responses: u64,
    /// Application decode errors by (protocol, reason), written as `dns.truncated`,
    /// `http.head_too_long`, ... in `stats`.
    pub app_errors: BTreeMap<(&'static str, &'static str), u64>,
}

impl Counters {
    pub fn merge(&mut self, o: &Counters) {
        self.flows_created += o.flows_created;
        self.flows_expired += o.flows_expired;
        self.flows_evicted += o.flows_evicted;
        self.tcp_gaps += o.tcp_gaps;
        self.tcp_retransmitted += o.tcp_retransmitted;
        self.tcp_ooo_dropped += o.tcp_ooo_dropped;
        self.stream_inspect_cap += o.stream_inspect_cap;
        self.http_unmatched_responses += o.http_unmatched_responses;
        for (k, v) in &o.app_errors {
            *self.app_errors.entry(*k).or_default() += v;
        }
    }

    fn error(&mut self, proto: &'static str, reason: &'static str) {
        *self.app_errors.entry((proto, reason)).or_default() += 1;
    }
}

/// Flow key: endpoints ordered so that both directions give the same key. Addresses are held as
/// integers (IPv4 mapped into IPv6) so that hashing the key is a handful of word operations,
/// each as two 64-bit words (low, high): 8-byte alignment keeps the key at 40 bytes (a `u128`
/// field would align it to 16 and round it up to 48), and a flow table slot within two cache
/// lines.
///
/// Ports, protocol, family and VLAN are packed into one word, `misc` (see [`Key::pack`]),
/// written and read whole: a key is hashed and compared right after it is built, and reading
/// back a word that was stored as several narrower fields stalls store-to-load forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    a: [u64; 2],
    b: [u64; 2],
    misc: u64,
}

/// Five words, one write each (a derived `Hash` writes every field and a length per array).
impl Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u64(self.a[0]);
        h.write_u64(self.a[1]);
        h.write_u64(self.b[0]);
        h.write_u64(self.b[1]);
        h.write_u64(self.misc());
    }
}

fn split(bits: u128) -> [u64; 2] {
    [bits as u64, (bits >> 64) as u64]
}

fn join(words: [u64; 2]) -> u128 {
    u128::from(words[1]) << 64 | u128::from(words[0])
}

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Key {
    /// The key and whether the packet goes from `a` to `b`.
    pub fn new(src: IpAddr, sp: u16, dst: IpAddr, dp: u16, proto: u8, vlan: u16) -> (Self, bool) {
        let (s, d) = (addr_bits(src), addr_bits(dst));
        let v4 = src.is_ipv4();
        if (s, sp) <= (d, dp) {
            let k = Key {
                a: split(s),
                b: split(d),
                misc: Key::pack(sp, dp, proto, v4, vlan),
            };
            (k, true)
        } else {
            let k = Key {
                a: split(d),
                b: split(s),
                misc: Key::pack(dp, sp, proto, v4, vlan),
            };
            (k, false)
        }
    }

    fn addr(&self, bits: u128) -> IpAddr {
        let v6 = std::net::Ipv6Addr::from(bits);
        match (self.v4(), v6.to_ipv4_mapped()) {
            (true, Some(v4)) => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        }
    }

    fn endpoints(&self, dir: usize) -> (IpAddr, u16, IpAddr, u16) {
        if dir == 0 {
            (
                self.addr(join(self.a)),
                self.ap(),
                self.addr(join(self.b)),
                self.bp(),
            )
        } else {
            (
                self.addr(join(self.b)),
                self.bp(),
                self.addr(join(self.a)),
                self.ap(),
            )
        }
    }

    /// Ports, protocol, address family and VLAN in one word.
    /// The `misc` word: port a (bits 0-15), port b (16-31), protocol (32-39), IPv4 (40),
    /// VLAN (48-63).
    fn pack(ap: u16, bp: u16, proto: u8, v4: bool, vlan: u16) -> u64 {
        u64::from(ap)
            | u64::from(bp) << 16
            | u64::from(proto) << 32
            | u64::from(v4) << 40
            | u64::from(vlan) << 48
    }

    fn misc(&self) -> u64 {
        self.misc
    }

    fn ap(&self) -> u16 {
        self.misc as u16
    }

    fn bp(&self) -> u16 {
        (self.misc >> 16) as u16
    }

    fn proto(&self) -> u8 {
        (self.misc >> 32) as u8
    }

    fn v4(&self) -> bool {
        (self.misc >> 40) & 1 == 1
    }
}

/// The flows of one worker, looked up once per packet: a fixed-capacity slab indexed by a
/// compact hash index (see [`map`]), hashed with foldhash and a per-process random seed (hostile
/// traffic cannot precompute collisions).
type FlowMap = map::SlabMap<Key, Flow>;

/// What an application decoder does with one TCP direction.
enum App {
    Detect,
    Dns,
    /// Kerberos over TCP: 4-byte length-prefixed messages.
    Krb5,
    /// `skip`: body bytes of a non-handshake record still to pass over (skipped by its header,
    /// never buffered).
    TlsClient {
        records: u8,
        skip: u32,
    },
    TlsServer {
        records: u8,
        skip: u32,
    },
    HttpClient(Box<http::ClientParser>),
    HttpServer(Box<http::ServerParser>),
    Scan {
        scanned: usize,
    },
    Done,
}

struct Dir {
    r: Reassembly,
    app: App,
    inspected: u64,
}

impl Dir {
    fn new() -> Self {
        Dir {
            r: Reassembly::default(),
            app: App::Detect,
            inspected: 0,
        }
    }
}

struct TcpFlow {
    dirs: [Dir; 2],
    /// A ClientHello waiting for the server's hello: (direction of the client, ts, recv, event).
    pending_tls: Option<Box<(usize, u64, u64, TlsEvent)>>,
    /// Requests waiting for their responses, oldest first.
    pending_http: VecDeque<(usize, u64, u64, http::Request)>,
}

struct Flow {
    id: u64,
    last_us: u64,
    closed: bool,
    vlan: [u16; 3],
    vlan_len: u8,
    tunnel: Option<Tunnel>,
    /// Initial sequence numbers from SYNs seen before any payload, per direction.
    isn: [u32; 2],
    /// Which of `isn` are set (two plain arrays take 10 bytes, `[Option<u32>; 2]` 16).
    isn_seen: [bool; 2],
    fin: [bool; 2],
    tcp: Option<Box<TcpFlow>>,
}

/// What every event of a flow shares; copied out of the flow so that its parts can be borrowed
/// mutably while events are built.
#[derive(Clone, Copy)]
struct MetaBase {
    key: Key,
    id: u64,
    vlan: [u16; 3],
    vlan_len: u8,
    tunnel: Option<Tunnel>,
}

impl MetaBase {
    fn of(key: Key, flow: &Flow) -> Self {
        MetaBase {
            key,
            id: flow.id,
            vlan: flow.vlan,
            vlan_len: flow.vlan_len,
            tunnel: flow.tunnel,
        }
    }

    /// Event metadata for an event sent in direction `dir` (its sender is `src`).
    fn meta(&self, dir: usize, ts_us: u64, recv_ns: u64) -> Meta {
        let (src, src_port, dst, dst_port) = self.key.endpoints(dir);
        Meta {
            ts_us,
            flow_id: self.id,
            src,
            src_port,
            dst,
            dst_port,
            proto: self.key.proto(),
            vlan: self.vlan,
            vlan_len: self.vlan_len,
            tunnel: self.tunnel,
            recv_ns,
        }
    }
}

/// The flow table of one worker.
pub struct Table {
    flows: FlowMap,
    /// Approximate activity order: (check-at time, slot, generation); one entry per flow. An
    /// entry whose slot has moved on to another generation names an ended flow and is skipped.
    queue: VecDeque<(u64, u32, u32)>,
    limits: Limits,
    pub counters: Counters,
    next_expiry_check: u64,
    scratch_dns: Vec<dns::Message>,
    /// Receive time of the packet being handled (or of the final flush).
    now_recv: u64,
    /// (deadline, slot, generation) of flows with events waiting for a reply, oldest first: a
    /// reply that does not come within [`PENDING_WAIT_US`] of packet time no longer holds the
    /// event back. Handles, not keys: releasing needs no hash lookup.
    pending_due: VecDeque<(u64, u32, u32)>,
}

impl Table {
    pub fn new(limits: Limits) -> Self {
        Table {
            flows: FlowMap::new(limits.max_flows),
            queue: VecDeque::with_capacity(limits.max_flows.min(1 << 22)),
            limits,
            counters: Counters::default(),
            next_expiry_check: 0,
            scratch_dns: Vec::new(),
            now_recv: 0,
            pending_due: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.len() == 0
    }

    /// Handles one decoded packet (`l4` may come from a reassembled IP datagram).
    pub fn packet(
        &mut self,
        ts_us: u64,
        recv_ns: u64,
        f: &Frame<'_>,
        l4: &L4<'_>,
        out: &mut Vec<Event>,
    ) {
        self.now_recv = recv_ns;
        self.release_pending(ts_us, out);
        if ts_us >= self.next_expiry_check {
            self.expire(ts_us, out);
            self.next_expiry_check = ts_us.saturating_add(1_000_000);
        }
        let (sp, dp) = match l4 {
            L4::Tcp(t) => (t.src_port, t.dst_port),
            L4::Udp(u) => (u.src_port, u.dst_port),
            L4::Other(_) => return,
        };
        let vlan = if f.vlan_len > 0 { f.vlan[0] } else { 0 };
        let (key, a_to_b) = Key::new(f.src, sp, f.dst, dp, f.proto, vlan);
        let dir = if a_to_b { 0 } else { 1 };
        let hash = self.flows.hash(&key);
        let slot = match self.flows.find(hash, &key) {
            Some(slot) => slot,
            None => {
                // Evict first: the new flow takes the evicted flow's slot.
                self.make_room(out);
                let flow = Flow {
                    id: flow_id(&key, ts_us),
                    last_us: ts_us,
                    closed: false,
                    vlan: f.vlan,
                    vlan_len: f.vlan_len,
                    tunnel: f.tunnel,
                    isn: [0; 2],
                    isn_seen: [false; 2],
                    fin: [false; 2],
                    tcp: None,
                };
                let Ok(slot) = self.flows.insert(hash, key, flow) else {
                    return;
                };
                let check_at = ts_us.saturating_add(self.timeout(&key, false));
                self.queue
                    .push_back((check_at, slot, self.flows.generation(slot)));
                self.counters.flows_created += 1;
                slot
            }
        };
        let Some(flow) = self.flows.get_mut(slot) else {
            return;
        };
        flow.last_us = flow.last_us.max(ts_us);
        let base = MetaBase::of(key, flow);
        match l4 {
            L4::Udp(u) => {
                if is_dns_port(sp, dp) {
                    match dns::parse(u.payload) {
                        Ok(m) => out.push(Event {
                            meta: base.meta(dir, ts_us, recv_ns),
                            kind: Kind::Dns(Box::new(m)),
                        }),
                        Err(e) => self.counters.error("dns", e.reason()),
                    }
                } else if is_dhcp_ports(sp, dp) {
                    match dhcp::parse(u.payload) {
                        Ok(m) => out.push(Event {
                            meta: base.meta(dir, ts_us, recv_ns),
                            kind: Kind::Dhcp(Box::new(DhcpEvent::from_message(&m))),
                        }),
                        Err(e) => self.counters.error("dhcp", e.reason()),
                    }
                } else if sp == KRB5_PORT || dp == KRB5_PORT {
                    match krb5::parse(u.payload, false) {
                        Ok(m) => out.push(Event {
                            meta: base.meta(dir, ts_us, recv_ns),
                            kind: Kind::Krb5(Box::new(Krb5Event::from_message(&m))),
                        }),
                        Err(e) => self.counters.error("krb5", e.reason()),
                    }
                }
            }
            L4::Tcp(t) => {
                if t.flags & SYN != 0 {
                    match flow.tcp.as_mut() {
                        Some(tf) => tf.dirs[dir].r.syn(t.seq),
                        None => {
                            flow.isn[dir] = t.seq;
                            flow.isn_seen[dir] = true;
                        }
                    }
                }
                if t.flags & FIN != 0 {
                    flow.fin[dir] = true;
                }
                if t.flags & RST != 0 || (flow.fin[0] && flow.fin[1]) {
                    if let Some(tf) = flow.tcp.as_mut() {
                        // Data in this very segment is still decoded below; what is pending
                        // now cannot be completed any more.
                        if t.payload.is_empty() {
                            flush_pending(tf, &base, self.now_recv, out);
                        }
                    }
                    flow.closed = true;
                }
                if t.payload.is_empty() {
                    return;
                }
                // Stream state is allocated on the first payload byte: a SYN flood costs only
                // the small flow entry.
                let (isn, seen) = (flow.isn, flow.isn_seen);
                let tf = flow.tcp.get_or_insert_with(|| {
                    let mut tf = Box::new(TcpFlow {
                        dirs: [Dir::new(), Dir::new()],
                        pending_tls: None,
                        pending_http: VecDeque::new(),
                    });
                    for ((d, seq), seen) in tf.dirs.iter_mut().zip(isn).zip(seen) {
                        if seen {
                            d.r.syn(seq);
                        }
                    }
                    tf
                });
                let data_seq = if t.flags & SYN != 0 {
                    t.seq.wrapping_add(1)
                } else {
                    t.seq
                };
                let ctx = Ctx {
                    ts_us,
                    recv_ns,
                    dns_port: is_dns_port(sp, dp),
                    krb_port: sp == KRB5_PORT || dp == KRB5_PORT,
                    limits: &self.limits,
                };
                let waiting = |tf: &TcpFlow| {
                    tf.pending_tls.as_ref().map(|p| p.1) == Some(ts_us)
                        || tf.pending_http.back().map(|p| p.1) == Some(ts_us)
                };
                let waited_before = waiting(tf);
                let d = &mut tf.dirs[dir];
                if !matches!(d.app, App::Done) && !t.payload.is_empty() {
                    let before = (d.r.gaps, d.r.retransmitted, d.r.ooo_dropped);
                    if d.r.take_direct(data_seq, t.payload.len()) {
                        // The common case: in order, nothing buffered: decode in place.
                        run_app(
                            tf,
                            dir,
                            false,
                            &ctx,
                            &mut self.counters,
                            &mut self.scratch_dns,
                            &base,
                            Some(t.payload),
                            out,
                        );
                    } else {
                        let acc = d.r.segment(data_seq, t.payload);
                        if acc != Accept::Nothing {
                            run_app(
                                tf,
                                dir,
                                acc == Accept::Gap,
                                &ctx,
                                &mut self.counters,
                                &mut self.scratch_dns,
                                &base,
                                None,
                                out,
                            );
                        }
                    }
                    let r = &tf.dirs[dir].r;
                    self.counters.tcp_gaps += r.gaps - before.0;
                    self.counters.tcp_retransmitted += r.retransmitted - before.1;
                    self.counters.tcp_ooo_dropped += r.ooo_dropped - before.2;
                }
                if flow.closed {
                    flush_pending(tf, &base, self.now_recv, out);
                }
                if !waited_before && waiting(tf) {
                    self.pending_added(ts_us, slot);
                }
            }
            L4::Other(_) => {}
        }
    }

    /// Writes the events whose reply is overdue at packet time `now_us`.
    fn release_pending(&mut self, now_us: u64, out: &mut Vec<Event>) {
        // Each pass pops one entry: bounded by the queue length.
        for _ in 0..self.pending_due.len() {
            let Some(&(due, slot, generation)) = self.pending_due.front() else {
                break;
            };
            if due > now_us {
                break;
            }
            self.pending_due.pop_front();
            let recv = self.now_recv;
            // A flow that ended meanwhile has had its pending events flushed.
            let Some((&key, flow)) = self.flows.get_mut_at(slot, generation) else {
                continue;
            };
            let base = MetaBase::of(key, flow);
            if let Some(tf) = flow.tcp.as_mut() {
                release_overdue(tf, &base, now_us, recv, out);
            }
        }
    }

    /// Remembers that the flow in `slot` holds an event waiting for a reply since `ts_us`.
    fn pending_added(&mut self, ts_us: u64, slot: u32) {
        if self.pending_due.len() < MAX_PENDING_DUE {
            let generation = self.flows.generation(slot);
            self.pending_due
                .push_back((ts_us.saturating_add(PENDING_WAIT_US), slot, generation));
        }
    }

    fn timeout(&self, key: &Key, closed: bool) -> u64 {
        if closed {
            self.limits.closed_timeout_us
        } else if key.proto() == 6 {
            self.limits.tcp_timeout_us
        } else {
            self.limits.udp_timeout_us
        }
    }

    /// Ends flows idle past their timeout at packet time `now_us`.
    pub fn expire(&mut self, now_us: u64, out: &mut Vec<Event>) {
        // Each pass pops one entry; every flow has one entry, so this is bounded by the table.
        for _ in 0..self.queue.len() {
            let Some(&(check_at, slot, generation)) = self.queue.front() else {
                break;
            };
            if check_at > now_us {
                break;
            }
            self.queue.pop_front();
            let Some((key, flow)) = self.flows.get(slot, generation) else {
                continue;
            };
            let deadline = flow.last_us.saturating_add(self.timeout(key, flow.closed));
            if deadline <= now_us {
                self.end_flow(slot, out);
                self.counters.flows_expired += 1;
            } else {
                self.queue.push_back((deadline, slot, generation));
            }
        }
    }

    /// Evicts the least recently active flow when the table is full.
    fn make_room(&mut self, out: &mut Vec<Event>) {
        // The map's capacity is `max_flows` (at least 1).
        if !self.flows.is_full() {
            return;
        }
        // Give recently active flows a second chance, a bounded number of times.
        for _ in 0..8 {
            let Some((check_at, slot, generation)) = self.queue.pop_front() else {
                break;
            };
            let Some((key, flow)) = self.flows.get(slot, generation) else {
                continue;
            };
            let deadline = flow.last_us.saturating_add(self.timeout(key, flow.closed));
            if deadline > check_at && self.queue.len() > 1 {
                self.queue.push_back((deadline, slot, generation));
                continue;
            }
            self.end_flow(slot, out);
            self.counters.flows_evicted += 1;
            return;
        }
        // Everything was recently active: evict the front anyway.
        while let Some((_, slot, generation)) = self.queue.pop_front() {
            if self.flows.get(slot, generation).is_some() {
                self.end_flow(slot, out);
                self.counters.flows_evicted += 1;
                return;
            }
        }
    }

    /// Removes the flow in `slot`, handing over its pending events.
    fn end_flow(&mut self, slot: u32, out: &mut Vec<Event>) {
        if let Some((key, mut flow)) = self.flows.remove(slot) {
            let base = MetaBase::of(key, &flow);
            if let Some(tf) = flow.tcp.as_mut() {
                flush_pending(tf, &base, self.now_recv, out);
            }
        }
    }

    /// Ends every flow (end of input), handing over their pending events.
    pub fn flush(&mut self, recv_ns: u64, out: &mut Vec<Event>) {
        self.now_recv = recv_ns;
        self.pending_due.clear();
        let start = out.len();
        for slot in self.flows.slots() {
            self.end_flow(slot, out);
        }
        self.queue.clear();
        if let Some(tail) = out.get_mut(start..) {
            tail.sort_by_key(|e| (e.meta.ts_us, e.meta.flow_id));
        }
    }
}

/// Kerberos KDC port (UDP and TCP).
const KRB5_PORT: u16 = 88;
/// Largest Kerberos message over TCP decoded (tickets with large PACs stay well below).
const MAX_KRB5_FRAME: usize = 65_535;

/// BOOTP/DHCP: client 68 <-> server 67 (relays use 67 <-> 67).
fn is_dhcp_ports(sp: u16, dp: u16) -> bool {
    matches!((sp, dp), (68, 67) | (67, 68) | (67, 67))
}

fn is_dns_port(sp: u16, dp: u16) -> bool {
    sp == 53 || dp == 53
}

/// Stable flow id from the key and the flow's first packet time: the same input always gives the
/// same ids. Kept below 2^53 so that every JSON reader holds it exactly.
///
/// The mix is crosswire's own (a fixed sequence of multiply-xorshift rounds, as in splitmix64)
/// rather than a library hasher, so the ids cannot change with a dependency's version; it is
/// not meant to resist chosen input (flow ids are labels, not table keys).
fn flow_id(key: &Key, first_us: u64) -> u64 {
    fn mix(h: u64, w: u64) -> u64 {
        let mut z = (h ^ w).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let words = [key.a[0], key.a[1], key.b[0], key.b[1], key.misc(), first_us];
    words.iter().fold(0x6372_6f73_7377_6972, |h, &w| mix(h, w)) & ((1 << 51) - 1)
}

/// After a TLS hello: passes over a non-handshake record (encrypted data, alerts,
/// ChangeCipherSpec) by its header, never buffering its body. `skip` holds what is left of the
/// record across segments. Returns the bytes consumed and whether a new record started here.
fn pass_record(records: &mut u8, skip: &mut u32, buf: &[u8]) -> (usize, bool) {
    let started = *skip == 0;
    if started {
        *records = records.saturating_add(1);
        *skip = u32::try_from(tls::other_record_len(buf).unwrap_or(0)).unwrap_or(u32::MAX);
    }
    let n = usize::try_from(*skip).unwrap_or(usize::MAX).min(buf.len());
    *skip -= n as u32;
    (n, started)
}

struct Ctx<'l> {
    ts_us: u64,
    recv_ns: u64,
    dns_port: bool,
    krb_port: bool,
    limits: &'l Limits,
}

/// Hands over the events a flow was still completing. `recv_ns` is the receive time of the
/// packet (or moment) that ends the wait: capture-to-event latency measures the sensor, not the
/// protocol's wait for a reply.
fn flush_pending(tf: &mut TcpFlow, base: &MetaBase, recv_ns: u64, out: &mut Vec<Event>) {
    if let Some((d, ts, _recv, ev)) = tf.pending_tls.take().map(|b| *b) {
        out.push(Event {
            meta: base.meta(d, ts, recv_ns),
            kind: Kind::Tls(Box::new(ev)),
        });
    }
    while let Some((d, ts, _recv, req)) = tf.pending_http.pop_front() {
        out.push(Event {
            meta: base.meta(d, ts, recv_ns),
            kind: Kind::Http(Box::new(HttpEvent {
                request: req,
                response: None,
            })),
        });
    }
}

/// Writes the pending events of `tf` that have waited [`PENDING_WAIT_US`] or more.
fn release_overdue(
    tf: &mut TcpFlow,
    base: &MetaBase,
    now_us: u64,
    recv_ns: u64,
    out: &mut Vec<Event>,
) {
    let overdue = |ts: u64| ts.saturating_add(PENDING_WAIT_US) <= now_us;
    if tf.pending_tls.as_ref().is_some_and(|p| overdue(p.1))
        && let Some((d, ts, _recv, ev)) = tf.pending_tls.take().map(|b| *b)
    {
        out.push(Event {
            meta: base.meta(d, ts, recv_ns),
            kind: Kind::Tls(Box::new(ev)),
        });
    }
    while tf.pending_http.front().is_some_and(|p| overdue(p.1)) {
        let Some((d, ts, _recv, req)) = tf.pending_http.pop_front() else {
            break;
        };
        out.push(Event {
            meta: base.meta(d, ts, recv_ns),
            kind: Kind::Http(Box::new(HttpEvent {
                request: req,
                response: None,
            })),
        });
    }
}

/// Runs the application decoder of direction `dir` over its reassembled bytes.
#[allow(clippy::too_many_arguments)]
fn run_app(
    tf: &mut TcpFlow,
    dir: usize,
    gap: bool,
    ctx: &Ctx<'_>,
    counters: &mut Counters,
    dns_scratch: &mut Vec<dns::Message>,
    base: &MetaBase,
    direct: Option<&[u8]>,
    out: &mut Vec<Event>,
) {
    if gap {
        match &mut tf.dirs[dir].app {
            App::HttpClient(p) => p.gap(),
            App::HttpServer(p) => p.gap(),
            App::Detect | App::Scan { .. } => {}
            // Message boundaries are lost for length-prefixed and record protocols.
            app => *app = App::Done,
        }
    }
    let mut requests: Vec<http::Request> = Vec::new();
    let mut responses: Vec<http::Response> = Vec::new();
    // Bytes consumed so far: of `direct` (a segment decoded in place, nothing buffered before
    // it) or of the reassembly buffer.
    let mut off = 0usize;
    for _ in 0..MAX_APP_STEPS {
        let d = &mut tf.dirs[dir];
        let buf = match direct {
            Some(p) => p.get(off..).unwrap_or_default(),
            None => d.r.buf.get(off..).unwrap_or_default(),
        };
        let mut consumed = 0usize;
        let mut progress = true;
        match &mut d.app {
            App::Done => {
                consumed = buf.len();
                progress = false;
            }
            App::Detect => {
                if buf.len() < 6 && !ctx.dns_port && !ctx.krb_port {
                    break;
                }
                d.app = if ctx.dns_port {
                    App::Dns
                } else if ctx.krb_port {
                    App::Krb5
                } else if tls::looks_like_record(buf) {
                    match buf.get(5) {
                        Some(1) => App::TlsClient {
                            records: 0,
                            skip: 0,
                        },
                        Some(2) => App::TlsServer {
                            records: 0,
                            skip: 0,
                        },
                        _ => App::Scan { scanned: 0 },
                    }
                } else if http::looks_like_request(buf) {
                    App::HttpClient(Box::default())
                } else if http::looks_like_response(buf) {
                    App::HttpServer(Box::default())
                } else {
                    App::Scan { scanned: 0 }
                };
            }
            App::Dns => {
                let (Some(&hi), Some(&lo)) = (buf.first(), buf.get(1)) else {
                    break;
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                let Some(msg) = buf.get(2..2 + len) else {
                    break;
                };
                match dns::parse(msg) {
                    Ok(m) => dns_scratch.push(m),
                    Err(e) => counters.error("dns", e.reason()),
                }
                consumed = 2 + len;
            }
            App::Krb5 => {
                let Some(len) = buf.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
                    break;
                };
                let len = u32::from_be_bytes(len) as usize;
                if len > MAX_KRB5_FRAME {
                    counters.error("krb5", "frame_too_long");
                    d.app = App::Done;
                    continue;
                }
                let Some(frame) = buf.get(..4 + len) else {
                    break;
                };
                match krb5::parse(frame, true) {
                    Ok(m) => out.push(Event {
                        meta: base.meta(dir, ctx.ts_us, ctx.recv_ns),
                        kind: Kind::Krb5(Box::new(Krb5Event::from_message(&m))),
                    }),
                    Err(e) => counters.error("krb5", e.reason()),
                }
                consumed = 4 + len;
            }
            App::TlsClient { records, skip }
                if *skip > 0 || *records > 0 && tls::other_record_len(buf).is_some() =>
            {
                let started;
                (consumed, started) = pass_record(records, skip, buf);
                if started {
                    // The client moved on: its hello will not be completed by a server hello
                    // we have not seen by now (one-sided capture).
                    if let Some((pd, ts, _recv, ev)) = tf.pending_tls.take().map(|b| *b) {
                        out.push(Event {
                            meta: base.meta(pd, ts, ctx.recv_ns),
                            kind: Kind::Tls(Box::new(ev)),
                        });
                    }
                }
            }
            App::TlsClient { records, .. } => match tls::client_hello(buf) {
                tls::Parse::Done(ch, n) => {
                    if let Some((pd, ts, _recv, ev)) = tf.pending_tls.take().map(|b| *b) {
                        out.push(Event {
                            meta: base.meta(pd, ts, ctx.recv_ns),
                            kind: Kind::Tls(Box::new(ev)),
                        });
                    }
                    tf.pending_tls = Some(Box::new((
                        dir,
                        ctx.ts_us,
                        ctx.recv_ns,
                        TlsEvent {
                            hello: ch,
                            server: None,
                        },
                    )));
                    consumed = n;
                    *records += 1;
                }
                tls::Parse::Skip(n) => {
                    // The client moved on: its hello will not be completed by a server hello
                    // we have not seen by now (one-sided capture).
                    if let Some((pd, ts, _recv, ev)) = tf.pending_tls.take().map(|b| *b) {
                        out.push(Event {
                            meta: base.meta(pd, ts, ctx.recv_ns),
                            kind: Kind::Tls(Box::new(ev)),
                        });
                    }
                    consumed = n;
                    *records += 1;
                }
                tls::Parse::NeedMore => break,
                tls::Parse::Invalid(e) => {
                    // After a hello, an encrypted handshake record is expected to look invalid.
                    if *records == 0 {
                        counters.error("tls", e.reason());
                    }
                    d.app = App::Done;
                }
            },
            App::TlsServer { records, skip }
                if *skip > 0 || *records > 0 && tls::other_record_len(buf).is_some() =>
            {
                (consumed, _) = pass_record(records, skip, buf);
            }
            App::TlsServer { records, .. } => match tls::server_hello(buf) {
                tls::Parse::Done(sh, n) => {
                    let retry = sh.hello_retry;
                    if let Some((pd, ts, _recv, mut ev)) = tf.pending_tls.take().map(|b| *b) {
                        ev.server = Some(sh);
                        out.push(Event {
                            meta: base.meta(pd, ts, ctx.recv_ns),
                            kind: Kind::Tls(Box::new(ev)),
                        });
                    }
                    consumed = n;
                    *records += 1;
                    if !retry {
                        // Nothing after a ServerHello is decoded (certificates and the rest
                        // of the handshake are not logged): stop reading this direction.
                        d.app = App::Done;
                    }
                }
                tls::Parse::Skip(n) => {
                    consumed = n;
                    *records += 1;
                }
                tls::Parse::NeedMore => break,
                tls::Parse::Invalid(_) => {
                    d.app = App::Done;
                }
            },
            App::HttpClient(p) => {
                let f = p.feed(buf, &mut requests);
                (consumed, progress) = http_step(f, &mut d.app, counters);
            }
            App::HttpServer(p) => {
                let f = p.feed(buf, &mut responses);
                (consumed, progress) = http_step(f, &mut d.app, counters);
            }
            App::Scan { scanned } => {
                if let Some(k) = tls::find_client_hello(buf) {
                    consumed = k;
                    d.app = App::TlsClient {
                        records: 0,
                        skip: 0,
                    };
                } else if let Some(k) = find_server_hello(buf) {
                    consumed = k;
                    d.app = App::TlsServer {
                        records: 0,
                        skip: 0,
                    };
                } else {
                    // Keep a tail that could be the start of a record header.
                    consumed = buf.len().saturating_sub(5);
                    *scanned += consumed;
                    progress = false;
                    if *scanned > SCAN_CAP {
                        d.app = App::Done;
                    }
                }
            }
        }
        // Enforce the caps of the TLS states.
        match d.app {
            App::TlsClient { records, .. } | App::TlsServer { records, .. }
                if records > TLS_MAX_RECORDS =>
            {
                d.app = App::Done;
            }
            _ => {}
        }
        let consumed = consumed.min(buf.len());
        let left = buf.len() - consumed;
        off += consumed;
        d.inspected += consumed as u64;
        if d.inspected > ctx.limits.max_inspect && !matches!(d.app, App::Done) {
            counters.stream_inspect_cap += 1;
            d.app = App::Done;
        }
        if matches!(d.app, App::Done) || !progress || left == 0 {
            break;
        }
    }
    let d = &mut tf.dirs[dir];
    if matches!(d.app, App::Done) {
        d.r.clear();
    } else {
        match direct {
            Some(p) => d.r.keep(p.get(off..).unwrap_or_default()),
            None => d.r.consume(off),
        }
    }
    for m in dns_scratch.drain(..) {
        out.push(Event {
            meta: base.meta(dir, ctx.ts_us, ctx.recv_ns),
            kind: Kind::Dns(Box::new(m)),
        });
    }
    if !requests.is_empty() {
        // The response direction frames bodies by the request method (HEAD, CONNECT).
        let other = &mut tf.dirs[1 - dir].app;
        if matches!(other, App::Detect) {
            *other = App::HttpServer(Box::default());
        }
        if let App::HttpServer(p) = other {
            for r in &requests {
                p.request_method(&r.method);
            }
        }
    }
    for req in requests {
        if tf.pending_http.len() >= ctx.limits.max_pending_http
            && let Some((pd, ts, _recv, old)) = tf.pending_http.pop_front()
        {
            {
                out.push(Event {
                    meta: base.meta(pd, ts, ctx.recv_ns),
                    kind: Kind::Http(Box::new(HttpEvent {
                        request: old,
                        response: None,
                    })),
                });
            }
        }
        tf.pending_http
            .push_back((dir, ctx.ts_us, ctx.recv_ns, req));
    }
    for resp in responses {
        match tf.pending_http.pop_front() {
            Some((pd, ts, _recv, req)) => out.push(Event {
                meta: base.meta(pd, ts, ctx.recv_ns),
                kind: Kind::Http(Box::new(HttpEvent {
                    request: req,
                    response: Some(resp),
                })),
            }),
            None => counters.http_unmatched_responses += 1,
        }
    }
}

/// What one HTTP parser step means for the direction: (bytes consumed, progress made), and the
/// decoder that takes over when HTTP ends (a CONNECT/Upgrade tunnel, or a text protocol that
/// only looked like HTTP and may still start TLS).
fn http_step(f: http::Feed, app: &mut App, counters: &mut Counters) -> (usize, bool) {
    match f {
        http::Feed::Consumed(n) => (n, n > 0),
        http::Feed::Tunnel(n) => {
            *app = App::Scan { scanned: 0 };
            (n, true)
        }
        // SMTP `EHLO x`, FTP `USER x`: may still upgrade to TLS.
        http::Feed::Stop(http::Error::NotHttp) => {
            *app = App::Scan { scanned: 0 };
            (0, true)
        }
        http::Feed::Stop(e) => {
            if e.is_anomaly() {
                counters.error("http", e.reason());
            }
            *app = App::Done;
            (0, true)
        }
    }
}

/// Offset of a plausible TLS handshake record carrying a ServerHello (`16 03 0x len len 02`).
fn find_server_hello(buf: &[u8]) -> Option<usize> {
    buf.windows(6).position(|w| {
        w[0] == 0x16 && w[1] == 3 && w[2] <= 4 && w[5] == 2 && {
            let len = u16::from_be_bytes([w[3], w[4]]);
            (38..=16_640).contains(&len)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::net::{Tcp, Udp};

    const S: u64 = 1_000_000;

    fn frame(proto: u8, l4: L4<'_>) -> Frame<'_> {
        Frame {
            vlan: [0; 3],
            vlan_len: 0,
            tunnel: None,
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            proto,
            frag: None,
            l4,
            ttl: 64,
            inner_error: None,
        }
    }

    /// One UDP packet (no payload) from port `sp` to 9999 at `ts_us`.
    fn udp(t: &mut Table, sp: u16, ts_us: u64, out: &mut Vec<Event>) {
        let l4 = L4::Udp(Udp {
            src_port: sp,
            dst_port: 9999,
            payload: &[],
        });
        t.packet(ts_us, 0, &frame(17, l4), &l4, out);
    }

    fn udp_key(sp: u16) -> Key {
        let ip = |a| IpAddr::from([10, 0, 0, a]);
        Key::new(ip(1), sp, ip(2), 9999, 17, 0).0
    }

    fn has(t: &Table, sp: u16) -> bool {
        let k = udp_key(sp);
        t.flows.find(t.flows.hash(&k), &k).is_some()
    }

    #[test]
    fn a_full_table_evicts_the_oldest_flow_unless_it_was_active_since() {
        let limits = Limits {
            max_flows: 4,
            ..Limits::default()
        };
        let mut t = Table::new(limits);
        let mut out = Vec::new();
        for (i, sp) in (1000..1004).enumerate() {
            udp(&mut t, sp, (i as u64 + 1) * S, &mut out);
        }
        assert_eq!((t.len(), t.counters.flows_evicted), (4, 0));
        // A fifth flow takes the place of the first.
        udp(&mut t, 1004, 5 * S, &mut out);
        assert_eq!((t.len(), t.counters.flows_evicted), (4, 1));
        assert!(!has(&t, 1000) && has(&t, 1004));
        // The oldest flow now (1001) was active since: it gets a second chance, 1002 goes.
        udp(&mut t, 1001, 6 * S, &mut out);
        udp(&mut t, 1005, 7 * S, &mut out);
        assert!(has(&t, 1001) && !has(&t, 1002) && has(&t, 1005));
        // The first flow comes back as a new flow.
        udp(&mut t, 1000, 8 * S, &mut out);
        assert!(has(&t, 1000) && !has(&t, 1003));
        assert_eq!(t.counters.flows_created, 7);
        assert_eq!(t.counters.flows_evicted, 3);
        assert_eq!(t.len(), 4);
        assert_eq!(t.queue.len(), 4);
        // Idle past the UDP timeout: every flow expires, by packet time.
        udp(&mut t, 2000, 100 * S, &mut out);
        assert_eq!(t.counters.flows_expired, 4);
        assert_eq!(t.len(), 1);
        assert_eq!(t.queue.len(), 1);
        t.flush(0, &mut out);
        assert!(t.is_empty() && t.queue.is_empty());
        assert!(out.is_empty());
    }

    #[test]
    fn an_evicted_flow_hands_over_its_pending_request() {
        let limits = Limits {
            max_flows: 2,
            ..Limits::default()
        };
        let mut t = Table::new(limits);
        let mut out = Vec::new();
        let req = b"GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n";
        let l4 = L4::Tcp(Tcp {
            src_port: 40000,
            dst_port: 80,
            seq: 1,
            ack: 1,
            flags: 0x18,
            window: 1024,
            payload: req,
        });
        t.packet(S, 0, &frame(6, l4), &l4, &mut out);
        assert!(out.is_empty(), "the request waits for its response");
        udp(&mut t, 1000, 2 * S, &mut out);
        assert!(out.is_empty());
        // A third flow evicts the TCP flow, which writes its request without a response.
        udp(&mut t, 1001, 2 * S + 1, &mut out);
        assert_eq!(t.counters.flows_evicted, 1);
        assert_eq!(out.len(), 1);
        let Kind::Http(h) = &out[0].kind else {
            panic!("not an HTTP event");
        };
        assert!(h.response.is_none());
        assert_eq!(out[0].meta.ts_us, S);
        assert_eq!(out[0].meta.dst_port, 80);
    }

    #[test]
    fn an_unanswered_request_is_written_once_its_wait_is_over_in_packet_time() {
        let mut t = Table::new(Limits::default());
        let mut out = Vec::new();
        let request = |seq: u32| {
            L4::Tcp(Tcp {
                src_port: 40000,
                dst_port: 80,
                seq,
                ack: 1,
                flags: 0x18,
                window: 1024,
                payload: b"GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n",
            })
        };
        let l4 = request(1);
        t.packet(S, 0, &frame(6, l4), &l4, &mut out);
        // Other traffic within the wait: the request still waits for its response.
        udp(&mut t, 1000, S + PENDING_WAIT_US - 1, &mut out);
        assert!(out.is_empty());
        // At the end of the wait, any packet of the worker releases it, and only once.
        udp(&mut t, 1000, S + PENDING_WAIT_US, &mut out);
        assert_eq!(out.len(), 1);
        let Kind::Http(h) = &out[0].kind else {
            panic!("not an HTTP event");
        };
        assert!(h.response.is_none());
        assert_eq!((out[0].meta.ts_us, out[0].meta.dst_port), (S, 80));
        udp(&mut t, 1000, 10 * S, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(t.len(), 2, "the TCP flow itself lives on");
    }

    #[test]
    fn encrypted_records_are_passed_over_across_segments_without_buffering() {
        // Application data (type 23), TLS 1.2, 100-byte body, arriving in three segments.
        let mut first = vec![23u8, 3, 3, 0, 100];
        first.extend_from_slice(&[0xaa; 30]);
        let (mut records, mut skip) = (1u8, 0u32);
        assert_eq!(pass_record(&mut records, &mut skip, &first), (35, true));
        assert_eq!((records, skip), (2, 70));
        assert_eq!(
            pass_record(&mut records, &mut skip, &[0xbb; 50]),
            (50, false)
        );
        assert_eq!(skip, 20);
        // The last 20 bytes, then the next record's header in the same segment.
        let mut last = vec![0xcc; 20];
        last.extend_from_slice(&[21, 3, 3, 0, 2, 1, 0]);
        assert_eq!(pass_record(&mut records, &mut skip, &last), (20, false));
        assert_eq!(skip, 0);
        assert_eq!(pass_record(&mut records, &mut skip, &last[20..]), (7, true));
        assert_eq!((records, skip), (3, 0));
        // A handshake record is not passed over this way.
        assert_eq!(tls::other_record_len(&[22, 3, 3, 0, 4, 1, 0, 0, 0]), None);
    }
}
