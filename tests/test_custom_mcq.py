"""The generic ``mcq`` task (tasks/mcq.py) on small files of every supported layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.core.errors import ConfigError, DataError, MissingDataError
from chimed_eval.core.types import file_sha256
from chimed_eval.task.multiple_choice import MCQTask
from chimed_eval.task.options import TaskRunOptions
from chimed_eval.tasks.mcq import McqSpec, load_task_config, make_mcq_task, spec_from_args


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _load(spec: McqSpec, tmp_path: Path):
    return make_mcq_task(spec).load(tmp_path / "unused-data-dir")


CSV = """题目,A,B,C,D,答案
心脏有几个腔？,2,3,4,5,C
成人正常体温约为？,35℃,37℃,39℃,41℃,B
"""


def test_csv_letter_columns(tmp_path):
    p = _write(tmp_path / "exam.csv", CSV)
    task = make_mcq_task(McqSpec(path=str(p)))
    assert isinstance(task, MCQTask) and task.name == "mcq"
    data = task.load(tmp_path)
    assert [s.id for s in data.samples] == ["exam-2", "exam-3"]
    s = data.samples[0]
    assert (s.input, s.choices, s.target, s.subject) == ("心脏有几个腔？", ("2", "3", "4", "5"), 2, None)
    assert s.metadata == {"file": "exam.csv", "line": 2,
                          "source": {"columns": {"A": "2", "B": "3", "C": "4", "D": "5"}}}
    assert data.files == {"exam.csv": file_sha256(p)}
    assert data.subject_names[""] == "医学"
    reqs = task.build_requests(data, data.samples, TaskRunOptions("paper", 0))
    assert "以下是关于医学的选择题" in reqs[0].context and reqs[0].continuations == ("A", "B", "C", "D")


def test_jsonl_options_field_like_medqa(tmp_path):
    rows = [
        {"question": "首选药物是", "options": "(A) 阿司匹林\n(B) 青霉素\n(C) 胰岛素\n(D) 地西泮", "answer": "(B)"},
        {"question": "属于病毒的是", "options": "(A) 大肠杆菌\n(B) 流感病毒", "answer": "B"},
    ]
    p = _write(tmp_path / "medqa.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    data = _load(McqSpec(path=str(p), options="options"), tmp_path)
    assert [s.choices for s in data.samples] == [("阿司匹林", "青霉素", "胰岛素", "地西泮"), ("大肠杆菌", "流感病毒")]
    assert [s.target for s in data.samples] == [1, 1]
    assert data.samples[1].metadata["line"] == 2
    # the options field is also found without options=
    assert [s.target for s in _load(McqSpec(path=str(p)), tmp_path).samples] == [1, 1]


def test_json_with_option_dict_and_answer_text(tmp_path):
    items = [{"id": "q1", "question": "维生素C缺乏引起", "options": {"A": "坏血病", "B": "佝偻病"}, "answer": "坏血病"}]
    p = _write(tmp_path / "d.json", json.dumps(items, ensure_ascii=False))
    s = _load(McqSpec(path=str(p), id="id"), tmp_path).samples[0]
    assert (s.id, s.choices, s.target) == ("q1", ("坏血病", "佝偻病"), 0)


def test_xlsx_five_options_numeric_one_based(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["编号", "科目", "问题", "A", "B", "C", "D", "E", "答案"])
    ws.append(["x1", "内科学", "高血压的诊断标准", "≥120/80", "≥130/85", "≥140/90", "≥150/95", "≥160/100", 3])
    ws.append(["x2", "外科学", "四个选项的题", "甲", "乙", "丙", "丁", None, 1])
    p = tmp_path / "exam.xlsx"
    wb.save(p)
    # the subject column holds real subject names: the user asks for them in the prompt
    spec = McqSpec(path=str(p), id="编号", subject="科目", answer_index_base=1, subject_in_prompt=True)
    data = _load(spec, tmp_path)
    a, b = data.samples
    assert (a.id, a.target, len(a.choices), a.subject) == ("x1", 2, 5, "内科学")
    assert (b.target, b.choices, b.metadata["line"]) == (0, ("甲", "乙", "丙", "丁"), 3)
    assert data.subject_names["内科学"] == "内科学"
    task = make_mcq_task(spec)
    assert "以下是关于外科学的选择题" in task.build_requests(data, [b], TaskRunOptions("paper", 0))[0].context


def test_numeric_answers_base_inferred_or_required(tmp_path):
    p = _write(tmp_path / "n.csv", "question,A,B,C,answer\n一,甲,乙,丙,3\n二,甲,乙,丙,1\n")
    assert [s.target for s in _load(McqSpec(path=str(p)), tmp_path).samples] == [2, 0]  # a 3 with 3 options: 1-based
    p = _write(tmp_path / "m.csv", "question,A,B,C,answer\n一,甲,乙,丙,2\n二,甲,乙,丙,1\n")
    with pytest.raises(DataError) as e:
        _load(McqSpec(path=str(p)), tmp_path)
    assert "m.csv:2:" in str(e.value) and "answer_index_base" in str(e.value)
    assert [s.target for s in _load(McqSpec(path=str(p), answer_index_base=0), tmp_path).samples] == [2, 1]


def test_answers_as_option_text_and_explicit_columns(tmp_path):
    p = _write(tmp_path / "t.csv", "stem,opt1,opt2,opt3,key\n肝脏位于,左上腹,右上腹,下腹,右上腹\n")
    spec = spec_from_args({"path": str(p), "question": "stem", "choices": "opt1;opt2|opt3", "answer": "key"})
    s = _load(spec, tmp_path).samples[0]
    assert (s.choices, s.target) == (("左上腹", "右上腹", "下腹"), 1)


def test_directory_glob_and_fewshot(tmp_path):
    d = tmp_path / "exam"
    d.mkdir()
    _write(d / "b.csv", CSV)
    _write(d / "a.csv", "题目,A,B,答案\n甲题,是,否,A\n")
    _write(d / "dev.csv", "题目,A,B,答案\n示例题,对,错,B\n")
    _write(d / "notes.txt", "ignored")
    spec = McqSpec(path=str(d), fewshot=str(d / "dev.csv"))
    data = _load(spec, tmp_path)
    assert [s.id for s in data.samples] == ["a-2", "b-2", "b-3"]
    assert [s.id for s in data.fewshot[None]] == ["dev-dev-2"]
    assert set(data.files) == {"a.csv", "b.csv", "dev.csv"}
    ctx = make_mcq_task(spec).build_requests(data, data.samples[:1], TaskRunOptions("paper", 1))[0].context
    assert "示例题" in ctx and "答案：B.错" in ctx
    globbed = _load(McqSpec(path=str(d / "[ab].csv")), tmp_path)
    assert [s.id for s in globbed.samples] == ["a-2", "b-2", "b-3"]
    with pytest.raises(MissingDataError):
        _load(McqSpec(path=str(d / "*.xlsx")), tmp_path)
    with pytest.raises(MissingDataError):
        _load(McqSpec(path=str(tmp_path / "nope.csv")), tmp_path)


def test_fewshot_pools_by_subject(tmp_path):
    p = _write(tmp_path / "t.csv", "subject,question,A,B,answer\n内科,问1,甲,乙,A\n外科,问2,甲,乙,B\n")
    dev = _write(tmp_path / "dev.csv", "subject,question,A,B,answer\n外科,外科例,甲,乙,A\n内科,内科例,甲,乙,B\n")
    data = _load(McqSpec(path=str(p), subject="subject", fewshot=str(dev)), tmp_path)
    assert {k: [s.input for s in v] for k, v in data.fewshot.items()} == {"外科": ["外科例"], "内科": ["内科例"]}


def test_toml_config(tmp_path):
    sub = tmp_path / "cfg"
    sub.mkdir()
    _write(sub / "exam.csv", CSV)
    _write(sub / "other.csv", "问题,A,B,answer\n问,甲,乙,2\n")
    cfg = _write(sub / "tasks.toml", """
