"""Stage ``reward``: a scalar head on the LM (``AutoModelForSequenceClassification``, one label)
trained by TRL's ``RewardTrainer`` with the pairwise Bradley–Terry loss
``-log sigmoid(r(prompt, chosen) - r(prompt, rejected))``, reporting pair accuracy on held-out
pairs, per kind of pair.

Without human preference data, pairs are built from question/answer data (docs/en/howto/training.md):

* ``easy``: the real answer against the answer of another question (``builtin: cmd-pairs``);
* ``hard``: the real answer against the model's own sampled answer to the same question
  (``hard_negatives`` / ``heldout_hard``: a prompts source with references, and the model whose
  samples are the rejected answers, generated through an evaluation backend).

A pair renders as the evaluation prompt ``[human]:{prompt}\\n[bot]:`` followed by the answer and
EOS; the prompt keeps at most its last ``max_length // 2`` tokens, the answer is cut to fit.

``match_lengths`` cuts the longer answer of every pair to the shorter one's token count, so the
model cannot win by answer length (a sampled answer cut at ``max_new_tokens`` against a longer
reference otherwise teaches "longer is better"); held-out accuracy is then reported both at
natural lengths (how the model scores answers in use) and length-matched (``<kind>/matched``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from chimed_eval.core.errors import ConfigError

from .config import Source, TrainSettings, attention, model_dir, save_json
from .data import Pair, load_source
from .generate import Decoding, generate_answers
from .registry import StageSpec, register
from .stage import Stage, is_main_process, log, make_dataset, save_final
from .tokens import paper_segments

READOUT_FILE = "reward_head.json"


@dataclass
class HardNegatives:
    """Pairs (reference, the model's own sample) for the prompts of ``source`` (a prompts source
    with references). ``model`` defaults to the stage's ``model`` (the policy being judged)."""

    source: Source | None = None
    model: str | None = None
    decoding: Decoding = field(default_factory=Decoding)
    backend: str = "hf"
    seed: int = 1234


@dataclass
class RewardStageConfig:
    model: str
    output_dir: str
    sources: list[Source] = field(default_factory=list)  # pairs (easy, your own)
    hard_negatives: HardNegatives = field(default_factory=HardNegatives)
    total_pairs: int | None = None
    heldout: list[Source] = field(default_factory=list)  # held-out pairs, accuracy per kind
    heldout_hard: HardNegatives = field(default_factory=HardNegatives)
    report_before: bool = True  # held-out accuracy of the untrained head too (costs one more pass)
    match_lengths: bool = False  # cut both answers of a pair to the shorter one's token count
    allow_eval_overlap: list[str] = field(default_factory=list)
    train: TrainSettings = field(default_factory=TrainSettings)


def hard_pairs(h: HardNegatives, default_model: str) -> list[Pair]:
    if h.source is None:
        return []
    items = [p for p in load_source(h.source, "prompts") if p.reference]
    if not items:
        raise ConfigError(f"hard negatives: {h.source.label()} has no prompts with a reference answer")
    model = h.model or default_model
    ctx = [(p.id, "".join(t for t, _ in paper_segments([("user", p.prompt)]))) for p in items]
    log(f"[reward] sampling {len(ctx)} answers from {model} for hard pairs")
    gens = generate_answers(model, ctx, 1, h.decoding, h.seed, backend=h.backend)
    return [Pair(p.prompt, p.reference, gens[p.id][0], "hard", p.origin) for p in items]


