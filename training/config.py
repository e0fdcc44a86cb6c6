"""Configuration: YAML files into dataclasses (unknown keys are errors, with a did-you-mean),
dotted overrides, and the translation of the shared training settings into transformers
``TrainingArguments`` keywords (precision, gradient checkpointing, attention implementation,
DeepSpeed ZeRO). ``train:`` also takes any other ``TrainingArguments`` field (TRL's configs
subclass it), passed to the trainer as it is; transformers is imported only to check such a key."""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from chimed_eval.core.errors import ConfigError

MAX_BLOCK = 4096


@dataclass
class Source:
    """One data source: your own JSONL file (``path``) or a built-in set (``builtin``, see
    :mod:`chimed_eval.training.data`), ``split`` for built-ins, ``weight`` its share in a mixture, ``limit``
    the first N records (in the source's fixed order)."""

    path: str | None = None
    builtin: str | None = None
    split: str | None = None
    weight: float = 1.0
    limit: int | None = None
    kind: str | None = None  # reward pairs: a label reported apart (e.g. easy / hard)

    def label(self) -> str:
        return self.path or f"{self.builtin}:{self.split or ''}"


@dataclass
class TrainSettings:
    """What every stage's trainer shares. ``deepspeed``: null, ``zero2``, ``zero3`` or a JSON
    file; ``offload``: none | optimizer | all (optimizer and, for ZeRO-3, parameters to CPU);
    ``precision``: auto (bf16 where the GPU has it, else fp32) | bf16 | fp16 | fp32;
    ``attn_implementation``: auto (flash_attention_2 when installed on a GPU, else sdpa) or a
    transformers name. ``max_steps`` > 0 wins over ``epochs``. Any other ``TrainingArguments``
    field (``neftune_noise_alpha``, ``optim``, ``warmup_ratio``, ...) given here lands in
    ``trainer_args`` and is passed to the trainer as it is; the fields these settings translate
    (``per_device_train_batch_size``, ``bf16``, ...) are refused, naming the setting to use."""

    passthrough: ClassVar[str] = "trainer_args"  # from_dict: where other TrainingArguments fields go

    max_steps: int = 100
    epochs: float = 1.0
    learning_rate: float = 5e-5
    lr_scheduler_type: str = "cosine"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    batch_size: int = 4  # per device
    grad_accum: int = 1
    max_length: int = 256
    seed: int = 0
    logging_steps: int = 10
    save_steps: int = 0  # 0: save only at the end
    save_total_limit: int | None = 2
    resume: bool = False  # resume from the latest checkpoint-* in output_dir
    precision: str = "auto"
    gradient_checkpointing: bool = False
    attn_implementation: str = "auto"
    deepspeed: str | None = None
    offload: str = "none"
    use_cpu: bool = False
    report_to: str = "none"
    max_grad_norm: float = 1.0
    #: training records sharing a 13-gram with a test item of a task not in the stage's
    #: allow_eval_overlap: "drop" them (counted in the stage report) or "refuse" the stage
    eval_ngram_overlap: str = "drop"
    trainer_args: dict[str, Any] = field(default_factory=dict)


# TrainingArguments fields that the settings above (or the stage) set: the name to use instead
TRANSLATED = {"output_dir": "the stage's output_dir", "per_device_train_batch_size": "train.batch_size",
              "per_device_eval_batch_size": "train.batch_size", "gradient_accumulation_steps": "train.grad_accum",
              "num_train_epochs": "train.epochs", "bf16": "train.precision", "fp16": "train.precision",
              "data_seed": "train.seed", "save_strategy": "train.save_steps", "resume_from_checkpoint": "train.resume"}


@lru_cache(maxsize=1)
def trainer_argument_types() -> dict[str, Any]:
    """Every ``transformers.TrainingArguments`` field and its type (imports transformers)."""
    from transformers import TrainingArguments

    try:
        hints = typing.get_type_hints(TrainingArguments)
    except Exception:  # an annotation this Python cannot evaluate: values pass unchecked
        hints = {}
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(TrainingArguments) if f.init}


def _passthrough(extra: dict[str, Any], where: str) -> dict[str, Any]:
    """``extra`` as trainer arguments: each key a TrainingArguments field not translated above,
    each value converted to its field's type."""
    types_ = trainer_argument_types() if extra else {}
    out = {}
    for k, v in extra.items():
        if k in TRANSLATED:
            raise ConfigError(f"{where}.{k}: set {TRANSLATED[k]} instead")
        if k not in types_:
            raise ConfigError(f"{where}.{k}: not a transformers TrainingArguments field{_did_you_mean(k, types_)}")
        out[k] = _convert(types_[k], v, f"{where}.{k}")
    return out


