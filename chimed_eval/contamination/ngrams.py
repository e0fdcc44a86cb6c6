"""N-gram overlap between a training corpus and evaluation test items.

The rule is lm-evaluation-harness's decontamination rule (after GPT-3, Appendix C): a test item
is **contaminated** when one of its texts other than its options shares at least one n-gram
(n = 13) with a document of the training corpus; a match inside an option alone is reported
apart (**option-only**, see below). lm-eval normalises with its janitor (lowercase, strip punctuation, split on
whitespace), which finds no words in Chinese; here, rule :data:`TOKENISATION`:

1. the text is NFKC-normalised (full-width ``ＡＢＣ１２３`` becomes ``ABC123``) and lowercased;
2. every CJK ideograph, kana or hangul character is one token;
3. every run of other letters and digits (``[^\\W_]``) is one token (``covid``, ``2008``);
4. everything else -- punctuation, symbols, whitespace, ``_`` -- is dropped.

So ``患者2008年9月3日因“腹胀”`` is the tokens 患 者 2008 年 9 月 3 日 因 腹 胀. N-grams are n
consecutive tokens of one text (an item's) or one document (the corpus's), never across two.

An item's texts (:func:`sample_texts`): its input (the question, the record, the dialogue context),
each option on its own, a text reference, each dialogue turn. The question and its options are
never joined: "question + A. ... B. ..." made the letters tokens, so a shared option list alone
(``A. 高血压 B. 糖尿病 C. 冠心病 D. 肺炎``: 13 tokens) flagged two different questions. An item's
verdict (:attr:`ItemOverlap.match`): ``question`` when a text other than an option matched (the
item is contaminated), ``option-only`` when only options matched (a long option can be a common
phrase: reported, not counted as contaminated). An item none of whose texts other than options
has n tokens is **too short to check**: counted apart, neither clean nor contaminated (an
option-only match is still reported for it). Each item's record also gives its **overlap ratio** (distinct n-grams seen in
the corpus / distinct n-grams of the item), the texts that matched, one matching n-gram (the one in
fewest corpus documents: the most specific; then the first seen) and where in the corpus it was
first seen.

How: the test side is small, the corpus may be large. Every test n-gram is hashed to 64 bits (each
token's value through splitmix64, then a polynomial over the n values, mod 2**64) into a sorted
array; the corpus is streamed document by document, hashed the same way in batches (numpy), and
looked up (:mod:`.scan`, in bounded memory whatever a document's size). A hash hit is confirmed by comparing the n tokens themselves, so a hash collision
never flags an item.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

TOKENISATION = "nfkc-lower/cjk-char/alnum-run@1"
DEFAULT_N = 13
BATCH_TOKENS = 1 << 20  # corpus tokens hashed per numpy batch (a longer document is cut, n - 1 tokens carried)
PIECE_CHARS = 1 << 16  # a longer text is tokenised piece by piece (:func:`pieces`)
_SEP = "\x1f"  # joins an n-gram's tokens into its key (never a token character)

# CJK ideographs (and Ext. A-G, compatibility), kana, bopomofo, hangul, 々〆〇 and Hangzhou numerals
_CJK = ("\u1100-\u11ff\u3005-\u3007\u3021-\u3029\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31bf"
        "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\U00020000-\U0003134f")
# a CJK character that is a letter (not ・ or ゠), or a run of other letters and digits
_TOKEN = re.compile(f"(?=[^\\W_])[{_CJK}]|[^\\W_{_CJK}]+")
_CJK_CHAR = re.compile(f"[{_CJK}]")


def normalise(text: str) -> str:
    """NFKC, then lowercase."""
    return unicodedata.normalize("NFKC", text).lower()


def word_tokens(text: str) -> list[str]:
    """The tokens of ``text`` (see the module doc)."""
    return _TOKEN.findall(normalise(text))


def join_tokens(toks: Sequence[str]) -> str:
    """Tokens as readable text: CJK tokens side by side, a space between two other tokens."""
    out: list[str] = []
    for i, t in enumerate(toks):
        if i and not _CJK_CHAR.match(t) and not _CJK_CHAR.match(toks[i - 1]):
            out.append(" ")
        out.append(t)
    return "".join(out)


_SAFE_END = re.compile("[\\s\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def safe_cut(text: str, end: int, start: int = 0) -> int:
    """The largest cut ``start < c <= end`` after a whitespace character or a CJK ideograph: cutting
    there leaves every token of ``text`` (and its NFKC form) whole on one side. ``end`` when there is
    none (``end - start`` letters without a space or an ideograph: that one token then reads as two)."""
    for c in range(end, start, -1):
        if _SAFE_END.match(text, c - 1):
            return c
    return end


def pieces(text: str, size: int = PIECE_CHARS) -> Iterator[str]:
    """``text`` in pieces of at most ``size`` characters cut at :func:`safe_cut` points, so that
    the pieces' tokens are the tokens of ``text``: a long text is tokenised piece by piece."""
    start = 0
    while len(text) - start > size:
        cut = safe_cut(text, start + size, start)
        yield text[start:cut]
        start = cut
    yield text[start:]


