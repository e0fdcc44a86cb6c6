"""N-gram overlap between a training corpus and evaluation test items.

The rule is lm-evaluation-harness's decontamination rule (after GPT-3, Appendix C): a test item
is **contaminated** when any of its texts shares at least one n-gram (n = 13) with any document of
the training corpus. lm-eval normalises with its janitor (lowercase, strip punctuation, split on
whitespace), which finds no words in Chinese; here, rule :data:`TOKENISATION`:

1. the text is NFKC-normalised (full-width ``ＡＢＣ１２３`` becomes ``ABC123``) and lowercased;
2. every CJK ideograph, kana or hangul character is one token;
3. every run of other letters and digits (``[^\\W_]``) is one token (``covid``, ``2008``);
4. everything else -- punctuation, symbols, whitespace, ``_`` -- is dropped.

So ``患者2008年9月3日因“腹胀”`` is the tokens 患 者 2008 年 9 月 3 日 因 腹 胀. N-grams are n
consecutive tokens of one text (an item's) or one document (the corpus's), never across two.

An item's texts (:func:`sample_texts`): its input (the question, the record, the dialogue context),
each option, the question followed by its lettered options (``A. ...``: exam items are often
shorter than 13 characters, but not with their options), a text reference, each dialogue turn.
An item none of whose texts has n tokens is **too short to check**: counted apart, neither clean
nor contaminated. Each item's record also gives its **overlap ratio** (distinct n-grams seen in
the corpus / distinct n-grams of the item), the texts that matched, one matching n-gram (the one in
fewest corpus documents: the most specific; then the first seen) and where in the corpus it was
first seen.

How: the test side is small, the corpus may be large. Every test n-gram is hashed to 64 bits (each
token's value through splitmix64, then a polynomial over the n values, mod 2**64) into a sorted
array; the corpus is streamed document by document, hashed the same way in batches (numpy), and
looked up. A hash hit is confirmed by comparing the n tokens themselves, so a hash collision
never flags an item.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

TOKENISATION = "nfkc-lower/cjk-char/alnum-run@1"
DEFAULT_N = 13
BATCH_TOKENS = 1 << 20  # corpus tokens hashed per numpy batch
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


def tokens(text: str) -> list[str]:
    """The tokens of ``text`` (see the module doc)."""
    return _TOKEN.findall(normalise(text))


def render(toks: Sequence[str]) -> str:
    """Tokens as readable text: CJK tokens side by side, a space between two other tokens."""
    out: list[str] = []
    for i, t in enumerate(toks):
        if i and not _CJK_CHAR.match(t) and not _CJK_CHAR.match(toks[i - 1]):
            out.append(" ")
        out.append(t)
    return "".join(out)


def ngrams(text: str, n: int = DEFAULT_N) -> list[tuple[str, ...]]:
    """The n-grams of ``text`` in order (a text of fewer than n tokens has none)."""
    t = tokens(text)
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


def sample_texts(sample: Any) -> tuple[tuple[str, str], ...]:
    """The texts of a :class:`~chimed_eval.types.Sample` (see the module doc), by field name."""
    out = [("input", sample.input)]
    choices = [str(c) for c in sample.choices or ()]
    out += [(f"choice {chr(65 + i)}", c) for i, c in enumerate(choices)]
    if choices:
        out.append(("input+choices", sample.input + "\n" + "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(choices))))
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
                t = tokens(text)
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
        self._tokens: dict[int, list[str]] = {}

    def text_tokens(self, t: int) -> list[str]:
        if t not in self._tokens:
            self._tokens[t] = tokens(self.texts[t])
        return self._tokens[t]

    def __len__(self) -> int:
        return int(self.keys.size)


# --- the corpus side ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sighting:
    """A test n-gram found in the corpus: where first (``file:line`` or a record's origin), in
    which order among all first sightings, in how many corpus documents, and its hash."""

    location: str
    order: int
    documents: int
    hash: int


class CorpusScan:
    """The one stateful piece: feed documents with :meth:`add`, then read :meth:`sightings`
    (n-gram key -> :class:`Sighting`) and the totals :attr:`documents`, :attr:`tokens`,
    :attr:`ngrams`."""

    def __init__(self, index: TestIndex) -> None:
        self.index = index
        self.seen: dict[str, list] = {}  # key -> [location, order, documents, hash, last document]
        self.documents = self.tokens = self.ngrams = 0
        self._toks: list[str] = []
        self._docs: list[tuple[int, str, list[int], list[int | None]]] = []  # number, label, offsets, lines
        self._lengths: list[int] = []

    def add(self, label: str, segments: Iterable[tuple[int | None, str]]) -> None:
        """One document, as ``(line, text)`` segments (a paragraph's lines, a row's cells; line None
        when the label is the whole location). N-grams run across its segments."""
        offs, lines, count = [], [], 0
        for line, text in segments:
            t = tokens(text)
            if t:
                offs.append(count)
                lines.append(line)
                self._toks += t
                count += len(t)
        self.documents += 1
        if count == 0:
            return
        self._docs.append((self.documents, label, offs, lines))
        self._lengths.append(count)
        if len(self._toks) >= BATCH_TOKENS:
            self.flush()

    def flush(self) -> None:
        """Hash the documents added since the last flush and record the test n-grams among them."""
        import numpy as np

        toks, docs, lengths = self._toks, self._docs, self._lengths
        self._toks, self._docs, self._lengths = [], [], []
        if not toks:
            return
        n, keys = self.index.n, self.index.keys
        self.tokens += len(toks)
        hashes, starts = window_hashes(toks, lengths, n)
        self.ngrams += int(hashes.size)
        if not keys.size or not hashes.size:
            return
        at = np.minimum(np.searchsorted(keys, hashes), keys.size - 1)
        hit = np.nonzero(keys[at] == hashes)[0]
        doc_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        hit_docs = np.searchsorted(doc_starts, starts[hit], side="right") - 1
        for i, d in zip(hit.tolist(), hit_docs.tolist()):
            s = int(starts[i])
            k = key(toks[s:s + n])
            number, label, offs, lines = docs[d]
            got = self.seen.get(k)
            if got is not None:
                if got[4] != number:  # counted once per document
                    got[2] += 1
                    got[4] = number
                continue
            line = lines[int(np.searchsorted(offs, s - int(doc_starts[d]), side="right")) - 1]
            self.seen[k] = [label if line is None else f"{label}:{line}", len(self.seen), 1, int(hashes[i]), number]

    def sightings(self, max_documents: int | None = None) -> dict[str, Sighting]:
        """The test n-grams seen; with ``max_documents``, those in more documents are left out
        (GPT-3's filter for common phrases and boilerplate, with 10)."""
        self.flush()
        return {k: Sighting(*v[:4]) for k, v in self.seen.items() if max_documents is None or v[2] <= max_documents}


# --- the verdict per item ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemOverlap:
    """One test item's verdict: ``contaminated`` is None when it is too short to check."""

    task: str
    id: str
    contaminated: bool | None
    ngrams: int  # distinct n-grams of the item
    seen: int  # of those, found in the corpus
    matched_fields: tuple[str, ...] = ()
    example: str | None = None
    location: str | None = None
    documents: int = 0  # corpus documents that hold the example n-gram

    @property
    def overlap_ratio(self) -> float | None:
        return None if self.ngrams == 0 else self.seen / self.ngrams

    def as_dict(self) -> dict[str, Any]:
        r = self.overlap_ratio
        return {"id": self.id, "contaminated": self.contaminated, "too_short": self.contaminated is None,
                "ngrams": self.ngrams, "ngrams_seen": self.seen,
                "overlap_ratio": None if r is None else round(r, 6), "matched_fields": list(self.matched_fields),
                "example_ngram": self.example, "corpus_location": self.location,
                "example_documents": self.documents}


def item_overlaps(index: TestIndex, seen: dict[str, Sighting]) -> list[ItemOverlap]:
    """Every item's verdict from the corpus sightings (hash hits confirmed token by token)."""
    import numpy as np

    n = index.n
    hashes = np.asarray(sorted({s.hash for s in seen.values()}), np.uint64)
    candidate = np.isin(index.hashes, hashes) if hashes.size else np.zeros(index.hashes.size, bool)
    out = []
    for i, it in enumerate(index.items):
        lo, hi = int(index.item_bounds[i]), int(index.item_bounds[i + 1])
        distinct = int(index.distinct[i])
        if lo == hi:
            out.append(ItemOverlap(it.task, it.id, None, 0, 0))
            continue
        if not candidate[lo:hi].any():
            out.append(ItemOverlap(it.task, it.id, False, distinct, 0))
            continue
        found: dict[str, tuple[Sighting, str]] = {}
        fields: dict[str, None] = {}
        for w in (lo + np.nonzero(candidate[lo:hi])[0]).tolist():
            t, p = int(index.text_of[w]), int(index.pos[w])
            k = key(index.text_tokens(t)[p:p + n])
            if k in seen:
                found.setdefault(k, (seen[k], index.text_field[t]))
                fields[index.text_field[t]] = None
        if not found:
            out.append(ItemOverlap(it.task, it.id, False, distinct, 0))
            continue
        k, (first, _) = min(found.items(), key=lambda kv: (kv[1][0].documents, kv[1][0].order))
        out.append(ItemOverlap(it.task, it.id, True, distinct, len(found), tuple(fields),
                               render(k.split(_SEP)), first.location, first.documents))
    return out

