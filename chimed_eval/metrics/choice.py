"""Multiple-choice accuracy: over items and over subjects, both named, with intervals; and the
choice rule that predicts an option from its log-probabilities."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from chimed_eval.core.types import Metric, SampleScore


def argmax_first(values: Sequence[float]) -> int:
    """The index of the highest value, ties going to the earlier one (the earlier letter)."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


#: which way each figure of :func:`accuracy_metrics` is better (:func:`chimed_eval.metrics.metric_direction`)
DIRECTIONS = {"acc": "higher", "acc_macro": "higher", "extraction_failure_rate": "lower"}
#: the headline figures (the console's default rows; names or patterns): multiple choice: accuracy over items and over subjects
HEADLINE = ("acc", "acc_macro")


def accuracy_metrics(scores: Sequence[SampleScore], seed: int, protocol: str | None = None) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
    """Return (metrics, per-subject breakdown).

    ``acc`` averages over items (pooled); ``acc_macro`` is the unweighted mean of per-subject
    accuracies. The published tables mix the two, so both are reported under their names when the
    items have two subjects or more (over one subject a macro is ``acc`` again under another name).
    Accuracies are percentages; ``acc`` has a Wilson interval, ``acc_macro`` a MOVER-Wilson one
    (:mod:`chimed_eval.metrics.stats`).
    """
    from chimed_eval.metrics.stats import WILSON, macro_ci, proportion_ci  # numpy, only when figures are computed

    values = [s.score for s in scores]
    n = len(values)
    by_subject: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        by_subject[s.subject or "all"].append(s.score)
    subjects = {k: {"n": len(v), "acc": 100.0 * sum(v) / len(v)} for k, v in sorted(by_subject.items())}
    if n == 0:
        return [], subjects
    acc = 100.0 * sum(values) / n
    lo, hi = proportion_ci(values)
    metrics = [Metric("acc", acc, 100 * lo, 100 * hi, n, "items", protocol, None, WILSON)]
    if len(subjects) > 1:
        macro = sum(v["acc"] for v in subjects.values()) / len(subjects)
        mlo, mhi, method = macro_ci(by_subject, seed)
        metrics.append(Metric("acc_macro", macro, 100 * mlo, 100 * mhi, n, "subjects", protocol, None, method))
    failures = sum(1 for s in scores if s.extraction_failed)
    if any(s.generation is not None for s in scores):
        metrics.append(Metric("extraction_failure_rate", 100.0 * failures / n, None, None, n, "items", protocol, None))
    return metrics, subjects
