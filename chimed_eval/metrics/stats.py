"""Confidence intervals of the reported figures, and the name of the method behind each one
(results.json's ``ci_method``). All intervals are 95%.

* ``wilson`` (:func:`wilson`, :func:`proportion_ci`): the Wilson score interval of a proportion,
  for figures that are a mean over items of per-item scores of right/wrong: ``acc``,
  ``acc_exact_set``, ``circular_acc``, ``maj@K``, and the contamination rate of ``chimed-eval
  contamination`` (one implementation for both parts of the tool). Unlike the percentile bootstrap
  it leaves 0% and 100% and has width at n = 1 (1 of 1 right: [20.65, 100]). Where the per-item
  score is a share of several right/wrong outcomes (``acc_shuffled``: of K orders; ``avg@K``,
  ``pass@1``: of K samples) the same formula takes the sum of the shares as the successes: a
  value in [0, 1] with mean p has variance at most p(1 - p) (the Bhatia-Davis inequality), so
  the interval is conservative, never narrower than the data allow.
* ``wilson-mover`` (:func:`macro_proportion_ci`): the unweighted mean over subjects of their
  proportions (``acc_macro``): each subject's Wilson interval combined by MOVER (the method of
  variance estimates recovery, Zou & Donner 2008; Newcombe's method for sums of proportions):
  ``L - sqrt(sum_g (p_g - l_g)^2) / G`` to ``L + sqrt(sum_g (u_g - p_g)^2) / G``. With one subject
  it is that subject's Wilson interval; it cannot collapse at 0% or 100%.
* ``bootstrap`` (:func:`bootstrap_mean_ci`, :func:`bootstrap_macro_ci`): the seeded percentile
  bootstrap (2,000 resamples of the items; within each subject for a macro figure), for figures
  that are not proportions (ROUGE, option F1, Brier, scale means, AUC, NER F1, BLEU). For a mean
  of per-item scores with a known range :func:`mean_ci` corrects it where it collapses: when every
  score sits at an end of the range (right/wrong data) or all are equal (n = 1; a model that always
  answers alike), the interval is Wilson's on the scores rescaled to [0, 1] (a bootstrap of
  identical values has zero width); :func:`macro_ci` likewise takes MOVER-Wilson for right/wrong
  data. Corpus-level figures (BLEU, NER F1: ratios of summed counts) and the AUC keep the plain
  bootstrap, which can still have zero width when every record is perfect.

Every interval depends on the items, never on the order of the samples file: the bootstrap sorts
the values before it draws (the mean of a resample depends only on which values it holds) and
walks subjects in name order; callers that resample rows (NER, AUC, position bias) get the
records sorted by item id (:func:`chimed_eval.engine.runner.task_result`).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

N_BOOT = 2000
Z95 = 1.959964  # the 97.5% normal point, to 6 decimals (what the contamination report used)
WILSON, WILSON_MOVER, BOOTSTRAP = "wilson", "wilson-mover", "bootstrap"
CI_METHODS = (WILSON, WILSON_MOVER, BOOTSTRAP)
#: below this many items a group's figure is flagged (membership AUC per group, per-subject and
#: other small-n figures): its interval, whatever the method, rests on too few items to trust.
MIN_GROUP_SIZE = 10


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval (fractions, 0..1) of ``successes`` out of ``n``; None for n = 0."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)  # exactly 0 (1) at 0/n (n/n), not 1e-18 off
    hi = 1.0 if successes >= n else min(1.0, centre + half)
    return lo, hi


def _unit(values: Sequence[float]) -> list[float]:
    x = [float(v) for v in values]
    bad = [v for v in x if not 0.0 <= v <= 1.0]
    if bad:
        raise ValueError(f"a proportion's per-item scores lie in [0, 1], got {bad[0]!r}")
    return x


def is_binary(values: Sequence[float]) -> bool:
    """Whether every value is 0 or 1 (right/wrong outcomes)."""
    return all(v == 0.0 or v == 1.0 for v in values)


def proportion_ci(values: Sequence[float]) -> tuple[float, float]:
    """Wilson interval (fractions) of the mean of per-item scores in [0, 1]; (nan, nan) for none.
    Order-free and unseeded (see the module docstring for shares of several outcomes)."""
    x = _unit(values)
    ci = wilson(math.fsum(x), len(x))
    return ci if ci is not None else (float("nan"), float("nan"))


def macro_proportion_ci(groups: Mapping[str, Sequence[float]]) -> tuple[float, float]:
    """MOVER-Wilson interval (fractions) of the unweighted mean over groups of their mean score in
    [0, 1]; empty groups are left out, (nan, nan) with none."""
    rows = [_unit(groups[k]) for k in sorted(groups) if len(groups[k])]
    if not rows:
        return (float("nan"), float("nan"))
    lows, highs, means = [], [], []
    for x in rows:
        p = math.fsum(x) / len(x)
        lo, hi = wilson(math.fsum(x), len(x))  # type: ignore[misc]
        means.append(p)
        lows.append((p - lo) ** 2)
        highs.append((hi - p) ** 2)
    g = len(rows)
    macro = math.fsum(means) / g
    return max(0.0, macro - math.sqrt(math.fsum(lows)) / g), min(1.0, macro + math.sqrt(math.fsum(highs)) / g)


def bootstrap_mean_ci(values: Sequence[float], seed: int, n_boot: int = N_BOOT, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (items resampled with replacement;
    the values sorted first, so the interval does not depend on their order)."""
    import numpy as np  # only when figures are computed (``chimed-eval --help`` stays light)

    x = np.sort(np.asarray(values, dtype=np.float64))
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    a = (1.0 - level) / 2.0
    return float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a))