def _did_you_mean(key: str, names: Any) -> str:
    close = difflib.get_close_matches(key, list(names), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


# --- YAML -> dataclasses --------------------------------------------------------------------------


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for a in inner:
            try:
                return _convert(a, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is Any:
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool, float):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a mapping; unknown or missing keys name their place."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    passthrough = getattr(cls, "passthrough", None)
    if passthrough and (unknown or data.get(passthrough)):  # other TrainingArguments fields: into that dict
        given = data.get(passthrough) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{where}.{passthrough}: expected a mapping, got {given!r}")
        moved = [k for k in unknown if k in trainer_argument_types()]
        unknown = [k for k in unknown if k not in moved]
        if not unknown:
            args = _passthrough({**given, **{k: data[k] for k in moved}}, where)
            data = {**{k: v for k, v in data.items() if k not in moved}, passthrough: args}
    if unknown:
        known = dict.fromkeys([*names, *(trainer_argument_types() if passthrough else ())])
        also = " or any transformers TrainingArguments field" if passthrough else ""
        raise ConfigError(f"{where}: unknown key(s) " + ", ".join(k + _did_you_mean(k, known) for k in unknown)
                          + f"; known: {', '.join(sorted(names))}{also}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            raise ConfigError(f"{where}: missing required key {f.name!r}")
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def load_yaml(path: str | Path) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping")
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``a.b.c=value`` (value parsed as YAML: numbers, true/false, null, lists) into ``data``."""
    import yaml

    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key.path=value")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"override {item!r}: empty key")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a mapping")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def save_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


# --- models -----------------------------------------------------------------------------------------


def model_dir(spec: str) -> str:
    """A preset (``smollm2-135m``), a local transformers directory, a .gguf file or a hub id, as
    the directory (or hub id) transformers loads: the evaluation package's own resolution."""
    from chimed_eval.models.resolve import resolve_model

    return resolve_model(spec).path


def flash_attention_available() -> bool:
    import importlib.util

    import torch

    return importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()


def attention(name: str) -> str:
    if name != "auto":
        return name
    return "flash_attention_2" if flash_attention_available() else "sdpa"


def precision_flags(name: str) -> dict[str, bool]:
    import torch

    if name == "auto":
        name = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    if name not in ("bf16", "fp16", "fp32"):
        raise ConfigError(f"train.precision: {name!r}; choose auto, bf16, fp16 or fp32")
    return {"bf16": name == "bf16", "fp16": name == "fp16"}


def training_kwargs(t: TrainSettings, output_dir: str) -> dict[str, Any]:
    """Keywords shared by ``TrainingArguments`` and TRL's configs."""
    from .deepspeed import deepspeed_config

    kw: dict[str, Any] = dict(
        output_dir=output_dir, max_steps=t.max_steps if t.max_steps > 0 else -1, num_train_epochs=t.epochs,
        learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler_type, warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay, per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum, seed=t.seed, data_seed=t.seed, logging_steps=t.logging_steps,
        save_strategy="steps" if t.save_steps > 0 else "no", save_total_limit=t.save_total_limit,
        gradient_checkpointing=t.gradient_checkpointing, report_to=t.report_to, use_cpu=t.use_cpu,
        max_grad_norm=t.max_grad_norm, dataloader_num_workers=0, remove_unused_columns=False,
        **precision_flags(t.precision),
    )
    if t.save_steps > 0:
        kw["save_steps"] = t.save_steps
    if t.gradient_checkpointing:
        kw["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    if t.eval_ngram_overlap not in ("drop", "refuse"):
        raise ConfigError(f"train.eval_ngram_overlap {t.eval_ngram_overlap!r}: choose drop or refuse")
    if t.deepspeed:
        kw["deepspeed"] = deepspeed_config(t.deepspeed, t.offload)
    elif t.offload != "none":
        raise ConfigError("train.offload needs train.deepspeed (zero2 or zero3)")
    kw.update(_passthrough(t.trainer_args, "train"))  # checked again: a config built in Python skips from_dict
    return kw


def resume_checkpoint(t: TrainSettings, output_dir: str) -> str | None:
    if not t.resume:
        return None
    from transformers.trainer_utils import get_last_checkpoint

    d = Path(output_dir)
    last = get_last_checkpoint(str(d)) if d.is_dir() else None
    if last is None:
        print(f"[resume] no checkpoint in {d}: starting from the beginning")
    return last


def stage_section(data: dict, name: str, cls: type, where: str) -> Any:
    if name not in data:
        raise ConfigError(f"{where}: no '{name}:' section")
    return from_dict(cls, data[name], f"{where}:{name}")

