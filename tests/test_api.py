"""The public Python API (issue 23 items 1 and 2): chimed_eval.evaluate / read_run / RunResult,
``python -m chimed_eval`` and ``--version``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import chimed_eval
from chimed_eval.cli.app import main
from conftest import ROOT

TASK = "ceval-medical-paper"
SHADOWS = ("tasks.py", "training.py", "leaderboards.py")


@pytest.fixture
def bare_dirs(tmp_path, monkeypatch):
    """A working directory holding files named like our plug-in packages, and a private temp dir:
    after a run without an output directory both must hold nothing new."""
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    for name in SHADOWS:
        (cwd / name).write_text("raise ImportError('the user module was imported')\n", encoding="utf-8")
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    return cwd, tmp


def test_done_when_oracle_in_memory_writes_nothing(shared_data, bare_dirs):
    cwd, tmp = bare_dirs
    r = chimed_eval.evaluate(model="oracle", backend="fake", tasks=[TASK], data_dir=str(shared_data), progress=False)
    df = r.to_pandas()
    acc = df[(df.task == TASK) & (df.metric == "acc")].iloc[0]
    assert acc.value == 100.0 and acc.n == 41 and acc.model == "fake-oracle"
    assert {"task", "metric", "value", "ci_low", "ci_high", "n", "averaging", "protocol", "model"} <= set(df.columns)
    assert sorted(p.name for p in cwd.iterdir()) == sorted(SHADOWS)
    assert list(tmp.iterdir()) == []
    records = list(r.samples(TASK))
    assert len(records) == 41 and all(s.score == 1.0 for s in records)


def test_same_figures_and_records_as_the_cli(shared_data, tmp_path):
    out = tmp_path / "o"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", TASK, "--limit", "20",
                 "--output", str(out), "--data-dir", str(shared_data)]) == 0
    mem = chimed_eval.evaluate("random", [TASK], backend="fake", data_dir=shared_data, limit=20, progress=False)
    disk = chimed_eval.read_run(out)
    assert disk.integrity == "verified"
    assert mem.tasks == disk.tasks and mem.model == disk.model
    assert mem.to_rows() == disk.to_rows()
    assert list(mem.samples(TASK)) == list(disk.samples(TASK))
    lines = (out / "samples" / f"{TASK}.jsonl").read_text(encoding="utf-8").splitlines()
    assert [s.id for s in disk.samples(TASK)] == [json.loads(x)["id"] for x in lines]


def test_output_writes_a_resumable_run_directory(shared_data, tmp_path):
    out = tmp_path / "o"
    r = chimed_eval.evaluate("oracle", TASK, backend="fake", data_dir=shared_data, output=out, limit=5, progress=False)
    assert (out / "results.json").is_file() and (out / "run.json").is_file()
    assert [s.id for s in r.samples(TASK)] == [s.id for s in chimed_eval.read_run(out).samples(TASK)]
    again = chimed_eval.evaluate("oracle", TASK, backend="fake", data_dir=shared_data, output=out, limit=5, progress=False)
    assert again.tasks == r.tasks


def test_task_objects_and_a_typed_config(shared_data):
    from chimed_eval.tasks import get_task

    config = chimed_eval.RunConfig(limit=8, shots=1, progress=False)
    by_object = chimed_eval.evaluate("oracle", [get_task(TASK)], backend="fake", data_dir=shared_data, config=config)
    by_name = chimed_eval.evaluate(Path("oracle"), [TASK], backend="fake", data_dir=shared_data, config=config)
    assert by_object.tasks == by_name.tasks
    assert by_object.tasks[0].n == 8 and by_object.tasks[0].shots == 1


def test_unknown_run_option_is_named(shared_data):
    with pytest.raises(TypeError, match="unknown run options limmit"):
        chimed_eval.evaluate("oracle", [TASK], backend="fake", data_dir=shared_data, limmit=3)


def test_a_backend_instance_is_used_and_not_closed(shared_data):
    from chimed_eval.backends.fake import FakeBackend

    class Counted(FakeBackend):
        closed = 0

        def close(self) -> None:
            Counted.closed += 1

    backend = Counted(model="fixed:A", seed=1)
    r = chimed_eval.evaluate(backend, [TASK], data_dir=shared_data, limit=6, progress=False)
    assert r.model.name == backend.model_info().name
    assert {s.prediction for s in r.samples(TASK)} == {"A"}
    assert Counted.closed == 0


def test_samples_of_a_task_not_in_the_run(shared_data):
    r = chimed_eval.evaluate("oracle", [TASK], backend="fake", data_dir=shared_data, limit=2, progress=False)
    with pytest.raises(KeyError, match="no task 'cmb-exam'"):
        r.samples("cmb-exam")


def test_to_pandas_without_pandas_says_what_to_install(shared_data, monkeypatch):
    r = chimed_eval.evaluate("oracle", [TASK], backend="fake", data_dir=shared_data, limit=2, progress=False)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        r.to_pandas()


def test_import_is_light_and_lazy():
    probe = ("import sys, chimed_eval; assert 'evaluate' in dir(chimed_eval); f = chimed_eval.read_run, chimed_eval.evaluate; "
             "c = chimed_eval.RunConfig; print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"chimed-eval {chimed_eval.__version__}"


def test_python_m_chimed_eval():
    out = subprocess.run([sys.executable, "-m", "chimed_eval", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == f"chimed-eval {chimed_eval.__version__}"


def test_docs_python_api_example_runs(shared_data, bare_dirs, monkeypatch, capsys):
    page = (ROOT / "docs" / "en" / "howto" / "python-api.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    monkeypatch.setenv("CHIMED_EVAL_DATA", str(shared_data))
    exec(compile(code, "docs/en/howto/python-api.md", "exec"), {})
    out = capsys.readouterr().out
    assert "acc" in out and "100.0" in out


def test_done_when_from_a_directory_with_shadowing_files(shared_data, tmp_path):
    for name in SHADOWS:
        (tmp_path / name).write_text("raise ImportError('the user module was imported')\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    code = ("import chimed_eval; r = chimed_eval.evaluate(model='oracle', backend='fake', tasks=['ceval-medical-paper'], "
            f"data_dir={str(shared_data)!r}, progress=False); print(r.to_pandas().to_json(orient='records'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    acc = next(row for row in json.loads(out.stdout) if row["metric"] == "acc")
    assert acc["value"] == 100.0 and acc["n"] == 41
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*SHADOWS, "tmp"]) and not any((tmp_path / "tmp").iterdir())
    run = subprocess.run([sys.executable, "-m", "chimed_eval", "run", "--no-progress", "--backend", "fake", "--model",
                          "oracle", "--tasks", TASK, "--data-dir", str(shared_data), "--output", "o"],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "o" / "results.json").read_text(encoding="utf-8"))["tasks"][TASK]["n"] == 41


@pytest.mark.slow
def test_a_loaded_transformers_model_scores_as_its_directory(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from conftest import write_exam_csv

    exam = write_exam_csv(tmp_path / "exam.csv", 6)
    kw = dict(task_args={"path": str(exam)}, data_dir=tmp_path, progress=False)
    by_path = chimed_eval.evaluate(str(tiny_model), ["mcq"], device="cpu", dtype="float32", use_cache=False, **kw)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype="float32", attn_implementation="eager")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    for given in ({"model": (model, tokenizer)}, {"model": model, "tokenizer": tokenizer}):
        loaded = chimed_eval.evaluate(tasks=["mcq"], **given, **kw)
        assert loaded.model.dtype == "float32" and loaded.model.path == str(tiny_model)
        want, got = list(by_path.samples("mcq")), list(loaded.samples("mcq"))
        assert [s.prediction for s in got] == [s.prediction for s in want]
        for a, b in zip(got, want):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    assert model.training is False and hasattr(model, "config")  # still the caller's, usable
