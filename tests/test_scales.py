"""Attitude scales: a small scale file written here, reverse-scored items, hand-computed sums."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.tasks.scale import first_option, item_points, make_scale_task_from_args, read_scale_file

OPTIONS = ["非常同意", "同意", "不确定", "不同意", "非常不同意"]  # A..E, points 5..1 by default
SCALE = {
    "name": "attitude",
    "options": OPTIONS,
    "scales": {"AU": "Authoritarianism", "BE": "Benevolence"},
    "items": [
        {"id": "au1", "scale": "AU", "text": "精神疾病患者应该被隔离。", "reverse": False},
        {"id": "au2", "scale": "AU", "text": "精神疾病患者有权过正常生活。", "reverse": True},
        {"id": "au3", "scale": "AU", "text": "精神疾病患者需要严格管理。"},
        {"id": "be1", "scale": "BE", "text": "社会应该更多地帮助精神疾病患者。", "reverse": False},
        {"id": "be2", "scale": "BE", "text": "给精神疾病患者花钱是浪费。", "reverse": True},
    ],
}
# Hand-computed: answering X scores p(X) = 5,4,3,2,1 for A..E; a reverse item scores 6 - p(X).
EXPECTED = {  # model -> (AU sum, BE sum)
    "fixed:A": (5 + 1 + 5, 5 + 1),
    "fixed:B": (4 + 2 + 4, 4 + 2),
    "fixed:C": (3 + 3 + 3, 3 + 3),
    "fixed:E": (1 + 5 + 1, 1 + 5),
}


def write_scale(tmp_path: Path, doc: dict = SCALE, name: str = "scale.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return p


def run(tmp_path: Path, model: str, *extra: str, out: str = "o") -> dict:
    f = write_scale(tmp_path)
    o = tmp_path / out
    assert main(["run", "--no-progress", "--backend", "fake", "--model", model, "--tasks", "scale",
                 "--task-args", f"path={f}", "--output", str(o), *extra]) == 0
    return json.loads((o / "results.json").read_text(encoding="utf-8"))


def metric(res: dict, name: str) -> dict:
    return next(m for m in res["tasks"]["attitude"]["metrics"] if m["name"] == name)


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_next_token_sums_and_means(tmp_path, model):
    res = run(tmp_path, model)
    au, be = EXPECTED[model]
    assert metric(res, "AU_sum")["value"] == au and metric(res, "BE_sum")["value"] == be
    assert metric(res, "AU_mean")["value"] == pytest.approx(au / 3)
    assert metric(res, "BE_mean")["value"] == pytest.approx(be / 2)
    assert res["settings"]["scoring"]["attitude"] == "next_token"
    subj = res["tasks"]["attitude"]["subjects"]
    assert subj["AU"]["n"] == 3 and subj["BE"]["answered"] == 2
    assert [m["name"] for m in res["tasks"]["attitude"]["metrics"]] == ["AU_sum", "AU_mean", "BE_sum", "BE_mean"]


def test_generate_variant_reads_the_first_option_and_score_reproduces(tmp_path):
    res = run(tmp_path, "fixed:我选B，不是A", "--variant", "generate")
    assert metric(res, "AU_sum")["value"] == 4 + 2 + 4
    assert res["tasks"]["attitude"]["extraction_failures"] == 0
    before = res["tasks"]
    assert main(["score", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "results.json").read_text(encoding="utf-8"))["tasks"] == before


def test_unanswered_items_are_counted_not_summed(tmp_path):
    res = run(tmp_path, "fixed:无法回答", "--variant", "generate")
    assert res["tasks"]["attitude"]["extraction_failures"] == 5
    assert metric(res, "AU_sum")["value"] == 0 and metric(res, "AU_sum")["n"] == 0


def test_custom_points_and_six_options(tmp_path):
    doc = {**SCALE, "options": ["1", "2", "3", "4", "5", "6"], "points": [0, 1, 2, 3, 4, 5]}
    s = read_scale_file(write_scale(tmp_path, doc))
    assert s.letters == "ABCDEF"
    assert item_points("B", s.letters, s.points, False) == 1 and item_points("B", s.letters, s.points, True) == 4


def test_first_option():
    assert first_option("答案：B", "ABCDE", OPTIONS) == "B"
    assert first_option("我非常同意这个说法", "ABCDE", OPTIONS) == "A"  # the longer text wins
    assert first_option("不同意。A也行", "ABCDE", OPTIONS) == "D"
    assert first_option("Ｃ", "ABCDE", OPTIONS) == "C"  # full-width
    assert first_option("Because", "ABCDE", OPTIONS) is None


def test_scale_file_errors_name_the_field(tmp_path):
    bad = {**SCALE, "items": [{"id": "x", "scale": "ZZ", "text": "某陈述"}]}
    with pytest.raises(DataError, match=r"items\[0\]\.scale"):
        read_scale_file(write_scale(tmp_path, bad))
    with pytest.raises(DataError, match="points"):
        read_scale_file(write_scale(tmp_path, {**SCALE, "points": [1, 2]}))
    with pytest.raises(DataError, match="reverse"):
        read_scale_file(write_scale(tmp_path, {**SCALE, "items": [{**SCALE["items"][0], "reverse": "maybe"}]}))
    with pytest.raises(ConfigError, match="path="):
        make_scale_task_from_args({})
    assert main(["run", "--backend", "fake", "--model", "oracle", "--tasks", "scale", "--output", str(tmp_path / "x")]) == 2
