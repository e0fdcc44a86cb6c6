"""The task factory: task types with argument schemas, run.json records each task's type, score
rebuilds from it, and a named task refuses --task-args (issue 15 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from conftest import write_exam_csv
from chimed_eval.tasks.factory import TASK_TYPES, build_tasks, describe


def run(*argv: str) -> int:
    return main(["run", "--no-progress", "--backend", "fake", *argv])


def test_every_type_describes_every_key_it_accepts():
    from chimed_eval.tasks import mcq, ner

    assert {"mcq", "ner", "scale"} <= set(TASK_TYPES)
    assert {a.name for a in TASK_TYPES.get("mcq").args} == set(mcq.SPEC_KEYS)
    assert {a.name for a in TASK_TYPES.get("ner").args} == set(ner.NER_KEYS)
    for name in TASK_TYPES:
        t = TASK_TYPES.get(name)
        # a file-reading type needs its path; membership wraps another task (task=NAME)
        assert [a.name for a in t.args if a.required] == (["task"] if name == "membership" else ["path"]), name
        assert all(a.help for a in t.args), f"{name}: every argument needs its help text"


def test_describe_prints_the_schema(capsys):
    assert main(["tasks", "--describe", "mcq"]) == 0
    out = capsys.readouterr().out
    assert "answer_index_base" in out and "required" in out and "example:" in out
    assert "cmmlu-medical-paper" in describe("cmmlu-medical-paper")
    assert main(["tasks", "--describe", "mcqq"]) == 2


def test_tasks_lists_the_types(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("mcq", "ner", "scale", "cmmlu-medical-paper"):
        assert name in out


def test_named_task_refuses_task_args(tmp_path, capsys):
    rc = run("--model", "oracle", "--tasks", "ceval-medical-paper", "--task-args", "path=does-not-exist.json",
             "--output", str(tmp_path / "o"))
    assert rc == 2 and "none of the tasks" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unknown_task_names_the_types(tmp_path, capsys):
    assert run("--model", "oracle", "--tasks", "nerr", "--output", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "mcq" in err and "ner" in err and "scale" in err


def test_run_json_records_each_tasks_type_and_score_rebuilds_from_it(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 12)
    out = tmp_path / "o"
    assert run("--model", "random", "--tasks", "mcq", "--task-args", f"path={f}", "--output", str(out)) == 0
    state = json.loads((out / "run.json").read_text())
    assert state["tasks"]["mcq"]["source"] == {"type": "mcq", "args": {"path": str(f)}}
    before = json.loads((out / "results.json").read_text())["tasks"]["mcq"]["metrics"]
    assert main(["score", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["tasks"]["mcq"]["metrics"] == before
    # a run.json that says another type is not guessed around
    state["tasks"]["mcq"]["source"] = {"type": "ner", "args": {"path": str(f)}}
    (out / "run.json").write_text(json.dumps(state))
    assert main(["score", str(out)]) == 2
    assert "of type 'ner'" in capsys.readouterr().err


def test_build_tasks_marks_named_config_and_typed_tasks(tmp_path):
    f = write_exam_csv(tmp_path / "exam.csv", 4)
    cfg = tmp_path / "t.toml"
    cfg.write_text(f'[[tasks]]\nname = "mine"\npath = "{f}"\n', encoding="utf-8")
    built = build_tasks(["mine", "ceval-medical-paper"], {}, cfg)
    assert [(b.task.name, b.type) for b in built] == [("mine", "config"), ("ceval-medical-paper", "named")]
    assert build_tasks(["mcq"], {"path": str(f)}, None)[0].source(None) == {"type": "mcq", "args": {"path": str(f)}}
    with pytest.raises(Exception, match="needs --task-args"):
        build_tasks(["scale"], {}, None)


# --- --task-config is read like a data path (issue 22, item 18) ------------------------------------

_CONFIG_COMMANDS = {
    "run": ["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "exam"],
    "validate": ["validate", "--tasks", "exam"],
    "contamination": ["contamination", "--tasks", "exam"],
}


def _limit_memory() -> None:  # on a reader without a cap, /dev/zero fails fast instead of filling the machine
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


@pytest.mark.parametrize("command", sorted(_CONFIG_COMMANDS))
@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_task_config_that_is_no_regular_file_is_refused_at_once(tmp_path, command, special):
    """A fifo blocked run, validate and contamination forever and /dev/zero was read until
    MemoryError: both are refused before any read, exit 2, one line naming the file."""
    import os
    import subprocess
    import sys

    if special == "fifo":
        config = tmp_path / "tasks.toml"
        os.mkfifo(config)
    else:
        config = Path(special)
        if not config.exists():
            pytest.skip("no /dev/zero here")
    argv = [*_CONFIG_COMMANDS[command], "--task-config", str(config)]
    if command == "contamination":
        (tmp_path / "corpus.txt").write_text("高血压的诊断标准\n", encoding="utf-8")
        argv += ["--corpus", str(tmp_path / "corpus.txt"), "--output", str(tmp_path / "report")]
    elif command == "run":
        argv += ["--output", str(tmp_path / "out")]
    try:
        done = subprocess.run([sys.executable, "-m", "chimed_eval.cli.app", *argv], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} --task-config {special} still waits after 120 s")
    kind = "a fifo" if special == "fifo" else "a character device"
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr == f"chimed-eval: error: {config}: the task config is {kind}, not a regular file\n"
    assert not (tmp_path / "out").exists()


def test_a_task_config_that_is_a_directory_or_too_large_is_refused(tmp_path, capsys):
    from chimed_eval.tasks.config import load_config_file
    from chimed_eval.core.errors import ConfigError
    from chimed_eval.files.text import MAX_TASK_CONFIG_BYTES

    with pytest.raises(ConfigError, match=f"{tmp_path}: the task config is a directory, not a regular file"):
        load_config_file(tmp_path)
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * MAX_TASK_CONFIG_BYTES + b"\n")
    assert main(["validate", "--tasks", "exam", "--task-config", str(big)]) == 2
    assert "big.toml: the task config is larger than 1,048,576 bytes" in capsys.readouterr().err
    ok = tmp_path / "ok.toml"
    ok.write_text(f'name = "exam"\npath = "{write_exam_csv(tmp_path / "exam.csv", 4)}"\n', encoding="utf-8")
    assert main(["validate", "--tasks", "exam", "--task-config", str(ok)]) == 0
