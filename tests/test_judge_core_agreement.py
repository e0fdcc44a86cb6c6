"""Judge agreement: Cohen's kappa against sklearn and a hand-computed case, Krippendorff's alpha
against Krippendorff (2011)'s worked example and the `krippendorff` package, panel votes."""

import math

import numpy as np
import pytest

from chimed_eval.judge.agreement import cohen_kappa, krippendorff_alpha, majority, mean_scores

N = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12 units
PAPER_DATA = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]


@pytest.mark.parametrize("level,published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_alpha_on_the_papers_worked_example(level, published):
    assert krippendorff_alpha(PAPER_DATA, level) == pytest.approx(published, abs=5e-4)


def test_alpha_nominal_by_hand_from_the_papers_coincidence_matrix():
    # the paper's nominal computation: n = 40 pairable values, coincidence diagonal o_cc = 7, 10, 8, 4, 3
    # and margins n_c = 9, 13, 10, 5, 3 (values 1..5); alpha = 1 - (n-1) (n - sum o_cc) / (n^2 - sum n_c^2)
    n, diag, margins = 40, [7, 10, 8, 4, 3], [9, 13, 10, 5, 3]
    by_hand = 1 - (n - 1) * (n - sum(diag)) / (n * n - sum(m * m for m in margins))
    assert krippendorff_alpha(PAPER_DATA, "nominal") == pytest.approx(by_hand, abs=1e-12)


def _random_reliability(seed, judges, items, values, missing):
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, values + 1, items)
    noise = rng.integers(-1, 2, (judges, items)) * (rng.random((judges, items)) < 0.4)
    data = np.clip(truth + noise, 1, values).astype(float)
    data[rng.random((judges, items)) < missing] = np.nan
    return data


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_alpha_matches_the_krippendorff_package(seed, level):
    kd = pytest.importorskip("krippendorff")
    data = _random_reliability(seed, judges=2 + seed, items=40, values=5, missing=0.2)
    ours = krippendorff_alpha([[None if math.isnan(v) else v for v in row] for row in data], level)
    assert ours == pytest.approx(kd.alpha(reliability_data=data, level_of_measurement=level), abs=1e-10)


def test_alpha_edge_cases():
    assert krippendorff_alpha([[1, 2, 3], [1, 2, 3]], "interval") == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha([[3, 3, 3], [3, 3, 3]], "nominal"))  # no variation: undefined
    assert math.isnan(krippendorff_alpha([[1, N], [N, 2]], "nominal"))  # no unit has two values
    assert math.isnan(krippendorff_alpha([], "nominal"))
    # a unit with a single value adds nothing
    assert krippendorff_alpha([[1, 2, 5], [1, 3, N]], "interval") == krippendorff_alpha([[1, 2], [1, 3]], "interval")
    # nominal labels may be strings (pairwise verdicts)
    s = krippendorff_alpha([["A", "B", "tie", "A"], ["A", "B", "tie", "B"]], "nominal")
    assert s == krippendorff_alpha([[0, 1, 2, 0], [0, 1, 2, 1]], "nominal")
    with pytest.raises(ValueError):
        krippendorff_alpha([[1, 2], [1]], "nominal")
    with pytest.raises(ValueError):
        krippendorff_alpha([[1, 2], [1, 2]], "ratio")


def test_kappa_by_hand():
    # 50 items: both yes 20, A yes / B no 5, A no / B yes 10, both no 15 -> p_o = 0.7, p_e = 0.5, kappa = 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_matches_sklearn(seed, weights):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, 60)
    b = np.clip(a + rng.integers(-2, 3, 60) * (rng.random(60) < 0.5), 1, 5)
    expected = metrics.cohen_kappa_score(a, b, weights=weights)
    assert cohen_kappa(a.tolist(), b.tolist(), weights=weights) == pytest.approx(expected, abs=1e-12)
    labels = [1, 2, 3, 4, 5, 6]  # an unused label changes nothing, as in sklearn
    assert cohen_kappa(a.tolist(), b.tolist(), weights, labels) == pytest.approx(
        metrics.cohen_kappa_score(a, b, weights=weights, labels=labels), abs=1e-12)


def test_kappa_label_order_drives_the_weights_as_in_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    a = ["A", "B", "tie", "A", "B", "tie", "A", "A"]
    b = ["A", "tie", "tie", "B", "B", "A", "A", "tie"]
    order = ["A", "tie", "B"]
    assert cohen_kappa(a, b, "linear", order) == pytest.approx(
        metrics.cohen_kappa_score(a, b, labels=order, weights="linear"), abs=1e-12)
    assert cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b), abs=1e-12)


def test_kappa_drops_missing_and_is_nan_when_undefined():
    a = [1, 2, None, 3, 2, float("nan")]
    b = [1, 3, 2, 3, None, 1]
    assert cohen_kappa(a, b) == cohen_kappa([1, 2, 3], [1, 3, 3])
    assert math.isnan(cohen_kappa([None], [1]))
    assert math.isnan(cohen_kappa([], []))
    assert math.isnan(cohen_kappa([2, 2, 2], [2, 2, 2]))  # both constant and equal: no expected disagreement
    with pytest.raises(ValueError):
        cohen_kappa([1, 2], [1])
    with pytest.raises(ValueError):
        cohen_kappa([1, 7], [1, 2], labels=[1, 2, 3])


@pytest.mark.parametrize("votes,expected", [
    (["win", "win", "loss"], "win"),
    (["win", "loss"], "tie"),  # a split panel is a tie
    (["win", "tie"], "tie"),
    (["A", "B", "B"], "B"),
    (["win", None, None], "win"),  # invalid votes do not count
    ([None, None], None),
    ([], None),
    (["loss", "loss", "win", "win", "tie"], "tie"),
])
def test_majority(votes, expected):
    assert majority(votes) == expected


def test_mean_scores_drop_invalid():
    assert mean_scores([4.0, None, 3.0]) == pytest.approx(3.5)
    assert mean_scores([None, float("nan")]) is None
    assert mean_scores([2]) == 2.0
