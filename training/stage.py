"""What every stage does the same way: load its records (mixture, evaluation-overlap check,
held-out disjointness), load the model, run the trainer (resume, loss curve), save, and write
``metrics.json`` with the figures before and after."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from chimed_eval.core.errors import ConfigError

from .config import Source, TrainSettings, attention, model_dir, resume_checkpoint, save_json, training_kwargs
from .data import mixture
from .overlap import check_no_eval_overlap, decontaminate, record_texts


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def log(msg: str) -> None:
    if is_main_process():
        print(msg, flush=True)


class Stage:
    def __init__(self, name: str, cfg: Any, output_dir: str, train: TrainSettings) -> None:
        from .deepspeed import prepare_environment

        if train.deepspeed:
            prepare_environment()
        self.name = name
        self.cfg = cfg
        self.out = Path(output_dir)
        self.train_settings = train
        self.seed = train.seed
        self.started = time.time()
        self.report: dict[str, Any] = {"stage": name, "config": asdict(cfg), "data": {}}
        self._kwargs = training_kwargs(train, output_dir)  # a bad setting fails before any data is read
        if is_main_process():
            self.out.mkdir(parents=True, exist_ok=True)
            save_json(asdict(cfg), self.out / "stage_config.json")

    def error(self, msg: str) -> ConfigError:
        return ConfigError(f"{self.name}: {msg}")

    def records(self, sources: Sequence[Source], schema: str, total: int | None, allow: Sequence[str],
                role: str = "train", usable: Any = None) -> list[Any]:
        recs, counts = mixture(sources, schema, total, self.seed, usable)
        check = check_no_eval_overlap(recs, f"{self.name} {role} data", allow)
        self.report["data"][f"{role}_sources"] = counts
        self.report["data"].setdefault("eval_overlap_allowed", list(allow))
        if "eval_overlap" not in self.report["data"]:
            self.report["data"]["eval_overlap"] = check.as_dict()
            log_overlap_check(self.name, check)
        recs, ngram = decontaminate(recs, f"{self.name} {role} data", allow,
                                    policy=self.train_settings.eval_ngram_overlap)
        self.report["data"].setdefault("eval_ngram_overlap", {})[role] = ngram.as_dict()
        log(f"[{self.name}] {role}: {ngram.n}-gram check against {len(ngram.checked)} task(s)' test items "
            f"({ngram.ngrams} n-grams, {ngram.seconds:.1f}s): "
            + (f"dropped {ngram.dropped} of {ngram.records} records sharing one "
               f"(test items touched per task: {dict(ngram.contaminated)})" if ngram.dropped else "none shared")
            + (f"; allowed tasks: {list(allow)}" if allow else ""))
        if not recs:
            raise self.error(f"{role} data: no record left after removing those that share {ngram.n}-grams "
                             "with evaluation test items")
        log(f"[{self.name}] {role}: {len(recs)} records from {counts}")
        return recs

    def disjoint(self, train: Sequence[Any], held: Sequence[Any]) -> None:
        """Held-out records share no text (a question, an answer, a document) with training."""
        seen = set(record_texts(train))
        shared = [t for t in record_texts(held) if t in seen]
        if shared:
            raise self.error(f"{len(shared)} held-out texts are also in the training data, e.g. {shared[0][:60]!r}")
        self.report["data"]["heldout_disjoint_from_train"] = True

    def training_kwargs(self) -> dict[str, Any]:
        kw = dict(self._kwargs)
        if self.train_settings.deepspeed:
            self.report["deepspeed"] = kw["deepspeed"]
        return kw

    def train(self, trainer: Any) -> None:
        ckpt = resume_checkpoint(self.train_settings, str(self.out))
        if ckpt:
            log(f"[{self.name}] resuming from {ckpt}")
        if self.train_settings.deepspeed:
            log(f"[{self.name}] DeepSpeed {self.train_settings.deepspeed} offload={self.train_settings.offload} "
                f"world_size={trainer.args.world_size}")
        result = trainer.train(resume_from_checkpoint=ckpt)
        if trainer.is_deepspeed_enabled:
            zs = trainer.model_wrapped.zero_optimization_stage() if hasattr(trainer.model_wrapped, "zero_optimization_stage") else None
            self.report["deepspeed_engine"] = {"zero_stage": zs, "world_size": trainer.args.world_size}
            log(f"[{self.name}] ran under DeepSpeed ZeRO stage {zs} on {trainer.args.world_size} process(es)")
        curve = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
        self.report["train"] = {"steps": trainer.state.global_step, "resumed_from": ckpt, "loss_curve": curve,
                                "train_runtime_s": result.metrics.get("train_runtime"),
                                "world_size": trainer.args.world_size}
        if is_main_process():
            save_json(curve, self.out / "loss_curve.json")


def log_overlap_check(name: str, check: Any) -> None:
    """Which evaluation tasks' test items the data was checked against, and which were skipped."""
    log(f"[{name}] no evaluation test item in the data: checked {len(check.checked)} task(s)"
        + (f"; skipped (data missing): {', '.join(check.skipped)}" if check.skipped else ""))


def load_causal_lm(spec: str, train: TrainSettings) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_dir(spec)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation=attention(train.attn_implementation),
                                                 dtype="float32")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def make_dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(rows)


def save_final(trainer: Any, tokenizer: Any, out: Path) -> None:
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))


def held_out_loss(model: Any, rows: Sequence[dict[str, list[int]]], train: TrainSettings, seed: int) -> dict[str, Any]:
    from .measure import loss_figure, token_nll

    sums, counts = token_nll(model, rows, train.batch_size)
    fig = loss_figure(sums, counts, seed)
    fig["_rows"] = (sums.tolist(), counts.tolist())
    return fig


def trained_model(trainer: Any, out: Path, train: TrainSettings, loader: Any = None) -> Any:
    """The model to measure after training: the trainer's own, or under DeepSpeed / several
    processes (parameters partitioned) the saved final model reloaded on the main process."""
    if not trainer.is_deepspeed_enabled and trainer.args.world_size == 1:
        return trainer.model
    return (loader or load_causal_lm)(str(out), train)[0]


def final_report(st: Stage, what: str) -> dict[str, Any]:
    """Before/after figures (with the paired difference when both exist), metrics.json, a summary."""
    import numpy as np

    from .measure import loss_delta

    rep = st.report
    if "before" in rep and "after" in rep and "_rows" in rep["before"]:
        a, b = rep["before"].pop("_rows"), rep["after"].pop("_rows")
        rep["delta"] = loss_delta((np.asarray(a[0]), np.asarray(a[1])), (np.asarray(b[0]), np.asarray(b[1])), st.seed)
    for k in ("before", "after"):
        if k in rep:
            rep[k].pop("_rows", None)
    rep["elapsed_s"] = round(time.time() - st.started, 1)
    if is_main_process():
        save_json(rep, st.out / "metrics.json")
        for k in ("before", "after", "delta"):
            if k in rep:
                f = rep[k]
                log(f"[{st.name}] held-out {what} {k}: {f['value']:.4f} [{f['ci_low']:.4f}, {f['ci_high']:.4f}] n={f['n']}"
                    + (f" ppl={f['perplexity']:.2f}" if "perplexity" in f else ""))
    return rep
