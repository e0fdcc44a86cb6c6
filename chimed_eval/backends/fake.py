"""A deterministic, scripted backend for tests and dry runs.

Modes (``--model``): ``oracle`` answers the gold option (tests can assert a perfect score),
``fixed:X`` always answers option X (a letter or a continuation text), ``random`` answers a random
option seeded from (seed, request key), so a run is reproducible and resumable; the seed is part
of its response-cache identity.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import Sequence

from ..types import ModelInfo, Request, Response
from .base import Backend

LETTERS = "ABCDEFGHIJ"


class FakeBackend(Backend):
    name = "fake"

    def __init__(self, model: str = "oracle", seed: int = 0, delay: float = 0.0, **_: object) -> None:
        mode, _, arg = model.partition(":")
        if mode not in ("oracle", "fixed", "random"):
            raise ValueError(f"fake backend model must be 'oracle', 'fixed:X' or 'random', not {model!r}")
        if mode == "fixed" and not arg:
            raise ValueError("fake backend 'fixed' needs an answer, e.g. --model fixed:A")
        self.mode, self.arg, self.seed = mode, arg, seed
        self.delay = float(delay)  # seconds per batch: lets tests kill a run mid-way
        self.calls: list[tuple[str, int]] = []  # (kind, batch size), for tests

    def model_info(self) -> ModelInfo:
        return ModelInfo(name=f"fake-{self.mode}" + (f":{self.arg}" if self.arg else ""), path="fake", revision=None,
                         weights_sha256=None, dtype=None)

    def cache_identity(self) -> dict[str, object]:
        """What, besides the request, decides an answer (for the response cache): the mode and the
        seed the ``random`` mode draws from (``--seed 2`` must not get ``--seed 1234``'s answers)."""
        return {"mode": self.mode, "arg": self.arg, "seed": self.seed}

    def request_length(self, request: Request) -> int:
        return len(request.context)

    def _rng(self, key: str) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}\x00{key}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _choice(self, r: Request) -> int:
        n = len(r.continuations)
        if self.mode == "oracle":
            if isinstance(r.oracle, int):
                return r.oracle
            if isinstance(r.oracle, str):
                stripped = [c.strip() for c in r.continuations]
                if r.oracle.strip() in stripped:
                    return stripped.index(r.oracle.strip())
            return 0
        if self.mode == "fixed":
            stripped = [c.strip() for c in r.continuations]
            return stripped.index(self.arg) if self.arg in stripped else 0
        return self._rng(r.key).randrange(n)

    def _scored(self, requests: Sequence[Request]) -> list[Response]:
        if self.delay:
            time.sleep(self.delay)
        out = []
        for r in requests:
            best = self._choice(r)
            lps = tuple(0.0 if i == best else -5.0 - i for i in range(len(r.continuations)))
            out.append(Response(key=r.key, logprobs=lps, greedy=tuple(i == best for i in range(len(lps))),
                                n_tokens=tuple(1 for _ in lps)))
        return out

    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        self.calls.append(("loglikelihood", len(requests)))
        return self._scored(requests)

    def next_token(self, requests: Sequence[Request]) -> list[Response]:
        self.calls.append(("next_token", len(requests)))
        return self._scored(requests)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        self.calls.append(("generate", len(requests)))
        out = []
        for r in requests:
            if self.mode == "fixed":
                text = self.arg
            elif self.mode == "oracle":
                text = f"答案：{LETTERS[r.oracle]}" if isinstance(r.oracle, int) else str(r.oracle or "")
            else:
                text = f"答案：{LETTERS[self._rng(r.key).randrange(4)]}"
            out.append(Response(key=r.key, text=text))
        return out
