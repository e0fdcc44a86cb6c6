"""The user's own mcq file is never misread silently (issue 18, items 1, 2, 3, 5, 7 and the check
that cannot be fooled)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import chimed_eval.tasks.mcq as custom
from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.files.answers import _LABEL, _label_index, split_options
from chimed_eval.task.options import TaskRunOptions
from chimed_eval.files.option_checks import option_problems
from chimed_eval.tasks.mcq import McqSpec, make_mcq_task, spec_from_args

SCHEMA = Path(__file__).resolve().parents[1] / "chimed_eval" / "schema" / "results.schema.json"


def _jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    return path


def _load(spec: McqSpec, tmp_path: Path):
    return make_mcq_task(spec).load(tmp_path)


def run(*argv: str) -> int:
    return main(["run", "--no-progress", "--backend", "fake", *argv])


WATSON = "(A) Francis Crick.\n(B) Rosalind Franklin.\n(C) James D.Watson.\n(D) Gregor Mendel."


# --- 1. options in one field ---------------------------------------------------------------------


def test_option_text_with_a_period_or_letter_is_not_cut():
    assert split_options(WATSON) == ["Francis Crick.", "Rosalind Franklin.", "James D.Watson.", "Gregor Mendel."]
    assert split_options("(A) x (B) see (C) below (C) again".replace("(C) again", "(D) y")) == ["x", "see", "below", "y"]
    assert split_options("A. 维生素 C. 缺乏\nB. 铁缺乏\nC. 叶酸缺乏") == ["维生素 C. 缺乏", "铁缺乏", "叶酸缺乏"]


def test_an_option_reading_like_a_label_is_accepted():
    assert split_options("(A) A.\n(B) C.\n(C) G.\n(D) T.") == ["A.", "C.", "G.", "T."]


@pytest.mark.parametrize("text, what", [
    ("(B) 甲\n(C) 乙\n(D) 丙\n(E) 丁", "start with label B"),
    ("A. 甲\nB. 乙\nD. 丙\nE. 丁", "option C is missing"),
    ("(A) 甲 (B) 乙 (D) 丙 (E) 丁", "option C is missing"),
    ("(A) 甲\n(B) 乙\n(B) 丙\n(C) 丁", "appears again"),
])
def test_skipped_or_repeated_labels_are_refused_not_relabelled(tmp_path, text, what):
    p = _jsonl(tmp_path / "q.jsonl", [{"question": "好题", "options": "(A) a\n(B) b", "answer": "A"},
                                      {"question": "坏题", "options": text, "answer": "A"}])
    with pytest.raises(DataError, match=re.escape(what)) as e:
        _load(McqSpec(path=str(p)), tmp_path)
    assert "q.jsonl:2" in str(e.value) and "'options'" in str(e.value)


# --- 2. answers that name the option column, several letters in parentheses ---------------------


def test_answer_names_the_option_column(tmp_path):
    p = tmp_path / "medmcqa.csv"
    p.write_text("question,opa,opb,opc,opd,ope,cop\n"
                 "问1,甲,乙,丙,丁,戊,opb\n"
                 "问2,甲,乙,丙,丁,戊,ope\n", encoding="utf-8")
    data = _load(McqSpec(path=str(p), choices=["opa", "opb", "opc", "opd", "ope"], answer="cop"), tmp_path)
    assert [s.target for s in data.samples] == [1, 4]


def test_answer_column_name_that_is_another_options_text_is_ambiguous(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("question,opa,opb,cop\n问1,opb,乙,opb\n", encoding="utf-8")
    with pytest.raises(DataError, match="ambiguous") as e:
        _load(McqSpec(path=str(p), choices=["opa", "opb"], answer="cop"), tmp_path)
    assert "x.csv:2" in str(e.value)


def test_several_letters_in_parentheses(tmp_path):
    p = _jsonl(tmp_path / "m.jsonl", [{"question": "多选", "options": "A. a\nB. b\nC. c\nD. d\nE. e", "answer": "(BCDE)"}])
    assert _load(McqSpec(path=str(p)), tmp_path).samples[0].target == (1, 2, 3, 4)


# --- 3. on_invalid -------------------------------------------------------------------------------


BAD_ROWS = [{"question": "好题1", "options": "(A) a\n(B) b", "answer": "A"},
            {"question": "坏题", "options": "(A) a\n(B) b\n(D) d", "answer": "A"},
            {"question": "好题2", "options": "(A) a\n(B) b", "answer": "B"},
            {"question": "答案坏", "options": "(A) a\n(B) b", "answer": "F"}]


def test_on_invalid_error_is_the_default_and_skip_lists_rows(tmp_path):
    p = _jsonl(tmp_path / "q.jsonl", BAD_ROWS)
    with pytest.raises(DataError, match="q.jsonl:2"):
        _load(McqSpec(path=str(p)), tmp_path)
    data = _load(spec_from_args({"path": str(p), "on_invalid": "skip"}), tmp_path)
    assert [s.input for s in data.samples] == ["好题1", "好题2"]
    assert data.skipped["count"] == 2
    assert [(r["file"], r["line"]) for r in data.skipped["rows"]] == [("q.jsonl", 2), ("q.jsonl", 4)]
    assert "option C is missing" in data.skipped["rows"][0]["reason"]
    with pytest.raises(ConfigError, match="on_invalid"):
        spec_from_args({"path": str(p), "on_invalid": "ignore"})


def test_skipped_rows_reach_results_json(tmp_path):
    p = _jsonl(tmp_path / "q.jsonl", BAD_ROWS)
    out = tmp_path / "o"
    assert run("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={p},on_invalid=skip", "--output", str(out)) == 0
    res = json.loads((out / "results.json").read_text())
    t = res["tasks"]["mcq"]
    assert t["n"] == 2 and t["skipped"]["count"] == 2
    assert [r["line"] for r in t["skipped"]["rows"]] == [2, 4]
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(res, json.loads(SCHEMA.read_text()))


# --- 5. few-shot items taken from the test file ----------------------------------------------------


def test_shot_with_a_test_items_question_text_is_refused(tmp_path):
    test = _jsonl(tmp_path / "test.jsonl", [{"question": "心脏有几个腔？", "options": "(A) 2\n(B) 4", "answer": "B"}])
    # the same item, its options in another order: the answer text 4 would still be in the prompt
    dev = _jsonl(tmp_path / "dev.jsonl", [{"question": "别的题", "options": "(A) x\n(B) y", "answer": "A"},
                                          {"question": "心脏有几个腔？ ", "options": "(A) 4\n(B) 2", "answer": "A"}])
    with pytest.raises(DataError, match="shares the question text") as e:
        _load(McqSpec(path=str(test), fewshot=str(dev)), tmp_path)
    assert "dev.jsonl:2" in str(e.value) and "test.jsonl:1" in str(e.value)


def test_shot_sharing_only_an_id_is_another_item_of_its_own_split(tmp_path):
    # ids name items within a file (issue 22 item 25: C-Eval-style splits restart them at 0);
    # the question text is what a copied item shares across splits
    test = _jsonl(tmp_path / "test.jsonl", [{"id": "q7", "question": "问甲", "options": "(A) 2\n(B) 4", "answer": "B"}])
    dev = _jsonl(tmp_path / "dev.jsonl", [{"id": "q7", "question": "问乙", "options": "(A) x\n(B) y", "answer": "A"}])
    assert _load(McqSpec(path=str(test), fewshot=str(dev), id="id"), tmp_path).fewshot
    copied = _jsonl(tmp_path / "dev2.jsonl", [{"id": "d1", "question": "问甲", "options": "(A) x\n(B) y", "answer": "A"}])
    with pytest.raises(DataError, match="shares the question text") as e:
        _load(McqSpec(path=str(test), fewshot=str(copied), id="id"), tmp_path)
    assert "dev2.jsonl:1" in str(e.value) and "test.jsonl:1" in str(e.value)


# --- 7. subjects ---------------------------------------------------------------------------------


SUBJ = [{"question": "问1", "options": "(A) a\n(B) b", "answer": "A", "src": "cmb-single"},
        {"question": "问2", "options": "(A) a\n(B) b", "answer": "B", "src": "cmb-multi"}]


def _context(spec: McqSpec, tmp_path: Path) -> str:
    task = make_mcq_task(spec)
    data = task.load(tmp_path)
    return task.build_requests(data, data.samples[:1], TaskRunOptions("paper", 0))[0].context


def test_subject_column_value_is_not_rendered_unless_asked(tmp_path):
    p = _jsonl(tmp_path / "s.jsonl", SUBJ)
    ctx = _context(McqSpec(path=str(p), subject="src"), tmp_path)
    assert "cmb-single" not in ctx and "以下是关于医学的选择题" in ctx
    ctx = _context(McqSpec(path=str(p), subject="src", subject_name="临床医学"), tmp_path)
    assert "cmb-single" not in ctx and "以下是关于临床医学的选择题" in ctx
    ctx = _context(spec_from_args({"path": str(p), "subject": "src", "subject_in_prompt": "true"}), tmp_path)
    assert "以下是关于cmb-single的选择题" in ctx
    with pytest.raises(ConfigError, match="give one"):
        McqSpec(path=str(p), subject="src", subject_name="x", subject_in_prompt=True)


def test_per_subject_breakdown_still_uses_the_column(tmp_path):
    p = _jsonl(tmp_path / "s.jsonl", SUBJ)
    out = tmp_path / "o"
    assert run("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={p},subject=src,subject_name=临床医学",
               "--output", str(out)) == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["tasks"]["mcq"]["subjects"]) == {"cmb-single", "cmb-multi"}


# --- the check that cannot be fooled ---------------------------------------------------------------


def _old_split(value, *, path="<options>", line=None, field=None, sep=None):
    """The splitter before issue 18: any label of the next letter, whatever its form."""
    text = value.strip()
    found = []
    for m in _LABEL.finditer(text):
        if _label_index(m.group("p") or m.group("s") or m.group("b")) == len(found):
            found.append(m)
    bounds = [m.start() for m in found[1:]] + [len(text)]
    return [text[m.end():b].strip() for m, b in zip(found, bounds)]


def _acc(out: Path) -> float:
    res = json.loads((out / "results.json").read_text())
    return next(m["value"] for m in res["tasks"]["mcq"]["metrics"] if m["name"] == "acc")


MISLEADING = [{"question": "谁提出了遗传定律？", "options": WATSON, "answer": "D"},
              {"question": "谁发现了双螺旋？", "options": WATSON, "answer": "C"}]


def test_oracle_no_longer_scores_100_on_a_misread_prompt(tmp_path, monkeypatch):
    p = _jsonl(tmp_path / "m.jsonl", MISLEADING)
    out = tmp_path / "good"
    assert run("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={p}", "--output", str(out)) == 0
    assert _acc(out) == pytest.approx(100.0)
    monkeypatch.setattr(custom, "split_options", _old_split)  # a splitter that cuts at "D."
    data = _load(McqSpec(path=str(p)), tmp_path)
    assert data.samples[0].choices[2:] == ("James", "Watson.\n(D) Gregor Mendel.")  # misread, silently
    assert option_problems(data.samples[0])
    bad = tmp_path / "bad"
    assert run("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={p}", "--output", str(bad)) == 0
    assert _acc(bad) == pytest.approx(0.0)  # both gold options misread: the oracle no longer says 100


@pytest.mark.parametrize("options, answer", [
    ({"A": "甲", "B": "乙"}, "B"), (["A. 甲", "B. 乙"], "A"), ("A 甲\\nB 乙", "B"), ("A：甲；B：乙", "B"), ("甲\n乙", "A"),
])
def test_every_source_shape_checks_out(tmp_path, options, answer):
    sep = {"option_sep": "\\n"} if isinstance(options, str) and "\\n" in options else {}
    p = _jsonl(tmp_path / "q.jsonl", [{"question": "问", "options": options, "answer": answer}])
    s = _load(spec_from_args({"path": str(p), **sep}), tmp_path).samples[0]
    assert s.choices == ("甲", "乙") and option_problems(s) == []


def test_validate_command(tmp_path, monkeypatch, capsys):
    p = _jsonl(tmp_path / "m.jsonl", MISLEADING)
    assert main(["validate", "--tasks", "mcq", "--task-args", f"path={p}", "--show", "1"]) == 0
    text = capsys.readouterr().out
    assert "2 items read, every option matches its source" in text
    assert "C.James D.Watson." in text and "谁提出了遗传定律？" in text and "谁发现了双螺旋" not in text
    monkeypatch.setattr(custom, "split_options", _old_split)
    assert main(["validate", "--tasks", "mcq", "--task-args", f"path={p}", "--show", "0"]) == 1
    text = capsys.readouterr().out
    assert "m.jsonl:1: option C 'James' is not what" in text and "m.jsonl:1: option D" in text


def test_oracle_check_follows_shuffled_options(tmp_path):
    p = _jsonl(tmp_path / "m.jsonl", MISLEADING)
    out = tmp_path / "o"
    assert run("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={p}", "--shuffle-choices", "3",
               "--output", str(out)) == 0
    assert _acc(out) == pytest.approx(100.0)
