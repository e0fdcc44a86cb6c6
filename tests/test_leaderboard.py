"""Leaderboards: the published figures are checked arithmetic, the board definitions name real
tasks and metrics, and the renderer keeps published and measured rows apart (intervals, item
counts, refusals, deltas only where model and item set match)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.runs.reader import seal_results
from conftest import write_exam_csv
from chimed_eval.leaderboards import paper
from chimed_eval.leaderboards.render import to_markdown
from chimed_eval.leaderboards.spec import load_boards
from chimed_eval.leaderboards.table import BoardRefused, build, load_results

# --- the published figures, recomputed from integer counts ---------------------------------------------

def fits_k_over_n(value: float, n: int) -> int | None:
    """The k with 100 k / n within 0.01 of ``value`` (the published rounding), or None."""
    k = round(value * n / 100)
    return k if abs(100 * k / n - value) <= 0.01 + 1e-9 else None


def per_subject_mean(value: float, sizes: tuple[int, ...]) -> tuple[int, int] | None:
    n1, n2 = sizes
    for a in range(n1 + 1):
        for b in range(n2 + 1):
            if abs(50 * (a / n1 + b / n2) - value) <= 0.01 + 1e-9:
                return (a, b)
    return None


def check_published_exam_figures(table: dict[str, tuple[float, ...]]) -> list[str]:
    """Every C-Eval figure is k/41 (the GPT rows: the mean of the two subjects' accuracies,
    (a/22 + b/19)/2) and every CMMLU figure k/1166, within 0.01, with k the pinned count of
    ``paper.EXAM_COUNTS``; returns what does not fit."""
    bad = []
    sizes = tuple(paper.CEVAL_SUBJECT_SIZES.values())
    for col, n in (("C-Eval", 41), ("CMMLU", paper.CMMLU_ITEMS)):
        i = paper.TABLE_B_COLUMNS.index(col)
        for model, row in table.items():
            want = paper.EXAM_COUNTS[col][model]
            got = per_subject_mean(row[i], sizes) if isinstance(want, tuple) else fits_k_over_n(row[i], n)
            if got != want:
                bad.append(f"{model} {col} {row[i]}: expected {want} right of {n}, the figure gives {got}")
    return bad


def test_every_published_ceval_and_cmmlu_figure_is_a_count_over_the_items():
    assert sum(paper.CEVAL_SUBJECT_SIZES.values()) == 41
    assert check_published_exam_figures(paper.TABLE_B) == []
    # which rows are not k/41: exactly the two GPT rows, footnoted as per-subject means
    not_k41 = {m for m, row in paper.TABLE_B.items() if fits_k_over_n(row[0], 41) is None}
    assert not_k41 == {m for m, k in paper.EXAM_COUNTS["C-Eval"].items() if isinstance(k, tuple)} == {"GPT-3.5-Turbo", "GPT-4"}
    for m in not_k41:
        assert "gpt-ceval" in paper.notes_for("table-b", m, "C-Eval")
    # every CMMLU figure is k/1166; all but one are also exactly rounded
    cm = paper.TABLE_B_COLUMNS.index("CMMLU")
    inexact = [m for m, row in paper.TABLE_B.items() if round(100 * paper.EXAM_COUNTS["CMMLU"][m] / 1166, 2) != row[cm]]
    assert inexact == ["MedicalGPT (B)"]


@pytest.mark.parametrize("model,col,typo", [("ChiMed-GPT", 0, 68.92), ("Ziya-v1", 1, 29.70), ("GPT-4", 0, 71.92),
                                            ("Taiyi", 1, 45.02), ("Baichuan", 1, 45.82)])
def test_a_mistyped_published_figure_is_caught(model, col, typo):
    table = dict(paper.TABLE_B)
    row = list(table[model])
    row[col] = typo
    table[model] = tuple(row)
    assert len(check_published_exam_figures(table)) == 1


def test_medqa_note_matches_the_figures():
    i = paper.TABLE_B_COLUMNS.index("MedQA")
    misfits = {m for m, row in paper.TABLE_B.items() if round(row[i] * 2) / 2 != row[i]}  # exactly k/200?
    assert misfits == {"GPT-4", "Taiyi", "MedicalGPT (Z)"}
    assert "6 of 9 figures are exactly k/200; GPT-4, Taiyi and MedicalGPT (Z) are not" in paper.COLUMNS[("table-b", "MedQA")].note


def test_published_tables_are_complete():
    for key, (cols, rows) in paper.PUBLISHED.items():
        assert tuple(rows) == paper.MODELS
        assert all(len(r) == len(cols) for r in rows.values())
        assert all((key, c) in paper.COLUMNS for c in cols)


# --- the board definitions -----------------------------------------------------------------------------


def _metric_names() -> dict[str, dict[str, tuple[str | None, str | None]]]:
    """Metric name -> (protocol, averaging) as each task family really reports them."""
    from chimed_eval.metrics.choice import accuracy_metrics
    from chimed_eval.metrics.ner import Counts, RecordCounts, ner_metrics
    from chimed_eval.core.types import SampleScore

    s = SampleScore("1", "x", "p", "h", "A", "A", 1.0)
    mcq = {m.name: (m.protocol, m.averaging) for m in accuracy_metrics([s, s], 0, "paper")[0]}
    c = Counts(1, 1, 1)
    ner = {m.name: (m.protocol, m.averaging) for m in ner_metrics([RecordCounts(c, c, c, {"T": c})], ["T"], 0, "paper", n_boot=10)[0]}
    out = {"mcq": mcq, "ner": ner}
    try:
        from chimed_eval.metrics.text import generation_stats, text_metrics

        g = SampleScore("1", None, "p", "h", "头痛发热", None, 0.0, generation="头痛",
                        extra={"stats": generation_stats("头痛", "头痛发热")})
        out["generation"] = {m.name: (m.protocol, m.averaging) for m in text_metrics([g, g], 0)}
    except ImportError:
        pass
    return out


FAMILY = {"ceval-medical-paper": "mcq", "cmmlu-medical-paper": "mcq", "medqa-mcmle": "mcq",
          "ccks2019-ner-paper": "ner", "chimst-ner-paper": "ner", "chimed-qa": "generation", "cmd-qa": "generation",
          "mc-dialogue": "generation", "covid-dialogue-zh": "generation"}


def test_board_columns_name_registered_tasks_and_the_metrics_they_report():
    from chimed_eval.tasks import TASKS

    boards = load_boards()
    assert {"paper-table-a", "paper-table-b", "paper-table-c"} <= set(boards.boards)
    names = _metric_names()
    if "generation" not in names:
        pytest.skip("generation metrics need jieba")
    for b in boards.boards.values():
        for c in b.columns:
            assert c.task in TASKS, (b.name, c.title, c.task)
            reported = names[FAMILY[c.task]]
            assert c.metric in reported, (b.name, c.title, c.metric)
            protocol, averaging = reported[c.metric]
            assert c.protocol in ("any", protocol), (b.name, c.title, c.protocol, protocol)
            assert c.averaging in (None, averaging), (b.name, c.title, c.averaging, averaging)
    # the paper boards show every published column, in the published order
    for name, table in (("paper-table-a", "table-a"), ("paper-table-b", "table-b"), ("paper-table-c", "table-c")):
        assert tuple(c.published for c in boards.boards[name].columns) == paper.PUBLISHED[table][0]


def test_pinned_item_hashes_are_the_tasks_item_sets(shared_data):
    from chimed_eval.core.types import sha256_text
    from chimed_eval.tasks import get_task

    seen = {}
    for b in load_boards().boards.values():
        for c in b.columns:
            if c.items_sha256 and c.task not in seen:
                data = get_task(c.task).load(shared_data)
                seen[c.task] = (len(data.samples), sha256_text("\n".join(s.id for s in data.samples)))
                assert seen[c.task] == (c.n, c.items_sha256), c.task


def test_bad_board_definitions_name_the_field(tmp_path, capsys):
    bad = tmp_path / "b.toml"
    bad.write_text('[boards.x]\ntitle = "x"\npublished = "table-b"\n[[boards.x.columns]]\ntitle = "C"\n'
                   'task = "t"\nmetric = "acc"\nprotocol = "standard"\npublished = "C-Eval"\n')
    assert main(["leaderboard", "--boards", str(bad), "--list"]) == 2
    err = capsys.readouterr().err
    assert "boards.x.columns[0]" in err and "mixing protocols" in err


# --- rendering -----------------------------------------------------------------------------------------


def results_doc(model: str, tasks: dict[str, dict], path: str = "") -> dict:
    """A results.json with the given tasks: {task: {metric: (value, lo, hi), _n, _items, _protocol, _shots}}."""
    out = {}
    for name, spec in tasks.items():
        proto = spec.get("_protocol", "paper")
        metrics = [{"name": k, "value": v[0], "ci_low": v[1], "ci_high": v[2], "n": spec.get("_n", 41),
                    "averaging": spec.get("_averaging", "items"), "protocol": proto, "tokenization": None}
                   for k, v in spec.items() if not k.startswith("_")]
        out[name] = {"task": name, "n": spec.get("_n", 41), "items_sha256": spec.get("_items", "0" * 64),
                     "prompts_sha256": "1" * 64, "data_files": {}, "metrics": metrics, "subjects": {},
                     "variant": proto, "shots": spec.get("_shots", 5), "extraction_failures": None}
    return {"schema_version": "1.0", "created": "", "model": {"name": model, "path": path or model, "revision": None,
                                                             "weights_sha256": None, "dtype": None},
            "settings": {}, "tasks": out}


def write(tmp_path: Path, name: str, doc: dict, seal: bool = True) -> Path:
    """A run directory holding ``doc``, sealed with its digest as the runner seals it (over an
    empty records file per task), or as an older version wrote it (``seal=False``)."""
    d = tmp_path / name
    d.mkdir()
    if seal:
        for task in doc["tasks"]:
            (d / "samples").mkdir(exist_ok=True)
            (d / "samples" / f"{task}.jsonl").write_text("", encoding="utf-8")
        doc = seal_results(doc, d)
    (d / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    return d


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


CEVAL_HASH = "5a9a44679d5e7e6095588b4d1eabb0e7790be345b714d2793892b091d6508fe8"


def test_measured_rows_carry_interval_count_and_delta_only_where_model_and_items_match(tmp_path):
    chimed = write(tmp_path, "chimed", results_doc("chimed-gpt", {
        "ceval-medical-paper": {"acc": (70.7317, 56.1, 85.4), "_items": CEVAL_HASH},
        "cmmlu-medical-paper": {"acc": (50.0, 47.1, 52.9), "_n": 1166},  # another item set (hash differs)
        "medqa-mcmle": {"acc": (40.0, 38.3, 41.7), "_n": 3426},
    }))
    other = write(tmp_path, "other", results_doc("smollm2-135m", {
        "ceval-medical-paper": {"acc": (24.39, 12.2, 36.6), "_items": CEVAL_HASH},
    }))
    boards = load_boards()
    table = build(boards.boards["paper-table-b"], load_results([chimed, other]), boards.aliases)
    md = to_markdown(table)
    rows = {cells(line)[0]: cells(line) for line in md.splitlines() if line.startswith("| ")}
    assert "| ChiMed-GPT | published (paper protocol) | 68.29 | 52.92 | 44.50 |" in md
    assert rows["GPT-4[2]"][2] == "71.29[1]"  # the per-subject-mean footnote
    row = next(v for k, v in rows.items() if k.startswith("chimed-gpt"))
    assert row[2].startswith("70.73 [56.10, 85.40] n=41 Δ+2.44")  # same model, same 41 items
    assert "Δ" not in row[3] and "n=1166" in row[3]  # same model, another item set: no delta
    assert "Δ" not in row[4] and "n=3426" in row[4]
    assert row[5:] == [""] * 5  # no open-QA run: blank, never filled in
    assert "no Δ for CMMLU: the measured item set is not the paper's" in md
    assert "no Δ for MedQA: the paper's MedQA subset is unknown" in md
    assert "is the published model ChiMed-GPT" in md
    smol = next(v for k, v in rows.items() if k.startswith("smollm2"))
    assert smol[2] == "24.39 [12.20, 36.60] n=41"
    # every column names its item set and protocol
    assert "| *measured as* |" in md and "ceval-medical-paper/acc · paper · micro (items) · n=41" in md
    assert "| *published on* |" in md and "n unknown · paper" in md


def test_other_protocols_are_refused_and_mixed_any_columns_refuse_the_board(tmp_path, capsys):
    lm = write(tmp_path, "lm", results_doc("m1", {"ceval-medical-paper": {"acc": (30.0, 20.0, 40.0), "_protocol": "lm-eval"}}))
    pp = write(tmp_path, "pp", results_doc("m2", {"ceval-medical-paper": {"acc": (35.0, 20.0, 50.0)}}))
    boards = load_boards()
    md = to_markdown(build(boards.boards["paper-table-b"], load_results([lm, pp]), boards.aliases))
    row = next(line for line in md.splitlines() if line.startswith("| m1 |"))
    assert "refused (lm-eval/items)" in row and "30.00" not in row
    assert "refused: m1 measured ceval-medical-paper/acc with protocol 'lm-eval'" in md

    custom = tmp_path / "any.toml"
    custom.write_text('[boards.mine]\ntitle = "Mine"\n[[boards.mine.columns]]\ntitle = "C-Eval"\n'
                      'task = "ceval-medical-paper"\nmetric = "acc"\nprotocol = "any"\n')
    mine = load_boards(custom)
    with pytest.raises(BoardRefused, match="different protocols"):
        build(mine.boards["mine"], load_results([lm, pp]), mine.aliases)
    assert "35.00" in to_markdown(build(mine.boards["mine"], load_results([pp]), mine.aliases))
    capsys.readouterr()
    assert main(["leaderboard", str(lm), str(pp), "--boards", str(custom), "--no-write"]) == 2
    assert "refusing to put them in one column" in capsys.readouterr().err


def test_leaderboard_all_writes_markdown_csv_latex_and_png(tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 10)
    out = tmp_path / "o"
    # a user task named like no board column: the measured row stays blank everywhere
    main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq",
          "--task-args", f"path={exam}", "--output", str(out)])
    chimed = write(tmp_path, "chimed", results_doc("ChiMed-GPT-1.0", {
        "ccks2019-ner-paper": {"f1": (41.0, 38.0, 44.0), "_n": 200, "_averaging": "corpus",
                               "_items": "d785e6ae0134819654785b01f0ac6e87d10b710e5e802bcb0b48ababebd310df"}},
        path="/models/ChiMed-GPT-1.0"))
    capsys.readouterr()
    lb = tmp_path / "lb"
    assert main(["leaderboard", str(out), str(chimed), "--board", "all", "-o", str(lb)]) == 0
    text = capsys.readouterr().out
    boards = [b for b in load_boards().boards.values() if b.in_all]
    for b in boards:
        for ext in ("md", "csv", "tex", "png"):
            assert (lb / f"{b.name}.{ext}").is_file(), (b.name, ext)
        assert (lb / f"{b.name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| ChiMed-GPT | published (paper protocol) | 68.29 | 52.92 | 44.50 |" in text
    measured = [line for line in text.splitlines() if line.startswith("| fake-oracle | measured")]
    assert len(measured) == len(boards) and all("100.00" not in m for m in measured)
    assert "41.00 [38.00, 44.00] n=200 Δ+0.18" in (lb / "paper-table-a.md").read_text()

    rows = list(csv.DictReader(io.StringIO((lb / "paper-table-a.csv").read_text())))
    pub = [r for r in rows if r["source"] == "published"]
    assert len(pub) == 2 * 9 and {r["protocol"] for r in pub} == {"paper"}
    m = next(r for r in rows if r["row"] == "ChiMed-GPT-1.0" and r["column"] == "CCKS-2019")
    assert (m["value"], m["ci_low"], m["n"], m["delta"], m["protocol"]) == ("41.0000", "38.0000", "200", "0.1800", "paper")
    tex = (lb / "paper-table-b.tex").read_text()
    assert r"\begin{tabular}{llrrrrrrrr}" in tex and r"\toprule" in tex and "MedicalGPT (Z)" in tex
    assert "_" not in tex.replace(r"\_", "").replace("tab:paper-table-b", "")


def test_formats_and_unknown_board(tmp_path, capsys):
    chimed = write(tmp_path, "c", results_doc("x", {}))
    assert main(["leaderboard", str(chimed), "--board", "paper-table-c", "-o", str(tmp_path / "lb"),
                 "--formats", "md,csv"]) == 0
    assert sorted(p.name for p in (tmp_path / "lb").iterdir()) == ["paper-table-c.csv", "paper-table-c.md"]
    assert main(["leaderboard", str(chimed), "--board", "table-z", "--no-write"]) == 2
    assert "unknown board 'table-z'" in capsys.readouterr().err


PROBE = """
import sys
from chimed_eval.cli.app import main
main({argv!r})
print("HEAVY:" + ",".join(sorted(m for m in ("torch", "transformers", "matplotlib") if m in sys.modules)))
"""


def test_leaderboard_check_and_report_import_neither_torch_nor_matplotlib_without_a_png(tmp_path):
    d = write(tmp_path, "r", results_doc("x", {"ceval-medical-paper": {"acc": (30.0, 20.0, 40.0)}}))
    for argv in (["leaderboard", str(d), "-o", str(tmp_path / "lb"), "--formats", "md,csv,tex"],
                 ["check", str(d), "--save-baseline", str(tmp_path / "b.json")]):
        out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, check=True)
        assert out.stdout.strip().splitlines()[-1] == "HEAVY:", argv


# --- robustness and calibration figures (issue 16) -------------------------------------------------------

ROBUST = {  # name -> (value, protocol, averaging), as a --shuffle-choices 4 run on the lm-eval variant reports them
    "acc_shuffled": (31.0, "lm-eval+circular4", "items"),
    "circular_acc": (12.0, "lm-eval+circular4", "items"),
    "position_bias": (40.0, "lm-eval+circular4", "records"),
    "ece": (20.0, "lm-eval", "items"),
}


def robust_run(tmp_path: Path, name: str, with_acc: bool) -> Path:
    doc = results_doc(name, {"ceval-medical-paper": {"acc": (35.0, 20.0, 50.0), "_protocol": "lm-eval"}})
    ms = doc["tasks"]["ceval-medical-paper"]["metrics"]
    if not with_acc:
        ms.clear()
    for metric, (v, proto, avg) in ROBUST.items():
        ms.append({"name": metric, "value": v, "ci_low": None, "ci_high": None, "n": 41, "averaging": avg,
                   "protocol": proto, "tokenization": None})
    return write(tmp_path, name, doc)


def test_circular_and_shuffled_accuracy_never_fill_an_acc_column(tmp_path):
    acc_any = tmp_path / "acc.toml"
    acc_any.write_text('[boards.b]\ntitle = "B"\n[[boards.b.columns]]\ntitle = "C-Eval acc"\n'
                       'task = "ceval-medical-paper"\nmetric = "acc"\nprotocol = "any"\n')
    boards = load_boards(acc_any)
    only_robust = robust_run(tmp_path, "m1", with_acc=False)
    both = robust_run(tmp_path, "m2", with_acc=True)
    md = to_markdown(build(boards.boards["b"], load_results([only_robust, both]), boards.aliases))
    rows = {cells(line)[0]: cells(line) for line in md.splitlines() if line.startswith("| m")}
    assert rows["m1"][2] == ""  # no acc measured: blank, not circular_acc's 12 or acc_shuffled's 31
    assert rows["m2"][2].startswith("35.00")  # the run's own (unshuffled) acc
    assert "12.00" not in md and "31.00" not in md
    # the paper board's acc columns (protocol paper) stay blank for such a run, never refused with another figure
    paper_boards = load_boards()
    md = to_markdown(build(paper_boards.boards["paper-table-b"], load_results([only_robust]), paper_boards.aliases))
    row = next(cells(line) for line in md.splitlines() if line.startswith("| m1 |"))
    assert row[2:] == [""] * (len(row) - 2)


def test_robustness_and_calibration_columns_name_metric_protocol_and_averaging(tmp_path):
    spec = tmp_path / "robust.toml"
    spec.write_text(
        '[boards.r]\ntitle = "Robustness"\n'
        '[[boards.r.columns]]\ntitle = "circular"\ntask = "ceval-medical-paper"\nmetric = "circular_acc"\n'
        'protocol = "lm-eval+circular4"\naveraging = "items"\n'
        '[[boards.r.columns]]\ntitle = "shuffled"\ntask = "ceval-medical-paper"\nmetric = "acc_shuffled"\n'
        'protocol = "lm-eval+circular4"\naveraging = "items"\n'
        '[[boards.r.columns]]\ntitle = "bias"\ntask = "ceval-medical-paper"\nmetric = "position_bias"\n'
        'protocol = "lm-eval+circular4"\naveraging = "records"\n'
        '[[boards.r.columns]]\ntitle = "ECE"\ntask = "ceval-medical-paper"\nmetric = "ece"\n'
        'protocol = "lm-eval"\naveraging = "items"\n'
        '[[boards.r.columns]]\ntitle = "circular (5 random orders)"\ntask = "ceval-medical-paper"\n'
        'metric = "circular_acc"\nprotocol = "lm-eval+shuffle5"\n')
    boards = load_boards(spec)
    md = to_markdown(build(boards.boards["r"], load_results([robust_run(tmp_path, "m1", with_acc=True)]), boards.aliases))
    row = next(cells(line) for line in md.splitlines() if line.startswith("| m1 |"))
    assert [c.split(" ")[0] for c in row[2:6]] == ["12.00", "31.00", "40.00", "20.00"]
    assert "refused" in row[6]  # another permutation protocol is never placed
    assert "ceval-medical-paper/ece · lm-eval · micro (items) · lower is better" in md
    assert "ceval-medical-paper/circular_acc · lm-eval+circular4 · micro (items)" in md