def bootstrap_macro_ci(groups: Mapping[str, Sequence[float]], seed: int, n_boot: int = N_BOOT,
                       level: float = 0.95) -> tuple[float, float]:
    """Interval of the unweighted mean of group means, resampling items within each group
    (a stratified bootstrap: the subject sizes stay fixed, as in the benchmark). Groups are
    walked in name order and their values sorted, so neither the file's order matters."""
    import numpy as np

    rows = [np.sort(np.asarray(groups[k], dtype=np.float64)) for k in sorted(groups) if len(groups[k])]
    if not rows:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    acc = np.zeros(n_boot)
    for g in rows:
        idx = rng.integers(0, g.size, size=(n_boot, g.size))
        acc += g[idx].mean(axis=1)
    acc /= len(rows)
    a = (1.0 - level) / 2.0
    return float(np.quantile(acc, a)), float(np.quantile(acc, 1.0 - a))


def mean_ci(values: Sequence[float], seed: int, low: float = 0.0, high: float = 1.0) -> tuple[float, float, str]:
    """(low, high, method) for the mean of per-item scores in [low, high] that are not a proportion
    (option F1, ROUGE, Brier on [0, 2], a scale's points): the bootstrap, except where it has
    nothing to resample or sits at the edge: when every score is equal (n = 1, a model that always
    answers alike) or at one of the two ends of the range, Wilson's interval of the scores rescaled
    to [0, 1] (exact for right/wrong data, conservative otherwise: see the module docstring)."""
    span = high - low
    x = [min(1.0, max(0.0, (float(v) - low) / span)) for v in values] if span > 0 else []
    if x and (is_binary(x) or max(x) == min(x)):
        lo, hi = proportion_ci(x)
        return low + span * lo, low + span * hi, WILSON
    return (*bootstrap_mean_ci(values, seed), BOOTSTRAP)


def figure_ci(values: Sequence[float], seed: int, proportion: bool) -> tuple[float, float, str]:
    """(low, high, method) for a mean over items of per-item scores in [0, 1]: Wilson for a
    proportion (right/wrong, or shares of right/wrong outcomes), else :func:`mean_ci`."""
    if proportion:
        return (*proportion_ci(values), WILSON)
    return mean_ci(values, seed)


def macro_ci(groups: Mapping[str, Sequence[float]], seed: int) -> tuple[float, float, str]:
    """(low, high, method) for the unweighted mean over subjects of per-item scores in [0, 1]:
    MOVER-Wilson when every score is 0 or 1, else the stratified bootstrap."""
    if all(is_binary(v) for v in groups.values()):
        return (*macro_proportion_ci(groups), WILSON_MOVER)
    return (*bootstrap_macro_ci(groups, seed), BOOTSTRAP)
