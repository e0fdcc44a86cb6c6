"""Leaderboards: board definitions (data, in ``boards.toml``) rendered from results.json files.

A board is a list of columns; each column names the measured (task, metric, protocol,
averaging) that fills it, its item set, and the published column shown beside it. The renderer
reads only results.json files (never the data, never a model) and writes Markdown, CSV, LaTeX and
a PNG chart.

Rules, as the published evaluation needs them:

* the published rows come first, marked as published, with their item counts, protocol and
  footnotes (``leaderboards/paper.py``);
* a measured cell carries its 95% interval and item count; a run without the column's task or
  metric leaves the cell blank, never filled in from elsewhere;
* a measured figure whose protocol or averaging differs from the column's is refused (shown as
  refused with the reason, never placed); a column with ``protocol = "any"`` whose measured rows
  disagree on the protocol makes the board refuse to render: figures are never averaged or mixed;
* a delta against a published row appears only when the run is that published model (see
  ``[aliases]``) and the item set matches (``delta`` of the column); otherwise the reason is
  shown instead.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from chimed_eval.errors import ConfigError

from . import paper

BOARDS_FILE = Path(__file__).with_name("boards.toml")
FORMATS = ("md", "csv", "tex", "png")
AVERAGING_WORDS = {"items": "micro (items)", "corpus": "micro (corpus)", "subjects": "macro (subjects)",
                   "records": "micro (records)"}
DELTA_POLICIES = ("same-items", "same-count", "none")


class BoardRefused(ConfigError):
    """A board cannot be rendered honestly (measured protocols mixed in one column)."""


# --- definitions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    title: str
    task: str
    metric: str
    protocol: str
    averaging: str | None = None
    items: str = ""
    n: int | None = None
    items_sha256: str | None = None
    shots: int | None = None
    published: str | None = None
    delta: str = "none"
    no_delta: str = ""

    @property
    def measured_as(self) -> str:
        parts = [f"{self.task}/{self.metric}", self.protocol]
        if self.averaging:
            parts.append(AVERAGING_WORDS.get(self.averaging, self.averaging))
        if self.n is not None:
            parts.append(f"n={self.n}")
        return " · ".join(parts)


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    columns: tuple[Column, ...]
    description: str = ""
    published: str | None = None
    in_all: bool = True


@dataclass(frozen=True)
class BoardSet:
    boards: Mapping[str, Board]
    aliases: Mapping[str, tuple[str, ...]]
    source: Path

    def select(self, name: str) -> list[Board]:
        if name == "all":
            return [b for b in self.boards.values() if b.in_all]
        if name not in self.boards:
            raise ConfigError(f"unknown board {name!r}; known: {', '.join(sorted(self.boards))} or all "
                              f"(definitions: {self.source})")
        return [self.boards[name]]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ConfigError(f"{path}: reading TOML on Python 3.10 needs tomli (pip install tomli), "
                              "or give --boards a JSON file of the same shape") from None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None


_COLUMN_FIELDS = {"title": str, "task": str, "metric": str, "protocol": str, "averaging": str, "items": str,
                  "n": int, "items_sha256": str, "shots": int, "published": str, "delta": str, "no_delta": str}
_BOARD_FIELDS = {"title", "description", "published", "in_all", "columns"}


def load_boards(path: Path | None = None) -> BoardSet:
    """Read and validate board definitions (TOML, or JSON of the same shape); errors name the
    file, the board, the column and the field."""
    path = Path(path) if path is not None else BOARDS_FILE
    if not path.exists():
        raise ConfigError(f"board definitions {path} not found")
    if path.suffix == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    else:
        doc = _read_toml(path)
    boards: dict[str, Board] = {}
    for name, spec in (doc.get("boards") or {}).items():
        where = f"{path}: boards.{name}"
        if name == "all":
            raise ConfigError(f"{where}: 'all' is reserved")
        unknown = set(spec) - _BOARD_FIELDS
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; expected {sorted(_BOARD_FIELDS)}")
        if "title" not in spec or not spec.get("columns"):
            raise ConfigError(f"{where}: needs a title and at least one [[boards.{name}.columns]]")
        table = spec.get("published")
        if table is not None and table not in paper.PUBLISHED:
            raise ConfigError(f"{where}.published: {table!r} is not a published table; expected one of "
                              f"{sorted(paper.PUBLISHED)}")
        cols = tuple(_column(c, f"{where}.columns[{i}]", table) for i, c in enumerate(spec["columns"]))
        boards[name] = Board(name, spec["title"], cols, spec.get("description", ""), table,
                             bool(spec.get("in_all", True)))
    if not boards:
        raise ConfigError(f"{path}: no [boards.<name>] defined")
    aliases = {k: tuple(v) for k, v in (doc.get("aliases") or {}).items()}
    for k in aliases:
        if k not in paper.MODELS:
            raise ConfigError(f"{path}: aliases.{k!r} is not a published model; expected one of {paper.MODELS}")
    return BoardSet(boards, aliases, path)


def _column(spec: Mapping[str, Any], where: str, table: str | None) -> Column:
    for k, v in spec.items():
        if k not in _COLUMN_FIELDS:
            raise ConfigError(f"{where}: unknown field {k!r}; expected {sorted(_COLUMN_FIELDS)}")
        if not isinstance(v, _COLUMN_FIELDS[k]) or isinstance(v, bool):
            raise ConfigError(f"{where}.{k}: expected {_COLUMN_FIELDS[k].__name__}, got {v!r}")
    for k in ("title", "task", "metric", "protocol"):
        if k not in spec:
            raise ConfigError(f"{where}: missing {k!r}")
    col = Column(**spec)
    if col.delta not in DELTA_POLICIES:
        raise ConfigError(f"{where}.delta: {col.delta!r}; expected one of {DELTA_POLICIES}")
    if col.averaging is not None and col.averaging not in AVERAGING_WORDS:
        raise ConfigError(f"{where}.averaging: {col.averaging!r}; expected one of {sorted(AVERAGING_WORDS)}")
    if col.published is not None:
        if table is None:
            raise ConfigError(f"{where}.published: the board shows no published table")
        if col.published not in paper.PUBLISHED[table][0]:
            raise ConfigError(f"{where}.published: {col.published!r} is not a column of {table} "
                              f"{paper.PUBLISHED[table][0]}")
        if col.protocol != paper.PUBLISHED_PROTOCOL:
            raise ConfigError(f"{where}: protocol {col.protocol!r} beside published figures obtained with the "
                              f"{paper.PUBLISHED_PROTOCOL!r} protocol; mixing protocols in one column is refused")
    if col.delta == "same-items" and not col.items_sha256:
        raise ConfigError(f"{where}: delta = 'same-items' needs items_sha256")
    if col.delta == "same-count" and col.n is None:
        raise ConfigError(f"{where}: delta = 'same-count' needs n")
    return col


# --- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One results.json: what a measured row is made of."""

    label: str
    model: str
    model_path: str
    source: Path
    tasks: Mapping[str, Mapping[str, Any]]


