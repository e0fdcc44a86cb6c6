"""What the local-weights backends (hf, vllm) share: one tokenizer, and the exact token ids a
request is scored or generated from. Both backends encode through the model's Hugging Face
tokenizer with these methods, so they score the same token sequences and their answers can be
compared item by item."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from chimed_eval.core.types import Request
from chimed_eval.backends.base import Backend


def as_bool(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "on")


class TokenizedBackend(Backend):
    """Needs ``self.tokenizer`` (a transformers tokenizer), ``self.max_length`` and
    ``self._enc_cache`` (a dict) set by the subclass."""

    tokenizer: Any
    max_length: int
    _enc_cache: dict[tuple[str, bool | None], list[int]]

    @classmethod
    def create(cls, model: str, *, seed: int = 0, batch_size: int = 8, device: str | None = None,
               dtype: str | None = None, model_args: Mapping[str, str] | None = None,
               script: Any = None) -> "TokenizedBackend":
        """Local weights: ``model`` resolved (a preset, hub id or path:
        :func:`chimed_eval.models.resolve.resolve_model`) with ``revision``, ``chat_format`` and ``hub``, which
        are the resolution's, not the backend's."""
        from chimed_eval.models.resolve import resolve_model

        args = dict(model_args or {})
        own = {k: v for k, v in args.items() if k not in ("revision", "chat_format", "hub")}
        return cls(resolve_model(model, args), device=device, dtype=dtype, batch_size=batch_size,  # type: ignore[call-arg]
                   seed=seed, model_args=own)

    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        key = (text, add_special_tokens)
        if key not in self._enc_cache:
            kw = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
            self._enc_cache[key] = list(self.tokenizer.encode(text, **kw))
        return self._enc_cache[key]

    def _empty_context(self) -> list[int]:
        tid = self.tokenizer.bos_token_id
        return [tid if tid is not None else self.tokenizer.eos_token_id]

    def encode_pair(self, context: str, continuation: str, add_special_tokens: bool | None) -> tuple[list[int], list[int]]:
        """lm-evaluation-harness semantics: trailing spaces of the context move to the
        continuation; the continuation's tokens are those of encode(context + continuation)
        after the first len(encode(context)) tokens."""
        if not context:
            return self._empty_context(), self.encode(continuation, False)
        n = len(context) - len(context.rstrip())
        if n:
            context, continuation = context[:-n], context[-n:] + continuation
        whole = self.encode(context + continuation, add_special_tokens)
        ctx = self.encode(context, add_special_tokens)
        return ctx, whole[len(ctx):]

    @staticmethod
    def _special(r: Request) -> bool | None:
        """add_special_tokens for a request's context: next_token scoring encodes like
        ``tokenizer.encode(prompt)`` (special tokens on); other kinds follow the request."""
        if r.kind == "next_token" and r.add_special_tokens is None:
            return True
        return r.add_special_tokens

    def request_length(self, request: Request) -> int:
        if request.kind == "loglikelihood":
            return max(sum(map(len, self.encode_pair(request.context, c, request.add_special_tokens)))
                       for c in request.continuations)
        return len(self.encode(request.context, self._special(request)))

    # ------------------------------------------------- token ids per request kind
    def continuation_tokens(self, r: Request) -> list[tuple[list[int], list[int]]]:
        """Per continuation: (the input tokens, left-truncated to the model's length, whose
        last ``len(cont)`` positions predict the continuation, the continuation's tokens)."""
        out = []
        for cont in r.continuations:
            ctx, cenc = self.encode_pair(r.context, cont, r.add_special_tokens)
            if not cenc:
                raise ValueError(f"request {r.key}: continuation {cont!r} encodes to no tokens")
            out.append(((ctx + cenc)[-(self.max_length + 1):], cenc))
        return out

    def next_token_ids(self, r: Request) -> tuple[list[int], list[int]]:
        """(the context's tokens, left-truncated; the candidate token of each continuation:
        the last token of ``tokenizer.encode(letter)``)."""
        ids = self.encode(r.context, self._special(r))[-self.max_length:]
        return ids, [self.encode(cand, True)[-1] for cand in r.continuations]

    def generation_ids(self, r: Request) -> list[int]:
        """The prompt's tokens, left-truncated so that the generation budget fits."""
        max_new = r.generation.max_new_tokens if r.generation else 256
        return self.encode(r.context, r.add_special_tokens)[-(self.max_length - max_new):]

    def cut_at_stop(self, r: Request, text: str) -> str:
        for s in (r.generation.stop if r.generation else ()):
            if s in text:
                text = text[: text.index(s)]
        return text

    def prefix_overlap(self, r: Request, tokens: Sequence[int]) -> int:
        """How many leading tokens of ``tokens`` equal the encoding of ``r.prefix``."""
        if not r.prefix:
            return 0
        n = 0
        for a, b in zip(self.encode(r.prefix, self._special(r)), tokens):
            if a != b:
                break
            n += 1
        return n


REPLACEMENT_CHAR = "\ufffd"
MAX_CUT_TOKENS = 3  # a UTF-8 character lacks at most 3 of its bytes, held by at most 3 tokens


def decode_complete(tokenizer: Any, ids: Sequence[int]) -> str:
    """The generated tokens ``ids`` decoded to complete characters only.

    A generation cut by its token budget can end inside a character (the first bytes of a
    3-byte Chinese character, in byte-level or byte-fallback tokens): the tokenizer's decode then
    ends with U+FFFD (byte-level BPE: one for the cut character; byte fallback: one per byte of
    the whole undecodable run, the complete characters before the cut included). Such a tail is
    not text the model wrote, and would be scored. So when the decoded text ends with U+FFFD,
    the last 1..3 tokens are dropped until the rest decodes without a trailing U+FFFD; the
    complete characters that the dropped tokens' text begins with are kept. A U+FFFD anywhere
    else is kept as it is; one that really is the last character cannot be told apart after
    decoding and is dropped too."""
    text = tokenizer.decode(list(ids), skip_special_tokens=True)
    if not text.endswith(REPLACEMENT_CHAR):
        return text
    for k in range(1, min(MAX_CUT_TOKENS, len(ids)) + 1):
        head = tokenizer.decode(list(ids[:-k]), skip_special_tokens=True)
        if head.endswith(REPLACEMENT_CHAR):
            continue
        if text.startswith(head):
            return head + text[len(head):].rstrip(REPLACEMENT_CHAR)
        return head
    return text.rstrip(REPLACEMENT_CHAR)
