"""Answers to multiple-choice items read from free generations: several letters, chain of thought,
reasoning traces.

Pure functions: no model, no data. The one reader of option letters for every exam variant that
generates (``generate`` and ``cot``, single- and multiple-answer items): ``extract_final_answer``,
which says which rule of its cascade fired (``parse_letters`` is its multiple-answer reading), and
``split_reasoning`` for reasoning models' traces.

On a single-answer item several stated letters (``答案：AB``, ``A、B、C、D``) are no answer: the
rule ``several``, an extraction failure that is counted apart; a copied option block (``A.\nB.\nC.``)
is never an answer, whichever rule looks.

What counts as an option letter (after NFKC, so ``ＡＢＤ`` and ``：`` read as ``ABD`` and ``:``):
a whole Latin word made only of option letters, never a letter inside a word (``Let's``,
``ABDOMEN``, ``DNA``, ``CT``, ``HbA1c``), never a letter naming a medical term (``B超``, ``A型``,
``T细胞``, ``D-二聚体``, ``维生素C``). Chinese around a letter is fine (``选B``, ``B项``).
English prose: a bare ``I`` is always the pronoun ("I think"), even for items with nine options or
more, where only a stated "答案：I" / "The answer is I" counts; a bare ``A`` followed by a lowercase
word is the article ("A 45-year-old man") unless that word is a verb such as "is".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from chimed_eval.extract.text import normalize
from chimed_eval.prompts.variants import LETTERS  # at most 10 options
RULES = ("final", "final_text", "last_letter", "option_text", "several", "none")
"""Every rule ``extract_final_answer`` can report, in cascade order; ``several`` and ``none`` are
failures (several letters stated for a single-answer item; nothing found)."""


@dataclass(frozen=True)
class Extraction:
    """The options a generation chose and the cascade rule that found them (see ``RULES``).

    ``indices`` is None exactly when ``rule`` is ``"several"`` or ``"none"`` (an extraction failure,
    scored wrong).
    """

    indices: frozenset[int] | None
    rule: str

    @property
    def failed(self) -> bool:
        return self.indices is None

    @property
    def letters(self) -> str | None:
        """The chosen letters in order (``"ABD"``), for records; None on failure."""
        return None if self.indices is None else "".join(LETTERS[i] for i in sorted(self.indices))


# A Latin word: option letters are whole words, so nothing inside a longer word is ever read.
_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]+(?![A-Za-z0-9])")
# A letter directly followed by one of these names a term (B超, A型血, T细胞, D-二聚体), not an option.
_TERM_AFTER = re.compile(
    r"-[A-Za-z0-9\u4e00-\u9fff]|超|型|族|细胞|反应|淋巴|二聚体|受体|因子|链|蛋白|波|组|类|级|期|区|段|带|群|病毒|抗原|抗体"
)
_TERM_BEFORE = ("维生素", "凝血因子", "-")
# A letter said to be wrong is not the answer ("A项错误", "B不正确", "B都不对", "C is wrong").
_NEGATED = re.compile(
    r"[ \t]*(?:项|选项)?[ \t]*(?:都|均|也)?(?:错|不|排除|有误|干扰|(?:is[ \t]+)?(?:wrong|incorrect|not\b))",
    re.IGNORECASE,
)
# What may stand between the letters of one answer: ABD, A、B、D, A,B和D, A，B，D, A B D, B and D.
_SEP = re.compile(r"[ \t]*(?:[、,/&;]|以及|和|及|与|(?i:and))?[ \t]*")
# Words after a capital "A" that make it an option ("A is correct"); any other lowercase word makes
# it the English article ("A 45-year-old man", "A patient with ...").
_OPTION_VERBS = frozenset(
    "is was are were would will seems seem appears appear and or also can could should must might may fits "
    "fit remains matches match describes best correctly because since as which has does not then only".split()
)
# Acronyms that are also ascending letter runs; read as answers only when they are the whole text.
_ACRONYMS = frozenset({"ABC", "ACE"})

# (a) A final-answer statement. The last one in the text that is followed by an answer wins.
_MARKER = re.compile(
    r"最终答案|正确答案|参考答案|标准答案|答案|正确选项|正确的选项|正确的是|正确的有"
    r"|(?<![不未勿别若如可])选(?:择)?(?!项|题|择题)"  # 选B, 故选B, 所以选B, 应选择B; not 不选A, 选项, 选择题
    r"|(?<![A-Za-z])(?i:final[ \t]+answer|correct[ \t]+(?:answers?|options?|choices?)"
    r"|best[ \t]+(?:answers?|options?|choices?)|answer)(?![A-Za-z])"
    r"|\\boxed\{"
)
_CONNECT = re.compile(
    r"(?:\s|[:*\"'“”「」『』【\[(<《$]|\\text(?:bf)?\{|\\mathrm\{|\\boxed\{|应该是|应为|是|为|应选|选项|选"
    r"|(?i:options?|choices?|is|are|would[ \t]+be|should[ \t]+be|will[ \t]+be|be|letter)(?![A-Za-z]))*"
)
_WORD_NEXT = re.compile(r"[ \t]*[A-Za-z]")
_LOWER_NEXT = re.compile(r"[ \t]+([a-z]+)")
_SENTENCE_END = re.compile(r"[。！？!?\n]|\.(?:\s|$)")
_TEXT_STRIP = " \t\r\n。.；;，,：:"
# A line that labels an option ("E. 肺癌", "(B) Metformin", "C、卵巢"): in a run of two or more such
# lines the model is re-listing the options, not answering (see ``_without_listings``).
_OPTION_LINE = re.compile(r"[ \t]*[(（]?[A-J][ \t]*[.．、:：)）]")
_BARE_LABEL = re.compile(r"[ \t]*[(（]?[A-J][ \t]*")


@dataclass(frozen=True)
class _Tok:
    start: int
    end: int
    word: str


def _check_n(n_options: int) -> None:
    if not 1 <= n_options <= len(LETTERS):
        raise ValueError(f"n_options must be between 1 and {len(LETTERS)}, got {n_options}")


def _tokens(t: str) -> dict[int, _Tok]:
    """Latin words that may be option letters, keyed by start; words naming terms are left out."""
    out: dict[int, _Tok] = {}
    for m in _WORD.finditer(t):
        if _TERM_AFTER.match(t, m.end()) or t.endswith(_TERM_BEFORE, 0, m.start()):
            continue
        out[m.start()] = _Tok(m.start(), m.end(), m.group())
    return out


def _stated(tok: _Tok, t: str, n: int) -> frozenset[int] | None:
    """Indices of a word right after a final-answer marker: capitals (any order, no repeats) or one
    lowercase letter that ends the phrase ("答案：d"; not "the answer is a drug")."""
    w = tok.word
    if len(w) == 1 and w.islower():
        if _WORD_NEXT.match(t, tok.end):
            return None
        w = w.upper()
    if not w.isupper() or len(set(w)) != len(w) or any(c not in LETTERS[:n] for c in w):
        return None
    return frozenset(LETTERS.index(c) for c in w)


def _bare(tok: _Tok, t: str, n: int, multi: bool) -> frozenset[int] | None:
    """Indices of a word standing alone in prose, or None when it is not read as an answer.

    Only capitals count. ``I`` never counts here (the English pronoun "I think" is far likelier
    than option I; a stated "答案：I" still counts). ``A`` followed by a lowercase word is the
    English article unless that word is a verb like "is". A run of several letters ("ABD") counts
    only for multiple-answer items, only in ascending order, and never for an acronym (ACE, ABC)
    unless it is the whole text.
    """
    w = tok.word
    if not w.isupper() or any(c not in LETTERS[:n] for c in w) or _NEGATED.match(t, tok.end):
        return None
    if len(w) == 1:
        if w == "I":
            return None
        if w == "A":
            nxt = _LOWER_NEXT.match(t, tok.end)
            if nxt and nxt.group(1) not in _OPTION_VERBS:
                return None
        return frozenset({LETTERS.index(w)})
    ascending = all(a < b for a, b in zip(w, w[1:]))
    if not multi or not ascending or (w in _ACRONYMS and t.strip(_TEXT_STRIP + "()[]【】") != w):
        return None
    return frozenset(LETTERS.index(c) for c in w)


def _group(first: _Tok, toks: dict[int, _Tok], t: str, read, multi: bool = True) -> frozenset[int]:
    """The letters joined to ``first`` by separators (A、B和D); ``read`` says what a word means.
    For a single-answer item (``multi=False``) a group that runs into a letter said to be wrong
    ("答案：C，A和B都不对") is commentary after the answer: only ``first``'s letters count."""
    got = set(read(first) or ())
    tok = first
    while True:
        sep = _SEP.match(t, tok.end)
        nxt = toks.get(sep.end()) if sep and sep.end() > tok.end else None
        if nxt is not None and _NEGATED.match(t, nxt.end):
            return frozenset(got if multi else read(first) or ())
        more = None if nxt is None else read(nxt)
        if more is None:
            return frozenset(got)
        got |= more
        tok = nxt


