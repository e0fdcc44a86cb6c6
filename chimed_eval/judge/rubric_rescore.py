"""``chimed-eval score`` and the rubric figures: recompute them from the grading's verdict records.

``score`` rebuilds results.json from the per-sample records; a rubric task's figures (score, tags,
met rates, the grader's macro F1 and ``grader_status``) come from a grading instead
(:mod:`chimed_eval.judge.rubric`). Here they are computed again, without any model, from what that
grading saved under ``OUT/judge/rubric-<hash>/``: ``judge.json`` (graders, verdict mode, settings),
``grading.json`` (tasks, limit, seed, threshold and the human labels it used) and the verdict
records (``records/<task>.jsonl``, ``records/grader-labels.jsonl``), against the items of the run's
own records. Never copied from the old results.json: that file only says which grading its figures
came from (``grader_status.grading``); without it, the most recent grading is used.

A verdict whose grader prompt no longer matches the run's record (the response changed since the
grading), or a missing verdict, is refused with the file and item named: the figures would no
longer describe this run's answers; grading again (``chimed-eval judge``) makes them anew. The
check runs before results.json is written (:func:`score_finish`), so a refused ``score`` leaves it
as it was.

A grading made before ``grading.json`` existed saved no human labels (the verdict records hold the
grader's verdicts, not the physicians'), so its figures cannot be recomputed: ``score`` keeps them
from results.json untouched, when that file still matches the run's records, and says so in one
line naming the grading and the ``chimed-eval judge`` command that makes them recomputable; when it
no longer matches, ``score`` refuses (nothing written) with the same line (:func:`keep_unrecomputable`).

``score --exclude-contaminated`` recomputes them over the items the report does not flag
(:func:`clean_rubric`): the score, tags and met rates over the kept items; the grader's validation
(macro F1 on the human labels) measures the grader, not the model, so it and the grader status
are those of the whole grading.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import RunResult
from chimed_eval.judge.rubric import (
    GRADING_INPUTS, LABELS_TASK, Label, RubricItem, grading_results, load_rubric_items, rubric_tasks,
)
from chimed_eval.judge.rubric_results import PREFIXES, with_rubric_metrics
from chimed_eval.judge.sealed import read_judge_results
from chimed_eval.judge.store import JUDGE_RESULTS, RecordStore


def _gradings(out_dir: Path) -> list[Path]:
    return [p for p in (Path(out_dir) / "judge").glob("rubric-*") if (p / GRADING_INPUTS).is_file()]


def grading_of(out_dir: Path, old: RunResult | None) -> Path | None:
    """The grading whose figures results.json held (``grader_status.grading``), else the latest one
    (by the time its results were written); None when OUT holds no grading that can be recomputed."""
    found = _gradings(out_dir)
    for t in old.tasks if old is not None else ():
        for m in t.metrics:
            name = (m.grader_status or {}).get("grading")
            if name and (Path(out_dir) / "judge" / str(name)) in found:
                return Path(out_dir) / "judge" / str(name)
    if not found:
        return None
    return max(found, key=lambda p: (p / GRADING_INPUTS).stat().st_mtime_ns)


def _check(rec: dict[str, Any] | None, item: RubricItem, response: str, k: int, where: Path) -> None:
    from chimed_eval.prompts.rubric import grader_prompt

    if rec is None:
        raise ConfigError(f"{where}: no verdict on item {item.id!r} criterion {k}: the grading is incomplete; "
                          "run `chimed-eval judge` again to finish it")
    crit = item.rubrics[k]
    if rec.get("prompt") != grader_prompt(list(item.conversation), response, str(crit["criterion"]), float(crit["points"])):
        raise ConfigError(f"{where}: the verdict on item {item.id!r} criterion {k} was given on another response or "
                          "rubric than the run's record now holds; grade again (`chimed-eval judge`)")


def rescore_grading(out_dir: Path, jdir: Path, keep: Mapping[str, set[str]] | None = None) -> dict[str, Any]:
    """The results of grading ``jdir``, recomputed from its records and the run's rubric records;
    with ``keep`` (task -> item ids), the figures of each task over those items only (every verdict
    is checked all the same; the grader's validation uses every label)."""
    from chimed_eval.core.types import sha256_text
    from chimed_eval.runs.jsonio import read_json_file

    state, inputs = read_json_file(jdir / "judge.json"), read_json_file(jdir / GRADING_INPUTS)
    judges = list(state["settings"]["judges"])
    tasks = [t for t in inputs["tasks"] if t in rubric_tasks(out_dir, None)]
    items = {t: load_rubric_items(out_dir, t, inputs.get("limit")) for t in tasks}
    done = {t: RecordStore(jdir, t).load() for t in [*tasks, LABELS_TASK]}
    by_id = {i.id: i for t in tasks for i in items[t]}
    for t in tasks:
        for i in items[t]:
            for j in judges:
                for k in range(len(i.rubrics)):
                    _check(done[t].get((i.id, j, f"c{k}")), i, i.response, k, RecordStore(jdir, t).path)
    labels = []
    for row in inputs.get("label_rows") or []:
        item = by_id.get(str(row["id"]))
        if item is None:
            raise ConfigError(f"{jdir / GRADING_INPUTS}: a label of item {row['id']!r}, which the run no longer holds")
        lab = Label(item, str(row["response"]), int(row["criterion"]), bool(row["met"]), int(row["line"]))
        for j in judges:
            key = (f"{item.id}#{sha256_text(lab.response)[:12]}", j, f"l{lab.line}")
            _check(done[LABELS_TASK].get(key), item, lab.response, lab.criterion, RecordStore(jdir, LABELS_TASK).path)
        labels.append(lab)
    head = {"judges": judges, "verdict": state.get("verdict", "generate"), "backend": state["settings"]["backend"],
            "settings": state["settings"], "seed": inputs["seed"], "candidate": state.get("candidate"),
            "judge_models": state.get("judge_models", {})}
    if keep is not None:
        items = {t: kept for t in tasks if (kept := [i for i in items[t] if i.id in keep.get(t, ())])}
    return grading_results(items, labels, done, head, float(inputs["min_f1"]), inputs.get("labels"))


def _holds_rubric_figures(old: RunResult | None) -> bool:
    return old is not None and any(str(m.name).startswith(PREFIXES) for t in old.tasks for m in t.metrics)


def _legacy_grading(out_dir: Path) -> Path | None:
    """The latest rubric grading of OUT made before ``grading.json`` existed (judge.json, no grading.json)."""
    old = [p for p in (Path(out_dir) / "judge").glob("rubric-*")
           if (p / "judge.json").is_file() and not (p / GRADING_INPUTS).is_file()]
    return max(old, key=lambda p: (p / "judge.json").stat().st_mtime_ns) if old else None


def regrade_command(out_dir: Path, jdir: Path | None) -> str:
    """The ``chimed-eval judge`` command that grades OUT again as ``jdir`` did (its graders, backend,
    verdict mode, labels and threshold), which also writes the grading.json that makes it recomputable."""
    from chimed_eval.judge.rubric_figures import DEFAULT_MIN_F1
    from chimed_eval.runs.jsonio import read_json_file

    cmd = f"chimed-eval judge {shlex.quote(str(out_dir))} --protocol rubric"
    try:
        state = read_json_file(jdir / "judge.json") if jdir is not None else {}
        res = read_judge_results(jdir / JUDGE_RESULTS) if jdir is not None and (jdir / JUDGE_RESULTS).is_file() else {}
        st = state.get("settings") or {}
        cmd += f" --judge {','.join(st['judges'])} --judge-backend {st['backend']}"
    except (ConfigError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return cmd + " --judge GRADER --judge-backend BACKEND [--grader-labels FILE]"
    if st.get("judge_args"):
        cmd += " --judge-args " + shlex.quote(",".join(f"{k}={v}" for k, v in st["judge_args"].items()))
    if state.get("verdict", "generate") != "generate":
        cmd += f" --verdict {state['verdict']}"
    if isinstance(res.get("labels"), dict) and res["labels"].get("path"):
        cmd += f" --grader-labels {shlex.quote(str(res['labels']['path']))}"
    if isinstance(res.get("min_f1"), (int, float)) and res["min_f1"] != DEFAULT_MIN_F1:
        cmd += f" --grader-min-f1 {res['min_f1']:g}"
    if isinstance(res.get("seed"), int) and res["seed"] != 1234:  # the bootstrap's seed (judge's default 1234)
        cmd += f" --seed {res['seed']}"
    return cmd


def unrecomputable(out_dir: Path, old: RunResult | None) -> tuple[str, str] | None:
    """Why OUT's rubric figures cannot be recomputed (which grading) and what to run to make them
    recomputable, or None when the old run holds none or a grading can recompute them."""
    if not _holds_rubric_figures(old) or grading_of(out_dir, old) is not None:
        return None
    jdir = _legacy_grading(out_dir)
    what = (f"{jdir}: graded before grading.json existed (its human labels were not saved)" if jdir is not None
            else f"{Path(out_dir) / 'judge'}: no grading directory holds the rubric figures' verdicts")
    return f"{what}, so score cannot recompute its rubric figures", f"run `{regrade_command(out_dir, jdir)}` to make them recomputable"


def keep_unrecomputable(out_dir: Path, doc: dict[str, Any], old: RunResult | None, notes: list[str]) -> dict[str, Any]:
    """``doc`` with the rubric figures of results.json kept as they were, when no grading can recompute
    them (module doc); ``notes`` gets the one line saying so. Refused (ConfigError, nothing written)
    when results.json no longer matches the run's records: its figures would not describe them."""
    from chimed_eval.runs.jsonio import read_json_file
    from chimed_eval.runs.reader import results_json, verify_results

    found = unrecomputable(out_dir, old)
    if found is None:
        return doc
    why, todo = found
    path = results_json(out_dir)
    raw = read_json_file(path)
    try:
        verify_results(raw, path)
    except ConfigError:
        raise ConfigError(f"{why}, and {path} no longer matches the run's records, so they cannot be kept "
                          f"either; nothing written: {todo}") from None
    for t, v in raw["tasks"].items():
        if t in doc.get("tasks", {}):
            doc["tasks"][t]["metrics"] += [m for m in v.get("metrics", []) if str(m.get("name", "")).startswith(PREFIXES)]
    notes.append(f"note: {why}; kept them from results.json as they were (not recomputed); {todo}")
    return doc


def score_finish(out_dir: Path, notes: list[str]) -> Callable[[dict[str, Any], RunResult | None], dict[str, Any]]:
    """The ``finish`` step of :func:`chimed_eval.engine.rescore.rescore_run` for ``score``: the rubric
    figures recomputed from their grading (every verdict checked) put into the rebuilt document before
    it is written, or kept when they cannot be recomputed (``notes`` then says so)."""

    def finish(doc: dict[str, Any], old: RunResult | None) -> dict[str, Any]:
        jdir = grading_of(out_dir, old)
        if jdir is None:
            return keep_unrecomputable(out_dir, doc, old, notes)
        return with_rubric_metrics(doc, rescore_grading(out_dir, jdir), jdir.name)

    return finish


@dataclass(frozen=True)
class CleanRubric:
    """The rubric figures for ``score --exclude-contaminated``: over every item (``full``) and over
    the kept ones (``clean``), from grading ``grading``; or ``absent``: why there are none although
    the run has rubric figures (None: the run has none)."""

    grading: str | None = None
    full: dict[str, Any] | None = None
    clean: dict[str, Any] | None = None
    absent: str | None = None


def clean_rubric(out_dir: Path, old: RunResult | None, keep: Mapping[str, set[str]]) -> CleanRubric:
    """The rubric figures of OUT over every item and over ``keep`` (task -> the item ids a
    contamination report does not flag), recomputed from their grading (module doc)."""
    jdir = grading_of(out_dir, old)
    if jdir is None:
        found = unrecomputable(out_dir, old)
        return CleanRubric(absent=None if found is None else f"{found[0]} over the clean items; {found[1]}")
    return CleanRubric(jdir.name, rescore_grading(out_dir, jdir), rescore_grading(out_dir, jdir, keep))
