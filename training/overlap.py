"""No evaluation test item in training: every registered evaluation task is asked for its test
items, and a training record that repeats one is refused.

The test texts of a task are what its loader returns for each item: the ``input``, the text
``target`` (an open-QA answer, a dialogue's doctor turn), the turns of a dialogue's context, and
the ``choices`` of a multiple-choice item. Texts are compared normalised (stripped, runs of
whitespace as one space) and *exactly*: a record's text (a document, its first line and the rest,
a message, a prompt, an answer) leaks an item when it, or its part before an option block
(``\\nA. ...``), is one of the item's identifying texts. Choices alone identify nothing (``是。``
answers many questions), nor does any text shorter than :data:`MIN_IDENTIFYING_CHARS` (``不客气``,
``好的``: generic turns recur in any consultation), except a short exam question followed by
every one of its options.

Tasks whose data is not in the data folder are skipped and named (:class:`OverlapCheck`), so a
report says which test sets the check could not see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from chimed_eval.errors import ConfigError, MissingDataError

MIN_IDENTIFYING_CHARS = 8
# an option block's first marker: "\nA. ", " (A) ", "A、", "A：" ... (whitespace-normalised text)
_OPTION_A = re.compile(r" [(（]?A ?[.．、:：)）]")


def normalise(text: str) -> str:
    """Stripped, every run of whitespace (newlines included) as one space."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Probe:
    """An identifying text of one of ``task``'s test items. ``alone``: the text identifies the item
    by itself (it has at least MIN_IDENTIFYING_CHARS characters); else only as the question before
    an option block in which all the item's ``choices`` (normalised) follow."""

    task: str
    choices: tuple[str, ...] = ()
    alone: bool = True


@dataclass(frozen=True)
class TestTexts:
    """The identifying texts of every loadable task's test items (normalised text -> probes), and
    the tasks skipped because their data is missing (name -> why)."""

    probes: Mapping[str, tuple[Probe, ...]]
    tasks: tuple[str, ...]
    skipped: Mapping[str, str]


@dataclass(frozen=True)
class OverlapCheck:
    """What one check covered: the tasks checked, those allowed to overlap, those skipped."""

    checked: tuple[str, ...]
    allowed: tuple[str, ...]
    skipped: Mapping[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"checked": list(self.checked), "allowed": list(self.allowed), "skipped": dict(self.skipped)}


def sample_probes(task: str, sample: Any) -> Iterable[tuple[str, Probe]]:
    """(normalised text, probe) for one test item: its input, a text target and a dialogue's
    context turns (``Sample.turns``) of at least MIN_IDENTIFYING_CHARS characters; a
    shorter multiple-choice question only followed by its options."""
    choices = tuple(n for n in map(normalise, sample.choices) if n)
    raw = [sample.input, *([sample.target] if isinstance(sample.target, str) else [])]
    raw += [t for _, t in sample.turns or ()]
    for i, text in enumerate(map(normalise, raw)):
        if len(text) >= MIN_IDENTIFYING_CHARS:
            yield text, Probe(task, choices)
        elif i == 0 and text and choices:
            yield text, Probe(task, choices, alone=False)


@lru_cache(maxsize=4)
def test_texts(root: str) -> TestTexts:
    """Ask every registered task (``tasks.TASKS``) for its test items in data folder ``root``."""
    from tasks import TASKS, get_task

    probes: dict[str, list[Probe]] = {}
    loaded, skipped = [], {}
    for name in TASKS.names():
        try:
            data = get_task(name).load(Path(root))
        except MissingDataError as e:
            skipped[name] = str(e).split(". ", 1)[0]
            continue
        loaded.append(name)
        for s in data.samples:
            for text, probe in sample_probes(name, s):
                probes.setdefault(text, []).append(probe)
    return TestTexts({t: tuple(dict.fromkeys(ps)) for t, ps in probes.items()}, tuple(loaded), skipped)


def _leaks(text: str, index: Mapping[str, tuple[Probe, ...]]) -> set[str]:
    """The tasks whose test item ``text`` repeats (see the module doc)."""
    t = normalise(text)
    hits = {p.task for p in index.get(t, ()) if p.alone}
    for m in _OPTION_A.finditer(t):
        options = t[m.start():]
        hits |= {p.task for p in index.get(t[: m.start()], ()) if p.alone or all(c in options for c in p.choices)}
    return hits


def eval_overlap(texts: Iterable[str], allow: Sequence[str] = (), root: str | None = None) -> dict[str, int]:
    """How many of ``texts`` (any training record's strings) repeat a test item, per task; empty
    when none does. Tasks in ``allow`` are not checked."""
    tt = test_texts(root or _data_root())
    index = {t: kept for t, ps in tt.probes.items() if (kept := tuple(p for p in ps if p.task not in allow))}
    hits: dict[str, int] = {}
    for text in texts:
        for task in _leaks(text, index):
            hits[task] = hits.get(task, 0) + 1
    return dict(sorted(hits.items()))


def record_texts(recs: Iterable[Any]) -> Iterable[str]:
    """Every text a training record carries: a document (and its first line and the rest), each
    message of a conversation, a pair's prompt and answers, a prompt's reference and externals."""
    from .data import Chat, Pair, PromptItem

    for r in recs:
        if isinstance(r, str):
            yield r
            yield from r.split("\n", 1)
        elif isinstance(r, Chat):
            yield from (c for _, c in r.messages)
        elif isinstance(r, Pair):
            yield from (r.prompt, r.chosen, r.rejected)
        elif isinstance(r, PromptItem):
            yield from (r.prompt, *([r.reference] if r.reference else []), *r.external)


def check_no_eval_overlap(recs: Sequence[Any], where: str, allow: Sequence[str] = ()) -> OverlapCheck:
    """Refuse ``recs`` when one repeats an evaluation test item of a task not in ``allow``; say
    which tasks were checked and which were skipped (their data is missing)."""
    root = _data_root()
    hits = eval_overlap(record_texts(recs), allow, root)
    if hits:
        raise ConfigError(f"{where}: training data contains evaluation test items ({hits}); remove them, or list "
                          "the task under allow_eval_overlap to accept that its figures are no longer clean")
    tt = test_texts(root)
    return OverlapCheck(tuple(t for t in tt.tasks if t not in allow), tuple(allow), dict(tt.skipped))


def _data_root() -> str:
    from .data import data_dir

    return str(data_dir())
