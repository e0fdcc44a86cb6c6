"""``chimed-eval score`` on a rubric run loses nothing: a refused score leaves results.json byte for
byte as it was; ``--exclude-contaminated`` recomputes the rubric figures over the clean items; a
grading made before grading.json existed keeps its figures (and says which grading and what to
run); the leaderboard reads a figure's ``grader_status`` field (and old runs' protocol string)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from chimed_eval.cli.app import main

ROOT = Path(__file__).resolve().parents[1]
ITEMS, LABELS = ROOT / "examples" / "rubric_zh.jsonl", ROOT / "examples" / "rubric_zh_labels.jsonl"


def _graded_run(tmp_path: Path, *grade: str) -> Path:
    out = tmp_path / "rub"
    assert main(["run", "--backend", "fake", "--model", "oracle", "--tasks", "rubric", "--task-args", f"path={ITEMS}",
                 "--output", str(out), "--no-progress", "--judge", "judge:keyword", "--judge-backend", "fake", *grade]) == 0
    return out


def _rewrite_jsonl(path: Path, edit) -> None:
    rows = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines()]
    rows = edit(rows)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _rubric_figures(out: Path, name: str = "results.json") -> dict[str, dict]:
    doc = json.loads((out / name).read_text(encoding="utf-8"))
    return {m["name"]: m for m in doc["tasks"]["rubric"]["metrics"]}


def _reseal(out: Path, edit) -> None:
    """Edit results.json's rubric metrics and seal it again (as an older chimed-eval wrote it)."""
    from chimed_eval.runs.reader import seal_results

    path = out / "results.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc.pop("integrity", None)
    for m in doc["tasks"]["rubric"]["metrics"]:
        edit(m)
    path.write_text(json.dumps(seal_results(doc, out), ensure_ascii=False, indent=2), encoding="utf-8")


