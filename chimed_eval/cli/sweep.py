"""``chimed-eval sweep``: many models x many tasks on Ray into one output tree with one summary.

Every run option of ``chimed-eval run`` applies to each unit (they are taken from the ``run``
parser, so the two never drift apart); the sweep's own flags say where Ray is and what each
model's worker asks of it. ``--config FILE`` reads the same run configuration file as ``run
--config``: its run options, and a ``sweep`` table with the sweep's own flags as keys (``models``,
``tasks``, ``ray_address``, ``shards``, ...); flags on the command line win over the file. See :mod:`chimed_eval.engine.sweep` for the layout and resume, and
:mod:`chimed_eval.engine.distribute` for the workers, retries and resources.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chimed_eval.core.errors import BudgetReached, ConfigError
from chimed_eval.core.kv import parse_kv

NAME = "sweep"
#: flags of ``run`` that a sweep does not take (it has its own models, tasks, output and shards)
_NOT_SWEEP = {"--model", "--tasks", "--output", "--shard", "--data-parallel", "--config", "--help"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``sweep`` subcommand: its own flags, then the run options of ``run``."""
    s = sub.add_parser(NAME, help="evaluate models x tasks as units on Ray (one output tree, one summary)")
    s.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="run options and a [sweep] table in a YAML, TOML or JSON file (flags win over it)")
    s.add_argument("--models", default=None, help="comma-separated models (as --model of run); required")
    s.add_argument("--tasks", default=None, help="comma-separated task names; required")
    s.add_argument("--output", default=None, type=Path,
                   help="the sweep directory: OUTPUT/<model>/<task>/ per unit (resumable), summary.csv/json")
    s.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="a running Ray cluster (ray://host:10001, or 'auto'); default: start a local Ray instance")
    s.add_argument("--shards", type=int, default=1, metavar="N",
                   help="split each (model, task) into N units (--shard I/N each), merged into its directory")
    s.add_argument("--workers-per-model", type=int, default=1, metavar="K",
                   help="Ray workers (actors) per model, each loading the model once")
    s.add_argument("--cpus-per-model", type=float, default=1.0, metavar="C", help="CPUs each worker asks Ray for")
    s.add_argument("--gpus-per-model", type=float, default=0.0, metavar="G",
                   help="GPUs each worker asks Ray for (vLLM: tensor_parallel_size x pipeline_parallel_size)")
    s.add_argument("--max-retries", type=int, default=3, metavar="R",
                   help="restarts of a worker whose process dies (its units are retried and resume)")
    _add_run_options(s)


def _add_run_options(s: argparse.ArgumentParser) -> None:
    from chimed_eval.cli import run as run_cmd

    scratch = argparse.ArgumentParser(add_help=False).add_subparsers()
    run_cmd.add_parser(scratch)
    parser = scratch.choices[run_cmd.NAME]
    for action in parser._actions:  # argparse has no public copy; the run parser stays the one definition
        if not set(action.option_strings) & _NOT_SWEEP and not any(o.startswith("--judge") for o in action.option_strings):
            s._add_action(action)


def _sweep_parser() -> argparse.ArgumentParser:
    scratch = argparse.ArgumentParser(prog="chimed-eval", add_help=False).add_subparsers()
    add_parser(scratch)
    return scratch.choices[NAME]


def sweep_options(a: argparse.Namespace) -> argparse.Namespace:
    """The sweep's options: with ``--config FILE``, the file's top-level run options and its
    ``sweep`` table, then the command line's flags (which win), through the sweep parser; then
    the required ``--models``, ``--tasks`` and ``--output`` are checked."""
    if a.config is not None:
        from chimed_eval.cli.config_file import _run_words, file_words, load_mapping, parse_words

        doc = load_mapping(a.config)
        table = doc.pop("sweep", None) or {}
        if not isinstance(table, dict):
            raise ConfigError(f"--config {a.config}: sweep: expected a table, got {type(table).__name__}")
        parser = _sweep_parser()
        aliases = {"model": "models"}
        words = [*file_words(a.config, doc, parser, aliases), *file_words(a.config, table, parser, aliases, "sweep.")]
        ns = parse_words(parser, [*words, *_run_words(a.argv, NAME)], a.config)
        for key in ("argv", "verbose", "quiet", "command", "parser"):
            if hasattr(a, key):
                setattr(ns, key, getattr(a, key))
        ns.config, a = None, ns
    for flag in ("models", "tasks", "output"):
        if not getattr(a, flag):
            raise ConfigError(f"--{flag} is required (on the command line or in a --config file)")
    return a


def run(a: argparse.Namespace) -> int:
    """Run the sweep; print one line per unit as it ends, then the summary table."""
    from chimed_eval.cli.rebuild import task_getter
    from chimed_eval.cli.run import run_config
    from chimed_eval.engine.distribute import Outcome, RunSpec
    from chimed_eval.engine.sweep import run_sweep, summary_lines
    from chimed_eval.tasks.factory import build_tasks

    a = sweep_options(a)
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    a.shard = None  # each unit's shard is the sweep's to set
    spec = RunSpec(backend=a.backend, model_args=parse_kv(a.model_args, "--model-args"), data_dir=a.data_dir or None,
                   config=run_config(a), resolve_tasks=build_tasks)
    from chimed_eval.backends import check_backend_args

    check_backend_args(a.backend, spec.model_args)  # a missing library or a bad arg: refused before OUT is made
    total = len(models) * len(tasks) * max(1, a.shards)
    count = [0]

    def ended(o: Outcome) -> None:
        count[0] += 1
        if not a.no_progress or o.status != "done":
            more = f": {o.message}" if o.message else ""
            print(f"[{count[0]}/{total}] {o.unit.label}: {o.status} ({o.seconds:.1f} s){more}", file=sys.stderr)

    try:
        result = run_sweep(models, tasks, a.output, spec, get_task=lambda d: task_getter(a.task_config, d),
                       shards=a.shards, address=a.ray_address, workers_per_model=a.workers_per_model,
                       cpus_per_model=a.cpus_per_model, gpus_per_model=a.gpus_per_model, max_retries=a.max_retries,
                       on_result=ended)
    except KeyboardInterrupt:
        print(f"\nchimed-eval: interrupted; finished units and items are kept under {a.output}. "
              "Run the same command again to resume.", file=sys.stderr)
        return 130
    except BudgetReached as exc:  # the table of what was done, then the CLI's budget exit
        for line in summary_lines(exc.result):  # type: ignore[attr-defined]
            print(line)
        raise
    for line in summary_lines(result):
        print(line)
    print(f"\nsummary: {a.output / 'summary.csv'} and {a.output / 'summary.json'}")
    if result.failed:
        print(f"chimed-eval: {len(result.failed)} unit(s) failed (see summary.json); run the same command to "
              "retry them", file=sys.stderr)
        return 1
    return 0
