"""Capabilities, not names: a backend declares what it can do on its class, is registered with one
line, and nothing outside the registry compares a backend's name (issue 23, item 4)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Sequence

import pytest

from chimed_eval.backends import BACKENDS, accepted_args, backend_capabilities, backends_with
from chimed_eval.backends.base import Backend
from chimed_eval.backends.fake import FakeBackend
from chimed_eval.cli.app import main
from chimed_eval.core.capabilities import Capabilities
from chimed_eval.core.types import ModelInfo, Request, Response
from conftest import write_exam_csv

PACKAGE = Path(__file__).resolve().parents[1] / "chimed_eval"
REGISTRY = PACKAGE / "backends" / "__init__.py"


class LastOptionBackend(Backend):
    """A new backend, defined here: always the last option, by its letter or by its text; it
    reads one option of its own and declares no chat rendering."""

    name = "last-option"
    capabilities = Capabilities(letter_logprobs=True, prompt_logprobs=True)
    accepted_args = frozenset({"margin"})

    def __init__(self, model: str, seed: int = 0, model_args: dict[str, str] | None = None, **_: object) -> None:
        self.model = model
        self.margin = float((model_args or {}).get("margin", 5))

    def model_info(self) -> ModelInfo:
        return ModelInfo(name=f"last-option:{self.model}", path="", revision=None, weights_sha256=None, dtype=None)

    def _last(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for r in requests:
            n = len(r.continuations)
            lps = tuple(0.0 if i == n - 1 else -self.margin for i in range(n))
            out.append(Response(key=r.key, logprobs=lps, greedy=tuple(i == n - 1 for i in range(n))))
        return out

    loglikelihood = next_token = _last

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(key=r.key, text="D") for r in requests]


class ScriptedBackend(FakeBackend):
    """The fake backend under another name: it must behave exactly as the fake one does."""

    name = "scripted"


@pytest.fixture
def registry(monkeypatch):
    """The registry as it is, restored after the test (what a test registers goes away)."""
    monkeypatch.setattr(BACKENDS, "_entries", dict(BACKENDS.entries))
    monkeypatch.setattr(BACKENDS, "_help", dict(BACKENDS._help))
    return BACKENDS


def run(tmp_path: Path, backend: str, model: str, *argv: str, out: str = "out") -> tuple[int, Path]:
    exam = write_exam_csv(tmp_path / "exam.csv", 12, "ABCD")
    o = tmp_path / out
    rc = main(["run", "--no-progress", "--backend", backend, "--model", model, "--tasks", "mcq", "--task-args",
               f"path={exam}", "--output", str(o), *argv])
    return rc, o


def records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "samples" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()]


def test_capabilities_are_read_from_the_class_without_building_a_backend(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a backend was built")

    for name in BACKENDS:
        monkeypatch.setattr(BACKENDS.get(name), "__init__", refuse)
    assert backend_capabilities("hf").vocabulary_moments and not backend_capabilities("vllm").vocabulary_moments
    assert backend_capabilities("openai").chat_messages and not backend_capabilities("openai").prefilled_answers
    assert backend_capabilities("fake").answer_script and not backend_capabilities("fake").cached_by_default
    assert backends_with("local_weights") == ["hf", "vllm"]
    assert backends_with("token_logprobs") == ["fake", "hf", "vllm"]
    assert "tensor_parallel_size" in accepted_args("vllm") and "endpoint" in accepted_args("openai")
    assert accepted_args("no-such-backend") == frozenset()


def test_a_new_backend_is_one_class_and_one_registration_line(registry, tmp_path, capsys):
    registry.add("last-option", LastOptionBackend, "always the last option")  # the one line
    rc, out = run(tmp_path, "last-option", "anything", "--model-args", "margin=3", "--no-cache")
    assert rc == 0, capsys.readouterr().err
    recs = records(out)
    assert len(recs) == 12 and all(r["prediction"] == "D" for r in recs)
    acc = next(m for m in json.loads((out / "results.json").read_text())["tasks"]["mcq"]["metrics"]
               if m["name"] == "acc")
    assert acc["value"] == pytest.approx(100 * 3 / 12)  # gold cycles A, B, C, D
    # what it declares it reads, and nothing else, before anything is written
    rc, _ = run(tmp_path, "last-option", "anything", "--model-args", "temperature=0", out="typo")
    assert rc == 2 and "the last-option backend does not read temperature" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    # what it does not declare is refused by capability, before the model loads
    rc, _ = run(tmp_path, "last-option", "anything", "--apply-chat-template", out="chat")
    assert rc == 2 and "the last-option backend renders no tokenizer chat template" in capsys.readouterr().err


def test_a_request_kind_the_backend_cannot_serve_is_refused_before_it_loads(registry, tmp_path, capsys, monkeypatch):
    registry.add("last-option", LastOptionBackend, "always the last option")
    monkeypatch.setattr(LastOptionBackend, "capabilities", Capabilities(prompt_logprobs=True))

    def refuse(*a, **k):
        raise AssertionError("the backend was built")

    monkeypatch.setattr(LastOptionBackend, "__init__", refuse)
    rc, _ = run(tmp_path, "last-option", "x", "--variant", "paper", "--no-cache")  # letters: next_token requests
    err = capsys.readouterr().err
    assert rc == 2 and "needs letter logprobs (next_token requests), which the last-option backend cannot" in err
    assert "backends that can: fake, hf, openai, vllm" in err


def test_a_renamed_fake_backend_behaves_exactly_as_the_fake_one(registry, tmp_path, capsys, monkeypatch):
    """No code path asks for the name ``fake``: under another name the oracle still gets its
    script, no response is cached by default, an API preset is not refused as on a local backend,
    and chat turns get the ChatML stand-in."""
    import os

    registry.add("scripted", ScriptedBackend, "the fake backend, renamed")
    cache = Path(os.environ["CHIMED_EVAL_CACHE"])
    before = sorted(cache.rglob("*"))
    for model in ("oracle", "random", "fixed:B"):
        rc_a, a = run(tmp_path, "fake", model, "--seed", "7", out=f"fake-{model}")
        rc_b, b = run(tmp_path, "scripted", model, "--seed", "7", out=f"scripted-{model}")
        assert rc_a == rc_b == 0, capsys.readouterr().err
        assert records(a) == records(b)
        ma, mb = (json.loads((o / "results.json").read_text())["tasks"]["mcq"]["metrics"] for o in (a, b))
        assert ma == mb
    assert sorted(cache.rglob("*")) == before  # neither wrote to the default cache
    assert all(r["score"] == 1.0 for r in records(tmp_path / "scripted-oracle"))  # the script reached it
    # an API preset is refused on a backend that loads local weights only
    assert run(tmp_path, "hf", "gpt-4", out="hf-api")[0] == 2
    assert "'gpt-4' is an API model" in capsys.readouterr().err
    run(tmp_path, "scripted", "gpt-4", out="scripted-api")  # the fake modes refuse the name itself
    assert "is an API model" not in capsys.readouterr().err
    from chimed_eval.models.chat import run_chat_setup

    setup = run_chat_setup("scripted", backend_capabilities("scripted"), "Qwen/Qwen2.5-0.5B-Instruct", {})
    assert setup.label == "chatml (scripted backend)" and setup.stop == ("<|im_end|>", "<|im_start|>")


def name_checks(source: str, names: set[str], filename: str = "<src>") -> list[str]:
    """``file:line`` of every comparison with, membership test in, dict key or match case of a
    string literal that is a backend name."""
    found = []

    def literal(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant) and node.value in names:
            return True
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(literal(e) for e in node.elts)

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Compare) and any(literal(x) for x in (node.left, *node.comparators)):
            found.append(f"{filename}:{node.lineno}")
        elif isinstance(node, ast.Dict) and any(k is not None and literal(k) for k in node.keys):
            found.append(f"{filename}:{node.lineno}")
        elif isinstance(node, ast.MatchValue) and literal(node.value):
            found.append(f"{filename}:{node.lineno}")
    return found


def test_the_name_check_finder_finds_name_checks():
    names = {"fake", "hf"}
    assert name_checks('if backend == "fake":\n    pass\n', names) == ["<src>:1"]
    assert name_checks('x = a.backend in ("hf", "vllm")\n', names) == ["<src>:1"]
    assert name_checks('y = {"hf": 1}[b]\n', names) == ["<src>:1"]
    assert name_checks('match b:\n    case "fake":\n        pass\n', names) == ["<src>:2"]
    assert name_checks('backend: str = "hf"\nprint("fake")\nmode == "oracle"\n', names) == []


def test_no_code_compares_a_backend_name_outside_the_registry():
    names = set(BACKENDS.names())
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if path != REGISTRY
             for hit in name_checks(path.read_text(encoding="utf-8"), names, str(path.relative_to(PACKAGE.parent)))]
    assert found == [], "ask the backend's Capabilities, not its name: " + ", ".join(found)
