"""Reading the settings of a user's own task, shared by every configurable task type.

A user's task is described by ``--task-args k=v,...`` or by a JSON/TOML ``--task-config`` file
(one task, or ``tasks = [...]`` with top-level defaults). The mcq, ner and scale types read them
through these functions, so a key is spelled, checked and reported the same way everywhere:
keys are trimmed, ``-`` becomes ``_`` (``fmt`` means ``format``, ``file`` means ``path``), an
unknown key names the closest known one, and every error names the file (or ``--task-args``) and
the key at fault.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.files.text import read_task_config

#: the task kinds a ``--task-config`` entry's ``type`` may name (default mcq)
CONFIG_TYPES = ("mcq", "ner", "qa", "dialogue")
#: the other names a key may be given under
KEY_ALIASES = {"fmt": "format", "file": "path"}
#: a converter of one key's value: (value, where) -> value, raising ConfigError
Converter = Callable[[Any, str], Any]


def normalize_key(raw: object) -> str:
    key = str(raw).strip().replace("-", "_")
    return KEY_ALIASES.get(key, key)


def split_list(s: str, seps: str = ";|") -> list[str]:
    """``a;b|c`` -> ``["a", "b", "c"]`` (empty parts dropped)."""
    return [p.strip() for p in re.split(f"[{re.escape(seps)}]", s) if p.strip()]


def unknown_key(key: str, known: Sequence[str], where: str, what: str = "") -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{where}unknown key {key!r}{what}.{hint} Known: {', '.join(known)}")


def text_value(key: str, v: Any, where: str, *, strip: bool = True) -> str:
    """A string setting: trimmed and non-empty unless ``strip`` is False (a separator)."""
    if not isinstance(v, str):
        raise ConfigError(f"{where}key {key!r}: expected a string, got {v!r}")
    if not strip:
        return v
    v = v.strip()
    if not v:
        raise ConfigError(f"{where}key {key!r} is empty")
    return v


def coerce_settings(values: Mapping[str, Any], where: str, known: Sequence[str], converters: Mapping[str, Converter],
                    *, need_path: str, what: str = "", skip: Sequence[str] = ()) -> dict[str, Any]:
    """Check and convert one task's settings: every key known (``skip`` ones dropped), given
    once, converted by its converter (default: :func:`text_value`); ``path`` required
    (``need_path`` is the message that says so)."""
    out: dict[str, Any] = {}
    for raw_key, v in values.items():
        key = normalize_key(raw_key)
        if key in skip:
            continue
        if key not in known:
            raise unknown_key(str(raw_key), known, where, what)
        if key in out:
            raise ConfigError(f"{where}key {key!r} is given twice")
        convert = converters.get(key)
        out[key] = convert(v, where) if convert is not None else text_value(key, v, where)
    if "path" not in out:
        raise ConfigError(f"{where}{need_path}")
    return out


#: characters a task name may not hold: it names files (samples/<name>.jsonl) and appears in HTML and shell lines
_BAD_NAME_CHARS = re.compile(r"[\s/\\<>&\"'`\x00-\x1f\x7f]")


def check_task_name(name: str, what: str = "task name") -> str:
    """``name``, or ConfigError when it is empty, starts with a dot, or holds whitespace, a slash,
    a control character or one of ``< > & " ' ` `` (``ev<!--<script>`` is refused)."""
    if not name or name.startswith(".") or _BAD_NAME_CHARS.search(name):
        raise ConfigError(f"{what} {name!r} must be non-empty, not start with '.', and hold no spaces, slashes, "
                          "control characters or any of < > & \" ' `")
    return name


def load_config_file(path: Path) -> Any:
    """The parsed JSON (``.json``) or TOML (anything else) document; ConfigError naming the file
    and line when it cannot be read or parsed."""
    try:
        text = read_task_config(path).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: cannot read the task config: {e}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise ConfigError(f"{path}: reading TOML on Python 3.10 needs tomli (pip install tomli), or use JSON") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None


def config_entries(path: Path) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """(top-level defaults, [(where, entry)]) of a task config: one task, or ``tasks = [...]``
    whose other top-level keys are defaults for every task."""
    doc = load_config_file(path)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a table/object of task settings, or one with a 'tasks' list")
    if "tasks" not in doc:
        return {}, [(f"{path}: ", doc)]
    entries = doc["tasks"]
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path}: key 'tasks' must be a non-empty list of tables/objects")
    return {k: v for k, v in doc.items() if k != "tasks"}, [(f"{path}: tasks[{i}]: ", e) for i, e in enumerate(entries)]


def resolve_paths(values: dict[str, Any], keys: Sequence[str], base: Path) -> dict[str, Any]:
    """``~`` expanded, and relative ``keys`` resolved against ``base`` (the config file's folder)."""
    out = dict(values)
    for k in keys:
        if k in out:
            p = os.path.expanduser(out[k])
            out[k] = p if os.path.isabs(p) else str(base / p)
    return out


def flag_converter(key: str) -> Converter:
    """A converter for a true/false setting (a TOML boolean, or true/yes/1 / false/no/0 as text)."""
    def convert(v: Any, where: str) -> bool:
        if isinstance(v, bool):
            return v
        low = v.strip().lower() if isinstance(v, str) else None
        if low in ("true", "yes", "1"):
            return True
        if low in ("false", "no", "0"):
            return False
        raise ConfigError(f"{where}key {key!r}: expected true or false, got {v!r}")
    return convert


def entry_type(entry: Mapping[str, Any], where: str) -> str:
    """A config entry's ``type`` (default mcq), one of :data:`CONFIG_TYPES`."""
    kind = str(entry.get("type", "mcq")).strip().lower()
    if kind not in CONFIG_TYPES:
        raise ConfigError(f"{where}key 'type': expected one of {', '.join(map(repr, CONFIG_TYPES))}, got {entry['type']!r}")
    return kind


def typed_entries(path: Path, kind: str, known: Sequence[str], converters: Mapping[str, Converter],
                  *, need_path: str) -> list[dict[str, Any]]:
    """The checked settings of a config file's ``type = kind`` entries: top-level defaults that
    ``kind`` knows, then the entry's own keys; ``path`` resolved against the file's folder."""
    path = Path(path)
    defaults, entries = config_entries(path)
    out = []
    for where, e in entries:
        if entry_type({**defaults, **e}, where) != kind:
            continue
        merged = {**{k: v for k, v in defaults.items() if normalize_key(k) in known}, **e}
        values = coerce_settings(merged, where, known, converters, need_path=need_path, what=f" for a {kind} task",
                                 skip=("type",))
        out.append(resolve_paths(values, ("path",), path.parent))
    return out
