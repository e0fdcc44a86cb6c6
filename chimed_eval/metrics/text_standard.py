"""The ``standard`` protocol of BLEU and ROUGE for generated Chinese text: the reference packages.

* BLEU: sacreBLEU 2.x ``BLEU(tokenize="zh", max_ngram_order=k)`` corpus score (default ``exp``
  smoothing, mixed case, no effective order), reported for k = 1, 2, 4: *cumulative* BLEU-k
  (geometric mean of the 1..k precisions), on a 0-100 scale. Each item's statistics are
  sacreBLEU's own (its ``corpus_score`` on the one pair); the corpus figure is its
  ``BLEU.compute_bleu`` on their sum, which is what ``corpus_score`` computes on the whole corpus,
  and what lets the bootstrap resample items without the texts.
* ROUGE-1/2/L: ``rouge_score.rouge_scorer.RougeScorer(types, tokenizer=T)`` F-measures (n-grams
  with counts, plain LCS), with T one of :data:`TOKENIZATIONS` -- ``char`` (every non-whitespace
  character is a token, case kept) or ``jieba`` (``jieba.lcut``, default dictionary, HMM on,
  whitespace tokens dropped). rouge-score's *default* tokenizer lowercases and replaces
  everything outside ``[a-z0-9]`` by spaces, so it deletes Chinese text and scores every
  Chinese pair 0: no function here accepts it.
* A reference of fewer than two tokens (``头痛`` is one jieba token, ``是`` one character) has no
  bigram, so ROUGE-2 is undefined for it: rouge-score then reports precision = recall = F = 0
  whatever the generation, an exact copy of the reference included. We keep rouge-score's 0 (the
  figures stay rouge-score's own) and count those items beside the figure:
  ``rouge2_{char,jieba}_undefined_count`` (:func:`rouge2_undefined_metrics`).

sacrebleu, rouge-score and jieba are imported when first used (``pip install "chimed-eval[text]"``);
a missing one is a :class:`~chimed_eval.core.errors.ConfigError` with that hint.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.metrics.corpus import BleuStats, same_length, sum_stats

TEXT_PACKAGES = {"jieba": "jieba", "sacrebleu": "sacrebleu", "rouge_score": "rouge-score"}
"""Module -> distribution of what the open QA and dialogue metrics import."""
TEXT_EXTRA_HINT = ('open QA and dialogue metrics need jieba, sacrebleu and rouge-score: '
                   'pip install "chimed-eval[text]" (or: pip install jieba sacrebleu rouge-score)')


def _import(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{TEXT_EXTRA_HINT} ({TEXT_PACKAGES[module.split('.')[0]]} is missing)") from None


def missing_text_packages() -> list[str]:
    """The distributions the text metrics need that are not installed (empty when all are)."""
    import importlib.util

    return [dist for mod, dist in TEXT_PACKAGES.items() if importlib.util.find_spec(mod) is None]


# --- tokenizations --------------------------------------------------------------------------------


def char_tokens(text: str) -> list[str]:
    """Every non-whitespace character is a token (case kept)."""
    return [c for c in text if not c.isspace()]


def _jieba() -> Any:
    """jieba, imported on each call (a dictionary lookup once loaded), so that a test or a user
    who removes it is told at once; its start-up chatter muted."""
    import logging

    jieba = _import("jieba")
    jieba.setLogLevel(logging.WARNING)
    return jieba


def jieba_available() -> bool:
    try:
        _jieba()
        return True
    except ConfigError:
        return False


def jieba_tokens(text: str) -> list[str]:
    """``jieba.lcut(text)`` (default dictionary, HMM on), whitespace-only tokens dropped."""
    return [t for t in _jieba().lcut(text) if t.strip()]


TOKENIZATIONS: dict[str, Callable[[str], list[str]]] = {"char": char_tokens, "jieba": jieba_tokens}


# --- sacreBLEU zh -----------------------------------------------------------------------------------

SACREBLEU_MAX_N = 4


@lru_cache(maxsize=None)
def _bleu(max_n: int) -> Any:
    return _import("sacrebleu.metrics.bleu").BLEU(tokenize="zh", max_ngram_order=max_n)


def sacrebleu_zh_tokens(text: str) -> list[str]:
    """sacreBLEU's ``zh`` tokenization of a segment (as ``BLEU`` applies it: ``rstrip``, then
    its ``zh`` tokenizer, then a whitespace split)."""
    return _bleu(SACREBLEU_MAX_N).tokenizer(text.rstrip()).split()


def sacrebleu_stats(hyp: str, ref: str | Sequence[str], max_n: int = SACREBLEU_MAX_N) -> BleuStats:
    """sacreBLEU's segment statistics with the ``zh`` tokenizer and one reference, or several
    (sacreBLEU's own multi-reference BLEU: counts clipped by the best reference, closest length)."""
    refs = [ref] if isinstance(ref, str) else list(ref)
    if not refs:
        raise ValueError("no reference")
    s = _bleu(max_n).corpus_score([hyp], [[r] for r in refs])
    return BleuStats(int(s.sys_len), int(s.ref_len), tuple(int(c) for c in s.counts), tuple(int(t) for t in s.totals))


def sacrebleu_from_stats(stats: BleuStats, max_order: int) -> float:
    """sacreBLEU's ``BLEU.compute_bleu`` (exp smoothing, no effective order) on the first
    ``max_order`` orders of summed statistics; 0-100."""
    if len(stats.correct) < max_order:
        raise ValueError(f"statistics cover {len(stats.correct)} n-gram orders, BLEU-{max_order} needs {max_order}")
    bleu = _import("sacrebleu.metrics.bleu").BLEU
    return float(bleu.compute_bleu(list(stats.correct[:max_order]), list(stats.total[:max_order]), stats.hyp_len,
                                   stats.ref_len, smooth_method="exp", max_ngram_order=max_order).score)


def sacrebleu_zh(hyps: Sequence[str], refs: Sequence[str], max_order: int = 4) -> float:
    """``sacrebleu.BLEU(tokenize="zh", max_ngram_order=k).corpus_score(hyps, [refs]).score``."""
    same_length(hyps, refs)
    return sacrebleu_from_stats(sum_stats([sacrebleu_stats(h, r) for h, r in zip(hyps, refs)]), max_order)


# --- rouge-score with a Chinese tokenizer -----------------------------------------------------------

ROUGE_SCORE_KEYS = ("rouge1", "rouge2", "rougeL")


class _Tokenizer:
    """rouge-score's tokenizer interface over one of :data:`TOKENIZATIONS`."""

    def __init__(self, fn: Callable[[str], list[str]]) -> None:
        self.fn = fn

    def tokenize(self, text: str) -> list[str]:
        return self.fn(text)


@lru_cache(maxsize=None)
def _scorer(tokenization: str) -> Any:
    rouge_scorer = _import("rouge_score.rouge_scorer")
    return rouge_scorer.RougeScorer(list(ROUGE_SCORE_KEYS), tokenizer=_Tokenizer(TOKENIZATIONS[tokenization]))


def rouge_score_pair(hyp: str, ref: str | Sequence[str], tokenization: str) -> dict[str, float]:
    """Standard ROUGE F-measures (0-1) of one item under a named tokenization (char | jieba):
    rouge-score's ``RougeScorer.score(ref, hyp)``, or with several references its
    ``score_multi(refs, hyp)`` (each score the best over the references, by F-measure)."""
    if tokenization not in TOKENIZATIONS:
        raise ValueError(f"unknown tokenization {tokenization!r}; choose from {sorted(TOKENIZATIONS)}")
    if isinstance(ref, str):
        scores = _scorer(tokenization).score(ref, hyp)
    elif ref:
        scores = _scorer(tokenization).score_multi(list(ref), hyp)
    else:
        raise ValueError("no reference")
    return {k: float(scores[k].fmeasure) for k in ROUGE_SCORE_KEYS}


ROUGE2_MIN_TOKENS = 2


def rouge2_undefined(ref: str, tokenization: str) -> bool:
    """Whether ROUGE-2 is undefined for reference ``ref`` under a tokenization (char | jieba): it
    has fewer than two tokens, hence no bigram, and rouge-score scores every generation 0 on it."""
    if tokenization not in TOKENIZATIONS:
        raise ValueError(f"unknown tokenization {tokenization!r}; choose from {sorted(TOKENIZATIONS)}")
    return len(TOKENIZATIONS[tokenization](ref)) < ROUGE2_MIN_TOKENS


def rouge2_undefined_metrics(refs: Sequence[str | Sequence[str]]) -> list:
    """``rouge2_<tok>_undefined_count`` for each tokenization: how many of the items' references
    have fewer than two tokens (an item with several references: all of them), ``n`` = all the
    items. Their ROUGE-2 is rouge-score's 0 and stays in ``rouge2_<tok>``; the count says how much
    of that figure is such zeros."""
    from chimed_eval.core.types import Metric

    n = len(refs)
    groups = [[r] if isinstance(r, str) else list(r) for r in refs]
    return [Metric(f"rouge2_{tok}_undefined_count", float(sum(all(rouge2_undefined(r, tok) for r in g)
                                                                for g in groups)), None, None, n, None, "standard", tok)
            for tok in TOKENIZATIONS]
