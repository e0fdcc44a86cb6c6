"""The typed run configuration: every option of ``chimed-eval run`` beyond the model, the tasks and
the output, with the checks on its values that the CLI and the Python door share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.gen_kwargs import parse_gen_kwargs


@dataclass(frozen=True)
class RunConfig:
    """The run options of ``chimed-eval run``, typed (each field is the flag of the same name;
    ``chimed-eval run --help`` says what each does). ``cache``: the response cache directory (None:
    the default one; the fake backend is cached only in a directory given); ``use_cache=False``
    reads and writes no cache. ``limit``: N items, or a fraction 0 < x < 1 of each task's items
    (rounded up, from the start of the task's documented order); ``batch_size``: a size or
    ``"auto"``; ``gen_kwargs``: ``"k=v,..."`` or a mapping (:mod:`chimed_eval.core.gen_kwargs`).
    ``price`` (``in=X,out=Y``, USD per million tokens), ``max_cost`` and ``max_tokens``: the cost
    and the budget (:mod:`chimed_eval.runs.usage`), never part of the run's settings, so a new
    budget resumes the same run."""

    variant: str | None = None
    shots: int | None = None
    limit: int | float | None = None
    batch_size: int | str = 8
    seed: int = 1234
    device: str | None = None
    dtype: str | None = None
    max_new_tokens: int | None = None
    decoding: str | None = None
    shuffle_choices: int | str | None = None
    repeats: int | None = None
    think_markers: str | None = None
    apply_chat_template: bool = False
    system_prompt: str | None = None
    fewshot_as_multiturn: bool = False
    task_args: Mapping[str, str] = field(default_factory=dict)
    task_config: Path | None = None
    cache: Path | None = None
    use_cache: bool = True
    shard: str | None = None
    progress: bool = True
    gen_kwargs: Mapping[str, Any] | str | None = None
    price: str | None = None
    max_cost: float | None = None
    max_tokens: int | None = None
    #: consultations (chimed_eval.task.consult): the patient simulator, the judge (default: the
    #: patient model) and the doctor's turn budget
    patient_model: str | None = None
    patient_backend: str = "hf"
    patient_args: Mapping[str, str] = field(default_factory=dict)
    consult_judge: str | None = None
    consult_judge_backend: str | None = None
    consult_judge_args: Mapping[str, str] = field(default_factory=dict)
    max_turns: int | None = None
    #: a model reading the chosen letters where the extraction rules find none (generate, cot)
    answer_check: str | None = None
    answer_check_backend: str = "hf"
    answer_check_args: Mapping[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """The checks that need no data and no model (their messages name the CLI flag)."""
        check_limit(self.limit)
        check_batch_size(self.batch_size)
        gen = parse_gen_kwargs(self.gen_kwargs)
        if gen.max_gen_toks is not None and self.max_new_tokens not in (None, gen.max_gen_toks):
            raise ConfigError(f"--max-new-tokens {self.max_new_tokens} and --gen_kwargs max_gen_toks={gen.max_gen_toks} "
                              "disagree; give one of them")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError("--max-new-tokens must be >= 1")
        if self.repeats is not None and self.repeats < 1:
            raise ConfigError(f"--repeats {self.repeats}: expected an integer >= 1")
        if self.max_turns is not None and self.max_turns < 1:
            raise ConfigError("--max-turns must be >= 1")
        if self.answer_check and self.variant not in ("generate", "cot"):
            raise ConfigError("--answer-check reads the letters of generated answers: add --variant generate or "
                              "--variant cot")
        for flag, model, args in (("--consult-judge", self.consult_judge, self.consult_judge_args),
                                  ("--answer-check", self.answer_check, self.answer_check_args)):
            if args and not model:
                raise ConfigError(f"{flag}-args given without {flag} MODEL")
        if self.patient_args and not self.patient_model:
            raise ConfigError("--patient-args given without --patient-model MODEL")

    def helpers(self) -> dict[str, dict[str, Any]]:
        """The helper models by role (``RunSettings.helpers``), their backends' args checked."""
        from chimed_eval.backends import BACKENDS, check_backend_args

        out: dict[str, dict[str, Any]] = {}
        for role, flag, model, backend, args in (
                ("patient", "--patient", self.patient_model, self.patient_backend, self.patient_args),
                ("judge", "--consult-judge", self.consult_judge, self.consult_judge_backend or self.patient_backend,
                 self.consult_judge_args),
                ("answer_check", "--answer-check", self.answer_check, self.answer_check_backend,
                 self.answer_check_args)):
            if not model:
                continue
            args = {str(k): str(v) for k, v in args.items()}
            check_backend_args(backend, args, f"{flag}-args")
            BACKENDS.get(backend)  # an unknown backend fails here
            out[role] = {"model": str(model), "backend": backend, "args": args}
        return out


def check_limit(limit: Any) -> None:
    """``--limit``: an integer >= 1, or a fraction 0 < x < 1 (of each task's items)."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise ConfigError(f"--limit {limit!r}: expected an integer >= 1 or a fraction between 0 and 1")
    if isinstance(limit, float) and (not 0 < limit < 1) and not (limit >= 1 and limit.is_integer()):
        raise ConfigError(f"--limit {limit}: expected an integer >= 1 or a fraction between 0 and 1 (exclusive)")
    if limit <= 0:
        raise ConfigError("--limit must be >= 1, or a fraction between 0 and 1")


def check_batch_size(size: Any) -> None:
    """``--batch-size``: an integer >= 1 or ``auto``."""
    if size == "auto":
        return
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"--batch-size {size!r}: expected an integer >= 1 or 'auto'")


def parse_limit(text: str) -> int | float:
    """``--limit`` on the command line: ``N`` or a fraction such as ``0.1`` (checked by :func:`check_limit`)."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--limit {text!r}: expected an integer >= 1 or a fraction between 0 and 1") from None
    out: int | float = int(value) if value >= 1 and value.is_integer() else value
    check_limit(out)
    return out


def with_options(config: RunConfig | None, options: Mapping[str, Any]) -> RunConfig:
    """``config`` (or the defaults) with ``options`` set; an unknown option is a TypeError that
    lists the known ones."""
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"evaluate() got unknown run options {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return dataclasses.replace(config or RunConfig(), **options)
