"""The paper's baselines as model presets: one row per published row of ``leaderboards/paper.py``.

Each row names the published row it reproduces (``published``; the leaderboard matches a measured
run to it by the preset name, which ``results.json`` records as ``model.name``), the hub id or API
model name, the backend to use, the chat format, the dtype and the paper's decoding settings
(``../shared/PAPER.md``). ``chimed-gpt`` is registered in :mod:`chimed_eval.models`; it is listed
here for the mapping only.

Which checkpoint a published row used is not always stated. Where the table says *assumed*, the
choice is ours (the closest public release to the paper's date and name). Chat formats marked
*per model card* come from the model cards' example code, not from the authors' scripts: the
authors' multiple-choice prompt (``<human>:...<bot>:``, no chat template) is the same for every
model, and the paper does not say how the baselines' open-QA prompts were wrapped. The formats
themselves (with their sources) are the table :data:`chimed_eval.prompts.CHAT_FORMATS`; the
``chat`` variant of the open-QA / dialogue tasks renders a preset's format (:mod:`chimed_eval.chat`),
the ``paper`` variant the authors' ``[human]:...[bot]:`` for every model.

Usage: ``chimed-eval run --model ziya-v2 --tasks ...`` (hf backend), ``chimed-eval run --model gpt-4
--backend openai --tasks ...`` (needs ``$OPENAI_API_KEY``). To reproduce the paper's API setting on
open QA / dialogue: ``--backend openai --variant chat --max-new-tokens 256 --model-args
temperature=0.2`` (the system prompt is the GPT presets' default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .models import MODELS, ModelPreset, ResolvedModel
from .prompts import CHAT_FORMATS, apply_chat

#: The system prompt the authors gave GPT-3.5/GPT-4 (PAPER.md, "Baselines through an API").
PAPER_API_SYSTEM_PROMPT = ("假设你是一个专业的医生，下面是一些病人的咨询，请给你非常有用的回答，解决病人的问题，"
                           "不要让出现让病人去医院就诊或者咨询其他专业医生的建议，不能超过200字。")

#: Open-model decoding of the authors' open-QA scripts; the API models' decoding.
PAPER_OPEN_DECODING: Mapping[str, Any] = {"temperature": 1.0, "top_p": 0.85, "max_new_tokens": 512,
                                          "cli": "--decoding paper-sampling"}
PAPER_API_DECODING: Mapping[str, Any] = {"shots": 0, "temperature": 0.2, "max_new_tokens": 256,
                                         "system_prompt": "paper",
                                         "cli": "--backend openai --variant chat --max-new-tokens 256 "
                                                "--model-args temperature=0.2"}

#: Chat formats live in :data:`chimed_eval.prompts.CHAT_FORMATS` (one table, used by the tasks);
#: ``api`` means the server's own chat template (turns sent as messages).
CHAT_TEMPLATES = CHAT_FORMATS  # the old name


@dataclass(frozen=True)
class Baseline:
    name: str                 # preset name (chimed-eval run --model NAME)
    published: str            # the row of leaderboards.paper.MODELS it reproduces
    source: str               # hub id, or the API model name
    backend: str              # "hf" or "openai"
    chat_format: str          # a key of prompts.CHAT_FORMATS, or "api" (the server's template)
    template_source: str      # where the chat format comes from
    dtype: str | None
    decoding: Mapping[str, Any]
    description: str
    licence: str = "see the model card"
    trust_remote_code: bool = False
    system_prompt: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def prompt_template(self) -> str:
        """One question in this preset's chat format, with ``{prompt}`` where the question goes."""
        return "{prompt}" if self.chat_format == "api" else apply_chat(self.chat_format, "{prompt}")

    def resolved(self) -> ResolvedModel:
        return ResolvedModel(name=self.name, path=self.source, revision=None, chat_format=self.chat_format,
                             dtype=self.dtype, trust_remote_code=self.trust_remote_code)


