"""``membership``: was a task's item in the model's training data? Min-K% Prob and Min-K%++ per
item, from the model's own per-token log-probabilities (:mod:`chimed_eval.metrics.membership`
defines the scores, the AUC and its interval).

``chimed-eval run --tasks membership --task-args task=cmd-qa,k=20,seen=seen.txt --backend hf``

Arguments: ``task`` (required): the task whose items are scored, a registered task (``cmd-qa``,
``cmmlu-medical-paper``, ...) or a task type (``mcq``, ``ner``, ...) whose own arguments are the
other keys (``task=mcq,path=exam.jsonl,question=题干,options=选项,answer=答案``); ``k``: the
percentage of lowest tokens (1-100, default 20); ``seen``: a file listing the ids of items known to
be in the model's training data, one per line (blank lines and lines starting with ``#`` skipped;
an id that is not one of the task's items is an error naming the file and line); every other item
of the task is then *unseen*; without it no item is labelled; ``text``: what is scored, ``both``
(default), ``input`` or ``target``. The task is named ``membership-<task name>``; ``--limit N``
takes the task's first N items; it is 0-shot and has one variant, ``min-k``.

The text of an item, as a training document holds it:

* the *question*: a multiple-choice item's ``input``, a newline, and its options one per line as
  ``A. text``; a dialogue's context turns, one per line (speaker labels left out); any other
  item's ``input`` (an open-QA question, an NER text, a scale statement);
* the *reference*: a multiple-choice item's correct option text (several: one per line), as
  ``chimed-train``'s SafetyBench chats answer; an open-QA answer or the dialogue's doctor turn;
  none for an item without a text answer (NER, scales).

``text=both`` scores question, newline, reference (the question alone without a reference) after
the BOS token (request: empty context, the text as the one continuation); ``text=input`` the
question alone; ``text=target`` the reference after the question and a newline (context: the
question; an item without a reference is an error). Requests are ``token_logprobs``
(``--backend hf``: both scores; ``vllm``: Min-K% only, Min-K%++ reported unavailable; others refuse).

Each record holds in ``extra``: ``min_k``, ``min_kpp`` (None without the vocabulary moments),
``n_tokens``, ``seen`` (True, False, or None without a seen file), ``k``, ``text`` (the mode) and
the per-token ``token_logprobs`` and ``token_moments``, from which ``chimed-eval score`` recomputes
the scores; ``gold`` is the seen label, ``score`` the item's Min-K% (so ``compare`` and the
report's worst items read it), ``prompt`` the scored context and text.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.evidence.base import has_keys
from chimed_eval.core.types import file_sha256
from chimed_eval.task.base import Task
from chimed_eval.task.options import TaskData, TaskRunOptions
from chimed_eval.core.types import Metric, Request, Response, Sample, SampleScore

from chimed_eval.tasks.factory import TaskArg, TaskType, register_type

TEXT_MODES = ("both", "input", "target")
OWN_ARGS = ("task", "k", "seen", "text")
SEEN_META = "membership_seen"  # an item's label in its Sample.metadata (part of the items' hash)
RECORD_KEYS = ("min_k", "min_kpp", "n_tokens", "seen", "k", "text", "token_logprobs", "token_moments")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def document_parts(sample: Sample) -> tuple[str, str | None]:
    """(question, reference or None) of an item, as the module docstring defines them."""
    turns = sample.turns
    if turns is not None:
        question = "\n".join(t.rstrip("\n") for _, t in turns)
    elif sample.choices:
        question = str(sample.input).rstrip() + "\n" + "\n".join(
            f"{LETTERS[i]}. {c}" for i, c in enumerate(sample.choices))
    else:
        question = str(sample.input)
    target = sample.target
    if sample.choices and target is not None and not isinstance(target, str):
        gold = (target,) if isinstance(target, int) else tuple(target)
        return question, "\n".join(str(sample.choices[int(i)]) for i in gold)
    if isinstance(target, str) and target.strip():
        return question, target
    return question, None


def request_text(sample: Sample, mode: str) -> tuple[str, str]:
    """(context, text scored) of an item for a ``text=`` mode."""
    question, reference = document_parts(sample)
    if mode == "input" or (mode == "both" and reference is None):
        return "", question
    if mode == "both":
        return "", f"{question}\n{reference}"
    if reference is None:
        raise ConfigError(f"item {sample.id!r} has no reference text to score with text=target "
                          "(use text=both or text=input)")
    return question + "\n", str(reference)


def read_seen(path: Path, ids: Sequence[str], task: str) -> set[str]:
    """The ids listed in a seen file; each must be one of the task's item ``ids``."""
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"--task-args seen={path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--task-args seen={path}: cannot read it as UTF-8 text ({e})") from None
    known, out = set(ids), set()
    for lineno, line in enumerate(lines, 1):
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        if item not in known:
            example = f" (its ids look like {ids[0]!r})" if ids else ""
            raise ConfigError(f"{path}:{lineno}: {item!r} is not an item id of task {task!r}{example}; list one "
                              "item id per line")
        out.add(item)
    return out


