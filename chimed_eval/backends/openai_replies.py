"""Reading the replies of an OpenAI-compatible server: the text of a generation, next-token
log-probabilities of candidates, and the echoed log-probabilities of a continuation.

Every reply is validated before it is used: a wrong shape (no choice, no text, logprobs of the
wrong kind or not finite) raises :class:`~.openai_transport.Malformed`, which the transport
retries like a 5xx, so an invalid reply never reaches a result or the response cache. A
well-formed reply without the log-probabilities asked for raises
:class:`~.openai_transport.NoLogprobs`, whose advice names the variant to run instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from chimed_eval.backends.openai_transport import APIError, Malformed, NoLogprobs


@dataclass(frozen=True)
class ReplyReader:
    """Reads replies of one endpoint (``chat`` or not) of one server and model; ``server`` (the
    sanitised base URL) and ``api_model`` only name them in advice."""

    chat: bool
    logprob_floor: float
    server: str
    api_model: str

    def choice_text(self, data: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """(the first choice, its text); raises Malformed unless both have the right shape."""
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise Malformed("reply without a choice")
        choice = choices[0]
        if self.chat:
            msg = choice.get("message")
            text = msg.get("content") if isinstance(msg, dict) else None
            if not isinstance(text, str):
                raise Malformed("reply without a message content string")
        else:
            text = choice.get("text")
            if not isinstance(text, str):
                raise Malformed("reply without a text string")
        return choice, text

    def generation(self, data: dict[str, Any], stop: Sequence[str]) -> tuple[str, int | None]:
        """(the generated text cut at the first of each stop string, the completion token count
        the server reports, or None)."""
        text = self.choice_text(data)[1]
        for s in stop:
            if s and s in text:
                text = text[: text.index(s)]
        usage = data.get("usage")
        n = usage.get("completion_tokens") if isinstance(usage, dict) else None
        ok = isinstance(n, int) and not isinstance(n, bool) and n >= 0
        return text, (n if ok else None)

    @staticmethod
    def usage(data: dict[str, Any]) -> tuple[int | None, int | None, int | None]:
        """(prompt, completion, reasoning) tokens of the server's ``usage`` (None where absent or
        not a count; reasoning from ``completion_tokens_details.reasoning_tokens``)."""
        usage = data.get("usage")
        if not isinstance(usage, dict):
            return None, None, None
        details = usage.get("completion_tokens_details")
        reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
        return tuple(v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None  # type: ignore[return-value]
                     for v in (usage.get("prompt_tokens"), usage.get("completion_tokens"), reasoning))

    def candidates(self, data: dict[str, Any], continuations: Sequence[str]) -> tuple[list[float], list[bool]]:
        """(log-probability, greedy) of each candidate as the first token: the log-sum-exp of the
        top entries equal to it up to surrounding whitespace, else ``logprob_floor``."""
        first, pool = self.first_token_logprobs(self.choice_text(data)[0])
        lps, greedy = [], []
        for cand in continuations:
            target = cand.strip()
            hits = [lp for tok, lp in pool.items() if tok.strip() == target]
            lps.append(_logsumexp(hits) if hits else self.logprob_floor)
            greedy.append(first is not None and first.strip() == target)
        return lps, greedy

    def logprob(self, value: Any) -> float:
        """A log-probability from a reply: a number, finite or -inf (scored as ``logprob_floor``)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value > 1e-6:
            raise Malformed(f"invalid log-probability {str(value)[:20]!r}")
        return self.logprob_floor if value == -math.inf else float(value)

    def _no_logprobs(self) -> NoLogprobs:
        return NoLogprobs("reply without token log-probabilities",
                          f"{self.server} returned no token log-probabilities for model {self.api_model!r} "
                          "(two attempts in a row): next-token scoring (--variant paper / next-token) needs "
                          "logprobs; run --variant generate instead")

    def first_token_logprobs(self, choice: dict[str, Any]) -> tuple[str | None, dict[str, float]]:
        """(the generated first token, {token: logprob} of its top alternatives). No logprobs at
        all: NoLogprobs; logprobs of a wrong shape or not finite: Malformed."""
        lp = choice.get("logprobs")
        pool: dict[str, float] = {}
        first = None
        if lp is None:
            raise self._no_logprobs()
        if not isinstance(lp, dict):
            raise Malformed("logprobs is not an object")
        if self.chat:
            content = lp.get("content")
            if content is None:
                raise self._no_logprobs()
            if not isinstance(content, list) or not content or not isinstance(content[0], dict):
                raise Malformed("logprobs.content is not a non-empty list of objects")
            entry = content[0]
            first = _token(entry.get("token"), "logprobs.content[0].token")
            alts = entry.get("top_logprobs") or []
            if not isinstance(alts, list):
                raise Malformed("logprobs.content[0].top_logprobs is not a list")
            for alt in alts:
                if not isinstance(alt, dict):
                    raise Malformed("a top_logprobs entry is not an object")
                pool[_token(alt.get("token"), "top_logprobs[].token")] = self.logprob(alt.get("logprob"))
            if entry.get("logprob") is not None:
                pool.setdefault(first, self.logprob(entry["logprob"]))
        else:
            tops = lp.get("top_logprobs")
            if tops is None:
                raise self._no_logprobs()
            if not isinstance(tops, list) or not tops or not isinstance(tops[0], dict):
                raise Malformed("logprobs.top_logprobs is not a non-empty list of objects")
            pool.update({_token(t, "top_logprobs key"): self.logprob(v) for t, v in tops[0].items()})
            tokens, tlps = lp.get("tokens"), lp.get("token_logprobs")
            if tokens is not None:
                if not isinstance(tokens, list) or not tokens:
                    raise Malformed("logprobs.tokens is not a non-empty list")
                first = _token(tokens[0], "logprobs.tokens[0]")
                if tlps is not None:
                    if not isinstance(tlps, list) or not tlps:
                        raise Malformed("logprobs.token_logprobs is not a non-empty list")
                    if tlps[0] is not None:
                        pool.setdefault(first, self.logprob(tlps[0]))
        if not pool:
            raise Malformed("logprobs without any token log-probability")
        return first, pool

    def continuation(self, data: dict[str, Any], prompt: str, boundary: int, key: str,
                     cont: str) -> tuple[float, int, bool]:
        """(log-probability, token count, greedy) of the continuation from an echo reply."""
        lp = self.choice_text(data)[0].get("logprobs")
        no_echo = NoLogprobs(
            "reply without prompt log-probabilities (echo)",
            f"{self.server} returned no prompt log-probabilities (echo) for model {self.api_model!r} (two "
            "attempts in a row): loglikelihood scoring (--variant lm-eval) needs a completions server that echoes "
            "them (vllm serve); use --variant paper or --variant generate")
        if lp is None:
            raise no_echo
        if not isinstance(lp, dict):
            raise Malformed("logprobs is not an object")
        tokens, offsets, tlps = lp.get("tokens"), lp.get("text_offset"), lp.get("token_logprobs")
        tops = lp.get("top_logprobs") or []
        if tokens is None or offsets is None or tlps is None:
            raise no_echo
        if not all(isinstance(x, list) for x in (tokens, offsets, tlps, tops)) or not (
                len(tokens) == len(offsets) == len(tlps)):
            raise Malformed("echo logprobs lists of different lengths")
        if any(isinstance(o, bool) or not isinstance(o, int) for o in offsets):
            raise Malformed("echo logprobs text_offset holds a non-integer")
        if not tokens or offsets[0] != 0:
            raise no_echo  # only the generated token: the prompt was not echoed
        idx = [i for i in range(len(tokens)) if offsets[i] < len(prompt)
               and (i + 1 >= len(offsets) or offsets[i + 1] > boundary)]
        if not idx or any(tlps[i] is None for i in idx):
            raise APIError(f"request {key}: cannot read the continuation {cont!r} from the echoed tokens")
        vals = {i: self.logprob(tlps[i]) for i in idx}
        # greedy: every continuation token is its position's top-1 alternative (False if unknown)
        greedy = True
        for i in idx:
            top = tops[i] if i < len(tops) else None
            if top is not None and not isinstance(top, dict):
                raise Malformed("echo logprobs top_logprobs holds a non-object")
            best = [self.logprob(v) for v in top.values()] if top else []
            greedy = greedy and bool(best) and vals[i] >= max(best) - 1e-6
        return float(sum(vals.values())), len(idx), greedy


def _token(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise Malformed(f"{where} is not a string")
    return value


def _logsumexp(xs: Sequence[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))
