"""Training data: your own JSONL for every stage (validated, errors name file, line and field),
the built-in public sets, splits kept disjoint from every evaluation test item, and mixtures.

JSONL schemas (one JSON object per line; blank lines are skipped; extra keys are ignored):

* **text** (``pretrain``): ``{"text": "..."}``
* **chat** (``sft``): ``{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}``
  with at least one assistant turn, or ``{"prompt": "...", "completion": "..."}`` (one turn).
* **pairs** (``reward``): ``{"prompt": "...", "chosen": "...", "rejected": "..."}``, optional
  ``"kind"`` (accuracy is reported per kind).
* **prompts** (``rejection``): ``{"prompt": "..."}``, optional ``"reference"`` (a gold answer, used
  for BLEU and, with ``include_reference``, as an external candidate) and ``"external"`` (a list
  of answers from elsewhere, e.g. a stronger model, scored with the samples).

Built-in sets (``builtin:``; ``split:`` one of :data:`CMD_SPLITS` for the CMD ones), read from the
data folder (``$CHIMED_EVAL_DATA`` or ``../shared/data``):

* ``cmd-text`` (text): each CMD question/answer row as one document ``question\\nanswer``.
* ``cmd-qa`` (chat / prompts): the CMD row as one user/assistant turn; as prompts, the answer is
  the reference.
* ``cmd-pairs`` (pairs, kind ``easy``): the real answer against the answer of another question
  of the same split (a seeded derangement), the stand-in for human preferences when none exist.
  The harder kind, the real answer against the model's own sampled answer, needs a model: the
  reward stage builds it (``hard_negatives``).
* ``hetmc`` (chat): HET-MC ``train.dialog`` multi-turn consultations; patient = user, doctor =
  assistant (consecutive utterances merged, leading doctor and trailing patient turns dropped).
* ``safetybench`` (chat): SafetyBench Chinese questions with their options, answered with the
  correct option's text. **These are the test items of the ``safetybench-zh`` task**: using them
  for training requires ``allow_eval_overlap: [safetybench-zh]`` and voids that task's figures.

CMD splits: the 500 ``cmd-qa`` test rows are removed first, and with them every row whose question
or answer text equals a test row's. The rest are assigned by question text (so one question never
lands in two splits; a row whose answer text already sits in another split is dropped) with ``sha256("chimed-train-split@1" NUL question)`` into ``pretrain`` 30%,
``sft`` 30%, ``reward`` 10%, ``judge`` 10% (the second reward model, for evaluation only),
``rejection`` 10% and ``heldout`` 10%, each in key order.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from chimed_eval.core.errors import ConfigError, DataError, MissingDataError

from .config import Source

TRAIN_SPLIT_SALT = "chimed-train-split@1"
CMD_SPLITS: dict[str, float] = {"pretrain": 0.3, "sft": 0.3, "reward": 0.1, "judge": 0.1, "rejection": 0.1,
                                "heldout": 0.1}
ROLES = ("system", "user", "assistant")
SCHEMAS = ("text", "chat", "pairs", "prompts")


# --- records ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chat:
    messages: tuple[tuple[str, str], ...]  # (role, content)
    origin: str = ""


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    kind: str = "pairs"
    origin: str = ""


@dataclass(frozen=True)
class PromptItem:
    id: str
    prompt: str
    reference: str | None = None
    external: tuple[str, ...] = ()
    origin: str = ""


def data_dir() -> Path:
    from chimed_eval.data.locations import default_data_dir

    return Path(default_data_dir()).resolve()


# --- JSONL with validation --------------------------------------------------------------------------


def _text(obj: dict, key: str, path: Path, line: int, required: bool = True) -> str | None:
    if key not in obj:
        if required:
            raise DataError(path, line, key, f"missing (keys present: {', '.join(sorted(obj)) or 'none'})")
        return None
    v = obj[key]
    if not isinstance(v, str) or not v.strip():
        raise DataError(path, line, key, f"expected a non-empty string, got {json.dumps(v, ensure_ascii=False)[:60]}")
    return v


def _messages(obj: dict, path: Path, line: int) -> tuple[tuple[str, str], ...]:
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise DataError(path, line, "messages", "expected a non-empty list of {role, content}")
        out = []
        for i, m in enumerate(msgs):
            f = f"messages[{i}]"
            if not isinstance(m, dict):
                raise DataError(path, line, f, "expected an object {role, content}")
            if m.get("role") not in ROLES:
                raise DataError(path, line, f + ".role", f"expected one of {', '.join(ROLES)}, got {m.get('role')!r}")
            c = m.get("content")
            if not isinstance(c, str) or not c.strip():
                raise DataError(path, line, f + ".content", "expected a non-empty string")
            out.append((m["role"], c))
        if not any(r == "assistant" for r, _ in out):
            raise DataError(path, line, "messages", "no assistant turn: nothing to learn from")
        return tuple(out)
    if "prompt" in obj or "completion" in obj:
        return (("user", _text(obj, "prompt", path, line)), ("assistant", _text(obj, "completion", path, line)))
    raise DataError(path, line, "messages", "expected 'messages' (a list of {role, content}) or 'prompt' + 'completion'")


def read_jsonl(path: str | Path, schema: str) -> list[Any]:
    """Records of ``schema`` (text | chat | pairs | prompts) from a JSONL file."""
    if schema not in SCHEMAS:
        raise ValueError(schema)
    from chimed_eval.files.tabular import read_rows

    p = Path(path).expanduser()
    out: list[Any] = []
    for row in read_rows(p, "jsonl"):  # JSON objects, line numbers, clear errors: the evaluation's reader
        obj, line = row.fields, row.line
        origin = f"{p.name}:{line}"
        if schema == "text":
            out.append(_text(obj, "text", p, line))
        elif schema == "chat":
            out.append(Chat(_messages(obj, p, line), origin))
        elif schema == "pairs":
            kind = obj.get("kind", "pairs")
            if not isinstance(kind, str) or not kind:
                raise DataError(p, line, "kind", "expected a non-empty string")
            out.append(Pair(_text(obj, "prompt", p, line), _text(obj, "chosen", p, line),
                            _text(obj, "rejected", p, line), kind, origin))
        else:
            ext = obj.get("external", [])
            if not isinstance(ext, list) or not all(isinstance(e, str) and e.strip() for e in ext):
                raise DataError(p, line, "external", "expected a list of non-empty strings")
            rid = obj.get("id", f"{p.stem}-{line}")
            out.append(PromptItem(str(rid), _text(obj, "prompt", p, line), _text(obj, "reference", p, line, False),
                                  tuple(ext), origin))
    return out


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


# --- CMD: the rows, the evaluation test set, the training splits --------------------------------------


@dataclass(frozen=True)
class QA:
    key: str  # sha256 of the split salt and the question
    question: str
    answer: str


@lru_cache(maxsize=4)
def cmd_test_texts(root: str) -> tuple[frozenset[str], frozenset[str]]:
    """(questions, answers) of the ``cmd-qa`` evaluation test split."""
    from chimed_eval.tasks.generation import load_cmd_qa

    samples = load_cmd_qa(Path(root)).samples
    return frozenset(s.input for s in samples), frozenset(str(s.target) for s in samples)


@lru_cache(maxsize=4)
def cmd_splits(root: str) -> dict[str, tuple[QA, ...]]:
    """Every usable CMD row outside the evaluation test set, by training split (see module doc).
    The rows are the ``cmd-qa`` task's (its loader, every row: same question rule, same dedup)."""
    import sys

    from chimed_eval.tasks.generation import load_cmd_qa

    try:
        every = load_cmd_qa(Path(root), test_size=sys.maxsize).samples
    except MissingDataError as e:
        raise ConfigError(f"built-in CMD data: {e} (set CHIMED_EVAL_DATA to the data folder)") from None
    test_q, test_a = cmd_test_texts(root)
    rows = [QA(hashlib.sha256(f"{TRAIN_SPLIT_SALT}\x00{s.input}".encode("utf-8")).hexdigest(), s.input, str(s.target))
            for s in every if s.input not in test_q and str(s.target) not in test_a]
    bounds, acc = [], 0.0
    for name, frac in CMD_SPLITS.items():
        acc += frac
        bounds.append((acc, name))
    out: dict[str, list[QA]] = {name: [] for name in CMD_SPLITS}
    answer_split: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: (r.key, r.answer)):
        u = int(r.key[:12], 16) / float(16 ** 12)
        split = next(n for b, n in bounds if u < b)
        if answer_split.setdefault(r.answer, split) != split:
            continue  # the same answer text under questions of two splits: kept in the first only
        out[split].append(r)
    return {k: tuple(v) for k, v in out.items()}