def load_results(paths: Sequence[Path]) -> list[Run]:
    runs = []
    for p in paths:
        p = Path(p)
        f = p / "results.json" if p.is_dir() else p
        if not f.exists():
            raise ConfigError(f"{f}: no results.json there (give results.json files or run output directories)")
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{f}:{e.lineno}: invalid JSON: {e.msg}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), dict) or "model" not in doc:
            raise ConfigError(f"{f}: not a chimed-eval results.json (expected 'model' and 'tasks')")
        model = doc["model"] or {}
        runs.append(Run(str(model.get("name", "unknown")), str(model.get("name", "unknown")),
                        str(model.get("path", "")), f, doc["tasks"]))
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.label] = counts.get(r.label, 0) + 1
    return [Run(f"{r.label} ({r.source.parent.name or r.source.name})", r.model, r.model_path, r.source, r.tasks)
            if counts[r.label] > 1 else r for r in runs]


def published_model(run: Run, aliases: Mapping[str, Sequence[str]]) -> str | None:
    """The published model a run is, by name, path or the path's last part (case-insensitive)."""
    names = {run.model.lower(), run.model_path.lower(), run.model_path.rstrip("/").rsplit("/", 1)[-1].lower()} - {""}
    for m in paper.MODELS:
        if {m.lower(), *(a.lower() for a in aliases.get(m, ()))} & names:
            return m
    return None


