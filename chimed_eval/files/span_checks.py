"""Catch a wrong end convention in span files whose entities carry no mention string.

Without an ``entity`` string to compare, an inclusive end read as exclusive cuts the last
character off every entity (``华法林`` -> ``华法``) and an exclusive end read as inclusive adds the
next one (``华法林后``, ``华法林，``); both read without an error, and the oracle, which answers the
spans as read, still scores 100. The text itself tells: entities stop at word boundaries, and
punctuation, whitespace and the end of the text are the boundaries one can see without a
dictionary. So, over the spans of a file:

- *cut short*: far more spans stop **one character before** such a boundary than right at it
  (CCKS-2019 read right: 40 % at, 17 % one before; with its ends cut by one: 2 % at, 48 % before);
- *one too long*: many spans **end on** punctuation or whitespace (CCKS-2019: 1.6 %; one too
  long: 40 %);
- *shifted*: many spans **start on** punctuation or whitespace (CCKS-2019: 1.9 %).

:func:`end_convention_problem` returns the one-paragraph evidence (rates, and examples with
their line and text as read) when a signal is clear, else None; the reader raises it as an
error naming the fix (``end_inclusive=true|false``) and the way out for data that really is
like that (``check_ends=false``). Spans whose record gives a mention string are not counted:
the mention check has already settled their convention.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

MIN_SPANS = 20
"""Fewer countable spans than this decide nothing. Over CCKS-2019 cut into files of 20+ spans,
the thresholds below flag 0.5 % of the files read right and 92 % (cut short) / 77 % (one too
long) of those read wrong; over 50+ spans none read right and 96 % / 82 % read wrong."""

SHORT_FACTOR = 5.0
"""Cut short: spans one before a boundary outnumber those at one by this factor (and are >= 25 %)."""

EDGE_RATE = 0.3
"""One too long / shifted: at least this share of spans end (start) on punctuation or whitespace."""


def is_boundary(ch: str) -> bool:
    """Whitespace, punctuation, separators and symbols: a character no entity word continues with."""
    return ch.isspace() or unicodedata.category(ch)[0] in "PZS"


@dataclass
class _Tally:
    """Spans counted for one signal, with the first few as examples (line, text as read, next char)."""

    count: int = 0
    examples: list[tuple[int, str, str]] = field(default_factory=list)

    def add(self, line: int, text: str, nxt: str) -> None:
        self.count += 1
        if len(self.examples) < 4:
            self.examples.append((line, text, nxt))

    def show(self) -> str:
        return ", ".join(f"line {ln} {t!r}" + (f" (then {n!r})" if n else "") for ln, t, n in self.examples)


@dataclass
class EndSignals:
    """Counts over the spans of one file (see the module docstring)."""

    spans: int = 0
    at: _Tally = field(default_factory=_Tally)
    one_before: _Tally = field(default_factory=_Tally)
    ends_on: _Tally = field(default_factory=_Tally)
    starts_on: _Tally = field(default_factory=_Tally)

    def add(self, line: int, text: str, start: int, end: int) -> None:
        """Count the span ``text[start:end]`` (exclusive end) found on ``line``."""
        self.spans += 1
        mention, nxt = text[start:end], text[end:end + 1]
        if end == len(text) or is_boundary(text[end]):
            self.at.add(line, mention, nxt)
        elif end + 1 == len(text) or is_boundary(text[end + 1]):
            self.one_before.add(line, mention, nxt)
        if is_boundary(text[end - 1]):
            self.ends_on.add(line, mention, "")
        if is_boundary(text[start]):
            self.starts_on.add(line, mention, "")


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.0f} %"


def end_convention_problem(sig: EndSignals, end_inclusive: bool) -> tuple[int, str] | None:
    """(the line of the first example, the evidence) when the spans look read with the wrong
    convention, else None (see the module docstring for the signals and their thresholds)."""
    n = sig.spans
    if n < MIN_SPANS:
        return None
    if sig.ends_on.count >= EDGE_RATE * n:
        fix = ("if each end is one past the entity's last character, pass end_inclusive=false (the default)"
               if end_inclusive else "check the offsets")
        why = (f"{_pct(sig.ends_on.count, n)} of {n} entity spans end on punctuation or whitespace, e.g. "
               f"{sig.ends_on.show()}: the ends look one character too far; {fix}")
        return sig.ends_on.examples[0][0], why
    if sig.one_before.count >= max(SHORT_FACTOR * sig.at.count, 0.25 * n):
        fix = ("check the offsets" if end_inclusive else
               "if each end is the offset of the entity's last character, pass end_inclusive=true")
        why = (f"the entity spans look one character short: {_pct(sig.one_before.count, n)} of {n} spans stop "
               f"one character before punctuation, whitespace or the end of the text, only "
               f"{_pct(sig.at.count, n)} right at it (spans read right stop at such a boundary far more often), "
               f"e.g. {sig.one_before.show()}; {fix}")
        return sig.one_before.examples[0][0], why
    if sig.starts_on.count >= EDGE_RATE * n:
        why = (f"{_pct(sig.starts_on.count, n)} of {n} entity spans start on punctuation or whitespace, e.g. "
               f"{sig.starts_on.show()}: the offsets look shifted (counted from 1 instead of 0?)")
        return sig.starts_on.examples[0][0], why
    return None
