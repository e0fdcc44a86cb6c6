"""Progress bars and time estimates for long work: one switch, one kind of bar, one estimator.

Every long loop (a run's batches, a contamination scan, a GGUF conversion, a download, judging,
training's sampling) draws its bar through :func:`progress_bar`, so one rule decides whether bars
show: ``CHIMED_EVAL_NO_PROGRESS=1`` turns every bar off; else the caller's flag
(``--no-progress``) where it has one, else the setting of the enclosing :func:`progress_default`
(the runner sets it for the backend it opens, so a GGUF conversion inside follows the run's flag),
else on. Bars go to stderr, so stdout stays the results.

:func:`remaining_seconds` is the estimate of the time left, a pure function of the batches done so
far (tested on its own); :func:`format_duration` writes it for people.
"""

from __future__ import annotations

import contextlib
import os
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

#: ``1`` (or any value but ``0`` and empty) turns every progress bar off
NO_PROGRESS_ENV = "CHIMED_EVAL_NO_PROGRESS"

_DEFAULT: ContextVar[bool | None] = ContextVar("chimed_eval_progress", default=None)


def progress_on(flag: bool | None = None) -> bool:
    """Whether bars show: never while ``$CHIMED_EVAL_NO_PROGRESS`` is set (the one switch for a
    whole job, a cluster's logs or a notebook); else ``flag`` when given, else the enclosing
    :func:`progress_default`, else on."""
    if os.environ.get(NO_PROGRESS_ENV, "").strip() not in ("", "0"):
        return False
    if flag is not None:
        return flag
    inherited = _DEFAULT.get()
    return True if inherited is None else inherited


@contextlib.contextmanager
def progress_default(on: bool | None) -> Iterator[None]:
    """Within the block, bars drawn without a flag of their own follow ``on`` (None: unchanged)."""
    token = _DEFAULT.set(on if on is not None else _DEFAULT.get())
    try:
        yield
    finally:
        _DEFAULT.reset(token)


def progress_bar(total: float | None, desc: str, unit: str = "item", enabled: bool | None = None,
                 **options: Any) -> Any:
    """A tqdm bar on stderr (disabled per :func:`progress_on`); ``options`` go to tqdm."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not progress_on(enabled), file=sys.stderr,
                dynamic_ncols=True, **options)


@dataclass(frozen=True)
class BatchTime:
    """One finished batch: its request kind, how many items it completed, how long it took."""

    kind: str
    items: int
    seconds: float


def remaining_seconds(batches: Sequence[BatchTime], left: Mapping[str, int], warmup: int = 1,
                      min_batches: int = 2) -> float | None:
    """The time the items still ``left`` (per request kind) should take, from the ``batches``
    finished so far; None until ``min_batches`` have finished (one batch says little: it carries
    the model's warm-up).

    The first ``warmup`` batches are left out of the rates (loading caches, compiling kernels), as
    long as a batch is left after them. Each kind is timed by its own rate (seconds per item): a
    log-likelihood batch and a generation batch differ by orders of magnitude; a kind not reached
    yet takes the rate of all the measured batches together (the best guess until it starts)."""
    if len(batches) < max(1, min_batches):
        return None
    measured = list(batches[warmup:]) if len(batches) > warmup else list(batches)
    items = sum(b.items for b in measured)
    if items <= 0:
        return None
    overall = sum(b.seconds for b in measured) / items
    per_kind: dict[str, tuple[int, float]] = {}
    for b in measured:
        n, s = per_kind.get(b.kind, (0, 0.0))
        per_kind[b.kind] = (n + b.items, s + b.seconds)
    total = 0.0
    for kind, n_left in left.items():
        if n_left <= 0:
            continue
        n, s = per_kind.get(kind, (0, 0.0))
        total += n_left * (s / n if n > 0 else overall)
    return max(0.0, total)


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``: the estimate as people read it (rounded to whole seconds)."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


@contextlib.contextmanager
def library_bars(enabled: bool | None = None) -> Iterator[None]:
    """transformers' own bars (loading and saving weights) follow the switch inside the block:
    hidden when progress is off, as ours are. transformers must already be importable (called only
    where it is about to be used)."""
    if progress_on(enabled):
        yield
        return
    import functools
    import importlib

    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    silenced = []
    for name in _BARE_TQDM:  # modules that draw a plain tqdm, deaf to the switch above
        try:
            module = importlib.import_module(name)
        except Exception:  # absent or broken in this transformers: nothing to silence
            continue
        if callable(getattr(module, "tqdm", None)):
            silenced.append((module, module.tqdm))
            module.tqdm = functools.partial(module.tqdm, disable=True)
    try:
        yield
    finally:
        for module, bar in silenced:
            module.tqdm = bar
        if was_on:
            hf_logging.enable_progress_bar()


#: transformers modules whose bars ignore ``disable_progress_bar`` (GGUF dequantisation)
_BARE_TQDM = ("transformers.modeling_gguf_pytorch_utils",)
