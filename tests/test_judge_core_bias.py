"""Judge bias figures: the detectors find the bias a simulated judge was given, and only that;
invalid verdicts are excluded, never scored as a loss; Spearman against scipy."""

import math

import numpy as np
import pytest

from chimed_eval.judge import bias as B
from chimed_eval.metrics.stats import bootstrap_mean_ci

N_ITEMS = 2000


def _world(seed=0, n=N_ITEMS):
    """Comparisons of a candidate with a baseline: quality gap and answer lengths (candidate longer on average)."""
    rng = np.random.default_rng(seed)
    len_base = rng.integers(80, 400, n)
    len_cand = np.maximum(10, len_base + rng.normal(120, 150, n)).astype(int)
    quality_gap = rng.normal(0.0, 1.0, n)  # candidate minus baseline; mean 0: equally good
    return rng, quality_gap, len_cand, len_base


def _verdict(prefer_first_shown: bool) -> str:
    return "A" if prefer_first_shown else "B"


def _judge_both_orders(prefers_candidate):
    """(first, second) position-term verdicts of a judge whose preference ignores position."""
    first = [_verdict(p) for p in prefers_candidate]  # candidate shown as A
    second = [_verdict(not p) for p in prefers_candidate]  # candidate shown as B
    return list(zip(first, second))


@pytest.mark.parametrize("first,second,expected", [
    ("A", "B", ("win", False)),
    ("B", "A", ("loss", False)),
    ("tie", "tie", ("tie", False)),
    ("A", "A", ("tie", True)),  # always the first shown: changes with position
    ("B", "B", ("tie", True)),
    ("A", "tie", ("tie", True)),  # win in one order, tie in the other: a flip
    ("tie", "A", ("tie", True)),
    (None, "B", (None, False)),  # invalid in either order: excluded, not a loss
    ("A", None, (None, False)),
    (None, None, (None, False)),
])
def test_combine_orders(first, second, expected):
    assert B.combine_orders(first, second) == expected


def test_combine_orders_refuses_unknown_verdicts():
    with pytest.raises(ValueError):
        B.combine_orders("C", "A")
    with pytest.raises(ValueError):
        B.position_preference([("win", "A")])


def test_position_biased_judge_is_caught():
    pairs = [("A", "A")] * 300
    assert B.flip_rate(pairs) == 1.0
    assert B.position_preference(pairs) == 1.0
    outcomes = [B.combine_orders(a, b)[0] for a, b in pairs]
    assert B.win_rate(outcomes) == 50.0  # every comparison collapses to a tie


def test_unbiased_judge_shows_no_position_bias():
    rng, gap, _, _ = _world(1)
    noisy = gap + rng.normal(0, 0.3, gap.size)  # the judge's own noise, the same whichever order
    pairs = _judge_both_orders(noisy > 0)
    assert B.flip_rate(pairs) == 0.0
    assert B.position_preference(pairs) == pytest.approx(0.5)  # A and B each named once per comparison
    assert abs(B.win_rate([B.combine_orders(a, b)[0] for a, b in pairs]) - 50) < 5


def test_partly_position_biased_judge_gives_an_intermediate_flip_rate():
    rng, gap, _, _ = _world(2)
    biased = rng.random(gap.size) < 0.3  # 30% of comparisons: the judge names whatever is shown first
    pairs = [("A", "A") if b else pair for b, pair in zip(biased, _judge_both_orders(gap > 0))]
    assert B.flip_rate(pairs) == pytest.approx(biased.mean())
    assert 0.6 < B.position_preference(pairs) < 0.7


def test_invalid_verdicts_are_excluded_never_scored_as_losses():
    pairs = [("A", "B"), ("A", None), (None, "A"), (None, None)]
    outcomes = [B.combine_orders(a, b)[0] for a, b in pairs]
    assert outcomes == ["win", None, None, None]
    assert B.win_rate(outcomes) == 100.0  # 1 valid win, not 1 of 4
    assert B.flip_rate(pairs) == 0.0
    assert B.position_preference(pairs) == pytest.approx(3 / 4)  # A, B, A, A: single-order verdicts count alone
    assert math.isnan(B.win_rate([None, None]))
    assert math.isnan(B.flip_rate([(None, "A")]))
    assert B.length_controlled_win_rate(["win", None, "loss", None], [9, 1, 5, 1], [3, 1, 5, 1]) == \
        B.length_controlled_win_rate(["win", "loss"], [9, 5], [3, 5])


