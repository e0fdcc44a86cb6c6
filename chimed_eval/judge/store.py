"""Where judgements live: ``OUT/judge/<protocol>-<hash>/`` with ``judge.json``, ``records/<task>.jsonl``
and ``results.json``.

The directory name is the protocol and the first 12 hex digits of the sha256 of the settings that
change a verdict (:meth:`JudgeSettings.key`: judges, backend, judge args (transport ones and
secrets left out), protocol, rubric (pointwise), baseline directory (pairwise; pointwise when given),
token budget,
dtype; with ``--verdict logprobs`` also ``verdict: logprobs`` and no token budget, which that mode
does not use), so another judge, rubric or verdict mode never mixes with these records (generate
mode leaves ``verdict`` out of the hash, so its directories keep their names). ``judge.json``
also states the ``verdict`` mode. ``judge.json`` pins, besides
those settings, what they do not name: the judge prompts' version, the candidate and baseline
runs' models and the judge models' identities (weights, revision) once a judge has run. Judging
again into the same directory must match every pinned value, else it is refused with the
differences named (old -> new); delete the directory to judge again from scratch. It also notes,
without comparing, the judges' chat templates and the items of the latest invocation (count and
sha256 per task): a changed answer is caught per item instead, since every record keeps the hash
of the prompt it was judged on (:mod:`.pipeline`).

Records, one per (item, judge, order), are appended batch by batch (write + fsync, as
:class:`chimed_eval.runs.records.SampleStore`), so Ctrl-C or a kill keeps every finished batch and a torn
last line is recomputed; when a run completes, each file is rewritten atomically in a fixed order
(item order, then judge, then order), so an interrupted-and-resumed run leaves the same bytes as an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from chimed_eval.core.errors import ConfigError
from chimed_eval.runs.reader import OUT_FIX, read_json_file, read_jsonl
from chimed_eval.runs.records import SampleStore, write_json_atomic

JUDGE_FORMAT = 1
#: the judge's own figures, ``OUT/judge/<dir>/results.json`` (beside judge.json and records/), not the run's
JUDGE_RESULTS = "results.json"
PROTOCOLS = ("pointwise", "pairwise", "rubric")  # rubric: one verdict per criterion (chimed_eval.judge.rubric)
AGGREGATES = ("mean", "majority")
ORDERS = {"pointwise": ("single",), "pairwise": ("AB", "BA"), "rubric": ()}  # rubric: one order per criterion  # AB: candidate shown as A; BA: as B
BASELINE_ORDER = "baseline"  # pointwise with --baseline: the baseline run's answer, graded as the candidate's is


@dataclass(frozen=True)
class JudgeSettings:
    """One judging: who judges (``judges``, on ``backend`` with ``judge_args``), how (``protocol``,
    ``rubric``, ``baseline`` run for pairwise, ``aggregate`` of several judges), and the run-time
    settings (tasks, limit, cache, batch size, device, dtype, seed of the intervals)."""

    judges: tuple[str, ...]
    backend: str = "hf"
    judge_args: Mapping[str, str] = field(default_factory=dict)
    protocol: str = "pointwise"
    rubric: str = "medical"
    baseline: str | None = None
    aggregate: str | None = None  # None: mean (pointwise), majority (pairwise)
    tasks: tuple[str, ...] | None = None
    limit: int | None = None
    max_new_tokens: int = 512
    batch_size: int = 8
    device: str | None = None
    dtype: str | None = None
    seed: int = 1234
    cache: Any = None  # a directory, None (the default cache) or False (no cache)
    verdict: str = "generate"  # or "logprobs": read from next-token probabilities (.logprobs)

    def __post_init__(self) -> None:
        from chimed_eval.core.secrets import refuse_secret_args
        from chimed_eval.prompts.judge import rubric_criteria

        from chimed_eval.extract.verdicts import check_verdict

        refuse_secret_args(dict(self.judge_args), "--judge-args")  # before anything is written
        from chimed_eval.backends import BACKENDS, backend_capabilities

        # an unknown backend is refused by name where the judge opens it
        check_verdict(self.verdict, self.backend,
                      self.backend not in BACKENDS or backend_capabilities(self.backend).prefilled_answers)
        if not self.judges or any(not j for j in self.judges):
            raise ConfigError("--judge needs one or more judge models, comma-separated")
        if len(set(self.judges)) != len(self.judges):
            raise ConfigError(f"--judge {','.join(self.judges)}: a judge is named twice")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"--protocol {self.protocol!r}: choose pointwise, pairwise or rubric")
        rubric_criteria(self.rubric)
        if self.protocol == "pairwise" and self.baseline is None:
            raise ConfigError("pairwise judging needs --baseline OUT2 (the run whose answers are compared)")
        if self.aggregate not in (None, *AGGREGATES):
            raise ConfigError(f"--aggregate {self.aggregate!r}: choose mean or majority")
        if self.protocol == "pointwise" and self.aggregate == "majority":
            raise ConfigError("--aggregate majority is for pairwise outcomes; pointwise scores are averaged (mean)")
        if self.max_new_tokens < 1:
            raise ConfigError("--max-new-tokens must be >= 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("--limit must be >= 1")

    @property
    def orders(self) -> tuple[str, ...]:
        """The records asked per item and judge: pointwise the candidate's answer (``single``),
        and with ``--baseline`` also the baseline's (:data:`BASELINE_ORDER`); pairwise both orders."""
        if self.protocol == "pointwise" and self.baseline is not None:
            return (*ORDERS["pointwise"], BASELINE_ORDER)
        return ORDERS[self.protocol]

    @property
    def aggregate_rule(self) -> str:
        return self.aggregate or ("mean" if self.protocol == "pointwise" else "majority")

    def key(self) -> dict[str, Any]:
        """The settings that change a verdict (the directory hash; pinned in judge.json)."""
        from chimed_eval.backends.cache import VOLATILE_MODEL_ARGS
        from chimed_eval.core.secrets import redact_args

        args = {k: v for k, v in sorted(redact_args(dict(self.judge_args)).items()) if k not in VOLATILE_MODEL_ARGS}
        d: dict[str, Any] = {"judges": list(self.judges), "backend": self.backend, "judge_args": args,
                             "protocol": self.protocol, "max_new_tokens": self.max_new_tokens, "dtype": self.dtype}
        if self.verdict != "generate":
            d["verdict"] = self.verdict
            del d["max_new_tokens"]  # nothing is generated
        if self.protocol == "pointwise":
            d["rubric"] = self.rubric
            if self.baseline is not None:  # absent without one, so older pointwise directories keep their names
                d["baseline"] = str(Path(self.baseline).resolve())
        else:
            d["baseline"] = str(Path(self.baseline).resolve()) if self.baseline else None
        return d

    def dir_name(self) -> str:
        text = json.dumps(self.key(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return f"{self.protocol}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


def judge_dir(out_dir: Path, settings: JudgeSettings) -> Path:
    return Path(out_dir) / "judge" / settings.dir_name()


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    from chimed_eval.runs.resume import _differences as diff  # the same "key: old -> new" wording as a resumed run

    if isinstance(old, dict) and isinstance(new, dict):
        return [f"{where}{d}" for d in diff(old, new)]
    return [] if old == new else [f"{where.rstrip('.')}: {json.dumps(old, ensure_ascii=False)} -> "
                                  f"{json.dumps(new, ensure_ascii=False)}"]


def check_state(jdir: Path, pinned: dict[str, Any]) -> dict[str, Any]:
    """judge.json: written when new; else it must match ``pinned`` in every key both hold (a
    judge's model identity is added once known). Returns the state now on disk."""
    path = jdir / "judge.json"
    if not path.exists():
        write_json_atomic(path, pinned)
        return pinned
    old = read_json_file(path, OUT_FIX)
    if not isinstance(old, dict) or old.get("format") != JUDGE_FORMAT:
        raise ConfigError(f"{path}: not a judge.json of this chimed-eval (format {JUDGE_FORMAT}); delete {jdir} to judge again")
    diff = []
    from chimed_eval.runs.resume import _redacted

    for k in ("settings", "prompt_version", "candidate", "baseline"):
        was = _redacted(old.get(k), "judge_args") if k == "settings" else old.get(k)
        diff += _differences(was, pinned.get(k), f"{k}.")
    if diff:
        raise ConfigError(f"{jdir} holds judgements made with other settings or inputs (old -> new): " + "; ".join(diff)
                          + f". Delete {jdir} to judge again")
    merged = {**pinned, "judge_models": {**pinned.get("judge_models", {}), **old.get("judge_models", {})}}
    if merged != old:
        write_json_atomic(path, merged)
    return merged


def pin_judge_model(jdir: Path, state: dict[str, Any], judge: str, ident: Mapping[str, Any]) -> None:
    """A judge's model identity (name, path, revision, weights sha256, dtype) must stay the one its
    records came from; recorded the first time the judge runs."""
    old = state.setdefault("judge_models", {}).get(judge)
    if old is not None and old != dict(ident):
        raise ConfigError(f"{jdir}: judge {judge!r} is now another model or weights (old -> new): "
                          + "; ".join(_differences(old, dict(ident))) + f". Delete {jdir} to judge again")
    if old is None:
        state["judge_models"][judge] = dict(ident)
        write_json_atomic(jdir / "judge.json", state)


def record_key(rec: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(rec["id"]), str(rec["judge"]), str(rec["order"])


class RecordStore(SampleStore):
    """``records/<task>.jsonl`` of one judge directory: records keyed by (item id, judge, order);
    appending and finalizing as :class:`~chimed_eval.runs.records.SampleStore` does."""

    def __init__(self, jdir: Path, task: str) -> None:  # noqa: D107 - no SampleStore.__init__: another path
        self.path = jdir / "records" / f"{task}.jsonl"

    def load(self) -> dict[tuple[str, str, str], dict[str, Any]]:  # type: ignore[override]
        return {record_key(r): r for r in read_jsonl(self.path) if {"judge", "order"} <= set(r)}


def model_ident(info: Any) -> dict[str, Any]:
    """A ModelInfo (or its dict) as the identity judge.json pins."""
    d = dataclasses.asdict(info) if dataclasses.is_dataclass(info) else dict(info)
    return {k: d.get(k) for k in ("name", "path", "revision", "weights_sha256", "dtype")}
