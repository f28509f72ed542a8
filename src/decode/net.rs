//! Link layer to transport layer decoding, tunnels included.
//!
//! # Job
//! [`decode`] turns one captured frame (a pcap `LINKTYPE_*` number plus the captured bytes) into a
//! [`Frame`]: the VLAN ids seen, the outermost tunnel, the innermost IP pair and protocol, fragment
//! information, and a borrowed view of the transport layer ([`L4`]). Nothing is copied: every
//! payload in the result is a sub-slice of the input.
//!
//! Link types: NULL/LOOP, Ethernet, FDDI, raw IP (12, 14, 101, 228, 229), Linux SLL and SLL2,
//! NFLOG, IEEE 802.11 and 802.11 + radiotap. L2.5: 802.1Q/802.1ad/0x9100 VLAN tags, MPLS (incl.
//! Ethernet pseudowire with control word), PPPoE session, 802.2 LLC/SNAP. Tunnels: GRE (v0 and the
//! v1 "enhanced GRE" of PPTP), ERSPAN I/II/III, Aruba WLAN GRE (802.11 inside), VXLAN, Geneve,
//! Teredo, GTP-U, IPv4-in-IP, IPv6-in-IP (6in4, 6in6, 4in6).
//!
//! IPv4/IPv6 headers, IPv6 extension headers and TCP/UDP headers are sliced with `etherparse`
//! (its *lax* IP slicing, so a frame cut by the snaplen still yields what is present). Everything
//! else (link types, L2.5, tunnels) is written by hand here because etherparse does not cover it.
//! Checksums are never verified.
//!
//! # Caps (hitting one is counted through an [`Error`] value or [`Frame::inner_error`], never a panic)
//! - [`MAX_LAYERS`]: decoding steps per frame (each header is one step).
//! - [`MAX_TUNNEL_DEPTH`]: encapsulations unwrapped (IP tunnels, MPLS, PPPoE).
//! - [`MAX_VLAN_TAGS`]: VLAN tags skipped per frame; only the first [`VLAN_IDS`] ids are recorded.
//! - [`MAX_MPLS_LABELS`], [`MAX_NFLOG_TLVS`], [`MAX_GTP_EXT_HEADERS`]: loops over hostile data.
//! - IPv6 extension headers are walked by etherparse; each is at least 8 bytes, so that loop is
//!   bounded by the packet length.
//!
//! # Guarantees
//! - No panics on any input: every read goes through `get`/`first_chunk`/`split_at_checked`
//!   after a single length check per header, constant indexes only into fixed-size arrays.
//! - [`decode`] and [`decode_l4`] allocate nothing on the heap.
//! - Tunnel fallback: when a tunnel's inner decode fails (truncated, not IP, depth cap), the outer
//!   packet is returned as the result, with [`Frame::inner_error`] set, so it is never lost.
//! - Unknown link types give [`Error::UnsupportedLinkType`]; frames without IP give
//!   [`Error::NotIp`].

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{
    IpNumber, Ipv6ExtensionSlice, Ipv6ExtensionsSlice, LaxIpSlice, TcpHeaderSlice, UdpHeaderSlice,
};

/// Maximum decoding steps (headers) per frame.
pub const MAX_LAYERS: usize = 32;
/// Maximum encapsulations (tunnels, MPLS, PPPoE) unwrapped per frame.
pub const MAX_TUNNEL_DEPTH: u8 = 8;
/// Maximum VLAN tags skipped per frame.
pub const MAX_VLAN_TAGS: u8 = 8;
/// Number of VLAN ids recorded in [`Frame::vlan`].
pub const VLAN_IDS: usize = 3;
/// Maximum MPLS labels walked before the bottom of stack.
pub const MAX_MPLS_LABELS: usize = 16;
/// Maximum NFLOG TLVs walked looking for the payload.
pub const MAX_NFLOG_TLVS: usize = 64;
/// Maximum GTP-U extension headers walked.
pub const MAX_GTP_EXT_HEADERS: usize = 8;

/// pcap link types handled by [`decode`] (LINKTYPE_* numbers).
pub mod linktype {
    /// BSD loopback, host byte order family.
    pub const NULL: i32 = 0;
    /// Ethernet.
    pub const ETHERNET: i32 = 1;
    /// FDDI.
    pub const FDDI: i32 = 10;
    /// Raw IP (some BSDs).
    pub const RAW_12: i32 = 12;
    /// Raw IP (some BSDs).
    pub const RAW_14: i32 = 14;
    /// Raw IP.
    pub const RAW: i32 = 101;
    /// IEEE 802.11 without radio header.
    pub const IEEE802_11: i32 = 105;
    /// OpenBSD loopback, network byte order family.
    pub const LOOP: i32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: i32 = 113;
    /// IEEE 802.11 with radiotap header.
    pub const IEEE802_11_RADIOTAP: i32 = 127;
    /// Raw IPv4.
    pub const IPV4: i32 = 228;
    /// Raw IPv6.
    pub const IPV6: i32 = 229;
    /// Linux netfilter NFLOG.
    pub const NFLOG: i32 = 239;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: i32 = 276;
}

/// One decoded frame. All slices borrow from the captured bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// VLAN ids, outermost first (only the first `vlan_len` entries are meaningful).
    pub vlan: [u16; VLAN_IDS],
    /// Number of VLAN ids recorded in `vlan` (at most [`VLAN_IDS`]).
    pub vlan_len: u8,
    /// Outermost encapsulation: the outermost IP-carried tunnel with its outer IP pair if there is
    /// one, else the outermost L2.5 encapsulation (MPLS/PPPoE, addresses unspecified). `depth` is
    /// the number of encapsulations unwrapped to reach this frame's IP layer.
    pub tunnel: Option<Tunnel>,
    /// Innermost IP source address.
    pub src: IpAddr,
    /// Innermost IP destination address.
    pub dst: IpAddr,
    /// Innermost IP protocol (after IPv6 extension headers / IPv4 AH). For a fragment, the
    /// protocol of the fragmented payload.
    pub proto: u8,
    /// Set when the innermost IP packet is a fragment; `l4` is then `L4::Other(fragment data)`.
    pub frag: Option<Fragment>,
    /// Transport layer view.
    pub l4: L4<'a>,
    /// IP TTL / hop limit of the innermost IP packet.
    pub ttl: u8,
    /// Set when a tunnel was detected but its inner packet could not be decoded (or a cap was
    /// hit); this frame is then the outer packet. Count it, do not drop the frame.
    pub inner_error: Option<Error>,
}

