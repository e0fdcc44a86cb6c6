"""``chimed-eval run``: evaluate a model on tasks into an output directory (resumable, shardable).

Nothing here imports torch at import time: the backend loads only inside :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chimed_eval.cli.config_file import run_config_file
from chimed_eval.cli.run_flags import add_run_arguments, run_config
from chimed_eval.cli.rebuild import task_getter
from chimed_eval.cli.summary import print_summary, print_usage
from chimed_eval.core.errors import ConfigError
from chimed_eval.core.kv import parse_kv
from chimed_eval.runs.reader import results_json, samples_dir

NAME = "run"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``run`` subcommand and its flags (:mod:`chimed_eval.cli.run_flags`)."""
    add_run_arguments(sub.add_parser(NAME, help="evaluate a model on tasks"))


def run(a: argparse.Namespace) -> int:
    """Evaluate the model on the tasks into --output (resumable); the figures table after. With
    --config, each model of the file in turn (:mod:`chimed_eval.cli.config_file`)."""
    if a.config is not None:
        return run_config_file(a, run_one)
    return run_one(a)


def peer_model(a: argparse.Namespace, model_args: dict[str, str]) -> None:
    """lm-evaluation-harness's ``--model hf --model_args pretrained=X`` read as ``--backend hf
    --model X`` (said on stderr); ``--model hf`` alone is refused with that hint."""
    from chimed_eval.backends import BACKENDS
    from chimed_eval.engine.api import backend_as_model_hint

    if a.model not in BACKENDS or Path(a.model).exists():
        return
    if "pretrained" not in model_args:
        raise ConfigError(backend_as_model_hint(a.model))
    if a.backend not in (None, a.model):
        raise ConfigError(f"--model {a.model} (a backend) and --backend {a.backend} disagree")
    a.backend, a.model = a.model, model_args.pop("pretrained")
    print(f"chimed-eval: note: read as --backend {a.backend} --model {a.model}", file=sys.stderr)


def run_one(a: argparse.Namespace) -> int:
    """One model: parse, build one :class:`RunConfig`, run it as :func:`chimed_eval.evaluate` does."""
    from chimed_eval.backends import check_backend_args
    from chimed_eval.cli.judge import check_run_flags
    from chimed_eval.engine.api import plan_run, run_plan
    from chimed_eval.tasks.factory import build_tasks

    for flag, value in (("--model", a.model), ("--tasks", a.tasks), ("--output", a.output)):
        if value is None:
            raise ConfigError(f"{flag} is required (on the command line or in a --config file)")
    names = [t.strip() for t in a.tasks.split(",") if t.strip()]
    if not names:
        raise ConfigError("--tasks is empty")
    model_args = parse_kv(a.model_args, "--model-args")
    peer_model(a, model_args)
    a.backend = a.backend or "hf"
    config = run_config(a)
    config.check()
    check_backend_args(a.backend, model_args)  # before anything is written or echoed
    if a.data_parallel > 1:
        return _run_data_parallel(a, model_args)
    if a.data_parallel < 1:
        raise ConfigError("--data-parallel must be >= 1")
    plan = plan_run(a.model, names, backend=a.backend, model_args=model_args, data_dir=a.data_dir or None,
                    output=a.output, config=config, resolve_tasks=build_tasks,
                    check_tasks=lambda tasks: check_run_flags(a, tasks))  # --judge: refused before the run
    a.output = plan.output  # a --shard run's own directory
    try:
        result = run_plan(plan)
    except KeyboardInterrupt:
        print(f"\nchimed-eval: interrupted; the items finished so far are saved in {samples_dir(a.output)}/. "
              "Run the same command again to resume.", file=sys.stderr)
        return 130
    print_summary(result, a.all_metrics)
    print_usage(result.usage)
    print(f"\nresults: {results_json(a.output)}\nsamples: {samples_dir(a.output)}/")
    if a.judge:
        from chimed_eval.cli.judge import judge_after_run

        return judge_after_run(a, result)
    return 0


def _run_data_parallel(a: argparse.Namespace, model_args: dict[str, str]) -> int:
    """``--data-parallel N``: the run as N shard units on Ray (one worker, and one engine, per
    shard; :mod:`chimed_eval.engine.distribute`), merged into --output."""
    from chimed_eval.backends import backend_capabilities
    from chimed_eval.engine.distribute import RunSpec, run_shards
    from chimed_eval.engine.merge import check_merge_target, merge_shards
    from chimed_eval.runs.outdir import OutLock
    from chimed_eval.tasks.factory import build_tasks

    if a.shard:
        raise ConfigError("--data-parallel and --shard do not combine: --data-parallel makes the shards itself")
    names = [t.strip() for t in a.tasks.split(",") if t.strip()]
    per = int(model_args.get("tensor_parallel_size", 1)) * int(model_args.get("pipeline_parallel_size", 1))
    gpus = per if backend_capabilities(a.backend).local_weights else 0  # GPUs per shard (where the cluster has any)
    spec = RunSpec(backend=a.backend, model_args=model_args, data_dir=a.data_dir or None, config=run_config(a),
                   resolve_tasks=build_tasks)
    with OutLock(a.output):
        check_merge_target(a.output, ("shards",))  # before any shard runs: empty, or an earlier merge
        dirs = run_shards(a.model, names, a.output, a.data_parallel, spec, gpus, getattr(a, "ray_address", None))
        run = merge_shards(dirs, a.output, task_getter(a.task_config, dirs[0]), locked=True, allowed_extra=("shards",))
    print_summary(run, a.all_metrics)
    print_usage(run.usage)
    print(f"\nresults: {results_json(a.output)} (merged from {len(dirs)} shards in {a.output / 'shards'})")
    return 0
