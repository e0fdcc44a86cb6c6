"""``chimed-eval merge``: merge the output directories of ``--shard`` runs into one."""

from __future__ import annotations

import argparse
from pathlib import Path

from chimed_eval.cli.rebuild import task_getter
from chimed_eval.cli.summary import print_summary
from chimed_eval.runs.reader import results_json

NAME = "merge"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``merge`` subcommand and its flags."""
    m = sub.add_parser(NAME, help="merge the output directories of --shard runs into one")
    m.add_argument("shards", nargs="+", type=Path, help="the shard output directories")
    m.add_argument("--output", "-o", required=True, type=Path)
    m.add_argument("--task-config", type=Path, default=None)
    m.add_argument("--all-metrics", action="store_true", help="print every figure (default: the headline figures of each task; all are in results.json)")


def run(a: argparse.Namespace) -> int:
    """Merge the shard directories into --output and print the figures."""
    from chimed_eval.engine.merge import merge_shards

    run = merge_shards(a.shards, a.output, task_getter(a.task_config, a.shards[0]))
    print_summary(run, a.all_metrics)
    print(f"\nmerged {len(a.shards)} shards into {results_json(a.output)}")
    return 0
