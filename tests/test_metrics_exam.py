"""Exam metrics beyond single-letter accuracy, as data tables with hand-computed values:
multiple answers (exact set, option F1), robustness to option order (shuffled acc, CircularEval,
position bias), calibration (ECE, Brier, reliability bins) and repeats (avg@K, maj@K, pass@k)."""

from __future__ import annotations

import math
import random

import pytest

from chimed_eval.metrics.calibration import (bin_index, brier_scores, calibration_metrics,
                                             expected_calibration_error, reliability_bins, softmax)
from chimed_eval.metrics.multi_answer import (as_option_set, exact_set_match, letters_to_set, multi_answer_metrics,
                                              option_f1)
from chimed_eval.metrics.repeats import RepeatOutcome, majority_answer, pass_at_k, repeat_metrics
from chimed_eval.metrics.robustness import (PermutedResult, apply_permutation, is_circular, permutations,
                                            prediction_shares, robustness_metrics, rotations)


def assert_interval_holds(metrics):
    for m in metrics:
        if m.ci_low is not None:
            assert m.ci_low <= m.value + 1e-9 and m.value <= m.ci_high + 1e-9, m


# --- multiple answers --------------------------------------------------------------------------------

MULTI = [  # pred, gold, exact set match, option F1 = 2|P∩G|/(|P|+|G|)
    ("ABD", "ABD", 1.0, 1.0),
    ("AB", "ABD", 0.0, 4 / 5),
    ("ABCD", "ABD", 0.0, 6 / 7),
    ("C", "ABD", 0.0, 0.0),
    ("", "A", 0.0, 0.0),
    ("B", "B", 1.0, 1.0),
    ("A", "B", 0.0, 0.0),
    ("DBA", "ABD", 1.0, 1.0),  # order does not matter
    ("", "", 1.0, 1.0),
    ("BC", "CDE", 0.0, 2 / 5),
]


@pytest.mark.parametrize("pred,gold,exact,f1", MULTI)
def test_exact_set_and_option_f1_table(pred, gold, exact, f1):
    p, g = letters_to_set(pred), letters_to_set(gold)
    assert exact_set_match(p, g) == exact
    assert option_f1(p, g) == pytest.approx(f1, abs=1e-12)


@pytest.mark.parametrize("value,expected", [
    (2, {2}), ("ABD", {0, 1, 3}), ((0, 3), {0, 3}), ([1, 1], {1}), (None, set()), ("", set()),
])
def test_option_sets_from_stored_values(value, expected):
    assert as_option_set(value) == frozenset(expected)


@pytest.mark.parametrize("bad", ["A,B", "a", "Ａ", "A B", "A、B"])
def test_letters_to_set_refuses_what_the_extractor_must_parse(bad):
    with pytest.raises(ValueError, match="capitals"):
        letters_to_set(bad)


def test_multi_answer_metrics_are_percentages_with_intervals():
    preds = ["ABD", "AB", "ABCD", 2, None]
    golds = ["ABD", "ABD", "ABD", "ABD", 0]
    ms = {m.name: m for m in multi_answer_metrics(preds, golds, seed=7, protocol="generate")}
    assert ms["acc_exact_set"].value == pytest.approx(20.0)
    assert ms["option_f1"].value == pytest.approx(100 * (1 + 0.8 + 6 / 7) / 5)
    assert all(m.n == 5 and m.averaging == "items" and m.protocol == "generate" for m in ms.values())
    assert_interval_holds(ms.values())
    assert multi_answer_metrics(preds, golds, seed=7) == multi_answer_metrics(preds, golds, seed=7)
    with pytest.raises(ValueError, match="4 predictions for 5"):
        multi_answer_metrics(preds[:4], golds, seed=7)


# --- robustness ----------------------------------------------------------------------------------------


def test_rotations_are_the_circular_eval_orders_and_k_equal_n_stays_sampled():
    assert rotations(4) == ((0, 1, 2, 3), (1, 2, 3, 0), (2, 3, 0, 1), (3, 0, 1, 2))
    assert rotations(2) == ((0, 1), (1, 0))
    assert permutations(4, 4, seed=1, item_id="x") != rotations(4)  # K = n sampled orders are not CircularEval
    assert apply_permutation(("w", "x", "y", "z"), (1, 2, 3, 0)) == ("x", "y", "z", "w")


