"""Outputs that fit (issue 25): ``export`` read back by pandas (CSV, JSONL, Parquet), the ad-hoc
leaderboard, the console's headline figures, the short LaTeX footnote with its notes file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from conftest import write_mcq_run, write_qa_run

pd = pytest.importorskip("pandas")


def run(tmp_path: Path, name: str, model: str, *extra: str) -> Path:
    return write_mcq_run(tmp_path, name, model, *extra, n=12)


def figures(out: Path) -> dict[str, dict]:
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {m["name"]: m for m in doc["tasks"]["mcq"]["metrics"]}


@pytest.fixture()
def two_runs(tmp_path):
    return run(tmp_path, "a", "random"), run(tmp_path, "b", "oracle")


def test_export_csv_is_one_tidy_table_pandas_reads_in_one_line(two_runs, tmp_path, capsys):
    a, b = two_runs
    f = tmp_path / "figures.csv"
    assert main(["export", str(a), str(b), "--format", "csv", "--output", str(f)]) == 0
    df = pd.read_csv(f)
    assert {"run", "model", "task", "metric", "value", "ci_low", "ci_high", "n", "averaging", "protocol",
            "variant", "shots", "seed", "ci_method"} <= set(df.columns)
    assert len(df) == len(figures(a)) + len(figures(b))
    acc = df[(df.run == str(a)) & (df.metric == "acc")].iloc[0]
    want = figures(a)["acc"]
    assert acc.model == "fake-random" and acc.task == "mcq" and acc.n == 12 and acc.seed == 1234
    assert (acc.value, acc.ci_low, acc.ci_high) == pytest.approx((want["value"], want["ci_low"], want["ci_high"]))
    assert df[(df.run == str(b)) & (df.metric == "acc")].value.iloc[0] == 100.0
    # without --output: the same CSV on stdout
    capsys.readouterr()
    assert main(["export", str(a), str(b)]) == 0
    assert capsys.readouterr().out == f.read_text(encoding="utf-8")


def test_export_parquet_reads_back_as_the_csv_does(two_runs, tmp_path):
    pytest.importorskip("pyarrow")
    a, b = two_runs
    assert main(["export", str(a), str(b), "-o", str(tmp_path / "f.parquet")]) == 0  # format from the suffix
    assert main(["export", str(a), str(b), "-o", str(tmp_path / "f.csv")]) == 0
    pq, csv = pd.read_parquet(tmp_path / "f.parquet"), pd.read_csv(tmp_path / "f.csv")
    assert list(pq.columns) == list(csv.columns) and len(pq) == len(csv)
    assert pq.value.tolist() == pytest.approx(csv.value.tolist())
    assert str(pq.n.dtype) == "int64" and pq.metric.tolist() == csv.metric.tolist()


def test_export_parquet_without_pyarrow_is_one_clear_line(two_runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    assert main(["export", str(two_runs[0]), "-o", str(tmp_path / "f.parquet")]) == 2
    err = capsys.readouterr().err
    assert "needs pyarrow" in err and "Traceback" not in err and not (tmp_path / "f.parquet").exists()
    assert main(["export", str(two_runs[0]), "--format", "parquet"]) == 2  # parquet needs a file
    assert "--output" in capsys.readouterr().err


def test_export_items_is_one_row_per_record(two_runs, tmp_path):
    a, _ = two_runs
    assert main(["export", str(a), "--items", "--format", "jsonl", "-o", str(tmp_path / "items.jsonl")]) == 0
    df = pd.read_json(tmp_path / "items.jsonl", lines=True, dtype=False)
    recs = [json.loads(x) for x in (a / "samples" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(df) == len(recs) == 12
    assert {"run", "task", "id", "subject", "prediction", "gold", "score", "extracted", "extraction_rule",
            "prompt_hash", "prompt", "output"} <= set(df.columns)
    by = df.set_index("id")
    for r in recs:
        row = by.loc[r["id"]]
        assert (row.gold, row.prediction, row.extracted, row.prompt_hash) == (r["gold"], r["prediction"],
                                                                              r["prediction"], r["prompt_hash"])
        assert row.score == r["score"] and row.prompt == r["prompt"]
    csv = pd.read_csv(tmp_path / "items.csv") if main(["export", str(a), "--items", "-o", str(tmp_path / "items.csv")]) == 0 else None
    assert csv is not None and len(csv) == 12


def test_export_from_the_python_api(tmp_path):
    import chimed_eval

    r = chimed_eval.evaluate(model="oracle", backend="fake", tasks=["ceval-medical-paper"], limit=5)
    rows = chimed_eval.export_rows([r])
    assert {x["metric"] for x in rows} >= {"acc", "ece"} and all(x["run"] == "fake-oracle" for x in rows)
    text = chimed_eval.export([r], format="jsonl", items=True)
    assert len(text.splitlines()) == 5 and all(json.loads(x)["score"] == 1.0 for x in text.splitlines())


def test_an_unknown_or_missing_run_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope")]) == 2
    assert "no results.json there" in capsys.readouterr().err


# --- the ad-hoc leaderboard -----------------------------------------------------------------------------


def test_leaderboard_of_runs_with_tasks_and_metric_needs_no_board_file(two_runs, capsys):
    a, b = two_runs
    capsys.readouterr()
    assert main(["leaderboard", str(a), str(b), "--tasks", "mcq", "--metric", "acc", "--no-write"]) == 0
    out = capsys.readouterr().out
    acc = figures(a)["acc"]
    assert "Ad-hoc board: mcq" in out and "ChiMed-GPT" not in out  # no paper board, no published rows
    assert f"| fake-random (a) | measured (paper, 0-shot) | {acc['value']:.2f} [{acc['ci_low']:.2f}, {acc['ci_high']:.2f}] n=12 |" \
        in out.replace("fake-random |", "fake-random (a) |")
    assert "| fake-oracle | measured (paper, 0-shot) | 100.00" in out


def test_leaderboard_of_runs_without_a_board_shows_their_own_tasks(two_runs, tmp_path, capsys):
    a, b = two_runs
    assert main(["leaderboard", str(a), str(b), "-o", str(tmp_path / "lb"), "--formats", "md,csv,tex"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### Ad-hoc board: mcq acc") and "paper-table" not in out
    assert sorted(p.name for p in (tmp_path / "lb").iterdir()) == ["adhoc.csv", "adhoc.md", "adhoc.notes.md", "adhoc.tex"]
    # a paper board is still one flag away
    assert main(["leaderboard", str(a), "--board", "paper-table-a", "--no-write"]) == 0
    assert "ChiMed-GPT" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--tasks", "cmmlu-medical"], "task(s) cmmlu-medical in none of the runs; they hold: mcq"),
    (["--metric", "f1"], "no run reports metric 'f1' for task 'mcq'"),
    (["--tasks", "mcq", "--board", "paper-table-a"], "do not combine with --board"),
])
def test_leaderboard_ad_hoc_errors_name_what_the_runs_hold(two_runs, capsys, argv, message):
    assert main(["leaderboard", str(two_runs[0]), *argv, "--no-write"]) == 2
    assert message in capsys.readouterr().err


def test_latex_footnote_is_short_and_the_provenance_goes_to_a_notes_file(two_runs, tmp_path, capsys):
    a, _ = two_runs
    lb = tmp_path / "lb"
    assert main(["leaderboard", str(a), "--board", "paper-table-a", "-o", str(lb), "--formats", "tex"]) == 0
    tex = (lb / "paper-table-a.tex").read_text(encoding="utf-8")
    notes = (lb / "paper-table-a.notes.md").read_text(encoding="utf-8")
    foot = tex[tex.index(r"{\footnotesize"):]
    assert "paper-table-a.notes.md" in foot and "items sha256" not in foot.lower() and "published:" not in foot
    assert "published:" in notes and "Columns:" in notes
    assert all(len(line) < 200 for line in foot.split(r"\\ "))


# --- the console --------------------------------------------------------------------------------------


def test_console_prints_headline_figures_and_all_metrics_on_request(tmp_path, capsys):
    out = run(tmp_path, "s", "random", "--shuffle-choices", "4")
    capsys.readouterr()
    assert main(["score", str(out)]) == 0
    short = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in short if line.startswith("mcq")]
    assert [r[4] for r in rows] == ["acc"] and all(r[3] == "12" for r in rows)  # one subject: no acc_macro
    assert any("more figures: --all-metrics shows them" in line for line in short)
    assert main(["score", str(out), "--all-metrics"]) == 0
    full = capsys.readouterr().out.splitlines()
    cells = [line.replace(" rec", "_rec").split() for line in full if line.startswith("mcq")]
    rows = {c[4]: c for c in cells}
    assert set(rows) == set(figures(out)) and "pred_share_A" in rows
    assert rows["pred_share_A"][3] == "48_rec"  # averaged over records: 12 items x 4 orders
    assert rows["acc"][3] == "12"
    header = next(line for line in full if line.startswith("task"))
    ci_col = {line.index("[") for line in full if line.startswith("mcq") and "[" in line}
    assert ci_col == {header.index("95% CI")}  # aligned columns


def test_console_shows_the_main_bleu_and_rouge_of_each_protocol_for_generations(tmp_path, capsys):
    write_qa_run(tmp_path, ["多喝水", "休息"], "q")
    lines = [line for line in capsys.readouterr().out.splitlines()  # the figures' rows, not the usage table's
             if line.startswith("my-qa") and line.split()[1] == "paper"]
    assert sorted(line.split()[4] for line in lines) == sorted(["paper_bleu1_cum", "paper_rougeL", "sacrebleu4_cum", "rougeL_char"])


@pytest.mark.parametrize("names,primary,heads", [
    (["acc", "acc_macro", "ece", "brier", "pred_share_A"], "acc", ["acc", "acc_macro"]),
    (["precision", "recall", "f1", "f1_macro", "not_in_text_rate"], "f1", ["precision", "recall", "f1"]),
    (["paper_bleu1_cum", "paper_rougeL", "sacrebleu4_cum", "rougeL_char", "rouge1_char", "empty_generation_rate"],
     "paper_rougeL", ["paper_bleu1_cum", "paper_rougeL", "sacrebleu4_cum", "rougeL_char"]),
    (["acc_exact_set", "acc_exact_set_macro", "option_f1", "extraction_failure_rate"], "acc_exact_set_macro",
     ["acc_exact_set", "acc_exact_set_macro", "option_f1"]),
    (["unknown_a", "unknown_b"], "unknown_a", ["unknown_a", "unknown_b"]),  # nothing declared: every figure
])
def test_declared_headlines_and_the_primary_figure(names, primary, heads):
    from chimed_eval.core.types import Metric
    from chimed_eval.metrics import headline_metrics, primary_metric

    ms = [Metric(n, 1.0) for n in names]
    assert primary_metric(ms).name == primary and [m.name for m in headline_metrics(ms)] == heads
