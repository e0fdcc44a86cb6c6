"""What a command prints after a run, a merge or a re-score: the figures table, its warnings and
the rows each task skipped (shared by ``run``, ``merge`` and ``score``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chimed_eval.core.types import RunResult


def print_summary(run) -> None:
    """The figures table: per metric its own ``n`` (items, or records where its averaging says so:
    under --shuffle-choices / --repeats a task holds K records per item), then any warnings."""
    from chimed_eval.reports.notes import figure_warnings

    print(f"model: {run.model.name} ({run.model.dtype or '-'})")
    print(f"{'task':28} {'variant':9} {'shots':>5} {'n':>6}  {'metric':24} {'value':>7}  95% CI")
    for t in run.tasks:
        for m in t.metrics:
            ci = f"[{m.ci_low:.2f}, {m.ci_high:.2f}]" if m.ci_low is not None else ""
            value = f"{m.value:7.0f}" if m.name.endswith("_count") else f"{m.value:7.2f}"
            n = m.n if m.n is not None else t.n
            print(f"{t.task:28} {t.variant or '':9} {t.shots:>5} {n:>6}  {m.name + ' (' + (m.averaging or '') + ')':24} {value}  {ci}")
    for t in run.tasks:
        for w in figure_warnings(t):
            print(f"warning: {t.task}: {w}")
    print_skipped(run)


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


def add_cost_flags(p) -> None:
    """``--price``, ``--max-cost``, ``--max-tokens`` (``run`` and ``sweep``): the cost of a run and
    the budget that stops its scheduling (:mod:`chimed_eval.runs.usage`)."""
    p.add_argument("--price", default=None, metavar="in=X,out=Y",
                   help="USD per million prompt (in) and completion (out) tokens, for the cost in usage.json "
                        "(default: the API presets' list prices; none for other models)")
    p.add_argument("--max-cost", type=float, default=None, metavar="USD",
                   help="stop scheduling once the output directory has spent this much (needs a price); exit 3, "
                        "the same command with a higher budget resumes")
    p.add_argument("--max-tokens", type=int, default=None, metavar="N",
                   help="stop scheduling once the output directory has spent N prompt+completion tokens; exit 3, "
                        "the same command with a higher budget resumes")


def print_usage(usage) -> None:
    """The usage table (tokens, p50/p95 latency, throughput, cost per task and for the run), when
    any request was made or served."""
    from chimed_eval.runs.usage import usage_table

    if not usage or not usage.get("run", {}).get("requests"):
        return
    price = usage.get("price_usd")
    print("\nusage" + (f" (price: {price['input_per_million']:g}/{price['output_per_million']:g} USD per million "
                       f"in/out tokens, {price['source']})" if price else " (no price: give --price in=X,out=Y for a cost)"))
    for line in usage_table(usage):
        print(line)
