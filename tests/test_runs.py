"""The one reader of runs (`chimed_eval.runs.reader`): what the writer wrote comes back as the same typed
records; a torn last line is skipped as the runner skips it; a corrupt file is an error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError
from chimed_eval.runs.records import SampleStore, run_result_to_dict, write_json_atomic
from chimed_eval.core.types import record_to_score, score_to_record
from chimed_eval.runs.reader import iter_samples, read_run, read_run_state
from chimed_eval.core.types import Metric, ModelInfo, RunResult, SampleScore, TaskResult
from conftest import write_exam_csv

H = "a" * 64


def _scores() -> list[SampleScore]:
    return [
        SampleScore("q1", "anatomy", "问题一\u2028续", "p1", "A", "A", 1.0, logprobs=(-0.1, -2.0), extra={"n_choices": 2}),
        SampleScore("q2", None, "问题二", "p2", "B", None, 0.0, generation="无法回答\u0085", extraction_failed=True),
    ]


def _fake_run(out: Path) -> RunResult:
    """A run written the way the runner writes one, without running anything."""
    task = TaskResult("mcq", 2, H, H, {"exam.csv": H},
                      (Metric("acc", 50.0, 0.0, 100.0, 2, "items", "paper", None), Metric("count", 3, n=2)),
                      {"anatomy": {"n": 1, "acc": 100.0}}, "paper", 2, 1)
    rr = RunResult("1.0", ModelInfo("m", "/models/m", None, None, "float32"), {"seed": 7}, (task,), "2024-01-01T00:00:00")
    write_json_atomic(out / "results.json", run_result_to_dict(rr))
    write_json_atomic(out / "run.json", {"format": 2, "settings": {"seed": 7},
                                         "tasks": {"mcq": {"variant": "paper", "shots": 2, "n": 2,
                                                           "data_files": {"exam.csv": H}, "items_sha256": H,
                                                           "kind": "mcq"}}})
    SampleStore(out, "mcq").finalize([score_to_record(s) for s in _scores()])
    return rr


def test_a_written_run_reads_back_as_the_same_records(tmp_path):
    rr = _fake_run(tmp_path)
    assert read_run(tmp_path) == rr == read_run(tmp_path / "results.json")
    assert isinstance(read_run(tmp_path).tasks[0].metrics[1].value, int)  # an int stays an int
    assert list(iter_samples(tmp_path, "mcq")) == _scores()  # U+2028 and U+0085 do not cut a record
    state = read_run_state(tmp_path)
    assert (state.format, state.seed, state.tasks["mcq"].variant, state.tasks["mcq"].shots) == (2, 7, "paper", 2)
    doc = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert state.tasks["mcq"].to_dict() == doc["tasks"]["mcq"]  # keys it does not know come back too
    assert list(iter_samples(tmp_path, "no-such-task")) == []


def test_a_real_run_reads_back_as_what_the_runner_wrote(tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 6)
    out = tmp_path / "out"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "mcq",
                 "--task-args", f"path={exam}", "--output", str(out)]) == 0
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert res.pop("integrity")["version"] == 1  # the digest sealed with the figures
    assert run_result_to_dict(read_run(out)) == res and read_run(out).integrity == "verified"
    lines = (out / "samples" / "mcq.jsonl").read_bytes().split(b"\n")
    assert list(iter_samples(out, "mcq")) == [record_to_score(json.loads(x)) for x in lines if x]
    state = read_run_state(out)
    assert {k: v.to_dict() for k, v in state.tasks.items()} == json.loads((out / "run.json").read_text())["tasks"]


def test_a_torn_last_line_is_skipped_as_the_runner_skips_it(tmp_path):
    _fake_run(tmp_path)
    path = tmp_path / "samples" / "mcq.jsonl"
    torn = json.dumps(score_to_record(SampleScore("q3", None, "p", "h", "A", "A", 1.0)), ensure_ascii=False)
    with open(path, "ab") as f:
        f.write(b"\n[1, 2]\n" + torn[: len(torn) // 2].encode("utf-8"))
    assert [s.id for s in iter_samples(tmp_path, "mcq")] == ["q1", "q2"]
    assert list(SampleStore(tmp_path, "mcq").load()) == ["q1", "q2"]


def _edit(path: Path, fn) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    fn(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")


CORRUPT = [  # (file, its reader, the edit, a phrase the error holds)
    ("results.json", read_run, lambda p: p.write_text("{", encoding="utf-8"), "invalid JSON"),
    ("results.json", read_run, lambda p: p.write_bytes(b"\xff\xfe"), "not UTF-8"),
    ("results.json", read_run, lambda p: p.write_text("[1]", encoding="utf-8"), "expected a 'tasks' object"),
    ("results.json", read_run, lambda p: _edit(p, lambda d: d["tasks"]["mcq"]["metrics"][0].update(value="50")),
     "task 'mcq': metric 1 'acc': 'value'"),
    ("results.json", read_run, lambda p: _edit(p, lambda d: d["tasks"]["mcq"].pop("items_sha256")),
     "task 'mcq': lacks 'items_sha256'"),
    ("results.json", read_run, lambda p: _edit(p, lambda d: d.update(model="m")), "'model' must be dict"),
    ("results.json", read_run, lambda p: p.unlink(), "no results.json there"),
    ("run.json", read_run_state, lambda p: p.write_text("{", encoding="utf-8"), "not valid JSON"),
    ("run.json", read_run_state, lambda p: _edit(p, lambda d: d.pop("tasks")), "needs 'settings' and 'tasks'"),
    ("run.json", read_run_state, lambda p: _edit(p, lambda d: d["tasks"]["mcq"].update(shots="2")),
     "task 'mcq': 'shots' must be int"),
    ("run.json", read_run_state, lambda p: p.unlink(), "not found"),
]


@pytest.mark.parametrize("name,reader,edit,phrase", CORRUPT)
def test_a_corrupt_file_is_an_error_naming_it(tmp_path, name, reader, edit, phrase):
    _fake_run(tmp_path)
    edit(tmp_path / name)
    with pytest.raises(ConfigError) as e:
        reader(tmp_path)
    assert str(e.value).startswith(str(tmp_path / name)) and phrase in str(e.value), str(e.value)


def test_a_record_that_is_not_a_sample_is_an_error_naming_the_file(tmp_path):
    _fake_run(tmp_path)
    path = tmp_path / "samples" / "mcq.jsonl"
    path.write_text(json.dumps({"id": "x", "prompt": "p"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mcq.jsonl: record 'x' is not a sample record"):
        list(iter_samples(tmp_path, "mcq"))
