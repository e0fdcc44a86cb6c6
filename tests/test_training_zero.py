"""DeepSpeed ZeRO-2 and ZeRO-3 with two processes on CPU (gloo) give the single-process loss
curve (same global batch: 2 x 2 blocks against 1 x 4), and the engine really ran ZeRO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tiny_model, tmp_path_factory):
    pytest.importorskip("deepspeed")
    root = tmp_path_factory.mktemp("zero")
    text = root / "text.jsonl"
    text.write_text("".join(json.dumps({"text": f"高血压 糖尿病 第{i}篇 肝硬化 肺炎 阿司匹林 治疗 {i * 7}"}, ensure_ascii=False) + "\n"
                            for i in range(48)), encoding="utf-8")
    cfg = root / "pretrain.yaml"
    cfg.write_text(f"model: {tiny_model}\nsources: [{{path: {text}}}]\nblock_size: 32\n"
                   "train: {max_steps: 5, logging_steps: 1, learning_rate: 0.002, use_cpu: true}\n", encoding="utf-8")
    single = root / "single"
    subprocess.run([sys.executable, "-m", "chimed_eval.training.cli", "pretrain", "--config", str(cfg),
                    "--set", f"output_dir={single}", "--set", "train.batch_size=4"], check=True, cwd=ROOT, capture_output=True, text=True)
    return root, cfg, json.loads((single / "loss_curve.json").read_text())


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_two_process_zero_matches_single_process(setup, stage):
    root, cfg, single = setup
    out = root / stage
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nproc_per_node=2", f"--master_port={free_port()}", "-m", "chimed_eval.training.cli",
           "pretrain", "--config", str(cfg), "--set", f"output_dir={out}", "--set", "train.batch_size=2",
           "--set", f"train.deepspeed={stage}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"ran under DeepSpeed ZeRO stage {stage[-1]} on 2 process(es)" in proc.stdout + proc.stderr
    rep = json.loads((out / "metrics.json").read_text())
    assert rep["deepspeed_engine"] == {"zero_stage": int(stage[-1]), "world_size": 2}
    assert rep["deepspeed"]["zero_optimization"]["stage"] == int(stage[-1])
    zero = json.loads((out / "loss_curve.json").read_text())
    assert [p["step"] for p in zero] == [p["step"] for p in single] == [1, 2, 3, 4, 5]
    for a, b in zip(single, zero):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3), (single, zero)
    assert single[-1]["loss"] < single[0]["loss"]  # the curve moves: the comparison is not of constants
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
