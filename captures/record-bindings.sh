#!/usr/bin/env bash
# Recreates captures/dhcp.pcap and captures/kerberos.pcap: real DHCP and Kerberos
# exchanges between two network namespaces joined by a veth pair, captured with tcpdump
# on the server side.
#
# DHCP: dnsmasq serves 10.99.0.50-99; busybox udhcpc (MAC 02:00:5e:00:00:23, hostname
# wks-023, FQDN wks-023.corp.example, vendor class "MSFT 5.0") takes a lease and
# releases it; then isc dhclient (MAC 02:00:5e:00:00:24, host-name wks-024, encoded FQDN)
# takes a lease and releases it.
#
# Kerberos: MIT krb5kdc for realm EXAMPLE.COM (principal alice requires preauth,
# service host/files.example.com). Over UDP: kinit alice (AS-REQ -> KRB-ERROR 25 ->
# AS-REQ with PA-ENC-TIMESTAMP -> AS-REP), kvno host/files.example.com (TGS-REQ/REP),
# kinit bob (KRB-ERROR 6, unknown client). Then kinit alice again over TCP
# (udp_preference_limit = 1).
#
# Needs root, iproute2, tcpdump, dnsmasq, busybox, isc-dhcp-client, krb5-kdc,
# krb5-admin-server (kadmin.local), krb5-user. Usage: record-bindings.sh [OUT_DIR]
set -euo pipefail

OUT=${1:-"$(cd "$(dirname "$0")" && pwd)"}
SRV=bw-srv
CLI=bw-cli
T=$(mktemp -d /tmp/bindwire.XXXXXX)
chmod 755 "$T"
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$OUT"
ip netns add "$SRV"
ip netns add "$CLI"
ip link add bw-s type veth peer name bw-c
ip link set bw-s netns "$SRV"
ip link set bw-c netns "$CLI"
ip -n "$SRV" link set lo up
ip -n "$CLI" link set lo up
ip -n "$SRV" addr add 10.99.0.1/24 dev bw-s
ip -n "$SRV" link set bw-s up
ip -n "$CLI" link set bw-c address 02:00:5e:00:00:23
ip -n "$CLI" link set bw-c up

# Starts tcpdump on the server side and waits until it is listening.
capture() { # file filter
    ip netns exec "$SRV" tcpdump -i bw-s -U -n -s 0 -w "$1" "$2" 2>"$T/tcpdump.log" &
    PIDS+=($!)
    for _ in $(seq 50); do
        grep -q "listening on" "$T/tcpdump.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "tcpdump did not start" >&2
    return 1
}
stop_last() { kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; }

# ---------------------------------------------------------------- DHCP
capture "$T/dhcp.pcap" "udp port 67 or udp port 68"
ip netns exec "$SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv \
    --no-hosts --port=0 --interface=bw-s --bind-interfaces --user=root \
    --dhcp-range=10.99.0.50,10.99.0.99,255.255.255.0,1h --dhcp-authoritative \
    --dhcp-leasefile="$T/dnsmasq.leases" --pid-file="$T/dnsmasq.pid" \
    --log-facility="$T/dnsmasq.log" &
PIDS+=($!)
sleep 1

# Client scripts that only (de)configure the address, so unicast renew/release work.
cat >"$T/udhcpc.sh" <<'SCRIPT'
#!/bin/sh
case "$1" in
    bound|renew) ip addr replace "$ip/24" dev "$interface" ;;
    deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
SCRIPT
cat >"$T/dhclient.sh" <<'SCRIPT'
#!/bin/sh
case "$reason" in
    BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/24" dev "$interface" ;;
    RELEASE|EXPIRE|STOP) ip addr flush dev "$interface" ;;
esac
exit 0
SCRIPT
chmod +x "$T/udhcpc.sh" "$T/dhclient.sh"

wait_addr() {
    for _ in $(seq 100); do
        ip -n "$CLI" -4 addr show dev bw-c | grep -q "inet 10.99.0." && return 0
        sleep 0.1
    done
    echo "no lease" >&2
    return 1
}

# udhcpc: DISCOVER/OFFER/REQUEST/ACK, a unicast renew (REQUEST with ciaddr, ACK), then
# RELEASE on exit (-R).
ip netns exec "$CLI" busybox udhcpc -i bw-c -f -R -t 5 -T 1 -s "$T/udhcpc.sh" \
    -x hostname:wks-023 -V "MSFT 5.0" -F wks-023.corp.example &
