"""Token-level data: packing documents into fixed blocks, and conversations with answer-only labels.

**Packing** (pre-training). Documents are tokenized, each followed by EOS, and laid end to end
into blocks of ``block_size`` tokens (at most 4,096); a document longer than the space left
continues in the next block. The choice: **no attention across documents**. Every block carries
``position_ids`` that restart at 0 where a document (or a continued piece of one) starts, and no
``attention_mask``, and the forward pass runs without a KV cache (``use_cache=False``: with a cache
transformers ignores the position ids for masking); transformers then builds a block-diagonal causal mask from the position ids
(``find_packed_sequence_indices``: sdpa and eager masks, FlashAttention 2 varlen). The first token
of each piece is not a target (its prediction would come from the previous document), and a piece
continued from the previous block sees only itself. The last partial block is dropped in training
and padded (pad targets ignored) in evaluation.

**Conversations** (SFT). ``paper`` format: each user turn renders ``[human]:{text}\\n[bot]:`` and
each assistant turn ``{text}\\n``, the last one followed by EOS, exactly the prompt the evaluation
tasks send (``[human]:{question}\\n[bot]:``, stop at the next ``[human]:`` or ``[bot]:``). ``chat`` format: the model's
own chat template, cut at the text each assistant turn adds. Segments are tokenized one by one and
concatenated, so the label mask follows the segment boundaries exactly: only assistant tokens
(and the final EOS) are targets; ``system`` and ``user`` text never is. Conversations longer
than ``max_length`` are cut at the end; one with no target token left is dropped (counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from chimed_eval.core.errors import ConfigError

from .config import MAX_BLOCK

IGNORE = -100
FORMATS = ("paper", "chat")


def pack_documents(docs: Sequence[Sequence[int]], block_size: int, eos_id: int, pad_id: int,
                   drop_last: bool = True) -> list[dict[str, list[int]]]:
    """Blocks ``{input_ids, labels, position_ids}`` of exactly ``block_size`` tokens."""
    if not 2 <= block_size <= MAX_BLOCK:
        raise ConfigError(f"block_size {block_size}: must be between 2 and {MAX_BLOCK}")
    blocks: list[dict[str, list[int]]] = []
    ids: list[int] = []
    labels: list[int] = []
    pos: list[int] = []

    def flush() -> None:
        blocks.append({"input_ids": ids[:], "labels": labels[:], "position_ids": pos[:]})
        ids.clear(), labels.clear(), pos.clear()

    for doc in docs:
        toks = [*doc, eos_id]
        off = 0
        while off < len(toks):
            piece = toks[off: off + block_size - len(ids)]
            ids.extend(piece)
            labels.extend([IGNORE, *piece[1:]])
            pos.extend(range(len(piece)))
            off += len(piece)
            if len(ids) == block_size:
                flush()
    if ids and not drop_last:
        n = block_size - len(ids)
        ids.extend([pad_id] * n)
        labels.extend([IGNORE] * n)
        pos.extend(range(n))
        flush()
    return blocks


@dataclass
class PackedCollator:
    """Stacks equal-length blocks; no attention mask, so the position ids separate documents."""

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        batch: dict[str, Any] = {k: torch.tensor([r[k] for r in rows], dtype=torch.long)
                                 for k in ("input_ids", "labels", "position_ids")}
        # transformers derives the packed (block-diagonal) mask from position_ids only when there
        # is no attention mask and no KV cache; a model with use_cache on makes one in forward.
        batch["use_cache"] = False
        return batch


# --- conversations ----------------------------------------------------------------------------------


def paper_segments(messages: Sequence[tuple[str, str]]) -> list[tuple[str, bool]]:
    """(text, is_target) pieces of the paper format (:data:`chimed_eval.prompts.variants.CHIMED`, the one
    table the evaluation tasks render from): a user turn with the open assistant marker
    (``[human]:...\\n[bot]:``), then the assistant's text and its turn end as the target."""
    from chimed_eval.prompts.variants import CHIMED

    (user_pre, user_end), (_, bot_end) = CHIMED.user, CHIMED.assistant
    segs: list[tuple[str, bool]] = []
    for role, text in messages:
        text = text.rstrip("\n")
        if role == "assistant":
            segs.append((text + bot_end, True))
        elif role == "user":
            segs.append((user_pre + text + user_end + CHIMED.generation_prompt, False))
        else:  # system: plain context before the first turn
            segs.append((text + "\n", False))
    return segs


def chat_segments(tokenizer: Any, messages: Sequence[tuple[str, str]]) -> list[tuple[str, bool]]:
    """Pieces of the chat-template rendering: each assistant turn is the text it adds to the
    rendering of the conversation before it (which ends with the generation prompt)."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("format: chat needs a tokenizer with a chat template; use format: paper")
    msgs = [{"role": r, "content": c} for r, c in messages]
    segs: list[tuple[str, bool]] = []
    done = ""
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(msgs[:i], tokenize=False, add_generation_prompt=True)
        after = tokenizer.apply_chat_template(msgs[: i + 1], tokenize=False)
        if not before.startswith(done) or not after.startswith(before):
            raise ConfigError("the chat template does not render conversations prefix by prefix; use format: paper")
        segs.append((before[len(done):], False))
        segs.append((after[len(before):], True))
        done = after
    return segs


def encode_chat(tokenizer: Any, messages: Sequence[tuple[str, str]], fmt: str, max_length: int,
                add_eos: bool = True) -> dict[str, list[int]] | None:
    """``{input_ids, labels}`` with labels = IGNORE outside assistant text, or None when no target
    token is left after cutting at ``max_length``."""
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    segs = paper_segments(messages) if fmt == "paper" else chat_segments(tokenizer, messages)
    ids: list[int] = []
    labels: list[int] = []
    bos = getattr(tokenizer, "bos_token_id", None)
    if fmt == "paper" and bos is not None and getattr(tokenizer, "add_bos_token", False):
        ids.append(bos), labels.append(IGNORE)
    for text, target in segs:
        toks = tokenizer.encode(text, add_special_tokens=False)
        ids.extend(toks)
        labels.extend(toks if target else [IGNORE] * len(toks))
    if add_eos and fmt == "paper" and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    ids, labels = ids[:max_length], labels[:max_length]
    if all(lab == IGNORE for lab in labels[1:]):
        return None
    return {"input_ids": ids, "labels": labels}


def prompt_text(messages: Sequence[tuple[str, str]], fmt: str, tokenizer: Any = None) -> str:
    """The context a backend generates from for the next assistant turn (the evaluation prompt)."""
    if fmt == "paper":
        return "".join(t for t, _ in paper_segments(messages))
    msgs = [{"role": r, "content": c} for r, c in messages]
    return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