impl Frame<'_> {
    /// The recorded VLAN ids, outermost first.
    pub fn vlans(&self) -> &[u16] {
        self.vlan.get(..usize::from(self.vlan_len)).unwrap_or(&[])
    }
}

/// The outermost encapsulation of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    /// Kind of the outermost encapsulation.
    pub kind: TunnelKind,
    /// Outer IP source (unspecified for MPLS/PPPoE without an IP tunnel).
    pub src: IpAddr,
    /// Outer IP destination (unspecified for MPLS/PPPoE without an IP tunnel).
    pub dst: IpAddr,
    /// Number of encapsulations unwrapped (1 = one tunnel).
    pub depth: u8,
}

/// Kind of encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// GRE (any payload except ERSPAN).
    Gre,
    /// ERSPAN type I, II or III (over GRE).
    Erspan,
    /// VXLAN (UDP 4789).
    Vxlan,
    /// Geneve (UDP 6081).
    Geneve,
    /// Teredo (UDP 3544).
    Teredo,
    /// GTP-U (UDP 2152).
    GtpU,
    /// IPv4 in IP (protocol 4).
    IpInIp,
    /// IPv6 in IP (protocol 41: 6in4, 6in6).
    Ipv6InIp,
    /// MPLS label stack (L2.5, no outer IP pair).
    Mpls,
    /// PPPoE session (L2.5, no outer IP pair).
    Pppoe,
}

impl TunnelKind {
    /// Short lowercase name for output.
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::Gre => "gre",
            TunnelKind::Erspan => "erspan",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Teredo => "teredo",
            TunnelKind::GtpU => "gtpu",
            TunnelKind::IpInIp => "ipip",
            TunnelKind::Ipv6InIp => "ipv6inip",
            TunnelKind::Mpls => "mpls",
            TunnelKind::Pppoe => "pppoe",
        }
    }

    /// True for encapsulations carried by an outer IP packet.
    fn has_ip(self) -> bool {
        !matches!(self, TunnelKind::Mpls | TunnelKind::Pppoe)
    }
}

/// Fragment information of the innermost IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
    /// Offset of this fragment's data in the reassembled payload, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
}

/// Transport layer view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4<'a> {
    /// TCP segment.
    Tcp(Tcp<'a>),
    /// UDP datagram.
    Udp(Udp<'a>),
    /// Any other protocol, a fragment, or a TCP/UDP header too short to read: the IP payload.
    Other(&'a [u8]),
}

/// TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80).
    pub flags: u8,
    /// Receive window (unscaled).
    pub window: u16,
    /// Payload after the header and options (may be shorter than sent if truncated).
    pub payload: &'a [u8],
}

/// UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload (limited by the UDP length field when it is sane; may be truncated).
    pub payload: &'a [u8],
}

/// Protocol layer named in an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Link header (Ethernet, SLL, NULL, FDDI, ...).
    Link,
    /// 802.2 LLC / SNAP.
    Llc,
    /// NFLOG TLVs.
    Nflog,
    /// Radiotap header.
    Radiotap,
    /// IEEE 802.11 header.
    Wifi,
    /// VLAN tag.
    Vlan,
    /// MPLS label stack.
    Mpls,
    /// PPPoE / PPP.
    Pppoe,
    /// IPv4/IPv6 header.
    Ip,
    /// GRE header.
    Gre,
    /// ERSPAN header.
    Erspan,
    /// VXLAN / Geneve header.
    Overlay,
    /// GTP-U header.
    Gtp,
    /// Teredo header.
    Teredo,
}

/// Why a frame yields no IP packet. Small and `Copy`: counted per packet, not logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The pcap link type is not handled.
    #[error("unsupported link type {0}")]
    UnsupportedLinkType(i32),
    /// A header was cut short.
    #[error("truncated {0:?} header")]
    Truncated(Layer),
    /// A header had an impossible value.
    #[error("malformed {0:?} header")]
    Malformed(Layer),
    /// The frame does not carry IP (ARP, STP, 802.11 management, encrypted 802.11, ...).
    #[error("frame carries no IP")]
    NotIp,
    /// [`MAX_LAYERS`], [`MAX_TUNNEL_DEPTH`] or [`MAX_VLAN_TAGS`] reached.
    #[error("too many encapsulation layers")]
    TooDeep,
}

