"""Rendered prompts, character for character, against the published templates."""


from chimed_eval.prompts.variants import Shot, render_generate, render_lmeval, render_paper
from chimed_eval.task.multiple_choice import MCQTask
from chimed_eval.task.options import TaskData
from chimed_eval.core.types import Sample

SHOT = Shot("女性生殖腺是", ("卵巢", "前庭大腺", "前庭球", "乳腺"), 0)
Q, CH = "直接和语言活动有关的中枢", ("额中回后分", "顶上小叶缘上回", "额下回后分", "角回")


def test_paper_template_exact():
    # PAPER.md: process_ceval_cmmlu_data.py; note the blank line before 答案： only in the test item.
    p = render_paper("解剖学", [SHOT], Q, CH)
    expected = (
        "<human>:以下是关于解剖学的选择题，请选择正确的答案\n"
        "问题：女性生殖腺是？\nA.卵巢\nB.前庭大腺\nC.前庭球\nD.乳腺\n答案：A.卵巢\n"
        "问题：直接和语言活动有关的中枢？\nA.额中回后分\nB.顶上小叶缘上回\nC.额下回后分\nD.角回\n\n答案：\n<bot>:"
    )
    assert p.context == expected
    assert p.continuations == ("A", "B", "C", "D")
    assert p.context.startswith(p.prefix) and p.prefix.endswith("答案：A.卵巢\n")


def test_lmeval_cmmlu_template_exact():
    # lm-evaluation-harness 0.4.13 tasks/cmmlu: description + doc_to_text, target_delimiter " ",
    # fewshot_delimiter "\n\n".
    p = render_lmeval("cmmlu", "解剖学", [SHOT], Q + " ", CH)
    expected = (
        "以下是关于解剖学的单项选择题，请直接给出正确答案的选项。\n\n"
        "女性生殖腺是\nA. 卵巢\nB. 前庭大腺\nC. 前庭球\nD. 乳腺\n答案： A\n\n"
        "直接和语言活动有关的中枢\nA. 额中回后分\nB. 顶上小叶缘上回\nC. 额下回后分\nD. 角回\n答案："
    )
    assert p.context == expected
    assert p.continuations == (" A", " B", " C", " D")


def test_lmeval_ceval_description():
    p = render_lmeval("ceval", "临床医学", [], Q, CH)
    assert p.context.startswith("以下是中国关于临床医学的单项选择题，请选出其中的正确答案。\n\n直接和")


def test_variants_never_render_the_same_prompt():
    data = TaskData(samples=[Sample("1", Q, CH, 2, "anatomy")], fewshot={"anatomy": [Sample("d", SHOT.question, SHOT.choices, 0, "anatomy")]},
                    subject_names={"anatomy": "解剖学"})
    task = MCQTask("t", lambda _: data)
    for shots in (0, 1):
        rendered = {v: task.render(data, data.samples[0], v, shots).context for v in task.variants}
        assert len(set(rendered.values())) == len(rendered)


def test_generate_prompt_lists_letters_for_five_options():
    p = render_generate("医学", [], "问题", ("a", "b", "c", "d", "e"))
    assert "（A/B/C/D/E）" in p.context and p.context.endswith("E. e\n答案：")


def test_five_shots_use_the_first_five_dev_items():
    dev = [Sample(f"d{i}", f"题{i}", ("x", "y"), i % 2, "s") for i in range(7)]
    data = TaskData(samples=[Sample("1", "问", ("x", "y"), 0, "s")], fewshot={"s": dev}, subject_names={"s": "某科"})
    task = MCQTask("t", lambda _: data)
    ctx = task.render(data, data.samples[0], "paper", 5).context
    assert all(f"问题：题{i}？" in ctx for i in range(5)) and "题5" not in ctx
    assert ctx.index("题0") < ctx.index("题4")


def test_too_many_shots_is_a_clear_error():
    import pytest

    from chimed_eval.core.errors import ConfigError

    data = TaskData(samples=[Sample("1", "问", ("x", "y"), 0, "s")], fewshot={"s": []})
    task = MCQTask("t", lambda _: data)
    with pytest.raises(ConfigError, match="5 shots"):
        task.render(data, data.samples[0], "paper", 5)


# --- open QA / dialogue: stop at the next turn of either speaker (issue 14, item 21) ------------------


def _gen_request(task_name: str, variant: str = "paper", setup=None):
    import pytest

    pytest.importorskip("jieba")
    from chimed_eval.task.options import TaskRunOptions
    from chimed_eval.core.types import Sample
    from chimed_eval.tasks import get_task

    t = get_task(task_name)
    opts = TaskRunOptions(variant, chat=setup)
    dialogue = Sample("d1", "(paper)", "建议服用抑酸药物",
                      metadata={"turns": [["patient", "胃胀半年\n"], ["doctor", "做过胃镜吗？\n"], ["patient", "做过\n"]]})
    qa = Sample("q1", "高血压能吃党参吗", "可以。")
    sample = dialogue if task_name == "mc-dialogue" else qa
    [req] = t.build_requests(None, [sample], opts)
    return t, sample, req, opts


def test_paper_requests_stop_at_the_next_human_or_bot_turn():
    for name in ("cmd-qa", "chimed-qa", "mc-dialogue", "covid-dialogue-zh"):
        _, _, req, _ = _gen_request(name)
        assert req.generation.stop == ("[human]:", "[bot]:"), name


def test_chat_requests_stop_at_their_formats_turn_markers():
    from chimed_eval.models.chat import chat_setup
    from chimed_eval.backends import backend_capabilities

    _, _, req, _ = _gen_request("cmd-qa", "chat", chat_setup("hf", backend_capabilities("hf"), "ziya-v2", {}))
    assert req.generation.stop == ("<human>:", "<bot>:")
    _, _, req, _ = _gen_request("mc-dialogue", "chat", chat_setup("hf", backend_capabilities("hf"), "baichuan", {}))
    assert req.generation.stop == ("<reserved_102>", "<reserved_103>")


def test_a_generation_the_backend_did_not_stop_is_cut_at_the_earliest_marker():
    from chimed_eval.core.types import Response

    t, sample, req, opts = _gen_request("cmd-qa")
    raw = "可以少量服用。\n[bot]:还有别的问题吗？\n[human]:谢谢"
    scored = t.score(None, sample, req, Response(key=req.key, text=raw), opts)
    assert scored.generation == "可以少量服用。\n"
    assert scored.extra["generation_uncut"] == raw
    # the metrics are computed on the cut text: the same as a backend that stopped itself
    clean = t.score(None, sample, req, Response(key=req.key, text="可以少量服用。\n"), opts)
    assert scored.extra["stats"] == clean.extra["stats"] and "generation_uncut" not in clean.extra
    # chat formats cut at their own markers, whichever comes first in the text
    from chimed_eval.models.chat import chat_setup
    from chimed_eval.backends import backend_capabilities

    t, sample, req, opts = _gen_request("cmd-qa", "chat", chat_setup("hf", backend_capabilities("hf"), "ziya-v2", {}))
    scored = t.score(None, sample, req, Response(key=req.key, text="可以。\n<bot>:再问\n<human>:好"), opts)
    assert scored.generation == "可以。\n"
