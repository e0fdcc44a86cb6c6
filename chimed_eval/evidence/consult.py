"""What a simulated consultation knows about its case record, and how what the doctor elicited is
counted (:mod:`chimed_eval.task.consult`).

* **Sections** (:func:`split_record`): a CMB-Clin ``description`` is split at its header lines
  into the *history* (现病史 and everything before the first examination header: 病史摘要, 主诉,
  既往史 ...), the *examination* (体格检查) and the *tests* (辅助检查, and other headers naming
  an investigation: 实验室检查, CT, 超声 ...). The patient simulator sees the whole record; test
  orders are answered from the examination and test sections only.
* **Facts** (:func:`history_facts`): the history split at Chinese and Western clause punctuation
  (。；;，,、 and line breaks), numbering and header words dropped, clauses of fewer than
  :data:`MIN_FACT_CHARS` characters (after punctuation and spaces are removed) dropped, duplicates
  dropped (the chief complaint usually repeats the summary).
* **Coverage rule** (:func:`elicited`): a fact counts as elicited when at least
  :data:`COVERAGE_RECALL` (half) of its character bigrams occur among the character bigrams of the
  patient's replies together (punctuation and spaces removed first). Lay rewording lowers this
  figure: it measures what the doctor got the patient to say, read as literally as a rule can.
* **Reference diagnosis** (:func:`reference_diagnosis`): from the case's first question that
  asks for the diagnosis (a question holding 诊断 and no lettered options), else its first
  question: the text after ``诊断：`` (or ``诊断为``) in the answer up to the first 。, the line's end
  or the next numbered part, else the answer's first sentence. :func:`normalise_diagnosis` (both sides, before
  the judge sees them and for the stated exact-match rule): whitespace removed, a leading
  ``诊断：``/``初步诊断：`` and numbering like ``1.`` or ``（1）`` removed, trailing punctuation removed.
* **Value contradictions** (:func:`value_contradictions`, a rule reader of the simulator audit's
  矛盾 question beside the judge's): a *quantity* is a number written in digits (``38.5``,
  ``120/80``) followed by a unit of :data:`UNITS` (``℃``, ``次/分``, ``mmHg``, ``岁``, ``小时``, ``天``,
  ``周``, ``个月``, ``年``, ``次`` ...) and keyed by the two Chinese characters right before it (spaces and
  colons between allowed; filler characters such as 约/为/了 skipped: ``腹痛约3天`` is 腹痛/3/天), plus
  the patient's age (the record's ``男，49岁``, not in a child's record, where a parent may speak; the
  patient's ``我49岁``/``我今年49岁``), keyed 年龄. A
  patient's quantity contradicts the record when the record has a quantity with the same key and
  unit and none with the same value. It fires only on such exact matches (a value in words, another
  key or another unit is never compared), so it misses most contradictions but is right where it
  fires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

MIN_FACT_CHARS = 4
COVERAGE_RECALL = 0.5
_PUNCT = re.compile(r"[\s，,。；;：:、！!？?（）()\[\]【】“”\"'《》<>·．.\-—~～/]+")
_HISTORY_HEADERS = ("现病史", "病史摘要", "主诉", "既往史", "个人史", "家族史", "病例资料", "病史及体检", "病史")
_EXAM_HEADERS = ("体格检查", "查体", "专科检查", "生命体征")
_TEST_WORDS = ("辅助检查", "实验室", "检查", "CT", "MRI", "超声", "X线", "胸片", "镜", "造影", "心电图", "病理",
               "平扫", "DSA", "血常规", "尿常规")
_NUMBERING = re.compile(r"^\s*(?:[（(]\s*\d+\s*[)）]|\d+\s*[.、．]|[①-⑳])\s*")


@dataclass(frozen=True)
class CaseSections:
    """A case record split for the consultation: ``history`` text, ``examination`` and ``tests``
    as (heading, text) parts in record order."""

    history: str
    examination: tuple[tuple[str, str], ...]
    tests: tuple[tuple[str, str], ...]

    @property
    def results(self) -> tuple[tuple[str, str], ...]:
        """Every part a test order can be answered from: the examination, then the tests."""
        return self.examination + self.tests


def compact(text: str) -> str:
    """``text`` with punctuation and whitespace removed (what bigram rules compare)."""
    return _PUNCT.sub("", text)


def bigrams(text: str) -> list[str]:
    """The character bigrams of :func:`compact` ``(text)`` (a single character is its own gram)."""
    t = compact(text)
    return [t] if len(t) == 1 else [t[i:i + 2] for i in range(len(t) - 1)]


def _header(line: str) -> str | None:
    """The section a header line opens ("history", "exam", "tests"), or None for a content line.
    A header is short (at most 12 characters once numbering and a trailing colon are removed)."""
    s = _NUMBERING.sub("", line.strip()).rstrip("：:").strip()
    if not s or len(s) > 12:
        return None
    if any(s.startswith(h) for h in _EXAM_HEADERS):
        return "exam"
    if any(s.startswith(h) for h in _HISTORY_HEADERS):
        return "history"
    if any(w in s for w in _TEST_WORDS) and not re.search(r"\d", s):
        return "tests"
    return None


def split_record(description: str) -> CaseSections:
    """The record's history, examination and test parts (see the module docstring)."""
    history: list[str] = []
    parts: dict[str, list[list[str]]] = {"exam": [], "tests": []}
    where = "history"
    for raw in description.splitlines():
        line = raw.strip()
        if not line:
            continue
        kind, rest = _header(line), ""
        head, colon, tail = line.partition("：") if "：" in line else line.partition(":")
        if kind is None and colon and tail.strip() and head.strip().startswith(_EXAM_HEADERS + ("辅助检查",)):
            kind, line, rest = _header(head), head, tail.strip()  # 查体：体温 36.9℃ ... on one line
        if kind == "history" and where == "history":
            continue  # 现病史 / 病史摘要 / 主诉 headers: the content follows
        if kind in ("exam", "tests"):
            if kind == "tests" and where == "exam" and not line.startswith("辅助"):
                kind = "exam" if _NUMBERING.match(line) else kind  # (2) 腹部查体 under 体格检查
            where = kind
            parts[kind].append([_NUMBERING.sub("", line).rstrip("：:").strip()] + ([rest] if rest else []))
            continue
        if where == "history":
            history.append(line)
        else:
            parts[where][-1].append(line)
    return CaseSections("\n".join(history), _parts(parts["exam"]), _parts(parts["tests"]))


