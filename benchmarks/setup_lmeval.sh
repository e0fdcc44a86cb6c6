#!/usr/bin/env bash
# The peer harness for benchmarks/lmeval_parity.py, in its own venv (.venv-lmeval), on the same
# torch/transformers pins as chimed-eval's CPU set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-lmeval/bin/python ] || python3 -m venv .venv-lmeval
.venv-lmeval/bin/python -m pip install -q --upgrade pip
.venv-lmeval/bin/python -m pip install -q -c constraints/cpu.txt "lm-eval[hf]==0.4.13" gguf
