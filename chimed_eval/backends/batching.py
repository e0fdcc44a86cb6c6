"""``--batch-size auto``: the largest batch that fits, found by trying.

A backend that holds its model in accelerator memory (hf on a GPU) runs the first batch -- the
longest requests, since the runner sorts longest first -- at a starting size and halves it on
each out-of-memory error until it fits (lm-evaluation-harness does the same). On a CPU there is
no memory wall worth probing: larger batches only pad more, so auto is :data:`CPU_AUTO_BATCH`.
Engines that schedule their own batches (vLLM) take their hand-over size instead.
"""

from __future__ import annotations

from typing import Callable

#: the first size tried on an accelerator
AUTO_START = 64
#: ``--batch-size auto`` on a CPU (the default batch size)
CPU_AUTO_BATCH = 8


def find_batch_size(attempt: Callable[[int], None], start: int, is_oom: Callable[[BaseException], bool],
                    after_oom: Callable[[], None] = lambda: None) -> int:
    """The largest size from ``start`` down (halving) for which ``attempt(size)`` returns; an
    exception that ``is_oom`` does not recognise propagates, as does an OOM at size 1."""
    size = max(1, int(start))
    while True:
        try:
            attempt(size)
            return size
        except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are caught below
            if not is_oom(exc) or size == 1:
                raise
        after_oom()
        size = max(1, size // 2)


__all__ = ["AUTO_START", "CPU_AUTO_BATCH", "find_batch_size"]
