"""Named, versioned prompt variants and chat formats.

Prompts are plain format strings; every rendered prompt is stored with its hash in the sample
records, so two variants can never silently render the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class MCQPrompt:
    """A rendered multiple-choice prompt: ``prefix`` (instruction + shots) + the test item."""

    prefix: str
    context: str
    continuations: tuple[str, ...]


@dataclass(frozen=True)
class Shot:
    question: str
    choices: tuple[str, ...]
    target: int


def _options(choices: Sequence[str], sep: str) -> str:
    return "".join(f"{LETTERS[i]}{sep}{c}\n" for i, c in enumerate(choices))


# --- paper: the ChiMed-GPT authors' process_ceval_cmmlu_data.py (Oct 2023) -------------------
PAPER_VERSION = "paper@1"


def render_paper(subject_name: str, shots: Sequence[Shot], question: str, choices: Sequence[str]) -> MCQPrompt:
    """``<human>:以下是关于{type}的选择题，请选择正确的答案\\n`` + shots + test item + ``<bot>:``.

    Scored by the next-token probability of each option letter (no chat template).
    """
    head = f"<human>:以下是关于{subject_name}的选择题，请选择正确的答案\n"
    for s in shots:
        letter = LETTERS[s.target]
        head += f"问题：{s.question}？\n{_options(s.choices, '.')}答案：{letter}.{s.choices[s.target]}\n"
    test = f"问题：{question}？\n{_options(choices, '.')}\n答案：\n<bot>:"
    return MCQPrompt(prefix=head, context=head + test, continuations=tuple(LETTERS[: len(choices)]))


# --- lm-eval: lm-evaluation-harness 0.4.13 ceval-valid / cmmlu templates ----------------------
LMEVAL_VERSION = "lm-eval-0.4.13@1"
LMEVAL_DESCRIPTIONS = {
    "cmmlu": "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n",
    "ceval": "以下是中国关于{subject}的单项选择题，请选出其中的正确答案。\n\n",
}


def _lmeval_doc(question: str, choices: Sequence[str]) -> str:
    return f"{question.strip()}\n{_options(choices, '. ')}答案："


def render_lmeval(
    style: str, subject_name: str, shots: Sequence[Shot], question: str, choices: Sequence[str]
) -> MCQPrompt:
    """description + shots joined by blank lines; each option scored as the continuation " X"."""
    head = LMEVAL_DESCRIPTIONS[style].format(subject=subject_name)
    for s in shots:
        head += _lmeval_doc(s.question, s.choices) + " " + LETTERS[s.target] + "\n\n"
    ctx = head + _lmeval_doc(question, choices)
    return MCQPrompt(prefix=head, context=ctx, continuations=tuple(" " + c for c in LETTERS[: len(choices)]))


# --- generate: free generation, then answer extraction ---------------------------------------
GENERATE_VERSION = "generate@1"


def render_generate(subject_name: str, shots: Sequence[Shot], question: str, choices: Sequence[str]) -> MCQPrompt:
    letters = "/".join(LETTERS[: len(choices)])
    head = f"以下是关于{subject_name}的单项选择题，请直接给出正确答案的选项（{letters}）。\n\n"
    for s in shots:
        head += f"{question_block(s.question, s.choices)}答案：{LETTERS[s.target]}\n\n"
    ctx = head + question_block(question, choices) + "答案："
    return MCQPrompt(prefix=head, context=ctx, continuations=())


def question_block(question: str, choices: Sequence[str]) -> str:
    return f"{question.strip()}\n{_options(choices, '. ')}"


MCQ_VARIANTS = {
    "paper": (PAPER_VERSION, "next_token"),
    "lm-eval": (LMEVAL_VERSION, "loglikelihood"),
    "generate": (GENERATE_VERSION, "generate"),
}

# --- chat formats (used by the generation tasks' ``chat`` variant, scales and model presets) -----


@dataclass(frozen=True)
class ChatFormat:
    """A documented prompt format: how a conversation of user/assistant turns is written as text.

    ``render`` writes ``system`` + each turn as ``prefix + content + suffix`` of its role + the
    ``generation_prompt`` (the open assistant turn). ``stop`` holds the turn markers that mean the
    model has started another turn (generation is cut there). ``multi_turn`` is False for a format
    whose source documents a single question only: several turns are then refused, not guessed.
    ``source`` says which model card / script (and version) the format is copied from. Role
    markers that are special tokens (Baichuan's 195/196, Taiyi's eod) are written as their token
    text, which the model's tokenizer encodes back to that one token.
    """

    name: str
    source: str
    user: tuple[str, str]
    assistant: tuple[str, str]
    generation_prompt: str
    system: str = ""
    stop: tuple[str, ...] = ()
    multi_turn: bool = True
    #: None: the tokenizer's default (the card calls ``tokenizer(prompt)``); False: the source
    #: builds the token list itself without a BOS (Baichuan's _build_chat_input, Taiyi's scripts)
    add_special_tokens: bool | None = None

    def render(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The prompt for ``messages`` (``{"role": "user"|"assistant", "content": ...}``)."""
        from .errors import ConfigError

        if not messages or messages[-1]["role"] != "user":
            raise ConfigError(f"chat format {self.name!r}: a conversation must end with a user turn")
        if not self.multi_turn and len(messages) > 1:
            raise ConfigError(f"chat format {self.name!r} is documented for one question only ({self.source}); "
                              "a multi-turn prompt would be a guess: use --variant paper")
        out = self.system
        for m in messages:
            if m["role"] not in ("user", "assistant"):
                raise ConfigError(f"chat format {self.name!r}: unknown role {m['role']!r} (user or assistant)")
            prefix, suffix = self.user if m["role"] == "user" else self.assistant
            out += prefix + m["content"] + suffix
        return out + self.generation_prompt