impl Error {
    /// Short snake_case name for a stats counter.
    pub fn reason(&self) -> &'static str {
        use Layer as L;
        match self {
            Error::UnsupportedLinkType(_) => "unsupported_link_type",
            Error::NotIp => "not_ip",
            Error::TooDeep => "too_deep",
            Error::Truncated(l) => match l {
                L::Link => "truncated_link",
                L::Llc => "truncated_llc",
                L::Nflog => "truncated_nflog",
                L::Radiotap => "truncated_radiotap",
                L::Wifi => "truncated_wifi",
                L::Vlan => "truncated_vlan",
                L::Mpls => "truncated_mpls",
                L::Pppoe => "truncated_pppoe",
                L::Ip => "truncated_ip",
                L::Gre => "truncated_gre",
                L::Erspan => "truncated_erspan",
                L::Overlay => "truncated_overlay",
                L::Gtp => "truncated_gtp",
                L::Teredo => "truncated_teredo",
            },
            Error::Malformed(l) => match l {
                L::Link => "malformed_link",
                L::Llc => "malformed_llc",
                L::Nflog => "malformed_nflog",
                L::Radiotap => "malformed_radiotap",
                L::Wifi => "malformed_wifi",
                L::Vlan => "malformed_vlan",
                L::Mpls => "malformed_mpls",
                L::Pppoe => "malformed_pppoe",
                L::Ip => "malformed_ip",
                L::Gre => "malformed_gre",
                L::Erspan => "malformed_erspan",
                L::Overlay => "malformed_overlay",
                L::Gtp => "malformed_gtp",
                L::Teredo => "malformed_teredo",
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Byte helpers (hand-written: etherparse has no link-layer/tunnel parsers for these).

#[inline]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Split `n` bytes off the front or report `Truncated(layer)`.
#[inline]
fn take<const N: usize>(d: &[u8], layer: Layer) -> Result<(&[u8; N], &[u8]), Error> {
    d.split_first_chunk::<N>().ok_or(Error::Truncated(layer))
}

/// Skip `n` bytes or report `Truncated(layer)`.
#[inline]
fn skip(d: &[u8], n: usize, layer: Layer) -> Result<&[u8], Error> {
    d.get(n..).ok_or(Error::Truncated(layer))
}

// ---------------------------------------------------------------------------------------------
// Decoder state machine.

/// Next header to decode.
#[derive(Clone, Copy)]
enum Step<'a> {
    Ether(&'a [u8]),
    EtherType(u16, &'a [u8]),
    Llc(&'a [u8]),
    Wifi(&'a [u8]),
    Mpls(&'a [u8]),
    Ppp(&'a [u8]),
    Ip(&'a [u8]),
}

#[derive(Clone, Copy)]
enum StepKind {
    Ether,
    EtherType,
    Llc,
    Wifi,
    Mpls,
    Ppp,
    Ip,
}

impl<'a> Step<'a> {
    /// (kind, ethertype for `EtherType` else 0, bytes).
    #[inline]
    fn split(self) -> (StepKind, u16, &'a [u8]) {
        match self {
            Step::Ether(d) => (StepKind::Ether, 0, d),
            Step::EtherType(t, d) => (StepKind::EtherType, t, d),
            Step::Llc(d) => (StepKind::Llc, 0, d),
            Step::Wifi(d) => (StepKind::Wifi, 0, d),
            Step::Mpls(d) => (StepKind::Mpls, 0, d),
            Step::Ppp(d) => (StepKind::Ppp, 0, d),
            Step::Ip(d) => (StepKind::Ip, 0, d),
        }
    }
}

enum Flow<'a> {
    Next(Step<'a>),
    Done(Parts<'a>),
}

/// What the IP step found: a [`Frame`] without the encapsulation state, which stays in
/// [`State`] until the frame is assembled once at the end. Under 128 bytes, so that passing it
/// up through the layers is a few register moves rather than a call to memcpy per move.
#[derive(Clone, Copy)]
struct Parts<'a> {
    ip: IpInfo,
    frag: Option<Fragment>,
    l4: L4<'a>,
    inner_error: Option<Error>,
}

/// The outer packet of a tunnel being unwrapped, with the encapsulation state it had.
#[derive(Clone, Copy)]
struct Outer<'a> {
    parts: Parts<'a>,
    vlan: [u16; VLAN_IDS],
    vlan_len: u8,
    tunnel: Option<Tunnel>,
}

impl<'a> Outer<'a> {
    fn frame(&self) -> Frame<'a> {
        assemble(self.vlan, self.vlan_len, self.tunnel, self.parts)
    }
}

#[inline]
fn assemble<'a>(
    vlan: [u16; VLAN_IDS],
    vlan_len: u8,
    tunnel: Option<Tunnel>,
    p: Parts<'a>,
) -> Frame<'a> {
    Frame {
        vlan,
        vlan_len,
        tunnel,
        src: p.ip.src,
        dst: p.ip.dst,
        proto: p.ip.proto,
        frag: p.frag,
        l4: p.l4,
        ttl: p.ip.ttl,
        inner_error: p.inner_error,
    }
}

struct State<'a> {
    vlan: [u16; VLAN_IDS],
    vlan_len: u8,
    vlan_tags: u8,
    tunnel: Option<Tunnel>,
    /// The last complete outer packet, returned if a tunnel's inner decode fails.
    fallback: Option<Outer<'a>>,
}

impl<'a> State<'a> {
    fn new() -> Self {
        State {
            vlan: [0; VLAN_IDS],
            vlan_len: 0,
            vlan_tags: 0,
            tunnel: None,
            fallback: None,
        }
    }

    fn depth(&self) -> u8 {
        self.tunnel.map_or(0, |t| t.depth)
    }

    /// Record one more encapsulation; `outer` is the outer IP pair for IP-carried tunnels.
    fn encap(&mut self, kind: TunnelKind, outer: Option<(IpAddr, IpAddr)>) -> Result<(), Error> {
        let depth = self.depth();
        if depth >= MAX_TUNNEL_DEPTH {
            return Err(Error::TooDeep);
        }
        let unspec = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let (src, dst) = outer.unwrap_or((unspec, unspec));
        self.tunnel = Some(match self.tunnel {
            // The first IP-carried tunnel replaces an L2.5 one, so the outer IP pair is reported.
            Some(t) if t.kind.has_ip() || !kind.has_ip() => Tunnel {
                depth: depth + 1,
                ..t
            },
            _ => Tunnel {
                kind,
                src,
                dst,
                depth: depth + 1,
            },
        });
        Ok(())
    }

    fn vlan(&mut self, tci: u16) -> Result<(), Error> {
        if self.vlan_tags >= MAX_VLAN_TAGS {
            return Err(Error::TooDeep);
        }
        self.vlan_tags += 1;
        if let Some(slot) = self.vlan.get_mut(usize::from(self.vlan_len)) {
            *slot = tci & 0x0fff;
            self.vlan_len += 1;
        }
        Ok(())
    }

    /// On error: the last outer frame if a tunnel was being unwrapped, else the error.
    fn fail(&mut self, e: Error) -> Result<Frame<'a>, Error> {
        match self.fallback.take() {
            Some(o) => {
                let mut f = o.frame();
                f.inner_error = Some(e);
                Ok(f)
            }
            None => Err(e),
        }
    }

    /// The frame of the innermost IP layer `p`, with the encapsulation state gathered.
    #[inline]
    fn frame(&self, p: Parts<'a>) -> Frame<'a> {
        assemble(self.vlan, self.vlan_len, self.tunnel, p)
    }
}

/// Decode one captured frame of pcap link type `link_type`.
///
/// Returns the innermost IP packet's view, or why there is none ([`Error::NotIp`] for non-IP
/// frames, counted separately by the caller). Allocates nothing; never panics.
pub fn decode(link_type: i32, data: &[u8]) -> Result<Frame<'_>, Error> {
    // Fast path: untagged Ethernet + IPv4/IPv6 goes straight to the IP step.
    if link_type == linktype::ETHERNET
        && let Some((h, rest)) = data.split_first_chunk::<14>()
        && matches!(be16([h[12], h[13]]), 0x0800 | 0x86dd)
    {
        let mut st = State::new();
        return match ip(&mut st, rest) {
            Ok(Flow::Done(p)) => Ok(st.frame(p)),
            Ok(Flow::Next(step)) => {
                let (kind, t, d) = step.split();
                run(&mut st, kind, t, d)
            }
            Err(e) => Err(e),
        };
    }
    let (kind, t, d) = link(link_type, data)?.split();
    run(&mut State::new(), kind, t, d)
}

/// Continue decoding a reassembled IP payload of `outer` (a frame with `frag` set), unwrapping
/// tunnels inside it (e.g. fragmented GTP-U or GRE) exactly like [`decode`] would.
/// The result has `frag: None`; the outer frame's VLANs and tunnel are kept.
pub fn decode_reassembled<'a>(outer: &Frame<'_>, payload: &'a [u8]) -> Frame<'a> {
    let mut st = State::new();
    st.vlan = outer.vlan;
    st.vlan_len = outer.vlan_len;
    st.tunnel = outer.tunnel;
    let ip = IpInfo {
        src: outer.src,
        dst: outer.dst,
        proto: outer.proto,
        ttl: outer.ttl,
    };
    let (proto, payload) = skip_ext_headers(outer.proto, payload);
    let ip = IpInfo { proto, ..ip };
    let flow = after_ip(&mut st, ip, payload, false);
    let base = Frame {
        vlan: outer.vlan,
        vlan_len: outer.vlan_len,
        tunnel: outer.tunnel,
        src: outer.src,
        dst: outer.dst,
        proto,
        frag: None,
        l4: L4::Other(payload),
        ttl: outer.ttl,
        inner_error: None,
    };
    match flow {
        Ok(Flow::Done(p)) => st.frame(p),
        Ok(Flow::Next(step)) => {
            let (kind, t, d) = step.split();
            run(&mut st, kind, t, d).unwrap_or(base)
        }
        Err(e) => Frame {
            inner_error: Some(e),
            ..base
        },
    }
}

fn run<'a>(
    st: &mut State<'a>,
    mut kind: StepKind,
    mut t: u16,
    mut d: &'a [u8],
) -> Result<Frame<'a>, Error> {
    // The step is carried as plain scalars (kind, ethertype, bytes), passed in registers rather
    // than as a `Step` in memory (its fields written narrow and read back wide would stall
    // store forwarding), and each arm yields the small `Result<Step>` rather than the
    // frame-sized `Result<Flow>`: the next step stays in registers between layers. The state
    // is borrowed, not moved: it is 192 bytes.
    for _ in 0..MAX_LAYERS {
        let next = match kind {
            StepKind::Ip => match ip(st, d) {
                Ok(Flow::Next(s)) => Ok(s),
                Ok(Flow::Done(p)) => return Ok(st.frame(p)),
                Err(e) => Err(e),
            },
            StepKind::Ether => ether(d),
            StepKind::EtherType => ethertype(st, t, d),
            StepKind::Llc => llc(d),
            StepKind::Wifi => wifi(d),
            StepKind::Mpls => mpls(d),
            StepKind::Ppp => ppp(d),
        };
        match next {
            Ok(s) => (kind, t, d) = s.split(),
            Err(e) => return st.fail(e),
        }
    }
    st.fail(Error::TooDeep)
}

// ---------------------------------------------------------------------------------------------
// Link types (hand-written).

fn link(link_type: i32, d: &[u8]) -> Result<Step<'_>, Error> {
    match link_type {
        linktype::ETHERNET => Ok(Step::Ether(d)),
        linktype::NULL | linktype::LOOP => {
            let (fam, rest) = take::<4>(d, Layer::Link)?;
            // Either byte order: the family is small, so a value above 0xffff is byte-swapped.
            let mut v = u32::from_le_bytes(*fam);
            if v > 0xffff {
                v = v.swap_bytes();
            }
            match v {
                2 | 24 | 28 | 30 => Ok(Step::Ip(rest)),
                _ => Err(Error::NotIp),
            }
        }
        linktype::RAW_12 | linktype::RAW_14 | linktype::RAW | linktype::IPV4 | linktype::IPV6 => {
            Ok(Step::Ip(d))
        }
        linktype::FDDI => {
            // Frame control (1) + destination (6) + source (6); then 802.2 LLC.
            Ok(Step::Llc(skip(d, 13, Layer::Link)?))
        }
        linktype::LINUX_SLL => {
            let (h, rest) = take::<16>(d, Layer::Link)?;
            Ok(sll_proto(be16([h[14], h[15]]), rest))
        }
        linktype::LINUX_SLL2 => {
            let (h, rest) = take::<20>(d, Layer::Link)?;
            Ok(sll_proto(be16([h[0], h[1]]), rest))
        }
        linktype::NFLOG => nflog(d),
        linktype::IEEE802_11 => Ok(Step::Wifi(d)),
        linktype::IEEE802_11_RADIOTAP => {
            let (h, _) = take::<4>(d, Layer::Radiotap)?;
            if h[0] != 0 {
                return Err(Error::Malformed(Layer::Radiotap));
            }
            let len = usize::from(u16::from_le_bytes([h[2], h[3]]));
            if len < 8 {
                return Err(Error::Malformed(Layer::Radiotap));
            }
            Ok(Step::Wifi(skip(d, len, Layer::Radiotap)?))
        }
        n => Err(Error::UnsupportedLinkType(n)),
    }
}

