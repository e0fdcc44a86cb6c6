"""Answer extraction from free generations.

Pure functions: no model, no data. A failed extraction returns None and is counted by the task,
never silently dropped. This is the paper's single-letter reader (golden baselines pin it); several
letters, chain-of-thought answers and reasoning traces are read in ``chimed_eval.extract_choice``.
"""

from __future__ import annotations

import re
import unicodedata

# "答案：B", "答案是 B", "answer: b", "选B", "正确答案为（C）" ... full- and half-width colons.
_STATED = re.compile(
    r"(?:答案|正确答案|正确选项|选项|answer|Answer|ANSWER|选择|应选|选)\s*(?:是|为|应为|应该是)?\s*[:：]?\s*[（(\[【]?\s*([A-Za-z])(?![A-Za-z])"
)


def normalize(text: str) -> str:
    """NFKC: full-width letters, colons, commas and brackets (Ａ, ：, ，, （) become ASCII, so every
    reader of answers (here and in ``chimed_eval.extract_choice``) matches one alphabet."""
    return unicodedata.normalize("NFKC", text)


def extract_choice(text: str, letters: str) -> str | None:
    """Return the last option letter the text states, or None.

    Order of evidence: the last explicit statement ("答案：C", "answer: c"); else the last
    standalone capital letter among ``letters`` (not part of a Latin word).
    """
    t = normalize(text)
    valid = set(letters)
    stated = [m.group(1).upper() for m in _STATED.finditer(t)]
    stated = [s for s in stated if s in valid]
    if stated:
        return stated[-1]
    bare = re.findall(r"(?<![A-Za-z])([A-J])(?![A-Za-z])", t)
    bare = [b for b in bare if b in valid]
    return bare[-1] if bare else None
