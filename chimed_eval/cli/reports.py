"""argparse commands that read results back: ``leaderboard``, ``compare``, ``check``, ``report``.

They read only results files and per-sample records, never a model, so nothing here imports torch;
matplotlib is imported only when a PNG chart is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from chimed_eval.core.errors import ConfigError

if TYPE_CHECKING:
    from chimed_eval.core.types import RunResult

CHECK_EPILOG = """exit codes:
  0  every baseline metric within tolerance; item sets and prompts unchanged
  1  regression: a metric outside the baseline's 95%% interval (or --tolerance), or missing
  2  usage or configuration error, or a baseline or results file it cannot read (no tasks or
     metrics, a non-finite value, malformed items, an interval that does not contain its value,
     reaches outside the metric's range or covers all of it)
  3  an item set changed (hash of the item ids, or a task missing) or an item's prompt changed
     (prompt hash); takes precedence over 1
"""


def add_commands(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Register the subcommands on ``sub``; returns command name -> handler."""
    lb = sub.add_parser("leaderboard", help="render boards (the paper's tables and others) from results.json files",
                        description="Render boards from results.json files: published rows beside measured ones, "
                                    "as Markdown (also printed), CSV, LaTeX and a PNG chart.")
    lb.add_argument("results", nargs="*", type=Path, help="results.json files or run output directories")
    lb.add_argument("--board", default="all", help="paper-table-a | paper-table-b | paper-table-c | ... | all (default)")
    lb.add_argument("--output-dir", "-o", type=Path, default=Path("leaderboards"),
                    help="where to write <board>.md/.csv/.tex/.png (default: ./leaderboards)")
    lb.add_argument("--formats", default="md,csv,tex,png", help="comma-separated subset of md,csv,tex,png")
    lb.add_argument("--boards", type=Path, default=None, help="your own board definitions (TOML or JSON)")
    lb.add_argument("--list", action="store_true", help="list the boards and exit")
    lb.add_argument("--no-write", action="store_true", help="only print the Markdown")

    cp = sub.add_parser("compare", help="items whose score changed between two runs, with a paired test")
    cp.add_argument("a", type=Path, help="run A (output directory or its results.json)")
    cp.add_argument("b", type=Path, help="run B")
    cp.add_argument("--tasks", default=None, help="comma-separated tasks (default: every task recorded in both)")
    cp.add_argument("--max-items", type=int, default=50, help="changed items listed per task (default 50)")
    cp.add_argument("--prompt-chars", type=int, default=300, help="characters of each prompt's end shown")
    cp.add_argument("--seed", type=int, default=1234, help="seed of the paired bootstrap")
    cp.add_argument("--output", type=Path, default=None, help="also write the Markdown to this file")

    ck = sub.add_parser("check", help="regression check of a run against a baseline (exit codes below)",
                        epilog=CHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ck.add_argument("results", type=Path, help="run output directory or results.json")
    ck.add_argument("--baseline", type=Path, default=None,
                    help="baseline file (--save-baseline), run directory or results.json")
    ck.add_argument("--tolerance", default=None,
                    help="allowed |change| in points: NUMBER, METRIC=NUMBER, TASK:METRIC=NUMBER, comma-separated "
                         "(default: the baseline's 95%% interval)")
    ck.add_argument("--all", action="store_true", help="print every check, not only what moved")
    ck.add_argument("--save-baseline", type=Path, default=None, metavar="FILE",
                    help="write a baseline (metrics and hashes only) from RESULTS to FILE and exit")
    ck.add_argument("--tasks", default=None, help="with --save-baseline: only these tasks (comma-separated)")

    rp = sub.add_parser("report", help="one-file HTML report of a run (figures, subjects, worst items)")
    rp.add_argument("run", type=Path, help="run output directory")
    rp.add_argument("--output", "-o", type=Path, default=None, help="HTML file (default: RUN/report.html)")
    rp.add_argument("--worst", type=int, default=10, help="worst items shown per task (default 10)")
    return dict(HANDLERS)


def _csv(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def cmd_leaderboard(a: argparse.Namespace) -> int:
    from chimed_eval.leaderboards.render import render, write_boards
    from chimed_eval.leaderboards.spec import load_boards
    from chimed_eval.leaderboards.table import load_results

    boards = load_boards(a.boards)
    if a.list:
        for b in boards.boards.values():
            cols = ", ".join(f"{c.title}={c.task}/{c.metric}({c.protocol})" for c in b.columns)
            print(f"{b.name:24} {b.title}\n{'':24} {cols}")
        return 0
    if not a.results:
        raise ConfigError("leaderboard needs at least one results.json or run directory (or --list)")
    runs = load_results(a.results)
    if a.no_write:
        print(render(a.board, runs, boards), end="")
        return 0
    md, written = write_boards(a.board, runs, a.output_dir, _csv(a.formats), boards)
    print(md, end="")
    for p in written:
        print(f"wrote {p}", file=sys.stderr)
    return 0


def cmd_compare(a: argparse.Namespace) -> int:
    from chimed_eval.reports.html import compare

    text, _ = compare(a.a, a.b, _csv(a.tasks) or None, a.max_items, a.prompt_chars, a.seed)
    print(text)
    if a.output:
        a.output.write_text(text + "\n", encoding="utf-8")
    return 0


def cmd_check(a: argparse.Namespace) -> int:
    from chimed_eval.reports.baseline import save_baseline
    from chimed_eval.reports.check import check, parse_tolerance

    if a.save_baseline is not None:
        doc = save_baseline(a.results, a.save_baseline, _csv(a.tasks) or None)
        print(f"baseline of {len(doc['tasks'])} task(s) written to {a.save_baseline}")
        return 0
    if a.baseline is None:
        raise ConfigError("check needs --baseline BASELINE (or --save-baseline FILE to write one)")
    rep = check(a.results, a.baseline, parse_tolerance(a.tolerance))
    print(f"check {rep.results} against {rep.baseline}")
    print(rep.table(a.all), end="")
    return rep.exit_code


def cmd_report(a: argparse.Namespace) -> int:
    from chimed_eval.reports.html import write_html

    out = write_html(a.run, a.output, a.worst)
    print(f"wrote {out}")
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "leaderboard": cmd_leaderboard, "compare": cmd_compare, "check": cmd_check, "report": cmd_report}


def print_skipped(run: RunResult, shown: int = 3) -> None:
    """The rows each task left out (``on_invalid=skip``): their count and the first few, so a
    skipped row is never only in results.json."""
    for t in run.tasks:
        rows = (t.skipped or {}).get("rows") or []
        if rows:
            print(f"{t.task}: {len(rows)} row{'s' if len(rows) != 1 else ''} skipped (on_invalid=skip), not in n; "
                  "all listed in results.json under skipped")
            for r in rows[:shown]:
                reason = str(r.get("reason"))  # a DataError's text, which names its file and line
                where = "" if f":{r.get('line')}:" in reason else f"{r.get('file')}:{r.get('line')}: "
                print(f"  {where}{reason}")
