"""``chimed-eval score OUT --exclude-contaminated REPORT``: a run's figures on the items a
contamination report does not flag, beside the figures on every item.

Every record of OUT is re-scored from ``OUT/samples`` (as ``score`` does, no model); a record is
dropped when the report marks its item contaminated (a record of ``--shuffle-choices`` /
``--repeats`` belongs to the item in its ``extra``: ``shuffle.of`` / ``repeat.of``); items too
short to check are kept. The clean figures go to ``OUT/results.clean.json``: the results.json
schema, with ``settings.contamination`` saying what was excluded (the report's path and sha256,
its rule, per task the records and items excluded, their ids, the items too short to check, the
report's rate, the sha256 of the records scored, and the figures on every item). results.json is
never touched: a subset never passes for the run. A rubric task's figures are recomputed from its
grading's verdict records over the kept items (the grader's validation and status are the whole
grading's: they measure the grader, not the model); ``settings.contamination.rubric`` names the
grading, or says why the figures are absent (a grading that cannot be recomputed).

Refused (nothing written, exit 2 naming the report's file and line): a report that contradicts
itself (an item listed twice -- a second record could un-flag the first --, a summary count or
rate that the records do not give, an ``ids_sha256`` that is not that of its ids, a record whose
``match`` disagrees with its flag), a task of the run missing from the report, an item of the run
the report does not know (it was built on another item set: another data folder, --task-args, or
version of the data), an item of the report the run does not have (unless the run declares a
subset: ``--limit`` or a shard), and a data file whose sha256 differs between the run and the
report. Items the report flags option-only (:mod:`.ngrams`) are kept and counted.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from chimed_eval.core.errors import ConfigError

CLEAN_FILE = "results.clean.json"


def read_report(path: Path) -> dict[str, Any]:
    """A ``chimed-eval contamination --output`` report, checked enough to exclude items by it."""
    from chimed_eval.runs.reader import read_json_file
    from chimed_eval.contamination.report import REPORT_FORMAT, REPORT_VERSION

    doc = read_json_file(path)
    if not isinstance(doc, dict) or doc.get("format") != REPORT_FORMAT:
        raise ConfigError(f"{path}: not a contamination report (write one with: chimed-eval contamination "
                          "--corpus ... --tasks ... --output REPORT.json)")
    if doc.get("format_version") != REPORT_VERSION:
        raise ConfigError(f"{path}: report format version {doc.get('format_version')!r}; this chimed-eval reads "
                          f"version {REPORT_VERSION}: write the report again")
    tasks = doc.get("tasks")
    if not isinstance(tasks, dict):
        raise ConfigError(f"{path}: 'tasks' must be an object")
    for name, t in tasks.items():
        recs = t.get("records") if isinstance(t, dict) else None
        if not isinstance(recs, list) or not all(
                isinstance(r, dict) and isinstance(r.get("id"), str) and r.get("contaminated") in (True, False, None)
                for r in recs):
            raise ConfigError(f"{path}: task {name!r}: 'records' must be a list of {{id, contaminated}} objects")
    for name, t in tasks.items():
        _check_consistent(path, name, t)
    return doc


_WS = re.compile(r"[ \t\r\n]*")


def json_line(path: Path, where: Sequence[str | int]) -> int | None:
    """The line of ``path`` (a JSON file) where the value at ``where`` (object keys and list
    indices; of repeated keys the last, as json.loads reads) starts; None if it cannot be found."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        dec, pos = json.JSONDecoder(), _WS.match(text, 0).end()  # type: ignore[union-attr]
        for step in where:
            opener = "[" if isinstance(step, int) else "{"
            if text[pos] != opener:
                return None
            pos, found, k = _WS.match(text, pos + 1).end(), None, 0  # type: ignore[union-attr]
            while text[pos] not in "]}":
                if opener == "{":
                    name, pos = dec.raw_decode(text, pos)
                    pos = _WS.match(text, _WS.match(text, pos).end() + 1).end()  # type: ignore[union-attr]  # past ':'
                    found = pos if name == step else found
                elif k == step:
                    found = pos
                    break
                _, pos = dec.raw_decode(text, pos)
                pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
                pos = _WS.match(text, pos + 1).end() if text[pos] == "," else pos  # type: ignore[union-attr]
                k += 1
            if found is None:
                return None
            pos = found
        return text.count("\n", 0, pos) + 1
    except (OSError, ValueError, IndexError):
        return None


