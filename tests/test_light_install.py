"""A light install (``pip install chimed-eval``, no extras): a backend whose libraries are missing is
refused in one line with its install hint, before anything is written; the fake backend, score,
check and report run without torch; no training library is imported on the evaluation path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chimed_eval.backends import BACKENDS, check_backend_installed, missing_libraries
from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError
from conftest import write_exam_csv

ROOT = Path(__file__).resolve().parents[1]


def exam(tmp_path: Path) -> str:
    f = write_exam_csv(tmp_path / "exam.csv", 6)
    return f"path={f},question=Question,choices=A;B;C;D,answer=Answer,name=my-exam"


@pytest.mark.parametrize("backend,blocked,extra", [("hf", "torch", "chimed-eval[hf]"),
                                                    ("vllm", "vllm", "chimed-eval[vllm]"),
                                                    ("openai", "httpx", "chimed-eval[api]")])
def test_a_backend_without_its_libraries_exits_2_with_the_hint_and_writes_nothing(
        backend, blocked, extra, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, blocked, None)  # as if not installed (find_spec answers None)
    out = tmp_path / "o2"
    argv = ["run", "--no-progress", "--backend", backend, "--model", "some/model", "--tasks", "mcq",
            "--task-args", exam(tmp_path), "--output", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"the {backend} backend needs {blocked}" in err and extra in err
    assert not out.exists()  # no run.json, not even the directory


def test_the_check_finds_libraries_without_importing_them(monkeypatch):
    for name in BACKENDS.names():
        assert isinstance(BACKENDS.get(name).requires, tuple)
    assert missing_libraries("fake") == []
    monkeypatch.setitem(sys.modules, "transformers", None)
    assert missing_libraries("hf") == ["transformers"] or missing_libraries("hf") == ["torch", "transformers"]
    with pytest.raises(ConfigError, match=r'pip install "chimed-eval\[hf\]"'):
        check_backend_installed("hf")
    check_backend_installed("no-such-backend")  # left to the registry to refuse


def test_the_python_api_refuses_a_missing_backend_before_writing(tmp_path, monkeypatch):
    import chimed_eval

    monkeypatch.setitem(sys.modules, "torch", None)
    out = tmp_path / "api-out"
    with pytest.raises(ConfigError, match="the hf backend needs torch"):
        chimed_eval.evaluate("some/model", ["mcq"], backend="hf", output=out,
                             task_args=dict(kv.split("=", 1) for kv in exam(tmp_path).split(",")))
    assert not out.exists()


#: an evaluation, score and check on the fake backend, then the training and heavy libraries loaded
NO_TRAINING = """
import json, sys
from chimed_eval.cli.app import main
out, task_args = sys.argv[1], sys.argv[2]
assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq",
             "--task-args", task_args, "--output", out]) == 0
assert main(["score", out]) == 0
assert main(["check", out, "--save-baseline", out + "-baseline.json"]) == 0
assert main(["report", out, "--output", out + ".html"]) == 0
print(json.dumps(sorted(m for m in ("deepspeed", "trl", "datasets", "torch", "transformers", "accelerate")
                        if m in sys.modules)))
