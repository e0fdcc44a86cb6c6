"""Scoring rows packed end to end into one sequence: no padded position is ever computed (CPU).

A right-padded batch of rows runs every layer on ``rows x longest`` positions; on the 5-shot
CMMLU workload (SmolLM2-135M, batch 8, rows sorted by length) 11 % of those were padding. Packed,
the rows' own tokens follow each other in one sequence of ``sum(lengths)`` positions, so the
linear layers (most of the work on a CPU) see only real tokens. Attention keeps the rows apart:

* each row's tokens attend causally to that row's tokens only: one call of PyTorch's CPU
  flash-attention kernel per row, on views of the packed queries, keys and values;
* with a cached few-shot prefix, every position also attends to the whole prefix: one unmasked
  call for the whole packed sequence against the stored prefix keys and values;

and the two parts are merged exactly by their log-sum-exp, as in :mod:`.prefix_attention`.
Positions restart for every row (the prefix length, then up), which is what the model would see
for the row alone. It is registered as the attention implementation ``chimed_packed`` (with no
mask: this function ignores one), switched on for one forward pass at a time, and the hf backend
uses it only after a load-time check against the padded forward. A model with a sliding attention
window uses it only for rows whose prefix plus own length fit inside the window (inside it, the
window changes nothing).
"""

from __future__ import annotations

from typing import Any, Sequence

from chimed_eval.backends.prefix_attention import merge_lse, register_attention

NAME = "chimed_packed"


def attend_packed(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                     scaling: float | None = None, is_causal: bool | None = None, **kw: Any) -> tuple[Any, None]:
    """transformers' attention-function signature, for one packed sequence (batch 1).

    ``chimed_segments``: the rows' boundaries ``(0, end_1, end_2, ..., T)``; ``chimed_prefix``:
    per layer the stored prefix's (keys, values), heads repeated, shape (1, heads, P, head_dim),
    or None without a prefix."""
    import torch

    bounds: Sequence[int] = kw.pop("chimed_segments")
    prefix = kw.pop("chimed_prefix", None)
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    h = query.shape[1]
    if h != key.shape[1]:  # grouped key/value heads: one copy for the whole sequence
        key = key.repeat_interleave(h // key.shape[1], dim=1)
        value = value.repeat_interleave(h // value.shape[1], dim=1)
    outs, lses = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        o, lse = flash(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], 0.0, True, scale=scaling)
        outs.append(o)
        lses.append(lse)
    own = torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]
    if prefix is None:
        return own.transpose(1, 2).contiguous(), None
    kp, vp = prefix[module.layer_idx]
    o1, l1 = flash(query, kp, vp, 0.0, False, scale=scaling)
    l2 = torch.cat(lses, dim=2) if len(lses) > 1 else lses[0]
    return merge_lse(o1, l1, own, l2).transpose(1, 2).contiguous(), None


def _no_mask(*args: Any, **kwargs: Any) -> None:
    """The mask function for ``chimed_packed``: none is built (the rows are kept apart by their
    boundaries, and a (T, T) mask would cost time for nothing)."""
    return None


def register() -> bool:
    """Register the packed implementation with transformers (once), with no mask function."""
    return register_attention(NAME, attend_packed, _no_mask)


def offered(backend: Any) -> bool:
    """Whether it applies to a loaded hf backend: CPU, SDPA, its partial output layer, attention
    that is plain scaled dot products (the load-time check then decides)."""
    cfg = getattr(backend._decoder, "config", None)
    return (str(backend.device).startswith("cpu") and backend._partial_ok and cfg is not None
            and getattr(cfg, "_attn_implementation", None) == "sdpa"
            and not getattr(cfg, "attn_logit_softcapping", None)
            and bool(getattr(cfg, "num_attention_heads", 0)) and register())


def fits(config: Any, prefix_len: int, longest: int) -> bool:
    """Whether rows of at most ``longest`` own tokens on a ``prefix_len``-token prefix may run
    packed: always without a sliding window, and inside the window with one."""
    window = int(getattr(config, "sliding_window", 0) or 0)
    return window == 0 or prefix_len + longest <= window


def packed_hidden(decoder: Any, rows: Sequence[Sequence[int]], offset: int, reads: Sequence[tuple[int, int]],
                  prefix: Any = None) -> Any:
    """The decoder's last hidden states at ``reads`` ((row, position in the row's own tokens)
    pairs), the rows run packed on top of ``prefix`` (``offset`` tokens, per-layer keys and
    values as :func:`attend_packed` takes them) or of nothing."""
    import torch

    device = decoder.device
    flat = [t for r in rows for t in r]
    bounds = [0]
    for r in rows:
        bounds.append(bounds[-1] + len(r))
    ids = torch.tensor([flat], dtype=torch.long, device=device)
    pos = torch.cat([torch.arange(offset, offset + len(r), dtype=torch.long) for r in rows])[None].to(device)
    cfg = decoder.config
    before = cfg._attn_implementation
    cfg._attn_implementation = NAME
    try:
        hidden = decoder(input_ids=ids, position_ids=pos, chimed_segments=tuple(bounds), chimed_prefix=prefix,
                         use_cache=False).last_hidden_state
    finally:
        cfg._attn_implementation = before
    at = torch.tensor([bounds[i] + q for i, q in reads], dtype=torch.long, device=hidden.device)
    return hidden[0, at]
