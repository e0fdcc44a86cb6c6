"""One small generic registry with did-you-mean errors.

Entries are registered by decorator, or lazily as "module:attribute" strings so that listing the
registry never imports heavy modules.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for an unknown registry name; the message suggests close matches."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0])


class Registry(Generic[T]):
    """``populate``: a module that registers the entries; it is imported on the first lookup, so a
    registry can live in a lower module than its table without an import circle."""

    def __init__(self, kind: str, populate: str | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._help: dict[str, str] = {}
        self._populate = populate

    @property
    def entries(self) -> dict[str, T | str]:
        if self._populate is not None:
            module, self._populate = self._populate, None
            importlib.import_module(module)
        return self._entries

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj, help)
            return obj

        return deco

    def add(self, name: str, obj: T | str, help: str = "") -> None:
        if name in self.entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = obj
        self._help[name] = help

    def get(self, name: str) -> T:
        try:
            obj = self.entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None
        if isinstance(obj, str):  # lazy "module:attr"
            module, _, attr = obj.partition(":")
            obj = getattr(importlib.import_module(module), attr)
            self._entries[name] = obj
        return obj  # type: ignore[return-value]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self.entries), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(sorted(self.entries))}"

    def help(self, name: str) -> str:
        return self._help.get(name, "")

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.entries))

    def names(self) -> list[str]:
        return sorted(self.entries)