def _always_a(item: str, gold: int, perms) -> list[PermutedResult]:
    return [PermutedResult(item, r, p, p[0], gold) for r, p in enumerate(perms)]


# (results, is_circular, name of the all-orders figure, its value): issue 22 item 2
ALL_ORDERS = [
    # always A under the 4 rotations: never right under every order (CircularEval)
    (_always_a("a", 0, rotations(4)) + _always_a("b", 2, rotations(4)), True, "circular_acc", 0.0),
    # always A under 2 sampled orders that both keep the gold at A: right under both, so not circular_acc
    (_always_a("a", 0, ((0, 1, 2, 3), (0, 2, 1, 3))) + _always_a("b", 2, ((0, 1, 2, 3), (1, 0, 2, 3))), False,
     "all_orders_acc", 50.0),
    # each item under its own n rotations (4 and 2 options)
    (_always_a("a", 1, rotations(4)) + _always_a("b", 0, rotations(2)), True, "circular_acc", 0.0),
    # rotations of 4 for one item, 2 sampled orders for another: not CircularEval as a whole
    (_always_a("a", 1, rotations(4)) + _always_a("b", 0, ((0, 1, 2, 3), (0, 3, 2, 1))), False, "all_orders_acc", 50.0),
    # three of the four rotations only
    (_always_a("a", 1, rotations(4)[:3]), False, "all_orders_acc", 0.0),
]


@pytest.mark.parametrize("results,circular,name,value", ALL_ORDERS)
def test_right_under_every_order_is_named_circular_only_for_the_rotations(results, circular, name, value):
    assert is_circular(results) == circular
    ms = {m.name: m for m in robustness_metrics(results, seed=0)}
    assert ms[name].value == pytest.approx(value)
    assert {"circular_acc", "all_orders_acc"} & set(ms) == {name}


@pytest.mark.parametrize("n,k", [(4, 1), (4, 3), (5, 8), (3, 6), (2, 2), (10, 5)])
def test_seeded_permutations_are_distinct_start_with_identity_and_repeat(n, k):
    perms = permutations(n, k, seed=3, item_id="item-1")
    assert len(perms) == k == len(set(perms))
    assert all(sorted(p) == list(range(n)) for p in perms)
    assert perms[0] == tuple(range(n))  # the identity first, whatever k is
    assert permutations(n, k, seed=3, item_id="item-1") == perms  # a rerun / resume sees the same orders


def test_seeded_permutations_depend_on_seed_and_item():
    base = [permutations(5, 3, seed=0, item_id=f"i{j}") for j in range(20)]
    assert len(set(base)) > 1  # items get their own orders
    other = [permutations(5, 3, seed=1, item_id=f"i{j}") for j in range(20)]
    assert base != other


@pytest.mark.parametrize("n,k", [(3, 7), (4, 0), (0, 1), (2, 3)])
def test_impossible_permutation_counts_are_refused(n, k):
    with pytest.raises(ValueError):
        permutations(n, k, seed=0, item_id="x")


def _rotations(item: str, gold: int, answer) -> list[PermutedResult]:
    """Item scored under the 4 rotations; ``answer(perm)`` returns the predicted original index."""
    return [PermutedResult(item, r, p, answer(p), gold) for r, p in enumerate(rotations(4))]


def test_circular_eval_table():
    # item a: always answers the letter A (original option perm[0]); gold 0 -> right only unrotated.
    # item b: always right (gold 2), shown at C, B, A, D across the rotations.
    results = _rotations("a", 0, lambda p: p[0]) + _rotations("b", 2, lambda p: 2)
    ms = {m.name: m for m in robustness_metrics(results, seed=5, protocol="letter")}
    assert ms["acc_shuffled"].value == pytest.approx(62.5)  # (1/4 + 4/4) / 2
    assert ms["circular_acc"].value == pytest.approx(50.0)
    assert ms["acc_shuffled"].n == ms["circular_acc"].n == 2
    # letters: a -> A x4; b -> C, B, A, D: A 5/8, the rest 1/8 each
    shares = {k: m.value for k, m in ms.items() if k.startswith("pred_share_")}
    assert shares == pytest.approx({"pred_share_A": 62.5, "pred_share_B": 12.5, "pred_share_C": 12.5,
                                    "pred_share_D": 12.5})
    assert ms["position_bias"].value == pytest.approx(62.5 - 25.0)
    assert_interval_holds(ms.values())


