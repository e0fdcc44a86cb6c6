"""One reader of runs (issue 23, item 5): every read of run.json, results.json and
samples/<task>.jsonl goes through :mod:`chimed_eval.runs` (its reader, :mod:`chimed_eval.runs.reader`).

* No module outside ``chimed_eval/runs/`` spells where a run's files lie: no ``"run.json"``,
  ``"results.json"``, ``"samples"`` or ``"samples/..."`` joined into a path, passed to a call or
  bound to a name, no f-string path to them, no import of the file-name constants: they ask
  ``runs.reader`` (``read_run``, ``iter_samples``, ``read_run_state``, ``results_json``...).
  The judge's own ``OUT/judge/<dir>/results.json`` is its file, named once, in the allowlist.
* The sibling readers the issue named are gone (``records.read_records`` /
  ``first_record_extra``, ``outdir.read_json``, ``check.load_view``'s own copy,
  ``report.load_results``), and ``reports.baseline`` no longer imports ``reports.check``.
* The one JSON decoder now reads run.json too: a run.json nested too deeply is an error naming
  it (exit 2), where the old ``outdir.read_json`` let a RecursionError through as a traceback.
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError
from chimed_eval.runs.reader import read_run_state
from conftest import write_exam_csv

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("chimed_eval", "tasks", "leaderboards", "training")
RUNS = "chimed_eval/runs/"
RUN_NAMES = {"run.json", "results.json", "samples"}
#: the names of OUT's layout in chimed_eval.runs.outdir; outside runs/, ask for the path instead
LAYOUT_CONSTANTS = {"RUN_FILE", "RESULTS_FILE", "SAMPLES_DIR"}
#: calls that open, decode, hash or list a path: an f-string path handed to one is a read
PATH_CALLS = {"open", "Path", "PurePath", "joinpath", "glob", "rglob", "iglob", "read_text", "read_bytes", "loads",
              "load", "read_json_file", "read_jsonl", "file_sha256", "file_digest", "exists", "is_file"}
#: (module, constant) that name a file of the same name which is not the run's, each with its reason
ALLOWED = {
    ("chimed_eval/judge/store.py", "results.json"): "the judge's own figures, OUT/judge/<dir>/results.json",
    ("chimed_eval/reports/judge.py", "judge/*/results.json"): "the judges' own figures, listed for the report and the viewer",
}


def _is_run_path(text: str) -> bool:
    return (text in RUN_NAMES or text.startswith("samples/") or "/samples/" in text
            or text.endswith(("/run.json", "/results.json")))


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _offences(source: str, rel: str = "<snippet>") -> list[str]:
    """Where ``source`` builds, passes or binds the path of a run's file, or imports OUT's layout names."""
    tree = ast.parse(source)
    parent: dict[ast.AST, ast.AST] = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
    found = []
    for node in ast.walk(tree):
        p = parent.get(node)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chimed_eval.runs"):
            found += [f"{rel}:{node.lineno}: imports {a.name}" for a in node.names if a.name in LAYOUT_CONSTANTS]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _is_run_path(node.value):
            if (rel, node.value) in ALLOWED or isinstance(p, (ast.JoinedStr, ast.Expr)):
                continue  # message text, docstrings
            if isinstance(p, ast.Dict) and node in p.keys:
                continue  # a key ({"run.json": digest}), not a path
            found.append(f"{rel}:{node.lineno}: {node.value!r}")
        elif isinstance(node, ast.JoinedStr) and (
                (isinstance(p, ast.BinOp) and isinstance(p.op, ast.Div))
                or (isinstance(p, ast.Call) and _call_name(p) in PATH_CALLS)):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if _is_run_path(text) or any(text.endswith(n) for n in RUN_NAMES):
                found.append(f"{rel}:{node.lineno}: f-string path {text!r}")
    return found


def _modules() -> list[tuple[str, str]]:
    out = []
    for top in SCANNED:
        for f in sorted((ROOT / top).rglob("*.py")):
            rel = f.relative_to(ROOT).as_posix()
            if not rel.startswith(RUNS):
                out.append((rel, f.read_text(encoding="utf-8")))
    return out


def test_the_checker_finds_a_run_file_read_outside_the_reader():
    """It cannot pass vacuously: each way of reaching a run's files by hand is found."""
    assert _offences("json.loads((out / 'results.json').read_text())")
    assert _offences("open(Path(d) / 'samples' / f'{task}.jsonl')")
    assert _offences("recs = d.glob('samples/*.jsonl')")
    assert _offences("open(f'{out}/samples/{task}.jsonl')")
    assert _offences("p = Path(f'{out}/run.json')")
    assert _offences("NAME = 'run.json'")
    assert _offences("from chimed_eval.runs.outdir import RESULTS_FILE")
    assert not _offences("raise ConfigError(f'{out}/samples/{t}.jsonl: not a record')")  # a message
    assert not _offences("digest = {'run.json': file_digest(run_json(d))}")
    assert not _offences("from chimed_eval.runs.reader import read_run, samples_file")