subject_name = "临床医学"

[[tasks]]
name = "hospital-exam"
path = "exam.csv"
answer = "答案"

[[tasks]]
name = "other"
path = "other.csv"
answer_index_base = 1
choices = ["A", "B"]
""")
    specs = load_task_config(cfg)
    assert [s.name for s in specs] == ["hospital-exam", "other"]
    assert Path(specs[0].path) == sub / "exam.csv" and specs[1].subject_name == "临床医学"
    assert [s.target for s in _load(specs[1], tmp_path).samples] == [1]
    task = make_mcq_task(specs[0])
    data = task.load(tmp_path)
    assert task.name == "hospital-exam" and len(data.samples) == 2
    assert "以下是关于临床医学的选择题" in task.build_requests(data, data.samples, TaskRunOptions("paper", 0))[0].context


def test_json_config_single_task(tmp_path):
    _write(tmp_path / "exam.csv", CSV)
    cfg = _write(tmp_path / "task.json", json.dumps({"path": "exam.csv", "name": "mine"}))
    (spec,) = load_task_config(cfg)
    assert spec.name == "mine" and len(_load(spec, tmp_path).samples) == 2


@pytest.mark.parametrize("text,what", [
    ('[[tasks]]\npath = "a.csv"\nqustion = "x"\n', "unknown key 'qustion'. Did you mean 'question'"),
    ('[[tasks]]\npath = "a.csv"\nanswer_index_base = 2\n', "answer_index_base"),
    ('[[tasks]]\nname = "x"\n', "path="),
    ('[[tasks]]\npath = "a.csv"\n[[tasks]]\npath = "b.csv"\n', "several tasks are named 'mcq'"),
    ('[[tasks]]\npath = "a.csv"\nchoices = ["A"]\n', "choices"),
    ('path = \n', "invalid TOML"),
])
def test_config_errors_name_file_and_key(tmp_path, text, what):
    cfg = _write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as e:
        load_task_config(cfg)
    assert "bad.toml" in str(e.value) and what in str(e.value)


def test_spec_from_args_errors():
    with pytest.raises(ConfigError, match="Did you mean 'answer'"):
        spec_from_args({"path": "x.csv", "anser": "key"})
    with pytest.raises(ConfigError, match="not both"):
        spec_from_args({"path": "x.csv", "choices": "A;B", "options": "opts"})
    with pytest.raises(ConfigError, match="0 or 1"):
        spec_from_args({"path": "x.csv", "answer_index_base": "one"})
    assert spec_from_args({"path": "x.csv", "answer-index-base": "1"}).answer_index_base == 1


# --- malformed data: file name, line and field in every message ---------------------------------


def _err(spec: McqSpec, tmp_path: Path) -> DataError:
    with pytest.raises(DataError) as e:
        _load(spec, tmp_path)
    return e.value


def test_missing_column(tmp_path):
    p = _write(tmp_path / "nocol.csv", "题目,A,B,C,D\n问,甲,乙,丙,丁\n")
    e = _err(McqSpec(path=str(p)), tmp_path)
    assert "nocol.csv:1:" in str(e) and "answer" in str(e)
    e = _err(McqSpec(path=str(p), answer="正确答案"), tmp_path)
    assert "nocol.csv:1: field '正确答案'" in str(e) and "missing column" in str(e)


def test_missing_field_in_one_jsonl_line(tmp_path):
    p = _write(tmp_path / "m.jsonl", '{"question": "一", "A": "甲", "B": "乙", "answer": "A"}\n'
                                     '{"question": "二", "A": "甲", "B": "乙"}\n')
    e = _err(McqSpec(path=str(p)), tmp_path)
    assert "m.jsonl:2: field 'answer': missing column/field 'answer'" in str(e)


@pytest.mark.parametrize("answer,what", [("E", "only 4 options"), ("Z", "not valid")])
def test_bad_answer_letter(tmp_path, answer, what):
    p = _write(tmp_path / "ans.csv", f"题目,A,B,C,D,答案\n一,甲,乙,丙,丁,A\n二,甲,乙,丙,丁,{answer}\n")
    e = _err(McqSpec(path=str(p)), tmp_path)
    assert "ans.csv:3: field '答案'" in str(e) and what in str(e)


def test_wrong_encoding(tmp_path):
    p = _write(tmp_path / "gbk.csv", CSV, "gb18030")
    e = _err(McqSpec(path=str(p)), tmp_path)
    assert "gbk.csv:1:" in str(e) and "encoding=gb18030" in str(e)
    assert len(_load(McqSpec(path=str(p), encoding="gb18030"), tmp_path).samples) == 2


def test_empty_file(tmp_path):
    p = _write(tmp_path / "empty.csv", "")
    assert "empty.csv" in str(_err(McqSpec(path=str(p)), tmp_path)) and "no items" in str(_err(McqSpec(path=str(p)), tmp_path))


def test_bad_json_line(tmp_path):
    p = _write(tmp_path / "bad.jsonl", '{"question": "一", "options": ["甲", "乙"], "answer": "A"}\n{"question": "二"\n')
    e = _err(McqSpec(path=str(p)), tmp_path)
    assert "bad.jsonl:2:" in str(e) and "invalid JSON" in str(e)


def test_ragged_row(tmp_path):
    p = _write(tmp_path / "ragged.csv", "题目,A,B,C,D,答案\n一,甲,乙,丙,丁,A\n二,甲,乙,丙,A\n")
    e = _err(McqSpec(path=str(p)), tmp_path)
    assert "ragged.csv:3:" in str(e) and "5 fields" in str(e)


def test_too_few_options_and_gaps(tmp_path):
    p = _write(tmp_path / "few.csv", "题目,A,B,C,答案\n一,甲,乙,丙,A\n二,甲,,,A\n")
    e = _err(McqSpec(path=str(p)), tmp_path)
    assert "few.csv:3:" in str(e) and "at least 2" in str(e)
    p = _write(tmp_path / "gap.csv", "题目,A,B,C,答案\n一,甲,,丙,A\n")
    e = _err(McqSpec(path=str(p)), tmp_path)
    assert "gap.csv:2: field 'B'" in str(e) and "empty" in str(e)


def test_duplicate_ids_name_both_lines(tmp_path):
    p = _write(tmp_path / "dup.csv", "id,题目,A,B,答案\nq1,一,甲,乙,A\nq2,二,甲,乙,A\nq1,三,甲,乙,B\n")
    e = _err(McqSpec(path=str(p), id="id"), tmp_path)
    assert "dup.csv:4:" in str(e) and "line 2" in str(e) and "q1" in str(e)


# --- several answers (issue 16): a user's exam in three layouts, run end to end -------------------

def _oracle_run(tmp_path: Path, task_args: str, *extra: str) -> dict:
    from chimed_eval.cli.app import main

    out = tmp_path / "out"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq",
                 "--task-args", task_args, "--output", str(out), *extra]) == 0
    (task,) = json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"].values()
    return {m["name"]: m["value"] for m in task["metrics"]} | {"_n": task["n"], "_variant": task["variant"]}


def test_cmexam_layout_xlsx_with_option_sep(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Question", "Options", "Answer", "Explanation"])
    ws.append(["夜间阵发性呼吸困难，可见于", r"A 急性脑血管疾病\nB 癔病\nC 毒血症\nD 肺气肿\nE 左心功能不全", "E", "左心衰"])
    ws.append(["属于抗胆碱药的是", r"A 阿托品\nB 东莨菪碱\nC 肾上腺素\nD 山莨菪碱", "ABD", ""])
    ws.append(["可引起发热的是", r"A 感染\nB 肿瘤\nC 甲亢\nD 脱水\nE 以上均非", "ABCD", ""])
    wb.save(tmp_path / "my_exam.xlsx")
    p = tmp_path / "my_exam.xlsx"
    data = _load(McqSpec(path=str(p), option_sep="\\n"), tmp_path)
    assert [s.target for s in data.samples] == [4, (0, 1, 3), (0, 1, 2, 3)]
    assert data.samples[1].choices == ("阿托品", "东莨菪碱", "肾上腺素", "山莨菪碱")
    with pytest.raises(DataError, match=r"set option_sep=\\n"):
        _load(McqSpec(path=str(p)), tmp_path)
    m = _oracle_run(tmp_path, f"path={p},option_sep=\\n", "--variant", "generate")
    assert m["acc_exact_set"] == m["option_f1"] == m["acc_exact_set_multi"] == 100.0 and "acc" not in m


def test_jsonl_answer_letters_for_several_answers(tmp_path):
    rows = [{"question": "维生素C缺乏引起", "options": ["坏血病", "佝偻病", "夜盲症"], "answer": "A"},
            {"question": "属于脂溶性维生素的是", "options": ["维生素A", "维生素C", "维生素D", "维生素K"], "answer": "ACD"},
            {"question": "属于病毒的是", "options": "(A) 流感病毒\n(B) 大肠杆菌\n(C) 乙肝病毒", "answer": "(AC)"}]
    p = _write(tmp_path / "exam.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    assert [s.target for s in _load(McqSpec(path=str(p)), tmp_path).samples] == [0, (0, 2, 3), (0, 2)]
    m = _oracle_run(tmp_path, f"path={p}", "--variant", "generate")
    assert m["acc_exact_set"] == m["option_f1"] == 100.0 and m["_n"] == 3 and m["_variant"] == "generate"


def test_csv_answers_as_option_texts_with_several(tmp_path):
    p = _write(tmp_path / "texts.csv", "题目,A,B,C,D,答案\n"
                                      "左心衰的表现是,发热,夜间阵发性呼吸困难,腹泻,皮疹,夜间阵发性呼吸困难\n"
                                      "属于抗胆碱药的是,阿托品,东莨菪碱,肾上腺素,山莨菪碱,阿托品|东莨菪碱|山莨菪碱\n"
                                      "成人正常体温约为？,35℃,37℃,39℃,41℃,37℃\n")
    data = _load(McqSpec(path=str(p)), tmp_path)
    assert [s.target for s in data.samples] == [1, (0, 1, 3), 1]
    m = _oracle_run(tmp_path, f"path={p}", "--variant", "generate")
    assert m["acc_exact_set"] == m["option_f1"] == 100.0


def test_several_answers_refused_by_letter_scoring(tmp_path, capsys):
    from chimed_eval.cli.app import main

    p = _write(tmp_path / "m.jsonl", '{"question": "一", "options": ["甲", "乙", "丙"], "answer": "AB"}\n')
    code = main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq",
                 "--task-args", f"path={p}", "--output", str(tmp_path / "o")])
    assert code != 0
    err = capsys.readouterr().err
    assert "item 'm-1'" in err and "several correct answers (AB)" in err and "--variant generate" in err


def test_option_sep_key_checks():
    assert spec_from_args({"path": "x.xlsx", "option_sep": "\\n"}).option_sep == "\\n"
    with pytest.raises(ConfigError, match="does not apply to choices="):
        McqSpec(path="x.csv", choices=["A", "B"], option_sep="|")
