"""``chimed-eval sweep`` on a local Ray instance (issue 27): each unit equals the run made alone,
a complete unit is skipped, a spent budget stops the sweep and a higher one resumes it, and
killing worker processes mid-sweep (by PID) loses nothing and counts no unit twice.

One local Ray instance for the module (the sweep uses it rather than starting its own)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from chimed_eval.cli.app import main  # noqa: E402
from chimed_eval.core.errors import BUDGET_EXIT, ConfigError  # noqa: E402
from conftest import write_exam_csv  # noqa: E402

MODELS = ("oracle", "random")
TASKS = ("ceval-medical-paper", "cmmlu-medical-paper")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def comparable(out: Path) -> dict:
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    res.pop("created")  # when the figures were sealed: the one field that differs between two runs
    return {"results": res, "run": json.loads((out / "run.json").read_text(encoding="utf-8")),
            "samples": {p.name: p.read_bytes() for p in sorted((out / "samples").glob("*.jsonl"))}}


def test_four_unit_sweep_equals_four_single_runs_and_resumes(tmp_path, capsys):
    s = tmp_path / "S"
    limit = ["--limit", "30"]
    assert main(["sweep", "--backend", "fake", "--models", ",".join(MODELS), "--tasks", ",".join(TASKS),
                 "--output", str(s), "--no-progress", *limit]) == 0
    printed = capsys.readouterr().out
    assert "4 units" in printed and "summary:" in printed
    for m in MODELS:
        for t in TASKS:
            single = tmp_path / "single" / m / t
            assert main(["run", "--backend", "fake", "--model", m, "--tasks", t, "--output", str(single),
                         "--no-progress", *limit]) == 0
            assert comparable(s / m / t) == comparable(single), (m, t)
            assert (s / m / t / "run.json").read_bytes() == (single / "run.json").read_bytes()
    summary = json.loads((s / "summary.json").read_text(encoding="utf-8"))
    assert sorted((u["model"], u["task"], u["status"]) for u in summary["units"]) == \
        sorted((m, t, "done") for m in MODELS for t in TASKS)
    rows = (s / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("model,task,status,n,metric,value")
    assert any(r.startswith("oracle,ceval-medical-paper,done,30,acc,100.0") for r in rows)
    # the same command again: every unit is complete and skipped, nothing changes
    before = {m: comparable(s / m / TASKS[0]) for m in MODELS}
    assert main(["sweep", "--backend", "fake", "--models", ",".join(MODELS), "--tasks", ",".join(TASKS),
                 "--output", str(s), "--no-progress", *limit]) == 0
    summary = json.loads((s / "summary.json").read_text(encoding="utf-8"))
    assert {u["status"] for u in summary["units"]} == {"complete"}
    assert {m: comparable(s / m / TASKS[0]) for m in MODELS} == before
    # other settings into the same tree are refused, naming what differs
    assert main(["sweep", "--backend", "fake", "--models", "oracle", "--tasks", TASKS[0], "--output", str(s),
                 "--limit", "5"]) == 2
    assert "config.limit" in capsys.readouterr().err


def test_budget_stops_the_sweep_and_a_higher_one_resumes(tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 8)
    cfg = tmp_path / "tasks.toml"
    cfg.write_text("".join(f'[[tasks]]\nname = "t{i}"\npath = "{exam}"\n\n' for i in range(3)), encoding="utf-8")
    args = ["sweep", "--backend", "fake", "--models", "random:1,random:2", "--tasks", "t0,t1,t2", "--task-config",
            str(cfg), "--variant", "generate", "--output", str(tmp_path / "S"), "--no-progress"]
    assert main([*args, "--max-tokens", "1"]) == BUDGET_EXIT
    err = capsys.readouterr().err
    assert "budget: sweep stopped after" in err and "higher budget to resume" in err
    statuses = [u["status"] for u in json.loads((tmp_path / "S" / "summary.json").read_text())["units"]]
    assert "not scheduled" in statuses or "budget" in statuses
    assert main(args) == 0
    units = json.loads((tmp_path / "S" / "summary.json").read_text())["units"]
    assert len(units) == 6 and all(u["status"] in ("done", "complete") for u in units)


def test_killing_workers_mid_sweep_loses_nothing_and_counts_no_unit_twice(tmp_path):
    from chimed_eval.cli.rebuild import task_getter
    from chimed_eval.engine.api import RunConfig
    from chimed_eval.engine.distribute import RunSpec
    from chimed_eval.engine.sweep import run_sweep
    from chimed_eval.tasks.factory import build_tasks

    exam = write_exam_csv(tmp_path / "exam.csv", 12)
    cfg = tmp_path / "tasks.toml"
    names = [f"t{i}" for i in range(4)]
    cfg.write_text("".join(f'[[tasks]]\nname = "{n}"\npath = "{exam}"\n\n' for n in names), encoding="utf-8")
    config = RunConfig(batch_size=2, task_config=cfg, progress=False)
    # 0.1 s per batch of two: about 0.6 s per unit, so a kill lands inside a unit
    spec = RunSpec("fake", {"delay": "0.1"}, None, config, build_tasks)
    killed: list[int] = []
    ended: list[tuple[str, str]] = []

    partial: list[int] = []

    def on_result(o) -> None:
        ended.append((o.unit.model, o.unit.tasks[0]))
        if len(killed) < 2 and o.pid is not None and o.pid not in killed and o.unit.tasks[0] == "t0":
            # the worker is busy with its next unit, t1 (two are queued per worker): once that unit has
            # written a batch, kill the worker in the middle of it
            records = tmp_path / "S" / o.unit.model / "t1" / "samples" / "t1.jsonl"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (records.exists() and records.read_text().count("\n") >= 2):
                time.sleep(0.01)
            os.kill(o.pid, signal.SIGKILL)
            killed.append(o.pid)
            partial.append(records.read_text().count("\n") if records.exists() else 0)

    models = ["random:1", "random:2"]
    result = run_sweep(models, names, tmp_path / "S", spec, get_task=lambda d: task_getter(cfg, d), max_retries=3,
                   on_result=on_result)
    assert len(killed) == 2 and all(0 < n < 12 for n in partial), partial  # both kills landed inside a unit
    assert sorted(ended) == sorted((m, t) for m in models for t in names)  # each unit ended once
    assert not result.failed and len(result.units) == 8
    t1 = [u for u in result.units if u["task"] == "t1"]
    assert all(not set(u["pids"]) & set(killed) for u in t1)  # the killed units were finished by restarted workers
    for m in models:
        for t in names:
            out = tmp_path / "S" / m / t
            ids = [json.loads(x)["id"] for x in (out / "samples" / f"{t}.jsonl").read_text().splitlines()]
            assert len(ids) == 12 and len(set(ids)) == 12  # nothing lost, nothing twice
            single = tmp_path / "single" / m / t
            assert main(["run", "--backend", "fake", "--model", m, "--tasks", t, "--task-config", str(cfg),
                         "--batch-size", "2", "--model-args", "delay=0.1", "--output", str(single),
                         "--no-progress"]) == 0
            assert comparable(out) == comparable(single)
    with pytest.raises(ConfigError, match="given twice"):
        run_sweep(["a", "a"], names, tmp_path / "T", spec, get_task=lambda d: task_getter(cfg, d))


def test_sharded_units_merge_into_the_single_run(tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 11)
    cfg = tmp_path / "tasks.toml"
    cfg.write_text(f'[[tasks]]\nname = "t0"\npath = "{exam}"\n', encoding="utf-8")
    common = ["--backend", "fake", "--tasks", "t0", "--task-config", str(cfg), "--batch-size", "2", "--no-progress"]
    assert main(["sweep", "--models", "random:3", "--shards", "3", "--output", str(tmp_path / "S"), *common]) == 0
    out = tmp_path / "S" / "random:3" / "t0"
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["0-of-3", "1-of-3", "2-of-3"]
    assert main(["run", "--model", "random:3", "--output", str(tmp_path / "single"), *common]) == 0
    assert comparable(out) == comparable(tmp_path / "single")
    assert json.loads((out / "usage.json").read_text(encoding="utf-8"))["run"]["requests"] == 11
