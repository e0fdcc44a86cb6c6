"""Command-line value lists: ``k=v,k2=v2`` settings and comma-separated names.

Shared by every command that takes ``--model-args``, ``--task-args``, ``--judge-args`` or a list of
names, so the parsing (and its refusal to echo a part that may be a secret) lives in one place.
"""

from __future__ import annotations

from chimed_eval.core.errors import ConfigError


def parse_kv(text: str | None, what: str) -> dict[str, str]:
    """``k=v,k2=v2`` -> dict (values may contain ';' or '|' lists)."""
    out: dict[str, str] = {}
    if not text:
        return out
    for i, part in enumerate(text.split(","), 1):
        if not part.strip():
            continue
        if "=" not in part:
            # the text is not echoed: it may be a secret pasted without its name
            raise ConfigError(f"{what}: part {i} is not key=value ({len(part.strip())} characters, not shown)")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def split_csv(text: str | None) -> list[str]:
    """A comma-separated list (``--tasks a,b``, ``--formats md,csv``), blanks dropped."""
    return [x.strip() for x in (text or "").split(",") if x.strip()]
