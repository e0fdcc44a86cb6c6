"""Entity extraction from free generations: turn a model's NER answer into (entity, type) pairs.

Pure functions: no model, no data. Every decision is recorded (:class:`Decision`), so a
per-sample record shows why each line of the answer was kept, merged or dropped.

Line format (the ``paper`` variant: one entity per line as ``实体 类型``), per line in order:

1. Full-width spaces (U+3000) and no-break spaces become spaces; the line is stripped.
   An empty line is skipped (``empty``); a code fence line (```` ``` ```` / ```` ```json ````)
   is skipped (``code_fence``); ``**bold**`` markers are removed.
2. Numbering and bullets are stripped: ``1.`` ``1、`` ``1)`` ``（1）`` ``[1]`` ``①`` ``- `` ``* `` ``• ``
   ``#`` (a number followed by a digit, as in ``1.5T`` or ``7、8、9组``, is not numbering).
   No CCKS-2019 gold entity starts with numbering, so stripping never costs a true positive.
3. The (entity, type) split, first rule that yields a known type:
   ``实体：X 类型：Y`` (or ``类型：Y，实体：X``); ``X 类型`` / ``X<TAB>类型`` / ``X，类型`` /
   ``X | 类型`` (the LAST separator followed by a known type; any text after the type is a
   trailing explanation and is dropped, noted ``trailing_text``); ``X（类型）`` / ``X(类型)``;
   ``X：类型``; ``类型：X、Y、Z`` (entities grouped by type); a line that is only a type
   (``疾病和诊断：``, ``【药物】``) is a header whose type applies to following lines without one.
   Full- and half-width colons, commas and brackets are equivalent.
4. Types are matched exactly, then through the alias table (``检查`` -> ``影像检查``, noted
   ``alias``), then case-insensitively. A line with a type-like last field that is not in the
   inventory is KEPT as a prediction with the note ``unknown_type`` (it is a false positive,
   counted separately); a line with no type is dropped: ``explanation`` when it reads as prose
   (starts with 注/说明/以上/以下/根据/Note/Here..., ends with 。/：/?, or has four or more Latin
   words), ``none_stated`` for 无/没有/none, otherwise ``no_type``.
5. The entity is stripped of surrounding whitespace; a matching pair of quotes or brackets around
   it is removed when the unwrapped string occurs in the text and the wrapped one does not
   (``quotes``). An empty entity is dropped (``empty_entity``).
6. A pair already kept is marked ``duplicate``: it counts once in the set-based (paper) metric
   and again in the multiset variant. An entity that does not occur in the text is kept (a false
   positive) and noted ``not_in_text``.

JSON format (the ``json`` variant): the first decodable JSON list in the output (inside a code
fence or surrounded by prose, which is recorded as ``explanation``); items are objects with an
entity key (entity/实体/name/text/mention/word/span) and a type key (type/类型/label/category),
``[entity, type]`` pairs, or strings parsed as lines. ``{"entities": [...]}`` and objects keyed by
type (``{"药物": ["泰素"]}``) are accepted. An unterminated list (a generation cut by the token
cap) yields its complete objects, noted ``json_unterminated`` (the cut tail is dropped as
``cut_off``); objects without a list (one per line) are read too (``json_objects``). Output with no JSON at all is
parsed as lines (format ``lines-fallback``).
"""

from __future__ import annotations

import json
import re
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


# --- lines ---------------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")
_NUMBERING = re.compile(
    r"^(?:[（(\[【]\s*\d{1,3}\s*[)）\]】]|\d{1,3}\s*[.．、)）](?!\d)|\d{1,3}\s*[:：](?!\d)|[①-⑳]|[-*•·●○▪◦+]+|#{1,6})\s*"
)
_LABEL_E = r"(?:实体名称|实体名|实体|entity|mention|名称)"
_LABEL_T = r"(?:实体类型|类型|类别|type|label|category)"
_LABELED = re.compile(rf"^{_LABEL_E}\s*[:：]\s*(?P<e>.+?)\s*[,，;；]?\s*{_LABEL_T}\s*[:：]\s*(?P<t>.+?)\s*$", re.I)
_LABELED_REV = re.compile(rf"^{_LABEL_T}\s*[:：]\s*(?P<t>.+?)\s*[,，;；]?\s*{_LABEL_E}\s*[:：]\s*(?P<e>.+?)\s*$", re.I)
_SEP = re.compile(r"\s*[\t|/→,，:：]\s*|\s+|\s*(?:->|=>|[-—－]+)\s*")
_BOUNDARY = re.compile(r"$|[\s,，。.;；:：!！?？(（\[【)）\]】]")
_PAREN_TYPE = re.compile(r"^(?P<e>.+?)\s*[（(\[【](?P<t>[^（()）\[\]【】]+)[)）\]】]\s*(?P<trail>.*)$")
_COLON_SPLIT = re.compile(r"[:：]")
_LIST_SPLIT = re.compile(r"\s*[、，,；;]\s*")
_PROSE_START = re.compile(
    r"^(?:注|说明|解释|备注|以上|以下|根据|文本中|这段|该文本|上述|综上|希望|如果|其中|输出|答案|结果|"
    r"note|here|the |these|this |explanation|based|i |sure|okay|ok[,.]?\s)", re.I
)
_NONE = re.compile(r"^(?:无|没有|无实体|未发现(?:实体)?|none|n/?a|null|\[\s*\])[。.]?$", re.I)
_QUOTES = {"“": "”", '"': '"', "'": "'", "‘": "’", "「": "」", "『": "』", "《": "》", "【": "】", "[": "]", "(": ")", "（": "）", "`": "`"}
_WRAP = re.compile(r"^[\[【\s]*(?P<x>.*?)[\]】\s:：]*$")
_TYPE_TOKEN = re.compile(r"^[^\s,，。.;；!！?？]{1,12}$")


