"""Judge biases: position, length, self-preference; and win rates with and without length control.

Pairwise verdicts come in *position terms* (``"A"`` = the answer shown first, ``"B"``, ``"tie"``,
``None`` = invalid, as :func:`.parse.parse_pairwise` gives them). Every comparison of a candidate
with a baseline is judged twice: ``first`` with the candidate shown as A, ``second`` with the two
swapped (candidate shown as B), still in position terms. :func:`combine_orders` maps both to the
candidate's *outcome* (``"win"``/``"loss"``/``"tie"``) and combines them as MT-Bench does:

- both valid and the same outcome -> that outcome, not a flip;
- both valid and different (the verdict changed with position, including win against tie) ->
  ``"tie"``, a flip;
- either order invalid -> ``(None, False)``: excluded from every figure, never scored as a loss.

Figures (rates are fractions in [0, 1]; win rates are percentages, as AlpacaEval reports them):

- :func:`flip_rate`: flips / comparisons with both orders valid.
- :func:`position_preference`: of the valid single-order verdicts that name a winner (``A`` or
  ``B``; ties left out), the share that named the first-shown answer. 0.5 = no preference.
- :func:`win_rate`: 100 * (wins + 0.5 * ties) / valid outcomes; :func:`win_rate_ci` its seeded
  percentile bootstrap (:func:`chimed_eval.metrics.stats.bootstrap_mean_ci`).
- :func:`length_correlation`: Spearman's rho (average ranks for ties) of scores with answer lengths.
- :func:`length_controlled_win_rate`: AlpacaEval 2's length control (Dubois et al. 2024), simplified:
  a logistic regression of the candidate's outcome (win 1, tie 0.5, loss 0: fractional targets) on
  z = (len_candidate - len_baseline) / sd, sd the population standard deviation of that difference
  (not centred, so z = 0 means equal lengths), fitted by Newton's method (IRLS) with a ridge
  penalty :data:`LC_RIDGE` on the slope only (it keeps the fit finite when the judge always picks
  the longer answer); LC win rate = 100 * sigmoid(intercept), the predicted win rate at equal
  length. It extrapolates when the candidate is longer (or shorter) in nearly every comparison.
- :func:`leniency`: a judge's mean excess over the other judges on the same answers.
- :func:`self_preference` / :func:`pairwise_self_preference`: see their docstrings; self-preference
  is told apart from leniency only when the judge also graded other models' answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Mapping, Sequence

Outcome = Literal["win", "loss", "tie"]
OUTCOME_VALUE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
LC_RIDGE = 1.0
_FIRST = {"A": "win", "B": "loss", "tie": "tie"}  # candidate shown as A
_SECOND = {"A": "loss", "B": "win", "tie": "tie"}  # candidate shown as B


def _check(verdict: str | None) -> None:
    if verdict is not None and verdict not in _FIRST:
        raise ValueError(f"pairwise verdict must be 'A', 'B', 'tie' or None, not {verdict!r}")


def combine_orders(first: str | None, second_swapped: str | None) -> tuple[Outcome | None, bool]:
    """(candidate outcome, flipped) from the two orders' position-term verdicts (module docstring)."""
    _check(first)
    _check(second_swapped)
    if first is None or second_swapped is None:
        return None, False
    o1, o2 = _FIRST[first], _SECOND[second_swapped]
    return (o1, False) if o1 == o2 else ("tie", True)  # type: ignore[return-value]


def flip_rate(pairs: Iterable[tuple[str | None, str | None]]) -> float:
    """Share of comparisons, among those valid in both orders, whose verdict changed with position (NaN if none)."""
    results = [combine_orders(a, b) for a, b in pairs]
    valid = [flipped for outcome, flipped in results if outcome is not None]
    return sum(valid) / len(valid) if valid else float("nan")


def position_preference(pairs: Iterable[tuple[str | None, str | None]]) -> float:
    """Share of valid single-order verdicts naming a winner that named the first-shown answer (NaN if none)."""
    decisive = []
    for pair in pairs:
        for v in pair:
            _check(v)
            if v in ("A", "B"):
                decisive.append(v == "A")
    return sum(decisive) / len(decisive) if decisive else float("nan")


def _values(outcomes: Sequence[str | None]) -> list[float]:
    for o in outcomes:
        if o is not None and o not in OUTCOME_VALUE:
            raise ValueError(f"outcome must be 'win', 'loss', 'tie' or None, not {o!r}")
    return [OUTCOME_VALUE[o] for o in outcomes if o is not None]


