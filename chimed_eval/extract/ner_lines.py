"""The line format of NER answers (the ``paper`` variant: one ``实体 类型`` per line).

The rules, in order, are in :mod:`chimed_eval.extract.ner`'s docstring; :class:`LineParser` applies
them to one line at a time (it keeps the type of a header line for the lines after it), and the
JSON format reuses it for items that are plain strings.
"""

from __future__ import annotations

import re

from chimed_eval.extract.ner_records import DROPPED, KEPT, Decision, NerParse, TypeInventory, finish

# --- lines ---------------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")
# a bullet needs whitespace after it: "*0302" (an HLA allele) and "-DR4" are entities, "* 0302" a bullet
_NUMBERING = re.compile(
    r"^(?:[（(\[【]\s*\d{1,3}\s*[)）\]】]|\d{1,3}\s*[.．、)）](?!\d)|\d{1,3}\s*[:：](?!\d)|[①-⑳]|[-*•·●○▪◦+]+(?=\s)|#{1,6})\s*"
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


def normalize_line(line: str) -> str:
    return line.replace("\u3000", " ").replace("\xa0", " ").replace("**", "").strip()


class LineParser:
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
        s = normalize_line(raw)
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
                return [self.pair(i, raw, e, t, list(base)) for e in ents] or Decision(i, raw, DROPPED, "empty_entity")
        got = self.split(s)
        if got is None:
            if self.header is not None and not _looks_like_prose(s):
                t, line_no = self.header
                return self.pair(i, raw, s, t, notes + [f"header_type:line{line_no}"])
            if _looks_like_prose(s):
                return Decision(i, raw, DROPPED, "explanation")
            unk = _unknown_type_split(s)
            if unk is not None:
                return self.pair(i, raw, unk[0], unk[1], notes + ["unknown_type"])
            return Decision(i, raw, DROPPED, "no_type", entity=s)
        entity, typ, more = got
        return self.pair(i, raw, entity, typ, notes + more)

    def pair(self, i: int, raw: str, entity: str, typ: str, notes: list[str]) -> Decision:
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


def parse_lines(output: str, inventory: TypeInventory, text: str | None = None) -> NerParse:
    """Parse the ``paper`` format: one ``实体 类型`` per line (rules in the module docstring)."""
    p = LineParser(inventory, text)
    return finish("lines", [p.line(i, raw) for i, raw in enumerate(output.splitlines(), 1)], text)
