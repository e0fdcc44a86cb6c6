#!/usr/bin/env python
"""Where the time of one ``chimed-eval run`` goes: a whole run in this process, split into phases.

The run is the real command (``chimed_eval.cli.app.main(["run", ...])``), not a copy of it: the
phases are measured by wrapping the functions that do each job, each wrapper counting its own time
less that of the wrapped calls inside it (so nothing is counted twice):

* process start: from the kernel's start of this process to the first line of this script
  (the interpreter and ``site``), read from ``/proc/self/stat``;
* imports: the command line, torch and transformers (and, lazily, the model's own module);
* model load: resolving the model and loading tokenizer and weights (``HFBackend.__init__``);
* load-time checks: the backend's one-off exactness checks (partial output layer, prefix cache);
* prompt building: loading the items and rendering every request (``runner.prepare``);
* tokenization: every ``tokenizer.encode`` call of the backend;
* forward: prefix: the shared few-shot prefixes' key/value caches, once per subject;
* forward: items: each batch's forward pass on top of its prefix (rows packed end to end, or padded
  with the output layer included when packing is off or does not apply);
* prefix cache views: handing the stored prefix to a batch (``PrefixKV.for_rows``);
* log-softmax and picks: the rest of the backend's batch work (tensors in, floats out);
* scoring: the task's per-item scoring and the aggregate figures;
* writing: the samples file and ``results.json``;
* other: everything else in the wall time (the runner's loop, argument parsing, exit).

Run it alone on the machine (the figures move with other load), from the repository root::

    python benchmarks/where_time_goes.py --model smollm2-135m --shots 5 --limit 43

``--limit N`` scores the first N items of each of the seven subjects (as
``benchmarks/lmeval_parity.py`` does, with trimmed copies of the CSVs).
"""

from __future__ import annotations

import time

T_SCRIPT = time.time()  # before any import of ours

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

PHASES = ("process start", "imports", "model load", "load-time checks", "prompt building", "tokenization",
          "forward: prefix", "forward: items", "prefix cache views", "log-softmax and picks", "scoring",
          "writing", "other")


def process_start_epoch() -> float | None:
    """When the kernel started this process (seconds since the epoch), or None off Linux."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # starttime, field 22, counted from the ')' that ends field 2
        boot = next(float(x.split()[1]) for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


class Clock:
    """Exclusive time per phase: a wrapped call's time less that of the wrapped calls inside it."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.calls: dict[str, int] = dict.fromkeys(PHASES, 0)
        self._stack: list[list[float]] = []  # [start, time spent in children]

    def wrap(self, phase: str, fn: Callable) -> Callable:
        def timed(*a: Any, **kw: Any) -> Any:
            self._stack.append([time.perf_counter(), 0.0])
            try:
                return fn(*a, **kw)
            finally:
                start, inner = self._stack.pop()
                took = time.perf_counter() - start
                self.spent[phase] += took - inner
                self.calls[phase] += 1
                if self._stack:
                    self._stack[-1][1] += took

        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed

    def patch(self, owner: Any, name: str, phase: str) -> None:
        setattr(owner, name, self.wrap(phase, getattr(owner, name)))


