"""End to end on the fake backend: item counts, oracle = 100%, schema, re-scoring, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from conftest import write_exam_csv

SCHEMA = Path(__file__).resolve().parents[1] / "chimed_eval" / "schema" / "results.schema.json"


def validate(results: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(results, json.loads(SCHEMA.read_text()))


def load(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def metric(res: dict, task: str, name: str = "acc") -> dict:
    return next(m for m in res["tasks"][task]["metrics"] if m["name"] == name)


def run_cli(*argv: str) -> int:
    return main(["run", "--no-progress", *argv])


@pytest.mark.parametrize("task,n", [("ceval-medical-paper", 41), ("cmmlu-medical-paper", 1166), ("medqa-mcmle", 3426),
                                    ("safetybench-zh", 2100)])
def test_paper_item_counts_and_oracle(shared_data, tmp_path, task, n):
    out = tmp_path / "o"
    assert run_cli("--backend", "fake", "--model", "oracle", "--tasks", task, "--output", str(out),
                   "--data-dir", str(shared_data)) == 0
    res = load(out)
    validate(res)
    assert res["tasks"][task]["n"] == n
    assert metric(res, task)["value"] == 100.0
    lines = (out / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == n
    rec = json.loads(lines[0])
    assert {"id", "subject", "prompt", "prompt_hash", "logprobs", "prediction", "gold", "score"} <= set(rec)


def test_cmmlu_subject_counts(shared_data, tmp_path):
    out = tmp_path / "o"
    run_cli("--backend", "fake", "--model", "fixed:A", "--tasks", "cmmlu-medical-paper", "--output", str(out),
            "--data-dir", str(shared_data))
    subj = load(out)["tasks"]["cmmlu-medical-paper"]["subjects"]
    assert {k: v["n"] for k, v in subj.items()} == {
        "traditional_chinese_medicine": 185, "anatomy": 148, "virology": 169, "genetics": 176,
        "college_medical_statistics": 106, "nutrition": 145, "clinical_knowledge": 237}


def test_fixed_answer_scores_the_share_of_that_letter(tmp_path):
    data = tmp_path / "data"
    f = write_exam_csv(tmp_path / "exam.csv", 20, "AABC")  # 10 of 20 golds are A
    out = tmp_path / "o"
    run_cli("--backend", "fake", "--model", "fixed:A", "--tasks", "mcq", "--task-args", f"path={f}",
            "--output", str(out), "--data-dir", str(data))
    res = load(out)
    validate(res)
    assert metric(res, "mcq")["value"] == 50.0
    assert res["tasks"]["mcq"]["n"] == 20


def test_limit_takes_the_first_items_in_order(tmp_path):
    f = write_exam_csv(tmp_path / "exam.csv", 30)
    out = tmp_path / "o"
    run_cli("--backend", "fake", "--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f}", "--limit", "7",
            "--output", str(out))
    ids = [json.loads(x)["id"] for x in (out / "samples" / "mcq.jsonl").read_text().splitlines()]
    assert ids == [f"exam-{i}" for i in range(2, 9)]


def test_generate_variant_with_oracle_and_failures(tmp_path):
    f = write_exam_csv(tmp_path / "exam.csv", 8)
    out = tmp_path / "o"
    run_cli("--backend", "fake", "--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f}",
            "--variant", "generate", "--output", str(out))
    assert metric(load(out), "mcq")["value"] == 100.0
    out2 = tmp_path / "o2"
    run_cli("--backend", "fake", "--model", "fixed:不知道", "--tasks", "mcq", "--task-args", f"path={f}",
            "--variant", "generate", "--output", str(out2))
    res = load(out2)
    assert metric(res, "mcq")["value"] == 0.0
    assert metric(res, "mcq", "extraction_failure_rate")["value"] == 100.0
    assert res["tasks"]["mcq"]["extraction_failures"] == 8


def test_score_recomputes_metrics_from_samples(tmp_path):
    f = write_exam_csv(tmp_path / "exam.csv", 40)
    out = tmp_path / "o"
    run_cli("--backend", "fake", "--model", "random", "--tasks", "mcq", "--task-args", f"path={f}", "--output", str(out))
    before = load(out)
    # Tamper with one stored log-probability so that the prediction flips: score must notice.
    path = out / "samples" / "mcq.jsonl"
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    gold_idx = "ABCD".index(recs[0]["gold"])
    recs[0]["logprobs"] = [10.0 if i == gold_idx else -10.0 for i in range(4)]
    was_right = recs[0]["score"] == 1.0
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    assert main(["score", str(out)]) == 0
    after = load(out)
    validate(after)
    delta = metric(after, "mcq")["value"] - metric(before, "mcq")["value"]
    assert delta == pytest.approx(0.0 if was_right else 100.0 / 40)
    assert after["tasks"]["mcq"]["items_sha256"] == before["tasks"]["mcq"]["items_sha256"]


def test_rerun_with_other_settings_is_refused(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 5)
    out = tmp_path / "o"
    run_cli("--backend", "fake", "--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f}", "--output", str(out))
    rc = run_cli("--backend", "fake", "--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f}",
                 "--output", str(out), "--seed", "7")
    assert rc == 2 and "other settings" in capsys.readouterr().err


def test_missing_data_says_what_to_put_where(tmp_path, capsys):
    rc = run_cli("--backend", "fake", "--model", "oracle", "--tasks", "cmmlu-medical-paper", "--output",
                 str(tmp_path / "o"), "--data-dir", str(tmp_path / "nodata"))
    err = capsys.readouterr().err
    assert rc == 2 and "cmmlu" in err and "chimed-eval data" in err


def test_unknown_task_suggests(tmp_path, capsys):
    rc = run_cli("--backend", "fake", "--model", "oracle", "--tasks", "cmmlu-medical-papr", "--output", str(tmp_path / "o"))
    assert rc == 2 and "Did you mean 'cmmlu-medical-paper'" in capsys.readouterr().err


def _cli(out: Path, exam: Path, delay: str) -> list[str]:
    return [sys.executable, "-m", "chimed_eval.cli.app", "run", "--backend", "fake", "--model", "random",
            "--tasks", "mcq", "--task-args", f"path={exam}", "--batch-size", "4", "--model-args", f"delay={delay}",
            "--output", str(out), "--no-progress"]


def _strip(res: dict) -> dict:
    res = dict(res)
    res.pop("created")
    res["settings"] = {k: v for k, v in res["settings"].items() if k != "model_args"}
    res["integrity"] = {k: v for k, v in res["integrity"].items() if k in ("version", "samples")}  # settings differ
    return res


def test_sigkill_and_resume_matches_an_uninterrupted_run(tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 120)
    ref = tmp_path / "ref"
    subprocess.run(_cli(ref, exam, "0"), check=True, capture_output=True)

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(out, exam, "0.05"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = out / "samples" / "mcq.jsonl"
    deadline = time.time() + 30
    while time.time() < deadline and (not samples.exists() or len(samples.read_text().splitlines()) < 20):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(samples.read_text().splitlines())
    assert 0 < partial < 120, "the run should have been killed mid-way"
    assert not (out / "results.json").exists()

    # same command again (the delay is not a result-changing setting... but it is a model arg, so
    # it must match: resume with the same command)
    subprocess.run(_cli(out, exam, "0.05"), check=True, capture_output=True)
    a, b = load(ref), load(out)
    assert _strip(a) == _strip(b)
    assert (ref / "samples" / "mcq.jsonl").read_text() == (out / "samples" / "mcq.jsonl").read_text()


def test_torn_last_line_is_recomputed(tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 10)
    out = tmp_path / "o"
    subprocess.run(_cli(out, exam, "0"), check=True, capture_output=True)
    full = (out / "samples" / "mcq.jsonl").read_text()
    lines = full.splitlines(keepends=True)
    (out / "samples" / "mcq.jsonl").write_text("".join(lines[:6]) + lines[6][:25])  # torn write
    (out / "results.json").unlink()
    subprocess.run(_cli(out, exam, "0"), check=True, capture_output=True)
    assert (out / "samples" / "mcq.jsonl").read_text() == full
