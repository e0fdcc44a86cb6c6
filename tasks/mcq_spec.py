"""What a user's ``mcq`` task is built from: :class:`McqSpec`, the file and column settings of
``--task-args`` or of one ``--task-config`` entry, checked on construction. Its own module so that
:mod:`chimed_eval.tasks.mcq_items` (finding the files and columns) and :mod:`chimed_eval.tasks.mcq`
(reading the items) both take it without importing each other."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from chimed_eval.core.errors import ConfigError
from chimed_eval.files.tabular import LETTERS

from .config import check_task_name


@dataclass
class McqSpec:
    """Where a user's exam items are and which columns hold what (None: detect)."""

    path: str | Path
    format: str | None = None
    encoding: str | None = None
    id: str | None = None
    question: str | None = None
    choices: list[str] | None = None
    options: str | None = None
    answer: str | None = None
    answer_index_base: int | None = None
    subject: str | None = None
    subject_name: str | None = None
    fewshot: str | Path | None = None
    name: str = "mcq"
    sheet: str | None = None
    option_sep: str | None = None
    on_invalid: str = "error"
    subject_in_prompt: bool = False
    where: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if self.choices is not None and self.options is not None:
            raise ConfigError(f"task {self.name!r}: give either choices= (one column per option) or options= "
                              "(one field holding all options), not both")
        if self.answer_index_base not in (None, 0, 1):
            raise ConfigError(f"task {self.name!r}: answer_index_base must be 0 or 1, not {self.answer_index_base!r}")
        if self.option_sep is not None and self.choices is not None:
            raise ConfigError(f"task {self.name!r}: option_sep= splits one options field; it does not apply to "
                              "choices= (one column per option)")
        if self.on_invalid not in ("error", "skip"):
            raise ConfigError(f"task {self.name!r}: on_invalid must be error or skip, not {self.on_invalid!r}")
        if self.subject_in_prompt and self.subject_name is not None:
            raise ConfigError(f"task {self.name!r}: subject_name= names the subject in the prompt; "
                              "subject_in_prompt=true would use the subject column's values instead: give one")
        if self.subject_in_prompt and self.subject is None:
            raise ConfigError(f"task {self.name!r}: subject_in_prompt=true needs subject=<column>")
        if self.option_sep == "":
            raise ConfigError(f"task {self.name!r}: option_sep= is empty")
        check_task_name(self.name)
        if self.choices is not None:
            if not 2 <= len(self.choices) <= len(LETTERS):
                raise ConfigError(f"task {self.name!r}: choices= must name 2 to {len(LETTERS)} columns, "
                                  f"got {len(self.choices)}")
            if len(set(self.choices)) != len(self.choices):
                raise ConfigError(f"task {self.name!r}: choices= names a column twice: {self.choices}")


SPEC_KEYS = tuple(f.name for f in dataclasses.fields(McqSpec))
