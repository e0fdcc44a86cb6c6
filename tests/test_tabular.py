"""chimed_eval.files.tabular: row readers, answers and options, and the precision of their errors."""

from __future__ import annotations

import json

import pytest

from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.files.tabular import Row, infer_index_base, parse_answer, read_rows, require, split_options


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_lines_count_from_header_and_multiline_fields(tmp_path):
    p = _write(tmp_path / "exam.csv", 'question,A,B,answer\n"第一题\n续行",甲,乙,A\n第二题,丙,丁,B\n')
    rows = read_rows(p)
    assert [r.line for r in rows] == [2, 4]
    assert rows[0].fields == {"question": "第一题\n续行", "A": "甲", "B": "乙", "answer": "A"}


def test_csv_bom_tsv_blank_lines_and_crlf(tmp_path):
    p = tmp_path / "exam.csv"
    p.write_bytes("\ufeff题目,答案\r\n\r\n问一,A\r\n".encode("utf-8"))
    rows = read_rows(p)
    assert rows == [Row(3, {"题目": "问一", "答案": "A"})]
    t = _write(tmp_path / "exam.tsv", "q\tanswer\nx, y\tB\n")
    assert read_rows(t)[0].fields == {"q": "x, y", "answer": "B"}


def test_csv_gb18030(tmp_path):
    p = _write(tmp_path / "gbk.csv", "题目,答案\n心脏有几个腔,A\n", "gb18030")
    assert read_rows(p, encoding="gb18030")[0].fields["题目"] == "心脏有几个腔"


def test_wrong_encoding_names_line(tmp_path):
    p = _write(tmp_path / "gbk.csv", "question,answer\nok,A\n心脏,B\n", "gb18030")
    with pytest.raises(DataError) as e:
        read_rows(p)
    msg = str(e.value)
    assert "gbk.csv:3:" in msg and "UTF-8" in msg and "encoding=gb18030" in msg
    assert e.value.line == 3


def test_ragged_csv_row(tmp_path):
    p = _write(tmp_path / "ragged.csv", "question,A,B,answer\n一,甲,乙,A\n二,甲,B\n三,甲,乙,A\n")
    with pytest.raises(DataError) as e:
        read_rows(p)
    assert "ragged.csv:3:" in str(e.value) and "3 fields" in str(e.value) and "4" in str(e.value)


def test_ragged_after_multiline_field_reports_start_line(tmp_path):
    p = _write(tmp_path / "r.csv", 'question,answer\n"多行\n题目",A,extra\n')
    with pytest.raises(DataError) as e:
        read_rows(p)
    assert e.value.line == 2


@pytest.mark.parametrize("text", ["", "  \n\n", "question,answer\n", "question,answer\n\n"])
def test_empty_or_header_only(tmp_path, text):
    p = _write(tmp_path / "empty.csv", text)
    with pytest.raises(DataError) as e:
        read_rows(p)
    assert "empty.csv" in str(e.value) and "no items" in str(e.value)


def test_unnamed_index_column_is_kept(tmp_path):
    # CMMLU's CSVs start with an unnamed pandas index column.
    p = _write(tmp_path / "c.csv", ",Question,A,B,Answer\n0,q,x,y,A\n")
    rows = read_rows(p)
    assert rows[0].fields["_col1"] == "0" and rows[0].fields["Question"] == "q"


@pytest.mark.parametrize("header,what", [("q,A,A,answer", "duplicate"), (",_col1,answer", "duplicate")])
def test_bad_header(tmp_path, header, what):
    p = _write(tmp_path / "h.csv", header + "\n1,2,3,4\n")
    with pytest.raises(DataError) as e:
        read_rows(p)
    assert "h.csv:1:" in str(e.value) and what in str(e.value)


def test_trailing_empty_header_columns_are_dropped(tmp_path):
    p = _write(tmp_path / "t.csv", "q,answer,,\n问,A,,\n")
    assert read_rows(p)[0].fields == {"q": "问", "answer": "A"}
    p = _write(tmp_path / "t2.csv", "q,answer,\n问,A,stray\n")
    with pytest.raises(DataError, match=r"t2.csv:2:.*no header name"):
        read_rows(p)


