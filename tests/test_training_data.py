"""Training data: schemas with file/line/field errors, mixtures in proportion, reward pairs, and
no evaluation test item in any training split (item 5 of the training issue)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.training.config import Source, apply_overrides, from_dict
from chimed_eval.training.data import CMD_SPLITS, Chat, Pair, QA, easy_pairs, mixture, read_jsonl
from chimed_eval.training.overlap import check_no_eval_overlap, eval_overlap, record_texts

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("schema,rows,line,field,msg", [
    ("text", [{"text": "ok"}, {"txt": "x"}], 2, "text", "missing"),
    ("text", [{"text": "ok"}, "{not json"], 2, None, "invalid JSON"),
    ("text", [[1, 2]], 1, None, "expected a JSON object"),
    ("chat", [{"messages": [{"role": "user", "content": "q"}]}], 1, "messages", "no assistant turn"),
    ("chat", [{"messages": [{"role": "doctor", "content": "q"}]}], 1, "messages[0].role", "expected one of"),
    ("chat", [{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}], 1,
     "messages[0].content", "non-empty"),
    ("chat", [{"prompt": "q"}], 1, "completion", "missing"),
    ("chat", [{"question": "q"}], 1, "messages", "expected 'messages'"),
    ("pairs", [{"prompt": "p", "chosen": "a"}], 1, "rejected", "missing"),
    ("pairs", [{"prompt": "p", "chosen": "a", "rejected": 3}], 1, "rejected", "non-empty string"),
    ("prompts", [{"prompt": "p", "external": ["a", ""]}], 1, "external", "list of non-empty strings"),
])
def test_jsonl_schema_errors_name_file_line_and_field(tmp_path, schema, rows, line, field, msg):
    path = _write(tmp_path / "data.jsonl", rows)
    with pytest.raises(DataError) as e:
        read_jsonl(path, schema)
    assert e.value.line == line and e.value.field == field and msg in e.value.message
    assert str(e.value).startswith(f"{path}:{line}:")


def test_jsonl_valid_records_of_every_schema(tmp_path):
    chat = read_jsonl(_write(tmp_path / "c.jsonl", [
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        "", {"prompt": "q2", "completion": "a2"}]), "chat")
    assert chat[0].messages == (("system", "s"), ("user", "q"), ("assistant", "a"))
    assert chat[1].messages == (("user", "q2"), ("assistant", "a2")) and chat[1].origin == "c.jsonl:3"
    pairs = read_jsonl(_write(tmp_path / "p.jsonl", [{"prompt": "p", "chosen": "c", "rejected": "r", "kind": "hard"}]), "pairs")
    assert pairs == [Pair("p", "c", "r", "hard", "p.jsonl:1")]
    prompts = read_jsonl(_write(tmp_path / "q.jsonl", [{"prompt": "p", "reference": "r", "external": ["g"]}]), "prompts")
    assert prompts[0].reference == "r" and prompts[0].external == ("g",)
    with pytest.raises(DataError, match="no items"):
        read_jsonl(_write(tmp_path / "e.jsonl", [""]), "text")
    with pytest.raises(DataError, match="no such file"):
        read_jsonl(tmp_path / "missing.jsonl", "text")


def test_mixture_follows_declared_proportions(tmp_path):
    a = _write(tmp_path / "a.jsonl", [{"text": f"a{i}"} for i in range(5)])
    b = _write(tmp_path / "b.jsonl", [{"text": f"b{i}"} for i in range(50)])
    recs, counts = mixture([Source(path=str(a), weight=3), Source(path=str(b), weight=1)], "text", 40, seed=0)
    assert counts == {str(a): 30, str(b): 10} and len(recs) == 40
    assert sum(r.startswith("a") for r in recs) == 30  # the small source is cycled to reach its share
    assert len({r for r in recs if r.startswith("a")}) == 5
    again, _ = mixture([Source(path=str(a), weight=3), Source(path=str(b), weight=1)], "text", 40, seed=0)
    assert again == recs  # seeded
    whole, counts = mixture([Source(path=str(a)), Source(path=str(b))], "text", None, seed=0)
    assert sorted(whole) == sorted([f"a{i}" for i in range(5)] + [f"b{i}" for i in range(50)])
    with pytest.raises(ConfigError, match="weights"):
        mixture([Source(path=str(a), weight=0)], "text", 10, seed=0)
    # unusable records (e.g. no answer within max_length) leave before the quotas: 3:1 still holds
    kept, counts = mixture([Source(path=str(a), weight=3), Source(path=str(b), weight=1)], "text", 40, seed=0,
                           usable=lambda r: r not in ("a0", "a1", "b7"))
    assert counts == {str(a): 30, str(b): 10} and not {"a0", "a1", "b7"} & set(kept)


def test_easy_pairs_never_pair_an_answer_with_itself():
    rows = [QA(f"k{i}", f"q{i}", f"a{i % 7}") for i in range(30)]
    pairs = easy_pairs(rows, seed=3)
    assert len(pairs) >= 25
    for p in pairs:
        assert p.kind == "easy" and p.chosen != p.rejected
        assert p.chosen == next(r.answer for r in rows if r.question == p.prompt)


def test_config_errors_and_overrides():
    from chimed_eval.training.sft import SFTStageConfig

    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(SFTStageConfig, {"model": "m", "output_dir": "o", "lr": 1})
    with pytest.raises(ConfigError, match="missing required key 'output_dir'"):
        from_dict(SFTStageConfig, {"model": "m"})
    with pytest.raises(ConfigError, match="expected int"):
        from_dict(SFTStageConfig, {"model": "m", "output_dir": "o", "train": {"max_steps": "many"}})
    data = apply_overrides({"train": {"max_steps": 5}}, ["train.max_steps=7", "train.deepspeed=zero3", "sources=[]"])
    cfg = from_dict(SFTStageConfig, {"model": "m", "output_dir": "o", **data})
    assert cfg.train.max_steps == 7 and cfg.train.deepspeed == "zero3" and cfg.sources == []


def test_full_plan_chains_the_stages():
    from chimed_eval.training.full import plan

    data = yaml.safe_load((ROOT / "examples" / "train_regime.yaml").read_text(encoding="utf-8"))
    p = plan({k: v for k, v in data.items() if k != "skip_done"})
    assert p["sft"].model == p["pretrain"].output_dir
    assert p["reward"].model == p["judge"].model == p["sft"].output_dir
    assert p["rejection"].policy == p["sft"].output_dir and p["rejection"].reward_model == p["reward"].output_dir
    assert p["rejection"].evaluate.judge == p["judge"].output_dir != p["rejection"].reward_model
    # defaults, then the stage's own
    assert p["pretrain"].train.max_length == 160 and p["reward"].train.max_length == 128
    assert p["pretrain"].train.warmup_steps == 2 and p["reward"].train.warmup_steps == 5


def test_stage_commands_on_a_full_file_run_the_judge_and_skip_finished_stages(tmp_path, monkeypatch):
    import dataclasses

    from chimed_eval.training import cli
    from chimed_eval.training.full import plan
    from chimed_eval.training.registry import STAGES, get_stage

    data = yaml.safe_load((ROOT / "examples" / "train_regime.yaml").read_text(encoding="utf-8"))
    for sec in ("pretrain", "sft", "reward", "judge", "rejection"):
        data[sec]["output_dir"] = str(tmp_path / sec)
    (tmp_path / "judge").mkdir()
    (tmp_path / "judge" / "metrics.json").write_text('{"stage": "reward", "marker": 7}', encoding="utf-8")
    ran = []
    fake_run = lambda cfg: ran.append(cfg) or {"ran": cfg.output_dir}  # noqa: E731
    for name in ("reward", "judge"):  # the registry's entries run the reward stage
        monkeypatch.setitem(STAGES._entries, name, dataclasses.replace(get_stage(name), run=fake_run))
    # skip_done: the finished judge is not trained again; the reward stage runs with its own section
    assert cli.run_stage("judge", data)["marker"] == 7 and not ran
    assert cli.run_stage("reward", data) == {"ran": str(tmp_path / "reward")}
    # without skip_done the judge trains, on the judge: section (its split, the SFT output as model)
    out = cli.run_stage("judge", {k: v for k, v in data.items() if k != "skip_done"})
    assert out == {"ran": str(tmp_path / "judge")}
    judge = plan({k: v for k, v in data.items() if k != "skip_done"})["judge"]
    assert ran[-1] == judge and ran[-1].model == str(tmp_path / "sft") and ran[-1].sources[0].split == "judge"
    with pytest.raises(ConfigError, match="judge: needs a full file"):
        cli.run_stage("judge", data["judge"])
    with pytest.raises(ConfigError, match="no 'judge:' section"):
        cli.run_stage("judge", {k: v for k, v in data.items() if k != "judge"})


# --- the real data: splits disjoint from each other and from every evaluation test item ------------------


@pytest.fixture()
def real_data(shared_data, monkeypatch):
    monkeypatch.setenv("CHIMED_EVAL_DATA", str(shared_data))
    return shared_data


def test_cmd_splits_are_disjoint_and_exclude_the_cmd_qa_test_set(real_data):
    from chimed_eval.tasks.generation import load_cmd_qa
    from chimed_eval.training.data import cmd_splits

    splits = cmd_splits(str(real_data.resolve()))
    test = load_cmd_qa(real_data).samples
    assert len(test) == 500
    test_q = {s.input for s in test}
    test_a = {str(s.target) for s in test}
    owner: dict[str, str] = {}
    for name, rows in splits.items():
        assert name in CMD_SPLITS and len(rows) > 300
        for r in rows:
            assert r.question not in test_q and r.answer not in test_a
            for text in (r.question, r.answer):
                assert owner.setdefault(text, name) == name, f"{text[:30]!r} in {owner[text]} and {name}"
    # the held-out split is disjoint from every training split by construction and by text
    assert not {r.question for r in splits["heldout"]} & {r.question for n, rs in splits.items() if n != "heldout" for r in rs}


def test_no_evaluation_test_item_in_the_example_regime(real_data):
    """Every training and held-out record the example regime reads (all stages) is checked
    against cmd-qa's test split, mc-dialogue's test targets and SafetyBench's questions."""
    from chimed_eval.training.data import load_source
    from chimed_eval.training.full import plan

    data = yaml.safe_load((ROOT / "examples" / "train_regime.yaml").read_text(encoding="utf-8"))
    stages = plan({k: v for k, v in data.items() if k != "skip_done"})
    checked = 0
    for name, cfg in stages.items():
        srcs = []
        for attr, schema in (("sources", None), ("heldout", None), ("prompts", "prompts"), ("mix", "chat")):
            for s in getattr(cfg, attr, []) or []:
                srcs.append((s, schema))
        for h in ("hard_negatives", "heldout_hard"):
            if getattr(cfg, h, None) is not None and getattr(cfg, h).source is not None:
                srcs.append((getattr(cfg, h).source, "prompts"))
        if name == "rejection":
            srcs += [(s, "prompts") for s in cfg.evaluate.prompts]
        schema_of = {"pretrain": "text", "sft": "chat", "reward": "pairs", "judge": "pairs", "rejection": "prompts"}
        for s, schema in srcs:
            recs = load_source(s, schema or schema_of[name])
            assert recs
            assert eval_overlap(record_texts(recs)) == {}, (name, s)
            checked += len(recs)
    assert checked > 500