def _cmd(split: str | None) -> tuple[QA, ...]:
    if split not in CMD_SPLITS:
        raise ConfigError(f"CMD split {split!r}: choose one of {', '.join(CMD_SPLITS)}")
    return cmd_splits(str(data_dir()))[split]


def easy_pairs(rows: Sequence[QA], seed: int = 0) -> list[Pair]:
    """Real answer (chosen) against the answer of another question of the same rows (rejected):
    a seeded permutation without fixed points, skipping identical answers."""
    n = len(rows)
    if n < 2:
        return []
    order = list(range(n))
    random.Random(f"easy-pairs@{seed}").shuffle(order)
    # rotate the shuffled cycle by one: i -> the next index in a random cycle never maps to itself
    other = {order[i]: order[(i + 1) % n] for i in range(n)}
    return [Pair(r.question, r.answer, rows[other[i]].answer, "easy", f"cmd:{r.key[:12]}")
            for i, r in enumerate(rows) if rows[other[i]].answer != r.answer]


# --- HET-MC and SafetyBench -----------------------------------------------------------------------------


def hetmc_chats(split: str = "train") -> list[Chat]:
    return list(_hetmc_all(str(data_dir()), split))


@lru_cache(maxsize=4)
def _hetmc_all(root: str, split: str) -> tuple[Chat, ...]:
    """Every HET-MC dialogue of ``split`` as a chat, read by the task's own loader: its turns
    (leading doctor turns dropped) and the target doctor turn as the last assistant turn."""
    from chimed_eval.tasks.generation import DOCTOR, PATIENT, load_hetmc

    path = Path(root) / "dialogue" / "hetmc" / f"{split}.dialog"
    if not path.is_file():
        raise ConfigError(f"built-in HET-MC data not found at {path}")
    out = []
    for s in load_hetmc(Path(root), split, allow_duplicate_ids=True).samples:
        turns = [tuple(t) for t in s.turns]
        while turns and turns[0][0] == DOCTOR:
            turns = turns[1:]
        if turns:
            msgs = tuple(("user" if r == PATIENT else "assistant", t.rstrip("\n")) for r, t in turns)
            out.append(Chat(msgs + (("assistant", str(s.target)),), s.id))
    return tuple(out)


