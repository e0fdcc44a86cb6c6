"""Stage ``rejection``: rejection sampling as the paper did it. For each prompt, sample
``n_samples`` answers from the policy through an evaluation backend (``hf``, ``vllm``, ...),
add the external answers if asked (the prompt file's ``external`` list, e.g. a stronger model's
answers as the paper used GPT-3.5/4's; ``include_reference`` adds the reference answer), score
every candidate with the reward model, keep the best ``keep``, and run the ``sft`` stage on them
(optionally mixed with other chat sources).

With ``evaluate`` set, the policy and the result each sample one answer (same seeds) for
held-out prompts, disjoint from the selection prompts; the answers are judged by a second reward
model (``evaluate.judge``: trained on a disjoint split, never the one that selected) and by BLEU
against the references. Files: ``selected.jsonl`` (the SFT data, with each candidate's score),
``rejection_metrics.json``; the SFT stage writes ``metrics.json`` and the model in ``output_dir``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from chimed_eval.core.errors import ConfigError

from .config import Source, TrainSettings, save_json
from .data import PromptItem, load_source, write_jsonl
from .generate import Decoding, generate_answers
from .overlap import check_no_eval_overlap
from .registry import StageSpec, register
from .reward import encode_answer, load_reward_model, reward_max_length
from .sft import SFTStageConfig, run_sft
from .stage import is_main_process, log, log_overlap_check
from .tokens import paper_segments


@dataclass
class RejectionEval:
    prompts: list[Source] = field(default_factory=list)  # held-out prompts with references
    judge: str | None = None  # a reward model trained on a split disjoint from the selector's
    decoding: Decoding = field(default_factory=Decoding)
    n_samples: int = 1  # answers per prompt and model; figures average them per prompt
    seed: int = 4321


@dataclass
class RejectionStageConfig:
    policy: str
    reward_model: str
    output_dir: str
    prompts: list[Source] = field(default_factory=list)
    n_samples: int = 4
    keep: int = 1
    include_reference: bool = False
    include_external: bool = True
    decoding: Decoding = field(default_factory=Decoding)
    backend: str = "hf"
    seed: int = 0
    mix: list[Source] = field(default_factory=list)  # other chat sources trained with the selection
    total_examples: int | None = None
    format: str = "paper"
    evaluate: RejectionEval = field(default_factory=RejectionEval)
    allow_eval_overlap: list[str] = field(default_factory=list)
    train: TrainSettings = field(default_factory=TrainSettings)


def context(p: PromptItem) -> str:
    return "".join(t for t, _ in paper_segments([("user", p.prompt)]))


def score_answers(reward_model: str, items: Sequence[tuple[str, str]], train: TrainSettings) -> list[float]:
    """Rewards of (prompt, answer) pairs."""
    from .measure import reward_scores

    model, tok = load_reward_model(reward_model, train)
    n = reward_max_length(reward_model, train.max_length)
    rows = [encode_answer(tok, p, a, n) for p, a in items]
    return reward_scores(model, rows, tok.pad_token_id, train.batch_size)


def select(cfg: RejectionStageConfig, prompts: Sequence[PromptItem]) -> tuple[list[dict], dict[str, Any]]:
    """The best ``keep`` candidates per prompt (ties: the earlier candidate)."""
    gens = generate_answers(cfg.policy, [(p.id, context(p)) for p in prompts], cfg.n_samples, cfg.decoding, cfg.seed,
                            backend=cfg.backend)
    cands: list[tuple[PromptItem, str, str]] = []
    for p in prompts:
        cands += [(p, f"sample{j}", a) for j, a in enumerate(gens[p.id])]
        if cfg.include_external:
            cands += [(p, f"external{j}", a) for j, a in enumerate(p.external)]
        if cfg.include_reference and p.reference:
            cands.append((p, "reference", p.reference))
    scores = score_answers(cfg.reward_model, [(p.prompt, a) for p, _, a in cands], cfg.train)
    chosen: list[dict] = []
    by_origin: dict[str, int] = {}
    for p in prompts:
        mine = [(s, i, kind, a) for i, ((q, kind, a), s) in enumerate(zip(cands, scores)) if q.id == p.id and a.strip()]
        mine.sort(key=lambda t: (-t[0], t[1]))
        for s, _, kind, a in mine[: cfg.keep]:
            origin = "sample" if kind.startswith("sample") else kind.rstrip("0123456789")
            by_origin[origin] = by_origin.get(origin, 0) + 1
            chosen.append({"messages": [{"role": "user", "content": p.prompt}, {"role": "assistant", "content": a}],
                           "id": p.id, "candidate": kind, "reward": s,
                           "candidates": [{"candidate": k, "reward": sc} for sc, _, k, _ in mine]})
    sample_scores = [s for (_, k, _), s in zip(cands, scores) if k.startswith("sample")]
    stats = {"prompts": len(prompts), "candidates": len(cands), "selected": len(chosen),
             "selected_by_origin": by_origin, "mean_sample_reward": sum(sample_scores) / max(1, len(sample_scores)),
             "mean_selected_reward": sum(c["reward"] for c in chosen) / max(1, len(chosen))}
    return chosen, stats


def evaluate_rejection(cfg: RejectionStageConfig, before: str, after: str, train_prompts: Sequence[PromptItem]) -> dict:
    from .measure import bleu_delta, bleu_figures, mean_figure

    ev = cfg.evaluate
    items = [p for s in ev.prompts for p in load_source(s, "prompts")]
    seen = {p.prompt for p in train_prompts}
    overlap = [p.prompt for p in items if p.prompt in seen]
    if overlap:
        raise ConfigError(f"rejection.evaluate: {len(overlap)} held-out prompts are selection prompts, e.g. {overlap[0][:40]!r}")
    ctx = [(p.id, context(p)) for p in items]
    k = max(1, ev.n_samples)
    a0 = generate_answers(before, ctx, k, ev.decoding, ev.seed, backend=cfg.backend)
    a1 = generate_answers(after, ctx, k, ev.decoding, ev.seed, backend=cfg.backend)
    h0, h1 = [a0[p.id] for p in items], [a1[p.id] for p in items]  # k answers each, sample j of both
    out: dict[str, Any] = {"n": len(items), "n_samples": k, "decoding": ev.decoding.__dict__,
                           "answer_chars": {"before": _mean_len(h0), "after": _mean_len(h1)}}
    for name, rm in (("judge", ev.judge), ("selector", cfg.reward_model)):
        if rm is None:
            continue
        flat = [(p.prompt, x) for h in (h0, h1) for p, xs in zip(items, h) for x in xs]
        s = np.asarray(score_answers(rm, flat, cfg.train)).reshape(2, len(items), k)
        s0, s1 = s[0].mean(1), s[1].mean(1)  # per prompt: the mean over its k answers
        wins = (np.sign(s[1] - s[0]) * 0.5 + 0.5).mean(1)  # answer j after against answer j before
        out[name] = {"model": rm, "before": mean_figure(s0.tolist(), ev.seed), "after": mean_figure(s1.tolist(), ev.seed),
                     "delta": mean_figure((s1 - s0).tolist(), ev.seed), "win_rate": mean_figure(wins.tolist(), ev.seed)}
    refs = [p.reference or "" for p in items]
    if all(refs):
        out["bleu"] = {"before": bleu_figures(h0, refs, ev.seed), "after": bleu_figures(h1, refs, ev.seed),
                       "delta": bleu_delta(h0, h1, refs, ev.seed)}
    out["examples"] = [{"prompt": p.prompt, "reference": p.reference, "before": x[0], "after": y[0]}
                       for p, x, y in list(zip(items, h0, h1))[:5]]
    return out


def _mean_len(answers: Sequence[Sequence[str]]) -> float:
    lens = [len(a) for xs in answers for a in xs]
    return sum(lens) / max(1, len(lens))


def run_rejection(cfg: RejectionStageConfig) -> dict[str, Any]:
    out = Path(cfg.output_dir)
    if cfg.n_samples < 1 or cfg.keep < 1:
        raise ConfigError("rejection: n_samples and keep must be >= 1")
    prompts = [p for s in cfg.prompts for p in load_source(s, "prompts")]
    if not prompts:
        raise ConfigError("rejection: no prompts")
    check = check_no_eval_overlap(prompts, "rejection prompts", cfg.allow_eval_overlap)
    log_overlap_check("rejection", check)
    report: dict[str, Any] = {"stage": "rejection", "eval_overlap": check.as_dict()}
    sel_file, done = out / "selected.jsonl", out / "selected.done"
    if is_main_process():
        done.unlink(missing_ok=True)
        log(f"[rejection] {len(prompts)} prompts x {cfg.n_samples} samples from {cfg.policy}, scored by {cfg.reward_model}")
        chosen, report["selection"] = select(cfg, prompts)
        write_jsonl(sel_file, chosen)
        done.write_text("ok\n")
        log(f"[rejection] selected {len(chosen)}: {report['selection']['selected_by_origin']}")
    else:  # other processes (torchrun) wait for the main process's selection
        import time

        while not done.exists():
            time.sleep(2)
    sft = SFTStageConfig(model=cfg.policy, output_dir=str(out), sources=[Source(path=str(sel_file)), *cfg.mix],
                         total_examples=cfg.total_examples, format=cfg.format,
                         allow_eval_overlap=cfg.allow_eval_overlap, train=cfg.train)
    report["sft"] = {k: v for k, v in run_sft(sft).items() if k in ("data", "train")}
    if cfg.evaluate.prompts and is_main_process():
        report["evaluation"] = ev = evaluate_rejection(cfg, cfg.policy, str(out), prompts)
        for name in ("judge", "selector"):
            if name in ev:
                d = ev[name]["delta"]
                log(f"[rejection] {name} reward after - before: {d['value']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}] "
                    f"n={d['n']}; win rate {ev[name]['win_rate']['value']:.3f}")
        if "bleu" in ev:
            d = ev["bleu"]["delta"]["bleu1"]
            log(f"[rejection] BLEU-1 after - before: {d['value']:.2f} [{d['ci_low']:.2f}, {d['ci_high']:.2f}]")
    if is_main_process():
        save_json(report, out / "rejection_metrics.json")
    return report


register(StageSpec("rejection", "rejection sampling, then SFT on the best", RejectionStageConfig, run_rejection,
                   order=50, required=True, done_file="rejection_metrics.json",
                   inputs=(("policy", "sft"), ("reward_model", "reward"), ("evaluate.judge", "judge"))))
