"""Data-parallel evaluation: N shards of the items, one engine per shard, merged into one output.

``chimed-eval run ... --data-parallel N`` starts N copies of the same command with ``--shard i/N``
(each its own process and engine: an hf model or a vLLM engine; on GPUs each copy sees its own
group of ``tensor_parallel_size`` devices through ``CUDA_VISIBLE_DEVICES``), waits for them, and
merges their output directories (``OUT/shards/i-of-N``) into OUT with :mod:`chimed_eval.engine.merge`.
There is no scheduler: a shard is a fixed, interleaved subset of every task's items, so the merge
is exact and a failed shard is resumed by running the same command again (finished shards and
finished items are kept). Across nodes, start one ``--shard i/N`` (or ``--shard auto`` under
torchrun, SLURM or vLLM's data-parallel launcher) per node and run ``chimed-eval merge``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from chimed_eval.core.errors import ConfigError

#: (rank, size) environment variables of the launchers --shard auto understands, in this order
LAUNCHER_ENV = (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"), ("VLLM_DP_RANK", "VLLM_DP_SIZE"))


def shard_from_env(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ if env is None else env)
    for rank, size in LAUNCHER_ENV:
        if rank in env and size in env:
            return f"{int(env[rank])}/{int(env[size])}"
    raise ConfigError("--shard auto: no launcher environment found (" +
                      ", ".join(f"{r}/{s}" for r, s in LAUNCHER_ENV) + "); give --shard I/N")


def shard_dir(output: Path, spec: str) -> Path:
    """``{shard}`` in --output becomes ``I-of-N``."""
    from chimed_eval.engine.runner import parse_shard

    i, n = parse_shard(spec)
    return Path(str(output).replace("{shard}", f"{i}-of-{n}"))


def _gpus(env: dict[str, str]) -> list[str]:
    vis = env.get("CUDA_VISIBLE_DEVICES")
    if vis is not None:
        return [d for d in vis.split(",") if d.strip() != ""]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def child_envs(n: int, per_shard_devices: int, env: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Environments of the N shard processes: disjoint GPU groups where there are GPUs, else an
    even share of the CPU threads."""
    base = dict(os.environ if env is None else env)
    gpus = _gpus(base)
    out = []
    if gpus:
        need = n * per_shard_devices
        if need > len(gpus):
            raise ConfigError(f"--data-parallel {n} with {per_shard_devices} GPU(s) per engine needs {need} GPUs; "
                              f"{len(gpus)} visible")
        for i in range(n):
            e = dict(base)
            e["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[i * per_shard_devices:(i + 1) * per_shard_devices])
            out.append(e)
        return out
    threads = max(1, (os.cpu_count() or 1) // n)
    for _ in range(n):
        e = dict(base)
        e.setdefault("OMP_NUM_THREADS", str(threads))
        out.append(e)
    return out


def run_data_parallel(argv: Sequence[str], n: int, output: Path, per_shard_devices: int) -> list[Path]:
    """Run the shards (the command line ``argv`` with --shard i/N --output OUT/shards/i-of-N) and
    return their directories; raises ConfigError naming the shards that failed and their logs."""
    envs = child_envs(n, per_shard_devices)
    dirs = [output / "shards" / f"{i}-of-{n}" for i in range(n)]
    procs = []
    for i, (d, env) in enumerate(zip(dirs, envs)):
        d.parent.mkdir(parents=True, exist_ok=True)
        log = open(d.parent / f"{i}-of-{n}.log", "ab")
        cmd = [sys.executable, "-m", "chimed_eval.cli.app", *argv, "--data-parallel", "1", "--shard", f"{i}/{n}",
               "--output", str(d), "--no-progress"]
        procs.append((i, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
    failed = []
    for i, p, log in procs:
        rc = p.wait()
        log.close()
        if rc != 0:
            failed.append((i, rc))
    if failed:
        raise ConfigError("data-parallel shards failed: " + ", ".join(
            f"{i}-of-{n} (exit {rc}, log {output / 'shards' / f'{i}-of-{n}.log'})" for i, rc in failed)
            + "; run the same command again to resume them")
    return dirs
