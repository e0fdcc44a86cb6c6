"""Model arguments that look like secrets: refused before anything is written, never echoed.

``--model-args`` are recorded in ``run.json`` and ``results.json`` (they can change results), so a
key passed there would be stored in plain text and shown by every later error. Keys reach the API
backend only through ``api_key_env=VAR`` (default ``OPENAI_API_KEY``) or ``api_key_file=PATH``.

Two rules: an argument whose *name* looks like a secret (:func:`is_secret_name`) is refused; an
argument whose *value* looks like a key whatever its name (:func:`looks_like_key`: ``sk-…``,
``hf_…``, ``ghp_…``, ``Bearer …``, a JWT, or a long high-entropy run of letters and digits) is
redacted wherever settings are written or shown (:func:`redact_args`). Which names a backend
accepts is checked before anything is written, too (:func:`chimed_eval.backends.check_backend_args`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Mapping

from chimed_eval.core.errors import ConfigError

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


#: well-known key shapes: OpenAI-style ``sk-``/``pk-``/``rk-``, Hugging Face, GitHub, Slack, AWS, a JWT,
#: and an HTTP ``Bearer`` credential
_KEY_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:(?:sk|pk|rk)[-_][A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{16,}|gh[pousr]_[A-Za-z0-9]{16,}"
    r"|github_pat_[A-Za-z0-9_]{16,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
    r"|\bbearer\s+\S{6,}", re.IGNORECASE)
#: a run of letters and digits this long, mixing both, with this much entropy per character, is a token
TOKEN_MIN_LEN, TOKEN_MIN_BITS = 20, 3.0
_HASH_LENGTHS = (40, 64)  # a git commit or a sha256 in hex: identities, not secrets


def _entropy(text: str) -> float:
    """Shannon entropy of the characters of ``text``, in bits per character."""
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def looks_like_key(value: Any) -> bool:
    """True when ``value`` holds what looks like a credential, whatever the argument is called: a
    known key shape (``sk-…``, ``hf_…``, ``Bearer …``, ...) or a run of at least
    :data:`TOKEN_MIN_LEN` letters and digits mixing both with at least :data:`TOKEN_MIN_BITS` bits
    of entropy per character (a 40- or 64-digit hex hash, a commit or sha256, is not one)."""
    text = str(value)
    if _KEY_SHAPES.search(text):
        return True
    for run in re.findall(r"[A-Za-z0-9]{%d,}" % TOKEN_MIN_LEN, text):
        if len(run) in _HASH_LENGTHS and re.fullmatch(r"[0-9a-fA-F]+", run):
            continue
        if re.search(r"[0-9]", run) and re.search(r"[A-Za-z]", run) and _entropy(run) >= TOKEN_MIN_BITS:
            return True
    return False


def is_secret_arg(name: str, value: Any) -> bool:
    """A secret-looking name (:func:`is_secret_name`) or value (:func:`looks_like_key`)."""
    return is_secret_name(name) or looks_like_key(value)


def redact_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with every value under a secret-looking name, or itself looking like a key,
    replaced by ``<redacted>``."""
    return {k: (REDACTED if is_secret_arg(k, v) else v) for k, v in args.items()}


def refuse_secret_args(args: Mapping[str, str], what: str = "--model-args") -> None:
    """Raise (without echoing any value) when an argument looks like a secret."""
    bad = sorted(k for k in args if is_secret_name(k))
    if bad:
        raise ConfigError(
            f"{what} {', '.join(k + '=' + REDACTED for k in bad)} refused: model args are recorded in "
            "run.json and results.json, so a secret must not be passed there. Give the API key through "
            "api_key_env=VARIABLE (default OPENAI_API_KEY) or api_key_file=PATH")