def _prompt_ids(tok: Any, prompt: str, max_length: int) -> list[int]:
    return tok.encode(paper_segments([("user", prompt)])[0][0], add_special_tokens=False)[-(max_length // 2):]


def _answer_ids(tok: Any, answer: str, room: int) -> list[int]:
    return tok.encode(answer.rstrip("\n") + "\n", add_special_tokens=False)[:room]


def encode_answer(tok: Any, prompt: str, answer: str, max_length: int) -> list[int]:
    p = _prompt_ids(tok, prompt, max_length)
    return [*p, *_answer_ids(tok, answer, max_length - len(p) - 1), tok.eos_token_id]


def encode_pairs(tok: Any, pairs: Sequence[Pair], max_length: int, match_lengths: bool = False) -> list[dict[str, list[int]]]:
    rows = []
    for q in pairs:
        p = _prompt_ids(tok, q.prompt, max_length)
        c, r = (_answer_ids(tok, a, max_length - len(p) - 1) for a in (q.chosen, q.rejected))
        if match_lengths:
            c, r = c[: len(r)], r[: len(c)]
        rows.append({"chosen_ids": [*p, *c, tok.eos_token_id], "rejected_ids": [*p, *r, tok.eos_token_id]})
    return rows


def reward_max_length(spec: str, default: int) -> int:
    """The input length a reward model was trained with (scoring uses the same cut)."""
    f = Path(model_dir(spec)) / READOUT_FILE
    return int(json.loads(f.read_text(encoding="utf-8"))["max_length"]) if f.is_file() else default


def load_reward_model(spec: str, train: TrainSettings) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = model_dir(spec)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=1, attn_implementation=attention(train.attn_implementation), dtype="float32")
    model.config.pad_token_id = tok.pad_token_id
    return model, tok


def score_pairs(model: Any, tok: Any, pairs: Sequence[Pair], max_length: int, batch_size: int,
                match_lengths: bool = False) -> tuple[list[float], list[float]]:
    from .measure import reward_scores

    rows = encode_pairs(tok, pairs, max_length, match_lengths)
    c = reward_scores(model, [r["chosen_ids"] for r in rows], tok.pad_token_id, batch_size)
    r = reward_scores(model, [r["rejected_ids"] for r in rows], tok.pad_token_id, batch_size)
    return c, r


def accuracy_by_kind(model: Any, tok: Any, pairs: Sequence[Pair], train: TrainSettings, seed: int,
                     matched_too: bool = False) -> dict[str, Any]:
    """Held-out pair accuracy per kind at natural lengths, and with ``matched_too`` also with both
    answers cut to the same token count (``<kind>/matched``)."""
    from .measure import pair_accuracy

    out = {}
    for kind in sorted({p.kind for p in pairs}):
        sub = [p for p in pairs if p.kind == kind]
        for name, match in ((kind, False), (f"{kind}/matched", True))[: 2 if matched_too else 1]:
            c, r = score_pairs(model, tok, sub, train.max_length, train.batch_size, match)
            out[name] = pair_accuracy(c, r, seed)
            out[name]["mean_margin"] = sum(a - b for a, b in zip(c, r)) / len(sub)
    return out


def run_reward(cfg: RewardStageConfig) -> dict[str, Any]:
    from trl import RewardConfig, RewardTrainer

    from .stage import final_report

    st = Stage("reward", cfg, cfg.output_dir, cfg.train)
    pairs = st.records(cfg.sources, "pairs", cfg.total_pairs, cfg.allow_eval_overlap) if cfg.sources else []
    hard = hard_pairs(cfg.hard_negatives, cfg.model)
    pairs = pairs + hard
    if not pairs:
        raise st.error("no training pairs: give sources and/or hard_negatives.source")
    held: list[Pair] = []
    if cfg.heldout:
        held += st.records(cfg.heldout, "pairs", None, cfg.allow_eval_overlap, role="heldout")
    held += hard_pairs(cfg.heldout_hard, cfg.model)
    if held:
        st.disjoint(pairs, [Pair(p.prompt, p.chosen, p.chosen, p.kind) for p in held])
    kinds: dict[str, int] = {}
    for p in pairs:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    st.report["data"].update(pairs=len(pairs), pairs_by_kind=kinds,
                             heldout_by_kind={k: sum(1 for p in held if p.kind == k) for k in {p.kind for p in held}},
                             hard_examples=[{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
                                            for p in hard[:3]])
    model, tok = load_reward_model(cfg.model, cfg.train)
    if held and cfg.report_before and is_main_process():
        st.report["before_by_kind"] = accuracy_by_kind(model, tok, held, cfg.train, st.seed, cfg.match_lengths)
    args = RewardConfig(**st.training_kwargs(), max_length=None, center_rewards_coefficient=None)
    trainer = RewardTrainer(model=model, args=args, train_dataset=make_dataset(encode_pairs(tok, pairs, cfg.train.max_length, cfg.match_lengths)),
                            processing_class=tok)
    st.train(trainer)
    out = Path(cfg.output_dir)
    save_final(trainer, tok, out)
    if is_main_process():
        save_json({"max_length": cfg.train.max_length, "format": "paper", "match_lengths": cfg.match_lengths},
                  out / READOUT_FILE)
    if held and is_main_process():
        m = trainer.model if not trainer.is_deepspeed_enabled and trainer.args.world_size == 1 else \
            load_reward_model(str(out), cfg.train)[0]
        st.report["after_by_kind"] = accuracy_by_kind(m, tok, held, cfg.train, st.seed, cfg.match_lengths)
        for kind, f in st.report["after_by_kind"].items():
            before = st.report.get("before_by_kind", {}).get(kind)
            log(f"[reward] held-out pair accuracy ({kind}): {f['value']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}] "
                f"n={f['n']}" + (f" (before training: {before['value']:.3f})" if before else ""))
    return final_report(st, "pair accuracy")


register(StageSpec("reward", "reward model (Bradley-Terry pairs)", RewardStageConfig, run_reward, order=30,
                   required=True, inputs=(("model", "sft"),)))
register(StageSpec("judge", "the second reward model of a full file (judge: section)", RewardStageConfig, run_reward,
                   order=40, inputs=(("model", "sft"),),
                   alone="needs a full file (with pretrain, sft, reward, judge and rejection sections); "
                         "a judge alone is a reward stage: chimed-train reward --config JUDGE.yaml"))
