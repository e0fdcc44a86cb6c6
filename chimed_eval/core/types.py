"""The typed records that flow one way through chimed-eval.

tasks -> Sample -> Request -> backend -> Response -> SampleScore -> TaskResult -> RunResult

All records are frozen dataclasses so that nothing downstream can mutate what upstream produced.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping

RequestKind = Literal["loglikelihood", "next_token", "generate", "token_logprobs"]
REQUEST_KINDS: tuple[RequestKind, ...] = ("loglikelihood", "next_token", "generate", "token_logprobs")


def sha256_text(text: str) -> str:
    """Hex sha256 of a UTF-8 string (used for prompt and item-list hashes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (the digests of data files recorded in
    results.json, checked by ``chimed-eval data`` and the integrity checks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Sample:
    """One benchmark item with a stable id.

    ``target`` is the index of the gold choice for multiple choice, or for an item with several
    correct answers a sorted tuple of two or more indices (:mod:`chimed_eval.evidence.multi_choice`);
    ``choices`` are the option texts in letter order (A, B, ...).
    """

    id: str
    input: str
    choices: tuple[str, ...] = ()
    target: int | tuple[int, ...] | str | None = None
    subject: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def spans(self) -> tuple[tuple[int, int, str], ...]:
        """An NER item's gold ``(start, end, type)`` spans (``metadata["spans"]``); empty for others."""
        return tuple((int(s), int(e), str(t)) for s, e, t in self.metadata.get("spans", ()))

    @property
    def turns(self) -> tuple[tuple[str, str], ...] | None:
        """A dialogue item's context turns ``(role, text)`` (``metadata["turns"]``); None for an
        item that is not a dialogue."""
        turns = self.metadata.get("turns")
        return None if turns is None else tuple((str(r), str(t)) for r, t in turns)


@dataclass(frozen=True)
class GenerationConfig:
    """How to generate; ``seed`` is per item (derived from the run seed and the item id)."""

    max_new_tokens: int = 32
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    top_k: int | None = None  # None: the backend's default (``--gen_kwargs top_k=``)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class Message:
    """One chat turn sent to an API as a message (the server applies the model's template)."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Request:
    """What a backend must compute for one item. Backends never see tasks.

    kinds:
      * ``loglikelihood``: sum log p(continuation | context) for every continuation
        (lm-evaluation-harness semantics: context encoded without special tokens unless
        ``add_special_tokens`` is set).
      * ``next_token``: log p(token) at the position after ``context`` for each candidate, the
        candidate's token being the last token of ``tokenizer.encode(candidate)`` (the ChiMed-GPT
        authors' letter scoring).
      * ``generate``: free text after ``context``.
      * ``token_logprobs``: log p(x_t | x_<t) of every token of the one continuation (the text)
        after ``context``, tokenized as for ``loglikelihood`` (an empty context is the BOS token),
        and where the backend can, the mean and standard deviation of log p(z | x_<t) over the
        whole vocabulary at each position (membership scores, :mod:`chimed_eval.metrics.membership`).

    ``prefix`` is the part of ``context`` shared with other requests (the few-shot block), a
    hint that lets a backend compute it once and reuse its KV cache. ``messages``: the chat turns
    of a request meant for a chat API (the ``chat`` variant on ``--backend openai``); ``context``
    then holds their stored text (what the records show and hash). No gold answer travels here:
    the fake backend's ``oracle`` is given a script (:mod:`chimed_eval.backends.fake`).
    """

    kind: RequestKind
    key: str
    context: str
    continuations: tuple[str, ...] = ()
    prefix: str = ""
    add_special_tokens: bool | None = None
    generation: GenerationConfig | None = None
    messages: tuple[Message, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in REQUEST_KINDS:
            raise ValueError(f"unknown request kind {self.kind!r}; expected one of {REQUEST_KINDS}")
        if self.prefix and not self.context.startswith(self.prefix):
            raise ValueError(f"request {self.key}: prefix is not a prefix of the context")
        if self.kind != "generate" and not self.continuations:
            raise ValueError(f"request {self.key}: {self.kind} needs continuations")
        if self.messages and self.kind != "generate":
            raise ValueError(f"request {self.key}: messages are for generation requests only")
        if self.kind == "token_logprobs" and len(self.continuations) != 1:
            raise ValueError(f"request {self.key}: token_logprobs scores exactly one continuation (the text)")

    @property
    def prompt_hash(self) -> str:
        """sha256 of the context; for ``token_logprobs`` of the context and the scored text
        together (the text is the prompt there: its context is usually empty)."""
        if self.kind == "token_logprobs":
            return sha256_text(self.context + self.continuations[0])
        return sha256_text(self.context)


@dataclass(frozen=True)
class Response:
    """A backend's answer to one Request (same ``key``).

    ``logprobs[i]`` is the summed log-probability of continuation i; ``greedy[i]`` whether it is
    the greedy continuation; ``n_tokens[i]`` its token count. ``text`` is a generation.
    ``token_logprobs`` (``token_logprobs`` requests): log p(x_t | x_<t) of each continuation token;
    ``token_moments``: per token (mu_t, sigma_t), the mean and standard deviation of
    log p(z | x_<t) for z drawn from the model's next-token distribution, None where the backend
    cannot read the whole distribution (vLLM returns the actual tokens' log-probabilities only).
    """

    key: str
    logprobs: tuple[float, ...] | None = None
    greedy: tuple[bool, ...] | None = None
    n_tokens: tuple[int, ...] | None = None
    text: str | None = None
    token_logprobs: tuple[float, ...] | None = None
    token_moments: tuple[tuple[float, float], ...] | None = None
    #: what answering cost (tokens, seconds); not part of the answer: equal responses compare equal
    usage: "Usage | None" = field(default=None, compare=False)


@dataclass(frozen=True)
class Usage:
    """What one request cost: prompt and completion tokens (the tokenizer's count on local
    backends, the server's ``usage`` on APIs, None where unknown), the reasoning tokens among the
    completion tokens where the server reports them apart, the wall latency of the request in
    seconds and, for streamed replies, the time to its first token (None: not streamed);
    ``cached``: served by the response cache (no model call, nothing spent); ``tokens_source``:
    where the token counts come from (``tokenizer``: the model's tokenizer, ``server``: the
    server's ``usage``, ``stream_chunks``: the chunks of a streamed reply, ``characters``: the
    fake backend's one token per character; None: unknown)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    cached: bool = False
    tokens_source: str | None = None


@dataclass(frozen=True)
class SampleScore:
    """The per-item record written to ``samples/<task>.jsonl``."""

    id: str
    subject: str | None
    prompt: str
    prompt_hash: str
    gold: Any
    prediction: Any
    score: float
    logprobs: tuple[float, ...] | None = None
    generation: str | None = None
    extracted: Any = None
    extraction_failed: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


def score_to_record(s: SampleScore) -> dict[str, Any]:
    """The JSON-ready record of a scored item (a line of ``samples/<task>.jsonl``)."""
    d = dataclasses.asdict(s)
    if d["logprobs"] is not None:
        d["logprobs"] = list(d["logprobs"])
    d["extra"] = dict(d["extra"])
    return d


def record_to_score(d: Mapping[str, Any]) -> SampleScore:
    """The :class:`SampleScore` of a saved record (fields it does not know are left out), so a task
    can re-score records without the runs layer."""
    fields = {f.name for f in dataclasses.fields(SampleScore)}
    kw = {k: v for k, v in d.items() if k in fields}
    if kw.get("logprobs") is not None:
        kw["logprobs"] = tuple(kw["logprobs"])
    return SampleScore(**kw)


@dataclass(frozen=True)
class Metric:
    """One reported figure. Unused fields stay None. ``ci_method`` names how ``ci_low`` /
    ``ci_high`` were computed (``wilson``, ``wilson-mover``, ``bootstrap``:
    :mod:`chimed_eval.metrics.stats`); None without an interval."""

    name: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    averaging: str | None = None
    protocol: str | None = None
    tokenization: str | None = None
    ci_method: str | None = None
    #: a rubric grader's figure only (:mod:`chimed_eval.judge.rubric_results`): ``{"status":
    #: validated | below-threshold | unvalidated, "grader", "macro_f1", "min_f1", "grading"}``, so a
    #: reader never has to parse the status out of ``protocol``; None for every other figure
    grader_status: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class TaskResult:
    task: str
    n: int
    items_sha256: str
    prompts_sha256: str
    data_files: Mapping[str, str]
    metrics: tuple[Metric, ...]
    subjects: Mapping[str, Mapping[str, float | int]] = field(default_factory=dict)
    variant: str | None = None
    shots: int = 0
    extraction_failures: int | None = None
    # rows a user's task left out (mcq on_invalid=skip): {"count": n, "rows": [{file, line, reason}]}
    skipped: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    revision: str | None
    weights_sha256: str | None
    dtype: str | None


#: the columns of :meth:`RunResult.to_rows` / :meth:`RunResult.to_pandas`, in order
FIGURE_COLUMNS = ("task", "metric", "value", "ci_low", "ci_high", "ci_method", "n", "averaging", "protocol",
                  "grader_status", "tokenization", "variant", "shots", "model")


@dataclass(frozen=True)
class RunResult:
    """A run's figures (what results.json holds), as the runner returns them and the reader reads
    them back (:func:`chimed_eval.read_run`). ``sample_source``: where :meth:`samples` finds the
    per-item records of a task, handed in by whoever built this result (the runner keeps them in
    memory for a run without an output directory; the reader reads OUT/samples)."""

    schema_version: str
    model: ModelInfo
    settings: Mapping[str, Any]
    tasks: tuple[TaskResult, ...]
    created: str
    #: tokens, latency, throughput and cost per task and for the run (OUT/usage.json,
    #: :mod:`chimed_eval.runs.usage`); None when read from an older run
    usage: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    #: what the reader found checking the figures against their digest and records
    #: (:mod:`chimed_eval.runs.integrity`): "verified", "unverified: <why>", or "" when built in memory
    integrity: str = field(default="", compare=False)
    sample_source: Callable[[str], Iterable[SampleScore]] | None = field(default=None, compare=False, repr=False)
    #: ``chimed_eval.evaluate(..., judge=...)``: the judge and rubric-grader results, by their
    #: results file (``OUT/judge/<dir>/results.json``); empty otherwise
    judgements: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_rows(self) -> list[dict[str, Any]]:
        """One tidy row per figure (:data:`FIGURE_COLUMNS`): ``n`` is the figure's own count, or
        its task's items where the figure has none (as the CLI's summary table prints it)."""
        rows = []
        for t in self.tasks:
            for m in t.metrics:
                rows.append({"task": t.task, "metric": m.name, "value": m.value, "ci_low": m.ci_low,
                             "ci_high": m.ci_high, "ci_method": m.ci_method, "n": t.n if m.n is None else m.n,
                             "averaging": m.averaging, "protocol": m.protocol,
                             "grader_status": (m.grader_status or {}).get("status"), "tokenization": m.tokenization,
                             "variant": t.variant, "shots": t.shots, "model": self.model.name})
        return rows

    def to_pandas(self) -> Any:
        """:meth:`to_rows` as a ``pandas.DataFrame`` (pandas is imported here, only when asked)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("RunResult.to_pandas() needs pandas: pip install pandas") from None
        return pandas.DataFrame(self.to_rows(), columns=list(FIGURE_COLUMNS))

    def samples(self, task: str) -> Iterator[SampleScore]:
        """The per-item records of ``task`` (``samples/<task>.jsonl``), in item order."""
        names = [t.task for t in self.tasks]
        if task not in names:
            raise KeyError(f"no task {task!r} in this run; it has: {', '.join(names) or 'none'}")
        if self.sample_source is None:
            raise LookupError(f"this result of {task!r} carries no per-item records (built without a source)")
        return iter(self.sample_source(task))

    @property
    def unverified(self) -> str | None:
        """Why the figures could not be checked against the records; None when they were (or
        when this result was built in memory, not read from a file)."""
        if not self.integrity.startswith("unverified"):
            return None
        return self.integrity.partition(": ")[2] or "unverified"
