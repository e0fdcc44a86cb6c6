"""Model presets (ChiMed-GPT and the small real models used on CPU) and model resolution.

A GGUF preset is dequantised once into a cached safetensors directory that every backend then
loads, so all backends (and a peer harness) score the same fp32 weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.registry import Registry


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
    """One named model (``chimed-eval run --model NAME``): the small real models used on CPU,
    ChiMed-GPT, and the paper's baselines, in one table (:mod:`chimed_eval.models.presets`).

    ``source`` is the hub id, the API model name or the package that holds the weights; ``needs``
    what the user must install or download. ``published`` names the row of the paper's tables the
    preset reproduces (None for presets that are not a published row)."""

    name: str
    description: str
    needs: str
    locate: Callable[[], "ResolvedModel"] | None = None  # None: the hub id in ``source``
    licence: str = "see the model card"
    #: the ``chat`` variant's prompt format: a name in ``prompts.CHAT_FORMATS``, ``none`` (the
    #: tokenizer's own chat template) or ``api`` (the server's); known without locating the weights
    chat_format: str = "none"
    source: str = ""
    published: str | None = None
    backend: str = "hf"  # "hf" (any local backend) or "openai"
    template_source: str = ""  # where the chat format comes from
    dtype: str | None = None
    decoding: Mapping[str, Any] = field(default_factory=dict)  # the paper's decoding for this model
    trust_remote_code: bool = False
    system_prompt: str | None = None
    notes: tuple[str, ...] = ()
    #: the same weights on ModelScope (``--model-args hub=modelscope``), where they are published
    modelscope: str | None = None

    def resolved(self) -> "ResolvedModel":
        if self.locate is not None:
            return self.locate()
        return ResolvedModel(name=self.name, path=self.source, revision=None, chat_format=self.chat_format,
                             dtype=self.dtype, trust_remote_code=self.trust_remote_code)

    @property
    def prompt_template(self) -> str:
        """One question in this preset's chat format, with ``{prompt}`` where the question goes."""
        from chimed_eval.prompts.variants import apply_chat

        return "{prompt}" if self.chat_format in ("api", "none") else apply_chat(self.chat_format, "{prompt}")


#: Filled by :mod:`chimed_eval.models.presets` on first use (the table imports this module, not the reverse).
MODELS: Registry[ModelPreset] = Registry("model preset", populate="chimed_eval.models.presets")


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
    from chimed_eval.core.progress import progress_bar

    h = hashlib.sha256()
    with open(path, "rb") as f, progress_bar(st.st_size, f"hashing {path.name}", "B", unit_scale=True,
                                             unit_divisor=1024, leave=False) as bar:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
            bar.update(len(chunk))
    known[key] = h.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    # a temp file of its own: two processes hashing at once must not replace each other's
    fd, tmp = tempfile.mkstemp(prefix=f".{memo.name}-{os.getpid()}-", suffix=".tmp", dir=memo.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(known, indent=1))
        os.replace(tmp, memo)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return known[key]


#: Written last into a dequantised model directory: its presence marks the directory complete.
GGUF_SOURCE_FILE = "chimed_eval_source.json"


