"""What ``chimed-eval validate --show`` prints under each prompt: the gold as it was read.

The oracle answers the gold as read, so it scores 100 on a misread file; only the eye catches a
gold letter taken from the wrong column, an entity cut to ``华法`` or a list reference turned into
its Python repr. So every shown item prints its gold in the form it will be scored:

- multiple choice: the answer letter(s) and the option text(s);
- NER: each gold entity's text as the offsets cut it (quoted, so a stray space or
  punctuation shows), its type and its ``[start, end)`` offsets;
- open QA and dialogue: the reference text(s), quoted;
- anything else: that the item carries no gold.
"""

from __future__ import annotations

from typing import Any

from chimed_eval.files.answers import LETTERS
from chimed_eval.core.types import Sample

MAX_REFERENCE_CHARS = 400
"""A longer reference is shown up to here, with its full length."""


def _letter(i: int) -> str:
    return LETTERS[i] if 0 <= i < len(LETTERS) else f"#{i}"


def _reference(text: str) -> str:
    if len(text) <= MAX_REFERENCE_CHARS:
        return repr(text)
    return f"{text[:MAX_REFERENCE_CHARS]!r}... ({len(text)} characters)"


def gold_lines(sample: Sample) -> list[str]:
    """The gold of ``sample`` as printed by ``validate --show`` (see the module docstring)."""
    if "spans" in (sample.metadata or {}):
        spans = sorted(sample.spans)
        lines = [f"gold: {len(spans)} entit{'y' if len(spans) == 1 else 'ies'}" + (":" if spans else "")]
        lines += [f"  {sample.input[s:e]!r} {t} [{s}, {e})" for s, e, t in spans]
        return lines
    t: Any = sample.target
    if sample.choices and isinstance(t, int) and not isinstance(t, bool):
        chosen = [t]
    elif sample.choices and isinstance(t, tuple) and t and all(isinstance(x, int) for x in t):
        chosen = list(t)
    else:
        chosen = []
    if chosen:
        texts = ", ".join(f"{_letter(i)} {sample.choices[i]!r}" if 0 <= i < len(sample.choices) else _letter(i)
                          for i in chosen)
        return [f"gold: {''.join(_letter(i) for i in chosen)}  ({texts})"]
    if isinstance(t, str):
        return [f"gold reference: {_reference(t)}"]
    if isinstance(t, (list, tuple)) and t and all(isinstance(x, str) for x in t):
        return [f"gold references ({len(t)}):"] + [f"  {_reference(x)}" for x in t]
    return ["gold: none (this item carries no gold answer)"]