UPID=$!
wait_addr
sleep 0.5
kill -USR1 "$UPID"
sleep 1
kill -TERM "$UPID"
wait "$UPID" || true
ip -n "$CLI" addr flush dev bw-c

ip -n "$CLI" link set bw-c down
ip -n "$CLI" link set bw-c address 02:00:5e:00:00:24
ip -n "$CLI" link set bw-c up
cat >"$T/dhclient.conf" <<'EOF'
send host-name "wks-024";
send fqdn.fqdn "wks-024.corp.example.";
send fqdn.encoded on;
send fqdn.server-update off;
send vendor-class-identifier "corp-laptop";
request subnet-mask, routers, domain-name-servers, domain-name, host-name;
EOF
DHC=(-cf "$T/dhclient.conf" -lf "$T/dhclient.leases" -pf "$T/dhclient.pid" -sf "$T/dhclient.sh")
ip netns exec "$CLI" dhclient -1 -v "${DHC[@]}" bw-c
sleep 0.5
ip netns exec "$CLI" dhclient -r -v "${DHC[@]}" bw-c
sleep 1
stop_last   # dnsmasq
stop_last   # tcpdump

# ---------------------------------------------------------------- Kerberos
ip -n "$CLI" addr flush dev bw-c
ip -n "$CLI" addr add 10.99.0.23/24 dev bw-c
cat >"$T/krb5.conf" <<EOF
[libdefaults]
    default_realm = EXAMPLE.COM
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    udp_preference_limit = 4096
[realms]
    EXAMPLE.COM = {
        kdc = 10.99.0.1
        admin_server = 10.99.0.1
    }
EOF
sed 's/udp_preference_limit = 4096/udp_preference_limit = 1/' "$T/krb5.conf" >"$T/krb5-tcp.conf"
cat >"$T/kdc.conf" <<EOF
[kdcdefaults]
    kdc_ports = 88
    kdc_tcp_listen = 88
[realms]
    EXAMPLE.COM = {
        database_name = $T/principal
        key_stash_file = $T/stash
        acl_file = $T/kadm5.acl
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }
[logging]
    kdc = FILE:$T/kdc.log
EOF
touch "$T/kadm5.acl"
export KRB5_CONFIG="$T/krb5.conf" KRB5_KDC_PROFILE="$T/kdc.conf" KRB5CCNAME="FILE:$T/ccache"
kdb5_util create -s -r EXAMPLE.COM -P master-pw >/dev/null
kadmin.local -r EXAMPLE.COM -q "addprinc +requires_preauth -pw alice-pw alice" >/dev/null
kadmin.local -r EXAMPLE.COM -q "addprinc -randkey host/files.example.com" >/dev/null

capture "$T/kerberos.pcap" "port 88"
ip netns exec "$SRV" krb5kdc -n -r EXAMPLE.COM &
PIDS+=($!)
sleep 1

echo alice-pw | ip netns exec "$CLI" kinit alice >/dev/null
ip netns exec "$CLI" kvno host/files.example.com
echo x | ip netns exec "$CLI" kinit bob >/dev/null 2>&1 || true
kdestroy
echo alice-pw | KRB5_CONFIG="$T/krb5-tcp.conf" ip netns exec "$CLI" kinit alice >/dev/null
sleep 1
stop_last   # krb5kdc
stop_last   # tcpdump

cp "$T/dhcp.pcap" "$OUT/dhcp.pcap"
cp "$T/kerberos.pcap" "$OUT/kerberos.pcap"

# The oracle for tests/captures.rs: tshark's reading of the same frames.
tshark -r "$OUT/dhcp.pcap" -T fields -E occurrence=f -e frame.number \
    -e dhcp.option.dhcp -e dhcp.hw.mac_addr -e dhcp.option.hostname \
    -e dhcp.option.requested_ip_address -e dhcp.ip.your -e dhcp.ip.client \
    -e dhcp.option.dhcp_server_id -e dhcp.option.ip_address_lease_time \
    -e dhcp.option.vendor_class_id -e dhcp.fqdn.name >"$OUT/dhcp.tshark.tsv" 2>/dev/null
tshark -r "$OUT/kerberos.pcap" -T fields -e frame.number -e kerberos.msg_type \
    -e kerberos.error_code -e kerberos.CNameString -e kerberos.crealm -e kerberos.realm \
    -e kerberos.SNameString -e kerberos.padata_type -e kerberos.ENCTYPE \
    >"$OUT/kerberos.tshark.tsv" 2>/dev/null
ls -l "$OUT"
