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


# --- cot: reasoning first, then a final line 答案：X (extraction: extract.letters.extract_final_answer) --
COT_VERSION = "cot@1"
COT_MAX_NEW_TOKENS = 512  # room for the reasoning; --max-new-tokens overrides (recorded)


def _cot_instruction(subject_name: str, n_options: int, multi: bool) -> str:
    letters = "/".join(LETTERS[:n_options])
    kind, pick = ("多项选择题", "一个或多个选项字母，如 AB") if multi else ("单项选择题", "一个选项字母")
    return (f"以下是关于{subject_name}的{kind}。请先逐步推理，写出分析过程；最后单独一行，"
            f"以“答案：X”的格式给出答案，X 为{pick}（{letters}）。\n\n")


def render_cot(subject_name: str, shots: Sequence[Shot], question: str, choices: Sequence[str],
               multi: bool = False) -> MCQPrompt:
    """The instruction asks for step-by-step reasoning then a final line ``答案：X`` (``multi``: the
    multiple-answer wording, letters such as ``答案：ABD``); shots show ``答案：X`` only (no item has a
    written reasoning); the test item ends with ``解析：``, the cue to start reasoning."""
    p = mcq_parts("cot", "", subject_name, shots, question, choices, multi)
    return MCQPrompt(prefix=p.plain_head(), context=p.plain_head() + p.question + "解析：", continuations=())


MCQ_VARIANTS = {
    "paper": (PAPER_VERSION, "next_token"),
    "lm-eval": (LMEVAL_VERSION, "loglikelihood"),
    "generate": (GENERATE_VERSION, "generate"),
    "cot": (COT_VERSION, "generate"),
}


@dataclass(frozen=True)
class MCQParts:
    """A multiple-choice prompt cut into turns, for chat rendering: ``instruction``, each shot as
    (question, answer), the test ``question``. Joined as one text (``single_turn``: instruction +
    each shot's question + ``delimiter`` + answer + ``shot_sep`` + question) it is the variant's
    plain prompt less its own role markers (the paper's ``<human>:`` / ``\\n<bot>:``) and cue."""

    instruction: str
    shots: tuple[tuple[str, str], ...]
    question: str
    delimiter: str = ""
    shot_sep: str = ""

    def plain_head(self) -> str:
        return self.instruction + "".join(q + self.delimiter + a + self.shot_sep for q, a in self.shots)

    def single_turn(self) -> str:
        return self.plain_head() + self.question


def _letters(target: object) -> str:
    """A shot's gold as letters: an index, or several (multiple-answer shots)."""
    if isinstance(target, int):
        return LETTERS[target]
    return "".join(LETTERS[int(i)] for i in sorted(target))  # type: ignore[union-attr]


def mcq_parts(variant: str, style: str, subject_name: str, shots: Sequence[Shot], question: str,
              choices: Sequence[str], multi: bool = False) -> MCQParts:
    """The turns of ``variant``'s prompt (see :class:`MCQParts`); ``style`` is the lm-eval style."""
    if variant == "paper":
        return MCQParts(f"以下是关于{subject_name}的选择题，请选择正确的答案\n",
                        tuple((f"问题：{s.question}？\n{_options(s.choices, '.')}答案：",
                               f"{_letters(s.target)}.{s.choices[s.target]}" if isinstance(s.target, int)
                               else _letters(s.target)) for s in shots),
                        f"问题：{question}？\n{_options(choices, '.')}\n答案：", "", "\n")
    if variant == "lm-eval":
        return MCQParts(LMEVAL_DESCRIPTIONS[style].format(subject=subject_name),
                        tuple((_lmeval_doc(s.question, s.choices), _letters(s.target)) for s in shots),
                        _lmeval_doc(question, choices), " ", "\n\n")
    if variant == "generate":
        letters = "/".join(LETTERS[: len(choices)])
        return MCQParts(f"以下是关于{subject_name}的单项选择题，请直接给出正确答案的选项（{letters}）。\n\n",
                        tuple((question_block(s.question, s.choices) + "答案：", _letters(s.target)) for s in shots),
                        question_block(question, choices) + "答案：", "", "\n\n")
    if variant == "cot":
        return MCQParts(_cot_instruction(subject_name, len(choices), multi),
                        tuple((question_block(s.question, s.choices), "答案：" + _letters(s.target)) for s in shots),
                        question_block(question, choices), "", "\n\n")
    raise ValueError(f"no prompt variant {variant!r}")

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
        """The prompt for ``messages`` (``{"role": "user"|"assistant", "content": ...}``); a leading
        ``system`` message replaces the format's ``system`` text (refused where it has none)."""
        from chimed_eval.core.errors import ConfigError

        system = self.system
        if messages and messages[0]["role"] == "system":  # --system-prompt: replaces the format's own text
            if not self.system:
                raise ConfigError(f"chat format {self.name!r} documents no system prompt ({self.source}); "
                                  "placing --system-prompt in it would be a guess: leave --system-prompt out")
            system, messages = messages[0]["content"], messages[1:]
        if not messages or messages[-1]["role"] != "user":
            raise ConfigError(f"chat format {self.name!r}: a conversation must end with a user turn")
        if not self.multi_turn and len(messages) > 1:
            raise ConfigError(f"chat format {self.name!r} is documented for one question only ({self.source}); "
                              "a multi-turn prompt would be a guess: use --variant paper")
        out = system
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
    from chimed_eval.core.errors import ConfigError

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
