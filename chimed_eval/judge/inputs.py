"""What a judge is shown: the items of a run's open-QA and dialogue tasks, read from OUT alone.

Only generation tasks are judged: a task whose records are free generations with a reference
(``extra.prompt_version`` ``gen@…``: ``cmd-qa``, ``chimed-qa``, ``mc-dialogue``,
``covid-dialogue-zh`` and your own ``qa`` files). Multiple-choice, NER and scale tasks are refused.

Per record: the **answer** is the saved ``generation`` (stop strings and reasoning traces already
cut off by the task), the **reference** its ``gold``, and the **question** is recovered from the
saved ``prompt`` without the prompt markup, by the first rule that applies (:func:`question_of`):

1. ``messages``: a chat-API request (``<<chimed-eval:openai-messages>>`` + JSON): its messages;
2. ``chatml``: ``<|im_start|>role ... <|im_end|>`` blocks (the fake backend's stand-in, Qwen-style
   templates): the user and assistant blocks (system blocks dropped);
3. ``format:NAME``: a documented chat format of :data:`chimed_eval.prompts.variants.CHAT_FORMATS` (``chimed``
   is the ``paper`` variant's ``[human]:…[bot]:``) whose turn markers split the prompt so that
   rendering the turns again gives back exactly the prompt;
4. ``raw``: otherwise (a tokenizer template no rule undoes) the prompt as saved.

One user turn is the question as is; several turns (a dialogue) become lines ``患者：…`` (user) and
``医生：…`` (assistant) in order. The rule used is kept in every judge record (``question_rule``).

With ``--baseline`` (pairwise; pointwise, to grade a second model's answers too), each item is
paired with the record of the same task and item id in the baseline run.
Items missing there are refused (their ids named), and so is a pair whose reference differs, or
whose questions differ where both were recovered by a rule other than ``raw``: then the two runs
did not answer the same items.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from chimed_eval.core.errors import ConfigError

PATIENT_LABEL, DOCTOR_LABEL = "患者：", "医生："
_CHATML = re.compile(r"<\|im_start\|>(system|user|assistant)\n(.*?)<\|im_end\|>", re.DOTALL)


@dataclass(frozen=True)
class JudgeItem:
    """One answer to judge: task, item id, question (rule), reference, candidate answer, and for
    pairwise the baseline's answer to the same item."""

    task: str
    id: str
    question: str
    question_rule: str
    reference: str
    answer: str
    baseline: str | None = None
    #: a question of a case (``cmb-clin``: the record's ``extra.case`` and ``extra.question_index``), so
    #: the judge's scores are also given per case; None for items that stand alone
    case: str | None = None
    question_index: int | None = None


def _render_turns(turns: Sequence[tuple[str, str]]) -> str:
    turns = [(r, t.strip()) for r, t in turns if r in ("user", "assistant")]
    if len(turns) == 1 and turns[0][0] == "user":
        return turns[0][1]
    return "\n".join((PATIENT_LABEL if r == "user" else DOCTOR_LABEL) + t for r, t in turns)


def _format_turns(prompt: str) -> tuple[str, list[tuple[str, str]]] | None:
    from chimed_eval.prompts.variants import CHAT_FORMATS

    for name, f in CHAT_FORMATS.items():
        up, ap = f.user[0], f.assistant[0]
        if not up or not ap or not prompt.startswith(f.system + up) or not prompt.endswith(f.generation_prompt):
            continue
        body = prompt[len(f.system): len(prompt) - len(f.generation_prompt)]
        pieces = re.split(f"({re.escape(up)}|{re.escape(ap)})", body)
        turns = []
        for marker, text in zip(pieces[1::2], pieces[2::2]):
            role = "user" if marker == up else "assistant"
            suffix = (f.user if role == "user" else f.assistant)[1]
            turns.append((role, text[: len(text) - len(suffix)] if suffix and text.endswith(suffix) else text))
        if pieces[0] or not turns:
            continue
        try:
            again = f.render([{"role": r, "content": t} for r, t in turns])
        except ConfigError:
            continue
        if again == prompt:
            return f"format:{name}", turns
    return None


def question_of(prompt: str) -> tuple[str, str]:
    """(question text, rule) recovered from a record's prompt (rules in the module docstring)."""
    from chimed_eval.models.chat import MESSAGES_TAG

    if prompt.startswith(MESSAGES_TAG):
        try:
            msgs = json.loads(prompt[len(MESSAGES_TAG):])
            return _render_turns([(str(m["role"]), str(m["content"])) for m in msgs]), "messages"
        except (ValueError, KeyError, TypeError):
            pass
    blocks = _CHATML.findall(prompt)
    if blocks:
        return _render_turns(blocks), "chatml"
    found = _format_turns(prompt)
    if found is not None:
        return _render_turns(found[1]), found[0]
    return prompt.strip(), "raw"


