"""Verdicts from a judge's text. A verdict that cannot be read for certain is invalid, never guessed.

Pointwise (:func:`parse_pointwise`). The text is normalised first: full-width digits, colon,
slash and equals sign become ASCII, and markdown emphasis (``*``, ``_``, backticks) is removed.
A *score statement* is a criterion name (the rubric's Chinese label, or any alias, English names
case-insensitive), optionally followed by a parenthesis (``Accuracy (准确性)``) or a closing quote
(JSON), then a separator (``:``, ``=``, ``|`` of a markdown table row, ``为``, or
``得分``/``评分``/``分数``/``score`` with an optional ``:``/``为``), then a number (or one of
一..五 followed by 分), optionally followed by ``分``, ``/5`` or ``out of 5``. The LAST statement
of each criterion counts. The verdict is invalid when a criterion has no statement, or when its
last statement is not a whole number from 1 to 5: out of range, a fraction (``4.5``; ``4.0`` is 4), a range (``4-5``, ``1～5分``),
or a score out of something other than 5 (``8/10``). Text that is not a statement is ignored,
so ``满分5分``, ``总分: 13`` and reasoning in prose never count; a score list in the reasoning is
overridden by the final lines because the last statement wins.

Pairwise (:func:`parse_pairwise`). Only the bracketed tokens ``[[A]]``, ``[[B]]``, ``[[C]]``,
``[[平局]]``, ``[[tie]]`` (ASCII brackets, inner spaces and case ignored) are read, never a letter
in prose; C, 平局 and tie mean a tie. The verdict is the last token; it is invalid when there is
none, or when the last line that holds a token holds two different ones (``[[A]]或[[B]]``, an
echoed instruction ``输出[[A]]、[[B]]或[[C]]``). Full-width ``［［A］］`` is never read: that is how
:mod:`.prompts` neutralises verdict tokens inside embedded answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Mapping

from chimed_eval.prompts.judge import DEFAULT_RUBRIC, Criterion, rubric_criteria

_FULLWIDTH = str.maketrans("０１２３４５６７８９：／＝．－～", "0123456789:/=.-~")
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}


@dataclass(frozen=True)
class PointwiseVerdict:
    """Scores by criterion name (``None`` when invalid); ``reason`` says why invalid ("" when valid)."""

    scores: Mapping[str, int] | None
    valid: bool
    reason: str

    @property
    def overall(self) -> float | None:
        """Mean of the criterion scores; ``None`` for an invalid verdict."""
        if not self.valid or not self.scores:
            return None
        return sum(self.scores.values()) / len(self.scores)


@dataclass(frozen=True)
class PairwiseVerdict:
    """``winner`` in position terms: ``"A"`` (first shown), ``"B"``, ``"tie"``; ``None`` when invalid."""

    winner: Literal["A", "B", "tie"] | None
    valid: bool
    reason: str


def normalise(text: str) -> str:
    """Full-width digits/punctuation to ASCII, markdown emphasis removed."""
    return re.sub(r"[*_`]", "", text.translate(_FULLWIDTH))


def _name_pattern(c: Criterion) -> str:
    names = sorted({c.zh, *c.aliases}, key=len, reverse=True)
    alts = []
    for n in names:
        esc = re.escape(n).replace(r"\ ", r"\s+")
        alts.append(rf"\b{esc}\b" if n.isascii() else esc)
    return "(?:" + "|".join(alts) + ")"


_SEP = r"(?:\s*[(（][^()（）\n]{0,30}[)）])?[\"'“”]?\s*(?:(?:得分|评分|分数|score)\s*(?:[:=]|为)?|[:=|]|为)\s*"
_NUMBER = r"(?P<num>\d+(?:\.\d+)?|[一二两三四五](?=\s*分))"
_TAIL = r"(?P<range>\s*(?:-|~|—|–|到|至)\s*\d)?(?P<denom>\s*(?:/|out\s+of)\s*(?P<den>\d+(?:\.\d+)?))?"


def _statement_re(c: Criterion) -> re.Pattern[str]:
    return re.compile(_name_pattern(c) + _SEP + _NUMBER + _TAIL, re.IGNORECASE)


def _read_statement(m: re.Match[str]) -> tuple[int | None, str]:
    """(score, "") for a valid statement, (None, why) otherwise."""
    raw = m.group("num")
    if m.group("range"):
        return None, f"a range {m.group(0).strip()!r}, not a score"
    if m.group("den") is not None and float(m.group("den")) != 5:
        return None, f"a score out of {m.group('den')}, not out of 5"
    value = float(_CN_DIGITS[raw]) if raw in _CN_DIGITS else float(raw)
    if value != int(value):
        return None, f"score {raw} is not a whole number"
    if not 1 <= value <= 5:
        return None, f"score {raw} is outside 1-5"
    return int(value), ""


def parse_pointwise(text: str, rubric: str = DEFAULT_RUBRIC) -> PointwiseVerdict:
    """The scores a judge gave, one per criterion of ``rubric`` (rules in the module docstring)."""
    criteria = rubric_criteria(rubric)
    norm = normalise(text)
    scores: dict[str, int] = {}
    problems: list[str] = []
    for c in criteria:
        last = None
        for last in _statement_re(c).finditer(norm):
            pass
        if last is None:
            problems.append(f"{c.name} ({c.zh}): no score")
            continue
        score, why = _read_statement(last)
        if score is None:
            problems.append(f"{c.name} ({c.zh}): {why}")
        else:
            scores[c.name] = score
    if problems:
        return PointwiseVerdict(None, False, "; ".join(problems))
    return PointwiseVerdict(scores, True, "")


_VERDICT = re.compile(r"\[\[\s*(A|B|C|平局|tie)\s*\]\]", re.IGNORECASE)
_WINNER = {"a": "A", "b": "B", "c": "tie", "平局": "tie", "tie": "tie"}


def parse_pairwise(text: str) -> PairwiseVerdict:
    """The winner a judge named with its last ``[[A]]``/``[[B]]``/``[[C]]`` token (rules in the module docstring)."""
    last_line = None
    for line in text.splitlines():
        if _VERDICT.search(line):
            last_line = line
    if last_line is None:
        return PairwiseVerdict(None, False, "no [[A]], [[B]] or [[C]] verdict")
    found = [_WINNER[m.group(1).lower()] for m in _VERDICT.finditer(last_line)]
    if len(set(found)) > 1:
        return PairwiseVerdict(None, False, f"contradictory verdicts on the last verdict line: {', '.join(found)}")
    return PairwiseVerdict(found[-1], True, "")  # type: ignore[arg-type]
