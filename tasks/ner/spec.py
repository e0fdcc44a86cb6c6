"""The generic ``ner`` task's settings: ``--task-args`` or a ``type = "ner"`` entry of a
``--task-config`` file, read through the shared coercion of :mod:`chimed_eval.tasks.config`."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from chimed_eval.core.errors import ConfigError
from chimed_eval.files.spans import SpanFields

from ..config import Converter, check_task_name, flag_converter, coerce_settings, config_entries, resolve_paths, split_list, text_value

@dataclass
class NerSpec:
    """Your own NER data. ``path``: the records (JSONL or BIO, see :mod:`chimed_eval.files.spans`);
    ``format``: json | jsonl | bio (default: .json -> a JSON array, or JSONL when it does not start
    with ``[``; .jsonl -> jsonl; else bio); ``types``: the inventory
    (default: the gold types in order of first appearance; given, it is enforced on the files);
    ``aliases``: other names accepted in answers (``检查:影像检查``); ``fewshot``: a file of shot
    records; ``shots``: default shot count (5 with a fewshot file, else 0); ``text_field`` /
    ``entities_field`` / ``start_field`` / ``end_field`` / ``type_field``: the keys of JSON/JSONL
    records when not the usual ones; ``end_inclusive``: the end offset is the entity's last character;
    ``check_ends``: false accepts spans that look off by one (see :mod:`chimed_eval.files.span_checks`)."""

    path: str | Path
    name: str = "ner"
    format: str | None = None
    encoding: str | None = None
    types: list[str] | None = None
    aliases: dict[str, str] | None = None
    fewshot: str | Path | None = None
    shots: int | None = None
    token_sep: str = ""
    max_prompt_tokens: int = 3000
    shot_max_chars: int = 300
    domain: str = "医疗文本"
    text_field: str | None = None
    entities_field: str | None = None
    start_field: str | None = None
    end_field: str | None = None
    type_field: str | None = None
    end_inclusive: bool = False
    check_ends: bool = True

    def span_fields(self) -> SpanFields:
        """The key names and end convention of JSON/JSONL records (:class:`chimed_eval.files.spans.SpanFields`)."""
        return SpanFields(self.text_field, self.entities_field, self.start_field, self.end_field, self.type_field,
                          self.end_inclusive, self.check_ends)

    def __post_init__(self) -> None:
        check_task_name(self.name)
        if self.types is not None:
            if not self.types or len(set(self.types)) != len(self.types):
                raise ConfigError(f"task {self.name!r}: types= must list distinct type names, got {self.types}")
            for a, t in (self.aliases or {}).items():
                if t not in self.types:
                    raise ConfigError(f"task {self.name!r}: alias {a!r} -> {t!r}, which is not in types={self.types}")


NER_KEYS = tuple(f.name for f in dataclasses.fields(NerSpec))
LIST_SEPS = ";|；"  # types=疾病;药物 (a full-width semicolon too)


def _types(v: Any, where: str) -> list[str]:
    v = split_list(v, LIST_SEPS) if isinstance(v, str) else v
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise ConfigError(f"{where}key 'types': expected a list of type names, got {v!r}")
    return [x.strip() for x in v]


def _aliases(v: Any, where: str) -> dict[str, str]:
    if isinstance(v, str):
        pairs = [re.split(r"[:：=>]+", p, maxsplit=1) for p in split_list(v, LIST_SEPS)]
        if any(len(p) != 2 for p in pairs):
            raise ConfigError(f"{where}key 'aliases': expected alias:type;alias:type, got {v!r}")
        v = {a.strip(): t.strip() for a, t in pairs}
    if not isinstance(v, dict) or not all(isinstance(a, str) and isinstance(t, str) for a, t in v.items()):
        raise ConfigError(f"{where}key 'aliases': expected a table alias -> type, got {v!r}")
    return v


def _count(key: str) -> Converter:
    def convert(v: Any, where: str) -> int:
        try:
            n = int(v) if not isinstance(v, bool) else None
        except (TypeError, ValueError):
            n = None
        if n is None or n < 0:
            raise ConfigError(f"{where}key {key!r}: expected a non-negative integer, got {v!r}")
        return n
    return convert




_CONVERTERS: dict[str, Converter] = {
    "end_inclusive": flag_converter("end_inclusive"), "check_ends": flag_converter("check_ends"),
    "types": _types, "aliases": _aliases, **{k: _count(k) for k in ("shots", "max_prompt_tokens", "shot_max_chars")},
    "token_sep": lambda v, where: text_value("token_sep", v, where, strip=False),  # a separator may be a space
}


def _coerce(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    return coerce_settings(values, where, NER_KEYS, _CONVERTERS, need_path="the ner task needs path=<your JSONL or BIO file>",
                           what=" for a ner task", skip=("type",))


def spec_from_args(args: Mapping[str, str]) -> NerSpec:
    return NerSpec(**_coerce(args, "--task-args: "))


def load_ner_specs(path: Path) -> list[NerSpec]:
    """The ``type = "ner"`` entries of a JSON/TOML task config (the format of chimed_eval.tasks.mcq:
    one task, or ``tasks = [...]`` with top-level defaults). Relative paths are resolved against
    the config file's folder; top-level defaults that only mcq tasks know are ignored here."""
    from chimed_eval.tasks.mcq_spec import SPEC_KEYS as MCQ_KEYS

    path = Path(path)
    defaults, entries = config_entries(path)
    specs = []
    for where, e in entries:
        merged = {**{k: v for k, v in defaults.items() if k in NER_KEYS or k not in MCQ_KEYS}, **e}
        if str(merged.get("type", "mcq")).strip().lower() != "ner":
            continue
        values = resolve_paths(_coerce(merged, where), ("path", "fewshot"), path.parent)
        try:
            specs.append(NerSpec(**values))
        except ConfigError as err:
            raise ConfigError(f"{where}{err}") from None
    return specs
