"""Typed evidence: what each kind of task keeps in a per-sample record's ``extra``, and the
metrics declared beside it (lighteval's ``SampleLevelMetric`` / ``CorpusLevelMetric``: a name,
the evidence type it reads, a pure function).

A task's ``score`` writes its kind's evidence (``to_extra()``) into the record; a per-sample
metric judges the record from that evidence alone (so ``chimed-eval score`` recomputes the same
without the model); a corpus-level metric turns judged records into the reported figures.
``to_extra`` / ``from_extra`` write and read exactly the keys, order and JSON shapes the records
have always had. Kinds: choice, scale, generation (open QA, dialogue) and NER; what a judge
derives (statistics, counts, flags) is the evidence's ``outcome``, None until judged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar, Generic, Mapping, Sequence, TypeVar

from .errors import ConfigError
from .extract import extract_choice
from .metrics.choice import accuracy_metrics, argmax_first
from .metrics.ner import RecordCounts, gold_spans_of
from .metrics.text import BleuStats
from .prompts import LETTERS
from .types import Metric, SampleScore

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


# --- multiple choice ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChoiceEvidence:
    """A multiple-choice record's evidence: its number of options (None in records that predate
    it: then the number of log-probabilities, or 4)."""

    n_choices: int | None = None

    def to_extra(self) -> dict[str, Any]:
        return {} if self.n_choices is None else {"n_choices": self.n_choices}

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "ChoiceEvidence":
        n = extra.get("n_choices")
        return cls(None if n is None else int(n))


def judge_choice(s: SampleScore, ev: ChoiceEvidence, variant: str = "") -> SampleScore:
    """Prediction and score from the stored evidence: the highest log-probability (ties go to
    the earlier letter) or, for generations, the extracted letter (None counts as wrong)."""
    n = ev.n_choices or (len(s.logprobs) if s.logprobs else 4)
    if variant == "cot" and s.generation is not None:  # the final answer by the cascade, its rule recorded
        from .reasoning import judge_cot

        return judge_cot(s, n)
    if isinstance(s.gold, str) and len(s.gold) > 1:  # several answers: every stated letter, exact set
        from .multi_choice import judge_multi

        return judge_multi(s, n, variant)
    if s.generation is not None:
        letter = extract_choice(s.generation, LETTERS[:n])
        return replace(s, prediction=letter, extracted=letter, extraction_failed=letter is None,
                       score=float(letter == s.gold))
    pred = LETTERS[argmax_first(s.logprobs or ())]
    return replace(s, prediction=pred, extracted=pred, extraction_failed=False, score=float(pred == s.gold))


def choice_figures(scores: Sequence[SampleScore], evidence: Sequence[ChoiceEvidence], variant: str, seed: int,
                   multi: bool = False) -> Figures:
    """``acc``/``acc_macro`` on pass 0 (every record, unless --shuffle-choices/--repeats expanded
    the items), then calibration, robustness and repeat figures (:mod:`chimed_eval.expand`)."""
    from .expand import expanded_figures, primary_pass

    first, evidence = primary_pass(scores, evidence)
    if multi or any(isinstance(s.gold, str) and len(s.gold) > 1 for s in first):  # several answers: exact set
        from .multi_choice import multi_answer_figures

        metrics, subjects = multi_answer_figures(first, seed, variant)
    else:
        metrics, subjects = accuracy_metrics(first, seed=seed, protocol=variant)
    from .reasoning import reasoning_figures  # cot's per-rule counts, truncated reasoning traces

    return metrics + reasoning_figures(first, variant) + expanded_figures(scores, variant, seed), subjects


CHOICE_SAMPLE = SampleLevelMetric("choice", ChoiceEvidence, judge_choice)
CHOICE_CORPUS = CorpusLevelMetric("acc", ChoiceEvidence, choice_figures)


# --- attitude scales ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleEvidence:
    """A scale item's evidence: its scale (name, report position), reverse scoring, and the
    option letters, texts and points (option A's first)."""

    KEYS: ClassVar[tuple[str, ...]] = ("scale", "letters", "points")

    scale: str | None
    scale_name: str | None
    scale_index: int
    reverse: bool
    letters: str
    options: tuple[str, ...]
    points: tuple[float, ...]
    prompt_version: str | None = None

    def to_extra(self) -> dict[str, Any]:
        return _fields_extra(self)

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "ScaleEvidence":
        return cls(extra.get("scale"), extra.get("scale_name"), int(extra.get("scale_index", 0)),
                   bool(extra.get("reverse")), str(extra["letters"]), tuple(extra.get("options") or ()),
                   tuple(float(p) for p in extra["points"]), extra.get("prompt_version"))


def judge_scale(s: SampleScore, ev: ScaleEvidence, variant: str = "") -> SampleScore:
    """Chosen option and its (reverse-aware) points, from the record's own evidence."""
    from .metrics.scale import first_option, item_points

    if s.generation is not None:
        letter = first_option(s.generation, ev.letters, list(ev.options))
    else:
        lps = s.logprobs or ()
        letter = ev.letters[argmax_first(lps)] if lps else None
    if letter is None:
        return replace(s, prediction=None, extracted=None, extraction_failed=True, score=0.0)
    return replace(s, prediction=letter, extracted=letter, extraction_failed=False,
                   score=item_points(letter, ev.letters, ev.points, ev.reverse))


def scale_figures(scores: Sequence[SampleScore], evidence: Sequence[ScaleEvidence], variant: str, seed: int) -> Figures:
    """Per scale, in report order: ``<scale>_sum`` and ``<scale>_mean`` over the answered items."""
    from .metrics.scale import scale_metrics

    groups: dict[str, list[SampleScore]] = {}
    for s, e in sorted(zip(scores, evidence), key=lambda se: se[1].scale_index):
        groups.setdefault(str(e.scale), []).append(s)
    return scale_metrics(groups, seed, variant)


SCALE_SAMPLE = SampleLevelMetric("scale_points", ScaleEvidence, judge_scale)
SCALE_CORPUS = CorpusLevelMetric("scale_sums", ScaleEvidence, scale_figures)


# --- generation (open QA, dialogue) ------------------------------------------------------------

SOURCE_KEYS = ("file", "line", "title", "department", "disease")  # item facts a generation record keeps


@dataclass(frozen=True)
class Decoding:
    """How an item was decoded (``extra.decoding``)."""

    preset: str
    temperature: float
    top_p: float
    seed: int | None
    stop: tuple[str, ...]

    @classmethod
    def from_extra(cls, d: Mapping[str, Any]) -> "Decoding":
        return cls(d.get("preset"), d.get("temperature"), d.get("top_p"), d.get("seed"), tuple(d.get("stop") or ()))


@dataclass(frozen=True)
class GenerationStats:
    """The per-item statistics of both text protocols (``extra.stats``): BLEU sufficient
    statistics, which add up over a corpus, and per-item ROUGE F-scores."""

    paper_bleu: BleuStats
    paper_rouge: Mapping[str, float]
    sacrebleu: BleuStats
    rouge_char: Mapping[str, float]
    rouge_jieba: Mapping[str, float]

    def to_extra(self) -> dict[str, Any]:
        return {"paper_bleu": self.paper_bleu.to_list(), "paper_rouge": dict(self.paper_rouge),
                "sacrebleu": self.sacrebleu.to_list(), "rouge_char": dict(self.rouge_char),
                "rouge_jieba": dict(self.rouge_jieba)}

    @classmethod
    def from_extra(cls, d: Mapping[str, Any]) -> "GenerationStats":
        return cls(BleuStats.from_list(d["paper_bleu"]), dict(d["paper_rouge"]), BleuStats.from_list(d["sacrebleu"]),
                   dict(d["rouge_char"]), dict(d["rouge_jieba"]))


@dataclass(frozen=True)
class GenerationOutcome:
    """What judging a generation derives: the empty and truncated flags and the statistics."""

    empty: bool
    truncated: bool
    stats: GenerationStats

    def to_extra(self) -> dict[str, Any]:
        return {"empty": self.empty, "truncated": self.truncated, "stats": self.stats.to_extra()}


@dataclass(frozen=True)
class GenerationEvidence:
    """An open-QA or dialogue record's evidence: the token budget and the tokens generated (the
    truncation test), the decoding, the prompt version, the item's source facts (file, line,
    ...), the uncut generation when a stop string cut it, and once judged its outcome."""

    max_new_tokens: int | None
    n_tokens: int | None
    decoding: Decoding | None
    prompt_version: str | None
    source: tuple[tuple[str, Any], ...] = ()
    generation_uncut: str | None = None
    outcome: GenerationOutcome | None = None

    def to_extra(self) -> dict[str, Any]:
        out: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "n_tokens": self.n_tokens,
                               "decoding": None if self.decoding is None else _fields_extra(self.decoding),
                               "prompt_version": self.prompt_version, **dict(self.source)}
        if self.generation_uncut is not None:
            out["generation_uncut"] = self.generation_uncut
        return {**out, **(self.outcome.to_extra() if self.outcome is not None else {})}

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "GenerationEvidence":
        dec, stats = extra.get("decoding"), extra.get("stats")
        outcome = None if stats is None else GenerationOutcome(bool(extra.get("empty")), bool(extra.get("truncated")),
                                                               GenerationStats.from_extra(stats))
        return cls(extra.get("max_new_tokens"), extra.get("n_tokens"), None if dec is None else Decoding.from_extra(dec),
                   extra.get("prompt_version"), tuple((k, v) for k, v in extra.items() if k in SOURCE_KEYS),
                   extra.get("generation_uncut"), outcome)


