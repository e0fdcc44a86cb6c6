"""What one run is asked to do (:class:`RunSettings`: the ``run`` flags, how they are recorded in
results.json and which of them a resumed run must match) and one task made ready for it
(:class:`PreparedTask`: its items, requests and options).

They live in the runs layer because both the runner (:mod:`chimed_eval.engine.runner`) and the
resume checks (:mod:`chimed_eval.runs.resume`) read them; the runner builds them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from chimed_eval.core.secrets import redact_args, refuse_secret_args
from chimed_eval.core.types import Request, Sample
from chimed_eval.task.base import Task
from chimed_eval.task.options import TaskData, TaskRunOptions


@dataclass
class RunSettings:
    """The settings of one run (the ``run`` flags), recorded in results.json and run.json."""

    model: str
    backend: str = "hf"
    variant: str | None = None
    shots: int | None = None
    seed: int = 1234
    limit: int | float | None = None  # N items, or 0 < x < 1: that fraction of each task, rounded up
    batch_size: int | str = 8  # or "auto" (chimed_eval.backends.batching); the size chosen: batch_size_chosen
    device: str | None = None
    dtype: str | None = None
    model_args: dict[str, str] = field(default_factory=dict)
    data_dir: str = "data"
    max_new_tokens: int | None = None  # overrides a generation task's own budget (--max-new-tokens)
    decoding: str | None = None  # a generation task's decoding preset (--decoding); None: the task's default
    shard: str | None = None  # "i/n": this process scores items i, i+n, i+2n, ... (merge with chimed-eval merge)
    shuffle_choices: int | str | None = None  # --shuffle-choices K | "circular": MC items reordered (chimed_eval.evidence.expand)
    repeats: int | None = None  # --repeats K (K > 1): each item answered K times, sampled (chimed_eval.evidence.expand)
    think_markers: str | None = None  # --think-markers START,END ("none": off); None: <think>,</think>
    apply_chat_template: bool = False  # --apply-chat-template: MC and generation tasks through the chat template
    system_prompt: str | None = None  # --system-prompt: a system message first (chat rendering only)
    fewshot_as_multiturn: bool = False  # --fewshot-as-multiturn: shots as user/assistant turns
    #: --gen_kwargs: decoding overrides of every generate request (chimed_eval.core.gen_kwargs), as given
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    batch_size_chosen: int | None = None  # what --batch-size auto chose (set once the backend is open)
    #: per task name, what defines the task beyond its data files (its type and --task-args, or
    #: the --task-config file's sha256); compared on resume, and how `score` rebuilds the task
    task_sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: other models a run asks, by role: {"patient" | "judge" | "answer_check": {"model", "backend",
    #: "args"}} (--patient-model, --consult-judge, --answer-check and their -backend/-args flags)
    helpers: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_turns: int | None = None  # --max-turns: a consultation's doctor turn budget

    def __post_init__(self) -> None:
        refuse_secret_args(self.model_args)  # before anything is written
        for role, spec in self.helpers.items():
            refuse_secret_args(dict(spec.get("args") or {}), f"--{role.replace('_', '-')}-args")

    def fingerprint(self) -> dict[str, Any]:
        """The settings as recorded in results.json (secret-looking model args redacted).
        The generation overrides enter only when set."""
        d = dataclasses.asdict(self)
        d.pop("data_dir")
        d.pop("device")
        d.pop("task_sources")
        d["model_args"] = redact_args(self.model_args)
        if self.helpers:  # helper models enter only when a run has them
            d["helpers"] = {r: {**h, "args": redact_args(dict(h.get("args") or {}))} for r, h in sorted(self.helpers.items())}
        else:
            d.pop("helpers")
        if self.max_turns is None:
            d.pop("max_turns")
        for k in ("max_new_tokens", "decoding", "shard", "shuffle_choices", "repeats", "batch_size_chosen"):
            if d[k] is None:
                d.pop(k)
        if not d["gen_kwargs"]:
            d.pop("gen_kwargs")
        for k in ("think_markers", "apply_chat_template", "system_prompt", "fewshot_as_multiturn"):
            if d[k] in (None, False):  # chat and reasoning settings enter only when set (chimed_eval.models.chat)
                d.pop(k)
        return d

    def resume_key(self) -> dict[str, Any]:
        """The run-wide settings a resumed run must match exactly (OUT/run.json ``settings``).

        ``--variant`` and ``--shots`` are compared per task after each task resolves its default
        (no ``--variant`` and ``--variant paper`` are the same run); transport-only model args
        (timeouts, retries, concurrency, where the key is read from) are left out; the data
        directory enters resolved. Batch size changes batch composition, so it is in."""
        from chimed_eval.backends.cache import VOLATILE_MODEL_ARGS

        d = self.fingerprint()
        d.pop("variant")
        d.pop("shots")
        d.pop("batch_size_chosen", None)  # pinned in run.json by the first run (runner.batch_size_for)
        d["model_args"] = {k: v for k, v in sorted(d["model_args"].items()) if k not in VOLATILE_MODEL_ARGS}
        d["data_dir"] = str(Path(self.data_dir).resolve())
        return d


@dataclass
class PreparedTask:
    """One task ready to run: its data, the items this run scores, their requests and options."""

    task: Task
    data: TaskData
    samples: list[Sample]
    requests: list[Request]
    options: TaskRunOptions
    n_total: int | None = None  # items of the whole task when this is a shard
    items_sha256: str = ""  # what defines the items of the whole task (all shards share it)
    #: settings.generation.<task> in results.json, from the whole item list (all shards share it)
    generation: Mapping[str, Any] | None = None

    @property
    def variant(self) -> str:
        return self.options.variant

    @property
    def shots(self) -> int:
        return self.options.shots
