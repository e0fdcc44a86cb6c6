"""Scripted judges for the fake backend (``--judge-backend fake --judge judge:<behaviour>``).

A fake judge reads the texts back from its judge prompt (:func:`chimed_eval.prompts.judge.prompt_parts`;
a ChatML wrapping, as the fake backend's chat stand-in renders it, is taken off first) and answers
in the format the prompt asks for: pointwise one line ``<criterion>: N`` per criterion of the
prompt's rubric, pairwise a last line ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie). Lengths are
characters of the texts as the judge saw them. Behaviours:

* ``first`` / ``second``: pairwise, always the answer shown first (``[[A]]``) / second (``[[B]]``);
  pointwise, 3 on every criterion (position means nothing there).
* ``longer`` / ``shorter``: pairwise, the longer / shorter answer (equal lengths: ``[[C]]``);
  pointwise, ``1 + min(4, len // 10)`` / ``5 - min(4, len // 10)`` on every criterion.
* ``invalid``: text with no score and no verdict token (every verdict unreadable).
* ``score-N`` (N = 1..5): pointwise N on every criterion; pairwise ``[[C]]``.
* ``reference``: character-overlap F1 with the reference (multiset of characters; no reference:
  0); pointwise ``1 + round(4 * F1)`` on every criterion, pairwise the answer with the higher F1
  (equal: ``[[C]]``).

``--verdict logprobs`` (``next_token`` requests whose context is the ChatML-wrapped judge prompt
followed by an answer prefix of :mod:`chimed_eval.extract.verdicts`): the same behaviours, as
log-probabilities (:func:`fake_next_token`). Pointwise, with s the score above, candidate i (1..5)
gets log p = -1 - |i - s| (unnormalised: the five sum to less than 1, so the reader must
renormalise; argmax s, expectation pulled toward 3). Pairwise, the winner above gets -1 and the
other two candidates -3. ``invalid`` (nothing is invalid in this mode): every candidate -1, a
uniform distribution whose argmax tie goes to the first candidate (score 1, expectation 3;
``A``, so every pair flips). A context without a known prefix is scored as other requests are.

Rubric grading (a grader prompt of :mod:`chimed_eval.prompts.rubric`: one criterion of one
response): ``met`` / ``unmet``, every criterion met / not met; ``keyword``, met when at least
:data:`KEYWORD_SHARE` of the criterion's distinct Chinese character bigrams occur in the response
(a crude reader, wrong on negations: what grader validation is for); ``invalid``, no verdict;
``score-N``, met when N >= 3; the other behaviours, met when the response's character-overlap F1
with the criterion is at least 0.2. Generate mode answers ``判定：是/否``; logprobs mode gives the
verdict -0.2 and the other candidate -2 (``invalid``: both -1, a tie read as not met).

A prompt that is not a judge prompt (the fake judge used as a candidate model) gets a fixed answer
naming the behaviour, so a fake judge can also be the model it judges (self-preference tests).
Everything is a pure function of (behaviour, prompt): deterministic and cacheable.
"""

from __future__ import annotations

import re
from collections import Counter

from chimed_eval.core.errors import ConfigError

