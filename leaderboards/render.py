"""A board's table as text and pictures: Markdown (also printed), CSV, LaTeX (booktabs) and a PNG
chart of small multiples (matplotlib, imported only when a PNG is written).

Published rows are marked as published with their item counts, protocol and footnotes; measured
cells show value [95% interval] n=items and, where allowed, Δ against the published figure.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path
from typing import Iterable, Sequence

from chimed_eval.core.errors import ConfigError

from . import paper
from .spec import AVERAGING_WORDS, Board, BoardSet, Column, load_boards
from .table import Cell, Run, Table, build

FORMATS = ("md", "csv", "tex", "png")


def _num(x: float | None, digits: int = 2) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _marks(notes: Iterable[int]) -> str:
    return "".join(f"[{i}]" for i in notes)


def cell_text(cell: Cell, col: Column) -> str:
    if cell.status == "blank":
        return ""
    if cell.status == "refused":
        return f"refused ({cell.protocol}/{cell.averaging}){_marks(cell.notes)}"
    s = _num(cell.value)
    if cell.status == "measured":
        if cell.ci_low is not None and cell.ci_high is not None:
            s += f" [{_num(cell.ci_low)}, {_num(cell.ci_high)}]"
        if cell.n is not None:
            s += f" n={cell.n}" + (f"/{col.n}" if col.n is not None and cell.n != col.n else "")
        if cell.delta is not None:
            s += f" Δ{cell.delta:+.2f}"
        s += grader_mark(cell.protocol, cell.grader_status)
    return s + _marks(cell.notes)


def grader_mark(protocol: str | None, status: str | None = None) -> str:
    """`` (unvalidated grader)`` / `` (below-threshold grader)`` / `` (validated grader)`` for a rubric
    figure: its ``grader_status`` field (``status``), or, for a run written before that field
    existed, the status its protocol carries (chimed_eval.judge.rubric_results); else ''."""
    if status:
        return f" ({status} grader)"
    head = "judge-rubric ("
    if not protocol or not protocol.startswith(head):
        return ""
    return f" ({protocol[len(head):].split(',')[0].rstrip(')')})"


def _published_on(board: Board, col: Column) -> str:
    if not (board.published and col.published):
        return "—"
    info = paper.COLUMNS[(board.published, col.published)]
    n = f"n={info.n}" if info.n is not None else "n unknown"
    return f"{n} · {paper.PUBLISHED_PROTOCOL} · {AVERAGING_WORDS[info.averaging]}"


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    b = table.board
    head = ["model", "source", *(c.title for c in b.columns)]
    lines = [f"### {b.title}", ""]
    if b.description:
        lines += [b.description, ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines.append("| *measured as* | *task/metric · protocol · averaging · items* | "
                 + " | ".join(_md_escape(c.measured_as) for c in b.columns) + " |")
    if b.published:
        lines.append("| *published on* | *items · protocol · averaging* | "
                     + " | ".join(_md_escape(_published_on(b, c)) for c in b.columns) + " |")
    for r in table.rows:
        cells = [_md_escape(cell_text(cell, col)) for cell, col in zip(r.cells, b.columns)]
        lines.append(f"| {_md_escape(r.label)}{_marks(r.notes)} | {r.source} | " + " | ".join(cells) + " |")
    lines += ["", "Columns:"]
    for c in b.columns:
        lines.append(f"- **{c.title}**: {column_legend(b, c)}")
    if table.footnotes:
        lines += ["", "Notes:"]
        lines += [f"[{i}] {text}" + "  " for i, text in enumerate(table.footnotes, 1)]
    lines.append("")
    lines.append("Measured cells: value [95% bootstrap interval] n=items measured (/the column's item count when "
                 "different); Δ = measured - published, only for the same model on the same item set.")
    return "\n".join(lines) + "\n"


def column_legend(board: Board, c: Column) -> str:
    avg = AVERAGING_WORDS.get(c.averaging or "", "any averaging")
    parts = [f"task `{c.task}`, metric `{c.metric}`, protocol `{c.protocol}`, {avg}"]
    if c.shots is not None:
        parts.append(f"{c.shots}-shot")
    items = c.items or "the task's items"
    if c.n is not None:
        items += f" (n={c.n}" + (f", items_sha256 {c.items_sha256[:12]}…)" if c.items_sha256 else ")")
    parts.append(f"items: {items}")
    if board.published and c.published:
        info = paper.COLUMNS[(board.published, c.published)]
        pub = f"published: {info.items}" + (f" (n={info.n})" if info.n is not None else "")
        pub += f", {paper.PUBLISHED_PROTOCOL} protocol, {AVERAGING_WORDS[info.averaging]}"
        if info.note:
            pub += f"; {info.note}"
        parts.append(pub)
        if c.delta == "none":
            parts.append(f"no Δ: {c.no_delta or 'the item sets cannot be matched'}")
        elif c.delta == "same-items":
            parts.append("Δ only for the same model on the same item set (items_sha256)")
        else:
            parts.append(f"Δ only for the same model on {c.n} items of this task (matched by count)")
    return "; ".join(parts)


CSV_FIELDS = ("board", "row", "source", "run", "column", "task", "metric", "protocol", "averaging", "value",
              "ci_low", "ci_high", "n", "items", "items_sha256", "delta", "status", "notes")


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for r in table.rows:
        for cell, c in zip(r.cells, table.board.columns):
            notes = "; ".join(table.footnotes[i - 1] for i in [*r.notes, *cell.notes])
            pub = r.kind == "published"
            w.writerow([table.board.name, r.label, r.kind, r.run, c.title, "" if pub else c.task,
                        "" if pub else c.metric, cell.protocol or "", cell.averaging or "", _num(cell.value, 4),
                        _num(cell.ci_low, 4), _num(cell.ci_high, 4), "" if cell.n is None else cell.n,
                        (paper.COLUMNS[(table.board.published, c.published)].items
                         if pub and table.board.published and c.published else c.items),
                        cell.items_sha256 or "", _num(cell.delta, 4), cell.status, notes])
    return buf.getvalue()


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "Δ": r"$\Delta$", "—": "---",
        "·": r"$\cdot$", "…": r"\dots{}"}


def tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def _tex_cell(cell: Cell, col: Column) -> str:
    marks = "".join(f"$^{{{i}}}$" for i in cell.notes)
    if cell.status == "blank":
        return ""
    if cell.status == "refused":
        return r"\emph{refused}" + marks
    s = _num(cell.value)
    if cell.status == "measured":
        extra = []
        if cell.ci_low is not None and cell.ci_high is not None:
            extra.append(f"[{_num(cell.ci_low, 1)}, {_num(cell.ci_high, 1)}]")
        if cell.n is not None:
            extra.append(f"n={cell.n}")
        if cell.delta is not None:
            extra.append(f"$\\Delta${cell.delta:+.2f}")
        if extra:
            s += r" {\scriptsize " + " ".join(extra) + "}"
    return s + marks


LATEX_NOTE_CHARS = 90


def _short(text: str, n: int = LATEX_NOTE_CHARS) -> str:
    """A note cut to one line of a table's footnote (the whole text is in the notes file)."""
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def to_notes(table: Table) -> str:
    """The long provenance of a board's LaTeX table: each column's legend and every note in full
    (``<board>.notes.md``, written beside ``<board>.tex``)."""
    b = table.board
    lines = [f"# {b.title}: provenance and notes", "", "Columns:", ""]
    lines += [f"- **{c.title}**: {column_legend(b, c)}" for c in b.columns]
    if table.footnotes:
        lines += ["", "Notes:", ""] + [f"{i}. {t}" for i, t in enumerate(table.footnotes, 1)]
    return "\n".join(lines) + "\n"