def test_win_rate_and_its_interval():
    outcomes = ["win", "win", "tie", "loss", None]
    assert B.win_rate(outcomes) == pytest.approx(62.5)
    assert B.win_rate_ci(outcomes, seed=3) == bootstrap_mean_ci([100, 100, 50, 0], seed=3)
    lo, hi = B.win_rate_ci(["win"] * 60 + ["loss"] * 40, seed=0)
    assert lo < 60 < hi
    with pytest.raises(ValueError):
        B.win_rate(["A"])


def test_length_biased_judge_raw_far_from_50_length_controlled_near_50():
    rng, gap, lc, lb = _world(3)
    z = (lc - lb) / np.std(lc - lb)
    picks_candidate = rng.random(gap.size) < 1 / (1 + np.exp(-2.0 * z))  # only length matters
    outcomes = ["win" if p else "loss" for p in picks_candidate]
    raw, lc_rate = B.win_rate(outcomes), B.length_controlled_win_rate(outcomes, lc.tolist(), lb.tolist())
    assert raw > 70
    assert abs(lc_rate - 50) < 5


def test_length_control_keeps_a_real_quality_difference():
    rng, gap, lc, lb = _world(4)
    outcomes = ["win" if g + 0.5 > 0 else "loss" for g in gap]  # better candidate, length ignored
    raw, lc_rate = B.win_rate(outcomes), B.length_controlled_win_rate(outcomes, lc.tolist(), lb.tolist())
    assert raw > 65
    assert abs(lc_rate - raw) < 4


def test_always_the_longer_answer_separates_perfectly_and_the_fit_stays_finite():
    _, _, lc, lb = _world(5)
    outcomes = ["win" if c > b else "loss" if c < b else "tie" for c, b in zip(lc, lb)]
    raw, lc_rate = B.win_rate(outcomes), B.length_controlled_win_rate(outcomes, lc.tolist(), lb.tolist())
    assert math.isfinite(lc_rate) and raw > 70
    assert abs(lc_rate - 50) < abs(raw - 50) / 2


def test_length_control_degenerate_cases_return_the_raw_rate():
    assert B.length_controlled_win_rate(["win", "win"], [5, 9], [3, 3]) == 100.0
    assert B.length_controlled_win_rate(["win", "loss", "tie"], [5, 5, 5], [3, 3, 3]) == 50.0
    assert math.isnan(B.length_controlled_win_rate([None], [1], [1]))


def test_length_correlation_finds_a_length_biased_scorer_and_not_an_unbiased_one():
    rng, gap, lengths, _ = _world(6)
    quality = rng.integers(1, 6, lengths.size)
    by_length = np.clip(np.round(1 + 4 * (lengths - lengths.min()) / np.ptp(lengths) + rng.normal(0, 0.5, lengths.size)), 1, 5)
    rho, n = B.length_correlation(by_length.tolist(), lengths.tolist())
    assert rho > 0.7 and n == lengths.size
    rho0, _ = B.length_correlation(quality.tolist(), lengths.tolist())
    assert abs(rho0) < 0.1
    scores = [None if i % 4 == 0 else float(s) for i, s in enumerate(by_length)]
    assert B.length_correlation(scores, lengths.tolist())[1] == lengths.size - (lengths.size + 3) // 4


@pytest.mark.parametrize("seed", range(4))
def test_spearman_matches_scipy_with_ties(seed):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 6, 50)  # many ties
    y = x + rng.integers(0, 4, 50)
    assert B.spearman(x.tolist(), y.tolist()) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_spearman_by_hand_and_undefined():
    assert B.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert B.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks x = 1, 2.5, 2.5, 4; y = 1, 2, 3, 4: r = 4.5 / sqrt(4.5 * 5)
    assert B.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert math.isnan(B.spearman([1], [2]))
    assert math.isnan(B.spearman([3, 3, 3], [1, 2, 3]))


