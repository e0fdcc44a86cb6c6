"""``chimed-eval judge``: ask judge models about a run's answers, save every verdict, resume.

Flow (one way): OUT's records -> :class:`~.inputs.JudgeItem` -> one judge prompt per item and order
(:mod:`.prompts`) -> a ``generate`` :class:`~chimed_eval.core.types.Request` per judge -> the judge backend
(opened with :func:`chimed_eval.backends.open_backend`, behind the same response cache as a run) ->
verdict text -> :mod:`.parse` -> a record in ``OUT/judge/<dir>/records/<task>.jsonl`` (:mod:`.store`)
-> figures (:mod:`.aggregate`) in ``results.json``.

Requests: ``key`` = ``task NUL item id NUL order`` (order ``single`` pointwise, and ``baseline``
for the baseline run's answer when pointwise has ``--baseline``; ``AB`` with the candidate shown as
answer A, ``BA`` with it shown as B), greedy decoding, ``--max-new-tokens``
(512) new tokens. The context is the judge prompt as one user message in the judge's chat format:
an openai judge gets it as a chat message (the server's template); a model with a documented chat
format (:data:`chimed_eval.prompts.variants.CHAT_FORMATS`) gets that format; otherwise the tokenizer's chat
template, and plain text when the tokenizer has none; the fake backend its ChatML stand-in. A
``<think>…</think>`` trace is taken off the verdict before parsing (the raw text is kept).
With ``--verdict logprobs`` the same rendered context, followed by a fixed answer prefix, goes in
``next_token`` requests instead (one per criterion, or one per order; keys end in
``NUL criterion`` pointwise) and the verdict is read from the candidates' probabilities
(:mod:`.logprobs`); a record's ``prompt_hash`` is then the sha256 of its requests' context hashes.

Judges run one after another (one model in memory at a time). As in the runner, each judge's
batch boundaries come from the full request list (never from what is left), a batch with a
missing record is asked whole and only its missing records are written, so an interrupted run
resumed with the same command writes what an uninterrupted one writes; a recorded verdict whose
prompt differs from the one the same item gets now (the run's answers, or a chat template,
changed) is refused, naming the item.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import GenerationConfig, Request
from chimed_eval.judge.inputs import JudgeItem
from chimed_eval.judge.store import BASELINE_ORDER, JUDGE_FORMAT, JUDGE_RESULTS, JudgeSettings, RecordStore, check_state, judge_dir, model_ident, pin_judge_model


@dataclass(frozen=True)
class JudgeJob:
    """One judge request and what it asks about."""

    item: JudgeItem
    judge: str
    order: str
    prompt: str
    requests: tuple[Request, ...]
    labels: tuple[str, ...] = ()  # logprobs mode: the criterion names (or "winner") of the requests
    prefixes: tuple[str, ...] = ()  # logprobs mode: the answer prefix of each request

    @property
    def request(self) -> Request:
        return self.requests[0]

    @property
    def prompt_hash(self) -> str:
        """The hash a record keeps: the request's prompt hash (one request), else the sha256 of
        the requests' prompt hashes joined by newlines."""
        from chimed_eval.core.types import sha256_text

        if len(self.requests) == 1:
            return self.request.prompt_hash
        return sha256_text("\n".join(r.prompt_hash for r in self.requests))

    @property
    def record_key(self) -> tuple[str, str, str]:
        return self.item.id, self.judge, self.order


def judged_answer(item: JudgeItem, order: str) -> str:
    """The answer a pointwise record grades: the baseline run's for :data:`BASELINE_ORDER`, else the candidate's."""
    return str(item.baseline) if order == BASELINE_ORDER else item.answer


def judge_prompt(item: JudgeItem, protocol: str, rubric: str, order: str) -> str:
    from chimed_eval.prompts.judge import pairwise_prompt, pointwise_prompt

    if protocol == "pointwise":
        return pointwise_prompt(item.question, judged_answer(item, order), item.reference, rubric)
    a, b = (item.answer, item.baseline) if order == "AB" else (item.baseline, item.answer)
    return pairwise_prompt(item.question, str(a), str(b), item.reference)


