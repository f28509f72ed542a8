#!/usr/bin/env python3
"""generate.py - write crosswire's synthetic test captures (python3, standard library only).

Shapes a real client cannot easily produce on loopback are built here packet by packet:
Ethernet / 802.1Q / 802.1ad, IPv4 / IPv6 (+ fragments), UDP / TCP (correct lengths and
checksums), DNS messages, HTTP/1.1 requests, and the tunnel headers (VXLAN, Geneve, GRE,
GRE+ERSPAN type II, MPLS, PPPoE, GTP-U, IP-in-IP, 6in4).

Usage:
  python3 generate.py [OUTDIR]                 write tunnels.pcap (default OUTDIR: this directory)
  python3 generate.py --qinq IN.pcap OUT.pcap  copy an Ethernet pcap adding 802.1ad 200 + 802.1Q 100
  python3 generate.py --fixcsum FILE.pcap...   recompute IPv4/UDP/TCP checksums in place (record.sh uses
                                               it: loopback captures carry offloaded, i.e. wrong, checksums)
  python3 generate.py --list                   print the frame ranges of every case in tunnels.pcap

Output is deterministic (fixed timestamps, ports, sequence numbers). All addresses are from the
documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).
Classic pcap, microsecond timestamps, LINKTYPE_ETHERNET (1).
"""
import os
import socket
import struct
import sys

# ----------------------------------------------------------------------------- pcap I/O

