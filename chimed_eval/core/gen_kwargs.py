"""``--gen_kwargs``: decoding settings for every generated answer, as lm-evaluation-harness takes them.

``temperature``, ``top_p``, ``top_k``, ``max_gen_toks`` (also ``max_new_tokens``), ``do_sample``
and ``until`` (also ``stop``; ``|`` separates several strings on the command line) override what
each generating task asks for (its decoding preset, ``--decoding``); letter-scored and
log-likelihood requests are not affected. They reach the hf, vllm and openai backends through the
requests' :class:`~chimed_eval.core.types.GenerationConfig`, are recorded in results.json
(``settings.gen_kwargs``) and enter the resume key, so a run is never resumed under other values.

``do_sample=false`` means greedy (temperature 0); ``do_sample=true`` without a temperature samples
at the task's temperature, or 1.0 when the task decodes greedily (transformers' default).
Sampled requests are seeded per item from ``--seed`` as with ``--decoding paper-sampling``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import GenerationConfig

#: accepted names -> the field they set (peers' spellings included)
ALIASES = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "max_gen_toks": "max_gen_toks",
           "max_new_tokens": "max_gen_toks", "max_tokens": "max_gen_toks", "do_sample": "do_sample",
           "until": "until", "stop": "until"}
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


@dataclass(frozen=True)
class GenKwargs:
    """The decoding overrides given (None: not given, the task's own value stays)."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_gen_toks: int | None = None
    do_sample: bool | None = None
    until: tuple[str, ...] | None = None

    def record(self) -> dict[str, Any]:
        """The values given, for results.json and the resume key (lists as lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
                if v is not None}

    def apply(self, g: GenerationConfig) -> GenerationConfig:
        """``g`` with the overrides set (see the module for ``do_sample``)."""
        temperature = g.temperature if self.temperature is None else self.temperature
        if self.do_sample is False:
            temperature = 0.0
        elif self.do_sample and temperature <= 0.0:
            temperature = 1.0
        return dataclasses.replace(
            g, temperature=temperature, top_p=g.top_p if self.top_p is None else self.top_p,
            top_k=g.top_k if self.top_k is None else self.top_k,
            max_new_tokens=g.max_new_tokens if self.max_gen_toks is None else self.max_gen_toks,
            stop=g.stop if self.until is None else self.until)


def _number(key: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"--gen_kwargs {key}: expected a number, got {value!r}")
    try:
        out = kind(value) if kind is float else int(str(value).strip())
    except (TypeError, ValueError):
        raise ConfigError(f"--gen_kwargs {key}={value!r}: expected {'a number' if kind is float else 'an integer'}") from None
    if kind is float and not math.isfinite(out):
        raise ConfigError(f"--gen_kwargs {key}={value!r}: expected a finite number")
    return out


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ConfigError(f"--gen_kwargs {key}={value!r}: expected true or false")


def parse_gen_kwargs(given: str | Mapping[str, Any] | GenKwargs | None) -> GenKwargs:
    """``k=v,...`` text (the CLI) or a mapping (a config file, the Python API) as :class:`GenKwargs`,
    each value checked: an unknown key or a value out of range names the key."""
    from chimed_eval.core.kv import parse_kv

    if given is None or isinstance(given, GenKwargs):
        return given or GenKwargs()
    raw = parse_kv(given, "--gen_kwargs") if isinstance(given, str) else dict(given)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        field = ALIASES.get(str(key).strip())
        if field is None:
            raise ConfigError(f"--gen_kwargs: unknown key {key!r}; known: {', '.join(sorted(ALIASES))}")
        if field in values:
            raise ConfigError(f"--gen_kwargs: {key!r} sets {field} twice")
        if field in ("temperature", "top_p"):
            values[field] = _number(key, value, float)
        elif field in ("top_k", "max_gen_toks"):
            values[field] = _number(key, value, int)
        elif field == "do_sample":
            values[field] = _bool(key, value)
        else:
            items = [value] if isinstance(value, str) else list(value)
            parts = [p for v in items for p in (str(v).split("|") if isinstance(value, str) else [str(v)])]
            # the command line cannot hold a newline: \n and \t there stand for them (until=\n\n)
            values[field] = tuple(p.replace("\\n", "\n").replace("\\t", "\t") if isinstance(value, str) else p
                                  for p in parts if p)
    out = GenKwargs(**values)
    _check(out)
    return out


def _check(k: GenKwargs) -> None:
    if k.temperature is not None and k.temperature < 0:
        raise ConfigError(f"--gen_kwargs temperature={k.temperature}: must be >= 0")
    if k.top_p is not None and not 0 < k.top_p <= 1:
        raise ConfigError(f"--gen_kwargs top_p={k.top_p}: must be in (0, 1]")
    if k.top_k is not None and k.top_k < 1:
        raise ConfigError(f"--gen_kwargs top_k={k.top_k}: must be >= 1")
    if k.max_gen_toks is not None and k.max_gen_toks < 1:
        raise ConfigError(f"--gen_kwargs max_gen_toks={k.max_gen_toks}: must be >= 1")
    if k.do_sample is False and (k.temperature or 0) > 0:
        raise ConfigError(f"--gen_kwargs do_sample=false with temperature={k.temperature}: greedy decoding has no "
                          "temperature; drop one of them")


__all__ = ["ALIASES", "GenKwargs", "parse_gen_kwargs"]
