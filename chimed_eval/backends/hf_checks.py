"""The hf backend's load-time checks: each shortcut it takes is tried once against the plain
computation on a probe, and used only where both agree (fp32: within 1e-3 nats).

* the output layer applied to gathered hidden states against the model's own logits;
* scoring on top of a cached prefix (and through the prefix-split attention) against a full
  forward pass, past any sliding attention window;
* rows packed end to end against the padded batch, with and without a prefix.

Any exception in a check means: do not use that shortcut (logged at INFO).
"""

from __future__ import annotations

import logging
from typing import Any

from chimed_eval.backends.prefix_kv import Row

log = logging.getLogger("chimed_eval.backends.hf")


def check_prefix_cache(backend: Any) -> bool:
    """Verify once that scoring on top of a cached prefix reproduces a full forward (also
    past a sliding attention window, where the architecture has one)."""
    if backend._decoder is None:
        return False
    window = int(getattr(backend.model.config, "sliding_window", 0) or 0)
    n = min(max(64, window + 64), backend.max_length)
    base = backend.encode("以下是关于解剖学的单项选择题，请直接给出正确答案的选项。 check 123 ", False) or [0]
    ids = (base * (n // len(base) + 1))[:n]
    split = n // 2 if window == 0 else min(window + 16, n - 8)
    rows = [Row(tuple(ids), [(n - 1, ids[0]), (n - 3, ids[1])], 0),
            Row(tuple(ids[:-2]), [(n - 3, ids[1])], 0)]
    try:
        full = backend._forward_group(rows, ())
        cached = backend._forward_group(rows, tuple(ids[:split]))
        backend._prefix_kv.clear()
    except Exception as exc:  # noqa: BLE001 - any surprise: do not use the shortcut
        log.info("prefix KV cache unavailable (%s)", exc)
        backend._prefix_kv.clear()
        return False
    tol = 1e-3 if backend.dtype_name == "float32" else 5e-2
    worst = max(abs(a[0] - b[0]) for x, y in zip(full, cached) for a, b in zip(x, y))
    if worst > tol:
        log.info("prefix KV cache differs from a full forward by %.2g; not used", worst)
    return worst <= tol


def check_packed(backend: Any) -> bool:
    """Verify once that rows packed end to end (with and without a cached prefix) score as the
    padded batch does; any difference or surprise keeps the padded path."""
    base = backend.encode("以下是关于解剖学的单项选择题，请直接给出正确答案的选项。 check 123 ", False) or [0]
    ids = tuple((base * (48 // len(base) + 1))[:48])
    rows = [Row(ids, [(47, ids[0]), (40, ids[1])], 0), Row(ids[:30], [(29, ids[2])], 0),
            Row(ids[5:25], [(19, ids[3])], 0)]
    groups = [((), rows)]
    if backend.prefix_cache:  # the same rows on top of a 16-token prefix
        groups.append((ids[:16], [Row(r.tokens, r.reads, 16) for r in rows[:2]]))
    worst = 0.0
    try:
        for prefix, group in groups:
            backend._packed = False
            padded = backend._forward_group(group, prefix)
            backend._packed = True
            packed = backend._forward_group(group, prefix)
            worst = max([worst] + [abs(a[0] - b[0]) for x, y in zip(padded, packed) for a, b in zip(x, y)])
    except Exception as exc:  # noqa: BLE001 - any surprise: keep the padded path
        log.info("packed rows unavailable (%s)", exc)
        return False
    finally:
        backend._packed = False
        backend._prefix_kv.clear()
    tol = 1e-3 if backend.dtype_name == "float32" else 5e-2
    if worst > tol:
        log.info("packed rows differ from the padded batch by %.2g; not used", worst)
    return worst <= tol


def check_partial_head(backend: Any) -> bool:
    """Verify once that decoder + output layer reproduces the model's own logits."""
    torch = backend.torch
    if backend._decoder is None or backend._head is None:
        return False
    ids = torch.tensor([backend.encode("检查 check 123", False)[:8] or [0]], device=backend.device)
    mask = torch.ones_like(ids)
    try:
        with torch.inference_mode():
            full = backend.model(input_ids=ids, attention_mask=mask).logits[0, -1].float()
            part = backend._head(backend._decoder(input_ids=ids, attention_mask=mask).last_hidden_state[0, -1]).float()
    except Exception as exc:  # noqa: BLE001 - any architecture surprise means: use the safe path
        log.info("partial output layer unavailable (%s); using full logits", exc)
        return False
    tol = 1e-3 if backend.dtype_name == "float32" else 5e-2
    ok = bool(torch.allclose(full, part, atol=tol, rtol=0))
    if not ok:
        log.info("decoder+head differs from model logits; using full logits")
    return ok