class MembershipTask(Task):
    """Min-K% / Min-K%++ of every item of another task (see the module docstring)."""

    variants = ("min-k",)
    default_variant = "min-k"

    def __init__(self, inner: Task | None, k: int = 20, seen: str | None = None, text: str = "both",
                 name: str | None = None) -> None:
        if inner is None and name is None:
            raise ValueError("a membership task needs the task it wraps or a name")
        self.inner = inner
        self.k = k
        self.seen = seen
        self.text = text
        self.name = name or f"membership-{inner.name}"  # type: ignore[union-attr]
        self.description = f"Min-K% / Min-K%++ membership scores of {inner.name if inner else name}'s items"

    def scoring_mode(self, variant: str) -> str:
        return "token_logprobs"

    def check_options(self, options: TaskRunOptions) -> None:
        if options.shots:
            raise ConfigError(f"task {self.name!r} is 0-shot; pass --shots 0 or leave --shots out")

    def load(self, data_dir: Path) -> TaskData:
        if self.inner is None:
            raise ConfigError(f"task {self.name!r} was rebuilt from its records only; it cannot load data")
        data = self.inner.load(data_dir)
        files = dict(data.files)
        seen: set[str] | None = None
        if self.seen is not None:
            seen = read_seen(Path(self.seen), [s.id for s in data.samples], self.inner.name)
            files[str(self.seen)] = file_sha256(Path(self.seen))
        samples = [dataclasses.replace(s, metadata={**s.metadata, SEEN_META: None if seen is None else s.id in seen})
                   for s in data.samples]
        return TaskData(samples=samples, files=files, subject_names=data.subject_names, labels=data.labels)

    def build_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions) -> list[Request]:
        out = []
        for s in samples:
            context, text = request_text(s, self.text)
            if not text.strip():
                raise ConfigError(f"task {self.name!r}: item {s.id!r} has no text to score")
            out.append(Request(kind="token_logprobs", key=s.id, context=context, continuations=(text,),
                               add_special_tokens=True))
        return out

    def oracle_output(self, sample: Sample, request: Request, options: TaskRunOptions) -> None:
        return None  # nothing to answer: the fake backend's values come from the characters

    def score(self, data: TaskData, sample: Sample, request: Request, response: Response,
              options: TaskRunOptions) -> SampleScore:
        lps = response.token_logprobs
        if not lps:
            raise ValueError(f"item {sample.id}: the backend returned no per-token log-probabilities")
        moments = response.token_moments
        extra = {"seen": sample.metadata.get(SEEN_META), "k": self.k, "text": self.text,
                 "token_logprobs": [float(x) for x in lps],
                 "token_moments": None if moments is None else [[float(m), float(s)] for m, s in moments]}
        base = SampleScore(id=sample.id, subject=sample.subject, prompt=request.context + request.continuations[0],
                           prompt_hash=request.prompt_hash, gold=extra["seen"], prediction=None, score=0.0,
                           extra=extra)
        return _scored(base)

    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        from chimed_eval.core.types import record_to_score

        return _scored(record_to_score(record))

    def aggregate(self, scores: Sequence[SampleScore], variant: str, seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
        from chimed_eval.metrics.membership import membership_metrics

        ex = [s.extra for s in scores]
        return membership_metrics([e["min_k"] for e in ex], [e["min_kpp"] for e in ex],
                                  [e["seen"] for e in ex], seed), {}


def _scored(s: SampleScore) -> SampleScore:
    """The record with its scores (re)computed from its per-token values and its own ``k``."""
    from chimed_eval.metrics.membership import min_k_plus_plus, min_k_prob

    ex = dict(s.extra)
    lps, moments, k = ex["token_logprobs"], ex.get("token_moments"), ex["k"]
    min_k = min_k_prob(lps, k)
    ex.update(min_k=min_k, min_kpp=None if moments is None else min_k_plus_plus(lps, moments, k), n_tokens=len(lps))
    return dataclasses.replace(s, score=min_k, extra={k_: ex[k_] for k_ in RECORD_KEYS})


# --- the task type ---------------------------------------------------------------------------------


def _int_k(value: str) -> int:
    try:
        k = int(value)
    except ValueError:
        k = -1
    if not 1 <= k <= 100:
        raise ConfigError(f"--task-args k={value}: expected a whole percentage from 1 to 100 (default 20)")
    return k


def make_membership_task(args: Mapping[str, str]) -> MembershipTask:
    """``--tasks membership --task-args task=NAME[,k=20][,seen=FILE][,text=both][,<NAME's own args>]``."""
    from chimed_eval.tasks import TASKS, get_task
    from chimed_eval.tasks.factory import TASK_TYPES

    if not args.get("task"):
        raise ConfigError("task 'membership' needs --task-args task=<a task name or task type>, e.g. task=cmd-qa")
    name = args["task"]
    rest = {k: v for k, v in args.items() if k not in OWN_ARGS}
    text = args.get("text", "both")
    if text not in TEXT_MODES:
        raise ConfigError(f"--task-args text={text}: choose one of {', '.join(TEXT_MODES)}")
    if name == "membership":
        raise ConfigError("--task-args task=membership: name the task whose items are scored, e.g. task=cmd-qa")
    if name in TASK_TYPES:
        inner = TASK_TYPES.get(name).from_args(rest)
    elif name in TASKS:
        if rest:
            raise ConfigError(f"--task-args: unknown key(s) {', '.join(sorted(rest))} for membership of task "
                              f"{name!r} (known: {', '.join(OWN_ARGS)}; other keys are for task types such as mcq)")
        inner = get_task(name)
    else:
        from chimed_eval.core.registry import UnknownNameError

        raise UnknownNameError(TASKS.unknown_message(name) + f". Task types: {', '.join(TASK_TYPES.names())}")
    return MembershipTask(inner, _int_k(args.get("k", "20")), args.get("seen") or None, text)


def rescoring_task(name: str, out_dir: Path) -> MembershipTask | None:
    """A MembershipTask re-scoring ``OUT/samples/<name>.jsonl`` from the records alone (they hold
    their per-token values and their k), or None when they are not membership records."""
    from chimed_eval.runs.reader import first_record_extra

    if not has_keys(first_record_extra(out_dir, name), RECORD_KEYS):
        return None
    return MembershipTask(None, name=name)


register_type(TaskType(
    "membership", "Min-K% / Min-K%++ membership scores of another task's items (seen vs unseen AUC)",
    (TaskArg("task", "str", dataclasses.MISSING, "the task whose items are scored: a task name, or a task type "
                                                  "(mcq, ner, ...) whose own arguments are the other keys"),
     TaskArg("k", "int", 20, "the percentage of lowest-scoring tokens averaged (1-100)"),
     TaskArg("seen", "str | None", None, "a file of item ids known to be in the model's training data, one per line"),
     TaskArg("text", "str", "both", "what is scored: both (question then reference), input, target")),
    make_membership_task, rescoring_task, None,
    example="--tasks membership --task-args task=cmd-qa,k=20,seen=seen_ids.txt"))
