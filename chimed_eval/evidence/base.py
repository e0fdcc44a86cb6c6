"""The base of typed evidence (:mod:`chimed_eval.evidence.kinds`): the per-sample and corpus-level metric
declarations, and the helpers that write an evidence's fields as a record's ``extra`` keys."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

from chimed_eval.core.types import Metric, SampleScore

Figures = tuple[list[Metric], dict[str, dict[str, float | int]]]
E = TypeVar("E")


@dataclass(frozen=True)
class SampleLevelMetric(Generic[E]):
    """A per-sample metric: ``fn(record, its evidence, variant)`` returns the judged record
    (prediction, score, failure flag, and the evidence's outcome merged into ``extra``)."""

    name: str
    evidence: type[E]
    fn: Callable[[SampleScore, E, str], SampleScore]

    def __call__(self, score: SampleScore, evidence: E, variant: str) -> SampleScore:
        return self.fn(score, evidence, variant)


@dataclass(frozen=True)
class CorpusLevelMetric(Generic[E]):
    """A corpus-level metric: ``fn(judged records, their evidence, variant, seed)`` returns the
    reported figures and the per-subject (or per-type, per-scale) breakdown."""

    name: str
    evidence: type[E]
    fn: Callable[[Sequence[SampleScore], Sequence[E], str, int], Figures]

    def __call__(self, scores: Sequence[SampleScore], evidence: Sequence[E], variant: str, seed: int) -> Figures:
        return self.fn(scores, evidence, variant, seed)


def _plain(v: Any) -> Any:
    """A field value in its JSON shape: tuples become lists, mappings dicts."""
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _fields_extra(obj: Any) -> dict[str, Any]:
    """A flat record's fields as ``extra`` keys, in field order."""
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def has_keys(extra: Mapping[str, Any] | None, keys: Sequence[str]) -> bool:
    """Whether a record's ``extra`` holds every key of ``keys`` (how a kind recognises its records)."""
    return extra is not None and all(k in extra for k in keys)
