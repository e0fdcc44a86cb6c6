"""Pure metric functions: no data loading, no model, no I/O.

Each module here declares, beside the functions that define its figures, which way each is
better: ``DIRECTIONS = {name or pattern: "higher" | "lower" | None}`` (None: no better side, as for
counts, distributions, attitudes and membership scores). Names built from parts are declared as
shell-style patterns (:func:`fnmatch.fnmatchcase`: ``pass@*``, ``*_count``). :func:`metric_direction`
reads every module's declarations (a new module is found by itself, no list to edit):

* an exact name wins; else the most specific matching pattern (the most characters that are not
  wildcards: ``*_count`` beats ``f1*`` for ``f1_count``); two equally specific patterns that
  disagree are an error, as is one name declared two ways;
* a name nothing declares is higher-is-better (:data:`DEFAULT_DIRECTION`: scores and accuracies,
  what ``check`` has always assumed).

``check`` says with it whether a moved figure went the better or the worse way, and the
leaderboards sort by it.
"""

from __future__ import annotations

import importlib
import pkgutil
from fnmatch import fnmatchcase
from functools import lru_cache
from types import ModuleType
from typing import Any, Literal, Mapping, Optional, Sequence, TypeVar

Direction = Optional[Literal["higher", "lower"]]
M = TypeVar("M", bound=Any)  # a Metric (anything with a ``name``)
#: the direction of a figure no module declares
DEFAULT_DIRECTION: Direction = "higher"
_WILDCARDS = "*?["
_VALID = ("higher", "lower", None)


@lru_cache(maxsize=1)
def _declaring_modules() -> tuple[ModuleType, ...]:
    """The metric modules that declare ``DIRECTIONS`` (imported once; their tables are read anew
    on each lookup)."""
    mods = (importlib.import_module(f"{__name__}.{m.name}") for m in sorted(pkgutil.iter_modules(__path__),
                                                                              key=lambda m: m.name))
    return tuple(m for m in mods if isinstance(getattr(m, "DIRECTIONS", None), Mapping))


def declared_directions() -> dict[str, tuple[Direction, str]]:
    """Every declaration: name or pattern -> (direction, the module declaring it). A name declared
    with two directions, or with a value other than higher/lower/None, is a ValueError."""
    out: dict[str, tuple[Direction, str]] = {}
    for mod in _declaring_modules():
        for key, direction in mod.DIRECTIONS.items():
            if direction not in _VALID:
                raise ValueError(f"{mod.__name__}.DIRECTIONS[{key!r}] = {direction!r}: expected higher, lower or None")
            if key in out and out[key][0] != direction:
                raise ValueError(f"metric {key!r}: {out[key][1]} declares {out[key][0]}, {mod.__name__} {direction}")
            out.setdefault(key, (direction, mod.__name__))
    return out


def declaration_for(name: str) -> str | None:
    """The declared name or pattern that decides ``name``'s direction (None: the default applies)."""
    table = declared_directions()
    if name in table and not any(c in name for c in _WILDCARDS):
        return name
    matches = [k for k in table if any(c in k for c in _WILDCARDS) and fnmatchcase(name, k)]
    if not matches:
        return None
    weight = {k: len(k) - sum(k.count(c) for c in _WILDCARDS) for k in matches}
    best = max(weight.values())
    top = sorted(k for k in matches if weight[k] == best)
    if len({table[k][0] for k in top}) > 1:
        raise ValueError(f"metric {name!r}: equally specific declarations disagree: "
                         + ", ".join(f"{k!r} ({table[k][1]}: {table[k][0]})" for k in top))
    return top[0]


def metric_direction(name: str) -> Direction:
    """``"higher"`` or ``"lower"`` (is better) for a figure, or None where it has no better side,
    from the declarations of the module that defines it (module docstring)."""
    key = declaration_for(name)
    return DEFAULT_DIRECTION if key is None else declared_directions()[key][0]


def declared_headlines() -> tuple[str, ...]:
    """Every module's ``HEADLINE`` names or patterns: the figures a task is summed up by (the
    console prints these by default, ``--all-metrics`` the rest)."""
    return tuple(k for mod in _declaring_modules() for k in getattr(mod, "HEADLINE", ()))


def is_headline(name: str) -> bool:
    """Whether ``name`` is a declared headline figure (an exact name or a matching pattern)."""
    return any(name == k or (any(c in k for c in _WILDCARDS) and fnmatchcase(name, k)) for k in declared_headlines())


def headline_metrics(metrics: Sequence[M]) -> list[M]:
    """The headline figures of a task's metrics, in their order; all of them when none is one (a
    kind of task no module declares a headline for shows every figure rather than none)."""
    heads = [m for m in metrics if is_headline(m.name)]
    return heads or list(metrics)


def primary_metric(metrics: Sequence[M]) -> M | None:
    """The one figure a task is summed up by: the first declared headline (in the order of the
    modules, then of each ``HEADLINE``: ``acc`` before ``avg@k``, ``f1`` for NER, ``paper_rougeL``
    for generations) that the task reports; else its first figure with an interval; else its first."""
    for key in declared_headlines():
        wild = any(c in key for c in _WILDCARDS)
        found = next((x for x in metrics if (fnmatchcase(x.name, key) if wild else x.name == key)), None)
        if found is not None:
            return found
    return next((x for x in metrics if getattr(x, "ci_low", None) is not None), metrics[0] if metrics else None)
