"""Each option of a user's multiple-choice item checked against the text it was read from
(``chimed-eval validate`` prints the problems; the fake oracle answers wrong on them).

The fake ``oracle`` answers the gold *index*, so on its own it scores 100 on a prompt whose options
were misread.  A user's ``mcq`` sample keeps the text its options were read from
(``metadata["source"]``: the options field, or the option columns); :func:`option_problems`
re-reads option *i* from that text on its own terms -- the label of option A's form for letter
*i* (``(D)`` when the field starts ``(A)``), then exactly the option's text, then the next
letter's label or the end -- so an option cut at a letter inside its text (``James D.Watson``) or
relabelled no longer matches.  The oracle (``chimed_eval.tasks.mcq.UserMCQTask``) answers wrong on an item
whose gold option fails this check.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Sequence

from chimed_eval.files.answers import _LABEL, LETTERS
from chimed_eval.files.text import cell_text
from chimed_eval.core.types import Sample


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", s))


def _label_ok(prefix: str, i: int) -> bool:
    """``prefix`` is empty or a label for letter ``i`` (``(D)``, ``D.``, ``D、``, ``D:``, ``D)``, ``D``)."""
    p, x = _squash(prefix), LETTERS[i]
    return p in ("", f"({x})", f"{x}.", f"{x}、", f"{x}:", f"{x})", x)


def _piece_ok(piece: Any, choice: str, i: int) -> bool:
    src, c = _squash(cell_text(piece)), _squash(choice)
    return src.endswith(c) and _label_ok(src[: len(src) - len(c)], i)


def _form(text: str) -> tuple[str, str] | None:
    """Option A's label form in a labelled text, as (before, after) the letter, squashed."""
    m = _LABEL.match(text.strip())
    if not m or unicodedata.normalize("NFKC", m.group("p") or m.group("s") or m.group("b")) != "A":
        return None
    if m.group("p"):
        return "(", ")"
    if m.group("s"):
        return "", unicodedata.normalize("NFKC", m.group(0).strip()[-1])
    return "", ""


def option_problems(sample: Sample, indices: Sequence[int] | None = None) -> list[str]:
    """For each option (or those in ``indices``) whose text is not what its source says, a line
    naming the option; [] when the sample has no recorded source or every option checks out."""
    source = (sample.metadata or {}).get("source")
    if not isinstance(source, dict):
        return []
    choices = list(sample.choices or ())
    n = len(choices)
    idx = list(range(n) if indices is None else indices)
    perm = ((sample.metadata or {}).get("shuffle") or {}).get("permutation")
    if perm and sorted(perm) == list(range(n)):  # --shuffle-choices: shown[j] is source option perm[j]
        shown = choices
        choices = [""] * n
        for j, k in enumerate(perm):
            choices[k] = shown[j]
        idx = [perm[i] for i in idx]
    bad = []
    cols = source.get("columns")
    value = source.get("value")
    if isinstance(value, str) and value.strip()[:1] in "[{" and "sep" not in source:
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    for i in idx:
        c = choices[i]
        if cols is not None:
            names = list(cols)
            ok = i < len(names) and cell_text(cols[names[i]]) == c
            where = f"column {names[i]!r}" if i < len(names) else "no column"
        elif isinstance(value, list):
            ok, where = i < len(value) and _piece_ok(value[i], c, i), f"list element {i + 1}"
        elif isinstance(value, dict):
            got = {unicodedata.normalize("NFKC", str(k)).strip().strip("().").upper(): v for k, v in value.items()}
            ok, where = _squash(cell_text(got.get(LETTERS[i], ""))) == _squash(c), f"key {LETTERS[i]}"
        elif "sep" in source:
            pieces = [p for p in str(value).strip().split(source["sep"])]
            ok, where = i < len(pieces) and _piece_ok(pieces[i], c, i), f"piece {i + 1} between {source['sep']!r}"
        else:
            text = str(value)
            form = _form(text)
            where = "the options text"
            if form is None:  # one option per line
                lines = [ln for ln in text.splitlines() if ln.strip()]
                ok = i < len(lines) and _squash(lines[i]) == _squash(c)
            else:
                b, a = form
                src, want = _squash(text), b + LETTERS[i] + a + _squash(c)
                nxt = b + LETTERS[i + 1] + a if i + 1 < n else None
                ok = False
                for m in re.finditer(re.escape(want), src):
                    rest = src[m.end():].lstrip(";；")
                    if (nxt is None and not rest) or (nxt is not None and rest.startswith(nxt)):
                        ok = True
                        break
        if not ok:
            bad.append(f"option {LETTERS[i]} {c!r} is not what {where} of field {source.get('field', '')!r} "
                       f"says for {LETTERS[i]}")
    return bad


def gold_mismatch(sample: Sample) -> list[str]:
    """:func:`option_problems` for the gold option(s) only."""
    t = sample.target
    if isinstance(t, int) and not isinstance(t, bool):
        gold: Sequence[int] = [t]
    elif isinstance(t, tuple) and all(isinstance(x, int) for x in t):
        gold = t
    else:
        return []
    return option_problems(sample, [g for g in gold if 0 <= g < len(sample.choices or ())])
