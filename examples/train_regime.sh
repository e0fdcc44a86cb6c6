#!/usr/bin/env bash
# The training regime's proof on SmolLM2-135M, CPU: continued pre-training, SFT, two reward models,
# rejection sampling, then chimed-eval on the result. About an hour on 2 cores. Every figure is in
# runs/train-proof/<stage>/metrics.json (rejection: rejection_metrics.json); the summary is printed
# at the end and saved as runs/train-proof/figures.md. Rerun to resume (finished stages are kept).
set -euo pipefail
cd "$(dirname "$0")/.."
# One math thread: on 2 cores shared with other jobs, two threads made a SmolLM2-135M training step
# 7x slower (measured 60 s against 8.5 s per forward+backward of 2 x 128 tokens). On a machine of
# your own, set OMP_NUM_THREADS to its core count.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p runs/train-proof
.venv/bin/chimed-train full --config examples/train_regime.yaml "$@" 2>&1 | tee -a runs/train-proof/log.txt
.venv/bin/python examples/train_figures.py runs/train-proof | tee runs/train-proof/figures.md
