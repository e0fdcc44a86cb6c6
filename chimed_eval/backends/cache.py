"""An on-disk response cache: every model call, keyed by the model's identity and the exact request.

``chimed-eval run`` wraps every real backend in :class:`CachingBackend` (``--cache DIR``, default
``$CHIMED_EVAL_CACHE/responses``; ``--no-cache`` to disable; the fake backend only with an
explicit ``--cache``). A second identical run, even into a new output directory, makes no model
calls; a run that died half-way through a batch resumes without asking again for the responses
that had arrived (the API backend hands each response to the cache as soon as it arrives).

The key is ``sha256`` of canonical JSON holding

* the backend's name and ``model_info()`` (name, path, revision, weights sha256, dtype); for a
  local directory whose weights were too large to hash, a fingerprint of the weight files' names,
  sizes and modification times;
* the backend's ``cache_identity()`` where it has one (API: model name, base URL, endpoint, system
  prompt, temperature override, top-logprobs, floor; fake: its mode and the run's ``--seed``,
  from which it draws its answers);
* what the command line adds (:func:`cache_extra_identity`): ``--dtype`` as asked, ``--device``,
  and every ``--model-args`` entry except those in :data:`VOLATILE_MODEL_ARGS` (how a backend
  talks, waits or batches, never what it answers) and :data:`SECRET_MODEL_ARGS` (credentials:
  they change no answer and must never be written anywhere, not even hashed);
* every field of the Request (kind, item key, context, continuations, prefix, special tokens,
  the whole GenerationConfig: max new tokens, stop strings, temperature, top-p and the per-item
  seed; the chat messages).

The run's ``--seed`` reaches the real backends' answers only through that per-item seed, which
the runner sets on every sampled generation request: greedy generations and log-probabilities do
not depend on it, so runs with other seeds share them. ``--batch-size`` is not in the key either
(it groups requests; it does not change what a request asks).

A hub id without ``revision=`` keys on the name alone: pin the revision, or clear the cache when
the hub model changes.

Storage: :mod:`chimed_eval.backends.response_store` (one SQLite file in WAL mode).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from chimed_eval.backends.base import Backend
from chimed_eval.core.types import ModelInfo, Request, Response, Usage
from chimed_eval.backends.response_store import (  # noqa: F401 (their home before the split)
    DB_NAME, CorruptCacheError, ResponseCache, _decode, _encode, is_corruption)

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # 2: fake backend's seed and --dtype in the key; 3: chat messages, no `oracle` field
#: --model-args that change how a backend talks, waits or batches, never what it answers: the fake
#: backend's delay, the API backend's transport settings and where it finds its key, the vLLM
#: backend's requests per engine call (vLLM schedules its own batches inside, like --batch-size).
VOLATILE_MODEL_ARGS = frozenset({"delay", "concurrency", "timeout", "max_retries", "backoff", "max_backoff",
                                 "api_key_env", "api_key_file", "batch", "request_deadline", "allow_insecure_http"})
#: examples of credential --model-args left out of the key, even hashed (the rule: secret_args.is_secret_name)
SECRET_MODEL_ARGS = frozenset({"api_key", "token", "hf_token", "use_auth_token", "access_token", "auth_token",
                               "password", "secret"})


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def request_fields(r: Request) -> dict[str, Any]:
    """The request as the key sees it; ``generation.top_k`` only when set, so the keys of the
    requests made before it existed are unchanged."""
    d = dataclasses.asdict(r)
    if d.get("generation") is not None and d["generation"].get("top_k") is None:
        d["generation"].pop("top_k", None)
    return d


def cache_key(identity: Mapping[str, Any], request: Request) -> str:
    doc = {"v": CACHE_VERSION, "identity": identity, "request": request_fields(request)}
    return hashlib.sha256(_canonical(doc).encode("utf-8")).hexdigest()


_CACHED = Usage(cached=True)  # what a cache hit cost: no call
def model_identity(info: ModelInfo) -> dict[str, Any]:
    d = dataclasses.asdict(info)
    if d.get("weights_sha256") is None and d.get("path"):
        p = Path(d["path"])
        if p.is_dir():  # local weights too large to hash: names, sizes and mtimes stand in
            d["weights_stat"] = sorted(
                (f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.iterdir()
                if f.suffix in (".safetensors", ".bin", ".gguf", ".pt"))
    return d


class CachingBackend(Backend):
    """Serves cached responses and forwards only the misses (as one batch) to ``inner``."""

    def __init__(self, inner: Backend, cache: ResponseCache | Path | str,
                 extra_identity: Mapping[str, Any] | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache = cache if isinstance(cache, ResponseCache) else ResponseCache(cache)
        self.extra_identity = dict(extra_identity or {})
        self._identity: dict[str, Any] | None = None
        self.hits = 0
        self.misses = 0
        if hasattr(inner, "on_response"):  # store each response as soon as it arrives
            inner.on_response = self._store_one

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            ident: dict[str, Any] = {"backend": self.inner.name, "model": model_identity(self.inner.model_info())}
            extra = getattr(self.inner, "cache_identity", None)
            if callable(extra):
                ident["backend_settings"] = extra()
            if self.extra_identity:
                ident["run"] = self.extra_identity
            self._identity = ident
        return self._identity

    def key(self, request: Request) -> str:
        return cache_key(self.identity(), request)

    def _store_one(self, request: Request, response: Response) -> None:
        self.cache.put_many([(self.key(request), request.kind, response)])

    # -- the Backend interface: delegate
    def model_info(self) -> ModelInfo:
        return self.inner.model_info()

    @property
    def run_batch_size(self) -> int | None:  # type: ignore[override]
        return getattr(self.inner, "run_batch_size", None)

    def choose_batch_size(self, kind: str, requests: Sequence[Request]) -> int | None:
        """``--batch-size auto``: the inner backend's choice (its trial batches bypass the cache)."""
        chooser = getattr(self.inner, "choose_batch_size", None)
        return None if chooser is None else chooser(kind, requests)

    def request_length(self, request: Request) -> int:
        return self.inner.request_length(request)

    def sort_key(self, request: Request) -> tuple:
        return self.inner.sort_key(request)

    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        return self._cached("loglikelihood", requests)

    def next_token(self, requests: Sequence[Request]) -> list[Response]:
        return self._cached("next_token", requests)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return self._cached("generate", requests)

    def token_logprobs(self, requests: Sequence[Request]) -> list[Response]:
        return self._cached("token_logprobs", requests)

    def _cached(self, kind: str, requests: Sequence[Request]) -> list[Response]:
        keys = [self.key(r) for r in requests]
        found = self.cache.get_many(keys)
        miss_idx = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(requests) - len(miss_idx)
        self.misses += len(miss_idx)
        fresh: dict[int, Response] = {}
        if miss_idx:
            answers = self.inner.run(kind, [requests[i] for i in miss_idx])
            self.cache.put_many([(keys[i], kind, a) for i, a in zip(miss_idx, answers)])
            fresh = dict(zip(miss_idx, answers))
        return [fresh[i] if i in fresh else dataclasses.replace(found[keys[i]], key=r.key, usage=_CACHED)
                for i, r in enumerate(requests)]

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            if self.hits or self.misses:
                log.info("response cache %s: %d hits, %d misses", self.cache.path, self.hits, self.misses)
            self.cache.close()


def cache_extra_identity(model_args: Mapping[str, str], device: str | None,
                         dtype: str | None = None) -> dict[str, Any]:
    """What the command line adds to the identity: the result-changing model args (all but the
    volatile and the secret ones), the device and the dtype as asked (a backend's model info holds
    the dtype it resolved; the request is kept too, so no backend can drop it)."""
    from chimed_eval.core.secrets import is_secret_arg  # the one rule for what a secret looks like (name or value)

    return {"model_args": {k: v for k, v in sorted(model_args.items())
                           if k not in VOLATILE_MODEL_ARGS and not is_secret_arg(k, v)},
            "device": device, "dtype": dtype}


def default_cache_dir() -> Path:
    from chimed_eval.models.resolve import cache_root

    return cache_root() / "responses"
