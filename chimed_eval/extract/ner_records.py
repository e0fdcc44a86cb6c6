"""The records of NER output parsing: decisions, parses and the type inventory.

:mod:`chimed_eval.extract.ner` documents the rules; this module holds what they produce (one
:class:`Decision` per line or JSON item, the :class:`NerParse` of a generation) and what they read
(the :class:`TypeInventory`), and :func:`finish`, which both formats share: it marks repeated pairs
as duplicates and entities absent from the text as ``not_in_text``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

Pair = tuple[str, str]

KEPT, DUPLICATE, DROPPED = "kept", "duplicate", "dropped"


@dataclass(frozen=True)
class Decision:
    """What the parser did with one line (or JSON item) of the output.

    ``index`` is the 1-based line number (format ``lines``) or item number (``json``);
    ``action`` is kept | duplicate | dropped; ``reason`` says why a line was dropped; ``notes``
    list every transformation applied to a kept line (numbering, alias, trailing_text, quotes,
    header_type, unknown_type, not_in_text ...).
    """

    index: int
    raw: str
    action: str
    reason: str = ""
    entity: str | None = None
    type: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class NerParse:
    """The parse of one generation. ``pairs`` is every kept mention in output order, duplicates
    included (the multiset); :attr:`unique` is the set in first-occurrence order."""

    format: str
    pairs: tuple[Pair, ...]
    decisions: tuple[Decision, ...]
    notes: tuple[str, ...] = ()

    @property
    def unique(self) -> tuple[Pair, ...]:
        return tuple(dict.fromkeys(self.pairs))

    def _count(self, note: str) -> int:
        return sum(1 for d in self.decisions if d.action == KEPT and note in d.notes)

    @property
    def n_not_in_text(self) -> int:
        """Unique predicted pairs whose entity string does not occur in the text."""
        return self._count("not_in_text")

    @property
    def n_unknown_type(self) -> int:
        """Unique predicted pairs whose type is outside the inventory."""
        return self._count("unknown_type")

    @property
    def n_duplicates(self) -> int:
        return sum(1 for d in self.decisions if d.action == DUPLICATE)

    @property
    def n_dropped(self) -> int:
        return sum(1 for d in self.decisions if d.action == DROPPED and d.reason not in _STRUCTURAL)

    @property
    def failed(self) -> bool:
        """No pair could be read although the output had content that was not a statement of
        'no entities' (counted as an extraction failure)."""
        return not self.pairs and self.n_dropped > 0

    @property
    def explanation_only(self) -> bool:
        """No pair was read and nothing failed to parse, but some of the output was dropped as
        ``explanation`` (prose such as ``以下是实体：`` with no list after it, cut by the budget).
        Such an output is neither a failure nor a statement of 'no entities'; it is counted on
        its own (``explanation_only_rate``)."""
        return not self.pairs and not self.failed and any(
            d.action == DROPPED and d.reason == "explanation" for d in self.decisions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "notes": list(self.notes),
            "decisions": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(d).items()
                           if v not in (None, "", ())} for d in self.decisions],
        }


# reasons that are structure, not a failure to read an entity
_STRUCTURAL = frozenset({"empty", "code_fence", "type_header", "none_stated", "explanation", "cut_off"})


@dataclass(frozen=True)
class TypeInventory:
    """The entity types a task accepts, and the short or alternative names mapped onto them."""

    types: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for a, t in self.aliases.items():
            if t not in self.types:
                raise ValueError(f"alias {a!r} maps to {t!r}, which is not one of the types {list(self.types)}")

    def resolve(self, name: str) -> tuple[str | None, str | None]:
        """(canonical type, note) for a type name; (None, None) when it is not known."""
        s = name.strip()
        if s in self.types:
            return s, None
        if s in self.aliases:
            return self.aliases[s], f"alias:{s}->{self.aliases[s]}"
        low = s.casefold()
        for t in self.types:
            if t.casefold() == low:
                return t, f"case:{s}->{t}"
        for a, t in self.aliases.items():
            if a.casefold() == low:
                return t, f"alias:{s}->{t}"
        return None, None

    def names(self) -> list[str]:
        """Every accepted spelling, longest first (so 实验室检验 wins over 检验)."""
        return sorted({*self.types, *self.aliases}, key=lambda x: (-len(x), x))


def finish(fmt: str, items: Iterable[Decision | list[Decision]], text: str | None, notes: Sequence[str] = ()) -> NerParse:
    """The parse from per-line decisions (a JSON item may yield several): duplicates marked,
    ``not_in_text`` noted on kept pairs whose entity is not in ``text``."""
    flat: list[Decision] = []
    for it in items:
        flat.extend(it if isinstance(it, list) else [it])
    seen: set[Pair] = set()
    pairs: list[Pair] = []
    out: list[Decision] = []
    for d in flat:
        if d.action != KEPT or d.entity is None or d.type is None:
            out.append(d)
            continue
        pair = (d.entity, d.type)
        if pair in seen:
            out.append(Decision(d.index, d.raw, DUPLICATE, "", d.entity, d.type, d.notes))
        else:
            seen.add(pair)
            n = d.notes + (("not_in_text",) if text is not None and d.entity not in text else ())
            out.append(Decision(d.index, d.raw, KEPT, "", d.entity, d.type, n))
        pairs.append(pair)
    return NerParse(fmt, tuple(pairs), tuple(out), tuple(notes))
