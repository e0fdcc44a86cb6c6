"""What the summary says beside the figures (issue 22 items 4, 5 and 9): unreadable
log-probabilities are counted and warned about, never dropped silently; the printed ``n`` is each
figure's own (items, not K records per item); figures over tiny groups are flagged with their n."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.evidence.kinds import ChoiceEvidence, judge_choice
from chimed_eval.reports.notes import figure_warnings
from chimed_eval.metrics.calibration import valid_logprobs
from chimed_eval.metrics.membership import membership_metrics, small_group_note
from chimed_eval.metrics.stats import MIN_GROUP_SIZE
from chimed_eval.core.types import Metric, SampleScore, TaskResult
from conftest import write_exam_csv

NAN, INF = math.nan, math.inf


def _run(tmp_path: Path, n: int, *extra: str, model: str = "oracle") -> Path:
    f = write_exam_csv(tmp_path / "exam.csv", n)
    out = tmp_path / "o"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", model, "--tasks", "mcq",
                 "--task-args", f"path={f}", *extra, "--output", str(out)]) == 0
    return out


def _metrics(out: Path) -> dict[str, dict]:
    res = json.loads((out / "results.json").read_text())
    return {m["name"]: m for m in res["tasks"]["mcq"]["metrics"]}


def _printed_n(text: str, metric: str) -> int:
    m = re.search(rf"^mcq\s+\S+\s+\d+\s+(\d+)(?: rec)?\s+{re.escape(metric)}\s", text, re.M)
    assert m, text
    return int(m.group(1))


# --- item 4: NaN / -inf log-probabilities -----------------------------------------------------------

VALIDITY = [  # (log-probabilities, readable)
    ([-0.1, -2.0, -3.0, -4.0], True),
    ([-INF, -1.0, -INF, -INF], True),  # an impossible option is fine
    ([NAN, -1.0, -2.0, -3.0], False),
    ([-1.0, NAN, -2.0, -3.0], False),
    ([-INF, -INF, -INF, -INF], False),
    ([INF, -1.0, -2.0, -3.0], False),
]


@pytest.mark.parametrize("lps,ok", VALIDITY)
def test_unreadable_log_probabilities_give_no_prediction(lps, ok):
    assert valid_logprobs(lps) is ok
    s = SampleScore(id="q", subject=None, prompt="p", prompt_hash="h", gold="B", prediction=None, score=0.0,
                    logprobs=tuple(lps))
    judged = judge_choice(s, ChoiceEvidence(4))
    if ok:
        best = "ABCD"[lps.index(max(lps))]
        assert judged.prediction == best and judged.score == float(best == "B")
    else:
        assert (judged.prediction, judged.score, judged.extraction_failed) == (None, 0.0, True)


@pytest.mark.parametrize("bad", [[NAN, -10.0, -10.0, -10.0], [-INF, -INF, -INF, -INF], [-10.0, NAN, -10.0, -10.0]])
def test_one_unreadable_record_is_counted_and_warned_not_silently_dropped(tmp_path, capsys, bad):
    out = _run(tmp_path, 20)
    before = _metrics(out)
    path = out / "samples" / "mcq.jsonl"
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    g = "ABCD".index(recs[3]["gold"])
    recs[3]["logprobs"] = bad[-g:] + bad[:-g] if g else bad  # the unreadable value sits on the gold option
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    capsys.readouterr()
    assert main(["score", str(out)]) == 0
    text = capsys.readouterr().out
    after = _metrics(out)
    assert after["invalid_logprob_count"]["value"] == 1 and after["invalid_logprob_count"]["n"] == 20
    assert after["ece"]["n"] == after["brier"]["n"] == 19  # kept, over the readable items
    assert before["acc"]["value"] == 100.0 and after["acc"]["value"] == 95.0  # wrong, and said so:
    assert "warning: mcq: 1 of 20 records have NaN or all -inf option log-probabilities" in text


def test_a_clean_run_has_no_invalid_count_and_no_warning(tmp_path, capsys):
    out = _run(tmp_path, 20)
    assert "invalid_logprob_count" not in _metrics(out)
    assert "warning:" not in capsys.readouterr().out


# --- item 5: the printed n ----------------------------------------------------------------------------


def test_printed_n_counts_items_under_shuffle_choices(tmp_path, capsys):
    out = _run(tmp_path, 12, "--shuffle-choices", "4", "--all-metrics", model="random")
    text = capsys.readouterr().out
    m = _metrics(out)
    for name in ("acc", "all_orders_acc", "acc_shuffled", "ece", "brier"):
        assert _printed_n(text, name) == m[name]["n"] == 12, name
    assert _printed_n(text, "pred_share_A") == m["pred_share_A"]["n"]  # answered (item, order) records
    assert json.loads((out / "results.json").read_text())["tasks"]["mcq"]["n"] == 48


def test_printed_n_counts_items_under_repeats(tmp_path, capsys):
    out = _run(tmp_path, 10, "--variant", "generate", "--decoding", "paper-sampling", "--repeats", "5",
               "--all-metrics", model="random")
    text = capsys.readouterr().out
    m = _metrics(out)
    for name in ("acc", "avg@5", "maj@5"):
        assert _printed_n(text, name) == m[name]["n"] == 10, name


# --- item 9: tiny groups ------------------------------------------------------------------------------


def test_membership_auc_from_tiny_groups_is_flagged_with_both_group_sizes():
    scores = [float(i) for i in range(41)]
    seen = [True] + [False] * 40  # one seen item: the AUC takes few values, its interval looks precise
    ms = membership_metrics(scores, [None] * 41, seen, seed=0)
    t = TaskResult("membership", 41, "x", "y", {}, tuple(ms))
    warnings = figure_warnings(t)
    assert any("compares 1 seen with 40 unseen items" in w and f"below {MIN_GROUP_SIZE}" in w for w in warnings)
    assert small_group_note(10, 10) is None and small_group_note(0, 40) is None
    big = membership_metrics(scores, [None] * 41, [i % 2 == 0 for i in range(41)], seed=0)
    assert figure_warnings(TaskResult("membership", 41, "x", "y", {}, tuple(big))) == []


def test_small_figures_and_subjects_are_flagged_with_their_n():
    m = (Metric("acc", 100.0, 20.65, 100.0, 1, "items", "paper", None, "wilson"),
         Metric("acc_macro", 50.0, 10.0, 90.0, 31, "subjects", "paper", None, "wilson-mover"))
    t = TaskResult("mcq", 31, "x", "y", {}, m, subjects={"a": {"n": 30, "acc": 50.0}, "b": {"n": 1, "acc": 0.0}})
    w = figure_warnings(t)
    assert any("fewer than 10 items" in x and "acc (n=1)" in x and "acc_macro" not in x for x in w)
    assert any("1 of 2 groups" in x and "b (n=1)" in x for x in w)


def test_membership_report_prints_n_per_group_and_warns(tmp_path, capsys):
    from chimed_eval.core.types import record_to_score
    from chimed_eval.reports.membership import membership_html

    exam = write_exam_csv(tmp_path / "exam.csv", 12)
    plain = tmp_path / "plain"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "membership",
                 "--task-args", f"task=mcq,path={exam}", "--data-dir", str(tmp_path), "--output", str(plain)]) == 0
    ids = [json.loads(x)["id"] for x in next((plain / "samples").glob("*.jsonl")).read_text().splitlines()]
    seen = tmp_path / "seen.txt"
    seen.write_text(ids[0] + "\n", encoding="utf-8")
    out = tmp_path / "lab"
    capsys.readouterr()
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "membership",
                 "--task-args", f"task=mcq,path={exam},seen={seen}", "--data-dir", str(tmp_path),
                 "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "the membership AUC compares 1 seen with 11 unseen items" in text
    recs = [record_to_score(json.loads(x)) for x in next((out / "samples").glob("*.jsonl")).read_text().splitlines()]
    html = "\n".join(membership_html(recs))
    assert "(seen n=1, unseen n=11)" in html and "membership-warning" in html
