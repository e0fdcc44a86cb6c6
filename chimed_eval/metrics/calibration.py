"""Calibration of multiple-choice answers: ECE, Brier score and the reliability diagram's data.

Inputs are the per-option log-probabilities already stored with each item (``SampleScore.logprobs``)
and the gold option index. Per item:

* the option probabilities are the softmax of the log-probabilities (so they sum to 1 over the
  options shown, whatever the scoring protocol: letter, or the sum over a continuation's tokens);
* the prediction is the arg-max, ties going to the earlier option (as ``judge_choice`` scores);
* the confidence is the largest probability.

Figures:

* ``ece`` (percentage points, 0..100): expected calibration error with ``n_bins`` (10) equal-width
  bins of confidence, ``sum_b (n_b / N) |acc_b - conf_b|``. **Edge rule**: an item falls in bin
  ``min(floor(conf * n_bins), n_bins - 1)``, i.e. bins are ``[b/10, (b+1)/10)`` and the last one is
  closed, ``[0.9, 1.0]`` (conf * n_bins is computed in floating point). No interval: ECE is a
  binned statistic whose bootstrap is biased upward (a percentile interval can miss the estimate).
* ``brier`` (0..2, not a percentage): the multi-class Brier score, the mean over items of
  ``sum_options (p_i - y_i)^2``, **not** divided by the number of options (Brier's original
  definition; sklearn's ``brier_score_loss`` on multi-class input). For two options it is twice the
  binary Brier score of one option. Seeded 95% bootstrap interval over items (Wilson's on [0, 2]
  when every item has the same score, e.g. one item: :func:`chimed_eval.metrics.stats.mean_ci`).
* the reliability diagram: per bin its edges, count, mean confidence and accuracy (empty bins are
  kept, with None for their means, so the diagram always has ``n_bins`` columns).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from chimed_eval.core.types import Metric

N_BINS = 10

#: The figures here are computed from the model's floating-point outputs, so they carry its
#: rounding: float32 log-probabilities move in their last bits from one CPU (or kernel) to another,
#: and the same run of the same model on another machine gives an ``ece`` that differs by about
#: 1e-6 points (measured: 9.9e-7 between two x86 CPUs on the tiny golden model) though every
#: decision is the same. What such a figure may move by without meaning anything, on its own
#: scale: 1e-6 of a probability, i.e. 1e-4 points of ``ece`` (0..100) and 1e-6 of ``brier``
#: (0..2), a hundred times the move measured and far below the printed precision.
#: ``chimed-eval check`` allows this on top of any tolerance; counts and accuracies stay exact.
#: which way each figure is better (:func:`chimed_eval.metrics.metric_direction`): an error and a loss
DIRECTIONS = {"ece": "lower", "brier": "lower"}
MODEL_FLOAT_NOISE: dict[str, float] = {"ece": 1e-4, "brier": 1e-6}


@dataclass(frozen=True)
class CalibrationBin:
    """One column of the reliability diagram: confidences in [lower, upper) (the last bin closed)."""

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


def valid_logprobs(logprobs: Sequence[float]) -> bool:
    """Whether option log-probabilities can be read as a choice and as probabilities: no NaN, no
    +inf, and at least one option above -inf. An item failing this has no prediction (it counts as
    wrong, :func:`chimed_eval.evidence.kinds.judge_choice`) and is left out of ``ece`` / ``brier``, counted
    in ``invalid_logprob_count`` (:func:`chimed_eval.evidence.expand.expanded_figures`): a NaN compares false
    with everything, so an arg-max over it would pick an option by position, not by the model."""
    xs = [float(x) for x in logprobs]
    return bool(xs) and not any(math.isnan(x) or x == math.inf for x in xs) and any(x > -math.inf for x in xs)


def softmax(logprobs: Sequence[float]) -> tuple[float, ...]:
    """Probabilities from log-probabilities (or any scores), shifted by the max for stability."""
    if not logprobs:
        raise ValueError("softmax of no options")
    m = max(logprobs)
    if math.isinf(m) and m < 0:
        raise ValueError(f"softmax: every option has log-probability {m}")
    e = [math.exp(x - m) for x in logprobs]
    s = sum(e)
    return tuple(x / s for x in e)


def _check(probs: Sequence[Sequence[float]], gold: Sequence[int]) -> None:
    if len(probs) != len(gold):
        raise ValueError(f"{len(probs)} probability rows for {len(gold)} gold answers")
    for i, (p, g) in enumerate(zip(probs, gold)):
        if not 0 <= g < len(p):
            raise ValueError(f"item {i}: gold index {g} out of range for {len(p)} options")
        if abs(sum(p) - 1.0) > 1e-6:
            raise ValueError(f"item {i}: probabilities sum to {sum(p)}, not 1 (use softmax on log-probabilities)")


def _argmax(p: Sequence[float]) -> int:
    return max(range(len(p)), key=lambda i: (p[i], -i))


def bin_index(confidence: float, n_bins: int = N_BINS) -> int:
    """The bin of a confidence: min(floor(conf * n_bins), n_bins - 1)."""
    return min(int(math.floor(confidence * n_bins)), n_bins - 1)


def reliability_bins(probs: Sequence[Sequence[float]], gold: Sequence[int], n_bins: int = N_BINS) -> tuple[CalibrationBin, ...]:
    """The reliability diagram's data: per equal-width confidence bin, count, mean confidence and
    accuracy (fractions, 0..1)."""
    _check(probs, gold)
    conf = [[] for _ in range(n_bins)]  # type: list[list[float]]
    right = [[] for _ in range(n_bins)]  # type: list[list[float]]
    for p, g in zip(probs, gold):
        b = bin_index(max(p), n_bins)
        conf[b].append(max(p))
        right[b].append(float(_argmax(p) == g))
    return tuple(CalibrationBin(b / n_bins, (b + 1) / n_bins, len(conf[b]),
                                sum(conf[b]) / len(conf[b]) if conf[b] else None,
                                sum(right[b]) / len(right[b]) if right[b] else None)
                 for b in range(n_bins))


def expected_calibration_error(bins: Sequence[CalibrationBin]) -> float:
    """sum_b (n_b / N) |acc_b - conf_b| as a fraction (0..1); nan with no items."""
    n = sum(b.count for b in bins)
    if n == 0:
        return float("nan")
    return sum(b.count / n * abs(b.accuracy - b.mean_confidence) for b in bins if b.count)  # type: ignore[operator]


def brier_scores(probs: Sequence[Sequence[float]], gold: Sequence[int]) -> list[float]:
    """Per item: sum over options of (p_i - y_i)^2 (0..2)."""
    _check(probs, gold)
    return [sum((pi - float(i == g)) ** 2 for i, pi in enumerate(p)) for p, g in zip(probs, gold)]


def calibration_metrics(logprobs: Sequence[Sequence[float]], gold: Sequence[int], seed: int,
                        protocol: str | None = None, n_bins: int = N_BINS) -> tuple[list[Metric], tuple[CalibrationBin, ...]]:
    """(``ece`` and ``brier`` Metrics, the reliability bins) from per-item option log-probabilities
    and gold indices; see the module docstring for units and rules."""
    from chimed_eval.metrics.stats import mean_ci  # numpy, only when figures are computed

    probs = [softmax(lp) for lp in logprobs]
    bins = reliability_bins(probs, gold, n_bins)
    if not probs:
        return [], bins
    briers = brier_scores(probs, gold)
    lo, hi, method = mean_ci(briers, seed, 0.0, 2.0)
    n = len(probs)
    return [Metric("ece", 100.0 * expected_calibration_error(bins), None, None, n, f"items, {n_bins} equal-width bins",
                   protocol, None),
            Metric("brier", sum(briers) / n, lo, hi, n, "items", protocol, None, method)], bins