/// Linux SLL protocol field: an ethertype, or 0x0004 for 802.2 LLC frames.
fn sll_proto(proto: u16, rest: &[u8]) -> Step<'_> {
    match proto {
        0x0004 => Step::Llc(rest),
        t => Step::EtherType(t, rest),
    }
}

/// NFLOG: 4-byte header, then TLVs (little-endian length incl. the 4-byte TLV header, type,
/// value padded to 4 bytes). The packet is TLV type 9 (NFULA_PAYLOAD).
fn nflog(d: &[u8]) -> Result<Step<'_>, Error> {
    let (_, mut rest) = take::<4>(d, Layer::Nflog)?;
    for _ in 0..MAX_NFLOG_TLVS {
        let (h, _) = take::<4>(rest, Layer::Nflog)?;
        let len = usize::from(u16::from_le_bytes([h[0], h[1]]));
        let typ = u16::from_le_bytes([h[2], h[3]]) & 0x7fff;
        if len < 4 {
            return Err(Error::Malformed(Layer::Nflog));
        }
        if typ == 9 {
            // A truncated capture may hold less than `len`: take what is there.
            let end = len.min(rest.len());
            return Ok(Step::Ip(rest.get(4..end).unwrap_or(&[])));
        }
        let padded = (len + 3) & !3;
        rest = match rest.get(padded..) {
            Some(r) if !r.is_empty() => r,
            _ => return Err(Error::NotIp),
        };
    }
    Err(Error::TooDeep)
}

