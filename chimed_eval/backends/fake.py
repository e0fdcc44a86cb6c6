"""A deterministic, scripted backend for tests and dry runs.

Modes (``--model``): ``oracle`` answers from a script it is given at construction (inspect's
``mockllm`` custom outputs): for each request (:func:`script_key`), the option index or the text a
perfect model answers, built by the runner from the tasks (``runner.oracle_script``), so gold
answers never travel on a request; a request the script does not know gets option A or an empty
generation. ``fixed:X`` always answers option X (a letter or a continuation text), ``random``
answers a random option seeded from (seed, request key), so a run is reproducible and resumable
(``random:N``: another random model, seeded from (N, seed, request key));
the seed is part of its response-cache identity.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
from typing import Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import ModelInfo, Request, Response, Usage
from chimed_eval.backends.base import Backend
from chimed_eval.core.capabilities import Capabilities

LETTERS = "ABCDEFGHIJ"
#: ``ModelInfo.path`` of every fake mode: it names no files, so two fake models never share weights by it
MODEL_PATH = "fake"
Script = Mapping[str, "int | str | None"]


def fake_token_values(seed: int, char: str) -> tuple[float, float, float]:
    """The fake backend's (log p, mu, sigma) for one character (see FakeBackend.token_logprobs)."""
    h = hashlib.sha256(f"{seed}\x00token\x00{char}".encode("utf-8")).digest()
    u = [int.from_bytes(h[i:i + 8], "big") / 2.0 ** 64 for i in (0, 8, 16)]
    return -0.05 - 9.95 * u[0], -0.5 - 4.5 * u[1], 0.25 + 2.75 * u[2]


def script_key(request: Request) -> str:
    """A request's key in an oracle script: its item key and its prompt's hash (two tasks of one
    run may share item ids, never the same item id with the same prompt and another answer)."""
    return f"{request.key}\x00{request.prompt_hash}"