def _one(got: frozenset[int], rule: str, multi: bool) -> Extraction:
    """``got`` under ``rule``; several letters for a single-answer item are the failure
    ``several`` (listing options is no single answer)."""
    return Extraction(got, rule) if multi or len(got) == 1 else Extraction(None, "several")


def _clean_options(option_texts: Sequence[str]) -> list[tuple[int, str]]:
    """Normalized option texts worth matching: two characters or more (a one-character option such
    as 是/否 would match almost any sentence)."""
    out = []
    for i, o in enumerate(option_texts):
        s = normalize(o).strip(_TEXT_STRIP).casefold()
        if len(s) >= 2:
            out.append((i, s))
    return out


def _final(t: str, toks: dict[int, _Tok], n: int, multi: bool, opts: list[tuple[int, str]]) -> Extraction | None:
    """Rule (a): the last final-answer marker followed by letters (``final``) or by an option's text
    (``final_text``). The whole letter group after the marker counts ("答案：A、B、D"; a letter
    said to be wrong leaves it: "答案：C，A项错误" reads C); for a single-answer item several
    letters are the failure ``several``."""
    best: Extraction | None = None
    folded = t.casefold()
    for m in _MARKER.finditer(t):
        pos = _CONNECT.match(t, m.end()).end()
        tok = toks.get(pos)
        if tok is not None and not _NEGATED.match(t, tok.end):
            read = lambda k: _stated(k, t, n)  # noqa: E731
            got = _group(tok, toks, t, read, multi)
            if got:
                best = _one(got, "final", multi)
                continue
        hits = [(len(s), i) for i, s in opts if folded.startswith(s, pos)]
        if hits:
            best = Extraction(frozenset({max(hits)[1]}), "final_text")
    return best


