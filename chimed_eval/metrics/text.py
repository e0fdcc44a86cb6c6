"""BLEU and ROUGE for generated Chinese text, in two named protocols, and the reported figures.

``paper`` (:mod:`.text_paper`): the ChiMed-GPT authors' computation -- nltk corpus BLEU on their
space-padded strings and the ``rouge`` package's F-scores -- re-derived exactly (tests compare with
the packages to 1e-9), so it needs neither at run time.

``standard`` (:mod:`.text_standard`): sacreBLEU ``zh`` and rouge-score with a Chinese tokenizer
(character or jieba), computed by those packages themselves; they and jieba come with
``pip install "chimed-eval[text]"``, imported when first used.

This module turns one (generation, reference) pair into the per-item statistics stored in the
sample record (:func:`generation_stats`), and a task's records into its reported figures with
bootstrap intervals (:func:`text_metrics`); it also flags empty and truncated generations. The
names of both protocol modules are re-exported here, the import path the tasks and training use.
"""

from __future__ import annotations

import unicodedata
from typing import Sequence

from chimed_eval.metrics.corpus import BleuStats, bootstrap_corpus_ci, same_length, sum_stats
from chimed_eval.metrics.text_paper import (
    PAPER_BLEU_WEIGHTS, PAPER_MAX_N, ROUGE_PKG_KEYS, SCRIPT_WEIGHTS, as_references, chimed_char_pad, is_chinese_char,
    mean_like_rouge_pkg, nltk_bleu_stats, nltk_bleu_stats_multi, nltk_brevity_penalty, nltk_corpus_bleu, paper_bleu,
    paper_bleu_stats, paper_rouge, paper_rouge_pair, rouge_pkg_pair,
)
from chimed_eval.metrics.text_standard import (
    ROUGE2_MIN_TOKENS, ROUGE_SCORE_KEYS, SACREBLEU_MAX_N, TEXT_EXTRA_HINT, TEXT_PACKAGES, TOKENIZATIONS, char_tokens,
    jieba_available, jieba_tokens, missing_text_packages, rouge2_undefined, rouge2_undefined_metrics, rouge_score_pair,
    sacrebleu_from_stats, sacrebleu_stats, sacrebleu_zh, sacrebleu_zh_tokens,
)

__all__ = [
    "PAPER_BLEU_METRICS", "PAPER_BLEU_TOKENIZATION", "PAPER_BLEU_WEIGHTS", "PAPER_MAX_N",
    "PAPER_ROUGE_TOKENIZATION", "ROUGE2_MIN_TOKENS", "ROUGE_PKG_KEYS", "ROUGE_SCORE_KEYS", "SACREBLEU_MAX_N",
    "SACREBLEU_ORDERS", "SACREBLEU_TOKENIZATION", "SCRIPT_WEIGHTS", "TEXT_EXTRA_HINT", "TEXT_PACKAGES",
    "TOKENIZATIONS", "BleuStats", "as_references", "bootstrap_corpus_ci", "char_tokens", "chimed_char_pad",
    "generation_stats", "is_chinese_char", "is_empty_generation", "jieba_available", "jieba_tokens",
    "mean_like_rouge_pkg", "missing_text_packages", "nltk_bleu_stats", "nltk_bleu_stats_multi",
    "nltk_brevity_penalty", "nltk_corpus_bleu", "paper_bleu", "paper_bleu_stats", "paper_rouge", "paper_rouge_pair",
    "rate_and_count", "rouge2_undefined", "rouge2_undefined_metrics", "rouge_pkg_pair", "rouge_score_pair",
    "sacrebleu_from_stats", "sacrebleu_stats", "sacrebleu_zh", "sacrebleu_zh_tokens", "same_length", "sum_stats",
    "text_metrics", "used_whole_budget",
]

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