SHARES = [  # results, shares, position bias
    # SmolLM2 under lm-eval's template: always A
    ([PermutedResult(f"i{j}", 0, (0, 1, 2, 3), 0, j % 4) for j in range(8)], {"A": 100, "B": 0, "C": 0, "D": 0}, 75.0),
    # uniform over letters: no bias
    ([PermutedResult(f"i{j}", 0, (0, 1, 2, 3), j % 4, 0) for j in range(8)], {"A": 25, "B": 25, "C": 25, "D": 25}, 0.0),
    # a multi-option prediction splits its vote
    ([PermutedResult("m", 0, (0, 1, 2), (0, 1), (0, 1))], {"A": 50, "B": 50, "C": 0}, 50 - 100 / 3),
    # unanswered pairs are left out of the shares
    ([PermutedResult("u", 0, (0, 1), None, 0), PermutedResult("v", 0, (0, 1), 1, 0)], {"A": 0, "B": 100}, 50.0),
    # mixed option counts: A expected 1/2 + 1/4 of 2 answers -> 100 * (2 - 0.75) / 2
    ([PermutedResult("two", 0, (0, 1), 0, 0), PermutedResult("four", 0, (0, 1, 2, 3), 0, 0)],
     {"A": 100, "B": 0, "C": 0, "D": 0}, 62.5),
    # shown letter, not original option: original 3 shown at position 0
    ([PermutedResult("s", 1, (3, 0, 1, 2), 3, 3)], {"A": 100, "B": 0, "C": 0, "D": 0}, 75.0),
]


@pytest.mark.parametrize("results,shares,bias", SHARES)
def test_prediction_shares_and_position_bias_table(results, shares, bias):
    got, b = prediction_shares(results)
    assert got == pytest.approx(shares)
    assert b == pytest.approx(bias)


def test_robustness_unanswered_is_wrong_and_records_are_checked():
    results = [PermutedResult("u", 0, (0, 1), None, 0), PermutedResult("u", 1, (1, 0), 0, 0)]
    ms = {m.name: m for m in robustness_metrics(results, seed=0)}
    assert ms["acc_shuffled"].value == 50.0 and ms["circular_acc"].value == 0.0
    assert ms["pred_share_B"].value == 100.0 and ms["pred_share_B"].n == 1
    with pytest.raises(ValueError, match="twice"):
        robustness_metrics(results + [results[0]], seed=0)
    with pytest.raises(ValueError, match="not a permutation"):
        PermutedResult("x", 0, (0, 0, 1), 0, 0)
    with pytest.raises(ValueError, match="out of range"):
        PermutedResult("x", 0, (0, 1), 2, 0)
    assert robustness_metrics([], seed=0) == []


def test_robustness_intervals_on_a_larger_run_are_seeded_and_hold_the_value():
    rng = random.Random(11)
    results = []
    for j in range(60):
        gold = rng.randrange(4)
        for r, p in enumerate(permutations(4, 3, seed=2, item_id=f"q{j}")):
            pred = p[0] if rng.random() < 0.5 else (gold if rng.random() < 0.6 else rng.randrange(4))
            results.append(PermutedResult(f"q{j}", r, p, pred, gold))
    a = robustness_metrics(results, seed=4)
    assert a == robustness_metrics(results, seed=4)
    assert_interval_holds(a)
    by = {m.name: m for m in a}
    assert by["all_orders_acc"].value <= by["acc_shuffled"].value and "circular_acc" not in by
    assert by["position_bias"].ci_low < by["position_bias"].ci_high


# --- calibration ---------------------------------------------------------------------------------------

