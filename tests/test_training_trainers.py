"""The trainers on a tiny random Qwen2: the Bradley-Terry loss against a hand-computed value,
every parameter changing after a few steps (pretrain, sft, reward), resuming from a checkpoint
giving the same next loss, and the command line."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.slow

CORPUS = ["高血压 糖尿病 心肌梗死 肝硬化 肺炎", "阿司匹林 肝素 溶栓 介入 治疗", "诊断 检查 检验 手术 药物",
          "The quick brown fox jumps over the lazy dog.", "以下是关于解剖学的单项选择题，请直接给出正确答案的选项。"]


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture()
def files(tmp_path):
    text = _jsonl(tmp_path / "text.jsonl", [{"text": CORPUS[i % 5] + f" 第{i}篇 " + CORPUS[(i * 3) % 5]} for i in range(40)])
    chat = _jsonl(tmp_path / "chat.jsonl", [
        {"messages": [{"role": "user", "content": f"问题{i}：{CORPUS[i % 5][:8]}"}, {"role": "assistant", "content": f"答案{i % 3}"},
                      {"role": "user", "content": "为什么"}, {"role": "assistant", "content": CORPUS[(i + 1) % 5][:10]}]}
        for i in range(24)])
    pairs = _jsonl(tmp_path / "pairs.jsonl", [{"prompt": f"问题{i}", "chosen": "答案 高血压 诊断", "rejected": f"The lazy dog {i}"}
                                              for i in range(24)])
    return SimpleNamespace(text=text, chat=chat, pairs=pairs, root=tmp_path)


def _state(model_dir: Path, cls: str = "AutoModelForCausalLM") -> dict:
    import transformers

    m = getattr(transformers, cls).from_pretrained(model_dir, **({"num_labels": 1} if "Sequence" in cls else {}))
    return {k: v.detach().clone() for k, v in m.named_parameters()}


def _assert_all_changed(before: dict, after: dict) -> None:
    import torch

    common = set(before) & set(after)
    assert len(common) >= 20
    unchanged = [k for k in common if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters that did not change: {unchanged}"


TRAIN = {"max_steps": 3, "batch_size": 4, "logging_steps": 1, "learning_rate": 1e-3, "max_length": 64}


def test_pretrain_changes_every_parameter_and_reports_heldout_loss(tiny_model, files):
    from chimed_eval.training.config import from_dict
    from chimed_eval.training.pretrain import PretrainConfig, run_pretrain

    out = files.root / "pt"
    rep = run_pretrain(from_dict(PretrainConfig, {"model": str(tiny_model), "output_dir": str(out), "block_size": 32,
                                                  "sources": [{"path": files.text, "limit": 30}],
                                                  "heldout": [{"path": _jsonl(files.root / "h.jsonl",
                                                                              [{"text": "肺炎 治疗 检查"}] * 3)}],
                                                  "train": TRAIN}))
    _assert_all_changed(_state(tiny_model), _state(out))
    assert rep["data"]["cross_document_attention"] is False and rep["train"]["steps"] == 3
    assert set(rep) >= {"before", "after", "delta"} and (out / "metrics.json").is_file()
    assert rep["after"]["ci_low"] <= rep["after"]["value"] <= rep["after"]["ci_high"]


def test_sft_changes_every_parameter_with_answer_only_loss(tiny_model, files):
    from chimed_eval.training.config import from_dict
    from chimed_eval.training.sft import SFTStageConfig, run_sft

    out = files.root / "sft"
    held = _jsonl(files.root / "held.jsonl", [{"prompt": "留出问题", "completion": "答案 治疗"}] * 2)
    rep = run_sft(from_dict(SFTStageConfig, {"model": str(tiny_model), "output_dir": str(out), "total_examples": 12,
                                             "sources": [{"path": files.chat, "weight": 1}], "heldout": [{"path": held}],
                                             "train": TRAIN}))
    _assert_all_changed(_state(tiny_model), _state(out))
    assert rep["data"]["turns"] == 24 and rep["data"]["conversations"] == 12
    assert rep["delta"]["value"] < 0  # answer loss on the held-out answers went down


@pytest.mark.parametrize("match_lengths", [False, True])
def test_reward_changes_every_parameter_and_reports_accuracy(tiny_model, files, match_lengths):
    from chimed_eval.training.config import from_dict
    from chimed_eval.training.reward import RewardStageConfig, run_reward

    out = files.root / "rm"
    held = _jsonl(files.root / "hp.jsonl", [{"prompt": f"留出{i}", "chosen": "答案 肝硬化 检查", "rejected": f"quick fox {i}",
                                             "kind": "easy"} for i in range(6)])
    rep = run_reward(from_dict(RewardStageConfig, {"model": str(tiny_model), "output_dir": str(out),
                                                   "sources": [{"path": files.pairs}], "heldout": [{"path": held}],
                                                   "match_lengths": match_lengths, "train": TRAIN}))
    before = _state(tiny_model, "AutoModelForSequenceClassification")
    after = _state(out, "AutoModelForSequenceClassification")
    before.pop("score.weight")  # the head is new: compare it to its own initialisation below
    _assert_all_changed(before, after)
    kinds = {"easy", "easy/matched"} if match_lengths else {"easy"}
    assert set(rep["after_by_kind"]) == kinds and all(rep["after_by_kind"][k]["n"] == 6 for k in kinds)
    head = json.loads((out / "reward_head.json").read_text())
    assert head["max_length"] == 64 and head["match_lengths"] is match_lengths


def test_bradley_terry_loss_matches_a_hand_computed_value(tiny_model, tmp_path):
    """TRL's RewardTrainer.compute_loss on rewards chosen (2.0, 0.5), rejected (1.0, 1.5):
    mean(-log sigmoid(1), -log sigmoid(-1)) = mean(log(1 + e^-1), log(1 + e)) = 0.8132617."""
    import torch
    from trl import RewardConfig, RewardTrainer

    from chimed_eval.training.config import TrainSettings
    from chimed_eval.training.reward import encode_pairs, load_reward_model
    from chimed_eval.training.stage import make_dataset

    model, tok = load_reward_model(str(tiny_model), TrainSettings())
    data = make_dataset(encode_pairs(tok, [], 32) or [{"chosen_ids": [5, 6], "rejected_ids": [7]}])
    trainer = RewardTrainer(model=model, args=RewardConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True),
                            train_dataset=data, processing_class=tok)

    class Fixed(torch.nn.Module):  # returns fixed rewards: the first half chosen, the second rejected
        def forward(self, **kw):
            return SimpleNamespace(logits=torch.tensor([[2.0], [0.5], [1.0], [1.5]]))

    inputs = {"input_ids": torch.ones(4, 3, dtype=torch.long), "attention_mask": torch.ones(4, 3, dtype=torch.long)}
    loss = trainer.compute_loss(Fixed(), inputs)
    hand = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(1.0))) / 2
    assert abs(hand - 0.8132616875) < 1e-9
    assert loss.item() == pytest.approx(hand, abs=1e-6)


def test_resume_from_checkpoint_gives_the_same_next_loss(tiny_model, files):
    from chimed_eval.training.config import from_dict
    from chimed_eval.training.pretrain import PretrainConfig, run_pretrain

    def cfg(out: Path, resume: bool):
        return from_dict(PretrainConfig, {"model": str(tiny_model), "output_dir": str(out), "block_size": 32,
                                          "sources": [{"path": files.text}],
                                          "train": {**TRAIN, "max_steps": 4, "batch_size": 2, "save_steps": 2,
                                                    "save_total_limit": None, "resume": resume}})

    full_dir = files.root / "uninterrupted"
    straight = run_pretrain(cfg(full_dir, False))["train"]["loss_curve"]
    # a run that stopped after its step-2 checkpoint: the same directory with only checkpoint-2 left
    cut = files.root / "interrupted"
    shutil.copytree(full_dir / "checkpoint-2", cut / "checkpoint-2")
    resumed = run_pretrain(cfg(cut, True))["train"]
    assert resumed["resumed_from"].endswith("checkpoint-2")
    # the history of steps 1-2 comes from the checkpoint; steps 3-4 are computed after resuming
    assert [p["step"] for p in resumed["loss_curve"]] == [1, 2, 3, 4]
    assert resumed["loss_curve"][2]["loss"] == pytest.approx(straight[2]["loss"], rel=1e-5, abs=1e-6)
    assert resumed["loss_curve"][3]["loss"] == pytest.approx(straight[3]["loss"], rel=1e-5, abs=1e-6)
    assert straight[2]["loss"] != straight[0]["loss"]


def test_cli_reports_bad_data_with_file_and_line(tiny_model, tmp_path, capsys):
    from chimed_eval.training.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": ""}\n', encoding="utf-8")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"pretrain:\n  model: {tiny_model}\n  output_dir: {tmp_path / 'o'}\n  sources: [{{path: {bad}}}]\n",
                   encoding="utf-8")
    assert main(["pretrain", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: field 'text':" in err
    assert main(["pretrain", "--config", str(cfg), "--set", "pretrain.train.deepspeed=zero4"]) == 2
    assert "zero4" in capsys.readouterr().err


def test_gradient_checkpointing_gives_the_same_losses(tiny_model, files):
    from chimed_eval.training.config import from_dict
    from chimed_eval.training.pretrain import PretrainConfig, run_pretrain

    def curve(out: str, ckpt: bool):
        return run_pretrain(from_dict(PretrainConfig, {
            "model": str(tiny_model), "output_dir": str(files.root / out), "block_size": 32,
            "sources": [{"path": files.text}], "train": {**TRAIN, "gradient_checkpointing": ckpt}}))["train"]["loss_curve"]

    plain, checkpointed = curve("plain", False), curve("ckpt", True)
    assert [p["loss"] for p in checkpointed] == pytest.approx([p["loss"] for p in plain], rel=1e-5)


def test_rejection_selects_the_best_scored_candidate_through_a_backend(tiny_model, tmp_path):
    """Samples come from an evaluation backend chosen by name (here the scripted fake one), the
    external answers compete, and the kept answer is the one the reward model scores highest."""
    from chimed_eval.training.config import TrainSettings, from_dict
    from chimed_eval.training.rejection import RejectionStageConfig, score_answers, select

    from chimed_eval.training.reward import load_reward_model

    rm_dir = tmp_path / "rm"  # a reward model with a fixed (saved) head
    rm, tok = load_reward_model(str(tiny_model), TrainSettings())
    rm.save_pretrained(rm_dir)
    tok.save_pretrained(rm_dir)
    prompts = tmp_path / "p.jsonl"
    _jsonl(prompts, [{"prompt": f"问题{i}", "reference": f"答案 治疗{i}", "external": [f"外部回答 高血压 {i}"]}
                     for i in range(3)])
    cfg = from_dict(RejectionStageConfig, {"policy": "random", "backend": "fake", "reward_model": str(rm_dir),
                                           "output_dir": str(tmp_path / "o"), "n_samples": 3, "keep": 1,
                                           "include_reference": True, "prompts": [{"path": str(prompts)}],
                                           "train": {"max_length": 64}})
    from chimed_eval.training.data import load_source

    items = load_source(cfg.prompts[0], "prompts")
    chosen, stats = select(cfg, items)
    assert stats["candidates"] == 3 * (3 + 1 + 1) and len(chosen) == 3
    for c, p in zip(chosen, items):
        kinds = [x["candidate"] for x in c["candidates"]]
        assert sorted(kinds) == ["external0", "reference", "sample0", "sample1", "sample2"]
        assert c["reward"] == max(x["reward"] for x in c["candidates"])
        answer = c["messages"][1]["content"]
        alone = score_answers(str(rm_dir), [(p.prompt, answer)], TrainSettings(max_length=64))[0]
        assert c["reward"] == pytest.approx(alone, abs=1e-4)  # batched (right-padded) = alone
        if c["candidate"].startswith("sample"):
            assert answer.startswith("答案：")  # the fake backend's scripted text


def test_stage_config_mistakes_are_config_errors(tmp_path):
    """Mistakes in a rejection or reward config end in ConfigError (the CLI prints it and exits 2),
    not in a NameError or a traceback from deep inside a stage."""
    from chimed_eval.core.errors import ConfigError
    from chimed_eval.training.config import from_dict
    from chimed_eval.training.rejection import RejectionStageConfig, run_rejection
    from chimed_eval.training.reward import HardNegatives, hard_pairs

    prompts = _jsonl(tmp_path / "p.jsonl", [{"prompt": f"问题{i}"} for i in range(3)])
    base = {"policy": "random", "backend": "fake", "reward_model": "rm", "output_dir": str(tmp_path / "o"),
            "prompts": [{"path": prompts}]}
    with pytest.raises(ConfigError, match="n_samples and keep"):
        run_rejection(from_dict(RejectionStageConfig, {**base, "n_samples": 0}))
    with pytest.raises(ConfigError, match="no prompts"):
        run_rejection(from_dict(RejectionStageConfig, {**base, "prompts": []}))
    with pytest.raises(ConfigError, match="no prompts with a reference"):
        hard_pairs(from_dict(HardNegatives, {"source": {"path": prompts}}), "random")


def test_rejection_evaluation_averages_several_samples_per_prompt(tiny_model, tmp_path):
    """Before/after figures with k answers per prompt: the reward difference is the mean over
    prompts of (mean after - mean before), the win rate compares answer j with answer j, BLEU is
    the corpus BLEU of all k x n answers (nltk's corpus_bleu on the authors' padded characters)
    with intervals over prompts, and the parts of BLEU add up to it."""
    import numpy as np
    from nltk.translate.bleu_score import corpus_bleu

    from chimed_eval.metrics.text import chimed_char_pad
    from chimed_eval.training.config import TrainSettings, from_dict
    from chimed_eval.training.generate import generate_answers
    from chimed_eval.training.rejection import RejectionStageConfig, context, evaluate_rejection, score_answers
    from chimed_eval.training.reward import load_reward_model

    rm_dir = tmp_path / "rm"
    rm, tok = load_reward_model(str(tiny_model), TrainSettings())
    rm.save_pretrained(rm_dir)
    tok.save_pretrained(rm_dir)
    held = _jsonl(tmp_path / "held.jsonl", [{"prompt": f"高血压{i}能吃石斛吗", "reference": f"高血压患者可以食用石斛{i}，注意血压"}
                                            for i in range(4)])
    after = "fixed:可以食用石斛，注意"
    cfg = from_dict(RejectionStageConfig, {
        "policy": "random", "backend": "fake", "reward_model": str(rm_dir), "output_dir": str(tmp_path / "o"),
        "train": {"max_length": 64},
        "evaluate": {"prompts": [{"path": held}], "judge": str(rm_dir), "n_samples": 3, "seed": 7}})
    ev = evaluate_rejection(cfg, "random", after, [])
    assert ev["n"] == 4 and ev["n_samples"] == 3

    from chimed_eval.training.data import load_source

    items = load_source(cfg.evaluate.prompts[0], "prompts")
    gens = generate_answers("random", [(p.id, context(p)) for p in items], 3, cfg.evaluate.decoding, 7, backend="fake")
    before = [gens[p.id] for p in items]
    assert len({a for xs in before for a in xs}) > 1  # the random answers differ, so the averaging is tested
    fixed = after.split(":", 1)[1]
    s0 = np.asarray(score_answers(str(rm_dir), [(p.prompt, a) for p, xs in zip(items, before) for a in xs],
                                  TrainSettings(max_length=64))).reshape(4, 3)
    s1 = np.asarray(score_answers(str(rm_dir), [(p.prompt, fixed) for p in items], TrainSettings(max_length=64)))
    j = ev["judge"]
    assert j["delta"]["n"] == 4
    assert j["delta"]["value"] == pytest.approx(float((s1 - s0.mean(1)).mean()), abs=1e-4)
    assert j["win_rate"]["value"] == pytest.approx(float(((s1[:, None] > s0) + 0.5 * (s1[:, None] == s0)).mean()), abs=1e-9)

    refs = [p.reference for p in items]
    pad = lambda s: list(chimed_char_pad(s))  # noqa: E731
    for key, hyps in (("before", before), ("after", [[fixed] * 3 for _ in items])):
        flat_h = [pad(h) for xs in hyps for h in xs]
        flat_r = [[pad(r)] for r, xs in zip(refs, hyps) for _ in xs]
        b = ev["bleu"][key]
        assert b["bleu1"]["value"] == pytest.approx(100 * corpus_bleu(flat_r, flat_h, weights=(1,)), abs=1e-9)
        assert b["bleu1"]["n"] == 4
        parts = b["parts"]
        assert b["bleu1"]["value"] == pytest.approx(100 * parts["precision1"] * parts["brevity_penalty"], rel=1e-9)
    assert ev["bleu"]["delta"]["bleu1"]["value"] == pytest.approx(
        ev["bleu"]["after"]["bleu1"]["value"] - ev["bleu"]["before"]["bleu1"]["value"], abs=1e-9)


def test_match_lengths_cuts_both_answers_of_a_pair_to_the_shorter(tiny_model):
    from transformers import AutoTokenizer

    from chimed_eval.training.data import Pair
    from chimed_eval.training.reward import encode_answer, encode_pairs

    tok = AutoTokenizer.from_pretrained(tiny_model)
    long, short = "高血压患者可以食用石斛，但要坚持服用降压药物，不要随意停药。", "可以"
    pairs = [Pair("高血压能吃石斛吗？", long, short), Pair("高血压能吃石斛吗？", short, long)]
    natural = encode_pairs(tok, pairs, 64)
    assert natural[0]["chosen_ids"] == encode_answer(tok, pairs[0].prompt, long, 64)
    assert len(natural[0]["chosen_ids"]) > len(natural[0]["rejected_ids"])
    for row, pair in zip(encode_pairs(tok, pairs, 64, match_lengths=True), pairs):
        c, r = row["chosen_ids"], row["rejected_ids"]
        assert len(c) == len(r) and c[-1] == r[-1] == tok.eos_token_id
        # the shorter answer is untouched; the longer keeps its own first tokens
        shorter = min(pair.chosen, pair.rejected, key=len)
        assert encode_answer(tok, pair.prompt, shorter, 64) in (c, r)
        longer_row = r if shorter == pair.chosen else c
        assert longer_row[:-1] == encode_answer(tok, pair.prompt, max(pair.chosen, pair.rejected, key=len), 64)[: len(c) - 1]
    # the window still applies: nothing is longer than max_length
    assert all(len(x) <= 16 for row in encode_pairs(tok, [Pair("问" * 40, long, long)], 16, True) for x in row.values())
