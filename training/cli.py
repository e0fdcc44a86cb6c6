"""``chimed-train pretrain|sft|reward|judge|rejection|full --config FILE.yaml [--set key.path=value ...]``.

A stage's file is either that stage's settings or a file with a ``<stage>:`` section; a ``full``
file serves every stage (``chimed-train sft --config regime.yaml`` runs its ``sft:`` section with
the file's ``defaults`` and the previous stage's output as the model; ``judge`` runs its
``judge:`` section, the second reward model, so that it can train beside ``reward``). With a
``full`` file, ``skip_done: true`` skips a stage that already finished, as in ``full``. Multi-process: ``torchrun --nproc_per_node=N -m training.cli sft ...`` or
``deepspeed --num_gpus N -m training.cli ...`` with ``train.deepspeed: zero2|zero3``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from chimed_eval.errors import ChimedEvalError, ConfigError

STAGES = ("pretrain", "sft", "reward", "judge", "rejection", "full")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chimed-train", description="Train a medical LLM in the ChiMed-GPT regime.")
    sub = p.add_subparsers(dest="stage", required=True)
    helps = {"pretrain": "continued pre-training on packed raw text", "sft": "supervised fine-tuning (answer-only loss)",
             "reward": "reward model (Bradley-Terry pairs)",
             "judge": "the second reward model of a full file (judge: section)", "rejection": "rejection sampling, then SFT on the best",
             "full": "all four in sequence, then chimed-eval run"}
    for s in STAGES:
        sp = sub.add_parser(s, help=helps[s])
        sp.add_argument("--config", required=True, help="YAML file")
        sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a setting (repeatable), e.g. --set train.max_steps=10")
        sp.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)  # deepspeed launcher
    return p


def run_stage(stage: str, data: dict) -> dict:
    from .config import from_dict

    if stage == "full":
        from .full import run_full

        return run_full(data)
    from .full import plan
    from .pretrain import PretrainConfig, run_pretrain
    from .rejection import RejectionStageConfig, run_rejection
    from .reward import RewardStageConfig, run_reward
    from .sft import SFTStageConfig, run_sft

    kinds = {"pretrain": (PretrainConfig, run_pretrain), "sft": (SFTStageConfig, run_sft),
             "reward": (RewardStageConfig, run_reward), "rejection": (RejectionStageConfig, run_rejection)}
    if all(k in data for k in kinds):  # a `full` file: its defaults and chaining apply to the stage too
        from .full import done_report

        stages = plan(data)
        if stage not in stages:
            raise ConfigError(f"{stage}: the file has no '{stage}:' section")
        done = done_report(stage, stages[stage]) if data.get("skip_done") else None
        runners = {"judge": run_reward, **{k: fn for k, (_, fn) in kinds.items()}}
        return done if done is not None else runners[stage](stages[stage])
    if stage == "judge":
        raise ConfigError("judge: needs a full file (with pretrain, sft, reward, judge and rejection sections); "
                          "a judge alone is a reward stage: chimed-train reward --config JUDGE.yaml")
    cls, fn = kinds[stage]
    section = data[stage] if stage in data and isinstance(data[stage], dict) else data
    return fn(from_dict(cls, section, stage))


def main(argv: Sequence[str] | None = None) -> int:
    from chimed_eval.registry import UnknownNameError

    from .config import apply_overrides, load_yaml

    a = build_parser().parse_args(argv)
    try:
        data = apply_overrides(load_yaml(a.config), a.overrides)
        run_stage(a.stage, data)
    except (ChimedEvalError, UnknownNameError) as exc:
        print(f"chimed-train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