def judge_chat_setup(backend: str, judge: str, args: dict[str, str]):
    """How a judge prompt reaches ``judge`` (module docstring): chimed_eval.models.chat's setup, or plain
    text for a local model whose tokenizer has no chat template (on a backend that renders
    tokenizer templates, ``Capabilities.chat_template``)."""
    from chimed_eval.backends import backend_capabilities
    from chimed_eval.models.chat import ChatSetup, chat_setup, declared_format

    caps = backend_capabilities(backend)
    fmt = declared_format(judge, args)
    try:
        return chat_setup(backend, caps, judge, args)
    except ConfigError as exc:
        if caps.chat_template and fmt in (None, "none") and "no chat template" in str(exc):
            return ChatSetup(lambda msgs: msgs[-1]["content"], "plain text (the model has no chat template)",
                             add_special_tokens=None)
        raise ConfigError(f"judge {judge!r}: {exc}") from None


def build_jobs(items: dict[str, list[JudgeItem]], settings: JudgeSettings, judge: str, setup) -> list[JudgeJob]:
    from chimed_eval.models.chat import render_messages
    from chimed_eval.extract.verdicts import verdict_requests

    gen = GenerationConfig(max_new_tokens=settings.max_new_tokens, stop=tuple(setup.stop), temperature=0.0)
    jobs = []
    for task, task_items in items.items():
        for item in task_items:
            for order in settings.orders:
                prompt = judge_prompt(item, settings.protocol, settings.rubric, order)
                context, messages = render_messages(setup, [{"role": "user", "content": prompt}])
                key = f"{task}\x00{item.id}\x00{order}"
                if settings.verdict == "logprobs":
                    reqs = verdict_requests(key, context, setup.add_special_tokens, settings.protocol, settings.rubric)
                    jobs.append(JudgeJob(item, judge, order, prompt, tuple(r for _, _, r in reqs),
                                         tuple(lab for lab, _, _ in reqs), tuple(p for _, p, _ in reqs)))
                    continue
                req = Request(kind="generate", key=key, context=context, generation=gen,
                              add_special_tokens=setup.add_special_tokens, messages=messages)
                jobs.append(JudgeJob(item, judge, order, prompt, (req,)))
    return jobs


def case_fields(item: JudgeItem) -> dict[str, Any]:
    """A verdict record's ``case`` and ``question_index`` (a question of a case, cmb-clin); none else."""
    return {} if item.case is None else {"case": item.case, "question_index": item.question_index}


def verdict_record(job: JudgeJob, text: str, settings: JudgeSettings) -> dict[str, Any]:
    """The saved record of one verdict: what was asked, what came back, what was read from it."""
    from chimed_eval.extract.reasoning import parse_think_markers, strip_reasoning
    from chimed_eval.judge.parse import parse_pairwise, parse_pointwise

    answer_text, _ = strip_reasoning(text, parse_think_markers(None))
    item = job.item
    rec: dict[str, Any] = {"id": item.id, "judge": job.judge, "order": job.order, **case_fields(item),
                           "question_rule": item.question_rule, "prompt": job.prompt, "prompt_hash": job.prompt_hash,
                           "raw": text}
    if settings.protocol == "pointwise":
        v = parse_pointwise(answer_text, settings.rubric)
        rec.update(scores=dict(v.scores) if v.scores else None, overall=v.overall, valid=v.valid, reason=v.reason,
                   len_answer=len(judged_answer(item, job.order).strip()))
    else:
        p = parse_pairwise(answer_text)
        first = job.order == "AB"
        outcome = None if p.winner is None else (
            "tie" if p.winner == "tie" else ("win" if (p.winner == "A") == first else "loss"))
        rec.update(winner=p.winner, outcome=outcome, valid=p.valid, reason=p.reason,
                   len_candidate=len(item.answer.strip()), len_baseline=len(str(item.baseline).strip()))
    return rec


def logprobs_record(job: JudgeJob, logprobs: Sequence[Sequence[float]], settings: JudgeSettings) -> dict[str, Any]:
    """The saved record of one logprobs verdict: the judge prompt, the answer prefix(es), the
    candidates' log-probabilities (``raw``) and what was read from them (:mod:`.logprobs`)."""
    from chimed_eval.extract.verdicts import read_pairwise, read_pointwise

    item = job.item
    rec: dict[str, Any] = {"id": item.id, "judge": job.judge, "order": job.order, **case_fields(item),
                           "question_rule": item.question_rule, "prompt": job.prompt, "prompt_hash": job.prompt_hash}
    if settings.protocol == "pointwise":
        rec["verdict_prefix"] = dict(zip(job.labels, job.prefixes))
        rec.update(read_pointwise(dict(zip(job.labels, logprobs))), len_answer=len(judged_answer(item, job.order).strip()))
    else:
        rec["verdict_prefix"] = job.prefixes[0]
        p = read_pairwise(logprobs[0])
        first = job.order == "AB"
        outcome = None if p["winner"] is None else (
            "tie" if p["winner"] == "tie" else ("win" if (p["winner"] == "A") == first else "loss"))
        rec.update(p, outcome=outcome, len_candidate=len(item.answer.strip()),
                   len_baseline=len(str(item.baseline).strip()))
    return rec