def is_generation_record(rec: dict) -> bool:
    extra = rec.get("extra") if isinstance(rec.get("extra"), dict) else {}
    return (rec.get("generation") is not None and isinstance(rec.get("gold"), str)
            and str(extra.get("prompt_version") or "").startswith("gen@"))


def task_records(out_dir: Path, task: str) -> list[dict]:
    """The records of one generation task of OUT, in file order (a later record of an id replaces
    an earlier one); ConfigError when the task has no records or is not a generation task."""
    from chimed_eval.runs.reader import iter_records, sample_tasks, samples_file

    path = samples_file(out_dir, task)
    by_id: dict[str, dict] = {}
    for rec in iter_records(out_dir, task):
        by_id[str(rec["id"])] = rec
    if not by_id:
        have = ", ".join(sample_tasks(out_dir)) or "none"
        raise ConfigError(f"{path}: no records of task {task!r} in {out_dir} (tasks recorded: {have})")
    if not all(is_generation_record(r) for r in by_id.values()):
        raise ConfigError(f"task {task!r} ({path}) is not an open-QA or dialogue task: its records are not free "
                          "generations with a reference (multiple-choice, NER and scale tasks are scored by their own "
                          "metrics); the judge grades cmd-qa, chimed-qa, mc-dialogue, covid-dialogue-zh and qa tasks")
    return list(by_id.values())


def generation_tasks(out_dir: Path, tasks: Sequence[str] | None, required: bool = True) -> list[str]:
    """The tasks to judge: those asked for (each must be a generation task with records), or
    every generation task recorded in OUT (ConfigError when there is none, unless not ``required``)."""
    from chimed_eval.runs.reader import first_record, sample_tasks

    if tasks:
        return list(dict.fromkeys(tasks))
    names = [t for t in sample_tasks(out_dir)
             if (rec := first_record(out_dir, t)) is not None and is_generation_record(rec)]
    if not names and required:
        raise ConfigError(f"{out_dir}: no open-QA or dialogue task recorded (samples/<task>.jsonl of cmd-qa, chimed-qa, "
                          f"mc-dialogue, covid-dialogue-zh or qa); tasks recorded: {', '.join(sample_tasks(out_dir)) or 'none'}")
    return names


def _item(task: str, rec: dict) -> JudgeItem:
    question, rule = question_of(str(rec.get("prompt") or ""))
    refs = (rec.get("extra") or {}).get("references") or []  # an item with several references shows them all
    reference = "\n".join(f"({k}) {r}" for k, r in enumerate(refs, 1)) if len(refs) > 1 else str(rec["gold"])
    extra = rec.get("extra") if isinstance(rec.get("extra"), dict) else {}
    case, index = extra.get("case"), extra.get("question_index")
    return JudgeItem(task, str(rec["id"]), question, rule, reference, str(rec["generation"]),
                     case=None if case is None else str(case),
                     question_index=index if isinstance(index, int) and not isinstance(index, bool) else None)


def load_items(out_dir: Path, tasks: Sequence[str], limit: int | None = None,
               baseline: Path | None = None) -> dict[str, list[JudgeItem]]:
    """Per task the items to judge (the first ``limit`` records of each), paired with the
    baseline's answers when ``baseline`` is given (refusals in the module docstring)."""
    out: dict[str, list[JudgeItem]] = {}
    for task in tasks:
        items = [_item(task, r) for r in task_records(out_dir, task)][:limit]
        if baseline is not None:
            items = _paired(task, items, baseline)
        out[task] = items
    return out


def _paired(task: str, items: list[JudgeItem], baseline: Path) -> list[JudgeItem]:
    from chimed_eval.runs.reader import samples_file

    if not samples_file(baseline, task).exists():
        raise ConfigError(f"baseline {baseline} has no records of task {task!r} (samples/{task}.jsonl); "
                          "run the baseline model on the same task first")
    base = {str(r["id"]): _item(task, r) for r in task_records(baseline, task)}
    missing = [i.id for i in items if i.id not in base]
    if missing:
        shown = ", ".join(missing[:10]) + (f" ... ({len(missing)} in all)" if len(missing) > 10 else "")
        raise ConfigError(f"task {task!r}: the baseline {baseline} did not answer these items: {shown}. Judging "
                          "against a baseline needs the same items in both runs (same data, same or larger --limit)")
    out = []
    for i in items:
        b = base[i.id]
        if b.reference != i.reference or ("raw" not in (b.question_rule, i.question_rule) and b.question != i.question):
            what = "reference answer" if b.reference != i.reference else "question"
            raise ConfigError(f"task {task!r}: item {i.id!r} has another {what} in the baseline {baseline}: the two "
                              "runs did not answer the same items (other data files or task arguments)")
        out.append(dataclasses.replace(i, baseline=b.answer))
    return out