def _parts(groups: list[list[str]]) -> tuple[tuple[str, str], ...]:
    """(heading, text) per group; headings with no text of their own (辅助检查 above (1) ...) go."""
    return tuple((g[0], "\n".join(g[1:])) for g in groups if len(g) > 1)


def history_facts(history: str) -> list[str]:
    """The history's facts, in order (see the module docstring)."""
    out: list[str] = []
    seen: set[str] = set()
    for clause in re.split(r"[。；;，,、\n]+", history):
        c = _NUMBERING.sub("", clause.strip())
        if c.rstrip("：:") in _HISTORY_HEADERS:
            continue
        key = compact(c)
        if len(key) < MIN_FACT_CHARS or key in seen:
            continue
        seen.add(key)
        out.append(c.strip())
    return out


def fact_recall(fact: str, said: set[str]) -> float:
    """The share of ``fact``'s bigrams among ``said`` (a set of bigrams)."""
    grams = bigrams(fact)
    return sum(1 for g in grams if g in said) / len(grams) if grams else 0.0


def elicited(facts: Sequence[str], replies: Sequence[str]) -> list[bool]:
    """Per fact, whether the patient's replies hold it (the coverage rule, module docstring)."""
    said = set(g for r in replies for g in bigrams(r))
    return [fact_recall(f, said) >= COVERAGE_RECALL for f in facts]


def normalise_diagnosis(text: str) -> str:
    """A diagnosis as compared (module docstring)."""
    t = re.sub(r"\s+", "", text or "")
    t = re.sub(r"^(?:初步)?诊断(?:为|是|：|:)?", "", t)
    t = _NUMBERING.sub("", t)
    return t.rstrip("。；;，,.、")


_OPTIONS = re.compile(r"(?:^|\n)\s*[A-E][.．、]")


