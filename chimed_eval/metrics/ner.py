"""Entity-level NER metrics: pure functions over (entity, type) pairs and character spans.

Three protocols, each named in the results:

* **set** (the paper's metric): per record, the predicted and gold (entity, type) pairs are sets;
  true positives are their intersection, summed over records (micro P/R/F1). A pair that the gold
  annotates several times in one record counts once. In the CCKS-2019 test set about a fifth of
  the gold mentions (1,181 of 6,002) repeat a pair already in their record, so the set figures
  and the mention-level figures differ.
* **multiset**: per record, pairs are counted with multiplicity; a true positive is
  ``min(predicted count, gold count)`` per pair. A model must list a repeated entity as often as
  the gold annotates it.
* **span** (strict, character level): each predicted pair is located in the text at EVERY
  non-overlapping occurrence of its entity string (left to right); overlapping candidate spans
  are then resolved greedily, longest first (ties: earlier start, then type order), which is
  exactly what a BIO sequence can represent. Gold spans (whitespace-trimmed annotations) go
  through the same resolution. A true positive is an exact (start, end, type) match. Predicted
  strings that do not occur in the text have no span: they are false positives in the pair
  metrics and counted by ``not_in_text_rate``, but absent here. :func:`spans_to_bio` builds the
  equivalent IOB2 character sequences; the tests check these figures against ``seqeval``.
  Flattening drops every gold span nested in (or crossing) a longer one, so a model that misses
  all nested entities loses nothing here: ``gold_nested_rate`` / ``gold_nested_count`` say how
  many gold mentions the flat figures leave out.
* **span_all** (strict, nested kept): every gold span counts, and each predicted string is
  located at every occurrence with no overlap resolution, so a nested entity is scored like any
  other (``precision_span_all`` ...). Equal to ``*_span`` on flat data with flat predictions.

Entity strings are compared after stripping surrounding whitespace (30 CCKS-2019 test
annotations carry a leading or trailing space). Precision is 0 with no predictions and recall 0
with no gold (seqeval's ``zero_division`` convention). Figures are percentages.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from chimed_eval.core.types import Metric

if TYPE_CHECKING:  # numpy loads only when corpus figures are computed (`chimed-eval tasks` stays light)
    import numpy as np

Pair = tuple[str, str]
Span = tuple[int, int, str]


@dataclass(frozen=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, o: "Counts") -> "Counts":
        return Counts(self.tp + o.tp, self.fp + o.fp, self.fn + o.fn)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d and self.tp else 0.0

    def as_list(self) -> list[int]:
        return [self.tp, self.fp, self.fn]


def set_counts(gold: Iterable[Pair], pred: Iterable[Pair]) -> Counts:
    """The paper's per-record counts: gold and predicted pairs as sets."""
    g, p = set(gold), set(pred)
    return Counts(len(g & p), len(p - g), len(g - p))


def multiset_counts(gold: Iterable[Pair], pred: Iterable[Pair]) -> Counts:
    """Per-record counts with multiplicity."""
    g, p = Counter(gold), Counter(pred)
    tp = sum((g & p).values())
    return Counts(tp, sum(p.values()) - tp, sum(g.values()) - tp)


def type_counts(gold: Iterable[Pair], pred: Iterable[Pair], types: Sequence[str]) -> dict[str, Counts]:
    """Set-based counts per type (pairs of types outside ``types`` are left out)."""
    g, p = set(gold), set(pred)
    return {t: set_counts((x for x in g if x[1] == t), (x for x in p if x[1] == t)) for t in types}


def gold_pairs(text: str, spans: Iterable[Span]) -> list[Pair]:
    """(entity, type) for each annotated span, the entity whitespace-stripped; empty ones dropped."""
    out = []
    for s, e, t in spans:
        ent = text[s:e].strip()
        if ent:
            out.append((ent, t))
    return out


def ner_gold(text: str, spans: Iterable[Span]) -> list[list]:
    """An NER record's ``gold``: ``[entity, type, start, end]`` per annotated span."""
    return [[text[s:e].strip(), t, s, e] for s, e, t in spans]


def gold_spans_of(gold: Iterable[Sequence]) -> list[Span]:
    """The gold ``(start, end, type)`` spans of an NER record's ``gold``."""
    return [(int(g[2]), int(g[3]), str(g[1])) for g in gold]


