"""The API key of the openai backend: where it is read, how it is kept out of every message, and
where it may be sent.

The key is read from an environment variable or a file, never from the command line; it is held
in a :class:`Secret` whose repr never shows it; every message the backend writes passes through a
:class:`Redactor`, which removes the key and its encodings (an ``Authorization`` header echoed
back by a server); and a ``base_url`` that carries credentials or the key, or that would send the
key in clear text to a host that is not loopback, is refused before any request.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import urllib.parse
from pathlib import Path
from typing import Iterable

from chimed_eval.core.errors import ConfigError

#: a run of this many characters of the key (or of its encodings) is redacted wherever it appears
REDACT_RUN = 8
#: a key shorter than this is not redacted on its own (it would blank ordinary text)
MIN_SECRET = 4
#: server bodies in messages are cut to this many characters (after redaction)
MAX_DETAIL = 200
REDACTED = "<redacted>"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class Secret:
    """Holds the API key; its repr and str never show it (tracebacks with locals, debuggers)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


class Redactor:
    """Removes a secret from text in every form a server or library may echo it.

    Exact forms first (the key, ``Bearer <key>``, their base64), then any run of
    :data:`REDACT_RUN` or more characters (ASCII case ignored) of the key, of its hex, or of its
    base64 at any of the three byte alignments (so ``base64("user:" + key)`` or a key with its
    last characters cut off is caught too). A secret shorter than the run is matched whole (from
    :data:`MIN_SECRET` characters; shorter ones only as ``Bearer <secret>``)."""

    def __init__(self, secrets: Iterable[str], run: int = REDACT_RUN) -> None:
        self.run = run
        self.exact: list[str] = []
        self.grams: set[str] = set()
        for s in secrets:
            if s:
                self._add(s)
        self.exact.sort(key=len, reverse=True)

    def _add(self, secret: str) -> None:
        raw = secret.encode("utf-8")
        forms = [secret, raw.hex()]
        self.exact.append("Bearer " + secret)
        if len(secret) >= MIN_SECRET:  # "1" is no secret, and would blank every digit 1
            self.exact.append(secret)
        for data in (raw, b"Bearer " + raw):
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                self.exact.append(enc(data).decode("ascii"))
        for pad in (0, 1, 2):  # base64 of the key after 0, 1 or 2 other bytes: the part only it decides
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                text = enc(b"\0" * pad + raw).decode("ascii").rstrip("=")
                forms.append(text[(4 if pad else 0): -4 if len(raw) % 3 or pad else None])
        for form in forms:
            low = form.translate(_ASCII_LOWER)
            if len(form) >= self.run:  # shorter: only the exact forms are matched
                self.grams.update(low[i: i + self.run] for i in range(len(low) - self.run + 1))

    def __call__(self, text: str) -> str:
        for e in self.exact:
            if e in text:
                text = text.replace(e, REDACTED)
        if not self.grams or len(text) < self.run:
            return text
        low = text.translate(_ASCII_LOWER)
        n = self.run
        hit = bytearray(len(text))
        for i in range(len(text) - n + 1):
            if low[i: i + n] in self.grams:
                hit[i: i + n] = b"\x01" * n
        if not any(hit):
            return text
        out, i = [], 0
        while i < len(text):
            if hit[i]:
                while i < len(text) and hit[i]:
                    i += 1
                out.append(REDACTED)
            else:
                j = i
                while j < len(text) and not hit[j]:
                    j += 1
                out.append(text[i:j])
                i = j
        return "".join(out)

    def clip(self, text: str, limit: int = MAX_DETAIL) -> str:
        """Redacted, on one line, at most ``limit`` characters (what a server says is only a hint)."""
        text = self(" ".join(text.split()))
        return text if len(text) <= limit else text[:limit] + "…"


def sanitise_url(url: str) -> str:
    """The URL without user info, query or fragment (what may appear in records and messages)."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = p.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path.rstrip("/"), "", ""))


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_key(args: dict[str, str]) -> str:
    """The key from ``api_key_file`` or the environment variable ``api_key_env`` names (default
    ``OPENAI_API_KEY``); empty when there is none."""
    if "api_key_file" in args:
        p = Path(args["api_key_file"]).expanduser()
        try:
            return p.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"cannot read api_key_file {str(p)!r}: {e.strerror}") from None
    env = args.get("api_key_env", "OPENAI_API_KEY")
    if not _ENV_NAME.match(env):  # perhaps the key itself, pasted in the wrong place: never echoed
        raise ConfigError("--model-args api_key_env= must name an environment variable (letters, digits, _) "
                          "that holds the key, not the key itself")
    return os.environ.get(env, "").strip()


def check_base_url(base_url: str, key: str, redact: Redactor) -> urllib.parse.SplitResult:
    """The parts of ``base_url`` once it is known to be a plain http(s) URL without credentials,
    query, fragment or the key (it is recorded in results.json)."""
    parts = urllib.parse.urlsplit(base_url)
    try:
        parts.port
    except ValueError:
        raise ConfigError(f"base_url {sanitise_url(base_url)!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base_url {sanitise_url(base_url)!r} is not an http(s) URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("base_url must be a plain URL without credentials, query or fragment (model args are "
                          "recorded in results.json); put the key in api_key_env or api_key_file")
    if len(key) >= REDACT_RUN and redact(base_url) != base_url:  # recorded in results.json
        raise ConfigError("base_url must not contain the API key: send it through api_key_env or api_key_file")
    return parts


def refuse_clear_text_key(parts: urllib.parse.SplitResult, safe_url: str, has_key: bool,
                          allow_insecure_http: bool) -> None:
    """Refuses to send a key over plain ``http://`` to a host that is not loopback, unless the
    user said the network is trusted."""
    if has_key and parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_http:
        raise ConfigError(f"base_url {safe_url!r} is plain http:// to a host that is not loopback: the "
                          "API key would be sent there in clear text. Use https://, or pass --model-args "
                          "allow_insecure_http=true if the network is trusted (no key, no refusal)")
