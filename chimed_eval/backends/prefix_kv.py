"""The shared few-shot prefix's key/value cache on the transformers backend.

Every item of a subject starts with the same instruction and shots (``Request.prefix``). Their
keys and values are computed once per distinct prefix (:meth:`PrefixKV.get`, batch of one) and
every batch of that subject continues from them, so an item costs only its own tokens.

A batch of ``n`` rows needs the prefix at batch size ``n``. :func:`shared_view` gives it without
copying: each layer's keys and values become ``expand(n, ...)`` views of the stored tensors. This
is safe for the cache layers whose ``update`` concatenates into new tensors and never writes into
the old ones (transformers 5.x ``DynamicLayer`` and ``DynamicSlidingWindowLayer``, checked by
exact type); any other layer kind gets the old path, a deep copy repeated to ``n`` rows. The
concatenation inside the forward pass is the one copy left. Whatever path is taken, the backend
verifies once per model that scoring on top of the cache reproduces a full forward
(``HFBackend._check_prefix_cache``) before using it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

#: prefixes kept (a run sorts requests by prefix, so one is live at a time; a few spare for batches
#: that straddle two subjects and for the tokens-shared variants of one prefix)
KEEP = 4


@dataclass
class Row:
    """One decoder input and the (position, token) pairs to read from it."""

    tokens: tuple[int, ...]
    reads: list[tuple[int, int]]
    prefix_len: int = 0  # leading tokens that are the request's shared prefix (KV-cacheable)


def _append_only_layers() -> tuple[type, ...]:
    """The transformers cache layer classes whose update never writes into the stored tensors."""
    try:
        from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer
    except ImportError:  # an older transformers: no layer objects, use the copying path
        return ()
    return (DynamicLayer, DynamicSlidingWindowLayer)


def shared_view(cache: Any, n: int) -> Any | None:
    """A cache object for ``n`` rows whose layers read the stored prefix's tensors through
    ``expand`` views (no copy), or None when some layer is of a kind not known to be append-only."""
    layers = getattr(cache, "layers", None)
    safe = _append_only_layers()
    if layers is None or not safe or any(type(layer) not in safe for layer in layers):
        return None
    view = copy.copy(cache)
    view.layers = []
    for layer in layers:
        mine = copy.copy(layer)
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if t is not None and t.dim() == 4 and t.shape[0] == 1 and n > 1:
                setattr(mine, name, t.expand(n, -1, -1, -1))
        view.layers.append(mine)
    return view


class PrefixKV:
    """The keys and values of the last few prefixes (token tuples), computed by ``compute``."""

    def __init__(self, compute: Callable[[tuple[int, ...]], Any], share: bool = True) -> None:
        self._compute = compute
        self._store: dict[tuple[int, ...], Any] = {}
        self._heads: dict[tuple[int, ...], Any] = {}  # for prefix_attention: heads repeated, per layer
        self.share = share  # False: the copying path (deep copy + repeat), for comparison
        self.computed = 0  # prefixes computed so far (a benchmark and the tests read it)

    def get(self, prefix: tuple[int, ...]) -> Any:
        """The stored cache of ``prefix`` (batch of one), computed on first use."""
        cache = self._store.get(prefix)
        if cache is None:
            cache = self._compute(prefix)
            self.computed += 1
            self._store[prefix] = cache
            while len(self._store) > KEEP:
                self._store.pop(next(iter(self._store)))
        return cache

    def for_rows(self, prefix: tuple[int, ...], n: int) -> Any:
        """The prefix's cache for a forward pass of ``n`` rows, which may append to it freely."""
        cache = self.get(prefix)
        view = shared_view(cache, n) if self.share else None
        if view is not None:
            return view
        c = copy.deepcopy(cache)
        if n > 1:
            c.batch_repeat_interleave(n)
        return c

    def split_kv(self, prefix: tuple[int, ...], heads: int) -> list[tuple[Any, Any]]:
        """The prefix's per-layer (keys, values) with ``heads`` heads, for :mod:`.prefix_attention`."""
        got = self._heads.get(prefix)
        if got is None:
            from chimed_eval.backends.prefix_attention import prefix_heads

            got = self._heads[prefix] = prefix_heads(self.get(prefix), heads)
            while len(self._heads) > KEEP:
                self._heads.pop(next(iter(self._heads)))
        return got

    def clear(self) -> None:
        self._store.clear()
        self._heads.clear()