def test_no_module_outside_runs_reaches_a_run_file_itself():
    found = [o for rel, src in _modules() for o in _offences(src, rel)]
    assert not found, "read these through chimed_eval.runs.reader:\n" + "\n".join(found)
    assert all((ROOT / rel).is_file() for rel, _ in ALLOWED), "an allowlisted module moved: update ALLOWED"


@pytest.mark.parametrize("module,name", [
    ("chimed_eval.runs.records", "read_records"),
    ("chimed_eval.runs.records", "first_record_extra"),
    ("chimed_eval.runs.outdir", "read_json"),
    ("chimed_eval.reports.html", "load_results"),
    ("chimed_eval.reports.html", "sample_tasks"),
    ("chimed_eval.judge.inputs", "recorded_tasks"),
])
def test_the_sibling_readers_are_gone(module, name):
    """Gone, or the reader's own function imported there."""
    obj = getattr(importlib.import_module(module), name, None)
    assert obj is None or obj.__module__ == "chimed_eval.runs.reader", obj.__module__


def _imports(module: str) -> set[str]:
    """Every module ``module`` imports, inside functions and under TYPE_CHECKING too."""
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
    got = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            got |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            got.add(node.module)
    return got


def test_check_reads_its_sides_through_the_view_and_baseline_does_not_import_check():
    from chimed_eval.reports import check, view

    assert check.load_view is view.load_view  # one view, no second copy in check
    assert "chimed_eval.reports.check" not in _imports("chimed_eval.reports.baseline")
    assert not {"chimed_eval.reports.check", "chimed_eval.reports.baseline"} & _imports("chimed_eval.reports.view")
    assert "chimed_eval.runs.reader" in _imports("chimed_eval.reports.view")


def test_a_run_json_nested_too_deeply_is_an_error_naming_it(tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 4)
    out = tmp_path / "o"
    args = ["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq",
            "--task-args", f"path={exam}", "--output", str(out)]
    assert main(args) == 0
    (out / "run.json").write_text("[" * 100_000, encoding="utf-8")
    with pytest.raises(ConfigError, match="nested too deeply") as e:
        read_run_state(out)
    assert str(e.value).startswith(str(out / "run.json"))
    capsys.readouterr()
    for argv in (args, ["score", str(out)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"chimed-eval: error: {out / 'run.json'}") and "Traceback" not in err, err


def test_the_judge_finds_the_runs_model_and_generations_through_the_reader(tmp_path):
    """The judge's questions to OUT (which model answered, which tasks hold generations) are the
    reader's: results.json's model first, run.json's before the run finished."""
    from chimed_eval.judge.inputs import generation_tasks
    from chimed_eval.runs.reader import recorded_model, sample_tasks

    out = tmp_path / "o"
    (out / "samples").mkdir(parents=True)
    gen = {"id": "q1", "prompt": "p", "generation": "g", "gold": "a", "extra": {"prompt_version": "gen@1"}}
    (out / "samples" / "qa.jsonl").write_text(json.dumps(gen) + "\n" + '{"id": "q2", "gen', encoding="utf-8")
    (out / "samples" / "mcq.jsonl").write_text(json.dumps({"id": "m1", "prediction": "A"}) + "\n", encoding="utf-8")
    assert recorded_model(out) is None
    (out / "run.json").write_text(json.dumps({"settings": {}, "tasks": {}, "model": {"name": "early"}}), encoding="utf-8")
    assert recorded_model(out) == {"name": "early"}
    (out / "results.json").write_text(json.dumps({"tasks": {}, "model": {"name": "m"}}), encoding="utf-8")
    assert recorded_model(out) == {"name": "m"}
    assert sample_tasks(out) == ["mcq", "qa"]
    assert generation_tasks(out, None) == ["qa"]
