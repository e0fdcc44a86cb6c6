"""Rubric grading: a grader (or a panel) judges each criterion of each response met or not met.

Flow, as the other judge protocols (:mod:`.pipeline`): OUT's records of a ``rubric`` task (each
holds the conversation, the model's response and the rubric) -> one grader prompt per criterion
(:mod:`chimed_eval.prompts.rubric`) -> a ``generate`` request (``--verdict generate``: the grader
writes ``判定：是/否``) or a ``next_token`` request over ``是``/``否`` after a prefilled answer
(``--verdict logprobs``) -> a record per (item, grader, criterion) in
``OUT/judge/rubric-<hash>/records/<task>.jsonl`` (order ``c<k>``), resumable and behind the response
cache -> figures (:mod:`.rubric_figures`) in ``results.json``.

Grader validation (``--grader-labels FILE``): JSONL, one human label per line, ``{"id": item id,
"response": text, "criterion": the criterion's text (or "criterion_index": k), "met": true|false}``;
the item (its conversation and rubric) is the run's item of that id. The grader judges each
labelled (response, criterion) pair the same way (records in ``records/grader-labels.jsonl``,
order ``l<line>``), and its agreement is the macro F1 over met / not met with a bootstrap interval
(HealthBench's meta-evaluation). A grader's figures are ``validated`` when its macro F1 is at
least ``--grader-min-f1`` (default 0.7), ``below-threshold`` when lower, ``unvalidated`` without
labels; every figure carries that status (``grader_validation``), and the console prints the
figures of a grader that is not validated only with ``--allow-unvalidated-grader``. With several
graders the reported figures are the panel's (majority per criterion), validated as a panel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.core.types import GenerationConfig, Request, sha256_text
from chimed_eval.judge.inputs import JudgeItem
from chimed_eval.judge.pipeline import JudgeJob, check_out, judge_chat_setup, run_judge
from chimed_eval.judge.rubric_figures import (
    DEFAULT_MIN_F1, UNVALIDATED, VALIDATED, grader_figures, label_agreement, majority, validation_status,
)
from chimed_eval.judge.rubric_results import record_in_results
from chimed_eval.judge.sealed import write_judge_results
from chimed_eval.judge.store import JUDGE_FORMAT, JUDGE_RESULTS, JudgeSettings, RecordStore, check_state, judge_dir

LABELS_TASK = "grader-labels"  # the records of the labelled pairs (records/grader-labels.jsonl)
GRADING_INPUTS = "grading.json"  # the latest grading's tasks, limit, seed, threshold and labels (not figures)


def is_rubric_record(rec: dict) -> bool:
    """A ``rubric`` task's record (``extra.prompt_version`` ``rubric@…``: conversation, response, rubric)."""
    extra = rec.get("extra") if isinstance(rec.get("extra"), dict) else {}
    return str(extra.get("prompt_version") or "").startswith("rubric@")


@dataclass(frozen=True)
class RubricItem:
    """One response to grade: its conversation, the response and the rubric (from OUT's record)."""

    task: str
    id: str
    conversation: tuple[tuple[str, str], ...]
    response: str
    rubrics: tuple[dict, ...]
    example_tags: tuple[str, ...] = ()

    def as_figures_item(self) -> dict[str, Any]:
        return {"id": self.id, "rubrics": list(self.rubrics), "example_tags": list(self.example_tags)}


@dataclass(frozen=True)
class Label:
    """One human label: the item, the labelled response, which criterion, met or not, and its line."""

    item: RubricItem
    response: str
    criterion: int
    met: bool
    line: int

    def as_row(self) -> dict[str, Any]:
        """The label as the grading saves it (``grading.json``), so figures can be recomputed from OUT."""
        return {"id": self.item.id, "task": self.item.task, "response": self.response, "criterion": self.criterion,
                "met": self.met, "line": self.line}