def test_overlap_is_detected_and_refused(real_data):
    from chimed_eval.tasks.generation import load_cmd_qa, load_hetmc
    from chimed_eval.training.data import safetybench_chats

    t = load_cmd_qa(real_data).samples[0]
    leak = [Chat((("user", t.input), ("assistant", "x")))]
    assert eval_overlap(record_texts(leak)) == {"cmd-qa": 1}
    with pytest.raises(ConfigError, match="evaluation test items"):
        check_no_eval_overlap(leak, "test")
    d = next(s for s in load_hetmc(real_data, "test").samples if len(str(s.target)) >= 8)
    assert eval_overlap([str(d.target)]) == {"mc-dialogue": 1}
    assert eval_overlap([d.metadata["turns"][0][1]]) == {"mc-dialogue": 1}  # its context too
    assert eval_overlap(["不客气"]) == {}  # generic short turns identify no test item
    safety = safetybench_chats()[:3]
    assert eval_overlap(record_texts(safety)) == {"safetybench-zh": 3}
    check_no_eval_overlap(safety, "test", allow=["safetybench-zh"])  # accepted only when named


def test_hetmc_training_dialogues_are_not_test_dialogues(real_data):
    from chimed_eval.training.data import hetmc_chats

    chats = hetmc_chats("train")
    assert len(chats) > 300
    assert all(m[0][0] == "user" and m[-1][0] == "assistant" for m in (c.messages for c in chats))
    assert eval_overlap(record_texts(chats)) == {}