def _normalize_line(line: str) -> str:
    return line.replace("\u3000", " ").replace("\xa0", " ").replace("**", "").strip()


class _LineParser:
    def __init__(self, inv: TypeInventory, text: str | None) -> None:
        self.inv = inv
        self.text = text
        self.names = inv.names()
        self.header: tuple[str, int] | None = None  # (type, line) from a type-header line

    # a known type at the start of s, followed by a boundary: (type, note, length) or None
    def _type_at(self, s: str) -> tuple[str, str | None, int] | None:
        for name in self.names:
            if s.startswith(name) and _BOUNDARY.match(s, len(name)):
                t, note = self.inv.resolve(name)
                if t is not None:
                    return t, note, len(name)
        # case-insensitive (Latin type names)
        low = s.casefold()
        for name in self.names:
            if low.startswith(name.casefold()) and _BOUNDARY.match(s, len(name)):
                t, note = self.inv.resolve(s[: len(name)])
                if t is not None:
                    return t, note, len(name)
        return None

    def _whole_type(self, s: str) -> tuple[str, str | None] | None:
        m = _WRAP.match(s)
        core = m.group("x").strip() if m else s
        core = core.strip("#").strip()
        t, note = self.inv.resolve(core)
        return (t, note) if t is not None else None

    def split(self, s: str) -> tuple[str, str, list[str]] | None:
        """(entity, type, notes) by the first rule that finds a known type, else None."""
        for rx in (_LABELED, _LABELED_REV):
            m = rx.match(s)
            if m:
                t, note = self.inv.resolve(m.group("t").strip().strip("。.;；,，"))
                notes = ["labeled"] + ([note] if note else [])
                if t is None:
                    return m.group("e"), m.group("t").strip(), notes + ["unknown_type"]
                return m.group("e"), t, notes
        # X <sep> TYPE [trailing], the last separator followed by a known type
        for m in reversed(list(_SEP.finditer(s))):
            if m.start() == 0:
                continue
            hit = self._type_at(s[m.end():])
            if hit is None:
                continue
            t, note, n = hit
            trail = s[m.end() + n:].strip()
            notes = ([note] if note else []) + ([f"trailing_text:{trail[:80]}"] if trail else [])
            return s[: m.start()], t, notes
        m = _PAREN_TYPE.match(s)
        if m:
            t, note = self.inv.resolve(m.group("t"))
            if t is not None:
                trail = m.group("trail").strip()
                notes = ["paren"] + ([note] if note else []) + ([f"trailing_text:{trail[:80]}"] if trail else [])
                return m.group("e"), t, notes
        parts = _COLON_SPLIT.split(s)
        if len(parts) >= 2:
            t, note = self.inv.resolve(parts[-1].strip().strip("。.;；,，"))
            if t is not None and parts[-2].strip():
                return s[: s.rfind(parts[-1]) - 1], t, ["colon"] + ([note] if note else [])
        return None

    def line(self, i: int, raw: str) -> Decision | list[Decision]:
        s = _normalize_line(raw)
        if not s:
            return Decision(i, raw, DROPPED, "empty")
        if _FENCE.match(s):
            return Decision(i, raw, DROPPED, "code_fence")
        if _NONE.match(s):
            return Decision(i, raw, DROPPED, "none_stated")
        notes: list[str] = []
        m = _NUMBERING.match(s)
        if m and m.end() < len(s):
            s = s[m.end():].strip()
            notes.append(f"numbering:{m.group(0).strip()}")
        whole = self._whole_type(s)
        if whole is not None:
            self.header = (whole[0], i)
            return Decision(i, raw, DROPPED, "type_header", type=whole[0], notes=tuple(x for x in [whole[1]] if x))
        # type-first: "疾病和诊断：胃癌、贲门癌"
        parts = _COLON_SPLIT.split(s, maxsplit=1)
        if len(parts) == 2 and parts[1].strip():
            t, note = self.inv.resolve(parts[0].strip().strip("#【】[]"))
            if t is not None and self.split(s) is None:
                ents = [e for e in _LIST_SPLIT.split(parts[1].strip().rstrip("。.")) if e]
                base = notes + ["grouped_by_type"] + ([note] if note else [])
                return [self._pair(i, raw, e, t, list(base)) for e in ents] or Decision(i, raw, DROPPED, "empty_entity")
        got = self.split(s)
        if got is None:
            if self.header is not None and not _looks_like_prose(s):
                t, line_no = self.header
                return self._pair(i, raw, s, t, notes + [f"header_type:line{line_no}"])
            if _looks_like_prose(s):
                return Decision(i, raw, DROPPED, "explanation")
            unk = _unknown_type_split(s)
            if unk is not None:
                return self._pair(i, raw, unk[0], unk[1], notes + ["unknown_type"])
            return Decision(i, raw, DROPPED, "no_type", entity=s)
        entity, typ, more = got
        return self._pair(i, raw, entity, typ, notes + more)

    def _pair(self, i: int, raw: str, entity: str, typ: str, notes: list[str]) -> Decision:
        e = entity.replace("\u3000", " ").strip()
        e, qnote = _unwrap(e, self.text)
        if qnote:
            notes.append(qnote)
        if not e:
            return Decision(i, raw, DROPPED, "empty_entity", type=typ, notes=tuple(notes))
        if typ not in self.inv.types and "unknown_type" not in notes:
            notes.append("unknown_type")
        return Decision(i, raw, KEPT, entity=e, type=typ, notes=tuple(notes))


