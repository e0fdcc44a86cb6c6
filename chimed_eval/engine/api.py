"""The Python door: ``chimed_eval.evaluate(model, tasks, ...)`` and ``chimed_eval.read_run(path)``.

One typed configuration (:class:`RunConfig`: every option of ``chimed-eval run`` beyond the model,
the tasks and the output) goes to :func:`plan_run`, which checks it, builds the tasks and the
backend factory, and to :func:`run_plan`, which runs the plan through the runner
(:func:`chimed_eval.engine.runner.evaluate`). The ``run`` command builds the same RunConfig from its
flags, so the CLI and a notebook run the same code and write the same records and figures.

The plug-in tasks (``tasks/``) sit above this layer: task names are turned into tasks by a
``resolve_tasks`` callable handed in (``chimed_eval.evaluate`` hands in the plug-ins' resolver);
task objects need none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.gen_kwargs import parse_gen_kwargs
from chimed_eval.core.types import RunResult
from chimed_eval.runs.settings import RunSettings
from chimed_eval.runs.usage import Budget, Price, run_price
from chimed_eval.task.base import Task
from chimed_eval.engine.options import (  # noqa: F401 (RunConfig's home before the split)
    RunConfig, check_batch_size, check_limit, parse_limit, with_options)

#: names -> objects with ``.task`` and ``.source(config_sha256)`` (``chimed_eval.tasks.factory.build_tasks``)
TaskResolver = Callable[[Sequence[str], Mapping[str, str], "Path | None"], Sequence[Any]]


@dataclass(frozen=True)
class RunPlan:
    """A run made ready: its tasks, its recorded settings, how to open the backend, and where the
    records go (None: nowhere, kept in memory)."""

    tasks: tuple[Task, ...]
    settings: RunSettings
    backend_factory: Callable[..., Any]
    output: Path | None
    progress: bool = True
    price: Price | None = None
    budget: Budget | None = None
    helper_opener: Callable[[dict[str, Any]], Any] | None = None


def plan_run(model: Any, tasks: Sequence[str | Task] | str | Task, *, backend: str = "hf",
             model_args: Mapping[str, str] | None = None, data_dir: str | Path | None = None,
             output: str | Path | None = None, config: RunConfig | None = None, tokenizer: Any = None,
             resolve_tasks: TaskResolver | None = None,
             check_tasks: Callable[[list[Task]], None] | None = None) -> RunPlan:
    """Check everything that can be checked before the data and the model load, in the order the
    ``run`` command always has; ``check_tasks`` sees the built tasks first (the CLI's ``--judge``
    checks)."""
    from chimed_eval.backends import BACKENDS, backend_capabilities, check_backend_args
    from chimed_eval.evidence.expand import parse_shuffle_choices

    config = config or RunConfig()
    items = [tasks] if isinstance(tasks, (str, Task)) else list(tasks)
    if not items:
        raise ConfigError("no tasks given")
    config.check()
    args = {str(k): str(v) for k, v in (model_args or {}).items()}
    loaded = _loaded_backend(model, tokenizer)
    if loaded is not None:
        backend = loaded.name
    check_backend_args(backend, args)  # before anything is written or echoed
    out = None if output is None else Path(output)
    shard = config.shard
    if shard:
        from chimed_eval.engine.parallel import shard_dir, shard_from_env
        from chimed_eval.engine.runner import parse_shard

        shard = shard_from_env() if shard == "auto" else shard
        if out is not None:
            out = shard_dir(out, shard)  # checks the I/N spec
        else:
            parse_shard(shard)
    built = _build_tasks(items, config, resolve_tasks)
    task_objects = [b.task for b in built]
    helpers = config.helpers()
    _check_helpers(task_objects, config, helpers)
    if check_tasks is not None:
        check_tasks(task_objects)
    BACKENDS.get(backend)  # an unknown backend fails here, before any data or model loads
    name = str(model) if loaded is None else loaded.model_info().name
    if loaded is None and name in BACKENDS and not Path(name).exists():
        raise ConfigError(backend_as_model_hint(name))
    if data_dir is None:
        from chimed_eval.data.locations import default_data_dir

        data_dir = default_data_dir()
    settings = RunSettings(
        model=name, backend=backend, variant=config.variant, shots=config.shots, seed=config.seed,
        limit=config.limit, batch_size=config.batch_size, device=config.device, dtype=config.dtype, model_args=args,
        data_dir=str(data_dir), max_new_tokens=config.max_new_tokens, decoding=config.decoding, shard=shard,
        shuffle_choices=parse_shuffle_choices(None if config.shuffle_choices is None else str(config.shuffle_choices)),
        repeats=config.repeats if config.repeats != 1 else None, think_markers=_think_markers(config.think_markers),
        apply_chat_template=config.apply_chat_template, system_prompt=config.system_prompt or None,
        fewshot_as_multiturn=config.fewshot_as_multiturn, task_sources=_task_sources(built, config.task_config),
        gen_kwargs=parse_gen_kwargs(config.gen_kwargs).record(), helpers=helpers, max_turns=config.max_turns)
    price = run_price(name, config.price)
    budget = Budget(config.max_cost, config.max_tokens)
    budget.check(price)
    opener = _helper_opener(settings, config)
    if loaded is not None:
        return RunPlan(tuple(task_objects), settings, lambda script=None: _Borrowed(loaded), out, config.progress,
                       price, budget, opener)
    if config.variant == "chat" and any("chat" in t.variants for t in task_objects):
        from chimed_eval.models.chat import run_chat_setup  # refuses early a model with no chat format

        run_chat_setup(backend, backend_capabilities(backend), name, args)
    from chimed_eval.models.presets import check_backend

    check_backend(name, backend_capabilities(backend))
    return RunPlan(tuple(task_objects), settings, _backend_factory(backend, name, config, args), out, config.progress,
                   price, budget, opener)


def backend_as_model_hint(name: str) -> str:
    """What to say when the model named is a backend (lm-evaluation-harness's ``--model hf``)."""
    return (f"--model {name} names a backend, not a model: use --backend {name} --model MODEL (a preset from "
            f"`chimed-eval models`, a directory, a .gguf file or a hub id); lm-evaluation-harness's "
            f"`--model {name} --model_args pretrained=MODEL` is read that way too")


def run_plan(plan: RunPlan) -> RunResult:
    """Run a plan: the records go to ``plan.output`` (resumable), or stay in memory."""
    from chimed_eval.engine.runner import evaluate

    return evaluate(list(plan.tasks), plan.backend_factory, plan.settings, plan.output, progress=plan.progress,
                    price=plan.price, budget=plan.budget, helper_opener=plan.helper_opener)


def evaluate(model: Any, tasks: Sequence[str | Task] | str | Task, *, backend: str = "hf",
             model_args: Mapping[str, str] | None = None, data_dir: str | Path | None = None,
             output: str | Path | None = None, config: RunConfig | None = None, tokenizer: Any = None,
             resolve_tasks: TaskResolver | None = None, **options: Any) -> RunResult:
    """Evaluate ``model`` on ``tasks`` and return the figures (:class:`~chimed_eval.core.types.RunResult`).

    ``model``: a preset, a local directory, a ``.gguf`` file or a hub id (loaded by ``backend``);
    the fake backend's mode (``oracle``, ...) with ``backend="fake"``; or an already-loaded model:
    a transformers model and its tokenizer (``model=(m, tok)`` or ``model=m, tokenizer=tok``) or a
    backend instance (neither is closed nor cached: the caller owns them). ``tasks``: names (as
    ``chimed-eval tasks`` lists them) or Task objects. ``output``: a run directory (written and
    resumable as ``chimed-eval run --output``), or None to write nothing (the response cache still
    serves). ``options``: the fields of :class:`RunConfig` (``limit=``, ``shots=``, ...)."""
    plan = plan_run(model, tasks, backend=backend, model_args=model_args, data_dir=data_dir, output=output,
                    config=with_options(config, options), tokenizer=tokenizer, resolve_tasks=resolve_tasks)
    return run_plan(plan)


def read_run(path: str | Path) -> RunResult:
    """A run on disk (its output directory or its results.json), figures checked against their
    records; ``.samples(task)`` reads the records."""
    from chimed_eval.runs.reader import read_run as read

    return read(Path(path))


# --- helpers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _GivenTask:
    """A Task object given as it is: nothing recorded about how to rebuild it (``score`` rebuilds
    it from its records, as for a run written before sources were recorded)."""

    task: Task

    def source(self, config_sha256: str | None) -> None:
        return None


def _build_tasks(items: list[str | Task], config: RunConfig, resolve: TaskResolver | None) -> list[Any]:
    names = [t for t in items if isinstance(t, str)]
    for t in items:
        if not isinstance(t, (str, Task)):
            raise TypeError(f"tasks: expected task names or Task objects, got {type(t).__name__}")
    by_name: dict[str, Any] = {}
    if names:
        if resolve is None:
            raise ConfigError("task names need a resolver (chimed_eval.evaluate hands in the plug-in tasks)")
        by_name = {n: b for n, b in zip(names, resolve(names, dict(config.task_args), config.task_config))}
    return [by_name[t] if isinstance(t, str) else _GivenTask(t) for t in items]


def _task_sources(built: Sequence[Any], task_config: Path | None) -> dict[str, Any]:
    """What defines each task beyond its data files, recorded in run.json (compared on resume,
    and how ``score`` rebuilds the task): its type and task args, or the task-config file's
    content hash."""
    from chimed_eval.core.types import sha256_text
    from chimed_eval.files.text import read_task_config

    config_sha = None
    if task_config is not None:  # read as build_tasks read it: a regular file of a bounded size
        config_sha = sha256_text(read_task_config(task_config).decode("utf-8", "replace"))
    sources = {b.task.name: b.source(config_sha) for b in built}
    return {k: v for k, v in sources.items() if v is not None}


def _think_markers(text: str | None) -> str | None:
    """``think_markers`` checked (:func:`chimed_eval.extract.reasoning.parse_think_markers`); None
    when absent or the default, so the default is recorded the same way whether given or not."""
    from chimed_eval.extract.reasoning import DEFAULT_THINK_MARKERS, parse_think_markers

    return None if text is None or parse_think_markers(text) == DEFAULT_THINK_MARKERS else text


def _check_helpers(tasks: Sequence[Task], config: RunConfig, helpers: Mapping[str, Any]) -> None:
    """Consultation flags need a consultation task and it needs a patient; the answer check needs a
    multiple-choice task (refused before any data or model loads)."""
    consult = [t.name for t in tasks if getattr(t, "interactive", False)]
    if consult and "patient" not in helpers:
        raise ConfigError(f"task {consult[0]!r} is a consultation: give the patient simulator with --patient-model "
                          "MODEL (and --patient-backend, --patient-args)")
    if not consult and (config.patient_model or config.consult_judge or config.max_turns is not None):
        raise ConfigError("--patient-model / --consult-judge / --max-turns are for consultation tasks "
                          "(consult, consult-cmb-clin); none of the tasks is one")
    from chimed_eval.task.multiple_choice import MCQTask

    if config.answer_check and not any(isinstance(t, MCQTask) for t in tasks):
        raise ConfigError("--answer-check reads multiple-choice answers; none of the tasks is a multiple-choice task")


def _helper_opener(settings: RunSettings, config: RunConfig) -> Callable[[dict[str, Any]], Any]:
    """Opens a helper model as the run's backend is opened, with the run's cache flags."""
    from chimed_eval.backends import run_cache
    from chimed_eval.engine.consult import open_helper_backend

    def opener(spec: dict[str, Any]) -> Any:
        cache = run_cache(spec["backend"], not config.use_cache, config.cache)
        return open_helper_backend(settings, cache if cache is not None else None, spec)

    return opener


def _backend_factory(backend: str, model: str, config: RunConfig, args: dict[str, str]) -> Callable[..., Any]:
    """Opens the backend once the data has loaded; ``script``: the fake oracle's answers."""
    from chimed_eval.backends import open_backend, run_cache

    cache = run_cache(backend, not config.use_cache, config.cache)  # not cached_by_default: only in a given DIR

    size = 8 if config.batch_size == "auto" else int(config.batch_size)  # auto: chosen by the runner once open

    def factory(script: Any = None) -> Any:
        return open_backend(backend, model, seed=config.seed, batch_size=size, device=config.device,
                            dtype=config.dtype, model_args=args, cache=cache, script=script)

    return factory


def _loaded_backend(model: Any, tokenizer: Any) -> Any:
    """The backend for an already-loaded model; None for a model given by name."""
    from chimed_eval.backends.base import Backend

    if isinstance(model, (str, Path)):
        if tokenizer is not None:
            raise ConfigError("tokenizer= goes with an already-loaded model, not with a model name")
        return None
    if isinstance(model, Backend):
        return model
    if isinstance(model, tuple) and len(model) == 2 and tokenizer is None:
        model, tokenizer = model
    if tokenizer is None or not hasattr(model, "config") or not callable(getattr(model, "forward", None)):
        raise ConfigError(f"model: expected a name, a backend instance, or a transformers model and its tokenizer "
                          f"(model=(m, tok) or tokenizer=tok), got {type(model).__name__}")
    from chimed_eval.backends.hf import HFBackend
    from chimed_eval.models.resolve import ResolvedModel

    where = str(getattr(model.config, "_name_or_path", "") or type(model).__name__)
    return HFBackend(ResolvedModel(name=where, path=where), loaded=(model, tokenizer))


class _Borrowed:
    """A caller's backend lent to one run: every call goes to it, except ``close`` (the caller
    still owns the model)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def close(self) -> None:
        pass
