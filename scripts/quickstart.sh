#!/usr/bin/env bash
# Install, then evaluate SmolLM2-135M (real weights, fp32, CPU) on the paper's CMMLU medical set
# (1,166 items, 0-shot, the authors' prompt and letter scoring). Extra arguments go to `run`
# (e.g. --limit 100). Data: $CHIMED_EVAL_DATA, ../shared/data, or fetched into ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA=${CHIMED_EVAL_DATA:-}
if [ -z "$DATA" ]; then
  if [ -d ../shared/data/cmmlu ]; then DATA=../shared/data; else DATA=data; .venv/bin/chimed-eval data --data-dir data --datasets cmmlu; fi
fi
.venv/bin/chimed-eval run --model smollm2-135m --tasks cmmlu-medical-paper --variant paper --shots 0 \
  --data-dir "$DATA" --output runs/quickstart-smollm2-cmmlu "$@"