def test_deepspeed_configs_and_attention_fallback():
    import importlib.util

    from chimed_eval.training.config import TrainSettings, attention, training_kwargs
    from chimed_eval.training.deepspeed import zero_config

    z2 = zero_config(2, "optimizer")
    assert z2["zero_optimization"]["stage"] == 2 and z2["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    z3 = zero_config(3, "all")
    assert z3["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert "offload_optimizer" not in zero_config(3)["zero_optimization"]
    with pytest.raises(ConfigError, match="needs ZeRO-3"):
        zero_config(2, "all")
    with pytest.raises(ConfigError, match="needs train.deepspeed"):
        training_kwargs(TrainSettings(offload="optimizer"), "o")
    kw = training_kwargs(TrainSettings(deepspeed="zero3", gradient_checkpointing=True, precision="bf16"), "o")
    assert kw["deepspeed"]["zero_optimization"]["stage"] == 3 and kw["bf16"] and kw["gradient_checkpointing"]
    if importlib.util.find_spec("flash_attn") is None:
        assert attention("auto") == "sdpa"
    assert attention("eager") == "eager"


def test_wilson_interval_against_known_values():
    from chimed_eval.training.measure import wilson

    lo, hi = wilson(24, 24)  # 24/24: the bootstrap interval collapses to [1, 1]; Wilson does not
    assert lo == pytest.approx(24 / (24 + 1.959964 ** 2), abs=1e-9) and hi == pytest.approx(1.0)
    lo, hi = wilson(38, 48)  # p = 0.7917: centre 0.7701, half-width 0.1126
    assert (lo, hi) == pytest.approx((0.6574, 0.8827), abs=1e-4)
