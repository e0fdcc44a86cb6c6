"""``--answer-check MODEL``: a model reads the chosen letter(s) of a generated multiple-choice answer
(variants ``generate`` and ``cot``) where the extraction rules found none (rule ``none``), as
OpenCompass does; never where a rule read something.

After the run's own batches, each such record is sent once to the checker
(:data:`CHECK_PROMPT`: the end of the item's prompt, the answer, "reply with the letters only");
its reply is saved in the record (``extra["answer_check"] = {"model", "reply"}``) and the record is
re-judged by the task (:func:`chimed_eval.extract.reasoning.answer_check_reading`): the rule becomes
``model`` where the reply states letters, the record's ``prediction`` and ``score`` stay the rules'
own (``acc`` is unchanged) and ``score_with_answer_check`` counts the model's reading
(``acc_with_answer_check``, ``extraction_rule_model_count``). Records already checked are skipped,
so a killed run resumes; the checker's calls go through the response cache.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from chimed_eval.core.types import score_to_record
from chimed_eval.runs.settings import PreparedTask

CHECK_PROMPT = ("下面是一道选择题和一个回答。请读出这个回答最终选择的选项字母，只输出字母（多选题输出全部字母，如 ABD）；"
                "回答没有选择任何选项时输出“无”。\n\n题目（末尾部分）：\n{question}\n\n回答：\n{answer}\n\n"
                "回答选择的选项：")
QUESTION_CHARS = 1500  # the end of the item's prompt shown (the question and its options, not the shots)
VARIANTS = ("generate", "cot")


def check_prompt(record: dict[str, Any]) -> str:
    """The checker's prompt for one record."""
    return CHECK_PROMPT.format(question=str(record.get("prompt") or "")[-QUESTION_CHARS:].strip(),
                               answer=str(record.get("generation") or "").strip())


def unread(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records the rules could not read and the checker has not yet seen."""
    return [r for r in records if (r.get("extra") or {}).get("extraction_rule") == "none"
            and "answer_check" not in (r.get("extra") or {})]


def run_answer_check(prepared: Sequence[PreparedTask], open_helper: Callable[[str], Any], done: dict[str, Any],
                     stores: dict[str, Any], batch_size: int) -> None:
    """Check every unread record of the multiple-choice generation tasks (module docstring)."""
    from chimed_eval.task.multiple_choice import MCQTask

    for p in prepared:
        if not isinstance(p.task, MCQTask) or p.variant not in VARIANTS:
            continue
        todo = unread([done[p.task.name][s.id] for s in p.samples if s.id in done[p.task.name]])
        if not todo:
            continue
        checker = open_helper("answer_check")
        replies = checker.ask([(f"{r['id']}#answer-check", check_prompt(r)) for r in todo], batch_size)
        model = checker.spec_model
        new = []
        for rec, reply in zip(todo, replies):
            checked = {**rec, "extra": {**rec["extra"], "answer_check": {"model": model, "reply": reply}}}
            out = score_to_record(p.task.rescore(checked, p.variant))
            done[p.task.name][out["id"]] = out
            new.append(out)
        stores[p.task.name].append(new)