def trim_spans(text: str, spans: Iterable[Span]) -> list[Span]:
    """Spans shrunk to exclude surrounding whitespace (entirely blank spans dropped)."""
    out = []
    for s, e, t in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e, t))
    return out


def resolve_overlaps(spans: Iterable[Span], type_order: Sequence[str] = ()) -> list[Span]:
    """Non-overlapping spans, chosen greedily longest first (then earlier start, then type order,
    then type name); returned sorted by start. Identical duplicates collapse."""
    rank = {t: i for i, t in enumerate(type_order)}
    cands = sorted(set(spans), key=lambda x: (-(x[1] - x[0]), x[0], rank.get(x[2], len(rank)), x[2]))
    taken: list[Span] = []
    used: list[tuple[int, int]] = []
    for s, e, t in cands:
        if all(e <= a or s >= b for a, b in used):
            taken.append((s, e, t))
            used.append((s, e))
    return sorted(taken)


def locate_all(text: str, pairs: Iterable[Pair]) -> list[Span]:
    """Every non-overlapping occurrence of each entity string, with no resolution between
    strings (a string inside another keeps its spans); sorted. Absent entities yield nothing."""
    cands: set[Span] = set()
    for ent, t in dict.fromkeys(pairs):
        if not ent:
            continue
        i = text.find(ent)
        while i >= 0:
            cands.add((i, i + len(ent), t))
            i = text.find(ent, i + len(ent))
    return sorted(cands)


def locate(text: str, pairs: Iterable[Pair], type_order: Sequence[str] = ()) -> list[Span]:
    """Predicted spans: every non-overlapping occurrence of each entity string, overlaps
    resolved by :func:`resolve_overlaps`. Entities absent from the text yield nothing."""
    return resolve_overlaps(locate_all(text, pairs), type_order)


def gold_spans(text: str, spans: Iterable[Span], type_order: Sequence[str] = ()) -> list[Span]:
    """Gold spans for span scoring: trimmed, then overlap-resolved like predictions."""
    return resolve_overlaps(trim_spans(text, spans), type_order)


def nested_gold(text: str, spans: Iterable[Span], type_order: Sequence[str] = ()) -> list[Span]:
    """The gold spans (trimmed, distinct) that :func:`gold_spans` drops because a longer gold span
    covers or crosses them: what the flat span figures leave out."""
    trimmed = set(trim_spans(text, spans))
    return sorted(trimmed - set(resolve_overlaps(trimmed, type_order)))


def span_counts(gold: Iterable[Span], pred: Iterable[Span]) -> Counts:
    return set_counts(gold, pred)  # type: ignore[arg-type]


def spans_to_bio(length: int, spans: Iterable[Span]) -> list[str]:
    """IOB2 tags, one per character, for non-overlapping spans."""
    tags = ["O"] * length
    for s, e, t in spans:
        if any(tags[i] != "O" for i in range(s, e)):
            raise ValueError(f"overlapping span {(s, e, t)}: resolve overlaps first")
        tags[s] = f"B-{t}"
        for i in range(s + 1, e):
            tags[i] = f"I-{t}"
    return tags


@dataclass(frozen=True)
class RecordCounts:
    """Everything the corpus metrics need from one record (stored in its per-sample record)."""

    set: Counts
    multiset: Counts
    span: Counts
    by_type: Mapping[str, Counts] = field(default_factory=dict)
    n_pred: int = 0            # unique predicted pairs
    n_not_in_text: int = 0     # of those, entity not found in the text
    n_unknown_type: int = 0    # of those, type outside the inventory
    n_gold_mentions: int = 0
    n_gold_repeats: int = 0    # gold mentions repeating a pair already in the record
    truncated: bool = False    # the prompt lost shots to fit the budget
    failed: bool = False       # nothing could be read from a non-empty answer
    span_all: Counts | None = None  # strict spans with nested gold kept (None: a record from before)
    n_gold_nested: int = 0     # gold spans the flat span protocol drops (nested in or crossing a longer one)

    def to_dict(self) -> dict:
        return {
            "set": self.set.as_list(), "multiset": self.multiset.as_list(), "span": self.span.as_list(),
            "by_type": {t: c.as_list() for t, c in self.by_type.items()},
            "n_pred": self.n_pred, "n_not_in_text": self.n_not_in_text, "n_unknown_type": self.n_unknown_type,
            "n_gold_mentions": self.n_gold_mentions, "n_gold_repeats": self.n_gold_repeats,
            **({"span_all": self.span_all.as_list(), "n_gold_nested": self.n_gold_nested}
               if self.span_all is not None else {}),
        }

    @staticmethod
    def from_dict(d: Mapping, truncated: bool = False, failed: bool = False) -> "RecordCounts":
        return RecordCounts(
            Counts(*d["set"]), Counts(*d["multiset"]), Counts(*d["span"]),
            {t: Counts(*c) for t, c in d.get("by_type", {}).items()},
            int(d.get("n_pred", 0)), int(d.get("n_not_in_text", 0)), int(d.get("n_unknown_type", 0)),
            int(d.get("n_gold_mentions", 0)), int(d.get("n_gold_repeats", 0)), truncated, failed,
            Counts(*d["span_all"]) if "span_all" in d else None, int(d.get("n_gold_nested", 0)),
        )