def rubric_tasks(out_dir: Path, tasks: Sequence[str] | None = None) -> list[str]:
    """The rubric tasks of OUT (those asked for must be rubric tasks)."""
    from chimed_eval.runs.reader import first_record, sample_tasks

    names = list(tasks) if tasks else sample_tasks(out_dir)
    found = [t for t in names if (rec := first_record(out_dir, t)) is not None and is_rubric_record(rec)]
    if tasks and len(found) != len(names):
        bad = [t for t in names if t not in found]
        raise ConfigError(f"{out_dir}: not rubric tasks (no rubric records): {', '.join(bad)}")
    return found


def load_rubric_items(out_dir: Path, task: str, limit: int | None = None) -> list[RubricItem]:
    from chimed_eval.runs.reader import iter_records

    by_id: dict[str, dict] = {}
    for rec in iter_records(out_dir, task):
        by_id[str(rec["id"])] = rec
    items = []
    for rid, rec in by_id.items():
        ex = rec.get("extra") or {}
        items.append(RubricItem(task, rid, tuple((str(r), str(t)) for r, t in ex.get("conversation") or ()),
                                str(rec.get("generation") or ""), tuple(ex.get("rubrics") or ()),
                                tuple(ex.get("example_tags") or ())))
    return items[:limit]


def read_labels(path: Path, items: dict[str, RubricItem]) -> list[Label]:
    """The human labels of ``path`` (module docstring); a bad line is a DataError naming line and field."""
    from chimed_eval.files.tabular import read_rows

    if not path.is_file():
        raise ConfigError(f"--grader-labels {path}: no such file")
    out = []
    for row in read_rows(path, "jsonl"):  # a bad line: DataError naming it
        line, d = row.line, row.fields
        item = items.get(str(d.get("id")))
        if item is None:
            raise DataError(path, line, "id", f"no rubric item {d.get('id')!r} in the graded run")
        if not isinstance(d.get("response"), str) or not d["response"].strip():
            raise DataError(path, line, "response", "missing or empty response text")
        if not isinstance(d.get("met"), bool):
            raise DataError(path, line, "met", f"expected true or false, got {d.get('met')!r}")
        texts = [str(r["criterion"]) for r in item.rubrics]
        if isinstance(d.get("criterion_index"), int) and not isinstance(d["criterion_index"], bool):
            k = d["criterion_index"]
            if not 0 <= k < len(texts):
                raise DataError(path, line, "criterion_index", f"item {item.id} has {len(texts)} criteria")
        elif isinstance(d.get("criterion"), str) and d["criterion"].strip() in texts:
            k = texts.index(d["criterion"].strip())
        else:
            raise DataError(path, line, "criterion", f"not a criterion of item {item.id} (give its exact text, "
                                                     "or criterion_index)")
        out.append(Label(item, d["response"], k, d["met"], line))
    return out


def _job(task: str, item_id: str, order: str, item: RubricItem, response: str, k: int, judge: str, setup,
         settings: JudgeSettings) -> JudgeJob:
    from chimed_eval.models.chat import render_messages
    from chimed_eval.prompts.rubric import MET_TOKENS, VERDICT_PREFIX, conversation_text, grader_prompt

    crit = item.rubrics[k]
    prompt = grader_prompt(list(item.conversation), response, str(crit["criterion"]), float(crit["points"]))
    context, messages = render_messages(setup, [{"role": "user", "content": prompt}])
    key = f"{task}\x00{item_id}\x00{order}"
    shown = JudgeItem(task, item_id, conversation_text(list(item.conversation)), "rubric", str(crit["criterion"]),
                      response)
    if settings.verdict == "logprobs":
        req = Request(kind="next_token", key=key, context=context + VERDICT_PREFIX, continuations=MET_TOKENS,
                      add_special_tokens=setup.add_special_tokens)
        return JudgeJob(shown, judge, order, prompt, (req,), ("met",), (VERDICT_PREFIX,))
    gen = GenerationConfig(max_new_tokens=settings.max_new_tokens, stop=tuple(setup.stop), temperature=0.0)
    return JudgeJob(shown, judge, order, prompt, (Request(kind="generate", key=key, context=context, generation=gen,
                                                          add_special_tokens=setup.add_special_tokens,
                                                          messages=messages),))


