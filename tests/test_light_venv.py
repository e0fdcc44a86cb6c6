"""Issue 24's done-when: in a fresh virtual environment, ``pip install .`` with no extras (no torch),
``chimed-eval run --backend fake --model oracle --tasks ceval-medical-paper`` works, the light
commands run (score, check, report, leaderboard, compare, export, view, contamination), and ``--backend hf`` exits 2 with the install hint, no traceback and no ``o2/run.json``.

One venv for the module (built once: the wheel, then its dependencies from the configured index)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
#: the installed package alone: the checkout is off the path
CLEAN = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CHIMED_EVAL_NO_PROGRESS")}


@pytest.fixture(scope="module")
def light_bin(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("light")
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                    "-w", str(wheels)], check=True, capture_output=True)
    [whl] = wheels.glob("chimed_eval-*.whl")
    venv.create(tmp / "venv", with_pip=True)
    bin_dir = tmp / "venv" / "bin"
    out = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(whl)],
                         capture_output=True, text=True, env=CLEAN)
    assert out.returncode == 0, out.stderr[-3000:]
    return bin_dir


def cli(bin_dir: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "chimed-eval"), *argv], capture_output=True, text=True, cwd=cwd, env=CLEAN)


def test_the_light_install_has_no_heavy_library(light_bin):
    probe = ("import importlib.util as u; print([m for m in ('torch', 'transformers', 'deepspeed', 'vllm') "
             "if u.find_spec(m)]); from chimed_eval.backends import missing_libraries as m; "
             "print(m('fake'), m('openai'), m('hf'))")
    out = subprocess.run([str(light_bin / "python"), "-c", probe], capture_output=True, text=True, env=CLEAN)
    assert out.stdout.splitlines() == ["[]", "[] [] ['torch', 'transformers']"], out.stderr


def test_fake_run_works_and_hf_exits_2_with_the_hint_leaving_nothing(light_bin, shared_data, tmp_path):
    run = ["run", "--model", "oracle", "--tasks", "ceval-medical-paper", "--data-dir", str(shared_data)]
    ok = cli(light_bin, tmp_path, *run, "--backend", "fake", "--output", "o")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "o" / "results.json").is_file() and "acc" in ok.stdout

    hf = cli(light_bin, tmp_path, *run, "--backend", "hf", "--output", "o2")
    assert hf.returncode == 2
    assert "Traceback" not in hf.stderr and hf.stderr.count("\n") == 1, hf.stderr
    assert 'pip install "chimed-eval[hf]"' in hf.stderr
    assert not (tmp_path / "o2" / "run.json").exists() and not (tmp_path / "o2").exists()

    for argv in (["score", "o"], ["check", "o", "--save-baseline", "b.json"], ["check", "o", "--baseline", "b.json"],
                 ["report", "o", "--output", "r.html"], ["leaderboard", "o", "--no-write"], ["compare", "o", "o"],
                 ["export", "o", "--output", "o.csv"], ["export", "o", "--items", "--format", "jsonl", "--output", "o.jsonl"],
                 ["view", "o", "--output", "view.html"]):
        out = cli(light_bin, tmp_path, *argv)
        assert out.returncode == 0 and "Traceback" not in out.stderr, (argv, out.stderr)
    (tmp_path / "c.jsonl").write_text('{"text": "a corpus document"}\n', encoding="utf-8")
    out = cli(light_bin, tmp_path, "contamination", "--corpus", "c.jsonl", "--tasks", "ceval-medical-paper",
              "--data-dir", str(shared_data), "--no-progress")
    assert out.returncode == 0 and "ceval-medical-paper" in out.stdout, out.stderr
