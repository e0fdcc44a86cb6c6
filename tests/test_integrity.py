"""Runs that are never replaced or trusted blindly (issue 22, items 11 and 12).

* ``merge --output`` refuses an OUT that is not empty and not an earlier merge of the same
  shards (another run, one of the shards), leaving it byte for byte as it was.
* results.json is sealed with a digest of its figures, records and run.json pins
  (:mod:`chimed_eval.runs.integrity`): every reader that presents figures (leaderboard, report, check,
  check --save-baseline, merge) refuses figures or records edited alone (exit 2 naming the file),
  flags what cannot be checked (older versions) and ``score`` recomputes and re-seals.
* ``merge`` recomputes the figures from the records as ``score`` does: one rule.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.runs.reader import read_run
from conftest import write_exam_csv


def run(*argv: str) -> int:
    return main([*argv, "--no-progress"] if argv[0] == "run" else list(argv))


def snapshot(d: Path) -> dict[str, bytes]:
    """Every file under ``d`` (but the lock) by relative path."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != ".chimed-eval.lock"}


def acc(out: Path) -> float:
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return next(m["value"] for m in res["tasks"]["mcq"]["metrics"] if m["name"] == "acc")


@pytest.fixture
def exam(tmp_path) -> list[str]:
    path = write_exam_csv(tmp_path / "exam.csv", 15)
    return ["--backend", "fake", "--tasks", "mcq", "--task-args", f"path={path}"]


@pytest.fixture
def shards(tmp_path, exam) -> list[Path]:
    dirs = [tmp_path / f"s{i}" for i in range(2)]
    for i, d in enumerate(dirs):
        assert run("run", *exam, "--model", "random", "--shard", f"{i}/2", "--output", str(d)) == 0
    return dirs


# --- item 11: merge never overwrites a run ---------------------------------------------------------


def test_merge_into_a_directory_holding_another_run_is_refused_and_leaves_it_unchanged(tmp_path, exam, shards, capsys):
    oracle = tmp_path / "oracle"
    assert run("run", *exam, "--model", "oracle", "--output", str(oracle)) == 0
    before = snapshot(oracle)
    assert run("merge", *map(str, shards), "--output", str(oracle)) == 2
    err = capsys.readouterr().err
    assert f"merge: {oracle} is not empty" in err and "not an earlier merge of these shards" in err
    assert snapshot(oracle) == before  # results.json, run.json and records untouched
    # so a later run into it still reports the oracle's figures, not the random model's
    assert run("run", *exam, "--model", "oracle", "--output", str(oracle)) == 0
    assert acc(oracle) == 100.0


def test_merge_into_one_of_its_own_shards_is_refused(tmp_path, shards, capsys):
    before = snapshot(shards[0])
    assert run("merge", *map(str, shards), "--output", str(shards[0])) == 2
    assert "is not empty" in capsys.readouterr().err
    assert snapshot(shards[0]) == before


def test_an_earlier_merge_of_the_same_shards_may_be_redone_but_not_one_of_other_shards(tmp_path, exam, shards, capsys):
    out = tmp_path / "m"
    assert run("merge", *map(str, shards), "--output", str(out)) == 0
    merged_from = json.loads((out / "merged_from.json").read_text(encoding="utf-8"))
    assert len(merged_from["digests"]) == 2 and all(d["samples"]["mcq"] for d in merged_from["digests"])
    first = snapshot(out)
    assert run("merge", *map(str, shards), "--output", str(out)) == 0  # the same shards: allowed
    assert {k: v for k, v in snapshot(out).items() if k != "results.json"} == \
        {k: v for k, v in first.items() if k != "results.json"}
    other = [tmp_path / f"o{i}" for i in range(2)]
    for i, d in enumerate(other):
        assert run("run", *exam, "--model", "random", "--seed", "9", "--shard", f"{i}/2", "--output", str(d)) == 0
    before = snapshot(out)
    assert run("merge", *map(str, other), "--output", str(out)) == 2
    assert "records other shards" in capsys.readouterr().err
    assert snapshot(out) == before


