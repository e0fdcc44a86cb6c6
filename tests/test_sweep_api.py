"""``chimed_eval.sweep(...)`` (issue 27): the sweep at the package door, with evaluate's run options
(keywords or a RunConfig), returning a typed result whose units equal the runs made alone; the
Python API page's sweep snippet runs. One local Ray instance for the module (the sweep uses it).
``import chimed_eval`` and the attribute itself import no Ray."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import chimed_eval  # noqa: E402
from chimed_eval.core.errors import BudgetReached, ConfigError  # noqa: E402
from conftest import ROOT, write_exam_csv  # noqa: E402

TASK = "ceval-medical-paper"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_sweep_returns_typed_units_equal_to_evaluate(tmp_path, shared_data):
    config = chimed_eval.RunConfig(limit=10, progress=False)
    s = chimed_eval.sweep("oracle,random", [TASK], tmp_path / "S", backend="fake", config=config, seed=7,
                          data_dir=shared_data, workers=1, resources={"CPU": 1, "gpu": 0})
    assert isinstance(s, chimed_eval.SweepResult) and s.ok and not s.failed
    assert [(u.model, u.task, u.status) for u in s.results] == [("oracle", TASK, "done"), ("random", TASK, "done")]
    assert s.unit("random", TASK).output == tmp_path / "S" / "random" / TASK and s.unit("oracle", TASK).seconds > 0
    for m in ("oracle", "random"):  # each unit: the figures of evaluate() made alone with the same options
        alone = chimed_eval.evaluate(m, [TASK], backend="fake", limit=10, seed=7, data_dir=shared_data,
                                     progress=False, output=tmp_path / "alone" / m)
        unit = s.run(m, TASK)
        assert unit.to_rows() == alone.to_rows() and unit.settings["seed"] == 7
        assert [x.id for x in unit.samples(TASK)] == [x.id for x in alone.samples(TASK)]
        assert (tmp_path / "S" / m / TASK / "samples" / f"{TASK}.jsonl").read_bytes() == \
            (tmp_path / "alone" / m / "samples" / f"{TASK}.jsonl").read_bytes()
    rows = s.to_pandas()
    assert list(rows.columns[:6]) == ["model", "task", "status", "n", "metric", "value"]
    assert rows[(rows.model == "oracle") & (rows.metric == "acc")].value.tolist() == [100.0]
    assert json.loads((tmp_path / "S" / "summary.json").read_text())["figures"] == [dict(r) for r in s.rows]
    # the same call resumes: every unit complete, nothing run again
    again = chimed_eval.sweep(["oracle", "random"], TASK, tmp_path / "S", backend="fake", config=config, seed=7,
                              data_dir=shared_data)
    assert {u.status for u in again.results} == {"complete"}
    figures = ("model", "task", "n", "metric", "value", "ci_low", "ci_high", "prompt_tokens", "completion_tokens")
    assert [[r[k] for k in figures] for r in again.rows] == [[r[k] for k in figures] for r in s.rows]
    with pytest.raises(KeyError, match="no unit"):
        again.unit("gpt-4", TASK)


def test_sweep_refuses_bad_options_before_running(tmp_path):
    with pytest.raises(TypeError, match="unknown run options nope"):
        chimed_eval.sweep(["oracle"], [TASK], tmp_path / "S", backend="fake", nope=1)
    with pytest.raises(ConfigError, match="unknown resource 'TPU'"):
        chimed_eval.sweep(["oracle"], [TASK], tmp_path / "S", backend="fake", resources={"TPU": 1})
    with pytest.raises(ConfigError, match="workers=0"):
        chimed_eval.sweep(["oracle"], [TASK], tmp_path / "S", backend="fake", workers=0)
    with pytest.raises(ConfigError, match="shards=N, not shard="):
        chimed_eval.sweep(["oracle"], [TASK], tmp_path / "S", backend="fake", shard="0/2")
    with pytest.raises(ConfigError, match="no models"):
        chimed_eval.sweep(" , ", [TASK], tmp_path / "S", backend="fake")
    assert not (tmp_path / "S").exists()


def test_sweep_budget_stop_carries_the_result_and_a_higher_budget_resumes(tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 6)
    cfg = tmp_path / "tasks.toml"
    cfg.write_text("".join(f'[[tasks]]\nname = "t{i}"\npath = "{exam}"\n\n' for i in range(2)), encoding="utf-8")
    common = dict(backend="fake", task_config=cfg, variant="generate", progress=False, shards=2)
    with pytest.raises(BudgetReached) as stop:
        chimed_eval.sweep(["random:1"], ["t0", "t1"], tmp_path / "S", max_tokens=1, **common)
    partial = stop.value.result
    assert not partial.ok and {u.status for u in partial.results} & {"budget", "not scheduled"}
    with pytest.raises(ConfigError, match="not complete"):
        partial.run("random:1", "t1")
    done = chimed_eval.sweep(["random:1"], ["t0", "t1"], tmp_path / "S", **common)
    assert done.ok and done.run("random:1", "t1").tasks[0].n == 6  # two shards merged into the unit


def test_docs_python_api_sweep_snippet_runs(shared_data, tmp_path, monkeypatch, capsys):
    for lang in ("en", "zh"):
        page = (ROOT / "docs" / lang / "howto" / "python-api.md").read_text(encoding="utf-8")
        blocks = re.findall(r"```python\n(.*?)```", page, re.S)
        code = next(b for b in blocks if "chimed_eval.sweep(" in b)
        monkeypatch.setenv("CHIMED_EVAL_DATA", str(shared_data))
        monkeypatch.chdir(tmp_path)
        exec(compile(code, f"docs/{lang}/howto/python-api.md", "exec"), {})
        out = capsys.readouterr().out
        assert f"oracle {TASK} {'done' if lang == 'en' else 'complete'}" in out and "100.0" in out


def test_import_and_attribute_load_no_ray():
    code = ("import sys, chimed_eval; chimed_eval.sweep; chimed_eval.SweepResult; "
            "print(sorted(m for m in ('ray', 'torch', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