def _at(path: Path, where: Sequence[str | int]) -> str:
    line = json_line(path, where)
    return f"{path}:{line}" if line is not None else str(path)


def _check_consistent(path: Path, name: str, t: dict[str, Any]) -> None:
    """Refuse a task of a report whose records contradict each other or its summary (module doc)."""
    from chimed_eval.core.types import sha256_text

    recs = t["records"]
    first: dict[str, int] = {}
    for j, r in enumerate(recs):
        if r["id"] in first:
            raise ConfigError(f"{_at(path, ['tasks', name, 'records', j])}: task {name!r}: item {r['id']!r} is listed "
                              f"twice (first at {_at(path, ['tasks', name, 'records', first[r['id']]])}); a second "
                              "record would override the first: write the report again")
        first[r["id"]] = j
        m = r.get("match")
        if m not in ("question", "option-only", None) or (m == "question") != (r["contaminated"] is True):
            raise ConfigError(f"{_at(path, ['tasks', name, 'records', j, 'match'])}: task {name!r}: item {r['id']!r}: "
                              f"match {r.get('match')!r} disagrees with contaminated={json.dumps(r['contaminated'])}")
    checked = sum(1 for r in recs if r["contaminated"] is not None)
    bad = sum(1 for r in recs if r["contaminated"] is True)
    counts = {"items": len(recs), "checked": checked, "too_short": len(recs) - checked, "contaminated": bad,
              "option_only": sum(1 for r in recs if r.get("match") == "option-only"),
              "ids_sha256": sha256_text("\n".join(r["id"] for r in recs))}
    for k, v in counts.items():
        if t.get(k) != v:
            raise ConfigError(f"{_at(path, ['tasks', name, k])}: task {name!r}: {k} is {json.dumps(t.get(k))} but its "
                              f"records give {json.dumps(v)}: the report was edited or is damaged; write it again")
    rate = t.get("rate")
    if (rate is None) != (checked == 0) or (checked and not (isinstance(rate, (int, float)) and abs(rate - bad / checked) < 1e-9)):
        raise ConfigError(f"{_at(path, ['tasks', name, 'rate'])}: task {name!r}: rate is {json.dumps(rate)} but its records "
                          f"give {bad} / {checked}: the report was edited or is damaged; write it again")


def base_id(rec: dict[str, Any]) -> str:
    """The item a record scores: ``extra.shuffle.of`` / ``extra.repeat.of``, else its id."""
    extra = rec.get("extra")
    for k in ("shuffle", "repeat"):
        v = extra.get(k) if isinstance(extra, dict) else None
        if isinstance(v, dict) and "of" in v:
            return str(v["of"])
    return str(rec["id"])


def _fit(name: str, meta: Any, recs: dict[str, dict], rep: dict[str, Any], path: Path, subset: bool) -> list[str]:
    """What keeps the report at ``path`` from applying to task ``name`` of the run (empty: it
    applies); ``subset``: the run declares that it holds part of the task's items (--limit, a shard)."""
    t = rep["tasks"].get(name)
    if t is None:
        return [f"task {name} is not in the report (it has: {', '.join(rep['tasks']) or 'none'}); "
                f"build it with --tasks {name}"]
    known = {r["id"] for r in t["records"]}
    ours = {base_id(r) for r in recs.values()}
    missing = sorted(ours - known)
    out = []
    if missing:
        out.append(f"task {name}: {len(missing)} of the run's items are not in the report, e.g. "
                   f"{', '.join(missing[:3])} (it was built on another item set)")
    extra = [(j, r["id"]) for j, r in enumerate(t["records"]) if r["id"] not in ours]
    if extra and not subset:
        out.append(f"task {name}: {len(extra)} of the report's items are not in the run, e.g. "
                   f"{', '.join(i for _, i in extra[:3])} (at {_at(path, ['tasks', name, 'records', extra[0][0]])}; "
                   "it was built on another item set, or the run is unfinished)")
    theirs = t.get("data_files") or {}
    for f, h in sorted(meta.data_files.items()):
        if f in theirs and theirs[f] != h:
            out.append(f"task {name}: data file {f} differs (run sha256 {h[:12]}..., report {str(theirs[f])[:12]}...)")
    return out