"""


def test_an_evaluation_without_a_model_imports_no_training_or_heavy_library(tmp_path):
    env_path = {"PYTHONPATH": str(ROOT)}
    import os

    out = subprocess.run([sys.executable, "-c", NO_TRAINING, str(tmp_path / "o"), exam(tmp_path)],
                         capture_output=True, text=True, env={**os.environ, **env_path}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert "Setting accelerator" not in out.stderr


# --- what pyproject.toml declares --------------------------------------------------------------------


def project() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_every_dependency_has_an_upper_bound_and_the_extras_cover_each_job():
    from packaging.requirements import Requirement

    extras = project()["optional-dependencies"]
    assert {"hf", "vllm", "vllm-cpu", "api", "train", "text", "xlsx", "report", "docs", "dev", "all"} <= set(extras)
    unbounded = []
    for where, reqs in [("dependencies", project()["dependencies"]), *extras.items()]:
        for text in reqs:
            req = Requirement(text)
            if req.name == "chimed-eval":  # all = the other extras
                continue
            if not any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier):
                unbounded.append(f"{where}: {text}")
    assert unbounded == []
    base = {Requirement(r).name for r in project()["dependencies"]}
    assert not base & {"torch", "transformers", "vllm", "deepspeed", "trl", "datasets", "accelerate"}
    assert "httpx" in base  # the openai backend runs on the light install
    assert set(Requirement(extras["all"][0]).extras) >= {"hf", "vllm", "train", "text", "xlsx", "report"}


def test_python_310_is_declared_and_served():
    """Python 3.10 is declared: tomli (TOML on 3.10) is a dependency there, and every module parses
    with the 3.10 grammar (nothing of 3.11's syntax such as ``except*``)."""
    import ast

    from packaging.requirements import Requirement

    assert project()["requires-python"] == ">=3.10"
    tomli = [Requirement(r) for r in project()["dependencies"] if Requirement(r).name == "tomli"]
    assert tomli and tomli[0].marker is not None
    assert tomli[0].marker.evaluate({"python_version": "3.10"}) and not tomli[0].marker.evaluate({"python_version": "3.11"})
    bad = []
    for folder in ("chimed_eval", "tasks", "training", "leaderboards"):
        for path in (ROOT / folder).rglob("*.py"):
            try:
                ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=(3, 10))
            except SyntaxError as e:
                bad.append(f"{path.relative_to(ROOT)}:{e.lineno}: {e.msg}")
    assert bad == []


def test_the_licence_file_is_the_apache_2_text_pyproject_declares():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert project()["license"] == "Apache-2.0" and "LICENSE" in project()["license-files"]
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 150
    assert (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").startswith("# Changelog")


def test_the_quickstart_installs_only_the_hf_extra():
    script = (ROOT / "scripts" / "quickstart.sh").read_text(encoding="utf-8")
    assert "\".[hf]\"" in script and "bash scripts/setup.sh" not in script
    for heavy in ("train", "dev", "vllm"):
        assert f"[{heavy}" not in script and f",{heavy}" not in script


#: the tiny model saved as a converted GGUF is (save_model_dir), then evaluated by the hf backend
TINY_HF = """
import json, sys
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
from chimed_eval.models.resolve import save_model_dir
from chimed_eval.cli.app import main
src, out, task_args = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
save_model_dir(AutoModelForCausalLM.from_pretrained(src), AutoTokenizer.from_pretrained(src), out / "model")
assert main(["run", "--no-progress", "--backend", "hf", "--model", str(out / "model"), "--device", "cpu",
             "--tasks", "mcq", "--task-args", task_args, "--limit", "3", "--output", str(out / "run")]) == 0
print(json.dumps(sorted(m for m in ("deepspeed", "trl", "datasets") if m in sys.modules)))
"""


@pytest.mark.slow
def test_saving_a_converted_model_and_evaluating_it_import_no_deepspeed(tiny_model, tmp_path):
    """accelerate imports DeepSpeed inside ``save_pretrained`` when it is installed (the GGUF
    conversion saves); the evaluation path must not (no ``Setting accelerator to CPU``)."""
    import importlib.util
    import os

    if importlib.util.find_spec("deepspeed") is None:
        pytest.skip("deepspeed is not installed here: nothing could import it")
    out = subprocess.run([sys.executable, "-c", TINY_HF, str(tiny_model), str(tmp_path), exam(tmp_path)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert "Setting accelerator" not in out.stderr
    assert (tmp_path / "model" / "model.safetensors").is_file()


def test_a_sweep_on_a_backend_without_its_libraries_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    out = tmp_path / "sweep"
    assert main(["sweep", "--backend", "hf", "--models", "a/b", "--tasks", "mcq", "--task-args", exam(tmp_path),
                 "--output", str(out)]) == 2
    assert 'pip install "chimed-eval[hf]"' in capsys.readouterr().err and not out.exists()
