"""The contamination report: the document ``chimed-eval contamination --output`` writes and
``score --exclude-contaminated`` reads (:mod:`.clean`), built from the scan's verdicts.

The rule and tokenisation are :mod:`.ngrams`'s, the corpus formats :mod:`.corpus`'s. Per task:
items, items checked (the others are too short: no text other than an option has n tokens), items
contaminated (a text other than an option matched), and the rate contaminated / checked with its
Wilson 95% interval; apart, the items whose only match lies inside one option (``option_only``:
not counted as contaminated, nor excluded by ``score --exclude-contaminated``). ``--output`` writes the report
(:data:`REPORT_FORMAT`, version :data:`REPORT_VERSION`) that ``chimed-eval score OUT
--exclude-contaminated REPORT`` reads:

``{"format", "format_version", "created", "n", "tokenisation", "rule", "max_documents", "data_dir",
"corpus": {"files": [{"path", "format", "encoding", "bytes", "sha256", "documents"}], "skipped",
"documents", "tokens", "ngrams"}, "tasks": {name: {"items", "checked", "too_short", "contaminated",
"option_only", "rate", "rate_ci95", "rate_ci_method" ("wilson": :func:`chimed_eval.metrics.stats.wilson`,
results.json's ``ci_method`` vocabulary), "data_files", "ids_sha256", "records": [{"id", "contaminated"
(null: too short), "too_short", "match" ("question", "option-only" or null), "ngrams",
"ngrams_seen", "overlap_ratio", "matched_fields", "example_ngram", "corpus_location",
"example_documents"}]}}, "seconds"}``. Version 2: options matched on their own (version 1 joined
the question with its lettered options).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Sequence

from chimed_eval.metrics.stats import WILSON, wilson  # the one Wilson interval, shared with run figures

REPORT_FORMAT = "chimed-eval-contamination"
REPORT_VERSION = 2
RULE = ("an item is contaminated when one of its texts other than its options shares at least one n-gram with one "
        "corpus document; options are matched each on its own and an option-only match is reported apart")


def build_report(n: int, max_documents: int | None, data_dir: str, stats: Sequence[Any], skipped: Sequence[str],
                 scan: Any, loaded: Sequence[tuple[str, Any]], overlaps: Sequence[Any],
                 seconds: dict[str, float]) -> dict[str, Any]:
    """The report document (schema in the module doc)."""
    from chimed_eval.core.types import sha256_text

    from chimed_eval.contamination.ngrams import TOKENISATION

    by_task: dict[str, list[Any]] = {name: [] for name, _ in loaded}
    for o in overlaps:
        by_task[o.task].append(o)
    tasks = {}
    for name, data in loaded:
        recs = by_task[name]
        checked = sum(1 for o in recs if o.contaminated is not None)
        bad = sum(1 for o in recs if o.contaminated)
        ci = wilson(bad, checked)
        tasks[name] = {"items": len(recs), "checked": checked, "too_short": len(recs) - checked, "contaminated": bad,
                       "option_only": sum(1 for o in recs if o.option_only),
                       "rate": bad / checked if checked else None, "rate_ci95": list(ci) if ci else None,
                       "rate_ci_method": WILSON if ci else None,
                       "data_files": dict(data.files), "ids_sha256": sha256_text("\n".join(o.id for o in recs)),
                       "records": [o.as_dict() for o in recs]}
    files = [{"path": str(cf.path), "format": cf.format, "encoding": st.encoding, "bytes": st.bytes,
              "sha256": st.sha256, "documents": st.documents} for cf, st in stats]
    return {"format": REPORT_FORMAT, "format_version": REPORT_VERSION,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "n": n, "tokenisation": TOKENISATION, "rule": RULE, "max_documents": max_documents, "data_dir": data_dir,
            "corpus": {"files": files, "skipped": list(skipped), "documents": scan.documents, "tokens": scan.tokens,
                       "ngrams": scan.ngrams},
            "tasks": tasks, "seconds": seconds}