def test_data_parallel_refuses_a_directory_holding_another_run_before_any_shard_runs(tmp_path, exam, capsys):
    oracle = tmp_path / "oracle"
    assert run("run", *exam, "--model", "oracle", "--output", str(oracle)) == 0
    before = snapshot(oracle)
    assert run("run", *exam, "--model", "random", "--data-parallel", "2", "--output", str(oracle)) == 2
    assert "is not empty" in capsys.readouterr().err
    assert snapshot(oracle) == before and not (oracle / "shards").exists()


# --- item 12: figures are verified against their digest and records ---------------------------------


def _edit_results(out: Path, fn) -> None:
    path = out / "results.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    fn(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")


def _set_acc(value: float):
    def fn(doc: dict) -> None:
        next(m for m in doc["tasks"]["mcq"]["metrics"] if m["name"] == "acc")["value"] = value
    return fn


def _readers(out: Path, tmp_path: Path, baseline: Path) -> dict[str, list[str]]:
    return {"leaderboard": ["leaderboard", str(out), "--no-write"],
            "report": ["report", str(out), "--output", str(tmp_path / "r.html")],
            "check": ["check", str(out), "--baseline", str(baseline)],
            "save-baseline": ["check", str(out), "--save-baseline", str(tmp_path / "b2.json")],
            "compare": ["compare", str(out), str(out)]}


def test_a_hand_edited_results_json_is_refused_by_every_reader_that_presents_figures(tmp_path, exam, capsys):
    out = tmp_path / "r"
    assert run("run", *exam, "--model", "random", "--output", str(out)) == 0
    baseline = tmp_path / "b.json"
    assert run("check", str(out), "--save-baseline", str(baseline)) == 0
    assert read_run(out).integrity == "verified"
    _edit_results(out, _set_acc(91.5))
    for name, argv in _readers(out, tmp_path, baseline).items():
        capsys.readouterr()
        assert run(*argv) == 2, name
        err = capsys.readouterr().err
        assert f"{out / 'results.json'}: the figures do not match the digest" in err, (name, err)
    assert not (tmp_path / "b2.json").exists()  # no baseline built from edited figures
    # removing the digest as well does not make the edit pass unnoticed: it reads as unverified
    _edit_results(out, lambda d: d.pop("integrity"))
    assert run("leaderboard", str(out), "--no-write") == 0
    assert "unverified" in capsys.readouterr().out
    # `score` recomputes every figure from the records and seals them again
    assert run("score", str(out)) == 0
    assert acc(out) != 91.5 and read_run(out).integrity == "verified"
    assert run("check", str(out), "--baseline", str(baseline)) == 0


def test_records_edited_after_the_figures_are_refused_and_score_recomputes(tmp_path, exam, capsys):
    out = tmp_path / "r"
    assert run("run", *exam, "--model", "random", "--output", str(out)) == 0
    baseline = tmp_path / "b.json"
    assert run("check", str(out), "--save-baseline", str(baseline)) == 0
    path = out / "samples" / "mcq.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[0])
    rec["logprobs"] = [0.0 if i == "ABCD".index(rec["gold"]) else -9.0 for i in range(4)]  # now right
    path.write_text("\n".join([json.dumps(rec, ensure_ascii=False), *lines[1:]]) + "\n", encoding="utf-8")
    for name, argv in _readers(out, tmp_path, baseline).items():
        if name == "compare":
            continue  # compare reads the records themselves, not the figures
        capsys.readouterr()
        assert run(*argv) == 2, name
        assert f"{path}: the records changed after results.json was written" in capsys.readouterr().err, name
    before = acc(out)
    assert run("score", str(out)) == 0
    assert acc(out) > before and read_run(out).integrity == "verified"


