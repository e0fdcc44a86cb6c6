"""What a run says about its size and its time: the counts line printed before the first batch and
the bar that, once the first batches are done, estimates the time left
(:func:`chimed_eval.core.progress.remaining_seconds`, per request kind)."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, Mapping, Sequence

from chimed_eval.core.progress import BatchTime, format_duration, progress_bar, progress_on, remaining_seconds

#: the bar without tqdm's own estimate (one rate over every kind), our estimate in its place
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


def model_calls(request: Any) -> int:
    """What one request costs the model: a log-likelihood request scores each continuation, any
    other kind is one call."""
    return max(1, len(request.continuations)) if request.kind == "loglikelihood" else 1


def counts_line(pending: Sequence[tuple[str, Any]], total_items: int, n_tasks: int, batches: int,
                batch_size: int) -> str:
    """``pending``: (task name, request) of every item still to compute. The line a run prints
    before its first batch: items to do (of how many, how many resumed), the model calls by request
    kind, and the batches."""
    calls: Counter[str] = Counter()
    for _, r in pending:
        calls[r.kind] += model_calls(r)
    kinds = ", ".join(f"{n} {k}" for k, n in calls.items())
    resumed = total_items - len(pending)
    tasks = len({t for t, _ in pending})
    return (f"chimed-eval: {len(pending)} items to evaluate in {tasks} of {n_tasks} task(s)"
            + (f" ({resumed} already done, resumed)" if resumed else "")
            + f"; {sum(calls.values())} requests ({kinds}) in {batches} batches of up to {batch_size}")


class RunProgress:
    """The run's bar: items done of those pending, and the estimated time left once
    ``min_batches`` batches have finished (the first left out of the rate as warm-up)."""

    def __init__(self, left: Mapping[str, int], enabled: bool, desc: str = "evaluating") -> None:
        self.left = dict(left)
        self.batches: list[BatchTime] = []
        self.bar = progress_bar(sum(self.left.values()), desc, "item", enabled, bar_format=BAR_FORMAT)

    def batch_done(self, kind: str, items: int, seconds: float) -> float | None:
        """Record a finished batch; return (and show) the estimated seconds left, or None."""
        self.batches.append(BatchTime(kind, items, seconds))
        self.left[kind] = self.left.get(kind, 0) - items
        eta = remaining_seconds(self.batches, self.left)
        if eta is not None:
            self.bar.set_postfix_str(f"~{format_duration(eta)} left", refresh=False)
        self.bar.update(items)
        return eta

    def close(self) -> None:
        self.bar.close()


def announce(line: str, enabled: bool) -> None:
    """Print the counts line on stderr (stdout stays the results) unless progress is off."""
    if progress_on(enabled):
        print(line, file=sys.stderr, flush=True)
