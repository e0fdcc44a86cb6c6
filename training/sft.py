"""Stage ``sft``: supervised fine-tuning on conversations (single or multi-turn) with the loss on
the answers only (:func:`chimed_eval.training.tokens.encode_chat` builds the labels; TRL's ``SFTTrainer``
trains on the prebuilt ``input_ids`` / ``labels``), from a mixture of sources in declared
proportions. Reported on held-out conversations: the answer-only token loss before and after,
and, with ``bleu.n`` > 0, greedy generations of the start and trained models scored by the
paper's BLEU against the references (generated through the evaluation backends)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .config import Source, TrainSettings
from .generate import Decoding, generate_answers
from .registry import StageSpec, register
from .stage import (Stage, final_report, held_out_loss, is_main_process, load_causal_lm, log, make_dataset,
                    save_final, trained_model)


@dataclass
class BleuEval:
    """Greedy generation on the first ``n`` held-out conversations (0: off)."""

    n: int = 0
    max_new_tokens: int = 64
    batch_size: int = 8
    backend: str = "hf"


@dataclass
class SFTStageConfig:
    model: str
    output_dir: str
    sources: list[Source] = field(default_factory=list)
    total_examples: int | None = None  # mixture size; None: every record once
    heldout: list[Source] = field(default_factory=list)
    format: str = "paper"  # paper ([human]:...\n[bot]:...) | chat (the tokenizer's chat template)
    bleu: BleuEval = field(default_factory=BleuEval)
    allow_eval_overlap: list[str] = field(default_factory=list)
    train: TrainSettings = field(default_factory=TrainSettings)


def encode_all(tok: Any, chats: Sequence[Any], fmt: str, max_length: int) -> tuple[list[dict], int]:
    from .tokens import encode_chat

    rows, dropped = [], 0
    for c in chats:
        r = encode_chat(tok, c.messages, fmt, max_length)
        if r is None:
            dropped += 1
        else:
            rows.append(r)
    return rows, dropped


def bleu_items(chats: Sequence[Any], fmt: str, tok: Any, n: int) -> list[tuple[str, str, str]]:
    """(id, context, reference): the conversation up to its last assistant turn, and that turn."""
    from .tokens import prompt_text

    items = []
    for i, c in enumerate(chats[:n]):
        last = max(k for k, (r, _) in enumerate(c.messages) if r == "assistant")
        items.append((c.origin or f"heldout-{i}", prompt_text(c.messages[:last], fmt, tok), c.messages[last][1]))
    return items


def greedy_bleu(model: str, items: Sequence[tuple[str, str, str]], b: BleuEval, seed: int) -> tuple[list[str], dict]:
    from .measure import bleu_figures

    dec = Decoding(max_new_tokens=b.max_new_tokens, temperature=0.0, batch_size=b.batch_size)
    gens = generate_answers(model, [(i, c) for i, c, _ in items], 1, dec, seed, backend=b.backend)
    hyps = [gens[i][0] for i, _, _ in items]
    return hyps, bleu_figures(hyps, [r for _, _, r in items], seed)


def sft_trainer(model: Any, tok: Any, rows: list[dict], st: Stage, max_length: int) -> Any:
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(**st.training_kwargs(), max_length=max_length, packing=False,
                     completion_only_loss=False, dataset_kwargs={"skip_prepare_dataset": True})
    return SFTTrainer(model=model, args=args, train_dataset=make_dataset(rows), processing_class=tok)


def run_sft(cfg: SFTStageConfig) -> dict[str, Any]:
    from .measure import bleu_delta
    from .tokens import encode_chat

    st = Stage("sft", cfg, cfg.output_dir, cfg.train)
    model, tok = load_causal_lm(cfg.model, cfg.train)
    encoded: dict[int, dict | None] = {}  # id(record) -> its encoding: each conversation is encoded once

    def usable(c: Any) -> bool:  # only conversations with an answer token within max_length enter the mixture
        encoded[id(c)] = encode_chat(tok, c.messages, cfg.format, cfg.train.max_length)
        return encoded[id(c)] is not None

    chats = st.records(cfg.sources, "chat", cfg.total_examples, cfg.allow_eval_overlap, usable=usable)
    picked = [encoded[id(c)] for c in chats]  # the mixture hands back the very records usable() saw
    rows, dropped = [r for r in picked if r is not None], sum(r is None for r in picked)
    if not rows:
        raise st.error("no conversation has an answer token within max_length")
    n_target = sum(sum(1 for x in r["labels"] if x != -100) for r in rows)
    st.report["data"].update(conversations=len(rows), dropped_no_target=dropped, target_tokens=n_target,
                             format=cfg.format, turns=sum(sum(1 for r, _ in c.messages if r == "assistant") for c in chats))
    held_rows, items = None, []
    if cfg.heldout:
        held = st.records(cfg.heldout, "chat", None, cfg.allow_eval_overlap, role="heldout")
        st.disjoint(chats, held)
        held_rows, _ = encode_all(tok, held, cfg.format, cfg.train.max_length)
        items = bleu_items(held, cfg.format, tok, cfg.bleu.n) if cfg.bleu.n > 0 else []
        if is_main_process():
            st.report["before"] = held_out_loss(model, held_rows, cfg.train, st.seed)
    trainer = sft_trainer(model, tok, rows, st, cfg.train.max_length)
    st.train(trainer)
    out = Path(cfg.output_dir)
    save_final(trainer, tok, out)
    if held_rows is not None and is_main_process():
        st.report["after"] = held_out_loss(trained_model(trainer, out, cfg.train), held_rows, cfg.train, st.seed)
    if items and is_main_process():
        log(f"[sft] BLEU: greedy generation on {len(items)} held-out prompts, start and trained model")
        hyps0, b0 = greedy_bleu(cfg.model, items, cfg.bleu, st.seed)
        hyps1, b1 = greedy_bleu(str(out), items, cfg.bleu, st.seed)
        refs = [r for _, _, r in items]
        st.report["bleu"] = {"before": b0, "after": b1, "delta": bleu_delta(hyps0, hyps1, refs, st.seed),
                             "changed_generations": sum(a != b for a, b in zip(hyps0, hyps1)),
                             "examples": [{"prompt": c, "reference": r, "before": h0, "after": h1}
                                          for (_, c, r), h0, h1 in list(zip(items, hyps0, hyps1))[:5]]}
        for k in ("before", "after", "delta"):
            f = st.report["bleu"][k]["bleu1"]
            log(f"[sft] held-out BLEU-1 {k}: {f['value']:.2f} [{f['ci_low']:.2f}, {f['ci_high']:.2f}] n={f['n']}")
    return final_report(st, "answer loss")


register(StageSpec("sft", "supervised fine-tuning (answer-only loss)", SFTStageConfig, run_sft, order=20, required=True,
                   inputs=(("model", "pretrain"),)))