def judge_generation(s: SampleScore, ev: GenerationEvidence, variant: str = "") -> SampleScore:
    """Flags and per-item statistics from the record's own texts; the score is ROUGE-L (char)."""
    from .metrics.text import generation_stats, is_empty_generation, used_whole_budget

    try:
        stats = generation_stats(s.generation or "", str(s.gold))
    except ImportError as e:
        raise ConfigError(str(e)) from None
    gen = s.generation or ""
    out = GenerationOutcome(empty=is_empty_generation(gen),  # whitespace, punctuation or invisible characters only
                            truncated=used_whole_budget(gen, ev.n_tokens, ev.max_new_tokens),
                            stats=GenerationStats.from_extra(stats))
    return replace(s, prediction=None, extracted=None, extraction_failed=out.empty,
                   score=float(out.stats.rouge_char["rougeL"]), extra={**s.extra, **out.to_extra()})


def generation_figures(scores: Sequence[SampleScore], evidence: Sequence[GenerationEvidence], variant: str,
                       seed: int) -> Figures:
    """BLEU/ROUGE in both protocols and the empty/truncated rates (:func:`chimed_eval.metrics.text.text_metrics`)."""
    from .metrics.text import text_metrics
    from .reasoning import reasoning_figures  # truncated reasoning traces, when records carry traces

    return text_metrics(scores, seed) + reasoning_figures(scores, variant), {}


GENERATION_SAMPLE = SampleLevelMetric("rougeL_char", GenerationEvidence, judge_generation)
GENERATION_CORPUS = CorpusLevelMetric("bleu_rouge", GenerationEvidence, generation_figures)


# --- NER ---------------------------------------------------------------------------------------


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
    from .extract_ner import TypeInventory, parse_ner
    from .metrics.ner import record_counts
    from .metrics.text import is_empty_generation, used_whole_budget

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
    from .metrics.ner import ner_metrics
    from .metrics.text import rate_and_count

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
