"""Robustness to option order: accuracy under K seeded permutations, CircularEval, position bias.

A permutation ``perm`` says what each shown letter holds: the option shown at position j (letter
``"ABCD"[j]``) is the original option ``perm[j]``. Predictions and gold are always stored as
*original* option indices, so the same item can be compared across permutations; the shown letter
of a prediction is ``perm.index(predicted)``.

Figures (percentages):

* ``acc_shuffled``: the mean over items of the item's accuracy over its permutations (with equal
  K per item, the accuracy over all (item, permutation) pairs). Named apart from the task's
  ``acc`` (the unshuffled pass) so the two never share a column. The interval is Wilson's over
  items (n = items, not pairs, since an item's permutations are not independent; conservative for
  shares, :mod:`chimed_eval.metrics.stats`), as is ``circular_acc``'s and ``all_orders_acc``'s.
* ``circular_acc``: the share of items right under *every* one of their n rotations
  (:func:`rotations`, each item's own n): OpenCompass's CircularEval. The name is given only when
  every item was shown exactly its n rotations (:func:`is_circular`); otherwise the same share is
  ``all_orders_acc`` (right under all K sampled orders), which is not CircularEval: sampled orders
  can leave the gold at A every time, so a model that always answers A scores above 0.
* ``pred_share_A``, ``pred_share_B``, ...: the share of answered (item, permutation) pairs whose
  predicted *shown* letter is that letter (a multi-option prediction gives each of its letters
  1/|P| of a vote, so the shares sum to 100). Unanswered pairs are left out (the extraction
  failure rate reports them).
* ``position_bias``: max over letters of (share - the share a position-blind model would give that
  letter), in percentage points. The position-blind share of letter X is the mean over answered
  pairs of 1/n_options when X exists in that item, so with n options everywhere it is 100/n: 0
  means no letter is favoured; 100 - 100/n means the same letter every time (SmolLM2 answering A
  on 1,164 of 1,166 four-option items: 99.8 - 25 = 74.8). Interval: items resampled, for the
  letter that is most favoured on the full data.
"""

from __future__ import annotations

import hashlib
import math
import random
import string
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from chimed_eval.core.types import Metric

LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class PermutedResult:
    """One item scored under one permutation of its options.

    ``permutation[j]`` is the original index of the option shown as letter j; ``predicted`` is the
    original index (or indices, for a multi-answer prediction) the model chose, None when nothing
    was extracted; ``gold`` the original index or indices. Right means the predicted set equals the
    gold set (for single-answer items: the predicted option is the gold one).
    """

    item_id: str
    perm_index: int
    permutation: tuple[int, ...]
    predicted: int | tuple[int, ...] | None
    gold: int | tuple[int, ...]

    def __post_init__(self) -> None:
        if sorted(self.permutation) != list(range(len(self.permutation))):
            raise ValueError(f"item {self.item_id} permutation {self.perm_index}: {self.permutation} "
                             "is not a permutation of 0..n-1")
        for name, v in (("predicted", self.predicted), ("gold", self.gold)):
            if v is not None and not all(0 <= i < len(self.permutation) for i in _as_tuple(v)):
                raise ValueError(f"item {self.item_id} permutation {self.perm_index}: {name} {v} out of range "
                                 f"for {len(self.permutation)} options")

    @property
    def correct(self) -> bool:
        return self.predicted is not None and set(_as_tuple(self.predicted)) == set(_as_tuple(self.gold))

    @property
    def shown_letters(self) -> tuple[int, ...]:
        """Positions (0 = A) at which the predicted options were shown; empty when unanswered."""
        return () if self.predicted is None else tuple(self.permutation.index(i) for i in _as_tuple(self.predicted))


def _as_tuple(v: int | tuple[int, ...]) -> tuple[int, ...]:
    return (v,) if isinstance(v, int) else tuple(v)


def rotations(n_options: int) -> tuple[tuple[int, ...], ...]:
    """The n rotations, rotation r showing original option (j + r) mod n at position j (ABCD,
    BCDA, CDAB, DABC): OpenCompass's CircularEval, each option shown once at every letter."""
    if n_options < 1:
        raise ValueError(f"rotations: n_options {n_options} < 1")
    return tuple(tuple((j + r) % n_options for j in range(n_options)) for r in range(n_options))


