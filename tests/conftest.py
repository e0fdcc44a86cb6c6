"""Shared fixtures: the real data folder (skipped when absent) and a tiny random transformers model."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CHIMED_EVAL_SHARED_DATA", ROOT.parent / "shared" / "data"))


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: a shell starts background jobs
    (``pytest … &``, CI scripts) with SIGINT ignored, the child inherits that, and Python then installs
    no KeyboardInterrupt handler; a user's terminal delivers Ctrl-C with the default action."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for servers the tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep the tests' response cache (and any model cache) out of the user's home."""
    old = os.environ.get("CHIMED_EVAL_CACHE")
    os.environ["CHIMED_EVAL_CACHE"] = str(tmp_path_factory.mktemp("chimed-cache"))
    yield
    if old is None:
        os.environ.pop("CHIMED_EVAL_CACHE", None)
    else:
        os.environ["CHIMED_EVAL_CACHE"] = old


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "cmmlu").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set CHIMED_EVAL_SHARED_DATA to its folder)")
    return SHARED_DATA


CORPUS = [
    "以下是关于解剖学的单项选择题，请直接给出正确答案的选项。",
    "问题：女性生殖腺是？ A. 卵巢 B. 前庭大腺 C. 前庭球 D. 乳腺 答案：A",
    "<human>:以下是关于临床医学的选择题，请选择正确的答案 <bot>: [human]: [bot]:",
    "The quick brown fox jumps over the lazy dog. Answer: B. 答案： C",
    "高血压 糖尿病 心肌梗死 肝硬化 肺炎 阿司匹林 肝素 溶栓 介入 治疗 诊断 检查 检验 手术 药物",
]


def build_tiny_model(path: Path, vocab_size: int = 600) -> Path:
    """A 2-layer Qwen2 (head_dim 32) with a byte-level BPE tokenizer trained on a few lines."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|endoftext|>", pad_token="<pad>")
    fast.save_pretrained(path)
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=2048,
                      tie_word_embeddings=False, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                      pad_token_id=fast.pad_token_id)
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():  # larger random weights so that log-probabilities differ visibly
        for p in model.parameters():
            p.normal_(0, 0.2)
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"))


def write_exam_csv(path: Path, n: int, subject_letter_cycle: str = "ABCD", stem: str = "第") -> Path:
    """A synthetic exam file in CMMLU's layout (header with an unnamed index column). A few-shot
    file needs another ``stem`` than its test file: shots copying test questions are refused."""
    lines = [",Question,A,B,C,D,Answer"]
    for i in range(n):
        ans = subject_letter_cycle[i % len(subject_letter_cycle)]
        lines.append(f"{i},{stem}{i}题：下列哪项正确,选项甲{i},选项乙{i},选项丙{i},选项丁{i},{ans}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_mcq_run(tmp: Path, name: str, model: str, *extra: str, n: int = 12, exam: Path | None = None) -> Path:
    """A fake-backend run of the user's multiple-choice task ``mcq`` on ``exam`` (default: a
    synthetic exam of ``n`` items in ``tmp/exam.csv``, written once) in ``tmp/name``."""
    from chimed_eval.cli.app import main

    exam = exam or tmp / "exam.csv"
    if not exam.exists():
        write_exam_csv(exam, n)
    out = tmp / name
    assert main(["run", "--no-progress", "--backend", "fake", "--model", model, "--tasks", "mcq",
                 "--task-args", f"path={exam}", "--output", str(out), *extra]) == 0
    return out


def write_qa_run(tmp: Path, answers, out: str, model: str = "oracle") -> Path:
    """A fake-backend run of the user's QA task ``my-qa`` (questions 第i个问题, references ``answers``)
    in ``tmp/out``: ``oracle`` answers each reference exactly, ``fixed:X`` always X."""
    import json

    from chimed_eval.cli.app import main

    f = tmp / f"{out}.jsonl"
    rows = [{"问题": f"第{i}个问题：头痛怎么办？", "回答": a} for i, a in enumerate(answers)]
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    o = tmp / out
    assert main(["run", "--no-progress", "--backend", "fake", "--model", model, "--tasks", "qa", "--task-args",
                 f"path={f},question=问题,answer=回答,name=my-qa", "--output", str(o)]) == 0
    return o


def count_judge_calls(monkeypatch, method: str) -> list[int]:
    """Sizes of the batches the fake judges are asked through ``FakeBackend.<method>`` (the backend
    itself, behind any cache), recorded from now on."""
    from chimed_eval.backends.fake import FakeBackend

    seen: list[int] = []
    orig = getattr(FakeBackend, method)

    def counted(self, requests):
        if self.mode == "judge":
            seen.append(len(requests))
        return orig(self, requests)

    monkeypatch.setattr(FakeBackend, method, counted)
    return seen
