"""Accuracy over items and subjects, bootstrap intervals: values checked by hand."""

import pytest

from chimed_eval.metrics.choice import accuracy_metrics
from chimed_eval.metrics.stats import bootstrap_macro_ci, bootstrap_mean_ci
from chimed_eval.core.types import SampleScore


def _s(i, subject, score, gen=None, failed=False):
    return SampleScore(id=str(i), subject=subject, prompt="p", prompt_hash="h", gold="A", prediction="A",
                       score=score, generation=gen, extraction_failed=failed)


def test_items_and_subject_averages_differ_and_are_both_named():
    # subject a: 3/4 correct, subject b: 0/1 -> items 3/5 = 60%, subjects (75 + 0)/2 = 37.5%
    scores = [_s(0, "a", 1), _s(1, "a", 1), _s(2, "a", 1), _s(3, "a", 0), _s(4, "b", 0)]
    metrics, subjects = accuracy_metrics(scores, seed=0)
    by = {m.name: m for m in metrics}
    assert by["acc"].value == pytest.approx(60.0) and by["acc"].averaging == "items"
    assert by["acc_macro"].value == pytest.approx(37.5) and by["acc_macro"].averaging == "subjects"
    assert subjects == {"a": {"n": 4, "acc": 75.0}, "b": {"n": 1, "acc": 0.0}}
    assert by["acc"].ci_low <= by["acc"].value <= by["acc"].ci_high
    assert by["acc"].n == 5


def test_extraction_failures_are_reported():
    scores = [_s(0, None, 0, gen="?", failed=True), _s(1, None, 1, gen="A")]
    metrics, _ = accuracy_metrics(scores, seed=0)
    by = {m.name: m for m in metrics}
    assert by["extraction_failure_rate"].value == 50.0
    assert by["acc"].value == 50.0  # a failure counts as wrong, never dropped


def test_bootstrap_is_seeded_and_sane():
    vals = [1.0] * 30 + [0.0] * 10
    a = bootstrap_mean_ci(vals, seed=7)
    assert a == bootstrap_mean_ci(vals, seed=7)
    assert a != bootstrap_mean_ci(vals, seed=8)
    lo, hi = a
    assert 0.55 < lo < 0.75 < hi < 0.9
    # 41 items at ~50%: the interval is about +-15 points, as PAPER.md notes for C-Eval
    lo, hi = bootstrap_mean_ci([1.0] * 20 + [0.0] * 21, seed=0)
    assert 0.25 < hi - lo < 0.36
    assert bootstrap_mean_ci([1.0, 1.0], seed=0) == (1.0, 1.0)


def test_macro_bootstrap_keeps_groups():
    lo, hi = bootstrap_macro_ci({"a": [1.0] * 10, "b": [0.0] * 10}, seed=0)
    assert lo == hi == 0.5