fn ether(d: &[u8]) -> Result<Step<'_>, Error> {
    let (h, rest) = take::<14>(d, Layer::Link)?;
    let t = be16([h[12], h[13]]);
    if t <= 1500 {
        // 802.3 length field: an LLC header follows.
        return Ok(Step::Llc(rest));
    }
    Ok(Step::EtherType(t, rest))
}

/// 802.2 LLC: only SNAP (AA AA 03 + OUI + ethertype) can carry IP here.
fn llc(d: &[u8]) -> Result<Step<'_>, Error> {
    let (h, rest) = take::<3>(d, Layer::Llc)?;
    if h != &[0xaa, 0xaa, 0x03] {
        return Err(Error::NotIp);
    }
    let (snap, rest2) = take::<5>(rest, Layer::Llc)?;
    Ok(Step::EtherType(be16([snap[3], snap[4]]), rest2))
}

/// IEEE 802.11 MAC header; only data frames carry IP (via LLC/SNAP).
fn wifi(d: &[u8]) -> Result<Step<'_>, Error> {
    let (h, _) = take::<24>(d, Layer::Wifi)?;
    let fc0 = h[0];
    let fc1 = h[1];
    if fc0 & 0x03 != 0 {
        return Err(Error::Malformed(Layer::Wifi));
    }
    let ftype = (fc0 >> 2) & 0x03;
    let subtype = fc0 >> 4;
    // Data frames only; subtypes with bit 2 set carry no body (null data); protected frames are
    // encrypted.
    if ftype != 2 || subtype & 0x04 != 0 || fc1 & 0x40 != 0 {
        return Err(Error::NotIp);
    }
    let mut hlen = 24;
    if fc1 & 0x03 == 0x03 {
        hlen += 6; // 4-address frame
    }
    let mut amsdu = false;
    if subtype & 0x08 != 0 {
        // QoS data: 2-byte QoS control; bit 7 = A-MSDU present.
        let qos = d.get(hlen).copied().ok_or(Error::Truncated(Layer::Wifi))?;
        amsdu = qos & 0x80 != 0;
        hlen += 2;
        if fc1 & 0x80 != 0 {
            hlen += 4; // HT control
        }
    }
    let mut body = skip(d, hlen, Layer::Wifi)?;
    if amsdu {
        // First A-MSDU subframe only: DA(6) SA(6) length(2), then LLC.
        body = skip(body, 14, Layer::Wifi)?;
    }
    Ok(Step::Llc(body))
}

// ---------------------------------------------------------------------------------------------
// Ethertypes and L2.5 (hand-written).

fn ethertype<'a>(st: &mut State<'a>, t: u16, d: &'a [u8]) -> Result<Step<'a>, Error> {
    match t {
        0x0800 | 0x86dd => Ok(Step::Ip(d)),
        0x8100 | 0x88a8 | 0x9100 => {
            let (h, rest) = take::<4>(d, Layer::Vlan)?;
            st.vlan(be16([h[0], h[1]]))?;
            let inner = be16([h[2], h[3]]);
            if inner <= 1500 {
                return Ok(Step::Llc(rest));
            }
            Ok(Step::EtherType(inner, rest))
        }
        0x8847 | 0x8848 => {
            st.encap(TunnelKind::Mpls, None)?;
            Ok(Step::Mpls(d))
        }
        0x8864 => {
            st.encap(TunnelKind::Pppoe, None)?;
            // ver/type, code, session id, length; then the PPP protocol.
            let (h, rest) = take::<6>(d, Layer::Pppoe)?;
            if h[0] != 0x11 || h[1] != 0 {
                return Err(Error::Malformed(Layer::Pppoe));
            }
            let len = usize::from(be16([h[4], h[5]]));
            Ok(Step::Ppp(rest.get(..len).unwrap_or(rest)))
        }
        0x6558 => Ok(Step::Ether(d)),
        0x880b => Ok(Step::Ppp(d)),
        _ => Err(Error::NotIp),
    }
}

