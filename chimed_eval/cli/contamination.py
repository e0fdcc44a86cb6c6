"""``chimed-eval contamination``: which test items of the tasks share an n-gram with a corpus.

The rule and tokenisation are :mod:`chimed_eval.contamination.ngrams`'s, the corpus formats
:mod:`chimed_eval.contamination.corpus`'s, the report document (written by ``--output``, read by
``chimed-eval score OUT --exclude-contaminated REPORT``) :mod:`chimed_eval.contamination.report`'s.
Printed per task: items, items checked, items contaminated and the rate with its Wilson 95%
interval; apart, the items whose only match lies inside one option.

The exit status is 0 whatever the figures (a measurement), 1 with ``--fail-on-contamination``
when an item is contaminated, 2 on a usage or data error.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.kv import parse_kv
from chimed_eval.data.locations import default_data_dir

NAME = "contamination"


def add_parser(sub: Any) -> None:
    """The ``contamination`` subcommand and its flags."""
    c = sub.add_parser(
        NAME, help="n-gram overlap (lm-eval's 13-gram rule) between a training corpus and test items",
        description="Flag every test item of the tasks that shares a 13-gram (CJK characters as tokens) with a "
                    "corpus document; per task the rate with a Wilson 95% interval. Exit 0 whatever the figures.")
    c.add_argument("--corpus", required=True, nargs="+", action="extend", metavar="PATH",
                   help="files, directories or globs: .jsonl/.json (a record's string values joined), "
                        ".txt/.md (paragraphs), .csv/.tsv (rows)")
    c.add_argument("--tasks", required=True, help="comma-separated task names or types (as for run)")
    c.add_argument("--task-args", default="", help="k=v,... for a task type (as for run)")
    c.add_argument("--task-config", type=Path, default=None, help="JSON/TOML file defining your own tasks")
    c.add_argument("--data-dir", default=None, help="data folder (as for run)")
    c.add_argument("--n", type=int, default=13, help="n-gram length in tokens (default 13, lm-eval's)")
    c.add_argument("--max-documents", type=int, default=None, metavar="K",
                   help="ignore n-grams found in more than K corpus documents (GPT-3 used 10 against common "
                        "phrases and boilerplate; default: none ignored, lm-eval's rule)")
    c.add_argument("--output", type=Path, default=None, metavar="REPORT.json", help="write the report here")
    c.add_argument("--show", type=int, default=5, metavar="K", help="contaminated items printed per task (default 5)")
    c.add_argument("--fail-on-contamination", action="store_true", help="exit 1 when an item is contaminated")
    c.add_argument("--no-progress", action="store_true", help="no progress bar while the corpus is read")


def run(a: Any) -> int:
    from chimed_eval.tasks.factory import build_tasks

    from chimed_eval.contamination.corpus import read_all, resolve_corpus
    from chimed_eval.contamination.ngrams import TestIndex, TestItem, item_overlaps, sample_texts
    from chimed_eval.contamination.report import build_report
    from chimed_eval.contamination.scan import CorpusScan

    if a.n < 1:
        raise ConfigError(f"--n {a.n}: expected an integer >= 1")
    if a.max_documents is not None and a.max_documents < 1:
        raise ConfigError(f"--max-documents {a.max_documents}: expected an integer >= 1")
    names = list(dict.fromkeys(t.strip() for t in a.tasks.split(",") if t.strip()))
    if not names:
        raise ConfigError("--tasks is empty")
    files, skipped = resolve_corpus(a.corpus)  # a missing corpus fails before any task loads
    data_dir = Path(a.data_dir or default_data_dir())
    t0 = time.perf_counter()
    loaded = [(b.task.name, b.task.load(data_dir))
              for b in build_tasks(names, parse_kv(a.task_args, "--task-args"), a.task_config)]
    index = TestIndex([TestItem(name, s.id, sample_texts(s)) for name, data in loaded for s in data.samples], a.n)
    t1 = time.perf_counter()
    scan = CorpusScan(index)
    stats = read_all(files, scan.add, progress=not a.no_progress)
    seen = scan.sightings(a.max_documents)
    t2 = time.perf_counter()
    overlaps = item_overlaps(index, seen)
    seconds = {"index": round(t1 - t0, 2), "corpus": round(t2 - t1, 2), "verdicts": round(time.perf_counter() - t2, 2)}
    doc = build_report(a.n, a.max_documents, str(data_dir), stats, skipped, scan, loaded, overlaps, seconds)
    if a.output is not None:
        from chimed_eval.runs.records import write_json_atomic

        write_json_atomic(a.output, doc)
    print_table(doc, a.show)
    if a.output is not None:
        print(f"\nreport: {a.output}")
    if a.fail_on_contamination and any(t["contaminated"] for t in doc["tasks"].values()):
        return 1
    return 0


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def print_table(doc: dict[str, Any], show: int = 5) -> None:
    c = doc["corpus"]
    print(f"corpus: {len(c['files'])} file(s), {c['documents']} documents, {c['tokens']} tokens, {c['ngrams']} "
          f"{doc['n']}-grams (tokenisation {doc['tokenisation']}"
          + (f"; n-grams in more than {doc['max_documents']} documents ignored" if doc["max_documents"] else "") + ")")
    if c["skipped"]:
        print(f"skipped (not a corpus format): {len(c['skipped'])} file(s), e.g. {c['skipped'][0]}")
    print(f"\n{'task':24} {'items':>6} {'checked':>8} {'too short':>9} {'contaminated':>12} {'rate %':>7}  "
          f"{'95% CI':14} {'option-only':>11}")
    for name, t in doc["tasks"].items():
        ci = f"[{_pct(t['rate_ci95'][0])}, {_pct(t['rate_ci95'][1])}]" if t["rate_ci95"] else ""
        print(f"{name:24} {t['items']:>6} {t['checked']:>8} {t['too_short']:>9} {t['contaminated']:>12} "
              f"{_pct(t['rate']):>7}  {ci:14} {t['option_only']:>11}")
    for name, t in doc["tasks"].items():
        for kind, what in (("question", "contaminated"),
                           ("option-only", "matched only inside an option (not counted as contaminated)")):
            hits = [r for r in t["records"] if r["match"] == kind]
            if hits and show > 0:
                print(f"\n{name}: {len(hits)} {what}, e.g.")
                for r in hits[:show]:
                    print(f"  {r['id']}  overlap {_pct(r['overlap_ratio'])}%  {', '.join(r['matched_fields'])}  "
                          f"{r['example_ngram']!r}  at {r['corpus_location']}")
