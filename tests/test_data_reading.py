"""Reading the user's data files: records are cut at newlines only (never at U+2028 or U+0085,
which JSON strings may hold raw), long CSV fields are read, BIO errors name the right line, a
declared encoding that would garble the file is refused, and NUL bytes in a field are refused.
Each error is a DataError naming the file, the line and (where one applies) the field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import DataError
from chimed_eval.files.spans import read_bio, read_span_jsonl
from chimed_eval.files.tabular import read_rows
from golden.regenerate import GOLDEN
from chimed_eval.tasks.mcq import McqSpec, make_mcq_task
from chimed_eval.tasks.ner import _read_types_file

# characters str.splitlines() cuts at, that are not newlines in a data file
ODD_BREAKS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


def _write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# --- JSONL: records are cut at newlines only -------------------------------------------------------


@pytest.mark.parametrize("ch", ODD_BREAKS[:3], ids=[f"U+{ord(c):04X}" for c in ODD_BREAKS[:3]])  # JSON allows these raw
def test_jsonl_keeps_unicode_line_separators_inside_a_record(tmp_path, ch):
    q = f"患者胸痛{ch}三小时"
    lines = [json.dumps({"question": q, "answer": "A"}, ensure_ascii=False),  # the character raw, as JSON allows
             "",
             json.dumps({"question": "二", "answer": "B"}, ensure_ascii=False),
             "{broken"]
    p = _write(tmp_path / "items.jsonl", "\n".join(lines) + "\n")
    assert ch in p.read_text(encoding="utf-8").split("\n")[0]
    with pytest.raises(DataError) as e:
        read_rows(p)
    assert e.value.line == 4, str(e.value)  # the broken record's line, not shifted by the separator
    _write(p, "\r\n".join(lines[:3]) + "\r\n")
    rows = read_rows(p)
    assert [(r.line, r.fields["question"]) for r in rows] == [(1, q), (3, "二")]


def test_span_jsonl_with_a_raw_line_separator_keeps_its_offsets(tmp_path):
    text = "服用阿司匹林\u2028后胃痛"
    rec = {"text": text, "entities": [{"start": 2, "end": 6, "type": "药物", "entity": "阿司匹林"},
                                      {"start": 8, "end": 10, "type": "症状", "entity": "胃痛"}]}
    p = _write(tmp_path / "ner.jsonl", json.dumps(rec, ensure_ascii=False) + "\n")
    [r] = read_span_jsonl(p)
    assert r.text == text and r.spans == ((2, 6, "药物"), (8, 10, "症状"))


def test_check_reads_per_item_prompt_hashes_from_samples_holding_a_line_separator(tmp_path, capsys):
    """A prompt with a raw U+2028 must not cut its samples record: that silently dropped the
    per-item comparison, and a changed prompt hidden behind an equal overall hash passed."""
    g = next(g for g in GOLDEN if g.name == "fake-exam")
    base = json.loads(g.baseline.read_text(encoding="utf-8"))
    task = dict(base["tasks"]["mcq"])
    items = task.pop("items")
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"tasks": {"mcq": task}}), encoding="utf-8")
    recs = []
    for k, (item_id, h) in enumerate(items):
        prompt = f"第{k}题\u2028请选择正确的答案"
        if item_id == "exam-7":
            h = hashlib.sha256(b"another prompt").hexdigest()
        recs.append(json.dumps({"id": item_id, "prompt": prompt, "prompt_hash": h}, ensure_ascii=False))
    (run / "samples" / "mcq.jsonl").write_text("\n".join(recs) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["check", str(run), "--baseline", str(g.baseline)]) == 3
    assert "prompt hash of 1/24 items (exam-7)" in capsys.readouterr().out


# --- CSV: a long field ---------------------------------------------------------------------------


def test_csv_field_over_128_kib_is_read(tmp_path):
    long = "病" * 70_000 + "x" * 100_000  # 170,000 characters, 310 KB: past csv's default 131,072 limit
    p = _write(tmp_path / "long.csv", f'question,A,B,answer\n"{long}",甲,乙,A\n短题,甲,乙,B\n')
    rows = read_rows(p)
    assert [r.line for r in rows] == [2, 3] and rows[0].fields["question"] == long


# --- BIO: the line of an error -------------------------------------------------------------------


@pytest.mark.parametrize("ch", ODD_BREAKS, ids=[f"U+{ord(c):04X}" for c in ODD_BREAKS])
def test_bio_error_names_its_line_past_blank_lines_and_odd_characters(tmp_path, ch):
    lines = ["患\tO", "者\tO", "",  # sentence 1
             f"阿{ch}\tB-药物", "司\tI-药物", "", "",  # sentence 2, a token holding the character; two blank lines
             "高\tB-疾病", "血\tI-疾病", "压\tI-症状"]  # line 10: I- of another type
    p = _write(tmp_path / "test.bio", "\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        read_bio(p)
    assert e.value.line == 10 and e.value.field == "tag" and f"{p}:10:" in str(e.value), str(e.value)
    _write(p, "\r\n".join(lines[:-1]) + "\r\n")
    recs = read_bio(p)
    assert [(r.text, r.line, r.spans) for r in recs] == [
        ("患者", 1, ()), (f"阿{ch}司", 4, ((0, 3, "药物"),)), ("高血", 8, ((0, 2, "疾病"),))]


def test_types_file_errors_are_data_errors_on_the_right_line(tmp_path):
    p = _write(tmp_path / "types.txt", "疾病\n药物\n".encode("utf-8") + "心脏\n".encode("gb18030"))
    with pytest.raises(DataError) as e:
        _read_types_file(p)
    assert e.value.line == 3 and "not valid UTF-8" in str(e.value)
    _write(p, "疾病  # 诊断\u2028名称\n药物\n疾病\n")
    with pytest.raises(DataError) as e:
        _read_types_file(p)
    assert e.value.line == 3 and "listed twice" in str(e.value)


# --- encodings -----------------------------------------------------------------------------------

CSV = "question,A,B,answer\nabc,x,y,A\n患者服用阿司匹林后出现什么,甲,乙,A\n"


@pytest.mark.parametrize("encoding", ["latin-1", "ISO-8859-1", "utf-16"])
def test_utf8_file_read_in_a_declared_encoding_that_garbles_it_is_refused(tmp_path, encoding):
    """latin-1 decodes any bytes (and utf-16 most): without this, prompts ran garbled."""
    p = _write(tmp_path / "exam.csv", CSV)
    with pytest.raises(DataError) as e:
        read_rows(p, encoding=encoding)
    msg = str(e.value)
    assert e.value.line == 3 and f"{p}:3:" in msg and "encoding=utf-8" in msg, msg
    assert "患者" in msg  # what the text is, next to what it would have been read as
    bio = _write(tmp_path / "test.bio", "阿\tB-药物\n司\tI-药物\n")
    with pytest.raises(DataError, match="encoding=utf-8"):
        read_bio(bio, encoding=encoding)


def test_declared_single_byte_encoding_still_reads_its_own_files(tmp_path):
    """The refusal above needs valid UTF-8 with non-ASCII bytes: an ASCII or a real latin-1 file passes."""
    p = _write(tmp_path / "ascii.csv", "question,A,B,answer\nabc,x,y,A\n")
    assert read_rows(p, encoding="latin-1")[0].fields["question"] == "abc"
    p = _write(tmp_path / "latin.csv", "question,A,B,answer\ncafé,x,y,A\n".encode("latin-1"))
    assert read_rows(p, encoding="latin-1")[0].fields["question"] == "café"
    with pytest.raises(DataError, match="encoding=utf-8"):  # and the same file read through the mcq task
        make_mcq_task(McqSpec(path=str(_write(tmp_path / "exam.csv", CSV)), encoding="latin-1")).load(tmp_path)


def test_strict_decoding_names_the_line_of_the_first_bad_byte_and_spots_utf8(tmp_path):
    p = _write(tmp_path / "exam.csv", CSV)
    with pytest.raises(DataError) as e:
        read_rows(p, encoding="ascii")
    assert e.value.line == 3 and "valid UTF-8" in str(e.value) and "encoding=utf-8" in str(e.value)


# --- NUL -----------------------------------------------------------------------------------------


def test_nul_in_a_csv_field_is_refused_with_line_and_field(tmp_path):
    p = _write(tmp_path / "exam.csv", "question,A,B,answer\n一,甲,乙,A\n二,丙\x00,丁,B\n")
    with pytest.raises(DataError) as e:
        read_rows(p)
    assert (e.value.line, e.value.field) == (3, "A") and "NUL" in str(e.value), str(e.value)


def test_nul_in_a_jsonl_field_is_refused_with_line_and_field(tmp_path):
    p = _write(tmp_path / "exam.jsonl", '{"question": "一", "options": ["a", "b"]}\n'
                                        '{"question": "二", "options": ["a", "b\\u0000"]}\n')
    with pytest.raises(DataError) as e:
        read_rows(p)
    assert (e.value.line, e.value.field) == (2, "options") and "NUL" in str(e.value), str(e.value)


def test_nul_in_a_bio_token_is_refused_with_line(tmp_path):
    p = _write(tmp_path / "test.bio", "患\tO\n\n阿\x00\tB-药物\n")
    with pytest.raises(DataError) as e:
        read_bio(p)
    assert (e.value.line, e.value.field) == (3, "token") and "NUL" in str(e.value), str(e.value)


def test_utf16_file_without_bom_read_as_utf8_is_refused(tmp_path):
    """ASCII in UTF-16 without a BOM is valid UTF-8 to a decoder, every other byte a NUL: say so,
    rather than report the ragged rows or NUL fields it parses into."""
    p = _write(tmp_path / "exam.csv", "question,A,B,answer\nabc,x,y,A\n".encode("utf-16-le"))
    with pytest.raises(DataError) as e:
        read_rows(p)
    assert e.value.line == 1 and "UTF-16" in str(e.value) and "encoding=utf-16-le" in str(e.value)
