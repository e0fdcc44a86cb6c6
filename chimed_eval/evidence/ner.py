"""NER evidence (:mod:`chimed_eval.evidence.kinds`): what an NER record keeps in its ``extra`` (text, type
inventory, prompt facts, and once judged the counts and flags), its judge and its corpus figures.
Re-exported from :mod:`chimed_eval.evidence.kinds`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.evidence.base import CorpusLevelMetric, Figures, SampleLevelMetric, _fields_extra, has_keys
from chimed_eval.metrics.ner import RecordCounts, gold_spans_of
from chimed_eval.core.types import SampleScore

@dataclass(frozen=True)
class NerPromptFacts:
    """How an NER record's prompt was built: shots requested and used (which), whether shots were
    dropped to fit the budget, its size, and the generation budget (its own, and whether capped)."""

    shots_requested: int
    shots_used: int
    shot_ids: tuple[str, ...]
    prompt_truncated: bool
    prompt_chars: int
    prompt_tokens_est: int
    over_budget: bool
    max_new_tokens: int
    max_new_tokens_own: int
    max_new_tokens_capped: bool
    prompt_version: str

    def to_extra(self) -> dict[str, Any]:
        return _fields_extra(self)

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "NerPromptFacts | None":
        names = [f.name for f in dataclasses.fields(cls)]
        if not has_keys(extra, names):
            return None
        return cls(**{k: tuple(extra[k]) if k == "shot_ids" else extra[k] for k in names})


@dataclass(frozen=True)
class NerOutcome:
    """What judging an NER generation derives: the record's counts under every protocol, the
    parse's duplicates and dropped lines, and the flags (cut JSON, whole budget used, empty,
    explanation only)."""

    counts: RecordCounts
    n_duplicates: int
    n_dropped: int
    output_cut: bool
    truncated: bool
    empty: bool
    explanation_only: bool

    def to_extra(self) -> dict[str, Any]:
        return {"counts": self.counts.to_dict(), **{k: v for k, v in _fields_extra(self).items() if k != "counts"}}

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "NerOutcome":
        return cls(RecordCounts.from_dict(extra["counts"]), int(extra.get("n_duplicates", 0)),
                   int(extra.get("n_dropped", 0)), bool(extra.get("output_cut")), bool(extra.get("truncated")),
                   bool(extra.get("empty")), bool(extra.get("explanation_only")))


@dataclass(frozen=True)
class NerEvidence:
    """An NER record's evidence: the text, the type inventory (types and aliases), the tokens
    generated, the prompt facts and, once judged, the outcome. The gold spans are the record's
    ``gold`` (:func:`~chimed_eval.metrics.ner.ner_gold`)."""

    KEYS: ClassVar[tuple[str, ...]] = ("counts", "types")

    text: str
    types: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    n_tokens: int | None = None
    prompt: NerPromptFacts | None = None
    outcome: NerOutcome | None = None

    def to_extra(self) -> dict[str, Any]:
        return {"text": self.text, "types": list(self.types), "aliases": dict(self.aliases), "n_tokens": self.n_tokens,
                **(self.prompt.to_extra() if self.prompt is not None else {}),
                **(self.outcome.to_extra() if self.outcome is not None else {})}

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "NerEvidence":
        return cls(str(extra.get("text", "")), tuple(extra.get("types") or ()), dict(extra.get("aliases") or {}),
                   extra.get("n_tokens"), NerPromptFacts.from_extra(extra),
                   NerOutcome.from_extra(extra) if "counts" in extra else None)


def judge_ner(s: SampleScore, ev: NerEvidence, variant: str) -> SampleScore:
    """Parse the generation and count against the gold, from the record's own evidence only
    (text, gold spans, inventory), so ``chimed-eval score`` recomputes exactly this."""
    from chimed_eval.extract.ner import TypeInventory, parse_ner
    from chimed_eval.metrics.ner import record_counts
    from chimed_eval.metrics.text import is_empty_generation, used_whole_budget

    inv = TypeInventory(tuple(ev.types), dict(ev.aliases))
    parse = parse_ner(s.generation or "", variant, inv, ev.text)
    rc = record_counts(ev.text, gold_spans_of(s.gold), list(parse.pairs), inv.types,
                       n_not_in_text=parse.n_not_in_text, n_unknown_type=parse.n_unknown_type)
    gen = s.generation or ""
    budget = ev.prompt.max_new_tokens if ev.prompt is not None else None
    out = NerOutcome(rc, parse.n_duplicates, parse.n_dropped, "json_unterminated" in parse.notes,
                     # the whole token budget used (the answer may be cut); no entity read from prose only
                     used_whole_budget(gen, ev.n_tokens, budget), is_empty_generation(gen), parse.explanation_only)
    return replace(s, prediction=[list(p) for p in parse.unique], score=rc.set.f1, extracted=parse.to_dict(),
                   extraction_failed=parse.failed, extra={**s.extra, **out.to_extra()})


def ner_figures(scores: Sequence[SampleScore], evidence: Sequence[NerEvidence], variant: str, seed: int) -> Figures:
    """Corpus P/R/F1 under every protocol over the first record's inventory
    (:func:`chimed_eval.metrics.ner.ner_metrics`), and beside them the rates of generations that
    used their whole budget and of outputs read as explanation only."""
    from chimed_eval.metrics.ner import ner_metrics
    from chimed_eval.metrics.text import rate_and_count

    outcomes = [e.outcome for e in evidence]
    if any(o is None for o in outcomes):
        raise ConfigError("NER records without counts: judge them first (chimed-eval score)")
    recs = [replace(o.counts, truncated=bool(e.prompt is not None and e.prompt.prompt_truncated),  # type: ignore[union-attr]
                    failed=s.extraction_failed) for s, e, o in zip(scores, evidence, outcomes)]
    metrics, breakdown = ner_metrics(recs, evidence[0].types if evidence else (), seed, protocol=variant)
    metrics += rate_and_count("truncated_generation", [o.truncated for o in outcomes], "records", variant)  # type: ignore[union-attr]
    metrics += rate_and_count("explanation_only", [o.explanation_only for o in outcomes], "records", variant)  # type: ignore[union-attr]
    return metrics, breakdown


NER_SAMPLE = SampleLevelMetric("f1_set", NerEvidence, judge_ner)
NER_CORPUS = CorpusLevelMetric("ner_prf", NerEvidence, ner_figures)
