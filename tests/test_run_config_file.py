"""``chimed-eval run --config FILE``: run options in YAML/TOML/JSON, several models each into
OUT/<model>, command-line flags winning, every key checked as its flag is; and the typed entries
other callers (``chimed_eval.evaluate``, a sweep) reuse."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import chimed_eval
from chimed_eval.cli.app import main
from chimed_eval.cli.config_file import read_run_config, safe_name
from chimed_eval.core.errors import ConfigError
from chimed_eval.engine.api import RunConfig

TASK = "ceval-medical-paper"


@pytest.fixture(autouse=True)
def data(monkeypatch: pytest.MonkeyPatch) -> None:
    d = Path(os.environ.get("CHIMED_EVAL_SHARED_DATA", "/work/shared/data"))
    if not (d / "ceval").is_dir():
        pytest.skip("the shared data is not here")
    monkeypatch.setenv("CHIMED_EVAL_DATA", str(d))


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


YAML = """\
backend: fake
models: [oracle, "fixed:A"]
tasks: [ceval-medical-paper, ceval-medical]
limit: 3
num_fewshot: 0
batch-size: auto
gen_kwargs: {temperature: 0.5, top_k: 4}
no_progress: true
output: OUT
"""


def test_several_models_each_into_their_folder(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(YAML.replace("OUT", str(tmp_path / "out")), encoding="utf-8")
    assert main(["run", "--config", str(cfg)]) == 0
    for model, folder in (("oracle", "oracle"), ("fixed:A", "fixed_A")):
        r = results(tmp_path / "out" / folder)
        assert r["settings"]["model"] == model and r["settings"]["limit"] == 3
        assert r["settings"]["gen_kwargs"] == {"temperature": 0.5, "top_k": 4}
        assert r["settings"]["batch_size"] == "auto" and sorted(r["tasks"]) == ["ceval-medical", TASK]
        assert r["tasks"][TASK]["n"] == 3


def test_command_line_flags_win_and_a_single_model_runs_into_output(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'backend = "fake"\nmodel = "oracle"\ntasks = "{TASK}"\nlimit = 3\nno_progress = true\n'
                   f'output = "{tmp_path / "a"}"\n', encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--limit", "0.5", "--output", str(tmp_path / "b")]) == 0
    assert results(tmp_path / "b")["tasks"][TASK]["n"] == 21 and not (tmp_path / "a").exists()
    assert main(["-q", "run", "--model", "fixed:B", "--config", str(cfg), "--output", str(tmp_path / "c")]) == 0
    assert results(tmp_path / "c")["settings"]["model"] == "fixed:B"


def test_entries_are_typed_for_evaluate(tmp_path: Path) -> None:
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"backend": "fake", "model": ["oracle", "random"], "tasks": [TASK], "limit": 0.1,
                               "model_args": {}, "output": str(tmp_path / "o"), "seed": 7}), encoding="utf-8")
    entries = read_run_config(cfg)
    assert [e.model for e in entries] == ["oracle", "random"]
    e = entries[0]
    assert isinstance(e.config, RunConfig) and (e.config.limit, e.config.seed) == (0.1, 7)
    assert e.output == tmp_path / "o" / "oracle" and e.tasks == (TASK,) and e.backend == "fake"
    run = chimed_eval.evaluate(e.model, list(e.tasks), backend=e.backend, model_args=e.model_args, config=e.config)
    assert run.tasks[0].n == 5


@pytest.mark.parametrize("text,msg", [
    ("modle: oracle\n", "unknown key 'modle'"),
    ("model: oracle\nlimit: [1, 2]\ntasks: x\n", "--limit"),
    ("model: oracle\napply_chat_template: 3\n", "expected true or false"),
    ("- a\n- b\n", "expected a table"),
    ("model: oracle\nlimit: 3\n  bad: : :\n", "not valid YAML"),
    ("tasks: x\n", "no model"),
    ("models: [a/b, a_b]\n", "share the folder name"),
])
def test_bad_files_exit_2_naming_the_file(tmp_path: Path, capsys, text: str, msg: str) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text, encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert msg in err and str(cfg) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_missing_config_and_missing_model(tmp_path: Path, capsys) -> None:
    assert main(["run", "--config", str(tmp_path / "none.yaml")]) == 2
    assert main(["run", "--tasks", TASK, "--output", str(tmp_path / "o")]) == 2
    assert "--model is required" in capsys.readouterr().err
    assert safe_name("Qwen/Qwen2-0.5B") == "Qwen_Qwen2-0.5B"
