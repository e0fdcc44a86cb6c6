"""Agreement between judges, and a panel's one verdict per item. Pure functions (numpy only).

- :func:`cohen_kappa`: two raters, kappa = 1 - sum(w * O) / sum(w * E), where O is the observed
  joint distribution over the label set, E the product of the two raters' marginals, and w the
  disagreement weight of labels i, j at positions i, j of the label order: 1 for i != j
  (unweighted), |i - j| (linear) or (i - j)^2 (quadratic); the same figure as
  ``sklearn.metrics.cohen_kappa_score``.
- :func:`krippendorff_alpha`: any number of judges, missing ratings allowed; the coincidence-matrix
  definition of Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability":
  alpha = 1 - (n - 1) * sum_ck o_ck d_ck / sum_ck n_c n_k d_ck, with o the coincidence matrix of
  the pairable values (units with at least two values; each unit's pairs weighted 1 / (m_u - 1)),
  n_c its margins, n the number of pairable values, and d the squared difference function:
  nominal 0/1, interval (c - k)^2, ordinal (sum of n_g for g from c to k, minus (n_c + n_k) / 2)^2.
- :func:`majority` and :func:`mean_scores`: one item's votes or scores from a panel of judges.

Both coefficients are NaN when undefined: no usable item, or no expected disagreement (every
rating the same value, so chance agreement is already perfect).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Hashable, Literal, Sequence

Level = Literal["nominal", "ordinal", "interval"]


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def cohen_kappa(a: Sequence[Hashable | None], b: Sequence[Hashable | None],
                weights: Literal[None, "linear", "quadratic"] = None, labels: Sequence[Hashable] | None = None) -> float:
    """Cohen's kappa of two raters over the same items (rule in the module docstring).

    Items where either rating is ``None`` (or a float NaN) are dropped. ``labels`` fixes the label
    order that the linear and quadratic weights use (default: the sorted observed labels); a rating
    not in ``labels`` is a ``ValueError``. NaN when no item is left or the expected disagreement is 0.
    """
    import numpy as np

    if len(a) != len(b):
        raise ValueError(f"cohen_kappa: {len(a)} ratings against {len(b)}")
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"cohen_kappa: weights must be None, 'linear' or 'quadratic', not {weights!r}")
    pairs = [(x, y) for x, y in zip(a, b) if not _missing(x) and not _missing(y)]
    if not pairs:
        return float("nan")
    order = list(labels) if labels is not None else sorted({v for p in pairs for v in p})
    index = {v: i for i, v in enumerate(order)}
    k = len(order)
    observed = np.zeros((k, k))
    for x, y in pairs:
        if x not in index or y not in index:
            raise ValueError(f"cohen_kappa: rating {x if x not in index else y!r} is not in labels {order!r}")
        observed[index[x], index[y]] += 1
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / len(pairs)
    i, j = np.indices((k, k))
    w = {None: (i != j).astype(float), "linear": np.abs(i - j).astype(float), "quadratic": ((i - j) ** 2).astype(float)}[weights]
    denom = float((w * expected).sum())
    if denom == 0:
        return float("nan")
    return 1.0 - float((w * observed).sum()) / denom


def krippendorff_alpha(ratings: Sequence[Sequence[float | str | None]], level: Level = "interval") -> float:
    """Krippendorff's alpha; ``ratings[judge][item]``, ``None`` (or NaN) = missing (rule in the module docstring).

    Nominal values may be any hashable; ordinal values anything sortable; interval values numbers.
    NaN when fewer than two pairable values, or no expected disagreement.
    """
    import numpy as np

    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError(f"krippendorff_alpha: level must be nominal, ordinal or interval, not {level!r}")
    if not ratings:
        return float("nan")
    n_items = len(ratings[0])
    if any(len(r) != n_items for r in ratings):
        raise ValueError("krippendorff_alpha: every judge needs one rating (or None) per item")
    units = [[r[u] for r in ratings if not _missing(r[u])] for u in range(n_items)]
    units = [vals for vals in units if len(vals) >= 2]
    values = sorted({v for vals in units for v in vals}) if level != "nominal" else list(dict.fromkeys(v for vals in units for v in vals))
    index = {v: i for i, v in enumerate(values)}
    k = len(values)
    o = np.zeros((k, k))
    for vals in units:
        counts = np.zeros(k)
        for v in vals:
            counts[index[v]] += 1
        o += (np.outer(counts, counts) - np.diag(counts)) / (len(vals) - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n < 2:
        return float("nan")
    d = _delta(level, values, n_c)
    expected = float((np.outer(n_c, n_c) * d).sum())
    if expected == 0:
        return float("nan")
    return 1.0 - (n - 1) * float((o * d).sum()) / expected


def _delta(level: Level, values: list, n_c):  # noqa: ANN001 - numpy arrays
    """Squared difference function d[c, k] over the value list (Krippendorff 2011, section C)."""
    import numpy as np

    k = len(values)
    if level == "nominal":
        return 1.0 - np.eye(k)
    if level == "interval":
        x = np.asarray(values, dtype=np.float64)
        return (x[:, None] - x[None, :]) ** 2
    cum = np.concatenate([[0.0], np.cumsum(n_c)])  # cum[i] = sum of n_g for g < i
    i, j = np.indices((k, k))
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    between = cum[hi + 1] - cum[lo]  # sum of n_g for g from c to k
    return (between - (n_c[i] + n_c[j]) / 2.0) ** 2


def majority(votes: Sequence[str | None]) -> str | None:
    """The most frequent valid vote; ``None`` when no vote is valid; ``"tie"`` when the top is shared.

    For pairwise outcomes (``win``/``loss``/``tie``, or ``A``/``B``/``tie``) a split panel is a tie:
    one judge for ``win`` and one for ``loss`` is ``"tie"``, and so is one ``win`` against one ``tie``.
    """
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return None
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return "tie"
    return ranked[0][0]


def mean_scores(scores: Sequence[float | None]) -> float | None:
    """The mean of one item's valid scores from a panel (``None`` and NaN dropped); ``None`` when none is valid."""
    valid = [float(s) for s in scores if not _missing(s)]
    return sum(valid) / len(valid) if valid else None
