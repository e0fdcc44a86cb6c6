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

Beside the exact check, :func:`decontaminate` applies lm-evaluation-harness's decontamination
rule: a record whose text (every string a record carries, :func:`record_documents`) shares one
13-gram with a test item's text (its input, each option on its own, reference,
dialogue turns) is dropped and counted (``train.eval_ngram_overlap: drop``, the default) or
refuses the stage (``refuse``); tokens are CJK characters and runs of other
letters and digits, NFKC-normalised and lowercased, punctuation and whitespace dropped
(:mod:`chimed_eval.contamination.ngrams`). It catches a test answer copied with a greeting in
front or its punctuation changed, which the exact check does not. The test side is indexed once
per process (:func:`test_ngram_index`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from chimed_eval.core.errors import ConfigError, MissingDataError

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
def registered_test_items(root: str) -> tuple[Mapping[str, Sequence[Any]], Mapping[str, str]]:
    """Every registered task's (``tasks.TASKS``) test items in data folder ``root``, by task, and
    the tasks skipped because their data is missing (name -> why)."""
    from chimed_eval.tasks import TASKS, get_task

    loaded, skipped = {}, {}
    for name in TASKS.names():
        try:
            loaded[name] = get_task(name).load(Path(root)).samples
        except MissingDataError as e:
            skipped[name] = str(e).split(". ", 1)[0]
    return loaded, skipped


@lru_cache(maxsize=4)
def test_texts(root: str) -> TestTexts:
    """Ask every registered task for its test items in data folder ``root``."""
    loaded, skipped = registered_test_items(root)
    probes: dict[str, list[Probe]] = {}
    for name, samples in loaded.items():
        for s in samples:
            for text, probe in sample_probes(name, s):
                probes.setdefault(text, []).append(probe)
    return TestTexts({t: tuple(dict.fromkeys(ps)) for t, ps in probes.items()}, tuple(loaded), dict(skipped))


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


# --- n-grams: lm-evaluation-harness's 13-gram rule (chimed_eval.contamination.ngrams) -----------------


@dataclass(frozen=True)
class NgramCheck:
    """What one n-gram check covered: ``n``, the tasks checked, allowed and skipped (data missing),
    the records, documents and n-grams scanned, the test items per task sharing an n-gram with
    the records (allowed tasks included; checked ones are never there: they are refused), and
    how long it took."""

    n: int
    checked: tuple[str, ...]
    allowed: tuple[str, ...]
    skipped: Mapping[str, str]
    records: int
    documents: int
    ngrams: int
    contaminated: Mapping[str, int]
    seconds: float
    dropped: int = 0  # records removed (policy "drop")
    policy: str = "refuse"

    def as_dict(self) -> dict[str, Any]:
        from chimed_eval.contamination.ngrams import TOKENISATION

        return {"n": self.n, "tokenisation": TOKENISATION, "checked": list(self.checked),
                "allowed": list(self.allowed), "skipped": dict(self.skipped), "records": self.records,
                "documents": self.documents, "ngrams": self.ngrams, "contaminated_items": dict(self.contaminated),
                "policy": self.policy, "records_dropped": self.dropped, "seconds": self.seconds}


@lru_cache(maxsize=4)
def test_ngram_index(root: str, n: int) -> tuple[Any, tuple[str, ...], Mapping[str, str]]:
    """The n-gram index of every registered task's test items in data folder ``root`` (built once
    per process), the tasks in it, and those skipped because their data is missing."""
    from chimed_eval.contamination.ngrams import TestIndex, TestItem, sample_texts

    loaded, skipped = registered_test_items(root)
    items = [TestItem(name, s.id, sample_texts(s)) for name, samples in loaded.items() for s in samples]
    return TestIndex(items, n), tuple(loaded), dict(skipped)


def record_documents(recs: Iterable[Any]) -> Iterable[tuple[str, str]]:
    """(where, text) for every text of the training records: a document, each message of a
    conversation, a pair's prompt and answers, a prompt's reference and externals."""
    from .data import Chat, Pair, PromptItem

    for i, r in enumerate(recs):
        if isinstance(r, str):
            yield f"text record {i + 1}", r
        elif isinstance(r, Chat):
            yield from ((r.origin or f"record {i + 1}", c) for _, c in r.messages)
        elif isinstance(r, Pair):
            yield from ((r.origin or f"record {i + 1}", t) for t in (r.prompt, r.chosen, r.rejected))
        elif isinstance(r, PromptItem):
            yield from ((r.origin or r.id, t) for t in (r.prompt, *([r.reference] if r.reference else []), *r.external))


NGRAM_POLICIES = ("drop", "refuse")


def check_no_eval_ngram_overlap(recs: Sequence[Any], where: str, allow: Sequence[str] = (),
                                n: int | None = None, policy: str = "refuse") -> NgramCheck:
    """Refuse ``recs`` when one of its texts shares an n-gram with a test item of a task not in
    ``allow`` (``policy="refuse"``), or keep only the records that share none (:func:`decontaminate`,
    ``policy="drop"``; then the returned check's ``dropped`` says how many went)."""
    return decontaminate(recs, where, allow, n, policy)[1]


def decontaminate(recs: Sequence[Any], where: str, allow: Sequence[str] = (), n: int | None = None,
                  policy: str = "drop") -> tuple[list[Any], NgramCheck]:
    """lm-eval's decontamination rule (13 tokens, CJK characters as tokens) between the training
    records and every registered task's test items (:mod:`chimed_eval.contamination.ngrams`).

    A record is **contaminating** when one of its texts shares an n-gram with a test item of a task
    not in ``allow``. ``policy="refuse"``: any such record is a ConfigError naming the tasks, the
    item counts and one example. ``policy="drop"`` (chimed-train's default, ``train.eval_ngram_overlap``):
    those records are removed -- the training side of GPT-3's decontamination -- and the check
    says how many, per task whose items they touched, so the stage report shows what went. CMD's
    doctors reuse answer templates, so its training rows share 13-grams with most ``cmd-qa`` test
    items although no row repeats one (measured: 303 of 500 test items, 3,804 of 6,745 rows)."""
    import time

    from chimed_eval.contamination.ngrams import DEFAULT_N, item_overlaps, key, word_ngrams
    from chimed_eval.contamination.scan import CorpusScan

    if policy not in NGRAM_POLICIES:
        raise ConfigError(f"{where}: eval_ngram_overlap {policy!r}: choose from {list(NGRAM_POLICIES)}")
    t0 = time.perf_counter()
    n = n or DEFAULT_N
    index, loaded, skipped = test_ngram_index(_data_root(), n)
    scan = CorpusScan(index)
    for origin, text in record_documents(recs):
        scan.add(origin, [(None, text)])
    seen = scan.sightings()
    hits = [o for o in item_overlaps(index, seen) if o.contaminated or o.option_only]  # an option's text too
    per_task: dict[str, int] = {}
    for o in hits:
        per_task[o.task] = per_task.get(o.task, 0) + 1
    refused = {t: c for t, c in sorted(per_task.items()) if t not in allow}
    kept, dropped = list(recs), 0
    if refused and policy == "refuse":
        ex = next(o for o in hits if o.task in refused)
        raise ConfigError(
            f"{where}: training data shares {n}-grams with evaluation test items ({refused} items per task; "
            f"lm-eval's decontamination rule), e.g. {ex.task} item {ex.id}: {ex.example!r} ({ex.location}); "
            "remove those records, set train.eval_ngram_overlap: drop, or list the task under "
            "allow_eval_overlap to accept that its figures are no longer clean "
            "(chimed-eval contamination --corpus FILE --tasks TASK lists every item)")
    if refused:  # drop: every record holding an n-gram of a refused task's item
        bad = _refused_ngrams(index, seen, set(refused), n)
        kept = [r for r in recs if not any(key(g) in bad for _, t in record_documents([r]) for g in word_ngrams(t, n))]
        dropped = len(recs) - len(kept)
    return kept, NgramCheck(n, tuple(t for t in loaded if t not in allow), tuple(allow), dict(skipped), len(recs),
                            scan.documents, scan.ngrams, dict(sorted(per_task.items())),
                            round(time.perf_counter() - t0, 2), dropped, policy)


def _refused_ngrams(index: Any, seen: Mapping[str, Any], tasks: set[str], n: int) -> set[str]:
    """The n-gram keys seen in the records that belong to a test item of one of ``tasks``."""
    from chimed_eval.contamination.ngrams import key, word_ngrams

    out: set[str] = set()
    for it in index.items:
        if it.task in tasks:
            out |= {k for _, text in it.texts for g in word_ngrams(text, n) if (k := key(g)) in seen}
    return out


def clear_test_caches() -> None:
    """Forget the test items read so far (a data folder's files changed in this process)."""
    for f in (registered_test_items, test_texts, test_ngram_index):
        f.cache_clear()
