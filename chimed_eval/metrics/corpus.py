"""BLEU sufficient statistics: per-item counts that add up over a corpus, and their bootstrap.

Both BLEU protocols (:mod:`.text_paper`, :mod:`.text_standard`) store one :class:`BleuStats` per
item in the per-sample record; a corpus score is a function of their sum, so ``chimed-eval
score`` and the bootstrap (which resamples items) never need the texts again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence


@dataclass(frozen=True)
class BleuStats:
    """Sufficient statistics of one hypothesis/reference pair (sums over a corpus add up).

    ``correct[k]`` / ``total[k]`` are the clipped matches and the count for order k+1 (nltk:
    ``total`` is ``max(1, count)``); ``hyp_len`` / ``ref_len`` the sequence lengths."""

    hyp_len: int
    ref_len: int
    correct: tuple[int, ...]
    total: tuple[int, ...]

    def to_list(self) -> list[int]:
        return [self.hyp_len, self.ref_len, *self.correct, *self.total]

    @classmethod
    def from_list(cls, v: Sequence[int]) -> "BleuStats":
        k = (len(v) - 2) // 2
        return cls(int(v[0]), int(v[1]), tuple(int(x) for x in v[2:2 + k]), tuple(int(x) for x in v[2 + k:]))


def sum_stats(stats: Sequence[BleuStats]) -> BleuStats:
    """The corpus statistics: element-wise sums (empty corpus: all zero, no orders)."""
    if not stats:
        return BleuStats(0, 0, (), ())
    k = len(stats[0].correct)
    return BleuStats(sum(s.hyp_len for s in stats), sum(s.ref_len for s in stats),
                     tuple(sum(s.correct[i] for s in stats) for i in range(k)),
                     tuple(sum(s.total[i] for s in stats) for i in range(k)))


def bootstrap_corpus_ci(stats: Sequence[BleuStats], score: Callable[[BleuStats], float], seed: int,
                        n_boot: int = 2000, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of a corpus score, resampling items (their statistics) with replacement."""
    import numpy as np

    if not stats:
        return (float("nan"), float("nan"))
    mat = np.asarray([s.to_list() for s in stats], dtype=np.int64)
    rng = np.random.default_rng(seed)
    n = mat.shape[0]
    idx = rng.integers(0, n, size=(n_boot, n))
    vals = np.empty(n_boot)
    for b in range(n_boot):
        weights = np.bincount(idx[b], minlength=n)
        vals[b] = score(BleuStats.from_list((weights @ mat).tolist()))
    a = (1.0 - level) / 2.0
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1.0 - a))


def same_length(hyps: Sequence[str], refs: Sequence[str]) -> None:
    """Refuse a corpus whose hypotheses and references do not pair up."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