def win_rate(outcomes: Sequence[str | None]) -> float:
    """100 * (wins + 0.5 * ties) / valid outcomes; ``None`` outcomes left out; NaN when none is valid."""
    v = _values(outcomes)
    return 100.0 * sum(v) / len(v) if v else float("nan")


def win_rate_ci(outcomes: Sequence[str | None], seed: int) -> tuple[float, float]:
    """Seeded 95% percentile bootstrap interval of :func:`win_rate` (valid outcomes resampled)."""
    from chimed_eval.metrics.stats import bootstrap_mean_ci

    return bootstrap_mean_ci([100.0 * x for x in _values(outcomes)], seed=seed)


def _ranks(x):  # noqa: ANN001, ANN202 - numpy array in, numpy array out
    import numpy as np

    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x))
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of 1-based ranks start+1..end
            start = end
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of average ranks. NaN for fewer than 2 items or a constant side."""
    import numpy as np

    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} values against {len(y)}")
    if len(x) < 2:
        return float("nan")
    rx, ry = _ranks(np.asarray(x, dtype=np.float64)), _ranks(np.asarray(y, dtype=np.float64))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum()) / denom if denom > 0 else float("nan")


def length_correlation(scores: Sequence[float | None], lengths: Sequence[int]) -> tuple[float, int]:
    """(Spearman's rho of valid scores with answer lengths, items used); ``None`` scores left out."""
    if len(scores) != len(lengths):
        raise ValueError(f"length_correlation: {len(scores)} scores against {len(lengths)} lengths")
    kept = [(s, n) for s, n in zip(scores, lengths) if s is not None]
    return spearman([s for s, _ in kept], [n for _, n in kept]), len(kept)


def _fit_logistic(z, y, ridge: float, max_iter: int = 100) -> tuple[float, float]:  # noqa: ANN001
    """Intercept and slope of a logistic regression with fractional targets, by Newton's method."""
    import numpy as np

    x = np.column_stack([np.ones_like(z), z])
    beta = np.zeros(2)
    penalty = np.diag([1e-9, ridge])  # the tiny intercept term only keeps the Hessian invertible
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -50, 50)))
        grad = x.T @ (y - p) - penalty @ beta
        hess = x.T @ (x * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def length_controlled_win_rate(outcomes: Sequence[str | None], len_candidate: Sequence[int],
                               len_baseline: Sequence[int], ridge: float = LC_RIDGE) -> float:
    """100 * sigmoid(intercept) of the length model in the module docstring; invalid outcomes left out.

    NaN when no outcome is valid. When every valid outcome is the same (all wins, say) or every
    length difference is the same, there is nothing to control and the raw win rate is returned.
    """
    import numpy as np

    if not len(outcomes) == len(len_candidate) == len(len_baseline):
        raise ValueError("length_controlled_win_rate: outcomes and both length lists must have one entry per comparison")
    keep = [i for i, o in enumerate(outcomes) if o is not None]
    y = np.asarray(_values([outcomes[i] for i in keep]))
    if y.size == 0:
        return float("nan")
    d = np.asarray([len_candidate[i] - len_baseline[i] for i in keep], dtype=np.float64)
    sd = float(d.std())
    if np.all(y == y[0]) or sd == 0:
        return 100.0 * float(y.mean())
    intercept, _ = _fit_logistic(d / sd, y, ridge)
    return 100.0 / (1.0 + math.exp(-intercept))


@dataclass(frozen=True)
class SelfPreference:
    """How much more a judge favours its own model's answers than the other judges do.

    ``own``: the judge's mean on its own model's answers; ``peers``: the other judges' mean on the
    same answers; ``delta`` = ``own`` - ``peers`` with its bootstrap ``ci``, over ``n`` answers:
    leniency and self-preference together. ``leniency``: the same difference on the other models'
    answers (``n_other`` of them), i.e. how generous the judge is in general; ``net`` = ``delta`` -
    ``leniency``, the part that is self-preference rather than leniency, with ``net_ci`` (a
    stratified bootstrap: each group's answers resampled within the group). NaN where no answer
    qualifies: ``leniency`` and ``net`` are NaN when the judge graded no other model's answer
    (then self-preference cannot be told apart from leniency).
    """

    judge: str
    own: float
    peers: float
    delta: float
    ci: tuple[float, float]
    n: int
    leniency: float
    n_other: int
    net: float
    net_ci: tuple[float, float] = (float("nan"), float("nan"))


def _paired(values_by_judge: Mapping[str, Mapping[str, float | None]], judge: str,
            ids: Iterable[str]) -> tuple[list[float], list[float]]:
    """(judge's value, mean of the other judges' values) per id where both exist."""
    mine, theirs = [], []
    for i in ids:
        v = values_by_judge[judge].get(i)
        others = [vals.get(i) for j, vals in values_by_judge.items() if j != judge]
        others = [o for o in others if o is not None and not math.isnan(o)]
        if v is None or math.isnan(v) or not others:
            continue
        mine.append(float(v))
        theirs.append(sum(others) / len(others))
    return mine, theirs


def _self_pref(values_by_judge: Mapping[str, Mapping[str, float | None]], producer: Mapping[str, str],
               judge: str, judge_model: str | None, seed: int) -> SelfPreference:
    from chimed_eval.metrics.stats import bootstrap_macro_ci, bootstrap_mean_ci

    if judge not in values_by_judge:
        raise ValueError(f"self-preference: no verdicts of judge {judge!r} (judges: {', '.join(sorted(values_by_judge))})")
    model = judge if judge_model is None else judge_model
    own_ids = [i for i, m in producer.items() if m == model]
    mine, theirs = _paired(values_by_judge, judge, own_ids)
    om, ot = _paired(values_by_judge, judge, [i for i, m in producer.items() if m != model])
    nan = float("nan")
    mean = lambda xs: sum(xs) / len(xs) if xs else nan  # noqa: E731
    diffs = [a - b for a, b in zip(mine, theirs)]
    other = [a - b for a, b in zip(om, ot)]
    delta, leniency = mean(diffs), mean(other)
    ci = bootstrap_mean_ci(diffs, seed=seed) if diffs else (nan, nan)
    # net = mean(diffs) - mean(other) = the mean of the two group means of 2 * diffs and -2 * other
    net_ci = (bootstrap_macro_ci({"own": [2 * d for d in diffs], "other": [-2 * d for d in other]}, seed=seed)
              if diffs and other else (nan, nan))
    return SelfPreference(judge, mean(mine), mean(theirs), delta, ci, len(diffs), leniency, len(om), delta - leniency,
                          net_ci)


def leniency(values_by_judge: Mapping[str, Mapping[str, float | None]], judge: str,
             seed: int = 0) -> tuple[float, tuple[float, float], int]:
    """(mean, bootstrap interval, n) of ``judge``'s value minus the other judges' mean value, per
    answer that ``judge`` and at least one other judge scored: how much more generous it is than
    the panel on the same answers. NaN (n = 0) with no other judge or no shared answer."""
    from chimed_eval.metrics.stats import bootstrap_mean_ci

    ids = list(values_by_judge.get(judge, {}))
    mine, theirs = _paired(values_by_judge, judge, ids)
    diffs = [a - b for a, b in zip(mine, theirs)]
    if not diffs:
        return float("nan"), (float("nan"), float("nan")), 0
    return sum(diffs) / len(diffs), bootstrap_mean_ci(diffs, seed=seed), len(diffs)


def self_preference(scores_by_judge: Mapping[str, Mapping[str, float | None]], producer: Mapping[str, str],
                    judge: str, judge_model: str | None = None, seed: int = 0) -> SelfPreference:
    """Pointwise self-preference of ``judge`` (:class:`SelfPreference`).

    ``scores_by_judge[j][answer_id]``: judge j's overall score of that answer (``None`` = invalid);
    ``producer[answer_id]``: the model that wrote it; ``judge_model``: the judge's name among the
    producers (default ``judge``). An answer counts when ``judge`` and at least one other judge gave
    it a valid score; per answer the other judges' scores are averaged, then the paired differences.
    """
    return _self_pref(scores_by_judge, producer, judge, judge_model, seed)


def pairwise_self_preference(outcomes_by_judge: Mapping[str, Mapping[str, str | None]], candidate: Mapping[str, str],
                             judge: str, judge_model: str | None = None, seed: int = 0) -> SelfPreference:
    """Pairwise self-preference: the judge's win rate for its own model minus the other judges' (percentage points).

    ``outcomes_by_judge[j][comparison_id]``: the candidate's combined outcome by judge j
    (:func:`combine_orders`; ``None`` = excluded); ``candidate[comparison_id]``: the candidate model
    (all compared with the same baseline). ``own``/``peers`` are win rates (wins + half the ties, in %).
    """
    values = {j: {i: None if o is None else 100.0 * _values([o])[0] for i, o in outs.items()}
              for j, outs in outcomes_by_judge.items()}
    return _self_pref(values, candidate, judge, judge_model, seed)
