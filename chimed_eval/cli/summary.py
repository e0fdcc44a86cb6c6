"""What a command prints after a run, a merge or a re-score: the figures table, its warnings and
the rows each task skipped (shared by ``run``, ``merge`` and ``score``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chimed_eval.core.types import RunResult


def summary_lines(run: RunResult, all_metrics: bool = False, allow_unvalidated_grader: bool = False) -> list[str]:
    """The figures table, columns aligned to their widest cell. By default only each task's
    headline figures (:func:`chimed_eval.metrics.headline_metrics`: accuracy for multiple choice,
    each protocol's main BLEU/ROUGE for generations, F1 for NER); ``all_metrics`` shows every one.
    ``n`` counts items; a figure averaged over records (``--shuffle-choices`` / ``--repeats``: K
    records per item) shows its own count of records, marked ``rec``. A rubric grader's figure
    (``grader_status``) from a grader that is not validated is withheld unless
    ``allow_unvalidated_grader``, and then marked, as ``chimed-eval judge`` prints it."""
    from chimed_eval.metrics import headline_metrics
    from chimed_eval.reports.rubric import MARK

    head = ("task", "variant", "shots", "n", "metric", "averaging", "value", "95% CI")
    rows, hidden, withheld = [], 0, set()
    for t in run.tasks:
        shown = list(t.metrics) if all_metrics else headline_metrics(t.metrics)
        hidden += len(t.metrics) - len(shown)
        for m in shown:
            ci = f"[{m.ci_low:.2f}, {m.ci_high:.2f}]" if m.ci_low is not None and m.ci_high is not None else ""
            value = f"{m.value:.0f}" if m.name.endswith("_count") else f"{m.value:.2f}"
            n = f"{m.n} rec" if m.averaging == "records" and m.n is not None else str(t.n if m.n is None else m.n)
            status = (m.grader_status or {}).get("status", "validated")
            if status != "validated" and m.name != "grader_macro_f1":  # the grader's own agreement is shown
                withheld.add(status)
                value, ci = (value, ci + MARK[status]) if allow_unvalidated_grader else ("withheld", "")
            rows.append((t.task, t.variant or "", str(t.shots), n, m.name, m.averaging or "", value, ci))
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    right = {2, 3, 6}

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    out = [f"model: {run.model.name} ({run.model.dtype or '-'})", fmt(head), *map(fmt, rows)]
    if hidden:
        out.append(f"({hidden} more figures: --all-metrics shows them; all are in results.json)")
    if withheld and not allow_unvalidated_grader:
        out.append(f"(rubric figures of a {' / '.join(sorted(withheld))} grader withheld: --allow-unvalidated-grader "
                   "prints them; results.json holds them with their grader_status)")
    return out


def print_summary(run: RunResult, all_metrics: bool = False, allow_unvalidated_grader: bool = False) -> None:
    """Print :func:`summary_lines`, then any warnings and the rows each task skipped."""
    from chimed_eval.reports.notes import figure_warnings

    print("\n".join(summary_lines(run, all_metrics, allow_unvalidated_grader)))
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
