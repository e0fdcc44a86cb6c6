"""Named, versioned prompt variants and chat formats.

Prompts are plain format strings; every rendered prompt is stored with its hash in the sample
records, so two variants can never silently render the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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

# --- chat formats (used by generation tasks and model presets) -------------------------------
CHAT_FORMATS = {
    "none": "{prompt}",
    "chimed": "[human]:{prompt}\n[bot]:",
}


def apply_chat(fmt: str, prompt: str) -> str:
    try:
        return CHAT_FORMATS[fmt].format(prompt=prompt)
    except KeyError:
        raise ValueError(f"unknown chat format {fmt!r}; known: {sorted(CHAT_FORMATS)}") from None