def record_counts(text: str, spans: Sequence[Span], pred: Sequence[Pair], types: Sequence[str], *,
                  n_not_in_text: int | None = None, n_unknown_type: int | None = None) -> RecordCounts:
    """Counts of one record from its text, gold spans and predicted pairs (duplicates included:
    they matter to the multiset protocol only)."""
    gold = gold_pairs(text, spans)
    uniq = list(dict.fromkeys(pred))
    sc = span_counts(gold_spans(text, spans, types), locate(text, uniq, types))
    every_gold = sorted(set(trim_spans(text, spans)))
    return RecordCounts(
        set=set_counts(gold, uniq), multiset=multiset_counts(gold, pred), span=sc,
        by_type=type_counts(gold, uniq, types), n_pred=len(uniq),
        n_not_in_text=sum(1 for e, _ in uniq if e not in text) if n_not_in_text is None else n_not_in_text,
        n_unknown_type=sum(1 for _, t in uniq if t not in types) if n_unknown_type is None else n_unknown_type,
        n_gold_mentions=len(gold), n_gold_repeats=len(gold) - len(set(gold)),
        span_all=span_counts(every_gold, locate_all(text, uniq)), n_gold_nested=len(nested_gold(text, spans, types)),
    )


# --- corpus level ------------------------------------------------------------------------------


def _prf(tp: "np.ndarray", fp: "np.ndarray", fn: "np.ndarray") -> tuple["np.ndarray", "np.ndarray", "np.ndarray"]:
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        r = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
        f = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    return p, r, f


def bootstrap_weights(n: int, seed: int, n_boot: int | None = None) -> "np.ndarray":
    """(n_boot, n) resampling counts: row b says how often each record is drawn in replicate b
    (records resampled with replacement; the same draws as :mod:`chimed_eval.metrics.stats`)."""
    import numpy as np

    from chimed_eval.metrics.stats import N_BOOT

    n_boot = N_BOOT if n_boot is None else n_boot
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    w = np.zeros((n_boot, n))
    np.add.at(w, (np.repeat(np.arange(n_boot), n), idx.ravel()), 1.0)
    return w


def _ci(values: "np.ndarray", level: float = 0.95) -> tuple[float, float]:
    import numpy as np

    a = (1.0 - level) / 2.0
    return float(np.quantile(values, a)), float(np.quantile(values, 1.0 - a))


#: which way each figure of :func:`ner_metrics` is better (:func:`chimed_eval.metrics.metric_direction`):
#: precision, recall and F1 of every protocol (``f1_span``, ``f1_macro``...) up, every failure rate down
DIRECTIONS = {"precision*": "higher", "recall*": "higher", "f1*": "higher", "not_in_text_rate": "lower",
              "unknown_type_rate": "lower", "gold_repeat_rate": "lower", "gold_nested_rate": "lower",
              "gold_nested_count": None, "extraction_failure_rate": "lower", "truncated_prompt_rate": "lower"}
#: the headline figures (the console's default rows; names or patterns): NER: the paper's set protocol
HEADLINE = ("f1", "precision", "recall")


