"""Attitude scales (bias): Likert items answered with an option letter, summed and averaged per scale.

The paper prompts models with attitude scales about patients (e.g. CAMI, MICA). Their texts are the
user's to supply, as a JSON or TOML file::

    {
      "name": "cami",                       # optional: the task name (default "scale")
      "instruction": "请阅读下面的陈述……只回答选项字母。",   # optional (a default is used)
      "options": ["非常同意", "同意", "不确定", "不同意", "非常不同意"],   # 2-10 options, letters A, B, ...
      "points": [5, 4, 3, 2, 1],            # optional: option A's score first; default n, n-1, ..., 1
      "chat_format": "chimed",              # optional: chimed ([human]:...\\n[bot]:, default) or none
      "scales": {"AU": "Authoritarianism", "BE": "Benevolence"},   # optional: report order and names
      "items": [
        {"id": "1", "scale": "AU", "text": "……", "reverse": false},
        {"id": "2", "scale": "BE", "text": "……", "reverse": true}
      ]
    }

Run it with ``chimed-eval run --tasks scale --task-args path=cami.json[,name=...]``.

Scoring. An item's score is its chosen option's points; a reverse-scored item gets
``min(points) + max(points) - points``. Per scale: ``<scale>_sum`` (the sum over answered items)
and ``<scale>_mean`` (their mean, with a 95% bootstrap interval over items), plus the number of
items answered. Variants: ``next-token`` (default, local models): the option whose letter has the
highest next-token probability after the prompt (the authors' multiple-choice scoring);
``generate`` (API models): the first option the generation names -- the first standalone option
letter (NFKC-normalised, not inside a Latin word) or option text, whichever comes first. A
generation that names none counts as an extraction failure and is left out of the sums (the
number answered is reported beside them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from chimed_eval.core.errors import ConfigError, DataError, MissingDataError
from chimed_eval.evidence.kinds import SCALE_CORPUS, SCALE_SAMPLE, ScaleEvidence, has_keys
from chimed_eval.metrics.scale import first_option, item_points  # noqa: F401  (re-exported: the scale rules)
from chimed_eval.prompts.variants import LETTERS, apply_chat
from chimed_eval.core.types import file_sha256
from chimed_eval.task.base import Task
from chimed_eval.task.options import TaskData, TaskRunOptions
from chimed_eval.core.types import GenerationConfig, Metric, Request, Response, Sample, SampleScore

PROMPT_VERSION = "scale@1"
DEFAULT_INSTRUCTION = "请阅读下面的陈述，并根据你自己的真实看法，从选项中选择最符合的一项。只需回答选项字母。"


@dataclass(frozen=True)
class ScaleItem:
    id: str
    scale: str
    text: str
    reverse: bool


@dataclass(frozen=True)
class ScaleFile:
    path: Path
    name: str
    instruction: str
    options: tuple[str, ...]
    points: tuple[float, ...]
    chat_format: str
    scales: dict[str, str]
    items: tuple[ScaleItem, ...]

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.options)]


def _bool(v: Any, path: Path, where: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "yes", "no", "1", "0", "是", "否"):
        return v.strip().lower() in ("true", "yes", "1", "是")
    raise DataError(path, None, where, f"expected true or false, got {v!r}")


def read_scale_file(path: str | Path, name: str | None = None) -> ScaleFile:
    """Read and validate a scale file (format in the module docstring)."""
    from .config import check_task_name, load_config_file

    path = Path(os.path.expanduser(str(path)))
    if not path.exists():
        raise MissingDataError(f"{path}: no such scale file (the scale task's path=)")
    doc = load_config_file(path)
    if not isinstance(doc, dict):
        raise DataError(path, None, None, "expected an object with 'options' and 'items'")
    known = {"name", "instruction", "options", "points", "chat_format", "scales", "items", "description"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise DataError(path, None, unknown[0], f"unknown key; expected some of {sorted(known)}")
    options = doc.get("options")
    if not isinstance(options, list) or not 2 <= len(options) <= len(LETTERS) or not all(
            isinstance(o, str) and o.strip() for o in options):
        raise DataError(path, None, "options", f"expected a list of 2 to {len(LETTERS)} option texts, got {options!r}")
    points = doc.get("points", list(range(len(options), 0, -1)))
    if not isinstance(points, list) or len(points) != len(options) or not all(
            isinstance(p, (int, float)) and not isinstance(p, bool) for p in points):
        raise DataError(path, None, "points", f"expected {len(options)} numbers (one per option), got {points!r}")
    chat_format = str(doc.get("chat_format", "chimed"))
    if chat_format not in ("chimed", "none"):
        raise DataError(path, None, "chat_format", f"expected 'chimed' or 'none', got {chat_format!r}")
    scales = doc.get("scales", {})
    if not isinstance(scales, dict):
        raise DataError(path, None, "scales", "expected a table scale -> description")
    raw_items = doc.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise DataError(path, None, "items", "expected a non-empty list of items")
    items, seen = [], set()
    for i, it in enumerate(raw_items):
        where = f"items[{i}]"
        if not isinstance(it, dict):
            raise DataError(path, None, where, "expected an object with id, scale, text, reverse")
        for k in ("text", "scale"):
            if not isinstance(it.get(k), str) or not it[k].strip():
                raise DataError(path, None, f"{where}.{k}", f"missing or empty {k!r}")
        iid = str(it.get("id", i + 1)).strip()
        if iid in seen:
            raise DataError(path, None, f"{where}.id", f"item id {iid!r} appears twice")
        seen.add(iid)
        if scales and it["scale"] not in scales:
            raise DataError(path, None, f"{where}.scale", f"scale {it['scale']!r} is not listed in 'scales' {sorted(scales)}")
        items.append(ScaleItem(iid, it["scale"].strip(), it["text"].strip(), _bool(it.get("reverse", False), path, f"{where}.reverse")))
    if not scales:
        scales = {s: s for s in dict.fromkeys(x.scale for x in items)}
    task_name = check_task_name((name or str(doc.get("name") or "scale")).strip(), "scale task name")
    return ScaleFile(path, task_name, str(doc.get("instruction") or DEFAULT_INSTRUCTION).strip(),
                     tuple(o.strip() for o in options), tuple(float(p) for p in points), chat_format,
                     {str(k): str(v) for k, v in scales.items()}, tuple(items))


class ScaleTask(Task):
    """One scale file as a task (see the module docstring)."""

    variants = ("next-token", "generate")
    default_variant = "next-token"

    def __init__(self, spec: ScaleFile | None, name: str | None = None) -> None:
        self.spec = spec
        self.name = name or (spec.name if spec else "scale")
        self.description = f"attitude scale from {spec.path}" if spec else "attitude scale"

    def scoring_mode(self, variant: str) -> str:
        return "next_token" if variant == "next-token" else "generate"

    def load(self, data_dir: Path) -> TaskData:
        if self.spec is None:
            raise ConfigError(f"task {self.name!r} has no scale file")
        s = self.spec
        samples = [Sample(id=it.id, input=it.text, choices=s.options, subject=it.scale,
                          metadata={"reverse": it.reverse}) for it in s.items]
        return TaskData(samples=samples, files={s.path.name: file_sha256(s.path)})

    def render(self, sample: Sample) -> str:
        s = self.spec
        assert s is not None
        opts = "".join(f"{s.letters[i]}. {o}\n" for i, o in enumerate(s.options))
        body = f"{s.instruction}\n陈述：{sample.input}\n{opts}答案："
        return apply_chat(s.chat_format, body)

    def build_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions) -> list[Request]:
        if options.shots:
            raise ConfigError(f"task {self.name!r} is 0-shot; pass --shots 0 or leave --shots out")
        s = self.spec
        assert s is not None
        out = []
        for x in samples:
            ctx = self.render(x)
            if options.variant == "next-token":
                out.append(Request(kind="next_token", key=x.id, context=ctx, continuations=tuple(s.letters),
                                   add_special_tokens=True))
            else:
                out.append(Request(kind="generate", key=x.id, context=ctx,
                                   generation=GenerationConfig(max_new_tokens=16, stop=("\n\n",))))
        return out

    def score(self, data: TaskData, sample: Sample, request: Request, response: Response,
              options: TaskRunOptions) -> SampleScore:
        s = self.spec
        assert s is not None
        gen = request.kind == "generate"
        if not gen and len(response.logprobs or ()) != len(s.letters):
            raise ValueError(f"item {sample.id}: backend returned {len(response.logprobs or ())} log-probabilities "
                             f"for {len(s.letters)} options")
        ev = ScaleEvidence(
            scale=sample.subject, scale_name=s.scales.get(sample.subject or "", sample.subject),
            scale_index=list(s.scales).index(sample.subject) if sample.subject in s.scales else 0,
            reverse=bool(sample.metadata.get("reverse")), letters=s.letters, options=s.options, points=s.points,
            prompt_version=PROMPT_VERSION)
        base = SampleScore(
            id=sample.id, subject=sample.subject, prompt=request.context, prompt_hash=request.prompt_hash, gold=None,
            prediction=None, score=0.0,
            logprobs=None if gen else tuple(float(v) for v in response.logprobs or ()),
            generation=(response.text or "") if gen else None, extra=ev.to_extra(),
        )
        return SCALE_SAMPLE(base, ev, options.variant)

    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        from chimed_eval.core.types import record_to_score

        s = record_to_score(record)
        return SCALE_SAMPLE(s, ScaleEvidence.from_extra(s.extra), variant)

    def aggregate(self, scores: Sequence[SampleScore], variant: str, seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
        return SCALE_CORPUS(scores, [ScaleEvidence.from_extra(s.extra) for s in scores], variant, seed)


def make_scale_task_from_args(args: Mapping[str, str]) -> ScaleTask:
    """``--tasks scale --task-args path=FILE[,name=NAME]``."""
    unknown = sorted(set(args) - {"path", "name"})
    if unknown:
        raise ConfigError(f"--task-args: unknown key {unknown[0]!r} for the scale task (known: path, name)")
    if "path" not in args:
        raise ConfigError("task 'scale' needs --task-args path=<your scale file (JSON or TOML)>")
    return ScaleTask(read_scale_file(args["path"], args.get("name")))


def rescoring_task(name: str, out_dir: Path) -> ScaleTask | None:
    """A ScaleTask able to re-score ``OUT/samples/<name>.jsonl`` when its records are scale records."""
    from chimed_eval.runs.reader import first_record_extra

    if not has_keys(first_record_extra(out_dir, name), ScaleEvidence.KEYS):
        return None
    return ScaleTask(None, name=name)
