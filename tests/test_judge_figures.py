"""Judge figures that mean what their names say (issue 22 item 8): self-preference told apart
from leniency (or said to be unidentifiable), Cohen's kappa per criterion, Krippendorff's alpha
on win/tie/loss as ordinal data (checked against the `krippendorff` reference package)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_qa_run

from chimed_eval.cli.app import main


def _judge(out: Path, *args: str) -> dict:
    assert main(["judge", str(out), "--judge-backend", "fake", "--no-progress", *args]) == 0
    found = sorted((out / "judge").glob("*/results.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text(encoding="utf-8"))["tasks"]["my-qa"]


def _own_answer() -> str:
    from chimed_eval.backends.fake_judge import fake_verdict

    return fake_verdict("longer", "not a judge prompt")  # what judge:longer answers as a candidate model


def test_length_only_judge_of_its_own_answers_is_not_called_self_preferring(tmp_path, capsys):
    """judge:longer scores by length only. As the candidate model its answers are long, so it gives
    them 1 + min(4, len // 10) while judge:score-1 gives 1: an excess of +4 that is leniency
    towards long answers, not self-preference. With one candidate that cannot be told apart, and
    the figures say so; with a baseline run of answers of the same length graded too, its
    leniency on those is the same +4 and the net self-preference 0."""
    own = _own_answer()
    score = 1 + min(4, len(own) // 10)
    assert score == 5  # the setting of the issue: +4.00 over a judge that gives 1
    cand = write_qa_run(tmp_path, ["多休息。", "多喝水。", "按时服药。"], "cand", model="judge:longer")
    t = _judge(cand, "--judge", "judge:longer,judge:score-1")
    (sp,) = t["self_preference"]
    assert sp["delta"] == pytest.approx(4.0)
    assert sp["identifiable"] is False and sp["net"] is None and sp["leniency"] is None
    assert "not identifiable" in sp["note"] and "leniency" in sp["note"]
    assert any("cannot be told apart" in w for w in t["warnings"])
    assert "not identifiable" in capsys.readouterr().out

    base = write_qa_run(tmp_path, ["多休息。", "多喝水。", "按时服药。"], "base", model=f"fixed:{'长' * len(own)}")
    t = _judge(cand, "--judge", "judge:longer,judge:score-1", "--baseline", str(base))
    (sp,) = t["self_preference"]
    assert sp["identifiable"] is True and "note" not in sp
    assert sp["delta"] == pytest.approx(4.0) and sp["leniency"] == pytest.approx(4.0) and sp["n_other"] == 3
    assert sp["net"] == pytest.approx(0.0) and sp["net_ci_low"] == pytest.approx(0.0)
    assert t["leniency"]["judge:longer"]["value"] == pytest.approx(4.0) and t["leniency"]["judge:longer"]["n"] == 6
    assert t["leniency"]["judge:score-1"]["value"] == pytest.approx(-4.0)
    # the main figures stay the candidate's; the baseline's answers are figures apart
    assert t["judges"]["judge:longer"]["n"] == 3 and t["baseline_answers"]["judge:longer"]["overall"]["value"] == 5.0
    assert "net self-preference 0.00" in capsys.readouterr().out


def test_self_preference_beyond_leniency_is_measured(tmp_path):
    """A baseline of short answers: judge:longer gives them 1 (0 over judge:score-1), its own long
    answers 5 (+4): leniency 0 on others' answers, net self-preference +4 (length, here, but the
    figure is what the design can identify: the excess on its own answers beyond its excess on others')."""
    cand = write_qa_run(tmp_path, ["多休息。", "多喝水。"], "cand", model="judge:longer")
    base = write_qa_run(tmp_path, ["多休息。", "多喝水。"], "base", model="fixed:好")
    (sp,) = _judge(cand, "--judge", "judge:longer,judge:score-1", "--baseline", str(base))["self_preference"]
    assert (sp["delta"], sp["leniency"], sp["net"]) == (pytest.approx(4.0), pytest.approx(0.0), pytest.approx(4.0))


def test_pairwise_self_preference_is_said_to_be_unidentifiable(tmp_path):
    cand = write_qa_run(tmp_path, ["多休息。", "多喝水。"], "cand", model="judge:longer")
    base = write_qa_run(tmp_path, ["多休息。", "多喝水。"], "base", model="fixed:好")
    t = _judge(cand, "--judge", "judge:longer,judge:score-1", "--protocol", "pairwise", "--baseline", str(base))
    (sp,) = t["self_preference"]
    assert sp["delta"] == pytest.approx(50.0)  # wins (100) against the ties of score-1 (50)
    assert sp["identifiable"] is False and sp["net"] is None and "not identifiable" in sp["note"]


def _pointwise_rec(i: int, scores: dict[str, int]) -> dict:
    return {"id": str(i), "order": "single", "valid": True, "scores": scores,
            "overall": sum(scores.values()) / len(scores), "len_answer": 10 + i}


def test_cohen_kappa_is_per_criterion_never_pooled():
    """Two judges who agree on accuracy item by item and disagree on safety: kappa 1 on one,
    sklearn's quadratic kappa on the other, never one pooled figure."""
    from sklearn.metrics import cohen_kappa_score

    from chimed_eval.judge.aggregate import _pointwise_task

    crit = ["accuracy", "helpfulness", "safety"]
    a = [{"accuracy": x, "helpfulness": 3, "safety": s} for x, s in [(1, 5), (2, 4), (3, 5), (4, 1), (5, 2)]]
    b = [{"accuracy": x, "helpfulness": h, "safety": s} for x, h, s in [(1, 3, 1), (2, 4, 5), (3, 3, 2), (4, 2, 4), (5, 3, 5)]]
    out = _pointwise_task({"j1": [_pointwise_rec(i, s) for i, s in enumerate(a)],
                           "j2": [_pointwise_rec(i, s) for i, s in enumerate(b)]}, crit, seed=0)
    ag = out["agreement"]
    assert "cohen_kappa" not in ag and "per criterion" in ag["cohen_kappa_rule"]
    for c in crit:
        want = cohen_kappa_score([r[c] for r in a], [r[c] for r in b], weights="quadratic", labels=[1, 2, 3, 4, 5])
        assert ag["cohen_kappa_by_criterion"][c]["j1 | j2"] == pytest.approx(want, abs=1e-12)
    assert ag["cohen_kappa_by_criterion"]["accuracy"]["j1 | j2"] == pytest.approx(1.0)
    assert ag["cohen_kappa_by_criterion"]["safety"]["j1 | j2"] < 0.5


def _pair_recs(outcomes: list[str | None]) -> list[dict]:
    """AB, BA records whose combined outcome is each of ``outcomes`` (None: an invalid verdict)."""
    ab = {"win": "A", "loss": "B", "tie": "tie", None: None}
    ba = {"win": "B", "loss": "A", "tie": "tie", None: None}
    out = []
    for i, o in enumerate(outcomes):
        for order, w in (("AB", ab[o]), ("BA", ba[o])):
            out.append({"id": str(i), "order": order, "winner": w, "valid": w is not None,
                        "len_candidate": 10 + i, "len_baseline": 10})
    return out


def test_pairwise_alpha_is_ordinal_as_the_krippendorff_package_computes_it():
    kd = pytest.importorskip("krippendorff")
    from chimed_eval.judge.aggregate import _pairwise_task

    j1 = ["win", "win", "tie", "loss", "tie", "win", None, "loss"]
    j2 = ["tie", "win", "tie", "tie", "loss", "win", "win", "loss"]
    j3 = ["win", "tie", "win", "loss", "tie", None, "win", "tie"]
    out = _pairwise_task({"a": _pair_recs(j1), "b": _pair_recs(j2), "c": _pair_recs(j3)}, "majority", seed=0)
    ag = out["agreement"]
    code = {"loss": 0, "tie": 1, "win": 2, None: float("nan")}
    data = [[code[o] for o in row] for row in (j1, j2, j3)]
    ordinal = kd.alpha(reliability_data=data, level_of_measurement="ordinal")
    nominal = kd.alpha(reliability_data=data, level_of_measurement="nominal")
    assert abs(ordinal - nominal) > 0.01  # the two readings differ on these outcomes
    assert ag["krippendorff_alpha"] == pytest.approx(ordinal, abs=1e-12)
    assert ag["krippendorff_alpha_level"].startswith("ordinal")
