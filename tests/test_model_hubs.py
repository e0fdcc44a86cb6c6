"""Where model weights come from: the Hugging Face hub through transformers (which honours
``$HF_ENDPOINT``; no code of ours builds a hub URL), or ModelScope with ``--model-args
hub=modelscope`` for the presets published there and for ModelScope ids."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from chimed_eval.core.errors import ConfigError
from chimed_eval.models.resolve import MODELS, resolve_model


@pytest.fixture
def fake_modelscope(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, str | None]]:
    """A stand-in ``modelscope`` package whose ``snapshot_download`` writes a model folder."""
    calls: list[tuple[str, str | None]] = []

    def snapshot_download(model_id: str, revision: str | None = None) -> str:
        calls.append((model_id, revision))
        d = tmp_path / "ms" / model_id
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text("{}")
        return str(d)

    monkeypatch.setitem(sys.modules, "modelscope", types.SimpleNamespace(snapshot_download=snapshot_download))
    return calls


def test_presets_published_on_modelscope_resolve_there(fake_modelscope, tmp_path: Path) -> None:
    r = resolve_model("ziya-v2", {"hub": "modelscope"})
    assert fake_modelscope == [("Fengshenbang/Ziya2-13B-Chat", None)]
    assert r.path == str(tmp_path / "ms" / "Fengshenbang/Ziya2-13B-Chat")
    assert r.name == "ziya-v2" and r.chat_format == "ziya" and r.revision == "modelscope:Fengshenbang/Ziya2-13B-Chat@master"
    b = resolve_model("baichuan", {"hub": "modelscope", "revision": "v1.0.0"})
    assert fake_modelscope[-1] == ("baichuan-inc/Baichuan-13B-Chat", "v1.0.0") and b.trust_remote_code
    resolve_model("qwen/Qwen2-0.5B", {"hub": "modelscope"})  # any ModelScope id
    assert fake_modelscope[-1] == ("qwen/Qwen2-0.5B", None)


def test_modelscope_refusals(fake_modelscope, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="no ModelScope copy declared.*baichuan, ziya-v2"):
        resolve_model("chimed-gpt", {"hub": "modelscope"})
    with pytest.raises(ConfigError, match="expected one of hf, modelscope"):
        resolve_model("chimed-gpt", {"hub": "github"})
    monkeypatch.setitem(sys.modules, "modelscope", None)  # not installed
    with pytest.raises(ConfigError, match="pip install modelscope"):
        resolve_model("ziya-v2", {"hub": "modelscope"})
    assert fake_modelscope == []


def test_declared_modelscope_ids() -> None:
    assert {n: MODELS.get(n).modelscope for n in MODELS.names() if MODELS.get(n).modelscope} == {
        "ziya-v2": "Fengshenbang/Ziya2-13B-Chat", "baichuan": "baichuan-inc/Baichuan-13B-Chat"}


def test_the_hf_and_vllm_backends_accept_hub() -> None:
    from chimed_eval.backends import accepted_args, check_backend_args

    for b in ("hf", "vllm"):
        assert "hub" in accepted_args(b)
        check_backend_args(b, {"hub": "modelscope"})


def test_no_hub_url_is_built_by_our_model_code() -> None:
    """Models load by hub id through transformers/huggingface_hub, which read $HF_ENDPOINT; a
    hard-coded huggingface.co URL in the model or backend code would bypass it."""
    root = Path(__file__).resolve().parents[1] / "chimed_eval"
    for folder in ("models", "backends"):
        for f in (root / folder).glob("*.py"):
            assert not re.search(r"https?://(www\.)?huggingface\.co", f.read_text(encoding="utf-8")), f