def test_an_edited_run_json_is_refused(tmp_path, exam, capsys):
    out = tmp_path / "r"
    assert run("run", *exam, "--model", "random", "--output", str(out)) == 0
    doc = json.loads((out / "run.json").read_text(encoding="utf-8"))
    doc["settings"]["seed"] = 99
    (out / "run.json").write_text(json.dumps(doc), encoding="utf-8")
    assert run("report", str(out), "--output", str(tmp_path / "r.html")) == 2
    assert f"{out / 'run.json'}: settings changed after results.json was written" in capsys.readouterr().err


def test_a_results_json_without_a_digest_is_read_and_flagged_unverified(tmp_path, exam, capsys):
    out = tmp_path / "r"
    assert run("run", *exam, "--model", "random", "--output", str(out)) == 0
    _edit_results(out, lambda d: d.pop("integrity"))  # as an older chimed-eval wrote it
    assert read_run(out).unverified.startswith("no digest")
    assert run("leaderboard", str(out), "--no-write") == 0
    assert "unverified: fake-random's figures were not checked" in capsys.readouterr().out
    assert run("report", str(out), "--output", str(tmp_path / "r.html")) == 0
    assert "id='unverified'" in (tmp_path / "r.html").read_text(encoding="utf-8")
    capsys.readouterr()
    assert run("check", str(out), "--save-baseline", str(tmp_path / "b.json")) == 0
    assert "figures unverified: no digest" in capsys.readouterr().err
    assert run("check", str(out), "--baseline", str(tmp_path / "b.json")) == 0
    assert "figures vs records" in capsys.readouterr().out


def test_a_later_run_into_the_same_directory_never_seals_edited_or_unchecked_figures(tmp_path, exam, capsys):
    exam_b = write_exam_csv(tmp_path / "b.csv", 6, stem="乙")
    out = tmp_path / "r"
    assert run("run", *exam, "--model", "random", "--output", str(out)) == 0
    task_b = ["--backend", "fake", "--model", "random", "--tasks", "mcq", "--task-args", f"path={exam_b},name=exam-b",
              "--output", str(out)]  # the mcq task type under another name
    _edit_results(out, _set_acc(91.5))
    assert run("run", *task_b) == 2
    assert "the figures do not match the digest" in capsys.readouterr().err
    _edit_results(out, lambda d: d.pop("integrity"))  # an older version's file: carried, flagged
    assert run("run", *task_b) == 0
    res = read_run(out)
    assert {t.task for t in res.tasks} == {"mcq", "exam-b"}
    assert "mcq carried over from a results.json without a digest" in res.unverified


# --- item 12: merge and score, one rule -------------------------------------------------------------


def test_merge_recomputes_figures_from_the_records_as_score_does(tmp_path, shards):
    path = shards[0] / "samples" / "mcq.jsonl"
    recs = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    wrong = next(r for r in recs if r["score"] == 0.0)
    wrong["score"] = 1.0  # a stored per-record score that its log-probabilities do not support
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    assert run("score", str(shards[0])) == 0  # the shard's figures recomputed and sealed again
    merged = tmp_path / "m"
    assert run("merge", *map(str, shards), "--output", str(merged)) == 0
    rescored = tmp_path / "m-rescored"
    shutil.copytree(merged, rescored)
    assert run("score", str(rescored)) == 0
    assert acc(merged) == acc(rescored)
    single = tmp_path / "single"
    assert run("run", "--backend", "fake", "--model", "random", "--tasks", "mcq", "--task-args",
               f"path={tmp_path / 'exam.csv'}", "--output", str(single)) == 0
    assert acc(merged) == acc(single)  # the stored score of the edited record counts nowhere


def test_merge_refuses_a_shard_whose_figures_were_edited(tmp_path, shards, capsys):
    _edit_results(shards[1], _set_acc(91.5))
    assert run("merge", *map(str, shards), "--output", str(tmp_path / "m")) == 2
    assert f"{shards[1] / 'results.json'}: the figures do not match the digest" in capsys.readouterr().err
    assert not (tmp_path / "m" / "results.json").exists()
