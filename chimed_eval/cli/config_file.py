"""``chimed-eval run --config run.yaml``: run options in a file (YAML, TOML or JSON).

Any flag of ``chimed-eval run`` is a key, written as the flag without its dashes (``batch_size``
or ``batch-size``; peers' spellings too: ``num_fewshot``, ``output_path``, ``model_args``).
``model`` (or ``models``) and ``tasks`` may be lists; ``model_args``, ``task_args``,
``gen_kwargs`` and ``judge_args`` may be tables. Several models run one after another, each into
``OUTPUT/<model>`` (the model name with ``/`` and other unsafe characters as ``_``); one model
runs into ``OUTPUT`` itself. Flags given on the command line win over the file. Paths in the file
are read as if typed on the command line (relative to the current directory). A ``sweep`` table
belongs to ``chimed-eval sweep --config`` (:mod:`chimed_eval.cli.sweep`); ``run`` leaves it alone.

Each key becomes the flag it names and the whole line goes through the ``run`` parser, so a file
is checked exactly as the command line is (an unknown key names the file and the key).
:func:`read_run_config` returns one typed :class:`RunEntry` per model -- what
:func:`chimed_eval.evaluate` takes -- for other callers (a sweep) to reuse.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.kv import parse_kv
from chimed_eval.cli.run_flags import add_run_arguments, run_config
from chimed_eval.engine.api import RunConfig

#: keys that hold a list of models
MODEL_KEYS = ("model", "models")
#: tables of other commands in the same file, which ``run`` leaves alone
SECTIONS = ("sweep",)


@dataclass(frozen=True)
class RunEntry:
    """One model's run from a config file: the arguments of :func:`chimed_eval.evaluate`, and the
    ``run`` command line that does the same (``argv``, without ``--config``)."""

    model: str
    tasks: tuple[str, ...]
    output: Path | None
    backend: str | None
    model_args: Mapping[str, str]
    data_dir: str | None
    config: RunConfig
    argv: tuple[str, ...]
    namespace: argparse.Namespace


def load_mapping(path: Path) -> dict[str, Any]:
    """The file's top-level table (``.yaml``/``.yml`` need PyYAML; ``.toml``; ``.json``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError(f"--config {path}: YAML needs PyYAML (pip install pyyaml), or write TOML") from None
            doc = yaml.safe_load(text)
        elif suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            doc = tomllib.loads(text)
        elif suffix == ".json":
            doc = json.loads(text)
        else:
            raise ConfigError(f"--config {path}: expected a .yaml, .yml, .toml or .json file")
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - each parser has its own error type; all name a line
        mark = getattr(exc, "problem_mark", None)  # PyYAML: where the problem is
        why = (f"line {mark.line + 1}, column {mark.column + 1}: {getattr(exc, 'problem', exc)}" if mark is not None
               else str(exc).splitlines()[0])
        raise ConfigError(f"--config {path}: not valid {suffix[1:].upper()}: {why}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"--config {path}: expected a table of run options at the top, got {type(doc).__name__}")
    return doc


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chimed-eval run")
    add_run_arguments(p)
    return p


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """key (a flag without dashes, ``-`` or ``_``) -> its action."""
    out: dict[str, argparse.Action] = {}
    for a in parser._actions:
        for o in a.option_strings:
            if o.startswith("--"):
                out[o[2:].replace("-", "_")] = a
    return out


def _tokens(path: Path, key: str, value: Any, action: argparse.Action) -> list[str]:
    """The command-line words for one key of the file."""
    flag = next(o for o in action.option_strings if o.startswith("--"))
    where = f"--config {path}: {key}"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return [flag] if value else []
    if value is None:
        return []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if any(c in str(v) for c in ",") or "=" in str(k):
                raise ConfigError(f"{where}: the value of {k!r} may not hold a comma")
        joined = ",".join(f"{k}={'|'.join(map(str, v)) if isinstance(v, list) else _scalar(v)}" for k, v in value.items())
        return [flag, joined]
    if isinstance(value, list):
        return [flag, ",".join(str(v) for v in value)]
    if isinstance(value, (dict, set, tuple)):
        raise ConfigError(f"{where}: expected a value, a list or a table, got {type(value).__name__}")
    return [flag, _scalar(value)]


def _scalar(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def safe_name(model: str) -> str:
    """A model name as a folder name (``Qwen/Qwen2-0.5B`` -> ``Qwen_Qwen2-0.5B``)."""
    return re.sub(r"[^\w.+-]+", "_", model).strip("._") or "model"


def read_run_config(path: Path, cli_words: Sequence[str] = ()) -> list[RunEntry]:
    """One :class:`RunEntry` per model of the file at ``path``; ``cli_words`` (``run``'s own flags
    from the command line, without ``--config``) win over the file."""
    doc = load_mapping(path)
    parser = _run_parser()
    flags = _flags(parser)
    models: list[str] = []
    words: list[str] = []
    for key, value in doc.items():
        norm = str(key).replace("-", "_")
        if norm in SECTIONS:  # another command's table (``chimed-eval sweep`` reads ``sweep``)
            continue
        if norm in MODEL_KEYS:
            models = [str(m) for m in (value if isinstance(value, list) else [value])]
            continue
        if norm == "config" or norm not in flags:
            raise ConfigError(f"--config {path}: unknown key {key!r} (keys are the flags of `chimed-eval run`, "
                              "without the dashes)")
        words += _tokens(path, key, value, flags[norm])
    given = _given_model(parser, cli_words)
    models = [given] if given is not None else models
    if not models:
        raise ConfigError(f"--config {path}: no model (give model: or models:, or --model)")
    if len({safe_name(m) for m in models}) != len(models):
        raise ConfigError(f"--config {path}: two models share the folder name {safe_name(models[0])!r}")
    entries = []
    for model in models:
        argv = [*words, "--model", model, *cli_words]
        ns = _parse(parser, argv, path)
        if len(models) > 1 and ns.output is not None:
            ns.output = Path(ns.output) / safe_name(model)
            argv += ["--output", str(ns.output)]
        ns.config = None
        entries.append(RunEntry(model=ns.model, tasks=tuple(t.strip() for t in (ns.tasks or "").split(",") if t.strip()),
                                output=ns.output, backend=ns.backend, model_args=parse_kv(ns.model_args, "--model-args"),
                                data_dir=ns.data_dir, config=run_config(ns), argv=("run", *argv), namespace=ns))
    return entries


def file_words(path: Path, table: Mapping[str, Any], parser: argparse.ArgumentParser,
               aliases: Mapping[str, str] | None = None, where: str = "") -> list[str]:
    """The command-line words for ``parser`` that ``table`` (a table of the file at ``path``) stands
    for; ``aliases`` maps a key to the flag it means (``model`` -> ``models``); ``where`` prefixes
    keys in errors (``sweep.``). An unknown key names the file and the key."""
    flags = _flags(parser)
    words: list[str] = []
    for key, value in table.items():
        norm = str(key).replace("-", "_")
        norm = (aliases or {}).get(norm, norm)
        if norm == "config" or norm not in flags:
            raise ConfigError(f"--config {path}: unknown key {where}{key!r} (keys are the flags of "
                              f"`{parser.prog}`, without the dashes)")
        words += _tokens(path, f"{where}{key}", value, flags[norm])
    return words


def parse_words(parser: argparse.ArgumentParser, argv: list[str], path: Path | None) -> argparse.Namespace:
    """``parser`` on ``argv``; a parse error is a ConfigError naming the file (exit 2, one line)."""
    return _parse(parser, argv, path)


def _given_model(parser: argparse.ArgumentParser, words: Sequence[str]) -> str | None:
    ns = _parse(parser, list(words), None)
    return ns.model


def _parse(parser: argparse.ArgumentParser, argv: list[str], path: Path | None) -> argparse.Namespace:
    """``run``'s parser on ``argv``; a parse error is a ConfigError naming the file (exit 2, one line)."""
    def fail(message: str) -> None:
        raise ConfigError(f"--config {path}: {message}" if path else message)

    old, parser.error = parser.error, fail  # type: ignore[method-assign]
    try:
        return parser.parse_args(argv)
    finally:
        parser.error = old  # type: ignore[method-assign]


def run_config_file(a: argparse.Namespace, run_one: Callable[[argparse.Namespace], int]) -> int:
    """``run --config FILE``: each model of the file in turn; the worst exit status."""
    cli_words = _run_words(a.argv)
    entries = read_run_config(a.config, cli_words)
    status = 0
    for n, e in enumerate(entries, 1):
        if len(entries) > 1:
            print(f"\n== model {n}/{len(entries)}: {e.model} -> {e.output}", file=sys.stderr)
        ns = e.namespace
        ns.argv = list(e.argv)
        ns.verbose, ns.quiet = a.verbose, a.quiet
        status = max(status, run_one(ns))
    return status


def _run_words(argv: Sequence[str], command: str = "run") -> list[str]:
    """The words after the ``command`` subcommand, without ``--config FILE`` and the global -v/-q."""
    words = list(argv)
    start = next((i for i, w in enumerate(words) if w == command), -1) + 1
    out, skip = [], False
    for w in words[start:]:
        if skip:
            skip = False
            continue
        if w == "--config":
            skip = True
            continue
        if w.startswith("--config=") or w in ("-v", "--verbose", "-q", "--quiet"):
            continue
        out.append(w)
    return out


__all__ = ["RunEntry", "file_words", "load_mapping", "parse_words", "read_run_config", "run_config", "run_config_file", "safe_name"]
