"""Tidy tables of runs for pandas, R or a spreadsheet: ``chimed-eval export`` and
:func:`chimed_eval.export` (:func:`export_table`).

Two tables, one row per observation (as lm-evaluation-harness's per-sample files and inspect's
``evals_df`` give them):

* figures (:data:`FIGURE_EXPORT_COLUMNS`): one row per (run, task, metric), built on
  :meth:`RunResult.to_rows` with the run's label and seed added, so that runs stack;
* items (``--items``, :data:`ITEM_COLUMNS`): one row per record of ``samples/<task>.jsonl``
  (``RunResult.samples``): what was asked, answered, read and scored;
* cases (``--cases``, :data:`CASE_COLUMNS`): a pointwise judge's scores per case of case-record
  tasks (cmb-clin), one row per (run, task, judging, judge, case, criterion).

Formats: ``csv`` (UTF-8 with a header; ``pandas.read_csv(path)`` reads it in one line), ``jsonl`` (one
object per row; ``pandas.read_json(path, lines=True)``) and ``parquet`` (through pyarrow, the
``export`` extra; a clear error without it). Values that are not scalars (a list of gold letters,
predicted entities) are written as JSON text so that every cell of a column has one type.
Runs are read through the one reader (:func:`chimed_eval.runs.reader.read_run`): edited figures
are refused, unverifiable ones exported with the ``integrity`` column saying so.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, Union

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import FIGURE_COLUMNS, RunResult
from chimed_eval.reports.sections import extracted_value
from chimed_eval.runs.records import write_text_atomic

FORMATS = ("csv", "jsonl", "parquet")
#: the figures table: the run's label first, then :data:`FIGURE_COLUMNS`, then its seed and integrity
FIGURE_EXPORT_COLUMNS = ("run", "model", "task", "metric", "value", "ci_low", "ci_high", "ci_method", "n",
                         "averaging", "protocol", "grader_status", "tokenization", "variant", "shots", "seed",
                         "integrity")
#: the item table: one row per record
ITEM_COLUMNS = ("run", "model", "task", "id", "subject", "score", "prediction", "gold", "extracted",
                "extraction_rule", "extraction_failed", "prompt_hash", "prompt", "output")
#: the per-case judge table (``--cases``): one row per (run, task, judging, judge, case, criterion),
#: criterion ``overall`` included, from the judges' ``cases`` (:mod:`chimed_eval.judge.cases`)
CASE_COLUMNS = ("run", "model", "task", "judging", "judge", "case", "questions", "n_valid", "criterion", "value")
_FLOATS = {"value", "ci_low", "ci_high", "score"}
_INTS = {"n", "shots", "seed", "questions", "n_valid"}
_BOOLS = {"extraction_failed"}

RunLike = Union[str, Path, RunResult]


def _label_and_run(run: RunLike, label: str | None = None) -> tuple[str, RunResult]:
    from chimed_eval.runs.reader import read_run

    if isinstance(run, RunResult):
        return label or run.model.name, run
    return label or str(run), read_run(Path(run))


def _seed(run: RunResult) -> int | None:
    seed = run.settings.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def figure_rows(run: RunResult, label: str) -> list[dict[str, Any]]:
    """The tidy figure rows of one run: :meth:`RunResult.to_rows` with ``run``, ``seed`` and
    ``integrity`` added; a figure that could not be computed (NaN) is an empty cell."""
    assert set(FIGURE_COLUMNS) <= set(FIGURE_EXPORT_COLUMNS)
    seed, integrity = _seed(run), run.integrity or None
    out = []
    for r in run.to_rows():
        row = {**r, "run": label, "seed": seed, "integrity": integrity}
        if isinstance(row["value"], float) and math.isnan(row["value"]):
            row["value"] = None
        out.append({k: row.get(k) for k in FIGURE_EXPORT_COLUMNS})
    return out


def _cell(x: Any) -> Any:
    """A scalar as it is; anything else (lists, mappings) as JSON text."""
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return json.dumps(x, ensure_ascii=False)


def item_rows(run: RunResult, label: str) -> Iterator[dict[str, Any]]:
    """One row per record of each task of ``run`` (``RunResult.samples``), in task and file order."""
    for t in run.tasks:
        try:
            records = run.samples(t.task)
        except LookupError:  # built in memory without records: only figures to export
            continue
        for s in records:
            output = s.generation if s.generation is not None else s.prediction
            yield {"run": label, "model": run.model.name, "task": t.task, "id": str(s.id), "subject": s.subject,
                   "score": None if s.score is None else float(s.score), "prediction": _cell(s.prediction),
                   "gold": _cell(s.gold), "extracted": extracted_value(s),
                   "extraction_rule": _cell(s.extra.get("extraction_rule")),
                   "extraction_failed": bool(s.extraction_failed), "prompt_hash": s.prompt_hash,
                   "prompt": _cell(s.prompt), "output": _cell(output)}


def case_rows(run: RunLike, label: str, model: str) -> Iterator[dict[str, Any]]:
    """One row per (task, judging, judge, case, criterion) of the run's pointwise judgings of
    questions of case records (cmb-clin), criterion ``overall`` first: which cases scored low."""
    from chimed_eval.judge.sealed import read_judge_results
    from chimed_eval.reports.judge import judge_results_files

    if isinstance(run, RunResult):
        raise ConfigError("--cases reads the judges' results under OUT/judge/: give run directories, not RunResult objects")
    path = Path(run)
    for f in judge_results_files(path.parent if path.is_file() else path):
        res = read_judge_results(f)
        for task, t in (res.get("tasks") or {}).items():
            for case, c in (t.get("cases") or {}).items():
                for judge, fj in c["judges"].items():
                    base = {"run": label, "model": model, "task": task, "judging": f.parent.name, "judge": judge,
                            "case": case, "questions": c["n"], "n_valid": fj["n_valid"]}
                    yield {**base, "criterion": "overall", "value": fj["overall"]}
                    for crit, v in fj["criteria"].items():
                        yield {**base, "criterion": crit, "value": v}


def export_rows(runs: Sequence[RunLike], items: bool = False, labels: Sequence[str] | None = None,
                cases: bool = False) -> list[dict[str, Any]]:
    """The rows of the figures table (or with ``items`` the item table, with ``cases`` the per-case
    judge table) of ``runs`` (run directories, results.json files or :class:`RunResult` objects),
    one run after the other."""
    if not runs:
        raise ConfigError("export needs at least one run (an output directory or its results.json)")
    if labels is not None and len(labels) != len(runs):
        raise ConfigError(f"{len(labels)} labels for {len(runs)} runs")
    if items and cases:
        raise ConfigError("--items and --cases are two tables: export one of them")
    rows: list[dict[str, Any]] = []
    for k, r in enumerate(runs):
        label, run = _label_and_run(r, labels[k] if labels else None)
        if cases:
            rows.extend(case_rows(r, label, run.model.name))
        else:
            rows.extend(item_rows(run, label) if items else figure_rows(run, label))
    return rows


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV text with a header (``None`` as an empty cell, booleans as true/false)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("true" if v is True else "false" if v is False else v) for k, v in r.items()})
    return buf.getvalue()


def to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_parquet(rows: Sequence[dict[str, Any]], columns: Sequence[str], path: Path) -> None:
    """A Parquet file with one typed column each (float64, int64, bool or string)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("--format parquet needs pyarrow: pip install 'chimed-eval[export]' (or pip install "
                          "pyarrow); csv and jsonl need nothing more") from None
    kind = {c: pa.float64() if c in _FLOATS else pa.int64() if c in _INTS else pa.bool_() if c in _BOOLS
            else pa.string() for c in columns}
    schema = pa.schema([(c, kind[c]) for c in columns])
    arrays = [pa.array([None if r[c] is None else (r[c] if c in _FLOATS | _INTS | _BOOLS else str(r[c]))
                        for r in rows], type=kind[c]) for c in columns]
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), str(path))


