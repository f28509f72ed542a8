#!/usr/bin/env bash
# record.sh - re-record the real-client captures of crosswire's test corpus.
#
# Runs as root on Debian 12. Everything happens inside a private network namespace
# ("cwcap") on its loopback interface: a local dnsmasq (authoritative for the made-up zone
# crosswire.test, --no-resolv, nothing is forwarded), nginx (HTTP on :80, HTTPS on :443 with
# a throw-away self-signed certificate), and a tiny Python SMTP server with STARTTLS.
# Real clients (dig, curl, openssl s_client, glibc's resolver, a Python socket) talk to
# them while tcpdump records "lo" (link type EN10MB). No packet leaves the namespace.
#
# Usage:  sudo ./record.sh [OUTDIR]        (default OUTDIR: the directory of this script)
#   then: ../../shared/tools/make_oracle.sh OUTDIR   (writes the *.expected.tsv oracles)
#
# Needs: apt-get install -y tcpdump dnsutils curl openssl dnsmasq-base nginx-light \
#          ethtool tcpreplay wireshark-common tshark iproute2 python3
#
# Offloads (TSO/GSO/GRO) are switched off on the namespace's lo so that tcpdump sees the
# segments as a wire would carry them (otherwise the kernel hands tcpdump >MTU super-packets).
# lo's TX checksum offload cannot be switched off, so the IPv4/UDP/TCP checksums of every
# recorded file are recomputed afterwards ("generate.py --fixcsum").
# Timestamps, ports, TCP sequence numbers and key shares differ on every run; the oracle must
# be regenerated after re-recording.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(cd "${1:-$HERE}" && pwd)
NS=cwcap
WORK=$(mktemp -d /tmp/cwcap.XXXXXX)
chmod 755 "$WORK"
DNS4=127.0.0.53      # dnsmasq
WEB4=127.0.0.80      # nginx
SMTP4=127.0.0.25     # python SMTP server
CLI4=127.0.0.10      # client source address (dig -b / curl --interface)
ZONE=crosswire.test

