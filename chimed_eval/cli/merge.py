"""``chimed-eval merge``: merge the output directories of ``--shard`` runs into one."""

from __future__ import annotations

import argparse
from pathlib import Path

from chimed_eval.cli.rebuild import task_getter
from chimed_eval.cli.summary import print_summary

NAME = "merge"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``merge`` subcommand and its flags."""
    m = sub.add_parser(NAME, help="merge the output directories of --shard runs into one")
    m.add_argument("shards", nargs="+", type=Path, help="the shard output directories")
    m.add_argument("--output", "-o", required=True, type=Path)
    m.add_argument("--task-config", type=Path, default=None)


def run(a: argparse.Namespace) -> int:
    """Merge the shard directories into --output and print the figures."""
    from chimed_eval.engine.merge import merge_shards

    run = merge_shards(a.shards, a.output, task_getter(a.task_config, a.shards[0]))
    print_summary(run)
    print(f"\nmerged {len(a.shards)} shards into {a.output / 'results.json'}")
    return 0
