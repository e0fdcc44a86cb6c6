"""OUT is trusted only when it holds this run: resume checks, adoption, lock, secrets, errors
(issue 14, items 1-4, 9, 14 and 17)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from conftest import default_sigint, write_exam_csv


def run(*argv: str) -> int:
    return main(["run", "--no-progress", "--backend", "fake", *argv])


def acc(out: Path, task: str = "mcq") -> float:
    res = json.loads((out / "results.json").read_text())
    return next(m["value"] for m in res["tasks"][task]["metrics"] if m["name"] == "acc")


def exam_args(f: Path) -> list[str]:
    return ["--tasks", "mcq", "--task-args", f"path={f}"]


# --- 1. resume refuses changed data, task definition, settings, model -----------------------------

def test_resume_after_edited_answers_is_refused_and_names_the_file(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 20)
    out = tmp_path / "o"
    assert run("--model", "fixed:A", *exam_args(f), "--output", str(out)) == 0
    assert acc(out) == 25.0
    lines = f.read_text(encoding="utf-8").splitlines()
    for i in range(1, 11):  # ten answers become A
        lines[i] = lines[i].rsplit(",", 1)[0] + ",A"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc = run("--model", "fixed:A", *exam_args(f), "--output", str(out))
    err = capsys.readouterr().err
    assert rc == 2
    assert "data_files" in err and "exam.csv" in err and "items_sha256" in err
    assert acc(out) == 25.0  # the old results are left as they were, not relabelled


def test_resume_with_other_task_args_is_refused(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 8)
    out = tmp_path / "o"
    assert run("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f}", "--output", str(out)) == 0
    rc = run("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f},subject_name=药理学", "--output", str(out))
    assert rc == 2 and "source" in capsys.readouterr().err


def test_resume_with_an_edited_task_config_is_refused(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 8)
    cfg = tmp_path / "tasks.toml"
    cfg.write_text(f'[[tasks]]\nname = "mine"\npath = "{f}"\n', encoding="utf-8")
    out = tmp_path / "o"
    assert run("--model", "oracle", "--tasks", "mine", "--task-config", str(cfg), "--output", str(out)) == 0
    cfg.write_text(f'[[tasks]]\nname = "mine"\npath = "{f}"\nsubject_name = "药理学"\n', encoding="utf-8")
    rc = run("--model", "oracle", "--tasks", "mine", "--task-config", str(cfg), "--output", str(out))
    assert rc == 2 and "task_config_sha256" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [["--seed", "7"], ["--max-new-tokens", "5"], ["--limit", "3"], ["--variant", "lm-eval"],
                                   ["--model-args", "revision=v2"], ["--batch-size", "2"]])
def test_resume_with_another_setting_is_refused(tmp_path, capsys, extra):
    f = write_exam_csv(tmp_path / "exam.csv", 8)
    out = tmp_path / "o"
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 0
    rc = run("--model", "oracle", *exam_args(f), "--output", str(out), *extra)
    assert rc == 2 and "other settings" in capsys.readouterr().err


def test_resume_with_other_data_dir_is_refused(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 8)
    out = tmp_path / "o"
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    assert run("--model", "oracle", *exam_args(f), "--output", str(out), "--data-dir", str(tmp_path / "d1")) == 0
    rc = run("--model", "oracle", *exam_args(f), "--output", str(out), "--data-dir", str(tmp_path / "d2"))
    assert rc == 2 and "data_dir" in capsys.readouterr().err


def test_resume_with_another_model_is_refused(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 8)
    out = tmp_path / "o"
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 0
    rc = run("--model", "fixed:A", *exam_args(f), "--output", str(out))
    assert rc == 2 and "fixed:A" in capsys.readouterr().err


def test_default_variant_and_its_name_are_the_same_run(tmp_path):
    f = write_exam_csv(tmp_path / "exam.csv", 8)
    out = tmp_path / "o"
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 0
    assert run("--model", "oracle", *exam_args(f), "--output", str(out), "--variant", "paper", "--shots", "0") == 0
    # a transport-only model arg (the fake backend's delay) does not make another run
    assert run("--model", "oracle", *exam_args(f), "--output", str(out), "--model-args", "delay=0") == 0


def test_older_run_json_is_refused_with_advice(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 8)
    out = tmp_path / "o"
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 0
    state = json.loads((out / "run.json").read_text())
    state.pop("format")
    (out / "run.json").write_text(json.dumps(state))
    rc = run("--model", "oracle", *exam_args(f), "--output", str(out))
    assert rc == 2 and "older chimed-eval" in capsys.readouterr().err


# --- 2. an OUT that chimed-eval did not write ------------------------------------------------------

def test_records_without_run_json_are_not_adopted(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 8)
    oracle = tmp_path / "oracle"
    assert run("--model", "oracle", *exam_args(f), "--output", str(oracle)) == 0
    (oracle / "run.json").unlink()
    rc = run("--model", "fixed:A", *exam_args(f), "--output", str(oracle))
    assert rc == 2 and "holds no chimed-eval run.json" in capsys.readouterr().err
    assert json.loads((oracle / "results.json").read_text())["model"]["name"] == "fake-oracle"


def test_a_foreign_results_json_is_never_overwritten(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 8)
    out = tmp_path / "o"
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 0
    (out / "results.json").write_text('{"mine": 1}')
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 2
    assert "not written by chimed-eval" in capsys.readouterr().err
    assert main(["score", str(out)]) == 2
    assert (out / "results.json").read_text() == '{"mine": 1}'


def test_an_empty_existing_out_is_fine(tmp_path):
    f = write_exam_csv(tmp_path / "exam.csv", 4)
    out = tmp_path / "o"
    out.mkdir()
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 0


# --- 3. another --tasks into the same OUT keeps the earlier task --------------------------------------

def test_other_tasks_into_the_same_out_keep_the_earlier_results(tmp_path):
    a = write_exam_csv(tmp_path / "a.csv", 8, "A")
    b = write_exam_csv(tmp_path / "b.csv", 8, "B")
    cfg = tmp_path / "tasks.toml"
    cfg.write_text(f'[[tasks]]\nname = "a"\npath = "{a}"\n\n[[tasks]]\nname = "b"\npath = "{b}"\n', encoding="utf-8")
    out = tmp_path / "o"
    common = ["--model", "fixed:A", "--task-config", str(cfg), "--output", str(out)]
    assert run("--tasks", "a", *common) == 0
    assert run("--tasks", "b", *common) == 0
    res = json.loads((out / "results.json").read_text())
    assert list(res["tasks"]) == ["a", "b"]
    assert acc(out, "a") == 100.0 and acc(out, "b") == 0.0
    assert set(res["settings"]["variants"]) == {"a", "b"}
    assert main(["score", str(out), "--task-config", str(cfg)]) == 0
    assert set(json.loads((out / "results.json").read_text())["tasks"]) == {"a", "b"}


# --- 4. one process per OUT ----------------------------------------------------------------------------

def _cmd(out: Path, exam: Path, delay: str, seed: str = "1234") -> list[str]:
    return [sys.executable, "-m", "chimed_eval.cli.app", "run", "--backend", "fake", "--model", "random", "--tasks", "mcq",
            "--task-args", f"path={exam}", "--batch-size", "4", "--model-args", f"delay={delay}", "--seed", seed,
            "--output", str(out), "--no-progress"]


def test_a_second_process_on_the_same_out_is_refused_with_the_pid(tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 40)
    out = tmp_path / "o"
    first = subprocess.Popen(_cmd(out, exam, "0.1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not (out / "run.json").exists():
            time.sleep(0.02)
        second = subprocess.run(_cmd(out, exam, "0", seed="2"), capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert f"in use by PID {first.pid}" in second.stderr
    finally:
        assert first.wait(timeout=60) == 0
    state = json.loads((out / "run.json").read_text())
    assert state["settings"]["seed"] == 1234
    assert not list(out.glob("**/*.tmp"))


# --- 9. secrets are refused before anything is written, never echoed ---------------------------------

@pytest.mark.parametrize("name", ["api_key", "API_KEY", "apikey", "token", "key", "Authorization", "hf_token"])
@pytest.mark.parametrize("backend", ["fake", "openai"])
def test_key_like_model_args_are_refused_before_anything_is_written(tmp_path, capsys, name, backend):
    f = write_exam_csv(tmp_path / "exam.csv", 4)
    out = tmp_path / "o"
    secret = "sk-THISISSECRET1234567890"
    rc = main(["run", "--no-progress", "--backend", backend, "--model", "oracle", *exam_args(f), "--output", str(out),
               "--model-args", f"{name}={secret}"])
    captured = capsys.readouterr()
    assert rc == 2
    assert secret not in captured.err + captured.out and secret[3:12] not in captured.err
    assert "api_key_env" in captured.err
    assert not out.exists()


def test_a_pasted_key_without_a_name_is_not_echoed(tmp_path, capsys):
    rc = main(["run", "--backend", "fake", "--model", "oracle", "--tasks", "mcq", "--output", str(tmp_path / "o"),
               "--model-args", "sk-THISISSECRET1234567890"])
    assert rc == 2 and "THISISSECRET" not in capsys.readouterr().err


def test_programmatic_settings_refuse_secrets_too():
    from chimed_eval.core.errors import ConfigError
    from chimed_eval.engine.runner import RunSettings

    with pytest.raises(ConfigError):
        RunSettings(model="oracle", backend="fake", model_args={"token": "abc"})


# --- 14. Ctrl-C: saved items kept, clean exit, resumable -----------------------------------------------

def test_sigint_stops_the_run_keeps_the_records_and_resumes(tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 80)
    out = tmp_path / "o"
    proc = subprocess.Popen(_cmd(out, exam, "0.1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)  # Ctrl-C reaches it even when pytest runs in the background
    samples = out / "samples" / "mcq.jsonl"
    deadline = time.time() + 30
    while time.time() < deadline and (not samples.exists() or len(samples.read_text().splitlines()) < 8):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    start = time.time()
    _, err = proc.communicate(timeout=20)
    assert time.time() - start < 5
    assert proc.returncode == 130 and "resume" in err and "Traceback" not in err
    kept = len(samples.read_text().splitlines())
    assert 0 < kept < 80
    subprocess.run(_cmd(out, exam, "0"), check=True, capture_output=True)
    ref = tmp_path / "ref"
    subprocess.run(_cmd(ref, exam, "0"), check=True, capture_output=True)
    assert samples.read_text() == (ref / "samples" / "mcq.jsonl").read_text()


# --- 17. file-system errors: one line naming the path, exit 2, no stray temporary file ---------------

def test_out_that_is_a_file(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 4)
    out = tmp_path / "o"
    out.write_text("x")
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("chimed-eval: error:") and str(out) in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_out(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 4)
    out = tmp_path / "o"
    out.mkdir()
    out.chmod(0o500)
    try:
        assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 2
        err = capsys.readouterr().err
        assert err.startswith("chimed-eval: error:") and str(out) in err
    finally:
        out.chmod(0o700)


@pytest.mark.parametrize("name", ["run.json", "results.json"])
def test_corrupt_run_or_results_json(tmp_path, capsys, name):
    f = write_exam_csv(tmp_path / "exam.csv", 4)
    out = tmp_path / "o"
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 0
    (out / name).write_bytes(b'{"settings": \xff\xfe garbage')
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("chimed-eval: error:") and str(out / name) in err and "Traceback" not in err
    assert main(["score", str(out)]) == 2


def test_full_disk_names_the_path_and_leaves_no_tmp(tmp_path, capsys, monkeypatch):
    f = write_exam_csv(tmp_path / "exam.csv", 4)
    out = tmp_path / "o"
    real_fsync = os.fsync

    def full(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(out / "run.json") in err
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_written_files_get_the_usual_permissions(tmp_path):
    """Unique temporary files (mkstemp) are 0600; the files they become must not be."""
    f = write_exam_csv(tmp_path / "exam.csv", 4)
    out = tmp_path / "o"
    assert run("--model", "oracle", *exam_args(f), "--output", str(out)) == 0
    mask = os.umask(0)
    os.umask(mask)
    for name in ("run.json", "results.json", "samples/mcq.jsonl"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~mask, name
