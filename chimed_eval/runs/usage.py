"""What a run costs: tokens, latency, throughput and money per request, per task and per run, and
the budget (``--max-cost``, ``--max-tokens``) that stops scheduling when it is spent.

Every request the runner scores leaves one line in ``OUT/usage/<task>.jsonl`` (item id, kind,
prompt / completion / reasoning tokens and where the counts come from, wall latency, time to first
token (streamed replies), the share of its batch's wall time, whether the response cache served
it). These lines live apart from the
samples on purpose: latency differs from one run to the next, and the samples and figures of a
run must be byte-identical however it was scheduled (alone, sharded, in a sweep, resumed).
``OUT/usage.json`` is the summary written at the end of each run: per task and for the run,
tokens, p50/p95 latency, throughput and cost from a price table (USD per million prompt and
completion tokens: the API presets' list prices, or ``--price in=X,out=Y``).

A budget counts what the output directory has spent so far (every usage line not served by the
cache, over every earlier invocation), so the same command run again with a higher budget
continues where the last one stopped, and a budget never enters run.json: changing it never
invalidates resume.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from chimed_eval.core.errors import BudgetReached, ConfigError
from chimed_eval.core.types import Usage

USAGE_DIR = "usage"
USAGE_SUMMARY = "usage.json"


@dataclass(frozen=True)
class Price:
    """USD per million prompt (``input``) and completion (``output``) tokens; ``source``: where
    the figures come from (a preset's list price, or ``--price``)."""

    input: float
    output: float
    source: str

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


@dataclass(frozen=True)
class Budget:
    """Where scheduling stops: total USD spent (needs a price) and/or total tokens (prompt plus
    completion) spent by the output directory; None: no limit."""

    max_cost: float | None = None
    max_tokens: int | None = None

    def check(self, price: Price | None) -> None:
        if self.max_cost is not None and not (self.max_cost >= 0 and math.isfinite(self.max_cost)):
            raise ConfigError(f"--max-cost {self.max_cost}: expected a number >= 0 (USD)")
        if self.max_tokens is not None and self.max_tokens < 0:
            raise ConfigError(f"--max-tokens {self.max_tokens}: expected an integer >= 0")
        if self.max_cost is not None and price is None:
            raise ConfigError("--max-cost needs a price: this model has no default; give --price in=X,out=Y "
                              "(USD per million prompt and completion tokens)")

    @property
    def active(self) -> bool:
        return self.max_cost is not None or self.max_tokens is not None


def parse_price(text: str) -> Price:
    """``in=X,out=Y`` (USD per million prompt / completion tokens) -> :class:`Price`."""
    parts: dict[str, float] = {}
    for chunk in text.split(","):
        key, sep, value = chunk.partition("=")
        key = key.strip()
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or key not in ("in", "out") or key in parts or not (number >= 0 and math.isfinite(number)):
            raise ConfigError(f"--price {text!r}: expected in=X,out=Y with X, Y >= 0 (USD per million prompt and "
                              "completion tokens)")
        parts[key] = number
    if set(parts) != {"in", "out"}:
        raise ConfigError(f"--price {text!r}: give both in=X and out=Y")
    return Price(parts["in"], parts["out"], f"--price {text}")


def run_price(model: str, given: str | None) -> Price | None:
    """``--price`` when given, else the preset's list price (:data:`chimed_eval.models.presets.API_PRICES`),
    else None (no cost is computed)."""
    if given:
        return parse_price(given)
    from chimed_eval.models.presets import API_PRICES

    if model in API_PRICES:
        p_in, p_out = API_PRICES[model]
        return Price(p_in, p_out, f"list price of {model} (chimed_eval/models/presets.py API_PRICES)")
    return None


def usage_file(out_dir: Path, task: str) -> Path:
    """``OUT/usage/<task>.jsonl``: one line per scored request."""
    return Path(out_dir) / USAGE_DIR / f"{task}.jsonl"


def usage_line(item_id: str, kind: str, usage: Usage | None, busy_s: float, batch_s: float) -> dict[str, Any]:
    """The line of one request. A local engine answers a batch at once: its latency is the
    batch's wall time (what each request waited) unless the backend measured its own."""
    u = usage or Usage()
    latency = None if u.cached else (u.latency_s if u.latency_s is not None else batch_s)
    return {"id": item_id, "kind": kind, "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "reasoning_tokens": u.reasoning_tokens, "latency_s": None if latency is None else round(latency, 6),
            "ttft_s": None if u.ttft_s is None else round(u.ttft_s, 6), "busy_s": round(0.0 if u.cached else busy_s, 6),
            "cached": bool(u.cached), "tokens_source": None if u.cached else u.tokens_source}


def read_usage(out_dir: Path, task: str) -> list[dict[str, Any]]:
    """The usage lines of ``task`` in OUT (none: an empty list); a torn last line (a kill
    mid-write) is skipped."""
    path = usage_file(out_dir, task)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarise(lines: Iterable[Mapping[str, Any]], price: Price | None) -> dict[str, Any]:
    """Tokens, p50/p95 latency (and time to first token where streamed), throughput and cost of
    some usage lines; cached requests count in ``requests`` and ``cached`` only. ``streamed``:
    the requests with a time to first token; ``tokens_source``: requests by where their token
    counts come from (:class:`~chimed_eval.core.types.Usage`)."""
    lines = list(lines)
    live = [x for x in lines if not x.get("cached")]
    prompt = sum(_int(x.get("prompt_tokens")) for x in live)
    completion = sum(_int(x.get("completion_tokens")) for x in live)
    reasoning = sum(_int(x.get("reasoning_tokens")) for x in live)
    lat = [float(x["latency_s"]) for x in live if isinstance(x.get("latency_s"), (int, float))]
    ttft = [float(x["ttft_s"]) for x in live if isinstance(x.get("ttft_s"), (int, float))]
    busy = sum(float(x.get("busy_s") or 0.0) for x in live)
    out: dict[str, Any] = {
        "requests": len(lines), "cached": len(lines) - len(live),
        "tokens_unknown": sum(1 for x in live if x.get("completion_tokens") is None),
        "prompt_tokens": prompt, "completion_tokens": completion, "reasoning_tokens": reasoning,
        "latency_p50_s": _round(percentile(lat, 50)), "latency_p95_s": _round(percentile(lat, 95)),
        "ttft_p50_s": _round(percentile(ttft, 50)), "ttft_p95_s": _round(percentile(ttft, 95)),
        "busy_s": round(busy, 6),
        "requests_per_s": _round(len(live) / busy if busy > 0 else None),
        "output_tokens_per_s": _round(completion / busy if busy > 0 else None),
        "cost_usd": None if price is None else round(price.cost(prompt, completion), 8),
        "streamed": len(ttft),
        "tokens_source": _sources(live),
    }
    return out


def _sources(lines: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Requests by where their token counts come from (``unknown``: no count, or a line written
    before the source was recorded)."""
    out: dict[str, int] = {}
    for x in lines:
        key = x.get("tokens_source") if isinstance(x.get("tokens_source"), str) else "unknown"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


class UsageMeter:
    """The runner's accounting for one run into OUT (or in memory for ``out_dir=None``): appends
    the usage lines of each scored batch, and stops scheduling (:class:`BudgetReached`) once the
    directory's spending reaches the budget."""

    def __init__(self, out_dir: Path | None, tasks: Sequence[str], price: Price | None, budget: Budget | None) -> None:
        self.out_dir, self.price, self.budget = out_dir, price, budget or Budget()
        self.budget.check(price)
        self.lines: dict[str, list[dict[str, Any]]] = {
            t: (read_usage(out_dir, t) if out_dir is not None else []) for t in tasks}

    def record(self, task: str, lines: Sequence[dict[str, Any]]) -> None:
        """Append ``lines`` (from :func:`usage_line`) to ``task``'s usage."""
        if not lines:
            return
        self.lines.setdefault(task, []).extend(lines)
        if self.out_dir is not None:
            path = usage_file(self.out_dir, task)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))

    def spent(self) -> tuple[float | None, int]:
        """(USD, tokens) spent so far by the directory (cached requests cost nothing)."""
        s = summarise((x for v in self.lines.values() for x in v), self.price)
        return s["cost_usd"], s["prompt_tokens"] + s["completion_tokens"]

    def check(self, done: int, total: int, by_task: Mapping[str, tuple[int, int]]) -> None:
        """Raise :class:`BudgetReached` (how far the run got) when the budget is spent."""
        if not self.budget.active or done >= total:  # nothing left to schedule: the run completes
            return
        cost, tokens = self.spent()
        reason = None
        if self.budget.max_tokens is not None and tokens >= self.budget.max_tokens:
            reason = f"--max-tokens {self.budget.max_tokens} reached ({tokens} tokens spent)"
        elif self.budget.max_cost is not None and cost is not None and cost >= self.budget.max_cost:
            reason = f"--max-cost {self.budget.max_cost:g} USD reached ({cost:.6f} USD spent)"
        if reason is None:
            return
        tasks = ", ".join(f"{t} {d}/{n}" for t, (d, n) in by_task.items())
        where = f"; the records are kept in {self.out_dir}" if self.out_dir is not None else ""
        raise BudgetReached(f"budget: {reason}; scheduling stopped after {done}/{total} items ({tasks}){where}. "
                            "Run the same command with a higher budget to resume.", done=done, total=total)

    def summary(self) -> dict[str, Any]:
        """Per task and for the run (``OUT/usage.json``), with the price used."""
        tasks = {t: summarise(v, self.price) for t, v in self.lines.items()}
        run = summarise((x for v in self.lines.values() for x in v), self.price)
        price = None if self.price is None else {"input_per_million": self.price.input,
                                                 "output_per_million": self.price.output, "source": self.price.source}
        return {"price_usd": price, "streamed": run["streamed"] > 0, "tasks": tasks, "run": run}

    def write_summary(self) -> dict[str, Any]:
        doc = self.summary()
        if self.out_dir is not None:
            from chimed_eval.runs.records import write_json_atomic

            write_json_atomic(Path(self.out_dir) / USAGE_SUMMARY, doc)
        return doc