/// PPP: optional address/control FF 03, then a 1- or 2-byte protocol.
fn ppp(d: &[u8]) -> Result<Step<'_>, Error> {
    let d = d.strip_prefix(&[0xff, 0x03]).unwrap_or(d);
    let (&first, _) = d.split_first().ok_or(Error::Truncated(Layer::Pppoe))?;
    let (proto, rest) = if first & 1 == 1 {
        (u16::from(first), skip(d, 1, Layer::Pppoe)?) // compressed protocol field
    } else {
        let (p, rest) = take::<2>(d, Layer::Pppoe)?;
        (be16(*p), rest)
    };
    match proto {
        0x0021 | 0x0057 => Ok(Step::Ip(rest)),
        _ => Err(Error::NotIp),
    }
}

/// MPLS label stack to the bottom of stack, then guess the payload from its first nibble.
fn mpls(mut d: &[u8]) -> Result<Step<'_>, Error> {
    for _ in 0..MAX_MPLS_LABELS {
        let (l, rest) = take::<4>(d, Layer::Mpls)?;
        d = rest;
        if l[2] & 0x01 != 0 {
            let (&first, _) = d.split_first().ok_or(Error::Truncated(Layer::Mpls))?;
            return match first >> 4 {
                4 | 6 => Ok(Step::Ip(d)),
                // Ethernet pseudowire with a 4-byte control word.
                0 => Ok(Step::Ether(skip(d, 4, Layer::Mpls)?)),
                _ => Err(Error::NotIp),
            };
        }
    }
    Err(Error::TooDeep)
}

// ---------------------------------------------------------------------------------------------
// IP (etherparse) and what follows it.

// TODO(issue 7): `after_ip` stalls on store forwarding where it reads this back right after
// `ip` wrote it (the `IpAddr` fields are written narrow, read wide); addresses held as whole
// words would avoid it.
#[derive(Clone, Copy)]
struct IpInfo {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ttl: u8,
}

#[inline]
fn ip<'a>(st: &mut State<'a>, d: &'a [u8]) -> Result<Flow<'a>, Error> {
    // Fast path, by hand: IPv4 without options and not fragmented, the bulk of any tap's
    // traffic. Everything else (options, fragments, IPv6 extension headers, odd lengths) takes
    // etherparse's lax slicing below.
    if let Some(h) = d.first_chunk::<20>()
        && h[0] == 0x45
        && be16([h[6], h[7]]) & 0x3fff == 0
    {
        let total = usize::from(be16([h[2], h[3]]));
        if total >= 20 {
            let payload = d.get(20..total.min(d.len())).unwrap_or(&[]);
            let info = IpInfo {
                src: IpAddr::V4(std::net::Ipv4Addr::new(h[12], h[13], h[14], h[15])),
                dst: IpAddr::V4(std::net::Ipv4Addr::new(h[16], h[17], h[18], h[19])),
                proto: h[9],
                ttl: h[8],
            };
            return after_ip(st, info, payload, total > d.len());
        }
    }
    use etherparse::err::ip::LaxHeaderSliceError as E;
    let (slice, _ext_err) = LaxIpSlice::from_slice(d).map_err(|e| match e {
        E::Len(_) => Error::Truncated(Layer::Ip),
        E::Content(_) => Error::Malformed(Layer::Ip),
    })?;
    let (info, frag, payload, incomplete) = match &slice {
        LaxIpSlice::Ipv4(s) => {
            let h = s.header();
            let pl = s.payload();
            let info = IpInfo {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                proto: pl.ip_number.0,
                ttl: h.ttl(),
            };
            let frag = pl.fragmented.then(|| Fragment {
                id: u32::from(h.identification()),
                offset: u32::from(h.fragments_offset().value()) * 8,
                more: h.more_fragments(),
            });
            (info, frag, pl.payload, pl.incomplete)
        }
        LaxIpSlice::Ipv6(s) => {
            let h = s.header();
            let pl = s.payload();
            let mut info = IpInfo {
                src: IpAddr::V6(h.source_addr()),
                dst: IpAddr::V6(h.destination_addr()),
                proto: pl.ip_number.0,
                ttl: h.hop_limit(),
            };
            if pl.fragmented {
                let exts = s.extensions();
                let (f, proto, data) = ipv6_fragment(d, exts, pl.payload.len());
                info.proto = proto;
                (info, f, data, pl.incomplete)
            } else {
                (info, None, pl.payload, pl.incomplete)
            }
        }
    };
    if let Some(f) = frag {
        return Ok(Flow::Done(parts(info, Some(f), L4::Other(payload))));
    }
    after_ip(st, info, payload, incomplete)
}

/// Locate the (first fragmenting) IPv6 fragment header: its info, its next header, and the data
/// after it. etherparse keeps parsing extension headers after a fragment header, which is wrong
/// for non-first fragments, so the data is re-sliced from the fragment header's position.
fn ipv6_fragment<'a>(
    d: &'a [u8],
    exts: &Ipv6ExtensionsSlice<'a>,
    payload_len: usize,
) -> (Option<Fragment>, u8, &'a [u8]) {
    let end = 40 + exts.slice().len() + payload_len;
    let mut off = 40;
    for ext in exts.clone() {
        match ext {
            Ipv6ExtensionSlice::Fragment(f) if f.is_fragmenting_payload() => {
                let frag = Fragment {
                    id: f.identification(),
                    offset: u32::from(f.fragment_offset().value()) * 8,
                    more: f.more_fragments(),
                };
                let data = d.get(off + 8..end).unwrap_or(&[]);
                return (Some(frag), f.next_header().0, data);
            }
            Ipv6ExtensionSlice::Fragment(f) => off += f.slice().len(),
            Ipv6ExtensionSlice::HopByHop(s)
            | Ipv6ExtensionSlice::Routing(s)
            | Ipv6ExtensionSlice::DestinationOptions(s) => off += s.slice().len(),
            Ipv6ExtensionSlice::Authentication(s) => off += s.slice().len(),
        }
    }
    (None, 0, d.get(end..end).unwrap_or(&[]))
}

