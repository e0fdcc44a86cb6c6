"""``full``: pretrain -> sft -> reward (+ an optional second, judging reward model) -> rejection,
from one YAML file, each stage's output feeding the next, then ``chimed-eval run`` on the result.

YAML sections: ``defaults`` (merged into every stage, e.g. ``train: {...}``), one per registered
stage (:mod:`chimed_eval.training.registry`; in their order: ``pretrain``, ``sft``, ``reward``, ``judge``
(optional: a reward stage on a disjoint split, used only to judge the rejection stage),
``rejection``), ``evaluate`` (``tasks``, ``limit``, ``max_new_tokens``, ``output``,
``extra_args``). A stage's inputs (``model``, ``policy``, ``reward_model``, declared by its
:class:`~chimed_eval.training.registry.StageSpec`) are filled in from the earlier stage's ``output_dir`` when
left out. ``skip_done: true`` skips a stage whose ``output_dir`` already holds its metrics file
(resume a long regime after a crash).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chimed_eval.core.errors import ConfigError

from .config import from_dict
from .registry import StageSpec, get_stage, stages
from .stage import is_main_process, log

OTHER_SECTIONS = ("defaults", "evaluate", "skip_done")


@dataclass
class EvaluateConfig:
    tasks: str = "cmd-qa"
    limit: int | None = None
    max_new_tokens: int | None = None
    output: str | None = None
    backend: str = "hf"
    extra_args: list[str] = field(default_factory=list)


def merge_settings(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge_settings(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def is_full_file(data: dict) -> bool:
    """Whether ``data`` is a regime file: it has a section for every required stage."""
    return all(s.name in data for s in stages() if s.required)


def _fill(section: dict, key: str, value: str) -> None:
    """``section[a][b]...`` (dotted ``key``) = ``value`` unless set; nothing when a parent is absent."""
    *parents, last = key.split(".")
    for p in parents:
        section = section.get(p)
        if not isinstance(section, dict):
            return
    section.setdefault(last, value)


def plan(data: dict) -> dict[str, Any]:
    """The stage configs of a ``full`` file in regime order (each with ``defaults`` merged in and
    its inputs chained from earlier stages' output directories), and ``evaluate``."""
    specs = stages()
    known = (OTHER_SECTIONS[0], *(s.name for s in specs), *OTHER_SECTIONS[1:])
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"full: unknown section(s) {', '.join(unknown)}; known: {', '.join(known)}")
    for spec in specs:
        if spec.required and spec.name not in data:
            raise ConfigError(f"full: no '{spec.name}:' section")
        if spec.name in data and not isinstance(data[spec.name], dict):
            raise ConfigError(f"full:{spec.name}: expected a mapping, got {data[spec.name]!r}")
    d = {s.name: merge_settings(data.get("defaults", {}), copy.deepcopy(data[s.name])) for s in specs if s.name in data}
    for spec in specs:
        for key, source in spec.inputs if spec.name in d else ():
            if source in d and "output_dir" in d[source]:
                _fill(d[spec.name], key, d[source]["output_dir"])
    out: dict[str, Any] = {name: from_dict(get_stage(name).config, sec, f"full:{name}") for name, sec in d.items()}
    if "evaluate" in data:
        out["evaluate"] = from_dict(EvaluateConfig, data["evaluate"], "full:evaluate")
    return out


def run_evaluation(model: str, ev: EvaluateConfig) -> dict[str, Any]:
    """``chimed-eval run`` on the trained model (a separate process, as a user would run it)."""
    output = ev.output or str(Path(model) / "eval")
    exe = Path(sys.executable).with_name("chimed-eval")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from chimed_eval.cli.app import main; sys.exit(main())"]
    cmd += ["run", "--model", model, "--tasks", ev.tasks, "--backend", ev.backend, "--output", output, "--no-progress"]
    if ev.limit:
        cmd += ["--limit", str(ev.limit)]
    if ev.max_new_tokens:
        cmd += ["--max-new-tokens", str(ev.max_new_tokens)]
    cmd += ev.extra_args
    log("[full] " + " ".join(cmd))
    subprocess.run(cmd, check=True)
    from chimed_eval.runs.reader import read_json_file, results_json

    return {"command": cmd, "results": read_json_file(results_json(output))}


def done_report(name: str, cfg: Any) -> dict[str, Any] | None:
    """The report of a stage that already finished (its metrics file exists), else None."""
    done = Path(cfg.output_dir) / get_stage(name).done_file
    if not done.is_file():
        return None
    log(f"[full] {name}: done already ({done}), skipped")
    return json.loads(done.read_text(encoding="utf-8"))


def run_planned(spec: StageSpec, cfg: Any, skip_done: bool) -> dict[str, Any]:
    """Run one planned stage, or with ``skip_done`` hand back its report when it already finished."""
    done = done_report(spec.name, cfg) if skip_done else None
    return done if done is not None else spec.run(cfg)


def run_full(data: dict) -> dict[str, Any]:
    """Every stage of the file in regime order, then ``chimed-eval run`` on the last one's model."""
    planned = plan(data)
    skip_done = bool(data.get("skip_done", False))
    report: dict[str, Any] = {}
    last = None
    for spec in stages():
        if spec.name in planned:
            log(f"[full] === {spec.name} ===")
            report[spec.name] = run_planned(spec, planned[spec.name], skip_done)
            last = planned[spec.name]
    if "evaluate" in planned and is_main_process() and last is not None:
        report["evaluate"] = run_evaluation(last.output_dir, planned["evaluate"])
    return report
