// TEMPORARY interface stub, replaced by the real decoder.
use std::net::IpAddr;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    Gre,
    Erspan,
    Vxlan,
    Geneve,
    Teredo,
    GtpU,
    IpInIp,
    Mpls,
    Pppoe,
}
impl TunnelKind {
    pub fn name(self) -> &'static str {
        "GRE"
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunnelKind,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub depth: u8,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    pub id: u32,
    pub offset: u32,
    pub more: bool,
}
#[derive(Debug, Clone, Copy)]
pub enum L4<'a> {
    Tcp(Tcp<'a>),
    Udp(Udp<'a>),
    Other(&'a [u8]),
}
#[derive(Debug, Clone, Copy)]
pub struct Tcp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: &'a [u8],
}
#[derive(Debug, Clone, Copy)]
pub struct Udp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub vlan: [u16; 3],
    pub vlan_len: u8,
    pub tunnel: Option<Tunnel>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub frag: Option<Fragment>,
    pub l4: L4<'a>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unsupported link type {0}")]
    UnsupportedLinkType(i32),
    #[error("not ip")]
    NotIp,
}
impl Error {
    pub fn reason(&self) -> &'static str {
        "not_ip"
    }
}
pub fn decode(lt: i32, _d: &[u8]) -> Result<Frame<'_>, Error> {
    Err(Error::UnsupportedLinkType(lt))
}
pub fn decode_l4(_p: u8, d: &[u8]) -> L4<'_> {
    L4::Other(d)
}
