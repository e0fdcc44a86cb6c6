"""Attitude-scale scoring: an answer's (reverse-aware) points, the option a generation names, and
the per-scale sums and means (see :mod:`chimed_eval.tasks.scale` for the protocol)."""

from __future__ import annotations

import re
import unicodedata
from typing import Mapping, Sequence

from chimed_eval.core.types import Metric, SampleScore


def item_points(letter: str, letters: str, points: Sequence[float], reverse: bool) -> float:
    """The score of answering ``letter``: its points, reflected for a reverse-scored item."""
    p = float(points[letters.index(letter)])
    return (min(points) + max(points) - p) if reverse else p


def first_option(text: str, letters: str, options: Sequence[str]) -> str | None:
    """The first option a generation names: a standalone letter or an option text, earliest first
    (the longer text wins at one position, so 非常同意 is not read as 同意)."""
    t = unicodedata.normalize("NFKC", text)
    best: tuple[int, int, str] | None = None
    for m in re.finditer(r"(?<![A-Za-z])([A-Za-z])(?![A-Za-z])", t):
        if m.group(1) in letters:
            best = (m.start(), -1, m.group(1))
            break
    for i, o in enumerate(options):
        pos = t.find(unicodedata.normalize("NFKC", o))
        if pos >= 0:
            cand = (pos, -len(o), letters[i])
            if best is None or cand[:2] < best[:2]:
                best = cand
    return best[2] if best else None


#: which way each figure of :func:`scale_metrics` is better (:func:`chimed_eval.metrics.metric_direction`):
#: an attitude scale's sums and means describe the answers, with no better side
DIRECTIONS = {"*_sum": None, "*_mean": None}
#: the headline figures (the console's default rows; names or patterns): scales: each scale's mean
HEADLINE = ("*_mean",)


def scale_metrics(groups: Mapping[str, Sequence[SampleScore]], seed: int,
                  protocol: str | None) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
    """Per scale (in the order of ``groups``): ``<scale>_sum`` over the answered items (an
    extraction failure is left out) and ``<scale>_mean`` with a 95% interval (the bootstrap, or
    Wilson's over the scale's range where it collapses: :func:`chimed_eval.metrics.stats.mean_ci`); the
    breakdown gives the items, the answered items, the sum and the mean."""
    from chimed_eval.metrics.stats import BOOTSTRAP, bootstrap_mean_ci, mean_ci

    metrics, subjects = [], {}
    for scale, items in groups.items():
        vals = [s.score for s in items if not s.extraction_failed]
        total = float(sum(vals))
        mean = total / len(vals) if vals else float("nan")
        points = [float(p) for s in items for p in (s.extra or {}).get("points", ())]
        lo, hi, method = (None, None, None)
        if vals and points and max(points) > min(points):  # the scale's range: Wilson where the bootstrap collapses
            lo, hi, method = mean_ci(vals, seed, min(points), max(points))
        elif vals:
            lo, hi, method = (*bootstrap_mean_ci(vals, seed), BOOTSTRAP)
        metrics.append(Metric(f"{scale}_sum", total, None, None, len(vals), None, protocol, None))
        metrics.append(Metric(f"{scale}_mean", mean, lo, hi, len(vals), "items", protocol, None, method))
        subjects[scale] = {"n": len(items), "answered": len(vals), "sum": total, "mean": mean}
    return metrics, subjects
