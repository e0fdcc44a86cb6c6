"""Decoding the JSON and JSONL files of an output directory, with errors that name the file.

The one place where the runs layer turns bytes into JSON values: :mod:`chimed_eval.runs.reader`
(the one reader of runs, which re-exports both functions), the output directory's own checks
(:mod:`chimed_eval.runs.outdir`, :mod:`chimed_eval.runs.integrity`, :mod:`chimed_eval.runs.resume`)
and the record stores all read through here, so a corrupt file reads the same everywhere:

* :func:`read_json_file` — one JSON document; ConfigError naming the file (and the line of a JSON
  error) when it is missing, unreadable, not UTF-8, not JSON or nested too deeply;
* :func:`read_jsonl` — the records of a JSONL file in file order, skipping the torn last line a
  killed write leaves (that item is recomputed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from chimed_eval.core.errors import ConfigError

#: what to do about a corrupt file that a run writes itself into OUT (run.json, results.json,
#: judge.json, merged_from.json): a new run would otherwise build on it
OUT_FIX = "move it away or use a new --output"


def read_json_file(path: Path, fix: str | None = None) -> Any:
    """The JSON document in ``path``; anything unreadable is a ConfigError naming the file: not
    found, unreadable, not UTF-8 (with the offending byte and offset), invalid JSON (with the line),
    nested too deeply.

    ``fix``: for a file a run wrote into OUT itself (see :data:`OUT_FIX`), the message calls it
    corrupt and says what to do; without, the file was given to be read and is just invalid."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        where = f"byte 0x{data[e.start:e.start + 1].hex()} at offset {e.start}"
        raise ConfigError(f"{path}: not UTF-8 text ({where}); it is corrupt or was not written by chimed-eval; {fix}"
                          if fix else f"{path}: not a chimed-eval results.json or baseline: not UTF-8 text "
                                      f"({where})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: corrupt, not valid JSON ({e.msg}); {fix}" if fix
                          else f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    except RecursionError:
        raise ConfigError(f"{path}: corrupt, not valid JSON (nested too deeply); {fix}" if fix
                          else f"{path}: invalid JSON: nested too deeply") from None


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSONL file in file order; nothing when it does not exist.

    Lines are cut at ``\\n`` only (a binary file iterates on ``b"\\n"``): a prompt may hold a raw
    U+2028 or U+0085, which :meth:`str.splitlines` would cut. A torn or invalid line (what a killed
    write leaves; that item is recomputed) and a JSON value that is not a record with an ``id`` are
    skipped. An unreadable file is a ConfigError naming it."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with f:
        try:
            for raw in f:
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw.decode("utf-8"))
                except (ValueError, UnicodeDecodeError, RecursionError):
                    continue  # torn write of an interrupted batch: recomputed
                if isinstance(rec, dict) and "id" in rec:
                    yield rec
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
