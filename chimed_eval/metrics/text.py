"""BLEU and ROUGE for generated Chinese text, in two named protocols. Pure functions.

Every figure is reproduced exactly (tests compare with the reference packages to 1e-9) without
depending on them at run time; only word-level ROUGE needs ``jieba`` (``pip install
"chimed-eval[text]"``), imported when first used.

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

``standard``:

* BLEU: sacreBLEU 2.x ``BLEU(tokenize="zh", max_ngram_order=k)`` corpus score (default ``exp``
  smoothing, mixed case, no effective order), reported for k = 1, 2, 4: *cumulative* BLEU-k
  (geometric mean of the 1..k precisions), on a 0-100 scale.
* ROUGE-1/2/L: ``rouge_score.rouge_scorer.RougeScorer(types, tokenizer=T)`` F-measures (n-grams
  with counts, plain LCS), with T one of :data:`TOKENIZATIONS` -- ``char`` (every non-whitespace
  character is a token, case kept) or ``jieba`` (``jieba.lcut``, default dictionary, HMM on,
  whitespace tokens dropped). rouge-score's *default* tokenizer lowercases and replaces
  everything outside ``[a-z0-9]`` by spaces, so it deletes Chinese text and scores every
  Chinese pair 0: no function here accepts it.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

TEXT_EXTRA_HINT = 'word-level ROUGE needs jieba: pip install "chimed-eval[text]" (or: pip install jieba)'

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


# sacreBLEU's TokenizerRegexp (the ``13a`` post-tokenizer that ``zh`` applies after padding).
_RE_13A = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)


def sacrebleu_zh_tokens(text: str) -> list[str]:
    """sacreBLEU's ``zh`` tokenization of a segment (as ``BLEU._preprocess_segment`` applies it:
    ``rstrip``, CJK padding, the 13a regular expressions, whitespace split)."""
    line = chimed_char_pad(text.rstrip())
    for pattern, repl in _RE_13A:
        line = pattern.sub(repl, line)
    return line.split()


def char_tokens(text: str) -> list[str]:
    """Every non-whitespace character is a token (case kept)."""
    return [c for c in text if not c.isspace()]


_JIEBA = None


def _jieba():
    global _JIEBA
    if _JIEBA is None:
        try:
            import jieba
        except ImportError:
            raise ImportError(TEXT_EXTRA_HINT) from None
        import logging

        jieba.setLogLevel(logging.WARNING)
        _JIEBA = jieba
    return _JIEBA


def jieba_available() -> bool:
    try:
        _jieba()
        return True
    except ImportError:
        return False


def jieba_tokens(text: str) -> list[str]:
    """``jieba.lcut(text)`` (default dictionary, HMM on), whitespace-only tokens dropped."""
    return [t for t in _jieba().lcut(text) if t.strip()]


TOKENIZATIONS: dict[str, Callable[[str], list[str]]] = {"char": char_tokens, "jieba": jieba_tokens}


# --- paper protocol: nltk corpus_bleu on padded strings -------------------------------------------

SCRIPT_WEIGHTS = ((0.5, 0.5), (0.333, 0.333, 0.334))  # the authors' compute_bleu
PAPER_BLEU_WEIGHTS = {"bleu1": (1.0,), "bleu2": (0.5, 0.5)}  # B-1 / B-2 as PAPER.md reads them
PAPER_MAX_N = 3


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
    if not stats:
        return BleuStats(0, 0, (), ())
    k = len(stats[0].correct)
    return BleuStats(sum(s.hyp_len for s in stats), sum(s.ref_len for s in stats),
                     tuple(sum(s.correct[i] for s in stats) for i in range(k)),
                     tuple(sum(s.total[i] for s in stats) for i in range(k)))


def _ngram_counts(seq: Sequence[str] | str, n: int) -> Counter:
    if len(seq) < n:
        return Counter()
    return Counter(tuple(seq[i:i + n]) for i in range(len(seq) - n + 1))


def nltk_bleu_stats(hyp: Sequence[str] | str, ref: Sequence[str] | str, max_n: int = PAPER_MAX_N) -> BleuStats:
    """nltk's ``modified_precision`` numerators/denominators for one pair with one reference (a
    string is a sequence of characters, as when nltk is handed strings)."""
    correct, total = [], []
    for n in range(1, max_n + 1):
        h, r = _ngram_counts(hyp, n), _ngram_counts(ref, n)
        correct.append(sum(min(c, r[g]) for g, c in h.items()))
        total.append(max(1, sum(h.values())))
    return BleuStats(len(hyp), len(ref), tuple(correct), tuple(total))


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


def paper_bleu_stats(hyp: str, ref: str) -> BleuStats:
    """The paper protocol's per-pair statistics: characters of the padded strings, orders 1-3."""
    return nltk_bleu_stats(chimed_char_pad(hyp), chimed_char_pad(ref), PAPER_MAX_N)


