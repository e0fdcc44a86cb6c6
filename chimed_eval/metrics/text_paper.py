"""The ``paper`` protocol of BLEU and ROUGE for generated Chinese text. Pure functions.

It reproduces the ChiMed-GPT authors' figures exactly (tests compare with nltk and the ``rouge``
package to 1e-9) without depending on either at run time: nltk's corpus BLEU is a function of
summed statistics (:class:`~.corpus.BleuStats`), and the ``rouge`` package raises on an empty text
and overflows the stack on long ones, so both are re-derived here, quirks included.

``paper`` -- the ChiMed-GPT authors' computation (their released evaluation script):

* Both texts go through :func:`chimed_char_pad` (the authors' ``chinese_char_tokenize``: strip,
  then a space before and after every character in their CJK range table -- sacreBLEU's
  ``zh`` table, whose padding step opens that tokenizer; every other character, spaces
  included, is kept as it is, and nothing is collapsed: two adjacent table characters are
  separated by two spaces, ``中 文`` becomes ``" 中   文 "`` with three). The table is copied
  with its two quirks: the entries written
  ``"\\u20000"`` and ``"\\u2f800"`` are two-character strings, so as compared by Python they
  cover U+2001..U+2A6D (general punctuation such as ``“”…—``, arrows, math symbols, box drawing)
  and U+2F81..U+2FA1, not the Extension B and compatibility supplement planes.
* BLEU: ``nltk.translate.bleu_score.corpus_bleu([[ref] ...], [hyp ...], weights)`` on the padded
  *strings*, so n-grams run over characters with the spaces included; no smoothing (nltk's
  ``method0``: an order with no match contributes ``log(sys.float_info.min)``); corpus brevity
  penalty; an empty hypothesis still adds 1 to every order's denominator (nltk's
  ``max(1, count)``). The script's weights are ``(0.5, 0.5)`` and ``(0.333, 0.333, 0.334)``
  (:data:`SCRIPT_WEIGHTS`); ``../shared/PAPER.md`` reads B-1 as cumulative BLEU-1 ``(1.0,)`` and
  B-2 as cumulative BLEU-2 ``(0.5, 0.5)``.
* ROUGE: F-scores of the ``rouge`` package (1.0.1), ``Rouge().get_scores(hyps, refs,
  avg=True)``: sentences are split on ``.``, words on single spaces of the whitespace-normalised
  sentence; n-grams and words are *sets* (``exclusive=True``); ``f = 2 * (p*r / (p + r + 1e-8))``;
  ROUGE-L is the summary-level union-LCS variant, whose LCS tokens come from the package's
  reconstruction (its tie-breaking is copied: it decides which tokens enter the union). The
  package raises on an empty hypothesis or reference (no sentence after splitting) and its
  recursive LCS reconstruction overflows Python's stack beyond ~1,000 tokens; here such a pair
  scores 0 (:func:`rouge_pkg_pair` returns ``None``) and long texts are handled iteratively.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from functools import lru_cache
from typing import Sequence

from chimed_eval.metrics.corpus import BleuStats, same_length, sum_stats

# --- tokenization ---------------------------------------------------------------------------------

# The authors' (and sacreBLEU's zh tokenizer's) table, copied as written: see the module docstring
# for the two entries that are two-character strings.
_UCODE_RANGES = (
    ("\u3400", "\u4db5"),  # CJK Unified Ideographs Extension A
    ("\u4e00", "\u9fa5"),  # CJK Unified Ideographs
    ("\u9fa6", "\u9fbb"),
    ("\uf900", "\ufa2d"),  # CJK Compatibility Ideographs
    ("\ufa30", "\ufa6a"),
    ("\ufa70", "\ufad9"),
    ("\u20000", "\u2a6d6"),  # sic: "\u2000" "0" .. "\u2a6d" "6"
    ("\u2f800", "\u2fa1d"),  # sic: "\u2f80" "0" .. "\u2fa1" "d"
    ("\uff00", "\uffef"),  # full-width ASCII and punctuation, half-width kana, Hangul
    ("\u2e80", "\u2eff"),  # CJK Radicals Supplement
    ("\u3000", "\u303f"),  # CJK punctuation
    ("\u31c0", "\u31ef"),  # CJK strokes
    ("\u2f00", "\u2fdf"),  # Kangxi Radicals
    ("\u2ff0", "\u2fff"),  # ideographic description characters
    ("\u3100", "\u312f"),  # Bopomofo
    ("\u31a0", "\u31bf"),  # Bopomofo extended
    ("\ufe10", "\ufe1f"),
    ("\ufe30", "\ufe4f"),
    ("\u2600", "\u26ff"),
    ("\u2700", "\u27bf"),
    ("\u3200", "\u32ff"),
    ("\u3300", "\u33ff"),
)


@lru_cache(maxsize=1 << 16)
def is_chinese_char(ch: str) -> bool:
    """Membership in the authors' / sacreBLEU's range table (string comparison, as they do)."""
    return any(start <= ch <= end for start, end in _UCODE_RANGES)


def chimed_char_pad(text: str) -> str:
    """The authors' ``chinese_char_tokenize``: ``text.strip()``, then `` c `` for every character
    ``c`` in the CJK table; other characters unchanged (so ``ab中c`` -> ``ab 中 c``)."""
    return "".join(f" {c} " if is_chinese_char(c) else c for c in text.strip())


# --- paper protocol: nltk corpus_bleu on padded strings -------------------------------------------

SCRIPT_WEIGHTS = ((0.5, 0.5), (0.333, 0.333, 0.334))  # the authors' compute_bleu
PAPER_BLEU_WEIGHTS = {"bleu1": (1.0,), "bleu2": (0.5, 0.5)}  # B-1 / B-2 as PAPER.md reads them
PAPER_MAX_N = 3


def _ngram_counts(seq: Sequence[str] | str, n: int) -> Counter:
    if len(seq) < n:
        return Counter()
    return Counter(tuple(seq[i:i + n]) for i in range(len(seq) - n + 1))


def nltk_bleu_stats(hyp: Sequence[str] | str, ref: Sequence[str] | str, max_n: int = PAPER_MAX_N) -> BleuStats:
    """nltk's ``modified_precision`` numerators/denominators for one pair with one reference (a
    string is a sequence of characters, as when nltk is handed strings)."""
    return nltk_bleu_stats_multi(hyp, [ref], max_n)


def nltk_bleu_stats_multi(hyp: Sequence[str] | str, refs: Sequence[Sequence[str] | str],
                          max_n: int = PAPER_MAX_N) -> BleuStats:
    """nltk's statistics for one hypothesis with several references (``corpus_bleu([[r1, r2, ...]],
    [hyp])``): each n-gram's count is clipped by its largest count in any reference, and the
    reference length is the one closest to the hypothesis length (the shorter on a tie), as
    nltk's ``closest_ref_length``."""
    if not refs:
        raise ValueError("no reference")
    correct, total = [], []
    for n in range(1, max_n + 1):
        h = _ngram_counts(hyp, n)
        most: Counter = Counter()
        for r in refs:
            most |= _ngram_counts(r, n)  # the element-wise maximum
        correct.append(sum(min(c, most[g]) for g, c in h.items()))
        total.append(max(1, sum(h.values())))
    ref_len = min((len(r) for r in refs), key=lambda k: (abs(k - len(hyp)), k))
    return BleuStats(len(hyp), ref_len, tuple(correct), tuple(total))


