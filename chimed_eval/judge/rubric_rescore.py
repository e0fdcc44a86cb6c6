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
longer describe this run's answers; grading again (``chimed-eval judge``) makes them anew.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import RunResult
from chimed_eval.judge.rubric import (
    GRADING_INPUTS, LABELS_TASK, Label, RubricItem, grading_results, load_rubric_items, rubric_tasks,
)
from chimed_eval.judge.store import RecordStore


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


def rescore_grading(out_dir: Path, jdir: Path) -> dict[str, Any]:
    """The results of grading ``jdir``, recomputed from its records and the run's rubric records."""
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
    return grading_results(items, labels, done, head, float(inputs["min_f1"]), inputs.get("labels"))


def rescore_rubric_figures(out_dir: Path, old: RunResult | None) -> str | None:
    """Put the rubric figures back into OUT's results.json (just rebuilt by ``score``), recomputed
    from their grading's records; returns the grading's directory name, or None without one."""
    from chimed_eval.judge.rubric_results import record_in_results
    from chimed_eval.runs.outdir import OutLock

    jdir = grading_of(out_dir, old)
    if jdir is None:
        return None
    with OutLock(out_dir):
        res = rescore_grading(out_dir, jdir)
        record_in_results(out_dir, res, jdir.name)
    return jdir.name