# --- the table -------------------------------------------------------------------------------------


@dataclass
class Cell:
    status: str  # published | measured | blank | refused
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    delta: float | None = None
    items_sha256: str | None = None
    protocol: str | None = None
    averaging: str | None = None
    notes: list[int] = field(default_factory=list)


@dataclass
class Row:
    label: str
    kind: str  # published | measured
    source: str
    cells: list[Cell]
    run: str = ""
    notes: list[int] = field(default_factory=list)


@dataclass
class Table:
    board: Board
    rows: list[Row]
    footnotes: list[str]

    def note(self, text: str) -> int:
        """The footnote number of ``text`` (added on first use)."""
        if text not in self.footnotes:
            self.footnotes.append(text)
        return self.footnotes.index(text) + 1


def build(board: Board, runs: Sequence[Run], aliases: Mapping[str, Sequence[str]] | None = None) -> Table:
    aliases = aliases or {}
    table = Table(board, [], [])
    _check_mixed_protocols(board, runs)
    if board.published:
        cols, rows = paper.PUBLISHED[board.published]
        for model in rows:
            cells = []
            for c in board.columns:
                v = paper.published_value(board.published, model, c.published) if c.published else None
                if v is None:
                    cells.append(Cell("blank"))
                    continue
                info = paper.COLUMNS[(board.published, c.published)]
                cell = Cell("published", v, n=info.n, protocol=paper.PUBLISHED_PROTOCOL, averaging=info.averaging)
                cell.notes = [table.note(paper.FOOTNOTES[k]) for k in paper.CELL_NOTES.get((board.published, model, c.published), ())]
                cells.append(cell)
            row = Row(model, "published", f"published ({paper.PUBLISHED_PROTOCOL} protocol)", cells)
            row.notes = [table.note(paper.FOOTNOTES[k]) for k in paper.CELL_NOTES.get((board.published, model, None), ())]
            table.rows.append(row)
    for run in runs:
        table.rows.append(_measured_row(table, board, run, published_model(run, aliases)))
    return table


def _metric(run: Run, col: Column) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    t = run.tasks.get(col.task)
    if t is None:
        return None, None
    return t, next((m for m in t.get("metrics", ()) if m.get("name") == col.metric), None)


def _check_mixed_protocols(board: Board, runs: Sequence[Run]) -> None:
    for col in board.columns:
        if col.protocol != "any":
            continue
        seen = {}
        for run in runs:
            _, m = _metric(run, col)
            if m is not None:
                seen.setdefault(m.get("protocol"), []).append(run.label)
        if len(seen) > 1:
            detail = "; ".join(f"{p}: {', '.join(labels)}" for p, labels in seen.items())
            raise BoardRefused(f"board {board.name!r}, column {col.title!r} ({col.task}/{col.metric}): measured "
                               f"rows use different protocols ({detail}); refusing to put them in one column. "
                               "Give the column a protocol, or render the runs separately.")