def as_references(ref: str | Sequence[str]) -> list[str]:
    """One reference text, or several, as a list (a generation item may have several)."""
    refs = [ref] if isinstance(ref, str) else [str(r) for r in ref]
    if not refs:
        raise ValueError("no reference")
    return refs


def nltk_brevity_penalty(hyp_len: int, ref_len: int) -> float:
    """nltk's corpus brevity penalty: 1 above the reference length, else exp(1 - r/c) (0 for c = 0)."""
    if hyp_len > ref_len:
        return 1.0
    if hyp_len == 0:
        return 0.0
    return math.exp(1 - ref_len / hyp_len)


def nltk_corpus_bleu(stats: BleuStats, weights: Sequence[float]) -> float:
    """``corpus_bleu`` from summed statistics, with nltk's arithmetic (no smoothing)."""
    k = len(weights)
    if len(stats.correct) < k:
        raise ValueError(f"statistics cover {len(stats.correct)} n-gram orders, weights need {k}")
    if not stats.correct or stats.correct[0] == 0:
        return 0.0
    bp = nltk_brevity_penalty(stats.hyp_len, stats.ref_len)
    p = [stats.correct[i] / stats.total[i] if stats.correct[i] else sys.float_info.min for i in range(k)]
    return bp * math.exp(math.fsum(w * math.log(pi) for w, pi in zip(weights, p) if pi > 0))


def paper_bleu_stats(hyp: str, ref: str | Sequence[str]) -> BleuStats:
    """The paper protocol's per-item statistics: characters of the padded strings, orders 1-3;
    several references as nltk's multi-reference BLEU (:func:`nltk_bleu_stats_multi`)."""
    return nltk_bleu_stats_multi(chimed_char_pad(hyp), [chimed_char_pad(r) for r in as_references(ref)], PAPER_MAX_N)


