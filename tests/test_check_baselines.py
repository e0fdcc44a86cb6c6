"""`chimed-eval check` refuses, with exit 2 and one line naming the file, any baseline or results
file it cannot compare: unreadable bytes, broken JSON, a wrong shape, a metric value that is not a
finite number, or a baseline with nothing in it (which would otherwise pass with exit 0)."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any, Callable

import pytest

from chimed_eval.reports.check import EXIT_USAGE
from chimed_eval.cli.app import main
from golden.regenerate import GOLDEN

GOOD = next(g.baseline for g in GOLDEN if g.name == "fake-exam")


def _doc() -> dict[str, Any]:
    return json.loads(GOOD.read_text(encoding="utf-8"))


def _edited(fn: Callable[[dict[str, Any]], None]) -> bytes:
    doc = copy.deepcopy(_doc())
    fn(doc)
    return json.dumps(doc).encode("utf-8")  # allow_nan: NaN/Infinity are written as Python writes them


def _mcq(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["tasks"]["mcq"]


def _metric(doc: dict[str, Any]) -> dict[str, Any]:
    return _mcq(doc)["metrics"][0]


def _named(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in _mcq(doc)["metrics"] if m["name"] == name)


# (case id, the file's bytes, a phrase the error must hold)
BROKEN: list[tuple[str, bytes, str]] = [
    ("random-bytes", random.Random(14).randbytes(512), "not UTF-8"),
    ("empty-file", b"", "invalid JSON"),
    ("truncated-json", GOOD.read_bytes()[:200], "invalid JSON"),
    ("deeply-nested", b"[" * 100_000, "invalid JSON"),
    ("a-list", b"[1, 2]", "expected a 'tasks' object"),
    ("tasks-a-list", _edited(lambda d: d.update(tasks=[])), "expected a 'tasks' object"),
    ("tasks-empty", _edited(lambda d: d.update(tasks={})), "'tasks' is empty"),
    ("task-a-string", _edited(lambda d: d["tasks"].update(mcq="x")), "task 'mcq' must be an object"),
    ("no-items-hash", _edited(lambda d: _mcq(d).pop("items_sha256")), "lacks items_sha256"),
    ("n-a-string", _edited(lambda d: _mcq(d).update(n="24")), "'n' must be a count"),
    ("metrics-a-string", _edited(lambda d: _mcq(d).update(metrics="acc")), "'metrics' must be a list"),
    ("metrics-missing", _edited(lambda d: _mcq(d).pop("metrics")), "lacks metrics"),
    ("metrics-empty", _edited(lambda d: _mcq(d).update(metrics=[])), "'metrics' is empty"),
    ("metric-a-number", _edited(lambda d: _mcq(d).update(metrics=[1])), "metric 1 must be an object"),
    ("metric-without-name", _edited(lambda d: _metric(d).pop("name")), "lacks a 'name'"),
    ("metric-without-value", _edited(lambda d: _metric(d).pop("value")), "metric 'acc' has no 'value'"),
    ("value-a-string", _edited(lambda d: _metric(d).update(value="20.8")), "value '20.8' is not a finite number"),
    ("value-null", _edited(lambda d: _metric(d).update(value=None)), "value None is not a finite number"),
    ("value-nan", _edited(lambda d: _metric(d).update(value=float("nan"))), "value nan is not a finite number"),
    ("value-infinity", _edited(lambda d: _metric(d).update(value=float("inf"))), "value inf is not a finite number"),
    ("value-a-boolean", _edited(lambda d: _metric(d).update(value=True)), "value True is not a finite number"),
    ("ci-a-string", _edited(lambda d: _metric(d).update(ci_low="4")), "ci_low '4' is not a finite number"),
    ("metric-twice", _edited(lambda d: _mcq(d)["metrics"].append(_metric(d))), "metric 'acc' is listed twice"),
    ("items-a-string", _edited(lambda d: _mcq(d).update(items="exam-2")), "'items' must be a list"),
    ("items-not-pairs", _edited(lambda d: _mcq(d)["items"].__setitem__(3, ["exam-5"])), "items[3] must be an [item id"),
    ("items-hash-a-number", _edited(lambda d: _mcq(d)["items"].__setitem__(0, ["exam-2", 7])), "items[0] must be"),
    ("items-too-few", _edited(lambda d: _mcq(d)["items"].pop()), "'items' lists 23 items but 'n' is 24"),
    ("model-a-string", _edited(lambda d: d.update(model="qwen")), "'model' must be an object"),
    ("data-hashes-a-string", _edited(lambda d: _mcq(d).update(data_sha256="ab")), "'data_sha256' must be a list"),
    # intervals that make no sense (issue 22, item 13): each would let a +50-point move pass, or fail
    # the very run the baseline came from
    ("interval-over-the-whole-range", _edited(lambda d: _metric(d).update(value=50.0, ci_low=0.0, ci_high=100.0)),
     "metric 'acc': interval [0, 100] covers the metric's whole range 0..100 over 24 items"),
    ("interval-beyond-the-range", _edited(lambda d: _metric(d).update(value=50.0, ci_low=-1000.0, ci_high=1000.0)),
     "metric 'acc': interval [-1000, 1000] reaches outside the metric's range 0..100"),
    ("interval-without-its-value", _edited(lambda d: _metric(d).update(ci_low=30.0, ci_high=40.0)),
     "metric 'acc': interval [30, 40] does not contain its value 20.8333"),
    ("interval-upside-down", _edited(lambda d: _metric(d).update(ci_low=37.5, ci_high=4.0)),
     "metric 'acc': interval [37.5, 4] does not contain its value"),
    ("brier-interval-beyond-2", _edited(lambda d: _named(d, "brier").update(ci_low=1.0, ci_high=2.5)),
     "metric 'brier': interval [1, 2.5] reaches outside the metric's range 0..2"),
]


def _run(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["check", *argv])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("case,data,phrase", BROKEN, ids=[c[0] for c in BROKEN])
def test_an_unusable_baseline_exits_2_naming_the_file(tmp_path, capsys, case, data, phrase):
    bad = tmp_path / f"{case}.json"
    bad.write_bytes(data)
    rc, err = _run(capsys, str(GOOD), "--baseline", str(bad))
    assert rc == EXIT_USAGE, err
    assert err.startswith(f"chimed-eval: error: {bad}"), err
    assert phrase in err, err
    assert "Traceback" not in err and err.count("\n") == 1


# a results file is read less strictly (a null or NaN value there is a regression to report, not a
# usage error), but what cannot be read or compared at all is refused the same way
CORRUPT_RESULTS = [(case, data, phrase.replace("finite number", "number")) for case, data, phrase in BROKEN if case in (
    "random-bytes", "empty-file", "truncated-json", "deeply-nested", "a-list", "task-a-string", "metrics-a-string",
    "metric-without-value", "value-a-string", "items-not-pairs")]


@pytest.mark.parametrize("case,data,phrase", CORRUPT_RESULTS, ids=[c[0] for c in CORRUPT_RESULTS])
def test_a_corrupt_results_file_exits_2_naming_the_file(tmp_path, capsys, case, data, phrase):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_bytes(data)
    rc, err = _run(capsys, str(run), "--baseline", str(GOOD))
    assert rc == EXIT_USAGE, err
    assert err.startswith(f"chimed-eval: error: {run / 'results.json'}"), err
    assert phrase in err and "Traceback" not in err, err


def test_a_run_with_a_nan_metric_cannot_be_saved_as_a_baseline(tmp_path, capsys):
    """--save-baseline would write what check refuses: refuse it there, and write nothing."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_bytes(_edited(lambda d: _metric(d).update(value=float("nan"))))
    out = tmp_path / "baseline.json"
    capsys.readouterr()
    assert main(["check", str(run), "--save-baseline", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"chimed-eval: error: {run / 'results.json'}") and "value nan" in err, err
    assert not out.exists()


def test_sensible_intervals_pass_at_the_edges_of_their_range(tmp_path, capsys):
    """What real runs write is accepted: intervals at 0 or 100, a value rounded a hair outside a
    zero-width interval at the edge, negative ranges (position bias) and unbounded means."""
    def edit(d: dict[str, Any]) -> None:
        ms = _mcq(d)["metrics"]
        ms[0].update(value=99.99999949999999, ci_low=99.9999995, ci_high=99.9999995)
        ms[1].update(value=0.0, ci_low=0.0, ci_high=12.5)
        ms.append({"name": "position_bias", "value": -20.0, "ci_low": -60.0, "ci_high": 10.0})
        ms.append({"name": "min_k_mean", "value": -3.0, "ci_low": -2000.0, "ci_high": -1.0})
        ms.append({"name": "sacrebleu1_cum", "value": 100.00000000000004, "ci_low": 100.00000000000004,
                   "ci_high": 100.00000000000004})
        # over 5 items a bootstrap interval can reach both ends (0.5 ** 5 >= 2.5% of resamples at each)
        ms.append({"name": "f1", "value": 40.0, "ci_low": 0.0, "ci_high": 100.0, "n": 5})

    base = tmp_path / "b.json"
    base.write_bytes(_edited(edit))
    capsys.readouterr()
    assert main(["check", str(base), "--baseline", str(base)]) == 0, capsys.readouterr().err
