"""The corpus scan in bounded memory: a document longer than a chunk is hashed chunk by chunk, its
last n - 1 tokens carried over, with the verdicts, first locations, document counts and totals of
one whole pass; long texts are tokenised in pieces cut where no token splits; a text file's long
lines and paragraphs are read in pieces and never held whole."""

from __future__ import annotations

import random

import pytest

from chimed_eval.contamination import corpus as corpus_mod
from chimed_eval.contamination.corpus import CorpusFile, FileStats, documents, read_all
from chimed_eval.contamination.ngrams import TestIndex, TestItem, item_overlaps, pieces, word_tokens
from chimed_eval.contamination.scan import CorpusScan

CJK = "患者腹胀发现部包块在我院科行手术探查中见盆肿物心肌梗死急性期血压糖尿病冠脉"


def _items_and_document(seed: int = 7) -> tuple[list[TestItem], list[tuple[int, str]]]:
    """20 test items, and one long document (a paragraph of 60 lines) holding copies of 13-token
    stretches of half of them, some split over two lines, one twice, among Latin words."""
    rng = random.Random(seed)
    items = [TestItem("t", f"i{k}", (("input", "".join(rng.choice(CJK) for _ in range(30))),)) for k in range(20)]
    lines = []
    for ln in range(60):
        words = [rng.choice(["covid", "hba1c", "2008", "mg"]) if rng.random() < 0.2 else rng.choice(CJK)
                 for _ in range(rng.randint(3, 25))]
        if ln % 6 == 0:
            text = items[ln // 6].texts[0][1]
            start = rng.randint(0, 17)
            words.insert(rng.randint(0, len(words)), text[start:start + 13])
        lines.append((ln + 1, " ".join(words) if ln % 2 else "".join(words)))
    split = items[10].texts[0][1][:13]  # an n-gram over two lines: a paragraph's lines are one document
    lines[30] = (31, lines[30][1] + split[:6])
    lines[31] = (32, split[6:] + lines[31][1])
    lines[50] = (51, lines[50][1] + items[0].texts[0][1][:13])  # item 0's stretch seen again, same document
    return items, lines


def _scan(items, docs, **kw):
    index = TestIndex(items)
    scan = CorpusScan(index, **kw)
    for label, segs in docs:
        scan.add(label, iter(segs))
    seen = scan.sightings()
    return [o.as_dict() for o in item_overlaps(index, seen)], seen, scan


@pytest.mark.parametrize("chunk", [1, 5, 12, 13, 14, 40, 97])
def test_a_document_longer_than_a_chunk_gives_the_flags_of_one_whole_pass(chunk):
    items, lines = _items_and_document()
    docs = [("pre.txt", [(1, "无关")]), ("big.txt", lines), ("post.txt", [(2, items[3].texts[0][1])])]
    whole, whole_seen, whole_scan = _scan(items, docs)  # the default chunk holds everything
    assert whole_scan.chunks == 1
    got, seen, scan = _scan(items, docs, chunk_tokens=chunk)
    assert scan.chunks > 5  # the long document was cut
    assert got == whole and seen == whole_seen
    assert (scan.tokens, scan.ngrams, scan.documents) == (whole_scan.tokens, whole_scan.ngrams, 3)
    flagged = {r["id"] for r in got if r["contaminated"]}
    assert {"i0", "i3", "i10"} <= flagged and len(flagged) >= 8
    assert next(r for r in got if r["id"] == "i10")["corpus_location"] == "big.txt:31"  # where the split n-gram starts
    assert next(r for r in got if r["id"] == "i0")["example_documents"] == 1  # twice in one document: one


def test_long_texts_are_tokenised_in_pieces_with_the_same_tokens():
    rng = random.Random(3)
    text = "".join(rng.choice([*CJK, " covid ", " hba1c ", "，", " 2008\n", " ＡＢＣ "]) for _ in range(3000))
    for size in (8, 9, 13, 50, 701):
        parts = list(pieces(text, size))
        assert "".join(parts) == text and max(map(len, parts)) <= size
        assert [t for p in parts for t in word_tokens(p)] == word_tokens(text)


def test_a_text_files_long_lines_and_paragraphs_are_read_in_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_mod, "PIECE_BYTES", 64)
    items, lines = _items_and_document()
    body = "".join(t + "\n" for _, t in lines)
    p = tmp_path / "big.txt"
    p.write_text("\ufeff前言\n\n" + body.replace("\n", "", 20) + "   \n\n尾声\n", encoding="utf-8")  # 20 lines joined
    st = FileStats()
    docs = [(label, list(segs)) for label, segs in documents(CorpusFile(p, "text"), st)]
    assert docs[0] == (str(p), [(1, "前言\n")]) and docs[2] == (str(p), [(len(lines) - 20 + 5, "尾声\n")])
    assert max(len(t.encode()) for _, segs in docs for _, t in segs) <= 64 + 3  # a piece, never a whole line
    assert "".join(t for _, t in docs[1][1]) == body.replace("\n", "", 20)  # a line of spaces ends it
    assert [t for _, t in docs[1][1] for t in word_tokens(t)] == word_tokens(body.replace("\n", "", 20))
    assert st.documents == 3 and st.bytes == p.stat().st_size
    # read in pieces, the same verdicts as the paragraph given whole
    scan_pieces = CorpusScan(TestIndex(items), chunk_tokens=50)
    read_all([CorpusFile(p, "text")], scan_pieces.add)
    whole = [("x", [(1, "前言")]), ("x", [(3, body.replace("\n", "", 20))]), ("x", [(1, "尾声")])]
    got = [(o["id"], o["contaminated"], o["ngrams_seen"]) for o in _scan(items, whole)[0]]
    assert [(o.id, o.contaminated, o.seen) for o in item_overlaps(scan_pieces.index, scan_pieces.sightings())] == got