def dequantise_gguf(gguf: Path, name: str) -> ResolvedModel:
    """Load a GGUF through transformers (dequantised to fp32) and save it once as safetensors.

    Safe when several processes (data-parallel ranks, two runs) ask for the same model at once:
    the conversion runs under a file lock next to the target, the target is checked again once
    the lock is held (the process that waited finds it done), each conversion writes into a temp
    directory of its own, and a finished target found at the final rename is accepted."""
    digest = sha256_file(gguf)
    target = cache_root() / "models" / f"{name}-{digest[:16]}"
    if not _gguf_target_complete(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(target.with_name(target.name + ".lock")):
            if not _gguf_target_complete(target):
                if target.exists():  # a directory left incomplete by hand or by an old version
                    shutil.rmtree(target)
                tmp = Path(tempfile.mkdtemp(prefix=f".{name}-{os.getpid()}-", dir=target.parent))
                try:
                    _write_dequantised(gguf, tmp)
                    (tmp / GGUF_SOURCE_FILE).write_text(json.dumps({"gguf": str(gguf), "sha256": digest}))
                    _publish_dir(tmp, target)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    return ResolvedModel(name=name, path=str(target), revision=None, weights_sha256=digest, dtype="float32")


def _gguf_target_complete(target: Path) -> bool:
    """A converted directory is complete when its config and the source record (written last)
    are both there; ``os.replace`` makes it appear whole, so this never sees half a conversion."""
    return (target / "config.json").is_file() and (target / GGUF_SOURCE_FILE).is_file()


def _write_dequantised(gguf: Path, out: Path) -> None:
    """The conversion itself: transformers dequantises the GGUF to fp32; save model and tokenizer.
    A bar names the step under way (each takes seconds to minutes on a 7B model)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chimed_eval.core.progress import library_bars, progress_bar

    steps = ("reading the tokenizer", "dequantising the weights", "saving safetensors")
    with progress_bar(len(steps), f"converting {gguf.name}", "step") as bar, library_bars():
        bar.set_postfix_str(steps[0])
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        bar.update()
        bar.set_postfix_str(steps[1])
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # The weights are already dequantised; drop the GGUF marker so they can be saved.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        bar.update()
        bar.set_postfix_str(steps[2])
        save_model_dir(model, tok, out)
        bar.update()


def save_model_dir(model: Any, tokenizer: Any, out: Path) -> None:
    """``save_pretrained`` of a freshly loaded model and its tokenizer, without importing DeepSpeed.

    accelerate's unwrapping inside ``save_pretrained`` imports DeepSpeed whenever it is installed,
    to test the model against ``DeepSpeedEngine``; a model loaded here never is one, and that import
    prints ``Setting accelerator to CPU`` and costs seconds in every evaluation that converts a
    GGUF. So accelerate's probe answers "not installed" during this save only."""
    with _deepspeed_probe_off():
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


@contextlib.contextmanager
def _deepspeed_probe_off() -> Iterator[None]:
    import sys

    other = sys.modules.get("accelerate.utils.other")  # loaded by transformers with the model
    if other is None:
        try:
            import accelerate.utils.other as other
        except Exception:  # no (working) accelerate: transformers unwraps without it
            yield
            return
    saved = getattr(other, "is_deepspeed_available", None)
    if saved is None:  # a later accelerate without the probe
        yield
        return
    other.is_deepspeed_available = lambda: False
    try:
        yield
    finally:
        other.is_deepspeed_available = saved


def _publish_dir(tmp: Path, target: Path) -> None:
    """Rename the finished ``tmp`` to ``target``. If another process got there first (a system
    without ``fcntl`` locks, or a lock the file system ignores) and its target is complete, keep
    theirs; the caller removes ``tmp``."""
    try:
        os.replace(tmp, target)
    except OSError:
        if not _gguf_target_complete(target):
            raise


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created, never deleted: deleting a lock file lets a
    third process lock a new file while the second still holds the old one). Released when the
    process dies. Without ``fcntl`` (Windows) no lock: :func:`_publish_dir` still copes."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


#: where ``hub=`` in the model args fetches a hub id or a preset from (default: the Hugging Face hub,
#: through transformers, which honours ``$HF_ENDPOINT``)
MODEL_HUBS = ("hf", "modelscope")


def from_modelscope(spec: str, revision: str | None) -> ResolvedModel:
    """A preset with a ModelScope id, or a hub id, downloaded through ModelScope's
    ``snapshot_download`` (its own cache; ``$MODELSCOPE_CACHE``) and loaded from that folder."""
    if spec in MODELS:
        preset = MODELS.get(spec)
        ms_id = preset.modelscope
        if ms_id is None:
            have = sorted(n for n in MODELS.names() if MODELS.get(n).modelscope)
            raise ConfigError(f"model preset {spec!r} has no ModelScope copy declared (presets with one: "
                              f"{', '.join(have)}); give its ModelScope id as --model, or drop hub=modelscope")
        base = preset.resolved()
    elif "/" in spec and not spec.startswith((".", "/", "~")):
        ms_id, base = spec, ResolvedModel(name=spec, path=spec)
    else:
        raise ConfigError(f"hub=modelscope needs a preset or a ModelScope id (owner/name), not {spec!r}")
    try:
        from modelscope import snapshot_download
    except ImportError:
        raise ConfigError("hub=modelscope needs the modelscope package: pip install modelscope") from None
    local = Path(snapshot_download(ms_id, **({"revision": revision} if revision else {})))
    return ResolvedModel(**{**base.__dict__, "path": str(local), "tokenizer_path": None,
                            "revision": f"modelscope:{ms_id}@{revision or 'master'}"})


def resolve_model(spec: str, model_args: dict[str, str] | None = None) -> ResolvedModel:
    """A preset name, a local directory, a local .gguf file, or a hub id (``revision=`` in model args;
    ``hub=modelscope``: a preset's ModelScope copy or a ModelScope id, see :func:`from_modelscope`)."""
    args = model_args or {}
    hub = args.get("hub", "hf")
    if hub not in MODEL_HUBS:
        raise ConfigError(f"--model-args hub={hub!r}: expected one of {', '.join(MODEL_HUBS)}")
    if hub == "modelscope":
        resolved = from_modelscope(spec, args.get("revision"))
    elif spec in MODELS:
        resolved = MODELS.get(spec).resolved()
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

