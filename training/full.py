"""``full``: pretrain -> sft -> reward (+ an optional second, judging reward model) -> rejection,
from one YAML file, each stage's output feeding the next, then ``chimed-eval run`` on the result.

YAML sections: ``defaults`` (merged into every stage, e.g. ``train: {...}``), ``pretrain``,
``sft``, ``reward``, ``judge`` (optional: a reward stage on a disjoint split, used only to judge
the rejection stage), ``rejection``, ``evaluate`` (``tasks``, ``limit``, ``max_new_tokens``,
``output``, ``extra_args``). A stage's ``model`` (``policy``, ``reward_model``) is filled in from
the previous stage's ``output_dir`` when left out. ``skip_done: true`` skips a stage whose
``output_dir`` already holds its ``metrics.json`` (resume a long regime after a crash).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chimed_eval.errors import ConfigError

from .config import from_dict
from .pretrain import PretrainConfig, run_pretrain
from .rejection import RejectionStageConfig, run_rejection
from .reward import RewardStageConfig, run_reward
from .sft import SFTStageConfig, run_sft
from .stage import is_main_process, log

SECTIONS = ("defaults", "pretrain", "sft", "reward", "judge", "rejection", "evaluate", "skip_done")


@dataclass
class EvaluateConfig:
    tasks: str = "cmd-qa"
    limit: int | None = None
    max_new_tokens: int | None = None
    output: str | None = None
    backend: str = "hf"
    extra_args: list[str] = field(default_factory=list)


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def plan(data: dict) -> dict[str, Any]:
    """The stage configs of a ``full`` file, with the chaining filled in."""
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"full: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    for need in ("pretrain", "sft", "reward", "rejection"):
        if need not in data:
            raise ConfigError(f"full: no '{need}:' section")
    d = {k: merge(data.get("defaults", {}), data[k]) if k in ("pretrain", "sft", "reward", "judge", "rejection") else data[k]
         for k in data if k not in ("defaults", "skip_done")}
    d["sft"].setdefault("model", d["pretrain"]["output_dir"])
    d["reward"].setdefault("model", d["sft"]["output_dir"])
    if "judge" in d:
        d["judge"].setdefault("model", d["sft"]["output_dir"])
    d["rejection"].setdefault("policy", d["sft"]["output_dir"])
    d["rejection"].setdefault("reward_model", d["reward"]["output_dir"])
    if "judge" in d and "evaluate" in d["rejection"]:
        d["rejection"]["evaluate"].setdefault("judge", d["judge"]["output_dir"])
    out: dict[str, Any] = {
        "pretrain": from_dict(PretrainConfig, d["pretrain"], "full:pretrain"),
        "sft": from_dict(SFTStageConfig, d["sft"], "full:sft"),
        "reward": from_dict(RewardStageConfig, d["reward"], "full:reward"),
        "rejection": from_dict(RejectionStageConfig, d["rejection"], "full:rejection"),
    }
    if "judge" in d:
        out["judge"] = from_dict(RewardStageConfig, d["judge"], "full:judge")
    if "evaluate" in d:
        out["evaluate"] = from_dict(EvaluateConfig, d["evaluate"], "full:evaluate")
    return out


def run_evaluation(model: str, ev: EvaluateConfig) -> dict[str, Any]:
    """``chimed-eval run`` on the trained model (a separate process, as a user would run it)."""
    output = ev.output or str(Path(model) / "eval")
    exe = Path(sys.executable).with_name("chimed-eval")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from chimed_eval.cli import main; sys.exit(main())"]
    cmd += ["run", "--model", model, "--tasks", ev.tasks, "--backend", ev.backend, "--output", output, "--no-progress"]
    if ev.limit:
        cmd += ["--limit", str(ev.limit)]
    if ev.max_new_tokens:
        cmd += ["--max-new-tokens", str(ev.max_new_tokens)]
    cmd += ev.extra_args
    log("[full] " + " ".join(cmd))
    subprocess.run(cmd, check=True)
    return {"command": cmd, "results": json.loads((Path(output) / "results.json").read_text(encoding="utf-8"))}


def done_report(name: str, cfg: Any) -> dict[str, Any] | None:
    """The report of a stage that already finished (its metrics file exists), else None."""
    done = Path(cfg.output_dir) / ("rejection_metrics.json" if name == "rejection" else "metrics.json")
    if not done.is_file():
        return None
    log(f"[full] {name}: done already ({done}), skipped")
    return json.loads(done.read_text(encoding="utf-8"))


def run_full(data: dict) -> dict[str, Any]:
    stages = plan(data)
    skip_done = bool(data.get("skip_done", False))
    report: dict[str, Any] = {}
    runners = [("pretrain", run_pretrain), ("sft", run_sft), ("reward", run_reward), ("judge", run_reward),
               ("rejection", run_rejection)]
    for name, fn in runners:
        if name not in stages:
            continue
        cfg = stages[name]
        done = done_report(name, cfg) if skip_done else None
        if done is not None:
            report[name] = done
            continue
        log(f"[full] === {name} ===")
        report[name] = fn(cfg)
    if "evaluate" in stages and is_main_process():
        report["evaluate"] = run_evaluation(stages["rejection"].output_dir, stages["evaluate"])
    return report