def ner_metrics(records: Sequence[RecordCounts], types: Sequence[str], seed: int, protocol: str | None = None,
                n_boot: int | None = None) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
    """Corpus metrics with seeded 95% bootstrap intervals (records resampled), and the per-type
    breakdown ``{type: {n, n_pred, tp, fp, fn, precision, recall, f1}}`` (set protocol).

    Names: precision/recall/f1 (set, the paper's), *_multiset, *_span, *_span_all (nested gold kept;
    only when every record has its counts), f1_macro (unweighted mean
    of per-type set F1 over the inventory types that occur in the gold or the predictions),
    not_in_text_rate and unknown_type_rate (% of unique predicted pairs), gold_repeat_rate (% of
    gold mentions repeating a pair of their record), gold_nested_rate and gold_nested_count (gold
    mentions that the flat *_span figures leave out), extraction_failure_rate and
    truncated_prompt_rate (% of records).
    """
    import numpy as np

    from chimed_eval.metrics.stats import BOOTSTRAP

    n = len(records)
    by_type_total = {t: sum((r.by_type.get(t, Counts()) for r in records), Counts()) for t in types}
    breakdown: dict[str, dict[str, float | int]] = {
        t: {"n": c.tp + c.fn, "n_pred": c.tp + c.fp, "tp": c.tp, "fp": c.fp, "fn": c.fn,
            "precision": 100 * c.precision, "recall": 100 * c.recall, "f1": 100 * c.f1}
        for t, c in by_type_total.items()
    }
    if n == 0:
        return [], breakdown
    w = bootstrap_weights(n, seed, n_boot)
    out: list[Metric] = []
    protocols = [("set", "", None), ("multiset", "_multiset", None), ("span", "_span", "characters")]
    with_all = all(r.span_all is not None for r in records)
    if with_all:
        protocols.append(("span_all", "_span_all", "characters"))
    for proto, suffix, tok in protocols:
        arr = np.array([getattr(r, proto).as_list() for r in records], dtype=np.float64)  # (n, 3)
        tot = arr.sum(axis=0)
        point = _prf(tot[0:1], tot[1:2], tot[2:3])
        boot = w @ arr  # (n_boot, 3)
        reps = _prf(boot[:, 0], boot[:, 1], boot[:, 2])
        for name, pv, rv in zip(("precision", "recall", "f1"), point, reps):
            lo, hi = _ci(rv)
            out.append(Metric(f"{name}{suffix}", 100 * float(pv[0]), 100 * lo, 100 * hi, n, "corpus", protocol, tok,
                              BOOTSTRAP))
    present = [t for t in types if by_type_total[t].tp + by_type_total[t].fp + by_type_total[t].fn > 0]
    if present:
        per = np.array([[r.by_type.get(t, Counts()).as_list() for t in present] for r in records], dtype=np.float64)
        macro_point = float(np.mean([by_type_total[t].f1 for t in present]))
        boot = np.einsum("bn,ntk->btk", w, per)  # (n_boot, T, 3)
        f = _prf(boot[..., 0], boot[..., 1], boot[..., 2])[2].mean(axis=1)
        lo, hi = _ci(f)
        out.append(Metric("f1_macro", 100 * macro_point, 100 * lo, 100 * hi, n, "subjects", protocol, None, BOOTSTRAP))
    n_pred = sum(r.n_pred for r in records)
    n_gold = sum(r.n_gold_mentions for r in records)
    rate = lambda k, d: 100.0 * k / d if d else 0.0  # noqa: E731
    out += [
        Metric("not_in_text_rate", rate(sum(r.n_not_in_text for r in records), n_pred), None, None, n_pred, "corpus", protocol, None),
        Metric("unknown_type_rate", rate(sum(r.n_unknown_type for r in records), n_pred), None, None, n_pred, "corpus", protocol, None),
        Metric("gold_repeat_rate", rate(sum(r.n_gold_repeats for r in records), n_gold), None, None, n_gold, "corpus", protocol, None),
    ]
    if with_all:
        nested = sum(r.n_gold_nested for r in records)
        out += [Metric("gold_nested_rate", rate(nested, n_gold), None, None, n_gold, "corpus", protocol, None),
                Metric("gold_nested_count", float(nested), None, None, n_gold, "corpus", protocol, None)]
    out += [
        Metric("extraction_failure_rate", rate(sum(r.failed for r in records), n), None, None, n, "records", protocol, None),
        Metric("truncated_prompt_rate", rate(sum(r.truncated for r in records), n), None, None, n, "records", protocol, None),
    ]
    return out, breakdown
