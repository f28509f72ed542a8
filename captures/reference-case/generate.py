#!/usr/bin/env python3
"""generate.py - write crosswire's reference-case scenario (python3 >= 3.11, standard library only).

One account takeover seen across network, SaaS and email (see README.md for the timeline):
an office network of 31 workstations (10.20.0.10-.40) browsing ordinary sites from
2024-03-18 to 2024-03-20, three weeks of Microsoft 365 / Entra ID / Defender for Office 365
records before that, and the attack woven through all of them.

Usage:
  python3 generate.py [OUTDIR]           write every file (default OUTDIR: this directory)
  python3 generate.py --check [DIR]      validate the written files (JSON, time order, the
                                         victim's US-only baseline, the exact attack records)
  python3 generate.py --verify-eve EVE   compare the model_breach lines of a crosswire replay
                                         with expected-breaches.tsv (exit 1 on a difference)

Output is deterministic: fixed seeds (random.Random with string seeds), fixed timestamps, no
wall clock, no dict/set iteration that depends on hashing. Classic pcap, microsecond
timestamps, LINKTYPE_ETHERNET. The packet builders are copied from ../generate.py (not imported)
so that a change to the other captures cannot silently change this one.
"""
import json
import os
import random
import socket
import struct
import sys
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))

# ============================================================================ time

US = 1_000_000
DAY_S = 86_400
MAR18 = 1_710_720_000            # 2024-03-18 00:00:00 UTC, a Monday
SAAS_FIRST_DAY = -21             # 2024-02-26 (Monday): start of the SaaS/email baseline
NET_LAST_DAY = 2                 # 2024-03-20: last day of the capture


def t_us(day, h=0, m=0, s=0, us=0):
    """Microseconds since the epoch of `day` (0 = 2024-03-18) at h:m:s UTC."""
    return (MAR18 + day * DAY_S + h * 3600 + m * 60 + s) * US + us


