"""Warnings that travel with a task's figures wherever they are shown (the console summary of
``run`` / ``score`` / ``merge``, the HTML report): figures resting on too few items, and items
whose log-probabilities could not be read. Derived from the TaskResult alone (its metrics and
per-subject breakdown), so a results.json read back gives the same warnings as the run did; and
nested gold mentions that the flat NER span figures leave out (not among the console's headline
figures, so said here).

The stated group size is :data:`chimed_eval.metrics.stats.MIN_GROUP_SIZE` (10): below it a
group's figure (a membership AUC's seen or unseen group, a subject of a macro average, any figure
with an interval) is flagged, with its n, since its interval rests on too few items to trust."""

from __future__ import annotations

from chimed_eval.metrics.membership import small_group_note
from chimed_eval.metrics.stats import MIN_GROUP_SIZE
from chimed_eval.core.types import TaskResult

#: the metric counting items whose option log-probabilities hold NaN or are all -inf
#: (:func:`chimed_eval.metrics.calibration.valid_logprobs`)
INVALID_LOGPROBS = "invalid_logprob_count"
SHOWN = 6  # group names listed in one warning


def _listed(pairs: list[tuple[str, int]]) -> str:
    names = ", ".join(f"{k} (n={n})" for k, n in pairs[:SHOWN])
    return names + (f" and {len(pairs) - SHOWN} more" if len(pairs) > SHOWN else "")


def figure_warnings(t: TaskResult, min_size: int = MIN_GROUP_SIZE) -> list[str]:
    """Plain sentences about ``t``'s figures; empty when there is nothing to say."""
    by = {m.name: m for m in t.metrics}
    out: list[str] = []
    bad = by.get(INVALID_LOGPROBS)
    if bad is not None and bad.value:
        out.append(f"{int(bad.value)} of {bad.n} records have NaN or all -inf option log-probabilities: they count "
                   "as wrong (no prediction) and are left out of ece and brier (see invalid_logprob_count)")
    nested = by.get("gold_nested_count")
    if nested is not None and nested.value:  # not a headline figure: say it where the headline is shown
        rate = by.get("gold_nested_rate")
        share = f" ({rate.value:.1f}% of gold mentions)" if rate is not None else ""
        out.append(f"{int(nested.value)} gold mentions{share} are nested in others: the flat *_span figures leave "
                   "them out, f1_span_all counts them (see gold_nested_count, gold_nested_rate)")
    if "seen_count" in by and "unseen_count" in by:
        note = small_group_note(int(by["seen_count"].value), int(by["unseen_count"].value), min_size)
        if note:
            out.append(note)
    small = [(m.name, m.n) for m in t.metrics if m.ci_low is not None and m.n is not None and m.n < min_size
             and not m.name.startswith("auc_")]
    if small:
        out.append(f"figures over fewer than {min_size} items, whose intervals rest on too few items to trust: "
                   f"{_listed(small)}")
    flagged, leak = by.get("simulator_leak_flagged"), by.get("simulator_leak_rate")
    if flagged is not None and flagged.value and leak is not None:  # consultations (chimed_eval.metrics.consult)
        from chimed_eval.metrics.consult import LEAK_THRESHOLD

        out.append(f"FLAGGED: the patient simulator gave away the diagnosis or test results unasked in "
                   f"{leak.value:.0f}% of {leak.n} audited cases (threshold {LEAK_THRESHOLD:.0f}%): the consultation "
                   "figures (diagnosis_acc, coverage, plan_score) measure the simulator as much as the doctor")
    groups = [(k, int(v["n"])) for k, v in t.subjects.items() if isinstance(v.get("n"), (int, float))]
    tiny = [(k, n) for k, n in groups if n < min_size]
    if len(groups) > 1 and tiny:
        out.append(f"{len(tiny)} of {len(groups)} groups of the per-subject (or per-type) breakdown have n < "
                   f"{min_size}; their figures, and their weight in any *_macro figure, rest on few items: "
                   f"{_listed(tiny)}")
    return out
