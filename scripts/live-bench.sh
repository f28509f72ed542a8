#!/usr/bin/env bash
# live-bench.sh - how fast can crosswire capture live without loss?
#
# Usage:  sudo scripts/live-bench.sh [RATE...]       (default rates: 100000 200000 300000 400000 600000)
#
# For each rate (packets/s) a fresh network namespace with a veth pair is made, `crosswire
# capture` listens on one end and tcpreplay sends the bench capture (target/bench/bench.pcap,
# built by scripts/make-bench-capture.sh when missing; looped as needed) on the other for
# BENCH_SECONDS (default 10) seconds. Loss counts libpcap drops, queue drops and frames that
# never reached crosswire. Prints one table row per rate, then the highest rate with < 0.1 %
# loss and the latency percentiles at 100 k packets/s.
#
# Environment: BENCH_SECONDS (10), CROSSWIRE (target/release/crosswire), WORKERS (2).
# Needs root, ip (iproute2), tcpreplay. Nothing leaves the namespace.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
CW=${CROSSWIRE:-$HERE/target/release/crosswire}
SECONDS_PER_RATE=${BENCH_SECONDS:-10}
WORKERS=${WORKERS:-2}
BENCH=$HERE/target/bench/bench.pcap
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(100000 200000 300000 400000 600000)

[ "$(id -u)" = 0 ] || { echo "live-bench: run as root" >&2; exit 2; }
for c in ip tcpreplay; do
    command -v "$c" >/dev/null || { echo "live-bench: missing $c" >&2; exit 2; }
done
[ -x "$CW" ] || (cd "$HERE" && cargo build --release)
[ -f "$BENCH" ] || "$HERE/scripts/make-bench-capture.sh" "$BENCH"

NS=cwbench$$
TX=cwbt$$
RX=cwbr$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cwlive.XXXXXX")
CWPID=""
cleanup() {
    [ -n "$CWPID" ] && kill -KILL "$CWPID" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# One non-IP frame (ethertype 0x88b5) that wakes the capture loop without producing events.
python3 - "$WORK/probe.pcap" <<'PY'
import struct, sys
f = bytes.fromhex("020000000002020000000001" "88b5") + b"crosswire probe"
f = f.ljust(60, b"\0")
with open(sys.argv[1], "wb") as o:
    o.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    o.write(struct.pack("<IIII", 1700000000, 0, len(f), len(f)) + f)
PY

nsx() { ip netns exec "$NS" "$@"; }
probe() {
    if nsx tcpreplay -q -i "$TX" "$WORK/probe.pcap" >/dev/null 2>&1; then probes=$((probes + 1)); fi
}
json() { python3 -c "import json,sys; s=json.loads(sys.argv[1])['stats']; print($2)" "$1"; }

setup_ns() {
    ip netns del "$NS" 2>/dev/null || true
    ip netns add "$NS"
    nsx sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6'
    ip -n "$NS" link add "$TX" type veth peer name "$RX"
    for d in "$TX" "$RX"; do
        ip -n "$NS" link set "$d" mtu 65000 up
        nsx ethtool -K "$d" gro off >/dev/null 2>&1 || true
    done
}

bench_packets=$(capinfos -T -M -c "$BENCH" 2>/dev/null | tail -1 | cut -f2 || echo 0)
echo "live-bench: $BENCH ($bench_packets packets), ${SECONDS_PER_RATE} s per rate, $WORKERS workers, $(nproc) cores"
printf '%9s %10s %10s %9s %9s %9s %9s %8s %9s %9s %9s\n' \
    rate achieved sent captured kdrops qdrops lost loss% p50_us p99_us p999_us | tee "$WORK/table"

best=0
lat100=""
for rate in "${RATES[@]}"; do
    setup_ns
    eve=$WORK/eve-$rate.json
    probes=0
    ip netns exec "$NS" "$CW" capture --interface "$RX" --eve "$eve" --stats-interval 1 \
        --workers "$WORKERS" >/dev/null 2>"$WORK/err-$rate" &
    CWPID=$!
    for _ in $(seq 1 60); do
        probe
        sleep 0.3
        grep -q '"event_type":"stats".*"packets":[1-9]' "$eve" 2>/dev/null && break
    done
    limit=$((rate * SECONDS_PER_RATE))
    loops=$(((limit + bench_packets - 1) / bench_packets + 1))
    out=$(nsx tcpreplay -i "$TX" --preload-pcap --pps "$rate" --limit "$limit" --loop "$loops" "$BENCH" 2>&1)
    sent=$(sed -n 's/^[[:space:]]*Successful packets:[[:space:]]*//p' <<<"$out")
    achieved=$(sed -n 's/.*Mbps, \([0-9.]*\) pps.*/\1/p' <<<"$out" | head -1)
    before=$probes
    sleep 2
    kill -TERM "$CWPID"
    # crosswire only notices the stop request when a frame arrives (see the report): probe.
    # (A probe racing with the exit can be counted but not captured: loss may read 1 high.)
    for _ in $(seq 1 100); do
        sleep 0.2
        kill -0 "$CWPID" 2>/dev/null || break
        probe
    done
    wait "$CWPID" || echo "live-bench: crosswire exited $? at $rate pps" >&2
    CWPID=""
    final=$(grep '"event_type":"stats"' "$eve" | tail -1)
    read -r captured kdrops qdrops p50 p99 p999 < <(json "$final" \
        "s['capture']['packets'], s['capture']['kernel_drops'], s['capture']['queue_drop_packets'], s['latency_us']['p50'], s['latency_us']['p99'], s['latency_us']['p999']")
    # Sent frames and the probes before the stop, minus what reached the workers.
    lost=$((sent + before - (captured - (probes - before)) + qdrops))
    [ "$lost" -lt 0 ] && lost=0
    loss=$(python3 -c "print(f'{100*$lost/max($sent,1):.3f}')")
    printf '%9s %10s %10s %9s %9s %9s %9s %8s %9s %9s %9s\n' \
        "$rate" "${achieved%.*}" "$sent" "$captured" "$kdrops" "$qdrops" "$lost" "$loss" "$p50" "$p99" "$p999" | tee -a "$WORK/table"
    if python3 -c "import sys; sys.exit(0 if $loss < 0.1 else 1)"; then
        [ "$rate" -gt "$best" ] && best=$rate
    fi
    [ "$rate" = 100000 ] && lat100="p50 ${p50} us, p99 ${p99} us, p99.9 ${p999} us"
    ip netns del "$NS"
done
echo
echo "highest rate with < 0.1% loss: ${best} packets/s (requested rate; see 'achieved')"
[ -n "$lat100" ] && echo "latency at 100k packets/s: $lat100"
