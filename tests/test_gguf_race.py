"""Two processes dequantising the same GGUF into the shared model cache at once both succeed.

transformers and torch are replaced (in the child processes, through ``sys.modules``) by a slow
fake conversion that writes a model directory, so the locking and renaming of
``chimed_eval.models.resolve.dequantise_gguf`` run for real without a real GGUF file.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chimed_eval.models import resolve as models

#: the folder holding the chimed_eval package under test (the children import the same one)
PKG_ROOT = Path(models.__file__).resolve().parents[2]

#: Installs the fake transformers/torch; each conversion appends a line to the file ``LOG``.
FAKE_LIBS = r'''
import json, sys, time, types
from pathlib import Path


class FakeModel:
    def __init__(self):
        self.config = types.SimpleNamespace(quantization_config={"quant_method": "gguf"})
        self.hf_quantizer = object()

    def save_pretrained(self, out, safe_serialization=True):
        out = Path(out)
        (out / "model.safetensors").write_bytes(b"\0" * 4096)
        time.sleep(0.6)  # slow: the other process is converting meanwhile
        (out / "config.json").write_text(json.dumps({"quantised": hasattr(self.config, "quantization_config")}))


class FakeTokenizer:
    def save_pretrained(self, out):
        (Path(out) / "tokenizer.json").write_text("{}")


def load_model(*args, **kwargs):
    with open(LOG, "a") as f:
        f.write("converted\n")
    return FakeModel()


transformers = types.ModuleType("transformers")
transformers.AutoModelForCausalLM = types.SimpleNamespace(from_pretrained=load_model)
transformers.AutoTokenizer = types.SimpleNamespace(from_pretrained=lambda *a, **k: FakeTokenizer())
torch = types.ModuleType("torch")
torch.float32 = "float32"
sys.modules["transformers"], sys.modules["torch"] = transformers, torch
'''

#: argv: log file, GGUF file, ready folder, number of processes. Waits until all are ready, then
#: converts; prints the resolved path.
CHILD = "import sys\nfrom pathlib import Path\nLOG = Path(sys.argv[1])\n" + FAKE_LIBS + r'''
import os
from chimed_eval.models.resolve import dequantise_gguf

gguf, ready, n = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
(ready / str(os.getpid())).touch()
deadline = time.monotonic() + 60
while len(list(ready.iterdir())) < n and time.monotonic() < deadline:
    time.sleep(0.002)
print(json.dumps({"path": dequantise_gguf(gguf, "tiny").path}))
'''


def _leftovers(models_dir: Path) -> list[str]:
    """Temp directories (and temp files) a conversion left behind."""
    return sorted(p.name for p in models_dir.iterdir() if p.name.startswith("."))


def test_two_processes_converting_the_same_gguf_both_succeed(tmp_path):
    cache = tmp_path / "cache"
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 8)
    ready = tmp_path / "ready"
    ready.mkdir()
    log = tmp_path / "conversions.log"
    env = {**os.environ, "CHIMED_EVAL_CACHE": str(cache), "PYTHONPATH": str(PKG_ROOT)}
    argv = [sys.executable, "-c", CHILD, str(log), str(gguf), str(ready), "2"]
    procs = [subprocess.Popen(argv, cwd=PKG_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    paths = {json.loads(out.strip().splitlines()[-1])["path"] for out, _ in outs}
    assert len(paths) == 1
    target = Path(paths.pop())
    assert sorted(f.name for f in target.iterdir()) == ["chimed_eval_source.json", "config.json",
                                                        "model.safetensors", "tokenizer.json"]
    assert json.loads((target / "config.json").read_text()) == {"quantised": False}
    assert json.loads((target / "chimed_eval_source.json").read_text())["gguf"] == str(gguf)
    assert _leftovers(target.parent) == []
    # the lock made the second process wait and find the first one's result
    assert log.read_text().splitlines() == ["converted"]


@pytest.fixture
def fake_conversion(tmp_path):
    """The fake transformers/torch in this process; returns the conversion log."""
    log = tmp_path / "conversions.log"
    namespace: dict = {"LOG": log}
    saved = {k: sys.modules.get(k) for k in ("transformers", "torch")}
    exec(FAKE_LIBS, namespace)  # noqa: S102 - our own fake, installs into sys.modules
    yield namespace, log
    for k, v in saved.items():
        if v is None:
            sys.modules.pop(k, None)
        else:
            sys.modules[k] = v


def test_a_target_finished_by_another_process_during_the_conversion_is_accepted(tmp_path, monkeypatch,
                                                                                fake_conversion):
    """Without a working lock (no fcntl, a network file system), another process can finish the
    target while this one converts: the final rename then fails, and the complete target is used."""
    namespace, log = fake_conversion
    monkeypatch.setenv("CHIMED_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "_file_lock", lambda path: contextlib.nullcontext(), raising=False)
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + b"\1" * 1024)
    models_dir = tmp_path / "cache" / "models"
    target = models_dir / f"tiny-{models.sha256_file(gguf)[:16]}"
    slow_save = namespace["FakeModel"].save_pretrained

    def save_while_another_finishes(self, out, safe_serialization=True):
        slow_save(self, out, safe_serialization)
        target.mkdir()  # meanwhile the other process's complete result lands
        (target / "config.json").write_text('{"other": true}')
        (target / "chimed_eval_source.json").write_text("{}")

    monkeypatch.setattr(namespace["FakeModel"], "save_pretrained", save_while_another_finishes)
    resolved = models.dequantise_gguf(gguf, "tiny")
    assert Path(resolved.path) == target
    assert json.loads((target / "config.json").read_text()) == {"other": True}  # theirs, kept whole
    assert sorted(f.name for f in target.iterdir()) == ["chimed_eval_source.json", "config.json"]
    assert _leftovers(models_dir) == []
    assert log.read_text().splitlines() == ["converted"]


def test_a_half_made_target_is_converted_again_and_a_rename_onto_one_raises(tmp_path, monkeypatch, fake_conversion):
    """A target directory without its source record (left half-made) is converted again; a rename
    that fails onto an incomplete target is an error, not silently accepted."""
    _, log = fake_conversion
    monkeypatch.setenv("CHIMED_EVAL_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + b"\2" * 1024)
    target = tmp_path / "cache" / "models" / f"tiny-{models.sha256_file(gguf)[:16]}"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # half-made: no chimed_eval_source.json
    resolved = models.dequantise_gguf(gguf, "tiny")
    assert Path(resolved.path) == target and (target / "chimed_eval_source.json").is_file()
    assert log.read_text().splitlines() == ["converted"]

    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    (tmp / "config.json").write_text("{}")
    other = tmp_path / "incomplete"
    other.mkdir()
    (other / "weights").write_text("x")
    with pytest.raises(OSError):
        models._publish_dir(tmp, other)
