"""The few-shot NER task: prompts, per-record budgets, scoring over (entity, type) pairs.

See :mod:`chimed_eval.tasks.ner` for the protocol.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.evidence.kinds import NER_CORPUS, NER_SAMPLE, NerEvidence, NerPromptFacts, has_keys, judge_ner  # noqa: F401
from chimed_eval.extract.ner import TypeInventory, render_answer
from chimed_eval.metrics.ner import ner_gold
from chimed_eval.task.base import Task
from chimed_eval.task.options import TaskData, TaskRunOptions
from chimed_eval.core.types import GenerationConfig, Metric, Request, Response, Sample, SampleScore

from .datasets import load_spec, mentions
from .spec import NerSpec, spec_from_args

PROMPT_VERSION = "ner@1"
# The next shot's "文本：" ends an answer; a blank line does not (chatty models write
# "以下是实体：\n\n..."), so runaway output is bounded by max_new_tokens instead.
STOP = ("\n文本：", "\n\n\n")
INSTRUCTION = {
    "paper": ("请找出下面{domain}中的所有医学实体。实体类型只能是以下之一：{types}。\n"
              "每行输出一个实体，格式为“实体 类型”，实体与类型之间用一个空格分隔；实体必须与原文完全一致，按在原文中出现的顺序列出。\n\n"),
    "json": ("请找出下面{domain}中的所有医学实体。实体类型只能是以下之一：{types}。\n"
             "以 JSON 列表输出，每个实体写作 {{\"entity\": \"实体\", \"type\": \"类型\"}}；实体必须与原文完全一致，按在原文中出现的顺序列出。\n\n"),
}
NEW_TOKENS = {"paper": (1.0, 64, 1024), "json": (2.0, 128, 2048)}  # per text char, floor, ceiling


_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free token estimate: one per CJK (or full-width) character, one per three
    other characters. Used only to keep prompts within the context budget."""
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 3)


@dataclass(frozen=True)
class PromptPlan:
    """How one record's prompt is built: the shared prefix (instruction and the shots that fit),
    the record's own block, and its generation budget (see the module docstring of chimed_eval.tasks.ner)."""

    prefix: str
    test: str
    shot_ids: tuple[str, ...]
    over_budget: bool
    own_budget: int
    budget: int

    def facts(self, shots_requested: int) -> NerPromptFacts:
        """The record's prompt facts (its evidence keeps them)."""
        return NerPromptFacts(
            shots_requested=shots_requested, shots_used=len(self.shot_ids), shot_ids=self.shot_ids,
            prompt_truncated=len(self.shot_ids) < shots_requested, prompt_chars=len(self.prefix) + len(self.test),
            prompt_tokens_est=estimate_tokens(self.prefix + self.test), over_budget=self.over_budget,
            max_new_tokens=self.budget, max_new_tokens_own=self.own_budget,
            max_new_tokens_capped=self.budget < self.own_budget, prompt_version=PROMPT_VERSION)