def word_ngrams(text: str, n: int = DEFAULT_N) -> list[tuple[str, ...]]:
    """The n-grams of ``text`` in order (a text of fewer than n tokens has none)."""
    t = word_tokens(text)
    return [tuple(t[i:i + n]) for i in range(len(t) - n + 1)]


# --- hashing -----------------------------------------------------------------------------------------


def _value(tok: str) -> int:
    """A token as an integer: its code point for one character, else above the code points."""
    if len(tok) == 1:
        return ord(tok)
    b = tok.encode("utf-8")
    return 0x110000 + (zlib.crc32(b) << 16) + min(len(b), 0xFFFF)


def _values(toks: Sequence[str]) -> Any:
    """:func:`_value` of every token, as a uint64 array (code points read in bulk)."""
    import numpy as np

    lens = np.fromiter(map(len, toks), np.int64, len(toks))
    points = np.frombuffer("".join(toks).encode("utf-32-le", "surrogatepass"), np.uint32).astype(np.uint64)
    vals = points[np.cumsum(lens) - lens]
    multi = np.nonzero(lens > 1)[0]
    if multi.size:
        vals[multi] = np.fromiter((_value(toks[i]) for i in multi.tolist()), np.uint64, multi.size)
    return vals


def _mix(v: Any) -> Any:
    """splitmix64's finaliser, elementwise on a uint64 array."""
    import numpy as np

    z = v + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def window_hashes(toks: Sequence[str], lengths: Sequence[int], n: int) -> tuple[Any, Any]:
    """``toks`` is the concatenation of documents of the given token ``lengths``: the hash of every
    n-gram that lies inside one document, and its start (index into ``toks``), in order."""
    import numpy as np

    total = len(toks)
    if total < n:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    with np.errstate(over="ignore"):
        z = _mix(_values(toks))
        m = total - n + 1
        h = np.zeros(m, np.uint64)
        p = np.uint64(0x100000001B3)
        for j in range(n):
            h = h * p + z[j:j + m]
    lens = np.asarray(lengths, np.int64)
    ends = np.repeat(np.cumsum(lens), lens)[:m]  # the end of the document each start lies in
    starts = np.nonzero(np.arange(m) + n <= ends)[0]
    return h[starts], starts


def key(toks: Sequence[str]) -> str:
    return _SEP.join(toks)


# --- the test side -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestItem:
    """One evaluation test item: its task, id and texts as ``(field, text)``."""

    __test__ = False  # not a pytest class

    task: str
    id: str
    texts: tuple[tuple[str, str], ...]


OPTION_FIELD = "choice "  # the field name of an option's text: "choice A", "choice B", ...


def sample_texts(sample: Any) -> tuple[tuple[str, str], ...]:
    """The texts of a :class:`~chimed_eval.core.types.Sample` (see the module doc), by field name."""
    out = [("input", sample.input)]
    choices = [str(c) for c in sample.choices or ()]
    out += [(f"{OPTION_FIELD}{chr(65 + i)}", c) for i, c in enumerate(choices)]
    if isinstance(sample.target, str):
        out.append(("reference", sample.target))
    out += [(f"reference {k}", str(r)) for k, r in enumerate(sample.metadata.get("references") or (), 1) if k > 1]
    out += [(f"turn {i + 1} ({role})", text) for i, (role, text) in enumerate(sample.turns or ())]
    return tuple((f, t) for f, t in out if t)


