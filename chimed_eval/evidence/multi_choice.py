"""Multiple-answer exam items (CMExam, CMB-Exam, a user's ``ABD`` answers): targets, prompts,
judging and figures, called from :class:`chimed_eval.task.multiple_choice.MCQTask` and
:mod:`chimed_eval.evidence.kinds`.

An item's ``Sample.target`` is an ``int`` when it has one answer (so nothing on disk changes for
single-answer exams) and a sorted tuple of two or more indices when it has several; its record's
``gold`` is the letters (``"B"``, ``"ABD"``), so a record alone says which kind it is.

Rules, and why:

* Letter-scoring variants (``paper``: next-token, ``lm-eval``: log-likelihood) pick exactly one
  option, so a multiple-answer item is refused there (:func:`refuse_letter_scoring`), naming the
  item: scoring it as if it had one answer would silently cap the figure.
* Generation variants tell the model the item's type, as CMB's official prompt does
  (``{question_type}``): a single-answer item keeps the ``generate`` prompt byte for byte, a
  multiple-answer item says 多项选择题 (:func:`render_multi_generate`). Every generation is read by
  the one letter reader (:func:`chimed_eval.extract.reasoning.judge_generation`): every stated letter of a
  multiple-answer item; on a single-answer item several stated letters are an extraction failure
  (rule ``several``), never one of them.
* A task whose items may have several answers reports ``acc_exact_set`` (the official CMExam/CMB
  rule) and ``option_f1`` (partial credit), never ``acc``: a leaderboard ``acc`` column then holds
  only single-answer accuracy (:func:`multi_answer_figures`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.prompts.variants import LETTERS, MCQPrompt, question_block
from chimed_eval.core.types import Metric, Sample, SampleScore

MULTI_GENERATE_VERSION = "generate-multi@1"
"""The prompt version of a multiple-answer item under ``generate``."""

Figures = tuple[list[Metric], dict[str, dict[str, float | int]]]


def is_multi(target: Any) -> bool:
    """Whether a Sample's target names several options (a tuple of two or more indices)."""
    return isinstance(target, tuple) and len(target) > 1


def gold_is_multi(gold: Any) -> bool:
    """Whether a record's gold names several options (``"ABD"``)."""
    return isinstance(gold, str) and len(gold) > 1


def target_letters(target: Any) -> str:
    """A target as the record's gold letters: ``1`` -> ``"B"``, ``(0, 1, 3)`` -> ``"ABD"``."""
    if isinstance(target, tuple):
        return "".join(LETTERS[int(i)] for i in sorted(target))
    return LETTERS[int(target)]


def multi_target(indices: Sequence[int]) -> int | tuple[int, ...]:
    """The Sample target for a set of gold indices: an int for one, a sorted tuple for several."""
    s = sorted(set(int(i) for i in indices))
    if not s:
        raise ValueError("an item needs at least one correct option")
    return s[0] if len(s) == 1 else tuple(s)


def refuse_letter_scoring(task: str, samples: Sequence[Sample], variant: str) -> None:
    """Raise a ConfigError naming the first multiple-answer item when ``variant`` scores one
    letter (``paper``, ``lm-eval``): such a variant cannot choose several options."""
    bad = [s for s in samples if is_multi(s.target)]
    if bad:
        s = bad[0]
        where = s.metadata.get("file"), s.metadata.get("line")
        at = f" ({where[0]}:{where[1]})" if where[0] is not None else ""
        raise ConfigError(
            f"task {task!r}, item {s.id!r}{at} has several correct answers ({target_letters(s.target)}) and "
            f"--variant {variant} scores one option letter ({len(bad)} such item{'s' if len(bad) != 1 else ''}); "
            "use --variant generate (or cot), which reads every stated letter"
        )


def generate_instruction(subject_name: str, n_options: int, multi: bool) -> str:
    """The ``generate`` variant's instruction: the single-answer text of ``generate@1`` byte for
    byte, or for an item with several answers the 多项选择题 wording (``generate-multi@1``)."""
    letters = "/".join(LETTERS[:n_options])
    if multi:
        return f"以下是关于{subject_name}的多项选择题（有两个或两个以上正确答案），请直接给出所有正确答案的选项（{letters}）。\n\n"
    return f"以下是关于{subject_name}的单项选择题，请直接给出正确答案的选项（{letters}）。\n\n"