def test_unknown_extension_and_format(tmp_path):
    p = _write(tmp_path / "exam.txt", "q\n")
    with pytest.raises(DataError, match="format"):
        read_rows(p)
    assert read_rows(_write(tmp_path / "x.txt", "q,answer\n1,A\n"), fmt="csv")[0].line == 2
    with pytest.raises(ConfigError):
        read_rows(p, fmt="parquet")


# --- JSONL / JSON --------------------------------------------------------------------------------


def test_jsonl_lines_and_blank_lines(tmp_path):
    p = _write(tmp_path / "d.jsonl", '{"q": "一"}\n\n{"q": "二"}\n')
    assert [(r.line, r.fields["q"]) for r in read_rows(p)] == [(1, "一"), (3, "二")]


def test_jsonl_bad_json_line(tmp_path):
    p = _write(tmp_path / "bad.jsonl", '{"q": "一"}\n{"q": "二",}\n')
    with pytest.raises(DataError) as e:
        read_rows(p)
    assert "bad.jsonl:2:" in str(e.value) and "invalid JSON" in str(e.value)


def test_jsonl_non_object(tmp_path):
    p = _write(tmp_path / "list.jsonl", '{"q": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"list.jsonl:2: .*JSON object"):
        read_rows(p)


def test_json_list_item_lines(tmp_path):
    items = [{"q": "一", "answer": "A"}, {"q": "二", "answer": "B"}]
    p = _write(tmp_path / "d.json", json.dumps(items, ensure_ascii=False, indent=2))
    rows = read_rows(p)
    assert [r.line for r in rows] == [2, 6]
    assert rows[1].fields == items[1]
    with pytest.raises(DataError, match="no items"):
        read_rows(_write(tmp_path / "e.json", "[]"))
    with pytest.raises(DataError, match=r"n.json:3: .*item 2"):
        read_rows(_write(tmp_path / "n.json", '[\n{"q": 1},\n"x"\n]'))
    with pytest.raises(DataError, match=r"s.json:3: invalid JSON"):
        read_rows(_write(tmp_path / "s.json", '[\n{"q": 1},\n{"q": }\n]'))
    with pytest.raises(DataError, match="jsonl"):
        read_rows(_write(tmp_path / "l.json", '{"q": 1}\n{"q": 2}\n'))


# --- XLSX ----------------------------------------------------------------------------------------


def test_xlsx_rows_and_sheet(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "first"
    ws.append(["题目", "A", "B", "答案"])
    ws.append(["问一", "甲", 3, 1])
    ws.append([None, None, None, None])
    ws.append(["问二", "丙", "丁", "B"])
    other = wb.create_sheet("second")
    other.append(["q", "answer"])
    other.append(["x", "A"])
    p = tmp_path / "book.xlsx"
    wb.save(p)
    rows = read_rows(p)
    assert [r.line for r in rows] == [2, 4]
    assert rows[0].fields == {"题目": "问一", "A": "甲", "B": 3, "答案": 1}
    assert read_rows(p, sheet="second")[0].fields == {"q": "x", "answer": "A"}
    with pytest.raises(DataError, match="no sheet 'third'"):
        read_rows(p, sheet="third")
    ws2 = openpyxl.Workbook()
    ws2.active.append(["q", "answer"])
    e = tmp_path / "empty.xlsx"
    ws2.save(e)
    with pytest.raises(DataError, match=r"empty.xlsx.*no items"):
        read_rows(e)


# --- require / answers / options -----------------------------------------------------------------


def test_require():
    row = Row(7, {"question": " 问 ", "answer": ""})
    assert require(row, "f.csv", "question") == "问"
    with pytest.raises(DataError) as e:
        require(row, "f.csv", "题目")
    assert str(e.value).startswith("f.csv:7: field '题目': missing column/field '题目' (have: 'question', 'answer')")
    with pytest.raises(DataError, match=r"f.csv:7: field 'answer': .*empty"):
        require(row, "f.csv", "answer")


CH = ["发热", "咳嗽", "头痛", "乏力"]


def _pa(v, choices=CH, base=None):
    return parse_answer(v, choices, path="f.csv", line=5, field="答案", index_base=base)


@pytest.mark.parametrize("value,idx", [
    ("A", 0), ("b", 1), ("(C)", 2), ("（C）", 2), ("D.", 3), ("B．", 1), ("Ｂ", 1), ("C、", 2), (" A ", 0),
    ("【D】", 3), ("咳嗽", 1), (" 头痛 ", 2), ("B. 咳嗽", 1), ("B咳嗽", 1),
])
def test_parse_answer_letters_and_text(value, idx):
    assert _pa(value) == idx


def test_parse_answer_numbers():
    assert _pa(1, base=1) == 0 and _pa("4", base=1) == 3 and _pa(0, base=0) == 0 and _pa(3.0, base=0) == 3
    assert _pa("２", base=1) == 1
    with pytest.raises(DataError, match="answer_index_base"):
        _pa(2)
    with pytest.raises(DataError, match=r"f.csv:5: field '答案': .*out of range"):
        _pa(5, base=1)


@pytest.mark.parametrize("value,what", [
    ("E", "only 4 options"), ("Z", "option letter"), ("AB", "several letters"), ("恶心", "exact text"),
    ("", "empty"), (None, "empty"), ("B. 头痛", "exact text"),
])
def test_parse_answer_errors(value, what):
    with pytest.raises(DataError) as e:
        _pa(value)
    assert str(e.value).startswith("f.csv:5: field '答案':") and what in str(e.value)


def test_parse_answer_letter_and_explicit_base_win_over_text():
    # CMMLU dev/college_medicine.csv line 4: answer "B" while option A's text is "B".
    assert _pa("B", ["B", "乙", "丙"]) == 1
    assert _pa("2", ["1", "2", "3"], base=0) == 2
    with pytest.raises(DataError, match="ambiguous"):
        _pa("b.", ["甲", "乙", "b."])  # not a bare capital letter: letter b or the text of C?
    assert _pa("C", ["甲", "乙", "C"]) == 2  # letter and text agree


def test_infer_index_base():
    assert infer_index_base([("0", 4), (2, 4)]) == 0
    assert infer_index_base([(4, 4), ("1", 5)]) == 1
    assert infer_index_base([(1, 4), (2, 4)]) is None
    assert infer_index_base([(0, 4), (4, 4)]) is None
    assert infer_index_base([("A", 4)]) is None


@pytest.mark.parametrize("text,expected", [
    ("(A) 发热\n(B) 咳嗽\n(C) 头痛", ["发热", "咳嗽", "头痛"]),
    ("A. 发热\nB. 咳嗽", ["发热", "咳嗽"]),
    ("A、发热 B、维生素 B 缺乏 C、头痛", ["发热", "维生素 B 缺乏", "头痛"]),
    ("A：甲；B：乙", ["甲", "乙"]),
    ("Ａ．甲\nＢ．乙", ["甲", "乙"]),
    ("A 选项一\nB 选项二", ["选项一", "选项二"]),
    ("一\n二\n三", ["一", "二", "三"]),
    ('["A. 甲", "B. 乙"]', ["甲", "乙"]),
    ('["甲", "乙", "丙"]', ["甲", "乙", "丙"]),
    ('{"B": "乙", "A": "甲"}', ["甲", "乙"]),
])
def test_split_options(text, expected):
    assert split_options(text) == expected


def test_split_options_structured_and_errors():
    assert split_options({"A": "甲", "B": 2}) == ["甲", "2"]
    assert split_options(["甲", "乙"]) == ["甲", "乙"]
    with pytest.raises(DataError, match="option B is missing"):
        split_options({"A": "甲", "C": "丙"})
    with pytest.raises(DataError, match=r"q.jsonl:3: field 'options': cannot split"):
        split_options("只有一个选项", path="q.jsonl", line=3, field="options")
