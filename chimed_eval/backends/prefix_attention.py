"""Attention on top of a shared prefix without a mask or copies (CPU, transformers' SDPA models).

On top of a cached prefix, transformers' SDPA attention gets the prefix's keys concatenated with
the batch's own, an explicit mask (the queries do not start at position 0, so SDPA's causal path
does not apply) and, with a mask, the grouped key/value heads repeated into full-size copies. A
profile of one 5-shot batch on SmolLM2-135M put that attention at 4.9 s against 1.0 s without the
prefix, plus 1.4 s of copies, next to 7.2 s of linear layers.

This attention splits the work in two exact parts and merges them by their log-sum-exp:

* the prefix part: the queries of the whole batch, as one sequence, against the one stored prefix
  (heads repeated once per prefix, kept), with no mask: every item sees the whole prefix;
* the item part: each row's queries against its own keys with SDPA's causal path;

``softmax`` over the union is ``(o1 * e^(l1 - m) + o2 * e^(l2 - m)) / (e^(l1 - m) + e^(l2 - m))``
with ``m = max(l1, l2)``. Both parts run in PyTorch's CPU flash-attention kernel, which returns the
log-sum-exp (``aten::_scaled_dot_product_flash_attention_for_cpu``). It is registered as the
attention implementation ``chimed_prefix_split`` and used only for the duration of one forward pass
that passes ``chimed_prefix=``; without it the implementation is plain SDPA. The hf backend turns it
on only after a load-time check against a full forward pass (models with a sliding window, or
whose attention does more than scaled dot products, fail it or are not offered it).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

NAME = "chimed_prefix_split"
_registered_names: set[str] = set()


def split_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                    scaling: float | None = None, is_causal: bool | None = None, **kw: Any) -> tuple[Any, None]:
    """transformers' attention-function signature; ``chimed_prefix``: per layer (keys, values) of
    the prefix, shape (1, heads, P, head_dim)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    prefix = kw.pop("chimed_prefix", None)
    if prefix is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kw)
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    kp, vp = prefix[module.layer_idx]
    b, h, s, d = query.shape
    if h != key.shape[1]:
        key = key.repeat_interleave(h // key.shape[1], dim=1)
        value = value.repeat_interleave(h // value.shape[1], dim=1)
    o1, l1 = flash(query.transpose(0, 1).reshape(1, h, b * s, d), kp, vp, 0.0, False, scale=scaling)
    o1 = o1.reshape(h, b, s, d).transpose(0, 1)
    l1 = l1.reshape(h, b, s).transpose(0, 1)
    o2, l2 = flash(query, key, value, 0.0, True, scale=scaling)
    return merge_lse(o1, l1, o2, l2).transpose(1, 2).contiguous(), None


def merge_lse(o1: Any, l1: Any, o2: Any, l2: Any) -> Any:
    """Attention over the union of two key sets from each part's output ``o`` (batch, heads,
    queries, head_dim) and log-sum-exp ``l`` (batch, heads, queries): exact, not an estimate.
    The first part's share of the union's softmax mass is ``e^l1 / (e^l1 + e^l2) = sigmoid(l1 - l2)``,
    so the result is one fused interpolation ``o2 + w (o1 - o2)``."""
    import torch

    return torch.lerp(o2, o1, torch.sigmoid(l1 - l2).unsqueeze(-1))


def register_attention(name: str, attend: Any, mask: Any = None) -> bool:
    """Register ``attend`` with transformers as attention implementation ``name``, with ``mask``
    as its mask function (``None``: transformers' SDPA mask); False if this transformers or torch
    lacks what it needs (the CPU flash-attention kernel that returns the log-sum-exp)."""
    if name in _registered_names:
        return True
    try:
        import torch
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu  # noqa: B018 - present in this torch?
    except (ImportError, AttributeError, RuntimeError):
        return False
    AttentionInterface.register(name, attend)
    AttentionMaskInterface.register(name, mask or sdpa_mask)
    _registered_names.add(name)
    return True


def register() -> bool:
    """Register the prefix-split implementation (once)."""
    return register_attention(NAME, split_attention)


def prefix_heads(cache: Any, heads: int) -> list[tuple[Any, Any]]:
    """Per layer, the stored prefix's (keys, values) with the heads repeated to ``heads``."""
    out = []
    for layer in cache.layers:
        k, v = layer.keys, layer.values
        rep = heads // k.shape[1]
        out.append((k.repeat_interleave(rep, dim=1).contiguous(), v.repeat_interleave(rep, dim=1).contiguous())
                   if rep > 1 else (k.contiguous(), v.contiguous()))
    return out


def offered(backend: Any) -> bool:
    """Whether it applies to a loaded hf backend: CPU, SDPA, no sliding window, its partial output
    layer (the load-time check then decides)."""
    cfg = getattr(backend._decoder, "config", None)
    return (str(backend.device).startswith("cpu") and backend._partial_ok and cfg is not None
            and getattr(cfg, "_attn_implementation", None) == "sdpa" and not getattr(cfg, "sliding_window", None)
            and bool(getattr(cfg, "num_attention_heads", 0)) and register())


@contextlib.contextmanager
def using(config: Any) -> Iterator[None]:
    """``config``'s attention implementation set to the split one for one forward pass."""
    before = config._attn_implementation
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = before
