"""Multiple-choice answers and options in item files: letters, numbers or option text.

Answer parsing (:func:`parse_answer`), in order:
    1. A letter, optionally decorated: ``A``, ``a``, ``(A)``, ``（A）``, ``[A]``, ``A.``, ``A．``,
       ``A、``, ``A:``, ``A)``, full-width ``Ａ``; also ``A. <option text>`` when the text matches
       that option.  A letter past the item's last option (``E`` with 4 options, ``Z``) is an
       error, as are several letters (``AB``) here: :func:`parse_answers` reads those.
    2. An integer (``2``, ``"2"``, ``2.0``): an option *number*, read with ``index_base``
       (0: 0=A, 1: 1=A).  With ``index_base=None`` a number is an error asking for
       ``answer_index_base`` -- guessing would silently shift every answer by one.
       (:func:`infer_index_base` can decide the base for a whole file when the file's own
       numbers prove it.)
    3. Otherwise the exact text of one option (surrounding whitespace ignored).
    A letter or number that is also, verbatim, the text of a *different* option is ambiguous and
    an error.

Several answers (:func:`parse_answers`, used by the generic ``mcq`` task): what
:func:`parse_answer` reads, else several letters (``ABD``, ``(BCDE)``, ``A、B、D``, ``A,B,D``,
``A B D``, ``A，B和D``, full-width ``ＡＢＤ``), else several answers of the forms above
separated by ``|`` or ``;`` (option texts: ``原发病|出血量``), else a JSON list of them
(``["A", "D"]``, ``[0, 3]`` with ``answer_index_base``).

Options in one field (:func:`split_options`): labelled text, a list, a mapping, or with ``sep`` the
literal separator between options (CMExam's cells separate ``A 文本`` with the two characters
backslash and n).  Labelled text is split only on the labels A, B, C ... in sequence
and in option A's form (:func:`labelled_spans`): ``(C) James D.Watson.`` keeps its ``D.``; a
skipped or repeated label is an error, never relabelled.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from chimed_eval.core.errors import DataError
from chimed_eval.files.text import cell_text, is_empty

LETTERS = "ABCDEFGHIJ"  # at most 10 options, as in chimed_eval.prompts.variants
MAX_OPTIONS = len(LETTERS)


# --- answers -----------------------------------------------------------------------------------

_LETTER_ANSWER = re.compile(
    r"^\s*(?:\(\s*([A-Za-z])\s*\)|\[\s*([A-Za-z])\s*\]|([A-Za-z])(?![A-Za-z]))\s*[.:,、)]?\s*(.*?)\s*$", re.S
)
_INT = re.compile(r"^\s*[+-]?\d+(?:\.0*)?\s*$")


def _letters(n: int) -> str:
    return f"A-{LETTERS[n - 1]}" if 1 <= n <= MAX_OPTIONS else "A"


def parse_answer(
    value: Any,
    choices: Sequence[str],
    *,
    path: str | Path,
    line: int | None,
    field: str | None,
    index_base: int | None = None,
) -> int:
    """The 0-based index of the gold option (rules in the module docstring)."""
    n = len(choices)
    texts = [str(c).strip() for c in choices]

    def err(msg: str) -> DataError:
        return DataError(path, line, field, msg)

    numbers = f"a {index_base}-based option number ({index_base}-{n - 1 + index_base}), " if index_base is not None else ""
    expected = f"expected an option letter ({_letters(n)}), {numbers}or the exact text of one of the options"

    def by_text(s: str) -> int | None:
        hits = [i for i, t in enumerate(texts) if t == s]
        if len(hits) > 1:
            raise err(f"answer {s!r} matches the text of several options ({', '.join(LETTERS[i] for i in hits)})")
        return hits[0] if hits else None

    def unambiguous(idx: int, raw: str) -> int:
        # A bare capital letter, or a number with an explicit base, is what exam files mean by an
        # answer (CMMLU has items whose option A reads "B"): it wins over a text match.
        if (len(raw.strip()) == 1 and raw.strip() in LETTERS) or index_base is not None:
            return idx
        other = by_text(raw)
        if other is not None and other != idx:
            raise err(f"answer {raw!r} is ambiguous: it reads as option {LETTERS[idx]} but is also the text of option "
                      f"{LETTERS[other]}")
        return idx

    if isinstance(value, bool) or is_empty(value):
        raise err(f"empty answer; {expected}" if not isinstance(value, bool) else f"answer {value!r} is not valid; {expected}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not value.is_integer():
            raise err(f"answer {value!r} is not a whole number; {expected}")
        return _from_number(int(value), n, index_base, str(cell_text(value)), err, unambiguous)
    if not isinstance(value, str):
        raise err(f"answer {value!r} is {type(value).__name__}; {expected}")

    raw = value.strip()
    norm = unicodedata.normalize("NFKC", raw)  # full-width Ａ．（） -> A.()
    norm = norm.replace("【", "[").replace("】", "]")
    if _INT.match(norm):
        return _from_number(int(float(norm)), n, index_base, raw, err, unambiguous)
    m = _LETTER_ANSWER.match(norm)
    if m:
        letter = (m.group(1) or m.group(2) or m.group(3)).upper()
        rest = m.group(4)
        if not rest or norm.strip().upper() == letter:
            idx = LETTERS.find(letter)
            if idx < 0:
                raise err(f"answer {raw!r} is not valid; {expected}")
            if idx >= n:
                raise err(f"answer {raw!r} names option {letter}, but the item has only {n} options ({_letters(n)})")
            return unambiguous(idx, raw)
        # "A. <option text>": the letter must agree with the text
        idx = LETTERS.find(letter)
        if 0 <= idx < n and unicodedata.normalize("NFKC", texts[idx]) == rest:
            return idx
    if re.fullmatch(r"[A-Za-z]{2,%d}" % MAX_OPTIONS, norm) and len(set(norm.upper())) == len(norm) and by_text(raw) is None:
        if all(c in LETTERS[:n] for c in norm.upper()):
            raise err(f"answer {raw!r} has several letters; only single-answer items are supported")
    idx = by_text(raw)
    if idx is not None:
        return idx
    raise err(f"answer {raw!r} is not valid; {expected}")


def _from_number(k: int, n: int, base: int | None, raw: str, err, unambiguous) -> int:
    if base is None:
        raise err(f"numeric answer {raw!r} is ambiguous: set answer_index_base=0 (0 means A) or "
                  f"answer_index_base=1 (1 means A)")
    idx = k - base
    if not 0 <= idx < n:
        raise err(f"answer {raw!r} is out of range: with answer_index_base={base} and {n} options it must be "
                  f"{base}-{n - 1 + base}")
    return unambiguous(idx, raw)


# what may stand between the letters of several answers: A、B、D, A,B,D, A B D, A，B和D, A/B/D
_LETTER_SEPS = re.compile(r"[\s、,;/&]+|和|及|与")
_TEXT_SEPS = re.compile(r"[|;；]")


def parse_answers(
    value: Any,
    choices: Sequence[str],
    *,
    path: str | Path,
    line: int | None,
    field: str | None,
    index_base: int | None = None,
) -> int | tuple[int, ...]:
    """The gold option index, or for several answers their sorted indices (a tuple of two or more).

    Forms (module docstring): one answer as :func:`parse_answer` reads it; several letters; several
    answers separated by ``|`` or ``;``; a JSON list. A letter given twice or past the item's last
    option is an error naming the answer.
    """
    n = len(choices)
    if isinstance(value, (list, tuple)):
        got = [parse_answer(v, choices, path=path, line=line, field=field, index_base=index_base) for v in value]
        return _several(got, value, n, path, line, field)
    try:
        return parse_answer(value, choices, path=path, line=line, field=field, index_base=index_base)
    except DataError as single_error:
        if not isinstance(value, str):
            raise
        norm = unicodedata.normalize("NFKC", value).strip().replace("【", "[").replace("】", "]")
        inner = norm[1:-1] if norm[:1] + norm[-1:] in ("()", "[]") else norm
        letters = _LETTER_SEPS.sub("", inner)
        if re.fullmatch(r"[A-Za-z]{2,%d}" % (2 * MAX_OPTIONS), letters) and (letters.isupper() or letters.islower()):
            letters = letters.upper()
            bad = [c for c in letters if c not in LETTERS[:n]]
            if bad:
                raise DataError(path, line, field, f"answer {value!r} names option {bad[0]}, but the item has only "
                                                   f"{n} options ({_letters(n)})") from None
            return _several([LETTERS.index(c) for c in letters], value, n, path, line, field)
        parts = [s.strip() for s in _TEXT_SEPS.split(value) if s.strip()]
        if len(parts) >= 2:
            got = [parse_answer(s, choices, path=path, line=line, field=field, index_base=index_base) for s in parts]
            return _several(got, value, n, path, line, field)
        raise single_error from None


def _several(got: list[int], raw: Any, n: int, path: str | Path, line: int | None, field: str | None) -> int | tuple[int, ...]:
    if not got:
        raise DataError(path, line, field, f"answer {raw!r} names no option")
    if len(set(got)) != len(got):
        twice = next(LETTERS[i] for i in got if got.count(i) > 1)
        raise DataError(path, line, field, f"answer {raw!r} names option {twice} twice")
    s = sorted(got)
    return s[0] if len(s) == 1 else tuple(s)


def infer_index_base(values: Iterable[tuple[Any, int]]) -> int | None:
    """Decide 0- or 1-based numbering for a file from ``(answer, n_options)`` pairs.

    A number 0 proves 0-based, a number equal to the option count proves 1-based; returns None
    when the numbers prove neither (or both), so the caller must ask for ``answer_index_base``.
    """
    zero = one = False
    for v, n in values:
        if isinstance(v, bool):
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, str):
            s = unicodedata.normalize("NFKC", v).strip()
            if not _INT.match(s):
                continue
            v = int(float(s))
        if not isinstance(v, int):
            continue
        zero |= v == 0
        one |= v == n
    if zero == one:
        return None
    return 0 if zero else 1


# --- options -----------------------------------------------------------------------------------

_FW = "ＡＢＣＤＥＦＧＨＩＪ"
_L = f"[A-J{_FW}]"
# a label: "(A)"/"（A）" anywhere; "A." "A、" "A:" "A)" after start/whitespace/punctuation;
# a bare "A " only at the start of a line.
_LABEL = re.compile(
    rf"[(（]\s*(?P<p>{_L})\s*[)）]\s*"
    rf"|(?:^|(?<=[\s;；,，。]))(?P<s>{_L})\s*[.．、:：)）]\s*"
    rf"|(?:^|(?<=\n))(?P<b>{_L})[ \t\u3000]+",
)


def _label_index(ch: str) -> int:
    return LETTERS.find(unicodedata.normalize("NFKC", ch).upper())


def _strip_labels(items: list[str]) -> list[str]:
    """Drop "A. " style labels from list elements, but only when every element has the right one."""
    out = []
    for i, s in enumerate(items):
        m = _LABEL.match(s)
        if not m or _label_index(m.group("p") or m.group("s") or m.group("b")) != i:
            return items
        out.append(s[m.end():].strip())
    return out


def _label_style(m: re.Match[str]) -> str:
    """The form of a label: ``()`` for (A)/（A）, the punctuation after the letter (``.`` ``、``
    ``:`` ``)``, full-width folded), or ``bare`` for "A x" at the start of a line."""
    if m.group("p"):
        return "()"
    if m.group("s"):
        return unicodedata.normalize("NFKC", m.group(0).strip()[-1])
    return "bare"


def _at_line_start(text: str, pos: int) -> bool:
    before = text[:pos].rstrip(" \t\u3000")
    return not before or before.endswith(("\n", "\r"))


def labelled_spans(
    text: str, *, path: str | Path = "<options>", line: int | None = None, field: str | None = None
) -> list[tuple[str, int, int]] | None:
    """Where the options of a labelled text are: ``(label, start, end)`` per option, the option's
    text being ``text[start:end]``; None when ``text`` does not start with a label.

    Only labels of option A's form count (``(A)``: ``(B)``, ``(C)`` ...; ``A.``: ``B.`` ...), in
    sequence; when option B's label starts a line, only labels at the start of a line count.  So
    ``(C) James D.Watson.`` keeps its ``D.`` and ``(B) C.`` is option B reading ``C.``.  A skipped
    or repeated label (A, B, D, E; B-E; (A) (B) (B)) is a DataError: the options are never
    relabelled or merged.
    """

    def err(msg: str) -> DataError:
        return DataError(path, line, field, msg)

    cands = [(m, _label_index(m.group("p") or m.group("s") or m.group("b"))) for m in _LABEL.finditer(text)]
    first = cands[0] if cands and cands[0][0].start() == 0 else None
    if first is None:
        a = next((m for m, i in cands if i == 0), None)
        if a is not None and any(i == 1 and m.start() > a.start() and _label_style(m) == _label_style(a)
                                 for m, i in cands):
            raise err(f"text before option A: {text[: a.start()].strip()!r}")
        return None
    if first[1] != 0:
        ahead = [LETTERS[i] for m, i in cands if _label_style(m) == _label_style(first[0])]
        raise err(f"the options start with label {LETTERS[first[1]]}, not A (labels {', '.join(ahead)}): "
                  "label the options A, B, C, ... in order")
    style = _label_style(first[0])
    same = [(m, i) for m, i in cands[1:] if _label_style(m) == style]
    b = next((m for m, i in same if i == 1), None)
    if b is None:
        if same:
            raise err(f"option labels go {LETTERS[0]}, {', '.join(LETTERS[i] for _, i in same)}: option B is missing")
        return None
    by_line = _at_line_start(text, b.start())
    if by_line:
        same = [(m, i) for m, i in same if _at_line_start(text, m.start())]
    found = [first[0]]
    ahead: list[tuple[re.Match[str], int]] = []
    for m, i in same:
        if i == len(found):
            found.append(m)
        elif i < len(found):
            if by_line or style == "()":
                raise err(f"option label {m.group(0).strip()!r} appears again (after option "
                          f"{LETTERS[len(found) - 1]}): each option needs its own label")
            # inline "B. 维生素 A. 缺乏": a letter already used, read as text
        else:
            ahead.append((m, i))
    late = [(m, i) for m, i in ahead if i >= len(found)]
    if late:
        got = [LETTERS[k] for k in range(len(found))] + sorted({LETTERS[i] for _, i in late})
        raise err(f"option labels go {', '.join(got)}: option {LETTERS[len(found)]} is missing (a label skipped, "
                  "or a letter in an option's text read as a label); options are never relabelled")
    bounds = [m.start() for m in found[1:]] + [len(text)]
    return [(m.group(0).strip(), m.end(), e) for m, e in zip(found, bounds)]


def split_options(
    value: str | Sequence[Any] | Mapping[str, Any],
    *,
    path: str | Path = "<options>",
    line: int | None = None,
    field: str | None = None,
    sep: str | None = None,
) -> list[str]:
    """Split one field holding all the options into option texts, in letter order.

    Accepts a list (or a JSON list in a string), a mapping ``{"A": ..., "B": ...}`` (or a JSON
    object in a string), or text with labels: ``"(A) x\\n(B) y"``, ``"A. x\\nB. y"``,
    ``"A、x B、y"``, ``"A：x"``, ``"A x\\nB y"`` (one per line); unlabelled text with one option
    per line is split by lines.  Texts are kept as written except surrounding whitespace.

    ``sep`` (the ``mcq`` task's ``option_sep``): the literal text between options in a text field;
    each piece loses its label (``A 文本``, ``(A) 文本``, ``A. 文本``) when every piece has the right
    one, and is kept as written otherwise.
    """

    def err(msg: str) -> DataError:
        return DataError(path, line, field, msg)

    if sep and isinstance(value, str):
        pieces = [s.strip() for s in value.strip().split(sep)]
        while pieces and not pieces[-1]:
            pieces.pop()
        if len(pieces) < 2:
            raise err(f"option_sep {sep!r} does not occur in {value.strip()[:60]!r}: expected the options "
                      "separated by it")
        return _strip_labels(pieces)

    if isinstance(value, str):
        s = value.strip()
        if s[:1] in "[{":
            try:
                return split_options(json.loads(s), path=path, line=line, field=field)
            except json.JSONDecodeError:
                pass  # text that happens to start with a bracket
    if isinstance(value, Mapping):
        keyed = {}
        for k, v in value.items():
            ks = unicodedata.normalize("NFKC", str(k)).strip().strip("().").upper()
            if len(ks) != 1 or ks not in LETTERS:
                raise err(f"options key {k!r} is not an option letter A-J")
            if ks in keyed:
                raise err(f"option {ks} is given twice")
            keyed[ks] = v
        letters = sorted(keyed)
        if letters != list(LETTERS[: len(letters)]):
            missing = next(c for c in LETTERS if c not in keyed)
            raise err(f"options are keyed {', '.join(letters)}: option {missing} is missing")
        return [cell_text(keyed[c]) for c in letters]
    if isinstance(value, (list, tuple)):
        return _strip_labels([cell_text(v) for v in value])
    if not isinstance(value, str):
        raise err(f"options must be text, a list or a mapping, got {type(value).__name__}")

    text = value.strip()
    if not text:
        raise err("the options field is empty")
    spans = labelled_spans(text, path=path, line=line, field=field)
    if spans is not None:
        out = [text[a:b].strip() for _, a, b in spans]
        # "A：x；B：y": the separator between inline options is not part of the option
        return [o.rstrip(";；").rstrip() for o in out[:-1]] + out[-1:]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) >= 2:
        return lines
    hint = ("; the options are separated by the two characters backslash and n: set option_sep=\\n"
            if "\\n" in text else "")
    raise err(f"cannot split {text[:60]!r} into options: expected labels like 'A. x' / '(A) x' / 'A、x', "
              f"one option per line, or a JSON list{hint}")
