"""Entity extraction from free generations: turn a model's NER answer into (entity, type) pairs.

Pure functions: no model, no data. Every decision is recorded (:class:`Decision`), so a
per-sample record shows why each line of the answer was kept, merged or dropped.

Line format (the ``paper`` variant: one entity per line as ``实体 类型``), per line in order:

1. Full-width spaces (U+3000) and no-break spaces become spaces; the line is stripped.
   An empty line is skipped (``empty``); a code fence line (```` ``` ```` / ```` ```json ````)
   is skipped (``code_fence``); ``**bold**`` markers are removed.
2. Numbering and bullets are stripped: ``1.`` ``1、`` ``1)`` ``（1）`` ``[1]`` ``①`` ``- `` ``* `` ``• ``
   ``#`` (a number followed by a digit, as in ``1.5T`` or ``7、8、9组``, is not numbering; a bullet
   needs whitespace after it, so ``*0302`` (an HLA allele) and ``-DR4`` keep their first character).
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

The records are :mod:`chimed_eval.extract.ner_records`, the line format
:mod:`chimed_eval.extract.ner_lines`; both are re-exported here.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from chimed_eval.extract.ner_lines import LineParser, normalize_line, parse_lines
from chimed_eval.extract.ner_records import DROPPED, DUPLICATE, KEPT, Decision, NerParse, Pair, TypeInventory, finish

__all__ = ["DROPPED", "DUPLICATE", "KEPT", "Decision", "NerParse", "Pair", "TypeInventory", "parse_json", "parse_lines",
           "parse_ner", "render_answer"]


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
    lp = LineParser(inv, text)
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
    canon, note = inv.resolve(normalize_line(t))
    notes = [note] if note else []
    if canon is None:
        canon = normalize_line(t)
        notes.append("unknown_type")
    return lp.pair(idx, raw, e, canon, notes)


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
    return finish("json", decisions, text, notes)


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
