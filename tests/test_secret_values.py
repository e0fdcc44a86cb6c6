"""A key under a name that does not look secret never reaches disk or a message (issue 22 item 15):
model and judge arguments are checked against the backend's accepted names before anything is
written, and values that look like keys are redacted whatever their name."""

from __future__ import annotations

import json

import pytest
from conftest import write_exam_csv, write_qa_run

from chimed_eval.cli.app import main

KEY = "sk-live-Q7vX2mB9kL4pR8tW1zY6nC3d"


def _exam_run(tmp_path, out, *extra: str) -> int:
    f = tmp_path / "exam.csv"
    if not f.exists():
        write_exam_csv(f, 4)
    return main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq", "--task-args",
                 f"path={f}", "--output", str(out), *extra])


def _everything_under(path) -> str:
    return "".join(p.read_text(encoding="utf-8", errors="replace") for p in path.rglob("*") if p.is_file())


@pytest.mark.parametrize("args", [f"headers=Authorization: Bearer {KEY}", f"organization={KEY}"])
def test_an_unknown_model_arg_is_refused_before_anything_is_written(tmp_path, capsys, args):
    out = tmp_path / "o"
    assert _exam_run(tmp_path, out, "--model-args", args) == 2
    err = capsys.readouterr().err
    assert KEY not in err and KEY[8:20] not in err
    assert args.split("=")[0] in err and "does not read" in err and "delay" in err  # the name and what it reads
    assert not out.exists()


def test_an_unknown_judge_arg_is_refused_before_anything_is_written(tmp_path, capsys):
    cand = write_qa_run(tmp_path, ["多休息。", "多喝水。"], "cand")
    capsys.readouterr()
    rc = main(["judge", str(cand), "--judge", "judge:score-3", "--judge-backend", "fake", "--no-progress",
               "--judge-args", f"organization={KEY}"])
    captured = capsys.readouterr()
    assert rc == 2 and "organization" in captured.err
    assert KEY not in captured.err + captured.out
    assert not (cand / "judge").exists()
    assert KEY not in _everything_under(cand)


def test_a_key_like_value_under_an_accepted_name_is_redacted_everywhere(tmp_path, capsys):
    out = tmp_path / "o"
    assert _exam_run(tmp_path, out, "--model-args", f"revision={KEY}") == 0
    assert KEY not in capsys.readouterr().out
    written = _everything_under(out)
    assert KEY not in written and "<redacted>" in written
    # a run.json written by an older version with the key in it: the next command's "other settings"
    # error does not show it
    state = json.loads((out / "run.json").read_text(encoding="utf-8"))
    state["settings"]["model_args"] = {"revision": KEY}
    (out / "run.json").write_text(json.dumps(state), encoding="utf-8")
    assert _exam_run(tmp_path, out, "--model-args", "revision=v2") == 2
    err = capsys.readouterr().err
    assert "other settings" in err and KEY not in err and KEY[8:20] not in err


def test_judge_args_holding_a_key_are_redacted_in_judge_json(tmp_path, capsys):
    cand = write_qa_run(tmp_path, ["多休息。"], "cand")
    assert main(["judge", str(cand), "--judge", "judge:score-3", "--judge-backend", "fake", "--no-progress",
                 "--judge-args", f"revision={KEY}"]) == 0
    assert KEY not in capsys.readouterr().out and KEY not in _everything_under(cand / "judge")


@pytest.mark.parametrize("value", [KEY, f"Authorization: Bearer {KEY}", "Bearer abcdefgh12", "hf_aBcDeFgHiJkLmNoPqRsTuV",
                                   "ghp_0123456789abcdefABCDEF", "x" * 3 + "Zx8Qp2Lm9Rt4Vb7Nc1KsW3"])
def test_key_shapes_are_recognised(value):
    from chimed_eval.core.secrets import looks_like_key, redact_args

    assert looks_like_key(value)
    assert redact_args({"anything": value}) == {"anything": "<redacted>"}


@pytest.mark.parametrize("value", ["Qwen/Qwen2.5-0.5B-Instruct", "meta-llama/Meta-Llama-3.1-8B-Instruct", "chatml",
                                   "8f3b2c9d1e0a4f5b6c7d8e9f0a1b2c3d4e5f6a7b", "https://api.openai.com/v1",
                                   "0.9", "你是一名医生，请回答。Basic knowledge only.", "main"])
def test_ordinary_values_are_kept(value):
    from chimed_eval.core.secrets import looks_like_key

    assert not looks_like_key(value)
