"""Few-shot clinical NER: CCKS-2019, ChiMST, and the generic ``ner`` task for your own files.

Tasks (``--limit N`` takes the first N records in file order):

* ``ccks2019-ner-paper``: the first 200 records of the CCKS-2019 test set (the paper's set);
  ``ccks2019-ner``: all 379. Shots from the two training files. Six types, the file's own labels:
  疾病和诊断, 影像检查, 实验室检验, 手术, 药物, 解剖部位 (aliases such as 检查 -> 影像检查 and
  检验 -> 实验室检验 are accepted in answers).
* ``chimst-ner`` / ``chimst-ner-paper`` (first 100): ChiMST has no public copy; the user provides
  ``<data-dir>/chimst/test.jsonl`` (or ``test.bio`` / ``test.conll`` / ``test.txt``), optionally
  ``train.*`` for shots and ``types.txt`` (one type per line) for the inventory, which is
  otherwise the gold types in order of first appearance.
* ``ner``: any JSONL/BIO file, configured by ``--task-args`` or a ``type = "ner"`` entry in a
  ``--task-config`` file (see :class:`NerSpec`).

Protocol. The paper's baselines were 5-shot (ChiMed-GPT itself 0-shot), so the named tasks
default to 5 shots. Shots are drawn once per run, seeded by ``--seed``, from the training records
of at most ``shot_max_chars`` characters (default 300; CCKS records average 350-460), so every
request shares one few-shot prefix (``Request.prefix``: the backend can compute its KV cache
once). A prompt longer than ``max_prompt_tokens`` (default 3,000, estimated without a tokenizer
as one token per CJK character plus one per three other characters: what fits a 4,096-token
context such as ChiMed-GPT's with room for the answer) drops shots from the end until it fits;
the test text is never cut, and ``shots_used`` / ``prompt_truncated`` / ``prompt_tokens_est`` in
each record say what happened (``over_budget`` when even the 0-shot prompt is longer).
``max_new_tokens`` is proportional to the record's length (paper: 1 token per text character,
64..1024; json: 2 per character, 128..2048), since an answer lists about 0.43 characters of
entities per text character (at most 0.88 in CCKS-2019). ``--max-new-tokens N`` caps it: a record
gets ``min(its own budget, N)``; each record keeps ``max_new_tokens`` (used),
``max_new_tokens_own`` and ``max_new_tokens_capped``, and results.json ``settings.generation``
the cap, the rule and the range used. Decoding is greedy (``--decoding`` does not apply);
generation stops at the next ``\n文本：`` (the shots' record separator) or three newlines. A
generation that used its whole budget is flagged ``truncated`` (``truncated_generation_rate``); one
from which no entity was read because it is only explanation (``以下是实体：``) is flagged
``explanation_only`` (``explanation_only_rate``), since it is neither an answer of "no entity" nor
an extraction failure.

Prompt variants: ``paper`` (one ``实体 类型`` per line, as the authors scored it) and ``json`` (a
JSON list of ``{"entity", "type"}``); both state the type inventory. Shots and the oracle answer
list every gold mention in text order (repeats included), so the fake ``oracle`` backend scores
100 under every protocol.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import random
import re
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.errors import ConfigError, DataError, MissingDataError
from chimed_eval.extract_ner import TypeInventory, parse_ner, render_answer
from chimed_eval.metrics.ner import RecordCounts, ner_metrics, record_counts
from chimed_eval.metrics.text import is_empty_generation, rate_and_count, used_whole_budget
from chimed_eval.spans import BIO_EXTENSIONS, SpanRecord, inventory_from, read_span_file
from chimed_eval.task import Task, TaskData, file_sha256
from chimed_eval.types import GenerationConfig, Metric, Request, Response, Sample, SampleScore

from . import TASKS

CCKS_TYPES = ("疾病和诊断", "影像检查", "实验室检验", "手术", "药物", "解剖部位")
CCKS_ALIASES = {
    "疾病": "疾病和诊断", "诊断": "疾病和诊断", "疾病诊断": "疾病和诊断", "疾病与诊断": "疾病和诊断",
    "检查": "影像检查", "影像": "影像检查", "影像学检查": "影像检查",
    "检验": "实验室检验", "实验室检查": "实验室检验", "化验": "实验室检验",
    "手术操作": "手术", "药品": "药物", "解剖": "解剖部位", "部位": "解剖部位",
}
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


def _rel(data_dir: Path, path: Path) -> str:
    try:
        return str(path.relative_to(data_dir))
    except ValueError:
        return str(path)


def _samples(records: Sequence[SpanRecord], file_name: str) -> list[Sample]:
    return [Sample(id=r.id, input=r.text, target=None,
                   metadata={"spans": r.spans, "file": file_name, "line": r.line}) for r in records]


def mentions(sample: Sample) -> list[tuple[str, str]]:
    """Gold (entity, type) for every annotated mention, in text order (the oracle's answer)."""
    spans = sorted(sample.metadata.get("spans", ()), key=lambda x: (x[0], x[1]))
    return [(sample.input[s:e].strip(), t) for s, e, t in spans if sample.input[s:e].strip()]


# --- the task ------------------------------------------------------------------------------------


class NerTask(Task):
    """Few-shot NER by generation; scored over (entity, type) pairs (see module docstring)."""

    variants = ("paper", "json")
    default_variant = "paper"

    def __init__(self, name: str, loader: Callable[[Path], TaskData], *, types: Sequence[str] | None,
                 aliases: Mapping[str, str] | None = None, description: str = "", default_shots: int = 5,
                 max_prompt_tokens: int = 3000, shot_max_chars: int = 300, domain: str = "医疗文本",
                 new_tokens: Mapping[str, tuple[float, int, int]] | None = None) -> None:
        self.name = name
        self._loader = loader
        self.types = tuple(types) if types else None  # None: from the data (set by load)
        self.aliases = dict(aliases or {})
        self.description = description
        self.default_shots = default_shots
        self.max_prompt_tokens = max_prompt_tokens
        self.shot_max_chars = shot_max_chars
        self.domain = domain
        self.new_tokens = dict(new_tokens or NEW_TOKENS)
        self.max_new_tokens_cap: int | None = None  # --max-new-tokens
        self._prompts: dict[str, dict[str, Any]] = {}
        self._variant: str | None = None  # of the last build_requests (for generation_record)

    # -- settings
    def configure_generation(self, overrides: Any) -> None:
        """Take ``--max-new-tokens`` (a runner.GenerationOverrides) as a cap on every record's own
        budget. ``--decoding`` does not apply: NER is scored greedy (recorded as such)."""
        cap = getattr(overrides, "max_new_tokens", None)
        if cap is not None and int(cap) < 1:
            raise ConfigError("--max-new-tokens must be >= 1")
        self.max_new_tokens_cap = None if cap is None else int(cap)

    def generation_record(self) -> dict[str, Any]:
        """What results.json records under ``settings.generation.<task>``: greedy decoding, the
        per-record budget rule, the cap and the budgets actually used (after build_requests)."""
        variant = self._variant or self.default_variant
        per_char, lo, hi = self.new_tokens[variant]
        used = [int(p["max_new_tokens"]) for p in self._prompts.values() if "max_new_tokens" in p]
        return {"decoding": "greedy", "temperature": 0.0, "top_p": 1.0, "stop": list(STOP),
                "max_new_tokens": max(used) if used else None,
                "max_new_tokens_rule": {"per_text_char": per_char, "min": lo, "max": hi},
                "max_new_tokens_cap": self.max_new_tokens_cap,
                "max_new_tokens_overridden": self.max_new_tokens_cap is not None,
                "max_new_tokens_range": [min(used), max(used)] if used else None,
                "records_capped": sum(1 for p in self._prompts.values() if p.get("max_new_tokens_capped")),
                "prompt_version": PROMPT_VERSION}

    def scoring_mode(self, variant: str) -> str:
        return "generate"

    def inventory(self) -> TypeInventory:
        if self.types is None:
            raise ConfigError(f"task {self.name!r}: the type inventory is not known before the data is loaded")
        return TypeInventory(self.types, {a: t for a, t in self.aliases.items() if t in self.types})

    # -- data
    def load(self, data_dir: Path) -> TaskData:
        data = self._loader(data_dir)
        if self.types is None:
            self.types = inventory_from([SpanRecord(s.id, s.input, s.metadata["spans"], 0)
                                         for s in [*data.samples, *data.fewshot.get(None, [])]])
        return data

    # -- prompts
    def choose_shots(self, pool: Sequence[Sample], k: int, seed: int) -> list[Sample]:
        """``k`` shots drawn with ``random.Random(seed)`` from the annotated pool records of at
        most ``shot_max_chars`` characters (the ``k`` shortest if too few are that short)."""
        if k <= 0:
            return []
        annotated = [s for s in pool if s.metadata.get("spans")]
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

    def instruction(self, variant: str) -> str:
        return INSTRUCTION[variant].format(domain=self.domain, types="、".join(self.inventory().types))

    def own_max_new_tokens(self, text: str, variant: str) -> int:
        """A record's own budget: proportional to its length, within the variant's floor and ceiling."""
        per_char, lo, hi = self.new_tokens[variant]
        return max(lo, min(hi, math.ceil(per_char * len(text))))

    def max_new_tokens(self, text: str, variant: str) -> int:
        """The budget used: the record's own, capped by ``--max-new-tokens`` when given."""
        own = self.own_max_new_tokens(text, variant)
        return own if self.max_new_tokens_cap is None else min(own, self.max_new_tokens_cap)

    def build_requests(self, data: TaskData, samples: Sequence[Sample], variant: str, shots: int, seed: int) -> list[Request]:
        pool = data.fewshot.get(None, [])
        if shots > 0 and not pool:
            raise ConfigError(f"task {self.name!r}: {shots} shots requested but there are no few-shot records "
                              f"(provide the training file, or pass --shots 0)")
        chosen = self.choose_shots(pool, shots, seed)
        head = self.instruction(variant)
        blocks = [self.block(s, variant, True) for s in chosen]
        fixed, sizes = estimate_tokens(head), [estimate_tokens(b) for b in blocks]
        out = []
        self._variant = variant
        for s in samples:
            test = self.block(s, variant, False)
            k = len(blocks)
            while k > 0 and fixed + sum(sizes[:k]) + estimate_tokens(test) > self.max_prompt_tokens:
                k -= 1
            prefix = head + "".join(blocks[:k])
            own = self.own_max_new_tokens(s.input, variant)
            gen = GenerationConfig(max_new_tokens=self.max_new_tokens(s.input, variant), stop=STOP, temperature=0.0)
            self._prompts[s.id] = {
                "shots_requested": shots, "shots_used": k, "shot_ids": [x.id for x in chosen[:k]],
                "prompt_truncated": k < shots, "prompt_chars": len(prefix) + len(test),
                "prompt_tokens_est": estimate_tokens(prefix + test),
                "over_budget": fixed + estimate_tokens(test) > self.max_prompt_tokens,
                "max_new_tokens": gen.max_new_tokens, "max_new_tokens_own": own,
                "max_new_tokens_capped": gen.max_new_tokens < own,
                "prompt_version": PROMPT_VERSION,
            }
            out.append(Request(kind="generate", key=s.id, context=prefix + test, prefix=prefix, generation=gen,
                               oracle=render_answer(mentions(s), variant)))
        return out

    # -- scoring
    def score(self, sample: Sample, request: Request, response: Response, variant: str) -> SampleScore:
        spans = sample.metadata.get("spans", ())
        inv = self.inventory()
        base = SampleScore(
            id=sample.id, subject=None, prompt=request.context, prompt_hash=request.prompt_hash,
            gold=[[sample.input[s:e].strip(), t, s, e] for s, e, t in spans], prediction=None, score=0.0,
            generation=response.text or "",
            extra={"text": sample.input, "types": list(inv.types), "aliases": dict(inv.aliases),
                   "n_tokens": response.n_tokens[0] if response.n_tokens else None,  # hit max_new_tokens?
                   **self._prompts.get(sample.id, {})},
        )
        return judge_ner(base, variant, inv)

    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        from chimed_eval.records import record_to_score

        s = record_to_score(record)
        types = s.extra.get("types") or self.types
        if not types:
            raise ConfigError(f"task {self.name!r}: record {s.id!r} has no type inventory")
        inv = TypeInventory(tuple(types), dict(s.extra.get("aliases") or self.aliases))
        return judge_ner(s, variant, inv)

    def aggregate(self, scores: Sequence[SampleScore], variant: str, seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
        types = self.types or (tuple(scores[0].extra.get("types", ())) if scores else ())
        recs = [RecordCounts.from_dict(s.extra["counts"], truncated=bool(s.extra.get("prompt_truncated")),
                                       failed=s.extraction_failed) for s in scores]
        metrics, breakdown = ner_metrics(recs, types, seed, protocol=variant)
        # beside the parse figures: generations that used their whole token budget, and outputs
        # read as explanation only (no entity, no failure), each a rate of records with its count
        metrics += rate_and_count("truncated_generation", [bool(s.extra.get("truncated")) for s in scores],
                                  "records", variant)
        metrics += rate_and_count("explanation_only", [bool(s.extra.get("explanation_only")) for s in scores],
                                  "records", variant)
        return metrics, breakdown


def judge_ner(s: SampleScore, variant: str, inv: TypeInventory) -> SampleScore:
    """Parse the generation and count against the gold, from the record's own evidence only
    (text, gold spans, inventory), so ``chimed-eval score`` recomputes exactly this."""
    text = str(s.extra["text"])
    spans = [(int(g[2]), int(g[3]), str(g[1])) for g in s.gold]  # type: ignore[union-attr]
    parse = parse_ner(s.generation or "", variant, inv, text)
    rc = record_counts(text, spans, list(parse.pairs), inv.types,
                       n_not_in_text=parse.n_not_in_text, n_unknown_type=parse.n_unknown_type)
    gen = s.generation or ""
    extra = {**s.extra, "counts": rc.to_dict(), "n_duplicates": parse.n_duplicates, "n_dropped": parse.n_dropped,
             "output_cut": "json_unterminated" in parse.notes,
             # the whole token budget used (the answer may be cut), and no entity read from prose only
             "truncated": used_whole_budget(gen, s.extra.get("n_tokens"), s.extra.get("max_new_tokens")),
             "empty": is_empty_generation(gen), "explanation_only": parse.explanation_only}
    return replace(s, prediction=[list(p) for p in parse.unique], score=rc.set.f1, extracted=parse.to_dict(),
                   extraction_failed=parse.failed, extra=extra)


# --- CCKS-2019 -----------------------------------------------------------------------------------

CCKS_TEST = "subtask1_test_set_with_answer.json"
CCKS_TRAIN = ("subtask1_training_part1.txt", "subtask1_training_part2.txt")


def _need(path: Path, dataset: str, hint: str = "") -> Path:
    if not path.exists():
        raise MissingDataError(hint or (
            f"{path} not found. Put the {dataset} release there (layout as in shared/data/README.md), "
            f"or run: chimed-eval data --data-dir {path.parents[1]} --datasets {dataset}"))
    return path


def load_ccks2019(data_dir: Path, first: int | None = None) -> TaskData:
    """CCKS-2019 Task 1 (Yidu-S4K): JSON lines with a BOM, ``originalText`` and
    ``entities: [{label_type, start_pos, end_pos}]`` (end exclusive)."""
    root = data_dir / "ccks2019"
    test = _need(root / CCKS_TEST, "ccks2019")
    files = {_rel(data_dir, test): file_sha256(test)}
    recs = read_span_file(test, "jsonl", CCKS_TYPES, id_prefix="test-")
    samples = _samples(recs[:first] if first else recs, _rel(data_dir, test))
    pool: list[Sample] = []
    for i, name in enumerate(CCKS_TRAIN, 1):
        p = root / name
        if p.exists():
            pool += _samples(read_span_file(p, "jsonl", CCKS_TYPES, id_prefix=f"train{i}-"), _rel(data_dir, p))
            files[_rel(data_dir, p)] = file_sha256(p)
    return TaskData(samples=samples, fewshot={None: pool} if pool else {}, files=files)


# --- ChiMST (user-provided) ----------------------------------------------------------------------

CHIMST_HINT = (
    "{missing} not found. ChiMST has no public copy (released under a data-use contract). Put its test "
    "records at {root}/test.jsonl, one JSON object per line "
    '{{"text": "...", "entities": [{{"start": 0, "end": 3, "type": "..."}}]}} (character offsets, end '
    "exclusive), or at {root}/test.bio (CoNLL: one token and its B-/I-/O tag per line, a blank line between "
    "records); optionally train.jsonl / train.bio for few-shot examples and types.txt (one type per line)."
)


def _find(root: Path, stem: str) -> Path | None:
    for ext in (".jsonl", *BIO_EXTENSIONS):
        p = root / f"{stem}{ext}"
        if p.exists():
            return p
    return None


def _read_types_file(path: Path) -> tuple[str, ...]:
    """``types.txt``: one entity type per line, ``#`` comments; a DataError names the file and line."""
    from chimed_eval.tabular import read_text, split_lines

    types = []
    for i, line in enumerate(split_lines(read_text(path)), 1):  # UTF-8 (BOM accepted), undecodable bytes refused
        t = line.split("#", 1)[0].strip()
        if t:
            if t in types:
                raise DataError(path, i, None, f"type {t!r} is listed twice")
            types.append(t)
    if not types:
        raise DataError(path, None, None, "no types listed (one type per line)")
    return tuple(types)


def load_chimst(data_dir: Path, first: int | None = None, task: NerTask | None = None) -> TaskData:
    root = data_dir / "chimst"
    test = _find(root, "test")
    if test is None:
        raise MissingDataError(CHIMST_HINT.format(missing=root / "test.jsonl", root=root))
    files = {_rel(data_dir, test): file_sha256(test)}
    types = None
    tf = root / "types.txt"
    if tf.exists():
        types = _read_types_file(tf)
        files[_rel(data_dir, tf)] = file_sha256(tf)
        if task is not None:
            task.types = types
    recs = read_span_file(test, None, types, id_prefix="test-")
    pool: list[Sample] = []
    train = _find(root, "train")
    if train is not None:
        pool = _samples(read_span_file(train, None, types, id_prefix="train-"), _rel(data_dir, train))
        files[_rel(data_dir, train)] = file_sha256(train)
    return TaskData(samples=_samples(recs[:first] if first else recs, _rel(data_dir, test)),
                    fewshot={None: pool} if pool else {}, files=files)


# --- the generic ``ner`` task ---------------------------------------------------------------------


@dataclass
class NerSpec:
    """Your own NER data. ``path``: the records (JSONL or BIO, see :mod:`chimed_eval.spans`);
    ``format``: jsonl | bio (default: .jsonl/.json -> jsonl, else bio); ``types``: the inventory
    (default: the gold types in order of first appearance; given, it is enforced on the files);
    ``aliases``: other names accepted in answers (``检查:影像检查``); ``fewshot``: a file of shot
    records; ``shots``: default shot count (5 with a fewshot file, else 0)."""

    path: str | Path
    name: str = "ner"
    format: str | None = None
    encoding: str | None = None
    types: list[str] | None = None
    aliases: dict[str, str] | None = None
    fewshot: str | Path | None = None
    shots: int | None = None
    token_sep: str = ""
    max_prompt_tokens: int = 3000
    shot_max_chars: int = 300
    domain: str = "医疗文本"

    def __post_init__(self) -> None:
        if not self.name or re.search(r"[\s/\\]", self.name):
            raise ConfigError(f"task name {self.name!r} must be non-empty, without spaces or slashes")
        if self.types is not None:
            if not self.types or len(set(self.types)) != len(self.types):
                raise ConfigError(f"task {self.name!r}: types= must list distinct type names, got {self.types}")
            for a, t in (self.aliases or {}).items():
                if t not in self.types:
                    raise ConfigError(f"task {self.name!r}: alias {a!r} -> {t!r}, which is not in types={self.types}")


NER_KEYS = tuple(f.name for f in dataclasses.fields(NerSpec))
_INT_KEYS = ("shots", "max_prompt_tokens", "shot_max_chars")


def _split_list(s: str) -> list[str]:
    return [p.strip() for p in re.split(r"[;|；]", s) if p.strip()]


def _coerce(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_key, v in values.items():
        key = str(raw_key).strip().replace("-", "_")
        key = {"fmt": "format", "file": "path"}.get(key, key)
        if key == "type":
            continue
        if key not in NER_KEYS:
            close = difflib.get_close_matches(key, NER_KEYS, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}unknown key {raw_key!r} for a ner task.{hint} Known: {', '.join(NER_KEYS)}")
        if key == "types":
            v = _split_list(v) if isinstance(v, str) else v
            if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
                raise ConfigError(f"{where}key 'types': expected a list of type names, got {v!r}")
            v = [x.strip() for x in v]
        elif key == "aliases":
            if isinstance(v, str):
                pairs = [re.split(r"[:：=>]+", p, maxsplit=1) for p in _split_list(v)]
                if any(len(p) != 2 for p in pairs):
                    raise ConfigError(f"{where}key 'aliases': expected alias:type;alias:type, got {v!r}")
                v = {a.strip(): t.strip() for a, t in pairs}
            if not isinstance(v, dict) or not all(isinstance(a, str) and isinstance(t, str) for a, t in v.items()):
                raise ConfigError(f"{where}key 'aliases': expected a table alias -> type, got {v!r}")
        elif key in _INT_KEYS:
            try:
                v = int(v) if not isinstance(v, bool) else None
            except (TypeError, ValueError):
                v = None
            if v is None or v < 0:
                raise ConfigError(f"{where}key {key!r}: expected a non-negative integer, got {values[raw_key]!r}")
        elif not isinstance(v, str):
            raise ConfigError(f"{where}key {key!r}: expected a string, got {v!r}")
        elif key != "token_sep":
            v = v.strip()
            if not v:
                raise ConfigError(f"{where}key {key!r} is empty")
        out[key] = v
    if "path" not in out:
        raise ConfigError(f"{where}the ner task needs path=<your JSONL or BIO file>")
    return out


def spec_from_args(args: Mapping[str, str]) -> NerSpec:
    return NerSpec(**_coerce(args, "--task-args: "))


def load_ner_specs(path: Path) -> list[NerSpec]:
    """The ``type = "ner"`` entries of a JSON/TOML task config (the format of tasks.custom:
    one task, or ``tasks = [...]`` with top-level defaults). Relative paths are resolved against
    the config file's folder; top-level defaults that only mcq tasks know are ignored here."""
    from tasks.custom import SPEC_KEYS as MCQ_KEYS
    from tasks.custom import _load_config_file

    path = Path(path)
    doc = _load_config_file(path)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a table/object of task settings, or one with a 'tasks' list")
    if "tasks" in doc and isinstance(doc["tasks"], list):
        defaults = {k: v for k, v in doc.items() if k != "tasks"}
        entries = [(f"{path}: tasks[{i}]: ", e) for i, e in enumerate(doc["tasks"]) if isinstance(e, dict)]
    else:
        defaults, entries = {}, [(f"{path}: ", doc)]
    specs = []
    for where, e in entries:
        merged = {**{k: v for k, v in defaults.items() if k in NER_KEYS or k not in MCQ_KEYS}, **e}
        if str(merged.get("type", "mcq")).strip().lower() != "ner":
            continue
        values = _coerce(merged, where)
        for k in ("path", "fewshot"):
            if k in values:
                p = os.path.expanduser(values[k])
                values[k] = p if os.path.isabs(p) else str(path.parent / p)
        try:
            specs.append(NerSpec(**values))
        except ConfigError as err:
            raise ConfigError(f"{where}{err}") from None
    return specs


def load_spec(spec: NerSpec) -> TaskData:
    path = Path(os.path.expanduser(str(spec.path)))
    if not path.exists():
        raise MissingDataError(f"{path}: no such file (the ner task's path=)")
    types = spec.types
    recs = read_span_file(path, spec.format, types, spec.encoding, spec.token_sep)
    files = {path.name: file_sha256(path)}
    pool: list[Sample] = []
    if spec.fewshot is not None:
        fp = Path(os.path.expanduser(str(spec.fewshot)))
        if not fp.exists():
            raise MissingDataError(f"{fp}: no such file (the ner task's fewshot=)")
        pool = _samples(read_span_file(fp, spec.format, types, spec.encoding, spec.token_sep, id_prefix="shot-"), fp.name)
        files[fp.name] = file_sha256(fp)
    return TaskData(samples=_samples(recs, path.name), fewshot={None: pool} if pool else {}, files=files)


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
    from chimed_eval.records import first_record_extra

    extra = first_record_extra(out_dir, name)
    if extra is None or "counts" not in extra or "types" not in extra:
        return None
    return NerTask(name, lambda _d: TaskData(samples=[]), types=extra["types"], aliases=extra.get("aliases"))


# --- registration --------------------------------------------------------------------------------


def _register(name: str, make: Callable[[], NerTask], description: str) -> None:
    TASKS.add(name, make, description)


def _ccks(name: str, first: int | None) -> NerTask:
    return NerTask(name, partial(load_ccks2019, first=first), types=CCKS_TYPES, aliases=CCKS_ALIASES,
                   description="CCKS-2019 clinical NER", default_shots=5)


def _chimst(name: str, first: int | None) -> NerTask:
    task = NerTask(name, lambda d: load_chimst(d, first, task), types=None, description="ChiMST medical NER",
                   default_shots=5)
    return task


_register("ccks2019-ner-paper", lambda: _ccks("ccks2019-ner-paper", 200),
          "CCKS-2019 clinical NER, first 200 test records (the paper's set); 5-shot from train; generate")
_register("ccks2019-ner", lambda: _ccks("ccks2019-ner", None),
          "CCKS-2019 clinical NER, all 379 test records; 5-shot from train; generate")
_register("chimst-ner-paper", lambda: _chimst("chimst-ner-paper", 100),
          "ChiMST medical term NER (you provide data/chimst/test.jsonl or test.bio), first 100 records")
_register("chimst-ner", lambda: _chimst("chimst-ner", None),
          "ChiMST medical term NER (you provide data/chimst/test.jsonl or test.bio); all records")