def _run_model_ident(out_dir: Path) -> dict[str, Any] | None:
    """The model of a run (results.json, else run.json), as judge.json pins it."""
    from chimed_eval.runs.reader import recorded_model

    model = recorded_model(out_dir)
    return model_ident(model) if model is not None else None


def check_out(out_dir: Path, what: str) -> None:
    from chimed_eval.runs.reader import is_run_dir, samples_dir

    if not is_run_dir(out_dir) or not samples_dir(out_dir).is_dir():
        raise ConfigError(f"{what} {out_dir} is not a chimed-eval output directory (no run.json and samples/): "
                          "give the --output of a chimed-eval run")


def run_judges(out_dir: Path, settings: JudgeSettings, progress: bool = True) -> dict[str, Any]:
    """Judge OUT's answers with every judge of ``settings``; returns the results written to
    ``OUT/judge/<dir>/results.json`` (``path`` added)."""
    from chimed_eval.runs.outdir import OutLock
    from chimed_eval.judge.aggregate import judge_results
    from chimed_eval.judge.inputs import generation_tasks, load_items
    from chimed_eval.prompts.judge import PROMPT_VERSION

    out_dir = Path(out_dir)
    check_out(out_dir, "OUT")
    baseline = Path(settings.baseline) if settings.baseline else None
    if baseline is not None:
        check_out(baseline, "--baseline")
        if baseline.resolve() == out_dir.resolve():
            raise ConfigError("--baseline is the judged run itself; give another run's output directory")
    tasks = generation_tasks(out_dir, settings.tasks)
    items = load_items(out_dir, tasks, settings.limit, baseline)  # every refusal before a model loads
    setups = {j: judge_chat_setup(settings.backend, j, dict(settings.judge_args)) for j in settings.judges}
    pinned = {"format": JUDGE_FORMAT, "settings": settings.key(), "verdict": settings.verdict, "prompt_version": PROMPT_VERSION,
              "candidate": {"model": _run_model_ident(out_dir)},
              "baseline": None if baseline is None else {"path": str(baseline.resolve()),
                                                         "model": _run_model_ident(baseline)},
              "chat_templates": {j: s.label for j, s in setups.items()},
              "inputs": {t: _inputs_sha(v) for t, v in items.items()}}  # this invocation's items (not compared)
    jdir = judge_dir(out_dir, settings)
    with OutLock(out_dir):
        from chimed_eval.runs.outdir import remove_stale_temp_files

        remove_stale_temp_files(out_dir)  # what a killed judging's atomic writes left; all writers hold the lock
        state = check_state(jdir, pinned)
        stores = {t: RecordStore(jdir, t) for t in tasks}
        done = {t: stores[t].load() for t in tasks}
        all_jobs = {j: build_jobs(items, settings, j, setups[j]) for j in settings.judges}
        for jobs in all_jobs.values():
            _check_recorded(jobs, done, stores)
        for judge, jobs in all_jobs.items():
            if any(job.record_key not in done[_task(job)] for job in jobs):
                run_judge(judge, jobs, settings, done, stores, jdir, state, progress)
        ordered_keys = {t: [(i.id, j, o) for i in items[t] for j in settings.judges for o in settings.orders]
                        for t in tasks}
        for t in tasks:
            wanted = set(ordered_keys[t])
            stores[t].finalize([done[t][k] for k in ordered_keys[t]] + [r for k, r in done[t].items() if k not in wanted])
        res = judge_results(items, {t: [done[t][k] for k in ordered_keys[t]] for t in tasks}, settings, state)
        from chimed_eval.judge.sealed import write_judge_results

        write_judge_results(jdir / JUDGE_RESULTS, res)
    return {**res, "path": str(jdir / JUDGE_RESULTS)}