def merge_usage(shard_dirs: Sequence[Path], out_dir: Path, tasks: Sequence[str]) -> dict[str, Any] | None:
    """The usage of merged shards: their lines per task into ``OUT/usage/`` and their summary into
    ``OUT/usage.json``, priced as the first shard was; None (nothing written) when no shard
    recorded any usage."""
    lines = {t: [x for d in shard_dirs for x in read_usage(d, t)] for t in tasks}
    if not any(lines.values()):
        return None
    price = None
    first = Path(shard_dirs[0]) / USAGE_SUMMARY
    if first.is_file():
        try:
            p = json.loads(first.read_text(encoding="utf-8")).get("price_usd")
            price = None if not p else Price(float(p["input_per_million"]), float(p["output_per_million"]), str(p["source"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            price = None
    from chimed_eval.runs.records import _replace_atomic

    for t, rows in lines.items():
        _replace_atomic(usage_file(out_dir, t),
                        lambda f, rows=rows: f.write("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in rows)))
    meter = UsageMeter(out_dir, list(tasks), price, None)
    return meter.write_summary()


def usage_table(doc: Mapping[str, Any]) -> list[str]:
    """Lines of a plain-text table of a usage summary: one row per task and the run's total."""
    head = f"{'task':<28} {'requests':>8} {'cached':>6} {'prompt':>9} {'compl.':>8} {'p50 s':>8} {'p95 s':>8} " \
           f"{'req/s':>8} {'cost USD':>10}"
    streamed = (doc.get("run") or {}).get("ttft_p50_s") is not None
    if streamed:  # time to first token, beside the latency, where replies were streamed
        head += f" {'TTFT p50':>9} {'TTFT p95':>9}"
    rows = [head]
    items = list(doc.get("tasks", {}).items()) + [("(run)", doc.get("run", {}))]
    for name, s in items:
        def f(v: Any, w: int, fmt: str = ".3f") -> str:
            return f"{'-':>{w}}" if v is None else f"{v:>{w}{fmt}}"
        rows.append(f"{name[:28]:<28} {s.get('requests', 0):>8} {s.get('cached', 0):>6} {s.get('prompt_tokens', 0):>9} "
                    f"{s.get('completion_tokens', 0):>8} {f(s.get('latency_p50_s'), 8)} {f(s.get('latency_p95_s'), 8)} "
                    f"{f(s.get('requests_per_s'), 8, '.1f')} {f(s.get('cost_usd'), 10, '.6f')}"
                    + (f" {f(s.get('ttft_p50_s'), 9)} {f(s.get('ttft_p95_s'), 9)}" if streamed else ""))
    return rows