def paper_bleu(hyps: Sequence[str], refs: Sequence[str], weights: Sequence[float]) -> float:
    """``corpus_bleu([[pad(r)] for r in refs], [pad(h) for h in hyps], weights)`` (0-1 scale)."""
    same_length(hyps, refs)
    return nltk_corpus_bleu(sum_stats([paper_bleu_stats(h, r) for h, r in zip(hyps, refs)]), weights)


# --- paper protocol: the ``rouge`` package ----------------------------------------------------------


def _rouge_pkg_sentences(text: str) -> list[str]:
    return [" ".join(s.split()) for s in text.split(".") if len(s) > 0]


def _words(sentences: Sequence[str]) -> list[str]:
    return [w for s in sentences for w in s.split(" ")]


def _pkg_f(p: float, r: float) -> float:
    return 2.0 * ((p * r) / (p + r + 1e-8))


def _pkg_rouge_n(hyp_s: list[str], ref_s: list[str], n: int) -> float:
    h = set(_ngram_counts(_words(hyp_s), n))
    r = set(_ngram_counts(_words(ref_s), n))
    overlap = len(h & r)
    p = overlap / len(h) if h else 0.0
    rc = overlap / len(r) if r else 0.0
    return _pkg_f(p, rc)


def _lcs_table(x: Sequence[str], y: Sequence[str]) -> list[list[int]]:
    table = [[0] * (len(y) + 1) for _ in range(len(x) + 1)]
    for i in range(1, len(x) + 1):
        xi, row, prev = x[i - 1], table[i], table[i - 1]
        for j in range(1, len(y) + 1):
            if xi == y[j - 1]:
                row[j] = prev[j - 1] + 1
            else:
                a, b = prev[j], row[j - 1]
                row[j] = a if a > b else b
    return table


def _pkg_recon_lcs(x: Sequence[str], y: Sequence[str]) -> list[str]:
    """The ``rouge`` package's ``_recon_lcs`` (x: reference words, y: hypothesis words), iterative."""
    table = _lcs_table(x, y)
    i, j, out = len(x), len(y), []
    while i > 0 and j > 0:
        if x[i - 1] == y[j - 1]:
            out.append(x[i - 1])
            i -= 1
            j -= 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return out


def _pkg_rouge_l(hyp_s: list[str], ref_s: list[str]) -> float:
    m = len(set(_words(ref_s)))
    n = len(set(_words(hyp_s)))
    union: set[str] = set()
    for r in ref_s:
        rw = r.split(" ")
        for h in hyp_s:
            union.update(_pkg_recon_lcs(rw, h.split(" ")))
    llcs = len(union)
    return _pkg_f(llcs / n, llcs / m)


ROUGE_PKG_KEYS = ("rouge-1", "rouge-2", "rouge-l")


def rouge_pkg_pair(hyp: str, ref: str) -> dict[str, float] | None:
    """The ``rouge`` package's F-scores for one pair of (already tokenized, space-separated)
    texts, or None where the package raises (no sentence in the hypothesis or reference)."""
    hs, rs = _rouge_pkg_sentences(hyp), _rouge_pkg_sentences(ref)
    if not hs or not rs:
        return None
    return {"rouge-1": _pkg_rouge_n(hs, rs, 1), "rouge-2": _pkg_rouge_n(hs, rs, 2), "rouge-l": _pkg_rouge_l(hs, rs)}


def paper_rouge_pair(hyp: str, ref: str | Sequence[str]) -> dict[str, float]:
    """The paper protocol's per-item ROUGE F-scores (0-1): padded texts; 0 where the package
    would raise (an empty generation). The ``rouge`` package knows one reference only: with
    several, each score is its best over the references (as rouge-score's ``score_multi``)."""
    out = {k: 0.0 for k in ROUGE_PKG_KEYS}
    for r in as_references(ref):
        s = rouge_pkg_pair(chimed_char_pad(hyp), chimed_char_pad(r))
        out = out if s is None else {k: max(out[k], s[k]) for k in ROUGE_PKG_KEYS}
    return out


def mean_like_rouge_pkg(values: Sequence[float]) -> float:
    """``get_scores(avg=True)``'s averaging: a running sum from 0, then divided by the count."""
    total: float = 0
    for v in values:
        total = total + v
    return total / len(values)


def paper_rouge(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """``Rouge().get_scores([pad(h)...], [pad(r)...], avg=True)`` F-scores (0-1)."""
    same_length(hyps, refs)
    pairs = [paper_rouge_pair(h, r) for h, r in zip(hyps, refs)]
    return {k: mean_like_rouge_pkg([p[k] for p in pairs]) for k in ROUGE_PKG_KEYS}
