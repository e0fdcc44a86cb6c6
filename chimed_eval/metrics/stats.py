"""Seeded bootstrap confidence intervals."""

from __future__ import annotations

from typing import Sequence

import numpy as np

N_BOOT = 2000


def bootstrap_mean_ci(values: Sequence[float], seed: int, n_boot: int = N_BOOT, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (items resampled with replacement)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    a = (1.0 - level) / 2.0
    return float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a))


def bootstrap_macro_ci(groups: Sequence[Sequence[float]], seed: int, n_boot: int = N_BOOT, level: float = 0.95) -> tuple[float, float]:
    """Interval of the unweighted mean of group means, resampling items within each group
    (a stratified bootstrap: the subject sizes stay fixed, as in the benchmark)."""
    groups = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not groups:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    acc = np.zeros(n_boot)
    for g in groups:
        idx = rng.integers(0, g.size, size=(n_boot, g.size))
        acc += g[idx].mean(axis=1)
    acc /= len(groups)
    a = (1.0 - level) / 2.0
    return float(np.quantile(acc, a)), float(np.quantile(acc, 1.0 - a))
