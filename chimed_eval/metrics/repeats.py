"""Repeated sampled answers per item (``--repeats K``): avg@K, maj@K, pass@k.

Each item is answered K times with sampled decoding (repeat r seeded per (seed, item, r) by the
caller). Per item, with n = K samples of which c are right:

* ``avg@K``: c / n, the mean correctness of the samples;
* ``maj@K``: the correctness of the majority answer. Votes go to the extracted answers (any
  hashable value: ``"B"``, a frozenset of options, a number); unanswered samples (answer None) do
  not vote, and an item with no answered sample is wrong. **Ties** between equally frequent answers
  go to the answer whose first occurrence has the lowest repeat index, so the vote never depends on
  hashing or dict order. The majority answer's correctness is that of its samples (they carry the
  same answer, hence the same score);
* ``pass@k`` (k <= n): the unbiased estimator of Chen et al. 2021 (Codex), the probability that at
  least one of k samples drawn without replacement from the n is right,
  ``1 - C(n - c, k) / C(n, k)`` (1 when n - c < k).

Each figure is the mean over items, as a percentage, with a 95% Wilson interval over items (a
share of right samples per item: conservative, :mod:`chimed_eval.metrics.stats`). Every item
must have the same number of repeats (a half-finished run is an error here).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Hashable, Sequence

from chimed_eval.core.types import Metric


@dataclass(frozen=True)
class RepeatOutcome:
    """One sampled answer: item, repeat index (0..K-1), the extracted answer (None: nothing
    extracted) and whether it was right."""

    item_id: str
    repeat: int
    answer: Hashable | None
    correct: bool


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. 2021's unbiased pass@k from n samples of which c are right: 1 - C(n-c, k) / C(n, k)."""
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority_answer(answers: Sequence[Hashable | None]) -> Hashable | None:
    """The most frequent non-None answer; ties go to the one seen first; None when none answered."""
    counts: dict[Hashable, int] = {}
    first: dict[Hashable, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        counts[a] = counts.get(a, 0) + 1
        first.setdefault(a, i)
    if not counts:
        return None
    return min(counts, key=lambda a: (-counts[a], first[a]))


def _items(outcomes: Sequence[RepeatOutcome]) -> dict[str, list[RepeatOutcome]]:
    items: dict[str, list[RepeatOutcome]] = defaultdict(list)
    for o in outcomes:
        items[o.item_id].append(o)
    for item, os in items.items():
        reps = sorted(o.repeat for o in os)
        if len(set(reps)) != len(reps):
            raise ValueError(f"item {item}: a repeat index is recorded twice ({reps})")
        os.sort(key=lambda o: o.repeat)
    sizes = {len(os) for os in items.values()}
    if len(sizes) > 1:
        short = min(items, key=lambda i: len(items[i]))
        raise ValueError(f"items have different numbers of repeats {sorted(sizes)} (item {short} has "
                         f"{len(items[short])}); finish the run before scoring repeats")
    return {k: items[k] for k in sorted(items)}  # item order fixed, so the bootstrap does not depend on record order


def item_majority_correct(os: Sequence[RepeatOutcome]) -> float:
    """1.0 when the majority answer of one item's samples (in repeat order) is right."""
    maj = majority_answer([o.answer for o in os])
    if maj is None:
        return 0.0
    return float(next(o.correct for o in os if o.answer == maj))


#: which way each figure of :func:`repeat_metrics` is better (:func:`chimed_eval.metrics.metric_direction`)
DIRECTIONS = {"avg@*": "higher", "maj@*": "higher", "pass@*": "higher"}
#: the headline figures (the console's default rows; names or patterns): repeated sampling
HEADLINE = ("avg@*", "maj@*", "pass@*")


def repeat_metrics(outcomes: Sequence[RepeatOutcome], seed: int, pass_ks: Sequence[int] | None = None,
                   protocol: str | None = None) -> list[Metric]:
    """``avg@K``, ``maj@K`` and ``pass@k`` for each k in ``pass_ks`` (default: k = K) over items,
    as percentages with Wilson intervals over items (names carry K, e.g. ``maj@5``); ``seed`` is
    kept for the callers' signature, Wilson's interval draws nothing."""
    from chimed_eval.metrics.stats import WILSON, proportion_ci  # numpy, only when figures are computed

    items = _items(outcomes)
    if not items:
        return []
    groups = list(items.values())
    k_all = len(groups[0])
    per: list[tuple[str, list[float]]] = [
        (f"avg@{k_all}", [sum(o.correct for o in os) / k_all for os in groups]),
        (f"maj@{k_all}", [item_majority_correct(os) for os in groups]),
    ]
    for k in (pass_ks if pass_ks is not None else (k_all,)):
        per.append((f"pass@{k}", [pass_at_k(k_all, sum(o.correct for o in os), k) for os in groups]))
    out = []
    for name, values in per:
        lo, hi = proportion_ci(values)
        out.append(Metric(name, 100.0 * sum(values) / len(values), 100.0 * lo, 100.0 * hi, len(values), "items",
                          protocol, None, WILSON))
    return out