def reference_diagnosis(qa_pairs: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """(reference diagnosis, how it was read: ``diagnosis-line`` | ``first-sentence``) of a case's
    question/answer pairs (module docstring); ("", "none") for a case with no pairs."""
    if not qa_pairs:
        return "", "none"
    asks = [(q, a) for q, a in qa_pairs if "诊断" in q and not _OPTIONS.search(q)]
    _q, answer = asks[0] if asks else qa_pairs[0]
    m = re.search(r"诊断(?:为\s*[：:]?|[：:])\s*(.+)", answer)
    if m:
        text = re.split(r"\n|。|[（(]\s*2\s*[)）]|诊断依据", m.group(1))[0]
        return normalise_diagnosis(text), "diagnosis-line"
    first = re.split(r"[。\n]", answer.strip())[0]
    return normalise_diagnosis(first), "first-sentence"


def reference_plan(qa_pairs: Sequence[tuple[str, str]]) -> str:
    """What the plan is graded against: the answer of the case's last question about treatment
    (治疗, 处理, 手术, 方案), else of its last question."""
    if not qa_pairs:
        return ""
    treat = [a for q, a in qa_pairs if re.search(r"治疗|处理|手术|方案", q)]
    return (treat[-1] if treat else qa_pairs[-1][1]).strip()


def answer_test_order(order: str, sections: CaseSections) -> list[tuple[str, str]]:
    """The examination and test parts a doctor's test order asks for: every part when the order
    says 全部/所有; the examination parts for 体格/查体/体检; else each part whose heading or text
    holds one of the order's character bigrams (检查 and 结果 themselves do not count)."""
    o = compact(order)
    if re.search(r"全部|所有|全面", o):
        return list(sections.results)
    if re.search(r"体格|查体|体检|生命体征", o):
        return list(sections.examination)
    grams = {g for g in bigrams(o) if g not in ("检查", "结果", "化验", "进行", "需要", "一下", "做个", "请做")}
    return [p for p in sections.results if grams and any(g in compact(p[0] + p[1]) for g in grams)]


#: the units a quantity may carry (longest first where one is the start of another), and their spellings
UNITS = ("次/分", "次/min", "mmHg", "kg", "cm", "mm", "℃", "岁", "小时", "个月", "天", "日", "周", "月", "年", "次")
_SPELLINGS = {"次／分": "次/分", "°C": "℃", "公斤": "kg", "厘米": "cm", "毫米": "mm"}
_FILLER = "约近达为有共第每了至到和或及是已余多仅"
_QUANTITY = re.compile(r"([\u4e00-\u9fff]+)[ \t:：]*(\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?)\s*("
                       + "|".join(re.escape(u) for u in sorted(UNITS + tuple(_SPELLINGS), key=len, reverse=True))
                       + r")(?![A-Za-z/])")  # mm is not the start of mmol/L, nor kg of kg/m2
_RECORD_AGE = re.compile(r"(?:男|女)[，,、\s]*(\d+)\s*岁")
_PATIENT_AGE = re.compile(r"我(?:今年|现在|已经)?(\d+)\s*岁")
_CHILD = re.compile(r"患儿|小儿|婴|幼儿")
AGE_KEY = "年龄"


def _value(v: str) -> str:
    """A number as compared: ``3.0`` and ``3`` alike; ``120/80`` part by part."""
    return "/".join(f"{float(x):g}" for x in v.split("/"))


def quantities(text: str, speaker: str) -> list[tuple[str, str, str]]:
    """(key, value, unit) of each quantity of ``text`` (module docstring); ``speaker`` is
    ``record`` or ``patient`` (whose age is read from its own wording)."""
    out = []
    for m in _QUANTITY.finditer(text):
        run = m.group(1).rstrip(_FILLER)
        if len(run) >= 2:
            out.append((run[-2:], _value(m.group(2)), _SPELLINGS.get(m.group(3), m.group(3))))
    age = (_RECORD_AGE if speaker == "record" else _PATIENT_AGE).search(text)
    if age and not (speaker == "record" and _CHILD.search(text)):  # a child's record: a parent may speak
        out.append((AGE_KEY, _value(age.group(1)), "岁"))
    return out


def value_contradictions(record: Sequence[Sequence[str]], replies: Sequence[str]) -> list[str]:
    """The patient's quantities that contradict the record's ``record`` quantities (module
    docstring), each as ``<key><value><unit>（病历：<key><values><unit>）``, in the order said."""
    known: dict[tuple[str, str], list[str]] = {}
    for key, value, unit in record:
        known.setdefault((key, unit), []).append(value)
    out = []
    for reply in replies:
        for key, value, unit in quantities(reply, "patient"):
            values = known.get((key, unit))
            if values and value not in values:
                out.append(f"{key}{value}{unit}（病历：{key}{'/'.join(dict.fromkeys(values))}{unit}）")
    return out
