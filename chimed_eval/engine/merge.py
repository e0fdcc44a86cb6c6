"""Merge the output directories of sharded runs (``--shard i/n``) into one output directory.

A shard keeps items i, i+n, i+2n, ... of every task (prompts are built from the whole item list
first), so the task's order is restored by interleaving the shards. The merged directory is what
one process would have written: the same ``samples/<task>.jsonl`` line for line, the same
``run.json``, and a ``results.json`` with the same metrics, intervals, hashes and digest (only its
``created`` time differs; the shard directories and the digests of their contents are listed in
``merged_from.json``), because the metrics are recomputed from the records in the task's order
with the run's seed, exactly as a single process (and ``score``) computes them.

OUT must be empty or an earlier merge of the same shards: merging over another run would relabel
its records and results, and merging into a shard would destroy it. A shard whose figures or
records were edited after they were written is refused (:mod:`chimed_eval.runs.integrity`).

Nothing is merged unless the shards belong together: one count n, every index 0..n-1 exactly
once, the same settings apart from the shard, the same model (name, path, revision, weights
hash, dtype), and, per task, the same variant, shots, data files and total item count, each
shard holding exactly its items, all finished.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.core.version import SCHEMA_VERSION
from chimed_eval.core.errors import ConfigError
from chimed_eval.runs.outdir import LOCK_NAME, OutLock
from chimed_eval.runs.records import SampleStore, run_result_to_dict, write_json_atomic
from chimed_eval.engine.runner import parse_shard, task_result
from chimed_eval.runs.reader import (
    OUT_FIX, RunState, read_json_file, read_run, read_run_state, results_json, run_json, samples_file, seal_results,
)
from chimed_eval.core.types import RunResult

MERGED_FROM = "merged_from.json"


def _load(path: Path) -> tuple[RunState, RunResult]:
    """A finished shard: its run.json and results.json (refused when its figures or records were
    edited after they were written)."""
    if not results_json(path).exists():
        raise ConfigError(f"{results_json(path)} not found: {path} is not a finished chimed-eval output directory")
    return read_run_state(path), read_run(path)


def shard_digest(shard_dir: Path, tasks: Sequence[str]) -> dict[str, Any]:
    """What identifies a shard's content: sha256 of its run.json and of each task's records."""
    from chimed_eval.runs.integrity import file_digest

    return {"run.json": file_digest(run_json(shard_dir)),
            "samples": {t: file_digest(samples_file(shard_dir, t)) for t in sorted(tasks)}}


def check_merge_target(out_dir: Path, allowed_extra: tuple[str, ...] = (),
                       digests: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Refuse to merge into an OUT that holds anything but an earlier merge of the same shards
    (``digests``, as :func:`shard_digest` gives them in shard order; None: of any shards, for a
    check made before the shards have run). An empty or new OUT is fine; ``allowed_extra``:
    names that may sit there (``shards`` of ``--data-parallel``). Merging over another run
    would relabel its records and results; merging into a shard destroys it."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ConfigError(f"--output {out_dir} exists and is not a directory")
    entries = sorted(e.name for e in out_dir.iterdir() if e.name != LOCK_NAME and e.name not in allowed_extra)
    if not entries:
        return
    shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
    refuse = (f"merge: {out_dir} is not empty ({shown}) and is not an earlier merge of these shards: "
              "refusing to overwrite it; use an empty or new --output directory")
    path = out_dir / MERGED_FROM
    if not path.is_file():
        raise ConfigError(refuse)
    earlier = read_json_file(path, OUT_FIX)
    recorded = earlier.get("digests") if isinstance(earlier, dict) else None
    if not isinstance(recorded, list):
        raise ConfigError(f"{refuse} ({path} records no shard digests)")
    if digests is not None and recorded != [dict(d) for d in digests]:
        raise ConfigError(f"{refuse} ({path} records other shards or shard contents)")


def merge_shards(shard_dirs: Sequence[Path], out_dir: Path, get_task: Callable[[str], Any],
                 locked: bool = False, allowed_extra: tuple[str, ...] = ()) -> RunResult:
    """Merge into ``out_dir`` under its lock (``locked``: the caller holds it already). OUT must be
    empty or an earlier merge of the same shards (see :func:`check_merge_target`);
    ``allowed_extra``: names that may sit in it besides (``shards`` of ``--data-parallel``)."""
    if locked:
        return _merge(shard_dirs, out_dir, get_task, allowed_extra)
    with OutLock(out_dir):
        return _merge(shard_dirs, out_dir, get_task, allowed_extra)


def _merge(shard_dirs: Sequence[Path], out_dir: Path, get_task: Callable[[str], Any],
           allowed_extra: tuple[str, ...]) -> RunResult:
    if not shard_dirs:
        raise ConfigError("merge: no shard directories given")
    shards = []
    for d in shard_dirs:
        run, res = _load(d)
        spec = run.settings.get("shard")
        if not spec:
            raise ConfigError(f"{d}: not a shard (its run has no --shard setting)")
        i, n = parse_shard(spec)
        shards.append((i, n, d, run, res))
    counts = {n for _, n, *_ in shards}
    if len(counts) != 1:
        raise ConfigError(f"merge: the shards come from different splits ({sorted(counts)} shards)")
    n = counts.pop()
    have = sorted(i for i, *_ in shards)
    if have != list(range(n)):
        missing = sorted(set(range(n)) - set(have))
        dup = sorted({i for i in have if have.count(i) > 1})
        raise ConfigError(f"merge: need shards 0..{n - 1} once each; missing {missing}, repeated {dup}")
    shards.sort(key=lambda s: s[0])

    def strip(settings: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in settings.items() if k not in ("shard", "versions", "device", "data_dir")}

    _, _, d0, run0, res0 = shards[0]
    for i, _, d, run, res in shards[1:]:
        if strip(run.settings) != strip(run0.settings):
            diff = sorted(k for k in set(run.settings) | set(run0.settings)
                          if k != "shard" and run.settings.get(k) != run0.settings.get(k))
            raise ConfigError(f"merge: {d} was run with other settings than {d0}: {diff}")
        if res.model != res0.model:
            raise ConfigError(f"merge: {d} ran another model than {d0}: {asdict(res.model)} vs {asdict(res0.model)}")
        if set(run.tasks) != set(run0.tasks):
            raise ConfigError(f"merge: {d} has tasks {sorted(run.tasks)}, {d0} has {sorted(run0.tasks)}")

    merged_tasks: dict[str, dict[str, Any]] = {}
    merged_records: dict[str, list[dict[str, Any]]] = {}
    results = []
    for name, meta0 in run0.tasks.items():  # everything checked and computed before OUT is touched
        total = meta0.n_total
        if total is None:
            raise ConfigError(f"merge: {run_json(d0)} gives no total item count for task {name!r}")
        per_shard = []
        for i, _, d, run, _res in shards:
            meta = run.tasks[name]
            for k in ("variant", "shots", "data_files", "n_total", "items_sha256", "source"):
                if getattr(meta, k) != getattr(meta0, k):
                    raise ConfigError(f"merge: task {name!r}: {k} differs between {d0} and {d}")
            recs = list(SampleStore(d, name).load().values())
            expected = len(range(i, total, n))
            if len(recs) != expected or meta.n != expected:
                raise ConfigError(f"merge: {samples_file(d, name)} holds {len(recs)} records, shard {i}/{n} of "
                                  f"{total} items needs {expected}: finish that shard first (run its command again)")
            per_shard.append(recs)
        ordered = [per_shard[g % n][g // n] for g in range(total)]
        ids = [r["id"] for r in ordered]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"merge: task {name!r}: an item appears in two shards")
        merged_records[name] = ordered
        # what one process writes: the shards' shared definition (items hash, source), all items
        merged_tasks[name] = {**{k: v for k, v in meta0.to_dict().items() if k != "n_total"}, "n": total}
        task = get_task(name)
        # one rule with `score`: every figure is recomputed from the records, never taken from
        # the stored per-record scores
        results.append(task_result(task, None, [task.rescore(r, meta0.variant) for r in ordered], run0.seed,
                                   variant=meta0.variant, shots=meta0.shots, data_files=dict(meta0.data_files)))
    digests = [shard_digest(d, list(run0.tasks)) for _, _, d, _, _ in shards]
    check_merge_target(out_dir, allowed_extra, digests)
    out_dir.mkdir(parents=True, exist_ok=True)
    # first: a merge killed half-way is then an earlier merge of these shards, which may be redone
    write_json_atomic(out_dir / MERGED_FROM, {"shards": [str(d) for _, _, d, _, _ in shards], "count": n,
                                              "digests": digests})
    for name, ordered in merged_records.items():
        SampleStore(out_dir, name).finalize(ordered)
    settings_fp = {k: v for k, v in run0.settings.items() if k != "shard"}
    write_json_atomic(run_json(out_dir), {"format": run0.format, "settings": settings_fp,
                                             **({"model": run0.model} if run0.model is not None else {}),
                                             "tasks": merged_tasks})
    settings = {k: v for k, v in res0.settings.items() if k != "shard"}
    from chimed_eval.runs.usage import merge_usage  # the shards' tokens, latency and cost, together

    usage = merge_usage([d for _, _, d, _, _ in shards], out_dir, list(run0.tasks))
    rr = RunResult(schema_version=SCHEMA_VERSION, model=res0.model, settings=settings, tasks=tuple(results),
                   created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), usage=usage)
    write_json_atomic(results_json(out_dir), seal_results(run_result_to_dict(rr), out_dir))
    return rr