#[inline]
fn parts(ip: IpInfo, frag: Option<Fragment>, l4: L4<'_>) -> Parts<'_> {
    Parts {
        ip,
        frag,
        l4,
        inner_error: None,
    }
}

/// After the IP header (and extension headers): transport or tunnel.
#[inline]
fn after_ip<'a>(
    st: &mut State<'a>,
    ip: IpInfo,
    payload: &'a [u8],
    incomplete: bool,
) -> Result<Flow<'a>, Error> {
    match ip.proto {
        6 => Ok(Flow::Done(parts(ip, None, tcp(payload)))),
        17 => {
            let l4 = udp(payload);
            let L4::Udp(u) = l4 else {
                return Ok(Flow::Done(parts(ip, None, l4)));
            };
            let outer = parts(ip, None, l4);
            let found = udp_tunnel(u.dst_port, u.payload, incomplete)
                .or_else(|| udp_tunnel(u.src_port, u.payload, incomplete));
            match found {
                Some((kind, step)) => tunnel(st, outer, kind, step),
                None => Ok(Flow::Done(outer)),
            }
        }
        47 => {
            let outer = parts(ip, None, L4::Other(payload));
            match gre(payload) {
                Ok((kind, step)) => tunnel(st, outer, kind, step),
                // Not a GRE we understand: the GRE packet itself is the result.
                Err(e) => Ok(Flow::Done(Parts {
                    inner_error: Some(e),
                    ..outer
                })),
            }
        }
        4 | 41 => {
            let outer = parts(ip, None, L4::Other(payload));
            let kind = if ip.proto == 4 {
                TunnelKind::IpInIp
            } else {
                TunnelKind::Ipv6InIp
            };
            tunnel(st, outer, kind, Step::Ip(payload))
        }
        _ => Ok(Flow::Done(parts(ip, None, L4::Other(payload)))),
    }
}

/// Enter a tunnel: remember the outer frame as the fallback, record the encapsulation.
fn tunnel<'a>(
    st: &mut State<'a>,
    outer: Parts<'a>,
    kind: TunnelKind,
    step: Step<'a>,
) -> Result<Flow<'a>, Error> {
    let before = Outer {
        parts: outer,
        vlan: st.vlan,
        vlan_len: st.vlan_len,
        tunnel: st.tunnel,
    };
    if let Err(e) = st.encap(kind, Some((outer.ip.src, outer.ip.dst))) {
        return Ok(Flow::Done(Parts {
            inner_error: Some(e),
            ..outer
        }));
    }
    st.fallback = Some(before);
    Ok(Flow::Next(step))
}

/// Transport view of an IP payload with protocol `proto` (TCP and UDP headers via etherparse).
/// Used for reassembled fragments; IPv6 extension headers / AH at the start are skipped.
/// Never fails: an unreadable header gives `L4::Other(ip_payload)`. Allocates nothing.
pub fn decode_l4(proto: u8, ip_payload: &[u8]) -> L4<'_> {
    let (proto, payload) = skip_ext_headers(proto, ip_payload);
    match proto {
        6 => tcp(payload),
        17 => udp(payload),
        _ => L4::Other(payload),
    }
}

/// Skip IPv6 extension headers (hop-by-hop, routing, fragment, destination options) and AH at
/// the start of a (reassembled) payload. Bounded by the payload length (each header >= 8 bytes).
fn skip_ext_headers(proto: u8, payload: &[u8]) -> (u8, &[u8]) {
    match proto {
        0 | 43 | 44 | 51 | 60 => {
            let (_, next, rest, _) = Ipv6ExtensionsSlice::from_slice_lax(IpNumber(proto), payload);
            (next.0, rest)
        }
        _ => (proto, payload),
    }
}

#[inline]
fn tcp(d: &[u8]) -> L4<'_> {
    match TcpHeaderSlice::from_slice(d) {
        Ok(h) => {
            let s = h.slice();
            L4::Tcp(Tcp {
                src_port: h.source_port(),
                dst_port: h.destination_port(),
                seq: h.sequence_number(),
                ack: h.acknowledgment_number(),
                flags: s.get(13).copied().unwrap_or(0),
                window: h.window_size(),
                payload: d.get(s.len()..).unwrap_or(&[]),
            })
        }
        Err(_) => L4::Other(d),
    }
}

#[inline]
fn udp(d: &[u8]) -> L4<'_> {
    match UdpHeaderSlice::from_slice(d) {
        Ok(h) => {
            let len = usize::from(h.length());
            // Length 0 (jumbogram) or nonsense: use what was captured.
            let body = d.get(8..).unwrap_or(&[]);
            let body = match len.checked_sub(8) {
                Some(n) => body.get(..n).unwrap_or(body),
                None => body,
            };
            L4::Udp(Udp {
                src_port: h.source_port(),
                dst_port: h.destination_port(),
                payload: body,
            })
        }
        Err(_) => L4::Other(d),
    }
}

// ---------------------------------------------------------------------------------------------
// Tunnels (hand-written).

/// UDP-carried tunnel on `port`, after a sanity check of its header.
fn udp_tunnel(port: u16, d: &[u8], incomplete: bool) -> Option<(TunnelKind, Step<'_>)> {
    match port {
        4789 => vxlan(d).map(|s| (TunnelKind::Vxlan, s)),
        6081 => geneve(d).map(|s| (TunnelKind::Geneve, s)),
        2152 => gtpu(d).map(|s| (TunnelKind::GtpU, s)),
        3544 => teredo(d, incomplete).map(|s| (TunnelKind::Teredo, s)),
        _ => None,
    }
}

