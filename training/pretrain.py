"""Stage ``pretrain``: continued pre-training, a causal LM on raw text packed into fixed blocks
(:func:`chimed_eval.training.tokens.pack_documents`: documents do not attend to each other), trained by
transformers' ``Trainer``; resumable from its checkpoints (``train.resume: true``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Source, TrainSettings
from .registry import StageSpec, register
from .stage import (Stage, final_report, held_out_loss, is_main_process, load_causal_lm, make_dataset, save_final,
                    trained_model)


@dataclass
class PretrainConfig:
    model: str
    output_dir: str
    sources: list[Source] = field(default_factory=list)
    heldout: list[Source] = field(default_factory=list)  # reported: token loss / perplexity before and after
    block_size: int = 256
    total_documents: int | None = None  # with several sources: the mixture size
    allow_eval_overlap: list[str] = field(default_factory=list)
    train: TrainSettings = field(default_factory=TrainSettings)


def tokenize_documents(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    return [tokenizer.encode(t, add_special_tokens=False) for t in texts]


def packed_rows(tokenizer: Any, texts: list[str], block_size: int, drop_last: bool) -> list[dict[str, list[int]]]:
    from .tokens import pack_documents

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return pack_documents(tokenize_documents(tokenizer, texts), block_size, tokenizer.eos_token_id, pad, drop_last)


def run_pretrain(cfg: PretrainConfig) -> dict[str, Any]:
    from transformers import Trainer, TrainingArguments

    from .tokens import PackedCollator

    st = Stage("pretrain", cfg, cfg.output_dir, cfg.train)
    texts = st.records(cfg.sources, "text", cfg.total_documents, cfg.allow_eval_overlap)
    model, tok = load_causal_lm(cfg.model, cfg.train)
    rows = packed_rows(tok, texts, cfg.block_size, drop_last=True)
    if not rows:
        raise st.error(f"the text gives no full block of {cfg.block_size} tokens")
    st.report["data"].update(documents=len(texts), blocks=len(rows), tokens=len(rows) * cfg.block_size,
                             block_size=cfg.block_size, cross_document_attention=False)
    held = None
    if cfg.heldout:
        htexts = st.records(cfg.heldout, "text", None, cfg.allow_eval_overlap, role="heldout")
        held = packed_rows(tok, htexts, cfg.block_size, drop_last=False)
        st.disjoint(texts, htexts)
        if is_main_process():
            st.report["before"] = held_out_loss(model, held, cfg.train, st.seed)
    args = TrainingArguments(**st.training_kwargs())
    trainer = Trainer(model=model, args=args, train_dataset=make_dataset(rows), data_collator=PackedCollator(),
                      processing_class=tok)
    st.train(trainer)
    save_final(trainer, tok, Path(cfg.output_dir))
    if held is not None and is_main_process():
        st.report["after"] = held_out_loss(trained_model(trainer, Path(cfg.output_dir), cfg.train), held, cfg.train,
                                           st.seed)
    return final_report(st, "token loss")


register(StageSpec("pretrain", "continued pre-training on packed raw text", PretrainConfig, run_pretrain, order=10,
                   required=True))
