"""The training stages by name: each stage module registers one :class:`StageSpec` (its config
dataclass, its run function, a line of help, and how it sits in a ``full`` regime), so a new stage
— DPO with TRL's ``DPOTrainer``, say — is one file in this package::

    @dataclass
    class DPOStageConfig:
        model: str
        output_dir: str
        sources: list[Source] = field(default_factory=list)
        train: TrainSettings = field(default_factory=TrainSettings)

    def run_dpo(cfg: DPOStageConfig) -> dict[str, Any]: ...

    register(StageSpec("dpo", "direct preference optimisation", DPOStageConfig, run_dpo,
                       order=25, inputs=(("model", "sft"),)))

The stage modules are found by importing this package's modules (all cheap: heavy libraries are
imported when a stage runs), so ``chimed-train --help`` lists every stage without torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from chimed_eval.core.registry import Registry

STAGES: Registry["StageSpec"] = Registry("stage")
NOT_STAGES = frozenset({"cli", "registry", "__main__"})  # modules that register nothing


@dataclass(frozen=True)
class StageSpec:
    """One stage. ``run(config) -> report``; ``config`` is the dataclass its YAML section fills.

    In a ``full`` file the stages run by ``order``; ``required`` stages must have a section;
    ``inputs`` fill a setting (a dotted key, whose parent mapping must exist) with the
    ``output_dir`` of an earlier stage when the section leaves it out; ``done_file`` in the
    output directory marks the stage finished (``skip_done``). ``alone``, when set, says why the
    stage cannot run from its own file and what to do instead."""

    name: str
    help: str
    config: type
    run: Callable[[Any], dict[str, Any]]
    order: int = 100
    required: bool = False
    inputs: tuple[tuple[str, str], ...] = ()
    done_file: str = "metrics.json"
    alone: str | None = None


def register(spec: StageSpec) -> StageSpec:
    STAGES.add(spec.name, spec, spec.help)
    return spec


@lru_cache(maxsize=1)
def _discover() -> None:
    package = importlib.import_module(__package__)
    for m in pkgutil.iter_modules(package.__path__):
        if m.name not in NOT_STAGES:
            importlib.import_module(f"{__package__}.{m.name}")


def stages() -> list[StageSpec]:
    """Every registered stage, in regime order."""
    _discover()
    return sorted((STAGES.get(n) for n in STAGES.names()), key=lambda s: (s.order, s.name))


def get_stage(name: str) -> StageSpec:
    """The stage called ``name`` (an unknown name says which are known, with a did-you-mean)."""
    _discover()
    return STAGES.get(name)
