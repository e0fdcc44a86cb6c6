"""``token_logprobs`` requests on the local-weights backends: which tokens are scored, and the
exact per-token figures of the transformers backend.

Tokens (both ``hf`` and ``vllm``, :func:`token_row`): the context and the text are encoded as for a
``loglikelihood`` request (:meth:`chimed_eval.backends.tokens.TokenizedBackend.encode_pair`: an
empty context is the tokenizer's BOS token, or its EOS where it has no BOS, so the text's first
token is scored too; a non-empty context follows ``add_special_tokens``). A sequence longer than
the model's context less one token keeps its context and the text's first tokens that fit (the
response's ``n_tokens`` says how many were scored).

Figures (``hf``, :func:`hf_token_logprobs`): at every scored position t the next-token logits are
taken in float32 and ``log_softmax``-ed over the whole vocabulary; ``token_logprobs[t]`` is the
actual token's entry, and ``token_moments[t] = (mu_t, sigma_t)`` with
``mu_t = sum_z p(z) log p(z)`` and ``sigma_t^2 = sum_z p(z) (log p(z) - mu_t)^2`` (Min-K%++'s
moments; terms with p(z) = 0 count 0). The requests of a call run as one right-padded batch
(causal attention: a real position never sees a pad); the output layer is applied to the scored
positions only, in chunks of at most :data:`CHUNK_ELEMENTS` logits.
"""

from __future__ import annotations

from typing import Any, Sequence

from chimed_eval.core.types import Request, Response

#: logits per output-layer chunk (2**25 float32 = 128 MiB: 680 positions of a 49k vocabulary)
CHUNK_ELEMENTS = 1 << 25


def token_row(backend: Any, r: Request) -> tuple[list[int], list[int]]:
    """(the full token sequence, the text's scored tokens: its last ``len`` positions)."""
    ctx, text = backend.encode_pair(r.context, r.continuations[0], r.add_special_tokens)
    if not text:
        raise ValueError(f"request {r.key}: the text encodes to no tokens")
    limit = max(2, int(backend.max_length) - 1)
    if len(ctx) >= limit:
        ctx = ctx[-(limit - 1):]
    text = text[: limit - len(ctx)]
    return ctx + text, text


def moments(logp: Any) -> tuple[Any, Any]:
    """(mu, sigma) of log p(z) under p, per row of a float32 ``log_softmax`` tensor."""
    import torch

    p = logp.exp()
    live = p > 0
    mu = torch.where(live, p * logp, torch.zeros_like(logp)).sum(-1)
    dev = torch.where(live, p * (logp - mu[:, None]) ** 2, torch.zeros_like(logp)).sum(-1)
    return mu, dev.clamp_min(0).sqrt()


def hf_token_logprobs(backend: Any, requests: Sequence[Request]) -> list[Response]:
    """The hf backend's ``token_logprobs`` (see the module docstring)."""
    torch = backend.torch
    plans = [token_row(backend, r) for r in requests]
    inputs = [full[:-1] for full, _ in plans]
    width = max(len(x) for x in inputs)
    ids = torch.full((len(inputs), width), backend.pad_id, dtype=torch.long)
    b_idx, p_idx, t_idx = [], [], []
    for i, (x, (_, text)) in enumerate(zip(inputs, plans)):
        ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        start = len(x) - len(text)
        b_idx += [i] * len(text)
        p_idx += range(start, len(x))
        t_idx += text
    lps: list[float] = []
    mus: list[float] = []
    sds: list[float] = []
    with torch.inference_mode():
        ids = ids.to(backend.device)
        b, p = torch.tensor(b_idx, device=backend.device), torch.tensor(p_idx, device=backend.device)
        if backend._partial_ok:  # decoder once, the output layer on the scored positions only
            hidden = backend._decoder(input_ids=ids).last_hidden_state[b, p]
            logits_of = lambda lo, hi: backend._head(hidden[lo:hi])  # noqa: E731
        else:  # models whose head needs the whole forward (soft-capping, scaling)
            full_logits = backend.model(input_ids=ids).logits
            logits_of = lambda lo, hi: full_logits[b[lo:hi], p[lo:hi]]  # noqa: E731
        vocab = backend._head.out_features if getattr(backend._head, "out_features", None) else 1 << 18
        step = max(1, CHUNK_ELEMENTS // int(vocab))
        tok = torch.tensor(t_idx, device=backend.device)
        for lo in range(0, len(t_idx), step):
            logp = torch.log_softmax(logits_of(lo, lo + step).float(), dim=-1)
            lps += logp.gather(1, tok[lo:lo + step, None])[:, 0].tolist()
            mu, sd = moments(logp)
            mus += mu.tolist()
            sds += sd.tolist()
    out, k = [], 0
    for r, (_, text) in zip(requests, plans):
        n = len(text)
        out.append(Response(key=r.key, n_tokens=(n,), token_logprobs=tuple(lps[k:k + n]),
                            token_moments=tuple(zip(mus[k:k + n], sds[k:k + n]))))
        k += n
    return out
