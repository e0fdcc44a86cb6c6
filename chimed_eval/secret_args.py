"""Model arguments that look like secrets: refused before anything is written, never echoed.

``--model-args`` are recorded in ``run.json`` and ``results.json`` (they can change results), so a
key passed there would be stored in plain text and shown by every later error. Keys reach the API
backend only through ``api_key_env=VAR`` (default ``OPENAI_API_KEY``) or ``api_key_file=PATH``.
"""

from __future__ import annotations

import re
from typing import Mapping

from .errors import ConfigError

#: argument names that only point at a secret (an environment variable, a file), never hold one
POINTERS = frozenset({"api_key_env", "api_key_file", "token_env", "token_file"})

_SECRET_NAME = re.compile(
    r"^(api_?key|key|token|secret|password|passwd|pwd|authorization|auth|bearer|credentials?|cookie"
    r"|.*_(api_?key|key|token|secret|password|passwd|credentials?)|(api|access|auth|bearer|hf|openai)_?.*token.*)$"
)

REDACTED = "<redacted>"


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def is_secret_name(name: str) -> bool:
    """True for ``api_key``, ``API_KEY``, ``apikey``, ``token``, ``key``, ``Authorization``,
    ``hf_token``, ``openai_api_key``...; False for pointers (``api_key_env``) and for ordinary
    settings such as ``max_new_tokens`` or ``chat_format``."""
    n = _norm(name)
    return n not in POINTERS and bool(_SECRET_NAME.match(n))


def redact_args(args: Mapping[str, str]) -> dict[str, str]:
    """A copy with every secret-looking value replaced by ``<redacted>``."""
    return {k: (REDACTED if is_secret_name(k) else v) for k, v in args.items()}


def refuse_secret_args(args: Mapping[str, str], what: str = "--model-args") -> None:
    """Raise (without echoing any value) when an argument looks like a secret."""
    bad = sorted(k for k in args if is_secret_name(k))
    if bad:
        raise ConfigError(
            f"{what} {', '.join(k + '=' + REDACTED for k in bad)} refused: model args are recorded in "
            "run.json and results.json, so a secret must not be passed there. Give the API key through "
            "api_key_env=VARIABLE (default OPENAI_API_KEY) or api_key_file=PATH")