def to_latex(table: Table) -> str:
    """A booktabs table (``\\usepackage{booktabs}``)."""
    b = table.board
    n = len(b.columns)
    out = [f"% {b.name}: generated by chimed-eval leaderboard; needs \\usepackage{{booktabs}}",
           r"\begin{table*}[t]", r"\centering", r"\small",
           f"\\caption{{{tex_escape(b.title)}}}", f"\\label{{tab:{b.name}}}",
           r"\begin{tabular}{ll" + "r" * n + "}", r"\toprule",
           "Model & Source & " + " & ".join(tex_escape(c.title) for c in b.columns) + r" \\",
           " & & " + " & ".join(r"{\scriptsize " + tex_escape(f"{c.protocol}, {AVERAGING_WORDS.get(c.averaging or '', 'any')}"
                                                               + (f", n={c.n}" if c.n else "")) + "}" for c in b.columns) + r" \\",
           r"\midrule"]
    last_kind = None
    for r in table.rows:
        if last_kind == "published" and r.kind == "measured":
            out.append(r"\midrule")
        last_kind = r.kind
        marks = "".join(f"$^{{{i}}}$" for i in r.notes)
        out.append(f"{tex_escape(r.label)}{marks} & {r.kind} & "
                   + " & ".join(_tex_cell(cell, c) for cell, c in zip(r.cells, b.columns)) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    # the footnote stays short (what each column measures, notes cut to a line); the long provenance
    # (item sets, published protocols, every note in full) goes to <board>.notes.md beside the .tex
    notes = [f"$^{{{i}}}${tex_escape(_short(t))}" for i, t in enumerate(table.footnotes, 1)]
    cols = "; ".join(f"{tex_escape(c.title)}: {tex_escape(f'{c.task}/{c.metric}')}" for c in b.columns)
    more = f" Provenance and notes in full: {tex_escape(b.name)}.notes.md."
    out.append(r"\par\vspace{2pt}{\footnotesize " + r"\\ ".join([cols + "." + more, *notes]) + "}")
    out.append(r"\end{table*}")
    return "\n".join(out) + "\n"


# --- chart -----------------------------------------------------------------------------------------


def write_png(table: Table, path: Path) -> Path:
    """Small multiples, one panel per column: published figures as grey bars, measured ones as
    blue bars with their 95% interval. matplotlib (Agg) is imported only here."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError('the PNG chart needs matplotlib: pip install "chimed-eval[report]"') from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = table.board
    ncols = min(4, len(b.columns))
    nrows = math.ceil(len(b.columns) / ncols)
    labels = [r.label for r in table.rows]
    height = max(2.5, 0.28 * len(labels) + 1.2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols + 1.5, height * nrows), squeeze=False,
                             sharey=True)
    ys = list(range(len(labels)))[::-1]
    for k, col in enumerate(b.columns):
        ax = axes[k // ncols][k % ncols]
        for y, r in zip(ys, table.rows):
            cell = r.cells[k]
            if r.kind == "measured" and cell.status in ("blank", "refused"):
                ax.text(0, y, " not measured" if cell.status == "blank" else " refused", va="center", fontsize=7,
                        color="#999999" if cell.status == "blank" else "#b22222")
            if cell.value is None or cell.status not in ("published", "measured"):
                continue
            if cell.status == "published":
                ax.barh(y, cell.value, color="#bbbbbb", edgecolor="#777777", hatch="//")
            else:
                err = None
                if cell.ci_low is not None and cell.ci_high is not None:
                    err = [[max(0.0, cell.value - cell.ci_low)], [max(0.0, cell.ci_high - cell.value)]]
                ax.barh(y, cell.value, color="#3b75af", xerr=err, capsize=2, ecolor="#222222")
        ax.set_title(f"{col.title}\n{col.protocol}, {col.metric}", fontsize=9)
        ax.set_yticks(ys)
        ax.set_yticklabels(labels, fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlim(left=0)
        ax.grid(axis="x", alpha=0.3)
    for k in range(len(b.columns), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    fig.suptitle(b.title + "\n(grey hatched: published; blue: measured, 95% interval)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- entry point -----------------------------------------------------------------------------------


def render_board(board_name: str, runs: Sequence[Run], boards: BoardSet | None = None) -> str:
    """Markdown of one board (or of all, ``board_name='all'``)."""
    boards = boards or load_boards()
    return "\n".join(to_markdown(build(b, runs, boards.aliases)) for b in boards.select(board_name))


def write_boards(board_name: str, runs: Sequence[Run], out_dir: Path, formats: Sequence[str] = FORMATS,
                 boards: BoardSet | None = None, log=None) -> tuple[str, list[Path]]:
    """Write ``<board>.md|.csv|.tex|.png`` into ``out_dir``; returns (all Markdown, paths written).

    Without matplotlib the PNG is skipped with a warning unless it was asked for explicitly."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    boards = boards or load_boards()
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ConfigError(f"unknown format(s) {bad}; expected some of {list(FORMATS)}")
    tables = [build(b, runs, boards.aliases) for b in boards.select(board_name)]
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    md_all = []
    for t in tables:
        md = to_markdown(t)
        md_all.append(md)
        stem = out_dir / t.board.name
        for fmt, text in (("md", md), ("csv", to_csv(t)), ("tex", to_latex(t))):
            if fmt in formats:
                p = stem.with_suffix(f".{fmt}")
                p.write_text(text, encoding="utf-8")
                written.append(p)
        if "tex" in formats:  # the provenance the LaTeX footnote leaves out
            p = out_dir / f"{t.board.name}.notes.md"
            p.write_text(to_notes(t), encoding="utf-8")
            written.append(p)
        if "png" in formats:
            try:
                written.append(write_png(t, stem.with_suffix(".png")))
            except ConfigError as e:
                if list(formats) != list(FORMATS):
                    raise
                log(f"warning: {e}; PNG skipped")
    return "\n".join(md_all), written