# probs, gold -> confidence bin, right?, per-item Brier (sum over options, not divided)
CAL = [
    ((0.95, 0.05), 0, 9, True, 0.005),
    ((0.25, 0.75), 0, 7, False, 1.125),
    ((0.7, 0.3), 0, 7, True, 0.18),     # 0.7 falls in [0.7, 0.8)
    ((0.5, 0.5), 1, 5, False, 0.5),     # tie -> earlier option predicted
    ((1.0, 0.0), 0, 9, True, 0.0),      # 1.0 falls in the closed last bin
]


@pytest.mark.parametrize("conf,b", [(0.0, 0), (0.0999, 0), (0.1, 1), (0.3, 3), (0.5, 5), (0.95, 9), (1.0, 9)])
def test_bin_edge_rule(conf, b):
    assert bin_index(conf) == b


def test_reliability_bins_ece_and_brier_by_hand():
    probs = [p for p, *_ in CAL]
    gold = [g for _, g, *_ in CAL]
    bins = reliability_bins(probs, gold)
    assert len(bins) == 10 and sum(b.count for b in bins) == 5
    filled = {round(b.lower * 10): (b.count, b.mean_confidence, b.accuracy) for b in bins if b.count}
    assert filled == {5: (1, 0.5, 0.0), 7: (2, pytest.approx(0.725), 0.5), 9: (2, pytest.approx(0.975), 1.0)}
    assert all(b.mean_confidence is None and b.accuracy is None for b in bins if not b.count)
    # 1/5 |0 - .5| + 2/5 |.5 - .725| + 2/5 |1 - .975| = .1 + .09 + .01
    assert expected_calibration_error(bins) == pytest.approx(0.2)
    assert brier_scores(probs, gold) == pytest.approx([b for *_, b in CAL])
    ms, bins2 = calibration_metrics([tuple(math.log(x) if x else -math.inf for x in p) for p in probs], gold, seed=3)
    by = {m.name: m for m in ms}
    assert by["ece"].value == pytest.approx(20.0) and by["ece"].ci_low is None
    assert by["brier"].value == pytest.approx(1.81 / 5)
    assert [(b.count, b.accuracy) for b in bins2] == [(b.count, b.accuracy) for b in bins]
    assert [b.mean_confidence or 0 for b in bins2] == pytest.approx([b.mean_confidence or 0 for b in bins])
    assert_interval_holds(ms)


def test_perfect_and_three_option_calibration():
    bins = reliability_bins([(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)], [0, 2])
    assert expected_calibration_error(bins) == 0.0
    assert brier_scores([(0.6, 0.3, 0.1)], [1]) == pytest.approx([0.36 + 0.49 + 0.01])
    assert math.isnan(expected_calibration_error(reliability_bins([], [])))


def test_softmax_of_log_probabilities():
    assert softmax((math.log(0.2), math.log(0.3), math.log(0.5))) == pytest.approx((0.2, 0.3, 0.5))
    assert softmax((-1000.0, -1000.0)) == pytest.approx((0.5, 0.5))  # stable far from 0
    with pytest.raises(ValueError):
        softmax((-math.inf, -math.inf))
    with pytest.raises(ValueError, match="sum to"):
        brier_scores([(0.5, 0.6)], [0])
    with pytest.raises(ValueError, match="out of range"):
        reliability_bins([(0.5, 0.5)], [2])


def test_brier_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(5)
    rows, gold = [], []
    for _ in range(50):
        w = [rng.random() for _ in range(4)]
        rows.append(tuple(x / sum(w) for x in w))
        gold.append(rng.randrange(4))
    ours = sum(brier_scores(rows, gold)) / len(rows)
    try:
        ref = metrics.brier_score_loss(gold, rows, labels=[0, 1, 2, 3])
    except (TypeError, ValueError):  # sklearn < 1.7: binary only
        ref = None
    if ref is not None:
        assert ours == pytest.approx(ref, rel=1e-12)
    # binary: the two-option score is twice sklearn's binary Brier of the second option
    p2 = [(1 - r[0], r[0]) for r in rows]
    y2 = [int(g % 2) for g in gold]
    ours2 = sum(brier_scores(p2, y2)) / len(p2)
    assert ours2 == pytest.approx(2 * metrics.brier_score_loss(y2, [p[1] for p in p2]), rel=1e-12)


# --- repeats -------------------------------------------------------------------------------------------

