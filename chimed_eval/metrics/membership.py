"""Membership scores from the model itself: was this text in its training data?

Per text, from the per-token log-probabilities log p(x_t | x_<t) of its tokens t = 1..n
(``token_logprobs`` requests, :mod:`chimed_eval.backends.token_scores`):

* **Min-K% Prob** (Shi et al. 2024, "Detecting Pretraining Data from Large Language Models",
  ICLR 2024, arXiv:2310.16789): the mean of the lowest k% of the n values log p(x_t | x_<t).
* **Min-K%++** (Zhang et al. 2024, "Min-K%++: Improved Baseline for Detecting Pre-Training Data
  from Large Language Models", ICLR 2025, arXiv:2404.02936): per token
  z_t = (log p(x_t | x_<t) - mu_t) / sigma_t with mu_t = E_{z~p(.|x_<t)}[log p(z | x_<t)] and
  sigma_t^2 = Var_{z~p(.|x_<t)}[log p(z | x_<t)] over the whole vocabulary; the score is the
  mean of the lowest k% of the z_t.

Both: higher = more likely seen. "The lowest k%" are the m = max(1, floor(n * k / 100)) smallest
values (the authors' code takes floor(n * k / 100), which is empty, and its mean NaN, for texts
under 100 / k tokens; here such a text is scored on its lowest token). A token with sigma_t = 0 (a
one-point distribution) has z_t = 0. k defaults to 20, the papers' usual setting.

With items known to be seen (in the training data) or unseen:

* **AUC** (``auc``): the Mann-Whitney statistic, the share of (seen, unseen) pairs whose seen score
  is higher, ties counting one half: P(S_seen > S_unseen) + P(=)/2, the area under the ROC curve
  (what ``sklearn.metrics.roc_auc_score`` gives). Reported x100 (0-100, 50 = chance) as
  ``auc_min_k`` / ``auc_min_kpp``, with a seeded **stratified bootstrap** 95% percentile interval
  (seen and unseen items resampled with replacement within their own group, so every resample
  keeps both group sizes). With fewer than ``MIN_GROUP_SIZE`` (10) items in either group the
  figure is flagged wherever it is shown (:func:`small_group_note`, with both group sizes): an AUC
  from one seen item is 0, 50 or 100 within a tie, and its interval ([0.00, 3.16]) looks precise.
* **TPR at 5% FPR** (``tpr_at_5fpr_*``, x100): over the ROC points (threshold at every distinct
  score, predicted seen when score >= threshold, plus the point (0, 0)), the largest true positive
  rate whose false positive rate is strictly below 5%, as in the Min-K%++ authors' code
  (``tpr[np.where(fpr < .05)[0][-1]]``).
"""

from __future__ import annotations

import math
from typing import Sequence

from chimed_eval.core.types import Metric
from chimed_eval.metrics.stats import BOOTSTRAP, MIN_GROUP_SIZE, N_BOOT, bootstrap_mean_ci

DEFAULT_K = 20
PROTOCOL = "min-k"


def lowest_count(n: int, k: float) -> int:
    """How many of n token values make "the lowest k%": max(1, floor(n * k / 100))."""
    return max(1, int(math.floor(n * k / 100.0 + 1e-9)))


def _lowest_mean(values: Sequence[float], k: float) -> float:
    if not values:
        raise ValueError("no token values to score")
    low = sorted(values)[: lowest_count(len(values), k)]
    return float(sum(low) / len(low))


def min_k_prob(token_logprobs: Sequence[float], k: float = DEFAULT_K) -> float:
    """Min-K% Prob: the mean of the lowest k% per-token log-probabilities."""
    return _lowest_mean([float(x) for x in token_logprobs], k)


def min_k_plus_plus(token_logprobs: Sequence[float], token_moments: Sequence[Sequence[float]],
                    k: float = DEFAULT_K) -> float:
    """Min-K%++: the mean of the lowest k% of z_t = (log p_t - mu_t) / sigma_t."""
    if len(token_moments) != len(token_logprobs):
        raise ValueError(f"{len(token_logprobs)} token log-probabilities but {len(token_moments)} moments")
    z = [(float(lp) - float(mu)) / float(sd) if float(sd) > 0 else 0.0
         for lp, (mu, sd) in zip(token_logprobs, token_moments)]
    return _lowest_mean(z, k)