def _last_letter(t: str, toks: dict[int, _Tok], n: int, multi: bool) -> Extraction | None:
    """Rule (b): the last option letter standing alone, or rather its group: walk back to the
    group's first letter, then read the group forwards ("A、B、D"). For a single-answer item a
    group of several letters ("A、B、C、D") and a whole answer made of a run ("AB") are the
    failure ``several``; a run inside prose ("ABD 三项不符") is not read."""
    read = lambda k: _bare(k, t, n, multi)  # noqa: E731
    ordered = sorted(toks.values(), key=lambda k: k.start)
    for i in range(len(ordered) - 1, -1, -1):
        tok = ordered[i]
        got = read(tok)
        if not got:
            if not multi and len(ordered) == 1 and _bare(tok, t, n, True):  # the whole answer is a run: "AB"
                return Extraction(None, "several")
            continue
        j = i
        while j > 0:
            prev = ordered[j - 1]
            sep = _SEP.match(t, prev.end)
            if sep.end() != ordered[j].start or sep.end() == prev.end or not read(prev):
                break
            j -= 1
        return _one(_group(ordered[j], toks, t, read, multi), "last_letter", multi)
    return None


def _option_text(t: str, multi: bool, opts: list[tuple[int, str]]) -> Extraction | None:
    """Rule (c): single answer, the option whose text is mentioned last (ties: the longer text, so
    "卵巢癌" beats "卵巢"); multiple answers, every option named in the last sentence naming any."""
    folded = t.casefold()
    ends = {i: folded.rfind(s) + len(s) for i, s in opts if s in folded}
    if not ends:
        return None
    if not multi:
        best = max(ends, key=lambda i: (ends[i], len(dict(opts)[i])))
        return Extraction(frozenset({best}), "option_text")
    last = max(ends.values())
    cuts = [m.end() for m in _SENTENCE_END.finditer(folded) if m.end() < last]
    start = cuts[-1] if cuts else 0
    sentence = folded[start:]
    stop = _SENTENCE_END.search(sentence, last - start - 1)
    sentence = sentence[: stop.end()] if stop else sentence
    return Extraction(frozenset(i for i, s in opts if s in sentence), "option_text")


