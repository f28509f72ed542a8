#!/usr/bin/env bash
# make-bench-capture.sh - build a large Ethernet bench capture from the real captures.
#
# Usage:  scripts/make-bench-capture.sh [OUT]        (default OUT: target/bench/bench.pcap)
#
# Environment:
#   BENCH_PACKETS  at least this many packets (default 1000000)
#   BENCH_SRC      directory of source captures (default ../shared/captures/real)
#   BENCH_GAP_US   packet spacing in the output, microseconds (default 5, i.e. 200 k packets/s)
#
# How: every Ethernet (link type 1) capture in BENCH_SRC (pcapng ones converted to classic
# pcap) is concatenated in name order into one base; its timestamps are made strictly
# increasing, BENCH_GAP_US apart (editcap -S), so that replaying the bench by file time and
# replaying it live at the same packet rate age flows the same way. The base is then copied as
# often as needed, each copy with its IPv4/IPv6 addresses rewritten by a different seed
# (tcprewrite --seed: every copy is a new set of flows; addresses inside tunnels stay as they
# were) and shifted in time to follow the previous copy (editcap -t), and the copies are
# concatenated in order (mergecap -a). Classic pcap, microsecond timestamps.
#
# Idempotent: a stamp file beside OUT records the parameters; an OUT with a stamp that matches
# (and at least BENCH_PACKETS packets) is kept. Needs tcprewrite (tcpreplay), editcap, mergecap
# and capinfos (wireshark-common).
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$HERE/target/bench/bench.pcap}
PACKETS=${BENCH_PACKETS:-1000000}
SRC=${BENCH_SRC:-$HERE/../shared/captures/real}
GAP_US=${BENCH_GAP_US:-5}

for c in tcprewrite editcap mergecap capinfos; do
    command -v "$c" >/dev/null || {
        echo "make-bench-capture: missing $c (apt-get install -y tcpreplay wireshark-common)" >&2
        exit 2
    }
done
[ -d "$SRC" ] || { echo "make-bench-capture: no source directory $SRC" >&2; exit 2; }
SRC=$(cd "$SRC" && pwd)

mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
STAMP=$OUT.stamp

# The Ethernet captures, in name order.
mapfile -t FILES < <(
    cd "$SRC" && for f in *.pcap *.pcapng; do
        [ -f "$f" ] || continue
        enc=$(capinfos -T -M -E "$f" 2>/dev/null | tail -1 | cut -f2) || true
        [ "$enc" = ether ] && echo "$SRC/$f"
    done | sort
)
[ "${#FILES[@]}" -gt 0 ] || { echo "make-bench-capture: no Ethernet captures in $SRC" >&2; exit 2; }

# What the output depends on: parameters and the sources' names and sizes.
want=$(
    echo "gap_us=$GAP_US"
    for f in "${FILES[@]}"; do echo "$(basename "$f") $(stat -c %s "$f")"; done | sha256sum | cut -c1-16
)
if [ -f "$OUT" ] && [ -f "$STAMP" ]; then
    have_packets=$(sed -n 's/^packets=//p' "$STAMP")
    have=$(grep -v '^packets=' "$STAMP")
    if [ "$have" = "$want" ] && [ "${have_packets:-0}" -ge "$PACKETS" ]; then
        echo "make-bench-capture: $OUT is up to date"
        capinfos -c -s "$OUT" | sed 1d
        exit 0
    fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cwbench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# 1. Base: all Ethernet captures back to back, classic pcap, µs, strictly GAP_US apart.
i=0
parts=()
for f in "${FILES[@]}"; do
    i=$((i + 1))
    p=$WORK/src-$(printf %03d $i).pcap
    editcap -F pcap -T ether "$f" "$p"
    parts+=("$p")
done
mergecap -a -F pcap -w "$WORK/cat.pcap" "${parts[@]}"
rm -f "${parts[@]}"
gap=$(printf '0.%06d' "$GAP_US")
editcap -F pcap -S "-$gap" "$WORK/cat.pcap" "$WORK/base.pcap"
rm -f "$WORK/cat.pcap"
base_packets=$(capinfos -T -M -c "$WORK/base.pcap" | tail -1 | cut -f2)
copies=$(((PACKETS + base_packets - 1) / base_packets))
# Each copy starts one gap after the previous copy's last packet.
span_us=$((base_packets * GAP_US))

# 2. Copies: addresses rewritten per seed, shifted to follow each other.
copy() {
    local n=$1 work=$2 span_us=$3
    local c=$work/copy-$(printf %06d "$n").pcap
    local shift
    shift=$(printf '%d.%06d' $((n * span_us / 1000000)) $((n * span_us % 1000000)))
    tcprewrite --seed="$((n * 7919 + 1))" --infile="$work/base.pcap" --outfile="$c.rw" >/dev/null 2>&1 ||
        cp "$work/base.pcap" "$c.rw"
    editcap -F pcap -t "$shift" "$c.rw" "$c"
    rm -f "$c.rw"
}
export -f copy
echo "make-bench-capture: $base_packets packets per copy, $copies copies from ${#FILES[@]} captures"
seq 0 $((copies - 1)) | xargs -P "$(nproc)" -I{} bash -c 'copy "$@"' _ {} "$WORK" "$span_us"

# 3. Concatenate in order (a few at a time, to stay below the open-file limit).
mapfile -t COPIES < <(ls "$WORK"/copy-*.pcap | sort)
groups=()
for ((g = 0; g < ${#COPIES[@]}; g += 200)); do
    grp=$WORK/group-$(printf %06d $g).pcap
    mergecap -a -F pcap -w "$grp" "${COPIES[@]:g:200}"
    rm -f "${COPIES[@]:g:200}"
    groups+=("$grp")
done
mergecap -a -F pcap -w "$WORK/out.pcap" "${groups[@]}"
rm -f "${groups[@]}"

packets=$(capinfos -T -M -c "$WORK/out.pcap" | tail -1 | cut -f2)
mv "$WORK/out.pcap" "$OUT"
{ echo "$want"; echo "packets=$packets"; } >"$STAMP"
capinfos -c -s -u "$OUT" | sed 1d