class TestIndex:
    """Every n-gram of the test items, hashed: ``keys`` (sorted, unique) for the corpus lookup; per
    n-gram occurrence its hash, text and start, in item and text order."""

    __test__ = False  # not a pytest class

    def __init__(self, items: Sequence[TestItem], n: int = DEFAULT_N) -> None:
        import numpy as np

        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n, self.items = n, list(items)
        self.text_item: list[int] = []  # per text: its item
        self.text_field: list[str] = []
        self.texts: list[str] = []
        toks: list[str] = []
        lengths: list[int] = []
        offsets = [0]
        for i, it in enumerate(self.items):
            for field, text in it.texts:
                t = word_tokens(text)
                self.text_item.append(i)
                self.text_field.append(field)
                self.texts.append(text)
                toks += t
                lengths.append(len(t))
                offsets.append(offsets[-1] + len(t))
        self.hashes, starts = window_hashes(toks, lengths, n)
        self.text_of = np.searchsorted(np.asarray(offsets[1:], np.int64), starts, side="right")
        self.pos = starts - np.asarray(offsets, np.int64)[self.text_of]
        self.keys = np.unique(self.hashes)
        item_of = np.asarray(self.text_item, np.int64)[self.text_of] if len(self.text_of) else np.zeros(0, np.int64)
        self.item_bounds = np.searchsorted(item_of, np.arange(len(self.items) + 1))  # windows of item i
        order = np.lexsort((self.hashes, item_of))  # distinct n-grams per item, in one pass
        h, it = self.hashes[order], item_of[order]
        first = np.ones(h.size, bool)
        first[1:] = (h[1:] != h[:-1]) | (it[1:] != it[:-1])
        self.distinct = np.bincount(it[first], minlength=len(self.items))
        option = np.asarray([f.startswith(OPTION_FIELD) for f in self.text_field], bool)
        in_question = ~option[self.text_of] if len(self.text_of) else np.zeros(0, bool)
        self.question_windows = np.bincount(item_of[in_question], minlength=len(self.items))  # outside options
        self._tokens: dict[int, list[str]] = {}

    def text_tokens(self, t: int) -> list[str]:
        if t not in self._tokens:
            self._tokens[t] = word_tokens(self.texts[t])
        return self._tokens[t]

    def __len__(self) -> int:
        return int(self.keys.size)


# --- the verdict per item ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemOverlap:
    """One test item's verdict: ``contaminated`` (a text other than an option shares an n-gram) is
    None when no such text has n tokens (too short to check); ``option_only``: only options matched."""

    task: str
    id: str
    contaminated: bool | None
    ngrams: int  # distinct n-grams of the item (options included)
    seen: int  # of those, found in the corpus
    matched_fields: tuple[str, ...] = ()
    example: str | None = None
    location: str | None = None
    documents: int = 0  # corpus documents that hold the example n-gram
    option_only: bool = False

    @property
    def overlap_ratio(self) -> float | None:
        return None if self.ngrams == 0 else self.seen / self.ngrams

    @property
    def match(self) -> str | None:
        """What matched: ``question`` (a text other than an option), ``option-only``, or None."""
        return "question" if self.contaminated else "option-only" if self.option_only else None

    def as_dict(self) -> dict[str, Any]:
        r = self.overlap_ratio
        return {"id": self.id, "contaminated": self.contaminated, "too_short": self.contaminated is None,
                "match": self.match, "ngrams": self.ngrams, "ngrams_seen": self.seen,
                "overlap_ratio": None if r is None else round(r, 6), "matched_fields": list(self.matched_fields),
                "example_ngram": self.example, "corpus_location": self.location,
                "example_documents": self.documents}


def item_overlaps(index: TestIndex, seen: Mapping[str, Any]) -> list[ItemOverlap]:
    """Every item's verdict from the corpus sightings (:class:`~.scan.Sighting` by n-gram key; hash
    hits confirmed token by token). The example n-gram is one of a question match when there is one."""
    import numpy as np

    n = index.n
    hashes = np.asarray(sorted({s.hash for s in seen.values()}), np.uint64)
    candidate = np.isin(index.hashes, hashes) if hashes.size else np.zeros(index.hashes.size, bool)
    out = []
    for i, it in enumerate(index.items):
        lo, hi = int(index.item_bounds[i]), int(index.item_bounds[i + 1])
        distinct, checkable = int(index.distinct[i]), bool(index.question_windows[i])
        clean = ItemOverlap(it.task, it.id, False if checkable else None, distinct, 0)
        if lo == hi or not candidate[lo:hi].any():
            out.append(clean)
            continue
        found: dict[str, tuple[Any, bool]] = {}  # key -> (sighting, seen in a text other than an option)
        fields: dict[str, None] = {}
        for w in (lo + np.nonzero(candidate[lo:hi])[0]).tolist():
            t, p = int(index.text_of[w]), int(index.pos[w])
            k = key(index.text_tokens(t)[p:p + n])
            if k in seen:
                question = not index.text_field[t].startswith(OPTION_FIELD)
                found[k] = (seen[k], question or (k in found and found[k][1]))
                fields[index.text_field[t]] = None
        if not found:
            out.append(clean)
            continue
        hit = any(q for _, q in found.values())
        k, (first, _) = min(((k, v) for k, v in found.items() if v[1] == hit),
                            key=lambda kv: (kv[1][0].documents, kv[1][0].order))
        out.append(ItemOverlap(it.task, it.id, True if hit else clean.contaminated, distinct, len(found), tuple(fields),
                               join_tokens(k.split(_SEP)), first.location, first.documents, option_only=not hit))
    return out