def _measured_row(table: Table, board: Board, run: Run, pub_model: str | None) -> Row:
    cells = []
    variants, shots = set(), set()
    for col in board.columns:
        t, m = _metric(run, col)
        if t is None or m is None:
            cells.append(Cell("blank"))
            continue
        variants.add(str(t.get("variant") or "-"))
        shots.add(str(t.get("shots", "-")))
        proto, avg = m.get("protocol"), m.get("averaging")
        if col.protocol != "any" and proto != col.protocol:
            cells.append(Cell("refused", protocol=proto, averaging=avg, notes=[table.note(
                f"refused: {run.label} measured {col.task}/{col.metric} with protocol {proto!r}; "
                f"the column {col.title!r} is protocol {col.protocol!r}")]))
            continue
        if col.averaging and avg != col.averaging:
            cells.append(Cell("refused", protocol=proto, averaging=avg, notes=[table.note(
                f"refused: {run.label} {col.task}/{col.metric} averages over {avg!r}; the column {col.title!r} over "
                f"{col.averaging!r}")]))
            continue
        n = m.get("n") if m.get("n") is not None else t.get("n")
        cell = Cell("measured", float(m["value"]), m.get("ci_low"), m.get("ci_high"), n,
                    items_sha256=t.get("items_sha256"), protocol=proto, averaging=avg)
        if col.shots is not None and t.get("shots") is not None and int(t["shots"]) != col.shots:
            cell.notes.append(table.note(f"measured with {t['shots']} shots; the column's protocol is {col.shots}-shot"))
        if col.items_sha256 and t.get("items_sha256") != col.items_sha256:
            cell.notes.append(table.note(
                f"{col.title}: a different item set than the column's ({col.items}"
                + (f", n={col.n}" if col.n is not None else "") + "), e.g. a --limit run"))
        if pub_model and board.published and col.published:
            _delta(table, board, col, cell, t, pub_model)
        cells.append(cell)
    source = "measured"
    if variants:
        source += f" ({'/'.join(sorted(variants))}, {'/'.join(sorted(shots))}-shot)"
    row = Row(run.label, "measured", source, cells, run=str(run.source))
    if pub_model:
        row.notes.append(table.note(f"{run.label} is the published model {pub_model}"))
    return row


def _delta(table: Table, board: Board, col: Column, cell: Cell, t: Mapping[str, Any], pub_model: str) -> None:
    pv = paper.published_value(board.published or "", pub_model, col.published or "")
    if pv is None or cell.value is None:
        return
    if col.delta == "none":
        cell.notes.append(table.note(f"no Δ for {col.title}: {col.no_delta or 'the item sets cannot be matched'}"))
    elif col.delta == "same-items":
        if t.get("items_sha256") == col.items_sha256:
            cell.delta = cell.value - pv
        else:
            cell.notes.append(table.note(f"no Δ for {col.title}: the measured item set is not the paper's "
                                         f"(items_sha256 differs)"))
    elif col.delta == "same-count":
        if t.get("n") == col.n:
            cell.delta = cell.value - pv
            cell.notes.append(table.note(f"Δ for {col.title}: item set matched by task and count only ({col.n}); "
                                         "the data is not public, so no item hash can be pinned"))
        else:
            cell.notes.append(table.note(f"no Δ for {col.title}: {t.get('n')} items measured, the paper's set has {col.n}"))


# --- text forms ------------------------------------------------------------------------------------


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
    return s + _marks(cell.notes)


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
    notes = [f"$^{{{i}}}${tex_escape(t)}" for i, t in enumerate(table.footnotes, 1)]
    cols = [f"{tex_escape(c.title)}: {tex_escape(column_legend(b, c).replace('`', ''))}" for c in b.columns]
    out.append(r"\par\vspace{2pt}{\footnotesize " + r"\\ ".join(cols + notes) + "}")
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


def render(board_name: str, runs: Sequence[Run], boards: BoardSet | None = None) -> str:
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
        if "png" in formats:
            try:
                written.append(write_png(t, stem.with_suffix(".png")))
            except ConfigError as e:
                if list(formats) != list(FORMATS):
                    raise
                log(f"warning: {e}; PNG skipped")
    return "\n".join(md_all), written