def paper_bleu(hyps: Sequence[str], refs: Sequence[str], weights: Sequence[float]) -> float:
    """``corpus_bleu([[pad(r)] for r in refs], [pad(h) for h in hyps], weights)`` (0-1 scale)."""
    _same_length(hyps, refs)
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


def paper_rouge_pair(hyp: str, ref: str) -> dict[str, float]:
    """The paper protocol's per-pair ROUGE F-scores (0-1): padded texts; 0 where the package
    would raise (an empty generation)."""
    s = rouge_pkg_pair(chimed_char_pad(hyp), chimed_char_pad(ref))
    return s if s is not None else {k: 0.0 for k in ROUGE_PKG_KEYS}


def mean_like_rouge_pkg(values: Sequence[float]) -> float:
    """``get_scores(avg=True)``'s averaging: a running sum from 0, then divided by the count."""
    total: float = 0
    for v in values:
        total = total + v
    return total / len(values)


def paper_rouge(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """``Rouge().get_scores([pad(h)...], [pad(r)...], avg=True)`` F-scores (0-1)."""
    _same_length(hyps, refs)
    pairs = [paper_rouge_pair(h, r) for h, r in zip(hyps, refs)]
    return {k: mean_like_rouge_pkg([p[k] for p in pairs]) for k in ROUGE_PKG_KEYS}


# --- standard protocol: sacreBLEU zh ---------------------------------------------------------------

SACREBLEU_MAX_N = 4


def sacrebleu_stats(hyp: str, ref: str, max_n: int = SACREBLEU_MAX_N) -> BleuStats:
    """sacreBLEU's segment statistics with the ``zh`` tokenizer and one reference."""
    h, r = sacrebleu_zh_tokens(hyp), sacrebleu_zh_tokens(ref)
    correct, total = [], []
    for n in range(1, max_n + 1):
        hc, rc = _ngram_counts(h, n), _ngram_counts(r, n)
        correct.append(sum(min(c, rc[g]) for g, c in hc.items() if g in rc))
        total.append(sum(hc.values()))
    return BleuStats(len(h), len(r), tuple(correct), tuple(total))


def _my_log(x: float) -> float:
    return -9999999999 if x == 0.0 else math.log(x)


def sacrebleu_from_stats(stats: BleuStats, max_order: int) -> float:
    """``BLEU.compute_bleu`` (exp smoothing, no effective order) on the first ``max_order``
    orders of summed statistics; 0-100."""
    correct, total = list(stats.correct[:max_order]), list(stats.total[:max_order])
    if len(correct) < max_order:
        raise ValueError(f"statistics cover {len(stats.correct)} n-gram orders, BLEU-{max_order} needs {max_order}")
    sys_len, ref_len = stats.hyp_len, stats.ref_len
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    if not any(correct):
        return 0.0
    precisions = [0.0] * max_order
    smooth = 1.0
    for n in range(1, max_order + 1):
        if total[n - 1] == 0:
            break
        if correct[n - 1] == 0:
            smooth *= 2
            precisions[n - 1] = 100.0 / (smooth * total[n - 1])
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    return bp * math.exp(sum([_my_log(p) for p in precisions]) / max_order)


def sacrebleu_zh(hyps: Sequence[str], refs: Sequence[str], max_order: int = 4) -> float:
    """``sacrebleu.BLEU(tokenize="zh", max_ngram_order=k).corpus_score(hyps, [refs]).score``."""
    _same_length(hyps, refs)
    return sacrebleu_from_stats(sum_stats([sacrebleu_stats(h, r) for h, r in zip(hyps, refs)]), max_order)


# --- standard protocol: rouge-score with a Chinese tokenizer ---------------------------------------

ROUGE_SCORE_KEYS = ("rouge1", "rouge2", "rougeL")


def _fmeasure(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _rs_ngrams(target: list[str], pred: list[str], n: int) -> float:
    t, p = _ngram_counts(target, n), _ngram_counts(pred, n)
    inter = sum(min(c, p[g]) for g, c in t.items())
    return _fmeasure(inter / max(sum(p.values()), 1), inter / max(sum(t.values()), 1))


def lcs_length(x: Sequence[str], y: Sequence[str]) -> int:
    prev = [0] * (len(y) + 1)
    for xi in x:
        cur = [0]
        for j, yj in enumerate(y, 1):
            if xi == yj:
                cur.append(prev[j - 1] + 1)
            else:
                a, b = prev[j], cur[j - 1]
                cur.append(a if a > b else b)
        prev = cur
    return prev[-1]


def rouge_score_tokens(target: list[str], pred: list[str]) -> dict[str, float]:
    """rouge-score's ``RougeScorer.score(target, prediction)`` F-measures on given tokens."""
    if target and pred:
        lcs = lcs_length(target, pred)
        rl = _fmeasure(lcs / len(pred), lcs / len(target))
    else:
        rl = 0.0
    return {"rouge1": _rs_ngrams(target, pred, 1), "rouge2": _rs_ngrams(target, pred, 2), "rougeL": rl}


def rouge_score_pair(hyp: str, ref: str, tokenization: str) -> dict[str, float]:
    """Standard ROUGE F-measures (0-1) of one pair under a named tokenization (char | jieba)."""
    try:
        tok = TOKENIZATIONS[tokenization]
    except KeyError:
        raise ValueError(f"unknown tokenization {tokenization!r}; choose from {sorted(TOKENIZATIONS)}") from None
    return rouge_score_tokens(tok(ref), tok(hyp))


def _same_length(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")


# --- bootstrap over items for corpus BLEU -----------------------------------------------------------


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


# --- per-item statistics and the reported figures ----------------------------------------------------

PAPER_BLEU_TOKENIZATION = "chimed-char-string"  # characters of the space-padded string, spaces included
PAPER_ROUGE_TOKENIZATION = "chimed-char-words"  # whitespace words of the space-padded string, '.' sentences
SACREBLEU_TOKENIZATION = "sacrebleu-zh"
SACREBLEU_ORDERS = (1, 2, 4)

# name -> nltk weights; every BLEU here is cumulative (geometric mean of orders 1..k). The
# script's first weights, (0.5, 0.5), are B-2's: its first value is ``paper_bleu2_cum`` itself,
# so it has no name of its own.
PAPER_BLEU_METRICS = {
    "paper_bleu1_cum": PAPER_BLEU_WEIGHTS["bleu1"],  # B-1 as PAPER.md reads it
    "paper_bleu2_cum": PAPER_BLEU_WEIGHTS["bleu2"],  # B-2 as PAPER.md reads it (= the script's first value)
    "paper_script_bleu3_cum": SCRIPT_WEIGHTS[1],  # the authors' script, second value
}


def generation_stats(hyp: str, ref: str) -> dict:
    """Everything the reported figures need from one (generation, reference) pair, as plain
    JSON values (stored in the per-sample record)."""
    return {
        "paper_bleu": paper_bleu_stats(hyp, ref).to_list(),
        "paper_rouge": paper_rouge_pair(hyp, ref),
        "sacrebleu": sacrebleu_stats(hyp, ref).to_list(),
        "rouge_char": rouge_score_pair(hyp, ref, "char"),
        "rouge_jieba": rouge_score_pair(hyp, ref, "jieba"),
    }


def text_metrics(scores: Sequence, seed: int) -> list:
    """The figures of a generation task from its SampleScores' ``extra["stats"]`` (percentages,
    95% bootstrap intervals over items), each naming its protocol and tokenization, plus the
    rates (and counts) of empty generations (:func:`is_empty_generation`, or flagged ``empty`` by
    the task) and of truncated ones (flagged ``truncated`` by the task)."""
    from ..types import Metric
    from .stats import bootstrap_mean_ci

    n = len(scores)
    if n == 0:
        return []
    st = [s.extra["stats"] for s in scores]
    out: list = []

    paper = [BleuStats.from_list(x["paper_bleu"]) for x in st]
    paper_total = sum_stats(paper)
    for name, w in PAPER_BLEU_METRICS.items():
        fn = (lambda s, w=w: 100.0 * nltk_corpus_bleu(s, w))
        lo, hi = bootstrap_corpus_ci(paper, fn, seed)
        out.append(Metric(name, fn(paper_total), lo, hi, n, "corpus", "paper", PAPER_BLEU_TOKENIZATION))
    for key, name in zip(ROUGE_PKG_KEYS, ("paper_rouge1", "paper_rouge2", "paper_rougeL")):
        vals = [float(x["paper_rouge"][key]) for x in st]
        lo, hi = bootstrap_mean_ci(vals, seed)
        out.append(Metric(name, 100.0 * mean_like_rouge_pkg(vals), 100 * lo, 100 * hi, n, "items", "paper",
                          PAPER_ROUGE_TOKENIZATION))

    sb = [BleuStats.from_list(x["sacrebleu"]) for x in st]
    sb_total = sum_stats(sb)
    for k in SACREBLEU_ORDERS:
        fn = (lambda s, k=k: sacrebleu_from_stats(s, k))
        lo, hi = bootstrap_corpus_ci(sb, fn, seed)
        out.append(Metric(f"sacrebleu{k}_cum", fn(sb_total), lo, hi, n, "corpus", "standard", SACREBLEU_TOKENIZATION))
    for tok in TOKENIZATIONS:
        for key in ROUGE_SCORE_KEYS:
            vals = [float(x[f"rouge_{tok}"][key]) for x in st]
            lo, hi = bootstrap_mean_ci(vals, seed)
            out.append(Metric(f"{key}_{tok}", 100.0 * sum(vals) / n, 100 * lo, 100 * hi, n, "items", "standard", tok))

    out += rate_and_count("empty_generation", [bool(s.extra.get("empty")) or is_empty_generation(s.generation)
                                               for s in scores], "items")
    out += rate_and_count("truncated_generation", [bool(s.extra.get("truncated")) for s in scores], "items")
    return out


# --- empty and truncated generations -----------------------------------------------------------------


def is_empty_generation(text: str | None) -> bool:
    """True when a generation holds nothing to score: only whitespace, punctuation (Unicode
    categories P*, Chinese punctuation such as ``，。！？、“”…—`` included) and invisible format
    characters (Cf, e.g. a zero-width space). It is counted as empty, not as an answer (its
    scores are still computed on the text as it is)."""
    return all(c.isspace() or unicodedata.category(c)[0] == "P" or unicodedata.category(c) == "Cf"
               for c in text or "")


def used_whole_budget(generation: str | None, n_tokens: int | None, max_new_tokens: int | None) -> bool:
    """Whether a generation stopped because it used its whole token budget: ``n_tokens >=
    max_new_tokens`` when the backend counted the generated tokens, else the heuristic
    ``len(generation) >= max_new_tokens`` characters (at least one character per token, as is
    usual for Chinese). No budget known: False."""
    if not max_new_tokens:
        return False
    if n_tokens is not None:
        return int(n_tokens) >= int(max_new_tokens)
    return len(generation or "") >= int(max_new_tokens)


def rate_and_count(stem: str, flags: Sequence[bool], averaging: str, protocol: str | None = None) -> list:
    """``<stem>_rate`` (percentage of the items flagged, 0-100, ``n`` = the items) and, beside it,
    ``<stem>_count`` (the number flagged, ``n`` = the same items): a count is never reported
    where a percentage is expected."""
    from ..types import Metric

    n, k = len(flags), sum(1 for f in flags if f)
    return [Metric(f"{stem}_rate", 100.0 * k / n if n else 0.0, None, None, n, averaging, protocol, None),
            Metric(f"{stem}_count", float(k), None, None, n, None, protocol, None)]