def _dt(ts):
    return datetime.fromtimestamp(ts // US, timezone.utc)


def ual_time(ts):
    """Unified Audit Log CreationTime: UTC without a zone, whole seconds."""
    return _dt(ts).strftime("%Y-%m-%dT%H:%M:%S")


def z_time(ts, digits=0):
    """ISO 8601 UTC with `Z`; `digits` fractional digits (Graph uses 7 in places)."""
    base = _dt(ts).strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        frac = "%06d" % (ts % US) + "0" * max(0, digits - 6)
        base += "." + frac[:digits]
    return base + "Z"


def weekday(day):
    """0 = Monday (day 0 is Monday 2024-03-18)."""
    return day % 7


def utc_offset_h(day):
    """Hours the Boston office is behind UTC: EDT (4) from 2024-03-10 (day -8), else EST (5)."""
    return 4 if day >= -8 else 5


def local_us(day, h, m=0, s=0):
    """t_us of office-local wall time h:m:s on `day`."""
    return t_us(day, h + utc_offset_h(day), m, s)

# ============================================================================ the cast

OFFICE_IP = "198.51.100.10"      # the office's NAT egress (documentation range)
ATTACKER_IP = "193.222.96.91"    # hosts both phishing domains; the unusual login source
VPN_IP = "45.137.21.9"           # the attacker's VPN exit: inbox rule and phishing wave
RESOLVER, GATEWAY, INTRANET = "10.20.0.2", "10.20.0.1", "10.20.0.5"
RESOLVER_MAC, GATEWAY_MAC, INTRANET_MAC = "00:1a:8c:20:00:02", "00:1a:8c:20:00:01", "00:1a:8c:20:00:05"
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
DOMAIN = "example.com"
TENANT = "example.onmicrosoft.com"
VICTIM_IP = "10.20.0.23"
CLICKERS = ["10.20.0.31", "10.20.0.32", "10.20.0.33", "10.20.0.34", "10.20.0.35", "10.20.0.36"]
LURE_FQDN, LURE_DOMAIN = "rz8js7sjbef.latovafineart.life", "latovafineart.life"
REDIRECT_DOMAIN = "thecalebgroup.top"
DOCSEND_URL = "https://docsend.com/view/vcdmsmjcskw69jh9"
WAVE_SUBJECT = 'Dana Whitfield shared "Q1 Presentation" with you'
INBOX_RULE_PARAMS = [
    ("AlwaysDeleteOutlookRulesBlob", "False"),
    ("Force", "False"),
    ("MoveToFolder", "RSS Feeds"),
    ("Name", "..."),
    ("MarkAsRead", "True"),
    ("StopProcessingRules", "True"),
]

NAMES = [
    "adam.price", "beth.nolan", "carlos.mendez", "diane.foster", "eric.lindqvist",
    "fatima.rahman", "george.okafor", "hannah.becker", "ivan.petrov", "julia.santos",
    "kevin.osei", "laura.chen", "marcus.reed", "dana.whitfield", "nina.kowalski",
    "omar.haddad", "paula.grant", "quinn.harper", "rachel.adler", "samuel.ortiz",
    "tara.mcbride", "victor.nguyen", "wendy.larsen", "xavier.brooks", "yasmin.farouk",
    "zoe.whitman", "aaron.fischer", "bianca.rossi", "colin.murphy", "derek.walsh",
    "elena.ivanova",
]

# Home connections of the users: US residential ISP prefixes, towns around the Boston office.
HOME_PREFIXES = ["73.162", "73.219", "24.61", "24.91", "71.174", "71.232", "98.216", "108.20"]
HOME_TOWNS = [
    ("Quincy", 42.2529, -71.0023), ("Cambridge", 42.3736, -71.1097),
    ("Somerville", 42.3876, -71.0995), ("Newton", 42.3370, -71.2092),
    ("Medford", 42.4184, -71.1062), ("Brookline", 42.3318, -71.1212),
    ("Waltham", 42.3765, -71.2356), ("Braintree", 42.2079, -71.0040),
]
OFFICE_LOC = ("Boston", "Massachusetts", "US", 42.3601, -71.0589)
ATTACKER_LOC = ("Amsterdam", "Noord-Holland", "NL", 52.3740, 4.8897)


class Ids:
    """Deterministic identifiers from one seeded stream."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def guid(self):
        b = bytearray(self.rng.getrandbits(128).to_bytes(16, "big"))
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        h = b.hex()
        return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])

    def hexs(self, n):
        return "".join(self.rng.choice("0123456789ABCDEF") for _ in range(n))


class Device:
    def __init__(self, n, ids):
        self.n = n
        self.ip = "10.20.0.%d" % n
        self.mac = "3c:52:82:aa:01:%02d" % n
        self.host = "wks-%03d" % n
        self.local = NAMES[n - 10]
        self.upn = "%s@%s" % (self.local, DOMAIN)
        self.display = " ".join(p.capitalize() for p in self.local.split("."))
        self.object_id = ids.guid()
        self.puid = "10032000" + ids.hexs(8)
        self.sid = "S-1-5-21-3417250893-2739186120-1618467250-%d" % (1100 + n)
        self.mailbox = ids.guid()
        r = random.Random("home-%d" % n)
        self.home_ip = "%s.%d.%d" % (r.choice(HOME_PREFIXES), r.randrange(1, 255), r.randrange(2, 254))
        town = r.choice(HOME_TOWNS)
        self.home_loc = (town[0], "Massachusetts", "US", town[1], town[2])


def make_devices():
    ids = Ids("users")
    return [Device(n, ids) for n in range(10, 41)]

# ============================================================================ packet builders
# (copied from captures/generate.py: Ethernet / IPv4 / UDP / TCP with correct checksums,
# DNS messages, the GREASE'd TLS ClientHello, the classic pcap writer)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip_bytes(a):
    return socket.inet_pton(socket.AF_INET, a)


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def ether(payload, src, dst, ethertype=0x0800):
    return mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", ethertype) + payload


def pseudo(src, dst, proto, length):
    return ip_bytes(src) + ip_bytes(dst) + struct.pack("!xBH", proto, length)


def udp(src, dst, sport, dport, payload):
    h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    c = csum(pseudo(src, dst, 17, 8 + len(payload)) + h + payload) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + payload


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", win=64240, opts=b""):
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off << 4, flags, win, 0, 0) + opts
    c = csum(pseudo(src, dst, 6, len(h) + len(payload)) + h + payload)
    return h[:16] + struct.pack("!H", c) + h[18:] + payload


TYPES = {"A": 1, "CNAME": 5}


def dns_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns_query(txid, qname):
    return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + dns_name(qname) + struct.pack("!HH", 1, 1)


def dns_response(txid, qname, records, rcode=0):
    """records: [(owner, type_name, rdata_bytes, ttl)]; the question's name is written as a
    pointer (0xc00c), other owners in full."""
    m = struct.pack("!HHHHHH", txid, 0x8180 | rcode, 1, len(records), 0, 0)
    m += dns_name(qname) + struct.pack("!HH", 1, 1)
    for owner, t, rdata, ttl in records:
        o = b"\xc0\x0c" if owner == qname else dns_name(owner)
        m += o + struct.pack("!HHIH", TYPES[t], 1, ttl, len(rdata)) + rdata
    return m


def _ext(etype, body):
    return struct.pack("!HH", etype, len(body)) + body


def client_hello(sni, seed, alpn=("h2", "http/1.1")):
    """A TLS 1.3-capable ClientHello as a modern browser sends it (GREASE values included).
    Returns the handshake message without the record header."""
    rnd = bytes((seed * 37 + k * 11) & 0xFF for k in range(32))
    sid = bytes((seed * 53 + k * 7) & 0xFF for k in range(32))
    ciphers = [0x0A0A, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,
               0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
    exts = _ext(0x1A1A, b"")
    n = sni.encode()
    exts += _ext(0, struct.pack("!HBH", len(n) + 3, 0, len(n)) + n)
    exts += _ext(23, b"")
    exts += _ext(0xFF01, b"\x00")
    exts += _ext(10, struct.pack("!H", 8) + struct.pack("!HHHH", 0x2A2A, 0x001D, 0x0017, 0x0018))
    exts += _ext(11, b"\x01\x00")
    exts += _ext(35, b"")
    al = b"".join(bytes([len(a)]) + a.encode() for a in alpn)
    exts += _ext(16, struct.pack("!H", len(al)) + al)
    exts += _ext(5, b"\x01\x00\x00\x00\x00")
    sig = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
    exts += _ext(13, struct.pack("!H", 2 * len(sig)) + struct.pack("!%dH" % len(sig), *sig))
    exts += _ext(51, struct.pack("!HHH", 2 + 2 + 1 + 2 + 2 + 32, 0x2A2A, 1) + b"\x00"
                 + struct.pack("!HH", 0x001D, 32) + bytes((seed + k) & 0xFF for k in range(32)))
    exts += _ext(45, b"\x01\x01")
    exts += _ext(43, b"\x06\x3a\x3a\x03\x04\x03\x03")
    exts += _ext(0x4A4A, b"\x00")
    body = struct.pack("!H", 0x0303) + rnd + bytes([len(sid)]) + sid
    body += struct.pack("!H", 2 * len(ciphers)) + struct.pack("!%dH" % len(ciphers), *ciphers)
    body += b"\x01\x00" + struct.pack("!H", len(exts)) + exts
    return b"\x01" + struct.pack("!I", len(body))[1:] + body


def tls_record(hs, ctype=22, version=0x0301):
    return struct.pack("!BHH", ctype, version, len(hs)) + hs


def write_pcap(path, frames):
    """frames: [(ts_us, bytes)] in time order."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for ts, data in frames:
            f.write(struct.pack("<IIII", ts // US, ts % US, len(data), len(data)))
            f.write(data)


def read_pcap(path):
    """[(ts_us, bytes)] of a little-endian classic microsecond pcap (as written above)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\xd4\xc3\xb2\xa1":
        raise ValueError("%s: not a little-endian microsecond pcap" % path)
    out, off = [], 24
    while off + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack("<IIII", data[off:off + 16])
        out.append((sec * US + usec, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return out

# ============================================================================ DHCP


def dhcp_message(op, xid, chaddr, msg_type, yiaddr="0.0.0.0", ciaddr="0.0.0.0", options=b""):
    """A BOOTP/DHCP message (RFC 2131) padded to the 300 bytes Windows clients send."""
    m = struct.pack("!BBBBIHH4s4s4s4s", op, 1, 6, 0, xid, 0, 0x8000 if op == 1 else 0,
                    ip_bytes(ciaddr), ip_bytes(yiaddr), ip_bytes("0.0.0.0"), ip_bytes("0.0.0.0"))
    m += mac_bytes(chaddr) + b"\0" * 10 + b"\0" * 64 + b"\0" * 128 + bytes([99, 130, 83, 99])
    m += bytes([53, 1, msg_type]) + options + b"\xff"
    return m + b"\0" * max(0, 300 - len(m))


def opt(code, value):
    return bytes([code, len(value)]) + value


def client_options(dev, requested, server=None):
    o = opt(61, b"\x01" + mac_bytes(dev.mac)) + opt(50, ip_bytes(requested))
    if server:
        o += opt(54, ip_bytes(server))
    o += opt(12, dev.host.encode())
    o += opt(81, b"\x00\x00\x00" + ("%s.corp.%s" % (dev.host, DOMAIN)).encode())
    o += opt(60, b"MSFT 5.0")
    o += opt(55, bytes([1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252]))
    return o


def server_options():
    return (opt(54, ip_bytes(GATEWAY)) + opt(51, struct.pack("!I", 86400))
            + opt(58, struct.pack("!I", 43200)) + opt(59, struct.pack("!I", 75600))
            + opt(1, ip_bytes("255.255.0.0")) + opt(3, ip_bytes(GATEWAY))
            + opt(6, ip_bytes(RESOLVER)) + opt(15, ("corp.%s" % DOMAIN).encode()))

# ============================================================================ the network


class Site:
    """A name a device visits: DNS answer chain (CNAMEs, then A records) and how it is used."""

    def __init__(self, fqdn, ip, cnames=(), http=None):
        self.fqdn, self.ip, self.cnames, self.http = fqdn, ip, list(cnames), http

    def records(self):
        recs, owner = [], self.fqdn
        for c in self.cnames:
            recs.append((owner, "CNAME", dns_name(c), 3600))
            owner = c
        recs.append((owner, "A", ip_bytes(self.ip), 300))
        return recs


# Popular sites (every registrable domain here is in popular.csv).
POPULAR_SITES = [
    Site("www.google.com", "142.250.72.196"),
    Site("www.youtube.com", "142.250.72.206", ["youtube-ui.l.google.com"]),
    Site("fonts.gstatic.com", "142.250.72.195"),
    Site("www.googleapis.com", "142.250.72.202"),
    Site("www.linkedin.com", "13.107.42.14"),
    Site("en.wikipedia.org", "208.80.154.224"),
    Site("github.com", "140.82.112.4"),
    Site("app.slack.com", "34.236.52.2"),
    Site("zoom.us", "170.114.52.2"),
    Site("www.amazon.com", "54.239.28.85"),
    Site("www.dropbox.com", "162.125.1.18"),
    Site("www.adobe.com", "23.50.112.90", ["www.adobe.com.edgekey.net", "e28578.d.akamaiedge.net"]),
    Site("www.nytimes.com", "151.101.1.164"),
    Site("www.cnn.com", "151.101.3.5"),
    Site("weather.com", "23.59.247.50"),
    Site("www.reddit.com", "151.101.65.140"),
    Site("stackoverflow.com", "151.101.193.69"),
    Site("www.bing.com", "13.107.21.200"),
    Site("www.salesforce.com", "104.109.10.129"),
    Site("www.microsoft.com", "23.40.190.11", ["www.microsoft.com-c-3.edgekey.net", "e13678.dscb.akamaiedge.net"]),
    Site("example.sharepoint.com", "13.107.136.10"),
    Site("graph.microsoft.com", "20.190.151.68"),
    Site("www.espn.com", "99.84.66.41"),
    Site("www.docusign.net", "64.207.219.9"),
]
# The Microsoft 365 sign-in every workstation does when its user arrives.
M365_SITES = [
    Site("login.microsoftonline.com", "20.190.151.7"),
    Site("outlook.office365.com", "52.96.165.18"),
    Site("teams.microsoft.com", "52.113.194.132", ["teams-office-com.s-0005.s-msedge.net"]),
    Site("www.office.com", "52.98.152.178"),
]
NCSI = Site("www.msftconnecttest.com", "13.107.4.52",
            http=("/connecttest.txt", b"HTTP/1.1 200 OK\r\nContent-Length: 22\r\nContent-Type: text/plain\r\n\r\nMicrosoft Connect Test"))
OCSP = Site("ocsp.digicert.com", "192.229.211.108",
            http=("/MFEwTzBNMEswSTAJBgUrDgMCGgUABBSAUQYBMq2awn1Rh6Doh%2FsBYgFV7gQUA95QNVbRTLtm8KPiGxvDl7I90VUCEAJ0LqoXyo4hxxe7H%2Fz9DKA%3D",
                  b"HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: 5\r\n\r\n0\x03\n\x01\x03"))
CTLDL = Site("ctldl.windowsupdate.com", "93.184.221.240", ["ctldl.windowsupdate.com.delivery.microsoft.com"],
             http=("/msdownload/update/v3/static/trustedr/en/authrootstl.cab",
                   b"HTTP/1.1 304 Not Modified\r\nCache-Control: public,max-age=900\r\n\r\n"))
UPDATE_SITES = [
    Site("fe2cr.update.microsoft.com", "20.42.65.85"),
    Site("settings-win.data.microsoft.com", "20.42.73.29"),
    Site("slscr.update.microsoft.com", "20.72.205.209"),
]
INTRANET_SITE = Site("intranet.corp.example.com", INTRANET,
                     http=("/news/index.html", b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n<p>ok</p>"))
# Business services used by many devices but on no popularity list ("common").
COMMON_SITES = [
    (Site("app.harborline-payroll.com", "104.21.33.17"), 0.35),
    (Site("portal.bluepeak-crm.com", "35.190.60.12"), 0.45),
    (Site("www.trellis-expenses.com", "52.6.143.201"), 0.30),
]
# The long tail: personal sites one or two devices visit; rare but harmless.
LONG_TAIL = [
    (Site("www.harbourcoffeeroasters.com", "198.185.159.144"), ["10.20.0.14"], [0, 1, 2]),
    (Site("www.oakfieldlittleleague.org", "75.2.70.75"), ["10.20.0.27", "10.20.0.29"], [0, 2]),
    (Site("forum.vintagesynths.net", "172.67.140.22"), ["10.20.0.38"], [1, 2]),
    (Site("www.cedarvalleydental.com", "104.196.44.12"), ["10.20.0.19"], [0]),
    (Site("blog.gardenplanner.org", "185.199.108.153"), ["10.20.0.25"], [1]),
]
ZIXMAIL = Site("secure.zixmail.net", "63.71.10.22")
DOCSEND = Site("docsend.com", "104.18.8.49")
LURE = Site(LURE_FQDN, ATTACKER_IP)
REDIRECT = Site(REDIRECT_DOMAIN, ATTACKER_IP)


class Net:
    """Collects frames; every flow is built from a device's point of view."""

    def __init__(self, devices):
        self.rng = random.Random("network")
        self.dev = {d.ip: d for d in devices}
        self.frames = []                      # (ts_us, seq, bytes)
        self.seq = 0
        self.ipid = 0x3000
        self.txid = 0x1200
        self.ports = {d.ip: 49700 + 311 * (d.n - 10) % 12000 for d in devices}
        self.hello_seed = 1
        self.first = {}                       # device ip -> first frame time

    def _frame(self, ts, data):
        self.frames.append((ts, self.seq, data))
        self.seq += 1

    def _ip(self, ts, src, dst, proto, l4, smac, dmac, ttl=64):
        self.ipid = (self.ipid + 1) & 0xFFFF
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), self.ipid, 0x4000, ttl, proto, 0,
                        ip_bytes(src), ip_bytes(dst))
        h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
        self._frame(ts, ether(h + l4, smac, dmac))

    def _port(self, dev):
        p = self.ports[dev] + 1
        if p > 64999:
            p = 49700
        self.ports[dev] = p
        return p

    def _mark(self, ts, dev):
        self.first.setdefault(dev, ts)

    def _peer_mac(self, ip):
        return {RESOLVER: RESOLVER_MAC, INTRANET: INTRANET_MAC}.get(ip, GATEWAY_MAC)

    def resolve(self, ts, dev, site):
        """A query to the resolver and its answer; returns the answer's time."""
        self._mark(ts, dev)
        self.txid = (self.txid * 75 + 74) % 65537 & 0xFFFF
        sport = self._port(dev)
        dmac = self.dev[dev].mac
        q = dns_query(self.txid, site.fqdn)
        self._ip(ts, dev, RESOLVER, 17, udp(dev, RESOLVER, sport, 53, q), dmac, RESOLVER_MAC, ttl=128)
        rt = ts + 800 + self.rng.randrange(30_000)
        r = dns_response(self.txid, site.fqdn, site.records())
        self._ip(rt, RESOLVER, dev, 17, udp(RESOLVER, dev, 53, sport, r), RESOLVER_MAC, dmac)
        return rt

    def _tcp(self, ts, dev, server, dport, request, response=None):
        """Handshake, one client segment, (an optional server segment), close. Returns end time."""
        self._mark(ts, dev)
        cmac, smac = self.dev[dev].mac, self._peer_mac(server)
        sport = self._port(dev)
        c, s = self.rng.getrandbits(32), self.rng.getrandbits(32)
        rtt = 2_000 + self.rng.randrange(60_000) if smac == GATEWAY_MAC else 300
        mss = struct.pack("!BBH", 2, 4, 1460) + b"\x01\x03\x03\x08" + b"\x01\x01\x04\x02"
        t = ts

        def cs(dt, seq, ack, flags, payload=b"", opts=b""):
            self._ip(t + dt, dev, server, 6, tcp(dev, server, sport, dport, seq, ack, flags, payload, opts=opts),
                     cmac, smac, ttl=128)

        def sc(dt, seq, ack, flags, payload=b"", opts=b""):
            self._ip(t + dt, server, dev, 6, tcp(server, dev, dport, sport, seq, ack, flags, payload, opts=opts),
                     smac, cmac, ttl=118 if smac == GATEWAY_MAC else 64)

        cs(0, c, 0, SYN, opts=mss)
        sc(rtt, s, c + 1, SYN | ACK, opts=mss)
        cs(rtt + 150, c + 1, s + 1, ACK)
        cs(rtt + 400, c + 1, s + 1, PSH | ACK, request)
        c2 = c + 1 + len(request)
        sc(2 * rtt + 400, s + 1, c2, ACK)
        s2 = s + 1
        end = 2 * rtt + 600
        if response:
            sc(2 * rtt + 900, s2, c2, PSH | ACK, response)
            s2 += len(response)
            cs(2 * rtt + 1100, c2, s2, ACK)
            end = 2 * rtt + 1200
        fin = end + 20_000 + self.rng.randrange(200_000)
        cs(fin, c2, s2, FIN | ACK)
        sc(fin + rtt, s2, c2 + 1, FIN | ACK)
        cs(fin + rtt + 120, c2 + 1, s2 + 1, ACK)
        return ts + fin + rtt + 120

    def tls(self, ts, dev, server, sni):
        self.hello_seed += 1
        return self._tcp(ts, dev, server, 443, tls_record(client_hello(sni, self.hello_seed)))

    def http(self, ts, dev, server, host, path, response, ua=None):
        ua = ua or "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0"
        req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\nConnection: close\r\n\r\n"
               % (path, host, ua)).encode()
        return self._tcp(ts, dev, server, 80, req, response)

    def visit(self, ts, dev, site):
        """Resolve, then HTTPS (or the site's plain HTTP request). Returns the end time."""
        t = self.resolve(ts, dev, site) + 1_000 + self.rng.randrange(5_000)
        if site.http:
            ua = "Microsoft NCSI" if site is NCSI else ("Microsoft-CryptoAPI/10.0" if site in (OCSP, CTLDL) else None)
            return self.http(t, dev, site.ip, site.fqdn, site.http[0], site.http[1], ua)
        return self.tls(t, dev, site.ip, site.fqdn)

    def dhcp(self, ts, dev, full):
        """DISCOVER/OFFER/REQUEST/ACK (full) or a renewal REQUEST/ACK, with hostname (12)."""
        d = self.dev[dev]
        xid = self.rng.getrandbits(32)
        bc = ("0.0.0.0", "255.255.255.255")
        t = ts
        if full:
            m = dhcp_message(1, xid, d.mac, 1, options=client_options(d, dev))
            self._ip(t, bc[0], bc[1], 17, udp(bc[0], bc[1], 68, 67, m), d.mac, BROADCAST_MAC, ttl=128)
            t += 2_100
            m = dhcp_message(2, xid, d.mac, 2, yiaddr=dev, options=server_options())
            self._ip(t, GATEWAY, bc[1], 17, udp(GATEWAY, bc[1], 67, 68, m), GATEWAY_MAC, BROADCAST_MAC)
            t += 1_300
        m = dhcp_message(1, xid, d.mac, 3, options=client_options(d, dev, GATEWAY))
        self._ip(t, bc[0], bc[1], 17, udp(bc[0], bc[1], 68, 67, m), d.mac, BROADCAST_MAC, ttl=128)
        t += 1_900
        m = dhcp_message(2, xid, d.mac, 5, yiaddr=dev, options=server_options())
        self._ip(t, GATEWAY, bc[1], 17, udp(GATEWAY, bc[1], 67, 68, m), GATEWAY_MAC, BROADCAST_MAC)
        return t

    def sorted_frames(self):
        return [(ts, data) for ts, _, data in sorted(self.frames, key=lambda f: (f[0], f[1]))]


