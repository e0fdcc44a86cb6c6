"""The ``chat`` variant of open QA / dialogue renders each model preset's documented prompt format.

The expected strings are written out literally from the model cards / scripts named beside them,
not computed from the table they check. Q is the MedicalGPT cards' own example question.
"""

from __future__ import annotations

import json

import pytest

from chimed_eval.models.chat import chat_setup, chatml_renderer

from chimed_eval.backends import backend_capabilities
from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError
from chimed_eval.models.resolve import MODELS, ModelPreset
from chimed_eval.task.options import TaskRunOptions
from chimed_eval.core.types import Sample
from chimed_eval.tasks import get_task

Q = "一岁宝宝发烧能吃啥药?"

#: preset -> the single-question prompt its source documents.
CARD_PROMPTS = {
    # SYNLP/ChiMed-GPT-1.0 model card, usage: query="[human]:感冒怎么处理？\n[bot]:"
    "chimed-gpt": "[human]:一岁宝宝发烧能吃啥药?\n[bot]:",
    # IDEA-CCNL/Ziya-LLaMA-13B-v1 model card: inputs = '<human>:' + query.strip() + '\n<bot>:'
    "ziya-v1": "<human>:一岁宝宝发烧能吃啥药?\n<bot>:",
    # IDEA-CCNL/Ziya2-13B-Chat model card: the same '<human>:' ... '\n<bot>:' wrapping
    "ziya-v2": "<human>:一岁宝宝发烧能吃啥药?\n<bot>:",
    # baichuan-inc/Baichuan-13B-Chat modeling_baichuan.py _build_chat_input: user_token_id (195) +
    # question + assistant_token_id (196); 195/196 are <reserved_102>/<reserved_103> in Baichuan-13B's
    # vocabulary (MedicalGPT template.py 'baichuan', FastChat 'baichuan-chat').
    "baichuan": "<reserved_102>一岁宝宝发烧能吃啥药?<reserved_103>",
    # DUTIR-BioNLP/Taiyi-LLM dialogue_one_trun.py: question tokens (no special tokens) + eod
    "taiyi": "一岁宝宝发烧能吃啥药?<|endoftext|>",
    # shibing624/ziya-llama-13b-medical-merged model card (MedicalGPT v1.1, Jul 2023), generate_prompt
    "medicalgpt-z": ("Below is an instruction that describes a task. Write a response that appropriately "
                     "completes the request.\n\n### Instruction:一岁宝宝发烧能吃啥药?\n\n### Response: "),
    # shibing624/vicuna-baichuan-13b-chat model card (MedicalGPT v1.4, Aug 2023), generate_prompt
    "medicalgpt-b": ("A chat between a curious user and an artificial intelligence assistant. The assistant "
                     "gives helpful, detailed, and polite answers to the user's questions.USER: "
                     "一岁宝宝发烧能吃啥药? ASSISTANT: "),
}
#: presets whose chat variant uses the tokenizer's own chat template (GGUF releases ship one)
TOKENIZER_TEMPLATE = {"smollm2-135m", "gemma3-270m"}
#: presets served by an API: the server's chat template (turns sent as messages)
API = {"gpt-3.5-turbo", "gpt-4"}

#: the turn markers that mean the model started another turn
CARD_STOPS = {
    "chimed-gpt": ("[human]:", "[bot]:"),
    "ziya-v1": ("<human>:", "<bot>:"),
    "ziya-v2": ("<human>:", "<bot>:"),
    "baichuan": ("<reserved_102>", "<reserved_103>"),
    "taiyi": ("<|endoftext|>",),
    "medicalgpt-z": ("### Instruction:",),
    "medicalgpt-b": ("USER:", "</s>"),
}

#: A dialogue p1, d1, p2 in each format (multi-turn sources named per entry).
DIALOGUE = [("patient", "胃胀半年\n"), ("doctor", "做过胃镜吗？\n"), ("patient", "做过，慢性胃炎\n")]
MULTI_TURN = {
    # the authors' process_multi_turn.py: [human]:{p}[bot]:{d}..., each turn text ending in \n
    "chimed-gpt": "[human]:胃胀半年\n[bot]:做过胃镜吗？\n[human]:做过，慢性胃炎\n[bot]:",
    # MedicalGPT template.py 'ziya': prompt "<human>:{query}\n<bot>:", sep "\n"
    "ziya-v2": "<human>:胃胀半年\n<bot>:做过胃镜吗？\n<human>:做过，慢性胃炎\n<bot>:",
    # Baichuan-13B-Chat _build_chat_input: a finished assistant turn is 196 + answer + eos
    "baichuan": "<reserved_102>胃胀半年<reserved_103>做过胃镜吗？</s><reserved_102>做过，慢性胃炎<reserved_103>",
    # Taiyi-LLM dialogue_multi_trun.py: question + eod, the generated answer (ending in eod), ...
    "taiyi": "胃胀半年<|endoftext|>做过胃镜吗？<|endoftext|>做过，慢性胃炎<|endoftext|>",
    # vicuna-baichuan-13b-chat card's turn + MedicalGPT template 'vicuna' (turns separated by </s>)
    "medicalgpt-b": ("A chat between a curious user and an artificial intelligence assistant. The assistant "
                     "gives helpful, detailed, and polite answers to the user's questions.USER: 胃胀半年 "
                     "ASSISTANT: 做过胃镜吗？</s>USER: 做过，慢性胃炎 ASSISTANT: "),
}


TASK = get_task("cmd-qa")
PAPER = TaskRunOptions("paper")


def _chat(preset: str, backend: str = "hf", **model_args: str) -> TaskRunOptions:
    return TaskRunOptions("chat", chat=chat_setup(backend, backend_capabilities(backend), preset, model_args))


