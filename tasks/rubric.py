"""``rubric``: your own conversations graded against physician-style rubrics (HealthBench's layout).

``chimed-eval run --tasks rubric --task-args path=items.jsonl --judge GRADER`` (or a ``type =
"rubric"`` entry of a ``--task-config`` file). One JSON object per line:

* ``prompt``: the conversation so far, chat messages ``[{"role": "user"|"assistant"|"system",
  "content": ...}]``, ending with a user turn; the model writes the next assistant turn. A system
  message (first only) is put before the first user turn's text.
* ``rubrics``: ``[{"criterion": text, "points": number, "tags": [text, ...]}]``; points are
  non-zero, negative for something a response must not do (harmful advice); every item needs at
  least one positive criterion. Tags are free (HealthBench's ``theme:emergency``, ``axis:accuracy``).
* optional: ``prompt_id`` or ``id`` (default: the line), ``ideal_completions`` (a text or a list:
  kept as the record's ``gold``, never used in the score), ``example_tags``.

The run generates each response (decoding as the generation tasks: greedy, 512 new tokens; the
``paper`` variant renders ``[human]:…[bot]:``, ``chat`` the model's chat format) and records it
with the conversation and the rubric (``extra.conversation``, ``extra.rubrics``), so grading reads
OUT alone. The run's own figures are the response counts (empty and truncated rates); the rubric
score comes from the grader (``--judge``, :mod:`chimed_eval.judge.rubric`): each criterion met or
not, item score = met points / positive points clipped to [0, 1], run score = their mean with a
bootstrap interval, per-tag scores and met rates, and the grader's agreement with your labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from chimed_eval.core.errors import DataError, MissingDataError
from chimed_eval.core.types import Metric, Request, Response, Sample, SampleScore, file_sha256
from chimed_eval.files.tabular import read_rows
from chimed_eval.task.options import TaskData, TaskRunOptions
from chimed_eval.tasks.config import check_task_name, coerce_settings, typed_entries
from chimed_eval.tasks.factory import TaskType, args_of, register_type
from chimed_eval.tasks.generation import DOCTOR, PATIENT, GenerationTask

PROMPT_VERSION = "rubric@1"
ROLES = ("user", "assistant", "system")


@dataclass(frozen=True)
class RubricSpec:
    path: str
    encoding: str | None = None
    name: str = "rubric"


HELP = {"path": "your items: JSONL in HealthBench's layout (prompt messages, rubrics, optional ideal_completions)",
        "encoding": "the file's encoding (default: UTF-8)", "name": "the task name in results"}


def _criteria(path: Path, line: int, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise DataError(path, line, "rubrics", "expected a non-empty list of {criterion, points, tags}")
    out = []
    for k, r in enumerate(value):
        field = f"rubrics[{k}]"
        if not isinstance(r, dict):
            raise DataError(path, line, field, "expected an object {criterion, points, tags}")
        text, points, tags = r.get("criterion"), r.get("points"), r.get("tags", [])
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, line, f"{field}.criterion", "missing or empty criterion text")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or not math.isfinite(points) or points == 0:
            raise DataError(path, line, f"{field}.points", f"expected a non-zero number, got {points!r}")
        if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
            raise DataError(path, line, f"{field}.tags", "expected a list of tag texts")
        out.append({"criterion": text.strip(), "points": float(points), "tags": [t.strip() for t in tags]})
    if not any(r["points"] > 0 for r in out):
        raise DataError(path, line, "rubrics", "no criterion with positive points: the score's denominator is 0")
    return out


def _turns(path: Path, line: int, value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not value:
        raise DataError(path, line, "prompt", "expected a non-empty list of chat messages {role, content}")
    turns = []
    for k, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise DataError(path, line, f"prompt[{k}]", f"expected {{role: {'|'.join(ROLES)}, content: text}}")
        if m["role"] == "system" and k:
            raise DataError(path, line, f"prompt[{k}]", "a system message may only come first")
        turns.append((str(m["role"]), m["content"]))
    if turns[-1][0] != "user":
        raise DataError(path, line, f"prompt[{len(turns) - 1}]", "the conversation must end with a user message")
    return turns


def _ideal(path: Path, line: int, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value[0].strip() if value else ""
    raise DataError(path, line, "ideal_completions", "expected a text or a list of texts")


def load(spec: RubricSpec) -> TaskData:
    """The items of a rubric file, in file order; any malformed line is a DataError naming line and field."""
    path = Path(spec.path).expanduser()
    if not path.is_file():
        raise MissingDataError(f"{path}: no such file (the rubric task's path=)")
    samples: list[Sample] = []
    first: dict[str, int] = {}
    for row in read_rows(path, "jsonl", spec.encoding):  # a bad line: DataError naming it
        line, doc = row.line, row.fields
        turns = _turns(path, line, doc.get("prompt"))
        rubrics = _criteria(path, line, doc.get("rubrics"))
        rid = str(doc.get("prompt_id") or doc.get("id") or line)
        if rid in first:
            raise DataError(path, line, "prompt_id", f"duplicate item id {rid!r} (first at line {first[rid]})")
        first[rid] = line
        system = turns[0][1].strip() + "\n" if turns[0][0] == "system" else ""
        chat = [(r, t) for r, t in turns if r != "system"]
        chat[0] = (chat[0][0], system + chat[0][1])
        dialogue = [(PATIENT if r == "user" else DOCTOR, t.strip() + "\n") for r, t in chat]
        samples.append(Sample(id=rid, input=chat[-1][1], target=_ideal(path, line, doc.get("ideal_completions")),
                              metadata={"file": path.name, "line": line, "turns": [list(t) for t in dialogue],
                                        "conversation": [list(t) for t in turns], "rubrics": rubrics,
                                        "example_tags": [str(t) for t in doc.get("example_tags") or []]}))
    return TaskData(samples=samples, files={path.name: file_sha256(path)})


class RubricTask(GenerationTask):
    """Generate the next assistant turn; graded against the item's rubric afterwards (module docstring)."""

    def score(self, data: TaskData, sample: Sample, request: Request, response: Response,
              options: TaskRunOptions) -> SampleScore:
        from chimed_eval.metrics.text import is_empty_generation, used_whole_budget
        from chimed_eval.extract.reasoning import strip_reasoning
        from chimed_eval.prompts.variants import cut_at_stop

        g = request.generation or self.generation_config(options)
        text, trace = strip_reasoning(cut_at_stop(response.text or "", g.stop), options.think_markers)
        n_tokens = response.n_tokens[0] if response.n_tokens else None
        meta = sample.metadata
        extra = {"prompt_version": PROMPT_VERSION, "file": meta.get("file"), "line": meta.get("line"),
                 "conversation": meta["conversation"], "rubrics": meta["rubrics"], "example_tags": meta["example_tags"],
                 "max_new_tokens": g.max_new_tokens, "n_tokens": n_tokens, "empty": is_empty_generation(text),
                 "truncated": used_whole_budget(text, n_tokens, g.max_new_tokens), **trace}
        # score: 1 for a response (not empty), 0 for none; the rubric grade lives in OUT/judge/rubric-*
        return SampleScore(id=sample.id, subject=None, prompt=request.context, prompt_hash=request.prompt_hash,
                           gold=str(sample.target or ""), prediction=None, score=0.0 if extra["empty"] else 1.0,
                           generation=text, extraction_failed=bool(extra["empty"]), extra=extra)

    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        from chimed_eval.core.types import record_to_score

        return record_to_score(record)

    def aggregate(self, scores: Sequence[SampleScore], variant: str,
                  seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
        n = len(scores)
        empty = sum(1 for s in scores if s.extra.get("empty"))
        trunc = sum(1 for s in scores if s.extra.get("truncated"))
        crit = sum(len(s.extra.get("rubrics") or ()) for s in scores)
        return [Metric("response_rate", 100.0 * (n - empty) / n if n else float("nan"), n=n, averaging="items"),
                Metric("truncated_generation_rate", 100.0 * trunc / n if n else float("nan"), n=n, averaging="items"),
                Metric("criterion_count", float(crit), n=n)], {}


def _make(spec: RubricSpec) -> RubricTask:
    check_task_name(spec.name)
    return RubricTask(spec.name, lambda _d: load(spec), f"your rubric items from {spec.path}: graded per criterion")


def _rescoring(name: str, out: Path) -> RubricTask | None:
    from chimed_eval.judge.rubric import is_rubric_record
    from chimed_eval.runs.reader import first_record

    rec = first_record(out, name)
    return RubricTask(name, lambda _d: TaskData([])) if rec is not None and is_rubric_record(rec) else None


_KEYS = tuple(f.name for f in RubricSpec.__dataclass_fields__.values())
register_type(TaskType(
    "rubric", "your own conversations with HealthBench-style rubrics (JSONL): a grader judges each criterion",
    args_of(RubricSpec, HELP),
    lambda args: _make(RubricSpec(**coerce_settings(args, "--task-args: ", _KEYS, {}, need_path="the rubric task "
                                                                                                 "needs path=<your file>"))),
    _rescoring,
    lambda path: [_make(RubricSpec(**v)) for v in typed_entries(path, "rubric", _KEYS, {}, need_path="the rubric task "
                                                                                                   "needs path=<your file>")],
    example="--tasks rubric --task-args path=examples/rubric_zh.jsonl --judge GRADER"))
