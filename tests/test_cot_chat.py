"""The chain-of-thought exam variant, reasoning traces and chat rendering (issue 16 items 3, 4):
prompts, the cascade's rule per record, trace stripping, the figures, and end to end on the fake
backend (rendered contexts, settings recorded, resume refusing a changed flag)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.models.chat import ChatSetup, chatml_renderer, mcq_chat_messages
from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError
from chimed_eval.task.mcq_prompt import chat_or_cot_prompt, mc_budget
from chimed_eval.prompts.variants import (CHAT_FORMATS, Shot, mcq_parts, render_cot, render_generate, render_lmeval,
                                 render_paper)
from chimed_eval.extract.reasoning import judge_generation, parse_think_markers, reasoning_figures, strip_reasoning
from chimed_eval.task.options import TaskRunOptions
from chimed_eval.core.types import Sample, SampleScore
from conftest import write_exam_csv

SHOTS = [Shot("问一", ("甲", "乙", "丙", "丁"), 1), Shot("问二", ("子", "丑", "寅", "卯"), 3)]
Q, OPTS = "问三", ("肝", "肾", "心", "肺")


# --- prompts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant,plain,head,tail", [
    ("paper", render_paper("医学", SHOTS, Q, OPTS).context, "<human>:", "\n<bot>:"),
    ("lm-eval", render_lmeval("cmmlu", "医学", SHOTS, Q, OPTS).context, "", ""),
    ("generate", render_generate("医学", SHOTS, Q, OPTS).context, "", ""),
    ("cot", render_cot("医学", SHOTS, Q, OPTS).context, "", "解析："),
])
def test_parts_join_to_the_plain_prompt_less_its_markers(variant, plain, head, tail):
    parts = mcq_parts(variant, "cmmlu", "医学", SHOTS, Q, OPTS)
    assert head + parts.single_turn() + tail == plain
    assert len(parts.shots) == 2


def test_cot_prompt_asks_for_reasoning_then_the_answer_line():
    single = render_cot("医学", SHOTS, Q, OPTS)
    assert "请先逐步推理" in single.context and "“答案：X”" in single.context and "单项选择题" in single.context
    assert "答案：B\n\n问二" in single.context and single.context.endswith("D. 肺\n解析：")
    assert single.context.startswith(single.prefix) and single.continuations == ()
    multi = render_cot("医学", [], Q, OPTS, multi=True)
    assert "多项选择题" in multi.context and "一个或多个选项字母" in multi.context


def test_system_prompt_in_documented_formats():
    vicuna = CHAT_FORMATS["medicalgpt-vicuna"]
    out = vicuna.render([{"role": "system", "content": "你是医生。"}, {"role": "user", "content": "头痛"}])
    assert out == "你是医生。USER: 头痛 ASSISTANT: "
    with pytest.raises(ConfigError, match="documents no system prompt"):
        CHAT_FORMATS["ziya"].render([{"role": "system", "content": "x"}, {"role": "user", "content": "头痛"}])


@pytest.mark.parametrize("system,multiturn,expected", [
    (None, False, [("user", "I\nQ1答案： B\n\nQ2答案： D\n\nQ3答案：")]),
    ("S", False, [("system", "S"), ("user", "I\nQ1答案： B\n\nQ2答案： D\n\nQ3答案：")]),
    ("S", True, [("system", "S"), ("user", "I\nQ1答案："), ("assistant", "B"), ("user", "Q2答案："),
                 ("assistant", "D"), ("user", "Q3答案：")]),
])
def test_chat_messages_single_and_multiturn(system, multiturn, expected):
    from chimed_eval.prompts.variants import MCQParts

    parts = MCQParts("I\n", (("Q1答案：", "B"), ("Q2答案：", "D")), "Q3答案：", " ", "\n\n")
    msgs = mcq_chat_messages(parts, system, multiturn)
    assert [(m["role"], m["content"]) for m in msgs] == expected


def _sample(target=1):
    return Sample(id="x", input=Q, choices=OPTS, target=target)


def test_chat_prompt_for_letter_scoring_and_api_refusal():
    opts = TaskRunOptions("lm-eval", chat=ChatSetup(chatml_renderer, "chatml"))
    p, sent = chat_or_cot_prompt("cmmlu", "医学", [], _sample(), opts)
    assert p.context.startswith("<|im_start|>user\n以下是关于医学的单项选择题") and p.context.endswith(
        "D. 肺\n答案：<|im_end|>\n<|im_start|>assistant\n")
    assert p.continuations == ("A", "B", "C", "D") and sent == ()
    api = ChatSetup(lambda m: "ctx", "api", messages=True)
    with pytest.raises(ConfigError, match="chat API"):
        chat_or_cot_prompt("cmmlu", "医学", [], _sample(), TaskRunOptions("paper", chat=api))
    p, sent = chat_or_cot_prompt("cmmlu", "医学", [], _sample(), TaskRunOptions("cot", chat=api, system_prompt="S"))
    assert [m.role for m in sent] == ["system", "user"] and p.continuations == ()


@pytest.mark.parametrize("variant,override,chat,budget,stop", [
    ("generate", None, None, 16, ("\n\n",)),
    ("cot", None, None, 512, ()),
    ("cot", 64, None, 64, ()),
    ("cot", None, ChatSetup(chatml_renderer, "c", ("<|im_end|>",)), 512, ("<|im_end|>",)),
    ("generate", 200, ChatSetup(chatml_renderer, "c", ("<|im_end|>",)), 200, ("\n\n", "<|im_end|>")),
])
def test_generation_budgets(variant, override, chat, budget, stop):
    g = mc_budget(TaskRunOptions(variant, max_new_tokens=override, chat=chat))
    assert (g.max_new_tokens, g.stop) == (budget, stop)


# --- reasoning traces ----------------------------------------------------------------------------

DEFAULT = ("<think>", "</think>")


@pytest.mark.parametrize("text,markers,answer,extra", [
    ("答案：B", DEFAULT, "答案：B", {}),                      # no marker: unchanged, no keys
    ("  答案：B \n", DEFAULT, "  答案：B \n", {}),            # byte for byte, whitespace kept
    ("<think>A不对</think>\n答案：B", DEFAULT, "答案：B", {"reasoning_trace": "A不对", "trace_truncated": False}),
    ("A不对</think>答案：C", DEFAULT, "答案：C", {"reasoning_trace": "A不对", "trace_truncated": False}),
    ("<think>想了很久，还没想完", DEFAULT, "", {"reasoning_trace": "想了很久，还没想完", "trace_truncated": True}),
    ("<r>x</r>答案：D", ("<r>", "</r>"), "答案：D", {"reasoning_trace": "x", "trace_truncated": False}),
    ("<think>x</think>答案：D", None, "<think>x</think>答案：D", {}),  # stripping off
    ("还在想", ("", "</think>"), "", {"reasoning_trace": "还在想", "trace_truncated": True}),  # prompt opened it
])
def test_strip_reasoning(text, markers, answer, extra):
    assert strip_reasoning(text, markers) == (answer, extra)


@pytest.mark.parametrize("text,expected", [
    (None, ("<think>", "</think>")), ("none", None), ("<r>,</r>", ("<r>", "</r>")), (",</think>", ("", "</think>")),
])
def test_parse_think_markers(text, expected):
    assert parse_think_markers(text) == expected


@pytest.mark.parametrize("bad", ["<think>", "<think>,", "a,b,c"])
def test_parse_think_markers_refuses(bad):
    with pytest.raises(ConfigError, match="think-markers"):
        parse_think_markers(bad)


# --- cot judging and figures ---------------------------------------------------------------------


def _rec(gen: str, gold: str = "B", extra: dict | None = None) -> SampleScore:
    return SampleScore(id="i", subject=None, prompt="p", prompt_hash="h", gold=gold, prediction=None, score=0.0,
                       generation=gen, extra={"n_choices": 4, "options": ["肝脏", "肾脏", "心脏", "肺脏"], **(extra or {})})


@pytest.mark.parametrize("gen,gold,pred,rule,score", [
    ("首先排除A。肾脏……\n答案：B", "B", "B", "final", 1.0),
    ("Let's think. 综上，答案为C", "B", "C", "final", 0.0),
    ("A项错误，C项错误，B正确", "B", "B", "last_letter", 1.0),
    ("病变部位应在肾脏", "B", "B", "option_text", 1.0),
    ("答案：肺脏", "B", "D", "final_text", 0.0),
    ("我不知道", "B", None, "none", 0.0),
    ("答案：A、B和D", "ABD", "ABD", "final", 1.0),       # several answers: every stated letter
    ("答案：AB", "ABD", "AB", "final", 0.0),              # exact set only
])
def test_judge_generation_records_the_rule(gen, gold, pred, rule, score):
    s = judge_generation(_rec(gen, gold), 4, "cot")
    assert (s.prediction, s.extra["extraction_rule"], s.score, s.extraction_failed) == (pred, rule, score, pred is None)


def test_reasoning_figures_count_rules_and_truncated_traces():
    recs = [_rec("答案：B", extra={"extraction_rule": "final"}), _rec("x", extra={"extraction_rule": "none",
            "reasoning_trace": "t", "trace_truncated": True}), _rec("B", extra={"extraction_rule": "last_letter"}),
            _rec("答案：C", extra={"extraction_rule": "final"})]
    got = {m.name: (m.value, m.n) for m in reasoning_figures(recs, "cot")}
    assert got == {"extraction_rule_final_count": (2.0, 4), "extraction_rule_final_text_count": (0.0, 4),
                   "extraction_rule_last_letter_count": (1.0, 4), "extraction_rule_option_text_count": (0.0, 4),
                   "extraction_rule_several_count": (0.0, 4), "extraction_rule_none_count": (1.0, 4),
                   "truncated_trace_rate": (25.0, 4),
                   "truncated_trace_count": (1.0, 4)}
    assert reasoning_figures([_rec("答案：B")], "generate") == []  # no rule, no trace: nothing added


# --- end to end on the fake backend --------------------------------------------------------------


def run_cli(*argv: str) -> int:
    return main(["run", "--no-progress", "--backend", "fake", *argv])


def _records(out: Path, task: str = "mcq") -> list[dict]:
    return [json.loads(x) for x in (out / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()]


def _metrics(out: Path, task: str = "mcq") -> dict[str, float]:
    res = json.loads((out / "results.json").read_text())
    return {m["name"]: m["value"] for m in res["tasks"][task]["metrics"]}


def test_cot_oracle_end_to_end_with_rule_counts_and_report(tmp_path):
    f = write_exam_csv(tmp_path / "exam.csv", 8)
    out = tmp_path / "o"
    assert run_cli("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f}", "--variant", "cot",
                   "--output", str(out)) == 0
    m = _metrics(out)
    assert m["acc"] == 100.0 and m["extraction_rule_final_count"] == 8 and m["extraction_rule_none_count"] == 0
    assert m["extraction_failure_rate"] == 0.0
    res = json.loads((out / "results.json").read_text())
    gen = res["settings"]["generation"]["mcq"]
    assert (gen["max_new_tokens"], gen["prompt_version"], gen["think_markers"]) == (512, "cot@1", ["<think>", "</think>"])
    rec = _records(out)[0]
    assert rec["extra"]["extraction_rule"] == "final" and rec["extra"]["options"] == ["选项甲0", "选项乙0", "选项丙0", "选项丁0"]
    assert main(["score", str(out)]) == 0 and _metrics(out)["extraction_rule_final_count"] == 8
    from chimed_eval.reports.html import render_html

    html = render_html(out)
    assert "<table class='extraction-rules'>" in html and "<td>final</td><td class='num'>8</td>" in html


def test_think_traces_are_stripped_kept_and_counted(tmp_path):
    f = write_exam_csv(tmp_path / "exam.csv", 4, "C")
    out = tmp_path / "o"
    run_cli("--model", "fixed:<think>A不对，B也不对</think>答案：C", "--tasks", "mcq", "--task-args", f"path={f}",
            "--variant", "cot", "--output", str(out))
    rec = _records(out)[0]
    assert rec["generation"] == "答案：C" and rec["extra"]["reasoning_trace"] == "A不对，B也不对"
    assert rec["extra"]["trace_truncated"] is False and rec["prediction"] == "C"
    m = _metrics(out)
    assert m["acc"] == 100.0 and m["truncated_trace_count"] == 0
    out2 = tmp_path / "o2"
    run_cli("--model", "fixed:<think>A不对，B", "--tasks", "mcq", "--task-args", f"path={f}", "--variant", "generate",
            "--max-new-tokens", "64", "--output", str(out2))
    m2 = _metrics(out2)
    assert (m2["acc"], m2["truncated_trace_rate"], m2["truncated_trace_count"], m2["extraction_failure_rate"]) == (
        0.0, 100.0, 4, 100.0)
    assert json.loads((out2 / "results.json").read_text())["settings"]["generation"]["mcq"]["max_new_tokens"] == 64


def test_records_without_markers_are_unchanged_by_think_stripping(tmp_path):
    f = write_exam_csv(tmp_path / "exam.csv", 5)
    a, b = tmp_path / "a", tmp_path / "b"
    for out, extra in ((a, ()), (b, ("--think-markers", "none"))):
        run_cli("--model", "fixed:答案：B", "--tasks", "mcq", "--task-args", f"path={f}", "--variant", "generate",
                "--output", str(out), *extra)
    assert (a / "samples" / "mcq.jsonl").read_bytes() == (b / "samples" / "mcq.jsonl").read_bytes()
    res = json.loads((a / "results.json").read_text())
    assert "think_markers" not in res["settings"] and "generation" not in res["settings"]
    assert set(_records(a)[0]["extra"]) == {"n_choices", "extraction_rule"}  # no trace keys; the reader's rule


def test_apply_chat_template_renders_records_and_pins_the_flags(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 6)
    dev = write_exam_csv(tmp_path / "dev.csv", 2, "BA", stem="例")  # shots are not test items
    out = tmp_path / "o"
    argv = ("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f},fewshot={dev}", "--variant", "lm-eval",
            "--shots", "2",
            "--apply-chat-template", "--fewshot-as-multiturn", "--system-prompt", "你是医生。", "--output", str(out))
    assert run_cli(*argv) == 0
    rec = _records(out)[0]
    assert rec["prompt"].startswith("<|im_start|>system\n你是医生。<|im_end|>\n<|im_start|>user\n以下是关于医学的单项选择题")
    assert "<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\n第0题" in rec["prompt"]
    assert rec["prompt"].endswith("答案：<|im_end|>\n<|im_start|>assistant\n") and rec["score"] == 1.0
    res = json.loads((out / "results.json").read_text())
    s = res["settings"]
    assert (s["apply_chat_template"], s["fewshot_as_multiturn"], s["system_prompt"]) == (True, True, "你是医生。")
    assert s["generation"]["mcq"]["chat_template"] == "chatml (fake backend)"
    run = json.loads((out / "run.json").read_text())["settings"]
    assert run["apply_chat_template"] is True and run["system_prompt"] == "你是医生。"
    capsys.readouterr()
    changed = [a if a != "你是医生。" else "你是护士。" for a in argv]
    assert run_cli(*changed) == 2 and "system_prompt" in capsys.readouterr().err
    assert run_cli(*[a for a in argv if a != "--fewshot-as-multiturn"]) == 2
    assert "fewshot_as_multiturn" in capsys.readouterr().err


def test_chat_prompt_hash_differs_from_the_plain_one(tmp_path):
    f = write_exam_csv(tmp_path / "exam.csv", 3)
    plain, chat = tmp_path / "p", tmp_path / "c"
    run_cli("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f}", "--output", str(plain))
    run_cli("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f}", "--apply-chat-template", "--output", str(chat))
    a, b = _records(plain)[0], _records(chat)[0]
    assert a["prompt_hash"] != b["prompt_hash"] and a["prompt"].removeprefix("<human>:").removesuffix("\n<bot>:") in b["prompt"]
    assert "apply_chat_template" not in json.loads((plain / "results.json").read_text())["settings"]


def test_chat_flags_are_refused_where_they_mean_nothing(tmp_path, capsys):
    f = write_exam_csv(tmp_path / "exam.csv", 3)
    assert run_cli("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f}", "--system-prompt", "S",
                   "--output", str(tmp_path / "o")) == 2
    assert "add --apply-chat-template" in capsys.readouterr().err
    assert run_cli("--model", "oracle", "--tasks", "mcq", "--task-args", f"path={f}", "--think-markers", "<x>",
                   "--output", str(tmp_path / "o2")) == 2
    assert "think-markers" in capsys.readouterr().err


def test_generation_task_chat_template_system_prompt_and_think(tmp_path):
    pytest.importorskip("jieba")
    from chimed_eval.tasks.generation import GenerationTask
    from chimed_eval.engine.runner import RunSettings, run_options
    from chimed_eval.task.options import TaskData
    from chimed_eval.core.types import Response

    task = GenerationTask("qa", lambda d: TaskData([]))
    with pytest.raises(ConfigError, match="chat variant"):
        run_options(task, RunSettings(model="oracle", backend="fake", variant="paper", apply_chat_template=True))
    opts = run_options(task, RunSettings(model="oracle", backend="fake", apply_chat_template=True, system_prompt="S"))
    assert opts.variant == "chat" and opts.chat is not None
    s = Sample(id="q1", input="头痛怎么办", target="多休息")
    data = TaskData([s])
    req = task.build_requests(data, [s], opts)[0]
    assert req.context == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n头痛怎么办<|im_end|>\n<|im_start|>assistant\n"
    rec = task.score(data, s, req, Response("q1", text="<think>先问病史</think>多休息"), opts)
    assert rec.generation == "多休息" and rec.extra["reasoning_trace"] == "先问病史" and rec.score == 1.0
    plain = task.score(data, s, req, Response("q1", text="多休息"), opts)
    assert "reasoning_trace" not in plain.extra and "trace_truncated" not in plain.extra


def test_letter_tasks_without_chat_rendering_refuse_the_flag():
    from chimed_eval.engine.runner import RunSettings, run_options

    class NoChat:  # like the NER and scale tasks: variants of their own, no chat rendering
        name, variants = "ner-x", ("paper", "json")

        def check_variant(self, v):
            return v or "paper"

        default_shots = 0

    with pytest.raises(ConfigError, match="no chat rendering"):
        run_options(NoChat(), RunSettings(model="oracle", backend="fake", apply_chat_template=True))  # type: ignore[arg-type]


# --- the real code path: a tiny random model whose tokenizer carries a chat template ----------

TINY_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.mark.slow
def test_tiny_model_tokenizer_template_letters_and_cot(tiny_model, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    model = tmp_path / "tiny-chat"
    shutil.copytree(tiny_model, model)
    tok = AutoTokenizer.from_pretrained(model)
    tok.chat_template = TINY_TEMPLATE
    tok.save_pretrained(model)
    f = write_exam_csv(tmp_path / "exam.csv", 3)
    for variant in ("paper", "cot"):
        out = tmp_path / variant
        assert main(["run", "--no-progress", "--backend", "hf", "--device", "cpu", "--model", str(model), "--tasks", "mcq",
                     "--task-args", f"path={f}", "--variant", variant, "--apply-chat-template", "--system-prompt", "S",
                     "--max-new-tokens", "8", "--output", str(out)]) == 0
        rec = _records(out)[0]
        assert rec["prompt"].startswith("<|system|>S\n<|user|>以下是关于医学的") and rec["prompt"].endswith("<|assistant|>")
        res = json.loads((out / "results.json").read_text())
        assert "tokenizer chat template sha256:" in res["settings"]["generation"]["mcq"]["chat_template"]
        if variant == "paper":
            assert len(rec["logprobs"]) == 4
        else:
            assert rec["extra"]["extraction_rule"] in ("final", "final_text", "last_letter", "option_text", "several",
                                                       "none")
            m = _metrics(out)
            assert sum(v for k, v in m.items() if k.startswith("extraction_rule_")) == 3
            assert (m["extraction_rule_none_count"] + m["extraction_rule_several_count"]
                    == res["tasks"]["mcq"]["extraction_failures"])
