#!/usr/bin/env bash
# docs/report-screenshot.png: the HTML report of ResNet-18 at 64 KiB as headless Chromium (Debian's
# `chromium`) draws it in a 1280-pixel window, the top 2,300 pixels (summary, figures, layer table).
# Usage: scripts/report-screenshot.sh [NETWORK BUFFER]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-venv.sh
command -v chromium >/dev/null || { echo "error: needs chromium (apt-get install chromium)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/convsched report "${1:-resnet18}" --buffer "${2:-64KiB}" -o "$work/report.html"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$work/profile" --hide-scrollbars \
  --window-size=1280,2300 --screenshot="$work/shot.png" "file://$work/report.html" 2>/dev/null
# 256 colours: a fifth of the size, no visible change for a page of text and flat figures
.venv/bin/python -c "
import sys
from PIL import Image
Image.open(sys.argv[1]).convert('RGB').quantize(256).save(sys.argv[2], optimize=True)" \
  "$work/shot.png" docs/report-screenshot.png
echo "wrote docs/report-screenshot.png"
