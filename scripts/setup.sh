#!/bin/sh
# Installs what crosswire needs to build and test on Debian 12: libpcap's headers (the only
# system library it links) and pkg-config. Idempotent; uses sudo when not run as root.
set -e
missing=""
for p in libpcap-dev pkg-config; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "setup: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
