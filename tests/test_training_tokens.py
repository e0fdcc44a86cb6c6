"""Packing (fixed blocks, no attention across documents) and the answer-only SFT mask."""

from __future__ import annotations

import pytest

from chimed_eval.training.tokens import IGNORE, PackedCollator, encode_chat, pack_documents, paper_segments, prompt_text


def test_packing_blocks_positions_and_targets():
    docs = [[1, 2, 3], [4, 5, 6, 7, 8], [9]]
    blocks = pack_documents(docs, block_size=4, eos_id=0, pad_id=99, drop_last=False)
    # stream: 1 2 3 0 | 4 5 6 7 | 8 0 9 0  (each document followed by EOS)
    assert [b["input_ids"] for b in blocks] == [[1, 2, 3, 0], [4, 5, 6, 7], [8, 0, 9, 0]]
    # positions restart at every document (and at a piece continued from the previous block)
    assert [b["position_ids"] for b in blocks] == [[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 0, 1]]
    # a piece's first token is never a target (it would be predicted from the previous document)
    assert [b["labels"] for b in blocks] == [[IGNORE, 2, 3, 0], [IGNORE, 5, 6, 7], [IGNORE, 0, IGNORE, 0]]
    assert all(len(b["input_ids"]) == 4 for b in blocks)


def test_packing_drops_or_pads_the_last_partial_block():
    docs = [[1, 2, 3, 4, 5]]
    assert [b["input_ids"] for b in pack_documents(docs, 4, 0, 99, drop_last=True)] == [[1, 2, 3, 4]]
    last = pack_documents(docs, 4, 0, 99, drop_last=False)[-1]
    assert last["input_ids"] == [5, 0, 99, 99] and last["labels"] == [IGNORE, 0, IGNORE, IGNORE]
    with pytest.raises(Exception, match="between 2 and 4096"):
        pack_documents(docs, 8192, 0, 99)


def test_packed_documents_do_not_attend_to_each_other(tiny_model):
    """Document B's logits inside a packed block equal its logits alone: no cross-document leak."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa").eval()
    a, b = list(range(10, 30)), list(range(40, 52))
    [block] = pack_documents([a, b], block_size=len(a) + len(b) + 2, eos_id=0, pad_id=0)
    batch = PackedCollator()([block])
    assert "attention_mask" not in batch
    assert batch["use_cache"] is False  # with a KV cache transformers would not derive the packed mask
    with torch.no_grad():
        packed = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0]
        alone = model(input_ids=torch.tensor([b + [0]])).logits[0]
        # the same block without position ids is one long causal sequence: B does see A there
        leaky = model(input_ids=batch["input_ids"]).logits[0]
    start = len(a) + 1
    assert torch.allclose(packed[start:], alone, atol=1e-4)
    assert not torch.allclose(leaky[start:], alone, atol=1e-2)


class CharTok:
    """A tokenizer with one id per character (so the expected labels can be written by hand)."""

    eos_token_id = 1
    bos_token_id = None
    chat_template = None

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]


def _decode(ids):
    return "".join(chr(i) if i > 1 else "<eos>" for i in ids)


def test_answer_only_mask_paper_format_multi_turn():
    msgs = [("system", "S"), ("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2\n")]
    row = encode_chat(CharTok(), msgs, "paper", max_length=1000)
    text = _decode(row["input_ids"])
    assert text == "S\n[human]:q1\n[bot]:a1\n[human]:q2\n[bot]:a2\n<eos>"
    targets = "".join(_decode([t]) if t != IGNORE else "_" for t in row["labels"])
    # only the answers (each with its newline) and the final EOS are targets
    assert targets == "_" * len("S\n[human]:q1\n[bot]:") + "a1\n" + "_" * len("[human]:q2\n[bot]:") + "a2\n<eos>"
    # the evaluation prompt is exactly the masked prefix
    assert prompt_text(msgs[:4], "paper") == "S\n[human]:q1\n[bot]:a1\n[human]:q2\n[bot]:"
    assert prompt_text([("user", "问")], "paper") == "[human]:问\n[bot]:"


def test_answer_only_mask_truncation_and_empty_answer():
    msgs = [("user", "a long question"), ("assistant", "ans")]
    row = encode_chat(CharTok(), msgs, "paper", max_length=len("[human]:a long question\n[bot]:") + 2)
    assert [t for t in row["labels"] if t != IGNORE] == [ord("a"), ord("n")]
    assert encode_chat(CharTok(), msgs, "paper", max_length=10) is None  # no answer token left


def test_answer_only_mask_chat_template(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
                         "{% if add_generation_prompt %}<assistant>{% endif %}")
    msgs = [("user", "问题"), ("assistant", "答案A"), ("user", "为什么"), ("assistant", "因为B")]
    row = encode_chat(tok, msgs, "chat", max_length=512)
    target_text = tok.decode([t for t in row["labels"] if t != IGNORE])
    assert target_text == "答案A</s>因为B</s>"
    assert tok.decode(row["input_ids"]) == "<user>问题</s><assistant>答案A</s><user>为什么</s><assistant>因为B</s>"


def test_sft_trainer_trains_on_our_labels(tiny_model, tmp_path):
    """TRL's SFTTrainer keeps the prebuilt labels: the batch it trains on masks the prompt."""
    from chimed_eval.training.config import TrainSettings
    from chimed_eval.training.sft import SFTStageConfig, sft_trainer
    from chimed_eval.training.stage import Stage, load_causal_lm

    cfg = SFTStageConfig(model=str(tiny_model), output_dir=str(tmp_path), train=TrainSettings(max_steps=1, batch_size=2))
    model, tok = load_causal_lm(str(tiny_model), cfg.train)
    rows = [encode_chat(tok, [("user", f"问题{i}"), ("assistant", f"答案{i}")], "paper", 64) for i in range(4)]
    trainer = sft_trainer(model, tok, rows, Stage("sft", cfg, str(tmp_path), cfg.train), 64)
    batch = next(iter(trainer.get_train_dataloader()))
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist()):
        mine = next(r for r in rows if r["input_ids"] == ids[: len(r["input_ids"])])
        assert labels[: len(mine["labels"])] == mine["labels"]
        assert all(x == IGNORE for x in labels[len(mine["labels"]):])
    assert paper_segments([("user", "q")]) == [("[human]:q\n[bot]:", False)]
