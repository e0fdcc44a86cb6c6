"""The options of the openai backend read from ``--model-args``: numbers and booleans checked
with messages naming the key, the system prompt, and the API model a preset or name stands for
(:mod:`chimed_eval.backends.openai` documents each option)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from chimed_eval.core.errors import ConfigError


def arg_float(args: dict[str, str], key: str, default: Any, positive: bool = False) -> Any:
    """``args[key]`` as a number (``positive``: > 0), else ``default``."""
    if key not in args:
        return default
    try:
        value = float(args[key])
    except ValueError:
        raise ConfigError(f"--model-args {key}= expects a number, got {args[key][:40]!r}") from None
    if math.isnan(value) or (positive and not value > 0):
        raise ConfigError(f"--model-args {key}= expects a {'positive ' if positive else ''}number, "
                          f"got {args[key][:40]!r}")
    return value


def arg_bool(args: dict[str, str], key: str, default: bool) -> bool:
    """``args[key]`` as true/false (1/0, yes/no, on/off), else ``default``."""
    if key not in args:
        return default
    value = args[key].strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"--model-args {key}= expects true or false, got {args[key][:40]!r}")


def system_prompt_arg(args: dict[str, str], default: str | None) -> str | None:
    """The system prompt: ``system_prompt_file``'s text, ``system_prompt`` (``none``: none), else ``default``."""
    if "system_prompt_file" in args:
        p = Path(args["system_prompt_file"]).expanduser()
        try:
            return p.read_text(encoding="utf-8").strip() or None
        except OSError as e:
            raise ConfigError(f"cannot read system_prompt_file {str(p)!r}: {e.strerror}") from None
    if "system_prompt" in args:
        v = args["system_prompt"]
        return None if v.strip().lower() in ("", "none") else v
    return default


def resolve_api_model(model: Any) -> tuple[str | None, str, str | None, str]:
    """(preset name or None, API model name, default system prompt, default endpoint) for a
    preset name, a ResolvedModel, or a plain API model name."""
    from chimed_eval.models.presets import BASELINES

    name = model if isinstance(model, str) else getattr(model, "name", None)
    if name in BASELINES:
        b = BASELINES[name]
        return name, b.source, b.system_prompt, "chat"
    if isinstance(model, str):
        return None, model, None, "chat"
    path = getattr(model, "path", None) or name
    return (name if name != path else None), str(path), None, "chat"