def test_a_refused_score_leaves_results_json_byte_identical(tmp_path, capsys):
    out = _graded_run(tmp_path, "--grader-labels", str(LABELS))
    (jdir,) = (out / "judge").glob("rubric-*")
    before = (out / "results.json").read_bytes()
    # a missing verdict: the grading is incomplete
    _rewrite_jsonl(jdir / "records" / "rubric.jsonl", lambda rows: rows[1:])
    capsys.readouterr()
    assert main(["score", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no verdict" in err and len(err.strip().splitlines()) == 1
    assert (out / "results.json").read_bytes() == before
    # a verdict given on another response than the record now holds
    out = _graded_run(tmp_path / "second", "--grader-labels", str(LABELS))
    before = (out / "results.json").read_bytes()
    _rewrite_jsonl(out / "samples" / "rubric.jsonl", lambda rows: [{**rows[0], "generation": "另一个回答"}, *rows[1:]])
    assert main(["score", str(out)]) == 2
    assert "another response" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == before


def test_clean_results_carry_the_rubric_figures_over_the_kept_items(tmp_path, capsys):
    import jsonschema

    out = _graded_run(tmp_path, "--grader-labels", str(LABELS))
    items = [json.loads(ln) for ln in ITEMS.read_text(encoding="utf-8").splitlines()]
    corpus = tmp_path / "corpus.jsonl"  # the first two questions, verbatim
    corpus.write_text("".join(json.dumps({"text": it["prompt"][-1]["content"]}, ensure_ascii=False) + "\n"
                              for it in items[:2]), encoding="utf-8")
    rep = tmp_path / "rep.json"
    assert main(["contamination", "--corpus", str(corpus), "--tasks", "rubric", "--task-args", f"path={ITEMS}",
                 "--output", str(rep)]) == 0
    flagged = {r["id"] for r in json.loads(rep.read_text(encoding="utf-8"))["tasks"]["rubric"]["records"]
               if r["contaminated"]}
    assert 0 < len(flagged) < len(items)
    before = (out / "results.json").read_bytes()
    capsys.readouterr()
    assert main(["score", str(out), "--exclude-contaminated", str(rep)]) == 0
    printed = capsys.readouterr().out
    assert (out / "results.json").read_bytes() == before
    full, clean = _rubric_figures(out), _rubric_figures(out, "results.clean.json")
    assert {"rubric_score", "rubric_met_rate[negative]", "grader_macro_f1"} <= set(clean)
    # the grader's validation measures the grader, not the model: the whole grading's, same status
    assert clean["rubric_score"]["grader_status"] == full["rubric_score"]["grader_status"]
    assert clean["grader_macro_f1"]["value"] == full["grader_macro_f1"]["value"]
    # the score over the kept items, by hand from the grading's per-item scores
    (jres,) = (out / "judge").glob("rubric-*/results.json")
    per = json.loads(jres.read_text(encoding="utf-8"))["tasks"]["rubric"]["graders"]["judge:keyword"]["item_scores"]
    kept = [s for i, s in per.items() if i not in flagged]
    assert clean["rubric_score"]["n"] == len(kept) == len(items) - len(flagged)
    assert clean["rubric_score"]["value"] == pytest.approx(sum(kept) / len(kept))
    assert clean["rubric_score"]["value"] != pytest.approx(full["rubric_score"]["value"])  # the subset counts
    doc = json.loads((out / "results.clean.json").read_text(encoding="utf-8"))
    block = doc["settings"]["contamination"]
    assert block["rubric"]["grading"] == full["rubric_score"]["grader_status"]["grading"]
    assert {m["name"]: m["value"] for m in block["tasks"]["rubric"]["full_metrics"]}["rubric_score"] == \
        full["rubric_score"]["value"]
    schema = json.loads((ROOT / "chimed_eval" / "schema" / "results.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema)
    assert "rubric_score" in printed


def test_a_grading_older_than_grading_json_keeps_its_figures_and_says_what_to_run(tmp_path, capsys):
    out = _graded_run(tmp_path, "--grader-labels", str(LABELS))
    (jdir,) = (out / "judge").glob("rubric-*")
    (jdir / "grading.json").unlink()  # as graded before grading.json existed
    _reseal(out, lambda m: m.pop("grader_status", None))
    before = _rubric_figures(out)
    assert {"rubric_score", "grader_macro_f1"} <= set(before)
    capsys.readouterr()
    assert main(["score", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and jdir.name in err[0] and "grading.json" in err[0] and "kept" in err[0]
    assert _rubric_figures(out) == before  # untouched, not dropped
    cmd = err[0].split("`")[1]
    assert f"--grader-labels {LABELS}" in cmd and "--judge judge:keyword --judge-backend fake" in cmd
    # the clean scores say why they hold none
    rep = tmp_path / "rep.json"
    corpus = tmp_path / "c.txt"
    corpus.write_text("无关的文本。\n", encoding="utf-8")
    assert main(["contamination", "--corpus", str(corpus), "--tasks", "rubric", "--task-args", f"path={ITEMS}",
                 "--output", str(rep)]) == 0
    assert main(["score", str(out), "--exclude-contaminated", str(rep)]) == 0
    clean = json.loads((out / "results.clean.json").read_text(encoding="utf-8"))
    assert jdir.name in clean["settings"]["contamination"]["rubric"]["absent"]
    assert not any(m["name"].startswith("rubric_score") for m in clean["tasks"]["rubric"]["metrics"])
    # the command it names makes them recomputable: score then recomputes them, without a note
    assert main(shlex.split(cmd)[1:] + ["--no-progress"]) == 0
    assert (jdir / "grading.json").is_file()
    capsys.readouterr()
    assert main(["score", str(out)]) == 0
    assert "grading.json" not in capsys.readouterr().err
    after = _rubric_figures(out)
    assert after["rubric_score"]["value"] == before["rubric_score"]["value"] and after["rubric_score"]["grader_status"]


def test_an_old_grading_whose_records_changed_is_refused_and_nothing_written(tmp_path, capsys):
    out = _graded_run(tmp_path)
    (jdir,) = (out / "judge").glob("rubric-*")
    (jdir / "grading.json").unlink()
    _reseal(out, lambda m: m.pop("grader_status", None))
    _rewrite_jsonl(out / "samples" / "rubric.jsonl", lambda rows: [{**rows[0], "generation": "另一个回答"}, *rows[1:]])
    before = (out / "results.json").read_bytes()
    capsys.readouterr()
    assert main(["score", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and jdir.name in err[0] and "chimed-eval judge" in err[0] and "nothing written" in err[0]
    assert (out / "results.json").read_bytes() == before


def test_leaderboard_reads_the_grader_status_field_and_old_protocol_strings(tmp_path, capsys):
    out = _graded_run(tmp_path)
    board = ["leaderboard", str(out), "--tasks", "rubric", "--metric", "rubric_score", "--no-write"]
    # the field decides, whatever the protocol string says (here: no status in it at all)
    _reseal(out, lambda m: m.update(protocol="judge-rubric") if m["name"].startswith("rubric_") else None)
    capsys.readouterr()
    assert main(board) == 0
    assert "n=12 (unvalidated grader)" in capsys.readouterr().out
    # a run written before the field existed: the status its protocol carries
    old = "judge-rubric (below-threshold grader, macro F1 < 0.7)"
    _reseal(out, lambda m: (m.pop("grader_status", None), m.update(protocol=old))
            if m["name"].startswith("rubric_") else None)
    assert main(board) == 0
    assert "n=12 (below-threshold grader)" in capsys.readouterr().out