def write_pcap(path, frames, linktype=1):
    """frames: list of (timestamp_float, bytes)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for ts, data in frames:
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            f.write(struct.pack("<IIII", sec, usec, len(data), len(data)))
            f.write(data)


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise SystemExit("%s: not a classic pcap file" % path)
    ghdr = data[:24]
    linktype = struct.unpack(e + "I", ghdr[20:24])[0]
    recs = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        recs.append((sec, frac, orig, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return e, ghdr, linktype, recs


def qinq(inp, outp, outer=200, inner=100):
    """Insert an 802.1ad (0x88a8) + 802.1Q (0x8100) tag pair into every Ethernet frame."""
    e, ghdr, linktype, recs = read_pcap(inp)
    if linktype != 1:
        raise SystemExit("%s: link type %d, need Ethernet (1)" % (inp, linktype))
    tags = struct.pack("!HHHH", 0x88A8, outer, 0x8100, inner)
    with open(outp, "wb") as f:
        f.write(ghdr)
        for sec, frac, orig, pkt in recs:
            pkt = pkt[:12] + tags + pkt[12:]
            f.write(struct.pack(e + "IIII", sec, frac, len(pkt), orig + 8))
            f.write(pkt)

def fix_checksums(inp, outp):
    """Rewrite IPv4 header, UDP and TCP checksums of every packet (Ethernet with any number of
    802.1Q/802.1ad tags, Linux SLL2, or raw IP), in place of loopback's offloaded (partial)
    checksums. Fragments, truncated packets and other protocols are left alone."""
    e, ghdr, linktype, recs = read_pcap(inp)
    out = []
    for sec, frac, orig, pkt in recs:
        pkt = bytearray(pkt)
        off, et = None, None
        if linktype == 1:
            off, et = 12, None
            while True:
                et = struct.unpack("!H", pkt[off:off + 2])[0]
                if et in (0x8100, 0x88A8):
                    off += 4
                    continue
                off += 2
                break
        elif linktype == 276:   # LINKTYPE_LINUX_SLL2
            et, off = struct.unpack("!H", pkt[0:2])[0], 20
        elif linktype in (101, 12):
            et, off = (0x0800 if pkt[0] >> 4 == 4 else 0x86DD), 0
        if off is not None and len(pkt) == orig:
            _fix_ip(pkt, off, et)
        out.append((sec, frac, orig, bytes(pkt)))
    with open(outp, "wb") as f:
        f.write(ghdr)
        for sec, frac, orig, pkt in out:
            f.write(struct.pack(e + "IIII", sec, frac, len(pkt), orig))
            f.write(pkt)


def _fix_ip(pkt, off, et):
    if et == 0x0800:
        ihl = (pkt[off] & 0x0F) * 4
        total = struct.unpack("!H", pkt[off + 2:off + 4])[0]
        pkt[off + 10:off + 12] = b"\0\0"
        pkt[off + 10:off + 12] = struct.pack("!H", csum(bytes(pkt[off:off + ihl])))
        if struct.unpack("!H", pkt[off + 6:off + 8])[0] & 0x3FFF:
            return   # fragment
        proto, src, dst = pkt[off + 9], bytes(pkt[off + 12:off + 16]), bytes(pkt[off + 16:off + 20])
        l4, end = off + ihl, off + total
    elif et == 0x86DD:
        proto, src, dst = pkt[off + 6], bytes(pkt[off + 8:off + 24]), bytes(pkt[off + 24:off + 40])
        l4, end = off + 40, off + 40 + struct.unpack("!H", pkt[off + 4:off + 6])[0]
    else:
        return
    if proto not in (6, 17) or end > len(pkt):
        return
    co = l4 + (16 if proto == 6 else 6)
    pkt[co:co + 2] = b"\0\0"
    length = end - l4
    if len(src) == 4:
        ph = src + dst + struct.pack("!xBH", proto, length)
    else:
        ph = src + dst + struct.pack("!IxxxB", length, proto)
    c = csum(ph + bytes(pkt[l4:end]))
    if proto == 17 and c == 0:
        c = 0xFFFF
    pkt[co:co + 2] = struct.pack("!H", c)

# ----------------------------------------------------------------------------- packet builders

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip_bytes(a):
    return socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a)


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def ether(payload, ethertype, src="02:00:00:00:00:01", dst="02:00:00:00:00:02", tags=()):
    """tags: sequence of (tpid, vlan_id), outermost first."""
    h = mac(dst) + mac(src)
    for tpid, vid in tags:
        h += struct.pack("!HH", tpid, vid & 0x0FFF)
    return h + struct.pack("!H", ethertype) + payload


_ipid = [0x1000]


def ipv4(src, dst, proto, payload, ident=None, mf=0, frag_off=0, ttl=64, total_payload_len=None):
    if ident is None:
        _ipid[0] = (_ipid[0] + 1) & 0xFFFF
        ident = _ipid[0]
    flags_frag = (0x2000 if mf else 0) | (frag_off // 8)
    if not mf and frag_off == 0:
        flags_frag |= 0x4000  # DF on unfragmented packets
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_frag, ttl, proto, 0,
                    ip_bytes(src), ip_bytes(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ipv6(src, dst, nh, payload, hlim=64):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, hlim, ip_bytes(src), ip_bytes(dst)) + payload


def pseudo(src, dst, proto, length):
    if ":" in src:
        return ip_bytes(src) + ip_bytes(dst) + struct.pack("!IxxxB", length, proto)
    return ip_bytes(src) + ip_bytes(dst) + struct.pack("!xBH", proto, length)


def udp(src, dst, sport, dport, payload, zero_csum=False):
    h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    if zero_csum and ":" not in src:
        return h + payload
    c = csum(pseudo(src, dst, 17, 8 + len(payload)) + h + payload) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + payload


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", win=65160, opts=b""):
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off << 4, flags, win, 0, 0) + opts
    c = csum(pseudo(src, dst, 6, len(h) + len(payload)) + h + payload)
    return h[:16] + struct.pack("!H", c) + h[18:] + payload


def ip(src, dst, proto, payload):
    if ":" in src:
        return ipv6(src, dst, proto, payload)
    return ipv4(src, dst, proto, payload)

# ----------------------------------------------------------------------------- DNS

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "MX": 15, "TXT": 16, "AAAA": 28}


def dns_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns_query(txid, qname, qtype):
    return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + dns_name(qname) + struct.pack("!HH", TYPES[qtype], 1)


def dns_response(txid, qname, qtype, answers, rcode=0):
    """answers: list of (type_name, rdata_bytes); owner is the question name (pointer 0xc00c)."""
    m = struct.pack("!HHHHHH", txid, 0x8180 | rcode, 1, len(answers), 0, 0)
    m += dns_name(qname) + struct.pack("!HH", TYPES[qtype], 1)
    for t, rdata in answers:
        m += struct.pack("!HHHIH", 0xC00C, TYPES[t], 1, 300, len(rdata)) + rdata
    return m


def txt(*strings):
    return b"".join(bytes([len(s)]) + s.encode() for s in strings)

# ----------------------------------------------------------------------------- TLS ClientHello

def _ext(etype, body):
    return struct.pack("!HH", etype, len(body)) + body


def client_hello(sni, alpn=("h2", "http/1.1"), seed=1):
    """A TLS 1.3-capable ClientHello (as modern browsers send it, with GREASE values).
    Returns the handshake message (type 1 + 3-byte length + body), without record header."""
    rnd = bytes((seed * 37 + k * 11) & 0xFF for k in range(32))
    sid = bytes((seed * 53 + k * 7) & 0xFF for k in range(32))
    ciphers = [0x0A0A, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
    exts = _ext(0x1A1A, b"")
    if sni is not None:
        n = sni.encode()
        exts += _ext(0, struct.pack("!HBH", len(n) + 3, 0, len(n)) + n)
    exts += _ext(23, b"")                                   # extended_master_secret
    exts += _ext(0xFF01, b"\x00")                           # renegotiation_info
    exts += _ext(10, struct.pack("!H", 8) + struct.pack("!HHHH", 0x2A2A, 0x001D, 0x0017, 0x0018))
    exts += _ext(11, b"\x01\x00")                           # ec_point_formats
    exts += _ext(35, b"")                                   # session_ticket
    if alpn:
        al = b"".join(bytes([len(a)]) + a.encode() for a in alpn)
        exts += _ext(16, struct.pack("!H", len(al)) + al)
    exts += _ext(5, b"\x01\x00\x00\x00\x00")               # status_request
    sig = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
    exts += _ext(13, struct.pack("!H", 2 * len(sig)) + struct.pack("!%dH" % len(sig), *sig))
    exts += _ext(51, struct.pack("!HHH", 2 + 2 + 1 + 2 + 2 + 32, 0x2A2A, 1) + b"\x00"
                 + struct.pack("!HH", 0x001D, 32) + bytes((seed + k) & 0xFF for k in range(32)))
    exts += _ext(45, b"\x01\x01")                           # psk_key_exchange_modes
    exts += _ext(43, b"\x06\x3a\x3a\x03\x04\x03\x03")     # supported_versions (GREASE, 1.3, 1.2)
    exts += _ext(0x4A4A, b"\x00")
    body = struct.pack("!H", 0x0303) + rnd + bytes([len(sid)]) + sid
    body += struct.pack("!H", 2 * len(ciphers)) + struct.pack("!%dH" % len(ciphers), *ciphers)
    body += b"\x01\x00" + struct.pack("!H", len(exts)) + exts
    return b"\x01" + struct.pack("!I", len(body))[1:] + body


def tls_record(hs, ctype=22, version=0x0301):
    return struct.pack("!BHH", ctype, version, len(hs)) + hs


# ----------------------------------------------------------------------------- flows (inner IP packets)
# A flow is a list of (direction, ip_packet) with direction "c2s" or "s2c".

CLIENT4, DNS4, WEB4 = "198.51.100.10", "203.0.113.53", "203.0.113.80"
CLIENT6, DNS6, WEB6 = "2001:db8:100::10", "2001:db8:113::53", "2001:db8:113::80"

HTTP_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


def dns_udp_flow(tag, txid, sport, v6=False):
    c, s = (CLIENT6, DNS6) if v6 else (CLIENT4, DNS4)
    qname = "%s.tunnel.crosswire.test" % tag
    if v6:
        q, ans = dns_query(txid, qname, "AAAA"), dns_response(txid, qname, "AAAA", [("AAAA", ip_bytes(WEB6))])
    else:
        q, ans = dns_query(txid, qname, "A"), dns_response(txid, qname, "A", [("A", ip_bytes(WEB4))])
    return [("c2s", ip(c, s, 17, udp(c, s, sport, 53, q))),
            ("s2c", ip(s, c, 17, udp(s, c, 53, sport, ans)))]


class TcpConn:
    def __init__(self, c, s, cport, sport, cisn, sisn):
        self.c, self.s, self.cport, self.sport = c, s, cport, sport
        self.cseq, self.sseq = cisn, sisn
        self.pkts = []

    def _c(self, flags, payload=b"", seq=None, opts=b""):
        self.pkts.append(("c2s", ip(self.c, self.s, 6, tcp(self.c, self.s, self.cport, self.sport,
                                                           self.cseq if seq is None else seq,
                                                           self.sseq if flags & ACK else 0, flags, payload, opts=opts))))

    def _s(self, flags, payload=b"", seq=None, opts=b""):
        self.pkts.append(("s2c", ip(self.s, self.c, 6, tcp(self.s, self.c, self.sport, self.cport,
                                                           self.sseq if seq is None else seq,
                                                           self.cseq, flags, payload, opts=opts))))

    def handshake(self):
        mss = struct.pack("!BBH", 2, 4, 1460)
        self._c(SYN, opts=mss)
        self.cseq += 1
        self._s(SYN | ACK, opts=mss)
        self.sseq += 1
        self._c(ACK)

    def send_c(self, data, flags=PSH | ACK):
        self._c(flags, data)
        self.cseq += len(data)

    def send_s(self, data, flags=PSH | ACK):
        self._s(flags, data)
        self.sseq += len(data)

    def ack_c(self):
        self._c(ACK)

    def ack_s(self):
        self._s(ACK)

    def close(self):
        self._c(FIN | ACK)
        self.cseq += 1
        self._s(FIN | ACK)
        self.sseq += 1
        self._c(ACK)


def http_request(tag, host="www.crosswire.test", ua="crosswire-gen/1.0"):
    r = "GET /%s/index.html HTTP/1.1\r\nHost: %s\r\n" % (tag, host)
    if ua:
        r += "User-Agent: %s\r\n" % ua
    return (r + "Accept: */*\r\n\r\n").encode()


def http_flow(tag, cport, isn, v6=False):
    c, s = (CLIENT6, WEB6) if v6 else (CLIENT4, WEB4)
    t = TcpConn(c, s, cport, 80, isn, isn + 0x10000000)
    t.handshake()
    t.send_c(http_request(tag))
    t.ack_s()
    t.send_s(HTTP_RESPONSE)
    t.ack_c()
    t.close()
    return t.pkts

def tls_flow(tag, cport, isn, v6=False):
    """TCP handshake, one-segment ClientHello with SNI <tag>.tunnel.crosswire.test, close."""
    c, s = (CLIENT6, WEB6) if v6 else (CLIENT4, WEB4)
    t = TcpConn(c, s, cport, 443, isn, isn + 0x10000000)
    t.handshake()
    t.send_c(tls_record(client_hello("%s.tunnel.crosswire.test" % tag, seed=cport)))
    t.ack_s()
    t.close()
    return t.pkts

# ----------------------------------------------------------------------------- encapsulations
# Each takes (direction, inner_ip_packet, index) and returns one outer Ethernet frame.

OUT_A4, OUT_B4 = "192.0.2.1", "192.0.2.2"        # tunnel endpoints
INNER_CMAC, INNER_SMAC = "02:00:00:00:01:0a", "02:00:00:00:01:50"


def ethertype_of(p):
    return 0x86DD if p[0] >> 4 == 6 else 0x0800


def plain(d, p, i):
    return ether(p, ethertype_of(p), *endpoints_mac(d))


def endpoints_mac(d):
    a, b = "02:00:00:00:00:01", "02:00:00:00:00:02"
    return (a, b) if d == "c2s" else (b, a)


def outer_ips(d):
    return (OUT_A4, OUT_B4) if d == "c2s" else (OUT_B4, OUT_A4)


def inner_ether(d, p):
    src, dst = (INNER_CMAC, INNER_SMAC) if d == "c2s" else (INNER_SMAC, INNER_CMAC)
    return ether(p, ethertype_of(p), src, dst)


def vlan(d, p, i):
    return ether(p, ethertype_of(p), *endpoints_mac(d), tags=[(0x8100, 100)])


def qinq_enc(d, p, i):
    return ether(p, ethertype_of(p), *endpoints_mac(d), tags=[(0x88A8, 200), (0x8100, 100)])


def vxlan(d, p, i):
    a, b = outer_ips(d)
    hdr = struct.pack("!BxxxI", 0x08, 4242 << 8)
    return ether(ipv4(a, b, 17, udp(a, b, 49152 + (i % 1000), 4789, hdr + inner_ether(d, p), zero_csum=True)),
                 0x0800, *endpoints_mac(d))


def geneve(d, p, i):
    a, b = outer_ips(d)
    hdr = struct.pack("!BBHI", 0, 0, 0x6558, 777 << 8)
    return ether(ipv4(a, b, 17, udp(a, b, 50000 + (i % 1000), 6081, hdr + inner_ether(d, p), zero_csum=True)),
                 0x0800, *endpoints_mac(d))


def gre(d, p, i):
    a, b = outer_ips(d)
    hdr = struct.pack("!HH", 0, ethertype_of(p))
    return ether(ipv4(a, b, 47, hdr + p), 0x0800, *endpoints_mac(d))


def erspan2(d, p, i):
    a, b = outer_ips(d)
    gre_hdr = struct.pack("!HHI", 0x1000, 0x88BE, i)          # S bit: sequence number present
    # ERSPAN type II: ver=1, vlan=0 | cos=0, en=0, t=0, session id=42 | reserved, index=0
    ers = struct.pack("!HHI", (1 << 12) | 0, 42, 0)
    return ether(ipv4(a, b, 47, gre_hdr + ers + inner_ether(d, p)), 0x0800, *endpoints_mac(d))


def mpls(d, p, i):
    label_outer, label_inner = (1000, 2000) if d == "c2s" else (1001, 2001)
    stack = struct.pack("!II", (label_outer << 12) | 64, (label_inner << 12) | 0x100 | 64)
    return ether(stack + p, 0x8847, *endpoints_mac(d))


def pppoe(d, p, i):
    ppp = struct.pack("!H", 0x0021 if ethertype_of(p) == 0x0800 else 0x0057) + p
    hdr = struct.pack("!BBHH", 0x11, 0x00, 0x1234, len(ppp))
    return ether(hdr + ppp, 0x8864, *endpoints_mac(d))


def gtpu(d, p, i):
    a, b = outer_ips(d)
    teid = 0x00C0FFEE if d == "c2s" else 0x00BEEF00
    hdr = struct.pack("!BBHI", 0x30, 0xFF, len(p), teid)
    return ether(ipv4(a, b, 17, udp(a, b, 2152, 2152, hdr + p, zero_csum=True)), 0x0800, *endpoints_mac(d))


def ipip(d, p, i):
    a, b = outer_ips(d)
    return ether(ipv4(a, b, 4, p), 0x0800, *endpoints_mac(d))


def sixin4(d, p, i):
    a, b = outer_ips(d)
    return ether(ipv4(a, b, 41, p), 0x0800, *endpoints_mac(d))


TUNNELS = [
    # name, encapsulation, inner IPv6?
    ("plain", plain, False),
    ("vlan", vlan, False),
    ("qinq", qinq_enc, False),
    ("vxlan", vxlan, False),
    ("geneve", geneve, False),
    ("gre", gre, False),
    ("erspan", erspan2, False),
    ("mpls", mpls, False),
    ("pppoe", pppoe, False),
    ("gtpu", gtpu, False),
    ("ipip", ipip, False),
    ("sixinfour", sixin4, True),
]

# ----------------------------------------------------------------------------- edge cases (plain Ethernet)

def frag_dns_v4():
    """DNS/UDP response of ~1.9 kB, IPv4-fragmented in two fragments (MTU 1500)."""
    c, s, sport, txid = CLIENT4, DNS4, 40500, 0x4001
    qname = "frag4.crosswire.test"
    q = dns_query(txid, qname, "TXT")
    answers = [("TXT", txt("fragment test v4 record %02d " % k + "a" * 200)) for k in range(8)]
    r = dns_response(txid, qname, "TXT", answers)
    seg = udp(s, c, 53, sport, r)
    ident = 0x7A01
    first, rest = seg[:1480], seg[1480:]
    return [("c2s", ipv4(c, s, 17, udp(c, s, sport, 53, q))),
            ("s2c", _frag4(s, c, 17, first, ident, True, 0)),
            ("s2c", _frag4(s, c, 17, rest, ident, False, 1480))]


def _frag4(src, dst, proto, chunk, ident, mf, off):
    flags_frag = (0x2000 if mf else 0) | (off // 8)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk), ident, flags_frag, 64, proto, 0,
                    ip_bytes(src), ip_bytes(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + chunk


def frag_dns_v6():
    """DNS/UDP response of ~1.9 kB over IPv6, fragmented (Fragment header) in two pieces."""
    c, s, sport, txid = CLIENT6, DNS6, 40600, 0x6001
    qname = "frag6.crosswire.test"
    q = dns_query(txid, qname, "TXT")
    answers = [("TXT", txt("fragment test v6 record %02d " % k + "b" * 200)) for k in range(8)]
    r = dns_response(txid, qname, "TXT", answers)
    seg = udp(s, c, 53, sport, r)
    first, rest = seg[:1448], seg[1448:]   # 40 + 8 + 1448 = 1496 <= 1500; 1448 is a multiple of 8
    ident = 0x0000BEEF

    def frag(chunk, off, m):
        fh = struct.pack("!BBHI", 17, 0, off | (1 if m else 0), ident)
        return ipv6(s, c, 44, fh + chunk)
    return [("c2s", ipv6(c, s, 17, udp(c, s, sport, 53, q))),
            ("s2c", frag(first, 0, True)),
            ("s2c", frag(rest, len(first), False))]


def tcp_out_of_order_retrans():
    """HTTP request in 3 segments sent 2nd-first (out of order), 1st, 1st again (retransmission),
    3rd; then a second connection whose one-segment request is retransmitted twice.
    Each request must be reported exactly once."""
    req = (b"GET /reorder/index.html?retransmitted=1 HTTP/1.1\r\nHost: www.crosswire.test\r\n"
           b"User-Agent: crosswire-gen/1.0 (out-of-order)\r\nAccept: */*\r\n\r\n")
    a, b, cc = req[:30], req[30:70], req[70:]
    t = TcpConn(CLIENT4, WEB4, 40700, 80, 0x11111111, 0x22222222)
    t.handshake()
    base = t.cseq
    t._c(PSH | ACK, b, seq=base + len(a))            # segment 2 arrives first
    t._c(PSH | ACK, a, seq=base)                     # segment 1
    t._c(PSH | ACK, a, seq=base)                     # segment 1 retransmitted
    t._c(PSH | ACK, cc, seq=base + len(a) + len(b))  # segment 3 completes the header
    t.cseq = base + len(req)
    t._c(PSH | ACK, cc, seq=base + len(a) + len(b))  # segment 3 retransmitted after completion
    t.ack_s()
    t.send_s(HTTP_RESPONSE)
    t.ack_c()
    t.close()
    pk = list(t.pkts)
    req2 = http_request("retransmit", ua="crosswire-gen/1.0 (retransmission)")
    u = TcpConn(CLIENT4, WEB4, 40701, 80, 0x33333333, 0x44444444)
    u.handshake()
    s0 = u.cseq
    u._c(PSH | ACK, req2, seq=s0)
    u._c(PSH | ACK, req2, seq=s0)                    # retransmission (RTO)
    u._c(PSH | ACK, req2, seq=s0)                    # and again
    u.cseq = s0 + len(req2)
    u.ack_s()
    u.send_s(HTTP_RESPONSE)
    u.ack_c()
    u.close()
    return pk + u.pkts


def dns_tcp_split_prefix():
    """DNS over TCP: the 2-byte length prefix in one segment and the message in the next
    (both directions), then two queries in one segment answered by two responses in one segment."""
    t = TcpConn(CLIENT4, DNS4, 40800, 53, 0x55555555, 0x66666666)
    t.handshake()
    q1 = dns_query(0x7101, "tcp-split.crosswire.test", "A")
    r1 = dns_response(0x7101, "tcp-split.crosswire.test", "A", [("A", ip_bytes(WEB4))])
    t.send_c(struct.pack("!H", len(q1)))
    t.send_c(q1)
    t.ack_s()
    t.send_s(struct.pack("!H", len(r1)))
    t.send_s(r1)
    t.ack_c()
    q2 = dns_query(0x7102, "tcp-two-a.crosswire.test", "A")
    q3 = dns_query(0x7103, "tcp-two-b.crosswire.test", "AAAA")
    r2 = dns_response(0x7102, "tcp-two-a.crosswire.test", "A", [("A", ip_bytes("203.0.113.2"))])
    r3 = dns_response(0x7103, "tcp-two-b.crosswire.test", "AAAA", [("AAAA", ip_bytes("2001:db8::2"))])
    t.send_c(struct.pack("!H", len(q2)) + q2 + struct.pack("!H", len(q3)) + q3)
    t.send_s(struct.pack("!H", len(r2)) + r2 + struct.pack("!H", len(r3)) + r3)
    t.ack_c()
    t.close()
    return t.pkts

def tls_split_edge_cases():
    """(a) ClientHello whose 5-byte record header is cut after 3 bytes, body in 2 more segments;
    (b) one ClientHello handshake message fragmented over two TLS records in two segments;
    (c) ClientHello without SNI (no server_name extension). Each must give one tls row."""
    hs = client_hello("split-header.crosswire.test", seed=7)
    rec = tls_record(hs)
    t = TcpConn(CLIENT4, WEB4, 40900, 443, 0x77777777, 0x88888888)
    t.handshake()
    t.send_c(rec[:3])
    t.send_c(rec[3:120])
    t.send_c(rec[120:])
    t.ack_s()
    t.close()
    hs2 = client_hello("two-records.crosswire.test", alpn=("http/1.1",), seed=8)
    u = TcpConn(CLIENT4, WEB4, 40901, 443, 0x99999999, 0xAAAAAAAA)
    u.handshake()
    u.send_c(tls_record(hs2[:100]))
    u.send_c(tls_record(hs2[100:]))
    u.ack_s()
    u.close()
    v = TcpConn(CLIENT4, WEB4, 40902, 443, 0xBBBBBBBB, 0xCCCCCCCC)
    v.handshake()
    v.send_c(tls_record(client_hello(None, alpn=(), seed=9)))
    v.ack_s()
    v.close()
    return t.pkts + u.pkts + v.pkts

# ----------------------------------------------------------------------------- tunnels.pcap

def build_tunnels():
    frames, cases = [], []
    ts = [1700000000.0]

    def emit(name, frames_):
        start = len(frames) + 1
        for f in frames_:
            frames.append((ts[0], f))
            ts[0] += 0.001
        cases.append((name, start, len(frames)))
        ts[0] += 0.1

    for k, (name, enc, v6) in enumerate(TUNNELS):
        flow = (dns_udp_flow(name, 0x2000 + k, 41000 + k, v6=v6)
                + http_flow(name, 42000 + k, 0x01000000 * (k + 1), v6=v6)
                + tls_flow(name, 43000 + k, 0x01800000 * (k + 1), v6=v6))
        emit(name, [enc(d, p, i) for i, (d, p) in enumerate(flow)])
    emit("ipv4-fragmented-dns", [plain(d, p, i) for i, (d, p) in enumerate(frag_dns_v4())])
    emit("ipv6-fragmented-dns", [plain(d, p, i) for i, (d, p) in enumerate(frag_dns_v6())])
    emit("tcp-out-of-order-retransmission", [plain(d, p, i) for i, (d, p) in enumerate(tcp_out_of_order_retrans())])
    emit("dns-tcp-split-length-prefix", [plain(d, p, i) for i, (d, p) in enumerate(dns_tcp_split_prefix())])
    emit("tls-clienthello-odd-splits", [plain(d, p, i) for i, (d, p) in enumerate(tls_split_edge_cases())])
    return frames, cases


def main(argv):
    if len(argv) >= 1 and argv[0] == "--fixcsum":
        for p in argv[1:]:
            fix_checksums(p, p)
        return
    if len(argv) >= 1 and argv[0] == "--qinq":
        if len(argv) != 3:
            raise SystemExit("usage: generate.py --qinq IN.pcap OUT.pcap")
        qinq(argv[1], argv[2])
        return
    frames, cases = build_tunnels()
    if argv and argv[0] == "--list":
        for name, a, b in cases:
            print("%-34s frames %3d-%3d" % (name, a, b))
        return
    out = argv[0] if argv else os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(out, "tunnels.pcap")
    write_pcap(path, frames)
    print("wrote %s (%d frames)" % (path, len(frames)))
    for name, a, b in cases:
        print("  %-34s frames %3d-%3d" % (name, a, b))


if __name__ == "__main__":
    main(sys.argv[1:])
