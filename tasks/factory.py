"""The task factory: every configurable task type registers how it is built, from ``--task-args``
and from a ``--task-config`` file, which arguments it takes, and how ``chimed-eval score`` rebuilds
it from saved records. The CLI only parses and calls :func:`build_tasks` / :func:`rescoring_task`;
``chimed-eval tasks --describe NAME`` prints a type's arguments from the same schema.

A new kind of task is one module that defines its task class and calls :func:`register_type`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.registry import Registry, UnknownNameError
from chimed_eval.task.base import Task


@dataclass(frozen=True)
class TaskArg:
    """One key of a task type's ``--task-args`` / config entry."""

    name: str
    type: str
    default: Any
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


@dataclass(frozen=True)
class TaskType:
    """How a configurable task type is built. ``from_args`` takes ``--task-args`` (strings);
    ``from_config`` the type's entries of a JSON/TOML config file (None: not configurable there);
    ``rescoring`` a task able to re-score saved records without the data (name, OUT), or None when
    the records are not of this type."""

    name: str
    help: str
    args: tuple[TaskArg, ...]
    from_args: Callable[[Mapping[str, str]], Task]
    rescoring: Callable[[str, Path], Task | None]
    from_config: Callable[[Path], Sequence[Task]] | None = None
    example: str = ""


#: filled by :mod:`chimed_eval.tasks.builtin_types` (mcq, ner, scale) on first use, and by any module that
#: calls :func:`register_type`
TASK_TYPES: Registry[TaskType] = Registry("task type", populate="chimed_eval.tasks.builtin_types")


def register_type(t: TaskType) -> TaskType:
    TASK_TYPES.add(t.name, t, t.help)
    return t


def args_of(spec_class: type, help: Mapping[str, str]) -> tuple[TaskArg, ...]:
    """The argument schema of a spec dataclass: every field, its type and default, and the help
    text given for it (a field without help is still listed)."""
    out = []
    for f in dataclasses.fields(spec_class):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        out.append(TaskArg(f.name, str(f.type), default, help.get(f.name, "")))
    return tuple(out)


def describe(name: str) -> str:
    """The text ``chimed-eval tasks --describe NAME`` prints: a task type's arguments, or a named
    task's description."""
    if name in TASK_TYPES:
        t = TASK_TYPES.get(name)
        lines = [f"{t.name}: {t.help}", "", "arguments (--task-args k=v,... or keys of a --task-config entry"
                 + (f' with type = "{t.name}"' if t.from_config else ", --task-args only") + "):"]
        for a in t.args:
            default = "required" if a.required else f"default {a.default!r}"
            lines.append(f"  {a.name:20} {a.type:18} {default}")
            if a.help:
                lines.append(f"  {'':20} {a.help}")
        if t.example:
            lines += ["", f"example: {t.example}"]
        return "\n".join(lines)
    from chimed_eval.tasks import TASKS

    if name in TASKS:
        return f"{name}: {TASKS.help(name)}\n(a named task: it takes no --task-args; --shots, --variant, --limit apply)"
    raise UnknownNameError(TASKS.unknown_message(name) + f". Task types: {', '.join(TASK_TYPES.names())}")


def config_tasks(task_config: Path | None) -> dict[str, Task]:
    """The user's own tasks defined in a --task-config file, by name (every type that reads one)."""
    if task_config is None:
        return {}
    out: dict[str, Task] = {}
    for tname in TASK_TYPES:
        t = TASK_TYPES.get(tname)
        if t.from_config is None:
            continue
        for task in t.from_config(task_config):
            if task.name in out:
                raise ConfigError(f"{task_config}: several tasks are named {task.name!r}; give each task its own name=")
            out[task.name] = task
    return out


@dataclass(frozen=True)
class BuiltTask:
    """A task built for a run, with what defines it beyond its data (recorded in run.json so that
    ``score`` rebuilds the same kind of task): ``type`` ("named", "config" or a task type) and
    its arguments."""

    task: Task
    type: str
    args: Mapping[str, str]

    def source(self, config_sha256: str | None) -> dict[str, Any]:
        if self.type == "config":
            return {"type": "config", "task_config_sha256": config_sha256 or ""}
        if self.type == "named":
            return {"type": "named"}
        return {"type": self.type, "args": dict(sorted(self.args.items()))}


def build_tasks(names: Sequence[str], task_args: Mapping[str, str], task_config: Path | None) -> list[BuiltTask]:
    """The tasks named on the command line: a --task-config task, a task type built from
    --task-args, or a named (registered) task. --task-args given to a named task are refused."""
    from chimed_eval.tasks import TASKS, get_task

    custom = config_tasks(task_config)
    out = []
    for n in names:
        if n in custom:
            out.append(BuiltTask(custom[n], "config", {}))
        elif n in TASK_TYPES:
            t = TASK_TYPES.get(n)
            if not task_args and any(a.required for a in t.args):
                raise ConfigError(f"task {n!r} needs --task-args (or a --task-config file); "
                                  f"see: chimed-eval tasks --describe {n}")
            out.append(BuiltTask(t.from_args(task_args), n, dict(task_args)))
        else:
            if n not in TASKS:
                extra = f". Task types: {', '.join(TASK_TYPES.names())}" + (
                    f"; config tasks: {', '.join(sorted(custom))}" if custom else "")
                raise UnknownNameError(TASKS.unknown_message(n) + extra)
            out.append(BuiltTask(get_task(n), "named", {}))
    if task_args and not any(b.type in TASK_TYPES for b in out):
        raise ConfigError(f"--task-args given, but none of the tasks {list(names)} takes them "
                          f"(task types that do: {', '.join(TASK_TYPES.names())})")
    return out


def rescoring_task(name: str, out_dir: Path, source: Mapping[str, Any] | None,
                   task_config: Path | None = None) -> Task:
    """A task able to re-score OUT's records of ``name``, rebuilt from what run.json recorded
    (``source``); for older runs without it, from the records' own evidence."""
    from chimed_eval.runs.reader import samples_file
    from chimed_eval.tasks import TASKS, get_task

    kind = (source or {}).get("type")
    if kind == "named" or (kind is None and name in TASKS):
        return get_task(name)
    if kind == "config" and task_config is not None:
        custom = config_tasks(task_config)
        if name in custom:
            return custom[name]
    if kind in TASK_TYPES:
        rebuilt = TASK_TYPES.get(kind).rescoring(name, out_dir)
        if rebuilt is None:
            raise ConfigError(f"{samples_file(out_dir, name)}: run.json says task {name!r} is of type {kind!r}, "
                              "but its records are not")
        return rebuilt
    if kind == "config":
        raise ConfigError(f"task {name!r} came from a --task-config file: give it again to score this run")
    for tname in ("ner", "scale"):  # runs written before run.json recorded the type
        task = TASK_TYPES.get(tname).rescoring(name, out_dir)
        if task is not None:
            return task
    return TASK_TYPES.get("mcq").rescoring(name, out_dir)