def _render(sample: Sample, options: TaskRunOptions) -> str:
    return TASK.render(sample, options)[0]


def _qa(q: str = Q) -> Sample:
    return Sample(id="q1", input=q, target="多喝水。")


def _dialogue() -> Sample:
    return Sample(id="d1", input="(paper form)", target="建议服用抑酸药物",
                  metadata={"turns": [list(t) for t in DIALOGUE]})


def test_every_preset_is_covered():
    assert set(CARD_PROMPTS) | TOKENIZER_TEMPLATE | API == set(MODELS), "a new preset needs its card's prompt here"


@pytest.mark.parametrize("preset", sorted(CARD_PROMPTS))
def test_chat_variant_renders_the_model_card_prompt(preset):
    opts = _chat(preset)
    [req] = TASK.build_requests(None, [_qa()], opts)
    assert req.context == CARD_PROMPTS[preset]
    assert req.generation.stop == CARD_STOPS[preset]
    assert TASK.generation_record(None, [], [req], opts)["chat_template"].startswith(MODELS.get(preset).chat_format)


@pytest.mark.parametrize("preset", sorted(MULTI_TURN))
def test_chat_variant_renders_multi_turn_dialogues(preset):
    assert _render(_dialogue(), _chat(preset)) == MULTI_TURN[preset]


def test_chimed_chat_equals_the_paper_prompt():
    chat = _chat("chimed-gpt")
    assert _render(_qa(), chat) == _render(_qa(), PAPER) == CARD_PROMPTS["chimed-gpt"]
    assert _render(_dialogue(), chat) == _render(_dialogue(), PAPER) == MULTI_TURN["chimed-gpt"]


def test_bos_handling_follows_the_source():
    # Baichuan's and Taiyi's sources build the ids without a BOS; the cards that call tokenizer(prompt)
    # keep the tokenizer's default (None).
    assert TASK.build_requests(None, [_qa()], _chat("baichuan"))[0].add_special_tokens is False
    assert TASK.build_requests(None, [_qa()], _chat("taiyi"))[0].add_special_tokens is False
    assert TASK.build_requests(None, [_qa()], _chat("ziya-v2"))[0].add_special_tokens is None


def test_single_turn_format_refuses_a_dialogue():
    with pytest.raises(ConfigError, match="one question only.*--variant paper"):
        _render(_dialogue(), _chat("medicalgpt-z"))


def test_unknown_format_refuses_the_chat_variant(monkeypatch):
    with pytest.raises(ConfigError, match="'llama2' is not a documented format.*--variant paper"):
        chat_setup("hf", backend_capabilities("hf"), "ziya-v2", {"chat_format": "llama2"})
    monkeypatch.setitem(MODELS._entries, "mystery-7b",
                        ModelPreset("mystery-7b", "a preset without a documented format", "-", lambda: None,
                                    chat_format="mystery"))
    for backend in ("hf", "vllm", "fake"):
        with pytest.raises(ConfigError, match="'mystery-7b'.*'mystery' is not a documented format"):
            chat_setup(backend, backend_capabilities(backend), "mystery-7b", {})


def test_api_presets_use_the_server_template_and_refuse_local_backends():
    from chimed_eval.models.chat import MESSAGES_TAG

    msgs = [{"role": "user", "content": Q}]
    setup = chat_setup("openai", backend_capabilities("openai"), "gpt-4", {})
    assert setup.messages  # the turns travel as Request.messages
    # the stored context is what earlier releases stored (prompt hashes do not move)
    assert setup.render(msgs) == MESSAGES_TAG + json.dumps(msgs, ensure_ascii=False)
    with pytest.raises(ConfigError, match="--backend openai"):
        chat_setup("hf", backend_capabilities("hf"), "gpt-4", {})


def test_tokenizer_template_presets_get_the_stand_in_only_on_the_fake_backend():
    for name in TOKENIZER_TEMPLATE:
        assert MODELS.get(name).chat_format == "none"
        setup = chat_setup("fake", backend_capabilities("fake"), name, {})
        assert setup.render is chatml_renderer and "fake backend" in setup.label


def test_a_model_without_template_or_format_is_refused(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"<unk>": 0, "a": 1}, unk_token="<unk>"))
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ConfigError, match="no chat template and no documented chat format"):
        chat_setup("hf", backend_capabilities("hf"), str(tmp_path), {})
    # a documented format given for it is used as is, with no tokenizer needed
    assert chat_setup("hf", backend_capabilities("hf"), str(tmp_path), {"chat_format": "ziya"}).render(
        [{"role": "user", "content": "a"}]) == "<human>:a\n<bot>:"


def test_run_records_the_format_it_rendered(tmp_path):
    pytest.importorskip("jieba")
    data = tmp_path / "data" / "dialogue" / "hetmc"
    data.mkdir(parents=True)
    data.joinpath("test.dialog").write_text(
        "id\t1\tapartment\t内科\tdisease\t胃炎\nP\t胃胀半年\t0\nD\t做过胃镜吗？\t0\nP\t做过，慢性胃炎\t0\n"
        "D\t建议服用抑酸药物\t0\nSUM1\tx\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--model-args",
                 "chat_format=baichuan", "--tasks", "mc-dialogue", "--variant", "chat", "--output", str(out),
                 "--data-dir", str(tmp_path / "data")]) == 0
    [rec] = [json.loads(x) for x in (out / "samples" / "mc-dialogue.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rec["prompt"] == MULTI_TURN["baichuan"]
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert "baichuan" in json.dumps(res["settings"], ensure_ascii=False)