def _inputs_sha(items: Sequence[JudgeItem]) -> dict[str, Any]:
    """What was judged: the count and sha256 of the items' (id, question, reference, answer, baseline answer)."""
    import json

    from chimed_eval.core.types import sha256_text

    rows = [[i.id, i.question, i.reference, i.answer, i.baseline] for i in items]
    return {"n": len(items), "sha256": sha256_text(json.dumps(rows, ensure_ascii=False))}


def _task(job: JudgeJob) -> str:
    return job.item.task


def _check_recorded(jobs: Sequence[JudgeJob], done: dict, stores: dict) -> None:
    for job in jobs:
        rec = done[_task(job)].get(job.record_key)
        if rec is not None and rec.get("prompt_hash") != job.prompt_hash:
            raise ConfigError(
                f"{stores[_task(job)].path}: item {job.item.id!r} (judge {job.judge}, order {job.order}) was judged on "
                "another prompt: the run's answer, question or reference (or the judge's chat template) changed since. "
                f"Delete {stores[_task(job)].path.parent.parent} to judge again")


def run_judge(judge: str, jobs: list[JudgeJob], settings: JudgeSettings, done: dict, stores: dict, jdir: Path,
               state: dict, progress: bool, record_of=None) -> None:
    """Ask ``judge`` every job not yet recorded, batch by batch; ``record_of(job, responses)`` makes
    a record (default: a pointwise or pairwise verdict, in the settings' verdict mode)."""
    import time

    from chimed_eval.backends import open_backend
    from chimed_eval.core.progress import progress_default
    from chimed_eval.engine.run_progress import RunProgress

    with progress_default(progress):  # a judge converted from GGUF as it opens follows the flag
        backend = open_backend(settings.backend, judge, seed=settings.seed, batch_size=settings.batch_size,
                               device=settings.device, dtype=settings.dtype, model_args=dict(settings.judge_args),
                               cache=settings.cache)
    pending = sum(1 for job in jobs if job.record_key not in done[_task(job)])
    bar = RunProgress({"verdict": pending}, progress, desc=f"judging ({judge})")  # with the time left
    try:
        pin_judge_model(jdir, state, judge, model_ident(backend.model_info()))
        size = max(settings.batch_size, int(getattr(backend, "run_batch_size", None) or 0))
        order = sorted(range(len(jobs)), key=lambda i: (*backend.sort_key(jobs[i].request), i))
        for start in range(0, len(order), size):
            batch = [jobs[i] for i in order[start:start + size]]
            missing = [job for job in batch if job.record_key not in done[_task(job)]]
            if not missing:
                continue
            t0 = time.perf_counter()
            responses = iter(ask(backend, judge, settings, [req for job in batch for req in job.requests]))
            new: dict[str, list[dict[str, Any]]] = {}
            for job in batch:
                resps = [next(responses) for _ in job.requests]
                if job.record_key in done[_task(job)]:
                    continue
                if record_of is not None:
                    rec = record_of(job, resps)
                elif settings.verdict == "logprobs":
                    rec = logprobs_record(job, [tuple(r.logprobs or ()) for r in resps], settings)
                else:
                    rec = verdict_record(job, resps[0].text or "", settings)
                done[_task(job)][job.record_key] = rec
                new.setdefault(_task(job), []).append(rec)
            for task, recs in new.items():
                stores[task].append(recs)
            bar.batch_done("verdict", len(missing), time.perf_counter() - t0)
    finally:
        bar.close()
        backend.close()


def ask(backend, judge: str, settings: JudgeSettings, requests: list[Request]) -> list:
    """The backend's responses; in logprobs mode a backend that cannot score next tokens is a
    ConfigError that says to use ``--verdict generate``."""
    if settings.verdict == "generate":
        return backend.run("generate", requests)
    try:
        out = backend.run("next_token", requests)
    except (ConfigError, NotImplementedError) as exc:
        raise ConfigError(f"judge {judge!r} on --judge-backend {settings.backend} cannot return next-token "
                          f"log-probabilities ({exc}); use --verdict generate") from None
    for resp in out:
        if resp.logprobs is None or len(resp.logprobs) == 0:
            raise ConfigError(f"judge {judge!r} on --judge-backend {settings.backend} returned no next-token "
                              "log-probabilities; use --verdict generate")
    return out