for c in ip tcpdump dig curl openssl dnsmasq nginx ethtool tcprewrite editcap python3; do
  command -v "$c" >/dev/null || { echo "missing $c (see the apt-get line at the top)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }

nsx() { ip netns exec "$NS" "$@"; }

PIDS=()
cleanup() {
  set +e
  [ -n "${TCPDUMP_PID:-}" ] && kill "$TCPDUMP_PID" 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  ip netns del "$NS" 2>/dev/null
  rm -rf "/etc/netns/$NS" "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- namespace
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
nsx ip link set lo up
nsx ethtool -K lo tso off gso off gro off >/dev/null 2>&1 || true
# glibc inside the namespace (curl's getaddrinfo) uses this resolv.conf (ip netns exec bind-mounts it)
mkdir -p "/etc/netns/$NS"
printf 'nameserver %s\noptions edns0\n' "$DNS4" > "/etc/netns/$NS/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' > "/etc/netns/$NS/hosts"

# ---------------------------------------------------------------- certificate (throw-away)
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=*.$ZONE" \
  -addext "subjectAltName=DNS:$ZONE,DNS:*.$ZONE" \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

# ---------------------------------------------------------------- dnsmasq (local data only)
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
# DNS wire-format name, uncompressed
wname() { local out="" l; IFS=. read -ra ls <<<"$1"; for l in "${ls[@]}"; do out+=$(printf '%02x' ${#l})$(hex "$l"); done; printf '%s00' "$out"; }
BIGTXT=$(printf 'x%.0s' $(seq 1 200))
# HTTPS (65): priority 1, target ".", alpn=h2,http/1.1, ipv4hint=127.0.0.80, ipv6hint=::1
HTTPS_RR=0001000001000c02683208$(hex http/1.1)000400047f0000500006001000000000000000000000000000000001
# SVCB (64): priority 1, target svc-backend.crosswire.test, alpn=h2, port=8443
SVCB_RR=0001$(wname svc-backend.$ZONE)000100030268320003000220fb
# CAA (257): flags 0, tag "issue", value "ca.example.net"
CAA_RR=0005$(hex issue)$(hex ca.example.net)
NS1=$(wname ns1.$ZONE); NS2=$(wname ns2.$ZONE)
cat > "$WORK/dnsmasq.conf" <<EOF
no-resolv
no-hosts
no-poll
bind-interfaces
listen-address=$DNS4
listen-address=::1
port=53
local=/$ZONE/
local=/0.0.127.in-addr.arpa/
domain-needed
cache-size=0
host-record=www.$ZONE,$WEB4,::1
host-record=api.$ZONE,$WEB4,::1
host-record=mail.$ZONE,$SMTP4
host-record=ns1.$ZONE,192.0.2.53,2001:db8::53
host-record=ns2.$ZONE,198.51.100.53
host-record=cdn.$ZONE,192.0.2.10
host-record=cdn.$ZONE,192.0.2.11
host-record=cdn.$ZONE,192.0.2.12
host-record=v6only.$ZONE,2001:db8:0:1::10
cname=alias.$ZONE,alias2.$ZONE
cname=alias2.$ZONE,cdn.$ZONE
mx-host=$ZONE,mail.$ZONE,10
mx-host=$ZONE,mx2.$ZONE,20
txt-record=$ZONE,"v=spf1 ip4:192.0.2.0/24 -all"
txt-record=multi.$ZONE,"first string","second string with spaces","3rd"
srv-host=_http._tcp.$ZONE,www.$ZONE,80,0,10
ptr-record=10.2.0.192.in-addr.arpa,cdn.$ZONE
dns-rr=$ZONE,2,$NS1
dns-rr=$ZONE,2,$NS2
dns-rr=www.$ZONE,65,$HTTPS_RR
dns-rr=svc.$ZONE,64,$SVCB_RR
dns-rr=$ZONE,257,$CAA_RR
EOF
for i in $(seq -w 1 24); do
  echo "txt-record=big.$ZONE,\"record $i $BIGTXT\"" >> "$WORK/dnsmasq.conf"
done
ip netns exec "$NS" dnsmasq --conf-file="$WORK/dnsmasq.conf" --keep-in-foreground --pid-file="$WORK/dnsmasq.pid" &
PIDS+=($!)

# ---------------------------------------------------------------- nginx
mkdir -p "$WORK/nginx-tmp"
cat > "$WORK/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-tmp;
  proxy_temp_path $WORK/nginx-tmp;
  fastcgi_temp_path $WORK/nginx-tmp;
  uwsgi_temp_path $WORK/nginx-tmp;
  scgi_temp_path $WORK/nginx-tmp;
  keepalive_requests 100;
  server {
    listen $WEB4:80;
    listen [::1]:80;
    listen $WEB4:443 ssl http2;
    listen [::1]:443 ssl http2;
    server_name _;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { default_type text/plain; return 200 "hello from the crosswire test server\n"; }
  }
}
EOF
ip netns exec "$NS" nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

# ---------------------------------------------------------------- SMTP server with STARTTLS
cat > "$WORK/smtpd.py" <<'EOF'
import socket, ssl, sys, threading
host, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
def session(c):
    f = c.makefile("rb"); tls = False
    def send(s):
        c.sendall(s.encode() + b"\r\n")
    send("220 mail.crosswire.test ESMTP crosswire-test")
    while True:
        line = f.readline()
        if not line:
            break
        cmd = line.strip().decode(errors="replace").upper()
        if cmd.startswith(("EHLO", "HELO")):
            send("250-mail.crosswire.test")
            send("250-SIZE 1000000" if tls else "250-STARTTLS")
            send("250 8BITMIME")
        elif cmd == "STARTTLS" and not tls:
            send("220 2.0.0 Ready to start TLS")
            c = ctx.wrap_socket(c, server_side=True); f = c.makefile("rb"); tls = True
        elif cmd == "DATA":
            send("354 End data with <CR><LF>.<CR><LF>")
            while f.readline() not in (b".\r\n", b".\n", b""):
                pass
            send("250 2.0.0 Ok: queued")
        elif cmd == "QUIT":
            send("221 2.0.0 Bye"); break
        else:
            send("250 2.1.0 Ok")
    try: c.close()
    except Exception: pass
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, 25)); s.listen(5)
while True:
    c, _ = s.accept()
    threading.Thread(target=session, args=(c,), daemon=True).start()
EOF
ip netns exec "$NS" python3 "$WORK/smtpd.py" "$SMTP4" "$WORK/cert.pem" "$WORK/key.pem" &
PIDS+=($!)
sleep 2

# ---------------------------------------------------------------- helpers
TCPDUMP_PID=
cap_start() {  # cap_start NAME  -> records lo into $WORK/NAME.pcap
  # "ip netns exec" execs tcpdump, so $! is tcpdump itself
  ip netns exec "$NS" tcpdump -i lo -s 0 -U -n -w "$WORK/$1.pcap" 2>"$WORK/$1.tcpdump.log" &
  TCPDUMP_PID=$!
  sleep 1.5
}
cap_stop() {  # cap_stop NAME -> copies to $OUT/NAME.pcap
  sleep 1.5
  kill -TERM "$TCPDUMP_PID"; wait "$TCPDUMP_PID" || true   # tcpdump flushes and exits on TERM
  cp "$WORK/$1.pcap" "$OUT/$1.pcap"
  # lo has TX checksum offload fixed on: the recorded TCP/UDP checksums are partial; fix them
  python3 "$HERE/generate.py" --fixcsum "$OUT/$1.pcap"
  echo "recorded $1.pcap: $(tail -n 3 "$WORK/$1.tcpdump.log" | head -1)"
}
DIG=(nsx dig -b "$CLI4" "@$DNS4")
CURL=(nsx curl -sS -o /dev/null --interface "$CLI4" --cacert "$WORK/cert.pem")
R80="--resolve www.$ZONE:80:$WEB4"
R443="--resolve www.$ZONE:443:$WEB4"

# ================================================================ dns-udp.pcap
cap_start dns-udp
"${DIG[@]}" www.$ZONE A +noall +answer
"${DIG[@]}" www.$ZONE AAAA +noall +answer
"${DIG[@]}" cdn.$ZONE A +noall +answer
"${DIG[@]}" $ZONE MX +noall +answer
"${DIG[@]}" multi.$ZONE TXT +noall +answer
"${DIG[@]}" alias.$ZONE A +noall +answer
"${DIG[@]}" $ZONE NS +noall +answer
"${DIG[@]}" -x 192.0.2.10 +noall +answer
"${DIG[@]}" -x 2001:db8::53 +noall +answer
"${DIG[@]}" www.$ZONE HTTPS +noall +answer
"${DIG[@]}" svc.$ZONE SVCB +noall +answer
"${DIG[@]}" $ZONE CAA +noall +answer
# (no SRV query: make_oracle.sh with tshark 4.0 drops SRV answers - tshark names the SRV owner
#  dns.srv.service/proto/name instead of dns.resp.name - so the oracle would be wrong)
"${DIG[@]}" nosuch.$ZONE A +noall +comments | grep -E 'status' || true
"${DIG[@]}" +noedns v6only.$ZONE AAAA +noall +answer
cap_stop dns-udp

# ================================================================ dns-tcp.pcap
nsx ip link set dev lo mtu 1280     # the big TXT answer (~5.3 kB) spans several segments
cap_start dns-tcp
"${DIG[@]}" +tcp www.$ZONE A +noall +answer
"${DIG[@]}" +tcp +keepopen www.$ZONE A www.$ZONE AAAA $ZONE MX multi.$ZONE TXT +noall +answer
"${DIG[@]}" +tcp big.$ZONE TXT +noall +stats | grep -i 'MSG SIZE' || true
# over UDP first: truncated (TC=1) at 1232 bytes, dig then retries over TCP
"${DIG[@]}" big.$ZONE TXT +noall +comments | grep -iE 'truncated|status' || true
cap_stop dns-tcp
nsx ip link set dev lo mtu 65536

# ================================================================ tls-curl.pcap
cap_start tls-curl
"${CURL[@]}" $R443 https://www.$ZONE/                                   # TLS 1.3, ALPN h2,http/1.1
"${CURL[@]}" --resolve api.$ZONE:443:$WEB4 --http1.1 --tlsv1.2 --tls-max 1.2 https://api.$ZONE/v1/status   # TLS 1.2, ALPN http/1.1
"${CURL[@]}" -k https://$WEB4/by-ip                                      # IP literal: no SNI
nsx openssl s_client -connect $WEB4:443 -servername sclient.$ZONE -alpn h2,http/1.1 -CAfile "$WORK/cert.pem" </dev/null >/dev/null 2>&1
nsx openssl s_client -connect $WEB4:443 -noservername -tls1_2 </dev/null >/dev/null 2>&1
cap_stop tls-curl

# ================================================================ tls-starttls-smtp.pcap
printf 'Subject: test\r\n\r\nhello\r\n' > "$WORK/mail.txt"
cap_start tls-starttls-smtp
nsx openssl s_client -starttls smtp -connect $SMTP4:25 -servername mail.$ZONE -name client.$ZONE </dev/null >/dev/null 2>&1
nsx curl -sS --ssl-reqd --cacert "$WORK/cert.pem" --resolve mail.$ZONE:25:$SMTP4 smtp://mail.$ZONE \
  --mail-from alice@$ZONE --mail-rcpt bob@$ZONE -T "$WORK/mail.txt"
cap_stop tls-starttls-smtp

# ================================================================ http.pcap
cat > "$WORK/rawhttp.py" <<'EOF'
# Real socket client for shapes curl does not produce.
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
def conn():
    s = socket.create_connection((host, port), source_address=("127.0.0.10", 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
def drain(s, n):
    # read until n responses have been seen (nginx sends one short body each)
    data = b""
    s.settimeout(2)
    try:
        while data.count(b"HTTP/1.1 ") < n:
            d = s.recv(65536)
            if not d: break
            data += d
    except socket.timeout:
        pass
    return data
# 1) two pipelined requests in ONE send() -> one TCP segment
s = conn()
s.sendall(b"GET /pipelined/1 HTTP/1.1\r\nHost: www.crosswire.test\r\nUser-Agent: pipeline-test/1.0\r\n\r\n"
          b"GET /pipelined/2 HTTP/1.1\r\nHost: www.crosswire.test\r\nUser-Agent: pipeline-test/1.0\r\n\r\n")
drain(s, 2); s.close()
# 2) a request header split over two segments, then one pipelined GET+HEAD pair on the same connection
s = conn()
s.sendall(b"GET /split-header HTTP/1.1\r\nHost: www.crosswire.test\r\nUser-Ag")
time.sleep(0.2)
s.sendall(b"ent: split-test/1.0\r\nAccept: */*\r\n\r\n")
drain(s, 1)
s.sendall(b"HEAD /pipelined/3 HTTP/1.1\r\nHost: www.crosswire.test\r\n\r\n"
          b"POST /pipelined/4 HTTP/1.1\r\nHost: www.crosswire.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
drain(s, 2); s.close()
# 3) HTTP/1.0 without Host and without User-Agent
s = conn()
s.sendall(b"GET /http10 HTTP/1.0\r\n\r\n")
drain(s, 1); s.close()
EOF
cap_start http
"${CURL[@]}" $R80 http://www.$ZONE/
"${CURL[@]}" $R80 -d 'name=crosswire&x=1' http://www.$ZONE/form
"${CURL[@]}" $R80 -I http://www.$ZONE/head
"${CURL[@]}" $R80 http://www.$ZONE/ka/1 http://www.$ZONE/ka/2 "http://www.$ZONE/ka/3?q=a%20b&r=1"   # one keep-alive connection
"${CURL[@]}" $R80 -A 'Mozilla/5.0 (X11; Linux x86_64) crosswire-test/1.0' http://www.$ZONE/custom-ua
"${CURL[@]}" $R80 -H 'User-Agent:' http://www.$ZONE/no-ua
"${CURL[@]}" -X PUT --data-binary @"$WORK/mail.txt" http://$WEB4:80/put-by-ip
nsx python3 "$WORK/rawhttp.py" $WEB4 80
cap_stop http

# ================================================================ ipv6.pcap
cap_start ipv6
nsx dig -b ::1 @::1 www.$ZONE AAAA +noall +answer
nsx dig -b ::1 @::1 www.$ZONE HTTPS +noall +answer
nsx dig -b ::1 @::1 +tcp $ZONE MX +noall +answer
nsx curl -sS -o /dev/null -6 --resolve www.$ZONE:80:[::1] http://www.$ZONE/v6
nsx curl -sS -o /dev/null -6 --cacert "$WORK/cert.pem" --resolve www.$ZONE:443:[::1] https://www.$ZONE/v6-tls
nsx curl -sS -o /dev/null -6 --cacert "$WORK/cert.pem" --http1.1 --tlsv1.2 --tls-max 1.2 --resolve api.$ZONE:443:[::1] https://api.$ZONE/v6-tls12
cap_stop ipv6

# ================================================================ demo.pcap (realistic mix)
# curl resolves through glibc -> dnsmasq (A+AAAA), then talks HTTP and HTTPS to nginx.
cap_start demo
nsx curl -sS -o /dev/null -4 http://www.$ZONE/
nsx curl -sS -o /dev/null --cacert "$WORK/cert.pem" https://www.$ZONE/index.html
nsx curl -sS -o /dev/null -4 --cacert "$WORK/cert.pem" --http1.1 -A 'crosswire-demo/1.0' "https://api.$ZONE/v1/items?page=2"
"${DIG[@]}" $ZONE MX +noall +answer
"${DIG[@]}" nosuch.$ZONE A +noall +comments | grep status || true
nsx curl -sS -o /dev/null -4 -A 'crosswire-demo/1.0' -d 'k=v' http://api.$ZONE/v1/items
cap_stop demo

# ================================================================ any-sll2.pcap (tcpdump -i any)
cap_any_start() {
  ip netns exec "$NS" tcpdump -i any -s 0 -U -n -w "$WORK/$1.pcap" 2>"$WORK/$1.tcpdump.log" &
  TCPDUMP_PID=$!
  sleep 1.5
}
cap_any_start any-sll2
nsx curl -sS -o /dev/null -4 -A 'crosswire-sll2/1.0' http://api.$ZONE/sll2
nsx curl -sS -o /dev/null -4 --cacert "$WORK/cert.pem" https://www.$ZONE/sll2
cap_stop any-sll2

# ================================================================ tls-split-clienthello.pcap
# last, because an MTU below 1280 removes ::1 from lo
nsx ip link set dev lo mtu 400      # MSS 360: the ClientHellos need 2-3 segments
cap_start tls-split-clienthello
"${CURL[@]}" $R443 https://www.$ZONE/split
ALPN=$(for i in $(seq 1 40); do printf 'proto-%02d,' "$i"; done)h2,http/1.1
nsx openssl s_client -connect $WEB4:443 -servername split.$ZONE -alpn "$ALPN" </dev/null >/dev/null 2>&1
cap_stop tls-split-clienthello
nsx ip link set dev lo mtu 65536
nsx ip -6 addr add ::1/128 dev lo 2>/dev/null || true

# ================================================================ vlan.pcap (802.1Q tag 100 on demo.pcap)
tcprewrite --infile="$OUT/demo.pcap" --outfile="$OUT/vlan.pcap" \
  --enet-vlan=add --enet-vlan-tag=100 --enet-vlan-cfi=0 --enet-vlan-pri=0 \
  --enet-smac=02:00:00:00:00:0a --enet-dmac=02:00:00:00:00:50
# QinQ (802.1ad 200 + 802.1Q 100) variant: tcprewrite cannot stack tags; the generator does it.
python3 "$HERE/generate.py" --qinq "$OUT/demo.pcap" "$OUT/vlan-qinq.pcap"
# the same demo as pcapng (different base name: the oracle file is named after it)
editcap -F pcapng "$OUT/demo.pcap" "$OUT/demo-ng.pcapng"

echo "done; now run: shared/tools/make_oracle.sh $OUT"
