"""The counting figures of generation tasks, and what the backends hand them.

* empty and truncated generations are reported as rates of items (0-100) with their counts beside
  them, and an output of punctuation only counts as empty;
* ``paper_script_bleu2_cum`` (equal to ``paper_bleu2_cum`` by construction) is gone;
* a generation cut inside a character (the tokenizer's trailing U+FFFD) is decoded to complete
  characters only, by the hf and vllm backends alike (tokenizer and engine stubs: no model).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from chimed_eval.backends.hf import decode_complete
from chimed_eval.metrics import text as T
from chimed_eval.core.types import GenerationConfig, Request, SampleScore

FFFD = "\ufffd"


def _score(generation: str, gold: str, **flags: bool) -> SampleScore:
    pytest.importorskip("jieba")
    return SampleScore(id=generation or "-", subject=None, prompt="p", prompt_hash="h", gold=gold,
                       prediction=None, score=0.0, generation=generation,
                       extra={"stats": T.generation_stats(generation, gold), **flags})


# --- empty and truncated: rates with counts -------------------------------------------------------


def test_empty_and_truncated_generations_are_rates_with_their_counts_beside_them():
    scores = [
        _score("，。！？、“”…… \u3000", "建议多喝水。", empty=False),  # punctuation only: empty all the same
        _score("", "建议多喝水。", empty=True),
        _score("建议多喝水，注意休息", "建议多喝水。", empty=False, truncated=True),
        _score("多喝水。", "建议多喝水。", empty=False),
    ]
    ms = {m.name: m for m in T.text_metrics(scores, seed=1)}
    assert "empty_generations" not in ms and "truncated_generations" not in ms
    rate, count = ms["empty_generation_rate"], ms["empty_generation_count"]
    assert (rate.value, rate.n, rate.averaging) == (50.0, 4, "items")
    assert (count.value, count.n) == (2.0, 4)
    assert (ms["truncated_generation_rate"].value, ms["truncated_generation_count"].value) == (25.0, 1.0)
    # the rate always follows from the count and n
    for stem in ("empty_generation", "truncated_generation"):
        assert math.isclose(ms[f"{stem}_rate"].value, 100 * ms[f"{stem}_count"].value / ms[f"{stem}_rate"].n)


@pytest.mark.parametrize("text, empty", [
    ("", True), ("   \n\t", True), ("。", True), ("，。！？、；：“”‘’（）【】《》…—·", True), ("...!?,;", True),
    ("\u3000\u200b", True),  # ideographic space, zero-width space
    ("好", False), ("a", False), ("1", False), ("。好", False), ("℃", False), (FFFD, False), (None, True),
])
def test_what_counts_as_an_empty_generation(text, empty):
    assert T.is_empty_generation(text) is empty


def test_whole_budget_uses_the_token_count_when_known_else_characters():
    assert T.used_whole_budget("短", 8, 8) and not T.used_whole_budget("很长的回答" * 10, 7, 8)
    assert T.used_whole_budget("一二三四", None, 4) and not T.used_whole_budget("一二三", None, 4)
    assert not T.used_whole_budget("一二三四", 9, None)  # no budget known


# --- one name for B-2 ----------------------------------------------------------------------------


def test_the_scripts_first_bleu_is_paper_bleu2_and_has_no_second_name():
    scores = [_score("高血压患者可以适量食用党参。", "高血压病人可以口服党参的。"), _score("建议多喝水", "多喝水，注意休息")]
    names = [m.name for m in T.text_metrics(scores, seed=1)]
    assert "paper_script_bleu2_cum" not in names and len(names) == len(set(names))
    assert [n for n in names if n.startswith("paper_") and "bleu" in n] == [
        "paper_bleu1_cum", "paper_bleu2_cum", "paper_script_bleu3_cum"]
    assert tuple(T.PAPER_BLEU_METRICS["paper_bleu2_cum"]) == T.SCRIPT_WEIGHTS[0]


# --- half characters at the budget ----------------------------------------------------------------


class ByteTokenizer:
    """Byte-level stub: token id = one byte; decode as a byte-level BPE tokenizer does (invalid or
    incomplete UTF-8 becomes U+FFFD); ids >= 256 are special tokens."""

    def decode(self, ids, skip_special_tokens=True):
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


class ChunkTokenizer:
    """Byte-level stub whose tokens are byte strings of any length (a token may hold a complete
    character and the first byte of the next, as merged byte-level BPE tokens do)."""

    def __init__(self, pieces: list[bytes]):
        self.pieces = pieces

    def decode(self, ids, skip_special_tokens=True):
        return b"".join(self.pieces[i] for i in ids).decode("utf-8", errors="replace")


def test_a_character_cut_at_the_budget_is_not_decoded():
    tok = ByteTokenizer()
    full = list("中文ok".encode())
    assert tok.decode(full[:5]) == "中" + FFFD  # what the backends decoded before
    assert decode_complete(tok, full[:5]) == "中"
    assert decode_complete(tok, full[:4]) == "中"
    assert decode_complete(tok, full[:3]) == "中"
    assert decode_complete(tok, full) == "中文ok"
    assert decode_complete(tok, full[:2]) == ""
    # a U+FFFD inside the text is the model's and stays; so does an invalid byte before the end
    middle = list(f"a{FFFD}b".encode())
    assert decode_complete(tok, middle) == f"a{FFFD}b"
    assert decode_complete(tok, [0x61, 0xFF, 0x62, 0xE4]) == f"a{FFFD}b"


def test_a_merged_token_keeps_its_complete_characters():
    tok = ChunkTokenizer([b"\xe4\xb8\xad", "文".encode() + b"\xe5", b"\xa5", b"\xbd"])  # 中 | 文+好[0] | 好[1] | 好[2]
    assert tok.decode([0, 1]) == "中文" + FFFD
    assert decode_complete(tok, [0, 1]) == "中文"
    assert decode_complete(tok, [0, 1, 2]) == "中文"
    assert decode_complete(tok, [0, 1, 2, 3]) == "中文好"


def test_byte_fallback_tokens_cut_inside_a_character():
    """Byte-fallback tokenizers (LLaMA's) turn the whole undecodable byte run into U+FFFDs."""
    decoders = pytest.importorskip("tokenizers.decoders")
    dec = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    vocab = [f"<0x{b:02X}>" for b in range(256)]

    class Fallback:
        def decode(self, ids, skip_special_tokens=True):
            return dec.decode([vocab[i] for i in ids])

    ids = list("中文".encode())[:5]
    assert Fallback().decode(ids) == FFFD * 5
    assert decode_complete(Fallback(), ids) == "中"


def test_byte_level_bpe_decoder_cut_inside_a_character():
    """The decoder of the tiny model's tokenizer (conftest.build_tiny_model: byte-level BPE)."""
    tokenizers = pytest.importorskip("tokenizers")
    pre = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    dec = tokenizers.decoders.ByteLevel()
    chars = "".join(p for p, _ in pre.pre_tokenize_str("发热三天"))  # one symbol per byte, 12 of them

    class ByteLevelBPE:
        def decode(self, ids, skip_special_tokens=True):
            return dec.decode([chars[i] for i in ids])

    for n, want in ((12, "发热三天"), (11, "发热三"), (10, "发热三"), (9, "发热三"), (4, "发")):
        assert decode_complete(ByteLevelBPE(), list(range(n))) == want, n
    assert ByteLevelBPE().decode(list(range(11))).endswith(FFFD)


def _vllm_backend(token_ids: list[int], end_ids: set[int]):
    from chimed_eval.backends.vllm import VLLMBackend

    b = object.__new__(VLLMBackend)
    b._vllm = SimpleNamespace(SamplingParams=lambda **kw: kw)
    b._run = lambda prompts, params: [SimpleNamespace(outputs=[SimpleNamespace(token_ids=token_ids)])]
    b.generation_ids = lambda r: [1, 2, 3]
    b.tokenizer = ByteTokenizer()
    b._end_ids = end_ids
    return b


def test_vllm_backend_returns_complete_characters_and_counts_every_token():
    req = Request("generate", "k", "问：", generation=GenerationConfig(max_new_tokens=5))
    cut = list("中文".encode())[:5]
    [resp] = _vllm_backend(cut, {300}).generate([req])
    assert (resp.text, resp.n_tokens) == ("中", (5,))
    [resp] = _vllm_backend(list("中文".encode()) + [300], {300}).generate([req])
    assert (resp.text, resp.n_tokens) == ("中文", (6,))


def test_hf_backend_returns_complete_characters_and_counts_every_token():
    torch = pytest.importorskip("torch")
    from chimed_eval.backends.hf import HFBackend

    new = list("中文好".encode())[:7]  # budget 7 ends one byte into 好

    class Model:
        def generate(self, input_ids, attention_mask, **kw):
            assert kw["max_new_tokens"] == 7
            return torch.cat([input_ids, torch.tensor([new], dtype=torch.long)], dim=1)

    b = object.__new__(HFBackend)
    b.torch, b.model, b.device, b.pad_id, b._end_ids = torch, Model(), "cpu", 300, {300}
    b.tokenizer = ByteTokenizer()
    b.generation_ids = lambda r: [65, 66]
    req = Request("generate", "k", "AB", generation=GenerationConfig(max_new_tokens=7))
    out = b._generate_batch([req])  # the path every greedy batch takes
    assert out["k"] == ("中文", 7)


def test_html_report_shows_counts_as_whole_numbers_and_rates_as_percentages(tmp_path):
    import json

    from chimed_eval.reports.html import render_html

    metrics = [{"name": "empty_generation_rate", "value": 50.0, "ci_low": None, "ci_high": None, "n": 4,
                "averaging": "items", "protocol": None, "tokenization": None},
               {"name": "empty_generation_count", "value": 2.0, "ci_low": None, "ci_high": None, "n": 4,
                "averaging": None, "protocol": None, "tokenization": None}]
    (tmp_path / "results.json").write_text(json.dumps({"model": {"name": "m"}, "settings": {}, "tasks": {
        "mc-dialogue": {"n": 4, "items_sha256": "0" * 64, "prompts_sha256": "0" * 64, "metrics": metrics}}}),
        encoding="utf-8")
    page = render_html(tmp_path)
    assert "<td>empty_generation_rate</td><td class='num'>50.00</td>" in page
    assert "<td>empty_generation_count</td><td class='num'>2</td>" in page
