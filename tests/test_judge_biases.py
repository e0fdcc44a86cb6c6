"""Model-graded QA (issue 17): each bias detector finds the bias a scripted fake judge was given,
agreement figures match hand computations, invalid verdicts are never scored, and the question
shown to the judge is recovered from each prompt markup."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import write_qa_run

from chimed_eval.cli.app import main

FILL = "建议多休息多喝水注意饮食清淡按时服药定期复查"


def text_of(n: int) -> str:
    """A Chinese answer of exactly ``n`` characters."""
    return (FILL * (n // len(FILL) + 1))[:n]


def qa_run(tmp: Path, answers: list[str], out: str, model: str = "oracle") -> Path:
    return write_qa_run(tmp, answers, out, model)


def judge(out: Path, *args: str) -> dict:
    assert main(["judge", str(out), "--judge-backend", "fake", "--no-progress", *args]) == 0
    found = sorted((out / "judge").glob("*/results.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text(encoding="utf-8"))["tasks"]["my-qa"]


def records(out: Path) -> list[dict]:
    f = sorted((out / "judge").glob("*/records/my-qa.jsonl"), key=lambda p: p.stat().st_mtime)[-1]
    return [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()]


# Candidate lengths against a 10-character baseline: longer in 7 items, equal in 1, shorter in 2.
CAND_LENGTHS = [10, 20, 30, 40, 50, 60, 70, 80, 5, 8]


@pytest.fixture
def pair(tmp_path):
    cand = qa_run(tmp_path, [text_of(n) for n in CAND_LENGTHS], "cand")
    base = qa_run(tmp_path, [text_of(n) for n in CAND_LENGTHS], "base", model=f"fixed:{text_of(10)}")
    return cand, base


VERDICTS = pytest.mark.parametrize("verdict", ["generate", "logprobs"])  # text verdicts, next-token probabilities


@VERDICTS
def test_position_biased_judge_flips_every_pair_and_scores_only_ties(pair, capsys, verdict):
    cand, base = pair
    t = judge(cand, "--judge", "judge:first", "--protocol", "pairwise", "--baseline", str(base), "--verdict", verdict)
    f = t["judges"]["judge:first"]
    assert f["flip_rate"] == 1.0 and f["flips"] == 10
    assert (f["wins"], f["ties"], f["losses"]) == (0, 10, 0)
    assert f["win_rate"]["value"] == 50.0 and f["position_preference"] == 1.0
    assert any("depend on answer order in 100% of pairs" in w for w in t["warnings"])
    assert "treat its win rate as unreliable" in capsys.readouterr().out
    s = judge(cand, "--judge", "judge:second", "--protocol", "pairwise", "--baseline", str(base),
              "--verdict", verdict)["judges"]["judge:second"]
    assert s["flip_rate"] == 1.0 and s["position_preference"] == 0.0


@VERDICTS
def test_length_biased_judge_is_caught_by_correlation_and_length_control(pair, verdict):
    cand, base = pair
    v = ("--verdict", verdict)
    f = judge(cand, "--judge", "judge:longer", "--protocol", "pairwise", "--baseline", str(base), *v)["judges"]["judge:longer"]
    # 7 longer (wins), 1 equal (tie), 2 shorter (losses): raw (7 + 0.5) / 10
    assert (f["wins"], f["ties"], f["losses"]) == (7, 1, 2) and f["win_rate"]["value"] == pytest.approx(75.0)
    assert f["flip_rate"] == 0.0
    assert abs(f["lc_win_rate"] - 50.0) < 10 < abs(f["win_rate"]["value"] - 50.0)
    p = judge(cand, "--judge", "judge:longer", *v)["judges"]["judge:longer"]
    assert p["length_correlation"]["spearman"] > 0.9 and p["length_correlation"]["n"] == 10
    q = judge(cand, "--judge", "judge:shorter", *v)["judges"]["judge:shorter"]
    assert q["length_correlation"]["spearman"] < -0.9


@pytest.mark.parametrize("protocol", ["pointwise", "pairwise"])
def test_invalid_verdicts_are_counted_never_scored(pair, protocol):
    cand, base = pair
    extra = ["--protocol", "pairwise", "--baseline", str(base)] if protocol == "pairwise" else []
    t = judge(cand, "--judge", "judge:invalid", *extra)
    f = t["judges"]["judge:invalid"]
    assert f["invalid_rate"] == 1.0 and f["n_valid"] == 0 and "note" in f
    main_figure = f["overall"] if protocol == "pointwise" else f["win_rate"]
    assert main_figure["value"] is None and main_figure["ci_low"] is None
    assert any("could be read" in w for w in t["warnings"])
    recs = records(cand)
    assert recs and all(r["valid"] is False and r["reason"] for r in recs)
    assert all(r.get("overall") is None and r.get("scores") is None and r.get("outcome") is None for r in recs)


def test_two_judges_agreement_matches_hand_computation(tmp_path):
    """Answers of 5, 15, 25, 35 characters: judge:longer scores 1, 2, 3, 4 and judge:shorter
    5, 4, 3, 2 on every criterion. Quadratic-weighted kappa of each criterion over the 4 items:
    observed mean squared difference (16 + 4 + 0 + 4) / 4 = 6; expected, from the marginals
    (uniform on 1..4 and on 2..5), Var + Var + (2.5 - 3.5)^2 = 1.25 + 1.25 + 1 = 3.5; kappa =
    1 - 6 / 3.5 = -5/7. Krippendorff's interval alpha on the overall scores (1,5) (2,4) (3,3)
    (4,2): D_o = (2*16 + 2*4 + 0 + 2*4) / 8 = 6; the 8 values sum to 24 with squares 84, so
    D_e = 2 * (8 * 84 - 24^2) / (8 * 7) = 24/7; alpha = 1 - 6 / (24/7) = -0.75."""
    cand = qa_run(tmp_path, [text_of(n) for n in (5, 15, 25, 35)], "cand")
    t = judge(cand, "--judge", "judge:longer,judge:shorter")
    assert [r["overall"] for r in records(cand)] == [1, 5, 2, 4, 3, 3, 4, 2]
    ag = t["agreement"]
    assert list(ag["cohen_kappa_by_criterion"]) == ["accuracy", "helpfulness", "safety"]
    for per_pair in ag["cohen_kappa_by_criterion"].values():  # the same scores on each criterion
        assert per_pair["judge:longer | judge:shorter"] == pytest.approx(-5 / 7)
    assert ag["krippendorff_alpha"] == pytest.approx(-0.75)
    assert t["aggregate"]["overall"]["value"] == pytest.approx(3.0) and t["aggregate"]["n_valid"] == 4


def test_two_pairwise_judges_majority_and_agreement(tmp_path):
    """Candidate longer than the 10-character baseline in 3 items, shorter in 1: judge:longer says
    W W W L, judge:shorter L L L W. Unweighted kappa: p_o = 0, p_e = .75*.25 + .25*.75 = .375, kappa =
    -.375 / .625 = -0.6. Ordinal alpha (two values only, so as nominal): every unit disagrees, D_o = 1; 4 W and 4 L values, D_e =
    2*4*4 / (8*7) = 4/7; alpha = -0.75. The majority of a split panel is a tie: win rate 50."""
    cand = qa_run(tmp_path, [text_of(n) for n in (20, 30, 40, 5)], "cand")
    base = qa_run(tmp_path, [text_of(n) for n in (20, 30, 40, 5)], "base", model=f"fixed:{text_of(10)}")
    t = judge(cand, "--judge", "judge:longer,judge:shorter", "--protocol", "pairwise", "--baseline", str(base))
    assert t["agreement"]["cohen_kappa"]["judge:longer | judge:shorter"] == pytest.approx(-0.6)
    assert t["agreement"]["krippendorff_alpha"] == pytest.approx(-0.75)
    assert t["aggregate"]["ties"] == 4 and t["aggregate"]["win_rate"]["value"] == 50.0
    mean = judge(cand, "--judge", "judge:longer,judge:shorter", "--protocol", "pairwise", "--baseline", str(base),
                 "--aggregate", "mean")["aggregate"]
    assert mean["rule"] == "mean" and mean["win_rate"]["value"] == 50.0  # (1 + 0) / 2 per item


@VERDICTS
def test_self_preference_when_the_judge_is_the_candidate(tmp_path, verdict):
    from chimed_eval.backends.fake_judge import fake_verdict

    own = fake_verdict("longer", "not a judge prompt")  # what judge:longer answers as a candidate model
    cand = qa_run(tmp_path, ["多休息。", "多喝水。", "按时服药。"], "cand", model="judge:longer")
    t = judge(cand, "--judge", "judge:longer,judge:score-2", "--verdict", verdict)
    (sp,) = t["self_preference"]
    assert sp["judge"] == "judge:longer" and sp["judges_its_own"] == "candidate"
    expected = 1 + min(4, len(own) // 10)  # fake_judge's documented rule
    if verdict == "logprobs":  # overall = the expectation of p_i ~ exp(-|i - s|) over 1..5 (fake_judge docstring)
        def g_eval(s):
            w = [math.exp(-abs(i - s)) for i in range(1, 6)]
            return sum(i * x for i, x in enumerate(w, 1)) / sum(w)
        expected, peers = g_eval(expected), g_eval(2)
    else:
        peers = 2.0
    assert sp["own"] == pytest.approx(expected) and sp["peers"] == pytest.approx(peers) and sp["n"] == 3
    assert sp["delta"] == pytest.approx(expected - peers)
    assert any("is the candidate model" in w for w in t["warnings"])
    alone = judge(cand, "--judge", "judge:longer", "--verdict", verdict)["self_preference"][0]
    assert alone["delta"] is None and "second judge" in alone["note"]


def test_cmb_clin_rubric_scores_its_four_criteria(tmp_path):
    cand = qa_run(tmp_path, ["多休息。", "多喝水。"], "cand")
    f = judge(cand, "--judge", "judge:score-2", "--rubric", "cmb-clin")["judges"]["judge:score-2"]
    assert sorted(f["criteria"]) == ["completeness", "fluency", "proficiency", "relevance"]
    assert all(c["value"] == 2.0 for c in f["criteria"].values()) and f["overall"]["value"] == 2.0


def test_question_recovered_from_each_prompt_markup():
    from chimed_eval.models.chat import chatml_renderer, messages_context
    from chimed_eval.judge.inputs import question_of
    from chimed_eval.prompts.variants import apply_chat, chat_format

    assert question_of(apply_chat("chimed", "头痛怎么办？")) == ("头痛怎么办？", "format:chimed")
    dialogue = "[human]:我头痛\n[bot]:多久了？\n[human]:三天\n[bot]:"
    assert question_of(dialogue) == ("患者：我头痛\n医生：多久了？\n患者：三天", "format:chimed")
    turns = [{"role": "user", "content": "我头痛"}, {"role": "assistant", "content": "多久了？"},
             {"role": "user", "content": "三天"}]
    assert question_of(chat_format("ziya").render(turns)) == ("患者：我头痛\n医生：多久了？\n患者：三天", "format:ziya")
    assert question_of(chatml_renderer([{"role": "system", "content": "你是医生"}, *turns]))[1] == "chatml"
    assert question_of(chatml_renderer(turns))[0] == "患者：我头痛\n医生：多久了？\n患者：三天"
    assert question_of(messages_context(turns[:1])) == ("我头痛", "messages")
    assert question_of("  <s>用户：头痛</s>  ") == ("<s>用户：头痛</s>", "raw")