def render_multi_generate(subject_name: str, shots: Sequence[Sample], question: str, choices: Sequence[str],
                          multi: bool) -> MCQPrompt:
    """The ``generate`` prompt when the item or a shot has several answers: the header names the
    item's type (单项/多项选择题) and shots show their full answers (``答案：ABD``). With
    ``multi=False`` and single-answer shots it is exactly :func:`chimed_eval.prompts.variants.render_generate`."""
    head = generate_instruction(subject_name, len(choices), multi)
    for s in shots:
        head += f"{question_block(s.input, s.choices)}答案：{target_letters(s.target)}\n\n"
    ctx = head + question_block(question, choices) + "答案："
    return MCQPrompt(prefix=head, context=ctx, continuations=())


def judge_multi(s: SampleScore, n: int, variant: str = "") -> SampleScore:
    """Judge a multiple-answer record: its generation by the one letter reader
    (:func:`chimed_eval.extract.reasoning.judge_generation`: every stated letter, exact set match); a
    record of option log-probabilities is refused (letter scoring picks one option)."""
    from chimed_eval.extract.reasoning import judge_generation

    if s.generation is None:
        raise ConfigError(f"item {s.id!r} has several correct answers ({s.gold}) but its record holds option "
                          "log-probabilities: letter scoring cannot choose several options; use --variant generate")
    return judge_generation(s, n, variant)




def multi_answer_figures(scores: Sequence[SampleScore], seed: int, protocol: str | None = None) -> Figures:
    """The figures of a task whose items may have several answers (percentages, 95% intervals
    named in ``ci_method``, :mod:`chimed_eval.metrics.stats`):

    * ``acc_exact_set`` / ``option_f1``: over all items (items averaging); exact set match is the
      official rule and equals accuracy on single-answer items.
    * ``acc_exact_set_macro`` / ``option_f1_macro``: the unweighted mean over subjects (CMB's
      official figure averages its sub-categories), when the items have two subjects or more.
    * ``acc_exact_set_multi`` / ``option_f1_multi``: over the items with several answers only.
    * ``extraction_failure_rate`` for generations. ``acc`` is never emitted (see the module doc).

    The breakdown maps each subject to ``n``, ``acc_exact_set`` and ``option_f1``.
    """
    from chimed_eval.metrics.multi_answer import as_option_set, exact_set_match, multi_answer_metrics, option_f1
    from chimed_eval.metrics.stats import figure_ci, macro_ci

    if not scores:
        return [], {}
    preds = [s.prediction for s in scores]
    golds = [s.gold for s in scores]
    metrics = multi_answer_metrics(preds, golds, seed, protocol)
    pairs = [(as_option_set(p), as_option_set(g)) for p, g in zip(preds, golds)]
    by_subject: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(scores):
        by_subject[s.subject or "all"].append(i)
    subjects: dict[str, dict[str, float | int]] = {}
    for name, idx in sorted(by_subject.items()):
        subjects[name] = {"n": len(idx),
                          "acc_exact_set": 100.0 * sum(exact_set_match(*pairs[i]) for i in idx) / len(idx),
                          "option_f1": 100.0 * sum(option_f1(*pairs[i]) for i in idx) / len(idx)}
    if len(by_subject) > 1:
        for name, fn in (("acc_exact_set", exact_set_match), ("option_f1", option_f1)):
            groups = {k: [fn(*pairs[i]) for i in idx] for k, idx in by_subject.items()}
            lo, hi, method = macro_ci(groups, seed)
            macro = sum(v[name] for v in subjects.values()) / len(subjects)
            metrics.append(Metric(f"{name}_macro", macro, 100.0 * lo, 100.0 * hi, len(scores), "subjects", protocol,
                                  None, method))
    multi = [i for i, g in enumerate(golds) if gold_is_multi(g)]
    if multi:
        for name, fn in (("acc_exact_set", exact_set_match), ("option_f1", option_f1)):
            values = [fn(*pairs[i]) for i in multi]
            lo, hi, method = figure_ci(values, seed, proportion=fn is exact_set_match)
            metrics.append(Metric(f"{name}_multi", 100.0 * sum(values) / len(values), 100.0 * lo, 100.0 * hi,
                                  len(multi), "items", protocol, None, method))
    if any(s.generation is not None for s in scores):
        failures = sum(1 for s in scores if s.extraction_failed)
        metrics.append(Metric("extraction_failure_rate", 100.0 * failures / len(scores), None, None, len(scores),
                              "items", protocol, None))
    return metrics, subjects
