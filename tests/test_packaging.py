"""The wheel carries chimed_eval with its plug-ins (chimed_eval.tasks, .training, .leaderboards, from
the repository's top-level folders) and the results schema, and works when installed on its own in a
fresh virtual environment, also from a directory holding a user's own tasks.py, training.py and
leaderboards.py; an editable install does the same."""

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy
import pytest

from test_user_modules import user_dir

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
#: the installed package alone: the checkout (and the egg-info a build leaves in it) is off the path
CLEAN = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def fresh_venv(path: Path, wheel: Path) -> Path:
    """A new virtual environment (no site packages) with ``wheel`` installed, no dependencies; the
    dependencies (numpy, which ``chimed-train`` imports) are read from this environment's
    site-packages, placed after the new one's own, so that chimed_eval comes from the wheel."""
    venv.create(path, with_pip=True)
    subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, env=CLEAN)
    [site] = (path / "lib").glob("python*/site-packages")
    (site / "zz_test_dependencies.pth").write_text(str(Path(numpy.__file__).parents[1]) + "\n", encoding="utf-8")
    return path / "bin"


def check_beside_user_modules(bin_dir: Path, cwd: Path) -> None:
    """`chimed-eval`, `python -m chimed_eval.cli.app`, `chimed-train` and the plug-in imports work
    from ``cwd``, whose tasks.py, training.py and leaderboards.py raise when imported."""
    for cmd in ([str(bin_dir / "chimed-eval"), "tasks"],
                [str(bin_dir / "python"), "-m", "chimed_eval.cli.app", "tasks"]):
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=CLEAN)
        assert out.returncode == 0 and "cmmlu-medical-paper" in out.stdout, out.stderr
    out = subprocess.run([str(bin_dir / "chimed-train"), "--help"], capture_output=True, text=True, cwd=cwd, env=CLEAN)
    assert out.returncode == 0 and "pretrain" in out.stdout, out.stderr
    probe = ("import chimed_eval.tasks.factory, chimed_eval.training.registry, chimed_eval.leaderboards.spec as s; "
             "print(s.BOARDS_FILE.is_file())")
    out = subprocess.run([str(bin_dir / "python"), "-c", probe], capture_output=True, text=True, cwd=cwd, env=CLEAN)
    assert out.stdout.strip() == "True", out.stderr


def _source_copy(dest: Path) -> Path:
    """The sources as a fresh clone has them: a checkout's stale ``build/`` (left by an older
    layout's build) would otherwise leak old top-level packages into the wheel."""
    import shutil

    shutil.copytree(ROOT, dest, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "site"))
    return dest


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    str(_source_copy(tmp_path / "src")), "-w", str(wheels)], check=True, capture_output=True)
    [whl] = wheels.glob("chimed_eval-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for must in ("chimed_eval/cli/app.py", "chimed_eval/schema/results.schema.json", "chimed_eval/data/manifest.json",
                 "chimed_eval/tasks/exams.py", "chimed_eval/tasks/mcq.py", "chimed_eval/tasks/ner/ner_task.py",
                 "chimed_eval/training/cli.py", "chimed_eval/leaderboards/paper.py",
                 "chimed_eval/leaderboards/boards.toml"):
        assert must in names, must
    # nothing at the top level but chimed_eval: no `tasks` package to collide with a user's
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"chimed_eval"}

    bin_dir = fresh_venv(tmp_path / "venv", whl)
    out = subprocess.run([str(bin_dir / "chimed-eval"), "tasks"], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env=CLEAN)
    assert "cmmlu-medical-paper" in out.stdout
    probe = ("import importlib.resources as r, json; "
             "print(json.loads(r.files('chimed_eval').joinpath('schema/results.schema.json').read_text())['title'])")
    out = subprocess.run([str(bin_dir / "python"), "-c", probe], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env=CLEAN)
    assert "results.json" in out.stdout
    check_beside_user_modules(bin_dir, user_dir(tmp_path))


def test_editable_install_runs_beside_a_users_modules_and_from_the_checkout(tmp_path):
    """``pip install -e .`` (the PEP 660 wheel setuptools builds for it): chimed_eval.tasks is the
    repository's tasks/ folder, from a user's directory and from the repository root (where the
    checkout's chimed_eval is found first on sys.path)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    subprocess.run([sys.executable, "-c", f"import setuptools.build_meta as b; b.build_editable({str(wheels)!r})"],
                   check=True, capture_output=True, cwd=ROOT)
    [whl] = wheels.glob("chimed_eval-*.whl")
    bin_dir = fresh_venv(tmp_path / "venv", whl)
    check_beside_user_modules(bin_dir, user_dir(tmp_path))
    probe = "import chimed_eval.tasks as t, chimed_eval.training as r, chimed_eval.leaderboards as b; print(t.__file__)"
    out = subprocess.run([str(bin_dir / "python"), "-c", probe], capture_output=True, text=True, cwd=ROOT, env=CLEAN)
    assert Path(out.stdout.strip()).resolve() == ROOT / "tasks" / "__init__.py", out.stderr
