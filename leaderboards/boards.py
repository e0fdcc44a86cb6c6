"""Board definitions (column -> task and metric) and a Markdown renderer over results.json files.

Measured cells carry their 95% interval; a column whose task a results file does not contain is
left blank, never filled in. The published rows come first and are marked as such.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .paper import PUBLISHED


@dataclass(frozen=True)
class Column:
    title: str
    task: str
    metric: str = "acc"


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    columns: tuple[Column, ...]
    note: str = ""


BOARDS = {
    "table-b-mcq": Board(
        "table-b-mcq", "Table B (multiple choice): accuracy, %",
        (Column("C-Eval", "ceval-medical-paper"), Column("CMMLU", "cmmlu-medical-paper"), Column("MedQA", "medqa-mcmle")),
        "Accuracy averaged over items (k/41, k/1166, k/n); the paper's MedQA subset size is unknown, "
        "measured rows use the full MCMLE test set.",
    ),
}


def load_results(paths: Sequence[Path]) -> list[dict]:
    out = []
    for p in paths:
        f = p / "results.json" if p.is_dir() else p
        out.append(json.loads(f.read_text(encoding="utf-8")))
    return out


def _cell(res: dict, col: Column) -> tuple[str, str]:
    t = res["tasks"].get(col.task)
    if t is None:
        return "", ""
    m = next((m for m in t["metrics"] if m["name"] == col.metric), None)
    if m is None:
        return "", ""
    ci = f"[{m['ci_low']:.1f}, {m['ci_high']:.1f}]" if m.get("ci_low") is not None else ""
    return f"{m['value']:.2f}", ci


def render(board_name: str, results: Sequence[dict]) -> str:
    board = BOARDS[board_name]
    pub_cols, pub_rows = PUBLISHED["table-b"]
    lines = [f"### {board.title}", "", "| model | source | " + " | ".join(c.title for c in board.columns) + " |",
             "|---|---|" + "---|" * len(board.columns)]
    for model, values in pub_rows.items():
        cells = [f"{values[pub_cols.index(c.title)]:.2f}" if c.title in pub_cols else "" for c in board.columns]
        lines.append(f"| {model} | published | " + " | ".join(cells) + " |")
    for res in results:
        cells = []
        for c in board.columns:
            v, ci = _cell(res, c)
            cells.append(f"{v} {ci}".strip())
        variants = sorted({res["tasks"][c.task]["variant"] or "" for c in board.columns if c.task in res["tasks"]})
        shots = sorted({str(res["tasks"][c.task]["shots"]) for c in board.columns if c.task in res["tasks"]})
        source = f"measured ({'/'.join(variants)}, {'/'.join(shots)}-shot)"
        lines.append(f"| {res['model']['name']} | {source} | " + " | ".join(cells) + " |")
    if board.note:
        lines += ["", board.note]
    return "\n".join(lines) + "\n"
