"""The response-cache key holds every input that can change a response, and no secret.

Property tests: starting from one request and one backend setting, change one thing at a time and
the key must change (or, for settings that cannot change an answer, must not). The field lists
are checked against the dataclasses, so a new Request/GenerationConfig/ModelInfo field fails here
until the key is shown to cover it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from chimed_eval.backends import open_backend
from chimed_eval.backends.fake import FakeBackend
from chimed_eval.backends.cache import (SECRET_MODEL_ARGS, VOLATILE_MODEL_ARGS, CachingBackend, cache_extra_identity,
                               cache_key)
from chimed_eval.cli.app import main
from chimed_eval.core.types import GenerationConfig, Message, ModelInfo, Request
from conftest import write_exam_csv

BASE_GEN = GenerationConfig(max_new_tokens=16, stop=("\n\n", "问题："), temperature=0.7, top_p=0.9, seed=11)
BASE = Request("generate", "exam-2", "示例\n\n问题：头痛？", continuations=("A", "B"), prefix="示例\n\n",
               add_special_tokens=False, generation=BASE_GEN)

#: one changed value per Request field
REQUEST_CHANGES: dict[str, list[Any]] = {
    "kind": ["loglikelihood", "next_token"],
    "key": ["exam-3"],
    "context": ["示例\n\n问题：头疼？", "示例\n\n问题：头痛？ "],
    "continuations": [("A", "C"), ("B", "A"), ("A", "B", "C"), (" A", "B")],
    "prefix": ["", "示例"],
    "add_special_tokens": [True, None],
    "generation": [None],
    "messages": [(Message("user", "头痛？"),)],
}
#: one changed value per GenerationConfig field
GENERATION_CHANGES: dict[str, list[Any]] = {
    "max_new_tokens": [17],
    "stop": [("\n\n",), ("问题：", "\n\n"), ("\n\n", "问题：", "答案"), ()],
    "temperature": [0.0, 1.0],
    "top_p": [0.95],
    "seed": [12, None],
    "top_k": [5, 40],
}


def test_the_change_lists_cover_every_field():
    assert set(REQUEST_CHANGES) == {f.name for f in dataclasses.fields(Request)}
    assert set(GENERATION_CHANGES) == {f.name for f in dataclasses.fields(GenerationConfig)}


def _request_variants() -> list[tuple[str, Request]]:
    out = [(f"{k}={v!r}", dataclasses.replace(BASE, **{k: v})) for k, vs in REQUEST_CHANGES.items() for v in vs]
    out += [(f"generation.{k}={v!r}", dataclasses.replace(BASE, generation=dataclasses.replace(BASE_GEN, **{k: v})))
            for k, vs in GENERATION_CHANGES.items() for v in vs]
    return out


@pytest.mark.parametrize("label,request_", _request_variants(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_request_field_changes_the_key(label, request_):
    ident = {"backend": "fake", "model": {"name": "m"}}
    assert cache_key(ident, request_) != cache_key(ident, BASE), label
    # and the key is a function of the values only
    assert cache_key(ident, dataclasses.replace(request_)) == cache_key(ident, request_)


class _Info(FakeBackend):
    """The fake backend under another name and with a given model identity."""

    def __init__(self, info: ModelInfo, name: str = "fake", **kw: Any) -> None:
        super().__init__(model="random", **kw)
        self.info, self.name = info, name

    def model_info(self) -> ModelInfo:
        return self.info


BASE_INFO = ModelInfo(name="m", path="/models/m", revision="abc", weights_sha256="0" * 64, dtype="float32")
INFO_CHANGES: dict[str, Any] = {"name": "m2", "path": "/models/m2", "revision": "abd", "weights_sha256": "1" * 64,
                                "dtype": "bfloat16"}


def test_every_model_identity_field_and_the_backend_name_change_the_key(tmp_path):
    assert set(INFO_CHANGES) == {f.name for f in dataclasses.fields(ModelInfo)}

    def key(inner: FakeBackend) -> str:
        return CachingBackend(inner, tmp_path / "c").key(BASE)

    base = key(_Info(BASE_INFO))
    for field, value in INFO_CHANGES.items():
        assert key(_Info(dataclasses.replace(BASE_INFO, **{field: value}))) != base, field
    assert key(_Info(BASE_INFO, name="hf")) != base


#: every command-line setting that reaches open_backend, with the value it is changed to
SETTINGS: dict[str, Any] = {"model": "fixed:B", "seed": 2, "dtype": "bfloat16", "device": "cuda:1",
                            "model_args": {"temperature": "0.5"}}
BASE_SETTINGS: dict[str, Any] = {"model": "random", "seed": 1234, "dtype": None, "device": None,
                                 "model_args": {"temperature": "0.2"}}


def _key(tmp_path: Path, **settings: Any) -> tuple[str, dict]:
    s = {**BASE_SETTINGS, **settings}
    b = open_backend("fake", s.pop("model"), cache=tmp_path / "c", batch_size=s.pop("batch_size", 8), **s)
    try:
        return b.key(BASE), b.identity()
    finally:
        b.close()


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_every_run_setting_changes_the_key(tmp_path, setting):
    assert _key(tmp_path, **{setting: SETTINGS[setting]})[0] != _key(tmp_path)[0]


def test_only_volatile_settings_leave_the_key_alone(tmp_path):
    base = _key(tmp_path)[0]
    assert _key(tmp_path, batch_size=1)[0] == base
    for arg in ("delay", "concurrency", "timeout", "batch"):
        assert arg in VOLATILE_MODEL_ARGS
        assert _key(tmp_path, model_args={**BASE_SETTINGS["model_args"], arg: "3"})[0] == base, arg
    # any other model arg is result-changing
    assert _key(tmp_path, model_args={**BASE_SETTINGS["model_args"], "rope_scaling": "2"})[0] != base


@pytest.mark.parametrize("secret", sorted(SECRET_MODEL_ARGS))
def test_secrets_never_enter_the_key(tmp_path, secret):
    value = "hf_SECRETsecret123456"
    key, ident = _key(tmp_path, model_args={**BASE_SETTINGS["model_args"], secret: value})
    assert value not in json.dumps(ident) and secret not in ident["run"]["model_args"]
    assert key == _key(tmp_path)[0]  # a credential changes no answer
    assert value not in json.dumps(cache_extra_identity({secret: value}, None))


def _predictions(out: Path) -> list:
    return [json.loads(line)["prediction"] for line in (out / "samples" / "mcq.jsonl").read_text().splitlines()]


def test_a_run_with_another_seed_does_not_reuse_cached_answers(tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 40)
    argv = ["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "mcq", "--task-args",
            f"path={exam}"]
    cache = ["--cache", str(tmp_path / "cache")]
    assert main([*argv, "--seed", "1234", "--output", str(tmp_path / "s1234"), *cache]) == 0
    assert main([*argv, "--seed", "2", "--output", str(tmp_path / "s2"), *cache]) == 0
    assert main([*argv, "--seed", "2", "--output", str(tmp_path / "s2-fresh"), "--no-cache"]) == 0
    assert main([*argv, "--seed", "1234", "--output", str(tmp_path / "s1234-again"), *cache]) == 0
    assert _predictions(tmp_path / "s2") == _predictions(tmp_path / "s2-fresh")  # seed 2's own answers
    assert _predictions(tmp_path / "s2") != _predictions(tmp_path / "s1234")
    assert _predictions(tmp_path / "s1234-again") == _predictions(tmp_path / "s1234")
