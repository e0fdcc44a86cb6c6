"""Shards for launchers outside chimed-eval: ``--shard I/N``, ``--shard auto`` and ``{shard}`` in --output.

A shard is a fixed, interleaved subset of every task's items, so ``chimed-eval merge`` of the N
shard directories is exact and a failed shard is resumed by running its command again. Under a
launcher (SLURM arrays, torchrun, vLLM's data-parallel launcher) start one ``--shard auto`` per
process and merge afterwards. ``--data-parallel N`` on one machine or a Ray cluster runs the same
shards as Ray workers (:func:`chimed_eval.engine.distribute.run_shards`).
"""

from __future__ import annotations

import os
from pathlib import Path

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
