"""The figures the stages report, each with a seeded 95% bootstrap interval over items:
held-out token loss and perplexity, answer-only loss, paper BLEU against references, reward pair
accuracy, and paired differences between two models on the same items."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from chimed_eval.metrics.stats import bootstrap_mean_ci
from chimed_eval.metrics.stats import wilson as stats_wilson

from .tokens import IGNORE

N_BOOT = 2000


def figure(value: float, lo: float, hi: float, n: int, **extra: Any) -> dict[str, Any]:
    return {"value": value, "ci_low": lo, "ci_high": hi, "n": n, **extra}


def _paired_boot(n: int, stat: Callable[[np.ndarray], float], seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    vals = [stat(rng.integers(0, n, size=n)) for _ in range(N_BOOT)]
    return float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))


# --- token losses -------------------------------------------------------------------------------------


def token_nll(model: Any, rows: Sequence[dict[str, list[int]]], batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (summed NLL of its target tokens, their count). Rows with ``position_ids`` (packed
    blocks, equal length) go without an attention mask, like in training; others are right-padded."""
    import torch

    sums, counts = [], []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            batch = rows[i: i + batch_size]
            width = max(len(r["input_ids"]) for r in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for j, r in enumerate(batch):
                n = len(r["input_ids"])
                ids[j, :n] = torch.tensor(r["input_ids"])
                labels[j, :n] = torch.tensor(r["labels"])
                mask[j, :n] = 1
            kw: dict[str, Any] = {"input_ids": ids.to(model.device), "use_cache": False}
            if "position_ids" in batch[0]:
                kw["position_ids"] = torch.tensor([r["position_ids"] for r in batch], device=model.device)
            else:
                kw["attention_mask"] = mask.to(model.device)
            logits = model(**kw).logits.float()[:, :-1]
            tgt = labels[:, 1:].to(logits.device)
            lp = torch.log_softmax(logits, -1)
            valid = tgt != IGNORE
            nll = -lp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1) * valid
            sums.extend(nll.sum(1).tolist())
            counts.extend(valid.sum(1).tolist())
    return np.asarray(sums, dtype=np.float64), np.asarray(counts, dtype=np.float64)


def loss_figure(sums: np.ndarray, counts: np.ndarray, seed: int) -> dict[str, Any]:
    """Mean token NLL (total NLL / total tokens) and perplexity, intervals over rows."""
    ok = counts > 0
    sums, counts = sums[ok], counts[ok]
    value = float(sums.sum() / counts.sum())
    lo, hi = _paired_boot(len(sums), lambda idx: float(sums[idx].sum() / counts[idx].sum()), seed)
    return figure(value, lo, hi, int(len(sums)), tokens=int(counts.sum()), perplexity=math.exp(value),
                  perplexity_ci=[math.exp(lo), math.exp(hi)])


def loss_delta(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], seed: int) -> dict[str, Any]:
    """Token loss of b minus a on the same rows, paired bootstrap."""
    (sa, ca), (sb, cb) = a, b
    ok = (ca > 0) & (cb > 0)
    sa, ca, sb, cb = sa[ok], ca[ok], sb[ok], cb[ok]
    stat = lambda idx: float(sb[idx].sum() / cb[idx].sum() - sa[idx].sum() / ca[idx].sum())  # noqa: E731
    lo, hi = _paired_boot(len(sa), stat, seed)
    return figure(stat(np.arange(len(sa))), lo, hi, int(len(sa)))


# --- BLEU -----------------------------------------------------------------------------------------------


Hyps = Sequence[str] | Sequence[Sequence[str]]


def _item_stats(hyps: Hyps, refs: Sequence[str]) -> list[Any]:
    """Per item, the BLEU statistics of its hypothesis, or the sum over its hypotheses when an
    item has several (samples of one prompt): corpus BLEU adds them anyway, and intervals then
    resample prompts, not samples of the same prompt."""
    from chimed_eval.metrics.text import paper_bleu_stats, sum_stats

    return [sum_stats([paper_bleu_stats(x, r) for x in ([h] if isinstance(h, str) else h)]) for h, r in zip(hyps, refs)]