def clean_rescore(out_dir: Path, report_path: Path, get_task: Callable[[str], Any]) -> tuple[Any, Any, dict[str, Any]]:
    """(figures on every item, figures on the unflagged items, the contamination block); writes
    OUT/results.clean.json (see the module doc)."""
    from chimed_eval.core.version import SCHEMA_VERSION
    from chimed_eval.runs.outdir import OutLock, check_adoptable
    from chimed_eval.runs.records import SampleStore, run_result_to_dict, task_result_to_dict, write_json_atomic
    from chimed_eval.engine.runner import task_result
    from chimed_eval.runs.reader import read_run_if_any, read_run_state, require_run_dir, run_from_dict, seal_results
    from chimed_eval.core.types import file_sha256
    from chimed_eval.core.types import ModelInfo, RunResult

    require_run_dir(out_dir)
    rep = read_report(report_path)
    with OutLock(out_dir):
        check_adoptable(out_dir)
        state = read_run_state(out_dir)
        runs = {n: SampleStore(out_dir, n) for n in state.tasks}
        runs = {n: (s, s.load()) for n, s in runs.items() if s.path.exists()}
        problems = [p for n, (_, recs) in runs.items()
                    for p in _fit(n, state.tasks[n], recs, rep, report_path,
                                  state.settings.get("limit") is not None or state.tasks[n].n_total is not None)]
        if problems:
            raise ConfigError(f"{report_path} does not fit the run in {out_dir}: " + "; ".join(problems))
        full, clean, block, kept_ids = [], [], {}, {}
        for name, (store, recs) in runs.items():
            meta, task = state.tasks[name], get_task(name)
            verdict = {r["id"]: r["contaminated"] for r in rep["tasks"][name]["records"]}
            option_only = {r["id"] for r in rep["tasks"][name]["records"] if r.get("match") == "option-only"}
            scores = [task.rescore(r, meta.variant) for r in recs.values()]
            bases = [base_id(r) for r in recs.values()]
            kept = [s for s, b in zip(scores, bases) if verdict[b] is not True]
            kept_ids[name] = {str(r["id"]) for r, b in zip(recs.values(), bases) if verdict[b] is not True}
            kw = dict(variant=meta.variant, shots=meta.shots, data_files=dict(meta.data_files))
            full.append(task_result(task, None, scores, state.seed, **kw))
            if kept:
                clean.append(task_result(task, None, kept, state.seed, **kw))
            excluded = sorted({b for b in bases if verdict[b] is True})
            rt = rep["tasks"][name]
            block[name] = {"records": len(scores), "excluded_records": len(scores) - len(kept),
                           "items": len(set(bases)), "excluded_items": len(excluded),
                           "too_short_items": len({b for b in bases if verdict[b] is None}),
                           "option_only_items": len(set(bases) & option_only),
                           "excluded_ids": excluded, "report_rate": rt.get("rate"), "report_rate_ci95": rt.get("rate_ci95"),
                           "records_sha256": file_sha256(store.path),
                           "full_metrics": task_result_to_dict(full[-1])["metrics"]}
        old = read_run_if_any(out_dir)
        model = old.model if old is not None else ModelInfo("unknown", "unknown", None, None, None)
        settings = dict((old.settings if old is not None else None) or state.settings)
        contamination = {"report": str(report_path), "report_sha256": file_sha256(report_path), "n": rep.get("n"),
                         "tokenisation": rep.get("tokenisation"), "rule": rep.get("rule"),
                         "max_documents": rep.get("max_documents"),
                         "corpus": [{"path": f.get("path"), "sha256": f.get("sha256")}
                                    for f in (rep.get("corpus") or {}).get("files", [])],
                         "tasks": block}
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        rr_full = RunResult(SCHEMA_VERSION, model, settings, tuple(full), now)
        rr_clean = RunResult(SCHEMA_VERSION, model, {**settings, "contamination": contamination}, tuple(clean), now)
        docs = _with_rubric(out_dir, old, kept_ids, run_result_to_dict(rr_full), run_result_to_dict(rr_clean))
        write_json_atomic(out_dir / CLEAN_FILE, seal_results(docs[1], out_dir))  # sealed like results.json
    where = out_dir / CLEAN_FILE
    return run_from_dict(docs[0], where), run_from_dict(docs[1], where), docs[1]["settings"]["contamination"]