BEHAVIOURS = ("first", "second", "longer", "shorter", "invalid", "score-N", "reference", "met", "unmet", "keyword")
KEYWORD_SHARE = 0.3  # the share of a criterion's bigrams the ``keyword`` grader needs in the response
_CHATML_USER = re.compile(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", re.DOTALL)


def check_behaviour(behaviour: str) -> None:
    """ConfigError unless ``behaviour`` is one of :data:`BEHAVIOURS` (``score-N`` with N in 1..5)."""
    if behaviour in BEHAVIOURS and behaviour != "score-N":
        return
    m = re.fullmatch(r"score-(\d+)", behaviour)
    if m and 1 <= int(m.group(1)) <= 5:
        return
    raise ConfigError(f"unknown fake judge 'judge:{behaviour}'; choose from: judge:first, judge:second, judge:longer, "
                      "judge:shorter, judge:invalid, judge:score-N (N = 1..5), judge:reference; rubric graders: "
                      "judge:met, judge:unmet, judge:keyword")


def unwrap(context: str) -> str:
    """The judge prompt inside a request's context: the last ChatML user message, else the context."""
    found = _CHATML_USER.findall(context)
    return found[-1] if found else context


def char_f1(answer: str, reference: str | None) -> float:
    """F1 of the character multisets of ``answer`` and ``reference`` (0 when either is empty)."""
    if not answer or not reference:
        return 0.0
    common = sum((Counter(answer) & Counter(reference)).values())
    if common == 0:
        return 0.0
    p, r = common / len(answer), common / len(reference)
    return 2 * p * r / (p + r)


def _pointwise_score(behaviour: str, answer: str, reference: str | None) -> int | None:
    if behaviour in ("first", "second"):
        return 3
    if behaviour == "longer":
        return 1 + min(4, len(answer) // 10)
    if behaviour == "shorter":
        return 5 - min(4, len(answer) // 10)
    if behaviour == "reference":
        return 1 + round(4 * char_f1(answer, reference))
    if behaviour.startswith("score-"):
        return int(behaviour.split("-", 1)[1])
    return None


def _pairwise_winner(behaviour: str, a: str, b: str, reference: str | None) -> str:
    if behaviour == "first":
        return "A"
    if behaviour == "second":
        return "B"
    if behaviour in ("longer", "shorter"):
        if len(a) == len(b):
            return "C"
        return "A" if (len(a) > len(b)) == (behaviour == "longer") else "B"
    if behaviour == "reference":
        fa, fb = char_f1(a, reference), char_f1(b, reference)
        return "C" if fa == fb else ("A" if fa > fb else "B")
    return "C"  # score-N: both answers get N


def _bigrams(text: str) -> set[str]:
    cjk = [c if "\u4e00" <= c <= "\u9fff" else " " for c in text]
    return {a + b for a, b in zip(cjk, cjk[1:]) if a != " " and b != " "}


def rubric_met(behaviour: str, response: str, criterion: str) -> bool | None:
    """The fake grader's verdict on one criterion (module docstring); None: no verdict (``invalid``)."""
    if behaviour == "invalid":
        return None
    if behaviour in ("met", "unmet"):
        return behaviour == "met"
    if behaviour == "keyword":
        grams = _bigrams(criterion)
        return bool(grams) and len(grams & _bigrams(response)) >= KEYWORD_SHARE * len(grams)
    if behaviour.startswith("score-"):
        return int(behaviour.split("-", 1)[1]) >= 3
    return char_f1(response, criterion) >= 0.2


def fake_verdict(behaviour: str, context: str) -> str:
    """What the fake judge ``behaviour`` answers to a request whose context is ``context``."""
    from chimed_eval.prompts.judge import RUBRICS, prompt_parts
    from chimed_eval.prompts.rubric import grader_prompt_parts

    graded = grader_prompt_parts(unwrap(context))
    if graded is not None:
        met = rubric_met(behaviour, graded["response"], graded["criterion"])
        return "我无法判断。" if met is None else f"理由：fake grader ({behaviour})。\n判定：{'是' if met else '否'}"
    try:
        parts = prompt_parts(unwrap(context))
    except ValueError:
        return f"（fake judge:{behaviour} 的回答）建议您及时到医院就诊，遵医嘱治疗。"
    head = f"理由：fake judge ({behaviour})。\n"
    if behaviour == "invalid":
        return "我无法对这个回答作出判断。"
    ref = parts.get("reference")
    if parts["kind"] == "pairwise":
        return head + f"[[{_pairwise_winner(behaviour, parts['answer_a'], parts['answer_b'], ref)}]]"
    score = _pointwise_score(behaviour, parts["answer"], ref)
    return head + "\n".join(f"{c.zh}: {score}" for c in RUBRICS[parts["rubric"]])


_CHATML_ASSISTANT = "<|im_start|>assistant\n"


def fake_next_token(behaviour: str, context: str, continuations: tuple[str, ...]) -> tuple[float, ...] | None:
    """The fake judge's log-probabilities of ``continuations`` after ``context`` (module
    docstring); None when the context is not a judge prompt followed by a verdict prefix."""
    from chimed_eval.extract.verdicts import PAIRWISE_PREFIX, SCORES, WINNERS, criterion_prefix
    from chimed_eval.prompts.judge import RUBRICS, prompt_parts

    head, sep, prefix = context.rpartition(_CHATML_ASSISTANT)
    from chimed_eval.prompts.rubric import MET_TOKENS, VERDICT_PREFIX, grader_prompt_parts

    graded = grader_prompt_parts(unwrap(head + sep)) if sep else None
    if graded is not None and prefix == VERDICT_PREFIX and continuations == MET_TOKENS:
        met = rubric_met(behaviour, graded["response"], graded["criterion"])
        return (-1.0, -1.0) if met is None else ((-0.2, -2.0) if met else (-2.0, -0.2))
    try:
        parts = prompt_parts(unwrap(head + sep)) if sep else None
    except ValueError:
        parts = None
    if parts is None:
        return None
    if parts["kind"] == "pairwise" and prefix == PAIRWISE_PREFIX and continuations == WINNERS:
        if behaviour == "invalid":
            return (-1.0, -1.0, -1.0)
        win = _pairwise_winner(behaviour, parts["answer_a"], parts["answer_b"], parts.get("reference"))
        return tuple(-1.0 if c == win else -3.0 for c in WINNERS)
    if parts["kind"] == "pointwise" and continuations == SCORES and any(
            prefix == criterion_prefix(c.zh) for c in RUBRICS[parts["rubric"]]):
        s = _pointwise_score(behaviour, parts["answer"], parts.get("reference"))
        return tuple(-1.0 if s is None else -1.0 - abs(i - s) for i in range(1, 6))
    return None