def _average_ranks(x):
    """1-based ranks of x, tied values sharing the mean of their ranks."""
    import numpy as np

    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]
    ranks = np.empty(xs.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def _auc_arrays(pos, neg) -> float:
    import numpy as np

    ranks = _average_ranks(np.concatenate([pos, neg]))
    n_pos, n_neg = pos.size, neg.size
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _split(scores: Sequence[float], seen: Sequence[bool]):
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray([bool(v) for v in seen])
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    pos, neg = s[y], s[~y]
    if not pos.size or not neg.size:
        raise ValueError("the AUC needs both seen and unseen items")
    return pos, neg


def auc(scores: Sequence[float], seen: Sequence[bool]) -> float:
    """Mann-Whitney AUC (0..1, ties 1/2) of seen (True) against unseen (False) items."""
    return _auc_arrays(*_split(scores, seen))


def auc_ci(scores: Sequence[float], seen: Sequence[bool], seed: int, n_boot: int = N_BOOT,
           level: float = 0.95) -> tuple[float, float]:
    """Stratified percentile bootstrap interval of :func:`auc` (0..1)."""
    import numpy as np

    pos, neg = _split(scores, seen)
    rng = np.random.default_rng(seed)
    pi = rng.integers(0, pos.size, size=(n_boot, pos.size))
    ni = rng.integers(0, neg.size, size=(n_boot, neg.size))
    vals = np.array([_auc_arrays(pos[a], neg[b]) for a, b in zip(pi, ni)])
    a = (1.0 - level) / 2.0
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1.0 - a))


def tpr_at_fpr(scores: Sequence[float], seen: Sequence[bool], max_fpr: float = 0.05) -> float:
    """The largest TPR (0..1) among the ROC points whose FPR is below ``max_fpr`` (strictly)."""
    import numpy as np

    pos, neg = _split(scores, seen)
    best = 0.0  # the point (0, 0): nothing predicted seen
    for t in np.unique(np.concatenate([pos, neg])):
        if (neg >= t).mean() < max_fpr:
            best = max(best, float((pos >= t).mean()))
    return best


def small_group_note(n_seen: int, n_unseen: int, min_size: int = MIN_GROUP_SIZE) -> str | None:
    """A warning when the AUC's seen or unseen group has fewer than ``min_size`` items (with n per
    group): an AUC from one seen item takes few values and its bootstrap interval cannot show how
    little it knows; None when both groups are large enough or the AUC is not computed."""
    if not n_seen or not n_unseen or min(n_seen, n_unseen) >= min_size:
        return None
    return (f"the membership AUC compares {n_seen} seen with {n_unseen} unseen items: below {min_size} items per "
            "group the AUC and its interval rest on too few items to trust")


#: which way each figure of :func:`membership_metrics` is better (:func:`chimed_eval.metrics.metric_direction`):
#: none. A higher AUC or score is more evidence that the model saw the items, not a better model.
DIRECTIONS = {"auc_*": None, "tpr_at_5fpr_*": None, "min_k_mean": None, "min_kpp_mean": None, "seen_count": None,
              "unseen_count": None, "min_kpp_unavailable_count": None}
#: the headline figures (the console's default rows; names or patterns): membership: the seen/unseen AUCs
HEADLINE = ("auc_*",)


def membership_metrics(min_k: Sequence[float], min_kpp: Sequence[float | None], seen: Sequence[bool | None],
                       seed: int) -> list[Metric]:
    """A task's figures: with both seen and unseen items, the AUC (x100, interval) and TPR at 5%
    FPR (x100) of each score, and the group sizes; always the mean of each score over the items
    (bootstrap interval). Min-K%++ figures only when every item has its moments; otherwise
    ``min_kpp_unavailable_count`` says how many lack them (never a 0 in their place)."""
    n = len(min_k)
    scores = {"min_k": [float(x) for x in min_k]}
    missing = sum(v is None for v in min_kpp)
    if n and not missing:
        scores["min_kpp"] = [float(x) for x in min_kpp]  # type: ignore[arg-type]
    out: list[Metric] = []
    labelled = [i for i, v in enumerate(seen) if v is not None]
    y = [bool(seen[i]) for i in labelled]
    n_seen, n_unseen = sum(y), len(y) - sum(y)
    if n_seen and n_unseen:
        for name, vals in scores.items():
            sub = [vals[i] for i in labelled]
            lo, hi = auc_ci(sub, y, seed)
            out.append(Metric(f"auc_{name}", 100.0 * auc(sub, y), 100.0 * lo, 100.0 * hi, len(sub), "seen-vs-unseen",
                              PROTOCOL, None, BOOTSTRAP))
        for name, vals in scores.items():
            sub = [vals[i] for i in labelled]
            out.append(Metric(f"tpr_at_5fpr_{name}", 100.0 * tpr_at_fpr(sub, y), None, None, len(sub),
                              "seen-vs-unseen", PROTOCOL, None))
    if labelled:
        out += [Metric("seen_count", float(n_seen), None, None, len(y), "items", PROTOCOL, None),
                Metric("unseen_count", float(n_unseen), None, None, len(y), "items", PROTOCOL, None)]
    for name, vals in scores.items():
        if vals:
            lo, hi = bootstrap_mean_ci(vals, seed)
            out.append(Metric(f"{name}_mean", float(sum(vals) / len(vals)), lo, hi, len(vals), "items", PROTOCOL, None,
                              BOOTSTRAP))
    if missing:
        out.append(Metric("min_kpp_unavailable_count", float(missing), None, None, n, "items", PROTOCOL, None))
    return out