def generation_stats(hyp: str, ref: str | Sequence[str]) -> dict:
    """Everything the reported figures need from one generation and its reference (or several
    references: multi-reference BLEU in both protocols, the best ROUGE over the references), as
    plain JSON values (stored in the per-sample record)."""
    return {
        "paper_bleu": paper_bleu_stats(hyp, ref).to_list(),
        "paper_rouge": paper_rouge_pair(hyp, ref),
        "sacrebleu": sacrebleu_stats(hyp, ref).to_list(),
        "rouge_char": rouge_score_pair(hyp, ref, "char"),
        "rouge_jieba": rouge_score_pair(hyp, ref, "jieba"),
    }


#: which way each figure of :func:`text_metrics` is better (:func:`chimed_eval.metrics.metric_direction`),
#: and the convention of :func:`rate_and_count` that every module follows: a ``<stem>_rate`` counts
#: failures (empty, truncated, unread answers: lower is better), a ``<stem>_count`` is a count
#: (no better side)
DIRECTIONS = {"paper_*": "higher", "sacrebleu*_cum": "higher", "rouge?_char": "higher", "rouge?_jieba": "higher",
              "*_rate": "lower", "*_count": None}
#: the headline figures (the console's default rows; names or patterns): generations: the main BLEU and ROUGE of each protocol (paper, standard)
HEADLINE = ("paper_rougeL", "paper_bleu1_cum", "rougeL_char", "sacrebleu4_cum")


def text_metrics(scores: Sequence, seed: int) -> list:
    """The figures of a generation task from its SampleScores' ``extra["stats"]`` (percentages,
    95% intervals over items: the bootstrap, Wilson for ROUGE when every item scores 0 or 1,
    :func:`chimed_eval.metrics.stats.mean_ci`), each naming its protocol and tokenization, plus the
    rates (and counts) of empty generations (:func:`is_empty_generation`, or flagged ``empty`` by
    the task) and of truncated ones (flagged ``truncated`` by the task)."""
    from chimed_eval.core.types import Metric
    from chimed_eval.metrics.stats import BOOTSTRAP, mean_ci

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
        out.append(Metric(name, fn(paper_total), lo, hi, n, "corpus", "paper", PAPER_BLEU_TOKENIZATION, BOOTSTRAP))
    for key, name in zip(ROUGE_PKG_KEYS, ("paper_rouge1", "paper_rouge2", "paper_rougeL")):
        vals = [float(x["paper_rouge"][key]) for x in st]
        lo, hi, method = mean_ci(vals, seed)
        out.append(Metric(name, 100.0 * mean_like_rouge_pkg(vals), 100 * lo, 100 * hi, n, "items", "paper",
                          PAPER_ROUGE_TOKENIZATION, method))

    sb = [BleuStats.from_list(x["sacrebleu"]) for x in st]
    sb_total = sum_stats(sb)
    for k in SACREBLEU_ORDERS:
        fn = (lambda s, k=k: sacrebleu_from_stats(s, k))
        lo, hi = bootstrap_corpus_ci(sb, fn, seed)
        out.append(Metric(f"sacrebleu{k}_cum", fn(sb_total), lo, hi, n, "corpus", "standard", SACREBLEU_TOKENIZATION,
                          BOOTSTRAP))
    for tok in TOKENIZATIONS:
        for key in ROUGE_SCORE_KEYS:
            vals = [float(x[f"rouge_{tok}"][key]) for x in st]
            lo, hi, method = mean_ci(vals, seed)
            out.append(Metric(f"{key}_{tok}", 100.0 * sum(vals) / n, 100 * lo, 100 * hi, n, "items", "standard", tok,
                              method))
    out += rouge2_undefined_metrics([s.extra.get("references") or str(s.gold) for s in scores])

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
    from chimed_eval.core.types import Metric

    n, k = len(flags), sum(1 for f in flags if f)
    return [Metric(f"{stem}_rate", 100.0 * k / n if n else 0.0, None, None, n, averaging, protocol, None),
            Metric(f"{stem}_count", float(k), None, None, n, None, protocol, None)]
