"""Multiple-answer questions (CMExam, CMB): exact set match and per-option F1, with intervals.

Two figures, both over items, both percentages:

* ``acc_exact_set``: an item scores 1 only when the set of predicted options equals the gold set
  (the official CMExam and CMB rule: ``ABD`` against gold ``ABD`` is right, ``AB`` or ``ABCD`` is
  wrong). On a single-answer item it is ordinary accuracy.
* ``option_f1``: partial credit, the F1 of the predicted option set against the gold set,
  ``2 |P ∩ G| / (|P| + |G|)`` (precision |P ∩ G| / |P|, recall |P ∩ G| / |G|). An empty prediction
  (nothing extracted) scores 0 against a non-empty gold; both empty scores 1. It is *not* the
  official figure; it shows how far from right the wrong answers are.

Options are 0-based indices (A = 0). Parsing letters out of a generation is the extractor's job
(:mod:`chimed_eval.extract.text`); :func:`letters_to_set` only reads a stored gold or prediction such as
``"ABD"``.
"""

from __future__ import annotations

from typing import Collection, Iterable, Sequence

from chimed_eval.core.types import Metric

OptionSet = frozenset[int]


def letters_to_set(letters: str) -> OptionSet:
    """``"ABD"`` -> {0, 1, 3}. Only ASCII capitals are accepted: anything else (spaces, commas,
    full-width letters) is an extraction matter and raises, so a malformed record is not scored."""
    bad = [c for c in letters if not ("A" <= c <= "Z")]
    if bad:
        raise ValueError(f"option letters {letters!r}: expected capitals A-Z only, got {bad!r}")
    return frozenset(ord(c) - ord("A") for c in letters)


def as_option_set(value: int | str | Iterable[int] | None) -> OptionSet:
    """An option set from an index, a letter string (``"ABD"``), an iterable of indices, or None
    (no answer: the empty set)."""
    if value is None:
        return frozenset()
    if isinstance(value, bool):
        raise TypeError(f"option {value!r}: expected an index, letters or indices, not a bool")
    if isinstance(value, int):
        return frozenset((value,))
    if isinstance(value, str):
        return letters_to_set(value)
    out = frozenset(int(v) for v in value)
    if any(v < 0 for v in out):
        raise ValueError(f"option indices {sorted(out)}: negative index")
    return out


def exact_set_match(pred: Collection[int], gold: Collection[int]) -> float:
    """1.0 when the predicted option set equals the gold set, else 0.0."""
    return float(frozenset(pred) == frozenset(gold))


def option_f1(pred: Collection[int], gold: Collection[int]) -> float:
    """F1 of the predicted option set against the gold set: 2|P∩G| / (|P| + |G|); 1.0 when both
    are empty."""
    p, g = frozenset(pred), frozenset(gold)
    if not p and not g:
        return 1.0
    return 2.0 * len(p & g) / (len(p) + len(g))


#: which way each figure is better (:func:`chimed_eval.metrics.metric_direction`), with the
#: ``_macro``/``_multi`` figures :mod:`chimed_eval.evidence.multi_choice` builds from them
DIRECTIONS = {"acc_exact_set*": "higher", "option_f1*": "higher"}
#: the headline figures (the console's default rows; names or patterns): several answers: exact set match (official) and option F1
HEADLINE = ("acc_exact_set_macro", "acc_exact_set", "option_f1")


def multi_answer_metrics(preds: Sequence[int | str | Iterable[int] | None],
                         golds: Sequence[int | str | Iterable[int]],
                         seed: int, protocol: str | None = None) -> list[Metric]:
    """``acc_exact_set`` and ``option_f1`` (percentages, averaged over items) with 95% intervals
    (Wilson for the exact-set proportion; option F1's by :func:`chimed_eval.metrics.stats.mean_ci`).
    ``preds[i]`` and ``golds[i]`` are anything
    :func:`as_option_set` reads; a None prediction is an empty set (wrong)."""
    from chimed_eval.metrics.stats import figure_ci  # numpy, only when figures are computed

    if len(preds) != len(golds):
        raise ValueError(f"{len(preds)} predictions for {len(golds)} gold answers")
    if not golds:
        return []
    pairs = [(as_option_set(p), as_option_set(g)) for p, g in zip(preds, golds)]
    out = []
    for name, fn in (("acc_exact_set", exact_set_match), ("option_f1", option_f1)):
        values = [fn(p, g) for p, g in pairs]
        lo, hi, method = figure_ci(values, seed, proportion=fn is exact_set_match)
        out.append(Metric(name, 100.0 * sum(values) / len(values), 100.0 * lo, 100.0 * hi, len(values),
                          "items", protocol, None, method))
    return out
