"""Multiple-answer items (issue 16 items 1-2): answers read from files, judging, figures, the
letter-scoring refusal, the ``cmb-exam`` task on files in the official layout, and ``cmexam`` on
the real file when ``../shared/data`` has it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.evidence.multi_choice import (
    judge_multi, multi_answer_figures, refuse_letter_scoring, render_multi_generate, target_letters,
)
from chimed_eval.prompts.variants import Shot, render_generate
from chimed_eval.files.tabular import parse_answers, split_options
from chimed_eval.core.types import Sample, SampleScore

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CH5 = ("原发病", "出血部位", "出血量", "停留时间", "以上均非")


# --- answers in files ---------------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    ("C", 2), ("(C)", 2), ("出血量", 2), ("ABD", (0, 1, 3)), ("abd", (0, 1, 3)), ("ＡＢＤ", (0, 1, 3)),
    ("(BCDE)", (1, 2, 3, 4)), ("（BCDE）", (1, 2, 3, 4)), ("[AC]", (0, 2)), ("【AC】", (0, 2)),
    ("A、B、D", (0, 1, 3)), ("A,B,D", (0, 1, 3)), ("A，B和D", (0, 1, 3)), ("A B D", (0, 1, 3)),
    ("DBA", (0, 1, 3)), ("原发病|出血量", (0, 2)), ("出血量;原发病", (0, 2)), (["A", "D"], (0, 3)),
    (["出血部位"], 1),
])
def test_parse_answers(value, expected):
    assert parse_answers(value, CH5, path="f.csv", line=3, field="答案") == expected


@pytest.mark.parametrize("value,message", [
    ("ABF", "names option F, but the item has only 5 options"),
    ("AAB", "names option A twice"),
    ("原发病|肝硬化", "answer '肝硬化' is not valid"),
    ("", "empty answer"),
])
def test_parse_answers_errors_name_the_answer(value, message):
    with pytest.raises(DataError) as e:
        parse_answers(value, CH5, path="f.csv", line=3, field="答案")
    assert "f.csv:3: field '答案'" in str(e.value) and message in str(e.value)


def test_split_options_with_a_literal_separator():
    cell = r"A 原发病\nB 出血部位\n(C) 出血量"
    assert split_options(r"A 原发病\nB 出血部位\nC 出血量", sep=r"\n") == ["原发病", "出血部位", "出血量"]
    assert split_options(r"(A) 甲\n(B) 乙", sep=r"\n") == ["甲", "乙"]
    assert split_options(r"A. 甲\nB. 乙\n", sep=r"\n") == ["甲", "乙"]
    assert split_options(cell, sep=r"\n") == ["原发病", "出血部位", "出血量"]
    assert split_options("A型血|B型血", sep="|") == ["A型血", "B型血"]  # no label: kept as written
    with pytest.raises(DataError, match="option_sep '\\|' does not occur"):
        split_options("甲 乙", sep="|")
    with pytest.raises(DataError, match=r"set option_sep=\\n"):
        split_options(r"A 原发病\nB 出血部位")


# --- judging and figures ------------------------------------------------------------------------

def _rec(gold: str, generation: str | None, subject: str | None = None, i: int = 0) -> SampleScore:
    return SampleScore(id=f"q{i}", subject=subject, prompt="p", prompt_hash="h", gold=gold, prediction=None,
                       score=0.0, generation=generation)


@pytest.mark.parametrize("generation,variant,prediction,score", [
    ("答案：ABD", "generate", "ABD", 1.0),
    ("A、B和D", "generate", "ABD", 1.0),
    ("ＡＢＤ", "generate", "ABD", 1.0),
    ("AB", "generate", "AB", 0.0),
    ("ABCD", "generate", "ABCD", 0.0),
    ("我不确定", "generate", None, 0.0),
    ("<think>A 和 B 都对</think>答案：ABD", "cot", "ABD", 1.0),
    ("分析：A项正确，B项正确，C项错误，D项正确。答案：A、B、D", "cot", "ABD", 1.0),
])
def test_judge_multi(generation, variant, prediction, score):
    out = judge_multi(_rec("ABD", generation), 5, variant)
    assert (out.prediction, out.score, out.extraction_failed) == (prediction, score, prediction is None)


def test_judge_multi_refuses_letter_scores():
    with pytest.raises(ConfigError, match="use --variant generate"):
        judge_multi(_rec("ABD", None), 5)


def test_multi_answer_figures_by_hand():
    # gold, prediction, subject; exact: 1,0,1,0; F1: 1, 2*2/(2+3)=0.8, 1, 0
    rows = [("ABD", "ABD", "s1"), ("ABD", "AB", "s1"), ("C", "C", "s2"), ("B", None, "s2")]
    scores = [SampleScore(id=f"q{i}", subject=s, prompt="p", prompt_hash="h", gold=g, prediction=p, score=0.0,
                          generation="x", extraction_failed=p is None) for i, (g, p, s) in enumerate(rows)]
    metrics, subjects = multi_answer_figures(scores, seed=1, protocol="generate")
    got = {m.name: (round(m.value, 6), m.n, m.averaging) for m in metrics}
    assert got == {
        "acc_exact_set": (50.0, 4, "items"), "option_f1": (70.0, 4, "items"),
        "acc_exact_set_macro": (50.0, 4, "subjects"), "option_f1_macro": (70.0, 4, "subjects"),
        "acc_exact_set_multi": (50.0, 2, "items"), "option_f1_multi": (90.0, 2, "items"),
        "extraction_failure_rate": (25.0, 4, "items"),
    }
    assert "acc" not in got
    assert subjects == {"s1": {"n": 2, "acc_exact_set": 50.0, "option_f1": 90.0},
                        "s2": {"n": 2, "acc_exact_set": 50.0, "option_f1": 50.0}}
    assert all(m.ci_low <= m.value <= m.ci_high for m in metrics if m.ci_low is not None)


def test_refusal_names_the_item_and_the_variant():
    items = [Sample("q1", "一", CH5, 2), Sample("q2", "二", CH5, (0, 1), metadata={"file": "exam.csv", "line": 3})]
    refuse_letter_scoring("mcq", items[:1], "paper")  # single answers: fine
    with pytest.raises(ConfigError) as e:
        refuse_letter_scoring("mcq", items, "lm-eval")
    assert "item 'q2' (exam.csv:3) has several correct answers (AB)" in str(e.value)
    assert "--variant lm-eval" in str(e.value) and "--variant generate" in str(e.value)


def test_generate_prompt_unchanged_for_single_answers():
    shots = [Sample("d1", "问", ("甲", "乙"), 1)]
    old = render_generate("医学", [Shot("问", ("甲", "乙"), 1)], "题", CH5)
    assert render_multi_generate("医学", shots, "题", CH5, multi=False) == old
    new = render_multi_generate("医学", [Sample("d2", "问", ("甲", "乙", "丙"), (0, 2))], "题", CH5, multi=True)
    assert new.context.startswith("以下是关于医学的多项选择题") and "答案：AC\n\n" in new.context
    assert target_letters((0, 2)) == "AC" and target_letters(3) == "D"


# --- cmb-exam, on files written in the official layout ------------------------------------------

CMB_ITEMS = [  # (exam_type, exam_class, question_type, answer)
    ("医师考试", "规培结业", "单项选择题", "D"),
    ("医师考试", "规培结业", "多项选择题", "ABCE"),
    ("医师考试", "规培结业", "单项选择题", "A"),
    ("护理考试", "护士执业资格", "单项选择题", "A"),
    ("护理考试", "护士执业资格", "多项选择题", "BD"),
]


def _cmb(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "cmb"
    (root / "CMB-Exam" / "CMB-test").mkdir(parents=True)
    qs, ans = [], []
    for i, (t, c, q, a) in enumerate(CMB_ITEMS, 1):
        qs.append({"id": i, "exam_type": t, "exam_class": c, "exam_subject": "内科", "question": f"第{i}题",
                   "question_type": q, "option": {k: f"选项{k}{i}" for k in "ABCDE"}})
        ans.append({"id": i, "exam_type": t, "exam_class": c, "exam_subject": "内科", "question_type": q, "answer": a})
    (root / "CMB-Exam" / "CMB-test" / "CMB-test-choice-question-merge.json").write_text(
        json.dumps(qs, ensure_ascii=False, indent=4), encoding="utf-8")
    (root / "CMB-test-choice-answer.json").write_text(json.dumps(ans, ensure_ascii=False, indent=4), encoding="utf-8")
    return tmp_path / "data"


def _run(tmp_path: Path, model: str, *args: str) -> dict:
    out = tmp_path / f"out-{model.replace(':', '_')}"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", model, "--output", str(out), *args]) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    (task,) = results["tasks"].values()
    return {m["name"]: m for m in task["metrics"]} | {"_task": task}


def test_cmb_exam_oracle_and_macro(tmp_path):
    data = _cmb(tmp_path)
    m = _run(tmp_path, "oracle", "--tasks", "cmb-exam", "--data-dir", str(data))
    assert m["acc_exact_set"]["value"] == m["option_f1"]["value"] == m["acc_exact_set_macro"]["value"] == 100.0
    assert m["acc_exact_set_multi"]["n"] == 2 and "acc" not in m and m["_task"]["variant"] == "generate"
    assert set(m["_task"]["subjects"]) == {"医师考试/规培结业", "护理考试/护士执业资格"}
    # always "A": right on items 3 and 4 only. Pooled 2/5 = 40; macro (1/3 + 1/2) / 2 = 41.67;
    # F1: A vs ABCE = 2/5, A vs BD = 0 -> (0 + .4 + 1 + 1 + 0) / 5 = 48
    f = _run(tmp_path, "fixed:A", "--tasks", "cmb-exam", "--data-dir", str(data))
    assert f["acc_exact_set"]["value"] == pytest.approx(40.0)
    assert f["acc_exact_set_macro"]["value"] == pytest.approx(100 * (1 / 3 + 1 / 2) / 2)
    assert f["option_f1"]["value"] == pytest.approx(48.0)


def test_cmb_exam_letter_scoring_refused(tmp_path, capsys):
    data = _cmb(tmp_path)
    code = main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "cmb-exam",
                 "--variant", "paper", "--data-dir", str(data), "--output", str(tmp_path / "o")])
    assert code != 0
    err = capsys.readouterr().err
    assert "item 'test-2'" in err and "--variant generate" in err


def test_cmb_exam_answer_file_errors(tmp_path):
    from chimed_eval.tasks.cmb import load_cmb_exam

    data = _cmb(tmp_path)
    apath = data / "cmb" / "CMB-test-choice-answer.json"
    ans = json.loads(apath.read_text(encoding="utf-8"))
    apath.write_text(json.dumps(ans[:-1], ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError, match="no answer for question id 5"):
        load_cmb_exam(data)
    ans[0]["answer"] = "AB"  # several letters for a 单项选择题
    apath.write_text(json.dumps(ans, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError, match="does not fit a 单项选择题"):
        load_cmb_exam(data)


# --- cmexam, on the real file -------------------------------------------------------------------

needs_cmexam = pytest.mark.skipif(not (SHARED / "cmexam" / "val.xlsx").exists(),
                                  reason="../shared/data/cmexam/val.xlsx is not here (public data, not committed)")


@needs_cmexam
def test_cmexam_counts():
    from chimed_eval.evidence.multi_choice import is_multi
    from chimed_eval.tasks import get_task

    task = get_task("cmexam")
    data = task.load(SHARED)
    # 6,811 rows; row 5358's answer is "nan" (none): 6,810 items, 210 with several answers
    assert len(data.samples) == 6810 and sum(is_multi(s.target) for s in data.samples) == 210
    assert "val-5358" not in {s.id for s in data.samples}
    by_line = {s.metadata["line"]: s for s in data.samples}
    assert by_line[5598].choices[3] == "丁溴东莨菪碱" and by_line[5598].target == 3  # option A missing: relettered
    assert task.default_variant == "generate"


@needs_cmexam
def test_cmexam_oracle_is_100_on_both_figures(tmp_path):
    m = _run(tmp_path, "oracle", "--tasks", "cmexam", "--data-dir", str(SHARED), "--batch-size", "256")
    assert m["acc_exact_set"]["value"] == m["option_f1"]["value"] == 100.0
    assert m["acc_exact_set_multi"]["n"] == 210 and m["_task"]["n"] == 6810