def _record(settings: JudgeSettings):
    """How a grader's response becomes a record: the verdict (met, or None when unreadable)."""
    from chimed_eval.extract.reasoning import parse_think_markers, strip_reasoning
    from chimed_eval.prompts.rubric import parse_met

    def make(job: JudgeJob, resps: list) -> dict[str, Any]:
        rec: dict[str, Any] = {"id": job.item.id, "judge": job.judge, "order": job.order, "criterion": job.item.reference,
                               "prompt": job.prompt, "prompt_hash": job.prompt_hash}
        if settings.verdict == "logprobs":
            lp = [float(x) for x in (resps[0].logprobs or ())]
            ok = len(lp) == 2 and all(math.isfinite(x) for x in lp)
            p = math.exp(lp[0]) / (math.exp(lp[0]) + math.exp(lp[1])) if ok else None
            rec.update(raw=lp, p_met=p, met=None if p is None else p > 0.5, verdict_prefix=job.prefixes[0])
        else:
            text = resps[0].text or ""
            rec.update(raw=text, met=parse_met(strip_reasoning(text, parse_think_markers(None))[0]))
        rec["valid"] = rec["met"] is not None
        return rec

    return make


def grade(out_dir: Path, settings: JudgeSettings, labels: Path | None = None, min_f1: float = DEFAULT_MIN_F1,
          progress: bool = True) -> dict[str, Any]:
    """Grade OUT's rubric tasks with every grader of ``settings`` (and the labelled pairs of
    ``labels``); returns the results written to ``OUT/judge/rubric-<hash>/results.json`` (``path`` added)."""
    from chimed_eval.judge.pipeline import _run_model_ident
    from chimed_eval.prompts.rubric import PROMPT_VERSION
    from chimed_eval.runs.outdir import OutLock, remove_stale_temp_files
    from chimed_eval.runs.records import write_json_atomic

    if not 0.0 < min_f1 <= 1.0:
        raise ConfigError(f"--grader-min-f1 {min_f1}: expected a number in (0, 1]")
    out_dir = Path(out_dir)
    check_out(out_dir, "OUT")
    tasks = rubric_tasks(out_dir, settings.tasks)
    if not tasks:
        raise ConfigError(f"{out_dir}: no rubric task recorded (run --tasks rubric --task-args path=FILE first)")
    items = {t: load_rubric_items(out_dir, t, settings.limit) for t in tasks}
    label_rows = read_labels(labels, {i.id: i for t in tasks for i in items[t]}) if labels is not None else []
    setups = {j: judge_chat_setup(settings.backend, j, dict(settings.judge_args)) for j in settings.judges}
    pinned = {"format": JUDGE_FORMAT, "settings": settings.key(), "verdict": settings.verdict,
              "prompt_version": PROMPT_VERSION, "candidate": {"model": _run_model_ident(out_dir)}, "baseline": None,
              "chat_templates": {j: s.label for j, s in setups.items()}}
    jdir = judge_dir(out_dir, settings)
    names = [*tasks, *([LABELS_TASK] if label_rows else [])]
    with OutLock(out_dir):
        remove_stale_temp_files(out_dir)
        state = check_state(jdir, pinned)
        stores = {t: RecordStore(jdir, t) for t in names}
        done = {t: stores[t].load() for t in names}
        for judge in settings.judges:
            jobs = [_job(t, i.id, f"c{k}", i, i.response, k, judge, setups[judge], settings)
                    for t in tasks for i in items[t] for k in range(len(i.rubrics))]
            jobs += [_job(LABELS_TASK, f"{lab.item.id}#{sha256_text(lab.response)[:12]}", f"l{lab.line}", lab.item,
                          lab.response, lab.criterion, judge, setups[judge], settings) for lab in label_rows]
            for job in jobs:
                rec = done[job.item.task].get(job.record_key)
                if rec is not None and rec.get("prompt_hash") != job.prompt_hash:
                    raise ConfigError(f"{stores[job.item.task].path}: {job.item.id!r} ({job.order}, grader {judge}) was "
                                      f"graded on another prompt; delete {jdir} to grade again")
            if any(job.record_key not in done[job.item.task] for job in jobs):
                run_judge(judge, jobs, settings, done, stores, jdir, state, progress, record_of=_record(settings))
        res = grading_results(items, label_rows, done, _head(settings, state), min_f1, labels)
        for t in names:
            stores[t].finalize([done[t][k] for k in sorted(done[t])])
        write_json_atomic(jdir / GRADING_INPUTS, {"tasks": tasks, "limit": settings.limit, "seed": settings.seed,
                                                  "min_f1": min_f1, "labels": None if labels is None else str(labels),
                                                  "label_rows": [lab.as_row() for lab in label_rows]})
        write_judge_results(jdir / JUDGE_RESULTS, res)
        record_in_results(out_dir, res, jdir.name)
    return {**res, "path": str(jdir / JUDGE_RESULTS)}