class NerTask(Task):
    """Few-shot NER by generation; scored over (entity, type) pairs (see :mod:`chimed_eval.tasks.ner`).

    Stateless: the type inventory is the task's own (``types``) or, when None, the one its data
    defines (``TaskData.labels``); each record's prompt plan is a pure function of the data, the
    record and the run options, computed when the request is built and again when it is scored."""

    variants = ("paper", "json")
    default_variant = "paper"

    def __init__(self, name: str, loader: Callable[[Path], TaskData], *, types: Sequence[str] | None,
                 aliases: Mapping[str, str] | None = None, description: str = "", default_shots: int = 5,
                 max_prompt_tokens: int = 3000, shot_max_chars: int = 300, domain: str = "医疗文本",
                 new_tokens: Mapping[str, tuple[float, int, int]] | None = None) -> None:
        self.name = name
        self._loader = loader
        self.types = tuple(types) if types else None  # None: the data's (TaskData.labels)
        self.aliases = dict(aliases or {})
        self.description = description
        self.default_shots = default_shots
        self.max_prompt_tokens = max_prompt_tokens
        self.shot_max_chars = shot_max_chars
        self.domain = domain
        self.new_tokens = dict(new_tokens or NEW_TOKENS)

    # -- settings
    def check_options(self, options: TaskRunOptions) -> None:
        """``--max-new-tokens`` caps every record's own budget; ``--decoding`` does not apply:
        NER is scored greedy (recorded as such)."""
        if options.max_new_tokens is not None and int(options.max_new_tokens) < 1:
            raise ConfigError("--max-new-tokens must be >= 1")

    def generation_record(self, data: TaskData, samples: Sequence[Sample], requests: Sequence[Request],
                          options: TaskRunOptions) -> dict[str, Any]:
        """What results.json records under ``settings.generation.<task>``: greedy decoding, the
        per-record budget rule, the cap and the budgets actually used."""
        per_char, lo, hi = self.new_tokens[options.variant]
        used = [r.generation.max_new_tokens for r in requests if r.generation is not None]
        capped = sum(1 for s, r in zip(samples, requests)
                     if r.generation is not None and r.generation.max_new_tokens < self.own_max_new_tokens(s.input, options.variant))
        cap = None if options.max_new_tokens is None else int(options.max_new_tokens)
        return {"decoding": "greedy", "temperature": 0.0, "top_p": 1.0, "stop": list(STOP),
                "max_new_tokens": max(used) if used else None,
                "max_new_tokens_rule": {"per_text_char": per_char, "min": lo, "max": hi},
                "max_new_tokens_cap": cap, "max_new_tokens_overridden": cap is not None,
                "max_new_tokens_range": [min(used), max(used)] if used else None,
                "records_capped": capped, "prompt_version": PROMPT_VERSION}

    def scoring_mode(self, variant: str) -> str:
        return "generate"

    def inventory(self, data: TaskData | None = None) -> TypeInventory:
        types = self.types or (tuple(data.labels) if data is not None and data.labels else None)
        if types is None:
            raise ConfigError(f"task {self.name!r}: the type inventory is not known before the data is loaded")
        return TypeInventory(types, {a: t for a, t in self.aliases.items() if t in types})

    # -- data
    def load(self, data_dir: Path) -> TaskData:
        return self._loader(data_dir)

    # -- prompts
    def choose_shots(self, pool: Sequence[Sample], k: int, seed: int) -> list[Sample]:
        """``k`` shots drawn with ``random.Random(seed)`` from the annotated pool records of at
        most ``shot_max_chars`` characters (the ``k`` shortest if too few are that short)."""
        if k <= 0:
            return []
        annotated = [s for s in pool if s.spans]
        if len(annotated) < k:
            raise ConfigError(f"task {self.name!r}: {k} shots requested but the few-shot pool has "
                              f"{len(annotated)} annotated records; pass --shots {len(annotated)} (or 0)")
        short = [s for s in annotated if len(s.input) <= self.shot_max_chars]
        if len(short) < k:
            short = sorted(annotated, key=lambda s: len(s.input))[:k]
        return random.Random(seed).sample(short, k)

    def block(self, sample: Sample, variant: str, answer: bool) -> str:
        sep = "\n" if variant == "paper" else ""
        if not answer:
            return f"文本：{sample.input}\n实体：{sep}"
        return f"文本：{sample.input}\n实体：{sep}{render_answer(mentions(sample), variant)}\n\n"

    def instruction(self, variant: str, data: TaskData | None = None) -> str:
        return INSTRUCTION[variant].format(domain=self.domain, types="、".join(self.inventory(data).types))

    def own_max_new_tokens(self, text: str, variant: str) -> int:
        """A record's own budget: proportional to its length, within the variant's floor and ceiling."""
        per_char, lo, hi = self.new_tokens[variant]
        return max(lo, min(hi, math.ceil(per_char * len(text))))

    def _shots(self, data: TaskData, options: TaskRunOptions) -> tuple[str, list[Sample], list[str]]:
        """(instruction, the run's shots, their answered blocks): the same for every record."""
        pool = data.fewshot.get(None, [])
        if options.shots > 0 and not pool:
            raise ConfigError(f"task {self.name!r}: {options.shots} shots requested but there are no few-shot records "
                              f"(provide the training file, or pass --shots 0)")
        chosen = self.choose_shots(pool, options.shots, options.seed)
        return self.instruction(options.variant, data), chosen, [self.block(s, options.variant, True) for s in chosen]

    def _plan(self, sample: Sample, shots: tuple[str, list[Sample], list[str]], options: TaskRunOptions) -> PromptPlan:
        """Drop shots from the end until the prompt fits ``max_prompt_tokens``; the budget is the
        record's own, capped by ``--max-new-tokens``."""
        head, chosen, blocks = shots
        test = self.block(sample, options.variant, False)
        fixed, sizes, own_test = estimate_tokens(head), [estimate_tokens(b) for b in blocks], estimate_tokens(test)
        k = len(blocks)
        while k > 0 and fixed + sum(sizes[:k]) + own_test > self.max_prompt_tokens:
            k -= 1
        own = self.own_max_new_tokens(sample.input, options.variant)
        budget = own if options.max_new_tokens is None else min(own, int(options.max_new_tokens))
        return PromptPlan(head + "".join(blocks[:k]), test, tuple(x.id for x in chosen[:k]),
                          fixed + own_test > self.max_prompt_tokens, own, budget)

    def build_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions) -> list[Request]:
        shots = self._shots(data, options)
        out = []
        for s in samples:
            plan = self._plan(s, shots, options)
            gen = GenerationConfig(max_new_tokens=plan.budget, stop=STOP, temperature=0.0)
            out.append(Request(kind="generate", key=s.id, context=plan.prefix + plan.test, prefix=plan.prefix,
                               generation=gen))
        return out

    def oracle_output(self, sample: Sample, request: Request, options: TaskRunOptions) -> str:
        return render_answer(mentions(sample), options.variant)

    # -- scoring
    def score(self, data: TaskData, sample: Sample, request: Request, response: Response,
              options: TaskRunOptions) -> SampleScore:
        inv = self.inventory(data)
        plan = self._plan(sample, self._shots(data, options), options)
        ev = NerEvidence(sample.input, inv.types, dict(inv.aliases),
                         n_tokens=response.n_tokens[0] if response.n_tokens else None,  # hit max_new_tokens?
                         prompt=plan.facts(options.shots))
        base = SampleScore(
            id=sample.id, subject=None, prompt=request.context, prompt_hash=request.prompt_hash,
            gold=ner_gold(sample.input, sample.spans), prediction=None, score=0.0,
            generation=response.text or "", extra=ev.to_extra(),
        )
        return NER_SAMPLE(base, ev, options.variant)

    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        """Judge a saved record again with its own inventory (the task's for records without one)."""
        from chimed_eval.core.types import record_to_score

        s = record_to_score(record)
        ev = NerEvidence.from_extra(s.extra)
        ev = replace(ev, types=ev.types or self.types or (), aliases=ev.aliases or self.aliases)
        if not ev.types:
            raise ConfigError(f"task {self.name!r}: record {s.id!r} has no type inventory")
        return NER_SAMPLE(s, ev, variant)

    def aggregate(self, scores: Sequence[SampleScore], variant: str, seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
        """The corpus figures (:data:`chimed_eval.evidence.kinds.NER_CORPUS`) over the task's inventory,
        else the one its records carry."""
        evidence = [NerEvidence.from_extra(s.extra) for s in scores]
        if self.types:
            evidence = [replace(e, types=self.types) for e in evidence]
        return NER_CORPUS(scores, evidence, variant, seed)


def make_ner_task(spec: NerSpec) -> NerTask:
    shots = spec.shots if spec.shots is not None else (5 if spec.fewshot is not None else 0)
    return NerTask(spec.name, lambda _data_dir: load_spec(spec), types=spec.types, aliases=spec.aliases,
                   description=f"your NER records from {spec.path}", default_shots=shots,
                   max_prompt_tokens=spec.max_prompt_tokens, shot_max_chars=spec.shot_max_chars, domain=spec.domain)


def make_ner_task_from_args(args: Mapping[str, str]) -> NerTask:
    """The generic ``ner`` task from ``--task-args`` (``path=...,format=bio,types=疾病;药物``)."""
    return make_ner_task(spec_from_args(args))


def rescoring_task(name: str, out_dir: Path) -> NerTask | None:
    """A NerTask able to re-score ``OUT/samples/<name>.jsonl`` when its records are NER records
    (they carry their own text, gold spans and inventory), else None."""
    from chimed_eval.runs.reader import first_record_extra

    extra = first_record_extra(out_dir, name)
    if not has_keys(extra, NerEvidence.KEYS):
        return None
    ev = NerEvidence.from_extra(extra)  # type: ignore[arg-type]
    return NerTask(name, lambda _d: TaskData(samples=[]), types=ev.types, aliases=ev.aliases)