def safetybench_chats() -> list[Chat]:
    """The ``safetybench-zh`` test items (its loader) as one-turn chats: the question with its
    options, answered with the correct option's text."""
    from chimed_eval.tasks.exams import load_safetybench

    out = []
    for s in load_safetybench(data_dir()).samples:
        opts = "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(s.choices))
        out.append(Chat((("user", f"{s.input}\n{opts}"), ("assistant", s.choices[int(s.target)])), f"safetybench-{s.id}"))
    return out


# --- sources -------------------------------------------------------------------------------------------


def _builtin(src: Source, schema: str, seed: int) -> list[Any]:
    name = src.builtin
    if name == "cmd-text" and schema == "text":
        return [f"{r.question}\n{r.answer}" for r in _cmd(src.split)]
    if name == "cmd-qa" and schema == "chat":
        return [Chat((("user", r.question), ("assistant", r.answer)), f"cmd:{r.key[:12]}") for r in _cmd(src.split)]
    if name == "cmd-qa" and schema == "prompts":
        return [PromptItem(f"cmd-{r.key[:12]}", r.question, r.answer, (), f"cmd:{r.key[:12]}") for r in _cmd(src.split)]
    if name == "cmd-pairs" and schema == "pairs":
        rows = _cmd(src.split)
        if src.limit is not None:
            rows = rows[: src.limit]
        return easy_pairs(rows, seed)
    if name == "hetmc" and schema == "chat":
        return hetmc_chats(src.split or "train")
    if name == "safetybench" and schema == "chat":
        return safetybench_chats()
    known = {"text": "cmd-text", "chat": "cmd-qa, hetmc, safetybench", "pairs": "cmd-pairs", "prompts": "cmd-qa"}
    raise ConfigError(f"built-in source {name!r} does not give {schema} records; for {schema} use: {known[schema]}")


def load_source(src: Source, schema: str, seed: int = 0) -> list[Any]:
    if (src.path is None) == (src.builtin is None):
        raise ConfigError(f"a source needs exactly one of path / builtin, got {src}")
    recs = read_jsonl(src.path, schema) if src.path else _builtin(src, schema, seed)
    if src.limit is not None:
        recs = recs[: src.limit]
    if src.kind is not None and schema == "pairs":
        from dataclasses import replace

        recs = [replace(r, kind=src.kind) for r in recs]
    return recs


def mixture(sources: Sequence[Source], schema: str, total: int | None, seed: int,
            usable: Callable[[Any], bool] | None = None) -> tuple[list[Any], dict[str, int]]:
    """Records from several sources in their declared proportions (``weight``).

    With ``total`` set, source i contributes round(total * w_i / sum w) records: its records in a
    seeded shuffle, cycled when it has fewer (the count of each is returned). Without ``total``
    every record of every source is used once (weights ignored). The result is shuffled.
    ``usable`` drops records before the quotas are drawn (e.g. SFT conversations with no answer
    token within ``max_length``), so the proportions hold for what is trained on."""
    if not sources:
        raise ConfigError("no data sources")
    if any(s.weight <= 0 for s in sources):
        raise ConfigError("source weights must be > 0")
    loaded = [load_source(s, schema, seed) for s in sources]
    if usable is not None:
        loaded = [[r for r in recs if usable(r)] for recs in loaded]
    for s, recs in zip(sources, loaded):
        if not recs:
            raise ConfigError(f"source {s.label()} gave no records")
    rng = random.Random(f"mixture@{seed}")
    out: list[Any] = []
    counts: dict[str, int] = {}
    if total is None:
        for s, recs in zip(sources, loaded):
            out.extend(recs)
            counts[s.label()] = len(recs)
    else:
        wsum = sum(s.weight for s in sources)
        quotas = _quotas(total, [s.weight / wsum for s in sources])
        for s, recs, q in zip(sources, loaded, quotas):
            order = list(range(len(recs)))
            rng.shuffle(order)
            out.extend(recs[order[i % len(order)]] for i in range(q))
            counts[s.label()] = counts.get(s.label(), 0) + q
    rng.shuffle(out)
    return out, counts


def _quotas(total: int, shares: Sequence[float]) -> list[int]:
    """Largest-remainder rounding: the quotas sum to ``total`` exactly."""
    raw = [total * s for s in shares]
    q = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - q[i], reverse=True)[: total - sum(q)]:
        q[i] += 1
    return q
