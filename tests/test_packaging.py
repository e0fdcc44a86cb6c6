"""The wheel carries chimed_eval, tasks, leaderboards and the results schema, and works when
installed on its own in a fresh virtual environment."""

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                    "-w", str(wheels)], check=True, capture_output=True)
    [whl] = wheels.glob("chimed_eval-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for must in ("chimed_eval/cli/app.py", "chimed_eval/schema/results.schema.json", "chimed_eval/data/manifest.json",
                 "tasks/exams.py",
                 "tasks/mcq.py", "leaderboards/paper.py"):
        assert must in names, must
    assert not any(n.startswith("tests/") for n in names)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(whl)], check=True,
                   capture_output=True)
    out = subprocess.run([str(env_dir / "bin" / "chimed-eval"), "tasks"], check=True, capture_output=True, text=True,
                         cwd=tmp_path)
    assert "cmmlu-medical-paper" in out.stdout
    probe = ("import importlib.resources as r, json; "
             "print(json.loads(r.files('chimed_eval').joinpath('schema/results.schema.json').read_text())['title'])")
    out = subprocess.run([str(py), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert "results.json" in out.stdout