class FakeBackend(Backend):
    name = "fake"
    #: every request kind, scripted; no model, so chat turns get a ChatML stand-in; the ``oracle``
    #: answers from the runner's script; answering costs nothing, so no default response cache
    capabilities = Capabilities(letter_logprobs=True, prompt_logprobs=True, token_logprobs=True,
                                vocabulary_moments=True, prefilled_answers=True, chat_stand_in=True,
                                answer_script=True, cached_by_default=False)
    accepted_args = frozenset({"delay", "chat_format", "revision"})

    @classmethod
    def create(cls, model: str, *, seed: int = 0, batch_size: int = 8, device: str | None = None,
               dtype: str | None = None, model_args: Mapping[str, str] | None = None,
               script: Script | None = None) -> "FakeBackend":
        """The mode ``model``, the seed, ``--model-args delay=`` and the ``oracle``'s ``script``."""
        return cls(model=model, seed=seed, delay=float((model_args or {}).get("delay", 0)), script=script)

    def __init__(self, model: str = "oracle", seed: int = 0, delay: float = 0.0, script: Script | None = None,
                 **_: object) -> None:
        mode, _, arg = model.partition(":")
        if mode == "judge":  # a scripted judge (chimed_eval.backends.fake_judge)
            from chimed_eval.backends.fake_judge import check_behaviour

            check_behaviour(arg)
        elif mode in ("doctor", "patient"):  # scripted consultation roles (chimed_eval.backends.fake_consult)
            from chimed_eval.backends.fake_consult import check_mode

            check_mode(mode, arg)
        elif mode not in ("oracle", "fixed", "random") or (mode == "oracle" and arg) or \
                (mode == "random" and arg and not arg.isdigit()):
            raise ConfigError(f"unknown fake backend model {model!r}; choose from: oracle (answers the gold "
                              "answers), fixed:X (always answers X, e.g. fixed:A), random (a seeded random option), "
                              "random:N (another random model, drawing from its own seed N), "
                              "judge:BEHAVIOUR (a scripted judge for chimed-eval judge), doctor:silent|thorough, "
                              "patient:faithful|leaky|misquoting (consultations)")
        if mode == "fixed" and not arg:
            raise ConfigError("fake backend 'fixed' needs an answer, e.g. --model fixed:A")
        self.mode, self.arg, self.seed = mode, arg, seed
        self.delay = float(delay)  # seconds per batch: lets tests kill a run mid-way
        self.script: Script = dict(script or {})  # the oracle's answers (script_key -> index or text)
        self.calls: list[tuple[str, int]] = []  # (kind, batch size), for tests

    def model_info(self) -> ModelInfo:
        return ModelInfo(name=f"fake-{self.mode}" + (f":{self.arg}" if self.arg else ""), path=MODEL_PATH,
                         revision=None,
                         weights_sha256=None, dtype=None)

    def cache_identity(self) -> dict[str, object]:
        """What, besides the request, decides an answer (for the response cache): the mode and the
        seed the ``random`` mode draws from (``--seed 2`` must not get ``--seed 1234``'s answers), and
        the ``oracle``'s script (an edited gold answer must not get the old answer back)."""
        ident: dict[str, object] = {"mode": self.mode, "arg": self.arg, "seed": self.seed}
        if self.mode == "oracle":
            text = json.dumps(sorted(self.script.items()), ensure_ascii=False, default=str)
            ident["script_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return ident

    def request_length(self, request: Request) -> int:
        return len(request.context)

    def _rng(self, key: str) -> random.Random:
        # random:N is a model of its own (many distinct fake models for sweeps); plain random as before
        own = f"{self.arg}\x00" if self.mode == "random" and self.arg else ""
        digest = hashlib.sha256(f"{own}{self.seed}\x00{key}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _choice(self, r: Request) -> int:
        n = len(r.continuations)
        if self.mode == "oracle":
            answer = self.script.get(script_key(r))
            if isinstance(answer, int):
                return answer
            if isinstance(answer, str):
                stripped = [c.strip() for c in r.continuations]
                if answer.strip() in stripped:
                    return stripped.index(answer.strip())
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
        return [dataclasses.replace(x, usage=_usage(r.context + "".join(r.continuations), 0))
                for r, x in zip(requests, self._scored(requests))]

    def next_token(self, requests: Sequence[Request]) -> list[Response]:
        """As loglikelihood; a fake judge (``judge:``) answers its ``--verdict logprobs`` requests
        with its scripted log-probabilities (:func:`.fake_judge.fake_next_token`)."""
        self.calls.append(("next_token", len(requests)))
        if self.mode != "judge":
            return [dataclasses.replace(x, usage=_usage(r.context, 1)) for r, x in zip(requests, self._scored(requests))]
        from chimed_eval.backends.fake_judge import fake_next_token

        out = []
        for r in requests:
            lps = fake_next_token(self.arg, r.context, r.continuations)
            out.append(self._scored([r])[0] if lps is None else Response(
                key=r.key, logprobs=lps, greedy=tuple(x == max(lps) for x in lps), n_tokens=tuple(1 for _ in lps)))
        return out

    def token_logprobs(self, requests: Sequence[Request]) -> list[Response]:
        """Pseudo per-token values, the same in every mode: the tokens are the characters of the
        text (the continuation; the context is ignored) and each character c gets, from
        u_i = the i-th 8 bytes of sha256(f"{seed}\\0token\\0{c}") / 2**64,
        log p = -0.05 - 9.95 * u_0, mu = -0.5 - 4.5 * u_1, sigma = 0.25 + 2.75 * u_2
        (:func:`fake_token_values`), so tests can compute every membership score by hand."""
        self.calls.append(("token_logprobs", len(requests)))
        out = []
        for r in requests:
            vals = [fake_token_values(self.seed, c) for c in r.continuations[0]]
            out.append(Response(key=r.key, n_tokens=(len(vals),), token_logprobs=tuple(v[0] for v in vals),
                                token_moments=tuple((v[1], v[2]) for v in vals), usage=_usage(r.continuations[0], 0)))
        return out

    def _consult(self, context: str) -> str | None:
        """A scripted doctor's or patient's turn, or any fake mode's verdict on a consultation judge
        prompt (:mod:`chimed_eval.backends.fake_consult`); None for every other request."""
        from chimed_eval.backends import fake_consult
        from chimed_eval.backends.fake_judge import unwrap

        prompt = unwrap(context)
        if fake_consult.is_consult_judge_prompt(prompt):
            return fake_consult.fake_consult_judge(prompt)
        if self.mode == "doctor":
            return fake_consult.fake_doctor(self.arg, prompt)
        if self.mode == "patient":
            return fake_consult.fake_patient(self.arg, prompt)
        return None

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        self.calls.append(("generate", len(requests)))
        out = []
        for r in requests:
            consult = self._consult(r.context)
            if consult is not None:
                text = consult
            elif self.mode == "fixed":
                text = self.arg
            elif self.mode == "oracle":
                answer = self.script.get(script_key(r))
                text = f"答案：{LETTERS[answer]}" if isinstance(answer, int) else str(answer or "")
            elif self.mode == "judge":
                from chimed_eval.backends.fake_judge import fake_verdict

                text = fake_verdict(self.arg, r.context)
            else:
                text = f"答案：{LETTERS[self._rng(r.key).randrange(4)]}"
            out.append(Response(key=r.key, text=text, usage=_usage(r.context, len(text))))
        return out


def _usage(prompt: str, completion: int) -> Usage:
    """The fake backend's token counts: one token per character (its stand-in tokenizer)."""
    return Usage(prompt_tokens=len(prompt), completion_tokens=completion, tokens_source="characters")
