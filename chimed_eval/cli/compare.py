"""``chimed-eval compare A B``: the items whose score changed between two runs, with a paired test."""

from __future__ import annotations

import argparse
from pathlib import Path

from chimed_eval.core.kv import split_csv

NAME = "compare"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``compare`` subcommand and its flags."""
    cp = sub.add_parser(NAME, help="items whose score changed between two runs, with a paired test")
    cp.add_argument("a", type=Path, help="run A (output directory or its results.json)")
    cp.add_argument("b", type=Path, help="run B")
    cp.add_argument("--tasks", default=None, help="comma-separated tasks (default: every task recorded in both)")
    cp.add_argument("--max-items", type=int, default=50, help="changed items listed per task (default 50)")
    cp.add_argument("--prompt-chars", type=int, default=300, help="characters of each prompt's end shown")
    cp.add_argument("--seed", type=int, default=1234, help="seed of the paired bootstrap")
    cp.add_argument("--output", type=Path, default=None, help="also write the Markdown to this file")


def run(a: argparse.Namespace) -> int:
    """Print (and with --output write) the Markdown comparison of runs A and B."""
    from chimed_eval.reports.html import compare_runs

    text, _ = compare_runs(a.a, a.b, split_csv(a.tasks) or None, a.max_items, a.prompt_chars, a.seed)
    print(text)
    if a.output:
        a.output.write_text(text + "\n", encoding="utf-8")
    return 0