def _panel(self_bonus=1.0, lenient=0.5, invalid=()):
    """Judges m1, m2, m3 score answers by m1, m2, m3: m1 adds `self_bonus` to its own model's answers,
    m2 adds `lenient` to every answer, m3 scores the plain quality."""
    rng = np.random.default_rng(7)
    producer = {f"q{i}-{m}": m for i in range(30) for m in ("m1", "m2", "m3")}
    quality = {a: float(rng.integers(1, 5)) for a in producer}
    scores = {
        "m1": {a: q + (self_bonus if producer[a] == "m1" else 0.0) for a, q in quality.items()},
        "m2": {a: q + lenient for a, q in quality.items()},
        "m3": dict(quality),
    }
    for judge, answer in invalid:
        scores[judge][answer] = None
    return scores, producer


def test_self_preference_finds_the_bonus_and_separates_it_from_leniency():
    scores, producer = _panel(invalid=[("m1", "q0-m1"), ("m1", "q1-m1")])
    sp = B.self_preference(scores, producer, "m1", seed=0)
    # own answers: m1 gives q + 1, the others q + 0.5 and q: peers q + 0.25 -> delta 0.75
    assert sp.delta == pytest.approx(0.75) and sp.n == 28  # the two invalid scores are left out, not zero
    assert sp.own - sp.peers == pytest.approx(0.75)
    assert sp.ci[0] <= 0.75 <= sp.ci[1]
    # other answers: m1 gives q, peers q + 0.25 -> leniency -0.25; net = 1.0, the bonus itself
    assert sp.leniency == pytest.approx(-0.25) and sp.n_other == 60
    assert sp.net == pytest.approx(1.0)


def test_no_self_preference_when_no_judge_has_one():
    scores, producer = _panel(self_bonus=0.0, lenient=0.0)
    for judge in ("m1", "m2", "m3"):
        sp = B.self_preference(scores, producer, judge)
        assert sp.delta == pytest.approx(0.0) and sp.net == pytest.approx(0.0)


def test_self_preference_with_another_model_name_and_errors():
    scores, producer = _panel()
    renamed = {("judge-x" if j == "m1" else j): s for j, s in scores.items()}
    assert B.self_preference(renamed, producer, "judge-x", judge_model="m1").net == pytest.approx(1.0)
    with pytest.raises(ValueError):
        B.self_preference(scores, producer, "nobody")
    lone = B.self_preference({"m1": scores["m1"]}, producer, "m1")  # no other judge: undefined
    assert lone.n == 0 and math.isnan(lone.delta)


def test_pairwise_self_preference():
    rng = np.random.default_rng(8)
    candidate = {f"c{i}": ("m1" if i < 100 else "m2") for i in range(200)}
    fair = {c: ("win" if rng.random() < 0.5 else "loss") for c in candidate}
    outcomes = {
        "m1": {c: ("win" if candidate[c] == "m1" else o) for c, o in fair.items()},  # always favours itself
        "m2": dict(fair),
        "m3": {c: (None if i % 10 == 0 else o) for i, (c, o) in enumerate(fair.items())},
    }
    sp = B.pairwise_self_preference(outcomes, candidate, "m1", seed=1)
    own_fair = [fair[c] for c in candidate if candidate[c] == "m1"]
    assert sp.own == 100.0 and sp.n == 100
    assert sp.peers == pytest.approx(B.win_rate(own_fair))
    assert sp.delta == pytest.approx(100.0 - B.win_rate(own_fair))
    assert sp.leniency == pytest.approx(0.0) and sp.net == pytest.approx(sp.delta)
    fair_judge = B.pairwise_self_preference(outcomes, candidate, "m2")
    assert fair_judge.n == 100 and fair_judge.own == pytest.approx(fair_judge.peers)
