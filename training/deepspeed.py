"""DeepSpeed ZeRO stage 2 and 3 configurations (optionally offloading to CPU), in the form the
transformers ``Trainer`` integration fills in: ``"auto"`` values take the ``TrainingArguments``
(batch sizes, gradient accumulation and clipping, bf16/fp16).

On a CPU-only machine set ``DS_ACCELERATOR=cpu`` (``chimed-train`` does it when no GPU is
visible); processes then talk over gloo. ``offload`` moves the optimizer state (ZeRO-2 and 3) and
the parameters (ZeRO-3, ``all``) to CPU memory; DeepSpeed then needs its CPU Adam extension.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chimed_eval.core.errors import ConfigError

OFFLOADS = ("none", "optimizer", "all")


def zero_config(stage: int, offload: str = "none") -> dict[str, Any]:
    if stage not in (2, 3):
        raise ConfigError(f"ZeRO stage {stage}: only 2 and 3 are provided")
    if offload not in OFFLOADS:
        raise ConfigError(f"train.offload: {offload!r}; choose one of {', '.join(OFFLOADS)}")
    zero: dict[str, Any] = {"stage": stage, "overlap_comm": False, "contiguous_gradients": True}
    if stage == 2:
        zero.update(allgather_partitions=True, reduce_scatter=True, allgather_bucket_size=int(5e8),
                    reduce_bucket_size="auto")
    else:
        zero.update(reduce_bucket_size="auto", stage3_prefetch_bucket_size="auto",
                    stage3_param_persistence_threshold="auto", stage3_gather_16bit_weights_on_model_save=True)
    if offload in ("optimizer", "all"):
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if offload == "all":
        if stage != 3:
            raise ConfigError("train.offload: all (parameters to CPU) needs ZeRO-3")
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "zero_optimization": zero,
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        # The Trainer builds torch's AdamW (no fused CUDA/CPU extension to compile).
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 1,
        "wall_clock_breakdown": False,
    }


def deepspeed_config(spec: str, offload: str = "none") -> dict[str, Any]:
    """``zero2`` / ``zero3`` (built here) or a JSON file of your own."""
    if spec in ("zero2", "zero3"):
        return zero_config(int(spec[-1]), offload)
    p = Path(spec)
    if not p.is_file():
        raise ConfigError(f"train.deepspeed: {spec!r} is neither zero2, zero3 nor a JSON file")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: not valid JSON: {e}") from None


def prepare_environment() -> None:
    """DeepSpeed on a machine without a GPU: its CPU accelerator (gloo unless oneCCL is installed)."""
    import os

    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