def _without_listings(t: str) -> str:
    """``t`` with every re-listed option block blanked: a run of two or more consecutive lines
    that each start with an option label (``A. …``, ``(B) …``, ``C、…``, the bare label ``E.``;
    blank lines do not end the run; a line holding only a letter continues it: the next label, cut
    by the token budget). Small models often copy the options after their reasoning; the last
    letter and the last option text of such a block (``E. 肺癌``) are not an answer. A single
    labelled line ("B. 卵巢") is still read as one."""
    lines = t.split("\n")
    labelled = [bool(_OPTION_LINE.match(ln)) for ln in lines]
    out = list(lines)
    i = 0
    while i < len(lines):
        if not labelled[i]:
            i += 1
            continue
        run, j = [i], i + 1
        while j < len(lines) and (labelled[j] or not lines[j].strip() or _BARE_LABEL.fullmatch(lines[j])):
            if lines[j].strip():  # a bare letter after a block is its next label, cut by the budget
                run.append(j)
            j += 1
        if len(run) >= 2:
            for k in run:
                out[k] = ""
        i = j
    return "\n".join(out)


def extract_final_answer(
    text: str, n_options: int, option_texts: Sequence[str] = (), multi: bool = False
) -> Extraction:
    """The answer of an exam generation (``generate`` and ``cot``), by a cascade that records its
    rule. Re-listed option blocks (``_without_listings``) are blanked first: no rule reads them.

    Call on the answer part only: strip a reasoning trace first with ``split_reasoning``.

    (a) ``final``: the LAST final-answer statement followed by option letters: 答案[是为：:],
        最终答案, 正确答案是/为, 故选, 所以选, 应选择, 正确的是, "the answer is", "Answer:",
        "final answer", "correct option is", ``\\boxed{B}``; Markdown, brackets and 选项/option
        may sit between ("答案：**（B）**"). ``final_text``: such a statement followed by an
        option's text instead ("答案：卵巢").
    (b) ``last_letter``: else the last option letter standing alone in the text (with its group),
        skipping letters said to be wrong ("A项错误"); see ``_bare`` for English "I" and "A".
    (c) ``option_text``: else the last-mentioned option text (see ``_option_text``).
    (d) ``none``: nothing found; ``indices`` is None.

    ``multi`` (a multiple-answer item) reads every letter of the group ("A、B和D"). A
    single-answer item reads the same group, and several letters there ("答案：AB", "A、B、C、D",
    a whole answer "AB") are the failure ``several`` (``indices`` None), never one of them.
    """
    _check_n(n_options)
    t = _without_listings(normalize(text or ""))  # a copied option block is no answer
    toks = _tokens(t)
    opts = _clean_options(option_texts[:n_options])
    return (
        _final(t, toks, n_options, multi, opts)
        or _last_letter(t, toks, n_options, multi)
        or _option_text(t, multi, opts)
        or Extraction(None, "none")
    )


def parse_letters(text: str, n_options: int) -> frozenset[int] | None:
    """Every option letter an answer states, as indices, or None when it states none.

    Reads ``ABD``, ``A、B、D``, ``A,B和D``, ``A，B，D``, ``A B D``, ``答案：ABD``, ``ＡＢＤ``,
    ``(BCDE)``; only the first ``n_options`` letters are valid. The last final-answer statement
    wins, else the last group of standalone letters (rules (a) and (b) of ``extract_final_answer``
    with ``multi=True``).
    """
    return extract_final_answer(text, n_options, (), multi=True).indices


def split_reasoning(text: str, start: str = "<think>", end: str = "</think>") -> tuple[str, str, bool]:
    """Split a generation into (trace, answer_text, truncated), all stripped.

    - ``end`` present: the trace is what precedes its last occurrence (less a leading ``start``),
      the answer what follows it. Models whose chat template opens the trace in the prompt emit
      only ``end``; that is handled the same way.
    - ``start`` present, ``end`` absent: the trace was cut by the token budget; the trace is what
      follows ``start``, the answer is what precedes it (normally empty), ``truncated`` is True.
    - Neither: no trace; the whole text is the answer.
    ``start=""`` means the trace always opens at the beginning (the prompt opened it), so a
    generation without ``end`` is all trace and truncated.
    """
    if not end:
        raise ValueError("split_reasoning: the end marker must not be empty")
    text = text or ""
    cut = text.rfind(end)
    if cut >= 0:
        before, answer = text[:cut], text[cut + len(end):]
        if start and start in before:
            before = before[before.index(start) + len(start):]
        return before.strip(), answer.strip(), False
    if not start:
        return text.strip(), "", True
    opened = text.find(start)
    if opened >= 0:
        return text[opened + len(start):].strip(), text[:opened].strip(), True
    return "", text.strip(), False
