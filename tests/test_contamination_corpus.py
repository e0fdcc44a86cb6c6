"""Corpus files for the n-gram check: every format's documents and locations, directories and
globs, the files' sha256 and size, encodings, and errors that name the file and line."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from chimed_eval.contamination.corpus import CorpusFile, FileStats, documents, read_all, resolve_corpus
from chimed_eval.core.errors import ConfigError


def _docs(path, fmt):
    st = FileStats()
    return [(label, list(segs)) for label, segs in documents(CorpusFile(path, fmt), st)], st


def test_jsonl_a_records_string_values_are_one_document_with_its_line(tmp_path):
    p = tmp_path / "c.jsonl"
    rows = [{"messages": [{"role": "user", "content": "问题一"}, {"role": "assistant", "content": "回答一"}]},
            {"prompt": "问", "chosen": "好", "rejected": "坏", "n": 3, "ok": True, "x": None},
            "一段纯文本", {"text": "文档", "meta": {"tags": ["甲", {"k": "乙"}]}}]
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:2]) + "\n\n"
                 + "\n".join(json.dumps(r, ensure_ascii=False) for r in rows[2:]) + "\n", encoding="utf-8")
    docs, st = _docs(p, "jsonl")
    assert [segs for _, segs in docs] == [
        [(1, "user"), (1, "问题一"), (1, "assistant"), (1, "回答一")], [(2, "问"), (2, "好"), (2, "坏")],
        [(4, "一段纯文本")], [(5, "文档"), (5, "甲"), (5, "乙")]]
    assert {label for label, _ in docs} == {str(p)}
    data = p.read_bytes()
    assert st.sha256 == hashlib.sha256(data).hexdigest() and st.bytes == len(data) and st.documents == 4


def test_a_test_item_split_across_prompt_and_completion_is_found(tmp_path):
    from chimed_eval.contamination.ngrams import TestIndex, TestItem, item_overlaps
    from chimed_eval.contamination.scan import CorpusScan

    question = "患者因腹胀发现腹部包块在我院腹科行手术探查术中见盆腹腔肿物"
    p = tmp_path / "sft.jsonl"
    p.write_text(json.dumps({"prompt": "请续写：" + question[:8], "completion": question[8:16] + "。"},
                            ensure_ascii=False) + "\n", encoding="utf-8")
    index = TestIndex([TestItem("t", "a", (("input", question),))])
    scan = CorpusScan(index)
    read_all([CorpusFile(p, "jsonl")], scan.add)
    o = item_overlaps(index, scan.sightings())[0]
    assert o.contaminated is True and o.example == question[:13] and o.location == f"{p}:1"


def test_json_file_documents_are_located_by_json_pointer(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps([{"q": "问题", "a/b": ["答案"]}], ensure_ascii=False), encoding="utf-8")
    docs, _ = _docs(p, "json")
    assert docs == [(f"{p}#/0", [(None, "问题"), (None, "答案")])]
    p.write_text(json.dumps({"q": "问题", "a": "答案"}, ensure_ascii=False), encoding="utf-8")
    assert _docs(p, "json")[0] == [(f"{p}#", [(None, "问题"), (None, "答案")])]


def test_text_paragraphs_are_documents_with_their_lines(tmp_path):
    p = tmp_path / "c.md"
    p.write_text("\ufeff第一段第一行\n第一段第二行\n\n  \n第二段\n", encoding="utf-8")
    docs, st = _docs(p, "text")
    assert docs == [(str(p), [(1, "第一段第一行\n"), (2, "第一段第二行\n")]), (str(p), [(5, "第二段\n")])]
    assert st.documents == 2


def test_csv_rows_with_a_multiline_cell_and_gb18030(tmp_path):
    p = tmp_path / "c.csv"
    p.write_bytes("title,answer\n头痛,\"多休息\n多喝水\"\n发热,退烧\n".encode("gb18030"))
    docs, st = _docs(p, "csv")
    assert st.encoding == "gb18030"
    assert docs == [(str(p), [(1, "title"), (1, "answer")]), (str(p), [(2, "头痛"), (2, "多休息\n多喝水")]),
                    (str(p), [(4, "发热"), (4, "退烧")])]
    t = tmp_path / "c.tsv"
    t.write_text("问\t答\n", encoding="utf-8")
    assert _docs(t, "tsv")[0] == [(str(t), [(1, "问"), (1, "答")])]


def test_bad_inputs_name_the_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "好"}\n{"text": "坏"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2: invalid JSON"):
        _docs(p, "jsonl")
    q = tmp_path / "bad.txt"
    q.write_bytes("第一行\n".encode() + "第二行".encode("gb18030") + b"\n")
    with pytest.raises(ConfigError, match=r"bad\.txt:2: not utf-8 text \(byte 0x"):
        _docs(q, "text")
    j = tmp_path / "bad.json"
    j.write_text('{\n "a": [1,\n}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.json:3: invalid JSON"):
        _docs(j, "json")
    c = tmp_path / "bad.csv"
    c.write_bytes(b"ok,\xff\xff\xff\n")  # neither UTF-8 nor GB18030
    with pytest.raises(ConfigError, match=r"bad\.csv:1: not utf-8 text"):
        _docs(c, "csv")


def test_documents_stream_before_a_later_bad_line(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"text": "第一条"}\n{"text": "第二条"}\nnot json\n', encoding="utf-8")
    it = documents(CorpusFile(p, "jsonl"), FileStats())
    assert next(it)[1] == [(1, "第一条")]  # read before line 3 is reached
    assert next(it)[1] == [(2, "第二条")]
    with pytest.raises(ConfigError, match="c.jsonl:3"):
        next(it)


def test_files_directories_and_globs(tmp_path):
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    (d / "a.jsonl").write_text('{"text": "一"}\n', encoding="utf-8")
    (d / "sub" / "b.TXT").write_text("二\n", encoding="utf-8")
    (d / "LICENSE").write_text("MIT\n", encoding="utf-8")
    (d / ".hidden.txt").write_text("三\n", encoding="utf-8")
    files, skipped = resolve_corpus([str(d)])
    assert [(f.path.name, f.format) for f in files] == [("a.jsonl", "jsonl"), ("b.TXT", "text")]
    assert skipped == [str(d / "LICENSE")]
    files, _ = resolve_corpus([str(d / "**" / "*.TXT"), str(d / "a.jsonl"), str(d)])  # no repeats
    assert [f.path.name for f in files] == ["b.TXT", "a.jsonl"]
    seen = []
    stats = read_all(files, lambda label, segs: seen.append(list(segs)[0][1].strip()))
    assert seen == ["二", "一"] and [s.documents for _, s in stats] == [1, 1]
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    with pytest.raises(ConfigError, match="convert parquet to JSONL"):
        resolve_corpus([str(tmp_path / "x.parquet")])
    with pytest.raises(ConfigError, match="not found"):
        resolve_corpus([str(tmp_path / "missing.jsonl")])
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"fifo\.jsonl: not a regular file \(a fifo"):
        resolve_corpus([str(fifo)])  # refused before anything opens it (opening would block)
    assert resolve_corpus([str(tmp_path / "*.jsonl"), str(d)])[1] == [f"{fifo} (not a regular file)",
                                                                      str(d / "LICENSE")]
    with pytest.raises(ConfigError, match="no file matches"):
        resolve_corpus([str(tmp_path / "*.nothing")])
    with pytest.raises(ConfigError, match="no corpus file there"):
        resolve_corpus([str(d / "LICENSE").replace("LICENSE", "LICENS*")])
