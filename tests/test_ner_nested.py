"""Nested gold entities are counted and scored, not flattened away without a word (issue 22, item 21).

The flat ``*_span`` figures resolve overlapping gold spans longest first, as a BIO sequence must:
a model that misses every nested entity loses no span recall there. ``gold_nested_rate`` and
``gold_nested_count`` say how many gold mentions that leaves out, and ``*_span_all`` scores
every gold span, nested ones included.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.metrics.ner import RecordCounts, ner_metrics, record_counts

TYPES = ("疾病", "部位", "药物")
# 右0 肺1 上2 叶3 肺4 癌5 ，6 予7 顺8 铂9 化10 疗11 。12
TEXT = "右肺上叶肺癌，予顺铂化疗。"
GOLD = [(0, 6, "疾病"), (0, 4, "部位"), (8, 10, "药物")]  # 右肺上叶 sits inside 右肺上叶肺癌
OUTER_ONLY = [("右肺上叶肺癌", "疾病"), ("顺铂", "药物")]
EVERYTHING = OUTER_ONLY + [("右肺上叶", "部位")]


def figures(pred: list[tuple[str, str]]) -> dict[str, float]:
    rc = record_counts(TEXT, GOLD, pred, TYPES)
    return {m.name: m.value for m in ner_metrics([rc], TYPES, seed=1)[0]}


def test_the_flat_span_figures_drop_the_nested_mention_and_say_so() -> None:
    from chimed_eval.metrics.ner import nested_gold

    assert nested_gold(TEXT, GOLD) == [(0, 4, "部位")]
    missed = figures(OUTER_ONLY)
    assert missed["recall_span"] == 100.0  # flattening: missing the nested entity costs nothing here
    assert missed["recall_span_all"] == pytest.approx(200 / 3)  # ... but here it does
    assert missed["gold_nested_count"] == 1 and missed["gold_nested_rate"] == pytest.approx(100 / 3)
    found = figures(EVERYTHING)
    assert found["recall_span_all"] == 100.0 and found["precision_span_all"] == 100.0


def test_flat_data_scores_the_same_under_both_span_protocols() -> None:
    text, gold = "胃癌术后，予泰素化疗。", [(0, 2, "疾病"), (6, 8, "药物")]
    rc = record_counts(text, gold, [("胃癌", "疾病"), ("泰素", "药物"), ("化疗", "药物")], TYPES)
    assert rc.span_all == rc.span and rc.n_gold_nested == 0


def test_records_from_before_keep_their_figures_without_the_new_ones() -> None:
    """A stored record without the nested counts (an older run) still scores; the nested figures
    are left out rather than reported as zero."""
    old = record_counts(TEXT, GOLD, OUTER_ONLY, TYPES).to_dict()
    del old["span_all"], old["n_gold_nested"]
    names = {m.name for m in ner_metrics([RecordCounts.from_dict(old)], TYPES, seed=1)[0]}
    assert "f1_span" in names and "f1_span_all" not in names and "gold_nested_rate" not in names


def test_a_nested_file_reports_its_nested_mentions_in_results_and_on_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recs = [{"text": TEXT, "entities": [{"start": s, "end": e, "type": t} for s, e, t in GOLD]},
            {"text": "左肾结石。", "entities": [{"start": 0, "end": 4, "type": "疾病"}, {"start": 0, "end": 2, "type": "部位"}]},
            {"text": "口服阿司匹林。", "entities": [{"start": 2, "end": 6, "type": "药物"}]}]
    path = tmp_path / "nested.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    out = tmp_path / "o"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "ner",
                 "--task-args", f"path={path}", "--output", str(out)]) == 0
    console = capsys.readouterr().out
    metrics = {m["name"]: m for m in json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"]["ner"]["metrics"]}
    assert metrics["gold_nested_count"]["value"] == 2 and metrics["gold_nested_rate"]["value"] == pytest.approx(100 * 2 / 6)
    assert metrics["recall_span_all"]["value"] == 100.0  # the oracle names the nested entities too
    assert "gold_nested_rate" in console and "gold_nested_count" in console and "f1_span_all" in console
