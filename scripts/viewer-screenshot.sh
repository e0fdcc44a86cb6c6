#!/usr/bin/env bash
# Re-take docs/assets/viewer.png: `chimed-eval view` of two fake runs (random vs oracle on the
# first 12 items of C-Eval medical and CMD QA, Chinese prompts and answers), shot by headless Chromium, palette-reduced (< 300 KB).
# Needs chromium and a CJK font (.ci/install-system.sh) and the data (CHIMED_EVAL_DATA).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in random oracle; do
  "$PY" -m chimed_eval run --no-progress --backend fake --model "$m" --tasks ceval-medical-paper,cmd-qa --limit 12 \
    --output "$tmp/$m" >/dev/null
done
"$PY" -m chimed_eval view "$tmp/random" "$tmp/oracle" --output "$tmp/view.html" >/dev/null
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome)
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/profile" \
  --virtual-time-budget=6000 --window-size=1200,1300 --screenshot="$tmp/shot.png" "file://$tmp/view.html#show=headline,paired,browser" 2>/dev/null
"$PY" - "$tmp/shot.png" docs/assets/viewer.png <<'PYEOF'
import sys
from PIL import Image
Image.open(sys.argv[1]).convert("RGB").quantize(colors=64).save(sys.argv[2], optimize=True)
PYEOF
ls -l docs/assets/viewer.png