def instrument(clock: Clock) -> None:
    """Wrap the functions of each phase (classes and modules as the run will call them)."""
    from chimed_eval.backends import hf, packed_attention, prefix_kv, tokens
    from chimed_eval.engine import runner
    from chimed_eval.models import resolve
    from chimed_eval.runs import records
    from chimed_eval.task import multiple_choice

    clock.patch(resolve, "resolve_model", "model load")
    clock.patch(hf.HFBackend, "__init__", "model load")
    clock.patch(hf.HFBackend, "_check_partial_head", "load-time checks")
    clock.patch(hf.HFBackend, "_check_prefix_cache", "load-time checks")
    clock.patch(hf.HFBackend, "_check_packed", "load-time checks")
    clock.patch(runner, "prepare", "prompt building")
    clock.patch(tokens.TokenizedBackend, "encode", "tokenization")
    clock.patch(hf.HFBackend, "_compute_prefix", "forward: prefix")
    clock.patch(prefix_kv.PrefixKV, "for_rows", "prefix cache views")
    clock.patch(hf.HFBackend, "_logits_at", "forward: items")  # padded rows
    clock.patch(packed_attention, "packed_hidden", "forward: items")  # packed rows (the default on CPU)
    clock.patch(prefix_kv.PrefixKV, "split_kv", "prefix cache views")
    clock.patch(hf.HFBackend, "_forward_group", "log-softmax and picks")
    for cls in {c for c in vars(multiple_choice).values() if isinstance(c, type) and "score" in vars(c)}:
        clock.patch(cls, "score", "scoring")
    clock.patch(runner, "task_result", "scoring")
    clock.patch(records.SampleStore, "append", "writing")
    clock.patch(records.SampleStore, "finalize", "writing")
    clock.patch(runner, "write_json_atomic", "writing")


def table(clock: Clock, wall: float, header: str) -> str:
    known = sum(v for k, v in clock.spent.items() if k != "other")
    clock.spent["other"] = max(0.0, wall - known)
    lines = [header, f"{'phase':<24}{'seconds':>9}{'share':>8}{'calls':>8}", "-" * 49]
    for k in PHASES:
        calls = str(clock.calls[k]) if clock.calls[k] else ""
        lines.append(f"{k:<24}{clock.spent[k]:>9.2f}{100 * clock.spent[k] / wall:>7.1f}%{calls:>8}")
    lines += ["-" * 49, f"{'wall (process start to end)':<33}{wall:>9.2f}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # the workload of benchmarks/lmeval_parity.py's speed comparison by default
    for flag, default in (("--model", "smollm2-135m"), ("--task", "cmmlu-medical-paper"), ("--variant", "lm-eval"),
                          ("--dtype", "float32")):
        ap.add_argument(flag, default=default)
    for flag, number in (("--shots", 5), ("--batch-size", 8)):
        ap.add_argument(flag, type=int, default=number)
    ap.add_argument("--limit", type=int, default=43, help="first N items of each subject (0: all)")
    ap.add_argument("--data-dir", default=os.environ.get("CHIMED_EVAL_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--model-args", default=None, help="passed on, e.g. prefix_cache=false to compare")
    args = ap.parse_args(argv)
    t0 = process_start_epoch() or T_SCRIPT

    clock = Clock()
    t_imports = time.perf_counter()
    from chimed_eval.cli.app import main as cli_main  # the command line, then what a run imports
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoModelForCausalLM  # noqa: F401

    clock.spent["imports"] += time.perf_counter() - t_imports
    clock.spent["process start"] = T_SCRIPT - t0
    instrument(clock)

    tmp = Path(tempfile.mkdtemp(prefix="where_time_goes_"))
    data_dir = Path(args.data_dir)
    if args.limit and args.task == "cmmlu-medical-paper":
        import lmeval_parity

        data_dir = lmeval_parity.make_data_dir(data_dir, tmp / "data", args.limit)
    cmd = ["run", "--model", args.model, "--tasks", args.task, "--variant", args.variant, "--shots", str(args.shots),
           "--batch-size", str(args.batch_size), "--dtype", args.dtype, "--device", "cpu", "--output", str(tmp / "out"),
           "--data-dir", str(data_dir), "--no-progress", "--no-cache"]
    if args.model_args:
        cmd += ["--model-args", args.model_args]
    try:
        rc = cli_main(cmd)
        wall = time.time() - t0
        if rc:
            raise SystemExit(f"chimed-eval run failed (exit {rc})")
        n = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in (tmp / "out" / "samples").glob("*.jsonl"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    import torch

    head = (f"{args.model}, {args.task} --variant {args.variant}, {args.shots}-shot, {n} items, batch "
            f"{args.batch_size}, {args.dtype}, {torch.get_num_threads()} threads; {platform.node()} "
            f"({os.cpu_count()} CPUs), {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(table(clock, wall, head))
    return 0


if __name__ == "__main__":
    sys.exit(main())