#: The paper's format for open QA and dialogue (authors' scripts; ChiMed-GPT-1.0 model card usage:
#: ``query="[human]:感冒怎么处理？\n[bot]:"``). Turns end in ``\n``; the ``paper`` variant renders this.
CHIMED = ChatFormat(
    "chimed", "ChiMed-GPT-1.0 model card (usage) and the authors' process_multi_turn.py",
    user=("[human]:", "\n"), assistant=("[bot]:", "\n"), generation_prompt="[bot]:", stop=("[human]:", "[bot]:"))

CHAT_FORMATS: Mapping[str, ChatFormat] = {f.name: f for f in (
    CHIMED,
    # Ziya-LLaMA-13B-v1 and Ziya2-13B-Chat model cards (2023): inputs = '<human>:' + query.strip() + '\n<bot>:'.
    # Turns after the first: MedicalGPT template.py 'ziya' (prompt "<human>:{query}\n<bot>:", sep "\n").
    ChatFormat("ziya", "Ziya-LLaMA-13B-v1 / Ziya2-13B-Chat model cards; turns joined as MedicalGPT template 'ziya'",
               user=("<human>:", "\n"), assistant=("<bot>:", "\n"), generation_prompt="<bot>:",
               stop=("<human>:", "<bot>:")),
    # Baichuan-13B-Chat modeling_baichuan.py _build_chat_input: user_token_id 195 + question, then
    # assistant_token_id 196 (+ answer + eos for a finished turn). 195/196 are written <reserved_102> /
    # <reserved_103> (MedicalGPT template 'baichuan', FastChat 'baichuan-chat'; Baichuan2 uses 106/107).
    ChatFormat("baichuan", "Baichuan-13B-Chat modeling_baichuan.py _build_chat_input; MedicalGPT template 'baichuan'",
               user=("<reserved_102>", ""), assistant=("<reserved_103>", "</s>"), generation_prompt="<reserved_103>",
               stop=("<reserved_102>", "<reserved_103>"), add_special_tokens=False),
    # Taiyi-LLM (Qwen-7B): dialogue_one_trun.py / dialogue_multi_trun.py: each question's tokens
    # (no special tokens) then eod; the model's answer ends in eod too.
    ChatFormat("taiyi", "Taiyi-LLM dialogue_one_trun.py / dialogue_multi_trun.py (eod after every turn)",
               user=("", "<|endoftext|>"), assistant=("", "<|endoftext|>"), generation_prompt="",
               stop=("<|endoftext|>",), add_special_tokens=False),
    # shibing624/vicuna-baichuan-13b-chat model card (MedicalGPT v1.4, Aug 2023), generate_prompt:
    # f"A chat between ... user's questions.USER: {instruction} ASSISTANT: " (no space before USER,
    # a space after ASSISTANT:). Finished answers end in "</s>" (MedicalGPT template 'vicuna', sep "</s>").
    ChatFormat("medicalgpt-vicuna", "shibing624/vicuna-baichuan-13b-chat model card (generate_prompt); "
               "turns joined with </s> as MedicalGPT template 'vicuna'",
               system=("A chat between a curious user and an artificial intelligence assistant. The assistant "
                       "gives helpful, detailed, and polite answers to the user's questions."),
               user=("USER: ", " "), assistant=("ASSISTANT: ", "</s>"), generation_prompt="ASSISTANT: ",
               stop=("USER:", "</s>")),
    # shibing624/ziya-llama-13b-medical-merged model card (MedicalGPT v1.1, Jul 2023), generate_prompt:
    # Alpaca style, single-turn model ("单轮对话" in MedicalGPT's model table): no multi-turn format.
    ChatFormat("medicalgpt-alpaca", "shibing624/ziya-llama-13b-medical-merged model card (generate_prompt), single-turn",
               system=("Below is an instruction that describes a task. Write a response that appropriately "
                       "completes the request.\n\n"),
               user=("### Instruction:", "\n\n"), assistant=("### Response: ", ""), generation_prompt="### Response: ",
               stop=("### Instruction:",), multi_turn=False),
)}

#: Names that are not text formats: ``none`` (no wrapping: the model's own tokenizer chat template
#: decides, when it has one) and ``api`` (the server's chat template, turns sent as messages).
TEMPLATE_FORMATS = ("none", "api")


def chat_format(name: str) -> ChatFormat:
    """The format called ``name``; an unknown name is a ConfigError listing the known ones."""
    from .errors import ConfigError

    try:
        return CHAT_FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown chat format {name!r}; known: {', '.join(sorted(CHAT_FORMATS))} "
                          f"(or {' / '.join(TEMPLATE_FORMATS)}: the tokenizer's or server's own template)") from None


def apply_chat(fmt: str, prompt: str) -> str:
    """One user question in format ``fmt`` (``none``: the text as is)."""
    if fmt == "none":
        return prompt
    return chat_format(fmt).render([{"role": "user", "content": prompt}])


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the earliest of ``stops`` (the next turn marker), for backends that did not stop."""
    cut = min((text.index(s) for s in stops if s and s in text), default=len(text))
    return text[:cut]
