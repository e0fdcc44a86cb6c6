"""Your own data files, second pass (issue 22, items 24-27), on small files written here in the
layouts users have: a partial CMB-Exam question file, C-Eval-style per-split ids, empty final
doctor turns, skipped rows in the run summary, validate and acc_macro wording, the ``dialogue``
task kind, ``where=`` and ``subject=@file`` for ``mcq``, and the commands of the how-to pages."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import DataError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "en" / "howto"


def _fake(out: Path, *args: str, model: str = "oracle") -> int:
    return main(["run", "--no-progress", "--backend", "fake", "--model", model, "--output", str(out), *args])


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def _jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# --- item 24: a CMB-Exam question file covering part of the answers ----------------------------------


def test_cmb_exam_refuses_a_question_file_covering_part_of_the_answers_with_counts(tmp_path, capsys):
    root = tmp_path / "data" / "cmb"
    root.mkdir(parents=True)
    classes = [("医师考试", "规培结业"), ("护理考试", "护士执业资格"), ("药师考试", "执业药师")]
    answers = [{"id": i, "exam_type": t, "exam_class": c, "question_type": "单项选择题", "answer": "A"}
               for i, (t, c) in enumerate((x for x in classes for _ in range(2)), 1)]
    questions = [{**{k: a[k] for k in ("id", "exam_type", "exam_class", "question_type")}, "exam_subject": "内科",
                  "question": f"第{a['id']}题", "option": {"A": "甲", "B": "乙"}} for a in answers[:2]]
    (root / "CMB-test-choice-question-merge.json").write_text(json.dumps(questions, ensure_ascii=False), encoding="utf-8")
    (root / "CMB-test-choice-answer.json").write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    assert _fake(tmp_path / "o", "--tasks", "cmb-exam", "--data-dir", str(tmp_path / "data")) == 2
    err = capsys.readouterr().err
    assert "covers 2 of the 6 questions answered in CMB-test-choice-answer.json (1 of 3 sub-categories" in err, err
    assert not (tmp_path / "o" / "results.json").exists()


# --- item 25: per-split ids are not leakage -------------------------------------------------------


def _ceval_split(folder: Path, split: str, stem: str, n: int) -> None:
    """C-Eval's layout: <subject>_<split>.csv with an id column restarting at 0 in each split."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["id,question,A,B,C,D,answer,年份"]
    lines += [f"{i},{stem}{split}第{i}题,甲{i},乙{i},丙{i},丁{i},{'ABCD'[i % 4]},{2022 + i % 2}" for i in range(n)]
    (folder / f"{stem}_{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_ceval_style_ids_restarting_in_each_split_are_not_called_shared_items(tmp_path):
    for stem in ("内科", "外科"):
        _ceval_split(tmp_path / "exam" / "test", "test", stem, 4)
        _ceval_split(tmp_path / "exam" / "dev", "dev", stem, 2)
    args = f"path={tmp_path / 'exam' / 'test'},fewshot={tmp_path / 'exam' / 'dev'},id=id"
    assert _fake(tmp_path / "o", "--tasks", "mcq", "--task-args", args, "--shots", "2") == 0
    assert _results(tmp_path / "o")["tasks"]["mcq"]["n"] == 8
    # a shot copying a test item's question is still refused, whatever its id
    (tmp_path / "exam" / "dev" / "内科_dev.csv").write_text(
        "id,question,A,B,C,D,answer\n9,内科test第1题,甲1,乙1,丙1,丁1,B\n", encoding="utf-8")
    with pytest.raises(DataError, match="shares the question text with test item"):
        from chimed_eval.tasks.mcq import McqSpec, load_mcq
        load_mcq(McqSpec(path=str(tmp_path / "exam" / "test"), fewshot=str(tmp_path / "exam" / "dev"), id="id"))


# --- item 27: mcq where= and subject=@file ---------------------------------------------------------


def test_mcq_subject_from_the_file_name_gives_the_macro_and_per_subject_shots(tmp_path):
    for stem, n in (("内科", 4), ("外科", 2)):
        _ceval_split(tmp_path / "exam" / "test", "test", stem, n)
        _ceval_split(tmp_path / "exam" / "dev", "dev", stem, 1)
    args = f"path={tmp_path / 'exam' / 'test'},fewshot={tmp_path / 'exam' / 'dev'},id=id,subject=@file"
    assert _fake(tmp_path / "o", "--tasks", "mcq", "--task-args", args, "--shots", "1", model="fixed:A") == 0
    task = _results(tmp_path / "o")["tasks"]["mcq"]
    assert set(task["subjects"]) == {"内科", "外科"}
    m = {x["name"]: x["value"] for x in task["metrics"]}
    # always A: 内科 items 0 (A) of 4 right -> 25; 外科 item 0 of 2 -> 50; macro 37.5, pooled 2/6
    assert m["acc_macro"] == pytest.approx(37.5) and m["acc"] == pytest.approx(100 * 2 / 6)
    recs = [json.loads(x) for x in (tmp_path / "o" / "samples" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()]
    wai = next(r for r in recs if r["subject"] == "外科")
    assert "外科dev第0题" in wai["prompt"] and "内科dev" not in wai["prompt"]  # the shot of its own subject


def test_mcq_where_keeps_the_matching_rows_and_names_a_missing_column(tmp_path, capsys):
    _ceval_split(tmp_path / "exam", "test", "内科", 6)
    path = tmp_path / "exam" / "内科_test.csv"
    assert _fake(tmp_path / "o", "--tasks", "mcq", "--task-args", f"path={path},where=年份=2023") == 0
    recs = (tmp_path / "o" / "samples" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(r)["id"] for r in recs] == ["内科_test-3", "内科_test-5", "内科_test-7"]
    assert _fake(tmp_path / "o2", "--tasks", "mcq", "--task-args", f"path={path},where=year=2023") == 2
    assert "where= names column 'year'" in capsys.readouterr().err


# --- item 26: the smaller ones --------------------------------------------------------------------


def test_an_empty_final_doctor_turn_is_never_a_reference(tmp_path):
    from chimed_eval.tasks.generation_data import load_covid_zh

    root = tmp_path / "dialogue" / "covid_zh"
    root.mkdir(parents=True)
    (root / "test_data.json").write_text(json.dumps(
        [["病人：咳嗽三天了", "医生：发热吗？", "病人：不发热", "医生："]], ensure_ascii=False), encoding="utf-8")
    (s,) = load_covid_zh(tmp_path).samples
    assert s.target == "发热吗？" and [r for r, _ in s.turns] == ["patient"]


def test_run_summary_names_rows_skipped_by_on_invalid_skip(tmp_path, capsys):
    f = tmp_path / "exam.csv"
    f.write_text("question,A,B,answer\n第一题,甲,乙,A\n第二题,甲,乙,Z\n第三题,甲,乙,B\n", encoding="utf-8")
    assert _fake(tmp_path / "o", "--tasks", "mcq", "--task-args", f"path={f},on_invalid=skip") == 0
    out = capsys.readouterr().out
    assert "mcq: 1 row skipped (on_invalid=skip)" in out, out
    assert re.search(r"exam\.csv:3: .*'Z'", out), out


def test_validate_claims_no_option_check_for_tasks_without_options(tmp_path, capsys):
    f = _jsonl(tmp_path / "qa.jsonl", [{"question": "头痛怎么办？", "answer": "休息"}])
    assert main(["validate", "--tasks", "qa", "--task-args", f"path={f}", "--show", "0"]) == 0
    out = capsys.readouterr().out
    assert "qa: 1 items read" in out and "option" not in out, out


def test_acc_macro_is_not_reported_over_one_subject(tmp_path, capsys):
    f = tmp_path / "exam.csv"
    f.write_text("question,A,B,answer,科目\n第一题,甲,乙,A,内科\n第二题,甲,乙,B,内科\n", encoding="utf-8")
    assert _fake(tmp_path / "o", "--tasks", "mcq", "--task-args", f"path={f},subject=科目") == 0
    names = [m["name"] for m in _results(tmp_path / "o")["tasks"]["mcq"]["metrics"]]
    assert "acc" in names and "acc_macro" not in names
    assert "acc_macro (" not in capsys.readouterr().out


# --- item 27: the dialogue task kind ---------------------------------------------------------------

DIALOGUES = [{"编号": "d1", "科室": "呼吸科", "对话": ["病人：咳嗽三天了怎么办？", "医生：有没有发热？", "病人：没有。",
                                                  "医生：多喝水，注意观察。", "医生："]},
             {"编号": "d2", "科室": "心内科", "对话": ["病人:胸闷气短", "医生:先做个心电图"]}]


def _dialogue_records(out: Path, name: str = "dialogue") -> dict[str, dict]:
    lines = (out / "samples" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def test_a_users_dialogue_file_is_scored_on_the_next_doctor_turn_like_the_builtin_tasks(tmp_path):
    f = _jsonl(tmp_path / "dialogues.jsonl", DIALOGUES)
    args = f"path={f},turns=对话,id=编号,patient_prefix=病人：,doctor_prefix=医生："
    assert _fake(tmp_path / "o", "--tasks", "dialogue", "--task-args", args) == 0
    recs = _dialogue_records(tmp_path / "o")
    assert recs["d1"]["gold"] == "多喝水，注意观察。"  # the empty final 医生： is dropped
    assert recs["d1"]["prompt"] == "[human]:咳嗽三天了怎么办？\n[bot]:有没有发热？\n[human]:没有。\n[bot]:"
    assert recs["d2"]["gold"] == "先做个心电图"  # 病人: with an ASCII colon
    m = {x["name"]: x["value"] for x in _results(tmp_path / "o")["tasks"]["dialogue"]["metrics"]}
    assert m["rougeL_char"] == pytest.approx(100.0) and m["sacrebleu4_cum"] == pytest.approx(100.0)
    # the built-in COVID-Dialogue reader gives the same item from the same turns
    from chimed_eval.tasks.generation_data import load_covid_zh

    (tmp_path / "data" / "dialogue" / "covid_zh").mkdir(parents=True)
    (tmp_path / "data" / "dialogue" / "covid_zh" / "test_data.json").write_text(
        json.dumps([DIALOGUES[0]["对话"]], ensure_ascii=False), encoding="utf-8")
    (builtin,) = load_covid_zh(tmp_path / "data").samples
    assert (builtin.input, builtin.target) == (recs["d1"]["prompt"], recs["d1"]["gold"])
    assert main(["score", str(tmp_path / "o")]) == 0


def test_dialogue_turns_as_role_objects_and_errors_name_the_turn(tmp_path, capsys):
    chats = [{"messages": [{"role": "user", "content": "头痛两天"}, {"role": "assistant", "content": "有没有发热？"},
                           {"role": "user", "content": "没有"}, {"role": "assistant", "content": "先休息观察"}]}]
    f = _jsonl(tmp_path / "chats.jsonl", chats)
    assert _fake(tmp_path / "o", "--tasks", "dialogue", "--task-args", f"path={f}") == 0
    assert _dialogue_records(tmp_path / "o")["1"]["gold"] == "先休息观察"
    bad = _jsonl(tmp_path / "bad.jsonl", [{"对话": ["病人：头痛", "护士：量体温"]}])
    assert _fake(tmp_path / "o2", "--tasks", "dialogue", "--task-args", f"path={bad},turns=对话") == 2
    assert f"{bad}:1: field '对话[1]': expected a turn starting 病人：" in capsys.readouterr().err
    only = _jsonl(tmp_path / "only.jsonl", [{"对话": ["病人：头痛", "医生："]}])
    assert _fake(tmp_path / "o3", "--tasks", "dialogue", "--task-args", f"path={only},turns=对话") == 2
    assert "no doctor turn with text after a patient turn" in capsys.readouterr().err


# --- the how-to pages' commands for your own QA, dialogues and exams, run with the fake backend ------------


def _docs_section(page: str, title: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    start = text.index(title)
    end = min(i for i in (text.find("\n## ", start), text.find("\n### ", start + len(title))) if i > 0)
    return text[start:end]


def _commands(section: str) -> list[list[str]]:
    out = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for cmd in block.replace("\\\n", " ").splitlines():
            if cmd.startswith("chimed-eval run"):
                argv = shlex.split(cmd)[1:]
                i = argv.index("--model")
                out.append(argv[:i] + ["--backend", "fake", "--model", "oracle", "--no-progress"] + argv[i + 2:])
    return out


def test_the_docs_commands_for_your_own_qa_and_dialogues_run(tmp_path, monkeypatch):
    section = _docs_section("qa-dialogue.md", "## Your own open QA and dialogues")
    monkeypatch.chdir(tmp_path)
    _jsonl(tmp_path / "qa.jsonl", [{"编号": "q1", "科室": "心内科", "问题": "高血压饮食？", "回答": ["低盐低脂", "限盐"]},
                                   {"编号": "q2", "科室": "神经科", "问题": "偏头痛怎么办？", "回答": "休息"}])
    _jsonl(tmp_path / "dialogues.jsonl", DIALOGUES)
    _jsonl(tmp_path / "chats.jsonl", [{"messages": [{"role": "user", "content": "头痛"},
                                                    {"role": "assistant", "content": "休息"}]}])
    (tmp_path / "tasks.toml").write_text(re.search(r"```toml[^\n]*\n(.*?)```", section, re.S).group(1), encoding="utf-8")
    commands = _commands(section)
    assert len(commands) == 4
    for argv in commands:
        assert main(argv) == 0, argv
    assert _results(tmp_path / "runs" / "my-qa")["tasks"]["qa"]["n"] == 1  # where=科室=心内科
    assert set(_results(tmp_path / "runs" / "mine")["tasks"]) == {"my-qa", "my-dialogue"}


def test_the_docs_command_for_one_file_per_subject_runs(tmp_path, monkeypatch):
    section = _docs_section("own-exam.md", "**One file per subject, and a row filter.**")
    monkeypatch.chdir(tmp_path)
    for stem in ("内科", "外科"):
        _ceval_split(tmp_path / "exam" / "test", "test", stem, 4)
        _ceval_split(tmp_path / "exam" / "dev", "dev", stem, 1)
    (argv,) = _commands(section)
    assert main(argv) == 0
    task = _results(tmp_path / "runs" / "exam-by-file")["tasks"]["mcq"]
    assert task["n"] == 4 and set(task["subjects"]) == {"内科", "外科"}  # 年份=2023: ids 1 and 3 of each file