def permutations(n_options: int, k: int, seed: int, item_id: str) -> tuple[tuple[int, ...], ...]:
    """K sampled option orders of an item: the identity first, then k - 1 further distinct
    permutations drawn from a ``random.Random`` seeded with sha256(f"{seed}:{item_id}"), so each
    item has its own orders and a rerun or a resume gets the same ones (whatever k is: the
    rotations are :func:`rotations`). Raises when k < 1 or k > n_options!.
    """
    if n_options < 1:
        raise ValueError(f"permutations: n_options {n_options} < 1")
    if k < 1 or k > math.factorial(n_options):
        raise ValueError(f"permutations: k = {k}; expected 1..{math.factorial(n_options)} for {n_options} options")
    digest = hashlib.sha256(f"{seed}:{item_id}".encode("utf-8")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    identity = tuple(range(n_options))
    out, seen = [identity], {identity}
    while len(out) < k:
        p = list(identity)
        rng.shuffle(p)
        t = tuple(p)
        if t not in seen:
            seen.add(t)
            out.append(t)
    return tuple(out)


def apply_permutation(choices: Sequence[str], permutation: Sequence[int]) -> tuple[str, ...]:
    """The option texts in shown order: shown[j] = choices[permutation[j]]."""
    if len(choices) != len(permutation):
        raise ValueError(f"{len(choices)} choices for a permutation of {len(permutation)}")
    return tuple(choices[i] for i in permutation)


def _by_item(results: Sequence[PermutedResult]) -> dict[str, list[PermutedResult]]:
    items: dict[str, list[PermutedResult]] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for r in results:
        key = (r.item_id, r.perm_index)
        if key in seen:
            raise ValueError(f"item {r.item_id}: permutation {r.perm_index} recorded twice")
        seen.add(key)
        items[r.item_id].append(r)
    return {k: sorted(items[k], key=lambda r: r.perm_index) for k in sorted(items)}  # record order never matters


def is_circular(results: Sequence[PermutedResult]) -> bool:
    """Whether every item was shown exactly its n rotations, once each (its own n): only then is
    the share of items right under every order CircularEval's ``circular_acc``."""
    items = _by_item(results)
    return bool(items) and all(sorted(r.permutation for r in rs) == sorted(rotations(len(rs[0].permutation)))
                               for rs in items.values())


def prediction_shares(results: Sequence[PermutedResult]) -> tuple[dict[str, float], float]:
    """(share of answered pairs per shown letter, in %; position bias in percentage points).
    See the module docstring; with no answered pair: ({}, nan)."""
    counts, expected = _letter_counts(results)
    return _shares(counts, expected)


def _letter_counts(results: Sequence[PermutedResult]) -> tuple[list[float], list[float]]:
    width = max((len(r.permutation) for r in results), default=0)
    counts, expected = [0.0] * width, [0.0] * width
    for r in results:
        shown = r.shown_letters
        if not shown:
            continue
        for j in shown:
            counts[j] += 1.0 / len(shown)
        for j in range(len(r.permutation)):
            expected[j] += 1.0 / len(r.permutation)
    return counts, expected


def _shares(counts: Sequence[float], expected: Sequence[float]) -> tuple[dict[str, float], float]:
    total = sum(counts)
    if total == 0:
        return {}, float("nan")
    shares = {LETTERS[j]: 100.0 * c / total for j, c in enumerate(counts)}
    bias = max(100.0 * (c - e) / total for c, e in zip(counts, expected))
    return shares, bias


def _position_bias_ci(items: Sequence[list[PermutedResult]], seed: int, n_boot: int = 2000) -> tuple[float, float]:
    """Interval of the excess share of the letter that is most favoured on the full data (held
    fixed: a bootstrap of the max over letters is biased upward and its interval can miss the
    estimate when predictions are near uniform)."""
    import numpy as np

    per_item = [_letter_counts(rs) for rs in items]
    width = max(len(c) for c, _ in per_item)
    counts = np.zeros((len(items), width))
    expected = np.zeros((len(items), width))
    for i, (c, e) in enumerate(per_item):
        counts[i, :len(c)] = c
        expected[i, :len(e)] = e
    top = int(np.argmax(counts.sum(axis=0) - expected.sum(axis=0)))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(items), size=(n_boot, len(items)))
    c_b = counts[idx].sum(axis=1)
    total = c_b.sum(axis=1)
    ok = total > 0
    bias = 100.0 * (c_b[ok, top] - expected[idx].sum(axis=1)[ok, top]) / total[ok]
    return float(np.quantile(bias, 0.025)), float(np.quantile(bias, 0.975))


#: which way each figure of :func:`robustness_metrics` is better (:func:`chimed_eval.metrics.metric_direction`):
#: the letter shares are a distribution, with no better side
DIRECTIONS = {"acc_shuffled": "higher", "circular_acc": "higher", "all_orders_acc": "higher", "pred_share_*": None,
              "position_bias": "lower"}


def robustness_metrics(results: Sequence[PermutedResult], seed: int, protocol: str | None = None) -> list[Metric]:
    """``acc_shuffled``, ``circular_acc`` (every item under its n rotations) or else
    ``all_orders_acc``, ``pred_share_<letter>`` and ``position_bias`` (see the module docstring)
    over items scored under their permutations. The shares have no interval; ``acc_shuffled`` and
    ``circular_acc``/``all_orders_acc`` have Wilson intervals, ``position_bias`` a seeded 95%
    bootstrap interval over items (:mod:`chimed_eval.metrics.stats`)."""
    from chimed_eval.metrics.stats import BOOTSTRAP, WILSON, proportion_ci  # numpy, only when figures are computed

    items = _by_item(results)
    if not items:
        return []
    groups = list(items.values())
    n = len(groups)
    item_acc = [sum(r.correct for r in rs) / len(rs) for rs in groups]
    item_all = [float(all(r.correct for r in rs)) for rs in groups]
    out = []
    for name, values, averaging in (("acc_shuffled", item_acc, "items x permutations"),
                                    ("circular_acc" if is_circular(results) else "all_orders_acc", item_all,
                                     "items")):
        lo, hi = proportion_ci(values)
        out.append(Metric(name, 100.0 * sum(values) / n, 100.0 * lo, 100.0 * hi, n, averaging, protocol, None, WILSON))
    shares, bias = prediction_shares(results)
    answered = sum(1 for r in results if r.predicted is not None)
    for letter, share in shares.items():
        out.append(Metric(f"pred_share_{letter}", share, None, None, answered, "answered items x permutations",
                          protocol, None))
    if shares:
        lo, hi = _position_bias_ci(groups, seed)
        out.append(Metric("position_bias", bias, lo, hi, answered, "answered items x permutations", protocol, None,
                          BOOTSTRAP))
    return out
