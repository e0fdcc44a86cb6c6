"""Intervals that can leave 0 % and 100 % and that depend on the items, not the file order
(issue 22 items 1 and 3): Wilson for proportions, MOVER-Wilson for means over subjects, the
bootstrap for the rest, each named in results.json's ``ci_method``; one Wilson implementation for
runs and ``chimed-eval contamination``."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.metrics.choice import accuracy_metrics
from chimed_eval.metrics.multi_answer import multi_answer_metrics
from chimed_eval.metrics.repeats import RepeatOutcome, repeat_metrics
from chimed_eval.metrics.robustness import PermutedResult, robustness_metrics
from chimed_eval.metrics.stats import (
    BOOTSTRAP, WILSON, WILSON_MOVER, bootstrap_macro_ci, bootstrap_mean_ci, macro_ci, macro_proportion_ci, mean_ci,
    proportion_ci, wilson,
)
from chimed_eval.core.types import SampleScore
from conftest import write_exam_csv

SCHEMA = Path(__file__).resolve().parents[1] / "chimed_eval" / "schema" / "results.schema.json"
Z = 1.959964


def _wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


# --- the methods, as data ---------------------------------------------------------------------------

WILSON_CASES = [  # (successes, n, low, high): the edges have width, 1 of 1 is not [1, 1]
    (1, 1, _wilson_by_hand(1, 1)[0], 1.0),
    (0, 1, 0.0, _wilson_by_hand(0, 1)[1]),
    (0, 200, 0.0, _wilson_by_hand(0, 200)[1]),
    (200, 200, _wilson_by_hand(200, 200)[0], 1.0),
    (41, 41, _wilson_by_hand(41, 41)[0], 1.0),
    (12, 41, *_wilson_by_hand(12, 41)),
]


@pytest.mark.parametrize("k,n,lo,hi", WILSON_CASES)
def test_wilson_interval_has_width_at_the_edges(k, n, lo, hi):
    got = wilson(k, n)
    assert got == pytest.approx((lo, hi), abs=1e-12)
    assert got[1] - got[0] > 0.0
    assert proportion_ci([1.0] * k + [0.0] * (n - k)) == pytest.approx(got, abs=1e-12)


def test_known_wilson_values():
    assert wilson(1, 1) == pytest.approx((0.2065493, 1.0), abs=1e-6)  # the one-item run's acc: [20.65, 100]
    assert wilson(0, 200)[1] == pytest.approx(0.0188453, abs=1e-6)  # circular_acc 0 over 200 items: [0, 1.88]
    assert wilson(0, 0) is None


def test_runs_contamination_and_training_share_one_wilson():
    from chimed_eval.contamination import report as contamination_report
    from chimed_eval.metrics import stats
    from chimed_eval.training import measure

    assert contamination_report.wilson is stats.wilson
    assert measure.wilson(3, 7) == stats.wilson(3, 7)


def test_macro_interval_is_mover_of_the_subjects_wilson_intervals():
    groups = {"b": [1.0] * 3 + [0.0] * 7, "a": [1.0] * 9 + [0.0]}
    pa, pb = 0.9, 0.3
    (la, ua), (lb, ub) = wilson(9, 10), wilson(3, 10)
    macro = (pa + pb) / 2
    expect = (macro - math.hypot(pa - la, pb - lb) / 2, macro + math.hypot(ua - pa, ub - pb) / 2)
    assert macro_proportion_ci(groups) == pytest.approx(expect, abs=1e-12)
    assert macro_ci(groups, seed=0) == pytest.approx((*expect, WILSON_MOVER))
    assert macro_proportion_ci({"only": [1.0]}) == pytest.approx(wilson(1, 1))  # one subject: its Wilson interval
    lo, hi = macro_proportion_ci({"a": [0.0] * 20, "b": [0.0] * 30})
    assert lo == 0.0 and hi > 0.0  # every subject at 0 %: still an upper bound above 0


def test_non_proportions_take_the_bootstrap_except_at_the_edges():
    lo, hi, method = mean_ci([0.5, 0.25, 1.0, 0.0, 0.75], seed=3)
    assert method == BOOTSTRAP and (lo, hi) == bootstrap_mean_ci([0.5, 0.25, 1.0, 0.0, 0.75], seed=3)
    lo, hi, method = mean_ci([0.0] * 24, seed=3)  # option F1 0 on every item: right/wrong data, Wilson
    assert method == WILSON and lo == 0.0 and hi == pytest.approx(wilson(0, 24)[1])
    assert macro_ci({"a": [0.5, 0.0], "b": [1.0]}, seed=1)[2] == BOOTSTRAP
    # nothing to resample (one item, or every item alike): Wilson on the rescaled scores, not [x, x]
    lo, hi, method = mean_ci([0.3] * 6, seed=0)
    assert method == WILSON and lo < 0.3 < hi and (lo, hi) == pytest.approx(wilson(1.8, 6))
    lo, hi, method = mean_ci([3.0] * 8, seed=0, low=1.0, high=5.0)  # a scale item always answered 3 on 1..5
    assert method == WILSON and (lo, hi) == pytest.approx(tuple(1.0 + 4.0 * v for v in wilson(4.0, 8)))
    lo, hi, method = mean_ci([0.25], seed=0, low=0.0, high=2.0)  # one item's Brier score
    assert method == WILSON and lo < 0.25 < hi


def test_figures_at_zero_and_one_item_have_width_and_name_their_method():
    one = [SampleScore(id="q", subject=None, prompt="p", prompt_hash="h", gold="A", prediction="A", score=1.0)]
    by = {m.name: m for m in accuracy_metrics(one, seed=0)[0]}
    assert by["acc"].ci_low == pytest.approx(20.65493, abs=1e-4) and by["acc"].ci_high == 100.0
    assert by["acc"].ci_method == WILSON and "acc_macro" not in by  # one subject: no macro figure
    two = one + [SampleScore(id="r", subject="other", prompt="p", prompt_hash="h", gold="A", prediction="A", score=1.0)]
    macro = {m.name: m for m in accuracy_metrics(two, seed=0)[0]}["acc_macro"]
    assert macro.ci_method == WILSON_MOVER and macro.ci_low < 100.0 == macro.ci_high
    # circular_acc 0 over 200 items (a model always answering A under 4 rotations)
    results = [PermutedResult(f"q{i}", k, tuple((j + k) % 4 for j in range(4)), k, 1) for i in range(200)
               for k in range(4)]
    rob = {m.name: m for m in robustness_metrics(results, seed=0)}
    assert rob["circular_acc"].value == 0.0 and rob["circular_acc"].ci_high == pytest.approx(1.88453, abs=1e-4)
    assert rob["circular_acc"].ci_method == WILSON and rob["position_bias"].ci_method == BOOTSTRAP
    # acc_exact_set 0 over 24 items
    multi = {m.name: m for m in multi_answer_metrics(["A"] * 24, ["AB"] * 24, seed=0)}
    assert multi["acc_exact_set"].ci_high > 0.0 and multi["acc_exact_set"].ci_method == WILSON
    rep = {m.name: m for m in repeat_metrics([RepeatOutcome(f"q{i}", r, "A", False) for i in range(30)
                                              for r in range(5)], seed=0)}
    assert rep["avg@5"].ci_high > 0.0 and rep["maj@5"].ci_high > 0.0 and rep["avg@5"].ci_method == WILSON


# --- end to end: what is printed and written --------------------------------------------------------


def _printed_interval(out: str, metric: str) -> tuple[float, float]:
    m = re.search(rf"\s{re.escape(metric)}\s+[a-z]+\s+[\d.]+\s+\[([\d.]+), ([\d.]+)\]", out)
    assert m, out
    return float(m.group(1)), float(m.group(2))


@pytest.mark.parametrize("n_items", [1, 41])
def test_oracle_runs_print_an_acc_interval_of_non_zero_width(tmp_path, capsys, n_items):
    f = write_exam_csv(tmp_path / "exam.csv", n_items)
    out = tmp_path / "o"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq",
                 "--task-args", f"path={f}", "--output", str(out)]) == 0
    lo, hi = _printed_interval(capsys.readouterr().out, "acc")
    assert hi == 100.0 and lo == pytest.approx(100 * wilson(n_items, n_items)[0], abs=0.005) and lo < hi
    res = json.loads((out / "results.json").read_text())
    acc = next(m for m in res["tasks"]["mcq"]["metrics"] if m["name"] == "acc")
    assert acc["ci_method"] == "wilson" and acc["ci_low"] < acc["ci_high"]
    assert all(m["ci_low"] < m["ci_high"] for m in res["tasks"]["mcq"]["metrics"] if m["ci_low"] is not None)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(res, json.loads(SCHEMA.read_text()))


def test_real_41_item_oracle_run_prints_an_acc_interval_of_non_zero_width(shared_data, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "ceval-medical-paper",
                 "--output", str(out), "--data-dir", str(shared_data)]) == 0
    lo, hi = _printed_interval(capsys.readouterr().out, "acc")
    assert (lo, hi) == (pytest.approx(91.43, abs=0.01), 100.0)


def test_every_interval_names_its_method_in_results_json(tmp_path):
    f = write_exam_csv(tmp_path / "exam.csv", 12)
    out = tmp_path / "o"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "mcq",
                 "--task-args", f"path={f}", "--shuffle-choices", "4", "--output", str(out)]) == 0
    metrics = json.loads((out / "results.json").read_text())["tasks"]["mcq"]["metrics"]
    methods = {m["name"]: m["ci_method"] for m in metrics}
    assert all((m["ci_method"] is None) == (m["ci_low"] is None) for m in metrics), metrics
    assert (methods["acc"], methods["all_orders_acc"], methods["brier"]) == (WILSON, WILSON, BOOTSTRAP)


# --- item 3: the file's line order does not matter --------------------------------------------------


def _write_subject_exam(path: Path, n: int) -> Path:
    rows = ["id,question,A,B,C,D,answer,subject"]
    for i in range(n):
        rows.append(f"q{i},第{i}题：下列哪项正确,甲{i},乙{i},丙{i},丁{i},{'ABCD'[i * 7 % 4]},科目{i % 3}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _shuffle_lines(path: Path, seed: int) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    random.Random(seed).shuffle(lines)
    path.write_text("".join(lines), encoding="utf-8")


def _figures(out: Path) -> dict:
    res = json.loads((out / "results.json").read_text())
    return {name: (t["metrics"], t["subjects"], t["n"]) for name, t in res["tasks"].items()}


@pytest.mark.parametrize("extra", [(), ("--shuffle-choices", "3")])
def test_score_after_shuffling_the_samples_file_gives_the_same_figures(tmp_path, extra):
    f = _write_subject_exam(tmp_path / "exam.csv", 60)
    out = tmp_path / "o"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "mcq",
                 "--task-args", f"path={f},subject=subject", *extra, "--output", str(out)]) == 0
    before = _figures(out)
    for seed in (1, 2):
        _shuffle_lines(out / "samples" / "mcq.jsonl", seed)
        assert main(["score", str(out)]) == 0
        assert _figures(out) == before


def test_generation_figures_do_not_depend_on_the_file_order(tmp_path):
    from conftest import write_qa_run

    out = write_qa_run(tmp_path, ["低盐饮食", "规律服药，定期复查", "戒烟限酒", "多喝水", "按时休息", "适量运动"], "qa",
                       model="fixed:低盐饮食，规律服药")
    before = _figures(out)
    _shuffle_lines(out / "samples" / "my-qa.jsonl", 5)
    assert main(["score", str(out)]) == 0
    assert _figures(out) == before


def test_macro_bootstrap_walks_subjects_by_name():
    a = bootstrap_macro_ci({"x": [0.2, 0.9, 0.4], "y": [0.1, 0.5]}, seed=4)
    assert a == bootstrap_macro_ci({"y": [0.5, 0.1], "x": [0.4, 0.2, 0.9]}, seed=4)
    assert bootstrap_mean_ci([0.3, 0.9, 0.1], seed=2) == bootstrap_mean_ci([0.9, 0.1, 0.3], seed=2)


def test_compare_paired_bootstrap_does_not_depend_on_the_pairs_order():
    from chimed_eval.reports.html import paired_bootstrap

    a = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0]
    b = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    order = [3, 7, 0, 9, 1, 5, 2, 8, 6, 4]
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap([a[i] for i in order], [b[i] for i in order], seed=5)