PASS = [  # n, c, k, 1 - C(n-c, k) / C(n, k) by hand
    (5, 0, 1, 0.0), (5, 5, 3, 1.0), (5, 2, 1, 0.4), (5, 2, 2, 1 - 3 / 10), (10, 3, 5, 1 - 21 / 252),
    (4, 1, 4, 1.0), (3, 1, 3, 1.0), (8, 1, 2, 1 - 21 / 28),
]


@pytest.mark.parametrize("n,c,k,expected", PASS)
def test_pass_at_k_table(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_the_codex_papers_numpy_form():
    np = pytest.importorskip("numpy")
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                ref = 1.0 if n - c < k else 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))
                assert pass_at_k(n, c, k) == pytest.approx(ref, abs=1e-12)
    for bad in ((3, 4, 1), (3, 1, 4), (3, 1, 0)):
        with pytest.raises(ValueError):
            pass_at_k(*bad)


@pytest.mark.parametrize("answers,expected", [
    (["A", "B", "A"], "A"), (["B", "A", "A", "B"], "B"), ([None, None], None), ([None, "C", "D", "D"], "D"),
    ([None, "C", "D"], "C"), ([frozenset({0, 1}), frozenset({1, 0}), "A"], frozenset({0, 1})), ([], None),
])
def test_majority_vote_ties_go_to_the_first_seen(answers, expected):
    assert majority_answer(answers) == expected


def _outcomes(item, answers, gold):
    return [RepeatOutcome(item, r, a, a == gold) for r, a in enumerate(answers)]


def test_repeat_metrics_table():
    outs = (_outcomes("x", ["A", "B", "A"], "A")      # c=2, majority A right
            + _outcomes("y", ["B", "C", "C"], "B")    # c=1, majority C wrong
            + _outcomes("z", [None, None, "D"], "A"))  # c=0
    ms = {m.name: m for m in repeat_metrics(outs, seed=1, pass_ks=(1, 2, 3), protocol="generate")}
    assert set(ms) == {"avg@3", "maj@3", "pass@1", "pass@2", "pass@3"}
    assert ms["avg@3"].value == pytest.approx(100 / 3)
    assert ms["maj@3"].value == pytest.approx(100 / 3)
    assert ms["pass@1"].value == pytest.approx(100 / 3)
    assert ms["pass@2"].value == pytest.approx(100 * (1 + 2 / 3 + 0) / 3)
    assert ms["pass@3"].value == pytest.approx(200 / 3)
    assert all(m.n == 3 and m.averaging == "items" for m in ms.values())
    assert_interval_holds(ms.values())
    assert [m.name for m in repeat_metrics(outs, seed=1)] == ["avg@3", "maj@3", "pass@3"]


def test_repeat_metrics_refuse_uneven_or_duplicated_repeats():
    outs = _outcomes("x", ["A", "B"], "A") + _outcomes("y", ["A"], "A")
    with pytest.raises(ValueError, match="different numbers of repeats"):
        repeat_metrics(outs, seed=0)
    with pytest.raises(ValueError, match="twice"):
        repeat_metrics(_outcomes("x", ["A"], "A") * 2, seed=0)
    with pytest.raises(ValueError):
        repeat_metrics(_outcomes("x", ["A", "B"], "A"), seed=0, pass_ks=(3,))
    assert repeat_metrics([], seed=0) == []


def test_repeat_metrics_order_of_records_does_not_matter_and_is_seeded():
    rng = random.Random(3)
    outs = [RepeatOutcome(f"i{j}", r, rng.choice("ABCD"), False) for j in range(40) for r in range(5)]
    outs = [RepeatOutcome(o.item_id, o.repeat, o.answer, o.answer == "A") for o in outs]
    a = repeat_metrics(outs, seed=2, pass_ks=(1, 5))
    assert repeat_metrics(list(reversed(outs)), seed=2, pass_ks=(1, 5)) == a
    assert_interval_holds(a)


def test_robustness_metrics_do_not_depend_on_record_order():
    results = [PermutedResult(f"q{j}", r, p, p[(j + r) % 4] if j % 3 else 1, 1)
               for j in range(30) for r, p in enumerate(rotations(4))]
    assert robustness_metrics(list(reversed(results)), seed=6) == robustness_metrics(results, seed=6)
