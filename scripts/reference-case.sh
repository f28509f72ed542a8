#!/usr/bin/env bash
# Replays the bundled reference attack (captures/reference-case/: 30 devices' packets over
# 18-20 March 2024, Microsoft 365 audit, Entra sign-in and audit logs, Defender email rows)
# through crosswire into a fresh state directory and prints the incidents it raises.
# EVE JSON: target/reference-case.eve.json; state: target/reference-case-state.
set -euo pipefail
cd "$(dirname "$0")/.."
R=captures/reference-case
rm -rf target/reference-case-state target/reference-case.eve.json
CROSSWIRE_LOG=${CROSSWIRE_LOG:-warn} cargo run --release --quiet -- replay "$R/reference.pcap" \
    --config "$R/crosswire.toml" \
    --saas "$R/m365-audit.ndjson" "$R/entra-signin.ndjson" "$R/entra-audit.ndjson" \
    --email "$R/email.ndjson" \
    --state target/reference-case-state --eve target/reference-case.eve.json 2>&1
echo
echo "EVE JSON: target/reference-case.eve.json ($(grep -c '"model_breach"' target/reference-case.eve.json) model breaches)"
id=$(./target/release/crosswire incidents --json --state target/reference-case-state | head -1 | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
if [[ -n "$id" ]]; then
    ./target/release/crosswire report "$id" --state target/reference-case-state --html target/reference-case.html
    echo "HTML report: target/reference-case.html (crosswire report $id --state target/reference-case-state --html FILE)"
fi
