"""Typed evidence: what each kind of task keeps in a per-sample record's ``extra``, and the
metrics declared beside it (lighteval's ``SampleLevelMetric`` / ``CorpusLevelMetric``: a name,
the evidence type it reads, a pure function).

A task's ``score`` writes its kind's evidence (``to_extra()``) into the record; a per-sample
metric judges the record from that evidence alone (so ``chimed-eval score`` recomputes the same
without the model); a corpus-level metric turns judged records into the reported figures.
``to_extra`` / ``from_extra`` write and read exactly the keys, order and JSON shapes the records
have always had. Kinds: choice, scale, generation (open QA, dialogue) and NER; what a judge
derives (statistics, counts, flags) is the evidence's ``outcome``, None until judged. The metric
declarations live in :mod:`.evidence_base` and the NER kind in :mod:`.evidence_ner`; both are
re-exported here, the import path the tasks use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.evidence.base import (  # noqa: F401 (re-exported)
    CorpusLevelMetric, E, Figures, SampleLevelMetric, _fields_extra, _plain, has_keys,
)
from chimed_eval.evidence.ner import (  # noqa: F401 (re-exported: NER evidence lives in evidence_ner)
    NER_CORPUS, NER_SAMPLE, NerEvidence, NerOutcome, NerPromptFacts, judge_ner, ner_figures,
)
from chimed_eval.metrics.calibration import valid_logprobs
from chimed_eval.metrics.choice import accuracy_metrics, argmax_first
from chimed_eval.metrics.text import BleuStats
from chimed_eval.prompts.variants import LETTERS
from chimed_eval.core.types import SampleScore


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
    the earlier letter) or, for generations (``generate``, ``cot``; one or several answers), the
    letters read by the one cascade of :func:`chimed_eval.extract.reasoning.judge_generation` (a failure
    counts as wrong, its rule recorded). Option log-probabilities with a NaN, a +inf or nothing
    above -inf give no prediction: wrong, and counted in ``invalid_logprob_count``
    (:func:`chimed_eval.metrics.calibration.valid_logprobs`)."""
    n = ev.n_choices or (len(s.logprobs) if s.logprobs else 4)
    if s.generation is not None:  # generate and cot, one or several answers: one reader of letters
        from chimed_eval.extract.reasoning import judge_generation

        return judge_generation(s, n, variant)
    if isinstance(s.gold, str) and len(s.gold) > 1:  # several answers: letter scoring is refused
        from chimed_eval.evidence.multi_choice import judge_multi

        return judge_multi(s, n, variant)
    if s.logprobs and not valid_logprobs(s.logprobs):  # NaN or all -inf: no choice to read; wrong and counted
        return replace(s, prediction=None, extracted=None, extraction_failed=True, score=0.0)
    pred = LETTERS[argmax_first(s.logprobs or ())]
    return replace(s, prediction=pred, extracted=pred, extraction_failed=False, score=float(pred == s.gold))


def choice_figures(scores: Sequence[SampleScore], evidence: Sequence[ChoiceEvidence], variant: str, seed: int,
                   multi: bool = False) -> Figures:
    """``acc``/``acc_macro`` on pass 0 (every record, unless --shuffle-choices/--repeats expanded
    the items), then calibration, robustness and repeat figures (:mod:`chimed_eval.evidence.expand`)."""
    from chimed_eval.evidence.expand import expanded_figures, primary_pass

    first, evidence = primary_pass(scores, evidence)
    if multi or any(isinstance(s.gold, str) and len(s.gold) > 1 for s in first):  # several answers: exact set
        from chimed_eval.evidence.multi_choice import multi_answer_figures

        metrics, subjects = multi_answer_figures(first, seed, variant)
    else:
        metrics, subjects = accuracy_metrics(first, seed=seed, protocol=variant)
    from chimed_eval.extract.reasoning import reasoning_figures  # cot's per-rule counts, truncated reasoning traces

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
    from chimed_eval.metrics.scale import first_option, item_points

    if s.generation is not None:
        letter = first_option(s.generation, ev.letters, list(ev.options))
    else:
        lps = s.logprobs or ()
        letter = ev.letters[argmax_first(lps)] if lps and valid_logprobs(lps) else None
    if letter is None:
        return replace(s, prediction=None, extracted=None, extraction_failed=True, score=0.0)
    return replace(s, prediction=letter, extracted=letter, extraction_failed=False,
                   score=item_points(letter, ev.letters, ev.points, ev.reverse))


def scale_figures(scores: Sequence[SampleScore], evidence: Sequence[ScaleEvidence], variant: str, seed: int) -> Figures:
    """Per scale, in report order: ``<scale>_sum`` and ``<scale>_mean`` over the answered items."""
    from chimed_eval.metrics.scale import scale_metrics

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
    ...), the uncut generation when a stop string cut it, an item's several references (empty:
    the one reference is the record's ``gold``), and once judged its outcome."""

    max_new_tokens: int | None
    n_tokens: int | None
    decoding: Decoding | None
    prompt_version: str | None
    source: tuple[tuple[str, Any], ...] = ()
    generation_uncut: str | None = None
    outcome: GenerationOutcome | None = None
    references: tuple[str, ...] = ()

    def to_extra(self) -> dict[str, Any]:
        out: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "n_tokens": self.n_tokens,
                               "decoding": None if self.decoding is None else _fields_extra(self.decoding),
                               "prompt_version": self.prompt_version, **dict(self.source)}
        if self.generation_uncut is not None:
            out["generation_uncut"] = self.generation_uncut
        if self.references:
            out["references"] = list(self.references)
        return {**out, **(self.outcome.to_extra() if self.outcome is not None else {})}

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "GenerationEvidence":
        dec, stats = extra.get("decoding"), extra.get("stats")
        outcome = None if stats is None else GenerationOutcome(bool(extra.get("empty")), bool(extra.get("truncated")),
                                                               GenerationStats.from_extra(stats))
        return cls(extra.get("max_new_tokens"), extra.get("n_tokens"), None if dec is None else Decoding.from_extra(dec),
                   extra.get("prompt_version"), tuple((k, v) for k, v in extra.items() if k in SOURCE_KEYS),
                   extra.get("generation_uncut"), outcome, tuple(str(r) for r in extra.get("references") or ()))


def judge_generation(s: SampleScore, ev: GenerationEvidence, variant: str = "") -> SampleScore:
    """Flags and per-item statistics from the record's own texts; the score is ROUGE-L (char)."""
    from chimed_eval.metrics.text import generation_stats, is_empty_generation, used_whole_budget

    try:
        stats = generation_stats(s.generation or "", list(ev.references) or str(s.gold))
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
    from chimed_eval.metrics.text import text_metrics
    from chimed_eval.extract.reasoning import reasoning_figures  # truncated reasoning traces, when records carry traces

    return text_metrics(scores, seed) + reasoning_figures(scores, variant), {}


GENERATION_SAMPLE = SampleLevelMetric("rougeL_char", GenerationEvidence, judge_generation)
GENERATION_CORPUS = CorpusLevelMetric("bleu_rouge", GenerationEvidence, generation_figures)
