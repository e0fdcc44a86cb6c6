"""Sharded runs (--shard i/n) merged with `chimed-eval merge`, and --data-parallel N, give what one
process gives: the same samples, run.json and results.json (apart from its creation time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError
from chimed_eval.engine.parallel import shard_dir, shard_from_env
from conftest import write_exam_csv


def run(*argv: str) -> int:
    return main([*argv, "--no-progress"] if argv[0] == "run" else list(argv))


def comparable(out: Path) -> dict:
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    res.pop("created")
    return {"results": res, "run": json.loads((out / "run.json").read_text(encoding="utf-8")),
            "samples": {p.name: p.read_text(encoding="utf-8") for p in sorted((out / "samples").glob("*.jsonl"))}}


@pytest.fixture
def exam_tasks(tmp_path) -> list[str]:
    exam = write_exam_csv(tmp_path / "exam.csv", 23)
    dev = write_exam_csv(tmp_path / "dev.csv", 4, "DCBA", stem="例")  # not copies of test items
    cfg = tmp_path / "tasks.toml"
    cfg.write_text(f'[[tasks]]\nname = "exam-a"\npath = "{exam}"\nfewshot = "{dev}"\n\n'
                   f'[[tasks]]\nname = "exam-b"\npath = "{dev}"\nfewshot = "{exam}"\n', encoding="utf-8")
    return ["--tasks", "exam-a,exam-b", "--task-config", str(cfg), "--shots", "2"]


@pytest.mark.parametrize("n", [1, 3, 5])
def test_merged_shards_equal_a_single_process(tmp_path, exam_tasks, n):
    common = ["--backend", "fake", "--model", "random", *exam_tasks, "--variant", "lm-eval", "--batch-size", "4"]
    assert run("run", *common, "--output", str(tmp_path / "single")) == 0
    dirs = []
    for i in range(n):
        assert run("run", *common, "--shard", f"{i}/{n}", "--output", str(tmp_path / "s{shard}")) == 0
        dirs.append(tmp_path / f"s{i}-of-{n}")
    sizes = [len((d / "samples" / "exam-a.jsonl").read_text().splitlines()) for d in dirs]
    assert sum(sizes) == 23 and max(sizes) - min(sizes) <= 1
    assert sum(len((d / "samples" / "exam-b.jsonl").read_text().splitlines()) for d in dirs) == 4
    assert run("merge", *map(str, reversed(dirs)), "--output", str(tmp_path / "merged"),
               "--task-config", exam_tasks[3]) == 0
    assert comparable(tmp_path / "merged") == comparable(tmp_path / "single")


@pytest.mark.slow
def test_merged_shards_equal_a_single_process_on_the_tiny_model(tmp_path, tiny_model, exam_tasks):
    common = ["--model", str(tiny_model), *exam_tasks, "--variant", "paper", "--device", "cpu", "--no-cache"]
    assert run("run", *common, "--output", str(tmp_path / "single")) == 0
    for i in range(2):
        assert run("run", *common, "--shard", f"{i}/2", "--output", str(tmp_path / f"s{i}")) == 0
    assert run("merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--output", str(tmp_path / "merged"),
               "--task-config", exam_tasks[3]) == 0
    a, b = comparable(tmp_path / "merged"), comparable(tmp_path / "single")
    assert a["run"] == b["run"]
    # A real model's log-probabilities move in the last float bits with the batch composition,
    # which sharding changes; everything else is identical.
    for name in a["samples"]:
        ra, rb = ([json.loads(x) for x in d["samples"][name].splitlines()] for d in (a, b))
        assert [r.pop("logprobs") for r in ra] == [pytest.approx(r.pop("logprobs"), abs=1e-5) for r in rb]
        assert ra == rb
    # ece and brier are computed from those probabilities, so they move in the last bits too
    ta, tb = a["results"]["tasks"], b["results"]["tasks"]
    for name in ta:
        ma, mb = ta[name].pop("metrics"), tb[name].pop("metrics")
        assert [m["name"] for m in ma] == [m["name"] for m in mb]
        for x, y in zip(ma, mb):
            for k in ("value", "ci_low", "ci_high"):
                assert x[k] == (y[k] if y[k] is None else pytest.approx(y[k], abs=1e-6)), (name, x["name"], k)
    assert ta == tb


def test_data_parallel_runs_shards_as_ray_workers_and_merges(tmp_path, exam_tasks):
    pytest.importorskip("ray")
    common = ["--backend", "fake", "--model", "random", *exam_tasks, "--cache", str(tmp_path / "cache")]
    assert run("run", *common, "--output", str(tmp_path / "single")) == 0
    assert run("run", *common, "--data-parallel", "3", "--output", str(tmp_path / "dp")) == 0
    assert sorted(p.name for p in (tmp_path / "dp" / "shards").iterdir() if p.is_dir()) == ["0-of-3", "1-of-3", "2-of-3"]
    assert comparable(tmp_path / "dp") == comparable(tmp_path / "single")
    usage = json.loads((tmp_path / "dp" / "usage.json").read_text(encoding="utf-8"))  # the shards' usage, merged
    assert usage["run"]["requests"] == 27 and usage["tasks"]["exam-b"]["requests"] == 4
    # the same command again: every shard is complete, nothing is recomputed, same output
    assert run("run", *common, "--data-parallel", "3", "--output", str(tmp_path / "dp")) == 0
    assert comparable(tmp_path / "dp") == comparable(tmp_path / "single")


def test_merge_refuses_shards_that_do_not_belong_together(tmp_path, exam_tasks, capsys):
    common = ["--backend", "fake", "--model", "random", *exam_tasks]
    for i in range(3):
        run("run", *common, "--shard", f"{i}/3", "--output", str(tmp_path / f"s{i}"))
    run("run", *common, "--shard", "2/3", "--seed", "7", "--output", str(tmp_path / "other-seed"))
    run("run", "--backend", "fake", "--model", "oracle", *exam_tasks, "--shard", "2/3", "--output", str(tmp_path / "other-model"))
    run("run", *common, "--output", str(tmp_path / "whole"))
    cases = {
        ("s0", "s1"): "missing \\[2\\]",
        ("s0", "s1", "s1", "s2"): "repeated \\[1\\]",
        ("s0", "s1", "other-seed"): "other settings.*seed",
        ("s0", "s1", "other-model"): "other settings.*\\[.model.\\]",
        ("s0", "s1", "whole"): "not a shard",
    }
    for dirs, msg in cases.items():
        assert run("merge", *(str(tmp_path / d) for d in dirs), "--output", str(tmp_path / "m"),
                   "--task-config", exam_tasks[3]) == 2
        assert len(__import__("re").findall(msg, capsys.readouterr().err)) == 1, dirs
    # an unfinished shard (a run killed half-way) is named, not merged
    lines = (tmp_path / "s1" / "samples" / "exam-a.jsonl").read_text().splitlines()
    (tmp_path / "s1" / "samples" / "exam-a.jsonl").write_text("\n".join(lines[:-2]) + "\n")
    assert run("merge", *(str(tmp_path / f"s{i}") for i in range(3)), "--output", str(tmp_path / "m"),
               "--task-config", exam_tasks[3]) == 2
    # records cut after the shard's results.json was written no longer match its digest
    assert f"{tmp_path / 's1' / 'samples' / 'exam-a.jsonl'}: the records changed" in capsys.readouterr().err
    res = json.loads((tmp_path / "s1" / "results.json").read_text(encoding="utf-8"))
    res.pop("integrity")  # a shard written by an older version: no digest, the count still tells
    (tmp_path / "s1" / "results.json").write_text(json.dumps(res), encoding="utf-8")
    assert run("merge", *(str(tmp_path / f"s{i}") for i in range(3)), "--output", str(tmp_path / "m"),
               "--task-config", exam_tasks[3]) == 2
    assert "finish that shard first" in capsys.readouterr().err


def test_shard_specs_and_launcher_environments(tmp_path):
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "4"}) == "1/4"
    assert shard_from_env({"SLURM_PROCID": "3", "SLURM_NTASKS": "8"}) == "3/8"
    assert shard_from_env({"VLLM_DP_RANK": "0", "VLLM_DP_SIZE": "2"}) == "0/2"
    with pytest.raises(ConfigError, match="no launcher environment"):
        shard_from_env({})
    assert shard_dir(tmp_path / "out-{shard}", "2/4") == tmp_path / "out-2-of-4"
    assert run("run", "--backend", "fake", "--model", "oracle", "--tasks", "mcq", "--task-args",
               f"path={write_exam_csv(tmp_path / 'e.csv', 5)}", "--shard", "4/4", "--output", str(tmp_path / "x")) == 2

