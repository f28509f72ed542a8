#!/usr/bin/env python3
"""Writes a pcap of N DNS query/response pairs for N distinct random domains from 200 devices,
one pair per second of packet time, to measure crosswire's memory with domain intelligence on:

    scripts/intel-rss.py /tmp/rand.pcap 1000000
    crosswire replay /tmp/rand.pcap --state /tmp/st --eve /tmp/eve.json
    tail -1 /tmp/eve.json   # stats.memory.max_rss_kib, stats.intel.store.tables.*.row_evictions
"""
import random, struct, sys

def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s > 0xffff: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def ip4(src, dst, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, 17, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00" + h + payload

def udp(src, sp, dst, dp, data):
    return ip4(src, dst, struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data)

def dns(qid, name, answer):
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0\0\1\0\1"
    if answer is None:
        return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q
    return (struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + q
            + b"\xc0\x0c\0\1\0\1\0\0\1\x2c\0\4" + answer)

def main():
    out, n = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(7)
    resolver = bytes([10, 0, 0, 2])
    t0 = 1_700_000_000
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i in range(n):
            dev = bytes([10, 0, 1 + (i % 200) // 250, 1 + i % 200])
            name = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10))
            name = "www.%s.%s" % (name, rnd.choice(["com", "net", "org", "io", "de"]))
            ans = bytes([rnd.randrange(1, 223), rnd.randrange(256), rnd.randrange(256), 1])
            port = 1024 + i % 60000
            for k, pkt in enumerate((udp(dev, port, resolver, 53, dns(i & 0xffff, name, None)),
                                     udp(resolver, 53, dev, port, dns(i & 0xffff, name, ans)))):
                f.write(struct.pack("<IIII", t0 + i, k * 1000, len(pkt), len(pkt)) + pkt)

main()
