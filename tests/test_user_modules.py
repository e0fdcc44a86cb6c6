"""A user's own ``tasks.py``, ``training.py`` or ``leaderboards.py`` in the working directory does not
shadow the plug-ins: they are ``chimed_eval.tasks``, ``chimed_eval.training`` and
``chimed_eval.leaderboards`` (the folders stay at the top of the repository; pyproject.toml).

Here from a plain checkout (the repository on PYTHONPATH, nothing installed from it);
tests/test_packaging.py runs the same checks on a built wheel and on an editable install."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_exam_csv

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ("tasks", "training", "leaderboards")


def user_dir(tmp_path: Path) -> Path:
    """A working directory holding a user's tasks.py, training.py and leaderboards.py, each of which
    fails loudly when imported."""
    d = tmp_path / "work"
    d.mkdir()
    for name in PLUGINS:
        (d / f"{name}.py").write_text(f"raise RuntimeError('the user module {name}.py was imported')\n",
                                      encoding="utf-8")
    return d


def run_in(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_cli_lists_tasks_beside_a_users_tasks_py(tmp_path):
    out = run_in(user_dir(tmp_path), "-m", "chimed_eval.cli.app", "tasks")
    assert out.returncode == 0, out.stderr
    assert "cmmlu-medical-paper" in out.stdout and "mcq" in out.stdout


def test_a_run_beside_a_users_modules_scores_as_usual(tmp_path):
    cwd = user_dir(tmp_path)
    exam = write_exam_csv(cwd / "exam.csv", 4)
    out = run_in(cwd, "-m", "chimed_eval.cli.app", "run", "--no-progress", "--backend", "fake", "--model", "oracle",
                 "--tasks", "mcq", "--task-args", f"path={exam}", "--output", "out")
    assert out.returncode == 0, out.stderr
    res = json.loads((cwd / "out" / "results.json").read_text(encoding="utf-8"))
    assert next(m["value"] for m in res["tasks"]["mcq"]["metrics"] if m["name"] == "acc") == 100.0


def test_the_plugins_import_and_train_parses_beside_a_users_modules(tmp_path):
    cwd = user_dir(tmp_path)
    probe = ("import chimed_eval.tasks.factory as f, chimed_eval.training.registry as r\n"
             "import chimed_eval.leaderboards.spec as s\n"
             "print(' '.join(f.TASK_TYPES.names()), ' '.join(x.name for x in r.stages()), s.BOARDS_FILE.is_file(), "
             "sep='\\n')")
    out = run_in(cwd, "-c", probe)
    assert out.returncode == 0, out.stderr
    types, stages, board_file = out.stdout.splitlines()
    assert "mcq" in types.split() and "sft" in stages.split() and board_file == "True"
    out = run_in(cwd, "-m", "chimed_eval.training.cli", "--help")
    assert out.returncode == 0 and "pretrain" in out.stdout, out.stderr


@pytest.mark.parametrize("name", PLUGINS)
def test_a_plugin_folder_refuses_its_top_level_name(tmp_path, name):
    """From the repository root `import tasks` would load every task module a second time, with
    a second registry; it fails instead, naming the import to use."""
    out = run_in(tmp_path, "-c", f"import {name}")
    assert out.returncode != 0 and f"import chimed_eval.{name}, not {name}" in out.stderr
