"""Reasoning in generations: ``<think>`` traces of reasoning models, and the chain-of-thought
(``cot``) exam variant's judging and figures.

Called from :class:`chimed_eval.task.multiple_choice.MCQTask` (every exam variant that generates),
:mod:`chimed_eval.tasks.generation` (open QA, dialogue) and :mod:`chimed_eval.evidence.kinds` (judging, figures).

* **Traces** (:func:`strip_reasoning`): a generation holding the run's think markers (``--think-markers
  START,END``, default ``<think>,</think>``; ``none`` turns stripping off) is split by
  :func:`chimed_eval.extract.letters.split_reasoning`; the record's ``generation`` is the answer
  part (what extraction and BLEU/ROUGE read), ``extra["reasoning_trace"]`` the trace and
  ``extra["trace_truncated"]`` whether the budget cut it (the start marker without the end one:
  the answer is then empty). A generation without either marker is left byte for byte as it was
  and its record gets no key, so runs of models that do not reason write exactly what they always
  wrote.
* **generate and cot** (:func:`judge_generation`): the answer by the one cascade of
  :func:`chimed_eval.extract.letters.extract_final_answer` (``multi`` when the gold names several
  options); ``cot`` also reads the option texts kept in ``extra["options"]``. The rule that fired
  goes to ``extra["extraction_rule"]``; a failure (rule ``several`` or ``none``) is scored wrong.
* **Figures** (:func:`reasoning_figures`): ``extraction_rule_<rule>_count`` for every rule of
  :data:`~chimed_eval.extract.letters.RULES` when records carry a rule, and
  ``truncated_trace_rate`` / ``truncated_trace_count`` when any record carries a trace.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import Metric, SampleScore

DEFAULT_THINK_MARKERS = ("<think>", "</think>")


def parse_think_markers(text: str | None) -> tuple[str, str] | None:
    """``--think-markers``: ``"START,END"`` -> (start, end); None (not given) -> the default
    ``("<think>", "</think>")``; ``"none"`` -> None (no stripping). ``START`` may be empty (a chat
    template that opens the trace in the prompt); ``END`` may not."""
    if text is None:
        return DEFAULT_THINK_MARKERS
    if text.strip().lower() == "none":
        return None
    start, sep, end = text.partition(",")
    if not sep or not end.strip() or "," in end:
        raise ConfigError(f"--think-markers {text!r}: expected START,END (e.g. '<think>,</think>'; "
                          "START may be empty) or 'none'")
    return start.strip(), end.strip()


def strip_reasoning(text: str, markers: tuple[str, str] | None) -> tuple[str, dict[str, Any]]:
    """(answer text, record keys) of a generation; ``text`` unchanged and no keys when it holds no
    marker (or stripping is off). See the module docstring."""
    from chimed_eval.extract.letters import split_reasoning

    if markers is None:
        return text, {}
    start, end = markers
    if start and start not in text and end not in text:  # no trace (an empty START: the prompt opened one)
        return text, {}
    trace, answer, truncated = split_reasoning(text, start, end)
    return answer, {"reasoning_trace": trace, "trace_truncated": truncated}


def judge_generation(s: SampleScore, n_options: int, variant: str) -> SampleScore:
    """Prediction (the chosen letters, sorted), score (exact match with the gold letters) and
    ``extra["extraction_rule"]`` of an exam generation (``generate``, ``cot``), from the record
    alone: one reading of letters for every variant; only ``cot`` reads option texts too."""
    from chimed_eval.extract.letters import extract_final_answer

    gold = "".join(sorted(str(s.gold)))
    options = tuple(s.extra.get("options") or ()) if variant == "cot" else ()
    ex = extract_final_answer(s.generation or "", n_options, options, multi=len(gold) > 1)
    pred = ex.letters
    extra = {**s.extra, "extraction_rule": ex.rule}
    if "answer_check" in s.extra:  # --answer-check: a model's reading, kept apart from the rules' (acc)
        extra.update(answer_check_reading(s.extra["answer_check"], ex.rule, pred, gold, n_options))
    return replace(s, prediction=pred, extracted=pred, extraction_failed=ex.failed, score=float(pred == gold),
                   extra=extra)


#: the reading rule of an answer read by the ``--answer-check`` model
MODEL_RULE = "model"


def answer_check_reading(check: dict[str, Any], rule: str, pred: str | None, gold: str,
                         n_options: int) -> dict[str, Any]:
    """The record keys of ``--answer-check`` (:mod:`chimed_eval.engine.answer_check`): where the
    cascade found nothing (rule ``none``) and the checker's reply states letters (read by the same
    cascade, options A.. within ``n_options``), ``extraction_rule`` becomes ``model`` and
    ``prediction_with_answer_check`` its letters; ``score_with_answer_check`` is the item's score
    counting that reading, the rules' own reading elsewhere. ``prediction`` and ``score`` stay the
    rules' alone, so ``acc`` never mixes the two."""
    from chimed_eval.extract.letters import extract_final_answer

    read = extract_final_answer(str(check.get("reply") or ""), n_options, (), multi=len(gold) > 1)
    if rule != "none" or read.letters is None:
        return {"score_with_answer_check": float(pred == gold), "prediction_with_answer_check": pred}
    return {"extraction_rule": MODEL_RULE, "prediction_with_answer_check": read.letters,
            "score_with_answer_check": float(read.letters == gold)}


def rule_counts(scores: Sequence[SampleScore]) -> dict[str, int]:
    """Records per extraction rule, every rule of the cascade listed (in cascade order); empty
    when no record carries a rule."""
    from chimed_eval.extract.letters import RULES

    rules = [s.extra.get("extraction_rule") for s in scores]
    if all(r is None for r in rules):
        return {}
    listed = RULES + ((MODEL_RULE,) if any("answer_check" in s.extra for s in scores) else ())
    return {r: sum(1 for x in rules if x == r) for r in listed}


def reasoning_figures(scores: Sequence[SampleScore], protocol: str | None) -> list[Metric]:
    """The per-rule counts and the truncated-trace rate and count (see the module docstring);
    nothing for records with neither rules nor traces."""
    from chimed_eval.metrics.text import rate_and_count

    n = len(scores)
    out = [Metric(f"extraction_rule_{r}_count", float(k), None, None, n, None, protocol, None)
           for r, k in rule_counts(scores).items()]
    if any("answer_check" in s.extra for s in scores):  # the figure counting the model's readings, named apart
        from chimed_eval.metrics.stats import WILSON, wilson

        k = sum(float(s.extra.get("score_with_answer_check", s.score)) for s in scores)
        ci = wilson(k, n)
        out.append(Metric("acc_with_answer_check", 100.0 * k / n if n else 0.0, 100 * ci[0] if ci else None,
                          100 * ci[1] if ci else None, n, "items", protocol, None, WILSON if ci else None))
    if any("reasoning_trace" in s.extra for s in scores):
        out += rate_and_count("truncated_trace", [bool(s.extra.get("trace_truncated")) for s in scores], "items",
                              protocol)
    return out