def _unwrap(e: str, text: str | None) -> tuple[str, str | None]:
    """Remove one pair of quotes/brackets around the entity when the bare string is the one in
    the text (without a text: when the inside holds no further quote of that kind)."""
    if len(e) >= 2 and e[0] in _QUOTES and e[-1] == _QUOTES[e[0]]:
        inner = e[1:-1].strip()
        if text is not None and inner and inner in text and e not in text:
            return inner, "quotes"
        if text is None and inner and not any(c in inner for c in (e[0], _QUOTES[e[0]])):
            return inner, "quotes"
    return e, None


def _looks_like_prose(s: str) -> bool:
    if _PROSE_START.match(s):
        return True
    if s.endswith(("。", "：", ":", "？", "?", "！", "!")):
        return True
    return len(re.findall(r"[A-Za-z]{2,}", s)) >= 4


def _unknown_type_split(s: str) -> tuple[str, str] | None:
    """``X Y`` / ``X：Y`` / ``X（Y）`` where Y looks like a type name but is not one we know."""
    m = re.match(r"^(?P<e>.+?)\s*[（(](?P<t>[^（()）]{1,12})[)）]$", s)
    if m and _TYPE_TOKEN.match(m.group("t").strip()):
        return m.group("e"), m.group("t").strip()
    for rx in (r"^(?P<e>.+)[\t ]+(?P<t>\S+)$", r"^(?P<e>.+?)\s*[:：]\s*(?P<t>\S+)$"):
        m = re.match(rx, s)
        if m and _TYPE_TOKEN.match(m.group("t")) and m.group("e").strip():
            return m.group("e"), m.group("t")
    return None


def _finish(fmt: str, items: Iterable[Decision | list[Decision]], text: str | None, notes: Sequence[str] = ()) -> NerParse:
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


def parse_lines(output: str, inventory: TypeInventory, text: str | None = None) -> NerParse:
    """Parse the ``paper`` format: one ``实体 类型`` per line (rules in the module docstring)."""
    p = _LineParser(inventory, text)
    return _finish("lines", [p.line(i, raw) for i, raw in enumerate(output.splitlines(), 1)], text)


# --- JSON ----------------------------------------------------------------------------------------

_ENTITY_KEYS = ("entity", "实体", "name", "text", "mention", "word", "span", "实体名称", "value")
_TYPE_KEYS = ("type", "类型", "label", "category", "实体类型", "entity_type", "类别", "tag")


def _json_candidates(output: str) -> list[tuple[int, Any, int]]:
    """(start, value, end) of every top-level JSON list or object that decodes, in order."""
    dec = json.JSONDecoder()
    found = []
    pos = 0
    while True:
        starts = [i for i in (output.find("[", pos), output.find("{", pos)) if i >= 0]
        if not starts:
            break
        i = min(starts)
        try:
            val, end = dec.raw_decode(output, i)
        except json.JSONDecodeError:
            pos = i + 1
            continue
        found.append((i, val, end))
        pos = end
    return found