/// VXLAN: flags (I bit 0x08 must be set), 3 reserved, VNI (3), reserved; then Ethernet.
fn vxlan(d: &[u8]) -> Option<Step<'_>> {
    let (h, rest) = d.split_first_chunk::<8>()?;
    (h[0] & 0x08 != 0).then_some(Step::Ether(rest))
}

/// Geneve: version (must be 0) + option length (4-byte units), flags, protocol type, VNI,
/// reserved, options; then the protocol type's payload.
fn geneve(d: &[u8]) -> Option<Step<'_>> {
    let (h, _) = d.split_first_chunk::<8>()?;
    if h[0] >> 6 != 0 {
        return None;
    }
    let len = 8 + usize::from(h[0] & 0x3f) * 4;
    let rest = d.get(len..)?;
    match be16([h[2], h[3]]) {
        0x6558 => Some(Step::Ether(rest)),
        t @ (0x0800 | 0x86dd) => Some(Step::EtherType(t, rest)),
        _ => None,
    }
}

/// GTP-U (v1): flags, message type (0xff = G-PDU), length, TEID, optional sequence/N-PDU/next
/// extension type, extension header chain; then IPv4/IPv6 by first nibble.
fn gtpu(d: &[u8]) -> Option<Step<'_>> {
    let (h, _) = d.split_first_chunk::<8>()?;
    let flags = h[0];
    if flags >> 5 != 1 || flags & 0x10 == 0 || h[1] != 0xff {
        return None;
    }
    let mut off = 8;
    if flags & 0x07 != 0 {
        let opt = d.get(8..12)?;
        off = 12;
        let mut next = opt.get(3).copied().unwrap_or(0);
        if flags & 0x04 != 0 {
            let mut n = 0;
            while next != 0 {
                if n >= MAX_GTP_EXT_HEADERS {
                    return None;
                }
                n += 1;
                // Extension header: length in 4-byte units (incl. itself), ..., next type.
                let len = usize::from(*d.get(off)?) * 4;
                if len == 0 {
                    return None;
                }
                next = *d.get(off + len - 1)?;
                off += len;
            }
        }
    }
    let rest = d.get(off..)?;
    match rest.first()? >> 4 {
        4 | 6 => Some(Step::Ip(rest)),
        _ => None,
    }
}

/// Teredo: optional authentication indicator (0x0001) and origin indicator (0x0000), then an
/// IPv6 packet whose length must match the UDP payload (or exceed it if the capture was cut).
fn teredo(d: &[u8], incomplete: bool) -> Option<Step<'_>> {
    let mut d = d;
    if let [0x00, 0x01, id_len, au_len, ..] = *d {
        // Auth: 4 + client id + auth value + nonce (8) + confirmation (1).
        d = d.get(4 + usize::from(id_len) + usize::from(au_len) + 9..)?;
    }
    if let [0x00, 0x00, ..] = *d {
        d = d.get(8..)?; // origin indication: port (2) + address (4)
    }
    let (h, _) = d.split_first_chunk::<40>()?;
    if h[0] >> 4 != 6 {
        return None;
    }
    let total = 40 + usize::from(be16([h[4], h[5]]));
    let ok = if incomplete {
        total >= d.len()
    } else {
        total == d.len()
    };
    ok.then_some(Step::Ip(d))
}

/// GRE (RFC 2784/2890, and version 1 of RFC 2637): returns the tunnel kind and the next step.
fn gre(d: &[u8]) -> Result<(TunnelKind, Step<'_>), Error> {
    let (h, _) = take::<4>(d, Layer::Gre)?;
    let (f0, f1) = (h[0], h[1]);
    let proto = be16([h[2], h[3]]);
    let seq = f0 & 0x10 != 0;
    let mut len = 4;
    match f1 & 0x07 {
        0 => {
            if f0 & 0x40 != 0 {
                // Source routing (RFC 1701): not supported.
                return Err(Error::Malformed(Layer::Gre));
            }
            if f0 & 0x80 != 0 {
                len += 4; // checksum + reserved
            }
            if f0 & 0x20 != 0 {
                len += 4; // key
            }
            if seq {
                len += 4;
            }
        }
        1 => {
            // Enhanced GRE (PPTP): key (payload length + call id) always, seq, ack.
            len += 4;
            if seq {
                len += 4;
            }
            if f1 & 0x80 != 0 {
                len += 4;
            }
        }
        _ => return Err(Error::Malformed(Layer::Gre)),
    }
    let rest = skip(d, len, Layer::Gre)?;
    match proto {
        0x88be => {
            // ERSPAN type II has an 8-byte header and the GRE sequence bit set; type I has neither.
            let rest = if seq {
                skip(rest, 8, Layer::Erspan)?
            } else {
                rest
            };
            Ok((TunnelKind::Erspan, Step::Ether(rest)))
        }
        0x22eb => {
            // ERSPAN type III: 12-byte header, optional 8-byte platform subheader (O bit).
            let (eh, mut rest) = take::<12>(rest, Layer::Erspan)?;
            if eh[11] & 0x01 != 0 {
                rest = skip(rest, 8, Layer::Erspan)?;
            }
            // Frame type (bits 10..14 of the last 16 bits): 0 Ethernet, 2 IP.
            let ft = (eh[10] >> 2) & 0x1f;
            match ft {
                0 => Ok((TunnelKind::Erspan, Step::Ether(rest))),
                2 => Ok((TunnelKind::Erspan, Step::Ip(rest))),
                _ => Err(Error::NotIp),
            }
        }
        // Aruba WLAN: 802.11 frames straight after GRE.
        0x8200..=0x8300 => Ok((TunnelKind::Gre, Step::Wifi(rest))),
        0x8847 | 0x8848 => Ok((TunnelKind::Gre, Step::Mpls(rest))),
        t => Ok((TunnelKind::Gre, Step::EtherType(t, rest))),
    }
}

#[cfg(test)]
#[path = "net_tests.rs"]
pub(crate) mod tests;
