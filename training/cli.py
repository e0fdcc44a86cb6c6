"""``chimed-train <stage>|full --config FILE.yaml [--set key.path=value ...]``; the stages are the
registered ones (:mod:`chimed_eval.training.registry`: pretrain, sft, reward, judge, rejection).

A stage's file is either that stage's settings or a file with a ``<stage>:`` section; a ``full``
file serves every stage (``chimed-train sft --config regime.yaml`` runs its ``sft:`` section with
the file's ``defaults`` and the previous stage's output as the model; ``judge`` runs its
``judge:`` section, the second reward model, so that it can train beside ``reward``). With a
``full`` file, ``skip_done: true`` skips a stage that already finished, as in ``full``.
Multi-process: ``torchrun --nproc_per_node=N -m chimed_eval.training.cli sft ...`` or
``deepspeed --num_gpus N -m chimed_eval.training.cli ...`` with ``train.deepspeed: zero2|zero3``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from chimed_eval.core.errors import ChimedEvalError, ConfigError

FULL = "full"
FULL_HELP = "every stage of a full file in sequence, then chimed-eval run"


def build_parser() -> argparse.ArgumentParser:
    from .registry import stages

    p = argparse.ArgumentParser(prog="chimed-train", description="Train a medical LLM in the ChiMed-GPT regime.")
    sub = p.add_subparsers(dest="stage", required=True)
    for name, help_ in [*((s.name, s.help) for s in stages()), (FULL, FULL_HELP)]:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--config", required=True, help="YAML file")
        sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a setting (repeatable), e.g. --set train.max_steps=10")
        sp.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)  # deepspeed launcher
        sp.add_argument("--no-progress", action="store_true", help="no progress bars (sampling, GGUF conversion)")
    return p


def run_stage(stage: str, data: dict) -> dict:
    """Run ``stage`` (a registered stage or ``full``) from a YAML mapping: the stage's own settings,
    a file with a ``<stage>:`` section, or a full file (its defaults and chaining apply)."""
    from .config import from_dict
    from .full import is_full_file, plan, run_full, run_planned
    from .registry import get_stage

    if stage == FULL:
        return run_full(data)
    spec = get_stage(stage)
    if is_full_file(data):
        planned = plan(data)
        if stage not in planned:
            raise ConfigError(f"{stage}: the file has no '{stage}:' section")
        return run_planned(spec, planned[stage], bool(data.get("skip_done")))
    if spec.alone:
        raise ConfigError(f"{stage}: {spec.alone}")
    section = data[stage] if stage in data and isinstance(data[stage], dict) else data
    return spec.run(from_dict(spec.config, section, stage))


def main(argv: Sequence[str] | None = None) -> int:
    from chimed_eval.core.registry import UnknownNameError

    from .config import apply_overrides, load_yaml

    from chimed_eval.core.progress import progress_default

    a = build_parser().parse_args(argv)
    try:
        data = apply_overrides(load_yaml(a.config), a.overrides)
        with progress_default(False if a.no_progress else None):
            run_stage(a.stage, data)
    except (ChimedEvalError, UnknownNameError) as exc:
        print(f"chimed-train: error: {exc}", file=sys.stderr)
        return 2
    finally:
        _close_process_group()
    return 0


def _close_process_group() -> None:
    """Under torchrun/DeepSpeed, leave the process group before the interpreter exits: a rank that
    exits with the group (and its communication threads) still open can abort at teardown
    ("terminate called without an active exception", exit -6) after the work is done."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