def _item_decision(idx: int, item: Any, inv: TypeInventory, text: str | None) -> Decision | list[Decision]:
    raw = json.dumps(item, ensure_ascii=False)
    lp = _LineParser(inv, text)
    if isinstance(item, dict):
        ek = next((k for k in _ENTITY_KEYS if k in item), None) or next((k for k in item if k.lower() in _ENTITY_KEYS), None)
        tk = next((k for k in _TYPE_KEYS if k in item), None) or next((k for k in item if k.lower() in _TYPE_KEYS), None)
        if ek is None:
            return Decision(idx, raw, DROPPED, "no_entity_key")
        if tk is None or not isinstance(item[tk], str) or not item[tk].strip():
            return Decision(idx, raw, DROPPED, "no_type", entity=str(item[ek]))
        e, t = item[ek], item[tk]
    elif isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) for x in item):
        e, t = item
    elif isinstance(item, str):
        d = lp.line(idx, item)
        return d
    else:
        return Decision(idx, raw, DROPPED, "bad_item")
    if not isinstance(e, str):
        return Decision(idx, raw, DROPPED, "bad_item")
    canon, note = inv.resolve(_normalize_line(t))
    notes = [note] if note else []
    if canon is None:
        canon = _normalize_line(t)
        notes.append("unknown_type")
    return lp._pair(idx, raw, e, canon, notes)


def parse_json(output: str, inventory: TypeInventory, text: str | None = None) -> NerParse:
    """Parse the ``json`` format (rules in the module docstring)."""
    cands = _json_candidates(output)
    chosen: tuple[int, list[Any], int] | None = None
    notes: list[str] = []
    for k, (start, val, end) in enumerate(cands):
        if isinstance(val, list) and (not val or any(isinstance(x, (dict, list, str)) for x in val)):
            chosen = (start, val, end)
            break
        if not isinstance(val, dict):
            continue
        if isinstance(val.get("entities"), list):
            chosen, notes = (start, val["entities"], end), ["unwrapped:entities"]
            break
        grouped = [(t, v) for t, v in val.items() if isinstance(v, list) and inventory.resolve(str(t))[0]]
        if grouped and len(grouped) == len(val):
            items = [{"entity": e, "type": t} for t, v in grouped for e in v if isinstance(e, str)]
            chosen, notes = (start, items, end), ["grouped_by_type"]
            break
        if any(key in val for key in _ENTITY_KEYS):
            # objects without a list: a list cut off by the token cap, or one object per line
            objs = [c for c in cands[k:] if isinstance(c[1], dict)]
            lb = output.rfind("[", 0, start)
            unterminated = lb >= 0 and not any(c[0] <= lb < c[2] for c in cands)
            notes = ["json_unterminated"] if unterminated else ["json_objects"]
            chosen = (lb if unterminated else start, [c[1] for c in objs], objs[-1][2])
            break
    if chosen is None:
        p = parse_lines(output, inventory, text)
        return NerParse("lines-fallback", p.pairs, p.decisions, ("no_json_list",))
    start, items, end = chosen
    decisions: list[Any] = []
    prose_before, prose_after = _prose(output[:start]), _prose(output[end:])
    if prose_before:
        decisions.append(Decision(0, prose_before[:200], DROPPED, "explanation"))
    decisions += [_item_decision(k, it, inventory, text) for k, it in enumerate(items, 1)]
    if prose_after:
        why = "cut_off" if "json_unterminated" in notes else "explanation"
        decisions.append(Decision(len(items) + 1, prose_after[:200], DROPPED, why))
    return _finish("json", decisions, text, notes)


def _prose(chunk: str) -> str:
    """Text around the JSON, without code-fence markers."""
    s = re.sub(r"(```|~~~)(?:json)?", "", chunk, flags=re.I).strip()
    return s


def parse_ner(output: str, variant: str, inventory: TypeInventory, text: str | None = None) -> NerParse:
    """Parse a generation in a prompt variant's own format (``paper``: lines, ``json``: JSON)."""
    if variant == "json":
        return parse_json(output, inventory, text)
    return parse_lines(output, inventory, text)


def render_answer(pairs: Iterable[Pair], variant: str) -> str:
    """The gold answer written in a variant's format (used for shots and the oracle backend)."""
    pairs = list(pairs)
    if variant == "json":
        return json.dumps([{"entity": e, "type": t} for e, t in pairs], ensure_ascii=False)
    return "\n".join(f"{e} {t}" for e, t in pairs)
