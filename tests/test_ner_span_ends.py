"""Span files without mention strings: a wrong end convention is caught (issue 22, item 20).

Read with the wrong convention, ``华法林`` becomes ``华法`` (inclusive ends read as exclusive) or
``华法林，`` (exclusive ends read as inclusive) without an error, and the oracle still scores 100.
The files here are written in both conventions; each must read right with the right setting and
stop, naming the file, the line and the spans, with the wrong one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.core.errors import DataError
from chimed_eval.files.spans import SpanFields, read_span_file

DRUGS = ["华法林", "阿司匹林", "头孢曲松", "二甲双胍", "氯吡格雷"]
DISEASES = ["高血压", "糖尿病", "冠心病", "房颤", "慢性胃炎"]
TEMPLATES = [
    "诊断：{d}、{x}。予{m}口服。",
    "既往{d}，长期服用{m}，近日停药。",
    "患者服用{m}后出现黑便，有{d}病史。",
]


def records(end_inclusive: bool) -> list[dict]:
    """30 short clinical sentences; entities mostly next to punctuation, as in clinical notes."""
    out = []
    for i in range(30):
        d, x, m = DISEASES[i % 5], DISEASES[(i + 2) % 5], DRUGS[(i * 3) % 5]
        template = TEMPLATES[i % 3]
        text = template.format(d=d, x=x, m=m)
        ents = []
        for key, word, typ in (("d", d, "疾病"), ("x", x, "疾病"), ("m", m, "药物")):
            if "{" + key + "}" not in template:
                continue
            start = template.index("{" + key + "}")
            # the offset in text: every placeholder before this one changed the length
            before = template[:start]
            for k2, w2 in (("d", d), ("x", x), ("m", m)):
                before = before.replace("{" + k2 + "}", w2)
            s = len(before)
            assert text[s:s + len(word)] == word
            ents.append({"start": s, "end": s + len(word) - (1 if end_inclusive else 0), "type": typ})
        out.append({"id": f"r{i}", "text": text, "entities": ents})
    return out


def write(tmp_path: Path, name: str, recs: list[dict]) -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return p


def mentions(path: Path, fields: SpanFields = SpanFields()) -> list[str]:
    return [r.text[s:e] for r in read_span_file(path, fields=fields) for s, e, _ in r.spans]


def test_each_convention_reads_right_with_its_setting(tmp_path: Path) -> None:
    excl = write(tmp_path, "excl.jsonl", records(end_inclusive=False))
    incl = write(tmp_path, "incl.jsonl", records(end_inclusive=True))
    assert "华法林" in mentions(excl)
    assert mentions(incl, SpanFields(end_inclusive=True)) == mentions(excl)


def test_inclusive_ends_read_as_exclusive_are_refused_with_the_evidence(tmp_path: Path) -> None:
    incl = write(tmp_path, "incl.jsonl", records(end_inclusive=True))
    with pytest.raises(DataError) as info:
        read_span_file(incl)
    msg = str(info.value)
    assert msg.startswith(f"{incl}:1: field 'end':")
    assert "one character short" in msg and "end_inclusive=true" in msg and "check_ends=false" in msg
    assert "line 1 '高血' (then '压')" in msg  # the span as read, and the character it lost


def test_exclusive_ends_read_as_inclusive_are_refused_with_the_evidence(tmp_path: Path) -> None:
    excl = write(tmp_path, "excl.jsonl", records(end_inclusive=False))
    with pytest.raises(DataError) as info:
        read_span_file(excl, fields=SpanFields(end_inclusive=True))
    msg = str(info.value)
    assert "end on punctuation or whitespace" in msg and "end_inclusive=false" in msg
    assert "'高血压、'" in msg and f"{excl}:1:" in msg


def test_check_ends_false_reads_such_spans_as_they_are(tmp_path: Path) -> None:
    incl = write(tmp_path, "incl.jsonl", records(end_inclusive=True))
    assert "华法" in mentions(incl, SpanFields(check_ends=False))


def test_mention_strings_settle_the_convention(tmp_path: Path) -> None:
    """Entities that carry their string are checked one by one, not by the boundary signals."""
    recs = records(end_inclusive=False)
    for r in recs:
        for e in r["entities"]:
            e["entity"] = r["text"][e["start"]:e["end"]]
    path = write(tmp_path, "with_strings.jsonl", recs)
    assert "华法林" in mentions(path)


def test_the_ner_task_and_validate_refuse_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``validate`` no longer says all is well: one line naming the file and line, exit 2;
    ``check_ends=false`` in --task-args lets it through."""
    from chimed_eval.cli.app import main

    incl = write(tmp_path, "incl.jsonl", records(end_inclusive=True))
    assert main(["validate", "--tasks", "ner", "--task-args", f"path={incl}", "--show", "0"]) == 2
    err = capsys.readouterr().err
    assert f"{incl}:1" in err and "end_inclusive=true" in err and "Traceback" not in err
    assert main(["validate", "--tasks", "ner", "--task-args", f"path={incl},end_inclusive=true", "--show", "0"]) == 0
    assert main(["validate", "--tasks", "ner", "--task-args", f"path={incl},check_ends=false", "--show", "0"]) == 0


def test_the_real_ccks_file_reads_and_its_cut_copy_is_refused(shared_data: Path, tmp_path: Path) -> None:
    """CCKS-2019 (exclusive ends, no mention strings) reads as it is; the same file with every
    end moved one character back (what inclusive ends read as exclusive look like) is refused."""
    src = shared_data / "ccks2019/subtask1_test_set_with_answer.json"
    recs = read_span_file(src, "jsonl")
    assert sum(len(r.spans) for r in recs) > 1000
    rows = []
    for line in src.read_text(encoding="utf-8-sig").splitlines():
        doc = json.loads(line)
        doc["entities"] = [{**e, "end_pos": e["end_pos"] - 1} for e in doc["entities"]
                           if e["end_pos"] - e["start_pos"] > 1]
        rows.append(doc)
    cut = write(tmp_path, "cut.jsonl", rows)
    with pytest.raises(DataError, match="one character short"):
        read_span_file(cut, "jsonl")