_ROWS = (
    Baseline("chimed-gpt", "ChiMed-GPT", "SYNLP/ChiMed-GPT-1.0", "hf", "chimed", "PAPER.md (authors' scripts, model card)",
             "bfloat16", PAPER_OPEN_DECODING, "ChiMed-GPT 1.0 (Ziya2-13B, LLaMA-2), 26 GB, bf16"),
    Baseline("ziya-v1", "Ziya-v1", "IDEA-CCNL/Ziya-LLaMA-13B-v1", "hf", "ziya", "per model card",
             "float16", PAPER_OPEN_DECODING, "Ziya-LLaMA-13B v1 (LLaMA-13B), fp16",
             notes=("released as delta weights on LLaMA-13B: merge them as the model card says, then pass "
                    "the merged directory as --model (the preset's chat format and decoding still apply "
                    "when you name the run ziya-v1)",)),
    Baseline("ziya-v2", "Ziya-v2", "IDEA-CCNL/Ziya2-13B-Chat", "hf", "ziya", "per model card",
             "bfloat16", PAPER_OPEN_DECODING, "Ziya2-13B-Chat (LLaMA-2 13B), bf16",
             notes=("assumed: the paper says only 'Ziya-v2'; Ziya2-13B-Chat is the chat release of the "
                    "Ziya2 base that ChiMed-GPT starts from",)),
    Baseline("baichuan", "Baichuan", "baichuan-inc/Baichuan-13B-Chat", "hf", "baichuan",
             "checked: modeling_baichuan.py's chat (user token 195 <reserved_102>, assistant 196 <reserved_103>), as FastChat-derived templates write it", "float16",
             PAPER_OPEN_DECODING, "Baichuan-13B-Chat, fp16, trust_remote_code", trust_remote_code=True,
             notes=("assumed: the paper says only 'Baichuan'; Baichuan-13B-Chat is the base of MedicalGPT (B)",
                    "the role markers are token ids 195/196, shown as <reserved_102>/<reserved_103>")),
    Baseline("taiyi", "Taiyi", "DUTIR-BioNLP/Taiyi-LLM", "hf", "taiyi",
             "checked: the authors' dialogue_one_trun.py (prompt tokens without special tokens, then eod; "
             "bos = eos = pad = eod)", "float16",
             PAPER_OPEN_DECODING, "Taiyi-LLM (Qwen-7B, biomedical), fp16, trust_remote_code", trust_remote_code=True),
    Baseline("medicalgpt-z", "MedicalGPT (Z)", "shibing624/ziya-llama-13b-medical-merged", "hf", "medicalgpt-alpaca",
             "checked: the model card's generate_prompt (Alpaca style, single-turn release)", "float16",
             PAPER_OPEN_DECODING,
             "MedicalGPT on Ziya-LLaMA-13B (merged), fp16",
             notes=("assumed: MedicalGPT's Ziya-based release",)),
    Baseline("medicalgpt-b", "MedicalGPT (B)", "shibing624/vicuna-baichuan-13b-chat", "hf", "medicalgpt-vicuna",
             "checked: the model card's generate_prompt (MedicalGPT template 'vicuna')", "float16",
             PAPER_OPEN_DECODING,
             "MedicalGPT on Baichuan-13B-Chat, fp16, trust_remote_code", trust_remote_code=True,
             notes=("assumed: MedicalGPT's Baichuan-based release",)),
    Baseline("gpt-3.5-turbo", "GPT-3.5-Turbo", "gpt-3.5-turbo", "openai", "api", "the API's own chat format",
             None, PAPER_API_DECODING, "GPT-3.5-Turbo through the OpenAI API (--backend openai)",
             licence="OpenAI terms", system_prompt=PAPER_API_SYSTEM_PROMPT,
             notes=("the API serves the current snapshot of this name, not the paper's (2023)",)),
    Baseline("gpt-4", "GPT-4", "gpt-4", "openai", "api", "the API's own chat format",
             None, PAPER_API_DECODING, "GPT-4 through the OpenAI API (--backend openai)",
             licence="OpenAI terms", system_prompt=PAPER_API_SYSTEM_PROMPT,
             notes=("the API serves the current snapshot of this name, not the paper's (2023)",)),
)

BASELINES: Mapping[str, Baseline] = {b.name: b for b in _ROWS}

#: preset name -> published row name (leaderboards/paper.py MODELS)
PUBLISHED_ROWS: Mapping[str, str] = {b.name: b.published for b in _ROWS}


def render_chat(fmt: str, prompt: str) -> str:
    """One question ``prompt`` in chat format ``fmt`` (:data:`chimed_eval.prompts.CHAT_FORMATS`)."""
    return prompt if fmt in ("api", "none") else apply_chat(fmt, prompt)


def check_backend(model: str, backend: str) -> None:
    """An API preset cannot run on a local backend (and vice versa a clear hint is better than a
    hub download error)."""
    from .errors import ConfigError

    b = BASELINES.get(model)
    if b is not None and b.backend == "openai" and backend not in ("openai", "fake"):
        raise ConfigError(f"{model!r} is an API model: run it with --backend openai (key in $OPENAI_API_KEY)")


def _source_hint(b: Baseline) -> str:
    if b.backend == "openai":
        return f"--backend openai and $OPENAI_API_KEY (API model {b.source})"
    return f"hub id {b.source}, or a local copy: --model /path/to/it"


def _register() -> None:
    for b in _ROWS:
        if b.name in MODELS:  # chimed-gpt lives in models.py
            continue
        MODELS.add(b.name, ModelPreset(b.name, f"{b.description} [paper row: {b.published}]", _source_hint(b),
                                       b.resolved, b.licence, chat_format=b.chat_format))


_register()