def _with_rubric(out_dir: Path, old: Any, kept: dict[str, set[str]], full: dict[str, Any],
                 clean: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The results documents on every item and on the clean items with the rubric figures of the
    run's grading, recomputed over each (:func:`chimed_eval.judge.rubric_rescore.clean_rubric`);
    ``settings.contamination.rubric`` says which grading, or why there are none (a grading that
    cannot be recomputed: the figures are labelled absent, never copied from the full run)."""
    from chimed_eval.judge.rubric_rescore import clean_rubric
    from chimed_eval.judge.rubric_results import rubric_metrics, with_rubric_metrics

    rub = clean_rubric(out_dir, old, kept)
    block = clean["settings"]["contamination"]
    if rub.absent is not None:
        block["rubric"] = {"absent": rub.absent}
    if rub.grading is None or rub.full is None or rub.clean is None:
        return full, clean
    for t in rub.full["tasks"]:
        if t in block["tasks"]:
            block["tasks"][t]["full_metrics"] += rubric_metrics(rub.full, t, rub.grading)
    block["rubric"] = {"grading": rub.grading, "figures": "recomputed over the clean items",
                       "grader_validation": "the whole grading's (it measures the grader against human labels, "
                                            "not the model on the items)"}
    return with_rubric_metrics(full, rub.full, rub.grading), with_rubric_metrics(clean, rub.clean, rub.grading)


def _fig(m: Any) -> str:
    if m is None:
        return "-"
    ci = f" [{m.ci_low:.2f}, {m.ci_high:.2f}]" if m.ci_low is not None else ""
    return f"{m.value:.2f}{ci}"


def score_clean(out_dir: Path, report_path: Path, get_task: Callable[[str], Any]) -> int:
    """The ``score --exclude-contaminated`` command: write results.clean.json, print both figures."""
    full, clean, block = clean_rescore(out_dir, report_path, get_task)
    by_task = {t.task: t for t in clean.tasks}
    print(f"{'task':24} {'metric':22} {'all items':>24} {'n':>6}  {'clean items':>24} {'n':>6}  excluded")
    for t in full.tasks:
        c = by_task.get(t.task)
        cm = {m.name: m for m in c.metrics} if c is not None else {}
        b = block["tasks"][t.task]
        for m in t.metrics:
            cn = cm[m.name].n if m.name in cm and cm[m.name].n is not None else (c.n if c else 0)
            print(f"{t.task:24} {m.name:22} {_fig(m):>24} {m.n if m.n is not None else t.n:>6}  "
                  f"{_fig(cm.get(m.name)):>24} {cn:>6}  {b['excluded_items']} item(s)")
    print(f"\nclean results: {out_dir / CLEAN_FILE} (results.json unchanged); "
          f"excluded items per task: {({k: v['excluded_items'] for k, v in block['tasks'].items()})}; "
          f"option-only matches kept: {({k: v['option_only_items'] for k, v in block['tasks'].items()})}")
    if (block.get("rubric") or {}).get("absent"):  # the run's rubric figures could not be recomputed
        print(f"note: no rubric figures in {out_dir / CLEAN_FILE}: {block['rubric']['absent']}", file=sys.stderr)
    return 0
