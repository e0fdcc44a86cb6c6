"""Regression checks: the golden runs match their committed baselines, and `check` says what moved
with the documented exit codes (0 ok, 1 metric regression, 2 usage error, 3 item set or prompt
changed)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from chimed_eval.reports.check import EXIT_CHANGED, EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, parse_tolerance
from chimed_eval.cli.app import main
from golden.regenerate import GOLDEN, run_golden

GOLDEN_BY_NAME = {g.name: g for g in GOLDEN}


def check(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["check", *argv])
    return rc, capsys.readouterr().out


def golden_check(capsys, name: str, out: Path) -> tuple[int, str]:
    g = GOLDEN_BY_NAME[name]
    return check(capsys, str(out), "--baseline", str(g.baseline), *(("--tolerance", g.tolerance) if g.tolerance else ()))


# --- the golden runs CI checks on every run ---------------------------------------------------------


@pytest.mark.parametrize("name", ["fake-exam", "fake-exam-generate"])
def test_golden_fake_run_matches_its_baseline(tmp_path, capsys, name):
    out = run_golden(GOLDEN_BY_NAME[name], tmp_path)
    rc, text = golden_check(capsys, name, out)
    assert rc == EXIT_OK, text


@pytest.mark.slow
def test_golden_tiny_model_run_matches_its_baseline(tiny_model, tmp_path, capsys):
    out = run_golden(GOLDEN_BY_NAME["tiny-exam"], tmp_path, model=tiny_model)
    rc, text = golden_check(capsys, "tiny-exam", out)
    assert rc == EXIT_OK, text


@pytest.mark.parametrize("name", ["fake-real-mcq", "fake-real-gen"])
def test_golden_real_task_slices_match_their_baselines(shared_data, tmp_path, capsys, name):
    out = run_golden(GOLDEN_BY_NAME[name], tmp_path, data=shared_data)
    rc, text = golden_check(capsys, name, out)
    assert rc == EXIT_OK, text


def test_golden_baselines_hold_hashes_and_metrics_only():
    for g in GOLDEN:
        text = g.baseline.read_text(encoding="utf-8")
        doc = json.loads(text)
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in text), f"{g.baseline} holds Chinese text"
        for t in doc["tasks"].values():
            assert set(t) <= {"n", "items_sha256", "prompts_sha256", "variant", "shots", "data_sha256", "metrics", "items"}
            assert all(len(h) == 64 for _, h in t["items"])
        assert "/" not in json.dumps(doc["settings"]), "no local paths in a committed baseline"


# --- a deliberately changed prompt template ----------------------------------------------------------


def test_changed_prompt_template_fails_with_the_prompt_hash_reason(tmp_path, capsys, monkeypatch):
    import chimed_eval.task.multiple_choice as task_module

    original = task_module.render_paper

    def reworded(*args, **kwargs):  # the instruction of the paper template, reworded
        p = original(*args, **kwargs)
        return dataclasses.replace(p, prefix=p.prefix.replace("请选择正确的答案", "请选出正确答案"),
                                   context=p.context.replace("请选择正确的答案", "请选出正确答案"))

    monkeypatch.setattr(task_module, "render_paper", reworded)
    out = run_golden(GOLDEN_BY_NAME["fake-exam"], tmp_path)
    rc, text = golden_check(capsys, "fake-exam", out)
    assert rc == EXIT_CHANGED
    assert "prompt hash of 24/24 items (exam-2, exam-3" in text and "CHANGED" in text
    assert "an item set or a prompt changed" in text


# --- exit codes on hand-made changes -----------------------------------------------------------------


@pytest.fixture()
def base_run(tmp_path) -> Path:
    return run_golden(GOLDEN_BY_NAME["fake-exam"], tmp_path / "base")


def _edit_metric(out: Path, name: str, fn) -> None:
    res = json.loads((out / "results.json").read_text())
    res.pop("integrity", None)  # a hand-made results file (no digest): compared as it is, flagged unverified
    for m in res["tasks"]["mcq"]["metrics"]:
        if m["name"] == name:
            fn(m)
    (out / "results.json").write_text(json.dumps(res))


def test_metric_outside_the_interval_is_a_regression(base_run, tmp_path, capsys):
    baseline = tmp_path / "b.json"
    assert main(["check", str(base_run), "--save-baseline", str(baseline)]) == 0
    rc, text = check(capsys, str(base_run), "--baseline", str(baseline))
    assert rc == EXIT_OK and "0 moved" in text

    hi = json.loads(baseline.read_text())["tasks"]["mcq"]["metrics"][0]["ci_high"]
    _edit_metric(base_run, "acc", lambda m: m.update(value=hi + 0.5))
    rc, text = check(capsys, str(base_run), "--baseline", str(baseline))
    assert rc == EXIT_REGRESSION
    row = next(line for line in text.splitlines() if line.startswith("mcq") and "acc (paper)" in line)
    assert "REGRESSION" in row and "acc_macro" not in row
    # a tolerance, global or per metric, lets it pass; the most specific one wins
    assert check(capsys, str(base_run), "--baseline", str(baseline), "--tolerance", "50")[0] == EXIT_OK
    assert check(capsys, str(base_run), "--baseline", str(baseline), "--tolerance", "acc=50")[0] == EXIT_OK
    assert check(capsys, str(base_run), "--baseline", str(baseline), "--tolerance", "50,mcq:acc=0")[0] == EXIT_REGRESSION


def test_figures_from_model_floats_allow_their_float_noise_and_nothing_more(base_run, tmp_path, capsys):
    """ece and brier move in their last bits from one CPU to another (the tiny golden model: 9.9e-7
    points of ece): within their stated noise they pass, with the default and with tolerance 0;
    a real move still fails, and an accuracy stays exact."""
    baseline = tmp_path / "b.json"
    assert main(["check", str(base_run), "--save-baseline", str(baseline)]) == 0
    _edit_metric(base_run, "ece", lambda m: m.update(value=m["value"] - 9.9e-7))
    _edit_metric(base_run, "brier", lambda m: m.update(value=m["value"] + 3e-8))
    for tolerance in ((), ("--tolerance", "0")):
        rc, text = check(capsys, str(base_run), "--baseline", str(baseline), "--all", *tolerance)
        assert rc == EXIT_OK, text
        row = next(line for line in text.splitlines() if line.startswith("mcq") and "ece (paper)" in line)
        assert "±0.0001" in row and "float noise" in row, row
    _edit_metric(base_run, "ece", lambda m: m.update(value=m["value"] + 2e-4))
    rc, text = check(capsys, str(base_run), "--baseline", str(baseline), "--tolerance", "0")
    assert rc == EXIT_REGRESSION and "ece (paper)" in text, text
    _edit_metric(base_run, "ece", lambda m: m.update(value=m["value"] - 2e-4))
    _edit_metric(base_run, "acc", lambda m: m.update(value=m["value"] + 1e-6))
    rc, text = check(capsys, str(base_run), "--baseline", str(baseline), "--tolerance", "0")
    assert rc == EXIT_REGRESSION and "acc (paper)" in text and "ece (paper)" not in text, text


def test_missing_metric_and_changed_protocol_are_regressions(base_run, tmp_path, capsys):
    baseline = tmp_path / "b.json"
    main(["check", str(base_run), "--save-baseline", str(baseline)])
    _edit_metric(base_run, "brier", lambda m: m.update(protocol="lm-eval"))
    rc, text = check(capsys, str(base_run), "--baseline", str(baseline))
    assert rc == EXIT_REGRESSION and "protocol paper->lm-eval" in text
    res = json.loads((base_run / "results.json").read_text())
    res["tasks"]["mcq"]["metrics"] = [m for m in res["tasks"]["mcq"]["metrics"] if m["name"] != "brier"]
    (base_run / "results.json").write_text(json.dumps(res))
    rc, text = check(capsys, str(base_run), "--baseline", str(baseline))
    assert rc == EXIT_REGRESSION and "missing" in text


def test_changed_item_set_exits_3_and_names_the_items(tmp_path, capsys):
    g = GOLDEN_BY_NAME["fake-exam"]
    short = dataclasses.replace(g, argv=(*g.argv, "--limit", "20"))
    out = run_golden(short, tmp_path)
    rc, text = check(capsys, str(out), "--baseline", str(g.baseline))
    assert rc == EXIT_CHANGED
    assert "item set (-4 +0: -exam-22, -exam-23, -exam-24)" in text


def test_a_run_directory_serves_as_baseline_with_per_item_prompt_hashes(base_run, tmp_path, capsys, monkeypatch):
    import chimed_eval.task.multiple_choice as task_module

    original = task_module.render_paper

    def one_changed(subject, shots, question, choices):
        p = original(subject, shots, question, choices)
        if question.startswith("第5题"):
            return dataclasses.replace(p, context=p.context + " ")
        return p

    monkeypatch.setattr(task_module, "render_paper", one_changed)
    other = run_golden(GOLDEN_BY_NAME["fake-exam"], tmp_path / "other")
    rc, text = check(capsys, str(other), "--baseline", str(base_run))
    assert rc == EXIT_CHANGED and "prompt hash of 1/24 items (exam-7)" in text


def test_missing_task_is_a_change_and_usage_errors_exit_2(base_run, tmp_path, capsys):
    g = GOLDEN_BY_NAME["fake-exam"]
    doc = json.loads(g.baseline.read_text())
    doc["tasks"]["other-task"] = doc["tasks"]["mcq"]
    (tmp_path / "b.json").write_text(json.dumps(doc))
    rc, text = check(capsys, str(base_run), "--baseline", str(tmp_path / "b.json"), "--tolerance", "0")
    assert rc == EXIT_CHANGED and "other-task" in text and "missing" in text

    assert main(["check", str(base_run), "--baseline", str(tmp_path / "nope.json")]) == EXIT_USAGE
    assert main(["check", str(base_run)]) == EXIT_USAGE
    assert main(["check", str(base_run), "--baseline", str(g.baseline), "--tolerance", "acc=x"]) == EXIT_USAGE
    assert "not found" in capsys.readouterr().err


def test_parse_tolerance():
    t = parse_tolerance("0.5,acc=1,mcq:f1=2")
    assert t.for_("x", "bleu") == 0.5 and t.for_("x", "acc") == 1 and t.for_("mcq", "f1") == 2 and t.for_("y", "f1") == 0.5
    assert parse_tolerance(None).for_("t", "acc") is None


def test_check_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = capsys.readouterr().out
    for code in ("0  every", "1  regression", "2  usage", "3  an item set"):
        assert code in text
