"""Tasks hold no run state (issue 15, item 1): a task object is the same after a run prepared,
built and scored with it, run options reach it only as a TaskRunOptions, and the fake oracle is
told the answers by a script instead of reading them from the requests."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from chimed_eval.backends.fake import FakeBackend, script_key
from chimed_eval.models.chat import chat_setup
from chimed_eval.backends import backend_capabilities
from chimed_eval.engine.runner import RunSettings, oracle_script, prepare
from chimed_eval.task.base import Task
from chimed_eval.task.options import TaskRunOptions
from chimed_eval.core.types import Message, Request, Response
from conftest import write_exam_csv
from chimed_eval.tasks.mcq import make_mcq_task, spec_from_args
from chimed_eval.tasks.ner import make_ner_task_from_args

BIO = "胃 B-疾病\n癌 I-疾病\n服 O\n药 B-药物\n\n头 O\n痛 B-疾病\n"


def _state(task: Task) -> str:
    return repr(sorted((k, repr(v)) for k, v in vars(task).items()))


def _ner(tmp_path: Path) -> Task:
    (tmp_path / "test.bio").write_text(BIO, encoding="utf-8")
    (tmp_path / "shots.bio").write_text(BIO.replace("头", "额").replace("胃", "肺"), encoding="utf-8")  # shots are not test records
    return make_ner_task_from_args({"path": str(tmp_path / "test.bio"), "fewshot": str(tmp_path / "shots.bio")})


def _generation_task(tmp_path: Path) -> Task:
    pytest.importorskip("jieba")
    from chimed_eval.tasks.generation import GenerationTask
    from chimed_eval.task.options import TaskData
    from chimed_eval.core.types import Sample

    data = TaskData(samples=[Sample("q1", "头痛怎么办", target="多休息。"),
                             Sample("d1", "(paper)", target="做过胃镜吗", metadata={"turns": [["patient", "胃胀\n"]]})])
    return GenerationTask("qa", lambda _d: data)


@pytest.mark.parametrize("kind", ["mcq", "ner", "generation"])
def test_a_task_is_unchanged_by_prepare_build_and_score(kind, tmp_path):
    if kind == "mcq":
        task = make_mcq_task(spec_from_args({"path": str(write_exam_csv(tmp_path / "exam.csv", 6))}))
        settings = RunSettings(model="oracle", backend="fake", data_dir=str(tmp_path))
    elif kind == "ner":
        task = _ner(tmp_path)
        settings = RunSettings(model="oracle", backend="fake", data_dir=str(tmp_path), max_new_tokens=7, shots=1)
    else:
        task = _generation_task(tmp_path)
        settings = RunSettings(model="oracle", backend="fake", variant="chat", data_dir=str(tmp_path),
                               decoding="paper-sampling", max_new_tokens=9)
    before = _state(task)
    p = prepare(task, tmp_path, settings)
    backend = FakeBackend("oracle", script=oracle_script([p]))
    for s, r in zip(p.samples, p.requests):
        [resp] = backend.run(r.kind, [r])
        scored = task.score(p.data, s, r, resp, p.options)
        task.rescore(json.loads(json.dumps(dataclasses.asdict(scored))), p.variant)
    task.aggregate([], p.variant, 1)
    assert _state(task) == before
    # and two preparations with other options give other requests from the same object
    other = prepare(task, tmp_path, dataclasses.replace(settings, max_new_tokens=3))
    assert [r.generation for r in other.requests] != [r.generation for r in p.requests] or kind == "mcq"


def test_run_options_carry_the_generation_overrides_and_the_chat_setup(tmp_path):
    task = _generation_task(tmp_path)
    p = prepare(task, tmp_path, RunSettings(model="oracle", backend="fake", variant="chat", data_dir=str(tmp_path),
                                            decoding="paper-sampling", max_new_tokens=9))
    assert (p.options.variant, p.options.decoding, p.options.max_new_tokens) == ("chat", "paper-sampling", 9)
    assert p.options.chat is not None and "chatml" in p.options.chat.label
    assert p.generation is not None and p.generation["chat_template"] == p.options.chat.label
    assert all(r.generation.max_new_tokens == 9 and r.generation.top_p == 0.85 for r in p.requests)
    with pytest.raises(Exception, match="decoding"):
        task.check_options(TaskRunOptions("paper", decoding="beam"))


def test_ner_prompt_facts_come_from_the_request_plan_not_from_the_task(tmp_path):
    task = _ner(tmp_path)
    p = prepare(task, tmp_path, RunSettings(model="oracle", backend="fake", data_dir=str(tmp_path), shots=1,
                                            max_new_tokens=5))
    s, r = p.samples[0], p.requests[0]
    scored = task.score(p.data, s, r, Response(r.key, text="胃癌 疾病"), p.options)
    assert scored.extra["shots_used"] == 1 and scored.extra["max_new_tokens"] == r.generation.max_new_tokens == 5
    assert scored.extra["max_new_tokens_capped"] is True and scored.extra["types"] == ["疾病", "药物"]
    assert p.generation["records_capped"] == len(p.samples) and p.generation["max_new_tokens_cap"] == 5


def test_requests_carry_no_gold_and_the_oracle_reads_its_script(tmp_path):
    task = make_mcq_task(spec_from_args({"path": str(write_exam_csv(tmp_path / "exam.csv", 4))}))
    p = prepare(task, tmp_path, RunSettings(model="oracle", backend="fake", data_dir=str(tmp_path)))
    assert "oracle" not in {f.name for f in dataclasses.fields(Request)}
    script = oracle_script([p])
    assert script == {script_key(r): s.target for s, r in zip(p.samples, p.requests)}
    answers = FakeBackend("oracle", script=script).run("next_token", p.requests)
    assert [max(range(len(a.logprobs)), key=a.logprobs.__getitem__) for a in answers] == [s.target for s in p.samples]
    # without a script the oracle knows nothing (option A), and its cache identity names the script
    assert all(a.logprobs[0] == 0.0 for a in FakeBackend("oracle").run("next_token", p.requests))
    assert FakeBackend("oracle", script=script).cache_identity() != FakeBackend("oracle").cache_identity()


def test_chat_api_requests_carry_typed_messages_and_the_old_stored_context(tmp_path):
    task = _generation_task(tmp_path)
    opts = TaskRunOptions("chat", chat=chat_setup("openai", backend_capabilities("openai"), "gpt-4", {}))
    data = task.load(tmp_path)
    qa, dialogue = task.build_requests(data, data.samples, opts)
    assert qa.messages == (Message("user", "头痛怎么办"),)
    assert dialogue.messages == (Message("user", "胃胀"),)
    assert qa.context == '<<chimed-eval:openai-messages>>[{"role": "user", "content": "头痛怎么办"}]'
    fake_chat = chat_setup("fake", backend_capabilities("fake"), "oracle", {})
    local = task.build_requests(data, data.samples, TaskRunOptions("chat", chat=fake_chat))
    assert all(not r.messages for r in local)


def test_options_are_frozen():
    opts = TaskRunOptions("paper", 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.shots = 0  # type: ignore[misc]
    assert copy.deepcopy(opts) == opts
