"""The rubric grader's figures written into the run's own results.json, labelled with the grader's
validation status, so that summary/export/leaderboard tables (which read results.json through
:mod:`chimed_eval.runs.reader`) show a rubric figure and whether its grader was trusted.

Each graded rubric task's ``metrics`` gain ``rubric_score`` (bootstrap interval over items),
``rubric_score[<tag>]``, ``rubric_met_rate[positive|negative]`` and, with labels, ``grader_macro_f1``;
their ``protocol`` says ``judge-rubric (validated grader)``, ``(below-threshold grader, macro F1 < T)``
or ``(unvalidated grader)``, and their ``grader_status`` holds the status itself (with the macro F1,
the threshold and the grading directory). The document is re-sealed
(:func:`chimed_eval.runs.reader.seal_results`); ``chimed-eval score`` recomputes these figures from
that grading's verdict records (:func:`chimed_eval.judge.rubric_rescore.rescore_grading`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

#: the metric names this module owns (replaced on each grading)
PREFIXES = ("rubric_score", "rubric_met_rate[", "grader_macro_f1")


def grader_label(status: str, min_f1: float) -> str:
    """The ``protocol`` of a rubric figure: the grader's status, with the threshold it was held to."""
    if status == "validated":
        return f"judge-rubric (validated grader, macro F1 >= {min_f1:g})"
    if status == "below-threshold":
        return f"judge-rubric (below-threshold grader, macro F1 < {min_f1:g})"
    return "judge-rubric (unvalidated grader)"


def _metric(name: str, fig: Mapping[str, Any], protocol: str, averaging: str = "items") -> dict[str, Any] | None:
    if fig.get("value") is None:
        return None
    return {"name": name, "value": float(fig["value"]), "ci_low": fig.get("ci_low"), "ci_high": fig.get("ci_high"),
            "n": fig.get("n"), "averaging": averaging, "protocol": protocol, "tokenization": None,
            "ci_method": fig.get("ci_method")}


def status_field(res: Mapping[str, Any], grading: str) -> dict[str, Any]:
    """The ``grader_status`` of the reported grader's figures: its status, macro F1, threshold and
    the grading directory the figures come from."""
    reported = res["reported"]
    agree = (res.get("validation") or {}).get(reported) or {}
    return {"status": res["grader_validation"][reported], "grader": reported, "macro_f1": agree.get("macro_f1"),
            "min_f1": float(res["min_f1"]), "grading": grading}


def rubric_metrics(res: Mapping[str, Any], task: str, grading: str) -> list[dict[str, Any]]:
    """The results.json metrics of ``task`` from a grading result (:func:`chimed_eval.judge.rubric.grade`)
    made in ``OUT/judge/<grading>/``, each with its ``grader_status``."""
    reported = res["reported"]
    figs = res["tasks"][task]["graders"][reported]
    proto = grader_label(figs["grader_validation"], float(res["min_f1"]))
    out = [_metric("rubric_score", figs["score"], proto)]
    out += [_metric(f"rubric_score[{t}]", f, proto) for t, f in figs.get("tags", {}).items()]
    out += [_metric(f"rubric_met_rate[{k}]", f, proto, "records") for k, f in figs.get("met_rate", {}).items()]
    agree = (res.get("validation") or {}).get(reported)
    if agree and agree.get("macro_f1") is not None:
        out.append(_metric("grader_macro_f1", {**agree, "value": agree["macro_f1"],
                                               "ci_method": agree.get("ci_method", "bootstrap")}, proto, "records"))
    status = status_field(res, grading)
    return [{**m, "grader_status": status} for m in out if m is not None]


def with_rubric_metrics(doc: dict[str, Any], res: Mapping[str, Any], grading: str) -> dict[str, Any]:
    """``doc`` (a results document) with each graded task's rubric figures replaced by ``res``'s."""
    tasks = doc.get("tasks") or {}
    for t in res["tasks"]:
        if t not in tasks:
            continue
        kept = [m for m in tasks[t].get("metrics", []) if not str(m.get("name", "")).startswith(PREFIXES)]
        tasks[t]["metrics"] = kept + rubric_metrics(res, t, grading)
    return doc


def record_in_results(out_dir: Path, res: Mapping[str, Any], grading: str) -> bool:
    """Write the grading's figures into ``out_dir``'s results.json (re-sealed); False without one."""
    from chimed_eval.runs.jsonio import read_json_file
    from chimed_eval.runs.reader import results_json, seal_results, verify_results
    from chimed_eval.runs.records import write_json_atomic

    path = results_json(out_dir)
    if not path.exists():
        return False
    doc = read_json_file(path)
    verify_results(doc, path)  # never re-seal figures edited by hand: refused as the reader refuses them
    write_json_atomic(path, seal_results(with_rubric_metrics(doc, res, grading), out_dir))
    return True