def _parts(total: Any) -> dict[str, float]:
    """What a corpus BLEU is made of: n-gram precisions, the brevity penalty, the length ratio."""
    from chimed_eval.metrics.text import nltk_brevity_penalty

    return {"precision1": total.correct[0] / max(1, total.total[0]), "precision2": total.correct[1] / max(1, total.total[1]),
            "brevity_penalty": nltk_brevity_penalty(total.hyp_len, total.ref_len),
            "length_ratio": total.hyp_len / max(1, total.ref_len)}


def bleu_figures(hyps: Hyps, refs: Sequence[str], seed: int) -> dict[str, Any]:
    """The paper's BLEU-1 and BLEU-2 (chimed_eval.metrics.text, corpus level, x100), and their parts."""
    from chimed_eval.metrics.text import PAPER_BLEU_WEIGHTS, bootstrap_corpus_ci, nltk_corpus_bleu, sum_stats

    stats = _item_stats(hyps, refs)
    out: dict[str, Any] = {}
    for name, w in PAPER_BLEU_WEIGHTS.items():
        fn = lambda s, w=w: 100.0 * nltk_corpus_bleu(s, w)  # noqa: E731
        lo, hi = bootstrap_corpus_ci(stats, fn, seed)
        out[name] = figure(fn(sum_stats(stats)), lo, hi, len(stats))
    out["parts"] = _parts(sum_stats(stats))
    return out


def bleu_delta(hyps_a: Hyps, hyps_b: Hyps, refs: Sequence[str], seed: int) -> dict[str, Any]:
    """Corpus BLEU of b minus a on the same items (paired bootstrap over items)."""
    from chimed_eval.metrics.text import PAPER_BLEU_WEIGHTS, BleuStats, nltk_corpus_bleu

    out = {}
    ma = np.asarray([s.to_list() for s in _item_stats(hyps_a, refs)], dtype=np.int64)
    mb = np.asarray([s.to_list() for s in _item_stats(hyps_b, refs)], dtype=np.int64)
    for name, w in PAPER_BLEU_WEIGHTS.items():
        def stat(idx: np.ndarray, w=w) -> float:
            sa = BleuStats.from_list(ma[idx].sum(0).tolist())
            sb = BleuStats.from_list(mb[idx].sum(0).tolist())
            return 100.0 * (nltk_corpus_bleu(sb, w) - nltk_corpus_bleu(sa, w))

        lo, hi = _paired_boot(len(refs), stat, seed)
        out[name] = figure(stat(np.arange(len(refs))), lo, hi, len(refs))
    return out


# --- rewards --------------------------------------------------------------------------------------------


def mean_figure(values: Sequence[float], seed: int, **extra: Any) -> dict[str, Any]:
    lo, hi = bootstrap_mean_ci(values, seed)
    return figure(float(np.mean(values)) if len(values) else float("nan"), lo, hi, len(values), **extra)


def reward_scores(model: Any, rows: Sequence[Sequence[int]], pad_id: int, batch_size: int = 8) -> list[float]:
    """Scalar rewards of token rows (right-padded; the sequence head reads the last real token)."""
    import torch

    out: list[float] = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            batch = rows[i: i + batch_size]
            width = max(len(r) for r in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for j, r in enumerate(batch):
                ids[j, : len(r)] = torch.tensor(r)
                mask[j, : len(r)] = 1
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
            out.extend(logits[:, 0].float().tolist())
    return out


def wilson(k: float, n: int) -> tuple[float, float]:
    """Wilson score interval of a proportion (not degenerate at 0/n or n/n, unlike the bootstrap):
    the evaluation's one implementation (:func:`chimed_eval.metrics.stats.wilson`); (nan, nan) for
    n = 0, as the other training figures give for no data."""
    return stats_wilson(k, n) or (float("nan"), float("nan"))


def pair_accuracy(chosen: Sequence[float], rejected: Sequence[float], seed: int) -> dict[str, Any]:
    wins = [1.0 if c > r else 0.0 for c, r in zip(chosen, rejected)]
    return mean_figure(wins, seed, chance=0.5, wilson=list(wilson(sum(wins), len(wins))))
