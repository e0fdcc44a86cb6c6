"""Smaller faults of issue 22 item 19: markup in a task name, a full cache disk, broken judge and
contamination files under the report, temporary files left by a kill, NUL bytes from a judge."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import write_exam_csv, write_qa_run

from chimed_eval.cli.app import main

BAD_NAME = "ev<!--<script>"


def _run(tmp_path: Path, out: Path, *extra: str, n: int = 8) -> int:
    f = tmp_path / "exam.csv"
    if not f.exists():
        write_exam_csv(f, n)
    return main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq",
                 "--task-args", f"path={f}", "--output", str(out), *extra])


def _report(out: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["report", str(out)]) == 0, capsys.readouterr().err
    return (out / "report.html").read_text(encoding="utf-8")


def test_a_task_name_with_markup_is_refused(tmp_path, capsys):
    rc = _run(tmp_path, tmp_path / "o", "--task-args", f"path={write_exam_csv(tmp_path / 'e.csv', 4)},name={BAD_NAME}")
    assert rc == 2 and "task name" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_the_inline_json_of_the_report_cannot_be_broken_by_a_name(tmp_path, monkeypatch, capsys):
    """A run made before names were checked (the check bypassed here) still gives a report whose
    data script holds no '<' and parses back to the name."""
    import chimed_eval.tasks.mcq_spec

    monkeypatch.setattr(chimed_eval.tasks.mcq_spec, "check_task_name", lambda name, what="task name": name)
    out = tmp_path / "o"
    f = write_exam_csv(tmp_path / "e.csv", 4)
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq",
                 "--task-args", f"path={f},name={BAD_NAME}", "--output", str(out)]) == 0
    page = _report(out, capsys)
    data = re.search(r"<script id='report-data' type='application/json'>(.*?)</script>", page, re.DOTALL).group(1)
    assert "<" not in data and ">" not in data
    assert [h["task"] for h in json.loads(data)["headline"]] == [BAD_NAME]
    # the error trap, the data, Chart.js, the shared chart code and the report's: nothing opened by the name
    assert page.count("<script") == 5


def test_a_full_cache_disk_is_one_clear_line_and_the_records_stay(tmp_path, monkeypatch, capsys):
    from chimed_eval.backends.cache import ResponseCache

    opened = ResponseCache._open

    def small_disk(self):  # SQLite's own size cap: writes past it fail as on a full disk (SQLITE_FULL)
        conn = opened(self)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        return conn

    monkeypatch.setattr(ResponseCache, "_open", small_disk)
    write_exam_csv(tmp_path / "exam.csv", 60, stem="第" * 300)  # long prompts: rows fill pages fast
    out, cache = tmp_path / "o", tmp_path / "cache"
    rc = _run(tmp_path, out, "--cache", str(cache), "--batch-size", "2")
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert f"response cache {cache / 'responses.sqlite3'}" in err and "full" in err and "resume" in err
    kept = (out / "samples" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()
    assert 0 < len(kept) < 60  # the batches finished before the disk filled are kept
    monkeypatch.undo()
    assert _run(tmp_path, out, "--cache", str(tmp_path / "cache2"), "--batch-size", "2") == 0  # resumes
    assert len((out / "samples" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()) == 60


def test_broken_judge_and_contamination_files_leave_the_rest_of_the_report(tmp_path, capsys):
    out = tmp_path / "o"
    assert _run(tmp_path, out) == 0
    bad_list = out / "judge" / "pointwise-aaaaaaaaaaaa" / "results.json"
    bad_tasks = out / "judge" / "pointwise-bbbbbbbbbbbb" / "results.json"
    truncated = out / "judge" / "pointwise-cccccccccccc" / "results.json"
    for p, text in ((bad_list, "[1, 2]"), (bad_tasks, '{"tasks": {"my-qa": 3}}'), (truncated, '{"protocol": "judge-po')):
        p.parent.mkdir(parents=True)
        p.write_text(text, encoding="utf-8")
    (out / "results.clean.json").write_text('{"schema_version": "1.', encoding="utf-8")  # cut short
    page = _report(out, capsys)
    for p in (bad_list, bad_tasks, truncated, out / "results.clean.json"):
        assert f"unreadable:</strong> {p}" in page
    assert "<h2>Summary</h2>" in page and "<h2 id='task-mcq'>" in page and page.rstrip().endswith("</html>")


def test_a_later_run_removes_the_temporary_files_a_kill_left(tmp_path):
    out = tmp_path / "o"
    assert _run(tmp_path, out, "--limit", "4") == 0
    stale = [out / "samples" / ".mcq.jsonl.k1l2m3n4.tmp", out / ".results.json.a_b4c5d6.tmp",
             out / ".run.json.zzzzzzzz.tmp"]
    for p in stale:
        p.write_text("partial", encoding="utf-8")
    mine = out / "samples" / "notes.tmp"  # not a temporary file of an atomic write: kept
    mine.write_text("mine", encoding="utf-8")
    assert _run(tmp_path, out, "--limit", "4") == 0
    assert not any(p.exists() for p in stale) and mine.exists()


def test_a_kill_before_the_first_run_json_leaves_an_out_a_later_run_can_use(tmp_path):
    """A SIGKILL during the first atomic write of run.json leaves only ``.run.json.<random>.tmp``:
    that is no foreign content, so the same command runs (and the leftover goes)."""
    out = tmp_path / "o"
    out.mkdir()
    stale = out / ".run.json.q1w2e3r4.tmp"
    stale.write_text("{partial", encoding="utf-8")
    assert _run(tmp_path, out, "--limit", "4") == 0
    assert not stale.exists() and (out / "results.json").is_file()
    foreign = tmp_path / "f"
    foreign.mkdir()
    (foreign / "notes.tmp").write_text("mine", encoding="utf-8")  # not an atomic write's leftover: still refused
    assert _run(tmp_path, foreign, "--limit", "4") == 2


def test_nul_bytes_of_a_judge_verdict_never_reach_the_html(tmp_path, monkeypatch, capsys):
    import chimed_eval.backends.fake_judge as fj

    real = fj.fake_verdict
    monkeypatch.setattr(fj, "fake_verdict", lambda behaviour, context: "\x00\x01" + real(behaviour, context) + "\x00")
    cand = write_qa_run(tmp_path, ["多休息。", "多喝水。"], "cand")
    assert main(["judge", str(cand), "--judge", "judge:score-3", "--judge-backend", "fake", "--no-progress"]) == 0
    page = _report(cand, capsys)
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", page)
    assert "\\x00\\x01" in page  # shown, escaped


@pytest.mark.parametrize("name", ["a b", "x/y", ".hidden", "a<b", "a&b", 'a"b', "tab\there", "nul\x00"])
def test_task_name_check(name):
    from chimed_eval.core.errors import ConfigError
    from chimed_eval.tasks.config import check_task_name

    with pytest.raises(ConfigError):
        check_task_name(name)
    assert check_task_name("内科-exam_2.v1") == "内科-exam_2.v1"
