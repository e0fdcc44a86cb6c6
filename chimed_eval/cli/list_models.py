"""``chimed-eval models``: list the model presets (what each needs, its licence, its chat format)."""

from __future__ import annotations

import argparse

NAME = "models"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``models`` subcommand and its flags."""
    sub.add_parser(NAME, help="list model presets")


def run(a: argparse.Namespace) -> int:
    """Print the model presets."""
    from chimed_eval.models.resolve import MODELS

    for n in MODELS:
        m = MODELS.get(n)
        chat = {"none": "the tokenizer's chat template", "api": "the server's"}.get(m.chat_format, m.chat_format)
        print(f"{n:14} {m.description}\n{'':14} needs: {m.needs}; licence: {m.licence}; --variant chat: {chat}")
        if m.modelscope:
            print(f"{'':14} on ModelScope: {m.modelscope} (--model-args hub=modelscope)")
    print("\nAlso: any local transformers directory, a .gguf file, or a hub id (--model-args revision=...; "
          "$HF_ENDPOINT picks the hub's host; hub=modelscope fetches a ModelScope id).")
    return 0