def export_table(runs: Sequence[RunLike] | RunLike, output: Path | str | None = None, format: str | None = None,
           items: bool = False, labels: Sequence[str] | None = None, cases: bool = False) -> str | Path:
    """Write the tidy table of ``runs`` to ``output`` (format from ``format`` or the file's
    suffix) and return its path; without ``output``, return the CSV or JSONL text (Parquet needs a
    file). ``items``: one row per record instead of one per figure; ``cases``: one row per case and
    criterion of the judges' per-case scores (cmb-clin). The Python door of ``chimed-eval export``."""
    runs = [runs] if isinstance(runs, (str, Path, RunResult)) else list(runs)
    fmt = format or (Path(output).suffix.lstrip(".").lower() if output is not None else "csv")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "parquet" and output is None:
        raise ConfigError("--format parquet writes a file: give --output FILE.parquet")
    columns = CASE_COLUMNS if cases else ITEM_COLUMNS if items else FIGURE_EXPORT_COLUMNS
    rows = export_rows(runs, items, labels, cases)
    if output is None:
        return to_csv(rows, columns) if fmt == "csv" else to_jsonl(rows)
    out = Path(output)
    if fmt != "parquet":  # a Ctrl-C or a full disk never leaves half a table under the real name
        write_text_atomic(out, to_csv(rows, columns) if fmt == "csv" else to_jsonl(rows))
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        write_parquet(rows, columns, Path(tmp))
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out
