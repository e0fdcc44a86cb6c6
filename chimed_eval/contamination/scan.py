"""The corpus side of the n-gram check: documents are fed in, hashed in batches and looked up in
the test index (:class:`~.ngrams.TestIndex`); what is kept is where each test n-gram was first
seen and in how many documents.

Memory is bounded whatever the size of one document: the tokens of the documents fed are held
until ``chunk_tokens`` of them are buffered, then hashed and looked up; a document still being
fed is cut there and its last n - 1 tokens are carried into the next chunk, so an n-gram that
spans the cut is still found (and found once: every window starts in exactly one chunk). A long
segment is tokenised piece by piece (:func:`~.ngrams.pieces`), cut where no token is split. So a
long paragraph costs what one chunk costs: measured with ``/usr/bin/time -v`` on a 60 MB ``.txt``
(19 M tokens) checked against an exam, peak RSS 183 MB as one paragraph, 196 MB as one line and
180 MB in 11,674 paragraphs (2.56 GB as one paragraph before the chunks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from chimed_eval.contamination.ngrams import (BATCH_TOKENS, PIECE_CHARS, TestIndex, key, pieces, window_hashes,
                                             word_tokens)


@dataclass(frozen=True)
class Sighting:
    """A test n-gram found in the corpus: where first (``file:line`` or a record's origin), in
    which order among all first sightings, in how many corpus documents, and its hash."""

    location: str
    order: int
    documents: int
    hash: int


@dataclass
class _Part:
    """The part of one document in the buffer: its number and label, and per segment its first
    token (relative to the part) and line."""

    number: int
    label: str
    offsets: list[int]
    lines: list[int | None]
    length: int = 0


class CorpusScan:
    """The one stateful piece: feed documents with :meth:`add`, then read :meth:`sightings`
    (n-gram key -> :class:`Sighting`) and the totals :attr:`documents`, :attr:`tokens`,
    :attr:`ngrams`. ``chunk_tokens``: tokens buffered before a batch is hashed (see the module doc)."""

    def __init__(self, index: TestIndex, chunk_tokens: int = BATCH_TOKENS, piece_chars: int = PIECE_CHARS) -> None:
        if chunk_tokens < 1 or piece_chars < 1:
            raise ValueError(f"chunk_tokens and piece_chars must be >= 1, got {chunk_tokens}, {piece_chars}")
        self.index, self.chunk_tokens, self.piece_chars = index, chunk_tokens, piece_chars
        self.seen: dict[str, list] = {}  # key -> [location, order, documents, hash, last document]
        self.documents = self.tokens = self.ngrams = 0
        self.chunks = 0  # batches hashed (a document longer than a chunk takes several)
        self._toks: list[str] = []
        self._parts: list[_Part] = []
        self._carried = 0  # tokens at the head of the buffer already counted in the previous chunk

    def add(self, label: str, segments: Iterable[tuple[int | None, str]]) -> None:
        """One document, as ``(line, text)`` segments (a paragraph's lines, a row's cells; line None
        when the label is the whole location), read lazily. N-grams run across its segments."""
        self.documents += 1
        part: _Part | None = None
        for line, text in segments:
            for piece in pieces(text, self.piece_chars):
                t = word_tokens(piece)
                if not t:
                    continue
                if part is None:
                    part = _Part(self.documents, label, [], [])
                    self._parts.append(part)
                part.offsets.append(part.length)
                part.lines.append(line)
                part.length += len(t)
                self._toks += t
                if len(self._toks) >= self.chunk_tokens:
                    part = self._flush(carry=True)

    def flush(self) -> None:
        """Hash what is buffered and record the test n-grams in it."""
        self._flush(carry=False)

    def _flush(self, carry: bool) -> _Part | None:
        """Hash the buffer; with ``carry`` the last document's last n - 1 tokens stay buffered as the
        head of its continuation, which is returned."""
        import numpy as np

        toks, parts = self._toks, self._parts
        n, keys = self.index.n, self.index.keys
        if not toks:
            return None
        self.tokens += len(toks) - self._carried
        self.chunks += 1
        lengths = [p.length for p in parts]
        hashes, starts = window_hashes(toks, lengths, n)
        self.ngrams += int(hashes.size)
        if keys.size and hashes.size:
            at = np.minimum(np.searchsorted(keys, hashes), keys.size - 1)
            hit = np.nonzero(keys[at] == hashes)[0]
            part_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            hit_parts = np.searchsorted(part_starts, starts[hit], side="right") - 1
            for i, d in zip(hit.tolist(), hit_parts.tolist()):
                s = int(starts[i])
                self._record(key(toks[s:s + n]), parts[d], s - int(part_starts[d]), int(hashes[i]))
        keep = min(n - 1, parts[-1].length) if carry else 0
        self._toks, self._parts, self._carried = toks[len(toks) - keep:] if keep else [], [], keep
        if not keep:
            return None
        last = parts[-1]
        start = last.length - keep  # the carried tokens' start in the last part
        seg = int(np.searchsorted(last.offsets, start, side="right")) - 1
        head = _Part(last.number, last.label, [0] + [o - start for o in last.offsets[seg + 1:]], last.lines[seg:], keep)
        self._parts.append(head)
        return head

    def _record(self, k: str, part: _Part, pos: int, h: int) -> None:
        """A test n-gram seen at token ``pos`` of ``part``: a first sighting, or one more document."""
        import bisect

        got = self.seen.get(k)
        if got is not None:
            if got[4] != part.number:  # counted once per document
                got[2] += 1
                got[4] = part.number
            return
        line = part.lines[bisect.bisect_right(part.offsets, pos) - 1]
        self.seen[k] = [part.label if line is None else f"{part.label}:{line}", len(self.seen), 1, h, part.number]

    def sightings(self, max_documents: int | None = None) -> dict[str, Sighting]:
        """The test n-grams seen; with ``max_documents``, those in more documents are left out
        (GPT-3's filter for common phrases and boilerplate, with 10)."""
        self.flush()
        return {k: Sighting(*v[:4]) for k, v in self.seen.items() if max_documents is None or v[2] <= max_documents}
