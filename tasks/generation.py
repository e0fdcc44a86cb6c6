"""Open QA and multi-turn dialogue: free generation scored by BLEU/ROUGE in two protocols.

Tasks (``--limit N`` takes the first N items of the documented order):

* ``chimed-qa``: the ChiMed open-QA test set (not public). Put it at ``<data-dir>/chimed/test.jsonl``
  (``chimed_eval.data.DATA_LOCATIONS`` defines every data folder; ``chimed-eval data`` prints them)
  (or ``test.json`` / ``.csv`` / ``.tsv`` / ``.xlsx``): one record per question with ``question``,
  ``answer_1`` and optionally ``answer_2`` (and ``id``); the authors' processed form
  ``{"prompt": [q], "output": [a]}`` is read too. Each question appears once per reference answer,
  as the authors scored it: item ids ``chimed-<id or line>-<k>`` for answer k, in file order.
* ``cmd-qa``: the public stand-in, CMD internal medicine (``<data-dir>/cmd/internal_medicine_5000-6000.csv``,
  GB18030; the encoding is detected: UTF-8 first, then GB18030). The question is ``ask`` (``title``
  when ``ask`` is empty or ``无``), the reference ``answer``. Rows repeating a (question, answer)
  pair are dropped (first kept). **Test split**: each row's key is
  ``sha256("cmd-qa-split@1" NUL department NUL title NUL ask NUL answer)``; the 500 rows with the
  smallest keys, in key order, are the test set (so ``--limit 100`` is a seeded random 100). Item
  id: ``cmd-`` + the key's first 12 hex digits.
* ``mc-dialogue``: HET-MC (the paper's MC corpus), public sample ``<data-dir>/dialogue/hetmc/test.dialog``
  (18 dialogues); item id ``hetmc-test-<dialogue id>``.
* ``covid-dialogue-zh``: COVID-Dialogue Chinese, ``<data-dir>/dialogue/covid_zh/test_data.json``
  (109 dialogues); item id ``covid-test-<index>`` (0-based position in the file).

Dialogues: consecutive utterances of one speaker are merged, each utterance followed by ``\\n``
(the authors' ``process_multi_turn.py``). The target is the last doctor turn; the context is every
turn before it. A dialogue with no doctor turn after a patient turn has no item.

Prompt variants (``--variant``): ``paper`` (default) renders ``[human]:{question}\\n[bot]:`` for QA
and ``[human]:{p1}[bot]:{d1}...[human]:{pn}[bot]:`` for dialogue (turn texts end in ``\\n``), and
generation stops at the next ``[human]:`` or ``[bot]:`` (the model starting another turn);
``chat`` renders the same turns as user/assistant messages in the model's own format
(:mod:`chimed_eval.chat`: the preset's documented chat format from :data:`chimed_eval.prompts.CHAT_FORMATS`,
stopping at that format's turn markers, or the tokenizer's chat template; a model with neither is
refused). A backend that does not apply the stop strings itself is covered too: the generation is
cut at the earliest stop string before scoring, the uncut text kept in ``extra.generation_uncut``.

Decoding (recorded in results.json ``settings.generation`` and in every record): ``greedy`` (the
default) or ``paper-sampling`` (top_p 0.85, temperature 1.0: the authors' settings), both with
up to 512 new tokens; ``--max-new-tokens`` overrides the budget. A sampled item's seed is derived
from (``--seed``, item id) by the runner and the HF backend samples each such item on its own
after ``torch.manual_seed(seed)``, so a sampled run repeats exactly on the same backend and device.

Records hold the raw generation, the reference (``gold``), the rendered context (``prompt``), and
in ``extra``: ``empty`` (nothing but whitespace, punctuation or invisible characters: scored as zero overlap, never dropped),
``truncated`` (the generation used its whole budget: ``n_tokens >= max_new_tokens`` when the
backend reports a token count, else ``len(text) >= max_new_tokens`` characters, a heuristic that
holds for tokenizers with at least one character per token, as usual for Chinese), the decoding,
and the per-item metric statistics (:mod:`chimed_eval.metrics.text`), which ``chimed-eval score``
recomputes from the texts alone. That ``extra`` is typed as
:class:`chimed_eval.evidence.GenerationEvidence`, and its metrics are declared beside it.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.chat import chatml_renderer, with_system  # noqa: F401  (chatml_renderer re-exported)
from chimed_eval.data import CHIMED_QA_TEST, CMD_QA_FILE, data_location
from chimed_eval.errors import ConfigError, DataError, MissingDataError
from chimed_eval.evidence import GENERATION_CORPUS, GENERATION_SAMPLE, SOURCE_KEYS, Decoding, GenerationEvidence
from chimed_eval.prompts import CHIMED, apply_chat, cut_at_stop
from chimed_eval.reasoning import strip_reasoning
from chimed_eval.tabular import cell_text, read_rows, split_lines
from chimed_eval.task import Task, TaskData, TaskRunOptions, file_sha256
from chimed_eval.types import GenerationConfig, Message, Metric, Request, Response, Sample, SampleScore

from . import TASKS

PROMPT_VERSION = "gen@1"
DECODING = {
    "greedy": {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 512},
    "paper-sampling": {"temperature": 1.0, "top_p": 0.85, "max_new_tokens": 512},
}
DEFAULT_DECODING = "greedy"
PAPER_STOP = CHIMED.stop  # ("[human]:", "[bot]:"): the next turn of either speaker
CMD_SPLIT_SALT = "cmd-qa-split@1"
CMD_TEST_SIZE = 500
CMD_FILE = CMD_QA_FILE.rsplit("/", 1)[1]
PATIENT, DOCTOR = "patient", "doctor"


# --- encodings ------------------------------------------------------------------------------------


def detect_encoding(path: Path, candidates: Sequence[str] = ("utf-8", "gb18030")) -> str:
    """The first of ``candidates`` that decodes the whole file (a UTF-8 BOM is accepted). A file
    that none decodes is a DataError naming it, each encoding tried and where it failed."""
    data = Path(path).read_bytes()
    failures = []
    for enc in candidates:
        body = data[3:] if enc == "utf-8" and data.startswith(b"\xef\xbb\xbf") else data
        try:
            body.decode(enc)
            return enc
        except UnicodeDecodeError as e:
            line = body.count(b"\n", 0, e.start) + 1
            failures.append(f"{enc} (byte 0x{body[e.start:e.start + 1].hex()} on line {line})")
    raise DataError(path, None, None, f"cannot decode the file: tried {', '.join(failures)}; "
                                      "convert it to UTF-8 or pass its encoding")


def _rel(data_dir: Path, path: Path) -> str:
    try:
        return str(path.relative_to(data_dir))
    except ValueError:
        return str(path)


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingDataError(f"{path} not found. {what}")
    return path


# --- the task -------------------------------------------------------------------------------------


class GenerationTask(Task):
    """Generate an answer (QA) or the doctor's next turn (dialogue); see the module docstring."""

    variants = ("paper", "chat")
    default_variant = "paper"

    def __init__(self, name: str, loader: Callable[[Path], TaskData], description: str = "") -> None:
        self.name = name
        self._loader = loader
        self.description = description

    # -- settings
    def check_options(self, options: TaskRunOptions) -> None:
        """``--decoding`` must be a preset of :data:`DECODING`; ``--max-new-tokens`` at least 1."""
        if (options.decoding or DEFAULT_DECODING) not in DECODING:
            raise ConfigError(f"unknown decoding {options.decoding!r}; choose from {sorted(DECODING)}")
        if options.max_new_tokens is not None and options.max_new_tokens < 1:
            raise ConfigError("--max-new-tokens must be >= 1")

    def generation_config(self, options: TaskRunOptions) -> GenerationConfig:
        d = DECODING[options.decoding or DEFAULT_DECODING]
        chat_stop = options.chat.stop if options.chat is not None else ()
        return GenerationConfig(max_new_tokens=options.max_new_tokens or int(d["max_new_tokens"]),
                                stop=PAPER_STOP if options.variant == "paper" else tuple(chat_stop),
                                temperature=float(d["temperature"]), top_p=float(d["top_p"]))

    def generation_record(self, data: TaskData, samples: Sequence[Sample], requests: Sequence[Request],
                          options: TaskRunOptions) -> dict[str, Any]:
        """What results.json records under ``settings.generation.<task>``."""
        decoding = options.decoding or DEFAULT_DECODING
        d = DECODING[decoding]
        return {"decoding": decoding, "temperature": d["temperature"], "top_p": d["top_p"],
                "max_new_tokens": options.max_new_tokens or d["max_new_tokens"],
                "max_new_tokens_overridden": options.max_new_tokens is not None,
                "seed": "per item: runner.item_seed(--seed, item id)" if d["temperature"] > 0 else None,
                "chat_template": options.chat.label if options.chat is not None else None,
                "prompt_version": PROMPT_VERSION}

    def scoring_mode(self, variant: str) -> str:
        return "generate"

    # -- data and prompts
    def load(self, data_dir: Path) -> TaskData:
        return self._loader(data_dir)

    def render(self, sample: Sample, options: TaskRunOptions) -> tuple[str, tuple[Message, ...]]:
        """The context, and for a chat API the messages it stands for (else none)."""
        turns = sample.turns or ((PATIENT, str(sample.input).strip()),)
        if options.variant == "paper":
            if sample.turns is None:
                return apply_chat("chimed", str(sample.input).strip()), ()
            return "".join(("[human]:" if role == PATIENT else "[bot]:") + text for role, text in turns) + "[bot]:", ()
        if options.chat is None:
            raise ConfigError(f"task {self.name!r}: the chat variant needs the model's chat template "
                              "(chimed-eval run sets it from the model's tokenizer); use --variant paper")
        msgs = [{"role": "user" if role == PATIENT else "assistant", "content": text.rstrip("\n")} for role, text in turns]
        msgs = with_system(msgs, options.system_prompt)  # --system-prompt: a system message first
        messages = tuple(Message(m["role"], m["content"]) for m in msgs) if options.chat.messages else ()  # type: ignore[arg-type]
        return options.chat.render(msgs), messages

    def build_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions) -> list[Request]:
        from chimed_eval.metrics.text import TEXT_EXTRA_HINT, missing_text_packages

        if options.shots:
            raise ConfigError(f"task {self.name!r} is 0-shot; pass --shots 0 or leave --shots out")
        if missing := missing_text_packages():  # before any generation, not at scoring
            raise ConfigError(f"task {self.name!r}: {TEXT_EXTRA_HINT} (missing: {', '.join(missing)})")
        gen = self.generation_config(options)
        special = options.chat.add_special_tokens if options.variant == "chat" and options.chat is not None else None
        out = []
        for s in samples:
            context, messages = self.render(s, options)
            out.append(Request(kind="generate", key=s.id, context=context, generation=gen, add_special_tokens=special,
                               messages=messages))
        return out

    def oracle_output(self, sample: Sample, request: Request, options: TaskRunOptions) -> str:
        return str(sample.target)

    # -- scoring
    def score(self, data: TaskData, sample: Sample, request: Request, response: Response,
              options: TaskRunOptions) -> SampleScore:
        g = request.generation or self.generation_config(options)
        raw = response.text or ""
        cut = cut_at_stop(raw, g.stop)  # a backend that ignored the stop strings
        text, trace = strip_reasoning(cut, options.think_markers)  # <think> trace off; none: unchanged, no keys
        ev = GenerationEvidence(
            max_new_tokens=g.max_new_tokens, n_tokens=response.n_tokens[0] if response.n_tokens else None,
            decoding=Decoding(options.decoding or DEFAULT_DECODING, g.temperature, g.top_p, g.seed, tuple(g.stop)),
            prompt_version=PROMPT_VERSION, source=tuple((k, v) for k, v in sample.metadata.items() if k in SOURCE_KEYS),
            generation_uncut=raw if cut != raw else None)
        base = SampleScore(id=sample.id, subject=sample.subject, prompt=request.context, prompt_hash=request.prompt_hash,
                           gold=str(sample.target), prediction=None, score=0.0, generation=text,
                           extra={**ev.to_extra(), **trace})
        return GENERATION_SAMPLE(base, ev, options.variant)

    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        from chimed_eval.records import record_to_score

        s = record_to_score(record)
        return GENERATION_SAMPLE(s, GenerationEvidence.from_extra(s.extra), variant)

    def aggregate(self, scores: Sequence[SampleScore], variant: str, seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
        return GENERATION_CORPUS(scores, [GenerationEvidence.from_extra(s.extra) for s in scores], variant, seed)


# --- QA loaders -----------------------------------------------------------------------------------


def load_cmd_qa(data_dir: Path, test_size: int = CMD_TEST_SIZE) -> TaskData:
    path = _need(data_dir / CMD_QA_FILE, "Put the CMD release there (Toyhom/Chinese-medical-dialogue-data, "
                 "样例_内科5000-6000.csv saved under that name), or run: chimed-eval data --datasets cmd")
    rows = read_rows(path, "csv", detect_encoding(path))
    keyed: list[tuple[str, Sample]] = []
    seen: set[tuple[str, str]] = set()
    rel = _rel(data_dir, path)
    for row in rows:
        for col in ("department", "title", "ask", "answer"):
            if col not in row.fields:
                raise DataError(path, row.line, col, f"missing column {col!r} (have: {', '.join(row.fields)})")
        dept, title, ask, answer = (cell_text(row.fields[c]) for c in ("department", "title", "ask", "answer"))
        question = ask if ask and ask != "无" else title
        if not question or not answer or (question, answer) in seen:
            continue
        seen.add((question, answer))
        key = hashlib.sha256("\x00".join((CMD_SPLIT_SALT, dept, title, ask, answer)).encode("utf-8")).hexdigest()
        keyed.append((key, Sample(id=f"cmd-{key[:12]}", input=question, target=answer, subject=dept or None,
                                  metadata={"file": rel, "line": row.line, "title": title, "department": dept})))
    keyed.sort(key=lambda kv: kv[0])
    return TaskData(samples=[s for _, s in keyed[:test_size]], files={rel: file_sha256(path)})


CHIMED_HINT = ("ChiMed open QA has no public copy. Put its test records at {root}/test.jsonl, one JSON object per "
               'line {{"question": "...", "answer_1": "...", "answer_2": "..."}} (answer_2 optional; an "id" '
               "field is used when present), or the same columns in test.json / test.csv / test.tsv / test.xlsx.")


def _first_text(v: Any) -> str:
    if isinstance(v, list):
        v = v[0] if v else ""
    return cell_text(v)


def load_chimed_qa(data_dir: Path) -> TaskData:
    root = data_dir / data_location("chimed_qa")
    path = next((root / f"test{ext}" for ext in (".jsonl", ".json", ".csv", ".tsv", ".xlsx")
                 if (root / f"test{ext}").exists()), None)
    if path is None:
        raise MissingDataError(f"{root / 'test.jsonl'} not found. " + CHIMED_HINT.format(root=root))
    enc = None if path.suffix == ".xlsx" else detect_encoding(path)
    rows = read_rows(path, None, enc)
    rel = _rel(data_dir, path)
    samples = []
    for row in rows:
        f = row.fields
        if "prompt" in f and "output" in f and "question" not in f:
            question, answers = _first_text(f["prompt"]), [_first_text(f["output"])]
        else:
            if "question" not in f:
                raise DataError(path, row.line, "question", f"missing field 'question' (have: {', '.join(f)})")
            question = cell_text(f["question"])
            answers = [cell_text(f.get(k)) for k in ("answer_1", "answer_2", "answer")]
        if not question:
            raise DataError(path, row.line, "question", "the question is empty")
        if not any(answers):
            raise DataError(path, row.line, "answer_1", "no reference answer (answer_1 / answer_2 are empty)")
        rid = cell_text(f.get("id")) or str(row.line)
        for k, ans in enumerate(answers, 1):
            if ans:
                samples.append(Sample(id=f"chimed-{rid}-{k}", input=question, target=ans,
                                      metadata={"file": rel, "line": row.line}))
    return TaskData(samples=samples, files={rel: file_sha256(path)})


# --- dialogue loaders -----------------------------------------------------------------------------


def merge_turns(utterances: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Consecutive utterances of one speaker become one turn, each utterance followed by ``\\n``."""
    out: list[tuple[str, str]] = []
    for role, text in utterances:
        if out and out[-1][0] == role:
            out[-1] = (role, out[-1][1] + text + "\n")
        else:
            out.append((role, text + "\n"))
    return out


def dialogue_item(turns: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], str] | None:
    """(context turns, target) for the last doctor turn, or None when there is none after a
    patient turn."""
    last = max((i for i, (role, _) in enumerate(turns) if role == DOCTOR), default=-1)
    if last < 1:
        return None
    return turns[:last], turns[last][1].rstrip("\n")


def _dialogue_sample(sid: str, utterances: list[tuple[str, str]], meta: dict[str, Any]) -> Sample | None:
    item = dialogue_item(merge_turns(utterances))
    if item is None:
        return None
    context, target = item
    paper = "".join(("[human]:" if r == PATIENT else "[bot]:") + t for r, t in context) + "[bot]:"
    return Sample(id=sid, input=paper, target=target, metadata={**meta, "turns": [list(t) for t in context]})


def load_hetmc(data_dir: Path, split: str = "test", *, allow_duplicate_ids: bool = False) -> TaskData:
    """HET-MC ``.dialog``: blank-line-separated blocks; header ``id\\t<id>\\tapartment\\t<dept>\\tdisease\\t<d>``,
    then ``P``/``D`` TAB utterance TAB label lines, then ``SUM...`` summary lines. A repeated
    dialogue id is an error, except for training, which reads the sample ``train.dialog`` (its 36
    dialogues repeated 10 times) with ``allow_duplicate_ids``."""
    path = _need(data_dir / data_location("hetmc") / f"{split}.dialog",
                 "Put the HET-MC sample release (cuhksz-nlp/HET-MC sample_data) there, or run: chimed-eval data --datasets hetmc")
    text = path.read_text(encoding=detect_encoding(path)).lstrip("\ufeff")
    rel = _rel(data_dir, path)
    samples, seen = [], set()
    block: list[tuple[int, str]] = []
    for lineno, line in enumerate([*split_lines(text), ""], 1):  # never on U+2028/U+0085
        if line.strip():
            block.append((lineno, line))
            continue
        if not block:
            continue
        (hline, header), body = block[0], block[1:]
        block = []
        h = header.split("\t")
        if h[0] != "id" or len(h) < 2:
            raise DataError(path, hline, None, f"expected a header 'id<TAB>...', got {header[:40]!r}")
        meta = dict(zip(h[0::2], h[1::2]))
        utts = []
        for ln, row in body:
            parts = row.split("\t")
            if parts[0] in ("P", "D"):
                if len(parts) < 2:
                    raise DataError(path, ln, None, "a turn line needs P|D<TAB>utterance")
                utts.append((PATIENT if parts[0] == "P" else DOCTOR, parts[1].strip()))
            elif not parts[0].startswith("SUM"):
                raise DataError(path, ln, None, f"expected a P/D turn or a SUM line, got {row[:40]!r}")
        did = meta["id"].strip()
        sid = f"hetmc-{split}-{did}"
        if sid in seen and not allow_duplicate_ids:
            raise DataError(path, hline, "id", f"dialogue id {did!r} appears twice")
        seen.add(sid)
        s = _dialogue_sample(sid, utts, {"file": rel, "line": hline, "department": meta.get("apartment", ""),
                                         "disease": meta.get("disease", "")})
        if s is not None:
            samples.append(s)
    return TaskData(samples=samples, files={rel: file_sha256(path)})


_COVID_ROLE = re.compile(r"^(病人|医生)[：:]")


def load_covid_zh(data_dir: Path, split: str = "test") -> TaskData:
    """COVID-Dialogue (Chinese) ``<split>_data.json``: a list of dialogues, each a list of
    utterances prefixed ``病人：`` or ``医生：``."""
    path = _need(data_dir / data_location("covid_zh") / f"{split}_data.json",
                 "Put the COVID-Dialogue Chinese files (UCSD-AI4H/COVID-Dialogue) there, or run: chimed-eval data --datasets covid_zh")
    try:
        doc = json.loads(path.read_text(encoding=detect_encoding(path)).lstrip("\ufeff"))
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, None, f"invalid JSON: {e.msg}") from None
    if not isinstance(doc, list):
        raise DataError(path, None, None, "expected a JSON list of dialogues")
    rel = _rel(data_dir, path)
    samples = []
    for i, dialog in enumerate(doc):
        if not isinstance(dialog, list) or not all(isinstance(u, str) for u in dialog):
            raise DataError(path, None, f"[{i}]", "expected a list of utterance strings")
        utts = []
        for j, u in enumerate(dialog):
            m = _COVID_ROLE.match(u.strip())
            if m is None:
                raise DataError(path, None, f"[{i}][{j}]", f"expected an utterance starting 病人： or 医生：, got {u[:20]!r}")
            utts.append((PATIENT if m.group(1) == "病人" else DOCTOR, u.strip()[m.end():].strip()))
        s = _dialogue_sample(f"covid-{split}-{i:03d}", utts, {"file": rel, "line": None, "index": i})
        if s is not None:
            samples.append(s)
    return TaskData(samples=samples, files={rel: file_sha256(path)})


# --- registration ---------------------------------------------------------------------------------


def _add(name: str, loader: Callable[[Path], TaskData], description: str) -> None:
    TASKS.add(name, lambda: GenerationTask(name, loader, description), description)


_add("chimed-qa", load_chimed_qa,
     f"ChiMed open QA (you provide data/{CHIMED_QA_TEST}: question, answer_1, answer_2); one item per answer; BLEU/ROUGE")
_add("cmd-qa", partial(load_cmd_qa, test_size=CMD_TEST_SIZE),
     "CMD internal-medicine QA (GB18030), fixed seeded 500-item test split; BLEU/ROUGE")
_add("mc-dialogue", partial(load_hetmc, split="test"),
     "HET-MC (MC) sample test.dialog, 18 dialogues: generate the last doctor turn; BLEU/ROUGE")
_add("covid-dialogue-zh", partial(load_covid_zh, split="test"),
     "COVID-Dialogue Chinese test split, 109 dialogues: generate the last doctor turn; BLEU/ROUGE")