def _verdicts(item: RubricItem, done: dict, judges: Sequence[str]) -> list[bool | None]:
    """One grader's verdicts on an item's criteria, or the panel's (majority) for several."""
    per = [[done[(item.id, j, f"c{k}")].get("met") for j in judges] for k in range(len(item.rubrics))]
    return [v[0] for v in per] if len(judges) == 1 else [majority(v) for v in per]


def _head(settings: JudgeSettings, state: dict) -> dict[str, Any]:
    """What a grading's results state besides its figures: graders, verdict mode, settings, models."""
    return {"judges": list(settings.judges), "verdict": settings.verdict, "backend": settings.backend,
            "settings": settings.key(), "seed": settings.seed, "candidate": state.get("candidate"),
            "judge_models": state.get("judge_models", {})}


def grading_results(items: dict[str, list[RubricItem]], label_rows: list[Label], done: dict, head: dict[str, Any],
                    min_f1: float, labels: str | Path | None) -> dict[str, Any]:
    """The results of a grading from its verdict records ``done`` (per task, keyed (id, grader,
    order)); ``head`` as :func:`_head` (``chimed-eval score`` rebuilds it from judge.json)."""
    from chimed_eval.prompts.rubric import PROMPT_VERSION

    judges, seed = tuple(head["judges"]), int(head["seed"])
    graders = {j: (j,) for j in judges}
    if len(judges) > 1:
        graders["panel"] = judges
    validation: dict[str, Any] = {}
    if label_rows:
        ld = done[LABELS_TASK]
        for name, js in graders.items():
            per = [[ld[(f"{lab.item.id}#{sha256_text(lab.response)[:12]}", j, f"l{lab.line}")].get("met") for j in js]
                   for lab in label_rows]
            pred = [v[0] if len(js) == 1 else majority(v) for v in per]
            validation[name] = label_agreement([lab.met for lab in label_rows], pred, seed)
    status = {name: validation_status(validation.get(name), min_f1) for name in graders}
    reported = "panel" if "panel" in graders else judges[0]
    out_tasks = {}
    for t, its in items.items():
        figs = {}
        for name, js in graders.items():
            f = grader_figures([i.as_figures_item() for i in its], {i.id: _verdicts(i, done[t], js) for i in its},
                               seed)
            figs[name] = {**f, "grader_validation": status[name]}
        out_tasks[t] = {"n": len(its), "graders": figs, "reported": reported}
    return {"format": JUDGE_FORMAT, "protocol": "judge-rubric", "verdict": head["verdict"], "judges": list(judges),
            "backend": head["backend"], "aggregate": "majority" if len(graders) > 1 else None,
            "prompt_version": PROMPT_VERSION, "settings": head["settings"], "seed": seed,
            "candidate": head.get("candidate"), "judge_models": head.get("judge_models", {}),
            "min_f1": min_f1, "labels": None if labels is None else {"path": str(labels), "n": len(label_rows)},
            "validation": validation, "grader_validation": status, "reported": reported,
            "reported_status": status[reported], "tasks": out_tasks}


def is_trusted(res: dict[str, Any]) -> bool:
    """Whether the reported figures come from a grader validated at the stated threshold."""
    return res.get("reported_status") == VALIDATED


__all__ = ["DEFAULT_MIN_F1", "GRADING_INPUTS", "LABELS_TASK", "grading_results", "UNVALIDATED", "grade", "is_trusted", "read_labels", "rubric_tasks"]