def schedule_days(devices):
    """Arrival and departure of every user, per day from the SaaS baseline to the end.
    Shared by the network (capture days) and the sign-ins so both tell the same story."""
    out = {}
    for d in devices:
        r = random.Random("workday-%d" % d.n)
        for day in range(SAAS_FIRST_DAY, NET_LAST_DAY + 1):
            arrive = local_us(day, 7, 40) + r.randrange(95 * 60) * US + r.randrange(US)
            leave = local_us(day, 16, 30) + r.randrange(90 * 60) * US + r.randrange(US)
            out[(d.ip, day)] = (arrive, leave)
    return out


ALWAYS_ON = ["10.20.0.10", "10.20.0.11"]


def build_network(devices, days):
    net = Net(devices)
    rng = random.Random("browsing")
    favourites = {d.ip: rng.sample(POPULAR_SITES, rng.randrange(7, 12)) for d in devices}
    for day in range(0, NET_LAST_DAY + 1):
        # Overnight: the always-on workstations fetch updates.
        for ip in ALWAYS_ON:
            for h in (0, 3, 6):
                ts = t_us(day, h, 5 + 7 * ALWAYS_ON.index(ip)) + rng.randrange(20 * 60) * US
                if day == 0 and h == 0 and ip not in net.first:
                    net.dhcp(ts - 3 * US, ip, True)
                net.visit(ts, ip, rng.choice(UPDATE_SITES))
        for d in devices:
            arrive, leave = days[(d.ip, day)]
            net.dhcp(arrive - 4 * US, d.ip, d.ip not in net.first)
            t = net.visit(arrive, d.ip, NCSI) + 700_000
            for s in M365_SITES:
                t = net.visit(t, d.ip, s) + 150_000 + rng.randrange(900_000)
            if rng.random() < 0.5:
                net.visit(t + rng.randrange(60) * US, d.ip, CTLDL)
            span = (leave - arrive) // US - 600
            for _ in range(rng.randrange(8, 14)):
                net.visit(arrive + (300 + rng.randrange(span)) * US, d.ip, rng.choice(favourites[d.ip]))
            if rng.random() < 0.3:
                net.visit(arrive + (300 + rng.randrange(span)) * US, d.ip, OCSP)
            net.visit(arrive + (600 + rng.randrange(span // 2)) * US, d.ip, INTRANET_SITE)
            for site, p in COMMON_SITES:
                if rng.random() < p:
                    net.visit(arrive + (300 + rng.randrange(span)) * US, d.ip, site)
            # Outlook and Teams keep their connections fresh through the day.
            for _ in range(2):
                net.visit(arrive + (900 + rng.randrange(span)) * US, d.ip, rng.choice(M365_SITES))
        for site, ips, on_days in LONG_TAIL:
            if day in on_days:
                for ip in ips:
                    a, b = days[(ip, day)]
                    net.visit(a + (1800 + rng.randrange((b - a) // US - 3600)) * US, ip, site)
    return net


def add_attack_network(net):
    """The attack as the sensor sees it (times in README's timeline)."""
    v = VICTIM_IP
    # 18 March: the mail service, then the lure domain (one minute before the SaaS login).
    t = net.visit(t_us(0, 14, 1, 8, 412_000), v, ZIXMAIL)
    net.tls(t + 2 * US, v, ZIXMAIL.ip, ZIXMAIL.fqdn)
    t = net.visit(t_us(0, 14, 2, 31, 87_000), v, LURE)
    net.tls(t + 1_400_000, v, ATTACKER_IP, LURE_FQDN)
    net.tls(t + 9_800_000, v, ATTACKER_IP, LURE_FQDN)
    # 20 March: users follow the DocSend link and are redirected to the second domain.
    for k, ip in enumerate(CLICKERS):
        t0 = t_us(2, 15, 4 + 9 * k, 11 + 7 * k, 250_000)
        t = net.visit(t0, ip, DOCSEND)
        t = net.resolve(t + 2_600_000, ip, REDIRECT)
        if ip == "10.20.0.33":
            t = net.http(t + 3_000, ip, ATTACKER_IP, REDIRECT_DOMAIN, "/d/view",
                         b"HTTP/1.1 302 Found\r\nLocation: https://thecalebgroup.top/d/view\r\nContent-Length: 0\r\n\r\n")
        t = net.tls(t + 5_000, ip, ATTACKER_IP, REDIRECT_DOMAIN)
        net.tls(t + 4_200_000, ip, ATTACKER_IP, REDIRECT_DOMAIN)


def expected_breaches():
    """(model, device, domain, ip) the replay must produce, sorted; nothing else."""
    sd = "Device / Suspicious Domain"
    rows = [(sd, VICTIM_IP, LURE_DOMAIN, ATTACKER_IP)]
    rows += [(sd, ip, REDIRECT_DOMAIN, ATTACKER_IP) for ip in CLICKERS]
    rows.append(("Multiple Device Correlations / Multiple Devices Breaching Same Model", CLICKERS[2],
                 REDIRECT_DOMAIN, ATTACKER_IP))
    return sorted(rows)

# ============================================================================ feeds and lists

POPULAR = [
    (1, "google.com"), (2, "microsoft.com"), (3, "facebook.com"), (4, "amazonaws.com"),
    (5, "googleapis.com"), (6, "apple.com"), (7, "youtube.com"), (8, "akamaiedge.net"),
    (9, "microsoftonline.com"), (10, "cloudflare.com"), (11, "office.com"), (12, "live.com"),
    (13, "windowsupdate.com"), (14, "bing.com"), (15, "linkedin.com"), (16, "gstatic.com"),
    (17, "azure.com"), (18, "office365.com"), (19, "wikipedia.org"), (20, "amazon.com"),
    (22, "akadns.net"), (24, "instagram.com"), (26, "icloud.com"), (28, "windows.com"),
    (31, "github.com"), (33, "outlook.com"), (35, "msn.com"), (38, "edgekey.net"),
    (41, "cloudfront.net"), (47, "reddit.com"), (52, "digicert.com"), (58, "msedge.net"),
    (63, "msftconnecttest.com"), (71, "sharepoint.com"), (79, "zoom.us"), (88, "adobe.com"),
    (97, "trafficmanager.net"), (108, "dropbox.com"), (117, "salesforce.com"), (126, "azureedge.net"),
    (133, "office.net"), (152, "slack.com"), (167, "nytimes.com"), (181, "cnn.com"),
    (214, "stackoverflow.com"), (238, "espn.com"), (402, "weather.com"), (611, "okta.com"),
    (877, "docusign.net"), (5234, "docsend.com"), (48213, "zixmail.net"),
]

NRD = [
    ("latovafineart.life", "2024-03-14"), ("thecalebgroup.top", "2024-03-20"),
]
NRD_NOISE_WORDS = ["secure", "portal", "verify", "cloud", "docs", "share", "pay", "shop", "north",
                   "bright", "delta", "lumen", "orbit", "pixel", "harbor", "summit", "amber", "cedar"]
NRD_NOISE_TLDS = ["com", "net", "online", "shop", "top", "xyz", "life", "site", "store", "info"]


def nrd_lines():
    r = random.Random("nrd")
    rows = list(NRD)
    seen = {d for d, _ in rows}
    while len(rows) < 42:
        name = "%s%s%d.%s" % (r.choice(NRD_NOISE_WORDS), r.choice(NRD_NOISE_WORDS), r.randrange(10, 99),
                              r.choice(NRD_NOISE_TLDS))
        if name in seen:
            continue
        seen.add(name)
        rows.append((name, "2024-03-%02d" % r.randrange(8, 21)))
    rows.sort(key=lambda x: (x[1], x[0]))
    return ["# newly registered domains (reference case): domain,registration date"] + ["%s,%s" % x for x in rows]

# ============================================================================ SaaS records

EXCHANGE_APP = "00000002-0000-0ff1-ce00-000000000000"
OFFICEHOME_APP = "4765445b-32c6-49b0-83e6-1d93765276ca"
OUTLOOK_APP = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
MFA_SERVICE_SP = "ServicePrincipal_e9a6d9c5-7f1f-4b58-9c0d-6f8f5f2a3b11"
UA_EDGE = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0"
UA_OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
UA_ATTACKER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36"
SERVERS = ["BN0PR08MB6911", "CH3PR08MB7384", "SA1PR08MB8420", "DM6PR08MB5003"]


class Saas:
    """Builds the UAL, Entra sign-in and Entra audit records."""

    def __init__(self, devices, days):
        self.ids = Ids("saas")
        self.rng = random.Random("saas-activity")
        self.devices, self.days = devices, days
        self.org = "b1f3c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
        self.ual, self.signin, self.audit = [], [], []
        self.victim = next(d for d in devices if d.ip == VICTIM_IP)
        self.sends = []                        # (ts, device, recipient, subject, msg ids, ip)

    # ---------------------------------------------------------------- sign-ins
    def login(self, ts, d, ip, loc, ua=UA_EDGE, os_="Windows10", browser="Edge 122.0.0", error=None, app=None):
        """One interactive sign-in, written to both the UAL and SigninLogs with the same request
        id (UAL Id/IntraSystemId = signIn id) and correlation id (UAL InterSystemsId =
        signIn correlationId): a sensor reading both must count it once."""
        req, corr, session = self.ids.guid(), self.ids.guid(), self.ids.guid()
        app = app or (OFFICEHOME_APP, "OfficeHome")
        ok = error is None
        code, logon_error, reason, status = 0, None, None, "Success"
        if error == "password":
            code, logon_error, status = 50126, "InvalidUserNameOrPassword", "Failed"
            reason = "Error validating credentials due to invalid username or password."
        elif error == "kmsi":
            # "Keep me signed in" interrupt: logged as UserLoginFailed although ResultStatus says Success.
            code, logon_error = 50140, "KmsiInterrupt"
            reason = "This error occurred due to 'Keep me signed in' interrupt when the user was signing in."
        client_ip = ip
        rec = {
            "CreationTime": ual_time(ts),
            "Id": req,
            "Operation": "UserLoggedIn" if ok else "UserLoginFailed",
            "OrganizationId": self.org,
            "RecordType": 15,
            "ResultStatus": status,
            "UserKey": d.object_id,
            "UserType": 0,
            "Version": 1,
            "Workload": "AzureActiveDirectory",
            "ClientIP": client_ip,
            "ObjectId": EXCHANGE_APP if app[0] == OUTLOOK_APP else "Unknown",
            "UserId": d.upn,
            "AzureActiveDirectoryEventType": 1,
            "ExtendedProperties": [
                {"Name": "ResultStatusDetail", "Value": "Success" if ok else ("Redirect" if error == "kmsi" else "Failure")},
                {"Name": "UserAgent", "Value": ua},
                {"Name": "RequestType", "Value": "OAuth2:Authorize" if ok else "Login:login"},
            ],
            "ModifiedProperties": [],
            "Actor": [{"ID": d.object_id, "Type": 0}, {"ID": d.upn, "Type": 5}],
            "ActorContextId": self.org,
            "ActorIpAddress": ip,
            "InterSystemsId": corr,
            "IntraSystemId": req,
            "SupportTicketId": "",
            "Target": [{"ID": EXCHANGE_APP if app[0] == OUTLOOK_APP else "Unknown", "Type": 0}],
            "TargetContextId": self.org,
            "ApplicationId": app[0],
            "DeviceProperties": [
                {"Name": "OS", "Value": os_},
                {"Name": "BrowserType", "Value": browser.split(" ")[0]},
                {"Name": "IsCompliantAndManaged", "Value": "False"},
                {"Name": "SessionId", "Value": session},
            ],
            "ErrorNumber": str(code),
        }
        if logon_error:
            rec["LogonError"] = logon_error
        self.ual.append((ts, rec))
        city, state, country, lat, lon = loc
        self.signin.append((ts, {
            "id": req,
            "createdDateTime": z_time(ts),
            "userDisplayName": d.display,
            "userPrincipalName": d.upn,
            "userId": d.object_id,
            "appId": app[0],
            "appDisplayName": app[1],
            "ipAddress": ip,
            "clientAppUsed": "Browser" if app[0] == OFFICEHOME_APP else "Mobile Apps and Desktop clients",
            "correlationId": corr,
            "conditionalAccessStatus": "notApplied",
            "isInteractive": True,
            "riskDetail": "none",
            "riskLevelAggregated": "none",
            "riskLevelDuringSignIn": "none",
            "riskState": "none",
            "riskEventTypes": [],
            "riskEventTypes_v2": [],
            "resourceDisplayName": "Office 365 Exchange Online",
            "resourceId": EXCHANGE_APP,
            "status": {"errorCode": code, "failureReason": reason or "Other.", "additionalDetails": None},
            "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": os_, "browser": browser,
                             "isCompliant": False, "isManaged": False, "trustType": ""},
            "location": {"city": city, "state": state, "countryOrRegion": country,
                         "geoCoordinates": {"altitude": None, "latitude": lat, "longitude": lon}},
            "appliedConditionalAccessPolicies": [],
        }))
        return req, corr

    def baseline_logins(self):
        for d in self.devices:
            r = random.Random("logins-%d" % d.n)
            for day in range(SAAS_FIRST_DAY, NET_LAST_DAY + 1):
                arrive, _leave = self.days[(d.ip, day)]
                if weekday(day) < 5:
                    t = arrive + (35 + r.randrange(60)) * US
                    if r.random() < 0.03:
                        self.login(t - 40 * US, d, OFFICE_IP, OFFICE_LOC, error="password")
                    elif r.random() < 0.03:
                        self.login(t - 20 * US, d, OFFICE_IP, OFFICE_LOC, error="kmsi")
                    self.login(t, d, OFFICE_IP, OFFICE_LOC)
                    if r.random() < 0.1:
                        self.login(t + (8 + r.randrange(3)) * 3600 * US + r.randrange(3600) * US, d,
                                   OFFICE_IP, OFFICE_LOC, ua=UA_OUTLOOK, os_="Windows10",
                                   browser="Outlook 16.0", app=(OUTLOOK_APP, "Microsoft Office"))
                    evening = 0.35 if d.ip == VICTIM_IP else 0.2
                    if r.random() < evening and day < NET_LAST_DAY:
                        if r.random() < 0.05:
                            self.login(local_us(day, 19, 10) + r.randrange(3000) * US, d, d.home_ip,
                                       d.home_loc, error="password")
                        self.login(local_us(day, 19, 30) + r.randrange(5000) * US, d, d.home_ip, d.home_loc)
                elif r.random() < 0.15:
                    self.login(local_us(day, 11) + r.randrange(4 * 3600) * US, d, d.home_ip, d.home_loc)

    # ---------------------------------------------------------------- account changes
    def mfa_update(self, ts, d, old, new, initiator_ip, corr=None):
        """`Update user.` (UAL, written by the MFA service principal) and the Entra AuditLogs
        `User registered security info` record of the same change, sharing a correlation id."""
        corr = corr or self.ids.guid()
        intra = self.ids.guid()
        self.ual.append((ts + 2 * US, {
            "CreationTime": ual_time(ts + 2 * US),
            "Id": self.ids.guid(),
            "Operation": "Update user.",
            "OrganizationId": self.org,
            "RecordType": 8,
            "ResultStatus": "Success",
            "UserKey": "Not Available",
            "UserType": 4,
            "Version": 1,
            "Workload": "AzureActiveDirectory",
            "ObjectId": d.upn,
            "UserId": MFA_SERVICE_SP,
            "AzureActiveDirectoryEventType": 1,
            "ExtendedProperties": [
                {"Name": "additionalDetails", "Value": "{\"UserType\":\"Member\"}"},
                {"Name": "extendedAuditEventCategory", "Value": "User"},
            ],
            "ModifiedProperties": [
                {"Name": "StrongAuthenticationMethod",
                 "NewValue": json.dumps(new, separators=(",", ":")),
                 "OldValue": json.dumps(old, separators=(",", ":"))},
                {"Name": "Included Updated Properties", "NewValue": "StrongAuthenticationMethod", "OldValue": ""},
                {"Name": "TargetId.UserType", "NewValue": "Member", "OldValue": ""},
            ],
            "Actor": [
                {"ID": "Azure MFA StrongAuthenticationService", "Type": 1},
                {"ID": "b5a60e17-278b-4c92-a4e2-b9262e66bb28", "Type": 2},
                {"ID": MFA_SERVICE_SP, "Type": 2},
                {"ID": MFA_SERVICE_SP.split("_", 1)[1], "Type": 2},
                {"ID": "ServicePrincipal", "Type": 2},
            ],
            "ActorContextId": self.org,
            "InterSystemsId": corr,
            "IntraSystemId": intra,
            "SupportTicketId": "",
            "Target": [
                {"ID": "User_" + d.object_id, "Type": 2},
                {"ID": d.object_id, "Type": 2},
                {"ID": "User", "Type": 2},
                {"ID": d.upn, "Type": 5},
                {"ID": d.puid, "Type": 3},
            ],
            "TargetContextId": self.org,
        }))
        added = [m for m in new if m["MethodType"] not in {o["MethodType"] for o in old}]
        reason = "User registered Authenticator App with Code" if any(m["MethodType"] == 7 for m in added) \
            else "User registered Mobile Phone SMS"
        ts = ts + self.rng.randrange(US)          # the audit record carries sub-second time
        self.audit.append((ts, {
            "id": "Authentication Methods_%s_%s_%d" % (corr, self.ids.hexs(5), self.rng.randrange(10**8, 10**9)),
            "category": "UserManagement",
            "correlationId": corr,
            "result": "success",
            "resultReason": reason,
            "activityDisplayName": "User registered security info",
            "activityDateTime": z_time(ts, 7),
            "loggedByService": "Authentication Methods",
            "operationType": "Add",
            "initiatedBy": {
                "app": None,
                "user": {"id": d.object_id, "displayName": None, "userPrincipalName": d.upn,
                         "ipAddress": initiator_ip, "userType": None, "homeTenantId": None, "homeTenantName": None},
            },
            "userAgent": "",
            "targetResources": [{
                "id": d.object_id, "displayName": d.display, "type": "User", "userPrincipalName": d.upn,
                "groupType": None, "modifiedProperties": [],
            }],
            "additionalDetails": [],
        }))

    def inbox_rule(self, ts, d, ip_port, params, name):
        self.ual.append((ts, {
            "CreationTime": ual_time(ts),
            "Id": self.ids.guid(),
            "Operation": "New-InboxRule",
            "OrganizationId": self.org,
            "RecordType": 1,
            "ResultStatus": "True",
            "UserKey": d.puid,
            "UserType": 0,
            "Version": 1,
            "Workload": "Exchange",
            "ClientIP": ip_port,
            "ObjectId": "NAMPR08A005.prod.outlook.com/Microsoft Exchange Hosted Organizations/%s/%s\\%s"
                        % (TENANT, d.local, name),
            "UserId": d.upn,
            "AppId": "00000002-0000-0ff1-ce00-000000000000",
            "ClientAppId": "",
            "ExternalAccess": False,
            "OrganizationName": TENANT,
            "OriginatingServer": "%s (15.20.7386.025)" % self.rng.choice(SERVERS),
            "Parameters": [{"Name": k, "Value": v} for k, v in params],
            "SessionId": self.ids.guid(),
        }))

    def send(self, ts, d, ip, port, subject, client, msg):
        """A mailbox-audit `Send` (one message). `msg` is the InternetMessageId."""
        self.ual.append((ts, {
            "CreationTime": ual_time(ts),
            "Id": self.ids.guid(),
            "Operation": "Send",
            "OrganizationId": self.org,
            "RecordType": 2,
            "ResultStatus": "Succeeded",
            "UserKey": d.puid,
            "UserType": 0,
            "Version": 1,
            "Workload": "Exchange",
            "ClientIP": "%s:%d" % (ip, port) if port else ip,
            "UserId": d.upn,
            "AppId": "00000002-0000-0ff1-ce00-000000000000",
            "ClientAppId": "",
            "ClientIPAddress": ip,
            "ClientInfoString": client,
            "ExternalAccess": False,
            "InternalLogonType": 0,
            "LogonType": 0,
            "LogonUserSid": d.sid,
            "MailboxGuid": d.mailbox,
            "MailboxOwnerSid": d.sid,
            "MailboxOwnerUPN": d.upn,
            "OrganizationName": TENANT,
            "OriginatingServer": "%s (15.20.7386.025)\r\n" % self.rng.choice(SERVERS),
            "SessionId": self.ids.guid(),
            "Item": {
                "Id": "RgAAAAD" + self.ids.hexs(40),
                "InternetMessageId": msg,
                "ParentFolder": {"Id": "LgAAAAD" + self.ids.hexs(36), "Path": "\\Sent Items"},
                "SizeInBytes": 4000 + self.rng.randrange(60000),
                "Subject": subject,
            },
        }))

    def baseline_changes(self):
        # Two ordinary MFA registrations (new phones), from the office.
        for n, day in ((17, -17), (29, -9)):
            d = next(x for x in self.devices if x.n == n)
            ts = self.days[(d.ip, day)][0] + 14 * 60 * US
            self.mfa_update(ts, d, [{"MethodType": 6, "Default": True}],
                            [{"MethodType": 6, "Default": True}, {"MethodType": 5, "Default": False}], OFFICE_IP)
        # Ordinary inbox rules: newsletters to their own folder.
        for n, day in ((12, -19), (21, -15), (26, -8), (38, -3)):
            d = next(x for x in self.devices if x.n == n)
            ts = self.days[(d.ip, day)][0] + (2 * 3600 + self.rng.randrange(3600)) * US
            params = [("AlwaysDeleteOutlookRulesBlob", "False"), ("Force", "False"),
                      ("MoveToFolder", "Newsletters"), ("Name", "Newsletters"),
                      ("SubjectOrBodyContainsWords", "newsletter;unsubscribe"), ("StopProcessingRules", "False")]
            self.inbox_rule(ts, d, "%s:%d" % (OFFICE_IP, 49152 + self.rng.randrange(16000)), params, "Newsletters")

    def attack(self):
        v = self.victim
        # 18 March 14:03: the AiTM-proxied sign-in from the lure domain's IP.
        self.login(t_us(0, 14, 3, 29), v, ATTACKER_IP, ATTACKER_LOC, ua=UA_ATTACKER, os_="Linux", browser="Chrome 121.0.0")
        # 19 March: back again, and a second MFA method (Authenticator app, 6-digit code).
        _req, corr = self.login(t_us(1, 8, 7, 52), v, ATTACKER_IP, ATTACKER_LOC, ua=UA_ATTACKER, os_="Linux",
                                browser="Chrome 121.0.0")
        self.mfa_update(t_us(1, 8, 12, 41), v, [{"MethodType": 6, "Default": True}],
                        [{"MethodType": 6, "Default": True}, {"MethodType": 7, "Default": False}], ATTACKER_IP)
        # 20 March 09:40: the hiding rule, from the VPN.
        self.inbox_rule(t_us(2, 9, 40, 17), v, "%s:51734" % VPN_IP, INBOX_RULE_PARAMS, "...")

    def records(self):
        return (sorted(self.ual, key=lambda r: r[0]), sorted(self.signin, key=lambda r: r[0]),
                sorted(self.audit, key=lambda r: r[0]))

# ============================================================================ email (Defender for Office 365)

EXTERNAL_DOMAINS = [
    "ridgeway-logistics.com", "meridianpartners.com", "coastalsupply.net", "granitebank.com",
    "northfield-legal.com", "apexmaterials.com", "silverline-insurance.com", "bayside-medical.org",
    "pinecrest-consulting.com", "keystone-freight.com", "lakeshore-cpa.com", "redwoodventures.com",
    "summitengineering.net", "ironbridge-capital.com", "clearwater-labs.com", "oakmont-realty.com",
    "bluewater-marine.com", "highland-foods.com", "crescent-design.com", "evergreen-schools.org",
]
NEWSLETTERS = [
    ("news@industryweekly.com", "Industry Weekly", "Industry Weekly newsletter: %s", "industryweekly.com"),
    ("updates@linkedin.com", "LinkedIn", "You appeared in %d searches this week", "linkedin.com"),
    ("noreply@github.com", "GitHub", "[GitHub] A new sign-in to your account (%s)", "github.com"),
    ("events@bostontechmeetup.org", "Boston Tech Meetup", "Boston Tech Meetup newsletter: %s", "bostontechmeetup.org"),
    ("no-reply@zoom.us", "Zoom", "Your cloud recording is now available (%s)", "zoom.us"),
]
FIRST = ["james", "mary", "robert", "linda", "michael", "susan", "david", "karen", "richard", "lisa",
         "joseph", "nancy", "thomas", "betty", "charles", "sandra", "daniel", "ashley", "matthew", "emily"]
LAST = ["smith", "johnson", "brown", "jones", "garcia", "miller", "davis", "wilson", "anderson", "taylor",
        "thomas", "moore", "martin", "jackson", "white", "harris", "clark", "lewis", "young", "allen"]
SUBJECTS = ["Q1 budget review", "Re: contract renewal", "Meeting notes", "Updated timeline", "Invoice 4471",
            "Re: shipping schedule", "Draft proposal", "Team offsite", "Re: customer escalation",
            "Weekly status", "Purchase order 2024-118", "Re: Friday call", "Policy update", "Onboarding checklist"]


class Email:
    """Builds the Defender Advanced Hunting rows, wrapped the Event Hub way."""

    def __init__(self, devices, days, saas):
        self.ids = Ids("email")
        self.rng = random.Random("email-activity")
        self.devices, self.days, self.saas = devices, days, saas
        self.tenant = "8d2f1a6b-3c4e-4f5a-9b8c-7d6e5f4a3b2c"
        self.rows = []                                   # (ts, seq, wrapped row)
        self.victim = saas.victim

    def _row(self, category, ts, props):
        lag = 60 + self.rng.randrange(120)
        self.rows.append((ts, len(self.rows), {
            "Tenant": "DefaultTenant",
            "category": "AdvancedHunting-" + category,
            "operationName": "Publish",
            "properties": props,
            "tenantId": self.tenant,
            "time": z_time(ts + lag * US + self.rng.randrange(US), 7),
        }))

    def _msgid(self, domain):
        if domain == DOMAIN:
            return "<%s@%s.namprd08.prod.outlook.com>" % (self.ids.hexs(32), self.rng.choice(SERVERS))
        return "<%s.%s@mail.%s>" % (self.ids.hexs(12).lower(), self.ids.hexs(8).lower(), domain)

    def message(self, ts, direction, sender, sender_name, recipient, subject, sender_ip, urls=(),
                mail_from=None, delivery=("Delivered", "Inbox/folder"), msgid=None, auth=None, rcpt_obj=None):
        """One EmailEvents row per recipient, plus an EmailUrlInfo row per URL. Returns the
        NetworkMessageId."""
        nmid = self.ids.guid()
        sdom = sender.split("@", 1)[1]
        mf = mail_from or sender
        self._row("EmailEvents", ts, {
            "AdditionalFields": None,
            "AttachmentCount": 0,
            "AuthenticationDetails": json.dumps(auth or {"SPF": "pass", "DKIM": "pass", "DMARC": "pass", "CompAuth": "pass"},
                                                separators=(",", ":")),
            "ConfidenceLevel": None,
            "Connectors": None,
            "DeliveryAction": delivery[0],
            "DeliveryLocation": delivery[1],
            "DetectionMethods": None,
            "EmailAction": None,
            "EmailActionPolicy": None,
            "EmailActionPolicyGuid": None,
            "EmailClusterId": self.rng.randrange(10**8, 10**10),
            "EmailDirection": direction,
            "EmailLanguage": "en",
            "InternetMessageId": msgid or self._msgid(sdom),
            "NetworkMessageId": nmid,
            "OrgLevelAction": None,
            "OrgLevelPolicy": None,
            "RecipientEmailAddress": recipient,
            "RecipientObjectId": rcpt_obj,
            "ReportId": str(self.rng.randrange(10**5, 10**7)),
            "SenderDisplayName": sender_name,
            "SenderFromAddress": sender,
            "SenderFromDomain": sdom,
            "SenderIPv4": sender_ip,
            "SenderIPv6": None,
            "SenderMailFromAddress": mf,
            "SenderMailFromDomain": mf.split("@", 1)[1],
            "SenderObjectId": None,
            "Subject": subject,
            "ThreatNames": None,
            "ThreatTypes": None,
            "Timestamp": z_time(ts),
            "UrlCount": len(urls),
            "UserLevelAction": None,
            "UserLevelPolicy": None,
        })
        for u in urls:
            host = u.split("/")[2].split(":")[0].lower()
            self._row("EmailUrlInfo", ts, {
                "NetworkMessageId": nmid,
                "ReportId": "%s-%d" % (nmid, self.rng.randrange(10**18, 10**19)),
                "Timestamp": z_time(ts),
                "Url": u,
                "UrlDomain": host,
                "UrlLocation": "Body",
            })
        return nmid

    def click(self, ts, d, url, nmid, chain=None):
        self._row("UrlClickEvents", ts, {
            "Timestamp": z_time(ts),
            "IPAddress": OFFICE_IP,
            "AccountUpn": d.upn,
            "ActionType": "ClickAllowed",
            "DetectionMethods": "",
            "IsClickedThrough": False,
            "NetworkMessageId": nmid,
            "ReportId": str(self.rng.randrange(10**5, 10**7)),
            "ThreatTypes": "",
            "Url": url,
            "UrlChain": json.dumps(chain or [url]),
            "Workload": "Email",
        })

    def _external_person(self, r):
        return "%s.%s@%s" % (r.choice(FIRST), r.choice(LAST), r.choice(EXTERNAL_DOMAINS))

    def background(self):
        r = self.rng
        for day in range(SAAS_FIRST_DAY, NET_LAST_DAY + 1):
            if weekday(day) >= 5:
                continue
            # Inbound: newsletters and partners.
            for _ in range(6 + r.randrange(5)):
                d = r.choice(self.devices)
                a, b = self.days[(d.ip, day)]
                ts = local_us(day, 7) + r.randrange(12 * 3600) * US
                if r.random() < 0.5:
                    sender, name, subj, dom = r.choice(NEWSLETTERS)
                    subj = subj % (r.randrange(3, 60) if "%d" in subj else _dt(ts).strftime("%B %d"))
                    urls = ["https://www.%s/article/%d?utm_source=newsletter" % (dom, r.randrange(10**5, 10**6)),
                            "https://www.%s/unsubscribe?u=%s" % (dom, self.ids.hexs(16).lower())]
                    nmid = self.message(ts, "Inbound", sender, name, d.upn, subj, "209.85.%d.%d" % (r.randrange(128, 255), r.randrange(1, 255)),
                                        urls, rcpt_obj=d.object_id)
                    if r.random() < 0.15 and a < ts + 3600 * US < b:
                        self.click(ts + (600 + r.randrange(3000)) * US, d, urls[0], nmid)
                else:
                    sender = self._external_person(r)
                    name = " ".join(p.capitalize() for p in sender.split("@")[0].split("."))
                    self.message(ts, "Inbound", sender, name, d.upn, r.choice(SUBJECTS),
                                 "40.107.%d.%d" % (r.randrange(1, 255), r.randrange(1, 255)), rcpt_obj=d.object_id)
            # Outbound and intra-org: the mailbox-audit Send of each message, and its EmailEvents row.
            for d in self.devices:
                a, b = self.days[(d.ip, day)]
                for _ in range(r.choice((0, 0, 1, 1, 1))):
                    ts = a + (1200 + r.randrange((b - a) // US - 1800)) * US
                    subj = r.choice(SUBJECTS)
                    msgid = self._msgid(DOMAIN)
                    port = 49152 + r.randrange(16000) if r.random() < 0.5 else None
                    self.saas.send(ts, d, OFFICE_IP, port, subj, "Client=MSExchangeRPC", msgid)
                    if r.random() < 0.5:
                        other = r.choice([x for x in self.devices if x is not d])
                        self.message(ts + 2 * US, "Intra-org", d.upn, d.display, other.upn, subj, OFFICE_IP,
                                     msgid=msgid, rcpt_obj=other.object_id)
                    else:
                        self.message(ts + 2 * US, "Outbound", d.upn, d.display, self._external_person(r), subj,
                                     OFFICE_IP, msgid=msgid)

    def attack(self):
        r, v = self.rng, self.victim
        # 18 March ~13:55: the lures, relayed through the mail service.
        lure_sender = "m.harlow@ashgrove-capital.com"
        nmids, lure_urls = [], []
        for k, minute in enumerate((51, 53, 55, 57)):
            ts = t_us(0, 13, minute, 7 + 11 * k)
            token = self.ids.hexs(24).lower()
            urls = ["https://secure.zixmail.net/s/e?b=ashgrove&m=%s" % token,
                    "https://%s/s/secure-message?id=%s" % (LURE_FQDN, token)]
            lure_urls.append(urls)
            nmids.append(self.message(ts, "Inbound", lure_sender, "Michael Harlow (Ashgrove Capital)", v.upn,
                                      "Secure Message from Ashgrove Capital: remittance documents (%d of 4)" % (k + 1),
                                      ZIXMAIL.ip, urls, mail_from="securemail@zixmail.net",
                                      auth={"SPF": "pass", "DKIM": "pass", "DMARC": "none", "CompAuth": "softpass"},
                                      rcpt_obj=v.object_id))
        self.click(t_us(0, 14, 1, 4), v, lure_urls[-1][0], nmids[-1])
        self.click(t_us(0, 14, 2, 27), v, lure_urls[-1][1], nmids[-1])
        # 20 March from 10:00: the outbound wave, sent from the VPN through OWA.
        internal = [d for d in self.devices if d is not v]
        wr = random.Random("wave")
        externals = []
        while len(externals) < 270:
            e = self._external_person(wr)
            if e not in externals:
                externals.append(e)
        recipients = [d.upn for d in internal] + externals
        wr.shuffle(recipients)
        body_urls = [DOCSEND_URL]
        wave_nmid = {}
        for i, rcpt in enumerate(recipients):
            ts = t_us(2, 10, 0, 4) + (i * 3300 // len(recipients)) * US + wr.randrange(US)
            msgid = self._msgid(DOMAIN)
            port = 50000 + wr.randrange(15000) if i % 3 else None
            self.saas.send(ts, v, VPN_IP, port, WAVE_SUBJECT, "Client=OWA;Action=ViaProxy", msgid)
            internal_rcpt = rcpt.endswith("@" + DOMAIN)
            obj = next((d.object_id for d in internal if d.upn == rcpt), None)
            wave_nmid[rcpt] = self.message(ts + 3 * US, "Intra-org" if internal_rcpt else "Outbound", v.upn, v.display,
                                           rcpt, WAVE_SUBJECT, VPN_IP, body_urls, msgid=msgid, rcpt_obj=obj)
        # Bounce-backs within ten minutes of the start.
        bounced = [e for e in externals][:44]
        for k, e in enumerate(bounced):
            ts = t_us(2, 10, 1, 30) + (k * 530 // len(bounced)) * US + wr.randrange(US)
            dom = e.split("@")[1]
            sender = ("postmaster@%s" % dom) if k % 3 else ("MAILER-DAEMON@mx1.%s" % dom)
            self.message(ts, "Inbound", sender, "Mail Delivery System", v.upn, "Undeliverable: " + WAVE_SUBJECT,
                         "40.107.%d.%d" % (wr.randrange(1, 255), wr.randrange(1, 255)),
                         auth={"SPF": "pass", "DKIM": "none", "DMARC": "none", "CompAuth": "pass"},
                         rcpt_obj=v.object_id)
        # Replies: "did you mean to send this?"
        for k in range(9):
            ts = t_us(2, 10, 6) + (k * 240 + wr.randrange(200)) * US
            if k % 2:
                d = internal[(k * 5) % len(internal)]
                self.message(ts, "Intra-org", d.upn, d.display, v.upn, "RE: " + WAVE_SUBJECT, OFFICE_IP,
                             rcpt_obj=v.object_id)
            else:
                e = externals[100 + k]
                name = " ".join(p.capitalize() for p in e.split("@")[0].split("."))
                self.message(ts, "Inbound", e, name, v.upn, "RE: " + WAVE_SUBJECT,
                             "40.107.%d.%d" % (wr.randrange(1, 255), wr.randrange(1, 255)), rcpt_obj=v.object_id)
        # The clicks of the users whose workstations then visit DocSend (see the capture).
        for k, ip in enumerate(CLICKERS):
            d = next(x for x in self.devices if x.ip == ip)
            ts = t_us(2, 15, 4 + 9 * k, 11 + 7 * k) - 2 * US
            self.click(ts, d, DOCSEND_URL, wave_nmid[d.upn],
                       chain=[DOCSEND_URL, "https://%s/d/view" % REDIRECT_DOMAIN])

    def records(self):
        return [row for _, _, row in sorted(self.rows, key=lambda x: (x[0], x[1]))]

# ============================================================================ output


def dump_ndjson(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n")


CONFIG = """\
# crosswire configuration for the reference-case scenario (captures/reference-case/).
# Paths are relative to the repository root: run crosswire from there, e.g.
#   crosswire replay captures/reference-case/reference.pcap \\
#     --config captures/reference-case/crosswire.toml --state /tmp/refstate --eve /tmp/ref.eve.json

[network]
# The office LAN; the resolver (10.20.0.2) and the DHCP server (10.20.0.1) live here too.
home_net = ["10.20.0.0/16"]

[intel]
registration_feeds = ["captures/reference-case/nrd.csv"]
popularity_list = "captures/reference-case/popular.csv"
# The capture starts 2024-03-18 00:05 UTC; thirteen hours of history (the night and the Monday
# morning arrivals of the Boston office, 11:40-13:15 UTC) are learned before novelty counts.
# The attack starts at 14:02 UTC.
learning_period = "13h"
org_domains = ["example.com"]

[correlate]
# The static device/user table (the DHCP leases in the capture name the same hosts).
devices_csv = "captures/reference-case/devices.csv"
"""


def write_all(out):
    devices = make_devices()
    days = schedule_days(devices)
    net = build_network(devices, days)
    add_attack_network(net)
    frames = net.sorted_frames()
    write_pcap(os.path.join(out, "reference.pcap"), frames)

    saas = Saas(devices, days)
    saas.baseline_logins()
    saas.baseline_changes()
    saas.attack()
    email = Email(devices, days, saas)
    email.background()
    email.attack()
    ual, signin, audit = saas.records()
    dump_ndjson(os.path.join(out, "m365-audit.ndjson"), [r for _, r in ual])
    dump_ndjson(os.path.join(out, "entra-signin.ndjson"), [r for _, r in signin])
    dump_ndjson(os.path.join(out, "entra-audit.ndjson"), [r for _, r in audit])
    dump_ndjson(os.path.join(out, "email.ndjson"), email.records())

    with open(os.path.join(out, "nrd.csv"), "w", newline="\n") as f:
        f.write("\n".join(nrd_lines()) + "\n")
    with open(os.path.join(out, "popular.csv"), "w", newline="\n") as f:
        f.write("".join("%d,%s\n" % x for x in POPULAR))
    with open(os.path.join(out, "devices.csv"), "w", newline="\n") as f:
        f.write("ip,mac,hostname,user\n")
        f.write("".join("%s,%s,%s,%s\n" % (d.ip, d.mac, d.host, d.upn) for d in devices))
    with open(os.path.join(out, "expected-breaches.tsv"), "w", newline="\n") as f:
        f.write("model\tdevice\tdomain\tip\n")
        f.write("".join("\t".join(r) + "\n" for r in expected_breaches()))
    with open(os.path.join(out, "crosswire.toml"), "w", newline="\n") as f:
        f.write(CONFIG)
    names = ["reference.pcap", "m365-audit.ndjson", "entra-signin.ndjson", "entra-audit.ndjson", "email.ndjson",
             "nrd.csv", "popular.csv", "devices.csv", "expected-breaches.tsv", "crosswire.toml"]
    total = 0
    for n in names:
        size = os.path.getsize(os.path.join(out, n))
        total += size
        print("wrote %-22s %9d bytes" % (n, size))
    print("total %d bytes; %d frames" % (total, len(frames)))

# ============================================================================ --check


class Check:
    def __init__(self):
        self.failures = 0

    def ok(self, cond, what):
        print("%s %s" % ("ok  " if cond else "FAIL", what))
        if not cond:
            self.failures += 1


def load_ndjson(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit("%s:%d: not JSON: %s" % (path, i, e))
    return rows


def check(dirpath):
    c = Check()
    p = lambda n: os.path.join(dirpath, n)  # noqa: E731
    ual, signin, audit, email = (load_ndjson(p(n)) for n in
                                 ("m365-audit.ndjson", "entra-signin.ndjson", "entra-audit.ndjson", "email.ndjson"))
    c.ok(True, "every line of the four NDJSON files is JSON (%d/%d/%d/%d records)"
         % (len(ual), len(signin), len(audit), len(email)))
    for name, rows, key in (("m365-audit", ual, "CreationTime"), ("entra-signin", signin, "createdDateTime"),
                            ("entra-audit", audit, "activityDateTime")):
        ts = [r[key] for r in rows]
        c.ok(ts == sorted(ts), "%s: %s in order" % (name, key))
    ts = [r["properties"]["Timestamp"] for r in email]
    c.ok(ts == sorted(ts), "email: properties.Timestamp in order")
    c.ok(all(not r["CreationTime"].endswith("Z") for r in ual), "m365-audit: CreationTime without zone")
    c.ok(all(r["category"].startswith("AdvancedHunting-") and "properties" in r and "time" in r for r in email),
         "email: Event Hub wrapper on every row")

    victim = "dana.whitfield@%s" % DOMAIN
    attack_start = "2024-03-18T14:03"
    devices = make_devices()
    us_ips = {OFFICE_IP} | {d.home_ip for d in devices}
    base_ual = [r for r in ual if r.get("UserId") == victim and r["Operation"] in ("UserLoggedIn", "UserLoginFailed")
                and r["CreationTime"] < attack_start]
    c.ok(len(base_ual) >= 15 and all(r["ClientIP"] in us_ips for r in base_ual),
         "victim's %d baseline UAL logins all from the office or her US home IP" % len(base_ual))
    base_si = [r for r in signin if r["userPrincipalName"] == victim and r["createdDateTime"] < attack_start]
    c.ok(len(base_si) == len(base_ual) and all(r["location"]["countryOrRegion"] == "US" for r in base_si),
         "victim's %d baseline sign-ins all located in the US" % len(base_si))
    c.ok(ual[0]["CreationTime"].startswith("2024-02-26"), "SaaS baseline starts 2024-02-26")
    bad = [r for r in ual if r["Operation"] == "UserLoggedIn" and r["ClientIP"] == ATTACKER_IP]
    c.ok(len(bad) == 2 and bad[0]["UserId"] == victim and bad[0]["CreationTime"].startswith("2024-03-18T14:03"),
         "attacker logins from %s: 18 March 14:03 and 19 March" % ATTACKER_IP)
    si_bad = [r for r in signin if r["ipAddress"] == ATTACKER_IP]
    c.ok([r["id"] for r in si_bad] == [r["Id"] for r in bad]
         and [r["correlationId"] for r in si_bad] == [r["InterSystemsId"] for r in bad]
         and all(r["location"]["countryOrRegion"] == "NL" and r["location"]["city"] == "Amsterdam"
                 and r["location"]["geoCoordinates"]["latitude"] for r in si_bad),
         "the same logins in SigninLogs (same id and correlationId), located NL/Amsterdam")
    ids_ual = {r["Id"] for r in ual if r["Operation"].startswith("UserLog")}
    c.ok(len(ids_ual) == len(signin) and all(r["id"] in ids_ual for r in signin),
         "every sign-in is in both files exactly once (joined by request id)")
    mfa = [r for r in ual if r["Operation"] == "Update user." and r["ObjectId"] == victim]
    ok_mfa = False
    if len(mfa) == 1:
        mp = {m["Name"]: m for m in mfa[0]["ModifiedProperties"]}
        old = json.loads(mp["StrongAuthenticationMethod"]["OldValue"])
        new = json.loads(mp["StrongAuthenticationMethod"]["NewValue"])
        ok_mfa = (len(old), len(new)) == (1, 2) and any(m["MethodType"] == 7 for m in new) \
            and mfa[0]["CreationTime"].startswith("2024-03-19")
    c.ok(ok_mfa, "19 March: StrongAuthenticationMethod grows 1 -> 2 (PhoneAppOTP added)")
    reg = [r for r in audit if r["targetResources"][0]["userPrincipalName"] == victim]
    c.ok(len(reg) == 1 and reg[0]["activityDisplayName"] == "User registered security info"
         and mfa and reg[0]["correlationId"] == mfa[0]["InterSystemsId"],
         "the same change in entra-audit (User registered security info, same correlation id)")
    rules = [r for r in ual if r["Operation"] == "New-InboxRule" and r["UserId"] == victim]
    c.ok(len(rules) == 1 and [(x["Name"], x["Value"]) for x in rules[0]["Parameters"]] == INBOX_RULE_PARAMS
         and rules[0]["ClientIP"].startswith(VPN_IP + ":") and rules[0]["CreationTime"].startswith("2024-03-20T09:40"),
         "20 March 09:40 New-InboxRule from the VPN with exactly the CASE parameters")
    others = [r for r in ual if r["Operation"] == "New-InboxRule" and r["UserId"] != victim]
    c.ok(len(others) >= 3 and all(r["ClientIP"].startswith(OFFICE_IP) for r in others),
         "%d ordinary Newsletters rules from the office" % len(others))
    wave = [r for r in ual if r["Operation"] == "Send" and r["UserId"] == victim
            and r["CreationTime"].startswith("2024-03-20T10")]
    c.ok(len(wave) >= 200, "%d Send records from the victim within 20 March 10:00-11:00" % len(wave))
    c.ok(any(":" in r["ClientIP"] for r in ual) and any(":" not in r["ClientIP"] for r in ual if "ClientIP" in r),
         "ClientIP with and without ports")
    props = [r["properties"] | {"_c": r["category"]} for r in email]
    lures = [x for x in props if x["_c"].endswith("EmailEvents") and x["SenderMailFromDomain"] == "zixmail.net"]
    c.ok(len(lures) >= 3 and all(x["Timestamp"].startswith("2024-03-18T13:5") for x in lures),
         "%d lure emails via zixmail.net on 18 March ~13:55" % len(lures))
    lure_ids = {x["NetworkMessageId"] for x in lures}
    c.ok(sum(1 for x in props if x["_c"].endswith("EmailUrlInfo") and x["NetworkMessageId"] in lure_ids
             and x["UrlDomain"] == LURE_FQDN) == len(lures), "each lure carries a URL on %s" % LURE_FQDN)
    out = [x for x in props if x["_c"].endswith("EmailEvents") and x["SenderFromAddress"] == victim
           and x["Subject"] == WAVE_SUBJECT]
    c.ok(len(out) >= 200 and {x["EmailDirection"] for x in out} == {"Outbound", "Intra-org"},
         "%d wave emails, outbound and intra-org" % len(out))
    out_ids = {x["NetworkMessageId"] for x in out}
    c.ok(sum(1 for x in props if x["_c"].endswith("EmailUrlInfo") and x["NetworkMessageId"] in out_ids
             and x["Url"] == DOCSEND_URL) == len(out), "each wave email carries %s" % DOCSEND_URL)
    ndr = sorted(x["Timestamp"] for x in props if x["_c"].endswith("EmailEvents")
                 and x["Subject"] == "Undeliverable: " + WAVE_SUBJECT and x["RecipientEmailAddress"] == victim)
    span = (datetime.fromisoformat(ndr[-1]) - datetime.fromisoformat(ndr[0])).total_seconds() if ndr else 1e9
    c.ok(len(ndr) >= 40 and span <= 600, "%d bounce-backs within %.0f s" % (len(ndr), span))
    clicks = [x for x in props if x["_c"].endswith("UrlClickEvents") and x["Url"] == DOCSEND_URL]
    by_upn = {d.upn: d.ip for d in devices}
    c.ok(sorted(by_upn.get(x["AccountUpn"]) for x in clicks) == CLICKERS
         and all(x["IPAddress"] == OFFICE_IP for x in clicks), "DocSend clicks by the users of %s" % ", ".join(CLICKERS))

    frames = read_pcap(p("reference.pcap"))
    tss = [t for t, _ in frames]
    c.ok(tss == sorted(tss), "reference.pcap: %d frames in time order" % len(frames))
    first, last = _dt(tss[0]), _dt(tss[-1])
    c.ok(first.strftime("%Y-%m-%d") == "2024-03-18" and last.strftime("%Y-%m-%d") == "2024-03-20",
         "capture spans %s .. %s" % (first.isoformat(), last.isoformat()))
    size = os.path.getsize(p("reference.pcap"))
    c.ok(size < 3_200_000, "reference.pcap is %d bytes" % size)
    dhcp_hosts = set()
    for _, f in frames:
        if len(f) > 42 and f[23] == 17 and f[34:38] == b"\x00\x44\x00\x43":
            o = 42 + 240
            while o < len(f) and f[o] != 255:
                if f[o] == 0:
                    o += 1
                    continue
                if f[o] == 12:
                    dhcp_hosts.add(f[o + 2:o + 2 + f[o + 1]].decode())
                o += 2 + f[o + 1]
    c.ok(dhcp_hosts == {d.host for d in devices}, "DHCP names all %d workstations" % len(dhcp_hosts))
    with open(p("devices.csv")) as f:
        lines = f.read().splitlines()
    c.ok(lines[0] == "ip,mac,hostname,user" and "10.20.0.23,3c:52:82:aa:01:23,wks-023,dana.whitfield@example.com"
         in lines and len(lines) == 32, "devices.csv: header and 31 devices")
    with open(p("nrd.csv")) as f:
        nrd = dict(line.split(",") for line in f.read().splitlines() if not line.startswith("#"))
    c.ok(nrd.get(LURE_DOMAIN) == "2024-03-14" and nrd.get(REDIRECT_DOMAIN) == "2024-03-20" and len(nrd) >= 30,
         "nrd.csv: both attack domains with their dates, %d entries" % len(nrd))
    with open(p("popular.csv")) as f:
        pop = [line.split(",") for line in f.read().splitlines()]
    c.ok(all(r[0].isdigit() for r in pop) and {"docsend.com", "zixmail.net", "microsoftonline.com"} <= {r[1] for r in pop},
         "popular.csv: Tranco rank,domain with docsend.com, zixmail.net, Microsoft")
    print("%d failure(s)" % c.failures)
    return c.failures

# ============================================================================ --verify-eve


def verify_eve(path):
    got = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("event_type") != "model_breach":
                continue
            m = ev["model_breach"]
            got.append((m.get("model", ""), (m.get("device") or {}).get("ip", ""), m.get("domain") or "",
                        m.get("ip") or ""))
    got.sort()
    want = expected_breaches()
    for row in got:
        print("%s %s" % ("ok  " if row in want else "EXTRA", "\t".join(row)))
    for row in want:
        if row not in got:
            print("MISSING " + "\t".join(row))
    same = got == want
    print("breaches match expected-breaches.tsv" if same else "breaches DIFFER from expected-breaches.tsv")
    return 0 if same else 1


def main(argv):
    if argv and argv[0] == "--check":
        sys.exit(1 if check(argv[1] if len(argv) > 1 else HERE) else 0)
    if argv and argv[0] == "--verify-eve":
        if len(argv) != 2:
            raise SystemExit("usage: generate.py --verify-eve EVE.json")
        sys.exit(verify_eve(argv[1]))
    out = argv[0] if argv else HERE
    os.makedirs(out, exist_ok=True)
    write_all(out)


if __name__ == "__main__":
    main(sys.argv[1:])
