#!/usr/bin/env bash
# Screenshots an incident report (from `crosswire report ID --html page.html`) with headless
# Chromium, to look at it. Usage: scripts/render-check.sh page.html  -> page.png
# Fails when the report cannot be written, Chromium exits non-zero, or the PNG is missing/empty.
set -euo pipefail
page="${1:?usage: render-check.sh page.html}"
[[ -s "$page" ]] || { echo "render-check: $page missing or empty" >&2; exit 1; }
png="${page%.html}.png"
rm -f "$png"
browser="$(command -v chromium || command -v chromium-browser || true)"
[[ -n "$browser" ]] || { echo "render-check: chromium not installed (apt-get install -y chromium)" >&2; exit 1; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
# --window-size height can be raised with REPORT_HEIGHT for long incidents.
if ! timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --screenshot="$png" --window-size="1280,${REPORT_HEIGHT:-2000}" \
    "file://$(realpath "$page")" 2>"$profile/chromium.log"; then
    echo "render-check: chromium failed" >&2
    cat "$profile/chromium.log" >&2
    exit 1
fi
[[ -s "$png" ]] || { echo "render-check: screenshot $png missing or empty" >&2; exit 1; }
echo "render-check: $png ($(stat -c %s "$png") bytes)"
